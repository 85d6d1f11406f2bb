//! Offset index (`.index`) parsing and verification.
//!
//! An `.index` file is a sequence of 8-byte entries, `relativeOffset i32 | position i32`
//! (big-endian). Kafka (`LogSegment.append`) adds an entry each time more than
//! `index.interval.bytes` were appended since the previous one, so position 0 is never indexed.
//! What an entry's offset means depends on who wrote it:
//!
//! * leader, Kafka >= 2.0 and log recovery: `(last offset of the batch at position, position)`;
//! * follower and log cleaner, Kafka >= 2.0: one append is a chunk of several batches, so the entry
//!   is `(last offset of the chunk's last batch, start of the chunk's first batch)`;
//! * Kafka < 2.0 (before KAFKA-6530) indexed the append's *first* offset: `(base offset of the
//!   batch at position, position)`.
//!
//! The rule that holds for all three, and the one a lookup needs: the position is a batch boundary,
//! the batch there starts at or before the entry's offset, and the offset is the last offset of a
//! batch between that position and the next entry's position (or the base offset of the batch at
//! the position, for pre-2.0 indexes).
//!
//! Active segments' indexes are preallocated (10 MiB by default) and zero filled; the zero tail is
//! padding, reported once as information, never as mismatches.

use std::path::Path;
use std::sync::Arc;

use crate::batch::BatchInfo;
use crate::be;
use crate::finding::{Finding, Kind, Severity};

/// Size of one `.index` entry.
pub const ENTRY_SIZE: usize = 8;

/// One `.index` entry as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    /// Offset minus the segment's base offset.
    pub relative_offset: i32,
    /// Byte position of a batch in the `.log`.
    pub position: i32,
}

impl IndexEntry {
    /// Parses the entry at `at`; `None` when fewer than 8 bytes remain.
    pub fn parse(buf: &[u8], at: usize) -> Option<IndexEntry> {
        Some(IndexEntry {
            relative_offset: be::i32(buf, at)?,
            position: be::i32(buf, at.checked_add(4)?)?,
        })
    }
    /// Absolute Kafka offset given the segment's base offset.
    pub fn offset(&self, segment_base: i64) -> i64 {
        segment_base.saturating_add(self.relative_offset as i64)
    }
    pub fn is_zero(&self) -> bool {
        self.relative_offset == 0 && self.position == 0
    }
}

/// Every whole entry of `index` with its byte position in the file, padding included (call
/// [`real_len`] first and pass `&index[..real_len]` to skip it). A partial tail is ignored, as
/// Kafka ignores it.
pub fn entries(index: &[u8]) -> impl Iterator<Item = (u64, IndexEntry)> + '_ {
    index
        .chunks_exact(ENTRY_SIZE)
        .enumerate()
        .filter_map(|(i, chunk)| IndexEntry::parse(chunk, 0).map(|e| ((i * ENTRY_SIZE) as u64, e)))
}

/// Length of the real (non-padding) part of an index file made of `entry_size`-byte entries.
///
/// Kafka preallocates active-segment indexes zero filled and trims them only on roll or close,
/// and assumes every entry is valid; a reader has to find the real end itself. The padding is the
/// longest run of all-zero entries that reaches the end of the whole entries: an all-zero entry
/// can never be real (position 0 is never indexed, and a time index entry (0, base) would need a
/// batch stamped 1970-01-01T00:00:00Z). Zero entries followed by non-zero data are not padding
/// (they are a zeroed hole and get reported by the ordering checks). The result is a multiple of
/// `entry_size`; a partial tail is excluded.
pub fn real_len(bytes: &[u8], entry_size: usize) -> usize {
    if entry_size == 0 {
        return 0;
    }
    let whole = bytes.len() / entry_size * entry_size;
    let region = bytes.get(..whole).unwrap_or(&[]);
    match region.iter().rposition(|b| *b != 0) {
        None => 0,
        Some(last) => (last / entry_size + 1) * entry_size,
    }
}

/// The "preallocated" finding shared by `.index` and `.timeindex`: one info finding, never
/// mismatches. Returns `true` when the file has padding.
/// The part of an index file that holds real entries, after reporting a partial last entry
/// (`size_kind`) and a preallocated zero tail. Shared by the offset and time indexes, whose
/// files differ only in entry size.
pub(crate) fn real_entries<'a>(
    file: &Arc<Path>,
    index: &'a [u8],
    entry_size: usize,
    size_kind: Kind,
    what: &str,
    is_active: bool,
    out: &mut Vec<Finding>,
) -> &'a [u8] {
    let tail = index.len() % entry_size;
    if tail != 0 {
        let whole = (index.len() - tail) as u64;
        out.push(
            Finding::error(
                size_kind,
                file,
                format!(
                    "{what} is {} bytes, not a multiple of {entry_size}: {tail} trailing bytes are ignored",
                    index.len()
                ),
            )
            .range(whole, index.len() as u64),
        );
    }
    let real = real_len(index, entry_size);
    report_padding(file, index, entry_size, real, is_active, out);
    index.get(..real).unwrap_or(&[])
}

