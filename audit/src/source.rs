//! Where chains are read from: a PostgreSQL table in key order, or a JSON-lines file in line
//! order. Both stream: the table through a cursor (portal) fetched in batches, the file line by
//! line, so a chain of any length verifies in constant memory.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::Arc;

use futures_util::StreamExt;
use replay::gaps_sql::{self, quote_ident, GapsSqlError, TableName};
use serde_json::{Map, Value};

use crate::chain::{Break, Verifier};
use crate::entry::Entry;
use crate::pgrows::{self, BadField, Decode};

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
            Ok(entry) => v
                .push(entry.into(), Some(n))
                .into_iter()
                .for_each(&mut *on_break),
            Err(e) => on_break(v.malformed(
                Some(n),
                format!("{}: line {n} is not a JSON object: {e}", path.display()),
            )),
        }
    }
}

/// Feeds every row of `table` to `v` as the object `row_to_json` would give (columns in table
/// order), ordered by `key`. Times come out in UTC.
///
/// The rows come as one `COPY ... TO STDOUT (FORMAT binary)` stream: the server keeps sending
/// while the client hashes (no fetch round trips), TCP backpressure keeps memory constant, and
/// the common column types travel in binary and become JSON here ([`crate::pgrows`]), which
/// costs the server a third of building the JSON itself.
pub async fn read_table(
    url: &str,
    table: &str,
    key: &str,
    v: &mut Verifier,
    on_break: &mut dyn FnMut(Break),
) -> Result<(), SourceError> {
    stream_table(url, table, key, &mut |n, row| match row {
        Ok(entry) => v.push(entry, None).into_iter().for_each(&mut *on_break),
        Err(e) => on_break(v.malformed(None, format!("row {n}: {e}"))),
    })
    .await
}

/// Every row of `table` in `key` order, as `row_to_json` would render it (or why a field could
/// not be decoded), numbered from 1.
pub async fn stream_table(
    url: &str,
    table: &str,
    key: &str,
    each: &mut dyn FnMut(u64, Result<Entry, String>),
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
    let columns: Vec<(Arc<str>, Decode)> = tx
        .query(
            "SELECT attname::text, atttypid::regtype::text FROM pg_attribute \
             WHERE attrelid = $1::text::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
            &[&table.quoted()],
        )
        .await
        .map_err(query("reading the audit table's columns"))?
        .iter()
        .map(|r| {
            let (name, ty): (String, String) = (r.get(0), r.get(1));
            (Arc::from(name), Decode::for_type(&ty))
        })
        .collect();
    let select: Vec<String> = columns
        .iter()
        .map(|(name, d)| {
            if d.server_renders() {
                format!("to_json(t.{})::text", quote_ident(name))
            } else {
                format!("t.{}", quote_ident(name))
            }
        })
        .collect();
    let sql = format!(
        "COPY (SELECT {} FROM {} t ORDER BY t.{}) TO STDOUT (FORMAT binary)",
        select.join(", "),
        table.quoted(),
        quote_ident(key)
    );
    let stream = tx
        .copy_out(&sql)
        .await
        .map_err(query("reading the audit table"))?;
    let mut stream = std::pin::pin!(stream);
    let mut rows = CopyRows::new(columns.len());
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(query("reading the audit table"))?;
        rows.feed(&chunk, &mut |n, fields| {
            each(n, pgrows::row(&columns, fields).map_err(|BadField(e)| e))
        })
        .map_err(SourceError::Db)?;
    }
    rows.finish().map_err(SourceError::Db)?;
    tx.commit()
        .await
        .map_err(query("ending the read-only transaction"))?;
    Ok(())
}

/// A parser of PostgreSQL's binary COPY stream, fed chunk by chunk:
///
/// ```text
/// header:  "PGCOPY\\n\\xff\\r\\n\\0"  int32 flags  int32 extension length  extension bytes
/// row:     int16 field count, then per field: int32 length (-1 = NULL), bytes
/// trailer: int16 -1
/// ```
/// Called with each row's number and fields (`None` = NULL).
type RowFn<'a> = dyn FnMut(u64, &[Option<&[u8]>]) + 'a;

