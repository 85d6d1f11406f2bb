//! The corruption suite: each test damages a private copy of a committed test partition in one
//! specific way and asserts the finding kind, its byte position and the offsets it names. Batch
//! positions come from a few lines of independent framing code here, not from drkit.

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

use crate::util::{scratch_partition, segment_files, verify, Run};

/// (position, base offset, last offset, size) of every batch in a magic 2 log.
fn batches(log: &Path) -> Vec<(u64, i64, i64, u64)> {
    let b = fs::read(log).unwrap();
    let mut v = Vec::new();
    let mut p = 0usize;
    while p + 61 <= b.len() {
        let base = i64::from_be_bytes(b[p..p + 8].try_into().unwrap());
        let len = i32::from_be_bytes(b[p + 8..p + 12].try_into().unwrap()) as usize;
        let delta = i32::from_be_bytes(b[p + 23..p + 27].try_into().unwrap()) as i64;
        if p + 12 + len > b.len() {
            break;
        }
        v.push((p as u64, base, base + delta, 12 + len as u64));
        p += 12 + len;
    }
    v
}

fn patch(path: &Path, at: u64, bytes: &[u8]) {
    let mut b = fs::read(path).unwrap();
    b[at as usize..at as usize + bytes.len()].copy_from_slice(bytes);
    fs::write(path, b).unwrap();
}

fn flip(path: &Path, at: u64) {
    let b = fs::read(path).unwrap()[at as usize];
    patch(path, at, &[b ^ 0x5a]);
}

/// Recomputes a magic 2 batch's CRC-32C after a deliberate change to covered bytes, so only the
/// deep checks can see the damage.
fn fix_crc(path: &Path, pos: u64) {
    let b = fs::read(path).unwrap();
    let p = pos as usize;
    let len = i32::from_be_bytes(b[p + 8..p + 12].try_into().unwrap()) as usize;
    let crc = crc32c::crc32c(&b[p + 21..p + 12 + len]);
    patch(path, pos + 17, &crc.to_be_bytes());
}

fn logs(dir: &Path) -> Vec<PathBuf> {
    segment_files(dir, "log")
}

fn assert_finding(
    run: &Run,
    kind: &str,
    file: &Path,
    position: u64,
    offset: Option<i64>,
) -> serde_json::Value {
    let f = run.one(kind).clone();
    assert!(
        f["file"]
            .as_str()
            .unwrap()
            .ends_with(&*file.file_name().unwrap().to_string_lossy()),
        "file: {f}"
    );
    assert_eq!(f["position"], position, "position: {f}");
    if let Some(o) = offset {
        assert_eq!(f["offset"], o, "offset: {f}");
    }
    f
}

