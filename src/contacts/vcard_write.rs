//! The vCard writer: UTF-8, CRLF, lines folded at 75 octets on character boundaries.
//!
//! 3.0 (the default) never uses quoted-printable; binary data is `ENCODING=b`. 2.1 uses QP with
//! `CHARSET=UTF-8` for values that are not plain ASCII and soft line breaks to stay within 75
//! octets. 4.0 writes `data:` URIs for photos and `tel:` URIs for numbers that are valid URIs.
//! Each card gets what importers require: VERSION, FN (derived when missing) and N (derived from
//! FN when missing), and FN/N come first so that reading our own output and writing it again
//! gives the same bytes.

use super::model::{derive_name, Contact, Param, Property, Value, VcardVersion};
use super::text::{escape_raw_newlines, escape_text, escape_text_breaking, is_bad_control};
use base64::Engine;

const MAX_LINE: usize = 75;

pub fn write_vcf(contacts: &[Contact], version: VcardVersion) -> Vec<u8> {
    let mut out = Vec::new();
    for c in contacts {
        write_card(&mut out, c, version);
    }
    out
}

fn write_card(out: &mut Vec<u8>, c: &Contact, version: VcardVersion) {
    out.extend_from_slice(b"BEGIN:VCARD\r\n");
    push_line(out, format!("VERSION:{version}").as_bytes(), false);
    let props: Vec<&Property> = c.properties.iter().filter(|p| !is_empty(p)).collect();
    let fns: Vec<&Property> = props.iter().copied().filter(|p| p.name == "FN").collect();
    let ns: Vec<&Property> = props.iter().copied().filter(|p| p.name == "N").collect();
    let derived_fn;
    if fns.is_empty() {
        let name = derive_name(c).unwrap_or_else(|| "Unnamed contact".to_string());
        derived_fn = Property::text("FN", name.trim());
        write_prop(out, &derived_fn, version);
    } else {
        for p in &fns {
            write_prop(out, p, version);
        }
    }
    if ns.is_empty() && version != VcardVersion::V40 {
        let name = fns
            .first()
            .map(|p| p.plain())
            .or_else(|| derive_name(c))
            .unwrap_or_default();
        write_prop(
            out,
            &n_from_fn(name.trim(), !fns.is_empty() || has_n_source(c)),
            version,
        );
    } else {
        for p in &ns {
            write_prop(out, p, version);
        }
    }
    for p in props.iter().filter(|p| p.name != "FN" && p.name != "N") {
        write_prop(out, p, version);
    }
    out.extend_from_slice(b"END:VCARD\r\n");
}

fn has_n_source(_c: &Contact) -> bool {
    false
}

/// N from a formatted name: the last word is the family name, the rest the given name. A name
/// derived from ORG, EMAIL or TEL is not a person's name, so N stays empty then.
fn n_from_fn(fn_: &str, personal: bool) -> Property {
    let mut comps = vec![vec![String::new()]; 5];
    if personal && !fn_.is_empty() {
        match fn_.rsplit_once(' ') {
            Some((given, family)) => {
                comps[0] = vec![family.trim().to_string()];
                comps[1] = vec![given.trim().to_string()];
            }
            None => comps[0] = vec![fn_.to_string()],
        }
    }
    Property {
        group: None,
        name: "N".into(),
        params: Vec::new(),
        value: Value::Structured(comps),
    }
}

/// Nothing worth a line: empty, or only white space and characters the writer drops.
fn is_empty(p: &Property) -> bool {
    let blank = |s: &str| s.chars().all(|c| c.is_whitespace() || is_bad_control(c));
    match &p.value {
        Value::Text(s) | Value::LooseText(s) | Value::Raw(s) => blank(s),
        Value::List(v) => v.iter().all(|s| blank(s)),
        Value::Structured(c) => p.name != "N" && c.iter().flatten().all(|s| blank(s)),
        Value::Binary(b) => b.is_empty(),
    }
}

/// Keep only characters vobject accepts in names: letters, digits and `-`.
fn clean_name(s: &str) -> String {
    let t: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    t
}

fn clean_param_value(v: &str) -> String {
    v.chars()
        .map(|c| match c {
            '"' => '\'',
            '\r' | '\n' => ' ',
            c => c,
        })
        .filter(|c| !is_bad_control(*c))
        .collect()
}

fn param_value(v: &str) -> String {
    let v = clean_param_value(v);
    if v.contains([':', ';', ',']) || v.starts_with(' ') || v.ends_with(' ') {
        format!("\"{v}\"")
    } else {
        v
    }
}

