//! The PostgreSQL sink and the replay pipeline: exactly once by keeping the source position in
//! the same transaction as the rows.
//!
//! One plain thread runs the [`Source`] and encodes rows into binary COPY chunks (CPU work, kept
//! off the async executor); the async side only waits on the database. Per chunk, one
//! transaction: `COPY` the rows (or COPY into a temporary staging table and
//! `INSERT ... ON CONFLICT DO NOTHING` with `--dedup-key`), then upsert the next offset per
//! (source, topic, partition) in `drkit_replay_progress`, then `COMMIT`. Either both land or
//! neither does, so a rerun or a restart after `kill -9` resumes exactly after the last
//! committed row.
//!
//! The progress upsert is guarded: it only moves the stored offset if it still holds the value
//! this run last saw. If it does not, either a concurrent writer moved it (an error, never a
//! duplicate) or our own COMMIT succeeded but its reply was lost with the connection — then the
//! stored offset equals the chunk's end and the chunk counts as committed, not resent.

use std::collections::HashMap;
use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::SinkExt;
use tokio::sync::mpsc;
use tokio_postgres::Client;

use crate::encode_pool::{Block, Done, Item, Outcome, Pool, PoolGone, Work};
use crate::gaps::Report;
use crate::mapping::{quote_ident, quote_table, ColType, Mapping, MessageRef, TimeWindow};
use crate::pgcopy;
use crate::row_gaps::{GapTracking, RowGapReport, RowGaps};
use crate::source::{Flow, Pipeline, Resume, Source, SourceError, SourceStats};

/// The progress table (created when missing).
pub const PROGRESS_TABLE: &str = "drkit_replay_progress";

/// A database URL whose password never reaches a message: `Display` and `Debug` redact it.
#[derive(Clone, PartialEq, Eq)]
pub struct DbUrl(String);

impl DbUrl {
    pub fn new(url: impl Into<String>) -> Self {
        DbUrl(url.into())
    }
    /// A key-value connection string from libpq's environment variables (`PGHOST`, `PGPORT`,
    /// `PGUSER`, `PGPASSWORD`, `PGDATABASE`, and the TLS ones `PGSSLMODE`, `PGSSLROOTCERT`,
    /// `PGSSLCERT`, `PGSSLKEY`), as psql would use them; `None` without `PGHOST`.
    /// tokio-postgres does not read the environment itself.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Option<DbUrl> {
        var("PGHOST")?;
        let mut parts = vec![];
        for (env, key) in [
            ("PGHOST", "host"),
            ("PGPORT", "port"),
            ("PGUSER", "user"),
            ("PGPASSWORD", "password"),
            ("PGDATABASE", "dbname"),
            ("PGSSLMODE", "sslmode"),
            ("PGSSLROOTCERT", "sslrootcert"),
            ("PGSSLCERT", "sslcert"),
            ("PGSSLKEY", "sslkey"),
        ] {
            if let Some(v) = var(env) {
                let v = v.replace('\\', "\\\\").replace('\'', "\\'");
                parts.push(format!("{key}='{v}'"));
            }
        }
        Some(DbUrl(parts.join(" ")))
    }

    /// The URL with its password, only for connecting.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DbUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact(&self.0))
    }
}
impl fmt::Debug for DbUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DbUrl({})", redact(&self.0))
    }
}

/// Replaces the password in a `postgres://user:pw@host` URL and in `password=...` parameters
/// (URL query or key-value connection strings) with `***`. Applied to any text that may echo a
/// connection string.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c == '/' || c == '?' || c.is_whitespace())
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match (authority.rfind('@'), authority.find(':')) {
            (Some(at), Some(colon)) if colon < at => {
                out.push_str(&authority[..colon]);
                out.push_str(":***");
                out.push_str(&authority[at..]);
            }
            _ => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    // password=... in query strings and key-value strings.
    let mut result = String::with_capacity(out.len());
    let mut s = out.as_str();
    while let Some(i) = s.find("password=") {
        let (head, tail) = s.split_at(i + "password=".len());
        result.push_str(head);
        result.push_str("***");
        // A quoted key-value (`password='a b'`) ends at its closing quote, past escapes.
        let end = match tail.strip_prefix('\'') {
            Some(q) => {
                let mut esc = false;
                q.char_indices()
                    .find(|&(_, c)| {
                        let close = c == '\'' && !esc;
                        esc = c == '\\' && !esc;
                        close
                    })
                    .map_or(tail.len(), |(i, _)| i + 2)
            }
            None => tail
                .find(|c: char| c == '&' || c.is_whitespace())
                .unwrap_or(tail.len()),
        };
        s = &tail[end..];
    }
    result.push_str(s);
    result
}

/// Validated options of one replay.
#[derive(Debug, Clone)]
pub struct ReplayConfig {
    pub db: DbUrl,
    pub table: String,
    pub mapping: Mapping,
    pub create_table: bool,
    /// Columns of a unique index; empty = plain COPY.
    pub dedup_key: Vec<String>,
    /// Record-time window, epoch ms, `[since, until)`.
    pub record_since_ms: Option<i64>,
    pub record_until_ms: Option<i64>,
    /// Event-time window on the mapping's time column.
    pub event_window: TimeWindow,
    pub dead_letter: Option<PathBuf>,
    /// Stop after more than this many dead letters.
    pub max_errors: Option<u64>,
    /// Rows per transaction.
    pub batch_rows: usize,
    /// Reconnect attempts per chunk after a lost connection.
    pub retries: u32,
    /// Per-key RPO gaps of the rows written (`--rpo`); `None` = off.
    pub gaps: Option<GapTracking>,
    /// Threads encoding rows; 1 encodes on the source's own thread.
    pub encoders: usize,
}

