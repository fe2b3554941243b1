//! The fault campaign: the photo move (`--move`) against a card that fails, for every I/O
//! operation of a reference run (or an even, deterministic sample of at least 300 when
//! there are more), in three separate ways:
//!
//! - operation k fails with an I/O error;
//! - read k returns its data with one bit flipped;
//! - write k reports success but is dropped.
//!
//! Two cards: a FAT16 image in memory under our FAT engine, wrapped at the byte stream
//! ([`FaultMedium`]: every read/write/flush/sync_medium is one operation), and a directory
//! card ([`FaultVolume`] over `DirVolume`: every Volume call and every read/write on the
//! returned readers/sinks is one operation).
//!
//! After each faulted run, and again after a clean re-run of the same command:
//! - no original that existed at the start is missing from the phone unless a copy with its
//!   SHA-256 is on the card — read with mtools (`mcopy -s`), never with our own reader, for
//!   the image; hashed directly for the directory card;
//! - when the faulted run said everything was done (`complete()`), the fault did no harm;
//!   otherwise it reported failure (Err, or Failed entries naming the files);
//! - after the re-run: the run completes, the image passes `fsck.fat -n`, each photo is on
//!   the card exactly once, and the phone is empty.
//!
//! Counts are printed (`faults injected: N, originals lost: 0, fsck failures: 0`); run with
//! `--nocapture` to see them.

mod support_hardening;

use std::collections::BTreeMap;
use std::fs;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use sdexport::storage::dir::DirVolume;
use sdexport::storage::fat::FatVolume;
use sdexport::transfer::{run_photos, NoProgress, PhotoOptions, PhotosReport, Status};
use sdexport_fat::{FatType, FormatOptions};
use support_hardening::*;

/// 32 MiB FAT16: big enough for a real layout (two FATs, 2 KiB clusters), small enough
/// that hundreds of copies of it cost little.
const IMAGE_BYTES: u64 = 32 << 20;
/// Several batches per run (the run writes about 500 KiB), so batching and releasing
/// originals mid-run are exercised too.
const BATCH_BYTES: u64 = 96 << 10;
/// At most this many fault positions per fault kind and card.
const SAMPLE: u64 = 300;

fn options(run_id: &str) -> PhotoOptions {
    PhotoOptions {
        move_files: true,
        batch_bytes: BATCH_BYTES,
        // A small filler: its writes are faulted too, without tripling each run's I/O.
        cache_bytes: 256 << 10,
        run_id: run_id.to_string(),
        ..Default::default()
    }
}