pub(crate) fn report_padding(
    file: &Arc<Path>,
    bytes: &[u8],
    entry_size: usize,
    real: usize,
    is_active: bool,
    out: &mut Vec<Finding>,
) -> bool {
    let whole = bytes.len() / entry_size.max(1) * entry_size;
    if real >= whole {
        return false;
    }
    let note = if is_active {
        "preallocated index of the active segment"
    } else {
        "not trimmed although the segment is not the active one (broker stopped uncleanly?)"
    };
    out.push(
        Finding::info(
            Kind::IndexPreallocated,
            file,
            format!(
                "{} real entries, then {} bytes of zero padding from byte {} ({note})",
                real / entry_size.max(1),
                whole - real,
                real
            ),
        )
        .range(real as u64, whole as u64),
    );
    true
}

/// Streaming verifier of one segment's `.index` against the batches of its `.log`.
///
/// Construction checks what needs no log (size, padding, ordering, positions past the end);
/// then the log walk feeds every valid batch in position order through [`Self::on_batch`] and
/// every skipped corrupt range through [`Self::on_skipped`]. The checker keeps one pending entry
/// and a cursor into the borrowed index, so memory does not grow with the segment.
pub struct OffsetIndexCheck<'a> {
    file: Arc<Path>,
    /// Whole, non-padding entries.
    index: &'a [u8],
    base: i64,
    log_len: u64,
    is_active: bool,
    /// Next entry index to consider loading.
    next: usize,
    cur: Option<Pending>,
    /// Hull of the corrupt ranges skipped since the last batch (no batch lies inside it).
    skip: Option<(u64, u64)>,
    /// Position of the last entry loaded (safety net against non-monotone positions).
    last_loaded: Option<u64>,
    /// `(position, end, base, last)` of the previous batch, to name the batch an entry falls in.
    prev: Option<(u64, u64, i64, i64)>,
}

/// The entry currently being matched against batches.
#[derive(Debug, Clone, Copy)]
struct Pending {
    at: u64,
    offset: i64,
    pos: u64,
    /// Position of the next checkable entry (or `u64::MAX`): batches of this entry's chunk lie in
    /// `[pos, chunk_end)`.
    chunk_end: u64,
    /// `(base, last)` of the batch starting exactly at `pos`.
    boundary: Option<(i64, i64)>,
    matched: bool,
    /// A finding was emitted or the entry cannot be judged: nothing more to say.
    resolved: bool,
    /// The chunk overlaps a skipped range: a mismatch may be the corruption's fault.
    tainted: bool,
    /// Last offset of the last batch seen in the chunk (for messages).
    chunk_last: Option<i64>,
}

impl<'a> OffsetIndexCheck<'a> {
    /// Checks size, padding and ordering, and prepares the streaming match.
    ///
    /// `log_len` is the `.log` file size; `is_active` says whether this is the partition's newest
    /// segment (whose index Kafka preallocates and rebuilds on recovery).
    pub fn new(
        file: Arc<Path>,
        index: &'a [u8],
        segment_base: i64,
        log_len: u64,
        is_active: bool,
        out: &mut Vec<Finding>,
    ) -> Self {
        let index = real_entries(
            &file,
            index,
            ENTRY_SIZE,
            Kind::IndexSize,
            "index",
            is_active,
            out,
        );

        // Pairwise ordering and bounds: no batch needed.
        let mut prev: Option<IndexEntry> = None;
        for (at, e) in entries(index) {
            let offset = e.offset(segment_base);
            if e.relative_offset < 0 {
                out.push(
                    Finding::error(
                        Kind::IndexOffsetOrder,
                        &file,
                        format!("index entry offset {offset} is below the segment base offset {segment_base}"),
                    )
                    .at(at)
                    .offset(offset),
                );
            } else if let Some(p) = prev.filter(|p| e.relative_offset <= p.relative_offset) {
                out.push(
                    Finding::error(
                        Kind::IndexOffsetOrder,
                        &file,
                        format!(
                            "index entry offset {offset} does not increase over the previous entry's {}",
                            p.offset(segment_base)
                        ),
                    )
                    .at(at)
                    .offset(offset),
                );
            }
            let past = |pos: i32| pos < 0 || pos as u64 >= log_len;
            if past(e.position) {
                out.push(
                    Finding::error(
                        Kind::IndexPositionPastEnd,
                        &file,
                        format!(
                            "index entry position {} is outside the {log_len}-byte log",
                            e.position
                        ),
                    )
                    .at(at)
                    .offset(offset),
                );
            } else if let Some(p) = prev.filter(|p| !past(p.position) && e.position <= p.position) {
                out.push(
                    Finding::error(
                        Kind::IndexPositionOrder,
                        &file,
                        format!(
                            "index entry position {} does not increase over the previous entry's {}",
                            e.position, p.position
                        ),
                    )
                    .at(at)
                    .offset(offset),
                );
            }
            prev = Some(e);
        }

        let mut check = OffsetIndexCheck {
            file,
            index,
            base: segment_base,
            log_len,
            is_active,
            next: 0,
            cur: None,
            skip: None,
            last_loaded: None,
            prev: None,
        };
        check.load();
        check
    }

