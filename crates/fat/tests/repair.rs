//! Crash repair: a volume left dirty with lost clusters and differing FAT copies (what an
//! interrupted write leaves) is repaired by `repair_after_crash`; anything else is left alone.

use std::io::{Cursor, Seek, SeekFrom, Write};

use sdexport_fat::{format, FileSystem, FormatOptions};

fn fresh(bytes: u64) -> Cursor<Vec<u8>> {
    let mut c = Cursor::new(vec![0u8; bytes as usize]);
    format(
        &mut c,
        &FormatOptions {
            volume_bytes: bytes,
            ..Default::default()
        },
    )
    .unwrap();
    c.seek(SeekFrom::Start(0)).unwrap();
    c
}

#[test]
fn an_interrupted_write_is_repaired_on_the_next_open() {
    let mut fs = FileSystem::open(fresh(64 << 20)).unwrap();
    let mut w = fs.create_file("keep.bin").unwrap();
    w.write_all(&vec![7u8; 100_000]).unwrap();
    w.finish(None).unwrap();
    fs.flush().unwrap();
    // A writer that is dropped without `finish` stands for a process killed mid-copy.
    {
        let mut w = fs.create_file("partial.bin").unwrap();
        w.write_all(&vec![9u8; 3 << 20]).unwrap();
    }
    // Leave the volume as a crash would: take its bytes now, with no final flush.
    let bytes = fs.storage_mut().get_ref().clone();
    std::mem::forget(fs);
    let mut fs = FileSystem::open(Cursor::new(bytes)).unwrap();
    let rep = fs.repair_after_crash().unwrap();
    assert!(rep.was_dirty && rep.repaired, "{rep:?}");
    assert!(rep.remaining.is_empty(), "{rep:?}");
    let check = fs.check().unwrap();
    assert!(check.problems.is_empty(), "{:?}", check.problems);
    let reopened = FileSystem::open(fs.into_inner().unwrap()).unwrap();
    assert!(!reopened.info().was_dirty, "the dirty flag was not cleared");
}

#[test]
fn a_clean_volume_is_not_touched() {
    let mut fs = FileSystem::open(fresh(16 << 20)).unwrap();
    let rep = fs.repair_after_crash().unwrap();
    assert!(
        !rep.was_dirty && !rep.repaired && rep.freed_clusters == 0,
        "{rep:?}"
    );
}
