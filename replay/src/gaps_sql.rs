//! The gap report computed inside PostgreSQL: the table never crosses the network.
//!
//! Two queries in one read-only `REPEATABLE READ` transaction (so both see the same snapshot):
//! 1. gaps: `lag()`/`lead()` over `(PARTITION BY key ORDER BY time)`. With an index on
//!    `(key, time)` the planner feeds the window from an index scan in that order, without a sort;
//!    only the rows next to a gap (and each key's first and last row) come back to the client,
//!    which turns them into [`Gap`]s with the same rules as [`crate::gaps::Detector`];
//! 2. hourly counts per key, every hour of the window (`generate_series`) crossed with every
//!    observed or expected key, so empty hours show as 0 instead of being missing (the runbook
//!    query's blind spot). `time_bucket` when TimescaleDB is installed, `date_trunc` otherwise.
//!
//! `timestamp without time zone` columns are read as UTC, whatever the session's time zone (the
//! session is set to UTC so `date_trunc` buckets are UTC hours too). Table, column and schema names
//! are always quoted identifiers; values are always bind parameters.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use tokio_postgres::{Client, NoTls};

use crate::gaps::{Gap, GapKind, Report, Window};

/// `schema.table` or `table`, each part quoted when used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableName {
    pub schema: Option<String>,
    pub name: String,
}

impl TableName {
    /// Splits at the first dot: `factory_telemetry.metric_hist` → schema and table.
    pub fn parse(s: &str) -> Result<TableName, GapsSqlError> {
        let (schema, name) = match s.split_once('.') {
            Some((a, b)) => (Some(a.to_string()), b.to_string()),
            None => (None, s.to_string()),
        };
        let t = TableName { schema, name };
        for part in t.schema.iter().chain(std::iter::once(&t.name)) {
            check_ident(part)?;
        }
        Ok(t)
    }
    /// The quoted, qualified name for SQL text.
    pub fn quoted(&self) -> String {
        match &self.schema {
            Some(s) => format!("{}.{}", quote_ident(s), quote_ident(&self.name)),
            None => quote_ident(&self.name),
        }
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.schema {
            Some(s) => write!(f, "{s}.{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

fn check_ident(s: &str) -> Result<(), GapsSqlError> {
    if s.is_empty() || s.contains('\0') {
        return Err(GapsSqlError::BadIdentifier(s.to_string()));
    }
    Ok(())
}

/// `"name"`, with embedded quotes doubled: any string is a safe identifier this way.
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// The URL with its password replaced by `***` (URL form and `password=` key-value form), for
/// messages and logs.
pub fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let (auth_end, _) = rest
            .char_indices()
            .find(|(_, c)| *c == '/' || *c == '?')
            .unwrap_or((rest.len(), ' '));
        let (authority, tail) = rest.split_at(auth_end);
        let authority = match authority.rsplit_once('@') {
            Some((userinfo, host)) => match userinfo.split_once(':') {
                Some((user, _)) => format!("{user}:***@{host}"),
                None => authority.to_string(),
            },
            None => authority.to_string(),
        };
        let tail = redact_query_password(tail);
        return format!("{scheme}://{authority}{tail}");
    }
    // Key-value form: host=... password=secret user=...
    url.split(' ')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
            _ => kv.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn redact_query_password(tail: &str) -> String {
    let Some((path, query)) = tail.split_once('?') else {
        return tail.to_string();
    };
    let q: Vec<String> = query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
            _ => kv.to_string(),
        })
        .collect();
    format!("{path}?{}", q.join("&"))
}

/// What went wrong, with the names involved (never the password).
#[derive(Debug, thiserror::Error)]
pub enum GapsSqlError {
    #[error("cannot connect to {url}: {}", chain(.source))]
    Connect {
        url: String,
        source: tokio_postgres::Error,
    },
    #[error("invalid identifier {0:?} (empty or containing NUL)")]
    BadIdentifier(String),
    #[error("table {0} does not exist")]
    TableMissing(String),
    #[error("table {table} has no column {column:?}")]
    ColumnMissing { table: String, column: String },
    #[error("column {column:?} is {found}; the time column must be timestamptz or timestamp")]
    TimeColumnType { column: String, found: String },
    #[error("{what}: {}", chain(.source))]
    Query {
        what: &'static str,
        source: tokio_postgres::Error,
    },
}

/// The error and its causes: tokio-postgres's own message alone says "error connecting to server"
/// or "db error" without the reason.
fn chain(e: &tokio_postgres::Error) -> String {
    let mut s = e.to_string();
    let mut cur = std::error::Error::source(e);
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

fn q(what: &'static str) -> impl FnOnce(tokio_postgres::Error) -> GapsSqlError {
    move |source| GapsSqlError::Query { what, source }
}

/// Connects without TLS; the connection task runs on the current tokio runtime.
pub async fn connect(url: &str) -> Result<Client, GapsSqlError> {
    let (client, conn) = tokio_postgres::connect(url, NoTls)
        .await
        .map_err(|source| GapsSqlError::Connect {
            url: redact_url(url),
            source,
        })?;
    tokio::spawn(async move {
        // A connection error surfaces on the client's next query; nothing to do here.
        let _ = conn.await;
    });
    Ok(client)
}

fn as_is(e: &str) -> String {
    e.to_string()
}

/// A `timestamp without time zone` expression read as UTC, as a `timestamptz`.
fn utc_of_naive(e: &str) -> String {
    format!("({e} AT TIME ZONE 'UTC')")
}

/// Where the events are: a table, its time column and its key column.
#[derive(Debug, Clone)]
pub struct Source {
    pub table: TableName,
    pub time_column: String,
    pub key_column: String,
}

/// How the time column is typed (the SQL differs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeType {
    Timestamptz,
    /// `timestamp without time zone`, read as UTC.
    Timestamp,
}

/// Facts about the database the report was made on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbInfo {
    /// TimescaleDB's version when the extension is installed (then `time_bucket` is used).
    pub timescaledb: Option<String>,
    pub time_type: TimeType,
}

