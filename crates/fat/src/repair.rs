//! Finishing what a crash or a lost write left: the repair a re-run does before it writes.
//!
//! The engine's write order (data → FAT → directory entry; FAT copy 0 before the others)
//! means a process killed at any point leaves at worst clusters that are allocated but owned
//! by no file ("lost clusters"), FAT copies that differ in the sectors being written, a
//! stale FSInfo count, and the dirty flag. Those, and only those, are repaired here, the way
//! `fsck.fat -a` would: lost clusters are freed, every FAT copy is rewritten from copy 0, and
//! the dirty flag is cleared at the next flush. Anything else (cross-links, bad `.`/`..`,
//! sizes that disagree with chains) is not a state our writes can produce: it is reported
//! and the volume stays marked dirty, for a real file-system check.

use crate::dir::{self, now, Kind, ATTR_DIR};
use crate::table::Entry;
use crate::{CheckReport, FatType, FileSystem, Problem, Result, Storage};

/// What [`FileSystem::repair_after_crash`] found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepairReport {
    /// The volume was dirty when opened (a write was interrupted).
    pub was_dirty: bool,
    /// Lost clusters freed.
    pub freed_clusters: u32,
    /// FAT copies were rewritten from the first one.
    pub resynced_fats: bool,
    /// The volume is clean now (after the next flush).
    pub repaired: bool,
    /// Problems left alone because an interrupted write of ours cannot cause them.
    pub remaining: Vec<Problem>,
    /// Damaged entries the caller called disposable, removed without freeing their chains
    /// (their clusters are freed only if no other entry owns them).
    pub forgotten: Vec<String>,
    /// Directories whose missing or stale `.`/`..` entries were rewritten.
    pub fixed_dots: Vec<String>,
}

impl<S: Storage> FileSystem<S> {
    /// If the volume was not cleanly unmounted, repair what an interrupted write leaves
    /// (see the module docs) and clear the dirty flag on the next flush. Does nothing on a
    /// clean volume.
    pub fn repair_after_crash(&mut self) -> Result<RepairReport> {
        if !self.was_dirty {
            return Ok(RepairReport::default());
        }
        let mut rep = self.repair_leaks()?;
        rep.was_dirty = true;
        if rep.repaired {
            self.was_dirty = false;
            self.flush()?;
        }
        Ok(rep)
    }

    /// Repair what a write the card acknowledged and then dropped can leave, on a clean or a
    /// dirty volume: first, entries that a check finds damaged (broken, looping or
    /// cross-linked chains, a size its chain cannot hold, bad `.`/`..`) and that
    /// `disposable` accepts — temporary files, say — are forgotten: their directory entries
    /// are removed and their chains left alone, since a damaged chain may run into another
    /// file's clusters; then lost clusters are freed and FAT copies resynchronised as in
    /// [`FileSystem::repair_after_crash`], if only those problems remain. Damage to any
    /// other entry is reported in `remaining` and nothing more is done.
    pub fn repair_with(&mut self, disposable: &dyn Fn(&str) -> bool) -> Result<RepairReport> {
        let was_dirty = self.was_dirty;
        let mut forgotten: Vec<String> = Vec::new();
        let mut fixed_dots: Vec<String> = Vec::new();
        // Each pass removes the damaged disposable entries the check names; forgetting one
        // can bring another to light (a cross-link partner), so a few passes are allowed.
        // The check of a pass that changed nothing still describes the volume: the leak
        // repair below uses it rather than walking the whole card again.
        let mut unchanged: Option<CheckReport> = None;
        for _ in 0..4 {
            self.dirs.clear();
            let check = self.check()?;
            let mut damaged: Vec<String> = Vec::new();
            let mut progress = false;
            let mut attempted = false;
            for p in &check.problems {
                damaged.extend(p.paths().into_iter().filter(|p| disposable(p)));
                if let Problem::BadDotEntries { path } = p {
                    if !disposable(path) && !fixed_dots.contains(path) {
                        attempted = true;
                        if self.fix_dots(path)? {
                            fixed_dots.push(path.clone());
                            progress = true;
                        }
                    }
                }
            }
            // Deepest first: a damaged directory's damaged children go before it.
            damaged.sort_by(|a, b| {
                (b.matches('/').count(), a.as_str()).cmp(&(a.matches('/').count(), b.as_str()))
            });
            damaged.dedup();
            for path in damaged {
                if forgotten.iter().any(|f| path.starts_with(&format!("{f}/"))) {
                    continue;
                }
                // A failed attempt may still have written: the check is then stale.
                attempted = true;
                if self.forget(&path).is_ok() {
                    forgotten.push(path);
                    progress = true;
                }
            }
            if !progress {
                if !attempted {
                    unchanged = Some(check);
                }
                break;
            }
        }
        let mut rep = match unchanged {
            Some(check) => self.repair_leaks_found(check)?,
            None => self.repair_leaks()?,
        };
        rep.was_dirty = was_dirty;
        rep.forgotten = forgotten;
        rep.fixed_dots = fixed_dots;
        if rep.repaired {
            // Clears the dirty flag, writes the free count; writes nothing if nothing changed.
            self.was_dirty = false;
            self.flush()?;
        }
        Ok(rep)
    }

