//! Magic 2 record batches, encoded by the kafka-protocol crate.
//!
//! Using a second, independent encoder is the point of this crate: if drkit's reader only ever saw
//! batches from drkit's own writer, a shared misunderstanding of the format would go unnoticed.
//! A few shapes Kafka writes cannot be produced by kafka-protocol's encoder (an empty batch left by
//! the log cleaner, a cleaned batch whose baseOffset/baseTimestamp lie before its first record, a
//! raw snappy block without xerial framing); those are derived from a kafka-protocol batch by
//! small, documented byte patches followed by a CRC-32C recomputation, and the crate's tests decode
//! every result back with kafka-protocol's decoder.

use anyhow::{bail, ensure, Context, Result};
use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

/// Header size of a magic 2 batch; records start here.
pub const HEADER_LEN: usize = 61;

/// Control record types (key int16 version + int16 type).
pub const CONTROL_ABORT: i16 = 0;
/// COMMIT marker.
pub const CONTROL_COMMIT: i16 = 1;
/// KRaft LEADER_CHANGE.
pub const CONTROL_LEADER_CHANGE: i16 = 2;
/// KRaft snapshot header.
pub const CONTROL_SNAPSHOT_HEADER: i16 = 3;
/// KRaft snapshot footer.
pub const CONTROL_SNAPSHOT_FOOTER: i16 = 4;

/// One record to put in a batch: absolute offset and timestamp, key, value, headers.
#[derive(Debug, Clone)]
pub struct Rec {
    /// Absolute offset.
    pub offset: i64,
    /// CreateTime in epoch ms.
    pub timestamp: i64,
    /// Key bytes (None = null key).
    pub key: Option<Vec<u8>>,
    /// Value bytes (None = tombstone).
    pub value: Option<Vec<u8>>,
    /// Record headers.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

/// Batch-level properties; the records' offsets and timestamps come from [`Rec`].
#[derive(Debug, Clone, Copy)]
pub struct BatchProps {
    /// partitionLeaderEpoch written by the leader.
    pub leader_epoch: i32,
    /// Producer id (-1 for a plain producer).
    pub producer_id: i64,
    /// Producer epoch (-1 for a plain producer).
    pub producer_epoch: i16,
    /// Sequence of the first record (-1 for a plain producer).
    pub base_sequence: i32,
    /// Transactional attribute (bit 4).
    pub transactional: bool,
    /// Control attribute (bit 5).
    pub control: bool,
    /// Delete-horizon attribute (bit 6).
    pub delete_horizon: bool,
    /// Codec.
    pub compression: Compression,
}

impl BatchProps {
    /// A non-idempotent, non-transactional producer's batch.
    pub fn plain(leader_epoch: i32, compression: Compression) -> Self {
        BatchProps {
            leader_epoch,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            transactional: false,
            control: false,
            delete_horizon: false,
            compression,
        }
    }

