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

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom, Write};

use chrono::NaiveDateTime;

mod boot;
mod check;
mod dir;
mod error;
mod file;
mod format;
mod name;
mod repair;
mod table;

pub use error::{Error, Result};
pub use repair::RepairReport;

use boot::{corrupt, Bpb, Geometry, STATE_DIRTY};
use dir::{now, Dir, Kind, Parsed, ATTR_ARCHIVE, ATTR_DIR, MAX_DIR_ENTRIES};
use table::{Entry, Fat};

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
    LostClusters {
        count: u32,
    },
    CrossLinked {
        cluster: u32,
        paths: Vec<String>,
    },
    ChainLoops {
        path: String,
    },
    ChainOutOfRange {
        path: String,
        cluster: u32,
    },
    ChainHitsFree {
        path: String,
        cluster: u32,
    },
    SizeMismatch {
        path: String,
        size: u64,
        chain_bytes: u64,
    },
    BadDotEntries {
        path: String,
    },
    FatCopiesDiffer,
    FreeCountWrong {
        recorded: u32,
        actual: u32,
    },
    Other {
        path: String,
        what: String,
    },
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
    format::format(storage, options)
}

/// What the directory cache may hold before [`FileSystem::trim_dir_cache`] drops the least
/// recently used directories (at least twice the largest cached one): a few folders of a
/// few thousand photos each.
const DIR_CACHE_BYTES: usize = 2 << 20;

/// An open FAT volume.
pub struct FileSystem<S: Storage> {
    storage: S,
    geo: Geometry,
    /// Sector 0 as read (we only ever change its state byte).
    boot: Vec<u8>,
    fat: Fat,
    /// Directories read so far (see [`FileSystem::trim_dir_cache`]).
    dirs: HashMap<u32, Dir>,
    /// Counts directory uses; each cached directory keeps the count of its last use.
    dir_clock: u64,
    /// A directory was loaded or grew since the last trim.
    dirs_grew: bool,
    oem: String,
    label: Option<String>,
    volume_id: u32,
    was_dirty: bool,
    /// Call `Storage::flush` at each ordering point.
    barriers: bool,
    /// The dirty bit is set on disk and FSInfo says "unknown": we have written since the
    /// last `flush`.
    dirty_on_disk: bool,
    /// A write to the storage failed since open. The in-memory FAT and directories may then
    /// hold changes the storage does not, so the volume stays marked dirty (the next open's
    /// `repair_after_crash` frees what leaked) and the directory cache is dropped so that
    /// later lookups see what the storage really holds.
    write_failed: bool,
}

/// A file open for reading: `Read + Seek`, borrowing the file system.
pub struct File<'a, S: Storage> {
    fs: &'a mut FileSystem<S>,
    /// Contiguous cluster runs (first cluster, count) in file order.
    runs: Vec<(u32, u32)>,
    /// Cluster index (within the file) at which each run starts.
    run_starts: Vec<u64>,
    size: u64,
    pos: u64,
    /// Read-ahead: bytes of the file starting at `buf_pos`.
    buf: Vec<u8>,
    buf_pos: u64,
}

/// A new file being written. Data goes to freshly allocated clusters; nothing is visible
/// under the file's name with a non-zero size until [`FileWriter::finish`] commits the
/// chain (FAT first, then the directory entry). Dropping without `finish` leaves an empty
/// file and, at worst, lost clusters that `flush` reclaims.
///
/// When the volume fills up, `write` fails with `NoSpace` (as an `io::Error` of kind
/// `StorageFull` wrapping [`Error::NoSpace`]); the clusters taken so far are released and
/// the file stays on the volume with size 0 (the caller decides whether to remove it).
pub struct FileWriter<'a, S: Storage> {
    fs: &'a mut FileSystem<S>,
    dir: u32,
    slot: usize,
    path: String,
    runs: Vec<(u32, u32)>,
    /// Bytes already written to the data area (always whole clusters before `finish`).
    written: u64,
    buf: Vec<u8>,
    failed: Option<(u64, u64)>,
    done: bool,
}

/// Where an entry lives: directory key and the slot of its SFN.
#[derive(Debug, Clone, Copy)]
struct Loc {
    dir: u32,
    slot: usize,
}

fn components(path: &str) -> Vec<&str> {
    path.split('/').filter(|s| !s.is_empty()).collect()
}

fn join(parent: &[&str], name: &str) -> String {
    let mut s = String::new();
    for p in parent {
        s.push('/');
        s.push_str(p);
    }
    s.push('/');
    s.push_str(name);
    s
}

