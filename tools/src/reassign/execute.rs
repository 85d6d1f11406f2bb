//! `drkit reassign execute | verify | cancel | list` (docs/REASSIGN.md): flags, the library
//! call, the two printers.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use kafka_admin::client::Admin;
use kafka_admin::reassign::{self, ExecuteOptions, ReassignError, Status};
use serde_json::{json, Value};

use crate::cli::Format;
use crate::output::{is_broken_pipe, line, Outcome};
use crate::topics::{error, ConnectArgs};

/// `drkit reassign execute` flags.
#[derive(Args, Debug)]
pub struct ExecuteArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// The reassignment plan (Kafka's JSON). Its journal is kept beside it (`<plan>.journal`).
    #[arg(long, value_name = "FILE")]
    pub plan: PathBuf,
    /// Where to write the rollback plan (default: `<plan>.rollback.json`); never overwritten.
    #[arg(long, value_name = "FILE")]
    pub rollback: Option<PathBuf>,
    /// Replication throttle in bytes per second per broker, removed by `verify` when done.
    #[arg(long, value_name = "BYTES/S", value_parser = clap::value_parser!(u64).range(1..))]
    pub throttle: Option<u64>,
    /// Submit this many partitions at a time, waiting for each batch to finish (default: all).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub batch: Option<u64>,
    /// How long to wait for a batch before stopping (a rerun goes on from there).
    #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
    pub batch_timeout: u64,
    /// How often to ask the controller while waiting for a batch.
    #[arg(long, value_name = "MS", default_value_t = 2000, hide = true)]
    pub poll_ms: u64,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// `drkit reassign verify` and `cancel` flags.
#[derive(Args, Debug)]
pub struct PlanArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// The reassignment plan that was executed.
    #[arg(long, value_name = "FILE")]
    pub plan: PathBuf,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// `drkit reassign list` flags.
#[derive(Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// Connects, or reports why not (exit 2).
fn connect(cmd: &str, c: &ConnectArgs, format: Format) -> Result<Admin, Outcome> {
    c.connect(cmd).map_err(|e| {
        error(cmd, format, &e);
        Outcome::Trouble
    })
}

fn fail(cmd: &str, format: Format, e: &ReassignError) -> Outcome {
    error(cmd, format, &e.to_string());
    if e.is_refusal() {
        Outcome::Problems
    } else {
        Outcome::Trouble
    }
}

/// Writes lines to stdout; a closed pipe ends the output quietly.
/// Prints the report; the outcome is `Problems` unless `clean`, `Trouble` when stdout fails.
fn emit(cmd: &str, lines: &[String], clean: bool) -> Outcome {
    let out = std::io::stdout();
    let mut out = out.lock();
    let r = lines
        .iter()
        .try_for_each(|l| line(&mut out, l))
        .and_then(|_| out.flush());
    match r {
        Err(e) if !is_broken_pipe(&e) => {
            eprintln!("drkit {cmd}: {e}");
            Outcome::Trouble
        }
        _ if clean => Outcome::Clean,
        _ => Outcome::Problems,
    }
}

fn tp(topic: &str, partition: i32) -> String {
    format!("{topic}-{partition}")
}

fn brokers(v: &[i32]) -> String {
    format!("{v:?}")
}

