//! Partition directories and log dirs: which files are there, and the checks that span segments
//! (offset continuity between segments, leader epochs, producer snapshots, metadata).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::finding::{file_id, Finding, Kind};
use crate::segment::{SegmentFiles, SegmentReport};

/// Everything Kafka keeps in one `<topic>-<partition>` directory.
#[derive(Debug, Clone, Default)]
pub struct PartitionDir {
    pub path: PathBuf,
    /// `.log` segments in offset order; the last one is the active segment.
    pub segments: Vec<SegmentFiles>,
    /// KRaft snapshots (`<offset>-<epoch>.checkpoint`), verified like segments.
    pub kraft_snapshots: Vec<SegmentFiles>,
    pub producer_snapshots: Vec<PathBuf>,
    pub leader_epoch_checkpoint: Option<PathBuf>,
    pub partition_metadata: Option<PathBuf>,
    /// Files Kafka does not write here, or writes only in passing (`.deleted`, `.cleaned`, `.swap`).
    pub other: Vec<PathBuf>,
}

/// `00000000000000001234` → 1234.
pub fn parse_offset_name(stem: &str) -> Option<i64> {
    (stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()))
        .then(|| stem.parse().ok())
        .flatten()
}

fn kraft_snapshot_name(name: &str) -> Option<i64> {
    let stem = name.strip_suffix(".checkpoint")?;
    let (off, epoch) = stem.split_once('-')?;
    (epoch.len() == 10 && epoch.bytes().all(|b| b.is_ascii_digit())).then_some(())?;
    parse_offset_name(off)
}

/// Files Kafka writes at the root of a log dir (not in partition directories).
pub const LOG_DIR_FILES: &[&str] = &[
    "recovery-point-offset-checkpoint",
    "replication-offset-checkpoint",
    "log-start-offset-checkpoint",
    "cleaner-offset-checkpoint",
    "meta.properties",
    "bootstrap.checkpoint",
    ".lock",
    ".kafka_cleanshutdown",
];

/// Lists a partition directory. Segment files are matched by their 20-digit base offset.
pub fn scan_partition(dir: &Path) -> io::Result<PartitionDir> {
    let mut p = PartitionDir {
        path: dir.to_path_buf(),
        ..PartitionDir::default()
    };
    let mut logs = Vec::new();
    let mut aux: Vec<(i64, &'static str, PathBuf)> = Vec::new();
    let mut entries: Vec<_> = fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        if !e.file_type()?.is_file() {
            continue;
        }
        let name = e.file_name().to_string_lossy().into_owned();
        let (stem, ext) = match name.rsplit_once('.') {
            Some((s, x)) => (s, x),
            None => (name.as_str(), ""),
        };
        match (parse_offset_name(stem), ext) {
            (Some(o), "log") => logs.push((o, path)),
            (Some(o), "index") => aux.push((o, "index", path)),
            (Some(o), "timeindex") => aux.push((o, "timeindex", path)),
            (Some(o), "txnindex") => aux.push((o, "txnindex", path)),
            (Some(_), "snapshot") => p.producer_snapshots.push(path),
            _ => {
                if let Some(o) = kraft_snapshot_name(&name) {
                    p.kraft_snapshots.push(SegmentFiles {
                        base_offset: o,
                        log: path,
                        index: None,
                        timeindex: None,
                        txnindex: None,
                        active: false,
                        kraft_snapshot: true,
                    });
                } else if name == "leader-epoch-checkpoint" {
                    p.leader_epoch_checkpoint = Some(path);
                } else if name == "partition.metadata" {
                    p.partition_metadata = Some(path);
                } else if name != "quorum-state" {
                    p.other.push(path);
                }
            }
        }
    }
    logs.sort();
    let n = logs.len();
    for (i, (base, log)) in logs.into_iter().enumerate() {
        let find = |kind: &str| {
            aux.iter()
                .find(|(o, k, _)| *o == base && *k == kind)
                .map(|(_, _, p)| p.clone())
        };
        p.segments.push(SegmentFiles {
            base_offset: base,
            index: find("index"),
            timeindex: find("timeindex"),
            txnindex: find("txnindex"),
            log,
            active: i + 1 == n,
            kraft_snapshot: false,
        });
    }
    for (o, kind, path) in aux {
        if !p.segments.iter().any(|s| s.base_offset == o) {
            let _ = kind;
            p.other.push(path);
        }
    }
    p.kraft_snapshots.sort_by_key(|s| s.base_offset);
    Ok(p)
}

