//! `drkit offsets describe | reset | restore` against the Tansu broker (scripts/tansu.sh).
//!
//! Topics are produced one record per produce request (Tansu's watermarks are right only then);
//! offsets are set up and read back with rdkafka directly, not through drkit, so a wrong commit
//! in drkit cannot hide behind a matching wrong read. Each test has its own topics and groups.
//! The target arithmetic Tansu answers differently from Apache Kafka (time look-ups with no
//! match) is tested purely in kafka-admin's `offsets` module, not here.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kafka_admin::group::{GroupClient, GroupError};
use kafka_admin::offsets::TopicPartition;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use replay::kafka::Settings;
use serde_json::Value;

use crate::replay::support::{self, rt};
use crate::util::{copy_dir, drkit, output, testdata, Run};

fn bootstrap() -> &'static str {
    support::kafka_bootstrap()
}

/// A new topic with `partitions` partitions and `per_partition` records in each.
fn topic(name: &str, partitions: i32, per_partition: usize) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .create()
        .unwrap();
    let r = rt().block_on(admin.create_topics(
        &[NewTopic::new(name, partitions, TopicReplication::Fixed(1))],
        &AdminOptions::new(),
    ));
    assert!(r.unwrap().iter().all(|r| r.is_ok()), "create topic {name}");
    produce(name, partitions, per_partition);
}

fn produce(name: &str, partitions: i32, per_partition: usize) {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("linger.ms", "0")
        // One record per produce request: Tansu's watermarks are right only then.
        .set("batch.num.messages", "1")
        .set("max.in.flight.requests.per.connection", "1")
        .create()
        .unwrap();
    for i in 0..per_partition {
        for p in 0..partitions {
            let v = format!("{name}/{p}/{i}");
            producer
                .send(BaseRecord::<(), str>::to(name).payload(&v).partition(p))
                .map_err(|(e, _)| e)
                .unwrap();
        }
    }
    producer.flush(Duration::from_secs(30)).unwrap();
}

fn consumer(group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap()
}

/// Commits offsets for an inactive group, as a consumer that never subscribes.
fn commit(group: &str, offsets: &[(&str, i32, i64)]) {
    let mut tpl = TopicPartitionList::new();
    for (t, p, o) in offsets {
        tpl.add_partition_offset(t, *p, Offset::Offset(*o)).unwrap();
    }
    consumer(group).commit(&tpl, CommitMode::Sync).unwrap();
}

/// The group's committed offsets for partitions 0..n of `topic` (`None`: none committed).
fn committed(group: &str, topic: &str, n: i32) -> Vec<Option<i64>> {
    let mut tpl = TopicPartitionList::new();
    for p in 0..n {
        tpl.add_partition(topic, p);
    }
    let got = consumer(group)
        .committed_offsets(tpl, Duration::from_secs(15))
        .unwrap();
    (0..n)
        .map(|p| match got.find_partition(topic, p).unwrap().offset() {
            Offset::Offset(o) => Some(o),
            _ => None,
        })
        .collect()
}

fn offsets(args: &[&str], cwd: &Path) -> Run {
    let out = drkit()
        .arg("offsets")
        .args(args)
        .args(["--bootstrap-server", bootstrap()])
        .current_dir(cwd)
        .output()
        .unwrap();
    output(out)
}

fn json(args: &[&str], cwd: &Path) -> Run {
    let mut a = args.to_vec();
    a.extend(["--format", "json"]);
    offsets(&a, cwd)
}

fn parts(run: &Run) -> Vec<&Value> {
    run.lines
        .iter()
        .filter(|l| l["type"] == "partition")
        .collect()
}

/// (partition, current, target) of each plan line.
fn plan(run: &Run) -> Vec<(i64, Option<i64>, Option<i64>)> {
    parts(run)
        .iter()
        .map(|l| {
            (
                l["partition"].as_i64().unwrap(),
                l["current"].as_i64(),
                l["target"].as_i64(),
            )
        })
        .collect()
}

