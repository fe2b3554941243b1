//! Behaviour of the contacts library on whole files: the inputs the issue lists (2.1 QP, 3.0
//! Apple groups, 4.0 URIs, Google/Outlook CSV, charsets, UTF-16), broken input (never a panic,
//! never a silently dropped contact), merging, and proptest fuzzing of both readers.

use proptest::prelude::*;
use sdexport::contacts::{
    export, merge, read_export, write_vcf, Contact, ExportOptions, Value, VcardVersion,
};
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn out_str(inputs: &[(&str, &[u8])], version: VcardVersion, merge: bool) -> String {
    let inputs: Vec<(String, Vec<u8>)> = inputs
        .iter()
        .map(|(n, b)| (n.to_string(), b.to_vec()))
        .collect();
    let (out, _) = export(&inputs, &ExportOptions { version, merge });
    String::from_utf8(out).expect("output is UTF-8")
}

fn v30(input: &[u8]) -> String {
    out_str(&[("in.vcf", input)], VcardVersion::V30, true)
}

fn sample(name: &str) -> Vec<u8> {
    std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("testdata/contacts")
            .join(name),
    )
    .unwrap()
}

fn assert_strict(out: &str) {
    for l in out.split("\r\n") {
        assert!(l.len() <= 75, "line over 75 octets: {l:?}");
        assert!(
            !l.contains('\n') && !l.contains('\r'),
            "bare line break in {l:?}"
        );
    }
    assert!(out.is_empty() || out.ends_with("\r\n"));
}

// ---- inputs the issue lists ------------------------------------------------------------------

#[test]
fn android_21_qp_photo_and_bare_params() {
    let out = v30(&sample("ezvcard_John_Doe_ANDROID.vcf"));
    assert_strict(&out);
    assert!(!out.to_uppercase().contains("QUOTED-PRINTABLE"));
    assert!(out.contains("FN:Ñ Ñ Ñ Ñ Ñ Ñ Ñ Ñ Ñ Ñ Ñ\r\n"), "{out}");
    assert!(out.contains("TEL;TYPE=CELL,PREF:123456789\r\n"));
    assert!(out.contains("PHOTO;ENCODING=b;TYPE=JPEG:/9j/"));
}

#[test]
fn apple_30_groups_labels_escapes_and_photo() {
    let out = v30(&sample("ezvcard_John_Doe_IPHONE.vcf"));
    assert_strict(&out);
    assert!(out.contains("item2.TEL:905-222-1234\r\n"));
    assert!(out.contains("item2.X-ABLABEL:_$!<AssistantPhone>!$_\r\n"));
    assert!(
        out.contains("item4.ADR;TYPE=WORK:;;Street4\\nBuilding 6\\nFloor 8;New York;;12345;USA")
    );
    assert!(out.contains("PHOTO;ENCODING=b;TYPE=JPEG:"));
    assert!(out.contains("N:Doe;John;Richter,James;Mr.;Sr.\r\n"));
}

#[test]
fn vcard_40_uris_kind_and_languages() {
    let input = b"BEGIN:VCARD\r\nVERSION:4.0\r\nKIND:individual\r\nFN;LANGUAGE=en:Jane\r\nFN;LANGUAGE=ja:\xe3\x82\xb8\xe3\x82\xa7\xe3\x83\xbc\xe3\x83\xb3\r\nTEL;VALUE=uri;TYPE=cell:tel:+1-555-555-5555\r\nPHOTO:data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAE=\r\nEND:VCARD\r\n";
    let out = v30(input);
    assert!(out.contains("FN;LANGUAGE=en:Jane\r\n"));
    assert!(out.contains("FN;LANGUAGE=ja:ジェーン\r\n"));
    assert!(out.contains("TEL;TYPE=cell:+1-555-555-5555\r\n"), "{out}");
    assert!(out.contains("PHOTO;ENCODING=b;TYPE=PNG:iVBORw0KGgoAAAANSUhEUgAAAAE=\r\n"));
    assert!(out.contains("KIND:individual\r\n"));
    let out4 = out_str(&[("in.vcf", input)], VcardVersion::V40, true);
    assert!(
        out4.contains("TEL;VALUE=uri;TYPE=cell:tel:+1-555-555-5555\r\n"),
        "{out4}"
    );
    assert!(out4.contains("PHOTO:data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAE=\r\n"));
}

