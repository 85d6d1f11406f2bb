//! Time index (`.timeindex`) parsing and verification.
//!
//! 12-byte entries, `timestamp i64 | relativeOffset i32`. `LogSegment.append` keeps
//! `maxTimestampSoFar` (largest batch max timestamp appended, raised only when strictly greater)
//! and the offset it was seen at; whenever it adds an offset index entry it calls
//! `timeIndex.maybeAppend(maxTimestampSoFar, shallowOffsetOfMaxTimestampSoFar)`, which appends only
//! when the timestamp grew. On roll, close and recovery a final entry with the same pair is
//! appended. The offset is, depending on version and path, the last offset of the batch that
//! holds the maximum (followers, cleaner, recovery, compressed leader appends, 3.7+), a record
//! offset inside that batch (uncompressed leader appends before 3.7), or the first/last offset of
//! a LogAppendTime append whose batches all carry the same timestamp.
//!
//! The rule that holds for all of them: for entry `(ts, o)`, let `C` be the last batch whose base
//! offset is `<= o` (the batch holding `o`); then `C.maxTimestamp == ts` and `ts` is the largest
//! batch max timestamp from the segment start through `C`. Batches stamped -1 (no timestamp,
//! magic 0) never raise the maximum, exactly as in Kafka where the running maximum starts at -1.

use std::path::Path;
use std::sync::Arc;

use crate::batch::BatchInfo;
use crate::be;
use crate::finding::{Finding, Kind, Severity};
use crate::index::{real_entries, real_len};

/// Size of one `.timeindex` entry.
pub const ENTRY_SIZE: usize = 12;

/// One `.timeindex` entry as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeIndexEntry {
    pub timestamp: i64,
    /// Offset minus the segment's base offset.
    pub relative_offset: i32,
}

impl TimeIndexEntry {
    /// Parses the entry at `at`; `None` when fewer than 12 bytes remain.
    pub fn parse(buf: &[u8], at: usize) -> Option<TimeIndexEntry> {
        Some(TimeIndexEntry {
            timestamp: be::i64(buf, at)?,
            relative_offset: be::i32(buf, at.checked_add(8)?)?,
        })
    }
    pub fn offset(&self, segment_base: i64) -> i64 {
        segment_base.saturating_add(self.relative_offset as i64)
    }
}

/// Every whole entry with its byte position, padding included (slice to [`real_len`] to drop it).
pub fn entries(index: &[u8]) -> impl Iterator<Item = (u64, TimeIndexEntry)> + '_ {
    index
        .chunks_exact(ENTRY_SIZE)
        .enumerate()
        .filter_map(|(i, chunk)| {
            TimeIndexEntry::parse(chunk, 0).map(|e| ((i * ENTRY_SIZE) as u64, e))
        })
}

/// Real (non-padding) length of a `.timeindex`; see [`crate::index::real_len`].
pub fn time_index_real_len(bytes: &[u8]) -> usize {
    real_len(bytes, ENTRY_SIZE)
}

/// Streaming verifier of one segment's `.timeindex` against its batches (fed in log order).
///
/// Keeps the running maximum, the last batch seen and a cursor into the borrowed index: constant
/// memory whatever the segment size.
pub struct TimeIndexCheck<'a> {
    file: Arc<Path>,
    index: &'a [u8],
    base: i64,
    is_active: bool,
    next: usize,
    /// Largest batch max timestamp so far (-1 = none, as Kafka's NO_TIMESTAMP).
    max_so_far: i64,
    /// `(base, last, max_timestamp)` of the last batch seen.
    last_batch: Option<(i64, i64, i64)>,
    /// A corrupt range was skipped after `last_batch`: entries between it and the next batch
    /// cannot be judged.
    gap: bool,
}

