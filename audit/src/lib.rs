//! Audit hash chains, recomputed: `drkit audit verify` and `drkit audit anchor`.
//!
//! Entries are read in key order (a PostgreSQL table through a cursor, or a JSON-lines file)
//! and each digest is recomputed the way the writer made it ([`scheme`], [`canonical`]); the
//! walk ([`chain`]) keeps a few strings of state, so memory does not grow with the chain. The
//! library never prints. Formats and finding kinds: docs/AUDIT.md.

// Audit rows are foreign input: a damaged one is reported, never a panic.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

pub mod canonical;
pub mod chain;
pub mod entry;
pub mod pgrows;
pub mod scheme;
pub mod source;
