//! drkit's integration tests, compiled as one binary (shared helpers, one link).

mod backup;
mod backup_wal;
mod cli;
mod corruption;
mod gaps;
mod kafka;
mod live;
mod real;
mod replay;
mod util;
