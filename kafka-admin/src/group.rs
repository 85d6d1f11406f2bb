//! The librdkafka side of `drkit offsets`: a group's state and members, its committed offsets,
//! log ranges, time look-ups, and the guarded commit.
//!
//! Everything goes through one consumer whose `group.id` is the group being reset and which never
//! subscribes: it never joins the group, so it cannot change the group's state, and its commits
//! are the "simple consumer" commits (generation -1) that Apache Kafka accepts only while the
//! group has no members. Kafka refuses those for an active group; not every broker does (Tansu
//! accepts them), so [`GroupClient::commit_checked`] asks for the group's state itself right
//! before committing, and reads the offsets back afterwards.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaErrorCode;
use replay::kafka::Settings;

use crate::offsets::TopicPartition;

/// A member of the group, as DescribeGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub member_id: String,
    pub client_id: String,
    pub host: String,
    /// Partitions assigned to it, decoded from the consumer protocol; `None` when the broker
    /// sent no assignment (mid-rebalance; Tansu never sends one) or bytes that are not one.
    pub assignment: Option<Vec<TopicPartition>>,
}

/// A group's state, as DescribeGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupState {
    pub group: String,
    /// Kafka's state name (`Empty`, `Stable`, `PreparingRebalance`, `CompletingRebalance`,
    /// `Dead`), or `Dead` when the coordinator does not know the group.
    pub state: String,
    pub protocol_type: String,
    pub protocol: String,
    pub members: Vec<Member>,
    /// Whether the broker listed the group at all.
    pub found: bool,
}

impl GroupState {
    /// Offsets may be changed only when no consumer can overwrite them: no members, and a state
    /// that says so. An unknown state (some brokers answer `Unknown`) is not inactive.
    pub fn is_inactive(&self) -> bool {
        self.members.is_empty() && matches!(self.state.as_str(), "Empty" | "Dead")
    }
}

/// What can go wrong talking to the group.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    /// Configuration, connection or broker errors (secret setting values scrubbed).
    #[error("{0}")]
    Client(String),
    #[error("group {group:?} is {state} with {members} member(s): offsets can only be changed while the group is Empty or Dead (stop its consumers first)")]
    Active {
        group: String,
        state: String,
        members: usize,
    },
    #[error("{tp}: the committed offset changed since the plan was made (was {}, now {}): nothing was committed; plan again", show(*planned), show(*now))]
    Changed {
        tp: TopicPartition,
        planned: Option<i64>,
        now: Option<i64>,
    },
    #[error("{tp}: committed {wanted}, but the broker now reports {}", show(*got))]
    NotApplied {
        tp: TopicPartition,
        wanted: i64,
        got: Option<i64>,
    },
    /// The broker refused the commit for a reason that means the group has members (Apache
    /// Kafka's answer to a commit into an active group): nothing was committed.
    #[error("the broker refused the commit because group {group:?} has active members ({code}): nothing was committed; stop its consumers first")]
    CommitRejected { group: String, code: String },
    #[error("topic {0:?} does not exist")]
    UnknownTopic(String),
    #[error("{tp} does not exist (the topic has {partitions} partitions)")]
    UnknownPartition {
        tp: TopicPartition,
        partitions: usize,
    },
}

fn show(o: Option<i64>) -> String {
    o.map_or_else(|| "none".to_string(), |o| o.to_string())
}

/// A consumer bound to one group, never subscribed.
pub struct GroupClient {
    consumer: BaseConsumer,
    group: String,
    settings: Settings,
    timeout: Duration,
}

impl GroupClient {
    /// Creates the client; nothing is sent until the first request. `settings` (`-X`) come last
    /// and win, except that auto-commit stays off: it would commit nothing, but must not start.
    pub fn new(
        bootstrap: &str,
        group: &str,
        settings: &Settings,
        timeout: Duration,
    ) -> Result<GroupClient, GroupError> {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", bootstrap)
            .set("group.id", group)
            .set("enable.partition.eof", "false");
        for (k, v) in &settings.0 {
            c.set(k, v);
        }
        c.set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false");
        let consumer: BaseConsumer = c
            .create()
            .map_err(|e| GroupError::Client(settings.scrub(&format!("client settings: {e}"))))?;
        Ok(GroupClient {
            consumer,
            group: group.to_string(),
            settings: settings.clone(),
            timeout,
        })
    }

