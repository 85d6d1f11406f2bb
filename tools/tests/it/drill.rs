//! `drkit drill`: records written by the real binary, reports checked against RTO/RPO computed
//! here from the chosen times, tampering, concurrent appends, the HTML page and the JSON schema.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::util::drkit;

fn run(args: &[&str]) -> Output {
    drkit().arg("drill").args(args).output().unwrap()
}

fn ok(args: &[&str]) {
    let o = run(args);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{args:?}\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

fn json_lines(o: &Output) -> Vec<Value> {
    crate::util::json_lines(&o.stdout)
}

fn of_type<'a>(lines: &'a [Value], t: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["type"] == t).collect()
}

fn row<'a>(lines: &'a [Value], t: &str, key: &str, name: &str) -> &'a Value {
    lines
        .iter()
        .find(|l| l["type"] == t && l[key] == name)
        .unwrap_or_else(|| panic!("no {t} {name} in {lines:?}"))
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn ms(a: &str, b: &str) -> i64 {
    (at(b) - at(a)).num_milliseconds()
}

fn sha256sum(p: &Path) -> String {
    let o = Command::new("sha256sum").arg(p).output().unwrap();
    assert!(o.status.success());
    String::from_utf8(o.stdout).unwrap()[..64].to_string()
}

const FAULT: &str = "2026-11-20T10:00:00Z";
const REDIS_FAULT: &str = "2026-11-20T10:20:00Z";

/// (service, healthy time): RTOs 59m59s (critical), 40m (critical, own fault), 3h59m (core),
/// 23h (non-critical); all within MS5's objectives, one of them by a second.
const HEALTHY: &[(&str, &str)] = &[
    ("postgresql-primary", "2026-11-20T10:59:59Z"),
    ("redis", "2026-11-20T11:00:00Z"),
    ("graphql-router", "2026-11-20T13:59:00Z"),
    ("reports", "2026-11-21T09:00:00Z"),
];

/// (class, last good data, service whose fault applies): RPOs 14m, 4m59s, 1h, 0.
const POINTS: &[(&str, &str, Option<&str>)] = &[
    ("production", "2026-11-20T09:46:00Z", None),
    ("telemetry", "2026-11-20T09:55:01Z", None),
    ("telemetry", "2026-11-20T10:17:00Z", Some("redis")),
    ("configuration", "2026-11-20T09:00:00Z", None),
    ("audit", "2026-11-20T10:00:00Z", None),
];

/// A complete back-filled drill; returns the record path.
fn full_drill(dir: &Path) -> std::path::PathBuf {
    let r = dir.join("drill.jsonl");
    let rec = r.to_str().unwrap();
    let backup = dir.join("ms5db.dump");
    let bytes: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    fs::write(&backup, &bytes).unwrap();
    let b = backup.to_str().unwrap();
    ok(&[
        "start",
        rec,
        "--id",
        "dr-1",
        "--at",
        "2026-11-20T09:30:00Z",
        "--operator",
        "alice",
    ]);
    ok(&[
        "mark",
        rec,
        "fault",
        "--at",
        FAULT,
        "--note",
        "telemetry-3 corrupted",
    ]);
    ok(&[
        "mark",
        rec,
        "fault",
        "--service",
        "redis",
        "--at",
        REDIS_FAULT,
    ]);
    ok(&["mark", rec, "detected", "--at", "2026-11-20T10:04:00Z"]);
    ok(&[
        "mark",
        rec,
        "restore_started",
        "--service",
        "postgresql-primary",
        "--backup",
        b,
        "--at",
        "2026-11-20T10:10:00Z",
    ]);
    ok(&[
        "mark",
        rec,
        "restored",
        "--service",
        "postgresql-primary",
        "--at",
        "2026-11-20T10:50:00Z",
    ]);
    for (s, t) in HEALTHY {
        ok(&["mark", rec, "healthy", "--service", s, "--at", t]);
    }
    for (c, lg, s) in POINTS {
        let mut a = vec!["mark", rec, "data_point", "--class", c, "--last-good", lg];
        if let Some(s) = s {
            a.extend(["--service", s]);
        }
        a.extend(["--at", "2026-11-20T12:00:00Z"]);
        ok(&a);
    }
    ok(&["finish", rec, "--at", "2026-11-21T10:00:00Z"]);
    r
}

