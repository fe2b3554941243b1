//! Where an item goes on the card.

use std::fmt;
use std::str::FromStr;

use chrono::Datelike;

use super::{CaptureTime, DateSource, MediaItem, MediaKind};
use crate::storage;

/// How files are arranged on the card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// The same path as on the phone: `DCIM/Camera/IMG_1234.JPG` stays
    /// `DCIM/Camera/IMG_1234.JPG`, `Pictures/Screenshots/x.png` stays
    /// `Pictures/Screenshots/x.png`.
    #[default]
    Keep,
    /// By capture month: `DCIM/YYYY/MM/<name>`.
    Date,
}

/// A layout name that is neither `keep` nor `date`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown layout {0:?}: use \"keep\" (same folders as the phone) or \"date\" (DCIM/YYYY/MM)"
)]
pub struct ParseLayoutError(pub String);

impl FromStr for Layout {
    type Err = ParseLayoutError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "keep" => Ok(Layout::Keep),
            "date" => Ok(Layout::Date),
            _ => Err(ParseLayoutError(s.to_string())),
        }
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layout::Keep => "keep",
            Layout::Date => "date",
        })
    }
}

/// The card-relative path for `item` under `layout`.
///
/// - [`Layout::Keep`]: the item's path relative to the phone root, with a first component
///   spelled `dcim` in any case written `DCIM`. Items under `DCIM` land under the card's
///   `DCIM/`; items from other roots (`Pictures/Screenshots`) keep their own folders, so that
///   nothing from outside the camera folders is mixed into `DCIM`.
/// - [`Layout::Date`]: `DCIM/YYYY/MM/<file name>` from `capture`; without one, from the
///   item's modified time (the same last resort [`capture_time`](super::capture_time) uses).
///
/// The name is not sanitised for FAT here; the transfer planner does that for every layout.
pub fn destination(item: &MediaItem, layout: Layout, capture: Option<&CaptureTime>) -> String {
    match layout {
        Layout::Keep => {
            let path = item.path.trim_matches('/');
            match path.split_once('/') {
                Some((first, rest)) if first.eq_ignore_ascii_case("dcim") => {
                    storage::join("DCIM", rest)
                }
                _ => path.to_string(),
            }
        }
        Layout::Date => {
            let local = match capture {
                Some(c) => c.local,
                None => super::date::mtime_capture(item).local,
            };
            format!(
                "DCIM/{:04}/{:02}/{}",
                local.year(),
                local.month(),
                item.name()
            )
        }
    }
}

/// Make the members of each pair share one capture time, so that `--layout date` never
/// splits a Live Photo or a RAW + JPEG across two months (a photo's EXIF local time and its
/// movie's UTC `mvhd` can fall on different sides of midnight). The shared time is the best
/// one in the pair: EXIF before QuickTime before file name before mtime, a photo before a
/// RAW before a video.
///
/// `times[i]` belongs to `items[i]`; extra entries on either side are left alone.
pub fn share_pair_times(items: &[MediaItem], times: &mut [CaptureTime]) {
    use std::collections::HashMap;
    let rank = |item: &MediaItem, t: &CaptureTime| {
        let source = match t.source {
            DateSource::Exif => 0,
            DateSource::Quicktime => 1,
            DateSource::Filename => 2,
            DateSource::Mtime => 3,
        };
        let kind = match item.kind {
            MediaKind::Photo => 0,
            MediaKind::Raw => 1,
            MediaKind::Video => 2,
            MediaKind::Other => 3,
        };
        (source, kind)
    };
    let mut best: HashMap<&str, usize> = HashMap::new();
    for (i, (item, t)) in items.iter().zip(times.iter()).enumerate() {
        if let Some(id) = item.pair_id.as_deref() {
            let better = match best.get(id) {
                Some(&j) => rank(item, t) < rank(&items[j], &times[j]),
                None => true,
            };
            if better {
                best.insert(id, i);
            }
        }
    }
    for i in 0..items.len().min(times.len()) {
        if let Some(&j) = items[i].pair_id.as_deref().and_then(|id| best.get(id)) {
            times[i] = times[j];
        }
    }
}
