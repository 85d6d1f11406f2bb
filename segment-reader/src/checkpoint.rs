//! Text checkpoint files: `leader-epoch-checkpoint`, `partition.metadata` and the log-dir offset
//! checkpoints, plus the streaming leader-epoch consistency check.
//!
//! Framing (`CheckpointFile.CheckpointReadBuffer`): line 1 the version (`0`), line 2 the entry
//! count, then one entry per line, fields split on whitespace. An empty file, or one with only
//! the version line, reads as no entries. The count must match the lines. Entry lines are
//! `<epoch> <startOffset>` for leader epochs and `<topic> <partition> <offset>` for the log-dir
//! files `recovery-point-offset-checkpoint`, `replication-offset-checkpoint`,
//! `log-start-offset-checkpoint` and `cleaner-offset-checkpoint`. `partition.metadata` is
//! `version: 0\ntopic_id: <base64url uuid>` (`PartitionMetadataReadBuffer`). KRaft's
//! `quorum-state` (JSON), `meta.properties` (Java properties) and `bootstrap.checkpoint` (record
//! batches) are not offset checkpoints: [`is_offset_checkpoint`] keeps them out.
//!
//! Parsers take the raw bytes and return typed results; errors carry the 1-based line number.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use crate::batch::BatchInfo;
use crate::finding::{Finding, Kind};

/// A parse error with the 1-based line it is on (0 = the file as a whole).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            f.write_str(&self.message)
        } else {
            write!(f, "line {}: {}", self.line, self.message)
        }
    }
}

impl std::error::Error for CheckpointError {}

fn err(line: usize, message: impl Into<String>) -> CheckpointError {
    CheckpointError { line, message: message.into() }
}

/// Lines as Java's `BufferedReader.readLine` sees them (`\n`, `\r\n` or `\r` end a line; no
/// trailing empty line), numbered from 1. Non-UTF-8 is an error.
fn lines(bytes: &[u8]) -> Result<impl Iterator<Item = (usize, &str)>, CheckpointError> {
    let text = std::str::from_utf8(bytes).map_err(|e| err(0, format!("not UTF-8 text ({e})")))?;
    Ok(text.lines().map(|l| l.strip_suffix('\r').unwrap_or(l)).enumerate().map(|(i, l)| (i + 1, l)))
}

/// Parses the shared framing, calling `entry` for each entry line.
fn parse_framed<T>(
    bytes: &[u8],
    expected_version: i32,
    mut entry: impl FnMut(usize, &str) -> Result<T, CheckpointError>,
) -> Result<Vec<T>, CheckpointError> {
    let mut it = lines(bytes)?;
    let Some((n, v)) = it.next() else { return Ok(Vec::new()) };
    let version: i32 = v.parse().map_err(|_| err(n, format!("version line {v:?} is not an integer")))?;
    if version != expected_version {
        return Err(err(n, format!("unknown version {version} (expected {expected_version})")));
    }
    let Some((n, c)) = it.next() else { return Ok(Vec::new()) };
    let count: i32 = c.parse().map_err(|_| err(n, format!("count line {c:?} is not an integer")))?;
    // The count is not trusted for allocation: entries grow as they parse.
    let mut out = Vec::new();
    for (n, line) in it {
        out.push(entry(n, line)?);
    }
    if count < 0 || out.len() != count as usize {
        return Err(err(2, format!("count says {count} entries but the file holds {}", out.len())));
    }
    Ok(out)
}

/// Splits on runs of whitespace like Java's `\s+` split (a leading blank gives an empty field).
fn fields(line: &str) -> impl Iterator<Item = &str> {
    let lead = line.starts_with(|c: char| c.is_ascii_whitespace());
    std::iter::once("").filter(move |_| lead).chain(line.split_ascii_whitespace())
}

/// One `leader-epoch-checkpoint` entry: the epoch and the first offset written in it.
pub type EpochEntry = (i32, i64);

/// Parses `leader-epoch-checkpoint` (framing and syntax only; see [`check_leader_epoch`]).
pub fn parse_leader_epoch(bytes: &[u8]) -> Result<Vec<EpochEntry>, CheckpointError> {
    parse_framed(bytes, 0, |n, line| {
        let f: Vec<&str> = fields(line).collect();
        match f.as_slice() {
            [e, o] => {
                let epoch = e.parse().map_err(|_| err(n, format!("epoch {e:?} is not an int32")))?;
                let off = o.parse().map_err(|_| err(n, format!("start offset {o:?} is not an int64")))?;
                Ok((epoch, off))
            }
            _ => Err(err(n, format!("expected `<epoch> <startOffset>`, got {line:?}"))),
        }
    })
}

