//! Injected faults under the photo move: [`FaultMedium`] (tests/common) wraps the card
//! image and fails a write, flips a bit in what the card returns on read-back, or fails the
//! flush. `run_photos` drives a [`DirVolume`] phone and a `FatVolume<FaultMedium>` card
//! formatted by our engine.
//!
//! The invariant everywhere: **no original is lost** — every original is still on the phone
//! or has a copy with its exact SHA-256 on the card — and after a clean re-open, a re-run
//! without faults completes the job (every original moved, each photo exactly once on the
//! card) on an image `fsck.fat -n` accepts.
//!
//! What goes here: fault injection at the medium. Behaviour without faults goes to
//! `tests/photos.rs` (binary) and `tests/volume_suite.rs` (the `Volume` contract).

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use common::*;
use sdexport::storage::dir::DirVolume;
use sdexport::storage::fat::FatVolume;
use sdexport::storage::Volume;
use sdexport::transfer::{run_photos, NoProgress, PhotoOptions, PhotosReport, Status};
use sdexport_fat::FatType;
use tempfile::TempDir;

// ---------------------------------------------------------------- the phone and the card

/// The big file faults aim at, and a 32-byte needle at a cluster-aligned offset of it.
const TARGET: &str = "DCIM/Camera/IMG_0002.jpg";
const TARGET_LEN: usize = 200_000;
const NEEDLE_AT: usize = 65_536;

fn target_bytes() -> Vec<u8> {
    fake_jpeg(TARGET_LEN, 2)
}

fn needle() -> Vec<u8> {
    target_bytes()[NEEDLE_AT..NEEDLE_AT + 32].to_vec()
}

const PAIR_MOV: &str = "DCIM/Camera/IMG_4242.MOV";

/// Phone files, relative path → bytes.
fn phone_files() -> BTreeMap<String, Vec<u8>> {
    let photos = photos_dir();
    let mut m = BTreeMap::new();
    m.insert(
        "DCIM/Camera/IMG_0001.jpg".to_string(),
        fs::read(photos.join("Canon_40D.jpg")).unwrap(),
    );
    m.insert(TARGET.to_string(), target_bytes());
    m.insert("DCIM/Camera/IMG_0003.jpg".to_string(), fake_jpeg(70_000, 3));
    m.insert(
        "DCIM/Camera/IMG_4242.JPG".to_string(),
        fs::read(photos.join("Nikon_D70.jpg")).unwrap(),
    );
    let mut mov = fs::read(photos.join("exiftool_QuickTime.mov")).unwrap();
    mov.extend(pattern(150_000, 4242));
    m.insert(PAIR_MOV.to_string(), mov);
    m.insert(
        "DCIM/100ANDRO/DSC_0001.JPG".to_string(),
        fake_jpeg(5_000, 5),
    );
    m
}

/// Write the phone under `dir`; returns its root and path → SHA-256 of each original.
fn make_phone(dir: &Path) -> (PathBuf, BTreeMap<String, String>) {
    let root = dir.join("phone");
    let mut sums = BTreeMap::new();
    for (rel, bytes) in phone_files() {
        write_file(&root.join(&rel), &bytes, epoch(PHONE_MTIME));
        sums.insert(rel, sha256(&bytes));
    }
    (root, sums)
}

fn fresh_card() -> Vec<u8> {
    engine_image(16 << 20, FatType::Fat16)
}

fn options() -> PhotoOptions {
    PhotoOptions {
        move_files: true,
        ..PhotoOptions::default()
    }
}

