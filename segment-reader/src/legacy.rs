//! Legacy (magic 0/1) compressed wrappers: a message whose value is a compressed message set.
//!
//! Even a shallow walk needs to look inside a wrapper: the wrapper's own offset is its *last* inner
//! message's, so its first offset and message count are only known after decompressing. That is
//! why [`wrapper_summary`] is one pass over the inner messages with no per-message allocation,
//! decompressing into the caller's reusable buffer.
//!
//! Offset rules, as Kafka's legacy reader applies them:
//! - magic 0 wrappers hold absolute inner offsets, and the wrapper carries the last of them;
//! - magic 1 wrappers hold relative inner offsets: absolute = wrapper − lastInnerRelative + inner,
//!   and a wrapper offset below the last relative offset is invalid — except a wrapper offset of 0,
//!   which some librdkafka versions wrote, where the inner offsets are taken as they are.
//!
//! Kafka stops silently at a partial inner message; here that is reported, since no writer
//! produces one and it means lost messages.

use std::fmt;

use crate::batch::{legacy_crc, Codec, LegacyError, LegacyMessage, LOG_OVERHEAD, V0_MIN_SIZE};
use crate::compression::{decompress, DecompressError};
use crate::finding::Kind;

/// What the partition checks need to know about a compressed wrapper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WrapperSummary {
    /// Inner messages.
    pub count: u32,
    /// Absolute offset of the first inner message.
    pub first_offset: i64,
    /// Absolute offset of the last inner message.
    pub last_offset: i64,
    /// Add to an inner message's stored offset to get its absolute offset (0 for magic 0 and for
    /// librdkafka's zero wrapper offset).
    pub offset_base: i64,
    /// Magic 1: the largest inner timestamp (the wrapper's own for LogAppendTime wrappers, whose
    /// inner timestamps Kafka ignores). Magic 0: -1.
    pub max_timestamp: i64,
}

/// A problem with one inner message of a wrapper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InnerError {
    /// Fewer than 12 bytes (offset + size) left, but not none.
    TruncatedHeader {
        available: usize,
    },
    /// The size field is below the 14-byte minimum of a magic 0 message.
    SizeTooSmall {
        size: i32,
    },
    /// The message runs past the end of the decompressed set.
    PastEnd {
        size: i32,
        available: usize,
    },
    /// The inner magic is neither 0 nor 1.
    BadMagic {
        magic: i8,
    },
    Crc {
        offset: i64,
        stored: u32,
        computed: u32,
    },
    Parse {
        offset: i64,
        error: LegacyError,
    },
    /// Inner messages may not themselves be compressed.
    Compressed {
        offset: i64,
        codec: Codec,
    },
    /// Inner offsets must strictly increase.
    OffsetOrder {
        previous: i64,
        offset: i64,
    },
}

impl fmt::Display for InnerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            InnerError::TruncatedHeader { available } => {
                write!(
                    f,
                    "{available} trailing bytes, too few for an offset and size"
                )
            }
            InnerError::SizeTooSmall { size } => {
                write!(f, "size {size} is below the minimum {V0_MIN_SIZE}")
            }
            InnerError::PastEnd { size, available } => {
                write!(f, "size {size} runs past the end ({available} bytes left)")
            }
            InnerError::BadMagic { magic } => write!(f, "magic {magic}"),
            InnerError::Crc {
                offset,
                stored,
                computed,
            } => {
                write!(
                    f,
                    "offset {offset}: stored CRC {stored:#010x}, computed {computed:#010x}"
                )
            }
            InnerError::Parse { offset, error } => write!(f, "offset {offset}: {error:?}"),
            InnerError::Compressed { offset, codec } => {
                write!(f, "offset {offset} is itself {}-compressed", codec.name())
            }
            InnerError::OffsetOrder { previous, offset } => {
                write!(f, "offset {offset} does not follow {previous}")
            }
        }
    }
}

