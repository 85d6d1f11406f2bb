//! Transaction index (`.txnindex`) parsing and verification.
//!
//! One 34-byte entry per aborted transaction (`AbortedTxn`): `version i16 (0) | producerId i64 |
//! firstOffset i64 | lastOffset i64 | lastStableOffset i64`. `lastOffset` is the offset of the
//! ABORT marker, which Kafka writes to the segment that holds the marker (`LogSegment
//! .updateTxnIndex` on append and recovery), so every entry must name an ABORT control batch of
//! this segment from the same producer, and every ABORT marker needs an entry, or read_committed
//! consumers would be handed the aborted records. `TransactionIndex.append` requires strictly
//! increasing `lastOffset`s and `sanityCheck` requires them `>=` the segment base. A partial tail
//! is ignored by Kafka's reader. Kafka creates the file only when needed: absent means empty.
//!
//! One legitimate exception: the log cleaner keeps an ABORT marker whose transaction's records it
//! already removed until the marker's delete horizon passes, without copying the index entry
//! (`LogCleaner.onControlBatchRead`); such markers carry the delete-horizon attribute.

use std::path::Path;
use std::sync::Arc;

use crate::batch::BatchInfo;
use crate::be;
use crate::finding::{Finding, Kind};

/// Size of one `.txnindex` entry.
pub const ENTRY_SIZE: usize = 34;

/// One aborted transaction as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub version: i16,
    pub producer_id: i64,
    pub first_offset: i64,
    /// Offset of the ABORT marker.
    pub last_offset: i64,
    pub last_stable_offset: i64,
}

impl AbortedTxn {
    /// Parses the entry at `at`; `None` when fewer than 34 bytes remain.
    pub fn parse(buf: &[u8], at: usize) -> Option<AbortedTxn> {
        Some(AbortedTxn {
            version: be::i16(buf, at)?,
            producer_id: be::i64(buf, at.checked_add(2)?)?,
            first_offset: be::i64(buf, at.checked_add(10)?)?,
            last_offset: be::i64(buf, at.checked_add(18)?)?,
            last_stable_offset: be::i64(buf, at.checked_add(26)?)?,
        })
    }
}

/// Every whole entry with its byte position; a partial tail is ignored, as Kafka ignores it.
pub fn entries(index: &[u8]) -> impl Iterator<Item = (u64, AbortedTxn)> + '_ {
    index
        .chunks_exact(ENTRY_SIZE)
        .enumerate()
        .filter_map(|(i, chunk)| AbortedTxn::parse(chunk, 0).map(|e| ((i * ENTRY_SIZE) as u64, e)))
}

/// Streaming verifier of one segment's `.txnindex` against its batches (fed in log order):
/// a merge of the index's entries with the ABORT markers, one cursor, constant memory.
pub struct TxnIndexCheck<'a> {
    file: Arc<Path>,
    index: &'a [u8],
    next: usize,
    /// Last offset of the previous batch.
    prev_last: Option<i64>,
    /// A corrupt range was skipped since the previous batch.
    gap: bool,
}

impl<'a> TxnIndexCheck<'a> {
    /// Checks size, versions and ordering. Pass an empty slice when the file does not exist.
    pub fn new(
        file: Arc<Path>,
        index: &'a [u8],
        segment_base: i64,
        out: &mut Vec<Finding>,
    ) -> Self {
        let whole = index.len() / ENTRY_SIZE * ENTRY_SIZE;
        if whole != index.len() {
            out.push(
                Finding::warning(
                    Kind::TxnIndexSize,
                    &file,
                    format!(
                        "transaction index is {} bytes: a partial {}-byte entry at the end is ignored by Kafka",
                        index.len(),
                        index.len() - whole
                    ),
                )
                .range(whole as u64, index.len() as u64),
            );
        }
        let index = index.get(..whole).unwrap_or(&[]);
        let mut prev: Option<i64> = None;
        for (at, t) in entries(index) {
            if t.version != 0 {
                out.push(
                    Finding::error(
                        Kind::TxnIndexBadVersion,
                        &file,
                        format!(
                            "aborted transaction entry has version {}, Kafka knows only 0",
                            t.version
                        ),
                    )
                    .at(at)
                    .offset(t.last_offset),
                );
            }
            let why = if t.last_offset < segment_base {
                Some(format!(
                    "lastOffset {} is below the segment base offset {segment_base}",
                    t.last_offset
                ))
            } else if let Some(p) = prev.filter(|p| t.last_offset <= *p) {
                Some(format!(
                    "lastOffset {} does not increase over the previous entry's {p}",
                    t.last_offset
                ))
            } else if t.first_offset > t.last_offset {
                Some(format!(
                    "firstOffset {} is above lastOffset {}",
                    t.first_offset, t.last_offset
                ))
            } else {
                None
            };
            if let Some(why) = why {
                out.push(
                    Finding::error(Kind::TxnIndexOrder, &file, why)
                        .at(at)
                        .offset(t.last_offset),
                );
            }
            prev = Some(t.last_offset);
        }
        TxnIndexCheck {
            file,
            index,
            next: 0,
            prev_last: None,
            gap: false,
        }
    }

