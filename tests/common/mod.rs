//! Shared helpers of the behavioural suites (`tests/volume_suite.rs`, `tests/photos.rs`,
//! `tests/faults.rs`): oracle-tool detection, card images made by our engine and by
//! dosfstools/sfdisk, reading images back with mtools, hashing, a phone builder that
//! mirrors the end-to-end checks' `mkphone.sh`, and [`FaultMedium`], a byte stream that
//! fails writes, flips bits on read-back and fails flushes on request.
//!
//! What goes here: helpers used by more than one suite. Test bodies do not.
//!
//! Oracle tools (mtools, dosfstools, sfdisk, sha256sum) are optional: [`oracle`] prints
//! `SKIPPED: <tool> missing` and the caller returns, unless `SDEXPORT_REQUIRE_ORACLES=1`,
//! in which case a missing tool fails the test.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Cursor, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use sdexport::storage::fat::{FatVolume, Medium};
use sdexport::storage::Volume;
use sdexport_fat::{FatType, FormatOptions};
use sha2::{Digest, Sha256};

// ---------------------------------------------------------------- oracle tools

/// Whether `tool` is on the PATH (no message).
pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool} >/dev/null 2>&1"))
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Whether oracle tools must be present (CI sets `SDEXPORT_REQUIRE_ORACLES=1`).
pub fn oracles_required() -> bool {
    std::env::var("SDEXPORT_REQUIRE_ORACLES").is_ok_and(|v| v == "1")
}

/// `true` when every tool is present. Otherwise prints `SKIPPED: <tool> missing` and returns
/// `false` (the test should return), or panics when oracles are required.
pub fn oracle(tools: &[&str]) -> bool {
    for t in tools {
        if !have(t) {
            if oracles_required() {
                panic!("{t} missing and SDEXPORT_REQUIRE_ORACLES=1");
            }
            println!("SKIPPED: {t} missing");
            return false;
        }
    }
    true
}

/// Run a command, panicking with its output when it cannot start.
pub fn run(cmd: &mut Command) -> Output {
    cmd.env("MTOOLS_SKIP_CHECK", "1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Run a command that must succeed.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

// ---------------------------------------------------------------- hashing

pub fn sha256(bytes: &[u8]) -> String {
    let h = Sha256::digest(bytes);
    h.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn sha256_file(path: &Path) -> String {
    sha256(&fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display())))
}

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A JPEG-looking file (sniffs as JPEG) of `len` bytes.
pub fn fake_jpeg(len: usize, seed: u64) -> Vec<u8> {
    let mut v = pattern(len.max(64), seed);
    let header = [
        0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00, 0x01, 0x01, 0x00, 0x00,
        0x01, 0x00, 0x01, 0x00, 0x00,
    ];
    v[..header.len()].copy_from_slice(&header);
    v.truncate(len.max(header.len()));
    v
}

/// Every regular file under `root`, relative path → bytes.
pub fn read_tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    fn rec(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        let Ok(rd) = fs::read_dir(dir) else { return };
        for e in rd.flatten() {
            let p = e.path();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                rec(root, &p, out);
            } else if ft.is_file() {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(rel, fs::read(&p).unwrap());
            }
        }
    }
    rec(root, root, &mut out);
    out
}

/// Every file of a volume, path → bytes, read through the volume.
pub fn volume_files(v: &mut dyn Volume) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for e in v.walk("").expect("walk") {
        if e.is_dir() {
            continue;
        }
        let mut buf = Vec::new();
        v.open_read(&e.path)
            .unwrap_or_else(|err| panic!("open {}: {err}", e.path))
            .read_to_end(&mut buf)
            .unwrap_or_else(|err| panic!("read {}: {err}", e.path));
        out.insert(e.path, buf);
    }
    out
}

/// A name mtools 4.0.32 reads back as written: every character inside the BMP.
pub fn bmp_only(path: &str) -> bool {
    path.chars().all(|c| (c as u32) < 0x10000)
}

// ---------------------------------------------------------------- images

/// An in-memory volume of `bytes` formatted by our engine.
pub fn engine_image(bytes: u64, fat_type: FatType) -> Vec<u8> {
    let mut c = Cursor::new(vec![0u8; bytes as usize]);
    sdexport_fat::format(
        &mut c,
        &FormatOptions {
            volume_bytes: bytes,
            fat_type: Some(fat_type),
            ..FormatOptions::default()
        },
    )
    .unwrap_or_else(|e| panic!("engine format {fat_type:?} of {bytes} bytes: {e}"));
    c.into_inner()
}

