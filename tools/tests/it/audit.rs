//! `drkit audit` against chains that PostgreSQL itself wrote: the MS5 file chain hashed with
//! PostgreSQL's `sha256()` over JSON text built by its own `to_json`, and the edge journal signed
//! with pgcrypto's `hmac()`. So drkit's serialiser and digests are checked against another
//! implementation, not against themselves. Breaks are planted with plain SQL.

use std::process::Output;

use serde_json::Value;

use crate::replay::support;
use crate::util::drkit;
use support::{client, rt};

/// The MS5 file audit chain in a table: `hash = sha256(previousHash + JSON(entry))`, genesis
/// "0", the entry being every column but `hash`, serialised as JSON.stringify would.
fn file_chain_db(name: &str, rows: i64) -> String {
    let url = support::fresh_db(name);
    rt().block_on(async {
        let c = client(&url).await;
        c.batch_execute(&format!(
            r#"
            CREATE TABLE audit_log (id bigint PRIMARY KEY, "timestamp" timestamptz NOT NULL,
              actor text, action text, details json, "previousHash" text, hash text);
            INSERT INTO audit_log (id, "timestamp", actor, action, details)
              SELECT i, timestamptz '2026-11-20 08:00:00+00' + i * interval '1.5 s',
                     CASE WHEN i % 7 = 0 THEN 'op "quoted" ☃' ELSE 'operator' || (i % 3) END,
                     'recipe.update', ('{{"line":"L' || (i % 4) || '","qty":' || i || ',"ok":true}}')::json
              FROM generate_series(1, {rows}) i;
            DO $$ DECLARE r record; prev text := '0'; j text; BEGIN
              FOR r IN SELECT * FROM audit_log ORDER BY id LOOP
                j := '{{"id":' || r.id
                  || ',"timestamp":' || to_json(to_char(r."timestamp" AT TIME ZONE 'UTC',
                                                         'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))::text
                  || ',"actor":' || to_json(r.actor)::text
                  || ',"action":' || to_json(r.action)::text
                  || ',"details":' || r.details::text
                  || ',"previousHash":' || to_json(prev)::text || '}}';
                UPDATE audit_log SET "previousHash" = prev,
                       hash = encode(sha256(convert_to(prev || j, 'UTF8')), 'hex')
                  WHERE id = r.id RETURNING hash INTO prev;
              END LOOP; END $$;
            "#
        ))
        .await
        .expect("build the chain");
    });
    url
}

fn sql(url: &str, q: &str) {
    rt().block_on(async { client(url).await.batch_execute(q).await.expect(q) });
}

fn run(args: &[&str]) -> Output {
    drkit().args(args).output().expect("run drkit")
}

/// Breaks and summary of a `--format json` run.
fn json_run(args: &[&str]) -> (i32, Vec<Value>, Value) {
    let out = run(args);
    let text = String::from_utf8(out.stdout).unwrap();
    let mut records: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let summary = records.pop().expect("a summary record");
    assert_eq!(summary["type"], "summary", "{text}");
    (out.status.code().unwrap(), records, summary)
}

fn kinds_at(breaks: &[Value]) -> Vec<(String, Value)> {
    breaks
        .iter()
        .map(|b| (b["kind"].as_str().unwrap().to_string(), b["key"].clone()))
        .collect()
}

#[test]
fn database_chain_planted_edit_removal_and_cut_tail() {
    let url = file_chain_db("audit_plant", 300);
    let db = ["audit", "verify", "--db", &url, "--table", "audit_log"];
    let (code, breaks, s) = json_run(&[&db[..], &["--format", "json"]].concat());
    assert_eq!((code, breaks.len()), (0, 0), "{breaks:?}");
    assert_eq!(s["rows"], 300);
    assert_eq!(s["head_key"], 300);

    let dir = tempfile::tempdir().unwrap();
    let anchor = dir.path().join("head.json");
    let anchor_s = anchor.to_str().unwrap();
    let a = run(&[
        "audit",
        "anchor",
        "--db",
        &url,
        "--table",
        "audit_log",
        "--out",
        anchor_s,
    ]);
    assert_eq!(
        a.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&a.stderr)
    );
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&anchor).unwrap()).unwrap();
    assert_eq!(saved["key"], 300);
    assert!(!saved["source"].as_str().unwrap().contains("password"));

    // An edit, a removed row in the middle, and the three newest rows deleted.
    sql(
        &url,
        "UPDATE audit_log SET action = 'recipe.delete' WHERE id = 50;
         DELETE FROM audit_log WHERE id = 120;
         DELETE FROM audit_log WHERE id > 297;",
    );
    let (code, breaks, s) = json_run(&[&db[..], &["--format", "json"]].concat());
    assert_eq!(code, 1);
    assert_eq!(
        kinds_at(&breaks),
        vec![
            ("content".to_string(), Value::from(50)),
            ("link".to_string(), Value::from(121)),
        ],
        "without the anchor the cut tail is invisible"
    );
    assert_eq!(s["first_break"]["key"], 50);

    let (code, breaks, s) =
        json_run(&[&db[..], &["--format", "json", "--anchor", anchor_s]].concat());
    assert_eq!(code, 1);
    let kinds = kinds_at(&breaks);
    assert_eq!(kinds.len(), 3, "{kinds:?}");
    assert_eq!(kinds[2].0, "tail_deleted");
    assert_eq!(s["breaks"], 3);
    assert_eq!(s["by_kind"]["tail_deleted"], 1);

    // A broken chain is never anchored, and the old anchor stays as it was.
    let before = std::fs::read(&anchor).unwrap();
    let a = run(&[
        "audit",
        "anchor",
        "--db",
        &url,
        "--table",
        "audit_log",
        "--out",
        anchor_s,
    ]);
    assert_eq!(a.status.code(), Some(1));
    assert_eq!(std::fs::read(&anchor).unwrap(), before);
}

