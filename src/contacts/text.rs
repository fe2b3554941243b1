//! Byte- and text-level helpers shared by the readers and the writer: charset decoding,
//! vCard escaping, line splitting.

use encoding_rs::Encoding;

/// Decode a whole file to UTF-8 bytes when it is UTF-16 (with a BOM, or without one but with the
/// tell-tale NUL bytes around `B`/`E` of `BEGIN`), and strip a UTF-8 BOM. Other bytes are left
/// alone: 8-bit charsets are decoded per value, because a 2.1 file may mix them.
pub fn normalize_file_bytes(bytes: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    use std::borrow::Cow;
    let utf16 = match bytes {
        [0xFF, 0xFE, ..] => Some(encoding_rs::UTF_16LE),
        [0xFE, 0xFF, ..] => Some(encoding_rs::UTF_16BE),
        [a, 0, b, 0, ..] if a.is_ascii_graphic() && b.is_ascii_graphic() => {
            Some(encoding_rs::UTF_16LE)
        }
        [0, a, 0, b, ..] if a.is_ascii_graphic() && b.is_ascii_graphic() => {
            Some(encoding_rs::UTF_16BE)
        }
        _ => None,
    };
    if let Some(enc) = utf16 {
        // decode() sniffs and removes the BOM itself; errors become U+FFFD (never a panic).
        let (s, _, _) = enc.decode(bytes);
        return Cow::Owned(s.into_owned().into_bytes());
    }
    match bytes.strip_prefix(b"\xEF\xBB\xBF") {
        Some(rest) => Cow::Borrowed(rest),
        None => Cow::Borrowed(bytes),
    }
}

/// Decode value bytes: the declared charset if encoding_rs knows it, else UTF-8 when valid, else
/// Windows-1252 (what legacy Western exports almost always are). Returns the text and a note
/// when a fallback was used.
pub fn decode_bytes(bytes: &[u8], charset: Option<&str>) -> (String, Option<String>) {
    if let Some(label) = charset {
        match Encoding::for_label(label.trim().as_bytes()) {
            Some(enc) => {
                let (s, _, had_errors) = enc.decode(bytes);
                let note = had_errors.then(|| {
                    format!("bytes invalid in declared charset {label}; replaced with U+FFFD")
                });
                return (s.into_owned(), note);
            }
            None => {
                let (s, _) = decode_guess(bytes);
                return (
                    s,
                    Some(format!(
                        "unknown charset {label:?}; read as UTF-8/Windows-1252"
                    )),
                );
            }
        }
    }
    let (s, fell_back) = decode_guess(bytes);
    (
        s,
        fell_back.then(|| "not valid UTF-8; read as Windows-1252".to_string()),
    )
}

/// UTF-8 if valid, else Windows-1252. The flag says whether the fallback was used.
pub fn decode_guess(bytes: &[u8]) -> (String, bool) {
    match std::str::from_utf8(bytes) {
        Ok(s) => (s.to_string(), false),
        Err(_) => {
            let (s, _, _) = encoding_rs::WINDOWS_1252.decode(bytes);
            (s.into_owned(), true)
        }
    }
}

/// Remove vCard backslash escapes the way RFC 2426/6350 define them (and the way vobject and
/// ez-vcard read them): `\\ \; \, \n \N \"`. Unknown escapes are kept as written, because
/// 2.1 files use lone backslashes literally (Windows paths, `\:` in URLs).
pub fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('n') | Some('N') => out.push('\n'),
            Some(c2 @ ('\\' | ';' | ',' | '"')) => out.push(c2),
            Some(c2) => {
                out.push('\\');
                out.push(c2);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// May a backslash followed by `next` be written alone (read back as itself)?
pub fn lone_backslash_ok(next: Option<char>) -> bool {
    match next {
        None => false,
        Some(c) => !matches!(c, '\\' | ';' | ',' | 'n' | 'N' | '"') && !c.is_control(),
    }
}

/// Does the (still escaped) text hold a comma without a backslash before it?
pub fn has_bare_comma(s: &str) -> bool {
    let mut esc = false;
    for c in s.chars() {
        if esc {
            esc = false;
        } else if c == '\\' {
            esc = true;
        } else if c == ',' {
            return true;
        }
    }
    false
}

/// Split on an unescaped separator, leaving escapes in place (to be removed by `unescape`).
pub fn split_unescaped(s: &str, sep: char) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            cur.push(c);
            if let Some(n) = it.next() {
                cur.push(n);
            }
        } else if c == sep {
            parts.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    parts.push(cur);
    parts
}