/// One run over a faulty card, set up by `arm`. Returns the report (or the error's text)
/// and the image bytes as the card holds them after the binary's final flush attempt.
fn faulted_run(
    phone: &Path,
    image: Vec<u8>,
    arm: impl FnOnce(&mut Faults),
) -> (Result<PhotosReport, String>, Vec<u8>, Faults) {
    let medium = FaultMedium::new(image);
    medium.faults(arm);
    let handle = medium.clone();
    let mut card = open_fat(medium, "fault.img");
    let mut phone_v = DirVolume::open(phone).unwrap();
    let result =
        run_photos(&mut phone_v, &mut card, &options(), &mut NoProgress).map_err(|e| e.to_string());
    // As the binary does after a run; the card may refuse.
    let _ = card.sync();
    drop(card);
    let faults = std::mem::take(&mut handle.lock().faults);
    (result, handle.snapshot(), faults)
}

/// Hashes of every file on the image, read with our own reader after a fresh open.
fn card_hashes(image: &[u8], what: &str) -> BTreeMap<String, String> {
    let mut v = FatVolume::open(Cursor::new(image.to_vec()), "check.img")
        .unwrap_or_else(|e| panic!("{what}: the image does not open any more: {e}"));
    volume_files(&mut v)
        .into_iter()
        .map(|(p, b)| (p, sha256(&b)))
        .collect()
}

/// Originals neither on the phone (with their bytes) nor on the card (by hash).
fn lost(
    phone: &Path,
    originals: &BTreeMap<String, String>,
    image: &[u8],
    what: &str,
) -> Vec<String> {
    let on_card: std::collections::BTreeSet<String> =
        card_hashes(image, what).into_values().collect();
    originals
        .iter()
        .filter(|(rel, sha)| {
            let on_phone = fs::read(phone.join(rel)).is_ok_and(|b| sha256(&b) == **sha);
            !on_phone && !on_card.contains(*sha)
        })
        .map(|(rel, _)| rel.clone())
        .collect()
}

fn assert_fsck(image: &[u8], what: &str) {
    if !oracle(&["fsck.fat"]) {
        return;
    }
    let tmp = TempDir::new().unwrap();
    let p = write_image(tmp.path(), "fsck.img", image);
    assert_fsck_clean(&p, what);
}

/// `fsck.fat -n` on image bytes: `None` when clean (or fsck.fat is missing), else its
/// output.
fn fsck_problem(image: &[u8]) -> Option<String> {
    if !have("fsck.fat") {
        return None;
    }
    let tmp = TempDir::new().unwrap();
    let p = write_image(tmp.path(), "fsck.img", image);
    let out = run(std::process::Command::new("fsck.fat").arg("-n").arg(&p));
    (!out.status.success()).then(|| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| {
                !l.starts_with("fsck.fat ")
                    && !l.contains("Leaving filesystem")
                    && !l.trim().is_empty()
            })
            .collect::<Vec<_>>()
            .join(" / ")
    })
}

/// Re-open the image cleanly and run again without faults; what is wrong afterwards (the
/// job did not complete, a photo is on the card twice, temp files remain, fsck complains).
fn rerun_problems(
    phone: &Path,
    originals: &BTreeMap<String, String>,
    image: Vec<u8>,
    what: &str,
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut card = match FatVolume::open(Cursor::new(image), "rerun.img") {
        Ok(c) => c,
        Err(e) => return vec![format!("{what}: clean re-open fails: {e}")],
    };
    // As `open_card` does before writing: repair what an interrupted run left, and
    // refuse a card whose file system is inconsistent.
    if let Err(e) = card.prepare_for_writing(&sdexport::transfer::REPAIR_POLICY) {
        return vec![format!("{what}: the re-open refuses to write: {e}")];
    }
    let mut phone_v = DirVolume::open(phone).unwrap();
    let report = match run_photos(&mut phone_v, &mut card, &options(), &mut NoProgress) {
        Ok(r) => r,
        Err(e) => return vec![format!("{what}: the re-run without faults fails: {e}")],
    };
    card.sync().unwrap();
    let image = card.into_medium().unwrap().into_inner();
    if !report.complete() {
        problems.push(format!(
            "{what}: the re-run did not complete: {:?}",
            report
                .files
                .iter()
                .filter(|f| !f.removed)
                .map(|f| (&f.source, f.status, &f.reason))
                .collect::<Vec<_>>()
        ));
    }
    for rel in originals.keys() {
        if phone.join(rel).exists() {
            problems.push(format!("{what}: {rel} still on the phone after the re-run"));
        }
    }
    let hashes = card_hashes(&image, what);
    for (rel, sha) in originals {
        let copies: Vec<&String> = hashes
            .iter()
            .filter(|(p, h)| p.starts_with("DCIM/") && *h == sha)
            .map(|(p, _)| p)
            .collect();
        if copies.len() != 1 {
            problems.push(format!(
                "{what}: {rel} is on the card {} times after the re-run: {copies:?}",
                copies.len()
            ));
        }
    }
    let temps: Vec<&String> = hashes
        .keys()
        .filter(|p| p.starts_with(".sdexport/tmp/"))
        .collect();
    if !temps.is_empty() {
        problems.push(format!(
            "{what}: temp files left after the re-run: {temps:?}"
        ));
    }
    if let Some(f) = fsck_problem(&image) {
        problems.push(format!("{what}: fsck.fat -n after the re-run: {f}"));
    }
    problems
}

