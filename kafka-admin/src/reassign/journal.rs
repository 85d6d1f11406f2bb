//! The execution journal beside a plan (`<plan>.journal`): JSON Lines, append-only, each entry
//! fsync'd before the change it announces is made, so a run that dies anywhere can be resumed
//! without redoing (or forgetting) what it did. Schema in docs/REASSIGN.md.
//!
//! Intent entries (`throttles_planned`, `batch_submitted`) are written before the request;
//! outcome entries (`throttles_set`, `partition_result`) after the answer. A resumed run trusts
//! intents for what it must not re-read (the throttle values that were there before drkit) and
//! asks the cluster about anything whose outcome is missing.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ReassignError;
use crate::plan::{Plan, TopicPartition};

/// One config value drkit changes: where, which key, what was there before (`None`: not set
/// dynamically on this resource) and what drkit sets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigChange {
    /// `"broker"` or `"topic"`.
    pub resource: String,
    /// Broker id or topic name.
    pub name: String,
    pub key: String,
    pub previous: Option<String>,
    pub value: String,
}

/// A partition in a journal entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalPartition {
    pub topic: String,
    pub partition: i32,
}

impl From<&TopicPartition> for JournalPartition {
    fn from(tp: &TopicPartition) -> Self {
        JournalPartition {
            topic: tp.0.clone(),
            partition: tp.1,
        }
    }
}

impl JournalPartition {
    fn key(&self) -> TopicPartition {
        (self.topic.clone(), self.partition)
    }
}

/// One journal line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Entry {
    /// The plan this journal belongs to (its partitions and targets, in plan order).
    Started {
        plan: Plan,
    },
    RollbackWritten {
        path: String,
    },
    /// Written before the throttles are set: the values found before drkit changed anything.
    ThrottlesPlanned {
        rate: u64,
        changes: Vec<ConfigChange>,
    },
    ThrottlesSet {
        rate: u64,
    },
    /// Written before AlterPartitionReassignments is sent.
    BatchSubmitted {
        batch: usize,
        partitions: Vec<JournalPartition>,
    },
    PartitionResult {
        topic: String,
        partition: i32,
        ok: bool,
        error: Option<String>,
    },
    Cancelled {
        partitions: Vec<JournalPartition>,
    },
    LeadersElected {
        partitions: Vec<JournalPartition>,
    },
    ThrottlesRestored,
}

/// What the journal says happened, folded in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JournalState {
    pub plan: Option<Plan>,
    pub rollback: Option<String>,
    /// The throttle bookkeeping of the last `throttles_planned` (previous values as first found).
    pub throttles: Option<(u64, Vec<ConfigChange>)>,
    /// The planned throttles were confirmed set (and not restored since).
    pub throttles_set: bool,
    pub throttles_restored: bool,
    /// Accepted by the controller (and not cancelled since).
    pub accepted: BTreeSet<TopicPartition>,
    /// Rejected, with Kafka's error.
    pub failed: BTreeMap<TopicPartition, String>,
    /// Submitted, outcome unknown (the run died waiting for the answer).
    pub unanswered: BTreeSet<TopicPartition>,
    pub batches: usize,
}

impl JournalState {
    pub fn fold(entries: &[Entry]) -> JournalState {
        let mut s = JournalState::default();
        for e in entries {
            match e {
                Entry::Started { plan } => s.plan = Some(plan.clone()),
                Entry::RollbackWritten { path } => s.rollback = Some(path.clone()),
                Entry::ThrottlesPlanned { rate, changes } => {
                    s.throttles = Some((*rate, changes.clone()));
                    s.throttles_set = false;
                    s.throttles_restored = false;
                }
                Entry::ThrottlesSet { .. } => s.throttles_set = true,
                Entry::ThrottlesRestored => {
                    s.throttles_set = false;
                    s.throttles_restored = true;
                }
                Entry::BatchSubmitted { batch, partitions } => {
                    s.batches = s.batches.max(*batch);
                    for p in partitions {
                        s.unanswered.insert(p.key());
                    }
                }
                Entry::PartitionResult {
                    topic,
                    partition,
                    ok,
                    error,
                } => {
                    let tp = (topic.clone(), *partition);
                    s.unanswered.remove(&tp);
                    if *ok {
                        s.failed.remove(&tp);
                        s.accepted.insert(tp);
                    } else {
                        s.accepted.remove(&tp);
                        s.failed.insert(tp, error.clone().unwrap_or_default());
                    }
                }
                Entry::Cancelled { partitions } => {
                    for p in partitions {
                        s.accepted.remove(&p.key());
                        s.unanswered.remove(&p.key());
                    }
                }
                Entry::LeadersElected { .. } => {}
            }
        }
        s
    }
}

