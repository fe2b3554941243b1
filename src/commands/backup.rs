//! `sdexport backup`: photos, videos and contacts to a card in one verified run.

use std::io::Read;

use anyhow::{bail, Context, Result};
use sdexport::contacts::ExportOptions;
use sdexport::format::{format_card, FormatRequest};
use sdexport::transfer::contacts::{find_exports, write_contacts};
use sdexport::transfer::{self, Status as FileStatus};

use crate::cli::BackupArgs;
use crate::commands::contacts::print_report as print_contacts;
use crate::commands::open;
use crate::commands::photos::{options, print_report, Bar};
use crate::output::{Output, Status};

#[derive(serde::Serialize)]
struct BackupJson<'a> {
    photos: &'a transfer::PhotosReport,
    contacts: Option<&'a transfer::contacts::ContactsReport>,
    complete: bool,
}

pub fn run(a: BackupArgs, out: &Output) -> Result<Status> {
    let opts = options(&a.options);
    if let Some(size) = a.create_image {
        if a.to.exists() {
            bail!(
                "{} already exists; --create-image makes a new image and never touches an existing file. Remove --create-image to back up onto it, or pick a new path",
                a.to.display()
            );
        }
        if opts.dry_run {
            bail!("--dry-run with --create-image: nothing to plan against; create the image first with `sdexport format`");
        }
        let r = format_card(
            &a.to,
            &FormatRequest {
                size: Some(size),
                fat_type: Some(sdexport_fat::FatType::Fat32),
                ..Default::default()
            },
        )
        .with_context(|| format!("creating {}", a.to.display()))?;
        out.say(&format!(
            "Created {} ({}, {} usable)",
            r.path,
            r.fat_type,
            crate::output::human_bytes(r.total_bytes)
        ));
    }
    let mut phone = open(
        &a.phone,
        None,
        opts.move_files && !opts.dry_run,
        "phone",
        out,
    )?;
    let mut card = open(&a.to, a.partition, !opts.dry_run, "card", out)?;

    // Contacts first: small, and a full card should not cost the address book.
    let mut inputs = Vec::new();
    for p in find_exports(phone.volume.as_mut(), false)? {
        let mut r = phone.volume.open_read(&p)?;
        let mut bytes = Vec::new();
        r.read_to_end(&mut bytes)
            .with_context(|| format!("reading {p} on the phone"))?;
        inputs.push((p, bytes));
    }
    inputs.extend(crate::commands::contacts::gather(&a.contacts, out)?);
    let contacts = if inputs.is_empty() {
        None
    } else {
        let r = write_contacts(
            card.volume.as_mut(),
            &inputs,
            &ExportOptions::default(),
            "contacts.vcf",
            &opts.run_id,
            opts.dry_run,
        )
        .with_context(|| format!("writing contacts to {}", a.to.display()))?;
        Some(r)
    };

    let mut bar = Bar::new(out);
    let photos = transfer::run_photos(phone.volume.as_mut(), card.volume.as_mut(), &opts, &mut bar)
        .with_context(|| format!("photos from {} to {}", a.phone.display(), a.to.display()))?;
    drop(bar);
    card.volume.sync().context("final flush of the card")?;
    let complete = photos.complete() && contacts.as_ref().is_none_or(|c| c.summary.rejected == 0);
    if a.options.json {
        crate::output::print_json(&BackupJson {
            photos: &photos,
            contacts: contacts.as_ref(),
            complete,
        })?;
    } else {
        print_report(&photos, out);
        match &contacts {
            Some(c) => print_contacts(c, out),
            None => {
                out.say("Contacts: no .vcf/.csv export found on the phone (top level or Download/)")
            }
        }
        if !opts.dry_run {
            let n = photos.count(FileStatus::Copied) + photos.count(FileStatus::AlreadyOnCard);
            out.say(&format!(
                "Verified {n} files on {}. Check the card anywhere with `sdexport verify {}` or `sha256sum -c SHA256SUMS` at its root.",
                a.to.display(),
                a.to.display()
            ));
        }
    }
    Ok(if complete {
        Status::Done
    } else {
        Status::Incomplete
    })
}
