//! Verifiers for backup files, for `drkit backup verify`.
//!
//! Each file is read once, front to back, through a reader that feeds SHA-256 as it goes; the
//! format checker (pg_dump custom archive, Redis RDB or AOF) reads from that same stream, and what
//! it leaves unread is drained through the hash. Memory stays constant whatever the file size.
//! Every problem becomes a [`Finding`] with the file, the byte position and, for pg_dump archives,
//! the table of contents entry it hit. The library never prints. Formats: docs/BACKUP.md.

// Backups are foreign bytes: a damaged one must be reported, never abort the run.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

pub mod age;
pub mod basebackup;
pub mod crc64;
pub mod finding;
pub mod pgdump;
pub mod pitr;
pub mod redis;
pub mod sidecar;
pub mod stream;
pub mod verify;
pub mod wal;

pub use finding::{Finding, Kind, Severity};
