//! `execute`, `verify`, `cancel`, `list` and `topics::describe` at the protocol level, against
//! the protocol fake in support/fake_broker.rs (Tansu does not implement the reassignment
//! requests, and cannot produce offline replicas or leaderless partitions). Requests are encoded
//! and answers decoded by the real client; the fake records what it was asked to change.

#[path = "support/fake_broker.rs"]
mod fake_broker;

use std::path::{Path, PathBuf};
use std::time::Duration;

use fake_broker::{FakeCluster, FakePartition, FakeState};
use kafka_admin::client::{Admin, ClientConfig, ClientError};
use kafka_admin::plan::{Plan, PlanError};
use kafka_admin::reassign::journal::{self, Entry, JournalState};
use kafka_admin::reassign::{self, ExecuteOptions, ReassignError, Status};
use kafka_admin::topics;
use replay::kafka::Settings;

const LEADER_RATE: &str = "leader.replication.throttled.rate";
const FOLLOWER_RATE: &str = "follower.replication.throttled.rate";
const LEADER_REPLICAS: &str = "leader.replication.throttled.replicas";
const FOLLOWER_REPLICAS: &str = "follower.replication.throttled.replicas";

/// Brokers 1-4; topic `t`: t-0 [1,2], t-1 [2,1], t-2 [1,2]. Broker 1 already has a leader
/// throttle of 5000 and topic `t` a leader throttled-replicas list: values to be restored.
fn cluster() -> FakeCluster {
    let mut st = FakeState::cluster(&[1, 2, 3, 4]).topic(
        "t",
        vec![
            FakePartition::healthy(&[1, 2]),
            FakePartition::healthy(&[2, 1]),
            FakePartition::healthy(&[1, 2]),
        ],
    );
    st.configs
        .entry((4, "1".into()))
        .or_default()
        .insert(LEADER_RATE.into(), "5000".into());
    st.configs
        .entry((2, "t".into()))
        .or_default()
        .insert(LEADER_REPLICAS.into(), "9:9".into());
    FakeCluster::start(st)
}

fn admin(fake: &FakeCluster) -> Admin {
    let (cfg, _) = ClientConfig::new(&fake.addr, &Settings::default()).unwrap();
    Admin::connect(cfg).unwrap()
}

/// t-0 → [3,2] (leader 1 leaves), t-1 → [4,2] (leader 2 stays: preferred election needed),
/// t-2 stays [1,2].
const PLAN: &str = r#"{"version":1,"partitions":[
{"topic":"t","partition":0,"replicas":[3,2]},
{"topic":"t","partition":1,"replicas":[4,2]},
{"topic":"t","partition":2,"replicas":[1,2]}]}"#;

/// t-0, t-1 and t-2 all move (for batches).
const PLAN3: &str = r#"{"version":1,"partitions":[
{"topic":"t","partition":0,"replicas":[3,2]},
{"topic":"t","partition":1,"replicas":[4,2]},
{"topic":"t","partition":2,"replicas":[3,4]}]}"#;

fn write_plan(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("plan.json");
    std::fs::write(&p, text).unwrap();
    p
}

fn opts(plan: &Path, throttle: Option<u64>, batch: Option<usize>) -> ExecuteOptions {
    ExecuteOptions {
        plan: plan.to_path_buf(),
        rollback: None,
        throttle,
        batch,
        batch_timeout: Duration::from_secs(30),
        poll: Duration::from_millis(10),
    }
}

fn statuses(r: &reassign::ExecuteReport) -> Vec<(i32, String)> {
    r.partitions
        .iter()
        .map(|p| (p.partition, p.status.clone()))
        .collect()
}

fn journal_entries(plan: &Path) -> Vec<Entry> {
    journal::read(&journal::journal_path(plan)).unwrap()
}

fn no_append_or_subtract(fake: &FakeCluster) {
    let ops = fake.with(|s| s.config_ops());
    assert!(!ops.is_empty());
    assert!(ops.iter().all(|o| o.3 == 0 || o.3 == 1), "{ops:?}");
}

