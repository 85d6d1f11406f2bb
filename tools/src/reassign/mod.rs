//! `drkit reassign`: plan partition moves (pure, `generate`), then carry them out on a cluster
//! (`execute`, `verify`, `cancel`, `list`). docs/REASSIGN.md.

use clap::Subcommand;

use crate::output::Outcome;

mod execute;
mod generate;

#[derive(Subcommand, Debug)]
pub enum ReassignCmd {
    /// Plan the fewest replica moves for a decommission, replacement or rebalance.
    Generate(generate::GenerateArgs),
}

pub fn run(cmd: ReassignCmd) -> Outcome {
    match cmd {
        ReassignCmd::Generate(a) => generate::run(a),
    }
}
