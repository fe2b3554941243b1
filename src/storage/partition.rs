//! Finding the FAT volume on a disk: none (a "superfloppy"), MBR or GPT.
//!
//! Cards come from the factory with an MBR whose first partition starts at 4 MiB; cameras
//! and `mkfs.fat` on a whole device make superfloppies; some laptops write GPT. We read the
//! four primary MBR entries with `mbrman` and GPT with `gpt`, then look at each
//! partition's first sector to tell FAT from exFAT or anything else, so that the error for
//! a card we cannot use names what is there.
//!
//! Logical partitions inside an extended MBR partition are not followed: SD cards do not
//! use them, and following an EBR chain from hostile bytes is a loop hazard.

use std::fmt;
use std::io::{self, Read, Seek, SeekFrom, Write};

/// Sector size assumed for partition tables (every SD card and image we know uses 512).
pub const SECTOR: u64 = 512;

/// Which partition table a disk has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TableKind {
    /// No table: the FAT volume starts at byte 0.
    None,
    Mbr,
    Gpt,
}

impl fmt::Display for TableKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TableKind::None => "none (superfloppy)",
            TableKind::Mbr => "MBR",
            TableKind::Gpt => "GPT",
        })
    }
}

/// What a partition's (or the disk's) first sector holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Content {
    Fat,
    Exfat,
    Other,
}

/// One partition of a disk.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PartitionInfo {
    /// 1-based, as `fdisk` numbers them.
    pub index: u32,
    pub start_bytes: u64,
    pub size_bytes: u64,
    /// MBR type byte or GPT type name.
    pub type_name: String,
    pub content: Content,
}

/// The disk as found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Layout {
    pub table: TableKind,
    pub disk_bytes: u64,
    pub partitions: Vec<PartitionInfo>,
}

/// The byte range of the volume to open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Selection {
    pub table: TableKind,
    /// `None` for a superfloppy.
    pub partition: Option<u32>,
    pub offset: u64,
    pub len: u64,
}

/// Classify a volume boot sector.
pub fn classify_boot_sector(sector: &[u8]) -> Content {
    if sector.len() < 512 {
        return Content::Other;
    }
    if &sector[3..11] == b"EXFAT   " {
        return Content::Exfat;
    }
    let u16_at = |o: usize| u16::from_le_bytes([sector[o], sector[o + 1]]);
    let u32_at =
        |o: usize| u32::from_le_bytes([sector[o], sector[o + 1], sector[o + 2], sector[o + 3]]);
    let jump_ok = matches!(sector[0], 0xEB | 0xE9 | 0xE8);
    let bps = u16_at(11);
    let spc = sector[13];
    let reserved = u16_at(14);
    let fats = sector[16];
    let total = if u16_at(19) != 0 {
        u16_at(19) as u32
    } else {
        u32_at(32)
    };
    if jump_ok
        && matches!(bps, 512 | 1024 | 2048 | 4096)
        && spc != 0
        && spc.is_power_of_two()
        && reserved != 0
        && fats != 0
        && total != 0
    {
        Content::Fat
    } else {
        Content::Other
    }
}

fn read_sector<R: Read + Seek>(r: &mut R, offset: u64) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; SECTOR as usize];
    r.seek(SeekFrom::Start(offset))?;
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    buf.truncate(got);
    Ok(buf)
}

/// Errors while finding the volume, each saying what was found.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("{0}")]
    NotUsable(String),
}

