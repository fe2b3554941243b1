//! One behavioural suite for every [`Volume`] backend.
//!
//! Each `volume_test!` body is written once against `&mut dyn Volume` and runs on:
//! * `dir`: [`DirVolume`] on a tempdir;
//! * `fat12`, `fat16`, `fat32`: [`FatVolume`] over an in-memory image formatted by our engine;
//! * `mkfs_fat32`: a FAT32 image made by `mkfs.fat`, opened through `open_card`;
//! * `mbr_fat32`: an image with an MBR and a FAT32 partition at 4 MiB (`sfdisk` +
//!   `mkfs.fat --offset 8192`), opened through `open_card`;
//! * `fault_free`: the engine over `FaultMedium` (tests/common) with no fault armed.
//!
//! After each body on a FAT backend the image is re-opened with our reader (every file read
//! back), then judged by the oracles: `fsck.fat -n` clean, and mtools (`mdir`, `mcopy`)
//! lists the same files with the same bytes (BMP names only; mtools 4.0.32 mangles emoji).
//!
//! What goes here: behaviour every backend must share (the `Volume` contract). Photo-move
//! behaviour goes to `tests/photos.rs`, injected faults to `tests/faults.rs`, engine
//! internals to `crates/fat/tests`.

mod common;

use std::collections::BTreeMap;
use std::io::{Cursor, Read, Seek, SeekFrom, Write};
use std::path::Path;

use common::*;
use sdexport::storage::dir::DirVolume;
use sdexport::storage::open::{open_card, CardOptions};
use sdexport::storage::{EntryKind, StorageError, Volume};
use sdexport_fat::FatType;
use tempfile::TempDir;

// ---------------------------------------------------------------- backends

#[derive(Debug, Clone, Copy)]
enum Backend {
    Dir,
    Engine(FatType),
    MkfsFat32,
    MbrFat32,
    /// The engine over `FaultMedium` with no fault armed: the wrapper the fault tests use
    /// must itself be a faithful medium.
    FaultFree,
}

type Body = fn(&mut dyn Volume);

fn engine_size(t: FatType) -> u64 {
    match t {
        FatType::Fat12 => 16 << 20,
        FatType::Fat16 => 32 << 20,
        FatType::Fat32 => 64 << 20,
    }
}

/// Run `body` on a fresh volume of `backend`, then judge what it left.
fn with_backend(backend: Backend, body: Body) {
    let tmp = TempDir::new().unwrap();
    match backend {
        Backend::Dir => {
            let root = tmp.path().join("card");
            std::fs::create_dir(&root).unwrap();
            let mut v = DirVolume::open(&root).unwrap();
            body(&mut v);
        }
        Backend::Engine(t) => {
            let mut v = open_fat(Cursor::new(engine_image(engine_size(t), t)), "mem.img");
            body(&mut v);
            v.sync().expect("sync");
            let bytes = v.into_medium().expect("into_medium").into_inner();
            judge_image_bytes(tmp.path(), bytes, &format!("engine {t:?}"));
        }
        Backend::FaultFree => {
            let m = FaultMedium::new(engine_image(32 << 20, FatType::Fat16));
            let mut v = open_fat(m, "fault-free.img");
            body(&mut v);
            v.sync().expect("sync");
            let m = v.into_medium().expect("into_medium");
            assert_eq!(m.faults(|f| f.faults_injected), 0);
            judge_image_bytes(tmp.path(), m.snapshot(), "engine over FaultMedium");
        }
        Backend::MkfsFat32 => {
            if !oracle(&["mkfs.fat"]) {
                return;
            }
            let img = tmp.path().join("mkfs.img");
            mkfs_image(&img, 64 * 1024, 32);
            run_on_card(&img, body);
            let bytes = std::fs::read(&img).unwrap();
            judge_image_bytes(tmp.path(), bytes, "mkfs.fat FAT32");
        }
        Backend::MbrFat32 => {
            if !oracle(&["sfdisk", "mkfs.fat"]) {
                return;
            }
            let img = tmp.path().join("mbr.img");
            mbr_image(&img, 72);
            run_on_card(&img, body);
            let bytes = std::fs::read(&img).unwrap();
            judge_image_bytes(
                tmp.path(),
                bytes[MBR_OFFSET as usize..].to_vec(),
                "MBR FAT32 partition",
            );
        }
    }
}

