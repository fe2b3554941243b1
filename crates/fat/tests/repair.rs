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

// ------------------------------------------------------------ repair_with (lost writes)

mod common;

use sdexport_fat::Problem;

/// Set FAT entry `cluster` to `value` in every FAT copy of the image at `path`, as a FAT
/// write the card acknowledged and dropped would leave it.
fn poke_fat(path: &std::path::Path, cluster: u32, value: u32) {
    let mut bytes = std::fs::read(path).unwrap();
    let u16_at = |b: &[u8], o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let sector = u16_at(&bytes, 11);
    let reserved = u16_at(&bytes, 14);
    let fats = bytes[16] as usize;
    let fat16_size = u16_at(&bytes, 22);
    let (fat_sectors, width) = if fat16_size != 0 {
        (fat16_size, 2)
    } else {
        (
            u32::from_le_bytes(bytes[36..40].try_into().unwrap()) as usize,
            4,
        )
    };
    for copy in 0..fats {
        let off = (reserved + copy * fat_sectors) * sector + cluster as usize * width;
        bytes[off..off + width].copy_from_slice(&value.to_le_bytes()[..width]);
    }
    std::fs::write(path, bytes).unwrap();
}

/// A card holding `keep.bin` and a temporary file `tmp/partial.bin` whose chain lost its
/// second link (its FAT write was dropped): returns the image.
fn card_with_a_broken_temp_file() -> common::Image {
    let img = common::image(64 << 20);
    common::our_format(&img, 64 << 20, Some(sdexport_fat::FatType::Fat32));
    let cluster_bytes;
    {
        let mut fs = common::open_fs(&img);
        cluster_bytes = fs.info().bytes_per_cluster as usize;
        fs.create_dir("tmp").unwrap();
        let mut w = fs.create_file("tmp/partial.bin").unwrap();
        w.write_all(&vec![5u8; 3 * cluster_bytes]).unwrap();
        w.finish(None).unwrap();
        let mut w = fs.create_file("keep.bin").unwrap();
        w.write_all(&vec![7u8; 2 * cluster_bytes + 1]).unwrap();
        w.finish(None).unwrap();
        fs.flush().unwrap();
    }
    // FAT32: root is cluster 2, `tmp` 3, partial.bin 4..=6 (next-fit allocation); the
    // precondition below checks that the damage lands where intended.
    poke_fat(&img.path, 5, 0);
    let problems = common::open_fs(&img).check().unwrap().problems;
    assert!(
        problems.contains(&Problem::ChainHitsFree {
            path: "/tmp/partial.bin".into(),
            cluster: 5
        }),
        "test setup: {problems:?}"
    );
    img
}

#[test]
fn a_damaged_disposable_file_is_forgotten_and_its_clusters_freed() {
    let img = card_with_a_broken_temp_file();
    let mut fs = common::open_fs(&img);
    let rep = fs.repair_with(&|p| p.starts_with("/tmp/")).unwrap();
    assert!(rep.repaired && rep.remaining.is_empty(), "{rep:?}");
    assert_eq!(rep.forgotten, vec!["/tmp/partial.bin".to_string()]);
    // Clusters 4 (still chained to nothing reachable) and 6 (cut off) are lost, then freed.
    assert_eq!(rep.freed_clusters, 2, "{rep:?}");
    assert!(fs.check().unwrap().problems.is_empty());
    let mut keep = Vec::new();
    std::io::Read::read_to_end(&mut fs.open_file("keep.bin").unwrap(), &mut keep).unwrap();
    assert!(keep.len() > 1 && keep.iter().all(|&b| b == 7));
    fs.flush().unwrap();
    drop(fs);
    common::assert_fsck_clean(&img.path);
}

#[test]
fn damage_to_a_file_not_called_disposable_is_refused_untouched() {
    let img = card_with_a_broken_temp_file();
    let before = std::fs::read(&img.path).unwrap();
    let mut fs = common::open_fs(&img);
    let rep = fs.repair_with(&|_| false).unwrap();
    assert!(!rep.repaired && rep.forgotten.is_empty(), "{rep:?}");
    assert!(rep
        .remaining
        .iter()
        .any(|p| matches!(p, Problem::ChainHitsFree { path, .. } if path == "/tmp/partial.bin")));
    drop(fs);
    assert!(
        std::fs::read(&img.path).unwrap() == before,
        "the image was written"
    );
}

#[test]
fn lost_clusters_on_a_clean_volume_are_freed() {
    let img = common::image(64 << 20);
    common::our_format(&img, 64 << 20, Some(sdexport_fat::FatType::Fat32));
    // Cluster 100 allocated (end of chain) but owned by no entry: a dropped entry write.
    poke_fat(&img.path, 100, 0x0FFF_FFFF);
    let mut fs = common::open_fs(&img);
    assert!(!fs.info().was_dirty);
    let rep = fs.repair_with(&|_| false).unwrap();
    assert!(rep.repaired && rep.freed_clusters == 1, "{rep:?}");
    fs.flush().unwrap();
    drop(fs);
    common::assert_fsck_clean(&img.path);
}

/// Slots past a directory's 0x00 end marker are free, but may still hold entries (here: a
/// lost write zeroed the first of three). A new entry written at the marker must not bring
/// them back: they would show up again as files whose clusters the FAT may have given away.
#[test]
fn entries_past_the_end_marker_stay_gone_when_the_gap_is_filled() {
    let img = common::image(64 << 20);
    common::our_format(&img, 64 << 20, Some(sdexport_fat::FatType::Fat32));
    {
        let mut fs = common::open_fs(&img);
        for name in ["A.BIN", "B.BIN", "C.BIN"] {
            let mut w = fs.create_file(name).unwrap();
            w.write_all(&[1u8; 1000]).unwrap();
            w.finish(None).unwrap();
        }
        fs.flush().unwrap();
    }
    let mut bytes = std::fs::read(&img.path).unwrap();
    let at = bytes
        .windows(11)
        .position(|w| w == b"A       BIN")
        .expect("test setup: A.BIN's entry");
    bytes[at..at + 32].fill(0);
    std::fs::write(&img.path, &bytes).unwrap();

    let mut fs = common::open_fs(&img);
    let names = |fs: &mut FileSystem<std::fs::File>| -> Vec<String> {
        fs.list_dir("/")
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect()
    };
    assert!(
        names(&mut fs).is_empty(),
        "test setup: entries past the marker are listed"
    );
    let mut w = fs.create_file("D.BIN").unwrap();
    w.write_all(&[2u8; 1000]).unwrap();
    w.finish(None).unwrap();
    fs.flush().unwrap();
    assert_eq!(names(&mut fs), vec!["D.BIN".to_string()]);
    let per_file = 1000u32.div_ceil(fs.info().bytes_per_cluster);
    let rep = fs.repair_with(&|_| false).unwrap();
    assert!(rep.repaired && rep.remaining.is_empty(), "{rep:?}");
    assert_eq!(
        rep.freed_clusters,
        3 * per_file,
        "A, B and C were lost clusters: {rep:?}"
    );
    drop(fs);
    common::assert_fsck_clean(&img.path);
    assert_eq!(
        common::mdir(&img.path, "/"),
        common::tool("mdir").map(|_| vec!["D.BIN".to_string()])
    );
}
