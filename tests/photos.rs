//! `sdexport photos` through the real binary, judged by independent tools.
//!
//! The phone is built from the real sample photos the way the end-to-end checks'
//! `mkphone.sh` does (camera folders, `.thumbnails/`, `.trashed-*`, `.pending-*`,
//! `.nomedia`, a Live Photo pair, a RAW+JPEG pair, Unicode/emoji names and a name with `:`
//! and `?`). Cards: a `mkfs.fat -F 32 -C` image, an image with an MBR at 4 MiB (`sfdisk` +
//! `mkfs.fat --offset`), and a directory. After a run, mtools extracts the card
//! (`mcopy -s -n -m`), `sha256sum -c SHA256SUMS` checks it, and `fsck.fat -n` must be clean.
//!
//! What goes here: the photo move as a user or a script sees it (exit codes, messages,
//! `--json`, what is on the phone and the card afterwards). Injected I/O faults go to
//! `tests/faults.rs`; the `Volume` contract to `tests/volume_suite.rs`.
//!
//! Oracle tools are optional: `SKIPPED: <tool> missing` unless `SDEXPORT_REQUIRE_ORACLES=1`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command as Std;

use assert_cmd::Command;
use common::*;
use sdexport::storage::open::{open_card, CardOptions};
use serde_json::Value;
use tempfile::TempDir;

// ---------------------------------------------------------------- running the binary

/// The binary with the pinned environment every test uses.
fn sdexport() -> Command {
    let mut c = Command::cargo_bin("sdexport").expect("the sdexport binary");
    c.env("TZ", "UTC")
        .env("LC_ALL", "C.UTF-8")
        .env_remove("NO_COLOR")
        .args(["--no-progress", "--color", "never"]);
    c
}

struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("--json output does not parse: {e}\n{}", self.stdout))
    }
    fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

fn photos(phone: &Path, card: &Path, extra: &[&str]) -> Ran {
    let out = sdexport()
        .arg("photos")
        .arg(phone)
        .arg("--to")
        .arg(card)
        .args(extra)
        .output()
        .expect("run sdexport");
    let ran = Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(
        !ran.stderr.contains("panicked at") && ran.code != 101,
        "sdexport panicked:\n{}",
        ran.all()
    );
    ran
}

fn assert_code(r: &Ran, want: i32, what: &str) {
    assert_eq!(r.code, want, "{what}: exit {}\n{}", r.code, r.all());
}

// ---------------------------------------------------------------- cards

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CardKind {
    Image,
    Mbr,
    Dir,
}

/// A fresh card of `kind` under `dir`; `None` when an oracle tool is missing.
fn make_card(dir: &Path, kind: CardKind) -> Option<PathBuf> {
    match kind {
        CardKind::Image => {
            if !oracle(&["mkfs.fat"]) {
                return None;
            }
            let p = dir.join("card.img");
            mkfs_image(&p, 128 * 1024, 32);
            Some(p)
        }
        CardKind::Mbr => {
            if !oracle(&["sfdisk", "mkfs.fat"]) {
                return None;
            }
            let p = dir.join("card-mbr.img");
            mbr_image(&p, 132);
            Some(p)
        }
        CardKind::Dir => {
            let p = dir.join("cardir");
            fs::create_dir_all(&p).unwrap();
            Some(p)
        }
    }
}

