//! The verified photo move: plan, copy, read back, record, and only then remove.
//!
//! The protocol (docs/SAFETY.md has the reasons):
//! 1. finish what an interrupted run left: [`manifest::recover`], remove temp files;
//! 2. scan the phone, plan every destination, and pre-flight (space in clusters, FAT's
//!    4 GiB limit, names FAT cannot hold, clashes) before writing a byte;
//! 3. copy each file under a temporary name in `.sdexport/tmp/`, hashing while writing,
//!    checking that the source gave as many bytes as it claims, then rename into place;
//! 4. at the end of the run (or, opted in, in batches that are read back only after at least
//!    [`PhotoOptions::batch_bytes`] more
//!    has been written (or at the end of the run): sync, drop caches, read every copy back
//!    from the card and compare its SHA-256 with the source's;
//! 5. record verified files in the manifest (flushed and read back);
//! 6. only with `--move`, remove originals whose copy verified — whole pairs only, and only
//!    if the original still has the size and modified time it had when it was copied.

mod cache_flush;
pub mod contacts;
mod copy;
mod hasher;
mod plan;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::SystemTime;

use serde::Serialize;

use crate::manifest::{self, Manifest, Record};
use crate::media::{self, CaptureTime, DateSource, Layout, ScanOptions, Skipped};
use crate::storage::{StorageError, Volume};

pub use plan::{PlanError, Planned};

/// Temporary files live here until renamed into place; anything found here at the start
/// of a run was left by an interrupted one and is removed.
pub const TMP_DIR: &str = ".sdexport/tmp";

/// What a writing open of a FAT card may repair by itself: our temporary files, and one of
/// the two manifest files when the other is sound (each lists every file and its hash).
pub const REPAIR_POLICY: crate::storage::fat::RepairPolicy<'static> =
    crate::storage::fat::RepairPolicy {
        disposable: &is_disposable,
        twins: &[(manifest::SUMS_PATH, manifest::MANIFEST_PATH)],
    };

/// Files a card may lose without losing anything: our temporary files and half-written
/// manifest replacements (`NAME.new`, see [`manifest`]). `path` is absolute on the card
/// (`/.sdexport/tmp/x`). A re-run removes such files when a lost write damaged them.
pub fn is_disposable(path: &str) -> bool {
    let p = path.trim_start_matches('/').to_lowercase();
    let tmp = TMP_DIR.to_lowercase();
    let in_state_or_root = matches!(crate::storage::parent(&p), "" | manifest::STATE_DIR);
    p == tmp
        || p.starts_with(&format!("{tmp}/"))
        || (in_state_or_root && p.ends_with(manifest::NEW_SUFFIX))
}

/// What a photos run does.
#[derive(Debug, Clone)]
pub struct PhotoOptions {
    pub move_files: bool,
    pub layout: Layout,
    /// Phone folders to scan besides DCIM.
    pub include: Vec<String>,
    pub all_files: bool,
    pub dry_run: bool,
    /// Opt-in batches: a batch is read back (and its originals released) only once this many
    /// bytes have been written after it. Default `u64::MAX`: everything is read back after
    /// the run's last write. The CLI refuses less than 1 GiB (more than any card's cache).
    pub batch_bytes: u64,
    /// With `move_files`, this many bytes of filler are written, flushed and deleted before
    /// the last read-back, so that no copy is read back from a card's volatile write cache
    /// (see `transfer/cache_flush.rs`). 0 turns it off.
    pub cache_bytes: u64,
    pub run_id: String,
}

impl Default for PhotoOptions {
    fn default() -> Self {
        PhotoOptions {
            move_files: false,
            layout: Layout::Keep,
            include: Vec::new(),
            all_files: false,
            dry_run: false,
            // By default nothing is released before the run's last write: a counterfeit card
            // can overwrite an early batch with the same run's later writes (SAFETY.md).
            batch_bytes: u64::MAX,
            cache_bytes: cache_flush::DEFAULT_CACHE_BYTES,
            run_id: new_run_id(),
        }
    }
}

