//! Duplicate detection and merging.
//!
//! Two cards are the same person when their display names are equal after case folding and
//! white-space collapsing, and they share a phone number (last 9 digits, so `+49 151…` and
//! `0151…` match) or an e-mail address (case-insensitive). Merging keeps the first card's
//! properties in order and appends every property of the others that is not already there;
//! nothing distinct is dropped except a second N, UID, REV, PRODID, KIND or GENDER, which can
//! only have one value.

use super::model::{Contact, Property, Value};
use super::text::phone_key;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use unicode_normalization::UnicodeNormalization;

/// "`name` merged from `count` cards".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MergeNote {
    pub name: String,
    pub count: usize,
}

const SINGLE: &[&str] = &["N", "UID", "REV", "PRODID", "KIND", "GENDER"];

fn norm_name(s: &str) -> String {
    s.nfc()
        .collect::<String>()
        .to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn keys(c: &Contact) -> Vec<String> {
    let mut k = Vec::new();
    for p in &c.properties {
        let v = p.plain();
        match p.name.as_str() {
            "TEL" => {
                let d = phone_key(&v);
                if d.len() >= 6 {
                    k.push(format!("t:{d}"));
                }
            }
            "EMAIL" => {
                let e = v.trim().to_lowercase();
                if e.contains('@') {
                    k.push(format!("e:{e}"));
                }
            }
            _ => {}
        }
    }
    k
}

fn find(parent: &mut [usize], mut i: usize) -> usize {
    while parent[i] != i {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    i
}

/// Merge duplicates. The result keeps the order of first appearance.
pub fn merge(contacts: Vec<Contact>) -> (Vec<Contact>, Vec<MergeNote>) {
    let n = contacts.len();
    let mut parent: Vec<usize> = (0..n).collect();
    // Union cards that share (normalised name, tel/email key).
    let mut seen: HashMap<(String, String), usize> = HashMap::new();
    for (i, c) in contacts.iter().enumerate() {
        let Some(name) = c.display_name() else {
            continue;
        };
        let name = norm_name(&name);
        if name.is_empty() {
            continue;
        }
        for k in keys(c) {
            match seen.get(&(name.clone(), k.clone())) {
                Some(&j) => {
                    let (a, b) = (find(&mut parent, i), find(&mut parent, j));
                    if a != b {
                        // The earlier card stays the root, so the output order is stable.
                        let (lo, hi) = if a < b { (a, b) } else { (b, a) };
                        parent[hi] = lo;
                    }
                }
                None => {
                    seen.insert((name.clone(), k), i);
                }
            }
        }
    }
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for i in 0..n {
        let r = find(&mut parent, i);
        groups.entry(r).or_default().push(i);
    }
    let mut slots: Vec<Option<Contact>> = contacts.into_iter().map(Some).collect();
    let mut out = Vec::with_capacity(groups.len());
    let mut notes = Vec::new();
    for (_, members) in groups {
        let mut it = members.iter();
        let first = *it.next().expect("a group has at least one member");
        let mut base = slots[first].take().unwrap_or_default();
        let count = members.len();
        for &m in it {
            if let Some(other) = slots[m].take() {
                absorb(&mut base, other);
            }
        }
        if count > 1 {
            notes.push(MergeNote {
                name: base.display_name().unwrap_or_default(),
                count,
            });
        }
        out.push(base);
    }
    (out, notes)
}

/// A property's identity for de-duplication: name and value (parameters and group ignored).
fn ident(p: &Property) -> (String, Value) {
    let v = match &p.value {
        // Text and LooseText stay apart: they are written differently, and a reader that stops
        // at a bare comma sees different names in them.
        Value::Text(s) if p.name == "EMAIL" => Value::Text(s.trim().to_lowercase()),
        Value::LooseText(s) if p.name == "EMAIL" => Value::LooseText(s.trim().to_lowercase()),
        Value::Text(s) => Value::Text(s.trim().to_string()),
        Value::LooseText(s) => Value::LooseText(s.trim().to_string()),
        v => v.clone(),
    };
    (p.name.clone(), v)
}

/// Append to `base` what `other` has and `base` lacks. Grouped properties (Apple's
/// `item1.TEL` + `item1.X-ABLabel`) move as a whole group, renamed to a group name that is free
/// in `base`, unless `base` already holds every property of the group.
fn absorb(base: &mut Contact, other: Contact) {
    let mut have: HashSet<(String, Value)> = base.properties.iter().map(ident).collect();
    let mut used_groups: HashSet<String> = base
        .properties
        .iter()
        .filter_map(|p| p.group.as_ref().map(|g| g.to_ascii_lowercase()))
        .collect();
    let mut next_item = 1;
    let mut renamed: HashMap<String, Option<String>> = HashMap::new();
    // Decide per group whether it is new.
    let mut by_group: HashMap<String, Vec<&Property>> = HashMap::new();
    for p in &other.properties {
        if let Some(g) = &p.group {
            by_group.entry(g.clone()).or_default().push(p);
        }
    }
    for p in &other.properties {
        if SINGLE.contains(&p.name.as_str()) && base.properties.iter().any(|b| b.name == p.name) {
            continue;
        }
        match &p.group {
            None => {
                if have.insert(ident(p)) {
                    base.properties.push(p.clone());
                }
            }
            Some(g) => {
                let target = renamed
                    .entry(g.clone())
                    .or_insert_with(|| {
                        let members = &by_group[g];
                        if members.iter().all(|m| have.contains(&ident(m))) {
                            return None;
                        }
                        let new = if used_groups.contains(&g.to_ascii_lowercase()) {
                            loop {
                                let cand = format!("item{next_item}");
                                next_item += 1;
                                if !used_groups.contains(&cand) {
                                    break cand;
                                }
                            }
                        } else {
                            g.clone()
                        };
                        used_groups.insert(new.to_ascii_lowercase());
                        Some(new)
                    })
                    .clone();
                if let Some(t) = target {
                    let mut q = p.clone();
                    q.group = Some(t);
                    have.insert(ident(&q));
                    base.properties.push(q);
                }
            }
        }
    }
}
