//! Salvage: copy every valid batch of a damaged partition into a new directory.
//!
//! Kafka's own recovery truncates a segment at its first bad batch and deletes everything after
//! it. Salvage keeps everything the resynchronising walk can prove intact (whole batches whose CRC
//! matches), drops only the corrupt byte ranges, and rebuilds `.index`, `.timeindex` and
//! `.txnindex` the way Kafka's segment recovery does, so a broker can load the result as is.
//! The input is only ever opened for reading.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::batch::BatchInfo;
use crate::finding::{file_id, Finding};
use crate::partition::{self, PartitionDir};
use crate::segment::SegmentFiles;
use crate::source::Source;
use crate::walk::{self, Scratch, Visitor, WalkConfig};

/// Kafka's default `index.interval.bytes`.
pub const INDEX_INTERVAL_BYTES: u64 = 4096;

/// A dropped byte range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    pub file: PathBuf,
    pub position: u64,
    pub end_position: u64,
    pub first_offset: Option<i64>,
    pub last_offset: Option<i64>,
    pub reason: String,
}

#[derive(Debug, Clone, Default)]
pub struct SalvageReport {
    pub segments: u64,
    pub batches_kept: u64,
    pub records_kept: u64,
    pub bytes_kept: u64,
    pub bytes_dropped: u64,
    pub dropped: Vec<Dropped>,
    /// Every finding of the walk (what was wrong where), for the report.
    pub findings: Vec<Finding>,
    pub written: Vec<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum SalvageError {
    #[error("output directory {0} exists and is not empty")]
    OutputNotEmpty(PathBuf),
    #[error("output directory {out} is inside the input {input}")]
    OutputInsideInput { out: PathBuf, input: PathBuf },
    #[error("{0} is not a partition directory")]
    NotAPartition(PathBuf),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> SalvageError + '_ {
    move |source| SalvageError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Rebuilds offset and time index entries batch by batch, as `LogSegment.recover` does: an entry
/// once more than `index.interval.bytes` were appended since the last one (so never for the first
/// batch), a time entry only when the largest timestamp grew, and a final time entry on close.
#[derive(Debug, Default)]
pub struct IndexBuilder {
    base: i64,
    bytes_since: u64,
    index: Vec<u8>,
    timeindex: Vec<u8>,
    max_ts: Option<(i64, i64)>,
    last_time_entry: Option<i64>,
}

impl IndexBuilder {
    pub fn new(base: i64) -> Self {
        IndexBuilder {
            base,
            ..Default::default()
        }
    }

    /// `position` is the batch's position in the *new* log.
    pub fn on_batch(&mut self, position: u64, b: &BatchInfo) {
        if b.max_timestamp > self.max_ts.map_or(-1, |m| m.0) {
            self.max_ts = Some((b.max_timestamp, b.last_offset));
        }
        if self.bytes_since > INDEX_INTERVAL_BYTES {
            self.index
                .extend_from_slice(&((b.last_offset - self.base) as i32).to_be_bytes());
            self.index
                .extend_from_slice(&(position as i32).to_be_bytes());
            self.maybe_time_entry();
            self.bytes_since = 0;
        }
        self.bytes_since += b.size;
    }

    fn maybe_time_entry(&mut self) {
        if let Some((ts, off)) = self.max_ts {
            if ts > self.last_time_entry.unwrap_or(-1) {
                self.timeindex.extend_from_slice(&ts.to_be_bytes());
                self.timeindex
                    .extend_from_slice(&((off - self.base) as i32).to_be_bytes());
                self.last_time_entry = Some(ts);
            }
        }
    }

    /// Index and time index bytes, with the final time entry Kafka appends on close.
    pub fn finish(mut self) -> (Vec<u8>, Vec<u8>) {
        self.maybe_time_entry();
        (self.index, self.timeindex)
    }
}

/// Rebuilds `.txnindex` entries from the markers: an ABORT marker closes the producer's open
/// transaction, whose first offset is its first transactional batch since its last marker. The
/// last stable offset is the first offset of the earliest other open transaction, or the
/// marker's offset + 1 when none is open (as `ProducerStateManager` computes it).
#[derive(Debug, Default)]
pub struct TxnTracker {
    open: BTreeMap<i64, i64>,
}

impl TxnTracker {
    /// Returns a 34-byte `.txnindex` entry when `b` is an ABORT marker.
    pub fn on_batch(&mut self, b: &BatchInfo) -> Option<[u8; 34]> {
        let transactional = b.magic >= 2 && b.attributes & 0x10 != 0;
        if !transactional {
            return None;
        }
        if !b.is_control() {
            self.open.entry(b.producer_id).or_insert(b.base_offset);
            return None;
        }
        let first = self.open.remove(&b.producer_id);
        if b.control_type != Some(0) {
            return None;
        }
        let first = first.unwrap_or(b.base_offset);
        let lso = self
            .open
            .values()
            .min()
            .copied()
            .unwrap_or(b.base_offset + 1);
        let mut e = [0u8; 34];
        e[2..10].copy_from_slice(&b.producer_id.to_be_bytes());
        e[10..18].copy_from_slice(&first.to_be_bytes());
        e[18..26].copy_from_slice(&b.base_offset.to_be_bytes());
        e[26..34].copy_from_slice(&lso.to_be_bytes());
        Some(e)
    }
}

struct Writer<'a> {
    log: BufWriter<File>,
    position: u64,
    index: IndexBuilder,
    txn: &'a mut TxnTracker,
    txnindex: Vec<u8>,
    batches: u64,
    records: u64,
}

impl Visitor for Writer<'_> {
    fn on_batch(&mut self, info: &BatchInfo, bytes: &[u8], _out: &mut Vec<Finding>) {
        if self.log.write_all(bytes).is_err() {
            return; // surfaced by the flush at the end
        }
        self.index.on_batch(self.position, info);
        if let Some(e) = self.txn.on_batch(info) {
            self.txnindex.extend_from_slice(&e);
        }
        self.position += bytes.len() as u64;
        self.batches += 1;
        self.records += info.records_count as u64;
    }
}

