//! Reading a [`Snapshot`] from a live database.
//!
//! Catalog reads and row counts run in one read-only `REPEATABLE READ` transaction, so every
//! count and every sequence's column maximum belong to the same moment even while writers run.
//! Exact counts are one `count(*)` per table: a full scan each, the only number a restore can be
//! held to. `--fast` ([`RowCounts::Estimate`]) runs `ANALYZE` on each table first (a restore
//! leaves the statistics empty: `reltuples` is -1 and `pg_stat_user_tables` starts at zero) and
//! reads `reltuples` for the large tables, where a scan costs and a sample's error is a small
//! share; a table estimated under `exact_below` rows (quick to count, and where a
//! handful of lost rows is a large share), a table the planner still has no estimate for, and
//! every TimescaleDB hypertable (whose parent holds no rows of its own), is counted exactly. The
//! gap report is [`replay::gaps_sql::report`] unchanged, in its own transaction after that.
//!
//! User tables are every ordinary or partitioned table outside `pg_catalog`, `information_schema`,
//! `pg_*` (TOAST, temporary) and TimescaleDB's own schemas (`_timescaledb_*`, `timescaledb_*`,
//! which hold chunks and catalogs), and not owned by an extension. Identifiers are always quoted
//! with [`quote_ident`].

use std::time::Instant;

use chrono::{SecondsFormat, Utc};
use replay::gaps::Window;
use replay::gaps_sql::{self, quote_ident, GapsSqlError, Source};
use tokio_postgres::{Client, IsolationLevel, Transaction};

use crate::snapshot::{
    Constraint, Extension, Hypertable, Index, Sequence, Snapshot, Table, Telemetry, TelemetryGap,
    Timescale, FORMAT, VERSION,
};

/// How rows are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowCounts {
    /// `count(*)` per table.
    Exact,
    /// `reltuples` after `ANALYZE`, for tables estimated at `exact_below` rows or more.
    Estimate { exact_below: u64 },
}

impl RowCounts {
    pub fn as_str(self) -> &'static str {
        match self {
            RowCounts::Exact => "exact",
            RowCounts::Estimate { .. } => "estimate",
        }
    }
}

/// The telemetry table whose gaps are reported, over which window, and the keys expected in it.
#[derive(Debug, Clone)]
pub struct TelemetrySpec {
    pub source: Source,
    pub window: Window,
    pub expected: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub row_counts: RowCounts,
    pub telemetry: Option<TelemetrySpec>,
}

/// What went wrong, naming the object involved (never the password).
#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    /// Connecting, or the gap report (its messages name the table and columns).
    #[error(transparent)]
    Gaps(#[from] GapsSqlError),
    #[error("{what}: {}", replay::pgconn::error_chain(.source))]
    Query {
        what: String,
        source: tokio_postgres::Error,
    },
}

impl ValidateError {
    /// The telemetry table or one of its columns is missing or mistyped: after a restore that is a
    /// finding about the database, not a usage error.
    pub fn is_missing_telemetry(&self) -> bool {
        matches!(
            self,
            ValidateError::Gaps(
                GapsSqlError::TableMissing(_)
                    | GapsSqlError::ColumnMissing { .. }
                    | GapsSqlError::TimeColumnType { .. }
            )
        )
    }
}

