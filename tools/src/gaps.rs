//! `drkit gaps`: flags to a validated window, the report from the database (computed there), from
//! Kafka partition directories, or both side by side (`--compare`), then one of the printers.
//! Output schemas: docs/GAPS.md.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::Path;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use replay::gaps::{self, classify, Cause, Gap, Report, Window};
use replay::gaps_kafka::{self, Pointers};
use replay::gaps_sql::{self, Source, TableName};
use serde_json::{json, Value};

use crate::cli::{GapsArgs, GapsFormat};
use crate::output::{is_broken_pipe, line, Outcome};

/// A usage, connection or I/O problem: reported, exit 2.
struct Trouble(String);

impl<E: std::fmt::Display> From<E> for Trouble {
    fn from(e: E) -> Self {
        Trouble(e.to_string())
    }
}

pub fn run(a: GapsArgs) -> Outcome {
    match run_inner(a) {
        Ok(o) => o,
        Err(Trouble(msg)) => {
            eprintln!("drkit: gaps: {msg}");
            Outcome::Trouble
        }
    }
}

pub(crate) fn read_expected_file(path: &Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("--expected-keys {}: {e}", path.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect())
}

/// Both sides of a `--compare` run.
pub(crate) struct Compared {
    db: Report,
    kafka: Report,
}

fn run_inner(a: GapsArgs) -> Result<Outcome, Trouble> {
    let rpo = gaps::parse_duration(&a.rpo).ok_or_else(|| {
        Trouble(format!(
            "--rpo {:?}: expected a duration such as 5m, 300s, 1h",
            a.rpo
        ))
    })?;
    let until = match &a.until {
        Some(s) => {
            gaps::window_time(s).ok_or_else(|| Trouble(format!("--until {s:?}: not a time")))?
        }
        None => Utc::now(),
    };
    let since = match &a.since {
        Some(s) => {
            gaps::window_time(s).ok_or_else(|| Trouble(format!("--since {s:?}: not a time")))?
        }
        None => until - TimeDelta::hours(24),
    };
    let window = Window::new(since, until, rpo)?;
    let cadence = match &a.cadence {
        Some(s) => Some(
            gaps::parse_duration(s)
                .filter(|d| *d > TimeDelta::zero())
                .ok_or_else(|| {
                    Trouble(format!(
                        "--cadence {s:?}: expected a positive duration such as 1s"
                    ))
                })?,
        ),
        None => None,
    };
    if a.db.is_none() && a.segments.is_none() {
        return Err(Trouble(
            "give --db URL, --segments DIR, or both with --compare".into(),
        ));
    }
    if a.db.is_some() && a.segments.is_some() && !a.compare {
        return Err(Trouble(
            "--db and --segments together need --compare".into(),
        ));
    }
    let mut expected = match &a.expected_keys {
        Some(p) => read_expected_file(p)?,
        None => Vec::new(),
    };

    let db = match &a.db {
        Some(url) => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let src = Source {
                table: TableName::parse(&a.table)?,
                time_column: a.time_column.clone(),
                key_column: a.by.clone(),
            };
            let r = rt.block_on(async {
                let mut client = gaps_sql::connect(url).await?;
                if let Some(spec) = &a.expected_keys_table {
                    let (t, c) = spec.rsplit_once('.').ok_or_else(|| {
                        Trouble(format!(
                            "--expected-keys-table {spec:?}: expected TABLE.COLUMN"
                        ))
                    })?;
                    let t = TableName::parse(t)?;
                    expected = gaps_sql::expected_keys_from_table(&client, &t, c).await?;
                }
                let (r, _info) = gaps_sql::report(&mut client, &src, window, &expected).await?;
                Ok::<_, Trouble>(r)
            })?;
            Some(r)
        }
        None => None,
    };
    let kafka = match &a.segments {
        Some(dir) => {
            let pointers = Pointers {
                key: a.key_pointer.clone(),
                time: a.time_pointer.clone(),
            };
            let (r, stats) = gaps_kafka::segments_report(dir, window, &pointers, &expected)?;
            if stats.unusable > 0 {
                eprintln!(
                    "drkit: gaps: {} of {} messages had no JSON value with {} and a time at {} (not counted)",
                    stats.unusable, stats.messages, pointers.key, pointers.time
                );
            }
            let s = stats.source;
            let unread = s.corrupt_ranges + s.undecodable_batches + s.unsupported_batches;
            if unread > 0 {
                // Events in those bytes are not counted: Kafka-side gaps there may be false.
                eprintln!(
                    "drkit: gaps: {} corrupt ranges, {} undecodable and {} unsupported batches in {} were not read (check with `drkit segments verify`)",
                    s.corrupt_ranges,
                    s.undecodable_batches,
                    s.unsupported_batches,
                    dir.display()
                );
            }
            Some(r)
        }
        None => None,
    };

    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let (primary, compared) = match (db, kafka) {
        (Some(db), Some(kafka)) => (db.clone(), Some(Compared { db, kafka })),
        (Some(r), None) | (None, Some(r)) => (r, None),
        (None, None) => return Err(Trouble("nothing to report".into())),
    };
    let expected_rows = cadence.map(|c| Expected::of(&primary, c));
    if let Some(path) = &a.html {
        let html = html_report(&primary, compared.as_ref());
        std::fs::write(path, html).map_err(|e| Trouble(format!("{}: {e}", path.display())))?;
    }
    let written = match a.format {
        GapsFormat::Text => write_text(
            &mut out,
            &primary,
            compared.as_ref(),
            expected_rows.as_ref(),
        ),
        GapsFormat::Json => write_json(
            &mut out,
            &primary,
            compared.as_ref(),
            a.hourly,
            expected_rows.as_ref(),
        ),
        GapsFormat::Csv => write_csv(&mut out, &primary, compared.as_ref()),
    }
    .and_then(|()| out.flush());
    if let Err(e) = written {
        if !is_broken_pipe(&e) {
            return Err(Trouble(format!("cannot write output: {e}")));
        }
    }
    Ok(if primary.breached() {
        Outcome::Problems
    } else {
        Outcome::Clean
    })
}

