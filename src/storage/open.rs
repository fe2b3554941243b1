//! Turn a CARD or PHONE argument into a [`Volume`]: a directory, an image file (with or
//! without a partition table) or a block device.
//!
//! Safety rules enforced here, before any byte is written:
//! * a block device that is mounted (it or one of its partitions appears in
//!   `/proc/self/mountinfo`) is never opened for writing: raw writes under a mounted vfat
//!   corrupt the card; the error names the mount point and the two ways out;
//! * block devices are opened for writing with `O_EXCL`, so the kernel refuses too;
//! * an image or device opened for writing is locked (`flock`) so that two runs cannot
//!   write the same card at once.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use super::dir::DirVolume;
use super::fat::{DiskSlice, FatVolume};
use super::partition::{self, Layout, Selection};
use super::{StorageError, StorageResult, Volume};

/// How to open a card.
#[derive(Debug, Clone, Copy, Default)]
pub struct CardOptions {
    /// 1-based partition number; `None` picks the first FAT partition.
    pub partition: Option<u32>,
    /// Open for writing (otherwise every write fails).
    pub write: bool,
}

/// What was opened, for `info` and for messages.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Details {
    Directory {
        path: PathBuf,
        file_system: String,
    },
    Image {
        path: PathBuf,
        device: bool,
        layout: Layout,
        selection: Selection,
    },
}

/// An opened card or phone.
pub struct Card {
    pub volume: Box<dyn Volume>,
    pub details: Details,
    /// Things the user should know (e.g. reading a mounted device).
    pub warnings: Vec<String>,
    fat_info: Option<sdexport_fat::VolumeInfo>,
}