/// Re-open the image cleanly and run again without faults: the job completes.
fn rerun_completes(phone: &Path, originals: &BTreeMap<String, String>, image: Vec<u8>, what: &str) {
    let _ = oracle(&["fsck.fat"]);
    let problems = rerun_problems(phone, originals, image, what);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn status_of<'a>(r: &'a PhotosReport, src: &str) -> &'a sdexport::transfer::FileReport {
    r.files
        .iter()
        .find(|f| f.source == src)
        .unwrap_or_else(|| panic!("{src} not in the report"))
}

// ---------------------------------------------------------------- one fault each

#[test]
fn write_error_keeps_the_original_and_rerun_completes() {
    let tmp = TempDir::new().unwrap();
    let (phone, originals) = make_phone(tmp.path());
    let (result, image, faults) = faulted_run(&phone, fresh_card(), |f| {
        f.fail_write_containing = Some(needle());
    });
    assert_eq!(faults.faults_injected, 1, "the needle was written once");
    let report = result.expect("a failed write of one file does not stop the run");
    let t = status_of(&report, TARGET);
    assert_eq!(t.status, Status::Failed, "{t:?}");
    assert!(!t.removed);
    assert!(
        phone.join(TARGET).exists(),
        "the original of the failed copy was removed"
    );
    for f in report.files.iter().filter(|f| f.source != TARGET) {
        assert_eq!(f.status, Status::Copied, "{f:?}");
        assert!(f.removed, "{f:?}");
    }
    assert!(lost(&phone, &originals, &image, "write error").is_empty());
    assert!(
        !card_hashes(&image, "write error").contains_key(TARGET),
        "a failed copy is not left under its name"
    );
    assert_fsck(&image, "after a write error");
    rerun_completes(&phone, &originals, image, "write error");
}

#[test]
fn read_back_bit_flip_keeps_the_original_and_rerun_completes() {
    let tmp = TempDir::new().unwrap();
    let (phone, originals) = make_phone(tmp.path());
    let (result, image, faults) = faulted_run(&phone, fresh_card(), |f| {
        f.flip_reads_containing = Some(needle());
    });
    assert!(
        faults.flips >= 1,
        "the read-back of the target was corrupted"
    );
    let report = result.expect("a bad read-back does not stop the run");
    let t = status_of(&report, TARGET);
    assert_eq!(t.status, Status::Failed, "{t:?}");
    assert!(
        t.reason.as_deref().unwrap_or("").contains("differs"),
        "{t:?}"
    );
    assert!(!t.removed && phone.join(TARGET).exists());
    assert_eq!(report.read_back_mismatches, 1);
    assert!(
        !report.warnings.is_empty(),
        "the user is warned about the card"
    );
    for f in report.files.iter().filter(|f| f.source != TARGET) {
        assert!(f.removed, "{f:?}");
    }
    // The bad copy does not stay on the card where someone could trust it.
    let hashes = card_hashes(&image, "bit flip");
    assert!(
        !hashes.contains_key(TARGET),
        "the copy that read back wrong is still on the card"
    );
    assert!(lost(&phone, &originals, &image, "bit flip").is_empty());
    assert_fsck(&image, "after a read-back mismatch");
    rerun_completes(&phone, &originals, image, "bit flip");
}