#[test]
fn execute_then_verify_sets_throttles_and_puts_back_what_was_there() {
    let fake = cluster();
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(dir.path(), PLAN);
    let mut a = admin(&fake);

    let mut seen = vec![];
    let r = reassign::execute(&mut a, &opts(&plan, Some(1000), None), &mut |p| {
        seen.push(p)
    })
    .unwrap();
    assert_eq!(
        statuses(&r),
        vec![
            (0, "submitted".into()),
            (1, "submitted".into()),
            (2, "in_place".into())
        ]
    );
    assert_eq!(r.failed(), 0);
    assert_eq!(r.partitions[0].from, vec![1, 2]);
    // The rollback holds the assignment before the move.
    let rollback = Plan::read(&r.rollback).unwrap();
    assert_eq!(
        rollback.assignment().into_iter().collect::<Vec<_>>(),
        vec![
            (("t".to_string(), 0), vec![1, 2]),
            (("t".to_string(), 1), vec![2, 1]),
            (("t".to_string(), 2), vec![1, 2])
        ]
    );
    assert_eq!(
        fake.with(|s| s.alters()),
        vec![vec![
            (("t".to_string(), 0), Some(vec![3, 2])),
            (("t".to_string(), 1), Some(vec![4, 2]))
        ]]
    );
    fake.with(|s| {
        for b in ["1", "2", "3", "4"] {
            assert_eq!(
                s.config(4, b, LEADER_RATE).as_deref(),
                Some("1000"),
                "broker {b}"
            );
            assert_eq!(
                s.config(4, b, FOLLOWER_RATE).as_deref(),
                Some("1000"),
                "broker {b}"
            );
        }
        assert_eq!(
            s.config(2, "t", LEADER_REPLICAS).as_deref(),
            Some("9:9,0:1,0:2,1:2,1:1")
        );
        assert_eq!(
            s.config(2, "t", FOLLOWER_REPLICAS).as_deref(),
            Some("0:3,1:4")
        );
    });

    // Still moving: not done, throttles stay.
    let v = reassign::verify(&mut a, &plan).unwrap();
    assert!(!v.done());
    assert!(matches!(
        v.partitions[0].status,
        Status::InProgress { ref adding, ref removing } if adding == &vec![3] && removing == &vec![1]
    ));
    assert_eq!(v.partitions[2].status, Status::Done);
    assert_eq!(v.throttles_restored, 0);
    assert_eq!(
        fake.with(|s| s.config(4, "3", LEADER_RATE)).as_deref(),
        Some("1000")
    );

    fake.with(|s| {
        s.complete_all();
        // t-2 is not part of the move: its leadership is left alone even though not preferred.
        s.topics.get_mut("t").unwrap()[2].leader = 2;
    });
    let v = reassign::verify(&mut a, &plan).unwrap();
    assert!(v.done() && v.clean(), "{v:?}");
    assert_eq!(fake.with(|s| s.partition("t", 2).leader), 2);
    // t-1's leader (2) stayed a replica, so the preferred one (4) had to be elected.
    assert_eq!(v.elections.len(), 1);
    assert_eq!(
        (v.elections[0].partition, &v.elections[0].error),
        (1, &None)
    );
    assert_eq!(fake.with(|s| s.partition("t", 1).leader), 4);
    assert_eq!(v.throttles_restored, 10);
    fake.with(|s| {
        assert_eq!(s.config(4, "1", LEADER_RATE).as_deref(), Some("5000"));
        assert_eq!(s.config(4, "1", FOLLOWER_RATE), None);
        assert_eq!(s.config(4, "3", LEADER_RATE), None);
        assert_eq!(s.config(2, "t", LEADER_REPLICAS).as_deref(), Some("9:9"));
        assert_eq!(s.config(2, "t", FOLLOWER_REPLICAS), None);
    });
    no_append_or_subtract(&fake);

    // Verifying again changes nothing more.
    let ops = fake.with(|s| s.config_ops().len());
    let v = reassign::verify(&mut a, &plan).unwrap();
    assert!(v.clean());
    assert!(v.elections.is_empty());
    assert_eq!(v.throttles_restored, 0);
    assert_eq!(fake.with(|s| s.config_ops().len()), ops);
    let state = JournalState::fold(&journal_entries(&plan));
    assert!(state.throttles_restored);
    assert_eq!(state.accepted.len(), 2);
}

