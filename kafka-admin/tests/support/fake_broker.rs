//! A PROTOCOL FAKE of a Kafka cluster, for the admin requests Tansu does not implement
//! (AlterPartitionReassignments, ListPartitionReassignments, ElectLeaders) and for states Tansu
//! cannot produce (offline replicas, leaderless partitions). It is not a broker: it decodes
//! requests with kafka-protocol's message types and answers from a scripted cluster state held in
//! memory, on 127.0.0.1:0. Every broker of the scripted cluster is advertised at the fake's one
//! address, so "connect to broker 3" reaches the same responder.
//!
//! Knobs: per-partition rejections, reassignments that finish after being listed N times, a
//! dropped connection instead of the Nth answer to an API, NOT_CONTROLLER answers, and a log of
//! what was asked. Security, because no TLS/SASL-capable broker runs here (Tansu 0.1.2's
//! `--cert`/`--key` cannot be given together, and with `--authentication` its in-memory store
//! refuses `tansu user create` itself): a TLS listener (rustls, with the committed test CA in
//! tests/fixtures/tls) and SASL PLAIN/SCRAM (support/fake_sasl.rs).

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

#[path = "fake_sasl.rs"]
pub mod fake_sasl;
use fake_sasl::{FakeSasl, Round, SaslConn};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, Message, StrBytes};

pub type Tp = (String, i32);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakePartition {
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    /// -1: no leader.
    pub leader: i32,
    pub offline: Vec<i32>,
    pub log_start: i64,
    pub log_end: i64,
}

