//! The foundation commands through the binary (`format`, `info`, `ls`, `get`), each judged
//! by an independent implementation: mkfs.fat, fsck.fat, mtools, sfdisk, sgdisk, and a
//! real block device (loop) where the machine allows it.
//!
//! What belongs here: card opening, partition tables, listing and reading, hostile images.
//! The photo move is in `photos.rs`, the per-backend behaviour in `volume_suite.rs`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{oracle, p, sdexport, text, tool};

mod common;

fn fsck_clean(img: &Path) {
    let o = Command::new("fsck.fat")
        .arg("-n")
        .arg(img)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "fsck.fat -n {}: {}",
        img.display(),
        text(&o)
    );
}

fn assert_no_panic(o: &Output) {
    let t = text(o);
    assert!(!t.contains("panicked"), "panic: {t}");
    assert_ne!(o.status.code(), Some(101), "panic exit code: {t}");
}

/// Random-looking but reproducible bytes.
fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn images_we_format_pass_fsck_and_mtools_reads_them() {
    if !oracle(&["fsck.fat", "mdir", "sfdisk"]) {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    for (name, args) in [
        ("fat12.img", vec!["--size", "4M"]),
        ("fat16.img", vec!["--size", "32M", "--fat", "16"]),
        ("fat32.img", vec!["--size", "128M", "--label", "HOLIDAYS"]),
    ] {
        let img = d.path().join(name);
        let mut a = vec!["format", p(&img)];
        a.extend(args.iter().copied());
        let o = sdexport(&a);
        assert!(o.status.success(), "{}", text(&o));
        fsck_clean(&img);
        tool("mdir", &["-i", p(&img), "::/"]);
    }
    // --mbr: a partition at 4 MiB, type 0x0C, and the volume inside is clean.
    let img = d.path().join("mbr.img");
    let o = sdexport(&["format", p(&img), "--size", "256M", "--mbr"]);
    assert!(o.status.success(), "{}", text(&o));
    let dump = String::from_utf8(tool("sfdisk", &["-d", p(&img)]).stdout).unwrap();
    assert!(
        dump.contains("start=        8192") || dump.contains("start=8192"),
        "{dump}"
    );
    assert!(dump.contains("type=c"), "{dump}");
    let part = d.path().join("part.img");
    let all = fs::read(&img).unwrap();
    fs::write(&part, &all[4 << 20..]).unwrap();
    fsck_clean(&part);
    tool("mdir", &["-i", &format!("{}@@4M", p(&img)), "::/"]);
    // An existing file is refused without --force, and says what would be erased.
    let o = sdexport(&["format", p(&img), "--size", "64M"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--force"), "{}", text(&o));
    assert_eq!(
        fs::read(&img).unwrap(),
        all,
        "a refused format changed the image"
    );
    let o = sdexport(&["format", p(&img), "--force"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("erased"), "{}", text(&o));
}

/// Images made by mkfs.fat (FAT12/16/32) with files put by mtools: our `ls` lists the
/// same names and sizes, `get` returns the same bytes.
#[test]
fn mkfs_images_with_mtools_files_are_listed_and_read_identically() {
    if !oracle(&["mkfs.fat", "mcopy"]) {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let payloads: Vec<(&str, Vec<u8>)> = vec![
        ("IMG_0001.JPG", bytes(70_000, 1)),
        ("IMG_20240131_235959_long name é.jpg", bytes(3_000_000, 2)),
        ("Ünïcödé 日本語 файл.txt", bytes(5, 3)),
        ("empty.bin", Vec::new()),
    ];
    for (fat, sectors) in [("12", "8192"), ("16", "65536"), ("32", "270000")] {
        let img = d.path().join(format!("m{fat}.img"));
        tool("mkfs.fat", &["-F", fat, "-C", p(&img), sectors]);
        tool("mmd", &["-i", p(&img), "::/DCIM", "::/DCIM/Camera"]);
        for (name, data) in &payloads {
            let local = d.path().join("payload");
            fs::write(&local, data).unwrap();
            tool(
                "mcopy",
                &["-i", p(&img), p(&local), &format!("::/DCIM/Camera/{name}")],
            );
        }
        let o = sdexport(&["ls", p(&img), "DCIM/Camera", "--json"]);
        assert!(o.status.success(), "FAT{fat}: {}", text(&o));
        let listing: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let mut names: Vec<(String, u64)> = listing
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["name"].as_str().unwrap().to_string(),
                    e["size"].as_u64().unwrap(),
                )
            })
            .collect();
        names.sort();
        let mut want: Vec<(String, u64)> = payloads
            .iter()
            .map(|(n, b)| (n.to_string(), b.len() as u64))
            .collect();
        want.sort();
        assert_eq!(names, want, "FAT{fat}");
        for (name, data) in &payloads {
            let out = d.path().join("out");
            let _ = fs::remove_file(&out);
            let o = sdexport(&["get", p(&img), &format!("DCIM/Camera/{name}"), p(&out)]);
            assert!(o.status.success(), "FAT{fat} get {name}: {}", text(&o));
            assert_eq!(&fs::read(&out).unwrap(), data, "FAT{fat}: {name}");
        }
        // A whole folder, and stdout.
        let outdir = d.path().join(format!("tree{fat}"));
        fs::create_dir(&outdir).unwrap();
        let o = sdexport(&["get", p(&img), "DCIM", p(&outdir)]);
        assert!(o.status.success(), "{}", text(&o));
        assert_eq!(
            fs::read(outdir.join("DCIM/Camera/IMG_0001.JPG")).unwrap(),
            payloads[0].1
        );
        let o = sdexport(&["get", p(&img), "DCIM/Camera/IMG_0001.JPG", "-"]);
        assert_eq!(o.stdout, payloads[0].1);
        fsck_clean(&img);
    }
}

/// Cards as sold (MBR, partition at 4 MiB) and GPT disks: the FAT partition is found, and
/// `info --json` says what is there.
#[test]
fn partitioned_cards_are_opened_at_their_fat_partition() {
    if !oracle(&["sfdisk", "sgdisk", "mkfs.fat", "mcopy"]) {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let photo = d.path().join("photo.bin");
    fs::write(&photo, bytes(300_000, 9)).unwrap();

    let mbr = d.path().join("mbr.img");
    fs::File::create(&mbr).unwrap().set_len(256 << 20).unwrap();
    let mut c = Command::new("sfdisk")
        .arg("-q")
        .arg(&mbr)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    c.stdin
        .take()
        .unwrap()
        .write_all(b"start=8192, type=c\n")
        .unwrap();
    assert!(c.wait().unwrap().success());
    tool("mkfs.fat", &["-F", "32", "--offset", "8192", p(&mbr)]);
    tool(
        "mcopy",
        &["-i", &format!("{}@@4M", p(&mbr)), p(&photo), "::/X.JPG"],
    );

    let gpt = d.path().join("gpt.img");
    fs::File::create(&gpt).unwrap().set_len(128 << 20).unwrap();
    tool("sgdisk", &["-n", "1:2048:0", "-t", "1:0700", p(&gpt)]);
    tool("mkfs.fat", &["-F", "32", "--offset", "2048", p(&gpt)]);
    tool(
        "mcopy",
        &["-i", &format!("{}@@1M", p(&gpt)), p(&photo), "::/X.JPG"],
    );

    for (img, table, offset) in [(&mbr, "mbr", 4u64 << 20), (&gpt, "gpt", 1 << 20)] {
        let o = sdexport(&["info", p(img), "--json"]);
        assert!(o.status.success(), "{table}: {}", text(&o));
        let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(j["fat_type"], "FAT32", "{j}");
        assert_eq!(j["layout"]["table"], table, "{j}");
        assert_eq!(j["selection"]["offset"].as_u64(), Some(offset), "{j}");
        assert_eq!(j["selection"]["partition"].as_u64(), Some(1), "{j}");
        let out = d.path().join(format!("{table}.out"));
        let o = sdexport(&["get", p(img), "X.JPG", p(&out)]);
        assert!(o.status.success(), "{table}: {}", text(&o));
        assert_eq!(fs::read(&out).unwrap(), fs::read(&photo).unwrap());
        // A partition that does not exist is named in the error.
        let o = sdexport(&["ls", p(img), "--partition", "3"]);
        assert_eq!(o.status.code(), Some(2));
        assert!(text(&o).contains("no partition 3"), "{}", text(&o));
    }

    // A GPT disk whose only partition is not FAT says so.
    let linux = d.path().join("linux.img");
    fs::File::create(&linux).unwrap().set_len(16 << 20).unwrap();
    tool("sgdisk", &["-n", "1:2048:0", "-t", "1:8300", p(&linux)]);
    let o = sdexport(&["info", p(&linux)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("GPT with no FAT partition"),
        "{}",
        text(&o)
    );
}

/// Hostile images: a clear error and exit 2, never a panic, never a hang.
#[test]
fn hostile_images_give_clear_errors() {
    let d = tempfile::tempdir().unwrap();
    let mut cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", Vec::new(), "empty"),
        ("random", bytes(1 << 20, 7), "no FAT boot sector"),
        ("short", bytes(100, 8), "too short"),
    ];
    let mut exfat = vec![0u8; 1 << 20];
    exfat[0..3].copy_from_slice(&[0xEB, 0x76, 0x90]);
    exfat[3..11].copy_from_slice(b"EXFAT   ");
    exfat[510] = 0x55;
    exfat[511] = 0xAA;
    cases.push(("exfat", exfat, "exFAT"));
    if oracle(&["mkfs.fat"]) {
        let img = d.path().join("base.img");
        tool("mkfs.fat", &["-F", "16", "-C", p(&img), "32768"]);
        let base = fs::read(&img).unwrap();
        let mut geometry = base.clone();
        geometry[11..15].copy_from_slice(&[0xFF; 4]);
        cases.push(("absurd-geometry", geometry, ""));
        let mut zero_fats = base.clone();
        zero_fats[16] = 0;
        cases.push(("zero-fats", zero_fats, ""));
        cases.push(("truncated", base[..100_000].to_vec(), ""));
    }
    for (name, data, want) in cases {
        let img = d.path().join(format!("{name}.img"));
        fs::write(&img, &data).unwrap();
        for cmd in ["info", "ls"] {
            let o = sdexport(&[cmd, p(&img)]);
            assert_no_panic(&o);
            assert_eq!(o.status.code(), Some(2), "{cmd} {name}: {}", text(&o));
            assert!(text(&o).contains(want), "{cmd} {name}: {}", text(&o));
            assert!(
                text(&o).contains(p(&img)),
                "the error names the card: {}",
                text(&o)
            );
        }
    }
}

/// A FAT whose root chain loops: an error, not a hang.
#[test]
fn a_looping_cluster_chain_is_an_error_not_a_hang() {
    if !oracle(&["mkfs.fat", "mmd"]) {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let img = d.path().join("loop.img");
    tool("mkfs.fat", &["-F", "32", "-C", p(&img), "270000"]);
    let mut data = fs::read(&img).unwrap();
    let reserved = u16::from_le_bytes([data[14], data[15]]) as usize;
    let fat = reserved * 512;
    // Root directory (cluster 2) points to cluster 3, which points back to 2.
    data[fat + 8..fat + 12].copy_from_slice(&3u32.to_le_bytes());
    data[fat + 12..fat + 16].copy_from_slice(&2u32.to_le_bytes());
    fs::write(&img, &data).unwrap();
    let start = std::time::Instant::now();
    let o = sdexport(&["ls", p(&img)]);
    assert_no_panic(&o);
    assert!(
        start.elapsed() < std::time::Duration::from_secs(20),
        "took {:?}",
        start.elapsed()
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

/// The device path on a real block device: a loop device over an MBR card image.
#[test]
fn a_real_block_device_is_read_and_written() {
    if !oracle(&["losetup", "mkfs.fat", "sfdisk", "mcopy"]) {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let img = d.path().join("dev.img");
    let o = sdexport(&["format", p(&img), "--size", "64M", "--mbr"]);
    assert!(o.status.success(), "{}", text(&o));
    let attach = Command::new("losetup")
        .args(["-f", "--show", p(&img)])
        .output()
        .unwrap();
    if !attach.status.success() {
        println!("SKIPPED: losetup refused here: {}", text(&attach).trim());
        return;
    }
    let dev = PathBuf::from(String::from_utf8(attach.stdout).unwrap().trim());
    struct Detach(PathBuf);
    impl Drop for Detach {
        fn drop(&mut self) {
            let _ = Command::new("losetup").arg("-d").arg(&self.0).status();
        }
    }
    let _guard = Detach(dev.clone());
    let phone = d.path().join("phone");
    fs::create_dir_all(phone.join("DCIM/Camera")).unwrap();
    let photo = bytes(500_000, 11);
    let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0];
    jpeg.extend_from_slice(&photo);
    fs::write(phone.join("DCIM/Camera/IMG_0001.JPG"), &jpeg).unwrap();
    let o = sdexport(&["photos", p(&phone), "--to", p(&dev)]);
    assert!(
        o.status.success(),
        "photos to {}: {}",
        dev.display(),
        text(&o)
    );
    let o = sdexport(&["info", p(&dev), "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["device"], true, "{j}");
    let o = sdexport(&["ls", p(&dev), "DCIM/Camera"]);
    assert!(text(&o).contains("IMG_0001.JPG"), "{}", text(&o));
    drop(_guard);
    // What we wrote through the device is what another implementation reads.
    let got = tool(
        "mtype",
        &[
            "-i",
            &format!("{}@@4M", p(&img)),
            "::/DCIM/Camera/IMG_0001.JPG",
        ],
    )
    .stdout;
    assert_eq!(got, jpeg);
    let all = fs::read(&img).unwrap();
    let part = d.path().join("part.img");
    fs::write(&part, &all[4 << 20..]).unwrap();
    fsck_clean(&part);
}

#[test]
fn help_teaches_with_examples_and_exit_codes() {
    let o = sdexport(&["--help"]);
    assert!(o.status.success());
    let t = text(&o);
    assert!(t.contains("Exit codes"), "{t}");
    for cmd in [
        "backup", "photos", "contacts", "verify", "format", "info", "ls", "get",
    ] {
        let o = sdexport(&[cmd, "--help"]);
        assert!(o.status.success(), "{cmd}");
        assert!(text(&o).contains("Example"), "{cmd} --help has no example");
    }
    let o = sdexport(&["completions", "bash"]);
    assert!(o.status.success() && text(&o).contains("sdexport"));
    let o = sdexport(&["man"]);
    assert!(o.status.success() && text(&o).contains(".TH"));
}