#[test]
fn full_drill_is_measured_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let r = full_drill(dir.path());
    let rec = r.to_str().unwrap();

    // The backup's hash as sha256sum computes it, in the restore_started line.
    let record: Vec<Value> = fs::read_to_string(&r)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let rs = record
        .iter()
        .find(|e| e["event"] == "restore_started")
        .unwrap();
    let dump = dir.path().join("ms5db.dump");
    assert_eq!(rs["backups"][0]["sha256"], sha256sum(&dump).as_str());
    assert_eq!(rs["backups"][0]["bytes"], 300_000);
    assert_eq!(rs["backfilled"], true);
    assert_eq!(rs["time"], "2026-11-20T10:10:00Z");
    assert_eq!(record.len(), 1 + 3 + 2 + HEALTHY.len() + POINTS.len() + 1);

    let o = run(&["report", rec, "--format", "json"]);
    let lines = json_lines(&o);
    assert_eq!(o.status.code(), Some(0), "{lines:?}");
    let objective = |tier: &str| match tier {
        "critical" => 3_600_000,
        "core" => 4 * 3_600_000,
        _ => 24 * 3_600_000,
    };
    for (s, healthy) in HEALTHY {
        let fault = if *s == "redis" { REDIS_FAULT } else { FAULT };
        let v = row(&lines, "service", "service", s);
        assert_eq!(v["rto_ms"], ms(fault, healthy), "{v}");
        assert_eq!(
            v["objective_ms"],
            objective(v["tier"].as_str().unwrap()),
            "{v}"
        );
        assert_eq!(v["verdict"], "met", "{v}");
    }
    assert_eq!(
        row(&lines, "service", "service", "redis")["tier"],
        "critical"
    );
    assert_eq!(
        row(&lines, "service", "service", "reports")["tier"],
        "non-critical"
    );
    let pg = row(&lines, "service", "service", "postgresql-primary");
    assert_eq!(pg["backups"][0]["sha256"], sha256sum(&dump).as_str());
    assert_eq!(pg["detected"], "2026-11-20T10:04:00Z");
    assert_eq!(pg["restored"], "2026-11-20T10:50:00Z");

    // RPO per class: its worst point, fault (own service's, else drill-wide) - last good.
    let rpo = |class: &str| {
        POINTS
            .iter()
            .filter(|p| p.0 == class)
            .map(|(_, lg, s)| {
                let fault = if s.is_some() { REDIS_FAULT } else { FAULT };
                ms(lg, fault).max(0)
            })
            .max()
            .unwrap()
    };
    for (class, objective) in [
        ("production", 900_000),
        ("telemetry", 300_000),
        ("configuration", 3_600_000),
        ("audit", 0),
    ] {
        let v = row(&lines, "data_class", "class", class);
        assert_eq!(v["rpo_ms"], rpo(class), "{v}");
        assert_eq!(v["objective_ms"], objective, "{v}");
        assert_eq!(v["verdict"], "met", "{v}");
    }
    assert_eq!(row(&lines, "data_class", "class", "telemetry")["points"], 2);
    assert_eq!(rpo("telemetry"), 299_000);
    let s = lines.last().unwrap();
    assert_eq!(s["type"], "summary");
    assert_eq!(s["verdict"], "pass");
    assert_eq!(s["exit_code"], 0);
    assert_eq!(s["met"], (HEALTHY.len() + 4) as u64);
    assert_eq!(of_type(&lines, "record")[0]["intact"], true);
    // Every event of this drill was given --at.
    assert_eq!(of_type(&lines, "record")[0]["backfilled"], record.len());

    let text = run(&["report", rec]);
    assert_eq!(text.status.code(), Some(0));
    let t = String::from_utf8(text.stdout).unwrap();
    assert!(t.contains("59m 59s"), "{t}");
    assert!(t.contains("4m 59s"), "{t}");
    assert!(t.lines().last().unwrap().starts_with("PASS"), "{t}");
}

