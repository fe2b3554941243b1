//! The manifest on the card: `SHA256SUMS` at the root (checkable with `sha256sum -c`, no
//! sdexport needed) and `.sdexport/manifest.jsonl` with one record per file. Format:
//! docs/MANIFEST.md.
//!
//! Both files are replaced, never edited in place, with a protocol that survives a crash at
//! any point: write `NAME.new`, flush, read it back and compare its hash, remove `NAME`,
//! rename `NAME.new` to `NAME`. A `.new` is only ever complete and verified when `NAME` is
//! missing, so [`recover`] at the start of the next run knows which one to keep.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::io::{BufRead, Read, Write};

use serde::{Deserialize, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::storage::names::{fold_case, fold_hash, same_folded};
use crate::storage::{StorageError, StorageResult, Volume};

pub const SUMS_PATH: &str = "SHA256SUMS";
pub const STATE_DIR: &str = ".sdexport";
pub const MANIFEST_PATH: &str = ".sdexport/manifest.jsonl";
pub const NEW_SUFFIX: &str = ".new";

/// One file on the card, as recorded when its copy was verified.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Record {
    /// Path on the card, relative to its root, `/`-separated.
    pub path: String,
    pub size: u64,
    /// Lower-case hex SHA-256 of the content.
    pub sha256: String,
    /// `photo`, `video`, `raw`, `other` or `contacts`.
    #[serde(default)]
    pub kind: Option<String>,
    /// Capture time as local date-time (`2024-01-31T23:59:59`), with offset when known.
    #[serde(default)]
    pub captured: Option<String>,
    /// Where `captured` came from: `exif`, `quicktime`, `filename` or `mtime`.
    #[serde(default)]
    pub captured_from: Option<String>,
    /// The source file's path on the phone (relative to the phone root), or the input
    /// files for contacts.
    #[serde(default)]
    pub source_path: Option<String>,
    /// The phone or source volume as described when the copy was made.
    #[serde(default)]
    pub source_device: Option<String>,
    /// The original file name when the card holds it under another (sanitised) name.
    #[serde(default)]
    pub original_name: Option<String>,
    /// Modified time of the source, RFC 3339.
    #[serde(default)]
    pub modified: Option<String>,
    /// Files that belong together (Live Photo, RAW + JPEG) share a pair id.
    #[serde(default)]
    pub pair_id: Option<String>,
    /// When the copy was verified, RFC 3339.
    #[serde(default)]
    pub verified_at: Option<String>,
    pub run_id: String,
    pub tool_version: String,
}

impl Serialize for Record {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.line().serialize(s)
    }
}

impl Record {
    fn line(&self) -> Line<'_> {
        Line {
            path: &self.path,
            size: self.size,
            sha256: Sha::Text(&self.sha256),
            kind: self.kind.as_deref(),
            captured: self.captured.as_deref(),
            captured_from: self.captured_from.as_deref(),
            source_path: self.source_path.as_deref(),
            source_device: self.source_device.as_deref(),
            original_name: self.original_name.as_deref(),
            modified: self.modified.as_deref(),
            pair_id: self.pair_id.as_deref(),
            verified_at: self.verified_at.as_deref(),
            run_id: &self.run_id,
            tool_version: &self.tool_version,
        }
    }
}

/// A record's fields, borrowed: the one definition of a manifest line (field order and
/// omitted fields), used for [`Record`] and for the records stored in a [`Manifest`].
#[derive(Serialize)]
struct Line<'a> {
    path: &'a str,
    size: u64,
    sha256: Sha<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    captured: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    captured_from: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_path: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_device: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    original_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    modified: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pair_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    verified_at: Option<&'a str>,
    run_id: &'a str,
    tool_version: &'a str,
}

