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
    CheckpointError {
        line,
        message: message.into(),
    }
}

/// Lines as Java's `BufferedReader.readLine` sees them (`\n`, `\r\n` or `\r` end a line; no
/// trailing empty line), numbered from 1. Non-UTF-8 is an error.
fn lines(bytes: &[u8]) -> Result<impl Iterator<Item = (usize, &str)>, CheckpointError> {
    let text = std::str::from_utf8(bytes).map_err(|e| err(0, format!("not UTF-8 text ({e})")))?;
    Ok(text
        .lines()
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .enumerate()
        .map(|(i, l)| (i + 1, l)))
}

/// Parses the shared framing, calling `entry` for each entry line.
fn parse_framed<T>(
    bytes: &[u8],
    expected_version: i32,
    mut entry: impl FnMut(usize, &str) -> Result<T, CheckpointError>,
) -> Result<Vec<T>, CheckpointError> {
    let mut it = lines(bytes)?;
    let Some((n, v)) = it.next() else {
        return Ok(Vec::new());
    };
    let version: i32 = v
        .parse()
        .map_err(|_| err(n, format!("version line {v:?} is not an integer")))?;
    if version != expected_version {
        return Err(err(
            n,
            format!("unknown version {version} (expected {expected_version})"),
        ));
    }
    let Some((n, c)) = it.next() else {
        return Ok(Vec::new());
    };
    let count: i32 = c
        .parse()
        .map_err(|_| err(n, format!("count line {c:?} is not an integer")))?;
    // The count is not trusted for allocation: entries grow as they parse.
    let mut out = Vec::new();
    for (n, line) in it {
        out.push(entry(n, line)?);
    }
    if count < 0 || out.len() != count as usize {
        return Err(err(
            2,
            format!(
                "count says {count} entries but the file holds {}",
                out.len()
            ),
        ));
    }
    Ok(out)
}

/// Splits on runs of whitespace like Java's `\s+` split (a leading blank gives an empty field).
fn fields(line: &str) -> impl Iterator<Item = &str> {
    let lead = line.starts_with(|c: char| c.is_ascii_whitespace());
    std::iter::once("")
        .filter(move |_| lead)
        .chain(line.split_ascii_whitespace())
}

/// One `leader-epoch-checkpoint` entry: the epoch and the first offset written in it.
pub type EpochEntry = (i32, i64);

/// Parses `leader-epoch-checkpoint` (framing and syntax only; see [`check_leader_epoch`]).
pub fn parse_leader_epoch(bytes: &[u8]) -> Result<Vec<EpochEntry>, CheckpointError> {
    parse_framed(bytes, 0, |n, line| {
        let f: Vec<&str> = fields(line).collect();
        match f.as_slice() {
            [e, o] => {
                let epoch = e
                    .parse()
                    .map_err(|_| err(n, format!("epoch {e:?} is not an int32")))?;
                let off = o
                    .parse()
                    .map_err(|_| err(n, format!("start offset {o:?} is not an int64")))?;
                Ok((epoch, off))
            }
            _ => Err(err(
                n,
                format!("expected `<epoch> <startOffset>`, got {line:?}"),
            )),
        }
    })
}