/// A run id that sorts by time: `20240131T235959Z-1a2b`.
pub fn new_run_id() -> String {
    let now = chrono::Utc::now();
    format!(
        "{}-{:04x}",
        now.format("%Y%m%dT%H%M%SZ"),
        std::process::id() & 0xffff
    )
}

/// Progress of a long run, drawn by the binary; the library only reports.
pub trait Progress {
    /// A new phase starts (`copy`, `verify`) with this many bytes of work.
    fn phase(&mut self, _name: &str, _total_bytes: u64) {}
    fn advance(&mut self, _bytes: u64) {}
}

/// No progress display.
pub struct NoProgress;
impl Progress for NoProgress {}

/// What happened to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Would be copied (dry run).
    Planned,
    /// Copied in this run and read back with a matching hash.
    Copied,
    /// Already on the card with the same content (and, when moving, read back).
    AlreadyOnCard,
    /// Not done; the original is untouched. `reason` says why.
    Failed,
}

/// One file of the run. A run keeps one per phone file, so the fields are compact; the
/// JSON form (`--json`) shows the hash as hex and the capture time as RFC 3339 text.
#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    pub source: String,
    pub destination: Option<String>,
    pub size: u64,
    /// SHA-256 of the content, once copied or found on the card.
    #[serde(serialize_with = "hex_sha")]
    pub sha256: Option<[u8; 32]>,
    pub status: Status,
    /// The original was removed from the phone (only with `--move`).
    pub removed: bool,
    /// Why it failed, or why the original was kept although the copy is fine.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renamed_from: Option<String>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "rfc3339_capture"
    )]
    pub captured: Option<CaptureTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub captured_from: Option<DateSource>,
}

fn hex_sha<S: serde::Serializer>(sha: &Option<[u8; 32]>, s: S) -> Result<S::Ok, S::Error> {
    match sha {
        Some(b) => s.serialize_str(&manifest::hex(b)),
        None => s.serialize_none(),
    }
}

fn rfc3339_capture<S: serde::Serializer>(t: &Option<CaptureTime>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&t.to_rfc3339()),
        None => s.serialize_none(),
    }
}

/// Counts for scripts (`--json`) and summaries.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub copied: usize,
    pub already_on_card: usize,
    pub failed: usize,
    pub removed: usize,
    pub skipped: usize,
    pub planned: usize,
}

/// The result of a run.
#[derive(Debug, Clone, Serialize)]
pub struct PhotosReport {
    pub run_id: String,
    pub summary: Summary,
    pub dry_run: bool,
    pub moved: bool,
    pub files: Vec<FileReport>,
    pub skipped: Vec<Skipped>,
    pub bytes_copied: u64,
    pub bytes_needed: u64,
    pub free_bytes_before: u64,
    /// Copies that read back differently from what was written: the card is suspect.
    pub read_back_mismatches: usize,
    pub warnings: Vec<String>,
}

impl PhotosReport {
    pub fn count(&self, s: Status) -> usize {
        self.files.iter().filter(|f| f.status == s).count()
    }
    pub fn removed(&self) -> usize {
        self.files.iter().filter(|f| f.removed).count()
    }
    fn summarise(&mut self) {
        self.summary = Summary {
            copied: self.count(Status::Copied),
            already_on_card: self.count(Status::AlreadyOnCard),
            failed: self.count(Status::Failed),
            removed: self.removed(),
            skipped: self.skipped.len(),
            planned: self.count(Status::Planned),
        };
    }
    /// Everything that was asked for was done.
    pub fn complete(&self) -> bool {
        self.count(Status::Failed) == 0
            && (!self.moved
                || self
                    .files
                    .iter()
                    .all(|f| f.removed || f.status == Status::Planned))
    }
}

/// Errors that stop a run before anything was written (or while writing, for the card).
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Plan(#[from] PlanError),
}