    fn current(&self) -> Option<(u64, AbortedTxn)> {
        let at = self.next.checked_mul(ENTRY_SIZE)?;
        AbortedTxn::parse(self.index, at).map(|t| (at as u64, t))
    }

    fn no_marker(&self, at: u64, t: &AbortedTxn, why: &str, out: &mut Vec<Finding>) {
        // An entry whose marker may sit in a skipped corrupt range cannot be judged.
        let after_prev = match self.prev_last {
            Some(p) => t.last_offset > p,
            None => true,
        };
        if self.gap && after_prev {
            return;
        }
        out.push(
            Finding::error(
                Kind::TxnIndexNoMarker,
                &self.file,
                format!(
                    "aborted transaction of producer {} ends at offset {}, {why}",
                    t.producer_id, t.last_offset
                ),
            )
            .at(at)
            .offset(t.last_offset),
        );
    }

    /// Feeds one valid batch (log order). Control batches with `control_type == Some(0)` are
    /// ABORT markers.
    pub fn on_batch(&mut self, b: &BatchInfo, out: &mut Vec<Finding>) {
        while let Some((at, t)) = self.current() {
            if t.last_offset >= b.base_offset {
                break;
            }
            self.no_marker(
                at,
                &t,
                "which is not the offset of an ABORT marker in this segment",
                out,
            );
            self.next += 1;
        }
        self.gap = false;
        if b.is_control() && b.control_type == Some(0) {
            match self.current() {
                Some((at, t)) if t.last_offset == b.base_offset => {
                    if t.producer_id != b.producer_id {
                        let why = format!(
                            "but the ABORT marker there belongs to producer {}",
                            b.producer_id
                        );
                        self.no_marker(at, &t, &why, out);
                    }
                    self.next += 1;
                }
                _ if b.has_delete_horizon() => {}
                cur => {
                    let at = cur.map_or(self.index.len() as u64, |(at, _)| at);
                    out.push(
                        Finding::error(
                            Kind::TxnIndexMissingEntry,
                            &self.file,
                            format!(
                                "ABORT marker of producer {} at offset {} (log position {}) has no transaction index entry",
                                b.producer_id, b.base_offset, b.position
                            ),
                        )
                        .at(at)
                        .offset(b.base_offset),
                    );
                }
            }
        }
        self.prev_last = Some(b.last_offset);
    }

    /// A corrupt range the walk skipped: a marker may have been lost in it.
    pub fn on_skipped(&mut self, _start: u64, _end: u64) {
        self.gap = true;
    }

