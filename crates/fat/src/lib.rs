//! A FAT12/16/32 engine written for moving photos onto SD cards.
//!
//! CONTRACT (the `sdexport` crate builds against exactly these signatures; the bodies are
//! being implemented in this crate — see `docs/ARCHITECTURE.md`):
//!
//! * The storage is any `Read + Write + Seek`; byte 0 of the storage is byte 0 of the FAT
//!   volume (the caller slices partitions out of a disk).
//! * Paths are `/`-separated, relative to the root; a leading `/` is allowed; `""` and `"/"`
//!   are the root. Lookups are case-insensitive (ASCII + simple Unicode upper-casing), as on
//!   every FAT implementation.
//! * Times are the naive local date-times FAT stores (2-second resolution for modified).
//! * Nothing here panics on disk contents: corrupt structures become [`Error::Corrupt`].

use std::io::{Read, Seek, Write};

use chrono::NaiveDateTime;

mod error;
pub use error::{Error, Result};

/// Anything the engine can run on.
pub trait Storage: Read + Write + Seek {}
impl<T: Read + Write + Seek> Storage for T {}

/// The three FAT variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FatType {
    Fat12,
    Fat16,
    Fat32,
}

/// How to lay out a new volume. `None` fields are chosen like the SD Association's formatter.
#[derive(Debug, Clone, Default)]
pub struct FormatOptions {
    /// Size of the volume in bytes (the storage may be larger).
    pub volume_bytes: u64,
    pub fat_type: Option<FatType>,
    pub bytes_per_cluster: Option<u32>,
    /// Up to 11 characters that FAT short names allow; `None` = `NO NAME`.
    pub label: Option<String>,
    pub volume_id: Option<u32>,
    /// LBA of the partition start on the disk (BPB HiddSec); 0 for a superfloppy.
    pub hidden_sectors: u32,
}

/// What [`FileSystem::info`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeInfo {
    pub fat_type: FatType,
    pub bytes_per_sector: u32,
    pub bytes_per_cluster: u32,
    pub total_clusters: u32,
    pub free_clusters: u32,
    pub label: Option<String>,
    pub volume_id: u32,
    pub oem_name: String,
    /// The dirty flag was set when the volume was opened (not cleanly unmounted).
    pub was_dirty: bool,
}

/// One directory entry as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// The long name if there is one, else the short name as displayed (`README.TXT`,
    /// lower-cased parts honoured).
    pub name: String,
    /// The 8.3 name as displayed, e.g. `IMG_20~1.JPG`.
    pub short_name: String,
    pub is_dir: bool,
    pub size: u64,
    pub modified: Option<NaiveDateTime>,
    pub created: Option<NaiveDateTime>,
    pub attributes: u8,
}

/// One problem found by [`FileSystem::check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    LostClusters { count: u32 },
    CrossLinked { cluster: u32, paths: Vec<String> },
    ChainLoops { path: String },
    ChainOutOfRange { path: String, cluster: u32 },
    ChainHitsFree { path: String, cluster: u32 },
    SizeMismatch { path: String, size: u64, chain_bytes: u64 },
    BadDotEntries { path: String },
    FatCopiesDiffer,
    FreeCountWrong { recorded: u32, actual: u32 },
    Other { path: String, what: String },
}

/// The result of a full consistency walk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    pub files: u64,
    pub directories: u64,
    pub problems: Vec<Problem>,
}

/// Write a fresh, empty file system onto `storage` (byte 0 = volume start).
pub fn format<S: Storage>(storage: &mut S, options: &FormatOptions) -> Result<()> {
    let _ = (storage, options);
    Err(Error::Unsupported("format: not implemented yet".into()))
}

/// An open FAT volume.
pub struct FileSystem<S: Storage> {
    storage: S,
}

/// A file open for reading: `Read + Seek`, borrowing the file system.
pub struct File<'a, S: Storage> {
    fs: &'a mut FileSystem<S>,
}

/// A new file being written. Data goes to freshly allocated clusters; nothing is visible
/// under the file's name with a non-zero size until [`FileWriter::finish`] commits the
/// chain (FAT first, then the directory entry). Dropping without `finish` leaves an empty
/// file and, at worst, lost clusters that `flush` reclaims.
pub struct FileWriter<'a, S: Storage> {
    fs: &'a mut FileSystem<S>,
}

