//! `verify`: read every file the card's manifest lists back from the card and say, for each,
//! whether it is still there with the same content; list files in the backed-up folders that
//! the manifest does not know; and, on request, check that every file of a folder (the
//! phone's DCIM, a laptop copy) is on the card by content. Format of the result and exit
//! codes: docs/VERIFY.md.
//!
//! The library returns typed data and never prints. The steps are separate so that the
//! binary can size a progress bar before the long reads start:
//!
//! 1. [`load_manifest`]: read `.sdexport/manifest.jsonl` and `SHA256SUMS` (either alone is
//!    enough; both are cross-checked, because someone checking the card later with
//!    `sha256sum -c` must get the same answer as `sdexport verify`);
//! 2. [`verify_card`]: drop host caches, stat and hash every listed file, walk the
//!    top-level folders that hold manifest entries for files the manifest does not list;
//! 3. [`scan_source`] + [`check_against`] (optional): hash every file of a folder or image
//!    and look each one up among the card files whose content matched their record.
//!
//! Each file falls in one fixed category ([`Status`]): `ok`, `missing`, `corrupt` (the
//! content differs, or the file could not be read), `size_changed`, or `unknown`. A file
//! that cannot be read is a per-file result, never a reason to stop: one bad cluster must
//! not hide the state of the other thousand photos.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::manifest::{self, Record, MANIFEST_PATH, NEW_SUFFIX, SUMS_PATH};
use crate::storage::names::fold_case;
use crate::storage::open::{open_card, CardOptions};
use crate::storage::{Entry, StorageError, Volume};

/// Version of the JSON document ([`VerifyReport`]). New fields may be added without a bump;
/// a field that changes meaning or disappears bumps it.
pub const SCHEMA: u32 = 1;

/// Hashing reads this much at a time: large sequential reads are what SD cards and USB
/// readers are fast at, and what makes O(files) system calls cheap.
const READ_BUF_BYTES: usize = 1 << 20;

/// Directory walks stop this deep: a corrupt FAT can make a directory contain itself.
const MAX_DEPTH: usize = 64;
/// ... and after this many directories, for the same reason (a cycle that branches).
const MAX_DIRS: usize = 1_000_000;

/// The fixed categories of a verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// On the card, same size and SHA-256 as recorded.
    Ok,
    /// Listed in the manifest, not on the card.
    Missing,
    /// On the card with the recorded size but different content, or unreadable.
    Corrupt,
    /// On the card with a size other than the recorded one.
    SizeChanged,
    /// On the card, in a backed-up folder, not in the manifest.
    Unknown,
}

impl Status {
    /// The word used in human output (`size-changed`, where JSON says `size_changed`).
    pub fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Missing => "missing",
            Status::Corrupt => "corrupt",
            Status::SizeChanged => "size-changed",
            Status::Unknown => "unknown",
        }
    }
}

/// The result for one file on the card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileCheck {
    /// Path relative to the card root, `/`-separated, as the manifest spells it (or as the
    /// card does, for unknown files).
    pub path: String,
    pub status: Status,
    /// Lower-case hex; `null` for unknown files.
    pub expected_sha256: Option<String>,
    /// Lower-case hex of what the card returned; `null` when the file was not read
    /// (missing, size-changed, unknown, or unreadable).
    pub actual_sha256: Option<String>,
    /// `null` for unknown files and for entries known only from SHA256SUMS.
    pub expected_size: Option<u64>,
    /// `null` when missing.
    pub actual_size: Option<u64>,
    /// Why the file could not be read or checked, when that is the reason for its status.
    pub error: Option<String>,
}

/// Counts per category.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub ok: u64,
    pub missing: u64,
    pub corrupt: u64,
    pub size_changed: u64,
    pub unknown: u64,
    /// Files the manifest lists (ok + missing + corrupt + size_changed).
    pub checked_files: u64,
    /// Bytes read back from the card while hashing.
    pub checked_bytes: u64,
}

/// Where the list of expected files came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ManifestSource {
    /// `.sdexport/manifest.jsonl` (cross-checked with SHA256SUMS when both exist).
    #[serde(rename = "manifest.jsonl")]
    Jsonl,
    /// Only `SHA256SUMS` (no sizes recorded: size changes show as corrupt).
    #[serde(rename = "SHA256SUMS")]
    Sha256Sums,
}

/// What the card's manifest says, before anything is read back.
#[derive(Debug, Clone, Serialize)]
pub struct ManifestInfo {
    pub source: ManifestSource,
    /// Distinct files listed.
    pub files: u64,
    /// Sum of the recorded sizes (files known only from SHA256SUMS count as 0).
    pub bytes: u64,
}

/// One expected file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub path: String,
    pub sha256: String,
    pub size: Option<u64>,
}

/// The card's manifest, merged from manifest.jsonl and SHA256SUMS.
#[derive(Debug, Clone)]
pub struct CardManifest {
    pub info: ManifestInfo,
    /// Sorted by path.
    pub expected: Vec<Expected>,
    /// Things wrong with the manifest itself (they make the result "problems found").
    pub problems: Vec<String>,
    /// Things worth knowing that are not problems.
    pub notes: Vec<String>,
}

