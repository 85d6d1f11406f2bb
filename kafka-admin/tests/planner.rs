//! The planner as a pure function: fixed scenarios with known answers, error cases, and seeded
//! random inputs checked against the invariants every plan must keep.

use std::collections::{BTreeMap, BTreeSet};

use kafka_admin::plan::{Assignment, Plan};
use kafka_admin::planner::{plan, Change, Cluster, Planned, PlannerError};

/// `parts` partitions per topic, replicas round-robin over `brokers` (Kafka's own layout, so the
/// start is balanced in replicas and leaders).
fn round_robin(topics: &[&str], parts: i32, brokers: &[i32], rf: usize) -> Assignment {
    let n = brokers.len();
    let mut a = Assignment::new();
    for (t, topic) in topics.iter().enumerate() {
        for p in 0..parts {
            let start = (p as usize + t * 7) % n;
            let replicas = (0..rf).map(|k| brokers[(start + k) % n]).collect();
            a.insert((topic.to_string(), p), replicas);
        }
    }
    a
}

fn cluster(brokers: &[i32]) -> Cluster {
    Cluster::new(brokers, &BTreeMap::new()).unwrap()
}

fn racked(racks: &[(i32, &str)]) -> Cluster {
    let ids: Vec<i32> = racks.iter().map(|(b, _)| *b).collect();
    let map = racks.iter().map(|(b, r)| (*b, r.to_string())).collect();
    Cluster::new(&ids, &map).unwrap()
}

fn set(b: &[i32]) -> BTreeSet<i32> {
    b.iter().copied().collect()
}

/// Invariants of every plan: same partitions, same replication factors, no duplicates, brokers
/// known, `changes`/`rollback` exactly the differing partitions, counts consistent with the
/// target, moves at least the bound.
fn check(current: &Assignment, c: &Cluster, planned: &Planned) {
    let r = &planned.report;
    assert_eq!(
        planned.target.keys().collect::<Vec<_>>(),
        current.keys().collect::<Vec<_>>()
    );
    let mut moves = 0;
    let mut leaders = 0;
    for (k, now) in current {
        let t = &planned.target[k];
        assert_eq!(t.len(), now.len(), "{k:?}: replication factor changed");
        assert_eq!(t.iter().collect::<BTreeSet<_>>().len(), t.len(), "{k:?}");
        if t != now {
            assert_eq!(planned.changes.get(k), Some(t), "{k:?}");
            assert_eq!(planned.rollback.get(k), Some(now), "{k:?}");
            moves += t.iter().filter(|b| !now.contains(b)).count();
            leaders += usize::from(t[0] != now[0]);
        } else {
            assert!(!planned.changes.contains_key(k));
        }
    }
    assert_eq!(planned.changes.len(), planned.rollback.len());
    assert_eq!(r.replica_moves, moves);
    assert_eq!(r.leader_changes, leaders);
    assert_eq!(r.partitions_changed, planned.changes.len());
    // The bound holds for every plan that reaches the ideal with racks spread.
    let ideal =
        r.replicas_range.0 >= r.replicas_ideal.0 && r.replicas_range.1 <= r.replicas_ideal.1;
    if ideal && r.rack_violations.is_empty() {
        assert!(r.replica_moves >= r.lower_bound, "{r:?}");
    }
    // The written plan passes the same check `reassign execute` applies to a plan it reads.
    let written = Plan::parse(&Plan::from_assignment(&planned.changes).to_json()).unwrap();
    written.check_against(current, &c.brokers()).unwrap();
    // Per-broker counts are the target's (every test's scope is the whole assignment or stated).
    let total_after: usize = r.brokers.iter().map(|b| b.replicas_after).sum();
    let total_before: usize = r.brokers.iter().map(|b| b.replicas_before).sum();
    assert_eq!(total_after, total_before);
    let leaders_after: usize = r.brokers.iter().map(|b| b.leaders_after).sum();
    assert_eq!(leaders_after, r.scope_partitions);
}

fn counts(a: &Assignment, only_leaders: bool) -> BTreeMap<i32, usize> {
    let mut m = BTreeMap::new();
    for r in a.values() {
        let r = if only_leaders { &r[..1] } else { &r[..] };
        for b in r {
            *m.entry(*b).or_default() += 1;
        }
    }
    m
}

