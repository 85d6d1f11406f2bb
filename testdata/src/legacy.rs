//! Magic 0 and magic 1 message sets, written by hand.
//!
//! kafka-protocol refuses to encode these ("message sets v0/v1 are unsupported"), and Kafka's own
//! LegacyRecord is Java, so this is a small independent writer following the layout in
//! docs/kafka-log-format.md: offset int64, size int32, crc int32 (CRC-32 IEEE over [16, end)),
//! magic, attributes, timestamp (v1 only), key and value with int32 lengths.

use std::io::Write;

use anyhow::{Context, Result};
use flate2::{write::GzEncoder, Compression as GzLevel};
use lz4_flex::frame::{BlockMode, BlockSize, FrameEncoder, FrameInfo};

/// One logical message; `offset` is always absolute here, the writer converts as each magic needs.
#[derive(Debug, Clone)]
pub struct Msg {
    /// Absolute offset.
    pub offset: i64,
    /// CreateTime in epoch ms (ignored by magic 0, which has no timestamp).
    pub timestamp: i64,
    /// Key bytes.
    pub key: Option<Vec<u8>>,
    /// Value bytes.
    pub value: Option<Vec<u8>>,
}

fn put_bytes(out: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        Some(b) => {
            out.extend_from_slice(&(b.len() as i32).to_be_bytes());
            out.extend_from_slice(b);
        }
        None => out.extend_from_slice(&(-1i32).to_be_bytes()),
    }
}

/// One log entry (offset, size, message) with the given offset field and attributes.
pub fn entry(
    magic: u8,
    offset_field: i64,
    attributes: u8,
    timestamp: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&offset_field.to_be_bytes());
    out.extend_from_slice(&[0; 8]); // size + crc, filled below
    out.push(magic);
    out.push(attributes);
    if magic >= 1 {
        out.extend_from_slice(&timestamp.to_be_bytes());
    }
    put_bytes(&mut out, key);
    put_bytes(&mut out, value);
    let size = (out.len() - 12) as i32;
    out[8..12].copy_from_slice(&size.to_be_bytes());
    let crc = crc32fast::hash(&out[16..]);
    out[12..16].copy_from_slice(&crc.to_be_bytes());
    out
}

/// An uncompressed message at its absolute offset.
pub fn plain(magic: u8, m: &Msg) -> Vec<u8> {
    entry(
        magic,
        m.offset,
        0,
        m.timestamp,
        m.key.as_deref(),
        m.value.as_deref(),
    )
}

/// A compressed wrapper around `msgs` with codec 1 gzip, 2 snappy (xerial framing, as the Java
/// client wrote it) or 3 lz4 (frame format). Magic 0 inner messages carry absolute offsets; magic 1
/// inner offsets are relative (0..n-1). The wrapper's offset is the last inner absolute offset, and
/// for magic 1 its timestamp is the largest inner timestamp (CreateTime).
pub fn wrapper(magic: u8, codec: u8, msgs: &[Msg]) -> Result<Vec<u8>> {
    let mut inner = Vec::new();
    for (i, m) in msgs.iter().enumerate() {
        let off = if magic == 0 { m.offset } else { i as i64 };
        inner.extend(entry(
            magic,
            off,
            0,
            m.timestamp,
            m.key.as_deref(),
            m.value.as_deref(),
        ));
    }
    let compressed = match codec {
        1 => {
            let mut e = GzEncoder::new(Vec::new(), GzLevel::default());
            e.write_all(&inner)?;
            e.finish()?
        }
        2 => xerial_snappy(&inner)?,
        3 => lz4_frame(&inner, magic == 0)?,
        _ => anyhow::bail!("unsupported legacy codec {codec}"),
    };
    let last = msgs.last().context("empty wrapper")?;
    let max_ts = msgs.iter().map(|m| m.timestamp).max().unwrap_or(-1);
    Ok(entry(
        magic,
        last.offset,
        codec,
        max_ts,
        None,
        Some(&compressed),
    ))
}

/// snappy-java's stream format: magic header, version 1, compatible version 1, then
/// [int32 length][raw block] per 32 KiB of input.
pub fn xerial_snappy(data: &[u8]) -> Result<Vec<u8>> {
    let mut out = b"\x82SNAPPY\x00".to_vec();
    out.extend_from_slice(&1i32.to_be_bytes());
    out.extend_from_slice(&1i32.to_be_bytes());
    for chunk in data.chunks(32 * 1024) {
        let block = snap::raw::Encoder::new().compress_vec(chunk)?;
        out.extend_from_slice(&(block.len() as i32).to_be_bytes());
        out.extend_from_slice(&block);
    }
    Ok(out)
}

/// An LZ4 frame as Kafka's KafkaLZ4BlockOutputStream writes it (independent 64 KiB blocks, no
/// checksums). For magic 0 Kafka computes the header checksum over the frame magic as well as the
/// descriptor (a historic bug kept for compatibility), so `broken_hc` reproduces that byte.
pub fn lz4_frame(data: &[u8], broken_hc: bool) -> Result<Vec<u8>> {
    let info = FrameInfo::new()
        .block_size(BlockSize::Max64KB)
        .block_mode(BlockMode::Independent)
        .block_checksums(false)
        .content_checksum(false);
    let mut enc = FrameEncoder::with_frame_info(info, Vec::new());
    enc.write_all(data)?;
    let mut out = enc.finish()?;
    if broken_hc {
        out[6] = (xxh32(&out[0..6], 0) >> 8) as u8;
    }
    Ok(out)
}

/// XXH32 for short inputs (< 16 bytes), enough for an LZ4 frame header checksum.
pub fn xxh32(data: &[u8], seed: u32) -> u32 {
    const P1: u32 = 2_654_435_761;
    const P2: u32 = 2_246_822_519;
    const P3: u32 = 3_266_489_917;
    const P4: u32 = 668_265_263;
    const P5: u32 = 374_761_393;
    assert!(data.len() < 16, "short-input XXH32 only");
    let mut h = seed.wrapping_add(P5).wrapping_add(data.len() as u32);
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        h = h
            .wrapping_add(k.wrapping_mul(P3))
            .rotate_left(17)
            .wrapping_mul(P4);
    }
    for &b in chunks.remainder() {
        h = h
            .wrapping_add(u32::from(b).wrapping_mul(P5))
            .rotate_left(11)
            .wrapping_mul(P1);
    }
    h ^= h >> 15;
    h = h.wrapping_mul(P2);
    h ^= h >> 13;
    h = h.wrapping_mul(P3);
    h ^ (h >> 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xxh32_agrees_with_lz4_flex_header_checksum() {
        let frame = lz4_frame(b"hello hello hello", false).unwrap();
        assert_eq!(frame[6], (xxh32(&frame[4..6], 0) >> 8) as u8);
        let broken = lz4_frame(b"hello hello hello", true).unwrap();
        assert_ne!(frame[6], broken[6]);
    }

    #[test]
    fn entry_crc_covers_magic_to_end() {
        let e = entry(1, 5, 0, 42, Some(b"k"), Some(b"v"));
        assert_eq!(e.len(), 12 + 22 + 2);
        let crc = u32::from_be_bytes(e[12..16].try_into().unwrap());
        assert_eq!(crc, crc32fast::hash(&e[16..]));
    }
}
