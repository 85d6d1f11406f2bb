//! Kafka's reassignment plan JSON, read and written exactly as `kafka-reassign-partitions.sh`
//! does, so a plan drkit writes can be handed to Kafka's tool and the other way round:
//!
//! ```text
//! {"version":1,"partitions":[
//!   {"topic":"telemetry","partition":0,"replicas":[1,2,3],"log_dirs":["any","any","any"]}]}
//! ```
//!
//! `log_dirs` is optional; when present it has one entry per replica (`"any"` = broker's choice).
//! Reading checks the shape only (version, non-empty replica lists, no broker twice in one list,
//! no partition twice); [`Plan::check_against`] checks it against a cluster.
//!
//! Also here: the other inputs of Kafka's tool, parsed the same way for `drkit reassign
//! generate` (the `--topics-to-move-json-file` document and the `1,2,3` broker-list syntax),
//! plus drkit's `1=a,2=b` racks and `3:7` replacements.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `(topic, partition)`: the key every plan, assignment and journal is ordered by.
pub type TopicPartition = (String, i32);

/// Which brokers hold a partition's replicas, preferred leader first.
pub type Assignment = BTreeMap<TopicPartition, Vec<i32>>;

/// One partition's target in a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanPartition {
    pub topic: String,
    pub partition: i32,
    pub replicas: Vec<i32>,
    /// One per replica, `"any"` for the broker's choice. Absent means all `"any"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_dirs: Option<Vec<String>>,
}

/// A reassignment plan (or a rollback file: the same format holding the current assignment).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub version: i32,
    pub partitions: Vec<PlanPartition>,
}

/// Why a plan cannot be used. Messages name the topic-partition and the broker.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    #[error("{path}: {reason}")]
    Read { path: String, reason: String },
    #[error("not a reassignment plan: {0}")]
    Syntax(String),
    #[error("plan version {0} is not supported (Kafka's tools write version 1)")]
    Version(i32),
    #[error("{topic}-{partition}: empty replica list")]
    EmptyReplicas { topic: String, partition: i32 },
    #[error("{topic}-{partition}: broker {broker} appears twice in the replica list")]
    DuplicateBroker {
        topic: String,
        partition: i32,
        broker: i32,
    },
    #[error("{topic}-{partition}: listed twice in the plan")]
    DuplicatePartition { topic: String, partition: i32 },
    #[error("{topic}-{partition}: {dirs} log_dirs for {replicas} replicas")]
    LogDirs {
        topic: String,
        partition: i32,
        dirs: usize,
        replicas: usize,
    },
    #[error("{topic}-{partition}: negative partition number")]
    NegativePartition { topic: String, partition: i32 },
    #[error("{topic}-{partition}: broker {broker} is not in the cluster")]
    UnknownBroker {
        topic: String,
        partition: i32,
        broker: i32,
    },
    #[error("topic {topic} does not exist (partition {partition} in the plan)")]
    UnknownTopic { topic: String, partition: i32 },
    #[error("{topic}-{partition}: partition does not exist")]
    UnknownPartition { topic: String, partition: i32 },
    #[error(
        "{topic}-{partition}: replication factor would change from {current} to {planned} \
         (a reassignment keeps it)"
    )]
    ReplicationFactor {
        topic: String,
        partition: i32,
        current: usize,
        planned: usize,
    },
    #[error("not a broker id: {text:?} (expected a non-negative integer)")]
    BrokerId { text: String },
    #[error("broker {0} is listed twice")]
    BrokerListedTwice(i32),
    #[error("not BROKER=RACK: {text:?}")]
    Rack { text: String },
    #[error("not OLD:NEW: {text:?}")]
    Replace { text: String },
    #[error("the list of topics to move is empty")]
    NoTopics,
}

impl Plan {
    /// Parses and checks the shape of a plan (see the module docs).
    pub fn parse(text: &str) -> Result<Plan, PlanError> {
        let v: Value = serde_json::from_str(text).map_err(|e| PlanError::Syntax(e.to_string()))?;
        let plan: Plan = serde_json::from_value(v).map_err(|e| PlanError::Syntax(e.to_string()))?;
        plan.check_shape()?;
        Ok(plan)
    }

