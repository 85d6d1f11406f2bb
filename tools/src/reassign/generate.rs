//! `drkit reassign generate`.

use clap::Args;

use crate::output::Outcome;

#[derive(Args, Debug)]
pub struct GenerateArgs {}

pub fn run(_a: GenerateArgs) -> Outcome {
    Outcome::Trouble
}