/// Every broker in `brokers` holds between `lo` and `hi` (the planner's own report is not used).
fn assert_within(a: &Assignment, brokers: &[i32], only_leaders: bool, slack: usize) {
    let c = counts(a, only_leaders);
    let total: usize = c.values().sum();
    let (lo, hi) = (total / brokers.len(), total.div_ceil(brokers.len()));
    for b in brokers {
        let n = c.get(b).copied().unwrap_or(0);
        assert!(
            n + slack >= lo && n <= hi + slack,
            "broker {b}: {n} not within {slack} of [{lo}, {hi}] ({c:?}, leaders: {only_leaders})"
        );
    }
}

#[test]
fn decommission_moves_only_the_lost_brokers_replicas() {
    for remaining in [3, 6, 12] {
        let all: Vec<i32> = (1..=remaining + 1).collect();
        let current = round_robin(&["telemetry", "metrics", "alarms"], 40, &all, 3);
        let c = cluster(&all);
        let lost = remaining + 1;
        let on_lost = current.values().filter(|r| r.contains(&lost)).count();
        let planned = plan(&current, &c, &Change::Decommission(set(&[lost]))).unwrap();
        check(&current, &c, &planned);
        let r = &planned.report;
        assert_eq!(r.lower_bound, on_lost, "{remaining} brokers");
        assert_eq!(r.replica_moves, on_lost, "{remaining} brokers");
        for (k, t) in &planned.target {
            assert!(!t.contains(&lost), "{k:?} still on {lost}");
            // Every replica that could stay did.
            for b in current[k].iter().filter(|b| **b != lost) {
                assert!(t.contains(b), "{k:?} lost its replica on {b}");
            }
        }
        let kept: Vec<i32> = (1..=remaining).collect();
        assert_within(&planned.target, &kept, false, 1);
        assert_within(&planned.target, &kept, true, 1);
        let row = r.brokers.iter().find(|b| b.broker == lost).unwrap();
        assert_eq!(
            (row.replicas_after, row.leaders_after, row.target),
            (0, 0, false)
        );
    }
}

#[test]
fn decommission_of_a_broker_missing_from_the_cluster() {
    // A broker whose disk is lost may be gone from the metadata: it is decommissioned all the same.
    let current = round_robin(&["t"], 12, &[1, 2, 3, 4], 2);
    let c = cluster(&[1, 2, 3]);
    let planned = plan(&current, &c, &Change::Decommission(set(&[4]))).unwrap();
    check(&current, &c, &planned);
    assert_eq!(planned.report.replica_moves, 6);
    assert!(planned.target.values().all(|r| !r.contains(&4)));
    // Without the decommission, that replica is an error naming it.
    let e = plan(&current, &c, &Change::Rebalance).unwrap_err();
    assert!(matches!(
        e,
        PlannerError::UnknownReplicaBroker { broker: 4, .. }
    ));
    assert!(e.to_string().contains("broker 4 holds a replica"), "{e}");
}

#[test]
fn a_dead_broker_can_be_replaced_or_moved_off() {
    // Broker 4 is gone from the metadata but still listed in replica lists.
    let current = round_robin(&["t", "u"], 8, &[1, 2, 3, 4], 2);
    let c = cluster(&[1, 2, 3, 5]);
    let planned = plan(&current, &c, &Change::Replace(vec![(4, 5)])).unwrap();
    check(&current, &c, &planned);
    for (k, now) in &current {
        let expect: Vec<i32> = now.iter().map(|&b| if b == 4 { 5 } else { b }).collect();
        assert_eq!(planned.target[k], expect, "{k:?}");
    }
    let change = Change::MoveTopics {
        topics: ["t".to_string()].into_iter().collect(),
        brokers: set(&[1, 2, 3]),
    };
    let planned = plan(&current, &c, &change).unwrap();
    check(&current, &c, &planned);
    for (k, t) in &planned.target {
        if k.0 == "t" {
            assert!(t.iter().all(|b| (1..=3).contains(b)), "{k:?}: {t:?}");
        } else {
            assert_eq!(t, &current[k]);
        }
    }
    let on4 = current
        .iter()
        .filter(|(k, r)| k.0 == "t" && r.contains(&4))
        .count();
    assert_eq!(planned.report.replica_moves, on4);
}

