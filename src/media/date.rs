//! Capture times: EXIF, then QuickTime/MP4, then the file name, then the modified time.
//!
//! Metadata is read through the volume with a [`Bounded`] reader: at most
//! [`READ_BUDGET_BYTES`] are read from any one file (seeks over `mdat` cost nothing), so a
//! corrupt or hostile file can make a parser give up but never read a whole 4 GB video or
//! run away. Parsers:
//!
//! - [nom-exif] for EXIF in JPEG/HEIF/AVIF/PNG/WebP/TIFF-RAW/CR3/RAF and for QuickTime/MP4
//!   track metadata;
//! - [kamadak-exif] when nom-exif finds no usable date (it reads some DNGs and HEICs that
//!   nom-exif 3.8 rejects: `exiftool_DNG.dng`, `spring_1440x960.heic`);
//! - a small `mvhd` reader of our own when nom-exif does not take a movie at all (QuickTime
//!   files that start with `moov`, such as `exiftool_QuickTime.mov`).
//!
//! [nom-exif]: https://crates.io/crates/nom-exif
//! [kamadak-exif]: https://crates.io/crates/kamadak-exif

use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Datelike, FixedOffset, Local, NaiveDate, NaiveDateTime, Offset, Utc};

use super::{date_from_file_name, CaptureTime, DateSource, MediaItem, MediaKind};
use crate::storage::{ReadSeek, Volume};

/// The most bytes read from one file while looking for its capture time. Metadata sits in the
/// first few hundred KB of photos; a long video's `moov` atom can be several MB.
pub const READ_BUDGET_BYTES: u64 = 64 * 1024 * 1024;

/// Seconds from 1904-01-01 (the QuickTime epoch) to 1970-01-01.
const QUICKTIME_EPOCH_OFFSET: i64 = 2_082_844_800;

/// When `item` was captured. Never fails: each source that is missing, unreadable or
/// implausible falls through to the next, down to the modified time (or the Unix epoch when
/// the volume reports none).
pub fn capture_time(volume: &mut dyn Volume, item: &MediaItem) -> CaptureTime {
    let is_isobmff_raw = matches!(item.format, "cr3");
    if matches!(item.kind, MediaKind::Photo | MediaKind::Raw) {
        if let Some((local, offset)) = exif_time(volume, item) {
            return CaptureTime {
                local,
                offset,
                source: DateSource::Exif,
            };
        }
    }
    if item.kind == MediaKind::Video || is_isobmff_raw {
        if let Some((local, offset)) = quicktime_time(volume, &item.path) {
            return CaptureTime {
                local,
                offset,
                source: DateSource::Quicktime,
            };
        }
    }
    if let Some(local) = date_from_file_name(item.name()) {
        return CaptureTime {
            local,
            offset: None,
            source: DateSource::Filename,
        };
    }
    mtime_capture(item)
}

/// The last resort: the item's modified time in local time, or the Unix epoch.
pub(crate) fn mtime_capture(item: &MediaItem) -> CaptureTime {
    let utc = item
        .modified
        .and_then(system_time_to_utc)
        .unwrap_or(DateTime::UNIX_EPOCH);
    let (local, offset) = utc_to_local(utc);
    CaptureTime {
        local,
        offset: Some(offset),
        source: DateSource::Mtime,
    }
}

/// An EXIF date is plausible from 1970 (scanned old photos carry early dates; clocks that
/// were never set say 1970/1980/2000) up to a year from now (a camera clock set to 2099 is
/// wrong, and the next source is better).
fn plausible_exif(dt: &NaiveDateTime) -> bool {
    dt.year() >= 1970 && *dt <= latest_plausible()
}

/// A QuickTime date of zero means "not set" (1904-01-01); anything before 1970 is a writer
/// that used the wrong epoch.
fn plausible_quicktime(dt: &NaiveDateTime) -> bool {
    dt.year() >= 1970 && *dt <= latest_plausible()
}

fn latest_plausible() -> NaiveDateTime {
    Local::now().naive_local() + chrono::Duration::days(366)
}

fn system_time_to_utc(t: SystemTime) -> Option<DateTime<Utc>> {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => DateTime::from_timestamp(i64::try_from(d.as_secs()).ok()?, d.subsec_nanos()),
        Err(e) => {
            let d: Duration = e.duration();
            DateTime::from_timestamp(-i64::try_from(d.as_secs()).ok()?, 0)
        }
    }
}

fn utc_to_local(utc: DateTime<Utc>) -> (NaiveDateTime, FixedOffset) {
    let local = utc.with_timezone(&Local);
    (local.naive_local(), local.offset().fix())
}

// ----- bounded reading -----

