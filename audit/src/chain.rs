//! Recomputing a hash chain one entry at a time, in key order, in constant memory.
//!
//! Each entry is checked against the *stored* hash of the entry before it (the genesis value for
//! the first), and the walk then continues from the entry's own stored hash. So one edited row
//! is one break, not a cascade, and every break in the chain is reported, not just the first.
//!
//! A break is classified:
//! - `content`: the entry's digest is wrong although its link is right — the row was edited (or,
//!   in a chain that stores no previous hash and has no integer key, a row before it removed:
//!   such a chain cannot tell the two apart, and the message says so);
//! - `link`: the entry is intact but does not follow the entry before it — rows were removed
//!   or reordered between them (seen from the entry's stored previous hash, or from a gap in
//!   integer keys);
//! - `anchor_mismatch` / `tail_deleted`: the head saved by `drkit audit anchor` is changed or
//!   gone. Without an anchor, deleting the newest rows leaves a valid chain: audit logs have an
//!   RPO of zero, so the head must be kept elsewhere.
//! - `malformed`: a record without a hash, or not a JSON object.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::entry::Entry;

use crate::canonical;
use crate::scheme::{Link, Scheme};

/// The kinds of break, by stable name (docs/AUDIT.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BreakKind {
    Content,
    Link,
    AnchorMismatch,
    TailDeleted,
    Malformed,
}

impl BreakKind {
    pub const ALL: &'static [BreakKind] = &[
        BreakKind::Content,
        BreakKind::Link,
        BreakKind::AnchorMismatch,
        BreakKind::TailDeleted,
        BreakKind::Malformed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BreakKind::Content => "content",
            BreakKind::Link => "link",
            BreakKind::AnchorMismatch => "anchor_mismatch",
            BreakKind::TailDeleted => "tail_deleted",
            BreakKind::Malformed => "malformed",
        }
    }
}

/// One break in the chain.
#[derive(Debug, Clone, PartialEq)]
pub struct Break {
    pub kind: BreakKind,
    /// 1-based position in chain order (0 for breaks found at the end).
    pub row: u64,
    /// The entry's key value (`None` when the entry has none, or for end-of-chain breaks).
    pub key: Option<Value>,
    /// Line of a JSON-lines input.
    pub line: Option<u64>,
    /// The digest drkit computed, and the one stored.
    pub expected: Option<String>,
    pub stored: Option<String>,
    pub message: String,
}

/// The head of a verified chain, kept outside the database by `drkit audit anchor`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Anchor {
    pub key: Value,
    pub hash: String,
    pub rows: u64,
    /// Where the chain was read (database URL redacted, table; or the file).
    pub source: String,
    pub saved_at: String,
}

/// Totals after the last entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub rows: u64,
    pub breaks: u64,
    /// The last entry: key and stored hash.
    pub head: Option<(Value, String)>,
    pub anchor_checked: bool,
}

/// The walk's state: a few strings, whatever the chain's length.
pub struct Verifier {
    scheme: Scheme,
    prev_hash: String,
    prev_key: Option<Value>,
    rows: u64,
    breaks: u64,
    anchor: Option<Anchor>,
    anchor_seen: bool,
    text: String,
}

impl Verifier {
    pub fn new(scheme: Scheme, anchor: Option<Anchor>) -> Verifier {
        Verifier {
            prev_hash: scheme.genesis.clone(),
            scheme,
            prev_key: None,
            rows: 0,
            breaks: 0,
            anchor,
            anchor_seen: false,
            text: String::new(),
        }
    }

    /// A line that is not a JSON object: a malformed break; the chain goes on from the last
    /// good hash.
    pub fn malformed(&mut self, line: Option<u64>, message: String) -> Break {
        self.rows += 1;
        self.breaks += 1;
        Break {
            kind: BreakKind::Malformed,
            row: self.rows,
            key: None,
            line,
            expected: None,
            stored: None,
            message,
        }
    }

