//! `sdexport probe` against cards that lie: a counterfeit card that wraps writes past its
//! real capacity is caught, a good card passes, and files already on the card survive.

use std::io::{self, Cursor, Read, Seek, SeekFrom, Write};

use sdexport::probe::probe;
use sdexport::storage::fat::{FatVolume, Medium};
use sdexport::storage::Volume;

/// A card that claims `claimed` bytes but stores only `real`: every address is taken modulo
/// the real size, as counterfeit cards do.
struct WrappingCard {
    data: Vec<u8>,
    claimed: u64,
    pos: u64,
}

impl WrappingCard {
    fn new(real: usize, claimed: u64) -> Self {
        WrappingCard {
            data: vec![0; real],
            claimed,
            pos: 0,
        }
    }
}

impl Read for WrappingCard {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf
            .len()
            .min(self.claimed.saturating_sub(self.pos) as usize);
        for (i, b) in buf[..n].iter_mut().enumerate() {
            *b = self.data[((self.pos + i as u64) % self.data.len() as u64) as usize];
        }
        self.pos += n as u64;
        Ok(n)
    }
}

impl Write for WrappingCard {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf
            .len()
            .min(self.claimed.saturating_sub(self.pos) as usize);
        let len = self.data.len() as u64;
        for (i, b) in buf[..n].iter().enumerate() {
            self.data[((self.pos + i as u64) % len) as usize] = *b;
        }
        self.pos += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for WrappingCard {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.pos = match pos {
            SeekFrom::Start(p) => p,
            SeekFrom::End(d) => self
                .claimed
                .checked_add_signed(d)
                .ok_or(io::ErrorKind::InvalidInput)?,
            SeekFrom::Current(d) => self
                .pos
                .checked_add_signed(d)
                .ok_or(io::ErrorKind::InvalidInput)?,
        };
        Ok(self.pos)
    }
}

impl Medium for WrappingCard {}

fn formatted<M: Medium>(mut m: M, bytes: u64) -> FatVolume<M> {
    let opts = sdexport_fat::FormatOptions {
        volume_bytes: bytes,
        ..Default::default()
    };
    sdexport_fat::format(&mut m, &opts).unwrap();
    m.seek(SeekFrom::Start(0)).unwrap();
    FatVolume::open(m, "test card").unwrap()
}

fn put(v: &mut dyn Volume, path: &str, data: &[u8]) {
    let mut s = v.create_new(path).unwrap();
    s.write_all(data).unwrap();
    s.finish(None).unwrap();
}

fn get(v: &mut dyn Volume, path: &str) -> Vec<u8> {
    let mut out = Vec::new();
    v.open_read(path).unwrap().read_to_end(&mut out).unwrap();
    out
}

#[test]
fn a_good_card_passes_and_keeps_its_files() {
    let mut v = formatted(Cursor::new(vec![0u8; 48 << 20]), 48 << 20);
    let photo: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    put(&mut v, "IMG_0001.JPG", &photo);
    v.sync().unwrap();
    let r = probe(&mut v, None, &mut |_, _| {}).unwrap();
    assert!(r.ok(), "{r:?}");
    assert!(r.bytes_tested > 40 << 20, "{r:?}");
    assert_eq!(get(&mut v, "IMG_0001.JPG"), photo);
    assert!(
        v.stat(".sdexport/probe").unwrap().is_none(),
        "probe files left behind"
    );
    // The space comes back, but for the record of the pass (a folder and a small file).
    let space = v.space().unwrap();
    assert!(
        r.free_bytes_before - space.free_bytes <= 2 * space.cluster_bytes,
        "the probe did not give the space back: {} of {} free",
        space.free_bytes,
        r.free_bytes_before
    );
    assert!(
        sdexport::probe::passed(&mut v).unwrap(),
        "no record of the pass"
    );
    // A probe of part of the free space vouches for nothing.
    let mut w = formatted(Cursor::new(vec![0u8; 48 << 20]), 48 << 20);
    assert!(probe(&mut w, Some(1 << 20), &mut |_, _| {}).unwrap().ok());
    assert!(!sdexport::probe::passed(&mut w).unwrap());
    let report = v.fs().check().unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

#[test]
fn a_counterfeit_card_is_caught() {
    // Claims 64 MiB, holds 16: writes past 16 MiB land on earlier data.
    let card = WrappingCard::new(16 << 20, 64 << 20);
    let mut v = formatted(card, 64 << 20);
    match probe(&mut v, None, &mut |_, _| {}) {
        Ok(r) => {
            assert!(!r.ok(), "a wrapping card passed: {r:?}");
            assert!(r.bad_blocks > 0, "{r:?}");
            let first = r.first_bad_offset.unwrap();
            assert!(first < 16 << 20, "first bad block after {first} bytes");
            assert!(
                !sdexport::probe::passed(&mut v).unwrap_or(false),
                "a failed probe left a record of a pass"
            );
        }
        // The wrap may also destroy the file system's own structures: refusing to go on is
        // a correct answer too, as long as it is an error and not a pass.
        Err(e) => eprintln!("probe stopped with an error on the fake card (accepted): {e}"),
    }
}
