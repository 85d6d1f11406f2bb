//! `drkit segments dump`: DumpLogSegments' output, line for line, without its failure modes.
//!
//! People already grep DumpLogSegments' text (`isvalid: false`, `baseOffset: ...`), so batch,
//! record and index lines keep its exact wording. Where it aborts or misleads, this dump does not:
//! a corrupt batch is reported and the walk resynchronises to print everything after it; the zero
//! padding of a preallocated index is summarised in one line instead of read as entries.
//! `--format json` gives the same content as JSON Lines (schema in docs/JSON-dump.md).
//!
//! The batch-only path writes each line straight into the `BufWriter` with `write!`, so dumping a
//! multi-gigabyte segment allocates nothing per batch; record decoding reuses one buffer for
//! decompression.

use std::borrow::Cow;
use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use segment_reader::batch::{BatchHeader, LegacyMessage, V2_HEADER_SIZE};
use segment_reader::compression::decompress;
use segment_reader::consumer_offsets as co;
use segment_reader::control::{parse_control_batch, ControlRecord, ControlType};
use segment_reader::finding::file_id;
use segment_reader::records::{Record, RecordIter};
use segment_reader::source::{self, Source};
use segment_reader::walk::{self, Scratch, Visitor, WalkConfig};
use segment_reader::{index, legacy, snapshot, timeindex, txnindex};
use segment_reader::{BatchInfo, Codec, Finding, Kind, Severity};
use serde_json::{json, Map, Value};

use crate::cli::{Decoder, DumpArgs, Format};
use crate::output::{self, Outcome};

/// What the command line asked for, validated once.
#[derive(Debug, Clone, Copy)]
struct Opts {
    records: bool,
    decoder: Option<Decoder>,
    json: bool,
}

/// Reading failures end one file (exit 2, the next file is still dumped); writing failures end
/// the run (a closed pipe silently, anything else loudly).
enum Failure {
    Read(io::Error),
    /// The outcome is what the file showed before output stopped: the walk finishes verifying
    /// after a closed pipe, so `| head` still gets an honest exit code.
    Write(io::Error, Outcome),
}

fn write_err(e: io::Error) -> Failure {
    Failure::Write(e, Outcome::Clean)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileType {
    Log,
    Checkpoint,
    Index,
    TimeIndex,
    TxnIndex,
    Snapshot,
}

impl FileType {
    fn of(path: &Path) -> Option<FileType> {
        match path.extension()?.to_str()? {
            "log" => Some(FileType::Log),
            "checkpoint" => Some(FileType::Checkpoint),
            "index" => Some(FileType::Index),
            "timeindex" => Some(FileType::TimeIndex),
            "txnindex" => Some(FileType::TxnIndex),
            "snapshot" => Some(FileType::Snapshot),
            _ => None,
        }
    }
    fn as_str(self) -> &'static str {
        match self {
            FileType::Log => "log",
            FileType::Checkpoint => "checkpoint",
            FileType::Index => "index",
            FileType::TimeIndex => "timeindex",
            FileType::TxnIndex => "txnindex",
            FileType::Snapshot => "snapshot",
        }
    }
}

pub fn run(args: DumpArgs) -> Outcome {
    let opts = Opts {
        records: args.records || args.decoder.is_some(),
        decoder: args.decoder,
        json: args.format == Format::Json,
    };
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut outcome = Outcome::Clean;
    for path in &args.files {
        match dump_file(&mut out, path, opts) {
            Ok(o) => outcome = outcome.max(o),
            Err(Failure::Read(e)) => {
                // Flush first so the error lands after the lines that came before it.
                if let Err(e) = out.flush() {
                    return write_failed(e, outcome);
                }
                eprintln!("drkit: cannot read {}: {e}", path.display());
                outcome = Outcome::Trouble;
            }
            Err(Failure::Write(e, o)) => return write_failed(e, outcome.max(o)),
        }
    }
    match out.flush() {
        Ok(()) => outcome,
        Err(e) => write_failed(e, outcome),
    }
}

fn write_failed(e: io::Error, outcome: Outcome) -> Outcome {
    if output::is_broken_pipe(&e) {
        outcome
    } else {
        eprintln!("drkit: cannot write output: {e}");
        Outcome::Trouble
    }
}

fn file_name(path: &Path) -> Cow<'_, str> {
    path.file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default()
}

/// The offset in a Kafka file name (`00000000000000000123.log` -> 123), as DumpLogSegments reads
/// it (everything before the first dot).
fn name_offset(path: &Path) -> Option<i64> {
    let name = file_name(path);
    let stem = name.split(['.', '-']).next()?;
    (!stem.is_empty() && stem.bytes().all(|b| b.is_ascii_digit()))
        .then(|| stem.parse().ok())
        .flatten()
}

/// A segment is the active one unless a sibling `.log` starts at a higher offset. Only the active
/// segment may legitimately end in a torn batch or preallocated zeros; anywhere else that is lost
/// data and must count as corruption.
fn is_active_segment(path: &Path) -> bool {
    let (Some(base), Some(dir)) = (name_offset(path), path.parent()) else {
        return true;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return true;
    };
    !entries.flatten().any(|e| {
        let p = e.path();
        p.extension().is_some_and(|x| x == "log") && name_offset(&p).is_some_and(|o| o > base)
    })
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

fn dump_file(out: &mut impl Write, path: &Path, opts: Opts) -> Result<Outcome, Failure> {
    let meta = std::fs::metadata(path).map_err(Failure::Read)?;
    if !meta.is_file() {
        return Err(Failure::Read(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file (dump takes segment, index and snapshot files)",
        )));
    }
    let Some(ft) = FileType::of(path) else {
        eprintln!(
            "drkit: ignoring unknown file {} (not a .log, .checkpoint, .index, .timeindex, .txnindex or .snapshot)",
            path.display()
        );
        return Ok(Outcome::Trouble);
    };
    let w = |r: io::Result<()>| r.map_err(write_err);
    let file_json = json_str(&path.display().to_string());
    if opts.json {
        let base = name_offset(path);
        w(output::line(
            out,
            &json!({
                "type": "file",
                "file": path.display().to_string(),
                "file_type": ft.as_str(),
                "size_bytes": meta.len(),
                "base_offset": base,
            })
            .to_string(),
        ))?;
    } else {
        w(writeln!(out, "Dumping {}", path.display()))?;
    }
    match ft {
        FileType::Log | FileType::Checkpoint => dump_log(out, path, ft, opts, &file_json),
        FileType::Index | FileType::TimeIndex => dump_index(out, path, ft, opts, &file_json),
        FileType::TxnIndex => dump_txn_index(out, path, opts, &file_json),
        FileType::Snapshot => dump_snapshot(out, path, opts, &file_json),
    }
}

/// Java's `OptionalLong.toString`, which DumpLogSegments prints for `deleteHorizonMs`.
struct OptionalLong(Option<i64>);