/// A reader that stops (end of file) after `budget` bytes have been read in total, however
/// often the parser seeks. Seeks pass through.
pub(crate) struct Bounded<R> {
    inner: R,
    budget: u64,
}

impl<R> Bounded<R> {
    pub(crate) fn new(inner: R, budget: u64) -> Self {
        Bounded { inner, budget }
    }
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.budget == 0 || buf.is_empty() {
            return Ok(0);
        }
        let max = buf
            .len()
            .min(usize::try_from(self.budget).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..max])?;
        self.budget = self.budget.saturating_sub(n as u64);
        Ok(n)
    }
}

impl<R: Seek> Seek for Bounded<R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.inner.seek(pos)
    }
}

fn open_bounded<'a>(
    volume: &'a mut dyn Volume,
    path: &str,
) -> Option<Bounded<Box<dyn ReadSeek + 'a>>> {
    volume
        .open_read(path)
        .ok()
        .map(|r| Bounded::new(r, READ_BUDGET_BYTES))
}

// ----- EXIF -----

/// `DateTimeOriginal` with its offset, from nom-exif, else
/// kamadak-exif. `None` when neither finds a plausible date.
fn exif_time(
    volume: &mut dyn Volume,
    item: &MediaItem,
) -> Option<(NaiveDateTime, Option<FixedOffset>)> {
    // Olympus ORF and Panasonic RW2 are TIFF with their own magic number in place of 42;
    // both parsers want 42, so they are shown the standard header.
    let tiff_magic = matches!(item.format, "orf" | "rw2");
    let path = item.path.as_str();
    if tiff_magic {
        if let Some(found) = open_bounded(volume, path)
            .map(TiffMagic::new)
            .and_then(exif_nom)
        {
            return Some(found);
        }
        return open_bounded(volume, path)
            .map(TiffMagic::new)
            .and_then(exif_kamadak);
    }
    if let Some(found) = open_bounded(volume, path).and_then(exif_nom) {
        return Some(found);
    }
    open_bounded(volume, path).and_then(exif_kamadak)
}

/// Presents bytes 2..4 of a TIFF-like file as the standard magic 42 (in the file's byte
/// order), leaving everything else as is.
pub(crate) struct TiffMagic<R> {
    inner: R,
    pos: u64,
    big_endian: Option<bool>,
}

impl<R: Read + Seek> TiffMagic<R> {
    pub(crate) fn new(inner: R) -> Self {
        TiffMagic {
            inner,
            pos: 0,
            big_endian: None,
        }
    }
}

impl<R: Read> Read for TiffMagic<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let start = self.pos;
        let n = self.inner.read(buf)?;
        self.pos += n as u64;
        for (i, b) in buf[..n].iter_mut().enumerate() {
            match start + i as u64 {
                0 => self.big_endian = Some(*b == b'M'),
                2 => *b = if self.big_endian == Some(true) { 0 } else { 42 },
                3 => *b = if self.big_endian == Some(true) { 42 } else { 0 },
                p if p > 3 => break,
                _ => {}
            }
        }
        Ok(n)
    }
}

impl<R: Seek> Seek for TiffMagic<R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.pos = self.inner.seek(pos)?;
        Ok(self.pos)
    }
}

pub(crate) fn exif_nom<R: Read + Seek>(reader: R) -> Option<(NaiveDateTime, Option<FixedOffset>)> {
    use nom_exif::{EntryValue, Exif, ExifTag, MediaParser, MediaSource};
    let ms = MediaSource::seekable(reader).ok()?;
    if ms.kind() != nom_exif::MediaKind::Image {
        return None;
    }
    let mut parser = MediaParser::new();
    let exif: Exif = parser.parse_exif(ms).ok()?.into();
    let text_offset = |tag| {
        exif.get(tag)
            .and_then(EntryValue::as_str)
            .and_then(parse_offset)
    };
    // Only DateTimeOriginal: DateTimeDigitized is the scan time on scanned prints, and
    // IFD0 DateTime (ModifyDate) is the last edit (NoExif.jpg carries one from 2019).
    let (local, aware_offset) = match exif.get(ExifTag::DateTimeOriginal)? {
        EntryValue::DateTime(dt) => (dt.naive_local(), Some(*dt.offset())),
        EntryValue::NaiveDateTime(dt) => (*dt, None),
        EntryValue::Text(s) => (parse_exif_datetime(s)?, None),
        _ => return None,
    };
    let offset = text_offset(ExifTag::OffsetTimeOriginal).or(aware_offset);
    plausible_exif(&local).then_some((local, offset))
}

