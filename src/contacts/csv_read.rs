//! Contact CSV exports (Google, Outlook in several languages, Thunderbird, generic), read by
//! their header names, never by position. Columns we recognise become vCard properties; every
//! other non-empty column is kept as an `X-CSV-<column>` property and reported, so nothing in
//! the file is silently dropped.

use super::model::{Contact, Param, Property, Value};
use super::text::{decode_guess, escape_raw_newlines, normalize_file_bytes};
use super::{Diagnostic, ReadOutcome};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq)]
enum Col {
    Given,
    Middle,
    Family,
    Prefix,
    Suffix,
    FullName,
    Nickname,
    Org,
    Dept,
    JobTitle,
    Role,
    Note,
    Birthday,
    Categories,
    /// E-mail value; the key pairs it with a Google "E-mail 1 - Label" column.
    Email(String),
    /// Phone value with a type from the header, and a pairing key.
    Tel(String, Vec<String>),
    Url(String),
    /// Label/Type column for the pairing key.
    Label(String),
    /// Address component (index into ADR) for an address key (kind).
    Adr(String, usize),
    AdrFormatted(String),
    Unknown(String),
}

fn words(h: &str) -> Vec<String> {
    h.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

fn has(w: &[String], any: &[&str]) -> bool {
    w.iter().any(|x| any.contains(&x.as_str()))
}

fn adr_kind(w: &[String]) -> String {
    if has(w, &["business", "work", "geschäftlich", "office"]) {
        "WORK".into()
    } else if has(w, &["home", "privat", "private", "personal"]) {
        "HOME".into()
    } else if has(
        w,
        &[
            "other",
            "weitere",
            "weiterer",
            "weiteres",
            "weiteresr",
            "weiteres/r",
        ],
    ) {
        "OTHER".into()
    } else {
        String::new()
    }
}

fn adr_component(w: &[String]) -> Option<usize> {
    if has(w, &["po", "postfach", "pobox"]) {
        Some(0)
    } else if has(w, &["extended"]) {
        Some(1)
    } else if has(w, &["street", "straße", "strasse", "address", "adresse"]) {
        Some(2)
    } else if has(w, &["city", "ort", "stadt", "town"]) {
        Some(3)
    } else if has(w, &["country", "land"]) {
        Some(6)
    } else if has(w, &["state", "region", "bundesland", "kanton", "province"]) {
        Some(4)
    } else if has(
        w,
        &[
            "zip",
            "zipcode",
            "postal",
            "postleitzahl",
            "postcode",
            "plz",
        ],
    ) {
        Some(5)
    } else {
        None
    }
}

fn tel_types(w: &[String]) -> Vec<String> {
    let mut t = Vec::new();
    if has(w, &["mobile", "mobiltelefon", "handy", "cell", "mobil"]) {
        t.push("CELL");
    }
    if has(w, &["fax"]) {
        t.push("FAX");
    }
    if has(w, &["pager"]) {
        t.push("PAGER");
    }
    if has(w, &["business", "work", "geschäftlich", "firma", "company"]) {
        t.push("WORK");
    }
    if has(w, &["home", "privat"]) {
        t.push("HOME");
    }
    if has(w, &["car", "autotelefon"]) {
        t.push("CAR");
    }
    if has(w, &["isdn"]) {
        t.push("ISDN");
    }
    if has(w, &["video"]) {
        t.push("VIDEO");
    }
    t.into_iter().map(str::to_string).collect()
}

fn classify(header: &str) -> Col {
    let h = header.trim().to_lowercase();
    // Google: "Phone 1 - Value", "E-mail 2 - Label", "Address 1 - City", ...
    if let Some((left, right)) = h.split_once(" - ") {
        let key = left.trim().to_string();
        let lw = words(left);
        let rw = words(right);
        let right = right.trim();
        if right == "label" || right == "type" {
            return Col::Label(key);
        }
        if lw.iter().any(|x| x.contains("mail")) && right == "value" {
            return Col::Email(key);
        }
        if has(&lw, &["phone"]) && right == "value" {
            return Col::Tel(key, Vec::new());
        }
        if has(&lw, &["website"]) && right == "value" {
            return Col::Url(key);
        }
        if has(&lw, &["address"]) {
            if right == "formatted" {
                return Col::AdrFormatted(key);
            }
            if let Some(i) = adr_component(&rw) {
                return Col::Adr(key, i);
            }
        }
        if has(&lw, &["organization", "organisation"]) {
            match right {
                "name" => return Col::Org,
                "title" => return Col::JobTitle,
                "department" => return Col::Dept,
                _ => {}
            }
        }
        return Col::Unknown(header.trim().to_string());
    }
    let w = words(&h);
    match h.as_str() {
        "first name" | "given name" | "vorname" | "firstname" => return Col::Given,
        "middle name" | "additional name" | "weitere vornamen" => return Col::Middle,
        "last name" | "family name" | "surname" | "nachname" | "lastname" => return Col::Family,
        "title" | "name prefix" | "prefix" | "anrede" => return Col::Prefix,
        "suffix" | "name suffix" => return Col::Suffix,
        "name" | "display name" | "full name" | "anzeigename" | "formatted name" => {
            return Col::FullName
        }
        "nickname" | "spitzname" => return Col::Nickname,
        "company" | "organization" | "organisation" | "organization name" | "firma" => {
            return Col::Org
        }
        "department" | "organization department" | "abteilung" => return Col::Dept,
        "job title" | "organization title" | "position" => return Col::JobTitle,
        "occupation" | "beruf" | "profession" => return Col::Role,
        "notes" | "note" | "notizen" | "notiz" => return Col::Note,
        "birthday" | "geburtstag" => return Col::Birthday,
        "categories" | "kategorien" | "labels" | "group membership" => return Col::Categories,
        _ => {}
    }
    if w.iter().any(|x| x.contains("mail")) {
        if has(&w, &["type", "typ"]) {
            return Col::Unknown(header.trim().to_string());
        }
        return Col::Email(header.trim().to_lowercase());
    }
    if w.iter()
        .any(|x| x.contains("phone") || x.contains("telefon"))
        || has(
            &w,
            &[
                "fax",
                "pager",
                "mobile",
                "handy",
                "isdn",
                "callback",
                "rückmeldung",
                "autotelefon",
                "haupttelefon",
            ],
        )
    {
        return Col::Tel(header.trim().to_lowercase(), tel_types(&w));
    }
    if w.iter()
        .any(|x| x.starts_with("web") || x == "url" || x == "homepage")
    {
        return Col::Url(header.trim().to_lowercase());
    }
    if let Some(i) = adr_component(&w) {
        return Col::Adr(adr_kind(&w), i);
    }
    Col::Unknown(header.trim().to_string())
}

/// `* Home` (Google marks the preferred value with a star) → TYPE values.
fn label_types(label: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut l = label.trim();
    if let Some(rest) = l.strip_prefix('*') {
        out.push("PREF".to_string());
        l = rest.trim();
    }
    for w in words(l) {
        let t = match w.as_str() {
            "mobile" | "cell" => "CELL".to_string(),
            other => other
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect::<String>()
                .to_ascii_uppercase(),
        };
        if !t.is_empty() && !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

fn split_multi(v: &str) -> Vec<String> {
    v.split(":::")
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn x_name(header: &str) -> String {
    let s: String = header
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '-'
            }
        })
        .collect();
    let s = s.trim_matches('-').to_string();
    format!("X-CSV-{}", if s.is_empty() { "COLUMN".into() } else { s })
}

/// Normalise a birthday to ISO `YYYY-MM-DD` when we can read it; None when it is not a date
/// (Outlook writes `0.0.00` for "none").
fn parse_date(s: &str) -> Option<String> {
    let s = s.trim();
    let nums: Vec<&str> = s.split(['-', '.', '/']).collect();
    if nums.len() != 3
        || nums
            .iter()
            .any(|n| n.is_empty() || !n.chars().all(|c| c.is_ascii_digit()))
    {
        return None;
    }
    let n: Vec<u32> = nums.iter().filter_map(|x| x.parse().ok()).collect();
    if n.len() != 3 {
        return None;
    }
    let (y, m, d) = if nums[0].len() == 4 {
        (n[0], n[1], n[2])
    } else if nums[2].len() == 4 && s.contains('/') {
        (n[2], n[0], n[1]) // US m/d/yyyy (Outlook en-US)
    } else if nums[2].len() == 4 {
        (n[2], n[1], n[0]) // d.m.yyyy
    } else {
        return None;
    };
    ((1..=12).contains(&m) && (1..=31).contains(&d) && y > 0)
        .then(|| format!("{y:04}-{m:02}-{d:02}"))
}

fn prop(name: &str, params: Vec<Param>, value: Value) -> Property {
    Property {
        group: None,
        name: name.to_string(),
        params,
        value,
    }
}

fn type_param(types: &[String]) -> Vec<Param> {
    if types.is_empty() {
        Vec::new()
    } else {
        vec![Param {
            name: "TYPE".into(),
            values: types.to_vec(),
        }]
    }
}

/// Read a CSV export into `out`.
pub fn read_csv(file: &str, bytes: &[u8], out: &mut ReadOutcome) {
    let data = normalize_file_bytes(bytes);
    let (text, latin) = decode_guess(&data);
    if latin {
        out.warnings.push(Diagnostic {
            file: file.into(),
            line: None,
            message: "not valid UTF-8; read as Windows-1252".into(),
        });
    }
    let text = text.trim_start_matches('\u{feff}');
    let first_line = text.lines().next().unwrap_or("");
    let delim = [b',', b';', b'\t']
        .into_iter()
        .max_by_key(|d| first_line.bytes().filter(|b| b == d).count())
        .unwrap_or(b',');
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(delim)
        .flexible(true)
        .has_headers(true)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = match rdr.headers() {
        Ok(h) => h.iter().map(str::to_string).collect(),
        Err(e) => {
            out.rejected.push(Diagnostic {
                file: file.into(),
                line: Some(1),
                message: format!("cannot read the CSV header: {e}"),
            });
            return;
        }
    };
    if headers.iter().all(|h| h.trim().is_empty()) {
        out.rejected.push(Diagnostic {
            file: file.into(),
            line: None,
            message: "empty CSV file: no header, no contacts".into(),
        });
        return;
    }
    let cols: Vec<Col> = headers.iter().map(|h| classify(h)).collect();
    let mut unknown_used: Vec<String> = Vec::new();
    let mut rows = 0;
    for rec in rdr.records() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                out.warnings.push(Diagnostic {
                    file: file.into(),
                    line: e.position().map(|p| p.line() as usize),
                    message: format!("CSV row skipped: {e}"),
                });
                continue;
            }
        };
        let line = rec.position().map(|p| p.line() as usize).unwrap_or(0);
        if rec.iter().all(|v| v.trim().is_empty()) {
            continue;
        }
        rows += 1;
        if rec.iter().skip(headers.len()).any(|v| !v.trim().is_empty()) {
            out.warnings.push(Diagnostic {
                file: file.into(),
                line: Some(line),
                message: format!(
                    "row has {} fields, header {}; extra fields kept as X-CSV-EXTRA",
                    rec.len(),
                    headers.len()
                ),
            });
        }
        let c = build_contact(file, line, &headers, &cols, &rec, &mut unknown_used);
        if c.properties.is_empty() {
            out.rejected.push(Diagnostic {
                file: file.into(),
                line: Some(line),
                message: "CSV row without any usable value skipped".into(),
            });
        } else {
            out.contacts.push(c);
        }
    }
    if rows == 0 {
        out.warnings.push(Diagnostic {
            file: file.into(),
            line: None,
            message: "CSV file has a header but no contacts".into(),
        });
    }
    for u in unknown_used {
        if !out.unknown_csv_columns.contains(&u) {
            out.unknown_csv_columns.push(u);
        }
    }
}

