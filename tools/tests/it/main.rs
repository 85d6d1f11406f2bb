//! drkit's integration tests, compiled as one binary (shared helpers, one link).

mod audit;
mod backup;
mod cli;
mod corruption;
mod gaps;
mod health;
mod kafka;
mod live;
mod offsets;
mod real;
mod replay;
mod util;
