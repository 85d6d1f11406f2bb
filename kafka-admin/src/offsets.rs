//! Consumer-group offset targets, as pure functions over what the broker said.
//!
//! A reset is decided here, partition by partition, from the committed offset and the log range
//! the broker reported: no I/O, so the arithmetic (clamping, shifts, the time look-up fallback) is
//! tested against Apache Kafka's documented behaviour (`kafka-consumer-groups.sh
//! --reset-offsets`) without a broker. Where drkit deliberately differs from Kafka — a time with no
//! record after it, a `--to-current` partition with no committed offset — the difference is in
//! [`Note`] and docs/OFFSETS.md.
//!
//! Also here: the text formats a reset reads and writes (Kafka's reset CSV, the snapshot drkit
//! writes before every commit, the `segments verify` report `--from-scan` reads), and the
//! duration/date-time forms of `--by-duration` and `--to-datetime`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeDelta};
use serde::{Deserialize, Serialize};

/// One partition of one topic, ordered by topic then partition (the order of every report).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<String>, partition: i32) -> TopicPartition {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

impl fmt::Display for TopicPartition {
    /// Kafka's own spelling of a partition in messages: `topic-3`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// What the broker said about one partition before the reset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionState {
    pub tp: TopicPartition,
    /// The group's committed offset; `None` when the group has none for this partition.
    pub committed: Option<i64>,
    /// Log start offset (the low watermark).
    pub log_start: i64,
    /// Log end offset (the high watermark: the offset the next record will get).
    pub log_end: i64,
}

/// What a partition should be moved to, before it is checked against the log range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Want {
    Earliest,
    Latest,
    /// The committed offset itself (re-commits it; partitions without one are left out).
    Current,
    /// An exact offset (`--to-offset`, `--from-file`, a snapshot being restored).
    Offset(i64),
    /// The committed offset plus this (negative: back).
    ShiftBy(i64),
    /// The first offset whose timestamp is at or after `at_ms`, as the broker's time index
    /// answered (`found: None`: no record at or after that time).
    Time {
        at_ms: i64,
        found: Option<i64>,
    },
    /// Back to the first offset an incident lost or damaged (`--from-scan`), never forward.
    BackTo {
        offset: i64,
        kind: String,
    },
    /// No target for this partition; the note says why.
    Keep(Note),
}

/// `--missing-time`: what a time with no record at or after it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingTime {
    /// Refuse the whole reset, naming the partition (drkit's default).
    Fail,
    /// Move to the log end, as Kafka does (with a warning).
    Latest,
}

/// Why a partition's target is what it is. Stable `kind` names, documented in docs/OFFSETS.md.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Note {
    /// The requested offset was below the log start: moved up to it.
    ClampedToLogStart { requested: i64 },
    /// The requested offset was above the log end: moved down to it.
    ClampedToLogEnd { requested: i64 },
    /// No committed offset: `--to-current` and `--from-scan` leave the partition as it is.
    NoCommittedOffset,
    /// No record at or after the time: moved to the log end (`--missing-time latest`).
    NoRecordAfterTime { at_ms: i64 },
    /// `--from-scan`: the first lost or damaged offset the report names.
    FirstDamaged { offset: i64, finding: String },
    /// `--from-scan`: the committed offset is already at or before the damage: left as is.
    AlreadyBeforeDamage { offset: i64 },
    /// `--from-scan`: the report names no lost or damaged offset in this partition.
    NoDamageInScan,
    /// `restore`: the snapshot says the group had no offset here, and one offset cannot be
    /// deleted without OffsetDelete: the current one stays.
    NoOffsetInSnapshot,
    /// The target equals the committed offset.
    Unchanged,
}

impl Note {
    /// A sentence for people (the text table's note column and stderr warnings).
    pub fn message(&self) -> String {
        match self {
            Note::ClampedToLogStart { requested } => {
                format!("requested {requested} is below the log start: clamped")
            }
            Note::ClampedToLogEnd { requested } => {
                format!("requested {requested} is above the log end: clamped")
            }
            Note::NoCommittedOffset => "no committed offset: left as is".to_string(),
            Note::NoRecordAfterTime { at_ms } => {
                format!("no record at or after {}: log end", format_ms(*at_ms))
            }
            Note::FirstDamaged { offset, finding } => {
                format!("first lost or damaged offset {offset} ({finding})")
            }
            Note::AlreadyBeforeDamage { offset } => {
                format!(
                    "committed offset is already at or before the damage at {offset}: left as is"
                )
            }
            Note::NoDamageInScan => "no lost or damaged offset in the scan: left as is".to_string(),
            Note::NoOffsetInSnapshot => "had no committed offset before; it cannot be deleted \
                 without OffsetDelete: left as is"
                .to_string(),
            Note::Unchanged => "unchanged".to_string(),
        }
    }

    /// Clamps are the warnings the issue asks for: the user asked for something else.
    pub fn is_warning(&self) -> bool {
        matches!(
            self,
            Note::ClampedToLogStart { .. }
                | Note::ClampedToLogEnd { .. }
                | Note::NoRecordAfterTime { .. }
                | Note::NoOffsetInSnapshot
        )
    }
}

/// One partition of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub tp: TopicPartition,
    pub current: Option<i64>,
    /// `None`: the partition is left out of the commit.
    pub target: Option<i64>,
    pub log_start: i64,
    pub log_end: i64,
    pub notes: Vec<Note>,
}

impl Step {
    /// Whether committing this step changes the group's offset.
    pub fn moves(&self) -> bool {
        self.target.is_some() && self.target != self.current
    }
}