pub(crate) fn exif_kamadak<R: Read + Seek>(
    reader: R,
) -> Option<(NaiveDateTime, Option<FixedOffset>)> {
    use exif::{In, Tag, Value};
    let mut reader = BufReader::new(reader);
    let exif = exif::Reader::new().read_from_container(&mut reader).ok()?;
    let ascii = |tag| match exif.get_field(tag, In::PRIMARY).map(|f| &f.value) {
        Some(Value::Ascii(v)) => v.first().map(|b| String::from_utf8_lossy(b).into_owned()),
        _ => None,
    };
    let local = ascii(Tag::DateTimeOriginal)
        .as_deref()
        .and_then(parse_exif_datetime)?;
    let offset = ascii(Tag::OffsetTimeOriginal)
        .as_deref()
        .and_then(parse_offset);
    plausible_exif(&local).then_some((local, offset))
}

/// `YYYY:MM:DD HH:MM:SS` (also with `-` in the date, as some writers do); trailing
/// sub-seconds or junk after the seconds are ignored. `0000:00:00 00:00:00` is `None`.
fn parse_exif_datetime(s: &str) -> Option<NaiveDateTime> {
    let s = s.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    let b = s.as_bytes();
    if b.len() < 19 || !s.is_char_boundary(19) {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<u32>().ok();
    let date = NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)?;
    date.and_hms_opt(num(11..13)?, num(14..16)?, num(17..19)?)
}

/// `+02:00`, `-08:00`, `Z`; empty or malformed is `None`.
fn parse_offset(s: &str) -> Option<FixedOffset> {
    let s = s.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    if s == "Z" {
        return FixedOffset::east_opt(0);
    }
    let sign = match s.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (h, m) = s.get(1..)?.split_once(':')?;
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    if !(0..=14).contains(&h) || !(0..60).contains(&m) {
        return None;
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60))
}

// ----- QuickTime / MP4 -----

/// The movie's creation time. Apple's `com.apple.quicktime.creationdate` (local time with its
/// offset, written at capture) wins over `mvhd` (UTC, rewritten by editors), as nom-exif
/// orders them; a UTC value is shown in the local time zone.
fn quicktime_time(
    volume: &mut dyn Volume,
    path: &str,
) -> Option<(NaiveDateTime, Option<FixedOffset>)> {
    if let Some(found) = open_bounded(volume, path).and_then(quicktime_nom) {
        return Some(found);
    }
    let mut reader = open_bounded(volume, path)?;
    let utc = mvhd_creation_time(&mut reader)?;
    let (local, offset) = utc_to_local(utc);
    plausible_quicktime(&local).then_some((local, Some(offset)))
}

pub(crate) fn quicktime_nom<R: Read + Seek>(
    reader: R,
) -> Option<(NaiveDateTime, Option<FixedOffset>)> {
    use nom_exif::{EntryValue, MediaParser, MediaSource, TrackInfoTag};
    let ms = MediaSource::seekable(reader).ok()?;
    if ms.kind() != nom_exif::MediaKind::Track {
        return None;
    }
    let mut parser = MediaParser::new();
    let info = parser.parse_track(ms).ok()?;
    let (local, offset) = match info.get(TrackInfoTag::CreateDate)? {
        // A zero offset is mvhd's UTC (or a UTC key): show it in local time.
        EntryValue::DateTime(dt) if dt.offset().local_minus_utc() == 0 => {
            let (l, o) = utc_to_local(dt.with_timezone(&Utc));
            (l, Some(o))
        }
        EntryValue::DateTime(dt) => (dt.naive_local(), Some(*dt.offset())),
        EntryValue::NaiveDateTime(dt) => {
            let (l, o) = utc_to_local(dt.and_utc());
            (l, Some(o))
        }
        _ => return None,
    };
    plausible_quicktime(&local).then_some((local, offset))
}

/// Most atoms looked at on one level of the `mvhd` search; real files have a handful.
const MAX_ATOMS: usize = 4096;

/// `moov/mvhd` creation time, read by walking atom headers (seeking over their bodies).
/// Reads a few bytes per atom; `None` for a zero time or anything malformed.
pub(crate) fn mvhd_creation_time<R: Read + Seek>(r: &mut R) -> Option<DateTime<Utc>> {
    let file_len = r.seek(SeekFrom::End(0)).ok()?;
    let (moov_start, moov_end) = find_atom(r, 0, file_len, b"moov")?;
    let (mvhd_start, mvhd_end) = find_atom(r, moov_start, moov_end, b"mvhd")?;
    r.seek(SeekFrom::Start(mvhd_start)).ok()?;
    let mut vf = [0u8; 4];
    r.read_exact(&mut vf).ok()?;
    let seconds_1904 = if vf[0] == 1 {
        if mvhd_end.checked_sub(mvhd_start)? < 12 {
            return None;
        }
        let mut b = [0u8; 8];
        r.read_exact(&mut b).ok()?;
        i64::try_from(u64::from_be_bytes(b)).ok()?
    } else {
        if mvhd_end.checked_sub(mvhd_start)? < 8 {
            return None;
        }
        let mut b = [0u8; 4];
        r.read_exact(&mut b).ok()?;
        i64::from(u32::from_be_bytes(b))
    };
    if seconds_1904 == 0 {
        return None;
    }
    DateTime::from_timestamp(seconds_1904.checked_sub(QUICKTIME_EPOCH_OFFSET)?, 0)
}

