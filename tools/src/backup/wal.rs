//! `drkit backup wal-verify`: the chain verdict of `backup::wal` as text or JSON Lines (schema in
//! docs/BACKUP.md), and the exit code it implies.

use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::time::Instant;

use backup::wal::{self, start, Chain, EndSource, Options, Report};
use backup::{Finding, Severity};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::json;

use super::{finding_json, finding_text};
use crate::cli::{BackupWalVerifyArgs, Format};
use crate::output::{self, Outcome};

/// Parses a target time: RFC 3339 (`T` or a space), the zone required — a recovery target
/// without one would be read in the server's TimeZone, which is not what anyone checked.
pub fn parse_target(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            format!("{s:?} is not an RFC 3339 time with a zone (e.g. 2024-05-01T10:00:00Z or +02:00): {e}")
        })
}

pub fn micros_text(us: i64) -> String {
    DateTime::<Utc>::from_timestamp_micros(us)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Micros, true))
        .unwrap_or_else(|| us.to_string())
}

/// Loads `--backup`; the error is a usage/I-O message (exit 2).
pub fn load_backup(p: &Path) -> Result<start::BackupStart, String> {
    match start::backup_start(p) {
        Ok(Ok(b)) => Ok(b),
        Ok(Err(why)) => Err(why),
        Err(e) => Err(format!("{}: {e}", p.display())),
    }
}

pub fn run(args: BackupWalVerifyArgs) -> Outcome {
    let started = Instant::now();
    let until = match args.until.as_deref().map(parse_target).transpose() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("drkit: --until: {e}");
            return Outcome::Trouble;
        }
    };
    let backup = match args.backup.as_deref().map(load_backup).transpose() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("drkit: --backup: {e}");
            return Outcome::Trouble;
        }
    };
    let opts = Options {
        backup,
        until: until.map(|t| t.timestamp_micros()),
    };
    let report = match wal::verify_archive(&args.archive, &opts) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("drkit: {}: {e}", args.archive.display());
            return Outcome::Trouble;
        }
    };
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let outcome = outcome(&report);
    let r = print(
        &mut out,
        &args.archive,
        &report,
        args.format,
        args.report.verbose,
        started,
    )
    .and_then(|()| out.flush());
    match r {
        Err(e) if !output::is_broken_pipe(&e) => {
            eprintln!("drkit: cannot write output: {e}");
            Outcome::Trouble
        }
        _ => outcome,
    }
}

pub fn outcome(r: &Report) -> Outcome {
    if !r.io_problems.is_empty() {
        Outcome::Trouble
    } else if r.findings.iter().any(|f| f.severity() == Severity::Error)
        || !r.chain.as_ref().is_some_and(Chain::whole)
    {
        Outcome::Problems
    } else {
        Outcome::Clean
    }
}

/// Findings, the chain line, io errors, then the summary (always last).
pub fn print(
    out: &mut impl Write,
    archive: &Path,
    r: &Report,
    format: Format,
    verbose: bool,
    started: Instant,
) -> io::Result<()> {
    print_body(out, archive, r, format, verbose)?;
    let count = |s: Severity| r.findings.iter().filter(|f| f.severity() == s).count();
    let (errors, warnings) = (count(Severity::Error), count(Severity::Warning));
    let elapsed_ms = started.elapsed().as_millis() as u64;
    match format {
        Format::Json => output::line(
            out,
            &json!({
                "type": "summary",
                "errors": errors,
                "warnings": warnings,
                "io_errors": r.io_problems.len(),
                "elapsed_ms": elapsed_ms,
            })
            .to_string(),
        ),
        Format::Text => output::line(
            out,
            &format!(
                "{errors} errors, {warnings} warnings, {} unreadable ({elapsed_ms} ms)",
                r.io_problems.len()
            ),
        ),
    }
}