#[test]
fn missing_fn_and_n_are_derived() {
    let out = v30(b"BEGIN:VCARD\r\nVERSION:3.0\r\nN:Doe;John;;;\r\nEND:VCARD\r\nBEGIN:VCARD\r\nVERSION:3.0\r\nFN:Jane Roe\r\nEND:VCARD\r\nBEGIN:VCARD\r\nVERSION:3.0\r\nEMAIL:x@example.org\r\nEND:VCARD\r\n");
    assert!(out.contains("FN:John Doe\r\nN:Doe;John;;;\r\n"), "{out}");
    assert!(out.contains("FN:Jane Roe\r\nN:Roe;Jane;;;\r\n"));
    assert!(out.contains("FN:x@example.org\r\nN:;;;;\r\n"));
}

#[test]
fn structured_values_keep_separators_and_text_is_escaped() {
    let out = v30(b"BEGIN:VCARD\nVERSION:3.0\nFN:A\nORG:Acme\\, Inc.;R&D\nNOTE:one\\ntwo\\; three\\, four\nX-CUSTOM;X-P=\"a:b\":raw\\,value\nEND:VCARD\n");
    assert!(out.contains("ORG:Acme\\, Inc.;R&D\r\n"), "{out}");
    assert!(out.contains("NOTE:one\\ntwo\\; three\\, four\r\n"));
    assert!(out.contains("X-CUSTOM;X-P=\"a:b\":raw\\,value\r\n"));
}

