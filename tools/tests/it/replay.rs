//! `drkit replay` against a real PostgreSQL (the shared fixture in replay/tests/support): the
//! table must equal the source exactly — every row, no duplicate, no hole — after a run, a rerun,
//! and a SIGKILL mid-run followed by a rerun. Expected rows come from kafka-protocol's
//! independent decoder and serde_json, never from drkit's own reader.

use std::fs;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use kafka_protocol::records::RecordBatchDecoder;
use serde_json::Value;

use crate::util::{drkit, testdata};

#[path = "../../../replay/tests/support/mod.rs"]
pub(crate) mod support;
use support::{client, rt};

/// One source record, decoded independently.
#[derive(Debug, Clone)]
struct Rec {
    offset: i64,
    value: Vec<u8>,
}

/// Every data record of a partition directory, in offset order (kafka-protocol's decoder).
fn source_records(dir: &Path) -> Vec<Rec> {
    let mut logs: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort();
    let mut out = vec![];
    for log in logs {
        let mut buf = Bytes::from(fs::read(&log).unwrap());
        while buf.remaining() >= 61 {
            let len = i32::from_be_bytes(buf[8..12].try_into().unwrap()) as usize;
            if 12 + len > buf.remaining() {
                break;
            }
            let mut one = buf.split_to(12 + len);
            let set = RecordBatchDecoder::decode(&mut one).unwrap();
            for r in set.records {
                if r.control {
                    continue;
                }
                out.push(Rec {
                    offset: r.offset,
                    value: r.value.map(|v| v.to_vec()).unwrap_or_default(),
                });
            }
        }
    }
    out
}

/// A wide-table row as text: (timestamp, asset_id, temperature, pressure, vibration, speed, metadata).
type Wide = (
    String,
    String,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<String>,
);

fn expected_wide(values: &[Vec<u8>]) -> Vec<Wide> {
    let mut v: Vec<Wide> = values
        .iter()
        .map(|b| {
            let j: Value = serde_json::from_slice(b).unwrap();
            let f = |m: &str| j["data"][m].as_f64();
            (
                j["timestamp"].as_str().unwrap().to_string(),
                j["assetId"].as_str().unwrap().to_string(),
                f("temperature"),
                f("pressure"),
                f("vibration"),
                f("speed"),
                j.get("metadata")
                    .filter(|m| !m.is_null())
                    .map(|m| m.to_string()),
            )
        })
        .collect();
    v.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    v
}

fn exec(url: &str, sql: &str) {
    rt().block_on(async { client(url).await.batch_execute(sql).await.unwrap() });
}

fn table_wide(url: &str, table: &str) -> Vec<Wide> {
    rt().block_on(async {
        let c = client(url).await;
        let rows = c
            .query(
                &format!(
                    "SELECT to_char(\"timestamp\"::timestamp, 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), \
                     asset_id::text, temperature, pressure, vibration, speed, metadata::text FROM {table}"
                ),
                &[],
            )
            .await
            .unwrap();
        let mut v: Vec<Wide> = rows
            .iter()
            .map(|r| {
                (
                    r.get(0),
                    r.get(1),
                    r.get(2),
                    r.get(3),
                    r.get(4),
                    r.get(5),
                    r.get(6),
                )
            })
            .collect();
        v.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
        v
    })
}

/// `drkit replay --segments DIR --mapping MAPPING --create-table` into `url`.
fn replay_segments(url: &str, dir: &str, mapping: &str) -> Out {
    replay(
        url,
        &["--segments", dir, "--mapping", mapping, "--create-table"],
    )
}

fn count(url: &str, sql: &str) -> i64 {
    rt().block_on(async { client(url).await.query_one(sql, &[]).await.unwrap().get(0) })
}

