//! Producer state snapshots (`<offset>.snapshot`).
//!
//! Layout (ProducerSnapshot.json, version 1, read by `ProducerStateManager.readSnapshot`):
//!
//! ```text
//! 0 version i16 (1) | 2 crc u32 = CRC-32C of [6, end) | 6 count i32 | 10 count x 46-byte entries:
//!   producerId i64 | epoch i16 | lastSequence i32 | lastOffset i64 | offsetDelta i32 |
//!   timestamp i64 | coordinatorEpoch i32 | currentTxnFirstOffset i64 (-1 none)
//! ```
//!
//! Kafka rejects a snapshot with another version, one that fails schema parsing or one whose CRC
//! does not match, and then rebuilds producer state from the log (slow, and impossible for data
//! already deleted). The file's size must be exactly `10 + 46 * count`: the CRC covers the whole
//! file tail, so trailing bytes make the snapshot unreadable too.

use std::path::Path;
use std::sync::Arc;

use crate::be;
use crate::finding::{Finding, Kind};

pub const VERSION: i16 = 1;
pub const HEADER_SIZE: usize = 10;
pub const ENTRY_SIZE: usize = 46;

/// One producer's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerEntry {
    pub producer_id: i64,
    pub epoch: i16,
    pub last_sequence: i32,
    pub last_offset: i64,
    pub offset_delta: i32,
    pub timestamp: i64,
    pub coordinator_epoch: i32,
    /// -1 when the producer has no open transaction.
    pub current_txn_first_offset: i64,
}

impl ProducerEntry {
    pub fn parse(buf: &[u8], at: usize) -> Option<ProducerEntry> {
        let f = |d: usize| at.checked_add(d);
        Some(ProducerEntry {
            producer_id: be::i64(buf, at)?,
            epoch: be::i16(buf, f(8)?)?,
            last_sequence: be::i32(buf, f(10)?)?,
            last_offset: be::i64(buf, f(14)?)?,
            offset_delta: be::i32(buf, f(22)?)?,
            timestamp: be::i64(buf, f(26)?)?,
            coordinator_epoch: be::i32(buf, f(34)?)?,
            current_txn_first_offset: be::i64(buf, f(38)?)?,
        })
    }
}

/// The snapshot header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotHeader {
    pub version: i16,
    pub crc: u32,
    pub count: i32,
}

impl SnapshotHeader {
    pub fn parse(bytes: &[u8]) -> Option<SnapshotHeader> {
        Some(SnapshotHeader { version: be::i16(bytes, 0)?, crc: be::u32(bytes, 2)?, count: be::i32(bytes, 6)? })
    }
}

/// CRC-32C of `[6, end)`, the range the stored CRC covers.
pub fn computed_crc(bytes: &[u8]) -> u32 {
    crc32c::crc32c(bytes.get(6..).unwrap_or(&[]))
}

/// The entries actually present after the header, with their byte positions (at most `count`,
/// fewer when the file is short). For `dump`.
pub fn entries(bytes: &[u8]) -> impl Iterator<Item = (u64, ProducerEntry)> + '_ {
    let count = SnapshotHeader::parse(bytes).map_or(0, |h| h.count.max(0) as usize);
    bytes.get(HEADER_SIZE..).unwrap_or(&[]).chunks_exact(ENTRY_SIZE).take(count).enumerate().filter_map(|(i, c)| {
        ProducerEntry::parse(c, 0).map(|e| ((HEADER_SIZE + i * ENTRY_SIZE) as u64, e))
    })
}

/// Verifies a snapshot's version, size and CRC.
pub fn check_snapshot(file: &Arc<Path>, bytes: &[u8], out: &mut Vec<Finding>) {
    let Some(h) = SnapshotHeader::parse(bytes) else {
        out.push(
            Finding::error(
                Kind::SnapshotInvalid,
                file,
                format!("producer snapshot is {} bytes, shorter than its {HEADER_SIZE}-byte header", bytes.len()),
            )
            .at(0),
        );
        return;
    };
    if h.version != VERSION {
        out.push(
            Finding::error(
                Kind::SnapshotInvalid,
                file,
                format!("producer snapshot version {} (Kafka reads only {VERSION})", h.version),
            )
            .at(0),
        );
    }
    let expected = (h.count as i128) * ENTRY_SIZE as i128 + HEADER_SIZE as i128;
    if h.count < 0 || expected != bytes.len() as i128 {
        out.push(
            Finding::error(
                Kind::SnapshotInvalid,
                file,
                format!(
                    "producer snapshot holds {} entries, so it should be {expected} bytes, but it is {}",
                    h.count,
                    bytes.len()
                ),
            )
            .at(6),
        );
    }
    let crc = computed_crc(bytes);
    if crc != h.crc {
        out.push(
            Finding::error(
                Kind::SnapshotCrcMismatch,
                file,
                format!("producer snapshot CRC-32C is stored as {:#010x} but computes to {crc:#010x}", h.crc),
            )
            .at(2),
        );
    }
}
