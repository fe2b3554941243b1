//! The media module against real sample files (testdata/photos) and phone-like trees.
//!
//! What belongs here: content detection, skip rules, pairs, capture dates and layouts, seen
//! through the public `sdexport::media` API over a volume. Parser unit tests live beside the
//! code in `src/media/`.

use std::fs;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{Datelike, FixedOffset, Local, NaiveDate, NaiveDateTime, TimeZone, Utc};
use sdexport::media::{
    self, capture_time, date_from_file_name, destination, scan, share_pair_times, sniff,
    CaptureTime, DateSource, Layout, MediaItem, MediaKind, ScanOptions, SkipReason,
};
use sdexport::storage::{
    Entry, EntryKind, FileSink, Limits, ReadSeek, Space, StorageError, StorageResult, Volume,
};

// ----- a read-only directory volume, enough for scanning -----

struct TreeVolume {
    root: PathBuf,
    /// A folder whose listing fails, to test that the scan goes on.
    broken_dir: Option<String>,
}

impl TreeVolume {
    fn new(root: &Path) -> Self {
        TreeVolume {
            root: root.to_path_buf(),
            broken_dir: None,
        }
    }
    fn full(&self, rel: &str) -> PathBuf {
        if rel.is_empty() {
            self.root.clone()
        } else {
            self.root.join(rel)
        }
    }
    fn entry(&self, rel: &str) -> StorageResult<Option<Entry>> {
        let md = match fs::metadata(self.full(rel)) {
            Ok(md) => md,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StorageError::io(rel, e)),
        };
        Ok(Some(Entry {
            path: rel.to_string(),
            kind: if md.is_dir() {
                EntryKind::Dir
            } else {
                EntryKind::File
            },
            size: if md.is_dir() { 0 } else { md.len() },
            modified: md.modified().ok(),
        }))
    }
}

fn read_only<T>(path: &str) -> StorageResult<T> {
    Err(StorageError::Other(format!(
        "{path}: test volume is read-only"
    )))
}

impl Volume for TreeVolume {
    fn describe(&self) -> String {
        format!("test tree {}", self.root.display())
    }
    fn limits(&self) -> Limits {
        Limits {
            max_file_size: None,
            fat_names: false,
            case_insensitive: false,
            mtime_resolution_secs: 1,
        }
    }
    fn list(&mut self, dir: &str) -> StorageResult<Vec<Entry>> {
        if self.broken_dir.as_deref() == Some(dir) {
            return Err(StorageError::io(
                dir,
                std::io::Error::other("I/O error (test)"),
            ));
        }
        let rd = fs::read_dir(self.full(dir)).map_err(|e| StorageError::io(dir, e))?;
        let mut out = Vec::new();
        for de in rd {
            let de = de.map_err(|e| StorageError::io(dir, e))?;
            let name = de.file_name().to_string_lossy().into_owned();
            let rel = sdexport::storage::join(dir, &name);
            if let Some(e) = self.entry(&rel)? {
                out.push(e);
            }
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }
    fn stat(&mut self, path: &str) -> StorageResult<Option<Entry>> {
        self.entry(path)
    }
    fn open_read(&mut self, path: &str) -> StorageResult<Box<dyn ReadSeek + '_>> {
        let f = fs::File::open(self.full(path)).map_err(|e| StorageError::io(path, e))?;
        Ok(Box::new(f))
    }
    fn create_new(&mut self, path: &str) -> StorageResult<Box<dyn FileSink + '_>> {
        read_only(path)
    }
    fn rename_new(&mut self, from: &str, _to: &str) -> StorageResult<()> {
        read_only(from)
    }
    fn remove_file(&mut self, path: &str) -> StorageResult<()> {
        read_only(path)
    }
    fn remove_dir(&mut self, path: &str) -> StorageResult<()> {
        read_only(path)
    }
    fn create_dir_all(&mut self, path: &str) -> StorageResult<()> {
        read_only(path)
    }
    fn set_modified(&mut self, path: &str, _modified: SystemTime) -> StorageResult<()> {
        read_only(path)
    }
    fn space(&mut self) -> StorageResult<Space> {
        read_only("")
    }
    fn sync(&mut self) -> StorageResult<()> {
        Ok(())
    }
    fn drop_caches(&mut self) -> StorageResult<()> {
        Ok(())
    }
}

// ----- helpers -----

fn samples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/photos")
}

/// 2020-06-15 12:00:00 UTC, the modified time the end-to-end date check gives its files.
fn fallback_mtime() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_592_222_400)
}

fn write(path: &Path, bytes: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
}

fn set_mtime(path: &Path, t: SystemTime) {
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(t)
        .unwrap();
}

fn dt(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
}

fn utc_as_local(s: &str) -> NaiveDateTime {
    Utc.from_utc_datetime(&dt(s))
        .with_timezone(&Local)
        .naive_local()
}

fn offset(s: &str) -> FixedOffset {
    let sign = if s.starts_with('-') { -1 } else { 1 };
    let h: i32 = s[1..3].parse().unwrap();
    let m: i32 = s[4..6].parse().unwrap();
    FixedOffset::east_opt(sign * (h * 3600 + m * 60)).unwrap()
}