impl Line<'_> {
    fn to_record(&self) -> Record {
        let own = |s: Option<&str>| s.map(str::to_string);
        Record {
            path: self.path.to_string(),
            size: self.size,
            sha256: self.sha256.to_string(),
            kind: own(self.kind),
            captured: own(self.captured),
            captured_from: own(self.captured_from),
            source_path: own(self.source_path),
            source_device: own(self.source_device),
            original_name: own(self.original_name),
            modified: own(self.modified),
            pair_id: own(self.pair_id),
            verified_at: own(self.verified_at),
            run_id: self.run_id.to_string(),
            tool_version: self.tool_version.to_string(),
        }
    }

    /// The `SHA256SUMS` line. A path with a backslash or newline uses GNU coreutils'
    /// escaped form (leading `\`).
    fn write_sum(&self, w: &mut dyn Write) -> std::io::Result<()> {
        let path = self.path;
        if path.contains('\\') || path.contains('\n') || path.contains('\r') {
            let escaped = path
                .replace('\\', "\\\\")
                .replace('\n', "\\n")
                .replace('\r', "\\r");
            writeln!(w, "\\{}  {}", self.sha256, escaped)
        } else {
            writeln!(w, "{}  {}", self.sha256, path)
        }
    }
}

/// A SHA-256 as recorded: 32 bytes when the record held canonical lower-case hex (nearly
/// always), else the text exactly as read, so that it is written back unchanged.
#[derive(Clone, Copy)]
enum Sha<'a> {
    Bytes(&'a [u8; 32]),
    Text(&'a str),
}

impl std::fmt::Display for Sha<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Sha::Bytes(b) => f.write_str(hex_str(&mut [0; 64], b)),
            Sha::Text(t) => f.write_str(t),
        }
    }
}

impl Serialize for Sha<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Sha::Bytes(b) => s.serialize_str(hex_str(&mut [0; 64], b)),
            Sha::Text(t) => s.serialize_str(t),
        }
    }
}

/// The 32 bytes of `text` if it is exactly 64 lower-case hex digits (the only form that
/// [`hex`] gives back unchanged).
pub fn parse_hex(text: &str) -> Option<[u8; 32]> {
    let digits = text.as_bytes();
    if digits.len() != 64 {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *o = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(out)
}

/// Lower-case hex of 32 bytes into `buf`, without allocating.
fn hex_str<'b>(buf: &'b mut [u8; 64], bytes: &[u8; 32]) -> &'b str {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (pair, b) in buf.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 15)];
    }
    std::str::from_utf8(buf).unwrap_or_default()
}

/// The index's keys are already hashes ([`fold_hash`]): hashing them again would only cost.
#[derive(Default, Clone, Copy)]
struct PassThrough(u64);
impl std::hash::Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// All records, keyed by the case-folded path so a card's case-insensitive names merge.
///
/// A card holds one record per file, so this is the largest thing a run keeps in memory
/// (100,000 photos → 100,000 records). Records are therefore stored encoded, one after
/// the other in one buffer (about 120 bytes for a photo instead of about 700 as a
/// [`Record`]): the SHA-256 as 32 bytes, strings that repeat across records (device,
/// run id, version, verification time, kind) as numbers into a table of distinct values,
/// and a `source_path` equal to `path` as a flag. The index maps a hash of the folded path
/// to the record's offset; the rare record whose hash collides with another path's goes
/// into a second, exact index.
#[derive(Debug, Clone, Default)]
pub struct Manifest {
    /// Encoded records; records replaced or removed leave garbage until [`Self::compact`].
    data: Vec<u8>,
    garbage: usize,
    index: HashMap<u64, usize, BuildHasherDefault<PassThrough>>,
    /// Folded path → offset, for paths whose [`fold_hash`] collides with an indexed one.
    collided: HashMap<String, usize>,
    /// The distinct values of the repeated fields, and their numbers.
    strings: Vec<Box<str>>,
    string_ids: HashMap<Box<str>, u32>,
    /// Lines of manifest.jsonl that could not be read (kept out, reported).
    pub unreadable_lines: Vec<usize>,
}

/// Where a record is indexed.
enum Slot {
    Hashed(u64),
    Collided(String),
}

