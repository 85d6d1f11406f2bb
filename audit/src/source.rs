//! Where chains are read from: a PostgreSQL table in key order, or a JSON-lines file in line
//! order. Both stream: the table through a cursor (portal) fetched in batches, the file line by
//! line, so a chain of any length verifies in constant memory.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use replay::gaps_sql::{self, quote_ident, GapsSqlError, TableName};
use serde_json::{Map, Value};

use crate::chain::{Break, Verifier};

/// Rows fetched per round trip: large enough to hide latency, small enough to stay constant.
const BATCH: i32 = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{path}: {reason}")]
    Io { path: String, reason: String },
    #[error("{0}")]
    Db(String),
}

/// Feeds every line of a JSON-lines chain file to `v`; breaks go to `on_break` as found.
pub fn read_jsonl(
    path: &Path,
    v: &mut Verifier,
    on_break: &mut dyn FnMut(Break),
) -> Result<(), SourceError> {
    let io = |e: std::io::Error| SourceError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    let mut r = BufReader::with_capacity(1 << 20, File::open(path).map_err(io)?);
    let mut line = String::new();
    let mut n = 0u64;
    loop {
        line.clear();
        if r.read_line(&mut line).map_err(io)? == 0 {
            return Ok(());
        }
        n += 1;
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        match serde_json::from_str::<Map<String, Value>>(text) {
            Ok(entry) => v.push(entry, Some(n)).into_iter().for_each(&mut *on_break),
            Err(e) => on_break(v.malformed(
                Some(n),
                format!("{}: line {n} is not a JSON object: {e}", path.display()),
            )),
        }
    }
}

/// Feeds every row of `table` (each row as `row_to_json`, columns in table order) to `v`,
/// ordered by `key`. Times come out in UTC.
pub async fn read_table(
    url: &str,
    table: &str,
    key: &str,
    v: &mut Verifier,
    on_break: &mut dyn FnMut(Break),
) -> Result<(), SourceError> {
    let db = |e: GapsSqlError| SourceError::Db(e.to_string());
    let query = |what: &'static str| move |source| db(GapsSqlError::Query { what, source });
    let table = TableName::parse(table).map_err(db)?;
    let mut client = gaps_sql::connect(url).await.map_err(db)?;
    client
        .batch_execute("SET TimeZone = 'UTC'")
        .await
        .map_err(query("setting the session time zone"))?;
    let tx = client
        .build_transaction()
        .read_only(true)
        .start()
        .await
        .map_err(query("starting a read-only transaction"))?;
    let sql = format!(
        "SELECT row_to_json(t)::text FROM {} t ORDER BY t.{}",
        table.quoted(),
        quote_ident(key)
    );
    let stmt = tx
        .prepare(&sql)
        .await
        .map_err(query("reading the audit table"))?;
    let portal = tx
        .bind(&stmt, &[])
        .await
        .map_err(query("reading the audit table"))?;
    let mut n = 0u64;
    loop {
        let rows = tx
            .query_portal(&portal, BATCH)
            .await
            .map_err(query("reading the audit table"))?;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            n += 1;
            let text: &str = row
                .try_get(0)
                .map_err(query("reading a row of the audit table"))?;
            match serde_json::from_str::<Map<String, Value>>(text) {
                Ok(entry) => v.push(entry, None).into_iter().for_each(&mut *on_break),
                Err(e) => on_break(v.malformed(None, format!("row {n}: not a JSON object: {e}"))),
            }
        }
    }
    tx.commit()
        .await
        .map_err(query("ending the read-only transaction"))?;
    Ok(())
}
