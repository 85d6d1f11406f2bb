//! Record batch headers: magic 2 batches and legacy magic 0/1 messages, parsed in place.
//!
//! Layout (big-endian), from docs/FORMAT.md:
//!
//! ```text
//! magic 2:  0 baseOffset i64 | 8 batchLength i32 | 12 partitionLeaderEpoch i32 | 16 magic i8
//!          17 crc u32 (CRC-32C of [21, 12+batchLength)) | 21 attributes i16 | 23 lastOffsetDelta i32
//!          27 baseTimestamp i64 | 35 maxTimestamp i64 | 43 producerId i64 | 51 producerEpoch i16
//!          53 baseSequence i32 | 57 recordsCount i32 | 61 records...
//! magic 0/1: 0 offset i64 | 8 size i32 | 12 crc u32 (CRC-32 of [16, 12+size)) | 16 magic i8
//!          17 attributes i8 | (v1: 18 timestamp i64) | key i32+bytes | value i32+bytes
//! ```
//!
//! Parsing never allocates and never panics: every field comes from a bounds-checked read.

use crate::be;

/// Bytes before `batchLength`'s coverage starts (offset + length).
pub const LOG_OVERHEAD: usize = 12;
/// Smallest magic 2 batch (header without records).
pub const V2_HEADER_SIZE: usize = 61;
/// Kafka stops walking a log when fewer bytes than this remain.
pub const HEADER_SIZE_UP_TO_MAGIC: usize = 17;
pub const V0_MIN_SIZE: usize = 14;
pub const V1_MIN_SIZE: usize = 22;

/// Compression codec from the low three attribute bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
    /// Values 5-7: not defined by Kafka.
    Unknown(u8),
}

impl Codec {
    pub fn from_attributes(attributes: i16) -> Codec {
        match attributes & 0x07 {
            0 => Codec::None,
            1 => Codec::Gzip,
            2 => Codec::Snappy,
            3 => Codec::Lz4,
            4 => Codec::Zstd,
            n => Codec::Unknown(n as u8),
        }
    }
    /// Kafka's name (`compresscodec:` in DumpLogSegments).
    pub fn name(self) -> &'static str {
        match self {
            Codec::None => "none",
            Codec::Gzip => "gzip",
            Codec::Snappy => "snappy",
            Codec::Lz4 => "lz4",
            Codec::Zstd => "zstd",
            Codec::Unknown(_) => "unknown",
        }
    }
}

/// A magic 2 batch header, copied out of the log (61 bytes of fields, cheap to pass around).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

impl BatchHeader {
    /// Parses the fixed 61-byte header. `None` when `buf` is shorter than that.
    pub fn parse(buf: &[u8]) -> Option<BatchHeader> {
        Some(BatchHeader {
            base_offset: be::i64(buf, 0)?,
            batch_length: be::i32(buf, 8)?,
            partition_leader_epoch: be::i32(buf, 12)?,
            magic: be::i8(buf, 16)?,
            crc: be::u32(buf, 17)?,
            attributes: be::i16(buf, 21)?,
            last_offset_delta: be::i32(buf, 23)?,
            base_timestamp: be::i64(buf, 27)?,
            max_timestamp: be::i64(buf, 35)?,
            producer_id: be::i64(buf, 43)?,
            producer_epoch: be::i16(buf, 51)?,
            base_sequence: be::i32(buf, 53)?,
            records_count: be::i32(buf, 57)?,
        })
    }
    pub fn total_size(&self) -> u64 {
        LOG_OVERHEAD as u64 + self.batch_length.max(0) as u64
    }
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .saturating_add(self.last_offset_delta as i64)
    }
    pub fn codec(&self) -> Codec {
        Codec::from_attributes(self.attributes)
    }
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & 0x08 != 0
    }
    pub fn is_transactional(&self) -> bool {
        self.attributes & 0x10 != 0
    }
    pub fn is_control(&self) -> bool {
        self.attributes & 0x20 != 0
    }
    pub fn has_delete_horizon(&self) -> bool {
        self.attributes & 0x40 != 0
    }
}

/// CRC-32C of a whole magic 2 batch's covered bytes. `batch` is the full batch, `[0, 12+len)`.
#[inline]
pub fn v2_crc(batch: &[u8]) -> Option<u32> {
    batch.get(21..).map(crc32c::crc32c)
}