/// The card's content as a tree on the host: the directory itself, or the image (its
/// partition) extracted by mtools, after `fsck.fat -n` says it is clean.
fn card_tree(card: &Path, kind: CardKind, work: &Path) -> Option<PathBuf> {
    match kind {
        CardKind::Dir => Some(card.to_path_buf()),
        CardKind::Image | CardKind::Mbr => {
            if !oracle(&["fsck.fat", "mcopy"]) {
                return None;
            }
            let part = if kind == CardKind::Mbr {
                let p = work.join("partition.img");
                slice_out(card, MBR_OFFSET, &p);
                p
            } else {
                card.to_path_buf()
            };
            assert_fsck_clean(&part, "the card after the run");
            let out = work.join("extracted");
            let _ = fs::remove_dir_all(&out);
            fs::create_dir_all(&out).unwrap();
            let mut dest = out.as_os_str().to_owned();
            dest.push("/");
            // TZ=UTC as for the binary: FAT holds local time.
            let r = Std::new("mcopy")
                .env("MTOOLS_SKIP_CHECK", "1")
                .env("TZ", "UTC")
                .args(["-s", "-n", "-m", "-i"])
                .arg(&part)
                .arg("::/")
                .arg(&dest)
                .output()
                .unwrap();
            assert!(
                r.status.success() || !read_tree(&out).is_empty(),
                "mcopy: {}",
                String::from_utf8_lossy(&r.stderr)
            );
            Some(out)
        }
    }
}

/// The card's files as our own reader sees them (read-only open), path → bytes.
fn card_files_ours(card: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut c = open_card(card, CardOptions::default()).expect("open the card read-only");
    volume_files(c.volume.as_mut())
}

fn hashes_by_path(tree: &BTreeMap<String, Vec<u8>>) -> BTreeMap<String, String> {
    tree.iter().map(|(p, b)| (p.clone(), sha256(b))).collect()
}

/// `sha256sum -c SHA256SUMS` in `dir`: the manifest works without us.
fn assert_sha256sum_c(dir: &Path, ignore_missing: bool, want_ok_at_least: usize) {
    if !oracle(&["sha256sum"]) {
        return;
    }
    assert!(
        dir.join("SHA256SUMS").is_file(),
        "no SHA256SUMS at the card root"
    );
    let mut c = Std::new("sha256sum");
    c.current_dir(dir).arg("-c");
    if ignore_missing {
        c.arg("--ignore-missing");
    }
    let out = c.arg("SHA256SUMS").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "sha256sum -c SHA256SUMS fails:\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ok = text.lines().filter(|l| l.ends_with(": OK")).count();
    assert!(
        ok >= want_ok_at_least,
        "sha256sum -c confirms {ok} files, want {want_ok_at_least}:\n{text}"
    );
}

fn file_mtime(p: &Path) -> std::time::SystemTime {
    fs::metadata(p).unwrap().modified().unwrap()
}

/// Files left in the card's temp folder (none after any run that ended).
fn temp_files(files: &BTreeMap<String, Vec<u8>>) -> Vec<String> {
    files
        .keys()
        .filter(|p| p.starts_with(".sdexport/tmp/") || p.ends_with(".new"))
        .cloned()
        .collect()
}

// ---------------------------------------------------------------- the move, on each card

