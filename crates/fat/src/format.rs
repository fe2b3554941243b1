//! Formatting: choose a layout like the SD Association's formatter (cluster size and data
//! alignment from its capacity table, FAT_NOTES §6) while staying inside the cluster-count
//! ranges every implementation agrees on, then write boot sector(s), FSInfo, FATs and the
//! root directory.

use std::io::SeekFrom;

use crate::boot::{self, Bpb};
use crate::dir::{self, ATTR_VOLUME};
use crate::{Error, FatType, FormatOptions, Result, Storage};

const BPS: u64 = 512;

/// Cluster-count ranges where Linux, fsck.fat, FatFs, Windows and mkfs.fat all agree.
fn count_range(t: FatType) -> (u64, u64) {
    match t {
        FatType::Fat12 => (1, 4084),
        FatType::Fat16 => (4087, 65524),
        FatType::Fat32 => (65526, 0x0FFF_FFF5),
    }
}

/// SD formatter table: (cluster bytes, boundary unit bytes) by capacity.
fn sd_table(bytes: u64) -> (u64, u64) {
    const MIB: u64 = 1024 * 1024;
    if bytes <= 8 * MIB {
        (8 * 1024, 8 * 1024)
    } else if bytes <= 64 * MIB {
        (16 * 1024, 16 * 1024)
    } else if bytes <= 256 * MIB {
        (16 * 1024, 32 * 1024)
    } else if bytes <= 1024 * MIB {
        (16 * 1024, 64 * 1024)
    } else if bytes <= 2048 * MIB {
        (32 * 1024, 64 * 1024)
    } else {
        (32 * 1024, 4 * MIB)
    }
}

/// The default FAT type: FAT32 from 64 MiB, FAT16 from 16 MiB, FAT12 below.
fn default_type(bytes: u64) -> FatType {
    const MIB: u64 = 1024 * 1024;
    if bytes >= 64 * MIB {
        FatType::Fat32
    } else if bytes >= 16 * MIB {
        FatType::Fat16
    } else {
        FatType::Fat12
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub fat_type: FatType,
    pub spc: u64,
    pub reserved: u64,
    pub fat_size: u64,
    pub root_entries: u64,
    pub total: u64,
    pub clusters: u64,
}

fn layout(total: u64, spc: u64, t: FatType, boundary: u64, hidden: u64) -> Option<Layout> {
    let (root_entries, rsvd_min, bits) = match t {
        FatType::Fat12 => (512, 1, 12),
        FatType::Fat16 => (512, 1, 16),
        FatType::Fat32 => (0, 32, 32),
    };
    let root_secs = root_entries * 32 / BPS;
    let est = total.checked_sub(rsvd_min + root_secs)? / spc;
    let fat_size = ((est + 2) * bits).div_ceil(8).div_ceil(BPS);
    let base = hidden + rsvd_min + 2 * fat_size + root_secs;
    let pad = (boundary - base % boundary) % boundary;
    let reserved = rsvd_min + pad;
    if reserved > 0xFFFF {
        return None;
    }
    let data_start = reserved + 2 * fat_size + root_secs;
    if data_start >= total {
        return None;
    }
    let clusters = (total - data_start) / spc;
    let (lo, hi) = count_range(t);
    if clusters < lo || clusters > hi {
        return None;
    }
    if t != FatType::Fat32 && fat_size > 0xFFFF {
        return None;
    }
    Some(Layout {
        fat_type: t,
        spc,
        reserved,
        fat_size,
        root_entries,
        total,
        clusters,
    })
}

pub(crate) fn plan(o: &FormatOptions) -> Result<Layout> {
    let total = o.volume_bytes / BPS;
    if total < 64 {
        return Err(Error::Unsupported(format!(
            "volume of {} bytes is too small for FAT",
            o.volume_bytes
        )));
    }
    if total > u64::from(u32::MAX) {
        return Err(Error::Unsupported(format!(
            "volume of {} bytes is too large for FAT with 512-byte sectors",
            o.volume_bytes
        )));
    }
    let t = o.fat_type.unwrap_or_else(|| default_type(o.volume_bytes));
    let (table_cluster, boundary) = sd_table(o.volume_bytes);
    let candidates: Vec<u64> = match o.bytes_per_cluster {
        Some(b) => {
            let b = u64::from(b);
            if !b.is_power_of_two() || !(512..=64 * 1024).contains(&b) {
                return Err(Error::Unsupported(format!("cluster size of {b} bytes")));
            }
            vec![b]
        }
        None => {
            // The formatter's size first; then smaller (more clusters), then larger.
            let mut v = vec![table_cluster];
            let mut c = table_cluster / 2;
            while c >= 512 {
                v.push(c);
                c /= 2;
            }
            let mut c = table_cluster * 2;
            while c <= 64 * 1024 {
                v.push(c);
                c *= 2;
            }
            v
        }
    };
    for cb in candidates {
        let spc = cb / BPS;
        let bnd = boundary.max(cb) / BPS;
        if let Some(l) = layout(total, spc, t, bnd, u64::from(o.hidden_sectors)) {
            return Ok(l);
        }
    }
    Err(Error::Unsupported(format!(
        "no cluster size gives a valid {t:?} cluster count for {} bytes",
        o.volume_bytes
    )))
}

fn label_bytes(label: Option<&str>) -> Result<[u8; 11]> {
    let mut out = *b"NO NAME    ";
    let Some(l) = label else {
        return Ok(out);
    };
    let up = l.to_ascii_uppercase();
    let ok = up.len() <= 11
        && !up.is_empty()
        && !up.starts_with(' ')
        && up.bytes().all(|c| {
            c == b' '
                || c.is_ascii_uppercase()
                || c.is_ascii_digit()
                || b"!#$%&'()-@^_`{}~".contains(&c)
        });
    if !ok {
        return Err(Error::InvalidName {
            name: l.to_string(),
            reason: "a volume label is 1 to 11 characters allowed in short names".into(),
        });
    }
    out = [b' '; 11];
    out[..up.len()].copy_from_slice(up.as_bytes());
    Ok(out)
}

fn write_at<S: Storage>(s: &mut S, off: u64, b: &[u8]) -> Result<()> {
    s.seek(SeekFrom::Start(off))?;
    s.write_all(b)?;
    Ok(())
}

fn zero<S: Storage>(s: &mut S, off: u64, len: u64) -> Result<()> {
    let buf = vec![0u8; (1 << 20).min(len as usize)];
    s.seek(SeekFrom::Start(off))?;
    let mut left = len;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        s.write_all(&buf[..n])?;
        left -= n as u64;
    }
    Ok(())
}