/// A partition the plan cannot be made for: the whole reset is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("{tp}: no record at or after {} (use --missing-time latest to move to the log end)", format_ms(*at_ms))]
    NoRecordAfterTime { tp: TopicPartition, at_ms: i64 },
    #[error("{tp}: no committed offset to shift from")]
    NothingToShift { tp: TopicPartition },
    #[error("{tp}: the broker reported log start {log_start} above log end {log_end}")]
    BadLogRange {
        tp: TopicPartition,
        log_start: i64,
        log_end: i64,
    },
}

/// Where a requested offset lands in `[log_start, log_end]`, and the note when it was moved.
/// Kafka's `checkOffsetRange` does the same (and warns "Value will be set to ...").
pub fn clamp(requested: i64, log_start: i64, log_end: i64) -> (i64, Option<Note>) {
    if requested > log_end {
        (log_end, Some(Note::ClampedToLogEnd { requested }))
    } else if requested < log_start {
        (log_start, Some(Note::ClampedToLogStart { requested }))
    } else {
        (requested, None)
    }
}

/// Decides one partition.
pub fn plan_one(
    state: &PartitionState,
    want: &Want,
    missing: MissingTime,
) -> Result<Step, PlanError> {
    let PartitionState {
        tp,
        committed,
        log_start,
        log_end,
    } = state.clone();
    if log_start > log_end {
        return Err(PlanError::BadLogRange {
            tp,
            log_start,
            log_end,
        });
    }
    let mut notes = Vec::new();
    let requested = match want {
        Want::Earliest => Some(log_start),
        Want::Latest => Some(log_end),
        Want::Offset(o) => Some(*o),
        Want::Current => match committed {
            Some(c) => Some(c),
            None => {
                notes.push(Note::NoCommittedOffset);
                None
            }
        },
        Want::ShiftBy(n) => match committed {
            Some(c) => Some(c.saturating_add(*n)),
            None => return Err(PlanError::NothingToShift { tp }),
        },
        Want::Time { at_ms, found } => match (found, missing) {
            (Some(o), _) => Some(*o),
            (None, MissingTime::Latest) => {
                notes.push(Note::NoRecordAfterTime { at_ms: *at_ms });
                Some(log_end)
            }
            (None, MissingTime::Fail) => {
                return Err(PlanError::NoRecordAfterTime { tp, at_ms: *at_ms })
            }
        },
        Want::BackTo { offset, kind } => match committed {
            None => {
                notes.push(Note::NoCommittedOffset);
                None
            }
            Some(c) if c <= *offset => {
                notes.push(Note::AlreadyBeforeDamage { offset: *offset });
                None
            }
            Some(_) => {
                notes.push(Note::FirstDamaged {
                    offset: *offset,
                    finding: kind.clone(),
                });
                Some(*offset)
            }
        },
        // Restoring "no offset" over no offset is no change, not a warning.
        Want::Keep(Note::NoOffsetInSnapshot) if committed.is_none() => {
            notes.push(Note::Unchanged);
            None
        }
        Want::Keep(note) => {
            notes.push(note.clone());
            None
        }
    };
    let target = requested.map(|r| {
        let (t, note) = clamp(r, log_start, log_end);
        notes.extend(note);
        t
    });
    if target.is_some() && target == committed {
        notes.push(Note::Unchanged);
    }
    Ok(Step {
        tp,
        current: committed,
        target,
        log_start,
        log_end,
        notes,
    })
}

/// Decides every partition; the first partition that cannot be planned refuses the whole reset
/// (a half-applied reset is the surprise this command exists to avoid).
pub fn plan(
    parts: &[(PartitionState, Want)],
    missing: MissingTime,
) -> Result<Vec<Step>, PlanError> {
    let mut steps: Vec<Step> = parts
        .iter()
        .map(|(s, w)| plan_one(s, w, missing))
        .collect::<Result<_, _>>()?;
    steps.sort_by(|a, b| a.tp.cmp(&b.tp));
    Ok(steps)
}

// ---------------------------------------------------------------------------------------------
// Times and durations

/// `--to-datetime`: ISO 8601 as Kafka accepts it (`2026-01-15T08:00:00`, with optional
/// fraction and zone `Z`, `+01:00`, `+0100`, `+01`); without a zone the time is UTC, as in
/// Kafka. A bare date (`2026-01-15`) means its midnight UTC. Returns epoch milliseconds.
pub fn parse_datetime(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let bad = || {
        format!(
            "{s:?} is not an ISO 8601 date-time (e.g. 2026-01-15T08:00:00, 2026-01-15T08:00:00.000+01:00; no zone = UTC)"
        )
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_millis());
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M%#z"] {
        if let Ok(t) = DateTime::parse_from_str(s, f) {
            return Ok(t.timestamp_millis());
        }
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Ok(t.and_utc().timestamp_millis());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return d
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc().timestamp_millis())
            .ok_or_else(bad);
    }
    Err(bad())
}

/// `--by-duration`: Kafka's ISO 8601 duration (`PnDTnHnMnS`, as Java's `Duration.parse`:
/// `P1D`, `PT30M`, `P1DT2H`, `PT0.5S`), or the short forms other drkit commands take (`5m`,
/// `2h`, `1h30m`, `7d`, `500ms`). The time reset to is now minus the duration, so a negative
/// or zero duration is refused. Returns milliseconds.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let t = s.trim();
    let ms = if t.starts_with(['P', 'p', '+', '-']) {
        parse_iso_duration(t)
    } else if t.chars().all(|c| c.is_ascii_digit()) {
        // A bare number has no unit anyone agrees on.
        None
    } else {
        replay::gaps::parse_duration(t).map(|d| d.num_milliseconds())
    };
    match ms {
        Some(ms) if ms > 0 => Ok(ms),
        Some(_) => Err(format!(
            "{s:?}: the duration must be positive (the reset goes back this far from now)"
        )),
        None => Err(format!(
            "{s:?} is not a duration (ISO 8601 PnDTnHnMnS such as PT30M or P1DT2H, or 5m, 2h, 1h30m, 7d)"
        )),
    }
}

