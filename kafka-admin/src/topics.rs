//! Partition state as the cluster reports it: leader, replicas, in-sync and offline replicas
//! (Metadata) and the log range (ListOffsets earliest/latest, asked of each leader). This is the
//! runbook's "identify damaged partitions" step, and the live input of `reassign generate`.
//!
//! Metadata goes through the kafka-protocol client rather than librdkafka because librdkafka's
//! metadata API drops the offline-replica list, the one field that tells a dead disk from a slow
//! follower.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{BrokerId, ListOffsetsRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use serde::Serialize;

use crate::client::{error_name, Admin, ClientError};
use crate::plan::Assignment;

/// One partition's state. Broker ids as the cluster reports them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionState {
    pub topic: String,
    pub partition: i32,
    /// `None` when the partition has no leader (unavailable).
    pub leader: Option<i32>,
    pub leader_epoch: i32,
    /// Preferred leader first.
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub offline: Vec<i32>,
    /// First offset still in the log (ListOffsets earliest); `None` if it could not be read.
    pub log_start: Option<i64>,
    /// The high watermark (ListOffsets latest); `None` if it could not be read.
    pub log_end: Option<i64>,
    /// Why the partition's metadata or offsets could not be read, in Kafka's words.
    pub error: Option<String>,
}

impl PartitionState {
    /// Fewer in-sync replicas than replicas (Kafka's `--under-replicated-partitions`).
    pub fn under_replicated(&self) -> bool {
        self.isr.len() < self.replicas.len()
    }

    /// No leader: nobody can read or write it (Kafka's `--unavailable-partitions`).
    pub fn unavailable(&self) -> bool {
        self.leader.is_none()
    }
}

/// Which topics and what to read.
#[derive(Debug, Clone, Default)]
pub struct DescribeOptions {
    /// Only these topics (empty: all).
    pub topics: Vec<String>,
    /// Skip ListOffsets (faster on large clusters; `log_start`/`log_end` stay `None`).
    pub skip_offsets: bool,
}

/// The partitions of `opts.topics` (or of every topic), sorted by topic and partition.
/// A topic that does not exist is an error naming it.
pub fn describe(
    admin: &mut Admin,
    opts: &DescribeOptions,
) -> Result<Vec<PartitionState>, ClientError> {
    let topics = (!opts.topics.is_empty()).then_some(opts.topics.as_slice());
    let meta = admin.metadata(topics)?;
    let mut parts = partitions_from_metadata(&meta, admin)?;
    if !opts.skip_offsets {
        read_log_ranges(admin, &mut parts)?;
    }
    Ok(parts)
}

/// The brokers (with racks) and the current assignment of `topics` (empty: every topic, internal
/// ones excluded): what `reassign generate` plans from.
pub fn brokers_and_assignment(
    admin: &mut Admin,
    topics: &[String],
) -> Result<(BTreeMap<i32, Option<String>>, Assignment), ClientError> {
    let meta = admin.metadata((!topics.is_empty()).then_some(topics))?;
    let internal: BTreeSet<String> = meta
        .topics
        .iter()
        .filter(|t| t.is_internal && topics.is_empty())
        .filter_map(|t| t.name.as_ref().map(|n| n.0.as_str().to_string()))
        .collect();
    let parts = partitions_from_metadata(&meta, admin)?;
    let brokers = admin
        .brokers()
        .values()
        .map(|b| (b.id, b.rack.clone()))
        .collect();
    let assignment = parts
        .into_iter()
        .filter(|p| !internal.contains(&p.topic))
        .map(|p| ((p.topic, p.partition), p.replicas))
        .collect();
    Ok((brokers, assignment))
}

/// Current assignment of exactly these partitions' topics, plus the set of live broker ids:
/// the inputs of [`crate::plan::Plan::check_against`].
pub fn assignment_of(
    admin: &mut Admin,
    topics: &[String],
) -> Result<(BTreeSet<i32>, Vec<PartitionState>), ClientError> {
    let meta = admin.metadata(Some(topics))?;
    // A missing topic is left out here: the plan check reports it with the plan's partition.
    Ok((
        admin.brokers().keys().copied().collect(),
        known_partitions(&meta),
    ))
}

fn known_partitions(meta: &MetadataResponse) -> Vec<PartitionState> {
    let mut out = vec![];
    for t in meta.topics.iter().filter(|t| t.error_code == 0) {
        let topic = t
            .name
            .as_ref()
            .map(|n| n.0.as_str().to_string())
            .unwrap_or_default();
        for p in &t.partitions {
            out.push(state_of(&topic, p));
        }
    }
    out.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    out
}