/// `mkfs.fat -F <bits> -C path <kib>`: a superfloppy image made by dosfstools.
pub fn mkfs_image(path: &Path, kib: u64, fat_bits: u32) {
    let _ = fs::remove_file(path);
    run_ok(
        Command::new("mkfs.fat")
            .arg("-F")
            .arg(fat_bits.to_string())
            .arg("-C")
            .arg(path)
            .arg(kib.to_string()),
    );
}

/// An image with an MBR and one FAT32 partition at 4 MiB (sector 8192), like SD cards as
/// sold: `sfdisk` + `mkfs.fat --offset 8192`.
pub const MBR_OFFSET: u64 = 4 << 20;
pub fn mbr_image(path: &Path, mib: u64) {
    let _ = fs::remove_file(path);
    let f = fs::File::create(path).unwrap();
    f.set_len(mib << 20).unwrap();
    drop(f);
    let mut child = Command::new("sfdisk")
        .arg("-q")
        .arg(path)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn sfdisk");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"start=8192, type=c\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "sfdisk: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    run_ok(
        Command::new("mkfs.fat")
            .args(["-F", "32", "--offset", "8192"])
            .arg(path),
    );
}

/// Copy the FAT partition at `offset` out of an image (fsck.fat takes no offset).
pub fn slice_out(image: &Path, offset: u64, to: &Path) {
    let mut f = fs::File::open(image).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    let mut out = fs::File::create(to).unwrap();
    io::copy(&mut f, &mut out).unwrap();
}

/// `fsck.fat -n` on a superfloppy image: panics with fsck's output unless clean.
pub fn assert_fsck_clean(image: &Path, what: &str) {
    let out = run(Command::new("fsck.fat").arg("-n").arg(image));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{what}: fsck.fat -n is not clean (exit {}):\n{text}",
        out.status
    );
}

