//! `drkit topics describe` against a real Tansu broker, and the admin client's handling of a
//! request Tansu does not implement (it closes the connection: a clear error, not a hang).
//! Records are produced one per request (Tansu's watermarks are only right that way).

use std::time::Duration;

use kafka_admin::client::{Admin, ClientConfig, ClientError, Connection};
use kafka_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use kafka_protocol::messages::{AlterPartitionReassignmentsRequest, BrokerId, TopicName};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig as RdConfig;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use serde_json::Value;

use crate::replay::support::{self, rt};
use crate::util::drkit;

/// A new topic whose partition `i` holds `counts[i]` records.
fn topic_with(topic: &str, counts: &[usize]) {
    let bootstrap = support::kafka_bootstrap();
    let admin: AdminClient<DefaultClientContext> = RdConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let r = rt().block_on(admin.create_topics(
        &[NewTopic::new(
            topic,
            counts.len() as i32,
            TopicReplication::Fixed(1),
        )],
        &AdminOptions::new(),
    ));
    assert!(r.unwrap().iter().all(|r| r.is_ok()), "create topic {topic}");
    let producer: ThreadedProducer<DefaultProducerContext> = RdConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "0")
        .set("batch.num.messages", "1")
        .set("max.in.flight.requests.per.connection", "1")
        .create()
        .unwrap();
    for (p, &n) in counts.iter().enumerate() {
        for i in 0..n {
            producer
                .send(
                    BaseRecord::<(), [u8]>::to(topic)
                        .payload(format!("r{i}").as_bytes())
                        .partition(p as i32),
                )
                .map_err(|(e, _)| e)
                .unwrap();
        }
    }
    producer.flush(Duration::from_secs(30)).unwrap();
}

