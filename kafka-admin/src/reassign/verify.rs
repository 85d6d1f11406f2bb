//! `verify`: each plan partition's state (pure: [`status`], [`needs_election`]); when all are
//! done, preferred-leader elections and throttle removal.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::{ElectLeadersRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use serde::Serialize;

use super::journal::{self, Entry, Journal, JournalPartition, JournalState};
use super::{list_ongoing, plan_partitions, read_plan, restore_throttles, Ongoing, ReassignError};
use crate::client::{error_name, Admin, ClientError};
use crate::plan::{Assignment, TopicPartition};
use crate::topics::{self, PartitionState};

/// One partition's state against its target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Status {
    /// Replicas are the target, all in sync, nothing moving.
    Done,
    /// The controller is still moving it.
    InProgress {
        adding: Vec<i32>,
        removing: Vec<i32>,
    },
    /// Replicas are the target but some are not in sync yet.
    NotInSync { missing: Vec<i32> },
    /// Not moving and not at the target: never submitted, rejected, or cancelled.
    Mismatch,
    /// The partition is not in the cluster's metadata.
    Missing,
}

/// The state of a partition with `target` replicas, given its metadata and ongoing move.
pub fn status(target: &[i32], meta: Option<&PartitionState>, ongoing: Option<&Ongoing>) -> Status {
    if let Some(o) = ongoing {
        return Status::InProgress {
            adding: o.adding.clone(),
            removing: o.removing.clone(),
        };
    }
    let Some(m) = meta else {
        return Status::Missing;
    };
    if m.replicas != target {
        return Status::Mismatch;
    }
    let missing: Vec<i32> = target
        .iter()
        .filter(|b| !m.isr.contains(b))
        .copied()
        .collect();
    if missing.is_empty() {
        Status::Done
    } else {
        Status::NotInSync { missing }
    }
}

/// The partitions whose leader is not the preferred (first) replica.
pub fn needs_election(parts: &[(TopicPartition, Vec<i32>, Option<i32>)]) -> Vec<TopicPartition> {
    parts
        .iter()
        .filter(|(_, target, leader)| target.first().copied() != *leader)
        .map(|(tp, _, _)| tp.clone())
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyPartition {
    pub topic: String,
    pub partition: i32,
    pub target: Vec<i32>,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub leader: Option<i32>,
    #[serde(flatten)]
    pub status: Status,
}

/// A preferred-leader election's outcome for one partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Election {
    pub topic: String,
    pub partition: i32,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    pub partitions: Vec<VerifyPartition>,
    pub elections: Vec<Election>,
    /// Config values put back (0 when there were none or the plan is not done).
    pub throttles_restored: usize,
    pub journal: Option<PathBuf>,
}

impl VerifyReport {
    pub fn done(&self) -> bool {
        self.partitions.iter().all(|p| p.status == Status::Done)
    }

    pub fn clean(&self) -> bool {
        self.done() && self.elections.iter().all(|e| e.error.is_none())
    }
}

