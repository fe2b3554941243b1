//! Format and write with our engine; fsck.fat, mtools and fatfs must agree with us.
mod common;
use common::*;
use sdexport_fat::{Error, FatType, FileSystem};
use std::io::Write;

fn roundtrip(size: u64, t: Option<FatType>, want: FatType) {
    let img = image(size);
    our_format(&img, size, t);
    assert_fsck_clean(&img.path);
    assert_eq!(
        mdir(&img.path, "/").unwrap_or_default(),
        Vec::<String>::new()
    );
    let mut fs = open_fs(&img);
    assert_eq!(fs.info().fat_type, want);
    let cb = fs.info().bytes_per_cluster as usize;
    let big = pattern(3 * 1024 * 1024 + 17, 7);
    let exact = pattern(cb * 3, 8);
    fs.create_dir("/DCIM").unwrap();
    fs.create_dir("/DCIM/Camera").unwrap();
    our_write(&mut fs, "/empty.txt", b"");
    our_write(&mut fs, "/ONE.TXT", b"x");
    our_write(&mut fs, "/DCIM/Camera/IMG_20240101_120000.jpg", &big);
    our_write(&mut fs, "/DCIM/Camera/exact clusters.bin", &exact);
    our_write(&mut fs, "/Ünïcödé naïve café.txt", b"unicode");
    fs.flush().unwrap();
    assert!(fs.check().unwrap().problems.is_empty());
    drop(fs);
    assert_oracles(
        &img.path,
        &[
            (
                "/",
                vec!["DCIM", "empty.txt", "ONE.TXT", "Ünïcödé naïve café.txt"],
            ),
            ("/DCIM", vec!["Camera"]),
            (
                "/DCIM/Camera",
                vec!["IMG_20240101_120000.jpg", "exact clusters.bin"],
            ),
        ],
        &[
            ("/empty.txt", b""),
            ("/ONE.TXT", b"x"),
            ("/DCIM/Camera/IMG_20240101_120000.jpg", &big),
            ("/DCIM/Camera/exact clusters.bin", &exact),
            ("/Ünïcödé naïve café.txt", b"unicode"),
        ],
        true,
    );
    // And we read back what we wrote, after dropping every cache.
    let mut fs = open_fs(&img);
    assert!(!fs.info().was_dirty);
    assert_eq!(
        our_read(&mut fs, "/dcim/camera/img_20240101_120000.JPG"),
        big
    );
}

#[test]
fn format_write_fat12() {
    roundtrip(8 * MIB, None, FatType::Fat12);
}

#[test]
fn format_write_fat16() {
    roundtrip(32 * MIB, None, FatType::Fat16);
}

#[test]
fn format_write_fat32() {
    roundtrip(80 * MIB, None, FatType::Fat32);
}

#[test]
fn format_explicit_fat16_large_and_label() {
    let size = 300 * MIB;
    let img = image(size);
    let mut f = open_rw(&img.path);
    sdexport_fat::format(
        &mut f,
        &sdexport_fat::FormatOptions {
            volume_bytes: size,
            fat_type: Some(FatType::Fat16),
            label: Some("PHOTOS".into()),
            volume_id: Some(0x1234_5678),
            hidden_sectors: 8192,
            ..Default::default()
        },
    )
    .unwrap();
    assert_fsck_clean(&img.path);
    let fs = FileSystem::open(f).unwrap();
    let info = fs.info();
    assert_eq!(info.fat_type, FatType::Fat16);
    assert_eq!(info.label.as_deref(), Some("PHOTOS"));
    assert_eq!(info.volume_id, 0x1234_5678);
    assert_eq!(info.bytes_per_cluster, 16384);
}