/// Extract a whole superfloppy image with mtools (keeping modified times) into `dir`.
pub fn mtools_extract(image: &Path, dir: &Path) {
    fs::create_dir_all(dir).unwrap();
    let mut dest = dir.as_os_str().to_owned();
    dest.push("/");
    let out = run(Command::new("mcopy")
        .args(["-s", "-n", "-m", "-i"])
        .arg(image)
        .arg("::/")
        .arg(&dest));
    // mcopy of an empty root fails with "no match"; that is an empty volume.
    if !out.status.success() && !read_tree(dir).is_empty() {
        panic!(
            "mcopy -s of {} failed: {}",
            image.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The files mtools sees on an image (`mdir -/ -b`), as relative paths, directories
/// excluded.
pub fn mtools_list(image: &Path) -> Vec<String> {
    let out = run(Command::new("mdir")
        .args(["-/", "-b", "-i"])
        .arg(image)
        .arg("::/"));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.ends_with('/'))
        .filter_map(|l| l.strip_prefix("::/"))
        .map(str::to_string)
        .collect()
}

/// One file's bytes as mtools reads them.
pub fn mtools_read(image: &Path, path: &str) -> Vec<u8> {
    run_ok(
        Command::new("mcopy")
            .args(["-n", "-i"])
            .arg(image)
            .arg(format!("::/{path}"))
            .arg("-"),
    )
    .stdout
}

/// Judge a superfloppy image with the oracles: `fsck.fat -n` clean, and mtools lists and
/// reads `expected` (BMP names only: mtools 4.0.32 mangles names outside the BMP) with the
/// same bytes and no other files.
pub fn assert_oracles_agree(image: &Path, expected: &BTreeMap<String, Vec<u8>>, what: &str) {
    assert_fsck_clean(image, what);
    let listed: std::collections::BTreeSet<String> = mtools_list(image).into_iter().collect();
    let ours: std::collections::BTreeSet<String> = expected.keys().cloned().collect();
    for p in ours.iter().filter(|p| bmp_only(p)) {
        assert!(
            listed.contains(p),
            "{what}: mdir does not list {p}; it lists {listed:?}"
        );
        assert!(
            mtools_read(image, p) == expected[p],
            "{what}: mcopy reads different bytes for {p}"
        );
    }
    assert_eq!(
        listed.len(),
        ours.len(),
        "{what}: mdir lists {listed:?}, our reader {ours:?}"
    );
}

// ---------------------------------------------------------------- times

pub fn assert_time_close(got: Option<SystemTime>, want: SystemTime, slack_secs: u64, what: &str) {
    let got = got.unwrap_or_else(|| panic!("{what}: no modified time"));
    let d = match got.duration_since(want) {
        Ok(d) => d,
        Err(e) => e.duration(),
    };
    assert!(
        d <= Duration::from_secs(slack_secs),
        "{what}: modified time off by {d:?} (got {got:?}, want {want:?})"
    );
}

pub fn epoch(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

// ---------------------------------------------------------------- the phone

/// Where the sample photos are: the repo's copy, else the shared one.
pub fn photos_dir() -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/photos");
    if repo.is_dir() {
        repo
    } else {
        PathBuf::from("/work/shared/testdata/photos")
    }
}

/// Modified time every phone file gets: 2024-05-06 07:08:10 UTC.
pub const PHONE_MTIME: u64 = 1_714_979_290;

/// A phone tree built like the end-to-end checks' `mkphone.sh`.
pub struct Phone {
    pub root: PathBuf,
    /// Media a move must take, relative paths → SHA-256.
    pub media: BTreeMap<String, String>,
    /// Junk a move must leave (thumbnails, trash, pending, .nomedia).
    pub junk: Vec<String>,
}

impl Phone {
    /// Build the phone under `root` from the sample photos (skipping `README.md`).
    pub fn build(root: &Path) -> Phone {
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        let mut photos: Vec<PathBuf> = fs::read_dir(photos_dir())
            .expect("sample photos")
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file() && p.extension().is_some_and(|e| e != "md"))
            .collect();
        photos.sort();
        for (n, p) in photos.iter().enumerate() {
            let folder = if n % 3 == 1 {
                "DCIM/100ANDRO"
            } else {
                "DCIM/Camera"
            };
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            files.push((format!("{folder}/{name}"), fs::read(p).unwrap()));
        }
        let jpg = fs::read(photos_dir().join("Canon_40D.jpg")).expect("Canon_40D.jpg");
        let with = |b: u8| {
            let mut v = jpg.clone();
            v.push(b);
            v
        };
        // Names phones produce that FAT cannot hold as is, and Unicode/emoji.
        files.push(("DCIM/Camera/Été_日本_😀.jpg".into(), with(b'x')));
        files.push(("DCIM/Camera/meeting 12:30?.jpg".into(), with(b'y')));
        // A Live Photo pair and a RAW+JPEG pair.
        files.push(("DCIM/Camera/IMG_4242.JPG".into(), with(b'L')));
        files.push(("DCIM/Camera/IMG_4242.MOV".into(), {
            let mut v = fs::read(photos_dir().join("exiftool_QuickTime.mov")).unwrap();
            v.extend(pattern(300_000, 4242));
            v
        }));
        files.push(("DCIM/Camera/DSC_0007.JPG".into(), with(b'R')));
        files.push((
            "DCIM/Camera/DSC_0007.NEF".into(),
            fs::read(photos_dir().join("exiftool_Nikon.nef")).unwrap(),
        ));
        let junk: Vec<(String, Vec<u8>)> = vec![
            (
                "DCIM/.thumbnails/1700000000123.jpg".into(),
                fake_jpeg(5000, 1),
            ),
            ("DCIM/.thumbnails/.nomedia".into(), Vec::new()),
            (
                "DCIM/Camera/.trashed-1733000000-IMG_0001.jpg".into(),
                fake_jpeg(7000, 2),
            ),
            (
                "DCIM/Camera/.pending-1733000000-VID_0002.mp4".into(),
                pattern(7000, 3),
            ),
            ("DCIM/Camera/.nomedia".into(), Vec::new()),
        ];
        let mut media = BTreeMap::new();
        for (rel, bytes) in &files {
            write_file(&root.join(rel), bytes, epoch(PHONE_MTIME));
            media.insert(rel.clone(), sha256(bytes));
        }
        for (rel, bytes) in &junk {
            write_file(&root.join(rel), bytes, epoch(PHONE_MTIME));
        }
        Phone {
            root: root.to_path_buf(),
            media,
            junk: junk.into_iter().map(|(r, _)| r).collect(),
        }
    }

    pub fn sizes(&self) -> u64 {
        self.media
            .keys()
            .map(|r| fs::metadata(self.root.join(r)).unwrap().len())
            .sum()
    }
}

/// Write a file with its parents and a modified time.
pub fn write_file(path: &Path, bytes: &[u8], mtime: SystemTime) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut f = fs::File::create(path).unwrap();
    f.write_all(bytes).unwrap();
    f.set_modified(mtime).unwrap();
}

