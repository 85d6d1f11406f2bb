//! `drkit backup pitr-config`: the files PostgreSQL 12+ reads for a point-in-time recovery.
//!
//! Since PostgreSQL 12 there is no recovery.conf (a server that finds one refuses to start):
//! recovery is asked for by an empty `recovery.signal` in the data directory, and the settings
//! are ordinary configuration parameters. They are appended to `postgresql.auto.conf`, the file
//! `pg_basebackup -R` also appends to, in a block marked with drkit's name; the previous file is
//! kept as `postgresql.auto.conf.drkit-rollback` first (`.1`, `.2`... if that exists). Existing
//! recovery settings or signal files make it refuse, unless forced (a later line overrides an
//! earlier one in PostgreSQL's configuration files, so forced settings win).

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::wal::name::{self, ArchiveName, Compression};

/// Parameters that steer recovery: finding one already set means someone configured a recovery.
pub const RECOVERY_PARAMETERS: &[&str] = &[
    "restore_command",
    "recovery_target",
    "recovery_target_time",
    "recovery_target_xid",
    "recovery_target_name",
    "recovery_target_lsn",
    "recovery_target_action",
    "recovery_target_timeline",
    "recovery_target_inclusive",
];

pub const ROLLBACK_NAME: &str = "postgresql.auto.conf.drkit-rollback";

/// The settings, in the order they are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub restore_command: String,
    /// As PostgreSQL reads it: `YYYY-MM-DD HH:MM:SS.ffffff+00`.
    pub target_time: String,
    /// pause, promote or shutdown.
    pub action: String,
}

impl Settings {
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        vec![
            ("restore_command", self.restore_command.clone()),
            ("recovery_target_time", self.target_time.clone()),
            ("recovery_target_action", self.action.clone()),
            ("recovery_target_timeline", "latest".to_string()),
        ]
    }

    /// The block appended to postgresql.auto.conf.
    pub fn conf_text(&self) -> String {
        let mut s = String::from("# Point-in-time recovery, written by drkit backup pitr-config.\n# Remove these lines once recovery has ended.\n");
        for (k, v) in self.pairs() {
            s.push_str(&format!("{k} = {}\n", conf_quote(&v)));
        }
        s
    }
}

/// A string as a configuration-file value: single quotes, embedded ones doubled.
pub fn conf_quote(v: &str) -> String {
    format!("'{}'", v.replace('\'', "''"))
}

/// A path for `/bin/sh`: single-quoted, embedded quotes closed, escaped and reopened.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The compressions present among the archive's segment and history files.
pub fn compressions(archive: &Path) -> io::Result<Vec<Compression>> {
    let mut v = Vec::new();
    for e in fs::read_dir(archive)? {
        let e = e?;
        if let Some(ArchiveName::Segment { compression, .. }) =
            e.file_name().to_str().and_then(name::parse)
        {
            if !v.contains(&compression) {
                v.push(compression);
            }
        }
    }
    v.sort();
    Ok(v)
}

/// restore_command for `archive`: `cp` when every file is plain, else a shell `if` that tries
/// the plain file, then each compressed form present. `%` in the path is doubled (PostgreSQL
/// expands `%f`, `%p` and `%%` in restore_command).
pub fn restore_command(archive: &Path, present: &[Compression]) -> String {
    let dir = archive.to_string_lossy().replace('%', "%%");
    let file = sh_quote(&format!("{}/%f", dir.trim_end_matches('/')));
    if present.iter().all(|c| *c == Compression::None) {
        return format!("cp {file} \"%p\"");
    }
    let mut s = format!("f={file}; if [ -f \"$f\" ]; then cp \"$f\" \"%p\"");
    for c in present {
        let tool = match c {
            Compression::None => continue,
            Compression::Gzip => "gzip -dc",
            Compression::Zstd => "zstd -qdc",
            Compression::Lz4 => "lz4 -qdc",
        };
        s.push_str(&format!(
            "; elif [ -f \"$f{sfx}\" ]; then {tool} \"$f{sfx}\" > \"%p\"",
            sfx = c.suffix()
        ));
    }
    s.push_str("; else exit 1; fi");
    s
}

