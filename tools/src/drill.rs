//! `drkit drill start | mark | finish | report | objectives`: flags to validated events, and the
//! printers (text, JSON Lines documented in docs/DRILL.md). The record, its chain and the
//! measurements live in the `drill` crate.

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use clap::{Args, Subcommand, ValueEnum};
use drill::chain::{self, Break};
use drill::event::{format_time, parse_time, NewEvent};
use drill::html::{self, Page};
use drill::measure::{self, human, ClassResult, Expect, Measured, ServiceResult};
use drill::objectives::{Objectives, RtoEnd, MS5};
use drill::record::{self, RecordError};
use drill::{Event, EventKind};
use serde_json::{json, Value};

use crate::cli::Format;
use crate::output::{is_broken_pipe, line, Outcome};

#[derive(Subcommand, Debug)]
pub enum DrillCmd {
    /// Create a drill record with its start event (never overwrites a file).
    Start(StartArgs),
    /// Append one event: fault, detected, restore_started, restored, healthy, validated,
    /// data_point or note. Refused when the record does not verify.
    Mark(MarkArgs),
    /// Append the finish event; the record takes no events after it.
    Finish(FinishArgs),
    /// Verify the record, then measured RTO per service and RPO per data class against the
    /// objectives: text, JSON Lines, and an HTML page.
    Report(ReportArgs),
    /// Print the built-in objectives (MS5's table) as an objectives file to edit.
    Objectives,
}