    /// An idempotent producer's batch (the Java client's default since 3.0).
    pub fn idempotent(
        leader_epoch: i32,
        producer_id: i64,
        producer_epoch: i16,
        base_sequence: i32,
        compression: Compression,
    ) -> Self {
        BatchProps {
            leader_epoch,
            producer_id,
            producer_epoch,
            base_sequence,
            transactional: false,
            control: false,
            delete_horizon: false,
            compression,
        }
    }
}

/// Encodes exactly one batch with kafka-protocol. Fails if the encoder would split the records.
pub fn encode(props: &BatchProps, recs: &[Rec]) -> Result<Vec<u8>> {
    ensure!(
        !recs.is_empty(),
        "kafka-protocol cannot encode an empty batch"
    );
    let first = recs[0].offset;
    let records: Vec<Record> = recs
        .iter()
        .map(|r| Record {
            transactional: props.transactional,
            control: props.control,
            delete_horizon: props.delete_horizon,
            partition_leader_epoch: props.leader_epoch,
            producer_id: props.producer_id,
            producer_epoch: props.producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset: r.offset,
            // kafka-protocol splits batches where offset - sequence changes, so keep it constant
            // even for plain producers (it then writes base_sequence as given, -1).
            sequence: props.base_sequence.wrapping_add((r.offset - first) as i32),
            timestamp: r.timestamp,
            key: r.key.clone().map(Bytes::from),
            value: r.value.clone().map(Bytes::from),
            headers: r
                .headers
                .iter()
                .map(|(k, v)| (k.clone().into(), v.clone().map(Bytes::from)))
                .collect(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: props.compression,
        },
    )
    .context("kafka-protocol encode")?;
    let out = buf.to_vec();
    ensure!(
        out.len() >= HEADER_LEN && 12 + be_i32(&out, 8) as usize == out.len(),
        "kafka-protocol split the records into several batches"
    );
    Ok(out)
}

/// The single control record of a COMMIT/ABORT marker: key (version 0, type), value (version 0,
/// coordinatorEpoch).
pub fn marker_record(offset: i64, timestamp: i64, kind: i16, coordinator_epoch: i32) -> Rec {
    let mut value = vec![0, 0];
    value.extend_from_slice(&coordinator_epoch.to_be_bytes());
    control_record(offset, timestamp, kind, value)
}

/// A control record with key (version 0, `kind`) and the given value.
pub fn control_record(offset: i64, timestamp: i64, kind: i16, value: Vec<u8>) -> Rec {
    let mut key = vec![0, 0];
    key.extend_from_slice(&kind.to_be_bytes());
    Rec {
        offset,
        timestamp,
        key: Some(key),
        value: Some(value),
        headers: vec![],
    }
}

/// Big-endian i32 at `at`.
pub fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

/// Big-endian i64 at `at`.
pub fn be_i64(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Recomputes batchLength and the CRC-32C over [21, end) after a patch.
pub fn reseal(batch: &mut [u8]) {
    let len = (batch.len() - 12) as i32;
    batch[8..12].copy_from_slice(&len.to_be_bytes());
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

/// Sets baseOffset, which the CRC does not cover (so no reseal is needed): how a broker assigns
/// offsets to a producer's batch, and how the bench stamps copies of one batch.
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) {
    batch[0..8].copy_from_slice(&base_offset.to_be_bytes());
}

/// Rebuilds an uncompressed batch as one raw snappy block with no xerial header, the way
/// librdkafka writes snappy: the header is kept, the codec bits become 2, batchLength and CRC are
/// recomputed.
pub fn to_raw_snappy(uncompressed: &[u8]) -> Result<Vec<u8>> {
    ensure!(uncompressed[22] & 7 == 0, "batch is already compressed");
    let block = snap::raw::Encoder::new()
        .compress_vec(&uncompressed[HEADER_LEN..])
        .context("snappy")?;
    let mut out = uncompressed[..HEADER_LEN].to_vec();
    out[22] = (out[22] & !7) | 2;
    out.extend_from_slice(&block);
    reseal(&mut out);
    Ok(out)
}

/// The header of an empty batch, as Kafka's log cleaner keeps it when every record of an
/// idempotent producer's last batch was removed (so the producer's sequence state survives): the
/// first/last offsets, producer fields and sequence stay, recordsCount is 0 and both timestamps
/// are `timestamp`. Derived from a one-record kafka-protocol batch by dropping its records.
pub fn empty_batch(
    props: &BatchProps,
    base_offset: i64,
    last_offset: i64,
    timestamp: i64,
) -> Result<Vec<u8>> {
    let seed = encode(
        props,
        &[Rec {
            offset: base_offset,
            timestamp,
            key: None,
            value: None,
            headers: vec![],
        }],
    )?;
    let mut out = seed[..HEADER_LEN].to_vec();
    out[22] &= !7; // an empty batch is never compressed
    out[23..27].copy_from_slice(&((last_offset - base_offset) as i32).to_be_bytes());
    out[57..61].copy_from_slice(&0i32.to_be_bytes());
    reseal(&mut out);
    Ok(out)
}

fn read_varint(b: &[u8], pos: &mut usize) -> Result<i64> {
    let mut raw: u64 = 0;
    let mut shift = 0;
    loop {
        let Some(&byte) = b.get(*pos) else {
            bail!("varint runs past the end")
        };
        *pos += 1;
        raw |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
        ensure!(shift < 64, "varint too long");
    }
    Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
}

fn write_varint(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// Re-bases an uncompressed batch the way Kafka's log cleaner leaves a rebuilt batch: baseOffset
/// stays the original batch's first offset even when that record was removed (so record offset
/// deltas start above 0), lastOffsetDelta stays the original one even when the last record was
/// removed, and with the delete horizon set the baseTimestamp holds the horizon (so record
/// timestamp deltas go negative, a 64-bit zig-zag varlong). Only the offsetDelta/timestampDelta
/// varints and the record length prefixes are rewritten; keys, values and headers are copied.
pub fn rebase(
    batch: &[u8],
    base_offset: i64,
    last_offset: i64,
    base_timestamp: i64,
) -> Result<Vec<u8>> {
    ensure!(batch[22] & 7 == 0, "rebase needs an uncompressed batch");
    let old_base = be_i64(batch, 0);
    let old_ts = be_i64(batch, 27);
    let count = be_i32(batch, 57);
    let mut out = batch[..HEADER_LEN].to_vec();
    let mut pos = HEADER_LEN;
    for _ in 0..count {
        let len = read_varint(batch, &mut pos)? as usize;
        let end = pos + len;
        let attrs = batch[pos];
        let mut p = pos + 1;
        let ts_delta = read_varint(batch, &mut p)?;
        let off_delta = read_varint(batch, &mut p)?;
        let mut body = vec![attrs];
        write_varint(&mut body, old_ts + ts_delta - base_timestamp);
        write_varint(&mut body, old_base + off_delta - base_offset);
        body.extend_from_slice(&batch[p..end]);
        write_varint(&mut out, body.len() as i64);
        out.extend_from_slice(&body);
        pos = end;
    }
    ensure!(pos == batch.len(), "trailing bytes after records");
    out[0..8].copy_from_slice(&base_offset.to_be_bytes());
    out[23..27].copy_from_slice(&((last_offset - base_offset) as i32).to_be_bytes());
    out[27..35].copy_from_slice(&base_timestamp.to_be_bytes());
    let seq = be_i32(batch, 53);
    if seq >= 0 {
        // baseSequence belongs to baseOffset, so it moves with it.
        let seq = seq.wrapping_add((base_offset - old_base) as i32);
        out[53..57].copy_from_slice(&seq.to_be_bytes());
    }
    reseal(&mut out);
    Ok(out)
}

/// Shallow facts about a magic 2 batch, read from its header.
#[derive(Debug, Clone, Copy)]
pub struct Header {
    /// baseOffset.
    pub base_offset: i64,
    /// baseOffset + lastOffsetDelta.
    pub last_offset: i64,
    /// maxTimestamp.
    pub max_timestamp: i64,
    /// recordsCount.
    pub records: i32,
    /// attributes.
    pub attributes: i16,
    /// producerId.
    pub producer_id: i64,
    /// producerEpoch.
    pub producer_epoch: i16,
    /// baseSequence.
    pub base_sequence: i32,
}

/// Parses the header of a magic 2 batch (the caller guarantees at least 61 bytes).
pub fn header(b: &[u8]) -> Header {
    let base_offset = be_i64(b, 0);
    Header {
        base_offset,
        last_offset: base_offset + i64::from(be_i32(b, 23)),
        max_timestamp: be_i64(b, 35),
        records: be_i32(b, 57),
        attributes: i16::from_be_bytes([b[21], b[22]]),
        producer_id: be_i64(b, 43),
        producer_epoch: i16::from_be_bytes([b[51], b[52]]),
        base_sequence: be_i32(b, 53),
    }
}

/// Name of a codec as used in the manifest.
pub fn codec_name(codec: u8) -> &'static str {
    match codec {
        0 => "none",
        1 => "gzip",
        2 => "snappy",
        3 => "lz4",
        4 => "zstd",
        _ => "unknown",
    }
}