fn state_of(
    topic: &str,
    p: &kafka_protocol::messages::metadata_response::MetadataResponsePartition,
) -> PartitionState {
    let ids = |v: &[BrokerId]| v.iter().map(|b| b.0).collect::<Vec<_>>();
    PartitionState {
        topic: topic.to_string(),
        partition: p.partition_index,
        leader: (p.leader_id.0 >= 0).then_some(p.leader_id.0),
        leader_epoch: p.leader_epoch,
        replicas: ids(&p.replica_nodes),
        isr: ids(&p.isr_nodes),
        offline: ids(&p.offline_replicas),
        log_start: None,
        log_end: None,
        // LEADER_NOT_AVAILABLE is what "no leader" looks like; the leader field says it.
        error: (p.error_code != 0 && p.error_code != 5).then(|| error_name(p.error_code)),
    }
}

/// Partitions from a Metadata answer. A topic-level error (unknown topic) is an error naming the
/// topic; partition-level errors are kept on the partition.
pub fn partitions_from_metadata(
    meta: &MetadataResponse,
    admin: &Admin,
) -> Result<Vec<PartitionState>, ClientError> {
    let mut out = vec![];
    for t in &meta.topics {
        let topic = t
            .name
            .as_ref()
            .map(|n| n.0.as_str().to_string())
            .unwrap_or_default();
        if t.error_code != 0 {
            return Err(ClientError::Broker {
                addr: admin.addr_of(admin.controller().unwrap_or(-1)),
                api: "Metadata".into(),
                code: t.error_code,
                message: Some(format!("topic {topic}")),
            });
        }
        for p in &t.partitions {
            out.push(state_of(&topic, p));
        }
    }
    out.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    Ok(out)
}

/// Log start, log end, and why they could not be read.
type LogRange = (Option<i64>, Option<i64>, Option<String>);

/// Earliest and latest offsets, one ListOffsets per leader and per end (Kafka refuses a
/// partition twice in one request). A leader that cannot answer marks its partitions' `error`
/// and the others go on.
fn read_log_ranges(admin: &mut Admin, parts: &mut [PartitionState]) -> Result<(), ClientError> {
    let mut by_leader: BTreeMap<i32, BTreeMap<String, Vec<i32>>> = BTreeMap::new();
    for p in parts.iter().filter(|p| p.error.is_none()) {
        if let Some(l) = p.leader {
            by_leader
                .entry(l)
                .or_default()
                .entry(p.topic.clone())
                .or_default()
                .push(p.partition);
        }
    }
    let mut found: BTreeMap<(String, i32), LogRange> = BTreeMap::new();
    for (leader, topics) in by_leader {
        for (ts, is_start) in [(-2i64, true), (-1i64, false)] {
            let req = ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_topics(
                    topics
                        .iter()
                        .map(|(t, ps)| {
                            ListOffsetsTopic::default()
                                .with_name(TopicName(StrBytes::from_string(t.clone())))
                                .with_partitions(
                                    ps.iter()
                                        .map(|&p| {
                                            ListOffsetsPartition::default()
                                                .with_partition_index(p)
                                                .with_current_leader_epoch(-1)
                                                .with_timestamp(ts)
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                );
            match admin.send_to(leader, &req) {
                Ok(resp) => {
                    for t in &resp.topics {
                        for p in &t.partitions {
                            let e = found
                                .entry((t.name.0.as_str().to_string(), p.partition_index))
                                .or_default();
                            if p.error_code != 0 {
                                e.2 = Some(format!("ListOffsets: {}", error_name(p.error_code)));
                            } else if is_start {
                                e.0 = Some(p.offset);
                            } else {
                                e.1 = Some(p.offset);
                            }
                        }
                    }
                }
                Err(err) => {
                    for (t, ps) in &topics {
                        for &p in ps {
                            found.entry((t.clone(), p)).or_default().2 = Some(err.to_string());
                        }
                    }
                }
            }
        }
    }
    for p in parts.iter_mut() {
        if let Some((start, end, err)) = found.remove(&(p.topic.clone(), p.partition)) {
            p.log_start = start;
            p.log_end = end;
            if p.error.is_none() {
                p.error = err;
            }
        }
    }
    Ok(())
}