fn to_dir_entry(p: &Parsed) -> DirEntry {
    let r = &p.raw;
    DirEntry {
        name: p.name.clone(),
        short_name: p.short_display(),
        is_dir: p.is_dir(),
        size: if p.is_dir() { 0 } else { u64::from(p.size()) },
        modified: dir::decode_time(boot::le16(r, 24), boot::le16(r, 22), 0),
        created: dir::decode_time(boot::le16(r, 16), boot::le16(r, 14), r[13]),
        attributes: p.attr(),
    }
}

fn map_eof(e: std::io::Error, what: &str) -> Error {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        corrupt(format!("storage truncated: cannot read {what}"))
    } else {
        Error::Io(e)
    }
}

impl<S: Storage> FileSystem<S> {
    /// Open and validate a volume. Errors: `Corrupt` (with the field and value),
    /// `Unsupported` (e.g. exFAT), `Io`.
    pub fn open(mut storage: S) -> Result<Self> {
        let len = storage.seek(SeekFrom::End(0)).ok();
        if len == Some(0) {
            return Err(corrupt("storage is empty (0 bytes)"));
        }
        storage.seek(SeekFrom::Start(0))?;
        let mut first = vec![0u8; 512];
        storage
            .read_exact(&mut first)
            .map_err(|e| map_eof(e, "the boot sector"))?;
        if &first[3..11] == b"EXFAT   " {
            return Err(Error::Unsupported(
                "exFAT volume: exFAT is not supported for direct access yet".into(),
            ));
        }
        let bpb = Bpb::parse(&first)?;
        let geo = bpb.validate()?;
        if let Some(len) = len {
            if len < geo.volume_bytes() {
                return Err(corrupt(format!(
                    "storage truncated: the BPB describes {} bytes, the storage holds {len}",
                    geo.volume_bytes()
                )));
            }
        }
        let bps = geo.bytes_per_sector as usize;
        let mut boot = first;
        if bps > 512 {
            boot.resize(bps, 0);
            storage.seek(SeekFrom::Start(0))?;
            storage
                .read_exact(&mut boot)
                .map_err(|e| map_eof(e, "the boot sector"))?;
        }
        let fat_len = Fat::load_len(&geo);
        // Never size an allocation from disk data alone: the FAT was checked to fit in the
        // storage above, and we refuse FATs larger than any SD card needs.
        if fat_len > 512 * 1024 * 1024 {
            return Err(Error::Unsupported(format!(
                "FAT of {fat_len} bytes is too large"
            )));
        }
        let mut raw = vec![0u8; fat_len as usize];
        storage.seek(SeekFrom::Start(geo.fat_offset(geo.active_fat)))?;
        storage
            .read_exact(&mut raw)
            .map_err(|e| map_eof(e, "the FAT"))?;
        let fat = Fat::new(&geo, raw);
        let label = if bpb.boot_sig == 0x29 {
            let l = String::from_utf8_lossy(&bpb.label).trim_end().to_string();
            if l.is_empty() || l == "NO NAME" {
                None
            } else {
                Some(l)
            }
        } else {
            None
        };
        let was_dirty = boot
            .get(geo.state_offset)
            .is_some_and(|b| b & STATE_DIRTY != 0);
        Ok(FileSystem {
            storage,
            oem: String::from_utf8_lossy(&bpb.oem).trim_end().to_string(),
            label,
            volume_id: if bpb.boot_sig == 0x29 {
                bpb.volume_id
            } else {
                0
            },
            geo,
            boot,
            fat,
            dirs: HashMap::new(),
            dir_clock: 0,
            dirs_grew: false,
            was_dirty,
            barriers: false,
            dirty_on_disk: false,
            write_failed: false,
        })
    }

    pub fn info(&self) -> VolumeInfo {
        VolumeInfo {
            fat_type: self.geo.fat_type,
            bytes_per_sector: self.geo.bytes_per_sector,
            bytes_per_cluster: self.geo.bytes_per_cluster,
            total_clusters: self.geo.cluster_count,
            free_clusters: self.fat.free_count(),
            label: self.label.clone(),
            volume_id: self.volume_id,
            oem_name: self.oem.clone(),
            was_dirty: self.was_dirty,
        }
    }

    pub fn free_bytes(&self) -> u64 {
        u64::from(self.fat.free_count()) * u64::from(self.geo.bytes_per_cluster)
    }

    // ----- low-level I/O -----

    fn read_at(&mut self, off: u64, buf: &mut [u8]) -> Result<()> {
        self.storage.seek(SeekFrom::Start(off))?;
        self.storage
            .read_exact(buf)
            .map_err(|e| map_eof(e, "data past the end of the storage"))
    }

    fn write_at(&mut self, off: u64, buf: &[u8]) -> Result<()> {
        let r = self
            .storage
            .seek(SeekFrom::Start(off))
            .and_then(|_| self.storage.write_all(buf))
            .map_err(Error::from);
        self.note_write(r)
    }

