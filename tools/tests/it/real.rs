//! Conformance: every real broker-written directory verifies without an error, shallow and deep,
//! and the batch and record counts agree with an independent decoder (kafka-protocol's
//! `RecordBatchDecoder`) or, for legacy data no Rust decoder reads, with the numbers recorded when
//! the data was collected.

use std::fs;
use std::path::{Path, PathBuf};

use bytes::{Buf, Bytes};
use kafka_protocol::records::RecordBatchDecoder;

use crate::util::{kafka_real, legacy_captures, verify};

/// Every `.log` and KRaft `.checkpoint` (and `bootstrap.checkpoint`) under `dir`.
fn batch_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    let mut entries: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if p.is_dir() {
            batch_files(&p, out);
        } else if name.ends_with(".log")
            || name == "bootstrap.checkpoint"
            || name.ends_with(".checkpoint") && name.contains('-') && !name.contains("offset")
        {
            out.push(p);
        }
    }
}

/// (batches, records) of a magic 2 file by kafka-protocol, or None when it holds legacy data.
fn independent_counts(path: &Path) -> Option<(u64, u64)> {
    let mut buf = Bytes::from(fs::read(path).unwrap());
    let (mut batches, mut records) = (0, 0);
    while buf.remaining() >= 61 {
        if buf[16] != 2 {
            return None;
        }
        let len = i32::from_be_bytes(buf[8..12].try_into().unwrap()) as usize;
        if 12 + len > buf.remaining() {
            break; // torn tail
        }
        let mut one = buf.split_to(12 + len);
        let set = RecordBatchDecoder::decode(&mut one)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        batches += 1;
        records += set.records.len() as u64;
    }
    Some((batches, records))
}

/// kafka-protocol decodes a compacted batch's surviving records; the count to compare is theirs.
fn real_dirs() -> Vec<PathBuf> {
    let Some(root) = kafka_real() else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = fs::read_dir(root)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    v
}

#[test]
fn real_directories_verify_clean_with_independent_counts() {
    let dirs = real_dirs();
    if dirs.is_empty() {
        eprintln!("skipped: ../shared/kafka-real is not here");
        return;
    }
    for dir in dirs {
        let mut files = Vec::new();
        batch_files(&dir, &mut files);
        let counts: Vec<_> = files.iter().map(|f| independent_counts(f)).collect();
        for deep in [false, true] {
            let run = verify(&dir, if deep { &["--deep"] } else { &[] });
            assert!(
                run.errors().is_empty(),
                "{} (deep={deep}) has errors:\n{}",
                dir.display(),
                run.stdout
            );
            assert_eq!(
                run.code,
                0,
                "{}: exit {} stderr {}",
                dir.display(),
                run.code,
                run.stderr
            );
            let s = run.summary();
            if counts.iter().all(Option::is_some) {
                let (b, r) = counts
                    .iter()
                    .flatten()
                    .fold((0, 0), |a, c| (a.0 + c.0, a.1 + c.1));
                assert_eq!(s["batches"], b, "{}: batches", dir.display());
                assert_eq!(s["records"], r, "{}: records", dir.display());
            }
        }
    }
}

#[test]
fn legacy_magic1_directory_counts_every_message() {
    let Some(root) = kafka_real() else { return };
    let dir = root.join("xpxwo100__bullShit");
    if !dir.is_dir() {
        return;
    }
    let run = verify(&dir, &["--deep"]);
    assert!(run.errors().is_empty(), "{}", run.stdout);
    // The number the folder's README records for this broker's data.
    assert_eq!(run.summary()["records"], 22_280, "{}", run.stdout);
}

#[test]
fn zk_broker_consumer_offsets_batches() {
    let Some(root) = kafka_real() else { return };
    let dir = root.join("zk-broker-2020/__consumer_offsets-39");
    if !dir.is_dir() {
        return;
    }
    let run = verify(&dir, &[]);
    assert_eq!(run.summary()["batches"], 683, "{}", run.stdout);
}

#[test]
fn legacy_captures_clean_except_the_broken_crc() {
    let Some(root) = legacy_captures() else {
        return;
    };
    for e in fs::read_dir(&root).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        for deep in [false, true] {
            let run = verify(&e.path(), if deep { &["--deep"] } else { &[] });
            if name.contains("invalid_crc") {
                assert_eq!(run.code, 1, "{name}: {}", run.stdout);
                let f = run.one("crc_mismatch");
                assert_eq!(f["position"], 0, "{name}: {}", run.stdout);
                assert_eq!(run.errors().len(), 1, "{name}: {}", run.stdout);
            } else {
                assert!(
                    run.errors().is_empty(),
                    "{name} (deep={deep}): {}",
                    run.stdout
                );
                assert!(run.summary()["records"].as_u64().unwrap() > 0, "{name}");
            }
        }
    }
}
