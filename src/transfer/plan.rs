//! Planning and pre-flight: where each file goes, and whether the run can fit, decided
//! before a single byte is written.

use std::collections::{HashMap, HashSet};
use std::time::SystemTime;

use crate::media::{self, CaptureTime, MediaItem, MediaKind};
use crate::storage::{self, names, Volume};

use super::{FileReport, PhotoOptions, Status, TransferError};

/// What the run needs to know of a phone file besides its [`FileReport`] (whose `source`,
/// `size` and `destination` are the file's path, size and planned card path).
#[derive(Debug, Clone)]
pub struct Planned {
    pub modified: Option<SystemTime>,
    /// Index of the file's pair id in [`Plan::pair_ids`], or [`NO_PAIR`].
    pub pair: u32,
    pub kind: MediaKind,
}

/// [`Planned::pair`] of a file that stands alone.
pub const NO_PAIR: u32 = u32::MAX;

#[derive(Debug)]
pub struct Plan {
    /// One report per phone file, in scan order; `facts[i]` belongs to `files[i]`.
    pub files: Vec<FileReport>,
    pub facts: Vec<Planned>,
    /// The distinct pair ids (few files have one).
    pub pair_ids: Vec<Box<str>>,
    pub bytes_needed: u64,
    pub free_bytes: u64,
}

/// Why a run cannot start.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(
        "the card is too small for this run: {needed} bytes needed, {free} bytes free, {missing} bytes ({missing_h}) missing. Nothing was written and nothing was removed. Free up space on the card, use a larger card, or copy a part with --include / a smaller source folder"
    )]
    NoSpace {
        needed: u64,
        free: u64,
        missing: u64,
        missing_h: String,
    },
}

/// Make every component of `path` a name the card can hold.
fn card_path(path: &str, fat_names: bool) -> String {
    if !fat_names {
        return path.to_string();
    }
    path.split('/')
        .filter(|c| !c.is_empty())
        .map(names::sanitize_fat_name)
        .collect::<Vec<_>>()
        .join("/")
}

/// The card paths the plan has given out, compared as the card compares names. Holds a
/// hash per path rather than a copy of it (a run may plan 100,000 files); the path itself
/// is in the plan's reports.
struct Taken {
    case_insensitive: bool,
    /// Hash of the compared form → index of the report holding that destination.
    by_hash: HashMap<u64, usize>,
    /// Compared forms of destinations whose hash collides with another's.
    collided: HashSet<String>,
}

impl Taken {
    fn hash(&self, path: &str) -> u64 {
        if self.case_insensitive {
            names::fold_hash(path)
        } else {
            use std::hash::{BuildHasher, BuildHasherDefault};
            BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
                .hash_one(path)
        }
    }
    fn key(&self, path: &str) -> String {
        if self.case_insensitive {
            names::fold_case(path)
        } else {
            path.to_string()
        }
    }
    fn same(&self, a: &str, b: &str) -> bool {
        if self.case_insensitive {
            names::same_folded(a, b)
        } else {
            a == b
        }
    }
    fn contains(&self, files: &[FileReport], path: &str) -> bool {
        let hit = self
            .by_hash
            .get(&self.hash(path))
            .is_some_and(|&i| self.same(files[i].destination.as_deref().unwrap_or_default(), path));
        hit || (!self.collided.is_empty() && self.collided.contains(&self.key(path)))
    }
    /// Record `path`, the destination of `files[index]` (not taken yet).
    fn insert(&mut self, path: &str, index: usize) {
        let h = self.hash(path);
        if let std::collections::hash_map::Entry::Vacant(v) = self.by_hash.entry(h) {
            v.insert(index);
        } else {
            let key = self.key(path);
            self.collided.insert(key);
        }
    }
}

