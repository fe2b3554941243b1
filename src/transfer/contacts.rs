//! Putting the contacts file on the card: never over a different file, read back, recorded
//! in the manifest like the photos.

use std::io::Read;

use sha2::{Digest, Sha256};

use crate::contacts::{self, ExportOptions, ExportSummary};
use crate::manifest::{self, hex, Record};
use crate::storage::{self, names, StorageError, Volume};

use super::TMP_DIR;

/// What happened to the .vcf on the card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VcfOutcome {
    /// Written and read back.
    Written,
    /// The card already held exactly these bytes under this name.
    AlreadyOnCard,
    /// A different file held the requested name; written under a dated name instead.
    WrittenUnderNewName,
    /// Dry run: nothing written.
    Planned,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ContactsReport {
    pub path: String,
    pub outcome: VcfOutcome,
    pub bytes: u64,
    pub sha256: String,
    pub summary: ExportSummary,
}

/// Read every input, export one .vcf and put it on the card at `output` (card-relative).
pub fn write_contacts(
    card: &mut dyn Volume,
    inputs: &[(String, Vec<u8>)],
    options: &ExportOptions,
    output: &str,
    run_id: &str,
    dry_run: bool,
) -> Result<ContactsReport, StorageError> {
    let (bytes, summary) = contacts::export(inputs, options);
    let sha = hex(&Sha256::digest(&bytes));
    let output = output.trim_matches('/');
    let output = if card.limits().fat_names {
        output
            .split('/')
            .filter(|c| !c.is_empty())
            .map(names::sanitize_fat_name)
            .collect::<Vec<_>>()
            .join("/")
    } else {
        output.to_string()
    };
    let mut report = ContactsReport {
        path: output.clone(),
        outcome: VcfOutcome::Planned,
        bytes: bytes.len() as u64,
        sha256: sha.clone(),
        summary,
    };
    if dry_run {
        return Ok(report);
    }
    manifest::recover(card)?;
    let parent = storage::parent(&output).to_string();
    let name = storage::file_name(&output).to_string();
    let dated = {
        let (stem, ext) = names::split_ext(&name);
        format!("{stem}-{}{ext}", chrono::Local::now().format("%Y-%m-%d"))
    };
    // Candidates: the name asked for, then a dated name, then numbered dated names.
    let mut candidates = vec![output.clone(), storage::join(&parent, &dated)];
    candidates.extend((1..1000).map(|n| storage::join(&parent, &names::numbered(&dated, n))));
    let mut target = None;
    for (i, cand) in candidates.iter().enumerate() {
        match card.stat(cand)? {
            None => {
                target = Some((cand.clone(), i > 0));
                break;
            }
            Some(e) if !e.is_dir() && e.size == bytes.len() as u64 => {
                let mut r = card.open_read(cand)?;
                let mut existing = Vec::new();
                r.read_to_end(&mut existing)
                    .map_err(|e| StorageError::io(cand, e))?;
                if existing == bytes {
                    report.path = cand.clone();
                    report.outcome = VcfOutcome::AlreadyOnCard;
                    break;
                }
            }
            Some(_) => {}
        }
    }
    if report.outcome == VcfOutcome::Planned {
        let Some((target, renamed)) = target else {
            return Err(StorageError::Other(format!(
                "no free name for {output} on the card"
            )));
        };
        write_new_verified(card, &target, &bytes, run_id)?;
        report.path = target;
        report.outcome = if renamed {
            VcfOutcome::WrittenUnderNewName
        } else {
            VcfOutcome::Written
        };
    }
    let mut m = manifest::load(card)?;
    let sources: Vec<&str> = inputs.iter().map(|(n, _)| n.as_str()).collect();
    m.insert(Record {
        path: report.path.clone(),
        size: bytes.len() as u64,
        sha256: sha,
        kind: Some("contacts".into()),
        source_path: Some(sources.join(", ")),
        verified_at: Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        run_id: run_id.to_string(),
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        ..Default::default()
    });
    manifest::save(card, &m)?;
    Ok(report)
}

/// Write a new file: written and read back under a temporary name, then renamed into place
/// (never replacing). On a mismatch nothing appears under `path` and an error is returned.
pub fn write_new_verified(
    card: &mut dyn Volume,
    path: &str,
    bytes: &[u8],
    run_id: &str,
) -> Result<(), StorageError> {
    // Verified under a temporary name, so the final name only ever holds checked bytes.
    let tmp = format!("{TMP_DIR}/{run_id}-single");
    manifest::write_verified(card, &tmp, bytes)?;
    let parent = storage::parent(path);
    if !parent.is_empty() {
        card.create_dir_all(parent)?;
    }
    if let Err(e) = card.rename_new(&tmp, path) {
        let _ = card.remove_file(&tmp);
        return Err(e);
    }
    card.sync()
}

/// Find contact exports: a file is taken as is; a folder or volume is searched (top level,
/// `Download/`, `Downloads/`, `Documents/` and `Contacts/`), skipping hidden entries.
pub fn find_exports(
    volume: &mut dyn Volume,
    top_level_only: bool,
) -> Result<Vec<String>, StorageError> {
    let mut out = Vec::new();
    let mut dirs = vec![String::new()];
    if !top_level_only {
        for d in volume.list("")? {
            if d.is_dir()
                && ["download", "downloads", "documents", "contacts"]
                    .contains(&d.name().to_ascii_lowercase().as_str())
            {
                dirs.push(d.path.clone());
            }
        }
    }
    for d in dirs {
        for e in volume.list(&d)? {
            if !e.is_dir()
                && !e.name().starts_with('.')
                && e.size > 0
                && contacts::is_contacts_file(e.name())
            {
                out.push(e.path.clone());
            }
        }
    }
    Ok(out)
}