impl fmt::Display for OptionalLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(v) => write!(f, "OptionalLong[{v}]"),
            None => f.write_str("OptionalLong.empty"),
        }
    }
}

/// A JSON value or `null`, written without building a `serde_json::Value`.
struct JsonOpt<T>(Option<T>);

impl<T: fmt::Display> fmt::Display for JsonOpt<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(v) => v.fmt(f),
            None => f.write_str("null"),
        }
    }
}

/// Kafka's sequence arithmetic (DefaultRecordBatch.incrementSequence): sequences wrap at
/// `i32::MAX` to 0, not to `i32::MIN`.
fn increment_sequence(sequence: i32, increment: i32) -> i32 {
    if sequence == -1 {
        return -1;
    }
    // Java int arithmetic wraps silently; foreign bytes must not make ours panic.
    if sequence > i32::MAX.wrapping_sub(increment) {
        increment
            .wrapping_sub(i32::MAX.wrapping_sub(sequence))
            .wrapping_sub(1)
    } else {
        sequence.wrapping_add(increment)
    }
}

/// DefaultRecordBatch.decrementSequence, for producer snapshots' first sequence.
fn decrement_sequence(sequence: i32, decrement: i32) -> i32 {
    if sequence < decrement {
        i32::MAX
            .wrapping_sub(decrement.wrapping_sub(sequence))
            .wrapping_add(1)
    } else {
        sequence.wrapping_sub(decrement)
    }
}

fn timestamp_type(magic: i8, attributes: i16) -> &'static str {
    if magic == 0 {
        "NoTimestampType"
    } else if attributes & 0x08 != 0 {
        "LogAppendTime"
    } else {
        "CreateTime"
    }
}

fn dump_log(
    out: &mut impl Write,
    path: &Path,
    ft: FileType,
    opts: Opts,
    file_json: &str,
) -> Result<Outcome, Failure> {
    let name = file_name(path);
    let base = name_offset(path);
    if !opts.json {
        let header = match ft {
            FileType::Log => base.map(|b| format!("Log starting offset: {b}")),
            _ if name == "bootstrap.checkpoint" => Some("KRaft bootstrap snapshot".to_string()),
            _ => {
                // <20-digit end offset>-<10-digit epoch>.checkpoint
                let stem = name.strip_suffix(".checkpoint").unwrap_or(&name);
                stem.split_once('-').and_then(|(o, e)| {
                    let (o, e) = (o.parse::<i64>().ok()?, e.parse::<i32>().ok()?);
                    Some(format!("Snapshot end offset: {o}, epoch: {e}"))
                })
            }
        };
        if let Some(h) = header {
            output::line(out, &h).map_err(write_err)?;
        }
    }
    let mut src = Source::stream(path).map_err(Failure::Read)?;
    let len = src.len();
    let id = file_id(path);
    let cfg = WalkConfig {
        tail_may_tear: ft == FileType::Log && is_active_segment(path),
        stop_at: None,
        expected_first_offset: if ft == FileType::Log { base } else { None },
    };
    let mut v = DumpVisitor {
        out,
        opts,
        file_json,
        file: Arc::clone(&id),
        raw: File::open(path).ok(),
        buf: Vec::new(),
        error: None,
        outcome: Outcome::Clean,
    };
    let mut findings = Vec::new();
    let st = walk::walk(
        &mut src,
        &id,
        0,
        cfg,
        &mut v,
        &mut Scratch::default(),
        &mut findings,
    )
    .map_err(Failure::Read)?;
    v.findings(&mut findings);
    if let Some(e) = v.error.take() {
        return Err(Failure::Write(e, v.outcome));
    }
    if !opts.json && len > st.valid_end {
        // DumpLogSegments' closing line, kept for scripts that look for it.
        writeln!(
            v.out,
            "Found {} invalid bytes at the end of {name}",
            len - st.valid_end
        )
        .map_err(write_err)?;
    }
    Ok(v.outcome)
}

/// Prints each batch the walk hands over (and, with `--records`, its records), and each corrupt
/// range it skipped. Write errors are kept and stop further output; the walk itself cannot be
/// interrupted, so it finishes verifying without printing.
struct DumpVisitor<'o, W: Write> {
    out: &'o mut W,
    opts: Opts,
    file_json: &'o str,
    file: Arc<Path>,
    /// A second handle for reading the header of a batch whose CRC failed (the walk owns the
    /// source); only used on corruption.
    raw: Option<File>,
    /// Decompressed records, reused across batches.
    buf: Vec<u8>,
    error: Option<io::Error>,
    outcome: Outcome,
}

impl<W: Write> Visitor for DumpVisitor<'_, W> {
    fn on_batch(&mut self, info: &BatchInfo, bytes: &[u8], out: &mut Vec<Finding>) {
        // Findings the walk made since the last batch lie before this one: print them first.
        self.findings(out);
        if self.error.is_some() {
            return;
        }
        if let Err(e) = self.batch(info, bytes) {
            self.error = Some(e);
        }
    }
}