fn q(what: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> ValidateError {
    let what = what.into();
    move |source| ValidateError::Query { what, source }
}

/// The schema and table filter for `pg_class c JOIN pg_namespace n`.
const USER_TABLE: &str = "n.nspname NOT IN ('pg_catalog', 'information_schema') \
    AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname NOT LIKE '\\_timescaledb%' \
    AND n.nspname NOT LIKE 'timescaledb\\_%' \
    AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = 'pg_class'::regclass \
                    AND e.objid = c.oid AND e.deptype = 'e')";

/// `schema.name` as the snapshot writes it, and the quoted form for SQL.
fn names(schema: &str, name: &str) -> (String, String) {
    (
        format!("{schema}.{name}"),
        format!("{}.{}", quote_ident(schema), quote_ident(name)),
    )
}

/// Reads the snapshot of the database `client` is connected to.
pub async fn snapshot(client: &mut Client, opts: &Options) -> Result<Snapshot, ValidateError> {
    let started = Instant::now();
    let taken_at = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
    if matches!(opts.row_counts, RowCounts::Estimate { .. }) {
        analyze(client).await?;
    }
    let tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(q("starting a read-only transaction"))?;
    let head = tx
        .query_one(
            "SELECT current_setting('server_version'), current_database()::text",
            &[],
        )
        .await
        .map_err(q("reading the server version"))?;
    let extensions = extensions(&tx).await?;
    let timescaledb = match extensions.iter().find(|e| e.name == "timescaledb") {
        Some(e) => Some(Timescale {
            version: e.version.clone(),
            restoring: restoring(&tx).await?,
            hypertables: hypertables(&tx).await?,
        }),
        None => None,
    };
    let hyper: Vec<&str> = timescaledb
        .iter()
        .flat_map(|t| t.hypertables.iter().map(|h| h.name.as_str()))
        .collect();
    let tables = tables(&tx, opts.row_counts, &hyper).await?;
    let constraints = constraints(&tx).await?;
    let indexes = indexes(&tx).await?;
    let sequences = sequences(&tx).await?;
    tx.commit().await.map_err(q("ending the transaction"))?;
    let telemetry = match &opts.telemetry {
        Some(spec) => Some(telemetry(client, spec).await?),
        None => None,
    };
    Ok(Snapshot {
        format: FORMAT.to_string(),
        version: VERSION,
        taken_at,
        elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        server_version: head.get(0),
        database: head.get(1),
        row_counts: opts.row_counts.as_str().to_string(),
        tables,
        constraints,
        indexes,
        sequences,
        extensions,
        timescaledb,
        telemetry,
    })
}

/// `ANALYZE` of every user table, so `reltuples` is a fresh estimate.
async fn analyze(client: &Client) -> Result<(), ValidateError> {
    let sql = format!(
        "SELECT n.nspname::text, c.relname::text FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('r', 'p') AND {USER_TABLE} ORDER BY 1, 2"
    );
    let rows = client
        .query(&sql, &[])
        .await
        .map_err(q("listing the tables to analyze"))?;
    for r in rows {
        let (name, quoted) = names(r.get(0), r.get(1));
        client
            .batch_execute(&format!("ANALYZE {quoted}"))
            .await
            .map_err(q(format!("ANALYZE {name}")))?;
    }
    Ok(())
}

async fn extensions(tx: &Transaction<'_>) -> Result<Vec<Extension>, ValidateError> {
    let rows = tx
        .query(
            "SELECT extname::text, extversion FROM pg_extension ORDER BY 1",
            &[],
        )
        .await
        .map_err(q("listing extensions"))?;
    Ok(rows
        .iter()
        .map(|r| Extension {
            name: r.get(0),
            version: r.get(1),
        })
        .collect())
}

/// Whether the database is still in TimescaleDB's restore mode (a setting
/// `timescaledb_pre_restore()` puts on the database and `timescaledb_post_restore()` resets).
async fn restoring(tx: &Transaction<'_>) -> Result<bool, ValidateError> {
    let v: Option<String> = tx
        .query_one("SELECT current_setting('timescaledb.restoring', true)", &[])
        .await
        .map_err(q("reading timescaledb.restoring"))?
        .get(0);
    Ok(v.is_some_and(|v| v.eq_ignore_ascii_case("on")))
}

/// TimescaleDB's hypertables and chunk counts. Untested here: TimescaleDB cannot be installed on
/// the test machines; this is the documented `timescaledb_information.hypertables` view (2.x).
async fn hypertables(tx: &Transaction<'_>) -> Result<Vec<Hypertable>, ValidateError> {
    let rows = tx
        .query(
            "SELECT hypertable_schema::text || '.' || hypertable_name::text, num_chunks::int8 \
             FROM timescaledb_information.hypertables ORDER BY 1",
            &[],
        )
        .await
        .map_err(q("listing TimescaleDB hypertables"))?;
    Ok(rows
        .iter()
        .map(|r| Hypertable {
            name: r.get(0),
            chunks: r.get::<_, Option<i64>>(1).unwrap_or(0),
        })
        .collect())
}

async fn tables(
    tx: &Transaction<'_>,
    counts: RowCounts,
    hypertables: &[&str],
) -> Result<Vec<Table>, ValidateError> {
    let sql = format!(
        "SELECT n.nspname::text, c.relname::text, c.reltuples::float8, \
                pg_total_relation_size(c.oid)::int8 \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('r', 'p') AND {USER_TABLE} ORDER BY 1, 2"
    );
    let rows = tx.query(&sql, &[]).await.map_err(q("listing tables"))?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let (name, quoted) = names(r.get(0), r.get(1));
        let reltuples: f64 = r.get(2);
        let estimate = matches!(counts, RowCounts::Estimate { exact_below }
                if reltuples >= 0.0 && reltuples >= exact_below as f64)
            && !hypertables.contains(&name.as_str());
        let rows = if estimate {
            reltuples.round() as i64
        } else {
            tx.query_one(&format!("SELECT count(*) FROM {quoted}"), &[])
                .await
                .map_err(q(format!("counting the rows of {name}")))?
                .get(0)
        };
        out.push(Table {
            name,
            rows,
            rows_exact: !estimate,
            bytes: r.get::<_, Option<i64>>(3).unwrap_or(0),
        });
    }
    Ok(out)
}

