//! `drkit replay --kafka` against real services: a Tansu broker (scripts/tansu.sh) and
//! PostgreSQL. Telemetry is produced one record per produce request (Tansu's watermarks are only
//! right that way, see ../shared/docs/test-services.md), and the table must equal what was
//! produced — per (partition, offset), once — after a run, a rerun, and a consumer-group run with
//! one of two workers SIGKILLed.

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use serde_json::Value;

use crate::util::drkit;

use crate::replay::support;
use support::{client, rt};

const MAPPING: &str = r#"
table = "tel"
columns = [
  { name = "kafka_partition", type = "int8",        from = "partition" },
  { name = "kafka_offset",    type = "int8",        from = "offset" },
  { name = "event_id",        type = "uuid",        from = "/eventId" },
  { name = "asset_id",        type = "uuid",        from = "/assetId" },
  { name = "ts",              type = "timestamptz", from = "/timestamp" },
]
"#;

/// `n` MS5 telemetry events (variant A: one sparse metric per event), distinct event ids.
fn ms5_values(n: usize) -> Vec<Vec<u8>> {
    let metrics = ["temperature", "pressure", "vibration", "speed"];
    (0..n)
        .map(|i| {
            let mut data = serde_json::Map::new();
            data.insert(metrics[i % 4].into(), Value::from(20.0 + (i % 97) as f64 / 4.0));
            data.insert("quality".into(), Value::from("GOOD"));
            let e = serde_json::json!({
                "eventId": format!("00000000-0000-4000-8000-{i:012}"),
                "assetId": format!("10000000-0000-4000-8000-{:012}", i % 7),
                "timestamp": format!("2026-01-15T08:{:02}:{:02}.{:03}Z", (i / 60) % 60, i % 60, i % 1000),
                "data": data,
                "metadata": {"source": "edge-gw-1"},
            });
            serde_json::to_vec(&e).unwrap()
        })
        .collect()
}

fn query_rows(url: &str, sql: &str) -> Vec<tokio_postgres::Row> {
    rt().block_on(async { client(url).await.query(sql, &[]).await.unwrap() })
}

/// A new topic with `partitions` partitions holding `values`, round robin; returns what each
/// (partition, offset) holds, as (partition, offset, event id), sorted.
fn produce(topic: &str, partitions: i32, values: &[Vec<u8>]) -> Vec<(i64, i64, String)> {
    let bootstrap = support::kafka_bootstrap();
    create_topic(bootstrap, topic, partitions);
    let stamped: Vec<(Vec<u8>, Option<i64>)> = values.iter().map(|v| (v.clone(), None)).collect();
    send(
        bootstrap,
        topic,
        &stamped,
        &mut vec![0; partitions as usize],
    )
}

fn create_topic(bootstrap: &str, topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let r = rt().block_on(admin.create_topics(
        &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
        &AdminOptions::new(),
    ));
    assert!(r.unwrap().iter().all(|r| r.is_ok()), "create topic {topic}");
}

/// Sends `values` round robin over the partitions whose next offsets `next` holds (updated),
/// each with its CreateTime when one is given (else the producer's clock); returns what each
/// (partition, offset) holds, as (partition, offset, event id), sorted.
fn send(
    bootstrap: &str,
    topic: &str,
    values: &[(Vec<u8>, Option<i64>)],
    next: &mut [i64],
) -> Vec<(i64, i64, String)> {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "0")
        // One record per produce request: Tansu's watermarks are right only then.
        .set("batch.num.messages", "1")
        .set("max.in.flight.requests.per.connection", "1")
        .create()
        .unwrap();
    let partitions = next.len();
    let mut expected = vec![];
    for (i, (v, ts)) in values.iter().enumerate() {
        let p = i % partitions;
        let mut record = BaseRecord::<(), [u8]>::to(topic)
            .payload(v)
            .partition(p as i32);
        if let Some(ts) = ts {
            record = record.timestamp(*ts);
        }
        producer.send(record).map_err(|(e, _)| e).unwrap();
        let j: Value = serde_json::from_slice(v).unwrap();
        expected.push((
            p as i64,
            next[p],
            j["eventId"].as_str().unwrap().to_string(),
        ));
        next[p] += 1;
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    expected.sort();
    expected
}

/// A temporary directory holding the test mapping (kept alive by the caller).
fn mapping_file() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let mapping = tmp.path().join("m.toml");
    std::fs::write(&mapping, MAPPING).unwrap();
    (tmp, mapping)
}