/// Parses and validates `leader-epoch-checkpoint`: epochs and start offsets must increase
/// (Kafka's `LeaderEpochFileCache` only appends larger epochs at larger-or-equal offsets and
/// drops entries a newer epoch supersedes at the same offset). Returns the entries when they parse
/// (even if unordered, so a caller can still use them).
pub fn check_leader_epoch(file: &Arc<Path>, bytes: &[u8], out: &mut Vec<Finding>) -> Option<Vec<EpochEntry>> {
    let entries = match parse_leader_epoch(bytes) {
        Ok(e) => e,
        Err(e) => {
            out.push(Finding::error(Kind::LeaderEpochCheckpointInvalid, file, format!("leader-epoch-checkpoint: {e}")));
            return None;
        }
    };
    for (i, w) in entries.windows(2).enumerate() {
        if let [(e0, s0), (e1, s1)] = w {
            if e1 <= e0 || s1 < s0 || s0 < &0 {
                out.push(
                    Finding::error(
                        Kind::LeaderEpochCheckpointInvalid,
                        file,
                        format!(
                            "line {}: epoch {e1} starting at offset {s1} does not follow epoch {e0} starting at {s0} (epochs must increase, start offsets must not decrease)",
                            i + 4
                        ),
                    )
                    .offset(*s1),
                );
            }
        }
    }
    Some(entries)
}

/// The contents of `partition.metadata`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionMetadata {
    pub version: i32,
    /// The topic id's 16 bytes.
    pub topic_id: [u8; 16],
}

/// Decodes Kafka's topic id form: URL-safe base64 of 16 bytes, unpadded (22 chars) or padded.
pub fn decode_uuid(s: &str) -> Option<[u8; 16]> {
    let s = s.trim_end_matches('=');
    if s.len() != 22 {
        return None;
    }
    let mut out = [0u8; 16];
    let mut acc: u32 = 0;
    let mut bits = 0;
    let mut n = 0;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        } as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            *out.get_mut(n)? = (acc >> bits) as u8;
            n += 1;
            acc &= (1 << bits) - 1;
        }
    }
    // 22 chars = 132 bits: 16 bytes and 4 leftover bits that must be zero.
    (n == 16 && acc == 0).then_some(out)
}

/// Parses `partition.metadata` as `PartitionMetadataReadBuffer` does.
pub fn parse_partition_metadata(bytes: &[u8]) -> Result<PartitionMetadata, CheckpointError> {
    let mut it = lines(bytes)?;
    let (n, l) = it.next().ok_or_else(|| err(1, "empty file"))?;
    let version = match fields(l).collect::<Vec<_>>().as_slice() {
        ["version:", v] => v.parse::<i32>().map_err(|_| err(n, format!("version {v:?} is not an integer")))?,
        _ => return Err(err(n, format!("expected `version: 0`, got {l:?}"))),
    };
    if version < 0 {
        return Err(err(n, format!("unknown version {version}")));
    }
    let (n, l) = it.next().ok_or_else(|| err(2, "missing `topic_id:` line"))?;
    let topic_id = match fields(l).collect::<Vec<_>>().as_slice() {
        ["topic_id:", id] => decode_uuid(id).ok_or_else(|| err(n, format!("topic id {id:?} is not a base64 UUID")))?,
        _ => return Err(err(n, format!("expected `topic_id: <uuid>`, got {l:?}"))),
    };
    if topic_id == [0; 16] {
        return Err(err(n, "topic id is the zero UUID"));
    }
    Ok(PartitionMetadata { version, topic_id })
}

/// Validates `partition.metadata`.
pub fn check_partition_metadata(file: &Arc<Path>, bytes: &[u8], out: &mut Vec<Finding>) -> Option<PartitionMetadata> {
    match parse_partition_metadata(bytes) {
        Ok(m) => Some(m),
        Err(e) => {
            out.push(Finding::error(Kind::PartitionMetadataInvalid, file, format!("partition.metadata: {e}")));
            None
        }
    }
}

/// One line of a log-dir offset checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCheckpointEntry {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// 1-based line in the file.
    pub line: usize,
}

/// File names of the log-dir offset checkpoints (same framing, `<topic> <partition> <offset>`).
pub const OFFSET_CHECKPOINT_NAMES: &[&str] = &[
    "recovery-point-offset-checkpoint",
    "replication-offset-checkpoint",
    "log-start-offset-checkpoint",
    "cleaner-offset-checkpoint",
];

/// Whether `file_name` is a log-dir offset checkpoint. `quorum-state`, `meta.properties` and
/// `bootstrap.checkpoint` are not.
pub fn is_offset_checkpoint(file_name: &str) -> bool {
    OFFSET_CHECKPOINT_NAMES.contains(&file_name)
}

/// Parses a log-dir offset checkpoint.
pub fn parse_offset_checkpoint(bytes: &[u8]) -> Result<Vec<OffsetCheckpointEntry>, CheckpointError> {
    parse_framed(bytes, 0, |n, line| {
        let f: Vec<&str> = fields(line).collect();
        match f.as_slice() {
            [t, p, o] if !t.is_empty() => Ok(OffsetCheckpointEntry {
                topic: t.to_string(),
                partition: p.parse().map_err(|_| err(n, format!("partition {p:?} is not an int32")))?,
                offset: o.parse().map_err(|_| err(n, format!("offset {o:?} is not an int64")))?,
                line: n,
            }),
            _ => Err(err(n, format!("expected `<topic> <partition> <offset>`, got {line:?}"))),
        }
    })
}

