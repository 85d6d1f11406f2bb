//! Reading only the mapped parts of a JSON document.
//!
//! Building a whole `serde_json::Value` per event allocates every key and string of the event,
//! mapped or not, and was the whole per-event cost of the replay's encoder. This walks the
//! document once with the borrowing scanner (`json_scan`): members and elements the mapping does
//! not name are skipped (still fully validated, without allocating), and the named ones are
//! recorded as spans into the message bytes. The result equals `Pointer::lookup` on the full
//! `Value` (tested against it, also on random mutations), with two deliberate differences: a
//! number too large for f64 is no longer an error (the column's type decides), and with
//! duplicate keys the last occurrence wins, as in `Value`.

use std::collections::HashMap;

use crate::json_scan::{self, Kind, Lit, ScanError, Scanner, Span, Why};

/// A trie of the pointers to fill: the root is the whole document, each node below one object
/// member or array element.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tree {
    root: Node,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Node {
    key: String,
    /// The array index this token names, by RFC 6901 (`0`, or digits without a leading zero).
    index: Option<usize>,
    /// Slots that want this value.
    here: Vec<usize>,
    /// Every slot at or below this node (reset when a duplicate key comes again).
    all: Vec<usize>,
    /// The object here has its members listed ([`Tree::listing_members_of`]).
    list: bool,
    children: Vec<Node>,
}

impl Tree {
    /// A tree for `pointers` (slot, unescaped tokens).
    pub fn build(pointers: &[(usize, &[String])]) -> Tree {
        let mut root = Node::default();
        for &(slot, tokens) in pointers {
            root.all.push(slot);
            let mut n = &mut root;
            for t in tokens {
                let i = match n.children.iter().position(|c| &c.key == t) {
                    Some(i) => i,
                    None => {
                        let index = if t == "0" || !t.starts_with('0') {
                            t.bytes()
                                .all(|b| b.is_ascii_digit())
                                .then(|| t.parse().ok())
                                .flatten()
                        } else {
                            None
                        };
                        n.children.push(Node {
                            key: t.clone(),
                            index,
                            ..Node::default()
                        });
                        n.children.len() - 1
                    }
                };
                let Some(c) = n.children.get_mut(i) else {
                    break; // cannot happen: `i` was just found or pushed
                };
                n = c;
                n.all.push(slot);
            }
            n.here.push(slot);
        }
        Tree { root }
    }

    /// Validates the JSON text `bytes` and fills `out` (one entry per slot, `None` = absent)
    /// with spans into it, for [`Span::lit`].
    pub fn read(
        &self,
        bytes: &[u8],
        out: &mut Vec<Option<Span>>,
        slots: usize,
    ) -> Result<(), ScanError> {
        self.read_members(bytes, out, slots, &mut Vec::new())
    }

    /// This tree, also listing the members of the object at `slot` (the explode slot): marked
    /// once here rather than looked up on every value of every message.
    pub fn listing_members_of(mut self, slot: usize) -> Tree {
        fn mark(n: &mut Node, slot: usize) {
            n.list |= n.here.contains(&slot);
            for c in &mut n.children {
                mark(c, slot);
            }
        }
        mark(&mut self.root, slot);
        self
    }

    /// [`Tree::read`], also listing the members of the object [`Tree::listing_members_of`]
    /// names into `members` as (name, value) spans, in the order of serde_json's
    /// order-preserving map (first occurrence's position, last value). Collected during the one
    /// scan: reading the object again was a tenth of the narrow preset's time.
    pub fn read_members(
        &self,
        bytes: &[u8],
        out: &mut Vec<Option<Span>>,
        slots: usize,
        members: &mut Vec<(Span, Span)>,
    ) -> Result<(), ScanError> {
        out.clear();
        out.resize(slots, None);
        members.clear();
        if u32::try_from(bytes.len()).is_err() {
            return Err(ScanError {
                at: u32::MAX,
                why: Why::TooLarge,
            });
        }
        let mut s = Scanner::new(bytes);
        let mut cx = Cx {
            out,
            members,
            index: None,
        };
        visit(&mut s, &self.root, &mut cx, 0)?;
        s.end()
    }
}

struct Cx<'o> {
    out: &'o mut [Option<Span>],
    members: &'o mut Vec<(Span, Span)>,
    /// Unescaped name → position in `members`, once the object is too big for a linear search
    /// (a hostile message with 100,000 members must not cost 10^10 comparisons).
    /// (Created on first need: even an empty `HashMap` seeds its hasher, a cost per message.)
    index: Option<HashMap<Vec<u8>, usize>>,
}

