//! `sdexport photos`: the verified copy or move of DCIM.

use anyhow::{Context, Result};
use indicatif::ProgressBar;
use sdexport::transfer::{self, PhotoOptions, PhotosReport, Progress, Status as FileStatus};

use crate::cli::{self, PhotosArgs};
use crate::output::{escape, human_bytes, Output, Status};

/// Progress through an indicatif bar (hidden when stderr is not a terminal).
pub struct Bar<'a> {
    out: &'a Output,
    bar: Option<ProgressBar>,
}

impl<'a> Bar<'a> {
    pub fn new(out: &'a Output) -> Self {
        Bar { out, bar: None }
    }
}

impl Progress for Bar<'_> {
    fn phase(&mut self, name: &str, total: u64) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
        self.bar = Some(self.out.bytes_bar(total, name));
    }
    fn advance(&mut self, bytes: u64) {
        if let Some(b) = &self.bar {
            b.inc(bytes);
        }
    }
}

impl Drop for Bar<'_> {
    fn drop(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

pub fn options(o: &cli::PhotoOptions) -> PhotoOptions {
    PhotoOptions {
        move_files: o.move_files,
        layout: match o.layout {
            cli::LayoutArg::Keep => sdexport::media::Layout::Keep,
            cli::LayoutArg::Date => sdexport::media::Layout::Date,
        },
        include: o.include.clone(),
        all_files: o.all_files,
        dry_run: o.dry_run,
        batch_bytes: o.batch.unwrap_or(u64::MAX),
        cache_bytes: o.card_cache,
        ..PhotoOptions::default()
    }
}

pub fn run(a: PhotosArgs, out: &Output) -> Result<Status> {
    let opts = options(&a.options);
    let mut phone = super::open(
        &a.phone,
        None,
        opts.move_files && !opts.dry_run,
        "phone",
        out,
    )?;
    let mut card = super::open(&a.to, a.partition, !opts.dry_run, "card", out)?;
    let mut bar = Bar::new(out);
    let report = transfer::run_photos(phone.volume.as_mut(), card.volume.as_mut(), &opts, &mut bar)
        .with_context(|| format!("photos from {} to {}", a.phone.display(), a.to.display()))?;
    drop(bar);
    card.volume.sync().context("final flush of the card")?;
    if a.options.json {
        crate::output::print_json(&report)?;
    } else {
        print_report(&report, out);
    }
    Ok(if report.complete() {
        Status::Done
    } else {
        Status::Incomplete
    })
}

pub fn print_report(r: &PhotosReport, out: &Output) {
    if r.dry_run {
        out.say(&out.heading("Plan (dry run: nothing written, nothing removed)"));
        for f in &r.files {
            let what = match f.status {
                FileStatus::Failed => format!(
                    "SKIP  {}  ({})",
                    escape(&f.source),
                    f.reason.clone().unwrap_or_default()
                ),
                _ => format!(
                    "COPY  {} -> {}",
                    escape(&f.source),
                    escape(f.destination.as_deref().unwrap_or("?"))
                ),
            };
            out.say(&what);
        }
        for s in &r.skipped {
            if out.verbose {
                out.say(&format!("LEAVE {}  ({})", escape(&s.path), s.reason));
            }
        }
        out.say(&format!(
            "{} files, {} needed on the card, {} free",
            r.files.len(),
            human_bytes(r.bytes_needed),
            human_bytes(r.free_bytes_before)
        ));
        return;
    }
    if out.verbose {
        for f in &r.files {
            out.say(&format!(
                "{:<15} {} -> {}{}",
                match f.status {
                    FileStatus::Copied => "copied",
                    FileStatus::AlreadyOnCard => "already on card",
                    FileStatus::Failed => "FAILED",
                    FileStatus::Planned => "planned",
                },
                escape(&f.source),
                escape(f.destination.as_deref().unwrap_or("-")),
                if f.removed { " (original removed)" } else { "" }
            ));
        }
    }
    let copied = r.count(FileStatus::Copied);
    let there = r.count(FileStatus::AlreadyOnCard);
    let failed = r.count(FileStatus::Failed);
    out.say(&out.heading("Summary"));
    out.say(&format!(
        "  copied and verified:  {copied} ({})",
        human_bytes(r.bytes_copied)
    ));
    out.say(&format!("  already on card:      {there}"));
    if r.moved {
        out.say(&format!("  originals removed:    {}", r.removed()));
    }
    let skipped = transfer::skipped_by_reason(&r.skipped);
    let nskipped: usize = skipped.iter().map(|(_, n)| n).sum();
    out.say(&format!(
        "  left on the phone:    {nskipped} (not photos/videos or junk)"
    ));
    for (reason, n) in skipped {
        out.say(&format!("      {n:>5}  {reason}"));
    }
    if failed > 0 {
        out.say(&format!(
            "  {}",
            out.bad(&format!(
                "failed:               {failed} (the originals are still on the phone)"
            ))
        ));
    }
    for f in r.files.iter().filter(|f| f.status == FileStatus::Failed) {
        out.warn(&format!(
            "{}: {}",
            f.source,
            f.reason.clone().unwrap_or_default()
        ));
    }
    for f in r
        .files
        .iter()
        .filter(|f| f.status != FileStatus::Failed && r.moved && !f.removed)
    {
        if let Some(why) = &f.reason {
            out.warn(&format!("{}: {why}", f.source));
        }
    }
    for w in &r.warnings {
        out.warn(w);
    }
}
