//! `drkit reassign generate`: the fewest replica moves for a decommission, replacement,
//! rebalance or topic move, written as Kafka's plan JSON with its rollback (docs/REASSIGN.md).
//!
//! Flags are turned into a [`Change`] and a [`Cluster`] once, here; the planning is
//! `kafka_admin::planner`, pure. Nothing on the cluster changes: the only writes are the plan and
//! its rollback, the rollback first, neither over an existing file without `--force`, never over
//! an input.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use clap::{ArgGroup, Args};
use kafka_admin::plan::{self, Assignment, Plan};
use kafka_admin::planner::{self, Change, Cluster, Planned, Report};
use serde_json::{json, Value};

use crate::cli::Format;
use crate::output::{self, Outcome};

/// `drkit reassign generate`. The flags are boxed: they are many, and the subcommand enum
/// holding them would otherwise be several times the size of its other variants.
#[derive(Args, Debug)]
pub struct GenerateArgs {
    #[command(flatten)]
    flags: Box<Flags>,
}

/// `drkit reassign generate` flags (docs/REASSIGN.md).
#[derive(Args, Debug)]
#[command(group(ArgGroup::new("source").required(true).args(["current", "bootstrap_server"])))]
#[command(group(
    ArgGroup::new("change")
        .required(true)
        .args(["decommission", "replace", "rebalance", "broker_list"])
))]
pub struct Flags {
    /// The current assignment, in Kafka's plan format (plan offline; needs --brokers).
    #[arg(long, value_name = "FILE", requires = "brokers")]
    pub current: Option<PathBuf>,
    /// The cluster's brokers with --current, e.g. `1,2,3`. A broker missing from the list may
    /// hold replicas only if it is decommissioned or replaced.
    #[arg(long, value_name = "ID,...", requires = "current")]
    pub brokers: Option<String>,
    /// Each broker's rack with --current, e.g. `1=a,2=b` (every broker or none).
    #[arg(long, value_name = "ID=RACK,...", requires = "current")]
    pub racks: Option<String>,
    /// Read the current assignment and brokers from this cluster instead of --current.
    #[arg(long, value_name = "HOST:PORT")]
    pub bootstrap_server: Option<String>,
    /// A librdkafka setting for --bootstrap-server (TLS, SASL...); repeatable. Secret values are
    /// never printed.
    #[arg(short = 'X', value_name = "KEY=VALUE", requires = "bootstrap_server")]
    pub kafka_settings: Vec<String>,
    /// Move every replica off these brokers (e.g. a broker whose disk is lost).
    #[arg(long, value_name = "ID,...")]
    pub decommission: Option<String>,
    /// Put broker NEW exactly where broker OLD is, e.g. `3:7` (several: `3:7,4:8`).
    #[arg(long, value_name = "OLD:NEW,...")]
    pub replace: Option<String>,
    /// Even out replicas and preferred leaders over all brokers with the fewest moves.
    #[arg(long)]
    pub rebalance: bool,
    /// Kafka's --broker-list: the topics of --topics-to-move-json-file end up on these brokers.
    #[arg(long, value_name = "ID,...", requires = "topics_to_move_json_file")]
    pub broker_list: Option<String>,
    /// Kafka's topics-to-move file: `{"version":1,"topics":[{"topic":"foo"}]}`.
    #[arg(long, value_name = "FILE", requires = "broker_list")]
    pub topics_to_move_json_file: Option<PathBuf>,
    /// Write the plan here (default: print it on stdout).
    #[arg(long, value_name = "PLAN")]
    pub out: Option<PathBuf>,
    /// Write the rollback (the current assignment of the planned partitions) here; written
    /// before the plan. Default with --out: `<PLAN>.rollback.json`.
    #[arg(long, value_name = "FILE")]
    pub rollback: Option<PathBuf>,
    /// Overwrite an existing plan or rollback file.
    #[arg(long)]
    pub force: bool,
    /// Output format: readable text, or JSON Lines (schema in docs/REASSIGN.md).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// Why nothing was written: bad input (exit 2) or a refusal to overwrite (exit 1).
enum Fail {
    Input(String),
    Refused(String),
}

fn input(e: impl std::fmt::Display) -> Fail {
    Fail::Input(e.to_string())
}

pub fn run(a: GenerateArgs) -> Outcome {
    match generate(&a.flags) {
        Ok(o) => o,
        Err(Fail::Input(msg)) => {
            eprintln!("drkit: reassign generate: {msg}");
            Outcome::Trouble
        }
        Err(Fail::Refused(msg)) => {
            eprintln!("drkit: reassign generate: {msg}");
            Outcome::Problems
        }
    }
}

fn generate(a: &Flags) -> Result<Outcome, Fail> {
    let files = Files::resolve(a)?;
    let (current, cluster) = match (&a.current, &a.bootstrap_server) {
        (Some(path), _) => offline(path, a)?,
        (None, Some(bootstrap)) => from_cluster(bootstrap, &a.kafka_settings)?,
        // clap's "source" group requires one of the two.
        (None, None) => return Err(Fail::Input("give --current or --bootstrap-server".into())),
    };
    let change = change(a)?;
    let planned = planner::plan(&current, &cluster, &change).map_err(input)?;

    // Every plan written is read back and checked as `reassign execute` will check it.
    let brokers = cluster.brokers();
    let plan_json = checked(&planned.changes, &current, &brokers, "plan")?;
    let holders: BTreeSet<i32> = current.values().flatten().copied().collect();
    let rollback_json = checked(
        &planned.rollback,
        &current,
        &brokers.union(&holders).copied().collect(),
        "rollback",
    )?;

    if let Some(path) = &files.rollback {
        write_new(path, &rollback_json, a.force)?;
    }
    if let Some(path) = &files.plan {
        write_new(path, &plan_json, a.force)?;
    }
    let outcome = if planned.report.rack_violations.is_empty() {
        Outcome::Clean
    } else {
        Outcome::Problems
    };
    let shown = match (a.format, &files.plan) {
        (Format::Json, _) => print_json(&change, &planned, &files),
        (Format::Text, Some(_)) => print_text(&mut io::stdout().lock(), &change, &planned, &files),
        // The plan itself goes to stdout, so the report goes to stderr.
        (Format::Text, None) => {
            let mut out = io::stdout().lock();
            output::line(&mut out, plan_json.trim_end())
                .and_then(|_| print_text(&mut io::stderr().lock(), &change, &planned, &files))
        }
    };
    match shown {
        Err(e) if !output::is_broken_pipe(&e) => {
            Err(Fail::Input(format!("cannot write output: {e}")))
        }
        _ => Ok(outcome),
    }
}

/// `--current FILE --brokers ... [--racks ...]`.
fn offline(path: &Path, a: &Flags) -> Result<(Assignment, Cluster), Fail> {
    let current = Plan::read(path).map_err(input)?.assignment();
    let brokers = plan::parse_broker_list(a.brokers.as_deref().unwrap_or_default())
        .map_err(|e| Fail::Input(format!("--brokers: {e}")))?;
    let racks = match &a.racks {
        Some(r) => plan::parse_racks(r).map_err(|e| Fail::Input(format!("--racks: {e}")))?,
        None => Default::default(),
    };
    let cluster = Cluster::new(&brokers, &racks).map_err(input)?;
    Ok((current, cluster))
}

/// The assignment, brokers and racks as the cluster reports them (one Metadata request through
/// the admin client `drkit topics` uses; internal topics left out, as Kafka's tool does).
fn from_cluster(bootstrap: &str, settings: &[String]) -> Result<(Assignment, Cluster), Fail> {
    let connect = crate::topics::ConnectArgs {
        bootstrap_server: bootstrap.to_string(),
        settings: settings.to_vec(),
    };
    let mut admin = connect.connect("reassign generate").map_err(Fail::Input)?;
    let (brokers, assignment) = kafka_admin::topics::brokers_and_assignment(&mut admin, &[])
        .map_err(|e| Fail::Input(format!("reading the cluster's assignment: {e}")))?;
    let ids: Vec<i32> = brokers.keys().copied().collect();
    let racks: BTreeMap<i32, String> = brokers
        .iter()
        .filter_map(|(b, r)| r.clone().map(|r| (*b, r)))
        .collect();
    let cluster = Cluster::new(&ids, &racks).map_err(input)?;
    Ok((assignment, cluster))
}

fn change(a: &Flags) -> Result<Change, Fail> {
    let flag = |name: &str, e: plan::PlanError| Fail::Input(format!("--{name}: {e}"));
    if let Some(d) = &a.decommission {
        let brokers = plan::parse_broker_list(d).map_err(|e| flag("decommission", e))?;
        return Ok(Change::Decommission(brokers.into_iter().collect()));
    }
    if let Some(r) = &a.replace {
        return Ok(Change::Replace(
            plan::parse_replace(r).map_err(|e| flag("replace", e))?,
        ));
    }
    if let (Some(list), Some(file)) = (&a.broker_list, &a.topics_to_move_json_file) {
        let brokers = plan::parse_broker_list(list).map_err(|e| flag("broker-list", e))?;
        let topics = plan::read_topics_to_move(file).map_err(input)?;
        return Ok(Change::MoveTopics {
            topics,
            brokers: brokers.into_iter().collect(),
        });
    }
    Ok(Change::Rebalance)
}

fn checked(
    assignment: &Assignment,
    current: &Assignment,
    brokers: &BTreeSet<i32>,
    what: &str,
) -> Result<String, Fail> {
    let json = Plan::from_assignment(assignment).to_json();
    Plan::parse(&json)
        .and_then(|p| p.check_against(current, brokers))
        .map_err(|e| {
            Fail::Input(format!(
                "internal error: the {what} fails its own check: {e}"
            ))
        })?;
    Ok(json)
}

/// Where the plan and the rollback go, checked before any planning.
struct Files {
    plan: Option<PathBuf>,
    rollback: Option<PathBuf>,
}

impl Files {
    fn resolve(a: &Flags) -> Result<Files, Fail> {
        let rollback = a.rollback.clone().or_else(|| {
            a.out.as_ref().map(|o| {
                let mut s = o.clone().into_os_string();
                s.push(".rollback.json");
                PathBuf::from(s)
            })
        });
        let files = Files {
            plan: a.out.clone(),
            rollback,
        };
        let inputs: Vec<&PathBuf> = [&a.current, &a.topics_to_move_json_file]
            .into_iter()
            .flatten()
            .collect();
        let outputs: Vec<&PathBuf> = [&files.plan, &files.rollback]
            .into_iter()
            .flatten()
            .collect();
        if let [p, r] = outputs[..] {
            if same_file(p, r) {
                return Err(Fail::Input(format!(
                    "--out and --rollback are the same file: {}",
                    p.display()
                )));
            }
        }
        for out in outputs {
            if inputs.iter().any(|i| same_file(i, out)) {
                return Err(Fail::Input(format!(
                    "{} is an input file: refusing to write over it",
                    out.display()
                )));
            }
            if out.exists() && !a.force {
                return Err(Fail::Refused(format!(
                    "{} exists: refusing to overwrite it (--force to replace it)",
                    out.display()
                )));
            }
        }
        Ok(files)
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// Writes beside the target and renames, so a crash never leaves half a plan under its name.
fn write_new(path: &Path, text: &str, force: bool) -> Result<(), Fail> {
    if path.exists() && !force {
        return Err(Fail::Refused(format!(
            "{} exists: refusing to overwrite it (--force to replace it)",
            path.display()
        )));
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.drkit-partial"));
    let fail = |e: io::Error| Fail::Input(format!("cannot write {}: {e}", path.display()));
    let mut f = std::fs::File::create(&tmp).map_err(fail)?;
    let written = f
        .write_all(text.as_bytes())
        .and_then(|_| f.sync_all())
        .and_then(|_| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        // Best effort: the partial file is ours, and the error that matters is `e`.
        let _ = std::fs::remove_file(&tmp);
        return Err(fail(e));
    }
    Ok(())
}

fn ids(v: &[i32]) -> String {
    let s: Vec<String> = v.iter().map(|b| b.to_string()).collect();
    format!("[{}]", s.join(","))
}

fn describe(change: &Change) -> String {
    let list = |s: &BTreeSet<i32>| ids(&s.iter().copied().collect::<Vec<_>>());
    match change {
        Change::Decommission(b) => format!("decommission {}", list(b)),
        Change::Replace(p) => {
            let pairs: Vec<String> = p.iter().map(|(o, n)| format!("{o} by {n}")).collect();
            format!("replace {}", pairs.join(", "))
        }
        Change::Rebalance => "rebalance".to_string(),
        Change::MoveTopics { topics, brokers } => format!(
            "move {} topic(s) onto brokers {}",
            topics.len(),
            list(brokers)
        ),
    }
}

fn print_text(
    out: &mut impl Write,
    change: &Change,
    planned: &Planned,
    files: &Files,
) -> io::Result<()> {
    let r: &Report = &planned.report;
    let mut l = |s: String| output::line(out, s.trim_end());
    l(format!("plan: {}", describe(change)))?;
    l(format!(
        "partitions: {} in scope of {}, {} in the plan",
        r.scope_partitions, r.partitions, r.partitions_changed
    ))?;
    l(format!(
        "replica moves: {} (lower bound {})",
        r.replica_moves, r.lower_bound
    ))?;
    l(format!("preferred leader changes: {}", r.leader_changes))?;
    if r.partitions_changed == 0 {
        l("nothing to change: the plan is empty".to_string())?;
    }
    l(format!(
        "replicas per broker: {}..{} (ideal {}..{})",
        r.replicas_range.0, r.replicas_range.1, r.replicas_ideal.0, r.replicas_ideal.1
    ))?;
    l(format!(
        "leaders per broker: {}..{} (ideal {}..{})",
        r.leaders_range.0, r.leaders_range.1, r.leaders_ideal.0, r.leaders_ideal.1
    ))?;
    l(format!(
        "rack violations: {} made by this plan ({} partitions in scope shared a rack before)",
        r.rack_violations.len(),
        r.rack_violations_before
    ))?;
    for ((topic, partition), replicas) in &r.rack_violations {
        l(format!(
            "warning: {topic}-{partition}: replicas {} span fewer racks than before and than the \
             brokers allow (placed best-effort)",
            ids(replicas)
        ))?;
    }
    l(String::new())?;
    l(format!(
        "{:>8}  {:<10} {:>16}  {:>16}",
        "broker", "rack", "replicas", "leaders"
    ))?;
    for b in &r.brokers {
        l(format!(
            "{:>8}  {:<10} {:>7} -> {:<6}  {:>7} -> {:<6}{}",
            b.broker,
            b.rack.as_deref().unwrap_or("-"),
            b.replicas_before,
            b.replicas_after,
            b.leaders_before,
            b.leaders_after,
            if b.target { "" } else { "  (emptied)" }
        ))?;
    }
    l(String::new())?;
    match (&files.rollback, &files.plan) {
        (Some(rb), Some(p)) => {
            l(format!("rollback written: {}", rb.display()))?;
            l(format!("plan written: {}", p.display()))
        }
        (Some(rb), None) => l(format!("rollback written: {}", rb.display())),
        (None, _) => l("no rollback file written (give --out or --rollback)".to_string()),
    }
}

/// The JSON Lines stream documented in docs/REASSIGN.md: one `partition` record per planned
/// partition, one `broker` record per broker, one `rack_violation` per best-effort placement,
/// then one `summary`.
fn print_json(change: &Change, planned: &Planned, files: &Files) -> io::Result<()> {
    let mut out = io::stdout().lock();
    let mut emit = |v: Value| output::line(&mut out, &v.to_string());
    for ((topic, partition), after) in &planned.changes {
        let before = planned
            .rollback
            .get(&(topic.clone(), *partition))
            .cloned()
            .unwrap_or_default();
        emit(json!({
            "type": "partition",
            "topic": topic,
            "partition": partition,
            "replicas_before": before,
            "replicas_after": after,
            "replica_moves": after.iter().filter(|b| !before.contains(b)).count(),
            "leader_changed": after.first() != before.first(),
        }))?;
    }
    let r = &planned.report;
    for b in &r.brokers {
        emit(json!({
            "type": "broker",
            "broker": b.broker,
            "rack": b.rack,
            "target": b.target,
            "replicas_before": b.replicas_before,
            "replicas_after": b.replicas_after,
            "leaders_before": b.leaders_before,
            "leaders_after": b.leaders_after,
        }))?;
    }
    for ((topic, partition), replicas) in &r.rack_violations {
        emit(json!({
            "type": "rack_violation",
            "topic": topic,
            "partition": partition,
            "replicas": replicas,
        }))?;
    }
    let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
    emit(json!({
        "type": "summary",
        "change": change.name(),
        "partitions": r.partitions,
        "scope_partitions": r.scope_partitions,
        "partitions_changed": r.partitions_changed,
        "replica_moves": r.replica_moves,
        "lower_bound": r.lower_bound,
        "leader_changes": r.leader_changes,
        "replicas_ideal": [r.replicas_ideal.0, r.replicas_ideal.1],
        "replicas_range": [r.replicas_range.0, r.replicas_range.1],
        "leaders_ideal": [r.leaders_ideal.0, r.leaders_ideal.1],
        "leaders_range": [r.leaders_range.0, r.leaders_range.1],
        "rack_violations_before": r.rack_violations_before,
        "rack_violations": r.rack_violations.len(),
        "plan_file": path(&files.plan),
        "rollback_file": path(&files.rollback),
    }))
}