    /// Reads a plan file; errors name the file.
    pub fn read(path: &Path) -> Result<Plan, PlanError> {
        let text = std::fs::read_to_string(path).map_err(|e| PlanError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Plan::parse(&text).map_err(|e| PlanError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })
    }

    /// A plan moving every partition of `assignment` to where it is (a rollback file).
    pub fn from_assignment(assignment: &Assignment) -> Plan {
        Plan {
            version: 1,
            partitions: assignment
                .iter()
                .map(|((topic, partition), replicas)| PlanPartition {
                    topic: topic.clone(),
                    partition: *partition,
                    replicas: replicas.clone(),
                    log_dirs: Some(vec!["any".to_string(); replicas.len()]),
                })
                .collect(),
        }
    }

    /// The plan's targets keyed by topic-partition (the shape check guarantees no duplicates).
    pub fn assignment(&self) -> Assignment {
        self.partitions
            .iter()
            .map(|p| ((p.topic.clone(), p.partition), p.replicas.clone()))
            .collect()
    }

    /// Kafka's layout: one partition per line, so plans diff well and stay greppable.
    pub fn to_json(&self) -> String {
        let mut out = format!("{{\"version\":{},\"partitions\":[", self.version);
        for (i, p) in self.partitions.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push('\n');
            // Serialising a struct of strings and integers cannot fail.
            out.push_str(&serde_json::to_string(p).unwrap_or_default());
        }
        out.push_str("\n]}\n");
        out
    }

    fn check_shape(&self) -> Result<(), PlanError> {
        if self.version != 1 {
            return Err(PlanError::Version(self.version));
        }
        let mut seen = BTreeSet::new();
        for p in &self.partitions {
            let (topic, partition) = (p.topic.clone(), p.partition);
            if p.partition < 0 {
                return Err(PlanError::NegativePartition { topic, partition });
            }
            if p.replicas.is_empty() {
                return Err(PlanError::EmptyReplicas { topic, partition });
            }
            let mut brokers = BTreeSet::new();
            for &b in &p.replicas {
                if !brokers.insert(b) {
                    return Err(PlanError::DuplicateBroker {
                        topic,
                        partition,
                        broker: b,
                    });
                }
            }
            if let Some(dirs) = &p.log_dirs {
                if dirs.len() != p.replicas.len() {
                    return Err(PlanError::LogDirs {
                        topic,
                        partition,
                        dirs: dirs.len(),
                        replicas: p.replicas.len(),
                    });
                }
            }
            if !seen.insert((p.topic.as_str(), p.partition)) {
                return Err(PlanError::DuplicatePartition { topic, partition });
            }
        }
        Ok(())
    }

    /// Checks the plan against a cluster: every broker exists, every partition exists, and no
    /// replication factor changes. The first problem is returned.
    pub fn check_against(
        &self,
        current: &Assignment,
        brokers: &BTreeSet<i32>,
    ) -> Result<(), PlanError> {
        let topics: BTreeSet<&str> = current.keys().map(|(t, _)| t.as_str()).collect();
        for p in &self.partitions {
            let (topic, partition) = (p.topic.clone(), p.partition);
            if !topics.contains(p.topic.as_str()) {
                return Err(PlanError::UnknownTopic { topic, partition });
            }
            let Some(now) = current.get(&(p.topic.clone(), p.partition)) else {
                return Err(PlanError::UnknownPartition { topic, partition });
            };
            if let Some(&broker) = p.replicas.iter().find(|b| !brokers.contains(b)) {
                return Err(PlanError::UnknownBroker {
                    topic,
                    partition,
                    broker,
                });
            }
            if now.len() != p.replicas.len() {
                return Err(PlanError::ReplicationFactor {
                    topic,
                    partition,
                    current: now.len(),
                    planned: p.replicas.len(),
                });
            }
        }
        Ok(())
    }
}

/// Kafka's `--topics-to-move-json-file` format: `{"version":1,"topics":[{"topic":"foo"}]}`.
#[derive(Debug, Deserialize)]
struct TopicsToMove {
    version: i32,
    topics: Vec<TopicEntry>,
}

