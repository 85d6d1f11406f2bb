//! `drkit validate snapshot` and `drkit validate`: flags to [`validate::Options`], the snapshot
//! document to stdout, and the checks as a pass/fail table or JSON Lines. Formats and rules:
//! docs/VALIDATE.md.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{DateTime, TimeDelta, Utc};
use clap::{Args, Subcommand};
use replay::gaps::{self, Window};
use replay::gaps_sql::{self, Source, TableName};
use serde_json::{json, Value};
use validate::{Check, Kind, Options, RowCounts, Snapshot, Status, TelemetrySpec, Tolerance};

use crate::cli::Format;
use crate::output::{is_broken_pipe, line, Outcome};

/// `drkit validate [--db URL --baseline FILE]` checks; `drkit validate snapshot` records.
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct ValidateArgs {
    #[command(subcommand)]
    pub cmd: Option<ValidateCmd>,
    #[command(flatten)]
    pub check: CheckArgs,
}

#[derive(Subcommand, Debug)]
pub enum ValidateCmd {
    /// Record the database's state as a JSON document on stdout (`> before.json`).
    Snapshot(SnapshotArgs),
}

/// What is collected, the same for the snapshot and for the live side of a check.
#[derive(Args, Debug)]
pub struct CollectArgs {
    /// PostgreSQL URL (the password is never printed).
    #[arg(long, value_name = "URL", required = true)]
    pub db: Option<String>,
    /// Planner estimates after ANALYZE instead of count(*) per table.
    #[arg(long)]
    pub fast: bool,
    /// With --fast, tables the planner estimates under this many rows are counted exactly anyway.
    #[arg(
        long,
        value_name = "ROWS",
        default_value_t = 100_000,
        requires = "fast"
    )]
    pub exact_below: u64,
    /// Telemetry table whose gaps are checked, as `drkit gaps --table` (default with --baseline:
    /// the baseline's).
    #[arg(long, value_name = "TABLE")]
    pub telemetry: Option<String>,
    /// The telemetry table's event-time column [default: timestamp].
    #[arg(long, value_name = "C")]
    pub time_column: Option<String>,
    /// The telemetry table's key column gaps are computed per [default: asset_id].
    #[arg(long, value_name = "COL", alias = "key-column")]
    pub by: Option<String>,
    /// Longest tolerated interval without an event per key [default: 5m].
    #[arg(long)]
    pub rpo: Option<String>,
    /// Start of the gap window [default: the baseline's, else 24 h before --until].
    #[arg(long)]
    pub since: Option<String>,
    /// End of the gap window, exclusive [default: the baseline's, else now].
    #[arg(long)]
    pub until: Option<String>,
}

#[derive(Args, Debug)]
pub struct SnapshotArgs {
    #[command(flatten)]
    pub collect: CollectArgs,
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    #[command(flatten)]
    pub collect: CollectArgs,
    /// A `drkit validate snapshot` document taken before; without it only the checks that need
    /// no baseline run (sequences, NOT VALID constraints, invalid indexes, gaps).
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Rows a table may have lost against the baseline and still pass.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub max_missing_rows: u64,
    /// Percent of a table's baseline rows it may have lost and still pass (the larger allowance
    /// of the two wins; at least 2 % when a count is an estimate).
    #[arg(long, value_name = "PCT", default_value_t = 0.0, value_parser = pct)]
    pub max_missing_pct: f64,
    /// Output format: a pass/fail table, or JSON Lines (schema in docs/VALIDATE.md).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Also list the checks that passed in text output (JSON always has them).
    #[arg(long, short)]
    pub verbose: bool,
}

fn pct(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(p) if (0.0..=100.0).contains(&p) => Ok(p),
        _ => Err(format!("{s:?} is not a percentage from 0 to 100")),
    }
}

/// A usage, connection or I/O problem: reported, exit 2.
struct Trouble(String);

impl<E: std::fmt::Display> From<E> for Trouble {
    fn from(e: E) -> Self {
        Trouble(e.to_string())
    }
}

pub fn run(a: ValidateArgs) -> Outcome {
    let r = match a.cmd {
        Some(ValidateCmd::Snapshot(s)) => snapshot(s),
        None => check(a.check),
    };
    match r {
        Ok(o) => o,
        Err(Trouble(msg)) => {
            eprintln!("drkit: validate: {msg}");
            Outcome::Trouble
        }
    }
}

/// `--since`/`--until`: RFC 3339, or a date-time or date without a zone (UTC).
fn parse_time(flag: &str, s: &str) -> Result<DateTime<Utc>, Trouble> {
    gaps::window_time(s).ok_or_else(|| Trouble(format!("{flag} {s:?}: not a time")))
}

