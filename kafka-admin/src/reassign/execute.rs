//! `execute`: what to submit and when (pure: [`classify`], [`batches`]), the rollback file,
//! throttles and batches, each step journaled first.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::journal::{self, Entry, Journal, JournalPartition, JournalState};
use super::throttle::{self, Move};
use super::{
    alter_reassignments, list_ongoing, plan_partitions, read_plan, Ongoing, ReassignError,
};
use crate::client::{Admin, ClientError};
use crate::plan::{Assignment, Plan, TopicPartition};
use crate::topics;

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
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(refused()),
        // A file system without hard links: create the file in place, still never replacing one.
        Err(_) => write(path, true).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                refused()
            } else {
                ReassignError::io(path, e)
            }
        })?,
    }
    sync_dir(path);
    Ok(())
}

/// The file's data is synced; its name is durable only once the directory is. The journal
/// records the rollback as written right after this, so both must survive a crash. Not every
/// platform can open a directory for syncing, hence best effort.
fn sync_dir(path: &Path) {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
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
}