#[test]
fn a_rejected_partition_is_reported_and_a_rerun_submits_only_it() {
    let fake = cluster();
    fake.with(|s| {
        s.reject.insert(("t".into(), 1), 39);
    });
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(dir.path(), PLAN);
    let mut a = admin(&fake);
    let r = reassign::execute(&mut a, &opts(&plan, None, None), &mut |_| {}).unwrap();
    assert_eq!(r.failed(), 1);
    let bad = &r.partitions[1];
    assert_eq!(
        (bad.topic.as_str(), bad.partition, bad.status.as_str()),
        ("t", 1, "failed")
    );
    assert!(
        bad.error
            .as_deref()
            .unwrap()
            .contains("InvalidReplicaAssignment"),
        "{bad:?}"
    );
    assert_eq!(r.partitions[0].status, "submitted");
    let rollback_before = std::fs::read(&r.rollback).unwrap();

    fake.with(|s| s.reject.clear());
    let r2 = reassign::execute(&mut a, &opts(&plan, None, None), &mut |_| {}).unwrap();
    assert!(r2.resumed);
    assert_eq!(r2.failed(), 0);
    assert_eq!(
        statuses(&r2),
        vec![
            (0, "in_progress".into()),
            (1, "submitted".into()),
            (2, "in_place".into())
        ]
    );
    let alters = fake.with(|s| s.alters());
    assert_eq!(alters.len(), 2);
    assert_eq!(alters[1], vec![(("t".to_string(), 1), Some(vec![4, 2]))]);
    // The rollback still holds the assignment from before the first run.
    assert_eq!(std::fs::read(&r2.rollback).unwrap(), rollback_before);
}

#[test]
fn a_run_that_dies_between_batches_resumes_from_the_journal() {
    let fake = cluster();
    fake.with(|s| {
        // Each batch finishes once it has been listed; the second batch's submission is lost
        // with the connection (the run "dies" there).
        s.complete_after_lists = Some(1);
        s.drop_on = Some((45, 2));
    });
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(dir.path(), PLAN3);
    let mut a = admin(&fake);
    let e = reassign::execute(&mut a, &opts(&plan, Some(1000), Some(1)), &mut |_| {}).unwrap_err();
    assert!(
        matches!(e, ReassignError::Client(ClientError::Closed { ref api, .. }) if api == "AlterPartitionReassignments"),
        "{e}"
    );
    let state = JournalState::fold(&journal_entries(&plan));
    assert_eq!(state.batches, 2);
    assert_eq!(
        state.accepted.iter().cloned().collect::<Vec<_>>(),
        vec![("t".to_string(), 0)]
    );
    assert!(state.unanswered.contains(&("t".to_string(), 1)));
    let planned_throttles = state.throttles.clone().unwrap();
    let describes = fake.with(|s| s.counts.get(&32).copied().unwrap_or(0));
    assert!(describes > 0);

    fake.with(|s| s.drop_on = None);
    let mut a = admin(&fake);
    let r = reassign::execute(&mut a, &opts(&plan, Some(1000), Some(1)), &mut |_| {}).unwrap();
    assert!(r.resumed);
    assert_eq!(
        r.partitions
            .iter()
            .map(|p| (p.partition, p.status.as_str(), p.batch))
            .collect::<Vec<_>>(),
        vec![
            (0, "accepted", None),
            (1, "submitted", Some(2)),
            (2, "submitted", Some(3))
        ]
    );
    // The previous throttle values were not read again (they are drkit's own now).
    assert_eq!(
        fake.with(|s| s.counts.get(&32).copied().unwrap_or(0)),
        describes
    );
    let entries = journal_entries(&plan);
    assert_eq!(
        entries
            .iter()
            .filter(|e| matches!(e, Entry::ThrottlesPlanned { .. }))
            .count(),
        1
    );
    assert_eq!(
        JournalState::fold(&entries).throttles.unwrap(),
        planned_throttles
    );
    let alters = fake.with(|s| s.alters());
    assert_eq!(
        alters.iter().map(|a| a.len()).collect::<Vec<_>>(),
        vec![1, 1, 1],
        "{alters:?}"
    );

    fake.with(|s| s.complete_all());
    let v = reassign::verify(&mut a, &plan).unwrap();
    assert!(v.clean(), "{v:?}");
    fake.with(|s| {
        assert_eq!(s.config(4, "1", LEADER_RATE).as_deref(), Some("5000"));
        assert_eq!(s.config(4, "4", FOLLOWER_RATE), None);
        assert_eq!(s.config(2, "t", LEADER_REPLICAS).as_deref(), Some("9:9"));
        assert_eq!(s.partition("t", 2).replicas, vec![3, 4]);
    });
    no_append_or_subtract(&fake);
}