fn table(url: &str) -> Vec<(i64, i64, String)> {
    query_rows(
        url,
        "SELECT kafka_partition, kafka_offset, event_id::text FROM tel \
         ORDER BY kafka_partition, kafka_offset",
    )
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect()
}

fn replay_cmd(url: &str, mapping: &Path, topic: &str, extra: &[&str]) -> std::process::Command {
    let mut c = drkit();
    c.args(["replay", "--format", "json", "--db", url])
        .args(["--kafka", support::kafka_bootstrap(), "--topic", topic])
        .arg("--mapping")
        .arg(mapping)
        .args(extra);
    c
}

fn summary(out: &std::process::Output) -> Value {
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(s.lines().last().unwrap_or("")).unwrap()
}

#[test]
fn kafka_topic_replays_exactly_and_rerun_adds_nothing() {
    let (_tmp, mapping) = mapping_file();
    let expected = produce("kafka-exact", 3, &ms5_values(300));
    let url = support::fresh_db("kafka_exact");

    let first = summary(
        &replay_cmd(&url, &mapping, "kafka-exact", &["--create-table"])
            .output()
            .unwrap(),
    );
    assert_eq!(first["rows"], 300, "{first}");
    assert_eq!(table(&url), expected);
    let progress: Vec<(i32, i64)> = query_rows(
        &url,
        "SELECT partition, next_offset FROM drkit_replay_progress WHERE source = 'kafka' ORDER BY 1",
    )
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect();
    assert_eq!(progress, vec![(0, 100), (1, 100), (2, 100)]);

    // A rerun (here as a group member) starts at the stored offsets: nothing new.
    let again = summary(
        &replay_cmd(
            &url,
            &mapping,
            "kafka-exact",
            &[
                "--group",
                "g-exact",
                "-X",
                "max.poll.interval.ms=10000",
                "-X",
                "session.timeout.ms=6000",
            ],
        )
        .output()
        .unwrap(),
    );
    assert_eq!(again["rows"], 0, "{again}");
    assert_eq!(table(&url), expected);

    // Explicit partitions and a start offset, into a second progress stream.
    let url2 = support::fresh_db("kafka_parts");
    let part = summary(
        &replay_cmd(
            &url2,
            &mapping,
            "kafka-exact",
            &["--create-table", "--partitions", "1", "--start", "40"],
        )
        .output()
        .unwrap(),
    );
    assert_eq!(part["rows"], 60, "{part}");
    let want: Vec<_> = expected
        .iter()
        .filter(|(p, o, _)| *p == 1 && *o >= 40)
        .cloned()
        .collect();
    assert_eq!(table(&url2), want);
}

#[test]
fn kafka_settings_secrets_are_never_printed() {
    let (_tmp, mapping) = mapping_file();
    let url = support::fresh_db("kafka_secret");
    // An invalid value for a secret setting: librdkafka's error would echo it.
    let out = replay_cmd(
        &url,
        &mapping,
        "no-such-topic",
        &[
            "-X",
            "sasl.password=hunter2",
            "-X",
            "ssl.key.password=s3cr3t",
            "-X",
            "bogus.setting=1",
        ],
    )
    .output()
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        !text.contains("hunter2") && !text.contains("s3cr3t"),
        "{text}"
    );
}

