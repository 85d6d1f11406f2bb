//! `drkit audit verify | anchor`: flags to a chain scheme, the walk over a table or a file, and
//! the printers (text, or JSON Lines documented in docs/AUDIT.md).

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use audit::canonical::Canonical;
use audit::chain::{Anchor, Break, BreakKind, Summary, Verifier};
use audit::scheme::{Digest, Link, Scheme, PRESETS};
use audit::source;
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{json, Value};

use crate::cli::Format;
use crate::output::{is_broken_pipe, line, Outcome};

#[derive(Subcommand, Debug)]
pub enum AuditCmd {
    /// Recompute a hash chain in key order; report every break, classified.
    Verify(Box<VerifyArgs>),
    /// Verify the chain, then save its head (last key and hash) to a file kept elsewhere.
    Anchor(Box<AnchorArgs>),
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    #[command(flatten)]
    chain: ChainArgs,
    /// A head saved by `drkit audit anchor`: also catches deletion of the newest entries.
    #[arg(long, value_name = "FILE")]
    anchor: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Args, Debug)]
pub struct AnchorArgs {
    #[command(flatten)]
    chain: ChainArgs,
    /// Where the head goes. An anchor already there is checked first: a chain that lost its
    /// anchored head is not re-anchored.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(ValueEnum, Debug, Clone, Copy)]
enum DigestArg {
    Sha256,
    HmacSha256,
}

#[derive(ValueEnum, Debug, Clone, Copy)]
enum LinkArg {
    Concat,
    Embedded,
}

#[derive(ValueEnum, Debug, Clone, Copy)]
enum CanonicalArg {
    Js,
    Sorted,
}

/// Where the chain is and how it was written. A preset sets everything; flags override it.
#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("src").required(true).args(["db", "file"])))]
struct ChainArgs {
    /// PostgreSQL URL (the password is never printed); needs --table.
    #[arg(long, requires = "table")]
    db: Option<String>,
    /// The audit table (`schema.table` or `table`).
    #[arg(long)]
    table: Option<String>,
    /// A JSON-lines file, one entry per line, in chain order.
    #[arg(long)]
    file: Option<PathBuf>,
    /// The chain's scheme: ms5-file (sha256(previousHash + JSON(entry))) or ms5-edge (HMAC-SHA256).
    #[arg(long, default_value = "ms5-file", value_parser = clap::builder::PossibleValuesParser::new(PRESETS))]
    preset: String,
    /// Environment variable holding the HMAC key (the key itself is never a flag).
    #[arg(long, value_name = "VAR")]
    key_env: Option<String>,
    #[arg(long, value_enum)]
    digest: Option<DigestArg>,
    /// How the previous hash enters the digest: prefixed to the entry, or a field inside it.
    #[arg(long, value_enum)]
    link: Option<LinkArg>,
    /// The field (column) ordering the chain.
    #[arg(long)]
    key: Option<String>,
    /// The field holding each entry's hash.
    #[arg(long)]
    hash_field: Option<String>,
    /// The field holding the previous entry's hash ("" for none).
    #[arg(long)]
    prev_field: Option<String>,
    /// The entry's fields, in the order they were serialised (default: all but the hash field).
    #[arg(long, value_delimiter = ',')]
    fields: Option<Vec<String>>,
    /// Fields left out of the entry (with the default field list).
    #[arg(long, value_delimiter = ',')]
    exclude: Option<Vec<String>>,
    /// The previous hash of the first entry.
    #[arg(long)]
    genesis: Option<String>,
    /// Serialisation: JavaScript's JSON.stringify in stored key order, or keys sorted.
    #[arg(long, value_enum)]
    canonical: Option<CanonicalArg>,
    /// Fields written as JavaScript Dates (database timestamps are rewritten to that form).
    #[arg(long, value_delimiter = ',')]
    js_time_fields: Option<Vec<String>>,
}

/// A usage, connection or I/O problem: reported, exit 2.
struct Trouble(String);

pub fn run(cmd: AuditCmd) -> Outcome {
    let r = match cmd {
        AuditCmd::Verify(a) => verify(*a),
        AuditCmd::Anchor(a) => anchor(*a),
    };
    r.unwrap_or_else(|Trouble(msg)| {
        eprintln!("drkit: audit: {msg}");
        Outcome::Trouble
    })
}

fn scheme(a: &ChainArgs) -> Result<Scheme, Trouble> {
    let key = match &a.key_env {
        Some(var) => Some(
            std::env::var(var)
                .map_err(|_| Trouble(format!("environment variable {var} (--key-env) is not set")))?
                .into_bytes(),
        ),
        None => None,
    };
    let mut s = Scheme::preset(&a.preset, key.clone()).map_err(Trouble)?;
    match a.digest {
        Some(DigestArg::Sha256) => s.digest = Digest::Sha256,
        Some(DigestArg::HmacSha256) => {
            s.digest = Digest::HmacSha256(
                key.ok_or_else(|| Trouble("--digest hmac-sha256 needs --key-env VAR".into()))?,
            )
        }
        None => {}
    }
    if let Some(l) = a.link {
        s.link = match l {
            LinkArg::Concat => Link::Concat,
            LinkArg::Embedded => Link::Embedded,
        };
    }
    if let Some(k) = &a.key {
        s.key_field = k.clone();
    }
    if let Some(h) = &a.hash_field {
        s.hash_field = h.clone();
    }
    if let Some(p) = &a.prev_field {
        s.prev_field = (!p.is_empty()).then(|| p.clone());
    }
    if let Some(f) = &a.fields {
        s.fields = Some(f.clone());
    }
    if let Some(x) = &a.exclude {
        s.exclude = x.clone();
    }
    if let Some(g) = &a.genesis {
        s.genesis = g.clone();
    }
    if let Some(c) = a.canonical {
        s.canonical = match c {
            CanonicalArg::Js => Canonical::Js,
            CanonicalArg::Sorted => Canonical::Sorted,
        };
    }
    if let Some(t) = &a.js_time_fields {
        s.js_time_fields = t.clone();
    }
    s.validate().map_err(Trouble)?;
    Ok(s)
}

fn describe_source(a: &ChainArgs) -> String {
    match (&a.db, &a.table, &a.file) {
        (Some(db), Some(t), _) => format!("{} table {t}", replay::gaps_sql::redact_url(db)),
        (_, _, Some(f)) => f.display().to_string(),
        _ => String::new(),
    }
}

/// Walks the chain; every break goes to `on_break` as it is found.
fn walk(
    a: &ChainArgs,
    anchor: Option<Anchor>,
    on_break: &mut dyn FnMut(Break),
) -> Result<Summary, Trouble> {
    let scheme = scheme(a)?;
    let key = scheme.key_field.clone();
    let mut v = Verifier::new(scheme, anchor);
    match (&a.db, &a.table, &a.file) {
        (Some(db), Some(table), _) => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| Trouble(format!("cannot start the async runtime: {e}")))?;
            rt.block_on(source::read_table(db, table, &key, &mut v, on_break))
                .map_err(|e| Trouble(e.to_string()))?;
        }
        (_, _, Some(file)) => {
            source::read_jsonl(file, &mut v, on_break).map_err(|e| Trouble(e.to_string()))?
        }
        _ => return Err(Trouble("give --db URL --table T, or --file F".into())),
    }
    let (tail, summary) = v.finish();
    if let Some(b) = tail {
        on_break(b);
    }
    Ok(summary)
}