    /// Rewrite the `.` and `..` entries of directory `path`. When its first two slots are
    /// free (the write that initialised its cluster was lost) or already dot entries with
    /// stale clusters (a directory move cut short), only those two slots are written. When
    /// other entries sit there (the lost initialisation, then entries written into the
    /// slots it would have reserved), every entry moves down two slots, as `fsck.fat` does
    /// — only if the directory's last two slots are free, so nothing falls off its end.
    /// Returns whether it wrote.
    fn fix_dots(&mut self, path: &str) -> Result<bool> {
        let Some(loc) = self.find(path)? else {
            return Ok(false);
        };
        let p = self.parsed(loc)?;
        if !p.is_dir() {
            return Ok(false);
        }
        let key = self.key_of(&p, path)?;
        self.load_dir(key)?;
        let t = now();
        let mut dots = [0u8; 64];
        dots[..32].copy_from_slice(&dir::new_entry(b".          ", ATTR_DIR, key, t));
        // `..` of a directory in the root is 0, also on FAT32 (the root's key is 0).
        dots[32..].copy_from_slice(&dir::new_entry(b"..         ", ATTR_DIR, loc.dir, t));
        let Some(d) = self.dirs.get_mut(&key) else {
            return Ok(false);
        };
        let free = |e: &[u8]| matches!(e[0], 0x00 | 0xE5);
        let slot = |data: &[u8], i: usize| data.get(i * 32..i * 32 + 32).map(<[u8]>::to_vec);
        let usable = |i: usize, name: &[u8; 11]| {
            slot(&d.data, i)
                .is_some_and(|e| free(&e) || (e[..11] == name[..] && e[11] & ATTR_DIR != 0))
        };
        let slots = d.data.len() / 32;
        let end = if usable(0, b".          ") && usable(1, b"..         ") {
            d.data[..64].copy_from_slice(&dots);
            2
        } else {
            let tail_free = slots >= 4
                && slot(&d.data, slots - 1).is_some_and(|e| free(&e))
                && slot(&d.data, slots - 2).is_some_and(|e| free(&e));
            if !tail_free {
                return Ok(false);
            }
            let mut shifted = dots.to_vec();
            shifted.extend_from_slice(&d.data[..(slots - 2) * 32]);
            d.data = shifted;
            slots
        };
        self.begin_write()?;
        let Some(d) = self.dirs.get(&key) else {
            return Ok(false);
        };
        let r = d.write_slots(&mut self.storage, &self.geo, 0, end);
        self.note_write(r)?;
        self.dirs.clear();
        Ok(true)
    }

    /// Remove `path`'s directory entry without touching its chain (see [`Self::repair_with`]).
    fn forget(&mut self, path: &str) -> Result<()> {
        let loc = self.find(path)?.ok_or_else(|| {
            crate::error::Error::Unsupported("cannot forget the root directory".into())
        })?;
        self.delete_entry(loc)?;
        self.dirs.clear();
        Ok(())
    }