    /// Checks the next entry; returns its breaks (usually none).
    pub fn push(&mut self, mut entry: Entry, line: Option<u64>) -> Vec<Break> {
        self.rows += 1;
        let row = self.rows;
        for f in &self.scheme.js_time_fields {
            if let Some(Value::String(s)) = entry.get_mut(f) {
                if let Some(js) = js_date(s) {
                    *s = js;
                }
            }
        }
        let key = entry.get(&self.scheme.key_field).cloned();
        let mut out = vec![];
        let brk = |kind, expected: Option<String>, stored: Option<String>, message| Break {
            kind,
            row,
            key: key.clone(),
            line,
            expected,
            stored,
            message,
        };
        let stored = match entry.get(&self.scheme.hash_field) {
            Some(Value::String(s)) => s.clone(),
            _ => {
                out.push(brk(
                    BreakKind::Malformed,
                    None,
                    None,
                    format!("no {:?} string in this entry", self.scheme.hash_field),
                ));
                self.breaks += 1;
                self.prev_key = key;
                return out;
            }
        };
        let prev = std::mem::take(&mut self.prev_hash);
        let expected = self.digest(&entry, &prev);
        if !expected.eq_ignore_ascii_case(&stored) {
            let stored_prev = self
                .scheme
                .prev_field
                .as_ref()
                .and_then(|f| entry.get(f))
                .and_then(Value::as_str)
                .map(str::to_string);
            let after = match &self.prev_key {
                Some(k) => format!("the entry before it (key {k})"),
                None => "the genesis value".to_string(),
            };
            match stored_prev {
                Some(sp) if sp != prev => {
                    let from_own = self.digest(&entry, &sp);
                    out.push(brk(
                        BreakKind::Link,
                        Some(prev.clone()),
                        Some(sp.clone()),
                        format!(
                            "does not follow {after}: it names previous hash {sp}, but that is \
                             {prev} — entries removed or reordered here (or the hash of the entry \
                             before it edited)"
                        ),
                    ));
                    if !from_own.eq_ignore_ascii_case(&stored) {
                        out.push(brk(
                            BreakKind::Content,
                            Some(from_own),
                            Some(stored.clone()),
                            "entry edited: its hash does not match its content".into(),
                        ));
                    }
                }
                Some(_) => out.push(brk(
                    BreakKind::Content,
                    Some(expected),
                    Some(stored.clone()),
                    "entry edited: its hash does not match its content (its link to the entry \
                     before it is intact)"
                        .into(),
                )),
                None => match self.key_gap(key.as_ref()) {
                    Some(gap) => out.push(brk(
                        BreakKind::Link,
                        Some(expected),
                        Some(stored.clone()),
                        format!("does not follow {after}: {gap} — entries removed"),
                    )),
                    None => out.push(brk(
                        BreakKind::Content,
                        Some(expected),
                        Some(stored.clone()),
                        "hash does not match: this entry was edited, or entries before it were \
                         removed (the chain stores no previous hash to tell which)"
                            .into(),
                    )),
                },
            }
        }
        if let Some(a) = &self.anchor {
            if key.as_ref() == Some(&a.key) {
                self.anchor_seen = true;
                if !a.hash.eq_ignore_ascii_case(&stored) {
                    out.push(brk(
                        BreakKind::AnchorMismatch,
                        Some(a.hash.clone()),
                        Some(stored.clone()),
                        format!(
                            "the anchored head (saved {}) had hash {}; this entry now has {stored}",
                            a.saved_at, a.hash
                        ),
                    ));
                }
            }
        }
        self.breaks += out.len() as u64;
        self.prev_hash = stored;
        self.prev_key = key;
        out
    }

    /// Ends the walk: the anchor check and the totals.
    pub fn finish(self) -> (Option<Break>, Summary) {
        let head = self
            .prev_key
            .clone()
            .map(|k| (k, self.prev_hash.clone()))
            .filter(|_| self.rows > 0);
        let mut breaks = self.breaks;
        let tail = match &self.anchor {
            Some(a) if !self.anchor_seen => {
                breaks += 1;
                let now = match &head {
                    Some((k, _)) => {
                        format!("the chain now ends at key {k} after {} entries", self.rows)
                    }
                    None => "the chain is now empty".to_string(),
                };
                Some(Break {
                    kind: BreakKind::TailDeleted,
                    row: 0,
                    key: Some(a.key.clone()),
                    line: None,
                    expected: Some(a.hash.clone()),
                    stored: None,
                    message: format!(
                        "the anchored head (key {}, saved {} with {} entries) is gone: entries \
                         deleted from the end; {now}",
                        a.key, a.saved_at, a.rows
                    ),
                })
            }
            _ => None,
        };
        (
            tail,
            Summary {
                rows: self.rows,
                breaks,
                head,
                anchor_checked: self.anchor.is_some(),
            },
        )
    }