/// Members a linear search handles before the name index takes over.
const LINEAR_MEMBERS: usize = 16;

impl Cx<'_> {
    /// Adds a member as serde_json's order-preserving map would: a repeated name keeps its
    /// first position and takes the new value.
    fn add_member(&mut self, doc: &[u8], k: Span, v: Span) {
        let key = k.lit(doc);
        if self.members.len() < LINEAR_MEMBERS && self.index.is_none() {
            match self
                .members
                .iter_mut()
                .find(|(n, _)| json_scan::same_name(&n.lit(doc), &key))
            {
                Some(slot) => slot.1 = v,
                None => self.members.push((k, v)),
            }
            return;
        }
        let members = &mut *self.members;
        let index = self.index.get_or_insert_with(|| {
            members
                .iter()
                .enumerate()
                .map(|(i, (n, _))| (n.lit(doc).bytes().unwrap_or_default().into_owned(), i))
                .collect()
        });
        let name = key.bytes().unwrap_or_default().into_owned();
        match index.get(&name).and_then(|&i| members.get_mut(i)) {
            Some(slot) => slot.1 = v,
            None => {
                index.insert(name, members.len());
                members.push((k, v));
            }
        }
    }
}

/// Scans one value for `node`: descends into containers the node has children for (or whose
/// members are listed), skips the rest, and records the value's span in the node's slots.
fn visit(
    s: &mut Scanner<'_>,
    node: &Node,
    cx: &mut Cx<'_>,
    depth: usize,
) -> Result<Span, ScanError> {
    s.ws();
    let list = node.list;
    let span = match s.peek() {
        Some(b'{') if list || !node.children.is_empty() => {
            if list {
                cx.members.clear();
                cx.index = None;
            }
            s.container(depth, b'}', Kind::Obj, |s, _| {
                let k = s.key()?;
                let child = match k.lit(s.b) {
                    Lit::Str {
                        raw,
                        escaped: false,
                    } => node
                        .children
                        .iter()
                        .find(|c| json_scan::eq_bytes(c.key.as_bytes(), raw)),
                    // Unescaped once, not per candidate.
                    key => {
                        let name = key.str().unwrap_or_default();
                        node.children.iter().find(|c| c.key == name)
                    }
                };
                let v = match child {
                    Some(c) => {
                        for &slot in &c.all {
                            if let Some(o) = cx.out.get_mut(slot) {
                                *o = None;
                            }
                        }
                        visit(s, c, cx, depth + 1)?
                    }
                    None => s.scalar_or_skip(depth + 1)?,
                };
                if list {
                    cx.add_member(s.b, k, v);
                }
                Ok(())
            })?
        }
        Some(b'[') if !node.children.is_empty() => {
            s.container(depth, b']', Kind::Arr, |s, i| {
                match node.children.iter().find(|c| c.index == Some(i)) {
                    Some(c) => visit(s, c, cx, depth + 1).map(|_| ()),
                    None => s.scalar_or_skip(depth + 1).map(|_| ()),
                }
            })?
        }
        _ => s.scalar_or_skip(depth)?,
    };
    for &slot in &node.here {
        if let Some(o) = cx.out.get_mut(slot) {
            *o = Some(span);
        }
    }
    Ok(span)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::Pointer;
    use serde_json::Value;

    /// The pointers and their tree, slot = position in `set`.
    fn tree_for(set: &[&str]) -> (Vec<Pointer>, Tree) {
        let ptrs: Vec<Pointer> = set.iter().map(|p| Pointer::new(p)).collect();
        let toks: Vec<(usize, &[String])> = ptrs
            .iter()
            .enumerate()
            .map(|(i, p)| (i, p.tokens()))
            .collect();
        let tree = Tree::build(&toks);
        (ptrs, tree)
    }

    /// A fixed-seed xorshift generator: the random tests are the same on every run.
    fn xorshift(mut x: u64) -> impl FnMut() -> u64 {
        move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        }
    }

    /// The `Value` a span names, parsed on its own.
    fn value(doc: &[u8], span: Option<Span>) -> Option<Value> {
        span.map(|s| serde_json::from_slice(&doc[s.start as usize..s.end as usize]).unwrap())
    }

    #[test]
    fn projection_equals_full_lookup() {
        let docs = [
            r#"{"timestamp":"t","assetId":"a","data":{"temperature":1.5,"quality":"good","unit":"C"},"x":[1,{"y":2}]}"#,
            r#"{"data":{"speed":null},"metadata":{"k":[1,2]},"te\u0073t":3}"#,
            r#"{"data":"not an object","timestamp":5}"#,
            r#"[1,2,3]"#,
            r#"{"data":{"temperature":1},"data":{"pressure":2}}"#,
            r#"{"a":{"b":{"c":{"d":true}}},"test":"s"}"#,
        ];
        let sets: [&[&str]; 4] = [
            &[
                "/timestamp",
                "/data/temperature",
                "/data/quality",
                "/metadata",
                "/test",
            ],
            &[
                "/data",
                "/data/quality",
                "/data/unit",
                "/timestamp",
                "/a/b/c/d",
                "/a/b",
            ],
            &["/x", "/x/y", "/nope/deeper", "/data/temperature"],
            &["", "/x/1/y", "/x/0", "/x/01", "/0", "/2", "/data/0", "/x/1"],
        ];
        for set in sets {
            let (ptrs, tree) = tree_for(set);
            for d in docs {
                let full: Value = serde_json::from_str(d).unwrap();
                let mut out = vec![];
                tree.read(d.as_bytes(), &mut out, ptrs.len()).unwrap();
                for (i, p) in ptrs.iter().enumerate() {
                    let got = value(d.as_bytes(), out[i]);
                    assert_eq!(got.as_ref(), p.lookup(&full), "{d} {}", p.text);
                }
            }
        }
        differential_on_mutated_events();
        let t = Tree::build(&[(0, &["a".to_string()])]);
        let mut out = vec![];
        for bad in ["{\"a\":1,", "{\"b\":[1,}", "{\"a\":1} x", "{\"b\":tru}"] {
            assert!(t.read(bad.as_bytes(), &mut out, 1).is_err(), "{bad}");
        }
    }

    #[test]
    fn members_keep_first_position_and_last_value() {
        let doc = r#"{"x":{"b":0},"x":{"b":1,"a":"x","b":2,"c\u0064":[1,{"z":2}]},"y":3}"#;
        let ptrs = [
            vec!["x".to_string()],
            vec!["x".to_string(), "a".to_string()],
        ];
        let tree = Tree::build(&[(0, &ptrs[0][..]), (1, &ptrs[1][..])]).listing_members_of(0);
        let (mut out, mut list) = (vec![], vec![]);
        tree.read_members(doc.as_bytes(), &mut out, 2, &mut list)
            .unwrap();
        let d = doc.as_bytes();
        let names: Vec<String> = list
            .iter()
            .map(|(k, _)| k.lit(d).str().unwrap().into_owned())
            .collect();
        assert_eq!(names, ["b", "a", "cd"]);
        assert_eq!(list[0].1.lit(d), Lit::Num("2"));
        assert_eq!(list[2].1.lit(d), Lit::Arr(b"[1,{\"z\":2}]"));
        assert_eq!(
            out[1].map(|s| s.lit(d)),
            Some(Lit::Str {
                raw: b"x",
                escaped: false
            })
        );
        let v: Value = serde_json::from_str(doc).unwrap();
        let theirs: Vec<String> = v["x"].as_object().unwrap().keys().cloned().collect();
        assert_eq!(names, theirs);
        // Past the linear search: a name index, same order and values as serde_json's map.
        let mut big = String::from("{\"x\":{");
        for i in 0..200 {
            big += &format!("\"m{}\":{i},", i % 70);
        }
        big += "\"m\\u0031\":\"last\"}}";
        tree.read_members(big.as_bytes(), &mut out, 2, &mut list)
            .unwrap();
        let v: Value = serde_json::from_str(&big).unwrap();
        let want: Vec<(String, Value)> = v["x"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let b = big.as_bytes();
        let got: Vec<(String, Value)> = list
            .iter()
            .map(|(k, v)| {
                let text = &big[v.start as usize..v.end as usize];
                (
                    k.lit(b).str().unwrap().into_owned(),
                    serde_json::from_str(text).unwrap(),
                )
            })
            .collect();
        assert_eq!(got, want);
        assert_eq!(got.len(), 70);
        // Not an object: no members, whatever came before.
        let doc = br#"{"x":{"b":1},"x":[1]}"#;
        tree.read_members(doc, &mut out, 2, &mut list).unwrap();
        assert_eq!(out[0].map(|s| s.kind), Some(Kind::Arr));
        assert_eq!(out[1], None);
    }

    /// Random short documents over JSON's tokens and some hostile bytes (escapes, surrogates,
    /// multi-byte and invalid UTF-8, control characters): the scanner must accept exactly what
    /// serde_json accepts and find the same values.
    #[test]
    fn differential_on_random_documents() {
        let pieces: [&[u8]; 30] = [
            b"{",
            b"}",
            b"[",
            b"]",
            b"\"",
            b":",
            b",",
            b" ",
            b"\n",
            b"0",
            b"12",
            b"-",
            b".",
            b"e+",
            b"\"a\"",
            b"\"b\":",
            b"true",
            b"nul",
            b"null",
            b"\\u00e9",
            b"\\ud83d",
            b"\\ude00",
            b"\\n",
            b"\\",
            b"\xc3\xa9",
            b"\xf0\x9f\x98\x80",
            b"\xff",
            b"\x01",
            b"1e5",
            b"\"0\"",
        ];
        let (ptrs, tree) = tree_for(&["", "/a", "/b", "/0", "/a/0", "/b/a", "/0/b"]);
        let mut next = xorshift(0x2545_f491_4f6c_dd1d);
        let (mut valid, mut out) = (0, vec![]);
        for _ in 0..150_000 {
            let mut d = Vec::new();
            for _ in 0..(next() % 14 + 1) {
                d.extend_from_slice(pieces[(next() % pieces.len() as u64) as usize]);
            }
            let ours = tree.read(&d, &mut out, ptrs.len());
            let theirs = serde_json::from_slice::<Value>(&d);
            let shown = String::from_utf8_lossy(&d);
            // The one deliberate difference: a number beyond f64 is the column's business.
            if theirs
                .as_ref()
                .is_err_and(|e| e.to_string().contains("number out of range"))
            {
                continue;
            }
            assert_eq!(ours.is_ok(), theirs.is_ok(), "{shown} {ours:?} {theirs:?}");
            if let Ok(full) = theirs {
                valid += 1;
                for (i, p) in ptrs.iter().enumerate() {
                    assert_eq!(
                        value(&d, out[i]).as_ref(),
                        p.lookup(&full),
                        "{shown} {}",
                        p.text
                    );
                }
            }
        }
        assert!(valid > 2000, "too few valid documents: {valid}");
    }

    /// Random mutations of an MS5 event (xorshift, fixed seed): whenever the whole document
    /// parses, the projection must equal the full lookup; when it does not, the projection must
    /// fail too or at least not panic.
    fn differential_on_mutated_events() {
        const EV: &str = r#"{"eventId":"0f0e0d0c-0b0a-4908-8706-050403020100","timestamp":"2026-01-15T08:00:00.500Z","assetId":"00010203-0405-4607-8809-0a0b0c0d0e0f","type":"telemetry","data":{"temperature":61.5,"quality":"good","unit":"C"},"metadata":{"a":[1,2]}}"#;
        let set = [
            "/timestamp",
            "/assetId",
            "/data",
            "/data/temperature",
            "/data/quality",
            "/metadata/a",
        ];
        let (ptrs, tree) = tree_for(&set);
        let alphabet = b"{}[]\":,.-0123456789eE\\ truefalsnul/";
        let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
        let (mut parsed, mut out) = (0, vec![]);
        for _ in 0..20_000 {
            let mut b = EV.as_bytes().to_vec();
            for _ in 0..(next() % 4 + 1) {
                let at = (next() % b.len() as u64) as usize;
                let c = alphabet[(next() % alphabet.len() as u64) as usize];
                match next() % 3 {
                    0 => b[at] = c,
                    1 => {
                        b.remove(at);
                    }
                    _ => b.insert(at, c),
                }
            }
            let projected = tree.read(&b, &mut out, ptrs.len());
            let full = serde_json::from_slice::<Value>(&b);
            assert_eq!(
                projected.is_ok(),
                full.is_ok(),
                "{}",
                String::from_utf8_lossy(&b)
            );
            if let Ok(full) = full {
                parsed += 1;
                for (i, p) in ptrs.iter().enumerate() {
                    assert_eq!(
                        value(&b, out[i]).as_ref(),
                        p.lookup(&full),
                        "{}",
                        String::from_utf8_lossy(&b)
                    );
                }
            }
        }
        assert!(parsed > 1000, "too few valid mutants: {parsed}");
    }
}
