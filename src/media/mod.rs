//! Media: what counts as a photo or video, skip rules, capture dates, pairs, destination layouts.
//!
//! The flow is:
//!
//! 1. [`scan`] walks the phone's roots (`DCIM` by default) through a
//!    [`Volume`](crate::storage::Volume), skips junk (thumbnails, trashed and pending files,
//!    hidden files, empty files, non-media) with a [`SkipReason`], and classifies each
//!    remaining file by its **content** ([`sniff`] over the first bytes), falling back to its
//!    extension when the content is not recognised. Files that belong together (Live Photos,
//!    RAW + JPEG, edited `IMG_E1234`) get the same [`MediaItem::pair_id`].
//! 2. [`capture_time`] reads when a photo was taken: EXIF, then QuickTime, then the file
//!    name, then the modified time; it never fails and records which source it used.
//! 3. [`destination`] turns an item into its card path for a [`Layout`].
//!
//! Nothing here prints or panics on input; every read from a file is bounded. The reasons
//! behind each rule are in `docs/MEDIA.md`.

mod date;
mod layout;
mod name_date;
mod scan;
mod sniff;

pub use date::capture_time;
pub use layout::{destination, share_pair_times, Layout, ParseLayoutError};
pub use name_date::date_from_file_name;
pub use scan::scan;
pub use sniff::{format_from_extension, sniff, SNIFF_LEN};

use std::fmt;
use std::time::SystemTime;

/// Where a [`CaptureTime`] came from, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DateSource {
    /// EXIF `DateTimeOriginal`, with `OffsetTimeOriginal` when present.
    Exif,
    /// The QuickTime/MP4 creation time (Apple `creationdate` key, else `mvhd`).
    Quicktime,
    /// A date written in the file name, such as `IMG_20240131_235959.jpg`.
    Filename,
    /// The file's modified time (or the Unix epoch when the volume has none).
    Mtime,
}

impl DateSource {
    /// The lowercase name used in reports and the manifest.
    pub fn as_str(self) -> &'static str {
        match self {
            DateSource::Exif => "exif",
            DateSource::Quicktime => "quicktime",
            DateSource::Filename => "filename",
            DateSource::Mtime => "mtime",
        }
    }
}

impl fmt::Display for DateSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// When a photo or video was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct CaptureTime {
    /// Wall-clock time where (and when) the photo was taken. For EXIF this is the camera's
    /// clock; for UTC sources (QuickTime `mvhd`, mtime) it is converted with `chrono::Local`.
    #[serde(serialize_with = "serialize_local")]
    pub local: chrono::NaiveDateTime,
    /// The UTC offset of `local`, when known.
    #[serde(serialize_with = "serialize_offset")]
    pub offset: Option<chrono::FixedOffset>,
    pub source: DateSource,
}

fn serialize_local<S: serde::Serializer>(
    local: &chrono::NaiveDateTime,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_str(&local.format("%Y-%m-%dT%H:%M:%S"))
}

fn serialize_offset<S: serde::Serializer>(
    offset: &Option<chrono::FixedOffset>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match offset {
        Some(o) => s.serialize_some(&o.to_string()),
        None => s.serialize_none(),
    }
}

impl CaptureTime {
    /// The time as an RFC 3339 string: with its offset when known
    /// (`2023-10-06T22:53:51+02:00`), else without (`2008-05-30T15:56:01`).
    pub fn to_rfc3339(&self) -> String {
        let base = self.local.format("%Y-%m-%dT%H:%M:%S").to_string();
        match self.offset {
            Some(o) => format!("{base}{o}"),
            None => base,
        }
    }
}

/// What a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    Photo,
    Video,
    /// A camera RAW (DNG, NEF, CR2, CR3, ARW, ORF, RW2, PEF, RAF, ...).
    Raw,
    /// Not a photo or video; only taken with [`ScanOptions::all_files`].
    Other,
}

/// One file a run should take.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MediaItem {
    /// Volume-relative, `/`-separated path on the phone.
    pub path: String,
    pub size: u64,
    pub modified: Option<SystemTime>,
    pub kind: MediaKind,
    /// Short format name: `jpeg`, `heic`, `heif`, `avif`, `png`, `webp`, `gif`, `tiff`,
    /// `dng`, `nef`, `cr2`, `cr3`, `arw`, `orf`, `rw2`, `pef`, `raf`, `mp4`, `mov`, `3gp`,
    /// `mkv`, `webm`, `avi`, ... ; `other` for [`MediaKind::Other`].
    pub format: &'static str,
    /// Items with the same pair id belong together (Live Photo, RAW + JPEG, edited copy) and
    /// should be moved together. `None` for a file that stands alone.
    pub pair_id: Option<String>,
}

impl MediaItem {
    /// The file name (last path component).
    pub fn name(&self) -> &str {
        crate::storage::file_name(&self.path)
    }
}

/// Why a file was left on the phone.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase", tag = "reason", content = "detail")]
pub enum SkipReason {
    /// Inside (or is) a `.thumbnails` folder: the gallery's cache.
    Thumbnails,
    /// `.trashed-*`: in the phone's recycle bin.
    Trashed,
    /// `.pending-*`: still being written by the camera app.
    Pending,
    /// `.nomedia`: a marker file, not a photo.
    Nomedia,
    /// Other hidden file or folder (leading dot).
    Hidden,
    /// Zero bytes long (often still being written).
    Empty,
    /// Neither the content nor the extension says photo or video.
    NotMedia,
    /// The file could not be read; the text says why.
    Unreadable(String),
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::Thumbnails => f.write_str("thumbnail cache"),
            SkipReason::Trashed => f.write_str("in the phone's trash"),
            SkipReason::Pending => f.write_str("still being written (pending)"),
            SkipReason::Nomedia => f.write_str(".nomedia marker"),
            SkipReason::Hidden => f.write_str("hidden"),
            SkipReason::Empty => f.write_str("empty file (0 bytes)"),
            SkipReason::NotMedia => f.write_str("not a photo or video"),
            SkipReason::Unreadable(why) => write!(f, "unreadable: {why}"),
        }
    }
}

/// A file or folder the scan left alone, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Skipped {
    /// Volume-relative path. For a skipped folder (`.thumbnails`, hidden folders) this is the
    /// folder itself; its contents are not listed one by one.
    pub path: String,
    pub reason: SkipReason,
}

/// What [`scan`] looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanOptions {
    /// Folders (volume-relative) to scan recursively. Default: `["DCIM"]`. A root that does
    /// not exist is reported in [`Scan::skipped`] as unreadable, not as an error.
    pub roots: Vec<String>,
    /// Take every file, media or not (junk such as thumbnails and empty files is still skipped).
    pub all_files: bool,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            roots: vec!["DCIM".to_string()],
            all_files: false,
        }
    }
}

/// The result of a [`scan`]: items sorted by path, and what was skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Scan {
    pub items: Vec<MediaItem>,
    pub skipped: Vec<Skipped>,
}