async fn column_type(
    client: &Client,
    table: &TableName,
    column: &str,
) -> Result<String, GapsSqlError> {
    let rel = client
        .query_opt("SELECT to_regclass($1)::oid::int8", &[&table.quoted()])
        .await
        .map_err(q("looking up the table"))?
        .and_then(|r| r.get::<_, Option<i64>>(0));
    let Some(oid) = rel else {
        return Err(GapsSqlError::TableMissing(table.to_string()));
    };
    let row = client
        .query_opt(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute \
             WHERE attrelid = $1::int8::oid AND attname = $2 AND attnum > 0 AND NOT attisdropped",
            &[&oid, &column],
        )
        .await
        .map_err(q("looking up the column"))?;
    match row {
        Some(r) => Ok(r.get(0)),
        None => Err(GapsSqlError::ColumnMissing {
            table: table.to_string(),
            column: column.to_string(),
        }),
    }
}

/// Distinct values of `table.column`, as text: the keys a report expects to see.
pub async fn expected_keys_from_table(
    client: &Client,
    table: &TableName,
    column: &str,
) -> Result<Vec<String>, GapsSqlError> {
    check_ident(column)?;
    column_type(client, table, column).await?;
    let sql = format!(
        "SELECT DISTINCT {c}::text FROM {t} WHERE {c} IS NOT NULL",
        c = quote_ident(column),
        t = table.quoted()
    );
    let rows = client
        .query(&sql, &[])
        .await
        .map_err(q("reading the expected keys"))?;
    Ok(rows.iter().map(|r| r.get::<_, String>(0)).collect())
}

