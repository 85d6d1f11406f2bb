//! `drkit backup age`: builds the object store (a directory, or S3 from the AWS_* environment and
//! `-X` settings), runs the one listing, prints each class's verdict.

use std::io::{self, BufWriter, Write};
use std::time::Instant;

use backup::age::{self, Class, ClassReport};
use chrono::{SecondsFormat, TimeDelta, Utc};
use replay::gaps::parse_duration;
use replay::kafka::Settings;
use serde_json::json;

use crate::cli::{BackupAgeArgs, Format};
use crate::output::{self, Outcome};

/// `NAME=AGE[:GLOB]`.
fn parse_class(spec: &str) -> Result<Class, String> {
    let (name, rest) = spec
        .split_once('=')
        .ok_or_else(|| format!("--class {spec:?}: expected NAME=AGE[:GLOB]"))?;
    let (age, glob) = match rest.split_once(':') {
        Some((a, g)) => (a, Some(g)),
        None => (rest, None),
    };
    let d = duration(age).map_err(|e| format!("--class {spec:?}: {e}"))?;
    Class::new(name.trim(), d, glob)
}

fn duration(s: &str) -> Result<TimeDelta, String> {
    parse_duration(s)
        .filter(|d| *d > TimeDelta::zero())
        .ok_or_else(|| format!("{s:?} is not a duration such as 5m, 24h, 2d"))
}

fn secs(d: TimeDelta) -> i64 {
    d.num_seconds()
}

fn human(d: TimeDelta) -> String {
    let s = d.num_seconds();
    match s {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m{:02}s", s / 60, s % 60),
        s if s < 172_800 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600),
    }
}

pub fn run(args: BackupAgeArgs) -> Outcome {
    let started = Instant::now();
    let mut settings = Settings::default();
    for kv in &args.settings {
        match Settings::parse_one(kv) {
            Ok(p) => settings.0.push(p),
            Err(e) => {
                eprintln!("drkit: {e}");
                return Outcome::Trouble;
            }
        }
    }
    let mut classes = Vec::new();
    for spec in &args.classes {
        match parse_class(spec) {
            Ok(c) => classes.push(c),
            Err(e) => {
                eprintln!("drkit: {e}");
                return Outcome::Trouble;
            }
        }
    }
    if let Some(m) = &args.max_age {
        match duration(m) {
            Ok(d) => classes.push(Class::default_class(d)),
            Err(e) => {
                eprintln!("drkit: --max-age: {e}");
                return Outcome::Trouble;
            }
        }
    }
    let named = args.classes.len();
    let (store, prefix) = match age::open(&args.location, &settings.0) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("drkit: {}", settings.scrub(&e));
            return Outcome::Trouble;
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("drkit: cannot start the I/O runtime: {e}");
            return Outcome::Trouble;
        }
    };
    let reports = match rt.block_on(age::scan(store.as_ref(), prefix.as_ref(), classes)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!(
                "drkit: {}: {}",
                args.location,
                settings.scrub(&e.to_string())
            );
            return Outcome::Trouble;
        }
    };
    let now = Utc::now();
    // The default class may be empty when named classes took everything; alone, empty means no
    // backups at all.
    let judged: Vec<(&ClassReport, &'static str)> = reports
        .iter()
        .filter(|r| !(r.class.name == age::DEFAULT_CLASS && named > 0 && r.objects == 0))
        .map(|r| {
            let verdict = match (r.newest.is_some(), r.fresh(now)) {
                (false, _) => "empty",
                (true, true) => "ok",
                (true, false) => "too_old",
            };
            (r, verdict)
        })
        .collect();
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let w = (|| -> io::Result<()> {
        for (r, verdict) in &judged {
            let age = r.age(now);
            match args.format {
                Format::Json => output::line(
                    &mut out,
                    &json!({
                        "type": "backup_age",
                        "class": r.class.name,
                        "pattern": r.class.pattern,
                        "max_age_s": secs(r.class.max_age),
                        "objects": r.objects,
                        "newest": r.newest.as_ref().map(|n| n.key.clone()),
                        "modified": r.newest.as_ref().map(|n| n.modified.to_rfc3339_opts(SecondsFormat::Secs, true)),
                        "size": r.newest.as_ref().map(|n| n.size),
                        "age_s": age.map(secs),
                        "verdict": verdict,
                    })
                    .to_string(),
                )?,
                Format::Text => {
                    let detail = match (&r.newest, age) {
                        (Some(n), Some(a)) => format!(
                            "newest {} is {} old (max {}), {} objects",
                            n.key,
                            human(a),
                            human(r.class.max_age),
                            r.objects
                        ),
                        _ => format!("no object matches {}", r.class.pattern),
                    };
                    output::line(
                        &mut out,
                        &format!("{:<8}{:<12} {detail}", verdict.replace('_', " "), r.class.name),
                    )?;
                }
            }
        }
        let bad = judged.iter().filter(|(_, v)| *v != "ok").count();
        let elapsed_ms = started.elapsed().as_millis() as u64;
        match args.format {
            Format::Json => output::line(
                &mut out,
                &json!({
                    "type": "summary",
                    "location": args.location,
                    "classes": judged.len(),
                    "too_old": judged.iter().filter(|(_, v)| *v == "too_old").count(),
                    "empty": judged.iter().filter(|(_, v)| *v == "empty").count(),
                    "objects": reports.iter().map(|r| r.objects).sum::<u64>(),
                    "elapsed_ms": elapsed_ms,
                })
                .to_string(),
            )?,
            Format::Text => output::line(
                &mut out,
                &format!(
                    "{} classes, {bad} not fresh ({elapsed_ms} ms)",
                    judged.len()
                ),
            )?,
        }
        out.flush()
    })();
    if let Err(e) = w {
        if !output::is_broken_pipe(&e) {
            eprintln!("drkit: cannot write output: {e}");
            return Outcome::Trouble;
        }
    }
    if judged.iter().all(|(_, v)| *v == "ok") {
        Outcome::Clean
    } else {
        Outcome::Problems
    }
}
