//! Pushing a run's copies out of a card's volatile write cache before they are read back.
//!
//! A card may keep its most recent writes in a RAM cache that it answers reads from, that a
//! flush does not empty (a failing or badly made card acknowledges the flush anyway), and
//! that is lost when the card is pulled. Reading a copy back while it sits in that cache
//! proves nothing. Before the last read-back of a `--move` run we therefore write, flush and
//! delete a filler file at least as large as the cache we guard against: every copy written
//! before it has then left the cache, and the read-back sees what the flash holds.
//!
//! The filler goes to the temporary folder, so a run interrupted while writing it leaves a
//! temp file that the next run removes like any other. Its bytes are `sdexport probe`'s
//! pseudo-random blocks: a card (or a layer above it) could store zeros without writing them.

use std::io::Write;

use crate::probe::{fill_block, BLOCK};
use crate::storage::{StorageError, Volume};

use super::TMP_DIR;

/// The write cache guarded against by default: the threat model of docs/SAFETY.md (cards
/// have far smaller RAM caches; the flash-based SLC caches of larger cards survive power
/// loss and need no pushing).
pub const DEFAULT_CACHE_BYTES: u64 = 64 << 20;

const CHUNK: usize = 4 << 20;

/// What the filler achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pushed {
    /// Bytes of filler written and flushed.
    pub written: u64,
    /// Bytes asked for: less was written when the card had too little free space.
    pub wanted: u64,
}

/// Write `wanted` bytes of filler (at most the card's free space less one cluster), flush
/// them, and delete the filler. Errors are returned for the caller to report; the copies
/// are read back either way, and that read-back decides what is released.
pub fn push_out(card: &mut dyn Volume, run_id: &str, wanted: u64) -> Result<Pushed, StorageError> {
    let space = card.space()?;
    let room = space.free_bytes.saturating_sub(space.cluster_bytes);
    // Whole blocks of the probe's pattern.
    let size = wanted
        .min(room)
        .min(card.limits().max_file_size.unwrap_or(u64::MAX))
        / BLOCK as u64
        * BLOCK as u64;
    let mut pushed = Pushed { written: 0, wanted };
    if size == 0 {
        return Ok(pushed);
    }
    card.create_dir_all(TMP_DIR)?;
    let path = format!("{TMP_DIR}/{run_id}-cache-filler");
    if card.stat(&path)?.is_some() {
        card.remove_file(&path)?;
    }
    let written = write_filler(card, &path, size);
    // Whatever happened, the filler must not stay: it only takes space.
    let removed = card.remove_file(&path);
    pushed.written = written?;
    removed?;
    Ok(pushed)
}

fn write_filler(card: &mut dyn Volume, path: &str, size: u64) -> Result<u64, StorageError> {
    {
        let mut sink = card.create_new(path)?;
        let mut buf = vec![0u8; CHUNK];
        let mut left = size;
        let mut block = 0u64;
        while left > 0 {
            let n = left.min(CHUNK as u64) as usize;
            for b in buf[..n].chunks_mut(BLOCK) {
                fill_block(b, block, size);
                block += 1;
            }
            sink.write_all(&buf[..n])
                .map_err(|e| StorageError::io(path, e))?;
            left -= n as u64;
        }
        sink.finish(None)?;
    }
    card.sync()?;
    Ok(size)
}