/// Escape a text value for 3.0/4.0: comma (unless `bare_commas`), semicolon, newlines, and a
/// backslash where a reader would otherwise take it for an escape (before `\ ; , n N "` or at
/// the end). A backslash before any other character is written alone: that is how it was read
/// (`\C` stays `\C` in vobject, and our reader keeps it), and doubling it would make ez-vcard
/// and vobject disagree about the name.
pub fn escape_text(s: &str, bare_commas: bool) -> String {
    escape_text_breaking(s, bare_commas, "\\n")
}

/// [`escape_text`], writing each line break (CRLF, CR or LF in `s`) as `line_break`: `\n`
/// for 3.0/4.0, a real CRLF for 2.1 (where quoted-printable carries it).
pub fn escape_text_breaking(s: &str, bare_commas: bool, line_break: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    // Controls go first, so that the escaping sees the characters that will really be written
    // next to each other (and reading the output back gives the same text).
    let s = drop_controls(s);
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if lone_backslash_ok(chars.peek().copied()) {
                    out.push('\\')
                } else {
                    out.push_str("\\\\")
                }
            }
            ',' if bare_commas => out.push(','),
            ',' => out.push_str("\\,"),
            ';' => out.push_str("\\;"),
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push_str(line_break);
            }
            '\n' => out.push_str(line_break),
            c if is_bad_control(c) => {}
            c => out.push(c),
        }
    }
    out
}

/// The text without the control characters a line cannot carry (line breaks stay).
pub fn drop_controls(s: &str) -> String {
    s.chars()
        .filter(|&c| c == '\n' || c == '\r' || !is_bad_control(c))
        .collect()
}

/// Control characters that no vCard line may carry (tab is allowed).
pub fn is_bad_control(c: char) -> bool {
    (c.is_control() && c != '\t') || c == '\u{feff}'
}

/// Newlines in a raw (already escaped or opaque) value become `\n`; other controls go.
pub fn escape_raw_newlines(s: &str) -> String {
    let s = s.replace("\r\n", "\n").replace('\r', "\n");
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            c if is_bad_control(c) => {}
            c => out.push(c),
        }
    }
    out
}

/// Digits of a phone number, for matching: the last 9 digits, which ignores `+CC`/`0` prefixes.
pub fn phone_key(s: &str) -> String {
    let d: Vec<char> = s.chars().filter(|c| c.is_ascii_digit()).collect();
    let start = d.len().saturating_sub(9);
    d[start..].iter().collect()
}

/// Split bytes into physical lines (LF, CRLF, CR CR LF or bare CR), with 1-based line numbers.
/// Linear in the input size, whatever the line lengths.
pub fn split_lines(bytes: &[u8]) -> Vec<(usize, &[u8])> {
    let has_lf = bytes.contains(&b'\n');
    let sep = if has_lf { b'\n' } else { b'\r' };
    let mut out = Vec::new();
    let mut no = 0;
    for line in bytes.split(|&b| b == sep) {
        no += 1;
        let mut l = line;
        while let [rest @ .., b'\r'] = l {
            l = rest;
        }
        out.push((no, l));
    }
    // A final separator produces an empty last piece that is not a line.
    if bytes.last() == Some(&sep) {
        out.pop();
    }
    out
}
