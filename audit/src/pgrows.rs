//! Table rows as JSON objects, equal to what `row_to_json` gives, without the server building
//! JSON: `row_to_json` costs the server three to four times a plain binary COPY of the same rows,
//! and the server is the bottleneck of `audit verify`. So the common column types are sent in
//! their binary form and turned into JSON values here, exactly as `to_json` renders them; any
//! other type is rendered by the server with `to_json(column)` and parsed.
//!
//! Binary forms (PostgreSQL's `*send` functions, big-endian):
//!
//! ```text
//! int2/int4/int8     2/4/8-byte two's complement
//! float4/float8      IEEE 754 single/double
//! bool               1 byte
//! uuid               16 bytes
//! timestamp(tz)      int64 microseconds since 2000-01-01 00:00:00 (UTC for timestamptz)
//! date               int32 days since 2000-01-01
//! text/varchar/name/json   UTF-8 bytes
//! jsonb              version byte 1, then the text form
//! ```

use chrono::{DateTime, NaiveDate, TimeDelta};
use std::sync::Arc;

use serde_json::{Number, Value};

use crate::entry::Entry;

/// How one column's binary field becomes a JSON value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decode {
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Bool,
    Text,
    Json,
    Jsonb,
    Uuid,
    Timestamptz,
    Timestamp,
    Date,
    /// Rendered by the server with `to_json(column)::text` and parsed here.
    ViaJson,
}

impl Decode {
    /// The decoder for a type as `regtype::text` names it.
    pub fn for_type(regtype: &str) -> Decode {
        match regtype {
            "smallint" => Decode::Int2,
            "integer" => Decode::Int4,
            "bigint" => Decode::Int8,
            "real" => Decode::Float4,
            "double precision" => Decode::Float8,
            "boolean" => Decode::Bool,
            "text" | "character varying" | "name" => Decode::Text,
            "json" => Decode::Json,
            "jsonb" => Decode::Jsonb,
            "uuid" => Decode::Uuid,
            "timestamp with time zone" => Decode::Timestamptz,
            "timestamp without time zone" => Decode::Timestamp,
            "date" => Decode::Date,
            _ => Decode::ViaJson,
        }
    }

    /// Whether the server must send `to_json(column)::text` instead of the column.
    pub fn server_renders(self) -> bool {
        self == Decode::ViaJson
    }
}

/// A field that is not the binary form its type promises.
#[derive(Debug, PartialEq, Eq)]
pub struct BadField(pub String);

fn fixed<const N: usize>(b: &[u8], what: &str) -> Result<[u8; N], BadField> {
    b.try_into()
        .map_err(|_| BadField(format!("{what} field of {} bytes", b.len())))
}

fn text(b: &[u8]) -> Result<&str, BadField> {
    std::str::from_utf8(b).map_err(|e| BadField(format!("text not UTF-8: {e}")))
}

fn json(b: &[u8]) -> Result<Value, BadField> {
    serde_json::from_slice(b).map_err(|e| BadField(format!("json field: {e}")))
}

/// The JSON value `to_json` gives for a field (`None` = SQL NULL).
pub fn decode(d: Decode, field: Option<&[u8]>) -> Result<Value, BadField> {
    let Some(b) = field else {
        return Ok(Value::Null);
    };
    Ok(match d {
        Decode::Int2 => Value::from(i16::from_be_bytes(fixed(b, "int2")?)),
        Decode::Int4 => Value::from(i32::from_be_bytes(fixed(b, "int4")?)),
        Decode::Int8 => Value::from(i64::from_be_bytes(fixed(b, "int8")?)),
        // float4out prints the shortest decimal that reads back as the same float4; that
        // decimal, read as a double, is what a JSON reader of row_to_json gets.
        Decode::Float4 => float(f32::from_be_bytes(fixed(b, "float4")?).to_string()),
        Decode::Float8 => float(f64::from_be_bytes(fixed(b, "float8")?).to_string()),
        Decode::Bool => Value::Bool(fixed::<1>(b, "bool")? != [0]),
        Decode::Text => Value::String(text(b)?.to_string()),
        Decode::Json | Decode::ViaJson => json(b)?,
        Decode::Jsonb => match b.split_first() {
            Some((1, rest)) => json(rest)?,
            _ => return Err(BadField("jsonb field without version 1".into())),
        },
        Decode::Uuid => {
            let u = u128::from_be_bytes(fixed(b, "uuid")?);
            let h = format!("{u:032x}");
            Value::String(format!(
                "{}-{}-{}-{}-{}",
                h.get(0..8).unwrap_or_default(),
                h.get(8..12).unwrap_or_default(),
                h.get(12..16).unwrap_or_default(),
                h.get(16..20).unwrap_or_default(),
                h.get(20..32).unwrap_or_default()
            ))
        }
        Decode::Timestamptz | Decode::Timestamp => {
            let us = i64::from_be_bytes(fixed(b, "timestamp")?);
            let zone = if d == Decode::Timestamptz {
                "+00:00"
            } else {
                ""
            };
            Value::String(timestamp(us, zone))
        }
        Decode::Date => {
            let days = i32::from_be_bytes(fixed(b, "date")?);
            Value::String(match days {
                i32::MAX => "infinity".to_string(),
                i32::MIN => "-infinity".to_string(),
                _ => epoch()
                    .checked_add_signed(TimeDelta::days(i64::from(days)))
                    .map(|d| d.format("%Y-%m-%d").to_string())
                    .unwrap_or_else(|| format!("date {days} days from 2000-01-01")),
            })
        }
    })
}

