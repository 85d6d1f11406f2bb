//! drkit's integration tests, compiled as one binary (shared helpers, one link).

mod backup;
mod cli;
mod corruption;
mod gaps;
mod kafka;
mod live;
mod real;
mod reassign;
mod replay;
mod util;