/// Each reader must see in the output what it saw in the input: vobject stops a text at a bare
/// comma and keeps an unknown escape like `\B`, ez-vcard reads on; so bare commas stay bare,
/// escaped ones stay escaped, and a lone backslash stays alone.
#[test]
fn commas_and_backslashes_are_written_as_they_were_read() {
    let out = v30(b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Doe, John\r\nNOTE:a\\, b\r\nTITLE:C:\\Temp\\\\x\r\nEND:VCARD\r\n");
    assert!(out.contains("FN:Doe, John\r\n"), "{out}");
    assert!(out.contains("NOTE:a\\, b\r\n"));
    // `\\x` was an escaped backslash before `x`: the value is `C:\Temp\x`, written the short way.
    assert!(out.contains("TITLE:C:\\Temp\\x\r\n"), "{out}");
}

#[test]
fn bom_lf_blank_lines_and_several_files() {
    let a = b"\xef\xbb\xbfBEGIN:VCARD\nVERSION:3.0\nFN:A\nEND:VCARD\n\n\nBEGIN:VCARD\nVERSION:3.0\nFN:B\nEND:VCARD\n";
    let b = b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:C\r\nEND:VCARD\r\n";
    let out = out_str(&[("a.vcf", a), ("b.vcf", b)], VcardVersion::V30, true);
    assert_eq!(out.matches("BEGIN:VCARD").count(), 3);
    assert!(out.find("FN:A").unwrap() < out.find("FN:B").unwrap());
    assert!(out.find("FN:B").unwrap() < out.find("FN:C").unwrap());
}

#[test]
fn utf16_files_with_bom() {
    let text = "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Zoë\r\nEND:VCARD\r\n";
    let le: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(text.encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    let be: Vec<u8> = [0xFE, 0xFF]
        .into_iter()
        .chain(text.encode_utf16().flat_map(u16::to_be_bytes))
        .collect();
    assert!(v30(&le).contains("FN:Zoë\r\n"));
    assert!(v30(&be).contains("FN:Zoë\r\n"));
}

#[test]
fn legacy_charsets_in_21() {
    let latin = b"BEGIN:VCARD\r\nVERSION:2.1\r\nFN;CHARSET=ISO-8859-1:J\xf6rg M\xfcller\r\nNOTE;CHARSET=ISO-8859-1;ENCODING=QUOTED-PRINTABLE:Stra=DFe=\r\n 1\r\nEND:VCARD\r\n";
    let out = v30(latin);
    assert!(out.contains("FN:Jörg Müller\r\n"), "{out}");
    assert!(out.contains("NOTE:Straße 1\r\n"));
    // Windows-1252 bytes without a CHARSET parameter: read as Windows-1252, with a warning.
    let o = read_export(
        "w.vcf",
        b"BEGIN:VCARD\r\nVERSION:2.1\r\nFN:Ren\xe9 \x80\r\nEND:VCARD\r\n",
    );
    assert_eq!(o.contacts[0].first_text("FN").unwrap(), "René €");
    assert!(o
        .warnings
        .iter()
        .any(|w| w.line == Some(3) && w.message.contains("Windows-1252")));
    // SHIFT_JIS, as old Japanese Android phones export.
    let out = v30(&sample("aosp_v21_japanese_1.vcf"));
    assert!(out.contains("N:安藤ロイド;;;;\r\n"), "{out}");
}

// ---- broken input --------------------------------------------------------------------------

#[test]
fn empty_file_is_a_rejection_not_a_panic() {
    for bytes in [&b""[..], b"\r\n\r\n", b"\xef\xbb\xbf"] {
        let o = read_export("empty.vcf", bytes);
        assert!(o.contacts.is_empty());
        assert_eq!(o.rejected.len(), 1);
        assert!(o.rejected[0].message.contains("empty"), "{:?}", o.rejected);
        assert_eq!(o.rejected[0].file, "empty.vcf");
    }
    let o = read_export("empty.csv", b"");
    assert!(o.contacts.is_empty() && o.rejected.len() == 1);
}

#[test]
fn missing_end_is_recovered_and_reported() {
    let input = b"BEGIN:VCARD\nVERSION:3.0\nFN:A\nBEGIN:VCARD\nVERSION:3.0\nFN:B\nEND:VCARD\nBEGIN:VCARD\nFN:C\n";
    let o = read_export("m.vcf", input);
    let names: Vec<String> = o
        .contacts
        .iter()
        .map(|c| c.first_text("FN").unwrap())
        .collect();
    assert_eq!(names, ["A", "B", "C"]);
    assert!(o
        .warnings
        .iter()
        .any(|w| w.line == Some(1) && w.message.contains("no END:VCARD")));
    assert!(o
        .warnings
        .iter()
        .any(|w| w.line == Some(8) && w.message.contains("end of file")));
}

#[test]
fn lines_without_colon_are_warnings_with_line_numbers() {
    let o = read_export("c.vcf", &sample("aosp_v21_invalid_comment_line.vcf"));
    assert_eq!(o.contacts.len(), 1);
    let w: Vec<_> = o
        .warnings
        .iter()
        .filter(|w| w.message.contains("without ':'"))
        .collect();
    assert_eq!(w.len(), 2, "{:?}", o.warnings);
    assert_eq!(w[0].line, Some(6));
    assert_eq!(w[0].file, "c.vcf");
    // The QP continuation that starts with '#' is part of the NOTE, not a comment.
    assert!(o.contacts[0]
        .first_text("NOTE")
        .unwrap()
        .contains("#<- sharp) example"));
}

#[test]
fn a_flood_of_broken_lines_gives_a_bounded_number_of_warnings() {
    let mut input = b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Flood\r\n".to_vec();
    for _ in 0..100_000 {
        input.extend_from_slice(b"garbage\r\n");
    }
    input.extend_from_slice(b"EMAIL:f@example.org\r\nEND:VCARD\r\n");
    let o = read_export("flood.vcf", &input);
    assert_eq!(o.contacts.len(), 1);
    assert_eq!(o.contacts[0].first_text("EMAIL").unwrap(), "f@example.org");
    assert!(o.warnings.len() <= 60, "{}", o.warnings.len());
    assert!(o
        .warnings
        .iter()
        .any(|w| w.message.starts_with("99950 more line(s)")));
}

#[test]
fn garbage_and_non_vcard_files_are_rejected_with_a_reason() {
    let o = read_export("x.vcf", b"\x00\x01garbage\xff\xfe no cards here");
    assert!(o.contacts.is_empty());
    assert!(
        o.rejected[0].message.contains("not a vCard"),
        "{:?}",
        o.rejected
    );
    let o = read_export("e.vcf", b"BEGIN:VCARD\r\nVERSION:3.0\r\nEND:VCARD\r\n");
    assert!(o.contacts.is_empty());
    assert!(o.rejected[0].message.contains("empty card"));
    assert_eq!(o.rejected[0].line, Some(1));
}

#[test]
fn ten_megabyte_lines_are_linear() {
    let big = "x".repeat(10 << 20);
    let mut input =
        format!("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Big\r\nNOTE:{big}\r\n{big}\r\nEND:VCARD\r\n")
            .into_bytes();
    // and a 10 MB folded value in 1-octet pieces (the worst case for folding)
    input.extend_from_slice(
        b"BEGIN:VCARD\r\nVERSION:2.1\r\nFN:Folded\r\nNOTE;ENCODING=QUOTED-PRINTABLE:",
    );
    for _ in 0..(1 << 20) {
        input.extend_from_slice(b"=41=\r\n");
    }
    input.extend_from_slice(b"B\r\nEND:VCARD\r\n");
    let start = Instant::now();
    let o = read_export("big.vcf", &input);
    let out = write_vcf(&o.contacts, VcardVersion::V30);
    let took = start.elapsed();
    assert_eq!(o.contacts.len(), 2);
    assert!(
        o.warnings.iter().any(|w| w.line == Some(5)),
        "the colon-less line is reported"
    );
    assert!(out.len() > 10 << 20);
    assert!(took < Duration::from_secs(20), "took {took:?}");
}

// ---- merging -------------------------------------------------------------------------------

const TWICE: &[u8] = b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Anna  Berg\r\nN:Berg;Anna;;;\r\nTEL;TYPE=CELL:+49 151 2345 6789\r\nitem1.EMAIL:anna@example.org\r\nitem1.X-ABLABEL:home\r\nEND:VCARD\r\nBEGIN:VCARD\r\nVERSION:2.1\r\nFN:anna berg\r\nN:Berg;Anna\r\nTEL;WORK:0151 23456789\r\nTEL:555 1234\r\nitem1.EMAIL:Anna@Example.org\r\nitem1.X-ABLabel:work\r\nNOTE:second\r\nEND:VCARD\r\nBEGIN:VCARD\r\nVERSION:3.0\r\nFN:Anna Berg\r\nTEL:999 9999\r\nEND:VCARD\r\n";

#[test]
fn the_same_person_twice_becomes_one_card_with_the_union() {
    let inputs = vec![("t.vcf".to_string(), TWICE.to_vec())];
    let (out, s) = export(&inputs, &ExportOptions::default());
    let out = String::from_utf8(out).unwrap();
    assert_eq!((s.read, s.written, s.merged), (3, 2, 1), "{s:?}");
    assert_eq!(s.merges.len(), 1);
    assert_eq!(
        (s.merges[0].name.as_str(), s.merges[0].count),
        ("Anna  Berg", 2)
    );
    assert_eq!(out.matches("BEGIN:VCARD").count(), 2);
    let first = &out[..out.find("END:VCARD").unwrap()];
    assert_eq!(first.matches("\r\nN:").count(), 1, "one N");
    assert!(first.contains("FN:Anna  Berg\r\n") && first.contains("FN:anna berg\r\n"));
    assert!(first.contains("TEL;TYPE=CELL:+49 151 2345 6789\r\n"));
    assert!(first.contains("TEL;TYPE=WORK:0151 23456789\r\n"));
    assert!(first.contains("TEL:555 1234\r\n"));
    assert!(first.contains("NOTE:second\r\n"));
    // The second card's item1 group clashes with the first's: it is renamed, labels stay paired.
    assert!(first.contains("item1.X-ABLABEL:home\r\n"));
    assert!(
        first.contains("item2.EMAIL:Anna@Example.org\r\nitem2.X-ABLABEL:work\r\n"),
        "{first}"
    );
}

#[test]
fn no_merge_keeps_every_card() {
    let inputs = vec![("t.vcf".to_string(), TWICE.to_vec())];
    let (out, s) = export(
        &inputs,
        &ExportOptions {
            version: VcardVersion::V30,
            merge: false,
        },
    );
    assert_eq!((s.read, s.written, s.merged), (3, 3, 0));
    assert!(s.merges.is_empty());
    assert_eq!(
        String::from_utf8(out)
            .unwrap()
            .matches("BEGIN:VCARD")
            .count(),
        3
    );
}

#[test]
fn identical_cards_merge_and_different_people_do_not() {
    let card = b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Bo\r\nEMAIL:bo@x.org\r\nEND:VCARD\r\n";
    let o = read_export("a.vcf", &[&card[..], card].concat());
    let (m, notes) = merge(o.contacts);
    assert_eq!((m.len(), notes[0].count), (1, 2));
    assert_eq!(
        m[0].properties.len(),
        2,
        "identical values are not repeated"
    );
    let other = b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Other Bo\r\nEMAIL:bo@x.org\r\nEND:VCARD\r\n";
    let o = read_export("a.vcf", &[&card[..], other].concat());
    assert_eq!(merge(o.contacts).0.len(), 2);
}

// ---- CSV -----------------------------------------------------------------------------------

#[test]
fn google_csv_multi_values_labels_and_unknown_columns() {
    let csv = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("testdata/contacts/csv/handmade_google_contacts_2024.csv"),
    )
    .unwrap();
    let inputs = vec![("google.csv".to_string(), csv)];
    let (out, s) = export(
        &inputs,
        &ExportOptions {
            version: VcardVersion::V30,
            merge: false,
        },
    );
    let out = String::from_utf8(out).unwrap();
    assert_strict(&out);
    assert!(
        out.contains("FN:Dr. Amara Nwosu\r\nN:Nwosu;Amara;;Dr.;\r\n"),
        "{out}"
    );
    assert!(out.contains("TEL;TYPE=CELL:+1 415 555 0134\r\n"));
    assert!(out.contains("TEL;TYPE=CELL:+1 415 555 0135\r\n"));
    assert!(out.contains("EMAIL;TYPE=PREF,HOME:amara.nwosu@example.com\r\n"));
    assert!(out.contains("CATEGORIES:myContacts,Family\r\n"));
    assert!(out.contains("ADR;TYPE=HOME:;;55 Elm St;Springfield;IL;62704;USA\r\n"));
    assert!(out.contains("NOTE:Prefers WhatsApp\\, not calls\r\n"));
    assert!(
        s.unknown_csv_columns
            .iter()
            .any(|c| c == "Phonetic First Name")
            || !out.contains("X-CSV-PHONETIC")
    );
}

#[test]
fn outlook_csv_by_header_names() {
    let csv = "\u{feff}Last Name,E-mail Address,Mobile Phone,First Name,Business Street,Business City,Favourite Colour\r\nDoe,jd@example.com,+1 555 0100,John,1 Main St,Springfield,blue\r\n";
    let o = read_export("outlook.csv", csv.as_bytes());
    assert_eq!(o.contacts.len(), 1);
    assert_eq!(o.unknown_csv_columns, ["Favourite Colour"]);
    let out = String::from_utf8(write_vcf(&o.contacts, VcardVersion::V30)).unwrap();
    assert!(out.contains("FN:John Doe\r\nN:Doe;John;;;\r\n"), "{out}");
    assert!(out.contains("EMAIL:jd@example.com\r\n"));
    assert!(out.contains("TEL;TYPE=CELL:+1 555 0100\r\n"));
    assert!(out.contains("ADR;TYPE=WORK:;;1 Main St;Springfield;;;\r\n"));
    assert!(out.contains("X-CSV-FAVOURITE-COLOUR:blue\r\n"));
}

#[test]
fn content_decides_over_the_extension() {
    let vcard = b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:In a CSV name\r\nEND:VCARD\r\n";
    assert_eq!(read_export("x.csv", vcard).contacts.len(), 1);
    let csv = b"Name,E-mail Address\r\nTxt Export,t@example.org\r\n";
    let o = read_export("contacts.txt", csv);
    assert_eq!(o.contacts[0].first_text("EMAIL").unwrap(), "t@example.org");
}

#[test]
fn german_outlook_csv_in_windows_1252_with_semicolons() {
    let o = read_export("de.csv", b"Vorname;Nachname;E-Mail-Adresse;Mobiltelefon\r\nJ\xfcrgen;Wei\xdf;jw@example.de;0171 1234567\r\n");
    assert_eq!(o.contacts.len(), 1);
    let out = String::from_utf8(write_vcf(&o.contacts, VcardVersion::V30)).unwrap();
    assert!(
        out.contains("FN:Jürgen Weiß\r\nN:Weiß;Jürgen;;;\r\n"),
        "{out}"
    );
    assert!(out.contains("TEL;TYPE=CELL:0171 1234567\r\n"));
    assert!(o
        .warnings
        .iter()
        .any(|w| w.message.contains("Windows-1252")));
}

// ---- fuzzing -------------------------------------------------------------------------------

fn all_samples() -> Vec<Vec<u8>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut v = Vec::new();
    for dir in ["testdata/contacts", "testdata/contacts/csv"] {
        for e in std::fs::read_dir(root.join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "vcf" || x == "csv") {
                v.push(std::fs::read(p).unwrap());
            }
        }
    }
    v
}

