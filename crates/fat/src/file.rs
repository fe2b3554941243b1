//! File data: a reader that turns contiguous cluster runs into single large storage reads,
//! and a writer that allocates contiguous clusters next-fit and writes straight into them
//! (small writes gathered up to [`CHUNK`]), committing FAT before the directory entry.

use std::io::{self, Read, Seek, SeekFrom, Write};

use chrono::NaiveDateTime;

use crate::boot::corrupt;
use crate::dir::{self, ATTR_ARCHIVE};
use crate::table::Entry;
use crate::{Error, File, FileWriter, Loc, Result, Storage};

/// Small writes are gathered up to this size, and small reads read ahead by this much;
/// larger ones go straight to the storage. Long enough for efficient storage requests,
/// and small next to a run's other memory: the manifest of 100,000 photos is written and
/// read back through it.
pub(crate) const CHUNK: usize = 1024 * 1024;
/// The largest size a FAT directory entry can record.
const MAX_FILE: u64 = 0xFFFF_FFFF;

impl<S: Storage> File<'_, S> {
    /// Size of the file in bytes.
    pub fn len(&self) -> u64 {
        self.size
    }
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// Storage offset of file byte `pos` and how many bytes of the same contiguous run
    /// follow it.
    fn locate(&self, pos: u64) -> Result<(u64, u64)> {
        let cb = u64::from(self.fs.geo.bytes_per_cluster);
        let ci = pos / cb;
        let r = match self.run_starts.binary_search(&ci) {
            Ok(i) => i,
            Err(0) => return Err(corrupt("file position before its first cluster")),
            Err(i) => i - 1,
        };
        let (start, len) = self.runs[r];
        let run_first = self.run_starts[r];
        let within = ci - run_first;
        if within >= u64::from(len) {
            return Err(corrupt("file position past its cluster chain"));
        }
        let off = self.fs.geo.cluster_offset(start) + within * cb + pos % cb;
        let avail = (u64::from(len) - within) * cb - pos % cb;
        Ok((off, avail))
    }

    /// Read at `self.pos` directly into `out` (one storage read, within one run).
    fn read_direct(&mut self, out: &mut [u8]) -> Result<usize> {
        let (off, avail) = self.locate(self.pos)?;
        let n = (out.len() as u64).min(avail).min(self.size - self.pos) as usize;
        self.fs.read_at(off, &mut out[..n])?;
        Ok(n)
    }
}

impl<S: Storage> Read for File<'_, S> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.size || out.is_empty() {
            return Ok(0);
        }
        // Served from the read-ahead buffer?
        let buf_end = self.buf_pos + self.buf.len() as u64;
        if self.pos >= self.buf_pos && self.pos < buf_end {
            let from = (self.pos - self.buf_pos) as usize;
            let n = out.len().min(self.buf.len() - from);
            out[..n].copy_from_slice(&self.buf[from..from + n]);
            self.pos += n as u64;
            return Ok(n);
        }
        if out.len() >= CHUNK / 4 {
            let n = self.read_direct(out)?;
            self.pos += n as u64;
            return Ok(n);
        }
        // Small reads: fetch up to CHUNK of the current contiguous run in one go.
        let (off, avail) = self.locate(self.pos)?;
        let n = (CHUNK as u64).min(avail).min(self.size - self.pos) as usize;
        let mut buf = std::mem::take(&mut self.buf);
        buf.resize(n, 0);
        if let Err(e) = self.fs.read_at(off, &mut buf) {
            buf.clear();
            self.buf = buf;
            return Err(e.into());
        }
        self.buf = buf;
        self.buf_pos = self.pos;
        let k = out.len().min(n);
        out[..k].copy_from_slice(&self.buf[..k]);
        self.pos += k as u64;
        Ok(k)
    }
}

impl<S: Storage> Seek for File<'_, S> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let new = match pos {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.size.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match new {
            Some(p) => {
                self.pos = p;
                Ok(p)
            }
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek to a negative or overflowing position",
            )),
        }
    }
}

