//! `drkit replay`: flags to a validated [`ReplayConfig`], a runtime, a progress bar, the summary.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use replay::gaps;
use replay::gaps_sql::{self, TableName};
use replay::mapping::{parse_time, Mapping, TimeFormat, TimeWindow};
use replay::row_gaps::GapTracking;
use replay::sink::{redact, DbUrl, Progress, ReplayConfig, Summary};
use replay::source::{JsonLinesSource, SegmentsSource, Source};
use serde_json::json;

use crate::cli::{Format, ReplayArgs, TimeBasis};
use crate::output::Outcome;

pub fn run(args: ReplayArgs) -> Outcome {
    let (source, mut cfg) = match validate(&args) {
        Ok(v) => v,
        Err(msg) => {
            eprintln!("drkit replay: {}", redact(&msg));
            return Outcome::Trouble;
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("drkit replay: cannot start the runtime: {e}");
            return Outcome::Trouble;
        }
    };
    if let (Some(spec), Some(g)) = (&args.expected_keys_table, &mut cfg.gaps) {
        match rt.block_on(expected_keys_from_table(&cfg.db, spec)) {
            Ok(keys) => g.expected = keys,
            Err(msg) => {
                eprintln!("drkit replay: {}", redact(&msg));
                return Outcome::Trouble;
            }
        }
    }
    if args.follow {
        stop_on_signals(&rt);
    }
    let bar = bar(source.total_bytes(), !args.no_progress);
    let b = bar.clone();
    let mut on_progress = move |p: Progress| {
        b.set_position(p.source_bytes);
        b.set_message(format!("{} rows, {} dead letters", p.rows, p.dead_letters));
    };
    let result = rt.block_on(replay::sink::replay(source, cfg, &mut on_progress));
    bar.finish_and_clear();
    match result {
        Ok(summary) => {
            print_summary(&summary, args.format);
            let breached = summary.gap_report.as_ref().is_some_and(|r| r.breached());
            if summary.dead_letters > 0 || summary.stopped_by_max_errors || breached {
                Outcome::Problems
            } else {
                Outcome::Clean
            }
        }
        Err(e) => {
            let msg = redact(&e.to_string());
            match args.format {
                Format::Text => eprintln!("drkit replay: {msg}"),
                Format::Json => {
                    println!("{}", json!({"type": "error", "message": msg}));
                    eprintln!("drkit replay: {msg}");
                }
            }
            Outcome::Trouble
        }
    }
}

fn validate(args: &ReplayArgs) -> Result<(Box<dyn Source>, ReplayConfig), String> {
    let mapping = match Mapping::preset(&args.mapping) {
        Ok(m) => m,
        Err(_) if std::path::Path::new(&args.mapping).is_file() => {
            let text = std::fs::read_to_string(&args.mapping)
                .map_err(|e| format!("--mapping {}: {e}", args.mapping))?;
            Mapping::from_toml(&text).map_err(|e| format!("--mapping {}: {e}", args.mapping))?
        }
        Err(e) => return Err(format!("--mapping: {e}, and no such file")),
    };
    let table = args
        .table
        .clone()
        .or_else(|| mapping.table.clone())
        .ok_or("--table is required (the mapping names no table)")?;
    for k in &args.dedup_key {
        if mapping.column_index(k).is_none() {
            return Err(format!("--dedup-key {k}: not a column of the mapping"));
        }
    }
    let time = |flag: &str, v: &Option<String>| -> Result<Option<i64>, String> {
        v.as_deref()
            .map(|s| {
                parse_time(s, TimeFormat::Auto)
                    .ok_or_else(|| format!("{flag} {s:?}: not an RFC 3339 time or epoch ms"))
            })
            .transpose()
    };
    let since = time("--since", &args.since)?;
    let until = time("--until", &args.until)?;
    if let (Some(s), Some(u), Some(a), Some(b)) = (since, until, &args.since, &args.until) {
        if s >= u {
            return Err(format!(
                "the window is empty: --since {a} is not before --until {b}"
            ));
        }
    }
    // Gaps are judged on event time. A record-time window is in another clock (a producer's or
    // broker's, possibly hours off the events' own): its edges would make false edge gaps, so
    // the edges are then the fleet's first and last event.
    let gaps = match args.time_basis {
        TimeBasis::Event => gap_tracking(args, &mapping, since, until)?,
        TimeBasis::Record => gap_tracking(args, &mapping, None, None)?,
    };
    let (mut record_since_ms, mut record_until_ms, mut event_window) =
        (None, None, TimeWindow::default());
    match args.time_basis {
        TimeBasis::Record => {
            record_since_ms = since.map(|us| us.div_euclid(1000));
            record_until_ms = until.map(|us| us.div_euclid(1000));
        }
        TimeBasis::Event => {
            if mapping.time_column.is_none() && (since.is_some() || until.is_some()) {
                return Err("--time-basis event: the mapping has no time column".into());
            }
            event_window = TimeWindow {
                since_us: since,
                until_us: until,
            };
        }
    }
    let db = match &args.db {
        Some(url) => DbUrl::new(url.clone()),
        None => DbUrl::from_env(|k| std::env::var(k).ok())
            .ok_or("--db URL is required (or set PGHOST and the other PG* variables)")?,
    };
    let source: Box<dyn Source> = match (&args.segments, &args.jsonl, &args.kafka) {
        (Some(dir), None, None) => {
            Box::new(SegmentsSource::open(dir, args.source_id.clone()).map_err(|e| e.to_string())?)
        }
        (None, Some(file), None) => Box::new(
            JsonLinesSource::open(file, args.source_id.clone()).map_err(|e| e.to_string())?,
        ),
        (None, None, Some(bootstrap)) => kafka_source(args, bootstrap, record_until_ms)?,
        _ => return Err("give exactly one of --segments, --jsonl and --kafka".into()),
    };
    Ok((
        source,
        ReplayConfig {
            db,
            table,
            mapping,
            create_table: args.create_table,
            dedup_key: args.dedup_key.clone(),
            record_since_ms,
            record_until_ms,
            event_window,
            dead_letter: args.dead_letter.clone(),
            max_errors: args.max_errors,
            batch_rows: args.batch_rows,
            retries: 6,
            gaps,
            encoders: match args.encoders {
                0 => std::thread::available_parallelism().map_or(1, |n| n.get().min(16)),
                n => n.min(64),
            },
        },
    ))
}

