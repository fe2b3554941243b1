//! `sdexport verify` through the real binary: directory cards, FAT images (ours, mkfs.fat's),
//! damage made with independent tools (mtools, plain file writes), `--against`, `--json`
//! parsed into typed structs, exit codes, agreement with `sha256sum -c`, and the commands
//! docs/VERIFY.md gives for checking a card without sdexport.
//!
//! What goes here: anything about `verify`'s behaviour as a user or script sees it. Unit
//! tests of the library's pieces live in `src/verify.rs`.
//!
//! Oracle tools (mtools, mkfs.fat, fsck.fat, sha256sum) are optional: a test that needs a
//! missing one prints `SKIPPED: <tool> missing` and passes, unless
//! `SDEXPORT_REQUIRE_ORACLES=1`, in which case it fails.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command as Std;

use assert_cmd::Command;
use sdexport::manifest::{self, Manifest, Record};
use sdexport::storage::dir::DirVolume;
use sdexport::storage::open::{open_card, CardOptions};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tempfile::TempDir;

// ---------------------------------------------------------------- the JSON contract

#[derive(Debug, Deserialize)]
struct Report {
    schema: u32,
    card: String,
    #[allow(dead_code)]
    volume: String,
    manifest: ManifestJson,
    summary: SummaryJson,
    files: Vec<FileJson>,
    problems: Vec<String>,
    #[allow(dead_code)]
    notes: Vec<String>,
    against: Option<AgainstJson>,
}

#[derive(Debug, Deserialize)]
struct ManifestJson {
    source: String,
    files: u64,
    #[allow(dead_code)]
    bytes: u64,
}

#[derive(Debug, Deserialize, PartialEq, Eq, Default)]
struct SummaryJson {
    ok: u64,
    missing: u64,
    corrupt: u64,
    size_changed: u64,
    unknown: u64,
    checked_files: u64,
    checked_bytes: u64,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum StatusJson {
    Ok,
    Missing,
    Corrupt,
    SizeChanged,
    Unknown,
}

#[derive(Debug, Deserialize)]
struct FileJson {
    path: String,
    status: StatusJson,
    expected_sha256: Option<String>,
    actual_sha256: Option<String>,
    expected_size: Option<u64>,
    actual_size: Option<u64>,
    #[allow(dead_code)]
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct AgainstJson {
    #[allow(dead_code)]
    dir: String,
    files: u64,
    found: u64,
    #[allow(dead_code)]
    checked_bytes: u64,
    not_on_card: Vec<NotOnCardJson>,
    found_files: Vec<FoundJson>,
    skipped: Vec<SkippedJson>,
}

#[derive(Debug, Deserialize)]
struct NotOnCardJson {
    path: String,
    size: u64,
    sha256: Option<String>,
    #[allow(dead_code)]
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct FoundJson {
    path: String,
    card_path: String,
}

#[derive(Debug, Deserialize)]
struct SkippedJson {
    path: String,
    #[allow(dead_code)]
    reason: String,
}

#[derive(Debug, Deserialize)]
struct ErrorDoc {
    schema: u32,
    error: ErrorJson,
}

#[derive(Debug, Deserialize)]
struct ErrorJson {
    message: String,
    exit_code: i32,
}

impl Report {
    /// Path → status of every file that is not ok.
    fn problems_by_path(&self) -> BTreeMap<String, StatusJson> {
        self.files
            .iter()
            .filter(|f| f.status != StatusJson::Ok)
            .map(|f| (f.path.clone(), f.status))
            .collect()
    }
}

// ---------------------------------------------------------------- helpers

fn sha(bytes: &[u8]) -> String {
    manifest::hex(&Sha256::digest(bytes))
}

/// Deterministic, incompressible-looking content (xorshift).
fn pseudo_random(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// The photos of a small phone: different sizes, one spanning several 1 MiB reads.
fn sample_files() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("DCIM/Camera/IMG_0001.JPG", pseudo_random(1, 70_000)),
        ("DCIM/Camera/IMG_0002.JPG", pseudo_random(2, 12_345)),
        ("DCIM/Camera/VID_0003.mp4", pseudo_random(3, 2_500_000)),
        ("DCIM/100ANDRO/DSC_0004.JPG", pseudo_random(4, 40_000)),
        ("DCIM/Camera/Été 日本.jpg", pseudo_random(5, 9_000)),
        (
            "contacts.vcf",
            b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:A\r\nEND:VCARD\r\n".to_vec(),
        ),
    ]
}

fn record(path: &str, bytes: &[u8]) -> Record {
    Record {
        path: path.into(),
        size: bytes.len() as u64,
        sha256: sha(bytes),
        kind: Some("photo".into()),
        source_path: Some(path.into()),
        source_device: Some("test phone".into()),
        run_id: "test-run".into(),
        tool_version: "test".into(),
        ..Default::default()
    }
}

fn manifest_of(files: &[(&str, Vec<u8>)]) -> Manifest {
    let mut m = Manifest::default();
    for (p, b) in files {
        m.insert(record(p, b));
    }
    m
}

/// A mounted card: files written with std::fs, manifest with the library.
fn dir_card(files: &[(&str, Vec<u8>)]) -> TempDir {
    let t = TempDir::new().unwrap();
    for (p, b) in files {
        let host = t.path().join(p);
        fs::create_dir_all(host.parent().unwrap()).unwrap();
        fs::write(host, b).unwrap();
    }
    let mut v = DirVolume::open(t.path()).unwrap();
    manifest::save(&mut v, &manifest_of(files)).unwrap();
    t
}

fn oracles_required() -> bool {
    std::env::var("SDEXPORT_REQUIRE_ORACLES").is_ok_and(|v| v == "1")
}

/// Is `tool` on PATH? If not: SKIPPED line (or a failure when oracles are required).
fn have(tool: &str) -> bool {
    let found = Std::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool} >/dev/null 2>&1"))
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            !oracles_required(),
            "{tool} missing and SDEXPORT_REQUIRE_ORACLES=1"
        );
        println!("SKIPPED: {tool} missing");
    }
    found
}

