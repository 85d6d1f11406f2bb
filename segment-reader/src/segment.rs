//! One segment: its `.log` walked once, with the offset index, time index, transaction index,
//! leader-epoch and deep checks riding along as visitors of that single pass.
//!
//! A large mapped segment is also split into chunks verified in parallel: each chunk after the
//! first starts at the first position where a batch with a valid CRC begins (the same search the
//! walk uses to resynchronise), and the chunks must meet exactly where the previous chunk's walk
//! ended; if they do not (a false sync point, vanishingly rare) the segment is walked again
//! sequentially. The order-dependent checks (indexes, offsets, epochs) then run over a
//! header-only pass, which touches one cache line per batch.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;

use crate::batch::{BatchInfo, Codec};
use crate::checkpoint::LeaderEpochCheck;
use crate::deep::DeepChecker;
use crate::finding::{file_id, Finding, Kind};
use crate::index::OffsetIndexCheck;
use crate::source::{self, Source};
use crate::timeindex::TimeIndexCheck;
use crate::txnindex::TxnIndexCheck;
use crate::walk::{self, Scratch, Visitor, WalkConfig, WalkStats};

/// What a segment is made of on disk.
#[derive(Debug, Clone)]
pub struct SegmentFiles {
    /// The offset in the file name.
    pub base_offset: i64,
    pub log: PathBuf,
    pub index: Option<PathBuf>,
    pub timeindex: Option<PathBuf>,
    pub txnindex: Option<PathBuf>,
    /// The partition's last segment, possibly still written by a live broker.
    pub active: bool,
    /// A KRaft snapshot (`<offset>-<epoch>.checkpoint`): record batches, no indexes.
    pub kraft_snapshot: bool,
}

/// A partition's `leader-epoch-checkpoint`: its file name and its `(epoch, start offset)` entries.
pub type EpochsRef<'a> = (&'a Arc<Path>, &'a [(i32, i64)]);

/// Settings that change how much is checked and how work is split.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Decompress and decode every record.
    pub deep: bool,
    /// Mapped segments larger than this are verified in parallel chunks.
    pub split_bytes: u64,
    /// Chunk size for splitting.
    pub chunk_bytes: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            deep: false,
            split_bytes: 64 << 20,
            chunk_bytes: 32 << 20,
        }
    }
}

/// Codec slots for per-codec byte counts (none, gzip, snappy, lz4, zstd).
pub const CODECS: [Codec; 5] = [
    Codec::None,
    Codec::Gzip,
    Codec::Snappy,
    Codec::Lz4,
    Codec::Zstd,
];

fn codec_slot(attributes: i16) -> usize {
    match Codec::from_attributes(attributes) {
        Codec::Gzip => 1,
        Codec::Snappy => 2,
        Codec::Lz4 => 3,
        Codec::Zstd => 4,
        _ => 0,
    }
}

/// The facts partition-level checks need about a verified segment.
#[derive(Debug, Clone, Default)]
pub struct SegmentReport {
    pub files: u64,
    pub log_bytes: u64,
    pub stats: WalkStats,
    pub first_epoch: Option<i32>,
    pub last_epoch: Option<i32>,
    /// The batches show the log cleaner's hand: delete-horizon flags, removed records, gaps.
    pub cleaned: bool,
    /// Stored bytes per codec slot (see [`CODECS`]).
    pub codec_bytes: [u64; 5],
    /// Decompressed record bytes per codec slot (with `deep`).
    pub decoded_bytes: [u64; 5],
    pub findings: Vec<Finding>,
    /// An I/O error that stopped the segment (exit code 2 territory).
    pub io_error: Option<String>,
    /// Parallel chunks the segment was verified in (0: one sequential walk).
    pub chunks: u64,
}

/// The order-dependent checks of one segment, fed batch by batch.
struct Checks<'a> {
    file: Arc<Path>,
    index: Option<OffsetIndexCheck<'a>>,
    timeindex: Option<TimeIndexCheck<'a>>,
    txnindex: Option<TxnIndexCheck<'a>>,
    epochs: Option<LeaderEpochCheck>,
    prev_last: Option<i64>,
    gaps: u64,
    gap_offsets: u64,
    first_gap: Option<(u64, i64)>,
    report: SegmentReport,
}

