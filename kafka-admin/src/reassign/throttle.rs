//! Replication throttles as Kafka's reassignment tool sets them: the leader and follower
//! `replication.throttled.rate` on every broker a moving partition touches, and per topic the
//! `leader.replication.throttled.replicas` (partition:broker of the current replicas) and
//! `follower.replication.throttled.replicas` (partition:broker of the added replicas).
//!
//! Always IncrementalAlterConfigs SET or DELETE, never APPEND/SUBTRACT: a SET of a value computed
//! here is idempotent (a resumed run may repeat it), and values that were already there are
//! remembered and put back, not lost.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{DescribeConfigsRequest, IncrementalAlterConfigsRequest};
use kafka_protocol::protocol::StrBytes;

use super::journal::ConfigChange;
use crate::client::{Admin, ClientError};
use crate::plan::TopicPartition;

pub const LEADER_RATE: &str = "leader.replication.throttled.rate";
pub const FOLLOWER_RATE: &str = "follower.replication.throttled.rate";
pub const LEADER_REPLICAS: &str = "leader.replication.throttled.replicas";
pub const FOLLOWER_REPLICAS: &str = "follower.replication.throttled.replicas";

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
/// DescribeConfigs `config_source`: a value set on this topic / on this broker.
const DYNAMIC_TOPIC_CONFIG: i8 = 1;
const DYNAMIC_BROKER_CONFIG: i8 = 2;

/// A partition that moves data: its current and target replicas differ as sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    pub tp: TopicPartition,
    pub current: Vec<i32>,
    pub target: Vec<i32>,
}

/// The config keys to read before throttling `moves`: (resource, name, key).
pub fn keys_to_read(moves: &[Move]) -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for m in moves {
        for b in m.current.iter().chain(&m.target) {
            for k in [LEADER_RATE, FOLLOWER_RATE] {
                out.insert(("broker".into(), b.to_string(), k.to_string()));
            }
        }
        for k in [LEADER_REPLICAS, FOLLOWER_REPLICAS] {
            out.insert(("topic".into(), m.tp.0.clone(), k.to_string()));
        }
    }
    out
}

/// The throttle values to set for `moves` at `rate` bytes/s, given the values found before
/// (keyed as [`keys_to_read`]; absent = not set). Replica lists already on a topic are kept and
/// extended (`*`, "every replica", stays `*`).
pub fn changes(
    moves: &[Move],
    rate: u64,
    previous: &BTreeMap<(String, String, String), String>,
) -> Vec<ConfigChange> {
    let mut leaders: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut followers: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut brokers = BTreeSet::new();
    for m in moves {
        let p = m.tp.1;
        let l = leaders.entry(m.tp.0.as_str()).or_default();
        for b in &m.current {
            l.push(format!("{p}:{b}"));
        }
        let f = followers.entry(m.tp.0.as_str()).or_default();
        for b in m.target.iter().filter(|b| !m.current.contains(b)) {
            f.push(format!("{p}:{b}"));
        }
        brokers.extend(m.current.iter().chain(&m.target).copied());
    }
    let mut out = vec![];
    let prev = |r: &str, n: &str, k: &str| {
        previous
            .get(&(r.to_string(), n.to_string(), k.to_string()))
            .cloned()
    };
    for b in brokers {
        for key in [LEADER_RATE, FOLLOWER_RATE] {
            out.push(ConfigChange {
                resource: "broker".into(),
                name: b.to_string(),
                key: key.into(),
                previous: prev("broker", &b.to_string(), key),
                value: rate.to_string(),
            });
        }
    }
    for (key, lists) in [(LEADER_REPLICAS, &leaders), (FOLLOWER_REPLICAS, &followers)] {
        for (topic, ours) in lists {
            let before = prev("topic", topic, key);
            out.push(ConfigChange {
                resource: "topic".into(),
                name: topic.to_string(),
                key: key.into(),
                value: merge_replica_list(before.as_deref(), ours),
                previous: before,
            });
        }
    }
    out
}

/// `existing` (comma-separated `partition:broker`, or `*`) extended with `ours`, without
/// duplicates, in order.
fn merge_replica_list(existing: Option<&str>, ours: &[String]) -> String {
    let existing = existing.map(str::trim).unwrap_or("");
    if existing == "*" {
        return "*".into();
    }
    let mut seen = BTreeSet::new();
    let mut out = vec![];
    for e in existing
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .chain(ours.iter().cloned())
    {
        if seen.insert(e.clone()) {
            out.push(e);
        }
    }
    out.join(",")
}

