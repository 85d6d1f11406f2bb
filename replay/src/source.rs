//! Where messages come from: a [`Source`] pushes messages with their coordinates (source id,
//! topic, partition, offset) to a callback.
//!
//! Push, not pull: records borrow from a decompressed batch buffer (segments) or a line buffer
//! (JSON lines), so the callback sees them without a copy per record. A broker source (rdkafka)
//! fits the same shape: its poll loop calls the callback per message and returns when told to stop.
//!
//! Sources skip what the database already holds ([`Resume`]): the progress table stores the next
//! offset per (source, topic, partition), and everything below it is skipped — whole batches at
//! once where the batch header tells the last offset.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use segment_reader::batch::{BatchHeader, BatchInfo, Codec, LegacyMessage, V2_HEADER_SIZE};
use segment_reader::compression::decompress;
use segment_reader::legacy;
use segment_reader::records::RecordIter;
use segment_reader::walk::{walk, Scratch, Visitor, WalkConfig};
use segment_reader::Finding;

pub use crate::mapping::MessageRef;

/// Whether the source should go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Stop,
}

/// Next offset to read per (topic, partition), from the progress table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resume(pub HashMap<(String, i32), i64>);

impl Resume {
    /// Offsets below this are already in the database.
    pub fn next(&self, topic: &str, partition: i32) -> i64 {
        // The map is small (one entry per partition); avoid allocating a key per lookup.
        self.0
            .iter()
            .find(|((t, p), _)| *p == partition && t == topic)
            .map_or(0, |(_, o)| *o)
    }
}

/// What a source saw besides the messages it delivered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SourceStats {
    /// Messages delivered to the callback.
    pub messages: u64,
    /// Messages (or whole batches' records) skipped because the progress table had them.
    pub resumed_skipped: u64,
    /// Corrupt byte ranges the segment walk skipped (CRC mismatch, bad length...).
    pub corrupt_ranges: u64,
    /// Batches whose records could not be decoded (decompression or record framing failed).
    pub undecodable_batches: u64,
    /// Batches of a kind this reader cannot unpack: none since compressed legacy wrappers are
    /// unpacked; kept so the summary's JSON schema stays stable.
    pub unsupported_batches: u64,
    /// Control batches (transaction markers), which carry no data.
    pub control_batches: u64,
    /// Records of aborted transactions, and of transactions with no marker yet (what a
    /// `read_committed` consumer would not see either).
    pub aborted_skipped: u64,
}

/// Why a source could not be read at all (per-record problems are dead letters, corrupt ranges
/// are counted).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The broker source: connection, metadata, assignment or consumer errors (settings with
    /// secrets are already redacted in the text).
    #[error("kafka: {0}")]
    Kafka(String),
    #[error(
        "{0}: no partition directories (expected <topic>-<partition> directories with .log files)"
    )]
    NoPartitions(PathBuf),
}

/// What a source may ask of the pipeline besides taking messages. Offline sources need none of
/// it; a broker consumer in a group needs it around rebalances, because a partition may move to
/// another worker and the database, not Kafka, holds the position.
pub trait Pipeline {
    /// Commits everything delivered so far and returns once it is in the database. `false`: the
    /// sink has stopped (an error, or it is gone), and the source should stop too.
    fn checkpoint(&mut self) -> bool;
    /// The stored next offsets of these partitions, read from the database now (another worker
    /// may have moved them since the run started). Absent partitions have no progress yet.
    fn reload(&mut self, topic: &str, partitions: &[i32]) -> Result<HashMap<i32, i64>, String>;
    /// Offsets below `next` were consumed without a message to deliver (transaction markers,
    /// compacted-away records): the progress may move there with the next commit.
    fn advance(&mut self, topic: &str, partition: i32, next: i64);
}

