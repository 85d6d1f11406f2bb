//! `drkit backup pitr-config`: checks the archive reaches the target (the wal-verify check), then
//! writes or prints the recovery settings. Refuses (exit 1, nothing written) when recovery is
//! already configured or the archive falls short, unless --force.

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::time::Instant;

use backup::pitr::{self, Settings};
use backup::wal::{self, Options};
use serde_json::json;

use super::wal::{load_backup, micros_text, outcome, parse_target, print_body};
use crate::cli::{BackupPitrConfigArgs, Format, RecoveryAction};
use crate::output::{self, Outcome};

pub fn run(args: BackupPitrConfigArgs) -> Outcome {
    let started = Instant::now();
    let target = match parse_target(&args.target_time) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("drkit: --target-time: {e}");
            return Outcome::Trouble;
        }
    };
    let backup_path = args.backup.clone().or_else(|| {
        args.data_dir
            .as_ref()
            .map(|d| d.join("backup_label"))
            .filter(|p| p.is_file())
    });
    let backup = match backup_path.as_deref().map(load_backup).transpose() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("drkit: --backup: {e}");
            return Outcome::Trouble;
        }
    };
    let archive = match std::path::absolute(&args.archive) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("drkit: {}: {e}", args.archive.display());
            return Outcome::Trouble;
        }
    };
    let report = match wal::verify_archive(
        &archive,
        &Options {
            backup,
            until: Some(target.timestamp_micros()),
        },
    ) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("drkit: {}: {e}", archive.display());
            return Outcome::Trouble;
        }
    };
    let archive_outcome = outcome(&report);
    let present = match pitr::compressions(&archive) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("drkit: {}: {e}", archive.display());
            return Outcome::Trouble;
        }
    };
    let settings = Settings {
        restore_command: pitr::restore_command(&archive, &present),
        target_time: target.format("%Y-%m-%d %H:%M:%S%.6f+00").to_string(),
        action: match args.action {
            RecoveryAction::Pause => "pause",
            RecoveryAction::Promote => "promote",
            RecoveryAction::Shutdown => "shutdown",
        }
        .to_string(),
    };
    let existing = match &args.data_dir {
        Some(d) if !d.join("PG_VERSION").is_file() => {
            eprintln!(
                "drkit: --data-dir {}: not a PostgreSQL data directory (no PG_VERSION)",
                d.display()
            );
            return Outcome::Trouble;
        }
        Some(d) => match pitr::existing(d) {
            Ok(e) => e,
            Err(e) => {
                eprintln!("drkit: {}: {e}", d.display());
                return Outcome::Trouble;
            }
        },
        None => Vec::new(),
    };
    let mut refused: Vec<String> = existing
        .iter()
        .map(|e| match e.line {
            Some(l) => format!("{}:{l}: {}", e.file.display(), e.what),
            None => format!("{}: {}", e.file.display(), e.what),
        })
        .collect();
    if let Some(pid) = args
        .data_dir
        .as_ref()
        .map(|d| d.join("postmaster.pid"))
        .filter(|p| p.exists())
    {
        refused.push(format!(
            "{} exists: a server may be running on this data directory (stop it first)",
            pid.display()
        ));
    }
    if archive_outcome == Outcome::Problems {
        refused.push(format!(
            "the archive does not take recovery to {} (see the findings above)",
            micros_text(target.timestamp_micros())
        ));
    }
    if archive_outcome == Outcome::Trouble {
        refused.push("part of the archive could not be read".to_string());
    }
    let write = args.data_dir.is_some() && (refused.is_empty() || args.force);
    let written = match (&args.data_dir, write) {
        (Some(d), true) => match pitr::write(d, &settings) {
            Ok(w) => Some(w),
            Err(e) => {
                eprintln!("drkit: {}: {e}", d.display());
                return Outcome::Trouble;
            }
        },
        _ => None,
    };
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let r = (|| -> io::Result<()> {
        print_body(&mut out, &archive, &report, args.format, false)?;
        let files: Vec<PathBuf> = written
            .iter()
            .flat_map(|w| [w.signal.clone(), w.conf.clone()])
            .collect();
        match args.format {
            Format::Json => {
                let mut s = serde_json::Map::new();
                for (k, v) in settings.pairs() {
                    s.insert(k.to_string(), v.into());
                }
                output::line(
                    &mut out,
                    &json!({
                        "type": "pitr_config",
                        "data_dir": args.data_dir.as_ref().map(|d| d.display().to_string()),
                        "settings": s,
                        "written": written.is_some(),
                        "files": files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
                        "rollback": written.as_ref().and_then(|w| w.rollback.as_ref()).map(|r| r.display().to_string()),
                        "refused": refused,
                        "forced": args.force && !refused.is_empty() && written.is_some(),
                        "elapsed_ms": started.elapsed().as_millis() as u64,
                    })
                    .to_string(),
                )?;
            }
            Format::Text => {
                for why in &refused {
                    output::line(
                        &mut out,
                        &format!(
                            "{} {why}",
                            if written.is_some() {
                                "forced "
                            } else {
                                "refused"
                            }
                        ),
                    )?;
                }
                match (&args.data_dir, &written) {
                    (None, _) => {
                        output::line(&mut out, "# Append to postgresql.auto.conf and create an empty recovery.signal in the data directory:")?;
                        out.write_all(settings.conf_text().as_bytes())?;
                    }
                    (Some(_), Some(w)) => {
                        output::line(&mut out, &format!("wrote    {}", w.signal.display()))?;
                        output::line(
                            &mut out,
                            &format!(
                                "appended {} to {}",
                                "the recovery settings",
                                w.conf.display()
                            ),
                        )?;
                        if let Some(r) = &w.rollback {
                            output::line(
                                &mut out,
                                &format!("rollback {} (the file before)", r.display()),
                            )?;
                        }
                    }
                    (Some(d), None) => output::line(
                        &mut out,
                        &format!("nothing written to {} (--force writes anyway)", d.display()),
                    )?,
                }
            }
        }
        out.flush()
    })();
    if let Err(e) = r {
        if !output::is_broken_pipe(&e) {
            eprintln!("drkit: cannot write output: {e}");
            return Outcome::Trouble;
        }
    }
    if archive_outcome == Outcome::Trouble {
        Outcome::Trouble
    } else if refused.is_empty() {
        Outcome::Clean
    } else {
        Outcome::Problems
    }
}
