//! SHA-256 of the run's copies on a second thread, across files.
//!
//! Hashing (one core at ~1.8 GB/s with SHA-NI) costs about as much as reading and writing a
//! photo through the page cache. A per-file hashing thread would only help files larger than
//! one chunk, so one thread serves the whole run: the copy loop hands it each chunk right
//! after writing it and goes on with the next chunk — or the next file — while the digest
//! is computed. Digests come back tagged with the file's index; the run collects them
//! before it reads anything back. The same thread hashes the read-backs and the checks of
//! files already on the card ([`super::copy::hash_reader`]), each chunk while the next is
//! read. At most [`DEPTH`] chunks are in flight, so memory stays bounded and a slow hasher
//! slows the copy rather than queueing without end.

use std::collections::HashMap;
use std::sync::mpsc::{channel, sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

use sha2::{Digest, Sha256};

use super::copy::{give_back, take_buffer, CHUNK, DEPTH};

enum Msg {
    /// Bytes of the current file, in order.
    Chunk(Vec<u8>, usize),
    /// The current file is complete: send its digest under this index.
    End(usize),
    /// The current file failed: forget what was hashed of it.
    Abort,
}

/// The run's hashing thread (or, where no thread can be started, hashing inline).
pub struct Hasher {
    work: Option<SyncSender<Msg>>,
    done: Option<Receiver<(usize, [u8; 32])>>,
    free: Option<Receiver<Vec<u8>>>,
    thread: Option<JoinHandle<()>>,
    /// Buffers handed out that have not come back.
    buffers: usize,
    /// Files ended whose digest has not been received.
    outstanding: usize,
    /// Digests received (or, inline, computed) and not yet claimed.
    ready: HashMap<usize, [u8; 32]>,
    /// The inline hasher's state, when there is no thread.
    inline: Option<Sha256>,
}

impl Hasher {
    pub fn new() -> Hasher {
        let (work, jobs) = sync_channel::<Msg>(DEPTH);
        let (back, free) = channel();
        let (send_done, done) = channel();
        let spawned = std::thread::Builder::new()
            .name("sha256".into())
            .spawn(move || {
                let mut h = Sha256::new();
                for msg in jobs {
                    match msg {
                        Msg::Chunk(buf, n) => {
                            h.update(&buf[..n]);
                            let _ = back.send(buf);
                        }
                        Msg::End(index) => {
                            let _ = send_done.send((index, h.finalize_reset().into()));
                        }
                        Msg::Abort => h.reset(),
                    }
                }
            });
        match spawned {
            Ok(thread) => Hasher {
                work: Some(work),
                done: Some(done),
                free: Some(free),
                thread: Some(thread),
                buffers: 0,
                outstanding: 0,
                ready: HashMap::new(),
                inline: None,
            },
            Err(_) => Hasher {
                work: None,
                done: None,
                free: None,
                thread: None,
                buffers: 0,
                outstanding: 0,
                ready: HashMap::new(),
                inline: Some(Sha256::new()),
            },
        }
    }

    /// A buffer of `CHUNK` bytes to fill; waits for the hasher when `DEPTH` are in flight.
    pub fn buffer(&mut self) -> Vec<u8> {
        let Some(free) = &self.free else {
            return take_buffer();
        };
        if let Ok(b) = free.try_recv() {
            return b;
        }
        if self.buffers < DEPTH {
            self.buffers += 1;
            return take_buffer();
        }
        // Every buffer is with the hasher: wait for one (if it is gone, make one; the
        // digests it owes are then missing and `wait_all` re-raises its panic).
        free.recv().unwrap_or_else(|_| vec![0u8; CHUNK])
    }

    /// A buffer the caller did not hand over (an error before it was filled or written).
    pub fn unused(&mut self, buf: Vec<u8>) {
        // Back to the pool, and no longer counted as out.
        if self.free.is_some() {
            self.buffers = self.buffers.saturating_sub(1);
        }
        give_back(buf);
    }

    /// Hash `buf[..n]` as the next bytes of the current file.
    pub fn chunk(&mut self, buf: Vec<u8>, n: usize) {
        match &self.work {
            Some(w) => {
                // Fails only if the hasher panicked; `wait_all` re-raises that panic.
                let _ = w.send(Msg::Chunk(buf, n));
            }
            None => {
                if let Some(h) = &mut self.inline {
                    h.update(&buf[..n]);
                }
                give_back(buf);
            }
        }
    }

    /// The current file is complete; its digest will be ready under `index`.
    pub fn end(&mut self, index: usize) {
        match &self.work {
            Some(w) => {
                if w.send(Msg::End(index)).is_ok() {
                    self.outstanding += 1;
                }
            }
            None => {
                if let Some(h) = &mut self.inline {
                    self.ready.insert(index, h.finalize_reset().into());
                }
            }
        }
    }

    /// File `index`'s digest, computed by the caller (a file too small to hand over).
    pub fn put(&mut self, index: usize, digest: [u8; 32]) {
        self.ready.insert(index, digest);
    }

    /// The current file failed: what was hashed of it is dropped.
    pub fn abort(&mut self) {
        match &self.work {
            Some(w) => {
                let _ = w.send(Msg::Abort);
            }
            None => {
                if let Some(h) = &mut self.inline {
                    h.reset();
                }
            }
        }
    }

    /// The digest of file `index`, waiting for it if it is still being computed. `None`
    /// if it was never ended (or the hasher is gone).
    pub fn wait_for(&mut self, index: usize) -> Option<[u8; 32]> {
        while !self.ready.contains_key(&index) && self.outstanding > 0 {
            if !self.receive(true) {
                break;
            }
        }
        self.ready.remove(&index)
    }

    /// Hand every digest computed so far to `take`, without waiting. Called after each
    /// file, so that digests do not pile up in the channel on runs of many small files.
    pub fn take_ready(&mut self, take: &mut dyn FnMut(usize, [u8; 32])) {
        while self.receive(false) {}
        for (index, digest) in self.ready.drain() {
            take(index, digest);
        }
    }

    /// Hand every digest ended so far to `take`, waiting for those still being computed;
    /// then the buffers go back to the thread's pool, for the read-back.
    pub fn wait_all(&mut self, take: &mut dyn FnMut(usize, [u8; 32])) {
        while self.outstanding > 0 {
            if !self.receive(true) {
                self.reraise_panic();
                break;
            }
        }
        for (index, digest) in self.ready.drain() {
            take(index, digest);
        }
        if let Some(free) = &self.free {
            // Every chunk before the last digest was hashed and its buffer sent back.
            for b in free.try_iter() {
                self.buffers = self.buffers.saturating_sub(1);
                give_back(b);
            }
        }
    }

    /// Receive one digest; false when there is none (`block`: when the hasher is gone).
    fn receive(&mut self, block: bool) -> bool {
        let Some(done) = &self.done else {
            return false;
        };
        let got = if block {
            done.recv().ok()
        } else {
            done.try_recv().ok()
        };
        match got {
            Some((index, digest)) => {
                self.outstanding -= 1;
                self.ready.insert(index, digest);
                true
            }
            None => false,
        }
    }

    fn reraise_panic(&mut self) {
        self.work.take();
        if let Some(t) = self.thread.take() {
            if let Err(panic) = t.join() {
                std::panic::resume_unwind(panic);
            }
        }
    }
}

impl Drop for Hasher {
    fn drop(&mut self) {
        // Closing the channel ends the thread; its buffers are freed with it.
        self.work.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(bytes: &[u8]) -> [u8; 32] {
        Sha256::digest(bytes).into()
    }

    fn feed(h: &mut Hasher, data: &[u8], step: usize) {
        for part in data.chunks(step) {
            let mut buf = h.buffer();
            buf[..part.len()].copy_from_slice(part);
            h.chunk(buf, part.len());
        }
    }

    #[test]
    fn digests_of_many_files_in_any_chunking_with_aborts_between() {
        let a: Vec<u8> = (0..9_000_000u32).map(|i| (i * 7) as u8).collect();
        let b = b"small".to_vec();
        let mut h = Hasher::new();
        feed(&mut h, &a, CHUNK);
        h.end(3);
        feed(&mut h, &a[..1000], 999);
        h.abort();
        feed(&mut h, &b, 2);
        h.end(7);
        h.end(8); // an empty file
        assert_eq!(h.wait_for(7), Some(sha(&b)));
        let mut all = Vec::new();
        h.wait_all(&mut |i, d| all.push((i, d)));
        all.sort();
        assert_eq!(all, vec![(3, sha(&a)), (8, sha(b""))]);
        let mut none = 0;
        h.take_ready(&mut |_, _| none += 1);
        assert_eq!(none, 0);
        assert_eq!(h.wait_for(99), None);
    }

    #[test]
    fn more_chunks_than_buffers_in_flight() {
        let mut h = Hasher::new();
        let data = vec![5u8; 3 * CHUNK + 17];
        for _ in 0..3 {
            feed(&mut h, &data, CHUNK);
            h.end(1);
            assert_eq!(h.wait_for(1), Some(sha(&data)));
        }
        assert!(h.buffers <= DEPTH);
    }
}
