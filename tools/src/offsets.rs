//! `drkit offsets`: describe, reset and restore consumer-group offsets (docs/OFFSETS.md).
//!
//! Flags become a validated [`Job`] before anything is sent; the plan is made by
//! `kafka_admin::offsets` from what `kafka_admin::group` fetched; this file prints it and, with
//! `--execute`, writes the snapshot and asks the library for the guarded commit.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{ArgGroup, Args, Subcommand, ValueEnum};
use kafka_admin::group::{GroupClient, GroupError, GroupState};
use kafka_admin::offsets::{
    self, default_snapshot_name, plan, MissingTime, Note, PartitionState, Snapshot, Step,
    TopicPartition, Want,
};
use replay::kafka::Settings;
use serde_json::{json, Value};

use crate::cli::Format;
use crate::output::{is_broken_pipe, Outcome};

#[derive(Subcommand, Debug)]
pub enum OffsetsCmd {
    /// A group's state and members, and per partition the committed offset, log range and lag.
    Describe(DescribeArgs),
    /// Move a group's committed offsets (dry run unless --execute; a snapshot is written first).
    Reset(Box<ResetArgs>),
    /// Put back the offsets a snapshot recorded (dry run unless --execute).
    Restore(RestoreArgs),
}

/// Connection and output flags every `drkit offsets` command takes.
#[derive(Args, Debug)]
pub struct ConnArgs {
    /// Kafka brokers to bootstrap from (HOST:PORT[,HOST:PORT...]).
    #[arg(long, value_name = "HOST:PORT")]
    pub bootstrap_server: String,
    /// A librdkafka setting (TLS, SASL...), repeatable. Values of keys with password/secret in
    /// the name and of sasl.* are never printed.
    #[arg(short = 'X', value_name = "KEY=VALUE")]
    pub settings: Vec<String>,
    /// Seconds to wait for each broker request.
    #[arg(long, value_name = "SECONDS", default_value_t = 15,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout: u64,
    /// Output format: readable text, or JSON Lines (schema in docs/OFFSETS.md).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Args, Debug)]
pub struct DescribeArgs {
    /// The consumer group.
    #[arg(long, value_name = "G")]
    pub group: String,
    #[command(flatten)]
    pub conn: ConnArgs,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingTimeArg {
    /// Refuse the reset, naming the partition.
    Fail,
    /// Move that partition to its log end (Kafka's behaviour).
    Latest,
}

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("target").required(true).args([
    "to_earliest", "to_latest", "to_current", "to_offset", "shift_by",
    "to_datetime", "by_duration", "from_file", "from_scan",
])))]
pub struct ResetArgs {
    /// The consumer group (it must be Empty or Dead).
    #[arg(long, value_name = "G")]
    pub group: String,
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Scope: every partition the group has a committed offset for.
    #[arg(long, conflicts_with = "topic")]
    pub all_topics: bool,
    /// Scope: a topic's partitions, all or listed (`t` or `t:0,1,2`); repeatable.
    #[arg(long, value_name = "TOPIC[:P,...]")]
    pub topic: Vec<String>,
    /// Target: the log start.
    #[arg(long)]
    pub to_earliest: bool,
    /// Target: the log end.
    #[arg(long)]
    pub to_latest: bool,
    /// Target: the committed offset itself (partitions without one are left out).
    #[arg(long)]
    pub to_current: bool,
    /// Target: this offset in every partition (clamped into the log range).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub to_offset: Option<i64>,
    /// Target: the committed offset plus N (negative: back), clamped.
    #[arg(long, value_name = "[-]N", allow_negative_numbers = true)]
    pub shift_by: Option<i64>,
    /// Target: the first record at or after this time (ISO 8601; no zone = UTC).
    #[arg(long, value_name = "TIME")]
    pub to_datetime: Option<String>,
    /// Target: the first record at or after now minus this (PT30M, P1DT2H, or 30m, 2h, 7d).
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
    pub by_duration: Option<String>,
    /// Target: per partition, from Kafka's reset CSV (`topic,partition,offset`, or with the
    /// group first).
    #[arg(long, value_name = "FILE")]
    pub from_file: Option<PathBuf>,
    /// Target: back to the first offset lost or damaged per partition, from a `drkit segments
    /// verify --format json` report.
    #[arg(long, value_name = "REPORT")]
    pub from_scan: Option<PathBuf>,
    /// With --to-datetime/--by-duration: what a partition with no record at or after the time
    /// does.
    #[arg(long, value_enum, default_value_t = MissingTimeArg::Fail)]
    pub missing_time: MissingTimeArg,
    /// Apply the plan (after writing the snapshot). Without it, nothing is changed.
    #[arg(long)]
    pub execute: bool,
    /// Also write the plan as Kafka's reset CSV to this new file.
    #[arg(long, value_name = "FILE")]
    pub export: Option<PathBuf>,
    /// Where to write the snapshot taken before the commit (a new file; default
    /// offsets-<group>-<UTC time>.json in the current directory).
    #[arg(long, value_name = "FILE")]
    pub snapshot: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// A snapshot written by `drkit offsets reset --execute` (or by a restore).
    #[arg(value_name = "SNAPSHOT")]
    pub file: PathBuf,
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Apply it (after writing a snapshot of the offsets it replaces).
    #[arg(long)]
    pub execute: bool,
    /// Where to write that snapshot (default offsets-<group>-<UTC time>.json).
    #[arg(long, value_name = "FILE")]
    pub snapshot: Option<PathBuf>,
}

