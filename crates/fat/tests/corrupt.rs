//! Corrupt, truncated and foreign images: typed errors, never a panic or a hang.
mod common;
use common::*;
use proptest::prelude::*;
use sdexport_fat::{format, Error, FatType, FileSystem, FormatOptions, Problem};
use std::io::{Cursor, Read, Write};

/// A small populated image in memory.
fn populated(fat: FatType, size: u64) -> Vec<u8> {
    let mut c = Cursor::new(vec![0u8; size as usize]);
    format(
        &mut c,
        &FormatOptions {
            volume_bytes: size,
            fat_type: Some(fat),
            bytes_per_cluster: Some(512),
            ..Default::default()
        },
    )
    .unwrap();
    let mut fs = FileSystem::open(&mut c).unwrap();
    fs.create_dir("/DCIM").unwrap();
    fs.create_dir("/DCIM/Camera").unwrap();
    for i in 0..6 {
        our_write(
            &mut fs,
            &format!("/DCIM/Camera/photo number {i}.jpg"),
            &pattern(700 * i + 1, i as u64),
        );
    }
    our_write(&mut fs, "/README.TXT", b"readme");
    fs.flush().unwrap();
    drop(fs);
    c.into_inner()
}

/// Use every read path on a volume; must terminate and never panic.
fn exercise(bytes: Vec<u8>) {
    let Ok(mut fs) = FileSystem::open(Cursor::new(bytes)) else {
        return;
    };
    let _ = fs.info();
    let _ = fs.check();
    let mut stack = vec![(String::new(), 0)];
    let mut visited = 0;
    while let Some((d, depth)) = stack.pop() {
        visited += 1;
        if depth > 8 || visited > 200 {
            break;
        }
        let Ok(list) = fs.list_dir(&d) else { continue };
        for e in list {
            let p = format!("{d}/{}", e.name);
            let _ = fs.stat(&p);
            if e.is_dir {
                stack.push((p, depth + 1));
            } else if let Ok(mut f) = fs.open_file(&p) {
                let mut v = Vec::new();
                let _ = f.read_to_end(&mut v);
            }
        }
    }
    // Writing onto a damaged volume must fail cleanly or succeed.
    if let Ok(mut w) = fs.create_file("/DCIM/new file.txt") {
        let _ = w.write_all(b"hello");
        let _ = w.finish(None);
    }
    let _ = fs.create_dir("/new dir");
    let _ = fs.rename("/README.TXT", "/DCIM/readme moved.txt");
    let _ = fs.remove("/DCIM/Camera/photo number 3.jpg");
    let _ = fs.flush();
}

fn set_fat12(img: &mut [u8], fat_off: usize, n: usize, v: u16) {
    let off = fat_off + n + n / 2;
    let w = u16::from_le_bytes([img[off], img[off + 1]]);
    let w = if n.is_multiple_of(2) {
        (w & 0xF000) | v
    } else {
        (w & 0x000F) | (v << 4)
    };
    img[off..off + 2].copy_from_slice(&w.to_le_bytes());
}

