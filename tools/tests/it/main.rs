//! drkit's integration tests, compiled as one binary (shared helpers, one link).

mod audit;
mod backup;
mod cli;
mod corruption;
mod gaps;
mod kafka;
mod live;
mod offsets;
mod pg_tls;
mod real;
mod reassign_exec;
mod replay;
mod topics;
mod util;
