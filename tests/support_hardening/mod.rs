//! Shared helpers of the hardening suites (`tests/fault_campaign.rs`, `tests/fake_cards.rs`,
//! `tests/kill_resume.rs`, `tests/hostile.rs`).
//!
//! - [`MemDisk`]: an in-memory card image shared between the test and the volume under test,
//!   so that the test can look at the real bytes whatever the volume did (or failed to do).
//! - [`FaultMedium`]: a [`Medium`] wrapper that counts every `read`/`write`/`flush`/
//!   `sync_medium` call as one operation and can fail one of them, corrupt the data returned
//!   by one read, or report success for one write and drop it.
//! - [`FaultVolume`]: the same for a directory card, as a [`Volume`] wrapper over
//!   `DirVolume` (every Volume call and every read/write on returned readers/sinks counts).
//! - A deterministic phone builder, and the independent oracles: mtools to read a FAT image
//!   back (never our own reader), `fsck.fat -n`, and plain hashing for directory cards.
//!
//! Oracle tools are optional: [`oracle`] prints `SKIPPED: <tool> missing` and the caller
//! returns, unless `SDEXPORT_REQUIRE_ORACLES=1`, then a missing tool fails the test.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use sdexport::storage::fat::Medium;
use sdexport::storage::{
    Entry, FileSink, Limits, ReadSeek, Space, StorageError, StorageResult, Volume,
};
use sha2::{Digest, Sha256};

// ---------------------------------------------------------------- determinism

/// SplitMix64: a tiny deterministic generator (no `rand` dependency).
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// At most `max` indices out of `0..n`, spread evenly, deterministic, always including the
/// first and the last few (where the run finishes: manifest, removals).
pub fn sample_indices(n: u64, max: u64) -> Vec<u64> {
    if n <= max {
        return (0..n).collect();
    }
    let mut v: Vec<u64> = (0..max).map(|i| i * n / max).collect();
    v.extend(n.saturating_sub(8)..n);
    v.sort_unstable();
    v.dedup();
    v
}

// ---------------------------------------------------------------- oracle tools

// The oracle helpers are the shared ones of tests/common.
#[path = "../common/mod.rs"]
mod common;
#[allow(unused_imports)] // each test binary uses a subset
pub use common::{have, oracle};

/// A scratch directory on tmpfs when there is one (many runs, many syncs).
pub fn scratch(tag: &str) -> tempfile::TempDir {
    let base = Path::new("/dev/shm");
    let prefix = format!("sdexport-hard-{tag}-");
    let mut b = tempfile::Builder::new();
    b.prefix(&prefix);
    if base.is_dir() {
        if let Ok(d) = b.tempdir_in(base) {
            return d;
        }
    }
    b.tempdir().expect("tempdir")
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hash of every regular file under `root`: relative path → sha256.
pub fn hash_tree(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                stack.push(p);
            } else if ft.is_file() {
                if let Ok(bytes) = fs::read(&p) {
                    let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                    out.insert(rel, sha256_hex(&bytes));
                }
            }
        }
    }
    out
}

/// Read a FAT image with mtools and hash what it holds: `mcopy -s` of the whole card, and
/// when that fails (it aborts at the first unreadable file — a damaged manifest, say — and
/// hides every file after it), each file `mdir -/ -b` lists is copied out with its own
/// `mcopy`. Whatever mtools cannot read is simply not there (that is the point of the
/// oracle).
pub fn mtools_hashes(image: &Path, work: &Path) -> BTreeMap<String, String> {
    let out = work.join("mtools-extract");
    let _ = fs::remove_dir_all(&out);
    fs::create_dir_all(&out).unwrap();
    let whole = Command::new("mcopy")
        .env("MTOOLS_SKIP_CHECK", "1")
        .args(["-s", "-n", "-m", "-i"])
        .arg(image)
        .arg("::/")
        .arg(format!("{}/", out.display()))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !whole {
        copy_file_by_file(image, &out);
    }
    let h = hash_tree(&out);
    let _ = fs::remove_dir_all(&out);
    h
}