/// The first column of every row of `sql`, as int8.
fn ints(url: &str, sql: &str) -> Vec<i64> {
    rt().block_on(async {
        client(url)
            .await
            .query(sql, &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    })
}

struct Out {
    code: i32,
    summary: Value,
    stderr: String,
}

/// Runs `drkit replay --format json` with the session in UTC (the `timestamp` column test).
fn replay(url: &str, args: &[&str]) -> Out {
    let out = drkit()
        .arg("replay")
        .args(["--db", url, "--format", "json"])
        .args(args)
        .env("PGTZ", "UTC")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let summary = stdout
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or(Value::Null);
    Out {
        code: out.status.code().unwrap_or(-1),
        summary,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn wide_partition_round_trip(name: &str) {
    let dir = testdata().join("logs").join(name);
    let recs = source_records(&dir);
    assert!(recs.len() > 100, "{name}: {} records", recs.len());
    let values: Vec<Vec<u8>> = recs.iter().map(|r| r.value.clone()).collect();
    let url = support::fresh_db(name);
    let d = dir.to_str().unwrap();
    let first = replay_segments(&url, d, "ms5-telemetry");
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert_eq!(first.summary["type"], "summary");
    assert_eq!(first.summary["rows"], recs.len() as u64);
    assert_eq!(first.summary["dead_letters"], 0);
    assert_eq!(table_wide(&url, "telemetry"), expected_wide(&values));
    let progress = count(
        &url,
        "SELECT next_offset FROM drkit_replay_progress WHERE source = 'kafka'",
    );
    assert_eq!(progress, recs.last().unwrap().offset + 1);

    let again = replay(&url, &["--segments", d, "--mapping", "ms5-telemetry"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(again.summary["rows"], 0);
    assert_eq!(again.summary["resumed_skipped"], recs.len() as u64);
    assert_eq!(table_wide(&url, "telemetry"), expected_wide(&values));
}

#[test]
fn replay_snappy_partition_exactly_and_rerun_adds_nothing() {
    wide_partition_round_trip("snappy-0");
}

#[test]
fn replay_plain_partition_exactly_and_rerun_adds_nothing() {
    wide_partition_round_trip("plain-0");
}

#[test]
fn replay_jsonl_dump_exactly_resumes_by_line() {
    let recs = source_records(&testdata().join("logs/snappy-0"));
    let values: Vec<Vec<u8>> = recs.iter().map(|r| r.value.clone()).collect();
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("telemetry.jsonl");
    let half = values.len() / 2;
    let mut text = Vec::new();
    for v in &values[..half] {
        text.extend_from_slice(v);
        text.push(b'\n');
    }
    text.push(b'\n'); // a blank line is skipped, not a dead letter
    fs::write(&file, &text).unwrap();
    let url = support::fresh_db("jsonl");
    let f = file.to_str().unwrap();
    let args = ["--jsonl", f, "--mapping", "ms5-telemetry", "--create-table"];
    let r = replay(&url, &args);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        table_wide(&url, "telemetry"),
        expected_wide(&values[..half])
    );

    // The dump grows (the console consumer kept running): only the new lines are added.
    for v in &values[half..] {
        text.extend_from_slice(v);
        text.push(b'\n');
    }
    fs::write(&file, &text).unwrap();
    let r = replay(&url, &args);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.summary["rows"], (values.len() - half) as u64);
    assert_eq!(table_wide(&url, "telemetry"), expected_wide(&values));
    let r = replay(&url, &args);
    assert_eq!(r.summary["rows"], 0);
    assert_eq!(table_wide(&url, "telemetry"), expected_wide(&values));
}

/// A mapping that keeps each row's Kafka offset, so holes and duplicates are visible exactly.
const OFFSET_MAPPING: &str = r#"
table = "tel"
columns = [
  { name = "kafka_offset", type = "int8",        from = "offset" },
  { name = "event_id",     type = "uuid",        from = "/eventId" },
  { name = "asset_id",     type = "uuid",        from = "/assetId" },
  { name = "ts",           type = "timestamptz", from = "/timestamp" },
]
"#;

#[test]
fn replay_killed_mid_run_then_rerun_equals_source() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("telemetry-0");
    let made = drkit_testdata::bench::write_bench(&drkit_testdata::bench::BenchConfig {
        out: dir.clone(),
        segment_bytes: 8 << 20,
        segments: 3,
        compression: kafka_protocol::records::Compression::Snappy,
        batch_records: 500,
    })
    .unwrap();
    let total = made["records"].as_i64().unwrap();
    assert!(total >= 200_000, "{made}");
    let mapping = tmp.path().join("m.toml");
    fs::write(&mapping, OFFSET_MAPPING).unwrap();
    let url = support::fresh_db("crash");
    let args = |first: bool| {
        let mut a = vec![
            "replay".to_string(),
            "--db".into(),
            url.clone(),
            "--segments".into(),
            dir.to_str().unwrap().into(),
            "--mapping".into(),
            mapping.to_str().unwrap().into(),
            "--batch-rows".into(),
            "10000".into(),
        ];
        if first {
            a.push("--create-table".into());
        }
        a
    };
    let mut child = drkit()
        .args(args(true))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until some transactions are committed, then SIGKILL.
    let deadline = Instant::now() + Duration::from_secs(120);
    let committed = loop {
        let n = rt().block_on(async {
            let c = client(&url).await;
            c.query_opt(
                "SELECT next_offset FROM drkit_replay_progress WHERE source = 'kafka'",
                &[],
            )
            .await
            .ok()
            .flatten()
            .map(|r| r.get::<_, i64>(0))
        });
        if let Some(n) = n.filter(|n| *n >= 30_000) {
            break n;
        }
        assert!(Instant::now() < deadline, "no progress within 2 minutes");
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before the kill"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    let rows_after_kill = count(&url, "SELECT count(*) FROM tel");
    eprintln!("killed at {rows_after_kill} of {total} rows (progress seen {committed})");
    assert!(committed < total, "killed after the end");
    assert!(
        rows_after_kill < total,
        "killed too late: {rows_after_kill}"
    );
    // Progress and rows agree at the kill: nothing committed without its offset, or vice versa.
    let progress = count(
        &url,
        "SELECT next_offset FROM drkit_replay_progress WHERE source = 'kafka'",
    );
    assert_eq!(rows_after_kill, progress);

    let out = drkit().args(args(false)).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Exactly the source: offsets 0..total once each, and each offset's event and asset.
    let recs = source_records(&dir);
    assert_eq!(recs.len() as i64, total);
    let rows = rt().block_on(async {
        client(&url)
            .await
            .query(
                "SELECT kafka_offset, event_id::text, asset_id::text, \
                 to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') FROM tel ORDER BY kafka_offset",
                &[],
            )
            .await
            .unwrap()
    });
    assert_eq!(rows.len() as i64, total, "duplicates or holes");
    for (r, rec) in rows.iter().zip(&recs) {
        let j: Value = serde_json::from_slice(&rec.value).unwrap();
        assert_eq!(r.get::<_, i64>(0), rec.offset);
        assert_eq!(r.get::<_, String>(1), j["eventId"].as_str().unwrap());
        assert_eq!(r.get::<_, String>(2), j["assetId"].as_str().unwrap());
        assert_eq!(r.get::<_, String>(3), j["timestamp"].as_str().unwrap());
    }
}

#[test]
fn dedup_key_skips_rows_the_table_already_holds() {
    let dir = testdata().join("logs/snappy-0");
    let d = dir.to_str().unwrap();
    let recs = source_records(&dir);
    let values: Vec<Vec<u8>> = recs.iter().map(|r| r.value.clone()).collect();
    let url = support::fresh_db("dedup");
    exec(
        &url,
        "CREATE TABLE telemetry (\"timestamp\" timestamptz NOT NULL, asset_id uuid NOT NULL, \
         temperature float8, pressure float8, vibration float8, speed float8, metadata jsonb)",
    );
    // Without a unique index the dedup path refuses to start.
    let r = replay(
        &url,
        &[
            "--segments",
            d,
            "--mapping",
            "ms5-telemetry",
            "--dedup-key",
            "asset_id,timestamp",
        ],
    );
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("no unique index"), "{}", r.stderr);
    exec(
        &url,
        "CREATE UNIQUE INDEX ON telemetry (asset_id, \"timestamp\")",
    );
    // The table already holds the first part (an earlier restore), loaded by another path.
    let cut = values.len() / 3;
    let tmp = tempfile::tempdir().unwrap();
    let part = tmp.path().join("part.jsonl");
    fs::write(
        &part,
        values[..cut]
            .iter()
            .flat_map(|v| v.iter().copied().chain([b'\n']))
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    let r = replay(
        &url,
        &[
            "--jsonl",
            part.to_str().unwrap(),
            "--mapping",
            "ms5-telemetry",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(count(&url, "SELECT count(*) FROM telemetry"), cut as i64);
    let r = replay(
        &url,
        &[
            "--segments",
            d,
            "--mapping",
            "ms5-telemetry",
            "--dedup-key",
            "asset_id,timestamp",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.summary["duplicates"], cut as u64);
    assert_eq!(r.summary["rows"], (values.len() - cut) as u64);
    assert_eq!(table_wide(&url, "telemetry"), expected_wide(&values));
}

const GOOD: &str = r#"{"timestamp":"2026-01-15T08:00:00.000Z","assetId":"00010203-0405-4607-8809-0a0b0c0d0e0f","n":1}"#;

fn bad_input_file(dir: &Path) -> std::path::PathBuf {
    let lines = [
        GOOD.to_string(),
        "{\"timestamp\": broken".to_string(),
        GOOD.replace(r#""assetId":"00010203-0405-4607-8809-0a0b0c0d0e0f","#, ""),
        GOOD.replace("2026-01-15T08:00:00.000Z", "15/01/2026 8am"),
        GOOD.replace(r#""n":1"#, r#""n":1e30"#),
        GOOD.replace(r#""n":1"#, r#""n":2"#),
    ];
    let f = dir.join("bad.jsonl");
    fs::write(&f, lines.join("\n") + "\n").unwrap();
    f
}

const N_MAPPING: &str = r#"
table = "events"
columns = [
  { name = "ts",    type = "timestamptz", from = "/timestamp" },
  { name = "asset", type = "uuid",        from = "/assetId" },
  { name = "n",     type = "int8",        from = "/n" },
  { name = "line",  type = "int8",        from = "offset" },
]
"#;

/// The `line` column of the N_MAPPING table, in order.
fn event_lines(url: &str) -> Vec<i64> {
    ints(url, "SELECT line FROM events ORDER BY line")
}

/// `--jsonl INPUT --mapping MAPPING --create-table --dead-letter DEAD [EXTRA...]`.
fn replay_jsonl_to_new_table(
    url: &str,
    input: &Path,
    mapping: &Path,
    dead: &Path,
    extra: &[&str],
) -> Out {
    let mut args = vec![
        "--jsonl",
        input.to_str().unwrap(),
        "--mapping",
        mapping.to_str().unwrap(),
        "--create-table",
        "--dead-letter",
        dead.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    replay(url, &args)
}

/// (offset, kind) of each dead letter.
fn offsets_and_kinds(dead: &[Value]) -> Vec<(i64, &str)> {
    dead.iter()
        .map(|v| (v["offset"].as_i64().unwrap(), v["kind"].as_str().unwrap()))
        .collect()
}

fn dead_letters(path: &Path) -> Vec<Value> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn bad_messages_go_to_the_dead_letter_file_with_coordinates() {
    let tmp = tempfile::tempdir().unwrap();
    let input = bad_input_file(tmp.path());
    let mapping = tmp.path().join("n.toml");
    fs::write(&mapping, N_MAPPING).unwrap();
    let dead = tmp.path().join("dead.jsonl");
    let url = support::fresh_db("dead");
    let r = replay_jsonl_to_new_table(&url, &input, &mapping, &dead, &[]);
    assert_eq!(r.code, 1, "dead letters exit 1: {}", r.stderr);
    assert_eq!(r.summary["rows"], 2);
    assert_eq!(r.summary["dead_letters"], 4);
    let d = dead_letters(&dead);
    assert_eq!(
        offsets_and_kinds(&d),
        [
            (2, "malformed_json"),
            (3, "missing_field"),
            (4, "bad_time"),
            (5, "out_of_range")
        ]
    );
    assert!(d
        .iter()
        .all(|v| v["topic"] == "jsonl" && v["source"] == "jsonl:bad.jsonl"));
    assert!(d[0]["value"].as_str().unwrap().contains("broken"));
    assert_eq!(event_lines(&url), [1, 6]);
}

/// PostgreSQL refuses NUL in text and jsonb for the whole COPY: such messages must become dead
/// letters of their own while the rest lands, and jsonb must keep the value's own digits.
#[test]
fn nul_characters_are_dead_letters_and_jsonb_keeps_its_digits() {
    let tmp = tempfile::tempdir().unwrap();
    let good = r#"{"timestamp":"2026-01-15T08:00:00.000Z","t":"a\\u0000b","j":{"big":123456789012345678901234567890.5,"s":"é"}}"#;
    let lines = [
        good.to_string(),
        good.replace(r#""a\\u0000b""#, r#""a\u0000b""#),
        good.replace(r#""s":"é""#, r#""s":["x\u0000"]"#),
        good.replace("\"t\":", "\"t\" : ")
            .replace("\"é\"", "\"\\u00e9\\ud83d\\ude00\""),
        // Beyond PostgreSQL's numeric (jsonb stores numbers as numeric): a dead letter, not a
        // failed COPY; the largest that fits lands.
        good.replace(r#""s":"é""#, r#""s":"é","n":1e131072"#),
        good.replace(r#""s":"é""#, r#""s":"é","n":1e131071"#),
    ];
    let input = tmp.path().join("nul.jsonl");
    fs::write(&input, lines.join("\n") + "\n").unwrap();
    let mapping = tmp.path().join("t.toml");
    fs::write(
        &mapping,
        r#"
table = "texts"
columns = [
  { name = "ts",   type = "timestamptz", from = "/timestamp" },
  { name = "t",    type = "text",        from = "/t" },
  { name = "j",    type = "jsonb",       from = "/j" },
  { name = "line", type = "int8",        from = "offset" },
]
"#,
    )
    .unwrap();
    let dead = tmp.path().join("dead.jsonl");
    let url = support::fresh_db("nul");
    let r = replay_jsonl_to_new_table(&url, &input, &mapping, &dead, &[]);
    assert_eq!(r.code, 1, "dead letters exit 1: {}", r.stderr);
    assert_eq!(r.summary["rows"], 3, "{}", r.stderr);
    assert_eq!(
        offsets_and_kinds(&dead_letters(&dead)),
        [
            (2, "nul_character"),
            (3, "nul_character"),
            (5, "out_of_range")
        ]
    );
    let rows: Vec<(i64, String, String)> = rt().block_on(async {
        client(&url)
            .await
            .query(
                "SELECT line, t, (j->'big')::text || ' ' || (j->>'s') FROM texts ORDER BY line",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect()
    });
    let big = "123456789012345678901234567890.5";
    assert_eq!(
        rows,
        [
            (1, "a\\u0000b".to_string(), format!("{big} é")),
            (4, "a\\u0000b".to_string(), format!("{big} é😀")),
            (6, "a\\u0000b".to_string(), format!("{big} é")),
        ]
    );
}

#[test]
fn max_errors_stops_the_run_and_a_rerun_finishes_it() {
    let tmp = tempfile::tempdir().unwrap();
    let input = bad_input_file(tmp.path());
    let mapping = tmp.path().join("n.toml");
    fs::write(&mapping, N_MAPPING).unwrap();
    let dead = tmp.path().join("dead.jsonl");
    let url = support::fresh_db("maxerr");
    let r = replay_jsonl_to_new_table(&url, &input, &mapping, &dead, &["--max-errors", "1"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(r.summary["stopped_by_max_errors"], true);
    assert_eq!(count(&url, "SELECT count(*) FROM events"), 1);
    // Line 3 crossed the limit: reported, but not consumed.
    assert_eq!(
        count(&url, "SELECT next_offset FROM drkit_replay_progress"),
        3
    );
    let offs: Vec<i64> = dead_letters(&dead)
        .iter()
        .map(|v| v["offset"].as_i64().unwrap())
        .collect();
    assert_eq!(offs, [2, 3]);
    let r = replay_jsonl_to_new_table(&url, &input, &mapping, &dead, &[]);
    assert_eq!(r.code, 1);
    assert_eq!(r.summary["rows"], 1);
    assert_eq!(count(&url, "SELECT count(*) FROM events"), 2);
    assert_eq!(
        count(&url, "SELECT next_offset FROM drkit_replay_progress"),
        7
    );
}

#[test]
fn preflight_refuses_missing_table_columns_and_type_mismatch() {
    let d = testdata().join("logs/snappy-0");
    let d = d.to_str().unwrap();
    let args = ["--segments", d, "--mapping", "ms5-telemetry"];
    let url = support::fresh_db("preflight");
    let r = replay(&url, &args);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("telemetry does not exist"),
        "{}",
        r.stderr
    );

    exec(
        &url,
        "CREATE TABLE telemetry (\"timestamp\" timestamptz, asset_id uuid, temperature float8, \
         pressure float8, vibration float8, metadata jsonb)",
    );
    let r = replay(&url, &args);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("no column(s) speed"), "{}", r.stderr);

    exec(&url, "ALTER TABLE telemetry ADD COLUMN speed real");
    let r = replay(&url, &args);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("column speed of telemetry is float4"),
        "{}",
        r.stderr
    );
    exec(&url, "ALTER TABLE telemetry ADD COLUMN site text NOT NULL");
    exec(&url, "ALTER TABLE telemetry ALTER COLUMN speed TYPE float8");
    let r = replay(&url, &args);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("site"), "{}", r.stderr);
    assert_eq!(count(&url, "SELECT count(*) FROM telemetry"), 0);
    assert_eq!(count(&url, "SELECT count(*) FROM drkit_replay_progress"), 0);
}

#[test]
fn ms5_wide_table_without_time_zone_works_with_a_warning() {
    let dir = testdata().join("logs/snappy-0");
    let values: Vec<Vec<u8>> = source_records(&dir).into_iter().map(|r| r.value).collect();
    let url = support::fresh_db("ms5a");
    // Variant A as MS5 creates it (without TimescaleDB).
    exec(
        &url,
        "CREATE TABLE telemetry (timestamp TIMESTAMP NOT NULL, asset_id UUID NOT NULL, \
         temperature FLOAT, pressure FLOAT, vibration FLOAT, speed FLOAT, metadata JSONB); \
         CREATE INDEX idx_telemetry_asset_time ON telemetry (asset_id, timestamp DESC);",
    );
    let r = replay(
        &url,
        &[
            "--segments",
            dir.to_str().unwrap(),
            "--mapping",
            "ms5-telemetry",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let w = r.summary["warnings"].as_array().unwrap();
    assert!(
        w.iter()
            .any(|w| w.as_str().unwrap().contains("timestamp without time zone")),
        "{w:?}"
    );
    assert_eq!(table_wide(&url, "telemetry"), expected_wide(&values));
}

#[test]
fn since_until_select_the_restore_window() {
    let dir = testdata().join("logs/snappy-0");
    let values: Vec<Vec<u8>> = source_records(&dir).into_iter().map(|r| r.value).collect();
    let times: Vec<String> = values
        .iter()
        .map(|v| {
            serde_json::from_slice::<Value>(v).unwrap()["timestamp"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let (since, until) = (&times[20], &times[60]);
    let inside: Vec<Vec<u8>> = values
        .iter()
        .zip(&times)
        .filter(|(_, t)| *t >= since && *t < until)
        .map(|(v, _)| v.clone())
        .collect();
    assert_eq!(inside.len(), 40);
    for basis in ["record", "event"] {
        let url = support::fresh_db(basis);
        let r = replay(
            &url,
            &[
                "--segments",
                dir.to_str().unwrap(),
                "--mapping",
                "ms5-telemetry",
                "--create-table",
                "--since",
                since,
                "--until",
                until,
                "--time-basis",
                basis,
            ],
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert_eq!(
            table_wide(&url, "telemetry"),
            expected_wide(&inside),
            "{basis}"
        );
    }
}

#[test]
fn unreachable_database_exits_2_without_the_password() {
    let d = testdata().join("logs/snappy-0");
    let r = replay(
        "postgres://drkit:hunter2@127.0.0.1:1/nodb",
        &[
            "--segments",
            d.to_str().unwrap(),
            "--mapping",
            "ms5-telemetry",
        ],
    );
    assert_eq!(r.code, 2);
    assert!(!r.stderr.contains("hunter2"), "{}", r.stderr);
    assert!(r.stderr.contains("drkit:***@"), "{}", r.stderr);
    let r = replay(
        "postgres://x@127.0.0.1:1/db",
        &["--segments", d.to_str().unwrap(), "--mapping", "nope"],
    );
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("unknown mapping preset"), "{}", r.stderr);
}

#[test]
fn summary_fields_are_the_documented_ones() {
    let doc = fs::read_to_string(crate::util::repo_root().join("docs/REPLAY.md")).unwrap();
    let section = doc.split("## Summary JSON").nth(1).unwrap();
    let block = section
        .split("```json")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap();
    let documented: Value = serde_json::from_str(block).unwrap();
    let url = support::fresh_db("summary");
    let d = testdata().join("logs/snappy-0");
    let r = replay_segments(&url, d.to_str().unwrap(), "ms5-telemetry");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&r.summary), keys(&documented));
    for k in keys(&documented) {
        assert!(
            section.contains(&format!("`{k}`")) || k == "type" || k == "table",
            "{k} not in the field table"
        );
    }
}

#[test]
fn narrow_preset_writes_one_row_per_metric() {
    let dir = testdata().join("logs/snappy-0");
    let values: Vec<Value> = source_records(&dir)
        .iter()
        .map(|r| serde_json::from_slice(&r.value).unwrap())
        .collect();
    let mut expected: Vec<(String, String, Option<f64>, Option<String>)> = vec![];
    for v in &values {
        for (k, m) in v["data"].as_object().unwrap() {
            if k == "quality" || k == "unit" {
                continue;
            }
            expected.push((
                v["eventId"].as_str().unwrap().to_string(),
                k.clone(),
                m.as_f64(),
                v["data"]["quality"].as_str().map(str::to_string),
            ));
        }
    }
    expected.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    let url = support::fresh_db("narrow");
    let r = replay_segments(&url, dir.to_str().unwrap(), "ms5-metrics");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut got: Vec<(String, String, Option<f64>, Option<String>)> = rt().block_on(async {
        client(&url)
            .await
            .query(
                "SELECT event_id::text, metric, value, quality FROM telemetry_metrics",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect()
    });
    got.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    assert_eq!(got, expected);
}

#[test]
fn corrupt_batch_is_skipped_and_counted_the_rest_replayed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("snappy-0");
    crate::util::copy_dir(&testdata().join("logs/snappy-0"), &dir);
    let recs = source_records(&dir);
    // Damage one byte inside the third batch of the first segment (its CRC no longer matches).
    let log = dir.join("00000000000000000000.log");
    let mut bytes = fs::read(&log).unwrap();
    let mut pos = 0usize;
    for _ in 0..2 {
        pos += 12 + i32::from_be_bytes(bytes[pos + 8..pos + 12].try_into().unwrap()) as usize;
    }
    let base = i64::from_be_bytes(bytes[pos..pos + 8].try_into().unwrap());
    let count_in = i32::from_be_bytes(bytes[pos + 57..pos + 61].try_into().unwrap()) as i64;
    bytes[pos + 70] ^= 0xff;
    fs::write(&log, &bytes).unwrap();
    let kept: Vec<Vec<u8>> = recs
        .iter()
        .filter(|r| r.offset < base || r.offset >= base + count_in)
        .map(|r| r.value.clone())
        .collect();
    let url = support::fresh_db("corrupt");
    let r = replay_segments(&url, dir.to_str().unwrap(), "ms5-telemetry");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.summary["corrupt_ranges"], 1);
    assert_eq!(table_wide(&url, "telemetry"), expected_wide(&kept));
}

#[test]
fn lost_connection_is_retried_without_loss_or_duplicates() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("telemetry-0");
    let made = drkit_testdata::bench::write_bench(&drkit_testdata::bench::BenchConfig {
        out: dir.clone(),
        segment_bytes: 4 << 20,
        segments: 2,
        compression: kafka_protocol::records::Compression::Snappy,
        batch_records: 500,
    })
    .unwrap();
    let total = made["records"].as_i64().unwrap();
    let mapping = tmp.path().join("m.toml");
    fs::write(&mapping, OFFSET_MAPPING).unwrap();
    let url = support::fresh_db("reconnect");
    let mut child = drkit()
        .args(["replay", "--format", "json", "--db", &url, "--segments"])
        .arg(&dir)
        .arg("--mapping")
        .arg(&mapping)
        .args(["--create-table", "--batch-rows", "5000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut killed = 0u64;
    while killed < 2 && Instant::now() < deadline && child.try_wait().unwrap().is_none() {
        let n = rt().block_on(async {
            let c = client(&url).await;
            let progress: Option<i64> = c
                .query_opt("SELECT next_offset FROM drkit_replay_progress", &[])
                .await
                .ok()
                .flatten()
                .map(|r| r.get(0));
            if progress.is_some_and(|p| p > 5_000 * (killed as i64 + 1)) {
                c.query(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE datname = current_database() AND pid <> pg_backend_pid()",
                    &[],
                )
                .await
                .unwrap()
                .len() as u64
            } else {
                0
            }
        });
        killed += n.min(1);
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    let summary: Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(killed >= 1, "the connection was never cut");
    assert!(summary["retries"].as_u64().unwrap() >= 1, "{summary}");
    let offsets = ints(&url, "SELECT kafka_offset FROM tel ORDER BY kafka_offset");
    assert_eq!(offsets, (0..total).collect::<Vec<_>>());
}

#[test]
fn aborted_transactions_are_left_out_like_read_committed() {
    let dir = testdata().join("logs/txn-0");
    // Independent: the aborted ranges from Kafka's own .txnindex files (34-byte entries:
    // version i16, producer id i64, first offset i64, last offset i64, last stable offset i64).
    let mut aborted = vec![];
    for e in fs::read_dir(&dir).unwrap().flatten() {
        if e.path().extension().is_some_and(|x| x == "txnindex") {
            let b = fs::read(e.path()).unwrap();
            for c in b.chunks_exact(34) {
                let i = |at: usize| i64::from_be_bytes(c[at..at + 8].try_into().unwrap());
                aborted.push((i(2), i(10), i(18)));
            }
        }
    }
    assert!(!aborted.is_empty());
    let mut kept = vec![];
    let mut skipped = 0;
    for log in crate::util::segment_files(&dir, "log") {
        let mut buf = Bytes::from(fs::read(&log).unwrap());
        while buf.remaining() >= 61 {
            let len = i32::from_be_bytes(buf[8..12].try_into().unwrap()) as usize;
            let mut one = buf.split_to(12 + len);
            for r in RecordBatchDecoder::decode(&mut one).unwrap().records {
                if r.control {
                    continue;
                }
                let out = r.transactional
                    && aborted
                        .iter()
                        .any(|&(pid, f, l)| pid == r.producer_id && f <= r.offset && r.offset <= l);
                if out {
                    skipped += 1;
                } else {
                    kept.push(r.value.unwrap().to_vec());
                }
            }
        }
    }
    assert!(skipped > 0);
    let url = support::fresh_db("txn");
    let r = replay_segments(&url, dir.to_str().unwrap(), "ms5-telemetry");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.summary["aborted_skipped"], skipped);
    assert_eq!(table_wide(&url, "telemetry"), expected_wide(&kept));
}

#[test]
fn connection_from_pg_environment_variables() {
    let url = support::fresh_db("pgenv");
    // postgres://user[:pw]@host:port/db
    let rest = url.strip_prefix("postgres://").unwrap();
    let (user, rest) = rest.split_once('@').unwrap();
    let (hostport, db) = rest.split_once('/').unwrap();
    let (host, port) = hostport.split_once(':').unwrap();
    let user = user.split(':').next().unwrap();
    let d = testdata().join("logs/snappy-0");
    let out = drkit()
        .args(["replay", "--format", "json", "--create-table", "--segments"])
        .arg(&d)
        .args(["--mapping", "ms5-telemetry"])
        .env("PGHOST", host)
        .env("PGPORT", port)
        .env("PGUSER", user)
        .env("PGDATABASE", db)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let n = source_records(&d).len() as i64;
    assert_eq!(count(&url, "SELECT count(*) FROM telemetry"), n);
    let out = drkit()
        .args(["replay", "--segments"])
        .arg(&d)
        .args(["--mapping", "ms5-telemetry"])
        .env_remove("PGHOST")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--db URL is required"));
}

/// Compressed legacy (magic 0/1) wrappers are unpacked: every inner message of the generator's
/// gzip, snappy and lz4 wrappers (its own legacy writer, testdata/src/legacy.rs) lands once, at
/// its absolute offset, exactly as many as the generator's manifest says it wrote.
#[test]
fn legacy_compressed_wrappers_are_replayed_message_by_message() {
    let manifest: Value =
        serde_json::from_slice(&fs::read(testdata().join("manifest.json")).unwrap()).unwrap();
    for name in ["legacy-v0-0", "legacy-v1-0"] {
        let part = &manifest["partitions"][name];
        assert!(part["codecs"].as_array().unwrap().len() > 1, "{part}");
        let dir = tempfile::tempdir().unwrap();
        let mapping = dir.path().join("m.toml");
        fs::write(
            &mapping,
            r#"table = "leg"
columns = [
  { name = "o",  type = "int8",        from = "offset" },
  { name = "ts", type = "timestamptz", from = "timestamp", optional = true },
]
"#,
        )
        .unwrap();
        let url = support::fresh_db("legacy");
        let src = testdata().join("logs").join(name);
        let r = replay_segments(&url, src.to_str().unwrap(), mapping.to_str().unwrap());
        assert_eq!(r.code, 0, "{name}: {}", r.stderr);
        assert_eq!(r.summary["unsupported_batches"], 0, "{name}");
        assert_eq!(r.summary["undecodable_batches"], 0, "{name}");
        let records = part["records"].as_i64().unwrap();
        assert_eq!(count(&url, "SELECT count(*) FROM leg"), records, "{name}");
        assert_eq!(
            count(&url, "SELECT count(DISTINCT o) FROM leg"),
            records,
            "{name}"
        );
        assert_eq!(
            count(&url, "SELECT min(o) FROM leg"),
            part["first_offset"].as_i64().unwrap()
        );
        assert_eq!(
            count(&url, "SELECT max(o) FROM leg"),
            part["last_offset"].as_i64().unwrap()
        );
        // Magic 1 carries timestamps (the inner ones), magic 0 none.
        let with_time = count(&url, "SELECT count(ts) FROM leg");
        assert_eq!(
            with_time,
            if name == "legacy-v1-0" { records } else { 0 },
            "{name}"
        );
    }
}

/// MS5 events of `asset` (a small number) at `times` (minutes after 08:00 on 2026-01-15).
fn ms5_at(asset: u32, minutes: impl IntoIterator<Item = u32>) -> Vec<String> {
    minutes
        .into_iter()
        .map(|m| {
            serde_json::json!({
                "eventId": format!("00000000-0000-4000-8000-{:06}{:06}", asset, m),
                "assetId": format!("10000000-0000-4000-8000-{asset:012}"),
                "timestamp": format!("2026-01-15T{:02}:{:02}:00Z", 8 + m / 60, m % 60),
                "data": {"temperature": 20.5, "quality": "GOOD"},
            })
            .to_string()
        })
        .collect()
}

fn asset(n: u32) -> String {
    format!("10000000-0000-4000-8000-{n:012}")
}

/// Gap lines of a `--format json` run, as (key, start, end, kind), sorted.
fn gap_lines(stdout: &str) -> Vec<(String, String, String, String)> {
    let mut v: Vec<_> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["type"] == "gap")
        .map(|g| {
            let s = |k: &str| g[k].as_str().unwrap().to_string();
            (s("key"), s("start"), s("end"), s("kind"))
        })
        .collect();
    v.sort();
    v
}

/// `--rpo` while replaying: planted gaps (the whole fleet, one asset, both window edges, a silent
/// asset) are all found, from events in shuffled order, with no false gap at a cadence equal to
/// the RPO; the same events through the exploding preset give the same gaps; an open window is
/// judged against the fleet's first and last event.
#[test]
fn replay_tracks_rpo_gaps_per_asset_while_writing() {
    let every5 = |from: u32, to: u32| (from..to).step_by(5).collect::<Vec<u32>>();
    let fleet_hole = |m: &u32| *m != 45; // no event of any asset at 08:45
    let mut lines = Vec::new();
    // 1: every 5 minutes from 08:00 to 09:55 (= the RPO: compliant), but for the fleet hole.
    lines.extend(ms5_at(1, every5(0, 120).into_iter().filter(fleet_hole)));
    // 2: also misses 09:10 and 09:15.
    lines.extend(ms5_at(
        2,
        every5(0, 120)
            .into_iter()
            .filter(fleet_hole)
            .filter(|m| *m != 70 && *m != 75),
    ));
    // 3: starts at 08:20; 4: stops after 09:30.
    lines.extend(ms5_at(3, every5(20, 120).into_iter().filter(fleet_hole)));
    lines.extend(ms5_at(4, every5(0, 95).into_iter().filter(fleet_hole)));
    // Late and out of order: a deterministic shuffle.
    let mut x: u64 = 0x2545f4914f6cdd1d;
    for i in (1..lines.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        lines.swap(i, (x % (i as u64 + 1)) as usize);
    }
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("events.jsonl");
    fs::write(&file, lines.join("\n") + "\n").unwrap();
    let expected = tmp.path().join("assets.txt");
    fs::write(
        &expected,
        format!("# the fleet\n{}\n{}\n", asset(1), asset(5)),
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let e = expected.to_str().unwrap();
    let t = |hm: &str| format!("2026-01-15T{hm}:00Z");
    let gap = |a: u32, s: &str, e: &str, kind: &str| (asset(a), t(s), t(e), kind.to_string());
    let fleet = |a: u32| gap(a, "08:40", "08:50", "between");

    let run = |db: &str, extra: &[&str]| {
        let url = support::fresh_db(db);
        let out = drkit()
            .arg("replay")
            .args(["--db", &url, "--format", "json", "--jsonl", f])
            .args(["--create-table", "--expected-keys", e])
            .args(extra)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            stderr.is_empty() || out.status.code() == Some(1),
            "{stderr}"
        );
        (out.status.code(), stdout)
    };
    let window = [
        "--since",
        "2026-01-15T08:00:00Z",
        "--until",
        "2026-01-15T10:00:00Z",
    ];
    // The planted gaps, for a window that ends at `end`.
    let planted = |end: &str| {
        let mut v = vec![
            fleet(1),
            fleet(2),
            gap(2, "09:05", "09:20", "between"),
            gap(3, "08:00", "08:20", "window_start"),
            fleet(3),
            fleet(4),
            gap(4, "09:30", end, "window_end"),
            gap(5, "08:00", end, "silent"),
        ];
        v.sort();
        v
    };
    let bounded = planted("10:00");
    for (db, mapping) in [("rpo_wide", "ms5-telemetry"), ("rpo_narrow", "ms5-metrics")] {
        let mut args = vec!["--mapping", mapping, "--time-basis", "event"];
        args.extend(window);
        let (code, stdout) = run(db, &args);
        assert_eq!(code, Some(1), "{stdout}");
        assert_eq!(gap_lines(&stdout), bounded, "{mapping}");
        let summary: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
        let g = &summary["gaps"];
        assert_eq!(g["key_column"], "asset_id");
        assert_eq!(g["gaps"], 8);
        assert_eq!(g["keys"], 5);
        assert_eq!(g["rows"], lines.len() as u64);
        assert_eq!(g["max_gap_seconds"], 7200.0);
        assert_eq!(g["rpo_seconds"], 300.0);
    }

    // No window given: the edges are the fleet's first (08:00) and last (09:55) event.
    let (code, stdout) = run("rpo_open", &["--mapping", "ms5-telemetry"]);
    assert_eq!(code, Some(1));
    assert_eq!(gap_lines(&stdout), planted("09:55"));

    // A longer RPO tolerates all but the long edges and the silent asset; --no-gaps: exit 0.
    let (code, stdout) = run("rpo_long", &["--mapping", "ms5-telemetry", "--rpo", "16m"]);
    assert_eq!(code, Some(1));
    let mut long = vec![
        gap(3, "08:00", "08:20", "window_start"),
        gap(4, "09:30", "09:55", "window_end"),
        gap(5, "08:00", "09:55", "silent"),
    ];
    long.sort();
    assert_eq!(gap_lines(&stdout), long);
    let url = support::fresh_db("rpo_off");
    let out = drkit()
        .arg("replay")
        .args(["--db", &url, "--format", "json", "--jsonl", f])
        .args(["--create-table", "--mapping", "ms5-telemetry", "--no-gaps"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let summary: Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap();
    assert_eq!(summary["gaps"], Value::Null);
    assert_eq!(summary["rows"], lines.len() as u64);
}

/// Only the fleet hole removed: every asset at exactly the RPO's cadence is compliant (exit 0),
/// and the text output says so with the numbers; bad gap flags are usage errors.
#[test]
fn replay_gaps_cadence_equal_to_rpo_is_clean_and_bad_flags_exit_2() {
    let mut lines = Vec::new();
    for a in 1..=3 {
        lines.extend(ms5_at(a, (0..120).step_by(5)));
    }
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("events.jsonl");
    fs::write(&file, lines.join("\n")).unwrap();
    let f = file.to_str().unwrap();
    let url = support::fresh_db("rpo_clean");
    let base = ["--jsonl", f, "--create-table", "--mapping", "ms5-telemetry"];
    let out = drkit()
        .arg("replay")
        .args(["--db", &url])
        .args(base)
        .args([
            "--since",
            "2026-01-15T08:00:00Z",
            "--until",
            "2026-01-15T10:00:00Z",
        ])
        .args(["--time-basis", "event", "--rpo", "300s"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("gaps per asset_id over the 300 s RPO: 0 in 3 keys, 72 rows"),
        "{stdout}"
    );
    // The fleet register in the database names a fourth asset that never sent anything.
    exec(
        &url,
        &format!(
            "CREATE TABLE assets (asset_id uuid); INSERT INTO assets VALUES ('{}'), ('{}')",
            asset(1),
            asset(4)
        ),
    );
    exec(&url, "TRUNCATE telemetry, drkit_replay_progress");
    let out = drkit()
        .arg("replay")
        .args(["--db", &url, "--format", "json"])
        .args(base)
        .args(["--expected-keys-table", "assets.asset_id"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert_eq!(
        gap_lines(&stdout),
        vec![(
            asset(4),
            "2026-01-15T08:00:00Z".to_string(),
            "2026-01-15T09:55:00Z".to_string(),
            "silent".to_string()
        )]
    );
    for (flags, message) in [
        (&["--expected-keys-table", "assets.nope"][..], "nope"),
        (&["--expected-keys-table", "assets"][..], "TABLE.COLUMN"),
        (&["--rpo", "0s"][..], "--rpo"),
        (&["--rpo", "soon"][..], "--rpo"),
        (&["--gap-key", "nope"][..], "--gap-key nope: not a column"),
        (&["--gap-key", "metadata"][..], "cannot be a key"),
        (
            &["--expected-keys", "/nonexistent/keys"][..],
            "/nonexistent/keys",
        ),
        (
            &[
                "--since",
                "2026-01-15T10:00:00Z",
                "--until",
                "2026-01-15T08:00:00Z",
            ][..],
            "window is empty",
        ),
    ] {
        let out = drkit()
            .arg("replay")
            .args(["--db", &url])
            .args(base)
            .args(flags)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {stderr}");
        assert!(stderr.contains(message), "{flags:?}: {stderr}");
    }
}

/// One reading thread or several encoding threads: the same rows, the same progress, the same
/// dead letters, and `--max-errors` stops at the same message even when it falls in the middle
/// of a block the workers encoded ahead.
#[test]
fn encoder_threads_change_nothing_but_speed() {
    let tmp = tempfile::tempdir().unwrap();
    let mapping = tmp.path().join("n.toml");
    fs::write(&mapping, N_MAPPING).unwrap();
    let n = 5000;
    let bad = |i: usize| i % 397 == 100;
    let lines: Vec<String> = (1..=n)
        .map(|i| {
            if bad(i) {
                "{\"timestamp\": broken".to_string()
            } else {
                GOOD.replace(r#""n":1"#, &format!(r#""n":{i}"#))
            }
        })
        .collect();
    let input = tmp.path().join("many.jsonl");
    fs::write(&input, lines.join("\n") + "\n").unwrap();
    let bad_lines: Vec<i64> = (1..=n).filter(|i| bad(*i)).map(|i| i as i64).collect();
    // The 9th bad line crosses --max-errors 8: reported, not consumed; everything before it in.
    let stop = bad_lines[8];
    let mut results = Vec::new();
    for encoders in ["1", "4"] {
        let url = support::fresh_db(&format!("encoders{encoders}"));
        let dead = tmp.path().join(format!("dead{encoders}.jsonl"));
        let r = replay_jsonl_to_new_table(
            &url,
            &input,
            &mapping,
            &dead,
            &[
                "--batch-rows",
                "333",
                "--max-errors",
                "8",
                "--encoders",
                encoders,
            ],
        );
        assert_eq!(r.code, 1, "{}", r.stderr);
        assert_eq!(r.summary["stopped_by_max_errors"], true);
        let lines = event_lines(&url);
        let want: Vec<i64> = (1..stop).filter(|i| !bad(*i as usize)).collect();
        assert_eq!(lines, want, "--encoders {encoders}");
        let next = count(&url, "SELECT next_offset FROM drkit_replay_progress");
        assert_eq!(next, stop, "--encoders {encoders}");
        let offs: Vec<i64> = dead_letters(&dead)
            .iter()
            .map(|v| v["offset"].as_i64().unwrap())
            .collect();
        assert_eq!(offs, bad_lines[..9], "--encoders {encoders}");
        // A rerun without the limit finishes the file from there.
        let r = replay(
            &url,
            &[
                "--jsonl",
                input.to_str().unwrap(),
                "--mapping",
                mapping.to_str().unwrap(),
                "--encoders",
                encoders,
            ],
        );
        assert_eq!(r.code, 1, "{}", r.stderr);
        let total = count(&url, "SELECT count(*) FROM events");
        assert_eq!(total as usize, n - bad_lines.len());
        results.push((lines, next, offs, total));
    }
    assert_eq!(results[0], results[1]);
}
