//! Content-type detection from a file's first bytes (magic numbers), and the extension
//! table used when the content says nothing.

use super::MediaKind;

/// How many leading bytes [`scan`](super::scan) reads from each file for [`sniff`]. Enough for
/// every signature below, including an `ftyp` box with a long list of compatible brands.
pub const SNIFF_LEN: usize = 256;

/// Recognise a photo or video from its first bytes (pass at least [`SNIFF_LEN`] bytes when
/// the file has them). Pure and total: any input, including an empty or truncated one,
/// returns `None` or a `(kind, format)` pair, never panics.
///
/// TIFF-based RAW files (DNG, NEF, ARW, PEF, SRW, ...) all start like a plain TIFF, so they
/// come back as `(Photo, "tiff")`; [`scan`](super::scan) refines them with the extension.
pub fn sniff(header: &[u8]) -> Option<(MediaKind, &'static str)> {
    use MediaKind::*;
    let h = header;
    let starts = |sig: &[u8]| h.starts_with(sig);
    let at = |off: usize, sig: &[u8]| h.get(off..off + sig.len()) == Some(sig);

    // JPEG: SOI followed by the first marker. A truncated JPEG still starts this way and is
    // a JPEG (decoders show what is there), so it counts.
    if starts(&[0xFF, 0xD8, 0xFF]) {
        return Some((Photo, "jpeg"));
    }
    if starts(b"\x89PNG\r\n\x1a\n") {
        return Some((Photo, "png"));
    }
    if starts(b"GIF87a") || starts(b"GIF89a") {
        return Some((Photo, "gif"));
    }
    if starts(b"RIFF") {
        if at(8, b"WEBP") {
            return Some((Photo, "webp"));
        }
        if at(8, b"AVI ") {
            return Some((Video, "avi"));
        }
        return None;
    }
    // JPEG XL: bare codestream or ISO BMFF container.
    if starts(&[0xFF, 0x0A]) || starts(b"\x00\x00\x00\x0cJXL \r\n\x87\n") {
        return Some((Photo, "jxl"));
    }
    if starts(b"FUJIFILMCCD-RAW") {
        return Some((Raw, "raf"));
    }
    // TIFF family. Some RAWs have their own magic in place of 42.
    if starts(b"II*\0") {
        if at(8, b"CR\x02\0") {
            return Some((Raw, "cr2"));
        }
        return Some((Photo, "tiff"));
    }
    if starts(b"MM\0*") {
        return Some((Photo, "tiff"));
    }
    if starts(b"IIRO") || starts(b"IIRS") || starts(b"MMOR") {
        return Some((Raw, "orf"));
    }
    if starts(b"IIU\0") {
        return Some((Raw, "rw2"));
    }
    // Matroska / WebM (EBML header).
    if starts(&[0x1A, 0x45, 0xDF, 0xA3]) {
        let is_webm = h.windows(4).any(|w| w == b"webm");
        return Some((Video, if is_webm { "webm" } else { "mkv" }));
    }
    sniff_isobmff(h)
}

