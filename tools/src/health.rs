//! `drkit health`: flags to a validated checks file, then `--once` or `--watch`, and the printers
//! (text, or JSON Lines documented in docs/HEALTH.md). Exit codes are Nagios': 0 OK, 1 WARNING,
//! 2 CRITICAL, 3 UNKNOWN (including a checks file that cannot be read or is invalid).

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use clap::Args;
use health::once::overall;
use health::watch::WatchSummary;
use health::{Config, Event, State, WatchOptions};
use serde_json::{json, Value};

use crate::cli::Format;
use crate::output::{is_broken_pipe, line, Outcome};

/// `drkit health` flags (docs/HEALTH.md).
#[derive(Args, Debug)]
pub struct HealthArgs {
    /// The checks file (TOML; docs/HEALTH.md).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Probe every check once and exit with the worst state (the default).
    #[arg(long, conflicts_with = "watch")]
    once: bool,
    /// Keep probing: state changes after thresholds, recovery commands, escalation.
    #[arg(long)]
    watch: bool,
    /// With --watch: stop after this many rounds (a round probes every check that is due).
    #[arg(long, requires = "watch", value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    iterations: Option<u64>,
    /// With --watch: stop after this long (e.g. 30s, 5m, 1h).
    #[arg(long, requires = "watch", value_name = "DURATION", value_parser = health::duration::parse)]
    max_runtime: Option<std::time::Duration>,
    /// librdkafka setting for every kafka check (`-X key=value`, repeatable; after the file's
    /// `settings`). Secret values are never printed.
    #[arg(short = 'X', value_name = "KEY=VALUE", value_parser = replay::kafka::Settings::parse_one)]
    kafka_settings: Vec<(String, String)>,
    /// Output format: readable text, or JSON Lines (schema in docs/HEALTH.md).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

fn outcome(s: State) -> Outcome {
    match s {
        State::Ok => Outcome::Clean,
        State::Warning => Outcome::Problems,
        State::Critical => Outcome::Trouble,
        State::Unknown => Outcome::Unknown,
    }
}

pub fn run(args: HealthArgs) -> Outcome {
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let shown = args.config.display().to_string();
    let mut cfg = match std::fs::read_to_string(&args.config)
        .map_err(|e| format!("{shown}: {e}"))
        .and_then(|text| {
            let base = args.config.parent().unwrap_or(std::path::Path::new("."));
            health::config::parse(&text, &|k| std::env::var(k).ok(), base)
                .map_err(|e| format!("{shown}: {e}"))
        }) {
        Ok(c) => c,
        Err(message) => {
            eprintln!("drkit health: UNKNOWN: {message}");
            if args.format == Format::Json {
                let v = json!({"type": "error", "state": "UNKNOWN", "code": 3, "message": message});
                let _ = line(&mut out, &v.to_string()).and_then(|_| out.flush());
            }
            return Outcome::Unknown;
        }
    };
    for c in &mut cfg.checks {
        if let health::Kind::Kafka { settings, .. } = &mut c.kind {
            settings.0.extend(args.kafka_settings.iter().cloned());
        }
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("drkit health: UNKNOWN: cannot start the async runtime: {e}");
            return Outcome::Unknown;
        }
    };
    let r = if args.watch {
        let opts = WatchOptions {
            iterations: args.iterations,
            max_runtime: args.max_runtime,
        };
        watch(&rt, &cfg, &opts, args.format, &mut out)
    } else {
        once(&rt, &cfg, args.format, &mut out)
    };
    // A probe that timed out may still hold a blocking thread (librdkafka's metadata call has its
    // own timeout): the verdict is final, do not wait for it.
    rt.shutdown_background();
    let (state, written) = r;
    match written.and_then(|_| out.flush()) {
        // A reader that went away (`| head`) does not change the verdict.
        Ok(()) => outcome(state),
        Err(e) if is_broken_pipe(&e) => outcome(state),
        Err(e) => {
            eprintln!("drkit health: UNKNOWN: writing the report: {e}");
            Outcome::Unknown
        }
    }
}

fn once(
    rt: &tokio::runtime::Runtime,
    cfg: &Config,
    format: Format,
    out: &mut impl Write,
) -> (State, io::Result<()>) {
    let results = rt.block_on(health::run_once(cfg));
    let state = overall(&results);
    (state, print_once(cfg, &results, state, format, out))
}

