//! The file allocation table, held whole in memory as its raw bytes (so FAT12 packing and
//! FAT32's reserved top nibble survive untouched), with a free count, a next-fit hint and
//! a per-sector dirty set that `flush_to` writes to every FAT copy in coalesced runs.

use std::io::{Seek, SeekFrom, Write};

use crate::boot::{corrupt, Geometry};
use crate::{FatType, Result};

/// What a FAT entry means, independent of the FAT width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Entry {
    Free,
    Next(u32),
    Bad,
    Eoc,
    /// 1, or a value above the last cluster and below the bad marker.
    Reserved(u32),
}

pub(crate) struct Fat {
    kind: FatType,
    raw: Vec<u8>,
    bytes_per_sector: usize,
    max_cluster: u32,
    free: u32,
    hint: u32,
    dirty: Vec<bool>,
    /// The sectors set in `dirty`, so a flush costs what changed, not the FAT's size.
    dirty_list: Vec<usize>,
    any_dirty: bool,
}

impl Fat {
    /// Build from the raw bytes of FAT copy 0 (at least the bytes for `cluster_count + 2`
    /// entries, rounded up to whole sectors).
    pub fn new(geo: &Geometry, raw: Vec<u8>) -> Fat {
        let sectors = raw.len() / geo.bytes_per_sector as usize;
        let mut fat = Fat {
            kind: geo.fat_type,
            raw,
            bytes_per_sector: geo.bytes_per_sector as usize,
            max_cluster: geo.max_cluster(),
            free: 0,
            hint: 2,
            dirty: vec![false; sectors],
            dirty_list: Vec::new(),
            any_dirty: false,
        };
        fat.free = (2..=fat.max_cluster)
            .filter(|&c| fat.raw_get(c) == 0)
            .count() as u32;
        fat
    }

    /// Bytes of the FAT to load for a geometry: every entry up to the last cluster,
    /// rounded up to whole sectors (bounded by the FAT size, checked in `validate`).
    pub fn load_len(geo: &Geometry) -> u64 {
        let bits = crate::boot::entry_bits(geo.fat_type);
        let bytes = (u64::from(geo.cluster_count) + 2) * bits;
        let bytes = bytes.div_ceil(8);
        let bps = u64::from(geo.bytes_per_sector);
        bytes.div_ceil(bps) * bps
    }

    fn raw_get(&self, n: u32) -> u32 {
        let n = n as usize;
        match self.kind {
            FatType::Fat12 => {
                let off = n + n / 2;
                let w = match self.raw.get(off..off + 2) {
                    Some(s) => u16::from_le_bytes([s[0], s[1]]),
                    None => return 0x0FFF,
                };
                u32::from(if n & 1 == 0 { w & 0x0FFF } else { w >> 4 })
            }
            FatType::Fat16 => match self.raw.get(2 * n..2 * n + 2) {
                Some(s) => u32::from(u16::from_le_bytes([s[0], s[1]])),
                None => 0xFFFF,
            },
            FatType::Fat32 => match self.raw.get(4 * n..4 * n + 4) {
                Some(s) => u32::from_le_bytes([s[0], s[1], s[2], s[3]]) & 0x0FFF_FFFF,
                None => 0x0FFF_FFFF,
            },
        }
    }

    fn raw_set(&mut self, n: u32, v: u32) {
        let n = n as usize;
        let (off, len) = match self.kind {
            FatType::Fat12 => {
                let off = n + n / 2;
                if let Some(s) = self.raw.get_mut(off..off + 2) {
                    let w = u16::from_le_bytes([s[0], s[1]]);
                    let v = (v & 0x0FFF) as u16;
                    let w = if n & 1 == 0 {
                        (w & 0xF000) | v
                    } else {
                        (w & 0x000F) | (v << 4)
                    };
                    s.copy_from_slice(&w.to_le_bytes());
                }
                (off, 2)
            }
            FatType::Fat16 => {
                if let Some(s) = self.raw.get_mut(2 * n..2 * n + 2) {
                    s.copy_from_slice(&(v as u16).to_le_bytes());
                }
                (2 * n, 2)
            }
            FatType::Fat32 => {
                if let Some(s) = self.raw.get_mut(4 * n..4 * n + 4) {
                    // Keep the top 4 bits: they are reserved, not ours (FAT_NOTES §2).
                    let old = u32::from_le_bytes([s[0], s[1], s[2], s[3]]);
                    let w = (old & 0xF000_0000) | (v & 0x0FFF_FFFF);
                    s.copy_from_slice(&w.to_le_bytes());
                }
                (4 * n, 4)
            }
        };
        // A FAT12 entry may straddle two sectors: mark both.
        let first = off / self.bytes_per_sector;
        let last = (off + len - 1) / self.bytes_per_sector;
        for s in first..=last {
            if let Some(d) = self.dirty.get_mut(s) {
                if !*d {
                    *d = true;
                    self.dirty_list.push(s);
                }
            }
        }
        self.any_dirty = true;
    }

    fn eoc(&self) -> u32 {
        match self.kind {
            FatType::Fat12 => 0x0FFF,
            FatType::Fat16 => 0xFFFF,
            FatType::Fat32 => 0x0FFF_FFFF,
        }
    }

    fn bad(&self) -> u32 {
        match self.kind {
            FatType::Fat12 => 0x0FF7,
            FatType::Fat16 => 0xFFF7,
            FatType::Fat32 => 0x0FFF_FFF7,
        }
    }

