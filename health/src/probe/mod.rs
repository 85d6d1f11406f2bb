//! One probe of one check: connect, ask, judge, all within the check's timeout.

mod kafka;
mod postgres;
mod redis;

use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use crate::config::{BodyMatch, Check, Kind};
use crate::state::State;

/// What one probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub state: State,
    pub message: String,
    pub elapsed: Duration,
}

/// Probes `check` once. A failure is CRITICAL; a success slower than `warn_after` is WARNING.
pub async fn probe(check: &Check) -> Probe {
    let start = Instant::now();
    let r = tokio::time::timeout(check.timeout, run(check)).await;
    let elapsed = start.elapsed();
    let (state, message) = match r {
        Err(_) => (
            State::Critical,
            format!("no answer within {} ms", check.timeout.as_millis()),
        ),
        Ok(Err(m)) => (State::Critical, m),
        Ok(Ok(m)) => match check.warn_after {
            Some(w) if elapsed > w => (
                State::Warning,
                format!(
                    "{m}; slow: {} ms > warn_after {} ms",
                    elapsed.as_millis(),
                    w.as_millis()
                ),
            ),
            _ => (State::Ok, m),
        },
    };
    // Servers and drivers may echo a connection string; never let a password through.
    let message = match &check.kind {
        Kind::Kafka { settings, .. } => settings.scrub(&message),
        Kind::Redis {
            password: Some(p), ..
        } if !p.0.is_empty() => message.replace(&p.0, "***"),
        _ => message,
    };
    Probe {
        state,
        message,
        elapsed,
    }
}

async fn run(check: &Check) -> Result<String, String> {
    match &check.kind {
        Kind::Tcp => {
            TcpStream::connect(&check.target)
                .await
                .map_err(|e| format!("connect: {e}"))?;
            Ok("connected".into())
        }
        Kind::Http {
            url,
            expect_status,
            body,
        } => {
            let r = crate::http::request(url, "GET", None).await?;
            if r.status != *expect_status {
                return Err(format!("status {} (expected {expect_status})", r.status));
            }
            let cut = if r.truncated { " (first 1 MiB)" } else { "" };
            let matched = match body {
                None => true,
                Some(BodyMatch::Contains(s)) => contains(&r.body, s.as_bytes()),
                Some(BodyMatch::Regex(re)) => re.is_match(&String::from_utf8_lossy(&r.body)),
            };
            if !matched {
                return Err(match body {
                    Some(BodyMatch::Regex(re)) => {
                        format!("body{cut} does not match /{}/", re.as_str())
                    }
                    Some(BodyMatch::Contains(s)) => format!("body{cut} does not contain {s:?}"),
                    None => format!("body{cut} rejected"),
                });
            }
            Ok(format!("status {}, {} body bytes", r.status, r.body.len()))
        }
        Kind::Postgres { query } => postgres::probe(&check.target, query, check.timeout).await,
        Kind::Redis { password } => redis::probe(&check.target, password.as_ref()).await,
        Kind::Kafka { topic, settings } => {
            kafka::probe(&check.target, topic.as_deref(), settings, check.timeout).await
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}