/// Why a replay stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("cannot connect to {url}: {reason}")]
    Connect { url: DbUrl, reason: String },
    #[error("table {0} does not exist (create it, or pass --create-table)")]
    MissingTable(String),
    #[error("table {table} has no column(s) {}", columns.join(", "))]
    MissingColumns { table: String, columns: Vec<String> },
    #[error("column {column} of {table} is {actual}, the mapping writes {expected}")]
    TypeMismatch {
        table: String,
        column: String,
        actual: String,
        expected: &'static str,
    },
    #[error(
        "column {column} of {table} is NOT NULL without a default and the mapping does not fill it"
    )]
    UnfilledNotNull { table: String, column: String },
    #[error("--dedup-key {}: no unique index on exactly these columns of {table} (CREATE UNIQUE INDEX ... ON {table} ({}))", key.join(","), key.join(", "))]
    NoUniqueIndex { table: String, key: Vec<String> },
    #[error("--dedup-key column {0} is not in the mapping")]
    DedupColumnNotMapped(String),
    #[error("hypertable {table}: the unique key ({}) must include the time column {time}", key.join(", "))]
    HypertableKey {
        table: String,
        key: Vec<String>,
        time: String,
    },
    #[error("progress of {source_id} {topic}/{partition} was moved by another writer (expected next offset {expected:?}, found {found:?})")]
    ProgressConflict {
        source_id: String,
        topic: String,
        partition: i32,
        expected: Option<i64>,
        found: Option<i64>,
    },
    #[error("database: {0}")]
    Db(String),
    #[error("gave up after {attempts} attempts: {last}")]
    ConnectionLost { attempts: u32, last: String },
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("dead-letter file {path}: {source}")]
    DeadLetter {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the encoder thread failed")]
    Encoder,
}

impl ReplayError {
    /// Usage or environment problems (exit 2) — all of them: the run did not finish.
    pub fn is_connection(&self) -> bool {
        matches!(
            self,
            ReplayError::Connect { .. } | ReplayError::ConnectionLost { .. }
        )
    }
}

fn db(e: tokio_postgres::Error) -> ReplayError {
    ReplayError::Db(redact(&pg_message(&e)))
}

fn pg_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("{}: {} ({})", d.severity(), d.message(), d.code().code()),
        None => e.to_string(),
    }
}

/// A lost connection (worth a reconnect), as opposed to an error the server reported about the
/// statement.
fn is_transient(e: &tokio_postgres::Error) -> bool {
    match e.as_db_error() {
        None => true,
        Some(d) => {
            let c = d.code().code();
            c.starts_with("08") || c == "57P01" || c == "57P02" || c == "57P03"
        }
    }
}

/// One dead letter: the coordinates, the reason and the value as text.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeadLetter {
    pub source: String,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub timestamp_ms: Option<i64>,
    pub kind: &'static str,
    pub reason: String,
    pub value: Option<String>,
}

/// Final numbers of a replay (the summary JSON in docs/REPLAY.md).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Summary {
    pub source: String,
    pub table: String,
    pub rows: u64,
    pub messages: u64,
    /// Bytes of keys and values read from the source.
    pub source_bytes: u64,
    /// Bytes of binary COPY data sent.
    pub copy_bytes: u64,
    pub elapsed_ms: u64,
    pub rows_per_sec: f64,
    pub transactions: u64,
    /// Rows `--dedup-key` found already present.
    pub duplicates: u64,
    pub dead_letters: u64,
    pub skipped_by_time: u64,
    /// Reconnects after a lost connection.
    pub retries: u64,
    pub stopped_by_max_errors: bool,
    pub timescaledb: Option<String>,
    pub warnings: Vec<String>,
    /// Gap tracking's numbers; null when it was off.
    pub gaps: Option<GapSummary>,
    /// The gaps themselves (printed as `gap` lines before the summary, not inside it).
    #[serde(skip)]
    pub gap_report: Option<Report>,
    #[serde(flatten)]
    pub source_stats: SourceStats,
}

/// The `gaps` object of the summary (docs/REPLAY.md).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct GapSummary {
    pub key_column: String,
    pub rpo_seconds: f64,
    /// The window the gaps were judged in (RFC 3339); an open end is the first (last) event.
    pub since: String,
    pub until: String,
    pub keys: usize,
    /// Rows with a key and a time inside the window.
    pub rows: u64,
    pub gaps: usize,
    pub max_gap_seconds: f64,
    /// Rows written with a NULL key or time (in no key's series).
    pub unkeyed_rows: u64,
    /// Rows written whose event time lies outside the window.
    pub outside_rows: u64,
}

impl GapSummary {
    fn of(t: &GapTracking, g: &RowGapReport) -> GapSummary {
        let r = &g.report;
        let ts = |d: chrono::DateTime<chrono::Utc>| {
            d.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
        };
        GapSummary {
            key_column: t.key_column.clone(),
            rpo_seconds: r.window.rpo().num_milliseconds() as f64 / 1000.0,
            since: ts(r.window.since()),
            until: ts(r.window.until()),
            keys: r.keys(),
            rows: r.rows,
            gaps: r.gaps.len(),
            max_gap_seconds: r.max_gap_seconds(),
            unkeyed_rows: g.unkeyed,
            outside_rows: g.outside,
        }
    }
}

