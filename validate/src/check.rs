//! Verdicts: the live snapshot against the baseline, and the checks that need no baseline.
//!
//! One [`Check`] per object and concern, each pass, warn or fail. Only a fail makes the run fail:
//! a warn is a difference a restore can legitimately show (rows written since the baseline, an
//! extra table, a non-TimescaleDB extension at another version) and is reported for a person to
//! judge. The kinds and every rule: docs/VALIDATE.md.

use std::collections::{BTreeMap, BTreeSet};

use crate::snapshot::{Sequence, Snapshot, Table, Telemetry};

/// What a check is about; `as_str` is the stable `check` field of the JSON output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Table,
    RowCount,
    Constraint,
    Index,
    Sequence,
    Extension,
    Hypertable,
    Gaps,
}

impl Kind {
    pub const ALL: [Kind; 8] = [
        Kind::Table,
        Kind::RowCount,
        Kind::Constraint,
        Kind::Index,
        Kind::Sequence,
        Kind::Extension,
        Kind::Hypertable,
        Kind::Gaps,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Table => "table",
            Kind::RowCount => "row_count",
            Kind::Constraint => "constraint",
            Kind::Index => "index",
            Kind::Sequence => "sequence",
            Kind::Extension => "extension",
            Kind::Hypertable => "hypertable",
            Kind::Gaps => "gaps",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    Pass,
    Warn,
    Fail,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

/// One verdict: `object` is the schema-qualified name (a constraint as `table.constraint`, a
/// gap by its key), `detail` says what was compared, with the numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub kind: Kind,
    pub object: String,
    pub status: Status,
    pub detail: String,
}

/// How many rows a table may have lost against the baseline and still pass: the larger of
/// `max_missing_rows` and `max_missing_pct` percent of the baseline count. When either count is a
/// planner estimate the percentage is at least [`ESTIMATE_PCT`]: `ANALYZE` extrapolates from a
/// 30,000-row sample, so a large table's estimate is not its count (a chosen margin, not a
/// measured bound).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Tolerance {
    pub max_missing_rows: u64,
    pub max_missing_pct: f64,
}

/// The smallest percentage allowed when a count is an estimate.
pub const ESTIMATE_PCT: f64 = 2.0;

impl Tolerance {
    fn allowed(&self, baseline: i64, estimated: bool) -> u64 {
        let pct = if estimated {
            self.max_missing_pct.max(ESTIMATE_PCT)
        } else {
            self.max_missing_pct
        };
        let by_pct = (baseline.max(0) as f64 * pct / 100.0).floor() as u64;
        self.max_missing_rows.max(by_pct)
    }
}

fn check(kind: Kind, object: &str, status: Status, detail: String) -> Check {
    Check {
        kind,
        object: object.to_string(),
        status,
        detail,
    }
}

/// Every check: against `baseline` when given, and the baseline-free ones on `live`.
pub fn compare(baseline: Option<&Snapshot>, live: &Snapshot, tol: &Tolerance) -> Vec<Check> {
    let mut out = Vec::new();
    if let Some(b) = baseline {
        tables(b, live, tol, &mut out);
    }
    constraints(baseline, live, &mut out);
    indexes(baseline, live, &mut out);
    sequences(baseline, live, &mut out);
    if let Some(b) = baseline {
        extensions(b, live, &mut out);
        hypertables(b, live, &mut out);
    }
    if live.timescaledb.as_ref().is_some_and(|t| t.restoring) {
        out.push(check(
            Kind::Extension,
            "timescaledb",
            Status::Fail,
            "timescaledb.restoring is on: run SELECT timescaledb_post_restore() \
             (background jobs stay stopped until then)"
                .into(),
        ));
    }
    if let Some(t) = &live.telemetry {
        // Gaps of another table are no precedent.
        let before = baseline
            .and_then(|b| b.telemetry.as_ref())
            .filter(|b| b.table == t.table);
        gaps(before, t, &mut out);
    }
    out
}

