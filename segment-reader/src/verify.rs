//! `verify`: from the paths a user names to findings and a summary.
//!
//! A path may be a segment file, a partition directory, or a log dir (every partition in it,
//! found up to a few directory levels down). Segments of every partition are verified in one
//! parallel pass (rayon's current pool: the caller sets its size); partition-level checks follow.
//! One unreadable file is reported and the run goes on.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use rayon::prelude::*;

use crate::checkpoint;
use crate::finding::{file_id, Finding, Kind, Severity};
use crate::partition::{self, PartitionDir, LOG_DIR_FILES};
use crate::segment::{self, SegmentFiles, SegmentReport};
use crate::snapshot;

/// What to check, and how.
#[derive(Debug, Clone, Copy, Default)]
pub struct VerifyOptions {
    pub segment: segment::Options,
}

/// Totals for the summary line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub files: u64,
    pub segments: u64,
    pub batches: u64,
    pub records: u64,
    pub bytes: u64,
    pub errors: u64,
    pub warnings: u64,
    pub infos: u64,
    /// Files that could not be read (the CLI exits 2).
    pub io_errors: u64,
    /// Stored and decoded bytes per codec (none, gzip, snappy, lz4, zstd).
    pub codec_bytes: [u64; 5],
    pub decoded_bytes: [u64; 5],
    pub elapsed_ms: u64,
}

#[derive(Debug, Clone, Default)]
pub struct Report {
    pub findings: Vec<Finding>,
    pub summary: Summary,
}

/// The work a set of paths amounts to.
#[derive(Debug, Default)]
pub struct Plan {
    pub partitions: Vec<PartitionDir>,
    /// Log-dir root files (offset checkpoints; `bootstrap.checkpoint` goes with segments).
    pub root_files: Vec<PathBuf>,
    /// Standalone producer snapshots named on the command line.
    pub snapshots: Vec<PathBuf>,
    /// Standalone segments (and KRaft snapshot files) named on the command line.
    pub lone_segments: Vec<SegmentFiles>,
    /// Paths that could not be listed.
    pub problems: Vec<Finding>,
}

impl Plan {
    pub fn total_bytes(&self) -> u64 {
        let size = |p: &Path| fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        self.partitions
            .iter()
            .flat_map(|p| p.segments.iter().chain(&p.kraft_snapshots))
            .chain(&self.lone_segments)
            .map(|s| size(&s.log))
            .sum()
    }
}

const MAX_DEPTH: usize = 4;

/// A parsed `leader-epoch-checkpoint` and its file name.
type Epochs = (Arc<Path>, Vec<(i32, i64)>);

/// Classifies the user's paths.
pub fn plan(paths: &[PathBuf]) -> Plan {
    let mut plan = Plan::default();
    for p in paths {
        add_path(&mut plan, p, 0);
    }
    plan
}

fn lone_segment(path: &Path, kraft: bool) -> SegmentFiles {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = name.split(['.', '-']).next().unwrap_or("");
    let base = partition::parse_offset_name(stem).unwrap_or(0);
    let sibling = |ext: &str| Some(path.with_extension(ext)).filter(|p| p.is_file());
    SegmentFiles {
        base_offset: base,
        log: path.to_path_buf(),
        index: if kraft { None } else { sibling("index") },
        timeindex: if kraft { None } else { sibling("timeindex") },
        txnindex: if kraft { None } else { sibling("txnindex") },
        // A lone file may be a live broker's active segment: read it safely, and treat a torn
        // last batch as Kafka would.
        active: !kraft,
        kraft_snapshot: kraft,
    }
}

fn add_path(plan: &mut Plan, p: &Path, depth: usize) {
    let id = file_id(p);
    let meta = match fs::metadata(p) {
        Ok(m) => m,
        Err(e) => {
            plan.problems.push(Finding::unreadable(&id, &e));
            return;
        }
    };
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if meta.is_file() {
        match name.rsplit_once('.').map(|(_, x)| x) {
            Some("log") => plan.lone_segments.push(lone_segment(p, false)),
            Some("index" | "timeindex" | "txnindex") => {
                let log = p.with_extension("log");
                if !plan.lone_segments.iter().any(|s| s.log == log) {
                    plan.lone_segments.push(lone_segment(&log, false));
                }
            }
            Some("snapshot") => plan.snapshots.push(p.to_path_buf()),
            Some("checkpoint") => plan.lone_segments.push(lone_segment(p, true)),
            _ if LOG_DIR_FILES.contains(&name.as_str()) || name == "leader-epoch-checkpoint" => {
                plan.root_files.push(p.to_path_buf())
            }
            _ => plan.problems.push(Finding::info(
                Kind::UnknownFile,
                &id,
                "not a Kafka log file; skipped",
            )),
        }
        return;
    }
    if partition::is_partition_dir(p) {
        match partition::scan_partition(p) {
            Ok(part) => plan.partitions.push(part),
            Err(e) => plan.problems.push(Finding::error(
                Kind::Unreadable,
                &id,
                format!("cannot list: {e}"),
            )),
        }
        return;
    }
    let mut entries = match fs::read_dir(p) {
        Ok(rd) => rd.flatten().map(|e| e.path()).collect::<Vec<_>>(),
        Err(e) => {
            plan.problems.push(Finding::error(
                Kind::Unreadable,
                &id,
                format!("cannot list: {e}"),
            ));
            return;
        }
    };
    entries.sort();
    for e in entries {
        let n = e
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if e.is_dir() && depth < MAX_DEPTH {
            add_path(plan, &e, depth + 1);
        } else if e.is_file() && n == "bootstrap.checkpoint" {
            plan.lone_segments.push(lone_segment(&e, true));
        } else if e.is_file() && LOG_DIR_FILES.contains(&n.as_str()) {
            plan.root_files.push(e);
        }
    }
}