fn move_and_judge(kind: CardKind) {
    let tmp = TempDir::new().unwrap();
    let phone = Phone::build(&tmp.path().join("phone"));
    let Some(card) = make_card(tmp.path(), kind) else {
        return;
    };
    let r = photos(&phone.root, &card, &["--move", "--json"]);
    assert_code(&r, 0, "photos --move");
    let report = r.json();
    assert_eq!(report["moved"], true);

    // Every moved original is gone; the junk is all still there.
    for rel in phone.media.keys() {
        assert!(!phone.root.join(rel).exists(), "{rel} was not moved");
    }
    for j in &phone.junk {
        assert!(phone.root.join(j).exists(), "junk {j} was removed");
    }

    // Each copy, as mtools extracts it (or the directory holds it), has the original's
    // bytes and modified time; names mtools cannot extract are read with our reader.
    let Some(tree_dir) = card_tree(&card, kind, tmp.path()) else {
        return;
    };
    let tree = read_tree(&tree_dir);
    let ours = if kind == CardKind::Dir {
        tree.clone()
    } else {
        card_files_ours(&card)
    };
    let files = report["files"].as_array().expect("files[]");
    assert_eq!(
        files.len(),
        phone.media.len(),
        "one report line per media file"
    );
    for f in files {
        let src = f["source"].as_str().unwrap();
        let dest = f["destination"].as_str().unwrap();
        assert_eq!(f["status"], "copied", "{src}: {f}");
        assert_eq!(f["removed"], true, "{src}: {f}");
        let want = &phone.media[src];
        assert_eq!(f["sha256"].as_str(), Some(want.as_str()), "{src}");
        let on_card = ours
            .get(dest)
            .unwrap_or_else(|| panic!("{dest} not on the card"));
        assert_eq!(&sha256(on_card), want, "{dest}: our reader");
        if kind == CardKind::Dir || bmp_only(dest) {
            let bytes = tree
                .get(dest)
                .unwrap_or_else(|| panic!("{dest} not extracted: {:?}", tree.keys()));
            assert_eq!(&sha256(bytes), want, "{dest}: extracted copy");
            assert_time_close(
                Some(file_mtime(&tree_dir.join(dest))),
                epoch(PHONE_MTIME),
                2,
                dest,
            );
        }
    }
    // Junk did not reach the card; names FAT cannot hold were sanitised.
    for p in ours.keys() {
        assert!(
            !p.contains(".thumbnails") && !p.contains(".trashed") && !p.contains(".pending"),
            "junk on the card: {p}"
        );
    }
    if kind != CardKind::Dir {
        assert!(
            ours.contains_key("DCIM/Camera/meeting 12_30_.jpg"),
            "the name with : and ? is stored sanitised: {:?}",
            ours.keys()
        );
    }
    assert!(
        temp_files(&ours).is_empty(),
        "temp files left: {:?}",
        temp_files(&ours)
    );
    // The manifest works without us.
    let nmedia = phone.media.len();
    let nbmp = phone.media.keys().filter(|p| bmp_only(p)).count();
    assert_sha256sum_c(&tree_dir, kind != CardKind::Dir, nbmp);
    let sums = String::from_utf8(tree["SHA256SUMS"].clone()).unwrap();
    assert!(sums.lines().count() >= nmedia, "SHA256SUMS lists {sums}");
}

#[test]
fn move_to_mkfs_image() {
    move_and_judge(CardKind::Image);
}

#[test]
fn move_to_mbr_image() {
    move_and_judge(CardKind::Mbr);
}

#[test]
fn move_to_directory() {
    move_and_judge(CardKind::Dir);
}

// ---------------------------------------------------------------- refusals