    /// Every storage write's result passes through here: see `write_failed`.
    fn note_write<T>(&mut self, r: Result<T>) -> Result<T> {
        if r.is_err() {
            self.write_failed = true;
            self.dirs.clear();
        }
        r
    }

    /// Read the clusters in one storage read per contiguous run.
    fn read_clusters(&mut self, clusters: &[u32]) -> Result<Vec<u8>> {
        let cb = self.geo.bytes_per_cluster as usize;
        let mut out = vec![0u8; clusters.len() * cb];
        let mut i = 0;
        while i < clusters.len() {
            let mut j = i + 1;
            while j < clusters.len() && clusters[j] == clusters[j - 1] + 1 {
                j += 1;
            }
            let off = self.geo.cluster_offset(clusters[i]);
            self.storage.seek(SeekFrom::Start(off))?;
            self.storage
                .read_exact(&mut out[i * cb..j * cb])
                .map_err(|e| map_eof(e, "a directory"))?;
            i = j;
        }
        Ok(out)
    }

    /// Before the first write after open/flush: mark the volume dirty (sector 0 only)
    /// and make FSInfo say "free count unknown", so a crash never leaves a stale count.
    fn begin_write(&mut self) -> Result<()> {
        if self.dirty_on_disk {
            return Ok(());
        }
        let off = self.geo.state_offset;
        if let Some(b) = self.boot.get_mut(off) {
            *b |= STATE_DIRTY;
        }
        let boot = self.boot.clone();
        self.write_at(0, &boot)?;
        self.write_fsinfo(None)?;
        self.dirty_on_disk = true;
        self.barrier()
    }

    /// Rewrite the FSInfo sector (FAT32) with `free` (None = 0xFFFFFFFF, unknown).
    fn write_fsinfo(&mut self, free: Option<u32>) -> Result<()> {
        let Some(sector) = self.geo.fsinfo_sector else {
            return Ok(());
        };
        let bps = self.geo.bytes_per_sector as usize;
        let mut s = vec![0u8; bps];
        boot::put32(&mut s, 0, boot::FSINFO_LEAD);
        boot::put32(&mut s, 484, boot::FSINFO_STRUC);
        boot::put32(&mut s, boot::FSINFO_OFF_FREE, free.unwrap_or(0xFFFF_FFFF));
        boot::put32(&mut s, boot::FSINFO_OFF_NEXT, self.fat.hint());
        boot::put32(&mut s, 508, boot::FSINFO_TRAIL);
        let off = u64::from(sector) * bps as u64;
        self.write_at(off, &s)
    }

    /// Write the dirty FAT sectors to every copy. With write barriers on, whatever was
    /// written before (data, a zeroed cluster, a deleted entry) is made durable first, and
    /// the FAT itself before whatever follows.
    fn flush_fat(&mut self) -> Result<()> {
        if !self.fat.is_dirty() {
            return Ok(());
        }
        self.barrier()?;
        let r = self.fat.flush_to(&mut self.storage, &self.geo);
        self.note_write(r)?;
        self.barrier()
    }

    /// An ordering point between two dependent writes (see [`FileSystem::set_write_barriers`]).
    fn barrier(&mut self) -> Result<()> {
        if self.barriers {
            let r = self.storage.flush().map_err(Error::from);
            self.note_write(r)?;
        }
        Ok(())
    }

    /// With barriers on, the engine calls `Storage::flush` at every ordering point of the
    /// crash-safe write order (data → FAT → directory entry; entry removal → FAT free), so
    /// a storage whose `flush` is a real sync (`fsync`, a cache flush) keeps that order on
    /// the device. Off by default: then only [`FileSystem::flush`] flushes, and the order
    /// holds only as far as the storage keeps the order of its writes.
    pub fn set_write_barriers(&mut self, on: bool) {
        self.barriers = on;
    }

    // ----- directories -----

    /// Make sure the directory with key `key` (0 = root, else first cluster) is loaded.
    fn load_dir(&mut self, key: u32) -> Result<()> {
        self.dir_clock += 1;
        if let Some(d) = self.dirs.get_mut(&key) {
            d.used = self.dir_clock;
            return Ok(());
        }
        let dir = if key == 0 && self.geo.fat_type != FatType::Fat32 {
            let len = self.geo.root_entries as usize * 32;
            let off = self.geo.root_dir_offset();
            let mut data = vec![0u8; len];
            self.read_at(off, &mut data)?;
            Dir::new(Vec::new(), Some(off), data)
        } else {
            let first = if key == 0 { self.geo.root_cluster } else { key };
            let clusters = self.fat.chain(first)?;
            let bytes = clusters.len() as u64 * u64::from(self.geo.bytes_per_cluster);
            if bytes > (MAX_DIR_ENTRIES * 32) as u64 {
                return Err(corrupt(format!(
                    "directory at cluster {first} is {bytes} bytes long, more than FAT allows"
                )));
            }
            let data = self.read_clusters(&clusters)?;
            Dir::new(clusters, None, data)
        };
        let mut dir = dir;
        dir.used = self.dir_clock;
        self.dirs.insert(key, dir);
        self.dirs_grew = true;
        Ok(())
    }

