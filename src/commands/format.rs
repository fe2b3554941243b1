use anyhow::{Context, Result};
use sdexport::format::{format_card, FormatRequest};
use sdexport_fat::FatType;

use crate::cli::FormatArgs;
use crate::output::{human_bytes, Output, Status};

pub fn run(a: FormatArgs, out: &Output) -> Result<Status> {
    let fat_type = a.fat.as_deref().map(|f| match f {
        "12" => FatType::Fat12,
        "16" => FatType::Fat16,
        _ => FatType::Fat32,
    });
    if a.size.is_none() && !a.path.exists() {
        anyhow::bail!(
            "{}: give the size of the new image, e.g. --size 256M",
            a.path.display()
        );
    }
    let req = FormatRequest {
        size: a.size,
        fat_type,
        label: a.label,
        mbr: a.mbr,
        force: a.force,
    };
    let report = format_card(&a.path, &req)
        .with_context(|| format!("cannot format {}", a.path.display()))?;
    if a.json {
        crate::output::print_json(&report)?;
        return Ok(Status::Done);
    }
    if let Some(erased) = &report.erased {
        out.warn(&format!("erased {erased}"));
    }
    out.say(&format!(
        "Formatted {}: {} {}, {} clusters of {}, {} usable{}",
        report.path,
        human_bytes(report.disk_bytes),
        report.fat_type,
        report.total_bytes / report.cluster_bytes.max(1) as u64,
        human_bytes(report.cluster_bytes as u64),
        human_bytes(report.total_bytes),
        if report.partition_offset > 0 {
            format!(", MBR partition 1 at {} MiB", report.partition_offset >> 20)
        } else {
            String::new()
        }
    ));
    Ok(Status::Done)
}