#[test]
fn names_short_long_collisions_and_case() {
    let size = 16 * MIB;
    let img = image(size);
    our_format(&img, size, Some(FatType::Fat16));
    let mut fs = open_fs(&img);
    fs.create_dir("/d").unwrap();
    let mut names: Vec<String> = (0..30)
        .map(|i| format!("IMG_2024_long_name_{i:02}.jpg"))
        .collect();
    for n in &names {
        our_write(&mut fs, &format!("/d/{n}"), n.as_bytes());
    }
    let list = fs.list_dir("/d").unwrap();
    let mut shorts: Vec<String> = list.iter().map(|e| e.short_name.clone()).collect();
    shorts.sort();
    shorts.dedup();
    assert_eq!(shorts.len(), 30, "short names unique: {shorts:?}");
    assert!(shorts.contains(&"IMG_20~1.JPG".to_string()));
    assert!(
        shorts.iter().any(|s| !s.contains("IMG_20~")),
        "hash form used after ~9"
    );
    // Case twins.
    our_write(&mut fs, "/d/a.jpg", b"a");
    assert!(matches!(
        fs.create_file("/d/A.JPG"),
        Err(Error::AlreadyExists { .. })
    ));
    assert!(matches!(
        fs.create_dir("/D"),
        Err(Error::AlreadyExists { .. })
    ));
    // 8.3 upper case gets no LFN; its short name is itself.
    our_write(&mut fs, "/d/PLAIN.TXT", b"p");
    let st = fs.stat("/d/plain.txt").unwrap();
    assert_eq!(
        (st.name.as_str(), st.short_name.as_str()),
        ("PLAIN.TXT", "PLAIN.TXT")
    );
    // Lower-case 8.3 keeps its case through an LFN.
    our_write(&mut fs, "/d/lower.txt", b"l");
    // Leading dots are legal long names.
    our_write(&mut fs, "/d/..jpg", b"dots");
    our_write(&mut fs, "/d/.hidden", b"h");
    assert_eq!(fs.stat("/d/LOWER.TXT").unwrap().name, "lower.txt");
    // 255-unit names, BMP Unicode, emoji (emoji: not with mtools 4.0.32, it mangles them).
    let n255 = format!("{}.txt", "n".repeat(251));
    our_write(&mut fs, &format!("/d/{n255}"), b"255");
    let bmp = "日本語の写真 ünïcødé.jpg";
    our_write(&mut fs, &format!("/d/{bmp}"), b"bmp");
    let emoji = "party 🎉🎉 time.jpg";
    our_write(&mut fs, &format!("/{emoji}"), b"emoji");
    let emoji255 = "😀".repeat(127);
    our_write(&mut fs, &format!("/{emoji255}"), b"e255");
    assert!(matches!(
        fs.create_file(&format!("/{}", "😀".repeat(128))),
        Err(Error::InvalidName { .. })
    ));
    for bad in [
        "a?b", "a*", "x:y", "t.", "t ", "<", "a\"b", "a|b", "a\\b", "\u{7}",
    ] {
        assert!(
            matches!(
                fs.create_file(&format!("/d/{bad}")),
                Err(Error::InvalidName { .. })
            ),
            "{bad:?}"
        );
    }
    fs.flush().unwrap();
    assert!(fs.check().unwrap().problems.is_empty());
    drop(fs);
    names.extend(["a.jpg", "PLAIN.TXT", "lower.txt", "..jpg", ".hidden", bmp].map(String::from));
    names.push(n255.clone());
    let refs: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
    assert_oracles(
        &img.path,
        &[("/d", refs)],
        &[("/d/lower.txt", b"l"), ("/d/..jpg", b"dots")],
        true,
    );
    let mut root = fatfs_list(&img.path, "/");
    root.sort();
    let mut want = vec!["d".to_string(), emoji.to_string(), emoji255.clone()];
    want.sort();
    assert_eq!(root, want);
    assert_eq!(fatfs_read(&img.path, &format!("/{emoji}")), b"emoji");
    let h: Vec<String> = hadris_dir(&img.path, "/")
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert_eq!(h, want, "hadris-fat reads the emoji names");
    let mut fs = open_fs(&img);
    assert_eq!(our_list(&mut fs, "/"), want);
    assert_eq!(our_read(&mut fs, &format!("/{emoji255}")), b"e255");
}