impl FakePartition {
    /// A healthy partition: all replicas in sync, the first one leading.
    pub fn healthy(replicas: &[i32]) -> FakePartition {
        FakePartition {
            replicas: replicas.to_vec(),
            isr: replicas.to_vec(),
            leader: replicas[0],
            offline: vec![],
            log_start: 0,
            log_end: 0,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Moving {
    pub original: Vec<i32>,
    pub target: Vec<i32>,
    pub lists_seen: u32,
}

/// What the fake was asked to change, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Logged {
    /// AlterPartitionReassignments: partitions and targets (None = cancel).
    Alter(Vec<(Tp, Option<Vec<i32>>)>),
    /// IncrementalAlterConfigs: resource type, name, key, operation, value.
    Config(i8, String, String, i8, Option<String>),
    Elect(Vec<Tp>),
}

#[derive(Debug, Default)]
pub struct FakeState {
    pub brokers: BTreeMap<i32, Option<String>>,
    pub controller: i32,
    pub topics: BTreeMap<String, Vec<FakePartition>>,
    pub moving: BTreeMap<Tp, Moving>,
    /// Dynamic config values by (resource type, name).
    pub configs: BTreeMap<(i8, String), BTreeMap<String, String>>,
    /// AlterPartitionReassignments answers this error code for these partitions.
    pub reject: BTreeMap<Tp, i16>,
    /// A reassignment completes once it has been shown by this many ListPartitionReassignments
    /// answers (None: only `complete_all` finishes it).
    pub complete_after_lists: Option<u32>,
    /// Close the connection instead of answering the n-th (1-based) request with this API key.
    pub drop_on: Option<(i16, usize)>,
    /// Carry out the n-th request with this API key, then close the connection instead of
    /// answering (the answer is lost).
    pub drop_after: Option<(i16, usize)>,
    pub counts: BTreeMap<i16, usize>,
    pub log: Vec<Logged>,
    /// APIs left out of the ApiVersions answer.
    pub unsupported: BTreeSet<i16>,
    /// Answer NOT_CONTROLLER to the next n requests with this API key (reassignments and
    /// elections), moving the controller to the next broker each time, as after a failover.
    pub not_controller: BTreeMap<i16, usize>,
    /// Require SASL: until a connection has authenticated, anything but ApiVersions and the SASL
    /// requests closes it (as Kafka does).
    pub sasl: Option<FakeSasl>,
}

impl FakeState {
    /// Brokers without racks, the first one the controller.
    pub fn cluster(brokers: &[i32]) -> FakeState {
        FakeState {
            brokers: brokers.iter().map(|&b| (b, None)).collect(),
            controller: brokers[0],
            ..FakeState::default()
        }
    }

    pub fn topic(mut self, name: &str, parts: Vec<FakePartition>) -> FakeState {
        self.topics.insert(name.to_string(), parts);
        self
    }

    pub fn partition(&self, topic: &str, p: i32) -> &FakePartition {
        &self.topics[topic][p as usize]
    }

    fn part_mut(&mut self, tp: &Tp) -> Option<&mut FakePartition> {
        self.topics
            .get_mut(&tp.0)
            .and_then(|ps| ps.get_mut(tp.1 as usize))
    }

    /// Finishes every reassignment: replicas become the target, all in sync; the leader stays
    /// where it was if it is still a replica (so a preferred election can be needed).
    pub fn complete_all(&mut self) {
        let done: Vec<Tp> = self.moving.keys().cloned().collect();
        for tp in done {
            self.finish(&tp);
        }
    }

    fn finish(&mut self, tp: &Tp) {
        if let Some(m) = self.moving.remove(tp) {
            if let Some(p) = self.part_mut(tp) {
                p.replicas = m.target.clone();
                p.isr = m.target.clone();
                if !m.target.contains(&p.leader) {
                    p.leader = m.target[0];
                }
            }
        }
    }

    /// Dynamic value of a config, if set.
    pub fn config(&self, rtype: i8, name: &str, key: &str) -> Option<String> {
        self.configs
            .get(&(rtype, name.to_string()))
            .and_then(|c| c.get(key))
            .cloned()
    }

    pub fn alters(&self) -> Vec<Vec<(Tp, Option<Vec<i32>>)>> {
        self.log
            .iter()
            .filter_map(|l| match l {
                Logged::Alter(a) => Some(a.clone()),
                _ => None,
            })
            .collect()
    }

    pub fn config_ops(&self) -> Vec<(i8, String, String, i8, Option<String>)> {
        self.log
            .iter()
            .filter_map(|l| match l {
                Logged::Config(a, b, c, d, e) => Some((*a, b.clone(), c.clone(), *d, e.clone())),
                _ => None,
            })
            .collect()
    }
}

pub struct FakeCluster {
    pub addr: String,
    state: Arc<Mutex<FakeState>>,
}

/// A file of tests/fixtures/tls (see its README).
pub fn tls_fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../kafka-admin/tests/fixtures/tls")
        .join(name)
}

/// How the fake's listener speaks TLS.
pub struct FakeTls {
    /// The host name the fake advertises (and `addr` uses); the certificate is for
    /// `localhost` only.
    pub host: &'static str,
    /// Require a client certificate signed by the test CA (mutual TLS).
    pub client_auth: bool,
}

fn server_tls(t: &FakeTls) -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = if t.client_auth {
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(tls_fixture("ca.pem")).unwrap() {
            roots.add(c.unwrap()).unwrap();
        }
        builder.with_client_cert_verifier(
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap(),
        )
    } else {
        builder.with_no_client_auth()
    };
    let chain = CertificateDer::pem_file_iter(tls_fixture("server.pem"))
        .unwrap()
        .map(|c| c.unwrap())
        .collect();
    let key = PrivateKeyDer::from_pem_file(tls_fixture("server.key")).unwrap();
    Arc::new(builder.with_single_cert(chain, key).unwrap())
}

impl FakeCluster {
    pub fn start(state: FakeState) -> FakeCluster {
        FakeCluster::listen(state, "127.0.0.1", None)
    }

    /// A TLS listener (with SASL too if `state.sasl` is set: SASL_SSL).
    pub fn start_tls(state: FakeState, tls: FakeTls) -> FakeCluster {
        let config = server_tls(&tls);
        FakeCluster::listen(state, tls.host, Some(config))
    }

    fn listen(state: FakeState, host: &str, tls: Option<Arc<rustls::ServerConfig>>) -> FakeCluster {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = format!("{host}:{}", listener.local_addr().unwrap().port());
        let state = Arc::new(Mutex::new(state));
        let s = state.clone();
        let a = addr.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let s = s.clone();
                let a = a.clone();
                let tls = tls.clone();
                std::thread::spawn(move || match tls {
                    None => serve(conn, &s, &a),
                    Some(cfg) => {
                        let Ok(server) = rustls::ServerConnection::new(cfg) else {
                            return;
                        };
                        serve(rustls::StreamOwned::new(server, conn), &s, &a)
                    }
                });
            }
        });
        FakeCluster { addr, state }
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut FakeState) -> R) -> R {
        f(&mut self.state.lock().unwrap())
    }
}