    /// Drop the least recently used directories from the cache until what it holds
    /// (entries and their indexes) is within [`DIR_CACHE_BYTES`]; the most recently used
    /// one always stays. A card with 100,000 photos in 20 folders would otherwise keep
    /// about 16 MB of directories for the whole run, though a run goes through its folders
    /// in order. Dropping is safe at any time between operations: every change to a
    /// directory is written through, so a dropped one is read back as it was.
    ///
    /// Call it between operations (the storage layer does, before each), never during one.
    pub fn trim_dir_cache(&mut self) {
        if !self.dirs_grew {
            return;
        }
        self.dirs_grew = false;
        let mut total = 0;
        let mut largest = 0;
        for d in self.dirs.values() {
            total += d.footprint();
            largest = largest.max(d.footprint());
        }
        // Two of the largest always fit: an operation may go back and forth between a huge
        // folder and another (a temporary file renamed into it), and dropping either would
        // read it again each time.
        let limit = DIR_CACHE_BYTES.max(2 * largest);
        while total > limit && self.dirs.len() > 1 {
            let Some(oldest) = self
                .dirs
                .iter()
                .min_by_key(|(_, d)| d.used)
                .map(|(&k, _)| k)
            else {
                break;
            };
            if let Some(d) = self.dirs.remove(&oldest) {
                total -= d.footprint();
            }
        }
    }

    fn dir(&mut self, key: u32) -> Result<&mut Dir> {
        self.load_dir(key)?;
        self.dirs
            .get_mut(&key)
            .ok_or_else(|| corrupt("directory cache lost an entry"))
    }

    /// Slot of `name` in directory `key`, if present (case-insensitive; short aliases too).
    fn lookup(&mut self, key: u32, name: &str) -> Result<Option<usize>> {
        let d = self.dir(key)?;
        if let Some(s) = d.lookup_long(name) {
            return Ok(Some(s));
        }
        if let Some(k) = name::sfn_key(name) {
            if let Some(s) = d.lookup_short(&k) {
                return Ok(Some(s));
            }
        }
        Ok(None)
    }

    fn parsed(&mut self, loc: Loc) -> Result<Parsed> {
        self.dir(loc.dir)?
            .parsed_at(loc.slot)
            .ok_or_else(|| corrupt("directory entry vanished from the cache"))
    }

    /// Directory key of a directory entry.
    fn key_of(&self, p: &Parsed, path: &str) -> Result<u32> {
        let c = p.cluster();
        if c == 0 {
            if p.kind == Kind::DotDot {
                return Ok(0);
            }
            return Err(corrupt(format!("directory {path} has start cluster 0")));
        }
        if !self.geo.is_valid_cluster(c) {
            return Err(corrupt(format!(
                "directory {path} starts at cluster {c}, out of range"
            )));
        }
        Ok(c)
    }

    /// Resolve a directory path to its key.
    fn resolve_dir(&mut self, comps: &[&str]) -> Result<u32> {
        let mut key = 0;
        for (i, c) in comps.iter().enumerate() {
            let here = join(&comps[..i], c);
            let slot = self
                .lookup(key, c)?
                .ok_or_else(|| Error::NotFound { path: here.clone() })?;
            let p = self.parsed(Loc { dir: key, slot })?;
            if !p.is_dir() {
                return Err(Error::NotADirectory { path: here });
            }
            key = self.key_of(&p, &here)?;
        }
        Ok(key)
    }

    /// Find an entry; `None` for the root.
    fn find(&mut self, path: &str) -> Result<Option<Loc>> {
        let comps = components(path);
        let Some((last, parent)) = comps.split_last() else {
            return Ok(None);
        };
        let key = self.resolve_dir(parent)?;
        match self.lookup(key, last)? {
            Some(slot) => Ok(Some(Loc { dir: key, slot })),
            None => Err(Error::NotFound {
                path: join(parent, last),
            }),
        }
    }

    fn root_entry() -> DirEntry {
        DirEntry {
            name: String::new(),
            short_name: String::new(),
            is_dir: true,
            size: 0,
            modified: None,
            created: None,
            attributes: ATTR_DIR,
        }
    }

