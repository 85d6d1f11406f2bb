//! The bytes an entry is hashed over.
//!
//! MS5's chains were written by JavaScript: `JSON.stringify(entry)`. Re-serialising an entry
//! must give those exact bytes or every row looks edited, so the `Js` form reproduces
//! JSON.stringify: keys in the order the entry holds them, no whitespace, strings escaped as
//! JSON.stringify escapes them (`"`, `\`, control characters; not `/`, not non-ASCII), and
//! numbers as JavaScript prints a double (`2` not `2.0`, `1e+21`, `1e-7`). The `Sorted` form
//! sorts object keys recursively (the usual choice of systems that store entries as jsonb, which
//! keeps no key order).

use serde_json::{Map, Value};

/// Which serialisation the chain was written with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Canonical {
    /// JavaScript's JSON.stringify over the entry's own key order.
    Js,
    /// Keys sorted by their UTF-16 code units at every level (RFC 8785's order), JS numbers.
    Sorted,
}

/// Appends the canonical text of `v` to `out`.
pub fn write(v: &Value, form: Canonical, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                write_js_integer(i as i128, out);
            } else if let Some(u) = n.as_u64() {
                write_js_integer(u as i128, out);
            } else {
                write_js_double(n.as_f64().unwrap_or(f64::NAN), out);
            }
        }
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(item, form, out);
            }
            out.push(']');
        }
        Value::Object(map) => write_object(map.iter().map(|(k, v)| (k.as_str(), v)), form, out),
    }
}

/// Writes an object from its members (in the given order unless the form sorts them).
pub fn write_object<'a>(
    members: impl Iterator<Item = (&'a str, &'a Value)>,
    form: Canonical,
    out: &mut String,
) {
    let mut members: Vec<(&str, &Value)> = members.collect();
    if form == Canonical::Sorted {
        members.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
    }
    out.push('{');
    for (i, (k, v)) in members.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(k, out);
        out.push(':');
        write(v, form, out);
    }
    out.push('}');
}

/// The canonical text of an object (convenience for tests and callers holding a map).
pub fn object_text(map: &Map<String, Value>, form: Canonical) -> String {
    let mut s = String::new();
    write_object(map.iter().map(|(k, v)| (k.as_str(), v)), form, &mut s);
    s
}

fn write_string(s: &str, out: &mut String) {
    out.push('"');
    // Most strings need no escape at all; this test has no early exit, so it vectorises.
    let plain = !s.bytes().fold(false, |any, b| {
        any | (b < 0x20) | (b == b'"') | (b == b'\\')
    });
    if plain {
        out.push_str(s);
        out.push('"');
        return;
    }
    // Runs of characters that need no escape are copied whole: most strings are one run.
    let mut rest = s;
    // The characters to escape are all ASCII, so a byte scan finds them at char boundaries.
    while let Some(i) = rest
        .bytes()
        .position(|b| b == b'"' || b == b'\\' || b < 0x20)
    {
        let (run, tail) = rest.split_at(i);
        out.push_str(run);
        let mut chars = tail.chars();
        match chars.next() {
            Some('"') => out.push_str("\\\""),
            Some('\\') => out.push_str("\\\\"),
            Some('\u{8}') => out.push_str("\\b"),
            Some('\u{c}') => out.push_str("\\f"),
            Some('\n') => out.push_str("\\n"),
            Some('\r') => out.push_str("\\r"),
            Some('\t') => out.push_str("\\t"),
            Some(c) => out.push_str(&format!("\\u{:04x}", c as u32)),
            None => {}
        }
        rest = chars.as_str();
    }
    out.push_str(rest);
    out.push('"');
}

/// Integers parsed from JSON were doubles in JavaScript: beyond 2^53 they print rounded.
fn write_js_integer(i: i128, out: &mut String) {
    if i.unsigned_abs() <= 1 << 53 {
        out.push_str(&i.to_string());
    } else {
        write_js_double(i as f64, out);
    }
}

/// Number.prototype.toString for a double (ECMA-262 Number::toString, radix 10).
fn write_js_double(x: f64, out: &mut String) {
    if x.is_nan() || x.is_infinite() {
        // JSON.stringify writes null for these.
        out.push_str("null");
        return;
    }
    if x == 0.0 {
        out.push('0');
        return;
    }
    if x < 0.0 {
        out.push('-');
    }
    // Rust's `{:e}` gives the shortest digits that round-trip, as ECMA-262 requires: "d.ddde±x".
    let sci = format!("{:e}", x.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let k = digits.len() as i32;
    let n = exp.parse::<i32>().unwrap_or(0) + 1; // the decimal point sits after n digits
    if k <= n && n <= 21 {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', (n - k) as usize));
    } else if 0 < n && n <= 21 {
        let (int, frac) = digits.split_at(n as usize);
        out.push_str(int);
        out.push('.');
        out.push_str(frac);
    } else if -6 < n && n <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-n) as usize));
        out.push_str(&digits);
    } else {
        let (first, rest) = digits.split_at(1);
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        out.push('e');
        out.push(if n > 0 { '+' } else { '-' });
        out.push_str(&(n - 1).abs().to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn js(v: Value) -> String {
        let mut s = String::new();
        write(&v, Canonical::Js, &mut s);
        s
    }

    #[test]
    fn numbers_print_as_javascript_does() {
        // Expected strings are what node's JSON.stringify prints for these values.
        let cases: &[(f64, &str)] = &[
            (2.0, "2"),
            (1.5, "1.5"),
            (-0.25, "-0.25"),
            (0.1, "0.1"),
            (1e21, "1e+21"),
            (1.5e21, "1.5e+21"),
            (1e20, "100000000000000000000"),
            (123456789.125, "123456789.125"),
            (1e-6, "0.000001"),
            (1e-7, "1e-7"),
            (1.25e-7, "1.25e-7"),
            (0.000123, "0.000123"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (100.0, "100"),
        ];
        for (x, want) in cases {
            let mut s = String::new();
            write_js_double(*x, &mut s);
            assert_eq!(&s, want, "{x:e}");
        }
        assert_eq!(js(json!(9007199254740993u64)), "9007199254740992");
        assert_eq!(js(json!(-17)), "-17");
    }

    #[test]
    fn strings_and_objects_like_json_stringify() {
        let v: Value =
            serde_json::from_str(r#"{"b":1,"a":{"z":"x\"y\\/\u0001\n é ☃","y":[true,null,2.50]}}"#)
                .unwrap();
        assert_eq!(
            js(v.clone()),
            "{\"b\":1,\"a\":{\"z\":\"x\\\"y\\\\/\\u0001\\n é ☃\",\"y\":[true,null,2.5]}}"
        );
        let mut s = String::new();
        write(&v, Canonical::Sorted, &mut s);
        assert_eq!(
            s,
            "{\"a\":{\"y\":[true,null,2.5],\"z\":\"x\\\"y\\\\/\\u0001\\n é ☃\"},\"b\":1}"
        );
    }
}