// ---------------------------------------------------------------- fault injection

/// What [`FaultMedium`] does wrong, shared between the medium (owned by the volume) and
/// the test (which flips switches while the volume runs).
#[derive(Debug, Default)]
pub struct Faults {
    /// Count of `write` calls so far (1-based after the first).
    pub writes: u64,
    /// Fail the write whose 1-based index is this, once.
    pub fail_write_at: Option<u64>,
    /// Every write from this 1-based index on fails (a card that went away).
    pub fail_writes_from: Option<u64>,
    /// Fail the first write whose data contains this byte string, once (targets one file).
    pub fail_write_containing: Option<Vec<u8>>,
    /// Fail the first write that starts inside `[from, to)`, once (targets a structure:
    /// a FAT copy, a directory).
    pub fail_write_in_range: Option<(u64, u64)>,
    /// While set, any read whose data contains this byte string gets one bit flipped in it:
    /// the card returns wrong data for that file.
    pub flip_reads_containing: Option<Vec<u8>>,
    pub flips: u64,
    /// `sync_medium` fails while set.
    pub fail_sync: bool,
    pub syncs: u64,
    pub faults_injected: u64,
    /// A fake-capacity card: `(start, len)` — every byte address at or past `start + len`
    /// maps to `start + (address - start) % len`, for reads and writes alike, so writes past
    /// the real capacity land on earlier data (what counterfeit cards do).
    pub wrap: Option<(u64, u64)>,
    /// When set, every write is logged: (offset, length, failed).
    pub log: Option<Vec<(u64, usize, bool)>>,
}

/// The image bytes and the fault switches.
#[derive(Debug)]
pub struct FaultState {
    pub data: Cursor<Vec<u8>>,
    pub faults: Faults,
}

/// A `Cursor<Vec<u8>>` behind a shared handle: clone it to keep a view of the image and the
/// switches after handing the medium to a volume.
#[derive(Debug, Clone)]
pub struct FaultMedium {
    pub state: Arc<Mutex<FaultState>>,
    pos: u64,
}

impl FaultMedium {
    pub fn new(bytes: Vec<u8>) -> Self {
        FaultMedium {
            state: Arc::new(Mutex::new(FaultState {
                data: Cursor::new(bytes),
                faults: Faults::default(),
            })),
            pos: 0,
        }
    }
    pub fn lock(&self) -> MutexGuard<'_, FaultState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
    /// The image as it is on the "card" right now (what a crash would leave).
    pub fn snapshot(&self) -> Vec<u8> {
        self.lock().data.get_ref().clone()
    }
    pub fn faults<R>(&self, f: impl FnOnce(&mut Faults) -> R) -> R {
        f(&mut self.lock().faults)
    }
}

/// Where byte `pos` really lives, and how many bytes from there stay contiguous.
fn wrapped(wrap: Option<(u64, u64)>, pos: u64, want: usize) -> (u64, usize) {
    match wrap {
        Some((start, len)) if pos >= start + len => {
            let real = start + (pos - start) % len;
            (real, want.min((start + len - real) as usize))
        }
        Some((start, len)) if pos >= start => (pos, want.min((start + len - pos) as usize)),
        Some((start, _)) => (pos, want.min((start - pos) as usize)),
        None => (pos, want),
    }
}

