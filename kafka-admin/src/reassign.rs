//! Carrying out a reassignment plan: `execute` (rollback file first, throttles, batches, a
//! journal to resume from), `verify` (done when every target replica is in sync; then preferred
//! leaders and throttle removal), `cancel` and `list` — Kafka's `kafka-reassign-partitions.sh`
//! semantics over the kafka-protocol client.
//!
//! The decisions (what to submit, in which batch, what a partition's state means) are pure
//! functions over plain data ([`classify`], [`batches`], [`status`]); the functions that talk to
//! the cluster only gather data, call them, and record what they did in the journal.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kafka_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::list_partition_reassignments_request::ListPartitionReassignmentsTopics;
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, BrokerId, ElectLeadersRequest,
    ListPartitionReassignmentsRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use serde::Serialize;

use crate::client::{error_name, Admin, ClientError};
use crate::plan::{Assignment, Plan, PlanError, TopicPartition};
use crate::topics::{self, PartitionState};

pub mod journal;
pub mod throttle;

use journal::{Entry, Journal, JournalPartition, JournalState};
use throttle::Move;

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

/// What `execute` does with one plan partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Send it (never sent, rejected before, or the answer was lost and it is not moving).
    Submit,
    /// This journal records the controller accepted it.
    Accepted,
    /// Moving to this plan's target already (a resumed run, or the same plan run elsewhere).
    InProgress,
    /// Already where the plan puts it and nothing moving: nothing to send.
    InPlace,
}

/// Decides each plan partition's action. A partition moving somewhere else than the plan says is
/// a conflict: the whole run is refused, naming every such partition.
pub fn classify(
    plan: &Plan,
    state: &JournalState,
    ongoing: &BTreeMap<TopicPartition, Ongoing>,
    current: &Assignment,
) -> Result<Vec<(TopicPartition, Action)>, ReassignError> {
    let mut out = vec![];
    let mut conflicts = vec![];
    for p in &plan.partitions {
        let tp = (p.topic.clone(), p.partition);
        let target: BTreeSet<i32> = p.replicas.iter().copied().collect();
        let action = if let Some(o) = ongoing.get(&tp) {
            if o.target() != target {
                conflicts.push(format!(
                    "{}-{} is being moved to {:?}, not to the plan's {:?}",
                    tp.0,
                    tp.1,
                    o.target(),
                    p.replicas
                ));
                continue;
            }
            Action::InProgress
        } else if state.accepted.contains(&tp) {
            Action::Accepted
        } else if current.get(&tp) == Some(&p.replicas) {
            Action::InPlace
        } else {
            Action::Submit
        };
        out.push((tp, action));
    }
    if conflicts.is_empty() {
        Ok(out)
    } else {
        Err(ReassignError::Refused(format!(
            "another reassignment is in progress: {} (cancel it or wait)",
            conflicts.join("; ")
        )))
    }
}

/// The plan's partitions in batches of `size`, in plan order (batch numbers start at 1 and are
/// stable across runs of the same plan).
pub fn batches(plan: &Plan, size: usize) -> Vec<Vec<TopicPartition>> {
    plan.partitions
        .chunks(size.max(1))
        .map(|c| c.iter().map(|p| (p.topic.clone(), p.partition)).collect())
        .collect()
}

/// `execute` settings, validated by the caller.
#[derive(Debug, Clone)]
pub struct ExecuteOptions {
    pub plan: PathBuf,
    /// Default: `<plan>.rollback.json`.
    pub rollback: Option<PathBuf>,
    /// Bytes per second per broker; None: no throttle.
    pub throttle: Option<u64>,
    /// Partitions per batch; None: all at once.
    pub batch: Option<usize>,
    /// How long to wait for a batch to finish before giving up (the run can be resumed).
    pub batch_timeout: Duration,
    /// How often to ask the controller while waiting.
    pub poll: Duration,
}

/// What is happening, for a progress line (the library never prints).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    Resuming {
        journal: PathBuf,
    },
    RollbackWritten {
        path: PathBuf,
    },
    ThrottlesSet {
        rate: u64,
        configs: usize,
    },
    BatchSubmitted {
        batch: usize,
        batches: usize,
        partitions: usize,
    },
    Waiting {
        batch: usize,
        moving: usize,
    },
}

impl std::fmt::Display for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Progress::Resuming { journal } => {
                write!(f, "resuming from {}", journal.display())
            }
            Progress::RollbackWritten { path } => {
                write!(f, "rollback plan written to {}", path.display())
            }
            Progress::ThrottlesSet { rate, configs } => {
                write!(f, "throttle {rate} B/s set ({configs} config values)")
            }
            Progress::BatchSubmitted {
                batch,
                batches,
                partitions,
            } => write!(
                f,
                "batch {batch}/{batches}: {partitions} partitions submitted"
            ),
            Progress::Waiting { batch, moving } => {
                write!(f, "batch {batch}: {moving} partitions still moving")
            }
        }
    }
}