    /// Pick a short name for `long` that is unique in directory `key`; also returns
    /// whether an LFN is needed.
    fn choose_sfn(&mut self, key: u32, long: &str) -> Result<([u8; 11], bool)> {
        let d = self.dir(key)?;
        let taken = |d: &Dir, s: &[u8; 11]| {
            d.lookup_short(s).is_some() || d.lookup_long(&name::sfn_display(s, 0)).is_some()
        };
        if let Some(s) = name::exact_sfn(long) {
            if !taken(d, &s) {
                return Ok((s, false));
            }
        }
        let (base, ext, lossy) = name::basis(long);
        let plain = name::pack(&base, &ext);
        if !lossy && !taken(d, &plain) {
            return Ok((plain, true));
        }
        for n in 1..=9 {
            let s = name::pack(&name::with_tail(&base, n), &ext);
            if !taken(d, &s) {
                return Ok((s, true));
            }
        }
        // Hashed form: 2 base characters + 4 hex digits + ~n, stepping the hash until free.
        let h = name::name_hash(long);
        let head: Vec<u8> = base.iter().take(2).copied().collect();
        for step in 0..=0xFFFFu32 {
            let v = (u32::from(h) + step) & 0xFFFF;
            for n in 1..=9 {
                let mut b = head.clone();
                b.extend_from_slice(format!("{v:04X}").as_bytes());
                let s = name::pack(&name::with_tail(&b, n), &ext);
                if !taken(d, &s) {
                    return Ok((s, true));
                }
            }
        }
        Err(Error::DirectoryFull {
            path: format!("(no free short name for {long:?})"),
        })
    }

    /// Grow directory `key` so that `n` more consecutive slots fit. The new cluster is
    /// zeroed and marked end-of-chain before the old last cluster links to it.
    fn ensure_slots(&mut self, key: u32, n: usize, path: &str) -> Result<()> {
        let cb = self.geo.bytes_per_cluster as usize;
        loop {
            let d = self.dir(key)?;
            if d.plan_slots(n, cb).is_some() {
                return Ok(());
            }
            if d.fixed.is_some() {
                return Err(Error::DirectoryFull { path: path.into() });
            }
            if d.data.len() + cb > MAX_DIR_ENTRIES * 32 {
                return Err(Error::DirectoryFull { path: path.into() });
            }
            let last = d.clusters.last().copied();
            self.begin_write()?;
            // Right after the directory's last cluster if that is free, else next-fit from
            // the hint (never a scan across the files written since).
            let after = last
                .map(|l| l + 1)
                .filter(|&c| c <= self.fat.max_cluster() && self.fat.is_free(c));
            let (c, _) = self.fat.find_free_run(after, 1).ok_or(Error::NoSpace {
                needed: cb as u64,
                available: 0,
            })?;
            let zeros = vec![0u8; cb];
            let off = self.geo.cluster_offset(c);
            self.write_at(off, &zeros)?;
            self.fat.set(c, Entry::Eoc);
            self.flush_fat()?;
            if let Some(l) = last {
                self.fat.set(l, Entry::Next(c));
                self.flush_fat()?;
            }
            let d = self.dir(key)?;
            d.clusters.push(c);
            d.data.extend_from_slice(&zeros);
            self.dirs_grew = true;
        }
    }

    /// Write a new entry set (LFN slots + SFN from `template`) for `long` into `key`.
    fn insert_entry(
        &mut self,
        key: u32,
        long: &str,
        template: [u8; 32],
        path: &str,
    ) -> Result<usize> {
        let (sfn, need_lfn) = self.choose_sfn(key, long)?;
        let mut slots: Vec<[u8; 32]> = if need_lfn {
            name::lfn_slots(long, name::lfn_checksum(&sfn))
        } else {
            Vec::new()
        };
        let mut e = template;
        e[..11].copy_from_slice(&sfn);
        e[12] = 0;
        slots.push(e);
        let n = slots.len();
        self.ensure_slots(key, n, path)?;
        self.begin_write()?;
        let cb = self.geo.bytes_per_cluster as usize;
        let d = self.dir(key)?;
        let plan = d
            .plan_slots(n, cb)
            .ok_or_else(|| corrupt("directory has no room after growing"))?;
        let start = plan.at;
        let appended = plan.hole.is_none();
        if let Some((a, b)) = d.take_slots(&plan, n) {
            // Skipped slots at a cluster's end become deleted entries, never 0x00 gaps.
            let d = self
                .dirs
                .get(&key)
                .ok_or_else(|| corrupt("directory cache lost an entry"))?;
            let r = d.write_slots(&mut self.storage, &self.geo, a, b);
            self.note_write(r)?;
            self.barrier()?;
        }
        let d = self.dir(key)?;
        for (i, s) in slots.iter().enumerate() {
            let b = (start + i) * 32;
            d.data[b..b + 32].copy_from_slice(s);
        }
        let sfn_slot = start + n - 1;
        d.index(long, sfn, sfn_slot, start);
        // Appended at the end marker: slots past a 0x00 are free, but may hold stale
        // entries (a lost write made the 0x00, say). Filling the gap would bring them back
        // as duplicates, and fsck.fat reads past the marker anyway: zero them.
        let mut write_end = start + n;
        if appended {
            let tail = &mut d.data[write_end * 32..];
            if let Some(last) = tail.iter().rposition(|&b| b != 0) {
                tail[..=last].fill(0);
                write_end += last / 32 + 1;
            }
        }
        let d = self
            .dirs
            .get(&key)
            .ok_or_else(|| corrupt("directory cache lost an entry"))?;
        let r = d.write_slots(&mut self.storage, &self.geo, start, write_end);
        self.note_write(r)?;
        Ok(sfn_slot)
    }