pub fn run(cmd: OffsetsCmd) -> Outcome {
    match cmd {
        OffsetsCmd::Describe(a) => describe(&a),
        OffsetsCmd::Reset(a) => reset(&a),
        OffsetsCmd::Restore(a) => restore(&a),
    }
}

// ---------------------------------------------------------------------------------------------
// Output

/// The two printers over one stream of records. A closed stdout (`| head`) stops the output
/// but not the command: a commit in progress is never abandoned because a pager quit.
struct Out {
    format: Format,
    cmd: &'static str,
    closed: bool,
}

impl Out {
    fn new(format: Format, cmd: &'static str) -> Out {
        Out {
            format,
            cmd,
            closed: false,
        }
    }

    fn write(&mut self, s: &str) {
        if self.closed {
            return;
        }
        let mut o = io::stdout().lock();
        if let Err(e) = crate::output::line(&mut o, s).and_then(|_| o.flush()) {
            if !is_broken_pipe(&e) {
                eprintln!("drkit offsets {}: stdout: {e}", self.cmd);
            }
            self.closed = true;
        }
    }

    fn json(&mut self, v: Value) {
        if self.format == Format::Json {
            self.write(&v.to_string());
        }
    }

    fn text(&mut self, s: &str) {
        if self.format == Format::Text {
            self.write(s);
        }
    }

    /// Warnings go to stderr in both formats (and as a record in JSON).
    fn warn(&mut self, msg: &str) {
        eprintln!("drkit offsets {}: warning: {msg}", self.cmd);
        self.json(json!({"type": "warning", "message": msg}));
    }

    /// Exit 2: a usage, connection or file problem.
    fn trouble(&mut self, msg: &str) -> Outcome {
        eprintln!("drkit offsets {}: {msg}", self.cmd);
        self.json(json!({"type": "error", "message": msg}));
        Outcome::Trouble
    }
}

