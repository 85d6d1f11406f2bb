//! Writing a record: create it with the start event, append one event at a time.
//!
//! Every append happens under an exclusive lock on the record (`flock` on Unix, through std's
//! `File::lock`): the whole file is read and verified, the new line chained to its head and
//! written with one `write` on an `O_APPEND` descriptor, then `fsync`ed, and only then is the
//! lock released. Two operators marking at the same moment are serialised, and nobody extends a
//! record that no longer verifies. Lines are never rewritten.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::chain::{self, Break, GENESIS};
use crate::event::{format_time, Backup, Event, EventKind, NewEvent};

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: exists already; a drill record is never overwritten", path.display())]
    Exists { path: PathBuf },
    #[error("{}: the record does not verify ({} break(s)); nothing appended", path.display(), breaks.len())]
    Broken { path: PathBuf, breaks: Vec<Break> },
    #[error("{}: the drill was finished on line {line}; nothing appended", path.display())]
    Finished { path: PathBuf, line: usize },
    #[error("{0}")]
    Invalid(String),
}

impl RecordError {
    /// I/O trouble (exit 2) rather than a refusal (exit 1).
    pub fn is_io(&self) -> bool {
        matches!(self, RecordError::Io { .. })
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> RecordError + '_ {
    move |source| RecordError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Checks what an event must carry before anything is written.
pub fn check(e: &NewEvent) -> Result<(), RecordError> {
    if e.kind.needs_service() && e.service.is_none() {
        return Err(RecordError::Invalid(format!(
            "a {} event needs a service",
            e.kind.as_str()
        )));
    }
    let is_point = e.kind == EventKind::DataPoint;
    if is_point && (e.class.is_none() || e.last_good.is_none()) {
        return Err(RecordError::Invalid(
            "a data_point event needs a data class and the last good data time".into(),
        ));
    }
    if !is_point && (e.class.is_some() || e.last_good.is_some()) {
        return Err(RecordError::Invalid(format!(
            "a data class and last good time belong to data_point events, not {}",
            e.kind.as_str()
        )));
    }
    Ok(())
}

/// Builds the line that follows `prev` (hash included).
pub fn chained(e: &NewEvent, seq: u64, drill: &str, prev: &str) -> Result<Event, RecordError> {
    let mut ev = Event {
        seq,
        time: format_time(e.time),
        backfilled: e.backfilled,
        recorded_at: format_time(e.recorded_at),
        drill: drill.to_string(),
        event: e.kind.as_str().to_string(),
        service: e.service.clone(),
        tier: e.tier.clone(),
        class: e.class.clone(),
        last_good: e.last_good.map(format_time),
        backups: e.backups.clone(),
        operator: e.operator.clone(),
        text: e.text.clone(),
        prev: prev.to_string(),
        hash: String::new(),
    };
    let obj = match serde_json::to_value(&ev) {
        Ok(Value::Object(m)) => m,
        Ok(_) => return Err(RecordError::Invalid("an event is not a JSON object".into())),
        Err(e) => return Err(RecordError::Invalid(e.to_string())),
    };
    ev.hash = chain::hash_of(prev, &obj);
    Ok(ev)
}

fn write_line(file: &mut File, path: &Path, ev: &Event) -> Result<(), RecordError> {
    let mut line = serde_json::to_string(ev).map_err(|e| RecordError::Invalid(e.to_string()))?;
    line.push('\n');
    // One write on an O_APPEND descriptor: the line lands whole at the end of the file.
    file.write_all(line.as_bytes()).map_err(io_err(path))?;
    file.sync_data().map_err(io_err(path))
}

/// Creates the record with its start event; refuses if the file exists.
pub fn create(path: &Path, drill: &str, e: &NewEvent) -> Result<Event, RecordError> {
    if drill.is_empty() || drill.contains(['\n', '\r']) {
        return Err(RecordError::Invalid(
            "a drill id must be one non-empty line".into(),
        ));
    }
    check(e)?;
    let mut file = match OpenOptions::new()
        .read(true)
        .append(true)
        .create_new(true)
        .open(path)
    {
        Ok(f) => f,
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
            return Err(RecordError::Exists {
                path: path.to_path_buf(),
            })
        }
        Err(err) => return Err(io_err(path)(err)),
    };
    file.lock().map_err(io_err(path))?;
    let ev = chained(e, 1, drill, GENESIS)?;
    write_line(&mut file, path, &ev)?;
    // The new directory entry must survive a crash too.
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))?;
    Ok(ev)
}