impl Visitor for Checks<'_> {
    fn on_batch(&mut self, b: &BatchInfo, _bytes: &[u8], out: &mut Vec<Finding>) {
        if let Some(prev) = self.prev_last {
            if b.base_offset <= prev {
                out.push(
                    Finding::error(
                        Kind::OffsetRegression,
                        &self.file,
                        format!(
                            "batch starts at offset {} but the previous batch ended at {prev}",
                            b.base_offset
                        ),
                    )
                    .at(b.position)
                    .offset(b.base_offset),
                );
            } else if b.base_offset > prev + 1 {
                self.gaps += 1;
                self.gap_offsets += (b.base_offset - prev - 1) as u64;
                self.first_gap.get_or_insert((b.position, prev + 1));
            }
        }
        self.prev_last = Some(b.last_offset.max(self.prev_last.unwrap_or(i64::MIN)));
        if b.magic >= 2 {
            let span = (b.last_offset - b.base_offset + 1) as u64;
            if b.has_delete_horizon() || (b.records_count as u64) < span {
                self.report.cleaned = true;
            }
            self.report
                .first_epoch
                .get_or_insert(b.partition_leader_epoch);
            self.report.last_epoch = Some(b.partition_leader_epoch);
        }
        if let Some(n) = self.report.codec_bytes.get_mut(codec_slot(b.attributes)) {
            *n += b.size;
        }
        if let Some(c) = &mut self.index {
            c.on_batch(b, out);
        }
        if let Some(c) = &mut self.timeindex {
            c.on_batch(b, out);
        }
        if let Some(c) = &mut self.txnindex {
            c.on_batch(b, out);
        }
        if let Some(c) = &mut self.epochs {
            c.on_batch(b, out);
        }
    }

    fn on_skipped(&mut self, start: u64, end: u64) {
        if let Some(c) = &mut self.index {
            c.on_skipped(start, end);
        }
        if let Some(c) = &mut self.timeindex {
            c.on_skipped(start, end);
        }
        if let Some(c) = &mut self.txnindex {
            c.on_skipped(start, end);
        }
        // Offsets across a corrupt range are already reported as lost.
        self.prev_last = None;
    }
}

/// Deep decoding as a visitor (it needs only the batch bytes, so it also runs in parallel chunks).
struct Deep {
    file: Arc<Path>,
    checker: DeepChecker,
    decoded: [u64; 5],
}

impl Visitor for Deep {
    fn on_batch(&mut self, b: &BatchInfo, bytes: &[u8], out: &mut Vec<Finding>) {
        let stats = if b.magic >= 2 {
            match crate::batch::BatchHeader::parse(bytes) {
                Some(h) => self
                    .checker
                    .check_v2(&self.file, b.position, &h, bytes, out),
                None => return,
            }
        } else {
            match crate::batch::LegacyMessage::parse(bytes) {
                Ok(m) => self.checker.check_legacy(&self.file, b.position, &m, out),
                Err(_) => return,
            }
        };
        if let Some(n) = self.decoded.get_mut(codec_slot(b.attributes)) {
            *n += stats.uncompressed_bytes;
        }
    }
}

/// Both visitors in one pass.
struct Both<'a, 'b> {
    checks: &'b mut Checks<'a>,
    deep: Option<&'b mut Deep>,
}

impl Visitor for Both<'_, '_> {
    fn on_batch(&mut self, b: &BatchInfo, bytes: &[u8], out: &mut Vec<Finding>) {
        self.checks.on_batch(b, bytes, out);
        if let Some(d) = &mut self.deep {
            d.on_batch(b, bytes, out);
        }
    }
    fn on_skipped(&mut self, start: u64, end: u64) {
        self.checks.on_skipped(start, end);
    }
}