/// A phone with the given samples in DCIM/Camera (mtime 2020-06-15 12:00 UTC); returns the
/// scan and the volume.
fn phone_with(files: &[(&str, Vec<u8>)]) -> (tempfile::TempDir, TreeVolume) {
    let tmp = tempfile::tempdir().unwrap();
    for (name, bytes) in files {
        let p = tmp.path().join("DCIM/Camera").join(name);
        write(&p, bytes);
        set_mtime(&p, fallback_mtime());
    }
    let vol = TreeVolume::new(tmp.path());
    (tmp, vol)
}

fn item_for(vol: &mut TreeVolume, path: &str) -> MediaItem {
    let e = vol.stat(path).unwrap().unwrap();
    let header = {
        use std::io::Read;
        let mut h = Vec::new();
        vol.open_read(path)
            .unwrap()
            .take(media::SNIFF_LEN as u64)
            .read_to_end(&mut h)
            .unwrap();
        h
    };
    let (kind, format) = sniff(&header).unwrap_or((MediaKind::Other, "other"));
    MediaItem {
        path: path.to_string(),
        size: e.size,
        modified: e.modified,
        kind,
        format,
        pair_id: None,
    }
}

// ----- every sample: kind, format, capture time, source -----

/// What we expect of one sample.
struct Want {
    file: &'static str,
    kind: MediaKind,
    format: &'static str,
    /// Exact local capture time; `None` = the 2020-06-15 12:00 UTC mtime in local time.
    time: Option<NaiveDateTime>,
    offset: Option<&'static str>,
    source: DateSource,
}

fn wants() -> Vec<Want> {
    use DateSource::*;
    use MediaKind::*;
    let w = |file, kind, format, time: Option<&str>, offset, source| Want {
        file,
        kind,
        format,
        time: time.map(dt),
        offset,
        source,
    };
    let exif = |file, format, time, offset| w(file, Photo, format, Some(time), offset, Exif);
    vec![
        exif("Apple_iPhone7.jpg", "jpeg", "2016-09-28 18:18:05", None),
        exif(
            "Google_Pixel8Pro.jpg",
            "jpeg",
            "2023-10-06 22:53:51",
            Some("+02:00"),
        ),
        exif(
            "Canon_EOS_DigitalRebel.jpg",
            "jpeg",
            "2003-12-04 06:46:52",
            None,
        ),
        exif("Nikon_E775.jpg", "jpeg", "2001-08-01 12:57:23", None),
        exif("Motorola_XT1575.jpg", "jpeg", "2015-09-18 11:23:37", None),
        exif("Canon_40D.jpg", "jpeg", "2008-05-30 15:56:01", None),
        exif("Nikon_D70.jpg", "jpeg", "2008-03-15 09:52:01", None),
        exif(
            "Fujifilm_FinePix_E500.jpg",
            "jpeg",
            "2006-08-17 09:24:48",
            None,
        ),
        exif("DSCN0010.jpg", "jpeg", "2008-10-22 16:28:39", None),
        exif(
            "HMD_Nokia_8.3_5G.jpg",
            "jpeg",
            "2022-08-14 14:12:31",
            Some("+03:00"),
        ),
        exif(
            "Samsung_SM-G900P_broken.jpg",
            "jpeg",
            "2014-09-21 15:51:22",
            None,
        ),
        exif("vivo_exif-no-tz.jpg", "jpeg", "2023-07-09 20:36:33", None),
        exif(
            "2004-01-11-22-45-15-sep-2004-01-11-22-45-15a.jpg",
            "jpeg",
            "2004-01-11 22:45:15",
            None,
        ),
        exif(
            "2011-05-07-13-02-49-sep-2011-05-07-13-02-49a.jpg",
            "jpeg",
            "2011-05-07 13:02:49",
            None,
        ),
        // EXIF and file name both say 2099: implausible, so the mtime decides.
        w(
            "2099-08-12-19-59-29-sep-2099-08-12-19-59-29a.jpg",
            Photo,
            "jpeg",
            None,
            None,
            Mtime,
        ),
        w(
            "FailedHash-NoDate-sep-remembory.jpg",
            Photo,
            "jpeg",
            None,
            None,
            Mtime,
        ),
        exif("has-lens-info.jpg", "jpeg", "2014-09-01 15:03:47", None),
        w("max_uint32_exif.jpg", Photo, "jpeg", None, None, Mtime),
        w("NoExif.jpg", Photo, "jpeg", None, None, Mtime),
        exif(
            "Xiaomi_empty_gps_ifd.jpg",
            "jpeg",
            "2020-07-27 14:46:48",
            None,
        ),
        w("truncated_jpeg.jpg", Photo, "jpeg", None, None, Mtime),
        exif("Sony_alpha_a58.JPG", "jpeg", "2023-10-28 21:42:29", None),
        exif("spring_1440x960.heic", "heic", "2020-12-03 15:04:31", None),
        w("kamadak_exif.heic", Photo, "heic", None, None, Mtime),
        w("exiftool_QuickTime.heic", Photo, "heic", None, None, Mtime),
        exif(
            "Apple_iPhone12Pro.avif",
            "avif",
            "2022-07-22 21:26:32",
            Some("+08:00"),
        ),
        // Apple's creationdate key (capture, with offset) wins over mvhd (2024, re-encoded).
        w(
            "Apple_iPhoneX_meta.mov",
            Video,
            "mov",
            Some("2019-02-12 15:27:12"),
            Some("+08:00"),
            Quicktime,
        ),
        w(
            "exiftool_DNG.dng",
            Raw,
            "dng",
            Some("2005-08-03 18:59:18"),
            None,
            Exif,
        ),
        w(
            "exiftool_Nikon.nef",
            Raw,
            "nef",
            Some("2004-06-09 16:02:35"),
            None,
            Exif,
        ),
        w(
            "canon-r6.cr3",
            Raw,
            "cr3",
            Some("2025-09-06 20:24:47"),
            Some("-08:00"),
            Exif,
        ),
        exif(
            "vivo_exif.png",
            "png",
            "2023-07-09 20:36:33",
            Some("+08:00"),
        ),
        exif(
            "iphone_13_pro_max.heic",
            "heic",
            "2022-02-16 12:55:41",
            Some("+01:00"),
        ),
    ]
}

