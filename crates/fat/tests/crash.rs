//! Crash consistency: a storage that silently drops every write after the k-th. For every
//! k of a reference run, the volume must show at worst lost clusters (plus the dirty bit,
//! an unknown/stale free count, or a FAT copy one write behind).
mod common;
use common::*;
use sdexport_fat::{format, FatType, FileSystem, FormatOptions, Problem, Storage};
use std::collections::HashMap;
use std::io::{Cursor, Read, Seek, SeekFrom, Write};

struct CrashAfter {
    inner: Cursor<Vec<u8>>,
    limit: usize,
    writes: usize,
}

impl Read for CrashAfter {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf)
    }
}
impl Seek for CrashAfter {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(pos)
    }
}
impl Write for CrashAfter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.writes += 1;
        if self.writes > self.limit {
            // The power went out: pretend it worked.
            let p = self.inner.position();
            self.inner.set_position(p + buf.len() as u64);
            return Ok(buf.len());
        }
        self.inner.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn w<S: Storage>(fs: &mut FileSystem<S>, path: &str, data: &[u8]) {
    let mut f = fs.create_file(path).unwrap();
    f.write_all(data).unwrap();
    f.finish(None).unwrap();
}

/// The reference run; returns content by final file name.
fn run<S: Storage>(fs: &mut FileSystem<S>, cb: usize) -> HashMap<String, Vec<u8>> {
    let mut m = HashMap::new();
    fn put<S: Storage>(
        m: &mut HashMap<String, Vec<u8>>,
        fs: &mut FileSystem<S>,
        p: &str,
        name: &str,
        data: Vec<u8>,
    ) {
        w(fs, p, &data);
        m.insert(name.to_string(), data);
    }
    fs.create_dir("/DCIM").unwrap();
    fs.create_dir("/DCIM/Camera").unwrap();
    put(
        &mut m,
        fs,
        "/DCIM/Camera/IMG_0001 first photo.jpg",
        "IMG_0001 first photo.jpg",
        pattern(3 * cb + 100, 1),
    );
    put(
        &mut m,
        fs,
        "/DCIM/Camera/IMG_0002.JPG",
        "IMG_0002.JPG",
        pattern(2 * cb, 2),
    );
    put(
        &mut m,
        fs,
        "/tmp-upload.part",
        "tmp-upload.part",
        pattern(4 * cb - 1, 3),
    );
    m.insert("final name.jpg".into(), pattern(4 * cb - 1, 3));
    fs.rename("/tmp-upload.part", "/DCIM/final name.jpg")
        .unwrap();
    fs.rename(
        "/DCIM/Camera/IMG_0002.JPG",
        "/DCIM/Camera/renamed second.jpg",
    )
    .unwrap();
    m.insert("renamed second.jpg".into(), pattern(2 * cb, 2));
    fs.remove("/DCIM/Camera/IMG_0001 first photo.jpg").unwrap();
    fs.create_dir("/Old").unwrap();
    fs.rename("/Old", "/Older dir").unwrap();
    // Enough entries to grow a directory by a cluster or two.
    for i in 0..(cb / 32) {
        put(
            &mut m,
            fs,
            &format!("/DCIM/Camera/small file {i:03}.txt"),
            &format!("small file {i:03}.txt"),
            vec![i as u8; 10],
        );
    }
    fs.flush().unwrap();
    m
}

fn base(fat: FatType, size: u64) -> Vec<u8> {
    let mut c = Cursor::new(vec![0u8; size as usize]);
    format(
        &mut c,
        &FormatOptions {
            volume_bytes: size,
            fat_type: Some(fat),
            bytes_per_cluster: Some(if fat == FatType::Fat32 { 512 } else { 1024 }),
            ..Default::default()
        },
    )
    .unwrap();
    c.into_inner()
}