/// Why a wrapper cannot be summarised.
#[derive(Debug, thiserror::Error)]
pub enum WrapperError {
    #[error("wrapper is not compressed")]
    NotCompressed,
    #[error("wrapper has a null value")]
    NullValue,
    #[error("{0}")]
    Decompress(#[from] DecompressError),
    /// `position` is the inner message's byte offset in the decompressed message set.
    #[error("inner message at byte {position} of the decompressed set: {cause}")]
    Inner { position: u64, cause: InnerError },
    #[error("compressed message set holds no messages")]
    Empty,
    /// Magic 0: the wrapper offset is not the last inner offset. Magic 1: it is below the last
    /// relative inner offset (and not 0).
    #[error(
        "wrapper offset {wrapper} does not match last inner offset {last_inner} (magic {magic})"
    )]
    WrapperOffset {
        magic: i8,
        wrapper: i64,
        last_inner: i64,
    },
}

impl WrapperError {
    /// The finding kind this error is reported as.
    pub fn kind(&self) -> Kind {
        match self {
            WrapperError::NotCompressed | WrapperError::NullValue | WrapperError::Decompress(_) => {
                Kind::DecompressionFailed
            }
            WrapperError::Inner {
                cause: InnerError::Crc { .. },
                ..
            } => Kind::CrcMismatch,
            WrapperError::Inner {
                cause: InnerError::OffsetOrder { .. },
                ..
            }
            | WrapperError::WrapperOffset { .. } => Kind::LegacyOffsetMismatch,
            WrapperError::Inner { .. } | WrapperError::Empty => Kind::RecordMalformed,
        }
    }
}

/// Iterates the inner messages of a decompressed message set, yielding each one's byte position
/// and parsed message (CRC verified, uncompressed, offsets as stored). Stops after the first error.
pub fn inner_messages(decompressed: &[u8]) -> InnerMessages<'_> {
    InnerMessages {
        buf: decompressed,
        pos: 0,
        done: false,
        previous: None,
    }
}

/// Iterator returned by [`inner_messages`].
#[derive(Debug, Clone)]
pub struct InnerMessages<'a> {
    buf: &'a [u8],
    pos: usize,
    done: bool,
    previous: Option<i64>,
}

impl<'a> InnerMessages<'a> {
    fn step(&mut self) -> Result<LegacyMessage<'a>, InnerError> {
        let rest = self.buf.get(self.pos..).unwrap_or_default();
        let (Some(offset), Some(size)) = (crate::be::i64(rest, 0), crate::be::i32(rest, 8)) else {
            return Err(InnerError::TruncatedHeader {
                available: rest.len(),
            });
        };
        if size < V0_MIN_SIZE as i32 {
            return Err(InnerError::SizeTooSmall { size });
        }
        let available = rest.len() - LOG_OVERHEAD;
        let Some(entry) = rest.get(..LOG_OVERHEAD + size as usize) else {
            return Err(InnerError::PastEnd { size, available });
        };
        // The CRC first: it covers the magic, so a damaged magic byte is reported as damage.
        let stored = crate::be::u32(entry, 12).unwrap_or(0);
        let computed = legacy_crc(entry).unwrap_or(0);
        if stored != computed {
            return Err(InnerError::Crc {
                offset,
                stored,
                computed,
            });
        }
        let magic = crate::be::i8(entry, 16).unwrap_or(-1);
        if !(0..=1).contains(&magic) {
            return Err(InnerError::BadMagic { magic });
        }
        let msg =
            LegacyMessage::parse(entry).map_err(|error| InnerError::Parse { offset, error })?;
        if msg.codec() != Codec::None {
            return Err(InnerError::Compressed {
                offset,
                codec: msg.codec(),
            });
        }
        if let Some(previous) = self.previous.filter(|&p| p >= offset) {
            return Err(InnerError::OffsetOrder { previous, offset });
        }
        self.previous = Some(offset);
        Ok(msg)
    }
}