/// Appends one event after verifying the whole record, under an exclusive lock.
pub fn append(path: &Path, e: &NewEvent) -> Result<Event, RecordError> {
    if e.kind == EventKind::Start {
        return Err(RecordError::Invalid(
            "start creates a record; it cannot be appended".into(),
        ));
    }
    check(e)?;
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .open(path)
        .map_err(io_err(path))?;
    file.lock().map_err(io_err(path))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(io_err(path))?;
    let v = chain::verify(&bytes);
    if !v.intact() {
        return Err(RecordError::Broken {
            path: path.to_path_buf(),
            breaks: v.breaks,
        });
    }
    if v.finished() {
        return Err(RecordError::Finished {
            path: path.to_path_buf(),
            line: v.lines,
        });
    }
    let (seq, drill, prev) = match v.events.last() {
        Some(last) => (last.seq + 1, last.drill.clone(), last.hash.clone()),
        None => {
            return Err(RecordError::Broken {
                path: path.to_path_buf(),
                breaks: v.breaks,
            })
        }
    };
    let ev = chained(e, seq, &drill, &prev)?;
    write_line(&mut file, path, &ev)?;
    Ok(ev)
}

/// SHA-256 and size of a backup file, read in 1 MiB pieces (backups can be hundreds of GB).
pub fn backup_of(path: &Path, shown_as: String) -> Result<Backup, RecordError> {
    let mut f = File::open(path).map_err(io_err(path))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err(path)(e)),
        };
        h.update(buf.get(..n).unwrap_or_default());
        bytes += n as u64;
    }
    Ok(Backup {
        path: shown_as,
        sha256: chain::hex(&h.finalize()),
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::BreakKind;
    use chrono::{TimeZone, Utc};

    fn at(min: u32) -> NewEvent {
        let t = Utc.with_ymd_and_hms(2026, 11, 20, 10, min, 0).unwrap();
        NewEvent::new(EventKind::Note, t, t)
    }

    #[test]
    fn create_append_verify_and_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.jsonl");
        let mut s = at(0);
        s.kind = EventKind::Start;
        let first = create(&p, "d1", &s).unwrap();
        assert_eq!(first.prev, GENESIS);
        assert!(matches!(
            create(&p, "d1", &s),
            Err(RecordError::Exists { .. })
        ));
        let second = append(&p, &at(1)).unwrap();
        assert_eq!(second.seq, 2);
        assert_eq!(second.prev, first.hash);
        let v = chain::verify(&std::fs::read(&p).unwrap());
        assert!(v.intact(), "{:?}", v.breaks);
        assert_eq!(v.events, vec![first, second]);

        // One byte changed in line 2: content break, and append refuses.
        let text = std::fs::read_to_string(&p).unwrap();
        std::fs::write(&p, text.replace("\"note\"", "\"nope\"")).unwrap();
        match append(&p, &at(2)) {
            Err(RecordError::Broken { breaks, .. }) => {
                assert!(breaks
                    .iter()
                    .any(|b| b.line == 2 && b.kind == BreakKind::Content));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(std::fs::read_to_string(&p).unwrap().lines().count(), 2);
    }

    #[test]
    fn events_are_checked_before_writing() {
        let mut e = at(0);
        e.kind = EventKind::Healthy;
        assert!(check(&e).is_err());
        e.kind = EventKind::DataPoint;
        e.class = Some("telemetry".into());
        assert!(check(&e).is_err());
        e.last_good = Some(e.time);
        assert!(check(&e).is_ok());
    }

    #[test]
    fn backup_hash_is_sha256_of_the_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("b");
        std::fs::write(&p, b"abc").unwrap();
        let b = backup_of(&p, "b".into()).unwrap();
        assert_eq!(
            b.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(b.bytes, 3);
    }
}
