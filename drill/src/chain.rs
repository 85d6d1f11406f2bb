//! The hash chain over a record's lines, and its verification.
//!
//! `hash = hex(SHA-256(prev ‖ canonical))`, where `prev` is the previous line's `hash` as its 64
//! ASCII hex characters ([`GENESIS`] for the first line) and `canonical` is the line's JSON object
//! without its `hash` member, keys sorted by byte order at every level, no whitespace, as
//! serde_json writes strings and numbers. Sorting makes the hash independent of the writer's key
//! order, so a record re-serialised by another tool still verifies if nothing changed.
//!
//! Each line is checked against the *stored* hash of the line before it, and the walk continues
//! from the line's own stored hash: one edited line is one break, not a cascade.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::event::{parse_time, Event, EventKind};

/// `prev` of the first line: 64 zeros.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The kinds of break, by stable name (docs/DRILL.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BreakKind {
    /// The line's hash is not the hash of its content: the line was edited.
    Content,
    /// The line does not follow the line before (its `prev` is not that line's hash): lines were
    /// removed, inserted or reordered between them.
    Link,
    /// `seq` does not follow the previous line's `seq` by one.
    Sequence,
    /// Not a JSON object of the record's shape (or a blank line).
    Malformed,
    /// The last line has no newline: the file was cut (or a write did not finish).
    Truncated,
    /// Well-formed but not a valid record: no start first, a second start, another drill's
    /// line, events after finish, an unreadable time.
    Invalid,
    /// The file holds no line at all.
    Empty,
    /// A head hash noted earlier (`report --head`) is in no line: lines were removed from the
    /// end, which leaves a valid shorter chain.
    HeadMissing,
}

impl BreakKind {
    pub const ALL: &'static [BreakKind] = &[
        BreakKind::Content,
        BreakKind::Link,
        BreakKind::Sequence,
        BreakKind::Malformed,
        BreakKind::Truncated,
        BreakKind::Invalid,
        BreakKind::Empty,
        BreakKind::HeadMissing,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BreakKind::Content => "content",
            BreakKind::Link => "link",
            BreakKind::Sequence => "sequence",
            BreakKind::Malformed => "malformed",
            BreakKind::Truncated => "truncated",
            BreakKind::Invalid => "invalid",
            BreakKind::Empty => "empty",
            BreakKind::HeadMissing => "head_missing",
        }
    }
}

/// One break, at a 1-based line number of the file (0 for the whole file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    pub line: usize,
    pub kind: BreakKind,
    pub message: String,
}

/// A record read and checked: the events that parsed (in file order) and every break.
#[derive(Debug, Clone, Default)]
pub struct Verified {
    pub events: Vec<Event>,
    pub breaks: Vec<Break>,
    /// Number of lines in the file.
    pub lines: usize,
}

impl Verified {
    pub fn intact(&self) -> bool {
        self.breaks.is_empty()
    }

    /// The last line's stored hash: what the next line must name as `prev`.
    pub fn head(&self) -> Option<&str> {
        self.events.last().map(|e| e.hash.as_str())
    }

    /// Checks that a hash noted earlier (a head printed by `mark` or `report`) is still in the
    /// record: the chain alone cannot tell that its newest lines were removed. Hex case is
    /// ignored; a unique prefix of at least 12 digits is accepted.
    pub fn check_head(&mut self, head: &str) {
        let want = head.trim().to_ascii_lowercase();
        let found = want.len() >= 12 && self.events.iter().any(|e| e.hash.starts_with(&want));
        if !found {
            self.breaks.push(Break {
                line: 0,
                kind: BreakKind::HeadMissing,
                message: format!(
                    "no line has the hash {want}: the newest events were removed (or the hash is another record's)"
                ),
            });
        }
    }

    pub fn finished(&self) -> bool {
        self.events
            .last()
            .is_some_and(|e| e.kind() == Some(EventKind::Finish))
    }
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The canonical text of a JSON value: keys sorted at every level, no whitespace.
pub fn canonical(v: &Value) -> String {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                let mut out = Map::new();
                for k in keys {
                    if let Some(x) = m.get(k) {
                        out.insert(k.clone(), sorted(x));
                    }
                }
                Value::Object(out)
            }
            Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(v).to_string()
}

/// The hash a line must carry: over `prev` and the line's object without `hash`.
pub fn hash_of(prev: &str, line: &Map<String, Value>) -> String {
    let mut without = line.clone();
    without.remove("hash");
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(canonical(&Value::Object(without)).as_bytes());
    hex(&h.finalize())
}

