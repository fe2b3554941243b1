//! Hostile input: no panic, no hang.
//!
//! - FAT images: small real images (made by our `format` and by `mkfs.fat`, with files and
//!   folders written into them) with bytes flipped or overwritten in the boot sector, the
//!   FSInfo sector, the FATs and the directory/data region; each mutated image is opened,
//!   walked, read, checked and written to through our engine and through `FatVolume`,
//!   each case under a time bound (a worker thread and a timeout).
//! - Partition tables: `storage::partition::detect` + `select` on arbitrary bytes and on
//!   mutated real MBRs, each under a time bound.
//! - Names: every kind of name a phone can produce lands on a FAT card with a valid name,
//!   and the original is recorded in `.sdexport/manifest.jsonl` (`original_name`).
//!
//! cargo-fuzz needs a nightly toolchain, which this machine cannot fetch: these are
//! proptest targets, bounded in cases and time (see docs/RELIABILITY.md).

mod support_hardening;

use std::collections::BTreeMap;
use std::fs;
use std::io::{Cursor, Read, Write};
use std::process::Command;
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};

/// Cases run one at a time (the stage marker is global).
static SERIAL: Mutex<()> = Mutex::new(());
use std::time::Duration;

use proptest::prelude::*;
use sdexport::storage::dir::DirVolume;
use sdexport::storage::fat::FatVolume;
use sdexport::storage::partition;
use sdexport::storage::Volume;
use sdexport::transfer::{run_photos, NoProgress, PhotoOptions};
use sdexport_fat::{FatType, FileSystem, FormatOptions};
use support_hardening::*;

/// Each case must finish within this time (a hang is a failure).
const CASE_TIMEOUT: Duration = Duration::from_secs(20);

static STAGE: Mutex<&'static str> = Mutex::new("");

/// Where the current case is (reported when it hangs).
fn stage(s: &'static str) {
    *STAGE.lock().unwrap() = s;
}

/// Run `f` on a worker thread; a panic or a timeout fails the test with `what`.
fn bounded<F: FnOnce() + Send + 'static>(what: String, f: F) -> Result<(), TestCaseError> {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    stage("start");
    let (tx, rx) = mpsc::channel();
    let h = std::thread::Builder::new()
        .name("hostile-case".into())
        .spawn(move || {
            f();
            let _ = tx.send(());
        })
        .unwrap();
    match rx.recv_timeout(CASE_TIMEOUT) {
        Ok(()) => {
            let _ = h.join();
            Ok(())
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            let _ = h.join();
            Err(TestCaseError::fail(format!("PANIC on {what}")))
        }
        Err(mpsc::RecvTimeoutError::Timeout) => Err(TestCaseError::fail(format!(
            "HANG (> {CASE_TIMEOUT:?}) in {} on {what}",
            STAGE.lock().unwrap()
        ))),
    }
}

// ---------------------------------------------------------------- seed images

struct Seed {
    name: String,
    bytes: Vec<u8>,
    /// Regions worth mutating: boot sector + FSInfo, FAT, root dir / first data clusters.
    regions: Vec<(usize, usize)>,
}

fn populate<S: std::io::Read + std::io::Write + std::io::Seek>(fs: &mut FileSystem<S>) {
    fs.create_dir("DCIM").unwrap();
    fs.create_dir("DCIM/Camera").unwrap();
    for i in 0..12 {
        let mut w = fs
            .create_file(&format!("DCIM/Camera/IMG_{i:04} long name.jpg"))
            .unwrap();
        w.write_all(&vec![i as u8; 700 + i * 1500]).unwrap();
        w.finish(None).unwrap();
    }
    let mut w = fs.create_file("SHA256SUMS").unwrap();
    w.write_all(b"0000  DCIM/Camera/x.jpg\n").unwrap();
    w.finish(None).unwrap();
    fs.flush().unwrap();
}