#[test]
fn cancel_reverts_moving_partitions_and_restores_throttles() {
    let fake = cluster();
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(dir.path(), PLAN);
    let mut a = admin(&fake);
    reassign::execute(&mut a, &opts(&plan, Some(2000), None), &mut |_| {}).unwrap();

    let listed = reassign::list(&mut a).unwrap();
    assert_eq!(listed.len(), 2);
    let t0 = &listed[&("t".to_string(), 0)];
    assert_eq!((t0.adding.clone(), t0.removing.clone()), (vec![3], vec![1]));

    let c = reassign::cancel(&mut a, &plan).unwrap();
    assert_eq!(c.partitions.len(), 2);
    assert!(c.partitions.iter().all(|p| p.error.is_none()), "{c:?}");
    assert_eq!(c.not_in_progress, 1);
    assert_eq!(c.throttles_restored, 10);
    fake.with(|s| {
        assert!(s.moving.is_empty());
        assert_eq!(s.partition("t", 0).replicas, vec![1, 2]);
        assert_eq!(s.partition("t", 1).replicas, vec![2, 1]);
        assert_eq!(s.config(4, "1", LEADER_RATE).as_deref(), Some("5000"));
        assert_eq!(s.config(4, "2", LEADER_RATE), None);
        assert_eq!(s.config(2, "t", LEADER_REPLICAS).as_deref(), Some("9:9"));
        let last = s.alters().pop().unwrap();
        assert_eq!(
            last,
            vec![(("t".to_string(), 0), None), (("t".to_string(), 1), None)]
        );
    });
    assert!(reassign::list(&mut a).unwrap().is_empty());
    let again = reassign::cancel(&mut a, &plan).unwrap();
    assert!(again.partitions.is_empty());
    assert_eq!(again.throttles_restored, 0);
    // Verify sees the plan not carried out.
    let v = reassign::verify(&mut a, &plan).unwrap();
    assert_eq!(v.partitions[0].status, Status::Mismatch);
    assert!(!v.done());
    no_append_or_subtract(&fake);
}

#[test]
fn a_partition_moving_elsewhere_refuses_the_run_before_anything_is_written() {
    let fake = cluster();
    fake.with(|s| {
        s.moving.insert(
            ("t".into(), 1),
            fake_broker::Moving {
                original: vec![2, 1],
                target: vec![3, 1],
                lists_seen: 0,
            },
        );
    });
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(dir.path(), PLAN);
    let mut a = admin(&fake);
    let e = reassign::execute(&mut a, &opts(&plan, Some(1), None), &mut |_| {}).unwrap_err();
    assert!(e.is_refusal(), "{e}");
    assert!(
        e.to_string().contains("t-1 is being moved to {1, 3}"),
        "{e}"
    );
    assert!(!journal::journal_path(&plan).exists());
    assert!(!reassign::default_rollback(&plan).exists());
    assert!(fake.with(|s| s.alters().is_empty() && s.config_ops().is_empty()));
}

#[test]
fn plans_that_do_not_fit_the_cluster_are_refused_with_the_partition_named() {
    let fake = cluster();
    let dir = tempfile::tempdir().unwrap();
    let mut a = admin(&fake);
    let cases = [
        (
            r#"{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[9,2]}]}"#,
            "t-0: broker 9 is not in the cluster",
        ),
        (
            r#"{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1,2,3]}]}"#,
            "t-0: replication factor would change from 2 to 3",
        ),
        (
            r#"{"version":1,"partitions":[{"topic":"nope","partition":0,"replicas":[1,2]}]}"#,
            "topic nope does not exist",
        ),
        (
            r#"{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1,1]}]}"#,
            "t-0: broker 1 appears twice",
        ),
    ];
    for (text, want) in cases {
        let plan = write_plan(dir.path(), text);
        let e = reassign::execute(&mut a, &opts(&plan, None, None), &mut |_| {}).unwrap_err();
        assert!(
            matches!(e, ReassignError::Plan { .. }) && e.is_refusal(),
            "{e}"
        );
        assert!(e.to_string().contains(want), "{e} / {want}");
        assert!(!journal::journal_path(&plan).exists());
        assert!(!reassign::default_rollback(&plan).exists());
    }
    let e = reassign::read_plan(&dir.path().join("missing.json")).unwrap_err();
    assert!(!e.is_refusal());
    assert!(matches!(
        reassign::read_plan(&write_plan(dir.path(), "{}")).unwrap_err(),
        ReassignError::Plan {
            source: PlanError::Syntax(_),
            ..
        }
    ));
    assert!(fake.with(|s| s.alters().is_empty()));
}