fn build_contact(
    file: &str,
    line: usize,
    headers: &[String],
    cols: &[Col],
    rec: &csv::StringRecord,
    unknown_used: &mut Vec<String>,
) -> Contact {
    let get = |i: usize| rec.get(i).map(str::trim).unwrap_or("");
    let mut labels: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (i, c) in cols.iter().enumerate() {
        if let Col::Label(k) = c {
            labels.insert(k.clone(), label_types(get(i)));
        }
    }
    let mut n = vec![String::new(); 5]; // family, given, middle, prefix, suffix
    let mut fn_ = String::new();
    let (mut org, mut dept) = (String::new(), String::new());
    let mut props: Vec<Property> = Vec::new();
    let mut adrs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut tail: Vec<Property> = Vec::new();
    for (i, c) in cols.iter().enumerate() {
        let v = get(i);
        if v.is_empty() {
            continue;
        }
        let set = |slot: &mut String| {
            if slot.is_empty() {
                *slot = v.to_string()
            } else {
                slot.push(' ');
                slot.push_str(v)
            }
        };
        match c {
            Col::Family => set(&mut n[0]),
            Col::Given => set(&mut n[1]),
            Col::Middle => set(&mut n[2]),
            Col::Prefix => set(&mut n[3]),
            Col::Suffix => set(&mut n[4]),
            Col::FullName => set(&mut fn_),
            Col::Org => set(&mut org),
            Col::Dept => set(&mut dept),
            Col::Nickname => props.push(prop("NICKNAME", vec![], Value::List(vec![v.into()]))),
            Col::JobTitle => props.push(prop("TITLE", vec![], Value::Text(v.into()))),
            Col::Role => props.push(prop("ROLE", vec![], Value::Text(v.into()))),
            Col::Note => tail.push(prop("NOTE", vec![], Value::Text(v.into()))),
            Col::Birthday => match parse_date(v) {
                Some(d) => props.push(prop("BDAY", vec![], Value::Raw(d))),
                None if v
                    .trim_matches(|c: char| c == '0' || c == '.' || c == '/')
                    .is_empty() => {}
                None => tail.push(prop(
                    "X-CSV-BIRTHDAY",
                    vec![],
                    Value::Raw(escape_raw_newlines(v)),
                )),
            },
            Col::Categories => {
                let cats: Vec<String> = split_multi(v)
                    .into_iter()
                    .map(|s| s.trim_start_matches('*').trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
                if !cats.is_empty() {
                    tail.push(prop("CATEGORIES", vec![], Value::List(cats)));
                }
            }
            Col::Email(k) => {
                let t = labels.get(k).cloned().unwrap_or_default();
                for e in split_multi(v) {
                    if e.contains('@') {
                        props.push(prop("EMAIL", type_param(&t), Value::Text(e)));
                    } else {
                        // Not an address (an Outlook display name, "n/a"): kept, not as EMAIL.
                        tail.push(prop(
                            &x_name(&headers[i]),
                            vec![],
                            Value::Raw(escape_raw_newlines(&e)),
                        ));
                    }
                }
            }
            Col::Tel(k, types) => {
                let mut t = types.clone();
                for l in labels.get(k).cloned().unwrap_or_default() {
                    if !t.contains(&l) {
                        t.push(l);
                    }
                }
                for num in split_multi(v) {
                    props.push(prop("TEL", type_param(&t), Value::Text(num)));
                }
            }
            Col::Url(_) => {
                for u in split_multi(v) {
                    props.push(prop("URL", vec![], Value::Raw(escape_raw_newlines(&u))));
                }
            }
            Col::Adr(k, idx) => {
                let a = adrs
                    .entry(k.clone())
                    .or_insert_with(|| vec![String::new(); 7]);
                if a[*idx].is_empty() {
                    a[*idx] = v.to_string();
                } else {
                    a[*idx].push('\n');
                    a[*idx].push_str(v);
                }
            }
            Col::AdrFormatted(k) => {
                let t = labels.get(k).cloned().unwrap_or_default();
                tail.push(prop("LABEL", type_param(&t), Value::Text(v.into())));
            }
            Col::Label(_) => {}
            Col::Unknown(h) => {
                if !unknown_used.contains(h) {
                    unknown_used.push(h.clone());
                }
                tail.push(prop(&x_name(h), vec![], Value::Raw(escape_raw_newlines(v))));
            }
        }
    }
    for i in headers.len()..rec.len() {
        let v = get(i);
        if !v.is_empty() {
            tail.push(prop(
                "X-CSV-EXTRA",
                vec![],
                Value::Raw(escape_raw_newlines(v)),
            ));
        }
    }
    let mut c = Contact {
        properties: Vec::new(),
        origin: format!("{file}:{line}"),
    };
    if !fn_.is_empty() {
        c.properties.push(prop("FN", vec![], Value::Text(fn_)));
    }
    if n.iter().any(|s| !s.is_empty()) {
        c.properties.push(prop(
            "N",
            vec![],
            Value::Structured(n.into_iter().map(|s| vec![s]).collect()),
        ));
    }
    if !org.is_empty() || !dept.is_empty() {
        let mut comps = vec![vec![org]];
        if !dept.is_empty() {
            comps.push(vec![dept]);
        }
        c.properties
            .push(prop("ORG", vec![], Value::Structured(comps)));
    }
    c.properties.extend(props);
    for (kind, comps) in adrs {
        let kind_types: Vec<String> = if kind.is_empty() {
            Vec::new()
        } else if let Some(t) = label_types_for_key(&kind) {
            t
        } else {
            labels.get(&kind).cloned().unwrap_or_default()
        };
        c.properties.push(prop(
            "ADR",
            type_param(&kind_types),
            Value::Structured(comps.into_iter().map(|s| vec![s]).collect()),
        ));
    }
    c.properties.extend(tail);
    c
}

/// Address kinds from Outlook-style headers are already TYPE values; Google's keys ("address
/// 1") are not and take their type from the paired label column.
fn label_types_for_key(kind: &str) -> Option<Vec<String>> {
    matches!(kind, "WORK" | "HOME" | "OTHER").then(|| vec![kind.to_string()])
}