/// Something that already asks for a recovery: a signal file, or a recovery parameter set in a
/// configuration file (`file:line`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Existing {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub what: String,
}

/// Signal files and recovery parameters already in `data_dir` (postgresql.conf,
/// postgresql.auto.conf; `include`d files are not followed).
pub fn existing(data_dir: &Path) -> io::Result<Vec<Existing>> {
    let mut v = Vec::new();
    for sig in ["recovery.signal", "standby.signal", "recovery.conf"] {
        let p = data_dir.join(sig);
        if p.exists() {
            v.push(Existing {
                file: p,
                line: None,
                what: format!("{sig} exists"),
            });
        }
    }
    for conf in ["postgresql.conf", "postgresql.auto.conf"] {
        let p = data_dir.join(conf);
        let text = match fs::read(&p) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for (i, line) in text.lines().enumerate() {
            let l = line.trim_start();
            let key: String = l
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect::<String>()
                .to_ascii_lowercase();
            let rest = l.get(key.len()..).unwrap_or("").trim_start();
            if RECOVERY_PARAMETERS.contains(&key.as_str())
                && (rest.starts_with('=') || rest.starts_with('\''))
            {
                v.push(Existing {
                    file: p.clone(),
                    line: Some(i + 1),
                    what: line.trim().to_string(),
                });
            }
        }
    }
    Ok(v)
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub signal: PathBuf,
    pub conf: PathBuf,
    /// The previous postgresql.auto.conf, when there was one.
    pub rollback: Option<PathBuf>,
}

/// Appends `settings` to `data_dir/postgresql.auto.conf` (after saving it as the rollback file)
/// and creates `recovery.signal`. New files get the data directory's owner, so a server running
/// as that user can remove recovery.signal when recovery ends.
pub fn write(data_dir: &Path, settings: &Settings) -> io::Result<Written> {
    let conf = data_dir.join("postgresql.auto.conf");
    let rollback = if conf.exists() {
        // An earlier (forced) run's rollback file holds an older state: never overwrite it.
        let r = (0..)
            .map(|n| match n {
                0 => data_dir.join(ROLLBACK_NAME),
                n => data_dir.join(format!("{ROLLBACK_NAME}.{n}")),
            })
            .find(|p| !p.exists())
            .unwrap_or_else(|| data_dir.join(ROLLBACK_NAME));
        fs::copy(&conf, &r)?;
        same_owner(data_dir, &r)?;
        Some(r)
    } else {
        None
    };
    let created = !conf.exists();
    let mut f = fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&conf)?;
    let mut text = String::from("\n");
    text.push_str(&settings.conf_text());
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    if created {
        same_owner(data_dir, &conf)?;
    }
    let signal = data_dir.join("recovery.signal");
    fs::File::create(&signal)?.sync_all()?;
    same_owner(data_dir, &signal)?;
    Ok(Written {
        signal,
        conf,
        rollback,
    })
}

#[cfg(unix)]
fn same_owner(dir: &Path, file: &Path) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let m = fs::metadata(dir)?;
    let f = fs::metadata(file)?;
    if (m.uid(), m.gid()) == (f.uid(), f.gid()) {
        return Ok(());
    }
    match std::os::unix::fs::chown(file, Some(m.uid()), Some(m.gid())) {
        // Not root: the file stays ours, which is then also the directory's owner in practice.
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Ok(()),
        r => r,
    }
}

