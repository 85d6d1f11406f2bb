//! RPO gap detection over `(key, timestamp)` events: the per-asset check the runbook's hourly
//! count cannot make (a 6-minute outage is a 10% dip in one hour; one asset's outage is invisible).
//!
//! Rules, shared by the streaming detector here and the SQL in [`crate::gaps_sql`]:
//! - the window is half-open, `[since, until)`; events outside it are ignored;
//! - a *gap* is an interval with no event of a key that is **strictly longer** than the RPO (a
//!   5-minute cadence against a 5-minute RPO is compliant, so equality is never a breach);
//! - `between`: two consecutive events of a key; `window_start`: `since` → the key's first event;
//!   `window_end`: the key's last event → `until`; `silent`: an expected key with no event at all
//!   (the whole window, reported when the window itself is longer than the RPO);
//! - hourly counts cover every UTC hour that meets the window, empty hours included, for every
//!   observed or expected key.
//!
//! Out-of-order and late events: the detector is exact whatever the order, without sorting or
//! buffering events. Per key it keeps the first and last timestamps seen and the gaps found so far
//! (intervals between consecutive events that exceed the RPO). An event after the last one opens
//! the interval `(last, t)`; an event before the first one opens `(t, first)`; an event in between
//! can only split the interval that contains it, and only an interval already recorded as a gap can
//! still exceed the RPO after the split, so only recorded gaps need to be looked at. Memory is
//! O(keys × (hours + gaps)), not O(events): a replay window of billions of events costs the same as
//! one of thousands. (A bounded reorder buffer would need a lateness bound to be chosen, and would
//! still misreport an event later than that bound; sorting per key would cost 8 bytes per event.)

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};

/// Which edge of what a gap is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GapKind {
    /// Between two consecutive events of the key.
    Between,
    /// From the window start to the key's first event.
    WindowStart,
    /// From the key's last event to the window end.
    WindowEnd,
    /// An expected key with no event in the whole window.
    Silent,
}

impl GapKind {
    /// The name used in every output format (docs/GAPS.md).
    pub fn as_str(self) -> &'static str {
        match self {
            GapKind::Between => "between",
            GapKind::WindowStart => "window_start",
            GapKind::WindowEnd => "window_end",
            GapKind::Silent => "silent",
        }
    }
}

impl fmt::Display for GapKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One interval longer than the RPO without an event of `key`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Gap {
    pub key: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub kind: GapKind,
}

impl Gap {
    pub fn duration(&self) -> TimeDelta {
        self.end - self.start
    }
    /// Length in seconds, with the microsecond precision PostgreSQL keeps.
    pub fn seconds(&self) -> f64 {
        micros(self.duration()) as f64 / 1e6
    }
}

fn micros(d: TimeDelta) -> i64 {
    d.num_microseconds().unwrap_or(i64::MAX)
}

/// Why a window or RPO cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    #[error("the window is empty: --since {since} is not before --until {until}")]
    Empty {
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    },
    #[error("the RPO must be positive")]
    Rpo,
    #[error("the window spans {hours} hours; at most {max} are reported per key")]
    TooLong { hours: i64, max: i64 },
}

/// The most hours per key the hourly table holds (a year), so a typo in `--since` cannot ask for
/// a table of millions of cells.
pub const MAX_HOURS: i64 = 24 * 366;

/// A window edge as people type it (`--since`, `--until`): ISO 8601 / RFC 3339 (without a
/// zone: UTC), or a bare date (its midnight, UTC). The replay's time parser, so every command
/// reads the same text as the same instant.
pub fn window_time(s: &str) -> Option<DateTime<Utc>> {
    use crate::mapping::{parse_time, TimeFormat};
    parse_time(s, TimeFormat::Iso8601)
        .or_else(|| parse_time(&format!("{}T00:00:00", s.trim()), TimeFormat::Iso8601))
        .and_then(DateTime::from_timestamp_micros)
}

/// A validated window and RPO: `since < until`, `rpo > 0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    rpo: TimeDelta,
}

