//! Cards that lie, simulated at the byte stream under our FAT engine.
//!
//! - **Fake capacity** ([`FakeCapacity`]): claims 4× its real size; a write at address `a`
//!   lands at `a mod real` (what counterfeit cards do), so writing past the real size
//!   overwrites earlier data — the boot sector and FATs first, then the first photos.
//! - **Lossy write cache** ([`LossyCache`]): keeps the most recent writes in a cache that
//!   flush/sync does not empty (the card acknowledges them and answers reads from it) and
//!   that is lost when the card is pulled; older data has reached flash.
//!
//! Scaling (so that each test takes seconds, not hours): the real cards in the threat
//! model are GiB-sized, their caches 16–128 MiB, and the protocol reads a batch back after
//! 1 GiB more was written (`batch_bytes`, 16× a 64 MiB cache). Here everything is divided
//! by 16 or more: the fake card is 24 MiB real claiming 96 MiB, the cache is 4 MiB and
//! `batch_bytes` is 64 MiB (16× the cache, the same ratio as 1 GiB : 64 MiB) for the runs
//! where every batch is read back at the end, and 4 MiB (= the cache, the smallest value
//! that still pushes a batch out of the cache before it is read back) where batches are
//! released mid-run.
//!
//! After each `--move` run the card is "pulled" and its real bytes are read independently
//! (mtools over the bytes the card would really return), and every original the run
//! removed must still have its exact content on the card.

mod support_hardening;

use std::collections::{BTreeMap, VecDeque};
use std::fs;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use sdexport::storage::dir::DirVolume;
use sdexport::storage::fat::{FatVolume, Medium};
use sdexport::transfer::{run_photos, NoProgress, PhotoOptions, PhotosReport};
use sdexport_fat::FormatOptions;
use support_hardening::*;

const MIB: u64 = 1 << 20;
const REAL: u64 = 24 * MIB;
const CLAIMED: u64 = 96 * MIB;
const CACHE: u64 = 4 * MIB;

// ---------------------------------------------------------------- fake capacity

/// A counterfeit card: `claimed` bytes addressable, `real.len()` bytes of flash, addresses
/// wrap modulo the real size.
#[derive(Clone)]
struct FakeCapacity {
    real: Arc<Mutex<Vec<u8>>>,
    claimed: u64,
    pos: u64,
}

impl FakeCapacity {
    /// What reading the whole card returns (the wrapped view), as an image file.
    fn visible_image(&self) -> Vec<u8> {
        let r = self.real.lock().unwrap();
        let mut out = Vec::with_capacity(self.claimed as usize);
        while (out.len() as u64) < self.claimed {
            let n = (self.claimed as usize - out.len()).min(r.len());
            out.extend_from_slice(&r[..n]);
        }
        out
    }
}

impl Read for FakeCapacity {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let r = self.real.lock().unwrap();
        let len = r.len() as u64;
        let n = (buf.len() as u64).min(self.claimed.saturating_sub(self.pos)) as usize;
        for (i, b) in buf[..n].iter_mut().enumerate() {
            *b = r[((self.pos + i as u64) % len) as usize];
        }
        self.pos += n as u64;
        Ok(n)
    }
}

impl Write for FakeCapacity {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut r = self.real.lock().unwrap();
        let len = r.len() as u64;
        let n = (buf.len() as u64).min(self.claimed.saturating_sub(self.pos)) as usize;
        if n == 0 && !buf.is_empty() {
            return Err(io::Error::new(io::ErrorKind::WriteZero, "past the end"));
        }
        for (i, b) in buf[..n].iter().enumerate() {
            r[((self.pos + i as u64) % len) as usize] = *b;
        }
        self.pos += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for FakeCapacity {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.pos = match pos {
            SeekFrom::Start(p) => p,
            SeekFrom::End(d) => self.claimed.checked_add_signed(d).unwrap_or(0),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d).unwrap_or(0),
        };
        Ok(self.pos)
    }
}

impl Medium for FakeCapacity {}

// ---------------------------------------------------------------- lossy cache

/// A card whose last `cache` bytes of writes live in a volatile cache: reads see them,
/// flush and sync do not make them durable, pulling the card loses them.
#[derive(Clone)]
struct LossyCache {
    inner: Arc<Mutex<CacheState>>,
    pos: u64,
}

