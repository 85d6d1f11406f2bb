//! The snapshot document: what `drkit validate snapshot` writes and `drkit validate --baseline`
//! reads back. Plain serde types, versioned by [`FORMAT`] and [`VERSION`]; a reader refuses other
//! versions instead of guessing. Times are RFC 3339 strings, names schema-qualified and unquoted
//! (`public.orders`). Field by field: docs/VALIDATE.md.

use serde::{Deserialize, Serialize};

/// The `format` field: tells a snapshot from any other JSON file.
pub const FORMAT: &str = "drkit-validate-snapshot";
/// The `version` field. Bumped on any change a version-1 reader would misread.
pub const VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub format: String,
    pub version: u32,
    /// When the collection started (RFC 3339, UTC).
    pub taken_at: String,
    pub elapsed_ms: u64,
    /// `server_version`, e.g. `15.8 (Debian 15.8-0+deb12u1)`.
    pub server_version: String,
    pub database: String,
    /// `exact` (`count(*)`) or `estimate` (`reltuples` after `ANALYZE`).
    pub row_counts: String,
    pub tables: Vec<Table>,
    pub constraints: Vec<Constraint>,
    pub indexes: Vec<Index>,
    pub sequences: Vec<Sequence>,
    pub extensions: Vec<Extension>,
    /// Present when the timescaledb extension is installed.
    pub timescaledb: Option<Timescale>,
    /// Present when a telemetry table was named.
    pub telemetry: Option<Telemetry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Table {
    pub name: String,
    pub rows: i64,
    /// False when `rows` is the planner's estimate.
    pub rows_exact: bool,
    /// `pg_total_relation_size`: heap, indexes and TOAST.
    pub bytes: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Constraint {
    pub table: String,
    pub name: String,
    /// `primary_key`, `foreign_key`, `unique`, `check`, `exclusion` or `trigger`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `pg_get_constraintdef`.
    pub definition: String,
    /// False for a constraint added `NOT VALID` and never validated.
    pub validated: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Index {
    pub name: String,
    pub table: String,
    /// `pg_get_indexdef`.
    pub definition: String,
    /// `indisvalid`: false after a failed `CREATE INDEX CONCURRENTLY`.
    pub valid: bool,
    /// `indisready`.
    pub ready: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sequence {
    pub name: String,
    /// The last value handed out; with `is_called` false, the value the next `nextval` returns.
    pub last_value: i64,
    pub is_called: bool,
    pub increment: i64,
    /// The column the sequence feeds, `schema.table.column`: its owner (serial or identity), else
    /// a column whose default calls it.
    pub column: Option<String>,
    /// `max(column)`; null for an empty table, no owning column or a non-integer column.
    pub column_max: Option<i64>,
}

impl Sequence {
    /// The value the next `nextval` returns (saturating at the type's edge).
    pub fn next_value(&self) -> i64 {
        if self.is_called {
            self.last_value.saturating_add(self.increment)
        } else {
            self.last_value
        }
    }
    /// True when the next value is already taken in the column: the next insert collides.
    /// Only ascending sequences are judged (descending ones are rare and have no max to pass).
    pub fn behind(&self) -> bool {
        match self.column_max {
            Some(max) if self.increment > 0 => self.next_value() <= max,
            _ => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Extension {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timescale {
    pub version: String,
    /// `timescaledb.restoring` is on: `timescaledb_pre_restore()` ran and
    /// `timescaledb_post_restore()` did not, so background jobs (compression, retention,
    /// continuous aggregates) stay stopped.
    pub restoring: bool,
    pub hypertables: Vec<Hypertable>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hypertable {
    pub name: String,
    pub chunks: i64,
}

/// The gap report of one telemetry table (`drkit gaps`' rules), with what is needed to repeat it
/// over the same window after the restore.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Telemetry {
    pub table: String,
    pub time_column: String,
    pub key_column: String,
    pub rpo_seconds: f64,
    pub since: String,
    pub until: String,
    /// Rows inside the window.
    pub rows: u64,
    /// Every key seen in the window (or expected): after the restore they are expected again, so a
    /// key whose rows were all lost is reported silent.
    pub keys: Vec<String>,
    pub gaps: Vec<TelemetryGap>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TelemetryGap {
    pub key: String,
    pub start: String,
    pub end: String,
    pub seconds: f64,
    /// `between`, `window_start`, `window_end` or `silent`.
    pub kind: String,
}

/// Why a snapshot file cannot be used as a baseline.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("not a drkit validate snapshot (line {line}, column {column}): {message}")]
    Json {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("format {found:?} is not {FORMAT:?}")]
    Format { found: String },
    #[error("snapshot version {found} is not supported (this drkit reads version {VERSION})")]
    Version { found: u32 },
}

impl Snapshot {
    /// Parses and checks a snapshot document.
    pub fn from_json(text: &str) -> Result<Snapshot, ReadError> {
        // The header first, so a newer version gets the version message, not a field error.
        #[derive(Deserialize)]
        struct Header {
            format: Option<String>,
            version: Option<u32>,
        }
        let json = |e: serde_json::Error| ReadError::Json {
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        };
        let h: Header = serde_json::from_str(text).map_err(json)?;
        let found = h.format.unwrap_or_default();
        if found != FORMAT {
            return Err(ReadError::Format { found });
        }
        match h.version {
            Some(VERSION) => {}
            found => {
                return Err(ReadError::Version {
                    found: found.unwrap_or(0),
                })
            }
        }
        serde_json::from_str(text).map_err(json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(last: i64, called: bool, inc: i64, max: Option<i64>) -> Sequence {
        Sequence {
            name: "s".into(),
            last_value: last,
            is_called: called,
            increment: inc,
            column: Some("t.id".into()),
            column_max: max,
        }
    }

    #[test]
    fn sequence_behind_its_column() {
        assert!(!seq(10, true, 1, Some(10)).behind());
        assert!(seq(9, true, 1, Some(10)).behind());
        assert!(seq(10, false, 1, Some(10)).behind());
        assert!(!seq(11, false, 1, Some(10)).behind());
        assert!(!seq(1, true, 1, None).behind());
        assert!(!seq(1, true, -1, Some(10)).behind());
        assert!(seq(i64::MAX, true, 1, Some(i64::MAX)).behind());
    }

    #[test]
    fn foreign_documents_are_refused_with_the_reason() {
        assert!(matches!(
            Snapshot::from_json("{\"a\": 1"),
            Err(ReadError::Json { line: 1, .. })
        ));
        assert!(matches!(
            Snapshot::from_json("{\"format\": \"x\", \"version\": 1}"),
            Err(ReadError::Format { .. })
        ));
        assert!(matches!(
            Snapshot::from_json(&format!("{{\"format\": \"{FORMAT}\", \"version\": 2}}")),
            Err(ReadError::Version { found: 2 })
        ));
        assert!(matches!(
            Snapshot::from_json(&format!("{{\"format\": \"{FORMAT}\", \"version\": 1}}")),
            Err(ReadError::Json { .. })
        ));
    }
}