/// `--rpo`, `--gap-key`, `--expected-keys`: gap tracking of the rows written, by event time, in
/// `[since, until)` where given.
fn gap_tracking(
    args: &ReplayArgs,
    mapping: &Mapping,
    since_us: Option<i64>,
    until_us: Option<i64>,
) -> Result<Option<GapTracking>, String> {
    if args.no_gaps {
        return Ok(None);
    }
    let key = match &args.gap_key {
        Some(k) => k.clone(),
        None if mapping.column_index("asset_id").is_some() && mapping.time_column.is_some() => {
            "asset_id".to_string()
        }
        None if args.expected_keys.is_some() || args.expected_keys_table.is_some() => {
            return Err("--expected-keys: name the key column with --gap-key".into())
        }
        None => return Ok(None),
    };
    let rpo = gaps::parse_duration(&args.rpo)
        .filter(|d| *d > TimeDelta::zero())
        .ok_or_else(|| {
            format!(
                "--rpo {:?}: expected a positive duration such as 5m, 300s, 1h",
                args.rpo
            )
        })?;
    let at = |us: Option<i64>| us.and_then(DateTime::<Utc>::from_timestamp_micros);
    let expected = match &args.expected_keys {
        Some(p) => crate::gaps::read_expected_file(p)?,
        None => Vec::new(),
    };
    GapTracking::new(mapping, &key, rpo, at(since_us), at(until_us), expected)
        .map(Some)
        .map_err(|e| e.to_string())
}

/// `--expected-keys-table`: read from the database before the replay starts.
async fn expected_keys_from_table(db: &DbUrl, spec: &str) -> Result<Vec<String>, String> {
    let (t, c) = spec
        .rsplit_once('.')
        .ok_or_else(|| format!("--expected-keys-table {spec:?}: expected TABLE.COLUMN"))?;
    let t = TableName::parse(t).map_err(|e| e.to_string())?;
    let client = gaps_sql::connect(db.expose())
        .await
        .map_err(|e| e.to_string())?;
    gaps_sql::expected_keys_from_table(&client, &t, c)
        .await
        .map_err(|e| format!("--expected-keys-table {spec}: {e}"))
}

fn bar(total: Option<u64>, enabled: bool) -> ProgressBar {
    if !enabled || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}",
    ) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(250));
    bar
}

fn print_summary(s: &Summary, format: Format) {
    let mut out = std::io::stdout().lock();
    match format {
        Format::Json => {
            for g in summary_gaps(s) {
                let _ = writeln!(out, "{}", crate::gaps::gap_json(g, None));
            }
            // `type` first, as in every drkit JSON line.
            let mut v = serde_json::Map::new();
            v.insert("type".into(), json!("summary"));
            if let Ok(serde_json::Value::Object(o)) = serde_json::to_value(s) {
                v.extend(o);
            }
            let _ = writeln!(out, "{}", serde_json::Value::Object(v));
        }
        Format::Text => {
            for w in &s.warnings {
                eprintln!("warning: {w}");
            }
            let _ = writeln!(
                out,
                "{} rows into {} from {} messages ({} source bytes) in {:.1} s: {:.0} rows/s, {} transactions",
                s.rows,
                s.table,
                s.messages,
                s.source_bytes,
                s.elapsed_ms as f64 / 1000.0,
                s.rows_per_sec,
                s.transactions
            );
            let st = &s.source_stats;
            let _ = writeln!(
                out,
                "already replayed: {}, outside the window: {}, duplicates skipped: {}, dead letters: {}{}",
                st.resumed_skipped,
                s.skipped_by_time,
                s.duplicates,
                s.dead_letters,
                if s.stopped_by_max_errors {
                    " (stopped: --max-errors exceeded)"
                } else {
                    ""
                }
            );
            if st.corrupt_ranges + st.undecodable_batches + st.unsupported_batches > 0 {
                let _ = writeln!(
                    out,
                    "source problems: {} corrupt ranges skipped, {} undecodable batches, {} unsupported legacy wrappers",
                    st.corrupt_ranges, st.undecodable_batches, st.unsupported_batches
                );
            }
            if s.retries > 0 {
                let _ = writeln!(out, "reconnects: {}", s.retries);
            }
            print_gaps_text(&mut out, s);
        }
    }
}