/// Parses and validates `leader-epoch-checkpoint`: epochs and start offsets must increase
/// (Kafka's `LeaderEpochFileCache` only appends larger epochs at larger-or-equal offsets and
/// drops entries a newer epoch supersedes at the same offset). Returns the entries when they parse
/// (even if unordered, so a caller can still use them).
pub fn check_leader_epoch(
    file: &Arc<Path>,
    bytes: &[u8],
    out: &mut Vec<Finding>,
) -> Option<Vec<EpochEntry>> {
    let entries = match parse_leader_epoch(bytes) {
        Ok(e) => e,
        Err(e) => {
            out.push(Finding::error(
                Kind::LeaderEpochCheckpointInvalid,
                file,
                format!("leader-epoch-checkpoint: {e}"),
            ));
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
        ["version:", v] => v
            .parse::<i32>()
            .map_err(|_| err(n, format!("version {v:?} is not an integer")))?,
        _ => return Err(err(n, format!("expected `version: 0`, got {l:?}"))),
    };
    if version < 0 {
        return Err(err(n, format!("unknown version {version}")));
    }
    let (n, l) = it
        .next()
        .ok_or_else(|| err(2, "missing `topic_id:` line"))?;
    let topic_id = match fields(l).collect::<Vec<_>>().as_slice() {
        ["topic_id:", id] => decode_uuid(id)
            .ok_or_else(|| err(n, format!("topic id {id:?} is not a base64 UUID")))?,
        _ => return Err(err(n, format!("expected `topic_id: <uuid>`, got {l:?}"))),
    };
    if topic_id == [0; 16] {
        return Err(err(n, "topic id is the zero UUID"));
    }
    Ok(PartitionMetadata { version, topic_id })
}

/// Validates `partition.metadata`.
pub fn check_partition_metadata(
    file: &Arc<Path>,
    bytes: &[u8],
    out: &mut Vec<Finding>,
) -> Option<PartitionMetadata> {
    match parse_partition_metadata(bytes) {
        Ok(m) => Some(m),
        Err(e) => {
            out.push(Finding::error(
                Kind::PartitionMetadataInvalid,
                file,
                format!("partition.metadata: {e}"),
            ));
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
pub fn parse_offset_checkpoint(
    bytes: &[u8],
) -> Result<Vec<OffsetCheckpointEntry>, CheckpointError> {
    parse_framed(bytes, 0, |n, line| {
        let f: Vec<&str> = fields(line).collect();
        match f.as_slice() {
            [t, p, o] if !t.is_empty() => Ok(OffsetCheckpointEntry {
                topic: t.to_string(),
                partition: p
                    .parse()
                    .map_err(|_| err(n, format!("partition {p:?} is not an int32")))?,
                offset: o
                    .parse()
                    .map_err(|_| err(n, format!("offset {o:?} is not an int64")))?,
                line: n,
            }),
            _ => Err(err(
                n,
                format!("expected `<topic> <partition> <offset>`, got {line:?}"),
            )),
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
            out.push(Finding::error(
                Kind::CheckpointInvalid,
                file,
                format!("offset checkpoint: {e}"),
            ));
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
        LeaderEpochCheck {
            file,
            entries,
            segment: None,
            max_epoch: None,
            prev_epoch: None,
            hint: 0,
            reported: None,
        }
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
            let msg = format!(
                "batch at offset {} has leader epoch {epoch}, below the earlier {max}",
                b.base_offset
            );
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::{file_id, Severity};
    use crate::index::test_support::{batch, Rng};

    fn f(name: &str) -> Arc<Path> {
        file_id(format!("p-0/{name}"))
    }

    #[test]
    fn leader_epoch_parses() {
        assert_eq!(
            parse_leader_epoch(b"0\n3\n0 0\n2 17\n5 40\n"),
            Ok(vec![(0, 0), (2, 17), (5, 40)])
        );
        assert_eq!(parse_leader_epoch(b"0\r\n1\r\n4 9\r\n"), Ok(vec![(4, 9)]));
        // Kafka reads an empty file, or a version line alone, as no entries.
        assert_eq!(parse_leader_epoch(b""), Ok(vec![]));
        assert_eq!(parse_leader_epoch(b"0\n"), Ok(vec![]));
    }

    #[test]
    fn leader_epoch_invalid() {
        let e = parse_leader_epoch(b"0\n2\n0 0\n").unwrap_err();
        assert_eq!(e.line, 2);
        let e = parse_leader_epoch(b"0\n1\n0 x\n").unwrap_err();
        assert_eq!(e.line, 3);
        let e = parse_leader_epoch(b"1\n0\n").unwrap_err();
        assert_eq!(e.line, 1);
        let e = parse_leader_epoch(b"0\n1\n 0 0\n").unwrap_err();
        assert_eq!(e.line, 3);
        let mut out = Vec::new();
        assert!(
            check_leader_epoch(&f("leader-epoch-checkpoint"), b"0\n1\n1 2 3\n", &mut out).is_none()
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].kind, Kind::LeaderEpochCheckpointInvalid);
        assert!(out[0].message.contains("line 3"), "{}", out[0].message);
        // Unordered: parses, but is reported.
        let mut out = Vec::new();
        let e = check_leader_epoch(
            &f("leader-epoch-checkpoint"),
            b"0\n3\n0 0\n3 10\n2 20\n",
            &mut out,
        );
        assert_eq!(e.map(|e| e.len()), Some(3));
        assert_eq!(out.len(), 1, "{out:#?}");
        assert_eq!(
            (out[0].kind, out[0].offset),
            (Kind::LeaderEpochCheckpointInvalid, Some(20))
        );
        let mut out = Vec::new();
        check_leader_epoch(
            &f("leader-epoch-checkpoint"),
            b"0\n2\n0 10\n1 5\n",
            &mut out,
        );
        assert_eq!(
            (out.len(), out[0].kind),
            (1, Kind::LeaderEpochCheckpointInvalid)
        );
    }

    #[test]
    fn partition_metadata() {
        let m = parse_partition_metadata(b"version: 0\ntopic_id: Fa1tHmowQS2lSyUrEd4jSA").unwrap();
        assert_eq!(m.version, 0);
        assert_eq!(m.topic_id[0], 0x15);
        assert!(
            parse_partition_metadata(b"version: 0\ntopic_id: Fa1tHmowQS2lSyUrEd4jSA==\n").is_ok()
        );
        for (bad, line) in [
            (&b"version: 0\n"[..], 2),
            (b"version: x\ntopic_id: Fa1tHmowQS2lSyUrEd4jSA", 1),
            (b"version: 0\ntopic_id: AAAAAAAAAAAAAAAAAAAAAA", 2),
            (b"version: 0\ntopic_id: short", 2),
            (b"version: 0\ntopic: Fa1tHmowQS2lSyUrEd4jSA", 2),
            (b"", 1),
        ] {
            assert_eq!(
                parse_partition_metadata(bad).map_err(|e| e.line),
                Err(line),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let mut out = Vec::new();
        assert!(
            check_partition_metadata(&f("partition.metadata"), b"topic_id: x", &mut out).is_none()
        );
        assert_eq!(
            (out.len(), out[0].kind),
            (1, Kind::PartitionMetadataInvalid)
        );
    }

    #[test]
    fn offset_checkpoints() {
        let e = parse_offset_checkpoint(b"0\n2\n__consumer_offsets 13 0\nmy-topic 0 42\n").unwrap();
        assert_eq!(
            e[1],
            OffsetCheckpointEntry {
                topic: "my-topic".into(),
                partition: 0,
                offset: 42,
                line: 4
            }
        );
        assert_eq!(parse_offset_checkpoint(b""), Ok(vec![]));
        assert_eq!(parse_offset_checkpoint(b"0\n0\n"), Ok(vec![]));
        assert_eq!(
            parse_offset_checkpoint(b"0\n2\nt 0 1\n").map_err(|e| e.line),
            Err(2)
        );
        assert_eq!(
            parse_offset_checkpoint(b"0\n1\nt x 1\n").map_err(|e| e.line),
            Err(3)
        );
        assert_eq!(
            parse_offset_checkpoint(b"0\n1\nt 0\n").map_err(|e| e.line),
            Err(3)
        );
        let mut out = Vec::new();
        assert!(check_offset_checkpoint(
            &f("replication-offset-checkpoint"),
            b"0\n1\n\n",
            &mut out
        )
        .is_none());
        assert_eq!((out.len(), out[0].kind), (1, Kind::CheckpointInvalid));
    }

    #[test]
    fn kraft_files_are_not_offset_checkpoints() {
        for name in [
            "quorum-state",
            "meta.properties",
            "bootstrap.checkpoint",
            "00000000000000000042-0000000001.checkpoint",
        ] {
            assert!(!is_offset_checkpoint(name), "{name}");
        }
        for name in OFFSET_CHECKPOINT_NAMES {
            assert!(is_offset_checkpoint(name));
        }
        // Fed by mistake, they are rejected rather than misread.
        assert!(
            parse_offset_checkpoint(br#"{"clusterId":"","leaderId":1,"leaderEpoch":25}"#).is_err()
        );
        assert!(parse_offset_checkpoint(b"#\nnode.id=1\nversion=1\n").is_err());
    }

    fn epoch_batch(off: i64, epoch: i32) -> BatchInfo {
        let mut b = batch(100 * off as u64, 100, off, off + 9, 0);
        b.partition_leader_epoch = epoch;
        b
    }

    fn run(entries: Vec<EpochEntry>, batches: &[BatchInfo]) -> Vec<Finding> {
        let mut out = Vec::new();
        let mut c = LeaderEpochCheck::new(f("leader-epoch-checkpoint"), entries);
        c.begin_segment(f("00000000000000000000.log"));
        for b in batches {
            c.on_batch(b, &mut out);
        }
        c.finish(&mut out);
        out
    }

    #[test]
    fn leader_epochs_consistent() {
        let bs = [
            epoch_batch(0, 0),
            epoch_batch(10, 0),
            epoch_batch(20, 2),
            epoch_batch(30, 5),
        ];
        assert!(run(vec![(0, 0), (2, 20), (3, 30), (5, 30)], &bs).is_empty());
        // Retention moved the first entry up to the log start offset; older epochs are gone.
        assert!(run(vec![(2, 15), (5, 30)], &bs).is_empty());
        // Without a checkpoint only regressions are checked; legacy batches are ignored.
        let mut legacy = epoch_batch(40, -1);
        legacy.magic = 1;
        assert!(run(vec![], &[epoch_batch(0, 3), legacy, epoch_batch(50, 4)]).is_empty());
    }

    #[test]
    fn leader_epoch_regression() {
        let bs = [
            epoch_batch(0, 3),
            epoch_batch(10, 2),
            epoch_batch(20, 2),
            epoch_batch(30, 3),
        ];
        let out = run(vec![], &bs);
        assert_eq!(out.len(), 1, "{out:#?}"); // once per run of batches
        assert_eq!(out[0].kind, Kind::LeaderEpochRegression);
        assert_eq!(
            (out[0].position, out[0].offset, out[0].severity),
            (Some(1000), Some(10), Severity::Error)
        );
        assert!(out[0].file.ends_with("00000000000000000000.log"));
    }

    #[test]
    fn leader_epoch_mismatch() {
        // Unknown epoch.
        let out = run(
            vec![(0, 0), (2, 20)],
            &[epoch_batch(0, 0), epoch_batch(10, 1)],
        );
        assert_eq!(out.len(), 1, "{out:#?}");
        assert_eq!(
            (out[0].kind, out[0].position, out[0].offset),
            (Kind::LeaderEpochMismatch, Some(1000), Some(10))
        );
        // Batch at or past the next epoch's start.
        let out = run(
            vec![(0, 0), (2, 10)],
            &[epoch_batch(0, 0), epoch_batch(10, 0)],
        );
        assert_eq!(
            (out.len(), out[0].kind, out[0].offset),
            (1, Kind::LeaderEpochMismatch, Some(10))
        );
        // Batch before its epoch's start.
        let out = run(
            vec![(0, 0), (2, 30)],
            &[epoch_batch(0, 0), epoch_batch(20, 2)],
        );
        assert_eq!(
            (out.len(), out[0].kind, out[0].offset),
            (1, Kind::LeaderEpochMismatch, Some(20))
        );
        // Below the first entry, but with a later epoch than the first.
        let out = run(vec![(2, 30)], &[epoch_batch(20, 3)]);
        assert_eq!(
            (out.len(), out[0].kind, out[0].offset),
            (1, Kind::LeaderEpochMismatch, Some(20))
        );
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = Rng(0x5eed_5eed_5eed_5eed);
        let alphabet = b"0123456789 -\n\r:abcdefghijklmnopqrstuvwxyz_=ABCDEF\xff";
        for _ in 0..3000 {
            let raw = rng.bytes(120);
            let text: Vec<u8> = if rng.one_in(2) {
                raw
            } else {
                raw.iter()
                    .map(|b| alphabet[*b as usize % alphabet.len()])
                    .collect()
            };
            let _ = parse_leader_epoch(&text);
            let _ = parse_offset_checkpoint(&text);
            let _ = parse_partition_metadata(&text);
            let mut out = Vec::new();
            let entries = check_leader_epoch(&f("leader-epoch-checkpoint"), &text, &mut out)
                .unwrap_or_default();
            let mut c = LeaderEpochCheck::new(f("leader-epoch-checkpoint"), entries);
            for _ in 0..rng.next() % 10 {
                let mut b = batch(0, 1, rng.next() as i64, rng.next() as i64, 0);
                b.partition_leader_epoch = (rng.next() % 8) as i32 - 1;
                c.on_batch(&b, &mut out);
            }
            c.finish(&mut out);
            let _ = decode_uuid(&String::from_utf8_lossy(&text));
        }
    }
}