/// A source of messages.
pub trait Source: Send {
    /// The stable name the progress table keys on.
    fn id(&self) -> &str;
    /// Total input size when known (for the ETA).
    fn total_bytes(&self) -> Option<u64>;
    /// Whether messages may wait in a block for the encoding workers: true for sources that
    /// deliver as fast as they can read (files). A broker source says no: there a message may
    /// be the last for a while, and must reach the database without waiting for a thousand more.
    fn bulk(&self) -> bool {
        false
    }
    /// Delivers every message at or past `resume`, in offset order per partition.
    fn run(
        &mut self,
        resume: &Resume,
        visit: &mut dyn FnMut(&MessageRef<'_>) -> Flow,
    ) -> Result<SourceStats, SourceError>;
    /// [`Source::run`] with access to the pipeline; sources that never need it keep this default.
    fn run_in(
        &mut self,
        resume: &Resume,
        _pipeline: &mut dyn Pipeline,
        visit: &mut dyn FnMut(&MessageRef<'_>) -> Flow,
    ) -> Result<SourceStats, SourceError> {
        self.run(resume, visit)
    }
}

/// Partition directories (or a log dir holding them) read offline with segment-reader.
#[derive(Debug, Clone)]
pub struct SegmentsSource {
    id: String,
    partitions: Vec<(PathBuf, String, i32)>,
    total: u64,
}

impl SegmentsSource {
    /// `dir` is one `<topic>-<partition>` directory or a log dir. The id defaults to `kafka`:
    /// offsets are Kafka's own, so a replay from disk and a later one from the broker continue
    /// each other.
    pub fn open(dir: &Path, id: Option<String>) -> Result<SegmentsSource, SourceError> {
        let io = |source| SourceError::Io {
            path: dir.to_path_buf(),
            source,
        };
        let mut dirs = vec![];
        if segment_reader::partition::is_partition_dir(dir) {
            dirs.push(dir.to_path_buf());
        } else {
            for e in std::fs::read_dir(dir).map_err(io)? {
                let p = e.map_err(io)?.path();
                if p.is_dir() && segment_reader::partition::is_partition_dir(&p) {
                    dirs.push(p);
                }
            }
            dirs.sort();
        }
        let mut partitions = vec![];
        let mut total = 0;
        for d in dirs {
            let name = d
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let Some((topic, part)) = name.rsplit_once('-') else {
                continue;
            };
            let Ok(part) = part.parse::<i32>() else {
                continue;
            };
            // KRaft metadata is not telemetry.
            if topic == "__cluster_metadata" || topic == "cluster-metadata" {
                continue;
            }
            if let Ok(p) = segment_reader::partition::scan_partition(&d) {
                for s in &p.segments {
                    total += std::fs::metadata(&s.log).map(|m| m.len()).unwrap_or(0);
                }
            }
            partitions.push((d, topic.to_string(), part));
        }
        if partitions.is_empty() {
            return Err(SourceError::NoPartitions(dir.to_path_buf()));
        }
        Ok(SegmentsSource {
            id: id.unwrap_or_else(|| "kafka".to_string()),
            partitions,
            total,
        })
    }
}

impl Source for SegmentsSource {
    fn id(&self) -> &str {
        &self.id
    }
    fn bulk(&self) -> bool {
        true
    }
    fn total_bytes(&self) -> Option<u64> {
        Some(self.total)
    }
    fn run(
        &mut self,
        resume: &Resume,
        visit: &mut dyn FnMut(&MessageRef<'_>) -> Flow,
    ) -> Result<SourceStats, SourceError> {
        let mut stats = SourceStats::default();
        let mut scratch = Scratch::default();
        for (dir, topic, partition) in &self.partitions {
            let p = segment_reader::partition::scan_partition(dir).map_err(|source| {
                SourceError::Io {
                    path: dir.clone(),
                    source,
                }
            })?;
            let aborted = aborted_ranges(&p.segments, &mut scratch)?;
            let next = resume.next(topic, *partition);
            let mut v = Decode {
                aborted: &aborted,
                topic,
                partition: *partition,
                next,
                visit: &mut *visit,
                stats: &mut stats,
                buf: Vec::new(),
                stop: false,
            };
            for seg in &p.segments {
                let file: Arc<Path> = Arc::from(seg.log.as_path());
                let opened = if seg.active {
                    segment_reader::source::Source::stream(&seg.log)
                } else {
                    segment_reader::source::Source::map(&seg.log)
                };
                let mut src = opened.map_err(|source| SourceError::Io {
                    path: seg.log.clone(),
                    source,
                })?;
                let cfg = WalkConfig {
                    tail_may_tear: seg.active,
                    stop_at: None,
                    expected_first_offset: Some(seg.base_offset),
                };
                let mut findings: Vec<Finding> = Vec::new();
                let ws = walk(&mut src, &file, 0, cfg, &mut v, &mut scratch, &mut findings)
                    .map_err(|source| SourceError::Io {
                        path: seg.log.clone(),
                        source,
                    })?;
                v.stats.corrupt_ranges += ws.corrupt_ranges;
                if v.stop {
                    return Ok(stats);
                }
            }
        }
        Ok(stats)
    }
}

/// A producer's transaction that did not commit: `[first, last]` offsets of producer `pid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Aborted {
    pid: i64,
    first: i64,
    last: i64,
}

/// First pass over a partition (CRC-checked headers only, no decompression): the offset ranges
/// of aborted transactions, from the ABORT markers themselves rather than the `.txnindex` files,
/// which a salvaged disk may lack. A transaction with no marker at the end of the log is still
/// open; a `read_committed` consumer would not see it yet, so it is left out too.
fn aborted_ranges(
    segments: &[segment_reader::segment::SegmentFiles],
    scratch: &mut Scratch,
) -> Result<Vec<Aborted>, SourceError> {
    #[derive(Default)]
    struct Txns {
        open: HashMap<i64, i64>,
        done: Vec<Aborted>,
    }
    impl Visitor for Txns {
        fn on_batch(&mut self, info: &BatchInfo, _: &[u8], _: &mut Vec<Finding>) {
            if info.magic < 2 || info.attributes & 0x10 == 0 {
                return;
            }
            let pid = info.producer_id;
            if info.is_control() {
                if let Some(first) = self.open.remove(&pid) {
                    if info.control_type == Some(0) {
                        self.done.push(Aborted {
                            pid,
                            first,
                            last: info.base_offset,
                        });
                    }
                }
            } else {
                self.open.entry(pid).or_insert(info.base_offset);
            }
        }
    }
    let mut t = Txns::default();
    for seg in segments {
        let file: Arc<Path> = Arc::from(seg.log.as_path());
        let io = |source| SourceError::Io {
            path: seg.log.clone(),
            source,
        };
        let mut src = if seg.active {
            segment_reader::source::Source::stream(&seg.log)
        } else {
            segment_reader::source::Source::map(&seg.log)
        }
        .map_err(io)?;
        let cfg = WalkConfig {
            tail_may_tear: seg.active,
            stop_at: None,
            expected_first_offset: Some(seg.base_offset),
        };
        let mut findings = Vec::new();
        walk(&mut src, &file, 0, cfg, &mut t, scratch, &mut findings).map_err(io)?;
    }
    let mut done = t.done;
    done.extend(t.open.into_iter().map(|(pid, first)| Aborted {
        pid,
        first,
        last: i64::MAX,
    }));
    Ok(done)
}

/// The walk visitor that decodes batches into messages.
struct Decode<'v, 's> {
    aborted: &'s [Aborted],
    topic: &'s str,
    partition: i32,
    next: i64,
    visit: &'v mut dyn FnMut(&MessageRef<'_>) -> Flow,
    stats: &'v mut SourceStats,
    buf: Vec<u8>,
    stop: bool,
}

impl Decode<'_, '_> {
    fn deliver(&mut self, m: &MessageRef<'_>) {
        if m.offset < self.next {
            self.stats.resumed_skipped += 1;
            return;
        }
        self.stats.messages += 1;
        if (self.visit)(m) == Flow::Stop {
            self.stop = true;
        }
    }

