//! Read images made by mkfs.fat and filled by mtools: same listing as mdir, same bytes.
mod common;
use common::*;

fn fill_and_compare(size: u64, bits: u32) {
    let Some(img) = mkfs(size, bits) else { return };
    let host = img.dir.path().join("src.bin");
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("/README.TXT", pattern(5, 1)),
        // mtools stores this as a short name with the NTRes lower-case bits, no LFN.
        ("/lower.txt", pattern(3, 6)),
        ("/Hello World long name.txt", pattern(70_000, 2)),
        ("/Ünïcödé Fïlé.txt", pattern(1, 3)),
        ("/Photos/IMG_20240101_123456.jpg", pattern(200_000, 4)),
        ("/Photos/Nested Dir/deep file name.bin", pattern(4096, 5)),
        ("/Photos/Nested Dir/empty.txt", Vec::new()),
    ];
    mmd(&img.path, "/Photos").unwrap();
    mmd(&img.path, "/Photos/Nested Dir").unwrap();
    for (p, data) in &files {
        std::fs::write(&host, data).unwrap();
        mcopy_put(&img.path, &host, p).unwrap();
    }
    let mut fs = open_fs(&img);
    let info = fs.info();
    let want_type = match bits {
        12 => sdexport_fat::FatType::Fat12,
        16 => sdexport_fat::FatType::Fat16,
        _ => sdexport_fat::FatType::Fat32,
    };
    assert_eq!(info.fat_type, want_type);
    for d in ["/", "/Photos", "/Photos/Nested Dir"] {
        assert_eq!(
            our_list(&mut fs, d),
            mdir(&img.path, d).unwrap(),
            "listing of {d}"
        );
    }
    for (p, data) in &files {
        assert!(our_read(&mut fs, p) == *data, "bytes of {p}");
        // Case-insensitive lookup.
        assert!(our_read(&mut fs, &p.to_uppercase()) == *data);
    }
    let st = fs.stat("/Photos/IMG_20240101_123456.jpg").unwrap();
    assert_eq!(st.size, 200_000);
    assert_eq!(st.short_name, "IMG_20~1.JPG");
    assert!(st.modified.is_some());
    // Lookup by the short alias works too.
    assert_eq!(our_read(&mut fs, "/Photos/IMG_20~1.JPG").len(), 200_000);
    let rep = fs.check().unwrap();
    assert!(rep.problems.is_empty(), "{:?}", rep.problems);
    assert_eq!(rep.files, 7);
    assert_eq!(rep.directories, 2);
    assert_eq!(
        fs.free_bytes(),
        u64::from(info.free_clusters) * u64::from(info.bytes_per_cluster)
    );
}

#[test]
fn read_mkfs_fat12() {
    fill_and_compare(4 * MIB, 12);
}

#[test]
fn read_mkfs_fat16() {
    fill_and_compare(32 * MIB, 16);
}

#[test]
fn read_mkfs_fat32() {
    fill_and_compare(64 * MIB, 32);
}

#[test]
fn seek_and_read_across_clusters() {
    let Some(img) = mkfs(4 * MIB, 12) else { return };
    let host = img.dir.path().join("src.bin");
    let data = pattern(100_000, 9);
    std::fs::write(&host, &data).unwrap();
    mcopy_put(&img.path, &host, "/data.bin").unwrap();
    let mut fs = open_fs(&img);
    use std::io::{Read, Seek, SeekFrom};
    let mut f = fs.open_file("/data.bin").unwrap();
    let mut buf = [0u8; 1000];
    f.seek(SeekFrom::Start(65_000)).unwrap();
    f.read_exact(&mut buf).unwrap();
    assert_eq!(&buf[..], &data[65_000..66_000]);
    f.seek(SeekFrom::End(-10)).unwrap();
    let mut rest = Vec::new();
    f.read_to_end(&mut rest).unwrap();
    assert_eq!(&rest[..], &data[data.len() - 10..]);
    f.seek(SeekFrom::Current(-50_000)).unwrap();
    f.read_exact(&mut buf).unwrap();
    assert_eq!(&buf[..], &data[50_000..51_000]);
}

#[test]
fn broken_lfn_falls_back_to_short_name() {
    use sdexport_fat::{format, FatType, FileSystem, FormatOptions};
    use std::io::Cursor;
    let size = MIB;
    let mut c = Cursor::new(vec![0u8; size as usize]);
    format(
        &mut c,
        &FormatOptions {
            volume_bytes: size,
            fat_type: Some(FatType::Fat12),
            ..Default::default()
        },
    )
    .unwrap();
    let mut fs = FileSystem::open(&mut c).unwrap();
    our_write(&mut fs, "/A long file name.txt", b"x");
    fs.flush().unwrap();
    drop(fs);
    let mut img = c.into_inner();
    let rsvd = u16::from_le_bytes([img[14], img[15]]) as usize;
    let fatsz = u16::from_le_bytes([img[22], img[23]]) as usize;
    let root = (rsvd + 2 * fatsz) * 512;
    // Break the checksum of the first LFN slot.
    let slot = (0..512)
        .map(|i| root + i * 32)
        .find(|&o| img[o + 11] == 0x0F)
        .unwrap();
    img[slot + 13] ^= 0xFF;
    let mut fs = FileSystem::open(Cursor::new(img)).unwrap();
    let names: Vec<String> = fs
        .list_dir("/")
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, vec!["ALONGF~1.TXT".to_string()]);
    assert_eq!(our_read(&mut fs, "/alongf~1.txt"), b"x");
}