#[test]
fn looping_and_out_of_range_chains() {
    let clean = populated(FatType::Fat12, MIB);
    let mut fs = FileSystem::open(Cursor::new(clean.clone())).unwrap();
    assert!(fs.check().unwrap().problems.is_empty());
    let first = {
        let mut f = fs.open_file("/DCIM/Camera/photo number 5.jpg").unwrap();
        let mut v = Vec::new();
        f.read_to_end(&mut v).unwrap();
        v.len()
    };
    assert_eq!(first, 3501);
    drop(fs);
    // Find the file's first cluster through fatfs-independent means: scan for a 7-cluster
    // chain is overkill; instead corrupt every chain link that points forward by one.
    let bpb_rsvd = u16::from_le_bytes([clean[14], clean[15]]) as usize;
    let fat_off = bpb_rsvd * 512;
    let get = |img: &[u8], n: usize| {
        let off = fat_off + n + n / 2;
        let w = u16::from_le_bytes([img[off], img[off + 1]]);
        if n.is_multiple_of(2) {
            w & 0xFFF
        } else {
            w >> 4
        }
    };
    // A cluster whose successor is c+1 and whose successor is EOC: make it loop to itself.
    let mut looped = clean.clone();
    let mut target = 0;
    for n in 2..1000 {
        if get(&clean, n) == (n + 1) as u16 && get(&clean, n + 1) >= 0xFF8 {
            target = n;
            break;
        }
    }
    assert!(target > 0);
    set_fat12(&mut looped, fat_off, target + 1, target as u16);
    let mut fs = FileSystem::open(Cursor::new(looped.clone())).unwrap();
    let rep = fs.check().unwrap();
    assert!(
        rep.problems
            .iter()
            .any(|p| matches!(p, Problem::ChainLoops { .. })),
        "{rep:?}"
    );
    exercise(looped);

    for bad in [0x001u16, 0xFF0, 0x000, 0xFF7, 0xFF6] {
        let mut img = clean.clone();
        set_fat12(&mut img, fat_off, target + 1, bad);
        let mut fs = FileSystem::open(Cursor::new(img.clone())).unwrap();
        let rep = fs.check().unwrap();
        assert!(!rep.problems.is_empty(), "value {bad:#x}: {rep:?}");
        exercise(img);
    }
}