fn copy_file_by_file(image: &Path, out: &Path) {
    let listing = Command::new("mdir")
        .env("MTOOLS_SKIP_CHECK", "1")
        .args(["-/", "-b", "-i"])
        .arg(image)
        .arg("::/")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    for line in listing.lines() {
        // `-b` prints `::/path` for files and `::/path/` for directories.
        let Some(path) = line.strip_prefix("::/") else {
            continue;
        };
        if path.is_empty() || path.ends_with('/') {
            continue;
        }
        let dest = out.join(path);
        if dest.exists() {
            // Copied by `mcopy -s` before it stopped (the file it stopped at is partial, so
            // it hashes as nothing on the phone).
            continue;
        }
        fs::create_dir_all(dest.parent().unwrap()).unwrap();
        let ok = Command::new("mcopy")
            .env("MTOOLS_SKIP_CHECK", "1")
            .args(["-n", "-m", "-i"])
            .arg(image)
            .arg(format!("::/{path}"))
            .arg(&dest)
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !ok {
            let _ = fs::remove_file(&dest);
            eprintln!("mtools could not read ::/{path}");
        }
    }
}

/// `fsck.fat -n image`: `Ok(())` when clean, else its output.
pub fn fsck_clean(image: &Path) -> Result<(), String> {
    let o = Command::new("fsck.fat")
        .arg("-n")
        .arg(image)
        .output()
        .map_err(|e| format!("cannot run fsck.fat: {e}"))?;
    if o.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ))
    }
}

/// Files of a card that are photos (not our records, not temp files).
pub fn user_files(card: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    card.iter()
        .filter(|(p, _)| !p.starts_with(".sdexport") && p.as_str() != "SHA256SUMS")
        .map(|(p, h)| (p.clone(), h.clone()))
        .collect()
}

/// Originals (phone path → sha) missing from the phone with no copy of their content on
/// the card (outside `.sdexport/`). Empty means nothing was lost.
pub fn lost_originals(
    originals: &BTreeMap<String, String>,
    phone_root: &Path,
    card: &BTreeMap<String, String>,
) -> Vec<String> {
    let card_hashes: std::collections::HashSet<String> = user_files(card).into_values().collect();
    originals
        .iter()
        .filter(|(rel, sha)| {
            let p = phone_root.join(rel);
            let still = fs::read(&p)
                .map(|b| &sha256_hex(&b) == *sha)
                .unwrap_or(false);
            !still && !card_hashes.contains(*sha)
        })
        .map(|(rel, _)| rel.clone())
        .collect()
}

/// Hashes of the originals that appear other than exactly once among the card's photos.
pub fn not_exactly_once(
    originals: &BTreeMap<String, String>,
    card: &BTreeMap<String, String>,
) -> Vec<String> {
    let user = user_files(card);
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for h in user.values() {
        *count.entry(h.as_str()).or_default() += 1;
    }
    originals
        .iter()
        .filter(|(_, sha)| count.get(sha.as_str()).copied().unwrap_or(0) != 1)
        .map(|(rel, sha)| format!("{rel} ({}x)", count.get(sha.as_str()).copied().unwrap_or(0)))
        .collect()
}

// ---------------------------------------------------------------- the phone

/// Make a phone under `root`: `n` photos of `min..=max` bytes in `DCIM/Camera`, plus a Live
/// Photo pair (`IMG_0100.HEIC` + `IMG_0100.MOV`) when `live_pair`. Returns path → sha256.
pub fn make_phone(
    root: &Path,
    seed: u64,
    n: usize,
    min: u64,
    max: u64,
    live_pair: bool,
) -> BTreeMap<String, String> {
    let mut rng = Rng(seed);
    let cam = root.join("DCIM/Camera");
    fs::create_dir_all(&cam).unwrap();
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for i in 0..n {
        let size = rng.range(min, max) as usize;
        let mut b = vec![0u8; size];
        rng.fill(&mut b);
        b[..4].copy_from_slice(&[0xFF, 0xD8, 0xFF, 0xE0]);
        files.push((format!("DCIM/Camera/IMG_2024{:04}_{i:04}.jpg", 101 + i), b));
    }
    if live_pair {
        for (ext, brand) in [("HEIC", b"heic"), ("MOV", b"qt  ")] {
            let size = rng.range(min, max) as usize;
            let mut b = vec![0u8; size];
            rng.fill(&mut b);
            b[..4].copy_from_slice(&24u32.to_be_bytes());
            b[4..8].copy_from_slice(b"ftyp");
            b[8..12].copy_from_slice(brand);
            files.push((format!("DCIM/Camera/IMG_0100.{ext}"), b));
        }
    }
    let mut out = BTreeMap::new();
    // A fixed modified time per file: runs are reproducible.
    let base = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    for (i, (rel, b)) in files.into_iter().enumerate() {
        let p = root.join(&rel);
        fs::write(&p, &b).unwrap();
        let f = fs::File::options().write(true).open(&p).unwrap();
        f.set_modified(base + Duration::from_secs(2 * i as u64))
            .unwrap();
        out.insert(rel, sha256_hex(&b));
    }
    out
}

