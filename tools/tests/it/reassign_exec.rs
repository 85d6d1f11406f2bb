//! `drkit reassign execute | verify | cancel | list` as a user runs them, against the protocol
//! fake of kafka-admin/tests/support/fake_broker.rs (Tansu does not implement the reassignment
//! requests): exit codes, JSON Lines, and the refusal of plans that do not fit the cluster.

#[path = "../../../kafka-admin/tests/support/fake_broker.rs"]
pub(crate) mod fake_broker;

use std::path::{Path, PathBuf};
use std::process::Output;

use fake_broker::{FakeCluster, FakePartition, FakeState};
use serde_json::Value;

use crate::util::drkit;

fn cluster() -> FakeCluster {
    FakeCluster::start(FakeState::cluster(&[1, 2, 3, 4]).topic(
        "t",
        vec![
            FakePartition::healthy(&[1, 2]),
            FakePartition::healthy(&[2, 1]),
            FakePartition::healthy(&[1, 2]),
        ],
    ))
}

const PLAN: &str = r#"{"version":1,"partitions":[
{"topic":"t","partition":0,"replicas":[3,2]},
{"topic":"t","partition":1,"replicas":[4,2]},
{"topic":"t","partition":2,"replicas":[1,2]}]}"#;

fn plan_file(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("plan.json");
    std::fs::write(&p, text).unwrap();
    p
}

fn run(fake: &FakeCluster, args: &[&str], plan: Option<&Path>) -> Output {
    let mut c = drkit();
    c.arg("reassign").args(args);
    c.args(["--bootstrap-server", &fake.addr]);
    if let Some(p) = plan {
        c.arg("--plan").arg(p);
    }
    c.output().unwrap()
}

fn lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

#[test]
fn execute_list_verify_through_the_binary() {
    let fake = cluster();
    let dir = tempfile::tempdir().unwrap();
    let plan = plan_file(dir.path(), PLAN);
    let out = run(
        &fake,
        &["execute", "--throttle", "1000", "--format", "json"],
        Some(&plan),
    );
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let l = lines(&out);
    let status: Vec<&str> = l[..3]
        .iter()
        .map(|v| v["status"].as_str().unwrap())
        .collect();
    assert_eq!(status, ["submitted", "submitted", "in_place"]);
    assert_eq!(l[0]["from"], serde_json::json!([1, 2]));
    assert_eq!(l[0]["to"], serde_json::json!([3, 2]));
    let s = &l[3];
    assert_eq!(
        (s["type"].as_str(), s["submitted"].as_u64()),
        (Some("summary"), Some(2))
    );
    assert_eq!(s["throttle"], 1000);
    assert!(Path::new(s["rollback"].as_str().unwrap()).is_file());

    let out = run(&fake, &["list", "--format", "json"], None);
    assert_eq!(code(&out), 0);
    let l = lines(&out);
    assert_eq!(l.len(), 3);
    assert_eq!(
        (l[0]["topic"].as_str(), l[0]["partition"].as_i64()),
        (Some("t"), Some(0))
    );
    assert_eq!(l[0]["adding"], serde_json::json!([3]));
    assert_eq!(l[2]["reassignments"], 2);

    // Still moving: exit 1, nothing removed.
    let out = run(&fake, &["verify", "--format", "json"], Some(&plan));
    assert_eq!(code(&out), 1);
    let l = lines(&out);
    assert_eq!(l[0]["status"], "in_progress");
    assert_eq!(l.last().unwrap()["complete"], false);

    fake.with(|s| s.complete_all());
    let out = run(&fake, &["verify", "--format", "json"], Some(&plan));
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let l = lines(&out);
    assert!(l[..3].iter().all(|v| v["status"] == "done"), "{l:?}");
    assert_eq!(l[3]["type"], "election");
    assert_eq!(
        (l[3]["partition"].as_i64(), &l[3]["error"]),
        (Some(1), &Value::Null)
    );
    let s = l.last().unwrap();
    assert_eq!(
        (s["complete"].as_bool(), s["throttles_restored"].as_u64()),
        (Some(true), Some(10))
    );
    fake.with(|s| {
        assert!(s.configs.values().all(|c| c.is_empty()), "{:?}", s.configs);
    });

    let out = run(&fake, &["verify"], Some(&plan));
    assert_eq!(code(&out), 0);
    assert!(String::from_utf8_lossy(&out.stdout).contains("reassignment complete"));
}

#[test]
fn a_rejected_partition_exits_1_naming_it_and_a_rerun_finishes_the_plan() {
    let fake = cluster();
    fake.with(|s| {
        s.reject.insert(("t".into(), 1), 39);
    });
    let dir = tempfile::tempdir().unwrap();
    let plan = plan_file(dir.path(), PLAN);
    let out = run(&fake, &["execute"], Some(&plan));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(code(&out), 1, "{text}");
    assert!(
        text.lines().any(|l| l.starts_with("t-1 ")
            && l.contains("failed")
            && l.contains("InvalidReplicaAssignment")),
        "{text}"
    );
    fake.with(|s| s.reject.clear());
    let out = run(&fake, &["execute", "--format", "json"], Some(&plan));
    assert_eq!(code(&out), 0);
    let s = lines(&out).pop().unwrap();
    assert_eq!(
        (
            s["resumed"].as_bool(),
            s["submitted"].as_u64(),
            s["in_progress"].as_u64()
        ),
        (Some(true), Some(1), Some(1))
    );
}

