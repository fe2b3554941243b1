//! Copying one file: hash while writing to a temporary name, check the source gave every
//! byte it promised, rename into place without ever replacing a different file.

use std::io::{Read, Write};

use sha2::{Digest, Sha256};

use crate::manifest::{hex, Manifest};
use crate::storage::{self, names, StorageError, Volume};

use super::{Planned, Progress, TMP_DIR};

/// Large blocks: the FAT engine and the kernel both do best with long sequential runs.
const CHUNK: usize = 4 << 20;

/// How a copy failed, which decides whether the run goes on.
#[derive(Debug)]
pub enum CopyError {
    /// The phone side failed: this file stays, the run goes on.
    Source(String),
    /// The card failed for this file.
    Card(String),
    /// The card is full: the run stops writing.
    CardFull(String),
}

fn card_error(e: StorageError) -> CopyError {
    match e {
        StorageError::NoSpace { .. } => CopyError::CardFull(format!("the card is full ({e})")),
        StorageError::FileTooLarge { .. } => CopyError::Source(e.to_string()),
        other => CopyError::Card(format!("card error: {other}")),
    }
}

pub struct Copied {
    pub destination: String,
    pub sha256: String,
    pub bytes_written: u64,
    pub already_there: bool,
    /// Saved as `name (n).ext` because a different file holds the name.
    pub renamed: bool,
}

/// Remove temp files an interrupted run left behind.
pub fn remove_leftover_temps(card: &mut dyn Volume) -> Result<(), StorageError> {
    if card.stat(TMP_DIR)?.is_none() {
        return Ok(());
    }
    for e in card.list(TMP_DIR)? {
        if !e.is_dir() {
            card.remove_file(&e.path)?;
        }
    }
    Ok(())
}

/// Hash a file, reporting progress.
pub fn hash_reader(
    r: &mut dyn Read,
    progress: &mut dyn Progress,
) -> std::io::Result<(String, u64)> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut len = 0u64;
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        len += n as u64;
        progress.advance(n as u64);
    }
    Ok((hex(&h.finalize()), len))
}

pub fn hash_on_card(
    card: &mut dyn Volume,
    path: &str,
    progress: &mut dyn Progress,
) -> Result<(String, u64), StorageError> {
    let mut r = card.open_read(path)?;
    hash_reader(&mut r, progress).map_err(|e| StorageError::io(path, e))
}

fn hash_source(phone: &mut dyn Volume, path: &str, size: u64) -> Result<String, CopyError> {
    let mut r = phone
        .open_read(path)
        .map_err(|e| CopyError::Source(format!("cannot read the original: {e}")))?;
    let (sha, len) = hash_reader(&mut r, &mut super::NoProgress)
        .map_err(|e| CopyError::Source(format!("reading the original failed: {e}")))?;
    if len != size {
        return Err(CopyError::Source(short_read(len, size)));
    }
    Ok(sha)
}

fn short_read(got: u64, size: u64) -> String {
    format!(
        "the phone returned {got} bytes for a file of {size} bytes (a short read, common with MTP connections); the original was kept, run again"
    )
}

/// Copy `planned` to the card, or find that the card already holds it.
pub fn copy_one(
    phone: &mut dyn Volume,
    card: &mut dyn Volume,
    planned: &Planned,
    manifest: &Manifest,
    run_id: &str,
    index: usize,
    progress: &mut dyn Progress,
) -> Result<Copied, CopyError> {
    let item = &planned.item;
    let parent = storage::parent(&planned.dest).to_string();
    let name = storage::file_name(&planned.dest).to_string();
    let mut source_sha: Option<String> = None;
    let mut n = 0u32;
    let mut renamed = false;
    // Candidates: the planned name, then `name (1).ext`, … until a free name or a copy of
    // the same content is found.
    let target = loop {
        let cand = if n == 0 {
            planned.dest.clone()
        } else {
            storage::join(&parent, &names::numbered(&name, n))
        };
        if n > 9999 {
            return Err(CopyError::Card(format!(
                "no free name for {} on the card",
                planned.dest
            )));
        }
        n += 1;
        let existing = card.stat(&cand).map_err(card_error)?;
        let Some(existing) = existing else { break cand };
        if existing.is_dir() || existing.size != item.size {
            renamed = true;
            continue;
        }
        let sha = match &source_sha {
            Some(s) => s.clone(),
            None => {
                let s = hash_source(phone, &item.path, item.size)?;
                source_sha = Some(s.clone());
                s
            }
        };
        let card_sha = match manifest.get(&cand).filter(|r| r.size == existing.size) {
            Some(r) => r.sha256.clone(),
            None => {
                hash_on_card(card, &cand, &mut super::NoProgress)
                    .map_err(card_error)?
                    .0
            }
        };
        if card_sha == sha {
            return Ok(Copied {
                destination: cand,
                sha256: sha,
                bytes_written: 0,
                already_there: true,
                renamed: n > 1,
            });
        }
        renamed = true;
    };

    if !parent.is_empty() {
        card.create_dir_all(&parent).map_err(card_error)?;
    }
    card.create_dir_all(TMP_DIR).map_err(card_error)?;
    let tmp = format!("{TMP_DIR}/{run_id}-{index}");
    let result = write_temp(phone, card, item, &tmp, progress);
    let (sha, len) = match result {
        Ok(v) => v,
        Err(e) => {
            let _ = card.remove_file(&tmp);
            return Err(e);
        }
    };
    if let Some(first) = &source_sha {
        if *first != sha {
            let _ = card.remove_file(&tmp);
            return Err(CopyError::Source("the original changed while it was being read (two reads differ); it was kept, run again".into()));
        }
    }
    // Rename into place; if the name got taken meanwhile, take the next free one.
    let mut target = target;
    let mut k = n;
    loop {
        match card.rename_new(&tmp, &target) {
            Ok(()) => break,
            Err(StorageError::AlreadyExists { .. }) if k < 10000 => {
                target = storage::join(&parent, &names::numbered(&name, k));
                k += 1;
                renamed = true;
            }
            Err(e) => {
                let _ = card.remove_file(&tmp);
                return Err(card_error(e));
            }
        }
    }
    Ok(Copied {
        destination: target,
        sha256: sha,
        bytes_written: len,
        already_there: false,
        renamed,
    })
}

fn write_temp(
    phone: &mut dyn Volume,
    card: &mut dyn Volume,
    item: &crate::media::MediaItem,
    tmp: &str,
    progress: &mut dyn Progress,
) -> Result<(String, u64), CopyError> {
    let mut src = phone
        .open_read(&item.path)
        .map_err(|e| CopyError::Source(format!("cannot read the original: {e}")))?;
    let mut sink = card.create_new(tmp).map_err(card_error)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut len = 0u64;
    loop {
        // Fill the whole chunk: sources (MTP, FUSE) often return short reads.
        let mut filled = 0;
        while filled < buf.len() {
            match src.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(k) => filled += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(CopyError::Source(format!(
                        "reading the original failed: {e}"
                    )))
                }
            }
        }
        if filled == 0 {
            break;
        }
        h.update(&buf[..filled]);
        sink.write_all(&buf[..filled])
            .map_err(|e| card_error(StorageError::io(tmp, e)))?;
        len += filled as u64;
        progress.advance(filled as u64);
        if filled < buf.len() {
            break;
        }
    }
    if len != item.size {
        return Err(CopyError::Source(short_read(len, item.size)));
    }
    sink.finish(item.modified).map_err(card_error)?;
    Ok((hex(&h.finalize()), len))
}