#[test]
fn bit_flip_in_one_file_of_a_pair_keeps_both() {
    let tmp = TempDir::new().unwrap();
    let (phone, originals) = make_phone(tmp.path());
    let mov = &phone_files()[PAIR_MOV];
    let needle = mov[98_304..98_304 + 32].to_vec();
    let (result, image, _) = faulted_run(&phone, fresh_card(), |f| {
        f.flip_reads_containing = Some(needle);
    });
    let report = result.unwrap();
    assert_eq!(status_of(&report, PAIR_MOV).status, Status::Failed);
    let jpg = status_of(&report, "DCIM/Camera/IMG_4242.JPG");
    assert!(
        !jpg.removed,
        "the pair's JPEG was removed without its MOV: {jpg:?}"
    );
    assert!(phone.join("DCIM/Camera/IMG_4242.JPG").exists());
    assert!(phone.join(PAIR_MOV).exists());
    assert!(lost(&phone, &originals, &image, "pair bit flip").is_empty());
    rerun_completes(&phone, &originals, image, "pair bit flip");
}

#[test]
fn flush_error_keeps_every_original_and_rerun_completes() {
    let tmp = TempDir::new().unwrap();
    let (phone, originals) = make_phone(tmp.path());
    let (result, image, faults) = faulted_run(&phone, fresh_card(), |f| {
        f.fail_sync = true;
    });
    assert!(faults.faults_injected >= 1);
    let report = result.expect("a failed flush is reported per file");
    for f in &report.files {
        assert_eq!(f.status, Status::Failed, "{f:?}");
        assert!(!f.removed, "{f:?}");
        assert!(f.reason.as_deref().unwrap_or("").contains("flush"), "{f:?}");
    }
    for rel in originals.keys() {
        assert!(
            phone.join(rel).exists(),
            "{rel} removed although the card never flushed"
        );
    }
    assert!(lost(&phone, &originals, &image, "flush error").is_empty());
    rerun_completes(&phone, &originals, image, "flush error");
}

/// Hashes of every file that can still be read on a damaged volume (errors skipped: what
/// cannot be read does not count as a copy).
fn readable_hashes(v: &mut dyn Volume, dir: &str) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    let Ok(entries) = v.list(dir) else {
        return out;
    };
    for e in entries {
        if e.is_dir() {
            out.extend(readable_hashes(v, &e.path));
        } else if let Ok(mut r) = v.open_read(&e.path) {
            let mut b = Vec::new();
            if std::io::Read::read_to_end(&mut r, &mut b).is_ok() {
                out.insert(sha256(&b));
            }
        }
    }
    out
}