    fn entry(&self, i: usize) -> Option<IndexEntry> {
        IndexEntry::parse(self.index, i.checked_mul(ENTRY_SIZE)?)
    }

    fn count(&self) -> usize {
        self.index.len() / ENTRY_SIZE
    }

    /// An entry takes part in batch matching when its position is inside the log, below the
    /// next entry's and above the previous entry's: an entry out of position order was already
    /// reported and would otherwise throw the position-ordered walk off for its neighbours.
    fn checkable(&self, i: usize) -> bool {
        let Some(e) = self.entry(i) else { return false };
        let inside = |p: i32| p >= 0 && (p as u64) < self.log_len;
        if !inside(e.position) || e.relative_offset < 0 {
            return false;
        }
        if let Some(p) = i.checked_sub(1).and_then(|j| self.entry(j)) {
            if inside(p.position) && p.position >= e.position {
                return false;
            }
        }
        if let Some(n) = self.entry(i + 1) {
            if inside(n.position) && n.position <= e.position {
                return false;
            }
        }
        match self.last_loaded {
            Some(last) => e.position as u64 > last,
            None => true,
        }
    }

    /// Loads the next checkable entry as the pending one (or clears it).
    fn load(&mut self) {
        self.cur = None;
        let n = self.count();
        while self.next < n && !self.checkable(self.next) {
            self.next += 1;
        }
        let i = self.next;
        let Some(e) = self.entry(i) else { return };
        if i >= n {
            return;
        }
        let pos = e.position as u64;
        self.last_loaded = Some(pos);
        // The chunk ends at the next checkable entry; a scan forward that the next load reuses.
        let mut j = i + 1;
        while j < n && !self.checkable(j) {
            j += 1;
        }
        self.next = j;
        let chunk_end = self
            .entry(j)
            .filter(|_| j < n)
            .map_or(u64::MAX, |e| e.position as u64);
        let mut p = Pending {
            at: (i * ENTRY_SIZE) as u64,
            offset: e.offset(self.base),
            pos,
            chunk_end,
            boundary: None,
            matched: false,
            resolved: false,
            tainted: false,
            chunk_last: None,
        };
        if let Some((s, t)) = self.skip {
            mark_skip(&mut p, s, t);
        }
        self.cur = Some(p);
    }

    /// Finalizes every pending entry whose chunk ends at or before `pos`.
    fn advance(&mut self, pos: u64, out: &mut Vec<Finding>) {
        while let Some(c) = self.cur {
            if c.chunk_end > pos {
                break;
            }
            self.finalize(c, None, out);
            self.load();
        }
    }

    fn finalize(&self, c: Pending, end_of_valid: Option<u64>, out: &mut Vec<Finding>) {
        if c.resolved {
            return;
        }
        match c.boundary {
            None => {
                if c.tainted {
                    return;
                }
                if let Some(valid) = end_of_valid.filter(|v| c.pos >= *v) {
                    // Into the torn or preallocated tail: Kafka rebuilds an active segment's
                    // index on recovery, so there it is a warning.
                    let sev = if self.is_active {
                        Severity::Warning
                    } else {
                        Severity::Error
                    };
                    out.push(
                        Finding::new(
                            sev,
                            Kind::IndexPositionPastEnd,
                            &self.file,
                            format!(
                                "index entry position {} is past the end of the valid data at byte {valid} (log is {} bytes)",
                                c.pos, self.log_len
                            ),
                        )
                        .at(c.at)
                        .offset(c.offset),
                    );
                } else {
                    out.push(self.not_boundary(&c, "no batch starts there"));
                }
            }
            Some((base, last)) => {
                if (c.matched && base <= c.offset) || c.tainted {
                    return;
                }
                let upto = if c.chunk_end == u64::MAX {
                    "the end of the log".to_string()
                } else {
                    format!("the next entry's position {}", c.chunk_end)
                };
                let msg = if base > c.offset {
                    format!(
                        "index entry offset {} at position {}: the batch there starts later, at offset {base}",
                        c.offset, c.pos
                    )
                } else {
                    format!(
                        "index entry offset {} at position {}: the batch there holds offsets {base}..={last}, and no batch from there to {upto} ends at offset {} (last offset seen {})",
                        c.offset,
                        c.pos,
                        c.offset,
                        c.chunk_last.unwrap_or(last)
                    )
                };
                out.push(
                    Finding::error(Kind::IndexOffsetMismatch, &self.file, msg)
                        .at(c.at)
                        .offset(c.offset),
                );
            }
        }
    }