#[test]
fn card_too_small_refuses_and_removes_nothing() {
    if !oracle(&["mkfs.fat", "fsck.fat", "mcopy"]) {
        return;
    }
    let tmp = TempDir::new().unwrap();
    let phone = Phone::build(&tmp.path().join("phone"));
    let card = tmp.path().join("small.img");
    run_ok(Std::new("mkfs.fat").arg("-C").arg(&card).arg("8192"));
    let before = fs::read(&card).unwrap();
    let r = photos(&phone.root, &card, &["--move"]);
    assert_ne!(
        r.code,
        0,
        "a run that cannot fit exits non-zero:\n{}",
        r.all()
    );
    for rel in phone.media.keys() {
        assert!(phone.root.join(rel).exists(), "{rel} was removed");
    }
    // The message says how much is missing, in bytes, and that amount is needed − free.
    let text = r.all();
    let nums = |key: &str| -> Option<u64> {
        let i = text.find(key)?;
        text[..i]
            .trim_end()
            .rsplit(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    };
    let needed = nums(" bytes needed").unwrap_or_else(|| panic!("no amount needed in: {text}"));
    let free = nums(" bytes free").unwrap_or_else(|| panic!("no free amount in: {text}"));
    assert!(text.contains("missing"), "no missing amount in: {text}");
    let missing = needed - free;
    assert!(
        text.contains(&format!("{missing} bytes")),
        "the message does not state the missing {missing} bytes: {text}"
    );
    assert!(phone.sizes() > free, "test setup: the phone must not fit");
    assert_fsck_clean(&card, "small card after a refused run");
    let files = card_files_ours(&card);
    assert!(temp_files(&files).is_empty(), "temp files: {files:?}");
    assert!(
        files.keys().all(|p| !p.starts_with("DCIM")),
        "nothing copied: {:?}",
        files.keys()
    );
    assert!(
        fs::read(&card).unwrap() == before,
        "the refused run wrote to the card"
    );
}

#[test]
fn sparse_4gib_file_is_refused_by_name_others_moved() {
    if !oracle(&["mkfs.fat", "fsck.fat", "mcopy"]) {
        return;
    }
    let tmp = TempDir::new().unwrap();
    let root = tmp.path().join("phone");
    let small = fake_jpeg(20_000, 5);
    write_file(
        &root.join("DCIM/Camera/IMG_0001.jpg"),
        &small,
        epoch(PHONE_MTIME),
    );
    write_file(
        &root.join("DCIM/Camera/IMG_0002.jpg"),
        &fake_jpeg(30_000, 6),
        epoch(PHONE_MTIME),
    );
    let huge = root.join("DCIM/Camera/VID_HUGE.jpg");
    write_file(&huge, &fake_jpeg(4096, 7), epoch(PHONE_MTIME));
    let f = fs::OpenOptions::new().write(true).open(&huge).unwrap();
    f.set_len(4 << 30).unwrap();
    f.set_modified(epoch(PHONE_MTIME)).unwrap();
    drop(f);
    let card = make_card(tmp.path(), CardKind::Image).unwrap();
    let r = photos(&root, &card, &["--move"]);
    assert_code(&r, 1, "a run with a file FAT32 cannot hold");
    assert!(
        r.all().contains("VID_HUGE.jpg"),
        "the refused file is named:\n{}",
        r.all()
    );
    assert!(
        r.all().contains("4 GiB"),
        "the reason is given:\n{}",
        r.all()
    );
    assert!(huge.exists(), "the 4 GiB original was removed");
    assert_eq!(fs::metadata(&huge).unwrap().len(), 4 << 30);
    assert!(!root.join("DCIM/Camera/IMG_0001.jpg").exists());
    assert!(!root.join("DCIM/Camera/IMG_0002.jpg").exists());
    assert_fsck_clean(&card, "after refusing a 4 GiB file");
    let files = card_files_ours(&card);
    assert!(files["DCIM/Camera/IMG_0001.jpg"] == small);
    assert!(!files.contains_key("DCIM/Camera/VID_HUGE.jpg"));
}

// ---------------------------------------------------------------- what is already on the card

/// A plain (unpaired, BMP-named, FAT-safe) JPEG of the phone.
fn plain_jpeg(phone: &Phone) -> String {
    phone
        .media
        .keys()
        .find(|p| {
            p.starts_with("DCIM/Camera/")
                && p.to_lowercase().ends_with(".jpg")
                && !p.contains("IMG_4242")
                && !p.contains("DSC_0007")
                && bmp_only(p)
                && !p.contains(':')
                && !p.contains(' ')
        })
        .expect("a plain jpeg")
        .clone()
}

fn mtools_put(image: &Path, local: &Path, path: &str) {
    let mut dir = String::new();
    for comp in path.split('/').collect::<Vec<_>>().split_last().unwrap().1 {
        dir.push('/');
        dir.push_str(comp);
        let _ = run(Std::new("mmd").arg("-i").arg(image).arg(format!("::{dir}")));
    }
    run_ok(
        Std::new("mcopy")
            .args(["-o", "-m", "-i"])
            .arg(image)
            .arg(local)
            .arg(format!("::/{path}")),
    );
}

#[test]
fn different_file_under_the_name_is_not_overwritten() {
    if !oracle(&["mkfs.fat", "fsck.fat", "mcopy", "mmd"]) {
        return;
    }
    let tmp = TempDir::new().unwrap();
    let phone = Phone::build(&tmp.path().join("phone"));
    let card = make_card(tmp.path(), CardKind::Image).unwrap();
    let victim = plain_jpeg(&phone);
    // Same size, different bytes: only the content tells them apart.
    let mut other = fs::read(phone.root.join(&victim)).unwrap();
    let mid = other.len() / 2;
    other[mid] ^= 0xFF;
    let other_path = tmp.path().join("other.jpg");
    fs::write(&other_path, &other).unwrap();
    mtools_put(&card, &other_path, &victim);

    let r = photos(&phone.root, &card, &["--move", "--json"]);
    assert_code(&r, 0, "photos --move beside a different file");
    let files = card_files_ours(&card);
    assert!(
        files[&victim] == other,
        "the different file on the card was overwritten"
    );
    let (stem, ext) = victim.rsplit_once('.').unwrap();
    let renamed = format!("{stem} (1).{ext}");
    let copy = files
        .get(&renamed)
        .unwrap_or_else(|| panic!("no {renamed} on the card: {:?}", files.keys()));
    assert_eq!(sha256(copy), phone.media[&victim]);
    let report = r.json();
    let f = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["source"] == victim.as_str())
        .unwrap();
    assert_eq!(f["destination"], renamed.as_str());
    assert!(
        !phone.root.join(&victim).exists(),
        "moved under the new name"
    );
    assert_fsck_clean(&card, "after saving beside a different file");
}

