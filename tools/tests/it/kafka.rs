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
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let r = rt().block_on(admin.create_topics(
        &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
        &AdminOptions::new(),
    ));
    assert!(r.unwrap().iter().all(|r| r.is_ok()), "create topic {topic}");
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "0")
        // One record per produce request: Tansu's watermarks are right only then.
        .set("batch.num.messages", "1")
        .set("max.in.flight.requests.per.connection", "1")
        .create()
        .unwrap();
    let mut next = vec![0i64; partitions as usize];
    let mut expected = vec![];
    for (i, v) in values.iter().enumerate() {
        let p = (i as i32) % partitions;
        producer
            .send(BaseRecord::<(), [u8]>::to(topic).payload(v).partition(p))
            .map_err(|(e, _)| e)
            .unwrap();
        let j: Value = serde_json::from_slice(v).unwrap();
        expected.push((
            p as i64,
            next[p as usize],
            j["eventId"].as_str().unwrap().to_string(),
        ));
        next[p as usize] += 1;
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    expected.sort();
    expected
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
    let tmp = tempfile::tempdir().unwrap();
    let mapping = tmp.path().join("m.toml");
    std::fs::write(&mapping, MAPPING).unwrap();
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
    let tmp = tempfile::tempdir().unwrap();
    let mapping = tmp.path().join("m.toml");
    std::fs::write(&mapping, MAPPING).unwrap();
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
    let tmp = tempfile::tempdir().unwrap();
    let mapping = tmp.path().join("m.toml");
    std::fs::write(&mapping, MAPPING).unwrap();
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