fn run_on_card(img: &Path, body: Body) {
    let mut card = open_card(
        img,
        CardOptions {
            partition: None,
            write: true,
        },
    )
    .unwrap_or_else(|e| panic!("open_card {}: {e}", img.display()));
    assert!(card.fat_info().is_some(), "an image opens as FAT");
    body(card.volume.as_mut());
    card.volume.sync().expect("sync");
}

/// Re-open the volume bytes with our reader, then with the oracles.
fn judge_image_bytes(dir: &Path, bytes: Vec<u8>, what: &str) {
    let mut v = open_fat(Cursor::new(bytes.clone()), "reopened");
    let files = volume_files(&mut v);
    assert!(!v.info().was_dirty, "{what}: the volume is left dirty");
    if !oracle(&["fsck.fat", "mdir", "mcopy"]) {
        return;
    }
    let img = write_image(dir, "judge.img", &bytes);
    assert_oracles_agree(&img, &files, what);
}

macro_rules! volume_test {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[test]
            fn dir() {
                with_backend(Backend::Dir, $body)
            }
            #[test]
            fn fat12() {
                with_backend(Backend::Engine(FatType::Fat12), $body)
            }
            #[test]
            fn fat16() {
                with_backend(Backend::Engine(FatType::Fat16), $body)
            }
            #[test]
            fn fat32() {
                with_backend(Backend::Engine(FatType::Fat32), $body)
            }
            #[test]
            fn mkfs_fat32() {
                with_backend(Backend::MkfsFat32, $body)
            }
            #[test]
            fn mbr_fat32() {
                with_backend(Backend::MbrFat32, $body)
            }
            #[test]
            fn fault_free() {
                with_backend(Backend::FaultFree, $body)
            }
        }
    };
}

// ---------------------------------------------------------------- helpers

fn put(v: &mut dyn Volume, path: &str, bytes: &[u8]) {
    let mut s = v
        .create_new(path)
        .unwrap_or_else(|e| panic!("create_new {path}: {e}"));
    s.write_all(bytes)
        .unwrap_or_else(|e| panic!("write {path}: {e}"));
    s.finish(None)
        .unwrap_or_else(|e| panic!("finish {path}: {e}"));
}

fn get(v: &mut dyn Volume, path: &str) -> Vec<u8> {
    let mut out = Vec::new();
    v.open_read(path)
        .unwrap_or_else(|e| panic!("open_read {path}: {e}"))
        .read_to_end(&mut out)
        .unwrap_or_else(|e| panic!("read {path}: {e}"));
    out
}

fn assert_already_exists<T>(r: Result<T, StorageError>, what: &str) {
    match r {
        Err(StorageError::AlreadyExists { .. }) => {}
        Err(e) => panic!("{what}: expected AlreadyExists, got {e:?}"),
        Ok(_) => panic!("{what}: expected AlreadyExists, got Ok"),
    }
}

fn assert_invalid_name<T>(r: Result<T, StorageError>, what: &str) {
    match r {
        Err(StorageError::InvalidName { .. }) => {}
        Err(e) => panic!("{what}: expected InvalidName, got {e:?}"),
        Ok(_) => panic!("{what}: expected InvalidName, got Ok"),
    }
}

fn names(v: &mut dyn Volume, dir: &str) -> Vec<String> {
    v.list(dir)
        .unwrap_or_else(|e| panic!("list {dir}: {e}"))
        .iter()
        .map(|e| e.name().to_string())
        .collect()
}

// ---------------------------------------------------------------- round trips

volume_test!(roundtrip_empty, |v| {
    put(v, "empty.jpg", b"");
    assert_eq!(get(v, "empty.jpg"), b"");
    let e = v.stat("empty.jpg").unwrap().expect("stat");
    assert_eq!((e.kind, e.size), (EntryKind::File, 0));
});

volume_test!(roundtrip_one_byte, |v| {
    put(v, "one.jpg", b"x");
    assert_eq!(get(v, "one.jpg"), b"x");
    assert_eq!(v.stat("one.jpg").unwrap().unwrap().size, 1);
});