// Presence bits of an encoded record, in field order.
const HAS_KIND: u16 = 1;
const HAS_CAPTURED: u16 = 1 << 1;
const HAS_CAPTURED_FROM: u16 = 1 << 2;
const HAS_SOURCE_PATH: u16 = 1 << 3;
const HAS_SOURCE_DEVICE: u16 = 1 << 4;
const HAS_ORIGINAL_NAME: u16 = 1 << 5;
const HAS_MODIFIED: u16 = 1 << 6;
const HAS_PAIR_ID: u16 = 1 << 7;
const HAS_VERIFIED_AT: u16 = 1 << 8;
/// The SHA-256 is stored as 32 bytes (else as text).
const SHA_BYTES: u16 = 1 << 9;
/// `source_path` is present and equal to `path` (stored once).
const SOURCE_IS_PATH: u16 = 1 << 10;

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push(n as u8 | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// Reads an encoded record. The buffer only ever holds what `encode` wrote, so running
/// out of bytes or finding invalid UTF-8 cannot happen; they give empty values rather
/// than a panic.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> u64 {
        let mut n = 0u64;
        let mut shift = 0;
        while let Some(&b) = self.data.get(self.pos) {
            self.pos += 1;
            n |= u64::from(b & 0x7f) << shift;
            shift += 7;
            if b < 0x80 || shift >= 64 {
                break;
            }
        }
        n
    }
    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let end = (self.pos + n).min(self.data.len());
        let b = &self.data[self.pos..end];
        self.pos = end;
        b
    }
    fn str(&mut self) -> &'a str {
        let n = self.varint() as usize;
        std::str::from_utf8(self.bytes(n)).unwrap_or_default()
    }
}

impl Manifest {
    pub fn is_empty(&self) -> bool {
        self.index.is_empty() && self.collided.is_empty()
    }
    pub fn len(&self) -> usize {
        self.index.len() + self.collided.len()
    }

    /// Every record, in the order of their case-folded paths.
    pub fn records(&self) -> Vec<Record> {
        let mut offsets = self.offsets();
        offsets.sort_by_cached_key(|&o| fold_case(self.path_at(o)));
        offsets
            .iter()
            .map(|&o| self.line_at(o).to_record())
            .collect()
    }

    pub fn get(&self, path: &str) -> Option<Record> {
        let (_, at) = self.find(path)?;
        Some(self.line_at(at).to_record())
    }

    /// Add or replace the record for `record.path`.
    pub fn insert(&mut self, record: Record) {
        self.insert_line(&record.line());
    }

    pub fn remove(&mut self, path: &str) -> Option<Record> {
        let (slot, at) = self.find(path)?;
        match slot {
            Slot::Hashed(h) => self.index.remove(&h),
            Slot::Collided(k) => self.collided.remove(&k),
        };
        let record = self.line_at(at).to_record();
        self.garbage += self.record_len(at);
        self.compact_if_worth_it();
        Some(record)
    }

    /// Parse manifest.jsonl; unreadable lines are skipped and counted, never fatal.
    pub fn parse(text: &str) -> Manifest {
        let mut m = Manifest::default();
        for (i, line) in text.lines().enumerate() {
            m.parse_line(i + 1, line);
        }
        m
    }

    /// Add the record on line number `n` (counted from 1), or count it as unreadable.
    fn parse_line(&mut self, n: usize, line: &str) {
        if line.trim().is_empty() {
            return;
        }
        match serde_json::from_str::<Record>(line) {
            Ok(r) => self.insert(r),
            Err(_) => self.unreadable_lines.push(n),
        }
    }

    /// manifest.jsonl bytes: one record per line, sorted by path.
    pub fn to_jsonl(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Writing into a Vec cannot fail.
        let _ = self.write_jsonl(&self.sorted(), &mut out);
        out
    }

    /// SHA256SUMS bytes: `<hex>  <path>` lines, sorted by path, LF.
    pub fn to_sha256sums(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let _ = self.write_sha256sums(&self.sorted(), &mut out);
        out
    }

