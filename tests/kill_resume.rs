//! Kill -9 and resume, on the real binary.
//!
//! 300 random photos of 100–400 KB are moved into a FAT32 image made by `mkfs.fat`. The
//! duration of a whole run is measured first; then the binary is killed with SIGKILL at
//! 10 moments spread over that duration — in 5 scenarios, each a fresh start killed at one
//! moment, then a resumed run killed at a later moment (so recovery itself is interrupted
//! too), then re-runs until the command succeeds.
//!
//! Invariants, judged with mtools and dosfstools only:
//! - after every kill: every original is on the phone or its exact content is on the card;
//! - at the end of each scenario: `fsck.fat -n` is clean, each photo is on the card exactly
//!   once, the phone is empty, and no temporary file exists outside `.sdexport/`.

mod support_hardening;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support_hardening::*;

const BIN: &str = env!("CARGO_BIN_EXE_sdexport");

fn mkfs(img: &Path) {
    let _ = fs::remove_file(img);
    let o = Command::new("mkfs.fat")
        .args(["-F", "32", "-C"])
        .arg(img)
        .arg("262144")
        .output()
        .expect("mkfs.fat");
    assert!(o.status.success(), "mkfs.fat: {o:?}");
}

fn command(phone: &Path, img: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.arg("photos")
        .arg(phone)
        .arg("--to")
        .arg(img)
        .arg("--move")
        .env("TZ", "UTC")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Run to completion; returns (exit code, output).
fn run_to_end(phone: &Path, img: &Path) -> (i32, String) {
    let o = command(phone, img).output().expect("start sdexport");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!text.contains("panicked at"), "sdexport panicked:\n{text}");
    (o.status.code().unwrap_or(-1), text)
}

/// Start and SIGKILL after `after`; `true` if it was still running when killed.
fn run_and_kill(phone: &Path, img: &Path, after: Duration) -> bool {
    let mut child = command(phone, img)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start sdexport");
    let start = Instant::now();
    loop {
        if let Some(_status) = child.try_wait().unwrap() {
            return false;
        }
        if start.elapsed() >= after {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    true
}

struct Counts {
    kills: usize,
    lost: usize,
    fsck_failures: usize,
    problems: Vec<String>,
}

fn check_no_loss(
    label: &str,
    originals: &BTreeMap<String, String>,
    phone: &Path,
    img: &Path,
    work: &Path,
    counts: &mut Counts,
) -> BTreeMap<String, String> {
    let card = mtools_hashes(img, work);
    let lost = lost_originals(originals, phone, &card);
    if !lost.is_empty() {
        counts.lost += lost.len();
        counts
            .problems
            .push(format!("{label}: ORIGINALS LOST: {lost:?}"));
    }
    card
}

#[test]
fn kill_at_ten_moments_and_resume() {
    if !oracle(&["mcopy", "mkfs.fat", "fsck.fat"]) {
        return;
    }
    let tmp = scratch("kill");
    let work = tmp.path();
    let template = work.join("phone-template");
    let originals = make_phone(&template, 0x5EED, 300, 100_000, 400_000, false);
    let phone = work.join("phone");
    let img = work.join("card.img");

    // Measure one whole run.
    copy_tree(&template, &phone);
    mkfs(&img);
    let t0 = Instant::now();
    let (rc, out) = run_to_end(&phone, &img);
    let full = t0.elapsed();
    assert_eq!(rc, 0, "the reference run fails:\n{out}");
    assert!(
        hash_tree(&phone).is_empty(),
        "the reference run left originals"
    );
    eprintln!("kill/resume: a whole run takes {:.2} s", full.as_secs_f64());

    let mut counts = Counts {
        kills: 0,
        lost: 0,
        fsck_failures: 0,
        problems: Vec::new(),
    };
    // Ten moments spread over the first 90 % of a run, each on a fresh phone and card, so
    // that every kill lands inside a run even when a resumed run is much faster than a
    // fresh one (it finds most photos already on the card).
    let moments: Vec<Duration> = (0..10)
        .map(|i| full.mul_f64(0.9 * (i as f64 + 0.5) / 10.0))
        .collect();
    for (scenario, &at) in moments.iter().enumerate() {
        let _ = fs::remove_dir_all(&phone);
        copy_tree(&template, &phone);
        mkfs(&img);
        {
            let killed = run_and_kill(&phone, &img, at);
            let label = format!(
                "scenario {scenario}, kill at {:.0} ms ({})",
                at.as_secs_f64() * 1000.0,
                if killed { "killed" } else { "had finished" }
            );
            if killed {
                counts.kills += 1;
            }
            check_no_loss(&label, &originals, &phone, &img, work, &mut counts);
        }
        // Re-run until done.
        let mut done = false;
        for attempt in 0..4 {
            let (rc, out) = run_to_end(&phone, &img);
            let label = format!("scenario {scenario}, re-run {attempt}");
            check_no_loss(&label, &originals, &phone, &img, work, &mut counts);
            if rc == 0 {
                done = true;
                break;
            }
            eprintln!("{label}: exit {rc}: {}", out.lines().last().unwrap_or(""));
        }
        let label = format!("scenario {scenario}, final");
        if !done {
            counts.problems.push(format!(
                "{label}: the command never succeeded after 4 re-runs"
            ));
        }
        let card = check_no_loss(&label, &originals, &phone, &img, work, &mut counts);
        if let Err(e) = fsck_clean(&img) {
            counts.fsck_failures += 1;
            let first: Vec<&str> = e.lines().filter(|l| !l.trim().is_empty()).take(6).collect();
            counts
                .problems
                .push(format!("{label}: fsck.fat -n: {}", first.join(" | ")));
        }
        let twice = not_exactly_once(&originals, &card);
        if !twice.is_empty() {
            counts.problems.push(format!(
                "{label}: {} photos not exactly once on the card: {:?}",
                twice.len(),
                &twice[..twice.len().min(5)]
            ));
        }
        let left = hash_tree(&phone).len();
        if left != 0 {
            counts
                .problems
                .push(format!("{label}: {left} originals left on the phone"));
        }
        let stray: Vec<String> = user_files(&card)
            .into_keys()
            .filter(|p| !p.starts_with("DCIM/"))
            .collect();
        let temp_like: Vec<&String> = card
            .keys()
            .filter(|p| !p.starts_with(".sdexport/"))
            .filter(|p| {
                let l = p.to_lowercase();
                l.contains("tmp")
                    || l.contains("temp")
                    || l.contains("partial")
                    || l.ends_with('~')
                    || l.ends_with(".new")
            })
            .collect();
        if !temp_like.is_empty() || !stray.is_empty() {
            counts.problems.push(format!(
                "{label}: temporary or stray files outside .sdexport/: {temp_like:?} {stray:?}"
            ));
        }
    }
    for p in &counts.problems {
        eprintln!("  PROBLEM {p}");
    }
    eprintln!(
        "kill/resume: kills: {}, originals lost: {}, fsck failures: {}, problems: {}",
        counts.kills,
        counts.lost,
        counts.fsck_failures,
        counts.problems.len()
    );
    assert!(counts.kills >= 8, "too few kills landed inside a run");
    assert_eq!(counts.lost, 0);
    assert!(counts.problems.is_empty(), "{:?}", counts.problems);
}
