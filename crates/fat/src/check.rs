//! A read-only consistency walk, reporting what fsck.fat would complain about: lost
//! clusters, cross-links, loops, chains leaving the volume or hitting free clusters,
//! size/chain mismatches, bad `.`/`..`, differing FAT copies and a wrong FSInfo count.

use std::io::SeekFrom;

use crate::boot::{self, le32};
use crate::dir::{self, Kind};
use crate::table::{Entry, Fat};
use crate::{CheckReport, FatType, FileSystem, Problem, Result, Storage};

struct Walker {
    owner: Vec<u32>,
    paths: Vec<String>,
}

impl Walker {
    /// Claim the chain from `first` for `path`; returns the number of clusters claimed
    /// and whether the chain is sound enough to descend into.
    fn claim(&mut self, fat: &Fat, first: u32, path: &str, out: &mut Vec<Problem>) -> (u64, bool) {
        self.paths.push(path.to_string());
        let id = self.paths.len() as u32;
        let max = fat.max_cluster();
        let mut c = first;
        let mut n = 0u64;
        loop {
            if c < 2 || c > max {
                out.push(Problem::ChainOutOfRange {
                    path: path.into(),
                    cluster: c,
                });
                return (n, false);
            }
            let o = self.owner[c as usize];
            if o == id {
                out.push(Problem::ChainLoops { path: path.into() });
                return (n, false);
            }
            if o != 0 {
                let other = self.paths.get(o as usize - 1).cloned().unwrap_or_default();
                out.push(Problem::CrossLinked {
                    cluster: c,
                    paths: vec![other, path.into()],
                });
                return (n, false);
            }
            match fat.get(c) {
                Entry::Free => {
                    out.push(Problem::ChainHitsFree {
                        path: path.into(),
                        cluster: c,
                    });
                    return (n, false);
                }
                Entry::Bad | Entry::Reserved(_) => {
                    out.push(Problem::ChainOutOfRange {
                        path: path.into(),
                        cluster: c,
                    });
                    return (n, false);
                }
                Entry::Eoc => {
                    self.owner[c as usize] = id;
                    return (n + 1, true);
                }
                Entry::Next(x) => {
                    self.owner[c as usize] = id;
                    n += 1;
                    c = x;
                }
            }
        }
    }
}

