//! One line of a drill record: what happened, when, to which service or data class, and with
//! which backups.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// What an event records. The names are the record's `event` values (docs/DRILL.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// The record's first line (`drkit drill start`).
    Start,
    /// The fault was injected or happened: the clock for RTO and the point RPO is measured from.
    Fault,
    Detected,
    RestoreStarted,
    Restored,
    /// The service answers again: the end of RTO by default.
    Healthy,
    /// The service's data was checked after the restore: the end of RTO when so configured.
    Validated,
    /// The newest data time recovered for a data class (`last_good`): RPO = fault - last_good.
    DataPoint,
    Note,
    /// The record's last line (`drkit drill finish`).
    Finish,
}

impl EventKind {
    pub const ALL: &'static [EventKind] = &[
        EventKind::Start,
        EventKind::Fault,
        EventKind::Detected,
        EventKind::RestoreStarted,
        EventKind::Restored,
        EventKind::Healthy,
        EventKind::Validated,
        EventKind::DataPoint,
        EventKind::Note,
        EventKind::Finish,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Start => "start",
            EventKind::Fault => "fault",
            EventKind::Detected => "detected",
            EventKind::RestoreStarted => "restore_started",
            EventKind::Restored => "restored",
            EventKind::Healthy => "healthy",
            EventKind::Validated => "validated",
            EventKind::DataPoint => "data_point",
            EventKind::Note => "note",
            EventKind::Finish => "finish",
        }
    }

    pub fn parse(s: &str) -> Option<EventKind> {
        EventKind::ALL.iter().copied().find(|k| k.as_str() == s)
    }

    /// Events that only make sense for one named service.
    pub fn needs_service(self) -> bool {
        matches!(
            self,
            EventKind::RestoreStarted
                | EventKind::Restored
                | EventKind::Healthy
                | EventKind::Validated
        )
    }
}

/// A backup used in the restore, identified by its content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backup {
    pub path: String,
    /// SHA-256 of the file's bytes when the event was recorded, lowercase hex.
    pub sha256: String,
    pub bytes: u64,
}

/// One line of the record, as written. Every field is always present (null when it does not
/// apply), so the schema is one shape; field order here is the order written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// 1 for the start event, then +1 per line.
    pub seq: u64,
    /// When it happened, RFC 3339 UTC.
    pub time: String,
    /// True when `time` was given by the operator (`--at`) rather than read from the clock.
    pub backfilled: bool,
    /// The clock when the line was written.
    pub recorded_at: String,
    /// The drill's id, the same on every line.
    pub drill: String,
    pub event: String,
    pub service: Option<String>,
    pub tier: Option<String>,
    /// Data class of a `data_point` (production, telemetry, configuration, audit...).
    pub class: Option<String>,
    /// Newest data time recovered for `class`, RFC 3339 UTC.
    pub last_good: Option<String>,
    pub backups: Vec<Backup>,
    pub operator: Option<String>,
    pub text: Option<String>,
    /// `hash` of the line before (the genesis value for the first line).
    pub prev: String,
    /// SHA-256 of `prev` followed by the canonical JSON of this event without `hash`.
    pub hash: String,
}

impl Event {
    pub fn kind(&self) -> Option<EventKind> {
        EventKind::parse(&self.event)
    }

    pub fn at(&self) -> Option<DateTime<Utc>> {
        parse_time(&self.time)
    }

    pub fn last_good_at(&self) -> Option<DateTime<Utc>> {
        self.last_good.as_deref().and_then(parse_time)
    }
}

/// What the caller supplies for a new line; the record adds seq, drill id and the chain fields.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub kind: EventKind,
    pub time: DateTime<Utc>,
    pub backfilled: bool,
    pub recorded_at: DateTime<Utc>,
    pub service: Option<String>,
    pub tier: Option<String>,
    pub class: Option<String>,
    pub last_good: Option<DateTime<Utc>>,
    pub backups: Vec<Backup>,
    pub operator: Option<String>,
    pub text: Option<String>,
}

impl NewEvent {
    /// An event of `kind` at `time`, recorded now, with nothing else set.
    pub fn new(kind: EventKind, time: DateTime<Utc>, recorded_at: DateTime<Utc>) -> NewEvent {
        NewEvent {
            kind,
            time,
            backfilled: false,
            recorded_at,
            service: None,
            tier: None,
            class: None,
            last_good: None,
            backups: Vec::new(),
            operator: None,
            text: None,
        }
    }
}

/// RFC 3339 with an offset (any), as UTC.
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The record's time form: UTC with `Z`, fractional seconds only when there are some.
pub fn format_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}
