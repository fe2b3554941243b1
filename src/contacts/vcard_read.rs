//! A tolerant vCard reader (2.1, 3.0, 4.0) over raw bytes.
//!
//! Why our own: the crates we measured either accept only 4.0, fail a whole file on one bad line
//! or drop cards silently (see docs/CONTACTS.md). This reader works in three linear passes:
//! physical lines (any line ending), logical lines (RFC folding, QP soft breaks, 2.1 base64
//! bodies without indentation), then cards (BEGIN/END with recovery). It never aborts a file:
//! every problem becomes a warning or a rejection naming file and line.

use super::model::{Contact, Param, Property, Value};
use super::text::{
    decode_bytes, escape_raw_newlines, has_bare_comma, normalize_file_bytes, split_lines,
    split_unescaped, unescape,
};
use super::{Diagnostic, ReadOutcome};
use base64::Engine;

/// Properties whose value is one text (escapes removed on read, added on write).
const TEXT_PROPS: &[&str] = &[
    "FN",
    "NOTE",
    "TITLE",
    "ROLE",
    "LABEL",
    "EMAIL",
    "TEL",
    "MAILER",
    "SORT-STRING",
    "NAME",
];
/// Properties whose value is a comma list of texts.
const LIST_PROPS: &[&str] = &["CATEGORIES", "NICKNAME"];
/// Structured properties whose components are comma lists.
const STRUCT_LIST_PROPS: &[&str] = &["N", "ADR"];
/// Structured properties whose components are single texts.
const STRUCT_PROPS: &[&str] = &["ORG"];
/// Properties that may carry inline binary data.
const BINARY_PROPS: &[&str] = &["PHOTO", "LOGO", "SOUND", "KEY"];

/// Per-file cap on individual "line without ':'" warnings.
const MAX_LINE_WARNINGS: usize = 50;

struct LogicalLine {
    line_no: usize,
    bytes: Vec<u8>,
}

struct RawProp {
    line_no: usize,
    group: Option<String>,
    name: String,
    /// (name, value) as written; name None for a 2.1 bare parameter.
    params: Vec<(Option<String>, String)>,
    value: Vec<u8>,
}

/// Position of the `:` that ends the property name and parameters: the first one outside
/// double quotes, or the first one at all when quotes are unbalanced.
fn header_end(line: &[u8]) -> Option<usize> {
    let mut in_q = false;
    for (i, &b) in line.iter().enumerate() {
        match b {
            b'"' => in_q = !in_q,
            b':' if !in_q => return Some(i),
            _ => {}
        }
    }
    line.iter().position(|&b| b == b':')
}

fn header_upper(line: &[u8]) -> Vec<u8> {
    let end = header_end(line).unwrap_or(0);
    line[..end].to_ascii_uppercase()
}

/// The ENCODING of a header, as `decode_property` will see it: a bare 2.1 `QUOTED-PRINTABLE` /
/// `BASE64` parameter or `ENCODING=...`. Exact matches only, so that the line joining below and
/// the value decoding always agree (a parameter that merely contains the word does not count).
fn header_encoding(h: &[u8]) -> Option<Vec<u8>> {
    let mut found = None;
    for part in h.split(|&b| b == b';').skip(1) {
        let part = part.trim_ascii();
        match part.iter().position(|&b| b == b'=') {
            Some(eq) if part[..eq].trim_ascii() == b"ENCODING" => {
                let v = part[eq + 1..].trim_ascii();
                let v = match v {
                    [b'"', inner @ .., b'"'] => inner,
                    v => v,
                };
                found = Some(v.to_vec());
            }
            Some(_) => {}
            None if BARE_ENCODINGS.iter().any(|e| e.as_bytes() == part) => {
                found = Some(part.to_vec())
            }
            None => {}
        }
    }
    found
}

fn is_qp_header(h: &[u8]) -> bool {
    header_encoding(h).as_deref() == Some(b"QUOTED-PRINTABLE")
}

fn is_b64_header(h: &[u8]) -> bool {
    matches!(header_encoding(h).as_deref(), Some(b"BASE64" | b"B"))
}

fn is_card_delimiter(line: &[u8]) -> bool {
    let t = line.trim_ascii().to_ascii_uppercase();
    t == b"END:VCARD" || t == b"BEGIN:VCARD"
}

fn looks_base64(line: &[u8]) -> bool {
    !line.is_empty()
        && line
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b' ' | b'\t'))
}

