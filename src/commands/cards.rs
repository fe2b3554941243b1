//! `info`, `ls` and `get`: looking at a card.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use sdexport::format::fat_type_name;
use sdexport::storage::open::Details;
use sdexport::storage::{self, Entry};

use super::open;
use crate::cli::{GetArgs, InfoArgs, LsArgs};
use crate::output::{human_bytes, Output, Status};

#[derive(serde::Serialize)]
struct InfoJson<'a> {
    card: String,
    #[serde(flatten)]
    details: &'a Details,
    fat_type: Option<&'static str>,
    label: Option<String>,
    volume_serial: Option<String>,
    cluster_bytes: u64,
    total_bytes: u64,
    free_bytes: u64,
    clean: Option<bool>,
}

pub fn info(a: InfoArgs, out: &Output) -> Result<Status> {
    let mut card = open(&a.card, a.partition.partition, false, "card", out)?;
    let space = card.volume.space()?;
    let fat = card.fat_info().cloned();
    let j = InfoJson {
        card: a.card.display().to_string(),
        details: &card.details,
        fat_type: fat.as_ref().map(|f| fat_type_name(f.fat_type)),
        label: fat.as_ref().and_then(|f| f.label.clone()),
        volume_serial: fat
            .as_ref()
            .map(|f| format!("{:04X}-{:04X}", f.volume_id >> 16, f.volume_id & 0xFFFF)),
        cluster_bytes: space.cluster_bytes,
        total_bytes: space.total_bytes,
        free_bytes: space.free_bytes,
        clean: fat.as_ref().map(|f| !f.was_dirty),
    };
    if a.json {
        crate::output::print_json(&j)?;
        return Ok(Status::Done);
    }
    let mut lines = vec![format!("Card:            {}", j.card)];
    match &card.details {
        Details::Directory { file_system, .. } => {
            lines.push(format!("Kind:            directory on {file_system}"));
        }
        Details::Image {
            device,
            layout,
            selection,
            ..
        } => {
            lines.push(format!(
                "Kind:            {}",
                if *device {
                    "block device"
                } else {
                    "image file"
                }
            ));
            lines.push(format!("Partition table: {}", layout.table));
            if let Some(n) = selection.partition {
                lines.push(format!(
                    "Partition used:  {n} (at {} bytes, {})",
                    selection.offset,
                    human_bytes(selection.len)
                ));
            }
        }
    }
    if let Some(f) = &fat {
        lines.push(format!("File system:     {}", fat_type_name(f.fat_type)));
        lines.push(format!(
            "Label:           {}",
            f.label.as_deref().unwrap_or("(none)")
        ));
        lines.push(format!(
            "Volume serial:   {}",
            j.volume_serial.clone().unwrap_or_default()
        ));
    }
    lines.push(format!(
        "Cluster size:    {}",
        human_bytes(space.cluster_bytes)
    ));
    lines.push(format!(
        "Total:           {} ({} bytes)",
        human_bytes(space.total_bytes),
        space.total_bytes
    ));
    lines.push(format!(
        "Free:            {} ({} bytes)",
        human_bytes(space.free_bytes),
        space.free_bytes
    ));
    if let Some(f) = &fat {
        lines.push(format!(
            "State:           {}",
            if f.was_dirty {
                "dirty: not cleanly unmounted (a write was interrupted; `fsck.fat` can check it)"
            } else {
                "clean"
            }
        ));
    }
    for l in lines {
        out.say(&l);
    }
    Ok(Status::Done)
}

#[derive(serde::Serialize)]
struct LsJson {
    name: String,
    path: String,
    kind: storage::EntryKind,
    size: u64,
    modified: Option<String>,
}

fn fmt_time(e: &Entry) -> Option<String> {
    e.modified.map(|t| {
        chrono::DateTime::<chrono::Local>::from(t)
            .format("%Y-%m-%d %H:%M:%S")
            .to_string()
    })
}