/// The body range `(start, end)` of the first atom of type `want` among the atoms that fill
/// `start..end`.
fn find_atom<R: Read + Seek>(
    r: &mut R,
    start: u64,
    end: u64,
    want: &[u8; 4],
) -> Option<(u64, u64)> {
    let mut pos = start;
    for _ in 0..MAX_ATOMS {
        if pos.checked_add(8)? > end {
            return None;
        }
        r.seek(SeekFrom::Start(pos)).ok()?;
        let mut h = [0u8; 8];
        r.read_exact(&mut h).ok()?;
        let size32 = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
        let (size, header) = match size32 {
            0 => (end - pos, 8),
            1 => {
                let mut b = [0u8; 8];
                r.read_exact(&mut b).ok()?;
                (u64::from_be_bytes(b), 16)
            }
            n => (u64::from(n), 8),
        };
        if size < header {
            return None;
        }
        let atom_end = pos.checked_add(size)?.min(end);
        if &h[4..8] == want {
            return Some((pos + header, atom_end));
        }
        pos = atom_end;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exif_datetime_text() {
        assert_eq!(
            parse_exif_datetime("2008:05:30 15:56:01"),
            NaiveDate::from_ymd_opt(2008, 5, 30).and_then(|d| d.and_hms_opt(15, 56, 1))
        );
        assert_eq!(parse_exif_datetime("0000:00:00 00:00:00"), None);
        assert_eq!(parse_exif_datetime("    :  :     :  :  "), None);
        assert_eq!(parse_exif_datetime("2008:05"), None);
        assert_eq!(parse_exif_datetime("2008:05:30 15:56:0é"), None);
    }

    #[test]
    fn offsets() {
        assert_eq!(parse_offset("+02:00"), FixedOffset::east_opt(7200));
        assert_eq!(parse_offset("-08:00"), FixedOffset::west_opt(8 * 3600));
        assert_eq!(parse_offset(""), None);
        assert_eq!(parse_offset("+99:00"), None);
        assert_eq!(parse_offset("junk"), None);
    }

    #[test]
    fn plausibility() {
        let dt = |y| NaiveDate::from_ymd_opt(y, 1, 1).and_then(|d| d.and_hms_opt(0, 0, 0));
        assert!(plausible_exif(&dt(1975).unwrap()));
        assert!(!plausible_exif(&dt(1969).unwrap()));
        assert!(!plausible_exif(&dt(2099).unwrap()));
        assert!(!plausible_quicktime(&dt(1904).unwrap()));
    }

    #[test]
    fn mvhd_v0_and_v1() {
        let movie = |version: u8, time: &[u8]| {
            let mut mvhd = vec![version, 0, 0, 0];
            mvhd.extend_from_slice(time);
            mvhd.extend_from_slice(&[0u8; 96]);
            let mut moov = Vec::new();
            moov.extend_from_slice(&((8 + mvhd.len()) as u32).to_be_bytes());
            moov.extend_from_slice(b"mvhd");
            moov.extend_from_slice(&mvhd);
            let mut file = Vec::new();
            file.extend_from_slice(&[0, 0, 0, 16]);
            file.extend_from_slice(b"free12345678");
            file.extend_from_slice(&((8 + moov.len()) as u32).to_be_bytes());
            file.extend_from_slice(b"moov");
            file.extend_from_slice(&moov);
            file
        };
        // 2005-08-11 14:03:54 UTC = 3206613834 s after 1904.
        let t = 3_206_613_834u32;
        let want = DateTime::from_timestamp(i64::from(t) - QUICKTIME_EPOCH_OFFSET, 0);
        let got = mvhd_creation_time(&mut io::Cursor::new(movie(0, &t.to_be_bytes())));
        assert_eq!(got, want);
        let got = mvhd_creation_time(&mut io::Cursor::new(movie(1, &u64::from(t).to_be_bytes())));
        assert_eq!(got, want);
        assert_eq!(
            mvhd_creation_time(&mut io::Cursor::new(movie(0, &[0; 4]))),
            None
        );
        assert_eq!(
            mvhd_creation_time(&mut io::Cursor::new(b"\0\0\0\0moov".to_vec())),
            None
        );
    }

    #[test]
    fn bounded_stops() {
        let mut r = Bounded::new(io::Cursor::new(vec![7u8; 100]), 10);
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out.len(), 10);
    }
}
