//! Magic 2 records, decoded in place from a (decompressed) records section.
//!
//! Records borrow their keys, values and headers from the section, so walking a batch allocates
//! nothing; headers are decoded lazily because most checks never look at them. Every length and
//! varint is bounds-checked against the record's own declared length, so a corrupt record is
//! reported with its byte position instead of being read past.
//!
//! The leniency mirrors Kafka's reader (DefaultRecord): any negative key/value/header-value length
//! means null, while a negative record length, header count or header key length is corruption.

use std::fmt;

/// A varint that cannot be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarintError {
    /// The input ends before the varint's last byte.
    Truncated,
    /// More than 5 (varint) or 10 (varlong) bytes: Kafka rejects these as too long.
    TooLong,
}

impl fmt::Display for VarintError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            VarintError::Truncated => "truncated",
            VarintError::TooLong => "too long",
        })
    }
}

/// Reads a zig-zag varint (at most 5 bytes) at `*pos`, advancing `*pos` past it.
/// Bits beyond 32 in the fifth byte are dropped, as Kafka's reader does.
#[inline(always)]
pub fn read_varint(buf: &[u8], pos: &mut usize) -> Result<i32, VarintError> {
    let raw = read_unsigned(buf, pos, 5)? as u32;
    Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32))
}

/// Reads a zig-zag varlong (at most 10 bytes) at `*pos`, advancing `*pos` past it.
#[inline(always)]
pub fn read_varlong(buf: &[u8], pos: &mut usize) -> Result<i64, VarintError> {
    let raw = read_unsigned(buf, pos, 10)?;
    Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
}

#[inline(always)]
fn read_unsigned(buf: &[u8], pos: &mut usize, max_bytes: usize) -> Result<u64, VarintError> {
    // Most varints in a record fit in one byte (offset delta, key length, header count) or two
    // (record and value lengths of up to 8 KiB, timestamp deltas of up to 8 s); answering those
    // without the loop is most of what record framing costs.
    if let Some(&b) = buf.get(*pos) {
        if b < 0x80 {
            *pos += 1;
            return Ok(b as u64);
        }
        if let Some(&c) = buf.get(*pos + 1) {
            if c < 0x80 {
                *pos += 2;
                return Ok((b & 0x7F) as u64 | (c as u64) << 7);
            }
        }
    }
    let mut value = 0u64;
    let mut at = *pos;
    for i in 0..max_bytes {
        let b = *buf.get(at).ok_or(VarintError::Truncated)?;
        at += 1;
        value |= ((b & 0x7F) as u64).wrapping_shl(7 * i as u32);
        if b & 0x80 == 0 {
            *pos = at;
            return Ok(value);
        }
    }
    Err(VarintError::TooLong)
}

/// Which part of a record a problem was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Length,
    Attributes,
    TimestampDelta,
    OffsetDelta,
    KeyLength,
    Key,
    ValueLength,
    Value,
    HeaderCount,
    HeaderKeyLength,
    HeaderKey,
    HeaderValueLength,
    HeaderValue,
}

impl Field {
    pub fn name(self) -> &'static str {
        match self {
            Field::Length => "length",
            Field::Attributes => "attributes",
            Field::TimestampDelta => "timestampDelta",
            Field::OffsetDelta => "offsetDelta",
            Field::KeyLength => "keyLength",
            Field::Key => "key",
            Field::ValueLength => "valueLength",
            Field::Value => "value",
            Field::HeaderCount => "headerCount",
            Field::HeaderKeyLength => "headerKeyLength",
            Field::HeaderKey => "headerKey",
            Field::HeaderValueLength => "headerValueLength",
            Field::HeaderValue => "headerValue",
        }
    }
}

/// What is wrong with a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordErrorKind {
    /// A varint runs past the record (or section) or is too long.
    Varint { field: Field, error: VarintError },
    /// A length (or count) that may not be negative is.
    NegativeLength { field: Field, value: i64 },
    /// A field's bytes run past the end of the record (or, for `Length`, of the section).
    PastEnd {
        field: Field,
        length: i64,
        available: usize,
    },
    /// The fields end before or after the record's declared length.
    LengthMismatch { declared: i32, actual: usize },
}

