//! Boot sector (BPB): the raw on-disk fields, their validation into a [`Geometry`], and the
//! serialisation used by `format`. The raw struct is never used for arithmetic; only a
//! `Geometry` that went through [`Bpb::validate`] is (STYLE §4: validate before trusting).

use crate::{Error, FatType, Result};

/// Byte offsets inside sector 0 (FAT_NOTES §1).
pub(crate) const OFF_STATE_FAT16: usize = 0x25;
pub(crate) const OFF_STATE_FAT32: usize = 0x41;
/// Bit 0 of the state byte: "volume dirty" as written by Linux (FAT_NOTES §2).
pub(crate) const STATE_DIRTY: u8 = 0x01;

pub(crate) const FSINFO_LEAD: u32 = 0x4161_5252;
pub(crate) const FSINFO_STRUC: u32 = 0x6141_7272;
pub(crate) const FSINFO_TRAIL: u32 = 0xAA55_0000;
pub(crate) const FSINFO_OFF_FREE: usize = 488;
pub(crate) const FSINFO_OFF_NEXT: usize = 492;

pub(crate) fn le16(b: &[u8], off: usize) -> u16 {
    // Callers pass a slice of at least 512 bytes and constant offsets below 512.
    match b.get(off..off + 2) {
        Some(s) => u16::from_le_bytes([s[0], s[1]]),
        None => 0,
    }
}
pub(crate) fn le32(b: &[u8], off: usize) -> u32 {
    match b.get(off..off + 4) {
        Some(s) => u32::from_le_bytes([s[0], s[1], s[2], s[3]]),
        None => 0,
    }
}
pub(crate) fn put16(b: &mut [u8], off: usize, v: u16) {
    if let Some(s) = b.get_mut(off..off + 2) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}
pub(crate) fn put32(b: &mut [u8], off: usize, v: u32) {
    if let Some(s) = b.get_mut(off..off + 4) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}

/// The raw fields of sector 0, in on-disk order. Nothing here is trusted yet.
#[derive(Debug, Clone, Default)]
pub(crate) struct Bpb {
    pub jump: [u8; 3],
    pub oem: [u8; 8],
    pub bytes_per_sector: u16,
    pub sectors_per_cluster: u8,
    pub reserved_sectors: u16,
    pub num_fats: u8,
    pub root_entries: u16,
    pub total_sectors_16: u16,
    pub media: u8,
    pub fat_size_16: u16,
    pub sectors_per_track: u16,
    pub num_heads: u16,
    pub hidden_sectors: u32,
    pub total_sectors_32: u32,
    // FAT32 extension (meaningful only when fat_size_16 == 0).
    pub fat_size_32: u32,
    pub ext_flags: u16,
    pub fs_version: u16,
    pub root_cluster: u32,
    pub fsinfo_sector: u16,
    pub backup_boot_sector: u16,
    // Extended BPB (at 36 on FAT12/16, at 64 on FAT32).
    pub drive_number: u8,
    pub state: u8,
    pub boot_sig: u8,
    pub volume_id: u32,
    pub label: [u8; 11],
    pub fs_type: [u8; 8],
}

impl Bpb {
    /// Decode sector 0. `b` must hold at least 512 bytes.
    pub fn parse(b: &[u8]) -> Result<Bpb> {
        if b.len() < 512 {
            return Err(corrupt("boot sector shorter than 512 bytes"));
        }
        let mut bpb = Bpb::default();
        bpb.jump.copy_from_slice(&b[0..3]);
        bpb.oem.copy_from_slice(&b[3..11]);
        bpb.bytes_per_sector = le16(b, 11);
        bpb.sectors_per_cluster = b[13];
        bpb.reserved_sectors = le16(b, 14);
        bpb.num_fats = b[16];
        bpb.root_entries = le16(b, 17);
        bpb.total_sectors_16 = le16(b, 19);
        bpb.media = b[21];
        bpb.fat_size_16 = le16(b, 22);
        bpb.sectors_per_track = le16(b, 24);
        bpb.num_heads = le16(b, 26);
        bpb.hidden_sectors = le32(b, 28);
        bpb.total_sectors_32 = le32(b, 32);
        let ext = if bpb.fat_size_16 == 0 {
            bpb.fat_size_32 = le32(b, 36);
            bpb.ext_flags = le16(b, 40);
            bpb.fs_version = le16(b, 42);
            bpb.root_cluster = le32(b, 44);
            bpb.fsinfo_sector = le16(b, 48);
            bpb.backup_boot_sector = le16(b, 50);
            64
        } else {
            36
        };
        bpb.drive_number = b[ext];
        bpb.state = b[ext + 1];
        bpb.boot_sig = b[ext + 2];
        bpb.volume_id = le32(b, ext + 3);
        bpb.label.copy_from_slice(&b[ext + 7..ext + 18]);
        bpb.fs_type.copy_from_slice(&b[ext + 18..ext + 26]);
        Ok(bpb)
    }