/// Index bytes kept alive for the checkers that borrow them.
enum Held {
    Mapped(Source<'static>),
    Owned(Vec<u8>),
}

impl Held {
    fn bytes(&self) -> &[u8] {
        match self {
            Held::Mapped(s) => s.as_slice().unwrap_or(&[]),
            Held::Owned(v) => v,
        }
    }
}

fn hold(path: &Path, active: bool) -> io::Result<Held> {
    // Active-segment indexes are trimmed by the broker on roll: copy them rather than map them.
    if active {
        source::read_small(path).map(Held::Owned)
    } else {
        Source::map(path).map(Held::Mapped)
    }
}

/// Verifies one segment. `epochs` is the partition's leader-epoch-checkpoint, when it parsed.
pub fn verify_segment(
    seg: &SegmentFiles,
    epochs: Option<EpochsRef<'_>>,
    opts: Options,
    progress: &(dyn Fn(u64) + Sync),
) -> SegmentReport {
    let file = file_id(&seg.log);
    match verify_inner(seg, &file, epochs, opts, progress) {
        Ok(r) => r,
        Err(e) => SegmentReport {
            files: 1,
            findings: vec![Finding::unreadable(&file, &e)],
            io_error: Some(format!("{}: {e}", seg.log.display())),
            ..SegmentReport::default()
        },
    }
}

fn open_aux(
    path: &Option<PathBuf>,
    active: bool,
    out: &mut Vec<Finding>,
    files: &mut u64,
) -> Option<(Arc<Path>, Held)> {
    let p = path.as_ref()?;
    let id = file_id(p);
    *files += 1;
    match hold(p, active) {
        Ok(h) => Some((id, h)),
        Err(e) => {
            out.push(Finding::unreadable(&id, &e));
            None
        }
    }
}

fn verify_inner(
    seg: &SegmentFiles,
    file: &Arc<Path>,
    epochs: Option<EpochsRef<'_>>,
    opts: Options,
    progress: &(dyn Fn(u64) + Sync),
) -> io::Result<SegmentReport> {
    let mut src = if seg.active {
        Source::stream(&seg.log)?
    } else {
        Source::map(&seg.log)?
    };
    let log_len = src.len();
    let mut out = Vec::new();
    let mut files = 1;
    let index_src = open_aux(&seg.index, seg.active, &mut out, &mut files);
    let time_src = open_aux(&seg.timeindex, seg.active, &mut out, &mut files);
    let txn_src = open_aux(&seg.txnindex, seg.active, &mut out, &mut files);
    if !seg.kraft_snapshot && log_len > 0 {
        if seg.index.is_none() {
            out.push(Finding::info(
                Kind::IndexMissing,
                file,
                "no .index beside this segment (Kafka rebuilds it)",
            ));
        }
        if seg.timeindex.is_none() {
            out.push(Finding::info(
                Kind::TimeIndexMissing,
                file,
                "no .timeindex beside this segment",
            ));
        }
    }
    let base = seg.base_offset;
    let mut checks = Checks {
        file: Arc::clone(file),
        index: index_src.as_ref().map(|(id, h)| {
            OffsetIndexCheck::new(
                Arc::clone(id),
                h.bytes(),
                base,
                log_len,
                seg.active,
                &mut out,
            )
        }),
        timeindex: time_src.as_ref().map(|(id, h)| {
            TimeIndexCheck::new(Arc::clone(id), h.bytes(), base, seg.active, &mut out)
        }),
        txnindex: if seg.kraft_snapshot {
            None
        } else {
            let (id, bytes) = match &txn_src {
                Some((id, h)) => (Arc::clone(id), h.bytes()),
                None => (file_id(seg.log.with_extension("txnindex")), &[][..]),
            };
            Some(TxnIndexCheck::new(id, bytes, base, &mut out))
        },
        epochs: epochs.filter(|_| !seg.kraft_snapshot).map(|(id, e)| {
            let mut c = LeaderEpochCheck::new(Arc::clone(id), e.to_vec());
            c.begin_segment(Arc::clone(file));
            c
        }),
        prev_last: None,
        gaps: 0,
        gap_offsets: 0,
        first_gap: None,
        report: SegmentReport::default(),
    };
    let mut deep = opts.deep.then(|| Deep {
        file: Arc::clone(file),
        checker: DeepChecker::new(),
        decoded: [0; 5],
    });
    let cfg = WalkConfig {
        tail_may_tear: seg.active,
        stop_at: None,
        expected_first_offset: (!seg.kraft_snapshot).then_some(base),
    };
    let mut scratch = Scratch::default();
    let parallel = match src.as_slice() {
        Some(_) if log_len > opts.split_bytes && rayon::current_num_threads() > 1 => split_walk(
            &mut src,
            file,
            cfg,
            opts,
            &mut checks,
            deep.as_mut(),
            &mut out,
            progress,
        )?,
        _ => None,
    };
    let chunks = parallel.map_or(0, |(_, n)| n);
    let stats = match parallel {
        Some((st, _)) => st,
        None => {
            let mut both = Both {
                checks: &mut checks,
                deep: deep.as_mut(),
            };
            let st = walk::walk(&mut src, file, 0, cfg, &mut both, &mut scratch, &mut out)?;
            progress(log_len);
            st
        }
    };
    let valid_end = stats.valid_end;
    let Checks {
        index,
        timeindex,
        txnindex,
        epochs,
        gaps,
        gap_offsets,
        first_gap,
        mut report,
        ..
    } = checks;
    if let Some(c) = index {
        c.finish(valid_end, &mut out);
    }
    if let Some(c) = timeindex {
        c.finish(&mut out);
    }
    if let Some(c) = txnindex {
        c.finish(&mut out);
    }
    if let Some(c) = epochs {
        c.finish(&mut out);
    }
    if gaps > 0 {
        report.cleaned = true;
        let (pos, first) = first_gap.unwrap_or((0, 0));
        out.push(
            Finding::info(
                Kind::OffsetGap,
                file,
                format!("{gaps} offset gaps inside the segment ({gap_offsets} offsets absent), first before position {pos}"),
            )
            .at(pos)
            .offset(first),
        );
    }
    if stats.batches == 0 && log_len == 0 && !seg.active {
        out.push(Finding::info(
            Kind::EmptySegment,
            file,
            "segment holds no batches",
        ));
    }
    if let Some(d) = deep {
        report.decoded_bytes = d.decoded;
    }
    report.files = files;
    report.chunks = chunks;
    report.log_bytes = log_len;
    report.stats = stats;
    // A legacy wrapper that does not decode is reported by the walk (which must decode it to
    // count its messages) and again by the deep check: keep one finding per kind and position.
    out.sort_by(|a, b| a.file.cmp(&b.file).then(a.position.cmp(&b.position)));
    out.dedup_by(|a, b| a.file == b.file && a.position == b.position && a.kind == b.kind);
    report.findings = out;
    Ok(report)
}

/// Parallel verification of a large mapped segment. `None` when the chunks did not line up and
/// the caller must walk sequentially.
#[allow(clippy::too_many_arguments)]
fn split_walk(
    src: &mut Source<'_>,
    file: &Arc<Path>,
    cfg: WalkConfig,
    opts: Options,
    checks: &mut Checks<'_>,
    deep: Option<&mut Deep>,
    out: &mut Vec<Finding>,
    progress: &(dyn Fn(u64) + Sync),
) -> io::Result<Option<(WalkStats, u64)>> {
    let Some(slice) = src.as_slice() else {
        return Ok(None);
    };
    let len = slice.len() as u64;
    let chunk = opts.chunk_bytes.max(1 << 20);
    let starts: Vec<u64> = (1..len.div_ceil(chunk)).map(|i| i * chunk).collect();
    // Phase 1: sync points, in parallel.
    let syncs: Vec<Option<u64>> = starts
        .par_iter()
        .map(|&s| walk::resync(&mut Source::Borrowed(slice), s, (s + chunk).min(len)))
        .collect::<io::Result<_>>()?;
    let mut bounds = vec![0u64];
    for s in syncs.into_iter().flatten() {
        if s > *bounds.last().unwrap_or(&0) {
            bounds.push(s);
        }
    }
    bounds.push(len);
    // Phase 2: CRC (and deep) per chunk, in parallel.
    let deep_on = deep.is_some();
    let results: Vec<io::Result<ChunkResult>> = bounds
        .par_windows(2)
        .enumerate()
        .map(|(i, w)| {
            let &[start, stop] = w else {
                return Ok(ChunkResult::default());
            };
            let mut v = ChunkVisitor {
                skips: Vec::new(),
                deep: deep_on.then(|| Deep {
                    file: Arc::clone(file),
                    checker: DeepChecker::new(),
                    decoded: [0; 5],
                }),
            };
            let c = WalkConfig {
                stop_at: (stop < len).then_some(stop),
                tail_may_tear: cfg.tail_may_tear,
                expected_first_offset: if i == 0 {
                    cfg.expected_first_offset
                } else {
                    None
                },
            };
            let mut o = Vec::new();
            let mut scratch = Scratch::default();
            let st = walk::walk(
                &mut Source::Borrowed(slice),
                file,
                start,
                c,
                &mut v,
                &mut scratch,
                &mut o,
            )?;
            progress(stop - start);
            Ok(ChunkResult {
                stats: st,
                findings: o,
                skips: v.skips,
                decoded: v.deep.map_or([0; 5], |d| d.decoded),
            })
        })
        .collect();
    let mut total = WalkStats::default();
    let mut skips = Vec::new();
    let mut decoded = [0u64; 5];
    let mut chunk_out = Vec::new();
    for (i, r) in results.into_iter().enumerate() {
        let ChunkResult {
            stats: st,
            findings: o,
            skips: sk,
            decoded: dec,
        } = r?;
        let expected_end = bounds.get(i + 1).copied().unwrap_or(len);
        if st.end != expected_end {
            return Ok(None);
        }
        total.batches += st.batches;
        total.records += st.records;
        total.valid_bytes += st.valid_bytes;
        total.corrupt_ranges += st.corrupt_ranges;
        total.end = st.end;
        if st.batches > 0 {
            total.valid_end = st.valid_end;
            total.first_offset = total.first_offset.or(st.first_offset);
            total.last_offset = st.last_offset.or(total.last_offset);
        }
        chunk_out.extend(o);
        skips.extend(sk);
        for (d, x) in decoded.iter_mut().zip(dec) {
            *d += x;
        }
    }
    out.extend(chunk_out);
    if let Some(d) = deep {
        d.decoded = decoded;
    }
    // Phase 3: order-dependent checks over headers only.
    header_pass(slice, file, total.valid_end, &skips, checks, out);
    Ok(Some((total, bounds.len() as u64 - 1)))
}

/// Feeds the order-dependent checks from batch headers alone, jumping over known corrupt ranges.
fn header_pass(
    slice: &[u8],
    file: &Arc<Path>,
    valid_end: u64,
    skips: &[(u64, u64)],
    checks: &mut Checks<'_>,
    out: &mut Vec<Finding>,
) {
    let mut pos = 0u64;
    let mut skip = skips.iter().peekable();
    let mut scratch = Scratch::default();
    let mut sink = Vec::new();
    while pos < valid_end {
        if let Some(&&(s, e)) = skip.peek() {
            if s <= pos {
                checks.on_skipped(s, e);
                pos = pos.max(e);
                skip.next();
                continue;
            }
        }
        let len = crate::be::i32(slice, pos as usize + 8).unwrap_or(-1);
        if len < 0 {
            break;
        }
        let total = 12 + len as u64;
        let Some(bytes) = slice.get(pos as usize..(pos + total) as usize) else {
            break;
        };
        let info = walk::summarize(file, pos, bytes, &mut scratch, &mut sink);
        checks.on_batch(&info, bytes, out);
        pos += total;
    }
}

/// What one parallel chunk found.
#[derive(Default)]
struct ChunkResult {
    stats: WalkStats,
    findings: Vec<Finding>,
    skips: Vec<(u64, u64)>,
    decoded: [u64; 5],
}

/// Collects skipped ranges (and runs deep checks) inside one parallel chunk.
struct ChunkVisitor {
    skips: Vec<(u64, u64)>,
    deep: Option<Deep>,
}

impl Visitor for ChunkVisitor {
    fn on_batch(&mut self, b: &BatchInfo, bytes: &[u8], out: &mut Vec<Finding>) {
        if let Some(d) = &mut self.deep {
            d.on_batch(b, bytes, out);
        }
    }
    fn on_skipped(&mut self, start: u64, end: u64) {
        self.skips.push((start, end));
    }
}