#[test]
fn corrupted_copy_under_its_name_never_releases_the_original() {
    if !oracle(&["mkfs.fat", "fsck.fat", "mcopy", "mmd"]) {
        return;
    }
    let tmp = TempDir::new().unwrap();
    let phone = Phone::build(&tmp.path().join("phone"));
    let card = make_card(tmp.path(), CardKind::Image).unwrap();
    let victim = plain_jpeg(&phone);
    let mut bad = fs::read(phone.root.join(&victim)).unwrap();
    bad[100] ^= 0x01;
    let bad_path = tmp.path().join("bad.jpg");
    fs::write(&bad_path, &bad).unwrap();
    mtools_put(&card, &bad_path, &victim);

    let r = photos(&phone.root, &card, &["--move", "--json"]);
    assert!(r.code == 0 || r.code == 1, "exit {}:\n{}", r.code, r.all());
    let files = card_files_ours(&card);
    assert!(
        files[&victim] == bad,
        "a different file on the card was overwritten"
    );
    let good_on_card = files.values().any(|b| sha256(b) == phone.media[&victim]);
    assert!(
        phone.root.join(&victim).exists() || good_on_card,
        "{victim} was removed on the strength of a corrupted copy (DATA LOST)"
    );
    assert_fsck_clean(&card, "after meeting a corrupted copy");
}

/// A copy recorded in the manifest, corrupted on the card afterwards (bit rot, a bad
/// reader): a later `--move` must read it back rather than trust the manifest.
#[test]
fn copy_corrupted_after_a_recorded_run_never_releases_the_original() {
    if !oracle(&["mkfs.fat", "fsck.fat", "mcopy", "mmd"]) {
        return;
    }
    let tmp = TempDir::new().unwrap();
    let phone = Phone::build(&tmp.path().join("phone"));
    let card = make_card(tmp.path(), CardKind::Image).unwrap();
    let r = photos(&phone.root, &card, &[]);
    assert_code(&r, 0, "the first (copy) run");
    let victim = plain_jpeg(&phone);
    let mut bad = fs::read(phone.root.join(&victim)).unwrap();
    bad[100] ^= 0x01;
    let bad_path = tmp.path().join("bad.jpg");
    fs::write(&bad_path, &bad).unwrap();
    mtools_put(&card, &bad_path, &victim);

    let r = photos(&phone.root, &card, &["--move", "--json"]);
    let files = card_files_ours(&card);
    let good_on_card = files.values().any(|b| sha256(b) == phone.media[&victim]);
    assert!(
        phone.root.join(&victim).exists() || good_on_card,
        "{victim} was removed although its only copy is corrupt (DATA LOST)"
    );
    assert_fsck_clean(&card, "after a corrupted recorded copy");
    // Every other original was moved.
    for rel in phone.media.keys().filter(|p| **p != victim) {
        assert!(!phone.root.join(rel).exists(), "{rel} was not moved");
    }
    if phone.root.join(&victim).exists() {
        assert_ne!(
            r.code, 0,
            "an original kept back is reported by the exit code"
        );
    }
}

