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
}
