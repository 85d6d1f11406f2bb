//! The log walk: visit every valid batch of a `.log` (or KRaft `.checkpoint`) in order, verify its
//! CRC, and resynchronise after corruption.
//!
//! Kafka's own recovery stops at the first bad batch and truncates everything after it. A verifier
//! that did the same would hide every later batch, so after a bad batch the walk scans forward for
//! the next position whose header is plausible *and* whose CRC matches, reports the byte range it
//! skipped and the offsets that range held, and carries on. A CRC match over a whole batch makes a
//! false resynchronisation vanishingly unlikely.
//!
//! The walk allocates nothing per batch: it reads headers in place and hands each batch's bytes to
//! a [`Visitor`] (indexes, deep checks, salvage) as a borrowed slice.

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;

use crate::batch::{
    self, BatchHeader, BatchInfo, Codec, LegacyMessage, HEADER_SIZE_UP_TO_MAGIC, LOG_OVERHEAD,
};
use crate::be;
use crate::finding::{Finding, Kind, Severity};
use crate::source::Source;

/// Resynchronisation does not consider candidate batches larger than this (Kafka's
/// `message.max.bytes` is 1 MiB by default; brokers rarely allow more than a few tens of MiB).
pub const MAX_RESYNC_BATCH: u64 = 256 << 20;

/// Receives each valid batch, in position order, with its bytes.
pub trait Visitor {
    fn on_batch(&mut self, info: &BatchInfo, bytes: &[u8], out: &mut Vec<Finding>);
    /// A corrupt byte range the walk skipped (already reported).
    fn on_skipped(&mut self, _start: u64, _end: u64) {}
}

/// A visitor that does nothing (counting and CRC checks only).
pub struct NoVisitor;
impl Visitor for NoVisitor {
    fn on_batch(&mut self, _: &BatchInfo, _: &[u8], _: &mut Vec<Finding>) {}
}

#[derive(Debug, Clone, Copy, Default)]
pub struct WalkConfig {
    /// The file is the active segment (or a lone file): an incomplete last batch is a torn tail
    /// (a warning) and trailing zeros are preallocation (info), not corruption.
    pub tail_may_tear: bool,
    /// Stop before the first batch that starts at or after this position (parallel chunks).
    pub stop_at: Option<u64>,
    /// The offset the segment's file name promises, for reporting offsets lost at its start.
    pub expected_first_offset: Option<i64>,
}

/// What a walk saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WalkStats {
    pub batches: u64,
    pub records: u64,
    /// Bytes in valid batches.
    pub valid_bytes: u64,
    /// Position where the walk stopped: end of file, or the first batch at/after `stop_at`.
    pub end: u64,
    /// End of the last valid batch.
    pub valid_end: u64,
    pub first_offset: Option<i64>,
    pub last_offset: Option<i64>,
    pub corrupt_ranges: u64,
}

/// Why the bytes at a position are not a valid batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    Crc {
        stored: u32,
        computed: u32,
        magic: i8,
    },
    Length {
        length: i32,
        magic: i8,
    },
    Magic(i8),
    Legacy(batch::LegacyError),
    /// The length runs past the end of the file.
    PastEnd {
        length: i32,
        available: u64,
    },
}

impl Cause {
    pub fn kind(self) -> Kind {
        match self {
            Cause::Crc { .. } => Kind::CrcMismatch,
            Cause::Length { .. } | Cause::Legacy(_) | Cause::PastEnd { .. } => Kind::BadLength,
            Cause::Magic(_) => Kind::BadMagic,
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Cause::Crc {
                stored,
                computed,
                magic,
            } => {
                let algo = if magic >= 2 { "CRC-32C" } else { "CRC-32" };
                write!(
                    f,
                    "{algo} mismatch: stored {stored:#010x}, computed {computed:#010x}"
                )
            }
            Cause::Length { length, magic } => {
                write!(
                    f,
                    "batch length {length} is below the magic {magic} minimum"
                )
            }
            Cause::Magic(m) => write!(f, "invalid magic byte {m}"),
            Cause::Legacy(e) => write!(f, "malformed legacy message ({e:?})"),
            Cause::PastEnd { length, available } => {
                write!(
                    f,
                    "batch length {length} runs past the end of the file ({available} bytes left)"
                )
            }
        }
    }
}

enum Probe {
    Valid {
        total: u64,
    },
    /// The header is fine but more bytes are needed to check it.
    Need(u64),
    Bad(Cause),
    /// Fewer than 17 bytes left: Kafka stops reading here.
    Short,
}

/// Minimum `length` field (bytes after offset+length) per magic.
fn min_length(magic: i8) -> Option<i32> {
    match magic {
        0 => Some(batch::V0_MIN_SIZE as i32),
        1 => Some(batch::V1_MIN_SIZE as i32),
        2 => Some((batch::V2_HEADER_SIZE - LOG_OVERHEAD) as i32),
        _ => None,
    }
}