/// `pg_get_constraintdef`/`pg_get_indexdef` read the current catalog, not the transaction's
/// snapshot: for an object dropped meanwhile they return NULL, which becomes an empty definition
/// (a difference the check reports) instead of a panic.
fn definition(r: &tokio_postgres::Row, i: usize) -> String {
    r.try_get::<_, Option<String>>(i)
        .ok()
        .flatten()
        .unwrap_or_default()
}

fn constraint_type(c: i8) -> String {
    match c as u8 {
        b'p' => "primary_key".into(),
        b'f' => "foreign_key".into(),
        b'u' => "unique".into(),
        b'c' => "check".into(),
        b'x' => "exclusion".into(),
        b't' => "trigger".into(),
        other => format!("contype_{}", other as char),
    }
}

async fn constraints(tx: &Transaction<'_>) -> Result<Vec<Constraint>, ValidateError> {
    let sql = format!(
        "SELECT n.nspname::text || '.' || c.relname::text, co.conname::text, co.contype, \
                pg_get_constraintdef(co.oid), co.convalidated \
         FROM pg_constraint co JOIN pg_class c ON c.oid = co.conrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('r', 'p') AND {USER_TABLE} ORDER BY 1, 2"
    );
    let rows = tx
        .query(&sql, &[])
        .await
        .map_err(q("listing constraints"))?;
    Ok(rows
        .iter()
        .map(|r| Constraint {
            table: r.get(0),
            name: r.get(1),
            kind: constraint_type(r.get(2)),
            definition: definition(r, 3),
            validated: r.get(4),
        })
        .collect())
}

async fn indexes(tx: &Transaction<'_>) -> Result<Vec<Index>, ValidateError> {
    let sql = format!(
        "SELECT ni.nspname::text || '.' || i.relname::text, n.nspname::text || '.' || c.relname::text, \
                pg_get_indexdef(i.oid), x.indisvalid, x.indisready \
         FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid \
         JOIN pg_namespace ni ON ni.oid = i.relnamespace \
         JOIN pg_class c ON c.oid = x.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('r', 'p') AND {USER_TABLE} ORDER BY 1"
    );
    let rows = tx.query(&sql, &[]).await.map_err(q("listing indexes"))?;
    Ok(rows
        .iter()
        .map(|r| Index {
            name: r.get(0),
            table: r.get(1),
            definition: definition(r, 2),
            valid: r.get(3),
            ready: r.get(4),
        })
        .collect())
}