fn is_within(inner: &Path, outer: &Path) -> bool {
    match (inner.canonicalize(), outer.canonicalize()) {
        (Ok(i), Ok(o)) => i.starts_with(o),
        _ => false,
    }
}

/// Salvages `input` (a partition directory) into `out`, which must not exist or be empty.
pub fn salvage_partition(input: &Path, out: &Path) -> Result<SalvageReport, SalvageError> {
    if !partition::is_partition_dir(input) {
        return Err(SalvageError::NotAPartition(input.to_path_buf()));
    }
    if out.exists() {
        let empty = fs::read_dir(out).map_err(io_at(out))?.next().is_none();
        if !empty {
            return Err(SalvageError::OutputNotEmpty(out.to_path_buf()));
        }
    }
    fs::create_dir_all(out).map_err(io_at(out))?;
    if is_within(out, input) {
        let _ = fs::remove_dir(out);
        return Err(SalvageError::OutputInsideInput {
            out: out.to_path_buf(),
            input: input.to_path_buf(),
        });
    }
    let part: PartitionDir = partition::scan_partition(input).map_err(io_at(input))?;
    let mut report = SalvageReport::default();
    let mut txn = TxnTracker::default();
    for seg in &part.segments {
        salvage_segment(seg, out, &mut txn, &mut report)?;
    }
    for name in ["leader-epoch-checkpoint", "partition.metadata"] {
        let src = input.join(name);
        if src.is_file() {
            let dst = out.join(name);
            fs::copy(&src, &dst).map_err(io_at(&src))?;
            report.written.push(dst);
        }
    }
    // Producer snapshots are copied only when they verify: Kafka rebuilds producer state from
    // the log when a snapshot is missing, but trusts one that is present.
    for snap in &part.producer_snapshots {
        let bytes = fs::read(snap).map_err(io_at(snap))?;
        let mut f = Vec::new();
        crate::snapshot::check_snapshot(&file_id(snap), &bytes, &mut f);
        if f.iter().all(|f| f.severity < crate::Severity::Error) {
            if let Some(name) = snap.file_name() {
                let dst = out.join(name);
                fs::write(&dst, &bytes).map_err(io_at(&dst))?;
                report.written.push(dst);
            }
        }
    }
    Ok(report)
}

fn salvage_segment(
    seg: &SegmentFiles,
    out: &Path,
    txn: &mut TxnTracker,
    report: &mut SalvageReport,
) -> Result<(), SalvageError> {
    let name = format!("{:020}", seg.base_offset);
    let log_path = out.join(format!("{name}.log"));
    let file: Arc<Path> = file_id(&seg.log);
    let mut src = if seg.active {
        Source::stream(&seg.log)
    } else {
        Source::map(&seg.log)
    }
    .map_err(io_at(&seg.log))?;
    let log = File::create(&log_path).map_err(io_at(&log_path))?;
    let mut w = Writer {
        log: BufWriter::with_capacity(1 << 20, log),
        position: 0,
        index: IndexBuilder::new(seg.base_offset),
        txn,
        txnindex: Vec::new(),
        batches: 0,
        records: 0,
    };
    let cfg = WalkConfig {
        tail_may_tear: seg.active,
        stop_at: None,
        expected_first_offset: Some(seg.base_offset),
    };
    let mut findings = Vec::new();
    let st = walk::walk(
        &mut src,
        &file,
        0,
        cfg,
        &mut w,
        &mut Scratch::default(),
        &mut findings,
    )
    .map_err(io_at(&seg.log))?;
    w.log.flush().map_err(io_at(&log_path))?;
    let Writer {
        index,
        txnindex,
        batches,
        records,
        position,
        ..
    } = w;
    let (idx, tidx) = index.finish();
    for (ext, bytes) in [("index", idx), ("timeindex", tidx)] {
        let p = out.join(format!("{name}.{ext}"));
        fs::write(&p, bytes).map_err(io_at(&p))?;
        report.written.push(p);
    }
    if !txnindex.is_empty() {
        let p = out.join(format!("{name}.txnindex"));
        fs::write(&p, txnindex).map_err(io_at(&p))?;
        report.written.push(p);
    }
    report.written.push(log_path);
    for f in &findings {
        if let (Some(start), Some(end)) = (f.position, f.end_position) {
            if f.severity >= crate::Severity::Warning || f.kind == crate::Kind::PreallocatedTail {
                report.bytes_dropped += end - start;
                report.dropped.push(Dropped {
                    file: seg.log.clone(),
                    position: start,
                    end_position: end,
                    first_offset: f.offset,
                    last_offset: f.last_offset,
                    reason: format!("{}: {}", f.kind, f.message),
                });
            }
        }
    }
    report.findings.extend(findings);
    report.segments += 1;
    report.batches_kept += batches;
    report.records_kept += records;
    report.bytes_kept += position;
    debug_assert_eq!(st.batches, batches);
    Ok(())
}
