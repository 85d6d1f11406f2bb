//! The command line as a user meets it: the README's commands, text output, exit codes, salvage.

use std::fs;

use crate::util::{drkit, output, scratch_partition, segment_files, testdata, verify};

#[test]
fn whole_sample_log_dir_verifies_clean_in_text() {
    let out = drkit()
        .args(["segments", "verify"])
        .arg(testdata())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.lines().last().unwrap().starts_with("OK: 0 errors"),
        "{text}"
    );
}

#[test]
fn json_schema_fields_are_exactly_the_documented_ones() {
    let (_t, dir) = scratch_partition("plain-0");
    let log = &segment_files(&dir, "log")[0];
    let mut b = fs::read(log).unwrap();
    b[200] ^= 1;
    fs::write(log, b).unwrap();
    let run = verify(&dir, &[]);
    let doc = fs::read_to_string(crate::util::repo_root().join("docs/JSON.md")).unwrap();
    for line in &run.lines {
        for key in line.as_object().unwrap().keys() {
            assert!(
                doc.contains(&format!("`{key}`")),
                "field {key} is not documented in docs/JSON.md"
            );
        }
    }
    let f = run.findings()[0]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect::<Vec<_>>();
    // The documented order: type first, as in docs/JSON.md.
    assert_eq!(
        f,
        [
            "type",
            "severity",
            "kind",
            "file",
            "position",
            "end_position",
            "offset",
            "last_offset",
            "message"
        ]
    );
}

#[test]
fn every_finding_kind_is_documented() {
    let doc = fs::read_to_string(crate::util::repo_root().join("docs/JSON.md")).unwrap();
    for k in segment_reader::Kind::ALL {
        assert!(
            doc.contains(&format!("| `{}` |", k.as_str())),
            "{} missing from docs/JSON.md",
            k.as_str()
        );
    }
}

#[test]
fn usage_errors_exit_2() {
    let out = drkit()
        .args(["segments", "verify", "--format", "yaml", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = drkit().args(["segments", "verify"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn jobs_do_not_change_results() {
    let one = output(
        drkit()
            .args(["-j", "1", "segments", "verify", "--format", "json"])
            .arg(testdata())
            .output()
            .unwrap(),
    );
    let two = output(
        drkit()
            .args(["-j", "2", "segments", "verify", "--format", "json"])
            .arg(testdata())
            .output()
            .unwrap(),
    );
    let strip = |r: &crate::util::Run| {
        r.lines
            .iter()
            .map(|l| {
                let mut l = l.clone();
                l.as_object_mut().unwrap().remove("elapsed_ms");
                l
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&one), strip(&two));
}

#[test]
fn salvage_keeps_every_valid_batch_and_the_result_verifies() {
    let (t, dir) = scratch_partition("plain-0");
    let log = &segment_files(&dir, "log")[0];
    let before = fs::read(log).unwrap();
    let mut b = before.clone();
    // Damage the middle of the first segment: a Kafka recovery would truncate the rest.
    let mid = b.len() / 2;
    b[mid] ^= 0xff;
    fs::write(log, &b).unwrap();
    let input_snapshot: Vec<_> = segment_files(&dir, "log")
        .iter()
        .map(|p| fs::read(p).unwrap())
        .collect();
    let out_dir = t.path().join("plain-0-salvaged").join("plain-0");
    let run = output(
        drkit()
            .args(["segments", "salvage", "--format", "json", "--out"])
            .arg(&out_dir)
            .arg(&dir)
            .output()
            .unwrap(),
    );
    assert_eq!(
        run.code, 1,
        "something was dropped: {} {}",
        run.stdout, run.stderr
    );
    let dropped: Vec<_> = run
        .lines
        .iter()
        .filter(|l| l["type"] == "dropped")
        .collect();
    assert_eq!(dropped.len(), 1, "{}", run.stdout);
    let summary = run
        .lines
        .iter()
        .find(|l| l["type"] == "salvage_summary")
        .unwrap();
    // The input is untouched.
    let after: Vec<_> = segment_files(&dir, "log")
        .iter()
        .map(|p| fs::read(p).unwrap())
        .collect();
    assert_eq!(input_snapshot, after);
    // The salvaged partition verifies clean, with exactly the kept batches.
    let v = verify(&out_dir, &["--deep"]);
    assert_eq!(v.code, 0, "{}", v.stdout);
    assert!(
        v.findings().iter().all(|f| f["severity"] != "error"),
        "{}",
        v.stdout
    );
    assert_eq!(v.summary()["batches"], summary["batches_kept"]);
    assert_eq!(v.summary()["batches"], 18);
    // Refuses to write into a non-empty directory.
    let again = drkit()
        .args(["segments", "salvage", "--out"])
        .arg(&out_dir)
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
}

#[test]
fn salvage_of_a_clean_partition_reproduces_its_indexes() {
    // Kafka's rules rebuild the same .index and .timeindex the generator wrote for closed segments.
    let (t, dir) = scratch_partition("plain-0");
    let out_dir = t.path().join("copy");
    let out = drkit()
        .args(["segments", "salvage", "--out"])
        .arg(&out_dir)
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let logs = segment_files(&dir, "log");
    for seg in &logs[..logs.len() - 1] {
        for ext in ["log", "index", "timeindex"] {
            let a = seg.with_extension(ext);
            let b = out_dir.join(a.file_name().unwrap());
            assert_eq!(
                fs::read(&a).unwrap(),
                fs::read(&b).unwrap(),
                "{}",
                a.display()
            );
        }
    }
}