pub(crate) fn format<S: Storage>(s: &mut S, o: &FormatOptions) -> Result<()> {
    let l = plan(o)?;
    let label = label_bytes(o.label.as_deref())?;
    let has_label = o.label.is_some();
    let volume_id = o.volume_id.unwrap_or_else(|| {
        let n = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        (n as u32) ^ ((n >> 32) as u32)
    });
    let fat32 = l.fat_type == FatType::Fat32;
    let total_bytes = l.total * BPS;
    // Make an image file as long as the volume (sparse); a device already is.
    let len = s.seek(SeekFrom::End(0))?;
    if len < total_bytes {
        write_at(s, total_bytes - BPS, &[0u8; BPS as usize])?;
    }
    let root_secs = l.root_entries * 32 / BPS;
    let meta_end = l.reserved + 2 * l.fat_size + root_secs;
    zero(s, 0, meta_end * BPS)?;
    let cb = l.spc * BPS;
    if fat32 {
        // The root directory is cluster 2, right at the (aligned) data start.
        zero(s, meta_end * BPS, cb)?;
    }

    let bpb = Bpb {
        jump: if fat32 {
            [0xEB, 0x58, 0x90]
        } else {
            [0xEB, 0x3C, 0x90]
        },
        oem: *b"MSWIN4.1",
        bytes_per_sector: BPS as u16,
        sectors_per_cluster: l.spc as u8,
        reserved_sectors: l.reserved as u16,
        num_fats: 2,
        root_entries: l.root_entries as u16,
        total_sectors_16: if !fat32 && l.total < 0x10000 {
            l.total as u16
        } else {
            0
        },
        media: 0xF8,
        fat_size_16: if fat32 { 0 } else { l.fat_size as u16 },
        sectors_per_track: 63,
        num_heads: 255,
        hidden_sectors: o.hidden_sectors,
        total_sectors_32: if !fat32 && l.total < 0x10000 {
            0
        } else {
            l.total as u32
        },
        fat_size_32: if fat32 { l.fat_size as u32 } else { 0 },
        ext_flags: 0,
        fs_version: 0,
        root_cluster: if fat32 { 2 } else { 0 },
        fsinfo_sector: if fat32 { 1 } else { 0 },
        backup_boot_sector: if fat32 { 6 } else { 0 },
        drive_number: 0x80,
        state: 0,
        boot_sig: 0x29,
        volume_id,
        label,
        fs_type: match l.fat_type {
            FatType::Fat12 => *b"FAT12   ",
            FatType::Fat16 => *b"FAT16   ",
            FatType::Fat32 => *b"FAT32   ",
        },
    };
    let mut sec = [0u8; BPS as usize];
    bpb.serialize(&mut sec);
    // A boot "program" that just halts, where the jump lands.
    let code = if fat32 { 0x5A } else { 0x3E };
    sec[code..code + 3].copy_from_slice(&[0xF4, 0xEB, 0xFD]);
    // Validate our own output exactly as `open` will.
    bpb.validate()?;

    // FATs: entry 0 = media byte with all other bits set, entry 1 = EOC, FAT32 root = EOC.
    let mut first = [0u8; BPS as usize];
    match l.fat_type {
        FatType::Fat12 => first[..3].copy_from_slice(&[0xF8, 0xFF, 0xFF]),
        FatType::Fat16 => first[..4].copy_from_slice(&[0xF8, 0xFF, 0xFF, 0xFF]),
        FatType::Fat32 => {
            boot::put32(&mut first, 0, 0x0FFF_FFF8);
            boot::put32(&mut first, 4, 0x0FFF_FFFF);
            boot::put32(&mut first, 8, 0x0FFF_FFFF);
        }
    }
    for copy in 0..2 {
        write_at(s, (l.reserved + copy * l.fat_size) * BPS, &first)?;
    }

    if has_label {
        let e = dir::new_entry(&label, ATTR_VOLUME, 0, dir::now());
        let off = (l.reserved + 2 * l.fat_size) * BPS;
        write_at(s, off, &e)?;
    }

    if fat32 {
        let mut fsi = [0u8; BPS as usize];
        boot::put32(&mut fsi, 0, boot::FSINFO_LEAD);
        boot::put32(&mut fsi, 484, boot::FSINFO_STRUC);
        boot::put32(&mut fsi, boot::FSINFO_OFF_FREE, (l.clusters - 1) as u32);
        boot::put32(&mut fsi, boot::FSINFO_OFF_NEXT, 3);
        boot::put32(&mut fsi, 508, boot::FSINFO_TRAIL);
        write_at(s, BPS, &fsi)?;
        // The backup FSInfo says "unknown": it is never updated, so it can never be stale.
        boot::put32(&mut fsi, boot::FSINFO_OFF_FREE, 0xFFFF_FFFF);
        boot::put32(&mut fsi, boot::FSINFO_OFF_NEXT, 0xFFFF_FFFF);
        write_at(s, 7 * BPS, &fsi)?;
        let mut sig = [0u8; BPS as usize];
        sig[510] = 0x55;
        sig[511] = 0xAA;
        write_at(s, 2 * BPS, &sig)?;
        write_at(s, 8 * BPS, &sig)?;
        write_at(s, 6 * BPS, &sec)?;
    }
    // Sector 0 last: until it is written the volume is not recognisable as FAT.
    write_at(s, 0, &sec)?;
    s.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(bytes: u64, t: Option<FatType>) -> Layout {
        plan(&FormatOptions {
            volume_bytes: bytes,
            fat_type: t,
            ..Default::default()
        })
        .unwrap()
    }

    #[test]
    fn defaults_by_size() {
        const MIB: u64 = 1024 * 1024;
        assert_eq!(p(4 * MIB, None).fat_type, FatType::Fat12);
        assert_eq!(p(32 * MIB, None).fat_type, FatType::Fat16);
        assert_eq!(p(64 * MIB, None).fat_type, FatType::Fat32);
        let l = p(4096 * MIB, None);
        assert_eq!((l.fat_type, l.spc), (FatType::Fat32, 64));
        // Cluster 2 is 4 MiB-aligned like the SD formatter's.
        assert_eq!((l.reserved + 2 * l.fat_size) % 8192, 0);
        let l = p(32 * 1024 * MIB, None);
        assert_eq!(l.spc, 64);
        assert_eq!(p(1024 * MIB, Some(FatType::Fat16)).spc, 32);
    }
}