#[test]
fn rename_remove_set_times() {
    let size = 80 * MIB;
    let img = image(size);
    our_format(&img, size, None);
    let mut fs = open_fs(&img);
    fs.create_dir("/a").unwrap();
    fs.create_dir("/a/sub").unwrap();
    fs.create_dir("/b").unwrap();
    let data = pattern(10_000, 3);
    our_write(&mut fs, "/a/sub/file one.txt", &data);
    our_write(&mut fs, "/a/gone.bin", &pattern(5000, 4));
    fs.rename("/a/sub/file one.txt", "/a/sub/File One.TXT")
        .unwrap();
    assert_eq!(fs.stat("/a/sub/file one.txt").unwrap().name, "File One.TXT");
    fs.rename("/a/sub", "/b/moved").unwrap();
    assert!(matches!(
        fs.rename("/b", "/b/moved/x"),
        Err(Error::Unsupported(_))
    ));
    our_write(&mut fs, "/b/other.txt", b"o");
    assert!(matches!(
        fs.rename("/b/other.txt", "/b/MOVED"),
        Err(Error::AlreadyExists { .. })
    ));
    fs.rename("/b/other.txt", "/top.txt").unwrap();
    assert!(matches!(
        fs.remove("/b"),
        Err(Error::DirectoryNotEmpty { .. })
    ));
    let free_before = fs.free_bytes();
    fs.remove("/a/gone.bin").unwrap();
    assert!(fs.free_bytes() > free_before);
    assert!(matches!(
        fs.stat("/a/gone.bin"),
        Err(Error::NotFound { .. })
    ));
    let t = chrono::NaiveDate::from_ymd_opt(2021, 6, 7)
        .unwrap()
        .and_hms_opt(8, 9, 10)
        .unwrap();
    fs.set_times("/top.txt", Some(t), Some(t)).unwrap();
    let st = fs.stat("/top.txt").unwrap();
    assert_eq!(st.modified, Some(t));
    assert_eq!(st.created, Some(t));
    fs.create_dir("/empty").unwrap();
    fs.remove("/empty").unwrap();
    fs.drop_caches().unwrap();
    assert_eq!(our_read(&mut fs, "/b/moved/File One.TXT"), data);
    fs.flush().unwrap();
    assert!(
        fs.check().unwrap().problems.is_empty(),
        "{:?}",
        fs.check().unwrap()
    );
    drop(fs);
    assert_oracles(
        &img.path,
        &[
            ("/", vec!["a", "b", "top.txt"]),
            ("/a", vec![]),
            ("/b", vec!["moved"]),
            ("/b/moved", vec!["File One.TXT"]),
        ],
        &[("/b/moved/File One.TXT", &data), ("/top.txt", b"o")],
        true,
    );
}

#[test]
fn mkdir_by_mtools_then_write_by_us() {
    let Some(img) = mkfs(64 * MIB, 32) else {
        return;
    };
    mmd(&img.path, "/Theirs").unwrap();
    let mut fs = open_fs(&img);
    our_write(&mut fs, "/Theirs/ours.txt", b"ours");
    fs.flush().unwrap();
    drop(fs);
    assert_oracles(
        &img.path,
        &[("/Theirs", vec!["ours.txt"])],
        &[("/Theirs/ours.txt", b"ours")],
        true,
    );
}

#[test]
fn fill_volume_then_nospace() {
    let size = 2 * MIB;
    let img = image(size);
    our_format(&img, size, Some(FatType::Fat12));
    let mut fs = open_fs(&img);
    let free = fs.free_bytes();
    let data = pattern(free as usize, 5);
    our_write(&mut fs, "/full.bin", &data);
    assert_eq!(fs.free_bytes(), 0);
    let mut w = fs.create_file("/more.bin").unwrap();
    let err = w.write_all(&[1u8; 10]).and_then(|_| w.flush());
    let fin = w.finish(None);
    assert!(
        err.is_err() || matches!(fin, Err(Error::NoSpace { .. })),
        "{fin:?}"
    );
    // The failed file stays with size 0.
    assert_eq!(fs.stat("/more.bin").unwrap().size, 0);
    fs.flush().unwrap();
    assert!(fs.check().unwrap().problems.is_empty());
    drop(fs);
    assert_oracles(
        &img.path,
        &[("/", vec!["full.bin", "more.bin"])],
        &[("/full.bin", &data), ("/more.bin", b"")],
        true,
    );
    // Over-fill in one go: NoSpace, volume consistent.
    let img = image(size);
    our_format(&img, size, Some(FatType::Fat12));
    let mut fs = open_fs(&img);
    // Leave less free than the writer gathers (1 MiB) ...
    let filler = fs.free_bytes() - MIB / 2;
    our_write(&mut fs, "/filler.bin", &pattern(filler as usize, 2));
    let mut w = fs.create_file("/big.bin").unwrap();
    // ... so that a buffered write that does not fit shows its error at finish.
    w.write_all(&pattern(3 * MIB as usize / 4, 1)).unwrap();
    assert!(matches!(w.finish(None), Err(Error::NoSpace { .. })));
    // Large direct writes fail in write itself.
    let mut w = fs.create_file("/big2.bin").unwrap();
    let e = w.write_all(&pattern(5 * MIB as usize, 1)).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::StorageFull);
    drop(w);
    fs.flush().unwrap();
    assert!(fs.check().unwrap().problems.is_empty());
    assert_eq!(fs.stat("/big.bin").unwrap().size, 0);
    drop(fs);
    assert_fsck_clean(&img.path);
}

