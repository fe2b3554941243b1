//! Directories: 32-byte entries, LFN decoding, and the in-memory directory (its bytes,
//! a case-folded name index, a short-name index and the free-slot runs) that makes
//! create/lookup O(1) per file instead of a scan of the whole directory.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{Seek, SeekFrom, Write};

use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};

use crate::boot::{le16, le32, put16, put32, Geometry};
use crate::name::{fold, fold_hash, lfn_checksum, same_folded, sfn_display, LFN_OFFSETS};
use crate::Result;

pub(crate) const ATTR_RO: u8 = 0x01;
pub(crate) const ATTR_HIDDEN: u8 = 0x02;
pub(crate) const ATTR_SYSTEM: u8 = 0x04;
pub(crate) const ATTR_VOLUME: u8 = 0x08;
pub(crate) const ATTR_DIR: u8 = 0x10;
pub(crate) const ATTR_ARCHIVE: u8 = 0x20;
pub(crate) const ATTR_LFN: u8 = ATTR_RO | ATTR_HIDDEN | ATTR_SYSTEM | ATTR_VOLUME;

/// Linux FAT_MAX_DIR_ENTRIES: no directory grows past 2 MiB of entries.
pub(crate) const MAX_DIR_ENTRIES: usize = 65536;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Normal,
    Dot,
    DotDot,
    Label,
}

/// One live entry found by parsing a directory.
#[derive(Debug, Clone)]
pub(crate) struct Parsed {
    /// Long name if valid, else the displayed short name.
    pub name: String,
    pub sfn: [u8; 11],
    pub slot: usize,
    pub first_slot: usize,
    pub raw: [u8; 32],
    pub kind: Kind,
}

impl Parsed {
    pub fn attr(&self) -> u8 {
        self.raw[11]
    }
    pub fn is_dir(&self) -> bool {
        self.attr() & ATTR_DIR != 0
    }
    pub fn cluster(&self) -> u32 {
        entry_cluster(&self.raw)
    }
    pub fn size(&self) -> u32 {
        le32(&self.raw, 28)
    }
    pub fn short_display(&self) -> String {
        sfn_display(&self.sfn, self.raw[12])
    }
}

pub(crate) fn entry_cluster(raw: &[u8]) -> u32 {
    (u32::from(le16(raw, 20)) << 16) | u32::from(le16(raw, 26))
}
pub(crate) fn set_entry_cluster(raw: &mut [u8], c: u32) {
    put16(raw, 20, (c >> 16) as u16);
    put16(raw, 26, (c & 0xFFFF) as u16);
}
pub(crate) fn set_entry_size(raw: &mut [u8], size: u32) {
    put32(raw, 28, size);
}

/// FAT date/time → naive date-time; `None` for a zero or impossible date.
pub(crate) fn decode_time(date: u16, time: u16, tenth: u8) -> Option<NaiveDateTime> {
    if date == 0 {
        return None;
    }
    let y = 1980 + i32::from(date >> 9);
    let m = u32::from((date >> 5) & 0x0F);
    let d = u32::from(date & 0x1F);
    let hh = u32::from(time >> 11);
    let mm = u32::from((time >> 5) & 0x3F);
    let ss = u32::from(time & 0x1F) * 2 + u32::from(tenth / 100);
    let ms = u32::from(tenth % 100) * 10;
    NaiveDate::from_ymd_opt(y, m, d)?.and_hms_milli_opt(hh, mm, ss.min(59), ms)
}