impl Window {
    pub fn new(
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        rpo: TimeDelta,
    ) -> Result<Window, WindowError> {
        if since >= until {
            return Err(WindowError::Empty { since, until });
        }
        if rpo <= TimeDelta::zero() {
            return Err(WindowError::Rpo);
        }
        let w = Window { since, until, rpo };
        let hours = w.hour_count();
        if hours > MAX_HOURS {
            return Err(WindowError::TooLong {
                hours,
                max: MAX_HOURS,
            });
        }
        Ok(w)
    }
    pub fn since(&self) -> DateTime<Utc> {
        self.since
    }
    pub fn until(&self) -> DateTime<Utc> {
        self.until
    }
    pub fn rpo(&self) -> TimeDelta {
        self.rpo
    }
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.since <= t && t < self.until
    }
    /// The UTC hour that holds `since`.
    pub fn first_hour(&self) -> DateTime<Utc> {
        hour_of(self.since)
    }
    /// Number of UTC hours that meet the window.
    pub fn hour_count(&self) -> i64 {
        let last = hour_of(self.until - TimeDelta::microseconds(1));
        (last - hour_of(self.since)).num_hours() + 1
    }
    /// Every UTC hour that meets the window, in order.
    pub fn hours(&self) -> Vec<DateTime<Utc>> {
        let first = self.first_hour();
        (0..self.hour_count())
            .map(|i| first + TimeDelta::hours(i))
            .collect()
    }
    fn hour_index(&self, t: DateTime<Utc>) -> usize {
        (t - self.first_hour()).num_hours().max(0) as usize
    }
}

fn hour_of(t: DateTime<Utc>) -> DateTime<Utc> {
    // Cannot fail for an hour on any representable timestamp; fall back to the timestamp itself.
    t.duration_trunc(TimeDelta::hours(1)).unwrap_or(t)
}

/// What one side (database or Kafka) holds for the window: gaps and hourly counts per key.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub window: Window,
    /// Sorted by key, then start.
    pub gaps: Vec<Gap>,
    /// The UTC hours of the window (see [`Window::hours`]); empty for an open window
    /// ([`Detector::open`]).
    pub hours: Vec<DateTime<Utc>>,
    /// Per key (observed or expected), one count per entry of `hours`.
    pub counts: BTreeMap<String, Vec<u64>>,
    /// Events (rows, records) inside the window.
    pub rows: u64,
}

impl Report {
    /// Longest gap in seconds; 0 when there is none.
    pub fn max_gap_seconds(&self) -> f64 {
        self.gaps.iter().map(Gap::seconds).fold(0.0, f64::max)
    }
    /// True when any gap exceeds the RPO (every reported gap does, by construction).
    pub fn breached(&self) -> bool {
        !self.gaps.is_empty()
    }
    pub fn keys(&self) -> usize {
        self.counts.len()
    }
    /// Events one key sends per hour of the window at `cadence` (the part of each hour inside the
    /// window, divided by the cadence): the denominator of completeness. Empty for a cadence
    /// that is not positive.
    pub fn expected_per_hour(&self, cadence: TimeDelta) -> Vec<u64> {
        let c = micros(cadence);
        if c <= 0 {
            return Vec::new();
        }
        self.hours
            .iter()
            .map(|h| {
                let start = (*h).max(self.window.since);
                let end = (*h + TimeDelta::hours(1)).min(self.window.until);
                (micros(end - start).max(0) / c) as u64
            })
            .collect()
    }
}

#[derive(Debug, Clone, Default)]
struct KeyState {
    first: Option<DateTime<Utc>>,
    last: Option<DateTime<Utc>>,
    /// Between-gaps found so far, start → end.
    gaps: BTreeMap<DateTime<Utc>, DateTime<Utc>>,
    /// Per UTC hour of a bounded window; empty for an open one.
    hourly: Vec<u64>,
}

/// The streaming detector: feed events in any order with [`Detector::push`], then
/// [`Detector::finish`].
#[derive(Debug, Clone)]
pub struct Detector {
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    rpo: TimeDelta,
    /// The window when both ends are known up front: hourly counts are kept.
    bounded: Option<Window>,
    /// Earliest and latest event inside the window (the edges of an open window).
    min: Option<DateTime<Utc>>,
    max: Option<DateTime<Utc>>,
    keys: HashMap<String, KeyState>,
    rows: u64,
    outside: u64,
}

impl Detector {
    pub fn new(window: Window) -> Detector {
        Detector {
            since: Some(window.since),
            until: Some(window.until),
            rpo: window.rpo,
            bounded: Some(window),
            min: None,
            max: None,
            keys: HashMap::new(),
            rows: 0,
            outside: 0,
        }
    }