impl<'a> TimeIndexCheck<'a> {
    /// Checks size, padding and ordering, and prepares the streaming match.
    pub fn new(
        file: Arc<Path>,
        index: &'a [u8],
        segment_base: i64,
        is_active: bool,
        out: &mut Vec<Finding>,
    ) -> Self {
        let index = real_entries(
            &file,
            index,
            ENTRY_SIZE,
            Kind::TimeIndexSize,
            "time index",
            is_active,
            out,
        );

        let mut prev: Option<TimeIndexEntry> = None;
        for (at, e) in entries(index) {
            let offset = e.offset(segment_base);
            if e.relative_offset < 0 {
                out.push(
                    Finding::error(
                        Kind::TimeIndexRegression,
                        &file,
                        format!("time index entry offset {offset} is below the segment base offset {segment_base}"),
                    )
                    .at(at)
                    .offset(offset),
                );
            }
            if let Some(p) = prev {
                if e.timestamp < p.timestamp {
                    out.push(
                        Finding::error(
                            Kind::TimeIndexRegression,
                            &file,
                            format!(
                                "time index timestamp {} at offset {offset} is below the previous entry's {}",
                                e.timestamp, p.timestamp
                            ),
                        )
                        .at(at)
                        .offset(offset),
                    );
                }
                if e.relative_offset < p.relative_offset {
                    out.push(
                        Finding::error(
                            Kind::TimeIndexRegression,
                            &file,
                            format!(
                                "time index offset {offset} is below the previous entry's {}",
                                p.offset(segment_base)
                            ),
                        )
                        .at(at)
                        .offset(offset),
                    );
                }
            }
            prev = Some(e);
        }
        TimeIndexCheck {
            file,
            index,
            base: segment_base,
            is_active,
            next: 0,
            max_so_far: -1,
            last_batch: None,
            gap: false,
        }
    }

    fn current(&self) -> Option<(u64, TimeIndexEntry)> {
        let at = self.next.checked_mul(ENTRY_SIZE)?;
        TimeIndexEntry::parse(self.index, at).map(|e| (at as u64, e))
    }

    /// Judges entry `e` against the batches seen so far (the last one holds its offset).
    fn judge(&self, at: u64, e: TimeIndexEntry, out: &mut Vec<Finding>) {
        if self.gap || e.relative_offset < 0 {
            return;
        }
        let offset = e.offset(self.base);
        let msg = match self.last_batch {
            None => format!(
                "time index entry ({}, offset {offset}) precedes the segment's first batch",
                e.timestamp
            ),
            Some((base, last, max_ts)) => {
                if max_ts == e.timestamp && self.max_so_far == e.timestamp {
                    return;
                }
                format!(
                    "time index timestamp {} at offset {offset}: the batch holding it ({base}..={last}) has max timestamp {max_ts}, and the largest timestamp up to it is {}",
                    e.timestamp, self.max_so_far
                )
            }
        };
        out.push(
            Finding::error(Kind::TimeIndexTimestampMismatch, &self.file, msg)
                .at(at)
                .offset(offset),
        );
    }

    /// Feeds one valid batch (log order).
    pub fn on_batch(&mut self, b: &BatchInfo, out: &mut Vec<Finding>) {
        // Entries whose offset lies before this batch belong to the previous one.
        while let Some((at, e)) = self.current() {
            if e.offset(self.base) >= b.base_offset {
                break;
            }
            self.judge(at, e, out);
            self.next += 1;
        }
        self.gap = false;
        self.max_so_far = self.max_so_far.max(b.max_timestamp);
        self.last_batch = Some((b.base_offset, b.last_offset, b.max_timestamp));
    }

    /// A corrupt range the walk skipped: the batches in it are unknown, so entries whose offset
    /// falls between the batches around it are not judged. (A skipped batch can only lower the
    /// computed running maximum, which the equality test then still accepts for later entries.)
    pub fn on_skipped(&mut self, _start: u64, _end: u64) {
        self.gap = true;
    }