volume_test!(roundtrip_several_mib, |v| {
    let big = pattern((3 << 20) + 17, 7);
    v.create_dir_all("DCIM/Camera").unwrap();
    // Written in odd-sized pieces so that no write lines up with a sector or cluster.
    let mut s = v.create_new("DCIM/Camera/big.mp4").unwrap();
    for chunk in big.chunks(65_537) {
        s.write_all(chunk).unwrap();
    }
    s.finish(None).unwrap();
    assert_eq!(
        v.stat("DCIM/Camera/big.mp4").unwrap().unwrap().size,
        big.len() as u64
    );
    assert!(get(v, "DCIM/Camera/big.mp4") == big, "bytes differ");
});

volume_test!(open_read_seeks, |v| {
    let data = pattern(300_000, 11);
    put(v, "seek.bin", &data);
    let mut r = v.open_read("seek.bin").unwrap();
    for &at in &[0u64, 1, 511, 4096, 100_003, 299_999, 250_000] {
        r.seek(SeekFrom::Start(at)).unwrap();
        let mut buf = [0u8; 1];
        r.read_exact(&mut buf).unwrap();
        assert_eq!(buf[0], data[at as usize], "byte at {at}");
    }
    assert_eq!(r.seek(SeekFrom::End(0)).unwrap(), data.len() as u64);
    let mut rest = Vec::new();
    r.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
});

// ---------------------------------------------------------------- never replace

volume_test!(create_new_on_existing_is_already_exists, |v| {
    put(v, "a.jpg", b"first");
    assert_already_exists(v.create_new("a.jpg"), "create_new over a.jpg");
    assert_eq!(get(v, "a.jpg"), b"first");
    v.create_dir_all("D").unwrap();
    assert_already_exists(v.create_new("D"), "create_new over a directory");
});

volume_test!(case_twins, |v| {
    put(v, "a.jpg", b"lower");
    put(v, "été.jpg", b"accent");
    if v.limits().case_insensitive {
        assert_already_exists(v.create_new("A.JPG"), "create_new A.JPG beside a.jpg");
        assert_already_exists(v.create_new("ÉTÉ.JPG"), "create_new ÉTÉ.JPG beside été.jpg");
        put(v, "b.jpg", b"b");
        assert_already_exists(v.rename_new("b.jpg", "A.jpg"), "rename onto a case twin");
        // The lookup is case-insensitive too, and the stored name keeps its case.
        assert_eq!(get(v, "A.JPG"), b"lower");
        assert_eq!(names(v, ""), ["a.jpg", "b.jpg", "été.jpg"]);
    } else {
        put(v, "A.JPG", b"upper");
        assert_eq!(get(v, "a.jpg"), b"lower");
        assert_eq!(get(v, "A.JPG"), b"upper");
    }
});

volume_test!(rename_new_never_replaces, |v| {
    put(v, "a.jpg", b"one");
    put(v, "b.jpg", b"two");
    assert_already_exists(v.rename_new("a.jpg", "b.jpg"), "rename a.jpg onto b.jpg");
    assert_eq!(get(v, "a.jpg"), b"one");
    assert_eq!(get(v, "b.jpg"), b"two");
    v.rename_new("a.jpg", "c.jpg").unwrap();
    assert!(v.stat("a.jpg").unwrap().is_none());
    assert_eq!(get(v, "c.jpg"), b"one");
});

volume_test!(rename_across_directories, |v| {
    v.create_dir_all(".sdexport/tmp").unwrap();
    v.create_dir_all("DCIM/Camera").unwrap();
    let data = pattern(70_000, 3);
    put(v, ".sdexport/tmp/run-0", &data);
    v.rename_new(".sdexport/tmp/run-0", "DCIM/Camera/IMG_0001.jpg")
        .unwrap();
    assert!(v.stat(".sdexport/tmp/run-0").unwrap().is_none());
    assert!(names(v, ".sdexport/tmp").is_empty());
    assert!(get(v, "DCIM/Camera/IMG_0001.jpg") == data);
    // Renaming onto an existing name in another directory never replaces it.
    put(v, ".sdexport/tmp/run-1", b"other");
    assert_already_exists(
        v.rename_new(".sdexport/tmp/run-1", "DCIM/Camera/IMG_0001.jpg"),
        "rename across directories onto an existing file",
    );
    assert!(get(v, "DCIM/Camera/IMG_0001.jpg") == data);
    assert_eq!(get(v, ".sdexport/tmp/run-1"), b"other");
});

