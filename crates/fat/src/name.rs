//! Names: validation of long names, case folding for lookups, 8.3 basis-name and numeric
//! tail generation, LFN slot encoding, and SFN display (FAT_NOTES §3–4).

use crate::{Error, Result};

pub(crate) const MAX_LFN_UNITS: usize = 255;

/// Reject what no FAT long name can hold (Linux vfat_bad_char plus the trailing rules).
pub fn validate_name(name: &str) -> Result<()> {
    let bad = |reason: &str| {
        Err(Error::InvalidName {
            name: name.to_string(),
            reason: reason.to_string(),
        })
    };
    if name.is_empty() {
        return bad("empty name");
    }
    if name == "." || name == ".." {
        return bad("`.` and `..` are reserved");
    }
    if let Some(c) = name
        .chars()
        .find(|&c| (c as u32) < 0x20 || c == '\u{7f}' || "\"*/:<>?\\|".contains(c))
    {
        return bad(&format!("character {c:?} is not allowed in FAT names"));
    }
    if name.ends_with('.') || name.ends_with(' ') {
        return bad("names cannot end with a dot or a space");
    }
    let units = name.encode_utf16().count();
    if units > MAX_LFN_UNITS {
        return bad(&format!("{units} UTF-16 code units, FAT allows 255"));
    }
    Ok(())
}

/// Simple (one-to-one) upper-casing, as FAT implementations compare names.
pub(crate) fn fold(s: &str) -> String {
    folded(s).collect()
}

fn folded(s: &str) -> impl Iterator<Item = char> + '_ {
    s.chars().map(|c| {
        let mut up = c.to_uppercase();
        match (up.next(), up.next()) {
            (Some(u), None) => u,
            _ => c,
        }
    })
}

/// A hash of `fold(s)`, computed without building it.
pub(crate) fn fold_hash(s: &str) -> u64 {
    use std::hash::Hasher;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for c in folded(s) {
        h.write_u32(c as u32);
    }
    h.finish()
}

/// `fold(a) == fold(b)`, without building either.
pub(crate) fn same_folded(a: &str, b: &str) -> bool {
    a == b || folded(a).eq(folded(b))
}

/// Characters allowed in a short name besides A-Z and 0-9.
fn sfn_special(c: u8) -> bool {
    b"!#$%&'()-@^_`{}~".contains(&c)
}

fn sfn_char_ok(c: u8) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit() || sfn_special(c)
}

/// If `name` is exactly a valid upper-case 8.3 name, its 11-byte form.
pub(crate) fn exact_sfn(name: &str) -> Option<[u8; 11]> {
    let b = name.as_bytes();
    if b.is_empty() || b[0] == b'.' {
        return None;
    }
    let (base, ext) = match name.find('.') {
        Some(i) => (&b[..i], &b[i + 1..]),
        None => (b, &b[..0]),
    };
    if base.is_empty() || base.len() > 8 || ext.len() > 3 || (name.contains('.') && ext.is_empty())
    {
        return None;
    }
    if !base.iter().chain(ext).all(|&c| sfn_char_ok(c)) {
        return None;
    }
    let mut out = [b' '; 11];
    out[..base.len()].copy_from_slice(base);
    out[8..8 + ext.len()].copy_from_slice(ext);
    Some(out)
}

/// Like `exact_sfn` but after upper-casing: used to look a name up by its short alias.
pub(crate) fn sfn_key(name: &str) -> Option<[u8; 11]> {
    exact_sfn(&name.to_ascii_uppercase())
}

/// Basis name per the Win95 rule: upper case, drop spaces and leading dots, `_` for what
/// a short name cannot hold. Returns (base, ext, lossy_or_truncated).
pub(crate) fn basis(name: &str) -> (Vec<u8>, Vec<u8>, bool) {
    let mut lossy = false;
    let trimmed = name.trim_start_matches('.');
    if trimmed.len() != name.len() {
        lossy = true;
    }
    let (base_s, ext_s) = match trimmed.rfind('.') {
        Some(i) => (&trimmed[..i], &trimmed[i + 1..]),
        None => (trimmed, ""),
    };
    let conv = |s: &str, lossy: &mut bool| -> Vec<u8> {
        let mut v = Vec::new();
        for c in s.chars() {
            if c == ' ' || c == '.' {
                *lossy = true;
                continue;
            }
            let u = if c.is_ascii() {
                c.to_ascii_uppercase() as u8
            } else {
                b'_'
            };
            if !c.is_ascii() || !sfn_char_ok(u) {
                *lossy = true;
                v.push(b'_');
            } else {
                v.push(u);
            }
        }
        v
    };
    let mut base = conv(base_s, &mut lossy);
    let mut ext = conv(ext_s, &mut lossy);
    if base.len() > 8 {
        base.truncate(8);
        lossy = true;
    }
    if ext.len() > 3 {
        ext.truncate(3);
        lossy = true;
    }
    if base.is_empty() {
        base.push(b'_');
        lossy = true;
    }
    (base, ext, lossy)
}

pub(crate) fn pack(base: &[u8], ext: &[u8]) -> [u8; 11] {
    let mut out = [b' '; 11];
    let b = &base[..base.len().min(8)];
    let e = &ext[..ext.len().min(3)];
    out[..b.len()].copy_from_slice(b);
    out[8..8 + e.len()].copy_from_slice(e);
    out
}

