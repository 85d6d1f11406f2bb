//! `drkit topics`: partition state as the cluster reports it (docs/TOPICS.md).

use clap::Subcommand;

use crate::output::Outcome;

#[derive(Subcommand, Debug)]
pub enum TopicsCmd {}

pub fn run(cmd: TopicsCmd) -> Outcome {
    match cmd {}
}
