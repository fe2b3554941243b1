//! `backup` then `verify`, end to end through the binary, on images made by mkfs.fat (with and
//! without an MBR) and on a directory card; and the README's main-job command, whose output
//! must match what the README shows.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{oracle, p, sdexport, text, tool};

mod common;

fn sample_phone() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/phone")
}

/// A copy of the sample phone (tests never modify testdata).
fn phone_copy(dir: &Path) -> PathBuf {
    let dest = dir.join("phone");
    let o = Command::new("cp")
        .arg("-a")
        .arg(sample_phone())
        .arg(&dest)
        .output()
        .unwrap();
    assert!(o.status.success());
    dest
}

/// Make a card image: `mkfs.fat` superfloppy, or an MBR card with the partition at 4 MiB.
/// Returns the image and the mtools drive spec for it.
fn card_image(dir: &Path, mbr: bool) -> (PathBuf, String) {
    let img = dir.join(if mbr { "mbr.img" } else { "plain.img" });
    if mbr {
        fs::File::create(&img).unwrap().set_len(256 << 20).unwrap();
        let mut c = Command::new("sfdisk")
            .arg("-q")
            .arg(&img)
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin
            .take()
            .unwrap()
            .write_all(b"start=8192, type=c\n")
            .unwrap();
        assert!(c.wait().unwrap().success());
        tool("mkfs.fat", &["-F", "32", "--offset", "8192", p(&img)]);
        let spec = format!("{}@@4M", p(&img));
        (img, spec)
    } else {
        tool("mkfs.fat", &["-F", "32", "-C", p(&img), "262144"]);
        let spec = p(&img).to_string();
        (img, spec)
    }
}

#[derive(serde::Deserialize, Debug)]
struct VerifyJson {
    files: Vec<FileJson>,
}
#[derive(serde::Deserialize, Debug)]
struct FileJson {
    path: String,
    status: String,
}

fn problems(card: &Path) -> Vec<(String, String)> {
    let o = sdexport(&["verify", p(card), "--json"]);
    let j: VerifyJson =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)));
    let mut v: Vec<(String, String)> = j
        .files
        .into_iter()
        .filter(|f| f.status != "ok")
        .map(|f| (f.path, f.status))
        .collect();
    v.sort();
    v
}

#[test]
fn backup_then_verify_finds_exactly_the_damage_on_images() {
    if !oracle(&["mkfs.fat", "sfdisk", "mcopy", "fsck.fat"]) {
        return;
    }
    for mbr in [false, true] {
        let d = tempfile::tempdir().unwrap();
        let phone = phone_copy(d.path());
        let (img, spec) = card_image(d.path(), mbr);
        let o = sdexport(&["backup", p(&phone), "--to", p(&img)]);
        assert!(o.status.success(), "backup (mbr={mbr}): {}", text(&o));
        let o = sdexport(&["verify", p(&img)]);
        assert!(
            o.status.success(),
            "verify right after backup: {}",
            text(&o)
        );
        let o = sdexport(&["verify", p(&img), "--against", p(&phone.join("DCIM"))]);
        assert!(o.status.success(), "verify --against: {}", text(&o));
        // The sample phone is untouched by a copy-mode backup.
        let o = Command::new("diff")
            .arg("-r")
            .arg(sample_phone())
            .arg(&phone)
            .output()
            .unwrap();
        assert!(o.status.success(), "backup changed the phone: {}", text(&o));

        // Damage: flip a byte in one photo, delete another, add a stray file.
        let flip = "::/DCIM/Camera/PXL_20231006_205351123.jpg";
        let mut bytes = tool("mtype", &["-i", &spec, flip]).stdout;
        bytes[5000] ^= 0x55;
        let local = d.path().join("flipped.jpg");
        fs::write(&local, &bytes).unwrap();
        tool("mcopy", &["-o", "-i", &spec, p(&local), flip]);
        tool("mdel", &["-i", &spec, "::/DCIM/100NIKON/DSCN0010.JPG"]);
        fs::write(d.path().join("stray.jpg"), b"stray").unwrap();
        tool(
            "mcopy",
            &[
                "-i",
                &spec,
                p(&d.path().join("stray.jpg")),
                "::/DCIM/stray.jpg",
            ],
        );

        let o = sdexport(&["verify", p(&img)]);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        for name in ["PXL_20231006_205351123.jpg", "DSCN0010.JPG", "stray.jpg"] {
            assert!(
                text(&o).contains(name),
                "verify does not name {name}: {}",
                text(&o)
            );
        }
        assert_eq!(
            problems(&img),
            vec![
                (
                    "DCIM/100NIKON/DSCN0010.JPG".to_string(),
                    "missing".to_string()
                ),
                (
                    "DCIM/Camera/PXL_20231006_205351123.jpg".to_string(),
                    "corrupt".to_string()
                ),
                ("DCIM/stray.jpg".to_string(), "unknown".to_string()),
            ]
        );
        // --against now lists exactly the two photos that are not safely on the card.
        let o = sdexport(&[
            "verify",
            p(&img),
            "--against",
            p(&phone.join("DCIM")),
            "--json",
        ]);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let mut missing: Vec<String> = j["against"]["not_on_card"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["path"].as_str().unwrap().to_string())
            .collect();
        missing.sort();
        assert_eq!(missing.len(), 2, "{missing:?}");
        assert!(
            missing[0].ends_with("DSCN0010.JPG")
                && missing[1].ends_with("PXL_20231006_205351123.jpg"),
            "{missing:?}"
        );

        // The image is consistent for another implementation.
        let part = d.path().join("part.img");
        let all = fs::read(&img).unwrap();
        fs::write(&part, if mbr { &all[4 << 20..] } else { &all[..] }).unwrap();
        let f = Command::new("fsck.fat")
            .arg("-n")
            .arg(&part)
            .output()
            .unwrap();
        assert!(f.status.success(), "{}", text(&f));
    }
}

