//! `sdexport verify CARD [--json] [--against DIR]`: read every file of the card's manifest
//! back and report ok / missing / corrupt / size-changed / unknown (docs/VERIFY.md).

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::Result;
use sdexport::manifest;
use sdexport::verify::{self, FileCheck, Status as FileStatus, VerifyReport};

use super::open;
use crate::cli::VerifyArgs;
use crate::output::{escape, human_bytes, Output, Status};

pub fn run(a: VerifyArgs, out: &Output) -> Result<Status> {
    match run_inner(&a, out) {
        Ok(status) => Ok(status),
        Err(err) => {
            if a.json {
                // `--json` promises one document on stdout, also when nothing could be
                // checked; the message goes to stderr as well, from main.
                let doc = serde_json::json!({
                    "schema": verify::SCHEMA,
                    "card": a.card.display().to_string(),
                    "error": { "message": format!("{err:#}"), "exit_code": Status::Failed as u8 },
                });
                let mut w = io::stdout().lock();
                let _ = serde_json::to_writer_pretty(&mut w, &doc);
                let _ = writeln!(w);
            }
            Err(err)
        }
    }
}

fn run_inner(a: &VerifyArgs, out: &Output) -> Result<Status> {
    let card_name = a.card.display().to_string();
    let mut card = open(&a.card, a.partition.partition, false, "card", out)?;
    let vol = card.volume.as_mut();
    let manifest = match verify::load_manifest(vol, &card_name) {
        Ok(m) => m,
        Err(e @ verify::VerifyError::NoManifest { .. }) => match enclosing_card(&a.card) {
            Some(root) => anyhow::bail!(
                "{e}\n  {} is inside a card whose root is {}: run `sdexport verify {}`",
                a.card.display(),
                root.display(),
                root.display()
            ),
            None => return Err(e.into()),
        },
        Err(e) => return Err(e.into()),
    };

    let bar = out.bytes_bar(manifest.info.bytes, "verify");
    let mut report = verify::verify_card(vol, &manifest, &card_name, &mut |n| bar.inc(n));
    bar.finish_and_clear();

    if let Some(dir) = &a.against {
        let source = verify::scan_source(dir)?;
        let bar = out.bytes_bar(source.total_bytes(), "against");
        verify::check_against(&mut report, source, &mut |n| bar.inc(n));
        bar.finish_and_clear();
    }

    if a.json {
        // Serialised first: a closed pipe must reach main as an io::Error (a clean exit).
        let text = serde_json::to_string_pretty(&report)?;
        writeln!(io::stdout().lock(), "{text}")?;
    } else {
        print_report(&report, out)?;
    }
    Ok(if report.is_clean() {
        Status::Done
    } else {
        Status::Incomplete
    })
}

/// For a folder without a manifest: the nearest enclosing folder that has one (the user
/// gave `/media/card/DCIM` instead of `/media/card`).
fn enclosing_card(card: &Path) -> Option<PathBuf> {
    if !card.is_dir() {
        return None;
    }
    let abs = card.canonicalize().ok()?;
    abs.ancestors().skip(1).take(4).find_map(|dir| {
        let has =
            dir.join(manifest::SUMS_PATH).is_file() || dir.join(manifest::MANIFEST_PATH).is_file();
        has.then(|| dir.to_path_buf())
    })
}

/// The report's lines on stdout (locked, so a closed pipe is an error to return rather
/// than a panic); `say` lines are hidden by `--quiet`, `always` lines are not.
struct Lines {
    w: io::StdoutLock<'static>,
    quiet: bool,
}

impl Lines {
    fn say(&mut self, line: &str) -> io::Result<()> {
        if self.quiet {
            return Ok(());
        }
        writeln!(self.w, "{line}")
    }
    fn always(&mut self, line: &str) -> io::Result<()> {
        writeln!(self.w, "{line}")
    }
}

/// One problem line: `DCIM/Camera/IMG_1.JPG: corrupt (expected sha256 ab12…, found 9f3c…)`.
fn problem_line(f: &FileCheck, verbose: bool) -> String {
    let hash = |h: &Option<String>| match h {
        Some(h) if verbose => h.clone(),
        Some(h) => verify::short(h),
        None => "?".into(),
    };
    let detail = match f.status {
        FileStatus::Ok => format!("sha256 {}", hash(&f.actual_sha256)),
        FileStatus::Missing => match &f.error {
            Some(e) => format!("listed in the manifest, not on the card: {e}"),
            None => "listed in the manifest, not on the card".into(),
        },
        FileStatus::Corrupt => match &f.error {
            Some(e) => e.clone(),
            None => format!(
                "expected sha256 {}, found {}",
                hash(&f.expected_sha256),
                hash(&f.actual_sha256)
            ),
        },
        FileStatus::SizeChanged => format!(
            "expected {} bytes, found {}",
            f.expected_size.unwrap_or_default(),
            f.actual_size.unwrap_or_default()
        ),
        FileStatus::Unknown => format!(
            "not in the manifest, {}",
            human_bytes(f.actual_size.unwrap_or_default())
        ),
    };
    format!("{}: {} ({detail})", escape(&f.path), f.status.label())
}