fn read_anchor(path: &Path) -> Result<Anchor, Trouble> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Trouble(format!("anchor {}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| {
        Trouble(format!(
            "anchor {}: not a drkit anchor: {e}",
            path.display()
        ))
    })
}

fn break_json(b: &Break) -> Value {
    json!({
        "type": "break",
        "kind": b.kind.as_str(),
        "row": b.row,
        "key": b.key,
        "line": b.line,
        "expected": b.expected,
        "stored": b.stored,
        "message": b.message,
    })
}

fn break_text(b: &Break) -> String {
    let at = match (&b.key, b.line) {
        (_, Some(l)) => format!("line {l}"),
        (Some(k), None) => format!("key {k}"),
        (None, None) => format!("row {}", b.row),
    };
    format!("{:<15} {:<14} {}", b.kind.as_str(), at, b.message)
}

/// Prints breaks as they come and the summary last; returns the exit outcome.
struct Printer {
    format: Format,
    out: BufWriter<io::Stdout>,
    by_kind: Vec<u64>,
    first: Option<Break>,
    closed: bool,
}

impl Printer {
    fn new(format: Format) -> Printer {
        Printer {
            format,
            out: BufWriter::new(io::stdout()),
            by_kind: vec![0; BreakKind::ALL.len()],
            first: None,
            closed: false,
        }
    }

    fn emit(&mut self, s: &str) {
        if self.closed {
            return;
        }
        if let Err(e) = line(&mut self.out, s) {
            // A closed pipe (`| head`) ends the output, not the check.
            if !is_broken_pipe(&e) {
                eprintln!("drkit: audit: writing output: {e}");
            }
            self.closed = true;
        }
    }

    fn on_break(&mut self, b: Break) {
        if let Some(i) = BreakKind::ALL.iter().position(|k| *k == b.kind) {
            if let Some(n) = self.by_kind.get_mut(i) {
                *n += 1;
            }
        }
        let s = match self.format {
            Format::Json => break_json(&b).to_string(),
            Format::Text => break_text(&b),
        };
        self.emit(&s);
        if self.first.is_none() {
            self.first = Some(b);
        }
    }

