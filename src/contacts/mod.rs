//! Contacts: read phone exports (vCard 2.1/3.0/4.0, Google/Outlook/Thunderbird CSV), merge
//! duplicates, write one clean .vcf.
//!
//! The pipeline is `read_export` (per file, never fails: problems become warnings or
//! rejections naming file and line) → `merge` → `write_vcf`; `export` runs all three and returns
//! the bytes plus a summary the CLI can print or serialise. The library never prints.
//!
//! Invariants the tests hold us to: every name, number, e-mail and photo that vobject and
//! ez-vcard read from an input is in the output; the output parses strictly; it is
//! deterministic, and reading our own output and writing it again gives the same bytes.

mod csv_read;
mod merge;
pub mod model;
mod text;
mod vcard_read;
mod vcard_write;

pub use merge::{merge, MergeNote};
pub use model::{Contact, Param, Property, Value, VcardVersion};
pub use vcard_write::write_vcf;

use serde::Serialize;

/// A problem in an input, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub file: String,
    /// 1-based line in the file, when the problem has one.
    pub line: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{}: {}", self.file, l, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// What one input file gave.
#[derive(Debug, Clone, Default)]
pub struct ReadOutcome {
    pub contacts: Vec<Contact>,
    /// Problems that did not cost a contact (a skipped line, a charset fallback, ...).
    pub warnings: Vec<Diagnostic>,
    /// Cards or rows (or whole files) that gave no contact, with the reason.
    pub rejected: Vec<Diagnostic>,
    /// CSV columns we did not recognise (kept as `X-CSV-*` properties).
    pub unknown_csv_columns: Vec<String>,
}

/// Is this file name a contact export we read (`.vcf`, `.vcard`, `.csv`, any case)?
pub fn is_contacts_file(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    [".vcf", ".vcard", ".csv"]
        .iter()
        .any(|e| lower.ends_with(e))
}

/// Does the content look like a vCard (BEGIN:VCARD near the start, after a BOM/blank lines)?
fn looks_like_vcard(bytes: &[u8]) -> bool {
    let data = text::normalize_file_bytes(bytes);
    let head: Vec<u8> = data
        .iter()
        .take(4096)
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    head.len() >= 11 && head[..11].eq_ignore_ascii_case(b"BEGIN:VCARD")
        || contains_ci(&data[..data.len().min(65536)], b"BEGIN:VCARD")
}

/// A first line that reads like a contacts CSV header (for exports saved as .txt and the like).
fn looks_like_csv_header(bytes: &[u8]) -> bool {
    let data = text::normalize_file_bytes(bytes);
    let first = data.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let (line, _) = text::decode_guess(&first[..first.len().min(8192)]);
    let line = line.to_lowercase();
    line.contains([',', ';', '\t'])
        && ["name", "mail", "phone", "vorname", "nachname", "telefon"]
            .iter()
            .any(|k| line.contains(k))
}

fn contains_ci(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

/// Read one export. vCard when the content says so (whatever the extension), CSV when the
/// name ends in `.csv` or the first line is a contacts CSV header, else vCard (which rejects
/// the file with a reason if it is not one).
pub fn read_export(file_name: &str, bytes: &[u8]) -> ReadOutcome {
    let mut out = ReadOutcome::default();
    let csv_name = file_name.to_ascii_lowercase().ends_with(".csv");
    if looks_like_vcard(bytes) || !(csv_name || looks_like_csv_header(bytes)) {
        vcard_read::read_vcards(file_name, bytes, &mut out);
    } else {
        csv_read::read_csv(file_name, bytes, &mut out);
    }
    out
}

/// What `export` did, for the CLI to print (or serialise with --json).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ExportSummary {
    pub files: usize,
    /// Contacts read from all inputs.
    pub read: usize,
    /// Contacts written.
    pub written: usize,
    /// Cards folded into another one by merging (read - written).
    pub merged: usize,
    /// Cards, rows or files that gave no contact.
    pub rejected: usize,
    pub warnings: Vec<Diagnostic>,
    pub rejections: Vec<Diagnostic>,
    pub merges: Vec<MergeNote>,
    pub unknown_csv_columns: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExportOptions {
    pub version: VcardVersion,
    /// Merge duplicates (default true); false keeps every card.
    pub merge: bool,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            version: VcardVersion::V30,
            merge: true,
        }
    }
}

/// Read every input (name, bytes), merge, write one .vcf. Inputs are processed in the order
/// given, so the same inputs always give the same bytes.
pub fn export(inputs: &[(String, Vec<u8>)], options: &ExportOptions) -> (Vec<u8>, ExportSummary) {
    let mut summary = ExportSummary {
        files: inputs.len(),
        ..Default::default()
    };
    let mut all = Vec::new();
    for (name, bytes) in inputs {
        let o = read_export(name, bytes);
        summary.read += o.contacts.len();
        summary.warnings.extend(o.warnings);
        summary.rejections.extend(o.rejected);
        for u in o.unknown_csv_columns {
            if !summary.unknown_csv_columns.contains(&u) {
                summary.unknown_csv_columns.push(u);
            }
        }
        all.extend(o.contacts);
    }
    let merged = if options.merge {
        let (m, notes) = merge(all);
        summary.merges = notes;
        m
    } else {
        all
    };
    summary.written = merged.len();
    summary.merged = summary.read - summary.written;
    summary.rejected = summary.rejections.len();
    (write_vcf(&merged, options.version), summary)
}

#[cfg(test)]
mod tests;