    fn not_boundary(&self, c: &Pending, why: &str) -> Finding {
        Finding::error(
            Kind::IndexNotBatchBoundary,
            &self.file,
            format!("index entry mid-batch: position {} for offset {} is not the start of a batch ({why})", c.pos, c.offset),
        )
        .at(c.at)
        .offset(c.offset)
    }

    /// Feeds one valid batch; batches must come in position order.
    pub fn on_batch(&mut self, b: &BatchInfo, out: &mut Vec<Finding>) {
        self.advance(b.position, out);
        self.skip = None;
        self.match_batch(b, out);
        self.prev = Some((b.position, b.end(), b.base_offset, b.last_offset));
    }

    fn match_batch(&mut self, b: &BatchInfo, out: &mut Vec<Finding>) {
        let Some(mut c) = self.cur else { return };
        if c.resolved {
            return;
        }
        if b.position < c.pos {
            if b.end() > c.pos {
                c.resolved = true;
                let why = format!(
                    "it falls inside the batch at {} holding offsets {}..={}",
                    b.position, b.base_offset, b.last_offset
                );
                out.push(self.not_boundary(&c, &why));
            }
        } else if b.position == c.pos {
            c.boundary = Some((b.base_offset, b.last_offset));
            c.chunk_last = Some(b.last_offset);
            // Leader (>= 2.0) or pre-2.0 (first offset of the append).
            c.matched = b.last_offset == c.offset || b.base_offset == c.offset;
        } else if c.boundary.is_none() {
            c.resolved = true;
            if !c.tainted {
                let why = match self.prev {
                    Some((p, e, base, last)) if p < c.pos && e > c.pos => {
                        format!("it falls inside the batch at {p} holding offsets {base}..={last}")
                    }
                    _ => format!("the next batch starts at {}", b.position),
                };
                out.push(self.not_boundary(&c, &why));
            }
        } else {
            c.chunk_last = Some(b.last_offset);
            // Follower / cleaner: a later batch of the same append.
            if b.last_offset == c.offset {
                c.matched = true;
            }
        }
        self.cur = Some(c);
    }

    /// A corrupt byte range `[start, end)` the walk skipped. Entries pointing into it, or whose
    /// chunk overlaps it, cannot be judged: they are passed over silently.
    pub fn on_skipped(&mut self, start: u64, end: u64) {
        let hull = match self.skip {
            Some((s, e)) => (s.min(start), e.max(end)),
            None => (start, end),
        };
        self.skip = Some(hull);
        if let Some(c) = self.cur.as_mut() {
            mark_skip(c, start, end);
        }
    }

    /// Ends the walk. `log_end_of_valid_data` is the byte after the last valid batch.
    pub fn finish(mut self, log_end_of_valid_data: u64, out: &mut Vec<Finding>) {
        while let Some(c) = self.cur {
            self.finalize(c, Some(log_end_of_valid_data), out);
            self.load();
        }
    }
}

/// Marks an entry against a skipped range `[s, t)`.
fn mark_skip(c: &mut Pending, s: u64, t: u64) {
    if c.pos >= s && c.pos < t {
        c.resolved = true;
    }
    if c.pos < t && s < c.chunk_end {
        c.tainted = true;
    }
}

/// Finding for a segment whose `.index` is absent (Kafka rebuilds it on recovery).
pub fn missing(index_file: &Arc<Path>, segment_base: i64) -> Finding {
    Finding::info(
        Kind::IndexMissing,
        index_file,
        "no .index file; Kafka rebuilds it on recovery",
    )
    .offset(segment_base)
}

/// Test-only helpers shared by the index, time index, transaction index, snapshot and checkpoint
/// tests: a sequential batch walker over real `.log` bytes, batch builders and a tiny RNG.
#[cfg(test)]
pub(crate) mod test_support {
    use crate::batch::{BatchHeader, BatchInfo};
    use crate::be;

    /// Magic 2 batch info for synthetic tests.
    pub fn batch(position: u64, size: u64, base: i64, last: i64, max_ts: i64) -> BatchInfo {
        BatchInfo {
            position,
            size,
            magic: 2,
            base_offset: base,
            last_offset: last,
            max_timestamp: max_ts,
            records_count: last.wrapping_sub(base).wrapping_add(1) as u32,
            partition_leader_epoch: 0,
            producer_id: -1,
            attributes: 0,
            control_type: None,
        }
    }

    fn varint(buf: &[u8], at: &mut usize) -> Option<i64> {
        let mut v: u64 = 0;
        for shift in (0..70).step_by(7) {
            let byte = *buf.get(*at)?;
            *at += 1;
            v |= ((byte & 0x7f) as u64) << shift;
            if byte & 0x80 == 0 {
                return Some(((v >> 1) as i64) ^ -((v & 1) as i64));
            }
        }
        None
    }

    /// Control record type of an uncompressed control batch (`batch` = whole batch bytes).
    fn control_type(batch: &[u8]) -> Option<i16> {
        let mut at = 61;
        varint(batch, &mut at)?; // length
        at += 1; // attributes
        varint(batch, &mut at)?; // timestamp delta
        varint(batch, &mut at)?; // offset delta
        let key_len = varint(batch, &mut at)?;
        if key_len < 4 {
            return None;
        }
        be::i16(batch, at + 2)
    }