// ---------------------------------------------------------------- removal, directories

volume_test!(remove_file_frees_the_name, |v| {
    v.create_dir_all("D").unwrap();
    put(v, "D/x.jpg", &pattern(50_000, 5));
    let free_before = v.space().unwrap().free_bytes;
    v.remove_file("D/x.jpg").unwrap();
    assert!(v.stat("D/x.jpg").unwrap().is_none());
    assert!(v.open_read("D/x.jpg").is_err());
    assert!(
        matches!(v.remove_file("D/x.jpg"), Err(StorageError::NotFound { .. })),
        "removing a missing file is NotFound"
    );
    // The name can be used again, for different content.
    put(v, "D/x.jpg", b"again");
    assert_eq!(get(v, "D/x.jpg"), b"again");
    if v.limits().fat_names && v.describe().contains("FAT") {
        assert!(
            v.space().unwrap().free_bytes >= free_before,
            "clusters returned"
        );
    }
});

volume_test!(remove_dir, |v| {
    v.create_dir_all("A/B").unwrap();
    put(v, "A/B/f.jpg", b"f");
    assert!(
        v.remove_dir("A/B").is_err(),
        "a non-empty directory is not removed"
    );
    assert_eq!(get(v, "A/B/f.jpg"), b"f");
    v.remove_file("A/B/f.jpg").unwrap();
    v.remove_dir("A/B").unwrap();
    assert!(v.stat("A/B").unwrap().is_none());
    assert!(names(v, "A").is_empty());
    v.remove_dir("A").unwrap();
    assert!(v.stat("A").unwrap().is_none());
});

volume_test!(create_dir_all_nested, |v| {
    v.create_dir_all("DCIM/2023/10/deep/er").unwrap();
    v.create_dir_all("DCIM/2023/10/deep/er").unwrap(); // idempotent
    v.create_dir_all("DCIM/2023/11").unwrap();
    for p in ["DCIM", "DCIM/2023", "DCIM/2023/10", "DCIM/2023/10/deep/er"] {
        assert_eq!(v.stat(p).unwrap().expect(p).kind, EntryKind::Dir, "{p}");
    }
    put(v, "DCIM/2023/10/deep/er/x.jpg", b"x");
    put(v, "file", b"f");
    assert!(
        v.create_dir_all("file/sub").is_err(),
        "a file is not a directory"
    );
    assert!(
        v.create_new("missing/x.jpg").is_err(),
        "create_new needs the parent to exist"
    );
});

volume_test!(list_sorted_and_walk, |v| {
    v.create_dir_all("DCIM/b").unwrap();
    v.create_dir_all("DCIM/a").unwrap();
    for p in [
        "DCIM/z.jpg",
        "DCIM/m.jpg",
        "DCIM/b/2.jpg",
        "DCIM/b/1.jpg",
        "DCIM/a/x.jpg",
    ] {
        put(v, p, p.as_bytes());
    }
    let listed: Vec<String> = v
        .list("DCIM")
        .unwrap()
        .into_iter()
        .map(|e| e.path)
        .collect();
    assert_eq!(listed, ["DCIM/a", "DCIM/b", "DCIM/m.jpg", "DCIM/z.jpg"]);
    let walked: Vec<(String, EntryKind)> = v
        .walk("")
        .unwrap()
        .into_iter()
        .map(|e| (e.path, e.kind))
        .collect();
    let want = [
        ("DCIM", EntryKind::Dir),
        ("DCIM/a", EntryKind::Dir),
        ("DCIM/b", EntryKind::Dir),
        ("DCIM/m.jpg", EntryKind::File),
        ("DCIM/z.jpg", EntryKind::File),
        ("DCIM/a/x.jpg", EntryKind::File),
        ("DCIM/b/1.jpg", EntryKind::File),
        ("DCIM/b/2.jpg", EntryKind::File),
    ];
    let want: Vec<(String, EntryKind)> = want.iter().map(|(p, k)| (p.to_string(), *k)).collect();
    // Every entry once; each directory before its contents.
    let mut sorted_walk = walked.clone();
    sorted_walk.sort_by(|a, b| a.0.cmp(&b.0));
    let mut sorted_want = want.clone();
    sorted_want.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(sorted_walk, sorted_want);
    for (i, (p, _)) in walked.iter().enumerate() {
        let parent = sdexport::storage::parent(p);
        if !parent.is_empty() {
            let at = walked.iter().position(|(q, _)| q == parent).unwrap();
            assert!(at < i, "{parent} comes after {p} in the walk: {walked:?}");
        }
    }
    assert_eq!(
        v.walk("DCIM/b")
            .unwrap()
            .into_iter()
            .map(|e| e.path)
            .collect::<Vec<_>>(),
        ["DCIM/b/1.jpg", "DCIM/b/2.jpg"]
    );
});