#[test]
fn missed_or_unmeasurable_objectives_fail_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let r = full_drill(dir.path());
    let rec = r.to_str().unwrap();
    // A copy with Kafka healthy 1h00m01s after the fault, and an audit point a second short.
    let late = dir.path().join("late.jsonl");
    let l = late.to_str().unwrap();
    ok(&["start", l, "--at", "2026-11-20T09:30:00Z"]);
    ok(&["mark", l, "fault", "--at", FAULT]);
    ok(&[
        "mark",
        l,
        "healthy",
        "--service",
        "Kafka",
        "--at",
        "2026-11-20T11:00:01Z",
    ]);
    ok(&[
        "mark",
        l,
        "data_point",
        "--class",
        "audit",
        "--last-good",
        "2026-11-20T09:59:59Z",
    ]);
    ok(&["finish", l]);
    let o = run(&["report", l]);
    assert_eq!(o.status.code(), Some(1));
    let t = String::from_utf8(o.stdout).unwrap();
    let kafka = t.lines().find(|x| x.contains("Kafka")).unwrap();
    assert!(
        kafka.contains("MISSED") && kafka.contains("1h 00m 01s"),
        "{t}"
    );
    let audit = t
        .lines()
        .find(|x| x.trim_start().starts_with("audit"))
        .unwrap();
    assert!(audit.contains("MISSED") && audit.contains("1s"), "{t}");
    assert!(t.lines().last().unwrap().starts_with("FAIL"), "{t}");
    let j = run(&["report", l, "--format", "json"]);
    assert_eq!(j.status.code(), Some(1));
    let lines = json_lines(&j);
    assert_eq!(
        row(&lines, "service", "service", "Kafka")["rto_ms"],
        3_601_000
    );
    assert_eq!(
        row(&lines, "service", "service", "Kafka")["verdict"],
        "missed"
    );
    assert_eq!(lines.last().unwrap()["verdict"], "fail");
    assert_eq!(lines.last().unwrap()["exit_code"], 1);
    assert_eq!(lines.last().unwrap()["missed"], 2);

    // `drkit drill objectives` prints the built-in table as a file that reads back the same.
    let printed = run(&["objectives"]);
    assert_eq!(printed.status.code(), Some(0));
    let obj = dir.path().join("ms5.toml");
    fs::write(&obj, &printed.stdout).unwrap();
    let o = run(&[
        "report",
        l,
        "--objectives",
        obj.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(json_lines(&o), lines);

    // Objectives are configurable: with a 2-hour critical tier and an audit RPO of 1s it passes.
    let obj = dir.path().join("o.toml");
    fs::write(
        &obj,
        "[rto]\ncritical = \"2h\"\n[rpo]\naudit = \"1s\"\n[services]\nkafka = \"critical\"\n",
    )
    .unwrap();
    let o = run(&["report", l, "--objectives", obj.to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    fs::write(&obj, "[rto]\ncritical = \"soon\"\n").unwrap();
    let o = run(&["report", l, "--objectives", obj.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("critical"));

    // Data missing to measure: RTO to validation (none recorded), an expected class absent.
    let j = run(&[
        "report",
        rec,
        "--rto-end",
        "validated",
        "--expect-class",
        "recipes",
        "--format",
        "json",
    ]);
    assert_eq!(j.status.code(), Some(1));
    let lines = json_lines(&j);
    let pg = row(&lines, "service", "service", "postgresql-primary");
    assert_eq!(pg["verdict"], "unmeasured");
    assert_eq!(pg["reason"], "no validated event");
    let recipes = row(&lines, "data_class", "class", "recipes");
    assert_eq!(recipes["verdict"], "unmeasured");
    assert!(recipes["reason"]
        .as_str()
        .unwrap()
        .contains("no data_point"));

    // No finish event: the drill (or its tail) is incomplete.
    let open = dir.path().join("open.jsonl");
    let p = open.to_str().unwrap();
    ok(&["start", p]);
    ok(&["mark", p, "fault"]);
    ok(&["mark", p, "healthy", "--service", "redis"]);
    let o = run(&["report", p]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("no finish event"));
}

/// Runs report and mark over a damaged copy: both refuse (exit 1) naming `line`, and mark
/// leaves the file as it was.
fn refused(dir: &Path, name: &str, content: &[u8], line: usize, kind: &str) {
    let p = dir.join(name);
    fs::write(&p, content).unwrap();
    let rec = p.to_str().unwrap();
    let o = run(&["report", rec, "--format", "json"]);
    assert_eq!(o.status.code(), Some(1), "{name}");
    let lines = json_lines(&o);
    let breaks = of_type(&lines, "break");
    assert!(
        breaks
            .iter()
            .any(|b| b["line"] == line && b["kind"] == kind),
        "{name}: {breaks:?}"
    );
    assert_eq!(of_type(&lines, "record")[0]["intact"], false);
    assert_eq!(lines.last().unwrap()["verdict"], "fail");
    let t = run(&["report", rec]);
    assert_eq!(t.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&t.stdout).contains(&format!("line {line}: {kind}")));
    let m = run(&["mark", rec, "note", "--note", "after the damage"]);
    assert_eq!(m.status.code(), Some(1), "{name}");
    assert!(
        String::from_utf8_lossy(&m.stderr).contains(&format!("line {line}: {kind}")),
        "{name}: {}",
        String::from_utf8_lossy(&m.stderr)
    );
    assert_eq!(fs::read(&p).unwrap(), content, "{name}: mark wrote");
}

#[test]
fn tampered_records_are_refused_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let r = full_drill(dir.path());
    let text = fs::read_to_string(&r).unwrap();
    let lines: Vec<&str> = text.lines().collect();

    // Line 8 (redis healthy) moved ten minutes earlier.
    assert!(lines[7].contains("\"service\":\"redis\""));
    let mut edited = lines.clone();
    let e = lines[7].replace("2026-11-20T11:00:00Z", "2026-11-20T10:50:00Z");
    edited[7] = &e;
    refused(
        dir.path(),
        "edited.jsonl",
        (edited.join("\n") + "\n").as_bytes(),
        8,
        "content",
    );

    let mut deleted = lines.clone();
    deleted.remove(4);
    refused(
        dir.path(),
        "deleted.jsonl",
        (deleted.join("\n") + "\n").as_bytes(),
        5,
        "link",
    );

    let cut = &text.as_bytes()[..text.len() - 40];
    refused(dir.path(), "cut.jsonl", cut, lines.len(), "truncated");

    // The newest lines removed: the chain is valid, `finish` is gone, and the head noted
    // earlier is missing.
    let head: Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    let head = head["hash"].as_str().unwrap();
    let p = dir.path().join("tail.jsonl");
    fs::write(&p, lines[..lines.len() - 2].join("\n") + "\n").unwrap();
    let o = run(&[
        "report",
        p.to_str().unwrap(),
        "--head",
        head,
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let out = json_lines(&o);
    assert_eq!(of_type(&out, "break")[0]["kind"], "head_missing");
    assert!(of_type(&out, "problem")[0]["message"]
        .as_str()
        .unwrap()
        .contains("no finish"));
    let o = run(&["report", r.to_str().unwrap(), "--head", &head[..16]]);
    assert_eq!(o.status.code(), Some(0));

    // The original is untouched and still passes.
    assert_eq!(run(&["report", r.to_str().unwrap()]).status.code(), Some(0));
}

#[test]
fn appends_are_refused_or_rejected_without_writing() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("r.jsonl");
    let rec = p.to_str().unwrap();
    ok(&["start", rec, "--id", "x"]);
    let before = fs::read(&p).unwrap();
    // start never overwrites.
    assert_eq!(run(&["start", rec]).status.code(), Some(1));
    // Usage: healthy needs a service; a bad time; an unreadable backup.
    assert_eq!(run(&["mark", rec, "healthy"]).status.code(), Some(2));
    assert_eq!(
        run(&["mark", rec, "fault", "--at", "yesterday"])
            .status
            .code(),
        Some(2)
    );
    let missing = dir.path().join("missing.dump");
    let o = run(&[
        "mark",
        rec,
        "restore_started",
        "--service",
        "redis",
        "--backup",
        missing.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("missing.dump"));
    assert_eq!(fs::read(&p).unwrap(), before);
    // Nothing after finish.
    ok(&["finish", rec]);
    let finished = fs::read(&p).unwrap();
    let o = run(&["mark", rec, "note", "--format", "json"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(json_lines(&o)[0]["type"], "refused");
    assert_eq!(fs::read(&p).unwrap(), finished);
    assert_eq!(
        run(&["report", "/nonexistent/r.jsonl"]).status.code(),
        Some(2)
    );
}

#[test]
fn concurrent_marks_keep_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("r.jsonl");
    let rec = p.to_str().unwrap().to_string();
    ok(&["start", &rec]);
    const N: usize = 12;
    let workers: Vec<_> = ["op-a", "op-b"]
        .into_iter()
        .map(|op| {
            let rec = rec.clone();
            std::thread::spawn(move || {
                for i in 0..N {
                    let note = format!("{op} {i}");
                    ok(&["mark", &rec, "note", "--operator", op, "--note", &note]);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    ok(&["finish", &rec]);
    let o = run(&["report", &rec, "--format", "json"]);
    let lines = json_lines(&o);
    let record = of_type(&lines, "record")[0];
    assert_eq!(record["intact"], true, "{lines:?}");
    assert_eq!(record["events"], 2 + 2 * N);
    let notes: BTreeSet<String> = fs::read_to_string(&p)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter_map(|e| e["text"].as_str().map(str::to_string))
        .collect();
    for op in ["op-a", "op-b"] {
        for i in 0..N {
            assert!(notes.contains(&format!("{op} {i}")), "{op} {i} missing");
        }
    }
}

#[test]
fn html_page_is_self_contained() {
    let dir = tempfile::tempdir().unwrap();
    let r = full_drill(dir.path());
    let html = dir.path().join("drill.html");
    let o = run(&[
        "report",
        r.to_str().unwrap(),
        "--html",
        html.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0));
    let page = fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(!page.contains("http://") && !page.contains("https://"));
    assert!(!page.contains("<script") && !page.contains(" src="));
    assert!(page.contains("<svg") && page.contains("class=\"objective\""));
    for (s, _) in HEALTHY {
        assert!(page.contains(&format!("<td>{s}</td>")), "{s}");
    }
    for c in ["production", "telemetry", "configuration", "audit"] {
        assert!(page.contains(&format!("<td>{c}</td>")), "{c}");
    }
    assert!(page.contains("PASS"));
    // A failing drill says so on the page too.
    let text = fs::read_to_string(&r).unwrap().replace("dr-1", "dr-2");
    fs::write(&r, text).unwrap();
    let o = run(&[
        "report",
        r.to_str().unwrap(),
        "--html",
        html.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let page = fs::read_to_string(&html).unwrap();
    assert!(page.contains("FAIL") && page.contains("record line 1: content"));
}

/// The JSON Lines schema of docs/DRILL.md, strictly: unknown or missing fields fail.
#[derive(serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[allow(dead_code)]
enum Line {
    Record {
        record: String,
        drill: Option<String>,
        lines: u64,
        events: u64,
        backfilled: u64,
        intact: bool,
        finished: bool,
        head: Option<String>,
    },
    Break {
        line: u64,
        kind: String,
        message: String,
    },
    Service {
        service: String,
        tier: Option<String>,
        fault: Option<String>,
        detected: Option<String>,
        restore_started: Option<String>,
        restored: Option<String>,
        healthy: Option<String>,
        validated: Option<String>,
        rto_end: String,
        rto_ms: Option<i64>,
        objective_ms: Option<i64>,
        verdict: String,
        reason: Option<String>,
        backups: Vec<Backup>,
    },
    DataClass {
        class: String,
        points: u64,
        rpo_ms: Option<i64>,
        objective_ms: Option<i64>,
        verdict: String,
        reason: Option<String>,
        service: Option<String>,
        fault: Option<String>,
        last_good: Option<String>,
    },
    Problem {
        message: String,
    },
    Summary {
        services: u64,
        classes: u64,
        met: u64,
        missed: u64,
        unmeasured: u64,
        breaks: u64,
        problems: u64,
        verdict: String,
        exit_code: u8,
    },
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Backup {
    path: String,
    sha256: String,
    bytes: u64,
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

#[test]
fn json_lines_follow_the_documented_schema() {
    let docs = fs::read_to_string(crate::util::repo_root().join("docs/DRILL.md")).unwrap();
    // Every example line in the doc's ```json blocks.
    let mut examples: Vec<Value> = Vec::new();
    let mut in_json = false;
    for l in docs.lines() {
        match l.trim() {
            "```json" => in_json = true,
            "```" => in_json = false,
            x if in_json => {
                examples.push(serde_json::from_str(x).unwrap_or_else(|e| panic!("{x}: {e}")))
            }
            _ => {}
        }
    }
    let documented: BTreeSet<String> = examples
        .iter()
        .filter_map(|e| e["type"].as_str().map(str::to_string))
        .collect();
    for e in examples.iter().filter(|e| e.get("type").is_some()) {
        serde_json::from_value::<Line>(e.clone()).unwrap_or_else(|err| panic!("docs: {e}: {err}"));
    }

    // Real output: a passing drill, a broken one, an unfinished one.
    let dir = tempfile::tempdir().unwrap();
    let r = full_drill(dir.path());
    let mut seen = BTreeSet::new();
    let text = fs::read_to_string(&r).unwrap();
    let broken = dir.path().join("b.jsonl");
    fs::write(&broken, text.replace("alice", "mallory")).unwrap();
    let open = dir.path().join("o.jsonl");
    let lines: Vec<&str> = text.lines().collect();
    fs::write(&open, lines[..lines.len() - 1].join("\n") + "\n").unwrap();
    for (p, code) in [(&r, 0), (&broken, 1), (&open, 1)] {
        let o = run(&["report", p.to_str().unwrap(), "--format", "json"]);
        assert_eq!(o.status.code(), Some(code));
        for l in json_lines(&o) {
            seen.insert(l["type"].as_str().unwrap().to_string());
            serde_json::from_value::<Line>(l.clone()).unwrap_or_else(|e| panic!("{l}: {e}"));
            if l["type"] == "summary" {
                assert_eq!(l["exit_code"], code);
                assert_eq!(l["verdict"], if code == 0 { "pass" } else { "fail" });
            }
        }
    }
    assert_eq!(seen, documented, "types output vs documented");

    // The record line: the documented example has exactly the fields written.
    let example = examples.iter().find(|e| e.get("seq").is_some()).unwrap();
    let written: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(keys(example), keys(&written));
    for k in keys(&written) {
        assert!(
            docs.contains(&format!("| `{k}` |")),
            "field {k} not in the record table"
        );
    }
    // start/mark/finish --format json: `appended`, `refused`, `error`.
    let p = dir.path().join("m.jsonl");
    let m = p.to_str().unwrap();
    let o = run(&["start", m, "--format", "json"]);
    assert_eq!(o.status.code(), Some(0));
    let appended = &json_lines(&o)[0];
    assert_eq!(appended["type"], "appended");
    assert_eq!(
        keys(appended),
        keys(&serde_json::json!({"type": 0, "record": 0, "event": 0}))
    );
    assert_eq!(keys(&appended["event"]), keys(&written));
    let o = run(&["start", m, "--format", "json"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(json_lines(&o)[0]["type"], "refused");
    let o = run(&["mark", m, "healthy", "--format", "json"]);
    assert_eq!(o.status.code(), Some(2));
    let error = &json_lines(&o)[0];
    assert_eq!(error["type"], "error");
    assert_eq!(
        keys(error),
        keys(&serde_json::json!({"type": 0, "record": 0, "message": 0}))
    );
    let o = run(&["mark", m, "fault", "--at", "soon", "--format", "json"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(json_lines(&o)[0]["type"], "error");
    assert!(json_lines(&o)[0]["message"]
        .as_str()
        .unwrap()
        .contains("--at"));
    for t in ["appended", "refused", "error"] {
        assert!(
            docs.contains(&format!("{{\"type\":\"{t}\",\"record\":")),
            "{t}"
        );
    }

    for k in drill::chain::BreakKind::ALL {
        assert!(
            docs.contains(&format!("| `{}` |", k.as_str())),
            "{}",
            k.as_str()
        );
    }
    for k in drill::EventKind::ALL {
        assert!(
            docs.contains(&format!("| `{}` |", k.as_str())),
            "{}",
            k.as_str()
        );
    }
}
