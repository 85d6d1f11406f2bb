//! Criterion bench of the reassignment planner on the size: 10,000 partitions (RF 3) on
//! 100 brokers. Measured against a reference taken in the same run: writing the same assignment
//! as Kafka's plan JSON and reading it back (the work any plan file costs), so the figure kept in
//! docs/PERFORMANCE.md is a ratio that does not depend on the machine. Target: under 1 s a plan.
//!
//! Every iteration checks its own result: a decommission meets its lower bound exactly, the
//! rebalance meets its bound and ends inside the ideal range.

use std::collections::BTreeMap;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use kafka_admin::plan::{Assignment, Plan};
use kafka_admin::planner::{plan, Change, Cluster};

const BROKERS: i32 = 100;
const TOPICS: i32 = 50;
const PARTITIONS_PER_TOPIC: i32 = 200;

/// Kafka's round-robin layout with a per-topic start, so replicas and leaders start balanced.
fn assignment() -> Assignment {
    let mut a = Assignment::new();
    for t in 0..TOPICS {
        for p in 0..PARTITIONS_PER_TOPIC {
            let start = (p + t * 7) % BROKERS;
            let replicas = (0..3).map(|k| 1 + (start + k) % BROKERS).collect();
            a.insert((format!("topic-{t:02}"), p), replicas);
        }
    }
    a
}

fn planner(c: &mut Criterion) {
    let current = assignment();
    assert_eq!(current.len(), 10_000);
    let ids: Vec<i32> = (1..=BROKERS).collect();
    let cluster = Cluster::new(&ids, &BTreeMap::new()).expect("cluster");
    let grown: Vec<i32> = (1..=BROKERS + 10).collect();
    let grown = Cluster::new(&grown, &BTreeMap::new()).expect("cluster");
    let racks: BTreeMap<i32, String> = ids
        .iter()
        .map(|b| (*b, format!("rack-{}", b % 10)))
        .collect();
    let racked = Cluster::new(&ids, &racks).expect("cluster");
    let grown_ids: Vec<i32> = (1..=BROKERS + 10).collect();
    let grown_racks: BTreeMap<i32, String> = grown_ids
        .iter()
        .map(|b| (*b, format!("rack-{}", b % 10)))
        .collect();
    let grown_racked = Cluster::new(&grown_ids, &grown_racks).expect("cluster");
    let lost = Change::Decommission([42].into_iter().collect());

    let mut g = c.benchmark_group("planner_10k_partitions_100_brokers");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    g.bench_function("reference_plan_json_write_and_read", |b| {
        b.iter(|| {
            let json = Plan::from_assignment(&current).to_json();
            let back = Plan::parse(&json).expect("parse");
            assert_eq!(back.partitions.len(), 10_000);
        })
    });
    g.bench_function("decommission_1_broker", |b| {
        b.iter(|| {
            let p = plan(&current, &cluster, &lost).expect("plan");
            assert_eq!(p.report.replica_moves, 300);
            assert_eq!(p.report.lower_bound, 300);
        })
    });
    g.bench_function("decommission_1_broker_10_racks", |b| {
        b.iter(|| {
            let p = plan(&current, &racked, &lost).expect("plan");
            assert_eq!(p.report.replica_moves, p.report.lower_bound);
        })
    });
    g.bench_function("rebalance_after_adding_10_brokers", |b| {
        b.iter(|| {
            let p = plan(&current, &grown, &Change::Rebalance).expect("plan");
            let r = &p.report;
            assert_eq!(r.replica_moves, r.lower_bound);
            assert!(r.replicas_range.0 >= r.replicas_ideal.0);
            assert!(r.replicas_range.1 <= r.replicas_ideal.1);
        })
    });
    g.bench_function("rebalance_after_adding_10_brokers_10_racks", |b| {
        b.iter(|| {
            let p = plan(&current, &grown_racked, &Change::Rebalance).expect("plan");
            let r = &p.report;
            assert!(r.replica_moves >= r.lower_bound);
            assert!(r.rack_violations.is_empty());
        })
    });
    // Worst case for the balancing loop: every replica on 3 of the 100 brokers.
    let skewed: Assignment = current
        .iter()
        .enumerate()
        .map(|(i, (k, _))| (k.clone(), (0..3).map(|j| 1 + (i as i32 + j) % 3).collect()))
        .collect();
    g.bench_function("rebalance_from_3_onto_100_brokers", |b| {
        b.iter(|| {
            let p = plan(&skewed, &cluster, &Change::Rebalance).expect("plan");
            let r = &p.report;
            assert_eq!(r.replica_moves, r.lower_bound);
            assert_eq!(r.replicas_range, (300, 300));
        })
    });
    g.finish();
}

criterion_group!(benches, planner);
criterion_main!(benches);