struct CacheState {
    /// What the card answers (flash with the cache applied).
    visible: Vec<u8>,
    /// What survives pulling the card.
    flash: Vec<u8>,
    /// Writes still in the cache, oldest first.
    queue: VecDeque<(u64, usize)>,
    cached: u64,
    cache: u64,
}

impl LossyCache {
    fn new(image: Vec<u8>, cache: u64) -> Self {
        LossyCache {
            inner: Arc::new(Mutex::new(CacheState {
                visible: image.clone(),
                flash: image,
                queue: VecDeque::new(),
                cached: 0,
                cache,
            })),
            pos: 0,
        }
    }
    /// Pull the card: the cache is lost, flash remains.
    fn pulled(&self) -> Vec<u8> {
        self.inner.lock().unwrap().flash.clone()
    }
}

impl Read for LossyCache {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let s = self.inner.lock().unwrap();
        let start = (self.pos as usize).min(s.visible.len());
        let n = buf.len().min(s.visible.len() - start);
        buf[..n].copy_from_slice(&s.visible[start..start + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Write for LossyCache {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut s = self.inner.lock().unwrap();
        let start = self.pos as usize;
        if start >= s.visible.len() && !buf.is_empty() {
            return Err(io::Error::new(io::ErrorKind::WriteZero, "past the end"));
        }
        let n = buf.len().min(s.visible.len() - start);
        s.visible[start..start + n].copy_from_slice(&buf[..n]);
        s.queue.push_back((start as u64, n));
        s.cached += n as u64;
        // Oldest writes leave the cache for flash (with what the card holds there now,
        // which is the same or newer data).
        while s.cached > s.cache {
            let Some((off, len)) = s.queue.pop_front() else {
                break;
            };
            let (o, l) = (off as usize, len);
            let CacheState { visible, flash, .. } = &mut *s;
            flash[o..o + l].copy_from_slice(&visible[o..o + l]);
            s.cached -= len as u64;
        }
        self.pos += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(()) // acknowledged, nothing happens: the card lies
    }
}

impl Seek for LossyCache {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let len = self.inner.lock().unwrap().visible.len() as u64;
        self.pos = match pos {
            SeekFrom::Start(p) => p,
            SeekFrom::End(d) => len.checked_add_signed(d).unwrap_or(0),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d).unwrap_or(0),
        };
        Ok(self.pos)
    }
}

impl Medium for LossyCache {}

// ---------------------------------------------------------------- the runs

fn options(batch_bytes: u64) -> PhotoOptions {
    PhotoOptions {
        move_files: true,
        batch_bytes,
        // The filler that pushes the last batch out of the cache, scaled like the cache.
        cache_bytes: CACHE,
        run_id: "20250101T000000Z-fake".into(),
        ..Default::default()
    }
}

/// Probe the card's whole free space (`sdexport probe`), as `--batch` requires; returns
/// whether it passed.
fn probe_card<M: Medium>(medium: M) -> bool {
    let mut card = FatVolume::open(medium, "card").unwrap();
    let ok = sdexport::probe::probe(&mut card, None, &mut |_, _| {})
        .map(|r| r.ok())
        .unwrap_or(false);
    card.into_medium().unwrap();
    ok
}

fn run_move<M: Medium>(medium: M, phone: &Path, batch_bytes: u64) -> Result<PhotosReport, String> {
    let mut card = FatVolume::open(medium, "card").map_err(|e| e.to_string())?;
    let mut phone = DirVolume::open(phone).map_err(|e| e.to_string())?;
    run_photos(
        &mut phone,
        &mut card,
        &options(batch_bytes),
        &mut NoProgress,
    )
    .map_err(|e| e.to_string())
}

/// The judgement after the card was pulled: every original gone from the phone has its
/// content on the card, read by mtools from the bytes that survive.
fn judge(
    label: &str,
    work: &Path,
    surviving_image: &[u8],
    phone: &Path,
    originals: &BTreeMap<String, String>,
    result: &Result<PhotosReport, String>,
) -> Vec<String> {
    let img = work.join("pulled.img");
    fs::write(&img, surviving_image).unwrap();
    let card = mtools_hashes(&img, work);
    let lost = lost_originals(originals, phone, &card);
    let removed = originals.len() - hash_tree(phone).len();
    let (warned, text) = match result {
        Ok(r) => {
            let w = r.warnings.join(" ");
            (
                !r.warnings.is_empty(),
                format!(
                    "removed {}, read-back mismatches {}, warnings: {w}",
                    r.removed(),
                    r.read_back_mismatches
                ),
            )
        }
        Err(e) => (false, format!("run failed: {e}")),
    };
    eprintln!(
        "{label}: {} originals, {removed} removed from the phone, originals lost: {}; {text}",
        originals.len(),
        lost.len()
    );
    let _ = warned;
    if let Ok(r) = result {
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        for f in r.files.iter().filter(|f| !f.removed) {
            // The reason without the file's path: one line per kind of reason.
            let why = f.reason.clone().unwrap_or_default();
            let key = match why.split_once(": DCIM/") {
                Some((head, tail)) => {
                    format!(
                        "{head}: …{}",
                        tail.split_once(": ").map(|t| t.1).unwrap_or("")
                    )
                }
                None => why,
            };
            *reasons.entry(key).or_default() += 1;
        }
        for (why, n) in reasons {
            eprintln!("  kept {n}: {why}");
        }
    }
    lost
}