/// Java's `Duration.parse` grammar: `[-+]P[nD][T[nH][nM][n[.f]S]]`, each number optionally
/// signed, at least one part, `T` followed by at least one part.
fn parse_iso_duration(s: &str) -> Option<i64> {
    let (sign, rest) = match s.strip_prefix('-') {
        Some(r) => (-1i64, r),
        None => (1, s.strip_prefix('+').unwrap_or(s)),
    };
    let rest = rest.strip_prefix(['P', 'p'])?;
    let (date, time) = match rest.split_once(['T', 't']) {
        Some((d, t)) if !t.is_empty() => (d, Some(t)),
        Some(_) => return None,
        None => (rest, None),
    };
    let mut total = TimeDelta::zero();
    let mut parts = 0;
    if !date.is_empty() {
        let n = date.strip_suffix(['D', 'd'])?;
        total = total.checked_add(&TimeDelta::try_days(n.parse().ok()?)?)?;
        parts += 1;
    }
    if let Some(mut t) = time {
        for (unit, per_ms) in [('H', 3_600_000i64), ('M', 60_000)] {
            if let Some(i) = t.find([unit, unit.to_ascii_lowercase()]) {
                let n: i64 = t.get(..i)?.parse().ok()?;
                total = total.checked_add(&TimeDelta::try_milliseconds(n.checked_mul(per_ms)?)?)?;
                t = t.get(i + 1..)?;
                parts += 1;
            }
        }
        if !t.is_empty() {
            let n = t.strip_suffix(['S', 's'])?;
            let (whole, frac) = match n.split_once(['.', ',']) {
                Some((w, f)) => (w, f),
                None => (n, ""),
            };
            if frac.len() > 9 || !frac.chars().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let negative = whole.starts_with('-');
            let w: i64 = whole.parse().ok()?;
            let mut f_ms: i64 = format!("{frac:0<3}").get(..3)?.parse().ok()?;
            if negative {
                f_ms = -f_ms;
            }
            total = total.checked_add(&TimeDelta::try_milliseconds(
                w.checked_mul(1000)?.checked_add(f_ms)?,
            )?)?;
            parts += 1;
        }
    }
    (parts > 0).then(|| sign * total.num_milliseconds())
}

/// The time `--by-duration` resets to.
pub fn time_before(now_ms: i64, duration_ms: i64) -> i64 {
    now_ms.saturating_sub(duration_ms)
}

/// `2026-01-15T08:00:00.000Z`.
pub fn format_ms(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_else(|| format!("{ms} ms"))
}

// ---------------------------------------------------------------------------------------------
// Kafka's reset CSV

/// A line of a reset file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct CsvError {
    pub line: usize,
    pub message: String,
}

/// Reads `kafka-consumer-groups.sh --export` output: `topic,partition,offset`, or
/// `group,topic,partition,offset` (Kafka writes the group column when several groups are reset
/// at once). With the group column only `group`'s rows are taken, and a file without any is an
/// error. Blank lines are skipped; anything else that is not a row is an error naming its line.
pub fn read_csv(text: &str, group: &str) -> Result<BTreeMap<TopicPartition, i64>, CsvError> {
    let mut out = BTreeMap::new();
    let mut first_line: BTreeMap<TopicPartition, usize> = BTreeMap::new();
    let mut width = None;
    let mut other_groups = 0usize;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let l = raw.trim();
        if l.is_empty() {
            continue;
        }
        let err = |message: String| CsvError { line, message };
        let fields: Vec<&str> = l.split(',').map(str::trim).collect();
        match width {
            None => width = Some(fields.len()),
            Some(w) if w != fields.len() => {
                return Err(err(format!(
                    "{} fields, but earlier rows have {w}",
                    fields.len()
                )))
            }
            Some(_) => {}
        }
        let (g, topic, partition, offset) = match fields.as_slice() {
            [t, p, o] => (None, *t, *p, *o),
            [g, t, p, o] => (Some(*g), *t, *p, *o),
            _ => {
                return Err(err(format!(
                "expected topic,partition,offset or group,topic,partition,offset, got {} fields",
                fields.len()
            )))
            }
        };
        if topic.is_empty() {
            return Err(err("empty topic".to_string()));
        }
        let partition: i32 = partition
            .parse()
            .ok()
            .filter(|p| *p >= 0)
            .ok_or_else(|| err(format!("partition {partition:?} is not a partition number")))?;
        let offset: i64 = offset
            .parse()
            .ok()
            .filter(|o| *o >= 0)
            .ok_or_else(|| err(format!("offset {offset:?} is not an offset")))?;
        if g.is_some_and(|g| g != group) {
            other_groups += 1;
            continue;
        }
        let tp = TopicPartition::new(topic, partition);
        if let Some(prev) = first_line.get(&tp) {
            return Err(err(format!("{tp} again (first on line {prev})")));
        }
        first_line.insert(tp.clone(), line);
        out.insert(tp, offset);
    }
    if out.is_empty() {
        let message = if other_groups > 0 {
            format!("no row for group {group:?} ({other_groups} rows for other groups)")
        } else {
            "no rows".to_string()
        };
        return Err(CsvError { line: 0, message });
    }
    Ok(out)
}

/// Kafka's CSV for the partitions that have a target (`--export`): what `--from-file` reads.
pub fn write_csv(steps: &[Step]) -> String {
    let mut s = String::new();
    for st in steps {
        if let Some(t) = st.target {
            s.push_str(&format!("{},{},{t}\n", st.tp.topic, st.tp.partition));
        }
    }
    s
}