fn regions_of(bytes: &[u8]) -> Vec<(usize, usize)> {
    let bps = u16::from_le_bytes([bytes[11], bytes[12]]).max(512) as usize;
    let reserved = u16::from_le_bytes([bytes[14], bytes[15]]) as usize;
    let fats = bytes[16] as usize;
    let root_entries = u16::from_le_bytes([bytes[17], bytes[18]]) as usize;
    let fat16 = u16::from_le_bytes([bytes[22], bytes[23]]) as usize;
    let fat32 = u32::from_le_bytes([bytes[36], bytes[37], bytes[38], bytes[39]]) as usize;
    let fat_sectors = if fat16 != 0 { fat16 } else { fat32 };
    let fat_start = reserved * bps;
    let fat_len = (fat_sectors * bps).min(16 * 1024);
    let data_start = fat_start + fats * fat_sectors * bps;
    let dir_len = (root_entries * 32).max(64 * 1024);
    let end = bytes.len();
    vec![
        (0, (2 * bps).min(end)),
        (fat_start, (fat_start + fat_len).min(end)),
        (data_start, (data_start + dir_len).min(end)),
    ]
}

fn seeds() -> &'static [Seed] {
    static SEEDS: OnceLock<Vec<Seed>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let mut out = Vec::new();
        for (ft, size) in [
            (FatType::Fat12, 1u64 << 20),
            (FatType::Fat16, 8 << 20),
            (FatType::Fat32, 34 << 20),
        ] {
            let mut c = Cursor::new(vec![0u8; size as usize]);
            sdexport_fat::format(
                &mut c,
                &FormatOptions {
                    volume_bytes: size,
                    fat_type: Some(ft),
                    volume_id: Some(7),
                    ..Default::default()
                },
            )
            .unwrap();
            c.set_position(0);
            let mut fs = FileSystem::open(c).unwrap();
            populate(&mut fs);
            let bytes = fs.into_inner().unwrap().into_inner();
            out.push(Seed {
                name: format!("ours {ft:?}"),
                regions: regions_of(&bytes),
                bytes,
            });
        }
        if have("mkfs.fat") {
            let dir = scratch("seeds");
            for (flag, kib) in [("12", 1024u32), ("16", 8192), ("32", 34816)] {
                let img = dir.path().join(format!("fat{flag}.img"));
                let o = Command::new("mkfs.fat")
                    .args(["-F", flag, "-C"])
                    .arg(&img)
                    .arg(kib.to_string())
                    .output()
                    .unwrap();
                if !o.status.success() {
                    continue;
                }
                let c = Cursor::new(fs::read(&img).unwrap());
                let Ok(mut fs) = FileSystem::open(c) else {
                    continue;
                };
                populate(&mut fs);
                let bytes = fs.into_inner().unwrap().into_inner();
                out.push(Seed {
                    name: format!("mkfs.fat FAT{flag}"),
                    regions: regions_of(&bytes),
                    bytes,
                });
            }
        } else {
            println!("SKIPPED: mkfs.fat missing (mkfs.fat seed images)");
        }
        out
    })
}