/// A record that cannot be decoded. `position` is the byte offset, inside the records section, of
/// the field that failed; `record_start` that of the record's length varint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("record at byte {record_start}: {kind} (at byte {position})")]
pub struct RecordError {
    pub record_start: usize,
    pub position: usize,
    pub kind: RecordErrorKind,
}

impl fmt::Display for RecordErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            RecordErrorKind::Varint { field, error } => {
                write!(f, "{} varint {error}", field.name())
            }
            RecordErrorKind::NegativeLength { field, value } => {
                write!(f, "negative {} {value}", field.name())
            }
            RecordErrorKind::PastEnd {
                field,
                length,
                available,
            } => {
                write!(
                    f,
                    "{} of {length} bytes runs past the end ({available} bytes left)",
                    field.name()
                )
            }
            RecordErrorKind::LengthMismatch { declared, actual } => {
                write!(
                    f,
                    "declared length {declared} but the fields take {actual} bytes"
                )
            }
        }
    }
}

/// One record, borrowing from the records section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// The body length from the record's leading varint (excludes the varint itself).
    pub length: i32,
    pub attributes: i8,
    pub timestamp_delta: i64,
    pub offset_delta: i32,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: Headers<'a>,
}

/// A record's headers; iterating yields `(key, value)` pairs. Already validated when the record
/// was decoded, so iteration cannot fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Headers<'a> {
    count: i32,
    bytes: &'a [u8],
}

impl<'a> Headers<'a> {
    pub fn len(&self) -> usize {
        self.count.max(0) as usize
    }
    pub fn is_empty(&self) -> bool {
        self.count <= 0
    }
}

impl<'a> IntoIterator for Headers<'a> {
    type Item = (&'a [u8], Option<&'a [u8]>);
    type IntoIter = HeaderIter<'a>;
    fn into_iter(self) -> HeaderIter<'a> {
        HeaderIter {
            left: self.count,
            bytes: self.bytes,
            pos: 0,
        }
    }
}

/// Iterator over a record's headers.
#[derive(Debug, Clone)]
pub struct HeaderIter<'a> {
    left: i32,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for HeaderIter<'a> {
    type Item = (&'a [u8], Option<&'a [u8]>);
    fn next(&mut self) -> Option<Self::Item> {
        if self.left <= 0 {
            return None;
        }
        self.left -= 1;
        match read_header(self.bytes, &mut self.pos) {
            Ok(h) => Some(h),
            Err(_) => {
                self.left = 0;
                None
            }
        }
    }
}

/// A header's key and (nullable) value.
pub type Header<'a> = (&'a [u8], Option<&'a [u8]>);

/// Where a field's bytes lie in the records section: `len` bytes from `start`, or null when `len`
/// is negative (Kafka reads any negative key, value or header-value length as null).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub len: i32,
}

impl Span {
    pub fn is_null(self) -> bool {
        self.len < 0
    }

    /// The field's bytes in `section`, the section the span was framed in (`None` if null).
    #[inline]
    pub fn bytes(self, section: &[u8]) -> Option<&[u8]> {
        if self.len < 0 {
            return None;
        }
        let end = self.start.saturating_add(self.len as usize);
        Some(section.get(self.start..end).unwrap_or_default())
    }
}

/// Reads `varint len + bytes` where a negative length means null. The field ends by `buf.len()`.
#[inline(always)]
fn read_span(
    buf: &[u8],
    pos: &mut usize,
    len_field: Field,
    data_field: Field,
) -> Result<Span, (usize, RecordErrorKind)> {
    let at = *pos;
    let len = read_varint(buf, pos).map_err(|error| {
        (
            at,
            RecordErrorKind::Varint {
                field: len_field,
                error,
            },
        )
    })?;
    if len < 0 {
        return Ok(Span {
            start: *pos,
            len: -1,
        });
    }
    skip(buf, pos, len, data_field)
}

/// Steps over `len` (≥ 0) bytes of `field` at `*pos`, which must end by `buf.len()`.
#[inline(always)]
fn skip(
    buf: &[u8],
    pos: &mut usize,
    len: i32,
    field: Field,
) -> Result<Span, (usize, RecordErrorKind)> {
    let available = buf.len().saturating_sub(*pos);
    if len as usize > available {
        return Err((
            *pos,
            RecordErrorKind::PastEnd {
                field,
                length: len as i64,
                available,
            },
        ));
    }
    let span = Span { start: *pos, len };
    *pos += len as usize;
    Ok(span)
}