fn print_report(r: &VerifyReport, out: &Output) -> io::Result<()> {
    let mut p = Lines {
        w: io::stdout().lock(),
        quiet: out.quiet,
    };
    let s = &r.summary;
    for n in &r.notes {
        out.warn(n);
    }
    if out.verbose {
        for f in r.files.iter().filter(|f| f.status == FileStatus::Ok) {
            p.say(&problem_line(f, true))?;
        }
    }
    let problems: Vec<&FileCheck> = r.file_problems().collect();
    if !problems.is_empty() || !r.problems.is_empty() {
        p.say(&out.heading("Problems:"))?;
        // Problem lines are the result a user acts on: printed even with --quiet.
        for f in &problems {
            p.always(&format!("  {}", problem_line(f, out.verbose)))?;
        }
        for problem in &r.problems {
            p.always(&format!("  {}", escape(problem)))?;
        }
    }

    p.say(&format!(
        "Checked {} file(s), {} read back from {} against its manifest ({}):",
        s.checked_files,
        human_bytes(s.checked_bytes),
        escape(&r.volume),
        match r.manifest.source {
            verify::ManifestSource::Jsonl => ".sdexport/manifest.jsonl",
            verify::ManifestSource::Sha256Sums => "SHA256SUMS",
        }
    ))?;
    p.say(&format!(
        "  {} ok, {} missing, {} corrupt, {} size-changed, {} unknown",
        s.ok, s.missing, s.corrupt, s.size_changed, s.unknown
    ))?;

    if let Some(ag) = &r.against {
        p.say("")?;
        if out.verbose {
            for f in &ag.found_files {
                p.say(&format!(
                    "  {}: on the card as {}",
                    escape(&f.path),
                    escape(&f.card_path)
                ))?;
            }
            for k in &ag.skipped {
                p.say(&format!("  {}: skipped ({})", escape(&k.path), k.reason))?;
            }
        }
        if ag.not_on_card.is_empty() {
            p.say(&format!(
                "Against {}: all {} file(s) are safely on the card (matched by content to verified files).",
                escape(&ag.dir),
                ag.files
            ))?;
        } else {
            p.say(&format!(
                "Against {}: {} of {} file(s) are NOT safely on the card (no verified file on the card has their content):",
                escape(&ag.dir),
                ag.not_on_card.len(),
                ag.files
            ))?;
            for n in &ag.not_on_card {
                let what = match (&n.sha256, &n.error) {
                    (_, Some(e)) => e.clone(),
                    (Some(h), None) => format!(
                        "{}, sha256 {}",
                        human_bytes(n.size),
                        if out.verbose {
                            h.clone()
                        } else {
                            verify::short(h)
                        }
                    ),
                    (None, None) => human_bytes(n.size),
                };
                p.always(&format!("  {}: not on the card ({what})", escape(&n.path)))?;
            }
        }
        if !ag.skipped.is_empty() && !out.verbose {
            p.say(&format!(
                "  ({} hidden, system or empty item(s) skipped: sdexport does not copy them; -v lists them)",
                ag.skipped.len()
            ))?;
        }
    }

    p.say("")?;
    if r.is_clean() {
        let against = match &r.against {
            Some(a) => format!(
                ", and all {} file(s) of {} are on the card",
                a.files,
                escape(&a.dir)
            ),
            None => String::new(),
        };
        p.say(&out.good(&format!(
            "Result: all {} file(s) on the card are intact{against}.",
            s.ok
        )))?;
        return Ok(());
    }
    p.say(&out.bad("Result: problems found."))?;
    if s.missing + s.corrupt + s.size_changed > 0 {
        p.say("  Missing, corrupt and size-changed files are not safely on this card: copy them again from the phone or another copy (`sdexport photos PHONE --to CARD`). If files keep turning corrupt, the card may be failing or counterfeit.")?;
    }
    if s.unknown > 0 {
        p.say("  Unknown files were put on the card by something other than sdexport (or by a run that did not finish): they were not checked. If they matter, copy them with sdexport so that the manifest covers them.")?;
    }
    if r.against
        .as_ref()
        .is_some_and(|a| !a.not_on_card.is_empty())
    {
        p.say("  Keep the originals of the files not on the card, and copy them with `sdexport photos`.")?;
    }
    Ok(())
}