#[derive(Debug, Deserialize)]
struct TopicEntry {
    topic: String,
}

/// Parses a topics-to-move document. A topic listed twice is the same request, so it is kept
/// once; an empty list is an error because it would silently plan nothing.
pub fn parse_topics_to_move(text: &str) -> Result<BTreeSet<String>, PlanError> {
    let doc: TopicsToMove =
        serde_json::from_str(text).map_err(|e| PlanError::Syntax(e.to_string()))?;
    if doc.version != 1 {
        return Err(PlanError::Version(doc.version));
    }
    let topics: BTreeSet<String> = doc.topics.into_iter().map(|t| t.topic).collect();
    if topics.is_empty() {
        return Err(PlanError::NoTopics);
    }
    Ok(topics)
}

/// Reads a topics-to-move file; errors name the file.
pub fn read_topics_to_move(path: &Path) -> Result<BTreeSet<String>, PlanError> {
    let named = |reason: String| PlanError::Read {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| named(e.to_string()))?;
    parse_topics_to_move(&text).map_err(|e| named(e.to_string()))
}

fn broker_id(text: &str) -> Result<i32, PlanError> {
    text.trim()
        .parse::<i32>()
        .ok()
        .filter(|b| *b >= 0)
        .ok_or_else(|| PlanError::BrokerId {
            text: text.to_string(),
        })
}

/// `1,2,3` (Kafka's `--broker-list` syntax). Order is kept; a broker twice is an error because it
/// usually means a typo for another id.
pub fn parse_broker_list(text: &str) -> Result<Vec<i32>, PlanError> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for part in text.split(',') {
        let b = broker_id(part)?;
        if !seen.insert(b) {
            return Err(PlanError::BrokerListedTwice(b));
        }
        out.push(b);
    }
    Ok(out)
}

/// `1=a,2=b`: each broker's rack.
pub fn parse_racks(text: &str) -> Result<BTreeMap<i32, String>, PlanError> {
    let mut out = BTreeMap::new();
    for part in text.split(',') {
        let bad = || PlanError::Rack {
            text: part.to_string(),
        };
        let (b, rack) = part.split_once('=').ok_or_else(bad)?;
        let rack = rack.trim();
        if rack.is_empty() {
            return Err(bad());
        }
        let b = broker_id(b)?;
        if out.insert(b, rack.to_string()).is_some() {
            return Err(PlanError::BrokerListedTwice(b));
        }
    }
    Ok(out)
}