/// Everything a user of a card does with it, on a possibly corrupt image. Errors are fine;
/// panics and hangs are not.
fn exercise(bytes: Vec<u8>) {
    stage("open");
    let Ok(mut fs) = FileSystem::open(Cursor::new(bytes.clone())) else {
        return;
    };
    stage("walk");
    let _ = fs.info();
    let _ = fs.free_bytes();
    let mut stack = vec![String::new()];
    let mut seen = 0usize;
    let mut budget: u64 = 64 << 20;
    while let Some(d) = stack.pop() {
        let Ok(list) = fs.list_dir(&d) else { continue };
        for e in list {
            seen += 1;
            if seen > 5000 {
                break;
            }
            let p = if d.is_empty() {
                e.name.clone()
            } else {
                format!("{d}/{}", e.name)
            };
            stage("stat");
            let _ = fs.stat(&p);
            stage("list/read");
            if e.is_dir {
                if stack.len() < 64 && p.matches('/').count() < 16 {
                    stack.push(p);
                }
            } else if let Ok(f) = fs.open_file(&p) {
                let mut buf = Vec::new();
                let _ = f.take(budget.min(8 << 20)).read_to_end(&mut buf);
                budget = budget.saturating_sub(buf.len() as u64);
            }
        }
    }
    stage("check");
    let _ = fs.check();
    stage("write");
    // Writing to a damaged card must fail cleanly too.
    if let Ok(mut w) = fs.create_file("DCIM/new.jpg") {
        let _ = w.write_all(&[1u8; 5000]);
        let _ = w.finish(None);
    }
    let _ = fs.rename("SHA256SUMS", "DCIM/SUMS");
    let _ = fs.remove("DCIM/Camera/IMG_0001 long name.jpg");
    stage("flush");
    let _ = fs.flush();
    stage("volume");
    // And through the Volume adapter.
    if let Ok(mut v) = FatVolume::open(Cursor::new(bytes), "hostile.img") {
        stage("volume walk");
        let _ = v.walk("");
        stage("volume space");
        let _ = v.space();
        stage("volume create_dir_all");
        let _ = v.create_dir_all(".sdexport/tmp");
        stage("volume sync");
        let _ = v.sync();
        stage("volume drop_caches");
        let _ = v.drop_caches();
    }
}

#[derive(Debug, Clone)]
struct Mutation {
    seed: usize,
    region: usize,
    /// (offset within region, xor mask or new value, replace?)
    edits: Vec<(usize, u8, bool)>,
}

fn mutation() -> impl Strategy<Value = Mutation> {
    (
        0usize..64,
        0usize..3,
        proptest::collection::vec((any::<usize>(), any::<u8>(), any::<bool>()), 1..24),
    )
        .prop_map(|(seed, region, edits)| Mutation {
            seed,
            region,
            edits,
        })
}

fn apply(m: &Mutation) -> (String, Vec<u8>) {
    let seeds = seeds();
    let s = &seeds[m.seed % seeds.len()];
    let mut b = s.bytes.clone();
    let (lo, hi) = s.regions[m.region % s.regions.len()];
    let len = hi.saturating_sub(lo).max(1);
    for &(off, v, replace) in &m.edits {
        let at = (lo + off % len).min(b.len() - 1);
        if replace {
            b[at] = v;
        } else {
            b[at] ^= v.max(1);
        }
    }
    (
        format!("{} region {} edits {:?}", s.name, m.region, m.edits),
        b,
    )
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        max_shrink_iters: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn mutated_fat_images_never_panic_or_hang(m in mutation()) {
        let (what, bytes) = apply(&m);
        bounded(what, move || exercise(bytes))?;
    }

    #[test]
    fn truncated_fat_images_never_panic_or_hang(seed in 0usize..64, cut in any::<usize>()) {
        let seeds = seeds();
        let s = &seeds[seed % seeds.len()];
        let keep = cut % s.bytes.len();
        let bytes = s.bytes[..keep].to_vec();
        bounded(format!("{} truncated to {keep} bytes", s.name), move || exercise(bytes))?;
    }

    #[test]
    fn arbitrary_partition_tables_never_panic_or_hang(
        bytes in proptest::collection::vec(any::<u8>(), 0..4096),
        disk_bytes in prop_oneof![any::<u64>(), 0u64..(1 << 34)],
        want in proptest::option::of(0u32..300),
    ) {
        let what = format!("{} bytes, disk_bytes {disk_bytes}, want {want:?}", bytes.len());
        bounded(what, move || {
            if let Ok(layout) = partition::detect(&mut Cursor::new(bytes), disk_bytes) {
                let _ = partition::select(&layout, want);
                let _ = partition::select(&layout, None);
            }
        })?;
    }

    #[test]
    fn mutated_mbr_and_gpt_never_panic_or_hang(
        edits in proptest::collection::vec((0usize..(34 * 512), any::<u8>()), 1..32),
        gpt_sig in any::<bool>(),
        disk_bytes in prop_oneof![Just(64u64 << 20), any::<u64>()],
        want in proptest::option::of(0u32..6),
    ) {
        let mut c = Cursor::new(vec![0u8; 64 << 20]);
        partition::write_mbr(&mut c, 64 << 20, 4 << 20, 0x0c).unwrap();
        let mut b = c.into_inner();
        b.truncate(1 << 20);
        // a FAT boot sector at the partition start is outside the truncated buffer on purpose;
        if gpt_sig {
            b[446 + 4] = 0xEE;
            b[512..520].copy_from_slice(b"EFI PART");
        }
        for (at, v) in edits {
            b[at] ^= v.max(1);
        }
        bounded(format!("mutated MBR/GPT, disk_bytes {disk_bytes}"), move || {
            if let Ok(layout) = partition::detect(&mut Cursor::new(b), disk_bytes) {
                let _ = partition::select(&layout, want);
            }
        })?;
    }
}