fn serve<S: Read + Write>(mut conn: S, state: &Mutex<FakeState>, addr: &str) {
    let mut sasl = SaslConn::default();
    let mut session_ends: Option<std::time::Instant> = None;
    loop {
        let mut len = [0u8; 4];
        if conn.read_exact(&mut len).is_err() {
            return;
        }
        let len = u32::from_be_bytes(len) as usize;
        // Kafka's socket.request.max.bytes (100 MiB): a bigger "request" (a TLS ClientHello read
        // as a length) makes the broker close the connection.
        if len > 100 << 20 {
            return;
        }
        let mut body = vec![0u8; len];
        if conn.read_exact(&mut body).is_err() {
            return;
        }
        let mut body = Bytes::from(body);
        let header =
            kafka_protocol::protocol::decode_request_header_from_buffer(&mut body).unwrap();
        let key = header.request_api_key;
        let version = header.request_api_version;
        if session_ends.is_some_and(|t| std::time::Instant::now() >= t) {
            return;
        }
        let answer = {
            let mut st = state.lock().unwrap();
            let n = {
                let c = st.counts.entry(key).or_default();
                *c += 1;
                *c
            };
            if st.drop_on == Some((key, n)) {
                None
            } else if let Some(cfg) = st.sasl.clone().filter(|_| !sasl.authenticated) {
                let a = authenticate(&mut sasl, &cfg, key, version, &mut body);
                // The session starts when authentication is done (and answered).
                if sasl.authenticated && cfg.session_lifetime_ms > 0 {
                    session_ends = Some(
                        std::time::Instant::now()
                            + std::time::Duration::from_millis(cfg.session_lifetime_ms as u64),
                    );
                }
                a.or_else(|| {
                    (key == ApiKey::ApiVersions as i16)
                        .then(|| answer(&mut st, key, version, &mut body, addr))
                        .flatten()
                })
            } else {
                let a = answer(&mut st, key, version, &mut body, addr);
                if st.drop_after == Some((key, n)) {
                    None
                } else {
                    a
                }
            }
        };
        let Some(out) = answer else {
            // Like a broker that does not implement the request: close the connection (by
            // dropping it).
            return;
        };
        let api = ApiKey::try_from(key).unwrap();
        let mut buf = BytesMut::new();
        ResponseHeader::default()
            .with_correlation_id(header.correlation_id)
            .encode(&mut buf, api.response_header_version(version))
            .unwrap();
        buf.extend_from_slice(&out);
        let mut frame = (buf.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(&buf);
        if conn.write_all(&frame).is_err() {
            return;
        }
    }
}

/// The SASL requests of a connection not yet authenticated; None (close) for anything else
/// but ApiVersions, which the caller answers.
fn authenticate(
    conn: &mut SaslConn,
    cfg: &FakeSasl,
    key: i16,
    v: i16,
    body: &mut Bytes,
) -> Option<BytesMut> {
    match ApiKey::try_from(key).ok()? {
        ApiKey::SaslHandshake => {
            let req = SaslHandshakeRequest::decode(body, v).unwrap();
            let ok = conn.handshake(cfg, req.mechanism.as_str());
            enc(
                &SaslHandshakeResponse::default()
                    .with_error_code(if ok { 0 } else { 33 })
                    .with_mechanisms(vec![s(cfg.mechanism.name())]),
                v,
            )
        }
        ApiKey::SaslAuthenticate => {
            let req = SaslAuthenticateRequest::decode(body, v).unwrap();
            let resp = match conn.authenticate(cfg, &req.auth_bytes) {
                Round::Continue(b) => {
                    SaslAuthenticateResponse::default().with_auth_bytes(Bytes::from(b))
                }
                Round::Done(b) => SaslAuthenticateResponse::default()
                    .with_auth_bytes(Bytes::from(b))
                    .with_session_lifetime_ms(cfg.session_lifetime_ms),
                Round::Failed(m) => SaslAuthenticateResponse::default()
                    .with_error_code(58)
                    .with_error_message(Some(s(&m))),
            };
            enc(&resp, v)
        }
        _ => None,
    }
}

fn s(x: &str) -> StrBytes {
    StrBytes::from_string(x.to_string())
}

fn enc<T: Encodable>(m: &T, v: i16) -> Option<BytesMut> {
    let mut b = BytesMut::new();
    m.encode(&mut b, v).unwrap();
    Some(b)
}

const HANDLED: [ApiKey; 11] = [
    ApiKey::SaslHandshake,
    ApiKey::SaslAuthenticate,
    ApiKey::ApiVersions,
    ApiKey::Metadata,
    ApiKey::ListOffsets,
    ApiKey::DescribeConfigs,
    ApiKey::IncrementalAlterConfigs,
    ApiKey::AlterPartitionReassignments,
    ApiKey::ListPartitionReassignments,
    ApiKey::ElectLeaders,
    ApiKey::DescribeCluster,
];

fn answer(st: &mut FakeState, key: i16, v: i16, body: &mut Bytes, addr: &str) -> Option<BytesMut> {
    let api = ApiKey::try_from(key).ok()?;
    let (host, port) = addr.rsplit_once(':').unwrap();
    let port: i32 = port.parse().unwrap();
    if let Some(n) = st.not_controller.get_mut(&key).filter(|n| **n > 0) {
        *n -= 1;
        let ids: Vec<i32> = st.brokers.keys().copied().collect();
        let next = ids
            .iter()
            .position(|&b| b == st.controller)
            .map_or(0, |i| i + 1);
        st.controller = ids[next % ids.len()];
        let msg = Some(s("this broker is not the controller"));
        return match api {
            ApiKey::AlterPartitionReassignments => enc(
                &AlterPartitionReassignmentsResponse::default()
                    .with_error_code(41)
                    .with_error_message(msg),
                v,
            ),
            ApiKey::ListPartitionReassignments => enc(
                &ListPartitionReassignmentsResponse::default()
                    .with_error_code(41)
                    .with_error_message(msg),
                v,
            ),
            ApiKey::ElectLeaders => enc(&ElectLeadersResponse::default().with_error_code(41), v),
            _ => None,
        };
    }
    match api {
        ApiKey::ApiVersions => {
            if v > ApiVersionsRequest::VERSIONS.max {
                return enc(&ApiVersionsResponse::default().with_error_code(35), 0);
            }
            let keys = HANDLED
                .iter()
                .filter(|k| !st.unsupported.contains(&(**k as i16)))
                .map(|k| {
                    let r = k.valid_versions();
                    ApiVersion::default()
                        .with_api_key(*k as i16)
                        .with_min_version(r.min)
                        .with_max_version(r.max)
                })
                .collect();
            enc(&ApiVersionsResponse::default().with_api_keys(keys), v)
        }
        ApiKey::Metadata => {
            let req = MetadataRequest::decode(body, v).unwrap();
            let names: Vec<String> = match &req.topics {
                None => st.topics.keys().cloned().collect(),
                Some(ts) => ts
                    .iter()
                    .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
                    .collect(),
            };
            let topics = names
                .iter()
                .map(|n| match st.topics.get(n) {
                    None => MetadataResponseTopic::default()
                        .with_name(Some(TopicName(s(n))))
                        .with_error_code(3),
                    Some(ps) => MetadataResponseTopic::default()
                        .with_name(Some(TopicName(s(n))))
                        .with_partitions(
                            ps.iter()
                                .enumerate()
                                .map(|(i, p)| {
                                    let ids = |v: &[i32]| v.iter().map(|&b| BrokerId(b)).collect();
                                    MetadataResponsePartition::default()
                                        .with_partition_index(i as i32)
                                        .with_error_code(if p.leader < 0 { 5 } else { 0 })
                                        .with_leader_id(BrokerId(p.leader))
                                        .with_replica_nodes(ids(&p.replicas))
                                        .with_isr_nodes(ids(&p.isr))
                                        .with_offline_replicas(ids(&p.offline))
                                })
                                .collect(),
                        ),
                })
                .collect();
            let brokers = st
                .brokers
                .iter()
                .map(|(id, rack)| {
                    MetadataResponseBroker::default()
                        .with_node_id(BrokerId(*id))
                        .with_host(s(host))
                        .with_port(port)
                        .with_rack(rack.as_deref().map(s))
                })
                .collect();
            enc(
                &MetadataResponse::default()
                    .with_brokers(brokers)
                    .with_controller_id(BrokerId(st.controller))
                    .with_topics(topics),
                v,
            )
        }
        ApiKey::DescribeCluster => {
            let _ = DescribeClusterRequest::decode(body, v).unwrap();
            let brokers = st
                .brokers
                .iter()
                .map(|(id, rack)| {
                    DescribeClusterBroker::default()
                        .with_broker_id(BrokerId(*id))
                        .with_host(s(host))
                        .with_port(port)
                        .with_rack(rack.as_deref().map(s))
                })
                .collect();
            enc(
                &DescribeClusterResponse::default()
                    .with_controller_id(BrokerId(st.controller))
                    .with_brokers(brokers),
                v,
            )
        }
        ApiKey::ListOffsets => {
            let req = ListOffsetsRequest::decode(body, v).unwrap();
            let topics = req
                .topics
                .iter()
                .map(|t| {
                    let name = t.name.0.to_string();
                    ListOffsetsTopicResponse::default()
                        .with_name(t.name.clone())
                        .with_partitions(
                            t.partitions
                                .iter()
                                .map(|p| {
                                    let r = ListOffsetsPartitionResponse::default()
                                        .with_partition_index(p.partition_index);
                                    match st
                                        .topics
                                        .get(&name)
                                        .and_then(|ps| ps.get(p.partition_index as usize))
                                    {
                                        None => r.with_error_code(3),
                                        Some(fp) => r.with_offset(if p.timestamp == -2 {
                                            fp.log_start
                                        } else {
                                            fp.log_end
                                        }),
                                    }
                                })
                                .collect(),
                        )
                })
                .collect();
            enc(&ListOffsetsResponse::default().with_topics(topics), v)
        }
        ApiKey::DescribeConfigs => {
            let req = DescribeConfigsRequest::decode(body, v).unwrap();
            let results = req
                .resources
                .iter()
                .map(|r| {
                    let name = r.resource_name.to_string();
                    let have = st
                        .configs
                        .get(&(r.resource_type, name.clone()))
                        .cloned()
                        .unwrap_or_default();
                    let dynamic = if r.resource_type == 4 { 2 } else { 1 };
                    let configs = r
                        .configuration_keys
                        .clone()
                        .unwrap_or_default()
                        .iter()
                        .map(|k| {
                            let k = k.to_string();
                            let c = DescribeConfigsResourceResult::default().with_name(s(&k));
                            match have.get(&k) {
                                Some(val) => c.with_value(Some(s(val))).with_config_source(dynamic),
                                // A default: not something to restore.
                                None => c
                                    .with_value(Some(s(if k.ends_with("rate") {
                                        "9223372036854775807"
                                    } else {
                                        ""
                                    })))
                                    .with_config_source(5),
                            }
                        })
                        .collect();
                    DescribeConfigsResult::default()
                        .with_resource_type(r.resource_type)
                        .with_resource_name(r.resource_name.clone())
                        .with_configs(configs)
                })
                .collect();
            enc(&DescribeConfigsResponse::default().with_results(results), v)
        }
        ApiKey::IncrementalAlterConfigs => {
            let req = IncrementalAlterConfigsRequest::decode(body, v).unwrap();
            let mut responses = vec![];
            for r in &req.resources {
                let name = r.resource_name.to_string();
                for c in &r.configs {
                    let key = c.name.to_string();
                    let val = c.value.as_ref().map(|x| x.to_string());
                    st.log.push(Logged::Config(
                        r.resource_type,
                        name.clone(),
                        key.clone(),
                        c.config_operation,
                        val.clone(),
                    ));
                    let m = st
                        .configs
                        .entry((r.resource_type, name.clone()))
                        .or_default();
                    match c.config_operation {
                        0 => {
                            m.insert(key, val.unwrap_or_default());
                        }
                        1 => {
                            m.remove(&key);
                        }
                        // APPEND/SUBTRACT crash Tansu; the fake hangs up on them.
                        _ => return None,
                    }
                }
                responses.push(
                    AlterConfigsResourceResponse::default()
                        .with_resource_type(r.resource_type)
                        .with_resource_name(r.resource_name.clone()),
                );
            }
            enc(
                &IncrementalAlterConfigsResponse::default().with_responses(responses),
                v,
            )
        }
        ApiKey::AlterPartitionReassignments => {
            let req = AlterPartitionReassignmentsRequest::decode(body, v).unwrap();
            let mut logged = vec![];
            let mut responses = vec![];
            for t in &req.topics {
                let topic = t.name.0.to_string();
                let mut parts = vec![];
                for p in &t.partitions {
                    let tp = (topic.clone(), p.partition_index);
                    let target: Option<Vec<i32>> =
                        p.replicas.as_ref().map(|r| r.iter().map(|b| b.0).collect());
                    logged.push((tp.clone(), target.clone()));
                    let code = if let Some(&c) = st.reject.get(&tp) {
                        c
                    } else if st.part_mut(&tp).is_none() {
                        3
                    } else {
                        match target {
                            None => match st.moving.remove(&tp) {
                                None => 85,
                                Some(m) => {
                                    let p = st.part_mut(&tp).unwrap();
                                    p.replicas = m.original.clone();
                                    p.isr = m.original.clone();
                                    0
                                }
                            },
                            Some(target) => {
                                let original = match st.moving.get(&tp) {
                                    Some(m) => m.original.clone(),
                                    None => st.part_mut(&tp).unwrap().replicas.clone(),
                                };
                                let p = st.part_mut(&tp).unwrap();
                                let mut all = target.clone();
                                all.extend(original.iter().filter(|b| !target.contains(b)));
                                p.replicas = all;
                                p.isr = original.clone();
                                st.moving.insert(
                                    tp.clone(),
                                    Moving {
                                        original,
                                        target,
                                        lists_seen: 0,
                                    },
                                );
                                0
                            }
                        }
                    };
                    parts.push(
                        ReassignablePartitionResponse::default()
                            .with_partition_index(p.partition_index)
                            .with_error_code(code),
                    );
                }
                responses.push(
                    ReassignableTopicResponse::default()
                        .with_name(t.name.clone())
                        .with_partitions(parts),
                );
            }
            st.log.push(Logged::Alter(logged));
            enc(
                &AlterPartitionReassignmentsResponse::default().with_responses(responses),
                v,
            )
        }
        ApiKey::ListPartitionReassignments => {
            let req = ListPartitionReassignmentsRequest::decode(body, v).unwrap();
            if let Some(n) = st.complete_after_lists {
                let done: Vec<Tp> = st
                    .moving
                    .iter()
                    .filter(|(_, m)| m.lists_seen >= n)
                    .map(|(tp, _)| tp.clone())
                    .collect();
                for tp in done {
                    st.finish(&tp);
                }
            }
            let wanted: Option<BTreeSet<Tp>> = req.topics.as_ref().map(|ts| {
                ts.iter()
                    .flat_map(|t| {
                        t.partition_indexes
                            .iter()
                            .map(move |p| (t.name.0.to_string(), *p))
                    })
                    .collect()
            });
            let mut by_topic: BTreeMap<String, Vec<OngoingPartitionReassignment>> = BTreeMap::new();
            for (tp, m) in st.moving.iter_mut() {
                if wanted.as_ref().is_some_and(|w| !w.contains(tp)) {
                    continue;
                }
                m.lists_seen += 1;
                let mut all = m.target.clone();
                all.extend(m.original.iter().filter(|b| !m.target.contains(b)));
                let ids = |v: Vec<i32>| v.into_iter().map(BrokerId).collect();
                by_topic.entry(tp.0.clone()).or_default().push(
                    OngoingPartitionReassignment::default()
                        .with_partition_index(tp.1)
                        .with_replicas(ids(all))
                        .with_adding_replicas(ids(m
                            .target
                            .iter()
                            .filter(|b| !m.original.contains(b))
                            .copied()
                            .collect()))
                        .with_removing_replicas(ids(m
                            .original
                            .iter()
                            .filter(|b| !m.target.contains(b))
                            .copied()
                            .collect())),
                );
            }
            let topics = by_topic
                .into_iter()
                .map(|(t, ps)| {
                    OngoingTopicReassignment::default()
                        .with_name(TopicName(s(&t)))
                        .with_partitions(ps)
                })
                .collect();
            enc(
                &ListPartitionReassignmentsResponse::default().with_topics(topics),
                v,
            )
        }
        ApiKey::ElectLeaders => {
            let req = ElectLeadersRequest::decode(body, v).unwrap();
            let mut logged = vec![];
            let mut results = vec![];
            for t in req.topic_partitions.clone().unwrap_or_default() {
                let topic = t.topic.0.to_string();
                let mut prs = vec![];
                for p in &t.partitions {
                    let tp = (topic.clone(), *p);
                    logged.push(tp.clone());
                    let code = match st.part_mut(&tp) {
                        None => 3,
                        Some(fp) if fp.leader == fp.replicas[0] => 84,
                        Some(fp) => {
                            fp.leader = fp.replicas[0];
                            0
                        }
                    };
                    prs.push(
                        PartitionResult::default()
                            .with_partition_id(*p)
                            .with_error_code(code),
                    );
                }
                results.push(
                    ReplicaElectionResult::default()
                        .with_topic(t.topic.clone())
                        .with_partition_result(prs),
                );
            }
            st.log.push(Logged::Elect(logged));
            enc(
                &ElectLeadersResponse::default().with_replica_election_results(results),
                v,
            )
        }
        _ => None,
    }
}