    /// Offsets of the records in the order of their paths.
    fn sorted(&self) -> Vec<usize> {
        let mut offsets = self.offsets();
        // Byte order of UTF-8 is the order of the strings.
        offsets.sort_unstable_by(|&a, &b| self.path_bytes_at(a).cmp(self.path_bytes_at(b)));
        offsets
    }

    fn write_jsonl(&self, order: &[usize], w: &mut dyn Write) -> std::io::Result<()> {
        for &at in order {
            serde_json::to_writer(&mut *w, &self.line_at(at))?;
            w.write_all(b"\n")?;
        }
        Ok(())
    }

    fn write_sha256sums(&self, order: &[usize], w: &mut dyn Write) -> std::io::Result<()> {
        for &at in order {
            self.line_at(at).write_sum(w)?;
        }
        Ok(())
    }

    fn offsets(&self) -> Vec<usize> {
        self.index
            .values()
            .chain(self.collided.values())
            .copied()
            .collect()
    }

    /// The record for `path` (case-folded): where it is indexed and its offset.
    fn find(&self, path: &str) -> Option<(Slot, usize)> {
        let h = fold_hash(path);
        if let Some(&at) = self.index.get(&h) {
            if same_folded(self.path_at(at), path) {
                return Some((Slot::Hashed(h), at));
            }
        }
        if self.collided.is_empty() {
            return None;
        }
        let key = fold_case(path);
        let at = *self.collided.get(&key)?;
        Some((Slot::Collided(key), at))
    }

    fn insert_line(&mut self, line: &Line<'_>) {
        let at = self.encode(line);
        match self.find(line.path) {
            Some((slot, old)) => {
                self.garbage += self.record_len(old);
                match slot {
                    Slot::Hashed(h) => self.index.insert(h, at),
                    Slot::Collided(k) => self.collided.insert(k, at),
                };
                self.compact_if_worth_it();
            }
            None => {
                let h = fold_hash(line.path);
                match self.index.entry(h) {
                    Entry::Occupied(_) => {
                        self.collided.insert(fold_case(line.path), at);
                    }
                    Entry::Vacant(v) => {
                        v.insert(at);
                    }
                }
            }
        }
    }

    fn intern(&mut self, s: &str) -> u64 {
        if let Some(&id) = self.string_ids.get(s) {
            return u64::from(id);
        }
        let id = self.strings.len() as u32;
        self.strings.push(s.into());
        self.string_ids.insert(s.into(), id);
        u64::from(id)
    }

    fn string(&self, id: u64) -> &str {
        self.strings.get(id as usize).map_or("", |s| s)
    }

    /// Append `line` encoded; its offset. Layout: length of the rest, path, presence bits,
    /// size, SHA-256, then the present fields in field order (repeated ones as numbers).
    fn encode(&mut self, line: &Line<'_>) -> usize {
        let mut flags = 0u16;
        let mut set = |bit: u16, present: bool| {
            if present {
                flags |= bit;
            }
        };
        set(HAS_KIND, line.kind.is_some());
        set(HAS_CAPTURED, line.captured.is_some());
        set(HAS_CAPTURED_FROM, line.captured_from.is_some());
        set(HAS_SOURCE_PATH, line.source_path.is_some());
        set(HAS_SOURCE_DEVICE, line.source_device.is_some());
        set(HAS_ORIGINAL_NAME, line.original_name.is_some());
        set(HAS_MODIFIED, line.modified.is_some());
        set(HAS_PAIR_ID, line.pair_id.is_some());
        set(HAS_VERIFIED_AT, line.verified_at.is_some());
        set(SOURCE_IS_PATH, line.source_path == Some(line.path));
        let sha = match line.sha256 {
            Sha::Bytes(b) => Ok(*b),
            Sha::Text(t) => parse_hex(t).ok_or(t),
        };
        set(SHA_BYTES, sha.is_ok());

        let mut rec = Vec::with_capacity(128);
        put_str(&mut rec, line.path);
        rec.extend_from_slice(&flags.to_le_bytes());
        put_varint(&mut rec, line.size);
        match sha {
            Ok(b) => rec.extend_from_slice(&b),
            Err(t) => put_str(&mut rec, t),
        }
        for (i, field) in [
            line.kind,
            line.captured,
            line.captured_from,
            line.source_path,
            line.source_device,
            line.original_name,
            line.modified,
            line.pair_id,
            line.verified_at,
            Some(line.run_id),
            Some(line.tool_version),
        ]
        .into_iter()
        .enumerate()
        {
            let Some(value) = field else { continue };
            match i {
                0 | 2 | 4 | 8 | 9 | 10 => {
                    let id = self.intern(value);
                    put_varint(&mut rec, id);
                }
                3 if flags & SOURCE_IS_PATH != 0 => {}
                _ => put_str(&mut rec, value),
            }
        }
        let at = self.data.len();
        put_varint(&mut self.data, rec.len() as u64);
        self.data.extend_from_slice(&rec);
        at
    }