fn by_name<T>(items: &[T], name: impl Fn(&T) -> String) -> BTreeMap<String, &T> {
    items.iter().map(|i| (name(i), i)).collect()
}

fn tables(b: &Snapshot, live: &Snapshot, tol: &Tolerance, out: &mut Vec<Check>) {
    let now = by_name(&live.tables, |t| t.name.clone());
    for t in &b.tables {
        let Some(l) = now.get(&t.name) else {
            out.push(check(
                Kind::Table,
                &t.name,
                Status::Fail,
                format!("missing (baseline: {} rows)", t.rows),
            ));
            continue;
        };
        out.push(check(Kind::Table, &t.name, Status::Pass, "present".into()));
        out.push(row_count(t, l, tol));
    }
    let before: BTreeSet<&str> = b.tables.iter().map(|t| t.name.as_str()).collect();
    for t in &live.tables {
        if !before.contains(t.name.as_str()) {
            out.push(check(
                Kind::Table,
                &t.name,
                Status::Warn,
                format!("not in the baseline ({} rows)", t.rows),
            ));
        }
    }
}

fn row_count(b: &Table, l: &Table, tol: &Tolerance) -> Check {
    let estimated = !(b.rows_exact && l.rows_exact);
    let how = if estimated { " (estimated)" } else { "" };
    let allowed = tol.allowed(b.rows, estimated);
    let (status, detail) = match l.rows.cmp(&b.rows) {
        std::cmp::Ordering::Equal => (Status::Pass, format!("{} rows{how}", l.rows)),
        std::cmp::Ordering::Greater => (
            Status::Warn,
            format!(
                "{} rows, {} more than the baseline's {}{how}: written since?",
                l.rows,
                l.rows - b.rows,
                b.rows
            ),
        ),
        std::cmp::Ordering::Less => {
            let missing = b.rows.saturating_sub(l.rows).unsigned_abs();
            let status = if missing > allowed {
                Status::Fail
            } else {
                Status::Warn
            };
            (
                status,
                format!(
                    "{} rows, {missing} fewer than the baseline's {} (tolerance {allowed}{})",
                    l.rows,
                    b.rows,
                    if estimated { ", estimated" } else { "" }
                ),
            )
        }
    };
    check(Kind::RowCount, &l.name, status, detail)
}

fn constraints(baseline: Option<&Snapshot>, live: &Snapshot, out: &mut Vec<Check>) {
    let key = |table: &str, name: &str| format!("{table}.{name}");
    let now = by_name(&live.constraints, |c| key(&c.table, &c.name));
    let mut judged = BTreeSet::new();
    if let Some(b) = baseline {
        for c in &b.constraints {
            let k = key(&c.table, &c.name);
            let Some(l) = now.get(&k) else {
                out.push(check(
                    Kind::Constraint,
                    &k,
                    Status::Fail,
                    format!("missing: {} {}", c.kind, c.definition),
                ));
                continue;
            };
            judged.insert(k.clone());
            if bare(&l.definition) != bare(&c.definition) {
                out.push(check(
                    Kind::Constraint,
                    &k,
                    Status::Fail,
                    format!(
                        "definition differs: {:?}, baseline {:?}",
                        l.definition, c.definition
                    ),
                ));
            } else if !l.validated {
                out.push(not_valid(&k, &l.definition, c.validated));
            } else {
                out.push(check(
                    Kind::Constraint,
                    &k,
                    Status::Pass,
                    format!("{} valid", l.kind),
                ));
            }
        }
    }
    for c in &live.constraints {
        let k = key(&c.table, &c.name);
        if judged.contains(&k) {
            continue;
        }
        if !c.validated {
            out.push(not_valid(&k, &c.definition, true));
        } else if baseline.is_some() {
            out.push(check(
                Kind::Constraint,
                &k,
                Status::Warn,
                format!("not in the baseline: {} {}", c.kind, c.definition),
            ));
        } else {
            out.push(check(
                Kind::Constraint,
                &k,
                Status::Pass,
                format!("{} valid", c.kind),
            ));
        }
    }
}

