//! Copying one file: hash while writing to a temporary name, check the source gave every
//! byte it promised, rename into place without ever replacing a different file.

use std::io::{Read, Write};

use sha2::Digest;

use crate::storage::{self, names, StorageError, Volume};

use super::hasher::Hasher;
use super::{Progress, TMP_DIR};

/// Large blocks: the FAT engine and the kernel both do best with long sequential runs.
pub(super) const CHUNK: usize = 4 << 20;
/// Chunks in flight between reading/writing and hashing (memory: `DEPTH * CHUNK`).
pub(super) const DEPTH: usize = 4;

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

/// One file to copy.
pub struct Job<'a> {
    /// Path on the phone.
    pub source: &'a str,
    /// The planned card path.
    pub dest: &'a str,
    pub size: u64,
    pub modified: Option<std::time::SystemTime>,
}

pub struct Copied {
    /// Where the file is on the card, when that is not the planned path.
    pub destination: Option<String>,
    /// Known for a copy already on the card (and a new copy checked against one); otherwise
    /// the run's [`Hasher`] has it under the file's index.
    pub sha256: Option<[u8; 32]>,
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

/// Hash a file on the run's hashing thread, reporting progress: each chunk is hashed
/// while the next one is read. The digest is waited for before returning. A file of one
/// chunk is hashed inline.
pub fn hash_reader(
    r: &mut dyn Read,
    hasher: &mut Hasher,
    progress: &mut dyn Progress,
) -> std::io::Result<([u8; 32], u64)> {
    let mut len = 0u64;
    loop {
        let mut buf = hasher.buffer();
        let filled = match fill(r, &mut buf) {
            Ok(n) => n,
            Err(e) => {
                hasher.unused(buf);
                hasher.abort();
                return Err(e);
            }
        };
        if len == 0 && filled < CHUNK {
            // The whole file in one chunk: nothing to overlap, and a round trip to the
            // hashing thread per small file would cost more than hashing it here.
            let sha = sha2::Sha256::digest(&buf[..filled]).into();
            hasher.unused(buf);
            progress.advance(filled as u64);
            return Ok((sha, filled as u64));
        }
        if filled == 0 {
            hasher.unused(buf);
            break;
        }
        hasher.chunk(buf, filled);
        len += filled as u64;
        progress.advance(filled as u64);
        if filled < CHUNK {
            break;
        }
    }
    hasher.end(READ_INDEX);
    match hasher.wait_for(READ_INDEX) {
        Some(sha) => Ok((sha, len)),
        None => Err(std::io::Error::other("the hashing thread stopped")),
    }
}

/// The digest index of a file hashed by [`hash_reader`] (waited for at once), apart from
/// the run's copies, which are indexed by file.
const READ_INDEX: usize = usize::MAX;

/// Read until `buf` is full or the reader ends: sources (MTP, FUSE) and the FAT engine
/// (at the end of a contiguous run) return short reads in the middle of a file.
fn fill(r: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(k) => filled += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

// Chunk buffers a thread keeps between files: allocating and faulting in 4 MiB per file
// would cost more than a small file's copy.
thread_local! {
    static POOL: std::cell::RefCell<Vec<Vec<u8>>> = const { std::cell::RefCell::new(Vec::new()) };
}

pub(super) fn take_buffer() -> Vec<u8> {
    POOL.with(|p| p.borrow_mut().pop())
        .unwrap_or_else(|| vec![0u8; CHUNK])
}

pub(super) fn give_back(buf: Vec<u8>) {
    if buf.len() == CHUNK {
        POOL.with(|p| {
            let mut p = p.borrow_mut();
            if p.len() < DEPTH {
                p.push(buf);
            }
        });
    }
}

pub fn hash_on_card(
    card: &mut dyn Volume,
    path: &str,
    hasher: &mut Hasher,
    progress: &mut dyn Progress,
) -> Result<([u8; 32], u64), StorageError> {
    let mut r = card.open_read(path)?;
    hash_reader(&mut r, hasher, progress).map_err(|e| StorageError::io(path, e))
}

fn hash_source(
    phone: &mut dyn Volume,
    path: &str,
    size: u64,
    hasher: &mut Hasher,
) -> Result<[u8; 32], CopyError> {
    let mut r = phone
        .open_read(path)
        .map_err(|e| CopyError::Source(format!("cannot read the original: {e}")))?;
    let (sha, len) = hash_reader(&mut r, hasher, &mut super::NoProgress)
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

/// Copy `job` to the card, or find that the card already holds it.
pub fn copy_one(
    phone: &mut dyn Volume,
    card: &mut dyn Volume,
    job: &Job<'_>,
    run_id: &str,
    index: usize,
    hasher: &mut Hasher,
    progress: &mut dyn Progress,
) -> Result<Copied, CopyError> {
    let parent = storage::parent(job.dest);
    let name = storage::file_name(job.dest);
    let mut source_sha: Option<[u8; 32]> = None;
    let mut n = 0u32;
    let mut renamed = false;
    // Candidates: the planned name, then `name (1).ext`, … until a free name or a copy of
    // the same content is found.
    let target = loop {
        // `None`: the planned path.
        let cand = (n > 0).then(|| storage::join(parent, &names::numbered(name, n)));
        if n > 9999 {
            return Err(CopyError::Card(format!(
                "no free name for {} on the card",
                job.dest
            )));
        }
        n += 1;
        let path = cand.as_deref().unwrap_or(job.dest);
        let existing = card.stat(path).map_err(card_error)?;
        let Some(existing) = existing else { break cand };
        if existing.is_dir() || existing.size != job.size {
            renamed = true;
            continue;
        }
        let sha = match source_sha {
            Some(s) => s,
            None => {
                let s = hash_source(phone, job.source, job.size, hasher)?;
                source_sha = Some(s);
                s
            }
        };
        // Always read the card's copy: a record in the manifest says what was verified
        // once, not what the card holds now (it may have been damaged since).
        let card_sha = hash_on_card(card, path, hasher, &mut super::NoProgress)
            .map_err(card_error)?
            .0;
        if card_sha == sha {
            return Ok(Copied {
                destination: cand,
                sha256: Some(sha),
                bytes_written: 0,
                already_there: true,
                renamed: n > 1,
            });
        }
        renamed = true;
    };

    if !parent.is_empty() {
        card.create_dir_all(parent).map_err(card_error)?;
    }
    card.create_dir_all(TMP_DIR).map_err(card_error)?;
    let tmp = format!("{TMP_DIR}/{run_id}-{index}");
    let result = write_temp(phone, card, job, &tmp, hasher, index, progress);
    let len = match result {
        Ok(v) => v,
        Err(e) => {
            let _ = card.remove_file(&tmp);
            return Err(e);
        }
    };
    // When the source was hashed before (to compare with a file already on the card), the
    // copy's digest must agree with that first read; it is then known here already.
    let sha256 = match source_sha {
        Some(first) => {
            let copied = hasher.wait_for(index);
            if copied != Some(first) {
                let _ = card.remove_file(&tmp);
                return Err(CopyError::Source("the original changed while it was being read (two reads differ); it was kept, run again".into()));
            }
            copied
        }
        None => None,
    };
    // Rename into place; if the name got taken meanwhile, take the next free one.
    let mut target = target;
    let mut k = n;
    loop {
        match card.rename_new(&tmp, target.as_deref().unwrap_or(job.dest)) {
            Ok(()) => break,
            Err(StorageError::AlreadyExists { .. }) if k < 10000 => {
                target = Some(storage::join(parent, &names::numbered(name, k)));
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
        sha256,
        bytes_written: len,
        already_there: false,
        renamed,
    })
}

/// Copy the source to `tmp` on the card. Each chunk goes to the run's hasher right after
/// it is written (the digest is of exactly the bytes written) while the next one is read;
/// the file's digest is ended under `index` only when every byte arrived and the sink
/// finished, and dropped otherwise.
fn write_temp(
    phone: &mut dyn Volume,
    card: &mut dyn Volume,
    job: &Job<'_>,
    tmp: &str,
    hasher: &mut Hasher,
    index: usize,
    progress: &mut dyn Progress,
) -> Result<u64, CopyError> {
    let mut src = phone
        .open_read(job.source)
        .map_err(|e| CopyError::Source(format!("cannot read the original: {e}")))?;
    let mut sink = card.create_new(tmp).map_err(card_error)?;
    // A tiny file is hashed here: waking the hashing thread for it costs more than the hash.
    let mut inline = (job.size <= INLINE_MAX).then(sha2::Sha256::new);
    let copied = (|| {
        let mut len = 0u64;
        loop {
            let mut buf = hasher.buffer();
            let filled = match fill(&mut src, &mut buf) {
                Ok(n) => n,
                Err(e) => {
                    hasher.unused(buf);
                    return Err(CopyError::Source(format!(
                        "reading the original failed: {e}"
                    )));
                }
            };
            if filled == 0 {
                hasher.unused(buf);
                break;
            }
            if let Err(e) = sink.write_all(&buf[..filled]) {
                hasher.unused(buf);
                return Err(card_error(StorageError::io(tmp, e)));
            }
            match &mut inline {
                Some(h) => {
                    h.update(&buf[..filled]);
                    hasher.unused(buf);
                }
                None => hasher.chunk(buf, filled),
            }
            len += filled as u64;
            progress.advance(filled as u64);
            if filled < CHUNK {
                break;
            }
        }
        if len != job.size {
            return Err(CopyError::Source(short_read(len, job.size)));
        }
        Ok(len)
    })();
    let finished = copied.and_then(|len| {
        sink.finish(job.modified).map_err(card_error)?;
        Ok(len)
    });
    match (finished, inline) {
        (Ok(len), Some(h)) => {
            hasher.put(index, h.finalize().into());
            Ok(len)
        }
        (Ok(len), None) => {
            hasher.end(index);
            Ok(len)
        }
        (Err(e), inline) => {
            if inline.is_none() {
                hasher.abort();
            }
            Err(e)
        }
    }
}

/// Files up to this size are hashed on the copying thread (see `write_temp`).
const INLINE_MAX: u64 = 64 << 10;

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Sha256;

    /// Returns at most `step` bytes a read, then fails with `fail_at` if set.
    struct Dribble<'a> {
        data: &'a [u8],
        pos: usize,
        step: usize,
        fail_at: Option<usize>,
    }
    impl Read for Dribble<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.fail_at.is_some_and(|f| self.pos >= f) {
                return Err(std::io::Error::other("injected"));
            }
            let n = buf.len().min(self.step).min(self.data.len() - self.pos);
            buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    struct Count(u64);
    impl Progress for Count {
        fn advance(&mut self, b: u64) {
            self.0 += b;
        }
    }

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 + i / 4099) as u8).collect()
    }

    #[test]
    fn hash_reader_matches_one_shot_hash_at_chunk_boundaries() {
        let mut hasher = Hasher::new();
        for len in [
            0,
            1,
            CHUNK - 1,
            CHUNK,
            CHUNK + 1,
            3 * CHUNK,
            5 * CHUNK + 12345,
        ] {
            let d = data(len);
            for step in [usize::MAX, 1_000_003] {
                let mut r = Dribble {
                    data: &d,
                    pos: 0,
                    step,
                    fail_at: None,
                };
                let mut p = Count(0);
                let (sha, n) = hash_reader(&mut r, &mut hasher, &mut p).unwrap();
                assert_eq!(n, len as u64);
                assert_eq!(p.0, len as u64);
                assert_eq!(
                    sha,
                    <[u8; 32]>::from(Sha256::digest(&d)),
                    "len {len} step {step}"
                );
            }
        }
    }

    #[test]
    fn hash_reader_reports_a_read_error_in_any_chunk() {
        let mut hasher = Hasher::new();
        let d = data(4 * CHUNK);
        for fail_at in [0, CHUNK / 2, 2 * CHUNK + 7] {
            let mut r = Dribble {
                data: &d,
                pos: 0,
                step: usize::MAX,
                fail_at: Some(fail_at),
            };
            assert!(hash_reader(&mut r, &mut hasher, &mut Count(0)).is_err());
        }
        // The hasher is still usable afterwards: what it had of the failed reads is dropped.
        let mut r = Dribble {
            data: &d,
            pos: 0,
            step: usize::MAX,
            fail_at: None,
        };
        let (sha, _) = hash_reader(&mut r, &mut hasher, &mut Count(0)).unwrap();
        assert_eq!(sha, <[u8; 32]>::from(Sha256::digest(&d)));
    }
}
