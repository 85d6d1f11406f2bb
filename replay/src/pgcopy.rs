//! PostgreSQL's binary COPY format, written by hand.
//!
//! Why by hand: the generic `BinaryCopyInWriter` of tokio-postgres boxes every value behind
//! `ToSql` and flushes per row; the replay already knows each column's wire type from the
//! validated mapping, so it appends big-endian fields into one buffer per chunk and hands the
//! server megabytes at a time.
//!
//! Layout (all integers big-endian): the 11-byte signature `PGCOPY\n\xff\r\n\0`, int32 flags (0),
//! int32 header-extension length (0); then per tuple an int16 field count and per field an int32
//! length (-1 = NULL) followed by that many bytes in the type's binary `recv` form; finally the
//! int16 trailer -1. Timestamps are int64 microseconds since 2000-01-01 UTC, float8 is the IEEE
//! bit pattern, uuid its 16 bytes, jsonb a version byte (1) and the JSON text.

/// Signature, flags and extension length.
pub const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// The end-of-data marker.
pub const TRAILER: &[u8] = &[0xff, 0xff];

pub fn row_start(out: &mut Vec<u8>, fields: usize) {
    out.extend_from_slice(&(fields as i16).to_be_bytes());
}

pub fn null(out: &mut Vec<u8>) {
    out.extend_from_slice(&(-1i32).to_be_bytes());
}

pub fn i64_field(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(&8i32.to_be_bytes());
    out.extend_from_slice(&v.to_be_bytes());
}

pub fn f64_field(out: &mut Vec<u8>, v: f64) {
    out.extend_from_slice(&8i32.to_be_bytes());
    out.extend_from_slice(&v.to_bits().to_be_bytes());
}

/// A field of raw bytes (text, uuid, bool). Values over 1 GiB cannot reach here: Kafka records
/// are far smaller, and PostgreSQL's own field limit is 1 GiB.
pub fn bytes_field(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as i32).to_be_bytes());
    out.extend_from_slice(b);
}

pub fn jsonb_field(out: &mut Vec<u8>, json: &str) {
    out.extend_from_slice(&(json.len() as i32 + 1).to_be_bytes());
    out.push(1);
    out.extend_from_slice(json.as_bytes());
}

/// One tuple read back from data this module wrote.
#[derive(Debug, Clone, Copy)]
pub struct Tuple<'a> {
    /// The fields, from the first field's length word to the tuple's end.
    fields: &'a [u8],
    count: usize,
}

impl<'a> Tuple<'a> {
    /// Field `i`: `Some(None)` for NULL, `None` when there is no such field (or the bytes are
    /// not a tuple).
    pub fn field(&self, i: usize) -> Option<Option<&'a [u8]>> {
        if i >= self.count {
            return None;
        }
        let mut at = 0usize;
        for n in 0..=i {
            let len = i32::from_be_bytes(self.fields.get(at..at + 4)?.try_into().ok()?);
            at += 4;
            if len < 0 {
                if n == i {
                    return Some(None);
                }
                continue;
            }
            let end = at.checked_add(len as usize)?;
            if n == i {
                return Some(Some(self.fields.get(at..end)?));
            }
            at = end;
        }
        None
    }
}

/// Walks the tuples of `data` (no header, no trailer): what [`row_start`] and the field writers
/// appended. Stops at the first malformed tuple.
pub fn tuples(data: &[u8]) -> impl Iterator<Item = Tuple<'_>> {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        let count = i16::from_be_bytes(data.get(at..at + 2)?.try_into().ok()?);
        let count = usize::try_from(count).ok()?;
        let start = at + 2;
        let mut end = start;
        for _ in 0..count {
            let len = i32::from_be_bytes(data.get(end..end + 4)?.try_into().ok()?);
            end += 4 + usize::try_from(len).unwrap_or(0);
        }
        let fields = data.get(start..end)?;
        at = end;
        Some(Tuple { fields, count })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_19_bytes() {
        assert_eq!(HEADER.len(), 19);
        let mut v = vec![];
        row_start(&mut v, 2);
        null(&mut v);
        jsonb_field(&mut v, "{}");
        assert_eq!(v, [0, 2, 255, 255, 255, 255, 0, 0, 0, 3, 1, b'{', b'}']);
    }

    #[test]
    fn tuples_read_back() {
        let mut v = vec![];
        row_start(&mut v, 3);
        i64_field(&mut v, 7);
        null(&mut v);
        bytes_field(&mut v, b"abc");
        row_start(&mut v, 1);
        bytes_field(&mut v, b"");
        let t: Vec<_> = tuples(&v).collect();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].field(0), Some(Some(&7i64.to_be_bytes()[..])));
        assert_eq!(t[0].field(1), Some(None));
        assert_eq!(t[0].field(2), Some(Some(&b"abc"[..])));
        assert_eq!(t[0].field(3), None);
        assert_eq!(t[1].field(0), Some(Some(&b""[..])));
        // Truncated data ends the walk instead of reading past it.
        assert_eq!(tuples(&v[..v.len() - 1]).count(), 1);
    }
}