/// A legacy (magic 0/1) message, borrowed from the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegacyMessage<'a> {
    pub offset: i64,
    pub size: i32,
    pub crc: u32,
    pub magic: i8,
    pub attributes: i8,
    /// Only magic 1 has a timestamp.
    pub timestamp: Option<i64>,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
}

/// Why a legacy message's body could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegacyError {
    TooShort,
    BadKeyLength,
    BadValueLength,
    TrailingBytes,
}

impl<'a> LegacyMessage<'a> {
    /// Parses a complete legacy entry (`entry` = `[0, 12+size)`).
    pub fn parse(entry: &'a [u8]) -> Result<LegacyMessage<'a>, LegacyError> {
        let offset = be::i64(entry, 0).ok_or(LegacyError::TooShort)?;
        let size = be::i32(entry, 8).ok_or(LegacyError::TooShort)?;
        let crc = be::u32(entry, 12).ok_or(LegacyError::TooShort)?;
        let magic = be::i8(entry, 16).ok_or(LegacyError::TooShort)?;
        let attributes = be::i8(entry, 17).ok_or(LegacyError::TooShort)?;
        let (timestamp, mut at) = if magic >= 1 {
            (Some(be::i64(entry, 18).ok_or(LegacyError::TooShort)?), 26)
        } else {
            (None, 18)
        };
        let key = read_bytes(entry, &mut at).ok_or(LegacyError::BadKeyLength)?;
        let value = read_bytes(entry, &mut at).ok_or(LegacyError::BadValueLength)?;
        if at != entry.len() {
            return Err(LegacyError::TrailingBytes);
        }
        Ok(LegacyMessage {
            offset,
            size,
            crc,
            magic,
            attributes,
            timestamp,
            key,
            value,
        })
    }
    pub fn codec(&self) -> Codec {
        Codec::from_attributes(self.attributes as i16)
    }
    pub fn is_log_append_time(&self) -> bool {
        self.magic >= 1 && self.attributes & 0x08 != 0
    }
}

/// An int32-length-prefixed byte string (-1 = null). Outer `None` = out of bounds.
fn read_bytes<'a>(buf: &'a [u8], at: &mut usize) -> Option<Option<&'a [u8]>> {
    let len = be::i32(buf, *at)?;
    *at += 4;
    if len < 0 {
        return if len == -1 { Some(None) } else { None };
    }
    let end = at.checked_add(len as usize)?;
    let bytes = buf.get(*at..end)?;
    *at = end;
    Some(Some(bytes))
}

/// CRC-32 (IEEE) of a legacy entry's covered bytes, `[16, 12+size)`.
#[inline]
pub fn legacy_crc(entry: &[u8]) -> Option<u32> {
    entry.get(16..).map(crc32fast::hash)
}

/// What the partition-level and index checks need to know about one valid batch (or legacy
/// message / wrapper), in log order. Small and `Copy`: the walk produces one per batch without
/// allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchInfo {
    /// Byte position of the batch in its file.
    pub position: u64,
    /// Whole batch size in bytes, `12 + length`.
    pub size: u64,
    pub magic: i8,
    /// First offset (for a legacy compressed wrapper: its first inner message's offset).
    pub base_offset: i64,
    pub last_offset: i64,
    /// Largest timestamp in the batch; -1 when the format has none (magic 0).
    pub max_timestamp: i64,
    /// Records in the batch (magic 2: recordsCount; legacy: inner message count).
    pub records_count: u32,
    /// -1 for legacy messages.
    pub partition_leader_epoch: i32,
    /// -1 for legacy messages.
    pub producer_id: i64,
    /// Magic 2 attributes; legacy attributes widened.
    pub attributes: i16,
    /// For control batches: the control record type (0 ABORT, 1 COMMIT, ...) when it parsed.
    pub control_type: Option<i16>,
}

impl BatchInfo {
    pub fn end(&self) -> u64 {
        self.position + self.size
    }
    pub fn is_control(&self) -> bool {
        self.magic >= 2 && self.attributes & 0x20 != 0
    }
    pub fn has_delete_horizon(&self) -> bool {
        self.magic >= 2 && self.attributes & 0x40 != 0
    }
}