/// Checks the batch starting at `w[0]`; `left` is how many bytes the file has from there.
fn probe(w: &[u8], left: u64) -> Probe {
    if left < HEADER_SIZE_UP_TO_MAGIC as u64 {
        return Probe::Short;
    }
    let (Some(length), Some(magic)) = (be::i32(w, 8), be::i8(w, 16)) else {
        return Probe::Need(HEADER_SIZE_UP_TO_MAGIC as u64);
    };
    let Some(min) = min_length(magic) else {
        return Probe::Bad(Cause::Magic(magic));
    };
    if length < min {
        return Probe::Bad(Cause::Length { length, magic });
    }
    let total = LOG_OVERHEAD as u64 + length as u64;
    if total > left {
        return Probe::Bad(Cause::PastEnd {
            length,
            available: left,
        });
    }
    let Some(bytes) = w.get(..total as usize) else {
        return Probe::Need(total);
    };
    check_crc(bytes, magic).map_or(Probe::Valid { total }, Probe::Bad)
}

fn check_crc(bytes: &[u8], magic: i8) -> Option<Cause> {
    if magic >= 2 {
        let stored = be::u32(bytes, 17)?;
        let computed = batch::v2_crc(bytes)?;
        (stored != computed).then_some(Cause::Crc {
            stored,
            computed,
            magic,
        })
    } else {
        let stored = be::u32(bytes, 12)?;
        let computed = batch::legacy_crc(bytes)?;
        if stored != computed {
            return Some(Cause::Crc {
                stored,
                computed,
                magic,
            });
        }
        LegacyMessage::parse(bytes).err().map(Cause::Legacy)
    }
}

/// A legacy candidate must frame exactly (key and value lengths add up to its size) before its
/// CRC-32 is worth computing: that costs a few reads, the CRC a pass over up to 256 MiB.
fn framed(bytes: &[u8], magic: i8) -> bool {
    magic >= 2 || LegacyMessage::parse(bytes).is_ok()
}

/// Cheap pre-filter for resynchronisation candidates: fields a real batch header always has.
fn plausible(w: &[u8], left: u64) -> Option<u64> {
    let base = be::i64(w, 0)?;
    let length = be::i32(w, 8)?;
    let magic = be::i8(w, 16)?;
    if base < 0 || length < min_length(magic)? {
        return None;
    }
    let total = LOG_OVERHEAD as u64 + length as u64;
    if total > left || total > MAX_RESYNC_BATCH {
        return None;
    }
    if magic == 2 {
        let attributes = be::i16(w, 21)?;
        if attributes & 0x07 > 4 || be::i32(w, 23)? < 0 || be::i32(w, 57)? < 0 {
            return None;
        }
    } else if be::i8(w, 17)? & 0x07 > 3 {
        return None;
    }
    Some(total)
}

/// The next position at or after `from` where a valid batch starts, if any.
pub fn resync(src: &mut Source<'_>, from: u64, limit: u64) -> io::Result<Option<u64>> {
    let len = src.len();
    let mut p = from;
    while p + (HEADER_SIZE_UP_TO_MAGIC as u64) <= len && p < limit {
        let w = src.window(p, batch::V2_HEADER_SIZE)?;
        if w.len() < HEADER_SIZE_UP_TO_MAGIC {
            return Ok(None);
        }
        // Scan this window for plausible headers; verify each candidate's CRC.
        let mut i = 0usize;
        let mut candidate = None;
        while i + HEADER_SIZE_UP_TO_MAGIC <= w.len() && p + (i as u64) < limit {
            let sub = w.get(i..).unwrap_or(&[]);
            if sub.len() < batch::V2_HEADER_SIZE
                && sub.get(16) == Some(&2)
                && (i as u64 + p + 61) <= len
            {
                break; // header straddles the window: refetch from here
            }
            if let Some(total) = plausible(sub, len - p - i as u64) {
                if let Some(bytes) = sub.get(..total as usize) {
                    let magic = be::i8(bytes, 16).unwrap_or(-1);
                    if framed(bytes, magic) && check_crc(bytes, magic).is_none() {
                        return Ok(Some(p + i as u64));
                    }
                } else {
                    candidate = Some((i, total));
                    break;
                }
            }
            i += 1;
        }
        match candidate {
            Some((ci, total)) => {
                let at = p + ci as u64;
                let bytes = src.read_at(at, total as usize)?;
                let magic = be::i8(&bytes, 16).unwrap_or(-1);
                if bytes.len() as u64 == total
                    && framed(&bytes, magic)
                    && check_crc(&bytes, magic).is_none()
                {
                    return Ok(Some(at));
                }
                p = at + 1;
            }
            None if i == 0 => p += 1,
            None => p += i as u64,
        }
    }
    Ok(None)
}

