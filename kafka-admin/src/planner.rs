//! The minimal-move reassignment planner: pure code from (current assignment, brokers and racks,
//! requested change) to (target assignment, report). No network, no clock, no randomness, no
//! hash-map iteration: the same input always gives the same plan.
//!
//! Kafka's own `--generate` recomputes every partition from scratch, so a decommission moves
//! nearly every replica. Moving a replica copies the partition's whole log over the network
//! during an incident, so this planner instead:
//!
//! 1. keeps every replica that may stay, in its position (the first replica is the preferred
//!    leader);
//! 2. moves the replicas that must move (decommissioned broker, replaced broker, broker outside
//!    `--broker-list`) to the least-loaded broker that keeps the partition on distinct racks,
//!    ties broken by the lower broker id;
//! 3. for a rebalance, moves replicas one at a time from the fullest broker to the emptiest while
//!    they differ by two or more: every such move lowers the excess over the ideal or the deficit
//!    under it, so the count of moves meets the lower bound unless racks or replica placement
//!    forbid a move;
//! 4. balances preferred leaders by reordering replica lists (no data moves; reported apart).
//!
//! Replication factors never change. A rack constraint that cannot be met is not an error: the
//! replica is placed best-effort and the partition is listed in [`Report::rack_violations`].
//! A rebalance repairs partitions that share a rack; a decommission or replacement only moves
//! what must move and never narrows a partition's spread where another broker would do.

use std::collections::{BTreeMap, BTreeSet};

use crate::plan::{Assignment, TopicPartition};

mod state;

/// The brokers a plan may use, with their racks (all brokers have one, or none does, as Kafka
/// requires for rack-aware assignment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    brokers: BTreeMap<i32, Option<String>>,
}

impl Cluster {
    pub fn new(brokers: &[i32], racks: &BTreeMap<i32, String>) -> Result<Cluster, PlannerError> {
        if brokers.is_empty() {
            return Err(PlannerError::NoBrokers);
        }
        let mut map = BTreeMap::new();
        for &b in brokers {
            if b < 0 {
                return Err(PlannerError::NegativeBroker(b));
            }
            if map.insert(b, racks.get(&b).cloned()).is_some() {
                return Err(PlannerError::BrokerTwice(b));
            }
        }
        if let Some(&b) = racks.keys().find(|b| !map.contains_key(b)) {
            return Err(PlannerError::RackForUnknownBroker(b));
        }
        if !racks.is_empty() {
            if let Some((&b, _)) = map.iter().find(|(_, r)| r.is_none()) {
                return Err(PlannerError::MissingRack(b));
            }
        }
        Ok(Cluster { brokers: map })
    }

    pub fn brokers(&self) -> BTreeSet<i32> {
        self.brokers.keys().copied().collect()
    }

    pub fn rack(&self, broker: i32) -> Option<&str> {
        self.brokers.get(&broker).and_then(|r| r.as_deref())
    }

    pub fn contains(&self, broker: i32) -> bool {
        self.brokers.contains_key(&broker)
    }
}

/// What the operator asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Move every replica off these brokers (a lost disk, a broker being retired).
    Decommission(BTreeSet<i32>),
    /// Put broker NEW exactly where broker OLD is, in every partition.
    Replace(Vec<(i32, i32)>),
    /// Even out replicas and preferred leaders over all brokers with the fewest moves.
    Rebalance,
    /// Kafka's `--topics-to-move-json-file` with `--broker-list`: these topics' replicas end up
    /// on these brokers only, balanced over them.
    MoveTopics {
        topics: BTreeSet<String>,
        brokers: BTreeSet<i32>,
    },
}

impl Change {
    pub fn name(&self) -> &'static str {
        match self {
            Change::Decommission(_) => "decommission",
            Change::Replace(_) => "replace",
            Change::Rebalance => "rebalance",
            Change::MoveTopics { .. } => "move-topics",
        }
    }
}

