//! Telemetry back into PostgreSQL/TimescaleDB after a restore, exactly once, and the RPO gap
//! report that proves (or disproves) the 5-minute telemetry objective per asset.
//!
//! Modules are added by the replay and gaps work; this crate never prints (the `drkit` binary
//! renders its events).

// Foreign bytes and database replies must never abort a replay (as in segment-reader): no
// unwrap, expect, panic or unchecked indexing outside tests.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

pub mod encode_pool;
pub mod gaps;
pub mod gaps_kafka;
pub mod gaps_sql;
pub mod json_scan;
#[cfg(feature = "kafka")]
pub mod kafka;

pub mod mapping;
pub mod pgconn;
pub mod pgcopy;
pub mod project;
pub mod row_gaps;
pub mod sink;
pub mod source;
pub mod tls;