impl<S: Storage> FileSystem<S> {
    /// Open and validate a volume. Errors: `Corrupt` (with the field and value),
    /// `Unsupported` (e.g. exFAT), `Io`.
    pub fn open(storage: S) -> Result<Self> {
        let _ = storage;
        Err(Error::Unsupported("open: not implemented yet".into()))
    }
    pub fn info(&self) -> VolumeInfo {
        unimplemented!()
    }
    pub fn free_bytes(&self) -> u64 {
        unimplemented!()
    }
    /// Entries of a directory, without `.` and `..` and the volume label.
    pub fn list_dir(&mut self, path: &str) -> Result<Vec<DirEntry>> {
        let _ = path;
        unimplemented!()
    }
    /// `Error::NotFound` when absent. The root is a directory entry named `""`.
    pub fn stat(&mut self, path: &str) -> Result<DirEntry> {
        let _ = path;
        unimplemented!()
    }
    pub fn open_file(&mut self, path: &str) -> Result<File<'_, S>> {
        let _ = path;
        unimplemented!()
    }
    /// Create a new, empty file; `Error::AlreadyExists` if the name exists in any case.
    /// Invalid names give `Error::InvalidName`. The parent must exist.
    pub fn create_file(&mut self, path: &str) -> Result<FileWriter<'_, S>> {
        let _ = path;
        unimplemented!()
    }
    /// Create one directory (parent must exist); `AlreadyExists` if present.
    pub fn create_dir(&mut self, path: &str) -> Result<()> {
        let _ = path;
        unimplemented!()
    }
    /// Rename or move a file or directory; fails with `AlreadyExists` if `to` exists
    /// (except when `to` differs from `from` only in case: that is a case change).
    pub fn rename(&mut self, from: &str, to: &str) -> Result<()> {
        let _ = (from, to);
        unimplemented!()
    }
    /// Remove a file, or an empty directory (`DirectoryNotEmpty` otherwise).
    pub fn remove(&mut self, path: &str) -> Result<()> {
        let _ = path;
        unimplemented!()
    }
    pub fn set_times(
        &mut self,
        path: &str,
        modified: Option<NaiveDateTime>,
        created: Option<NaiveDateTime>,
    ) -> Result<()> {
        let _ = (path, modified, created);
        unimplemented!()
    }
    /// Write every pending change (FAT copies, directory entries, FSInfo), clear the dirty
    /// flag and flush the storage. After `flush` the volume is clean for `fsck.fat -n`.
    pub fn flush(&mut self) -> Result<()> {
        unimplemented!()
    }
    /// Forget cached file data and directory contents so that the next reads come from
    /// the storage (used before read-back verification). Implies `flush`.
    pub fn drop_caches(&mut self) -> Result<()> {
        unimplemented!()
    }
    /// Walk the whole volume and report inconsistencies; never modifies anything.
    pub fn check(&mut self) -> Result<CheckReport> {
        unimplemented!()
    }
    pub fn storage_mut(&mut self) -> &mut S {
        &mut self.storage
    }
    /// Flush and give the storage back.
    pub fn into_inner(mut self) -> Result<S> {
        self.flush()?;
        Ok(self.storage)
    }
}

impl<S: Storage> Read for File<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let _ = (&self.fs, buf);
        unimplemented!()
    }
}
impl<S: Storage> Seek for File<'_, S> {
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        let _ = pos;
        unimplemented!()
    }
}
impl<S: Storage> Write for FileWriter<'_, S> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = (&self.fs, buf);
        unimplemented!()
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
impl<S: Storage> FileWriter<'_, S> {
    /// Commit the file: data written, FAT chain linked, directory entry updated with size
    /// and the modified time (if given, else now). Returns the size.
    pub fn finish(self, modified: Option<NaiveDateTime>) -> Result<u64> {
        let _ = modified;
        unimplemented!()
    }
}

/// Check a name against what FAT long names can hold. Used by callers to sanitise.
pub fn validate_name(name: &str) -> Result<()> {
    let _ = name;
    unimplemented!()
}