pub fn execute(a: ExecuteArgs) -> Outcome {
    let cmd = "reassign execute";
    let mut admin = match connect(cmd, &a.connect, a.format) {
        Ok(x) => x,
        Err(o) => return o,
    };
    let opts = ExecuteOptions {
        plan: a.plan.clone(),
        rollback: a.rollback.clone(),
        throttle: a.throttle,
        batch: a.batch.map(|b| b as usize),
        batch_timeout: Duration::from_secs(a.batch_timeout),
        poll: Duration::from_millis(a.poll_ms.max(1)),
    };
    let mut progress = |p: reassign::Progress| eprintln!("drkit {cmd}: {p}");
    let r = match reassign::execute(&mut admin, &opts, &mut progress) {
        Ok(r) => r,
        Err(e) => return fail(cmd, a.format, &e),
    };
    let count = |s: &str| r.partitions.iter().filter(|p| p.status == s).count();
    let mut lines = vec![];
    match a.format {
        Format::Json => {
            for p in &r.partitions {
                let mut v = serde_json::to_value(p).unwrap_or(Value::Null);
                if let Value::Object(m) = &mut v {
                    m.insert("type".into(), "partition".into());
                }
                lines.push(v.to_string());
            }
            lines.push(
                json!({
                    "type": "summary",
                    "resumed": r.resumed,
                    "rollback": r.rollback.display().to_string(),
                    "journal": r.journal.display().to_string(),
                    "throttle": r.throttle,
                    "submitted": count("submitted"),
                    "failed": count("failed"),
                    "accepted": count("accepted"),
                    "in_progress": count("in_progress"),
                    "in_place": count("in_place"),
                })
                .to_string(),
            );
        }
        Format::Text => {
            lines.push(format!(
                "rollback plan: {} (to undo: drkit reassign execute --plan {})",
                r.rollback.display(),
                r.rollback.display()
            ));
            for p in &r.partitions {
                let mut s = format!(
                    "{:<30} {} -> {}  {}",
                    tp(&p.topic, p.partition),
                    brokers(&p.from),
                    brokers(&p.to),
                    p.status.replace('_', " ")
                );
                if let Some(b) = p.batch {
                    s.push_str(&format!(" (batch {b})"));
                }
                if let Some(e) = &p.error {
                    s.push_str(&format!(": {e}"));
                }
                lines.push(s);
            }
            lines.push(format!(
                "{} submitted, {} failed, {} accepted earlier, {} in progress, {} already in place{}",
                count("submitted"),
                count("failed"),
                count("accepted"),
                count("in_progress"),
                count("in_place"),
                r.throttle
                    .map(|t| format!("; throttle {t} B/s"))
                    .unwrap_or_default()
            ));
            lines.push(if r.failed() > 0 {
                format!(
                    "fix the failed partitions and run execute again (only they are resubmitted); \
                     then: drkit reassign verify --plan {}",
                    a.plan.display()
                )
            } else {
                format!("next: drkit reassign verify --plan {}", a.plan.display())
            });
        }
    }
    emit(cmd, &lines, r.failed() == 0)
}

fn status_text(s: &Status) -> String {
    match s {
        Status::Done => "done".into(),
        Status::InProgress { adding, removing } => format!(
            "in progress (adding {}, removing {})",
            brokers(adding),
            brokers(removing)
        ),
        Status::NotInSync { missing } => format!("not in sync yet: {}", brokers(missing)),
        Status::Mismatch => {
            "NOT MOVING and not at the target (never submitted, rejected or cancelled)".into()
        }
        Status::Missing => "MISSING from the cluster metadata".into(),
    }
}

pub fn verify(a: PlanArgs) -> Outcome {
    let cmd = "reassign verify";
    let mut admin = match connect(cmd, &a.connect, a.format) {
        Ok(x) => x,
        Err(o) => return o,
    };
    let r = match reassign::verify(&mut admin, &a.plan) {
        Ok(r) => r,
        Err(e) => return fail(cmd, a.format, &e),
    };
    let done = r
        .partitions
        .iter()
        .filter(|p| p.status == Status::Done)
        .count();
    let moving = r
        .partitions
        .iter()
        .filter(|p| {
            matches!(
                p.status,
                Status::InProgress { .. } | Status::NotInSync { .. }
            )
        })
        .count();
    let problems = r.partitions.len() - done - moving;
    let failed_elections = r.elections.iter().filter(|e| e.error.is_some()).count();
    let mut lines = vec![];
    match a.format {
        Format::Json => {
            for p in &r.partitions {
                let mut v = serde_json::to_value(p).unwrap_or(Value::Null);
                if let Value::Object(m) = &mut v {
                    m.insert("type".into(), "partition".into());
                }
                lines.push(v.to_string());
            }
            for e in &r.elections {
                lines.push(
                    json!({"type": "election", "topic": e.topic, "partition": e.partition, "error": e.error})
                        .to_string(),
                );
            }
            lines.push(
                json!({
                    "type": "summary",
                    "complete": r.clean(),
                    "partitions": r.partitions.len(),
                    "done": done,
                    "in_progress": moving,
                    "problems": problems,
                    "elections": r.elections.len(),
                    "failed_elections": failed_elections,
                    "throttles_restored": r.throttles_restored,
                })
                .to_string(),
            );
        }
        Format::Text => {
            for p in &r.partitions {
                lines.push(format!(
                    "{:<30} {}  {}",
                    tp(&p.topic, p.partition),
                    brokers(&p.target),
                    status_text(&p.status)
                ));
            }
            for e in &r.elections {
                lines.push(match &e.error {
                    None => format!("{:<30} preferred leader elected", tp(&e.topic, e.partition)),
                    Some(err) => format!(
                        "{:<30} preferred leader election FAILED: {err}",
                        tp(&e.topic, e.partition)
                    ),
                });
            }
            if r.journal.is_none() && r.done() {
                lines.push(format!(
                    "no journal beside {}: no throttles of drkit's to remove (throttles set by \
                     another tool are left as they are)",
                    a.plan.display()
                ));
            }
            if r.throttles_restored > 0 {
                lines.push(format!(
                    "throttles removed: {} config values put back as they were",
                    r.throttles_restored
                ));
            }
            lines.push(if r.clean() {
                format!("reassignment complete: {done} partitions done")
            } else {
                format!(
                    "not complete: {done} done, {moving} in progress, {problems} problems, \
                     {failed_elections} failed elections"
                )
            });
        }
    }
    emit(cmd, &lines, r.clean())
}

