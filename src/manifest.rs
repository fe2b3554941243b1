//! The manifest on the card: `SHA256SUMS` at the root (checkable with `sha256sum -c`, no
//! sdexport needed) and `.sdexport/manifest.jsonl` with one record per file. Format:
//! docs/MANIFEST.md.
//!
//! Both files are replaced, never edited in place, with a protocol that survives a crash at
//! any point: write `NAME.new`, flush, read it back and compare its hash, remove `NAME`,
//! rename `NAME.new` to `NAME`. A `.new` is only ever complete and verified when `NAME` is
//! missing, so [`recover`] at the start of the next run knows which one to keep.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::storage::{StorageError, StorageResult, Volume};

pub const SUMS_PATH: &str = "SHA256SUMS";
pub const STATE_DIR: &str = ".sdexport";
pub const MANIFEST_PATH: &str = ".sdexport/manifest.jsonl";
pub const NEW_SUFFIX: &str = ".new";

/// One file on the card, as recorded when its copy was verified.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Path on the card, relative to its root, `/`-separated.
    pub path: String,
    pub size: u64,
    /// Lower-case hex SHA-256 of the content.
    pub sha256: String,
    /// `photo`, `video`, `raw`, `other` or `contacts`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Capture time as local date-time (`2024-01-31T23:59:59`), with offset when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub captured: Option<String>,
    /// Where `captured` came from: `exif`, `quicktime`, `filename` or `mtime`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub captured_from: Option<String>,
    /// The source file's path on the phone (relative to the phone root), or the input
    /// files for contacts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_path: Option<String>,
    /// The phone or source volume as described when the copy was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_device: Option<String>,
    /// The original file name when the card holds it under another (sanitised) name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_name: Option<String>,
    /// Modified time of the source, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified: Option<String>,
    /// Files that belong together (Live Photo, RAW + JPEG) share a pair id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pair_id: Option<String>,
    /// When the copy was verified, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_at: Option<String>,
    pub run_id: String,
    pub tool_version: String,
}

/// All records, keyed by the case-folded path so a card's case-insensitive names merge.
#[derive(Debug, Clone, Default)]
pub struct Manifest {
    records: BTreeMap<String, Record>,
    /// Lines of manifest.jsonl that could not be read (kept out, reported).
    pub unreadable_lines: Vec<usize>,
}

fn key(path: &str) -> String {
    crate::storage::names::fold_case(path)
}

impl Manifest {
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
    pub fn len(&self) -> usize {
        self.records.len()
    }
    pub fn records(&self) -> impl Iterator<Item = &Record> {
        self.records.values()
    }
    pub fn get(&self, path: &str) -> Option<&Record> {
        self.records.get(&key(path))
    }
    /// Add or replace the record for `record.path`.
    pub fn insert(&mut self, record: Record) {
        self.records.insert(key(&record.path), record);
    }
    pub fn remove(&mut self, path: &str) -> Option<Record> {
        self.records.remove(&key(path))
    }

    /// Parse manifest.jsonl; unreadable lines are skipped and counted, never fatal.
    pub fn parse(text: &str) -> Manifest {
        let mut m = Manifest::default();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Record>(line) {
                Ok(r) => m.insert(r),
                Err(_) => m.unreadable_lines.push(i + 1),
            }
        }
        m
    }

    /// manifest.jsonl bytes: one record per line, sorted by path.
    pub fn to_jsonl(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut recs: Vec<&Record> = self.records.values().collect();
        recs.sort_by(|a, b| a.path.cmp(&b.path));
        for r in recs {
            // Serialising a struct of strings and integers cannot fail.
            if let Ok(line) = serde_json::to_string(r) {
                out.extend_from_slice(line.as_bytes());
                out.push(b'\n');
            }
        }
        out
    }

    /// SHA256SUMS bytes: `<hex>  <path>` lines, sorted by path, LF. A path with a
    /// backslash or newline uses GNU coreutils' escaped form (leading `\`).
    pub fn to_sha256sums(&self) -> Vec<u8> {
        let mut recs: Vec<&Record> = self.records.values().collect();
        recs.sort_by(|a, b| a.path.cmp(&b.path));
        let mut out = String::new();
        for r in recs {
            if r.path.contains('\\') || r.path.contains('\n') || r.path.contains('\r') {
                let escaped = r
                    .path
                    .replace('\\', "\\\\")
                    .replace('\n', "\\n")
                    .replace('\r', "\\r");
                out.push_str(&format!("\\{}  {}\n", r.sha256, escaped));
            } else {
                out.push_str(&format!("{}  {}\n", r.sha256, r.path));
            }
        }
        out.into_bytes()
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
    if let Some(text) = read_text(card, MANIFEST_PATH)? {
        return Ok(Manifest::parse(&text));
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
    Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
}

/// Write `bytes` to `path` on the card through the crash-safe replacement protocol above,
/// with read-back verification of the new content.
pub fn replace_file(card: &mut dyn Volume, path: &str, bytes: &[u8]) -> StorageResult<()> {
    let new = format!("{path}{NEW_SUFFIX}");
    write_verified(card, &new, bytes)?;
    if card.stat(path)?.is_some() {
        card.remove_file(path)?;
    }
    card.rename_new(&new, path)?;
    card.sync()
}

/// Write `bytes` as a new file at `path` (a stale file of ours there is removed first), flush,
/// drop caches, read it back from the card and compare hashes. On a mismatch the file is
/// removed and an error says the card may be failing or counterfeit.
pub fn write_verified(card: &mut dyn Volume, path: &str, bytes: &[u8]) -> StorageResult<()> {
    let parent = crate::storage::parent(path);
    if !parent.is_empty() {
        card.create_dir_all(parent)?;
    }
    if card.stat(path)?.is_some() {
        card.remove_file(path)?;
    }
    {
        let mut sink = card.create_new(path)?;
        sink.write_all(bytes)
            .map_err(|e| StorageError::io(path, e))?;
        sink.finish(None)?;
    }
    card.sync()?;
    card.drop_caches()?;
    let want = hex(&Sha256::digest(bytes));
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
        hex(&h.finalize())
    };
    if got != want {
        let _ = card.remove_file(path);
        return Err(StorageError::Other(format!(
            "{path}: the card returned different bytes than were written (read-back check failed); the card may be failing or counterfeit"
        )));
    }
    Ok(())
}

/// Write both manifest files.
pub fn save(card: &mut dyn Volume, manifest: &Manifest) -> StorageResult<()> {
    replace_file(card, MANIFEST_PATH, &manifest.to_jsonl())?;
    replace_file(card, SUMS_PATH, &manifest.to_sha256sums())
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
}