/// Read the partition table (if any) of a disk or image of `disk_bytes` bytes.
pub fn detect<R: Read + Seek>(r: &mut R, disk_bytes: u64) -> Result<Layout, LayoutError> {
    if disk_bytes == 0 {
        return Err(LayoutError::NotUsable(
            "the file is empty (0 bytes): not a card image".into(),
        ));
    }
    let lba0 = read_sector(r, 0)?;
    if (lba0.len() as u64) < SECTOR {
        return Err(LayoutError::NotUsable(format!(
            "only {} bytes: too short to hold a boot sector or partition table (truncated image?)",
            lba0.len()
        )));
    }
    match classify_boot_sector(&lba0) {
        Content::Fat | Content::Exfat => {
            return Ok(Layout {
                table: TableKind::None,
                disk_bytes,
                partitions: vec![PartitionInfo {
                    index: 0,
                    start_bytes: 0,
                    size_bytes: disk_bytes,
                    type_name: "whole disk".into(),
                    content: classify_boot_sector(&lba0),
                }],
            })
        }
        Content::Other => {}
    }
    if lba0[510] != 0x55 || lba0[511] != 0xAA {
        if let Some(found) = probe_lost_volume(r, disk_bytes)? {
            return Ok(found);
        }
        return Err(LayoutError::NotUsable(
            "no FAT boot sector and no partition table at the start (no 55AA signature): not a card image, or its first sector is damaged".into(),
        ));
    }
    let header = mbrman::MBRHeader::read_from(&mut io::Cursor::new(&lba0[..])).map_err(|e| {
        LayoutError::NotUsable(format!("the MBR partition table cannot be read: {e}"))
    })?;
    let entries: Vec<(usize, mbrman::MBRPartitionEntry)> =
        header.iter().map(|(i, e)| (i, e.clone())).collect();
    if entries.iter().any(|(_, e)| e.sys == 0xEE) {
        return detect_gpt(r, disk_bytes);
    }
    let mut partitions = Vec::new();
    for (i, e) in entries {
        if !e.is_used() {
            continue;
        }
        let start = e.starting_lba as u64 * SECTOR;
        let size = e.sectors as u64 * SECTOR;
        let content = if start
            .checked_add(SECTOR)
            .is_some_and(|end| end <= disk_bytes)
        {
            classify_boot_sector(&read_sector(r, start)?)
        } else {
            Content::Other
        };
        partitions.push(PartitionInfo {
            index: i as u32,
            start_bytes: start,
            size_bytes: size,
            type_name: format!("{:#04x} ({})", e.sys, mbr_type_name(e.sys)),
            content,
        });
    }
    Ok(Layout {
        table: TableKind::Mbr,
        disk_bytes,
        partitions,
    })
}

/// Sector offsets where partitions usually start: 4 MiB (SD cards), 1 MiB (modern tools),
/// 63 (old DOS tools), and a few others tools pick.
const USUAL_STARTS: &[u64] = &[8192, 2048, 63, 32, 128, 4096, 16384, 32768, 65536];

/// A disk whose first sector holds neither a boot sector nor a partition table (a wiped
/// table, or `mkfs.fat --offset` on a bare image) may still hold a FAT volume where
/// partitions usually start. Accept one only if it carries the boot signature and its hidden
/// sectors field names that very offset or is 0 (what `mkfs.fat --offset` writes on an
/// image file), so that random data is not mistaken for a volume.
fn probe_lost_volume<R: Read + Seek>(
    r: &mut R,
    disk_bytes: u64,
) -> Result<Option<Layout>, LayoutError> {
    for &lba in USUAL_STARTS {
        let start = lba * SECTOR;
        if start.checked_add(SECTOR).is_none_or(|end| end > disk_bytes) {
            continue;
        }
        let vbr = read_sector(r, start)?;
        if vbr.len() < 512
            || classify_boot_sector(&vbr) == Content::Other
            || vbr[510..512] != [0x55, 0xAA]
        {
            continue;
        }
        let hidden = u32::from_le_bytes([vbr[28], vbr[29], vbr[30], vbr[31]]) as u64;
        let content = classify_boot_sector(&vbr);
        if hidden == lba || hidden == 0 || content == Content::Exfat {
            return Ok(Some(Layout {
                table: TableKind::None,
                disk_bytes,
                partitions: vec![PartitionInfo {
                    index: 0,
                    start_bytes: start,
                    size_bytes: disk_bytes - start,
                    type_name: format!("volume at sector {lba} with no partition table"),
                    content,
                }],
            }));
        }
    }
    Ok(None)
}

/// `gpt` wants a writable device; this one refuses every write, so reading a card's table
/// can never change it.
#[derive(Debug)]
struct ReadOnly<'a, R>(&'a mut R);
impl<R: Read> Read for ReadOnly<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}
impl<R: Seek> Seek for ReadOnly<'_, R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.0.seek(pos)
    }
}
impl<R> Write for ReadOnly<'_, R> {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::new(io::ErrorKind::PermissionDenied, "read-only"))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn detect_gpt<R: Read + Seek>(r: &mut R, disk_bytes: u64) -> Result<Layout, LayoutError> {
    struct Dbg<'a, R>(&'a mut R);
    impl<R> fmt::Debug for Dbg<'_, R> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("disk")
        }
    }
    impl<R: Read> Read for Dbg<'_, R> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.0.read(buf)
        }
    }
    impl<R: Seek> Seek for Dbg<'_, R> {
        fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
            self.0.seek(pos)
        }
    }
    let parts: Vec<(u32, gpt::partition::Partition)> = {
        let dev = ReadOnly(&mut Dbg(&mut *r));
        let disk = gpt::GptConfig::new()
            .writable(false)
            .logical_block_size(gpt::disk::LogicalBlockSize::Lb512)
            .open_from_device(dev)
            .map_err(|e| {
                LayoutError::NotUsable(format!(
                    "protective MBR found but the GPT cannot be read: {e} (damaged table?)"
                ))
            })?;
        disk.partitions()
            .iter()
            .map(|(i, p)| (*i, p.clone()))
            .collect()
    };
    let mut partitions = Vec::new();
    for (i, p) in parts {
        if !p.is_used() {
            continue;
        }
        let start = p.first_lba.saturating_mul(SECTOR);
        let size = p
            .last_lba
            .saturating_sub(p.first_lba)
            .saturating_add(1)
            .saturating_mul(SECTOR);
        let content = if start
            .checked_add(SECTOR)
            .is_some_and(|end| end <= disk_bytes)
        {
            classify_boot_sector(&read_sector(r, start)?)
        } else {
            Content::Other
        };
        partitions.push(PartitionInfo {
            index: i,
            start_bytes: start,
            size_bytes: size,
            type_name: format!("{} ({:?})", p.part_type_guid.guid, p.part_type_guid.os),
            content,
        });
    }
    Ok(Layout {
        table: TableKind::Gpt,
        disk_bytes,
        partitions,
    })
}