/// Why no plan could be made. Messages name the broker or the topic-partition.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlannerError {
    #[error("the broker list is empty")]
    NoBrokers,
    #[error("broker id {0} is negative")]
    NegativeBroker(i32),
    #[error("broker {0} is listed twice")]
    BrokerTwice(i32),
    #[error("a rack is given for broker {0}, which is not in the broker list")]
    RackForUnknownBroker(i32),
    #[error("broker {0} has no rack: give a rack for every broker or for none")]
    MissingRack(i32),
    #[error("the current assignment has no partitions")]
    NoPartitions,
    #[error("{topic}-{partition}: empty replica list in the current assignment")]
    EmptyReplicas { topic: String, partition: i32 },
    #[error("{topic}-{partition}: broker {broker} appears twice in the current replica list")]
    DuplicateReplica {
        topic: String,
        partition: i32,
        broker: i32,
    },
    #[error(
        "{topic}-{partition}: broker {broker} holds a replica but is not in the broker list \
         (list it, or decommission or replace it)"
    )]
    UnknownReplicaBroker {
        topic: String,
        partition: i32,
        broker: i32,
    },
    #[error("cannot {action} broker {broker}: it is not in the broker list and holds no replica")]
    UnknownBroker { action: &'static str, broker: i32 },
    #[error("broker {broker} ({role}) is not in the cluster's broker list")]
    NotInBrokerList { broker: i32, role: &'static str },
    #[error("broker {0} would be replaced by itself")]
    ReplaceBySelf(i32),
    #[error("broker {0} would replace two brokers")]
    ReplacementTwice(i32),
    #[error("broker {0} is both replaced and a replacement")]
    ReplaceChain(i32),
    #[error(
        "{topic}-{partition}: has replicas on both {old} and {new}; replacing {old} by {new} \
         would put {new} in the list twice (decommission {old} instead)"
    )]
    ReplacementHeld {
        topic: String,
        partition: i32,
        old: i32,
        new: i32,
    },
    #[error(
        "{topic}-{partition}: {replicas} replicas but only {brokers} broker(s) could hold them \
         (a reassignment keeps the replication factor)"
    )]
    NotEnoughBrokers {
        topic: String,
        partition: i32,
        replicas: usize,
        brokers: usize,
    },
    #[error("topic {0} is not in the current assignment")]
    UnknownTopic(String),
    #[error("no broker to move the topics to")]
    EmptyBrokerList,
}

/// One broker's share before and after, over the partitions in scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerLoad {
    pub broker: i32,
    pub rack: Option<String>,
    /// May receive replicas (false for decommissioned, replaced and unlisted brokers).
    pub target: bool,
    pub replicas_before: usize,
    pub replicas_after: usize,
    pub leaders_before: usize,
    pub leaders_after: usize,
}

/// What a plan does, in numbers an operator can check before executing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Partitions in the current assignment.
    pub partitions: usize,
    /// Partitions the change may touch (all, or the listed topics' partitions).
    pub scope_partitions: usize,
    /// Partitions whose replica list changes (set or order): the plan's length.
    pub partitions_changed: usize,
    /// Replicas added to a partition's list: each copies a whole partition log.
    pub replica_moves: usize,
    /// Fewest replica moves any plan needs. For a decommission or replacement: the replicas that
    /// must leave. For a rebalance or topic move: the fewest moves that could reach the ideal
    /// balance with every partition spread over racks (a plan that cannot get there, because
    /// racks or the one-replica-per-broker rule forbid it, may stop short with fewer).
    pub lower_bound: usize,
    /// Partitions whose preferred leader (first replica) changes.
    pub leader_changes: usize,
    /// Ideal replicas per target broker over the scope: every broker within `[low, high]`.
    pub replicas_ideal: (usize, usize),
    /// Ideal preferred leaders per target broker over the scope.
    pub leaders_ideal: (usize, usize),
    /// Fewest and most replicas on a target broker after the plan.
    pub replicas_range: (usize, usize),
    /// Fewest and most preferred leaders on a target broker after the plan.
    pub leaders_range: (usize, usize),
    /// Per broker, in broker id order.
    pub brokers: Vec<BrokerLoad>,
    /// Partitions in scope whose replicas shared a rack before (where distinct racks were possible).
    pub rack_violations_before: usize,
    /// Partitions this plan moves replicas of that end up spanning fewer racks than they did
    /// and than they could (best-effort placements the operator should look at). A partition
    /// that already shared a rack and spans as many racks as before is not listed.
    pub rack_violations: Vec<(TopicPartition, Vec<i32>)>,
}

/// A plan: the target of every partition, the partitions that change, and their rollback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    /// Every partition of the current assignment, moved or not.
    pub target: Assignment,
    /// Only the partitions whose replica list changes: what to hand to `reassign execute`.
    pub changes: Assignment,
    /// The current replica lists of the partitions in `changes`: executing it undoes the plan.
    pub rollback: Assignment,
    pub report: Report,
}