/// ISO base media files (HEIF/AVIF/CR3/MP4/3GP) by their `ftyp` brands, and old QuickTime
/// movies without `ftyp` by their first atom.
fn sniff_isobmff(h: &[u8]) -> Option<(MediaKind, &'static str)> {
    use MediaKind::*;
    let box_type = h.get(4..8)?;
    let size = u32::from_be_bytes(h.get(0..4)?.try_into().ok()?) as usize;
    if box_type == b"ftyp" {
        let major = h.get(8..12)?;
        // Audio-only MPEG-4 (voice notes, music): not a photo or video.
        if [b"M4A ", b"M4B ", b"M4P "].contains(&major.try_into().ok()?) {
            return None;
        }
        // Compatible brands: from byte 16 to the end of the ftyp box (as far as we have it).
        let end = size.clamp(16, h.len().max(16)).min(h.len());
        let compat: Vec<&[u8]> = h.get(16..end).unwrap_or(&[]).chunks_exact(4).collect();
        // A generic HEIF major brand (`mif1`, `msf1`, `miaf`) says little: the compatible
        // brands tell HEIC (HEVC) and AVIF (AV1) apart.
        let generic_heif = matches!(classify_brand(major), Some((Photo, "heif")));
        if generic_heif {
            for specific in ["avif", "heic"] {
                if compat
                    .iter()
                    .any(|b| matches!(classify_brand(b), Some((_, f)) if f == specific))
                {
                    return classify_brand(if specific == "avif" { b"avif" } else { b"heic" });
                }
            }
        }
        if let Some(found) = classify_brand(major) {
            return Some(found);
        }
        // Unknown major brand: look at the compatible brands, image brands first so that a
        // HEIF listing `iso8`/`mp41`-ish brands is not taken for a video.
        for wanted in [Raw, Photo, Video] {
            if let Some(found) = compat
                .iter()
                .filter_map(|b| classify_brand(b))
                .find(|(k, _)| *k == wanted)
            {
                return Some(found);
            }
        }
        return None;
    }
    // QuickTime without ftyp (old cameras, MOVs extracted from Live Photos): the first atom is
    // one of these, with a size that is either "to the end" (0), "64-bit" (1) or at least a
    // header.
    const QT_FIRST_ATOMS: [&[u8]; 6] = [b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"];
    if QT_FIRST_ATOMS.contains(&box_type) && (size == 0 || size == 1 || size >= 8) {
        return Some((Video, "mov"));
    }
    None
}

fn classify_brand(brand: &[u8]) -> Option<(MediaKind, &'static str)> {
    use MediaKind::*;
    Some(match brand {
        b"heic" | b"heix" | b"heim" | b"heis" | b"hevc" | b"hevx" | b"hevm" | b"hevs" => {
            (Photo, "heic")
        }
        b"avif" | b"avis" | b"avio" => (Photo, "avif"),
        b"mif1" | b"msf1" | b"miaf" | b"MiHE" | b"MiHB" | b"MiPr" => (Photo, "heif"),
        b"jxl " => (Photo, "jxl"),
        b"crx " => (Raw, "cr3"),
        b"qt  " | b"mqt " => (Video, "mov"),
        b if b.starts_with(b"3gp") || b.starts_with(b"3g2") || b.starts_with(b"3ge") => {
            (Video, "3gp")
        }
        b if b.starts_with(b"3gg") || b.starts_with(b"3gs") => (Video, "3gp"),
        b"mp41" | b"mp42" | b"isom" | b"iso2" | b"iso3" | b"iso4" | b"iso5" | b"iso6" | b"iso7"
        | b"iso8" | b"iso9" | b"avc1" | b"M4V " | b"M4VH" | b"M4VP" | b"mmp4" | b"MSNV"
        | b"XAVC" | b"dash" | b"f4v " | b"NDAS" | b"vfj1" | b"hvc1" | b"av01" => (Video, "mp4"),
        _ => return None,
    })
}

/// The kind and format a file's extension suggests (case-insensitive), for files whose
/// content [`sniff`] does not recognise, and to name TIFF-based RAW formats.
pub fn format_from_extension(name: &str) -> Option<(MediaKind, &'static str)> {
    use MediaKind::*;
    let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "jpg" | "jpeg" | "jpe" | "jfif" => (Photo, "jpeg"),
        "png" => (Photo, "png"),
        "gif" => (Photo, "gif"),
        "webp" => (Photo, "webp"),
        "heic" => (Photo, "heic"),
        "heif" | "hif" => (Photo, "heif"),
        "avif" => (Photo, "avif"),
        "jxl" => (Photo, "jxl"),
        "tif" | "tiff" => (Photo, "tiff"),
        "dng" => (Raw, "dng"),
        "nef" => (Raw, "nef"),
        "nrw" => (Raw, "nrw"),
        "cr2" => (Raw, "cr2"),
        "cr3" => (Raw, "cr3"),
        "crw" => (Raw, "crw"),
        "arw" => (Raw, "arw"),
        "srf" => (Raw, "srf"),
        "sr2" => (Raw, "sr2"),
        "orf" => (Raw, "orf"),
        "rw2" => (Raw, "rw2"),
        "raw" => (Raw, "raw"),
        "pef" => (Raw, "pef"),
        "raf" => (Raw, "raf"),
        "srw" => (Raw, "srw"),
        "3fr" => (Raw, "3fr"),
        "erf" => (Raw, "erf"),
        "kdc" => (Raw, "kdc"),
        "mrw" => (Raw, "mrw"),
        "x3f" => (Raw, "x3f"),
        "iiq" => (Raw, "iiq"),
        "mp4" | "m4v" => (Video, "mp4"),
        "mov" | "qt" => (Video, "mov"),
        "3gp" | "3g2" | "3gpp" => (Video, "3gp"),
        "mkv" => (Video, "mkv"),
        "webm" => (Video, "webm"),
        "avi" => (Video, "avi"),
        "mts" | "m2ts" => (Video, "mts"),
        _ => return None,
    })
}