    fn digest(&mut self, entry: &Entry, prev: &str) -> String {
        let s = &self.scheme;
        self.text.clear();
        let prev_value = Value::String(prev.to_string());
        let embedded =
            |name: &str| s.link == Link::Embedded && s.prev_field.as_deref() == Some(name);
        match &s.fields {
            Some(fields) => {
                let members = fields.iter().filter_map(|f| {
                    if embedded(f) {
                        Some((f.as_str(), &prev_value))
                    } else {
                        entry.get(f).map(|v| (f.as_str(), v))
                    }
                });
                canonical::write_object(members, s.canonical, &mut self.text);
            }
            None => {
                let members = entry
                    .iter()
                    .filter(|(k, _)| *k != s.hash_field && !s.exclude.iter().any(|x| x == k))
                    .map(|(k, v)| {
                        if embedded(k) {
                            (k, &prev_value)
                        } else {
                            (k, v)
                        }
                    });
                canonical::write_object(members, s.canonical, &mut self.text);
            }
        }
        match s.link {
            Link::Concat => s.digest.hex(&[prev.as_bytes(), self.text.as_bytes()]),
            Link::Embedded => s.digest.hex(&[self.text.as_bytes()]),
        }
    }

    /// "keys 5..7 missing" when integer keys skip values.
    fn key_gap(&self, key: Option<&Value>) -> Option<String> {
        let prev = self.prev_key.as_ref()?.as_i64()?;
        let this = key?.as_i64()?;
        (this > prev + 1).then(|| {
            if this == prev + 2 {
                format!("key {} is missing", prev + 1)
            } else {
                format!("keys {}..{} are missing", prev + 1, this - 1)
            }
        })
    }
}