/// Everything but the summary (pitr-config prints its own after).
pub fn print_body(
    out: &mut impl Write,
    archive: &Path,
    r: &Report,
    format: Format,
    verbose: bool,
) -> io::Result<()> {
    for f in &r.findings {
        emit(out, f, format, verbose)?;
    }
    if let Some(c) = &r.chain {
        match format {
            Format::Json => output::line(out, &chain_json(archive, c).to_string())?,
            Format::Text => {
                for l in chain_text(archive, c) {
                    output::line(out, &l)?;
                }
            }
        }
    }
    for p in &r.io_problems {
        match format {
            Format::Json => output::line(
                out,
                &json!({"type": "io_error", "file": p.path.display().to_string(), "message": p.message})
                    .to_string(),
            )?,
            Format::Text => eprintln!("drkit: {}: {}", p.path.display(), p.message),
        }
    }
    Ok(())
}

fn emit(out: &mut impl Write, f: &Finding, format: Format, verbose: bool) -> io::Result<()> {
    match format {
        Format::Json => output::line(out, &finding_json(f).to_string()),
        Format::Text if verbose || f.severity() > Severity::Info => {
            output::line(out, &finding_text(f))
        }
        Format::Text => Ok(()),
    }
}

fn chain_json(archive: &Path, c: &Chain) -> serde_json::Value {
    json!({
        "type": "wal_chain",
        "archive": archive.display().to_string(),
        "start_lsn": c.start.to_string(),
        "start_segment": c.start_segment,
        "start_source": c.start_source,
        "timeline": c.timeline,
        "timelines": c.timelines,
        "segment_size": c.segment_size,
        "end_segment": c.end_segment,
        "end_source": match c.end_source { EndSource::Until => "until", EndSource::Newest => "newest" },
        "backup_end_lsn": c.backup_end.map(|l| l.to_string()),
        "expected": c.expected,
        "present": c.present,
        "missing": c.missing,
        "damaged": c.damaged,
        "off_timeline": c.off_timeline,
        "stops_at_segment": c.stops_at.as_ref().map(|s| s.0.clone()),
        "stops_at_lsn": c.stops_at.as_ref().map(|s| s.1.to_string()),
        "target_lsn": c.target_record.map(|x| wal::name::Lsn(x.lsn).to_string()),
        "target_time": c.target_record.map(|x| micros_text(x.time)),
        "whole": c.whole(),
        "consistent": c.consistent(),
    })
}

fn chain_text(archive: &Path, c: &Chain) -> Vec<String> {
    let tl: Vec<String> = c.timelines.iter().map(|t| t.to_string()).collect();
    let mut v = vec![format!(
        "archive  {}: timeline {} (history {}), {} MiB segments",
        archive.display(),
        c.timeline,
        tl.join(" -> "),
        c.segment_size >> 20
    )];
    v.push(format!(
        "start    {} ({}) from {}",
        c.start,
        c.start_segment,
        c.start_source
            .as_deref()
            .unwrap_or("the oldest segment in the archive (no --backup given)")
    ));
    let end = match (&c.end_segment, c.end_source, c.target_record) {
        (Some(s), EndSource::Until, Some(x)) => format!(
            "{s}: the first {} after the target time, at {} ({})",
            if x.commit { "commit" } else { "abort" },
            wal::name::Lsn(x.lsn),
            micros_text(x.time)
        ),
        (Some(s), _, _) => format!("{s} (newest segment on the chain)"),
        (None, _, _) => "not reached: no commit or abort after the target time".to_string(),
    };
    v.push(format!("end      {end}"));
    v.push(format!(
        "segments {} expected, {} present, {} missing, {} damaged; {} off the timeline",
        c.expected, c.present, c.missing, c.damaged, c.off_timeline
    ));
    let verdict = match &c.stops_at {
        Some((seg, lsn)) => format!(
            "recovery stops at {lsn} ({seg}){}",
            if c.consistent() {
                ""
            } else {
                ", before the backup is consistent: the restored cluster will not start"
            }
        ),
        None if c.end_segment.is_some() => "recovery replays the whole chain".to_string(),
        None => "recovery replays every segment but does not reach the target".to_string(),
    };
    v.push(format!("verdict  {verdict}"));
    v
}