    fn err(&self, what: &str, e: KafkaError) -> GroupError {
        GroupError::Client(self.settings.scrub(&format!("{what}: {e}")))
    }

    /// The group's state and members (ListGroups then DescribeGroups, through librdkafka).
    pub fn describe(&self) -> Result<GroupState, GroupError> {
        let list = self
            .consumer
            .fetch_group_list(Some(&self.group), self.timeout)
            .map_err(|e| self.err("describe group", e))?;
        let Some(g) = list.groups().iter().find(|g| g.name() == self.group) else {
            return Ok(GroupState {
                group: self.group.clone(),
                state: "Dead".to_string(),
                protocol_type: String::new(),
                protocol: String::new(),
                members: Vec::new(),
                found: false,
            });
        };
        let members = g
            .members()
            .iter()
            .map(|m| Member {
                member_id: m.id().to_string(),
                client_id: m.client_id().to_string(),
                host: m.client_host().to_string(),
                assignment: m.assignment().and_then(decode_assignment),
            })
            .collect();
        Ok(GroupState {
            group: self.group.clone(),
            state: g.state().to_string(),
            protocol_type: g.protocol_type().to_string(),
            protocol: g.protocol().to_string(),
            members,
            found: true,
        })
    }

    /// Every topic and its partition ids, from a metadata request.
    pub fn topics(&self) -> Result<BTreeMap<String, Vec<i32>>, GroupError> {
        let md = self
            .consumer
            .fetch_metadata(None, self.timeout)
            .map_err(|e| self.err("metadata", e))?;
        Ok(md
            .topics()
            .iter()
            .filter(|t| t.error().is_none())
            .map(|t| {
                let mut p: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
                p.sort_unstable();
                (t.name().to_string(), p)
            })
            .collect())
    }