// ---------------------------------------------------------------- dry run, JSON, re-runs

#[test]
fn dry_run_writes_nothing_and_lists_the_plan() {
    if !oracle(&["mkfs.fat"]) {
        return;
    }
    let tmp = TempDir::new().unwrap();
    let phone = Phone::build(&tmp.path().join("phone"));
    let card = make_card(tmp.path(), CardKind::Image).unwrap();
    let before = sha256_file(&card);
    let r = photos(&phone.root, &card, &["--move", "--dry-run"]);
    assert_code(&r, 0, "--dry-run");
    assert_eq!(sha256_file(&card), before, "--dry-run changed the image");
    for rel in phone.media.keys() {
        assert!(phone.root.join(rel).exists(), "--dry-run removed {rel}");
    }
    assert!(r.stdout.contains("dry run"), "{}", r.stdout);
    for rel in phone.media.keys() {
        assert!(
            r.stdout.contains(rel.as_str()),
            "the plan does not list {rel}:\n{}",
            r.stdout
        );
    }
    let j = photos(&phone.root, &card, &["--move", "--dry-run", "--json"]).json();
    assert_eq!(j["dry_run"], true);
    for f in j["files"].as_array().unwrap() {
        assert_eq!(f["status"], "planned", "{f}");
        assert_eq!(f["removed"], false, "{f}");
    }
    assert_eq!(
        sha256_file(&card),
        before,
        "--dry-run --json changed the image"
    );
}

