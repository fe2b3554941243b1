//! Dates written in file names by cameras, phones and messengers.
//!
//! Recognised shapes (anywhere in the name, first plausible match wins):
//!
//! | shape | examples |
//! |---|---|
//! | `YYYYMMDD` sep `HHMMSS[mmm]` | `IMG_20240131_235959.jpg`, `PXL_20240131_235959123.jpg`, `VID_20240131_235959.mp4`, `Screenshot_20240131-235959.png`, `20240131_235959.jpg` |
//! | `YYYYMMDDHHMMSS[mmm]` | `IMG20240131235959.jpg` (Oppo, realme, OnePlus) |
//! | `YYYY-MM-DD` sep `HH-MM-SS` / `HHMMSS` / `HH.MM.SS` | `Screenshot_2024-01-31-23-59-59.png`, `signal-2024-01-31-235959.jpg`, `Screenshot 2024-01-31 at 23.59.59.png`, `2004-01-11-22-45-15.jpg` |
//! | `YYYYMMDD` or `YYYY-MM-DD` alone (midnight) | `IMG-20240131-WA0001.jpg` (WhatsApp), `2024-01-31.jpg` |
//! | 13-digit Unix milliseconds | `FB_IMG_1706745599000.jpg`, `received_1706745599000.jpeg` |
//!
//! Every candidate must be a real calendar date and time with a year in `1990..=now+1`;
//! otherwise the next candidate is tried, and `None` means the name holds no usable date.

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime};

/// A digit run in a name: its start and its digits.
#[derive(Clone, Copy)]
struct Run<'a> {
    start: usize,
    end: usize,
    digits: &'a str,
}

/// The capture date written in a file name, if any (see the module docs for the shapes).
pub fn date_from_file_name(name: &str) -> Option<NaiveDateTime> {
    // Drop the extension so that `.mp4` or `.3gp` adds no digits.
    let stem = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() && ext.len() <= 5 => stem,
        _ => name,
    };
    let runs = digit_runs(stem);
    let max_year = chrono::Local::now().year() + 1;
    for (i, run) in runs.iter().enumerate() {
        let next = runs.get(i + 1).copied();
        let gap = |a: &Run, b: &Run| &stem[a.end..b.start];
        let found = match run.digits.len() {
            8 => {
                let date = ymd(&run.digits[0..4], &run.digits[4..6], &run.digits[6..8]);
                let time = next
                    .filter(|n| is_date_time_gap(gap(run, n)) && (6..=9).contains(&n.digits.len()))
                    .and_then(|n| hms(&n.digits[0..2], &n.digits[2..4], &n.digits[4..6]));
                date.map(|d| d.and_time(time.unwrap_or(NaiveTime::MIN)))
            }
            14..=17 => {
                let d = run.digits;
                ymd(&d[0..4], &d[4..6], &d[6..8])
                    .and_then(|date| Some(date.and_time(hms(&d[8..10], &d[10..12], &d[12..14])?)))
            }
            13 => epoch_millis(run.digits),
            4 => dashed(stem, &runs[i..]),
            _ => None,
        };
        if let Some(dt) = found.filter(|dt| (1990..=max_year).contains(&dt.year())) {
            return Some(dt);
        }
    }
    None
}

/// `YYYY-MM-DD[ sep HH-MM-SS | HHMMSS ]` starting at `runs[0]`.
fn dashed(stem: &str, runs: &[Run]) -> Option<NaiveDateTime> {
    let [y, m, d, rest @ ..] = runs else {
        return None;
    };
    let sep_ok = |a: &Run, b: &Run| matches!(&stem[a.end..b.start], "-" | "_" | "." | " ");
    if m.digits.len() != 2 || d.digits.len() != 2 || !sep_ok(y, m) || !sep_ok(m, d) {
        return None;
    }
    let date = ymd(y.digits, m.digits, d.digits)?;
    let time = match rest {
        [t, ..] if is_date_time_gap(&stem[d.end..t.start]) && (6..=9).contains(&t.digits.len()) => {
            hms(&t.digits[0..2], &t.digits[2..4], &t.digits[4..6])
        }
        [h, mi, s, ..]
            if is_date_time_gap(&stem[d.end..h.start])
                && [h, mi, s].iter().all(|r| r.digits.len() == 2)
                && sep_ok(h, mi)
                && sep_ok(mi, s) =>
        {
            hms(h.digits, mi.digits, s.digits)
        }
        _ => None,
    };
    Some(date.and_time(time.unwrap_or(NaiveTime::MIN)))
}

/// What may stand between a date and its time: one separator, or macOS's ` at `.
fn is_date_time_gap(gap: &str) -> bool {
    matches!(gap, "_" | "-" | " " | "." | "T" | " at ")
}

fn digit_runs(s: &str) -> Vec<Run<'_>> {
    let mut runs = Vec::new();
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            runs.push(Run {
                start,
                end: i,
                digits: &s[start..i],
            });
        } else {
            i += 1;
        }
    }
    runs
}

fn ymd(y: &str, m: &str, d: &str) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?)
}

fn hms(h: &str, m: &str, s: &str) -> Option<NaiveTime> {
    NaiveTime::from_hms_opt(h.parse().ok()?, m.parse().ok()?, s.parse().ok()?)
}

/// Unix milliseconds (as messengers name received files), as local time.
fn epoch_millis(digits: &str) -> Option<NaiveDateTime> {
    let ms: i64 = digits.parse().ok()?;
    let utc = chrono::DateTime::from_timestamp_millis(ms)?;
    Some(utc.with_timezone(&chrono::Local).naive_local())
}