impl Read for FaultMedium {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut st = self.lock();
        let (pos, max) = wrapped(st.faults.wrap, self.pos, buf.len());
        let buf = &mut buf[..max];
        st.data.set_position(pos);
        let n = st.data.read(buf)?;
        if let Some(needle) = st.faults.flip_reads_containing.clone() {
            if !needle.is_empty() {
                if let Some(i) = buf[..n].windows(needle.len()).position(|w| w == needle) {
                    buf[i + needle.len() / 2] ^= 0x10;
                    st.faults.flips += 1;
                    st.faults.faults_injected += 1;
                }
            }
        }
        drop(st);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Write for FaultMedium {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut st = self.lock();
        let (pos, max) = wrapped(st.faults.wrap, self.pos, buf.len());
        let buf = &buf[..max];
        st.faults.writes += 1;
        let k = st.faults.writes;
        let mut fail = st.faults.fail_write_at == Some(k)
            || st.faults.fail_writes_from.is_some_and(|from| k >= from);
        if let Some((from, to)) = st.faults.fail_write_in_range {
            if (from..to).contains(&pos) {
                st.faults.fail_write_in_range = None;
                fail = true;
            }
        }
        if let Some(needle) = &st.faults.fail_write_containing {
            if buf.windows(needle.len()).any(|w| w == needle.as_slice()) {
                st.faults.fail_write_containing = None;
                fail = true;
            }
        }
        if let Some(log) = &mut st.faults.log {
            log.push((pos, buf.len(), fail));
        }
        if fail {
            st.faults.faults_injected += 1;
            return Err(io::Error::other(format!(
                "injected write error (write #{k})"
            )));
        }
        st.data.set_position(pos);
        let n = st.data.write(buf)?;
        drop(st);
        self.pos += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for FaultMedium {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let len = self.lock().data.get_ref().len() as u64;
        let new = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match new {
            Some(p) => {
                self.pos = p;
                Ok(p)
            }
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek out of range",
            )),
        }
    }
}

impl Medium for FaultMedium {
    fn sync_medium(&mut self) -> io::Result<()> {
        let mut st = self.lock();
        st.faults.syncs += 1;
        if st.faults.fail_sync {
            st.faults.faults_injected += 1;
            return Err(io::Error::other("injected flush error"));
        }
        Ok(())
    }
}

/// Open a FAT volume over a medium, panicking with the engine's error.
pub fn open_fat<M: Medium>(m: M, name: &str) -> FatVolume<M> {
    FatVolume::open(m, name).unwrap_or_else(|e| panic!("open {name}: {e}"))
}

/// Write an in-memory image to a file (for the oracle tools).
pub fn write_image(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, bytes).unwrap();
    p
}

// ---------------------------------------------------------------- the binary and its output

/// Run the sdexport binary with a pinned environment (UTC, no colour, no progress), from the
/// project root so that `testdata/…` paths work.
pub fn sdexport(args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sdexport"));
    c.env("TZ", "UTC")
        .env("NO_COLOR", "1")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("--no-progress")
        .args(args);
    c.output().unwrap()
}

/// Run an oracle tool that must succeed (mtools told not to second-guess geometry).
pub fn tool(cmd: &str, args: &[&str]) -> Output {
    let o = Command::new(cmd)
        .env("MTOOLS_SKIP_CHECK", "1")
        .env("TZ", "UTC")
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{cmd} {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// stdout and stderr together, for messages and assertions on wording.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A path as the `&str` argument a command line takes.
pub fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Set FAT entry `cluster` to `value` in every FAT copy of the (superfloppy) image at
/// `path`: the state a FAT write the card acknowledged and dropped leaves behind.
pub fn poke_fat(path: &Path, cluster: u32, value: u32) {
    let mut bytes = fs::read(path).unwrap();
    let u16_at = |b: &[u8], o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let sector = u16_at(&bytes, 11);
    let reserved = u16_at(&bytes, 14);
    let fats = bytes[16] as usize;
    let (fat_sectors, width) = match u16_at(&bytes, 22) {
        0 => (
            u32::from_le_bytes(bytes[36..40].try_into().unwrap()) as usize,
            4,
        ),
        n => (n, 2),
    };
    for copy in 0..fats {
        let off = (reserved + copy * fat_sectors) * sector + cluster as usize * width;
        bytes[off..off + width].copy_from_slice(&value.to_le_bytes()[..width]);
    }
    fs::write(path, bytes).unwrap();
}

/// The clusters of a file in an image, as `mshowfat` lists them (`<3-5> <9>` → 3,4,5,9).
pub fn file_clusters(image: &Path, path: &str) -> Vec<u32> {
    let o = tool(
        "mshowfat",
        &["-i", &image.to_string_lossy(), &format!("::/{path}")],
    );
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let mut out = Vec::new();
    for run in text.split('<').skip(1) {
        let run = run.split('>').next().unwrap_or("");
        let mut ends = run.split('-').map(|n| n.trim().parse::<u32>().unwrap());
        let a = ends.next().unwrap();
        let b = ends.next().unwrap_or(a);
        out.extend(a..=b);
    }
    out
}