    /// Bytes taken by the record at `at`, its length prefix included.
    fn record_len(&self, at: usize) -> usize {
        let mut r = Reader {
            data: &self.data,
            pos: at,
        };
        let n = r.varint() as usize;
        r.pos - at + n
    }

    fn path_bytes_at(&self, at: usize) -> &[u8] {
        let mut r = Reader {
            data: &self.data,
            pos: at,
        };
        r.varint();
        let n = r.varint() as usize;
        r.bytes(n)
    }

    fn path_at(&self, at: usize) -> &str {
        std::str::from_utf8(self.path_bytes_at(at)).unwrap_or_default()
    }

    fn line_at(&self, at: usize) -> Line<'_> {
        let mut r = Reader {
            data: &self.data,
            pos: at,
        };
        r.varint();
        let path = r.str();
        let flags = match *r.bytes(2) {
            [lo, hi] => u16::from_le_bytes([lo, hi]),
            _ => 0,
        };
        let size = r.varint();
        let sha256 = if flags & SHA_BYTES != 0 {
            match <&[u8; 32]>::try_from(r.bytes(32)) {
                Ok(b) => Sha::Bytes(b),
                Err(_) => Sha::Text(""),
            }
        } else {
            Sha::Text(r.str())
        };
        let string =
            |r: &mut Reader<'_>, bit: u16| (flags & bit != 0).then(|| self.string(r.varint()));
        let kind = string(&mut r, HAS_KIND);
        let captured = (flags & HAS_CAPTURED != 0).then(|| r.str());
        let captured_from = string(&mut r, HAS_CAPTURED_FROM);
        let source_path = if flags & SOURCE_IS_PATH != 0 {
            Some(path)
        } else {
            (flags & HAS_SOURCE_PATH != 0).then(|| r.str())
        };
        let source_device = string(&mut r, HAS_SOURCE_DEVICE);
        let original_name = (flags & HAS_ORIGINAL_NAME != 0).then(|| r.str());
        let modified = (flags & HAS_MODIFIED != 0).then(|| r.str());
        let pair_id = (flags & HAS_PAIR_ID != 0).then(|| r.str());
        let verified_at = string(&mut r, HAS_VERIFIED_AT);
        let run_id = self.string(r.varint());
        let tool_version = self.string(r.varint());
        Line {
            path,
            size,
            sha256,
            kind,
            captured,
            captured_from,
            source_path,
            source_device,
            original_name,
            modified,
            pair_id,
            verified_at,
            run_id,
            tool_version,
        }
    }

    /// Drop the garbage of replaced and removed records once it is an eighth of the
    /// buffer: a run that re-verifies every file then holds at most 1.125 times the
    /// records, and moves each byte a bounded number of times.
    fn compact_if_worth_it(&mut self) {
        if self.garbage < 64 << 10 || self.garbage * 8 < self.data.len() {
            return;
        }
        let mut old = self.offsets();
        old.sort_unstable();
        let mut new = Vec::with_capacity(old.len());
        let mut end = 0;
        for &at in &old {
            let n = self.record_len(at);
            self.data.copy_within(at..at + n, end);
            new.push(end);
            end += n;
        }
        self.data.truncate(end);
        self.garbage = 0;
        let moved = |at: &mut usize| {
            if let Ok(i) = old.binary_search(at) {
                *at = new[i];
            }
        };
        self.index.values_mut().for_each(moved);
        self.collided.values_mut().for_each(moved);
    }
}