/// float4out/float8out text as a JSON number; NaN and infinities are strings in row_to_json.
fn float(s: String) -> Value {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() => Number::from_f64(x).map_or(Value::Null, Value::Number),
        _ => Value::String(match s.as_str() {
            "inf" => "Infinity".to_string(),
            "-inf" => "-Infinity".to_string(),
            _ => "NaN".to_string(),
        }),
    }
}

fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or_default()
}

/// `to_json`'s timestamp text: `2026-11-20T08:00:01.5+00:00` (fraction trimmed of zeros).
fn timestamp(us: i64, zone: &str) -> String {
    match us {
        i64::MAX => return "infinity".into(),
        i64::MIN => return "-infinity".into(),
        _ => {}
    }
    let Some(t) = DateTime::from_timestamp_micros(946_684_800_000_000 + us) else {
        return format!("timestamp {us} us from 2000-01-01");
    };
    use chrono::{Datelike, Timelike};
    let year = t.year();
    if !(0..=9999).contains(&year) {
        // Rare enough for the general formatter (PostgreSQL writes BC years its own way).
        return t.format("%Y-%m-%dT%H:%M:%S").to_string() + zone;
    }
    // Digits pushed by hand: chrono's formatter was a tenth of `audit verify`'s time.
    let mut s = String::with_capacity(32);
    let mut digits = |n: u32, width: u32, sep: Option<char>| {
        for i in (0..width).rev() {
            s.push(char::from_digit(n / 10u32.pow(i) % 10, 10).unwrap_or('0'));
        }
        if let Some(c) = sep {
            s.push(c);
        }
    };
    digits(year as u32, 4, Some('-'));
    digits(t.month(), 2, Some('-'));
    digits(t.day(), 2, Some('T'));
    digits(t.hour(), 2, Some(':'));
    digits(t.minute(), 2, Some(':'));
    digits(t.second(), 2, None);
    let frac = us.rem_euclid(1_000_000);
    if frac != 0 {
        let f = format!(".{frac:06}");
        s.push_str(f.trim_end_matches('0'));
    }
    s.push_str(zone);
    s
}

/// Decodes one row's fields into an object, columns in table order.
pub fn row(columns: &[(Arc<str>, Decode)], fields: &[Option<&[u8]>]) -> Result<Entry, BadField> {
    let mut m = Vec::with_capacity(columns.len());
    for ((name, d), f) in columns.iter().zip(fields) {
        m.push((
            name.clone(),
            decode(*d, *f).map_err(|BadField(e)| BadField(format!("column {name}: {e}")))?,
        ));
    }
    Ok(Entry(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_fields_render_like_to_json() {
        let ts = |us: i64| decode(Decode::Timestamptz, Some(&us.to_be_bytes())).unwrap();
        assert_eq!(ts(0), "2000-01-01T00:00:00+00:00");
        assert_eq!(ts(1_500_000), "2000-01-01T00:00:01.5+00:00");
        assert_eq!(ts(-1), "1999-12-31T23:59:59.999999+00:00");
        assert_eq!(
            decode(
                Decode::Uuid,
                Some(&0x0123456789abcdef0011223344556677u128.to_be_bytes())
            )
            .unwrap(),
            "01234567-89ab-cdef-0011-223344556677"
        );
        assert_eq!(
            decode(Decode::Float4, Some(&1.1f32.to_be_bytes())).unwrap(),
            serde_json::json!(1.1)
        );
        assert_eq!(
            decode(Decode::Float8, Some(&f64::NAN.to_be_bytes())).unwrap(),
            "NaN"
        );
        assert_eq!(
            decode(Decode::Date, Some(&(-1i32).to_be_bytes())).unwrap(),
            "1999-12-31"
        );
        assert_eq!(
            decode(Decode::Jsonb, Some(b"\x01{\"a\": 1}")).unwrap(),
            serde_json::json!({"a": 1})
        );
        assert!(decode(Decode::Int4, Some(&[1, 2])).is_err());
        assert_eq!(decode(Decode::Int8, None).unwrap(), Value::Null);
    }
}
