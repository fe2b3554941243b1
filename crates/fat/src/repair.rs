//! Finishing what a crash left: the repair a re-run does before it writes.
//!
//! The engine's write order (data → FAT → directory entry; FAT copy 0 before the others)
//! means a process killed at any point leaves at worst clusters that are allocated but owned
//! by no file ("lost clusters"), FAT copies that differ in the sectors being written, a
//! stale FSInfo count, and the dirty flag. Those, and only those, are repaired here, the way
//! `fsck.fat -a` would: lost clusters are freed, every FAT copy is rewritten from copy 0, and
//! the dirty flag is cleared at the next flush. Anything else (cross-links, bad `.`/`..`,
//! sizes that disagree with chains) is not a state our writes can produce: it is reported
//! and the volume stays marked dirty, for a real file-system check.

use crate::dir::{self, Kind};
use crate::table::Entry;
use crate::{FatType, FileSystem, Problem, Result, Storage};

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

    /// Free allocated clusters no entry owns and resynchronise differing FAT copies, if
    /// those are the only problems (see the module docs). Writes nothing itself beyond
    /// marking the volume dirty: the caller flushes. Also run by `flush` after a failed
    /// write in this session, when the in-memory FAT may hold allocations that never
    /// reached a directory entry.
    pub(crate) fn repair_leaks(&mut self) -> Result<RepairReport> {
        let mut rep = RepairReport::default();
        self.dirs.clear();
        let check = self.check()?;
        let mut resync = false;
        for p in check.problems {
            match p {
                Problem::LostClusters { .. } | Problem::FreeCountWrong { .. } => {}
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
