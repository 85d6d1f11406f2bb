//! drkit's integration tests, compiled as one binary (shared helpers, one link).

mod cli;
mod corruption;
mod real;
mod util;
