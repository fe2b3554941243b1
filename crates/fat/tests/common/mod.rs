//! Shared test helpers: temp images and the external oracles (dosfstools, mtools, fatfs).
#![allow(dead_code)]

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use sdexport_fat::{format, FatType, FileSystem, FormatOptions};

pub const MIB: u64 = 1024 * 1024;

/// Find an oracle tool. Missing: print `SKIPPED: <tool> missing` and return None, unless
/// SDEXPORT_REQUIRE_ORACLES=1, then panic.
pub fn tool(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from));
    for d in dirs {
        let p = d.join(name);
        if p.is_file() {
            return Some(p);
        }
    }
    if std::env::var("SDEXPORT_REQUIRE_ORACLES").as_deref() == Ok("1") {
        panic!("oracle {name} missing and SDEXPORT_REQUIRE_ORACLES=1");
    }
    println!("SKIPPED: {name} missing");
    None
}

pub struct Image {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
}

/// A sparse temp image file of `size` bytes.
pub fn image(size: u64) -> Image {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("card.img");
    let f = std::fs::File::create(&path).unwrap();
    f.set_len(size).unwrap();
    Image { dir, path }
}

pub fn open_rw(p: &Path) -> std::fs::File {
    OpenOptions::new().read(true).write(true).open(p).unwrap()
}

/// Format with our engine.
pub fn our_format(img: &Image, size: u64, t: Option<FatType>) {
    let mut f = open_rw(&img.path);
    format(
        &mut f,
        &FormatOptions {
            volume_bytes: size,
            fat_type: t,
            ..Default::default()
        },
    )
    .unwrap();
}

pub fn open_fs(img: &Image) -> FileSystem<std::fs::File> {
    FileSystem::open(open_rw(&img.path)).unwrap()
}

/// `fsck.fat -n`: (exit code, output). None when the tool is missing.
pub fn fsck(p: &Path) -> Option<(i32, String)> {
    let t = tool("fsck.fat")?;
    let o = Command::new(t).arg("-n").arg(p).output().unwrap();
    let mut s = String::from_utf8_lossy(&o.stdout).into_owned();
    s.push_str(&String::from_utf8_lossy(&o.stderr));
    Some((o.status.code().unwrap_or(-1), s))
}

pub fn assert_fsck_clean(p: &Path) {
    if let Some((code, out)) = fsck(p) {
        assert_eq!(code, 0, "fsck.fat -n not clean:\n{out}");
    }
}

fn mtools(name: &str) -> Option<Command> {
    let t = tool(name)?;
    let mut c = Command::new(t);
    c.env("MTOOLS_SKIP_CHECK", "1").env("LC_ALL", "C.UTF-8");
    Some(c)
}

/// Names in a directory as `mdir -b` lists them (dirs without the trailing `/`), sorted.
pub fn mdir(img: &Path, dir: &str) -> Option<Vec<String>> {
    let mut c = mtools("mdir")?;
    let target = format!("::{dir}");
    let o = c
        .arg("-b")
        .arg("-i")
        .arg(img)
        .arg(&target)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "mdir failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let s = String::from_utf8_lossy(&o.stdout);
    let prefix = if target.ends_with('/') {
        target.clone()
    } else {
        format!("{target}/")
    };
    let mut v: Vec<String> = s
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            l.strip_prefix(&prefix)
                .unwrap_or(l)
                .trim_end_matches('/')
                .to_string()
        })
        .collect();
    v.sort();
    Some(v)
}

/// File contents as `mcopy -n -i img ::/path -` reads them.
pub fn mcopy_read(img: &Path, path: &str) -> Option<Vec<u8>> {
    let mut c = mtools("mcopy")?;
    let o = c
        .arg("-n")
        .arg("-i")
        .arg(img)
        .arg(format!("::{path}"))
        .arg("-")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "mcopy failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    Some(o.stdout)
}

/// Put a host file onto the image with mcopy.
pub fn mcopy_put(img: &Path, host: &Path, path: &str) -> Option<()> {
    let mut c = mtools("mcopy")?;
    let o = c
        .arg("-i")
        .arg(img)
        .arg(host)
        .arg(format!("::{path}"))
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "mcopy put failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    Some(())
}

pub fn mmd(img: &Path, path: &str) -> Option<()> {
    let mut c = mtools("mmd")?;
    let o = c
        .arg("-i")
        .arg(img)
        .arg(format!("::{path}"))
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "mmd failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    Some(())
}

/// mkfs.fat -F `bits` on a fresh image of `size` bytes.
pub fn mkfs(size: u64, bits: u32) -> Option<Image> {
    let t = tool("mkfs.fat")?;
    let img = image(size);
    let o = Command::new(t)
        .arg("-F")
        .arg(bits.to_string())
        .arg(&img.path)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "mkfs.fat failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    Some(img)
}