/// Combine what the content and the extension say. `None` when neither says media.
pub(crate) fn classify(header: &[u8], name: &str) -> Option<(MediaKind, &'static str)> {
    let by_ext = format_from_extension(name);
    match (sniff(header), by_ext) {
        // A TIFF header under a RAW extension is that RAW (DNG, NEF, ARW, PEF, SRW, ...).
        (Some((_, "tiff")), Some((MediaKind::Raw, raw))) => Some((MediaKind::Raw, raw)),
        (Some(found), _) => Some(found),
        (None, ext) => ext,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brands() {
        let ftyp = |major: &[u8; 4], compat: &[u8]| {
            let mut v = Vec::new();
            v.extend_from_slice(&((16 + compat.len()) as u32).to_be_bytes());
            v.extend_from_slice(b"ftyp");
            v.extend_from_slice(major);
            v.extend_from_slice(&[0, 0, 0, 0]);
            v.extend_from_slice(compat);
            v
        };
        assert_eq!(
            sniff(&ftyp(b"heic", b"mif1heic")),
            Some((MediaKind::Photo, "heic"))
        );
        assert_eq!(
            sniff(&ftyp(b"mif1", b"mif1heic")),
            Some((MediaKind::Photo, "heic"))
        );
        assert_eq!(
            sniff(&ftyp(b"mif1", b"mif1avif")),
            Some((MediaKind::Photo, "avif"))
        );
        assert_eq!(
            sniff(&ftyp(b"mif1", b"mif1miaf")),
            Some((MediaKind::Photo, "heif"))
        );
        assert_eq!(
            sniff(&ftyp(b"avif", b"mif1avif")),
            Some((MediaKind::Photo, "avif"))
        );
        assert_eq!(
            sniff(&ftyp(b"crx ", b"crx isom")),
            Some((MediaKind::Raw, "cr3"))
        );
        assert_eq!(
            sniff(&ftyp(b"qt  ", b"qt  ")),
            Some((MediaKind::Video, "mov"))
        );
        assert_eq!(
            sniff(&ftyp(b"3gp4", b"isom3gp4")),
            Some((MediaKind::Video, "3gp"))
        );
        assert_eq!(
            sniff(&ftyp(b"mp42", b"isommp42")),
            Some((MediaKind::Video, "mp4"))
        );
        assert_eq!(
            sniff(&ftyp(b"zzzz", b"mp42isom")),
            Some((MediaKind::Video, "mp4"))
        );
        assert_eq!(sniff(&ftyp(b"M4A ", b"M4A mp42isom")), None);
        assert_eq!(sniff(&ftyp(b"zzzz", b"yyyy")), None);
        assert_eq!(
            sniff(b"\0\0\x0f\x17moov\0\0\0\x6cmvhd"),
            Some((MediaKind::Video, "mov"))
        );
        assert_eq!(
            sniff(b"\0\0\0\x08wide\0\0\0\0mdat"),
            Some((MediaKind::Video, "mov"))
        );
    }

    #[test]
    fn raw_by_extension() {
        assert_eq!(
            classify(b"II*\0\x08\0\0\0", "X.NEF"),
            Some((MediaKind::Raw, "nef"))
        );
        assert_eq!(
            classify(b"MM\0*\0\0\0\x08", "x.dng"),
            Some((MediaKind::Raw, "dng"))
        );
        assert_eq!(
            classify(b"MM\0*\0\0\0\x08", "x.tif"),
            Some((MediaKind::Photo, "tiff"))
        );
        assert_eq!(
            classify(b"random", "x.MOV"),
            Some((MediaKind::Video, "mov"))
        );
        assert_eq!(classify(b"random", "x.txt"), None);
        assert_eq!(
            classify(&[0xFF, 0xD8, 0xFF, 0xE0], "x.txt"),
            Some((MediaKind::Photo, "jpeg"))
        );
    }
}