#[test]
fn replace_puts_the_new_broker_exactly_where_the_old_one_was() {
    let current = round_robin(&["a", "b"], 30, &[1, 2, 3, 4, 5], 3);
    let c = cluster(&[1, 2, 3, 4, 5, 7]);
    let planned = plan(&current, &c, &Change::Replace(vec![(3, 7)])).unwrap();
    check(&current, &c, &planned);
    let on3 = current.values().filter(|r| r.contains(&3)).count();
    let led3 = current.values().filter(|r| r[0] == 3).count();
    assert_eq!(planned.report.replica_moves, on3);
    assert_eq!(planned.report.lower_bound, on3);
    assert_eq!(planned.report.leader_changes, led3);
    for (k, now) in &current {
        let expect: Vec<i32> = now.iter().map(|&b| if b == 3 { 7 } else { b }).collect();
        assert_eq!(planned.target[k], expect, "{k:?}");
    }
    assert_eq!(planned.changes.len(), on3);
}

#[test]
fn replace_refuses_to_put_a_broker_twice() {
    let current: Assignment = [
        (("t".to_string(), 0), vec![1, 2]),
        (("t".to_string(), 1), vec![3, 2]),
    ]
    .into_iter()
    .collect();
    let c = cluster(&[1, 2, 3]);
    let e = plan(&current, &c, &Change::Replace(vec![(1, 2)])).unwrap_err();
    assert_eq!(
        e,
        PlannerError::ReplacementHeld {
            topic: "t".into(),
            partition: 0,
            old: 1,
            new: 2
        }
    );
}

#[test]
fn racks_stay_spread_after_a_decommission() {
    let c = racked(&[(1, "a"), (2, "a"), (3, "b"), (4, "b"), (5, "c"), (6, "c")]);
    // One replica per rack: rack a, b, c in turn, alternating brokers within each rack.
    let mut current = Assignment::new();
    for p in 0..30 {
        let i = p % 2;
        let r = match p % 3 {
            0 => vec![1 + i, 3 + i, 5 + i],
            1 => vec![3 + i, 5 + i, 1 + i],
            _ => vec![5 + i, 1 + i, 3 + i],
        };
        current.insert(("t".to_string(), p), r);
    }
    let planned = plan(&current, &c, &Change::Decommission(set(&[1]))).unwrap();
    check(&current, &c, &planned);
    for (k, t) in &planned.target {
        let racks: BTreeSet<&str> = t.iter().map(|b| c.rack(*b).unwrap()).collect();
        assert_eq!(racks.len(), 3, "{k:?}: {t:?}");
    }
    assert!(planned.report.rack_violations.is_empty());
    assert_eq!(planned.report.rack_violations_before, 0);
    // The only broker keeping rack a's copy is 2: it takes them all.
    let two = planned
        .report
        .brokers
        .iter()
        .find(|b| b.broker == 2)
        .unwrap();
    assert_eq!(two.replicas_after, 30);
}

#[test]
fn two_lost_replicas_of_one_partition_keep_it_spread() {
    // t-0 loses both 2 (rack b) and 3 (rack c); rack b is gone with 2.
    let c = racked(&[(1, "a"), (2, "b"), (3, "c"), (4, "c"), (5, "a"), (6, "c")]);
    let current: Assignment = [(("t".to_string(), 0), vec![1, 2, 3])]
        .into_iter()
        .collect();
    let planned = plan(&current, &c, &Change::Decommission(set(&[2, 3]))).unwrap();
    check(&current, &c, &planned);
    // Only racks a and c remain: [1, x, y] must span both, so one of x, y is on c.
    let t = &planned.target[&("t".to_string(), 0)];
    let racks: BTreeSet<&str> = t.iter().map(|b| c.rack(*b).unwrap()).collect();
    assert_eq!(racks.len(), 2, "{t:?}");
    assert!(planned.report.rack_violations.is_empty());
}