/// Frames one header at `*pos` (key, nullable value); it must end by `buf.len()`.
#[inline(always)]
fn frame_header(buf: &[u8], pos: &mut usize) -> Result<(Span, Span), (usize, RecordErrorKind)> {
    let at = *pos;
    let klen = read_varint(buf, pos).map_err(|error| {
        (
            at,
            RecordErrorKind::Varint {
                field: Field::HeaderKeyLength,
                error,
            },
        )
    })?;
    if klen < 0 {
        return Err((
            at,
            RecordErrorKind::NegativeLength {
                field: Field::HeaderKeyLength,
                value: klen as i64,
            },
        ));
    }
    let key = skip(buf, pos, klen, Field::HeaderKey)?;
    let value = read_span(buf, pos, Field::HeaderValueLength, Field::HeaderValue)?;
    Ok((key, value))
}

#[inline]
fn read_header<'a>(buf: &'a [u8], pos: &mut usize) -> Result<Header<'a>, (usize, RecordErrorKind)> {
    let (key, value) = frame_header(buf, pos)?;
    Ok((key.bytes(buf).unwrap_or_default(), value.bytes(buf)))
}

/// One record's framing: its fixed fields and where its variable ones lie in the section. The one
/// place that knows the magic 2 record layout; [`read_record`] builds a [`Record`] from it, and
/// the `--deep` checker, which needs only the deltas, uses it directly so that it neither slices
/// keys and values nor moves whole records around (a third of its time before).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordFrame {
    /// The body length from the record's leading varint (excludes the varint itself).
    pub length: i32,
    pub attributes: i8,
    pub timestamp_delta: i64,
    pub offset_delta: i32,
    pub key: Span,
    pub value: Span,
    pub header_count: i32,
    /// Section position of the first header; the headers run to `end`.
    pub headers_start: usize,
    /// Section position just past the record: where the next one starts.
    pub end: usize,
}

/// Frames the record starting at `start` in `section`, checking every length and varint against
/// the record's declared length (and that against the section).
#[inline(always)]
pub fn frame_record(section: &[u8], start: usize) -> Result<RecordFrame, RecordError> {
    let fail = |(position, kind): (usize, RecordErrorKind)| RecordError {
        record_start: start,
        position,
        kind,
    };
    let mut at = start;
    let length = read_varint(section, &mut at).map_err(|error| {
        fail((
            start,
            RecordErrorKind::Varint {
                field: Field::Length,
                error,
            },
        ))
    })?;
    if length < 0 {
        return Err(fail((
            start,
            RecordErrorKind::NegativeLength {
                field: Field::Length,
                value: length as i64,
            },
        )));
    }
    let body = at;
    let available = section.len().saturating_sub(body);
    if length as usize > available {
        return Err(fail((
            start,
            RecordErrorKind::PastEnd {
                field: Field::Length,
                length: length as i64,
                available,
            },
        )));
    }
    let end = body + length as usize;
    // Every field is read from the record alone, so none can run into the next record.
    let record = section.get(..end).unwrap_or_default();
    let attributes = *record.get(at).ok_or_else(|| {
        fail((
            at,
            RecordErrorKind::PastEnd {
                field: Field::Attributes,
                length: 1,
                available: 0,
            },
        ))
    })? as i8;
    at += 1;
    let ts_at = at;
    let timestamp_delta = read_varlong(record, &mut at).map_err(|error| {
        fail((
            ts_at,
            RecordErrorKind::Varint {
                field: Field::TimestampDelta,
                error,
            },
        ))
    })?;
    let od_at = at;
    let offset_delta = read_varint(record, &mut at).map_err(|error| {
        fail((
            od_at,
            RecordErrorKind::Varint {
                field: Field::OffsetDelta,
                error,
            },
        ))
    })?;
    let key = read_span(record, &mut at, Field::KeyLength, Field::Key).map_err(fail)?;
    let value = read_span(record, &mut at, Field::ValueLength, Field::Value).map_err(fail)?;
    let hc_at = at;
    let header_count = read_varint(record, &mut at).map_err(|error| {
        fail((
            hc_at,
            RecordErrorKind::Varint {
                field: Field::HeaderCount,
                error,
            },
        ))
    })?;
    if header_count < 0 {
        return Err(fail((
            hc_at,
            RecordErrorKind::NegativeLength {
                field: Field::HeaderCount,
                value: header_count as i64,
            },
        )));
    }
    let headers_start = at;
    for _ in 0..header_count {
        // Each header takes at least two bytes, so a huge count fails here on the first
        // missing header rather than looping billions of times.
        frame_header(record, &mut at).map_err(fail)?;
    }
    if at != end {
        return Err(fail((
            at,
            RecordErrorKind::LengthMismatch {
                declared: length,
                actual: at - body,
            },
        )));
    }
    Ok(RecordFrame {
        length,
        attributes,
        timestamp_delta,
        offset_delta,
        key,
        value,
        header_count,
        headers_start,
        end,
    })
}