    fn v2(&mut self, info: &BatchInfo, bytes: &[u8]) {
        let Some(h) = BatchHeader::parse(bytes) else {
            self.stats.undecodable_batches += 1;
            return;
        };
        if h.is_control() {
            self.stats.control_batches += 1;
            return;
        }
        if info.last_offset < self.next {
            self.stats.resumed_skipped += h.records_count.max(0) as u64;
            return;
        }
        if h.is_transactional()
            && self.aborted.iter().any(|a| {
                a.pid == h.producer_id && a.first <= h.base_offset && h.base_offset <= a.last
            })
        {
            self.stats.aborted_skipped += h.records_count.max(0) as u64;
            return;
        }
        let section = bytes.get(V2_HEADER_SIZE..).unwrap_or_default();
        let mut buf = std::mem::take(&mut self.buf);
        let records: &[u8] = if h.codec() == Codec::None {
            section
        } else {
            if decompress(h.codec(), section, &mut buf, false).is_err() {
                self.stats.undecodable_batches += 1;
                self.buf = buf;
                return;
            }
            &buf
        };
        let mut hdrs: Vec<(&[u8], Option<&[u8]>)> = Vec::new();
        for r in RecordIter::new(records) {
            let Ok(r) = r else {
                self.stats.undecodable_batches += 1;
                break;
            };
            hdrs.clear();
            hdrs.extend(r.headers);
            let timestamp = if h.is_log_append_time() {
                h.max_timestamp
            } else {
                h.base_timestamp.saturating_add(r.timestamp_delta)
            };
            let m = MessageRef {
                topic: self.topic,
                partition: self.partition,
                offset: h.base_offset.saturating_add(r.offset_delta as i64),
                timestamp: Some(timestamp),
                key: r.key,
                value: r.value,
                headers: &hdrs,
            };
            self.deliver(&m);
            if self.stop {
                break;
            }
        }
        self.buf = buf;
    }