/// A file of the `--against` folder that is not safely on the card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotOnCard {
    /// Path relative to the folder, `/`-separated.
    pub path: String,
    pub size: u64,
    /// `null` when the file could not be read.
    pub sha256: Option<String>,
    /// Why it could not be read, if that is the reason.
    pub error: Option<String>,
}

/// A file of the `--against` folder found on the card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Found {
    pub path: String,
    /// A verified card file with the same content.
    pub card_path: String,
}

/// A file of the `--against` folder that was not looked for, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub path: String,
    pub reason: String,
}

/// The answer to "is everything in this folder safely on the card?".
#[derive(Debug, Clone, Serialize)]
pub struct AgainstReport {
    /// The folder (or image) as given.
    pub dir: String,
    /// Files looked for: found + not on card (which includes files that could not be read).
    pub files: u64,
    pub found: u64,
    pub checked_bytes: u64,
    /// Sorted by path.
    pub not_on_card: Vec<NotOnCard>,
    /// Sorted by path.
    pub found_files: Vec<Found>,
    /// Hidden, system, empty and special files, which sdexport does not copy.
    pub skipped: Vec<Skipped>,
}

/// The whole result, serialised as the `--json` document.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub schema: u32,
    /// The card as the user named it.
    pub card: String,
    /// What was opened (`card.img (FAT32)`, `/media/card (directory on vfat)`).
    pub volume: String,
    pub manifest: ManifestInfo,
    pub summary: Summary,
    /// Every manifest entry and every unknown file, sorted by path.
    pub files: Vec<FileCheck>,
    /// Problems not tied to one file (manifest inconsistencies, unreadable folders).
    pub problems: Vec<String>,
    pub notes: Vec<String>,
    /// Present only with `--against`.
    pub against: Option<AgainstReport>,
}

impl VerifyReport {
    /// Files whose status is not ok.
    pub fn file_problems(&self) -> impl Iterator<Item = &FileCheck> {
        self.files.iter().filter(|f| f.status != Status::Ok)
    }

    /// Everything is fine: every file ok, nothing unknown, the manifest consistent, and
    /// with `--against` every file found.
    pub fn is_clean(&self) -> bool {
        self.file_problems().next().is_none()
            && self.problems.is_empty()
            && self
                .against
                .as_ref()
                .is_none_or(|a| a.not_on_card.is_empty())
    }

    /// Content hash → path of a card file whose current content matches its record.
    pub fn verified_hashes(&self) -> HashMap<String, String> {
        let mut m = HashMap::new();
        for f in &self.files {
            if f.status == Status::Ok {
                if let Some(h) = &f.actual_sha256 {
                    m.entry(h.clone()).or_insert_with(|| f.path.clone());
                }
            }
        }
        m
    }
}

/// Why verification could not run at all (exit code 2).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    #[error("no sdexport manifest was found on {card}: neither {SUMS_PATH} nor {MANIFEST_PATH} is at its root.\n  Give the card's root folder (or, for a partitioned image or device, the right --partition).\n  A card gets a manifest when sdexport copies to it: `sdexport photos PHONE --to CARD` or `sdexport backup PHONE --to CARD`.")]
    NoManifest { card: String },
    // The source is not repeated in the message: callers print the chain (`{:#}`).
    #[error("cannot read the manifest on {card}")]
    Manifest {
        card: String,
        #[source]
        source: StorageError,
    },
    #[error("cannot compare {dir} with the card")]
    Against {
        dir: String,
        #[source]
        source: StorageError,
    },
}

/// Names that are not a user's files: hidden (leading `.`, which also covers
/// `.sdexport/`, `.thumbnails/`, `.trashed-*`, `.pending-*`, `.nomedia`, `.DS_Store`,
/// `._*`), and what Windows and macOS put on cards on their own.
pub fn is_hidden_or_system(name: &str) -> bool {
    const SYSTEM: [&str; 6] = [
        "SYSTEM VOLUME INFORMATION",
        "$RECYCLE.BIN",
        "RECYCLER",
        "THUMBS.DB",
        "DESKTOP.INI",
        "FOUND.000",
    ];
    name.starts_with('.') || SYSTEM.contains(&name.to_ascii_uppercase().as_str())
}

/// Read a whole small file from the volume; `Ok(None)` if it does not exist.
fn read_volume_file(vol: &mut dyn Volume, path: &str) -> Result<Option<String>, StorageError> {
    match vol.stat(path)? {
        Some(e) if !e.is_dir() => {}
        _ => return Ok(None),
    }
    let mut r = vol.open_read(path)?;
    let mut buf = Vec::new();
    r.read_to_end(&mut buf)
        .map_err(|e| StorageError::io(path, e))?;
    Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
}

/// Read `path`, or `path.new` left complete by an interrupted replacement when `path` is
/// gone (the rule of [`manifest::recover`], applied without writing).
fn read_manifest_file(
    vol: &mut dyn Volume,
    path: &str,
    notes: &mut Vec<String>,
) -> Result<Option<String>, StorageError> {
    if let Some(t) = read_volume_file(vol, path)? {
        return Ok(Some(t));
    }
    let new = format!("{path}{NEW_SUFFIX}");
    if let Some(t) = read_volume_file(vol, &new)? {
        notes.push(format!(
            "{path} is missing and {new} is there: an sdexport run was interrupted while replacing it; {new} was used (the next sdexport run that writes to the card renames it)"
        ));
        return Ok(Some(t));
    }
    Ok(None)
}