fn write_params(head: &mut String, params: &[Param], version: VcardVersion) {
    for p in params {
        let name = clean_name(&p.name);
        if name.is_empty() {
            continue;
        }
        if version == VcardVersion::V21 {
            // 2.1 lists are repeated parameters; TYPE values are written bare, as phones do.
            for v in &p.values {
                let bare = clean_name(&clean_param_value(v));
                if name == "TYPE" && !is_bare_encoding(&bare) {
                    head.push_str(&format!(";{bare}"));
                } else if name == "TYPE" {
                    // `;B` alone would read back as ENCODING=B.
                    head.push_str(&format!(";TYPE={bare}"));
                } else {
                    // 2.1 cannot quote: characters that would end the value become spaces.
                    let v = clean_param_value(v).replace([';', ':', ','], " ");
                    head.push_str(&format!(";{name}={}", v.trim()));
                }
            }
        } else if p.values.is_empty() {
            continue;
        } else {
            let vals: Vec<String> = p.values.iter().map(|v| param_value(v)).collect();
            head.push_str(&format!(";{name}={}", vals.join(",")));
        }
    }
}

fn is_bare_encoding(v: &str) -> bool {
    ["QUOTED-PRINTABLE", "BASE64", "B", "8BIT", "7BIT"]
        .iter()
        .any(|e| e.eq_ignore_ascii_case(v))
}

fn mime_for(p: &Property, data: &[u8]) -> String {
    let t = p.param("TYPE").map(|t| t.to_ascii_lowercase());
    let top = match p.name.as_str() {
        "SOUND" => "audio",
        "KEY" => "application",
        _ => "image",
    };
    match t {
        Some(t) if t.contains('/') => t,
        Some(t) if top != "application" && !t.is_empty() => format!("{top}/{t}"),
        _ => sniff(data)
            .unwrap_or("application/octet-stream")
            .to_string(),
    }
}

fn sniff(data: &[u8]) -> Option<&'static str> {
    if data.starts_with(&[0xFF, 0xD8]) {
        Some("image/jpeg")
    } else if data.starts_with(b"\x89PNG") {
        Some("image/png")
    } else if data.starts_with(b"GIF8") {
        Some("image/gif")
    } else {
        None
    }
}

fn is_tel_uri_safe(s: &str) -> bool {
    !s.is_empty()
        && s.chars().any(|c| c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | '.' | '(' | ')' | ' '))
}

/// Parse `lat;lon`, `lat,lon` or `geo:lat,lon` into two numbers (as written).
fn parse_geo(v: &str) -> Option<(String, String)> {
    let v = v.trim();
    let v = if v.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("geo:")) {
        &v[4..]
    } else {
        v
    };
    let v = v
        .split(';')
        .collect::<Vec<_>>()
        .join(",")
        .replace("\\,", ",");
    let v = v.split(['?', ';']).next().unwrap_or("");
    let mut it = v.split(',').map(str::trim);
    let (lat, lon) = (it.next()?, it.next()?);
    if lat.parse::<f64>().is_ok() && lon.parse::<f64>().is_ok() {
        Some((lat.to_string(), lon.to_string()))
    } else {
        None
    }
}

/// A date or date-time ez-vcard reads in 2.1/3.0: `YYYY-MM-DD` / `YYYYMMDD`, optionally with a
/// full time (seconds included) and a zone.
fn is_strict_date(v: &str) -> bool {
    let b = v.as_bytes();
    let (date, time) = match v.find(['T', 't']) {
        Some(i) => (&v[..i], Some(&v[i + 1..])),
        None => (v, None),
    };
    let _ = b;
    let d: String = date.chars().filter(|c| *c != '-').collect();
    let date_ok = d.len() == 8
        && d.chars().all(|c| c.is_ascii_digit())
        && (date.len() == 8
            || (date.len() == 10 && date.as_bytes()[4] == b'-' && date.as_bytes()[7] == b'-'));
    let time_ok = match time {
        None => true,
        Some(t) => {
            let (clock, zone) = match t.find(['Z', 'z', '+', '-']) {
                Some(i) => (&t[..i], &t[i..]),
                None => (t, ""),
            };
            let c: String = clock.chars().filter(|c| *c != ':').collect();
            let zone_ok = zone.is_empty()
                || zone.eq_ignore_ascii_case("z")
                || (zone.len() >= 5 && zone[1..].chars().filter(|c| *c != ':').count() == 4);
            c.len() == 6 && c.chars().all(|x| x.is_ascii_digit()) && zone_ok
        }
    };
    date_ok && time_ok
}