/// Progress reported after each committed transaction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    pub rows: u64,
    pub source_bytes: u64,
    pub dead_letters: u64,
    pub total_bytes: Option<u64>,
}

/// One transaction's worth of work, built by the encoder thread.
struct Chunk {
    data: Bytes,
    rows: u64,
    messages: u64,
    source_bytes: u64,
    skipped_by_time: u64,
    /// Next offset per (topic, partition) after this chunk.
    next: Vec<(Arc<str>, i32, i64)>,
    dead: Vec<DeadLetter>,
}

/// What the encoder thread sends to the async side, in order.
enum ToSink {
    Chunk(Chunk),
    /// Answered once every chunk sent before it is committed (a dropped reply = the sink stopped).
    Checkpoint(tokio::sync::oneshot::Sender<()>),
    /// Fresh progress of some partitions from the database (a rebalance moved them here).
    Reload {
        topic: String,
        partitions: Vec<i32>,
        reply: tokio::sync::oneshot::Sender<Result<HashMap<i32, i64>, String>>,
    },
}

/// What the encoder thread ends with.
struct EncoderEnd {
    stats: Result<SourceStats, SourceError>,
    stopped_by_max_errors: bool,
    /// An encoding worker died: the run is incomplete.
    failed: bool,
    gaps: Option<RowGapReport>,
}