    /// Sequential walk the way Kafka reads a log: offset + length framing, magic at 16; stops at
    /// the first entry that does not fit. Legacy entries count as one batch each.
    pub fn walk(log: &[u8]) -> (Vec<BatchInfo>, u64) {
        let mut out = Vec::new();
        let mut pos = 0usize;
        while pos + 17 <= log.len() {
            let (Some(off), Some(size), Some(magic)) = (
                be::i64(log, pos),
                be::i32(log, pos + 8),
                be::i8(log, pos + 16),
            ) else {
                break;
            };
            if size < 14 {
                break;
            }
            let end = pos + 12 + size as usize;
            let Some(bytes) = log.get(pos..end) else {
                break;
            };
            let info = if magic >= 2 {
                let Some(h) = BatchHeader::parse(bytes) else {
                    break;
                };
                let control = h.is_control() && h.codec() == crate::batch::Codec::None;
                BatchInfo {
                    position: pos as u64,
                    size: bytes.len() as u64,
                    magic,
                    base_offset: h.base_offset,
                    last_offset: h.last_offset(),
                    max_timestamp: h.max_timestamp,
                    records_count: h.records_count.max(0) as u32,
                    partition_leader_epoch: h.partition_leader_epoch,
                    producer_id: h.producer_id,
                    attributes: h.attributes,
                    control_type: if control { control_type(bytes) } else { None },
                }
            } else {
                BatchInfo {
                    position: pos as u64,
                    size: bytes.len() as u64,
                    magic,
                    base_offset: off,
                    last_offset: off,
                    max_timestamp: if magic == 1 {
                        be::i64(bytes, 18).unwrap_or(-1)
                    } else {
                        -1
                    },
                    records_count: 1,
                    partition_leader_epoch: -1,
                    producer_id: -1,
                    attributes: be::i8(bytes, 17).unwrap_or(0) as i16,
                    control_type: None,
                }
            };
            out.push(info);
            pos = end;
        }
        (out, pos as u64)
    }

