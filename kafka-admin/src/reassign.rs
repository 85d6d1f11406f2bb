//! Carrying out a reassignment plan: `execute` (rollback file first, throttles, batches, a
//! journal to resume from), `verify` (done when every target replica is in sync; then preferred
//! leaders and throttle removal), `cancel` and `list` — Kafka's `kafka-reassign-partitions.sh`
//! semantics over the kafka-protocol client.
//!
//! The decisions (what to submit, in which batch, what a partition's state means) are pure
//! functions over plain data ([`classify`], [`batches`], [`status`]); the functions that talk to
//! the cluster only gather data, call them, and record what they did in the journal.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use kafka_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use kafka_protocol::messages::list_partition_reassignments_request::ListPartitionReassignmentsTopics;
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, BrokerId, ListPartitionReassignmentsRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use serde::Serialize;

use crate::client::{error_name, Admin, ClientError};
use crate::plan::{Plan, PlanError, TopicPartition};

mod execute;
pub mod journal;
pub mod throttle;
mod verify;

pub use execute::{
    batches, classify, default_rollback, execute, Action, ExecuteOptions, ExecutePartition,
    ExecuteReport, Progress,
};
pub use verify::{needs_election, status, verify, Election, Status, VerifyPartition, VerifyReport};

use journal::{Entry, Journal, JournalPartition};

/// Why a reassignment command stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReassignError {
    /// The plan is malformed or does not fit the cluster.
    #[error("{path}: {source}")]
    Plan { path: String, source: PlanError },
    /// Carrying on would be unsafe (another reassignment, another plan's journal, an existing
    /// rollback file).
    #[error("refused: {0}")]
    Refused(String),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("{path}: {reason}")]
    Io { path: String, reason: String },
    #[error("{path}: line {line}: {reason}")]
    Journal {
        path: String,
        line: usize,
        reason: String,
    },
    #[error("{0}")]
    Timeout(String),
}

impl ReassignError {
    pub fn io(path: &Path, e: impl std::fmt::Display) -> ReassignError {
        ReassignError::Io {
            path: path.display().to_string(),
            reason: e.to_string(),
        }
    }

    /// A refusal (bad plan, unsafe state, still waiting) rather than a failure to run: exit 1.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            ReassignError::Plan { .. } | ReassignError::Refused(_) | ReassignError::Timeout(_)
        )
    }
}

/// Reads and shape-checks a plan; an unreadable file is an I/O error, a bad plan a plan error.
pub fn read_plan(path: &Path) -> Result<Plan, ReassignError> {
    let text = std::fs::read_to_string(path).map_err(|e| ReassignError::io(path, e))?;
    Plan::parse(&text).map_err(|source| ReassignError::Plan {
        path: path.display().to_string(),
        source,
    })
}

/// A reassignment the controller is carrying out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ongoing {
    /// Target and leaving replicas together, as the controller reports them.
    pub replicas: Vec<i32>,
    pub adding: Vec<i32>,
    pub removing: Vec<i32>,
}

impl Ongoing {
    /// Where the partition is going: the replicas that are not leaving.
    pub fn target(&self) -> BTreeSet<i32> {
        self.replicas
            .iter()
            .filter(|b| !self.removing.contains(b))
            .copied()
            .collect()
    }
}

/// ListPartitionReassignments, for `partitions` or (None) for the whole cluster.
pub fn list_ongoing(
    admin: &mut Admin,
    partitions: Option<&BTreeSet<TopicPartition>>,
) -> Result<BTreeMap<TopicPartition, Ongoing>, ClientError> {
    let topics = partitions.map(|ps| {
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for (t, p) in ps {
            by_topic.entry(t.as_str()).or_default().push(*p);
        }
        by_topic
            .into_iter()
            .map(|(t, ps)| {
                ListPartitionReassignmentsTopics::default()
                    .with_name(TopicName(StrBytes::from_string(t.to_string())))
                    .with_partition_indexes(ps)
            })
            .collect()
    });
    let req = ListPartitionReassignmentsRequest::default()
        .with_timeout_ms(admin.request_timeout_ms())
        .with_topics(topics);
    let resp = admin.send_controller(&req)?;
    if resp.error_code != 0 {
        return Err(ClientError::Broker {
            addr: admin.addr_of(admin.controller().unwrap_or(-1)),
            api: "ListPartitionReassignments".into(),
            code: resp.error_code,
            message: resp.error_message.map(|m| m.as_str().to_string()),
        });
    }
    let ids = |v: &[BrokerId]| v.iter().map(|b| b.0).collect::<Vec<_>>();
    let mut out = BTreeMap::new();
    for t in &resp.topics {
        for p in &t.partitions {
            out.insert(
                (t.name.0.as_str().to_string(), p.partition_index),
                Ongoing {
                    replicas: ids(&p.replicas),
                    adding: ids(&p.adding_replicas),
                    removing: ids(&p.removing_replicas),
                },
            );
        }
    }
    Ok(out)
}

pub(crate) fn plan_partitions(plan: &Plan) -> BTreeSet<TopicPartition> {
    plan.partitions
        .iter()
        .map(|p| (p.topic.clone(), p.partition))
        .collect()
}