/// fsck.fat lines that are acceptable after a crash.
fn fsck_line_ok(l: &str) -> bool {
    let l = l.trim();
    l.is_empty()
        || l.starts_with("fsck.fat ")
        || l.contains("Dirty bit is set")
        || l.contains("unmounted cleanly")
        || l.contains("Automatically removing dirty bit")
        || l.contains("Leaving filesystem unchanged")
        || l.contains("Reclaimed")
        || l.contains("unused clusters")
        || l.contains("Free cluster summary")
        || l.contains("FATs differ")
        || l.contains("differences between boot sector and its backup")
        || l.contains("Not automatically fixing")
        || l.starts_with("0x")
        || l.starts_with("Offset")
        || l.contains("files,")
        || l.contains("/tmp")
        || l.contains("1) Copy original to backup")
        || l.contains("2) Copy backup to original")
        || l.contains("3) No action")
        || l.starts_with("65:")
        || l.starts_with("37:")
        || l.contains("Using first FAT")
        || l.contains("mostly harmless")
        || l.contains("Perform changes")
        || l.contains("Free cluster summary uninitialized")
}

/// Bring the image file to `now`, writing only the 64 KiB pieces that changed.
fn sync_image(img: &std::path::Path, prev: &mut [u8], now: &[u8]) {
    let mut f = std::fs::OpenOptions::new().write(true).open(img).unwrap();
    for (i, (a, b)) in prev.chunks_mut(65536).zip(now.chunks(65536)).enumerate() {
        if a != b {
            f.seek(SeekFrom::Start(i as u64 * 65536)).unwrap();
            f.write_all(b).unwrap();
            a.copy_from_slice(b);
        }
    }
}

fn crash_suite(fat: FatType, size: u64) {
    let clean = base(fat, size);
    let total = {
        let mut st = CrashAfter {
            inner: Cursor::new(clean.clone()),
            limit: usize::MAX,
            writes: 0,
        };
        let mut fs = FileSystem::open(&mut st).unwrap();
        let cb = fs.info().bytes_per_cluster as usize;
        run(&mut fs, cb);
        drop(fs);
        st.writes
    };
    assert!(total > 50, "reference run made {total} writes");
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("crash.img");
    let have_fsck = tool("fsck.fat").is_some();
    std::fs::write(&img, &clean).unwrap();
    let mut prev = clean.clone();
    for k in 0..=total {
        let mut st = CrashAfter {
            inner: Cursor::new(clean.clone()),
            limit: k,
            writes: 0,
        };
        let expected = {
            let mut fs = FileSystem::open(&mut st).unwrap();
            let cb = fs.info().bytes_per_cluster as usize;
            run(&mut fs, cb)
        };
        let mut bytes = st.inner.into_inner();
        let mut fs = FileSystem::open(Cursor::new(&mut bytes)).unwrap();
        let rep = fs.check().unwrap();
        for p in &rep.problems {
            assert!(
                matches!(
                    p,
                    Problem::LostClusters { .. }
                        | Problem::FreeCountWrong { .. }
                        | Problem::FatCopiesDiffer
                ),
                "k={k}/{total}: {p:?}"
            );
        }
        // Every visible file with a size has exactly its data.
        let mut stack = vec![String::new()];
        while let Some(d) = stack.pop() {
            for e in fs.list_dir(&d).unwrap() {
                let p = format!("{d}/{}", e.name);
                if e.is_dir {
                    stack.push(p);
                } else if e.size > 0 {
                    let got = our_read(&mut fs, &p);
                    assert!(expected.get(&e.name) == Some(&got), "k={k}: content of {p}");
                }
            }
        }
        drop(fs);
        if have_fsck {
            sync_image(&img, &mut prev, &bytes);
            let (_, out) = fsck(&img).unwrap();
            for l in out.lines() {
                assert!(fsck_line_ok(l), "k={k}/{total}: fsck.fat says {l:?}\n{out}");
            }
        }
        if k == total {
            assert!(rep.problems.is_empty(), "{:?}", rep.problems);
            assert_fsck_clean(&img);
        }
    }
}

#[test]
fn crash_at_every_write_fat12() {
    crash_suite(FatType::Fat12, 2 * MIB);
}

#[test]
fn crash_at_every_write_fat32() {
    crash_suite(FatType::Fat32, 34 * MIB);
}