pub fn ls(a: LsArgs, out: &Output) -> Result<Status> {
    let mut card = open(&a.card, a.partition.partition, false, "card", out)?;
    let v = card.volume.as_mut();
    let dir = a.path.trim_matches('/').to_string();
    let entries = match v.stat(&dir)? {
        None if !dir.is_empty() => bail!("{}: {dir} not found on the card", a.card.display()),
        Some(e) if !e.is_dir() => vec![e],
        _ if a.recursive => v.walk(&dir)?,
        _ => v.list(&dir)?,
    };
    if a.json {
        let j: Vec<LsJson> = entries
            .iter()
            .map(|e| LsJson {
                name: e.name().to_string(),
                path: e.path.clone(),
                kind: e.kind,
                size: e.size,
                modified: fmt_time(e),
            })
            .collect();
        crate::output::print_json(&j)?;
        return Ok(Status::Done);
    }
    let stdout = io::stdout();
    let mut w = stdout.lock();
    for e in &entries {
        let shown = if a.recursive {
            e.path.as_str()
        } else {
            e.name()
        };
        let suffix = if e.is_dir() { "/" } else { "" };
        if a.long {
            writeln!(
                w,
                "{:>12}  {:19}  {}{}",
                if e.is_dir() {
                    "-".to_string()
                } else {
                    e.size.to_string()
                },
                fmt_time(e).unwrap_or_default(),
                crate::output::escape(shown),
                suffix
            )?;
        } else {
            writeln!(w, "{}{}", crate::output::escape(shown), suffix)?;
        }
    }
    let _ = out;
    Ok(Status::Done)
}

pub fn get(a: GetArgs, out: &Output) -> Result<Status> {
    let mut card = open(&a.card, a.partition.partition, false, "card", out)?;
    let v = card.volume.as_mut();
    let src = a.path.trim_matches('/').to_string();
    let Some(entry) = v.stat(&src)? else {
        bail!(
            "{}: {src} not found on the card (list it with `sdexport ls {} {}`)",
            a.card.display(),
            a.card.display(),
            storage::parent(&src)
        );
    };
    if a.dest.as_deref() == Some(Path::new("-")) {
        if entry.is_dir() {
            bail!("{src} is a folder: give a destination folder instead of -");
        }
        let mut r = v.open_read(&src)?;
        io::copy(&mut r, &mut io::stdout().lock()).context("writing to stdout")?;
        return Ok(Status::Done);
    }
    let dest_base = a.dest.clone().unwrap_or_else(|| PathBuf::from("."));
    let name = if src.is_empty() {
        "card".to_string()
    } else {
        storage::file_name(&src).to_string()
    };
    let target = if dest_base.is_dir() {
        dest_base.join(&name)
    } else {
        dest_base
    };
    let items: Vec<Entry> = if entry.is_dir() {
        v.walk(&src)?
    } else {
        vec![entry.clone()]
    };
    let mut files = 0u64;
    let mut bytes = 0u64;
    if entry.is_dir() {
        fs::create_dir_all(&target).with_context(|| format!("creating {}", target.display()))?;
    }
    for e in items {
        let local = if entry.is_dir() {
            target.join(
                e.path
                    .strip_prefix(&src)
                    .unwrap_or(&e.path)
                    .trim_start_matches('/'),
            )
        } else {
            target.clone()
        };
        if e.is_dir() {
            fs::create_dir_all(&local).with_context(|| format!("creating {}", local.display()))?;
            continue;
        }
        let mut oo = fs::OpenOptions::new();
        oo.write(true);
        if a.force {
            oo.create(true).truncate(true);
        } else {
            oo.create_new(true);
        }
        let mut f = oo.open(&local).with_context(|| {
            format!(
                "cannot write {} (it exists? add --force to replace it)",
                local.display()
            )
        })?;
        let mut r = v.open_read(&e.path)?;
        bytes += io::copy(&mut r, &mut f)
            .with_context(|| format!("copying {} to {}", e.path, local.display()))?;
        if let Some(t) = e.modified {
            let _ = f.set_modified(t);
        }
        files += 1;
    }
    out.say(&format!(
        "Copied {files} file(s), {} to {}",
        human_bytes(bytes),
        target.display()
    ));
    Ok(Status::Done)
}
