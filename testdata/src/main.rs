//! `gen-testdata`: regenerates drkit's committed test data, or writes a large benchmark partition.
//!
//! Flags are parsed by hand: two subcommands and a handful of options do not justify pulling clap
//! into a test-data crate.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use drkit_testdata::bench::{write_bench, BenchConfig};
use kafka_protocol::records::Compression;

const USAGE: &str = "usage:
  gen-testdata [write] [--out DIR]        regenerate the committed data (default testdata/data)
  gen-testdata bench --out DIR --segment-bytes N --segments K
               [--codec none|gzip|snappy|lz4|zstd] [--batch-records R]";

fn value(args: &mut impl Iterator<Item = String>, flag: &str) -> Result<String> {
    args.next().with_context(|| format!("{flag} needs a value"))
}

fn run() -> Result<()> {
    let mut args = std::env::args().skip(1).peekable();
    let cmd = match args.peek().map(String::as_str) {
        Some("write") | Some("bench") => args.next().unwrap_or_default(),
        Some("-h") | Some("--help") => {
            println!("{USAGE}");
            return Ok(());
        }
        _ => "write".to_string(),
    };
    let mut out: Option<PathBuf> = None;
    let mut segment_bytes: u64 = 1 << 30;
    let mut segments: u32 = 1;
    let mut compression = Compression::None;
    let mut batch_records: usize = 100;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--out" => out = Some(value(&mut args, &a)?.into()),
            "--segment-bytes" => segment_bytes = value(&mut args, &a)?.parse()?,
            "--segments" => segments = value(&mut args, &a)?.parse()?,
            "--batch-records" => batch_records = value(&mut args, &a)?.parse()?,
            "--codec" => {
                compression = match value(&mut args, &a)?.as_str() {
                    "none" => Compression::None,
                    "gzip" => Compression::Gzip,
                    "snappy" => Compression::Snappy,
                    "lz4" => Compression::Lz4,
                    "zstd" => Compression::Zstd,
                    c => bail!("unknown codec {c}"),
                }
            }
            _ => bail!("unknown argument {a}\n{USAGE}"),
        }
    }
    if cmd == "bench" {
        let out = out.context("bench needs --out DIR")?;
        let summary = write_bench(&BenchConfig {
            out,
            segment_bytes,
            segments,
            compression,
            batch_records,
        })?;
        println!("{summary}");
    } else {
        let out = out.unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data"));
        drkit_testdata::write_all(&out)?;
        println!("wrote {}", out.display());
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gen-testdata: {e:#}");
            ExitCode::from(2)
        }
    }
}