    /// The partitions of `topic` (all of them, or checked to exist).
    pub fn partitions(&self, topic: &str, only: &[i32]) -> Result<Vec<TopicPartition>, GroupError> {
        let md = self
            .consumer
            .fetch_metadata(Some(topic), self.timeout)
            .map_err(|e| self.err("metadata", e))?;
        let ids: Vec<i32> = match md.topics().iter().find(|t| t.name() == topic) {
            Some(t) if t.error().is_none() && !t.partitions().is_empty() => {
                t.partitions().iter().map(|p| p.id()).collect()
            }
            _ => return Err(GroupError::UnknownTopic(topic.to_string())),
        };
        let mut out = Vec::new();
        if only.is_empty() {
            out.extend(ids.iter().map(|p| TopicPartition::new(topic, *p)));
        } else {
            for p in only {
                let tp = TopicPartition::new(topic, *p);
                if !ids.contains(p) {
                    return Err(GroupError::UnknownPartition {
                        tp,
                        partitions: ids.len(),
                    });
                }
                out.push(tp);
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// The group's committed offset for each partition (`None`: no offset committed).
    pub fn committed(
        &self,
        tps: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, Option<i64>>, GroupError> {
        if tps.is_empty() {
            return Ok(BTreeMap::new());
        }
        let mut tpl = TopicPartitionList::with_capacity(tps.len());
        for tp in tps {
            tpl.add_partition(&tp.topic, tp.partition);
        }
        let got = self
            .consumer
            .committed_offsets(tpl, self.timeout)
            .map_err(|e| self.err("committed offsets", e))?;
        let mut out = BTreeMap::new();
        for e in got.elements() {
            let tp = TopicPartition::new(e.topic(), e.partition());
            e.error()
                .map_err(|err| self.err(&format!("committed offset of {tp}"), err))?;
            let o = match e.offset() {
                Offset::Offset(o) if o >= 0 => Some(o),
                _ => None,
            };
            out.insert(tp, o);
        }
        Ok(out)
    }

    /// Every partition the group has an offset for: OffsetFetch over all partitions of all
    /// topics (librdkafka does not expose OffsetFetch's "all topics" form).
    pub fn committed_all(&self) -> Result<BTreeMap<TopicPartition, i64>, GroupError> {
        let tps: Vec<TopicPartition> = self
            .topics()?
            .into_iter()
            .flat_map(|(t, ps)| {
                ps.into_iter()
                    .map(move |p| TopicPartition::new(t.clone(), p))
            })
            .collect();
        Ok(self
            .committed(&tps)?
            .into_iter()
            .filter_map(|(tp, o)| o.map(|o| (tp, o)))
            .collect())
    }

    /// (log start, log end) of each partition.
    pub fn watermarks(
        &self,
        tps: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, (i64, i64)>, GroupError> {
        tps.iter()
            .map(|tp| {
                self.consumer
                    .fetch_watermarks(&tp.topic, tp.partition, self.timeout)
                    .map(|w| (tp.clone(), w))
                    .map_err(|e| self.err(&format!("log range of {tp}"), e))
            })
            .collect()
    }

    /// The first offset at or after `at_ms` in each partition (ListOffsets by timestamp);
    /// `None` when the broker says there is no such record.
    pub fn offsets_for_time(
        &self,
        tps: &[TopicPartition],
        at_ms: i64,
    ) -> Result<BTreeMap<TopicPartition, Option<i64>>, GroupError> {
        if tps.is_empty() {
            return Ok(BTreeMap::new());
        }
        let mut tpl = TopicPartitionList::with_capacity(tps.len());
        for tp in tps {
            tpl.add_partition_offset(&tp.topic, tp.partition, Offset::Offset(at_ms))
                .map_err(|e| self.err("time look-up", e))?;
        }
        let got = self
            .consumer
            .offsets_for_times(tpl, self.timeout)
            .map_err(|e| self.err("time look-up", e))?;
        let mut out = BTreeMap::new();
        for e in got.elements() {
            let tp = TopicPartition::new(e.topic(), e.partition());
            e.error()
                .map_err(|err| self.err(&format!("time look-up of {tp}"), err))?;
            let o = match e.offset() {
                Offset::Offset(o) if o >= 0 => Some(o),
                Offset::End => None,
                other => {
                    return Err(GroupError::Client(format!(
                        "time look-up of {tp}: unexpected answer {other:?}"
                    )))
                }
            };
            out.insert(tp, o);
        }
        Ok(out)
    }

    /// Commits `targets` only if, right now, the group is inactive and its committed offsets for
    /// every partition in `planned` are still what the plan (and the snapshot) saw; then reads
    /// them back. The state check and the commit are still two requests: a consumer joining
    /// between them makes Apache Kafka reject the commit (it takes generation -1 commits only
    /// from an empty group); a broker that accepts it anyway leaves that consumer starting from
    /// the new offsets.
    pub fn commit_checked(
        &self,
        planned: &BTreeMap<TopicPartition, Option<i64>>,
        targets: &BTreeMap<TopicPartition, i64>,
    ) -> Result<(), GroupError> {
        let keys: Vec<TopicPartition> = planned.keys().cloned().collect();
        let now = self.committed(&keys)?;
        for (tp, was) in planned {
            let is = now.get(tp).copied().flatten();
            if is != *was {
                return Err(GroupError::Changed {
                    tp: tp.clone(),
                    planned: *was,
                    now: is,
                });
            }
        }
        // The state last: the one request between it and the commit is the commit.
        let g = self.describe()?;
        if !g.is_inactive() {
            return Err(GroupError::Active {
                group: g.group,
                state: g.state,
                members: g.members.len(),
            });
        }
        if targets.is_empty() {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::with_capacity(targets.len());
        for (tp, o) in targets {
            tpl.add_partition_offset(&tp.topic, tp.partition, Offset::Offset(*o))
                .map_err(|e| self.err("commit", e))?;
        }
        self.consumer
            .commit(&tpl, CommitMode::Sync)
            .map_err(|e| match e.rdkafka_error_code() {
                Some(code) if means_active_group(code) => GroupError::CommitRejected {
                    group: self.group.clone(),
                    code: format!("{code:?}"),
                },
                _ => self.err("commit", e),
            })?;
        let keys: Vec<TopicPartition> = targets.keys().cloned().collect();
        let back = self.committed(&keys)?;
        for (tp, o) in targets {
            let got = back.get(tp).copied().flatten();
            if got != Some(*o) {
                return Err(GroupError::NotApplied {
                    tp: tp.clone(),
                    wanted: *o,
                    got,
                });
            }
        }
        Ok(())
    }
}

/// Commit errors with which a broker says the group has members, so the commit was not applied.
fn means_active_group(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::UnknownMemberId
            | RDKafkaErrorCode::IllegalGeneration
            | RDKafkaErrorCode::RebalanceInProgress
            | RDKafkaErrorCode::FencedInstanceId
    )
}

/// Reads a consumer-protocol assignment (`ConsumerProtocolAssignment`, versions 0-3: int16
/// version, then topics as int16-length names with int32 partition arrays; user data after
/// that is ignored). `None` when the bytes are not one.
pub fn decode_assignment(b: &[u8]) -> Option<Vec<TopicPartition>> {
    struct R<'a>(&'a [u8]);
    impl R<'_> {
        fn take(&mut self, n: usize) -> Option<&[u8]> {
            let (h, t) = (self.0.get(..n)?, self.0.get(n..)?);
            self.0 = t;
            Some(h)
        }
        fn i16(&mut self) -> Option<i16> {
            Some(i16::from_be_bytes(self.take(2)?.try_into().ok()?))
        }
        fn i32(&mut self) -> Option<i32> {
            Some(i32::from_be_bytes(self.take(4)?.try_into().ok()?))
        }
    }
    if b.is_empty() {
        return Some(Vec::new());
    }
    let mut r = R(b);
    if r.i16()? < 0 {
        return None;
    }
    let topics = usize::try_from(r.i32()?).ok()?;
    let mut out = Vec::new();
    for _ in 0..topics {
        let len = usize::try_from(r.i16()?).ok()?;
        let name = std::str::from_utf8(r.take(len)?).ok()?.to_string();
        let n = usize::try_from(r.i32()?).ok()?;
        if n > r.0.len() / 4 {
            return None;
        }
        for _ in 0..n {
            out.push(TopicPartition::new(name.clone(), r.i32()?));
        }
    }
    out.sort();
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assignment(topics: &[(&str, &[i32])]) -> Vec<u8> {
        let mut b = vec![0, 1];
        b.extend((topics.len() as i32).to_be_bytes());
        for (t, ps) in topics {
            b.extend((t.len() as i16).to_be_bytes());
            b.extend(t.as_bytes());
            b.extend((ps.len() as i32).to_be_bytes());
            for p in *ps {
                b.extend(p.to_be_bytes());
            }
        }
        b.extend((-1i32).to_be_bytes()); // no user data
        b
    }

    #[test]
    fn assignments_decode_and_bad_bytes_do_not() {
        let b = assignment(&[("t", &[2, 0]), ("u", &[1])]);
        assert_eq!(
            decode_assignment(&b).unwrap(),
            vec![
                TopicPartition::new("t", 0),
                TopicPartition::new("t", 2),
                TopicPartition::new("u", 1)
            ]
        );
        assert_eq!(decode_assignment(&[]), Some(vec![]));
        for cut in 1..b.len() - 4 {
            assert_eq!(decode_assignment(&b[..cut]), None, "cut at {cut}");
        }
        let mut huge = assignment(&[("t", &[0])]);
        huge[9..13].copy_from_slice(&i32::MAX.to_be_bytes());
        assert_eq!(decode_assignment(&huge), None);
    }

    #[test]
    fn commit_errors_that_mean_an_active_group() {
        assert!(means_active_group(RDKafkaErrorCode::UnknownMemberId));
        assert!(means_active_group(RDKafkaErrorCode::IllegalGeneration));
        assert!(means_active_group(RDKafkaErrorCode::RebalanceInProgress));
        assert!(!means_active_group(RDKafkaErrorCode::RequestTimedOut));
        assert!(!means_active_group(RDKafkaErrorCode::NotCoordinator));
    }

    #[test]
    fn only_empty_or_dead_groups_without_members_are_inactive() {
        let g = |state: &str, members: usize| GroupState {
            group: "g".into(),
            state: state.into(),
            protocol_type: String::new(),
            protocol: String::new(),
            members: (0..members)
                .map(|i| Member {
                    member_id: format!("m{i}"),
                    client_id: String::new(),
                    host: String::new(),
                    assignment: None,
                })
                .collect(),
            found: true,
        };
        assert!(g("Empty", 0).is_inactive());
        assert!(g("Dead", 0).is_inactive());
        for s in [
            "Stable",
            "PreparingRebalance",
            "CompletingRebalance",
            "Unknown",
            "",
        ] {
            assert!(!g(s, 0).is_inactive(), "{s}");
        }
        assert!(!g("Empty", 1).is_inactive());
    }
}