/// UTC movie times (mvhd), checked in local time.
const UTC_MOVIES: [(&str, &str, &str); 2] = [
    ("meta.mp4", "mp4", "2024-02-03 07:05:38"),
    ("exiftool_QuickTime.mov", "mov", "2005-08-11 14:03:54"),
];

/// /work/shared/checks/_lib/dates.tsv: the folder `--layout date` must pick (TZ=UTC; every
/// row is far enough from a month end to hold in any time zone).
const DATES_TSV: [(&str, &str); 15] = [
    ("Google_Pixel8Pro.jpg", "2023/10"),
    ("Canon_40D.jpg", "2008/05"),
    ("Nikon_D70.jpg", "2008/03"),
    ("DSCN0010.jpg", "2008/10"),
    ("HMD_Nokia_8.3_5G.jpg", "2022/08"),
    ("Motorola_XT1575.jpg", "2015/09"),
    ("iphone_13_pro_max.heic", "2022/02"),
    ("spring_1440x960.heic", "2020/12"),
    ("meta.mp4", "2024/02"),
    ("exiftool_QuickTime.mov", "2005/08"),
    ("exiftool_DNG.dng", "2005/08"),
    ("exiftool_Nikon.nef", "2004/06"),
    ("canon-r6.cr3", "2025/09"),
    // NoExif.jpg renamed (plus a byte) so that only its name carries a date.
    ("IMG_20190102_101010.jpg", "2019/01"),
    ("NoExif.jpg", "2020/06"),
];

fn all_sample_files() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for e in fs::read_dir(samples_dir()).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name != "README.md" {
            out.push((name, fs::read(&p).unwrap()));
        }
    }
    out.sort();
    out
}

#[test]
fn every_sample_is_covered_by_the_table() {
    let mut known: Vec<&str> = wants().iter().map(|w| w.file).collect();
    known.extend(UTC_MOVIES.iter().map(|m| m.0));
    for (name, _) in all_sample_files() {
        assert!(
            known.contains(&name.as_str()),
            "{name} has no row in wants()"
        );
    }
}