/// Run a move onto a counterfeit card that wraps byte addresses past `start + len` onto
/// `start..`; check that no original is lost, judging the card through the same wrapping
/// (what any reader of that card sees). Returns the report, if the run got that far.
fn move_onto_fake_card(start: u64, len: u64) -> Option<PhotosReport> {
    let tmp = TempDir::new().unwrap();
    let (phone, originals) = make_phone(tmp.path());
    let wrap = Some((start, len));
    let medium = FaultMedium::new(fresh_card());
    medium.faults(|f| f.wrap = wrap);
    let handle = medium.clone();
    let mut card = open_fat(medium, "fake.img");
    let mut phone_v = DirVolume::open(&phone).unwrap();
    let result = run_photos(&mut phone_v, &mut card, &options(), &mut NoProgress);
    let _ = card.sync();
    drop(card);
    let view = FaultMedium::new(handle.snapshot());
    view.faults(|f| f.wrap = wrap);
    let mut v = open_fat(view, "fake-view.img");
    let on_card = readable_hashes(&mut v, "");
    let lost: Vec<&String> = originals
        .iter()
        .filter(|(rel, sha)| {
            let on_phone = fs::read(phone.join(rel)).is_ok_and(|b| sha256(&b) == **sha);
            !on_phone && !on_card.contains(*sha)
        })
        .map(|(rel, _)| rel)
        .collect();
    assert!(
        lost.is_empty(),
        "originals lost on a fake-capacity card: {lost:?}"
    );
    match result {
        Ok(report) => {
            assert!(
                !report.complete(),
                "a run on a card that lost data cannot be complete"
            );
            println!(
                "fake card wrapping at {start}+{len}: {} copies read back wrong, {} originals kept, {} moved",
                report.read_back_mismatches,
                report.files.iter().filter(|f| !f.removed).count(),
                report.removed()
            );
            Some(report)
        }
        // Failing the whole run (e.g. the manifest read back wrong) is as safe.
        Err(e) => {
            println!("fake card wrapping at {start}+{len}: the run stopped: {e}");
            None
        }
    }
}

/// A counterfeit card that really holds 256 KiB of data after its directories: writes
/// past that land on earlier copies. Every hash computed while writing matches; only the
/// read-back after the whole run shows the damage, and the user is told to test the card.
#[test]
fn fake_capacity_card_overwriting_earlier_copies_loses_no_original() {
    // Data from 64 KiB; the first 32 KiB of it (the run's directories) stay intact.
    let report = move_onto_fake_card((64 + 32) << 10, 256 << 10).expect("the run ends");
    assert!(
        report.read_back_mismatches > 0,
        "the wrap went unnoticed: {:#?}",
        report.files
    );
    assert!(
        report.warnings.iter().any(|w| w.contains("counterfeit")),
        "{:?}",
        report.warnings
    );
}

/// The same card wrapping over its directories too: copies vanish rather than differ.
#[test]
fn fake_capacity_card_overwriting_directories_loses_no_original() {
    if let Some(report) = move_onto_fake_card(64 << 10, 256 << 10) {
        for f in report.files.iter().filter(|f| !f.removed) {
            assert_eq!(f.status, Status::Failed, "{f:?}");
        }
    }
}

/// When copies written minutes ago cannot even be found on read-back, the card is as
/// suspect as when they read back different: the user should get the same warning (test
/// the card with f3/H2testw), not only six "cannot read the copy back" lines.
#[test]
fn fake_capacity_card_overwriting_directories_warns_about_the_card() {
    let report = move_onto_fake_card(64 << 10, 256 << 10).expect("the run ends");
    assert!(
        report.warnings.iter().any(|w| w.contains("counterfeit")),
        "{:?}",
        report.warnings
    );
}

// ---------------------------------------------------------------- every write, failed

/// What a sweep over every write index found.
#[derive(Debug, Default)]
struct Sweep {
    total_writes: u64,
    cases: usize,
    injected: u64,
    runs_stopped: usize,
    /// Originals neither on the phone nor on the card: data lost.
    lost: Vec<String>,
    /// After a clean re-open and a re-run without faults: the job did not complete, a photo
    /// is on the card twice, temp files remain.
    rerun_failures: Vec<String>,
    /// `fsck.fat -n` complaints after the re-run.
    rerun_unclean: Vec<String>,
}