#[test]
fn rack_violations_are_reported_not_hidden() {
    let c = racked(&[(1, "a"), (2, "b"), (3, "c"), (4, "a")]);
    let current: Assignment = [
        (("t".to_string(), 0), vec![1, 2, 3]),
        (("t".to_string(), 1), vec![2, 3, 4]),
    ]
    .into_iter()
    .collect();
    // Replacing 3 (rack c) by 4 (rack a) where 4 already holds t-1 is refused, naming t-1.
    let planned = plan(&current, &c, &Change::Replace(vec![(3, 4)]));
    assert!(matches!(
        planned,
        Err(PlannerError::ReplacementHeld { partition: 1, .. })
    ));
    // The operator's replacement is carried out even where it costs a rack: with broker 5 still
    // on rack c, [1, 2, 4] spans two racks where three were possible, and the report says so.
    let current: Assignment = [(("t".to_string(), 0), vec![1, 2, 3])]
        .into_iter()
        .collect();
    let c5 = racked(&[(1, "a"), (2, "b"), (3, "c"), (4, "a"), (5, "c")]);
    let planned = plan(&current, &c5, &Change::Replace(vec![(3, 4)])).unwrap();
    check(&current, &c5, &planned);
    assert_eq!(
        planned.report.rack_violations,
        vec![(("t".to_string(), 0), vec![1, 2, 4])]
    );
    // A rebalance repairs such a partition, one move per missing rack.
    let bad: Assignment = [(("t".to_string(), 0), vec![1, 4, 2])]
        .into_iter()
        .collect();
    let planned = plan(&bad, &c5, &Change::Rebalance).unwrap();
    check(&bad, &c5, &planned);
    assert_eq!(planned.report.rack_violations_before, 1);
    let t = &planned.target[&("t".to_string(), 0)];
    let racks: BTreeSet<&str> = t.iter().map(|b| c5.rack(*b).unwrap()).collect();
    assert_eq!(racks.len(), 3, "{t:?}");
    assert_eq!(t[0], 1, "the preferred leader stays");
}

#[test]
fn rebalance_after_adding_brokers_meets_the_lower_bound() {
    let current = round_robin(&["a", "b", "c"], 50, &[1, 2, 3, 4, 5], 3);
    let all = [1, 2, 3, 4, 5, 6, 7];
    let c = cluster(&all);
    let planned = plan(&current, &c, &Change::Rebalance).unwrap();
    check(&current, &c, &planned);
    // 450 replicas: 90 on each of 5 brokers; ideal 64..65 on 7, so 2 x 64 (or 65) must arrive.
    let r = &planned.report;
    assert_eq!(r.replicas_ideal, (64, 65));
    assert_eq!(r.lower_bound, 128);
    assert_eq!(r.replica_moves, r.lower_bound);
    assert_within(&planned.target, &all, false, 0);
    assert_within(&planned.target, &all, true, 1);
    // A balanced cluster is left alone.
    let again = plan(&planned.target, &c, &Change::Rebalance).unwrap();
    assert_eq!(again.report.replica_moves, 0);
    assert_eq!(again.report.lower_bound, 0);
}

#[test]
fn topics_move_onto_the_broker_list_and_nothing_else_moves() {
    let mut current = round_robin(&["a"], 20, &[1, 2, 3, 4], 2);
    current.extend(round_robin(&["b"], 10, &[1, 2], 2));
    let c = cluster(&[1, 2, 3, 4, 5, 6]);
    let change = Change::MoveTopics {
        topics: ["a".to_string()].into_iter().collect(),
        brokers: set(&[3, 4, 5, 6]),
    };
    let planned = plan(&current, &c, &change).unwrap();
    check(&current, &c, &planned);
    let r = &planned.report;
    assert_eq!(r.scope_partitions, 20);
    for (k, t) in &planned.target {
        if k.0 == "a" {
            assert!(t.iter().all(|b| (3..=6).contains(b)), "{k:?}: {t:?}");
            for b in current[k].iter().filter(|b| **b >= 3) {
                assert!(t.contains(b), "{k:?} lost its replica on {b}");
            }
        } else {
            assert_eq!(t, &current[k], "topic b is not to move");
        }
    }
    // 40 replicas of a, 20 on brokers 1-2 must move; 10 per listed broker is the ideal, which
    // those 20 moves reach.
    assert_eq!(r.lower_bound, 20);
    assert_eq!(r.replica_moves, 20);
    let a: Assignment = planned
        .target
        .iter()
        .filter(|(k, _)| k.0 == "a")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert_within(&a, &[3, 4, 5, 6], false, 0);
    assert_within(&a, &[3, 4, 5, 6], true, 1);
}