    /// A window with an end (or both) left open, as in a replay without `--since`/`--until`:
    /// an open edge is the earliest (latest) event of any key, so a key that starts later or
    /// stops earlier than the fleet by more than the RPO still shows a window-edge gap. No
    /// hourly counts are kept ([`Report::hours`] is empty): the span is not known up front, and
    /// one mistaken 1970 timestamp must not cost a table of half a million hours per key.
    pub fn open(
        rpo: TimeDelta,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
    ) -> Result<Detector, WindowError> {
        if rpo <= TimeDelta::zero() {
            return Err(WindowError::Rpo);
        }
        if let (Some(s), Some(u)) = (since, until) {
            return Window::new(s, u, rpo).map(Detector::new);
        }
        Ok(Detector {
            since,
            until,
            rpo,
            bounded: None,
            min: None,
            max: None,
            keys: HashMap::new(),
            rows: 0,
            outside: 0,
        })
    }

    /// Events pushed that fell outside the window (ignored).
    pub fn outside(&self) -> u64 {
        self.outside
    }

    /// Events inside the window so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    fn breach(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> bool {
        end - start > self.rpo
    }

    /// One event. Duplicates (same key and timestamp) count in the hourly table but never make a
    /// gap.
    pub fn push(&mut self, key: &str, t: DateTime<Utc>) {
        if self.since.is_some_and(|s| t < s) || self.until.is_some_and(|u| t >= u) {
            self.outside += 1;
            return;
        }
        self.rows += 1;
        self.min = Some(self.min.map_or(t, |m| m.min(t)));
        self.max = Some(self.max.map_or(t, |m| m.max(t)));
        let rpo = self.rpo;
        let breach = |a: DateTime<Utc>, b: DateTime<Utc>| b - a > rpo;
        let bounded = self.bounded;
        let st = match self.keys.get_mut(key) {
            Some(s) => s,
            None => self
                .keys
                .entry(key.to_string())
                .or_insert_with(|| KeyState {
                    hourly: vec![0; bounded.map_or(0, |w| w.hour_count() as usize)],
                    ..KeyState::default()
                }),
        };
        if let Some(w) = bounded {
            if let Some(c) = st.hourly.get_mut(w.hour_index(t)) {
                *c += 1;
            }
        }
        let (Some(first), Some(last)) = (st.first, st.last) else {
            st.first = Some(t);
            st.last = Some(t);
            return;
        };
        if t > last {
            if breach(last, t) {
                st.gaps.insert(last, t);
            }
            st.last = Some(t);
        } else if t < first {
            if breach(t, first) {
                st.gaps.insert(t, first);
            }
            st.first = Some(t);
        } else {
            // Inside [first, last]: only a recorded gap that strictly contains t changes.
            let hit = st
                .gaps
                .range(..t)
                .next_back()
                .filter(|(_, end)| **end > t)
                .map(|(s, e)| (*s, *e));
            if let Some((s, e)) = hit {
                st.gaps.remove(&s);
                if breach(s, t) {
                    st.gaps.insert(s, t);
                }
                if breach(t, e) {
                    st.gaps.insert(t, e);
                }
            }
        }
    }

    /// The report: edge gaps added, and `expected` keys that never appeared reported as silent.
    pub fn finish<'a>(self, expected: impl IntoIterator<Item = &'a str>) -> Report {
        // The edges gaps are measured to: the window's, or where an end is open, the fleet's
        // first and last event. With no event at all an open edge has nothing to stand on, and
        // nothing is judged against it.
        let lo = self.since.or(self.min);
        let hi = self.until.or(self.max);
        let window = match self.bounded {
            Some(w) => w,
            None => {
                // An open end is reported as the edge it stands for (the first or last event):
                // with no hourly table, nothing depends on the window being half-open.
                let since = lo.unwrap_or(DateTime::UNIX_EPOCH);
                let until = hi.unwrap_or(since).max(since);
                Window {
                    since,
                    until,
                    rpo: self.rpo,
                }
            }
        };
        let edge = |a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>| match (a, b) {
            (Some(a), Some(b)) if self.breach(a, b) => Some((a, b)),
            _ => None,
        };
        let mut gaps = Vec::new();
        let mut counts = BTreeMap::new();
        for (key, st) in &self.keys {
            if let (Some(first), Some(last)) = (st.first, st.last) {
                if let Some((start, end)) = edge(lo, Some(first)) {
                    gaps.push(Gap {
                        key: key.clone(),
                        start,
                        end,
                        kind: GapKind::WindowStart,
                    });
                }
                gaps.extend(st.gaps.iter().map(|(s, e)| Gap {
                    key: key.clone(),
                    start: *s,
                    end: *e,
                    kind: GapKind::Between,
                }));
                if let Some((start, end)) = edge(Some(last), hi) {
                    gaps.push(Gap {
                        key: key.clone(),
                        start,
                        end,
                        kind: GapKind::WindowEnd,
                    });
                }
            }
        }
        let empty = || match self.bounded {
            Some(w) => vec![0; w.hour_count() as usize],
            None => Vec::new(),
        };
        for key in expected {
            if !self.keys.contains_key(key) && !counts.contains_key(key) {
                counts.insert(key.to_string(), empty());
                if let Some((start, end)) = edge(lo, hi) {
                    gaps.push(Gap {
                        key: key.to_string(),
                        start,
                        end,
                        kind: GapKind::Silent,
                    });
                }
            }
        }
        for (key, st) in self.keys {
            counts.insert(key, st.hourly);
        }
        gaps.sort();
        Report {
            window,
            gaps,
            hours: if self.bounded.is_some() {
                window.hours()
            } else {
                Vec::new()
            },
            counts,
            rows: self.rows,
        }
    }
}