pub fn cancel(a: PlanArgs) -> Outcome {
    let cmd = "reassign cancel";
    let mut admin = match connect(cmd, &a.connect, a.format) {
        Ok(x) => x,
        Err(o) => return o,
    };
    let r = match reassign::cancel(&mut admin, &a.plan) {
        Ok(r) => r,
        Err(e) => return fail(cmd, a.format, &e),
    };
    let failed = r.partitions.iter().filter(|p| p.error.is_some()).count();
    let mut lines = vec![];
    match a.format {
        Format::Json => {
            for p in &r.partitions {
                lines.push(
                    json!({"type": "partition", "topic": p.topic, "partition": p.partition,
                           "cancelled": p.error.is_none(), "error": p.error})
                    .to_string(),
                );
            }
            lines.push(
                json!({
                    "type": "summary",
                    "cancelled": r.partitions.len() - failed,
                    "failed": failed,
                    "not_in_progress": r.not_in_progress,
                    "throttles_restored": r.throttles_restored,
                })
                .to_string(),
            );
        }
        Format::Text => {
            for p in &r.partitions {
                lines.push(match &p.error {
                    None => format!("{:<30} cancelled", tp(&p.topic, p.partition)),
                    Some(e) => format!("{:<30} cancel FAILED: {e}", tp(&p.topic, p.partition)),
                });
            }
            lines.push(format!(
                "{} cancelled, {failed} failed, {} not in progress; {} throttle values put back",
                r.partitions.len() - failed,
                r.not_in_progress,
                r.throttles_restored
            ));
        }
    }
    emit(cmd, &lines, failed == 0)
}

pub fn list(a: ListArgs) -> Outcome {
    let cmd = "reassign list";
    let mut admin = match connect(cmd, &a.connect, a.format) {
        Ok(x) => x,
        Err(o) => return o,
    };
    let ongoing = match reassign::list(&mut admin) {
        Ok(r) => r,
        Err(e) => {
            error(cmd, a.format, &e.to_string());
            return Outcome::Trouble;
        }
    };
    let mut lines = vec![];
    match a.format {
        Format::Json => {
            for ((t, p), o) in &ongoing {
                lines.push(
                    json!({"type": "reassignment", "topic": t, "partition": p,
                           "replicas": o.replicas, "adding": o.adding, "removing": o.removing})
                    .to_string(),
                );
            }
            lines.push(json!({"type": "summary", "reassignments": ongoing.len()}).to_string());
        }
        Format::Text => {
            for ((t, p), o) in &ongoing {
                lines.push(format!(
                    "{:<30} replicas {}  adding {}  removing {}",
                    tp(t, *p),
                    brokers(&o.replicas),
                    brokers(&o.adding),
                    brokers(&o.removing)
                ));
            }
            lines.push(format!("{} reassignments in progress", ongoing.len()));
        }
    }
    emit(cmd, &lines, true)
}