#[test]
fn root_full_on_fat16_and_directory_growth() {
    let size = 16 * MIB;
    let img = image(size);
    our_format(&img, size, Some(FatType::Fat16));
    let mut fs = open_fs(&img);
    fs.create_dir("/many").unwrap();
    // 512 root entries; long names take 3 slots each.
    let mut n = 0;
    loop {
        match fs.create_file(&format!("/a long file name number {n}.txt")) {
            Ok(w) => {
                w.finish(None).unwrap();
                n += 1;
            }
            Err(Error::DirectoryFull { .. }) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(n > 100 && n < 512);
    assert!(matches!(
        fs.create_dir("/another long directory"),
        Err(Error::DirectoryFull { .. })
    ));
    // A subdirectory grows cluster by cluster.
    for i in 0..600 {
        fs.create_file(&format!("/many/f{i}"))
            .unwrap()
            .finish(None)
            .unwrap();
    }
    fs.flush().unwrap();
    assert!(fs.check().unwrap().problems.is_empty());
    assert_eq!(fs.list_dir("/many").unwrap().len(), 600);
    drop(fs);
    assert_fsck_clean(&img.path);
    assert_eq!(fatfs_list(&img.path, "/many").len(), 600);
    assert_eq!(
        mdir(&img.path, "/many").map(|v| v.len()).unwrap_or(600),
        600
    );
}

#[test]
fn file_too_large_is_refused() {
    // A storage that keeps only what is not all zeros, so 4 GiB of zeros costs nothing.
    let size = 6 * 1024 * MIB;
    let mut store = SparseMem::default();
    sdexport_fat::format(
        &mut store,
        &sdexport_fat::FormatOptions {
            volume_bytes: size,
            ..Default::default()
        },
    )
    .unwrap();
    store.len = size;
    let mut fs = FileSystem::open(store).unwrap();
    let mut w = fs.create_file("/huge.bin").unwrap();
    let chunk = vec![0u8; 64 * MIB as usize];
    let limit = 0xFFFF_FFFFu64;
    let mut written = 0u64;
    while written + chunk.len() as u64 <= limit {
        w.write_all(&chunk).unwrap();
        written += chunk.len() as u64;
    }
    let rest = (limit - written) as usize;
    w.write_all(&chunk[..rest]).unwrap();
    let e = w.write_all(&[0u8]).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::FileTooLarge);
    assert_eq!(w.finish(None).unwrap(), limit);
    assert_eq!(fs.stat("/huge.bin").unwrap().size, limit);
    fs.flush().unwrap();
    assert!(fs.check().unwrap().problems.is_empty());
}

/// In-memory sparse storage: 64 KiB pages, all-zero pages are not stored.
#[derive(Default)]
struct SparseMem {
    pages: std::collections::HashMap<u64, Vec<u8>>,
    pos: u64,
    len: u64,
}
const PAGE: u64 = 65536;
static ZERO_PAGE: [u8; PAGE as usize] = [0; PAGE as usize];
impl std::io::Read for SparseMem {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.len {
            return Ok(0);
        }
        let p = self.pos / PAGE;
        let off = (self.pos % PAGE) as usize;
        let n = buf
            .len()
            .min((PAGE as usize) - off)
            .min((self.len - self.pos) as usize);
        match self.pages.get(&p) {
            Some(pg) => buf[..n].copy_from_slice(&pg[off..off + n]),
            None => buf[..n].fill(0),
        }
        self.pos += n as u64;
        Ok(n)
    }
}
impl std::io::Write for SparseMem {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let p = self.pos / PAGE;
        let off = (self.pos % PAGE) as usize;
        let n = buf.len().min((PAGE as usize) - off);
        let data = &buf[..n];
        if let Some(pg) = self.pages.get_mut(&p) {
            pg[off..off + n].copy_from_slice(data);
        } else if data != &ZERO_PAGE[..n] {
            let mut pg = vec![0u8; PAGE as usize];
            pg[off..off + n].copy_from_slice(data);
            self.pages.insert(p, pg);
        }
        self.pos += n as u64;
        self.len = self.len.max(self.pos);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
impl std::io::Seek for SparseMem {
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        self.pos = match pos {
            std::io::SeekFrom::Start(p) => p,
            std::io::SeekFrom::End(d) => (self.len as i64 + d) as u64,
            std::io::SeekFrom::Current(d) => (self.pos as i64 + d) as u64,
        };
        Ok(self.pos)
    }
}

