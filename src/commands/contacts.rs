//! `sdexport contacts`: one clean .vcf on the card from every export given.

use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context, Result};
use sdexport::contacts::{ExportOptions, VcardVersion};
use sdexport::transfer::contacts::{find_exports, write_contacts, ContactsReport, VcfOutcome};
use sdexport::transfer::new_run_id;

use crate::cli::ContactsArgs;
use crate::commands::open;
use crate::output::{escape, Output, Status};

/// Read the exports named on the command line: files as they are, folders, images and
/// devices searched for .vcf/.csv files.
pub fn gather(sources: &[impl AsRef<Path>], out: &Output) -> Result<Vec<(String, Vec<u8>)>> {
    let mut inputs = Vec::new();
    for s in sources {
        let s = s.as_ref();
        let meta = std::fs::metadata(s).with_context(|| format!("cannot read {}", s.display()))?;
        if meta.is_file() && sdexport::contacts::is_contacts_file(&s.to_string_lossy()) {
            let bytes = std::fs::read(s).with_context(|| format!("cannot read {}", s.display()))?;
            inputs.push((s.display().to_string(), bytes));
            continue;
        }
        let mut vol = open(s, None, false, "source", out)?;
        let found = find_exports(vol.volume.as_mut(), false)?;
        if found.is_empty() {
            out.warn(&format!(
                "no .vcf or .csv contact export found in {}",
                s.display()
            ));
        }
        for p in found {
            let mut r = vol.volume.open_read(&p)?;
            let mut bytes = Vec::new();
            r.read_to_end(&mut bytes)
                .with_context(|| format!("reading {p} from {}", s.display()))?;
            inputs.push((format!("{}/{p}", s.display()), bytes));
        }
    }
    Ok(inputs)
}

pub fn run(a: ContactsArgs, out: &Output) -> Result<Status> {
    let version: VcardVersion = match a.vcard.as_str() {
        "2.1" => VcardVersion::V21,
        "4.0" => VcardVersion::V40,
        _ => VcardVersion::V30,
    };
    let inputs = gather(&a.sources, out)?;
    if inputs.is_empty() {
        bail!("no contact exports to read: give .vcf or .csv files, or a folder holding them");
    }
    let mut card = open(&a.to, a.partition, !a.dry_run, "card", out)?;
    let opts = ExportOptions {
        version,
        merge: !a.no_merge,
    };
    let report = write_contacts(
        card.volume.as_mut(),
        &inputs,
        &opts,
        &a.output,
        &new_run_id(),
        a.dry_run,
    )
    .with_context(|| format!("writing contacts to {}", a.to.display()))?;
    card.volume.sync()?;
    if a.json {
        crate::output::print_json(&report)?;
    } else {
        print_report(&report, out);
    }
    Ok(if report.summary.rejected > 0 {
        Status::Incomplete
    } else {
        Status::Done
    })
}

pub fn print_report(r: &ContactsReport, out: &Output) {
    let s = &r.summary;
    let what = match r.outcome {
        VcfOutcome::Written => "written and read back",
        VcfOutcome::AlreadyOnCard => "already on the card (identical)",
        VcfOutcome::WrittenUnderNewName => {
            "written under a new name (a different file had the name; it was kept)"
        }
        VcfOutcome::Planned => "would be written (dry run)",
    };
    out.say(&format!("Contacts: {} — {what}", escape(&r.path)));
    out.say(&format!(
        "  {} file(s) read, {} contacts read, {} written, {} merged duplicates, {} rejected",
        s.files, s.read, s.written, s.merged, s.rejected
    ));
    if out.verbose {
        for m in &s.merges {
            out.say(&format!(
                "  merged: {} ({} cards)",
                escape(&m.name),
                m.count
            ));
        }
    }
    if !s.unknown_csv_columns.is_empty() {
        out.say(&format!(
            "  CSV columns kept as notes/X- properties: {}",
            s.unknown_csv_columns.join(", ")
        ));
    }
    for d in &s.rejections {
        out.warn(&format!("rejected: {d}"));
    }
    for d in s
        .warnings
        .iter()
        .take(if out.verbose { usize::MAX } else { 20 })
    {
        out.warn(&d.to_string());
    }
    if !out.verbose && s.warnings.len() > 20 {
        out.warn(&format!(
            "{} more warnings (use -v to see them all)",
            s.warnings.len() - 20
        ));
    }
}