/// Join physical lines into logical lines.
fn logical_lines(lines: &[(usize, &[u8])]) -> Vec<LogicalLine> {
    let mut out: Vec<LogicalLine> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let (no, line) = lines[i];
        i += 1;
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        let mut cur = LogicalLine {
            line_no: no,
            bytes: line.to_vec(),
        };
        let header = header_upper(&cur.bytes);
        let mut header_done = header_end(&cur.bytes).is_some();
        let mut qp = is_qp_header(&header);
        let mut b64 = is_b64_header(&header);
        loop {
            if !header_done && cur.bytes.len() < 8192 {
                // The header itself was folded: look again once more of it is there. Bounded,
                // so a huge line without a colon stays linear.
                if let Some(end) = header_end(&cur.bytes) {
                    let h = cur.bytes[..end].to_ascii_uppercase();
                    qp = is_qp_header(&h);
                    b64 = is_b64_header(&h);
                    header_done = true;
                }
            }
            let Some(&(_, next)) = lines.get(i) else {
                break;
            };
            if qp && cur.bytes.last() == Some(&b'=') && !is_card_delimiter(next) {
                // QP soft line break: the `=` goes, the next line continues the value as is.
                cur.bytes.pop();
                cur.bytes.extend_from_slice(next);
                i += 1;
            } else if matches!(next.first(), Some(b' ' | b'\t')) {
                // RFC folding: one leading white space character is removed.
                cur.bytes.extend_from_slice(&next[1..]);
                i += 1;
            } else if !qp
                && cur.bytes.last() == Some(&b'\\')
                && !next.trim_ascii().is_empty()
                && !next.contains(&b':')
            {
                // 2.1 exporters (AOSP's multi-line ADR) end a line with a backslash to go on
                // with the value on the next line: that is a line break inside the value.
                cur.bytes.pop();
                cur.bytes.push(b'\n');
                cur.bytes.extend_from_slice(next);
                i += 1;
            } else if b64 && looks_base64(next) && !next.contains(&b':') {
                // 2.1 base64 bodies are often written without indentation, up to a blank line.
                cur.bytes.extend_from_slice(next.trim_ascii());
                i += 1;
            } else {
                break;
            }
        }
        out.push(cur);
    }
    out
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Split `group.NAME;p=v;...:value`. None when there is no colon.
fn parse_line(l: &LogicalLine) -> Option<RawProp> {
    let end = header_end(&l.bytes)?;
    let header = &l.bytes[..end];
    let value = l.bytes[end + 1..].to_vec();
    // Parameters: split on `;` outside quotes.
    let mut parts: Vec<&[u8]> = Vec::new();
    let (mut start, mut in_q) = (0, false);
    for (i, &b) in header.iter().enumerate() {
        match b {
            b'"' => in_q = !in_q,
            b';' if !in_q => {
                parts.push(&header[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&header[start..]);
    let full_name = lossy(parts[0]).trim().to_string();
    let (group, name) = match full_name.rfind('.') {
        Some(p) => (
            Some(full_name[..p].to_string()),
            full_name[p + 1..].to_string(),
        ),
        None => (None, full_name),
    };
    let params = parts[1..]
        .iter()
        .filter(|p| !p.trim_ascii().is_empty())
        .map(|p| {
            let s = lossy(p);
            match s.find('=') {
                Some(eq) => (
                    Some(s[..eq].trim().to_ascii_uppercase()),
                    s[eq + 1..].trim().to_string(),
                ),
                None => (None, s.trim().to_string()),
            }
        })
        .collect();
    Some(RawProp {
        line_no: l.line_no,
        group: group.filter(|g| !g.is_empty()),
        name: name.to_ascii_uppercase(),
        params,
        value,
    })
}

/// Card under construction.
struct Pending {
    start_line: usize,
    version: Option<String>,
    props: Vec<RawProp>,
}

/// Read every vCard in `bytes` into `out`.
pub fn read_vcards(file: &str, bytes: &[u8], out: &mut ReadOutcome) {
    let data = normalize_file_bytes(bytes);
    let lines = split_lines(&data);
    let file_utf8 = std::str::from_utf8(&data).is_ok();
    let logical = logical_lines(&lines);
    let diag = |line: usize, message: String| Diagnostic {
        file: file.to_string(),
        line: Some(line),
        message,
    };
    let mut pending: Option<Pending> = None;
    let mut outside: Option<(usize, usize)> = None; // first line, count
    let mut cards_seen = 0;
    let flush_outside = |outside: &mut Option<(usize, usize)>, out: &mut ReadOutcome| {
        if let Some((first, n)) = outside.take() {
            out.warnings.push(diag(
                first,
                format!("{n} line(s) outside BEGIN:VCARD/END:VCARD ignored"),
            ));
        }
    };
    let mut colonless = 0usize;
    for l in &logical {
        let Some(raw) = parse_line(l) else {
            let shown: String = lossy(&l.bytes[..l.bytes.len().min(40)]);
            if pending.is_some() {
                colonless += 1;
                // A damaged file can have millions of these: name the first ones, count the rest.
                if colonless <= MAX_LINE_WARNINGS {
                    out.warnings.push(diag(
                        l.line_no,
                        format!("line without ':' ignored: {shown:?}"),
                    ));
                }
            } else {
                let o = outside.get_or_insert((l.line_no, 0));
                o.1 += 1;
            }
            continue;
        };
        let val_upper = raw.value.trim_ascii().to_ascii_uppercase();
        if raw.name == "BEGIN" && val_upper == b"VCARD" {
            flush_outside(&mut outside, out);
            if let Some(p) = pending.take() {
                out.warnings.push(diag(
                    p.start_line,
                    format!(
                        "card has no END:VCARD (next BEGIN at line {}); kept",
                        l.line_no
                    ),
                ));
                finish(file, p, file_utf8, out);
            }
            cards_seen += 1;
            pending = Some(Pending {
                start_line: l.line_no,
                version: None,
                props: Vec::new(),
            });
            continue;
        }
        if raw.name == "END" && val_upper == b"VCARD" {
            match pending.take() {
                Some(p) => finish(file, p, file_utf8, out),
                None => out
                    .warnings
                    .push(diag(l.line_no, "END:VCARD without BEGIN ignored".into())),
            }
            continue;
        }
        match pending.as_mut() {
            Some(p) => {
                if raw.name == "VERSION" && raw.group.is_none() {
                    p.version = Some(lossy(&raw.value).trim().to_string());
                } else if raw.name == "BEGIN" || raw.name == "END" {
                    // An embedded component (2.1 AGENT, a stray VCALENDAR): its lines stay as
                    // properties of the card, nothing is lost, but it is worth a warning.
                    out.warnings.push(diag(
                        raw.line_no,
                        format!("nested {}:{} inside a card", raw.name, lossy(&raw.value)),
                    ));
                    p.props.push(RawProp {
                        name: format!("X-SDEXPORT-{}", raw.name),
                        ..raw
                    });
                } else {
                    p.props.push(raw);
                }
            }
            None => {
                let o = outside.get_or_insert((l.line_no, 0));
                o.1 += 1;
            }
        }
    }
    flush_outside(&mut outside, out);
    if colonless > MAX_LINE_WARNINGS {
        out.warnings.push(Diagnostic {
            file: file.to_string(),
            line: None,
            message: format!(
                "{} more line(s) without ':' ignored",
                colonless - MAX_LINE_WARNINGS
            ),
        });
    }
    if let Some(p) = pending.take() {
        out.warnings.push(diag(
            p.start_line,
            "card has no END:VCARD before end of file; kept".into(),
        ));
        finish(file, p, file_utf8, out);
    }
    if cards_seen == 0 {
        // The rejection says it all; "N lines outside a card" would only repeat it.
        out.warnings
            .retain(|w| !(w.file == file && w.message.contains("outside BEGIN:VCARD")));
        out.rejected.push(Diagnostic {
            file: file.to_string(),
            line: None,
            message: if data.iter().all(|b| b.is_ascii_whitespace()) {
                "empty file: no contacts".into()
            } else {
                "no BEGIN:VCARD found: not a vCard file".into()
            },
        });
    }
}

/// Turn a raw card into a Contact (or a rejection when it holds nothing).
fn finish(file: &str, p: Pending, file_utf8: bool, out: &mut ReadOutcome) {
    let v21 = p.version.as_deref().map(str::trim) == Some("2.1");
    let mut contact = Contact {
        properties: Vec::with_capacity(p.props.len()),
        origin: format!("{file}:{}", p.start_line),
    };
    for raw in p.props {
        let line_no = raw.line_no;
        let (prop, notes) = decode_property(raw, v21, file_utf8);
        for n in notes {
            out.warnings.push(Diagnostic {
                file: file.to_string(),
                line: Some(line_no),
                message: n,
            });
        }
        if let Some(prop) = prop {
            contact.properties.push(prop);
        }
    }
    if contact.properties.is_empty() {
        out.rejected.push(Diagnostic {
            file: file.to_string(),
            line: Some(p.start_line),
            message: "empty card (no properties) skipped".into(),
        });
    } else {
        out.contacts.push(contact);
    }
}

fn unquote(s: &str) -> String {
    let t = s.trim();
    if t.len() >= 2 && t.starts_with('"') && t.ends_with('"') {
        t[1..t.len() - 1].to_string()
    } else {
        t.to_string()
    }
}

/// Split a parameter value list on commas outside quotes.
fn split_param_values(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut cur, mut in_q) = (String::new(), false);
    for c in s.chars() {
        match c {
            '"' => {
                in_q = !in_q;
                cur.push(c)
            }
            ',' if !in_q => out.push(unquote(&std::mem::take(&mut cur))),
            _ => cur.push(c),
        }
    }
    out.push(unquote(&cur));
    out.retain(|v| !v.is_empty());
    out
}

const BARE_ENCODINGS: &[&str] = &["QUOTED-PRINTABLE", "BASE64", "B", "8BIT", "7BIT"];

/// Decode one property: normalise parameters, undo QP and charsets, parse the value by type.
fn decode_property(raw: RawProp, v21: bool, file_utf8: bool) -> (Option<Property>, Vec<String>) {
    let mut notes = Vec::new();
    let mut params: Vec<Param> = Vec::new();
    let mut encoding: Option<String> = None;
    let mut charset: Option<String> = None;
    for (name, value) in raw.params {
        let name = match name {
            Some(n) => n,
            None if BARE_ENCODINGS.contains(&value.to_ascii_uppercase().as_str()) => {
                "ENCODING".into()
            }
            None => "TYPE".into(),
        };
        match name.as_str() {
            "ENCODING" => encoding = Some(unquote(&value).to_ascii_uppercase()),
            "CHARSET" => charset = Some(unquote(&value)),
            _ => {
                let values = if name == "TYPE" {
                    // `TYPE="voice,cell"` (quoted list, seen in the wild) is a list too.
                    split_param_values(&value)
                        .iter()
                        .flat_map(|v| v.split(',').map(|x| x.trim().to_string()))
                        .filter(|v| !v.is_empty())
                        .collect()
                } else {
                    vec![unquote(&value)]
                };
                // Several TYPE parameters are one list; keep them in one parameter.
                if let Some(existing) = params.iter_mut().find(|p| p.name == name && name == "TYPE")
                {
                    for v in values {
                        if !existing.values.iter().any(|e| e.eq_ignore_ascii_case(&v)) {
                            existing.values.push(v);
                        }
                    }
                } else {
                    params.push(Param { name, values });
                }
            }
        }
    }
    let name = raw.name;
    let mut bytes = raw.value;
    if encoding.as_deref() == Some("QUOTED-PRINTABLE") {
        match quoted_printable::decode(&bytes, quoted_printable::ParseMode::Robust) {
            Ok(b) => bytes = b,
            Err(e) => notes.push(format!(
                "{name}: bad quoted-printable ({e}); kept as written"
            )),
        }
    }
    let binary = matches!(encoding.as_deref(), Some("B" | "BASE64"));
    if binary || (BINARY_PROPS.contains(&name.as_str()) && bytes.starts_with(b"data:")) {
        if let Some(data) = decode_binary(&bytes, binary, &mut params) {
            params.retain(|p| !(p.name == "VALUE" && is_binary_value(p)));
            let name = if BINARY_PROPS.contains(&name.as_str()) || name.starts_with("X-") {
                name
            } else {
                // Inline bytes on a property that cannot hold them (an N or a BDAY in base64):
                // keep the bytes under an X- name rather than write a property readers reject.
                notes.push(format!(
                    "{name}: base64 data on a text property; kept as X-{name}"
                ));
                format!("X-{name}")
            };
            return (
                Some(Property {
                    group: raw.group,
                    name,
                    params,
                    value: Value::Binary(data),
                }),
                notes,
            );
        }
        notes.push(format!(
            "{name}: base64 data could not be decoded; kept as text"
        ));
    }
    // A file that is valid UTF-8 as a whole is UTF-8, whatever a CHARSET parameter on a plain
    // value claims (exporters label UTF-8 text ISO-8859-1; vobject and ez-vcard read it as
    // UTF-8 too). QP values are bytes, decoded with the charset they declare.
    let qp = encoding.as_deref() == Some("QUOTED-PRINTABLE");
    let charset = if file_utf8 && !qp { None } else { charset };
    let (text, note) = decode_bytes(&bytes, charset.as_deref());
    if let Some(n) = note {
        notes.push(format!("{name}: {n}"));
    }
    let text = text.replace("\r\n", "\n");
    let value = if name == "TEL"
        && (params
            .iter()
            .any(|p| p.name == "VALUE" && p.values.iter().any(|v| v.eq_ignore_ascii_case("uri")))
            || text.trim_start().to_ascii_lowercase().starts_with("tel:"))
    {
        // 4.0 `tel:` URIs hold the number; 3.0/2.1 readers want the number as text.
        params.retain(|p| p.name != "VALUE");
        let t = text.trim();
        let t = if t.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("tel:")) {
            &t[4..]
        } else {
            t
        };
        Value::Text(t.to_string())
    } else if TEXT_PROPS.contains(&name.as_str()) {
        if has_bare_comma(&text) {
            Value::LooseText(unescape(&text))
        } else {
            Value::Text(unescape(&text))
        }
    } else if LIST_PROPS.contains(&name.as_str()) {
        Value::List(
            split_unescaped(&text, ',')
                .iter()
                .map(|s| unescape(s))
                .collect(),
        )
    } else if STRUCT_LIST_PROPS.contains(&name.as_str()) {
        Value::Structured(
            split_unescaped(&text, ';')
                .iter()
                .map(|c| {
                    split_unescaped(c, ',')
                        .iter()
                        .map(|s| unescape(s))
                        .collect()
                })
                .collect(),
        )
    } else if STRUCT_PROPS.contains(&name.as_str()) {
        Value::Structured(
            split_unescaped(&text, ';')
                .iter()
                .map(|c| vec![unescape(c)])
                .collect(),
        )
    } else {
        // Unknown meaning: keep the value as written. A QP-decoded value may hold real line
        // breaks, which a content line cannot; they become `\n`.
        Value::Raw(escape_raw_newlines(&text))
    };
    let _ = v21; // 2.1 and 3.0 escapes are read the same way (as vobject and ez-vcard do).
    (
        Some(Property {
            group: raw.group,
            name,
            params,
            value,
        }),
        notes,
    )
}

fn is_binary_value(p: &Param) -> bool {
    p.values
        .iter()
        .any(|v| v.eq_ignore_ascii_case("binary") || v.eq_ignore_ascii_case("uri"))
}

/// Base64 (ENCODING=b/BASE64) or a `data:<type>;base64,` URI. The media type of a data URI
/// becomes a TYPE parameter (what 3.0 uses), unless one is already there.
fn decode_binary(bytes: &[u8], is_b64: bool, params: &mut Vec<Param>) -> Option<Vec<u8>> {
    let mut body: &[u8] = bytes;
    if !is_b64 || bytes.starts_with(b"data:") {
        let comma = bytes.iter().position(|&b| b == b',')?;
        let head = String::from_utf8_lossy(&bytes[5..comma]).to_string();
        // `data:base64\,` appears in the wild (calcard 076): an escaped comma.
        let head = head.trim_end_matches('\\').to_string();
        if !head.to_ascii_lowercase().contains("base64") {
            return None;
        }
        let mediatype = head.split(';').next().unwrap_or("").trim().to_string();
        if !params.iter().any(|p| p.name == "TYPE") {
            if let Some(sub) = mediatype
                .strip_prefix("image/")
                .or(mediatype.strip_prefix("audio/"))
            {
                if !sub.is_empty() {
                    params.push(Param {
                        name: "TYPE".into(),
                        values: vec![sub.to_ascii_uppercase()],
                    });
                }
            }
        }
        body = &bytes[comma + 1..];
    }
    // Like Python's lenient decoder (what vobject uses), so that we keep the bytes other readers
    // see: characters outside the alphabet are skipped (a stray `:` in a malformed Android
    // photo), `=` ends the data only where it is real padding (after 2 or 3 characters of a
    // quad), and a dangling single character is dropped.
    let mut clean: Vec<u8> = Vec::with_capacity(body.len());
    for &b in body {
        if b.is_ascii_alphanumeric() || b == b'+' || b == b'/' {
            clean.push(b);
        } else if b == b'=' && clean.len() % 4 >= 2 {
            break;
        }
    }
    if clean.len() % 4 == 1 {
        clean.pop();
    }
    if clean.is_empty() {
        return None;
    }
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    engine.decode(&clean).ok()
}