fn fresh_image() -> Vec<u8> {
    let mut c = Cursor::new(vec![0u8; IMAGE_BYTES as usize]);
    sdexport_fat::format(
        &mut c,
        &FormatOptions {
            volume_bytes: IMAGE_BYTES,
            fat_type: Some(FatType::Fat16),
            volume_id: Some(0x1234_5678),
            label: Some("FAULTS".into()),
            ..Default::default()
        },
    )
    .expect("format");
    // Probed, as `--batch` requires, so that the runs release originals batch by batch.
    let mut card = FatVolume::open(c, "card").expect("open");
    let probe = sdexport::probe::probe(&mut card, None, &mut |_, _| {}).expect("probe");
    assert!(probe.ok(), "{probe:?}");
    card.into_medium().expect("flush").into_inner()
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Card {
    Fat,
    Dir,
}

/// What one faulted run did, judged by the oracles.
#[derive(Default, Debug)]
struct Outcome {
    injected: bool,
    reported_failure: bool,
    /// Run said complete although a fault fired; then we require that it did no harm.
    silent_harmless: bool,
    /// Broken invariants of the faulted run itself.
    problems: Vec<String>,
    /// Broken invariants after the clean re-run.
    rerun_problems: Vec<String>,
    lost: usize,
    rerun_lost: usize,
    fsck_failed: bool,
    rerun_incomplete: bool,
}

struct Campaign {
    card: Card,
    work: PathBuf,
    template: PathBuf,
    originals: BTreeMap<String, String>,
    image: Vec<u8>,
}

/// Run the move once; `Err` is the run's error message.
fn run_on(
    card: Card,
    image: &MemDisk,
    card_dir: &Path,
    phone_dir: &Path,
    state: &Shared,
    run_id: &str,
) -> Result<PhotosReport, String> {
    let mut phone = DirVolume::open(phone_dir).map_err(|e| e.to_string())?;
    match card {
        Card::Fat => {
            let medium = FaultMedium::new(image.clone(), state.clone());
            let mut vol = FatVolume::open(medium, "card.img").map_err(|e| e.to_string())?;
            // What the binary does before writing to a card (storage::open): repair what an
            // interrupted run left, and refuse a card whose file system is inconsistent.
            vol.prepare_for_writing(&sdexport::transfer::REPAIR_POLICY)
                .map_err(|e| e.to_string())?;
            let r = run_photos(&mut phone, &mut vol, &options(run_id), &mut NoProgress);
            // Dropped without a flush: whatever was not written is lost, like a pulled card.
            drop(vol);
            r.map_err(|e| e.to_string())
        }
        Card::Dir => {
            let inner = DirVolume::open(card_dir).map_err(|e| e.to_string())?;
            let mut vol = FaultVolume::new(inner, state.clone());
            run_photos(&mut phone, &mut vol, &options(run_id), &mut NoProgress)
                .map_err(|e| e.to_string())
        }
    }
}

impl Campaign {
    fn new(card: Card) -> (tempfile::TempDir, Campaign) {
        let tmp = scratch(match card {
            Card::Fat => "fat",
            Card::Dir => "dir",
        });
        let template = tmp.path().join("phone-template");
        let originals = make_phone(&template, 0xC0FFEE, 12, 20_000, 60_000, true);
        let c = Campaign {
            card,
            work: tmp.path().to_path_buf(),
            template,
            originals,
            image: fresh_image(),
        };
        (tmp, c)
    }

    /// What the card holds, read independently of our code.
    fn card_hashes(
        &self,
        image: &MemDisk,
        card_dir: &Path,
        slot: &Path,
    ) -> BTreeMap<String, String> {
        match self.card {
            Card::Fat => {
                let img = slot.join("card.img");
                write_image(&img, &image.bytes.lock().unwrap());
                mtools_hashes(&img, slot)
            }
            Card::Dir => hash_tree(card_dir),
        }
    }

    /// One faulted run plus a clean re-run, in the work slot `slot` (one per thread).
    fn case(&self, kind: FaultKind, slot: &Path) -> Outcome {
        let phone_dir = slot.join("phone");
        let card_dir = slot.join("card");
        let _ = fs::remove_dir_all(&phone_dir);
        let _ = fs::remove_dir_all(&card_dir);
        copy_tree(&self.template, &phone_dir);
        fs::create_dir_all(&card_dir).unwrap();
        let image = MemDisk::new(self.image.clone());
        let mut out = Outcome::default();

        let state = fault_state(kind);
        let result = run_on(
            self.card,
            &image,
            &card_dir,
            &phone_dir,
            &state,
            "20250101T000000Z-f001",
        );
        let injected = state.lock().unwrap().injected.clone();
        out.injected = injected.is_some();
        let what = format!(
            "{:?} {kind:?} ({})",
            self.card,
            injected.as_deref().unwrap_or("not fired")
        );
        let complete = match &result {
            Ok(r) => {
                for f in r.files.iter().filter(|f| f.status == Status::Failed) {
                    if f.source.is_empty() || f.reason.as_deref().unwrap_or("").is_empty() {
                        out.problems.push(format!(
                            "{what}: a Failed entry without a name or a reason: {f:?}"
                        ));
                    }
                }
                r.complete()
            }
            Err(msg) => {
                if msg.trim().is_empty() {
                    out.problems
                        .push(format!("{what}: the run failed with an empty message"));
                }
                false
            }
        };
        out.reported_failure = !complete;
        let debug = std::env::var("SDEXPORT_CAMPAIGN_ONLY").is_ok();
        if debug {
            eprintln!("== faulted run: {what}");
            dump(&result);
        }

        // Invariant 1, right after the faulted run.
        let card = self.card_hashes(&image, &card_dir, slot);
        let lost = lost_originals(&self.originals, &phone_dir, &card);
        if !lost.is_empty() {
            out.lost += lost.len();
            out.problems.push(format!(
                "{what}: ORIGINALS LOST after the faulted run: {lost:?} (result: {result:?})"
            ));
        }
        if out.injected && complete {
            // The run says all is done although a fault fired: it must indeed be done.
            let left = hash_tree(&phone_dir);
            let twice = not_exactly_once(&self.originals, &card);
            if left.is_empty() && twice.is_empty() {
                out.silent_harmless = true;
            } else {
                out.problems.push(format!(
                    "{what}: the run reported success, but {} originals are still on the phone and photos not exactly once on the card: {twice:?}",
                    left.len()
                ));
            }
        }

        // The clean re-run.
        let clean = fault_state(FaultKind::None);
        let rerun = run_on(
            self.card,
            &image,
            &card_dir,
            &phone_dir,
            &clean,
            "20250101T000100Z-f002",
        );
        if debug {
            eprintln!("== re-run");
            dump(&rerun);
        }
        match &rerun {
            Ok(r) if r.complete() => {}
            other => {
                out.rerun_incomplete = true;
                let detail = match other {
                    Ok(r) => format!(
                        "{:?}",
                        r.files
                            .iter()
                            .filter(|f| f.status == Status::Failed || !f.removed)
                            .map(|f| format!("{}: {:?}", f.source, f.reason))
                            .collect::<Vec<_>>()
                    ),
                    Err(e) => e.clone(),
                };
                out.rerun_problems.push(format!(
                    "{what}: the clean re-run did not complete: {detail}"
                ));
            }
        }
        let card = self.card_hashes(&image, &card_dir, slot);
        let lost = lost_originals(&self.originals, &phone_dir, &card);
        if !lost.is_empty() {
            out.rerun_lost += lost.len();
            out.rerun_problems
                .push(format!("{what}: ORIGINALS LOST after the re-run: {lost:?}"));
        }
        let twice = not_exactly_once(&self.originals, &card);
        if !twice.is_empty() {
            out.rerun_problems.push(format!(
                "{what}: after the re-run, not exactly once on the card: {twice:?}"
            ));
        }
        let left = hash_tree(&phone_dir);
        if !left.is_empty() && !out.rerun_incomplete {
            out.rerun_problems.push(format!(
                "{what}: the re-run completed but left {} originals",
                left.len()
            ));
        }
        if self.card == Card::Fat {
            if let Err(report) = fsck_clean(&slot.join("card.img")) {
                out.fsck_failed = true;
                let first: Vec<&str> = report
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .take(6)
                    .collect();
                out.rerun_problems.push(format!(
                    "{what}: fsck.fat -n after the re-run: {}",
                    first.join(" | ")
                ));
            }
        }
        out
    }
}

fn dump(r: &Result<PhotosReport, String>) {
    match r {
        Err(e) => eprintln!("  Err: {e}"),
        Ok(r) => {
            for f in &r.files {
                eprintln!(
                    "  {} -> {:?} {:?} removed={} {:?}",
                    f.source, f.destination, f.status, f.removed, f.reason
                );
            }
            eprintln!("  warnings: {:?}", r.warnings);
        }
    }
}

fn campaign(card: Card) {
    let tools: &[&str] = match card {
        Card::Fat => &["mcopy", "fsck.fat"],
        Card::Dir => &[],
    };
    if !oracle(tools) {
        return;
    }
    let started = Instant::now();
    let (_tmp, c) = Campaign::new(card);

    // The reference run: count the operations.
    let slot0 = c.work.join("slot-ref");
    fs::create_dir_all(&slot0).unwrap();
    let counting = fault_state(FaultKind::None);
    {
        let phone_dir = slot0.join("phone");
        let card_dir = slot0.join("card");
        copy_tree(&c.template, &phone_dir);
        fs::create_dir_all(&card_dir).unwrap();
        let image = MemDisk::new(c.image.clone());
        let r = run_on(
            card,
            &image,
            &card_dir,
            &phone_dir,
            &counting,
            "20250101T000000Z-f001",
        )
        .expect("the reference run fails");
        assert!(r.complete(), "the reference run is incomplete: {r:?}");
        assert_eq!(r.removed(), c.originals.len());
        let on_card = c.card_hashes(&image, &card_dir, &slot0);
        assert!(not_exactly_once(&c.originals, &on_card).is_empty());
    }
    let (ops, reads, writes) = {
        let s = counting.lock().unwrap();
        (s.ops, s.reads, s.writes)
    };
    let mut kinds: Vec<FaultKind> = Vec::new();
    if let Ok(only) = std::env::var("SDEXPORT_CAMPAIGN_ONLY") {
        // Debugging one case: `DropWrite:137`, `FailOp:12`, `CorruptRead:3`.
        let (k, n) = only.split_once(':').expect("KIND:N");
        let n: u64 = n.parse().unwrap();
        let kind = match k {
            "FailOp" => FaultKind::FailOp(n),
            "CorruptRead" => FaultKind::CorruptRead(n),
            _ => FaultKind::DropWrite(n),
        };
        let slot = c.work.join("slot-only");
        fs::create_dir_all(&slot).unwrap();
        let o = c.case(kind, &slot);
        eprintln!("{o:#?}");
        if std::env::var("SDEXPORT_CAMPAIGN_KEEP").is_ok() {
            let _ = fs::copy(slot.join("card.img"), "/tmp/campaign-case.img");
        }
        return;
    }
    kinds.extend(
        sample_indices(ops, SAMPLE)
            .into_iter()
            .map(FaultKind::FailOp),
    );
    kinds.extend(
        sample_indices(reads, SAMPLE)
            .into_iter()
            .map(FaultKind::CorruptRead),
    );
    kinds.extend(
        sample_indices(writes, SAMPLE)
            .into_iter()
            .map(FaultKind::DropWrite),
    );
    eprintln!(
        "{card:?} card: reference run {ops} operations ({reads} reads, {writes} writes); {} faulted runs",
        kinds.len()
    );

    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(FaultKind, Outcome)>> = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 2);
    std::thread::scope(|s| {
        for t in 0..threads {
            let (c, next, results, kinds) = (&c, &next, &results, &kinds);
            s.spawn(move || {
                let slot = c.work.join(format!("slot-{t}"));
                fs::create_dir_all(&slot).unwrap();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&kind) = kinds.get(i) else { break };
                    let o = c.case(kind, &slot);
                    results.lock().unwrap().push((kind, o));
                }
            });
        }
    });
    let results = results.into_inner().unwrap();
    let count =
        |f: &dyn Fn(&FaultKind, &Outcome) -> bool| results.iter().filter(|(k, o)| f(k, o)).count();
    let injected = count(&|_, o| o.injected);
    let lost: usize = results.iter().map(|(_, o)| o.lost).sum();
    let rerun_lost: usize = results.iter().map(|(_, o)| o.rerun_lost).sum();
    let fsck = count(&|_, o| o.fsck_failed);
    let reported = count(&|_, o| o.injected && o.reported_failure);
    let harmless = count(&|_, o| o.silent_harmless);
    let rerun = count(&|_, o| o.rerun_incomplete);
    type Pick = fn(&FaultKind) -> bool;
    let kinds_named: [(&str, Pick); 3] = [
        ("I/O error", |k| matches!(k, FaultKind::FailOp(_))),
        ("corrupted read", |k| matches!(k, FaultKind::CorruptRead(_))),
        ("dropped write", |k| matches!(k, FaultKind::DropWrite(_))),
    ];
    for (name, pick) in kinds_named {
        let n = count(&|k, _| pick(k));
        let rep = count(&|k, o| pick(k) && o.injected && o.reported_failure);
        let harm = count(&|k, o| pick(k) && o.silent_harmless);
        let bad = count(&|k, o| pick(k) && !o.problems.is_empty());
        let bad_rerun = count(&|k, o| pick(k) && !o.rerun_problems.is_empty());
        eprintln!(
            "  {card:?} {name}: {n} runs, reported as failure {rep}, completed without harm {harm}, broken invariants after the faulted run {bad}, after the re-run {bad_rerun}"
        );
    }
    let problems: Vec<&String> = results
        .iter()
        .flat_map(|(_, o)| o.problems.iter())
        .collect();
    let rerun_problems: Vec<&String> = results
        .iter()
        .flat_map(|(_, o)| o.rerun_problems.iter())
        .collect();
    if let Ok(log) = std::env::var("SDEXPORT_CAMPAIGN_LOG") {
        let all: Vec<&str> = problems
            .iter()
            .chain(rerun_problems.iter())
            .map(|s| s.as_str())
            .collect();
        let _ = fs::write(format!("{log}.{card:?}"), all.join("\n"));
    }
    for p in problems.iter().chain(rerun_problems.iter()).take(30) {
        let short: String = p.chars().take(400).collect();
        eprintln!("  PROBLEM {short}");
    }
    eprintln!(
        "{card:?} card: faults injected: {injected}, originals lost: {lost}, originals lost after the re-run: {rerun_lost}, fsck failures: {fsck}, reported as failure: {reported}, completed without harm: {harmless}, re-runs incomplete: {rerun}, broken invariants: {} after the faulted runs, {} after the re-runs ({:.1} s)",
        problems.len(),
        rerun_problems.len(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(
        injected,
        results.len(),
        "every planned fault fires (the runs are deterministic)"
    );
    assert_eq!(lost, 0, "originals lost");
    assert_eq!(rerun_lost, 0, "originals lost in the re-run");
    assert!(
        problems.is_empty(),
        "{} problems (see above)",
        problems.len()
    );
    assert!(
        rerun_problems.is_empty(),
        "{} problems after the re-runs (see above)",
        rerun_problems.len()
    );
}

/// The FAT image: every invariant, of the faulted runs and of the clean re-runs (fsck
/// clean, each photo once, nothing lost).
#[test]
fn fat_image_fault_campaign() {
    campaign(Card::Fat);
}

/// The directory card: every invariant.
#[test]
fn directory_card_fault_campaign() {
    campaign(Card::Dir);
}