/// Parse a SHA256SUMS file into `(path, hex)` pairs (for cards whose manifest.jsonl is
/// gone, and for the tests).
pub fn parse_sha256sums(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let (escaped, line) = match line.strip_prefix('\\') {
            Some(rest) => (true, rest),
            None => (false, line),
        };
        let Some((hex, path)) = line.split_once("  ").or_else(|| line.split_once(" *")) else {
            continue;
        };
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        let path = if escaped {
            path.replace("\\n", "\n")
                .replace("\\r", "\r")
                .replace("\\\\", "\\")
        } else {
            path.to_string()
        };
        out.push((path, hex.to_ascii_lowercase()));
    }
    out
}

/// Finish an interrupted replacement: a `.new` whose target is missing is complete and
/// verified (the target is removed only after that), so it becomes the target; a `.new`
/// beside its target may be partial and is removed.
pub fn recover(card: &mut dyn Volume) -> StorageResult<()> {
    for path in [SUMS_PATH, MANIFEST_PATH] {
        let new = format!("{path}{NEW_SUFFIX}");
        if card.stat(&new)?.is_none() {
            continue;
        }
        if card.stat(path)?.is_some() {
            card.remove_file(&new)?;
        } else {
            card.rename_new(&new, path)?;
        }
    }
    Ok(())
}

/// Load the card's manifest (empty when there is none). Falls back to SHA256SUMS when
/// manifest.jsonl is missing, so a card written by an older run or edited by hand still
/// verifies.
pub fn load(card: &mut dyn Volume) -> StorageResult<Manifest> {
    if card.stat(MANIFEST_PATH)?.is_some() {
        // Line by line: the file of a card with 100,000 photos is 30 MB.
        let mut m = Manifest::default();
        let mut r = std::io::BufReader::with_capacity(1 << 16, card.open_read(MANIFEST_PATH)?);
        let mut line = Vec::new();
        let mut n = 0;
        loop {
            line.clear();
            let got = r
                .read_until(b'\n', &mut line)
                .map_err(|e| StorageError::io(MANIFEST_PATH, e))?;
            if got == 0 {
                break;
            }
            n += 1;
            // A line ending never falls inside an invalid UTF-8 sequence, so this reads
            // each line as reading the whole file lossily would.
            m.parse_line(n, &String::from_utf8_lossy(&line));
        }
        return Ok(m);
    }
    let mut m = Manifest::default();
    if let Some(text) = read_text(card, SUMS_PATH)? {
        for (path, sha256) in parse_sha256sums(&text) {
            let size = card.stat(&path)?.map(|e| e.size).unwrap_or(0);
            m.insert(Record {
                path,
                size,
                sha256,
                run_id: String::new(),
                tool_version: String::new(),
                ..Default::default()
            });
        }
    }
    Ok(m)
}

fn read_text(card: &mut dyn Volume, path: &str) -> StorageResult<Option<String>> {
    if card.stat(path)?.is_none() {
        return Ok(None);
    }
    let mut r = card.open_read(path)?;
    let mut buf = Vec::new();
    r.read_to_end(&mut buf)
        .map_err(|e| StorageError::io(path, e))?;
    Ok(Some(match String::from_utf8(buf) {
        Ok(text) => text,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }))
}

/// Replace `path` on the card with what `fill` writes, through the crash-safe replacement
/// protocol above, with read-back verification of the new content.
pub fn replace_file(card: &mut dyn Volume, path: &str, fill: Fill<'_>) -> StorageResult<()> {
    let new = format!("{path}{NEW_SUFFIX}");
    write_verified_with(card, &new, fill)?;
    if card.stat(path)?.is_some() {
        card.remove_file(path)?;
    }
    card.rename_new(&new, path)?;
    card.sync()
}

