//! `drkit offsets`: describe, reset and restore consumer-group offsets (docs/OFFSETS.md).

use clap::Subcommand;

use crate::output::Outcome;

#[derive(Subcommand, Debug)]
pub enum OffsetsCmd {}

pub fn run(cmd: OffsetsCmd) -> Outcome {
    match cmd {}
}