/// `T1430` (no seconds, valid in 4.0) becomes `T143000`, which 3.0 readers accept.
fn add_seconds(v: &str) -> String {
    if let Some(i) = v.find('T') {
        let t = &v[i + 1..];
        let end = t.find(['Z', '+', '-']).unwrap_or(t.len());
        if end == 4 && t[..4].chars().all(|c| c.is_ascii_digit()) {
            return format!("{}T{}00{}", &v[..i], &t[..4], &t[4..]);
        }
    }
    v.to_string()
}

/// A URI as java.net.URI accepts it: a scheme, a colon, and no characters it rejects.
fn is_uri(v: &str) -> bool {
    let Some((scheme, rest)) = v.split_once(':') else {
        return false;
    };
    let mut sc = scheme.chars();
    sc.next().is_some_and(|c| c.is_ascii_alphabetic())
        && sc.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && !rest.is_empty()
        && !v
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>\"{}|\\^`".contains(c))
}

const DATE_PROPS: &[&str] = &["BDAY", "ANNIVERSARY", "DEATHDATE"];
const OMIT_YEAR: &str = "X-APPLE-OMIT-YEAR";

/// Adapt properties whose value syntax differs between versions, so that strict readers
/// (ez-vcard) accept them without warnings: GEO, birthdays and anniversaries, TZ. A value that
/// has no valid form in the target version keeps its text under an `X-` name. Every result is a
/// fixed point: reading it back and adapting again gives the same property.
fn adapt(p: &Property, version: VcardVersion) -> std::borrow::Cow<'_, Property> {
    use std::borrow::Cow;
    if matches!(p.value, Value::Binary(_))
        && !["PHOTO", "LOGO", "SOUND", "KEY"].contains(&p.name.as_str())
        && !p.name.starts_with("X-")
    {
        // Inline binary data on a property that cannot hold it: keep the bytes, under X-.
        let mut q = p.clone();
        q.name = format!("X-{}", p.name);
        return Cow::Owned(q);
    }
    let raw = match &p.value {
        Value::Raw(s) => s.trim().to_string(),
        _ => return Cow::Borrowed(p),
    };
    let mut q = p.clone();
    let v40 = version == VcardVersion::V40;
    if p.name == "GEO" {
        match parse_geo(&raw) {
            Some((lat, lon)) if v40 => q.value = Value::Raw(format!("geo:{lat},{lon}")),
            Some((lat, lon)) => q.value = Value::Raw(format!("{lat};{lon}")),
            None => q.name = "X-GEO".into(),
        }
        return Cow::Owned(q);
    }
    if DATE_PROPS.contains(&p.name.as_str()) {
        let is_text = p
            .params
            .iter()
            .any(|x| x.name == "VALUE" && x.values.iter().any(|v| v.eq_ignore_ascii_case("text")));
        let omit = p.param(OMIT_YEAR).map(str::to_string);
        let no_year = raw.strip_prefix("--").filter(|r| {
            let d: String = r.chars().filter(|c| *c != '-').collect();
            d.len() == 4 && d.chars().all(|c| c.is_ascii_digit())
        });
        if let Some(md) = no_year {
            let md: String = md.chars().filter(|c| *c != '-').collect();
            if !v40 {
                // Apple's way to say "no year" in 3.0, which ez-vcard and iOS read.
                q.value = Value::Raw(format!("1604-{}-{}", &md[..2], &md[2..]));
                q.params.retain(|x| x.name != "VALUE");
                q.params.push(Param {
                    name: OMIT_YEAR.into(),
                    values: vec!["1604".into()],
                });
            }
            return Cow::Owned(q);
        }
        if let (Some(y), true) = (omit, v40) {
            if let (true, Some(m), Some(d)) = (raw.starts_with(&y), raw.get(5..7), raw.get(8..10)) {
                q.value = Value::Raw(format!("--{m}{d}"));
                q.params.retain(|x| x.name != OMIT_YEAR);
                return Cow::Owned(q);
            }
        }
        let fixed = add_seconds(&raw);
        if !is_text && is_strict_date(&fixed) {
            q.value = Value::Raw(fixed);
            // A VALUE that says something else (uri, text) would make readers misparse it.
            q.params.retain(|x| {
                x.name != "VALUE"
                    || x.values.iter().all(|v| {
                        ["date", "date-time", "date-and-or-time", "timestamp"]
                            .iter()
                            .any(|d| v.eq_ignore_ascii_case(d))
                    })
            });
        } else if v40 {
            if !is_text && !is_strict_date(&raw) {
                q.params.retain(|x| x.name != "VALUE");
                q.params.push(Param {
                    name: "VALUE".into(),
                    values: vec!["text".into()],
                });
            }
        } else {
            q.name = format!("X-{}", p.name);
            q.params.retain(|x| x.name != "VALUE");
        }
        return Cow::Owned(q);
    }
    if p.name == "TZ" {
        let b = raw.as_bytes();
        let offset = (raw.len() == 3 || raw.len() == 5 || raw.len() == 6)
            && matches!(b[0], b'+' | b'-')
            && raw[1..].chars().all(|c| c.is_ascii_digit() || c == ':');
        if offset {
            // Any VALUE but utc-offset would contradict the value.
            q.params.retain(|x| {
                x.name != "VALUE"
                    || x.values
                        .iter()
                        .all(|v| v.eq_ignore_ascii_case("utc-offset"))
            });
            return Cow::Owned(q);
        }
        q.params.retain(|x| x.name != "VALUE");
        match version {
            // 2.1 knows only offsets.
            VcardVersion::V21 => q.name = "X-TZ".into(),
            // 3.0 reads an offset unless told the value is text; 4.0 reads text by default.
            VcardVersion::V30 => q.params.push(Param {
                name: "VALUE".into(),
                values: vec!["text".into()],
            }),
            VcardVersion::V40 => {}
        }
        return Cow::Owned(q);
    }
    // Typed values ez-vcard checks; a value that does not fit keeps its text under an X- name.
    let fits = match p.name.as_str() {
        "IMPP" => is_uri(&raw),
        "CLIENTPIDMAP" => raw.split_once(';').is_some_and(|(pid, uri)| {
            !pid.is_empty() && pid.bytes().all(|c| c.is_ascii_digit()) && !uri.is_empty()
        }),
        "XML" => v40 && raw.starts_with('<') && raw.ends_with('>'),
        _ => true,
    };
    if !fits {
        q.name = format!("X-{}", p.name);
        return Cow::Owned(q);
    }
    if p.name == "REV" && !is_strict_date(&add_seconds(&raw)) {
        q.name = "X-REV".into();
        return Cow::Owned(q);
    }
    Cow::Borrowed(p)
}

