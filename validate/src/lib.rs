//! Post-restore validation: `drkit validate snapshot` and `drkit validate`.
//!
//! Before a restore (or from the last good copy), [`collect::snapshot`] records what a database
//! holds: row counts per table, constraints, indexes, sequences with their columns' maximum,
//! extensions, TimescaleDB hypertables and, optionally, the telemetry gap report of
//! [`replay::gaps_sql`]. After the restore the same collection runs on the restored database and
//! [`check::compare`] turns both into one verdict per object ([`Check`]): pass, warn or fail.
//! Checks that need no baseline (a sequence behind its column, a `NOT VALID` constraint, an
//! invalid index, telemetry gaps) run on the live snapshot alone. The library never prints.
//! Snapshot document and check kinds: docs/VALIDATE.md.

// Catalog rows and snapshot files are foreign input: a surprising one is reported, never a panic.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

pub mod check;
pub mod collect;
pub mod snapshot;

pub use check::{compare, gaps_unavailable, Check, Kind, Status, Tolerance};
pub use collect::{snapshot, Options, RowCounts, TelemetrySpec, ValidateError};
pub use snapshot::Snapshot;