impl<W: Write> DumpVisitor<'_, W> {
    fn findings(&mut self, found: &mut Vec<Finding>) {
        for f in found.drain(..) {
            if f.severity == Severity::Error {
                self.outcome = self.outcome.max(Outcome::Problems);
            }
            if self.error.is_some() {
                continue;
            }
            let r = self.corrupt_batch_line(&f).and_then(|_| {
                skipped_line(
                    self.out,
                    self.opts,
                    self.file_json,
                    &f,
                    if f.end_position.is_some() {
                        "skipped"
                    } else {
                        "problem"
                    },
                )
            });
            if let Err(e) = r {
                self.error = Some(e);
            }
        }
    }

    /// DumpLogSegments prints a batch whose CRC fails with `isvalid: false` and carries on; the
    /// walk skips it, so its line is rebuilt here from the header on disk.
    fn corrupt_batch_line(&mut self, f: &Finding) -> io::Result<()> {
        let (Kind::CrcMismatch, Some(start), Some(end), Some(file)) =
            (f.kind, f.position, f.end_position, self.raw.as_ref())
        else {
            return Ok(());
        };
        let mut head = [0u8; V2_HEADER_SIZE];
        let n = read_up_to(file, &mut head, start)?;
        let head = &head[..n];
        match head.get(16).map(|m| *m as i8) {
            Some(2) => {
                let Some(h) = BatchHeader::parse(head) else {
                    return Ok(());
                };
                if start + h.total_size() > end {
                    return Ok(());
                }
                self.v2_batch_line(&h, start, h.total_size(), false)
            }
            Some(m @ (0 | 1)) => {
                let size = segment_reader::be::i32(head, 8).unwrap_or(0).max(0) as u64 + 12;
                if start + size > end || n < 18 {
                    return Ok(());
                }
                let offset = segment_reader::be::i64(head, 0).unwrap_or(-1);
                let crc = segment_reader::be::u32(head, 12).unwrap_or(0);
                let attributes = head.get(17).map_or(0, |a| *a as i8);
                let ts = if m == 1 {
                    segment_reader::be::i64(head, 18).unwrap_or(-1)
                } else {
                    -1
                };
                self.legacy_batch_line(None, offset, start, size, m, attributes, ts, crc, false)
            }
            _ => Ok(()),
        }
    }

    fn batch(&mut self, info: &BatchInfo, bytes: &[u8]) -> io::Result<()> {
        if info.magic >= 2 {
            let Some(h) = BatchHeader::parse(bytes) else {
                return Ok(());
            };
            self.v2_batch_line(&h, info.position, info.size, true)?;
            if self.opts.records {
                self.v2_records(info, &h, bytes)?;
            }
        } else {
            let Ok(m) = LegacyMessage::parse(bytes) else {
                return Ok(());
            };
            let ts = m.timestamp.unwrap_or(-1);
            self.legacy_batch_line(
                Some((info.base_offset, info.records_count)),
                m.offset,
                info.position,
                info.size,
                m.magic,
                m.attributes,
                ts,
                m.crc,
                true,
            )?;
            if self.opts.records {
                self.legacy_records(info, &m)?;
            }
        }
        Ok(())
    }

    fn v2_batch_line(
        &mut self,
        h: &BatchHeader,
        position: u64,
        size: u64,
        valid: bool,
    ) -> io::Result<()> {
        let last_sequence = increment_sequence(h.base_sequence, h.last_offset_delta);
        let delete_horizon = h.has_delete_horizon().then_some(h.base_timestamp);
        let ts_type = timestamp_type(h.magic, h.attributes);
        if self.opts.json {
            writeln!(
                self.out,
                "{{\"type\":\"batch\",\"file\":{},\"position\":{position},\"size_bytes\":{size},\"magic\":{},\
                 \"base_offset\":{},\"last_offset\":{},\"count\":{},\"base_sequence\":{},\"last_sequence\":{},\
                 \"producer_id\":{},\"producer_epoch\":{},\"partition_leader_epoch\":{},\
                 \"is_transactional\":{},\"is_control\":{},\"delete_horizon_ms\":{},\
                 \"timestamp_type\":\"{ts_type}\",\"base_timestamp_ms\":{},\"max_timestamp_ms\":{},\
                 \"compression\":\"{}\",\"crc\":{},\"is_valid\":{valid}}}",
                self.file_json,
                h.magic,
                h.base_offset,
                h.last_offset(),
                h.records_count,
                h.base_sequence,
                last_sequence,
                h.producer_id,
                h.producer_epoch,
                h.partition_leader_epoch,
                h.is_transactional(),
                h.is_control(),
                JsonOpt(delete_horizon),
                h.base_timestamp,
                h.max_timestamp,
                h.codec().name(),
                h.crc,
            )
        } else {
            writeln!(
                self.out,
                "baseOffset: {} lastOffset: {} count: {} baseSequence: {} lastSequence: {} \
                 producerId: {} producerEpoch: {} partitionLeaderEpoch: {} isTransactional: {} \
                 isControl: {} deleteHorizonMs: {} position: {position} {ts_type}: {} size: {size} \
                 magic: {} compresscodec: {} crc: {} isvalid: {valid}",
                h.base_offset,
                h.last_offset(),
                h.records_count,
                h.base_sequence,
                last_sequence,
                h.producer_id,
                h.producer_epoch,
                h.partition_leader_epoch,
                h.is_transactional(),
                h.is_control(),
                OptionalLong(delete_horizon),
                h.max_timestamp,
                h.magic,
                h.codec().name(),
                h.crc,
            )
        }
    }

    /// A legacy message or compressed wrapper. Like DumpLogSegments, `offset` is the message's
    /// own (for a wrapper: its last inner offset).
    #[allow(clippy::too_many_arguments)]
    fn legacy_batch_line(
        &mut self,
        first_and_count: Option<(i64, u32)>,
        offset: i64,
        position: u64,
        size: u64,
        magic: i8,
        attributes: i8,
        timestamp: i64,
        crc: u32,
        valid: bool,
    ) -> io::Result<()> {
        let ts_type = timestamp_type(magic, attributes as i16);
        let codec = Codec::from_attributes(attributes as i16).name();
        if self.opts.json {
            let base = JsonOpt(first_and_count.map(|f| f.0));
            let count = JsonOpt(first_and_count.map(|f| f.1));
            writeln!(
                self.out,
                "{{\"type\":\"batch\",\"file\":{},\"position\":{position},\"size_bytes\":{size},\"magic\":{magic},\
                 \"base_offset\":{base},\"last_offset\":{offset},\"count\":{count},\"base_sequence\":null,\"last_sequence\":null,\
                 \"producer_id\":null,\"producer_epoch\":null,\"partition_leader_epoch\":null,\
                 \"is_transactional\":false,\"is_control\":false,\"delete_horizon_ms\":null,\
                 \"timestamp_type\":\"{ts_type}\",\"base_timestamp_ms\":null,\"max_timestamp_ms\":{timestamp},\
                 \"compression\":\"{codec}\",\"crc\":{crc},\"is_valid\":{valid}}}",
                self.file_json,
            )
        } else {
            writeln!(
                self.out,
                "offset: {offset} position: {position} {ts_type}: {timestamp} size: {size} magic: {magic} \
                 compresscodec: {codec} crc: {crc} isvalid: {valid}"
            )
        }
    }

    fn problem(&mut self, f: Finding) -> io::Result<()> {
        if f.severity == Severity::Error {
            self.outcome = self.outcome.max(Outcome::Problems);
        }
        let ty = if f.end_position.is_some() {
            "skipped"
        } else {
            "problem"
        };
        skipped_line(self.out, self.opts, self.file_json, &f, ty)
    }

    fn finding(&self, kind: Kind, info: &BatchInfo, message: String) -> Finding {
        Finding::error(kind, &self.file, message)
            .range(info.position, info.end())
            .offsets(info.base_offset, info.last_offset)
    }

    fn v2_records(&mut self, info: &BatchInfo, h: &BatchHeader, bytes: &[u8]) -> io::Result<()> {
        let raw = bytes.get(V2_HEADER_SIZE..).unwrap_or(&[]);
        let mut buf = std::mem::take(&mut self.buf);
        let result = self.v2_records_in(info, h, raw, &mut buf);
        self.buf = buf;
        result
    }

    fn v2_records_in(
        &mut self,
        info: &BatchInfo,
        h: &BatchHeader,
        raw: &[u8],
        buf: &mut Vec<u8>,
    ) -> io::Result<()> {
        let section: &[u8] = if h.codec() == Codec::None {
            raw
        } else {
            if let Err(e) = decompress(h.codec(), raw, buf, false) {
                let f = self.finding(
                    Kind::DecompressionFailed,
                    info,
                    format!("records not dumped: {e}"),
                );
                return self.problem(f);
            }
            buf
        };
        let control = if h.is_control() {
            Some(parse_control_batch(section, h.records_count))
        } else {
            None
        };
        let ts_type = timestamp_type(h.magic, h.attributes);
        for r in RecordIter::new(section) {
            match r {
                Ok(r) => {
                    let offset = h.base_offset.saturating_add(r.offset_delta as i64);
                    let ts = if h.is_log_append_time() {
                        h.max_timestamp
                    } else {
                        h.base_timestamp.saturating_add(r.timestamp_delta)
                    };
                    let rec = RecordLine {
                        batch_position: info.position,
                        offset,
                        ts_type,
                        timestamp: ts,
                        key: r.key,
                        value: r.value,
                        sequence: Some(increment_sequence(h.base_sequence, r.offset_delta)),
                        record: Some(&r),
                        legacy_crc: None,
                        control: control.as_ref().map(|c| c.as_ref().ok().copied()),
                    };
                    self.record_line(&rec)?;
                }
                Err(e) => {
                    let f = self.finding(
                        Kind::RecordMalformed,
                        info,
                        format!("records from here on not dumped: {e}"),
                    );
                    return self.problem(f);
                }
            }
        }
        if let Some(Err(e)) = control {
            let f = self.finding(Kind::ControlRecordMalformed, info, e.to_string());
            self.problem(f)?;
        }
        Ok(())
    }

    fn legacy_records(&mut self, info: &BatchInfo, m: &LegacyMessage<'_>) -> io::Result<()> {
        let ts_type = timestamp_type(m.magic, m.attributes as i16);
        if m.codec() == Codec::None {
            return self.record_line(&RecordLine {
                batch_position: info.position,
                offset: m.offset,
                ts_type,
                timestamp: m.timestamp.unwrap_or(-1),
                key: m.key,
                value: m.value,
                sequence: None,
                record: None,
                legacy_crc: Some(m.crc),
                control: None,
            });
        }
        let mut buf = std::mem::take(&mut self.buf);
        let result = self.legacy_inner(info, m, ts_type, &mut buf);
        self.buf = buf;
        result
    }

    fn legacy_inner(
        &mut self,
        info: &BatchInfo,
        m: &LegacyMessage<'_>,
        ts_type: &'static str,
        buf: &mut Vec<u8>,
    ) -> io::Result<()> {
        let Some(value) = m.value else {
            let f = self.finding(
                Kind::DecompressionFailed,
                info,
                "compressed wrapper has a null value".into(),
            );
            return self.problem(f);
        };
        if let Err(e) = decompress(m.codec(), value, buf, true) {
            let f = self.finding(
                Kind::DecompressionFailed,
                info,
                format!("inner messages not dumped: {e}"),
            );
            return self.problem(f);
        }
        // The walk already reported a wrapper whose offsets do not add up; print the inner
        // messages with their stored offsets then.
        let base = legacy::summarize_inner(m, buf).map_or(0, |s| s.offset_base);
        for item in legacy::inner_messages(buf) {
            match item {
                Ok((_, inner)) => {
                    let ts = match (m.is_log_append_time(), m.timestamp) {
                        (true, Some(wrapper_ts)) => wrapper_ts,
                        _ => inner.timestamp.unwrap_or(-1),
                    };
                    self.record_line(&RecordLine {
                        batch_position: info.position,
                        offset: base.saturating_add(inner.offset),
                        ts_type,
                        timestamp: ts,
                        key: inner.key,
                        value: inner.value,
                        sequence: None,
                        record: None,
                        legacy_crc: Some(inner.crc),
                        control: None,
                    })?;
                }
                Err((pos, e)) => {
                    let f = self.finding(
                        Kind::RecordMalformed,
                        info,
                        format!("inner message at byte {pos} of the decompressed set: {e}; the rest is not dumped"),
                    );
                    return self.problem(f);
                }
            }
        }
        Ok(())
    }

    fn record_line(&mut self, r: &RecordLine<'_>) -> io::Result<()> {
        if self.opts.json {
            let line = record_json(self.file_json, r, self.opts.decoder);
            return output::line(self.out, &line);
        }
        let out = &mut *self.out;
        write!(
            out,
            "| offset: {} {}: {} keySize: {} valueSize: {}",
            r.offset,
            r.ts_type,
            r.timestamp,
            size_of(r.key),
            size_of(r.value)
        )?;
        if let Some(rec) = r.record {
            write!(out, " sequence: {} headerKeys: [", JsonOpt(r.sequence))?;
            for (i, (k, _)) in rec.headers.into_iter().enumerate() {
                if i > 0 {
                    out.write_all(b",")?;
                }
                write!(out, "{}", String::from_utf8_lossy(k))?;
            }
            out.write_all(b"]")?;
        }
        if let Some(crc) = r.legacy_crc {
            // DumpLogSegments' own stray closing brace, kept so its output and ours compare equal.
            write!(out, " isValid: true crc: {crc}}}")?;
        }
        match r.control {
            Some(Some(c)) if c.kind.is_transaction_marker() => write!(
                out,
                " endTxnMarker: {} coordinatorEpoch: {}",
                c.kind.name(),
                c.coordinator_epoch.unwrap_or(-1)
            )?,
            Some(Some(c)) => write!(out, " controlType: {}({})", c.kind.name(), c.kind.as_i16())?,
            Some(None) => write!(out, " controlType: UNKNOWN(-1)")?,
            None => {
                if let Some(d) = self.opts.decoder {
                    let (key, payload) = decode_text(d, r.offset, r.key, r.value);
                    if let Some(k) = key {
                        write!(out, " key: {k}")?;
                    }
                    if let Some(p) = payload {
                        write!(out, " payload: {p}")?;
                    }
                }
            }
        }
        out.write_all(b"\n")
    }
}