/// Verifies everything `plan` names. `progress` receives byte counts as segments complete.
pub fn verify(plan: &Plan, opts: VerifyOptions, progress: &(dyn Fn(u64) + Sync)) -> Report {
    let started = Instant::now();
    // Flatten every segment of every partition into one parallel work list.
    struct Job<'a> {
        seg: &'a SegmentFiles,
        epochs: Option<Epochs>,
    }
    let mut pre = Vec::new();
    let mut part_epochs: Vec<Option<Epochs>> = Vec::new();
    for p in &plan.partitions {
        part_epochs.push(p.leader_epoch_checkpoint.as_ref().and_then(|path| {
            let (id, bytes) = partition::read_aux(path, &mut pre)?;
            checkpoint::check_leader_epoch(&id, &bytes, &mut pre).map(|e| (id, e))
        }));
    }
    let mut jobs: Vec<Job<'_>> = Vec::new();
    for (p, e) in plan.partitions.iter().zip(&part_epochs) {
        for s in p.segments.iter().chain(&p.kraft_snapshots) {
            jobs.push(Job {
                seg: s,
                epochs: e.clone(),
            });
        }
    }
    for s in &plan.lone_segments {
        jobs.push(Job {
            seg: s,
            epochs: None,
        });
    }
    // Splitting a segment into chunks costs extra passes (sync search, header pass); it pays only
    // for a segment larger than one thread's fair share of the whole work.
    let mut seg_opts = opts.segment;
    let share = plan.total_bytes() / rayon::current_num_threads().max(1) as u64;
    seg_opts.split_bytes = seg_opts.split_bytes.max(share);
    let reports: Vec<SegmentReport> = jobs
        .par_iter()
        .map(|j| {
            let epochs = j.epochs.as_ref().map(|(id, e)| (id, e.as_slice()));
            segment::verify_segment(j.seg, epochs, seg_opts, progress)
        })
        .collect();

    let mut findings = plan.problems.clone();
    findings.extend(pre);
    let mut summary = Summary::default();
    let mut k = 0;
    for p in &plan.partitions {
        let n = p.segments.len();
        let seg_reports = reports.get(k..k + n).unwrap_or(&[]);
        partition::check_partition(p, seg_reports, &mut findings);
        k += n + p.kraft_snapshots.len();
        summary.files += p.other.len() as u64;
        if let Some(path) = &p.partition_metadata {
            summary.files += 1;
            if let Some((id, b)) = partition::read_aux(path, &mut findings) {
                checkpoint::check_partition_metadata(&id, &b, &mut findings);
            }
        }
        summary.files += p.leader_epoch_checkpoint.is_some() as u64;
        for s in &p.producer_snapshots {
            summary.files += 1;
            if let Some((id, b)) = partition::read_aux(s, &mut findings) {
                snapshot::check_snapshot(&id, &b, &mut findings);
            }
        }
    }
    for s in &plan.snapshots {
        summary.files += 1;
        if let Some((id, b)) = partition::read_aux(s, &mut findings) {
            snapshot::check_snapshot(&id, &b, &mut findings);
        }
    }
    for f in &plan.root_files {
        summary.files += 1;
        if let Some((id, b)) = partition::read_aux(f, &mut findings) {
            let name = f
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if name == "leader-epoch-checkpoint" {
                checkpoint::check_leader_epoch(&id, &b, &mut findings);
            } else if name.ends_with("offset-checkpoint") {
                checkpoint::check_offset_checkpoint(&id, &b, &mut findings);
            }
        }
    }
    for r in reports {
        summary.files += r.files;
        summary.segments += 1;
        summary.batches += r.stats.batches;
        summary.records += r.stats.records;
        summary.bytes += r.log_bytes;
        for (sum, n) in summary.codec_bytes.iter_mut().zip(r.codec_bytes) {
            *sum += n;
        }
        for (sum, n) in summary.decoded_bytes.iter_mut().zip(r.decoded_bytes) {
            *sum += n;
        }
        findings.extend(r.findings);
    }
    // Stable order: by file, then position; a finding without a position first.
    findings.sort_by(|a, b| a.file.cmp(&b.file).then(a.position.cmp(&b.position)));
    for f in &findings {
        match f.severity {
            Severity::Error => summary.errors += 1,
            Severity::Warning => summary.warnings += 1,
            Severity::Info => summary.infos += 1,
        }
        summary.io_errors += (f.kind == Kind::Unreadable) as u64;
    }
    summary.elapsed_ms = started.elapsed().as_millis() as u64;
    Report { findings, summary }
}
