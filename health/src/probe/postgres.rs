//! PostgreSQL: connect (without TLS, like the rest of drkit) and run the check's query.

use std::error::Error as _;
use std::str::FromStr;
use std::time::Duration;

use tokio_postgres::{NoTls, SimpleQueryMessage};

pub async fn probe(dsn: &str, query: &str, timeout: Duration) -> Result<String, String> {
    let mut config =
        tokio_postgres::Config::from_str(dsn).map_err(|e| format!("connection string: {e}"))?;
    config.connect_timeout(timeout);
    let (client, conn) = config.connect(NoTls).await.map_err(|e| chain(&e))?;
    let task = tokio::spawn(conn);
    let r = client.simple_query(query).await.map_err(|e| chain(&e));
    drop(client);
    let _ = task.await;
    let rows = r?
        .iter()
        .filter(|m| matches!(m, SimpleQueryMessage::Row(_)))
        .count();
    Ok(format!("query returned {rows} row(s)"))
}

/// tokio-postgres' own message alone is often "error connecting to server": add the causes.
fn chain(e: &tokio_postgres::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cause = c.source();
    }
    s
}