fn json_lines(out: &std::process::Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn describe_shows_leaders_replicas_and_log_ranges_from_tansu() {
    let topic = format!("topics-describe-{}", std::process::id());
    let topic = topic.as_str();
    topic_with(topic, &[5, 3, 0]);
    let out = drkit()
        .args(["topics", "describe", "--format", "json"])
        .args(["--bootstrap-server", support::kafka_bootstrap()])
        .args(["--topic", topic])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 4, "{lines:?}");
    for (i, want_end) in [5, 3, 0].into_iter().enumerate() {
        let p = &lines[i];
        assert_eq!(p["type"], "partition");
        assert_eq!(p["topic"], topic);
        assert_eq!(p["partition"], i);
        assert_eq!(p["replicas"].as_array().unwrap().len(), 1, "{p}");
        assert_eq!(p["leader"], p["replicas"][0], "{p}");
        assert_eq!(p["isr"], p["replicas"], "{p}");
        assert_eq!(p["offline"], serde_json::json!([]));
        assert_eq!(p["log_start"], 0, "{p}");
        assert_eq!(p["log_end"], want_end, "{p}");
        assert_eq!(p["under_replicated"], false);
        assert_eq!(p["unavailable"], false);
        assert_eq!(p["error"], Value::Null);
    }
    let s = &lines[3];
    assert_eq!(
        (
            s["type"].as_str(),
            s["partitions"].as_u64(),
            s["shown"].as_u64()
        ),
        (Some("summary"), Some(3), Some(3))
    );

    // The filters: nothing here is under-replicated or leaderless.
    let out = drkit()
        .args(["topics", "describe", "--under-replicated", "--unavailable"])
        .args(["--bootstrap-server", support::kafka_bootstrap()])
        .args(["--topic", topic, "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["shown"], 0);

    let out = drkit()
        .args(["topics", "describe"])
        .args(["--bootstrap-server", support::kafka_bootstrap()])
        .args(["--topic", topic])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("TOPIC"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with(topic) && l.split_whitespace().nth(7) == Some("5")),
        "{text}"
    );
}

#[test]
fn describe_of_a_missing_topic_names_it() {
    let out = drkit()
        .args(["topics", "describe", "--topic", "no-such-topic-here"])
        .args(["--bootstrap-server", support::kafka_bootstrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no-such-topic-here"), "{stderr}");
    assert!(stderr.contains("UnknownTopicOrPartition"), "{stderr}");
}

/// TLS towards Tansu's plaintext listener: a TLS error (or the handshake's timeout, if a broker
/// waits for the rest of the "request" our ClientHello looks like), never a silent plaintext
/// connection.
#[test]
fn ssl_against_a_plaintext_listener_is_a_tls_error() {
    let ca = crate::reassign_exec::fake_broker::tls_fixture("ca.pem");
    let out = drkit()
        .args(["topics", "describe", "-X", "security.protocol=SSL"])
        .arg("-X")
        .arg(format!("ssl.ca.location={}", ca.display()))
        .args(["-X", "request.timeout.ms=5000"])
        .args(["--bootstrap-server", support::kafka_bootstrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("TLS handshake"), "{stderr}");
    assert!(out.stdout.is_empty());
}

/// SASL_SSL with SCRAM-SHA-512, as MS5's brokers are set up, through the binary, against the
/// protocol fake (no TLS/SASL-capable broker runs here).
#[test]
fn describe_over_sasl_ssl_with_scram_against_the_protocol_fake() {
    use crate::reassign_exec::fake_broker::fake_sasl::{FakeMechanism, FakeSasl};
    use crate::reassign_exec::fake_broker::{
        tls_fixture, FakeCluster, FakePartition, FakeState, FakeTls,
    };
    let mut st = FakeState::cluster(&[1, 2]).topic("s", vec![FakePartition::healthy(&[1, 2])]);
    st.sasl = Some(FakeSasl::new(FakeMechanism::Sha512, "ops", "s3cr3t-pw"));
    let fake = FakeCluster::start_tls(
        st,
        FakeTls {
            host: "localhost",
            client_auth: false,
        },
    );
    let ca = format!("ssl.ca.location={}", tls_fixture("ca.pem").display());
    let describe = |password: &str| {
        drkit()
            .args(["topics", "describe", "--format", "json"])
            .args(["--bootstrap-server", &fake.addr])
            .args(["-X", "security.protocol=SASL_SSL", "-X", &ca])
            .args([
                "-X",
                "sasl.mechanism=SCRAM-SHA-512",
                "-X",
                "sasl.username=ops",
            ])
            .arg("-X")
            .arg(format!("sasl.password={password}"))
            .args(["-X", "ssl.cipher.suites=ECDHE"])
            .output()
            .unwrap()
    };
    let out = describe("s3cr3t-pw");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let l = json_lines(&out);
    assert_eq!(l[0]["topic"], "s");
    assert_eq!(l[0]["replicas"], serde_json::json!([1, 2]));
    assert!(
        stderr.contains("-X ssl.cipher.suites is not used by the admin client"),
        "{stderr}"
    );

    let out = describe("wrong-pw-42");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    // The mechanism is named by the library (kafka-admin's security_fake tests), but tools
    // scrubs every sasl.* value from messages (replay::kafka::is_secret), the mechanism too.
    assert!(stderr.contains("authentication failed"), "{stderr}");
    assert!(
        stderr.contains("error 58 SaslAuthenticationFailed"),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stderr.contains("wrong-pw-42") && !stdout.contains("wrong-pw-42"));
}

/// Tansu does not offer AlterPartitionReassignments: the client says so before sending, and when
/// made to send it anyway, Tansu closes the connection and the client reports that, promptly (a
/// hang would end as a Timeout error, which this rejects).
#[test]
fn an_unimplemented_request_is_a_clear_error_against_tansu() {
    let topic = format!("topics-unimplemented-{}", std::process::id());
    topic_with(&topic, &[1]);
    let settings = replay::kafka::Settings(vec![("request.timeout.ms".into(), "20000".into())]);
    let (cfg, _) = ClientConfig::new(support::kafka_bootstrap(), &settings).unwrap();
    let mut admin = Admin::connect(cfg.clone()).unwrap();
    let req = AlterPartitionReassignmentsRequest::default().with_topics(vec![
        ReassignableTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic)))
            .with_partitions(vec![ReassignablePartition::default()
                .with_partition_index(0)
                .with_replicas(Some(vec![BrokerId(111)]))]),
    ]);
    let e = admin.send_controller(&req).unwrap_err();
    assert!(
        matches!(&e, ClientError::Unsupported { api, .. } if api == "AlterPartitionReassignments"),
        "{e}"
    );
    assert!(e.to_string().contains(support::kafka_bootstrap()), "{e}");

    let mut conn = Connection::open(support::kafka_bootstrap(), &cfg).unwrap();
    let e = conn.send_at(&req, 0).unwrap_err();
    assert!(
        matches!(&e, ClientError::Closed { api, version: 0, .. } if api == "AlterPartitionReassignments"),
        "{e}"
    );
    assert!(e.to_string().contains("closed the connection"), "{e}");
    // The admin client goes on working (the failed connection is not reused).
    assert!(admin.metadata(None).is_ok());
}

/// Offline replicas and leaderless partitions, which a single Tansu node cannot produce, from the
/// protocol fake (kafka-admin/tests/support/fake_broker.rs).
#[test]
fn describe_flags_damaged_partitions_from_the_protocol_fake() {
    use crate::reassign_exec::fake_broker::{FakeCluster, FakePartition, FakeState};
    let fake = FakeCluster::start(FakeState::cluster(&[1, 2, 3]).topic(
        "u",
        vec![
            FakePartition {
                log_start: 5,
                log_end: 42,
                ..FakePartition::healthy(&[1, 2, 3])
            },
            FakePartition {
                isr: vec![1],
                offline: vec![2],
                ..FakePartition::healthy(&[1, 2, 3])
            },
            FakePartition {
                leader: -1,
                isr: vec![],
                offline: vec![2, 3],
                ..FakePartition::healthy(&[2, 3])
            },
        ],
    ));
    let describe = |extra: &[&str]| {
        drkit()
            .args(["topics", "describe", "--bootstrap-server", &fake.addr])
            .args(extra)
            .output()
            .unwrap()
    };
    let out = describe(&["--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let l = json_lines(&out);
    assert_eq!(l.len(), 4);
    assert_eq!(
        (l[0]["log_start"].as_i64(), l[0]["log_end"].as_i64()),
        (Some(5), Some(42))
    );
    assert_eq!(l[1]["offline"], serde_json::json!([2]));
    assert_eq!(l[1]["under_replicated"], true);
    let s = &l[3];
    assert_eq!(
        (s["under_replicated"].as_u64(), s["unavailable"].as_u64()),
        (Some(2), Some(1))
    );

    let out = describe(&["--unavailable", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let l = json_lines(&out);
    assert_eq!(l.len(), 2);
    assert_eq!(
        (l[0]["partition"].as_i64(), &l[0]["leader"]),
        (Some(2), &Value::Null)
    );
    assert_eq!(l[1]["shown"], 1);

    let out = describe(&["--under-replicated"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<&str> = text.lines().filter(|l| l.starts_with("u ")).collect();
    assert_eq!(rows.len(), 2, "{text}");
    assert!(rows[1].ends_with("no leader; under-replicated"), "{text}");
}