/// Sequences with the column they feed and that column's maximum, read in the same transaction
/// as the counts. The column is the owner (serial `OWNED BY`: `pg_depend` type `a`; identity: type
/// `i`) or else a column whose default calls the sequence (`DEFAULT nextval('s')` without
/// `OWNED BY`, common in hand-written schemas; the first such column when there are several).
async fn sequences(tx: &Transaction<'_>) -> Result<Vec<Sequence>, ValidateError> {
    let sql = format!(
        "SELECT n.nspname::text, c.relname::text, s.seqincrement, \
                dn.nspname::text, dc.relname::text, a.attname::text, \
                a.atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype) \
         FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         LEFT JOIN LATERAL ( \
           SELECT 0 AS pref, d.refobjid AS rel, d.refobjsubid AS att FROM pg_depend d \
           WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid \
             AND d.refclassid = 'pg_class'::regclass AND d.refobjsubid > 0 \
             AND d.deptype IN ('a', 'i') \
           UNION ALL \
           SELECT 1, ad.adrelid, ad.adnum FROM pg_depend d JOIN pg_attrdef ad ON ad.oid = d.objid \
           WHERE d.classid = 'pg_attrdef'::regclass AND d.refclassid = 'pg_class'::regclass \
             AND d.refobjid = c.oid \
           ORDER BY 1, 2, 3 LIMIT 1 \
         ) o ON true \
         LEFT JOIN pg_class dc ON dc.oid = o.rel \
         LEFT JOIN pg_namespace dn ON dn.oid = dc.relnamespace \
         LEFT JOIN pg_attribute a ON a.attrelid = o.rel AND a.attnum = o.att \
         WHERE {USER_TABLE} ORDER BY 1, 2"
    );
    let rows = tx.query(&sql, &[]).await.map_err(q("listing sequences"))?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let (name, quoted) = names(r.get(0), r.get(1));
        let state = tx
            .query_one(&format!("SELECT last_value, is_called FROM {quoted}"), &[])
            .await
            .map_err(q(format!("reading sequence {name}")))?;
        let owner: Option<(String, String, String, bool)> = match (
            r.get::<_, Option<String>>(3),
            r.get::<_, Option<String>>(4),
            r.get::<_, Option<String>>(5),
        ) {
            (Some(s), Some(t), Some(col)) => Some((s, t, col, r.get(6))),
            _ => None,
        };
        let (column, column_max) = match owner {
            Some((s, t, col, integer)) => {
                let (table, qtable) = names(&s, &t);
                let max = if integer {
                    tx.query_one(
                        &format!("SELECT max({})::int8 FROM {qtable}", quote_ident(&col)),
                        &[],
                    )
                    .await
                    .map_err(q(format!("reading max({col}) of {table}")))?
                    .get(0)
                } else {
                    None
                };
                (Some(format!("{table}.{col}")), max)
            }
            None => (None, None),
        };
        out.push(Sequence {
            name,
            last_value: state.get(0),
            is_called: state.get(1),
            increment: r.get(2),
            column,
            column_max,
        });
    }
    Ok(out)
}

fn ts(t: chrono::DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// The gap report of `spec`, as the snapshot records it.
pub async fn telemetry(
    client: &mut Client,
    spec: &TelemetrySpec,
) -> Result<Telemetry, ValidateError> {
    let (r, _info) = gaps_sql::report(client, &spec.source, spec.window, &spec.expected).await?;
    Ok(Telemetry {
        table: spec.source.table.to_string(),
        time_column: spec.source.time_column.clone(),
        key_column: spec.source.key_column.clone(),
        rpo_seconds: r.window.rpo().num_milliseconds() as f64 / 1000.0,
        since: ts(r.window.since()),
        until: ts(r.window.until()),
        rows: r.rows,
        keys: r.counts.keys().cloned().collect(),
        gaps: r
            .gaps
            .iter()
            .map(|g| TelemetryGap {
                key: g.key.clone(),
                start: ts(g.start),
                end: ts(g.end),
                seconds: g.seconds(),
                kind: g.kind.as_str().to_string(),
            })
            .collect(),
    })
}