/// Reads the current dynamic values of `keys`: topics from any broker, each broker's own config
/// from that broker. Values that are only defaults or static settings count as absent (a DELETE
/// is what restores them).
pub fn read_previous(
    admin: &mut Admin,
    keys: &BTreeSet<(String, String, String)>,
) -> Result<BTreeMap<(String, String, String), String>, ClientError> {
    let mut by_resource: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for (r, n, k) in keys {
        by_resource
            .entry((r.clone(), n.clone()))
            .or_default()
            .push(k.clone());
    }
    let mut out = BTreeMap::new();
    for ((r, n), ks) in by_resource {
        let (rtype, dynamic) = if r == "broker" {
            (BROKER, DYNAMIC_BROKER_CONFIG)
        } else {
            (TOPIC, DYNAMIC_TOPIC_CONFIG)
        };
        let req = DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(rtype)
                .with_resource_name(StrBytes::from_string(n.clone()))
                .with_configuration_keys(Some(
                    ks.iter()
                        .map(|k| StrBytes::from_string(k.clone()))
                        .collect(),
                )),
        ]);
        let resp = send(admin, &r, &n, &req)?;
        for res in &resp.results {
            if res.error_code != 0 {
                return Err(ClientError::Broker {
                    addr: addr(admin, &r, &n),
                    api: "DescribeConfigs".into(),
                    code: res.error_code,
                    message: Some(format!("{r} {n}")),
                });
            }
            for c in &res.configs {
                if c.config_source == dynamic {
                    if let Some(v) = &c.value {
                        out.insert(
                            (r.clone(), n.clone(), c.name.as_str().to_string()),
                            v.as_str().to_string(),
                        );
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Sets every change's `value`.
pub fn apply(admin: &mut Admin, changes: &[ConfigChange]) -> Result<(), ClientError> {
    alter(
        admin,
        changes
            .iter()
            .map(|c| (c, OP_SET, Some(c.value.clone())))
            .collect(),
    )
}

/// Puts back what was there before: SET the previous value, or DELETE when there was none.
pub fn restore(admin: &mut Admin, changes: &[ConfigChange]) -> Result<(), ClientError> {
    alter(
        admin,
        changes
            .iter()
            .map(|c| match &c.previous {
                Some(v) => (c, OP_SET, Some(v.clone())),
                None => (c, OP_DELETE, None),
            })
            .collect(),
    )
}

fn alter(
    admin: &mut Admin,
    ops: Vec<(&ConfigChange, i8, Option<String>)>,
) -> Result<(), ClientError> {
    let mut by_resource: BTreeMap<(String, String), Vec<AlterableConfig>> = BTreeMap::new();
    for (c, op, value) in ops {
        by_resource
            .entry((c.resource.clone(), c.name.clone()))
            .or_default()
            .push(
                AlterableConfig::default()
                    .with_name(StrBytes::from_string(c.key.clone()))
                    .with_config_operation(op)
                    .with_value(value.map(StrBytes::from_string)),
            );
    }
    for ((r, n), configs) in by_resource {
        let rtype = if r == "broker" { BROKER } else { TOPIC };
        let req = IncrementalAlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(rtype)
                .with_resource_name(StrBytes::from_string(n.clone()))
                .with_configs(configs),
        ]);
        let resp = send(admin, &r, &n, &req)?;
        for res in &resp.responses {
            if res.error_code != 0 {
                return Err(ClientError::Broker {
                    addr: addr(admin, &r, &n),
                    api: "IncrementalAlterConfigs".into(),
                    code: res.error_code,
                    message: Some(format!(
                        "{r} {n}{}",
                        res.error_message
                            .as_ref()
                            .map(|m| format!(": {}", m.as_str()))
                            .unwrap_or_default()
                    )),
                });
            }
        }
    }
    Ok(())
}

/// Broker configs go to that broker (a per-broker dynamic config is that broker's business);
/// topic configs to any broker.
fn send<R: kafka_protocol::protocol::Request>(
    admin: &mut Admin,
    resource: &str,
    name: &str,
    req: &R,
) -> Result<R::Response, ClientError>
where
    R::Response: crate::client::ControllerAnswer,
{
    match (resource, name.parse::<i32>()) {
        ("broker", Ok(id)) => admin.send_to(id, req),
        _ => admin.send_controller(req),
    }
}

fn addr(admin: &Admin, resource: &str, name: &str) -> String {
    match (resource, name.parse::<i32>()) {
        ("broker", Ok(id)) => admin.addr_of(id),
        _ => admin.addr_of(admin.controller().unwrap_or(-1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttles_follow_kafkas_layout_and_keep_what_was_there() {
        let moves = vec![
            Move {
                tp: ("t".into(), 0),
                current: vec![1, 2],
                target: vec![3, 2],
            },
            Move {
                tp: ("t".into(), 1),
                current: vec![2, 1],
                target: vec![2, 4],
            },
        ];
        let keys = keys_to_read(&moves);
        assert_eq!(keys.len(), 4 * 2 + 2);
        let prev: BTreeMap<_, _> = [
            (
                (
                    "broker".to_string(),
                    "1".to_string(),
                    LEADER_RATE.to_string(),
                ),
                "5000".to_string(),
            ),
            (
                (
                    "topic".to_string(),
                    "t".to_string(),
                    LEADER_REPLICAS.to_string(),
                ),
                "7:9,0:1".to_string(),
            ),
        ]
        .into_iter()
        .collect();
        let c = changes(&moves, 1000, &prev);
        let get = |r: &str, n: &str, k: &str| {
            c.iter()
                .find(|c| c.resource == r && c.name == n && c.key == k)
                .unwrap()
                .clone()
        };
        let b1 = get("broker", "1", LEADER_RATE);
        assert_eq!(
            (b1.previous.as_deref(), b1.value.as_str()),
            (Some("5000"), "1000")
        );
        assert_eq!(get("broker", "4", FOLLOWER_RATE).previous, None);
        let l = get("topic", "t", LEADER_REPLICAS);
        assert_eq!(l.value, "7:9,0:1,0:2,1:2,1:1");
        assert_eq!(l.previous.as_deref(), Some("7:9,0:1"));
        let f = get("topic", "t", FOLLOWER_REPLICAS);
        assert_eq!((f.value.as_str(), f.previous), ("0:3,1:4", None));
        assert_eq!(c.len(), 4 * 2 + 2);
        assert_eq!(merge_replica_list(Some("*"), &["0:1".into()]), "*");
    }
}