    /// Free allocated clusters no entry owns and resynchronise differing FAT copies, if
    /// those are the only problems (see the module docs). Writes nothing itself beyond
    /// marking the volume dirty: the caller flushes. Also run by `flush` after a failed
    /// write in this session, when the in-memory FAT may hold allocations that never
    /// reached a directory entry.
    pub(crate) fn repair_leaks(&mut self) -> Result<RepairReport> {
        self.dirs.clear();
        let check = self.check()?;
        self.repair_leaks_found(check)
    }

    /// [`Self::repair_leaks`] with the volume's current check already made.
    fn repair_leaks_found(&mut self, check: CheckReport) -> Result<RepairReport> {
        let mut rep = RepairReport::default();
        let mut resync = false;
        let mut free_count_wrong = false;
        for p in check.problems {
            match p {
                Problem::LostClusters { .. } => {}
                // The next flush writes the count the in-memory FAT gives.
                Problem::FreeCountWrong { .. } => free_count_wrong = true,
                Problem::FatCopiesDiffer => resync = true,
                other => rep.remaining.push(other),
            }
        }
        if !rep.remaining.is_empty() {
            return Ok(rep);
        }
        let owned = self.owned_clusters()?;
        let max = self.fat.max_cluster();
        let lost: Vec<u32> = (2..=max)
            .filter(|&c| !owned[c as usize] && !matches!(self.fat.get(c), Entry::Free | Entry::Bad))
            .collect();
        // A dirty volume goes through `begin_write` even with nothing to fix, so that the
        // next flush clears its flag; a clean one with nothing to fix is not written.
        if lost.is_empty() && !resync && !free_count_wrong && !self.was_dirty {
            rep.repaired = true;
            return Ok(rep);
        }
        self.begin_write()?;
        if !lost.is_empty() {
            self.fat.free_chain(&lost);
            rep.freed_clusters = lost.len() as u32;
        }
        if resync {
            // Re-setting each entry to its own value marks every FAT sector dirty, so the
            // next flush writes copy 0 over every other copy.
            for c in 2..=max {
                let e = self.fat.get(c);
                self.fat.set(c, e);
            }
            rep.resynced_fats = true;
        }
        rep.repaired = true;
        Ok(rep)
    }

    /// Which clusters some directory entry (or the FAT32 root) owns. Only called after
    /// `check` found every chain sound, so chain walks cannot fail on loops here; errors
    /// are still propagated rather than assumed away.
    fn owned_clusters(&mut self) -> Result<Vec<bool>> {
        let max = self.fat.max_cluster();
        let mut owned = vec![false; max as usize + 1];
        let mut mark = |fs: &mut Self, first: u32| -> Result<()> {
            for c in fs.fat.chain(first)? {
                if let Some(o) = owned.get_mut(c as usize) {
                    *o = true;
                }
            }
            Ok(())
        };
        if self.geo.fat_type == FatType::Fat32 {
            let root = self.geo.root_cluster;
            mark(self, root)?;
        }
        let mut stack = vec![0u32];
        while let Some(key) = stack.pop() {
            self.load_dir(key)?;
            let Some(d) = self.dirs.get(&key) else {
                continue;
            };
            let (entries, _, _) = dir::parse(&d.data);
            let mut children = Vec::new();
            let mut files = Vec::new();
            for p in entries.iter().filter(|p| p.kind == Kind::Normal) {
                let c = p.cluster();
                if c == 0 {
                    continue;
                }
                if p.is_dir() {
                    children.push(c);
                } else {
                    files.push(c);
                }
            }
            for c in files.into_iter().chain(children.iter().copied()) {
                mark(self, c)?;
            }
            stack.extend(children);
        }
        Ok(owned)
    }
}

impl Problem {
    /// The entries this problem says are damaged (none for volume-wide problems).
    pub fn paths(&self) -> Vec<String> {
        match self {
            Problem::CrossLinked { paths, .. } => paths.clone(),
            Problem::ChainLoops { path }
            | Problem::ChainOutOfRange { path, .. }
            | Problem::ChainHitsFree { path, .. }
            | Problem::SizeMismatch { path, .. }
            | Problem::BadDotEntries { path }
            | Problem::Other { path, .. } => vec![path.clone()],
            Problem::LostClusters { .. }
            | Problem::FatCopiesDiffer
            | Problem::FreeCountWrong { .. } => Vec::new(),
        }
    }
}