#[test]
fn reordered_entries_are_link_breaks() {
    let url = file_chain_db("audit_reorder", 40);
    // The chain as JSON lines (PostgreSQL's row_to_json), with entries 10 and 11 swapped: both
    // are intact, only their order is wrong.
    let lines: Vec<String> = rt().block_on(async {
        let c = client(&url).await;
        c.batch_execute("SET TimeZone = 'UTC'").await.unwrap();
        c.query(
            "SELECT row_to_json(t)::text FROM audit_log t ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
    });
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, lines: &[String]| {
        let p = dir.path().join(name);
        std::fs::write(&p, lines.join("\n") + "\n").unwrap();
        p.to_str().unwrap().to_string()
    };
    let intact = write("intact.jsonl", &lines);
    let (code, breaks, _) = json_run(&["audit", "verify", "--file", &intact, "--format", "json"]);
    assert_eq!((code, breaks.len()), (0, 0), "{breaks:?}");
    let mut swapped = lines.clone();
    swapped.swap(9, 10);
    let swapped = write("swapped.jsonl", &swapped);
    let (code, breaks, _) = json_run(&["audit", "verify", "--file", &swapped, "--format", "json"]);
    assert_eq!(code, 1);
    assert_eq!(
        kinds_at(&breaks),
        vec![
            ("link".to_string(), Value::from(11)),
            ("link".to_string(), Value::from(10)),
            ("link".to_string(), Value::from(12)),
        ]
    );

    // In the table, swapping the keys also edits both rows (the key is part of the entry).
    sql(
        &url,
        "UPDATE audit_log SET id = -1 WHERE id = 10;
         UPDATE audit_log SET id = 10 WHERE id = 11;
         UPDATE audit_log SET id = 11 WHERE id = -1;",
    );
    let out = run(&["audit", "verify", "--db", &url, "--table", "audit_log"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("chain BROKEN: 5 breaks (2 content, 3 link)"),
        "{text}"
    );
}

/// The edge journal as JSON lines, signed by pgcrypto's HMAC-SHA256 over the JSON of
/// {eventId, timestamp, assetId, type, data, previousSignature}.
fn edge_journal(url: &str, key: &str, n: usize) -> String {
    rt().block_on(async {
        let c = client(url).await;
        c.batch_execute("CREATE EXTENSION IF NOT EXISTS pgcrypto").await.unwrap();
        let mut prev = "0".to_string();
        let mut lines = String::new();
        for i in 0..n {
            let payload = format!(
                r#"{{"eventId":"00000000-0000-4000-8000-{i:012}","timestamp":"2026-11-21T10:{:02}:{:02}.250Z","assetId":"11111111-2222-4333-8444-555555555555","type":"telemetry","data":{{"temperature":{},"quality":"GOOD"}},"previousSignature":"{prev}"}}"#,
                i / 60,
                i % 60,
                20.5 + i as f64
            );
            let row = c
                .query_one(
                    "SELECT encode(hmac($1::text, $2::text, 'sha256'), 'hex')",
                    &[&payload, &key],
                )
                .await
                .unwrap();
            let sig: String = row.get(0);
            let mut v: serde_json::Map<String, Value> = serde_json::from_str(&payload).unwrap();
            v.insert("signature".into(), Value::from(sig.clone()));
            lines.push_str(&serde_json::to_string(&v).unwrap());
            lines.push('\n');
            prev = sig;
        }
        lines
    })
}

#[test]
fn edge_journal_hmac_with_key_from_the_environment() {
    let url = support::fresh_db("audit_edge");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("journal.jsonl");
    std::fs::write(&file, edge_journal(&url, "s3cr3t-edge-key", 60)).unwrap();
    let f = file.to_str().unwrap();
    let args = [
        "audit",
        "verify",
        "--file",
        f,
        "--preset",
        "ms5-edge",
        "--key-env",
        "EDGE_KEY",
    ];

    let ok = drkit()
        .args(args)
        .env("EDGE_KEY", "s3cr3t-edge-key")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&ok.stdout);
    assert_eq!(ok.status.code(), Some(0), "{text}");
    assert!(text.contains("chain intact: 60 entries"), "{text}");

    let bad = drkit()
        .args(args)
        .env("EDGE_KEY", "wrong")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&bad.stdout),
        String::from_utf8_lossy(&bad.stderr)
    );
    assert!(
        !all.contains("wrong") && !all.contains("s3cr3t"),
        "key printed: {all}"
    );

    let unset = drkit().args(args).env_remove("EDGE_KEY").output().unwrap();
    assert_eq!(unset.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unset.stderr).contains("EDGE_KEY"));

    // A removed journal line: the next entry names a previous signature that is not there.
    let text = std::fs::read_to_string(&file).unwrap();
    let cut: Vec<&str> = text
        .lines()
        .enumerate()
        .filter(|(i, _)| *i != 30)
        .map(|(_, l)| l)
        .collect();
    let cut_file = dir.path().join("cut.jsonl");
    std::fs::write(&cut_file, cut.join("\n") + "\nnot json\n").unwrap();
    let out = drkit()
        .args([
            "audit",
            "verify",
            "--file",
            cut_file.to_str().unwrap(),
            "--preset",
            "ms5-edge",
        ])
        .args(["--key-env", "EDGE_KEY", "--format", "json"])
        .env("EDGE_KEY", "s3cr3t-edge-key")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let recs: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let breaks: Vec<(&str, Option<u64>)> = recs
        .iter()
        .filter(|r| r["type"] == "break")
        .map(|r| (r["kind"].as_str().unwrap(), r["line"].as_u64()))
        .collect();
    assert_eq!(breaks, vec![("link", Some(31)), ("malformed", Some(60))]);
}