/// Run an oracle tool, failing the test with its output when it fails.
fn tool(program: &str, args: &[&str]) -> std::process::Output {
    let out = Std::new(program)
        .args(args)
        .env("MTOOLS_SKIP_CHECK", "1")
        .env("TZ", "UTC")
        .env("LC_ALL", "C.UTF-8")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn sdexport() -> Command {
    let mut c = Command::cargo_bin("sdexport").unwrap();
    c.env("TZ", "UTC")
        .env_remove("NO_COLOR")
        .args(["--no-progress", "--color", "never"]);
    c
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn verify(card: &Path, extra: &[&str]) -> Run {
    let out = sdexport()
        .arg("verify")
        .arg(card)
        .args(extra)
        .output()
        .unwrap();
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(
        !run.stderr.contains("panicked"),
        "verify panicked:\n{}",
        run.stderr
    );
    run
}

fn verify_json(card: &Path, extra: &[&str]) -> (i32, Report) {
    let mut args = vec!["--json"];
    args.extend_from_slice(extra);
    let run = verify(card, &args);
    let report: Report = serde_json::from_str(&run.stdout).unwrap_or_else(|e| {
        panic!(
            "verify --json is not one valid document ({e}):\n{}\nstderr:\n{}",
            run.stdout, run.stderr
        )
    });
    assert_eq!(report.schema, 1);
    (run.code, report)
}

fn assert_code(run: &Run, code: i32) {
    assert_eq!(
        run.code, code,
        "expected exit code {code}\nstdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
}

/// An image with a FAT file system made by `sdexport format` (or mkfs.fat), filled with
/// mtools: the files, SHA256SUMS and, unless `sums_only`, .sdexport/manifest.jsonl.
fn image_card(
    files: &[(&str, Vec<u8>)],
    mkfs: Mkfs,
    sums_only: bool,
) -> Option<(TempDir, PathBuf)> {
    if !have("mcopy") || !have("mmd") {
        return None;
    }
    let t = TempDir::new().unwrap();
    let img = t.path().join("card.img");
    match mkfs {
        Mkfs::Ours => {
            sdexport()
                .arg("format")
                .arg(&img)
                .args(["--size", "64M"])
                .assert()
                .success();
        }
        Mkfs::OursFat(bits, size) => {
            sdexport()
                .arg("format")
                .arg(&img)
                .args(["--size", size, "--fat", bits])
                .assert()
                .success();
        }
        Mkfs::Dosfstools => {
            if !have("mkfs.fat") {
                return None;
            }
            tool(
                "mkfs.fat",
                &["-F", "32", "-C", img.to_str().unwrap(), "131072"],
            );
        }
    }
    let i = img.to_str().unwrap();
    let mut dirs: Vec<String> = Vec::new();
    for (p, _) in files {
        let mut cur = String::new();
        let parts: Vec<&str> = p.split('/').collect();
        for c in &parts[..parts.len() - 1] {
            cur = if cur.is_empty() {
                c.to_string()
            } else {
                format!("{cur}/{c}")
            };
            if !dirs.contains(&cur) {
                dirs.push(cur.clone());
            }
        }
    }
    for d in &dirs {
        tool("mmd", &["-i", i, &format!("::/{d}")]);
    }
    let staging = t.path().join("staging");
    fs::create_dir_all(&staging).unwrap();
    for (n, (p, b)) in files.iter().enumerate() {
        let local = staging.join(format!("f{n}"));
        fs::write(&local, b).unwrap();
        tool(
            "mcopy",
            &["-i", i, local.to_str().unwrap(), &format!("::/{p}")],
        );
    }
    let m = manifest_of(files);
    let sums = staging.join("SHA256SUMS");
    fs::write(&sums, m.to_sha256sums()).unwrap();
    tool("mcopy", &["-i", i, sums.to_str().unwrap(), "::/SHA256SUMS"]);
    if !sums_only {
        let jsonl = staging.join("manifest.jsonl");
        fs::write(&jsonl, m.to_jsonl()).unwrap();
        tool("mmd", &["-i", i, "::/.sdexport"]);
        tool(
            "mcopy",
            &[
                "-i",
                i,
                jsonl.to_str().unwrap(),
                "::/.sdexport/manifest.jsonl",
            ],
        );
    }
    Some((t, img))
}

#[derive(Clone, Copy)]
enum Mkfs {
    /// `sdexport format --size 64M` (FAT32).
    Ours,
    /// `sdexport format --fat BITS --size SIZE`.
    OursFat(&'static str, &'static str),
    /// `mkfs.fat -F 32`, 128 MiB.
    Dosfstools,
}

/// Flip one byte of a file inside an image, with mtools only (mtype out, mcopy -o in).
fn mtools_flip_byte(img: &Path, path: &str, offset: usize) {
    let i = img.to_str().unwrap();
    let out = tool("mtype", &["-i", i, &format!("::/{path}")]);
    let mut bytes = out.stdout;
    bytes[offset] ^= 0x55;
    let local = img.with_extension("flip");
    fs::write(&local, &bytes).unwrap();
    tool(
        "mcopy",
        &[
            "-o",
            "-i",
            i,
            local.to_str().unwrap(),
            &format!("::/{path}"),
        ],
    );
}

fn flip_byte(path: &Path, offset: u64) {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    let mut b = [0u8];
    f.read_exact(&mut b).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(&[b[0] ^ 0x55]).unwrap();
}

/// `sha256sum -c SHA256SUMS` run at the card root, as docs/VERIFY.md tells users.
fn sha256sum_c(root: &Path) -> i32 {
    Std::new("sh")
        .arg("-c")
        .arg("sha256sum -c --quiet SHA256SUMS >/dev/null 2>&1")
        .current_dir(root)
        .status()
        .unwrap()
        .code()
        .unwrap_or(-1)
}

fn expected_problems(pairs: &[(&str, StatusJson)]) -> BTreeMap<String, StatusJson> {
    pairs.iter().map(|(p, s)| (p.to_string(), *s)).collect()
}

// ---------------------------------------------------------------- directory cards

#[test]
fn intact_directory_card_exits_0() {
    let files = sample_files();
    let card = dir_card(&files);
    let run = verify(card.path(), &[]);
    assert_code(&run, 0);
    assert!(run
        .stdout
        .contains("6 ok, 0 missing, 0 corrupt, 0 size-changed, 0 unknown"));
    assert!(run
        .stdout
        .contains("Result: all 6 file(s) on the card are intact."));

    let (code, r) = verify_json(card.path(), &[]);
    assert_eq!(code, 0);
    let total: u64 = files.iter().map(|(_, b)| b.len() as u64).sum();
    assert_eq!(
        r.summary,
        SummaryJson {
            ok: 6,
            checked_files: 6,
            checked_bytes: total,
            ..Default::default()
        }
    );
    assert_eq!(r.manifest.source, "manifest.jsonl");
    assert_eq!(r.manifest.files, 6);
    assert_eq!(r.card, card.path().display().to_string());
    assert!(r.problems.is_empty());
    assert!(r.against.is_none());
    for f in &r.files {
        assert_eq!(f.expected_sha256, f.actual_sha256, "{}", f.path);
        assert_eq!(f.expected_size, f.actual_size, "{}", f.path);
    }
}

#[test]
fn damaged_directory_card_reports_exactly_corrupt_missing_unknown() {
    let files = sample_files();
    let card = dir_card(&files);
    let root = card.path();
    flip_byte(&root.join("DCIM/Camera/VID_0003.mp4"), 1_500_000);
    fs::remove_file(root.join("DCIM/Camera/IMG_0002.JPG")).unwrap();
    fs::write(root.join("DCIM/Camera/stray.jpg"), b"stray").unwrap();

    let run = verify(root, &[]);
    assert_code(&run, 1);
    let exp = sha(&files[2].1);
    let got = {
        let mut b = files[2].1.clone();
        b[1_500_000] ^= 0x55;
        sha(&b)
    };
    assert!(
        run.stdout.contains(&format!(
            "DCIM/Camera/VID_0003.mp4: corrupt (expected sha256 {}…, found {}…)",
            &exp[..12],
            &got[..12]
        )),
        "{}",
        run.stdout
    );
    assert!(run
        .stdout
        .contains("DCIM/Camera/IMG_0002.JPG: missing (listed in the manifest, not on the card)"));
    assert!(run
        .stdout
        .contains("DCIM/Camera/stray.jpg: unknown (not in the manifest, 5 B)"));
    assert!(run
        .stdout
        .contains("4 ok, 1 missing, 1 corrupt, 0 size-changed, 1 unknown"));
    assert!(run.stdout.contains("Result: problems found."));

    let (code, r) = verify_json(root, &[]);
    assert_eq!(code, 1);
    assert_eq!(
        r.problems_by_path(),
        expected_problems(&[
            ("DCIM/Camera/IMG_0002.JPG", StatusJson::Missing),
            ("DCIM/Camera/VID_0003.mp4", StatusJson::Corrupt),
            ("DCIM/Camera/stray.jpg", StatusJson::Unknown),
        ])
    );
    let corrupt = r
        .files
        .iter()
        .find(|f| f.status == StatusJson::Corrupt)
        .unwrap();
    assert_eq!(corrupt.expected_sha256.as_deref(), Some(exp.as_str()));
    assert_eq!(corrupt.actual_sha256.as_deref(), Some(got.as_str()));
    let stray = r
        .files
        .iter()
        .find(|f| f.status == StatusJson::Unknown)
        .unwrap();
    assert_eq!(stray.actual_size, Some(5));
    assert_eq!(stray.expected_sha256, None);
    assert_eq!(r.summary.ok, 4);
    assert_eq!(r.summary.checked_files, 6);
}

#[test]
fn changed_size_is_its_own_category() {
    let files = sample_files();
    let card = dir_card(&files);
    let p = card.path().join("DCIM/Camera/IMG_0001.JPG");
    let mut b = fs::read(&p).unwrap();
    b.truncate(60_000);
    fs::write(&p, &b).unwrap();
    let run = verify(card.path(), &[]);
    assert_code(&run, 1);
    assert!(
        run.stdout
            .contains("DCIM/Camera/IMG_0001.JPG: size-changed (expected 70000 bytes, found 60000)"),
        "{}",
        run.stdout
    );
    let (code, r) = verify_json(card.path(), &[]);
    assert_eq!(code, 1);
    assert_eq!(
        r.problems_by_path(),
        expected_problems(&[("DCIM/Camera/IMG_0001.JPG", StatusJson::SizeChanged)])
    );
    assert_eq!(r.summary.size_changed, 1);
}

#[test]
fn hidden_system_and_root_files_are_not_unknown() {
    let files = sample_files();
    let card = dir_card(&files);
    let root = card.path();
    for (p, b) in [
        ("System Volume Information/IndexerVolumeGuid", &b"x"[..]),
        ("DCIM/Thumbs.db", b"x"),
        ("DCIM/.thumbnails/123.jpg", b"x"),
        ("DCIM/Camera/.trashed-1733000000-IMG_9.jpg", b"x"),
        (".sdexport/tmp/run-1", b"partial"),
        ("LOST.DIR/1234", b"x"),
        ("notes.txt", b"the user's own file at the root"),
    ] {
        let h = root.join(p);
        fs::create_dir_all(h.parent().unwrap()).unwrap();
        fs::write(h, b).unwrap();
    }
    let run = verify(root, &[]);
    assert_code(&run, 0);
}

#[test]
fn quiet_prints_only_the_problem_lines() {
    let files = sample_files();
    let card = dir_card(&files);
    fs::remove_file(card.path().join("DCIM/Camera/IMG_0002.JPG")).unwrap();
    let out = sdexport()
        .arg("-q")
        .arg("verify")
        .arg(card.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "  DCIM/Camera/IMG_0002.JPG: missing (listed in the manifest, not on the card)\n"
    );
}

#[test]
fn manifest_files_that_disagree_are_a_problem() {
    let files = sample_files();
    let card = dir_card(&files);
    // Someone edits SHA256SUMS by hand: `sha256sum -c` would now fail on that file.
    let sums = fs::read_to_string(card.path().join("SHA256SUMS")).unwrap();
    let h = sha(&files[0].1);
    fs::write(
        card.path().join("SHA256SUMS"),
        sums.replace(&h, &"0".repeat(64)),
    )
    .unwrap();
    let (code, r) = verify_json(card.path(), &[]);
    assert_eq!(code, 1);
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    assert!(r.problems[0].starts_with("DCIM/Camera/IMG_0001.JPG: SHA256SUMS and"));
    assert!(r.problems_by_path().is_empty());
}

// ---------------------------------------------------------------- images

#[test]
fn intact_image_exits_0() {
    let files = sample_files();
    let Some((_t, img)) = image_card(&files, Mkfs::Ours, false) else {
        return;
    };
    let run = verify(&img, &[]);
    assert_code(&run, 0);
    let (code, r) = verify_json(&img, &[]);
    assert_eq!(code, 0);
    assert_eq!(r.summary.ok, 6);
    assert_eq!(r.manifest.source, "manifest.jsonl");
}

#[test]
fn damaged_image_reports_exactly_corrupt_missing_unknown() {
    let files = sample_files();
    let Some((t, img)) = image_card(&files, Mkfs::Ours, false) else {
        return;
    };
    let i = img.to_str().unwrap();
    mtools_flip_byte(&img, "DCIM/Camera/IMG_0001.JPG", 5000);
    tool("mdel", &["-i", i, "::/DCIM/100ANDRO/DSC_0004.JPG"]);
    let stray = t.path().join("stray.jpg");
    fs::write(&stray, b"stray\n").unwrap();
    tool(
        "mcopy",
        &["-i", i, stray.to_str().unwrap(), "::/DCIM/stray.jpg"],
    );

    let run = verify(&img, &[]);
    assert_code(&run, 1);
    for line in [
        "DCIM/Camera/IMG_0001.JPG: corrupt (expected sha256 ",
        "DCIM/100ANDRO/DSC_0004.JPG: missing (",
        "DCIM/stray.jpg: unknown (not in the manifest, 6 B)",
        "4 ok, 1 missing, 1 corrupt, 0 size-changed, 1 unknown",
    ] {
        assert!(
            run.stdout.contains(line),
            "{line:?} not in:\n{}",
            run.stdout
        );
    }

    let (code, r) = verify_json(&img, &[]);
    assert_eq!(code, 1);
    assert_eq!(
        r.problems_by_path(),
        expected_problems(&[
            ("DCIM/100ANDRO/DSC_0004.JPG", StatusJson::Missing),
            ("DCIM/Camera/IMG_0001.JPG", StatusJson::Corrupt),
            ("DCIM/stray.jpg", StatusJson::Unknown),
        ])
    );
}

#[test]
fn mkfs_fat_image_with_only_sha256sums() {
    let files = sample_files();
    let Some((_t, img)) = image_card(&files, Mkfs::Dosfstools, true) else {
        return;
    };
    let (code, r) = verify_json(&img, &[]);
    assert_eq!(code, 0, "{r:?}");
    assert_eq!(r.manifest.source, "SHA256SUMS");
    assert_eq!(r.summary.ok, 6);
    assert!(r.files.iter().all(|f| f.expected_size.is_none()));

    mtools_flip_byte(&img, "DCIM/Camera/Été 日本.jpg", 10);
    let (code, r) = verify_json(&img, &[]);
    assert_eq!(code, 1);
    assert_eq!(
        r.problems_by_path(),
        expected_problems(&[("DCIM/Camera/Été 日本.jpg", StatusJson::Corrupt)])
    );
}

#[test]
fn image_written_through_the_library_verifies_and_stays_clean() {
    let files = sample_files();
    let t = TempDir::new().unwrap();
    let img = t.path().join("card.img");
    sdexport()
        .arg("format")
        .arg(&img)
        .args(["--size", "64M", "--mbr"])
        .assert()
        .success();
    {
        let mut card = open_card(
            &img,
            CardOptions {
                partition: None,
                write: true,
            },
        )
        .unwrap();
        let v = card.volume.as_mut();
        for (p, b) in &files {
            v.create_dir_all(sdexport::storage::parent(p)).unwrap();
            let mut sink = v.create_new(p).unwrap();
            std::io::Write::write_all(&mut sink, b).unwrap();
            sink.finish(None).unwrap();
        }
        manifest::save(v, &manifest_of(&files)).unwrap();
        v.sync().unwrap();
    }
    let (code, r) = verify_json(&img, &["--partition", "1"]);
    assert_eq!(code, 0, "{r:?}");
    assert_eq!(r.summary.ok, 6);
    let (code, _) = verify_json(&img, &[]);
    assert_eq!(code, 0);
}

// ---------------------------------------------------------------- --against

/// The phone's DCIM as it was: the same photos in another layout, plus the junk a phone
/// carries that sdexport does not copy.
fn phone_dcim(files: &[(&str, Vec<u8>)]) -> TempDir {
    let t = TempDir::new().unwrap();
    for (p, b) in files {
        if let Some(rest) = p.strip_prefix("DCIM/") {
            let h = t.path().join("phone-dcim").join(rest.replace('/', "_"));
            fs::create_dir_all(h.parent().unwrap()).unwrap();
            fs::write(h, b).unwrap();
        }
    }
    let junk = t.path().join("phone-dcim");
    fs::create_dir_all(junk.join(".thumbnails")).unwrap();
    fs::write(junk.join(".thumbnails/1700000000123.jpg"), b"thumb").unwrap();
    fs::write(junk.join(".thumbnails/.nomedia"), b"").unwrap();
    fs::write(junk.join(".trashed-1733000000-IMG_0001.jpg"), b"trash").unwrap();
    fs::write(junk.join(".pending-1733000000-VID_0002.mp4"), b"pend").unwrap();
    fs::write(junk.join("being-written.jpg"), b"").unwrap();
    t
}

#[test]
fn against_a_folder_whose_files_are_all_on_the_card_exits_0() {
    let files = sample_files();
    let card = dir_card(&files);
    let phone = phone_dcim(&files);
    let dcim = phone.path().join("phone-dcim");
    let run = verify(card.path(), &["--against", dcim.to_str().unwrap()]);
    assert_code(&run, 0);
    assert!(
        run.stdout.contains("all 5 file(s) are safely on the card"),
        "{}",
        run.stdout
    );

    let (code, r) = verify_json(card.path(), &["--against", dcim.to_str().unwrap()]);
    assert_eq!(code, 0);
    let a = r.against.unwrap();
    assert_eq!((a.files, a.found), (5, 5));
    assert!(a.not_on_card.is_empty());
    let f = a
        .found_files
        .iter()
        .find(|f| f.path == "Camera_VID_0003.mp4")
        .unwrap();
    assert_eq!(f.card_path, "DCIM/Camera/VID_0003.mp4");
    let skipped: Vec<&str> = a.skipped.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(
        skipped,
        vec![
            ".pending-1733000000-VID_0002.mp4",
            ".thumbnails",
            ".trashed-1733000000-IMG_0001.jpg",
            "being-written.jpg"
        ]
    );
}

#[test]
fn against_lists_exactly_the_file_removed_from_the_card() {
    let files = sample_files();
    let card = dir_card(&files);
    let phone = phone_dcim(&files);
    let dcim = phone.path().join("phone-dcim");
    fs::remove_file(card.path().join("DCIM/Camera/IMG_0002.JPG")).unwrap();

    let run = verify(card.path(), &["--against", dcim.to_str().unwrap()]);
    assert_code(&run, 1);
    assert!(run
        .stdout
        .contains("1 of 5 file(s) are NOT safely on the card"));
    assert!(
        run.stdout
            .contains("  Camera_IMG_0002.JPG: not on the card (12.1 KiB, sha256 "),
        "{}",
        run.stdout
    );

    let (code, r) = verify_json(card.path(), &["--against", dcim.to_str().unwrap()]);
    assert_eq!(code, 1);
    let a = r.against.unwrap();
    assert_eq!(a.found, 4);
    assert_eq!(a.not_on_card.len(), 1);
    assert_eq!(a.not_on_card[0].path, "Camera_IMG_0002.JPG");
    assert_eq!(a.not_on_card[0].size, 12_345);
    assert_eq!(
        a.not_on_card[0].sha256.as_deref(),
        Some(sha(&files[1].1).as_str())
    );
}

#[test]
fn against_does_not_count_a_corrupt_copy_as_safe() {
    let files = sample_files();
    let card = dir_card(&files);
    let phone = phone_dcim(&files);
    let dcim = phone.path().join("phone-dcim");
    flip_byte(&card.path().join("DCIM/100ANDRO/DSC_0004.JPG"), 7);
    // An unlisted file with the right content does not count either: only verified ones.
    fs::write(card.path().join("DCIM/copy.jpg"), &files[3].1).unwrap();
    let (code, r) = verify_json(card.path(), &["--against", dcim.to_str().unwrap()]);
    assert_eq!(code, 1);
    let a = r.against.unwrap();
    let missing: Vec<&str> = a.not_on_card.iter().map(|n| n.path.as_str()).collect();
    assert_eq!(missing, vec!["100ANDRO_DSC_0004.JPG"]);
}

#[test]
fn against_an_image_and_on_an_image() {
    let files = sample_files();
    let Some((_t, img)) = image_card(&files, Mkfs::Ours, false) else {
        return;
    };
    // The card image against a folder, then a directory card against the image.
    let phone = phone_dcim(&files);
    let dcim = phone.path().join("phone-dcim");
    let (code, r) = verify_json(&img, &["--against", dcim.to_str().unwrap()]);
    assert_eq!(code, 0, "{:?}", r.against);

    let card = dir_card(&files[..3]);
    let (code, r) = verify_json(card.path(), &["--against", img.to_str().unwrap()]);
    assert_eq!(code, 1);
    let a = r.against.unwrap();
    let mut missing: Vec<&str> = a.not_on_card.iter().map(|n| n.path.as_str()).collect();
    missing.sort();
    // The image's own SHA256SUMS and .sdexport/ are not the user's files.
    assert_eq!(
        missing,
        vec![
            "DCIM/100ANDRO/DSC_0004.JPG",
            "DCIM/Camera/Été 日本.jpg",
            "contacts.vcf"
        ]
    );
    assert_eq!(a.found, 3);
}

#[test]
fn against_an_image_after_mdel_lists_that_file() {
    let files = sample_files();
    let Some((_t, img)) = image_card(&files, Mkfs::Ours, false) else {
        return;
    };
    tool(
        "mdel",
        &["-i", img.to_str().unwrap(), "::/DCIM/Camera/VID_0003.mp4"],
    );
    let phone = phone_dcim(&files);
    let dcim = phone.path().join("phone-dcim");
    let (code, r) = verify_json(&img, &["--against", dcim.to_str().unwrap()]);
    assert_eq!(code, 1);
    let a = r.against.unwrap();
    let missing: Vec<&str> = a.not_on_card.iter().map(|n| n.path.as_str()).collect();
    assert_eq!(missing, vec!["Camera_VID_0003.mp4"]);
}

#[test]
fn against_a_missing_folder_exits_2() {
    let card = dir_card(&sample_files());
    let run = verify(card.path(), &["--against", "/nonexistent/sdexport-test"]);
    assert_code(&run, 2);
    assert!(
        run.stderr.contains("/nonexistent/sdexport-test"),
        "{}",
        run.stderr
    );
}

// ---------------------------------------------------------------- cannot run

#[test]
fn no_manifest_exits_2_and_says_what_to_do() {
    let t = TempDir::new().unwrap();
    fs::create_dir_all(t.path().join("DCIM")).unwrap();
    fs::write(t.path().join("DCIM/a.jpg"), b"a").unwrap();
    let run = verify(t.path(), &[]);
    assert_code(&run, 2);
    assert!(
        run.stderr.contains("no sdexport manifest was found"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("sdexport photos PHONE --to CARD"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty());

    let run = verify(t.path(), &["--json"]);
    assert_code(&run, 2);
    let doc: ErrorDoc = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc.schema, 1);
    assert_eq!(doc.error.exit_code, 2);
    assert!(doc.error.message.contains("no sdexport manifest was found"));
}

#[test]
fn empty_image_without_manifest_exits_2() {
    let t = TempDir::new().unwrap();
    let img = t.path().join("empty.img");
    sdexport()
        .arg("format")
        .arg(&img)
        .args(["--size", "64M"])
        .assert()
        .success();
    let run = verify(&img, &[]);
    assert_code(&run, 2);
    assert!(run.stderr.contains("no sdexport manifest was found"));
}

#[test]
fn random_bytes_and_truncated_images_exit_2_without_panic() {
    let t = TempDir::new().unwrap();
    let cases = [
        ("random.img", pseudo_random(42, 4 << 20)),
        ("zero.img", vec![0u8; 1 << 20]),
        ("empty.img", Vec::new()),
        ("tiny.img", b"not a card".to_vec()),
    ];
    for (name, bytes) in cases {
        let p = t.path().join(name);
        fs::write(&p, bytes).unwrap();
        let run = verify(&p, &[]);
        assert_code(&run, 2);
        assert!(
            run.stderr.starts_with("sdexport: error:"),
            "{name}: {}",
            run.stderr
        );
        let run = verify(&p, &["--json"]);
        assert_code(&run, 2);
        serde_json::from_str::<ErrorDoc>(&run.stdout).unwrap();
    }
    // A real card cut short: whatever it says, never a panic, never "all ok" silently.
    let files = sample_files();
    let card = t.path().join("cut.img");
    sdexport()
        .arg("format")
        .arg(&card)
        .args(["--size", "64M"])
        .assert()
        .success();
    {
        let mut c = open_card(
            &card,
            CardOptions {
                partition: None,
                write: true,
            },
        )
        .unwrap();
        let v = c.volume.as_mut();
        for (p, b) in &files {
            v.create_dir_all(sdexport::storage::parent(p)).unwrap();
            let mut sink = v.create_new(p).unwrap();
            std::io::Write::write_all(&mut sink, b).unwrap();
            sink.finish(None).unwrap();
        }
        manifest::save(v, &manifest_of(&files)).unwrap();
        v.sync().unwrap();
    }
    let f = fs::OpenOptions::new().write(true).open(&card).unwrap();
    f.set_len(3 << 20).unwrap();
    let run = verify(&card, &[]);
    assert_ne!(run.code, 0, "{}", run.stdout);
    assert!(run.code == 1 || run.code == 2);
}

// ---------------------------------------------------------------- without sdexport

#[test]
fn directory_card_agrees_with_sha256sum_c() {
    if !have("sha256sum") {
        return;
    }
    let mut files = sample_files();
    // Names beyond the Basic Multilingual Plane and with spaces, as phones make them.
    files.push(("DCIM/Camera/Été_日本_😀 12 30.jpg", pseudo_random(6, 5000)));
    let card = dir_card(&files);
    let root = card.path();
    assert_eq!(sha256sum_c(root), 0);
    assert_eq!(verify(root, &[]).code, 0);

    flip_byte(&root.join("DCIM/Camera/Été_日本_😀 12 30.jpg"), 3000);
    assert_ne!(sha256sum_c(root), 0);
    assert_eq!(verify(root, &[]).code, 1);

    // Put it right: both pass again. Then a missing file: both fail.
    flip_byte(&root.join("DCIM/Camera/Été_日本_😀 12 30.jpg"), 3000);
    assert_eq!(sha256sum_c(root), 0);
    assert_eq!(verify(root, &[]).code, 0);
    fs::remove_file(root.join("contacts.vcf")).unwrap();
    assert_ne!(sha256sum_c(root), 0);
    assert_eq!(verify(root, &[]).code, 1);
}

fn verify_doc() -> String {
    fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/VERIFY.md")).unwrap()
}

#[test]
fn the_linux_command_in_the_docs_checks_a_card() {
    if !have("sha256sum") {
        return;
    }
    let doc = verify_doc();
    let cmd = doc
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("cd ") && l.contains("sha256sum -c SHA256SUMS"))
        .expect("docs/VERIFY.md gives a `cd … && sha256sum -c SHA256SUMS` line");
    let check = cmd.split_once("&&").unwrap().1.trim();
    let card = dir_card(&sample_files());
    let out = Std::new("sh")
        .arg("-c")
        .arg(check)
        .current_dir(card.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{check}: {:?}", out);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).matches(": OK").count(),
        6
    );
    flip_byte(&card.path().join("DCIM/Camera/IMG_0001.JPG"), 1);
    let out = Std::new("sh")
        .arg("-c")
        .arg(check)
        .current_dir(card.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("DCIM/Camera/IMG_0001.JPG: FAILED"));
}

#[test]
fn the_docs_json_example_matches_the_contract() {
    let doc = verify_doc();
    let start = doc.find("```json\n").expect("a ```json example") + "```json\n".len();
    let end = start + doc[start..].find("```").unwrap();
    let r: Report = serde_json::from_str(&doc[start..end]).expect("the example parses");
    assert_eq!(r.schema, 1);
    assert!(r.against.is_some());
    for s in ["Get-FileHash", "shasum -a 256 -c SHA256SUMS", "| 2 |"] {
        assert!(doc.contains(s), "docs/VERIFY.md lacks {s:?}");
    }
}

#[test]
fn help_gives_exit_codes_and_the_no_sdexport_way() {
    let out = sdexport().args(["verify", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("Exit codes: 0 all files ok; 1 problems found"),
        "{help}"
    );
    assert!(help.contains("sha256sum -c SHA256SUMS"));
    assert!(help.contains("--against"));
}

// ---------------------------------------------------------------- hostile or odd input

#[test]
fn a_manifest_path_leaving_the_card_is_never_read() {
    let files = sample_files();
    let outer = TempDir::new().unwrap();
    let root = outer.path().join("card");
    fs::create_dir_all(&root).unwrap();
    for (p, b) in &files {
        let h = root.join(p);
        fs::create_dir_all(h.parent().unwrap()).unwrap();
        fs::write(h, b).unwrap();
    }
    // A file outside the card whose hash the manifest records under `../`.
    fs::write(outer.path().join("secret.jpg"), b"outside").unwrap();
    let mut m = manifest_of(&files);
    m.insert(record("../secret.jpg", b"outside"));
    manifest::save(&mut DirVolume::open(&root).unwrap(), &m).unwrap();
    let (code, r) = verify_json(&root, &[]);
    assert_eq!(code, 1);
    assert_eq!(
        r.problems_by_path(),
        expected_problems(&[("../secret.jpg", StatusJson::Missing)])
    );
    let f = r.files.iter().find(|f| f.path == "../secret.jpg").unwrap();
    assert_eq!(f.actual_sha256, None);
}

#[test]
fn unreadable_manifest_lines_are_a_problem() {
    let files = sample_files();
    let card = dir_card(&files);
    let p = card.path().join(".sdexport/manifest.jsonl");
    let mut text = fs::read_to_string(&p).unwrap();
    text.push_str("{this is not json\n");
    fs::write(&p, text).unwrap();
    let (code, r) = verify_json(card.path(), &[]);
    assert_eq!(code, 1);
    assert_eq!(r.summary.ok, 6);
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    assert!(r.problems[0].contains("line 7"), "{:?}", r.problems);
}

#[test]
fn a_folder_inside_a_card_gets_a_hint() {
    let card = dir_card(&sample_files());
    let run = verify(&card.path().join("DCIM/Camera"), &[]);
    assert_code(&run, 2);
    let root = card.path().canonicalize().unwrap();
    assert!(
        run.stderr.contains(&format!(
            "is inside a card whose root is {}: run `sdexport verify {}`",
            root.display(),
            root.display()
        )),
        "{}",
        run.stderr
    );
}

#[test]
fn against_reads_names_that_are_not_utf8() {
    use std::os::unix::ffi::OsStrExt;
    let files = sample_files();
    let card = dir_card(&files);
    let src = TempDir::new().unwrap();
    let odd = std::ffi::OsStr::from_bytes(b"IMG_\xff\xfe.JPG");
    fs::write(src.path().join(odd), &files[0].1).unwrap();
    let (code, r) = verify_json(card.path(), &["--against", src.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{:?}", r.against);
    let a = r.against.unwrap();
    assert_eq!(a.found, 1);
    assert_eq!(a.found_files[0].path, "IMG_\u{fffd}\u{fffd}.JPG");
    assert_eq!(a.found_files[0].card_path, "DCIM/Camera/IMG_0001.JPG");
}

/// A loop device over an image, detached on drop.
struct Loop(String);
impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Std::new("losetup").args(["-d", &self.0]).status();
    }
}

#[test]
fn block_device_reads_come_from_the_medium() {
    let files = sample_files();
    let Some((_t, img)) = image_card(&files, Mkfs::Ours, false) else {
        return;
    };
    if !have("losetup") {
        return;
    }
    let out = Std::new("losetup")
        .args(["-f", "--show", img.to_str().unwrap()])
        .output()
        .unwrap();
    let dev = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || !dev.starts_with("/dev/") {
        // Not root, or no loop devices in this container: nothing to learn here.
        println!(
            "SKIPPED: losetup refused: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        return;
    }
    let _guard = Loop(dev.clone());
    // Hold the device open so that its page cache survives between the two runs (the
    // kernel drops it on the last close), as it does while a desktop keeps a card open.
    let _holder = fs::File::open(&dev).unwrap();
    let (code, r) = verify_json(Path::new(&dev), &[]);
    assert_eq!(code, 0, "{r:?}");
    assert_eq!(r.summary.ok, 6);
    // Damage the image behind the device's back: the device's cached pages are stale,
    // and verify must read the medium again, not its own earlier reads.
    mtools_flip_byte(&img, "DCIM/Camera/IMG_0002.JPG", 100);
    let (code, r) = verify_json(Path::new(&dev), &[]);
    assert_eq!(code, 1);
    assert_eq!(
        r.problems_by_path(),
        expected_problems(&[("DCIM/Camera/IMG_0002.JPG", StatusJson::Corrupt)])
    );
}

#[test]
fn every_fat_variant_reports_the_same_damage_and_is_never_written() {
    for (bits, size) in [("12", "4M"), ("16", "32M"), ("32", "64M")] {
        let files = sample_files();
        let Some((t, img)) = image_card(&files, Mkfs::OursFat(bits, size), false) else {
            return;
        };
        let i = img.to_str().unwrap();
        mtools_flip_byte(&img, "DCIM/Camera/VID_0003.mp4", 2_000_000);
        tool("mdel", &["-i", i, "::/contacts.vcf"]);
        let stray = t.path().join("stray.jpg");
        fs::write(&stray, b"stray").unwrap();
        tool(
            "mcopy",
            &[
                "-i",
                i,
                stray.to_str().unwrap(),
                "::/DCIM/100ANDRO/stray.jpg",
            ],
        );
        let before = sha(&fs::read(&img).unwrap());
        let (code, r) = verify_json(&img, &[]);
        assert_eq!(code, 1, "FAT{bits}");
        assert_eq!(
            r.problems_by_path(),
            expected_problems(&[
                ("DCIM/100ANDRO/stray.jpg", StatusJson::Unknown),
                ("DCIM/Camera/VID_0003.mp4", StatusJson::Corrupt),
                ("contacts.vcf", StatusJson::Missing),
            ]),
            "FAT{bits}"
        );
        assert_eq!(r.summary.ok, 4, "FAT{bits}");
        let staging = t.path().join("staging");
        verify(&img, &["--against", staging.to_str().unwrap()]);
        assert_eq!(
            sha(&fs::read(&img).unwrap()),
            before,
            "FAT{bits}: verify changed the image"
        );
        if have("fsck.fat") {
            tool("fsck.fat", &["-n", i]);
        }
    }
}

#[test]
fn a_closed_pipe_is_not_a_panic() {
    let mut files = sample_files();
    // Far more output than a pipe buffer (64 KiB) holds, so that writes do hit the
    // closed pipe.
    for n in 0..1500 {
        files.push((
            Box::leak(format!("DCIM/Many/IMG_{n:04}.JPG").into_boxed_str()),
            pseudo_random(100 + n, 16),
        ));
    }
    let card = dir_card(&files);
    let bin = assert_cmd::cargo::cargo_bin("sdexport");
    for args in ["-v", "--json"] {
        let out = Std::new("sh")
            .arg("-c")
            .arg(format!(
                "'{}' --no-progress verify {args} '{}' | head -1",
                bin.display(),
                card.path().display()
            ))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args}: {stderr}");
        assert!(!stderr.contains("Broken pipe"), "{args}: {stderr}");
    }
}

/// The whole human report, as a golden text: wording changes show up here for review.
#[test]
fn the_human_report_reads_as_documented() {
    let files = sample_files();
    let card = dir_card(&files);
    let root = card.path();
    flip_byte(&root.join("DCIM/Camera/IMG_0001.JPG"), 5000);
    fs::remove_file(root.join("DCIM/Camera/IMG_0002.JPG")).unwrap();
    fs::write(root.join("DCIM/stray.jpg"), b"stray\n").unwrap();
    let phone = phone_dcim(&files);
    let dcim = phone.path().join("phone-dcim");
    let run = verify(root, &["--against", dcim.to_str().unwrap()]);
    assert_code(&run, 1);
    let (_, r) = verify_json(root, &[]);
    let got = run
        .stdout
        .replace(&r.volume, "CARD")
        .replace(dcim.to_str().unwrap(), "PHONE");
    let h = |b: &[u8]| sha(b)[..12].to_string();
    let mut flipped = files[0].1.clone();
    flipped[5000] ^= 0x55;
    let want = format!(
        "\
Problems:
  DCIM/Camera/IMG_0001.JPG: corrupt (expected sha256 {}…, found {}…)
  DCIM/Camera/IMG_0002.JPG: missing (listed in the manifest, not on the card)
  DCIM/stray.jpg: unknown (not in the manifest, 6 B)
Checked 6 file(s), 2.5 MiB read back from CARD against its manifest (.sdexport/manifest.jsonl):
  4 ok, 1 missing, 1 corrupt, 0 size-changed, 1 unknown

Against PHONE: 2 of 5 file(s) are NOT safely on the card (no verified file on the card has their content):
  Camera_IMG_0001.JPG: not on the card (68.4 KiB, sha256 {}…)
  Camera_IMG_0002.JPG: not on the card (12.1 KiB, sha256 {}…)
  (4 hidden, system or empty item(s) skipped: sdexport does not copy them; -v lists them)

Result: problems found.
  Missing, corrupt and size-changed files are not safely on this card: copy them again from the phone or another copy (`sdexport photos PHONE --to CARD`). If files keep turning corrupt, the card may be failing or counterfeit.
  Unknown files were put on the card by something other than sdexport (or by a run that did not finish): they were not checked. If they matter, copy them with sdexport so that the manifest covers them.
  Keep the originals of the files not on the card, and copy them with `sdexport photos`.
",
        h(&files[0].1),
        h(&flipped),
        h(&files[0].1),
        h(&files[1].1),
    );
    assert_eq!(got, want);
}

/// Damage the file system itself (boot sector, FATs, directories, data) at random:
/// verify answers 0, 1 or 2 with one JSON document, and never panics or hangs.
#[test]
fn randomly_damaged_file_systems_never_panic() {
    let files = sample_files();
    for (bits, size, rounds) in [("12", "4M", 12u64), ("32", "64M", 6)] {
        let Some((t, img)) = image_card(&files, Mkfs::OursFat(bits, size), false) else {
            return;
        };
        let base = fs::read(&img).unwrap();
        for seed in 0..rounds {
            let noise = pseudo_random(1000 + seed, 4096);
            let mut bytes = base.clone();
            // Mostly the first MiB (boot sector, FATs, root and DCIM directories).
            let hits = [1usize, 8, 64][seed as usize % 3];
            for k in 0..hits {
                let r = u64::from_le_bytes(noise[k * 8..k * 8 + 8].try_into().unwrap());
                let span = if k % 4 == 3 { bytes.len() } else { 1 << 20 };
                let off = (r as usize) % (span - 64);
                let len = [1usize, 4, 32, 64][k % 4];
                bytes[off..off + len].copy_from_slice(&noise[2048..2048 + len]);
            }
            let damaged = t.path().join(format!("damaged-{seed}.img"));
            fs::write(&damaged, &bytes).unwrap();
            let run = verify(&damaged, &["--json"]);
            assert!(
                [0, 1, 2].contains(&run.code),
                "FAT{bits} seed {seed}: exit {}\n{}",
                run.code,
                run.stderr
            );
            if run.code != 2 {
                serde_json::from_str::<Report>(&run.stdout).unwrap_or_else(|e| {
                    panic!("FAT{bits} seed {seed}: not JSON ({e}): {}", run.stdout)
                });
            }
            fs::remove_file(&damaged).unwrap();
        }
    }
}