#[test]
fn directory_full_at_65536_entries() {
    let size = 64 * MIB;
    let img = image(size);
    our_format(&img, size, Some(FatType::Fat16));
    let mut fs = open_fs(&img);
    fs.create_dir("/d").unwrap();
    let mut n = 0u32;
    loop {
        // Upper-case 8.3 names take exactly one slot.
        match fs.create_file(&format!("/d/F{n:07}")) {
            Ok(w) => {
                drop(w);
                n += 1;
            }
            Err(Error::DirectoryFull { .. }) => break,
            Err(e) => panic!("{e}"),
        }
    }
    // 65536 slots, two of them `.` and `..`.
    assert_eq!(n, 65534);
    fs.flush().unwrap();
    assert!(fs.check().unwrap().problems.is_empty());
    drop(fs);
    // fsck.fat needs ~6 s here (its duplicate-name check is quadratic).
    assert_fsck_clean(&img.path);
}

#[test]
fn deleted_slots_are_reused_and_temp_rename_flow() {
    let size = 16 * MIB;
    let img = image(size);
    our_format(&img, size, Some(FatType::Fat16));
    let mut fs = open_fs(&img);
    fs.create_dir("/d").unwrap();
    // The sdexport flow: write under a temp name, then rename into place.
    for i in 0..300 {
        let tmp = format!("/d/.sdexport-tmp-{i:04}.part");
        our_write(&mut fs, &tmp, format!("photo {i}").as_bytes());
        fs.rename(&tmp, &format!("/d/IMG_{i:04}.jpg")).unwrap();
    }
    let slots_after_flow = fs.list_dir("/d").unwrap().len();
    assert_eq!(slots_after_flow, 300);
    // Remove every other file, then create as many again: the holes are reused, so the
    // directory does not grow.
    let before = fs.free_bytes();
    for i in (0..300).step_by(2) {
        fs.remove(&format!("/d/IMG_{i:04}.jpg")).unwrap();
    }
    for i in (0..300).step_by(2) {
        our_write(&mut fs, &format!("/d/new_{i:04}.jpg"), b"n");
    }
    // Same number of one-cluster files, and no new directory cluster.
    assert_eq!(fs.free_bytes(), before);
    fs.flush().unwrap();
    assert!(fs.check().unwrap().problems.is_empty());
    drop(fs);
    let mut names: Vec<String> = (0..300)
        .map(|i| {
            if i % 2 == 0 {
                format!("new_{i:04}.jpg")
            } else {
                format!("IMG_{i:04}.jpg")
            }
        })
        .collect();
    names.sort();
    let refs: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
    assert_oracles(
        &img.path,
        &[("/d", refs)],
        &[("/d/IMG_0299.jpg", b"photo 299")],
        true,
    );
}

#[test]
fn format_large_sparse_cards() {
    for (gib, cluster) in [(3u64, 32768u32), (128, 32768)] {
        let size = gib * 1024 * MIB;
        let img = image(size);
        our_format(&img, size, None);
        assert_fsck_clean(&img.path);
        // Cluster 2 sits on a 4 MiB boundary, like the SD formatter's layout.
        let mut boot = [0u8; 512];
        std::io::Read::read_exact(&mut std::fs::File::open(&img.path).unwrap(), &mut boot).unwrap();
        let rsvd = u64::from(u16::from_le_bytes([boot[14], boot[15]]));
        let fatsz = u64::from(u32::from_le_bytes([boot[36], boot[37], boot[38], boot[39]]));
        assert_eq!((rsvd + 2 * fatsz) % 8192, 0);
        let mut fs = open_fs(&img);
        let info = fs.info();
        assert_eq!(
            (info.fat_type, info.bytes_per_cluster),
            (FatType::Fat32, cluster)
        );
        let data = pattern(100_000, 1);
        fs.create_dir("/DCIM").unwrap();
        our_write(&mut fs, "/DCIM/x.jpg", &data);
        fs.flush().unwrap();
        drop(fs);
        assert_fsck_clean(&img.path);
        assert_eq!(
            mcopy_read(&img.path, "/DCIM/x.jpg").unwrap_or(data.clone()),
            data
        );
    }
}