#[test]
fn bad_sources_are_usage_errors() {
    let url = support::fresh_db("audit_bad");
    let out = run(&["audit", "verify", "--db", &url, "--table", "no_such_table"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no_such_table"));
    let out = run(&["audit", "verify", "--file", "/nonexistent/chain.jsonl"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/chain.jsonl"));
}

#[test]
fn every_break_kind_is_documented() {
    let doc = std::fs::read_to_string(crate::util::repo_root().join("docs/AUDIT.md")).unwrap();
    for k in audit::chain::BreakKind::ALL {
        assert!(
            doc.contains(&format!("| `{}` |", k.as_str())),
            "{} missing from docs/AUDIT.md",
            k.as_str()
        );
    }
}

/// The JSON Lines schema of docs/AUDIT.md, strictly: unknown or missing fields fail.
#[derive(serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[allow(dead_code)]
enum Line {
    Break {
        kind: String,
        row: u64,
        key: Value,
        line: Option<u64>,
        expected: Option<String>,
        stored: Option<String>,
        message: String,
    },
    Summary {
        source: String,
        rows: u64,
        breaks: u64,
        by_kind: std::collections::BTreeMap<String, u64>,
        first_break: Option<Value>,
        head_key: Value,
        head_hash: Option<String>,
        anchor_checked: bool,
        elapsed_s: f64,
        #[serde(default)]
        anchored: Option<Value>,
    },
}

#[test]
fn json_lines_follow_the_documented_schema() {
    let url = file_chain_db("audit_schema", 20);
    sql(&url, "UPDATE audit_log SET actor = 'x' WHERE id = 3");
    let dir = tempfile::tempdir().unwrap();
    let anchor = dir.path().join("a.json");
    for args in [
        vec!["verify"],
        vec!["anchor", "--out", anchor.to_str().unwrap()],
    ] {
        let out = drkit()
            .arg("audit")
            .args(&args)
            .args(["--db", &url, "--table", "audit_log", "--format", "json"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let lines: Vec<Line> = crate::util::json_lines(&out.stdout);
        assert!(matches!(lines.first(), Some(Line::Break { row: 3, .. })));
        match lines.last() {
            Some(Line::Summary {
                by_kind, rows: 20, ..
            }) => {
                assert_eq!(by_kind.len(), audit::chain::BreakKind::ALL.len())
            }
            _ => panic!("no summary"),
        }
    }
    assert!(!anchor.exists());
}

/// Rows decoded from binary COPY equal PostgreSQL's own `row_to_json`, type by type.
#[test]
fn table_rows_decode_exactly_like_row_to_json() {
    let url = support::fresh_db("audit_types");
    sql(
        &url,
        r#"CREATE TABLE t (k int4, a int2, b int8, c float4, d float8, e boolean, f text,
             g varchar(10), h json, i jsonb, j uuid, l timestamptz, m timestamp, n date,
             o numeric, p text[], q interval, "odd ""name""" bpchar(3));
           INSERT INTO t VALUES
             (1, -32768, 9007199254740993, 1.1, 0.1, true, 'x"y\z☃', 'v', '{"b":1, "a":[1,2.50]}',
              '{"b":1,"a":2}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
              '2026-11-22 03:00:01.123456+02', '1999-12-31 23:59:59.5', '0044-03-15',
              12345.678900, '{a,"b c"}', '1 day 2 hours', 'ab'),
             (2, NULL, NULL, 'NaN', '-Infinity', false, '', NULL, 'null', '[]', NULL,
              '2000-01-01 00:00:00+00', 'infinity', '-infinity', -0.5, '{}', NULL, NULL),
             (3, 0, 0, 3.4e38, 1e300, NULL, NULL, NULL, NULL, NULL, NULL,
              '1970-01-01 00:00:00.000001+00', '2026-01-01 00:00:00', '2000-01-01', 1e-20, NULL, '0', 'xyz');"#,
    );
    let want: Vec<serde_json::Map<String, Value>> = rt().block_on(async {
        let c = client(&url).await;
        c.batch_execute("SET TimeZone = 'UTC'").await.unwrap();
        c.query("SELECT row_to_json(t)::text FROM t ORDER BY k", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| serde_json::from_str(r.get::<_, &str>(0)).unwrap())
            .collect()
    });
    let mut got = vec![];
    rt().block_on(audit::source::stream_table(
        &url,
        "t",
        "k",
        &mut |_, row| got.push(row.unwrap().to_map()),
    ))
    .unwrap();
    assert_eq!(got.len(), 3);
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(
            serde_json::to_string(g).unwrap(),
            serde_json::to_string(w).unwrap()
        );
    }
}