fn print_once(
    cfg: &Config,
    results: &[health::CheckResult],
    state: State,
    format: Format,
    out: &mut impl Write,
) -> io::Result<()> {
    let count = |s: State| results.iter().filter(|r| r.state == s).count();
    if format == Format::Text {
        line(
            out,
            &format!(
                "{:<9} {:<20} {:<9} {:>9}  {}",
                "STATE", "CHECK", "KIND", "ELAPSED", "MESSAGE"
            ),
        )?;
    }
    for r in results {
        let Some(c) = cfg.checks.get(r.index) else {
            continue;
        };
        let name_of = |i: &usize| cfg.checks.get(*i).map(|d| d.name.clone());
        match format {
            Format::Json => line(
                out,
                &json!({
                    "type": "check",
                    "check": c.name,
                    "kind": c.kind.as_str(),
                    "target": c.shown_target(),
                    "state": r.state.as_str(),
                    "code": r.state.code(),
                    "message": r.message,
                    "elapsed_ms": ms(r.elapsed),
                    "depends_on": c.depends_on.iter().filter_map(name_of).collect::<Vec<_>>(),
                    "blocked_by": r.blocked_by.as_ref().and_then(name_of),
                })
                .to_string(),
            )?,
            Format::Text => {
                let elapsed = if r.blocked_by.is_some() {
                    "-".to_string()
                } else {
                    format!("{} ms", ms(r.elapsed))
                };
                line(
                    out,
                    &format!(
                        "{:<9} {:<20} {:<9} {:>9}  {} ({})",
                        r.state.as_str(),
                        c.name,
                        c.kind.as_str(),
                        elapsed,
                        r.message,
                        c.shown_target()
                    ),
                )?
            }
        }
    }
    let summary = Summary {
        state,
        checks: results.len(),
        counts: State::ALL.map(count),
        rounds: 1,
    };
    summary.print(format, out)
}

fn watch(
    rt: &tokio::runtime::Runtime,
    cfg: &Config,
    opts: &WatchOptions,
    format: Format,
    out: &mut impl Write,
) -> (State, io::Result<()>) {
    let mut err: Option<io::Error> = None;
    let stop = {
        let _context = rt.enter();
        health::stop_requested()
    };
    let summary: WatchSummary = rt.block_on(health::watch(cfg, opts, stop, |e: &Event| {
        let text = match format {
            Format::Json => e.to_json().to_string(),
            Format::Text => event_text(e),
        };
        // Each event is flushed: a supervisor reads them as they happen.
        match line(out, &text).and_then(|_| out.flush()) {
            Ok(()) => true,
            Err(e) => {
                err = Some(e);
                false
            }
        }
    }));
    let state = summary.overall();
    if let Some(e) = err {
        return (state, Err(e));
    }
    let states: Vec<State> = summary
        .states
        .iter()
        .map(|(_, s)| s.unwrap_or(State::Unknown))
        .collect();
    let printed = Summary {
        state,
        checks: states.len(),
        counts: State::ALL.map(|s| states.iter().filter(|x| **x == s).count()),
        rounds: summary.rounds,
    }
    .print(format, out);
    (state, printed)
}

struct Summary {
    state: State,
    checks: usize,
    /// In [`State::ALL`] order: OK, WARNING, UNKNOWN, CRITICAL.
    counts: [usize; 4],
    rounds: u64,
}

impl Summary {
    fn print(&self, format: Format, out: &mut impl Write) -> io::Result<()> {
        let [ok, warning, unknown, critical] = self.counts;
        match format {
            Format::Json => line(
                out,
                &json!({
                    "type": "summary",
                    "state": self.state.as_str(),
                    "code": self.state.code(),
                    "checks": self.checks,
                    "ok": ok,
                    "warning": warning,
                    "unknown": unknown,
                    "critical": critical,
                    "rounds": self.rounds,
                })
                .to_string(),
            ),
            Format::Text => line(
                out,
                &format!(
                    "{}: {} check(s): {ok} ok, {warning} warning, {unknown} unknown, {critical} critical (exit {})",
                    self.state.as_str(),
                    self.checks,
                    self.state.code()
                ),
            ),
        }
    }
}

fn event_text(e: &Event) -> String {
    let v: Value = e.to_json();
    let time = v["time_ms"]
        .as_i64()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default();
    let body = match e {
        Event::State {
            check,
            from,
            to,
            message,
            ..
        } => format!(
            "{check}: {} -> {to}: {message}",
            from.map_or("(start)", State::as_str)
        ),
        Event::Recovery {
            check,
            attempt,
            runs_in_window,
            budget,
            outcome,
            next_in,
            ..
        } => format!(
            "{check}: recovery #{attempt} ({runs_in_window}/{budget} in window): {}{}; next no sooner than {} ms",
            if outcome.ok { "ok: " } else { "FAILED: " },
            outcome.message,
            ms(*next_in)
        ),
        Event::RecoverySkipped {
            check,
            runs_in_window,
            budget,
            retry_in,
            ..
        } => format!(
            "{check}: recovery skipped: budget spent ({runs_in_window}/{budget}); next possible in {} ms",
            ms(*retry_in)
        ),
        Event::Escalation {
            check,
            step,
            after,
            webhook,
            outcome,
            ..
        } => format!(
            "{check}: escalation step {step} ({} after {} ms): {}{}",
            if *webhook { "webhook" } else { "command" },
            ms(*after),
            if outcome.ok { "ok: " } else { "FAILED: " },
            outcome.message
        ),
    };
    format!("{time} {body}")
}

fn ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