/// Copy a phone tree (used to reset the phone for each case).
pub fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        let t = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&p, &t);
        } else {
            fs::copy(&p, &t).unwrap();
            let m = fs::metadata(&p).unwrap().modified().unwrap();
            fs::File::options()
                .write(true)
                .open(&t)
                .unwrap()
                .set_modified(m)
                .unwrap();
        }
    }
}

// ---------------------------------------------------------------- in-memory card

/// A card image in memory, shared: the test keeps a handle and reads the real bytes after
/// the volume under test is gone (or stuck).
#[derive(Clone)]
pub struct MemDisk {
    pub bytes: Arc<Mutex<Vec<u8>>>,
    pos: u64,
}

impl MemDisk {
    pub fn new(bytes: Vec<u8>) -> Self {
        MemDisk {
            bytes: Arc::new(Mutex::new(bytes)),
            pos: 0,
        }
    }
    pub fn snapshot(&self) -> Vec<u8> {
        self.bytes.lock().unwrap().clone()
    }
}

impl Read for MemDisk {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let b = self.bytes.lock().unwrap();
        let start = (self.pos as usize).min(b.len());
        let n = buf.len().min(b.len() - start);
        buf[..n].copy_from_slice(&b[start..start + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Write for MemDisk {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut b = self.bytes.lock().unwrap();
        let start = self.pos as usize;
        if start >= b.len() && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "write past the end of the card",
            ));
        }
        let n = buf.len().min(b.len() - start);
        b[start..start + n].copy_from_slice(&buf[..n]);
        self.pos += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for MemDisk {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let len = self.bytes.lock().unwrap().len() as u64;
        let new = match pos {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match new {
            Some(p) => {
                self.pos = p;
                Ok(p)
            }
            None => Err(io::Error::new(io::ErrorKind::InvalidInput, "bad seek")),
        }
    }
}

impl Medium for MemDisk {}

// ---------------------------------------------------------------- faults

/// Which fault a run gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// Count only (the reference run).
    None,
    /// Operation number `k` (of all operations) fails with an I/O error.
    FailOp(u64),
    /// Read number `k` returns its data with one byte flipped.
    CorruptRead(u64),
    /// Write number `k` reports success but writes nothing.
    DropWrite(u64),
}

/// Counters and the one fault, shared by the wrapper and the test.
#[derive(Debug)]
pub struct FaultState {
    pub kind: FaultKind,
    pub ops: u64,
    pub reads: u64,
    pub writes: u64,
    /// What was done, when the fault fired.
    pub injected: Option<String>,
}

pub type Shared = Arc<Mutex<FaultState>>;

pub fn fault_state(kind: FaultKind) -> Shared {
    Arc::new(Mutex::new(FaultState {
        kind,
        ops: 0,
        reads: 0,
        writes: 0,
        injected: None,
    }))
}

/// What an operation should do.
enum Verdict {
    Go,
    Fail,
    Corrupt,
    Drop,
}

#[derive(Clone, Copy, PartialEq)]
enum OpKind {
    Read,
    Write,
    Other,
}

fn decide(st: &Shared, kind: OpKind, what: &str) -> Verdict {
    let mut s = st.lock().unwrap();
    let op = s.ops;
    s.ops += 1;
    let read = s.reads;
    let write = s.writes;
    match kind {
        OpKind::Read => s.reads += 1,
        OpKind::Write => s.writes += 1,
        OpKind::Other => {}
    }
    let v = match s.kind {
        FaultKind::FailOp(k) if k == op => Verdict::Fail,
        FaultKind::CorruptRead(k) if kind == OpKind::Read && k == read => Verdict::Corrupt,
        FaultKind::DropWrite(k) if kind == OpKind::Write && k == write => Verdict::Drop,
        _ => Verdict::Go,
    };
    if !matches!(v, Verdict::Go) {
        s.injected = Some(format!("{:?} at {what} (op {op})", s.kind));
    }
    v
}

fn injected_error() -> io::Error {
    io::Error::other("injected I/O error")
}

/// A [`Medium`] that counts every read/write/flush/sync_medium and injects one fault.
pub struct FaultMedium<M: Medium> {
    pub inner: M,
    pub state: Shared,
}