#[test]
fn the_same_input_gives_the_same_plan() {
    let current = round_robin(&["x", "y"], 64, &[10, 20, 30, 40, 50, 60], 3);
    let c1 = cluster(&[10, 20, 30, 40, 50, 60, 70]);
    let c2 = cluster(&[70, 60, 50, 40, 30, 20, 10]);
    for change in [
        Change::Decommission(set(&[30])),
        Change::Rebalance,
        Change::Replace(vec![(20, 70)]),
    ] {
        let a = plan(&current, &c1, &change).unwrap();
        let b = plan(&current.clone(), &c2, &change).unwrap();
        assert_eq!(a, b, "{change:?}");
        assert_eq!(
            Plan::from_assignment(&a.changes).to_json(),
            Plan::from_assignment(&b.changes).to_json()
        );
    }
}

#[test]
fn impossible_or_wrong_requests_are_clear_errors() {
    let current = round_robin(&["t"], 6, &[1, 2, 3], 3);
    let c = cluster(&[1, 2, 3]);
    let e = plan(&current, &c, &Change::Decommission(set(&[3]))).unwrap_err();
    assert_eq!(
        e.to_string(),
        "t-0: 3 replicas but only 2 broker(s) could hold them (a reassignment keeps the \
         replication factor)"
    );
    let e = plan(&current, &c, &Change::Decommission(set(&[9]))).unwrap_err();
    assert_eq!(
        e.to_string(),
        "cannot decommission broker 9: it is not in the broker list and holds no replica"
    );
    assert_eq!(
        plan(&current, &c, &Change::Replace(vec![(9, 1)])).unwrap_err(),
        PlannerError::UnknownBroker {
            action: "replace",
            broker: 9
        }
    );
    assert_eq!(
        plan(&current, &c, &Change::Replace(vec![(1, 8)])).unwrap_err(),
        PlannerError::NotInBrokerList {
            broker: 8,
            role: "replacement"
        }
    );
    let c4 = cluster(&[1, 2, 3, 4, 5]);
    assert_eq!(
        plan(&current, &c4, &Change::Replace(vec![(1, 1)])).unwrap_err(),
        PlannerError::ReplaceBySelf(1)
    );
    assert_eq!(
        plan(&current, &c4, &Change::Replace(vec![(1, 4), (2, 4)])).unwrap_err(),
        PlannerError::ReplacementTwice(4)
    );
    assert_eq!(
        plan(&current, &c4, &Change::Replace(vec![(1, 4), (4, 5)])).unwrap_err(),
        PlannerError::ReplaceChain(4)
    );
    let mv = |topics: &[&str], brokers: &[i32]| Change::MoveTopics {
        topics: topics.iter().map(|t| t.to_string()).collect(),
        brokers: set(brokers),
    };
    assert_eq!(
        plan(&current, &c4, &mv(&["nope"], &[1, 2, 3])).unwrap_err(),
        PlannerError::UnknownTopic("nope".into())
    );
    assert!(matches!(
        plan(&current, &c4, &mv(&["t"], &[1, 2, 9])).unwrap_err(),
        PlannerError::NotInBrokerList { broker: 9, .. }
    ));
    assert!(matches!(
        plan(&current, &c4, &mv(&["t"], &[4, 5])).unwrap_err(),
        PlannerError::NotEnoughBrokers {
            replicas: 3,
            brokers: 2,
            ..
        }
    ));
    assert_eq!(
        plan(&Assignment::new(), &c, &Change::Rebalance).unwrap_err(),
        PlannerError::NoPartitions
    );
    let dup: Assignment = [(("t".to_string(), 0), vec![1, 1])].into_iter().collect();
    assert!(matches!(
        plan(&dup, &c, &Change::Rebalance).unwrap_err(),
        PlannerError::DuplicateReplica { broker: 1, .. }
    ));
    let empty: Assignment = [(("t".to_string(), 0), vec![])].into_iter().collect();
    assert!(matches!(
        plan(&empty, &c, &Change::Rebalance).unwrap_err(),
        PlannerError::EmptyReplicas { .. }
    ));

    let racks = |r: &[(i32, &str)]| r.iter().map(|(b, s)| (*b, s.to_string())).collect();
    assert_eq!(
        Cluster::new(&[1, 2, 1], &BTreeMap::new()),
        Err(PlannerError::BrokerTwice(1))
    );
    assert_eq!(
        Cluster::new(&[], &BTreeMap::new()),
        Err(PlannerError::NoBrokers)
    );
    assert_eq!(
        Cluster::new(&[1, 2], &racks(&[(1, "a")])),
        Err(PlannerError::MissingRack(2))
    );
    assert_eq!(
        Cluster::new(&[1, 2], &racks(&[(1, "a"), (2, "b"), (3, "c")])),
        Err(PlannerError::RackForUnknownBroker(3))
    );
}