// ---------------------------------------------------------------------------------------------
// `--from-scan`: a `drkit segments verify --format json` report

/// Finding kinds whose `offset` is the first of a range of records that were lost or damaged, so
/// consumers that read past it may have missed or mis-read data. Index, time index, transaction
/// index, snapshot, checkpoint and leader-epoch findings are left out: Kafka rebuilds those files
/// and the records themselves are intact. docs/OFFSETS.md lists the reasoning per kind.
pub const DAMAGE_KINDS: &[&str] = &[
    "crc_mismatch",
    "bad_length",
    "bad_magic",
    "zeroed_region",
    "torn_tail",
    "truncated_segment",
    "offset_regression",
    "first_offset_below_base",
    "segment_overlap",
    "segment_gap",
    "decompression_failed",
    "record_malformed",
    "record_count_mismatch",
    "offset_delta_order",
    "timestamp_out_of_range",
    "control_record_malformed",
    "legacy_offset_mismatch",
    "unreadable",
];

/// The earliest damage found in one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    pub offset: i64,
    pub kind: String,
    /// The report line it came from (1-based).
    pub line: usize,
}

/// What a scan report says, per partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanDamage {
    pub partitions: BTreeMap<TopicPartition, Damage>,
    /// Counted findings that name no offset and no `.log` file, or whose file is not inside a
    /// `<topic>-<partition>` directory: they cannot move a group, and the user should know.
    pub unplaced: Vec<String>,
    /// Whether the report ended with its summary line (else it may be cut short).
    pub complete: bool,
}

/// A report line that is not what `segments verify --format json` writes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ScanError {
    pub line: usize,
    pub message: String,
}

#[derive(Deserialize)]
struct FindingLine {
    #[serde(rename = "type")]
    kind_of_line: String,
    #[serde(default)]
    severity: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    file: Option<String>,
    #[serde(default)]
    offset: Option<i64>,
}

/// `<topic>-<partition>` → the partition (the directory name Kafka gives a partition's log).
pub fn partition_of_dir(name: &str) -> Option<TopicPartition> {
    let (topic, p) = name.rsplit_once('-')?;
    if topic.is_empty() || p.is_empty() || !p.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some(TopicPartition::new(topic, p.parse().ok()?))
}