#[cfg(not(unix))]
fn same_owner(_dir: &Path, _file: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_quotes_and_percent_signs() {
        let c = restore_command(Path::new("/ar'ch 50%/"), &[Compression::None]);
        assert_eq!(c, r#"cp '/ar'\''ch 50%%/%f' "%p""#);
        assert_eq!(conf_quote(&c), r#"'cp ''/ar''\''''ch 50%%/%f'' "%p"'"#);
        let g = restore_command(Path::new("/a"), &[Compression::None, Compression::Gzip]);
        assert!(
            g.contains(r#"elif [ -f "$f.gz" ]; then gzip -dc "$f.gz" > "%p""#),
            "{g}"
        );
    }

    /// What PostgreSQL does with restore_command: `%f`, `%p`, `%%` expanded, run by `sh -c`.
    fn run_as_postgres_would(cmd: &str, f: &str, p: &Path) -> bool {
        let expanded = cmd
            .replace("%%", "\u{0}")
            .replace("%f", f)
            .replace("%p", &p.to_string_lossy())
            .replace('\u{0}', "%");
        std::process::Command::new("sh")
            .arg("-c")
            .arg(expanded)
            .status()
            .unwrap()
            .success()
    }

    #[test]
    fn restore_command_really_restores_through_a_shell() {
        let d = tempfile::tempdir().unwrap();
        let arch = d.path().join("it's 100% wal");
        fs::create_dir(&arch).unwrap();
        fs::write(arch.join("000000010000000000000001"), b"plain").unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"gzipped").unwrap();
        fs::write(
            arch.join("000000010000000000000002.gz"),
            gz.finish().unwrap(),
        )
        .unwrap();
        let out = d.path().join("RECOVERYXLOG");
        let cmd = restore_command(&arch, &compressions(&arch).unwrap());
        for (f, want) in [
            ("000000010000000000000001", &b"plain"[..]),
            ("000000010000000000000002", &b"gzipped"[..]),
        ] {
            assert!(run_as_postgres_would(&cmd, f, &out), "{cmd}");
            assert_eq!(fs::read(&out).unwrap(), want);
        }
        // Not in the archive: a failure, which PostgreSQL takes as "no such file".
        assert!(
            !run_as_postgres_would(&cmd, "000000010000000000000003", &out),
            "{cmd}"
        );
        let plain = restore_command(&arch, &[Compression::None]);
        assert!(
            run_as_postgres_would(&plain, "000000010000000000000001", &out),
            "{plain}"
        );
    }

    #[test]
    fn finds_existing_recovery_settings_and_refuses_nothing_else() {
        let d = tempfile::tempdir().unwrap();
        fs::write(
            d.path().join("postgresql.conf"),
            "# restore_command = 'x'\nport = 5432\nrestore_command='cp a b'\n",
        )
        .unwrap();
        let e = existing(d.path()).unwrap();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].line, Some(3));
        let s = Settings {
            restore_command: "cp x y".into(),
            target_time: "2024-01-01 00:00:00+00".into(),
            action: "promote".into(),
        };
        fs::write(d.path().join("postgresql.auto.conf"), "work_mem = '4MB'\n").unwrap();
        let w = write(d.path(), &s).unwrap();
        assert_eq!(
            fs::read_to_string(w.rollback.unwrap()).unwrap(),
            "work_mem = '4MB'\n"
        );
        let conf = fs::read_to_string(&w.conf).unwrap();
        assert!(conf.starts_with("work_mem = '4MB'\n"));
        assert!(conf.contains("recovery_target_timeline = 'latest'\n"));
        assert!(w.signal.exists());
        assert_eq!(existing(d.path()).unwrap().len(), 1 + 1 + 4);
        // A second (forced) write keeps the first rollback file and adds another.
        let w2 = write(d.path(), &s).unwrap();
        assert_eq!(
            w2.rollback.unwrap(),
            d.path().join(format!("{ROLLBACK_NAME}.1"))
        );
        assert_eq!(
            fs::read_to_string(d.path().join(ROLLBACK_NAME)).unwrap(),
            "work_mem = '4MB'\n"
        );
    }
}