    /// xorshift64*: deterministic noise for the no-panic loops.
    pub struct Rng(pub u64);
    impl Rng {
        pub fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        /// True once in `n` draws on average.
        pub fn one_in(&mut self, n: u64) -> bool {
            let r = self.next() % n.max(1);
            r == 0
        }
        pub fn bytes(&mut self, max: usize) -> Vec<u8> {
            let n = (self.next() % (max as u64 + 1)) as usize;
            let zeroes = self.one_in(4);
            (0..n)
                .map(|_| {
                    if zeroes && self.one_in(2) {
                        0
                    } else {
                        self.next() as u8
                    }
                })
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{batch, walk, Rng};
    use super::*;
    use crate::finding::file_id;
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    fn idx(entries: &[(i32, i32)]) -> Vec<u8> {
        entries
            .iter()
            .flat_map(|(o, p)| o.to_be_bytes().into_iter().chain(p.to_be_bytes()))
            .collect()
    }

    fn file() -> Arc<Path> {
        file_id("p-0/00000000000000001000.index")
    }

    /// Runs the checker over `batches` (positions must be consistent) with base 1000.
    fn run(index: &[u8], batches: &[BatchInfo], log_len: u64, active: bool) -> Vec<Finding> {
        run_at(1000, index, batches, log_len, active)
    }

    fn run_at(
        base: i64,
        index: &[u8],
        batches: &[BatchInfo],
        log_len: u64,
        active: bool,
    ) -> Vec<Finding> {
        let mut out = Vec::new();
        let mut c = OffsetIndexCheck::new(file(), index, base, log_len, active, &mut out);
        for b in batches {
            c.on_batch(b, &mut out);
        }
        c.finish(batches.last().map_or(0, |b| b.end()), &mut out);
        out
    }

    /// Ten batches of 100 bytes, each holding 5 offsets: batch i at 100*i, offsets 1000+5i..1004+5i.
    fn ten() -> Vec<BatchInfo> {
        (0..10)
            .map(|i| batch(100 * i, 100, 1000 + 5 * i as i64, 1004 + 5 * i as i64, 0))
            .collect()
    }

    fn only(out: &[Finding], kind: Kind) -> &Finding {
        assert_eq!(out.len(), 1, "{out:#?}");
        assert_eq!(out[0].kind, kind, "{out:#?}");
        &out[0]
    }

    #[test]
    fn leader_follower_and_pre_2_0_entries_pass() {
        // Leader: last offset of the batch at the position.
        assert!(run(&idx(&[(9, 100), (24, 400), (39, 700)]), &ten(), 1000, false).is_empty());
        // Follower: last offset of a later batch of the same chunk.
        assert!(run(
            &idx(&[(19, 100), (34, 400), (49, 700)]),
            &ten(),
            1000,
            false
        )
        .is_empty());
        // Kafka < 2.0: the first offset of the append.
        assert!(run(&idx(&[(5, 100), (20, 400)]), &ten(), 1000, false).is_empty());
    }

    #[test]
    fn size_not_multiple_of_8() {
        let mut i = idx(&[(9, 100)]);
        i.extend_from_slice(&[1, 2, 3]);
        let out = run(&i, &ten(), 1000, false);
        let f = only(&out, Kind::IndexSize);
        assert_eq!(
            (f.position, f.end_position, f.severity),
            (Some(8), Some(11), Severity::Error)
        );
    }

    #[test]
    fn preallocated_padding_is_one_info() {
        let mut i = idx(&[(9, 100), (24, 400)]);
        i.resize(8 * 100, 0);
        let out = run(&i, &ten(), 1000, true);
        let f = only(&out, Kind::IndexPreallocated);
        assert_eq!((f.severity, f.position), (Severity::Info, Some(16)));
        assert!(f.message.starts_with("2 real entries"), "{}", f.message);
        // Entry 0 itself is padding when the log holds less than one index interval.
        let out = run(&[0; 80], &ten()[..1], 100, true);
        let f = only(&out, Kind::IndexPreallocated);
        assert_eq!(f.position, Some(0));
        assert!(f.message.starts_with("0 real entries"));
    }

    #[test]
    fn offsets_must_increase() {
        let out = run(&idx(&[(9, 100), (4, 400)]), &ten(), 1000, false);
        let order: Vec<_> = out
            .iter()
            .filter(|f| f.kind == Kind::IndexOffsetOrder)
            .collect();
        assert_eq!(order.len(), 1, "{out:#?}");
        assert_eq!((order[0].position, order[0].offset), (Some(8), Some(1004)));
        // Negative relative offset.
        let out = run(&idx(&[(-1, 100)]), &ten(), 1000, false);
        let f = only(&out, Kind::IndexOffsetOrder);
        assert_eq!((f.position, f.offset), (Some(0), Some(999)));
    }

    #[test]
    fn positions_must_increase() {
        let out = run(&idx(&[(9, 400), (24, 100)]), &ten(), 1000, false);
        let f = out
            .iter()
            .find(|f| f.kind == Kind::IndexPositionOrder)
            .expect("position order");
        assert_eq!((f.position, f.offset), (Some(8), Some(1024)));
        assert!(
            out.iter().all(|f| f.kind != Kind::IndexOffsetMismatch),
            "{out:#?}"
        );
    }

    #[test]
    fn position_past_end() {
        let out = run(&idx(&[(9, 100), (49, 5000)]), &ten(), 1000, false);
        let f = only(&out, Kind::IndexPositionPastEnd);
        assert_eq!(
            (f.position, f.offset, f.severity),
            (Some(8), Some(1049), Severity::Error)
        );
        // Inside the file but past the valid data (torn tail of the active segment): warning.
        let out = run(&idx(&[(9, 100), (49, 1100)]), &ten(), 1200, true);
        let f = only(&out, Kind::IndexPositionPastEnd);
        assert_eq!(
            (f.position, f.offset, f.severity),
            (Some(8), Some(1049), Severity::Warning)
        );
    }

    #[test]
    fn entry_mid_batch() {
        let out = run(&idx(&[(9, 100), (24, 450)]), &ten(), 1000, false);
        let f = only(&out, Kind::IndexNotBatchBoundary);
        assert_eq!((f.position, f.offset), (Some(8), Some(1024)));
        assert!(f.message.contains("mid-batch"));
    }

    #[test]
    fn offset_mismatch() {
        // 1012 is inside the batch at 200, not the last offset of any batch in [100, 400).
        let out = run(&idx(&[(12, 100), (24, 400)]), &ten(), 1000, false);
        let f = only(&out, Kind::IndexOffsetMismatch);
        assert_eq!((f.position, f.offset), (Some(0), Some(1012)));
        // An offset of a batch beyond the next entry's position.
        let out = run(&idx(&[(24, 100), (29, 400)]), &ten(), 1000, false);
        let f = only(&out, Kind::IndexOffsetMismatch);
        assert_eq!((f.position, f.offset), (Some(0), Some(1024)));
        // The batch at the position starts after the entry's offset.
        let out = run(&idx(&[(4, 100)]), &ten(), 1000, false);
        let f = only(&out, Kind::IndexOffsetMismatch);
        assert_eq!((f.position, f.offset), (Some(0), Some(1004)));
    }

    #[test]
    fn skipped_ranges_silence_entries() {
        // The walk lost the batches in [300, 500): an entry pointing there, or one whose chunk
        // would need a batch from there, cannot be judged.
        let mut bs = ten();
        bs.retain(|b| b.position < 300 || b.position >= 500);
        for entries in [&[(9, 100), (24, 350)][..], &[(19, 200), (34, 600)][..]] {
            let mut out = Vec::new();
            let index = idx(entries);
            let mut c = OffsetIndexCheck::new(file(), &index, 1000, 1000, false, &mut out);
            for b in &bs {
                if b.position == 500 {
                    c.on_skipped(300, 500);
                }
                c.on_batch(b, &mut out);
            }
            c.finish(1000, &mut out);
            assert!(out.is_empty(), "{out:#?}");
        }
    }

    #[test]
    fn missing_is_info() {
        let f = missing(&file(), 1000);
        assert_eq!(
            (f.kind, f.severity, f.offset),
            (Kind::IndexMissing, Severity::Info, Some(1000))
        );
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..2000 {
            let index = rng.bytes(200);
            let log_len = rng.next() % 2000;
            let mut out = Vec::new();
            let _ = entries(&index).count();
            let _ = real_len(&index, 8);
            let mut c = OffsetIndexCheck::new(
                file(),
                &index,
                rng.next() as i64,
                log_len,
                rng.one_in(2),
                &mut out,
            );
            let mut pos = 0;
            for _ in 0..rng.next() % 20 {
                if rng.one_in(5) {
                    c.on_skipped(pos, pos + rng.next() % 300);
                }
                let size = rng.next() % 300;
                let b = batch(
                    pos,
                    size,
                    rng.next() as i64,
                    rng.next() as i64,
                    rng.next() as i64,
                );
                c.on_batch(&b, &mut out);
                pos += size;
            }
            c.finish(rng.next(), &mut out);
        }
    }

    // ----- real broker-written data -----

    fn real_root() -> Option<PathBuf> {
        let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/kafka-real");
        let p = if p.is_dir() {
            p
        } else {
            PathBuf::from("/work/shared/kafka-real")
        };
        p.is_dir().then_some(p)
    }

    fn visit(dir: &Path, found: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                visit(&p, found);
            } else {
                found.push(p);
            }
        }
    }