/// Found by `mutated_fat_images_never_panic_or_hang`: one byte flipped in the root directory
/// of a FAT32 image makes a folder point back at an ancestor, and `Volume::walk` walked the
/// loop forever. Fixed in `src/storage/mod.rs` (depth bound, a `Corrupt` error).
#[test]
fn directory_loop_in_a_fat_image_ends_the_walk() {
    let seeds = seeds();
    let Some(idx) = seeds.iter().position(|s| s.name == "ours Fat32") else {
        panic!("no FAT32 seed");
    };
    let m = Mutation {
        seed: idx,
        region: 2,
        edits: vec![(2089426234471875075usize, 139, false)],
    };
    let (what, bytes) = apply(&m);
    bounded(what, move || exercise(bytes)).unwrap();
}

// ---------------------------------------------------------------- names

/// Names a phone (Android's FUSE layer over ext4/f2fs, or an iPhone export) can produce.
fn phone_names() -> Vec<String> {
    let long = format!("{}.jpg", "L".repeat(251)); // 255 characters
    vec![
        "emoji 😀🎉.jpg".into(),
        "family 👨‍👩‍👧‍👦.jpg".into(),
        "time 12:30:45.jpg".into(),
        "what?.jpg".into(),
        "star*.jpg".into(),
        "quote\"d <x> |pipe| back\\slash.jpg".into(),
        "trailing dot.jpg.".into(),
        "trailing space.jpg ".into(),
        " leading space.jpg".into(),
        "CON.jpg".into(),
        "aux".into(),
        "nul.jpeg".into(),
        "ctrl\u{1}char.jpg".into(),
        long,
        "IMG_CASE.JPG".into(),
        "img_case.jpg".into(),
        "Img_Case.jpg".into(),
        "caf\u{e9}.jpg".into(),   // NFC
        "cafe\u{301}.jpg".into(), // NFD: a different file on Linux, the same name on FAT
        "日本語の写真.jpg".into(),
        "dots...jpg".into(),
        "semi;colon,comma+plus=eq[br].jpg".into(),
    ]
}

