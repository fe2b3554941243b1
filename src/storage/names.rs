//! What names FAT can hold, case folding, and sanitising.
//!
//! The FAT engine rejects names it cannot store; deciding what to call a photo instead is
//! the caller's job, done here so that the directory backend on a mounted vfat card gets
//! exactly the same names as the raw FAT backend. The original name always goes into the
//! manifest.

use unicode_normalization::UnicodeNormalization;

/// Characters FAT long names cannot hold (Linux `vfat_bad_char`), besides control codes.
const FAT_FORBIDDEN: &[char] = &['"', '*', '/', ':', '<', '>', '?', '\\', '|'];

/// Device names Windows refuses as file names whatever the extension; a card read on a
/// Windows laptop must not hold them.
const WINDOWS_RESERVED: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// The longest long name FAT holds, in UTF-16 code units.
pub const MAX_NAME_UTF16: usize = 255;

/// Why `name` cannot be stored on FAT as is, or `None` when it can.
pub fn fat_name_problem(name: &str) -> Option<String> {
    if name.is_empty() || name == "." || name == ".." {
        return Some("empty or a dot name".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| FAT_FORBIDDEN.contains(c) || (*c as u32) < 0x20)
    {
        return Some(format!("contains {c:?}, which FAT does not allow"));
    }
    if name.ends_with('.') || name.ends_with(' ') {
        return Some("ends with a dot or a space".into());
    }
    if name.encode_utf16().count() > MAX_NAME_UTF16 {
        return Some(format!("longer than {MAX_NAME_UTF16} UTF-16 units"));
    }
    let stem = name.split('.').next().unwrap_or(name).trim_end();
    if WINDOWS_RESERVED
        .iter()
        .any(|r| r.eq_ignore_ascii_case(stem))
    {
        return Some(format!("{stem} is a reserved device name on Windows"));
    }
    if name.nfc().ne(name.chars()) {
        return Some(
            "not in Unicode NFC form (stored as NFC so it matches on every system)".into(),
        );
    }
    None
}

/// A name FAT can hold that stays as close to `name` as possible: NFC, forbidden characters
/// replaced by `_`, trailing dots/spaces removed, reserved device names suffixed, and long
/// names shortened while keeping the extension.
pub fn sanitize_fat_name(name: &str) -> String {
    let mut s: String = name
        .nfc()
        .map(|c| {
            if FAT_FORBIDDEN.contains(&c) || (c as u32) < 0x20 {
                '_'
            } else {
                c
            }
        })
        .collect();
    while s.ends_with('.') || s.ends_with(' ') {
        s.pop();
    }
    if s.is_empty() || s == "." || s == ".." {
        s = "_".into();
    }
    let (stem, ext) = split_ext(&s);
    let (stem, ext) = (stem.to_string(), ext.to_string());
    let stem = if WINDOWS_RESERVED
        .iter()
        .any(|r| r.eq_ignore_ascii_case(stem.trim_end()))
    {
        format!("{stem}_")
    } else {
        stem
    };
    let mut out = format!("{stem}{ext}");
    if out.encode_utf16().count() > MAX_NAME_UTF16 {
        let budget = MAX_NAME_UTF16.saturating_sub(ext.encode_utf16().count());
        let mut kept = String::new();
        let mut used = 0;
        for c in stem.chars() {
            if used + c.len_utf16() > budget {
                break;
            }
            used += c.len_utf16();
            kept.push(c);
        }
        let kept = kept.trim_end_matches(['.', ' ']).to_string();
        out = format!("{kept}{ext}");
    }
    out
}

/// `("IMG_1", ".jpg")`; a leading dot is part of the stem, not an extension.
pub fn split_ext(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i..]),
        _ => (name, ""),
    }
}

/// The key under which FAT (and macOS/Windows) consider two names the same.
pub fn fold_case(name: &str) -> String {
    folded(name).collect()
}

/// The characters of [`fold_case`], without building the string.
fn folded(name: &str) -> impl Iterator<Item = char> + '_ {
    name.nfc().flat_map(char::to_uppercase)
}

/// A hash of [`fold_case`]`(name)`, for indexes that should not hold a folded copy of every
/// name. Deterministic within a process; equal folded names hash equal.
pub fn fold_hash(name: &str) -> u64 {
    use std::hash::Hasher;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    if name.is_ascii() {
        // ASCII is already NFC and upper-cases to one ASCII character: the same characters
        // as the general path, without its normalisation cost.
        for b in name.bytes() {
            h.write_u32(u32::from(b.to_ascii_uppercase()));
        }
    } else {
        for c in folded(name) {
            h.write_u32(c as u32);
        }
    }
    h.finish()
}

/// `fold_case(a) == fold_case(b)`, without building either.
pub fn same_folded(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        return a.eq_ignore_ascii_case(b);
    }
    folded(a).eq(folded(b))
}

/// `IMG_0001 (1).jpg`: the n-th alternative name for a clash, never an overwrite.
pub fn numbered(name: &str, n: u32) -> String {
    let (stem, ext) = split_ext(name);
    format!("{stem} ({n}){ext}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fold_hash_and_same_folded_follow_fold_case() {
        let names = [
            "IMG_0001.jpg",
            "img_0001.JPG",
            "Été.jpg",
            "E\u{301}té.JPG",
            "ÉTÉ.JPG",
            "x",
        ];
        for a in names {
            for b in names {
                let same = fold_case(a) == fold_case(b);
                assert_eq!(same_folded(a, b), same, "{a} {b}");
                if same {
                    assert_eq!(fold_hash(a), fold_hash(b), "{a} {b}");
                }
            }
        }
        assert_ne!(fold_hash("a.jpg"), fold_hash("b.jpg"));
    }

    #[test]
    fn names_fat_can_hold_pass() {
        for n in ["IMG_0001.JPG", "Été_日本_😀.jpg", "a b.c.d", ".hidden"] {
            assert_eq!(fat_name_problem(n), None, "{n}");
        }
    }

    #[test]
    fn sanitising_keeps_what_it_can() {
        assert_eq!(
            sanitize_fat_name("meeting 12:30?.jpg"),
            "meeting 12_30_.jpg"
        );
        assert_eq!(sanitize_fat_name("trailing. . "), "trailing");
        assert_eq!(sanitize_fat_name("con.txt"), "con_.txt");
        assert_eq!(sanitize_fat_name("e\u{301}te.jpg"), "\u{e9}te.jpg");
        let long = format!("{}.jpg", "é".repeat(300));
        let s = sanitize_fat_name(&long);
        assert!(s.ends_with(".jpg"));
        assert!(s.encode_utf16().count() <= MAX_NAME_UTF16);
        assert_eq!(fat_name_problem(&s), None);
    }

    #[test]
    fn sanitised_names_are_always_valid() {
        for n in [
            "",
            ".",
            "..",
            "...",
            "a\u{1}b",
            "|||",
            "NUL",
            "x".repeat(400).as_str(),
        ] {
            let s = sanitize_fat_name(n);
            assert_eq!(fat_name_problem(&s), None, "{n:?} -> {s:?}");
        }
    }

    #[test]
    fn numbering_keeps_the_extension() {
        assert_eq!(numbered("IMG_0001.jpg", 1), "IMG_0001 (1).jpg");
        assert_eq!(numbered("README", 2), "README (2)");
    }

    #[test]
    fn case_folding_matches_fat() {
        assert_eq!(fold_case("img_0001.jpg"), fold_case("IMG_0001.JPG"));
        assert_eq!(fold_case("été"), fold_case("ÉTÉ"));
    }
}