#[test]
fn cancel_through_the_binary() {
    let fake = cluster();
    let dir = tempfile::tempdir().unwrap();
    let plan = plan_file(dir.path(), PLAN);
    assert_eq!(
        code(&run(&fake, &["execute", "--throttle", "5"], Some(&plan))),
        0
    );
    let out = run(&fake, &["cancel", "--format", "json"], Some(&plan));
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let l = lines(&out);
    assert_eq!(l.len(), 3);
    assert!(l[..2].iter().all(|v| v["cancelled"] == true));
    assert_eq!(l[2]["not_in_progress"], 1);
    assert_eq!(l[2]["throttles_restored"], 10);
    fake.with(|s| assert!(s.moving.is_empty()));
}

#[test]
fn plans_that_do_not_fit_are_refused_with_exit_1() {
    let fake = cluster();
    let dir = tempfile::tempdir().unwrap();
    for (text, want) in [
        (
            r#"{"version":1,"partitions":[{"topic":"t","partition":1,"replicas":[2,7]}]}"#,
            "t-1: broker 7 is not in the cluster",
        ),
        (
            r#"{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[3]}]}"#,
            "t-0: replication factor would change from 2 to 1",
        ),
        (
            r#"{"version":1,"partitions":[{"topic":"gone","partition":0,"replicas":[1,2]}]}"#,
            "topic gone does not exist",
        ),
        (
            r#"{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[]}]}"#,
            "t-0: empty replica list",
        ),
        ("not json", "not a reassignment plan"),
    ] {
        let plan = plan_file(dir.path(), text);
        let out = run(&fake, &["execute", "--format", "json"], Some(&plan));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(code(&out), 1, "{stderr}");
        assert!(stderr.contains(want), "{stderr} / {want}");
        assert!(stderr.contains("plan.json"), "{stderr}");
        let l = lines(&out);
        assert_eq!(l[0]["type"], "error");
        assert!(!dir.path().join("plan.json.journal").exists());
        assert!(!dir.path().join("plan.json.rollback.json").exists());
    }
    // An unreadable plan is an I/O error; an unreachable cluster too.
    let out = run(&fake, &["verify"], Some(&dir.path().join("missing.json")));
    assert_eq!(code(&out), 2);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap().to_string();
    drop(closed);
    let out = drkit()
        .args(["reassign", "list", "--bootstrap-server", &addr])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(code(&out), 2, "{stderr}");
    assert!(
        stderr.contains(&format!("cannot connect to {addr}")),
        "{stderr}"
    );
    assert!(fake.with(|s| s.alters().is_empty()));
}

/// `execute` and `list` over SASL_SSL (SCRAM-SHA-256) with mutual TLS, through the binary.
#[test]
fn execute_over_sasl_ssl_with_mutual_tls() {
    use fake_broker::fake_sasl::{FakeMechanism, FakeSasl};
    use fake_broker::{tls_fixture, FakeTls};
    let mut st = FakeState::cluster(&[1, 2, 3, 4]).topic(
        "t",
        vec![
            FakePartition::healthy(&[1, 2]),
            FakePartition::healthy(&[2, 1]),
            FakePartition::healthy(&[1, 2]),
        ],
    );
    st.sasl = Some(FakeSasl::new(FakeMechanism::Sha256, "ops", "pw-9f8e"));
    let fake = FakeCluster::start_tls(
        st,
        FakeTls {
            host: "localhost",
            client_auth: true,
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let plan = plan_file(dir.path(), PLAN);
    let x = |k: &str, v: String| ["-X".to_string(), format!("{k}={v}")];
    let mut settings = vec![];
    settings.extend(x("security.protocol", "SASL_SSL".into()));
    settings.extend(x(
        "ssl.ca.location",
        tls_fixture("ca.pem").display().to_string(),
    ));
    settings.extend(x(
        "ssl.certificate.location",
        tls_fixture("client.pem").display().to_string(),
    ));
    settings.extend(x(
        "ssl.key.location",
        tls_fixture("client.key").display().to_string(),
    ));
    settings.extend(x("sasl.mechanisms", "SCRAM-SHA-256".into()));
    settings.extend(x("sasl.username", "ops".into()));
    settings.extend(x("sasl.password", "pw-9f8e".into()));
    let run = |args: &[&str], plan: Option<&Path>| {
        let mut c = drkit();
        c.arg("reassign").args(args).args(&settings);
        c.args(["--bootstrap-server", &fake.addr]);
        if let Some(p) = plan {
            c.arg("--plan").arg(p);
        }
        c.output().unwrap()
    };
    let out = run(&["execute", "--format", "json"], Some(&plan));
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    fake.with(|s| assert_eq!(s.alters().len(), 1));
    let out = run(&["list", "--format", "json"], None);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let l = lines(&out);
    assert_eq!(l.len(), 3, "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(l[2]["reassignments"], 2);
}