#[test]
fn clean_copy_verifies_clean() {
    let (_t, dir) = scratch_partition("plain-0");
    let run = verify(&dir, &["--deep"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(
        run.findings().iter().all(|f| f["severity"] == "info"),
        "{}",
        run.stdout
    );
}

#[test]
fn flipped_body_byte_is_a_crc_mismatch_and_the_rest_still_verifies() {
    let (_t, dir) = scratch_partition("plain-0");
    let log = &logs(&dir)[0];
    let b = batches(log);
    let (pos, base, last, size) = b[3];
    flip(log, pos + size - 7);
    let run = verify(&dir, &[]);
    assert_eq!(run.code, 1);
    let f = assert_finding(&run, "crc_mismatch", log, pos, Some(base));
    assert_eq!(f["end_position"], b[4].0);
    assert_eq!(f["last_offset"], last);
    // Resynchronised: every other batch still counted.
    assert_eq!(run.summary()["batches"], 18, "{}", run.stdout);
    assert_eq!(run.errors().len(), 1, "{}", run.stdout);
}

#[test]
fn flipped_header_byte_is_caught() {
    // lastOffsetDelta is covered by the CRC.
    let (_t, dir) = scratch_partition("plain-0");
    let log = &logs(&dir)[1];
    let b = batches(log);
    flip(log, b[2].0 + 24);
    let run = verify(&dir, &[]);
    assert_finding(&run, "crc_mismatch", log, b[2].0, Some(b[2].1));
    // The magic byte is not covered by the CRC: it is a structure error.
    let (_t, dir) = scratch_partition("plain-0");
    let log = &logs(&dir)[1];
    patch(log, b[2].0 + 16, &[9]);
    let run = verify(&dir, &[]);
    let f = assert_finding(&run, "bad_magic", log, b[2].0, Some(b[2].1));
    assert_eq!(f["end_position"], b[3].0);
}

#[test]
fn bad_length_below_minimum_and_past_the_end() {
    let (_t, dir) = scratch_partition("plain-0");
    let log = &logs(&dir)[0];
    let b = batches(log);
    patch(log, b[1].0 + 8, &10i32.to_be_bytes());
    let run = verify(&dir, &[]);
    let f = assert_finding(&run, "bad_length", log, b[1].0, Some(b[1].1));
    assert_eq!(f["end_position"], b[2].0);
    assert_eq!(f["last_offset"], b[1].2);

    // A length that runs past the end of a middle batch's file is corruption, not a torn tail,
    // when valid batches follow it.
    let (_t, dir) = scratch_partition("plain-0");
    let log = &logs(&dir)[0];
    patch(log, b[1].0 + 8, &1_000_000i32.to_be_bytes());
    let run = verify(&dir, &[]);
    let f = assert_finding(&run, "bad_length", log, b[1].0, Some(b[1].1));
    assert_eq!(f["end_position"], b[2].0);
}

#[test]
fn torn_tail_of_the_active_segment_is_a_warning() {
    let (_t, dir) = scratch_partition("plain-0");
    let log = logs(&dir).pop().unwrap();
    let b = batches(&log);
    let (pos, base, _, size) = *b.last().unwrap();
    OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(pos + size / 2)
        .unwrap();
    let run = verify(&dir, &[]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    let f = assert_finding(&run, "torn_tail", &log, pos, Some(base));
    assert_eq!(f["severity"], "warning");
    assert_eq!(f["end_position"], pos + size / 2);
}

#[test]
fn truncated_closed_segment_is_an_error() {
    let (_t, dir) = scratch_partition("plain-0");
    let log = &logs(&dir)[0];
    let b = batches(log);
    let (pos, base, _, size) = *b.last().unwrap();
    OpenOptions::new()
        .write(true)
        .open(log)
        .unwrap()
        .set_len(pos + size - 3)
        .unwrap();
    let run = verify(&dir, &[]);
    assert_eq!(run.code, 1);
    assert_finding(&run, "truncated_segment", log, pos, Some(base));
}

#[test]
fn zeroed_region_mid_file() {
    let (_t, dir) = scratch_partition("plain-0");
    let log = &logs(&dir)[0];
    let b = batches(log);
    let (start, end) = (b[2].0, b[4].0);
    patch(log, start, &vec![0u8; (end - start) as usize]);
    let run = verify(&dir, &[]);
    let f = assert_finding(&run, "zeroed_region", log, start, Some(b[2].1));
    assert_eq!(f["end_position"], end);
    assert_eq!(f["last_offset"], b[3].2);
}

fn index_entries(path: &Path) -> Vec<(i32, i32)> {
    let b = fs::read(path).unwrap();
    b.chunks_exact(8)
        .map(|c| {
            (
                i32::from_be_bytes(c[..4].try_into().unwrap()),
                i32::from_be_bytes(c[4..].try_into().unwrap()),
            )
        })
        .collect()
}

#[test]
fn index_entry_mid_batch() {
    let (_t, dir) = scratch_partition("plain-0");
    let index = &segment_files(&dir, "index")[0];
    let e = index_entries(index);
    patch(index, 8 + 4, &(e[1].1 + 20).to_be_bytes());
    let run = verify(&dir, &[]);
    assert_eq!(run.code, 1);
    assert_finding(
        &run,
        "index_not_batch_boundary",
        index,
        8,
        Some(e[1].0 as i64),
    );
}

#[test]
fn index_entries_out_of_order() {
    let (_t, dir) = scratch_partition("plain-0");
    let index = &segment_files(&dir, "index")[0];
    let e = index_entries(index);
    let mut swapped = Vec::new();
    for (o, p) in [e[1], e[0]] {
        swapped.extend_from_slice(&o.to_be_bytes());
        swapped.extend_from_slice(&p.to_be_bytes());
    }
    patch(index, 0, &swapped);
    let run = verify(&dir, &[]);
    assert_eq!(run.code, 1);
    assert_finding(&run, "index_offset_order", index, 8, Some(e[0].0 as i64));
}

#[test]
fn index_entry_past_the_end() {
    let (_t, dir) = scratch_partition("plain-0");
    let index = &segment_files(&dir, "index")[0];
    let log_len = fs::metadata(&logs(&dir)[0]).unwrap().len();
    let e = index_entries(index);
    let last = e.len() - 1;
    patch(
        index,
        8 * last as u64 + 4,
        &(log_len as i32 + 100).to_be_bytes(),
    );
    let run = verify(&dir, &[]);
    assert_finding(
        &run,
        "index_position_past_end",
        index,
        8 * last as u64,
        Some(e[last].0 as i64),
    );
}

#[test]
fn time_index_regression() {
    let (_t, dir) = scratch_partition("plain-0");
    let ti = &segment_files(&dir, "timeindex")[0];
    let b = fs::read(ti).unwrap();
    let ts0 = i64::from_be_bytes(b[0..8].try_into().unwrap());
    let off1 = i32::from_be_bytes(b[20..24].try_into().unwrap());
    patch(ti, 12, &(ts0 - 1000).to_be_bytes());
    let run = verify(&dir, &[]);
    assert_eq!(run.code, 1);
    assert_finding(&run, "timeindex_regression", ti, 12, Some(off1 as i64));
}

#[test]
fn txnindex_entry_without_marker() {
    let (_t, dir) = scratch_partition("txn-0");
    let txn = segment_files(&dir, "txnindex")
        .into_iter()
        .find(|p| fs::metadata(p).unwrap().len() >= 34)
        .unwrap();
    let b = fs::read(&txn).unwrap();
    let last = i64::from_be_bytes(b[18..26].try_into().unwrap());
    // Point the entry at the offset before its marker: a data record, not an ABORT.
    patch(&txn, 18, &(last - 1).to_be_bytes());
    let run = verify(&dir, &[]);
    assert_eq!(run.code, 1);
    assert_finding(&run, "txnindex_no_marker", &txn, 0, Some(last - 1));
    // The marker itself is now unindexed.
    assert_eq!(
        run.one("txnindex_missing_entry")["offset"],
        last,
        "{}",
        run.stdout
    );
}

#[test]
fn snapshot_crc() {
    let (_t, dir) = scratch_partition("plain-0");
    let snap = segment_files(&dir, "snapshot")
        .into_iter()
        .find(|p| fs::metadata(p).unwrap().len() > 10)
        .unwrap();
    flip(&snap, 20);
    let run = verify(&dir, &[]);
    assert_eq!(run.code, 1);
    assert_eq!(
        run.one("snapshot_crc_mismatch")["file"],
        snap.display().to_string()
    );
}

fn rename_segment(dir: &Path, from: i64, to: i64) {
    for ext in ["log", "index", "timeindex", "txnindex"] {
        let a = dir.join(format!("{from:020}.{ext}"));
        if a.exists() {
            fs::rename(&a, dir.join(format!("{to:020}.{ext}"))).unwrap();
        }
    }
}

fn remove_segment(dir: &Path, base: i64) {
    for ext in ["log", "index", "timeindex", "txnindex"] {
        let _ = fs::remove_file(dir.join(format!("{base:020}.{ext}")));
    }
}

#[test]
fn segment_overlap() {
    let (_t, dir) = scratch_partition("plain-0");
    let l = logs(&dir);
    let first = batches(&l[0]);
    let second_base: i64 = l[1].file_stem().unwrap().to_str().unwrap().parse().unwrap();
    let last0 = first.last().unwrap().2;
    rename_segment(&dir, second_base, last0 - 2);
    let run = verify(&dir, &[]);
    assert_eq!(run.code, 1);
    let f = run.one("segment_overlap");
    assert_eq!(f["offset"], last0 - 2);
    assert_eq!(f["last_offset"], last0);
    assert!(f["file"]
        .as_str()
        .unwrap()
        .ends_with("00000000000000000000.log"));
}

#[test]
fn missing_segment_is_a_gap() {
    let (_t, dir) = scratch_partition("plain-0");
    let l = logs(&dir);
    let b1 = batches(&l[1]);
    let base1: i64 = l[1].file_stem().unwrap().to_str().unwrap().parse().unwrap();
    remove_segment(&dir, base1);
    let run = verify(&dir, &[]);
    assert_eq!(run.code, 0, "a gap is a warning: {}", run.stdout);
    let f = run.one("segment_gap");
    assert_eq!(f["severity"], "warning");
    assert_eq!(f["offset"], base1);
    assert_eq!(f["last_offset"], b1.last().unwrap().2);
}

#[test]
fn compacted_partition_gaps_are_info() {
    let (_t, dir) = scratch_partition("compacted-0");
    let l = logs(&dir);
    let first = batches(&l[0]);
    let run = verify(&dir, &["--deep"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(run.of_kind("segment_gap").is_empty(), "{}", run.stdout);
    // The cleaner rewrote segment 0: its first batch starts above the file name's offset.
    let on = |kind: &str, name: &str| -> serde_json::Value {
        run.of_kind(kind)
            .into_iter()
            .find(|f| f["file"].as_str().unwrap().ends_with(name))
            .unwrap_or_else(|| panic!("no {kind} on {name}: {}", run.stdout))
            .clone()
    };
    let f0 = on("segment_cleaned", "00000000000000000000.log");
    assert_eq!(f0["offset"], first[0].1);
    assert_eq!(f0["severity"], "info");
    // Offsets missing between cleaned segments, and inside them.
    let second = l[1].file_name().unwrap().to_str().unwrap();
    let second_base: i64 = second.trim_end_matches(".log").parse().unwrap();
    let g = on("segment_gap_compacted", second);
    assert_eq!(g["offset"], first.last().unwrap().2 + 1);
    assert_eq!(g["last_offset"], second_base - 1);
    let gap = first.windows(2).position(|w| w[1].1 > w[0].2 + 1).unwrap();
    let o0 = on("offset_gap", "00000000000000000000.log");
    assert_eq!(o0["position"], first[gap + 1].0);
    assert_eq!(o0["offset"], first[gap].2 + 1);
}

#[test]
fn empty_closed_segment_and_missing_files_are_info() {
    let (_t, dir) = scratch_partition("plain-0");
    let l = logs(&dir);
    for ext in ["log", "index", "timeindex"] {
        OpenOptions::new()
            .write(true)
            .open(l[1].with_extension(ext))
            .unwrap()
            .set_len(0)
            .unwrap();
    }
    fs::remove_file(l[0].with_extension("index")).unwrap();
    fs::remove_file(l[0].with_extension("timeindex")).unwrap();
    fs::remove_file(dir.join("leader-epoch-checkpoint")).unwrap();
    let run = verify(&dir, &[]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(run.one("empty_segment")["file"], l[1].display().to_string());
    assert_eq!(run.one("index_missing")["file"], l[0].display().to_string());
    assert_eq!(
        run.one("timeindex_missing")["file"],
        l[0].display().to_string()
    );
    assert_eq!(
        run.one("leader_epoch_checkpoint_missing")["severity"],
        "info"
    );
    // The emptied segment's offsets are in no segment now.
    assert_eq!(
        run.one("segment_gap")["offset"],
        batches(&l[0]).last().unwrap().2 + 1
    );
}

#[test]
fn offset_regression_in_uncovered_base_offset() {
    // baseOffset is outside the CRC: only the structure check sees it.
    let (_t, dir) = scratch_partition("plain-0");
    let log = &logs(&dir)[0];
    let b = batches(log);
    patch(log, b[3].0, &b[1].1.to_be_bytes());
    let run = verify(&dir, &[]);
    assert_eq!(run.code, 1);
    let f = run.of_kind("offset_regression");
    assert_eq!(f[0]["position"], b[3].0, "{}", run.stdout);
    assert_eq!(f[0]["offset"], b[1].1);
}

#[test]
fn leader_epoch_regression() {
    let (_t, dir) = scratch_partition("plain-0");
    let l = logs(&dir);
    let log = l.last().unwrap();
    let b = batches(log);
    // Epoch 0 after epoch 2 (the partition's epochs are 0 then 2).
    patch(log, b[2].0 + 12, &0i32.to_be_bytes());
    let run = verify(&dir, &[]);
    assert_eq!(run.code, 1);
    let f = run.of_kind("leader_epoch_regression");
    assert!(!f.is_empty(), "{}", run.stdout);
    assert_eq!(f[0]["position"], b[2].0);
    assert_eq!(f[0]["offset"], b[2].1);
}

#[test]
fn first_offset_below_file_name() {
    let (_t, dir) = scratch_partition("plain-0");
    let l = logs(&dir);
    let base1: i64 = l[1].file_stem().unwrap().to_str().unwrap().parse().unwrap();
    rename_segment(&dir, base1, base1 + 3);
    let run = verify(&dir, &[]);
    let f = run.one("first_offset_below_base");
    assert_eq!(f["offset"], base1);
    assert_eq!(f["position"], 0);
}

#[test]
fn bad_text_files() {
    let (_t, dir) = scratch_partition("plain-0");
    fs::write(dir.join("leader-epoch-checkpoint"), "0\n3\n0 0\n").unwrap();
    fs::write(dir.join("partition.metadata"), "version: 7\n").unwrap();
    let run = verify(&dir, &[]);
    assert_eq!(run.code, 1);
    assert!(
        !run.of_kind("leader_epoch_checkpoint_invalid").is_empty(),
        "{}",
        run.stdout
    );
    assert!(
        !run.of_kind("partition_metadata_invalid").is_empty(),
        "{}",
        run.stdout
    );
}

#[test]
fn partial_index_entries() {
    let (_t, dir) = scratch_partition("txn-0");
    for ext in ["index", "timeindex", "txnindex"] {
        let f = segment_files(&dir, ext)
            .into_iter()
            .find(|p| fs::metadata(p).unwrap().len() > 0)
            .unwrap();
        let mut b = fs::read(&f).unwrap();
        b.extend_from_slice(&[1, 2, 3]);
        fs::write(&f, b).unwrap();
    }
    let run = verify(&dir, &[]);
    for kind in ["index_size", "timeindex_size", "txnindex_size"] {
        assert!(!run.of_kind(kind).is_empty(), "{kind}: {}", run.stdout);
    }
}

#[test]
fn preallocated_active_indexes_are_info_not_mismatches() {
    let (_t, dir) = scratch_partition("active-0");
    for ext in ["index", "timeindex"] {
        let f = segment_files(&dir, ext).pop().unwrap();
        // Kafka preallocates 10 MiB rounded down to whole entries.
        let entry = if ext == "index" { 8 } else { 12 };
        OpenOptions::new()
            .write(true)
            .open(&f)
            .unwrap()
            .set_len((10 << 20) / entry * entry)
            .unwrap();
    }
    let run = verify(&dir, &[]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(run.errors().is_empty(), "{}", run.stdout);
    assert!(
        run.findings().iter().all(|f| f["severity"] == "info"),
        "{}",
        run.stdout
    );
    assert!(
        !run.of_kind("index_preallocated").is_empty(),
        "{}",
        run.stdout
    );
}

#[test]
fn preallocated_log_tail_is_info() {
    let (_t, dir) = scratch_partition("plain-0");
    let log = logs(&dir).pop().unwrap();
    let len = fs::metadata(&log).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(len + 65536)
        .unwrap();
    let run = verify(&dir, &[]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    let f = run.one("preallocated_tail");
    assert_eq!(f["position"], len);
    assert_eq!(f["end_position"], len + 65536);
}

#[test]
fn unknown_and_unreadable() {
    let (t, dir) = scratch_partition("plain-0");
    fs::write(dir.join("notes.txt"), "hello").unwrap();
    let run = verify(&dir, &[]);
    assert_eq!(run.one("unknown_file")["severity"], "info");
    let run = verify(&t.path().join("does-not-exist"), &[]);
    assert_eq!(run.code, 2);
    assert_eq!(run.one("unreadable")["severity"], "error");
}

/// Decodes a zig-zag varint at `p`, returning (value, bytes used).
fn varint(b: &[u8], p: usize) -> (i64, usize) {
    let (mut v, mut shift, mut i) = (0u64, 0, 0);
    loop {
        let byte = b[p + i];
        v |= ((byte & 0x7f) as u64) << shift;
        i += 1;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    (((v >> 1) as i64) ^ -((v & 1) as i64), i)
}

#[test]
fn deep_only_damage_behind_a_valid_crc() {
    // recordsCount disagreeing with the records.
    let (_t, dir) = scratch_partition("plain-0");
    let log = &logs(&dir)[0];
    let b = batches(log);
    let (pos, base, _, _) = b[1];
    let count = i32::from_be_bytes(
        fs::read(log).unwrap()[pos as usize + 57..pos as usize + 61]
            .try_into()
            .unwrap(),
    );
    patch(log, pos + 57, &(count + 1).to_be_bytes());
    fix_crc(log, pos);
    assert!(
        verify(&dir, &[]).errors().is_empty(),
        "shallow sees a valid CRC"
    );
    let run = verify(&dir, &["--deep"]);
    assert_eq!(run.code, 1);
    let f = run.of_kind("record_count_mismatch");
    assert_eq!(f[0]["position"], pos, "{}", run.stdout);
    assert_eq!(f[0]["offset"], base);

    // A record timestamp outside [baseTimestamp, maxTimestamp].
    let (_t, dir) = scratch_partition("plain-0");
    let log = &logs(&dir)[0];
    let p = b[2].0;
    let bytes = fs::read(log).unwrap();
    let base_ts = i64::from_be_bytes(bytes[p as usize + 27..p as usize + 35].try_into().unwrap());
    let max_ts = i64::from_be_bytes(bytes[p as usize + 35..p as usize + 43].try_into().unwrap());
    assert!(
        max_ts > base_ts,
        "the generator writes batches spanning time"
    );
    patch(log, p + 35, &base_ts.to_be_bytes());
    fix_crc(log, p);
    let run = verify(&dir, &["--deep"]);
    assert!(
        !run.of_kind("timestamp_out_of_range").is_empty(),
        "{}",
        run.stdout
    );

    // Offset deltas out of order: the second record claims delta 0.
    let (_t, dir) = scratch_partition("plain-0");
    let log = &logs(&dir)[0];
    let p = b[3].0 as usize;
    let bytes = fs::read(log).unwrap();
    let mut at = p + 61;
    let (len0, n) = varint(&bytes, at);
    at += n + len0 as usize; // skip record 0
    let (_, n) = varint(&bytes, at); // record 1 length
    at += n + 1; // + attributes
    let (_, n) = varint(&bytes, at); // timestamp delta
    at += n;
    let (delta, n) = varint(&bytes, at);
    assert_eq!((delta, n), (1, 1));
    patch(log, at as u64, &[0]);
    fix_crc(log, p as u64);
    let run = verify(&dir, &["--deep"]);
    assert_eq!(
        run.of_kind("offset_delta_order")[0]["position"],
        p as u64,
        "{}",
        run.stdout
    );

    // A record length that runs out of the batch.
    let (_t, dir) = scratch_partition("plain-0");
    let log = &logs(&dir)[0];
    patch(log, b[4].0 + 61, &[0x7e]);
    fix_crc(log, b[4].0);
    let run = verify(&dir, &["--deep"]);
    assert_eq!(
        run.of_kind("record_malformed")[0]["position"],
        b[4].0,
        "{}",
        run.stdout
    );
}

#[test]
fn deep_finds_bad_compressed_payloads_and_control_records() {
    let (_t, dir) = scratch_partition("gzip-0");
    let log = &logs(&dir)[0];
    let b = batches(log);
    let (pos, _, _, size) = b[1];
    flip(log, pos + size - 12); // inside the gzip stream (its CRC trailer region or data)
    flip(log, pos + 61 + 20);
    fix_crc(log, pos);
    let run = verify(&dir, &["--deep"]);
    assert_eq!(
        run.of_kind("decompression_failed")[0]["position"],
        pos,
        "{}",
        run.stdout
    );

    let (_t, dir) = scratch_partition("txn-0");
    let log = &logs(&dir)[1];
    let raw = fs::read(log).unwrap();
    let control = batches(log)
        .into_iter()
        .find(|(p, ..)| {
            i16::from_be_bytes(raw[*p as usize + 21..*p as usize + 23].try_into().unwrap()) & 0x20
                != 0
        })
        .expect("a control batch");
    patch(log, control.0 + 57, &2i32.to_be_bytes());
    fix_crc(log, control.0);
    let run = verify(&dir, &["--deep"]);
    assert_eq!(
        run.of_kind("control_record_malformed")[0]["position"],
        control.0,
        "{}",
        run.stdout
    );
}

#[test]
fn every_codec_and_format_verifies_with_manifest_counts() {
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(crate::util::testdata().join("manifest.json")).unwrap())
            .unwrap();
    for (name, p) in manifest["partitions"].as_object().unwrap() {
        let dir = crate::util::testdata().join("logs").join(name);
        for deep in [false, true] {
            let run = verify(&dir, if deep { &["--deep"] } else { &[] });
            assert_eq!(run.code, 0, "{name} deep={deep}: {}", run.stdout);
            assert!(
                run.errors().is_empty() && run.of_kind("torn_tail").is_empty(),
                "{name}: {}",
                run.stdout
            );
            // KRaft snapshot files are listed apart from the segments in the manifest.
            let extra = |k: &str| {
                p["files"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|f| f[k].as_u64().unwrap())
                    .sum::<u64>()
            };
            assert_eq!(
                run.summary()["batches"],
                p["batches"].as_u64().unwrap() + extra("batches"),
                "{name}"
            );
            assert_eq!(
                run.summary()["records"],
                p["records"].as_u64().unwrap() + extra("records"),
                "{name}"
            );
        }
    }
}

/// (position, size, attributes) of every legacy entry in a magic 0/1 log.
fn legacy_entries(log: &Path) -> Vec<(u64, u64, u8)> {
    let b = fs::read(log).unwrap();
    let mut v = Vec::new();
    let mut p = 0usize;
    while p + 26 <= b.len() {
        let size = i32::from_be_bytes(b[p + 8..p + 12].try_into().unwrap()) as usize;
        v.push((p as u64, 12 + size as u64, b[p + 17]));
        p += 12 + size;
    }
    v
}

#[test]
fn legacy_wrapper_offset_that_disagrees_with_its_inner_messages() {
    // A magic 0 wrapper's offset must be its last inner message's offset; the offset field is
    // outside the CRC, so only decoding the wrapper can tell.
    let (_t, dir) = scratch_partition("legacy-v0-0");
    let log = &logs(&dir)[0];
    let (pos, _, _) = legacy_entries(log)
        .into_iter()
        .find(|e| e.2 & 0x07 != 0)
        .expect("a compressed wrapper");
    let offset = i64::from_be_bytes(
        fs::read(log).unwrap()[pos as usize..pos as usize + 8]
            .try_into()
            .unwrap(),
    );
    patch(log, pos, &(offset + 1).to_be_bytes());
    for deep in [false, true] {
        let run = verify(&dir, if deep { &["--deep"] } else { &[] });
        assert_eq!(run.code, 1);
        // Reported once, even though the walk and the deep check both decode the wrapper.
        let f = run.one("legacy_offset_mismatch");
        assert_eq!(f["position"], pos);
    }
}