    /// Mark an entry set deleted (SFN and its LFN slots) and write it.
    fn delete_entry(&mut self, loc: Loc) -> Result<()> {
        let p = self.parsed(loc)?;
        self.begin_write()?;
        let d = self.dir(loc.dir)?;
        let first = p.first_slot;
        // Before the entry is marked deleted: the index confirms a name against the entry.
        d.unindex(&p.name, &p.sfn, loc.slot);
        for i in first..=loc.slot {
            d.data[i * 32] = 0xE5;
        }
        d.add_hole(first, loc.slot + 1 - first);
        let d = self
            .dirs
            .get(&loc.dir)
            .ok_or_else(|| corrupt("directory cache lost an entry"))?;
        let r = d.write_slots(&mut self.storage, &self.geo, first, loc.slot + 1);
        self.note_write(r)
    }

    /// Replace the SFN entry at `loc` with `e` and write it.
    fn update_entry(&mut self, loc: Loc, e: [u8; 32]) -> Result<()> {
        self.begin_write()?;
        let d = self.dir(loc.dir)?;
        let b = loc.slot * 32;
        d.data
            .get_mut(b..b + 32)
            .ok_or_else(|| corrupt("directory slot out of range"))?
            .copy_from_slice(&e);
        let d = self
            .dirs
            .get(&loc.dir)
            .ok_or_else(|| corrupt("directory cache lost an entry"))?;
        let r = d.write_slots(&mut self.storage, &self.geo, loc.slot, loc.slot + 1);
        self.note_write(r)
    }

    /// Entries of a directory, without `.` and `..` and the volume label.
    pub fn list_dir(&mut self, path: &str) -> Result<Vec<DirEntry>> {
        let comps = components(path);
        let key = self.resolve_dir(&comps)?;
        let d = self.dir(key)?;
        let (entries, _, _) = dir::parse(&d.data);
        Ok(entries
            .iter()
            .filter(|p| p.kind == Kind::Normal)
            .map(to_dir_entry)
            .collect())
    }

    /// `Error::NotFound` when absent. The root is a directory entry named `""`.
    pub fn stat(&mut self, path: &str) -> Result<DirEntry> {
        match self.find(path)? {
            None => Ok(Self::root_entry()),
            Some(loc) => Ok(to_dir_entry(&self.parsed(loc)?)),
        }
    }

