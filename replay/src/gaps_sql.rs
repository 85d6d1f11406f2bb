//! The gap report computed inside PostgreSQL: the table never crosses the network.
//!
//! One statement in a read-only `REPEATABLE READ` transaction, in three steps:
//! 1. buckets: per key and time bucket, the first and last timestamp and the row count. The bucket
//!    width is the largest divisor of an hour that is not longer than the RPO (5 minutes for the
//!    MS5 telemetry RPO), so no interval inside one bucket can exceed the RPO and every gap lies
//!    between two consecutive non-empty buckets of a key; buckets nest in hours, so they add up
//!    to the hourly counts. `date_bin`, or `time_bucket` when TimescaleDB is installed. This is a
//!    parallel scan and hash aggregate: 5 million rows become 100 keys × 167 buckets;
//! 2. gaps: `lag(last)`/`lead(first)` over `(PARTITION BY key ORDER BY bucket)` on those buckets.
//!    Exact, the same result as `lag(time)` over every row, without a window over every row (which
//!    took 6.5 s on 5 million rows against the 2 s target; see docs/PERFORMANCE.md). Only the
//!    buckets next to a gap (and each key's first and last) come back to the client, which turns
//!    them into [`Gap`]s with the rules of [`crate::gaps::Detector`];
//! 3. hourly counts: every hour of the window (`generate_series`) crossed with every observed or
//!    expected key, so empty hours show as 0 instead of being missing (the runbook query's blind
//!    spot).
//!
//! The window bounds are compared against the raw column, so an index on `(key, time)` or `time`
//! serves narrow windows; wide windows are a sequential scan, which is faster there.
//! `timestamp without time zone` columns are read as UTC, whatever the session's time zone (the
//! transaction sets UTC so hours are UTC hours). Table, column and schema names are always quoted
//! identifiers; values are always bind parameters.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use tokio_postgres::Client;

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
    #[error("cannot connect to {url}: {source}")]
    Connect {
        url: String,
        source: crate::pgconn::ConnectError,
    },
    #[error("invalid identifier {0:?} (empty or containing NUL)")]
    BadIdentifier(String),
    #[error("table {0} does not exist")]
    TableMissing(String),
    #[error("table {table} has no column {column:?}")]
    ColumnMissing { table: String, column: String },
    #[error("column {column:?} is {found}; the time column must be timestamptz or timestamp")]
    TimeColumnType { column: String, found: String },
    #[error("{what}: {}", crate::pgconn::error_chain(.source))]
    Query {
        what: &'static str,
        source: tokio_postgres::Error,
    },
}

fn q(what: &'static str) -> impl FnOnce(tokio_postgres::Error) -> GapsSqlError {
    move |source| GapsSqlError::Query { what, source }
}

/// Connects with libpq's TLS parameters ([`crate::pgconn`]); the connection task runs on the
/// current tokio runtime.
pub async fn connect(url: &str) -> Result<Client, GapsSqlError> {
    crate::pgconn::connect(url)
        .await
        .map_err(|source| GapsSqlError::Connect {
            url: redact_url(url),
            source,
        })
}

/// The RPO and the bucket width, bound as microseconds.
const RPO: &str = "($3::int8 * interval '1 microsecond')";
const STRIDE: &str = "($5::int8 * interval '1 microsecond')";