/// Decodes the record at `*pos` in `section`, advancing `*pos` past it.
pub fn read_record<'a>(section: &'a [u8], pos: &mut usize) -> Result<Record<'a>, RecordError> {
    let frame = frame_record(section, *pos)?;
    *pos = frame.end;
    Ok(Record {
        length: frame.length,
        attributes: frame.attributes,
        timestamp_delta: frame.timestamp_delta,
        offset_delta: frame.offset_delta,
        key: frame.key.bytes(section),
        value: frame.value.bytes(section),
        headers: Headers {
            count: frame.header_count,
            bytes: section
                .get(frame.headers_start..frame.end)
                .unwrap_or_default(),
        },
    })
}

/// Iterates the records of a decompressed records section. Stops after the first error: once a
/// length is wrong, nothing after it can be framed.
#[derive(Debug, Clone)]
pub struct RecordIter<'a> {
    section: &'a [u8],
    pos: usize,
    failed: bool,
}

impl<'a> RecordIter<'a> {
    pub fn new(section: &'a [u8]) -> Self {
        RecordIter {
            section,
            pos: 0,
            failed: false,
        }
    }
    /// Byte offset of the next record in the section.
    pub fn position(&self) -> usize {
        self.pos
    }
}

impl<'a> Iterator for RecordIter<'a> {
    type Item = Result<Record<'a>, RecordError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.section.len() {
            return None;
        }
        let r = read_record(self.section, &mut self.pos);
        self.failed = r.is_err();
        Some(r)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn put_varlong(out: &mut Vec<u8>, v: i64) {
        let mut z = ((v << 1) ^ (v >> 63)) as u64;
        while z >= 0x80 {
            out.push((z as u8) | 0x80);
            z >>= 7;
        }
        out.push(z as u8);
    }

    pub fn put_varint(out: &mut Vec<u8>, v: i32) {
        put_varlong(out, v as i64)
    }

    fn put_bytes(out: &mut Vec<u8>, b: Option<&[u8]>) {
        match b {
            None => put_varint(out, -1),
            Some(b) => {
                put_varint(out, b.len() as i32);
                out.extend_from_slice(b);
            }
        }
    }

    /// Encodes one record (test helper shared with the control and deep tests).
    pub fn encode_record(
        ts_delta: i64,
        offset_delta: i32,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&[u8], Option<&[u8]>)],
    ) -> Vec<u8> {
        let mut body = vec![0u8];
        put_varlong(&mut body, ts_delta);
        put_varint(&mut body, offset_delta);
        put_bytes(&mut body, key);
        put_bytes(&mut body, value);
        put_varint(&mut body, headers.len() as i32);
        for (k, v) in headers {
            put_bytes(&mut body, Some(k));
            put_bytes(&mut body, *v);
        }
        let mut out = Vec::new();
        put_varint(&mut out, body.len() as i32);
        out.extend(body);
        out
    }

    #[test]
    fn varints() {
        for v in [0i32, 1, -1, 63, -64, 64, 300, -300, i32::MAX, i32::MIN] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            let mut p = 0;
            assert_eq!(read_varint(&b, &mut p), Ok(v));
            assert_eq!(p, b.len());
        }
        for v in [
            0i64,
            -1,
            1 << 40,
            -(1 << 40),
            i64::MAX,
            i64::MIN,
            1_700_000_000_000,
        ] {
            let mut b = Vec::new();
            put_varlong(&mut b, v);
            let mut p = 0;
            assert_eq!(read_varlong(&b, &mut p), Ok(v));
            assert_eq!(p, b.len());
        }
        let mut p = 0;
        assert_eq!(
            read_varint(&[0x80, 0x80], &mut p),
            Err(VarintError::Truncated)
        );
        assert_eq!(p, 0, "position untouched on error");
        assert_eq!(read_varint(&[], &mut p), Err(VarintError::Truncated));
        assert_eq!(read_varint(&[0xFF; 6], &mut p), Err(VarintError::TooLong));
        assert_eq!(read_varlong(&[0xFF; 11], &mut p), Err(VarintError::TooLong));
        assert_eq!(
            read_varlong(&[0xFF; 9], &mut p),
            Err(VarintError::Truncated)
        );
        // A 64-bit timestamp delta does not fit a varint but reads as a varlong.
        let mut b = Vec::new();
        put_varlong(&mut b, 1 << 35);
        assert_eq!(read_varlong(&b, &mut 0), Ok(1 << 35));
        assert_eq!(read_varint(&b, &mut 0), Err(VarintError::TooLong));
    }

    #[test]
    fn decodes_records_and_headers() {
        let mut section = encode_record(0, 0, Some(b"k"), Some(b"value"), &[]);
        section.extend(encode_record(
            -5_000_000_000,
            1,
            None,
            None,
            &[(b"h1", Some(b"v1")), (b"h2", None)],
        ));
        let records: Vec<_> = RecordIter::new(&section).collect::<Result<_, _>>().unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].key, Some(&b"k"[..]));
        assert_eq!(records[0].value, Some(&b"value"[..]));
        assert!(records[0].headers.is_empty());
        assert_eq!(records[1].timestamp_delta, -5_000_000_000);
        assert_eq!(records[1].offset_delta, 1);
        assert_eq!(records[1].key, None);
        let headers: Vec<_> = records[1].headers.into_iter().collect();
        assert_eq!(
            headers,
            vec![(&b"h1"[..], Some(&b"v1"[..])), (&b"h2"[..], None)]
        );
        assert_eq!(records[1].headers.len(), 2);
    }

    #[test]
    fn frames_point_at_the_fields() {
        let mut section = encode_record(3, 0, Some(b"k"), None, &[]);
        let second = section.len();
        section.extend(encode_record(
            -7,
            4,
            None,
            Some(b"val"),
            &[(b"hk", Some(b"hv"))],
        ));
        let a = frame_record(&section, 0).unwrap();
        assert_eq!((a.timestamp_delta, a.offset_delta), (3, 0));
        assert_eq!(a.key.bytes(&section), Some(&b"k"[..]));
        assert!(a.value.is_null());
        assert_eq!(
            (a.header_count, a.headers_start, a.end),
            (0, second, second)
        );
        let b = frame_record(&section, a.end).unwrap();
        assert_eq!((b.timestamp_delta, b.offset_delta), (-7, 4));
        assert!(b.key.is_null());
        assert_eq!(b.value.bytes(&section), Some(&b"val"[..]));
        assert_eq!(b.header_count, 1);
        assert_eq!(b.end, section.len());
        assert_eq!(
            &section[b.headers_start..b.end],
            &[4, b'h', b'k', 4, b'h', b'v'][..]
        );
        // The same error as the full decode, with the record's own start.
        let e = frame_record(&section[..section.len() - 1], a.end).unwrap_err();
        assert_eq!(e.record_start, second);
        assert!(matches!(
            e.kind,
            RecordErrorKind::PastEnd {
                field: Field::Length,
                ..
            }
        ));
    }

    fn first_error(section: &[u8]) -> RecordError {
        RecordIter::new(section)
            .find_map(Result::err)
            .expect("an error")
    }

    #[test]
    fn malformed_records() {
        let good = encode_record(0, 0, Some(b"key"), Some(b"val"), &[(b"h", Some(b"v"))]);
        // Truncated length varint.
        assert_eq!(
            first_error(&[0x80]),
            RecordError {
                record_start: 0,
                position: 0,
                kind: RecordErrorKind::Varint {
                    field: Field::Length,
                    error: VarintError::Truncated
                }
            }
        );
        // Negative record length (zig-zag 1 = -1).
        assert_eq!(
            first_error(&[0x01, 0, 0]).kind,
            RecordErrorKind::NegativeLength {
                field: Field::Length,
                value: -1
            }
        );
        // Length past the end of the section.
        let e = first_error(&good[..good.len() - 1]);
        assert_eq!(
            e.kind,
            RecordErrorKind::PastEnd {
                field: Field::Length,
                length: good.len() as i64 - 1,
                available: good.len() - 2
            }
        );
        // Second record starts after a good one: positions are section offsets.
        let mut two = good.clone();
        two.push(0x80);
        let e = first_error(&two);
        assert_eq!((e.record_start, e.position), (good.len(), good.len()));
        // Key length past the record's end (record length says 3 bytes of body).
        let mut bad = vec![];
        put_varint(&mut bad, 4); // length
        bad.push(0); // attributes
        bad.push(0); // ts delta
        bad.push(0); // offset delta
        put_varint(&mut bad, 10); // key length
        bad.extend([0u8; 20]);
        let e = first_error(&bad);
        assert_eq!(
            e.kind,
            RecordErrorKind::PastEnd {
                field: Field::Key,
                length: 10,
                available: 0
            }
        );
        assert_eq!(e.position, 5);
        // Declared length longer than the fields.
        let mut bad = good.clone();
        bad[0] += 2; // zig-zag: +1 byte
        bad.push(0);
        let e = first_error(&bad);
        assert_eq!(
            e.kind,
            RecordErrorKind::LengthMismatch {
                declared: good.len() as i32,
                actual: good.len() - 1
            }
        );
        // Declared length shorter than the fields: the header runs past the record's end.
        let mut bad = good.clone();
        bad[0] -= 2;
        let e = first_error(&bad);
        assert!(
            matches!(
                e.kind,
                RecordErrorKind::PastEnd {
                    field: Field::HeaderValue,
                    ..
                }
            ),
            "{e:?}"
        );
        // Negative header count.
        let mut bad = vec![];
        put_varint(&mut bad, 6);
        bad.extend([0, 0, 0, 1, 1]); // attrs, ts, od, null key, null value
        put_varint(&mut bad, -2);
        let e = first_error(&bad);
        assert_eq!(
            e.kind,
            RecordErrorKind::NegativeLength {
                field: Field::HeaderCount,
                value: -2
            }
        );
        // Negative header key length.
        let mut bad = vec![];
        put_varint(&mut bad, 7);
        bad.extend([0, 0, 0, 1, 1, 2, 1]); // one header, key length -1
        let e = first_error(&bad);
        assert_eq!(
            e.kind,
            RecordErrorKind::NegativeLength {
                field: Field::HeaderKeyLength,
                value: -1
            }
        );
        assert_eq!(e.position, 7);
        // Huge header count in a tiny record.
        let mut bad = vec![];
        put_varint(&mut bad, 10);
        bad.extend([0, 0, 0, 1, 1]);
        put_varint(&mut bad, i32::MAX);
        let e = first_error(&bad);
        assert!(
            matches!(
                e.kind,
                RecordErrorKind::Varint {
                    field: Field::HeaderKeyLength,
                    ..
                }
            ),
            "{e:?}"
        );
        // Timestamp varlong runs past the record.
        let bad = [0x04, 0, 0xFF, 0xFF, 0xFF, 0xFF];
        let e = first_error(&bad);
        assert_eq!(
            e.kind,
            RecordErrorKind::Varint {
                field: Field::TimestampDelta,
                error: VarintError::Truncated
            }
        );
        // The iterator stops after an error.
        let mut it = RecordIter::new(&[0x80, 0x00, 0x00]);
        assert!(it.next().unwrap().is_err());
        assert!(it.next().is_none());
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut s = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let good = encode_record(
            7,
            3,
            Some(b"key"),
            Some(b"value"),
            &[(b"a", Some(b"b")), (b"c", None)],
        );
        for i in 0..5000 {
            let mut buf = if i % 2 == 0 {
                let mut g = good.repeat(3);
                for _ in 0..(next() % 3 + 1) {
                    let at = next() as usize % g.len();
                    g[at] = next() as u8;
                }
                g
            } else {
                (0..next() % 48).map(|_| next() as u8).collect()
            };
            if next() % 4 == 0 {
                buf.truncate(next() as usize % (buf.len() + 1));
            }
            for r in RecordIter::new(&buf).flatten() {
                let _ = r.headers.into_iter().count();
            }
            let _ = read_varlong(&buf, &mut (next() as usize % (buf.len() + 1)));
        }
    }
}