/// Checks every plan partition; when all are done, elects preferred leaders where needed and
/// puts back the throttle configs this plan's journal records.
pub fn verify(admin: &mut Admin, plan_path: &Path) -> Result<VerifyReport, ReassignError> {
    let plan = read_plan(plan_path)?;
    let topics: Vec<String> = plan
        .partitions
        .iter()
        .map(|p| p.topic.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let (_, parts) = topics::assignment_of(admin, &topics)?;
    let meta: BTreeMap<TopicPartition, PartitionState> = parts
        .into_iter()
        .map(|p| ((p.topic.clone(), p.partition), p))
        .collect();
    let all = plan_partitions(&plan);
    let ongoing = list_ongoing(admin, Some(&all))?;
    let partitions: Vec<VerifyPartition> = plan
        .partitions
        .iter()
        .map(|p| {
            let tp = (p.topic.clone(), p.partition);
            let m = meta.get(&tp);
            VerifyPartition {
                topic: p.topic.clone(),
                partition: p.partition,
                target: p.replicas.clone(),
                replicas: m.map(|m| m.replicas.clone()).unwrap_or_default(),
                isr: m.map(|m| m.isr.clone()).unwrap_or_default(),
                leader: m.and_then(|m| m.leader),
                status: status(&p.replicas, m, ongoing.get(&tp)),
            }
        })
        .collect();
    let jpath = journal::journal_path(plan_path);
    let has_journal = jpath.exists();
    let mut report = VerifyReport {
        partitions,
        elections: vec![],
        throttles_restored: 0,
        journal: has_journal.then(|| jpath.clone()),
    };
    if !report.done() {
        return Ok(report);
    }
    // Only partitions this plan moved (or reordered) get an election; without the rollback
    // file to tell, every plan partition whose leader is not its first replica does.
    let original: Option<Assignment> = has_journal
        .then(|| journal::read(&jpath).ok())
        .flatten()
        .and_then(|entries| JournalState::fold(&entries).rollback)
        .and_then(|p| read_plan(Path::new(&p)).ok())
        .map(|p| p.assignment());
    let elect = needs_election(
        &report
            .partitions
            .iter()
            .filter(|p| match &original {
                Some(o) => o.get(&(p.topic.clone(), p.partition)) != Some(&p.target),
                None => true,
            })
            .map(|p| ((p.topic.clone(), p.partition), p.target.clone(), p.leader))
            .collect::<Vec<_>>(),
    );
    if !elect.is_empty() {
        report.elections = elect_preferred(admin, &elect)?;
    }
    if has_journal {
        let mut journal = Journal::open(&jpath)?;
        let ok: Vec<JournalPartition> = report
            .elections
            .iter()
            .filter(|e| e.error.is_none())
            .map(|e| JournalPartition {
                topic: e.topic.clone(),
                partition: e.partition,
            })
            .collect();
        if !ok.is_empty() {
            journal.append(Entry::LeadersElected { partitions: ok })?;
        }
        report.throttles_restored = restore_throttles(admin, &mut journal)?;
    }
    Ok(report)
}

/// ElectLeaders (PREFERRED). ELECTION_NOT_NEEDED counts as success.
fn elect_preferred(
    admin: &mut Admin,
    tps: &[TopicPartition],
) -> Result<Vec<Election>, ClientError> {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (t, p) in tps {
        by_topic.entry(t.as_str()).or_default().push(*p);
    }
    let req = ElectLeadersRequest::default()
        .with_election_type(0)
        .with_timeout_ms(admin.request_timeout_ms())
        .with_topic_partitions(Some(
            by_topic
                .into_iter()
                .map(|(t, ps)| {
                    TopicPartitions::default()
                        .with_topic(TopicName(StrBytes::from_string(t.to_string())))
                        .with_partitions(ps)
                })
                .collect(),
        ));
    let resp = admin.send_controller(&req)?;
    if resp.error_code != 0 {
        return Err(ClientError::Broker {
            addr: admin.addr_of(admin.controller().unwrap_or(-1)),
            api: "ElectLeaders".into(),
            code: resp.error_code,
            message: None,
        });
    }
    let mut answered = BTreeMap::new();
    for r in &resp.replica_election_results {
        for p in &r.partition_result {
            let err = (p.error_code != 0 && p.error_code != 84).then(|| {
                format!(
                    "error {} {}{}",
                    p.error_code,
                    error_name(p.error_code),
                    p.error_message
                        .as_ref()
                        .map(|m| format!(": {}", m.as_str()))
                        .unwrap_or_default()
                )
            });
            answered.insert((r.topic.0.as_str().to_string(), p.partition_id), err);
        }
    }
    Ok(tps
        .iter()
        .map(|tp| Election {
            topic: tp.0.clone(),
            partition: tp.1,
            error: answered
                .remove(tp)
                .unwrap_or_else(|| Some("the controller did not answer for this partition".into())),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(t: &str, p: i32) -> TopicPartition {
        (t.to_string(), p)
    }

    #[test]
    fn status_and_elections() {
        let m = |replicas: Vec<i32>, isr: Vec<i32>, leader| PartitionState {
            topic: "t".into(),
            partition: 0,
            leader,
            leader_epoch: 0,
            replicas,
            isr,
            offline: vec![],
            log_start: None,
            log_end: None,
            error: None,
        };
        assert_eq!(
            status(&[3, 2], Some(&m(vec![3, 2], vec![2, 3], Some(2))), None),
            Status::Done
        );
        assert_eq!(
            status(&[3, 2], Some(&m(vec![3, 2], vec![2], Some(2))), None),
            Status::NotInSync { missing: vec![3] }
        );
        assert_eq!(
            status(&[3, 2], Some(&m(vec![1, 2], vec![1, 2], Some(1))), None),
            Status::Mismatch
        );
        assert_eq!(status(&[3, 2], None, None), Status::Missing);
        let o = Ongoing {
            replicas: vec![3, 2, 1],
            adding: vec![3],
            removing: vec![1],
        };
        assert!(matches!(
            status(
                &[3, 2],
                Some(&m(vec![3, 2, 1], vec![2, 1], Some(1))),
                Some(&o)
            ),
            Status::InProgress { .. }
        ));
        assert_eq!(
            needs_election(&[
                (tp("t", 0), vec![3, 2], Some(2)),
                (tp("t", 1), vec![2, 3], Some(2)),
            ]),
            vec![tp("t", 0)]
        );
    }
}