/// Equal bytes, or a failure naming the first line that differs.
fn same(again: &[u8], first: &[u8]) -> Result<(), TestCaseError> {
    if again == first {
        return Ok(());
    }
    let (a, b) = (
        String::from_utf8_lossy(again),
        String::from_utf8_lossy(first),
    );
    let diff = a
        .split("\r\n")
        .zip(b.split("\r\n"))
        .find(|(x, y)| x != y)
        .map(|(x, y)| format!("{x:?} (again) vs {y:?} (first)"))
        .unwrap_or_else(|| "length differs".into());
    Err(TestCaseError::fail(format!("not idempotent: {diff}")))
}

fn check_no_panic_and_idempotent(name: &str, bytes: &[u8]) -> Result<(), TestCaseError> {
    let o = read_export(name, bytes);
    for version in [VcardVersion::V30, VcardVersion::V21, VcardVersion::V40] {
        let out = write_vcf(&o.contacts, version);
        let s = std::str::from_utf8(&out).map_err(|e| TestCaseError::fail(e.to_string()))?;
        for l in s.split("\r\n") {
            prop_assert!(
                l.len() <= 75 || version == VcardVersion::V21,
                "long line {l:?}"
            );
            prop_assert!(!l.contains('\n'));
        }
        let back = read_export("out.vcf", &out);
        prop_assert_eq!(back.contacts.len(), o.contacts.len());
        same(&write_vcf(&back.contacts, version), &out)?;
    }
    Ok(())
}