fn read_up_to(file: &File, buf: &mut [u8], at: u64) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = file.read_at(&mut buf[filled..], at + filled as u64)?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}

fn size_of(b: Option<&[u8]>) -> i64 {
    b.map_or(-1, |b| b.len() as i64)
}

/// One record as printed: v2 records carry `record` and `sequence`, legacy messages `legacy_crc`.
struct RecordLine<'a> {
    batch_position: u64,
    offset: i64,
    ts_type: &'static str,
    timestamp: i64,
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
    sequence: Option<i32>,
    record: Option<&'a Record<'a>>,
    legacy_crc: Option<u32>,
    /// Control batches: the parsed control record (`None` inside when it does not parse).
    control: Option<Option<ControlRecord>>,
}

fn skipped_line(
    out: &mut impl Write,
    opts: Opts,
    file_json: &str,
    f: &Finding,
    ty: &str,
) -> io::Result<()> {
    if opts.json {
        let mut v = json!({
            "type": ty,
            "file": serde_json::from_str::<Value>(file_json).unwrap_or(Value::Null),
            "severity": f.severity.as_str(),
            "kind": f.kind.as_str(),
            "position": f.position,
            "end_position": f.end_position,
            "size_bytes": f.end_position.zip(f.position).map(|(e, s)| e.saturating_sub(s)),
            "offset": f.offset,
            "last_offset": f.last_offset,
            "message": f.message,
        });
        if ty == "problem" {
            if let Some(m) = v.as_object_mut() {
                m.remove("end_position");
                m.remove("size_bytes");
            }
        }
        return output::line(out, &v.to_string());
    }
    match (f.position, f.end_position) {
        (Some(s), Some(e)) => write!(
            out,
            "Skipped {} bytes at position {s}..{e} ({} {}",
            e.saturating_sub(s),
            f.severity.as_str(),
            f.kind.as_str()
        )?,
        (Some(s), None) => write!(
            out,
            "Problem at position {s} ({} {}",
            f.severity.as_str(),
            f.kind.as_str()
        )?,
        _ => write!(out, "Problem ({} {}", f.severity.as_str(), f.kind.as_str())?,
    }
    if let Some(o) = f.offset {
        write!(out, ", offset {o}")?;
        if let Some(l) = f.last_offset.filter(|l| *l != o) {
            write!(out, "..={l}")?;
        }
    }
    writeln!(out, "): {}", f.message)
}

fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push(char::from(b"0123456789abcdef"[(x >> 4) as usize]));
        s.push(char::from(b"0123456789abcdef"[(x & 15) as usize]));
    }
    s
}

/// Standard base64 with padding, as Kafka's JSON converters write `bytes` fields.
fn base64(b: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(b.len().div_ceil(3) * 4);
    for chunk in b.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &x)| n | ((x as u32) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                s.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// Key and payload text for the record line, as DumpLogSegments' decoders print them
/// (`None` = not printed).
fn decode_text(
    d: Decoder,
    offset: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) -> (Option<String>, Option<String>) {
    match d {
        Decoder::Text => (
            key.map(|k| String::from_utf8_lossy(k).into_owned()),
            value.map(|v| String::from_utf8_lossy(v).into_owned()),
        ),
        Decoder::Hex => (key.map(hex), value.map(hex)),
        Decoder::Json => {
            let j = |b: &[u8]| match serde_json::from_slice::<Value>(b) {
                Ok(v) => v.to_string(),
                Err(_) => String::from_utf8_lossy(b).into_owned(),
            };
            (key.map(j), value.map(j))
        }
        Decoder::Offsets => {
            let Some(key) = key else {
                return (
                    Some(format!(
                        "Error at offset {offset}, skipping. The record has no key."
                    )),
                    None,
                );
            };
            match co::decode(key, value) {
                Ok(r) if matches!(r.key.kind, co::RecordKind::Unknown(_)) => (
                    Some(format!(
                        "Unknown record type {} at offset {offset}, skipping.",
                        r.key.record_type
                    )),
                    None,
                ),
                Ok(r) => {
                    // Kafka's envelope, in Kafka's field order.
                    let k = format!(
                        "{{\"type\":\"{}\",\"data\":{}}}",
                        r.key.record_type,
                        key_json(&r.key, Style::Kafka)
                    );
                    let v = match &r.value {
                        Some(v) => format!(
                            "{{\"version\":\"{}\",\"data\":{}}}",
                            v.version,
                            value_json(r.key.kind, v, Style::Kafka)
                        ),
                        None => "<DELETE>".to_string(),
                    };
                    (Some(k), Some(v))
                }
                Err(e) => (
                    Some(format!("Error at offset {offset}, skipping. {e}")),
                    None,
                ),
            }
        }
    }
}

fn record_json(file_json: &str, r: &RecordLine<'_>, decoder: Option<Decoder>) -> String {
    let mut m = Map::new();
    m.insert("type".into(), json!("record"));
    m.insert(
        "file".into(),
        serde_json::from_str::<Value>(file_json).unwrap_or(Value::Null),
    );
    m.insert("batch_position".into(), json!(r.batch_position));
    m.insert("offset".into(), json!(r.offset));
    m.insert("timestamp_type".into(), json!(r.ts_type));
    m.insert("timestamp_ms".into(), json!(r.timestamp));
    m.insert("key_size_bytes".into(), json!(size_of(r.key)));
    m.insert("value_size_bytes".into(), json!(size_of(r.value)));
    m.insert("sequence".into(), json!(r.sequence));
    m.insert(
        "header_keys".into(),
        match r.record {
            Some(rec) => Value::Array(
                rec.headers
                    .into_iter()
                    .map(|(k, _)| json!(String::from_utf8_lossy(k)))
                    .collect(),
            ),
            None => Value::Null,
        },
    );
    m.insert("crc".into(), json!(r.legacy_crc));
    m.insert(
        "control".into(),
        match r.control {
            Some(Some(c)) => json!({
                "type": c.kind.name(),
                "type_id": c.kind.as_i16(),
                "coordinator_epoch": c.coordinator_epoch,
            }),
            Some(None) => json!({"type": ControlType::Unknown(-1).name(), "type_id": null, "coordinator_epoch": null}),
            None => Value::Null,
        },
    );
    if let (Some(d), None) = (decoder, r.control) {
        let enc = |b: &[u8]| -> Value {
            match d {
                Decoder::Hex => json!(hex(b)),
                Decoder::Json => serde_json::from_slice::<Value>(b)
                    .unwrap_or_else(|_| json!(String::from_utf8_lossy(b))),
                _ => json!(String::from_utf8_lossy(b)),
            }
        };
        if d == Decoder::Offsets {
            let (key, value, tombstone, error) = match r.key.map(|k| co::decode(k, r.value)) {
                Some(Ok(rec)) => (
                    key_json(&rec.key, Style::Snake),
                    rec.value
                        .as_ref()
                        .map_or(Value::Null, |v| value_json(rec.key.kind, v, Style::Snake)),
                    rec.value.is_none(),
                    Value::Null,
                ),
                Some(Err(e)) => (
                    Value::Null,
                    Value::Null,
                    r.value.is_none(),
                    json!(e.to_string()),
                ),
                None => (
                    Value::Null,
                    Value::Null,
                    r.value.is_none(),
                    json!("the record has no key"),
                ),
            };
            m.insert("key".into(), key);
            m.insert("value".into(), value);
            m.insert("tombstone".into(), json!(tombstone));
            m.insert("decode_error".into(), error);
        } else {
            m.insert("key".into(), r.key.map_or(Value::Null, enc));
            m.insert("value".into(), r.value.map_or(Value::Null, enc));
        }
    }
    Value::Object(m).to_string()
}

/// Field naming for decoded `__consumer_offsets` records: Kafka's own JSON (camelCase, what
/// DumpLogSegments' `--offsets-decoder` prints) in text output, snake_case with units in JSON
/// Lines output.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    Kafka,
    Snake,
}