    /// Ends the walk; judges the entries that belong to the last batch or lie beyond it.
    pub fn finish(mut self, out: &mut Vec<Finding>) {
        while let Some((at, e)) = self.current() {
            self.next += 1;
            let offset = e.offset(self.base);
            let beyond = match self.last_batch {
                Some((_, last, _)) if offset > last => {
                    format!("the segment's last batch ends at offset {last}")
                }
                None => "the segment has no valid batch".to_string(),
                Some(_) => {
                    self.judge(at, e, out);
                    continue;
                }
            };
            if self.gap {
                continue;
            }
            let sev = if self.is_active {
                Severity::Warning
            } else {
                Severity::Error
            };
            out.push(
                Finding::new(
                    sev,
                    Kind::TimeIndexOffsetPastEnd,
                    &self.file,
                    format!("time index entry (timestamp {}, offset {offset}) is beyond the data: {beyond}", e.timestamp),
                )
                .at(at)
                .offset(offset),
            );
        }
    }
}

/// Finding for a segment whose `.timeindex` is absent.
pub fn missing(time_index_file: &Arc<Path>, segment_base: i64) -> Finding {
    Finding::info(
        Kind::TimeIndexMissing,
        time_index_file,
        "no .timeindex file; Kafka rebuilds it on recovery",
    )
    .offset(segment_base)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::file_id;
    use crate::index::test_support::{batch, Rng};

    fn tidx(entries: &[(i64, i32)]) -> Vec<u8> {
        entries
            .iter()
            .flat_map(|(t, o)| t.to_be_bytes().into_iter().chain(o.to_be_bytes()))
            .collect()
    }

    fn file() -> Arc<Path> {
        file_id("p-0/00000000000000001000.timeindex")
    }

    fn run(index: &[u8], batches: &[BatchInfo], active: bool) -> Vec<Finding> {
        let mut out = Vec::new();
        let mut c = TimeIndexCheck::new(file(), index, 1000, active, &mut out);
        for b in batches {
            c.on_batch(b, &mut out);
        }
        c.finish(&mut out);
        out
    }

    /// Batches of 5 offsets at base 1000 with the given max timestamps.
    fn batches(ts: &[i64]) -> Vec<BatchInfo> {
        ts.iter()
            .enumerate()
            .map(|(i, t)| {
                batch(
                    100 * i as u64,
                    100,
                    1000 + 5 * i as i64,
                    1004 + 5 * i as i64,
                    *t,
                )
            })
            .collect()
    }

    fn only(out: &[Finding], kind: Kind) -> &Finding {
        assert_eq!(out.len(), 1, "{out:#?}");
        assert_eq!(out[0].kind, kind, "{out:#?}");
        &out[0]
    }

    #[test]
    fn kafka_shapes_pass() {
        let bs = batches(&[10, 30, 20, 50, 40, 60]);
        // Shallow (batch last offset) entries, then the roll entry.
        assert!(run(&tidx(&[(30, 9), (50, 19), (60, 29)]), &bs, false).is_empty());
        // Record-level offsets inside the batch holding the maximum (uncompressed leader < 3.7).
        assert!(run(&tidx(&[(30, 6), (50, 16), (60, 25)]), &bs, false).is_empty());
        // Entry written later than the maximum was reached (maybeAppend of an unchanged maximum
        // never appends, so only one entry per value).
        assert!(run(&tidx(&[(30, 9)]), &bs, false).is_empty());
        // Batches without timestamps (-1) never raise the maximum.
        let bs = batches(&[-1, -1, 7, -1]);
        assert!(run(&tidx(&[(7, 14)]), &bs, false).is_empty());
        // LogAppendTime append of several batches with one timestamp: first or last offset.
        let bs = batches(&[5, 9, 9, 9]);
        assert!(run(&tidx(&[(5, 4), (9, 5)]), &bs, false).is_empty());
        assert!(run(&tidx(&[(5, 4), (9, 19)]), &bs, false).is_empty());
    }

    #[test]
    fn size_not_multiple_of_12() {
        let mut i = tidx(&[(30, 9)]);
        i.push(1);
        let out = run(&i, &batches(&[10, 30]), false);
        let f = only(&out, Kind::TimeIndexSize);
        assert_eq!((f.position, f.end_position), (Some(12), Some(13)));
    }

    #[test]
    fn preallocated_padding_is_one_info() {
        let mut i = tidx(&[(30, 9)]);
        i.resize(12 * 50, 0);
        let out = run(&i, &batches(&[10, 30, 20]), true);
        let f = only(&out, Kind::IndexPreallocated);
        assert_eq!((f.severity, f.position), (Severity::Info, Some(12)));
        assert!(f.message.starts_with("1 real entries"));
    }

    #[test]
    fn regression() {
        let bs = batches(&[10, 30, 20, 50]);
        let out = run(&tidx(&[(50, 19), (30, 9)]), &bs, false);
        let reg: Vec<_> = out
            .iter()
            .filter(|f| f.kind == Kind::TimeIndexRegression)
            .collect();
        assert_eq!(reg.len(), 2, "{out:#?}"); // timestamp and offset both go back
        assert!(reg
            .iter()
            .all(|f| f.position == Some(12) && f.offset == Some(1009)));
        let out = run(&tidx(&[(5, -3)]), &bs, false);
        let f = only(&out, Kind::TimeIndexRegression);
        assert_eq!((f.position, f.offset), (Some(0), Some(997)));
    }

    #[test]
    fn timestamp_mismatch() {
        let bs = batches(&[10, 30, 20, 50]);
        // Not the batch's max timestamp.
        let out = run(&tidx(&[(30, 9), (45, 19)]), &bs, false);
        let f = only(&out, Kind::TimeIndexTimestampMismatch);
        assert_eq!((f.position, f.offset), (Some(12), Some(1019)));
        // The batch's max, but not the maximum so far (offset points past where it was reached
        // into a batch with a smaller timestamp: a lookup would skip records).
        let out = run(&tidx(&[(30, 14)]), &bs, false);
        let f = only(&out, Kind::TimeIndexTimestampMismatch);
        assert_eq!((f.position, f.offset), (Some(0), Some(1014)));
        // A final (roll) entry that is not the segment's maximum.
        let out = run(&tidx(&[(30, 9), (49, 19)]), &bs, false);
        let f = only(&out, Kind::TimeIndexTimestampMismatch);
        assert_eq!((f.position, f.offset), (Some(12), Some(1019)));
    }

    #[test]
    fn offset_past_end() {
        let bs = batches(&[10, 30]);
        let out = run(&tidx(&[(30, 9), (40, 12)]), &bs, false);
        let f = only(&out, Kind::TimeIndexOffsetPastEnd);
        assert_eq!(
            (f.position, f.offset, f.severity),
            (Some(12), Some(1012), Severity::Error)
        );
        let out = run(&tidx(&[(30, 9), (40, 12)]), &bs, true);
        assert_eq!(
            only(&out, Kind::TimeIndexOffsetPastEnd).severity,
            Severity::Warning
        );
    }

    #[test]
    fn skipped_range_silences_entries_in_it() {
        let bs = batches(&[10, 30, 20, 50]);
        let mut out = Vec::new();
        let index = tidx(&[(30, 9), (45, 12)]);
        let mut c = TimeIndexCheck::new(file(), &index, 1000, false, &mut out);
        for b in bs.iter().filter(|b| b.position != 200) {
            if b.position == 300 {
                c.on_skipped(200, 300);
            }
            c.on_batch(b, &mut out);
        }
        c.finish(&mut out);
        assert!(out.is_empty(), "{out:#?}");
    }

    #[test]
    fn missing_is_info() {
        let f = missing(&file(), 1000);
        assert_eq!(
            (f.kind, f.severity),
            (Kind::TimeIndexMissing, Severity::Info)
        );
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = Rng(0x1234_5678_9abc_def1);
        for _ in 0..2000 {
            let index = rng.bytes(200);
            let _ = entries(&index).count();
            let _ = time_index_real_len(&index);
            let mut out = Vec::new();
            let mut c =
                TimeIndexCheck::new(file(), &index, rng.next() as i64, rng.one_in(2), &mut out);
            for i in 0..rng.next() % 20 {
                if rng.one_in(5) {
                    c.on_skipped(i, i + 1);
                }
                let b = batch(
                    i * 100,
                    100,
                    rng.next() as i64,
                    rng.next() as i64,
                    rng.next() as i64,
                );
                c.on_batch(&b, &mut out);
            }
            c.finish(&mut out);
        }
    }
}
