//! Planning and pre-flight: where each file goes, and whether the run can fit, decided
//! before a single byte is written.

use std::collections::HashSet;

use crate::manifest::Manifest;
use crate::media::{self, CaptureTime, MediaItem};
use crate::storage::{self, names, Volume};

use super::{FileReport, PhotoOptions, Status, TransferError};

/// One item of the plan.
#[derive(Debug, Clone)]
pub struct Planned {
    pub item: MediaItem,
    /// The card path chosen before looking at what the card holds; the copy may still
    /// pick `name (1).ext` if a different file holds this name.
    pub dest: String,
    pub report: FileReport,
}

#[derive(Debug)]
pub struct Plan {
    pub items: Vec<Planned>,
    pub bytes_needed: u64,
    pub free_bytes: u64,
}

/// Why a run cannot start.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(
        "the card is too small for this run: {needed} bytes needed, {free} bytes free, {missing} bytes ({missing_h}) missing. Nothing was written and nothing was removed. Free up space on the card, use a larger card, or copy a part with --include / a smaller source folder"
    )]
    NoSpace {
        needed: u64,
        free: u64,
        missing: u64,
        missing_h: String,
    },
}

/// Make every component of `path` a name the card can hold.
fn card_path(path: &str, fat_names: bool) -> String {
    if !fat_names {
        return path.to_string();
    }
    path.split('/')
        .filter(|c| !c.is_empty())
        .map(names::sanitize_fat_name)
        .collect::<Vec<_>>()
        .join("/")
}

pub fn plan(
    phone: &mut dyn Volume,
    card: &mut dyn Volume,
    items: &[MediaItem],
    options: &PhotoOptions,
    _manifest: &Manifest,
) -> Result<Plan, TransferError> {
    let limits = card.limits();
    let space = card.space()?;
    let mut times: Vec<CaptureTime> = items
        .iter()
        .map(|it| media::capture_time(phone, it))
        .collect();
    media::share_pair_times(items, &mut times);

    let mut taken: HashSet<String> = HashSet::new();
    let mut out = Vec::with_capacity(items.len());
    let mut bytes_needed = 0u64;
    let mut new_dirs: HashSet<String> = HashSet::new();
    let mut dir_entry_bytes = 0u64;
    for (item, time) in items.iter().zip(&times) {
        let raw = media::destination(item, options.layout, Some(time));
        let mut dest = card_path(&raw, limits.fat_names);
        // Two phone files that land on one card name (case twins, or the same name in two
        // camera folders under --layout date) get `name (n).ext`, never one over the other.
        let fold = |p: &str| {
            if limits.case_insensitive {
                names::fold_case(p)
            } else {
                p.to_string()
            }
        };
        if taken.contains(&fold(&dest)) {
            let parent = storage::parent(&dest).to_string();
            let name = storage::file_name(&dest).to_string();
            let mut n = 1;
            loop {
                let cand = storage::join(&parent, &names::numbered(&name, n));
                if !taken.contains(&fold(&cand)) {
                    dest = cand;
                    break;
                }
                n += 1;
            }
        }
        taken.insert(fold(&dest));
        let renamed_from =
            (storage::file_name(&dest) != item.name()).then(|| item.name().to_string());
        let mut report = FileReport {
            source: item.path.clone(),
            destination: Some(dest.clone()),
            size: item.size,
            sha256: None,
            status: Status::Planned,
            removed: false,
            reason: None,
            renamed_from,
            captured: Some(time.to_rfc3339()),
            captured_from: Some(time.source.as_str()),
        };
        if let Some(max) = limits.max_file_size {
            if item.size > max {
                report.status = Status::Failed;
                report.reason = Some(format!(
                    "{} is 4 GiB or larger: a FAT32 card cannot hold a file this big, so it stays on the phone (copy it to an exFAT or NTFS disk instead)",
                    crate::format::human_bytes(item.size)
                ));
            }
        }
        if report.status == Status::Planned {
            let already = card.stat(&dest)?.is_some_and(|e| e.size == item.size);
            if !already {
                bytes_needed += space.allocated(item.size);
                let parent = storage::parent(&dest).to_string();
                if !parent.is_empty()
                    && !new_dirs.contains(&parent)
                    && card.stat(&parent)?.is_none()
                {
                    new_dirs.insert(parent);
                }
                // Long-name slots: 13 UTF-16 units each, plus the 8.3 entry.
                let units = storage::file_name(&dest).encode_utf16().count() as u64;
                dir_entry_bytes += 32 * (units.div_ceil(13) + 1);
            }
        }
        out.push(Planned {
            item: item.clone(),
            dest,
            report,
        });
    }
    // Room for what the run adds besides the files: new folders, directory entries, the
    // manifest pair written twice during its replacement, and a temp file's last cluster.
    let records = out.len() as u64 + 1;
    let overhead = new_dirs.len() as u64 * space.cluster_bytes
        + space.allocated(dir_entry_bytes)
        + 4 * space.allocated(records * 450)
        + 2 * space.cluster_bytes;
    if bytes_needed > 0 {
        bytes_needed += overhead;
    }
    if bytes_needed > space.free_bytes && !options.dry_run {
        let missing = bytes_needed - space.free_bytes;
        return Err(PlanError::NoSpace {
            needed: bytes_needed,
            free: space.free_bytes,
            missing,
            missing_h: crate::format::human_bytes(missing),
        }
        .into());
    }
    Ok(Plan {
        items: out,
        bytes_needed,
        free_bytes: space.free_bytes,
    })
}