/// Why a gap the database shows is missing there, judged against the Kafka side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// Kafka holds events of the key inside the gap: they were lost between Kafka and the database.
    LostInPipeline,
    /// Kafka has no event there either: the data was never produced (or never reached Kafka).
    NeverProduced,
}

impl Cause {
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::LostInPipeline => "lost_in_pipeline",
            Cause::NeverProduced => "never_produced",
        }
    }
}

/// Classifies a database-side gap against the Kafka-side report of the same window and RPO.
///
/// Kafka has no event of the key strictly inside `(start, end)` exactly when one of its own gaps
/// (or a silent key) covers that interval: any interval without events that contains a gap is
/// itself longer than the RPO, so it was reported.
pub fn classify(db_gap: &Gap, kafka: &Report) -> Cause {
    let covered = kafka
        .gaps
        .iter()
        .filter(|g| g.key == db_gap.key)
        .any(|g| g.start <= db_gap.start && g.end >= db_gap.end);
    let never_seen = !kafka.counts.contains_key(&db_gap.key);
    if covered || never_seen {
        Cause::NeverProduced
    } else {
        Cause::LostInPipeline
    }
}

/// Parses durations such as `5m`, `300s`, `1h30m`, `500ms` (the forms `--rpo` accepts).
pub fn parse_duration(s: &str) -> Option<TimeDelta> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let mut total = TimeDelta::zero();
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let n: i64 = rest.get(..digits)?.parse().ok()?;
        rest = rest.get(digits..)?;
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = rest.get(..unit_len)?;
        rest = rest.get(unit_len..)?;
        let d = match unit {
            "ms" => TimeDelta::try_milliseconds(n)?,
            "s" | "" => TimeDelta::try_seconds(n)?,
            "m" | "min" => TimeDelta::try_minutes(n)?,
            "h" => TimeDelta::try_hours(n)?,
            "d" => TimeDelta::try_days(n)?,
            _ => return None,
        };
        total = total.checked_add(&d)?;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }
    fn window(since: &str, until: &str, rpo_s: i64) -> Window {
        Window::new(t(since), t(until), TimeDelta::seconds(rpo_s)).unwrap()
    }
    fn gap(key: &str, s: &str, e: &str, kind: GapKind) -> Gap {
        Gap {
            key: key.into(),
            start: t(s),
            end: t(e),
            kind,
        }
    }
    const S: &str = "2026-01-15T08:00:00Z";
    const U: &str = "2026-01-15T10:00:00Z";

    /// Events every `step` seconds of [since, until) except in `holes` (start, end) seconds.
    fn cadence(d: &mut Detector, key: &str, step: i64, holes: &[(i64, i64)]) {
        let (since, until) = (d.since.unwrap(), d.until.unwrap());
        let n = (until - since).num_seconds() / step;
        for i in 0..n {
            let s = i * step;
            if holes.iter().any(|(a, b)| s > *a && s < *b) {
                continue;
            }
            d.push(key, since + TimeDelta::seconds(s));
        }
    }

    #[test]
    fn cadence_equal_to_rpo_is_no_gap() {
        let mut d = Detector::new(window(S, U, 300));
        cadence(&mut d, "a", 300, &[]);
        let r = d.finish([]);
        assert_eq!(r.gaps, vec![]);
        assert_eq!(r.rows, 24);
        assert_eq!(r.counts["a"], vec![12, 12]);
        assert!(!r.breached());
    }

    #[test]
    fn six_minute_outage_is_found() {
        let mut d = Detector::new(window(S, U, 300));
        cadence(&mut d, "a", 1, &[(600, 960)]);
        let r = d.finish([]);
        assert_eq!(
            r.gaps,
            vec![gap(
                "a",
                "2026-01-15T08:10:00Z",
                "2026-01-15T08:16:00Z",
                GapKind::Between
            )]
        );
        assert_eq!(r.max_gap_seconds(), 360.0);
        assert_eq!(r.counts["a"], vec![3600 - 359, 3600]);
    }

    #[test]
    fn edges_and_silent_keys() {
        let mut d = Detector::new(window(S, U, 300));
        d.push("a", t("2026-01-15T08:05:00.000001Z"));
        d.push("a", t("2026-01-15T09:55:00Z"));
        d.push("b", t("2026-01-15T08:05:00Z"));
        cadence(&mut d, "b", 300, &[]);
        // Outside the window: ignored.
        d.push("c", t(U));
        d.push("c", t("2026-01-15T07:59:59Z"));
        assert_eq!(d.outside(), 2);
        let r = d.finish(["a", "b", "c"]);
        assert_eq!(
            r.gaps,
            vec![
                gap("a", S, "2026-01-15T08:05:00.000001Z", GapKind::WindowStart),
                gap(
                    "a",
                    "2026-01-15T08:05:00.000001Z",
                    "2026-01-15T09:55:00Z",
                    GapKind::Between
                ),
                gap("c", S, U, GapKind::Silent),
            ]
        );
        assert_eq!(r.counts["c"], vec![0, 0]);
        assert_eq!(r.keys(), 3);
    }

    #[test]
    fn window_end_gap() {
        let mut d = Detector::new(window(S, U, 300));
        cadence(&mut d, "a", 60, &[(3000, 7200)]);
        let r = d.finish([]);
        assert_eq!(
            r.gaps,
            vec![gap("a", "2026-01-15T08:50:00Z", U, GapKind::WindowEnd)]
        );
    }

    /// The same events in any order give the same report.
    #[test]
    fn order_does_not_matter() {
        let mut events = Vec::new();
        let since = t(S);
        for (key, holes) in [
            ("a", vec![(600i64, 960i64)]),
            ("b", vec![(0, 400), (5000, 5301)]),
        ] {
            for s in (0..7200).step_by(7) {
                if !holes.iter().any(|(x, y)| s >= *x && s < *y) {
                    events.push((key, since + TimeDelta::seconds(s)));
                }
            }
        }
        let run = |ev: &[(&str, DateTime<Utc>)]| {
            let mut d = Detector::new(window(S, U, 300));
            for (k, t) in ev {
                d.push(k, *t);
            }
            d.finish(["a", "b", "z"])
        };
        let sorted = run(&events);
        assert_eq!(sorted.gaps.len(), 4, "{:?}", sorted.gaps);
        // Reversed, interleaved, and a deterministic shuffle.
        let mut rev = events.clone();
        rev.reverse();
        assert_eq!(run(&rev), sorted);
        let mut shuffled = events.clone();
        let mut x: u64 = 0x9e3779b97f4a7c15;
        for i in (1..shuffled.len()).rev() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            shuffled.swap(i, (x % (i as u64 + 1)) as usize);
        }
        assert_eq!(run(&shuffled), sorted);
        // A late event filling the middle of a gap splits it into two short intervals.
        let mut late = events.clone();
        late.push(("a", since + TimeDelta::seconds(780)));
        assert_eq!(run(&late).gaps.iter().filter(|g| g.key == "a").count(), 0);
    }

    #[test]
    fn duplicates_and_one_event() {
        let mut d = Detector::new(window(S, "2026-01-15T08:04:00Z", 300));
        d.push("a", t(S));
        d.push("a", t(S));
        let r = d.finish(["b"]);
        // A 4-minute window cannot hold a gap longer than 5 minutes, not even a silent key's.
        assert_eq!(r.gaps, vec![]);
        assert_eq!(r.counts["a"], vec![2]);
        assert_eq!(r.counts["b"], vec![0]);
    }

    #[test]
    fn open_window_edges_are_the_fleets_first_and_last_event() {
        let mut d = Detector::open(TimeDelta::seconds(300), None, None).unwrap();
        let at = |m: i64| t(S) + TimeDelta::minutes(m);
        for m in (0..60).step_by(5) {
            d.push("a", at(m));
        }
        for m in (20..40).step_by(5) {
            d.push("b", at(m));
        }
        let r = d.finish(["c"]);
        assert_eq!((r.window.since(), r.window.until()), (at(0), at(55)));
        assert!(r.hours.is_empty());
        let g = |k: &str, s: i64, e: i64, kind| Gap {
            key: k.into(),
            start: at(s),
            end: at(e),
            kind,
        };
        assert_eq!(
            r.gaps,
            vec![
                g("b", 0, 20, GapKind::WindowStart),
                g("b", 35, 55, GapKind::WindowEnd),
                g("c", 0, 55, GapKind::Silent),
            ]
        );
        // One end given: that edge is the window's, the other the fleet's.
        let mut d = Detector::open(TimeDelta::seconds(300), None, Some(at(70))).unwrap();
        d.push("a", at(10));
        d.push("a", at(80));
        assert_eq!(d.outside(), 1);
        let r = d.finish(std::iter::empty());
        assert_eq!(r.gaps, vec![g("a", 10, 70, GapKind::WindowEnd)]);
        assert!(Detector::open(TimeDelta::zero(), None, None).is_err());
        // Nothing at all: nothing to judge, not even an expected key.
        let d = Detector::open(TimeDelta::seconds(300), None, None).unwrap();
        assert_eq!(d.finish(["x"]).gaps, vec![]);
    }

    #[test]
    fn windows_and_hours() {
        assert!(Window::new(t(U), t(S), TimeDelta::seconds(1)).is_err());
        assert!(Window::new(t(S), t(U), TimeDelta::zero()).is_err());
        let w = window("2026-01-15T08:30:00Z", "2026-01-15T10:00:01Z", 300);
        assert_eq!(w.hour_count(), 3);
        assert_eq!(w.hours()[0], t(S));
        assert_eq!(window(S, U, 1).hour_count(), 2);
    }

    #[test]
    fn completeness_denominator() {
        let d = Detector::new(window("2026-01-15T08:30:00Z", "2026-01-15T10:15:00Z", 300));
        let r = d.finish([]);
        assert_eq!(
            r.expected_per_hour(TimeDelta::seconds(1)),
            vec![1800, 3600, 900]
        );
        assert_eq!(r.expected_per_hour(TimeDelta::minutes(7)), vec![4, 8, 2]);
        assert_eq!(r.expected_per_hour(TimeDelta::zero()), Vec::<u64>::new());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5m"), Some(TimeDelta::minutes(5)));
        assert_eq!(parse_duration("300s"), Some(TimeDelta::minutes(5)));
        assert_eq!(parse_duration("300"), Some(TimeDelta::minutes(5)));
        assert_eq!(parse_duration("1h30m"), Some(TimeDelta::minutes(90)));
        assert_eq!(parse_duration("250ms"), Some(TimeDelta::milliseconds(250)));
        assert_eq!(parse_duration(""), None);
        assert_eq!(parse_duration("m"), None);
        assert_eq!(parse_duration("5x"), None);
        assert_eq!(parse_duration("99999999999999999999h"), None);
    }

    #[test]
    fn classification() {
        let w = window(S, U, 300);
        let mut k = Detector::new(w);
        cadence(&mut k, "a", 1, &[(600, 960)]);
        let kafka = k.finish(["z"]);
        let inside = gap(
            "a",
            "2026-01-15T08:11:00Z",
            "2026-01-15T08:15:00Z",
            GapKind::Between,
        );
        assert_eq!(classify(&inside, &kafka), Cause::NeverProduced);
        let lost = gap(
            "a",
            "2026-01-15T09:00:00Z",
            "2026-01-15T09:10:00Z",
            GapKind::Between,
        );
        assert_eq!(classify(&lost, &kafka), Cause::LostInPipeline);
        let z = gap("z", S, U, GapKind::Silent);
        assert_eq!(classify(&z, &kafka), Cause::NeverProduced);
    }
}