    /// Ends the walk; entries left over name offsets past the segment's last batch.
    pub fn finish(mut self, out: &mut Vec<Finding>) {
        while let Some((at, t)) = self.current() {
            self.no_marker(
                at,
                &t,
                "which is not the offset of an ABORT marker in this segment",
                out,
            );
            self.next += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::{file_id, Severity};
    use crate::index::test_support::{batch, Rng};

    fn entry(version: i16, pid: i64, first: i64, last: i64) -> Vec<u8> {
        let mut v = version.to_be_bytes().to_vec();
        for x in [pid, first, last, first] {
            v.extend_from_slice(&x.to_be_bytes());
        }
        v
    }

    fn file() -> Arc<Path> {
        file_id("p-0/00000000000000001000.txnindex")
    }

    /// A control batch at offset `off` (position 100*(off-1000)), ABORT (0) or COMMIT (1).
    fn marker(off: i64, pid: i64, kind: i16) -> BatchInfo {
        let mut b = batch(100 * (off - 1000) as u64, 100, off, off, 0);
        b.attributes = 0x30;
        b.producer_id = pid;
        b.control_type = Some(kind);
        b
    }

    fn data(off: i64, pid: i64) -> BatchInfo {
        let mut b = batch(100 * (off - 1000) as u64, 100, off, off, 0);
        b.attributes = 0x10;
        b.producer_id = pid;
        b
    }

    /// Log: 1000 data(p7), 1001 ABORT(p7), 1002 data(p8), 1003 COMMIT(p8), 1004 data(p9), 1005 ABORT(p9).
    fn log() -> Vec<BatchInfo> {
        vec![
            data(1000, 7),
            marker(1001, 7, 0),
            data(1002, 8),
            marker(1003, 8, 1),
            data(1004, 9),
            marker(1005, 9, 0),
        ]
    }

    fn run(index: &[u8], batches: &[BatchInfo]) -> Vec<Finding> {
        let mut out = Vec::new();
        let mut c = TxnIndexCheck::new(file(), index, 1000, &mut out);
        for b in batches {
            c.on_batch(b, &mut out);
        }
        c.finish(&mut out);
        out
    }

    fn only(out: &[Finding], kind: Kind) -> &Finding {
        assert_eq!(out.len(), 1, "{out:#?}");
        assert_eq!(out[0].kind, kind, "{out:#?}");
        &out[0]
    }

    fn good() -> Vec<u8> {
        [entry(0, 7, 1000, 1001), entry(0, 9, 1004, 1005)].concat()
    }

    #[test]
    fn consistent_index_passes() {
        assert!(run(&good(), &log()).is_empty());
        assert_eq!(entries(&good()).count(), 2);
        // No aborts, no file.
        assert!(run(&[], &[data(1000, 1), marker(1001, 1, 1)]).is_empty());
    }

    #[test]
    fn partial_tail() {
        let mut i = good();
        i.extend_from_slice(&[0, 0, 1]);
        let out = run(&i, &log());
        let f = only(&out, Kind::TxnIndexSize);
        assert_eq!((f.severity, f.position), (Severity::Warning, Some(68)));
    }

    #[test]
    fn bad_version() {
        let i = [entry(0, 7, 1000, 1001), entry(3, 9, 1004, 1005)].concat();
        let out = run(&i, &log());
        let f = only(&out, Kind::TxnIndexBadVersion);
        assert_eq!((f.position, f.offset), (Some(34), Some(1005)));
    }

    #[test]
    fn order() {
        let i = [entry(0, 9, 1004, 1005), entry(0, 7, 1000, 1001)].concat();
        let out = run(&i, &log());
        let f = out
            .iter()
            .find(|f| f.kind == Kind::TxnIndexOrder)
            .expect("order");
        assert_eq!((f.position, f.offset), (Some(34), Some(1001)));
        let out = run(&entry(0, 7, 900, 999), &[]);
        let f = out
            .iter()
            .find(|f| f.kind == Kind::TxnIndexOrder)
            .expect("below base");
        assert_eq!((f.position, f.offset), (Some(0), Some(999)));
    }

    #[test]
    fn no_marker() {
        // lastOffset names the COMMIT marker.
        let i = [
            entry(0, 7, 1000, 1001),
            entry(0, 8, 1002, 1003),
            entry(0, 9, 1004, 1005),
        ]
        .concat();
        let out = run(&i, &log());
        let f = only(&out, Kind::TxnIndexNoMarker);
        assert_eq!((f.position, f.offset), (Some(34), Some(1003)));
        // Wrong producer at the ABORT marker.
        let i = [entry(0, 7, 1000, 1001), entry(0, 5, 1004, 1005)].concat();
        let out = run(&i, &log());
        let f = only(&out, Kind::TxnIndexNoMarker);
        assert_eq!((f.position, f.offset), (Some(34), Some(1005)));
        // Past the segment's end.
        let i = [good(), entry(0, 9, 1006, 1010)].concat();
        let out = run(&i, &log());
        let f = only(&out, Kind::TxnIndexNoMarker);
        assert_eq!((f.position, f.offset), (Some(68), Some(1010)));
    }

    #[test]
    fn missing_entry() {
        let out = run(&entry(0, 9, 1004, 1005), &log());
        let f = only(&out, Kind::TxnIndexMissingEntry);
        assert_eq!((f.position, f.offset), (Some(0), Some(1001)));
        // A marker the cleaner kept after removing its transaction carries a delete horizon.
        let mut bs = log();
        bs[1].attributes |= 0x40;
        assert!(run(&entry(0, 9, 1004, 1005), &bs).is_empty());
    }

    #[test]
    fn skipped_range_hides_marker() {
        let mut out = Vec::new();
        let index = good();
        let mut c = TxnIndexCheck::new(file(), &index, 1000, &mut out);
        for b in log().iter().filter(|b| b.base_offset != 1001) {
            if b.base_offset == 1002 {
                c.on_skipped(100, 200);
            }
            c.on_batch(b, &mut out);
        }
        c.finish(&mut out);
        assert!(out.is_empty(), "{out:#?}");
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = Rng(0x0bad_cafe_f00d_d00d);
        for _ in 0..2000 {
            let index = rng.bytes(300);
            let _ = entries(&index).count();
            let mut out = Vec::new();
            let mut c = TxnIndexCheck::new(file(), &index, rng.next() as i64, &mut out);
            for _ in 0..rng.next() % 20 {
                if rng.one_in(5) {
                    c.on_skipped(0, 1);
                }
                let mut b = batch(0, 100, rng.next() as i64, rng.next() as i64, 0);
                b.attributes = rng.next() as i16;
                b.producer_id = (rng.next() % 3) as i64;
                b.control_type = Some((rng.next() % 3) as i16);
                c.on_batch(&b, &mut out);
            }
            c.finish(&mut out);
        }
    }
}
