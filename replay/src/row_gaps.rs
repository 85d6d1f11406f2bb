//! RPO gaps of the rows a replay writes (`drkit replay --rpo`), found while they are written.
//!
//! The key and the time of each row are read back from the binary COPY tuples the mapping has
//! just encoded, not evaluated a second time: exploded rows, optional columns and the event-time
//! window are then seen exactly as the table will hold them, and the cost is a few field-length
//! hops per row. The gaps themselves come from the same streaming [`Detector`] as `drkit gaps
//! --segments`, so late and out-of-order events are handled the same way.

use chrono::{DateTime, TimeDelta, Utc};

use crate::gaps::{Detector, Report, WindowError};
use crate::mapping::{ColType, Mapping};
use crate::pgcopy;

/// PostgreSQL's epoch (2000-01-01) in Unix microseconds.
const PG_EPOCH_US: i64 = 946_684_800_000_000;

/// Validated gap-tracking options (checked against the mapping before the replay starts).
#[derive(Debug, Clone)]
pub struct GapTracking {
    pub key_column: String,
    key: usize,
    key_ty: ColType,
    time: usize,
    pub rpo: TimeDelta,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Keys that must appear; those that do not are reported silent.
    pub expected: Vec<String>,
    /// The empty detector every run starts from.
    empty: Detector,
}

/// Why gap tracking cannot be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GapTrackingError {
    #[error("--gap-key {0}: not a column of the mapping")]
    NoSuchColumn(String),
    #[error("--gap-key {column}: a {ty} column cannot be a key (text, uuid, bigint or boolean)")]
    KeyType { column: String, ty: &'static str },
    #[error("gap tracking needs a time column in the mapping")]
    NoTimeColumn,
    #[error(transparent)]
    Window(#[from] WindowError),
}

impl GapTracking {
    pub fn new(
        mapping: &Mapping,
        key_column: &str,
        rpo: TimeDelta,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        expected: Vec<String>,
    ) -> Result<GapTracking, GapTrackingError> {
        let key = mapping
            .column_index(key_column)
            .ok_or_else(|| GapTrackingError::NoSuchColumn(key_column.to_string()))?;
        let key_ty = mapping
            .columns
            .get(key)
            .map(|c| c.ty)
            .ok_or_else(|| GapTrackingError::NoSuchColumn(key_column.to_string()))?;
        if !matches!(
            key_ty,
            ColType::Text | ColType::Uuid | ColType::Int8 | ColType::Bool
        ) {
            return Err(GapTrackingError::KeyType {
                column: key_column.to_string(),
                ty: key_ty.sql(),
            });
        }
        let time = mapping.time_column.ok_or(GapTrackingError::NoTimeColumn)?;
        // Built here, where a bad window is still reported as a usage problem.
        let empty = Detector::open(rpo, since, until)?;
        Ok(GapTracking {
            key_column: key_column.to_string(),
            key,
            key_ty,
            time,
            rpo,
            since,
            until,
            expected,
            empty,
        })
    }

    pub fn start(&self) -> RowGaps {
        RowGaps {
            det: self.empty.clone(),
            key: self.key,
            key_ty: self.key_ty,
            time: self.time,
            unkeyed: 0,
            buf: String::new(),
        }
    }
}

/// The running state: a detector fed with each encoded row.
#[derive(Debug)]
pub struct RowGaps {
    det: Detector,
    key: usize,
    key_ty: ColType,
    time: usize,
    unkeyed: u64,
    buf: String,
}

/// What gap tracking found.
#[derive(Debug, Clone, PartialEq)]
pub struct RowGapReport {
    pub report: Report,
    /// Rows with a NULL key or time: written, but not part of any key's series.
    pub unkeyed: u64,
    /// Rows whose event time fell outside the window.
    pub outside: u64,
}

impl RowGaps {
    /// Every tuple of `copy` (binary COPY tuples, as the mapping encodes them).
    pub fn rows(&mut self, copy: &[u8]) {
        for t in pgcopy::tuples(copy) {
            let (Some(Some(k)), Some(Some(ts))) = (t.field(self.key), t.field(self.time)) else {
                self.unkeyed += 1;
                continue;
            };
            let Some(at) = ts
                .try_into()
                .ok()
                .map(i64::from_be_bytes)
                .and_then(|us| us.checked_add(PG_EPOCH_US))
                .and_then(DateTime::from_timestamp_micros)
            else {
                self.unkeyed += 1;
                continue;
            };
            self.buf.clear();
            if !key_text(self.key_ty, k, &mut self.buf) {
                self.unkeyed += 1;
                continue;
            }
            self.det.push(&self.buf, at);
        }
    }

    pub fn finish(self, expected: &[String]) -> RowGapReport {
        let outside = self.det.outside();
        RowGapReport {
            report: self.det.finish(expected.iter().map(String::as_str)),
            unkeyed: self.unkeyed,
            outside,
        }
    }
}

/// The key as PostgreSQL prints it (so keys match `--expected-keys` lists made with `psql`).
fn key_text(ty: ColType, b: &[u8], out: &mut String) -> bool {
    use std::fmt::Write;
    match ty {
        ColType::Text => match std::str::from_utf8(b) {
            Ok(s) => out.push_str(s),
            Err(_) => return false,
        },
        ColType::Uuid => match uuid::Uuid::from_slice(b) {
            Ok(u) => {
                let _ = write!(out, "{}", u.hyphenated());
            }
            Err(_) => return false,
        },
        ColType::Int8 => match b.try_into() {
            Ok(a) => {
                let _ = write!(out, "{}", i64::from_be_bytes(a));
            }
            Err(_) => return false,
        },
        ColType::Bool => match b {
            [0] => out.push_str("false"),
            [_] => out.push_str("true"),
            _ => return false,
        },
        _ => return false,
    }
    true
}