/// The validated options: flags first, then what the baseline's telemetry section says, then
/// `drkit gaps`' defaults.
fn options(c: &CollectArgs, baseline: Option<&Snapshot>) -> Result<Options, Trouble> {
    let row_counts = if c.fast {
        RowCounts::Estimate {
            exact_below: c.exact_below,
        }
    } else {
        RowCounts::Exact
    };
    let base = baseline.and_then(|b| b.telemetry.as_ref());
    let table = c
        .telemetry
        .clone()
        .or_else(|| base.map(|t| t.table.clone()));
    let Some(table) = table else {
        let stray = [&c.time_column, &c.by, &c.rpo, &c.since, &c.until]
            .iter()
            .any(|f| f.is_some());
        if stray {
            return Err(Trouble(
                "--time-column, --by, --rpo, --since and --until need --telemetry TABLE".into(),
            ));
        }
        return Ok(Options {
            row_counts,
            telemetry: None,
        });
    };
    // The baseline's settings apply to its own table only.
    let base = base.filter(|t| t.table == table);
    let pick = |flag: &Option<String>, from: Option<String>, default: &str| {
        flag.clone().or(from).unwrap_or_else(|| default.to_string())
    };
    let time_column = pick(
        &c.time_column,
        base.map(|t| t.time_column.clone()),
        "timestamp",
    );
    let key_column = pick(&c.by, base.map(|t| t.key_column.clone()), "asset_id");
    let rpo = match (&c.rpo, base) {
        (Some(s), _) => gaps::parse_duration(s).ok_or_else(|| {
            Trouble(format!(
                "--rpo {s:?}: expected a duration such as 5m, 300s, 1h"
            ))
        })?,
        (None, Some(t)) => TimeDelta::try_milliseconds((t.rpo_seconds * 1000.0).round() as i64)
            .filter(|d| *d > TimeDelta::zero())
            .ok_or_else(|| {
                Trouble(format!(
                    "the baseline's telemetry.rpo_seconds {} is not a usable RPO",
                    t.rpo_seconds
                ))
            })?,
        (None, None) => TimeDelta::minutes(5),
    };
    let until = match (&c.until, base) {
        (Some(s), _) => parse_time("--until", s)?,
        (None, Some(t)) => parse_time("the baseline's telemetry.until", &t.until)?,
        (None, None) => Utc::now(),
    };
    let since = match (&c.since, base) {
        (Some(s), _) => parse_time("--since", s)?,
        (None, Some(t)) => parse_time("the baseline's telemetry.since", &t.since)?,
        (None, None) => until - TimeDelta::hours(24),
    };
    let window = Window::new(since, until, rpo)?;
    Ok(Options {
        row_counts,
        telemetry: Some(TelemetrySpec {
            source: Source {
                table: TableName::parse(&table)?,
                time_column,
                key_column,
            },
            window,
            expected: base.map(|t| t.keys.clone()).unwrap_or_default(),
        }),
    })
}

/// The snapshot of `--db`. With `missing_telemetry_fails`, a telemetry table or column that is
/// not there becomes a failed `gaps` check (a restore lost it) instead of an error.
fn collect(
    c: &CollectArgs,
    opts: &Options,
    missing_telemetry_fails: bool,
) -> Result<(Snapshot, Option<Check>), Trouble> {
    let url =
        c.db.as_deref()
            .ok_or_else(|| Trouble("--db URL is required".into()))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut client = gaps_sql::connect(url).await?;
        if !missing_telemetry_fails {
            return Ok((validate::snapshot(&mut client, opts).await?, None));
        }
        let tables_only = Options {
            row_counts: opts.row_counts,
            telemetry: None,
        };
        let mut s = validate::snapshot(&mut client, &tables_only).await?;
        let mut lost = None;
        if let Some(spec) = &opts.telemetry {
            match validate::collect::telemetry(&mut client, spec).await {
                Ok(t) => s.telemetry = Some(t),
                Err(e) if e.is_missing_telemetry() => {
                    lost = Some(validate::gaps_unavailable(
                        &spec.source.table.to_string(),
                        &e.to_string(),
                    ))
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok((s, lost))
    })
}

fn snapshot(a: SnapshotArgs) -> Result<Outcome, Trouble> {
    let opts = options(&a.collect, None)?;
    let (s, _) = collect(&a.collect, &opts, false)?;
    let text = serde_json::to_string_pretty(&s)?;
    let mut out = io::stdout().lock();
    if let Err(e) = line(&mut out, &text).and_then(|()| out.flush()) {
        if !is_broken_pipe(&e) {
            return Err(Trouble(format!("cannot write the snapshot: {e}")));
        }
    }
    eprintln!(
        "drkit: validate: snapshot of {}: {} tables ({} row counts), {} constraints, {} indexes, {} sequences{} in {} ms",
        s.database,
        s.tables.len(),
        if s.row_counts == "estimate" {
            "estimated"
        } else {
            "exact"
        },
        s.constraints.len(),
        s.indexes.len(),
        s.sequences.len(),
        s.telemetry
            .as_ref()
            .map(|t| format!(", {} gaps in {}", t.gaps.len(), t.table))
            .unwrap_or_default(),
        s.elapsed_ms
    );
    Ok(Outcome::Clean)
}

fn read_baseline(path: &Path) -> Result<Snapshot, Trouble> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Trouble(format!("--baseline {}: {e}", path.display())))?;
    Snapshot::from_json(&text).map_err(|e| Trouble(format!("--baseline {}: {e}", path.display())))
}