/// Reusable buffers for a walk (legacy wrappers need decompression even in a shallow walk, to
/// count their messages and learn their first offset).
#[derive(Default)]
pub struct Scratch {
    pub legacy: Vec<u8>,
}

/// Summarises the valid batch in `bytes` (already CRC-checked) for the checks that follow.
/// Legacy wrappers that fail to decompress are reported and summarised as one message.
pub fn summarize(
    file: &Arc<Path>,
    position: u64,
    bytes: &[u8],
    scratch: &mut Scratch,
    out: &mut Vec<Finding>,
) -> BatchInfo {
    let size = bytes.len() as u64;
    if let Some(h) = BatchHeader::parse(bytes).filter(|h| h.magic >= 2) {
        let control_type = if h.is_control() {
            crate::control::parse_control_batch(bytes.get(61..).unwrap_or(&[]), h.records_count)
                .ok()
                .map(|c| c.kind.as_i16())
        } else {
            None
        };
        return BatchInfo {
            position,
            size,
            magic: h.magic,
            base_offset: h.base_offset,
            last_offset: h.last_offset(),
            max_timestamp: h.max_timestamp,
            records_count: h.records_count.max(0) as u32,
            partition_leader_epoch: h.partition_leader_epoch,
            producer_id: h.producer_id,
            attributes: h.attributes,
            control_type,
        };
    }
    let msg = LegacyMessage::parse(bytes).ok();
    let (offset, magic, attributes, ts) = match msg {
        Some(m) => (m.offset, m.magic, m.attributes, m.timestamp.unwrap_or(-1)),
        None => (
            be::i64(bytes, 0).unwrap_or(-1),
            be::i8(bytes, 16).unwrap_or(0),
            0,
            -1,
        ),
    };
    let mut info = BatchInfo {
        position,
        size,
        magic,
        base_offset: offset,
        last_offset: offset,
        max_timestamp: ts,
        records_count: 1,
        partition_leader_epoch: -1,
        producer_id: -1,
        attributes: attributes as i16,
        control_type: None,
    };
    if let Some(m) = msg.filter(|m| m.codec() != Codec::None) {
        match crate::legacy::wrapper_summary(&m, &mut scratch.legacy) {
            Ok(s) => {
                info.base_offset = s.first_offset;
                info.last_offset = s.last_offset;
                info.records_count = s.count;
                if s.max_timestamp > info.max_timestamp && !m.is_log_append_time() {
                    info.max_timestamp = s.max_timestamp;
                }
            }
            Err(e) => out.push(
                Finding::error(
                    e.kind(),
                    file,
                    format!(
                        "legacy {} wrapper at offset {offset} does not decode: {e}",
                        m.codec().name()
                    ),
                )
                .at(position)
                .offset(offset),
            ),
        }
    }
    info
}

/// True when every byte in `[start, end)` is zero.
pub fn all_zero(src: &mut Source<'_>, start: u64, end: u64) -> io::Result<bool> {
    let mut p = start;
    while p < end {
        let w = src.window(p, 0)?;
        if w.is_empty() {
            break;
        }
        let n = (w.len() as u64).min(end - p) as usize;
        if w.get(..n).is_some_and(|s| s.iter().any(|&b| b != 0)) {
            return Ok(false);
        }
        p += n as u64;
    }
    Ok(true)
}

