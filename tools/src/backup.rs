//! `drkit backup verify`: one read per file, findings as text or JSON Lines (schema in
//! docs/BACKUP.md), a summary last, and the exit code the verdict implies.

use std::io::{self, BufWriter, Write};
use std::time::Instant;

use backup::verify::{self, FileReport, IoProblem, Options};
use backup::{Finding, Severity};
use serde_json::json;

use crate::cli::{BackupCmd, BackupVerifyArgs, Format};

mod age;
mod pitr;
mod wal;
use crate::output::{self, Outcome};
use crate::progress;

pub fn run(cmd: BackupCmd) -> Outcome {
    match cmd {
        BackupCmd::Verify(a) => run_verify(a),
        BackupCmd::WalVerify(a) => wal::run(a),
        BackupCmd::PitrConfig(a) => pitr::run(a),
        BackupCmd::Age(a) => age::run(a),
    }
}

pub(crate) fn finding_json(f: &Finding) -> serde_json::Value {
    json!({
        "type": "finding",
        "severity": f.severity().as_str(),
        "kind": f.kind.as_str(),
        "file": f.file.display().to_string(),
        "position": f.position,
        "entry": f.entry,
        "message": f.message,
    })
}

pub(crate) fn finding_text(f: &Finding) -> String {
    let mut s = format!(
        "{:<7} {:<26} {}",
        f.severity().as_str(),
        f.kind.as_str(),
        f.file.display()
    );
    if let Some(p) = f.position {
        s.push_str(&format!(" @{p}"));
    }
    if let Some(e) = &f.entry {
        s.push_str(&format!(" [{e}]"));
    }
    s.push_str(": ");
    s.push_str(&f.message);
    s
}

#[derive(Default)]
struct Totals {
    files: u64,
    bytes: u64,
    errors: u64,
    warnings: u64,
    io_errors: u64,
}

fn run_verify(args: BackupVerifyArgs) -> Outcome {
    let started = Instant::now();
    let mut plan = verify::plan(&args.paths);
    let mut io_problems = std::mem::take(&mut plan.io_problems);
    let ex = verify::expectations(&plan, &mut io_problems);
    let bar = progress::bytes_bar(plan.total_bytes, !args.report.no_progress);
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut t = Totals::default();
    let opts = Options { deep: args.deep };
    let emit = |out: &mut BufWriter<io::StdoutLock<'_>>, f: &Finding| -> io::Result<()> {
        match args.format {
            Format::Json => output::line(out, &finding_json(f).to_string()),
            Format::Text if args.report.verbose || f.severity() > Severity::Info => {
                output::line(out, &finding_text(f))
            }
            Format::Text => Ok(()),
        }
    };
    let mut write = || -> io::Result<()> {
        for f in &ex.findings {
            count(&mut t, f);
            emit(&mut out, f)?;
        }
        for path in &plan.files {
            let mut tick = |n| bar.inc(n);
            match verify::verify_file(path, ex.by_file.get(path), opts, &mut tick) {
                Ok(r) => {
                    t.files += 1;
                    t.bytes += r.bytes;
                    for f in &r.findings {
                        count(&mut t, f);
                        emit(&mut out, f)?;
                    }
                    file_line(&mut out, &r, args.format, args.report.verbose)?;
                }
                Err(e) => {
                    let p = IoProblem {
                        path: path.clone(),
                        message: e.to_string(),
                    };
                    io_problems.push(p);
                }
            }
        }
        bar.finish_and_clear();
        for p in &io_problems {
            t.io_errors += 1;
            match args.format {
                Format::Json => output::line(
                    &mut out,
                    &json!({"type": "io_error", "file": p.path.display().to_string(), "message": p.message})
                        .to_string(),
                )?,
                Format::Text => eprintln!("drkit: {}: {}", p.path.display(), p.message),
            }
        }
        let elapsed_ms = started.elapsed().as_millis() as u64;
        match args.format {
            Format::Json => output::line(
                &mut out,
                &json!({
                    "type": "summary",
                    "files": t.files,
                    "bytes": t.bytes,
                    "errors": t.errors,
                    "warnings": t.warnings,
                    "io_errors": t.io_errors,
                    "deep": args.deep,
                    "elapsed_ms": elapsed_ms,
                })
                .to_string(),
            )?,
            Format::Text => output::line(
                &mut out,
                &format!(
                    "{} files, {} bytes: {} errors, {} warnings, {} unreadable ({} ms)",
                    t.files, t.bytes, t.errors, t.warnings, t.io_errors, elapsed_ms
                ),
            )?,
        }
        out.flush()
    };
    let written = write();
    match written {
        Err(e) if !output::is_broken_pipe(&e) => {
            eprintln!("drkit: cannot write output: {e}");
            return Outcome::Trouble;
        }
        _ => {}
    }
    if t.io_errors > 0 {
        Outcome::Trouble
    } else if t.errors > 0 {
        Outcome::Problems
    } else {
        Outcome::Clean
    }
}

fn count(t: &mut Totals, f: &Finding) {
    match f.severity() {
        Severity::Error => t.errors += 1,
        Severity::Warning => t.warnings += 1,
        Severity::Info => {}
    }
}

fn file_line(
    out: &mut impl Write,
    r: &FileReport,
    format: Format,
    verbose: bool,
) -> io::Result<()> {
    match format {
        Format::Json => output::line(
            out,
            &json!({
                "type": "file",
                "file": r.path.display().to_string(),
                "format": r.format.as_str(),
                "bytes": r.bytes,
                "sha256": r.sha256,
                "checksum": match r.checksum_ok { Some(true) => "ok", Some(false) => "mismatch", None => "none" },
                "entries": r.entries,
                "errors": r.findings.iter().filter(|f| f.severity() == Severity::Error).count(),
            })
            .to_string(),
        ),
        Format::Text if verbose => output::line(
            out,
            &format!(
                "file    {} {} {} bytes sha256 {}",
                r.path.display(),
                r.format.as_str(),
                r.bytes,
                r.sha256
            ),
        ),
        Format::Text => Ok(()),
    }
}
