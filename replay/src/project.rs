//! Reading only the mapped parts of a JSON document.
//!
//! Building a whole `serde_json::Value` per event allocates every key and string of the event,
//! mapped or not, and was the whole per-event cost of the replay's encoder. This reads the
//! document once with serde's streaming visitor: members the mapping does not name are skipped
//! with `IgnoredAny` (still fully syntax-checked, without allocating), and only the named
//! members are built as `Value`s. The result equals `Pointer::lookup` on the full document
//! (tested against it), except that a number too large for f64 in an unmapped member is no
//! longer an error. With duplicate keys the last occurrence wins, as in `Value`.

use std::fmt;

use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// A trie of the pointers to fill: each node is one object member.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tree {
    children: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Node {
    key: String,
    /// Slots that want this member's whole value.
    here: Vec<usize>,
    /// When `here` is set: slots below, looked up in that value (relative tokens).
    below: Vec<(usize, Vec<String>)>,
    /// Every slot at or below this node (reset when a duplicate key comes again).
    all: Vec<usize>,
    children: Vec<Node>,
}

impl Tree {
    /// A tree for `pointers` (slot, unescaped tokens). `None` when a plain walk over objects
    /// cannot serve them: the whole document (`""`), or a token that could index an array.
    pub fn build(pointers: &[(usize, &[String])]) -> Option<Tree> {
        let mut root = Node::default();
        for &(slot, tokens) in pointers {
            if tokens.is_empty()
                || tokens
                    .iter()
                    .any(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
            {
                return None;
            }
            let mut n = &mut root;
            for t in tokens.iter() {
                let i = match n.children.iter().position(|c| &c.key == t) {
                    Some(i) => i,
                    None => {
                        n.children.push(Node {
                            key: t.clone(),
                            ..Node::default()
                        });
                        n.children.len() - 1
                    }
                };
                n = n.children.get_mut(i)?;
                n.all.push(slot);
            }
            n.here.push(slot);
        }
        for c in &mut root.children {
            c.fold();
        }
        Some(Tree {
            children: root.children,
        })
    }

    /// Fills `out` (one entry per slot, `None` = absent) from the JSON text `bytes`.
    pub fn read(
        &self,
        bytes: &[u8],
        out: &mut Vec<Option<Value>>,
        slots: usize,
    ) -> serde_json::Result<()> {
        out.clear();
        out.resize(slots, None);
        let mut de = serde_json::Deserializer::from_slice(bytes);
        Seed {
            children: &self.children,
            out,
        }
        .deserialize(&mut de)?;
        de.end()
    }
}

impl Node {
    /// A node whose whole value is wanted serves its descendants by lookup in that value.
    fn fold(&mut self) {
        if self.here.is_empty() {
            for c in &mut self.children {
                c.fold();
            }
            return;
        }
        let mut below = vec![];
        fn collect(n: &Node, path: &mut Vec<String>, below: &mut Vec<(usize, Vec<String>)>) {
            for c in &n.children {
                path.push(c.key.clone());
                for &s in &c.here {
                    below.push((s, path.clone()));
                }
                collect(c, path, below);
                path.pop();
            }
        }
        collect(self, &mut vec![], &mut below);
        self.below = below;
        self.children.clear();
    }
}

fn lookup<'v>(v: &'v Value, tokens: &[String]) -> Option<&'v Value> {
    tokens
        .iter()
        .try_fold(v, |v, t| v.as_object().and_then(|m| m.get(t.as_str())))
}

struct Seed<'n, 'o> {
    children: &'n [Node],
    out: &'o mut Vec<Option<Value>>,
}

impl<'de> DeserializeSeed<'de> for Seed<'_, '_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

/// Matches a member name against the wanted keys without allocating.
struct KeyMatch<'n>(&'n [Node]);

impl<'de> DeserializeSeed<'de> for KeyMatch<'_> {
    type Value = Option<usize>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyMatch<'_> {
    type Value = Option<usize>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }
    fn visit_str<E: serde::de::Error>(self, k: &str) -> Result<Option<usize>, E> {
        Ok(self.0.iter().position(|n| n.key == k))
    }
}

impl<'de> Visitor<'de> for Seed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(i) = map.next_key_seed(KeyMatch(self.children))? {
            let Some(n) = i.and_then(|i| self.children.get(i)) else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            for s in &n.all {
                if let Some(slot) = self.out.get_mut(*s) {
                    *slot = None;
                }
            }
            if n.here.is_empty() {
                map.next_value_seed(Seed {
                    children: &n.children,
                    out: &mut *self.out,
                })?;
                continue;
            }
            let v: Value = map.next_value()?;
            for (s, tokens) in &n.below {
                if let Some(slot) = self.out.get_mut(*s) {
                    *slot = lookup(&v, tokens).cloned();
                }
            }
            if let Some((first, rest)) = n.here.split_first() {
                for s in rest {
                    if let Some(slot) = self.out.get_mut(*s) {
                        *slot = Some(v.clone());
                    }
                }
                if let Some(slot) = self.out.get_mut(*first) {
                    *slot = Some(v);
                }
            }
        }
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::Pointer;

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
        let sets: [&[&str]; 3] = [
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
        ];
        for set in sets {
            let ptrs: Vec<Pointer> = set.iter().map(|p| Pointer::new(p)).collect();
            let toks: Vec<(usize, &[String])> = ptrs
                .iter()
                .enumerate()
                .map(|(i, p)| (i, p.tokens()))
                .collect();
            let tree = Tree::build(&toks).unwrap();
            for d in docs {
                let full: Value = serde_json::from_str(d).unwrap();
                let mut out = vec![];
                tree.read(d.as_bytes(), &mut out, ptrs.len()).unwrap();
                for (i, p) in ptrs.iter().enumerate() {
                    assert_eq!(out[i].as_ref(), p.lookup(&full), "{d} {}", p.text);
                }
            }
        }
        assert!(Tree::build(&[(0, &[])]).is_none());
        differential_on_mutated_events();
        assert!(Tree::build(&[(0, &["x".to_string(), "0".to_string()])]).is_none());
        let t = Tree::build(&[(0, &["a".to_string()])]).unwrap();
        let mut out = vec![];
        for bad in ["{\"a\":1,", "{\"b\":[1,}", "{\"a\":1} x", "{\"b\":tru}"] {
            assert!(t.read(bad.as_bytes(), &mut out, 1).is_err(), "{bad}");
        }
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
        let ptrs: Vec<Pointer> = set.iter().map(|p| Pointer::new(p)).collect();
        let toks: Vec<(usize, &[String])> = ptrs
            .iter()
            .enumerate()
            .map(|(i, p)| (i, p.tokens()))
            .collect();
        let tree = Tree::build(&toks).unwrap();
        let alphabet = b"{}[]\":,.-0123456789eE\\ truefalsnul/";
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
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
            if let Ok(full) = serde_json::from_slice::<Value>(&b) {
                parsed += 1;
                projected.unwrap();
                for (i, p) in ptrs.iter().enumerate() {
                    assert_eq!(
                        out[i].as_ref(),
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
