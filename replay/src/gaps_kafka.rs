//! The gap report from Kafka data: partition directories read offline (through
//! [`crate::source::SegmentsSource`], the same reader the replay uses), each value decoded as JSON,
//! the key and the event time taken by JSON pointer, and every event fed to the streaming
//! [`Detector`]. Partitions are read one after another, so a key's events arrive out of order
//! whenever the key spans partitions; the detector is exact in any order, and its memory does not
//! grow with the number of events.

use std::path::Path;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::Value;

use crate::gaps::{Detector, Report, Window};
use crate::source::{Flow, Resume, SegmentsSource, Source, SourceError, SourceStats};

/// Where a message's key and event time are (JSON pointers into the value, RFC 6901).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pointers {
    pub key: String,
    pub time: String,
}

impl Default for Pointers {
    /// MS5 `telemetry.asset.event.v1`: `/assetId` and `/timestamp`.
    fn default() -> Self {
        Pointers {
            key: "/assetId".into(),
            time: "/timestamp".into(),
        }
    }
}

/// What the Kafka side read besides the events it counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KafkaStats {
    /// Messages read from the partitions.
    pub messages: u64,
    /// Messages without a value, whose value is not JSON, or without the key or a readable time.
    pub unusable: u64,
    /// Usable messages whose event time is outside the window.
    pub outside: u64,
    /// The reader's own counts (corrupt ranges, undecodable batches...).
    pub source: SourceStats,
}

/// Why the Kafka side could not be read.
#[derive(Debug, thiserror::Error)]
pub enum GapsKafkaError {
    #[error(transparent)]
    Source(#[from] SourceError),
}

/// An event time: an ISO 8601 / RFC 3339 string (without a zone: UTC), or a number of epoch
/// milliseconds.
pub fn event_time(v: &Value) -> Option<DateTime<Utc>> {
    match v {
        Value::String(s) => {
            let s = s.trim();
            if let Ok(t) = DateTime::parse_from_rfc3339(s) {
                return Some(t.with_timezone(&Utc));
            }
            ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
                .iter()
                .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
                .map(|t| t.and_utc())
        }
        Value::Number(n) => n.as_i64().and_then(DateTime::from_timestamp_millis),
        _ => None,
    }
}

/// A key as text: strings as they are, other JSON values in their JSON form.
fn key_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// Reads `dir` (a partition directory or a log dir) and reports its gaps over `window`.
pub fn segments_report(
    dir: &Path,
    window: Window,
    pointers: &Pointers,
    expected: &[String],
) -> Result<(Report, KafkaStats), GapsKafkaError> {
    let mut src = SegmentsSource::open(dir, None)?;
    let mut det = Detector::new(window);
    let mut stats = KafkaStats::default();
    let source = src.run(&Resume::default(), &mut |m| {
        stats.messages += 1;
        let event = m
            .value
            .and_then(|v| serde_json::from_slice::<Value>(v).ok())
            .and_then(|v| {
                let key = v.pointer(&pointers.key).and_then(key_text)?;
                let t = v.pointer(&pointers.time).and_then(event_time)?;
                Some((key, t))
            });
        match event {
            Some((key, t)) => det.push(&key, t),
            None => stats.unusable += 1,
        }
        Flow::Continue
    })?;
    stats.source = source;
    stats.outside = det.outside();
    Ok((det.finish(expected.iter().map(String::as_str)), stats))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn event_times() {
        let want = DateTime::parse_from_rfc3339("2026-01-15T08:00:00.5Z")
            .unwrap()
            .with_timezone(&Utc);
        for v in [
            json!("2026-01-15T08:00:00.5Z"),
            json!("2026-01-15T09:00:00.5+01:00"),
            json!("2026-01-15T08:00:00.500"),
            json!("2026-01-15 08:00:00.5"),
            json!(1768464000500i64),
        ] {
            assert_eq!(event_time(&v), Some(want), "{v}");
        }
        assert_eq!(event_time(&json!("yesterday")), None);
        assert_eq!(event_time(&json!(true)), None);
        assert_eq!(key_text(&json!(7)), Some("7".into()));
        assert_eq!(key_text(&json!(null)), None);
    }
}