pub(crate) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn cause_of(g: &Gap, c: Option<&Compared>) -> Option<Cause> {
    c.map(|c| classify(g, &c.kafka))
}

/// Per key and hour where Kafka and the database differ, or both are empty.
struct Cell<'a> {
    key: &'a str,
    hour: DateTime<Utc>,
    kafka: u64,
    db: u64,
}

impl Cell<'_> {
    fn class(&self) -> &'static str {
        match (self.kafka, self.db) {
            (0, 0) => "never_produced",
            (k, d) if k > d => "lost_in_pipeline",
            _ => "extra_in_db",
        }
    }
}

fn differing_cells(c: &Compared) -> Vec<Cell<'_>> {
    let mut keys: Vec<&str> = c.db.counts.keys().map(String::as_str).collect();
    keys.extend(c.kafka.counts.keys().map(String::as_str));
    keys.sort_unstable();
    keys.dedup();
    let mut cells = Vec::new();
    for key in keys {
        for (i, hour) in c.db.hours.iter().enumerate() {
            let get = |r: &Report| {
                r.counts
                    .get(key)
                    .and_then(|v| v.get(i))
                    .copied()
                    .unwrap_or(0)
            };
            let (kafka, db) = (get(&c.kafka), get(&c.db));
            if kafka != db || kafka == 0 {
                cells.push(Cell {
                    key,
                    hour: *hour,
                    kafka,
                    db,
                });
            }
        }
    }
    cells
}