fn check(a: CheckArgs) -> Result<Outcome, Trouble> {
    let started = Instant::now();
    let baseline = match &a.baseline {
        Some(p) => Some(read_baseline(p)?),
        None => None,
    };
    let opts = options(&a.collect, baseline.as_ref())?;
    let (live, lost) = collect(&a.collect, &opts, true)?;
    let tol = Tolerance {
        max_missing_rows: a.max_missing_rows,
        max_missing_pct: a.max_missing_pct,
    };
    let mut checks = validate::compare(baseline.as_ref(), &live, &tol);
    checks.extend(lost);
    let report = Summary {
        checks: &checks,
        baseline: a.baseline.as_deref(),
        live: &live,
        elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    };
    let mut out = io::BufWriter::new(io::stdout().lock());
    let written = match a.format {
        Format::Text => write_text(&mut out, &report, a.verbose),
        Format::Json => write_json(&mut out, &report),
    }
    .and_then(|()| out.flush());
    if let Err(e) = written {
        if !is_broken_pipe(&e) {
            return Err(Trouble(format!("cannot write output: {e}")));
        }
    }
    Ok(if report.failed() {
        Outcome::Problems
    } else {
        Outcome::Clean
    })
}

struct Summary<'a> {
    checks: &'a [Check],
    baseline: Option<&'a Path>,
    live: &'a Snapshot,
    elapsed_ms: u64,
}

impl Summary<'_> {
    fn count(&self, s: Status) -> usize {
        self.checks.iter().filter(|c| c.status == s).count()
    }
    fn failed(&self) -> bool {
        self.count(Status::Fail) > 0
    }
    fn verdict(&self) -> &'static str {
        if self.failed() {
            "fail"
        } else {
            "pass"
        }
    }
}

fn write_text(out: &mut impl Write, r: &Summary, verbose: bool) -> io::Result<()> {
    let shown: Vec<&Check> = r
        .checks
        .iter()
        .filter(|c| verbose || c.status != Status::Pass)
        .collect();
    if !shown.is_empty() {
        let ow = shown
            .iter()
            .map(|c| c.object.chars().count())
            .max()
            .unwrap_or(6)
            .max(6);
        line(
            out,
            &format!(
                "{:<6}  {:<10}  {:<ow$}  DETAIL",
                "STATUS", "CHECK", "OBJECT"
            ),
        )?;
        for c in &shown {
            line(
                out,
                &format!(
                    "{:<6}  {:<10}  {:<ow$}  {}",
                    c.status.as_str().to_uppercase(),
                    c.kind.as_str(),
                    c.object,
                    c.detail
                ),
            )?;
        }
        line(out, "")?;
    }
    let mut per: BTreeMap<Kind, [usize; 3]> = BTreeMap::new();
    for c in r.checks {
        let slot = per.entry(c.kind).or_default();
        let i = match c.status {
            Status::Pass => 0,
            Status::Warn => 1,
            Status::Fail => 2,
        };
        if let Some(n) = slot.get_mut(i) {
            *n += 1;
        }
    }
    line(
        out,
        &format!(
            "{:<10}  {:>6}  {:>6}  {:>6}",
            "CHECK", "PASS", "WARN", "FAIL"
        ),
    )?;
    for (k, [p, w, f]) in &per {
        line(out, &format!("{:<10}  {p:>6}  {w:>6}  {f:>6}", k.as_str()))?;
    }
    line(out, "")?;
    let against = match r.baseline {
        Some(p) => format!("against {}", p.display()),
        None => "without a baseline (sequences, constraints, indexes, gaps only)".to_string(),
    };
    line(
        out,
        &format!(
            "{}: {} failed, {} warned, {} passed; database {} {against}, {} row counts, {} ms",
            r.verdict().to_uppercase(),
            r.count(Status::Fail),
            r.count(Status::Warn),
            r.count(Status::Pass),
            r.live.database,
            if r.live.row_counts == "estimate" {
                "estimated"
            } else {
                "exact"
            },
            r.elapsed_ms
        ),
    )
}

fn check_json(c: &Check) -> Value {
    json!({
        "type": "check",
        "check": c.kind.as_str(),
        "object": c.object,
        "status": c.status.as_str(),
        "detail": c.detail,
    })
}

fn write_json(out: &mut impl Write, r: &Summary) -> io::Result<()> {
    for c in r.checks {
        line(out, &check_json(c).to_string())?;
    }
    let v = json!({
        "type": "summary",
        "verdict": r.verdict(),
        "checks": r.checks.len(),
        "pass": r.count(Status::Pass),
        "warn": r.count(Status::Warn),
        "fail": r.count(Status::Fail),
        "baseline": r.baseline.map(|p| p.display().to_string()),
        "database": r.live.database,
        "row_counts": r.live.row_counts,
        "elapsed_ms": r.elapsed_ms,
    });
    line(out, &v.to_string())
}
