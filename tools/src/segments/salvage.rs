//! `drkit segments salvage`: a new partition directory from every valid batch of a damaged one.
//!
//! Not destructive: the input is only read, and the output must be a new (or empty) directory,
//! so there is nothing to roll back. The report of what was dropped goes to stdout and, as JSON
//! Lines, to `<out>.salvage.jsonl` beside the output, so it survives the terminal.

use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use segment_reader::salvage::{self, SalvageReport};
use serde_json::json;

use crate::cli::{Format, SalvageArgs};
use crate::output::{self, Outcome};

pub fn run(args: SalvageArgs) -> Outcome {
    let report = match salvage::salvage_partition(&args.partition_dir, &args.out) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("drkit: salvage: {e}");
            return Outcome::Trouble;
        }
    };
    let lines = json_lines(&args, &report);
    let report_path = report_path(&args.out);
    if let Err(e) = fs::write(&report_path, lines.join("\n") + "\n") {
        eprintln!("drkit: cannot write {}: {e}", report_path.display());
        return Outcome::Trouble;
    }
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let written = match args.format {
        Format::Json => lines.iter().try_for_each(|l| output::line(&mut out, l)),
        Format::Text => write_text(&mut out, &args, &report, &report_path),
    }
    .and_then(|_| out.flush());
    if let Err(e) = written {
        if !output::is_broken_pipe(&e) {
            eprintln!("drkit: cannot write output: {e}");
            return Outcome::Trouble;
        }
    }
    // Salvage succeeded; exit 1 tells scripts that something had to be dropped.
    if report.dropped.is_empty() {
        Outcome::Clean
    } else {
        Outcome::Problems
    }
}

fn report_path(out: &std::path::Path) -> PathBuf {
    let mut name = out
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".salvage.jsonl");
    out.with_file_name(name)
}

fn json_lines(args: &SalvageArgs, r: &SalvageReport) -> Vec<String> {
    let mut lines: Vec<String> = r
        .dropped
        .iter()
        .map(|d| {
            json!({
                "type": "dropped",
                "file": d.file.display().to_string(),
                "position": d.position,
                "end_position": d.end_position,
                "bytes": d.end_position - d.position,
                "offset": d.first_offset,
                "last_offset": d.last_offset,
                "reason": d.reason,
            })
            .to_string()
        })
        .collect();
    lines.push(
        json!({
            "type": "salvage_summary",
            "input": args.partition_dir.display().to_string(),
            "output": args.out.display().to_string(),
            "segments": r.segments,
            "batches_kept": r.batches_kept,
            "records_kept": r.records_kept,
            "bytes_kept": r.bytes_kept,
            "bytes_dropped": r.bytes_dropped,
            "ranges_dropped": r.dropped.len(),
            "files_written": r.written.len(),
        })
        .to_string(),
    );
    lines
}

fn write_text(
    out: &mut impl Write,
    args: &SalvageArgs,
    r: &SalvageReport,
    report: &std::path::Path,
) -> io::Result<()> {
    for d in &r.dropped {
        let offsets = match (d.first_offset, d.last_offset) {
            (Some(a), Some(b)) => format!(" offsets {a}..={b}"),
            (Some(a), None) => format!(" offsets from {a}"),
            _ => String::new(),
        };
        output::line(
            out,
            &format!(
                "dropped {} @{}..{} ({} bytes){offsets}: {}",
                d.file.display(),
                d.position,
                d.end_position,
                d.end_position - d.position,
                d.reason
            ),
        )?;
    }
    output::line(
        out,
        &format!(
            "salvaged {} -> {}: {} segments, {} batches, {} records, {} bytes kept; {} bytes in {} ranges dropped",
            args.partition_dir.display(),
            args.out.display(),
            r.segments,
            r.batches_kept,
            r.records_kept,
            r.bytes_kept,
            r.bytes_dropped,
            r.dropped.len()
        ),
    )?;
    output::line(out, &format!("report: {}", report.display()))
}