fn write_prop(out: &mut Vec<u8>, p: &Property, version: VcardVersion) {
    let p = adapt(p, version);
    let p = p.as_ref();
    let mut head = String::new();
    if let Some(g) = &p.group {
        let g = clean_name(g);
        if !g.is_empty() {
            head.push_str(&g);
            head.push('.');
        }
    }
    let name = clean_name(&p.name);
    head.push_str(if name.is_empty() { "X-UNNAMED" } else { &name });
    let b64 = || {
        base64::engine::general_purpose::STANDARD.encode(match &p.value {
            Value::Binary(b) => b.as_slice(),
            _ => &[],
        })
    };
    match (&p.value, version) {
        (Value::Binary(data), VcardVersion::V40) => {
            let mime = mime_for(p, data);
            let params: Vec<Param> = p
                .params
                .iter()
                .filter(|x| !(x.name == "TYPE" && p.name != "KEY"))
                .cloned()
                .collect();
            write_params(&mut head, &params, version);
            let line = format!("{head}:data:{mime};base64,{}", b64());
            push_line(out, line.as_bytes(), false);
        }
        (Value::Binary(_), VcardVersion::V21) => {
            head.push_str(";ENCODING=BASE64");
            write_params(&mut head, &p.params, version);
            let line = format!("{head}:{}", b64());
            push_line(out, line.as_bytes(), false);
            // Android's 2.1 reader expects a blank line after base64 data.
            out.extend_from_slice(b"\r\n");
        }
        (Value::Binary(_), _) => {
            head.push_str(";ENCODING=b");
            write_params(&mut head, &p.params, version);
            let line = format!("{head}:{}", b64());
            push_line(out, line.as_bytes(), false);
        }
        (Value::Text(t), VcardVersion::V40) if p.name == "TEL" && is_tel_uri_safe(t) => {
            head.push_str(";VALUE=uri");
            write_params(&mut head, &p.params, version);
            let num: String = t.trim().replace(' ', "-");
            push_line(out, format!("{head}:tel:{num}").as_bytes(), false);
        }
        (v, VcardVersion::V21) => {
            let text = value_text(v, &p.name, true);
            let needs_qp = !text.is_ascii() || text.contains(['\n', '\r']);
            if needs_qp {
                head.push_str(";CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE");
                write_params(&mut head, &p.params, version);
                push_qp_line(out, &head, text.as_bytes());
            } else {
                write_params(&mut head, &p.params, version);
                push_line(out, format!("{head}:{text}").as_bytes(), false);
            }
        }
        (v, _) => {
            write_params(&mut head, &p.params, version);
            let text = value_text(v, &p.name, false);
            push_line(out, format!("{head}:{text}").as_bytes(), false);
        }
    }
}

