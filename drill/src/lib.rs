//! Disaster-recovery drill records, for `drkit drill`.
//!
//! A drill is written down as it happens (or back-filled afterwards) as JSON lines, one event per
//! line, each carrying the SHA-256 of the line before it: an edited, removed or cut line is found
//! by [`chain::verify`], and [`record::append`] refuses to extend a record that fails it. The
//! report ([`measure::measure`]) turns the events into measured RTO per service and RPO per data
//! class and compares them with [`objectives::Objectives`] (MS5's runbook table unless a TOML
//! file says otherwise). The library never prints: [`html::render`] returns the page as a string.
//! Format, hash definition and schemas: docs/DRILL.md.

// Records are files people can edit: a damaged one must be reported, never abort the run.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

pub mod chain;
pub mod event;
pub mod html;
pub mod measure;
pub mod objectives;
pub mod record;

pub use event::{Backup, Event, EventKind};