volume_test!(many_files_in_one_directory, |v| {
    // Enough long names to need several directory clusters (and, on FAT12/16, a
    // sub-directory that grows: the fixed root cannot).
    v.create_dir_all("DCIM/Camera").unwrap();
    let mut want = Vec::new();
    for i in 0..300 {
        let name = format!("IMG_20240131_{i:06}_with_a_longer_name.jpg");
        put(v, &format!("DCIM/Camera/{name}"), name.as_bytes());
        want.push(name);
    }
    want.sort();
    assert_eq!(names(v, "DCIM/Camera"), want);
    for i in (0..300).step_by(3) {
        let name = format!("IMG_20240131_{i:06}_with_a_longer_name.jpg");
        v.remove_file(&format!("DCIM/Camera/{name}")).unwrap();
    }
    assert_eq!(names(v, "DCIM/Camera").len(), 200);
    // Freed slots are reused without confusing the remaining names.
    put(v, "DCIM/Camera/new.jpg", b"new");
    assert_eq!(
        get(v, "DCIM/Camera/IMG_20240131_000001_with_a_longer_name.jpg"),
        b"IMG_20240131_000001_with_a_longer_name.jpg"
    );
});

volume_test!(stat_of_missing_is_none, |v| {
    assert!(v.stat("nothing.jpg").unwrap().is_none());
    assert!(v.stat("no/such/dir/x.jpg").unwrap().is_none());
    put(v, "f", b"1");
    let e = v.stat("f").unwrap().unwrap();
    assert_eq!((e.path.as_str(), e.kind, e.size), ("f", EntryKind::File, 1));
    let root = v.stat("").unwrap().expect("the root exists");
    assert_eq!(root.kind, EntryKind::Dir);
});

// ---------------------------------------------------------------- times and space

volume_test!(set_modified_keeps_time, |v| {
    let res = v.limits().mtime_resolution_secs;
    // An odd second: FAT stores 2-second steps.
    let t1 = epoch(1_698_413_471); // 2023-10-27 13:31:11 UTC
    let t2 = epoch(1_420_070_399); // 2014-12-31 23:59:59 UTC
    put(v, "a.jpg", b"a");
    v.set_modified("a.jpg", t1).unwrap();
    assert_time_close(
        v.stat("a.jpg").unwrap().unwrap().modified,
        t1,
        res,
        "set_modified",
    );
    let mut s = v.create_new("b.jpg").unwrap();
    s.write_all(b"b").unwrap();
    s.finish(Some(t2)).unwrap();
    assert_time_close(
        v.stat("b.jpg").unwrap().unwrap().modified,
        t2,
        res,
        "finish(Some)",
    );
    v.sync().unwrap();
    v.drop_caches().unwrap();
    assert_time_close(
        v.stat("a.jpg").unwrap().unwrap().modified,
        t1,
        res,
        "after sync",
    );
    let listed = v.list("").unwrap();
    let b = listed.iter().find(|e| e.path == "b.jpg").unwrap();
    assert_time_close(b.modified, t2, res, "list");
});

volume_test!(space_is_sane, |v| {
    let s = v.space().unwrap();
    assert!(s.total_bytes > 0 && s.free_bytes <= s.total_bytes, "{s:?}");
    assert!(
        s.cluster_bytes >= 512 && s.cluster_bytes.is_power_of_two(),
        "{s:?}"
    );
    assert_eq!(s.allocated(1), s.cluster_bytes);
    assert_eq!(s.allocated(0), 0);
    let size = 1 << 20;
    put(v, "mib.bin", &pattern(size, 9));
    v.sync().unwrap();
    let after = v.space().unwrap();
    if v.describe().contains("FAT") {
        // Our engine counts exactly: the file's clusters, nothing else (root has room).
        assert_eq!(
            s.free_bytes - after.free_bytes,
            s.allocated(size as u64),
            "{s:?} -> {after:?}"
        );
    } else {
        // A host file system shares its free space with everything else running.
        assert!(after.total_bytes > 0 && after.free_bytes <= after.total_bytes);
    }
});