    /// A magic 0/1 message, or a compressed wrapper whose inner messages are delivered at their
    /// absolute offsets (Kafka's legacy rules: [`segment_reader::legacy`]); inner timestamps
    /// unless the wrapper says LogAppendTime, when the wrapper's time is every message's.
    fn legacy(&mut self, bytes: &[u8]) {
        let Ok(m) = LegacyMessage::parse(bytes) else {
            self.stats.undecodable_batches += 1;
            return;
        };
        if m.codec() == Codec::None {
            let msg = MessageRef {
                topic: self.topic,
                partition: self.partition,
                offset: m.offset,
                timestamp: m.timestamp,
                key: m.key,
                value: m.value,
                headers: &[],
            };
            self.deliver(&msg);
            return;
        }
        let mut buf = std::mem::take(&mut self.buf);
        match legacy::wrapper_summary(&m, &mut buf) {
            // Every inner CRC and the offsets were checked: what follows cannot fail.
            Ok(summary) => {
                for (_, inner) in legacy::inner_messages(&buf).flatten() {
                    let timestamp = if m.is_log_append_time() {
                        m.timestamp
                    } else {
                        inner.timestamp
                    };
                    let msg = MessageRef {
                        topic: self.topic,
                        partition: self.partition,
                        offset: summary.offset_base.saturating_add(inner.offset),
                        timestamp,
                        key: inner.key,
                        value: inner.value,
                        headers: &[],
                    };
                    self.deliver(&msg);
                    if self.stop {
                        break;
                    }
                }
            }
            Err(_) => self.stats.undecodable_batches += 1,
        }
        self.buf = buf;
    }
}

impl Visitor for Decode<'_, '_> {
    fn on_batch(&mut self, info: &BatchInfo, bytes: &[u8], _out: &mut Vec<Finding>) {
        if self.stop {
            return;
        }
        if info.magic >= 2 {
            self.v2(info, bytes);
        } else {
            self.legacy(bytes);
        }
    }
}

/// A JSON-lines dump made with the console consumer: values only, one per line. The coordinate
/// of a message is its 1-based line number (the offset), topic `jsonl`, partition 0.
#[derive(Debug, Clone)]
pub struct JsonLinesSource {
    id: String,
    path: PathBuf,
    len: Option<u64>,
}

impl JsonLinesSource {
    /// The id defaults to `jsonl:<file name>`, so a rerun over the same dump resumes.
    pub fn open(path: &Path, id: Option<String>) -> Result<JsonLinesSource, SourceError> {
        let meta = std::fs::metadata(path).map_err(|source| SourceError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(JsonLinesSource {
            id: id.unwrap_or_else(|| format!("jsonl:{name}")),
            path: path.to_path_buf(),
            len: Some(meta.len()),
        })
    }
}

/// Topic name JSON-lines messages carry.
pub const JSONL_TOPIC: &str = "jsonl";

impl Source for JsonLinesSource {
    fn id(&self) -> &str {
        &self.id
    }
    fn bulk(&self) -> bool {
        true
    }
    fn total_bytes(&self) -> Option<u64> {
        self.len
    }
    fn run(
        &mut self,
        resume: &Resume,
        visit: &mut dyn FnMut(&MessageRef<'_>) -> Flow,
    ) -> Result<SourceStats, SourceError> {
        let io = |source| SourceError::Io {
            path: self.path.clone(),
            source,
        };
        let next = resume.next(JSONL_TOPIC, 0);
        let mut r = BufReader::with_capacity(1 << 20, File::open(&self.path).map_err(io)?);
        let mut stats = SourceStats::default();
        let mut line = Vec::new();
        let mut n: i64 = 0;
        loop {
            line.clear();
            if r.read_until(b'\n', &mut line).map_err(io)? == 0 {
                break;
            }
            n += 1;
            if n < next {
                stats.resumed_skipped += 1;
                continue;
            }
            let mut v: &[u8] = &line;
            while let [rest @ .., b'\n' | b'\r'] = v {
                v = rest;
            }
            if v.iter().all(u8::is_ascii_whitespace) {
                // An empty line carries no message; it is skipped, never a dead letter.
                continue;
            }
            stats.messages += 1;
            let m = MessageRef {
                topic: JSONL_TOPIC,
                partition: 0,
                offset: n,
                timestamp: None,
                key: None,
                value: Some(v),
                headers: &[],
            };
            if visit(&m) == Flow::Stop {
                break;
            }
        }
        Ok(stats)
    }
}