/// One plan partition after `execute`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExecutePartition {
    pub topic: String,
    pub partition: i32,
    /// Replicas before the reassignment (from the rollback file).
    pub from: Vec<i32>,
    pub to: Vec<i32>,
    /// `submitted`, `failed`, `accepted` (by an earlier run), `in_progress`, `in_place`.
    pub status: String,
    pub batch: Option<usize>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExecuteReport {
    pub resumed: bool,
    pub rollback: PathBuf,
    pub journal: PathBuf,
    pub throttle: Option<u64>,
    pub partitions: Vec<ExecutePartition>,
}

impl ExecuteReport {
    pub fn failed(&self) -> usize {
        self.partitions
            .iter()
            .filter(|p| p.status == "failed")
            .count()
    }
}

/// `<plan>.rollback.json`.
pub fn default_rollback(plan: &Path) -> PathBuf {
    let mut name = plan.file_name().unwrap_or_default().to_os_string();
    name.push(".rollback.json");
    plan.with_file_name(name)
}

/// The plan, the moves in progress for its partitions, and their current replicas (for a
/// partition being moved, the replicas it is moving from: Metadata lists the replicas being
/// added too); checks the plan against the cluster.
fn plan_and_cluster(
    admin: &mut Admin,
    path: &Path,
) -> Result<(Plan, BTreeMap<TopicPartition, Ongoing>, Assignment), ReassignError> {
    let plan = read_plan(path)?;
    let topics: Vec<String> = plan
        .partitions
        .iter()
        .map(|p| p.topic.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let (brokers, parts) = topics::assignment_of(admin, &topics)?;
    let ongoing = list_ongoing(admin, Some(&plan_partitions(&plan)))?;
    let current: Assignment = parts
        .iter()
        .map(|p| {
            let tp = (p.topic.clone(), p.partition);
            let replicas = match ongoing.get(&tp) {
                Some(o) => p
                    .replicas
                    .iter()
                    .filter(|b| !o.adding.contains(b))
                    .copied()
                    .collect(),
                None => p.replicas.clone(),
            };
            (tp, replicas)
        })
        .collect();
    plan.check_against(&current, &brokers)
        .map_err(|source| ReassignError::Plan {
            path: path.display().to_string(),
            source,
        })?;
    Ok((plan, ongoing, current))
}

fn plan_partitions(plan: &Plan) -> BTreeSet<TopicPartition> {
    plan.partitions
        .iter()
        .map(|p| (p.topic.clone(), p.partition))
        .collect()
}

/// Writes the rollback file without ever replacing one: a temporary file, synced, then a
/// hard link to the final name (which fails if the name exists).
fn write_rollback(path: &Path, plan: &Plan) -> Result<(), ReassignError> {
    let refused = || {
        ReassignError::Refused(format!(
            "{} exists and this plan's journal does not record writing it; move it away or \
             pass another --rollback",
            path.display()
        ))
    };
    let write = |target: &Path, new: bool| -> std::io::Result<()> {
        let mut o = OpenOptions::new();
        o.write(true);
        if new {
            o.create_new(true);
        } else {
            o.create(true).truncate(true);
        }
        let mut f = o.open(target)?;
        f.write_all(plan.to_json().as_bytes())?;
        f.sync_all()
    };
    let tmp = path.with_extension("json.tmp");
    write(&tmp, false).map_err(|e| ReassignError::io(&tmp, e))?;
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(refused()),
        // A file system without hard links: create the file in place, still never replacing one.
        Err(_) => write(path, true).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                refused()
            } else {
                ReassignError::io(path, e)
            }
        }),
    }
}