/// The base offset in a segment's file name (`00000000000000000812.log` → 812).
fn segment_base(file: &Path) -> Option<i64> {
    if file.extension()? != "log" {
        return None;
    }
    let stem = file.file_stem()?.to_str()?;
    if stem.len() != 20 || !stem.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// Reads a `segments verify --format json` report: per partition (from the partition directory
/// in each finding's file path) the smallest offset of an error or warning finding of a
/// [`DAMAGE_KINDS`] kind. A finding with no offset (an unreadable `.log`) counts from its
/// segment's base offset. Info findings never count.
pub fn read_scan(text: &str) -> Result<ScanDamage, ScanError> {
    let mut out = ScanDamage::default();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let l = raw.trim();
        if l.is_empty() {
            continue;
        }
        let f: FindingLine = serde_json::from_str(l).map_err(|e| ScanError {
            line,
            message: format!("not a segments verify JSON line: {e}"),
        })?;
        match f.kind_of_line.as_str() {
            "summary" => {
                out.complete = true;
                continue;
            }
            "finding" => {}
            _ => continue,
        }
        let missing = |field: &str| ScanError {
            line,
            message: format!("finding without {field}"),
        };
        let severity = f.severity.ok_or_else(|| missing("severity"))?;
        let kind = f.kind.ok_or_else(|| missing("kind"))?;
        let file = PathBuf::from(f.file.ok_or_else(|| missing("file"))?);
        if !matches!(severity.as_str(), "error" | "warning")
            || !DAMAGE_KINDS.contains(&kind.as_str())
        {
            continue;
        }
        let tp = file
            .parent()
            .and_then(Path::file_name)
            .and_then(|n| n.to_str())
            .and_then(partition_of_dir);
        let offset = f.offset.or_else(|| segment_base(&file));
        match (tp, offset) {
            (Some(tp), Some(offset)) => {
                let e = out.partitions.entry(tp).or_insert(Damage {
                    offset,
                    kind: kind.clone(),
                    line,
                });
                if offset < e.offset {
                    *e = Damage { offset, kind, line };
                }
            }
            (None, _) => out.unplaced.push(format!(
                "line {line}: {kind} in {}: not inside a <topic>-<partition> directory",
                file.display()
            )),
            (Some(tp), None) => out.unplaced.push(format!(
                "line {line}: {kind} in {} ({tp}) names no offset",
                file.display()
            )),
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Snapshots

/// The format tag of snapshot files; a new layout gets a new tag.
pub const SNAPSHOT_FORMAT: &str = "drkit-offsets-snapshot/1";

/// The group's committed offsets just before drkit changed them: `drkit offsets restore` input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    pub format: String,
    pub group: String,
    pub bootstrap: String,
    /// When it was taken (RFC 3339, UTC).
    pub taken_at: String,
    /// The command that took it: `reset` or `restore`.
    pub command: String,
    pub partitions: Vec<SnapshotPartition>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotPartition {
    pub topic: String,
    pub partition: i32,
    /// `null`: the group had no committed offset for this partition.
    pub offset: Option<i64>,
}

impl Snapshot {
    pub fn new(
        group: &str,
        bootstrap: &str,
        taken_at_ms: i64,
        command: &str,
        committed: &BTreeMap<TopicPartition, Option<i64>>,
    ) -> Snapshot {
        Snapshot {
            format: SNAPSHOT_FORMAT.to_string(),
            group: group.to_string(),
            bootstrap: bootstrap.to_string(),
            taken_at: format_ms(taken_at_ms),
            command: command.to_string(),
            partitions: committed
                .iter()
                .map(|(tp, o)| SnapshotPartition {
                    topic: tp.topic.clone(),
                    partition: tp.partition,
                    offset: *o,
                })
                .collect(),
        }
    }

    /// Parses and checks a snapshot (format tag, no repeated partition, no negative offset).
    pub fn parse(text: &str) -> Result<Snapshot, String> {
        let s: Snapshot = serde_json::from_str(text).map_err(|e| format!("not a snapshot: {e}"))?;
        if s.format != SNAPSHOT_FORMAT {
            return Err(format!(
                "format {:?}, expected {SNAPSHOT_FORMAT:?}",
                s.format
            ));
        }
        let mut seen = BTreeSet::new();
        for p in &s.partitions {
            let tp = TopicPartition::new(p.topic.clone(), p.partition);
            if p.partition < 0 || p.offset.is_some_and(|o| o < 0) {
                return Err(format!("{tp}: negative partition or offset"));
            }
            if !seen.insert(tp.clone()) {
                return Err(format!("{tp} appears twice"));
            }
        }
        Ok(s)
    }

    /// What `restore` moves each partition to.
    pub fn wants(&self) -> Vec<(TopicPartition, Want)> {
        self.partitions
            .iter()
            .map(|p| {
                let tp = TopicPartition::new(p.topic.clone(), p.partition);
                let w = match p.offset {
                    Some(o) => Want::Offset(o),
                    None => Want::Keep(Note::NoOffsetInSnapshot),
                };
                (tp, w)
            })
            .collect()
    }

    /// Writes the snapshot to a new file and makes it durable (file and directory fsync'd)
    /// before returning: the commit that follows must never be the only record of the old
    /// offsets. An existing file is never overwritten.
    pub fn write_new(&self, path: &Path) -> std::io::Result<()> {
        let mut text = serde_json::to_string_pretty(self)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        text.push('\n');
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        // Directory fsync makes the new name durable; not every platform allows opening one.
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

/// `offsets-<group>-<UTC time>.json`; characters that do not belong in a file name become `_`.
pub fn default_snapshot_name(group: &str, now_ms: i64) -> String {
    let g: String = group
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let t = DateTime::from_timestamp_millis(now_ms)
        .map(|t| t.format("%Y%m%dT%H%M%S%.3fZ").to_string())
        .unwrap_or_else(|| now_ms.to_string());
    format!("offsets-{g}-{t}.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(committed: Option<i64>, log_start: i64, log_end: i64) -> PartitionState {
        PartitionState {
            tp: TopicPartition::new("t", 0),
            committed,
            log_start,
            log_end,
        }
    }

    fn target(s: &PartitionState, w: Want) -> (Option<i64>, Vec<Note>) {
        let step = plan_one(s, &w, MissingTime::Fail).unwrap();
        (step.target, step.notes)
    }

    #[test]
    fn earliest_latest_and_offset_follow_the_log_range() {
        let s = st(Some(50), 10, 100);
        assert_eq!(target(&s, Want::Earliest).0, Some(10));
        assert_eq!(target(&s, Want::Latest).0, Some(100));
        assert_eq!(target(&s, Want::Offset(70)), (Some(70), vec![]));
        // Kafka's checkOffsetRange: above the end -> end, below the start -> start, with a warning.
        assert_eq!(
            target(&s, Want::Offset(500)),
            (Some(100), vec![Note::ClampedToLogEnd { requested: 500 }])
        );
        assert_eq!(
            target(&s, Want::Offset(3)),
            (Some(10), vec![Note::ClampedToLogStart { requested: 3 }])
        );
        // The bounds themselves are valid targets.
        assert_eq!(target(&s, Want::Offset(10)), (Some(10), vec![]));
        assert_eq!(target(&s, Want::Offset(100)), (Some(100), vec![]));
    }

    #[test]
    fn shift_moves_from_the_committed_offset_and_clamps() {
        let s = st(Some(50), 10, 100);
        assert_eq!(target(&s, Want::ShiftBy(-20)).0, Some(30));
        assert_eq!(target(&s, Want::ShiftBy(5)).0, Some(55));
        assert_eq!(
            target(&s, Want::ShiftBy(-45)),
            (Some(10), vec![Note::ClampedToLogStart { requested: 5 }])
        );
        assert_eq!(
            target(&s, Want::ShiftBy(i64::MAX)),
            (
                Some(100),
                vec![Note::ClampedToLogEnd {
                    requested: i64::MAX
                }]
            )
        );
        assert_eq!(
            target(&s, Want::ShiftBy(0)),
            (Some(50), vec![Note::Unchanged])
        );
        // Kafka refuses a shift without a committed offset; so does drkit, naming the partition.
        let e = plan_one(&st(None, 0, 10), &Want::ShiftBy(-1), MissingTime::Fail).unwrap_err();
        assert_eq!(e.to_string(), "t-0: no committed offset to shift from");
    }

    #[test]
    fn current_recommits_or_leaves_out() {
        assert_eq!(
            target(&st(Some(7), 0, 10), Want::Current),
            (Some(7), vec![Note::Unchanged])
        );
        // A committed offset that fell out of the log (retention) is clamped like any other.
        assert_eq!(
            target(&st(Some(2), 5, 10), Want::Current),
            (Some(5), vec![Note::ClampedToLogStart { requested: 2 }])
        );
        let step = plan_one(&st(None, 0, 10), &Want::Current, MissingTime::Fail).unwrap();
        assert_eq!(step.target, None);
        assert!(!step.moves());
        assert_eq!(step.notes, vec![Note::NoCommittedOffset]);
    }

    #[test]
    fn time_lookup_and_the_missing_time_choice() {
        let s = st(Some(0), 0, 40);
        let found = Want::Time {
            at_ms: 1000,
            found: Some(25),
        };
        assert_eq!(target(&s, found).0, Some(25));
        let none = Want::Time {
            at_ms: 1000,
            found: None,
        };
        // Kafka falls back to the log end silently but for a line on stdout; drkit refuses by
        // default and names the partition.
        let e = plan_one(&s, &none, MissingTime::Fail).unwrap_err();
        assert!(
            matches!(e, PlanError::NoRecordAfterTime { ref tp, at_ms: 1000 } if tp.partition == 0)
        );
        assert!(
            e.to_string().contains("t-0") && e.to_string().contains("1970-01-01T00:00:01.000Z")
        );
        let step = plan_one(&s, &none, MissingTime::Latest).unwrap();
        assert_eq!(step.target, Some(40));
        assert_eq!(step.notes, vec![Note::NoRecordAfterTime { at_ms: 1000 }]);
        assert!(step.notes[0].is_warning());
    }

    #[test]
    fn from_scan_only_moves_back() {
        let back = |c| {
            let s = st(c, 0, 100);
            let step = plan_one(
                &s,
                &Want::BackTo {
                    offset: 40,
                    kind: "crc_mismatch".into(),
                },
                MissingTime::Fail,
            )
            .unwrap();
            (step.target, step.notes)
        };
        assert_eq!(
            back(Some(90)),
            (
                Some(40),
                vec![Note::FirstDamaged {
                    offset: 40,
                    finding: "crc_mismatch".into()
                }]
            )
        );
        assert_eq!(
            back(Some(40)),
            (None, vec![Note::AlreadyBeforeDamage { offset: 40 }])
        );
        assert_eq!(
            back(Some(12)),
            (None, vec![Note::AlreadyBeforeDamage { offset: 40 }])
        );
        assert_eq!(back(None), (None, vec![Note::NoCommittedOffset]));
        // Damage below the broker's log start (retention moved on): clamped to what exists.
        let s = st(Some(90), 50, 100);
        let step = plan_one(
            &s,
            &Want::BackTo {
                offset: 40,
                kind: "zeroed_region".into(),
            },
            MissingTime::Fail,
        )
        .unwrap();
        assert_eq!(step.target, Some(50));
        assert!(step
            .notes
            .contains(&Note::ClampedToLogStart { requested: 40 }));
    }

    #[test]
    fn clamp_always_lands_in_the_log_and_keeps_what_is_in_it() {
        for start in 0..6 {
            for end in start..12 {
                for requested in -3..15 {
                    let (t, note) = clamp(requested, start, end);
                    assert!((start..=end).contains(&t));
                    assert_eq!(
                        note.is_none(),
                        t == requested,
                        "{requested} in {start}..={end}"
                    );
                }
            }
        }
        assert_eq!(clamp(i64::MIN, 0, 0).0, 0);
        assert_eq!(clamp(i64::MAX, 0, 0).0, 0);
    }

    #[test]
    fn readers_never_panic_on_cut_or_garbled_input() {
        let csv = "g,t,0,5\ng,t,1,7\nh,u-x,2,9\n";
        let scan = "{\"type\":\"finding\",\"severity\":\"error\",\"kind\":\"crc_mismatch\",\"file\":\"/d/t-0/00000000000000000000.log\",\"offset\":5}\n{\"type\":\"summary\"}\n";
        let snap = r#"{"format":"drkit-offsets-snapshot/1","group":"g","bootstrap":"b","taken_at":"x","command":"reset","partitions":[{"topic":"t","partition":0,"offset":null}]}"#;
        for text in [csv, scan, snap] {
            for cut in 0..=text.len() {
                let Some(t) = text.get(..cut) else { continue };
                let _ = read_csv(t, "g");
                let _ = read_scan(t);
                let _ = Snapshot::parse(t);
                let _ = parse_datetime(t);
                let _ = parse_duration(t);
            }
            for (i, _) in text.char_indices() {
                for c in ['\u{0}', ',', '-', '"', '9', 'P', 'T', '\n'] {
                    let mut t = text.to_string();
                    t.replace_range(i..i + 1, &c.to_string());
                    let _ = read_csv(&t, "g");
                    let _ = read_scan(&t);
                    let _ = Snapshot::parse(&t);
                    let _ = parse_duration(&t);
                }
            }
        }
    }

    #[test]
    fn restoring_no_offset_cannot_delete_one() {
        let keep = Want::Keep(Note::NoOffsetInSnapshot);
        assert_eq!(
            target(&st(Some(8), 0, 10), keep.clone()),
            (None, vec![Note::NoOffsetInSnapshot])
        );
        assert!(Note::NoOffsetInSnapshot.is_warning());
        assert_eq!(
            target(&st(None, 0, 10), keep),
            (None, vec![Note::Unchanged])
        );
    }

    #[test]
    fn plan_is_sorted_and_refuses_as_a_whole() {
        let a = PartitionState {
            tp: TopicPartition::new("b", 1),
            ..st(Some(5), 0, 10)
        };
        let b = PartitionState {
            tp: TopicPartition::new("a", 2),
            ..st(None, 0, 10)
        };
        let steps = plan(
            &[(a.clone(), Want::Earliest), (b.clone(), Want::Earliest)],
            MissingTime::Fail,
        )
        .unwrap();
        assert_eq!(
            steps.iter().map(|s| s.tp.to_string()).collect::<Vec<_>>(),
            ["a-2", "b-1"]
        );
        assert!(steps.iter().all(Step::moves));
        let e = plan(
            &[(a, Want::ShiftBy(1)), (b, Want::ShiftBy(1))],
            MissingTime::Fail,
        );
        assert_eq!(
            e.unwrap_err(),
            PlanError::NothingToShift {
                tp: TopicPartition::new("a", 2)
            }
        );
        let bad = plan_one(&st(Some(1), 9, 3), &Want::Earliest, MissingTime::Fail);
        assert!(matches!(bad, Err(PlanError::BadLogRange { .. })));
    }

    #[test]
    fn datetimes_without_a_zone_are_utc() {
        let base = 1_768_464_000_000; // 2026-01-15T08:00:00Z
        assert_eq!(parse_datetime("2026-01-15T08:00:00").unwrap(), base);
        assert_eq!(
            parse_datetime("2026-01-15T08:00:00.250").unwrap(),
            base + 250
        );
        assert_eq!(parse_datetime("2026-01-15T08:00").unwrap(), base);
        assert_eq!(parse_datetime("2026-01-15T08:00:00Z").unwrap(), base);
        assert_eq!(parse_datetime("2026-01-15T08:00:00.000Z").unwrap(), base);
        assert_eq!(parse_datetime("2026-01-15T09:00:00+01:00").unwrap(), base);
        assert_eq!(
            parse_datetime("2026-01-15T09:00:00.000+0100").unwrap(),
            base
        );
        assert_eq!(parse_datetime("2026-01-15T03:00:00-05").unwrap(), base);
        assert_eq!(parse_datetime("2026-01-15").unwrap(), base - 8 * 3_600_000);
        for bad in [
            "",
            "yesterday",
            "2026-13-01T00:00:00",
            "15/01/2026",
            "2026-01-15T25:00:00",
        ] {
            let e = parse_datetime(bad).unwrap_err();
            assert!(e.contains("ISO 8601"), "{bad}: {e}");
        }
    }

    #[test]
    fn durations_iso_and_short() {
        let d = |s| parse_duration(s);
        // Java's Duration.parse examples.
        assert_eq!(d("PT20.345S"), Ok(20_345));
        assert_eq!(d("PT15M"), Ok(900_000));
        assert_eq!(d("PT10H"), Ok(36_000_000));
        assert_eq!(d("P2D"), Ok(172_800_000));
        assert_eq!(d("P2DT3H4M"), Ok(183_840_000));
        assert_eq!(d("PT-6H3M"), Err("\"PT-6H3M\": the duration must be positive (the reset goes back this far from now)".to_string()));
        assert!(d("P-6H3M").is_err());
        assert_eq!(d("-PT-6H+3M"), Ok(21_420_000)); // -(-6h + 3m)
        assert_eq!(d("pt1m"), Ok(60_000));
        assert_eq!(d("PT0.5S"), Ok(500));
        // Short forms.
        assert_eq!(d("5m"), Ok(300_000));
        assert_eq!(d("2h"), Ok(7_200_000));
        assert_eq!(d("1h30m"), Ok(5_400_000));
        assert_eq!(d("7d"), Ok(604_800_000));
        assert_eq!(d("500ms"), Ok(500));
        for bad in [
            "",
            "P",
            "PT",
            "P1H",
            "PT1D",
            "PT1.2345678901S",
            "5",
            "5x",
            "1 hour",
            "-5m",
        ] {
            assert!(d(bad).is_err(), "{bad}");
        }
        assert!(d("PT0S").unwrap_err().contains("positive"));
        assert_eq!(time_before(10_000, 2_500), 7_500);
    }

    #[test]
    fn csv_with_and_without_group() {
        let m = read_csv("t,0,5\nt,1,7\n\nu,0,0\n", "g").unwrap();
        assert_eq!(
            m.into_iter().collect::<Vec<_>>(),
            vec![
                (TopicPartition::new("t", 0), 5),
                (TopicPartition::new("t", 1), 7),
                (TopicPartition::new("u", 0), 0)
            ]
        );
        let m = read_csv("g,t,0,5\nh,t,0,9\ng,t,1,6\n", "g").unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[&TopicPartition::new("t", 0)], 5);
        let e = read_csv("h,t,0,9\n", "g").unwrap_err();
        assert_eq!(
            e.message,
            "no row for group \"g\" (1 rows for other groups)"
        );
        assert_eq!(read_csv("\n\n", "g").unwrap_err().message, "no rows");
    }

    #[test]
    fn csv_errors_name_the_line() {
        let e = |text| read_csv(text, "g").unwrap_err().to_string();
        assert_eq!(
            e("t,0,5\nt,x,5\n"),
            "line 2: partition \"x\" is not a partition number"
        );
        assert_eq!(
            e("t,0,5\n\nt,1,-3\n"),
            "line 3: offset \"-3\" is not an offset"
        );
        assert_eq!(
            e("t,0,5\ng,t,1,3\n"),
            "line 2: 4 fields, but earlier rows have 3"
        );
        assert_eq!(
            e("t,0\n"),
            "line 1: expected topic,partition,offset or group,topic,partition,offset, got 2 fields"
        );
        assert_eq!(e("t,0,5\nt,0,6\n"), "line 2: t-0 again (first on line 1)");
        assert_eq!(e(",0,5\n"), "line 1: empty topic");
    }

    #[test]
    fn csv_round_trip() {
        let steps = vec![
            Step {
                tp: TopicPartition::new("t", 0),
                current: Some(1),
                target: Some(4),
                log_start: 0,
                log_end: 9,
                notes: vec![],
            },
            Step {
                tp: TopicPartition::new("t", 1),
                current: None,
                target: None,
                log_start: 0,
                log_end: 9,
                notes: vec![Note::NoCommittedOffset],
            },
        ];
        let csv = write_csv(&steps);
        assert_eq!(csv, "t,0,4\n");
        assert_eq!(
            read_csv(&csv, "any").unwrap()[&TopicPartition::new("t", 0)],
            4
        );
    }

    #[test]
    fn scan_takes_the_first_damaged_offset_per_partition() {
        let report = r#"{"type":"finding","severity":"info","kind":"segment_gap_compacted","file":"/d/t-0/00000000000000000000.log","position":null,"end_position":null,"offset":3,"last_offset":4,"message":"m"}
{"type":"finding","severity":"error","kind":"crc_mismatch","file":"/d/t-0/00000000000000000000.log","position":100,"end_position":200,"offset":12,"last_offset":15,"message":"m"}
{"type":"finding","severity":"error","kind":"index_offset_mismatch","file":"/d/t-0/00000000000000000000.index","position":8,"end_position":null,"offset":2,"last_offset":null,"message":"m"}
{"type":"finding","severity":"warning","kind":"torn_tail","file":"/d/t-0/00000000000000000040.log","position":9,"end_position":null,"offset":44,"last_offset":null,"message":"m"}
{"type":"finding","severity":"error","kind":"zeroed_region","file":"/d/my-topic-12/00000000000000000000.log","position":9,"end_position":null,"offset":7,"last_offset":null,"message":"m"}
{"type":"finding","severity":"error","kind":"unreadable","file":"/d/u-1/00000000000000000300.log","position":null,"end_position":null,"offset":null,"last_offset":null,"message":"m"}
{"type":"finding","severity":"error","kind":"unreadable","file":"/d/u-2/leader-epoch-checkpoint","position":null,"end_position":null,"offset":null,"last_offset":null,"message":"m"}
{"type":"finding","severity":"error","kind":"crc_mismatch","file":"/loose/00000000000000000000.log","position":0,"end_position":9,"offset":0,"last_offset":0,"message":"m"}
{"type":"summary","files":3,"segments":2,"batches":0,"records":0,"bytes":0,"errors":3,"warnings":1,"infos":1,"elapsed_ms":1,"deep":false,"codec_bytes":{}}
"#;
        let s = read_scan(report).unwrap();
        assert!(s.complete);
        let got: Vec<_> = s
            .partitions
            .iter()
            .map(|(tp, d)| (tp.to_string(), d.offset, d.kind.as_str(), d.line))
            .collect();
        assert_eq!(
            got,
            vec![
                ("my-topic-12".to_string(), 7, "zeroed_region", 5),
                ("t-0".to_string(), 12, "crc_mismatch", 2),
                ("u-1".to_string(), 300, "unreadable", 6),
            ]
        );
        assert_eq!(s.unplaced.len(), 2, "{:?}", s.unplaced);
        assert!(s.unplaced[0].starts_with("line 7: unreadable"));
        assert!(s.unplaced[1].contains("not inside a <topic>-<partition> directory"));
    }

    #[test]
    fn scan_errors_name_the_line_and_notice_a_cut_report() {
        let e = read_scan("{\"type\":\"summary\"}\nnot json\n").unwrap_err();
        assert_eq!(e.line, 2);
        let e =
            read_scan("{\"type\":\"finding\",\"severity\":\"error\",\"kind\":\"crc_mismatch\"}\n")
                .unwrap_err();
        assert_eq!(e.to_string(), "line 1: finding without file");
        let s = read_scan("{\"type\":\"finding\",\"severity\":\"error\",\"kind\":\"crc_mismatch\",\"file\":\"/d/t-0/00000000000000000000.log\",\"offset\":5}\n").unwrap();
        assert!(!s.complete);
        assert_eq!(s.partitions[&TopicPartition::new("t", 0)].offset, 5);
    }

    #[test]
    fn partition_dirs() {
        assert_eq!(partition_of_dir("t-0"), Some(TopicPartition::new("t", 0)));
        assert_eq!(
            partition_of_dir("ms5.telemetry-v1-17"),
            Some(TopicPartition::new("ms5.telemetry-v1", 17))
        );
        for bad in ["t", "-0", "t-", "t-x", "t-1x", "t-+1"] {
            assert_eq!(partition_of_dir(bad), None, "{bad}");
        }
    }

    #[test]
    fn snapshot_round_trip_and_checks() {
        let mut m = BTreeMap::new();
        m.insert(TopicPartition::new("t", 0), Some(5));
        m.insert(TopicPartition::new("t", 1), None);
        let s = Snapshot::new("g/1", "127.0.0.1:9092", 1_768_464_000_000, "reset", &m);
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp
            .path()
            .join(default_snapshot_name("g/1", 1_768_464_000_123));
        assert!(p.ends_with("offsets-g_1-20260115T080000.123Z.json"));
        s.write_new(&p).unwrap();
        // Never overwritten.
        assert!(s.write_new(&p).is_err());
        let back = Snapshot::parse(&std::fs::read_to_string(&p).unwrap()).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.taken_at, "2026-01-15T08:00:00.000Z");
        assert_eq!(
            back.wants(),
            vec![
                (TopicPartition::new("t", 0), Want::Offset(5)),
                (
                    TopicPartition::new("t", 1),
                    Want::Keep(Note::NoOffsetInSnapshot)
                )
            ]
        );
        let text = serde_json::to_string(&s).unwrap();
        assert!(Snapshot::parse(&text.replace("/1\"", "/9\""))
            .unwrap_err()
            .contains("format"));
        assert!(
            Snapshot::parse(&text.replace("\"partition\":1", "\"partition\":0"))
                .unwrap_err()
                .contains("appears twice")
        );
        assert!(Snapshot::parse(&text.replace("\"group\"", "\"grp\"")).is_err());
    }
}