#[test]
fn open_and_read_corrupt_chain_gives_corrupt() {
    let clean = populated(FatType::Fat12, MIB);
    let bpb_rsvd = u16::from_le_bytes([clean[14], clean[15]]) as usize;
    let fat_off = bpb_rsvd * 512;
    // Point every allocated entry to itself: every chain loops.
    let mut img = clean.clone();
    for n in 2..2000 {
        set_fat12(&mut img, fat_off, n, n as u16);
    }
    let mut fs = FileSystem::open(Cursor::new(img)).unwrap();
    match fs.list_dir("/DCIM") {
        Err(Error::Corrupt { .. }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_geometry_is_corrupt() {
    let clean = populated(FatType::Fat16, 5 * MIB);
    let cases: Vec<(&str, usize, Vec<u8>)> = vec![
        ("bps 0", 11, vec![0, 0]),
        ("bps 513", 11, vec![1, 2]),
        ("spc 0", 13, vec![0]),
        ("spc 3", 13, vec![3]),
        ("rsvd 0", 14, vec![0, 0]),
        ("fats 0", 16, vec![0]),
        ("root 0", 17, vec![0, 0]),
        (
            "totsec 0",
            19,
            vec![0, 0, 0xF8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        ),
        ("media 0x12", 21, vec![0x12]),
        ("fatsz huge", 22, vec![0xFF, 0xFF]),
    ];
    let mut img = clean.clone();
    img[19..21].copy_from_slice(&[0, 0]);
    img[32..36].copy_from_slice(&[0xFF, 0xFF, 0xFF, 0x7F]);
    assert!(matches!(
        FileSystem::open(Cursor::new(img)),
        Err(Error::Corrupt { .. })
    ));
    for (what, off, bytes) in cases {
        let mut img = clean.clone();
        img[off..off + bytes.len()].copy_from_slice(&bytes);
        match FileSystem::open(Cursor::new(img)) {
            Err(Error::Corrupt { .. }) => {}
            Err(e) => panic!("{what}: {e}"),
            Ok(_) => panic!("{what}: accepted"),
        }
    }
}

#[test]
fn empty_truncated_random_exfat() {
    assert!(matches!(
        FileSystem::open(Cursor::new(Vec::new())),
        Err(Error::Corrupt { .. })
    ));
    assert!(matches!(
        FileSystem::open(Cursor::new(vec![0u8; 100])),
        Err(Error::Corrupt { .. })
    ));
    assert!(matches!(
        FileSystem::open(Cursor::new(vec![0u8; 4096])),
        Err(Error::Corrupt { .. })
    ));
    let clean = populated(FatType::Fat32, 40 * MIB);
    for len in [512, 1000, 20_000, 1 << 20, clean.len() - 512] {
        let r = FileSystem::open(Cursor::new(clean[..len].to_vec()));
        assert!(matches!(r, Err(Error::Corrupt { .. })), "len {len}");
    }
    for seed in 0..50 {
        let r = FileSystem::open(Cursor::new(pattern(64 * 1024, seed)));
        assert!(r.is_err());
    }
    let mut ex = vec![0u8; 1 << 20];
    ex[..3].copy_from_slice(&[0xEB, 0x76, 0x90]);
    ex[3..11].copy_from_slice(b"EXFAT   ");
    ex[510] = 0x55;
    ex[511] = 0xAA;
    match FileSystem::open(Cursor::new(ex)) {
        Err(Error::Unsupported(m)) => assert!(m.starts_with("exFAT")),
        other => panic!("{:?}", other.err()),
    }
}

fn mutate(base: &[u8], muts: &[(usize, u8)], span: usize) -> Vec<u8> {
    let mut img = base.to_vec();
    for &(pos, val) in muts {
        let p = pos % span.min(img.len());
        img[p] = val;
    }
    img
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 100, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_fat12_metadata(muts in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..40)) {
        static BASE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        let base = BASE.get_or_init(|| populated(FatType::Fat12, MIB));
        // Boot sector, FATs, root directory and the first data clusters.
        exercise(mutate(base, &muts, 64 * 1024));
    }

    #[test]
    fn mutated_fat32_metadata(muts in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..40)) {
        static BASE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        let base = BASE.get_or_init(|| populated(FatType::Fat32, 34 * MIB));
        // Reserved area and the start of FAT 1.
        let img = mutate(base, &muts, 40 * 1024);
        exercise(img);
    }

    #[test]
    fn mutated_directories(muts in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..60)) {
        static BASE: std::sync::OnceLock<(Vec<u8>, usize)> = std::sync::OnceLock::new();
        let (base, data_start) = BASE.get_or_init(|| {
            let b = populated(FatType::Fat12, MIB);
            let rsvd = u16::from_le_bytes([b[14], b[15]]) as usize;
            let fatsz = u16::from_le_bytes([b[22], b[23]]) as usize;
            (b, (rsvd + 2 * fatsz) * 512)
        });
        let mut img = base.clone();
        for &(pos, val) in &muts {
            // Root directory and the first data clusters (the subdirectories).
            img[data_start + pos % (16 * 1024 + 8 * 1024)] = val;
        }
        exercise(img);
    }
}

#[test]
fn check_reports_duplicate_names() {
    let clean = populated(FatType::Fat12, MIB);
    let rsvd = u16::from_le_bytes([clean[14], clean[15]]) as usize;
    let fatsz = u16::from_le_bytes([clean[22], clean[23]]) as usize;
    let root = (rsvd + 2 * fatsz) * 512;
    let mut img = clean.clone();
    // Copy the README.TXT entry over a free slot: two entries with one name (and one chain).
    let slot = (0..512)
        .map(|i| root + i * 32)
        .find(|&o| &img[o..o + 11] == b"README  TXT")
        .unwrap();
    let free = (0..512)
        .map(|i| root + i * 32)
        .find(|&o| img[o] == 0)
        .unwrap();
    let e: Vec<u8> = img[slot..slot + 32].to_vec();
    img[free..free + 32].copy_from_slice(&e);
    let mut fs = FileSystem::open(Cursor::new(img)).unwrap();
    let rep = fs.check().unwrap();
    assert!(
        rep.problems
            .iter()
            .any(|p| matches!(p, Problem::Other { what, .. } if what.contains("duplicate"))),
        "{rep:?}"
    );
    assert!(
        rep.problems
            .iter()
            .any(|p| matches!(p, Problem::CrossLinked { .. })),
        "{rep:?}"
    );
}