/// Found by proptest: a name made only of a control character derived an FN that the
/// writer then emptied, and the re-read named the contact "Unnamed contact".
#[test]
fn r_control_only_name_is_idempotent() {
    let input = b"BEGIN:VCARD\nN;ENCODING=QUOTED-PRINTABLE:=1A\nBEGIN:VCARD\n";
    check_no_panic_and_idempotent("control.vcf", input).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        for name in ["f.vcf", "f.csv"] {
            let o = read_export(name, &bytes);
            let _ = write_vcf(&o.contacts, VcardVersion::V30);
        }
    }

    #[test]
    fn vcard_like_text_never_panics_and_round_trips(
        lines in proptest::collection::vec(
            prop_oneof![
                Just("BEGIN:VCARD".to_string()),
                Just("END:VCARD".to_string()),
                Just("VERSION:2.1".to_string()),
                Just("VERSION:4.0".to_string()),
                "[A-Za-z.;=,\"-]{0,12}:[ -~éÑ€\\\\]{0,40}",
                "N;ENCODING=QUOTED-PRINTABLE:[=0-9A-F]{0,20}=?",
                "PHOTO;ENCODING=b:[A-Za-z0-9+/=]{0,30}",
                " [ -~]{0,20}",
                "[ -~]{0,10}",
            ],
            0..30,
        ),
        crlf in any::<bool>(),
    ) {
        let text = lines.join(if crlf { "\r\n" } else { "\n" });
        check_no_panic_and_idempotent("p.vcf", text.as_bytes())?;
    }

    #[test]
    fn mutated_samples_never_panic(
        which in any::<prop::sample::Index>(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..20),
        as_csv in any::<bool>(),
    ) {
        let samples = all_samples();
        let mut bytes = samples[which.index(samples.len())].clone();
        for (at, byte, kind) in edits {
            if bytes.is_empty() { break; }
            let i = at.index(bytes.len());
            match kind {
                0 => bytes[i] = byte,
                1 => { bytes.remove(i); }
                _ => bytes.insert(i, byte),
            }
        }
        let name = if as_csv { "m.csv" } else { "m.vcf" };
        let o = read_export(name, &bytes);
        let out = write_vcf(&o.contacts, VcardVersion::V30);
        let back = read_export("out.vcf", &out);
        same(&write_vcf(&back.contacts, VcardVersion::V30), &out)?;
    }

    #[test]
    fn csv_fields_never_panic(rows in proptest::collection::vec(proptest::collection::vec("[ -~éß\\n\":;]{0,12}", 0..8), 0..8)) {
        let mut text = String::from("First Name,Last Name,E-mail 1 - Value,Phone 1 - Value,Phone 1 - Label,Notes,Weird\n");
        for r in rows {
            text.push_str(&r.iter().map(|f| format!("\"{}\"", f.replace('"', "\"\""))).collect::<Vec<_>>().join(","));
            text.push('\n');
        }
        check_no_panic_and_idempotent("c.csv", text.as_bytes())?;
    }
}

#[allow(dead_code)]
fn _uses(_: Contact, _: Value) {}