impl<M: Medium> FaultMedium<M> {
    pub fn new(inner: M, state: Shared) -> Self {
        FaultMedium { inner, state }
    }
}

/// One read through a fault point: failed, or with one bit flipped in the middle of what
/// was read (a bit error on the card), or passed through.
fn faulted_read(
    st: &Shared,
    what: &str,
    inner: &mut dyn Read,
    buf: &mut [u8],
) -> io::Result<usize> {
    match decide(st, OpKind::Read, what) {
        Verdict::Fail => Err(injected_error()),
        Verdict::Corrupt => {
            let n = inner.read(buf)?;
            if n > 0 {
                buf[n / 2] ^= 0x10;
            }
            Ok(n)
        }
        _ => inner.read(buf),
    }
}

impl<M: Medium> Read for FaultMedium<M> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        faulted_read(&self.state, "medium read", &mut self.inner, buf)
    }
}

impl<M: Medium> Write for FaultMedium<M> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match decide(&self.state, OpKind::Write, "medium write") {
            Verdict::Fail => Err(injected_error()),
            Verdict::Drop => {
                // Claim success, move the position as if written, write nothing.
                let at = self.inner.stream_position()?;
                if let Some(d) = self.state.lock().unwrap().injected.as_mut() {
                    d.push_str(&format!(" [{} bytes at offset {at:#x}]", buf.len()));
                }
                self.inner.seek(SeekFrom::Current(buf.len() as i64))?;
                Ok(buf.len())
            }
            _ => self.inner.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match decide(&self.state, OpKind::Other, "medium flush") {
            Verdict::Fail => Err(injected_error()),
            _ => self.inner.flush(),
        }
    }
}

impl<M: Medium> Seek for FaultMedium<M> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.inner.seek(pos)
    }
}

impl<M: Medium> Medium for FaultMedium<M> {
    fn sync_medium(&mut self) -> io::Result<()> {
        match decide(&self.state, OpKind::Other, "sync_medium") {
            Verdict::Fail => Err(injected_error()),
            _ => self.inner.sync_medium(),
        }
    }
    fn drop_cache(&mut self) -> io::Result<()> {
        self.inner.drop_cache()
    }
}

// ---------------------------------------------------------------- a faulty directory card

/// A [`Volume`] over another (a `DirVolume`) that counts every Volume call and every
/// read/write on returned readers and sinks as one operation, and injects one fault.
/// Writes (for `DropWrite`) are sink writes and the calls that change the card
/// (`rename_new`, `remove_file`, `remove_dir`, `create_dir_all`, `set_modified`, `sync`):
/// a dropped one returns `Ok` and does nothing. Reads (for `CorruptRead`) are reads on
/// returned readers.
pub struct FaultVolume<V: Volume> {
    pub inner: V,
    pub state: Shared,
}

fn storage_injected(path: &str) -> StorageError {
    StorageError::io(path, injected_error())
}

impl<V: Volume> FaultVolume<V> {
    pub fn new(inner: V, state: Shared) -> Self {
        FaultVolume { inner, state }
    }
    /// A call that reads only: counted, may fail.
    fn plain(&self, what: &str, path: &str) -> StorageResult<()> {
        match decide(&self.state, OpKind::Other, what) {
            Verdict::Fail => Err(storage_injected(path)),
            _ => Ok(()),
        }
    }
    /// A call that changes the card: counted as a write; `Ok(false)` = drop it.
    fn mutating(&self, what: &str, path: &str) -> StorageResult<bool> {
        match decide(&self.state, OpKind::Write, what) {
            Verdict::Fail => Err(storage_injected(path)),
            Verdict::Drop => Ok(false),
            _ => Ok(true),
        }
    }
}

struct FaultReader<'a> {
    inner: Box<dyn ReadSeek + 'a>,
    state: Shared,
}

impl Read for FaultReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        faulted_read(&self.state, "reader read", &mut self.inner, buf)
    }
}

impl Seek for FaultReader<'_> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.inner.seek(pos)
    }
}

struct FaultSink<'a> {
    inner: Box<dyn FileSink + 'a>,
    state: Shared,
    path: String,
}

impl Write for FaultSink<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match decide(&self.state, OpKind::Write, "sink write") {
            Verdict::Fail => Err(injected_error()),
            Verdict::Drop => Ok(buf.len()),
            _ => self.inner.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match decide(&self.state, OpKind::Other, "sink flush") {
            Verdict::Fail => Err(injected_error()),
            _ => self.inner.flush(),
        }
    }
}

