//! Where chains are read from: a PostgreSQL table in key order, or a JSON-lines file in line
//! order. Both stream: the table through a cursor (portal) fetched in batches, the file line by
//! line, so a chain of any length verifies in constant memory.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use futures_util::StreamExt;
use replay::gaps_sql::{self, quote_ident, GapsSqlError, TableName};
use serde_json::{Map, Value};

use crate::chain::{Break, Verifier};

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
///
/// The rows come as one `COPY ... TO STDOUT (FORMAT binary)` stream: the server keeps sending
/// while the client hashes (no fetch round trips), TCP backpressure keeps memory constant, and
/// the binary format carries the JSON text without COPY's text escaping.
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
        "COPY (SELECT row_to_json(t)::text FROM {} t ORDER BY t.{}) TO STDOUT (FORMAT binary)",
        table.quoted(),
        quote_ident(key)
    );
    let stream = tx
        .copy_out(&sql)
        .await
        .map_err(query("reading the audit table"))?;
    let mut stream = std::pin::pin!(stream);
    let mut rows = CopyRows::default();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(query("reading the audit table"))?;
        rows.feed(
            &chunk,
            &mut |n, text| match serde_json::from_slice::<Map<String, Value>>(text) {
                Ok(entry) => v.push(entry, None).into_iter().for_each(&mut *on_break),
                Err(e) => on_break(v.malformed(None, format!("row {n}: not a JSON object: {e}"))),
            },
        )
        .map_err(SourceError::Db)?;
    }
    rows.finish().map_err(SourceError::Db)?;
    tx.commit()
        .await
        .map_err(query("ending the read-only transaction"))?;
    Ok(())
}

/// A parser of PostgreSQL's binary COPY stream of one-column rows, fed chunk by chunk:
///
/// ```text
/// header:  "PGCOPY\n\xff\r\n\0"  int32 flags  int32 extension length  extension bytes
/// row:     int16 field count (1)  int32 length (-1 = NULL)  bytes
/// trailer: int16 -1
/// ```
#[derive(Default)]
struct CopyRows {
    buf: Vec<u8>,
    header_done: bool,
    ended: bool,
    rows: u64,
}

const COPY_SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

impl CopyRows {
    fn feed(&mut self, chunk: &[u8], each: &mut dyn FnMut(u64, &[u8])) -> Result<(), String> {
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
        while !self.ended {
            let Some(&[hi, lo]) = buf.get(pos..pos + 2) else {
                break;
            };
            let count = i16::from_be_bytes([hi, lo]);
            if count == -1 {
                self.ended = true;
                pos += 2;
                break;
            }
            if count != 1 {
                return Err(format!("COPY row with {count} fields, expected 1"));
            }
            let Some(len) = be32(pos + 2) else {
                break;
            };
            let body = pos + 6;
            let n = self.rows + 1;
            let text: &[u8] = if len < 0 {
                b"null"
            } else {
                let end = body + len as usize;
                match buf.get(body..end) {
                    Some(t) => t,
                    None => break,
                }
            };
            each(n, text);
            self.rows = n;
            pos = body + len.max(0) as usize;
        }
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
            s.extend(1i16.to_be_bytes());
            s.extend((t.len() as i32).to_be_bytes());
            s.extend(t.as_bytes());
        }
        s.extend((-1i16).to_be_bytes());
        for split in 0..s.len() {
            let mut r = CopyRows::default();
            let mut got = vec![];
            let (a, b) = s.split_at(split);
            r.feed(a, &mut |n, t| got.push((n, t.to_vec()))).unwrap();
            r.feed(b, &mut |n, t| got.push((n, t.to_vec()))).unwrap();
            r.finish().unwrap();
            assert_eq!(got.len(), 3, "split at {split}");
            assert_eq!(got[2], (3, b"{\"b\":\"xyz\"}".to_vec()));
        }
        let mut r = CopyRows::default();
        r.feed(&s[..s.len() - 5], &mut |_, _| {}).unwrap();
        assert!(r.finish().is_err());
    }
}