fn ok(run: &Run) -> &Run {
    assert_eq!(
        run.code, 0,
        "stdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    run
}

/// Every record has exactly the fields docs/OFFSETS.md lists for its type.
fn schema(run: &Run, cmd: &str) {
    assert!(!run.lines.is_empty(), "no JSON lines: {}", run.stderr);
    for l in &run.lines {
        let ty = l["type"].as_str().unwrap();
        let want: &[&str] = match (ty, cmd) {
            ("group", _) => &[
                "type",
                "group",
                "state",
                "found",
                "protocol_type",
                "protocol",
                "members",
            ],
            ("partition", "describe") => &[
                "type",
                "topic",
                "partition",
                "committed",
                "log_start",
                "log_end",
                "lag",
                "member_id",
            ],
            ("partition", _) => &[
                "type",
                "topic",
                "partition",
                "current",
                "target",
                "log_start",
                "log_end",
                "moves",
                "notes",
            ],
            ("summary", "describe") => &[
                "type",
                "group",
                "state",
                "exists",
                "members",
                "partitions",
                "lag",
            ],
            ("summary", _) => &[
                "type",
                "command",
                "group",
                "state",
                "execute",
                "applied",
                "partitions",
                "moving",
                "snapshot",
                "export",
                "refused",
            ],
            ("snapshot", _) => &["type", "path", "partitions"],
            ("warning" | "error", _) => &["type", "message"],
            _ => panic!("undocumented record type: {l}"),
        };
        let mut got: Vec<&str> = l.as_object().unwrap().keys().map(String::as_str).collect();
        let mut want = want.to_vec();
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want, "{l}");
        if ty == "group" {
            for m in l["members"].as_array().unwrap() {
                let mut k: Vec<&str> = m.as_object().unwrap().keys().map(String::as_str).collect();
                k.sort_unstable();
                assert_eq!(k, ["assignment", "client_id", "host", "member_id"], "{m}");
            }
        }
        if ty == "partition" && cmd != "describe" {
            for n in l["notes"].as_array().unwrap() {
                assert!(n["kind"].is_string() && n["message"].is_string(), "{n}");
            }
        }
    }
    assert!(
        matches!(
            run.lines.last().unwrap()["type"].as_str(),
            Some("summary" | "error")
        ),
        "last line: {}",
        run.stdout
    );
}