fn summary_gaps(s: &Summary) -> &[replay::gaps::Gap] {
    s.gap_report.as_ref().map_or(&[][..], |r| &r.gaps[..])
}

/// The gap section under the text summary: one line of numbers, then the first gaps.
fn print_gaps_text(out: &mut impl Write, s: &Summary) {
    let Some(g) = &s.gaps else {
        return;
    };
    let mut line = format!(
        "gaps per {} over the {} s RPO: {} in {} keys, {} rows, window {} .. {}",
        g.key_column, g.rpo_seconds, g.gaps, g.keys, g.rows, g.since, g.until
    );
    if g.gaps > 0 {
        line.push_str(&format!(" (longest {} s)", g.max_gap_seconds));
    }
    if g.unkeyed_rows + g.outside_rows > 0 {
        line.push_str(&format!(
            "; not judged: {} rows without key or time, {} outside the window",
            g.unkeyed_rows, g.outside_rows
        ));
    }
    let _ = writeln!(out, "{line}");
    let gaps = summary_gaps(s);
    if !gaps.is_empty() {
        let _ = crate::gaps::gap_table(out, gaps, 50, |_| None);
    }
}

/// `--kafka`: the broker source from its flags.
fn kafka_source(
    args: &ReplayArgs,
    bootstrap: &str,
    until_ms: Option<i64>,
) -> Result<Box<dyn Source>, String> {
    use replay::kafka::{KafkaSource, Partitions, Settings, Start};
    let topic = args.topic.clone().ok_or("--kafka needs --topic")?;
    let mut settings = Settings::default();
    for kv in &args.kafka_settings {
        settings.0.push(Settings::parse_one(kv)?);
    }
    let start = match args.start.as_str() {
        "earliest" => Start::Earliest,
        "latest" => Start::Latest,
        s => match s.parse::<i64>() {
            // Small numbers are offsets; epoch-ms times are 13 digits.
            Ok(n) if (0..100_000_000_000).contains(&n) => Start::Offset(n),
            _ => Start::Time(
                parse_time(s, TimeFormat::Auto)
                    .ok_or_else(|| {
                        format!("--start {s:?}: not earliest, latest, an offset or a time")
                    })?
                    .div_euclid(1000),
            ),
        },
    };
    let partitions = match (&args.group, args.partitions.is_empty()) {
        (Some(g), _) => Partitions::Group(g.clone()),
        (None, false) => Partitions::Only(args.partitions.clone()),
        (None, true) => Partitions::All,
    };
    if args.partitions.iter().any(|p| *p < 0) {
        return Err("--partitions: partition numbers are not negative".into());
    }
    let stall = replay::gaps::parse_duration(&args.stall_timeout)
        .and_then(|d| d.to_std().ok())
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            format!(
                "--stall-timeout {:?}: not a positive duration (e.g. 30s, 5m)",
                args.stall_timeout
            )
        })?;
    Ok(Box::new(
        KafkaSource::new(
            bootstrap.to_string(),
            topic,
            partitions,
            settings,
            start,
            !args.follow,
            until_ms,
            args.source_id.clone(),
        )
        .stall_timeout(stall)
        .stop_when(stop_flag()),
    ))
}

/// Set by SIGINT/SIGTERM during a `--follow` replay, which has no other end without `--until`:
/// the source stops at the next message, so the last transaction is committed and the summary
/// printed (exit 0). Other runs keep the default (the process ends, exit status of the signal):
/// stopping them early is not success, and the progress table makes a rerun continue.
fn stop_flag() -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    static STOP: std::sync::OnceLock<std::sync::Arc<std::sync::atomic::AtomicBool>> =
        std::sync::OnceLock::new();
    STOP.get_or_init(Default::default).clone()
}

/// A `--follow` run is ended by a signal: the first SIGINT or SIGTERM
/// asks the source to stop cleanly; a second one exits at once (only the uncommitted transaction
/// is lost, and the progress table makes a rerun read it again).
#[cfg(unix)]
fn stop_on_signals(rt: &tokio::runtime::Runtime) {
    use tokio::signal::unix::{signal, SignalKind};
    let flag = stop_flag();
    let _guard = rt.enter();
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        // Without handlers the default stays: the signal ends the process, which is safe.
        return;
    };
    rt.spawn(async move {
        let mut first = true;
        loop {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            if !first {
                eprintln!("drkit replay: second signal, exiting without the last commit");
                std::process::exit(2);
            }
            first = false;
            eprintln!("drkit replay: stopping: committing what was read (signal again to abort)");
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    });
}

/// Elsewhere Ctrl-C keeps its default (the process ends; the progress table makes that safe).
#[cfg(not(unix))]
fn stop_on_signals(_: &tokio::runtime::Runtime) {}
