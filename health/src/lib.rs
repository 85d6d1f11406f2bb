//! Health checks for `drkit health`: the services of a plant (HTTP endpoints, PostgreSQL, Redis,
//! Kafka, plain TCP) probed in dependency order, with Nagios-style verdicts.
//!
//! Runbooks restart services from shell loops, so a verdict and its exit code must agree and must
//! not flap: `--once` probes every check once ([`once`]); `--watch` ([`watch`]) changes a state only
//! after a run of consistent results, runs recovery commands within a budget with exponential
//! backoff, and escalates while a check stays critical. The configuration is validated whole
//! before any probe ([`config`]). The library never prints: results and events are values the
//! binary renders. Formats: docs/HEALTH.md.

// A config file and the bytes of a remote service are input: report, never abort.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

pub mod action;
pub mod config;
pub mod duration;
pub mod http;
pub mod once;
pub mod probe;
pub mod state;
pub mod watch;

pub use config::{Check, Config, ConfigError, Kind};
pub use once::{run_once, CheckResult};
pub use state::State;
pub use watch::{watch, Event, WatchOptions};

/// A future that resolves on SIGTERM or ctrl-c, so a watch run by a service manager ends with
/// its summary. The SIGTERM handler is installed now, not when the future is first polled: a
/// signal that arrives during the first probe round must not kill the process. Call it inside a
/// tokio runtime context (`Runtime::enter`).
pub fn stop_requested() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    async move {
        #[cfg(unix)]
        if let Some(mut term) = term {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}
