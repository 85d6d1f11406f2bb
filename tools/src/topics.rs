//! `drkit topics`: partition state as the cluster reports it (docs/TOPICS.md).

use std::io::Write;

use clap::{Args, Subcommand};
use kafka_admin::client::{Admin, ClientConfig};
use kafka_admin::topics::{self, DescribeOptions, PartitionState};
use replay::kafka::Settings;
use serde_json::json;

use crate::cli::Format;
use crate::output::{is_broken_pipe, line, Outcome};

#[derive(Subcommand, Debug)]
pub enum TopicsCmd {
    /// Per partition: leader, replicas, in-sync and offline replicas, log start and end.
    Describe(DescribeArgs),
}

/// How to reach the cluster; shared by the commands that use the admin client.
#[derive(Args, Debug)]
pub struct ConnectArgs {
    /// A broker to bootstrap from (Kafka's flag name); several as HOST:PORT,HOST:PORT.
    #[arg(long, value_name = "HOST:PORT")]
    pub bootstrap_server: String,
    /// A client setting: client.id, request.timeout.ms, security.protocol=PLAINTEXT; repeatable.
    /// TLS and SASL are not supported by the admin client yet. Secret values are never printed.
    #[arg(short = 'X', value_name = "KEY=VALUE")]
    pub settings: Vec<String>,
}

impl ConnectArgs {
    /// Connects; the error is ready to print (secrets scrubbed). Settings the admin client does
    /// not use are named on stderr, so nobody believes a TLS or tuning flag took effect.
    pub fn connect(&self, cmd: &str) -> Result<Admin, String> {
        let mut settings = Settings::default();
        for kv in &self.settings {
            settings.0.push(Settings::parse_one(kv)?);
        }
        let (cfg, ignored) = ClientConfig::new(&self.bootstrap_server, &settings)
            .map_err(|e| settings.scrub(&e.to_string()))?;
        for k in ignored {
            eprintln!("drkit {cmd}: -X {k} is not used by the admin client");
        }
        Admin::connect(cfg).map_err(|e| settings.scrub(&e.to_string()))
    }
}

/// `drkit topics describe` flags.
#[derive(Args, Debug)]
pub struct DescribeArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Only this topic (repeatable; default: every topic).
    #[arg(long, value_name = "T")]
    pub topic: Vec<String>,
    /// Only partitions with fewer in-sync replicas than replicas.
    #[arg(long)]
    pub under_replicated: bool,
    /// Only partitions without a leader.
    #[arg(long)]
    pub unavailable: bool,
    /// Do not ask the leaders for log start and end offsets.
    #[arg(long)]
    pub no_offsets: bool,
    /// Output format: a table, or JSON Lines (schema in docs/TOPICS.md).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

pub fn run(cmd: TopicsCmd) -> Outcome {
    match cmd {
        TopicsCmd::Describe(a) => describe(a),
    }
}

pub fn error(cmd: &str, format: Format, msg: &str) {
    if format == Format::Json {
        println!("{}", json!({"type": "error", "message": msg}));
    }
    eprintln!("drkit {cmd}: {msg}");
}

/// Whether `p` passes the filters (both flags: either condition).
fn selected(p: &PartitionState, a: &DescribeArgs) -> bool {
    if !a.under_replicated && !a.unavailable {
        return true;
    }
    (a.under_replicated && p.under_replicated()) || (a.unavailable && p.unavailable())
}

fn describe(a: DescribeArgs) -> Outcome {
    let cmd = "topics describe";
    let mut admin = match a.connect.connect(cmd) {
        Ok(x) => x,
        Err(e) => {
            error(cmd, a.format, &e);
            return Outcome::Trouble;
        }
    };
    let opts = DescribeOptions {
        topics: a.topic.clone(),
        skip_offsets: a.no_offsets,
    };
    let parts = match topics::describe(&mut admin, &opts) {
        Ok(p) => p,
        Err(e) => {
            error(cmd, a.format, &e.to_string());
            return Outcome::Trouble;
        }
    };
    let shown: Vec<&PartitionState> = parts.iter().filter(|p| selected(p, &a)).collect();
    let under = parts.iter().filter(|p| p.under_replicated()).count();
    let unavailable = parts.iter().filter(|p| p.unavailable()).count();
    let errors = parts.iter().filter(|p| p.error.is_some()).count();
    let out = std::io::stdout();
    let mut out = out.lock();
    let r = print(
        &mut out,
        &shown,
        &a,
        parts.len(),
        under,
        unavailable,
        errors,
    );
    if let Err(e) = r.and_then(|_| out.flush()) {
        if !is_broken_pipe(&e) {
            eprintln!("drkit {cmd}: {e}");
            return Outcome::Trouble;
        }
    }
    if under + unavailable + errors > 0 {
        Outcome::Problems
    } else {
        Outcome::Clean
    }
}

/// Broker ids as `1,2,3`, or `-` for none.
fn list(v: &[i32]) -> String {
    if v.is_empty() {
        return "-".into();
    }
    let s: Vec<String> = v.iter().map(i32::to_string).collect();
    s.join(",")
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|x| x.to_string()).unwrap_or_else(|| "-".into())
}

fn print(
    out: &mut impl Write,
    shown: &[&PartitionState],
    a: &DescribeArgs,
    total: usize,
    under: usize,
    unavailable: usize,
    errors: usize,
) -> std::io::Result<()> {
    match a.format {
        Format::Json => {
            for p in shown {
                let v = json!({
                    "type": "partition",
                    "topic": p.topic,
                    "partition": p.partition,
                    "leader": p.leader,
                    "leader_epoch": p.leader_epoch,
                    "replicas": p.replicas,
                    "isr": p.isr,
                    "offline": p.offline,
                    "log_start": p.log_start,
                    "log_end": p.log_end,
                    "under_replicated": p.under_replicated(),
                    "unavailable": p.unavailable(),
                    "error": p.error,
                });
                line(out, &v.to_string())?;
            }
            let v = json!({
                "type": "summary",
                "partitions": total,
                "shown": shown.len(),
                "under_replicated": under,
                "unavailable": unavailable,
                "errors": errors,
            });
            line(out, &v.to_string())
        }
        Format::Text => {
            let tw = shown
                .iter()
                .map(|p| p.topic.len())
                .max()
                .unwrap_or(5)
                .max(5);
            line(
                out,
                &format!(
                    "{:<tw$}  {:>9}  {:>6}  {:<12}  {:<12}  {:<8}  {:>10}  {:>10}  NOTE",
                    "TOPIC",
                    "PARTITION",
                    "LEADER",
                    "REPLICAS",
                    "ISR",
                    "OFFLINE",
                    "LOG-START",
                    "LOG-END"
                ),
            )?;
            for p in shown {
                let mut note = vec![];
                if p.unavailable() {
                    note.push("no leader".to_string());
                }
                if p.under_replicated() {
                    note.push("under-replicated".to_string());
                }
                if let Some(e) = &p.error {
                    note.push(e.clone());
                }
                let row = format!(
                    "{:<tw$}  {:>9}  {:>6}  {:<12}  {:<12}  {:<8}  {:>10}  {:>10}  {}",
                    p.topic,
                    p.partition,
                    opt(p.leader),
                    list(&p.replicas),
                    list(&p.isr),
                    list(&p.offline),
                    opt(p.log_start),
                    opt(p.log_end),
                    note.join("; ")
                );
                line(out, row.trim_end())?;
            }
            line(
                out,
                &format!(
                    "{total} partitions: {under} under-replicated, {unavailable} without a leader, {errors} unreadable"
                ),
            )
        }
    }
}