volume_test!(sync_drop_caches_read_back, |v| {
    let a = pattern(1_500_000, 21);
    let b = pattern(4097, 22);
    v.create_dir_all("DCIM/Camera").unwrap();
    put(v, "DCIM/Camera/a.mp4", &a);
    put(v, "DCIM/Camera/b.jpg", &b);
    v.sync().unwrap();
    v.drop_caches().unwrap();
    assert!(get(v, "DCIM/Camera/a.mp4") == a);
    assert!(get(v, "DCIM/Camera/b.jpg") == b);
    assert_eq!(names(v, "DCIM/Camera"), ["a.mp4", "b.jpg"]);
    // Writing after a drop works and is seen.
    put(v, "DCIM/Camera/c.jpg", b"c");
    v.drop_caches().unwrap();
    assert_eq!(get(v, "DCIM/Camera/c.jpg"), b"c");
});

volume_test!(prefetch_is_only_a_hint, |v| {
    let a = pattern(700_000, 31);
    let b = pattern(9_000, 32);
    v.create_dir_all("DCIM").unwrap();
    put(v, "DCIM/a.jpg", &a);
    put(v, "DCIM/b.jpg", &b);
    v.sync().unwrap();
    v.drop_caches().unwrap();
    // Prefetched or not, in any order, missing or not: reads give the files' bytes.
    v.prefetch("DCIM/b.jpg");
    v.prefetch("DCIM/missing.jpg");
    assert!(get(v, "DCIM/a.jpg") == a);
    assert!(get(v, "DCIM/b.jpg") == b);
    for _ in 0..20 {
        v.prefetch("DCIM/a.jpg");
    }
    assert!(get(v, "DCIM/a.jpg") == a);
    assert!(get(v, "DCIM/a.jpg") == a);
});

volume_test!(full_card_is_no_space_and_recovers, |v| {
    if !v.describe().contains("FAT") {
        // A host file system's free space is shared with everything else running.
        return;
    }
    put(v, "keep.jpg", b"keep");
    let before = v.space().unwrap();
    let chunk = pattern(1 << 20, 77);
    let mut written = 0u64;
    let err = {
        let mut s = v.create_new("fill.bin").unwrap();
        loop {
            match s.write_all(&chunk) {
                Ok(()) => written += chunk.len() as u64,
                Err(e) => break e,
            }
            // A writer may buffer a few MiB before it allocates; NoSpace comes then.
            assert!(
                written <= before.total_bytes + (8 << 20),
                "accepted {written} bytes without NoSpace: {before:?}"
            );
        }
    };
    assert_eq!(err.kind(), std::io::ErrorKind::StorageFull, "{err}");
    assert!(
        written + (1 << 20) > before.free_bytes,
        "stopped early: {written} of {before:?}"
    );
    // Whatever the failed file left, removing it gives every cluster back.
    if v.stat("fill.bin").unwrap().is_some() {
        v.remove_file("fill.bin").unwrap();
    }
    v.sync().unwrap();
    assert_eq!(v.space().unwrap().free_bytes, before.free_bytes);
    assert_eq!(get(v, "keep.jpg"), b"keep");
    // The card works again.
    put(v, "after.jpg", &chunk);
    assert!(get(v, "after.jpg") == chunk);
});

// ---------------------------------------------------------------- names

const UNICODE_NAMES: &[&str] = &[
    "Été_日本_😀.jpg",
    "Ωμέγα.png",
    "файл фото.jpg",
    "😀😃🎉.heic",
    "Straße.JPG",
    "a b  c.jpeg",
    "with.many.dots.jpg",
    "ünïcödé",
];