/// True when `dir` looks like a partition directory rather than a log dir.
pub fn is_partition_dir(dir: &Path) -> bool {
    let Ok(rd) = fs::read_dir(dir) else {
        return false;
    };
    rd.flatten().any(|e| {
        let name = e.file_name().to_string_lossy().into_owned();
        name == "leader-epoch-checkpoint"
            || name == "partition.metadata"
            || name
                .rsplit_once('.')
                .is_some_and(|(s, x)| x == "log" && parse_offset_name(s).is_some())
            || kraft_snapshot_name(&name).is_some()
    })
}

fn transient(name: &str) -> bool {
    [".deleted", ".cleaned", ".swap", ".tmp"]
        .iter()
        .any(|s| name.ends_with(s))
}

/// Checks that span the segments of one partition, after each segment has been verified.
pub fn check_partition(p: &PartitionDir, reports: &[SegmentReport], out: &mut Vec<Finding>) {
    for path in &p.other {
        let id = file_id(path);
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let why = if transient(&name) {
            "a file Kafka writes in passing (deletion, cleaning or swap in progress)"
        } else {
            "not a file Kafka writes in a partition directory (or an index without its .log)"
        };
        out.push(Finding::info(Kind::UnknownFile, &id, why));
    }
    let mut prev: Option<(&SegmentFiles, &SegmentReport)> = None;
    for (seg, r) in p.segments.iter().zip(reports) {
        let file = file_id(&seg.log);
        let st = &r.stats;
        if let Some(first) = st.first_offset {
            if first < seg.base_offset {
                out.push(
                    Finding::error(
                        Kind::FirstOffsetBelowBase,
                        &file,
                        format!(
                            "first batch starts at offset {first}, below the file name's {}",
                            seg.base_offset
                        ),
                    )
                    .at(0)
                    .offset(first),
                );
            } else if first > seg.base_offset && st.corrupt_ranges == 0 {
                out.push(
                    Finding::info(
                        Kind::SegmentCleaned,
                        &file,
                        format!(
                            "first batch starts at offset {first}, above the file name's {} (rewritten by the log cleaner)",
                            seg.base_offset
                        ),
                    )
                    .at(0)
                    .offset(first),
                );
            }
        }
        if let Some((ps, pr)) = prev {
            let pfile = file_id(&ps.log);
            if let Some(plast) = pr.stats.last_offset {
                if plast >= seg.base_offset {
                    out.push(
                        Finding::error(
                            Kind::SegmentOverlap,
                            &pfile,
                            format!(
                                "segment ends at offset {plast} but the next segment {} starts at {}",
                                seg.log.display(),
                                seg.base_offset
                            ),
                        )
                        .at(pr.stats.valid_end)
                        .offsets(seg.base_offset, plast),
                    );
                } else if plast + 1 < seg.base_offset {
                    let cleaned = pr.cleaned
                        || r.cleaned
                        || st.first_offset.is_some_and(|f| f > seg.base_offset);
                    let msg = format!(
                        "offsets {}..={} are in no segment (between {} and {})",
                        plast + 1,
                        seg.base_offset - 1,
                        ps.log.display(),
                        seg.log.display()
                    );
                    let f = if cleaned {
                        Finding::info(
                            Kind::SegmentGapCompacted,
                            &file,
                            format!("{msg}; the batches show the log was cleaned"),
                        )
                    } else {
                        Finding::warning(
                            Kind::SegmentGap,
                            &file,
                            format!("{msg}; a segment may be missing"),
                        )
                    };
                    out.push(f.at(0).offsets(plast + 1, seg.base_offset - 1));
                }
            }
            if let (Some(pe), Some(fe)) = (pr.last_epoch, r.first_epoch) {
                if fe < pe {
                    out.push(
                        Finding::error(
                            Kind::LeaderEpochRegression,
                            &file,
                            format!("first batch has leader epoch {fe}, below the previous segment's last epoch {pe}"),
                        )
                        .at(0)
                        .offset(st.first_offset.unwrap_or(seg.base_offset)),
                    );
                }
            }
        }
        if r.stats.batches > 0 || prev.is_none() {
            prev = Some((seg, r));
        }
    }
    let has_v2 = reports.iter().any(|r| r.first_epoch.is_some());
    if has_v2 && p.leader_epoch_checkpoint.is_none() {
        let id = file_id(p.path.join("leader-epoch-checkpoint"));
        out.push(Finding::info(
            Kind::LeaderEpochCheckpointMissing,
            &id,
            "partition has magic 2 batches but no leader-epoch-checkpoint",
        ));
    }
}

/// Reads a small text or binary file, turning failure into an `unreadable` finding.
pub fn read_aux(path: &Path, out: &mut Vec<Finding>) -> Option<(Arc<Path>, Vec<u8>)> {
    let id = file_id(path);
    match fs::read(path) {
        Ok(b) => Some((id, b)),
        Err(e) => {
            out.push(Finding::unreadable(&id, &e));
            None
        }
    }
}