/// The largest divisor of an hour not longer than the RPO (at least 1 µs, at most an hour).
pub fn bucket_width_us(rpo_us: i64) -> i64 {
    const HOUR_US: i64 = 3_600_000_000;
    if rpo_us >= HOUR_US {
        return HOUR_US;
    }
    // HOUR_US = 2^10 · 3^2 · 5^8: walk its divisors from the top.
    let mut best = 1;
    let mut d = 1;
    while d * d <= HOUR_US {
        if HOUR_US % d == 0 {
            for c in [d, HOUR_US / d] {
                if c <= rpo_us && c > best {
                    best = c;
                }
            }
        }
        d += 1;
    }
    best
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
    let stride_us = bucket_width_us(rpo_us);
    // JIT compilation costs a quarter of a second and saves nothing on these plans.
    tx.batch_execute("SET LOCAL jit = off")
        .await
        .map_err(q("turning JIT off"))?;

    let bin = match timescaledb {
        Some(_) => format!("time_bucket({STRIDE}, {t}, date_trunc('hour', {lo}))"),
        None => format!("date_bin({STRIDE}, {t}, date_trunc('hour', {lo}))"),
    };
    let sql = format!(
        "WITH b AS MATERIALIZED ( \
           SELECT {k} AS k, {bin} AS bk, min({t}) AS lo, max({t}) AS hi, count(*) AS n \
           FROM {table} WHERE {t} >= {lo} AND {t} < {hi} GROUP BY 1, 2 \
         ), g AS ( \
           SELECT k, lo, hi, lag(hi) OVER w AS prev, lead(lo) OVER w AS next \
           FROM b WINDOW w AS (PARTITION BY k ORDER BY bk) \
         ), c AS ( \
           SELECT k::text AS k, date_trunc('hour', bk) AS h, sum(n)::int8 AS n FROM b GROUP BY 1, 2 \
         ), keys AS (SELECT k FROM c UNION SELECT unnest($4::text[])), \
         hours AS (SELECT generate_series(date_trunc('hour', {lo}), {hi} - interval '1 microsecond', \
                   interval '1 hour') AS h) \
         SELECT 1::int4, k::text, {prev}, {cur_lo}, {cur_hi}, {next}, NULL::int8 FROM g \
         WHERE lo - coalesce(prev, {lo}) > {RPO} OR (next IS NULL AND {hi} - hi > {RPO}) \
         UNION ALL \
         SELECT 2, keys.k, {hour}, NULL, NULL, NULL, coalesce(c.n, 0) \
         FROM keys CROSS JOIN hours LEFT JOIN c ON c.k IS NOT DISTINCT FROM keys.k AND c.h = hours.h",
        prev = tz("prev"),
        cur_lo = tz("lo"),
        cur_hi = tz("hi"),
        next = tz("next"),
        hour = tz("hours.h"),
    );
    let rows = tx
        .query(&sql, &[&since, &until, &rpo_us, &expected, &stride_us])
        .await
        .map_err(q("computing gaps and hourly counts"))?;
    tx.commit().await.map_err(q("ending the transaction"))?;

    let mut gaps = Vec::new();
    let mut count_rows = Vec::new();
    for r in &rows {
        let what: i32 = r.get(0);
        let key: Option<String> = r.get(1);
        let key = key.unwrap_or_else(|| "<null>".to_string());
        if what == 2 {
            let h: Option<DateTime<Utc>> = r.get(2);
            let n: Option<i64> = r.get(6);
            if let Some(h) = h {
                count_rows.push((key, h, n.unwrap_or(0).max(0) as u64));
            }
            continue;
        }
        let prev: Option<DateTime<Utc>> = r.get(2);
        let (Some(lo), Some(hi)) = (
            r.get::<_, Option<DateTime<Utc>>>(3),
            r.get::<_, Option<DateTime<Utc>>>(4),
        ) else {
            continue;
        };
        let next: Option<DateTime<Utc>> = r.get(5);
        let (start, kind) = match prev {
            Some(p) => (p, GapKind::Between),
            None => (since, GapKind::WindowStart),
        };
        if lo - start > window.rpo() {
            gaps.push(Gap {
                key: key.clone(),
                start,
                end: lo,
                kind,
            });
        }
        if next.is_none() && until - hi > window.rpo() {
            gaps.push(Gap {
                key,
                start: hi,
                end: until,
                kind: GapKind::WindowEnd,
            });
        }
    }

    let hours = window.hours();
    let mut counts: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut total = 0u64;
    for (key, h, n) in count_rows {
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
    fn bucket_widths() {
        let m = 60_000_000;
        assert_eq!(bucket_width_us(5 * m), 5 * m);
        assert_eq!(bucket_width_us(7 * m), 400_000_000);
        assert_eq!(bucket_width_us(90 * m), 60 * m);
        assert_eq!(bucket_width_us(1_000_001), 1_000_000);
        assert_eq!(bucket_width_us(1), 1);
        for rpo in [1, 7, 999, 1_234_567, 5 * m + 1, 59 * m] {
            let w = bucket_width_us(rpo);
            assert!(w <= rpo && 3_600_000_000 % w == 0, "{rpo} -> {w}");
        }
    }

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