    /// Decode entry `n` (2 ..= max_cluster).
    pub fn get(&self, n: u32) -> Entry {
        let v = self.raw_get(n);
        let bad = self.bad();
        if v == 0 {
            Entry::Free
        } else if v >= 2 && v <= self.max_cluster {
            Entry::Next(v)
        } else if v == bad {
            Entry::Bad
        } else if v > bad {
            Entry::Eoc
        } else {
            Entry::Reserved(v)
        }
    }

    pub fn is_free(&self, n: u32) -> bool {
        self.raw_get(n) == 0
    }

    pub fn set(&mut self, n: u32, e: Entry) {
        if n < 2 || n > self.max_cluster {
            return;
        }
        let was_free = self.raw_get(n) == 0;
        let v = match e {
            Entry::Free => 0,
            Entry::Next(c) => c,
            Entry::Bad => self.bad(),
            Entry::Eoc => self.eoc(),
            Entry::Reserved(v) => v,
        };
        self.raw_set(n, v);
        let now_free = v == 0;
        match (was_free, now_free) {
            (true, false) => self.free = self.free.saturating_sub(1),
            (false, true) => self.free += 1,
            _ => {}
        }
    }

    pub fn free_count(&self) -> u32 {
        self.free
    }
    pub fn hint(&self) -> u32 {
        self.hint
    }
    pub fn max_cluster(&self) -> u32 {
        self.max_cluster
    }

    /// Find a run of free clusters of at most `want` clusters, next-fit from `from` (or the
    /// hint), preferring to continue right at `from`. Marks nothing; the caller links it.
    pub fn find_free_run(&self, from: Option<u32>, want: u32) -> Option<(u32, u32)> {
        if self.free == 0 || want == 0 {
            return None;
        }
        let start = from
            .filter(|&c| c >= 2 && c <= self.max_cluster)
            .unwrap_or(self.hint.clamp(2, self.max_cluster));
        let total = self.max_cluster - 1;
        let mut c = start;
        for _ in 0..total {
            if self.is_free(c) {
                let mut len = 1;
                while len < want && c + len <= self.max_cluster && self.is_free(c + len) {
                    len += 1;
                }
                return Some((c, len));
            }
            c = if c >= self.max_cluster { 2 } else { c + 1 };
        }
        None
    }

    /// Allocate up to `want` clusters as one contiguous run, chained and ended with EOC.
    /// Returns the run; `None` when the volume is full.
    pub fn alloc_run(&mut self, from: Option<u32>, want: u32) -> Option<(u32, u32)> {
        let (start, len) = self.find_free_run(from, want)?;
        for i in 0..len {
            let c = start + i;
            if i + 1 < len {
                self.set(c, Entry::Next(c + 1));
            } else {
                self.set(c, Entry::Eoc);
            }
        }
        let next = start + len;
        self.hint = if next > self.max_cluster { 2 } else { next };
        Some((start, len))
    }

    /// Walk a chain from `first`, bounded by the cluster count and range-checked.
    /// Returns the clusters in order. Hitting a free/bad/reserved entry or looping is
    /// `Corrupt`.
    pub fn chain(&self, first: u32) -> Result<Vec<u32>> {
        let mut out = Vec::new();
        if first == 0 {
            return Ok(out);
        }
        let mut c = first;
        loop {
            if c < 2 || c > self.max_cluster {
                return Err(corrupt(format!(
                    "cluster chain reaches cluster {c}, out of range"
                )));
            }
            if out.len() as u64 > u64::from(self.max_cluster) {
                return Err(corrupt(format!("cluster chain from {first} loops")));
            }
            out.push(c);
            match self.get(c) {
                Entry::Eoc => return Ok(out),
                Entry::Next(n) => c = n,
                Entry::Free => {
                    return Err(corrupt(format!(
                        "cluster chain from {first} hits free cluster {c}"
                    )))
                }
                Entry::Bad => {
                    return Err(corrupt(format!(
                        "cluster chain from {first} hits bad cluster {c}"
                    )))
                }
                Entry::Reserved(v) => {
                    return Err(corrupt(format!(
                        "cluster chain from {first}: cluster {c} holds reserved value {v:#x}"
                    )))
                }
            }
        }
    }

    /// Free a chain (in memory; dirty sectors are written by `flush_to`).
    pub fn free_chain(&mut self, clusters: &[u32]) {
        for &c in clusters {
            self.set(c, Entry::Free);
        }
    }

    pub fn is_dirty(&self) -> bool {
        self.any_dirty
    }

    /// Write every dirty sector to every FAT copy, one write per run of consecutive dirty
    /// sectors per copy, copy 0 first.
    pub fn flush_to<S: Write + Seek>(&mut self, storage: &mut S, geo: &Geometry) -> Result<u64> {
        if !self.any_dirty {
            return Ok(0);
        }
        let bps = self.bytes_per_sector;
        self.dirty_list.sort_unstable();
        let mut runs: Vec<(usize, usize)> = Vec::new();
        for &s in &self.dirty_list {
            match runs.last_mut() {
                Some((_, e)) if *e == s => *e = s + 1,
                _ => runs.push((s, s + 1)),
            }
        }
        let mut writes = 0;
        for copy in 0..geo.num_fats {
            let base = geo.fat_offset(copy);
            for &(s, e) in &runs {
                let bytes = self
                    .raw
                    .get(s * bps..e * bps)
                    .ok_or_else(|| corrupt("FAT dirty range past the loaded FAT"))?;
                storage.seek(SeekFrom::Start(base + (s * bps) as u64))?;
                storage.write_all(bytes)?;
                writes += 1;
            }
        }
        for &s in &self.dirty_list {
            if let Some(d) = self.dirty.get_mut(s) {
                *d = false;
            }
        }
        self.dirty_list.clear();
        self.any_dirty = false;
        Ok(writes)
    }
}