struct CopyRows {
    columns: usize,
    buf: Vec<u8>,
    header_done: bool,
    ended: bool,
    rows: u64,
    spans: Vec<Option<(usize, usize)>>,
}

const COPY_SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

impl CopyRows {
    fn new(columns: usize) -> CopyRows {
        CopyRows {
            columns,
            buf: vec![],
            header_done: false,
            ended: false,
            rows: 0,
            spans: Vec::with_capacity(columns),
        }
    }

    fn feed(&mut self, chunk: &[u8], each: &mut RowFn<'_>) -> Result<(), String> {
        self.buf.extend_from_slice(chunk);
        let mut pos = 0;
        let buf = &self.buf;
        let be32 = |at: usize| -> Option<i32> {
            Some(i32::from_be_bytes(buf.get(at..at + 4)?.try_into().ok()?))
        };
        if !self.header_done {
            let Some(ext) = be32(COPY_SIGNATURE.len() + 4) else {
                return Ok(());
            };
            if buf.get(..COPY_SIGNATURE.len()) != Some(COPY_SIGNATURE) {
                return Err("the server's COPY stream has no binary COPY signature".into());
            }
            let ext = usize::try_from(ext).map_err(|_| "bad COPY header extension length")?;
            let start = COPY_SIGNATURE.len() + 8 + ext;
            if buf.len() < start {
                return Ok(());
            }
            pos = start;
            self.header_done = true;
        }
        let mut fields: Vec<Option<&[u8]>> = Vec::with_capacity(self.columns);
        'rows: while !self.ended {
            let Some(&[hi, lo]) = buf.get(pos..pos + 2) else {
                break;
            };
            let count = i16::from_be_bytes([hi, lo]);
            if count == -1 {
                self.ended = true;
                pos += 2;
                break;
            }
            if usize::try_from(count).ok() != Some(self.columns) {
                return Err(format!(
                    "COPY row with {count} fields, expected {}",
                    self.columns
                ));
            }
            self.spans.clear();
            let mut at = pos + 2;
            for _ in 0..self.columns {
                let Some(len) = be32(at) else {
                    break 'rows;
                };
                at += 4;
                if len < 0 {
                    self.spans.push(None);
                } else {
                    let end = at + len as usize;
                    if end > buf.len() {
                        break 'rows;
                    }
                    self.spans.push(Some((at, end)));
                    at = end;
                }
            }
            fields.clear();
            fields.extend(
                self.spans
                    .iter()
                    .map(|s| s.and_then(|(a, b)| buf.get(a..b))),
            );
            let n = self.rows + 1;
            each(n, &fields);
            self.rows = n;
            pos = at;
        }
        drop(fields);
        self.buf.drain(..pos);
        Ok(())
    }

    fn finish(&self) -> Result<(), String> {
        if self.ended && self.buf.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "the COPY stream ended early after {} rows",
                self.rows
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_rows_split_anywhere() {
        let mut s = COPY_SIGNATURE.to_vec();
        s.extend(0i32.to_be_bytes());
        s.extend(0i32.to_be_bytes());
        for t in ["{\"a\":1}", "{}", "{\"b\":\"xyz\"}"] {
            s.extend(2i16.to_be_bytes());
            s.extend((t.len() as i32).to_be_bytes());
            s.extend(t.as_bytes());
            s.extend((-1i32).to_be_bytes());
        }
        s.extend((-1i16).to_be_bytes());
        for split in 0..s.len() {
            let mut r = CopyRows::new(2);
            let mut got = vec![];
            let (a, b) = s.split_at(split);
            let mut each =
                |n, f: &[Option<&[u8]>]| got.push((n, f[0].unwrap().to_vec(), f[1].is_none()));
            r.feed(a, &mut each).unwrap();
            r.feed(b, &mut each).unwrap();
            r.finish().unwrap();
            assert_eq!(got.len(), 3, "split at {split}");
            assert_eq!(got[2], (3, b"{\"b\":\"xyz\"}".to_vec(), true));
        }
        let mut r = CopyRows::new(2);
        r.feed(&s[..s.len() - 5], &mut |_, _| {}).unwrap();
        assert!(r.finish().is_err());
    }
}