volume_test!(unicode_and_emoji_names, |v| {
    v.create_dir_all("DCIM/Ürlaub 🏖").unwrap();
    for (i, n) in UNICODE_NAMES.iter().enumerate() {
        put(
            v,
            &format!("DCIM/Ürlaub 🏖/{n}"),
            &pattern(100 + i, i as u64),
        );
    }
    let mut want: Vec<String> = UNICODE_NAMES.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(names(v, "DCIM/Ürlaub 🏖"), want);
    for (i, n) in UNICODE_NAMES.iter().enumerate() {
        assert!(
            get(v, &format!("DCIM/Ürlaub 🏖/{n}")) == pattern(100 + i, i as u64),
            "{n}"
        );
    }
    v.rename_new("DCIM/Ürlaub 🏖/😀😃🎉.heic", "DCIM/🎉.heic")
        .unwrap();
    assert!(v.stat("DCIM/🎉.heic").unwrap().is_some());
});

volume_test!(names_of_255_units, |v| {
    let ext = ".jpg";
    let n255 = format!("{}{ext}", "n".repeat(255 - ext.len()));
    assert_eq!(n255.encode_utf16().count(), 255);
    put(v, &n255, b"255");
    assert_eq!(get(v, &n255), b"255");
    if !v.limits().fat_names {
        // Host file systems count 255 bytes, not UTF-16 units.
        return;
    }
    // 255 UTF-16 units made of surrogate pairs and BMP characters.
    let mixed = format!("{}{}", "😀".repeat(125), "日本.jpg");
    assert_eq!(mixed.encode_utf16().count(), 256);
    let mixed = format!("{}{}", "😀".repeat(125), "日.jpg");
    assert_eq!(mixed.encode_utf16().count(), 255);
    put(v, &mixed, b"mixed");
    assert_eq!(get(v, &mixed), b"mixed");
    assert!(names(v, "").contains(&mixed));
    let n256 = format!("{}{ext}", "n".repeat(256 - ext.len()));
    assert_invalid_name(v.create_new(&n256), "a name of 256 UTF-16 units");
});

volume_test!(fat_rejects_forbidden_characters, |v| {
    if !v.limits().fat_names {
        // A host file system holds `a:b`; sanitising is the planner's job.
        put(v, "a:b", b"ok");
        assert_eq!(get(v, "a:b"), b"ok");
        return;
    }
    for bad in [
        "a:b",
        "a*b.jpg",
        "q?.jpg",
        "x<y>.jpg",
        "p|q",
        "quote\".jpg",
        "back\\slash",
    ] {
        assert_invalid_name(v.create_new(bad), bad);
        assert!(
            v.stat(bad).map(|e| e.is_none()).unwrap_or(true),
            "{bad} exists"
        );
    }
    put(v, "ok.jpg", b"ok");
    assert_invalid_name(v.rename_new("ok.jpg", "a:b"), "rename to a:b");
    assert_eq!(get(v, "ok.jpg"), b"ok");
    assert!(v.create_dir_all("bad:dir").is_err());
});

// ---------------------------------------------------------------- a summary test

/// The oracles' view agrees with a direct mtools read of an image made by `mkfs.fat` and
/// written only by us, file by file (not only through the whole-tree judge).
#[test]
fn mkfs_image_written_by_us_reads_with_mtools() {
    if !oracle(&["mkfs.fat", "mcopy", "fsck.fat", "mdir"]) {
        return;
    }
    let tmp = TempDir::new().unwrap();
    let img = tmp.path().join("c.img");
    mkfs_image(&img, 64 * 1024, 32);
    let mut want = BTreeMap::new();
    {
        let mut card = open_card(
            &img,
            CardOptions {
                partition: None,
                write: true,
            },
        )
        .unwrap();
        let v = card.volume.as_mut();
        v.create_dir_all("DCIM/Camera").unwrap();
        for i in 0..20 {
            let p = format!("DCIM/Camera/IMG_{i:04}.jpg");
            let data = fake_jpeg(1000 + i * 7919, i as u64);
            put(v, &p, &data);
            want.insert(p, data);
        }
        v.set_modified("DCIM/Camera/IMG_0003.jpg", epoch(PHONE_MTIME))
            .unwrap();
        v.sync().unwrap();
    }
    assert_fsck_clean(&img, "mkfs image after our writes");
    for (p, data) in &want {
        assert!(mtools_read(&img, p) == *data, "{p}");
    }
    let out = tmp.path().join("out");
    mtools_extract(&img, &out);
    let meta = std::fs::metadata(out.join("DCIM/Camera/IMG_0003.jpg")).unwrap();
    assert_time_close(
        meta.modified().ok(),
        epoch(PHONE_MTIME),
        2,
        "mtools sees our modified time",
    );
}