/// Copy (or move) the phone's photos to the card.
pub fn run_photos(
    phone: &mut dyn Volume,
    card: &mut dyn Volume,
    options: &PhotoOptions,
    progress: &mut dyn Progress,
) -> Result<PhotosReport, TransferError> {
    if !options.dry_run {
        manifest::recover(card)?;
        copy::remove_leftover_temps(card)?;
    }
    let mut roots = vec!["DCIM".to_string()];
    roots.extend(
        options
            .include
            .iter()
            .map(|r| r.trim_matches('/').to_string()),
    );
    let scan = media::scan(
        phone,
        &ScanOptions {
            roots,
            all_files: options.all_files,
        },
    )?;
    let source_device = phone.describe();
    let mut report = PhotosReport {
        run_id: options.run_id.clone(),
        summary: Summary::default(),
        dry_run: options.dry_run,
        moved: options.move_files,
        files: Vec::new(),
        skipped: scan.skipped,
        bytes_copied: 0,
        bytes_needed: 0,
        free_bytes_before: 0,
        read_back_mismatches: 0,
        warnings: Vec::new(),
    };
    let plan = plan::plan(phone, card, scan.items, options)?;
    // Loaded once the scan is gone: on a card that holds a large collection, the two are
    // the largest things a run reads.
    let mut manifest = manifest::load(card)?;
    report.bytes_needed = plan.bytes_needed;
    report.free_bytes_before = plan.free_bytes;
    report.files = plan.files;
    if options.dry_run {
        report.summarise();
        return Ok(report);
    }
    // Batches released mid-run are safe only on a card whose capacity is real: a counterfeit
    // card could overwrite a released batch with the same run's later writes (SAFETY.md).
    let mut effective = options.clone();
    if options.batch_bytes != u64::MAX && !crate::probe::passed(card)? {
        effective.batch_bytes = u64::MAX;
        report.warnings.push(
            "--batch was not used: this card has not passed `sdexport probe` (on a counterfeit card the run's later writes could overwrite a batch already released); originals are released after the run's last write instead. Run `sdexport probe CARD` once to allow batches on it.".into(),
        );
    }
    let options = &effective;

    let mut session = Session {
        phone,
        card,
        options,
        manifest: &mut manifest,
        report: &mut report,
        facts: &plan.facts,
        pair_ids: &plan.pair_ids,
        source_device,
        pending_removal: Vec::new(),
        verified: vec![false; plan.facts.len()],
        read_back_errors: 0,
        hasher: hasher::Hasher::new(),
    };
    session.copy_and_verify(progress)?;
    report.summarise();
    Ok(report)
}

/// The state of one run while it copies and verifies.
struct Session<'a> {
    phone: &'a mut dyn Volume,
    card: &'a mut dyn Volume,
    options: &'a PhotoOptions,
    manifest: &'a mut Manifest,
    report: &'a mut PhotosReport,
    /// `facts[i]` belongs to `report.files[i]`.
    facts: &'a [Planned],
    pair_ids: &'a [Box<str>],
    source_device: String,
    /// Verified items waiting for the rest of their pair before removal.
    pending_removal: Vec<usize>,
    verified: Vec<bool>,
    /// Copies that could not be read back at all (gone, unreadable): like a mismatch, a
    /// sign of a counterfeit or failing card.
    read_back_errors: usize,
    /// The run's hashing thread: copies, read-backs and the checks of files already there.
    hasher: hasher::Hasher,
}