/// Walks `src` from `start`, verifying every batch and resynchronising after corruption.
pub fn walk(
    src: &mut Source<'_>,
    file: &Arc<Path>,
    start: u64,
    cfg: WalkConfig,
    visitor: &mut dyn Visitor,
    scratch: &mut Scratch,
    out: &mut Vec<Finding>,
) -> io::Result<WalkStats> {
    let len = src.len();
    let mut st = WalkStats {
        end: start,
        valid_end: start,
        ..WalkStats::default()
    };
    let mut pos = start;
    let mut need = batch::V2_HEADER_SIZE;
    loop {
        if cfg.stop_at.is_some_and(|s| pos >= s) || pos >= len {
            break;
        }
        let left = len - pos;
        let w = src.window(pos, need)?;
        let short_read = (w.len() as u64) < left.min(need as u64);
        let left = if short_read { w.len() as u64 } else { left };
        match probe(w, left) {
            Probe::Valid { total } => {
                let bytes = w.get(..total as usize).unwrap_or(&[]);
                let info = summarize(file, pos, bytes, scratch, out);
                // The window borrow ends with `bytes`; re-borrow for the visitor.
                let bytes = src
                    .window(pos, total as usize)?
                    .get(..total as usize)
                    .unwrap_or(&[]);
                visitor.on_batch(&info, bytes, out);
                st.batches += 1;
                st.records += info.records_count as u64;
                st.valid_bytes += total;
                st.first_offset.get_or_insert(info.base_offset);
                st.last_offset = Some(info.last_offset);
                pos += total;
                st.valid_end = pos;
                need = batch::V2_HEADER_SIZE;
            }
            Probe::Need(n) if !short_read && (n as usize) > w.len() => need = n as usize,
            Probe::Need(_) | Probe::Short => {
                // Fewer than 17 bytes, or a header cut by a concurrent truncation.
                report_tail(src, file, pos, pos + left, cfg, &st, None, out)?;
                pos += left;
                break;
            }
            Probe::Bad(cause) => {
                let next = resync(src, pos + 1, len)?;
                match next {
                    Some(q) => {
                        report_skip(src, file, pos, q, cause, cfg, &st, out)?;
                        visitor.on_skipped(pos, q);
                        st.corrupt_ranges += 1;
                        pos = q;
                        need = batch::V2_HEADER_SIZE;
                    }
                    None => {
                        let end = pos + left;
                        if matches!(cause, Cause::PastEnd { .. }) {
                            report_tail(src, file, pos, end, cfg, &st, Some(cause), out)?;
                        } else if cfg.tail_may_tear && all_zero(src, pos, end)? {
                            report_tail(src, file, pos, end, cfg, &st, None, out)?;
                        } else {
                            report_skip(src, file, pos, end, cause, cfg, &st, out)?;
                            st.corrupt_ranges += 1;
                        }
                        visitor.on_skipped(pos, end);
                        pos = end;
                        break;
                    }
                }
            }
        }
    }
    st.end = pos;
    Ok(st)
}

fn first_unseen(cfg: WalkConfig, st: &WalkStats) -> Option<i64> {
    st.last_offset.map(|o| o + 1).or(cfg.expected_first_offset)
}

#[allow(clippy::too_many_arguments)]
fn report_skip(
    src: &mut Source<'_>,
    file: &Arc<Path>,
    start: u64,
    end: u64,
    cause: Cause,
    cfg: WalkConfig,
    st: &WalkStats,
    out: &mut Vec<Finding>,
) -> io::Result<()> {
    let zero = all_zero(src, start, end)?;
    let kind = if zero {
        Kind::ZeroedRegion
    } else {
        cause.kind()
    };
    let next_base = if end < src.len() {
        src.read_at(end, 8).ok().and_then(|b| be::i64(&b, 0))
    } else {
        None
    };
    let first = first_unseen(cfg, st);
    let mut msg = if zero {
        format!(
            "{} zero bytes where batches should be ({cause})",
            end - start
        )
    } else {
        format!("{cause}; {} bytes skipped", end - start)
    };
    let mut f = Finding::error(kind, file, String::new()).range(start, end);
    match (first, next_base) {
        (Some(a), Some(b)) if b > a => {
            msg.push_str(&format!("; offsets {a}..={} lost", b - 1));
            f = f.offsets(a, b - 1);
        }
        (Some(a), None) => {
            msg.push_str(&format!(
                "; offsets from {a} on lost (no valid batch after this point)"
            ));
            f = f.offset(a);
        }
        _ => {
            if end >= src.len() {
                msg.push_str("; no valid batch after this point");
            }
        }
    }
    f.message = msg;
    out.push(f);
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn report_tail(
    src: &mut Source<'_>,
    file: &Arc<Path>,
    start: u64,
    end: u64,
    cfg: WalkConfig,
    st: &WalkStats,
    cause: Option<Cause>,
    out: &mut Vec<Finding>,
) -> io::Result<()> {
    if start >= end {
        return Ok(());
    }
    let n = end - start;
    let first = first_unseen(cfg, st);
    let f = if cfg.tail_may_tear && all_zero(src, start, end)? {
        Finding::info(
            Kind::PreallocatedTail,
            file,
            format!("{n} zero bytes after the last batch (preallocated log)"),
        )
    } else {
        let what = match cause {
            Some(c) => format!("incomplete last batch: {c}"),
            None => format!("{n} trailing bytes are too few for a batch header"),
        };
        if cfg.tail_may_tear {
            Finding::new(
                Severity::Warning,
                Kind::TornTail,
                file,
                format!("{what}; {n} bytes at the end (Kafka truncates them on recovery)"),
            )
        } else {
            Finding::error(
                Kind::TruncatedSegment,
                file,
                format!("{what}; {n} bytes at the end of a segment that is not the active one"),
            )
        }
    };
    let mut f = f.range(start, end);
    if let Some(o) = first {
        f = f.offset(o);
    }
    out.push(f);
    Ok(())
}