/// Starts or resumes a plan. Per-partition rejections are in the report (status `failed`); the
/// run goes on with the other partitions.
pub fn execute(
    admin: &mut Admin,
    opts: &ExecuteOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<ExecuteReport, ReassignError> {
    let (plan, ongoing, current) = plan_and_cluster(admin, &opts.plan)?;
    let jpath = journal::journal_path(&opts.plan);
    let before = JournalState::fold(&journal::read(&jpath)?);
    if let Some(p) = &before.plan {
        if p.assignment() != plan.assignment() {
            return Err(ReassignError::Refused(format!(
                "{} belongs to a different plan (the plan file changed since it was started); \
                 move the journal away to start over",
                jpath.display()
            )));
        }
    }
    let all = plan_partitions(&plan);
    let actions = classify(&plan, &before, &ongoing, &current)?;

    let mut journal = Journal::open(&jpath)?;
    let resumed = before.plan.is_some();
    if resumed {
        progress(Progress::Resuming {
            journal: jpath.clone(),
        });
    } else {
        journal.append(Entry::Started { plan: plan.clone() })?;
    }

    // The rollback: what the plan's partitions look like before drkit changes anything.
    let rollback = match &before.rollback {
        Some(p) => PathBuf::from(p),
        None => {
            let path = opts
                .rollback
                .clone()
                .unwrap_or_else(|| default_rollback(&opts.plan));
            let snapshot: Assignment = current
                .iter()
                .filter(|(tp, _)| all.contains(*tp))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let content = Plan::from_assignment(&snapshot);
            let same_file = before.batches == 0
                && std::fs::read_to_string(&path)
                    .ok()
                    .and_then(|t| Plan::parse(&t).ok())
                    .is_some_and(|p| p == content);
            // Written by a run that died before journaling it, with nothing submitted since.
            if !same_file {
                write_rollback(&path, &content)?;
            }
            journal.append(Entry::RollbackWritten {
                path: path.display().to_string(),
            })?;
            progress(Progress::RollbackWritten { path: path.clone() });
            path
        }
    };
    let original = read_plan(&rollback)?.assignment();

    let moves: Vec<Move> = plan
        .partitions
        .iter()
        .filter_map(|p| {
            let tp = (p.topic.clone(), p.partition);
            let from = original.get(&tp)?;
            let a: BTreeSet<_> = from.iter().collect();
            let b: BTreeSet<_> = p.replicas.iter().collect();
            (a != b).then(|| Move {
                tp,
                current: from.clone(),
                target: p.replicas.clone(),
            })
        })
        .collect();

    let state = journal.state();
    let mut throttle_rate = state
        .throttles
        .as_ref()
        .filter(|_| !state.throttles_restored)
        .map(|t| t.0);
    if let Some(rate) = opts.throttle.filter(|_| !moves.is_empty()) {
        let changes = match state
            .throttles
            .as_ref()
            .filter(|_| !state.throttles_restored)
        {
            // Resumed: the previous values are the journal's, never re-read (they are ours now).
            Some((old, changes)) => {
                let mut changes = changes.clone();
                if *old != rate {
                    for c in changes.iter_mut().filter(|c| c.resource == "broker") {
                        c.value = rate.to_string();
                    }
                    journal.append(Entry::ThrottlesPlanned {
                        rate,
                        changes: changes.clone(),
                    })?;
                }
                changes
            }
            None => {
                let prev = throttle::read_previous(admin, &throttle::keys_to_read(&moves))?;
                let changes = throttle::changes(&moves, rate, &prev);
                journal.append(Entry::ThrottlesPlanned {
                    rate,
                    changes: changes.clone(),
                })?;
                changes
            }
        };
        throttle::apply(admin, &changes)?;
        journal.append(Entry::ThrottlesSet { rate })?;
        progress(Progress::ThrottlesSet {
            rate,
            configs: changes.len(),
        });
        throttle_rate = Some(rate);
    }

    // Batches.
    let size = opts.batch.unwrap_or(plan.partitions.len()).max(1);
    let chunks = batches(&plan, size);
    let action: BTreeMap<TopicPartition, Action> = actions.into_iter().collect();
    let mut results: BTreeMap<TopicPartition, (String, Option<usize>, Option<String>)> = action
        .iter()
        .map(|(tp, a)| {
            let s = match a {
                Action::Submit => "failed",
                Action::Accepted => "accepted",
                Action::InProgress => "in_progress",
                Action::InPlace => "in_place",
            };
            (tp.clone(), (s.to_string(), None, None))
        })
        .collect();
    let targets = plan.assignment();
    for (k, chunk) in chunks.iter().enumerate() {
        let batch = k + 1;
        let submit: Vec<TopicPartition> = chunk
            .iter()
            .filter(|tp| action.get(*tp) == Some(&Action::Submit))
            .cloned()
            .collect();
        if submit.is_empty() {
            continue;
        }
        if k > 0 && chunks.len() > 1 {
            let earlier: BTreeSet<TopicPartition> =
                chunks.iter().take(k).flatten().cloned().collect();
            wait_for(admin, &earlier, batch - 1, opts, progress)?;
        }
        journal.append(Entry::BatchSubmitted {
            batch,
            partitions: submit.iter().map(JournalPartition::from).collect(),
        })?;
        let answers = submit_batch(admin, &submit, &targets)?;
        for tp in &submit {
            let error = answers
                .get(tp)
                .cloned()
                .unwrap_or_else(|| Some("the controller did not answer for this partition".into()));
            journal.append(Entry::PartitionResult {
                topic: tp.0.clone(),
                partition: tp.1,
                ok: error.is_none(),
                error: error.clone(),
            })?;
            let status = if error.is_none() {
                "submitted"
            } else {
                "failed"
            };
            results.insert(tp.clone(), (status.to_string(), Some(batch), error));
        }
        progress(Progress::BatchSubmitted {
            batch,
            batches: chunks.len(),
            partitions: submit.len(),
        });
    }

    let partitions = plan
        .partitions
        .iter()
        .map(|p| {
            let tp = (p.topic.clone(), p.partition);
            let (status, batch, error) = results.remove(&tp).unwrap_or_default();
            ExecutePartition {
                from: original.get(&tp).cloned().unwrap_or_default(),
                to: p.replicas.clone(),
                topic: tp.0,
                partition: tp.1,
                status,
                batch,
                error,
            }
        })
        .collect();
    Ok(ExecuteReport {
        resumed,
        rollback,
        journal: jpath,
        throttle: throttle_rate,
        partitions,
    })
}

/// AlterPartitionReassignments for `tps`; per partition `None` (accepted) or Kafka's error.
/// A request-level error rejects every partition with it.
fn submit_batch(
    admin: &mut Admin,
    tps: &[TopicPartition],
    targets: &Assignment,
) -> Result<BTreeMap<TopicPartition, Option<String>>, ClientError> {
    alter_reassignments(
        admin,
        tps.iter()
            .map(|tp| (tp.clone(), targets.get(tp).cloned()))
            .collect(),
    )
}

fn alter_reassignments(
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

fn wait_for(
    admin: &mut Admin,
    set: &BTreeSet<TopicPartition>,
    batch: usize,
    opts: &ExecuteOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<(), ReassignError> {
    let deadline = Instant::now() + opts.batch_timeout;
    loop {
        let moving = list_ongoing(admin, Some(set))?
            .keys()
            .filter(|tp| set.contains(*tp))
            .count();
        if moving == 0 {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(ReassignError::Timeout(format!(
                "batch {batch}: {moving} partitions still moving after {} s; run execute again \
                 to go on waiting, or cancel",
                opts.batch_timeout.as_secs()
            )));
        }
        progress(Progress::Waiting { batch, moving });
        std::thread::sleep(opts.poll);
    }
}

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

fn restore_throttles(admin: &mut Admin, journal: &mut Journal) -> Result<usize, ReassignError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(s: &str) -> Plan {
        Plan::parse(s).unwrap()
    }

    fn tp(t: &str, p: i32) -> TopicPartition {
        (t.to_string(), p)
    }

    const PLAN: &str = r#"{"version":1,"partitions":[
        {"topic":"t","partition":0,"replicas":[3,2]},
        {"topic":"t","partition":1,"replicas":[2,3]},
        {"topic":"t","partition":2,"replicas":[1,2]}]}"#;

    fn current() -> Assignment {
        [
            (tp("t", 0), vec![1, 2]),
            (tp("t", 1), vec![2, 1]),
            (tp("t", 2), vec![1, 2]),
        ]
        .into_iter()
        .collect()
    }

    #[test]
    fn classify_resumes_and_refuses_foreign_moves() {
        let p = plan(PLAN);
        let fresh = classify(&p, &JournalState::default(), &BTreeMap::new(), &current()).unwrap();
        assert_eq!(
            fresh.iter().map(|(_, a)| *a).collect::<Vec<_>>(),
            vec![Action::Submit, Action::Submit, Action::InPlace]
        );
        let mut state = JournalState::default();
        state.accepted.insert(tp("t", 1));
        let own: BTreeMap<_, _> = [(
            tp("t", 0),
            Ongoing {
                replicas: vec![3, 2, 1],
                adding: vec![3],
                removing: vec![1],
            },
        )]
        .into_iter()
        .collect();
        let resumed = classify(&p, &state, &own, &current()).unwrap();
        assert_eq!(
            resumed.iter().map(|(_, a)| *a).collect::<Vec<_>>(),
            vec![Action::InProgress, Action::Accepted, Action::InPlace]
        );
        let foreign: BTreeMap<_, _> = [(
            tp("t", 1),
            Ongoing {
                replicas: vec![4, 2, 1],
                adding: vec![4],
                removing: vec![1],
            },
        )]
        .into_iter()
        .collect();
        let e = classify(&p, &state, &foreign, &current()).unwrap_err();
        assert!(e.is_refusal());
        assert!(
            e.to_string().contains("t-1 is being moved to {2, 4}"),
            "{e}"
        );
    }

    #[test]
    fn batches_are_stable_chunks_in_plan_order() {
        let p = plan(PLAN);
        assert_eq!(
            batches(&p, 2),
            vec![vec![tp("t", 0), tp("t", 1)], vec![tp("t", 2)]]
        );
        assert_eq!(batches(&p, 0).len(), 3);
        assert_eq!(batches(&p, 10).len(), 1);
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
