//! `drkit`: the binary is flags and glue; the work happens in the library crates.

use std::process::ExitCode;

use clap::Parser;

mod audit;
mod backup;
mod cli;
mod drill;
mod gaps;
mod health;
mod offsets;
mod output;
mod progress;
mod reassign;
mod replay;
mod segments;
mod topics;
mod validate;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    if let Some(jobs) = args.jobs {
        // Validated by clap (>= 1); building the global pool can only fail if it exists already.
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(jobs)
            .build_global();
    }
    let code = match args.command {
        cli::Command::Segments(cmd) => segments::run(cmd),
        cli::Command::Gaps(a) => gaps::run(*a),
        cli::Command::Replay(args) => replay::run(*args),
        cli::Command::Backup(cmd) => backup::run(cmd),
        cli::Command::Offsets(cmd) => offsets::run(cmd),
        cli::Command::Audit(cmd) => audit::run(cmd),
        cli::Command::Topics(cmd) => topics::run(cmd),
        cli::Command::Reassign(cmd) => reassign::run(cmd),
        cli::Command::Drill(cmd) => drill::run(cmd),
        cli::Command::Validate(a) => validate::run(*a),
        cli::Command::Health(a) => health::run(*a),
    };
    ExitCode::from(code.code())
}
