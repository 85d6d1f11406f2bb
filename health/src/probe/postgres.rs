//! PostgreSQL: connect (libpq's sslmode and TLS parameters, through drkit's one connect) and run
//! the check's query.

use std::time::Duration;

use replay::pgconn::error_chain;
use tokio_postgres::SimpleQueryMessage;

pub async fn probe(dsn: &str, query: &str, timeout: Duration) -> Result<String, String> {
    let client = tokio::time::timeout(timeout, replay::pgconn::connect(dsn))
        .await
        .map_err(|_| format!("no connection within {timeout:?}"))?
        .map_err(|e| e.to_string())?;
    let r = client
        .simple_query(query)
        .await
        .map_err(|e| error_chain(&e));
    // Dropping the client ends its connection task.
    drop(client);
    let rows = r?
        .iter()
        .filter(|m| matches!(m, SimpleQueryMessage::Row(_)))
        .count();
    Ok(format!("query returned {rows} row(s)"))
}