/// Reads a whole record from its bytes and reports every break.
pub fn verify(bytes: &[u8]) -> Verified {
    let mut v = Verified::default();
    if bytes.is_empty() {
        v.breaks.push(Break {
            line: 0,
            kind: BreakKind::Empty,
            message: "the record holds no events".into(),
        });
        return v;
    }
    let mut prev_hash: String = GENESIS.to_string();
    let mut prev_seq: u64 = 0;
    let mut drill: Option<String> = None;
    let mut finished_at: Option<usize> = None;
    let brk = |line: usize, kind: BreakKind, message: String| Break {
        line,
        kind,
        message,
    };
    let mut breaks = Vec::new();
    let ends_with_newline = bytes.last() == Some(&b'\n');
    let body = if ends_with_newline {
        bytes.get(..bytes.len() - 1).unwrap_or_default()
    } else {
        bytes
    };
    let lines: Vec<&[u8]> = body.split(|b| *b == b'\n').collect();
    let total = lines.len();
    for (i, raw) in lines.into_iter().enumerate() {
        let n = i + 1;
        if n == total && !ends_with_newline {
            breaks.push(brk(
                n,
                BreakKind::Truncated,
                format!(
                    "the last line ({} bytes) has no newline: the record was cut or a write did not finish",
                    raw.len()
                ),
            ));
            continue;
        }
        let obj = match serde_json::from_slice::<Value>(raw) {
            Ok(Value::Object(m)) => m,
            Ok(_) => {
                breaks.push(brk(n, BreakKind::Malformed, "not a JSON object".into()));
                continue;
            }
            Err(e) => {
                let what = if raw.iter().all(u8::is_ascii_whitespace) {
                    "a blank line".to_string()
                } else {
                    format!("not JSON: {e}")
                };
                breaks.push(brk(n, BreakKind::Malformed, what));
                continue;
            }
        };
        let event: Event = match serde_json::from_value(Value::Object(obj.clone())) {
            Ok(e) => e,
            Err(e) => {
                breaks.push(brk(
                    n,
                    BreakKind::Malformed,
                    format!("not a drill event: {e}"),
                ));
                continue;
            }
        };
        if event.prev != prev_hash {
            breaks.push(brk(
                n,
                BreakKind::Link,
                format!(
                    "prev {} is not the hash of the line before ({}): lines were removed, inserted or reordered",
                    short(&event.prev),
                    short(&prev_hash)
                ),
            ));
        }
        let computed = hash_of(&event.prev, &obj);
        if computed != event.hash {
            breaks.push(brk(
                n,
                BreakKind::Content,
                format!(
                    "hash {} does not match the line's content ({}): the line was edited",
                    short(&event.hash),
                    short(&computed)
                ),
            ));
        }
        if event.seq != prev_seq + 1 {
            breaks.push(brk(
                n,
                BreakKind::Sequence,
                format!("seq {} does not follow seq {}", event.seq, prev_seq),
            ));
        }
        let kind = event.kind();
        let mut invalid = Vec::new();
        if kind.is_none() {
            invalid.push(format!("unknown event {:?}", event.event));
        }
        if n == 1 && kind != Some(EventKind::Start) {
            invalid.push(format!(
                "the first line is a {:?} event, not start",
                event.event
            ));
        }
        if n > 1 && kind == Some(EventKind::Start) {
            invalid.push("a second start event".into());
        }
        if let Some(f) = finished_at {
            invalid.push(format!("an event after the finish on line {f}"));
        }
        match &drill {
            None => drill = Some(event.drill.clone()),
            Some(d) if *d != event.drill => invalid.push(format!(
                "drill {:?} is not this record's drill {:?}",
                event.drill, d
            )),
            Some(_) => {}
        }
        if event.at().is_none() {
            invalid.push(format!("time {:?} is not RFC 3339", event.time));
        }
        if let Some(lg) = &event.last_good {
            if parse_time(lg).is_none() {
                invalid.push(format!("last_good {lg:?} is not RFC 3339"));
            }
        }
        for m in invalid {
            breaks.push(brk(n, BreakKind::Invalid, m));
        }
        if kind == Some(EventKind::Finish) && finished_at.is_none() {
            finished_at = Some(n);
        }
        prev_hash = event.hash.clone();
        prev_seq = event.seq;
        v.events.push(event);
    }
    v.lines = total;
    v.breaks = breaks;
    v
}