/// Writes a file's content, a piece at a time.
pub type Fill<'a> = &'a mut dyn FnMut(&mut dyn Write) -> std::io::Result<()>;

/// Write `bytes` as a new file at `path`, verified: see [`write_verified_with`].
pub fn write_verified(card: &mut dyn Volume, path: &str, bytes: &[u8]) -> StorageResult<()> {
    write_verified_with(card, path, &mut |w| w.write_all(bytes))
}

/// Hashes what passes through it.
struct Hashing<W> {
    inner: W,
    hash: Sha256,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Write a new file at `path` with what `fill` writes (a stale file of ours there is removed
/// first), hashing exactly the bytes handed to the card; flush, drop caches, read it back
/// from the card and compare hashes. On a mismatch the file is removed and an error says
/// the card may be failing or counterfeit. Nothing is held in memory but a buffer.
pub fn write_verified_with(card: &mut dyn Volume, path: &str, fill: Fill<'_>) -> StorageResult<()> {
    let parent = crate::storage::parent(path);
    if !parent.is_empty() {
        card.create_dir_all(parent)?;
    }
    if card.stat(path)?.is_some() {
        card.remove_file(path)?;
    }
    let want = {
        let io = |e| StorageError::io(path, e);
        let sink = card.create_new(path)?;
        // Buffered before the hash and the card: a manifest is written a field at a time.
        let mut w = std::io::BufWriter::with_capacity(
            1 << 16,
            Hashing {
                inner: sink,
                hash: Sha256::new(),
            },
        );
        fill(&mut w).map_err(io)?;
        let Hashing { inner, hash } = w.into_inner().map_err(|e| io(e.into_error()))?;
        inner.finish(None)?;
        hash.finalize()
    };
    card.sync()?;
    card.drop_caches()?;
    let got = {
        let mut r = card.open_read(path)?;
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = r.read(&mut buf).map_err(|e| StorageError::io(path, e))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        h.finalize()
    };
    if got != want {
        let _ = card.remove_file(path);
        return Err(StorageError::Other(format!(
            "{path}: the card returned different bytes than were written (read-back check failed); the card may be failing or counterfeit"
        )));
    }
    Ok(())
}

/// Write both manifest files, a record at a time.
pub fn save(card: &mut dyn Volume, manifest: &Manifest) -> StorageResult<()> {
    let order = manifest.sorted();
    replace_file(card, MANIFEST_PATH, &mut |w| {
        manifest.write_jsonl(&order, w)
    })?;
    replace_file(card, SUMS_PATH, &mut |w| {
        manifest.write_sha256sums(&order, w)
    })
}

/// Lower-case hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(path: &str, sha: char) -> Record {
        Record {
            path: path.into(),
            size: 1,
            sha256: sha.to_string().repeat(64),
            run_id: "r".into(),
            tool_version: "t".into(),
            ..Default::default()
        }
    }

    #[test]
    fn sums_round_trip_including_escaped_names() {
        let mut m = Manifest::default();
        m.insert(rec("DCIM/b.jpg", 'b'));
        m.insert(rec("DCIM/a\\x.jpg", 'a'));
        let text = String::from_utf8(m.to_sha256sums()).unwrap();
        assert!(text.starts_with("\\aaaa"), "{text}");
        let parsed = parse_sha256sums(&text);
        assert_eq!(parsed[0].0, "DCIM/a\\x.jpg");
        assert_eq!(parsed[1], ("DCIM/b.jpg".to_string(), "b".repeat(64)));
    }

    #[test]
    fn jsonl_round_trip_and_bad_lines_are_counted() {
        let mut m = Manifest::default();
        m.insert(rec("x", 'c'));
        let mut text = String::from_utf8(m.to_jsonl()).unwrap();
        text.push_str("{not json\n");
        let back = Manifest::parse(&text);
        assert_eq!(back.len(), 1);
        assert_eq!(back.unreadable_lines, vec![2]);
        assert_eq!(back.get("X").unwrap().sha256, "c".repeat(64));
    }