/// An object builder that picks each field's name by style and leaves out fields the record's
/// version does not have in Kafka style (as Kafka's converters do; snake style writes `null`).
struct Obj {
    style: Style,
    map: Map<String, Value>,
}

impl Obj {
    fn new(style: Style) -> Obj {
        Obj {
            style,
            map: Map::new(),
        }
    }
    fn put(mut self, kafka: &str, snake: &str, v: impl Into<Value>) -> Obj {
        let name = if self.style == Style::Kafka {
            kafka
        } else {
            snake
        };
        self.map.insert(name.to_string(), v.into());
        self
    }
    /// A field that exists only in some versions: `present == false` omits it (Kafka style) or
    /// writes `null` (snake style).
    fn versioned(self, present: bool, kafka: &str, snake: &str, v: impl Into<Value>) -> Obj {
        match (present, self.style) {
            (true, _) => self.put(kafka, snake, v),
            (false, Style::Kafka) => self,
            (false, Style::Snake) => self.put(kafka, snake, Value::Null),
        }
    }
    fn done(self) -> Value {
        Value::Object(self.map)
    }
}

fn s(c: &Option<Cow<'_, str>>) -> Value {
    c.as_deref().map_or(Value::Null, |s| json!(s))
}

fn key_json(k: &co::Key<'_>, style: Style) -> Value {
    let mut o = Obj::new(style);
    if style == Style::Snake {
        o = o
            .put("", "record_type", k.record_type)
            .put("", "record_kind", k.kind.as_str());
    }
    let (group_name, member_name) = match k.kind {
        co::RecordKind::OffsetCommit | co::RecordKind::GroupMetadata => ("group", "memberId"),
        _ => ("groupId", "memberId"),
    };
    if k.group.is_some() {
        o = o.put(group_name, "group", s(&k.group));
    }
    if k.topic.is_some() {
        o = o.put("topic", "topic", s(&k.topic));
    }
    if let Some(p) = k.partition {
        o = o.put("partition", "partition", p);
    }
    if k.member_id.is_some() {
        o = o.put(member_name, "member_id", s(&k.member_id));
    }
    if let Some(u) = k.unknown {
        o = o.put("unknownHex", "unknown_hex", hex(u));
    }
    o.done()
}