/// `pg_get_constraintdef` ends a `NOT VALID` constraint's definition with ` NOT VALID`: that is
/// judged on its own, so it is not a difference of definition.
fn bare(def: &str) -> &str {
    def.strip_suffix(" NOT VALID").unwrap_or(def)
}

fn not_valid(k: &str, def: &str, was_valid: bool) -> Check {
    let also = if was_valid {
        ""
    } else {
        " (also in the baseline)"
    };
    check(
        Kind::Constraint,
        k,
        Status::Fail,
        format!(
            "NOT VALID{also}: existing rows were never checked against {}",
            bare(def)
        ),
    )
}

fn indexes(baseline: Option<&Snapshot>, live: &Snapshot, out: &mut Vec<Check>) {
    let now = by_name(&live.indexes, |i| i.name.clone());
    let mut judged = BTreeSet::new();
    let state = |valid: bool, ready: bool| -> Option<&'static str> {
        match (valid, ready) {
            (true, true) => None,
            (false, _) => Some("invalid (a failed CREATE INDEX CONCURRENTLY or REINDEX?)"),
            (true, false) => Some("not ready for inserts"),
        }
    };
    if let Some(b) = baseline {
        for i in &b.indexes {
            let Some(l) = now.get(&i.name) else {
                out.push(check(
                    Kind::Index,
                    &i.name,
                    Status::Fail,
                    format!("missing: {}", i.definition),
                ));
                continue;
            };
            judged.insert(i.name.clone());
            let c = if l.definition != i.definition {
                check(
                    Kind::Index,
                    &i.name,
                    Status::Fail,
                    format!(
                        "definition differs: {:?}, baseline {:?}",
                        l.definition, i.definition
                    ),
                )
            } else if let Some(s) = state(l.valid, l.ready) {
                check(Kind::Index, &i.name, Status::Fail, s.to_string())
            } else {
                check(Kind::Index, &i.name, Status::Pass, "valid".into())
            };
            out.push(c);
        }
    }
    for i in &live.indexes {
        if judged.contains(&i.name) {
            continue;
        }
        let c = if let Some(s) = state(i.valid, i.ready) {
            check(Kind::Index, &i.name, Status::Fail, s.to_string())
        } else if baseline.is_some() {
            check(
                Kind::Index,
                &i.name,
                Status::Warn,
                format!("not in the baseline: {}", i.definition),
            )
        } else {
            check(Kind::Index, &i.name, Status::Pass, "valid".into())
        };
        out.push(c);
    }
}

fn seq_position(s: &Sequence) -> String {
    match (&s.column, s.column_max) {
        (Some(c), Some(m)) => format!("next value {}, max({c}) = {m}", s.next_value()),
        (Some(c), None) => format!("next value {}, {c} empty or not an integer", s.next_value()),
        (None, _) => format!("next value {}, owned by no column", s.next_value()),
    }
}

fn sequences(baseline: Option<&Snapshot>, live: &Snapshot, out: &mut Vec<Check>) {
    let before = baseline.map(|b| by_name(&b.sequences, |s| s.name.clone()));
    for s in &live.sequences {
        let was = before.as_ref().and_then(|b| b.get(&s.name));
        let c = if s.behind() {
            check(
                Kind::Sequence,
                &s.name,
                Status::Fail,
                format!(
                    "behind its column: {}; the next insert collides (setval the sequence past the max)",
                    seq_position(s)
                ),
            )
        } else if let Some(w) = was.filter(|w| s.next_value() < w.next_value() && s.increment > 0) {
            check(
                Kind::Sequence,
                &s.name,
                Status::Warn,
                format!(
                    "{}; lower than the baseline's next value {}: values handed out before may be reused",
                    seq_position(s),
                    w.next_value()
                ),
            )
        } else {
            check(Kind::Sequence, &s.name, Status::Pass, seq_position(s))
        };
        out.push(c);
    }
    if let Some(b) = baseline {
        let now: BTreeSet<&str> = live.sequences.iter().map(|s| s.name.as_str()).collect();
        for s in &b.sequences {
            if !now.contains(s.name.as_str()) {
                out.push(check(
                    Kind::Sequence,
                    &s.name,
                    Status::Fail,
                    "missing".into(),
                ));
            }
        }
    }
}