/// Fail each write of a reference run in turn — once (a transient error), and from then on
/// (a card pulled out) — and record what each case leaves.
fn write_fault_sweep() -> Sweep {
    let tmp = TempDir::new().unwrap();
    let card0 = fresh_card();
    let total_writes = {
        let (phone, _) = make_phone(&tmp.path().join("reference"));
        let (result, _, faults) = faulted_run(&phone, card0.clone(), |_| {});
        assert!(result.unwrap().complete(), "the reference run completes");
        faults.writes
    };
    let mut sweep = Sweep {
        total_writes,
        ..Sweep::default()
    };
    let total = sweep.total_writes;
    assert!(total > 10, "reference run made only {total} writes");
    // Every write index when there are few, else 200 spread over the run.
    let ks: Vec<u64> = if total <= 400 {
        (1..=total).collect()
    } else {
        (0..200).map(|i| 1 + i * (total - 1) / 199).collect()
    };
    for &k in &ks {
        for persistent in [false, true] {
            let what = format!(
                "write #{k} of {total} failing{}",
                if persistent { " from then on" } else { " once" }
            );
            let dir = tmp.path().join(format!("k{k}-{persistent}"));
            let (phone, originals) = make_phone(&dir);
            let (result, image, faults) = faulted_run(&phone, card0.clone(), |f| {
                if persistent {
                    f.fail_writes_from = Some(k);
                } else {
                    f.fail_write_at = Some(k);
                }
            });
            sweep.cases += 1;
            sweep.injected += faults.faults_injected;
            if result.is_err() {
                sweep.runs_stopped += 1;
            }
            let l = lost(&phone, &originals, &image, &what);
            if !l.is_empty() {
                sweep.lost.push(format!("{what}: {l:?}"));
            }
            // Every case is re-run without faults: cheap at this size.
            for p in rerun_problems(&phone, &originals, image, &what) {
                if p.contains("fsck.fat") {
                    sweep.rerun_unclean.push(p);
                } else {
                    sweep.rerun_failures.push(p);
                }
            }
            let _ = fs::remove_dir_all(&dir);
        }
    }
    println!(
        "faults injected: {}, originals lost: {} ({} cases over {total} writes; {} runs stopped with an error; re-runs short of complete: {}; fsck.fat -n unclean after the re-run: {})",
        sweep.injected,
        sweep.lost.len(),
        sweep.cases,
        sweep.runs_stopped,
        sweep.rerun_failures.len(),
        sweep.rerun_unclean.len()
    );
    sweep
}

/// The sweep runs once per test binary; the tests below judge different parts of it.
fn sweep() -> &'static Sweep {
    static SWEEP: std::sync::OnceLock<Sweep> = std::sync::OnceLock::new();
    SWEEP.get_or_init(write_fault_sweep)
}

/// No single failed write — transient or permanent — ever costs an original.
#[test]
fn failing_any_write_loses_no_original() {
    let _ = oracle(&["fsck.fat"]);
    let sweep = sweep();
    assert!(
        sweep.injected as usize >= sweep.cases,
        "every case injected a fault"
    );
    assert!(
        sweep.lost.is_empty(),
        "originals lost:\n{}",
        sweep.lost.join("\n")
    );
}

/// After any failed write, a clean re-open and a re-run without faults completes the job:
/// every original moved, each photo exactly once on the card, no temp files.
#[test]
fn failing_any_write_then_rerun_completes() {
    let sweep = sweep();
    assert!(
        sweep.rerun_failures.is_empty(),
        "{} problems after re-runs:\n{}",
        sweep.rerun_failures.len(),
        sweep.rerun_failures.join("\n")
    );
}

/// ... on an image `fsck.fat -n` accepts.
#[test]
fn failing_any_write_then_rerun_leaves_a_clean_image() {
    if !oracle(&["fsck.fat"]) {
        return;
    }
    let sweep = sweep();
    assert!(
        sweep.rerun_unclean.is_empty(),
        "{} unclean images after re-runs:\n{}",
        sweep.rerun_unclean.len(),
        sweep.rerun_unclean.join("\n")
    );
}

// ---------------------------------------------------------------- engine reproductions

/// FAT16, 16 MiB, 2 KiB clusters: FAT 1 at 16 KiB, FAT 2 at 32 KiB, root at 48 KiB, data
/// from 64 KiB (see `fresh_card`).
const FAT_AREA: (u64, u64) = (16 << 10, 48 << 10);

