//! drkit's integration tests, compiled as one binary (shared helpers, one link).

mod audit;
mod backup;
mod backup_wal;
mod cli;
mod corruption;
mod drill;
mod gaps;
mod health;
mod kafka;
mod live;
mod offsets;
mod pg_tls;
mod real;
mod reassign;
mod reassign_exec;
mod replay;
mod topics;
mod util;
mod validate;