    fn full(path: &str, sha256: &str) -> Record {
        Record {
            path: path.into(),
            size: 123_456_789,
            sha256: sha256.into(),
            kind: Some("photo".into()),
            captured: Some("2024-01-31T23:59:59+01:00".into()),
            captured_from: Some("exif".into()),
            source_path: Some(path.into()),
            source_device: Some("/media/phone (directory on ext4)".into()),
            original_name: Some("é:x.jpg".into()),
            modified: Some("2024-02-01T00:00:00Z".into()),
            pair_id: Some("DCIM/IMG_1".into()),
            verified_at: Some("2024-11-25T15:30:12Z".into()),
            run_id: "20241125T153000Z-1a2b".into(),
            tool_version: "0.1.0".into(),
        }
    }

    #[test]
    fn stored_records_come_back_as_inserted() {
        let hex64 = "0123456789abcdef".repeat(4);
        let mut all = vec![
            full("DCIM/a.jpg", &hex64),
            // Not canonical hex: kept as text, byte for byte.
            full("DCIM/b.jpg", &hex64.to_uppercase()),
            full("DCIM/c.jpg", "not a hash"),
            Record {
                source_path: Some("elsewhere/c.jpg".into()),
                ..full("DCIM/d.jpg", &hex64)
            },
            rec("DCIM/e.jpg", 'e'),
        ];
        let mut m = Manifest::default();
        for r in &all {
            m.insert(r.clone());
        }
        for r in &all {
            assert_eq!(m.get(&r.path.to_uppercase()).as_ref(), Some(r));
        }
        all.sort_by(|a, b| a.path.cmp(&b.path));
        assert_eq!(m.records(), all);
        let mut want = String::new();
        for r in &all {
            want.push_str(&serde_json::to_string(r).unwrap());
            want.push('\n');
        }
        assert_eq!(String::from_utf8(m.to_jsonl()).unwrap(), want);
        assert!(want.contains(&format!("\"sha256\":\"{}\"", hex64.to_uppercase())));
    }

    #[test]
    fn replacing_and_removing_many_records_keeps_the_rest() {
        let mut m = Manifest::default();
        for round in 0..4 {
            for i in 0..3000 {
                let mut r = full(&format!("DCIM/{i:05}.jpg"), &"ab".repeat(32));
                r.run_id = format!("run {round}");
                m.insert(r);
            }
        }
        for i in (0..3000).step_by(3) {
            assert!(m.remove(&format!("dcim/{i:05}.JPG")).is_some());
        }
        assert_eq!(m.len(), 2000);
        assert!(m.garbage * 8 < m.data.len() || m.garbage < 64 << 10);
        for i in 0..3000 {
            let got = m.get(&format!("DCIM/{i:05}.jpg"));
            assert_eq!(got.is_some(), i % 3 != 0, "{i}");
            if let Some(r) = got {
                assert_eq!(r.run_id, "run 3");
                assert_eq!(
                    r,
                    Record {
                        run_id: "run 3".into(),
                        ..full(&format!("DCIM/{i:05}.jpg"), &"ab".repeat(32))
                    }
                );
            }
        }
    }

    #[test]
    fn colliding_hashes_are_told_apart() {
        let mut m = Manifest::default();
        m.insert(rec("a", '1'));
        // Force a collision: index "b" under the hash of "a" as the index would.
        let at = m.encode(&rec("b", '2').line());
        m.collided.insert(fold_case("b"), at);
        assert_eq!(m.get("A").unwrap().sha256, "1".repeat(64));
        assert_eq!(m.get("B").unwrap().sha256, "2".repeat(64));
        m.insert(rec("B", '3'));
        assert_eq!(m.len(), 2);
        assert_eq!(m.get("b").unwrap().path, "B");
        assert_eq!(m.remove("b").unwrap().sha256, "3".repeat(64));
        assert!(m.get("b").is_none());
        assert_eq!(m.get("a").unwrap().sha256, "1".repeat(64));
    }
}