fn topic_partitions_json(tps: &[(Cow<'_, str>, Vec<i32>)], style: Style) -> Value {
    Value::Array(
        tps.iter()
            .map(|(t, p)| {
                Obj::new(style)
                    .put("topic", "topic", t.as_ref())
                    .put("partitions", "partitions", p.clone())
                    .done()
            })
            .collect(),
    )
}

fn topic_ids_json(tps: &[co::TopicPartitions], style: Style) -> Value {
    Value::Array(
        tps.iter()
            .map(|t| {
                Obj::new(style)
                    .put("topicId", "topic_id", t.topic_id.to_string())
                    .put("partitions", "partitions", t.partitions.clone())
                    .done()
            })
            .collect(),
    )
}

fn opt_bytes(b: Option<&[u8]>) -> Value {
    b.map_or(Value::Null, |b| json!(base64(b)))
}

fn value_json(kind: co::RecordKind, v: &co::Value<'_>, style: Style) -> Value {
    use co::ValueBody as B;
    let o = Obj::new(style);
    let ver = v.version;
    match &v.body {
        B::OffsetCommit(c) => o
            .put("offset", "offset", c.offset)
            .versioned(ver >= 3, "leaderEpoch", "leader_epoch", c.leader_epoch)
            .put("metadata", "metadata", c.metadata.as_ref())
            .put("commitTimestamp", "commit_timestamp_ms", c.commit_timestamp)
            .versioned(
                ver == 1,
                "expireTimestamp",
                "expire_timestamp_ms",
                c.expire_timestamp,
            )
            .done(),
        B::GroupMetadata(g) => {
            let consumer = g.protocol_type == "consumer";
            let members: Vec<Value> = g
                .members
                .iter()
                .map(|m| {
                    let sub = consumer
                        .then(|| co::decode_subscription(m.subscription).ok())
                        .flatten()
                        .map_or_else(
                            || json!(base64(m.subscription)),
                            |sub| {
                                Obj::new(style)
                                    .put(
                                        "topics",
                                        "topics",
                                        sub.topics
                                            .iter()
                                            .map(|t| json!(t.as_ref()))
                                            .collect::<Vec<_>>(),
                                    )
                                    .put("userData", "user_data", opt_bytes(sub.user_data))
                                    .versioned(
                                        sub.version >= 1,
                                        "ownedPartitions",
                                        "owned_partitions",
                                        topic_partitions_json(&sub.owned_partitions, style),
                                    )
                                    .versioned(
                                        sub.version >= 2,
                                        "generationId",
                                        "generation_id",
                                        sub.generation_id,
                                    )
                                    .versioned(
                                        sub.version >= 3,
                                        "rackId",
                                        "rack_id",
                                        s(&sub.rack_id),
                                    )
                                    .done()
                            },
                        );
                    let asg = consumer
                        .then(|| co::decode_assignment(m.assignment).ok())
                        .flatten()
                        .map_or_else(
                            || json!(base64(m.assignment)),
                            |a| {
                                Obj::new(style)
                                    .put(
                                        "assignedPartitions",
                                        "assigned_partitions",
                                        topic_partitions_json(&a.assigned_partitions, style),
                                    )
                                    .put("userData", "user_data", opt_bytes(a.user_data))
                                    .done()
                            },
                        );
                    Obj::new(style)
                        .put("memberId", "member_id", m.member_id.as_ref())
                        .versioned(
                            ver >= 3,
                            "groupInstanceId",
                            "group_instance_id",
                            s(&m.group_instance_id),
                        )
                        .put("clientId", "client_id", m.client_id.as_ref())
                        .put("clientHost", "client_host", m.client_host.as_ref())
                        .versioned(
                            ver >= 1,
                            "rebalanceTimeout",
                            "rebalance_timeout_ms",
                            m.rebalance_timeout_ms,
                        )
                        .put("sessionTimeout", "session_timeout_ms", m.session_timeout_ms)
                        .put("subscription", "subscription", sub)
                        .put("assignment", "assignment", asg)
                        .done()
                })
                .collect();
            o.put("protocolType", "protocol_type", g.protocol_type.as_ref())
                .put("generation", "generation", g.generation)
                .put("protocol", "protocol", s(&g.protocol))
                .put("leader", "leader", s(&g.leader))
                .versioned(
                    ver >= 2,
                    "currentStateTimestamp",
                    "current_state_timestamp_ms",
                    g.current_state_timestamp,
                )
                .put("members", "members", members)
                .done()
        }
        B::Epoch(e) => match kind {
            co::RecordKind::ConsumerGroupTargetAssignmentMetadata
            | co::RecordKind::ShareGroupTargetAssignmentMetadata => {
                o.put("assignmentEpoch", "assignment_epoch", *e).done()
            }
            _ => o.put("epoch", "epoch", *e).done(),
        },
        B::PartitionMetadata(topics) => o
            .put(
                "topics",
                "topics",
                topics
                    .iter()
                    .map(|t| {
                        Obj::new(style)
                            .put("topicId", "topic_id", t.topic_id.to_string())
                            .put("topicName", "topic_name", t.topic_name.as_ref())
                            .put("numPartitions", "num_partitions", t.num_partitions)
                            .put(
                                "partitionMetadata",
                                "partition_racks",
                                t.partition_racks
                                    .iter()
                                    .map(|p| {
                                        Obj::new(style)
                                            .put("partition", "partition", p.partition)
                                            .put(
                                                "racks",
                                                "racks",
                                                p.racks
                                                    .iter()
                                                    .map(|r| json!(r.as_ref()))
                                                    .collect::<Vec<_>>(),
                                            )
                                            .done()
                                    })
                                    .collect::<Vec<_>>(),
                            )
                            .done()
                    })
                    .collect::<Vec<_>>(),
            )
            .done(),
        B::MemberMetadata(m) => {
            let consumer = kind == co::RecordKind::ConsumerGroupMemberMetadata;
            let classic = m.classic.as_ref().map_or(Value::Null, |c| {
                Obj::new(style)
                    .put(
                        "sessionTimeoutMs",
                        "session_timeout_ms",
                        c.session_timeout_ms,
                    )
                    .put(
                        "supportedProtocols",
                        "supported_protocols",
                        c.supported_protocols
                            .iter()
                            .map(|(n, md)| {
                                Obj::new(style)
                                    .put("name", "name", n.as_ref())
                                    .put("metadata", "metadata", base64(md))
                                    .done()
                            })
                            .collect::<Vec<_>>(),
                    )
                    .done()
            });
            o.versioned(consumer, "instanceId", "instance_id", s(&m.instance_id))
                .put("rackId", "rack_id", s(&m.rack_id))
                .put("clientId", "client_id", m.client_id.as_ref())
                .put("clientHost", "client_host", m.client_host.as_ref())
                .put(
                    "subscribedTopicNames",
                    "subscribed_topic_names",
                    m.subscribed_topic_names
                        .iter()
                        .map(|t| json!(t.as_ref()))
                        .collect::<Vec<_>>(),
                )
                .versioned(
                    consumer,
                    "subscribedTopicRegex",
                    "subscribed_topic_regex",
                    s(&m.subscribed_topic_regex),
                )
                .versioned(
                    consumer,
                    "rebalanceTimeoutMs",
                    "rebalance_timeout_ms",
                    m.rebalance_timeout_ms,
                )
                .versioned(
                    consumer,
                    "serverAssignor",
                    "server_assignor",
                    s(&m.server_assignor),
                )
                .versioned(
                    m.classic.is_some(),
                    "classicMemberMetadata",
                    "classic_member_metadata",
                    classic,
                )
                .done()
        }
        B::TargetAssignment(tps) => o
            .put(
                "topicPartitions",
                "topic_partitions",
                topic_ids_json(tps, style),
            )
            .done(),
        B::CurrentAssignment(a) => o
            .put("memberEpoch", "member_epoch", a.member_epoch)
            .put(
                "previousMemberEpoch",
                "previous_member_epoch",
                a.previous_member_epoch,
            )
            .put("state", "state", a.state)
            .put(
                "assignedPartitions",
                "assigned_partitions",
                topic_ids_json(&a.assigned_partitions, style),
            )
            .versioned(
                kind == co::RecordKind::ConsumerGroupCurrentMemberAssignment,
                "partitionsPendingRevocation",
                "partitions_pending_revocation",
                topic_ids_json(&a.partitions_pending_revocation, style),
            )
            .done(),
        B::ShareGroupStatePartitionMetadata(m) => o
            .put(
                "initializedTopics",
                "initialized_topics",
                m.initialized_topics
                    .iter()
                    .map(|(id, name, parts)| {
                        Obj::new(style)
                            .put("topicId", "topic_id", id.to_string())
                            .put("topicName", "topic_name", name.as_ref())
                            .put("partitions", "partitions", parts.clone())
                            .done()
                    })
                    .collect::<Vec<_>>(),
            )
            .put(
                "deletingTopics",
                "deleting_topics",
                m.deleting_topics
                    .iter()
                    .map(|(id, name)| {
                        Obj::new(style)
                            .put("topicId", "topic_id", id.to_string())
                            .put("topicName", "topic_name", name.as_ref())
                            .done()
                    })
                    .collect::<Vec<_>>(),
            )
            .done(),
        B::Unknown(b) => o.put("unknownHex", "unknown_hex", hex(b)).done(),
    }
}

fn dump_index(
    out: &mut impl Write,
    path: &Path,
    ft: FileType,
    opts: Opts,
    file_json: &str,
) -> Result<Outcome, Failure> {
    let bytes = source::read_small(path).map_err(Failure::Read)?;
    let base = name_offset(path).unwrap_or(0);
    let (entry_size, size_kind) = if ft == FileType::Index {
        (index::ENTRY_SIZE, Kind::IndexSize)
    } else {
        (timeindex::ENTRY_SIZE, Kind::TimeIndexSize)
    };
    let whole = bytes.len() / entry_size * entry_size;
    let real = index::real_len(&bytes, entry_size);
    let w = |r: io::Result<()>| r.map_err(write_err);
    let mut outcome = Outcome::Clean;
    if whole == 0 && !opts.json {
        w(writeln!(out, "{} is empty.", path.display()))?;
    }
    let entries = bytes.get(..real).unwrap_or(&[]);
    if ft == FileType::Index {
        for (pos, e) in index::entries(entries) {
            let offset = e.offset(base);
            w(if opts.json {
                writeln!(
                    out,
                    "{{\"type\":\"index_entry\",\"file\":{file_json},\"position\":{pos},\"offset\":{offset},\
                     \"relative_offset\":{},\"log_position\":{}}}",
                    e.relative_offset, e.position
                )
            } else {
                writeln!(out, "offset: {offset} position: {}", e.position)
            })?;
        }
    } else {
        for (pos, e) in timeindex::entries(entries) {
            let offset = e.offset(base);
            w(if opts.json {
                writeln!(
                    out,
                    "{{\"type\":\"timeindex_entry\",\"file\":{file_json},\"position\":{pos},\
                     \"timestamp_ms\":{},\"offset\":{offset},\"relative_offset\":{}}}",
                    e.timestamp, e.relative_offset
                )
            } else {
                writeln!(out, "timestamp: {} offset: {offset}", e.timestamp)
            })?;
        }
    }
    let id = file_id(path);
    if whole > real {
        let n = (whole - real) / entry_size;
        let f = Finding::info(
            Kind::IndexPreallocated,
            &id,
            format!("{n} zero padding entries of a preallocated index not shown"),
        )
        .range(real as u64, whole as u64);
        w(skipped_line(out, opts, file_json, &f, "skipped"))?;
    }
    if bytes.len() > whole {
        let f = Finding::error(
            size_kind,
            &id,
            format!(
                "{} trailing bytes are not a whole {entry_size}-byte entry",
                bytes.len() - whole
            ),
        )
        .range(whole as u64, bytes.len() as u64);
        outcome = Outcome::Problems;
        w(skipped_line(out, opts, file_json, &f, "skipped"))?;
    }
    Ok(outcome)
}

fn dump_txn_index(
    out: &mut impl Write,
    path: &Path,
    opts: Opts,
    file_json: &str,
) -> Result<Outcome, Failure> {
    let bytes = source::read_small(path).map_err(Failure::Read)?;
    let w = |r: io::Result<()>| r.map_err(write_err);
    for (pos, t) in txnindex::entries(&bytes) {
        w(if opts.json {
            writeln!(
                out,
                "{{\"type\":\"txn_entry\",\"file\":{file_json},\"position\":{pos},\"version\":{},\
                 \"producer_id\":{},\"first_offset\":{},\"last_offset\":{},\"last_stable_offset\":{}}}",
                t.version, t.producer_id, t.first_offset, t.last_offset, t.last_stable_offset
            )
        } else {
            writeln!(
                out,
                "version: {} producerId: {} firstOffset: {} lastOffset: {} lastStableOffset: {}",
                t.version, t.producer_id, t.first_offset, t.last_offset, t.last_stable_offset
            )
        })?;
    }
    let whole = bytes.len() / txnindex::ENTRY_SIZE * txnindex::ENTRY_SIZE;
    if bytes.len() > whole {
        // Kafka ignores a partial last entry, so this is a warning, not corruption.
        let f = Finding::warning(
            Kind::TxnIndexSize,
            &file_id(path),
            format!(
                "{} trailing bytes are not a whole {}-byte entry (Kafka ignores them)",
                bytes.len() - whole,
                txnindex::ENTRY_SIZE
            ),
        )
        .range(whole as u64, bytes.len() as u64);
        w(skipped_line(out, opts, file_json, &f, "skipped"))?;
    }
    Ok(Outcome::Clean)
}

fn dump_snapshot(
    out: &mut impl Write,
    path: &Path,
    opts: Opts,
    file_json: &str,
) -> Result<Outcome, Failure> {
    let bytes = source::read_small(path).map_err(Failure::Read)?;
    let w = |r: io::Result<()>| r.map_err(write_err);
    let mut findings = Vec::new();
    snapshot::check_snapshot(&file_id(path), &bytes, &mut findings);
    let mut outcome = Outcome::Clean;
    // Kafka refuses a snapshot that fails its checks and prints nothing else; the entries are
    // still shown here (after the problem), because after a disaster they may be all there is.
    for f in &findings {
        if f.severity == Severity::Error {
            outcome = Outcome::Problems;
        }
        let ty = if f.end_position.is_some() {
            "skipped"
        } else {
            "problem"
        };
        w(skipped_line(out, opts, file_json, f, ty))?;
    }
    for (pos, e) in snapshot::entries(&bytes) {
        let has_batch = e.last_offset >= 0;
        let txn = (e.current_txn_first_offset >= 0).then_some(e.current_txn_first_offset);
        let first_seq = decrement_sequence(e.last_sequence, e.offset_delta);
        w(if opts.json {
            let b = |v: i64| JsonOpt(has_batch.then_some(v));
            writeln!(
                out,
                "{{\"type\":\"snapshot_entry\",\"file\":{file_json},\"position\":{pos},\"producer_id\":{},\
                 \"producer_epoch\":{},\"coordinator_epoch\":{},\"current_txn_first_offset\":{},\
                 \"last_timestamp_ms\":{},\"first_sequence\":{},\"last_sequence\":{},\"last_offset\":{},\
                 \"offset_delta\":{},\"timestamp_ms\":{}}}",
                e.producer_id,
                e.epoch,
                e.coordinator_epoch,
                JsonOpt(txn),
                e.timestamp,
                b(first_seq as i64),
                b(e.last_sequence as i64),
                b(e.last_offset),
                b(e.offset_delta as i64),
                b(e.timestamp),
            )
        } else {
            // DumpLogSegments' wording, trailing space included when there is no batch metadata.
            write!(
                out,
                "producerId: {} producerEpoch: {} coordinatorEpoch: {} currentTxnFirstOffset: {} \
                 lastTimestamp: {} ",
                e.producer_id,
                e.epoch,
                e.coordinator_epoch,
                OptionalLong(txn),
                e.timestamp
            )
            .and_then(|_| {
                if has_batch {
                    write!(
                        out,
                        "firstSequence: {first_seq} lastSequence: {} lastOffset: {} offsetDelta: {} \
                         timestamp: {}",
                        e.last_sequence, e.last_offset, e.offset_delta, e.timestamp
                    )
                } else {
                    Ok(())
                }
            })
            .and_then(|_| writeln!(out))
        })?;
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_wrap_like_kafka() {
        assert_eq!(increment_sequence(-1, 5), -1);
        assert_eq!(increment_sequence(10, 5), 15);
        assert_eq!(increment_sequence(i32::MAX - 1, 3), 1);
        assert_eq!(decrement_sequence(15, 5), 10);
        assert_eq!(decrement_sequence(1, 3), i32::MAX - 1);
        // Foreign values wrap as Java's ints do instead of panicking.
        let _ = increment_sequence(5, i32::MIN);
        let _ = increment_sequence(i32::MIN, i32::MAX);
        let _ = decrement_sequence(i32::MIN, i32::MAX);
        let _ = decrement_sequence(i32::MAX, i32::MIN);
    }

    #[test]
    fn encodings() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(hex(&[0, 0xab, 0x10]), "00ab10");
        assert_eq!(OptionalLong(None).to_string(), "OptionalLong.empty");
        assert_eq!(OptionalLong(Some(7)).to_string(), "OptionalLong[7]");
    }

    #[test]
    fn names() {
        assert_eq!(
            name_offset(Path::new("/x/00000000000000000123.log")),
            Some(123)
        );
        assert_eq!(
            name_offset(Path::new("00000000000000000100-0000000002.checkpoint")),
            Some(100)
        );
        assert_eq!(name_offset(Path::new("bootstrap.checkpoint")), None);
        assert_eq!(
            FileType::of(Path::new("a.timeindex")),
            Some(FileType::TimeIndex)
        );
        assert_eq!(FileType::of(Path::new("leader-epoch-checkpoint")), None);
    }
}