/// splitmix64: a few lines, seeded, the same sequence on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// `k` distinct items of `from`, in random order.
    fn pick(&mut self, from: &[i32], k: usize) -> Vec<i32> {
        let mut v = from.to_vec();
        for i in 0..k {
            let j = i + self.below(v.len() - i);
            v.swap(i, j);
        }
        v.truncate(k);
        v
    }
}

#[test]
fn seeded_random_inputs_keep_every_invariant() {
    let mut rng = Rng(0x5eed);
    let mut exact = 0;
    for case in 0..300 {
        let n = 3 + rng.below(10);
        let brokers: Vec<i32> = (0..n as i32).map(|b| b * 3 + 1).collect();
        let use_racks = rng.below(3) == 0;
        let rack_names = ["r1", "r2", "r3", "r4"];
        let racks: BTreeMap<i32, String> = if use_racks {
            let k = 2 + rng.below(3);
            brokers
                .iter()
                .map(|b| (*b, rack_names[rng.below(k)].to_string()))
                .collect()
        } else {
            BTreeMap::new()
        };
        let c = Cluster::new(&brokers, &racks).unwrap();
        // Skewed on purpose: replicas drawn from a random subset of the brokers.
        let k = 3.max(n - rng.below(n - 2));
        let holders = rng.pick(&brokers, k);
        let mut current = Assignment::new();
        let topics = ["t0", "t1", "t2"];
        for p in 0..(1 + rng.below(80)) {
            let rf = 1 + rng.below(3.min(holders.len()));
            let topic = topics[rng.below(topics.len())];
            current.insert((topic.to_string(), p as i32), rng.pick(&holders, rf));
        }
        let max_rf = current.values().map(Vec::len).max().unwrap();
        let change = match rng.below(4) {
            0 if n > max_rf => Change::Decommission(set(&rng.pick(&brokers, 1))),
            1 => {
                let old = rng.pick(&holders, 1)[0];
                let new = brokers.iter().max().unwrap() + 1;
                let mut all = brokers.clone();
                all.push(new);
                let mut racks = racks.clone();
                if use_racks {
                    racks.insert(new, "r1".to_string());
                }
                let c = Cluster::new(&all, &racks).unwrap();
                let change = Change::Replace(vec![(old, new)]);
                let planned = plan(&current, &c, &change).unwrap();
                check(&current, &c, &planned);
                let on_old = current.values().filter(|r| r.contains(&old)).count();
                assert_eq!(planned.report.replica_moves, on_old, "case {case}");
                assert_eq!(planned.report.lower_bound, on_old, "case {case}");
                continue;
            }
            2 => {
                let k = max_rf + rng.below(n + 1 - max_rf);
                let list = set(&rng.pick(&brokers, k));
                let topics = current.keys().map(|(t, _)| t.clone()).take(1).collect();
                Change::MoveTopics {
                    topics,
                    brokers: list,
                }
            }
            _ => Change::Rebalance,
        };
        let planned =
            plan(&current, &c, &change).unwrap_or_else(|e| panic!("case {case}: {change:?}: {e}"));
        check(&current, &c, &planned);
        let r = &planned.report;
        let targets: Vec<i32> = r
            .brokers
            .iter()
            .filter(|b| b.target)
            .map(|b| b.broker)
            .collect();
        for (k, t) in &planned.target {
            let in_scope = match &change {
                Change::MoveTopics { topics, .. } => topics.contains(&k.0),
                _ => true,
            };
            if in_scope {
                assert!(
                    t.iter().all(|b| targets.contains(b)),
                    "case {case}: {k:?} {t:?} not on {targets:?}"
                );
            } else {
                assert_eq!(t, &current[k], "case {case}: out of scope {k:?} changed");
            }
            // Reported violations are exactly the moved partitions whose spread narrowed below
            // what the brokers allow.
            if use_racks && planned.changes.contains_key(k) {
                let span = |r: &[i32]| r.iter().map(|b| c.rack(*b)).collect::<BTreeSet<_>>().len();
                let spans = span(t);
                let possible = targets
                    .iter()
                    .map(|b| c.rack(*b))
                    .collect::<BTreeSet<_>>()
                    .len()
                    .min(t.len());
                let same_set = t.iter().all(|b| current[k].contains(b));
                let listed = r.rack_violations.iter().any(|(key, _)| key == k);
                let floor = span(&current[k]).min(possible);
                assert_eq!(listed, !same_set && spans < floor, "case {case}: {k:?}");
            }
        }
        match &change {
            Change::Decommission(d) => {
                let on = current
                    .values()
                    .filter(|r| r.iter().any(|b| d.contains(b)))
                    .count();
                assert_eq!(r.lower_bound, on, "case {case}");
                assert_eq!(r.replica_moves, on, "case {case}");
            }
            // Without racks a move from the fullest to the emptiest broker always exists, so the
            // rebalance meets its bound and ends within one replica of the ideal everywhere.
            Change::Rebalance if !use_racks => {
                assert_eq!(r.replica_moves, r.lower_bound, "case {case}");
                assert_within(&planned.target, &targets, false, 0);
                exact += 1;
            }
            _ => {}
        }
    }
    assert!(exact > 20, "only {exact} unracked rebalances drawn");
}