#[test]
fn every_phone_name_lands_with_a_valid_name_and_its_original_recorded() {
    if !oracle(&["mcopy", "fsck.fat", "mdir"]) {
        return;
    }
    let tmp = scratch("names");
    let phone = tmp.path().join("phone");
    let cam = phone.join("DCIM/Camera");
    fs::create_dir_all(&cam).unwrap();
    let mut originals: BTreeMap<String, String> = BTreeMap::new();
    let mut rng = Rng(0x4A3E5);
    for name in phone_names() {
        let mut b = vec![0u8; 3000 + rng.range(0, 5000) as usize];
        rng.fill(&mut b);
        b[..4].copy_from_slice(&[0xFF, 0xD8, 0xFF, 0xE0]);
        fs::write(cam.join(&name), &b).unwrap();
        originals.insert(format!("DCIM/Camera/{name}"), sha256_hex(&b));
    }
    let size = 32u64 << 20;
    let mut c = Cursor::new(vec![0u8; size as usize]);
    sdexport_fat::format(
        &mut c,
        &FormatOptions {
            volume_bytes: size,
            volume_id: Some(9),
            ..Default::default()
        },
    )
    .unwrap();
    let disk = MemDisk::new(c.into_inner());
    let report = {
        let mut card = FatVolume::open(disk.clone(), "names.img").unwrap();
        let mut ph = DirVolume::open(&phone).unwrap();
        let opts = PhotoOptions {
            move_files: true,
            all_files: true,
            run_id: "20250101T000000Z-name".into(),
            ..Default::default()
        };
        let r = run_photos(&mut ph, &mut card, &opts, &mut NoProgress).expect("run");
        card.sync().unwrap();
        r
    };
    let img = tmp.path().join("names.img");
    fs::write(&img, disk.snapshot()).unwrap();
    let mut problems = Vec::new();
    for f in &report.files {
        if f.status == sdexport::transfer::Status::Failed {
            problems.push(format!("{}: failed: {:?}", f.source, f.reason));
        }
    }
    // mtools reads every file back, and the card's names are valid FAT long names.
    let card = mtools_hashes(&img, tmp.path());
    let lost = lost_originals(&originals, &phone, &card);
    if !lost.is_empty() {
        problems.push(format!("ORIGINALS LOST: {lost:?}"));
    }
    let twice = not_exactly_once(&originals, &card);
    if !twice.is_empty() {
        problems.push(format!("not exactly once on the card: {twice:?}"));
    }
    for path in user_files(&card).keys() {
        let name = path.rsplit('/').next().unwrap();
        let bad = name
            .chars()
            .any(|ch| "\"*:<>?\\|".contains(ch) || (ch as u32) < 0x20)
            || name.ends_with('.')
            || name.ends_with(' ')
            || name.encode_utf16().count() > 255;
        if bad {
            problems.push(format!("invalid FAT name on the card: {name:?}"));
        }
    }
    if let Err(e) = fsck_clean(&img) {
        problems.push(format!("fsck.fat -n: {e}"));
    }
    // The manifest records each original name that the card name differs from.
    let manifest = mtools_cat(&img, "::/.sdexport/manifest.jsonl");
    let mut recorded: BTreeMap<String, (String, Option<String>)> = BTreeMap::new();
    for line in manifest.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).expect("manifest line is JSON");
        let src = v["source_path"].as_str().unwrap_or_default().to_string();
        recorded.insert(
            src,
            (
                v["path"].as_str().unwrap_or_default().to_string(),
                v["original_name"].as_str().map(str::to_string),
            ),
        );
    }
    for src in originals.keys() {
        let phone_name = src.rsplit('/').next().unwrap();
        match recorded.get(src) {
            None => problems.push(format!("{src:?}: not in the manifest")),
            Some((path, orig)) => {
                let card_name = path.rsplit('/').next().unwrap();
                if card_name != phone_name && orig.as_deref() != Some(phone_name) {
                    problems.push(format!(
                        "{src:?} → {path:?}: original_name is {orig:?}, want {phone_name:?}"
                    ));
                }
                eprintln!("  {phone_name:?} → {card_name:?}");
            }
        }
    }
    for p in &problems {
        eprintln!("  PROBLEM {p}");
    }
    eprintln!(
        "names: {} phone names, {} problems",
        originals.len(),
        problems.len()
    );
    assert!(problems.is_empty(), "{problems:#?}");
}

/// A file's bytes read by mtools.
fn mtools_cat(img: &std::path::Path, path: &str) -> String {
    let o = Command::new("mtype")
        .env("MTOOLS_SKIP_CHECK", "1")
        .arg("-i")
        .arg(img)
        .arg(path)
        .output()
        .expect("mtype");
    String::from_utf8_lossy(&o.stdout).into_owned()
}