/// The escaped value. For 2.1 newlines stay real (QP carries them); everything else is the same
/// escaping as 3.0, which is what vobject and our reader expect from 2.1 too.
fn value_text(v: &Value, name: &str, v21: bool) -> String {
    let esc = |s: &str| {
        if v21 {
            escape_text_21(s, false)
        } else {
            escape_text(s, false)
        }
    };
    let _ = name;
    match v {
        Value::Text(s) => esc(s),
        Value::LooseText(s) => {
            if v21 {
                escape_text_21(s, true)
            } else {
                escape_text(s, true)
            }
        }
        Value::List(items) => items.iter().map(|s| esc(s)).collect::<Vec<_>>().join(","),
        Value::Structured(comps) => comps
            .iter()
            .map(|c| c.iter().map(|s| esc(s)).collect::<Vec<_>>().join(","))
            .collect::<Vec<_>>()
            .join(";"),
        Value::Raw(s) => escape_raw_newlines(s),
        Value::Binary(_) => String::new(),
    }
}

/// 2.1 escaping: like 3.0, but line breaks stay real (quoted-printable carries them).
fn escape_text_21(s: &str, bare_commas: bool) -> String {
    escape_text_breaking(s, bare_commas, "\r\n")
}

/// Write one content line, folded at 75 octets without splitting a UTF-8 sequence: the first
/// line holds up to 75 octets, each continuation a space and up to 74.
pub fn push_line(out: &mut Vec<u8>, line: &[u8], _qp: bool) {
    let mut rest = line;
    let mut first = true;
    loop {
        let room = if first { MAX_LINE } else { MAX_LINE - 1 };
        if !first {
            out.push(b' ');
        }
        if rest.len() <= room {
            out.extend_from_slice(rest);
            out.extend_from_slice(b"\r\n");
            return;
        }
        let mut cut = room;
        // Back up to a character boundary (continuation bytes are 10xxxxxx).
        while cut > 0 && (rest[cut] & 0xC0) == 0x80 {
            cut -= 1;
        }
        if cut == 0 {
            cut = room;
        }
        out.extend_from_slice(&rest[..cut]);
        out.extend_from_slice(b"\r\n");
        rest = &rest[cut..];
        first = false;
    }
}

/// A 2.1 quoted-printable line with soft line breaks (`=` at the end) so that no physical line
/// exceeds 75 octets; `=XX` triplets are never split.
fn push_qp_line(out: &mut Vec<u8>, head: &str, value: &[u8]) {
    // One token per character, so that a soft break never splits a UTF-8 sequence (readers
    // that decode each physical line on its own would choke on half a character).
    let text = String::from_utf8_lossy(value);
    let mut tokens: Vec<String> = Vec::with_capacity(value.len());
    let n = text.chars().count();
    for (i, c) in text.chars().enumerate() {
        let last = i + 1 == n;
        let plain = (c.is_ascii_graphic() && c != '=') || (c == ' ' && !last);
        if plain {
            tokens.push(c.to_string());
        } else {
            let mut buf = [0u8; 4];
            tokens.push(
                c.encode_utf8(&mut buf)
                    .bytes()
                    .map(|b| format!("={b:02X}"))
                    .collect(),
            );
        }
    }
    // A header longer than a line is folded like any other line (CRLF + space); the value
    // then goes on with soft breaks.
    let mut folded = Vec::new();
    push_line(&mut folded, format!("{head}:").as_bytes(), false);
    folded.truncate(folded.len() - 2);
    let last_start = folded
        .windows(2)
        .rposition(|w| w == b"\r\n")
        .map(|i| i + 2)
        .unwrap_or(0);
    out.extend_from_slice(&folded[..last_start]);
    let mut line = String::from_utf8_lossy(&folded[last_start..]).into_owned();
    for t in tokens {
        if line.len() + t.len() > MAX_LINE - 1 {
            line.push('=');
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(b"\r\n");
            line.clear();
        }
        line.push_str(&t);
    }
    out.extend_from_slice(line.as_bytes());
    out.extend_from_slice(b"\r\n");
}