/// Naive date-time → (date, time, tenth), clamped to FAT's 1980..=2107 range.
pub(crate) fn encode_time(t: NaiveDateTime) -> (u16, u16, u8) {
    let min = NaiveDate::from_ymd_opt(1980, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .unwrap_or(t);
    let max = NaiveDate::from_ymd_opt(2107, 12, 31)
        .and_then(|d| d.and_hms_opt(23, 59, 58))
        .unwrap_or(t);
    let t = t.clamp(min, max);
    let date = (((t.year() - 1980) as u16) << 9) | ((t.month() as u16) << 5) | t.day() as u16;
    let time = ((t.hour() as u16) << 11) | ((t.minute() as u16) << 5) | (t.second() / 2) as u16;
    let tenth = ((t.second() % 2) * 100 + (t.nanosecond() / 10_000_000).min(99)) as u8;
    (date, time, tenth)
}

pub(crate) fn now() -> NaiveDateTime {
    chrono::Local::now().naive_local()
}

/// Build a fresh SFN entry.
pub(crate) fn new_entry(sfn: &[u8; 11], attr: u8, cluster: u32, t: NaiveDateTime) -> [u8; 32] {
    let mut e = [0u8; 32];
    e[..11].copy_from_slice(sfn);
    e[11] = attr;
    let (d, tm, tenth) = encode_time(t);
    e[13] = tenth;
    put16(&mut e, 14, tm);
    put16(&mut e, 16, d);
    put16(&mut e, 18, d);
    put16(&mut e, 22, tm);
    put16(&mut e, 24, d);
    set_entry_cluster(&mut e, cluster);
    e
}

/// Parse every live entry of a directory's bytes, stopping at the first 0x00 entry.
/// Returns the entries, the end slot (first 0x00 slot or the slot count) and the runs
/// of deleted slots before it.
pub(crate) fn parse(data: &[u8]) -> (Vec<Parsed>, usize, BTreeMap<usize, usize>) {
    let slots = data.len() / 32;
    let mut out = Vec::new();
    let mut holes: BTreeMap<usize, usize> = BTreeMap::new();
    let mut hole_start: Option<usize> = None;
    // Pending LFN: (first slot, expected next ordinal, checksum, units by ordinal).
    let mut lfn: Option<(usize, u8, u8, Vec<[u16; 13]>)> = None;
    let mut end = slots;
    for i in 0..slots {
        let e = &data[i * 32..i * 32 + 32];
        if e[0] == 0x00 {
            end = i;
            break;
        }
        if e[0] == 0xE5 {
            hole_start.get_or_insert(i);
            lfn = None;
            continue;
        }
        if let Some(s) = hole_start.take() {
            holes.insert(s, i - s);
        }
        let attr = e[11];
        if attr & 0x3F == ATTR_LFN {
            let ord = e[0];
            let mut units = [0u16; 13];
            for (j, &off) in LFN_OFFSETS.iter().enumerate() {
                units[j] = u16::from_le_bytes([e[off], e[off + 1]]);
            }
            let n = ord & 0x1F;
            if ord & 0x40 != 0 && (1..=20).contains(&n) {
                lfn = Some((i, n - 1, e[13], vec![units]));
            } else if let Some((first, expect, sum, mut parts)) = lfn.take() {
                if n == expect && n >= 1 && e[13] == sum && ord & 0x40 == 0 {
                    parts.push(units);
                    lfn = Some((first, n - 1, sum, parts));
                }
            }
            continue;
        }
        let mut raw = [0u8; 32];
        raw.copy_from_slice(e);
        let mut sfn = [0u8; 11];
        sfn.copy_from_slice(&e[..11]);
        let pending = lfn.take();
        let kind = if attr & ATTR_VOLUME != 0 {
            Kind::Label
        } else if &sfn == b".          " {
            Kind::Dot
        } else if &sfn == b"..         " {
            Kind::DotDot
        } else {
            Kind::Normal
        };
        let mut first_slot = i;
        let mut name = None;
        if let (Some((first, 0, sum, parts)), Kind::Normal) = (pending, kind) {
            if sum == lfn_checksum(&sfn) {
                let mut units: Vec<u16> = Vec::with_capacity(parts.len() * 13);
                // Parts were collected highest ordinal first.
                for p in parts.iter().rev() {
                    units.extend_from_slice(p);
                }
                if let Some(z) = units.iter().position(|&u| u == 0) {
                    units.truncate(z);
                }
                if let Ok(s) = String::from_utf16(&units) {
                    if !s.is_empty() && !s.contains(['/', '\0']) {
                        name = Some(s);
                        first_slot = first;
                    }
                }
            }
        }
        let name = name.unwrap_or_else(|| sfn_display(&sfn, e[12]));
        out.push(Parsed {
            name,
            sfn,
            slot: i,
            first_slot,
            raw,
            kind,
        });
    }
    if let Some(s) = hole_start {
        holes.insert(s, end - s);
    }
    (out, end, holes)
}

/// Where a new entry set goes (see [`Dir::plan_slots`]).
pub(crate) struct SlotPlan {
    pub at: usize,
    /// The deleted run it is carved from, if any.
    pub hole: Option<(usize, usize)>,
}

/// A directory held in memory.
///
/// A card may hold tens of thousands of photos in one folder, and every loaded folder stays
/// cached, so the indexes hold no names: the name index maps a hash of the folded name to
/// the slot, and a hit is confirmed against the entry itself.
pub(crate) struct Dir {
    pub clusters: Vec<u32>,
    /// Byte offset of the fixed root region, if this is one.
    pub fixed: Option<u64>,
    pub data: Vec<u8>,
    /// `fold_hash(name)` → SFN slot ...
    long: HashMap<u64, u32>,
    /// ... and folded name → SFN slot for names whose hash another name already has.
    long_collided: HashMap<String, u32>,
    /// Short name → SFN slot.
    short: HashMap<[u8; 11], u32>,
    /// SFN slot → how many LFN slots precede it in its entry set (0 if none).
    lfn_slots: Vec<u8>,
    pub end: usize,
    /// Runs of deleted slots before `end`: start → length ...
    holes: BTreeMap<usize, usize>,
    /// ... and length → starts, so a fitting run is found without scanning them all.
    by_len: BTreeMap<usize, BTreeSet<usize>>,
    /// When the directory was last used (the file system's use count).
    pub used: u64,
}

/// Where a long name is indexed.
enum LongSlot {
    Hashed(u64),
    Collided(String),
}

impl Dir {
    pub fn new(clusters: Vec<u32>, fixed: Option<u64>, data: Vec<u8>) -> Dir {
        let (entries, end, holes) = parse(&data);
        let mut d = Dir {
            clusters,
            fixed,
            long: HashMap::with_capacity(entries.len()),
            long_collided: HashMap::new(),
            short: HashMap::with_capacity(entries.len()),
            lfn_slots: vec![0; data.len() / 32],
            data,
            end,
            holes: BTreeMap::new(),
            by_len: BTreeMap::new(),
            used: 0,
        };
        for (s, len) in holes {
            d.insert_hole(s, len);
        }
        for p in entries {
            if p.kind == Kind::Normal {
                d.index(&p.name, p.sfn, p.slot, p.first_slot);
            }
        }
        d
    }

    /// Where the long name `name` (compared folded) is indexed, and its SFN slot.
    fn find_long(&self, name: &str) -> Option<(LongSlot, usize)> {
        let h = fold_hash(name);
        if let Some(&slot) = self.long.get(&h) {
            let slot = slot as usize;
            if self
                .parsed_at(slot)
                .is_some_and(|p| same_folded(&p.name, name))
            {
                return Some((LongSlot::Hashed(h), slot));
            }
        }
        if self.long_collided.is_empty() {
            return None;
        }
        let key = fold(name);
        let slot = *self.long_collided.get(&key)? as usize;
        Some((LongSlot::Collided(key), slot))
    }

    /// SFN slot of the entry whose long name (or displayed short name) is `name`, folded.
    pub fn lookup_long(&self, name: &str) -> Option<usize> {
        self.find_long(name).map(|(_, slot)| slot)
    }

    pub fn lookup_short(&self, sfn: &[u8; 11]) -> Option<usize> {
        self.short.get(sfn).map(|&s| s as usize)
    }

    /// Bytes the cached directory takes, roughly: its entries and its indexes.
    pub fn footprint(&self) -> usize {
        // A hash table entry: key, value and a control byte.
        let table = |entries: usize, entry: usize| entries * (entry + 1);
        self.data.capacity()
            + table(self.long.capacity(), 16)
            + table(self.short.capacity(), 16)
            + self.lfn_slots.capacity()
            + self.clusters.capacity() * 4
    }

    /// The directory holds no entries besides `.` and `..`.
    pub fn is_empty(&self) -> bool {
        self.long.is_empty() && self.long_collided.is_empty()
    }

    pub fn index(&mut self, name: &str, sfn: [u8; 11], slot: usize, first: usize) {
        // Slots are bounded by MAX_DIR_ENTRIES, LFN runs by 20 slots.
        let n = slot + 1;
        if self.lfn_slots.len() < n {
            self.lfn_slots.resize(n, 0);
        }
        self.lfn_slots[slot] = (slot - first) as u8;
        match self.find_long(name) {
            // A second entry of the same name (a corrupt directory): the later one wins.
            Some((LongSlot::Hashed(h), _)) => {
                self.long.insert(h, slot as u32);
            }
            Some((LongSlot::Collided(k), _)) => {
                self.long_collided.insert(k, slot as u32);
            }
            None => match self.long.entry(fold_hash(name)) {
                Entry::Vacant(v) => {
                    v.insert(slot as u32);
                }
                Entry::Occupied(_) => {
                    self.long_collided.insert(fold(name), slot as u32);
                }
            },
        }
        self.short.insert(sfn, slot as u32);
    }

    pub fn unindex(&mut self, name: &str, sfn: &[u8; 11], slot: usize) {
        match self.find_long(name) {
            Some((LongSlot::Hashed(h), s)) if s == slot => {
                self.long.remove(&h);
            }
            Some((LongSlot::Collided(k), s)) if s == slot => {
                self.long_collided.remove(&k);
            }
            _ => {}
        }
        if self.short.get(sfn) == Some(&(slot as u32)) {
            self.short.remove(sfn);
        }
        if let Some(n) = self.lfn_slots.get_mut(slot) {
            *n = 0;
        }
    }

    pub fn slots(&self) -> usize {
        self.data.len() / 32
    }

    pub fn entry(&self, slot: usize) -> Option<[u8; 32]> {
        let mut e = [0u8; 32];
        e.copy_from_slice(self.data.get(slot * 32..slot * 32 + 32)?);
        Some(e)
    }

    /// Parse the entry set whose SFN is at `slot` (long name included).
    pub fn parsed_at(&self, slot: usize) -> Option<Parsed> {
        let first = slot - usize::from(self.lfn_slots.get(slot).copied().unwrap_or(0));
        let bytes = self.data.get(first * 32..slot * 32 + 32)?;
        let (mut v, _, _) = parse(bytes);
        let mut p = v.pop()?;
        p.slot = slot;
        p.first_slot = first;
        Some(p)
    }

    /// Slots per cluster, or None for the fixed root (written in one piece anyway).
    fn per_cluster(&self, geo_cluster_bytes: usize) -> Option<usize> {
        if self.fixed.is_some() {
            None
        } else {
            Some(geo_cluster_bytes / 32)
        }
    }

    /// Where `n` consecutive free slots would go: first fit among deleted runs, else at the
    /// end. An entry set is kept inside one cluster (so it is written with one write and a
    /// crash cannot leave half of it) unless it is longer than a cluster. `None` means the
    /// directory must grow first.
    pub fn plan_slots(&self, n: usize, cluster_bytes: usize) -> Option<SlotPlan> {
        let per = self.per_cluster(cluster_bytes).filter(|&p| n <= p);
        let fit = |start: usize| -> usize {
            match per {
                Some(p) if start / p != (start + n - 1) / p => (start / p + 1) * p,
                _ => start,
            }
        };
        // Best fit: the shortest runs that are long enough, lowest address first.
        for (&len, starts) in self.by_len.range(n..) {
            for &s in starts {
                let at = fit(s);
                if at + n <= s + len {
                    return Some(SlotPlan {
                        at,
                        hole: Some((s, len)),
                    });
                }
            }
        }
        let at = fit(self.end);
        if at + n <= self.slots() {
            return Some(SlotPlan { at, hole: None });
        }
        None
    }

    /// Take the slots of a plan. Returns the range of padding slots at the old end that
    /// the caller must mark deleted (0xE5) and write before the entry itself.
    pub fn take_slots(&mut self, plan: &SlotPlan, n: usize) -> Option<(usize, usize)> {
        match plan.hole {
            Some((s, len)) => {
                self.remove_hole(s);
                if plan.at > s {
                    self.insert_hole(s, plan.at - s);
                }
                if plan.at + n < s + len {
                    self.insert_hole(plan.at + n, s + len - plan.at - n);
                }
                None
            }
            None => {
                let pad = (self.end < plan.at).then_some((self.end, plan.at));
                if let Some((a, b)) = pad {
                    for i in a..b {
                        self.data[i * 32] = 0xE5;
                    }
                    self.add_hole(a, b - a);
                }
                self.end = plan.at + n;
                pad
            }
        }
    }

    /// Record slots `[s, s+n)` as deleted, merged with neighbouring runs.
    pub fn add_hole(&mut self, s: usize, n: usize) {
        let mut start = s;
        let mut len = n;
        if let Some((&ps, &pl)) = self.holes.range(..s).next_back() {
            if ps + pl == s {
                self.remove_hole(ps);
                start = ps;
                len += pl;
            }
        }
        if let Some(&nl) = self.holes.get(&(s + n)) {
            self.remove_hole(s + n);
            len += nl;
        }
        self.insert_hole(start, len);
    }

    fn insert_hole(&mut self, s: usize, len: usize) {
        self.holes.insert(s, len);
        self.by_len.entry(len).or_default().insert(s);
    }

    fn remove_hole(&mut self, s: usize) {
        if let Some(len) = self.holes.remove(&s) {
            if let Some(set) = self.by_len.get_mut(&len) {
                set.remove(&s);
                if set.is_empty() {
                    self.by_len.remove(&len);
                }
            }
        }
    }

    /// Byte offset on the volume of slot `slot`.
    pub fn slot_offset(&self, geo: &Geometry, slot: usize) -> Option<u64> {
        let byte = (slot as u64) * 32;
        if let Some(base) = self.fixed {
            return Some(base + byte);
        }
        let cb = u64::from(geo.bytes_per_cluster);
        let c = *self.clusters.get((byte / cb) as usize)?;
        Some(geo.cluster_offset(c) + byte % cb)
    }

    /// Write slots `[start, end)` to the storage, one write per cluster touched.
    pub fn write_slots<S: Write + Seek>(
        &self,
        storage: &mut S,
        geo: &Geometry,
        start: usize,
        end: usize,
    ) -> Result<()> {
        let cb = geo.bytes_per_cluster as usize;
        let mut b = start * 32;
        let e = end * 32;
        while b < e {
            let chunk_end = if self.fixed.is_some() {
                e
            } else {
                ((b / cb + 1) * cb).min(e)
            };
            let off = self
                .slot_offset(geo, b / 32)
                .ok_or_else(|| crate::boot::corrupt("directory slot past its clusters"))?;
            storage.seek(SeekFrom::Start(off))?;
            storage.write_all(&self.data[b..chunk_end])?;
            b = chunk_end;
        }
        Ok(())
    }
}