/// The gap report of `src` over `window`, computed in the database. `expected` keys that have no
/// row in the window are reported as silent.
pub async fn report(
    client: &mut Client,
    src: &Source,
    window: Window,
    expected: &[String],
) -> Result<(Report, DbInfo), GapsSqlError> {
    check_ident(&src.time_column)?;
    check_ident(&src.key_column)?;
    let ty = column_type(client, &src.table, &src.time_column).await?;
    column_type(client, &src.table, &src.key_column).await?;
    let time_type = match ty.as_str() {
        "timestamp with time zone" => TimeType::Timestamptz,
        "timestamp without time zone" => TimeType::Timestamp,
        _ => {
            return Err(GapsSqlError::TimeColumnType {
                column: src.time_column.clone(),
                found: ty,
            })
        }
    };
    let timescaledb: Option<String> = client
        .query_opt(
            "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'",
            &[],
        )
        .await
        .map_err(q("detecting TimescaleDB"))?
        .map(|r| r.get(0));

    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(q("starting a read-only transaction"))?;
    tx.batch_execute("SET LOCAL TIME ZONE 'UTC'")
        .await
        .map_err(q("setting the session time zone"))?;

    let t = quote_ident(&src.time_column);
    let k = quote_ident(&src.key_column);
    let table = src.table.quoted();
    // Bounds in the column's own type, so the index on the raw column applies.
    let (lo, hi, tz): (&str, &str, fn(&str) -> String) = match time_type {
        TimeType::Timestamptz => ("$1::timestamptz", "$2::timestamptz", as_is),
        TimeType::Timestamp => (
            "($1::timestamptz AT TIME ZONE 'UTC')",
            "($2::timestamptz AT TIME ZONE 'UTC')",
            utc_of_naive,
        ),
    };
    let since = window.since();
    let until = window.until();
    let rpo_us = window.rpo().num_microseconds().unwrap_or(i64::MAX);

    let gaps_sql = format!(
        "SELECT k::text, {prev}, {cur}, {next} FROM ( \
           SELECT {k} AS k, {t} AS t, lag({t}) OVER w AS prev, lead({t}) OVER w AS next \
           FROM {table} WHERE {t} >= {lo} AND {t} < {hi} \
           WINDOW w AS (PARTITION BY {k} ORDER BY {t}) \
         ) x \
         WHERE t - coalesce(prev, {lo}) > $3::int8 * interval '1 microsecond' \
            OR (next IS NULL AND {hi} - t > $3::int8 * interval '1 microsecond')",
        prev = tz("prev"),
        cur = tz("t"),
        next = tz("next"),
    );
    let rows = tx
        .query(&gaps_sql, &[&since, &until, &rpo_us])
        .await
        .map_err(q("computing gaps"))?;
    let mut gaps = Vec::new();
    for r in &rows {
        let key: Option<String> = r.get(0);
        let key = key.unwrap_or_else(|| "<null>".to_string());
        let prev: Option<DateTime<Utc>> = r.get(1);
        let cur: DateTime<Utc> = r.get(2);
        let next: Option<DateTime<Utc>> = r.get(3);
        let (start, kind) = match prev {
            Some(p) => (p, GapKind::Between),
            None => (since, GapKind::WindowStart),
        };
        if cur - start > window.rpo() {
            gaps.push(Gap {
                key: key.clone(),
                start,
                end: cur,
                kind,
            });
        }
        if next.is_none() && until - cur > window.rpo() {
            gaps.push(Gap {
                key,
                start: cur,
                end: until,
                kind: GapKind::WindowEnd,
            });
        }
    }

    let bucket = match timescaledb {
        Some(_) => tz(&format!("time_bucket(interval '1 hour', {t})")),
        None => tz(&format!("date_trunc('hour', {t})")),
    };
    let counts_sql = format!(
        "WITH c AS ( \
           SELECT k::text AS k, h, n FROM ( \
             SELECT {k} AS k, {bucket} AS h, count(*) AS n FROM {table} \
             WHERE {t} >= {lo} AND {t} < {hi} GROUP BY 1, 2) c0 \
         ), keys AS (SELECT k FROM c UNION SELECT unnest($3::text[])), \
         hours AS (SELECT generate_series(date_trunc('hour', $1::timestamptz), \
                   $2::timestamptz - interval '1 microsecond', interval '1 hour') AS h) \
         SELECT keys.k, hours.h, coalesce(c.n, 0)::int8 \
         FROM keys CROSS JOIN hours LEFT JOIN c ON c.k IS NOT DISTINCT FROM keys.k AND c.h = hours.h \
         ORDER BY 1, 2"
    );
    let rows = tx
        .query(&counts_sql, &[&since, &until, &expected])
        .await
        .map_err(q("counting rows per key and hour"))?;
    tx.commit().await.map_err(q("ending the transaction"))?;

    let hours = window.hours();
    let mut counts: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut total = 0u64;
    for r in &rows {
        let key: Option<String> = r.get(0);
        let key = key.unwrap_or_else(|| "<null>".to_string());
        let h: DateTime<Utc> = r.get(1);
        let n = r.get::<_, i64>(2).max(0) as u64;
        total += n;
        let slot = counts.entry(key).or_insert_with(|| vec![0; hours.len()]);
        let i = (h - window.first_hour()).num_hours();
        if let Some(c) = usize::try_from(i).ok().and_then(|i| slot.get_mut(i)) {
            *c = n;
        }
    }
    for key in expected {
        let silent = !counts.get(key).is_some_and(|c| c.iter().any(|n| *n > 0));
        if silent && until - since > window.rpo() {
            gaps.push(Gap {
                key: key.clone(),
                start: since,
                end: until,
                kind: GapKind::Silent,
            });
        }
        counts
            .entry(key.clone())
            .or_insert_with(|| vec![0; hours.len()]);
    }
    gaps.sort();
    gaps.dedup();
    Ok((
        Report {
            window,
            gaps,
            hours,
            counts,
            rows: total,
        },
        DbInfo {
            timescaledb,
            time_type,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        let t = TableName::parse("factory_telemetry.metric_hist").unwrap();
        assert_eq!(t.quoted(), "\"factory_telemetry\".\"metric_hist\"");
        assert_eq!(TableName::parse("Tel").unwrap().quoted(), "\"Tel\"");
        assert!(TableName::parse("").is_err());
        assert!(TableName::parse("a.").is_err());
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://u:s3cret@h:5432/db?sslmode=require"),
            "postgres://u:***@h:5432/db?sslmode=require"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            redact_url("postgresql://h/db?user=u&password=x"),
            "postgresql://h/db?user=u&password=***"
        );
        assert_eq!(
            redact_url("host=h password=x user=u"),
            "host=h password=*** user=u"
        );
        assert_eq!(
            redact_url("postgres://u:p@ss@h/db"),
            "postgres://u:***@h/db"
        );
    }
}