/// The issue's size (10,000 partitions, RF 3, 100 brokers, the bench's input): exact bounds for a
/// decommission and for a rebalance onto 10 new brokers, with and without 10 racks.
#[test]
fn issue_size_plans_meet_their_bounds() {
    let topics: Vec<String> = (0..50).map(|t| format!("topic-{t:02}")).collect();
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    let ids: Vec<i32> = (1..=100).collect();
    let current = round_robin(&names, 200, &ids, 3);
    assert_eq!(current.len(), 10_000);
    let grown: Vec<i32> = (1..=110).collect();
    let racks = |b: &[i32]| -> BTreeMap<i32, String> {
        b.iter().map(|b| (*b, format!("rack-{}", b % 10))).collect()
    };
    for with_racks in [false, true] {
        let c = |b: &[i32]| {
            Cluster::new(
                b,
                &if with_racks {
                    racks(b)
                } else {
                    BTreeMap::new()
                },
            )
            .unwrap()
        };
        let (small, big) = (c(&ids), c(&grown));
        let p = plan(&current, &small, &Change::Decommission(set(&[42]))).unwrap();
        check(&current, &small, &p);
        assert_eq!((p.report.replica_moves, p.report.lower_bound), (300, 300));
        assert!(p.report.rack_violations.is_empty());
        let kept: Vec<i32> = ids.iter().copied().filter(|b| *b != 42).collect();
        assert_within(&p.target, &kept, false, 0);
        assert_within(&p.target, &kept, true, 1);

        let p = plan(&current, &big, &Change::Rebalance).unwrap();
        check(&current, &big, &p);
        let r = &p.report;
        assert_eq!(r.replicas_ideal, (272, 273));
        assert_eq!(r.replica_moves, r.lower_bound, "racks: {with_racks}");
        assert!(r.rack_violations.is_empty());
        assert_within(&p.target, &grown, false, 0);
        assert_within(&p.target, &grown, true, 1);
    }
}