impl FileSink for FaultSink<'_> {
    fn finish(self: Box<Self>, modified: Option<SystemTime>) -> StorageResult<()> {
        match decide(&self.state, OpKind::Other, "sink finish") {
            Verdict::Fail => Err(storage_injected(&self.path)),
            _ => self.inner.finish(modified),
        }
    }
}

impl<V: Volume> Volume for FaultVolume<V> {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn limits(&self) -> Limits {
        self.inner.limits()
    }
    fn list(&mut self, dir: &str) -> StorageResult<Vec<Entry>> {
        self.plain("list", dir)?;
        self.inner.list(dir)
    }
    fn stat(&mut self, path: &str) -> StorageResult<Option<Entry>> {
        self.plain("stat", path)?;
        self.inner.stat(path)
    }
    fn open_read(&mut self, path: &str) -> StorageResult<Box<dyn ReadSeek + '_>> {
        self.plain("open_read", path)?;
        let state = self.state.clone();
        let inner = self.inner.open_read(path)?;
        Ok(Box::new(FaultReader { inner, state }))
    }
    fn create_new(&mut self, path: &str) -> StorageResult<Box<dyn FileSink + '_>> {
        self.plain("create_new", path)?;
        let state = self.state.clone();
        let inner = self.inner.create_new(path)?;
        Ok(Box::new(FaultSink {
            inner,
            state,
            path: path.to_string(),
        }))
    }
    fn rename_new(&mut self, from: &str, to: &str) -> StorageResult<()> {
        if self.mutating("rename_new", to)? {
            self.inner.rename_new(from, to)
        } else {
            Ok(())
        }
    }
    fn remove_file(&mut self, path: &str) -> StorageResult<()> {
        if self.mutating("remove_file", path)? {
            self.inner.remove_file(path)
        } else {
            Ok(())
        }
    }
    fn remove_dir(&mut self, path: &str) -> StorageResult<()> {
        if self.mutating("remove_dir", path)? {
            self.inner.remove_dir(path)
        } else {
            Ok(())
        }
    }
    fn create_dir_all(&mut self, path: &str) -> StorageResult<()> {
        if self.mutating("create_dir_all", path)? {
            self.inner.create_dir_all(path)
        } else {
            Ok(())
        }
    }
    fn set_modified(&mut self, path: &str, modified: SystemTime) -> StorageResult<()> {
        if self.mutating("set_modified", path)? {
            self.inner.set_modified(path, modified)
        } else {
            Ok(())
        }
    }
    fn space(&mut self) -> StorageResult<Space> {
        self.plain("space", "")?;
        self.inner.space()
    }
    fn sync(&mut self) -> StorageResult<()> {
        if self.mutating("sync", "")? {
            self.inner.sync()
        } else {
            Ok(())
        }
    }
    fn drop_caches(&mut self) -> StorageResult<()> {
        self.plain("drop_caches", "")?;
        self.inner.drop_caches()
    }
}

/// Where the tool's own records live on the card.
pub fn manifest_path(card_root: &Path) -> PathBuf {
    card_root.join(".sdexport/manifest.jsonl")
}

thread_local! {
    static WRITTEN: std::cell::RefCell<BTreeMap<PathBuf, Vec<u8>>> =
        const { std::cell::RefCell::new(BTreeMap::new()) };
}

/// Write `bytes` to `path`, rewriting only the 64 KiB chunks that differ from what this
/// thread last wrote there (hundreds of 32 MiB images per campaign cost little this way).
pub fn write_image(path: &Path, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    WRITTEN.with(|w| {
        let mut w = w.borrow_mut();
        let prev = w
            .remove(path)
            .filter(|p| p.len() == bytes.len() && path.exists());
        match &prev {
            None => {
                fs::write(path, bytes).unwrap();
            }
            Some(prev) => {
                let f = fs::File::options().write(true).open(path).unwrap();
                const CHUNK: usize = 64 << 10;
                for (i, (a, b)) in prev.chunks(CHUNK).zip(bytes.chunks(CHUNK)).enumerate() {
                    if a != b {
                        f.write_all_at(b, (i * CHUNK) as u64).unwrap();
                    }
                }
            }
        }
        let mut keep = prev.unwrap_or_default();
        keep.clear();
        keep.extend_from_slice(bytes);
        w.insert(path.to_path_buf(), keep);
    });
}