/// List a directory with the independent fatfs crate: sorted names.
pub fn fatfs_list(img: &Path, dir: &str) -> Vec<String> {
    let f = std::fs::File::open(img).unwrap();
    let fs = fatfs::FileSystem::new(f, fatfs::FsOptions::new()).unwrap();
    let root = fs.root_dir();
    let d = if dir.trim_matches('/').is_empty() {
        root
    } else {
        root.open_dir(dir.trim_matches('/')).unwrap()
    };
    let mut v: Vec<String> = d
        .iter()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != "." && n != "..")
        .collect();
    v.sort();
    v
}

pub fn fatfs_read(img: &Path, path: &str) -> Vec<u8> {
    let f = std::fs::File::open(img).unwrap();
    let fs = fatfs::FileSystem::new(f, fatfs::FsOptions::new()).unwrap();
    let mut file = fs
        .root_dir()
        .open_file(path.trim_start_matches('/'))
        .unwrap();
    let mut v = Vec::new();
    file.read_to_end(&mut v).unwrap();
    v
}

/// Our listing of a directory: sorted names.
pub fn our_list(fs: &mut FileSystem<std::fs::File>, dir: &str) -> Vec<String> {
    let mut v: Vec<String> = fs
        .list_dir(dir)
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    v.sort();
    v
}

pub fn our_read<S: sdexport_fat::Storage>(fs: &mut FileSystem<S>, path: &str) -> Vec<u8> {
    let mut f = fs.open_file(path).unwrap();
    let mut v = Vec::new();
    f.read_to_end(&mut v).unwrap();
    v
}

pub fn our_write<S: sdexport_fat::Storage>(fs: &mut FileSystem<S>, path: &str, data: &[u8]) {
    let mut w = fs.create_file(path).unwrap();
    w.write_all(data).unwrap();
    w.finish(None).unwrap();
}

/// Deterministic pseudo-random bytes.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Every oracle agrees with `expected` (dir → names, file → bytes) and fsck is clean.
pub fn assert_oracles(
    img: &Path,
    dirs: &[(&str, Vec<&str>)],
    files: &[(&str, &[u8])],
    mtools_ok: bool,
) {
    assert_fsck_clean(img);
    for (d, names) in dirs {
        let mut want: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(fatfs_list(img, d), want, "fatfs listing of {d}");
        let h: Vec<String> = hadris_dir(img, d).into_iter().map(|e| e.0).collect();
        assert_eq!(h, want, "hadris-fat listing of {d}");
        if mtools_ok {
            if let Some(got) = mdir(img, d) {
                assert_eq!(got, want, "mdir listing of {d}");
            }
        }
    }
    for (p, bytes) in files {
        assert!(fatfs_read(img, p) == *bytes, "fatfs bytes of {p}");
        let (dir, name) = p.rsplit_once('/').unwrap();
        let h = hadris_dir(img, dir);
        let e = h
            .iter()
            .find(|e| e.0 == name)
            .unwrap_or_else(|| panic!("hadris-fat: no {p}"));
        assert!(e.2 == *bytes, "hadris-fat bytes of {p}");
        if mtools_ok {
            if let Some(got) = mcopy_read(img, p) {
                assert!(got == *bytes, "mcopy bytes of {p}");
            }
        }
    }
}

/// The hadris-fat crate as a third independent reader: (name, is_dir, bytes) of a
/// directory's entries, sorted, `.`/`..` left out. `dir` is a `/`-path.
pub fn hadris_dir(img: &Path, dir: &str) -> Vec<(String, bool, Vec<u8>)> {
    use hadris_fat::{FatVolume, FatVolumeReadExt};
    let f = std::fs::File::open(img).unwrap();
    let fs = FatVolume::open(f).unwrap_or_else(|e| panic!("hadris-fat open: {e:?}"));
    let mut d = fs.root_dir();
    for comp in dir.split('/').filter(|c| !c.is_empty()) {
        let mut it = d.entries();
        let mut found = None;
        while let Some(r) = it.next_entry() {
            let e = r.unwrap_or_else(|e| panic!("hadris-fat entry: {e:?}"));
            if e.name().eq_ignore_ascii_case(comp) {
                found = e.as_entry().cloned();
            }
        }
        let fe = found.unwrap_or_else(|| panic!("hadris-fat: {comp} not found in {dir}"));
        d = fs
            .open_dir_entry(&fe)
            .unwrap_or_else(|e| panic!("hadris-fat open dir: {e:?}"));
    }
    let mut out = Vec::new();
    let mut it = d.entries();
    while let Some(r) = it.next_entry() {
        let e = r.unwrap_or_else(|e| panic!("hadris-fat entry: {e:?}"));
        let name = e.name().into_owned();
        if name == "." || name == ".." {
            continue;
        }
        let fe = e.as_entry().unwrap().clone();
        let mut bytes = Vec::new();
        if fe.is_file() {
            let mut rd = fs
                .read_file(&fe)
                .unwrap_or_else(|e| panic!("hadris-fat read: {e:?}"));
            let mut buf = vec![0u8; 65536];
            loop {
                let n = rd
                    .read(&mut buf)
                    .unwrap_or_else(|e| panic!("hadris-fat read: {e:?}"));
                if n == 0 {
                    break;
                }
                bytes.extend_from_slice(&buf[..n]);
            }
        }
        out.push((name, fe.is_directory(), bytes));
    }
    out.sort();
    out
}