/// `3:7,4:8`: replace broker 3 by 7 and 4 by 8.
pub fn parse_replace(text: &str) -> Result<Vec<(i32, i32)>, PlanError> {
    let mut out = Vec::new();
    for part in text.split(',') {
        let (old, new) = part.split_once(':').ok_or_else(|| PlanError::Replace {
            text: part.to_string(),
        })?;
        out.push((broker_id(old)?, broker_id(new)?));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kafkas_format_and_writes_it_back() {
        let text = r#"{"version":1,"partitions":[
            {"topic":"t","partition":0,"replicas":[1,2],"log_dirs":["any","/d"]},
            {"topic":"t","partition":1,"replicas":[2,3]}]}"#;
        let plan = Plan::parse(text).unwrap();
        assert_eq!(plan.partitions.len(), 2);
        assert_eq!(plan.partitions[1].log_dirs, None);
        assert_eq!(Plan::parse(&plan.to_json()).unwrap(), plan);
        let a = plan.assignment();
        assert_eq!(a[&("t".to_string(), 1)], vec![2, 3]);
        let back = Plan::from_assignment(&a);
        assert_eq!(
            back.partitions[0].log_dirs.as_ref().unwrap(),
            &["any", "any"]
        );
    }

    #[test]
    fn shape_errors_are_named() {
        let bad = |s: &str| Plan::parse(s).unwrap_err();
        assert_eq!(
            bad(r#"{"version":2,"partitions":[]}"#),
            PlanError::Version(2)
        );
        assert!(matches!(
            bad(r#"{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[]}]}"#),
            PlanError::EmptyReplicas { .. }
        ));
        assert!(matches!(
            bad(r#"{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1,1]}]}"#),
            PlanError::DuplicateBroker { broker: 1, .. }
        ));
        assert!(matches!(
            bad(
                r#"{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1]},{"topic":"t","partition":0,"replicas":[2]}]}"#
            ),
            PlanError::DuplicatePartition { .. }
        ));
        assert!(matches!(
            bad(
                r#"{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1],"log_dirs":[]}]}"#
            ),
            PlanError::LogDirs { .. }
        ));
        assert!(matches!(bad("[1,2]"), PlanError::Syntax(_)));
        let e = bad(r#"{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1,1]}]}"#);
        assert_eq!(
            e.to_string(),
            "t-0: broker 1 appears twice in the replica list"
        );
    }

    #[test]
    fn checked_against_the_cluster() {
        let current: Assignment = [(("t".to_string(), 0), vec![1, 2])].into_iter().collect();
        let brokers: BTreeSet<i32> = [1, 2, 3].into_iter().collect();
        let plan = |s: &str| Plan::parse(s).unwrap();
        let ok =
            plan(r#"{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[3,2]}]}"#);
        assert_eq!(ok.check_against(&current, &brokers), Ok(()));
        let e = |s: &str| plan(s).check_against(&current, &brokers).unwrap_err();
        assert!(matches!(
            e(r#"{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[4,2]}]}"#),
            PlanError::UnknownBroker { broker: 4, .. }
        ));
        assert!(matches!(
            e(r#"{"version":1,"partitions":[{"topic":"u","partition":0,"replicas":[1,2]}]}"#),
            PlanError::UnknownTopic { .. }
        ));
        assert!(matches!(
            e(r#"{"version":1,"partitions":[{"topic":"t","partition":5,"replicas":[1,2]}]}"#),
            PlanError::UnknownPartition { .. }
        ));
        assert!(matches!(
            e(r#"{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1,2,3]}]}"#),
            PlanError::ReplicationFactor {
                current: 2,
                planned: 3,
                ..
            }
        ));
    }

    #[test]
    fn topics_to_move_and_flag_lists() {
        let t = parse_topics_to_move(
            r#"{"version":1,"topics":[{"topic":"b"},{"topic":"a"},{"topic":"b"}]}"#,
        )
        .unwrap();
        assert_eq!(t.into_iter().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(
            parse_topics_to_move(r#"{"version":1,"topics":[]}"#),
            Err(PlanError::NoTopics)
        );
        assert_eq!(
            parse_topics_to_move(r#"{"version":3,"topics":[{"topic":"a"}]}"#),
            Err(PlanError::Version(3))
        );
        assert!(matches!(
            parse_topics_to_move(r#"{"version":1,"topics":[{"name":"a"}]}"#),
            Err(PlanError::Syntax(_))
        ));

        assert_eq!(parse_broker_list("3, 1,2").unwrap(), [3, 1, 2]);
        assert_eq!(
            parse_broker_list("1,2,1"),
            Err(PlanError::BrokerListedTwice(1))
        );
        assert_eq!(
            parse_broker_list("1,x").unwrap_err().to_string(),
            "not a broker id: \"x\" (expected a non-negative integer)"
        );
        assert!(parse_broker_list("-1").is_err());
        assert!(parse_broker_list("").is_err());

        let r = parse_racks("1=a,2=b").unwrap();
        assert_eq!(r[&2], "b");
        assert!(matches!(parse_racks("1=a,2"), Err(PlanError::Rack { .. })));
        assert!(matches!(parse_racks("1="), Err(PlanError::Rack { .. })));
        assert_eq!(parse_racks("1=a,1=b"), Err(PlanError::BrokerListedTwice(1)));

        assert_eq!(parse_replace("3:7,4:8").unwrap(), [(3, 7), (4, 8)]);
        assert!(matches!(
            parse_replace("3-7"),
            Err(PlanError::Replace { .. })
        ));
        assert!(matches!(
            parse_replace("3:x"),
            Err(PlanError::BrokerId { .. })
        ));
    }
}