    fn base_of(name: &str, ext: &str) -> Option<i64> {
        let stem = name.strip_suffix(ext)?;
        (stem.len() == 20).then(|| stem.parse().ok()).flatten()
    }

    /// Verifies one partition directory with every checker of this crate's index/file modules.
    fn verify_partition(
        dir: &Path,
        out: &mut Vec<Finding>,
        shapes: &mut BTreeMap<&'static str, usize>,
    ) {
        use crate::checkpoint::{check_leader_epoch, check_partition_metadata, LeaderEpochCheck};
        use crate::timeindex::TimeIndexCheck;
        use crate::txnindex::TxnIndexCheck;
        let read = |name: String| std::fs::read(dir.join(name)).ok();
        let mut bases: Vec<i64> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| base_of(&e.file_name().to_string_lossy(), ".log"))
            .collect();
        bases.sort();
        let lec = file_id(dir.join("leader-epoch-checkpoint"));
        let epochs = read("leader-epoch-checkpoint".into())
            .and_then(|b| check_leader_epoch(&lec, &b, out))
            .unwrap_or_default();
        let mut epoch_check = LeaderEpochCheck::new(lec, epochs);
        if let Some(b) = read("partition.metadata".into()) {
            check_partition_metadata(&file_id(dir.join("partition.metadata")), &b, out);
        }
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if base_of(&name, ".snapshot").is_some() {
                let bytes = std::fs::read(e.path()).unwrap_or_default();
                crate::snapshot::check_snapshot(&file_id(e.path()), &bytes, out);
            }
        }
        for (n, &base) in bases.iter().enumerate() {
            let active = n + 1 == bases.len();
            let log = read(format!("{base:020}.log")).unwrap_or_default();
            let (batches, valid_end) = walk(&log);
            let index = read(format!("{base:020}.index"));
            let tindex = read(format!("{base:020}.timeindex"));
            let txn = read(format!("{base:020}.txnindex")).unwrap_or_default();
            epoch_check.begin_segment(file_id(dir.join(format!("{base:020}.log"))));
            let mut ic = index.as_deref().map(|i| {
                OffsetIndexCheck::new(
                    file_id(dir.join(format!("{base:020}.index"))),
                    i,
                    base,
                    log.len() as u64,
                    active,
                    out,
                )
            });
            let mut tc = tindex.as_deref().map(|t| {
                TimeIndexCheck::new(
                    file_id(dir.join(format!("{base:020}.timeindex"))),
                    t,
                    base,
                    active,
                    out,
                )
            });
            let mut xc = TxnIndexCheck::new(
                file_id(dir.join(format!("{base:020}.txnindex"))),
                &txn,
                base,
                out,
            );
            for b in &batches {
                if let Some(c) = ic.as_mut() {
                    c.on_batch(b, out);
                }
                if let Some(c) = tc.as_mut() {
                    c.on_batch(b, out);
                }
                xc.on_batch(b, out);
                epoch_check.on_batch(b, out);
            }
            if let Some(c) = ic {
                c.finish(valid_end, out);
            }
            if let Some(c) = tc {
                c.finish(out);
            }
            xc.finish(out);
            if let Some(t) = &tindex {
                *shapes.entry("timeindex entries checked").or_default() +=
                    crate::timeindex::time_index_real_len(t) / crate::timeindex::ENTRY_SIZE;
            }
            // Evidence: which writer shape each real index entry has.
            if let Some(i) = &index {
                for (_, e) in entries(&i[..real_len(i, ENTRY_SIZE)]) {
                    let o = e.offset(base);
                    let at = batches.iter().position(|b| b.position == e.position as u64);
                    let shape = match at.map(|k| (k, &batches[k])) {
                        Some((_, b)) if b.last_offset == o => {
                            "leader (last offset of the batch at the position)"
                        }
                        Some((_, b)) if b.base_offset == o => {
                            "pre-2.0 (base offset of the batch at the position)"
                        }
                        Some((k, _)) if batches[k..].iter().any(|b| b.last_offset == o) => {
                            "follower (last offset of a later batch)"
                        }
                        _ => "other",
                    };
                    *shapes.entry(shape).or_default() += 1;
                }
            }
        }
        epoch_check.finish(out);
    }

    /// The checks are not vacuous on real data: one changed entry in a real leader index and a
    /// real time index is caught.
    #[test]
    fn real_index_with_planted_damage_is_caught() {
        let Some(root) = real_root() else { return };
        let dir = root.join("dipendrasaini__kafka-learnning-series/tmp/kafka-logs-1/invoice-1");
        let (Ok(log), Ok(mut index), Ok(mut tindex)) = (
            std::fs::read(dir.join("00000000000000000000.log")),
            std::fs::read(dir.join("00000000000000000000.index")),
            std::fs::read(dir.join("00000000000000000000.timeindex")),
        ) else {
            return;
        };
        let (batches, end) = walk(&log);
        let clean = run_at(0, &index, &batches, log.len() as u64, false);
        assert!(clean.is_empty(), "{clean:#?}");
        // Entry 3's offset one lower: no batch ends there.
        let rel = i32::from_be_bytes(index[24..28].try_into().unwrap()) - 1;
        index[24..28].copy_from_slice(&rel.to_be_bytes());
        let mut out = Vec::new();
        let mut c = OffsetIndexCheck::new(file(), &index, 0, log.len() as u64, false, &mut out);
        batches.iter().for_each(|b| c.on_batch(b, &mut out));
        c.finish(end, &mut out);
        let f = only(&out, Kind::IndexOffsetMismatch);
        assert_eq!((f.position, f.offset), (Some(24), Some(rel as i64)));
        // Time index entry 2's timestamp one higher.
        let ts = i64::from_be_bytes(tindex[24..32].try_into().unwrap()) + 1;
        tindex[24..32].copy_from_slice(&ts.to_be_bytes());
        let mut out = Vec::new();
        let mut c = crate::timeindex::TimeIndexCheck::new(file(), &tindex, 0, false, &mut out);
        batches.iter().for_each(|b| c.on_batch(b, &mut out));
        c.finish(&mut out);
        assert_eq!(out.len(), 1, "{out:#?}");
        assert_eq!(
            (out[0].kind, out[0].position),
            (Kind::TimeIndexTimestampMismatch, Some(24))
        );
    }

    #[test]
    fn real_kafka_data_verifies_clean() {
        let Some(root) = real_root() else {
            eprintln!("kafka-real not present; skipped");
            return;
        };
        let mut files = Vec::new();
        visit(&root, &mut files);
        let mut dirs: Vec<PathBuf> = files
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
            .filter_map(|p| p.parent().map(Path::to_path_buf))
            .collect();
        dirs.sort();
        dirs.dedup();
        assert!(
            dirs.len() > 50,
            "expected the real partitions, found {}",
            dirs.len()
        );
        let mut out = Vec::new();
        let mut shapes = BTreeMap::new();
        for d in &dirs {
            verify_partition(d, &mut out, &mut shapes);
        }
        // Log-dir checkpoint files wherever they are.
        let mut checkpoints = 0;
        for p in &files {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if crate::checkpoint::is_offset_checkpoint(&name) {
                let bytes = std::fs::read(p).unwrap_or_default();
                assert!(crate::checkpoint::check_offset_checkpoint(
                    &file_id(p.clone()),
                    &bytes,
                    &mut out
                )
                .is_some());
                checkpoints += 1;
            }
        }
        assert!(checkpoints >= 30, "{checkpoints}");
        let bad: Vec<_> = out
            .iter()
            .filter(|f| f.severity != Severity::Info)
            .collect();
        assert!(
            bad.is_empty(),
            "{} findings on real data: {bad:#?}",
            bad.len()
        );
        eprintln!(
            "{} partitions, {} info findings; index entry shapes: {shapes:?}",
            dirs.len(),
            out.len()
        );
        for f in &out {
            eprintln!("info: {} {} {}", f.kind, f.file.display(), f.message);
        }
        assert!(!shapes.contains_key("other"), "{shapes:?}");
    }
}
