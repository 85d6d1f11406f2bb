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
    /// Start (or resume) a plan: rollback file first, throttles, batches, a journal beside the plan.
    Execute(execute::ExecuteArgs),
    /// Check a plan's progress; when done, elect preferred leaders and remove its throttles.
    Verify(execute::PlanArgs),
    /// Cancel a plan's reassignments still in progress and remove its throttles.
    Cancel(execute::PlanArgs),
    /// The reassignments in progress in the cluster.
    List(execute::ListArgs),
}

pub fn run(cmd: ReassignCmd) -> Outcome {
    match cmd {
        ReassignCmd::Generate(a) => generate::run(a),
        ReassignCmd::Execute(a) => execute::execute(a),
        ReassignCmd::Verify(a) => execute::verify(a),
        ReassignCmd::Cancel(a) => execute::cancel(a),
        ReassignCmd::List(a) => execute::list(a),
    }
}