    /// Encode into a zeroed sector buffer (at least 512 bytes).
    pub fn serialize(&self, b: &mut [u8]) {
        b[0..3].copy_from_slice(&self.jump);
        b[3..11].copy_from_slice(&self.oem);
        put16(b, 11, self.bytes_per_sector);
        b[13] = self.sectors_per_cluster;
        put16(b, 14, self.reserved_sectors);
        b[16] = self.num_fats;
        put16(b, 17, self.root_entries);
        put16(b, 19, self.total_sectors_16);
        b[21] = self.media;
        put16(b, 22, self.fat_size_16);
        put16(b, 24, self.sectors_per_track);
        put16(b, 26, self.num_heads);
        put32(b, 28, self.hidden_sectors);
        put32(b, 32, self.total_sectors_32);
        let ext = if self.fat_size_16 == 0 {
            put32(b, 36, self.fat_size_32);
            put16(b, 40, self.ext_flags);
            put16(b, 42, self.fs_version);
            put32(b, 44, self.root_cluster);
            put16(b, 48, self.fsinfo_sector);
            put16(b, 50, self.backup_boot_sector);
            64
        } else {
            36
        };
        b[ext] = self.drive_number;
        b[ext + 1] = self.state;
        b[ext + 2] = self.boot_sig;
        put32(b, ext + 3, self.volume_id);
        b[ext + 7..ext + 18].copy_from_slice(&self.label);
        b[ext + 18..ext + 26].copy_from_slice(&self.fs_type);
        b[510] = 0x55;
        b[511] = 0xAA;
    }

    /// Check every field and derive the layout with widened, checked arithmetic.
    pub fn validate(&self) -> Result<Geometry> {
        let bps = u32::from(self.bytes_per_sector);
        if !(512..=4096).contains(&bps) || !bps.is_power_of_two() {
            return Err(corrupt(format!("BPB BytsPerSec = {bps}")));
        }
        let spc = u32::from(self.sectors_per_cluster);
        if spc == 0 || !spc.is_power_of_two() {
            return Err(corrupt(format!("BPB SecPerClus = {spc}")));
        }
        if self.reserved_sectors == 0 {
            return Err(corrupt("BPB RsvdSecCnt = 0"));
        }
        if self.num_fats == 0 || self.num_fats > 4 {
            return Err(corrupt(format!("BPB NumFATs = {}", self.num_fats)));
        }
        if self.media != 0xF0 && self.media < 0xF8 {
            return Err(corrupt(format!("BPB Media = {:#04x}", self.media)));
        }
        let total_sectors = if self.total_sectors_16 != 0 {
            u64::from(self.total_sectors_16)
        } else {
            u64::from(self.total_sectors_32)
        };
        if total_sectors == 0 {
            return Err(corrupt("BPB TotSec16 and TotSec32 are both 0"));
        }
        let is_fat32_layout = self.fat_size_16 == 0;
        let fat_size = if is_fat32_layout {
            u64::from(self.fat_size_32)
        } else {
            u64::from(self.fat_size_16)
        };
        if fat_size == 0 {
            return Err(corrupt("BPB FATSz16 and FATSz32 are both 0"));
        }
        if is_fat32_layout && self.root_entries != 0 {
            return Err(corrupt(format!(
                "BPB RootEntCnt = {} on a FAT32 layout",
                self.root_entries
            )));
        }
        if !is_fat32_layout && self.root_entries == 0 {
            return Err(corrupt("BPB RootEntCnt = 0 on a FAT12/16 layout"));
        }
        let bps64 = u64::from(bps);
        let root_dir_sectors = (u64::from(self.root_entries) * 32).div_ceil(bps64);
        let fat_start = u64::from(self.reserved_sectors);
        let fats_total = fat_size
            .checked_mul(u64::from(self.num_fats))
            .ok_or_else(|| corrupt("BPB FAT size overflows"))?;
        let root_dir_start = fat_start + fats_total;
        let first_data_sector = root_dir_start + root_dir_sectors;
        if first_data_sector >= total_sectors {
            return Err(corrupt(format!(
                "BPB data area starts at sector {first_data_sector}, past the volume's {total_sectors} sectors"
            )));
        }
        let cluster_count = (total_sectors - first_data_sector) / u64::from(spc);
        if cluster_count == 0 {
            return Err(corrupt("BPB leaves no data clusters"));
        }
        let fat_type = if is_fat32_layout {
            FatType::Fat32
        } else if cluster_count < 4085 {
            FatType::Fat12
        } else if cluster_count < 65525 {
            FatType::Fat16
        } else {
            // fsck.fat dies on this, and Linux would read it as FAT16 with a truncated count.
            return Err(corrupt(format!(
                "FAT12/16 layout (FATSz16 = {}) with {cluster_count} clusters",
                self.fat_size_16
            )));
        };
        if fat_type == FatType::Fat32 && cluster_count > 0x0FFF_FFF5 {
            return Err(corrupt(format!("FAT32 with {cluster_count} clusters")));
        }
        // The FAT must hold cluster_count + 2 entries (fsck.fat dies otherwise).
        let entries_fit = fat_size * bps64 * 8 / entry_bits(fat_type);
        if entries_fit < cluster_count + 2 {
            return Err(corrupt(format!(
                "FAT of {fat_size} sectors holds {entries_fit} entries, {} needed",
                cluster_count + 2
            )));
        }
        let (root_cluster, fsinfo_sector) = if is_fat32_layout {
            if self.fs_version != 0 {
                return Err(Error::Unsupported(format!(
                    "FAT32 version {:#06x}",
                    self.fs_version
                )));
            }
            let rc = self.root_cluster;
            if rc < 2 || u64::from(rc) > cluster_count + 1 {
                return Err(corrupt(format!("BPB RootClus = {rc}")));
            }
            // 0 and 0xFFFF mean "no FSInfo"; anything else must lie in the reserved area.
            let fsi = match self.fsinfo_sector {
                0 | 0xFFFF => None,
                s if s < self.reserved_sectors => Some(s),
                s => return Err(corrupt(format!("BPB FSInfo sector = {s}"))),
            };
            // The backup boot sector must lie in the reserved area if there is one.
            match self.backup_boot_sector {
                0 | 0xFFFF => None,
                s if s < self.reserved_sectors => Some(s),
                s => return Err(corrupt(format!("BPB BkBootSec = {s}"))),
            };
            (rc, fsi)
        } else {
            (0, None)
        };
        let active_fat = if is_fat32_layout && self.ext_flags & 0x80 != 0 {
            u32::from(self.ext_flags & 0x0F)
        } else {
            0
        };
        if active_fat >= u32::from(self.num_fats) {
            return Err(corrupt(format!(
                "BPB ExtFlags = {:#06x}: active FAT {active_fat} of {}",
                self.ext_flags, self.num_fats
            )));
        }
        let bytes_per_cluster = bps * spc;
        if bytes_per_cluster > 512 * 1024 {
            return Err(Error::Unsupported(format!(
                "cluster size {bytes_per_cluster} bytes"
            )));
        }
        Ok(Geometry {
            fat_type,
            bytes_per_sector: bps,
            bytes_per_cluster,
            reserved_sectors: u64::from(self.reserved_sectors),
            num_fats: u32::from(self.num_fats),
            fat_size,
            root_entries: u32::from(self.root_entries),
            root_dir_start,
            first_data_sector,
            total_sectors,
            // Bounded by 0x0FFFFFF5 just above (FAT12/16 by 65525).
            cluster_count: cluster_count as u32,
            root_cluster,
            fsinfo_sector,
            active_fat,
            state_offset: if is_fat32_layout {
                OFF_STATE_FAT32
            } else {
                OFF_STATE_FAT16
            },
        })
    }
}

