//! `drkit validate` on a small MS5-like schema in a real PostgreSQL 15: a snapshot, a real
//! `pg_dump -Fc` / `pg_restore` round trip that must pass, then each problem a bad restore leaves
//! planted with plain SQL and reported as exactly the failures expected. TimescaleDB cannot be
//! installed here, so its checks (extension version, hypertable chunks) are not exercised.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::replay::support;
use crate::util::{drkit, output, repo_root, Run};
use support::{client, rt};

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
const WINDOW: [&str; 6] = [
    "--telemetry",
    "telemetry",
    "--since",
    "2026-11-20T08:00:00Z",
    "--until",
    "2026-11-20T10:00:00Z",
];

fn sql(url: &str, q: &str) {
    rt().block_on(async { client(url).await.batch_execute(q).await.expect(q) });
}

/// Lines, assets (serial keys, FK, CHECK, UNIQUE, an index), orders with an identity key,
/// a table without keys, and the wide telemetry table: 3 assets at one row a minute for two hours.
fn ms5_db(name: &str) -> String {
    let url = support::fresh_db(name);
    sql(
        &url,
        r#"
        CREATE SCHEMA factory;
        CREATE TABLE factory.lines (id BIGSERIAL PRIMARY KEY, name text NOT NULL UNIQUE);
        CREATE TABLE factory.assets (id BIGSERIAL PRIMARY KEY,
          line_id bigint NOT NULL REFERENCES factory.lines (id), name text,
          oee numeric CONSTRAINT assets_oee_check CHECK (oee BETWEEN 0 AND 100));
        CREATE INDEX assets_line_idx ON factory.assets (line_id);
        CREATE TABLE factory.orders (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
          asset_id bigint NOT NULL REFERENCES factory.assets (id),
          qty int CONSTRAINT orders_qty_check CHECK (qty > 0));
        CREATE TABLE factory.scrap (asset_id bigint, qty int);
        CREATE SEQUENCE factory.batch_no;
        CREATE TABLE factory.batches (no bigint PRIMARY KEY DEFAULT nextval('factory.batch_no'),
          asset_id bigint);
        CREATE TABLE telemetry ("timestamp" timestamptz NOT NULL, asset_id text NOT NULL,
          temperature float8);
        CREATE INDEX idx_telemetry_asset_time ON telemetry (asset_id, "timestamp" DESC);
        INSERT INTO factory.lines (name) SELECT 'L' || i FROM generate_series(1, 3) i;
        INSERT INTO factory.assets (line_id, name, oee)
          SELECT 1 + i % 3, 'asset ' || i, i * 3 FROM generate_series(1, 30) i;
        INSERT INTO factory.orders (asset_id, qty) SELECT 1 + i % 10, i FROM generate_series(1, 100) i;
        INSERT INTO factory.scrap SELECT i, i FROM generate_series(1, 5) i;
        INSERT INTO factory.batches (asset_id) SELECT i FROM generate_series(1, 7) i;
        INSERT INTO telemetry SELECT timestamptz '2026-11-20 08:00:00+00' + m * interval '1 minute',
          'a' || k, 20 + m FROM generate_series(0, 119) m, generate_series(1, 3) k;
        "#,
    );
    url
}

fn validate(args: &[&str]) -> Run {
    output(drkit().arg("validate").args(args).output().unwrap())
}