#[test]
fn json_report_parses_with_documented_statuses() {
    let tmp = TempDir::new().unwrap();
    let phone = Phone::build(&tmp.path().join("phone"));
    let card = make_card(tmp.path(), CardKind::Dir).unwrap();
    let r = photos(&phone.root, &card, &["--json"]);
    assert_code(&r, 0, "photos --json");
    let j = r.json();
    let statuses: BTreeSet<String> = j["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["status"].as_str().unwrap().to_string())
        .collect();
    let known: BTreeSet<String> = ["planned", "copied", "already_on_card", "failed"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert!(statuses.is_subset(&known), "unknown statuses {statuses:?}");
    assert_eq!(statuses, BTreeSet::from(["copied".to_string()]));
    assert_eq!(j["moved"], false);
    assert_eq!(j["dry_run"], false);
    assert!(j["bytes_copied"].as_u64().unwrap() >= phone.sizes());
    assert!(j["skipped"].as_array().is_some_and(|s| !s.is_empty()));
    for f in j["files"].as_array().unwrap() {
        assert_eq!(f["removed"], false, "copy mode removes nothing");
        assert_eq!(f["sha256"].as_str().map(str::len), Some(64), "{f}");
    }
    // Copy mode: the phone is as it was.
    for rel in phone.media.keys() {
        assert!(phone.root.join(rel).exists());
    }
}

#[test]
fn rerun_of_a_completed_run_copies_nothing() {
    if !oracle(&["mkfs.fat", "fsck.fat", "mcopy"]) {
        return;
    }
    let tmp = TempDir::new().unwrap();
    let phone = Phone::build(&tmp.path().join("phone"));
    let card = make_card(tmp.path(), CardKind::Image).unwrap();
    assert_code(&photos(&phone.root, &card, &[]), 0, "first run");
    let files_before = hashes_by_path(&card_files_ours(&card));
    let r = photos(&phone.root, &card, &["--json"]);
    assert_code(&r, 0, "re-run");
    let j = r.json();
    assert_eq!(j["bytes_copied"], 0);
    for f in j["files"].as_array().unwrap() {
        assert_eq!(f["status"], "already_on_card", "{f}");
    }
    let files_after = hashes_by_path(&card_files_ours(&card));
    let dcim = |m: &BTreeMap<String, String>| -> BTreeMap<String, String> {
        m.iter()
            .filter(|(p, _)| p.starts_with("DCIM/"))
            .map(|(p, h)| (p.clone(), h.clone()))
            .collect()
    };
    assert_eq!(
        dcim(&files_before),
        dcim(&files_after),
        "the re-run changed DCIM"
    );
    // Text output says so too; then a --move re-run releases the originals without
    // copying anything new, and a run over the emptied phone is a clean no-op.
    let r = photos(&phone.root, &card, &["--move", "--json"]);
    assert_code(&r, 0, "re-run with --move");
    let j = r.json();
    assert_eq!(j["bytes_copied"], 0);
    for f in j["files"].as_array().unwrap() {
        assert_eq!(f["status"], "already_on_card", "{f}");
        assert_eq!(f["removed"], true, "{f}");
    }
    let r = photos(&phone.root, &card, &["--move"]);
    assert_code(&r, 0, "run over an emptied phone");
    assert_eq!(
        dcim(&hashes_by_path(&card_files_ours(&card))),
        dcim(&files_before),
        "each photo exactly once on the card"
    );
    let r = photos(&phone.root, &card, &[]);
    assert!(r.stdout.contains("already on card"), "{}", r.stdout);
    assert_fsck_clean(&card, "after re-runs");
}

#[test]
fn layout_date_puts_pixel_photo_under_year_month() {
    let tmp = TempDir::new().unwrap();
    let phone = Phone::build(&tmp.path().join("phone"));
    let card = make_card(tmp.path(), CardKind::Dir).unwrap();
    let r = photos(&phone.root, &card, &["--layout", "date", "--json"]);
    assert_code(&r, 0, "--layout date");
    let src = phone
        .media
        .keys()
        .find(|p| p.ends_with("Google_Pixel8Pro.jpg"))
        .unwrap()
        .clone();
    let want = "DCIM/2023/10/Google_Pixel8Pro.jpg";
    assert!(
        card.join(want).is_file(),
        "{want} missing; report:\n{}",
        r.stdout
    );
    assert_eq!(sha256_file(&card.join(want)), phone.media[&src]);
    let j = r.json();
    let f = j["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["source"] == src.as_str())
        .unwrap();
    assert_eq!(f["destination"], want);
    assert_eq!(f["captured_from"], "exif");
}

/// Set up a card whose recorded copy of a plain JPEG was corrupted after a copy run (same
/// size, one bit off): returns (tmp, phone, card, victim).
fn card_with_corrupted_recorded_copy() -> Option<(TempDir, Phone, PathBuf, String)> {
    if !oracle(&["mkfs.fat", "mcopy", "mmd"]) {
        return None;
    }
    let tmp = TempDir::new().unwrap();
    let phone = Phone::build(&tmp.path().join("phone"));
    let card = make_card(tmp.path(), CardKind::Image)?;
    assert_code(&photos(&phone.root, &card, &[]), 0, "the first (copy) run");
    let victim = plain_jpeg(&phone);
    let mut bad = fs::read(phone.root.join(&victim)).unwrap();
    bad[100] ^= 0x01;
    let bad_path = tmp.path().join("bad.jpg");
    fs::write(&bad_path, &bad).unwrap();
    mtools_put(&card, &bad_path, &victim);
    Some((tmp, phone, card, victim))
}

/// `verify` tells the user to run `photos` again when a copy is corrupt; that run must not
/// answer "already on card" (exit 0) on the strength of the manifest's hash without reading
/// the copy: DESIGN.md, "a destination that already holds the same content (skip, but still
/// verify it)". In copy mode nothing reads it back, so the user is told a corrupt copy is
/// safe and may wipe the phone.
#[test]
fn copy_rerun_over_a_corrupted_copy_does_not_claim_it_is_safe() {
    let Some((_tmp, phone, card, victim)) = card_with_corrupted_recorded_copy() else {
        return;
    };
    let r = photos(&phone.root, &card, &["--json"]);
    let good_on_card = card_files_ours(&card)
        .values()
        .any(|b| sha256(b) == phone.media[&victim]);
    let j = r.json();
    let f = j["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["source"] == victim.as_str())
        .unwrap()
        .clone();
    assert!(
        good_on_card || (r.code != 0 && f["status"] == "failed"),
        "{victim}: the card holds only a corrupted copy, yet the run says {f} (exit {})",
        r.code
    );
}

/// After a `--move` finds the recorded copy corrupt (and keeps the original), the next
/// `--move` must finish the job (a fresh copy, e.g. under `name (1).ext`), not fail the
/// same way forever.
#[test]
fn move_over_a_corrupted_recorded_copy_completes_on_rerun() {
    let Some((_tmp, phone, card, victim)) = card_with_corrupted_recorded_copy() else {
        return;
    };
    let first = photos(&phone.root, &card, &["--move"]);
    assert!(
        phone.root.join(&victim).exists() || first.code == 0,
        "{}",
        first.all()
    );
    let r = photos(&phone.root, &card, &["--move"]);
    assert_code(&r, 0, "the second --move over a corrupted recorded copy");
    assert!(!phone.root.join(&victim).exists(), "{victim} never moved");
    let files = card_files_ours(&card);
    assert!(files.values().any(|b| sha256(b) == phone.media[&victim]));
}

/// A card acknowledged and dropped the FAT write of one manifest file (its chain now hits
/// a free cluster; `fsck.fat -n` fails). The next run drops that file, rebuilds it from its
/// twin, says so, and leaves a card that fsck and `verify` accept.
#[test]
fn a_manifest_file_damaged_by_a_lost_write_is_rebuilt_from_its_twin() {
    if !oracle(&["mkfs.fat", "fsck.fat", "mshowfat"]) {
        return;
    }
    for (damaged, twin) in [
        ("SHA256SUMS", ".sdexport/manifest.jsonl"),
        (".sdexport/manifest.jsonl", "SHA256SUMS"),
    ] {
        let tmp = TempDir::new().unwrap();
        let phone = tmp.path().join("phone");
        for i in 0..3u64 {
            write_file(
                &phone.join(format!("DCIM/Camera/IMG_000{i}.jpg")),
                &fake_jpeg(30_000 + i as usize * 7_000, i),
                epoch(1_700_000_000 + i),
            );
        }
        let card = tmp.path().join("card.img");
        mkfs_image(&card, 64 * 1024, 32);
        assert_code(&photos(&phone, &card, &[]), 0, "first run");
        let clusters = file_clusters(&card, damaged);
        assert!(
            !clusters.is_empty(),
            "test setup: no clusters for {damaged}"
        );
        poke_fat(&card, clusters[0], 0);
        let fsck = run(Std::new("fsck.fat").arg("-n").arg(&card));
        assert!(
            !fsck.status.success(),
            "test setup: fsck accepts the damage"
        );

        let again = photos(&phone, &card, &[]);
        assert_code(&again, 0, "run after the lost write");
        assert!(
            again.stderr.contains(&format!(
                "{damaged} was damaged by a lost write and removed; it is rebuilt from {twin}"
            )),
            "{}",
            again.all()
        );
        assert_fsck_clean(&card, "after the rebuild");
        let verify = sdexport()
            .arg("verify")
            .arg(&card)
            .output()
            .expect("run sdexport");
        assert_eq!(
            verify.status.code(),
            Some(0),
            "verify after the rebuild:\n{}{}",
            String::from_utf8_lossy(&verify.stdout),
            String::from_utf8_lossy(&verify.stderr)
        );
    }
}
