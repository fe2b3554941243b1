//! Walking the phone: skip rules, content sniffing, pairs.

use std::collections::{BTreeSet, HashMap};
use std::io::Read;

use unicode_normalization::UnicodeNormalization;

use super::sniff::{classify, SNIFF_LEN};
use super::{MediaItem, MediaKind, Scan, ScanOptions, SkipReason, Skipped};
use crate::storage::{self, Entry, StorageError, Volume};

/// Most directory levels followed below a root; deeper trees are a loop or an attack, not a
/// camera folder.
const MAX_DEPTH: usize = 64;

/// Find the photos and videos under `options.roots` on `volume`.
///
/// Reads each directory once and the first [`SNIFF_LEN`] bytes of each candidate file.
/// Junk is reported in [`Scan::skipped`]; a file that cannot be read is skipped as
/// [`SkipReason::Unreadable`]. Only a failure to list a root or one of its folders is an
/// error (the phone went away, permissions), because then the scan would be incomplete.
pub fn scan(volume: &mut dyn Volume, options: &ScanOptions) -> Result<Scan, StorageError> {
    let mut out = Scan::default();
    let mut seen = BTreeSet::new();
    for root in &options.roots {
        let root = root.trim_start_matches("./").trim_matches('/');
        if root.is_empty() {
            walk(volume, "", 0, options, &mut seen, &mut out)?;
            continue;
        }
        match resolve_root(volume, root)? {
            None => out.skipped.push(Skipped {
                path: root.to_string(),
                reason: SkipReason::Unreadable("no such folder".to_string()),
            }),
            Some(entry) if !entry.is_dir() => {
                if seen.insert(entry.path.clone()) {
                    consider_file(volume, &entry, options, &mut out);
                }
            }
            Some(entry) => walk(volume, &entry.path, 0, options, &mut seen, &mut out)?,
        }
    }
    out.items.sort_by(|a, b| a.path.cmp(&b.path));
    out.skipped.sort_by(|a, b| a.path.cmp(&b.path));
    assign_pairs(&mut out.items);
    Ok(out)
}

