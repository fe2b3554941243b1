//! `sdexport format`: make a new card image (or re-format a device) the way SD cards come
//! from the factory.

use std::fs::{self, OpenOptions};
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use sdexport_fat::{self as fat, FatType};

use crate::error::{Error, Result};
use crate::storage::fat::DiskSlice;
use crate::storage::open::mount_point_of;
use crate::storage::partition::{self, TableKind};
use crate::storage::StorageError;

/// Where the first partition starts with `--mbr`: 4 MiB, the SD Association's boundary unit
/// for SDHC cards, so that clusters line up with the card's erase blocks.
pub const MBR_PARTITION_START: u64 = 4 << 20;

#[derive(Debug, Clone, Default)]
pub struct FormatRequest {
    /// Size of a new image; `None` keeps the size of an existing file or device (`--force`).
    pub size: Option<u64>,
    pub fat_type: Option<FatType>,
    pub label: Option<String>,
    pub mbr: bool,
    /// Erase an existing file or device.
    pub force: bool,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct FormatReport {
    pub path: String,
    pub disk_bytes: u64,
    pub table: TableKind,
    pub partition_offset: u64,
    pub fat_type: String,
    pub cluster_bytes: u32,
    pub total_bytes: u64,
    pub label: Option<String>,
    /// What was there before and has been erased (only with `--force`).
    pub erased: Option<String>,
}

pub fn fat_type_name(t: FatType) -> &'static str {
    match t {
        FatType::Fat12 => "FAT12",
        FatType::Fat16 => "FAT16",
        FatType::Fat32 => "FAT32",
    }
}

/// What is at `path` now, in words, for the `--force` message.
pub fn describe_existing(path: &Path) -> Option<String> {
    let meta = fs::metadata(path).ok()?;
    let kind = if meta.file_type().is_block_device() {
        "block device"
    } else {
        "file"
    };
    let size = if meta.file_type().is_block_device() {
        fs::File::open(path)
            .and_then(|mut f| f.seek(SeekFrom::End(0)))
            .unwrap_or(0)
    } else {
        meta.len()
    };
    Some(format!("{kind} {} of {} bytes", path.display(), size))
}

pub fn format_card(path: &Path, req: &FormatRequest) -> Result<FormatReport> {
    let shown = path.display().to_string();
    let existing = fs::metadata(path).ok();
    if let Some(meta) = &existing {
        if meta.is_dir() {
            return Err(Error::Refused(format!(
                "{shown} is a directory: format makes an image file or formats a device"
            )));
        }
        if !req.force {
            return Err(Error::Refused(format!(
                "{shown} already exists ({}); nothing was changed. Add --force to erase it and everything on it",
                describe_existing(path).unwrap_or_default()
            )));
        }
        if meta.file_type().is_block_device() {
            if let Some(mp) = mount_point_of(meta.rdev()) {
                return Err(StorageError::Mounted {
                    path: shown,
                    mount_point: mp,
                }
                .into());
            }
        }
    }
    let erased = if existing.is_some() {
        describe_existing(path)
    } else {
        None
    };
    let is_device = existing
        .as_ref()
        .is_some_and(|m| m.file_type().is_block_device());
    let mut oo = OpenOptions::new();
    oo.read(true).write(true);
    if existing.is_none() {
        oo.create_new(true);
    } else if is_device {
        oo.custom_flags(libc::O_EXCL);
    }
    let mut file = oo.open(path).map_err(|e| Error::io(&shown, e))?;
    let disk_bytes = match (req.size, is_device) {
        (Some(size), false) => {
            file.set_len(size).map_err(|e| Error::io(&shown, e))?;
            size
        }
        (Some(_), true) => {
            return Err(Error::Refused(format!(
                "{shown} is a device: its size is fixed; drop --size"
            )));
        }
        (None, _) => file
            .seek(SeekFrom::End(0))
            .map_err(|e| Error::io(&shown, e))?,
    };
    if disk_bytes == 0 {
        return Err(Error::Refused(format!(
            "{shown}: no size given; use --size, e.g. --size 256M"
        )));
    }
    let start = if req.mbr { MBR_PARTITION_START } else { 0 };
    if req.mbr && disk_bytes < 2 * MBR_PARTITION_START {
        return Err(Error::Refused(format!(
            "--mbr needs at least {} MiB: the partition starts at 4 MiB",
            (2 * MBR_PARTITION_START) >> 20
        )));
    }
    let file_for_fs = file.try_clone().map_err(|e| Error::io(&shown, e))?;
    let mut slice = DiskSlice::new(file_for_fs, start, disk_bytes - start, is_device);
    let options = fat::FormatOptions {
        volume_bytes: disk_bytes - start,
        fat_type: req.fat_type,
        bytes_per_cluster: None,
        label: req.label.clone(),
        volume_id: None,
        hidden_sectors: (start / partition::SECTOR) as u32,
    };
    fat::format(&mut slice, &options).map_err(|e| crate::storage::fat::map_err(&shown, e))?;
    slice
        .seek(SeekFrom::Start(0))
        .map_err(|e| Error::io(&shown, e))?;
    let fs = fat::FileSystem::open(slice).map_err(|e| crate::storage::fat::map_err(&shown, e))?;
    let info = fs.info();
    drop(fs);
    if req.mbr {
        let sys = match info.fat_type {
            FatType::Fat32 => 0x0C,
            FatType::Fat16 => 0x0E,
            FatType::Fat12 => 0x01,
        };
        partition::write_mbr(&mut file, disk_bytes, start, sys)
            .map_err(|e| Error::io(&shown, e))?;
    }
    file.sync_all().map_err(|e| Error::io(&shown, e))?;
    Ok(FormatReport {
        path: shown,
        disk_bytes,
        table: if req.mbr {
            TableKind::Mbr
        } else {
            TableKind::None
        },
        partition_offset: start,
        fat_type: fat_type_name(info.fat_type).into(),
        cluster_bytes: info.bytes_per_cluster,
        total_bytes: info.total_clusters as u64 * info.bytes_per_cluster as u64,
        label: info.label,
        erased,
    })
}

/// Sizes for people: `512 B`, `1.5 GiB` (binary units).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Parse sizes like `256M`, `2G`, `1048576`, `1.5G` (binary units).
pub fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size; try 256M or 2G"))?;
    let mult: u64 = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        "T" | "TB" | "TIB" => 1 << 40,
        other => return Err(format!("unknown size unit {other:?}; use K, M, G or T")),
    };
    let bytes = value * mult as f64;
    if !(bytes.is_finite() && bytes >= 1.0 && bytes < u64::MAX as f64) {
        return Err(format!("{s:?} is not a usable size"));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("256M"), Ok(256 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("1.5K"), Ok(1536));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("abc").is_err());
        assert!(parse_size("10Q").is_err());
        assert!(parse_size("0").is_err());
    }
}
