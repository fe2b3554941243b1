//! Unit tests of the building blocks (folding, QP, charsets, escapes, line splitting). Whole-file
//! behaviour is tested in tests/contacts_robust.rs, oracles in tests/contacts_oracles.rs.

use super::text::{decode_bytes, escape_text, phone_key, split_lines, split_unescaped, unescape};
use super::vcard_write::push_line;
use super::*;

fn lines_of(out: &[u8]) -> Vec<&[u8]> {
    let mut v: Vec<&[u8]> = out.split(|&b| b == b'\n').collect();
    v.pop();
    v
}

#[test]
fn folding_keeps_lines_within_75_octets_and_never_splits_utf8() {
    for prefix in 0..8 {
        let value: String = "x".repeat(prefix) + &"ä€😀".repeat(60);
        let line = format!("NOTE:{value}");
        let mut out = Vec::new();
        push_line(&mut out, line.as_bytes(), false);
        let mut unfolded = Vec::new();
        for (i, l) in lines_of(&out).into_iter().enumerate() {
            assert!(l.ends_with(b"\r"), "CRLF");
            let l = &l[..l.len() - 1];
            assert!(l.len() <= 75, "line of {} octets", l.len());
            // Every physical line is valid UTF-8 on its own: no sequence was split.
            assert!(std::str::from_utf8(l).is_ok());
            if i > 0 {
                assert_eq!(l[0], b' ');
                unfolded.extend_from_slice(&l[1..]);
            } else {
                unfolded.extend_from_slice(l);
            }
        }
        assert_eq!(unfolded, line.as_bytes());
    }
}

#[test]
fn short_lines_are_not_folded() {
    let mut out = Vec::new();
    push_line(&mut out, &[b'a'; 75], false);
    assert_eq!(out.len(), 77);
    let mut out = Vec::new();
    push_line(&mut out, &[b'a'; 76], false);
    assert_eq!(out, [&[b'a'; 75][..], b"\r\n a\r\n"].concat());
}

#[test]
fn line_splitting_accepts_lf_crlf_cr_and_crcrlf() {
    let want: Vec<&[u8]> = vec![b"A", b"", b"B"];
    for input in [
        &b"A\n\nB\n"[..],
        b"A\r\n\r\nB\r\n",
        b"A\r\r\n\r\r\nB",
        b"A\r\rB\r",
    ] {
        let got: Vec<&[u8]> = split_lines(input).into_iter().map(|(_, l)| l).collect();
        assert_eq!(got, want, "{input:?}");
    }
    let numbered = split_lines(b"a\nb\nc");
    assert_eq!(
        numbered.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        [1, 2, 3]
    );
}

#[test]
fn escapes_round_trip() {
    for s in [
        "a,b;c\\d\ne",
        "C:\\path",
        "trailing\\",
        "\\n literal",
        "quote\"",
        "",
    ] {
        assert_eq!(unescape(&escape_text(s, false)), s, "{s:?}");
        assert_eq!(
            unescape(&escape_text(s, true)),
            s.replace("\\,", ","),
            "{s:?}"
        );
    }
    assert_eq!(unescape(r"a\,b\;c\nd\\e\x"), "a,b;c\nd\\e\\x");
    assert_eq!(split_unescaped(r"a\;b;c", ';'), vec![r"a\;b", "c"]);
}

#[test]
fn charsets_decode_and_fall_back() {
    assert_eq!(decode_bytes(b"Gr\xfc\xdfe", Some("ISO-8859-1")).0, "Grüße");
    assert_eq!(
        decode_bytes(b"\x93hi\x94", Some("windows-1252")).0,
        "\u{201c}hi\u{201d}"
    );
    assert_eq!(
        decode_bytes(b"\x88\xc0\x93\xa1", Some("SHIFT_JIS")).0,
        "安藤"
    );
    let (s, note) = decode_bytes(b"caf\xe9", None);
    assert_eq!(s, "café");
    assert!(note.unwrap().contains("Windows-1252"));
    let (s, note) = decode_bytes("café".as_bytes(), None);
    assert_eq!((s.as_str(), note), ("café", None));
    let (s, note) = decode_bytes(b"abc", Some("X-NO-SUCH-CHARSET"));
    assert_eq!(s, "abc");
    assert!(note.unwrap().contains("unknown charset"));
}

#[test]
fn phone_keys_ignore_prefixes() {
    assert_eq!(phone_key("+49 151 2345 6789"), phone_key("0151-23456789"));
    assert_eq!(phone_key("(404) 555-1212"), "045551212");
    assert_eq!(phone_key("no digits"), "");
}

#[test]
fn qp_soft_breaks_and_truncated_qp() {
    let card = b"BEGIN:VCARD\r\nVERSION:2.1\r\nNOTE;ENCODING=QUOTED-PRINTABLE:Now's the time =\r\nfor all=\r\n to come\r\nFN;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:=C3=91=\r\n=C3=91\r\nEND:VCARD\r\n";
    let o = read_export("a.vcf", card);
    assert_eq!(o.contacts.len(), 1);
    let c = &o.contacts[0];
    assert_eq!(
        c.first_text("NOTE").unwrap(),
        "Now's the time for all to come"
    );
    assert_eq!(c.first_text("FN").unwrap(), "ÑÑ");
    // Truncated QP at the end of the file: kept as far as it goes, no panic.
    let o = read_export(
        "t.vcf",
        b"BEGIN:VCARD\r\nVERSION:2.1\r\nN;ENCODING=QUOTED-PRINTABLE:=E5=B",
    );
    assert_eq!(o.contacts.len(), 1);
    assert!(o.warnings.iter().any(|w| w.message.contains("END:VCARD")));
}

#[test]
fn version_parses() {
    assert_eq!("2.1".parse::<VcardVersion>().unwrap(), VcardVersion::V21);
    assert_eq!("3.0".parse::<VcardVersion>().unwrap(), VcardVersion::V30);
    assert_eq!("4.0".parse::<VcardVersion>().unwrap(), VcardVersion::V40);
    assert!("5.0".parse::<VcardVersion>().is_err());
    assert_eq!(VcardVersion::default(), VcardVersion::V30);
}

#[test]
fn contacts_file_names() {
    for n in ["a.vcf", "B.VCF", "c.vcard", "d.CSV", "x/y/contacts.Vcf"] {
        assert!(is_contacts_file(n), "{n}");
    }
    for n in ["a.jpg", "vcf", "a.vcf.bak", "a.txt"] {
        assert!(!is_contacts_file(n), "{n}");
    }
}
