//! The gap report from Kafka data: partition directories read offline (through
//! [`crate::source::SegmentsSource`], the same reader the replay uses), each value decoded as JSON,
//! the key and the event time taken by JSON pointer, and every event fed to the streaming
//! [`Detector`]. Partitions are read one after another, so a key's events arrive out of order
//! whenever the key spans partitions; the detector is exact in any order, and its memory does not
//! grow with the number of events.

use std::borrow::Cow;
use std::path::Path;

use chrono::{DateTime, Utc};

use crate::gaps::{Detector, Report, Window};
use crate::json_scan::Lit;
use crate::mapping::{parse_time, Pointer, TimeFormat};
use crate::project::Tree;
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
    #[error("{0:?} is not a JSON pointer (it must be empty or start with '/')")]
    Pointer(String),
}

/// An event time as the replay's `auto` time columns read it: an ISO 8601 / RFC 3339 string
/// (without a zone: UTC) or epoch milliseconds, as a JSON number or digit string. The same
/// parser as the replay's, so `--compare` counts the same events on both sides.
pub fn event_time(v: Lit<'_>) -> Option<DateTime<Utc>> {
    let us = match v {
        Lit::Str { .. } => parse_time(&v.str()?, TimeFormat::Auto)?,
        Lit::Num(t) => parse_time(t, TimeFormat::EpochMs)?,
        _ => return None,
    };
    DateTime::from_timestamp_micros(us)
}

/// A key as text: strings as they are, other JSON values in their compact JSON form.
fn key_text(v: Lit<'_>) -> Option<Cow<'_, str>> {
    match v {
        Lit::Str { .. } => v.str(),
        Lit::Null => None,
        other => other.compact_json().map(Cow::Owned),
    }
}

/// Reads `dir` (a partition directory or a log dir) and reports its gaps over `window`.
pub fn segments_report(
    dir: &Path,
    window: Window,
    pointers: &Pointers,
    expected: &[String],
) -> Result<(Report, KafkaStats), GapsKafkaError> {
    let pointer = |p: &str| {
        if p.is_empty() || p.starts_with('/') {
            Ok(Pointer::new(p))
        } else {
            Err(GapsKafkaError::Pointer(p.to_string()))
        }
    };
    let (key, time) = (pointer(&pointers.key)?, pointer(&pointers.time)?);
    // The replay's scanner: only the two members are kept, the rest is checked and skipped.
    let tree = Tree::build(&[(0, key.tokens()), (1, time.tokens())]);
    let mut slots = Vec::new();
    let mut src = SegmentsSource::open(dir, None)?;
    let mut det = Detector::new(window);
    let mut stats = KafkaStats::default();
    let source = src.run(&Resume::default(), &mut |m| {
        stats.messages += 1;
        let event = m.value.and_then(|v| {
            tree.read(v, &mut slots, 2).ok()?;
            let lit = |i: usize| slots.get(i).copied().flatten().map(|s| s.lit(v));
            Some((key_text(lit(0)?)?, event_time(lit(1)?)?))
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
    use crate::json_scan::Scanner;

    fn lit(json: &str) -> Lit<'_> {
        let mut s = Scanner::new(json.as_bytes());
        s.scalar_or_skip(0).unwrap().lit(json.as_bytes())
    }

    #[test]
    fn event_times() {
        let want = DateTime::parse_from_rfc3339("2026-01-15T08:00:00.5Z")
            .unwrap()
            .with_timezone(&Utc);
        for v in [
            r#""2026-01-15T08:00:00.5Z""#,
            r#""2026-01-15T09:00:00.5+01:00""#,
            r#""2026-01-15T08:00:00.500""#,
            r#""2026-01-15 08:00:00.5""#,
            r#""2026-01-15T08:00:00.5\u005a""#,
            "1768464000500",
            r#""1768464000500""#,
        ] {
            assert_eq!(event_time(lit(v)), Some(want), "{v}");
        }
        assert_eq!(event_time(lit(r#""yesterday""#)), None);
        assert_eq!(event_time(lit("true")), None);
        assert_eq!(event_time(lit("1.5")), None);
        assert_eq!(key_text(lit("7")).as_deref(), Some("7"));
        assert_eq!(
            key_text(lit(r#"{"a" : [1, 2.50]}"#)),
            Some(r#"{"a":[1,2.5]}"#.into())
        );
        assert_eq!(key_text(lit(r#""a\nb""#)).as_deref(), Some("a\nb"));
        assert_eq!(key_text(lit("null")), None);
    }

    #[test]
    fn a_pointer_without_its_slash_is_refused() {
        let e = segments_report(
            Path::new("/nonexistent"),
            Window::new(
                DateTime::from_timestamp(0, 0).unwrap(),
                DateTime::from_timestamp(3600, 0).unwrap(),
                chrono::TimeDelta::minutes(5),
            )
            .unwrap(),
            &Pointers {
                key: "assetId".into(),
                time: "/timestamp".into(),
            },
            &[],
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("\"assetId\" is not a JSON pointer"),
            "{e}"
        );
    }
}