fn extensions(b: &Snapshot, live: &Snapshot, out: &mut Vec<Check>) {
    let now = by_name(&live.extensions, |e| e.name.clone());
    for e in &b.extensions {
        // TimescaleDB's catalog and chunks only work with the version that wrote them.
        let severe = if e.name == "timescaledb" {
            Status::Fail
        } else {
            Status::Warn
        };
        let c = match now.get(&e.name) {
            None => check(
                Kind::Extension,
                &e.name,
                severe,
                format!("missing (baseline: version {})", e.version),
            ),
            Some(l) if l.version != e.version => check(
                Kind::Extension,
                &e.name,
                severe,
                format!("version {}, baseline {}", l.version, e.version),
            ),
            Some(l) => check(
                Kind::Extension,
                &e.name,
                Status::Pass,
                format!("version {}", l.version),
            ),
        };
        out.push(c);
    }
    let before: BTreeSet<&str> = b.extensions.iter().map(|e| e.name.as_str()).collect();
    for e in &live.extensions {
        if !before.contains(e.name.as_str()) {
            out.push(check(
                Kind::Extension,
                &e.name,
                Status::Warn,
                format!("not in the baseline (version {})", e.version),
            ));
        }
    }
}

fn hypertables(b: &Snapshot, live: &Snapshot, out: &mut Vec<Check>) {
    let Some(bt) = &b.timescaledb else {
        return;
    };
    let now = live
        .timescaledb
        .as_ref()
        .map(|t| by_name(&t.hypertables, |h| h.name.clone()))
        .unwrap_or_default();
    for h in &bt.hypertables {
        let c = match now.get(&h.name) {
            None => check(
                Kind::Hypertable,
                &h.name,
                Status::Fail,
                format!("not a hypertable (baseline: {} chunks)", h.chunks),
            ),
            Some(l) if l.chunks < h.chunks => check(
                Kind::Hypertable,
                &h.name,
                Status::Fail,
                format!("{} chunks, baseline {}", l.chunks, h.chunks),
            ),
            Some(l) if l.chunks > h.chunks => check(
                Kind::Hypertable,
                &h.name,
                Status::Warn,
                format!("{} chunks, baseline {}: written since?", l.chunks, h.chunks),
            ),
            Some(l) => check(
                Kind::Hypertable,
                &h.name,
                Status::Pass,
                format!("{} chunks", l.chunks),
            ),
        };
        out.push(c);
    }
}

/// The gap check when the telemetry table could not be read (`why`: missing table or column).
pub fn gaps_unavailable(table: &str, why: &str) -> Check {
    check(
        Kind::Gaps,
        table,
        Status::Fail,
        format!("not checked: {why}"),
    )
}