#[test]
fn samples_kind_format_and_capture_time() {
    let files = all_sample_files();
    let refs: Vec<(&str, Vec<u8>)> = files.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
    let (_tmp, mut vol) = phone_with(&refs);
    let scanned = scan(&mut vol, &ScanOptions::default()).unwrap();
    assert!(scanned.skipped.is_empty(), "{:?}", scanned.skipped);
    let find = |name: &str| {
        scanned
            .items
            .iter()
            .find(|i| i.name() == name)
            .unwrap_or_else(|| panic!("{name} not found by the scan"))
            .clone()
    };
    let mtime_local = Utc
        .timestamp_opt(1_592_222_400, 0)
        .unwrap()
        .with_timezone(&Local)
        .naive_local();
    let mut failures = Vec::new();
    for w in wants() {
        let item = find(w.file);
        let got = capture_time(&mut vol, &item);
        let want_time = w.time.unwrap_or(mtime_local);
        let want_offset = w.offset.map(offset);
        let ok = item.kind == w.kind
            && item.format == w.format
            && got.local == want_time
            && got.source == w.source
            && (w.source == DateSource::Mtime || got.offset == want_offset);
        if !ok {
            failures.push(format!(
                "{}: got {:?}/{} {} {:?} {:?}, want {:?}/{} {} {:?} {:?}",
                w.file,
                item.kind,
                item.format,
                got.local,
                got.offset,
                got.source,
                w.kind,
                w.format,
                want_time,
                want_offset,
                w.source
            ));
        }
    }
    for (file, format, utc) in UTC_MOVIES {
        let item = find(file);
        let got = capture_time(&mut vol, &item);
        if item.kind != MediaKind::Video
            || item.format != format
            || got.local != utc_as_local(utc)
            || got.source != DateSource::Quicktime
        {
            failures.push(format!("{file}: got {item:?} {got:?}, want {utc} UTC"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn dates_tsv_folders() {
    let noexif = fs::read(samples_dir().join("NoExif.jpg")).unwrap();
    let files: Vec<(&str, Vec<u8>)> = DATES_TSV
        .iter()
        .map(|(f, _)| match *f {
            "IMG_20190102_101010.jpg" => {
                let mut b = noexif.clone();
                b.push(b'n');
                (*f, b)
            }
            _ => (*f, fs::read(samples_dir().join(f)).unwrap()),
        })
        .collect();
    let (_tmp, mut vol) = phone_with(&files);
    let scanned = scan(&mut vol, &ScanOptions::default()).unwrap();
    assert_eq!(scanned.items.len(), DATES_TSV.len());
    for (file, folder) in DATES_TSV {
        let item = scanned.items.iter().find(|i| i.name() == file).unwrap();
        let t = capture_time(&mut vol, item);
        let dest = destination(item, Layout::Date, Some(&t));
        assert_eq!(dest, format!("DCIM/{folder}/{file}"), "{file}: {t:?}");
    }
    let renamed = scanned
        .items
        .iter()
        .find(|i| i.name() == "IMG_20190102_101010.jpg")
        .unwrap();
    let t = capture_time(&mut vol, renamed);
    assert_eq!(t.source, DateSource::Filename);
    assert_eq!(t.local, dt("2019-01-02 10:10:10"));
}

// ----- scanning a phone built like checks/_lib/mkphone.sh -----

#[test]
fn scan_phone_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path();
    let jpg = fs::read(samples_dir().join("Canon_40D.jpg")).unwrap();
    let heic = fs::read(samples_dir().join("iphone_13_pro_max.heic")).unwrap();
    let mov = fs::read(samples_dir().join("exiftool_QuickTime.mov")).unwrap();
    let nef = fs::read(samples_dir().join("exiftool_Nikon.nef")).unwrap();
    let noexif = fs::read(samples_dir().join("NoExif.jpg")).unwrap();
    let random: Vec<u8> = (0..3000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let files: Vec<(&str, &[u8])> = vec![
        ("DCIM/Camera/Été_日本_😀.jpg", &jpg),
        ("DCIM/Camera/meeting 12:30?.jpg", &jpg),
        ("DCIM/Camera/IMG_4242.JPG", &jpg),
        ("DCIM/Camera/IMG_4242.MOV", &random), // unrecognised content, media extension
        ("DCIM/Camera/IMG_1234.HEIC", &heic),
        ("DCIM/Camera/img_1234.mov", &mov),
        ("DCIM/Camera/IMG_E1234.HEIC", &heic),
        ("DCIM/Camera/DSC_0001.NEF", &nef),
        ("DCIM/Camera/DSC_0001.JPG", &jpg),
        ("DCIM/Camera/IMG_9999.JPG", &jpg),
        ("DCIM/Camera/notes.txt", b"hello"),
        (
            "DCIM/Camera/IMG_0003.AAE",
            b"<?xml version=\"1.0\"?><plist/>",
        ),
        ("DCIM/Camera/empty.jpg", b""),
        ("DCIM/Camera/.trashed-1733000000-IMG_0001.jpg", &jpg),
        ("DCIM/Camera/.pending-1733000000-VID_0002.mp4", &random),
        ("DCIM/Camera/._IMG_4242.JPG", &jpg),
        ("DCIM/.thumbnails/1700000000123.jpg", &jpg),
        ("DCIM/.thumbnails/.nomedia", b""),
        ("DCIM/.nomedia", b""),
        ("DCIM/100ANDRO/DSC00001.JPG", &jpg),
        ("DCIM/.hidden/x.jpg", &jpg),
        (
            "Pictures/Screenshots/Screenshot_20240131-235959.png",
            &noexif,
        ),
    ];
    for (path, bytes) in &files {
        write(&p.join(path), bytes);
    }
    let mut vol = TreeVolume::new(p);
    let s = scan(&mut vol, &ScanOptions::default()).unwrap();
    let paths: Vec<&str> = s.items.iter().map(|i| i.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "DCIM/100ANDRO/DSC00001.JPG",
            "DCIM/Camera/DSC_0001.JPG",
            "DCIM/Camera/DSC_0001.NEF",
            "DCIM/Camera/IMG_1234.HEIC",
            "DCIM/Camera/IMG_4242.JPG",
            "DCIM/Camera/IMG_4242.MOV",
            "DCIM/Camera/IMG_9999.JPG",
            "DCIM/Camera/IMG_E1234.HEIC",
            "DCIM/Camera/img_1234.mov",
            "DCIM/Camera/meeting 12:30?.jpg",
            "DCIM/Camera/Été_日本_😀.jpg",
        ]
    );
    let skipped: Vec<(&str, SkipReason)> = s
        .skipped
        .iter()
        .map(|k| (k.path.as_str(), k.reason.clone()))
        .collect();
    assert_eq!(
        skipped,
        [
            ("DCIM/.hidden", SkipReason::Hidden),
            ("DCIM/.nomedia", SkipReason::Nomedia),
            ("DCIM/.thumbnails", SkipReason::Thumbnails),
            ("DCIM/Camera/._IMG_4242.JPG", SkipReason::Hidden),
            (
                "DCIM/Camera/.pending-1733000000-VID_0002.mp4",
                SkipReason::Pending
            ),
            (
                "DCIM/Camera/.trashed-1733000000-IMG_0001.jpg",
                SkipReason::Trashed
            ),
            ("DCIM/Camera/IMG_0003.AAE", SkipReason::NotMedia),
            ("DCIM/Camera/empty.jpg", SkipReason::Empty),
            ("DCIM/Camera/notes.txt", SkipReason::NotMedia),
        ]
    );
    let get = |path: &str| s.items.iter().find(|i| i.path == path).unwrap();
    // pairs
    for path in [
        "DCIM/Camera/IMG_1234.HEIC",
        "DCIM/Camera/img_1234.mov",
        "DCIM/Camera/IMG_E1234.HEIC",
    ] {
        assert_eq!(
            get(path).pair_id.as_deref(),
            Some("DCIM/Camera/IMG_1234"),
            "{path}"
        );
    }
    for path in ["DCIM/Camera/IMG_4242.JPG", "DCIM/Camera/IMG_4242.MOV"] {
        assert_eq!(
            get(path).pair_id.as_deref(),
            Some("DCIM/Camera/IMG_4242"),
            "{path}"
        );
    }
    for path in ["DCIM/Camera/DSC_0001.JPG", "DCIM/Camera/DSC_0001.NEF"] {
        assert_eq!(
            get(path).pair_id.as_deref(),
            Some("DCIM/Camera/DSC_0001"),
            "{path}"
        );
    }
    assert_eq!(get("DCIM/Camera/IMG_9999.JPG").pair_id, None);
    assert_eq!(get("DCIM/100ANDRO/DSC00001.JPG").pair_id, None);
    // kinds
    assert_eq!(
        (
            get("DCIM/Camera/DSC_0001.NEF").kind,
            get("DCIM/Camera/DSC_0001.NEF").format
        ),
        (MediaKind::Raw, "nef")
    );
    assert_eq!(
        (
            get("DCIM/Camera/IMG_4242.MOV").kind,
            get("DCIM/Camera/IMG_4242.MOV").format
        ),
        (MediaKind::Video, "mov")
    );
    assert_eq!(get("DCIM/Camera/img_1234.mov").format, "mov");
    assert_eq!(get("DCIM/Camera/Été_日本_😀.jpg").size, jpg.len() as u64);

    // include roots, overlapping roots, a missing root
    let opts = ScanOptions {
        roots: vec![
            "DCIM".into(),
            "Pictures/Screenshots".into(),
            "DCIM/Camera".into(),
            "Movies".into(),
        ],
        all_files: false,
    };
    let s2 = scan(&mut vol, &opts).unwrap();
    assert_eq!(s2.items.len(), s.items.len() + 1);
    let shot = s2
        .items
        .iter()
        .find(|i| i.path.starts_with("Pictures/"))
        .unwrap();
    assert_eq!(shot.format, "jpeg"); // content, not the .png extension
    assert_eq!(
        destination(shot, Layout::Keep, None),
        "Pictures/Screenshots/Screenshot_20240131-235959.png"
    );
    assert!(s2
        .skipped
        .iter()
        .any(|k| k.path == "Movies" && matches!(k.reason, SkipReason::Unreadable(_))));
    let t = capture_time(&mut vol, shot);
    assert_eq!(
        (t.source, t.local),
        (DateSource::Filename, dt("2024-01-31 23:59:59"))
    );

    // all_files takes the non-media files but still skips junk and empty files
    let s3 = scan(
        &mut vol,
        &ScanOptions {
            all_files: true,
            ..ScanOptions::default()
        },
    )
    .unwrap();
    assert_eq!(s3.items.len(), s.items.len() + 2);
    let txt = s3
        .items
        .iter()
        .find(|i| i.path == "DCIM/Camera/notes.txt")
        .unwrap();
    assert_eq!(
        (txt.kind, txt.format, txt.pair_id.as_deref()),
        (MediaKind::Other, "other", None)
    );
    assert!(s3.skipped.iter().all(|k| k.reason != SkipReason::NotMedia));
    assert!(s3.skipped.iter().any(|k| k.reason == SkipReason::Empty));
    assert!(s3
        .skipped
        .iter()
        .any(|k| k.reason == SkipReason::Thumbnails));
}

#[test]
fn skip_reasons_read_well() {
    assert_eq!(SkipReason::NotMedia.to_string(), "not a photo or video");
    assert_eq!(
        SkipReason::Unreadable("boom".into()).to_string(),
        "unreadable: boom"
    );
    let json = serde_json::to_string(&SkipReason::Thumbnails).unwrap();
    assert_eq!(json, r#"{"reason":"thumbnails"}"#);
    assert_eq!(
        serde_json::to_string(&DateSource::Quicktime).unwrap(),
        r#""quicktime""#
    );
}

#[test]
fn raw_with_own_tiff_magic_still_has_exif() {
    // Olympus ORF ("IIRO") and Panasonic RW2 ("IIU\0") are TIFF with another magic number;
    // a NEF with its magic swapped stands in for both.
    let nef = fs::read(samples_dir().join("exiftool_Nikon.nef")).unwrap();
    let mut orf = nef.clone();
    orf[2..4].copy_from_slice(b"RO");
    let mut rw2 = nef.clone();
    rw2[2..4].copy_from_slice(b"U\0");
    let (_tmp, mut vol) = phone_with(&[("P1010001.ORF", orf), ("P1010002.RW2", rw2)]);
    let s = scan(&mut vol, &ScanOptions::default()).unwrap();
    let formats: Vec<(&str, MediaKind)> = s.items.iter().map(|i| (i.format, i.kind)).collect();
    assert_eq!(formats, [("orf", MediaKind::Raw), ("rw2", MediaKind::Raw)]);
    for it in &s.items {
        let t = capture_time(&mut vol, it);
        assert_eq!(
            (t.source, t.local),
            (DateSource::Exif, dt("2004-06-09 16:02:35")),
            "{}",
            it.path
        );
    }
}

#[test]
fn root_spelled_in_another_case() {
    let jpg = fs::read(samples_dir().join("Canon_40D.jpg")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    write(&tmp.path().join("dcim/Camera/a.jpg"), &jpg);
    let mut vol = TreeVolume::new(tmp.path());
    let s = scan(&mut vol, &ScanOptions::default()).unwrap();
    assert_eq!(s.items.len(), 1);
    assert_eq!(s.items[0].path, "dcim/Camera/a.jpg");
    assert_eq!(
        destination(&s.items[0], Layout::Keep, None),
        "DCIM/Camera/a.jpg"
    );
    let whole = scan(
        &mut vol,
        &ScanOptions {
            roots: vec!["".into()],
            all_files: false,
        },
    )
    .unwrap();
    assert_eq!(whole.items.len(), 1);
}

/// The moov atom of a sample movie (its bytes from the `moov` header to its end).
fn moov_of(sample: &str) -> Vec<u8> {
    let bytes = fs::read(samples_dir().join(sample)).unwrap();
    let mut pos = 0usize;
    while pos + 8 <= bytes.len() {
        let mut size = u32::from_be_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        if size == 1 {
            size = u64::from_be_bytes(bytes[pos + 8..pos + 16].try_into().unwrap()) as usize;
        }
        if &bytes[pos + 4..pos + 8] == b"moov" {
            return bytes[pos..pos + size].to_vec();
        }
        assert!(size >= 8);
        pos += size;
    }
    panic!("no moov in {sample}");
}

#[test]
fn movie_with_a_huge_mdat_before_moov_is_read_by_seeking() {
    // ftyp + a 3 GiB mdat (sparse) + the moov of meta.mp4: the date must come from the moov
    // at the end without reading the mdat.
    use std::io::{Seek, SeekFrom, Write};
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("DCIM/Camera/VID_big.mp4");
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut f = fs::File::create(&path).unwrap();
    f.write_all(b"\0\0\0\x18ftypmp42\0\0\0\0isommp42").unwrap();
    let mdat_len: u64 = 3 << 30;
    f.write_all(&(mdat_len as u32).to_be_bytes()).unwrap();
    f.write_all(b"mdat").unwrap();
    f.seek(SeekFrom::Start(24 + mdat_len)).unwrap();
    f.write_all(&moov_of("meta.mp4")).unwrap();
    drop(f);
    let mut vol = TreeVolume::new(tmp.path());
    let s = scan(&mut vol, &ScanOptions::default()).unwrap();
    assert_eq!(
        (s.items[0].kind, s.items[0].format),
        (MediaKind::Video, "mp4")
    );
    let started = std::time::Instant::now();
    let t = capture_time(&mut vol, &s.items[0]);
    assert_eq!(t.source, DateSource::Quicktime);
    assert_eq!(t.local, utc_as_local("2024-02-03 07:05:38"));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn quicktime_without_ftyp_uses_the_mvhd_reader() {
    // Old QuickTime: `wide` + `mdat` + `moov` and no ftyp, as MOVs cut out of Live Photos.
    let mut bytes = b"\0\0\0\x08wide\0\0\0\x10mdat01234567".to_vec();
    bytes.extend(moov_of("exiftool_QuickTime.mov"));
    let (_tmp, mut vol) = phone_with(&[("MVI_0001.MOV", bytes)]);
    let s = scan(&mut vol, &ScanOptions::default()).unwrap();
    assert_eq!(s.items[0].format, "mov");
    let t = capture_time(&mut vol, &s.items[0]);
    assert_eq!(
        (t.source, t.local),
        (DateSource::Quicktime, utc_as_local("2005-08-11 14:03:54"))
    );
}

#[test]
fn unreadable_folder_is_reported_and_the_scan_goes_on() {
    let jpg = fs::read(samples_dir().join("Canon_40D.jpg")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    write(&tmp.path().join("DCIM/Camera/a.jpg"), &jpg);
    write(&tmp.path().join("DCIM/Broken/b.jpg"), &jpg);
    let mut vol = TreeVolume::new(tmp.path());
    vol.broken_dir = Some("DCIM/Broken".into());
    let s = scan(&mut vol, &ScanOptions::default()).unwrap();
    assert_eq!(s.items.len(), 1);
    assert_eq!(s.skipped.len(), 1);
    assert_eq!(s.skipped[0].path, "DCIM/Broken");
    assert!(matches!(s.skipped[0].reason, SkipReason::Unreadable(_)));
    // a root that cannot be listed is an error
    vol.broken_dir = Some("DCIM".into());
    assert!(scan(&mut vol, &ScanOptions::default()).is_err());
}

// ----- layouts -----

fn item(path: &str, kind: MediaKind, pair: Option<&str>) -> MediaItem {
    MediaItem {
        path: path.into(),
        size: 1,
        modified: Some(fallback_mtime()),
        kind,
        format: "jpeg",
        pair_id: pair.map(Into::into),
    }
}

#[test]
fn layouts() {
    let cam = item("DCIM/Camera/IMG_1.JPG", MediaKind::Photo, None);
    assert_eq!(
        destination(&cam, Layout::Keep, None),
        "DCIM/Camera/IMG_1.JPG"
    );
    let lower = item("dcim/100MEDIA/x.jpg", MediaKind::Photo, None);
    assert_eq!(
        destination(&lower, Layout::Keep, None),
        "DCIM/100MEDIA/x.jpg"
    );
    let t = CaptureTime {
        local: dt("2023-10-06 22:53:51"),
        offset: Some(offset("+02:00")),
        source: DateSource::Exif,
    };
    assert_eq!(
        destination(&cam, Layout::Date, Some(&t)),
        "DCIM/2023/10/IMG_1.JPG"
    );
    let mtime = Utc
        .timestamp_opt(1_592_222_400, 0)
        .unwrap()
        .with_timezone(&Local);
    assert_eq!(
        destination(&cam, Layout::Date, None),
        format!("DCIM/{:04}/{:02}/IMG_1.JPG", mtime.year(), mtime.month())
    );
    assert_eq!("date".parse::<Layout>().unwrap(), Layout::Date);
    assert_eq!("KEEP".parse::<Layout>().unwrap(), Layout::Keep);
    assert!("bydate".parse::<Layout>().is_err());
    assert_eq!(Layout::Date.to_string(), "date");
    assert_eq!(t.to_rfc3339(), "2023-10-06T22:53:51+02:00");
}

#[test]
fn pairs_share_a_capture_time() {
    let items = vec![
        item(
            "DCIM/Camera/IMG_1.MOV",
            MediaKind::Video,
            Some("DCIM/Camera/IMG_1"),
        ),
        item(
            "DCIM/Camera/IMG_1.HEIC",
            MediaKind::Photo,
            Some("DCIM/Camera/IMG_1"),
        ),
        item("DCIM/Camera/IMG_2.JPG", MediaKind::Photo, None),
    ];
    let at = |s: &str, source| CaptureTime {
        local: dt(s),
        offset: None,
        source,
    };
    let mut times = vec![
        at("2024-02-01 00:00:01", DateSource::Quicktime),
        at("2024-01-31 23:59:59", DateSource::Exif),
        at("2020-01-01 00:00:00", DateSource::Mtime),
    ];
    share_pair_times(&items, &mut times);
    assert_eq!(times[0].local, dt("2024-01-31 23:59:59"));
    assert_eq!(times[1].local, dt("2024-01-31 23:59:59"));
    assert_eq!(times[2].local, dt("2020-01-01 00:00:00"));
}

// ----- file-name dates -----

#[test]
fn file_name_patterns() {
    let cases: &[(&str, Option<&str>)] = &[
        ("IMG_20240131_235959.jpg", Some("2024-01-31 23:59:59")),
        ("PXL_20240131_235959123.jpg", Some("2024-01-31 23:59:59")),
        ("PXL_20240131_235959123.MP.jpg", Some("2024-01-31 23:59:59")),
        ("VID_20240131_235959.mp4", Some("2024-01-31 23:59:59")),
        (
            "Screenshot_20240131-235959.png",
            Some("2024-01-31 23:59:59"),
        ),
        (
            "Screenshot_20240131-235959_Chrome.jpg",
            Some("2024-01-31 23:59:59"),
        ),
        (
            "Screenshot_2024-01-31-23-59-59.png",
            Some("2024-01-31 23:59:59"),
        ),
        (
            "Screenshot_2024-01-31-23-59-59-123_com.android.chrome.jpg",
            Some("2024-01-31 23:59:59"),
        ),
        (
            "Screenshot 2024-01-31 at 23.59.59.png",
            Some("2024-01-31 23:59:59"),
        ),
        ("signal-2024-01-31-235959.jpg", Some("2024-01-31 23:59:59")),
        (
            "signal-2024-01-31-235959_002.jpeg",
            Some("2024-01-31 23:59:59"),
        ),
        ("20240131_235959.jpg", Some("2024-01-31 23:59:59")),
        ("20240131_235959(0).jpg", Some("2024-01-31 23:59:59")),
        ("IMG20240131235959.jpg", Some("2024-01-31 23:59:59")),
        ("IMG_20240131_235959_HDR.jpg", Some("2024-01-31 23:59:59")),
        (
            "WhatsApp IMG-20240131-WA0001.jpg",
            Some("2024-01-31 00:00:00"),
        ),
        ("IMG-20240131-WA0001.jpg", Some("2024-01-31 00:00:00")),
        ("VID-20240131-WA0001.mp4", Some("2024-01-31 00:00:00")),
        (
            "2004-01-11-22-45-15-sep-2004-01-11-22-45-15a.jpg",
            Some("2004-01-11 22:45:15"),
        ),
        ("2024-01-31.jpg", Some("2024-01-31 00:00:00")),
        // implausible or invalid
        ("2099-08-12-19-59-29-sep-2099-08-12-19-59-29a.jpg", None),
        ("IMG_19890131_120000.jpg", None),
        ("IMG_20241331_120000.jpg", None),
        ("IMG_20240230_120000.jpg", None),
        ("IMG_20240131_256000.jpg", Some("2024-01-31 00:00:00")),
        ("IMG_1234.JPG", None),
        ("DSC00001.JPG", None),
        ("12345678.jpg", None),
        ("", None),
        ("....", None),
        ("Été_日本_😀.jpg", None),
        ("meeting 12:30?.jpg", None),
    ];
    for (name, want) in cases {
        assert_eq!(date_from_file_name(name), want.map(dt), "{name}");
    }
    // Unix milliseconds (Facebook, messengers): local time of that instant.
    let want = Utc
        .timestamp_millis_opt(1_706_745_599_000)
        .unwrap()
        .with_timezone(&Local)
        .naive_local();
    assert_eq!(date_from_file_name("FB_IMG_1706745599000.jpg"), Some(want));
    let next_year = Local::now().year() + 2;
    assert_eq!(
        date_from_file_name(&format!("IMG_{next_year}0101_000000.jpg")),
        None
    );
}

#[test]
fn capture_time_without_any_date_uses_epoch() {
    let (_tmp, mut vol) = phone_with(&[("x.jpg", vec![0xFF, 0xD8, 0xFF, 0xE0, 1, 2])]);
    let mut it = item_for(&mut vol, "DCIM/Camera/x.jpg");
    it.modified = None;
    let t = capture_time(&mut vol, &it);
    assert_eq!(t.source, DateSource::Mtime);
    let epoch = Utc
        .timestamp_opt(0, 0)
        .unwrap()
        .with_timezone(&Local)
        .naive_local();
    assert_eq!(t.local, epoch);
    // modified times at the edges of what chrono can hold
    for secs in [
        8_210_298_412_799u64,
        8_210_298_412_800,
        u64::MAX / 2,
        u64::MAX,
    ] {
        it.modified = UNIX_EPOCH.checked_add(Duration::from_secs(secs));
        let t = capture_time(&mut vol, &it);
        let _ = destination(&it, Layout::Date, Some(&t));
    }
    if let Some(before) = UNIX_EPOCH.checked_sub(Duration::from_secs(1 << 40)) {
        it.modified = Some(before);
        let _ = capture_time(&mut vol, &it);
    }
    // and a file that vanished between scan and capture_time
    let gone = item("DCIM/Camera/gone.jpg", MediaKind::Photo, None);
    assert_eq!(capture_time(&mut vol, &gone).source, DateSource::Mtime);
}

// ----- robustness: never panic, on anything -----

mod robustness {
    use super::*;
    use proptest::prelude::*;

    fn sample_bytes() -> Vec<Vec<u8>> {
        all_sample_files().into_iter().map(|(_, b)| b).collect()
    }

    /// A one-file in-memory volume for capture_time on arbitrary bytes.
    struct OneFile(Vec<u8>);
    impl Volume for OneFile {
        fn describe(&self) -> String {
            "one file".into()
        }
        fn limits(&self) -> Limits {
            Limits {
                max_file_size: None,
                fat_names: false,
                case_insensitive: false,
                mtime_resolution_secs: 1,
            }
        }
        fn list(&mut self, _dir: &str) -> StorageResult<Vec<Entry>> {
            Ok(Vec::new())
        }
        fn stat(&mut self, _path: &str) -> StorageResult<Option<Entry>> {
            Ok(None)
        }
        fn open_read(&mut self, _path: &str) -> StorageResult<Box<dyn ReadSeek + '_>> {
            Ok(Box::new(Cursor::new(self.0.as_slice())))
        }
        fn create_new(&mut self, path: &str) -> StorageResult<Box<dyn FileSink + '_>> {
            read_only(path)
        }
        fn rename_new(&mut self, from: &str, _to: &str) -> StorageResult<()> {
            read_only(from)
        }
        fn remove_file(&mut self, path: &str) -> StorageResult<()> {
            read_only(path)
        }
        fn remove_dir(&mut self, path: &str) -> StorageResult<()> {
            read_only(path)
        }
        fn create_dir_all(&mut self, path: &str) -> StorageResult<()> {
            read_only(path)
        }
        fn set_modified(&mut self, path: &str, _m: SystemTime) -> StorageResult<()> {
            read_only(path)
        }
        fn space(&mut self) -> StorageResult<Space> {
            read_only("")
        }
        fn sync(&mut self) -> StorageResult<()> {
            Ok(())
        }
        fn drop_caches(&mut self) -> StorageResult<()> {
            Ok(())
        }
    }

    fn every_kind(bytes: Vec<u8>) {
        let mut vol = OneFile(bytes);
        for (kind, format) in [
            (MediaKind::Photo, "jpeg"),
            (MediaKind::Raw, "cr3"),
            (MediaKind::Video, "mov"),
            (MediaKind::Other, "other"),
        ] {
            let it = MediaItem {
                path: "DCIM/x".into(),
                size: 0,
                modified: Some(fallback_mtime()),
                kind,
                format,
                pair_id: None,
            };
            let _ = capture_time(&mut vol, &it);
        }
    }

    #[test]
    fn truncated_samples_never_panic() {
        for bytes in sample_bytes() {
            let len = bytes.len();
            let mut cuts: Vec<usize> = (0..64.min(len)).collect();
            cuts.extend((1..40).map(|i| len * i / 40));
            for cut in cuts {
                let _ = sniff(&bytes[..cut]);
                every_kind(bytes[..cut].to_vec());
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn sniff_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = sniff(&bytes);
        }

        #[test]
        fn capture_time_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            every_kind(bytes);
        }

        #[test]
        fn capture_time_mutated_samples(
            which in 0usize..34,
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16),
            cut in any::<prop::sample::Index>(),
        ) {
            let samples = sample_bytes();
            let mut bytes = samples[which % samples.len()].clone();
            bytes.truncate(bytes.len().min(256 * 1024));
            for (at, v) in flips {
                let i = at.index(bytes.len());
                bytes[i] = v;
            }
            let keep = cut.index(bytes.len() + 1);
            bytes.truncate(keep.max(bytes.len() / 2));
            let _ = sniff(&bytes);
            every_kind(bytes);
        }

        #[test]
        fn file_names_never_panic(name in "\\PC{0,40}") {
            let _ = date_from_file_name(&name);
        }

        #[test]
        fn digit_names_never_panic(name in "[0-9_ .:T-]{0,40}") {
            if let Some(d) = date_from_file_name(&name) {
                prop_assert!(d.year() >= 1990);
                prop_assert!(NaiveDate::from_ymd_opt(d.year(), d.month(), d.day()).is_some());
            }
        }
    }
}
