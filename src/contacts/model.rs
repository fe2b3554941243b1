//! The in-memory contact: an ordered list of properties, each with its group, parameters and a
//! typed value. Values are held *decoded* (no QP, no base64, no vCard escaping) so that the writer
//! can escape them for whichever version it writes, and so that reading our own output gives the
//! same model back (idempotence).

use serde::Serialize;
use std::str::FromStr;

/// Which vCard version to write. 3.0 is the default because every importer we know accepts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub enum VcardVersion {
    V21,
    #[default]
    V30,
    V40,
}

impl FromStr for VcardVersion {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "2.1" | "21" => Ok(VcardVersion::V21),
            "3.0" | "3" | "30" => Ok(VcardVersion::V30),
            "4.0" | "4" | "40" => Ok(VcardVersion::V40),
            other => Err(format!(
                "unknown vCard version {other:?}: use 2.1, 3.0 or 4.0"
            )),
        }
    }
}

impl std::fmt::Display for VcardVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            VcardVersion::V21 => "2.1",
            VcardVersion::V30 => "3.0",
            VcardVersion::V40 => "4.0",
        })
    }
}

/// One parameter: upper-cased name and its values (a 2.1 bare parameter such as `CELL` is stored
/// as `TYPE=CELL`, which is what it means).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Param {
    pub name: String,
    pub values: Vec<String>,
}

/// A property value, decoded.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Value {
    /// A single text value (FN, NOTE, TEL, EMAIL, ...), unescaped.
    Text(String),
    /// A single text value whose source wrote its commas unescaped (usual in 2.1 and in Gmail
    /// exports). It is written back the same way, so that every reader (vobject stops at a bare
    /// comma, ez-vcard does not) sees in our output exactly what it saw in the input.
    LooseText(String),
    /// A comma list of text values (CATEGORIES, NICKNAME).
    List(Vec<String>),
    /// `;`-separated components, each a `,`-list (N, ADR) or a single text (ORG).
    Structured(Vec<Vec<String>>),
    /// Inline binary data (PHOTO/LOGO/SOUND/KEY in base64 or a `data:` URI).
    Binary(Vec<u8>),
    /// Anything else (URIs, dates, unknown and X- properties): the value as it appeared on the
    /// line (escapes untouched), so that we never change what we do not understand.
    Raw(String),
}

/// One content line of a card.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Property {
    pub group: Option<String>,
    /// Upper-cased property name.
    pub name: String,
    pub params: Vec<Param>,
    pub value: Value,
}

impl Property {
    pub fn text(name: &str, value: &str) -> Property {
        Property {
            group: None,
            name: name.to_string(),
            params: Vec::new(),
            value: Value::Text(value.to_string()),
        }
    }

    /// The first value of parameter `name` (upper-case).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|p| p.name == name)
            .and_then(|p| p.values.first())
            .map(String::as_str)
    }

    /// A plain-text rendering of the value, for naming, merging and reports.
    pub fn plain(&self) -> String {
        match &self.value {
            Value::Text(s) | Value::LooseText(s) | Value::Raw(s) => s.clone(),
            Value::List(v) => v.join(", "),
            Value::Structured(c) => c
                .iter()
                .map(|l| l.join(" "))
                .filter(|s| !s.trim().is_empty())
                .collect::<Vec<_>>()
                .join(" "),
            Value::Binary(b) => format!("<{} bytes>", b.len()),
        }
    }
}

/// One contact (one vCard), properties in their original order. VERSION is not stored: it
/// belongs to the file format, not to the person.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contact {
    pub properties: Vec<Property>,
    /// Where it came from ("file:line"), for reports only; never written.
    pub origin: String,
}

impl Contact {
    pub fn get(&self, name: &str) -> impl Iterator<Item = &Property> {
        let name = name.to_string();
        self.properties.iter().filter(move |p| p.name == name)
    }

    pub fn first_text(&self, name: &str) -> Option<String> {
        self.get(name)
            .map(|p| p.plain())
            .find(|s| !s.trim().is_empty())
    }

    /// The display name: FN, else one derived from N, ORG, EMAIL, TEL, NICKNAME.
    pub fn display_name(&self) -> Option<String> {
        if let Some(fn_) = self.first_text("FN") {
            return Some(fn_.trim().to_string());
        }
        derive_name(self)
    }
}

/// Derive a formatted name for a card without FN (3.0 requires one). Order: N (prefix given
/// additional family suffix), ORG, NICKNAME, EMAIL, TEL.
/// The text without control characters (the writer drops them), trimmed: a name made only
/// of controls is no name, or the FN written would be empty and read back differently.
fn printable(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .trim()
        .to_string()
}

pub fn derive_name(c: &Contact) -> Option<String> {
    for p in c.get("N") {
        if let Value::Structured(comps) = &p.value {
            let part = |i: usize| comps.get(i).map(|l| l.join(" ")).unwrap_or_default();
            let words: Vec<String> = [part(3), part(1), part(2), part(0), part(4)]
                .into_iter()
                .map(|s| printable(&s))
                .filter(|s| !s.is_empty())
                .collect();
            if !words.is_empty() {
                return Some(words.join(" "));
            }
        }
    }
    for key in ["ORG", "NICKNAME", "EMAIL", "TEL"] {
        if let Some(s) = c.first_text(key) {
            let s = printable(&s);
            if !s.is_empty() {
                return Some(s);
            }
        }
    }
    None
}