#[test]
fn backup_to_a_directory_card_agrees_with_sha256sum() {
    if !oracle(&["sha256sum"]) {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let phone = phone_copy(d.path());
    let card = d.path().join("card");
    fs::create_dir(&card).unwrap();
    let o = sdexport(&["backup", p(&phone), "--to", p(&card), "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["complete"], true);
    assert!(card.join("contacts.vcf").is_file());
    let sums = Command::new("sha256sum")
        .args(["-c", "--quiet", "SHA256SUMS"])
        .current_dir(&card)
        .output()
        .unwrap();
    assert!(sums.status.success(), "{}", text(&sums));
    // One flipped byte: both sdexport and sha256sum -c fail.
    let victim = card.join("DCIM/Camera/IMG_20150918_112337.jpg");
    let mut b = fs::read(&victim).unwrap();
    b[100] ^= 1;
    fs::write(&victim, b).unwrap();
    let o = sdexport(&["verify", p(&card)]);
    assert_eq!(o.status.code(), Some(1));
    let sums = Command::new("sha256sum")
        .args(["-c", "--quiet", "SHA256SUMS"])
        .current_dir(&card)
        .output()
        .unwrap();
    assert!(!sums.status.success());
}

#[test]
fn backup_with_move_frees_the_phone_and_keeps_junk() {
    let d = tempfile::tempdir().unwrap();
    let phone = phone_copy(d.path());
    let card = d.path().join("card.img");
    let o = sdexport(&[
        "backup",
        p(&phone),
        "--to",
        p(&card),
        "--create-image",
        "64M",
        "--move",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    for moved in [
        "DCIM/Camera/IMG_4242.HEIC",
        "DCIM/Camera/IMG_4242.MOV",
        "DCIM/100NIKON/DSC_0001.NEF",
    ] {
        assert!(!phone.join(moved).exists(), "{moved} still on the phone");
    }
    for kept in [
        "DCIM/.thumbnails/1700000000123.jpg",
        "DCIM/Camera/.trashed-1733000000-IMG_0001.jpg",
        "DCIM/Camera/.pending-1733000000-IMG_0002.jpg",
        "Download/contacts.vcf",
    ] {
        assert!(phone.join(kept).exists(), "{kept} was removed");
    }
    let o = sdexport(&["verify", p(&card)]);
    assert!(o.status.success(), "{}", text(&o));
    // --create-image never touches an existing path.
    let before = fs::read(&card).unwrap();
    let o = sdexport(&[
        "backup",
        p(&phone),
        "--to",
        p(&card),
        "--create-image",
        "64M",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert_eq!(fs::read(&card).unwrap(), before);
}

/// README: "cargo run --release -- backup testdata/phone --to /tmp/card.img --create-image 256M"
/// followed by the output a user sees. The test runs the same command (to a temp path) and
/// compares with the README's block, so the README stays true.
#[test]
fn readme_main_job_output_matches() {
    let readme =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    assert!(readme.contains(
        "cargo run --release -- backup testdata/phone --to /tmp/card.img --create-image 256M"
    ));
    let block = readme.split("The first command prints").nth(1).unwrap();
    let block = block
        .split("```text\n")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap();
    let d = tempfile::tempdir().unwrap();
    let img = d.path().join("card.img");
    let o = sdexport(&[
        "backup",
        "testdata/phone",
        "--to",
        p(&img),
        "--create-image",
        "256M",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let got = String::from_utf8(o.stdout)
        .unwrap()
        .replace(p(&img), "/tmp/card.img");
    assert_eq!(got.trim_end(), block.trim_end(), "README output differs");
}
