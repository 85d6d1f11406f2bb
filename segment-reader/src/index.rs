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
        Some(IndexEntry { relative_offset: be::i32(buf, at)?, position: be::i32(buf, at.checked_add(4)?)? })
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
    index.chunks_exact(ENTRY_SIZE).enumerate().filter_map(|(i, chunk)| {
        IndexEntry::parse(chunk, 0).map(|e| ((i * ENTRY_SIZE) as u64, e))
    })
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
        if index.len() % ENTRY_SIZE != 0 {
            let whole = (index.len() / ENTRY_SIZE * ENTRY_SIZE) as u64;
            out.push(
                Finding::error(
                    Kind::IndexSize,
                    &file,
                    format!(
                        "index is {} bytes, not a multiple of {ENTRY_SIZE}: {} trailing bytes are ignored",
                        index.len(),
                        index.len() % ENTRY_SIZE
                    ),
                )
                .range(whole, index.len() as u64),
            );
        }
        let real = real_len(index, ENTRY_SIZE);
        report_padding(&file, index, ENTRY_SIZE, real, is_active, out);
        let index = index.get(..real).unwrap_or(&[]);

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
                        format!("index entry position {} is outside the {log_len}-byte log", e.position),
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
        let chunk_end = self.entry(j).filter(|_| j < n).map_or(u64::MAX, |e| e.position as u64);
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
                    let sev = if self.is_active { Severity::Warning } else { Severity::Error };
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
                out.push(Finding::error(Kind::IndexOffsetMismatch, &self.file, msg).at(c.at).offset(c.offset));
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
                let why = format!("it falls inside the batch at {} holding offsets {}..={}", b.position, b.base_offset, b.last_offset);
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
    Finding::info(Kind::IndexMissing, index_file, "no .index file; Kafka rebuilds it on recovery").offset(segment_base)
}