impl<'a> Iterator for InnerMessages<'a> {
    type Item = Result<(u64, LegacyMessage<'a>), (u64, InnerError)>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.pos >= self.buf.len() {
            return None;
        }
        let at = self.pos as u64;
        match self.step() {
            Ok(msg) => {
                self.pos += LOG_OVERHEAD + msg.size.max(0) as usize;
                Some(Ok((at, msg)))
            }
            Err(e) => {
                self.done = true;
                Some(Err((at, e)))
            }
        }
    }
}

/// Decompresses `wrapper`'s value into `scratch` (reused across calls) and summarises the inner
/// messages: count, absolute first/last offsets, max timestamp. Every inner CRC is verified.
pub fn wrapper_summary(
    wrapper: &LegacyMessage<'_>,
    scratch: &mut Vec<u8>,
) -> Result<WrapperSummary, WrapperError> {
    if wrapper.codec() == Codec::None {
        return Err(WrapperError::NotCompressed);
    }
    let value = wrapper.value.ok_or(WrapperError::NullValue)?;
    decompress(wrapper.codec(), value, scratch, true)?;
    summarize_inner(wrapper, scratch)
}

/// [`wrapper_summary`] over an already decompressed message set.
pub fn summarize_inner(
    wrapper: &LegacyMessage<'_>,
    decompressed: &[u8],
) -> Result<WrapperSummary, WrapperError> {
    let mut count = 0u32;
    let mut first_raw = 0i64;
    let mut last_raw = 0i64;
    let mut max_ts = -1i64;
    for item in inner_messages(decompressed) {
        let (_, msg) = item.map_err(|(position, cause)| WrapperError::Inner { position, cause })?;
        if count == 0 {
            first_raw = msg.offset;
        }
        last_raw = msg.offset;
        count = count.saturating_add(1);
        if let Some(ts) = msg.timestamp {
            max_ts = max_ts.max(ts);
        }
    }
    if count == 0 {
        return Err(WrapperError::Empty);
    }
    let base = if wrapper.magic == 0 {
        if wrapper.offset != last_raw {
            return Err(WrapperError::WrapperOffset {
                magic: 0,
                wrapper: wrapper.offset,
                last_inner: last_raw,
            });
        }
        0
    } else if wrapper.offset == 0 {
        0
    } else {
        if wrapper.offset < last_raw {
            return Err(WrapperError::WrapperOffset {
                magic: wrapper.magic,
                wrapper: wrapper.offset,
                last_inner: last_raw,
            });
        }
        wrapper.offset - last_raw
    };
    let max_timestamp = match wrapper.timestamp {
        None => -1,
        Some(ts) if wrapper.is_log_append_time() => ts,
        Some(_) => max_ts,
    };
    Ok(WrapperSummary {
        count,
        offset_base: base,
        first_offset: base.saturating_add(first_raw),
        last_offset: base.saturating_add(last_raw),
        max_timestamp,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Write;

    /// Builds a legacy entry (test helper, also used by the deep tests).
    pub fn entry(
        offset: i64,
        magic: i8,
        attributes: i8,
        ts: Option<i64>,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) -> Vec<u8> {
        let mut body = vec![magic as u8, attributes as u8];
        if magic >= 1 {
            body.extend(ts.unwrap_or(-1).to_be_bytes());
        }
        for b in [key, value] {
            match b {
                None => body.extend((-1i32).to_be_bytes()),
                Some(b) => {
                    body.extend((b.len() as i32).to_be_bytes());
                    body.extend(b);
                }
            }
        }
        let crc = crc32fast::hash(&body);
        let mut e = offset.to_be_bytes().to_vec();
        e.extend(((body.len() + 4) as i32).to_be_bytes());
        e.extend(crc.to_be_bytes());
        e.extend(body);
        e
    }

    pub fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    /// A wrapper holding `n` inner messages with raw offsets `raw(i)`.
    pub fn wrapper(offset: i64, magic: i8, attrs: i8, n: i64, raw: impl Fn(i64) -> i64) -> Vec<u8> {
        let mut set = Vec::new();
        for i in 0..n {
            set.extend(entry(
                raw(i),
                magic,
                0,
                Some(1000 + i),
                None,
                Some(format!("v{i}").as_bytes()),
            ));
        }
        entry(offset, magic, attrs, Some(5000), None, Some(&gzip(&set)))
    }

    fn summary(bytes: &[u8]) -> Result<WrapperSummary, WrapperError> {
        let m = LegacyMessage::parse(bytes).unwrap();
        wrapper_summary(&m, &mut Vec::new())
    }

    #[test]
    fn magic0_absolute_offsets() {
        let w = wrapper(104, 0, 1, 5, |i| 100 + i);
        assert_eq!(
            summary(&w).unwrap(),
            WrapperSummary {
                count: 5,
                offset_base: 0,
                first_offset: 100,
                last_offset: 104,
                max_timestamp: -1
            }
        );
        let w = wrapper(105, 0, 1, 5, |i| 100 + i);
        let e = summary(&w).unwrap_err();
        assert!(
            matches!(
                e,
                WrapperError::WrapperOffset {
                    magic: 0,
                    wrapper: 105,
                    last_inner: 104
                }
            ),
            "{e:?}"
        );
        assert_eq!(e.kind(), Kind::LegacyOffsetMismatch);
    }

    #[test]
    fn magic1_relative_offsets() {
        let w = wrapper(54, 1, 1, 5, |i| i);
        assert_eq!(
            summary(&w).unwrap(),
            WrapperSummary {
                count: 5,
                offset_base: 50,
                first_offset: 50,
                last_offset: 54,
                max_timestamp: 1004
            }
        );
        // LogAppendTime: the wrapper's timestamp wins.
        let w = wrapper(54, 1, 1 | 0x08, 5, |i| i);
        assert_eq!(summary(&w).unwrap().max_timestamp, 5000);
        // librdkafka's wrapper offset 0.
        let w = wrapper(0, 1, 1, 3, |i| i);
        assert_eq!(summary(&w).unwrap().last_offset, 2);
        // Wrapper below the last relative offset.
        let w = wrapper(3, 1, 1, 5, |i| i);
        assert!(matches!(
            summary(&w).unwrap_err(),
            WrapperError::WrapperOffset {
                magic: 1,
                wrapper: 3,
                last_inner: 4
            }
        ));
        // Relative offsets that go backwards.
        let w = wrapper(10, 1, 1, 3, |i| 2 - i);
        let e = summary(&w).unwrap_err();
        assert!(
            matches!(
                e,
                WrapperError::Inner {
                    cause: InnerError::OffsetOrder {
                        previous: 2,
                        offset: 1
                    },
                    ..
                }
            ),
            "{e:?}"
        );
    }

    fn set_summary(set: &[u8]) -> Result<WrapperSummary, WrapperError> {
        let w = entry(0, 1, 1, Some(1), None, Some(&gzip(set)));
        summary(&w)
    }

    #[test]
    fn malformed_inner_messages() {
        let one = entry(0, 1, 0, Some(1), Some(b"k"), Some(b"v"));
        // Bad inner CRC, at the second message.
        let mut set = one.clone();
        let mut bad = entry(1, 1, 0, Some(1), Some(b"k"), Some(b"v"));
        let last = bad.len() - 1;
        bad[last] ^= 1;
        set.extend(&bad);
        let e = set_summary(&set).unwrap_err();
        assert!(
            matches!(e, WrapperError::Inner { position, cause: InnerError::Crc { offset: 1, .. } } if position == one.len() as u64),
            "{e:?}"
        );
        assert_eq!(e.kind(), Kind::CrcMismatch);
        // Trailing partial header.
        let mut set = one.clone();
        set.extend([0; 5]);
        assert!(matches!(
            set_summary(&set).unwrap_err(),
            WrapperError::Inner {
                cause: InnerError::TruncatedHeader { available: 5 },
                ..
            }
        ));
        // Size past the end.
        let set = &one[..one.len() - 2];
        let e = set_summary(set).unwrap_err();
        assert!(
            matches!(e, WrapperError::Inner { position: 0, cause: InnerError::PastEnd { available, .. } } if available == one.len() - 14),
            "{e:?}"
        );
        // Size below the minimum.
        let mut set = one.clone();
        set[8..12].copy_from_slice(&3i32.to_be_bytes());
        assert!(matches!(
            set_summary(&set).unwrap_err(),
            WrapperError::Inner {
                cause: InnerError::SizeTooSmall { size: 3 },
                ..
            }
        ));
        // Nested compression.
        let set = entry(0, 1, 2, Some(1), None, Some(b"x"));
        assert!(matches!(
            set_summary(&set).unwrap_err(),
            WrapperError::Inner {
                cause: InnerError::Compressed {
                    codec: Codec::Snappy,
                    ..
                },
                ..
            }
        ));
        // Bad inner magic with a matching CRC.
        let set = entry(0, 7, 0, Some(1), None, Some(b"x"));
        assert!(matches!(
            set_summary(&set).unwrap_err(),
            WrapperError::Inner {
                cause: InnerError::BadMagic { magic: 7 },
                ..
            }
        ));
        // Empty set.
        assert!(matches!(set_summary(&[]).unwrap_err(), WrapperError::Empty));
        // Undecodable value.
        let w = entry(0, 1, 1, Some(1), None, Some(b"not gzip"));
        let e = summary(&w).unwrap_err();
        assert!(
            matches!(e, WrapperError::Decompress(DecompressError::Gzip { .. })),
            "{e:?}"
        );
        assert_eq!(e.kind(), Kind::DecompressionFailed);
        let w = entry(0, 1, 1, Some(1), None, None);
        assert!(matches!(summary(&w).unwrap_err(), WrapperError::NullValue));
        let w = entry(0, 1, 0, Some(1), None, Some(b"x"));
        assert!(matches!(
            summary(&w).unwrap_err(),
            WrapperError::NotCompressed
        ));
    }

    #[test]
    fn inner_iterator_positions() {
        let a = entry(7, 0, 0, None, None, Some(b"a"));
        let b = entry(8, 0, 0, None, Some(b"key"), Some(b"bb"));
        let mut set = a.clone();
        set.extend(&b);
        let items: Vec<_> = inner_messages(&set).map(|r| r.unwrap()).collect();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].0, 0);
        assert_eq!(items[1].0, a.len() as u64);
        assert_eq!(items[1].1.key, Some(&b"key"[..]));
        assert_eq!(items[1].1.offset, 8);
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut s = 0x1234_5678_9ABC_DEF1u64;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let mut set = Vec::new();
        for i in 0..4 {
            set.extend(entry(i, 1, 0, Some(i), Some(b"k"), Some(b"value")));
        }
        let mut scratch = Vec::new();
        for i in 0..4000 {
            let mut buf = if i % 2 == 0 {
                set.clone()
            } else {
                (0..next() % 80).map(|_| next() as u8).collect()
            };
            if !buf.is_empty() {
                for _ in 0..(next() % 3) {
                    let at = next() as usize % buf.len();
                    buf[at] = next() as u8;
                }
                buf.truncate(next() as usize % (buf.len() + 1));
            }
            let _ = inner_messages(&buf).count();
            let w = entry(
                next() as i64 % 8,
                (next() % 2) as i8,
                (next() % 4) as i8,
                Some(0),
                None,
                Some(&buf),
            );
            if let Ok(m) = LegacyMessage::parse(&w) {
                let _ = wrapper_summary(&m, &mut scratch);
                let _ = summarize_inner(&m, &buf);
            }
        }
    }
}