impl Card {
    /// The FAT engine's view of the volume, for FAT images and devices.
    pub fn fat_info(&self) -> Option<&sdexport_fat::VolumeInfo> {
        self.fat_info.as_ref()
    }
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

/// Open `path` as a card or phone.
pub fn open_card(path: &Path, options: CardOptions) -> StorageResult<Card> {
    let meta = fs::metadata(path).map_err(|e| StorageError::io(display(path), e))?;
    if meta.is_dir() {
        if options.partition.is_some() {
            return Err(StorageError::Other(format!(
                "{} is a directory: --partition applies only to images and devices",
                path.display()
            )));
        }
        let v = DirVolume::open(path)?;
        let fs_name = v.fs_type().name();
        return Ok(Card {
            details: Details::Directory {
                path: path.to_path_buf(),
                file_system: fs_name,
            },
            volume: Box::new(v),
            warnings: Vec::new(),
            fat_info: None,
        });
    }
    let is_device = meta.file_type().is_block_device();
    if !is_device && !meta.is_file() {
        return Err(StorageError::Unrecognised {
            path: display(path),
            what: "not a directory, an image file or a block device".into(),
        });
    }
    let mut warnings = Vec::new();
    if is_device {
        if let Some(mp) = mount_point_of(meta.rdev()) {
            if options.write {
                return Err(StorageError::Mounted {
                    path: display(path),
                    mount_point: mp,
                });
            }
            warnings.push(format!(
                "{} is mounted at {mp}: reading the raw device may show a stale view; pass {mp} as the card for the kernel's view",
                path.display()
            ));
        }
    }
    let mut oo = OpenOptions::new();
    oo.read(true);
    if options.write {
        oo.write(true);
        if is_device {
            oo.custom_flags(libc::O_EXCL);
        }
    }
    let mut file = oo.open(path).map_err(|e| {
        let hint = match e.kind() {
            io::ErrorKind::PermissionDenied => " (permission denied: run with access to the device, e.g. via sudo or the disk group)",
            _ if e.raw_os_error() == Some(libc::EBUSY) => " (the device is busy: mounted or in use by another program)",
            _ => "",
        };
        StorageError::Other(format!("{}: cannot open: {e}{hint}", path.display()))
    })?;
    if options.write {
        lock_exclusive(&file).map_err(|_| {
            StorageError::Other(format!(
                "{} is in use by another sdexport run; wait for it to finish",
                path.display()
            ))
        })?;
    }
    let disk_bytes = file
        .seek(SeekFrom::End(0))
        .map_err(|e| StorageError::io(display(path), e))?;
    let layout =
        partition::detect(&mut file, disk_bytes).map_err(|e| StorageError::Unrecognised {
            path: display(path),
            what: e.to_string(),
        })?;
    let selection =
        partition::select(&layout, options.partition).map_err(|e| StorageError::Unrecognised {
            path: display(path),
            what: e.to_string(),
        })?;
    let len = volume_len(&file, &selection, disk_bytes, &mut warnings, path);
    let slice = DiskSlice::new(file, selection.offset, len, is_device);
    let name = match selection.partition {
        Some(n) => format!("{}, partition {n}", path.display()),
        None => display(path),
    };
    let vol = FatVolume::open(slice, name).map_err(|e| StorageError::Unrecognised {
        path: display(path),
        what: match e {
            sdexport_fat::Error::Corrupt { what } => format!(
                "not a usable FAT volume{}: {what}",
                selection
                    .partition
                    .map(|n| format!(" in partition {n}"))
                    .unwrap_or_default()
            ),
            other => other.to_string(),
        },
    })?;
    let fat_info = Some(vol.info());
    let mut vol = vol;
    if options.write {
        warnings.extend(vol.prepare_for_writing(&crate::transfer::REPAIR_POLICY)?);
    }
    Ok(Card {
        volume: Box::new(vol),
        details: Details::Image {
            path: path.to_path_buf(),
            device: is_device,
            layout,
            selection,
        },
        warnings,
        fat_info,
    })
}

/// The bytes to give the FAT engine. A volume whose boot sector claims more than its
/// partition (`mkfs.fat --offset` on a whole GPT image makes one that runs over the backup
/// table) is opened at its own size when the disk holds it, with a warning, as mtools does;
/// one larger than the disk is left to the engine, which refuses it as truncated.
fn volume_len(
    file: &File,
    sel: &Selection,
    disk_bytes: u64,
    warnings: &mut Vec<String>,
    path: &Path,
) -> u64 {
    use std::os::unix::fs::FileExt;
    let mut vbr = [0u8; 512];
    if file.read_exact_at(&mut vbr, sel.offset).is_err() {
        return sel.len;
    }
    let bps = u16::from_le_bytes([vbr[11], vbr[12]]) as u64;
    let total16 = u16::from_le_bytes([vbr[19], vbr[20]]) as u64;
    let total32 = u32::from_le_bytes([vbr[32], vbr[33], vbr[34], vbr[35]]) as u64;
    let claimed = bps.saturating_mul(if total16 != 0 { total16 } else { total32 });
    let room = disk_bytes.saturating_sub(sel.offset);
    if claimed > sel.len && claimed <= room && sel.partition.is_some() {
        warnings.push(format!(
            "{}: the FAT volume in partition {} claims {} bytes, more than its partition ({} bytes); using the volume's own size",
            path.display(),
            sel.partition.unwrap_or(0),
            claimed,
            sel.len
        ));
        return claimed;
    }
    sel.len
}

fn lock_exclusive(file: &File) -> io::Result<()> {
    // SAFETY: valid fd; flock has no memory effects.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The mount point of the block device `rdev` or of any of its partitions, if mounted.
pub fn mount_point_of(rdev: u64) -> Option<String> {
    let major = libc::major(rdev);
    let minor = libc::minor(rdev);
    let ours = fs::canonicalize(format!("/sys/dev/block/{major}:{minor}")).ok();
    let info = fs::read_to_string("/proc/self/mountinfo").ok()?;
    for line in info.lines() {
        // Fields: id parent major:minor root mount-point options ... - fstype source ...
        let mut f = line.split(' ');
        let (Some(_), Some(_), Some(dev), Some(_), Some(mp)) =
            (f.next(), f.next(), f.next(), f.next(), f.next())
        else {
            continue;
        };
        if dev == format!("{major}:{minor}") {
            return Some(unescape_mount(mp));
        }
        // A partition of our device: its sysfs path lies under ours.
        if let (Some(ours), Ok(theirs)) = (&ours, fs::canonicalize(format!("/sys/dev/block/{dev}")))
        {
            if theirs.starts_with(ours) && theirs != *ours {
                return Some(unescape_mount(mp));
            }
        }
    }
    None
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo` octal.
fn unescape_mount(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            if let Some(v) = s
                .get(i + 1..i + 4)
                .and_then(|o| u8::from_str_radix(o, 8).ok())
            {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_are_unescaped() {
        assert_eq!(unescape_mount("/media/my\\040card"), "/media/my card");
        assert_eq!(unescape_mount("/plain"), "/plain");
    }
}