/// Whether the tool told the user that the card looks counterfeit or failing and suggested
/// a capacity test (report warnings; or, when the run stopped with an error, its message).
fn says_counterfeit(result: &Result<PhotosReport, String>) -> bool {
    let text = match result {
        Ok(r) => r.warnings.join(" "),
        Err(e) => e.clone(),
    }
    .to_lowercase();
    (text.contains("counterfeit") || text.contains("failing"))
        && (text.contains("f3") || text.contains("h2testw"))
}

fn fake_capacity_case(label: &str, files: usize, batch_bytes: u64) -> (Vec<String>, bool) {
    let tmp = scratch("fake");
    let phone = tmp.path().join("phone");
    // ~1 MiB photos: enough of them to pass the real capacity.
    let originals = make_phone(&phone, 0xFA4E, files, 900_000, 1_100_000, true);
    let mut card = FakeCapacity {
        real: Arc::new(Mutex::new(vec![0u8; REAL as usize])),
        claimed: CLAIMED,
        pos: 0,
    };
    // Formatted at the claimed size, as counterfeit cards are sold.
    sdexport_fat::format(
        &mut card,
        &FormatOptions {
            volume_bytes: CLAIMED,
            volume_id: Some(0xFA4E),
            ..Default::default()
        },
    )
    .unwrap();
    let result = run_move(card.clone(), &phone, batch_bytes);
    let lost = judge(
        label,
        tmp.path(),
        &card.visible_image(),
        &phone,
        &originals,
        &result,
    );
    let warned = says_counterfeit(&result);
    eprintln!("{label}: says counterfeit/failing and suggests f3/H2testw: {warned}");
    (lost, warned)
}

/// A run of ~40 MiB on a card with 24 MiB of real flash, every batch read back at the end
/// (64 MiB batches): the wrap has happened before any read-back, so the read-back sees it.
#[test]
fn fake_capacity_whole_run_verified_at_the_end() {
    if !oracle(&["mcopy"]) {
        return;
    }
    let (lost, warned) = fake_capacity_case("fake capacity, one batch", 40, 64 * MIB);
    assert!(
        lost.is_empty(),
        "originals lost on a fake-capacity card: {lost:?}"
    );
    assert!(
        warned,
        "the run must say that the card looks counterfeit or failing and suggest f3/H2testw"
    );
}

/// The same card, with batches asked for (4 MiB): a batch read back after 4 MiB more was
/// written would be correct at that moment and its originals released; then the run writes
/// past the real 24 MiB and the wrap overwrites it (32 of 42 originals were lost that way).
/// Batches now need a card that passed `sdexport probe` (a counterfeit card cannot): on this
/// unprobed card the run says `--batch` was not used and releases nothing before its last
/// write, so the read-back sees the wrap.
#[test]
fn fake_capacity_batches_need_a_probed_card() {
    if !oracle(&["mcopy"]) {
        return;
    }
    let (lost, warned) = fake_capacity_case("fake capacity, 4 MiB batches asked for", 40, 4 * MIB);
    assert!(
        lost.is_empty(),
        "originals lost on a fake-capacity card: {lost:?}"
    );
    assert!(warned);
}