    fn summary(&mut self, source: &str, s: &Summary, secs: f64, extra: Option<(&str, Value)>) {
        let by_kind: serde_json::Map<String, Value> = BreakKind::ALL
            .iter()
            .zip(&self.by_kind)
            .map(|(k, n)| (k.as_str().to_string(), json!(n)))
            .collect();
        let (head_key, head_hash) = match &s.head {
            Some((k, h)) => (k.clone(), json!(h)),
            None => (Value::Null, Value::Null),
        };
        let text = match self.format {
            Format::Json => {
                let mut v = json!({
                    "type": "summary",
                    "source": source,
                    "rows": s.rows,
                    "breaks": s.breaks,
                    "by_kind": by_kind,
                    "first_break": self.first.as_ref().map(|b| json!({"kind": b.kind.as_str(), "row": b.row, "key": b.key, "line": b.line})),
                    "head_key": head_key,
                    "head_hash": head_hash,
                    "anchor_checked": s.anchor_checked,
                    "elapsed_s": secs,
                });
                if let (Some((k, val)), Some(m)) = (extra, v.as_object_mut()) {
                    m.insert(k.to_string(), val);
                }
                v.to_string()
            }
            Format::Text => {
                let rate = if secs > 0.0 {
                    s.rows as f64 / secs
                } else {
                    0.0
                };
                let verdict = if s.breaks == 0 {
                    format!("chain intact: {} entries", s.rows)
                } else {
                    let kinds: Vec<String> = BreakKind::ALL
                        .iter()
                        .zip(&self.by_kind)
                        .filter(|(_, n)| **n > 0)
                        .map(|(k, n)| format!("{n} {}", k.as_str()))
                        .collect();
                    let first = self.first.as_ref().map(break_text).unwrap_or_default();
                    format!(
                        "chain BROKEN: {} breaks ({}) in {} entries\nfirst: {first}",
                        s.breaks,
                        kinds.join(", "),
                        s.rows
                    )
                };
                let head = match &s.head {
                    Some((k, h)) => format!("head: key {k}, hash {h}\n"),
                    None => String::new(),
                };
                let anchor = if s.anchor_checked {
                    "anchor: checked\n"
                } else {
                    "anchor: none given (deleting the newest entries would not show)\n"
                };
                format!(
                    "{source}: {verdict}\n{head}{anchor}{:.2} s, {:.0} entries/s",
                    secs, rate
                )
            }
        };
        self.emit(&text);
        if !self.closed {
            let _ = self.out.flush();
        }
    }
}

fn verify(a: VerifyArgs) -> Result<Outcome, Trouble> {
    let anchor = a.anchor.as_deref().map(read_anchor).transpose()?;
    let started = Instant::now();
    let mut p = Printer::new(a.format);
    let summary = walk(&a.chain, anchor, &mut |b| p.on_break(b))?;
    p.summary(
        &describe_source(&a.chain),
        &summary,
        started.elapsed().as_secs_f64(),
        None,
    );
    Ok(if summary.breaks == 0 {
        Outcome::Clean
    } else {
        Outcome::Problems
    })
}

fn anchor(a: AnchorArgs) -> Result<Outcome, Trouble> {
    let previous = if a.out.exists() {
        Some(read_anchor(&a.out)?)
    } else {
        None
    };
    let started = Instant::now();
    let mut p = Printer::new(a.format);
    let source = describe_source(&a.chain);
    let summary = walk(&a.chain, previous, &mut |b| p.on_break(b))?;
    let secs = started.elapsed().as_secs_f64();
    let head = match (&summary.head, summary.breaks) {
        (Some(h), 0) => h.clone(),
        (None, 0) => {
            p.summary(&source, &summary, secs, Some(("anchored", json!(false))));
            eprintln!("drkit: audit anchor: the chain is empty: nothing to anchor");
            return Ok(Outcome::Problems);
        }
        _ => {
            p.summary(&source, &summary, secs, Some(("anchored", json!(false))));
            eprintln!(
                "drkit: audit anchor: the chain is broken: not anchoring it ({} left unchanged)",
                a.out.display()
            );
            return Ok(Outcome::Problems);
        }
    };
    let anchor = Anchor {
        key: head.0,
        hash: head.1,
        rows: summary.rows,
        source: source.clone(),
        saved_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    };
    write_atomically(&a.out, &anchor)
        .map_err(|e| Trouble(format!("writing the anchor {}: {e}", a.out.display())))?;
    p.summary(
        &source,
        &summary,
        secs,
        Some(("anchored", json!(a.out.display().to_string()))),
    );
    Ok(Outcome::Clean)
}

/// Written beside its final name, synced, then renamed: a crash leaves the old anchor or the new
/// one, never half of one.
fn write_atomically(path: &Path, anchor: &Anchor) -> io::Result<()> {
    let tmp = path.with_extension("drkit-tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        let text = serde_json::to_string_pretty(anchor).map_err(io::Error::other)?;
        f.write_all(text.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}