/// Each gap over the RPO fails, unless the baseline had the same gap (same key, kind, start and
/// end): then it predates the restore and is a warning. No gap at all is one pass line.
fn gaps(baseline: Option<&Telemetry>, t: &Telemetry, out: &mut Vec<Check>) {
    let old: BTreeSet<(&str, &str, &str, &str)> = baseline
        .map(|b| {
            b.gaps
                .iter()
                .map(|g| {
                    (
                        g.key.as_str(),
                        g.kind.as_str(),
                        g.start.as_str(),
                        g.end.as_str(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    if t.gaps.is_empty() {
        out.push(check(
            Kind::Gaps,
            &t.table,
            Status::Pass,
            format!(
                "no gap over the {} s RPO in {} .. {} ({} keys, {} rows)",
                t.rpo_seconds,
                t.since,
                t.until,
                t.keys.len(),
                t.rows
            ),
        ));
    }
    for g in &t.gaps {
        let seen = old.contains(&(
            g.key.as_str(),
            g.kind.as_str(),
            g.start.as_str(),
            g.end.as_str(),
        ));
        out.push(check(
            Kind::Gaps,
            &format!("{}[{}]", t.table, g.key),
            if seen { Status::Warn } else { Status::Fail },
            format!(
                "{} gap {} .. {} ({} s > {} s RPO){}",
                g.kind,
                g.start,
                g.end,
                g.seconds,
                t.rpo_seconds,
                if seen { ", also in the baseline" } else { "" }
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::snapshot::{Extension, Hypertable, Timescale, FORMAT, VERSION};

    /// A snapshot with TimescaleDB `version` and one hypertable of `chunks` chunks.
    fn tsdb(version: &str, chunks: i64, restoring: bool) -> Snapshot {
        Snapshot {
            format: FORMAT.into(),
            version: VERSION,
            taken_at: String::new(),
            elapsed_ms: 0,
            server_version: "15".into(),
            database: "ms5".into(),
            row_counts: "exact".into(),
            tables: vec![],
            constraints: vec![],
            indexes: vec![],
            sequences: vec![],
            extensions: vec![
                Extension {
                    name: "pgcrypto".into(),
                    version: "1.3".into(),
                },
                Extension {
                    name: "timescaledb".into(),
                    version: version.into(),
                },
            ],
            timescaledb: Some(Timescale {
                version: version.into(),
                restoring,
                hypertables: vec![Hypertable {
                    name: "public.telemetry".into(),
                    chunks,
                }],
            }),
            telemetry: None,
        }
    }

    fn verdicts(c: &[Check]) -> Vec<(Kind, &str, Status)> {
        c.iter()
            .map(|c| (c.kind, c.object.as_str(), c.status))
            .collect()
    }

    #[test]
    fn timescaledb_version_chunks_and_restore_mode() {
        let none = Tolerance::default();
        let b = tsdb("2.17.2", 24, false);
        assert!(compare(Some(&b), &b, &none)
            .iter()
            .all(|c| c.status == Status::Pass));
        let mut live = tsdb("2.18.0", 20, true);
        if let Some(e) = live.extensions.first_mut() {
            e.version = "1.4".into();
        }
        assert_eq!(
            verdicts(&compare(Some(&b), &live, &none)),
            [
                (Kind::Extension, "pgcrypto", Status::Warn),
                (Kind::Extension, "timescaledb", Status::Fail),
                (Kind::Hypertable, "public.telemetry", Status::Fail),
                (Kind::Extension, "timescaledb", Status::Fail),
            ]
        );
        let more = tsdb("2.17.2", 25, false);
        assert_eq!(
            verdicts(&compare(Some(&b), &more, &none)),
            [
                (Kind::Extension, "pgcrypto", Status::Pass),
                (Kind::Extension, "timescaledb", Status::Pass),
                (Kind::Hypertable, "public.telemetry", Status::Warn),
            ]
        );
        let mut plain = tsdb("2.17.2", 24, false);
        plain.extensions.pop();
        plain.timescaledb = None;
        assert_eq!(
            verdicts(&compare(Some(&b), &plain, &none)),
            [
                (Kind::Extension, "pgcrypto", Status::Pass),
                (Kind::Extension, "timescaledb", Status::Fail),
                (Kind::Hypertable, "public.telemetry", Status::Fail),
            ]
        );
        // Restore mode needs no baseline.
        assert_eq!(
            verdicts(&compare(None, &tsdb("2.17.2", 24, true), &none)),
            [(Kind::Extension, "timescaledb", Status::Fail)]
        );
    }

    fn telemetry(table: &str, gaps: &[(&str, &str)]) -> Telemetry {
        Telemetry {
            table: table.into(),
            time_column: "timestamp".into(),
            key_column: "asset_id".into(),
            rpo_seconds: 300.0,
            since: "2026-11-20T08:00:00Z".into(),
            until: "2026-11-20T10:00:00Z".into(),
            rows: 1,
            keys: vec!["a1".into(), "a2".into()],
            gaps: gaps
                .iter()
                .map(|(key, start)| crate::snapshot::TelemetryGap {
                    key: key.to_string(),
                    start: start.to_string(),
                    end: "2026-11-20T09:00:00Z".into(),
                    seconds: 600.0,
                    kind: "between".into(),
                })
                .collect(),
        }
    }

    #[test]
    fn gaps_of_the_baseline_warn_new_ones_fail() {
        let none = Tolerance::default();
        let mut b = tsdb("2.17.2", 1, false);
        b.telemetry = Some(telemetry("telemetry", &[("a1", "2026-11-20T08:50:00Z")]));
        let mut live = b.clone();
        live.telemetry = Some(telemetry(
            "telemetry",
            &[
                ("a1", "2026-11-20T08:50:00Z"),
                ("a2", "2026-11-20T08:50:00Z"),
                ("a1", "2026-11-20T08:40:00Z"),
            ],
        ));
        let gaps: Vec<_> = compare(Some(&b), &live, &none)
            .into_iter()
            .filter(|c| c.kind == Kind::Gaps)
            .map(|c| (c.object, c.status))
            .collect();
        assert_eq!(
            gaps,
            [
                ("telemetry[a1]".to_string(), Status::Warn),
                ("telemetry[a2]".to_string(), Status::Fail),
                ("telemetry[a1]".to_string(), Status::Fail),
            ]
        );
        // The same gap in another table's report is no precedent; without gaps, one pass line.
        if let Some(t) = b.telemetry.as_mut() {
            t.table = "public.other".into();
        }
        let statuses = |b: &Snapshot, l: &Snapshot| -> Vec<Status> {
            compare(Some(b), l, &none)
                .into_iter()
                .filter(|c| c.kind == Kind::Gaps)
                .map(|c| c.status)
                .collect()
        };
        assert_eq!(
            statuses(&b, &live),
            [Status::Fail, Status::Fail, Status::Fail]
        );
        live.telemetry = Some(telemetry("telemetry", &[]));
        assert_eq!(statuses(&b, &live), [Status::Pass]);
    }

    #[test]
    fn tolerance_takes_the_larger_allowance() {
        let t = Tolerance {
            max_missing_rows: 5,
            max_missing_pct: 1.0,
        };
        assert_eq!(t.allowed(100, false), 5);
        assert_eq!(t.allowed(10_000, false), 100);
        assert_eq!(t.allowed(10_000, true), 200);
        assert_eq!(Tolerance::default().allowed(1_000_000, false), 0);
    }

    fn table(rows: i64, exact: bool) -> Table {
        Table {
            name: "public.t".into(),
            rows,
            rows_exact: exact,
            bytes: 0,
        }
    }

    #[test]
    fn row_counts_fail_only_beyond_the_tolerance() {
        let none = Tolerance::default();
        assert_eq!(
            row_count(&table(10, true), &table(10, true), &none).status,
            Status::Pass
        );
        assert_eq!(
            row_count(&table(10, true), &table(9, true), &none).status,
            Status::Fail
        );
        assert_eq!(
            row_count(&table(10, true), &table(11, true), &none).status,
            Status::Warn
        );
        assert_eq!(
            row_count(&table(1000, true), &table(990, false), &none).status,
            Status::Warn
        );
        assert_eq!(
            row_count(&table(1000, true), &table(970, false), &none).status,
            Status::Fail
        );
    }
}