#[test]
fn describe_reports_offline_replicas_and_leaderless_partitions() {
    let mut st = FakeState::cluster(&[1, 2, 3]).topic(
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
    );
    st.brokers.insert(1, Some("rack-a".into()));
    st.brokers.insert(2, Some("rack-b".into()));
    let fake = FakeCluster::start(st);
    let mut a = admin(&fake);
    let parts = topics::describe(&mut a, &topics::DescribeOptions::default()).unwrap();
    assert_eq!(parts.len(), 3);
    assert_eq!((parts[0].log_start, parts[0].log_end), (Some(5), Some(42)));
    assert!(!parts[0].under_replicated() && !parts[0].unavailable());
    assert!(parts[1].under_replicated() && !parts[1].unavailable());
    assert_eq!(parts[1].offline, vec![2]);
    assert!(parts[2].unavailable() && parts[2].under_replicated());
    assert_eq!(parts[2].leader, None);
    assert_eq!((parts[2].log_start, parts[2].log_end), (None, None));
    assert_eq!(parts[2].error, None);

    let e = topics::describe(
        &mut a,
        &topics::DescribeOptions {
            topics: vec!["missing".into()],
            skip_offsets: false,
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("UnknownTopicOrPartition"), "{e}");
    assert!(e.to_string().contains("topic missing"), "{e}");

    let (brokers, assignment) = topics::brokers_and_assignment(&mut a, &[]).unwrap();
    assert_eq!(
        brokers.into_iter().collect::<Vec<_>>(),
        vec![
            (1, Some("rack-a".to_string())),
            (2, Some("rack-b".to_string())),
            (3, None)
        ]
    );
    assert_eq!(assignment[&("u".to_string(), 2)], vec![2, 3]);
}

#[test]
fn an_api_the_broker_does_not_offer_is_a_clear_error() {
    let mut st = FakeState::cluster(&[1]).topic("t", vec![FakePartition::healthy(&[1])]);
    st.unsupported.insert(46);
    let fake = FakeCluster::start(st);
    let mut a = admin(&fake);
    let e = reassign::list(&mut a).unwrap_err().to_string();
    assert!(
        e.contains("does not support ListPartitionReassignments"),
        "{e}"
    );
}

#[test]
fn an_existing_rollback_file_or_another_plans_journal_refuses_the_run() {
    let fake = cluster();
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(dir.path(), PLAN);
    let rollback = reassign::default_rollback(&plan);
    std::fs::write(&rollback, "someone else's rollback").unwrap();
    let mut a = admin(&fake);
    let e = reassign::execute(&mut a, &opts(&plan, None, None), &mut |_| {}).unwrap_err();
    assert!(e.is_refusal(), "{e}");
    assert!(e.to_string().contains("exists"), "{e}");
    assert_eq!(
        std::fs::read_to_string(&rollback).unwrap(),
        "someone else's rollback"
    );
    assert!(fake.with(|s| s.alters().is_empty()));

    // With --rollback elsewhere the run goes ahead; then the plan file changes under its journal.
    let mut o = opts(&plan, None, None);
    o.rollback = Some(dir.path().join("rb.json"));
    reassign::execute(&mut a, &o, &mut |_| {}).unwrap();
    std::fs::write(&plan, PLAN3).unwrap();
    let e = reassign::execute(&mut a, &o, &mut |_| {}).unwrap_err();
    assert!(e.is_refusal(), "{e}");
    assert!(e.to_string().contains("belongs to a different plan"), "{e}");
    assert_eq!(fake.with(|s| s.alters().len()), 1);
}

#[test]
fn a_submission_whose_answer_was_lost_is_not_sent_again_and_a_new_rate_keeps_the_old_values() {
    let fake = cluster();
    fake.with(|s| s.drop_after = Some((45, 1)));
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(dir.path(), PLAN3);
    let mut a = admin(&fake);
    let e = reassign::execute(&mut a, &opts(&plan, Some(1000), None), &mut |_| {}).unwrap_err();
    assert!(
        matches!(e, ReassignError::Client(ClientError::Closed { .. })),
        "{e}"
    );
    let state = JournalState::fold(&journal_entries(&plan));
    assert_eq!(state.unanswered.len(), 3);
    // The controller did take them.
    assert_eq!(fake.with(|s| s.moving.len()), 3);

    let mut a = admin(&fake);
    let r = reassign::execute(&mut a, &opts(&plan, Some(2000), None), &mut |_| {}).unwrap();
    assert!(
        r.partitions.iter().all(|p| p.status == "in_progress"),
        "{r:?}"
    );
    assert_eq!(fake.with(|s| s.alters().len()), 1);
    fake.with(|s| {
        assert_eq!(s.config(4, "1", LEADER_RATE).as_deref(), Some("2000"));
        assert_eq!(s.config(4, "4", FOLLOWER_RATE).as_deref(), Some("2000"));
    });
    let (rate, changes) = JournalState::fold(&journal_entries(&plan))
        .throttles
        .unwrap();
    assert_eq!(rate, 2000);
    let b1 = changes
        .iter()
        .find(|c| c.resource == "broker" && c.name == "1" && c.key == LEADER_RATE)
        .unwrap();
    assert_eq!(
        (b1.previous.as_deref(), b1.value.as_str()),
        (Some("5000"), "2000")
    );

    fake.with(|s| s.complete_all());
    assert!(reassign::verify(&mut a, &plan).unwrap().clean());
    fake.with(|s| {
        assert_eq!(s.config(4, "1", LEADER_RATE).as_deref(), Some("5000"));
        assert_eq!(s.config(4, "2", LEADER_RATE), None);
        assert_eq!(s.config(2, "t", LEADER_REPLICAS).as_deref(), Some("9:9"));
    });
    no_append_or_subtract(&fake);
}

/// A controller failover between Metadata and the request: the broker answers NOT_CONTROLLER
/// (nothing was done), the client refreshes metadata and sends once more, to the new controller.
#[test]
fn not_controller_is_retried_once_after_a_metadata_refresh() {
    const ALTER: i16 = 45;
    const LIST: i16 = 46;
    const METADATA: i16 = 3;
    let fake = cluster();
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(dir.path(), PLAN);
    let mut a = admin(&fake);
    assert_eq!(a.controller(), Some(1));
    fake.with(|s| {
        s.not_controller.insert(ALTER, 1);
        s.not_controller.insert(LIST, 1);
    });
    let metadata_before = fake.with(|s| s.counts[&METADATA]);
    let r = reassign::execute(&mut a, &opts(&plan, None, None), &mut |_| {}).unwrap();
    assert_eq!(r.failed(), 0, "{r:?}");
    assert_eq!(
        statuses(&r),
        vec![
            (0, "submitted".into()),
            (1, "submitted".into()),
            (2, "in_place".into())
        ]
    );
    fake.with(|s| {
        // Each NOT_CONTROLLER answer was followed by a metadata refresh and one more request.
        assert_eq!(s.counts[&ALTER], 2);
        assert_eq!(s.not_controller[&ALTER], 0);
        assert_eq!(s.not_controller[&LIST], 0);
        assert!(s.counts[&METADATA] >= metadata_before + 2);
        // Only the retry was carried out.
        assert_eq!(s.alters().len(), 1);
        assert_eq!(s.partition("t", 0).replicas, vec![3, 2, 1]);
    });
    assert_ne!(
        a.controller(),
        Some(1),
        "the client follows the new controller"
    );
}

#[test]
fn not_controller_twice_is_reported_not_retried_forever() {
    const LIST: i16 = 46;
    let fake = cluster();
    let mut a = admin(&fake);
    fake.with(|s| {
        s.not_controller.insert(LIST, 2);
    });
    let e = reassign::list(&mut a).unwrap_err();
    assert!(matches!(&e, ClientError::Broker { code: 41, .. }), "{e}");
    assert!(e.to_string().contains("NotController"), "{e}");
    fake.with(|s| assert_eq!(s.counts[&LIST], 2));
    // The next request goes through.
    assert!(reassign::list(&mut a).unwrap().is_empty());
}