fn mbr_type_name(sys: u8) -> &'static str {
    match sys {
        0x01 => "FAT12",
        0x04 | 0x06 | 0x0E => "FAT16",
        0x0B | 0x0C => "FAT32",
        0x07 => "exFAT/NTFS",
        0x05 | 0x0F | 0x85 => "extended",
        0x83 => "Linux",
        0x82 => "Linux swap",
        _ => "other",
    }
}

/// Pick the volume to open: partition `want` (1-based), or the first FAT partition.
pub fn select(layout: &Layout, want: Option<u32>) -> Result<Selection, LayoutError> {
    let describe = |p: &PartitionInfo| {
        format!(
            "{}: {} at {} MiB, {} MiB, {}",
            p.index,
            p.type_name,
            p.start_bytes / (1 << 20),
            p.size_bytes / (1 << 20),
            match p.content {
                Content::Fat => "FAT",
                Content::Exfat => "exFAT",
                Content::Other => "not FAT",
            }
        )
    };
    let exfat_hint = "exFAT volume: not supported for direct access yet; mount it and pass the mount point as the card";
    if layout.table == TableKind::None {
        if want.is_some_and(|n| n != 1 && n != 0) {
            return Err(LayoutError::NotUsable(
                "this image has no partition table, so --partition does not apply".into(),
            ));
        }
        let p = &layout.partitions[0];
        return match p.content {
            Content::Fat => Ok(Selection {
                table: TableKind::None,
                partition: None,
                offset: p.start_bytes,
                len: p.size_bytes,
            }),
            Content::Exfat => Err(LayoutError::NotUsable(exfat_hint.into())),
            Content::Other => Err(LayoutError::NotUsable("not a FAT volume".into())),
        };
    }
    let list = || {
        layout
            .partitions
            .iter()
            .map(describe)
            .collect::<Vec<_>>()
            .join("; ")
    };
    let chosen = match want {
        Some(n) => layout
            .partitions
            .iter()
            .find(|p| p.index == n)
            .ok_or_else(|| {
                LayoutError::NotUsable(format!(
                    "{} has no partition {n} (partitions: {})",
                    layout.table,
                    if layout.partitions.is_empty() {
                        "none".into()
                    } else {
                        list()
                    }
                ))
            })?,
        None => match layout.partitions.iter().find(|p| p.content == Content::Fat) {
            Some(p) => p,
            None => {
                if layout
                    .partitions
                    .iter()
                    .any(|p| p.content == Content::Exfat)
                {
                    return Err(LayoutError::NotUsable(format!(
                        "{exfat_hint} (partitions: {})",
                        list()
                    )));
                }
                return Err(LayoutError::NotUsable(format!(
                    "{} with no FAT partition (partitions: {})",
                    layout.table,
                    if layout.partitions.is_empty() {
                        "none".into()
                    } else {
                        list()
                    }
                )));
            }
        },
    };
    match chosen.content {
        Content::Fat => {}
        Content::Exfat => {
            return Err(LayoutError::NotUsable(format!(
                "partition {}: {exfat_hint}",
                chosen.index
            )))
        }
        Content::Other => {
            return Err(LayoutError::NotUsable(format!(
                "partition {} does not hold a FAT file system ({})",
                chosen.index,
                describe(chosen)
            )))
        }
    }
    let end = chosen.start_bytes.saturating_add(chosen.size_bytes);
    let len = if end > layout.disk_bytes {
        // A table that claims more than the disk holds: a truncated image or a fake card.
        // Open what is there; the FAT engine refuses a volume larger than its storage.
        layout.disk_bytes.saturating_sub(chosen.start_bytes)
    } else {
        chosen.size_bytes
    };
    Ok(Selection {
        table: layout.table,
        partition: Some(chosen.index),
        offset: chosen.start_bytes,
        len,
    })
}