/// The first 12 hex digits, enough to tell hashes apart in a message.
pub fn short(h: &str) -> &str {
    h.get(..12).unwrap_or(h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::NewEvent;
    use crate::record::chained;
    use chrono::{TimeZone, Utc};

    fn record(n: usize) -> String {
        let mut prev = GENESIS.to_string();
        let mut out = String::new();
        for i in 0..n {
            let t = Utc.with_ymd_and_hms(2026, 11, 20, 10, i as u32, 0).unwrap();
            let kind = if i == 0 {
                EventKind::Start
            } else {
                EventKind::Note
            };
            let e = chained(&NewEvent::new(kind, t, t), i as u64 + 1, "d", &prev).unwrap();
            prev = e.hash.clone();
            out.push_str(&serde_json::to_string(&e).unwrap());
            out.push('\n');
        }
        out
    }

    fn kinds(v: &Verified) -> Vec<(usize, BreakKind)> {
        v.breaks.iter().map(|b| (b.line, b.kind)).collect()
    }

    #[test]
    fn hash_is_sha256_of_prev_and_sorted_json_without_hash() {
        let text = record(1);
        let line: Value = serde_json::from_str(text.trim_end()).unwrap();
        let mut m = line.as_object().unwrap().clone();
        let stored = m.remove("hash").unwrap();
        // Independently: sort the keys by hand, serialise compactly.
        let mut keys: Vec<_> = m.keys().cloned().collect();
        keys.sort();
        let body: Vec<String> = keys
            .iter()
            .map(|k| format!("{}:{}", Value::String(k.clone()), m[k]))
            .collect();
        let canonical = format!("{{{}}}", body.join(","));
        let mut h = Sha256::new();
        h.update(GENESIS.as_bytes());
        h.update(canonical.as_bytes());
        assert_eq!(stored, Value::String(hex(&h.finalize())));
        assert!(verify(text.as_bytes()).intact());
    }

    #[test]
    fn each_kind_of_damage_is_one_break_at_its_line() {
        let text = record(5);
        let lines: Vec<&str> = text.lines().collect();
        assert!(verify(text.as_bytes()).intact());

        let edited = text.replace("10:02:00Z", "10:02:30Z");
        assert_eq!(
            kinds(&verify(edited.as_bytes())),
            vec![(3, BreakKind::Content)]
        );

        let mut deleted: Vec<&str> = lines.clone();
        deleted.remove(2);
        let deleted = deleted.join("\n") + "\n";
        assert_eq!(
            kinds(&verify(deleted.as_bytes())),
            vec![(3, BreakKind::Link), (3, BreakKind::Sequence)]
        );

        let cut = &text[..text.len() - 10];
        assert_eq!(
            kinds(&verify(cut.as_bytes())),
            vec![(5, BreakKind::Truncated)]
        );

        let swapped = [lines[0], lines[2], lines[1], lines[3], lines[4]].join("\n") + "\n";
        let v = verify(swapped.as_bytes());
        assert!(v.breaks.iter().all(|b| (2..=4).contains(&b.line)), "{v:?}");
        assert!(!v.intact());

        let blank = format!("{}\n\n{}", lines[0], lines[1..].join("\n") + "\n");
        assert_eq!(
            kinds(&verify(blank.as_bytes())),
            vec![(2, BreakKind::Malformed)]
        );

        assert_eq!(kinds(&verify(b"")), vec![(0, BreakKind::Empty)]);

        // The tail removed: a valid chain, caught only by a head kept elsewhere.
        let full = verify(text.as_bytes());
        let head = full.head().unwrap().to_string();
        let mut shorter = verify((lines[..4].join("\n") + "\n").as_bytes());
        assert!(shorter.intact());
        shorter.check_head(&head[..12].to_ascii_uppercase());
        assert_eq!(kinds(&shorter), vec![(0, BreakKind::HeadMissing)]);
        let mut same = verify(text.as_bytes());
        same.check_head(&head);
        let second = lines[1];
        let v: Value = serde_json::from_str(second).unwrap();
        same.check_head(v["hash"].as_str().unwrap());
        assert!(same.intact());
        same.check_head("abc");
        assert!(!same.intact());
        let headless = lines[1..].join("\n") + "\n";
        let v = verify(headless.as_bytes());
        assert!(v
            .breaks
            .iter()
            .any(|b| b.line == 1 && b.kind == BreakKind::Invalid));
    }

    #[test]
    fn every_single_bit_flip_and_cut_is_caught_without_panicking() {
        let text = record(3).into_bytes();
        for i in 0..text.len() {
            for bit in [0x01u8, 0x20, 0x80] {
                let mut b = text.clone();
                b[i] ^= bit;
                assert!(!verify(&b).intact(), "flip {bit:#x} at byte {i} not caught");
            }
        }
        for len in 0..text.len() {
            let v = verify(&text[..len]);
            // Cutting exactly at a line end leaves a valid shorter chain (see check_head).
            if len > 0 && text[len - 1] == b'\n' {
                assert!(v.intact(), "cut at {len}");
            } else {
                assert!(!v.intact(), "cut at {len} not caught");
            }
        }
    }
}