impl Session<'_> {
    fn copy_and_verify(&mut self, progress: &mut dyn Progress) -> Result<(), TransferError> {
        let total: u64 = self
            .report
            .files
            .iter()
            .filter(|f| f.status == Status::Planned)
            .map(|f| f.size)
            .sum();
        progress.phase("copy", total);
        let batch_bytes = self.options.batch_bytes.max(1);
        let mut current: Vec<usize> = Vec::new();
        let mut current_bytes = 0u64;
        let mut closed: VecDeque<(Vec<usize>, u64)> = VecDeque::new();
        let mut written_total = 0u64;
        let mut card_errors_in_a_row = 0;
        let mut stop_reason: Option<String> = None;
        for i in 0..self.report.files.len() {
            let file = &self.report.files[i];
            if file.status != Status::Planned {
                continue;
            }
            if let Some(why) = &stop_reason {
                self.fail(i, why.clone());
                continue;
            }
            match copy::copy_one(
                self.phone,
                self.card,
                &copy::Job {
                    source: &file.source,
                    dest: file.destination.as_deref().unwrap_or_default(),
                    size: file.size,
                    modified: self.facts[i].modified,
                },
                &self.options.run_id,
                i,
                &mut self.hasher,
                progress,
            ) {
                Ok(done) => {
                    card_errors_in_a_row = 0;
                    let r = &mut self.report.files[i];
                    r.sha256 = done.sha256;
                    if let Some(dest) = done.destination {
                        r.destination = Some(dest);
                    }
                    r.status = if done.already_there {
                        Status::AlreadyOnCard
                    } else {
                        Status::Copied
                    };
                    if done.renamed {
                        r.reason = Some(
                            "a different file had this name on the card; saved under a new name"
                                .into(),
                        );
                    }
                    written_total += done.bytes_written;
                    self.report.bytes_copied += done.bytes_written;
                    current_bytes += done.bytes_written;
                    current.push(i);
                }
                Err(copy::CopyError::Source(why)) => self.fail(i, why),
                Err(copy::CopyError::CardFull(why)) => {
                    self.fail(i, why.clone());
                    stop_reason = Some(format!("not copied: {why}"));
                }
                Err(copy::CopyError::Card(why)) => {
                    self.fail(i, why.clone());
                    card_errors_in_a_row += 1;
                    if card_errors_in_a_row >= 3 {
                        stop_reason = Some(format!("not copied: the card keeps failing ({why})"));
                    }
                }
            }
            self.take_digests(false);
            if current_bytes >= batch_bytes {
                closed.push_back((std::mem::take(&mut current), written_total));
                current_bytes = 0;
            }
            while let Some((_, mark)) = closed.front() {
                if written_total.saturating_sub(*mark) < batch_bytes {
                    break;
                }
                let (batch, _) = closed.pop_front().unwrap_or_default();
                self.take_digests(true);
                self.verify_and_commit(&batch, false, progress)?;
            }
        }
        let mut rest: Vec<usize> = closed.into_iter().flat_map(|(b, _)| b).collect();
        rest.extend(current);
        self.take_digests(true);
        self.verify_and_commit(&rest, true, progress)?;
        self.remove_pending(true)?;
        if self.report.read_back_mismatches > 0 {
            self.report.warnings.push(format!(
                "{} cop{} read back from the card with different content than was written: the card may be counterfeit (smaller than it claims) or failing. Their originals were kept. Test the card with f3 (f3probe --destructive) or H2testw before using it again.",
                self.report.read_back_mismatches,
                if self.report.read_back_mismatches == 1 { "y" } else { "ies" }
            ));
        }
        if self.read_back_errors > 0 {
            self.report.warnings.push(format!(
                "{} cop{} could not be read back from the card: the card may be counterfeit (smaller than it claims) or failing. Their originals were kept. Test the card with f3 (f3probe --destructive) or H2testw before using it again.",
                self.read_back_errors,
                if self.read_back_errors == 1 { "y" } else { "ies" }
            ));
        }
        Ok(())
    }

    /// The digests of the copies hashed so far, onto their reports. A copy without one
    /// (its hasher failed) reads back as different and keeps its original.
    /// `wait`: also those still being computed (before a read-back).
    fn take_digests(&mut self, wait: bool) {
        let (hasher, files) = (&mut self.hasher, &mut self.report.files);
        let mut take = |i: usize, digest: [u8; 32]| {
            if let Some(r) = files.get_mut(i) {
                if r.status == Status::Copied {
                    r.sha256 = Some(digest);
                }
            }
        };
        if wait {
            hasher.wait_all(&mut take);
        } else {
            hasher.take_ready(&mut take);
        }
    }

    fn fail(&mut self, i: usize, why: String) {
        let r = &mut self.report.files[i];
        r.status = Status::Failed;
        r.reason = Some(why);
    }

    /// Read back every copy of `batch` from the card, record the good ones in the manifest,
    /// and release originals whose whole pair is verified. The `last` batch of a move is
    /// first pushed out of the card's write cache: no later writes of the run do it.
    fn verify_and_commit(
        &mut self,
        batch: &[usize],
        last: bool,
        progress: &mut dyn Progress,
    ) -> Result<(), TransferError> {
        let needs_read_back: Vec<usize> = batch
            .iter()
            .copied()
            .filter(|&i| {
                let r = &self.report.files[i];
                matches!(r.status, Status::Copied)
                    || (r.status == Status::AlreadyOnCard && self.options.move_files)
            })
            .collect();
        // Already-there files in copy mode were matched by content just now (or recorded
        // verified in the manifest): they need no second read.
        for &i in batch {
            if self.report.files[i].status == Status::AlreadyOnCard && !self.options.move_files {
                self.verified[i] = true;
            }
        }
        if let Err(e) = self.card.sync() {
            // A failed flush means nothing of this batch can be trusted.
            for &i in &needs_read_back {
                self.fail(i, format!("the card failed to flush: {e}"));
            }
            return Ok(());
        }
        if last
            && self.options.move_files
            && self.options.cache_bytes > 0
            && !needs_read_back.is_empty()
        {
            // Mid-run batches were followed by `batch_bytes` of later writes already.
            if let Err(e) =
                cache_flush::push_out(self.card, &self.options.run_id, self.options.cache_bytes)
            {
                for &i in &needs_read_back {
                    self.fail(i, format!("the card failed while its write cache was being flushed: {e} (the original was kept)"));
                }
                return Ok(());
            }
        }
        self.card.drop_caches()?;
        let total: u64 = needs_read_back
            .iter()
            .map(|&i| self.report.files[i].size)
            .sum();
        progress.phase("verify", total);
        for (k, &i) in needs_read_back.iter().enumerate() {
            let files = &self.report.files;
            crate::storage::prefetch_ahead(self.card, k, |n| {
                needs_read_back
                    .get(n)
                    .and_then(|&i| files[i].destination.clone())
            });
            let f = &self.report.files[i];
            let dest = f.destination.as_deref().unwrap_or_default();
            match copy::hash_on_card(self.card, dest, &mut self.hasher, progress) {
                Ok((got, len)) if Some(got) == f.sha256 && len == f.size => {
                    self.verified[i] = true;
                }
                Ok(_) => {
                    self.report.read_back_mismatches += 1;
                    if f.status == Status::Copied {
                        // Our own copy is wrong: take it away so that no one trusts it and
                        // the next run writes it again.
                        let _ = self.card.remove_file(dest);
                        self.manifest.remove(dest);
                    }
                    self.fail(i, "the copy read back from the card differs from the original (the original was kept)".into());
                }
                Err(e) => {
                    self.read_back_errors += 1;
                    self.fail(
                        i,
                        format!(
                            "cannot read the copy back from the card: {e} (the original was kept)"
                        ),
                    )
                }
            }
        }
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        for &i in batch {
            if !self.verified[i] {
                continue;
            }
            let p = &self.facts[i];
            let r = &self.report.files[i];
            let dest = r.destination.as_deref().unwrap_or_default();
            let sha256 = r.sha256.map(|b| manifest::hex(&b)).unwrap_or_default();
            // A file already recorded with this content keeps the run that first put it here.
            let run_id = self
                .manifest
                .get(dest)
                .filter(|old| old.sha256 == sha256)
                .map_or_else(|| self.options.run_id.clone(), |old| old.run_id);
            let record = Record {
                path: dest.to_string(),
                size: r.size,
                sha256,
                kind: Some(kind_name(p.kind).into()),
                captured: r.captured.map(|t| t.to_rfc3339()),
                captured_from: r.captured_from.map(|s| s.as_str().to_string()),
                source_path: Some(r.source.clone()),
                source_device: Some(self.source_device.clone()),
                original_name: r.renamed_from.clone(),
                modified: p.modified.map(rfc3339),
                pair_id: self.pair_ids.get(p.pair as usize).map(|id| id.to_string()),
                verified_at: Some(now.clone()),
                run_id,
                tool_version: env!("CARGO_PKG_VERSION").to_string(),
            };
            self.manifest.insert(record);
            if self.options.move_files {
                self.pending_removal.push(i);
            }
        }
        if batch.iter().any(|&i| self.verified[i]) {
            manifest::save(self.card, self.manifest)?;
        }
        self.remove_pending(false)
    }

    /// Remove originals whose copy verified, a whole pair at a time. With `last`, pairs that
    /// can no longer complete are reported.
    fn remove_pending(&mut self, last: bool) -> Result<(), TransferError> {
        if !self.options.move_files {
            return Ok(());
        }
        // Pairs are few: group those by id; every other pending file is a group of one.
        let facts = self.facts;
        let mut pairs: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
        for (i, p) in facts.iter().enumerate() {
            if p.pair != plan::NO_PAIR {
                pairs.entry(p.pair).or_default().push(i);
            }
        }
        let pending: std::collections::HashSet<usize> =
            self.pending_removal.iter().copied().collect();
        let singles = self
            .pending_removal
            .iter()
            .filter(|&&i| facts[i].pair == plan::NO_PAIR)
            .map(|&i| vec![i]);
        let groups: Vec<Vec<usize>> = singles.chain(pairs.into_values()).collect();
        let mut still = Vec::new();
        let mut removed_any = false;
        for members in &groups {
            if !members.iter().any(|m| pending.contains(m)) {
                continue;
            }
            let all_verified = members.iter().all(|&m| self.verified[m]);
            if !all_verified {
                if last {
                    for &m in members {
                        if self.verified[m] && !self.report.files[m].removed {
                            self.report.files[m].reason = Some(
                                "kept on the phone: the other file of its pair (Live Photo or RAW+JPEG) is not safely on the card".into(),
                            );
                        }
                    }
                } else {
                    still.extend(members.iter().copied().filter(|m| pending.contains(m)));
                }
                continue;
            }
            for &m in members {
                if self.report.files[m].removed {
                    continue;
                }
                let f = &self.report.files[m];
                match self.phone.stat(&f.source) {
                    Ok(Some(e)) if e.size == f.size && e.modified == facts[m].modified => {
                        match self.phone.remove_file(&f.source) {
                            Ok(()) => {
                                self.report.files[m].removed = true;
                                removed_any = true;
                            }
                            Err(e) => {
                                self.report.files[m].reason = Some(format!("the copy is safe but the original could not be removed: {e}"))
                            }
                        }
                    }
                    Ok(Some(_)) => {
                        self.report.files[m].reason =
                            Some("kept on the phone: it changed while it was being copied; run again to copy the new version".into())
                    }
                    Ok(None) => {
                        self.report.files[m].reason = Some("the original disappeared from the phone during the run".into())
                    }
                    Err(e) => self.report.files[m].reason = Some(format!("kept: cannot check the original: {e}")),
                }
            }
        }
        self.pending_removal = still;
        if removed_any {
            // Removals are not worth failing the run over if the phone cannot sync.
            let _ = self.phone.sync();
        }
        Ok(())
    }
}

fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Local>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub fn kind_name(k: media::MediaKind) -> &'static str {
    match k {
        media::MediaKind::Photo => "photo",
        media::MediaKind::Video => "video",
        media::MediaKind::Raw => "raw",
        media::MediaKind::Other => "other",
    }
}

/// Counts of skipped files by reason, for summaries.
pub fn skipped_by_reason(skipped: &[Skipped]) -> Vec<(String, usize)> {
    let mut m: HashMap<String, usize> = HashMap::new();
    for s in skipped {
        *m.entry(s.reason.to_string()).or_default() += 1;
    }
    let mut v: Vec<(String, usize)> = m.into_iter().collect();
    v.sort();
    v
}