/// The entry for `root`, matched case-insensitively component by component when the exact
/// spelling is missing (`dcim` on some phones, `Dcim` on copied folders).
fn resolve_root(volume: &mut dyn Volume, root: &str) -> Result<Option<Entry>, StorageError> {
    if let Some(entry) = volume.stat(root)? {
        return Ok(Some(entry));
    }
    let mut dir = String::new();
    let mut found = None;
    for part in root.split('/').filter(|p| !p.is_empty()) {
        let entries = match volume.list(&dir) {
            Ok(entries) => entries,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        let Some(entry) = entries
            .into_iter()
            .find(|e| e.name().to_lowercase() == part.to_lowercase())
        else {
            return Ok(None);
        };
        dir = entry.path.clone();
        found = Some(entry);
    }
    Ok(found)
}

fn walk(
    volume: &mut dyn Volume,
    dir: &str,
    depth: usize,
    options: &ScanOptions,
    seen: &mut BTreeSet<String>,
    out: &mut Scan,
) -> Result<(), StorageError> {
    let entries = match volume.list(dir) {
        Ok(entries) => entries,
        // A root that cannot be listed fails the scan; a sub-folder is reported and skipped,
        // so one unreadable folder on an MTP mount does not hide the rest of the phone.
        Err(e) if depth > 0 => {
            out.skipped.push(Skipped {
                path: dir.to_string(),
                reason: SkipReason::Unreadable(e.to_string()),
            });
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    for entry in entries {
        if !seen.insert(entry.path.clone()) {
            continue; // overlapping roots
        }
        if entry.is_dir() {
            if let Some(reason) = dir_skip_reason(entry.name()) {
                out.skipped.push(Skipped {
                    path: entry.path,
                    reason,
                });
            } else if depth + 1 >= MAX_DEPTH {
                out.skipped.push(Skipped {
                    path: entry.path,
                    reason: SkipReason::Unreadable("folders nested too deep".to_string()),
                });
            } else {
                walk(volume, &entry.path, depth + 1, options, seen, out)?;
            }
        } else {
            consider_file(volume, &entry, options, out);
        }
    }
    Ok(())
}

/// Folders never entered.
fn dir_skip_reason(name: &str) -> Option<SkipReason> {
    let lower = name.to_lowercase();
    if lower == ".thumbnails" {
        Some(SkipReason::Thumbnails)
    } else if lower.starts_with(".trashed") {
        Some(SkipReason::Trashed)
    } else if lower.starts_with(".pending") {
        Some(SkipReason::Pending)
    } else if name.starts_with('.') {
        Some(SkipReason::Hidden)
    } else {
        None
    }
}

/// Files skipped by name alone, before reading a byte.
fn file_skip_reason(name: &str) -> Option<SkipReason> {
    let lower = name.to_lowercase();
    if lower == ".nomedia" {
        Some(SkipReason::Nomedia)
    } else if lower.starts_with(".trashed-") {
        Some(SkipReason::Trashed)
    } else if lower.starts_with(".pending-") {
        Some(SkipReason::Pending)
    } else if name.starts_with('.') {
        Some(SkipReason::Hidden)
    } else {
        None
    }
}

fn consider_file(volume: &mut dyn Volume, entry: &Entry, options: &ScanOptions, out: &mut Scan) {
    let skip = |reason| Skipped {
        path: entry.path.clone(),
        reason,
    };
    let name = entry.name();
    if let Some(reason) = file_skip_reason(name) {
        out.skipped.push(skip(reason));
        return;
    }
    if entry.size == 0 {
        out.skipped.push(skip(SkipReason::Empty));
        return;
    }
    let header = match read_header(volume, &entry.path) {
        Ok(h) => h,
        Err(e) => {
            out.skipped
                .push(skip(SkipReason::Unreadable(e.to_string())));
            return;
        }
    };
    let (kind, format) = match classify(&header, name) {
        Some(found) => found,
        None if options.all_files => (MediaKind::Other, "other"),
        None => {
            out.skipped.push(skip(SkipReason::NotMedia));
            return;
        }
    };
    out.items.push(MediaItem {
        path: entry.path.clone(),
        size: entry.size,
        modified: entry.modified,
        kind,
        format,
        pair_id: None,
    });
}

fn read_header(volume: &mut dyn Volume, path: &str) -> Result<Vec<u8>, StorageError> {
    let reader = volume.open_read(path)?;
    let mut header = Vec::with_capacity(SNIFF_LEN);
    reader
        .take(SNIFF_LEN as u64)
        .read_to_end(&mut header)
        .map_err(|e| StorageError::io(path, e))?;
    Ok(header)
}

/// The key that ties a pair together: folder + stem, case-folded and NFC-normalised, with
/// Apple's edited prefix `IMG_E` mapped to `IMG_`.
pub(crate) fn pair_key(path: &str) -> String {
    let folder = storage::parent(path);
    let name = storage::file_name(path);
    let stem = match name.rsplit_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem,
        _ => name,
    };
    let mut stem: String = stem.nfc().collect::<String>().to_uppercase();
    if let Some(rest) = stem.strip_prefix("IMG_E") {
        if !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()) {
            stem = format!("IMG_{rest}");
        }
    }
    storage::join(folder, &stem)
}

/// Give every group of two or more photos/videos/RAWs with the same [`pair_key`] that key as
/// their pair id. Non-media files taken by `all_files` are never paired.
fn assign_pairs(items: &mut [MediaItem]) {
    let mut groups: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        if item.kind != MediaKind::Other {
            groups.entry(pair_key(&item.path)).or_default().push(i);
        }
    }
    for (key, members) in groups {
        if members.len() >= 2 {
            for i in members {
                items[i].pair_id = Some(key.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_keys() {
        assert_eq!(
            pair_key("DCIM/Camera/IMG_1234.HEIC"),
            "DCIM/Camera/IMG_1234"
        );
        assert_eq!(pair_key("DCIM/Camera/img_1234.mov"), "DCIM/Camera/IMG_1234");
        assert_eq!(
            pair_key("DCIM/Camera/IMG_E1234.JPG"),
            "DCIM/Camera/IMG_1234"
        );
        assert_eq!(pair_key("DCIM/Camera/IMG_EDIT.JPG"), "DCIM/Camera/IMG_EDIT");
        assert_eq!(pair_key("x.jpg"), "X");
    }

    #[test]
    fn skip_names() {
        assert_eq!(dir_skip_reason(".thumbnails"), Some(SkipReason::Thumbnails));
        assert_eq!(dir_skip_reason(".Trashed"), Some(SkipReason::Trashed));
        assert_eq!(dir_skip_reason(".git"), Some(SkipReason::Hidden));
        assert_eq!(dir_skip_reason("Camera"), None);
        assert_eq!(file_skip_reason(".nomedia"), Some(SkipReason::Nomedia));
        assert_eq!(
            file_skip_reason(".trashed-1733000000-IMG_0001.jpg"),
            Some(SkipReason::Trashed)
        );
        assert_eq!(
            file_skip_reason(".pending-1733000000-VID_0002.mp4"),
            Some(SkipReason::Pending)
        );
        assert_eq!(file_skip_reason("._IMG_0001.JPG"), Some(SkipReason::Hidden));
        assert_eq!(file_skip_reason("IMG_0001.JPG"), None);
    }
}