/// Validates a log-dir offset checkpoint.
pub fn check_offset_checkpoint(
    file: &Arc<Path>,
    bytes: &[u8],
    out: &mut Vec<Finding>,
) -> Option<Vec<OffsetCheckpointEntry>> {
    match parse_offset_checkpoint(bytes) {
        Ok(e) => Some(e),
        Err(e) => {
            out.push(Finding::error(Kind::CheckpointInvalid, file, format!("offset checkpoint: {e}")));
            None
        }
    }
}

/// Streaming check of a partition's magic 2 batches against its `leader-epoch-checkpoint`.
///
/// Kafka assigns an epoch in the cache when a batch with a larger epoch is appended (or when a
/// replica becomes leader), so epochs never decrease along the log, and every batch of epoch `e`
/// has `start(e) <= baseOffset < start(next epoch)`. Retention may drop the epochs of deleted data
/// and move the first entry's start up to the log start offset (`truncateFromStart`), so batches
/// below the first entry's start offset are only required not to carry a later epoch. Epochs below
/// 0 (never assigned) are ignored. A finding is raised at the first batch of each run of batches
/// with the same problem, not for every batch.
pub struct LeaderEpochCheck {
    file: Arc<Path>,
    entries: Vec<EpochEntry>,
    segment: Option<Arc<Path>>,
    /// Largest epoch seen so far.
    max_epoch: Option<i32>,
    /// Epoch of the previous batch (to report once per run).
    prev_epoch: Option<i32>,
    /// Entry index of the previous lookup (epochs mostly repeat).
    hint: usize,
    /// Problem reported for the current run: (epoch, kind).
    reported: Option<(i32, Kind)>,
}

impl LeaderEpochCheck {
    /// `file` is the `leader-epoch-checkpoint` path; `entries` its parsed entries (empty when the
    /// file is missing or unparseable: then only regressions are checked).
    pub fn new(file: Arc<Path>, entries: Vec<EpochEntry>) -> Self {
        LeaderEpochCheck { file, entries, segment: None, max_epoch: None, prev_epoch: None, hint: 0, reported: None }
    }

    /// Names the `.log` file the next batches come from, so findings point at it.
    pub fn begin_segment(&mut self, log_file: Arc<Path>) {
        self.segment = Some(log_file);
    }

    fn find(&mut self, epoch: i32) -> Option<usize> {
        if self.entries.get(self.hint).is_some_and(|e| e.0 == epoch) {
            return Some(self.hint);
        }
        let i = self.entries.iter().position(|e| e.0 == epoch)?;
        self.hint = i;
        Some(i)
    }

    fn report(&mut self, kind: Kind, b: &BatchInfo, msg: String, out: &mut Vec<Finding>) {
        let epoch = b.partition_leader_epoch;
        if self.reported == Some((epoch, kind)) && self.prev_epoch == Some(epoch) {
            return;
        }
        self.reported = Some((epoch, kind));
        let f = match &self.segment {
            Some(seg) => Finding::error(kind, seg, msg).at(b.position),
            None => Finding::error(kind, &self.file, msg),
        };
        out.push(f.offset(b.base_offset));
    }

    /// Feeds one batch (partition log order, across segments).
    pub fn on_batch(&mut self, b: &BatchInfo, out: &mut Vec<Finding>) {
        let epoch = b.partition_leader_epoch;
        if b.magic < 2 || epoch < 0 {
            return;
        }
        if self.prev_epoch != Some(epoch) {
            self.reported = None;
        }
        if let Some(max) = self.max_epoch.filter(|m| epoch < *m) {
            let msg = format!("batch at offset {} has leader epoch {epoch}, below the earlier {max}", b.base_offset);
            self.report(Kind::LeaderEpochRegression, b, msg, out);
        }
        self.max_epoch = Some(self.max_epoch.map_or(epoch, |m| m.max(epoch)));
        if let Some(&(first_epoch, first_start)) = self.entries.first() {
            let problem = match self.find(epoch) {
                None if b.base_offset < first_start && epoch <= first_epoch => None,
                None => Some(format!("batch at offset {} has leader epoch {epoch}, which leader-epoch-checkpoint does not list", b.base_offset)),
                Some(i) => {
                    let start = self.entries.get(i).map_or(i64::MIN, |e| e.1);
                    let next = self.entries.get(i + 1).copied();
                    if b.base_offset < start && i > 0 {
                        Some(format!(
                            "batch at offset {} has leader epoch {epoch}, which starts at offset {start}",
                            b.base_offset
                        ))
                    } else if let Some((ne, ns)) = next.filter(|n| b.base_offset >= n.1) {
                        Some(format!(
                            "batch at offset {} has leader epoch {epoch}, but epoch {ne} starts at offset {ns}",
                            b.base_offset
                        ))
                    } else {
                        None
                    }
                }
            };
            if let Some(msg) = problem {
                self.report(Kind::LeaderEpochMismatch, b, msg, out);
            }
        }
        self.prev_epoch = Some(epoch);
    }

    /// Ends the partition. Nothing is pending today; kept for the streaming-consumer shape.
    pub fn finish(self, _out: &mut Vec<Finding>) {}
}