/// A database timestamp (`2026-11-22T03:00:00.123+00:00`, or without a zone = UTC) as
/// JavaScript's Date.toJSON writes it (`2026-11-22T03:00:00.123Z`).
pub fn js_date(s: &str) -> Option<String> {
    if let Some(fast) = js_date_utc(s) {
        return Some(fast);
    }
    let t: DateTime<Utc> = match DateTime::parse_from_rfc3339(s) {
        Ok(t) => t.with_timezone(&Utc),
        Err(_) => NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
            .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f"))
            .ok()?
            .and_utc(),
    };
    Some(t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// The common case without a date parser: already UTC (`Z` or `+00:00`), `YYYY-MM-DDTHH:MM:SS`
/// with an optional fraction. The fraction is cut (not rounded) to milliseconds, as a
/// JavaScript Date holds it.
fn js_date_utc(s: &str) -> Option<String> {
    let body = s.strip_suffix("+00:00").or_else(|| s.strip_suffix('Z'))?;
    let (base, frac) = match body.split_once('.') {
        Some((b, f)) => (b, f),
        None => (body, ""),
    };
    let b = base.as_bytes();
    let shape_ok = b.len() == 19
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            _ => c.is_ascii_digit(),
        });
    if !shape_ok || !frac.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let mut out = String::with_capacity(24);
    out.push_str(base);
    out.push('.');
    for i in 0..3 {
        out.push(
            frac.get(i..=i)
                .and_then(|d| d.chars().next())
                .unwrap_or('0'),
        );
    }
    out.push('Z');
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheme::Digest;
    use serde_json::{json, Map};

    fn file_scheme() -> Scheme {
        Scheme::preset("ms5-file", None).unwrap()
    }

    /// Writes a chain the way the MS5 file logger does (the test's own writer).
    fn chain(n: i64) -> Vec<Map<String, Value>> {
        let mut prev = "0".to_string();
        (1..=n)
            .map(|i| {
                let mut m = Map::new();
                m.insert("id".into(), json!(i));
                m.insert(
                    "timestamp".into(),
                    json!(format!("2026-11-22T03:00:{:02}.000Z", i % 60)),
                );
                m.insert("action".into(), json!(format!("act{i}")));
                m.insert("previousHash".into(), json!(prev));
                let text = serde_json::to_string(&m).unwrap();
                let h = Digest::Sha256.hex(&[prev.as_bytes(), text.as_bytes()]);
                m.insert("hash".into(), json!(h));
                prev = h;
                m
            })
            .collect()
    }

    fn run(
        scheme: Scheme,
        entries: Vec<Map<String, Value>>,
        anchor: Option<Anchor>,
    ) -> (Vec<Break>, Summary) {
        let mut v = Verifier::new(scheme, anchor);
        let mut all = vec![];
        for e in entries {
            all.extend(v.push(e.into(), None));
        }
        let (tail, s) = v.finish();
        all.extend(tail);
        (all, s)
    }

    #[test]
    fn intact_chain_verifies() {
        let (b, s) = run(file_scheme(), chain(50), None);
        assert_eq!(b, vec![]);
        assert_eq!(s.rows, 50);
        assert_eq!(s.head.unwrap().0, json!(50));
    }

    #[test]
    fn edit_is_one_content_break() {
        let mut c = chain(20);
        c[7].insert("action".into(), json!("forged"));
        let (b, _) = run(file_scheme(), c, None);
        assert_eq!(b.len(), 1, "{b:?}");
        assert_eq!(b[0].kind, BreakKind::Content);
        assert_eq!(b[0].key, Some(json!(8)));
    }

    #[test]
    fn removal_and_reorder_are_link_breaks() {
        let mut c = chain(20);
        c.remove(5);
        let (b, _) = run(file_scheme(), c.clone(), None);
        assert_eq!(b.len(), 1);
        assert_eq!(
            (b[0].kind, b[0].key.clone()),
            (BreakKind::Link, Some(json!(7)))
        );

        let mut c = chain(20);
        c.swap(3, 4);
        let (b, _) = run(file_scheme(), c, None);
        assert!(b.iter().all(|x| x.kind == BreakKind::Link), "{b:?}");
        assert!(b.len() >= 2);

        // Without a stored previous hash, an integer key gap still shows the removal.
        let mut c = chain(20);
        for e in &mut c {
            e.remove("previousHash");
        }
        let mut scheme = file_scheme();
        scheme.prev_field = None;
        // Re-sign without the field (the entry no longer has it).
        let mut prev = "0".to_string();
        for e in &mut c {
            e.remove("hash");
            let text = serde_json::to_string(&*e).unwrap();
            let h = Digest::Sha256.hex(&[prev.as_bytes(), text.as_bytes()]);
            e.insert("hash".into(), json!(h));
            prev = h;
        }
        c.remove(9);
        let (b, _) = run(scheme, c, None);
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].kind, BreakKind::Link);
        assert!(
            b[0].message.contains("key 10 is missing"),
            "{}",
            b[0].message
        );
    }

    #[test]
    fn anchor_catches_a_removed_tail() {
        let c = chain(30);
        let (_, s) = run(file_scheme(), c.clone(), None);
        let (key, hash) = s.head.unwrap();
        let anchor = Anchor {
            key,
            hash,
            rows: 30,
            source: "test".into(),
            saved_at: "then".into(),
        };
        let (b, _) = run(file_scheme(), c[..27].to_vec(), None);
        assert_eq!(b, vec![], "without the anchor a cut tail is invisible");
        let (b, _) = run(file_scheme(), c[..27].to_vec(), Some(anchor.clone()));
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].kind, BreakKind::TailDeleted);
        let (b, _) = run(file_scheme(), c.clone(), Some(anchor.clone()));
        assert_eq!(b, vec![]);
        let mut more = c;
        more.extend(chain(0));
        let mut forged = anchor;
        forged.hash = "00".into();
        let (b, _) = run(file_scheme(), more, Some(forged));
        assert_eq!(b[0].kind, BreakKind::AnchorMismatch);
    }

    #[test]
    fn missing_hash_is_malformed() {
        let mut c = chain(5);
        c[2].remove("hash");
        let (b, _) = run(file_scheme(), c, None);
        assert_eq!(b[0].kind, BreakKind::Malformed);
    }

    #[test]
    fn database_times_become_javascript_dates() {
        assert_eq!(
            js_date("2026-11-22T03:00:01.5+01:00").as_deref(),
            Some("2026-11-22T02:00:01.500Z")
        );
        assert_eq!(
            js_date("2026-11-22 03:00:01").as_deref(),
            Some("2026-11-22T03:00:01.000Z")
        );
        assert_eq!(js_date("yesterday"), None);
        for s in [
            "2026-11-22T03:00:01+00:00",
            "2026-11-22T03:00:01.1+00:00",
            "2026-11-22T03:00:01.123456+00:00",
            "2026-11-22T03:00:01.9999Z",
        ] {
            // The fast path agrees with the general one.
            let general = DateTime::parse_from_rfc3339(s)
                .unwrap()
                .with_timezone(&Utc)
                .to_rfc3339_opts(SecondsFormat::Millis, true);
            assert_eq!(js_date_utc(s), Some(general), "{s}");
        }
    }
}
