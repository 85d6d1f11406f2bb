//! Exit codes and the two printers (text for people, JSON Lines for machines).
//!
//! The JSON Lines schema is documented in docs/JSON.md; `tests/json_schema.rs` keeps the two in step.

use std::io::{self, Write};

use segment_reader::{Finding, Severity};
use serde_json::{json, Value};

/// The exit-code contract: 0 clean, 1 findings of severity error, 2 usage or I/O problems.
/// `drkit health` alone follows Nagios instead (docs/HEALTH.md) and also uses `Unknown` (3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    Clean,
    Problems,
    Trouble,
    /// Nagios UNKNOWN: the checks could not be run or judged. Only `drkit health` returns it.
    Unknown,
}

impl Outcome {
    pub fn code(self) -> u8 {
        match self {
            Outcome::Clean => 0,
            Outcome::Problems => 1,
            Outcome::Trouble => 2,
            Outcome::Unknown => 3,
        }
    }
}

pub fn finding_json(f: &Finding) -> Value {
    json!({
        "type": "finding",
        "severity": f.severity.as_str(),
        "kind": f.kind.as_str(),
        "file": f.file.display().to_string(),
        "position": f.position,
        "end_position": f.end_position,
        "offset": f.offset,
        "last_offset": f.last_offset,
        "message": f.message,
    })
}

pub fn finding_text(f: &Finding) -> String {
    let mut s = format!(
        "{:<7} {:<28} {}",
        f.severity.as_str(),
        f.kind.as_str(),
        f.file.display()
    );
    if let Some(p) = f.position {
        s.push_str(&format!(" @{p}"));
        if let Some(e) = f.end_position {
            s.push_str(&format!("..{e}"));
        }
    }
    if let Some(o) = f.offset {
        s.push_str(&format!(" offset {o}"));
        if let Some(l) = f.last_offset.filter(|l| *l != o) {
            s.push_str(&format!("..={l}"));
        }
    }
    s.push_str(": ");
    s.push_str(&f.message);
    s
}

pub fn shown_in_text(f: &Finding, verbose: bool) -> bool {
    verbose || f.severity > Severity::Info
}

/// Writes one line; a closed pipe (`| head`) is not an error: the caller stops writing.
pub fn line(out: &mut impl Write, s: &str) -> io::Result<()> {
    out.write_all(s.as_bytes())?;
    out.write_all(b"\n")
}

pub fn is_broken_pipe(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::BrokenPipe
}