fn spawn_worker(url: &str, mapping: &Path, topic: &str) -> Child {
    replay_cmd(
        url,
        mapping,
        topic,
        &[
            "--group",
            "g-crash",
            "--batch-rows",
            "5",
            "-X",
            "max.poll.interval.ms=10000",
            "-X",
            "session.timeout.ms=6000",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap()
}

#[test]
fn two_group_workers_one_killed_table_equals_the_topic() {
    let (_tmp, mapping) = mapping_file();
    let n = 3000;
    let expected = produce("kafka-crash", 3, &ms5_values(n));
    let url = support::fresh_db("kafka_crash");
    // The table first, so both workers start on equal terms.
    let made = summary(
        &replay_cmd(
            &url,
            &mapping,
            "kafka-crash",
            &["--create-table", "--partitions", "0", "--start", "latest"],
        )
        .output()
        .unwrap(),
    );
    assert_eq!(made["rows"], 0);
    let count = || -> i64 { query_rows(&url, "SELECT count(*) FROM tel")[0].get(0) };
    let wait_for = |rows: i64, what: &str| {
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            let c = count();
            if c >= rows {
                return c;
            }
            assert!(Instant::now() < deadline, "{what}: {c} rows after 40 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    // `a` alone owns every partition; once it has committed rows, `b` joins (a rebalance: `a`
    // commits what it read, gives partitions up, and both start from the database).
    let mut a = spawn_worker(&url, &mapping, "kafka-crash");
    let a_alone = wait_for(1, "first worker");
    let b = spawn_worker(&url, &mapping, "kafka-crash");
    // Kill `a` mid-run (SIGKILL on Unix): its uncommitted transaction is lost, and its
    // partitions go to `b` when its session times out.
    let at_kill = wait_for((n as i64) / 2, "both workers");
    a.kill().unwrap();
    a.wait().unwrap();
    eprintln!("first worker alone at {a_alone} rows, killed at {at_kill} of {n}");
    assert!(at_kill < n as i64, "killed after the end");
    let out = b.wait_with_output().unwrap();
    let s = summary(&out);
    eprintln!("survivor: {s}");
    // The survivor finished the topic, but did not write it all: the killed worker had.
    let by_b = s["rows"].as_i64().unwrap();
    assert!(by_b > 0 && by_b < n as i64, "{s}");
    let got = table(&url);
    assert_eq!(got.len(), expected.len(), "duplicates or holes");
    assert_eq!(got, expected);
}

/// CreateTime of the i-th record in the time tests: 2026-01-15T08:00:00Z plus i seconds.
const BASE_MS: i64 = 1_768_464_000_000;

/// `values` stamped `BASE_MS + i s` (explicit CreateTime, distinct and increasing), but for the
/// given indexes, stamped at the given seconds instead (late records).
fn stamped(values: Vec<Vec<u8>>, late: &[(usize, i64)]) -> Vec<(Vec<u8>, Option<i64>)> {
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let secs = late
                .iter()
                .find(|(j, _)| *j == i)
                .map_or(i as i64, |(_, s)| *s);
            (v, Some(BASE_MS + secs * 1000))
        })
        .collect()
}

/// Waits for `child`; a process still running after `secs` is killed and the test fails. A hang
/// detector (the runs here finish in seconds), not a timing assertion.
fn wait_or_kill(mut child: Child, secs: u64, what: &str) -> std::process::Output {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{what}: still running after {secs} s (killed); stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn spawn(mut c: std::process::Command) -> Child {
    c.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Polls the row count of `tel` until it is `rows`; fails after `secs` (a hang detector).
fn wait_rows(url: &str, rows: i64, secs: u64, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let exists: bool = query_rows(url, "SELECT to_regclass('tel') IS NOT NULL")[0].get(0);
        let c: i64 = if exists {
            query_rows(url, "SELECT count(*) FROM tel")[0].get(0)
        } else {
            0
        };
        if c == rows {
            return;
        }
        assert!(c < rows, "{what}: {c} rows, more than {rows}");
        assert!(
            Instant::now() < deadline,
            "{what}: {c} of {rows} rows after {secs} s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn progress(url: &str) -> Vec<(i32, i64)> {
    query_rows(
        url,
        "SELECT partition, next_offset FROM drkit_replay_progress ORDER BY 1",
    )
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

fn signal(child: &Child, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig}");
}

/// `--start TIME` begins each partition at its first record stamped at or after the time, as
/// Kafka's time index defines it: a record stamped earlier that comes after that point (a late
/// arrival) is replayed too, and records in front of it are not. Tansu's memory engine answers
/// time lookups by write time, and 0 when nothing matches (../shared/docs/test-services.md):
/// both are lower bounds of the true offset, from which drkit passes over records stamped
/// before the time. So this test holds against Apache Kafka and Tansu alike, and fails if
/// either the lookup or the passing-over is wrong.
#[test]
fn kafka_start_time_begins_at_the_first_record_stamped_at_or_after_it() {
    let (_tmp, mapping) = mapping_file();
    // Record i goes to partition i % 2 at offset i / 2, stamped i s after BASE_MS; record 32
    // (partition 0, offset 16) arrives late, stamped at 3 s.
    let expected = produce_stamped("kafka-start-time", 2, stamped(ms5_values(40), &[(32, 3)]));
    let run = |name: &str, start: &str| -> (String, Value) {
        let url = support::fresh_db(name);
        let out = replay_cmd(
            &url,
            &mapping,
            "kafka-start-time",
            &["--create-table", "--start", start],
        )
        .output()
        .unwrap();
        (url, summary(&out))
    };
    let from = |p0: i64, p1: i64| -> Vec<(i64, i64, String)> {
        expected
            .iter()
            .filter(|(p, o, _)| *o >= if *p == 0 { p0 } else { p1 })
            .cloned()
            .collect()
    };

    // Exactly at record 20 (partition 0, offset 10); partition 1 starts at record 21.
    let (url, s) = run("kafka_start_rfc", "2026-01-15T08:00:20Z");
    assert_eq!(s["rows"], 20, "{s}");
    assert_eq!(table(&url), from(10, 10));
    assert!(table(&url).contains(&expected[16]), "the late record");

    // Epoch ms between records 20 and 21: partition 0 starts at record 22 (offset 11),
    // partition 1 at record 21 (offset 10).
    let (url, s) = run("kafka_start_ms", &(BASE_MS + 20_500).to_string());
    assert_eq!(s["rows"], 19, "{s}");
    assert_eq!(table(&url), from(11, 10));

    // After the last record: nothing, and a clean exit.
    let (url, s) = run("kafka_start_after", "2026-01-15T09:00:00Z");
    assert_eq!(s["rows"], 0, "{s}");
    assert_eq!(table(&url), vec![]);
}

/// A new topic holding `values` with their CreateTime stamps, round robin.
fn produce_stamped(
    topic: &str,
    partitions: i32,
    values: Vec<(Vec<u8>, Option<i64>)>,
) -> Vec<(i64, i64, String)> {
    let bootstrap = support::kafka_bootstrap();
    create_topic(bootstrap, topic, partitions);
    send(bootstrap, topic, &values, &mut vec![0; partitions as usize])
}

/// `--until` ends each partition at its first record stamped at or after it, and the run stops
/// once every partition has — with `--follow` too, where that is the only way out. A partition
/// with no record past the end is finished, under `--follow`, when the clock has passed
/// `--until` and the broker says it is at its end.
#[test]
fn kafka_until_stops_with_and_without_follow() {
    let (_tmp, mapping) = mapping_file();
    let expected = produce_stamped("kafka-until", 2, stamped(ms5_values(40), &[]));
    // Records 0..25 are before the end: partition 0 offsets 0..=12, partition 1 offsets 0..=11.
    let before: Vec<_> = expected
        .iter()
        .filter(|(p, o, _)| 2 * o + p < 25)
        .cloned()
        .collect();
    assert_eq!(before.len(), 25);
    let group = [
        "--group",
        "g-until",
        "-X",
        "max.poll.interval.ms=10000",
        "-X",
        "session.timeout.ms=6000",
    ];
    for (name, extra) in [
        ("kafka_until", &[][..]),
        ("kafka_until_follow", &["--follow"][..]),
        // A group member cannot see where others stopped: it must not wait for the
        // partitions' high watermarks, which `--until` keeps it from reaching.
        ("kafka_until_group", &group[..]),
    ] {
        let url = support::fresh_db(name);
        let mut args = vec!["--create-table", "--until", "2026-01-15T08:00:25Z"];
        args.extend_from_slice(extra);
        let child = spawn(replay_cmd(&url, &mapping, "kafka-until", &args));
        let s = summary(&wait_or_kill(child, 60, name));
        assert_eq!(s["rows"], 25, "{name}: {s}");
        assert_eq!(table(&url), before, "{name}");
        // The first record at or after the end is not consumed: a later run starts with it.
        assert_eq!(progress(&url), vec![(0, 13), (1, 12)], "{name}");
    }

    // Every record is before the end, which is a few seconds from now: `--follow` reads them
    // all, waits at the end, and stops once the clock passes `--until`.
    let all = produce_stamped("kafka-until-quiet", 2, stamped(ms5_values(10), &[]));
    let until = (chrono::Utc::now() + chrono::TimeDelta::seconds(3)).to_rfc3339();
    let url = support::fresh_db("kafka_until_quiet");
    let child = spawn(replay_cmd(
        &url,
        &mapping,
        "kafka-until-quiet",
        &["--create-table", "--follow", "--until", &until],
    ));
    let s = summary(&wait_or_kill(
        child,
        60,
        "follow until a time in the future",
    ));
    assert_eq!(s["rows"], 10, "{s}");
    assert_eq!(table(&url), all);
}

/// `--follow` takes records produced while it runs, commits them while the topic is quiet, and
/// the first SIGTERM or SIGINT ends it cleanly: last transaction committed, summary, exit 0.
/// Nothing is read twice: a later run adds nothing.
#[test]
fn kafka_follow_takes_later_records_and_stops_cleanly_on_a_signal() {
    let (_tmp, mapping) = mapping_file();
    let bootstrap = support::kafka_bootstrap();
    let topic = "kafka-follow";
    create_topic(bootstrap, topic, 2);
    let values = ms5_values(60);
    let plain = |r: std::ops::Range<usize>| -> Vec<(Vec<u8>, Option<i64>)> {
        values[r].iter().map(|v| (v.clone(), None)).collect()
    };
    let mut next = vec![0i64; 2];
    let mut expected = send(bootstrap, topic, &plain(0..20), &mut next);
    let url = support::fresh_db("kafka_follow");

    let child = spawn(replay_cmd(
        &url,
        &mapping,
        topic,
        &["--create-table", "--follow"],
    ));
    wait_rows(&url, 20, 60, "first batch, before any signal");
    expected.extend(send(bootstrap, topic, &plain(20..50), &mut next));
    expected.sort();
    wait_rows(&url, 50, 60, "records produced while following");
    signal(&child, "-TERM");
    let s = summary(&wait_or_kill(child, 60, "follow after SIGTERM"));
    assert_eq!(s["rows"], 50, "{s}");
    assert_eq!(table(&url), expected);

    // A second follower continues from the database; SIGINT ends it the same way.
    let child = spawn(replay_cmd(&url, &mapping, topic, &["--follow"]));
    expected.extend(send(bootstrap, topic, &plain(50..60), &mut next));
    expected.sort();
    wait_rows(&url, 60, 60, "second follower");
    signal(&child, "-INT");
    let s = summary(&wait_or_kill(child, 60, "follow after SIGINT"));
    assert_eq!(s["rows"], 10, "{s}");
    assert_eq!(table(&url), expected);
    assert_eq!(progress(&url), vec![(0, 30), (1, 30)]);

    let again = summary(&replay_cmd(&url, &mapping, topic, &[]).output().unwrap());
    assert_eq!(again["rows"], 0, "{again}");
    assert_eq!(table(&url), expected);
}

/// A bootstrap address where nothing listens: the run gives up after `--stall-timeout` with
/// exit 2 and a message naming the address, instead of retrying forever.
#[test]
fn kafka_unreachable_broker_stops_after_the_stall_timeout() {
    let (_tmp, mapping) = mapping_file();
    // A loopback port that was free a moment ago and is closed now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bootstrap = format!("127.0.0.1:{port}");
    let url = support::fresh_db("kafka_unreachable");
    let mut c = drkit();
    c.args(["replay", "--db", &url, "--kafka", &bootstrap])
        .args(["--topic", "t", "--follow", "--stall-timeout", "3s"])
        .arg("--create-table")
        .arg("--mapping")
        .arg(&mapping);
    let out = wait_or_kill(spawn(c), 60, "unreachable broker");
    let err = String::from_utf8_lossy(&out.stderr);
    eprintln!("{err}");
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&bootstrap) && err.contains("--stall-timeout"),
        "{err}"
    );
}

/// A Tansu of one test's own (never the shared one, which other tests use), stopped when
/// dropped — continued first, should the test have SIGSTOPped it and failed before SIGCONT.
struct OwnBroker {
    dir: std::path::PathBuf,
    bootstrap: String,
    pid: u32,
}

impl OwnBroker {
    fn start(dir: &Path) -> OwnBroker {
        let started = std::process::Command::new(crate::util::repo_root().join("scripts/tansu.sh"))
            .env("TANSU_OWNER_PID", std::process::id().to_string())
            .arg("start")
            .arg(dir)
            .output()
            .unwrap();
        assert!(
            started.status.success(),
            "{}",
            String::from_utf8_lossy(&started.stderr)
        );
        let pid = std::fs::read_to_string(dir.join("pid")).unwrap();
        OwnBroker {
            dir: dir.to_path_buf(),
            bootstrap: String::from_utf8(started.stdout)
                .unwrap()
                .trim()
                .to_string(),
            pid: pid.trim().parse().unwrap(),
        }
    }

    fn signal(&self, sig: &str) {
        let ok = std::process::Command::new("kill")
            .args([sig, &self.pid.to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill {sig} {}", self.pid);
    }

    fn stop(&self) {
        // Quiet: after an earlier stop the process is gone.
        let _ = std::process::Command::new("kill")
            .args(["-CONT", &self.pid.to_string()])
            .stderr(Stdio::null())
            .status();
        let _ = std::process::Command::new(crate::util::repo_root().join("scripts/tansu.sh"))
            .arg("stop")
            .arg(&self.dir)
            .status();
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A broker of the test's own with a two-partition topic of `n` MS5 events, the test mapping
/// and a fresh database: what the broker-failure tests start from.
struct OwnTopic {
    // Field order is drop order: the broker stops before its directory goes.
    broker: OwnBroker,
    mapping: std::path::PathBuf,
    url: String,
    expected: Vec<(i64, i64, String)>,
    _tmp: tempfile::TempDir,
}

impl OwnTopic {
    fn new(topic: &str, n: usize) -> OwnTopic {
        let (tmp, mapping) = mapping_file();
        let broker = OwnBroker::start(&tmp.path().join("tansu"));
        create_topic(&broker.bootstrap, topic, 2);
        let plain: Vec<_> = ms5_values(n).into_iter().map(|v| (v, None)).collect();
        let expected = send(&broker.bootstrap, topic, &plain, &mut [0, 0]);
        OwnTopic {
            broker,
            mapping,
            url: support::fresh_db(&format!("kafka_{topic}")),
            expected,
            _tmp: tmp,
        }
    }
}

/// `drkit replay --kafka BOOTSTRAP --topic T --stall-timeout 3s` with the test mapping.
fn stall_cmd(url: &str, mapping: &Path, bootstrap: &str, topic: &str, extra: &[&str]) -> Child {
    let mut c = drkit();
    c.args([
        "replay", "--format", "json", "--db", url, "--kafka", bootstrap,
    ])
    .args(["--topic", topic, "--stall-timeout", "3s", "--create-table"])
    .arg("--mapping")
    .arg(mapping)
    .args(extra);
    spawn(c)
}

/// The stderr of a run that must stop with exit 2 naming `what` (within 60 s: a hang detector).
fn stalled(child: Child, what: &[&str]) -> String {
    let out = wait_or_kill(child, 60, "stalled broker");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    eprintln!("{err}");
    assert_eq!(out.status.code(), Some(2), "{err}");
    for w in what {
        assert!(err.contains(w), "{w:?} not in: {err}");
    }
    err
}

/// A broker that dies under a `--follow` run: the run notices within the stall timeout, exits 2
/// naming the broker and the offsets reached, and the database holds exactly what was read,
/// with the progress that resumes it.
#[test]
fn kafka_broker_gone_mid_follow_stops_with_everything_committed() {
    let f = OwnTopic::new("gone", 30);
    let (broker, bootstrap, mapping, url) = (&f.broker, &f.broker.bootstrap, &f.mapping, &f.url);
    let expected = &f.expected;
    let child = stall_cmd(url, mapping, bootstrap, "gone", &["--follow"]);
    wait_rows(url, 30, 60, "before the broker goes");
    broker.stop();
    stalled(child, &[bootstrap, "0:15 1:15"]);
    assert_eq!(&table(url), expected);
    assert_eq!(progress(url), vec![(0, 15), (1, 15)]);
}

/// A broker that hangs (SIGSTOP: connections stay open, nothing is answered), unlike a closed
/// port, which fails fast: a following run and a new run both stop within the stall timeout,
/// with exit 2 and the broker named; the follower's rows and progress are committed.
#[test]
fn kafka_hung_broker_stops_runs_after_the_stall_timeout() {
    let f = OwnTopic::new("hung", 20);
    let (broker, bootstrap, mapping, url) = (&f.broker, &f.broker.bootstrap, &f.mapping, &f.url);
    let expected = &f.expected;
    let follower = stall_cmd(url, mapping, bootstrap, "hung", &["--follow"]);
    wait_rows(url, 20, 60, "before the broker hangs");
    broker.signal("-STOP");
    let url2 = support::fresh_db("kafka_hung_new");
    let newcomer = stall_cmd(&url2, mapping, bootstrap, "hung", &[]);
    let follower_err = stalled(follower, &[bootstrap, "0:10 1:10"]);
    let newcomer_err = stalled(newcomer, &[bootstrap, "--stall-timeout"]);
    broker.stop();
    assert!(follower_err.contains("stalled"), "{follower_err}");
    assert!(
        newcomer_err.contains("hung"),
        "names the topic: {newcomer_err}"
    );
    assert_eq!(&table(url), expected);
    assert_eq!(progress(url), vec![(0, 10), (1, 10)]);
    assert_eq!(table(&url2), vec![]);
}