fn write_text(
    out: &mut impl Write,
    r: &Report,
    c: Option<&Compared>,
    expected: Option<&Expected>,
) -> io::Result<()> {
    if r.gaps.is_empty() {
        line(out, "no gap longer than the RPO")?;
    } else {
        gap_table(out, &r.gaps, usize::MAX, |g| {
            cause_of(g, c).map(|cause| cause.as_str())
        })?;
    }
    if let Some(c) = c {
        let cells = differing_cells(c);
        if !cells.is_empty() {
            line(out, "")?;
            let kw = cells.iter().map(|x| x.key.len()).max().unwrap_or(3).max(3);
            line(
                out,
                &format!(
                    "{:<kw$}  {:<20}  {:>8}  {:>8}  CLASS",
                    "KEY", "HOUR", "KAFKA", "DB"
                ),
            )?;
            for x in &cells {
                line(
                    out,
                    &format!(
                        "{:<kw$}  {:<20}  {:>8}  {:>8}  {}",
                        x.key,
                        ts(x.hour),
                        x.kafka,
                        x.db,
                        x.class()
                    ),
                )?;
            }
        }
    }
    line(out, "")?;
    let mut s = format!(
        "{} keys, {} rows, {} gaps over the {} s RPO",
        r.keys(),
        r.rows,
        r.gaps.len(),
        r.window.rpo().num_milliseconds() as f64 / 1000.0
    );
    if !r.gaps.is_empty() {
        let _ = write!(s, " (longest {} s)", r.max_gap_seconds());
    }
    let _ = write!(
        s,
        ", window {} .. {}",
        ts(r.window.since()),
        ts(r.window.until())
    );
    if let Some(c) = c {
        let _ = write!(s, "; Kafka holds {} events in the window", c.kafka.rows);
    }
    if let Some(e) = expected {
        if let Value::Number(n) = ratio(r.rows, e.total) {
            let pct = n.as_f64().unwrap_or(0.0) * 100.0;
            let _ = write!(
                s,
                "; {pct:.2} % of the {} rows the cadence expects",
                e.total
            );
        }
    }
    line(out, &s)
}

/// The gap table of the text output (also under `drkit replay`'s summary): at most `limit`
/// rows, then a line saying how many more there are; `cause` adds a CAUSE column.
pub(crate) fn gap_table<'g>(
    out: &mut impl Write,
    gaps: &'g [Gap],
    limit: usize,
    cause: impl Fn(&'g Gap) -> Option<&'static str>,
) -> io::Result<()> {
    let kw = gaps.iter().map(|g| g.key.len()).max().unwrap_or(3).max(3);
    let with_cause = gaps.first().is_some_and(|g| cause(g).is_some());
    let mut head = format!(
        "{:<kw$}  {:<12}  {:<27}  {:<27}  {:>10}",
        "KEY", "KIND", "START", "END", "SECONDS"
    );
    if with_cause {
        head.push_str("  CAUSE");
    }
    line(out, &head)?;
    for g in gaps.iter().take(limit) {
        let mut s = format!(
            "{:<kw$}  {:<12}  {:<27}  {:<27}  {:>10}",
            g.key,
            g.kind.as_str(),
            ts(g.start),
            ts(g.end),
            g.seconds()
        );
        if let Some(c) = cause(g) {
            let _ = write!(s, "  {c}");
        }
        line(out, &s)?;
    }
    if gaps.len() > limit {
        line(
            out,
            &format!(
                "... and {} more gaps (--format json lists them all)",
                gaps.len() - limit
            ),
        )?;
    }
    Ok(())
}

pub(crate) fn gap_json(g: &Gap, c: Option<&Compared>) -> Value {
    let mut v = json!({
        "type": "gap",
        "key": g.key,
        "start": ts(g.start),
        "end": ts(g.end),
        "seconds": g.seconds(),
        "kind": g.kind.as_str(),
    });
    if let (Some(cause), Some(m)) = (cause_of(g, c), v.as_object_mut()) {
        m.insert("cause".into(), cause.as_str().into());
    }
    v
}

/// Rows expected per key and hour at `--cadence`, and in the whole report.
struct Expected {
    per_hour: Vec<u64>,
    total: u64,
}

impl Expected {
    fn of(r: &Report, cadence: TimeDelta) -> Expected {
        let per_hour = r.expected_per_hour(cadence);
        let total = per_hour.iter().sum::<u64>() * r.keys() as u64;
        Expected { per_hour, total }
    }
}

/// `rows / expected`, or null when nothing was expected.
fn ratio(rows: u64, expected: u64) -> Value {
    if expected == 0 {
        Value::Null
    } else {
        json!(rows as f64 / expected as f64)
    }
}