/// On a card that passed the probe, batches are used: the run does not say otherwise.
#[test]
fn batches_are_used_on_a_probed_card() {
    let tmp = scratch("probed");
    let phone = tmp.path().join("phone");
    make_phone(&phone, 0xB0B, 6, 900_000, 1_100_000, false);
    let mut img = io::Cursor::new(vec![0u8; REAL as usize]);
    sdexport_fat::format(
        &mut img,
        &FormatOptions {
            volume_bytes: REAL,
            ..Default::default()
        },
    )
    .unwrap();
    let card = MemDisk::new(img.into_inner());
    let not_used = |r: &PhotosReport| {
        r.warnings
            .iter()
            .any(|w| w.contains("--batch was not used"))
    };
    let before = run_move(card.clone(), &phone, 2 * MIB).expect("run");
    assert!(not_used(&before), "{:?}", before.warnings);
    assert!(probe_card(card.clone()), "a sound card failed the probe");
    make_phone(&phone, 0xB0C, 6, 900_000, 1_100_000, false);
    let after = run_move(card.clone(), &phone, 2 * MIB).expect("run");
    assert!(!not_used(&after), "{:?}", after.warnings);
    assert!(after.complete(), "{after:?}");
}

/// A run that fits in the real flash of a fake card (10 MiB of 24): nothing wraps, nothing
/// must be reported, everything is moved.
#[test]
fn fake_capacity_run_within_real_size_completes() {
    if !oracle(&["mcopy"]) {
        return;
    }
    let (lost, _) = fake_capacity_case("fake capacity, run within the real size", 10, 64 * MIB);
    assert!(lost.is_empty());
}

fn lossy_cache_case(label: &str, files: usize, batch_bytes: u64) -> Vec<String> {
    let tmp = scratch("cache");
    let phone = tmp.path().join("phone");
    let originals = make_phone(&phone, 0xCAC4E, files, 900_000, 1_100_000, true);
    let mut img = io::Cursor::new(vec![0u8; REAL as usize]);
    sdexport_fat::format(
        &mut img,
        &FormatOptions {
            volume_bytes: REAL,
            volume_id: Some(0xCAC4),
            ..Default::default()
        },
    )
    .unwrap();
    let card = LossyCache::new(img.into_inner(), CACHE);
    // Batches need a probed card; this one passes (it keeps everything until pulled).
    assert!(probe_card(card.clone()), "the lossy card failed the probe");
    let result = run_move(card.clone(), &phone, batch_bytes);
    judge(
        label,
        tmp.path(),
        &card.pulled(),
        &phone,
        &originals,
        &result,
    )
}

/// Batches read back only after a full cache's worth of later writes come from flash, and
/// the last batch is pushed out of the cache by a filler before it is read back: pulling
/// the card loses no original.
#[test]
fn lossy_cache_card_loses_nothing() {
    if !oracle(&["mcopy"]) {
        return;
    }
    let lost = lossy_cache_case("lossy 4 MiB cache, 4 MiB batches", 16, 4 * MIB);
    assert!(
        lost.is_empty(),
        "originals lost on a lossy-cache card: {lost:?}"
    );
}

/// What the protocol does guarantee on such a card: a batch read back after at least a
/// cache's worth of later writes is read from flash. Check it by counting only the photos
/// of the run that are not in the last batch: none of those may be lost.
#[test]
fn lossy_cache_card_keeps_every_batch_but_the_last() {
    if !oracle(&["mcopy"]) {
        return;
    }
    let tmp = scratch("cache2");
    let phone = tmp.path().join("phone");
    let originals = make_phone(&phone, 0xCAC4F, 16, 900_000, 1_100_000, false);
    let mut img = io::Cursor::new(vec![0u8; REAL as usize]);
    sdexport_fat::format(
        &mut img,
        &FormatOptions {
            volume_bytes: REAL,
            volume_id: Some(0xCAC5),
            ..Default::default()
        },
    )
    .unwrap();
    let card = LossyCache::new(img.into_inner(), CACHE);
    // Batches need a probed card; this one passes (it keeps everything until pulled).
    assert!(probe_card(card.clone()), "the lossy card failed the probe");
    let result = run_move(card.clone(), &phone, 4 * MIB);
    let lost = judge(
        "lossy 4 MiB cache, all but the last batch",
        tmp.path(),
        &card.pulled(),
        &phone,
        &originals,
        &result,
    );
    // Photos are copied in name order, about 1 MiB each: the last batch is at most the
    // last 4 MiB + one photo written, i.e. the last 5 photos.
    let last: Vec<&String> = originals.keys().rev().take(5).collect();
    let early_lost: Vec<&String> = lost.iter().filter(|p| !last.contains(p)).collect();
    assert!(
        early_lost.is_empty(),
        "photos of batches read back from flash were lost: {early_lost:?}"
    );
}