fn put(v: &mut dyn Volume, path: &str, bytes: &[u8]) {
    let mut s = v.create_new(path).unwrap();
    std::io::Write::write_all(&mut s, bytes).unwrap();
    s.finish(None).unwrap();
}

/// A FAT write that fails while a directory is created must not leave its cluster
/// allocated in memory, to be written out as a lost cluster by the next flush.
#[test]
fn engine_failed_fat_write_in_create_dir_leaks_no_cluster() {
    if !oracle(&["fsck.fat"]) {
        return;
    }
    let m = FaultMedium::new(fresh_card());
    let handle = m.clone();
    let mut v = open_fat(m, "repro.img");
    put(&mut v, "warm-up.txt", b"the dirty bit is set by now");
    handle.faults(|f| f.fail_write_in_range = Some(FAT_AREA));
    assert!(
        v.create_dir_all("DCIM").is_err(),
        "the injected FAT write error surfaces"
    );
    v.sync().unwrap();
    let image = v.into_medium().unwrap().snapshot();
    assert_eq!(fsck_problem(&image), None);
}

/// A directory-entry write that fails must not leave the slot "used" in the engine's
/// cache while the disk still has the end-of-directory mark there: entries added after it
/// are invisible to every reader (ours after `drop_caches`, mtools, Linux).
#[test]
fn engine_failed_entry_write_hides_no_later_entry() {
    let m = FaultMedium::new(fresh_card());
    let handle = m.clone();
    let mut v = open_fat(m, "repro.img");
    v.create_dir_all("DCIM").unwrap();
    // The short-name entry of `DCIM/AAAAAAAA` is the one write holding this text.
    handle.faults(|f| f.fail_write_containing = Some(b"AAAAAAAA   ".to_vec()));
    assert!(v.create_dir_all("DCIM/AAAAAAAA").is_err());
    v.create_dir_all("DCIM/Camera").unwrap();
    put(&mut v, "DCIM/Camera/IMG_0001.jpg", b"a photo");
    v.sync().unwrap();
    v.drop_caches().unwrap();
    let names: Vec<String> = v
        .list("DCIM")
        .unwrap()
        .into_iter()
        .map(|e| e.name().to_string())
        .collect();
    assert_eq!(names, ["Camera"], "what DCIM holds after drop_caches");
    let mut r = v.open_read("DCIM/Camera/IMG_0001.jpg").unwrap();
    let mut buf = Vec::new();
    std::io::Read::read_to_end(&mut r, &mut buf).unwrap();
    assert_eq!(buf, b"a photo");
}

/// A volume left dirty by an unplugged run is repaired on the next writable open (as
/// `open_card` does) and is clean for `fsck.fat -n` after a re-run.
#[test]
fn rerun_after_unplug_repairs_the_dirty_bit() {
    if !oracle(&["fsck.fat"]) {
        return;
    }
    let m = FaultMedium::new(fresh_card());
    let handle = m.clone();
    let mut v = open_fat(m, "repro.img");
    put(&mut v, "a.txt", b"a");
    // Unplugged: nothing more reaches the card, the dirty bit stays set on it.
    handle.faults(|f| f.fail_writes_from = Some(f.writes + 1));
    let _ = v.sync();
    drop(v);
    let image = handle.snapshot();
    assert!(
        fsck_problem(&image).is_some(),
        "the unplugged card is dirty"
    );
    let mut v = open_fat(Cursor::new(image), "again.img");
    assert!(v.info().was_dirty);
    let rep = v.repair_after_crash().unwrap();
    assert!(rep.repaired && rep.remaining.is_empty(), "{rep:?}");
    put(&mut v, "b.txt", b"b");
    v.sync().unwrap();
    let image = v.into_medium().unwrap().into_inner();
    assert_eq!(fsck_problem(&image), None);
}