/// Write an MBR with one partition starting at `start_bytes`, as SD cards come.
pub fn write_mbr<W: Write + Seek>(
    w: &mut W,
    disk_bytes: u64,
    start_bytes: u64,
    sys: u8,
) -> io::Result<()> {
    let mut sector = [0u8; 512];
    let start_lba = u32::try_from(start_bytes / SECTOR).map_err(io::Error::other)?;
    let sectors = u32::try_from((disk_bytes - start_bytes) / SECTOR).unwrap_or(u32::MAX);
    // One entry at 446: status, CHS start (unused: LBA addressing), type, CHS end, LBA, count.
    let e = &mut sector[446..462];
    e[0] = 0x00;
    e[1..4].copy_from_slice(&[0xFE, 0xFF, 0xFF]);
    e[4] = sys;
    e[5..8].copy_from_slice(&[0xFE, 0xFF, 0xFF]);
    e[8..12].copy_from_slice(&start_lba.to_le_bytes());
    e[12..16].copy_from_slice(&sectors.to_le_bytes());
    // A disk signature, so that tools which key on it (Windows) tell cards apart.
    let sig = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0) as u32)
        | 1;
    sector[440..444].copy_from_slice(&sig.to_le_bytes());
    sector[510] = 0x55;
    sector[511] = 0xAA;
    w.seek(SeekFrom::Start(0))?;
    w.write_all(&sector)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_and_short_inputs_are_refused_with_a_reason() {
        let mut empty = io::Cursor::new(Vec::<u8>::new());
        assert!(detect(&mut empty, 0).is_err());
        let mut short = io::Cursor::new(vec![0u8; 100]);
        let e = detect(&mut short, 100).unwrap_err().to_string();
        assert!(e.contains("too short"), "{e}");
        let mut zeros = io::Cursor::new(vec![0u8; 4096]);
        let e = detect(&mut zeros, 4096).unwrap_err().to_string();
        assert!(e.contains("55AA"), "{e}");
    }

    #[test]
    fn an_mbr_we_write_is_read_back() {
        let size = 64u64 << 20;
        let mut disk = io::Cursor::new(vec![0u8; size as usize]);
        write_mbr(&mut disk, size, 4 << 20, 0x0C).unwrap();
        let layout = detect(&mut disk, size).unwrap();
        assert_eq!(layout.table, TableKind::Mbr);
        assert_eq!(layout.partitions.len(), 1);
        assert_eq!(layout.partitions[0].start_bytes, 4 << 20);
        assert_eq!(layout.partitions[0].content, Content::Other);
        let e = select(&layout, None).unwrap_err().to_string();
        assert!(e.contains("no FAT partition"), "{e}");
    }

    #[test]
    fn exfat_is_named() {
        let mut s = vec![0u8; 512];
        s[0..3].copy_from_slice(&[0xEB, 0x76, 0x90]);
        s[3..11].copy_from_slice(b"EXFAT   ");
        s[510] = 0x55;
        s[511] = 0xAA;
        let mut disk = io::Cursor::new(s);
        let layout = detect(&mut disk, 512).unwrap();
        let e = select(&layout, None).unwrap_err().to_string();
        assert!(e.contains("exFAT"), "{e}");
    }

    #[test]
    fn a_volume_without_its_partition_table_is_found_at_a_usual_start() {
        let size = 8u64 << 20;
        let mut disk = vec![0u8; size as usize];
        let start = 2048 * 512;
        let vbr = &mut disk[start..start + 512];
        vbr[0..3].copy_from_slice(&[0xEB, 0x3C, 0x90]);
        vbr[11..13].copy_from_slice(&512u16.to_le_bytes());
        vbr[13] = 4;
        vbr[14..16].copy_from_slice(&1u16.to_le_bytes());
        vbr[16] = 2;
        vbr[19..21].copy_from_slice(&14336u16.to_le_bytes());
        vbr[28..32].copy_from_slice(&2048u32.to_le_bytes());
        let mut c = io::Cursor::new(disk.clone());
        assert!(
            detect(&mut c, size).is_err(),
            "no boot signature: not trusted"
        );
        disk[start + 510] = 0x55;
        disk[start + 511] = 0xAA;
        let mut c = io::Cursor::new(disk.clone());
        let layout = detect(&mut c, size).unwrap();
        let sel = select(&layout, None).unwrap();
        assert_eq!(sel.offset, start as u64);
        // The same sector with a hidden-sectors field that does not match is not trusted.
        disk[start + 28..start + 32].copy_from_slice(&7u32.to_le_bytes());
        let mut c = io::Cursor::new(disk);
        assert!(detect(&mut c, size).is_err());
    }
}