fn write_json(
    out: &mut impl Write,
    r: &Report,
    c: Option<&Compared>,
    hourly: bool,
    expected: Option<&Expected>,
) -> io::Result<()> {
    for g in &r.gaps {
        line(out, &gap_json(g, c).to_string())?;
    }
    if let Some(c) = c {
        for x in differing_cells(c) {
            let v = json!({
                "type": "hour_diff",
                "key": x.key,
                "hour": ts(x.hour),
                "kafka": x.kafka,
                "db": x.db,
                "class": x.class(),
            });
            line(out, &v.to_string())?;
        }
    }
    if hourly {
        for (key, counts) in &r.counts {
            for (i, (h, n)) in r.hours.iter().zip(counts).enumerate() {
                let mut v = json!({"type": "hour", "key": key, "hour": ts(*h), "rows": n});
                if let (Some(e), Some(m)) = (expected, v.as_object_mut()) {
                    let want = e.per_hour.get(i).copied().unwrap_or(0);
                    m.insert("expected".into(), want.into());
                    m.insert("completeness".into(), ratio(*n, want));
                }
                line(out, &v.to_string())?;
            }
        }
    }
    let mut v = json!({
        "type": "summary",
        "keys": r.keys(),
        "rows": r.rows,
        "gaps": r.gaps.len(),
        "max_gap_seconds": r.max_gap_seconds(),
        "rpo_seconds": r.window.rpo().num_milliseconds() as f64 / 1000.0,
        "since": ts(r.window.since()),
        "until": ts(r.window.until()),
    });
    if let (Some(c), Some(m)) = (c, v.as_object_mut()) {
        m.insert("kafka_rows".into(), c.kafka.rows.into());
        let lost: u64 = differing_cells(c)
            .iter()
            .map(|x| x.kafka.saturating_sub(x.db))
            .sum();
        m.insert("lost_rows".into(), lost.into());
    }
    if let (Some(e), Some(m)) = (expected, v.as_object_mut()) {
        m.insert("expected_rows".into(), e.total.into());
        m.insert("completeness".into(), ratio(r.rows, e.total));
    }
    line(out, &v.to_string())
}