/// Plans `change` over `current`. See the module docs for the method.
pub fn plan(
    current: &Assignment,
    cluster: &Cluster,
    change: &Change,
) -> Result<Planned, PlannerError> {
    check_current(current)?;
    let req = Resolved::new(current, cluster, change)?;
    state::run(current, cluster, change, &req)
}

fn check_current(current: &Assignment) -> Result<(), PlannerError> {
    if current.is_empty() {
        return Err(PlannerError::NoPartitions);
    }
    for ((topic, partition), replicas) in current {
        let (topic, partition) = (topic.clone(), *partition);
        if replicas.is_empty() {
            return Err(PlannerError::EmptyReplicas { topic, partition });
        }
        let mut seen = BTreeSet::new();
        if let Some(&broker) = replicas.iter().find(|b| !seen.insert(**b)) {
            return Err(PlannerError::DuplicateReplica {
                topic,
                partition,
                broker,
            });
        }
    }
    Ok(())
}

/// The change turned into sets: which brokers may receive replicas, which must be emptied, and
/// which partitions are in scope. Every broker id is checked here, once.
struct Resolved<'a> {
    targets: BTreeSet<i32>,
    /// Brokers whose replicas must leave; may include brokers outside the cluster (a dead one).
    removed: BTreeSet<i32>,
    replace: BTreeMap<i32, i32>,
    topics: Option<&'a BTreeSet<String>>,
}

impl<'a> Resolved<'a> {
    fn new(
        current: &Assignment,
        cluster: &Cluster,
        change: &'a Change,
    ) -> Result<Resolved<'a>, PlannerError> {
        let holding: BTreeSet<i32> = current.values().flatten().copied().collect();
        let known = |b: i32| cluster.contains(b) || holding.contains(&b);
        let mut r = Resolved {
            targets: cluster.brokers(),
            removed: BTreeSet::new(),
            replace: BTreeMap::new(),
            topics: None,
        };
        match change {
            Change::Decommission(brokers) => {
                for &b in brokers {
                    if !known(b) {
                        return Err(PlannerError::UnknownBroker {
                            action: "decommission",
                            broker: b,
                        });
                    }
                    r.targets.remove(&b);
                    r.removed.insert(b);
                }
            }
            Change::Replace(pairs) => {
                let news: BTreeSet<i32> = pairs.iter().map(|(_, n)| *n).collect();
                for &(old, new) in pairs {
                    if old == new {
                        return Err(PlannerError::ReplaceBySelf(old));
                    }
                    if !known(old) {
                        return Err(PlannerError::UnknownBroker {
                            action: "replace",
                            broker: old,
                        });
                    }
                    if !cluster.contains(new) {
                        return Err(PlannerError::NotInBrokerList {
                            broker: new,
                            role: "replacement",
                        });
                    }
                    if news.contains(&old) {
                        return Err(PlannerError::ReplaceChain(old));
                    }
                    if r.replace.values().any(|n| *n == new) {
                        return Err(PlannerError::ReplacementTwice(new));
                    }
                    if r.replace.insert(old, new).is_some() {
                        return Err(PlannerError::BrokerTwice(old));
                    }
                    r.targets.remove(&old);
                    r.removed.insert(old);
                }
            }
            Change::Rebalance => {}
            Change::MoveTopics { topics, brokers } => {
                if brokers.is_empty() {
                    return Err(PlannerError::EmptyBrokerList);
                }
                if let Some(&b) = brokers.iter().find(|b| !cluster.contains(**b)) {
                    return Err(PlannerError::NotInBrokerList {
                        broker: b,
                        role: "to receive the topics",
                    });
                }
                let present: BTreeSet<&str> = current.keys().map(|(t, _)| t.as_str()).collect();
                if let Some(t) = topics.iter().find(|t| !present.contains(t.as_str())) {
                    return Err(PlannerError::UnknownTopic(t.clone()));
                }
                r.targets = brokers.clone();
                r.topics = Some(topics);
            }
        }
        Ok(r)
    }

    fn in_scope(&self, tp: &TopicPartition) -> bool {
        match self.topics {
            Some(t) => t.contains(&tp.0),
            None => true,
        }
    }
}
