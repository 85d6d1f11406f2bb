//! `drkit segments verify`: findings as text or JSON Lines, a summary, an honest exit code.

use std::io::{self, BufWriter, Write};

use segment_reader::segment::{Options, CODECS};
use segment_reader::verify::{self, Report, Summary, VerifyOptions};
use serde_json::json;

use crate::cli::{Format, VerifyArgs};
use crate::output::{self, Outcome};
use crate::progress;

pub fn run(args: VerifyArgs) -> Outcome {
    let plan = verify::plan(&args.paths);
    let bar = progress::bytes_bar(plan.total_bytes(), !args.report.no_progress);
    let opts = VerifyOptions {
        segment: Options {
            deep: args.deep,
            ..Options::default()
        },
    };
    let report = verify::verify(&plan, opts, &|n| bar.inc(n));
    bar.finish_and_clear();
    let outcome = outcome_of(&report.summary);
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let written = match args.format {
        Format::Json => write_json(&mut out, &report, args.deep),
        Format::Text => write_text(&mut out, &report, args.deep, args.report.verbose),
    }
    .and_then(|_| out.flush());
    match written {
        Err(e) if !output::is_broken_pipe(&e) => {
            eprintln!("drkit: cannot write output: {e}");
            Outcome::Trouble
        }
        _ => outcome,
    }
}

pub fn outcome_of(s: &Summary) -> Outcome {
    if s.io_errors > 0 {
        Outcome::Trouble
    } else if s.errors > 0 {
        Outcome::Problems
    } else {
        Outcome::Clean
    }
}

fn codec_map(values: &[u64; 5]) -> serde_json::Map<String, serde_json::Value> {
    CODECS
        .iter()
        .zip(values)
        .map(|(c, v)| (c.name().to_string(), json!(v)))
        .collect()
}

fn write_json(out: &mut impl Write, r: &Report, deep: bool) -> io::Result<()> {
    for f in &r.findings {
        output::line(out, &output::finding_json(f).to_string())?;
    }
    let s = &r.summary;
    let mut summary = json!({
        "type": "summary",
        "files": s.files,
        "segments": s.segments,
        "batches": s.batches,
        "records": s.records,
        "bytes": s.bytes,
        "errors": s.errors,
        "warnings": s.warnings,
        "infos": s.infos,
        "elapsed_ms": s.elapsed_ms,
        "deep": deep,
        "codec_bytes": codec_map(&s.codec_bytes),
    });
    if deep {
        summary["decoded_bytes"] = json!(codec_map(&s.decoded_bytes));
    }
    output::line(out, &summary.to_string())
}

fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

fn write_text(out: &mut impl Write, r: &Report, deep: bool, verbose: bool) -> io::Result<()> {
    let mut hidden = 0;
    for f in &r.findings {
        if output::shown_in_text(f, verbose) {
            output::line(out, &output::finding_text(f))?;
        } else {
            hidden += 1;
        }
    }
    let s = &r.summary;
    let secs = (s.elapsed_ms as f64 / 1000.0).max(0.001);
    output::line(
        out,
        &format!(
            "verified {} files: {} segments, {} batches, {} records, {:.1} MiB in {:.2} s ({:.0} MiB/s){}",
            s.files,
            s.segments,
            s.batches,
            s.records,
            mib(s.bytes),
            secs,
            mib(s.bytes) / secs,
            if deep { ", deep" } else { "" }
        ),
    )?;
    if deep {
        for (i, c) in CODECS.iter().enumerate() {
            if s.codec_bytes[i] > 0 {
                output::line(
                    out,
                    &format!(
                        "  {:<7} {:>10.1} MiB stored, {:>10.1} MiB decoded",
                        c.name(),
                        mib(s.codec_bytes[i]),
                        mib(s.decoded_bytes[i])
                    ),
                )?;
            }
        }
    }
    let verdict = if s.io_errors > 0 {
        "UNREADABLE FILES"
    } else if s.errors > 0 {
        "CORRUPT"
    } else {
        "OK"
    };
    let info_note = if hidden > 0 {
        format!(" ({hidden} not shown; -v lists them)")
    } else {
        String::new()
    };
    output::line(
        out,
        &format!(
            "{verdict}: {} errors, {} warnings, {} info{info_note}",
            s.errors, s.warnings, s.infos
        ),
    )
}
