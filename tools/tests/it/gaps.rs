//! `drkit gaps`: from testdata's Kafka partitions, from a real PostgreSQL, and both compared.

use crate::replay::support;
use support::{client, rt};

use std::collections::BTreeMap;

use replay::gaps::window_time;
use replay::source::{Flow, Resume, SegmentsSource, Source};
use serde::Deserialize;
use serde_json::Value;

use crate::util::{drkit, output, testdata, Run};

fn gaps(args: &[&str]) -> Run {
    output(drkit().arg("gaps").args(args).output().unwrap())
}

fn plain() -> String {
    testdata().join("logs/plain-0").display().to_string()
}

/// Every (key, time) of plain-0, read independently of `drkit gaps`' own pipeline.
fn plain_events() -> Vec<(String, String)> {
    let mut src = SegmentsSource::open(&testdata().join("logs/plain-0"), None).unwrap();
    let mut ev = Vec::new();
    src.run(&Resume::default(), &mut |m| {
        let v: Value = serde_json::from_slice(m.value.unwrap()).unwrap();
        ev.push((
            v["assetId"].as_str().unwrap().to_string(),
            v["timestamp"].as_str().unwrap().to_string(),
        ));
        Flow::Continue
    })
    .unwrap();
    ev
}

#[test]
fn segments_report_window_edges_and_silent_key() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.txt");
    std::fs::write(&keys, "# fleet\nsilent-asset\n\n").unwrap();
    let keys = keys.display().to_string();
    let run = gaps(&[
        "--segments",
        &plain(),
        "--since",
        "2026-01-15T08:00:00Z",
        "--until",
        "2026-01-15T09:00:00Z",
        "--expected-keys",
        &keys,
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let events = plain_events();
    let mut last: BTreeMap<&str, &str> = BTreeMap::new();
    for (k, t) in &events {
        let e = last.entry(k.as_str()).or_insert(t.as_str());
        if window_time(t) > window_time(e) {
            *e = t.as_str();
        }
    }
    assert_eq!(last.len(), 8);
    // Each asset: one gap from its last event to the window end; the extra key: silent.
    let gap_lines: Vec<&Value> = run.lines.iter().filter(|l| l["type"] == "gap").collect();
    assert_eq!(gap_lines.len(), 9, "{}", run.stdout);
    for (key, t) in &last {
        let g = gap_lines
            .iter()
            .find(|g| g["key"] == *key)
            .unwrap_or_else(|| panic!("no gap for {key}"));
        assert_eq!(g["kind"], "window_end");
        assert_eq!(g["end"], "2026-01-15T09:00:00Z");
        assert_eq!(window_time(g["start"].as_str().unwrap()), window_time(t));
    }
    let silent = gap_lines
        .iter()
        .find(|g| g["key"] == "silent-asset")
        .unwrap();
    assert_eq!(silent["kind"], "silent");
    assert_eq!(silent["seconds"], 3600.0);
    let s = run.summary();
    assert_eq!(s["rows"], events.len() as u64);
    assert_eq!(s["rows"], 197);
    assert_eq!(s["keys"], 9);
    assert_eq!(s["gaps"], 9);
    assert_eq!(s["max_gap_seconds"], 3600.0);
    assert_eq!(run.lines.last().unwrap()["type"], "summary");
}

#[test]
fn segments_within_rpo_exit_0_and_csv() {
    let run = gaps(&[
        "--segments",
        &plain(),
        "--since",
        "2026-01-15T08:00:00Z",
        "--until",
        "2026-01-15T09:00:00Z",
        "--rpo",
        "1h",
        "--format",
        "csv",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "key,start,end,seconds,kind\n");
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &[
            "--segments",
            "/nonexistent",
            "--since",
            "2026-01-01T00:00:00Z",
        ][..],
        &["--rpo", "5x", "--segments", "."],
        &["--since", "tomorrow", "--segments", "."],
        &[
            "--since",
            "2026-01-02T00:00:00Z",
            "--until",
            "2026-01-01T00:00:00Z",
            "--segments",
            ".",
        ],
        &["--since", "2026-01-01T00:00:00Z"],
        &["--compare", "--segments", "."],
        &["--db", "postgres://u:hunter2@127.0.0.1:1/x"],
    ] {
        let run = gaps(args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(!run.stderr.contains("hunter2"), "{}", run.stderr);
    }
    // A pointer without its slash names nothing: refused, not an all-unusable report.
    let dir = plain();
    let run = gaps(&[
        "--segments",
        &dir,
        "--since",
        "2026-01-15T08:00:00Z",
        "--until",
        "2026-01-15T09:00:00Z",
        "--time-pointer",
        "timestamp",
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("\"timestamp\" is not a JSON pointer"),
        "{}",
        run.stderr
    );
}

/// The database report, the exit code and the JSON schema: planted outages in a small fleet.
#[test]
fn db_report_json() {
    let url = support::fresh_db("cli_gaps_db");
    rt().block_on(async {
        client(&url)
            .await
            .batch_execute(
                "CREATE TABLE t (ts timestamptz NOT NULL, asset text NOT NULL);
                 CREATE INDEX ON t (asset, ts);
                 INSERT INTO t SELECT ts, 'a' || a FROM generate_series(1, 3) a,
                   generate_series('2026-01-15 08:00:00+00'::timestamptz, '2026-01-15 09:59:00+00', interval '1 minute') ts;
                 DELETE FROM t WHERE asset = 'a2' AND ts > '2026-01-15 08:20:00+00' AND ts < '2026-01-15 08:26:00+00';
                 CREATE TABLE fleet (id text); INSERT INTO fleet VALUES ('a1'), ('a2'), ('a3'), ('a4');",
            )
            .await
            .unwrap();
    });
    let run = gaps(&[
        "--db",
        &url,
        "--table",
        "t",
        "--time-column",
        "ts",
        "--by",
        "asset",
        "--since",
        "2026-01-15T08:00:00Z",
        "--until",
        "2026-01-15T10:00:00Z",
        "--expected-keys-table",
        "fleet.id",
        "--format",
        "json",
        "--hourly",
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let found: Vec<String> = run
        .lines
        .iter()
        .filter(|l| l["type"] == "gap")
        .map(|l| l.to_string())
        .collect();
    assert_eq!(
        found,
        [
            r#"{"type":"gap","key":"a2","start":"2026-01-15T08:20:00Z","end":"2026-01-15T08:26:00Z","seconds":360.0,"kind":"between"}"#,
            r#"{"type":"gap","key":"a4","start":"2026-01-15T08:00:00Z","end":"2026-01-15T10:00:00Z","seconds":7200.0,"kind":"silent"}"#,
        ]
    );
    let hours: Vec<(String, String, u64)> = run
        .lines
        .iter()
        .filter(|l| l["type"] == "hour")
        .map(|l| {
            (
                l["key"].as_str().unwrap().into(),
                l["hour"].as_str().unwrap().into(),
                l["rows"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(hours.len(), 8);
    assert_eq!(hours[2], ("a2".into(), "2026-01-15T08:00:00Z".into(), 55));
    assert_eq!(hours[7], ("a4".into(), "2026-01-15T09:00:00Z".into(), 0));
    let s = run.summary();
    assert_eq!(
        (&s["keys"], &s["rows"], &s["gaps"], &s["max_gap_seconds"]),
        (&4.into(), &(360 - 5).into(), &2.into(), &7200.0.into())
    );

    // A 6-minute RPO: the 6-minute outage is compliant, the silent key is not.
    let text = gaps(&[
        "--db",
        &url,
        "--table",
        "t",
        "--time-column",
        "ts",
        "--by",
        "asset",
        "--rpo",
        "6m",
        "--since",
        "2026-01-15T08:00:00Z",
        "--until",
        "2026-01-15T10:00:00Z",
    ]);
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(
        text.stdout.starts_with("no gap longer than the RPO\n"),
        "{}",
        text.stdout
    );

    // Completeness against a 1-minute cadence: 355 of 4 keys x 120 minutes.
    let run = gaps(&[
        "--db",
        &url,
        "--table",
        "t",
        "--time-column",
        "ts",
        "--by",
        "asset",
        "--since",
        "2026-01-15T08:00:00Z",
        "--until",
        "2026-01-15T10:00:00Z",
        "--expected-keys-table",
        "fleet.id",
        "--cadence",
        "1m",
        "--format",
        "json",
        "--hourly",
    ]);
    let a2 = run
        .lines
        .iter()
        .find(|l| l["type"] == "hour" && l["key"] == "a2")
        .unwrap();
    assert_eq!((&a2["rows"], &a2["expected"]), (&55.into(), &60.into()));
    assert_eq!(a2["completeness"], 55.0 / 60.0);
    let s = run.summary();
    assert_eq!(s["expected_rows"], 480);
    assert_eq!(s["completeness"], 355.0 / 480.0);
}

/// Kafka holds what the database lacks: lost in the pipeline; neither has it: never produced.
#[test]
fn compare_classifies_missing_rows() {
    let url = support::fresh_db("cli_gaps_compare");
    let events = plain_events();
    let mut per_key: BTreeMap<&str, usize> = BTreeMap::new();
    for (k, _) in &events {
        *per_key.entry(k).or_default() += 1;
    }
    let busiest = per_key
        .iter()
        .max_by_key(|(_, n)| **n)
        .unwrap()
        .0
        .to_string();
    rt().block_on(async {
        let c = client(&url).await;
        c.batch_execute(
            "CREATE TABLE telemetry (timestamp timestamptz NOT NULL, asset_id uuid NOT NULL)",
        )
        .await
        .unwrap();
        for (k, t) in &events {
            c.execute(
                "INSERT INTO telemetry VALUES ($1::text::timestamptz, $2::text::uuid)",
                &[t, k],
            )
            .await
            .unwrap();
        }
        // The pipeline dropped 40 s of the busiest asset.
        c.execute(
            "DELETE FROM telemetry WHERE asset_id = $1::text::uuid
               AND timestamp > '2026-01-15 08:00:30+00' AND timestamp < '2026-01-15 08:01:10+00'",
            &[&busiest],
        )
        .await
        .unwrap();
    });
    let run = gaps(&[
        "--db",
        &url,
        "--segments",
        &plain(),
        "--compare",
        "--rpo",
        "30s",
        "--since",
        "2026-01-15T08:00:00Z",
        "--until",
        "2026-01-15T09:00:00Z",
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    for l in run.stdout.lines() {
        let _: Line = serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"));
    }
    let lost: Vec<&Value> = run
        .lines
        .iter()
        .filter(|l| l["type"] == "gap" && l["cause"] == "lost_in_pipeline")
        .collect();
    assert_eq!(lost.len(), 1, "{}", run.stdout);
    assert_eq!(lost[0]["key"], busiest.as_str());
    assert_eq!(lost[0]["kind"], "between");
    // Every other gap (the idle end of the window) is in Kafka too.
    let others = run
        .lines
        .iter()
        .filter(|l| l["type"] == "gap" && l["cause"] != "lost_in_pipeline");
    for g in others {
        assert_eq!(g["cause"], "never_produced");
        assert_eq!(g["kind"], "window_end");
    }
    let diff: Vec<&Value> = run
        .lines
        .iter()
        .filter(|l| l["type"] == "hour_diff" && l["class"] == "lost_in_pipeline")
        .collect();
    assert_eq!(diff.len(), 1);
    assert_eq!(diff[0]["hour"], "2026-01-15T08:00:00Z");
    let s = run.summary();
    assert_eq!(s["kafka_rows"], 197);
    let lost_rows = diff[0]["kafka"].as_u64().unwrap() - diff[0]["db"].as_u64().unwrap();
    assert!(lost_rows > 0);
    assert_eq!(s["lost_rows"], lost_rows);
    assert_eq!(s["rows"], 197 - lost_rows);

    // The HTML report stands alone.
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("gaps.html");
    let run = gaps(&[
        "--db",
        &url,
        "--segments",
        &plain(),
        "--compare",
        "--rpo",
        "30s",
        "--since",
        "2026-01-15T08:00:00Z",
        "--until",
        "2026-01-15T09:00:00Z",
        "--html",
        html.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 1);
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<svg") && page.contains("lost_in_pipeline"));
    assert!(!page.contains("http://") || !page.contains("src=\"http"));
    assert!(!page.contains("<script"));
}

/// The JSON Lines schema of docs/GAPS.md, field for field: an undocumented field fails here.
#[allow(dead_code)]
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum Line {
    Gap {
        key: String,
        start: String,
        end: String,
        seconds: f64,
        kind: String,
        cause: Option<String>,
    },
    HourDiff {
        key: String,
        hour: String,
        kafka: u64,
        db: u64,
        class: String,
    },
    Hour {
        key: String,
        hour: String,
        rows: u64,
        expected: Option<u64>,
        completeness: Option<f64>,
    },
    Summary {
        keys: u64,
        rows: u64,
        gaps: u64,
        max_gap_seconds: f64,
        rpo_seconds: f64,
        since: String,
        until: String,
        kafka_rows: Option<u64>,
        lost_rows: Option<u64>,
        expected_rows: Option<u64>,
        completeness: Option<f64>,
    },
}

#[test]
fn json_lines_follow_the_documented_schema() {
    let run = gaps(&[
        "--segments",
        &plain(),
        "--since",
        "2026-01-15T08:00:00Z",
        "--until",
        "2026-01-15T10:00:00Z",
        "--rpo",
        "20s",
        "--format",
        "json",
        "--hourly",
        "--cadence",
        "1s",
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let mut kinds = std::collections::HashSet::new();
    for l in run.stdout.lines() {
        let parsed: Line = serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"));
        kinds.insert(std::mem::discriminant(&parsed));
        // `type` comes first, as in every drkit JSON Lines output.
        assert!(l.starts_with("{\"type\":"), "{l}");
    }
    assert_eq!(kinds.len(), 3);
    let doc = std::fs::read_to_string(crate::util::repo_root().join("docs/GAPS.md")).unwrap();
    for field in [
        "max_gap_seconds",
        "rpo_seconds",
        "kafka_rows",
        "lost_rows",
        "hour_diff",
        "`cause`",
        "`class`",
        "expected_rows",
        "completeness",
        "\"expected\"",
    ] {
        assert!(doc.contains(field), "docs/GAPS.md does not mention {field}");
    }
}
