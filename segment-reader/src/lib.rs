//! Readers and verifiers for Apache Kafka's on-disk formats: record batches (magic 0, 1 and 2),
//! offset, time and transaction indexes, producer snapshots and the checkpoint files of a log dir.
//!
//! The parsers take byte slices and never panic on foreign bytes; files reach them through
//! [`source`], the one module that maps or reads files. Every check reports [`Finding`]s; the
//! library never prints. The on-disk formats are documented in docs/FORMAT.md.

// Foreign bytes must never abort a scan: no unwrap, expect, panic or unchecked indexing in the
// library (tests may use them).
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

pub mod batch;
pub mod be;
pub mod checkpoint;
pub mod compression;
pub mod consumer_offsets;
pub mod control;
pub mod deep;
pub mod finding;
#[doc(hidden)]
pub mod fuzz;
pub mod index;
pub mod legacy;
pub mod records;
pub mod snapshot;
pub mod timeindex;
pub mod txnindex;

pub use batch::{BatchHeader, BatchInfo, Codec, LegacyMessage};
pub use finding::{Finding, Kind, Severity};
pub mod partition;
pub mod salvage;
pub mod segment;
pub mod source;
pub mod verify;
pub mod walk;