/// Runs a replay from `source` into the table; `on_progress` is called after every commit.
pub async fn replay(
    mut source: Box<dyn Source>,
    cfg: ReplayConfig,
    on_progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<Summary, ReplayError> {
    let started = Instant::now();
    let client = connect(&cfg.db).await?;
    let mut summary = Summary {
        source: source.id().to_string(),
        table: cfg.table.clone(),
        ..Summary::default()
    };
    summary.timescaledb = client
        .query_opt(
            "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'",
            &[],
        )
        .await
        .map_err(db)?
        .map(|r| r.get(0));
    client
        .batch_execute(&format!(
            "CREATE TABLE IF NOT EXISTS {PROGRESS_TABLE} (source text NOT NULL, topic text NOT NULL, \
             partition integer NOT NULL, next_offset bigint NOT NULL, \
             updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (source, topic, partition))"
        ))
        .await
        .map_err(db)?;
    if cfg.create_table {
        create_table(&client, &cfg, summary.timescaledb.as_deref()).await?;
    }
    summary.warnings = preflight(&client, &cfg, summary.timescaledb.is_some()).await?;

    let source_id = source.id().to_string();
    let mut stored: HashMap<(String, i32), i64> = HashMap::new();
    for r in client
        .query(
            &format!(
                "SELECT topic, partition, next_offset FROM {PROGRESS_TABLE} WHERE source = $1"
            ),
            &[&source_id],
        )
        .await
        .map_err(db)?
    {
        stored.insert((r.get(0), r.get(1)), r.get(2));
    }
    let resume = Resume(stored.clone());
    let total_bytes = source.total_bytes();

    let (tx, mut rx) = mpsc::channel::<ToSink>(3);
    let enc_cfg = cfg.clone();
    let enc_id = source_id.clone();
    let encoder =
        std::thread::spawn(move || encode_loop(&mut *source, &resume, &enc_cfg, &enc_id, tx));

    let mut client = Some(client);
    let mut result = Ok(());
    let mut dead_file = None;
    while let Some(msg) = rx.recv().await {
        let chunk = match msg {
            ToSink::Chunk(c) => c,
            ToSink::Checkpoint(reply) => {
                // Chunks are committed in order, so everything before this is in.
                let _ = reply.send(());
                continue;
            }
            ToSink::Reload {
                topic,
                partitions,
                reply,
            } => {
                let r = reload(&mut client, &cfg, &source_id, &topic, &partitions).await;
                if let Ok(found) = &r {
                    // The guard of the next upsert must expect what is stored now, which
                    // another worker may have moved.
                    for p in &partitions {
                        match found.get(p) {
                            Some(n) => stored.insert((topic.clone(), *p), *n),
                            None => stored.remove(&(topic.clone(), *p)),
                        };
                    }
                }
                let _ = reply.send(r.map_err(|e| e.to_string()));
                continue;
            }
        };
        if !chunk.dead.is_empty() {
            // Written before the commit: a crash may repeat a dead letter, never lose one.
            if let Err(e) = write_dead(&cfg, &mut dead_file, &chunk.dead) {
                result = Err(e);
                break;
            }
        }
        match commit(
            &mut client,
            &cfg,
            &source_id,
            &mut stored,
            &chunk,
            &mut summary,
        )
        .await
        {
            Ok(dups) => {
                summary.rows += chunk.rows - dups;
                summary.messages += chunk.messages;
                summary.source_bytes += chunk.source_bytes;
                summary.copy_bytes += chunk.data.len() as u64;
                summary.dead_letters += chunk.dead.len() as u64;
                summary.skipped_by_time += chunk.skipped_by_time;
                on_progress(Progress {
                    rows: summary.rows,
                    source_bytes: summary.source_bytes,
                    dead_letters: summary.dead_letters,
                    total_bytes,
                });
            }
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    // Dropping the receiver makes the encoder's next send fail, which stops the source.
    drop(rx);
    let end = encoder.join().map_err(|_| ReplayError::Encoder)?;
    result?;
    if end.failed {
        return Err(ReplayError::Encoder);
    }
    summary.source_stats = end.stats?;
    summary.stopped_by_max_errors = end.stopped_by_max_errors;
    if let (Some(t), Some(g)) = (&cfg.gaps, end.gaps) {
        summary.gaps = Some(GapSummary::of(t, &g));
        if summary.source_stats.resumed_skipped > 0 {
            summary.warnings.push(format!(
                "{} messages were replayed by an earlier run and are not in this run's gap report; `drkit gaps --db` judges the whole table",
                summary.source_stats.resumed_skipped
            ));
        }
        summary.gap_report = Some(g.report);
    }
    summary.elapsed_ms = started.elapsed().as_millis() as u64;
    summary.rows_per_sec = summary.rows as f64 / started.elapsed().as_secs_f64().max(1e-9);
    Ok(summary)
}

fn write_dead(
    cfg: &ReplayConfig,
    file: &mut Option<std::fs::File>,
    dead: &[DeadLetter],
) -> Result<(), ReplayError> {
    let Some(path) = &cfg.dead_letter else {
        return Ok(());
    };
    let err = |source| ReplayError::DeadLetter {
        path: path.clone(),
        source,
    };
    if file.is_none() {
        *file = Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(err)?,
        );
    }
    let mut text = Vec::new();
    for d in dead {
        // Serialising a struct of strings and integers cannot fail.
        let _ = serde_json::to_writer(&mut text, d);
        text.push(b'\n');
    }
    if let Some(f) = file {
        f.write_all(&text).map_err(err)?;
        f.flush().map_err(err)?;
    }
    Ok(())
}

async fn connect(url: &DbUrl) -> Result<Client, ReplayError> {
    crate::pgconn::connect(url.expose())
        .await
        .map_err(|e| ReplayError::Connect {
            url: url.clone(),
            reason: e.to_string(),
        })
}

/// Commits one chunk, reconnecting with backoff after a lost connection.
async fn commit(
    client: &mut Option<Client>,
    cfg: &ReplayConfig,
    source_id: &str,
    stored: &mut HashMap<(String, i32), i64>,
    chunk: &Chunk,
    summary: &mut Summary,
) -> Result<u64, ReplayError> {
    let mut attempt = 0u32;
    let mut delay = Duration::from_millis(200);
    loop {
        let c = match client.take() {
            Some(c) if !c.is_closed() => Ok(c),
            Some(_) => {
                // The server closed an idle connection between transactions: a reconnect too.
                summary.retries += 1;
                connect(&cfg.db).await
            }
            None => connect(&cfg.db).await,
        };
        let outcome = match c {
            Ok(mut c) => {
                let r = try_commit(&mut c, cfg, source_id, stored, chunk).await;
                *client = Some(c);
                r
            }
            Err(e) => Err(Attempt::Transient(e.to_string())),
        };
        match outcome {
            Ok(dups) => {
                summary.transactions += 1;
                summary.duplicates += dups;
                for (t, p, n) in &chunk.next {
                    stored.insert((t.to_string(), *p), *n);
                }
                return Ok(dups);
            }
            Err(Attempt::Fatal(e)) => return Err(e),
            Err(Attempt::Transient(last)) => {
                attempt += 1;
                if attempt > cfg.retries {
                    return Err(ReplayError::ConnectionLost {
                        attempts: attempt,
                        last: redact(&last),
                    });
                }
                summary.retries += 1;
                *client = None;
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

enum Attempt {
    Transient(String),
    Fatal(ReplayError),
}

fn classify(e: tokio_postgres::Error) -> Attempt {
    if is_transient(&e) {
        Attempt::Transient(pg_message(&e))
    } else {
        Attempt::Fatal(db(e))
    }
}

/// One transaction. Returns the rows the dedup path found already present.
async fn try_commit(
    client: &mut Client,
    cfg: &ReplayConfig,
    source_id: &str,
    stored: &HashMap<(String, i32), i64>,
    chunk: &Chunk,
) -> Result<u64, Attempt> {
    let table = quote_table(&cfg.table);
    let cols = cfg.mapping.column_list();
    let tx = client.transaction().await.map_err(classify)?;
    let mut dups = 0;
    if chunk.rows > 0 {
        let target = if cfg.dedup_key.is_empty() {
            table.clone()
        } else {
            tx.batch_execute(&format!(
                "CREATE TEMP TABLE IF NOT EXISTS drkit_staging ON COMMIT DELETE ROWS AS \
                 SELECT {cols} FROM {table} WITH NO DATA"
            ))
            .await
            .map_err(classify)?;
            "drkit_staging".to_string()
        };
        let sink = tx
            .copy_in(&format!(
                "COPY {target} ({cols}) FROM STDIN (FORMAT binary)"
            ))
            .await
            .map_err(classify)?;
        futures_util::pin_mut!(sink);
        const FRAME: usize = 1 << 20;
        let mut at = 0;
        while at < chunk.data.len() {
            let end = (at + FRAME).min(chunk.data.len());
            sink.feed(chunk.data.slice(at..end))
                .await
                .map_err(classify)?;
            at = end;
        }
        sink.finish().await.map_err(classify)?;
        if !cfg.dedup_key.is_empty() {
            let key = cfg
                .dedup_key
                .iter()
                .map(|k| quote_ident(k))
                .collect::<Vec<_>>()
                .join(", ");
            let inserted = tx
                .execute(
                    &format!(
                        "INSERT INTO {table} ({cols}) SELECT {cols} FROM drkit_staging \
                         ON CONFLICT ({key}) DO NOTHING"
                    ),
                    &[],
                )
                .await
                .map_err(classify)?;
            dups = chunk.rows.saturating_sub(inserted);
        }
    }
    let upsert = format!(
        "INSERT INTO {PROGRESS_TABLE} (source, topic, partition, next_offset) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (source, topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset, \
         updated_at = now() WHERE {PROGRESS_TABLE}.next_offset IS NOT DISTINCT FROM $5"
    );
    for (topic, partition, next) in &chunk.next {
        let expected = stored.get(&(topic.to_string(), *partition)).copied();
        let n = tx
            .execute(
                &upsert,
                &[&source_id, &topic.as_ref(), partition, next, &expected],
            )
            .await
            .map_err(classify)?;
        if n != 1 {
            drop(tx);
            // Did our own earlier COMMIT land with its reply lost?
            let found: Option<i64> = client
                .query_opt(
                    &format!(
                        "SELECT next_offset FROM {PROGRESS_TABLE} WHERE source = $1 AND topic = $2 AND partition = $3"
                    ),
                    &[&source_id, &topic.as_ref(), partition],
                )
                .await
                .map_err(classify)?
                .map(|r| r.get(0));
            let all_landed = found == Some(*next);
            if all_landed {
                return Ok(0);
            }
            return Err(Attempt::Fatal(ReplayError::ProgressConflict {
                source_id: source_id.to_string(),
                topic: topic.to_string(),
                partition: *partition,
                expected,
                found,
            }));
        }
    }
    tx.commit().await.map_err(classify)?;
    Ok(dups)
}

/// The encoder thread's state: the chunk being built and its COPY data.
struct Encoder<'a> {
    cfg: &'a ReplayConfig,
    work: Arc<Work>,
    source_id: &'a str,
    tx: &'a mpsc::Sender<ToSink>,
    data: Vec<u8>,
    chunk: Chunk,
    topics: Vec<Arc<str>>,
    dead_total: u64,
    stopped_by_max_errors: bool,
    /// The sink is gone: nothing more can be committed.
    closed: bool,
    gaps: Option<RowGaps>,
    /// Worker threads for `encoders > 1`, and the block being filled for them.
    pool: Option<Pool>,
    block: Block,
    /// A worker thread died.
    pool_failed: bool,
}

fn empty_chunk() -> Chunk {
    Chunk {
        data: Bytes::new(),
        rows: 0,
        messages: 0,
        source_bytes: 0,
        skipped_by_time: 0,
        next: vec![],
        dead: vec![],
    }
}

impl Encoder<'_> {
    /// Sends the chunk being built (if it holds anything); `false` when the sink is gone.
    fn flush(&mut self) -> bool {
        if self.closed {
            return false;
        }
        if self.chunk.messages == 0 && self.chunk.dead.is_empty() && self.chunk.next.is_empty() {
            return true;
        }
        self.data.extend_from_slice(pgcopy::TRAILER);
        let mut c = std::mem::replace(&mut self.chunk, empty_chunk());
        c.data = Bytes::from(std::mem::replace(
            &mut self.data,
            Vec::with_capacity(8 << 20),
        ));
        self.data.extend_from_slice(pgcopy::HEADER);
        if self.tx.blocking_send(ToSink::Chunk(c)).is_err() {
            self.closed = true;
        }
        !self.closed
    }

    fn topic(&mut self, topic: &str) -> Arc<str> {
        match self.topics.iter().find(|t| t.as_ref() == topic) {
            Some(t) => t.clone(),
            None => {
                let t: Arc<str> = Arc::from(topic);
                self.topics.push(t.clone());
                t
            }
        }
    }

    /// Records that `next` is the next offset to read of a partition, in the chunk being built.
    fn set_next(&mut self, topic: &str, partition: i32, next: i64) {
        match self
            .chunk
            .next
            .iter_mut()
            .find(|(t, p, _)| *p == partition && t.as_ref() == topic)
        {
            Some(e) => e.2 = e.2.max(next),
            None => {
                let t = self.topic(topic);
                self.chunk.next.push((t, partition, next));
            }
        }
    }

    fn stopped(&self) -> bool {
        self.stopped_by_max_errors || self.closed || self.pool_failed
    }

    /// A message from the source: encoded here, or queued for the workers.
    fn message(&mut self, m: &MessageRef<'_>) -> Flow {
        if self.stopped() {
            return Flow::Stop;
        }
        if self.pool.is_some() {
            let topic = self.topic(m.topic);
            self.block.push_message(topic, m);
            if self.block.is_full() {
                return self.submit();
            }
            return Flow::Continue;
        }
        let outcome = self.work.encode(m, &mut self.data);
        self.account(m, outcome)
    }

    /// Offsets consumed without a message, in order with the messages around them.
    fn advance(&mut self, topic: &str, partition: i32, next: i64) {
        if self.pool.is_some() {
            let t = self.topic(topic);
            self.block.push_advance(t, partition, next);
        } else {
            self.set_next(topic, partition, next);
        }
    }

    /// The bookkeeping of one encoded message, in source order; its rows (if any) are already at
    /// the given range of `self.data`.
    fn account(&mut self, m: &MessageRef<'_>, outcome: Outcome) -> Flow {
        let cfg = self.cfg;
        let mut counted = true;
        match outcome {
            Outcome::OutsideWindow => self.chunk.skipped_by_time += 1,
            Outcome::Rows(e, rows) => {
                if let (Some(g), Some(rows)) = (&mut self.gaps, self.data.get(rows)) {
                    g.rows(rows);
                }
                self.chunk.rows += e.rows as u64;
                self.chunk.skipped_by_time += e.skipped as u64;
            }
            Outcome::Bad(e) => {
                self.dead_total += 1;
                self.chunk.dead.push(DeadLetter {
                    source: self.source_id.to_string(),
                    topic: m.topic.to_string(),
                    partition: m.partition,
                    offset: m.offset,
                    timestamp_ms: m.timestamp,
                    kind: e.kind(),
                    reason: e.to_string(),
                    value: m.value.map(|v| String::from_utf8_lossy(v).into_owned()),
                });
                if cfg.max_errors.is_some_and(|max| self.dead_total > max) {
                    // The message that crossed the limit is reported but not consumed: a
                    // rerun after fixing the cause starts with it.
                    self.stopped_by_max_errors = true;
                    counted = false;
                }
            }
        }
        if counted {
            self.chunk.messages += 1;
            self.chunk.source_bytes +=
                m.value.map_or(0, |v| v.len() as u64) + m.key.map_or(0, |k| k.len() as u64);
            self.set_next(m.topic, m.partition, m.offset.saturating_add(1));
        }
        if self.stopped_by_max_errors {
            self.flush();
            return Flow::Stop;
        }
        let batch_rows = cfg.batch_rows.max(1) as u64;
        if (self.chunk.rows >= batch_rows || self.chunk.messages >= batch_rows) && !self.flush() {
            return Flow::Stop;
        }
        Flow::Continue
    }

    /// Sends the block being filled to a worker, and accounts for the oldest finished one when
    /// it is due.
    fn submit(&mut self) -> Flow {
        let block = std::mem::take(&mut self.block);
        let Some(pool) = &mut self.pool else {
            return Flow::Continue;
        };
        match pool.submit(block) {
            Ok(Some(done)) => self.apply(done),
            Ok(None) => Flow::Continue,
            Err(PoolGone) => {
                self.pool_failed = true;
                Flow::Stop
            }
        }
    }

    /// Everything queued or in flight, accounted for in order (before a checkpoint, at the end).
    fn drain(&mut self) -> Flow {
        if self.pool.is_none() {
            return Flow::Continue;
        }
        if !self.block.is_empty() && self.submit() == Flow::Stop {
            return Flow::Stop;
        }
        loop {
            let next = match &mut self.pool {
                Some(pool) => pool.oldest(),
                None => Ok(None),
            };
            match next {
                Ok(Some(done)) => {
                    if self.apply(done) == Flow::Stop {
                        return Flow::Stop;
                    }
                }
                Ok(None) => return Flow::Continue,
                Err(PoolGone) => {
                    self.pool_failed = true;
                    return Flow::Stop;
                }
            }
        }
    }

    /// A block the workers encoded, accounted for item by item as if encoded here.
    fn apply(&mut self, done: Done) -> Flow {
        let Done {
            block,
            outcomes,
            rows,
        } = done;
        let mut outcomes = outcomes.into_iter();
        for item in &block.items {
            if self.stopped() {
                return Flow::Stop;
            }
            match item {
                Item::Advance {
                    topic,
                    partition,
                    next,
                } => self.set_next(topic, *partition, *next),
                Item::Message(o) => {
                    let Some(outcome) = outcomes.next() else {
                        self.pool_failed = true;
                        return Flow::Stop;
                    };
                    let outcome = match outcome {
                        Outcome::Rows(e, r) => {
                            let start = self.data.len();
                            self.data.extend_from_slice(rows.get(r).unwrap_or_default());
                            Outcome::Rows(e, start..self.data.len())
                        }
                        other => other,
                    };
                    let mut headers = Vec::new();
                    let m = block.message_ref(o, &mut headers);
                    if self.account(&m, outcome) == Flow::Stop {
                        return Flow::Stop;
                    }
                }
            }
        }
        Flow::Continue
    }
}

/// The pipeline as a source sees it from the encoder thread: checkpoints and reloads go through
/// the same channel as the chunks, so they are answered in order with the commits.
struct EncoderPipeline<'e, 'a> {
    enc: &'e std::cell::RefCell<Encoder<'a>>,
}

impl Pipeline for EncoderPipeline<'_, '_> {
    fn checkpoint(&mut self) -> bool {
        let mut e = self.enc.borrow_mut();
        if e.drain() == Flow::Stop || !e.flush() {
            return false;
        }
        let (reply, wait) = tokio::sync::oneshot::channel();
        if e.tx.blocking_send(ToSink::Checkpoint(reply)).is_err() {
            e.closed = true;
            return false;
        }
        drop(e);
        wait.blocking_recv().is_ok()
    }

    fn reload(&mut self, topic: &str, partitions: &[i32]) -> Result<HashMap<i32, i64>, String> {
        let (reply, wait) = tokio::sync::oneshot::channel();
        let msg = ToSink::Reload {
            topic: topic.to_string(),
            partitions: partitions.to_vec(),
            reply,
        };
        let tx = self.enc.borrow().tx.clone();
        tx.blocking_send(msg)
            .map_err(|_| "the database side has stopped".to_string())?;
        wait.blocking_recv()
            .map_err(|_| "the database side has stopped".to_string())?
    }

    fn advance(&mut self, topic: &str, partition: i32, next: i64) {
        self.enc.borrow_mut().advance(topic, partition, next);
    }
}

/// The encoder thread: runs the source, applies windows and the mapping, cuts chunks.
fn encode_loop(
    source: &mut dyn Source,
    resume: &Resume,
    cfg: &ReplayConfig,
    source_id: &str,
    tx: mpsc::Sender<ToSink>,
) -> EncoderEnd {
    let mut data = Vec::with_capacity(8 << 20);
    data.extend_from_slice(pgcopy::HEADER);
    let work = Arc::new(Work {
        mapping: cfg.mapping.clone(),
        event_window: cfg.event_window,
        record_since_ms: cfg.record_since_ms,
        record_until_ms: cfg.record_until_ms,
    });
    let pool = (cfg.encoders > 1 && source.bulk()).then(|| Pool::new(work.clone(), cfg.encoders));
    let enc = std::cell::RefCell::new(Encoder {
        cfg,
        work,
        source_id,
        tx: &tx,
        data,
        chunk: empty_chunk(),
        topics: vec![],
        dead_total: 0,
        stopped_by_max_errors: false,
        closed: false,
        gaps: cfg.gaps.as_ref().map(GapTracking::start),
        pool,
        block: Block::default(),
        pool_failed: false,
    });
    let mut pipeline = EncoderPipeline { enc: &enc };
    // The source calls the callback and the pipeline one at a time, never nested, so the
    // RefCell borrows never overlap.
    let stats = source.run_in(resume, &mut pipeline, &mut |m: &MessageRef<'_>| {
        enc.borrow_mut().message(m)
    });
    let mut e = enc.borrow_mut();
    if stats.is_ok() {
        // What the workers still hold belongs to messages the source delivered: account for it.
        // (After a source error the run fails anyway; nothing more is committed.)
        e.drain();
    }
    if !e.stopped() {
        e.flush();
    }
    e.pool = None;
    let expected = cfg.gaps.as_ref().map_or(&[][..], |t| &t.expected[..]);
    EncoderEnd {
        stats,
        stopped_by_max_errors: e.stopped_by_max_errors,
        failed: e.pool_failed,
        gaps: e.gaps.take().map(|g| g.finish(expected)),
    }
}

/// Reads the stored next offsets of some partitions (for a rebalance), reconnecting once.
async fn reload(
    client: &mut Option<Client>,
    cfg: &ReplayConfig,
    source_id: &str,
    topic: &str,
    partitions: &[i32],
) -> Result<HashMap<i32, i64>, ReplayError> {
    let c = match client.take() {
        Some(c) if !c.is_closed() => c,
        _ => connect(&cfg.db).await?,
    };
    let r = c
        .query(
            &format!(
                "SELECT partition, next_offset FROM {PROGRESS_TABLE} \
                 WHERE source = $1 AND topic = $2 AND partition = ANY($3)"
            ),
            &[&source_id, &topic, &partitions],
        )
        .await;
    *client = Some(c);
    Ok(r.map_err(db)?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

/// `CREATE TABLE IF NOT EXISTS` from the mapping, a unique index for the dedup key, and a
/// hypertable when TimescaleDB is installed.
async fn create_table(
    client: &Client,
    cfg: &ReplayConfig,
    timescale: Option<&str>,
) -> Result<(), ReplayError> {
    let table = quote_table(&cfg.table);
    let cols = cfg
        .mapping
        .columns
        .iter()
        .map(|c| {
            let nn = if c.optional { "" } else { " NOT NULL" };
            format!("{} {}{nn}", quote_ident(&c.name), c.ty.sql())
        })
        .collect::<Vec<_>>()
        .join(", ");
    client
        .batch_execute(&format!("CREATE TABLE IF NOT EXISTS {table} ({cols})"))
        .await
        .map_err(db)?;
    if let (Some(version), Some(t)) = (timescale, cfg.mapping.time_column) {
        let time = cfg
            .mapping
            .columns
            .get(t)
            .map(|c| c.name.clone())
            .unwrap_or_default();
        let new_api = version_at_least(version, 2, 13);
        let sql = if new_api {
            "SELECT create_hypertable($1::text::regclass, by_range($2::text::name), if_not_exists => TRUE)"
        } else {
            "SELECT create_hypertable($1::text::regclass, $2::text::name, if_not_exists => TRUE)"
        };
        client.execute(sql, &[&table, &time]).await.map_err(db)?;
    }
    if !cfg.dedup_key.is_empty() {
        let key = cfg
            .dedup_key
            .iter()
            .map(|k| quote_ident(k))
            .collect::<Vec<_>>()
            .join(", ");
        let name = format!(
            "{}_drkit_dedup",
            cfg.table.rsplit('.').next().unwrap_or(&cfg.table)
        );
        client
            .batch_execute(&format!(
                "CREATE UNIQUE INDEX IF NOT EXISTS {} ON {table} ({key})",
                quote_ident(&name)
            ))
            .await
            .map_err(db)?;
    }
    Ok(())
}

fn version_at_least(v: &str, major: u32, minor: u32) -> bool {
    let mut it = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (a, b) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
    (a, b) >= (major, minor)
}

/// Checks the table against the mapping before any row moves. Returns warnings.
pub async fn preflight(
    client: &Client,
    cfg: &ReplayConfig,
    timescale: bool,
) -> Result<Vec<String>, ReplayError> {
    let table = quote_table(&cfg.table);
    let exists: Option<String> = client
        .query_one("SELECT to_regclass($1)::text", &[&table])
        .await
        .map_err(db)?
        .get(0);
    if exists.is_none() {
        return Err(ReplayError::MissingTable(cfg.table.clone()));
    }
    let rows = client
        .query(
            "SELECT a.attname::text, t.typname::text, a.attnotnull, a.atthasdef OR a.attidentity <> '' \
             FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid \
             WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped",
            &[&table],
        )
        .await
        .map_err(db)?;
    let actual: Vec<(String, String, bool, bool)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    let mut warnings = vec![];
    let missing: Vec<String> = cfg
        .mapping
        .columns
        .iter()
        .filter(|c| !actual.iter().any(|a| a.0 == c.name))
        .map(|c| c.name.clone())
        .collect();
    if !missing.is_empty() {
        return Err(ReplayError::MissingColumns {
            table: cfg.table.clone(),
            columns: missing,
        });
    }
    for c in &cfg.mapping.columns {
        let Some(a) = actual.iter().find(|a| a.0 == c.name) else {
            continue;
        };
        if !c.ty.accepts(&a.1) {
            return Err(ReplayError::TypeMismatch {
                table: cfg.table.clone(),
                column: c.name.clone(),
                actual: a.1.clone(),
                expected: c.ty.sql(),
            });
        }
        if a.1 == "timestamp" {
            warnings.push(format!(
                "column {} of {} is timestamp without time zone: rows get UTC wall-clock times, and now() comparisons depend on the session time zone (prefer timestamptz)",
                c.name, cfg.table
            ));
        }
        if c.ty == ColType::Timestamp && a.1 == "timestamptz" {
            warnings.push(format!(
                "column {} is timestamptz but the mapping says timestamp: values are written as UTC",
                c.name
            ));
        }
    }
    for a in &actual {
        if a.2 && !a.3 && cfg.mapping.column_index(&a.0).is_none() {
            return Err(ReplayError::UnfilledNotNull {
                table: cfg.table.clone(),
                column: a.0.clone(),
            });
        }
    }
    if !cfg.dedup_key.is_empty() {
        for k in &cfg.dedup_key {
            if cfg.mapping.column_index(k).is_none() {
                return Err(ReplayError::DedupColumnNotMapped(k.clone()));
            }
        }
        let idx = client
            .query(
                "SELECT array_agg(a.attname::text ORDER BY a.attname) FROM pg_index i \
                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
                 WHERE i.indrelid = $1::text::regclass AND i.indisunique AND i.indpred IS NULL \
                 AND NOT (0 = ANY(i.indkey)) GROUP BY i.indexrelid",
                &[&table],
            )
            .await
            .map_err(db)?;
        let mut want = cfg.dedup_key.clone();
        want.sort();
        want.dedup();
        let found = idx.iter().any(|r| {
            let cols: Vec<String> = r.get(0);
            cols == want
        });
        if !found {
            return Err(ReplayError::NoUniqueIndex {
                table: cfg.table.clone(),
                key: cfg.dedup_key.clone(),
            });
        }
        if timescale {
            if let Some(t) = cfg
                .mapping
                .time_column
                .and_then(|i| cfg.mapping.columns.get(i))
            {
                if !cfg.dedup_key.contains(&t.name) {
                    return Err(ReplayError::HypertableKey {
                        table: cfg.table.clone(),
                        key: cfg.dedup_key.clone(),
                        time: t.name.clone(),
                    });
                }
            }
        }
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            redact("host=h password=secret user=u"),
            "host=h password=*** user=u"
        );
        assert_eq!(
            redact("postgresql://h/db?user=u&password=x&sslmode=require"),
            "postgresql://h/db?user=u&password=***&sslmode=require"
        );
        assert_eq!(
            redact(r"host=h password='a b\' c' user=u"),
            "host=h password=*** user=u"
        );
        let u = DbUrl::new("postgres://u:pw@h/db");
        assert!(!format!("{u} {u:?}").contains("pw@"));
    }

    #[test]
    fn environment_gives_a_quoted_key_value_string() {
        let env = |k: &str| match k {
            "PGHOST" => Some("db".to_string()),
            "PGPASSWORD" => Some("it's".to_string()),
            "PGDATABASE" => Some("ms5db".to_string()),
            _ => None,
        };
        let u = DbUrl::from_env(env).unwrap();
        assert_eq!(u.expose(), r"host='db' password='it\'s' dbname='ms5db'");
        assert!(!u.to_string().contains("it"));
        assert!(DbUrl::from_env(|_| None).is_none());
    }

    #[test]
    fn versions_compare() {
        assert!(version_at_least("2.13.0", 2, 13));
        assert!(version_at_least("2.28.1", 2, 13));
        assert!(!version_at_least("2.11.2", 2, 13));
    }
}
