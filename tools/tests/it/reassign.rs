//! `drkit reassign generate` run as a user runs it: an offline `--current` file, the plan and
//! rollback files it writes, its exit codes and its JSON Lines.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use kafka_admin::plan::{Assignment, Plan};
use serde_json::Value;

use crate::util::{drkit, output, Run};

/// 24 partitions (two topics), RF 3, round-robin over brokers 1-4.
fn current_file(dir: &Path) -> PathBuf {
    let mut parts = Vec::new();
    for topic in ["telemetry", "alarms"] {
        for p in 0..12 {
            let replicas: Vec<String> = (0..3).map(|k| (1 + (p + k) % 4).to_string()).collect();
            parts.push(format!(
                r#"{{"topic":"{topic}","partition":{p},"replicas":[{}]}}"#,
                replicas.join(",")
            ));
        }
    }
    let path = dir.join("current.json");
    fs::write(
        &path,
        format!(r#"{{"version":1,"partitions":[{}]}}"#, parts.join(",\n")),
    )
    .unwrap();
    path
}

/// Runs `drkit reassign generate --current FILE [extra]`. JSON Lines are parsed only under
/// `--format json`: in text mode stdout may be the plan itself, which is JSON but not lines.
fn generate(current: &Path, extra: &[&str]) -> Run {
    let out = drkit()
        .args(["reassign", "generate", "--current"])
        .arg(current)
        .args(extra)
        .output()
        .expect("run drkit");
    if extra.contains(&"json") {
        return output(out);
    }
    Run {
        code: out.status.code().unwrap_or(-1),
        lines: Vec::new(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn read_plan(p: &Path) -> Plan {
    Plan::parse(&fs::read_to_string(p).unwrap()).unwrap()
}

#[test]
fn decommission_writes_the_rollback_and_a_minimal_plan() {
    let dir = tempfile::tempdir().unwrap();
    let cur = current_file(dir.path());
    let before = fs::read(&cur).unwrap();
    let out = dir.path().join("plan.json");
    let r = generate(
        &cur,
        &[
            "--brokers",
            "1,2,3,4",
            "--decommission",
            "4",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("replica moves: 18 (lower bound 18)"),
        "{}",
        r.stdout
    );

    let current = read_plan(&cur).assignment();
    let plan = read_plan(&out);
    let rollback = read_plan(&dir.path().join("plan.json.rollback.json"));
    assert_eq!(plan.partitions.len(), rollback.partitions.len());
    let on4: BTreeSet<_> = current
        .iter()
        .filter(|(_, r)| r.contains(&4))
        .map(|(k, _)| k.clone())
        .collect();
    for p in &plan.partitions {
        let key = (p.topic.clone(), p.partition);
        assert!(!p.replicas.contains(&4), "{key:?} still on 4");
        assert_eq!(p.replicas.len(), 3);
        let kept: BTreeSet<_> = current[&key].iter().filter(|b| **b != 4).collect();
        assert!(kept.iter().all(|b| p.replicas.contains(b)), "{key:?}");
    }
    // Every partition on broker 4 is in the plan; the rollback holds their current lists.
    let planned: BTreeSet<_> = plan
        .partitions
        .iter()
        .map(|p| (p.topic.clone(), p.partition))
        .collect();
    assert!(on4.is_subset(&planned));
    for (k, v) in rollback.assignment() {
        assert_eq!(current[&k], v, "{k:?}");
    }
    assert_eq!(
        fs::read(&cur).unwrap(),
        before,
        "the input file is never written"
    );
}

#[test]
fn existing_files_are_not_overwritten_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let cur = current_file(dir.path());
    let out = dir.path().join("p.json");
    let rb = dir.path().join("undo.json");
    let args = |force: bool| {
        let mut a = vec![
            "--brokers",
            "1,2,3,4,5",
            "--rebalance",
            "--out",
            out.to_str().unwrap(),
            "--rollback",
            rb.to_str().unwrap(),
        ];
        if force {
            a.push("--force");
        }
        a.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let run = |a: Vec<String>| {
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        generate(&cur, &a)
    };
    fs::write(&rb, "keep me").unwrap();
    let r = run(args(false));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("undo.json exists"), "{}", r.stderr);
    assert_eq!(fs::read_to_string(&rb).unwrap(), "keep me");
    assert!(!out.exists(), "nothing is written when one file is refused");

    let r = run(args(true));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let (plan, rollback) = (read_plan(&out), read_plan(&rb));
    assert!(!plan.partitions.is_empty());
    assert_eq!(
        plan.assignment().keys().collect::<Vec<_>>(),
        rollback.assignment().keys().collect::<Vec<_>>()
    );

    // Never over an input, even with --force.
    let r = generate(
        &cur,
        &[
            "--brokers",
            "1,2,3,4,5",
            "--rebalance",
            "--force",
            "--out",
            cur.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("is an input file"), "{}", r.stderr);
}

#[test]
fn json_lines_report_and_plan_on_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let cur = current_file(dir.path());
    let r = generate(
        &cur,
        &[
            "--brokers",
            "1,2,3,4,5,6",
            "--rebalance",
            "--format",
            "json",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let of = |t: &str| -> Vec<&Value> { r.lines.iter().filter(|l| l["type"] == t).collect() };
    let summary = of("summary");
    assert_eq!(summary.len(), 1);
    let s = summary[0];
    assert_eq!(
        r.lines.last().unwrap()["type"],
        "summary",
        "summary comes last"
    );
    assert_eq!(s["change"], "rebalance");
    // 72 replicas: 18 on each of 4 brokers, ideal 12 on 6: 2 x 12 must arrive.
    assert_eq!(s["lower_bound"], 24);
    assert_eq!(s["replica_moves"], 24);
    assert_eq!(s["replicas_ideal"], serde_json::json!([12, 12]));
    assert_eq!(s["replicas_range"], serde_json::json!([12, 12]));
    assert_eq!(s["plan_file"], Value::Null);
    let brokers = of("broker");
    assert_eq!(brokers.len(), 6);
    assert!(brokers.iter().all(|b| b["replicas_after"] == 12));
    let parts = of("partition");
    assert_eq!(s["partitions_changed"], parts.len());
    let moves: u64 = parts
        .iter()
        .map(|p| p["replica_moves"].as_u64().unwrap())
        .sum();
    assert_eq!(moves, 24);

    // Text without --out: the plan is stdout, the report stderr.
    let r = generate(&cur, &["--brokers", "1,2,3,4,5,6", "--rebalance"]);
    assert_eq!(r.code, 0);
    let plan = Plan::parse(&r.stdout).unwrap();
    assert_eq!(plan.partitions.len(), parts.len());
    assert!(
        r.stderr.contains("replica moves: 24 (lower bound 24)"),
        "{}",
        r.stderr
    );
}

#[test]
fn replace_and_topics_to_move() {
    let dir = tempfile::tempdir().unwrap();
    let cur = current_file(dir.path());
    let current = read_plan(&cur).assignment();
    let r = generate(&cur, &["--brokers", "1,2,3,4,9", "--replace", "2:9"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let target: Assignment = Plan::parse(&r.stdout).unwrap().assignment();
    for (k, now) in &current {
        let expect: Vec<i32> = now.iter().map(|&b| if b == 2 { 9 } else { b }).collect();
        match target.get(k) {
            Some(t) => assert_eq!(t, &expect, "{k:?}"),
            None => assert_eq!(now, &expect, "{k:?} on 2 but not in the plan"),
        }
    }

    let topics = dir.path().join("topics.json");
    fs::write(&topics, r#"{"version":1,"topics":[{"topic":"alarms"}]}"#).unwrap();
    let r = generate(
        &cur,
        &[
            "--brokers",
            "1,2,3,4,5,6",
            "--broker-list",
            "3,4,5,6",
            "--topics-to-move-json-file",
            topics.to_str().unwrap(),
            "--format",
            "json",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    for p in r.lines.iter().filter(|l| l["type"] == "partition") {
        assert_eq!(p["topic"], "alarms");
        for b in p["replicas_after"].as_array().unwrap() {
            assert!((3..=6).contains(&b.as_i64().unwrap()), "{p}");
        }
    }
    let s = r.lines.last().unwrap();
    assert_eq!(s["scope_partitions"], 12);
    assert_eq!(s["replica_moves"], s["lower_bound"]);
}

#[test]
fn a_broken_rack_spread_is_exit_1_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let cur = dir.path().join("c.json");
    fs::write(
        &cur,
        r#"{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1,2,3]}]}"#,
    )
    .unwrap();
    let r = generate(
        &cur,
        &[
            "--brokers",
            "1,2,3,4,5",
            "--racks",
            "1=a,2=b,3=c,4=a,5=c",
            "--replace",
            "3:4",
            "--format",
            "json",
        ],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    let v: Vec<&Value> = r
        .lines
        .iter()
        .filter(|l| l["type"] == "rack_violation")
        .collect();
    assert_eq!(v.len(), 1);
    assert_eq!(v[0]["replicas"], serde_json::json!([1, 2, 4]));
}

#[test]
fn bad_input_is_exit_2_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let cur = current_file(dir.path());
    let err = |extra: &[&str]| {
        let r = generate(&cur, extra);
        assert_eq!(r.code, 2, "{extra:?}: {}{}", r.stdout, r.stderr);
        assert!(r.stdout.is_empty(), "{extra:?}: {}", r.stdout);
        r.stderr
    };
    assert!(err(&["--brokers", "1,2,3,4", "--decommission", "7"])
        .contains("cannot decommission broker 7"));
    assert!(err(&["--brokers", "1,2,3", "--rebalance"])
        .contains("broker 4 holds a replica but is not in the broker list"));
    assert!(err(&["--brokers", "1,2,2,4", "--rebalance"])
        .contains("--brokers: broker 2 is listed twice"));
    assert!(err(&["--brokers", "1,2,3,4", "--decommission", "3,4"])
        .contains("3 replicas but only 2 broker(s)"));
    assert!(
        err(&["--brokers", "1,2,3,4", "--racks", "1=a", "--rebalance"])
            .contains("broker 2 has no rack")
    );
    assert!(err(&["--brokers", "1,2,3,4", "--replace", "3"]).contains("--replace: not OLD:NEW"));
    // No change requested, two changes, or a cluster that cannot be reached: usage errors.
    err(&["--brokers", "1,2,3,4"]);
    err(&["--brokers", "1,2,3,4", "--rebalance", "--decommission", "4"]);
    let r = output(
        drkit()
            .args(["reassign", "generate", "--bootstrap-server", "127.0.0.1:1"])
            .args(["-X", "security.protocol=plaintext", "--rebalance"])
            .output()
            .unwrap(),
    );
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("cannot connect to 127.0.0.1:1"),
        "{}",
        r.stderr
    );

    let bad = dir.path().join("bad.json");
    fs::write(
        &bad,
        r#"{"version":1,"partitions":[{"topic":"t","partition":3,"replicas":[1,1]}]}"#,
    )
    .unwrap();
    let r = generate(&bad, &["--brokers", "1,2", "--rebalance"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("bad.json") && r.stderr.contains("t-3: broker 1 appears twice"),
        "{}",
        r.stderr
    );
    let missing = generate(
        &dir.path().join("nope.json"),
        &["--brokers", "1", "--rebalance"],
    );
    assert_eq!(missing.code, 2);
    assert!(missing.stderr.contains("nope.json"), "{}", missing.stderr);
}

/// The JSON Lines schema of docs/REASSIGN.md, field for field: an undocumented field fails here.
#[allow(dead_code)]
#[derive(serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum Line {
    Partition {
        topic: String,
        partition: i32,
        replicas_before: Vec<i32>,
        replicas_after: Vec<i32>,
        replica_moves: u64,
        leader_changed: bool,
    },
    Broker {
        broker: i32,
        rack: Option<String>,
        target: bool,
        replicas_before: u64,
        replicas_after: u64,
        leaders_before: u64,
        leaders_after: u64,
    },
    RackViolation {
        topic: String,
        partition: i32,
        replicas: Vec<i32>,
    },
    Summary {
        change: String,
        partitions: u64,
        scope_partitions: u64,
        partitions_changed: u64,
        replica_moves: u64,
        lower_bound: u64,
        leader_changes: u64,
        replicas_ideal: [u64; 2],
        replicas_range: [u64; 2],
        leaders_ideal: [u64; 2],
        leaders_range: [u64; 2],
        rack_violations_before: u64,
        rack_violations: u64,
        plan_file: Option<String>,
        rollback_file: Option<String>,
    },
}

#[test]
fn json_lines_follow_the_documented_schema() {
    let dir = tempfile::tempdir().unwrap();
    let cur = dir.path().join("c.json");
    fs::write(
        &cur,
        r#"{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1,2,3]},
            {"topic":"t","partition":1,"replicas":[2,3,1]}]}"#,
    )
    .unwrap();
    let out = dir.path().join("p.json");
    let r = generate(
        &cur,
        &[
            "--brokers",
            "1,2,3,4,5",
            "--racks",
            "1=a,2=b,3=c,4=a,5=c",
            "--replace",
            "3:4",
            "--out",
            out.to_str().unwrap(),
            "--format",
            "json",
        ],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    let mut kinds = BTreeSet::new();
    for l in r.stdout.lines() {
        let parsed: Line = serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"));
        kinds.insert(format!("{:?}", std::mem::discriminant(&parsed)));
        assert!(l.starts_with("{\"type\":"), "{l}");
    }
    assert_eq!(kinds.len(), 4, "{}", r.stdout);
    let doc = fs::read_to_string(crate::util::repo_root().join("docs/REASSIGN.md")).unwrap();
    let summary = r.lines.last().unwrap().as_object().unwrap();
    let broker = r.lines.iter().find(|l| l["type"] == "broker").unwrap();
    let part = r.lines.iter().find(|l| l["type"] == "partition").unwrap();
    for field in summary
        .keys()
        .chain(broker.as_object().unwrap().keys())
        .chain(part.as_object().unwrap().keys())
    {
        assert!(
            doc.contains(&format!("`{field}`")),
            "{field} is not documented"
        );
    }
    assert_eq!(summary["plan_file"], out.to_str().unwrap());
}

#[test]
fn the_rollback_is_written_before_the_plan() {
    let dir = tempfile::tempdir().unwrap();
    let cur = current_file(dir.path());
    let rb = dir.path().join("rb.json");
    // The plan's directory does not exist: the rollback is already on disk when writing it fails.
    let out = dir.path().join("missing-dir").join("plan.json");
    let r = generate(
        &cur,
        &[
            "--brokers",
            "1,2,3,4",
            "--decommission",
            "1",
            "--rollback",
            rb.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("cannot write") && r.stderr.contains("plan.json"),
        "{}",
        r.stderr
    );
    let rollback = read_plan(&rb).assignment();
    let current = read_plan(&cur).assignment();
    assert_eq!(
        rollback.len(),
        current.values().filter(|r| r.contains(&1)).count()
    );
    assert!(!out.exists());

    // --rollback without --out: the rollback file, and the plan on stdout.
    let rb2 = dir.path().join("rb2.json");
    let r = generate(
        &cur,
        &[
            "--brokers",
            "1,2,3,4",
            "--decommission",
            "1",
            "--rollback",
            rb2.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let plan = Plan::parse(&r.stdout).unwrap().assignment();
    assert_eq!(
        plan.keys().collect::<Vec<_>>(),
        read_plan(&rb2).assignment().keys().collect::<Vec<_>>()
    );
}

/// `--bootstrap-server`: the assignment, brokers and racks come from the cluster's Metadata (the
/// protocol fake of kafka-admin/tests/support, since Tansu fakes its replica lists).
#[test]
fn the_current_assignment_and_racks_are_read_from_the_cluster() {
    use crate::reassign_exec::fake_broker::{FakeCluster, FakePartition, FakeState};
    let mut state = FakeState::cluster(&[1, 2, 3, 4]).topic(
        "t",
        vec![
            FakePartition::healthy(&[1, 4]),
            FakePartition::healthy(&[4, 2]),
            FakePartition::healthy(&[2, 3]),
            FakePartition::healthy(&[3, 1]),
        ],
    );
    for (b, rack) in [(1, "a"), (2, "b"), (3, "a"), (4, "b")] {
        state.brokers.insert(b, Some(rack.to_string()));
    }
    let fake = FakeCluster::start(state);
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.json");
    let out = drkit()
        .args(["reassign", "generate", "--bootstrap-server", &fake.addr])
        .args(["--decommission", "4", "--out"])
        .arg(&plan)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let planned = Plan::read(&plan).unwrap().assignment();
    // Exactly the two partitions with a replica on broker 4 change. Partition 0 ([1 (a), 4 (b)])
    // can keep both racks only with broker 2, the one rack-b broker left; partition 1 keeps 2
    // (rack b) and needs a rack-a broker.
    assert_eq!(
        planned.keys().cloned().collect::<Vec<_>>(),
        vec![("t".to_string(), 0), ("t".to_string(), 1)]
    );
    assert_eq!(planned[&("t".to_string(), 0)], vec![1, 2]);
    let p1 = &planned[&("t".to_string(), 1)];
    assert!(
        p1.contains(&2) && (p1.contains(&1) || p1.contains(&3)),
        "{p1:?}"
    );
    let rollback = Plan::read(&dir.path().join("plan.json.rollback.json"))
        .unwrap()
        .assignment();
    assert_eq!(rollback[&("t".to_string(), 1)], vec![4, 2]);
}