pub fn plan(
    phone: &mut dyn Volume,
    card: &mut dyn Volume,
    items: Vec<MediaItem>,
    options: &PhotoOptions,
) -> Result<Plan, TransferError> {
    let limits = card.limits();
    let space = card.space()?;
    let mut times: Vec<CaptureTime> = items
        .iter()
        .map(|it| media::capture_time(phone, it))
        .collect();
    media::share_pair_times(&items, &mut times);

    let mut taken = Taken {
        case_insensitive: limits.case_insensitive,
        by_hash: HashMap::with_capacity(items.len()),
        collided: HashSet::new(),
    };
    let mut files: Vec<FileReport> = Vec::with_capacity(items.len());
    let mut facts = Vec::with_capacity(items.len());
    let mut pair_ids: Vec<Box<str>> = Vec::new();
    let mut pair_index: HashMap<String, u32> = HashMap::new();
    let mut bytes_needed = 0u64;
    let mut new_dirs: HashSet<String> = HashSet::new();
    let mut dir_entry_bytes = 0u64;
    for (item, time) in items.into_iter().zip(times) {
        let raw = media::destination(&item, options.layout, Some(&time));
        let mut dest = card_path(&raw, limits.fat_names);
        // Two phone files that land on one card name (case twins, or the same name in two
        // camera folders under --layout date) get `name (n).ext`, never one over the other.
        if taken.contains(&files, &dest) {
            let parent = storage::parent(&dest).to_string();
            let name = storage::file_name(&dest).to_string();
            let mut n = 1;
            loop {
                let cand = storage::join(&parent, &names::numbered(&name, n));
                if !taken.contains(&files, &cand) {
                    dest = cand;
                    break;
                }
                n += 1;
            }
        }
        taken.insert(&dest, files.len());
        let renamed_from =
            (storage::file_name(&dest) != item.name()).then(|| item.name().to_string());
        let mut report = FileReport {
            source: item.path,
            destination: None,
            size: item.size,
            sha256: None,
            status: Status::Planned,
            removed: false,
            reason: None,
            renamed_from,
            captured: Some(time),
            captured_from: Some(time.source),
        };
        if let Some(max) = limits.max_file_size {
            if item.size > max {
                report.status = Status::Failed;
                report.reason = Some(format!(
                    "{} is 4 GiB or larger: a FAT32 card cannot hold a file this big, so it stays on the phone (copy it to an exFAT or NTFS disk instead)",
                    crate::format::human_bytes(item.size)
                ));
            }
        }
        if report.status == Status::Planned {
            let already = card.stat(&dest)?.is_some_and(|e| e.size == item.size);
            if !already {
                bytes_needed += space.allocated(item.size);
                let parent = storage::parent(&dest).to_string();
                if !parent.is_empty()
                    && !new_dirs.contains(&parent)
                    && card.stat(&parent)?.is_none()
                {
                    new_dirs.insert(parent);
                }
                // Long-name slots: 13 UTF-16 units each, plus the 8.3 entry.
                let units = storage::file_name(&dest).encode_utf16().count() as u64;
                dir_entry_bytes += 32 * (units.div_ceil(13) + 1);
            }
        }
        report.destination = Some(dest);
        files.push(report);
        let pair = match item.pair_id {
            None => NO_PAIR,
            Some(id) => *pair_index.entry(id).or_insert_with_key(|id| {
                pair_ids.push(id.as_str().into());
                pair_ids.len() as u32 - 1
            }),
        };
        facts.push(Planned {
            modified: item.modified,
            pair,
            kind: item.kind,
        });
    }
    // Room for what the run adds besides the files: new folders, directory entries, the
    // manifest pair written twice during its replacement, and a temp file's last cluster.
    let records = files.len() as u64 + 1;
    let overhead = new_dirs.len() as u64 * space.cluster_bytes
        + space.allocated(dir_entry_bytes)
        + 4 * space.allocated(records * 450)
        + 2 * space.cluster_bytes;
    if bytes_needed > 0 {
        bytes_needed += overhead;
    }
    if bytes_needed > space.free_bytes && !options.dry_run {
        let missing = bytes_needed - space.free_bytes;
        return Err(PlanError::NoSpace {
            needed: bytes_needed,
            free: space.free_bytes,
            missing,
            missing_h: crate::format::human_bytes(missing),
        }
        .into());
    }
    Ok(Plan {
        files,
        facts,
        pair_ids,
        bytes_needed,
        free_bytes: space.free_bytes,
    })
}