/// `drkit validate snapshot` into `path`; returns the document.
fn snapshot(url: &str, extra: &[&str], path: &Path) -> Value {
    let out = drkit()
        .args(["validate", "snapshot", "--db", url])
        .args(extra)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(path, &out.stdout).unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A real restore: `pg_dump -Fc` of `src`, `pg_restore` into a new database.
fn restored(src: &str, name: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("db.dump");
    let st = Command::new(format!("{PG_BIN}/pg_dump"))
        .args(["-Fc", "-d", src, "-f"])
        .arg(&dump)
        .status()
        .unwrap();
    assert!(st.success());
    let dst = support::fresh_db(name);
    let out = Command::new(format!("{PG_BIN}/pg_restore"))
        .args(["--exit-on-error", "-d", &dst])
        .arg(&dump)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dst
}

fn checks(r: &Run) -> Vec<&Value> {
    r.lines.iter().filter(|l| l["type"] == "check").collect()
}

/// `(check, object)` of every failure.
fn failures(r: &Run) -> BTreeSet<(String, String)> {
    checks(r)
        .into_iter()
        .filter(|c| c["status"] == "fail")
        .map(|c| {
            (
                c["check"].as_str().unwrap().to_string(),
                c["object"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn detail<'a>(r: &'a Run, check: &str, object: &str) -> &'a str {
    checks(r)
        .into_iter()
        .find(|c| c["check"] == check && c["object"] == object)
        .unwrap_or_else(|| panic!("no {check} check of {object}:\n{}", r.stdout))["detail"]
        .as_str()
        .unwrap()
}

fn set(items: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    items
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn restore_round_trip_passes_then_every_planted_problem_fails() {
    let src = ms5_db("validate_src");
    let dir = tempfile::tempdir().unwrap();
    let before = dir.path().join("before.json");
    let doc = snapshot(&src, &WINDOW, &before);
    assert_eq!(doc["format"], "drkit-validate-snapshot");
    assert_eq!(doc["row_counts"], "exact");
    let rows: Vec<(String, i64)> = doc["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().into(),
                t["rows"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("factory.assets".to_string(), 30),
            ("factory.batches".into(), 7),
            ("factory.lines".into(), 3),
            ("factory.orders".into(), 100),
            ("factory.scrap".into(), 5),
            ("public.telemetry".into(), 360),
        ]
    );
    let seqs: Vec<(String, String, i64, i64)> = doc["sequences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().into(),
                s["column"].as_str().unwrap().into(),
                s["last_value"].as_i64().unwrap(),
                s["column_max"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seqs,
        [
            (
                "factory.assets_id_seq".to_string(),
                "factory.assets.id".to_string(),
                30,
                30
            ),
            ("factory.batch_no".into(), "factory.batches.no".into(), 7, 7),
            (
                "factory.lines_id_seq".into(),
                "factory.lines.id".into(),
                3,
                3
            ),
            (
                "factory.orders_id_seq".into(),
                "factory.orders.id".into(),
                100,
                100
            ),
        ]
    );
    assert_eq!(doc["telemetry"]["rows"], 360);
    assert_eq!(doc["telemetry"]["gaps"].as_array().unwrap().len(), 0);

    let dst = restored(&src, "validate_dst");
    let b = before.display().to_string();
    let ok = validate(&["--db", &dst, "--baseline", &b, "--format", "json"]);
    assert_eq!(ok.code, 0, "{}{}", ok.stdout, ok.stderr);
    assert!(failures(&ok).is_empty());
    assert_eq!(ok.summary()["verdict"], "pass");
    assert_eq!(ok.summary()["fail"], 0);
    let kinds: BTreeSet<&str> = checks(&ok)
        .iter()
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        BTreeSet::from([
            "table",
            "row_count",
            "constraint",
            "index",
            "sequence",
            "extension",
            "gaps"
        ])
    );
    let text = validate(&["--db", &dst, "--baseline", &b]);
    assert_eq!(text.code, 0);
    assert!(text.stdout.contains("\nPASS: 0 failed"), "{}", text.stdout);

    sql(
        &dst,
        r#"
        DELETE FROM factory.assets WHERE id = 30;
        ALTER TABLE factory.orders DROP CONSTRAINT orders_qty_check;
        ALTER TABLE factory.assets DROP CONSTRAINT assets_oee_check;
        ALTER TABLE factory.assets ADD CONSTRAINT assets_oee_check CHECK (oee BETWEEN 0 AND 100) NOT VALID;
        DROP INDEX factory.assets_line_idx;
        SELECT setval('factory.lines_id_seq', 2);
        SELECT setval('factory.batch_no', 7, false);
        DROP TABLE factory.scrap;
        DELETE FROM telemetry WHERE asset_id = 'a2'
          AND "timestamp" >= '2026-11-20 08:30:00+00' AND "timestamp" < '2026-11-20 08:40:00+00';
        "#,
    );
    let bad = validate(&["--db", &dst, "--baseline", &b, "--format", "json"]);
    assert_eq!(bad.code, 1, "{}{}", bad.stdout, bad.stderr);
    assert_eq!(bad.summary()["verdict"], "fail");
    assert_eq!(
        failures(&bad),
        set(&[
            ("row_count", "factory.assets"),
            ("constraint", "factory.orders.orders_qty_check"),
            ("constraint", "factory.assets.assets_oee_check"),
            ("index", "factory.assets_line_idx"),
            ("sequence", "factory.lines_id_seq"),
            ("sequence", "factory.batch_no"),
            ("table", "factory.scrap"),
            ("row_count", "public.telemetry"),
            ("gaps", "telemetry[a2]"),
        ])
    );
    assert_eq!(
        bad.summary()["fail"].as_u64().unwrap() as usize,
        failures(&bad).len()
    );
    assert_eq!(
        detail(&bad, "row_count", "factory.assets"),
        "29 rows, 1 fewer than the baseline's 30 (tolerance 0)"
    );
    assert!(detail(&bad, "sequence", "factory.lines_id_seq")
        .contains("next value 3, max(factory.lines.id) = 3"));
    assert!(detail(&bad, "sequence", "factory.batch_no")
        .contains("next value 7, max(factory.batches.no) = 7"));
    assert!(detail(&bad, "constraint", "factory.assets.assets_oee_check").starts_with("NOT VALID"));
    assert!(detail(&bad, "gaps", "telemetry[a2]")
        .contains("between gap 2026-11-20T08:29:00Z .. 2026-11-20T08:40:00Z"));

    // The sequence really is behind: the next insert collides.
    let insert = rt().block_on(async {
        client(&dst)
            .await
            .batch_execute("INSERT INTO factory.lines (name) VALUES ('after the restore')")
            .await
    });
    assert!(
        format!("{:?}", insert.unwrap_err()).contains("lines_pkey"),
        "the insert was expected to collide"
    );
    sql(&dst, "SELECT setval('factory.lines_id_seq', 2)");

    // A tolerance covers the one lost asset row, not the ten telemetry rows.
    let tol = validate(&[
        "--db",
        &dst,
        "--baseline",
        &b,
        "--format",
        "json",
        "--max-missing-rows",
        "1",
    ]);
    let f = failures(&tol);
    assert!(!f.contains(&("row_count".into(), "factory.assets".into())));
    assert!(f.contains(&("row_count".into(), "public.telemetry".into())));
    assert_eq!(
        detail(&tol, "row_count", "factory.assets"),
        "29 rows, 1 fewer than the baseline's 30 (tolerance 1)"
    );

    // Text: one line per problem, and the verdict.
    let text = validate(&["--db", &dst, "--baseline", &b]);
    assert_eq!(text.code, 1);
    assert!(text
        .stdout
        .lines()
        .any(|l| l.starts_with("FAIL    index       factory.assets_line_idx")));
    assert!(text.stdout.contains("\nFAIL: 9 failed"), "{}", text.stdout);

    // Without a baseline only what needs none: the NOT VALID constraint, the sequence, the gap.
    let alone = validate(&["--db", &dst, "--format", "json"]);
    assert_eq!(alone.code, 1);
    assert_eq!(
        failures(&alone),
        set(&[
            ("constraint", "factory.assets.assets_oee_check"),
            ("sequence", "factory.lines_id_seq"),
            ("sequence", "factory.batch_no"),
        ])
    );
    let mut args = vec!["--db", &dst, "--format", "json"];
    args.extend(WINDOW);
    let alone = validate(&args);
    assert_eq!(alone.code, 1);
    assert_eq!(
        failures(&alone),
        set(&[
            ("constraint", "factory.assets.assets_oee_check"),
            ("sequence", "factory.lines_id_seq"),
            ("sequence", "factory.batch_no"),
            ("gaps", "telemetry[a2]"),
        ])
    );

    // A lost telemetry table is a failure of the restore, not a usage error; naming a table that
    // does not exist for a snapshot is one.
    sql(&dst, "DROP TABLE telemetry");
    let gone = validate(&["--db", &dst, "--baseline", &b, "--format", "json"]);
    assert_eq!(gone.code, 1, "{}", gone.stderr);
    let f = failures(&gone);
    assert!(f.contains(&("table".into(), "public.telemetry".into())));
    assert_eq!(
        detail(&gone, "gaps", "telemetry"),
        "not checked: table telemetry does not exist"
    );
    let out = drkit()
        .args(["validate", "snapshot", "--db", &dst])
        .args(WINDOW)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("table telemetry does not exist"));
}

#[test]
fn fast_counts_are_estimates_after_analyze() {
    let src = ms5_db("validate_fast");
    let dir = tempfile::tempdir().unwrap();
    let before = dir.path().join("before.json");
    snapshot(&src, &[], &before);
    let dst = restored(&src, "validate_fast_dst");
    // pg_restore leaves no statistics (reltuples -1): only after the ANALYZE of --fast are there
    // estimates to use (with --exact-below 0 even these small tables take them).
    let estimates = ["--fast", "--exact-below", "0"];
    let fast = snapshot(&dst, &estimates, &dir.path().join("fast.json"));
    assert_eq!(fast["row_counts"], "estimate");
    for t in fast["tables"].as_array().unwrap() {
        assert_eq!(t["rows_exact"], false, "{t}");
    }
    // By default, tables estimated under 100,000 rows are counted exactly anyway.
    let small = snapshot(&dst, &["--fast"], &dir.path().join("small.json"));
    assert_eq!(small["row_counts"], "estimate");
    for t in small["tables"].as_array().unwrap() {
        assert_eq!(t["rows_exact"], true, "{t}");
    }

    let b = before.display().to_string();
    let mut args = vec!["--db", &dst, "--baseline", &b, "--format", "json"];
    args.extend(estimates);
    let ok = validate(&args);
    assert_eq!(ok.code, 0, "{}{}", ok.stdout, ok.stderr);
    assert_eq!(ok.summary()["row_counts"], "estimate");
    assert_eq!(
        detail(&ok, "row_count", "factory.orders"),
        "100 rows (estimated)"
    );

    sql(&dst, "DELETE FROM factory.orders WHERE id > 50");
    let bad = validate(&args);
    assert_eq!(bad.code, 1, "{}", bad.stdout);
    assert_eq!(failures(&bad), set(&[("row_count", "factory.orders")]));
    assert_eq!(
        detail(&bad, "row_count", "factory.orders"),
        "50 rows, 50 fewer than the baseline's 100 (tolerance 2, estimated)"
    );
    let exact = validate(&["--db", &dst, "--baseline", &b, "--fast", "--format", "json"]);
    assert_eq!(exact.code, 1);
    assert_eq!(
        detail(&exact, "row_count", "factory.orders"),
        "50 rows, 50 fewer than the baseline's 100 (tolerance 0)"
    );
}

#[test]
fn bad_baselines_and_unreachable_databases_exit_2_without_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.json");
    std::fs::write(&garbage, "{\"tables\": [").unwrap();
    let future = dir.path().join("future.json");
    std::fs::write(
        &future,
        "{\"format\": \"drkit-validate-snapshot\", \"version\": 9}",
    )
    .unwrap();
    let absurd = dir.path().join("absurd.json");
    std::fs::write(
        &absurd,
        r#"{"format": "drkit-validate-snapshot", "version": 1, "taken_at": "", "elapsed_ms": 0,
           "server_version": "15", "database": "ms5", "row_counts": "exact", "tables": [],
           "constraints": [], "indexes": [], "sequences": [], "extensions": [],
           "timescaledb": null,
           "telemetry": {"table": "telemetry", "time_column": "timestamp", "key_column": "asset_id",
             "rpo_seconds": -5, "since": "2026-11-20T08:00:00Z", "until": "2026-11-20T10:00:00Z",
             "rows": 0, "keys": [], "gaps": []}}"#,
    )
    .unwrap();
    let missing = dir.path().join("missing.json");
    let db = "postgres://ops:hunter2@127.0.0.1:1/ms5";
    for (file, says) in [
        (&garbage, "not a drkit validate snapshot (line 1"),
        (&future, "snapshot version 9 is not supported"),
        (&missing, "missing.json: No such file"),
        (&absurd, "rpo_seconds -5 is not a usable RPO"),
    ] {
        let f = file.display().to_string();
        let r = validate(&["--db", db, "--baseline", &f, "--format", "json"]);
        assert_eq!(r.code, 2, "{}", r.stderr);
        assert!(r.stderr.contains(says), "{}", r.stderr);
        assert!(r.stdout.is_empty());
    }
    for args in [
        vec!["--db", db],
        vec!["snapshot", "--db", db],
        vec!["--db", db, "--telemetry", "telemetry"],
    ] {
        let r = validate(&args);
        assert_eq!(r.code, 2);
        assert!(
            r.stderr
                .contains("cannot connect to postgres://ops:***@127.0.0.1:1/ms5"),
            "{}",
            r.stderr
        );
        assert!(!r.stderr.contains("hunter2") && !r.stdout.contains("hunter2"));
    }
    for (args, says) in [
        (
            vec!["--db", db, "--since", "2026-01-01"],
            "need --telemetry",
        ),
        (
            vec!["--db", db, "--telemetry", "t", "--rpo", "soon"],
            "--rpo \"soon\"",
        ),
        (vec!["--db", db, "--max-missing-pct", "250"], "percentage"),
        (vec!["--db", db, "--exact-below", "5"], "--fast"),
        (vec![], "--db"),
    ] {
        let r = validate(&args);
        assert_eq!(r.code, 2, "{args:?}");
        assert!(r.stderr.contains(says), "{args:?}: {}", r.stderr);
    }
}

#[test]
fn every_check_kind_and_snapshot_field_is_documented() {
    let doc = std::fs::read_to_string(repo_root().join("docs/VALIDATE.md")).unwrap();
    for k in validate::Kind::ALL {
        assert!(
            doc.contains(&format!("| `{}` |", k.as_str())),
            "{} missing from docs/VALIDATE.md",
            k.as_str()
        );
    }
    let src = ms5_db("validate_doc");
    let dir = tempfile::tempdir().unwrap();
    let s = snapshot(&src, &WINDOW, &dir.path().join("s.json"));
    let mut fields = Vec::new();
    for (k, v) in s.as_object().unwrap() {
        fields.push(k.clone());
        let inner = match v {
            Value::Array(a) => a.first(),
            Value::Object(_) => Some(v),
            _ => None,
        };
        if let Some(Value::Object(m)) = inner {
            fields.extend(m.keys().cloned());
        }
    }
    for f in fields {
        assert!(
            doc.contains(&format!("| `{f}` |")),
            "snapshot field {f} missing from docs/VALIDATE.md"
        );
    }
}

/// The JSON Lines schema of docs/VALIDATE.md, strictly: unknown or missing fields fail.
#[derive(serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[allow(dead_code)]
enum Line {
    Check {
        check: String,
        object: String,
        status: String,
        detail: String,
    },
    Summary {
        verdict: String,
        checks: u64,
        pass: u64,
        warn: u64,
        fail: u64,
        baseline: Option<String>,
        database: String,
        row_counts: String,
        elapsed_ms: u64,
    },
}

#[test]
fn json_lines_follow_the_documented_schema() {
    let src = ms5_db("validate_schema");
    let dir = tempfile::tempdir().unwrap();
    let before = dir.path().join("before.json");
    snapshot(&src, &WINDOW, &before);
    sql(
        &src,
        "DELETE FROM factory.scrap; CREATE TABLE extra (a int); \
         INSERT INTO factory.orders (asset_id, qty) VALUES (1, 1)",
    );
    let out = drkit()
        .args(["validate", "--format", "json", "--db", &src, "--baseline"])
        .arg(&before)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let lines: Vec<Line> = crate::util::json_lines(&out.stdout);
    let kinds: Vec<&str> = validate::Kind::ALL.iter().map(|k| k.as_str()).collect();
    let (mut pass, mut warn, mut fail) = (0, 0, 0);
    for l in &lines[..lines.len() - 1] {
        let Line::Check { check, status, .. } = l else {
            panic!("a summary before the end")
        };
        assert!(kinds.contains(&check.as_str()), "{check}");
        match status.as_str() {
            "pass" => pass += 1,
            "warn" => warn += 1,
            "fail" => fail += 1,
            other => panic!("status {other}"),
        }
    }
    assert!(warn >= 2 && fail >= 1);
    match lines.last() {
        Some(Line::Summary {
            verdict,
            checks,
            pass: p,
            warn: w,
            fail: f,
            ..
        }) => {
            assert_eq!(verdict, "fail");
            assert_eq!(
                (*checks, *p, *w, *f),
                (lines.len() as u64 - 1, pass, warn, fail)
            );
        }
        _ => panic!("no summary last"),
    }
}