/// AlterPartitionReassignments: `Some(replicas)` moves a partition, `None` cancels its move.
/// Per partition `None` (accepted) or Kafka's error; a request-level error rejects them all.
pub(crate) fn alter_reassignments(
    admin: &mut Admin,
    items: Vec<(TopicPartition, Option<Vec<i32>>)>,
) -> Result<BTreeMap<TopicPartition, Option<String>>, ClientError> {
    let mut by_topic: BTreeMap<String, Vec<ReassignablePartition>> = BTreeMap::new();
    for ((t, p), replicas) in &items {
        by_topic.entry(t.clone()).or_default().push(
            ReassignablePartition::default()
                .with_partition_index(*p)
                .with_replicas(
                    replicas
                        .as_ref()
                        .map(|r| r.iter().map(|&b| BrokerId(b)).collect()),
                ),
        );
    }
    let req = AlterPartitionReassignmentsRequest::default()
        .with_timeout_ms(admin.request_timeout_ms())
        .with_topics(
            by_topic
                .into_iter()
                .map(|(t, ps)| {
                    ReassignableTopic::default()
                        .with_name(TopicName(StrBytes::from_string(t)))
                        .with_partitions(ps)
                })
                .collect(),
        );
    let resp = admin.send_controller(&req)?;
    let describe = |code: i16, msg: &Option<StrBytes>| {
        let mut s = format!("error {code} {}", error_name(code));
        if let Some(m) = msg.as_ref().filter(|m| !m.is_empty()) {
            s.push_str(": ");
            s.push_str(m.as_str());
        }
        s
    };
    let mut out = BTreeMap::new();
    if resp.error_code != 0 {
        let e = describe(resp.error_code, &resp.error_message);
        for (tp, _) in items {
            out.insert(tp, Some(e.clone()));
        }
        return Ok(out);
    }
    for t in &resp.responses {
        for p in &t.partitions {
            let err = (p.error_code != 0).then(|| describe(p.error_code, &p.error_message));
            out.insert((t.name.0.as_str().to_string(), p.partition_index), err);
        }
    }
    Ok(out)
}

/// Puts back the throttle values the journal recorded, once (journaled as restored).
pub(crate) fn restore_throttles(
    admin: &mut Admin,
    journal: &mut Journal,
) -> Result<usize, ReassignError> {
    let state = journal.state();
    match state.throttles {
        Some((_, changes)) if !state.throttles_restored => {
            throttle::restore(admin, &changes)?;
            journal.append(Entry::ThrottlesRestored)?;
            Ok(changes.len())
        }
        _ => Ok(0),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CancelPartition {
    pub topic: String,
    pub partition: i32,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CancelReport {
    /// The plan's partitions that were moving, and whether the cancel was accepted.
    pub partitions: Vec<CancelPartition>,
    /// Plan partitions that were not moving (nothing to cancel).
    pub not_in_progress: usize,
    pub throttles_restored: usize,
}

/// Cancels the plan's reassignments still in progress (the partitions go back to their original
/// replicas) and puts back this plan's throttles.
pub fn cancel(admin: &mut Admin, plan_path: &Path) -> Result<CancelReport, ReassignError> {
    let plan = read_plan(plan_path)?;
    let all = plan_partitions(&plan);
    let ongoing = list_ongoing(admin, Some(&all))?;
    let moving: Vec<TopicPartition> = plan
        .partitions
        .iter()
        .map(|p| (p.topic.clone(), p.partition))
        .filter(|tp| ongoing.contains_key(tp))
        .collect();
    let jpath = journal::journal_path(plan_path);
    let mut journal = if jpath.exists() {
        Some(Journal::open(&jpath)?)
    } else {
        None
    };
    let mut partitions = vec![];
    if !moving.is_empty() {
        let answers =
            alter_reassignments(admin, moving.iter().map(|tp| (tp.clone(), None)).collect())?;
        for tp in &moving {
            let error = answers
                .get(tp)
                .cloned()
                .unwrap_or_else(|| Some("the controller did not answer for this partition".into()));
            partitions.push(CancelPartition {
                topic: tp.0.clone(),
                partition: tp.1,
                error,
            });
        }
        if let Some(j) = journal.as_mut() {
            let ok: Vec<JournalPartition> = partitions
                .iter()
                .filter(|p| p.error.is_none())
                .map(|p| JournalPartition {
                    topic: p.topic.clone(),
                    partition: p.partition,
                })
                .collect();
            j.append(Entry::Cancelled { partitions: ok })?;
        }
    }
    let throttles_restored = match journal.as_mut() {
        Some(j) => restore_throttles(admin, j)?,
        None => 0,
    };
    Ok(CancelReport {
        not_in_progress: all.len() - moving.len(),
        partitions,
        throttles_restored,
    })
}

/// Every reassignment in progress in the cluster, by topic and partition.
pub fn list(admin: &mut Admin) -> Result<BTreeMap<TopicPartition, Ongoing>, ClientError> {
    list_ongoing(admin, None)
}
