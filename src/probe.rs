//! `sdexport probe`: find out whether a card keeps what is written to it, without touching the
//! data already on it.
//!
//! Counterfeit cards claim more capacity than they have and silently wrap writes past their
//! real size onto earlier data; failing cards return wrong data. f3probe and H2testw detect
//! this by writing a pattern and reading it back. We do the same, but only in the card's free
//! space, through the card's own file system, so files already on the card are safe: the
//! pattern goes into temporary files under `.sdexport/probe/`, which are removed afterwards.
//!
//! Every 4 KiB block carries its own index and a seed in its first 16 bytes and pseudo-random
//! bytes derived from both after that, so a block that reads back as another block's content
//! tells *where* the card wrapped.

use std::io::{Read, Write};

use crate::storage::{StorageError, Volume};

pub const PROBE_DIR: &str = ".sdexport/probe";
/// Written by a probe that tested the whole free space and found it sound: what `--batch`
/// needs (docs/SAFETY.md).
pub const PASSED_PATH: &str = ".sdexport/probe-passed.json";

/// What [`PASSED_PATH`] records.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Passed {
    /// The volume's total size when probed: a record from another card (or the same card
    /// formatted to another size) does not count.
    pub total_bytes: u64,
    pub bytes_tested: u64,
    pub probed_at: String,
}

/// Whether this card passed a whole-free-space probe (see [`PASSED_PATH`]).
pub fn passed(card: &mut dyn Volume) -> Result<bool, StorageError> {
    if card.stat(PASSED_PATH)?.is_none() {
        return Ok(false);
    }
    let mut text = String::new();
    if card
        .open_read(PASSED_PATH)?
        .read_to_string(&mut text)
        .is_err()
    {
        return Ok(false);
    }
    let total = card.space()?.total_bytes;
    Ok(serde_json::from_str::<Passed>(&text).is_ok_and(|p| p.total_bytes == total))
}
pub(crate) const BLOCK: usize = 4096;
/// Files stay well below FAT32's 4 GiB limit.
const FILE_BYTES: u64 = 1 << 30;
/// Writes in large pieces: sequential I/O is what cards are fast at.
const CHUNK_BLOCKS: usize = 256;

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ProbeReport {
    /// Bytes of free space written and read back.
    pub bytes_tested: u64,
    pub free_bytes_before: u64,
    /// Blocks that read back wrong.
    pub bad_blocks: u64,
    /// Bytes written before the first block that read back wrong (a counterfeit card's real
    /// size is about this much plus what was already on it).
    pub first_bad_offset: Option<u64>,
    /// A bad block that holds another block's pattern: the card wrapped onto earlier data.
    pub wraps: bool,
    /// The write stopped early (card full sooner than it claimed, or an I/O error).
    pub write_error: Option<String>,
}

impl ProbeReport {
    pub fn ok(&self) -> bool {
        self.bad_blocks == 0 && self.write_error.is_none()
    }
}

/// The pattern of block `index` (4 KiB) for `seed`; also the filler of
/// [`crate::transfer`]'s cache flush, which only needs blocks that differ and are not zero.
pub(crate) fn fill_block(buf: &mut [u8], index: u64, seed: u64) {
    buf[..8].copy_from_slice(&index.to_le_bytes());
    buf[8..16].copy_from_slice(&seed.to_le_bytes());
    let mut x = (index ^ seed).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for chunk in buf[16..].chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let b = x.to_le_bytes();
        chunk.copy_from_slice(&b[..chunk.len()]);
    }
}

/// Write the pattern over (at most `limit` bytes of) the free space, read it back, compare,
/// and remove the pattern files.
pub fn probe(
    card: &mut dyn Volume,
    limit: Option<u64>,
    progress: &mut dyn FnMut(&str, u64),
) -> Result<ProbeReport, StorageError> {
    let space = card.space()?;
    let mut report = ProbeReport {
        free_bytes_before: space.free_bytes,
        ..Default::default()
    };
    // Leave room for the directory entries of the probe files themselves.
    let usable = space
        .free_bytes
        .saturating_sub(4 * space.cluster_bytes.max(BLOCK as u64));
    let target = limit.map_or(usable, |l| l.min(usable)) / BLOCK as u64 * BLOCK as u64;
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0x5D_E3_70_27);
    let state_dir_existed = card.stat(crate::manifest::STATE_DIR)?.is_some();
    card.create_dir_all(PROBE_DIR)?;
    let result = write_and_check(card, target, seed, &mut report, progress);
    // Always try to give the space back, even after an error.
    let mut cleanup = remove_probe_files(card);
    if cleanup.is_ok() && !state_dir_existed {
        cleanup = card.remove_dir(crate::manifest::STATE_DIR);
    }
    result?;
    cleanup?;
    // Only a probe of the whole free space vouches for the card's capacity.
    if report.ok() && report.bytes_tested >= usable / BLOCK as u64 * BLOCK as u64 {
        let record = Passed {
            total_bytes: space.total_bytes,
            bytes_tested: report.bytes_tested,
            probed_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        };
        let json =
            serde_json::to_vec_pretty(&record).map_err(|e| StorageError::Other(e.to_string()))?;
        card.create_dir_all(crate::manifest::STATE_DIR)?;
        crate::manifest::replace_file(card, PASSED_PATH, &mut |w| w.write_all(&json))?;
    }
    card.sync()?;
    Ok(report)
}