/// Left-aligned columns wide enough for every cell.
fn table(head: &[&str], rows: &[Vec<String>]) -> Vec<String> {
    let mut w: Vec<usize> = head.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(x) = w.get_mut(i) {
                *x = (*x).max(c.len());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let n = cells.len();
        cells
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                if i + 1 == n {
                    c.to_string()
                } else {
                    format!("{c:<width$}", width = w.get(i).copied().unwrap_or(0))
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = vec![line(head.to_vec())];
    out.extend(
        rows.iter()
            .map(|r| line(r.iter().map(String::as_str).collect())),
    );
    out
}

fn opt(o: Option<i64>) -> String {
    o.map_or_else(|| "-".to_string(), |o| o.to_string())
}

fn group_json(g: &GroupState) -> Value {
    json!({
        "type": "group",
        "group": g.group,
        "state": g.state,
        "found": g.found,
        "protocol_type": g.protocol_type,
        "protocol": g.protocol,
        "members": g.members.iter().map(|m| json!({
            "member_id": m.member_id,
            "client_id": m.client_id,
            "host": m.host,
            "assignment": m.assignment.as_ref().map(|a| a.iter()
                .map(|tp| json!({"topic": tp.topic, "partition": tp.partition}))
                .collect::<Vec<_>>()),
        })).collect::<Vec<_>>(),
    })
}

fn group_text(g: &GroupState) -> Vec<String> {
    let mut v = vec![format!(
        "group {}: {}{}, {} member(s){}",
        g.group,
        g.state,
        if g.found {
            ""
        } else {
            " (not known to the broker)"
        },
        g.members.len(),
        if g.protocol.is_empty() {
            String::new()
        } else {
            format!(" ({}/{})", g.protocol_type, g.protocol)
        }
    )];
    for m in &g.members {
        let parts = match &m.assignment {
            None => "assignment not reported".to_string(),
            Some(a) if a.is_empty() => "no partitions".to_string(),
            Some(a) => a
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        };
        v.push(format!(
            "  member {} client {} host {}: {parts}",
            m.member_id, m.client_id, m.host
        ));
    }
    v
}

fn note_json(n: &Note) -> Value {
    let mut v = serde_json::to_value(n).unwrap_or_else(|_| json!({}));
    if let Some(o) = v.as_object_mut() {
        o.insert("message".into(), Value::from(n.message()));
    }
    v
}

fn step_json(s: &Step) -> Value {
    json!({
        "type": "partition",
        "topic": s.tp.topic,
        "partition": s.tp.partition,
        "current": s.current,
        "target": s.target,
        "log_start": s.log_start,
        "log_end": s.log_end,
        "moves": s.moves(),
        "notes": s.notes.iter().map(note_json).collect::<Vec<_>>(),
    })
}

fn plan_text(steps: &[Step]) -> Vec<String> {
    let rows: Vec<Vec<String>> = steps
        .iter()
        .map(|s| {
            vec![
                s.tp.topic.clone(),
                s.tp.partition.to_string(),
                opt(s.current),
                opt(s.target),
                s.log_start.to_string(),
                s.log_end.to_string(),
                s.notes
                    .iter()
                    .map(Note::message)
                    .collect::<Vec<_>>()
                    .join("; "),
            ]
        })
        .collect();
    table(
        &[
            "TOPIC",
            "PARTITION",
            "CURRENT",
            "TARGET",
            "LOG-START",
            "LOG-END",
            "NOTE",
        ],
        &rows,
    )
}

// ---------------------------------------------------------------------------------------------
// Shared set-up

fn connect(conn: &ConnArgs, group: &str) -> Result<GroupClient, String> {
    if group.is_empty() {
        return Err("--group: empty group id".to_string());
    }
    if conn.bootstrap_server.trim().is_empty() {
        return Err("--bootstrap-server: empty".to_string());
    }
    let settings = settings(conn)?;
    GroupClient::new(
        &conn.bootstrap_server,
        group,
        &settings,
        Duration::from_secs(conn.timeout),
    )
    .map_err(|e| e.to_string())
}

fn settings(conn: &ConnArgs) -> Result<Settings, String> {
    conn.settings
        .iter()
        .map(|kv| Settings::parse_one(kv))
        .collect::<Result<Vec<_>, _>>()
        .map(Settings)
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

// ---------------------------------------------------------------------------------------------
// describe

fn describe(a: &DescribeArgs) -> Outcome {
    let mut out = Out::new(a.conn.format, "describe");
    let client = match connect(&a.conn, &a.group) {
        Ok(c) => c,
        Err(e) => return out.trouble(&e),
    };
    let fetched = (|| -> Result<_, GroupError> {
        let g = client.describe()?;
        let mut tps: BTreeSet<TopicPartition> = client.committed_all()?.into_keys().collect();
        for m in &g.members {
            tps.extend(m.assignment.iter().flatten().cloned());
        }
        let tps: Vec<TopicPartition> = tps.into_iter().collect();
        let committed = client.committed(&tps)?;
        let wm = client.watermarks(&tps)?;
        Ok((g, tps, committed, wm))
    })();
    let (g, tps, committed, wm) = match fetched {
        Ok(v) => v,
        Err(e) => return out.trouble(&e.to_string()),
    };
    let owner: BTreeMap<&TopicPartition, &str> = g
        .members
        .iter()
        .flat_map(|m| {
            m.assignment
                .iter()
                .flatten()
                .map(move |tp| (tp, m.member_id.as_str()))
        })
        .collect();
    out.json(group_json(&g));
    for l in group_text(&g) {
        out.text(&l);
    }
    let mut rows = Vec::new();
    let mut total_lag = 0i64;
    for tp in &tps {
        let c = committed.get(tp).copied().flatten();
        let (start, end) = wm.get(tp).copied().unwrap_or((0, 0));
        let lag = c.map(|c| (end - c).max(0));
        total_lag += lag.unwrap_or(0);
        let member = owner.get(tp).copied();
        out.json(json!({
            "type": "partition",
            "topic": tp.topic,
            "partition": tp.partition,
            "committed": c,
            "log_start": start,
            "log_end": end,
            "lag": lag,
            "member_id": member,
        }));
        rows.push(vec![
            tp.topic.clone(),
            tp.partition.to_string(),
            opt(c),
            start.to_string(),
            end.to_string(),
            opt(lag),
            member.unwrap_or("-").to_string(),
        ]);
    }
    if !rows.is_empty() {
        for l in table(
            &[
                "TOPIC",
                "PARTITION",
                "COMMITTED",
                "LOG-START",
                "LOG-END",
                "LAG",
                "MEMBER",
            ],
            &rows,
        ) {
            out.text(&l);
        }
    }
    let exists = g.found || !committed.values().all(Option::is_none) || !tps.is_empty();
    out.json(json!({
        "type": "summary",
        "group": g.group,
        "state": g.state,
        "exists": exists,
        "members": g.members.len(),
        "partitions": tps.len(),
        "lag": total_lag,
    }));
    if exists {
        out.text(&format!(
            "{} partition(s), total lag {total_lag}",
            tps.len()
        ));
        Outcome::Clean
    } else {
        let msg = format!(
            "group {} does not exist (no members, no committed offsets)",
            g.group
        );
        out.text(&msg);
        eprintln!("drkit offsets describe: {msg}");
        Outcome::Problems
    }
}

// ---------------------------------------------------------------------------------------------
// reset

/// The target, validated and with its files read, before anything is sent.
enum Target {
    Same(Want),
    /// A time (epoch ms): looked up per partition.
    Time(i64),
    File(BTreeMap<TopicPartition, i64>),
    Scan(offsets::ScanDamage),
}

enum Scope {
    All,
    Topics(Vec<(String, Vec<i32>)>),
    /// No scope flag: the file's or report's partitions decide.
    Given,
}

fn parse_topic_spec(s: &str) -> Result<(String, Vec<i32>), String> {
    let (t, parts) = match s.split_once(':') {
        Some((t, p)) => {
            let ps = p
                .split(',')
                .map(|x| x.trim().parse::<i32>().ok().filter(|p| *p >= 0))
                .collect::<Option<Vec<i32>>>()
                .ok_or_else(|| format!("--topic {s}: expected TOPIC or TOPIC:P,P,..."))?;
            (t, ps)
        }
        None => (s, Vec::new()),
    };
    if t.trim().is_empty() {
        return Err(format!("--topic {s:?}: empty topic"));
    }
    Ok((t.trim().to_string(), parts))
}

fn read_text(flag: &str, p: &Path) -> Result<String, String> {
    std::fs::read_to_string(p).map_err(|e| format!("{flag} {}: {e}", p.display()))
}

fn validate(a: &ResetArgs) -> Result<(Scope, Target), String> {
    let scope = if a.all_topics {
        Scope::All
    } else if !a.topic.is_empty() {
        Scope::Topics(
            a.topic
                .iter()
                .map(|s| parse_topic_spec(s))
                .collect::<Result<_, _>>()?,
        )
    } else if a.from_file.is_some() || a.from_scan.is_some() {
        Scope::Given
    } else {
        return Err("a scope is required: --all-topics or --topic T[:P,...]".to_string());
    };
    let target = if a.to_earliest {
        Target::Same(Want::Earliest)
    } else if a.to_latest {
        Target::Same(Want::Latest)
    } else if a.to_current {
        Target::Same(Want::Current)
    } else if let Some(o) = a.to_offset {
        Target::Same(Want::Offset(o))
    } else if let Some(n) = a.shift_by {
        Target::Same(Want::ShiftBy(n))
    } else if let Some(t) = &a.to_datetime {
        Target::Time(offsets::parse_datetime(t).map_err(|e| format!("--to-datetime: {e}"))?)
    } else if let Some(d) = &a.by_duration {
        let ms = offsets::parse_duration(d).map_err(|e| format!("--by-duration: {e}"))?;
        Target::Time(offsets::time_before(now_ms(), ms))
    } else if let Some(f) = &a.from_file {
        let text = read_text("--from-file", f)?;
        Target::File(
            offsets::read_csv(&text, &a.group)
                .map_err(|e| format!("--from-file {}: {e}", f.display()))?,
        )
    } else if let Some(f) = &a.from_scan {
        let text = read_text("--from-scan", f)?;
        let scan =
            offsets::read_scan(&text).map_err(|e| format!("--from-scan {}: {e}", f.display()))?;
        if !scan.complete {
            return Err(format!(
                "--from-scan {}: no summary line: the report is cut short or not from `drkit segments verify --format json`",
                f.display()
            ));
        }
        Target::Scan(scan)
    } else {
        return Err("a target is required".to_string());
    };
    if let Some(p) = &a.export {
        if p.exists() {
            return Err(format!(
                "--export {}: exists (never overwritten)",
                p.display()
            ));
        }
    }
    if let Some(p) = &a.snapshot {
        if p.exists() {
            return Err(format!(
                "--snapshot {}: exists (never overwritten)",
                p.display()
            ));
        }
    }
    Ok((scope, target))
}

/// The partitions a scope names, checked against the broker.
fn resolve_scope(
    client: &GroupClient,
    scope: &Scope,
    given: &BTreeSet<TopicPartition>,
) -> Result<BTreeSet<TopicPartition>, GroupError> {
    Ok(match scope {
        Scope::All => client.committed_all()?.into_keys().collect(),
        Scope::Topics(ts) => {
            let mut s = BTreeSet::new();
            for (t, ps) in ts {
                s.extend(client.partitions(t, ps)?);
            }
            s
        }
        Scope::Given => {
            let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
            for tp in given {
                by_topic.entry(&tp.topic).or_default().push(tp.partition);
            }
            let mut s = BTreeSet::new();
            for (t, ps) in by_topic {
                s.extend(client.partitions(t, &ps)?);
            }
            s
        }
    })
}

fn reset(a: &ResetArgs) -> Outcome {
    let mut out = Out::new(a.conn.format, "reset");
    let (scope, target) = match validate(a) {
        Ok(v) => v,
        Err(e) => return out.trouble(&e),
    };
    let client = match connect(&a.conn, &a.group) {
        Ok(c) => c,
        Err(e) => return out.trouble(&e),
    };
    let g = match client.describe() {
        Ok(g) => g,
        Err(e) => return out.trouble(&e.to_string()),
    };
    out.json(group_json(&g));
    for l in group_text(&g) {
        out.text(&l);
    }
    if !g.is_inactive() {
        let e = GroupError::Active {
            group: g.group.clone(),
            state: g.state.clone(),
            members: g.members.len(),
        };
        return refused(&mut out, "reset", &g, &e.to_string());
    }
    let missing = match a.missing_time {
        MissingTimeArg::Fail => MissingTime::Fail,
        MissingTimeArg::Latest => MissingTime::Latest,
    };
    let built = (|| -> Result<Vec<(PartitionState, Want)>, GroupError> {
        let given: BTreeSet<TopicPartition> = match &target {
            Target::File(m) => m.keys().cloned().collect(),
            Target::Scan(s) => s.partitions.keys().cloned().collect(),
            _ => BTreeSet::new(),
        };
        let mut tps = resolve_scope(&client, &scope, &given)?;
        match (&target, &scope) {
            // The file names the partitions; a scope flag only narrows it.
            (Target::File(_), Scope::All | Scope::Topics(_)) => tps.retain(|tp| given.contains(tp)),
            // With no scope flag, the group's other partitions of the scanned topics are shown
            // too ("no damage in the scan"): topics the scan did not cover are not.
            (Target::Scan(_), Scope::Given) => {
                let topics: BTreeSet<&str> = given.iter().map(|tp| tp.topic.as_str()).collect();
                tps.extend(
                    client
                        .committed_all()?
                        .into_keys()
                        .filter(|tp| topics.contains(tp.topic.as_str())),
                );
            }
            _ => {}
        }
        let tps: Vec<TopicPartition> = tps.into_iter().collect();
        let committed = client.committed(&tps)?;
        let wm = client.watermarks(&tps)?;
        let times = match &target {
            Target::Time(at) => client.offsets_for_time(&tps, *at)?,
            _ => BTreeMap::new(),
        };
        Ok(tps
            .into_iter()
            .map(|tp| {
                let (log_start, log_end) = wm.get(&tp).copied().unwrap_or((0, 0));
                let want = match &target {
                    Target::Same(w) => w.clone(),
                    Target::Time(at) => Want::Time {
                        at_ms: *at,
                        found: times.get(&tp).copied().flatten(),
                    },
                    Target::File(m) => m
                        .get(&tp)
                        .map_or(Want::Keep(Note::NoCommittedOffset), |o| Want::Offset(*o)),
                    Target::Scan(s) => {
                        s.partitions
                            .get(&tp)
                            .map_or(Want::Keep(Note::NoDamageInScan), |d| Want::BackTo {
                                offset: d.offset,
                                kind: d.kind.clone(),
                            })
                    }
                };
                let st = PartitionState {
                    committed: committed.get(&tp).copied().flatten(),
                    tp,
                    log_start,
                    log_end,
                };
                (st, want)
            })
            .collect())
    })();
    let parts = match built {
        Ok(p) => p,
        Err(e) => return out.trouble(&e.to_string()),
    };
    if let Target::Scan(s) = &target {
        for u in &s.unplaced {
            out.warn(&format!("--from-scan: {u}: cannot move a group"));
        }
    }
    if parts.is_empty() {
        let why = match scope {
            Scope::All => "the group has no committed offsets (name partitions with --topic)",
            _ => "no partition in scope",
        };
        return refused(&mut out, "reset", &g, &format!("nothing to reset: {why}"));
    }
    let steps = match plan(&parts, missing) {
        Ok(s) => s,
        Err(e) => return refused(&mut out, "reset", &g, &e.to_string()),
    };
    apply(
        &mut out,
        &client,
        &a.conn,
        &g,
        &steps,
        a.execute,
        a.export.as_deref(),
        a.snapshot.as_deref(),
    )
}

/// Exit 1: the command refused to act. In JSON the summary says why.
fn refused(out: &mut Out, cmd: &str, g: &GroupState, msg: &str) -> Outcome {
    eprintln!("drkit offsets {cmd}: refused: {msg}");
    out.text(&format!("refused: {msg}"));
    out.json(json!({
        "type": "summary",
        "command": cmd,
        "group": g.group,
        "state": g.state,
        "execute": false,
        "applied": false,
        "partitions": 0,
        "moving": 0,
        "snapshot": null,
        "export": null,
        "refused": msg,
    }));
    Outcome::Problems
}

/// Prints the plan, exports it, and with `execute` writes the snapshot and commits.
#[allow(clippy::too_many_arguments)]
fn apply(
    out: &mut Out,
    client: &GroupClient,
    conn: &ConnArgs,
    g: &GroupState,
    steps: &[Step],
    execute: bool,
    export: Option<&Path>,
    snapshot: Option<&Path>,
) -> Outcome {
    let cmd = out.cmd;
    for s in steps {
        out.json(step_json(s));
        for n in s.notes.iter().filter(|n| n.is_warning()) {
            let to = s
                .target
                .map(|t| format!(" (target {t})"))
                .unwrap_or_default();
            eprintln!(
                "drkit offsets {cmd}: warning: {}: {}{to}",
                s.tp,
                n.message()
            );
        }
    }
    for l in plan_text(steps) {
        out.text(&l);
    }
    let moving: Vec<&Step> = steps.iter().filter(|s| s.moves()).collect();
    let mut summary = json!({
        "type": "summary",
        "command": cmd,
        "group": g.group,
        "state": g.state,
        "execute": execute,
        "applied": false,
        "partitions": steps.len(),
        "moving": moving.len(),
        "snapshot": null,
        "export": null,
        "refused": null,
    });
    if let Some(p) = export {
        let csv = offsets::write_csv(steps);
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(p)
            .and_then(|mut f| f.write_all(csv.as_bytes()).and_then(|_| f.sync_all()));
        if let Err(e) = written {
            return out.trouble(&format!("--export {}: {e}", p.display()));
        }
        out.text(&format!("plan exported to {}", p.display()));
        summary["export"] = Value::from(p.display().to_string());
    }
    if !execute {
        out.text(&format!(
            "dry run: {} of {} partition(s) would move; nothing was changed (--execute applies it)",
            moving.len(),
            steps.len()
        ));
        out.json(summary);
        return Outcome::Clean;
    }
    if moving.is_empty() {
        out.text("nothing to change: every target equals the committed offset, or there is none");
        summary["applied"] = Value::from(true);
        out.json(summary);
        return Outcome::Clean;
    }
    // The snapshot records every planned partition as the plan saw it; the guarded commit then
    // checks the broker still says the same, so the snapshot is exactly what the commit replaced.
    let planned: BTreeMap<TopicPartition, Option<i64>> =
        steps.iter().map(|s| (s.tp.clone(), s.current)).collect();
    let snap = Snapshot::new(&g.group, &conn.bootstrap_server, now_ms(), cmd, &planned);
    let path = snapshot
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(default_snapshot_name(&g.group, now_ms())));
    if let Err(e) = snap.write_new(&path) {
        return out.trouble(&format!(
            "snapshot {}: {e}; nothing was committed",
            path.display()
        ));
    }
    let shown = path.display().to_string();
    summary["snapshot"] = Value::from(shown.clone());
    out.json(json!({"type": "snapshot", "path": shown, "partitions": planned.len()}));
    out.text(&format!(
        "snapshot written to {shown} (undo: drkit offsets restore {shown} --bootstrap-server {} --execute)",
        conn.bootstrap_server
    ));
    let targets: BTreeMap<TopicPartition, i64> = moving
        .iter()
        .filter_map(|s| s.target.map(|t| (s.tp.clone(), t)))
        .collect();
    match client.commit_checked(&planned, &targets) {
        Ok(()) => {
            out.text(&format!(
                "applied: {} partition(s) committed and read back",
                targets.len()
            ));
            summary["applied"] = Value::from(true);
            out.json(summary);
            Outcome::Clean
        }
        Err(e @ GroupError::CommitRejected { .. }) => {
            let msg = e.to_string();
            eprintln!("drkit offsets {cmd}: refused: {msg}");
            out.text(&format!("refused: {msg}"));
            summary["refused"] = Value::from(msg);
            out.json(summary);
            Outcome::Problems
        }
        Err(e @ (GroupError::Active { .. } | GroupError::Changed { .. })) => {
            let msg = format!("{e} (checked right before the commit; nothing was committed)");
            eprintln!("drkit offsets {cmd}: refused: {msg}");
            out.text(&format!("refused: {msg}"));
            summary["refused"] = Value::from(msg);
            out.json(summary);
            Outcome::Problems
        }
        Err(e @ GroupError::NotApplied { .. }) => {
            let msg = format!("{e}; the snapshot {shown} holds the offsets from before");
            eprintln!("drkit offsets {cmd}: {msg}");
            out.text(&msg);
            summary["refused"] = Value::from(msg);
            out.json(summary);
            Outcome::Problems
        }
        Err(e) => out.trouble(&format!(
            "{e}; the commit may or may not have happened: check with `drkit offsets describe`; the snapshot {shown} holds the offsets from before"
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// restore

fn restore(a: &RestoreArgs) -> Outcome {
    let mut out = Out::new(a.conn.format, "restore");
    let snap = match read_text("snapshot", &a.file).and_then(|t| {
        Snapshot::parse(&t).map_err(|e| format!("snapshot {}: {e}", a.file.display()))
    }) {
        Ok(s) => s,
        Err(e) => return out.trouble(&e),
    };
    if let Some(p) = &a.snapshot {
        if p.exists() {
            return out.trouble(&format!(
                "--snapshot {}: exists (never overwritten)",
                p.display()
            ));
        }
    }
    if snap.bootstrap != a.conn.bootstrap_server {
        out.warn(&format!(
            "the snapshot was taken through {}, this run uses {}",
            snap.bootstrap, a.conn.bootstrap_server
        ));
    }
    let client = match connect(&a.conn, &snap.group) {
        Ok(c) => c,
        Err(e) => return out.trouble(&e),
    };
    let g = match client.describe() {
        Ok(g) => g,
        Err(e) => return out.trouble(&e.to_string()),
    };
    out.json(group_json(&g));
    for l in group_text(&g) {
        out.text(&l);
    }
    out.text(&format!(
        "restoring {} taken {} by `{}`",
        a.file.display(),
        snap.taken_at,
        snap.command
    ));
    if !g.is_inactive() {
        let e = GroupError::Active {
            group: g.group.clone(),
            state: g.state.clone(),
            members: g.members.len(),
        };
        return refused(&mut out, "restore", &g, &e.to_string());
    }
    let wants = snap.wants();
    let tps: Vec<TopicPartition> = wants.iter().map(|(tp, _)| tp.clone()).collect();
    let fetched = client
        .committed(&tps)
        .and_then(|c| client.watermarks(&tps).map(|w| (c, w)));
    let (committed, wm) = match fetched {
        Ok(v) => v,
        Err(e) => return out.trouble(&e.to_string()),
    };
    let parts: Vec<(PartitionState, Want)> = wants
        .into_iter()
        .map(|(tp, w)| {
            let (log_start, log_end) = wm.get(&tp).copied().unwrap_or((0, 0));
            let st = PartitionState {
                committed: committed.get(&tp).copied().flatten(),
                tp,
                log_start,
                log_end,
            };
            (st, w)
        })
        .collect();
    let steps = match plan(&parts, MissingTime::Fail) {
        Ok(s) => s,
        Err(e) => return refused(&mut out, "restore", &g, &e.to_string()),
    };
    apply(
        &mut out,
        &client,
        &a.conn,
        &g,
        &steps,
        a.execute,
        None,
        a.snapshot.as_deref(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_specs() {
        assert_eq!(parse_topic_spec("t").unwrap(), ("t".to_string(), vec![]));
        assert_eq!(
            parse_topic_spec("t:0,2").unwrap(),
            ("t".to_string(), vec![0, 2])
        );
        assert!(parse_topic_spec("t:").is_err());
        assert!(parse_topic_spec("t:x").is_err());
        assert!(parse_topic_spec("t:-1").is_err());
        assert!(parse_topic_spec(":1").is_err());
    }

    #[test]
    fn table_aligns_columns() {
        let t = table(&["A", "BB"], &[vec!["long".into(), "x".into()]]);
        assert_eq!(t, vec!["A     BB", "long  x"]);
    }

    #[test]
    fn notes_carry_kind_and_message() {
        let v = note_json(&Note::ClampedToLogEnd { requested: 9 });
        assert_eq!(v["kind"], "clamped_to_log_end");
        assert_eq!(v["requested"], 9);
        assert!(v["message"].as_str().unwrap().contains("clamped"));
    }
}
