//! `gaps_sql` against a real PostgreSQL: telemetry generated in SQL, planted outages, every one
//! found with its exact key, start, end and kind, and nothing else.

mod support;
use support::rt;

use chrono::{DateTime, TimeDelta, Utc};
use replay::gaps::{Detector, Gap, GapKind, Window};
use replay::gaps_sql::{self, Source, TableName, TimeType};

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn asset(i: u32) -> String {
    format!("00000000-0000-0000-0000-{i:012}")
}

fn gap(i: u32, s: &str, e: &str, kind: GapKind) -> Gap {
    Gap {
        key: asset(i),
        start: t(s),
        end: t(e),
        kind,
    }
}

const SINCE: &str = "2026-01-15T08:00:00Z";
const UNTIL: &str = "2026-01-15T10:00:00Z";

/// The MS5 wide table (variant A, `timestamp without time zone`) or a timestamptz variant, 20
/// assets at 1 s over two hours plus one asset at a 5-minute cadence, with planted outages.
fn plant(time_type: &str) -> String {
    format!(
        r#"
CREATE TABLE telemetry (timestamp {time_type} NOT NULL, asset_id UUID NOT NULL,
  temperature FLOAT, pressure FLOAT, vibration FLOAT, speed FLOAT, metadata JSONB);
CREATE INDEX idx_telemetry_asset_time ON telemetry (asset_id, timestamp);
INSERT INTO telemetry (timestamp, asset_id, temperature)
SELECT ts, ('00000000-0000-0000-0000-' || lpad(a::text, 12, '0'))::uuid, 20 + a
FROM generate_series(1, 20) a,
     generate_series('2026-01-15 08:00:00'::timestamp, '2026-01-15 09:59:59', interval '1 second') ts;
-- Rows just outside the window on both sides never count.
INSERT INTO telemetry (timestamp, asset_id)
SELECT ts, '00000000-0000-0000-0000-000000000001'
FROM (VALUES ('2026-01-15 07:50:00'::timestamp), ('2026-01-15 10:00:00'), ('2026-01-15 10:30:00')) v(ts);
-- Asset 30: one row every 5 minutes, exactly the RPO: never a gap.
INSERT INTO telemetry (timestamp, asset_id)
SELECT ts, '00000000-0000-0000-0000-000000000030'
FROM generate_series('2026-01-15 08:00:00'::timestamp, '2026-01-15 09:55:00', interval '5 minutes') ts;
-- Whole fleet: 7 minutes without rows.
DELETE FROM telemetry WHERE timestamp > '2026-01-15 08:30:00' AND timestamp < '2026-01-15 08:37:00'
  AND asset_id <> '00000000-0000-0000-0000-000000000030';
-- One asset: 10 minutes (invisible in the fleet's hourly count).
DELETE FROM telemetry WHERE asset_id = '00000000-0000-0000-0000-000000000005'
  AND timestamp > '2026-01-15 09:10:00' AND timestamp < '2026-01-15 09:20:00';
-- The runbook's blind spot: a 6-minute outage of one asset (a 10% dip in its hour).
DELETE FROM telemetry WHERE asset_id = '00000000-0000-0000-0000-000000000003'
  AND timestamp > '2026-01-15 09:30:00' AND timestamp < '2026-01-15 09:36:00';
-- Window edges: asset 7 starts late, asset 8 stops early, asset 9 is empty for a whole hour.
DELETE FROM telemetry WHERE asset_id = '00000000-0000-0000-0000-000000000007'
  AND timestamp < '2026-01-15 08:06:00';
DELETE FROM telemetry WHERE asset_id = '00000000-0000-0000-0000-000000000008'
  AND timestamp > '2026-01-15 09:50:00' AND timestamp < '2026-01-15 10:00:00';
DELETE FROM telemetry WHERE asset_id = '00000000-0000-0000-0000-000000000009'
  AND timestamp < '2026-01-15 09:00:00';
-- A gap of exactly the RPO plus one microsecond is a breach; exactly the RPO is not.
DELETE FROM telemetry WHERE asset_id = '00000000-0000-0000-0000-000000000010'
  AND timestamp > '2026-01-15 08:10:00' AND timestamp < '2026-01-15 08:15:00';
DELETE FROM telemetry WHERE asset_id = '00000000-0000-0000-0000-000000000011'
  AND timestamp > '2026-01-15 08:10:00' AND timestamp < '2026-01-15 08:15:01';
UPDATE telemetry SET timestamp = '2026-01-15 08:15:00.000001'
  WHERE asset_id = '00000000-0000-0000-0000-000000000011' AND timestamp = '2026-01-15 08:15:01';
ANALYZE telemetry;
"#
    )
}

fn expected_gaps() -> Vec<Gap> {
    let mut want = Vec::new();
    for a in 1..=20 {
        if a == 9 {
            continue; // its window-start gap covers the fleet outage
        }
        want.push(gap(
            a,
            "2026-01-15T08:30:00Z",
            "2026-01-15T08:37:00Z",
            GapKind::Between,
        ));
    }
    want.push(gap(
        5,
        "2026-01-15T09:10:00Z",
        "2026-01-15T09:20:00Z",
        GapKind::Between,
    ));
    want.push(gap(
        3,
        "2026-01-15T09:30:00Z",
        "2026-01-15T09:36:00Z",
        GapKind::Between,
    ));
    want.push(gap(7, SINCE, "2026-01-15T08:06:00Z", GapKind::WindowStart));
    want.push(gap(8, "2026-01-15T09:50:00Z", UNTIL, GapKind::WindowEnd));
    want.push(gap(9, SINCE, "2026-01-15T09:00:00Z", GapKind::WindowStart));
    want.push(gap(
        11,
        "2026-01-15T08:10:00Z",
        "2026-01-15T08:15:00.000001Z",
        GapKind::Between,
    ));
    want.push(gap(99, SINCE, UNTIL, GapKind::Silent));
    want.sort();
    want
}

fn window() -> Window {
    Window::new(t(SINCE), t(UNTIL), TimeDelta::minutes(5)).unwrap()
}

fn run(time_type: &str, name: &str) -> (replay::gaps::Report, gaps_sql::DbInfo) {
    let url = support::fresh_db(name);
    rt().block_on(async {
        let mut c = gaps_sql::connect(&url).await.unwrap();
        // A session time zone far from UTC must change nothing.
        c.batch_execute(&format!(
            "SET TIME ZONE 'UTC'; {} SET TIME ZONE 'America/New_York';",
            plant(time_type)
        ))
        .await
        .unwrap();
        let src = Source {
            table: TableName::parse("telemetry").unwrap(),
            time_column: "timestamp".into(),
            key_column: "asset_id".into(),
        };
        let expected = vec![asset(1), asset(99)];
        gaps_sql::report(&mut c, &src, window(), &expected)
            .await
            .unwrap()
    })
}

fn check(report: &replay::gaps::Report) {
    assert_eq!(report.gaps, expected_gaps());
    assert_eq!(report.max_gap_seconds(), 7200.0);
    // 20 assets + the 5-minute one + the silent one.
    assert_eq!(report.keys(), 22);
    assert_eq!(report.hours, vec![t(SINCE), t("2026-01-15T09:00:00Z")]);
    // Hourly counts: the 6-minute outage is a 10% dip in one hour, the empty hour a 0.
    assert_eq!(report.counts[&asset(3)], vec![3600 - 419, 3600 - 359]);
    assert_eq!(report.counts[&asset(9)], vec![0, 3600]);
    assert_eq!(report.counts[&asset(30)], vec![12, 12]);
    assert_eq!(report.counts[&asset(99)], vec![0, 0]);
    let fleet: u64 = report.counts.values().map(|c| c[1]).sum();
    assert!(fleet > 0);
    assert_eq!(report.rows, report.counts.values().flatten().sum::<u64>());
}

#[test]
fn planted_gaps_timestamp_without_time_zone() {
    let (report, info) = run("TIMESTAMP", "gaps_naive");
    assert_eq!(info.time_type, TimeType::Timestamp);
    assert_eq!(info.timescaledb, None);
    check(&report);
}

#[test]
fn planted_gaps_timestamptz() {
    let (report, info) = run("TIMESTAMPTZ", "gaps_tz");
    assert_eq!(info.time_type, TimeType::Timestamptz);
    check(&report);
}

/// The SQL and the streaming detector agree row for row on the same data, for RPOs that are and
/// are not divisors of an hour (the SQL's bucket width differs from the RPO then).
#[test]
fn sql_and_detector_agree() {
    let url = support::fresh_db("gaps_agree");
    let rpos = [
        TimeDelta::minutes(5),
        TimeDelta::minutes(7),
        TimeDelta::seconds(61),
        TimeDelta::seconds(1),
        TimeDelta::minutes(90),
    ];
    let (sql, events) = rt().block_on(async {
        let mut c = gaps_sql::connect(&url).await.unwrap();
        c.batch_execute(&format!("SET TIME ZONE 'UTC'; {}", plant("TIMESTAMPTZ")))
            .await
            .unwrap();
        let src = Source {
            table: TableName::parse("telemetry").unwrap(),
            time_column: "timestamp".into(),
            key_column: "asset_id".into(),
        };
        let expected = vec![asset(99)];
        let mut reports = Vec::new();
        for rpo in rpos {
            let w = Window::new(t(SINCE), t(UNTIL), rpo).unwrap();
            let (r, _) = gaps_sql::report(&mut c, &src, w, &expected).await.unwrap();
            reports.push(r);
        }
        // Read in reverse order: the detector must not care.
        let rows = c
            .query(
                "SELECT asset_id::text, timestamp FROM telemetry ORDER BY timestamp DESC",
                &[],
            )
            .await
            .unwrap();
        let ev: Vec<(String, DateTime<Utc>)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        (reports, ev)
    });
    let mut kinds = std::collections::BTreeSet::new();
    for (rpo, sql) in rpos.iter().zip(&sql) {
        let mut d = Detector::new(Window::new(t(SINCE), t(UNTIL), *rpo).unwrap());
        for (k, ts) in &events {
            d.push(k, *ts);
        }
        assert_eq!(d.outside(), 3);
        let streamed = d.finish([asset(99).as_str()]);
        assert_eq!(&streamed, sql, "RPO {rpo}");
        kinds.extend(sql.gaps.iter().map(|g| (rpo.num_seconds(), g.kind)));
    }
    // Not vacuous: the 1 s RPO sees the 5-minute asset's every interval, 90 minutes only the
    // silent key and asset 9's first hour... which is 60 minutes, so only the silent key.
    assert_eq!(
        sql[3].gaps.iter().filter(|g| g.key == asset(30)).count(),
        23 + 1
    );
    assert_eq!(sql[4].gaps.len(), 1);
    assert!(kinds.contains(&(420, GapKind::WindowStart)));
}

#[test]
fn clear_errors() {
    let url = support::fresh_db("gaps_errors");
    rt().block_on(async {
        let mut c = gaps_sql::connect(&url).await.unwrap();
        c.batch_execute(
            "CREATE SCHEMA s; CREATE TABLE s.\"odd \"\"name\" (ts date, k int, at timestamptz)",
        )
        .await
        .unwrap();
        let src = |table: &str, time: &str, key: &str| Source {
            table: TableName::parse(table).unwrap(),
            time_column: time.into(),
            key_column: key.into(),
        };
        let mut errors = Vec::new();
        for s in [
            src("nope", "ts", "k"),
            src("s.odd \"name", "missing", "k"),
            src("s.odd \"name", "at", "missing"),
            src("s.odd \"name", "ts", "k"),
        ] {
            let e = gaps_sql::report(&mut c, &s, window(), &[])
                .await
                .unwrap_err();
            errors.push(e.to_string());
        }
        assert_eq!(
            errors,
            [
                "table nope does not exist",
                "table s.odd \"name has no column \"missing\"",
                "table s.odd \"name has no column \"missing\"",
                "column \"ts\" is date; the time column must be timestamptz or timestamp",
            ]
        );
        // A quoted identifier with a quote in it works end to end (no rows: no gaps, no keys).
        let (r, _) = gaps_sql::report(&mut c, &src("s.odd \"name", "at", "k"), window(), &[])
            .await
            .unwrap();
        assert_eq!((r.rows, r.gaps.len(), r.keys()), (0, 0, 0));
        let e = gaps_sql::connect("postgres://u:hunter2@127.0.0.1:1/db")
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("cannot connect to postgres://u:***@127.0.0.1:1/db"),
            "{e}"
        );
        assert!(!e.contains("hunter2"));
    });
}