#[test]
fn dirty_flag_and_barriers() {
    let size = 4 * MIB;
    let img = image(size);
    our_format(&img, size, Some(FatType::Fat16));
    // A write without flush leaves the dirty bit set (fsck: exit 1), flush clears it.
    let mut fs = open_fs(&img);
    fs.create_dir("/x").unwrap();
    std::mem::forget(fs);
    if let Some((code, out)) = fsck(&img.path) {
        assert_eq!(code, 1, "{out}");
        assert!(out.contains("Dirty bit"), "{out}");
    }
    // Opened dirty: reported, and left dirty by flush (only a real check may clear it).
    let mut fs = open_fs(&img);
    assert!(fs.info().was_dirty);
    fs.create_dir("/y").unwrap();
    fs.flush().unwrap();
    drop(fs);
    assert!(open_fs(&img).info().was_dirty);

    // Barriers: every ordering point reaches Storage::flush.
    struct Counting(std::io::Cursor<Vec<u8>>, usize);
    impl std::io::Read for Counting {
        fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
            self.0.read(b)
        }
    }
    impl std::io::Seek for Counting {
        fn seek(&mut self, p: std::io::SeekFrom) -> std::io::Result<u64> {
            self.0.seek(p)
        }
    }
    impl std::io::Write for Counting {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.write(b)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            self.1 += 1;
            Ok(())
        }
    }
    let mut c = Counting(std::io::Cursor::new(vec![0u8; size as usize]), 0);
    sdexport_fat::format(
        &mut c,
        &sdexport_fat::FormatOptions {
            volume_bytes: size,
            ..Default::default()
        },
    )
    .unwrap();
    let mut fs = FileSystem::open(c).unwrap();
    our_write(&mut fs, "/a.txt", b"a");
    let without = fs.storage_mut().1;
    fs.set_write_barriers(true);
    our_write(&mut fs, "/b.txt", b"b");
    let with = fs.storage_mut().1;
    // data | FAT | directory entry: two ordering points.
    assert!(with >= without + 2, "{without} -> {with}");
}

#[test]
fn directories_dropped_from_the_cache_read_back_as_they_were() {
    let size = 64 * MIB;
    let img = image(size);
    our_format(&img, size, Some(FatType::Fat32));
    let mut fs = open_fs(&img);
    // Eight folders of 2,000 long names: more than the cache keeps, so that the first ones
    // are dropped while the last are filled, and read again below.
    let dirs: Vec<String> = (0..8).map(|d| format!("/Folder number {d}")).collect();
    for d in &dirs {
        fs.trim_dir_cache();
        fs.create_dir(d).unwrap();
        for i in 0..2000 {
            fs.trim_dir_cache();
            our_write(&mut fs, &format!("{d}/a long photo name {i:05}.jpg"), b"x");
        }
    }
    for d in &dirs {
        fs.trim_dir_cache();
        // Case-insensitive lookups, short aliases and removals still find the right entry.
        assert_eq!(
            fs.stat(&format!("{d}/A LONG PHOTO NAME 01999.JPG"))
                .unwrap()
                .size,
            1
        );
        fs.remove(&format!("{d}/a long photo name 00000.jpg"))
            .unwrap();
        assert!(fs
            .stat(&format!("{d}/a long photo name 00000.jpg"))
            .is_err());
        fs.trim_dir_cache();
        our_write(&mut fs, &format!("{d}/a long photo name 00000.jpg"), b"yy");
        assert_eq!(fs.list_dir(d).unwrap().len(), 2000);
    }
    fs.flush().unwrap();
    assert!(fs.check().unwrap().problems.is_empty());
    drop(fs);
    assert_fsck_clean(&img.path);
}
