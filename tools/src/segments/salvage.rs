//! (salvage: being written)
use crate::cli::SalvageArgs; use crate::output::Outcome;
pub fn run(_a: SalvageArgs) -> Outcome { Outcome::Trouble }