/// Bits per FAT entry.
pub(crate) fn entry_bits(t: FatType) -> u64 {
    match t {
        FatType::Fat12 => 12,
        FatType::Fat16 => 16,
        FatType::Fat32 => 32,
    }
}

/// The validated layout. All sector numbers are relative to the volume start.
#[derive(Debug, Clone)]
pub(crate) struct Geometry {
    pub fat_type: FatType,
    pub bytes_per_sector: u32,
    pub bytes_per_cluster: u32,
    pub reserved_sectors: u64,
    pub num_fats: u32,
    pub fat_size: u64,
    pub root_entries: u32,
    pub root_dir_start: u64,
    pub first_data_sector: u64,
    pub total_sectors: u64,
    /// Valid clusters are 2 ..= cluster_count + 1.
    pub cluster_count: u32,
    pub root_cluster: u32,
    pub fsinfo_sector: Option<u16>,
    pub state_offset: usize,
    /// The FAT copy to read: 0 unless FAT32 ExtFlags turned mirroring off (bit 7), then
    /// the copy numbered in bits 0-3. Writes always go to every copy.
    pub active_fat: u32,
}

impl Geometry {
    pub fn volume_bytes(&self) -> u64 {
        self.total_sectors * u64::from(self.bytes_per_sector)
    }
    pub fn fat_offset(&self, copy: u32) -> u64 {
        (self.reserved_sectors + u64::from(copy) * self.fat_size) * u64::from(self.bytes_per_sector)
    }
    /// Byte offset of cluster `n`; callers range-check `n` first.
    pub fn cluster_offset(&self, n: u32) -> u64 {
        self.first_data_sector * u64::from(self.bytes_per_sector)
            + u64::from(n.saturating_sub(2)) * u64::from(self.bytes_per_cluster)
    }
    pub fn root_dir_offset(&self) -> u64 {
        self.root_dir_start * u64::from(self.bytes_per_sector)
    }
    pub fn max_cluster(&self) -> u32 {
        self.cluster_count + 1
    }
    pub fn is_valid_cluster(&self, n: u32) -> bool {
        n >= 2 && n <= self.max_cluster()
    }
}

pub(crate) fn corrupt(what: impl Into<String>) -> Error {
    Error::Corrupt { what: what.into() }
}