impl<S: Storage> FileWriter<'_, S> {
    /// Bytes accepted so far.
    pub fn len(&self) -> u64 {
        self.written + self.buf.len() as u64
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn clusters_held(&self) -> u64 {
        self.runs.iter().map(|&(_, l)| u64::from(l)).sum()
    }

    /// Give back every cluster taken so far (they never reached the on-disk FAT).
    fn release(&mut self) {
        for &(s, l) in &self.runs {
            for c in s..s + l {
                self.fs.fat.set(c, Entry::Free);
            }
        }
        self.runs.clear();
    }

    /// Allocate clusters for `data` (extending the chain, contiguously when possible) and
    /// write it with one storage write per contiguous run.
    fn write_data(&mut self, data: &[u8]) -> Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let cb = u64::from(self.fs.geo.bytes_per_cluster);
        let mut need = (data.len() as u64).div_ceil(cb) as u32;
        let first_new = self.runs.len();
        let mut first_new_offset_in_last = None;
        while need > 0 {
            let tail = self.runs.last().map(|&(s, l)| s + l - 1);
            let Some((s, l)) = self.fs.fat.alloc_run(tail.map(|t| t + 1), need) else {
                let available = (u64::from(self.fs.fat.free_count()) + self.clusters_held()) * cb;
                let needed = self.written + data.len() as u64;
                self.release();
                self.failed = Some((needed, available));
                return Err(Error::NoSpace { needed, available });
            };
            if let Some(t) = tail {
                self.fs.fat.set(t, Entry::Next(s));
            }
            let at_old_tail = self.runs.len() == first_new;
            match self.runs.last_mut() {
                Some((rs, rl)) if *rs + *rl == s => {
                    if first_new_offset_in_last.is_none() && at_old_tail {
                        first_new_offset_in_last = Some(*rl);
                    }
                    *rl += l;
                }
                _ => self.runs.push((s, l)),
            }
            need -= l;
        }
        // Runs to write into: the tail of the run we extended, then the new runs.
        let mut pieces: Vec<(u32, u32)> = Vec::new();
        if let Some(off) = first_new_offset_in_last {
            let (s, l) = self.runs[first_new - 1];
            pieces.push((s + off, l - off));
        }
        pieces.extend_from_slice(&self.runs[first_new..]);
        let mut done = 0usize;
        for (s, l) in pieces {
            if done >= data.len() {
                break;
            }
            let n = ((u64::from(l) * cb) as usize).min(data.len() - done);
            let off = self.fs.geo.cluster_offset(s);
            self.fs.write_at(off, &data[done..done + n])?;
            done += n;
        }
        self.written += data.len() as u64;
        Ok(())
    }

    /// Commit the file: data written, FAT chain linked, directory entry updated with size
    /// and the modified time (if given, else now). Returns the size.
    pub fn finish(mut self, modified: Option<NaiveDateTime>) -> Result<u64> {
        if let Some((needed, available)) = self.failed {
            return Err(Error::NoSpace { needed, available });
        }
        let rest = std::mem::take(&mut self.buf);
        self.write_data(&rest)?;
        // 1. data is written; 2. the chain reaches every FAT copy; 3. the entry points to it.
        self.fs.flush_fat()?;
        self.done = true;
        let loc = Loc {
            dir: self.dir,
            slot: self.slot,
        };
        let mut e = self.fs.parsed(loc)?.raw;
        let first = self.runs.first().map(|&(s, _)| s).unwrap_or(0);
        dir::set_entry_cluster(&mut e, first);
        // Bounded by MAX_FILE in `write`.
        dir::set_entry_size(&mut e, self.written as u32);
        e[11] |= ATTR_ARCHIVE;
        let (d, t, _) = dir::encode_time(modified.unwrap_or_else(dir::now));
        crate::boot::put16(&mut e, 22, t);
        crate::boot::put16(&mut e, 24, d);
        crate::boot::put16(&mut e, 18, d);
        self.fs.update_entry(loc, e)?;
        Ok(self.written)
    }

    /// Path the writer was created for.
    pub fn path(&self) -> &str {
        &self.path
    }
}

impl<S: Storage> Write for FileWriter<'_, S> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if let Some((needed, available)) = self.failed {
            return Err(Error::NoSpace { needed, available }.into());
        }
        if data.is_empty() {
            return Ok(0);
        }
        if self.len() + data.len() as u64 > MAX_FILE {
            return Err(Error::FileTooLarge.into());
        }
        let cb = self.fs.geo.bytes_per_cluster as usize;
        if self.buf.is_empty() && data.len() >= CHUNK {
            // Large writes go straight from the caller's buffer, whole clusters at a time.
            let n = data.len() / cb * cb;
            self.write_data(&data[..n])?;
            return Ok(n);
        }
        // The buffer grows as needed (small files never allocate all of it) and is kept.
        let take = data.len().min(CHUNK - self.buf.len());
        let want = self.buf.len() + take;
        if want > self.buf.capacity() {
            // Doubling, but never past CHUNK: writes of a size that does not divide CHUNK
            // (a BufWriter's) would otherwise grow it to twice what it ever holds.
            let to = (self.buf.capacity() * 2).clamp(want, CHUNK);
            self.buf.reserve_exact(to - self.buf.len());
        }
        self.buf.extend_from_slice(&data[..take]);
        if self.buf.len() == CHUNK {
            let chunk = std::mem::take(&mut self.buf);
            let r = self.write_data(&chunk);
            self.buf = chunk;
            self.buf.clear();
            r?;
        }
        Ok(take)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<S: Storage> Drop for FileWriter<'_, S> {
    fn drop(&mut self) {
        if !self.done {
            self.release();
        }
    }
}