pub(crate) fn check<S: Storage>(fs: &mut FileSystem<S>) -> Result<CheckReport> {
    let mut rep = CheckReport::default();
    let mut probs = Vec::new();
    let max = fs.geo.max_cluster();
    let cb = u64::from(fs.geo.bytes_per_cluster);
    let mut w = Walker {
        owner: vec![0; max as usize + 1],
        paths: Vec::new(),
    };
    let mut root_ok = true;
    if fs.geo.fat_type == FatType::Fat32 {
        let (_, ok) = w.claim(&fs.fat, fs.geo.root_cluster, "/", &mut probs);
        root_ok = ok;
    }
    // (dir key, path, expected `..` cluster)
    let mut stack: Vec<(u32, String, u32)> = Vec::new();
    if root_ok {
        stack.push((0, String::new(), 0));
    }
    while let Some((key, path, parent)) = stack.pop() {
        if let Err(e) = fs.load_dir(key) {
            probs.push(Problem::Other {
                path: if path.is_empty() {
                    "/".into()
                } else {
                    path.clone()
                },
                what: e.to_string(),
            });
            continue;
        }
        let Some(d) = fs.dirs.get(&key) else { continue };
        let (entries, _, _) = dir::parse(&d.data);
        if key != 0 {
            let dot = entries
                .first()
                .filter(|p| p.slot == 0 && p.kind == Kind::Dot);
            let dotdot = entries
                .get(1)
                .filter(|p| p.slot == 1 && p.kind == Kind::DotDot);
            let ok = dot.is_some_and(|p| p.cluster() == key)
                && dotdot.is_some_and(|p| p.cluster() == parent);
            if !ok {
                probs.push(Problem::BadDotEntries { path: path.clone() });
            }
        }
        // Duplicate short names (fsck.fat renames them) or long names (ambiguous lookups).
        let mut shorts = std::collections::HashSet::new();
        let mut longs = std::collections::HashSet::new();
        for p in entries.iter().filter(|p| p.kind == Kind::Normal) {
            if !shorts.insert(p.sfn) || !longs.insert(crate::name::fold(&p.name)) {
                probs.push(Problem::Other {
                    path: format!("{path}/{}", p.name),
                    what: "duplicate name in the directory".into(),
                });
            }
        }
        for p in entries.iter().filter(|p| p.kind == Kind::Normal) {
            let ep = format!("{path}/{}", p.name);
            let c = p.cluster();
            if p.is_dir() {
                rep.directories += 1;
                if p.size() != 0 {
                    probs.push(Problem::Other {
                        path: ep.clone(),
                        what: format!("directory has non-zero size {}", p.size()),
                    });
                }
                if c == 0 {
                    probs.push(Problem::Other {
                        path: ep,
                        what: "directory has start cluster 0".into(),
                    });
                    continue;
                }
                let (_, ok) = w.claim(&fs.fat, c, &ep, &mut probs);
                if ok {
                    stack.push((c, ep, key));
                }
            } else {
                rep.files += 1;
                let size = u64::from(p.size());
                let n = if c == 0 {
                    0
                } else {
                    let (n, ok) = w.claim(&fs.fat, c, &ep, &mut probs);
                    if !ok {
                        continue;
                    }
                    n
                };
                let chain_bytes = n * cb;
                if size > chain_bytes || chain_bytes >= size + cb {
                    probs.push(Problem::SizeMismatch {
                        path: ep,
                        size,
                        chain_bytes,
                    });
                }
            }
        }
    }
    let lost = (2..=max)
        .filter(|&c| w.owner[c as usize] == 0 && !matches!(fs.fat.get(c), Entry::Free | Entry::Bad))
        .count() as u32;
    if lost > 0 {
        probs.push(Problem::LostClusters { count: lost });
    }
    // FAT copies as they are on the storage.
    if fs.geo.num_fats > 1 {
        let len = Fat::load_len(&fs.geo) as usize;
        let mut first = vec![0u8; len];
        fs.storage.seek(SeekFrom::Start(fs.geo.fat_offset(0)))?;
        fs.storage.read_exact(&mut first)?;
        let mut other = vec![0u8; len];
        // Compare only the bytes that hold entries 0 ..= max_cluster.
        let bits = boot::entry_bits(fs.geo.fat_type) as usize;
        let used = ((max as usize + 1) * bits).div_ceil(8).min(len);
        for copy in 1..fs.geo.num_fats {
            fs.storage.seek(SeekFrom::Start(fs.geo.fat_offset(copy)))?;
            fs.storage.read_exact(&mut other)?;
            if first[..used] != other[..used] {
                probs.push(Problem::FatCopiesDiffer);
                break;
            }
        }
    }
    if let Some(sector) = fs.geo.fsinfo_sector {
        let bps = fs.geo.bytes_per_sector as usize;
        let mut s = vec![0u8; bps];
        fs.storage
            .seek(SeekFrom::Start(u64::from(sector) * bps as u64))?;
        fs.storage.read_exact(&mut s)?;
        if le32(&s, 0) != boot::FSINFO_LEAD || le32(&s, 484) != boot::FSINFO_STRUC {
            probs.push(Problem::Other {
                path: String::new(),
                what: "FSInfo signature wrong".into(),
            });
        } else {
            let recorded = le32(&s, boot::FSINFO_OFF_FREE);
            let actual = fs.fat.free_count();
            if recorded != 0xFFFF_FFFF && recorded != actual {
                probs.push(Problem::FreeCountWrong { recorded, actual });
            }
        }
    }
    rep.problems = probs;
    Ok(rep)
}