/// Flags every appending command shares.
#[derive(Args, Debug)]
pub struct Common {
    /// When it happened (RFC 3339; without a zone: UTC), for back-filling; the event is then
    /// marked `backfilled`. Default: now.
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
    /// Who records it (default: $USER).
    #[arg(long)]
    operator: Option<String>,
    /// Free text.
    #[arg(long, value_name = "TEXT")]
    note: Option<String>,
    /// A backup file used: its SHA-256 and size are computed and recorded (repeatable).
    #[arg(long, value_name = "FILE")]
    backup: Vec<PathBuf>,
    /// Output format: readable text, or JSON Lines (schema in docs/DRILL.md).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Args, Debug)]
pub struct StartArgs {
    /// The record file to create (JSON lines).
    record: PathBuf,
    /// The drill's id, repeated on every line (default: drill-<start time>).
    #[arg(long)]
    id: Option<String>,
    #[command(flatten)]
    common: Common,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkEvent {
    Fault,
    Detected,
    #[value(name = "restore_started", alias = "restore-started")]
    RestoreStarted,
    Restored,
    Healthy,
    Validated,
    #[value(name = "data_point", alias = "data-point")]
    DataPoint,
    Note,
}

impl MarkEvent {
    fn kind(self) -> EventKind {
        match self {
            MarkEvent::Fault => EventKind::Fault,
            MarkEvent::Detected => EventKind::Detected,
            MarkEvent::RestoreStarted => EventKind::RestoreStarted,
            MarkEvent::Restored => EventKind::Restored,
            MarkEvent::Healthy => EventKind::Healthy,
            MarkEvent::Validated => EventKind::Validated,
            MarkEvent::DataPoint => EventKind::DataPoint,
            MarkEvent::Note => EventKind::Note,
        }
    }
}

#[derive(Args, Debug)]
pub struct MarkArgs {
    /// The drill record.
    record: PathBuf,
    /// What happened.
    #[arg(value_enum)]
    event: MarkEvent,
    /// The service it happened to (required for restore_started, restored, healthy, validated;
    /// a fault or detection without one applies to every service).
    #[arg(long)]
    service: Option<String>,
    /// The service's tier, when the objectives do not map it.
    #[arg(long)]
    tier: Option<String>,
    /// data_point: the data class (production, telemetry, configuration, audit...).
    #[arg(long, requires = "last_good")]
    class: Option<String>,
    /// data_point: the newest data time recovered for the class (RFC 3339).
    #[arg(long, value_name = "TIME", requires = "class")]
    last_good: Option<String>,
    #[command(flatten)]
    common: Common,
}

#[derive(Args, Debug)]
pub struct FinishArgs {
    /// The drill record.
    record: PathBuf,
    #[command(flatten)]
    common: Common,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndArg {
    Healthy,
    Validated,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// The drill record.
    record: PathBuf,
    /// Objectives file (TOML, docs/DRILL.md). Default: MS5's table (`drkit drill objectives`).
    #[arg(long, value_name = "FILE")]
    objectives: Option<PathBuf>,
    /// Which event ends RTO (default: the objectives' rto_end, healthy in MS5's table).
    #[arg(long, value_enum)]
    rto_end: Option<EndArg>,
    /// A service the drill must have measured (repeatable): absent = unmeasured, a failure.
    #[arg(long, value_name = "SERVICE")]
    expect_service: Vec<String>,
    /// A data class the drill must have measured (repeatable).
    #[arg(long, value_name = "CLASS")]
    expect_class: Vec<String>,
    /// A head hash noted earlier (printed by mark and report; 12+ hex digits): it must still be
    /// in the record, which catches removal of the newest events (repeatable).
    #[arg(long, value_name = "HASH")]
    head: Vec<String>,
    /// Output format: readable text, or JSON Lines (schema in docs/DRILL.md).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Also write a self-contained HTML page (inline CSS and SVG timeline) here.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
}

pub fn run(cmd: DrillCmd) -> Outcome {
    match cmd {
        DrillCmd::Start(a) => run_start(a),
        DrillCmd::Mark(a) => run_mark(a),
        DrillCmd::Finish(a) => run_finish(a),
        DrillCmd::Report(a) => run_report(a),
        DrillCmd::Objectives => match io::stdout().lock().write_all(MS5.as_bytes()) {
            Err(e) if !is_broken_pipe(&e) => usage(format!("cannot write output: {e}")),
            _ => Outcome::Clean,
        },
    }
}

fn usage(msg: impl std::fmt::Display) -> Outcome {
    eprintln!("drkit: {msg}");
    Outcome::Trouble
}

/// The record keeps milliseconds: what it stores is exactly what it hashes and reports.
fn to_ms(t: DateTime<Utc>) -> DateTime<Utc> {
    t - TimeDelta::nanoseconds(i64::from(t.timestamp_subsec_nanos() % 1_000_000))
}

/// RFC 3339, or a date and time without a zone read as UTC; to the millisecond.
fn time_arg(flag: &str, s: &str) -> Result<DateTime<Utc>, String> {
    if let Some(t) = parse_time(s) {
        return Ok(to_ms(t));
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(n) = NaiveDateTime::parse_from_str(s, f) {
            return Ok(to_ms(n.and_utc()));
        }
    }
    Err(format!(
        "{flag} {s:?}: not a time (RFC 3339, e.g. 2026-11-20T10:00:00Z)"
    ))
}

/// Builds the event from the shared flags; hashes the backups (errors are exit 2).
fn new_event(kind: EventKind, c: &Common) -> Result<NewEvent, String> {
    let now = to_ms(Utc::now());
    let mut e = NewEvent::new(kind, now, now);
    if let Some(at) = &c.at {
        e.time = time_arg("--at", at)?;
        e.backfilled = true;
    }
    e.operator = c
        .operator
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .or_else(|| std::env::var("LOGNAME").ok())
        .filter(|s| !s.is_empty());
    e.text = c.note.clone();
    for path in &c.backup {
        let shown = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
        let b = record::backup_of(path, shown.display().to_string()).map_err(|e| e.to_string())?;
        e.backups.push(b);
    }
    Ok(e)
}

fn run_start(a: StartArgs) -> Outcome {
    let e = match new_event(EventKind::Start, &a.common) {
        Ok(e) => e,
        Err(m) => return finish_append(&a.record, a.common.format, Err(RecordError::Invalid(m))),
    };
    let id =
        a.id.clone()
            .unwrap_or_else(|| format!("drill-{}", e.time.format("%Y%m%dT%H%M%SZ")));
    finish_append(
        &a.record,
        a.common.format,
        record::create(&a.record, &id, &e),
    )
}

fn run_mark(a: MarkArgs) -> Outcome {
    let mut e = match new_event(a.event.kind(), &a.common) {
        Ok(e) => e,
        Err(m) => return finish_append(&a.record, a.common.format, Err(RecordError::Invalid(m))),
    };
    e.service = a.service.clone();
    e.tier = a.tier.clone();
    e.class = a.class.clone();
    if let Some(lg) = &a.last_good {
        match time_arg("--last-good", lg) {
            Ok(t) => e.last_good = Some(t),
            Err(m) => {
                return finish_append(&a.record, a.common.format, Err(RecordError::Invalid(m)))
            }
        }
    }
    finish_append(&a.record, a.common.format, record::append(&a.record, &e))
}

fn run_finish(a: FinishArgs) -> Outcome {
    let e = match new_event(EventKind::Finish, &a.common) {
        Ok(e) => e,
        Err(m) => return finish_append(&a.record, a.common.format, Err(RecordError::Invalid(m))),
    };
    finish_append(&a.record, a.common.format, record::append(&a.record, &e))
}

fn break_json(b: &Break) -> Value {
    json!({"type": "break", "line": b.line, "kind": b.kind.as_str(), "message": b.message})
}

fn break_text(record: &Path, b: &Break) -> String {
    format!(
        "{}: line {}: {}: {}",
        record.display(),
        b.line,
        b.kind.as_str(),
        b.message
    )
}

/// Prints what was appended, or why not, and the exit code that goes with it.
fn finish_append(path: &Path, format: Format, r: Result<Event, RecordError>) -> Outcome {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    match r {
        Ok(ev) => {
            let _ = match format {
                Format::Json => line(
                    &mut out,
                    &json!({"type": "appended", "record": path.display().to_string(), "event": ev})
                        .to_string(),
                ),
                Format::Text => {
                    let mut s = format!("{}: line {}: {}", path.display(), ev.seq, ev.event);
                    for x in [&ev.service, &ev.class].into_iter().flatten() {
                        s.push_str(&format!(" {x}"));
                    }
                    s.push_str(&format!(" at {}", ev.time));
                    if ev.backfilled {
                        s.push_str(" (back-filled)");
                    }
                    if let Some(lg) = &ev.last_good {
                        s.push_str(&format!(", last good data {lg}"));
                    }
                    s.push_str(&format!(", hash {}", ev.hash));
                    for b in &ev.backups {
                        s.push_str(&format!(
                            "\n  backup {} sha256 {} ({} bytes)",
                            b.path, b.sha256, b.bytes
                        ));
                    }
                    line(&mut out, &s)
                }
            };
            Outcome::Clean
        }
        Err(err) => {
            let code = match &err {
                RecordError::Io { .. } | RecordError::Invalid(_) => Outcome::Trouble,
                _ => Outcome::Problems,
            };
            let breaks: &[Break] = match &err {
                RecordError::Broken { breaks, .. } => breaks,
                _ => &[],
            };
            match format {
                Format::Json => {
                    for b in breaks {
                        let _ = line(&mut out, &break_json(b).to_string());
                    }
                    let kind = if code == Outcome::Trouble {
                        "error"
                    } else {
                        "refused"
                    };
                    let _ = line(
                        &mut out,
                        &json!({"type": kind, "record": path.display().to_string(), "message": err.to_string()})
                            .to_string(),
                    );
                }
                Format::Text => {
                    for b in breaks {
                        eprintln!("drkit: {}", break_text(path, b));
                    }
                    if code == Outcome::Problems {
                        eprintln!("drkit: refused: {err}");
                    } else {
                        eprintln!("drkit: {err}");
                    }
                }
            }
            code
        }
    }
}

fn ms(d: Option<TimeDelta>) -> Value {
    d.map_or(Value::Null, |d| json!(d.num_milliseconds()))
}

fn ts(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, |t| json!(format_time(t)))
}

fn service_json(s: &ServiceResult, end: RtoEnd) -> Value {
    json!({
        "type": "service",
        "service": s.service,
        "tier": s.tier,
        "fault": ts(s.fault),
        "detected": ts(s.detected),
        "restore_started": ts(s.restore_started),
        "restored": ts(s.restored),
        "healthy": ts(s.healthy),
        "validated": ts(s.validated),
        "rto_end": end.as_str(),
        "rto_ms": ms(s.rto),
        "objective_ms": ms(s.objective),
        "verdict": s.verdict.as_str(),
        "reason": s.reason,
        "backups": s.backups,
    })
}

fn class_json(c: &ClassResult) -> Value {
    json!({
        "type": "data_class",
        "class": c.class,
        "points": c.points,
        "rpo_ms": ms(c.rpo),
        "objective_ms": ms(c.objective),
        "verdict": c.verdict.as_str(),
        "reason": c.reason,
        "service": c.service,
        "fault": ts(c.fault),
        "last_good": ts(c.last_good),
    })
}

fn opt(d: Option<TimeDelta>) -> String {
    d.map(human).unwrap_or_else(|| "-".into())
}

fn clock(t: Option<DateTime<Utc>>) -> String {
    t.map(format_time).unwrap_or_else(|| "-".into())
}

fn load_objectives(a: &ReportArgs) -> Result<Objectives, String> {
    match &a.objectives {
        None => Ok(Objectives::ms5()),
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            Objectives::from_toml(&text).map_err(|e| format!("{}: {e}", p.display()))
        }
    }
}

fn run_report(a: ReportArgs) -> Outcome {
    let objectives = match load_objectives(&a) {
        Ok(o) => o,
        Err(m) => return usage(m),
    };
    let bytes = match std::fs::read(&a.record) {
        Ok(b) => b,
        Err(e) => return usage(format!("{}: {e}", a.record.display())),
    };
    let mut v = chain::verify(&bytes);
    for h in &a.head {
        v.check_head(h);
    }
    let end = match a.rto_end {
        Some(EndArg::Healthy) => RtoEnd::Healthy,
        Some(EndArg::Validated) => RtoEnd::Validated,
        None => objectives.rto_end,
    };
    let expect = Expect {
        services: a.expect_service.clone(),
        classes: a.expect_class.clone(),
    };
    let m = measure::measure(&v.events, &objectives, end, &expect);
    let pass = v.intact() && m.all_met();
    let drill_id = v.events.first().map(|e| e.drill.clone());
    if let Some(path) = &a.html {
        let page = html::render(&Page {
            drill: drill_id.as_deref().unwrap_or("?"),
            record: &a.record.display().to_string(),
            events: v.events.len(),
            backfilled: v.events.iter().filter(|e| e.backfilled).count(),
            head: v.head(),
            breaks: &v.breaks,
            measured: &m,
            pass,
        });
        if let Err(e) = std::fs::write(path, page) {
            return usage(format!("{}: {e}", path.display()));
        }
    }
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let written = match a.format {
        Format::Json => report_json(&mut out, &a.record, &v, drill_id.as_deref(), &m, pass),
        Format::Text => report_text(&mut out, &a.record, &v, drill_id.as_deref(), &m, pass),
    }
    .and_then(|()| out.flush());
    if let Err(e) = written {
        if !is_broken_pipe(&e) {
            return usage(format!("cannot write output: {e}"));
        }
    }
    if pass {
        Outcome::Clean
    } else {
        Outcome::Problems
    }
}

fn counts(m: &Measured) -> (usize, usize, usize) {
    let verdicts = m
        .services
        .iter()
        .map(|s| s.verdict)
        .chain(m.classes.iter().map(|c| c.verdict));
    let (mut met, mut missed, mut unmeasured) = (0, 0, 0);
    for v in verdicts {
        match v {
            measure::Verdict::Met => met += 1,
            measure::Verdict::Missed => missed += 1,
            measure::Verdict::Unmeasured => unmeasured += 1,
        }
    }
    (met, missed, unmeasured)
}

fn report_json(
    out: &mut impl Write,
    record: &Path,
    v: &chain::Verified,
    drill_id: Option<&str>,
    m: &Measured,
    pass: bool,
) -> io::Result<()> {
    line(
        out,
        &json!({
            "type": "record",
            "record": record.display().to_string(),
            "drill": drill_id,
            "lines": v.lines,
            "events": v.events.len(),
            "backfilled": v.events.iter().filter(|e| e.backfilled).count(),
            "intact": v.intact(),
            "finished": v.finished(),
            "head": v.head(),
        })
        .to_string(),
    )?;
    for b in &v.breaks {
        line(out, &break_json(b).to_string())?;
    }
    for s in &m.services {
        line(out, &service_json(s, m.rto_end).to_string())?;
    }
    for c in &m.classes {
        line(out, &class_json(c).to_string())?;
    }
    for p in &m.problems {
        line(out, &json!({"type": "problem", "message": p}).to_string())?;
    }
    let (met, missed, unmeasured) = counts(m);
    line(
        out,
        &json!({
            "type": "summary",
            "services": m.services.len(),
            "classes": m.classes.len(),
            "met": met,
            "missed": missed,
            "unmeasured": unmeasured,
            "breaks": v.breaks.len(),
            "problems": m.problems.len(),
            "verdict": if pass { "pass" } else { "fail" },
            "exit_code": if pass { 0 } else { 1 },
        })
        .to_string(),
    )
}

fn report_text(
    out: &mut impl Write,
    record: &Path,
    v: &chain::Verified,
    drill_id: Option<&str>,
    m: &Measured,
    pass: bool,
) -> io::Result<()> {
    line(
        out,
        &format!(
            "drill {} ({}): {} events ({} back-filled), chain {}, head {}",
            drill_id.unwrap_or("?"),
            record.display(),
            v.events.len(),
            v.events.iter().filter(|e| e.backfilled).count(),
            if v.intact() { "intact" } else { "BROKEN" },
            v.head().unwrap_or("-")
        ),
    )?;
    for b in &v.breaks {
        line(out, &format!("BROKEN  {}", break_text(record, b)))?;
    }
    line(out, "")?;
    line(
        out,
        &format!("RTO per service (fault -> {}):", m.rto_end.as_str()),
    )?;
    line(
        out,
        &format!(
            "  {:<24} {:<13} {:<22} {:<22} {:>12} {:>12}  verdict",
            "service", "tier", "fault", "end", "RTO", "objective"
        ),
    )?;
    for s in &m.services {
        let end = match m.rto_end {
            RtoEnd::Healthy => s.healthy,
            RtoEnd::Validated => s.validated,
        };
        let mut row = format!(
            "  {:<24} {:<13} {:<22} {:<22} {:>12} {:>12}  {}",
            s.service,
            s.tier.as_deref().unwrap_or("-"),
            clock(s.fault),
            clock(end),
            opt(s.rto),
            opt(s.objective),
            s.verdict.as_str().to_uppercase()
        );
        if let Some(r) = &s.reason {
            row.push_str(&format!(": {r}"));
        }
        line(out, &row)?;
        for b in &s.backups {
            line(
                out,
                &format!(
                    "      backup {} sha256 {} ({} bytes)",
                    b.path, b.sha256, b.bytes
                ),
            )?;
        }
    }
    line(out, "")?;
    line(
        out,
        "RPO per data class (fault - newest data recovered, worst point):",
    )?;
    line(
        out,
        &format!(
            "  {:<16} {:>6} {:<22} {:<22} {:>12} {:>12}  verdict",
            "class", "points", "fault", "last good", "RPO", "objective"
        ),
    )?;
    for c in &m.classes {
        let mut row = format!(
            "  {:<16} {:>6} {:<22} {:<22} {:>12} {:>12}  {}",
            c.class,
            c.points,
            clock(c.fault),
            clock(c.last_good),
            opt(c.rpo),
            opt(c.objective),
            c.verdict.as_str().to_uppercase()
        );
        if let Some(r) = &c.reason {
            row.push_str(&format!(": {r}"));
        }
        line(out, &row)?;
    }
    for p in &m.problems {
        line(out, &format!("PROBLEM {p}"))?;
    }
    let (met, missed, unmeasured) = counts(m);
    line(out, "")?;
    line(
        out,
        &format!(
            "{}: {met} met, {missed} missed, {unmeasured} unmeasured, {} chain break(s), {} other problem(s)",
            if pass { "PASS" } else { "FAIL" },
            v.breaks.len(),
            m.problems.len()
        ),
    )
}