fn remove_probe_files(card: &mut dyn Volume) -> Result<(), StorageError> {
    if card.stat(PROBE_DIR)?.is_some() {
        for e in card.list(PROBE_DIR)? {
            card.remove_file(&e.path)?;
        }
        card.remove_dir(PROBE_DIR)?;
    }
    Ok(())
}

fn write_and_check(
    card: &mut dyn Volume,
    target: u64,
    seed: u64,
    report: &mut ProbeReport,
    progress: &mut dyn FnMut(&str, u64),
) -> Result<(), StorageError> {
    let mut files: Vec<(String, u64)> = Vec::new();
    let mut written = 0u64;
    let mut buf = vec![0u8; BLOCK * CHUNK_BLOCKS];
    'files: while written < target {
        let path = format!("{PROBE_DIR}/probe-{:04}.bin", files.len());
        let this_file = (target - written).min(FILE_BYTES);
        let mut sink = card.create_new(&path)?;
        let mut in_file = 0u64;
        while in_file < this_file {
            let blocks = (((this_file - in_file) / BLOCK as u64) as usize).min(CHUNK_BLOCKS);
            let first = (written + in_file) / BLOCK as u64;
            for b in 0..blocks {
                fill_block(&mut buf[b * BLOCK..(b + 1) * BLOCK], first + b as u64, seed);
            }
            if let Err(e) = sink.write_all(&buf[..blocks * BLOCK]) {
                report.write_error = Some(format!(
                    "writing the pattern failed after {} bytes: {e}",
                    written + in_file
                ));
                drop(sink);
                files.push((path, in_file));
                written += in_file;
                break 'files;
            }
            in_file += (blocks * BLOCK) as u64;
            progress("write", (blocks * BLOCK) as u64);
        }
        if let Err(e) = sink.finish(None) {
            report.write_error = Some(format!(
                "finishing a pattern file failed after {written} bytes: {e}"
            ));
            files.push((path, in_file));
            written += in_file;
            break;
        }
        files.push((path, in_file));
        written += in_file;
    }
    card.sync()?;
    card.drop_caches()?;
    let mut offset = 0u64;
    let mut want = vec![0u8; BLOCK];
    for (path, len) in &files {
        let mut r = match card.open_read(path) {
            Ok(r) => r,
            Err(e) => {
                // The card lost the file itself (its directory or FAT was overwritten):
                // every block of it counts as lost.
                report
                    .write_error
                    .get_or_insert(format!("cannot read {path} back: {e}"));
                report.bad_blocks += len / BLOCK as u64;
                report.first_bad_offset.get_or_insert(offset);
                offset += len;
                continue;
            }
        };
        let mut done = 0u64;
        while done < *len {
            let n = ((len - done) as usize).min(buf.len()) / BLOCK * BLOCK;
            if n == 0 {
                break;
            }
            if let Err(e) = r.read_exact(&mut buf[..n]) {
                report.write_error.get_or_insert(format!(
                    "reading the pattern back failed at {}: {e}",
                    offset + done
                ));
                let lost = (len - done) / BLOCK as u64;
                report.bad_blocks += lost;
                report.first_bad_offset.get_or_insert(offset + done);
                break;
            }
            for b in 0..n / BLOCK {
                let index = (offset + done) / BLOCK as u64 + b as u64;
                let got = &buf[b * BLOCK..(b + 1) * BLOCK];
                fill_block(&mut want, index, seed);
                if got != want.as_slice() {
                    report.bad_blocks += 1;
                    report
                        .first_bad_offset
                        .get_or_insert(offset + done + (b * BLOCK) as u64);
                    let other = u64::from_le_bytes(got[..8].try_into().unwrap_or([0; 8]));
                    let other_seed = u64::from_le_bytes(got[8..16].try_into().unwrap_or([0; 8]));
                    if other_seed == seed && other != index {
                        report.wraps = true;
                    }
                }
            }
            done += n as u64;
            progress("verify", n as u64);
        }
        offset += len;
    }
    report.bytes_tested = written;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_differ_by_index_and_seed() {
        let (mut a, mut b, mut c) = (vec![0u8; BLOCK], vec![0u8; BLOCK], vec![0u8; BLOCK]);
        fill_block(&mut a, 1, 7);
        fill_block(&mut b, 2, 7);
        fill_block(&mut c, 1, 8);
        assert_ne!(a, b);
        assert_ne!(a, c);
        let mut again = vec![0u8; BLOCK];
        fill_block(&mut again, 1, 7);
        assert_eq!(a, again);
    }
}