/// Base with a numeric tail `~n`, cut so that it fits in 8.
pub(crate) fn with_tail(base: &[u8], n: u32) -> Vec<u8> {
    let tail = format!("~{n}");
    let keep = 8usize.saturating_sub(tail.len()).min(base.len());
    let mut v = base[..keep].to_vec();
    v.extend_from_slice(tail.as_bytes());
    v
}

/// 16-bit hash of the long name for the hashed short-name form.
pub(crate) fn name_hash(name: &str) -> u16 {
    // FNV-1a folded to 16 bits: any stable spread works; no reader checks how it was made.
    let mut h: u32 = 0x811c_9dc5;
    for u in name.encode_utf16() {
        h ^= u32::from(u);
        h = h.wrapping_mul(0x0100_0193);
    }
    ((h >> 16) ^ (h & 0xFFFF)) as u16
}

/// The checksum every LFN slot carries of its SFN's 11 bytes.
pub(crate) fn lfn_checksum(sfn: &[u8; 11]) -> u8 {
    let mut sum: u8 = 0;
    for &b in sfn {
        sum = ((sum & 1) << 7).wrapping_add(sum >> 1).wrapping_add(b);
    }
    sum
}

/// Build the LFN slots (in on-disk order: highest ordinal first) for `name`.
pub(crate) fn lfn_slots(name: &str, checksum: u8) -> Vec<[u8; 32]> {
    let units: Vec<u16> = name.encode_utf16().collect();
    let n = units.len().div_ceil(13);
    let mut slots = Vec::with_capacity(n);
    for i in (0..n).rev() {
        let mut s = [0u8; 32];
        let ord = (i + 1) as u8 | if i + 1 == n { 0x40 } else { 0 };
        s[0] = ord;
        s[11] = 0x0F;
        s[12] = 0;
        s[13] = checksum;
        for (j, &off) in LFN_OFFSETS.iter().enumerate() {
            let idx = i * 13 + j;
            let u = match idx.cmp(&units.len()) {
                std::cmp::Ordering::Less => units[idx],
                std::cmp::Ordering::Equal => 0x0000,
                std::cmp::Ordering::Greater => 0xFFFF,
            };
            s[off..off + 2].copy_from_slice(&u.to_le_bytes());
        }
        slots.push(s);
    }
    slots
}

/// Offsets of the 13 UTF-16 units inside an LFN slot.
pub(crate) const LFN_OFFSETS: [usize; 13] = [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30];

/// Code page 437, bytes 0x80..=0xFF.
const CP437_HIGH: &str = "ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒáíóúñÑªº¿⌐¬½¼¡«»░▒▓│┤╡╢╖╕╣║╗╝╜╛┐└┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■\u{a0}";

/// Display form of an 11-byte short name, honouring the NTRes lower-case bits.
pub(crate) fn sfn_display(sfn: &[u8; 11], ntres: u8) -> String {
    let conv = |bytes: &[u8], lower: bool| -> String {
        let mut s = String::new();
        for (i, &b) in bytes.iter().enumerate() {
            let b = if i == 0 && b == 0x05 { 0xE5 } else { b };
            let c = if b < 0x80 {
                b as char
            } else {
                // Short names are in the OEM code page; 437 is Linux's default.
                CP437_HIGH.chars().nth(usize::from(b - 0x80)).unwrap_or('_')
            };
            s.push(if lower { c.to_ascii_lowercase() } else { c });
        }
        s.trim_end_matches(' ').to_string()
    };
    let base = conv(&sfn[..8], ntres & 0x08 != 0);
    let ext = conv(&sfn[8..], ntres & 0x10 != 0);
    if ext.is_empty() {
        base
    } else {
        format!("{base}.{ext}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_matches_known_value() {
        // "README  TXT" checksum as computed by mtools/Linux.
        let s = *b"README  TXT";
        let mut sum: u8 = 0;
        for b in s {
            sum = sum.rotate_right(1).wrapping_add(b);
        }
        assert_eq!(lfn_checksum(&s), sum);
    }

    #[test]
    fn exact_and_basis() {
        assert!(exact_sfn("README.TXT").is_some());
        assert!(exact_sfn("readme.txt").is_none());
        assert!(exact_sfn("ABCDEFGHI.TXT").is_none());
        assert!(exact_sfn(".TXT").is_none());
        let (b, e, l) = basis("IMG_20240101_123456.jpg");
        assert_eq!(
            (b.as_slice(), e.as_slice(), l),
            (&b"IMG_2024"[..], &b"JPG"[..], true)
        );
        let (b, _, l) = basis("readme.txt");
        assert_eq!((b.as_slice(), l), (&b"README"[..], false));
        assert_eq!(with_tail(b"IMG_2024", 1), b"IMG_20~1".to_vec());
    }

    #[test]
    fn cp437_table_is_complete() {
        assert_eq!(CP437_HIGH.chars().count(), 128);
        assert_eq!(sfn_display(b"\x80\x81      TXT", 0), "Çü.TXT");
    }

    #[test]
    fn validation() {
        assert!(validate_name("a.jpg").is_ok());
        for bad in ["", ".", "..", "a?", "a.", "a ", "x/y", "\u{1}"] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
        assert!(validate_name(&"a".repeat(255)).is_ok());
        assert!(validate_name(&"a".repeat(256)).is_err());
        assert!(validate_name(&"😀".repeat(127)).is_ok());
        assert!(validate_name(&"😀".repeat(128)).is_err());
    }
}
