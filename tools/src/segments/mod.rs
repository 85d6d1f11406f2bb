//! `drkit segments ...`

mod dump;
mod salvage;
mod verify;

use crate::cli::SegmentsCmd;
use crate::output::Outcome;

pub fn run(cmd: SegmentsCmd) -> Outcome {
    match cmd {
        SegmentsCmd::Verify(a) => verify::run(a),
        SegmentsCmd::Dump(a) => dump::run(a),
        SegmentsCmd::Salvage(a) => salvage::run(a),
    }
}