    pub fn open_file(&mut self, path: &str) -> Result<File<'_, S>> {
        let loc = self.find(path)?.ok_or_else(|| Error::IsADirectory {
            path: path.to_string(),
        })?;
        let p = self.parsed(loc)?;
        if p.is_dir() {
            return Err(Error::IsADirectory {
                path: path.to_string(),
            });
        }
        let size = u64::from(p.size());
        let clusters = self.fat.chain(p.cluster())?;
        let cb = u64::from(self.geo.bytes_per_cluster);
        if (clusters.len() as u64) * cb < size {
            return Err(corrupt(format!(
                "{path}: size {size} is larger than its cluster chain ({} bytes)",
                clusters.len() as u64 * cb
            )));
        }
        let mut runs: Vec<(u32, u32)> = Vec::new();
        let mut run_starts = Vec::new();
        for (i, &c) in clusters.iter().enumerate() {
            match runs.last_mut() {
                Some((s, l)) if *s + *l == c => *l += 1,
                _ => {
                    runs.push((c, 1));
                    run_starts.push(i as u64);
                }
            }
        }
        Ok(File {
            fs: self,
            runs,
            run_starts,
            size,
            pos: 0,
            buf: Vec::new(),
            buf_pos: 0,
        })
    }

    fn check_new(&mut self, path: &str) -> Result<(u32, String, String)> {
        let comps = components(path);
        let Some((last, parent)) = comps.split_last() else {
            return Err(Error::AlreadyExists { path: "/".into() });
        };
        validate_name(last)?;
        let key = self.resolve_dir(parent)?;
        let full = join(parent, last);
        if self.lookup(key, last)?.is_some() {
            return Err(Error::AlreadyExists { path: full });
        }
        Ok((key, last.to_string(), full))
    }

    /// Create a new, empty file; `Error::AlreadyExists` if the name exists in any case.
    /// Invalid names give `Error::InvalidName`. The parent must exist.
    pub fn create_file(&mut self, path: &str) -> Result<FileWriter<'_, S>> {
        let (key, name, full) = self.check_new(path)?;
        let t = now();
        let e = dir::new_entry(&[b' '; 11], ATTR_ARCHIVE, 0, t);
        let slot = self.insert_entry(key, &name, e, &full)?;
        Ok(FileWriter {
            fs: self,
            dir: key,
            slot,
            path: full,
            runs: Vec::new(),
            written: 0,
            buf: Vec::new(),
            failed: None,
            done: false,
        })
    }

    /// Create one directory (parent must exist); `AlreadyExists` if present.
    pub fn create_dir(&mut self, path: &str) -> Result<()> {
        let (key, name, full) = self.check_new(path)?;
        let parent_cluster = if key == 0 { 0 } else { key };
        let cb = self.geo.bytes_per_cluster as usize;
        self.begin_write()?;
        let (c, _) = self.fat.find_free_run(None, 1).ok_or(Error::NoSpace {
            needed: cb as u64,
            available: 0,
        })?;
        let t = now();
        let mut data = vec![0u8; cb];
        data[..32].copy_from_slice(&dir::new_entry(b".          ", ATTR_DIR, c, t));
        data[32..64].copy_from_slice(&dir::new_entry(b"..         ", ATTR_DIR, parent_cluster, t));
        // Initialise the cluster while it is still free on disk, then claim it, then link
        // it from the parent: a crash leaves at worst a lost cluster.
        self.write_at(self.geo.cluster_offset(c), &data)?;
        self.fat.set(c, Entry::Eoc);
        self.flush_fat()?;
        let e = dir::new_entry(&[b' '; 11], ATTR_DIR, c, t);
        if let Err(err) = self.insert_entry(key, &name, e, &full) {
            self.fat.set(c, Entry::Free);
            self.flush_fat()?;
            return Err(err);
        }
        Ok(())
    }

    /// Rename or move a file or directory; fails with `AlreadyExists` if `to` exists
    /// (except when `to` differs from `from` only in case: that is a case change).
    pub fn rename(&mut self, from: &str, to: &str) -> Result<()> {
        let from_loc = self
            .find(from)?
            .ok_or_else(|| Error::Unsupported("cannot rename the root directory".into()))?;
        let p = self.parsed(from_loc)?;
        let comps = components(to);
        let Some((last, parent)) = comps.split_last() else {
            return Err(Error::AlreadyExists { path: "/".into() });
        };
        validate_name(last)?;
        let to_key = self.resolve_dir(parent)?;
        let full = join(parent, last);
        if let Some(slot) = self.lookup(to_key, last)? {
            if !(to_key == from_loc.dir && slot == from_loc.slot) {
                return Err(Error::AlreadyExists { path: full });
            }
        }
        let moved_dir = if p.is_dir() {
            Some(self.key_of(&p, from)?)
        } else {
            None
        };
        if let (Some(dk), true) = (moved_dir, to_key != from_loc.dir) {
            // Refuse to move a directory below itself: walk up from the target.
            let mut k = to_key;
            let mut steps = 0u64;
            while k != 0 {
                if k == dk {
                    return Err(Error::Unsupported(format!(
                        "cannot move {from} into itself ({to})"
                    )));
                }
                let d = self.dir(k)?;
                let up = d.entry(1).map(|e| dir::entry_cluster(&e)).unwrap_or(0);
                k = up;
                steps += 1;
                if steps > u64::from(self.geo.cluster_count) {
                    return Err(corrupt("directory `..` chain loops"));
                }
            }
        }
        // Make room first, so that nothing can fail between removing the old entry and
        // writing the new one.
        let need = name::lfn_slots(last, 0).len() + 1;
        self.ensure_slots(to_key, need, &full)?;
        // Old entry goes first: a crash in between loses the name (the clusters become
        // lost clusters), but never leaves two entries sharing one chain.
        self.delete_entry(from_loc)?;
        self.barrier()?;
        let template = p.raw;
        self.insert_entry(to_key, last, template, &full)?;
        if let (Some(dk), true) = (moved_dir, to_key != from_loc.dir) {
            let new_parent = if to_key == 0 { 0 } else { to_key };
            let d = self.dir(dk)?;
            if let Some(mut e) = d.entry(1) {
                if &e[..11] == b"..         " {
                    dir::set_entry_cluster(&mut e, new_parent);
                    self.update_entry(Loc { dir: dk, slot: 1 }, e)?;
                }
            }
        }
        Ok(())
    }

    /// Remove a file, or an empty directory (`DirectoryNotEmpty` otherwise).
    pub fn remove(&mut self, path: &str) -> Result<()> {
        let loc = self
            .find(path)?
            .ok_or_else(|| Error::Unsupported("cannot remove the root directory".into()))?;
        let p = self.parsed(loc)?;
        let mut dir_key = None;
        if p.is_dir() {
            let k = self.key_of(&p, path)?;
            let d = self.dir(k)?;
            if !d.is_empty() {
                return Err(Error::DirectoryNotEmpty { path: path.into() });
            }
            dir_key = Some(k);
        }
        // Walk the chain before touching anything: a corrupt chain aborts cleanly.
        let chain = self.fat.chain(p.cluster())?;
        if !p.is_dir() {
            // A file's chain must be exactly as long as its size needs. A longer one may
            // run into clusters that another file was given after the FAT lost a write
            // (the card acknowledged it and dropped it): freeing it would free that other
            // file's data. Refuse, and leave the repair to a file-system check.
            let cb = u64::from(self.geo.bytes_per_cluster);
            let want = u64::from(p.size()).div_ceil(cb);
            if chain.len() as u64 != want {
                return Err(corrupt(format!(
                    "{path}: its cluster chain has {} clusters for {} bytes (expected {want}); not freeing clusters that may belong to other files — check the card with fsck.fat or chkdsk",
                    chain.len(),
                    p.size()
                )));
            }
        }
        self.delete_entry(loc)?;
        self.fat.free_chain(&chain);
        self.flush_fat()?;
        if let Some(k) = dir_key {
            self.dirs.remove(&k);
        }
        Ok(())
    }

    pub fn set_times(
        &mut self,
        path: &str,
        modified: Option<NaiveDateTime>,
        created: Option<NaiveDateTime>,
    ) -> Result<()> {
        let loc = self
            .find(path)?
            .ok_or_else(|| Error::Unsupported("the root directory has no times".into()))?;
        let mut e = self.parsed(loc)?.raw;
        if let Some(m) = modified {
            let (d, t, _) = dir::encode_time(m);
            boot::put16(&mut e, 22, t);
            boot::put16(&mut e, 24, d);
        }
        if let Some(c) = created {
            let (d, t, tenth) = dir::encode_time(c);
            e[13] = tenth;
            boot::put16(&mut e, 14, t);
            boot::put16(&mut e, 16, d);
        }
        self.update_entry(loc, e)
    }

    /// Write every pending change (FAT copies, directory entries, FSInfo), clear the dirty
    /// flag and flush the storage. After `flush` the volume is clean for `fsck.fat -n`.
    ///
    /// A volume that was already dirty when opened stays marked dirty (as Linux does): it
    /// may hold damage from before that only a real check should clear. So does a volume
    /// on which a write failed: the next open repairs what the failure leaked.
    pub fn flush(&mut self) -> Result<()> {
        if self.write_failed {
            // No writer can be open here (they borrow the file system), so every allocated
            // cluster should be owned by an entry: what is not leaked from the failed write.
            // If the repair cannot finish, the volume stays marked dirty for the next open.
            if self.repair_leaks()?.repaired {
                self.write_failed = false;
            }
        }
        self.flush_fat()?;
        if self.dirty_on_disk {
            let free = self.fat.free_count();
            self.write_fsinfo(Some(free))?;
            if !self.was_dirty && !self.write_failed {
                let off = self.geo.state_offset;
                if let Some(b) = self.boot.get_mut(off) {
                    *b &= !STATE_DIRTY;
                }
                let boot = self.boot.clone();
                self.write_at(0, &boot)?;
            }
            self.dirty_on_disk = false;
        }
        let r = self.storage.flush().map_err(Error::from);
        self.note_write(r)
    }

    /// Forget cached file data and directory contents so that the next reads come from
    /// the storage (used before read-back verification). Implies `flush`.
    pub fn drop_caches(&mut self) -> Result<()> {
        self.flush()?;
        self.dirs.clear();
        Ok(())
    }

    /// Walk the whole volume and report inconsistencies; never modifies anything.
    pub fn check(&mut self) -> Result<CheckReport> {
        check::check(self)
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

/// Check a name against what FAT long names can hold. Used by callers to sanitise.
pub fn validate_name(name: &str) -> Result<()> {
    name::validate_name(name)
}
