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
        Some(SnapshotHeader {
            version: be::i16(bytes, 0)?,
            crc: be::u32(bytes, 2)?,
            count: be::i32(bytes, 6)?,
        })
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
    bytes
        .get(HEADER_SIZE..)
        .unwrap_or(&[])
        .chunks_exact(ENTRY_SIZE)
        .take(count)
        .enumerate()
        .filter_map(|(i, c)| {
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
                format!(
                    "producer snapshot is {} bytes, shorter than its {HEADER_SIZE}-byte header",
                    bytes.len()
                ),
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
                format!(
                    "producer snapshot version {} (Kafka reads only {VERSION})",
                    h.version
                ),
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
                format!(
                    "producer snapshot CRC-32C is stored as {:#010x} but computes to {crc:#010x}",
                    h.crc
                ),
            )
            .at(2),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::file_id;
    use crate::index::test_support::Rng;

    fn file() -> Arc<Path> {
        file_id("p-0/00000000000000000042.snapshot")
    }

    /// A well-formed snapshot with `n` entries.
    fn snapshot(n: i32) -> Vec<u8> {
        let mut v = VERSION.to_be_bytes().to_vec();
        v.extend_from_slice(&[0; 4]);
        v.extend_from_slice(&n.to_be_bytes());
        for i in 0..n as i64 {
            v.extend_from_slice(&(1000 + i).to_be_bytes()); // producerId
            v.extend_from_slice(&3i16.to_be_bytes()); // epoch
            v.extend_from_slice(&41i32.to_be_bytes()); // lastSequence
            v.extend_from_slice(&(500 + i).to_be_bytes()); // lastOffset
            v.extend_from_slice(&4i32.to_be_bytes()); // offsetDelta
            v.extend_from_slice(&1_700_000_000_000i64.to_be_bytes()); // timestamp
            v.extend_from_slice(&(-1i32).to_be_bytes()); // coordinatorEpoch
            v.extend_from_slice(&(-1i64).to_be_bytes()); // currentTxnFirstOffset
        }
        let crc = computed_crc(&v);
        v[2..6].copy_from_slice(&crc.to_be_bytes());
        v
    }

    fn check(bytes: &[u8]) -> Vec<Finding> {
        let mut out = Vec::new();
        check_snapshot(&file(), bytes, &mut out);
        out
    }

    #[test]
    fn empty_snapshot_from_the_format_reference() {
        assert!(check(&[0x00, 0x01, 0x48, 0x67, 0x4b, 0xc7, 0, 0, 0, 0]).is_empty());
        assert_eq!(
            snapshot(0),
            [0x00, 0x01, 0x48, 0x67, 0x4b, 0xc7, 0, 0, 0, 0]
        );
    }

    #[test]
    fn entries_parse_with_all_fields() {
        let s = snapshot(2);
        assert!(check(&s).is_empty());
        let e: Vec<_> = entries(&s).collect();
        assert_eq!(e.len(), 2);
        assert_eq!(
            e[1],
            (
                56,
                ProducerEntry {
                    producer_id: 1001,
                    epoch: 3,
                    last_sequence: 41,
                    last_offset: 501,
                    offset_delta: 4,
                    timestamp: 1_700_000_000_000,
                    coordinator_epoch: -1,
                    current_txn_first_offset: -1,
                }
            )
        );
    }

    #[test]
    fn crc_mismatch() {
        let mut s = snapshot(2);
        s[20] ^= 1;
        let out = check(&s);
        assert_eq!(out.len(), 1, "{out:#?}");
        assert_eq!(
            (out[0].kind, out[0].position),
            (Kind::SnapshotCrcMismatch, Some(2))
        );
    }

    #[test]
    fn invalid_size_version_and_header() {
        let mut s = snapshot(2);
        s.pop();
        let crc = computed_crc(&s);
        s[2..6].copy_from_slice(&crc.to_be_bytes());
        let out = check(&s);
        assert_eq!(out.len(), 1, "{out:#?}");
        assert_eq!(
            (out[0].kind, out[0].position),
            (Kind::SnapshotInvalid, Some(6))
        );

        let mut s = snapshot(1);
        s[1] = 2;
        let out = check(&s);
        assert_eq!(out.len(), 1, "{out:#?}");
        assert_eq!(
            (out[0].kind, out[0].position),
            (Kind::SnapshotInvalid, Some(0))
        );

        let out = check(&[0, 1, 0]);
        assert_eq!(
            (out.len(), out[0].kind, out[0].position),
            (1, Kind::SnapshotInvalid, Some(0))
        );
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = Rng(0xfeed_beef_1234_5678);
        for _ in 0..3000 {
            let mut b = rng.bytes(200);
            if b.len() >= 10 && rng.one_in(2) {
                let n = ((b.len() - 10) / 46) as i32;
                b[6..10].copy_from_slice(&n.to_be_bytes());
            }
            let _ = check(&b);
            let _ = entries(&b).count();
        }
    }
}
