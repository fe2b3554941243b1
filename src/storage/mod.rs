//! Where files live: the [`Volume`] abstraction and its backends.
//!
//! Every piece of sdexport that reads a phone or writes a card (photos, contacts, manifest,
//! verify) goes through [`Volume`] only, so that a mounted directory, a FAT image file and a
//! raw block device behave the same, and so that tests can wrap a volume to inject faults.
//!
//! Paths given to a volume are relative, `/`-separated, without `.`/`..` components; `""`
//! is the volume root. Use [`join`] to build them.

pub mod dir;
pub mod fat;
pub mod names;
pub mod open;
pub mod partition;

use std::io::{self, Read, Seek, Write};
use std::time::SystemTime;

/// What kind of thing an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    File,
    Dir,
}

/// One file or directory on a volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative path from the volume root, `/`-separated.
    pub path: String,
    pub kind: EntryKind,
    pub size: u64,
    pub modified: Option<SystemTime>,
}

impl Entry {
    pub fn name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }
    pub fn is_dir(&self) -> bool {
        self.kind == EntryKind::Dir
    }
}

/// Space on a volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Space {
    pub total_bytes: u64,
    pub free_bytes: u64,
    /// Allocation unit: a file of n bytes takes `ceil(n / cluster_bytes)` clusters.
    pub cluster_bytes: u64,
}

impl Space {
    /// Bytes a file of `size` bytes occupies on this volume.
    pub fn allocated(&self, size: u64) -> u64 {
        let c = self.cluster_bytes.max(1);
        size.div_ceil(c) * c
    }
}

/// What names and sizes a volume can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest file size, if the file system has one (FAT: 4 GiB − 1).
    pub max_file_size: Option<u64>,
    /// Names must follow FAT's long-name rules (also true for a mounted vfat card).
    pub fat_names: bool,
    /// Names that differ only in case are the same file.
    pub case_insensitive: bool,
    /// Modified-time resolution in seconds (FAT: 2).
    pub mtime_resolution_secs: u64,
}

/// A reader that can also seek (metadata parsers need it).
pub trait ReadSeek: Read + Seek {}
impl<T: Read + Seek> ReadSeek for T {}

/// A new file being written. Nothing is durable until [`FileSink::finish`] returns Ok.
pub trait FileSink: Write {
    /// Commit the file's data and metadata, setting its modified time when given.
    fn finish(self: Box<Self>, modified: Option<SystemTime>) -> Result<(), StorageError>;
}

/// The errors of every backend, each with the path it concerns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("{path}: not found")]
    NotFound { path: String },
    #[error("{path}: already exists")]
    AlreadyExists { path: String },
    #[error("{path}: the card is full{}", if *needed > 0 { format!(" ({needed} bytes needed, {available} bytes free)") } else { String::new() })]
    NoSpace {
        path: String,
        needed: u64,
        available: u64,
    },
    #[error("{path}: FAT cannot hold a file of 4 GiB or more")]
    FileTooLarge { path: String },
    #[error("{path}: FAT cannot hold this name: {reason}")]
    InvalidName { path: String, reason: String },
    #[error(
        "{path}: the file system is corrupt: {what} (run `fsck.fat -n` on the card to see more)"
    )]
    Corrupt { path: String, what: String },
    /// The card is not something we can open directly: `what` says what was found and
    /// what to do instead.
    #[error("{path}: {what}")]
    Unrecognised { path: String, what: String },
    /// A block device in use by the kernel (mounted): raw writes would corrupt it.
    #[error("{path} is mounted at {mount_point}: writing to the raw device under a mounted file system would corrupt the card.\n  Either pass the mount point as the card: {mount_point}\n  or unmount it first: umount {mount_point}")]
    Mounted { path: String, mount_point: String },
    #[error("{0}")]
    Other(String),
}

impl StorageError {
    pub fn io(path: impl Into<String>, source: io::Error) -> Self {
        let path = path.into();
        match source.kind() {
            io::ErrorKind::NotFound => StorageError::NotFound { path },
            io::ErrorKind::AlreadyExists => StorageError::AlreadyExists { path },
            io::ErrorKind::StorageFull => StorageError::NoSpace {
                path,
                needed: 0,
                available: 0,
            },
            io::ErrorKind::FileTooLarge => StorageError::FileTooLarge { path },
            _ => StorageError::Io { path, source },
        }
    }
    pub fn is_not_found(&self) -> bool {
        matches!(self, StorageError::NotFound { .. })
    }
}

pub type StorageResult<T> = Result<T, StorageError>;