/// Read the card's manifest. `card` names the card in messages.
pub fn load_manifest(vol: &mut dyn Volume, card: &str) -> Result<CardManifest, VerifyError> {
    let err = |source| VerifyError::Manifest {
        card: card.to_string(),
        source,
    };
    let mut notes = Vec::new();
    let mut problems = Vec::new();
    let jsonl = read_manifest_file(vol, MANIFEST_PATH, &mut notes).map_err(err)?;
    let sums = read_manifest_file(vol, SUMS_PATH, &mut notes).map_err(err)?;
    if jsonl.is_none() && sums.is_none() {
        return Err(VerifyError::NoManifest {
            card: card.to_string(),
        });
    }
    // `sha256sum ./DCIM/x.jpg > SHA256SUMS` writes `./` in front: the same file.
    let sums: Option<Vec<(String, String)>> = sums.as_deref().map(|t| {
        manifest::parse_sha256sums(t)
            .into_iter()
            .map(|(p, h)| (normalize(&p), h))
            .collect()
    });
    let source = if jsonl.is_some() {
        ManifestSource::Jsonl
    } else {
        ManifestSource::Sha256Sums
    };

    // Keyed by the case-folded path, like the manifest itself: FAT names are
    // case-insensitive, and the two files must agree under that rule.
    let mut by_key: BTreeMap<String, Expected> = BTreeMap::new();
    if let Some(text) = &jsonl {
        let m = manifest::Manifest::parse(text);
        if !m.unreadable_lines.is_empty() {
            problems.push(format!(
                "{MANIFEST_PATH}: {} line(s) could not be read (line {}); the files they describe are checked only if {SUMS_PATH} lists them",
                m.unreadable_lines.len(),
                m.unreadable_lines
                    .iter()
                    .take(10)
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        for r in m.records() {
            if let Some(e) = expected_from_record(&r, &mut problems) {
                by_key.insert(fold_case(&e.path), e);
            }
        }
    }
    if let Some(sums) = &sums {
        let from_jsonl: std::collections::HashSet<String> = by_key.keys().cloned().collect();
        let mut seen: HashMap<String, &str> = HashMap::new();
        let mut only_in_sums = 0usize;
        for (path, hex) in sums {
            let key = fold_case(path);
            if let Some(first) = seen.get(&key) {
                if !first.eq_ignore_ascii_case(hex) {
                    problems.push(format!(
                        "{path}: {SUMS_PATH} lists this file twice with different SHA-256 values; `sha256sum -c` will report one of them as FAILED"
                    ));
                }
                continue;
            }
            seen.insert(key.clone(), hex);
            match by_key.get(&key) {
                Some(e) => {
                    if !e.sha256.eq_ignore_ascii_case(hex) {
                        problems.push(format!(
                            "{path}: {SUMS_PATH} and {MANIFEST_PATH} record different SHA-256 values ({} and {}); `sha256sum -c` and sdexport would disagree about this file",
                            short(hex),
                            short(&e.sha256)
                        ));
                    }
                }
                None => {
                    if source == ManifestSource::Jsonl {
                        only_in_sums += 1;
                    }
                    by_key.insert(
                        key,
                        Expected {
                            path: path.clone(),
                            sha256: hex.to_ascii_lowercase(),
                            size: None,
                        },
                    );
                }
            }
        }
        let not_in_sums = from_jsonl.iter().filter(|k| !seen.contains_key(*k)).count();
        if source == ManifestSource::Jsonl && not_in_sums > 0 {
            notes.push(format!(
                "{SUMS_PATH} does not list {not_in_sums} file(s) that {MANIFEST_PATH} lists: `sha256sum -c {SUMS_PATH}` will not check them (the next sdexport run that writes to the card rewrites it)"
            ));
        }
        if only_in_sums > 0 {
            notes.push(format!(
                "{only_in_sums} file(s) are listed only in {SUMS_PATH}; they are checked by content (no size was recorded)"
            ));
        }
    } else {
        notes.push(format!(
            "{SUMS_PATH} is missing from the card root: the card cannot be checked without sdexport (the next sdexport run that writes to the card rewrites it)"
        ));
    }
    let expected: Vec<Expected> = {
        let mut v: Vec<Expected> = by_key.into_values().collect();
        v.sort_by(|a, b| a.path.cmp(&b.path));
        v
    };
    let info = ManifestInfo {
        source,
        files: expected.len() as u64,
        bytes: expected.iter().filter_map(|e| e.size).sum(),
    };
    Ok(CardManifest {
        info,
        expected,
        problems,
        notes,
    })
}

/// `./DCIM//a.jpg` → `DCIM/a.jpg`. Anything else (an absolute path, `..`) is left for the
/// volume to refuse, so that it is reported rather than silently reinterpreted.
fn normalize(path: &str) -> String {
    let mut p = path;
    while let Some(rest) = p.strip_prefix("./") {
        p = rest.trim_start_matches('/');
    }
    let mut out = String::with_capacity(p.len());
    for comp in p.split('/') {
        if comp.is_empty() || comp == "." {
            continue;
        }
        if !out.is_empty() {
            out.push('/');
        }
        out.push_str(comp);
    }
    if path.starts_with('/') {
        format!("/{out}")
    } else {
        out
    }
}

fn expected_from_record(r: &Record, problems: &mut Vec<String>) -> Option<Expected> {
    let hex = r.sha256.trim();
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        problems.push(format!(
            "{}: {MANIFEST_PATH} records an invalid SHA-256 value ({:?})",
            r.path, r.sha256
        ));
        return None;
    }
    Some(Expected {
        path: r.path.clone(),
        sha256: hex.to_ascii_lowercase(),
        size: Some(r.size),
    })
}

/// First 12 hex digits and an ellipsis, for messages.
pub fn short(hex: &str) -> String {
    match hex.get(..12) {
        Some(s) if hex.len() > 12 => format!("{s}…"),
        _ => hex.to_string(),
    }
}

/// SHA-256 of everything `r` yields, read in 1 MiB pieces, reporting each piece's length.
pub fn hash_reader(
    r: &mut dyn Read,
    buf: &mut [u8],
    progress: &mut dyn FnMut(u64),
) -> io::Result<(String, u64)> {
    let mut h = Sha256::new();
    let mut total = 0u64;
    loop {
        let n = match r.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        h.update(&buf[..n]);
        total += n as u64;
        progress(n as u64);
    }
    Ok((manifest::hex(&h.finalize()), total))
}

/// Check every expected file on the card and look for unknown files. `card` is the name
/// the user gave; `progress` is called with the number of bytes just read.
pub fn verify_card(
    vol: &mut dyn Volume,
    manifest: &CardManifest,
    card: &str,
    progress: &mut dyn FnMut(u64),
) -> VerifyReport {
    let mut notes = manifest.notes.clone();
    let mut problems = manifest.problems.clone();
    // Reads must come from the medium, not from pages the host kept when the card was
    // written: a fake or failing card is only caught by what it returns now.
    if let Err(e) = vol.drop_caches() {
        notes.push(format!(
            "could not drop the host's cache of the card ({e}); some reads may come from memory"
        ));
    }
    let mut buf = vec![0u8; READ_BUF_BYTES];
    let mut files = Vec::with_capacity(manifest.expected.len());
    let mut checked_bytes = 0u64;
    for (k, e) in manifest.expected.iter().enumerate() {
        crate::storage::prefetch_ahead(vol, k, |n| {
            manifest.expected.get(n).map(|e| e.path.clone())
        });
        let check = check_one(vol, e, &mut buf, &mut |n| {
            checked_bytes += n;
            progress(n)
        });
        files.push(check);
    }

    // Unknown files: in the top-level folders that hold manifest entries.
    let mut folders: BTreeMap<String, String> = BTreeMap::new();
    for e in &manifest.expected {
        if let Some((top, _)) = e.path.split_once('/') {
            if !top.is_empty() && !is_hidden_or_system(top) {
                folders
                    .entry(fold_case(top))
                    .or_insert_with(|| top.to_string());
            }
        }
    }
    let known: std::collections::HashSet<String> = manifest
        .expected
        .iter()
        .map(|e| fold_case(&e.path))
        .collect();
    for top in folders.values() {
        let Walk {
            entries, errors, ..
        } = walk_tolerant(vol, top);
        problems.extend(
            errors
                .into_iter()
                .map(|(path, msg)| format!("{path}: {msg}; unknown files in it are not reported")),
        );
        for entry in entries {
            if entry.is_dir() || known.contains(&fold_case(&entry.path)) {
                continue;
            }
            files.push(FileCheck {
                path: entry.path.clone(),
                status: Status::Unknown,
                expected_sha256: None,
                actual_sha256: None,
                expected_size: None,
                actual_size: Some(entry.size),
                error: None,
            });
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));

    let mut summary = Summary {
        checked_files: manifest.expected.len() as u64,
        checked_bytes,
        ..Summary::default()
    };
    for f in &files {
        match f.status {
            Status::Ok => summary.ok += 1,
            Status::Missing => summary.missing += 1,
            Status::Corrupt => summary.corrupt += 1,
            Status::SizeChanged => summary.size_changed += 1,
            Status::Unknown => summary.unknown += 1,
        }
    }
    VerifyReport {
        schema: SCHEMA,
        card: card.to_string(),
        volume: vol.describe(),
        manifest: manifest.info.clone(),
        summary,
        files,
        problems,
        notes,
        against: None,
    }
}

fn check_one(
    vol: &mut dyn Volume,
    e: &Expected,
    buf: &mut [u8],
    progress: &mut dyn FnMut(u64),
) -> FileCheck {
    let mut check = FileCheck {
        path: e.path.clone(),
        status: Status::Ok,
        expected_sha256: Some(e.sha256.clone()),
        actual_sha256: None,
        expected_size: e.size,
        actual_size: None,
        error: None,
    };
    let entry = match vol.stat(&e.path) {
        Ok(Some(entry)) => entry,
        Ok(None) => {
            check.status = Status::Missing;
            return check;
        }
        Err(err) if err.is_not_found() => {
            check.status = Status::Missing;
            return check;
        }
        Err(err @ StorageError::InvalidName { .. }) => {
            check.status = Status::Missing;
            check.error = Some(format!(
                "the manifest names a path the card cannot hold: {err}"
            ));
            return check;
        }
        Err(err) => {
            check.status = Status::Corrupt;
            check.error = Some(format!("could not be read: {err}"));
            return check;
        }
    };
    if entry.is_dir() {
        check.status = Status::Missing;
        check.error = Some("a folder has this name on the card".into());
        return check;
    }
    check.actual_size = Some(entry.size);
    if e.size.is_some_and(|s| s != entry.size) {
        check.status = Status::SizeChanged;
        return check;
    }
    let result = vol.open_read(&e.path).and_then(|mut r| {
        hash_reader(&mut r, buf, progress).map_err(|x| StorageError::io(&e.path, x))
    });
    match result {
        Ok((hex, n)) => {
            check.actual_sha256 = Some(hex.clone());
            if e.size.is_some_and(|s| s != n) {
                // The directory entry said one size and the data chain gave another.
                check.status = Status::Corrupt;
                check.error = Some(format!(
                    "the card returned {n} bytes for a file whose size is {}",
                    entry.size
                ));
            } else if hex != e.sha256 {
                check.status = Status::Corrupt;
            }
        }
        Err(err) => {
            check.status = Status::Corrupt;
            check.error = Some(format!("could not be read: {err}"));
        }
    }
    check
}

/// What [`walk_tolerant`] found.
#[derive(Default)]
struct Walk {
    /// Every entry below the folder, sorted by path, without hidden or system ones.
    entries: Vec<Entry>,
    /// Hidden or system entries met (folders not descended into).
    hidden: Vec<Entry>,
    /// `(path, message)` of folders that could not be listed or were not searched.
    errors: Vec<(String, String)>,
}

/// Every entry below `dir` (not descending into hidden or system folders, and keeping
/// hidden or system entries apart), and the folders that could not be listed. Bounded
/// against directory cycles on a corrupt card.
fn walk_tolerant(vol: &mut dyn Volume, dir: &str) -> Walk {
    let mut w = Walk::default();
    let mut stack = vec![(dir.to_string(), 0usize)];
    let mut listed = 0usize;
    while let Some((d, depth)) = stack.pop() {
        listed += 1;
        if listed > MAX_DIRS {
            w.errors.push((
                dir.to_string(),
                format!(
                    "stopped after {MAX_DIRS} folders (is the file system corrupt? `fsck.fat -n` can tell)"
                ),
            ));
            break;
        }
        let entries = match vol.list(&d) {
            Ok(v) => v,
            Err(e) if e.is_not_found() && d == dir => break,
            Err(e) => {
                w.errors
                    .push((d.clone(), format!("the folder could not be listed: {e}")));
                continue;
            }
        };
        for e in entries {
            if is_hidden_or_system(e.name()) {
                w.hidden.push(e);
                continue;
            }
            if e.is_dir() {
                if depth + 1 >= MAX_DEPTH {
                    w.errors.push((
                        e.path.clone(),
                        format!(
                            "folders nested more than {MAX_DEPTH} deep are not searched (is the file system corrupt?)"
                        ),
                    ));
                } else {
                    stack.push((e.path.clone(), depth + 1));
                }
            }
            w.entries.push(e);
        }
    }
    w.entries.sort_by(|a, b| a.path.cmp(&b.path));
    w.hidden.sort_by(|a, b| a.path.cmp(&b.path));
    w
}

/// One file of the `--against` folder.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Relative, `/`-separated (lossy for names that are not UTF-8).
    pub path: String,
    pub size: u64,
    /// Where to read it.
    locator: Locator,
}

#[derive(Debug, Clone)]
enum Locator {
    Host(PathBuf),
    Volume(String),
}

/// The `--against` folder, walked, before any file is read.
pub struct Source {
    pub dir: String,
    pub files: Vec<SourceFile>,
    pub skipped: Vec<Skipped>,
    /// Entries that could not be listed or examined: reported as not on the card.
    pub unreadable: Vec<NotOnCard>,
    volume: Option<Box<dyn Volume>>,
}

impl Source {
    /// Bytes that [`check_against`] will read.
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

/// Walk the folder (or card image / device) `path` whose files must be on the card.
pub fn scan_source(path: &Path) -> Result<Source, VerifyError> {
    let dir = path.display().to_string();
    let meta = fs::metadata(path).map_err(|e| VerifyError::Against {
        dir: dir.clone(),
        source: StorageError::io(dir.clone(), e),
    })?;
    if meta.is_dir() {
        return Ok(scan_host_dir(path, dir));
    }
    // Not a folder: an image or device, opened like a card (read-only).
    let mut card = open_card(
        path,
        CardOptions {
            partition: None,
            write: false,
        },
    )
    .map_err(|source| VerifyError::Against {
        dir: dir.clone(),
        source,
    })?;
    let Walk {
        entries,
        hidden,
        errors,
    } = walk_tolerant(card.volume.as_mut(), "");
    let mut files = Vec::new();
    let mut skipped: Vec<Skipped> = hidden
        .into_iter()
        .map(|e| Skipped {
            reason: if e.is_dir() {
                "hidden or system folder (not searched)".into()
            } else {
                "hidden or system file".into()
            },
            path: e.path,
        })
        .collect();
    let unreadable = errors
        .into_iter()
        .map(|(path, msg)| NotOnCard {
            path,
            size: 0,
            sha256: None,
            error: Some(msg),
        })
        .collect();
    for e in entries {
        if e.is_dir() {
            continue;
        }
        let reason = if e.path == SUMS_PATH {
            Some("the manifest of a card")
        } else if e.size == 0 {
            Some("empty file")
        } else {
            None
        };
        if let Some(reason) = reason {
            skipped.push(Skipped {
                path: e.path.clone(),
                reason: reason.into(),
            });
            continue;
        }
        files.push(SourceFile {
            path: e.path.clone(),
            size: e.size,
            locator: Locator::Volume(e.path.clone()),
        });
    }
    Ok(Source {
        dir,
        files,
        skipped,
        unreadable,
        volume: Some(card.volume),
    })
}

fn scan_host_dir(root: &Path, dir: String) -> Source {
    let mut files = Vec::new();
    let mut skipped = Vec::new();
    let mut unreadable = Vec::new();
    let rel = |p: &Path| -> String {
        p.strip_prefix(root)
            .unwrap_or(p)
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/")
    };
    let mut walker = walkdir::WalkDir::new(root)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter();
    while let Some(item) = walker.next() {
        let e = match item {
            Ok(e) => e,
            Err(err) => {
                let path = err.path().map(&rel).unwrap_or_default();
                unreadable.push(NotOnCard {
                    path,
                    size: 0,
                    sha256: None,
                    error: Some(format!("could not be read: {err}")),
                });
                continue;
            }
        };
        if e.depth() == 0 {
            continue;
        }
        let path = rel(e.path());
        let name = e.file_name().to_string_lossy();
        if e.file_type().is_dir() {
            // Hidden and system folders (.thumbnails, .trashed…) are not descended into.
            if is_hidden_or_system(&name) {
                walker.skip_current_dir();
                skipped.push(Skipped {
                    path,
                    reason: "hidden or system folder (not searched)".into(),
                });
            }
            continue;
        }
        let reason = if e.depth() == 1 && name == SUMS_PATH {
            Some("the manifest of a card")
        } else if e.file_type().is_symlink() {
            Some("symbolic link (not followed)")
        } else if !e.file_type().is_file() {
            Some("not a regular file")
        } else if is_hidden_or_system(&name) {
            Some("hidden or system file")
        } else {
            None
        };
        if let Some(reason) = reason {
            skipped.push(Skipped {
                path,
                reason: reason.into(),
            });
            continue;
        }
        let size = match e.metadata() {
            Ok(m) => m.len(),
            Err(err) => {
                unreadable.push(NotOnCard {
                    path,
                    size: 0,
                    sha256: None,
                    error: Some(format!("could not be read: {err}")),
                });
                continue;
            }
        };
        if size == 0 {
            skipped.push(Skipped {
                path,
                reason: "empty file".into(),
            });
            continue;
        }
        files.push(SourceFile {
            path,
            size,
            locator: Locator::Host(e.path().to_path_buf()),
        });
    }
    Source {
        dir,
        files,
        skipped,
        unreadable,
        volume: None,
    }
}

/// Hash every file of `source` and look it up among the card's verified files (those
/// whose content matched their record). Stores the answer in `report.against`.
pub fn check_against(report: &mut VerifyReport, source: Source, progress: &mut dyn FnMut(u64)) {
    let verified = report.verified_hashes();
    let Source {
        dir,
        files,
        mut skipped,
        unreadable,
        mut volume,
    } = source;
    let mut buf = vec![0u8; READ_BUF_BYTES];
    let mut not_on_card = unreadable;
    let mut found_files = Vec::new();
    let mut checked_bytes = 0u64;
    for f in files {
        let mut count = |n: u64| {
            checked_bytes += n;
            progress(n)
        };
        let hashed: Result<(String, u64), String> = match (&f.locator, volume.as_mut()) {
            (Locator::Host(p), _) => fs::File::open(p)
                .and_then(|mut file| hash_reader(&mut file, &mut buf, &mut count))
                .map_err(|e| e.to_string()),
            (Locator::Volume(p), Some(v)) => v
                .open_read(p)
                .and_then(|mut r| {
                    hash_reader(&mut r, &mut buf, &mut count).map_err(|e| StorageError::io(p, e))
                })
                .map_err(|e| e.to_string()),
            (Locator::Volume(_), None) => Err("internal: no volume to read from".into()),
        };
        match hashed {
            Ok((hex, _)) => match verified.get(&hex) {
                Some(card_path) => found_files.push(Found {
                    path: f.path,
                    card_path: card_path.clone(),
                }),
                None => not_on_card.push(NotOnCard {
                    path: f.path,
                    size: f.size,
                    sha256: Some(hex),
                    error: None,
                }),
            },
            Err(e) => not_on_card.push(NotOnCard {
                path: f.path,
                size: f.size,
                sha256: None,
                error: Some(format!("could not be read: {e}")),
            }),
        }
    }
    not_on_card.sort_by(|a, b| a.path.cmp(&b.path));
    skipped.sort_by(|a, b| a.path.cmp(&b.path));
    found_files.sort_by(|a, b| a.path.cmp(&b.path));
    report.against = Some(AgainstReport {
        dir,
        files: (found_files.len() + not_on_card.len()) as u64,
        found: found_files.len() as u64,
        checked_bytes,
        not_on_card,
        found_files,
        skipped,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::dir::DirVolume;

    fn write(root: &Path, rel: &str, bytes: &[u8]) {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, bytes).unwrap();
    }

    fn sha(bytes: &[u8]) -> String {
        manifest::hex(&Sha256::digest(bytes))
    }

    #[test]
    fn hashing_reports_every_byte_once() {
        let data = vec![7u8; 3 * READ_BUF_BYTES + 5];
        let mut seen = 0u64;
        let mut buf = vec![0u8; READ_BUF_BYTES];
        let (hex, n) = hash_reader(&mut &data[..], &mut buf, &mut |k| seen += k).unwrap();
        assert_eq!(n, data.len() as u64);
        assert_eq!(seen, n);
        assert_eq!(hex, sha(&data));
    }

    #[test]
    fn sums_paths_are_normalised() {
        assert_eq!(normalize("./DCIM//Camera/./a.jpg"), "DCIM/Camera/a.jpg");
        assert_eq!(normalize("DCIM/a.jpg"), "DCIM/a.jpg");
        assert_eq!(normalize("/abs/a.jpg"), "/abs/a.jpg");
        assert_eq!(normalize("../a.jpg"), "../a.jpg");
    }

    #[test]
    fn hidden_and_system_names() {
        for n in [
            ".sdexport",
            ".thumbnails",
            "System Volume Information",
            "Thumbs.db",
        ] {
            assert!(is_hidden_or_system(n), "{n}");
        }
        for n in ["DCIM", "IMG_0001.JPG", "Camera"] {
            assert!(!is_hidden_or_system(n), "{n}");
        }
    }

    #[test]
    fn sums_only_card_is_checked_by_content_and_disagreement_is_a_problem() {
        let t = tempfile::tempdir().unwrap();
        write(t.path(), "DCIM/a.jpg", b"aaa");
        write(t.path(), "DCIM/b.jpg", b"bbb");
        let sums = format!(
            "{}  DCIM/a.jpg\n{}  DCIM/b.jpg\n",
            sha(b"aaa"),
            sha(b"not b")
        );
        write(t.path(), "SHA256SUMS", sums.as_bytes());
        let mut v = DirVolume::open(t.path()).unwrap();
        let m = load_manifest(&mut v, "card").unwrap();
        assert_eq!(m.info.source, ManifestSource::Sha256Sums);
        let r = verify_card(&mut v, &m, "card", &mut |_| {});
        let st: Vec<_> = r
            .files
            .iter()
            .map(|f| (f.path.as_str(), f.status))
            .collect();
        assert_eq!(
            st,
            vec![("DCIM/a.jpg", Status::Ok), ("DCIM/b.jpg", Status::Corrupt)]
        );

        // A manifest.jsonl that says b is fine, while SHA256SUMS says otherwise.
        let mut man = manifest::Manifest::default();
        man.insert(Record {
            path: "DCIM/b.jpg".into(),
            size: 3,
            sha256: sha(b"bbb"),
            run_id: "r".into(),
            tool_version: "t".into(),
            ..Default::default()
        });
        write(t.path(), MANIFEST_PATH, &man.to_jsonl());
        let m = load_manifest(&mut v, "card").unwrap();
        assert_eq!(m.info.source, ManifestSource::Jsonl);
        assert_eq!(m.problems.len(), 1, "{:?}", m.problems);
        let r = verify_card(&mut v, &m, "card", &mut |_| {});
        assert!(!r.is_clean());
        assert_eq!(r.summary.ok, 2);
    }

    /// A directory volume whose reads of one file fail half-way, like a bad block.
    struct FailingRead {
        inner: DirVolume,
        fail: &'static str,
    }

    struct BadBlock(usize);
    impl Read for BadBlock {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0 == 0 {
                return Err(io::Error::other("injected read error"));
            }
            let n = buf.len().min(self.0);
            buf[..n].fill(0);
            self.0 -= n;
            Ok(n)
        }
    }
    impl io::Seek for BadBlock {
        fn seek(&mut self, _: io::SeekFrom) -> io::Result<u64> {
            Ok(0)
        }
    }

    impl Volume for FailingRead {
        fn describe(&self) -> String {
            self.inner.describe()
        }
        fn limits(&self) -> crate::storage::Limits {
            self.inner.limits()
        }
        fn list(&mut self, dir: &str) -> crate::storage::StorageResult<Vec<Entry>> {
            self.inner.list(dir)
        }
        fn stat(&mut self, path: &str) -> crate::storage::StorageResult<Option<Entry>> {
            self.inner.stat(path)
        }
        fn open_read(
            &mut self,
            path: &str,
        ) -> crate::storage::StorageResult<Box<dyn crate::storage::ReadSeek + '_>> {
            if path == self.fail {
                return Ok(Box::new(BadBlock(1000)));
            }
            self.inner.open_read(path)
        }
        fn create_new(
            &mut self,
            path: &str,
        ) -> crate::storage::StorageResult<Box<dyn crate::storage::FileSink + '_>> {
            self.inner.create_new(path)
        }
        fn rename_new(&mut self, from: &str, to: &str) -> crate::storage::StorageResult<()> {
            self.inner.rename_new(from, to)
        }
        fn remove_file(&mut self, path: &str) -> crate::storage::StorageResult<()> {
            self.inner.remove_file(path)
        }
        fn remove_dir(&mut self, path: &str) -> crate::storage::StorageResult<()> {
            self.inner.remove_dir(path)
        }
        fn create_dir_all(&mut self, path: &str) -> crate::storage::StorageResult<()> {
            self.inner.create_dir_all(path)
        }
        fn set_modified(
            &mut self,
            path: &str,
            t: std::time::SystemTime,
        ) -> crate::storage::StorageResult<()> {
            self.inner.set_modified(path, t)
        }
        fn space(&mut self) -> crate::storage::StorageResult<crate::storage::Space> {
            self.inner.space()
        }
        fn sync(&mut self) -> crate::storage::StorageResult<()> {
            self.inner.sync()
        }
        fn drop_caches(&mut self) -> crate::storage::StorageResult<()> {
            self.inner.drop_caches()
        }
    }

    #[test]
    fn a_read_error_is_one_corrupt_file_and_the_rest_is_checked() {
        let t = tempfile::tempdir().unwrap();
        write(t.path(), "DCIM/a.jpg", &[1u8; 5000]);
        write(t.path(), "DCIM/b.jpg", &[2u8; 5000]);
        write(t.path(), "DCIM/c.jpg", &[3u8; 5000]);
        let sums = format!(
            "{}  DCIM/a.jpg\n{}  DCIM/b.jpg\n{}  DCIM/c.jpg\n",
            sha(&[1u8; 5000]),
            sha(&[2u8; 5000]),
            sha(&[3u8; 5000])
        );
        write(t.path(), "SHA256SUMS", sums.as_bytes());
        let mut v = FailingRead {
            inner: DirVolume::open(t.path()).unwrap(),
            fail: "DCIM/b.jpg",
        };
        let m = load_manifest(&mut v, "card").unwrap();
        let r = verify_card(&mut v, &m, "card", &mut |_| {});
        let st: Vec<_> = r
            .files
            .iter()
            .map(|f| (f.path.as_str(), f.status))
            .collect();
        assert_eq!(
            st,
            vec![
                ("DCIM/a.jpg", Status::Ok),
                ("DCIM/b.jpg", Status::Corrupt),
                ("DCIM/c.jpg", Status::Ok)
            ]
        );
        let b = &r.files[1];
        assert!(b.error.as_deref().unwrap().contains("injected read error"));
        assert_eq!(b.actual_sha256, None);
        assert_eq!(r.summary.checked_bytes, 5000 + 1000 + 5000);
    }

    #[test]
    fn an_older_sha256sums_is_a_note_and_a_duplicate_a_problem() {
        let t = tempfile::tempdir().unwrap();
        write(t.path(), "DCIM/a.jpg", b"aaa");
        write(t.path(), "DCIM/b.jpg", b"bbb");
        let mut man = manifest::Manifest::default();
        for (p, b) in [("DCIM/a.jpg", b"aaa"), ("DCIM/b.jpg", b"bbb")] {
            man.insert(Record {
                path: p.into(),
                size: 3,
                sha256: sha(b),
                run_id: "r".into(),
                tool_version: "t".into(),
                ..Default::default()
            });
        }
        write(t.path(), MANIFEST_PATH, &man.to_jsonl());
        // A crash between replacing manifest.jsonl and SHA256SUMS leaves the older one.
        write(
            t.path(),
            SUMS_PATH,
            format!("{}  ./DCIM/a.jpg\n", sha(b"aaa")).as_bytes(),
        );
        let mut v = DirVolume::open(t.path()).unwrap();
        let m = load_manifest(&mut v, "card").unwrap();
        assert!(m.problems.is_empty(), "{:?}", m.problems);
        assert_eq!(m.notes.len(), 1, "{:?}", m.notes);
        assert!(m.notes[0].contains("does not list 1 file(s)"));
        let r = verify_card(&mut v, &m, "card", &mut |_| {});
        assert!(r.is_clean());

        write(
            t.path(),
            SUMS_PATH,
            format!(
                "{}  DCIM/a.jpg\n{}  DCIM/b.jpg\n{}  DCIM/A.JPG\n",
                sha(b"aaa"),
                sha(b"bbb"),
                sha(b"zzz")
            )
            .as_bytes(),
        );
        let m = load_manifest(&mut v, "card").unwrap();
        assert_eq!(m.problems.len(), 1, "{:?}", m.problems);
        assert!(m.problems[0].contains("twice"));
        assert!(m.notes.is_empty(), "{:?}", m.notes);
    }

    #[test]
    fn no_manifest_is_an_error() {
        let t = tempfile::tempdir().unwrap();
        write(t.path(), "DCIM/a.jpg", b"aaa");
        let mut v = DirVolume::open(t.path()).unwrap();
        assert!(matches!(
            load_manifest(&mut v, "card"),
            Err(VerifyError::NoManifest { .. })
        ));
    }
}