/// RFC 4180 field quoting (keys are free text).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn write_csv(out: &mut impl Write, r: &Report, c: Option<&Compared>) -> io::Result<()> {
    line(
        out,
        if c.is_some() {
            "key,start,end,seconds,kind,cause"
        } else {
            "key,start,end,seconds,kind"
        },
    )?;
    for g in &r.gaps {
        let mut s = format!(
            "{},{},{},{},{}",
            csv_field(&g.key),
            ts(g.start),
            ts(g.end),
            g.seconds(),
            g.kind.as_str()
        );
        if let Some(cause) = cause_of(g, c) {
            let _ = write!(s, ",{}", cause.as_str());
        }
        line(out, &s)?;
    }
    Ok(())
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A self-contained page: an inline SVG heatmap (keys × hours, shade = rows relative to the
/// fullest hour, red outline where a gap over the RPO touches the hour) and the gap list. No
/// scripts, fonts or images from anywhere.
fn html_report(r: &Report, c: Option<&Compared>) -> String {
    let cell_w = 28usize;
    let cell_h = 16usize;
    let label_w = r.counts.keys().map(|k| k.len()).max().unwrap_or(3) * 7 + 12;
    let top = 85usize;
    let max = r
        .counts
        .values()
        .flatten()
        .copied()
        .max()
        .unwrap_or(0)
        .max(1);
    // Room on the right for the last rotated hour label.
    let width = label_w + cell_w * r.hours.len() + 70;
    let height = top + cell_h * r.counts.len() + 20;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="monospace" font-size="11">"#
    );
    for (i, h) in r.hours.iter().enumerate() {
        let x = label_w + i * cell_w + cell_w / 2;
        let _ = write!(
            svg,
            r#"<text x="{x}" y="{}" transform="rotate(-60 {x} {})" >{}</text>"#,
            top - 6,
            top - 6,
            h.format("%m-%d %H:00")
        );
    }
    for (row, (key, counts)) in r.counts.iter().enumerate() {
        let y = top + row * cell_h;
        let _ = write!(
            svg,
            r#"<text x="4" y="{}">{}</text>"#,
            y + cell_h - 4,
            html_escape(key)
        );
        for (i, (h, n)) in r.hours.iter().zip(counts).enumerate() {
            let x = label_w + i * cell_w;
            let end = *h + TimeDelta::hours(1);
            let breach = r
                .gaps
                .iter()
                .any(|g| &g.key == key && g.start < end && g.end > *h);
            // White (no rows) to dark green (the fullest hour).
            let f = *n as f64 / max as f64;
            let g = (255.0 - 155.0 * f) as u8;
            let rb = (255.0 - 235.0 * f) as u8;
            let fill = if *n == 0 {
                "#f4f4f4".to_string()
            } else {
                format!("#{rb:02x}{g:02x}{rb:02x}")
            };
            let stroke = if breach {
                r##"stroke="#d00000" stroke-width="2""##
            } else {
                r##"stroke="#ffffff" stroke-width="1""##
            };
            let mut title = format!("{key} {}: {n} rows", ts(*h));
            if let Some(c) = c {
                let k = c
                    .kafka
                    .counts
                    .get(key)
                    .and_then(|v| v.get(i))
                    .copied()
                    .unwrap_or(0);
                let _ = write!(title, " (Kafka {k})");
            }
            if breach {
                title.push_str(", gap over the RPO");
            }
            let _ = write!(
                svg,
                r#"<rect x="{}" y="{}" width="{}" height="{}" fill="{fill}" {stroke}><title>{}</title></rect>"#,
                x + 1,
                y + 1,
                cell_w - 2,
                cell_h - 2,
                html_escape(&title)
            );
        }
    }
    svg.push_str("</svg>");

    let mut rows = String::new();
    for g in &r.gaps {
        let cause = cause_of(g, c)
            .map(|x| format!("<td>{}</td>", x.as_str()))
            .unwrap_or_default();
        let _ = write!(
            rows,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=n>{}</td>{cause}</tr>",
            html_escape(&g.key),
            g.kind.as_str(),
            ts(g.start),
            ts(g.end),
            g.seconds(),
        );
    }
    let verdict = if r.breached() {
        format!(
            "<p class=bad>RPO breached: {} gaps longer than {} s (longest {} s).</p>",
            r.gaps.len(),
            r.window.rpo().num_milliseconds() as f64 / 1000.0,
            r.max_gap_seconds()
        )
    } else {
        format!(
            "<p class=ok>RPO held: no gap longer than {} s.</p>",
            r.window.rpo().num_milliseconds() as f64 / 1000.0
        )
    };
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>drkit gaps {since} .. {until}</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; color: #222 }}
.bad {{ color: #b00000; font-weight: bold }} .ok {{ color: #006000; font-weight: bold }}
table {{ border-collapse: collapse; font-family: monospace; font-size: 12px }}
td, th {{ border: 1px solid #ccc; padding: 2px 6px; text-align: left }} td.n {{ text-align: right }}
.legend span {{ display: inline-block; width: 14px; height: 12px; vertical-align: middle; margin: 0 4px 0 12px }}
</style></head><body>
<h1>Telemetry gaps</h1>
<p>Window {since} .. {until}, RPO {rpo} s, {keys} keys, {rows_n} rows.</p>
{verdict}
<p class=legend>Rows per hour:<span style="background:#f4f4f4"></span>none<span style="background:#8cc68c"></span>some<span style="background:#146414"></span>most
<span style="border:2px solid #d00000"></span>a gap over the RPO touches the hour</p>
{svg}
<h2>Gaps</h2>
<table><tr><th>key</th><th>kind</th><th>start</th><th>end</th><th>seconds</th>{cause_head}</tr>
{rows}</table>
</body></html>
"#,
        since = ts(r.window.since()),
        until = ts(r.window.until()),
        rpo = r.window.rpo().num_milliseconds() as f64 / 1000.0,
        keys = r.keys(),
        rows_n = r.rows,
        cause_head = if c.is_some() { "<th>cause</th>" } else { "" },
    )
}