fn note_kinds(l: &Value) -> Vec<&str> {
    l["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["kind"].as_str().unwrap())
        .collect()
}

/// A subscribed consumer polling in a thread until dropped (Tansu needs the short timeouts to
/// let it join within seconds; see test-services.md). It commits nothing.
struct Live {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Live {
    fn join(group: &str, topic: &str) -> Live {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let (group, topic) = (group.to_string(), topic.to_string());
        let handle = std::thread::spawn(move || {
            let c: BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", bootstrap())
                .set("group.id", &group)
                .set("enable.auto.commit", "false")
                .set("session.timeout.ms", "6000")
                .set("max.poll.interval.ms", "10000")
                .create()
                .unwrap();
            c.subscribe(&[&topic]).unwrap();
            while !s.load(Ordering::Relaxed) {
                let _ = c.poll(Duration::from_millis(100));
            }
        });
        Live {
            stop,
            handle: Some(handle),
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn client(group: &str) -> GroupClient {
    GroupClient::new(
        bootstrap(),
        group,
        &Settings::default(),
        Duration::from_secs(15),
    )
    .unwrap()
}

/// Waits (at most 60 s) until DescribeGroups reports `state`.
fn wait_state(group: &str, state: &str) {
    let c = client(group);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let g = c.describe().unwrap();
        if g.state == state {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "group {group} still {} after 60 s",
            g.state
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn describe_shows_committed_offsets_and_lag() {
    let tmp = tempfile::tempdir().unwrap();
    topic("off-describe", 2, 5);
    commit(
        "g-describe",
        &[("off-describe", 0, 2), ("off-describe", 1, 5)],
    );
    let run = json(&["describe", "--group", "g-describe"], tmp.path());
    ok(&run);
    schema(&run, "describe");
    let got: Vec<(i64, i64, i64, i64, i64)> = parts(&run)
        .iter()
        .map(|l| {
            (
                l["partition"].as_i64().unwrap(),
                l["committed"].as_i64().unwrap(),
                l["log_start"].as_i64().unwrap(),
                l["log_end"].as_i64().unwrap(),
                l["lag"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, vec![(0, 2, 0, 5, 3), (1, 5, 0, 5, 0)]);
    assert!(parts(&run).iter().all(|l| l["topic"] == "off-describe"));
    let g = &run.lines[0];
    assert_eq!(g["type"], "group");
    assert_eq!(g["members"].as_array().unwrap().len(), 0);
    assert_eq!(run.summary()["lag"], 3);
    assert_eq!(run.summary()["exists"], true);

    let text = ok(&offsets(&["describe", "--group", "g-describe"], tmp.path()))
        .stdout
        .clone();
    assert!(text.contains("TOPIC"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["off-describe", "0", "2", "0", "5", "3", "-"]),
        "{text}"
    );

    let none = json(&["describe", "--group", "g-describe-never"], tmp.path());
    assert_eq!(none.code, 1, "{}", none.stdout);
    assert_eq!(none.summary()["exists"], false);
}

#[test]
fn dry_run_changes_nothing_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    topic("off-dry", 2, 6);
    commit("g-dry", &[("off-dry", 0, 4), ("off-dry", 1, 6)]);
    let run = json(
        &["reset", "--group", "g-dry", "--all-topics", "--to-earliest"],
        tmp.path(),
    );
    ok(&run);
    assert_eq!(
        plan(&run),
        vec![(0, Some(4), Some(0)), (1, Some(6), Some(0))]
    );
    assert!(parts(&run).iter().all(|l| l["moves"] == true));
    let s = run.summary();
    assert_eq!(s["execute"], false);
    assert_eq!(s["applied"], false);
    assert_eq!(s["moving"], 2);
    assert_eq!(s["snapshot"], Value::Null);
    assert_eq!(committed("g-dry", "off-dry", 2), vec![Some(4), Some(6)]);
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    // Re-described: unchanged.
    let d = json(&["describe", "--group", "g-dry"], tmp.path());
    let c: Vec<i64> = parts(&d)
        .iter()
        .map(|l| l["committed"].as_i64().unwrap())
        .collect();
    assert_eq!(c, vec![4, 6]);
    let text = ok(&offsets(
        &["reset", "--group", "g-dry", "--all-topics", "--to-earliest"],
        tmp.path(),
    ))
    .stdout
    .clone();
    assert!(
        text.contains("dry run: 2 of 2 partition(s) would move"),
        "{text}"
    );
}

/// Runs a reset with --execute and returns the run after checking it applied.
fn execute(group: &str, args: &[&str], dir: &Path, snap: &str) -> Run {
    let mut a = vec!["reset", "--group", group, "--execute", "--snapshot", snap];
    a.extend_from_slice(args);
    let run = json(&a, dir);
    ok(&run);
    schema(&run, "reset");
    run
}

#[test]
fn each_target_is_applied_and_read_back() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let (g, t) = ("g-targets", "off-targets");
    topic(t, 3, 10);
    commit(g, &[(t, 0, 5), (t, 1, 5), (t, 2, 5)]);
    let all = ["--topic", t];

    execute(g, &[&all[..], &["--to-earliest"]].concat(), d, "s1.json");
    assert_eq!(committed(g, t, 3), vec![Some(0); 3]);
    execute(g, &[&all[..], &["--to-latest"]].concat(), d, "s2.json");
    assert_eq!(committed(g, t, 3), vec![Some(10); 3]);
    execute(g, &["--all-topics", "--to-offset", "4"], d, "s3.json");
    assert_eq!(committed(g, t, 3), vec![Some(4); 3]);
    execute(g, &["--all-topics", "--shift-by", "-3"], d, "s4.json");
    assert_eq!(committed(g, t, 3), vec![Some(1); 3]);
    execute(g, &["--all-topics", "--shift-by", "+2"], d, "s5.json");
    assert_eq!(committed(g, t, 3), vec![Some(3); 3]);

    // Beyond the log: clamped, with a warning per partition.
    let run = execute(g, &["--all-topics", "--shift-by", "-5"], d, "s6.json");
    assert_eq!(committed(g, t, 3), vec![Some(0); 3]);
    assert!(parts(&run)
        .iter()
        .all(|l| note_kinds(l) == ["clamped_to_log_start"]));
    assert_eq!(run.stderr.matches("clamped").count(), 3, "{}", run.stderr);
    let run = execute(g, &["--all-topics", "--to-offset", "50"], d, "s7.json");
    assert_eq!(committed(g, t, 3), vec![Some(10); 3]);
    assert!(parts(&run)
        .iter()
        .all(|l| note_kinds(l) == ["clamped_to_log_end"] && l["notes"][0]["requested"] == 50));

    // Listed partitions only.
    execute(
        g,
        &["--topic", &format!("{t}:1,2"), "--to-offset", "7"],
        d,
        "s8.json",
    );
    assert_eq!(committed(g, t, 3), vec![Some(10), Some(7), Some(7)]);

    // --to-current re-commits what is there: nothing moves, no snapshot is needed.
    let run = json(
        &[
            "reset",
            "--group",
            g,
            "--all-topics",
            "--to-current",
            "--execute",
            "--snapshot",
            "s9.json",
        ],
        d,
    );
    ok(&run);
    assert_eq!(run.summary()["moving"], 0);
    assert!(!d.join("s9.json").exists());
    assert_eq!(committed(g, t, 3), vec![Some(10), Some(7), Some(7)]);

    // Every executed reset left its snapshot of what it replaced.
    let s4: Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("s4.json")).unwrap()).unwrap();
    assert_eq!(s4["group"], g);
    let offs: Vec<i64> = s4["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["offset"].as_i64().unwrap())
        .collect();
    assert_eq!(offs, vec![4, 4, 4]);
}

#[test]
fn to_datetime_and_by_duration_use_the_time_index() {
    let tmp = tempfile::tempdir().unwrap();
    let (g, t) = ("g-time", "off-time");
    topic(t, 1, 3);
    // Records written before and after `at`, a second apart on either side.
    std::thread::sleep(Duration::from_millis(1500));
    let at = chrono::Utc::now();
    std::thread::sleep(Duration::from_millis(1500));
    produce(t, 1, 2);
    commit(g, &[(t, 0, 5)]);
    // No zone: UTC.
    let when = at.format("%Y-%m-%dT%H:%M:%S%.3f").to_string();
    let run = execute(
        g,
        &["--all-topics", "--to-datetime", &when],
        tmp.path(),
        "a.json",
    );
    assert_eq!(plan(&run), vec![(0, Some(5), Some(3))]);
    assert_eq!(committed(g, t, 1), vec![Some(3)]);
    // An hour back: every record is newer.
    let run = execute(
        g,
        &["--all-topics", "--by-duration", "PT1H"],
        tmp.path(),
        "b.json",
    );
    assert_eq!(plan(&run), vec![(0, Some(3), Some(0))]);
    assert_eq!(committed(g, t, 1), vec![Some(0)]);
}

#[test]
fn snapshot_then_restore_brings_offsets_back() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let (g, t) = ("g-restore", "off-restore");
    topic(t, 2, 8);
    commit(g, &[(t, 0, 3)]);
    execute(g, &["--topic", t, "--to-latest"], d, "before.json");
    assert_eq!(committed(g, t, 2), vec![Some(8), Some(8)]);
    let snap: Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("before.json")).unwrap()).unwrap();
    assert_eq!(snap["format"], "drkit-offsets-snapshot/1");
    assert_eq!(snap["bootstrap"], bootstrap());
    assert_eq!(snap["command"], "reset");
    assert_eq!(snap["partitions"][0]["offset"], 3);
    assert_eq!(snap["partitions"][1]["offset"], Value::Null);

    // Dry run first: nothing changes.
    let dry = json(&["restore", "before.json"], d);
    ok(&dry);
    schema(&dry, "restore");
    assert_eq!(plan(&dry), vec![(0, Some(8), Some(3)), (1, Some(8), None)]);
    assert_eq!(note_kinds(parts(&dry)[1]), ["no_offset_in_snapshot"]);
    assert!(dry.stderr.contains("cannot be deleted"), "{}", dry.stderr);
    assert_eq!(committed(g, t, 2), vec![Some(8), Some(8)]);

    let run = json(
        &[
            "restore",
            "before.json",
            "--execute",
            "--snapshot",
            "undo.json",
        ],
        d,
    );
    ok(&run);
    assert_eq!(run.summary()["applied"], true);
    // Partition 1 had no offset: it cannot be deleted one partition at a time, so it stays.
    assert_eq!(committed(g, t, 2), vec![Some(3), Some(8)]);
    let undo: Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("undo.json")).unwrap()).unwrap();
    assert_eq!(undo["command"], "restore");
    assert_eq!(undo["partitions"][0]["offset"], 8);
    // The restore's own snapshot undoes the restore.
    ok(&json(
        &[
            "restore",
            "undo.json",
            "--execute",
            "--snapshot",
            "undo2.json",
        ],
        d,
    ));
    assert_eq!(committed(g, t, 2), vec![Some(8), Some(8)]);
}

#[test]
fn an_active_group_is_refused_at_plan_time_and_right_before_the_commit() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let (g, t) = ("g-active", "off-active");
    topic(t, 1, 6);
    commit(g, &[(t, 0, 4)]);
    // Planned while the group is Empty, as a reset does.
    let c = client(g);
    assert!(c.describe().unwrap().is_inactive());
    let tp = TopicPartition::new(t, 0);
    let planned = c.committed(std::slice::from_ref(&tp)).unwrap();
    assert_eq!(planned[&tp], Some(4));

    let live = Live::join(g, t);
    wait_state(g, "Stable");
    // describe shows the member (Tansu reports no assignment bytes, so which partitions it
    // owns is not checked here; decoding them is unit-tested in kafka-admin's group module).
    let desc = json(&["describe", "--group", g], d);
    ok(&desc);
    schema(&desc, "describe");
    assert_eq!(desc.lines[0]["state"], "Stable");
    let members = desc.lines[0]["members"].as_array().unwrap().clone();
    assert_eq!(members.len(), 1, "{}", desc.stdout);
    assert!(!members[0]["member_id"].as_str().unwrap().is_empty());
    for args in [
        vec!["reset", "--group", g, "--all-topics", "--to-earliest"],
        vec![
            "reset",
            "--group",
            g,
            "--all-topics",
            "--to-earliest",
            "--execute",
        ],
    ] {
        let run = json(&args, d);
        assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
        schema(&run, "reset");
        assert!(
            run.stderr.contains("refused") && run.stderr.contains("Empty or Dead"),
            "{}",
            run.stderr
        );
        assert!(run.summary()["refused"]
            .as_str()
            .unwrap()
            .contains("Stable"));
        assert!(parts(&run).is_empty());
    }
    std::fs::write(
        d.join("s.json"),
        format!(
            r#"{{"format":"drkit-offsets-snapshot/1","group":"{g}","bootstrap":"{}","taken_at":"2026-01-01T00:00:00.000Z","command":"reset","partitions":[{{"topic":"{t}","partition":0,"offset":1}}]}}"#,
            bootstrap()
        ),
    )
    .unwrap();
    let run = offsets(&["restore", "s.json", "--execute"], d);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    // The guarded commit asks again: the plan made while Empty is not committed now.
    let mut targets = std::collections::BTreeMap::new();
    targets.insert(tp.clone(), 0);
    let e = c.commit_checked(&planned, &targets).unwrap_err();
    assert!(
        matches!(e, GroupError::Active { ref state, .. } if state == "Stable"),
        "{e}"
    );
    assert_eq!(committed(g, t, 1), vec![Some(4)]);
    // No snapshot was written by the refused runs.
    let files: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(files, vec![std::ffi::OsString::from("s.json")]);

    drop(live);
    wait_state(g, "Empty");
    c.commit_checked(&planned, &targets).unwrap();
    assert_eq!(committed(g, t, 1), vec![Some(0)]);
}

#[test]
fn offsets_changed_since_the_plan_are_not_overwritten() {
    let (g, t) = ("g-changed", "off-changed");
    topic(t, 1, 6);
    commit(g, &[(t, 0, 4)]);
    let c = client(g);
    let tp = TopicPartition::new(t, 0);
    let planned = c.committed(std::slice::from_ref(&tp)).unwrap();
    commit(g, &[(t, 0, 5)]);
    let mut targets = std::collections::BTreeMap::new();
    targets.insert(tp, 0);
    let e = c.commit_checked(&planned, &targets).unwrap_err();
    assert!(
        matches!(
            e,
            GroupError::Changed {
                planned: Some(4),
                now: Some(5),
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(committed(g, t, 1), vec![Some(5)]);
}

#[test]
fn export_and_from_file_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let (g, t) = ("g-file", "off-file");
    topic(t, 2, 9);
    commit(g, &[(t, 0, 1), (t, 1, 2)]);
    let run = json(
        &[
            "reset",
            "--group",
            g,
            "--all-topics",
            "--to-offset",
            "6",
            "--export",
            "plan.csv",
        ],
        d,
    );
    ok(&run);
    let csv = std::fs::read_to_string(d.join("plan.csv")).unwrap();
    assert_eq!(csv, format!("{t},0,6\n{t},1,6\n"));
    assert_eq!(committed(g, t, 2), vec![Some(1), Some(2)]);
    // An existing export file is never overwritten.
    let again = json(
        &[
            "reset",
            "--group",
            g,
            "--all-topics",
            "--to-offset",
            "6",
            "--export",
            "plan.csv",
        ],
        d,
    );
    assert_eq!(again.code, 2);
    assert_eq!(std::fs::read_to_string(d.join("plan.csv")).unwrap(), csv);

    execute(g, &["--from-file", "plan.csv"], d, "a.json");
    assert_eq!(committed(g, t, 2), vec![Some(6), Some(6)]);

    // With the group column (Kafka's multi-group export): only this group's rows.
    std::fs::write(d.join("multi.csv"), format!("other,{t},0,0\n{g},{t},1,3\n")).unwrap();
    let run = execute(g, &["--from-file", "multi.csv"], d, "b.json");
    assert_eq!(plan(&run), vec![(1, Some(6), Some(3))]);
    assert_eq!(committed(g, t, 2), vec![Some(6), Some(3)]);

    // A bad row: exit 2, the line named, nothing changed.
    std::fs::write(d.join("bad.csv"), format!("{t},0,1\n{t},one,2\n")).unwrap();
    let bad = offsets(
        &["reset", "--group", g, "--from-file", "bad.csv", "--execute"],
        d,
    );
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(
        bad.stderr.contains("bad.csv: line 2: partition \"one\""),
        "{}",
        bad.stderr
    );
    // A partition the topic does not have.
    std::fs::write(d.join("ghost.csv"), format!("{t},7,1\n")).unwrap();
    let ghost = offsets(&["reset", "--group", g, "--from-file", "ghost.csv"], d);
    assert_eq!(ghost.code, 2, "{}", ghost.stderr);
    assert!(
        ghost.stderr.contains(&format!("{t}-7 does not exist")),
        "{}",
        ghost.stderr
    );
    assert_eq!(committed(g, t, 2), vec![Some(6), Some(3)]);
}

/// Base offset of each batch in a magic 2 log (independent framing: base offset at 0, length
/// at 8).
fn batch_starts(log: &Path) -> Vec<(usize, i64)> {
    let b = std::fs::read(log).unwrap();
    let mut v = Vec::new();
    let mut p = 0usize;
    while p + 12 <= b.len() {
        let base = i64::from_be_bytes(b[p..p + 8].try_into().unwrap());
        let len = i32::from_be_bytes(b[p + 8..p + 12].try_into().unwrap()) as usize;
        v.push((p, base));
        p += 12 + len;
    }
    v
}

fn damage(log: &Path, batch: usize) -> i64 {
    let (pos, base) = batch_starts(log)[batch];
    let mut b = std::fs::read(log).unwrap();
    // Inside the records, past the 61-byte batch header: only the CRC can tell.
    b[pos + 80] ^= 0x5a;
    std::fs::write(log, b).unwrap();
    base
}

#[test]
fn from_scan_moves_back_to_the_first_damaged_offset() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let (g, t) = ("g-scan", "off-scan");
    // A damaged copy of a real partition, named for partition 0 of the topic on the broker.
    let dir = d.join(format!("{t}-0"));
    copy_dir(&testdata().join("logs/plain-0"), &dir);
    let first = damage(&dir.join("00000000000000000000.log"), 1);
    let later = damage(&dir.join("00000000000000000069.log"), 1);
    assert!(first > 0 && later > first);
    let verify = drkit()
        .args(["segments", "verify", "--format", "json"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(verify.status.code(), Some(1));
    std::fs::write(d.join("report.json"), &verify.stdout).unwrap();

    topic(t, 3, 30);
    // p0 read past the damage, p1 has no damage in the report, p2 never reached... it is
    // not in the report either.
    commit(g, &[(t, 0, 30), (t, 1, 25)]);
    let dry = json(&["reset", "--group", g, "--from-scan", "report.json"], d);
    ok(&dry);
    assert_eq!(
        plan(&dry),
        vec![(0, Some(30), Some(first)), (1, Some(25), None)]
    );
    assert_eq!(note_kinds(parts(&dry)[0]), ["first_damaged"]);
    assert_eq!(parts(&dry)[0]["notes"][0]["finding"], "crc_mismatch");
    assert_eq!(note_kinds(parts(&dry)[1]), ["no_damage_in_scan"]);
    let text = ok(&offsets(
        &["reset", "--group", g, "--from-scan", "report.json"],
        d,
    ))
    .stdout
    .clone();
    assert!(
        text.contains("no lost or damaged offset in the scan"),
        "{text}"
    );

    execute(g, &["--from-scan", "report.json"], d, "s.json");
    assert_eq!(committed(g, t, 3), vec![Some(first), Some(25), None]);
    // Already at the damage: a second run leaves it.
    let again = json(&["reset", "--group", g, "--from-scan", "report.json"], d);
    ok(&again);
    assert_eq!(note_kinds(parts(&again)[0]), ["already_before_damage"]);

    // A report cut short is refused.
    let cut: String = String::from_utf8_lossy(&verify.stdout)
        .lines()
        .filter(|l| !l.contains("\"summary\""))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(d.join("cut.json"), cut).unwrap();
    let run = offsets(&["reset", "--group", g, "--from-scan", "cut.json"], d);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("no summary line"), "{}", run.stderr);
}

#[test]
fn usage_and_connection_errors_exit_2_and_secrets_stay_hidden() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let code = |args: &[&str]| {
        let out = drkit()
            .arg("offsets")
            .args(args)
            .current_dir(d)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let b = ["--bootstrap-server", "127.0.0.1:1", "--timeout", "2"];
    let (c, e) = code(&[&["reset", "--group", "g", "--to-earliest"][..], &b].concat());
    assert_eq!(c, Some(2));
    assert!(e.contains("--all-topics or --topic"), "{e}");
    let (c, _) = code(&[&["reset", "--group", "g", "--all-topics"][..], &b].concat());
    assert_eq!(c, Some(2), "a target is required");
    let (c, _) = code(
        &[
            &[
                "reset",
                "--group",
                "g",
                "--all-topics",
                "--to-earliest",
                "--to-latest",
            ][..],
            &b,
        ]
        .concat(),
    );
    assert_eq!(c, Some(2), "one target");
    let (c, e) = code(
        &[
            &[
                "reset",
                "--group",
                "g",
                "--all-topics",
                "--to-datetime",
                "yesterday",
            ][..],
            &b,
        ]
        .concat(),
    );
    assert_eq!(c, Some(2));
    assert!(e.contains("ISO 8601"), "{e}");
    let (c, e) = code(
        &[
            &[
                "reset",
                "--group",
                "g",
                "--all-topics",
                "--by-duration",
                "-PT1H",
            ][..],
            &b,
        ]
        .concat(),
    );
    assert_eq!(c, Some(2));
    assert!(e.contains("positive"), "{e}");
    std::fs::write(d.join("taken.json"), "x").unwrap();
    let (c, e) = code(
        &[
            &[
                "reset",
                "--group",
                "g",
                "--all-topics",
                "--to-earliest",
                "--snapshot",
                "taken.json",
            ][..],
            &b,
        ]
        .concat(),
    );
    assert_eq!(c, Some(2));
    assert!(e.contains("never overwritten"), "{e}");
    assert_eq!(std::fs::read_to_string(d.join("taken.json")).unwrap(), "x");
    let (c, e) = code(&[&["restore", "taken.json"][..], &b].concat());
    assert_eq!(c, Some(2));
    assert!(e.contains("not a snapshot"), "{e}");
    // No broker there: a connection error, not a refusal.
    let (c, e) = code(&[&["describe", "--group", "g"][..], &b].concat());
    assert_eq!(c, Some(2), "{e}");
    // An invalid value for a secret setting: librdkafka's error would echo it.
    let (c, e) = code(
        &[
            &[
                "describe",
                "--group",
                "g",
                "-X",
                "sasl.password=hunter2",
                "-X",
                "bogus.setting=1",
            ][..],
            &b,
        ]
        .concat(),
    );
    assert_eq!(c, Some(2), "{e}");
    assert!(!e.contains("hunter2"), "{e}");
}