/// [`Volume::walk`] refuses to go deeper (Windows cannot even name paths this deep).
pub const MAX_WALK_DEPTH: usize = 128;

/// How many files ahead of the one being read back are already being read from the card.
pub const PREFETCH_AHEAD: usize = 2;

/// Before reading item `k` of a list of files: [`Volume::prefetch`] the items up to
/// [`PREFETCH_AHEAD`] after it that no earlier call covered, so that reading from the medium
/// overlaps the hashing.
pub fn prefetch_ahead(vol: &mut dyn Volume, k: usize, path_of: impl Fn(usize) -> Option<String>) {
    let first = if k == 0 { 1 } else { PREFETCH_AHEAD };
    for d in first..=PREFETCH_AHEAD {
        if let Some(p) = path_of(k + d) {
            vol.prefetch(&p);
        }
    }
}

/// A card or a phone: a tree of files reachable through one interface.
pub trait Volume {
    /// A short description for messages, e.g. `card.img (FAT32, partition 1)`.
    fn describe(&self) -> String;
    fn limits(&self) -> Limits;
    /// Entries directly inside `dir` (no `.`/`..`), sorted by name.
    fn list(&mut self, dir: &str) -> StorageResult<Vec<Entry>>;
    /// `Ok(None)` when the path does not exist.
    fn stat(&mut self, path: &str) -> StorageResult<Option<Entry>>;
    fn open_read(&mut self, path: &str) -> StorageResult<Box<dyn ReadSeek + '_>>;
    /// Create a new file; fails with `AlreadyExists` if the name exists (in any case where
    /// the volume is case-insensitive). The parent directory must exist.
    fn create_new(&mut self, path: &str) -> StorageResult<Box<dyn FileSink + '_>>;
    /// Rename a file; fails with `AlreadyExists` rather than replace an existing `to`.
    fn rename_new(&mut self, from: &str, to: &str) -> StorageResult<()>;
    fn remove_file(&mut self, path: &str) -> StorageResult<()>;
    /// Remove an empty directory.
    fn remove_dir(&mut self, path: &str) -> StorageResult<()>;
    fn create_dir_all(&mut self, path: &str) -> StorageResult<()>;
    fn set_modified(&mut self, path: &str, modified: SystemTime) -> StorageResult<()>;
    fn space(&mut self) -> StorageResult<Space>;
    /// Make everything written so far durable on the medium.
    fn sync(&mut self) -> StorageResult<()>;
    /// After `sync`, make the next reads come from the medium rather than a cache, as far
    /// as the backend can (page cache dropped for images and devices, engine caches
    /// forgotten).
    fn drop_caches(&mut self) -> StorageResult<()>;
    /// A hint that `path` is read next: start reading it now, from the medium (after
    /// [`Volume::drop_caches`], from the medium still), so the reading overlaps the work on
    /// the file before it. Errors are ignored: the read itself reports them.
    fn prefetch(&mut self, _path: &str) {}

    /// Every entry under `dir`, depth first, directories before their contents.
    fn walk(&mut self, dir: &str) -> StorageResult<Vec<Entry>> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_string()];
        while let Some(d) = stack.pop() {
            // A corrupt FAT directory entry can point back at an ancestor: without a bound
            // the walk never ends. The walk is depth first, so a loop reaches the bound fast.
            if d.split('/').count() > MAX_WALK_DEPTH {
                return Err(StorageError::Corrupt {
                    path: d,
                    what: format!(
                        "folders nested more than {MAX_WALK_DEPTH} deep (a directory that contains itself?)"
                    ),
                });
            }
            let entries = self.list(&d)?;
            // Push in reverse so that the walk visits names in sorted order.
            for e in entries.iter().rev() {
                if e.is_dir() {
                    stack.push(e.path.clone());
                }
            }
            out.extend(entries);
        }
        Ok(out)
    }
}

/// Join a relative volume path and a name.
pub fn join(dir: &str, name: &str) -> String {
    let dir = dir.trim_matches('/');
    let name = name.trim_matches('/');
    match (dir.is_empty(), name.is_empty()) {
        (true, _) => name.to_string(),
        (false, true) => dir.to_string(),
        (false, false) => format!("{dir}/{name}"),
    }
}

/// The parent of a relative path (`""` for a top-level name).
pub fn parent(path: &str) -> &str {
    match path.trim_end_matches('/').rfind('/') {
        Some(i) => &path[..i],
        None => "",
    }
}

/// The last component of a relative path.
pub fn file_name(path: &str) -> &str {
    path.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(path)
}