/// `<plan>.journal`, beside the plan.
pub fn journal_path(plan: &Path) -> PathBuf {
    let mut name = plan.file_name().unwrap_or_default().to_os_string();
    name.push(".journal");
    plan.with_file_name(name)
}

/// Reads a journal. A last line cut short by a crash (no newline, not JSON) is ignored; any other
/// bad line is an error naming the line.
pub fn read(path: &Path) -> Result<Vec<Entry>, ReassignError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(ReassignError::io(path, e)),
    };
    let complete = text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    let mut out = vec![];
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Entry>(line) {
            Ok(e) => out.push(e),
            Err(_) if i + 1 == lines.len() && !complete => break,
            Err(e) => {
                return Err(ReassignError::Journal {
                    path: path.display().to_string(),
                    line: i + 1,
                    reason: e.to_string(),
                })
            }
        }
    }
    Ok(out)
}

/// An open journal; every append is synced to disk before it returns.
pub struct Journal {
    path: PathBuf,
    file: File,
    entries: Vec<Entry>,
}

impl Journal {
    /// Opens (creating if needed) the journal and reads what is there.
    pub fn open(path: &Path) -> Result<Journal, ReassignError> {
        let entries = read(path)?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| ReassignError::io(path, e))?;
        // A line cut short by a crash announced nothing that happened (an entry is synced before
        // its change is made): cut it off, so the next entry starts on a line of its own.
        let text = std::fs::read(path).map_err(|e| ReassignError::io(path, e))?;
        if !text.is_empty() && text.last() != Some(&b'\n') {
            let keep = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            file.set_len(keep as u64)
                .and_then(|_| file.sync_data())
                .map_err(|e| ReassignError::io(path, e))?;
        }
        Ok(Journal {
            path: path.to_path_buf(),
            file,
            entries,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn state(&self) -> JournalState {
        JournalState::fold(&self.entries)
    }

    pub fn append(&mut self, e: Entry) -> Result<(), ReassignError> {
        let mut line = serde_json::to_string(&e).map_err(|err| ReassignError::Journal {
            path: self.path.display().to_string(),
            line: self.entries.len() + 1,
            reason: err.to_string(),
        })?;
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .and_then(|_| self.file.sync_data())
            .map_err(|err| ReassignError::io(&self.path, err))?;
        self.entries.push(e);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jp(t: &str, p: i32) -> JournalPartition {
        JournalPartition {
            topic: t.into(),
            partition: p,
        }
    }

    #[test]
    fn fold_tracks_accepted_failed_and_unanswered() {
        let s = JournalState::fold(&[
            Entry::BatchSubmitted {
                batch: 1,
                partitions: vec![jp("t", 0), jp("t", 1), jp("t", 2)],
            },
            Entry::PartitionResult {
                topic: "t".into(),
                partition: 0,
                ok: true,
                error: None,
            },
            Entry::PartitionResult {
                topic: "t".into(),
                partition: 1,
                ok: false,
                error: Some("InvalidReplicaAssignment".into()),
            },
        ]);
        assert_eq!(s.batches, 1);
        assert!(s.accepted.contains(&("t".to_string(), 0)));
        assert_eq!(s.failed[&("t".to_string(), 1)], "InvalidReplicaAssignment");
        assert!(s.unanswered.contains(&("t".to_string(), 2)));
        assert_eq!(s.unanswered.len(), 1);
    }

    #[test]
    fn a_torn_last_line_is_ignored_and_other_bad_lines_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("plan.json.journal");
        std::fs::write(&p, "{\"event\":\"throttles_restored\"}\n{\"event\":\"thro").unwrap();
        assert_eq!(read(&p).unwrap(), vec![Entry::ThrottlesRestored]);
        let mut j = Journal::open(&p).unwrap();
        j.append(Entry::ThrottlesRestored).unwrap();
        assert_eq!(
            read(&p).unwrap().len(),
            2,
            "{}",
            std::fs::read_to_string(&p).unwrap()
        );
        std::fs::write(&p, "nonsense\n{\"event\":\"throttles_restored\"}\n").unwrap();
        let e = read(&p).unwrap_err().to_string();
        assert!(e.contains("line 1"), "{e}");
        assert_eq!(
            journal_path(Path::new("/x/plan.json")),
            Path::new("/x/plan.json.journal")
        );
    }
}
