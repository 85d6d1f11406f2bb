//! Reads the committed data back without the generator's bookkeeping: every magic 2 batch is
//! decoded by kafka-protocol's RecordBatchDecoder (which checks the CRC-32C and decompresses),
//! legacy message sets by a small reader here, and counts, offsets and indexes are compared with
//! manifest.json and re-derived from the .log files with Kafka's LogSegment rules.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use kafka_protocol::records::RecordBatchDecoder;
use serde_json::Value;

fn data() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data")
}

fn manifest() -> Value {
    serde_json::from_slice(&fs::read(data().join("manifest.json")).unwrap()).unwrap()
}

fn i32_at(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

fn i64_at(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().unwrap())
}

/// One shallow entry of a .log as found by walking it.
#[derive(Debug, Clone)]
struct Entry {
    pos: usize,
    size: usize,
    first: i64,
    last: i64,
    max_ts: i64,
    magic: u8,
    records: u64,
    attrs: i16,
    /// For control batches: the control type of the (single) record.
    control_type: Option<i16>,
    producer_id: i64,
    /// Offsets of the first and last record actually present (magic 2).
    record_span: Option<(i64, i64)>,
}

/// Decodes a legacy message set (possibly nested in a wrapper) and returns its messages'
/// (absolute offsets, timestamps).
fn legacy_messages(b: &[u8], magic: u8) -> Vec<(i64, i64)> {
    let mut out = vec![];
    let mut pos = 0;
    while pos + 12 <= b.len() {
        let size = i32_at(b, pos + 8) as usize;
        let m = &b[pos..pos + 12 + size];
        let crc = u32::from_be_bytes(m[12..16].try_into().unwrap());
        assert_eq!(crc, crc32fast::hash(&m[16..]), "legacy CRC at {pos}");
        assert_eq!(m[16], magic, "inner magic");
        let attrs = m[17];
        let (ts, mut p) = if magic == 1 {
            (i64_at(m, 18), 26)
        } else {
            (-1, 18)
        };
        let klen = i32_at(m, p);
        p += 4 + klen.max(0) as usize;
        let vlen = i32_at(m, p);
        p += 4;
        let value = &m[p..p + vlen.max(0) as usize];
        assert_eq!(p + vlen.max(0) as usize, m.len(), "message length");
        let offset = i64_at(m, 0);
        match attrs & 7 {
            0 => out.push((offset, ts)),
            codec => {
                let inner = decompress_legacy(codec, value, magic);
                let msgs = legacy_messages(&inner, magic);
                assert!(!msgs.is_empty());
                if magic == 1 {
                    // Relative inner offsets 0..n-1; the wrapper holds the last absolute offset.
                    let n = msgs.len() as i64;
                    for (i, (o, t)) in msgs.iter().enumerate() {
                        assert_eq!(*o, i as i64, "v1 inner offsets are relative");
                        out.push((offset - (n - 1) + o, *t));
                    }
                    let max = msgs.iter().map(|m| m.1).max().unwrap();
                    assert_eq!(ts, max, "v1 wrapper timestamp is the max inner timestamp");
                } else {
                    assert_eq!(
                        msgs.last().unwrap().0,
                        offset,
                        "v0 wrapper offset = last inner"
                    );
                    out.extend(msgs);
                }
            }
        }
        pos += 12 + size;
    }
    assert_eq!(pos, b.len(), "message set has trailing bytes");
    out
}

fn decompress_legacy(codec: u8, v: &[u8], magic: u8) -> Vec<u8> {
    let mut out = vec![];
    match codec {
        1 => {
            flate2::read::GzDecoder::new(v)
                .read_to_end(&mut out)
                .unwrap();
        }
        2 => {
            assert_eq!(&v[..8], b"\x82SNAPPY\x00", "xerial header");
            let mut p = 16;
            while p < v.len() {
                let n = i32_at(v, p) as usize;
                out.extend(
                    snap::raw::Decoder::new()
                        .decompress_vec(&v[p + 4..p + 4 + n])
                        .unwrap(),
                );
                p += 4 + n;
            }
        }
        3 => {
            let mut frame = v.to_vec();
            let right = (drkit_testdata::legacy::xxh32(&frame[4..6], 0) >> 8) as u8;
            let broken = (drkit_testdata::legacy::xxh32(&frame[0..6], 0) >> 8) as u8;
            // Kafka writes the broken header checksum for magic 0 only.
            assert_eq!(frame[6], if magic == 0 { broken } else { right });
            frame[6] = right;
            lz4_flex::frame::FrameDecoder::new(&frame[..])
                .read_to_end(&mut out)
                .unwrap();
        }
        c => panic!("codec {c}"),
    }
    out
}

fn walk(log: &[u8]) -> (Vec<Entry>, u64) {
    let mut entries = vec![];
    let mut decoded = 0;
    let mut pos = 0;
    while pos < log.len() {
        let size = 12 + i32_at(log, pos + 8) as usize;
        let b = &log[pos..pos + size];
        let magic = b[16];
        if magic == 2 {
            let mut buf = Bytes::copy_from_slice(b);
            let set =
                RecordBatchDecoder::decode(&mut buf).expect("kafka-protocol decodes the batch");
            let base = i64_at(b, 0);
            let last = base + i64::from(i32_at(b, 23));
            let count = i32_at(b, 57) as u64;
            assert_eq!(set.records.len() as u64, count, "recordsCount at {pos}");
            let mut prev = base - 1;
            for r in &set.records {
                assert!(
                    r.offset > prev && r.offset <= last,
                    "record offset {} in [{base},{last}]",
                    r.offset
                );
                prev = r.offset;
            }
            let max_ts = i64_at(b, 35);
            if let Some(m) = set.records.iter().map(|r| r.timestamp).max() {
                assert_eq!(m, max_ts, "maxTimestamp at {pos}");
            }
            let attrs = i16::from_be_bytes([b[21], b[22]]);
            let control_type = (attrs & 0x20 != 0).then(|| {
                let k = set.records[0].key.as_ref().unwrap();
                i16::from_be_bytes([k[2], k[3]])
            });
            decoded += count;
            entries.push(Entry {
                pos,
                size,
                first: base,
                last,
                max_ts,
                magic,
                records: count,
                attrs,
                control_type,
                producer_id: i64_at(b, 43),
                record_span: set
                    .records
                    .first()
                    .zip(set.records.last())
                    .map(|(f, l)| (f.offset, l.offset)),
            });
        } else {
            let msgs = legacy_messages(b, magic);
            decoded += msgs.len() as u64;
            entries.push(Entry {
                pos,
                size,
                first: msgs[0].0,
                last: i64_at(b, 0),
                max_ts: if magic == 0 { -1 } else { i64_at(b, 18) },
                magic,
                records: msgs.len() as u64,
                attrs: i16::from(b[17]),
                control_type: None,
                producer_id: -1,
                record_span: None,
            });
        }
        pos += size;
    }
    assert_eq!(pos, log.len());
    (entries, decoded)
}

/// (offset, position) or (timestamp, offset) pairs of an index.
type Pairs = Vec<(i64, i64)>;

/// LogSegment.recover's rules, valid for a leader that appended one batch at a time.
fn per_batch_indexes(entries: &[Entry], rolled: bool) -> (Pairs, Pairs) {
    let mut idx = vec![];
    let mut tidx: Vec<(i64, i64)> = vec![];
    let mut valid = 0;
    let mut last_entry = 0;
    let mut max = (-1i64, -1i64);
    let push = |t: &mut Vec<(i64, i64)>, e: (i64, i64)| {
        if e.0 > t.last().map_or(-1, |l| l.0) {
            t.push(e);
        }
    };
    for e in entries {
        if e.max_ts > max.0 {
            max = (e.max_ts, e.last);
        }
        if valid - last_entry > 4096 {
            idx.push((e.last, valid as i64));
            push(&mut tidx, max);
            last_entry = valid;
        }
        valid += e.size;
    }
    if rolled {
        push(&mut tidx, max);
    }
    (idx, tidx)
}

fn read_index(path: &Path, base: i64, entry: usize, padding: usize) -> Pairs {
    let b = fs::read(path).unwrap();
    // Padding is rounded down to whole entries, as Kafka preallocates.
    let padding = padding / entry * entry;
    assert!(b.len() >= padding);
    let (real, pad) = b.split_at(b.len() - padding);
    assert!(
        pad.iter().all(|&x| x == 0),
        "{} padding is zeros",
        path.display()
    );
    assert_eq!(real.len() % entry, 0, "{} whole entries", path.display());
    real.chunks(entry)
        .map(|c| {
            if entry == 8 {
                (base + i64::from(i32_at(c, 0)), i64::from(i32_at(c, 4)))
            } else {
                (i64_at(c, 0), base + i64::from(i32_at(c, 8)))
            }
        })
        .collect()
}

#[test]
fn every_partition_matches_the_manifest() {
    let m = manifest();
    let logs = data().join(m["log_dir"].as_str().unwrap());
    let parts = m["partitions"].as_object().unwrap();
    assert_eq!(parts.len(), 12);
    for (name, p) in parts {
        let dir = logs.join(name);
        let mut all: Vec<Entry> = vec![];
        let mut total_records = 0;
        let segs = p["segment_files"].as_array().unwrap();
        assert_eq!(p["segments"].as_u64().unwrap() as usize, segs.len());
        for s in segs {
            let base = s["base_offset"].as_i64().unwrap();
            let stem = format!("{base:020}");
            let log = fs::read(dir.join(format!("{stem}.log"))).unwrap();
            assert_eq!(log.len() as u64, s["bytes"].as_u64().unwrap());
            let (entries, decoded) = walk(&log);
            let ctx = format!("{name}/{stem}");
            assert_eq!(
                entries.len() as u64,
                s["batches"].as_u64().unwrap(),
                "{ctx} batches"
            );
            assert_eq!(decoded, s["records"].as_u64().unwrap(), "{ctx} records");
            assert_eq!(
                entries.first().map(|e| e.first),
                s["first_offset"].as_i64(),
                "{ctx} first"
            );
            assert_eq!(
                entries.last().map(|e| e.last),
                s["last_offset"].as_i64(),
                "{ctx} last"
            );
            for e in &entries {
                assert!(e.first >= base, "{ctx}: offsets at or above the file name");
            }
            let padding = s["index_padding_bytes"].as_u64().unwrap() as usize;
            let idx = read_index(&dir.join(format!("{stem}.index")), base, 8, padding);
            let tidx = read_index(&dir.join(format!("{stem}.timeindex")), base, 12, padding);
            assert_eq!(
                idx.len() as u64,
                s["index_entries"].as_u64().unwrap(),
                "{ctx} index"
            );
            assert_eq!(
                tidx.len() as u64,
                s["time_index_entries"].as_u64().unwrap(),
                "{ctx} timeindex"
            );
            // The rule every valid offset index obeys, leader or follower.
            let mut prev = (base - 1, -1);
            for (i, &(off, pos)) in idx.iter().enumerate() {
                assert!(off > prev.0 && pos > prev.1, "{ctx}: index increases");
                let at = entries
                    .iter()
                    .position(|e| e.pos as i64 == pos)
                    .expect("index position is a batch boundary");
                assert!(
                    entries[at].first <= off,
                    "{ctx}: batch at position starts at or before"
                );
                let end = idx.get(i + 1).map_or(i64::MAX, |n| n.1);
                assert!(
                    entries[at..]
                        .iter()
                        .any(|e| e.last == off && (e.pos as i64) < end),
                    "{ctx}: index offset ends a batch"
                );
                prev = (off, pos);
            }
            // Time index: nondecreasing, each entry the max timestamp up to its offset.
            for w in tidx.windows(2) {
                assert!(
                    w[0].0 < w[1].0 && w[0].1 <= w[1].1,
                    "{ctx}: timeindex increases"
                );
            }
            for &(ts, off) in &tidx {
                let max = entries
                    .iter()
                    .filter(|e| e.last <= off)
                    .map(|e| e.max_ts)
                    .max();
                assert_eq!(max, Some(ts), "{ctx}: timeindex entry is max-so-far");
            }
            if entries.iter().all(|e| e.magic == 0) {
                assert!(tidx.is_empty(), "{ctx}: magic 0 has no time index");
            }
            match s["appends"].as_str().unwrap() {
                "per_batch" => {
                    let (eidx, etidx) = per_batch_indexes(&entries, padding == 0);
                    assert_eq!(idx, eidx, "{ctx}: index re-derived");
                    assert_eq!(tidx, etidx, "{ctx}: timeindex re-derived");
                }
                "one_append" => {
                    assert!(idx.is_empty(), "{ctx}: one append is never indexed");
                    assert!(tidx.len() <= 1, "{ctx}: only the roll entry");
                }
                _ => {}
            }
            // .txnindex
            let txn = dir.join(format!("{stem}.txnindex"));
            let n = s["txn_index_entries"].as_u64().unwrap() as usize;
            if n == 0 {
                assert!(!txn.exists());
            } else {
                let t = fs::read(txn).unwrap();
                assert_eq!(t.len(), n * 34, "{ctx}: txnindex size");
                let mut prev_last = -1;
                for c in t.chunks(34) {
                    assert_eq!(&c[0..2], &[0, 0]);
                    let (pid, first, last, lso) =
                        (i64_at(c, 2), i64_at(c, 10), i64_at(c, 18), i64_at(c, 26));
                    assert!(last > prev_last && last >= base);
                    prev_last = last;
                    let marker = entries
                        .iter()
                        .find(|e| e.first == last)
                        .expect("marker in segment");
                    assert_eq!(
                        marker.control_type,
                        Some(0),
                        "{ctx}: lastOffset is an ABORT marker"
                    );
                    assert_eq!(marker.producer_id, pid);
                    assert!(lso <= last + 1 && first <= last);
                    assert!(
                        all.iter()
                            .chain(&entries)
                            .any(|e| e.first == first && e.producer_id == pid),
                        "{ctx}: txn first offset is a batch of the producer"
                    );
                }
            }
            total_records += decoded;
            all.extend(entries);
        }
        assert_eq!(all.len() as u64, p["batches"].as_u64().unwrap(), "{name}");
        assert_eq!(total_records, p["records"].as_u64().unwrap(), "{name}");
        assert_eq!(
            all.first().map(|e| e.first),
            p["first_offset"].as_i64(),
            "{name}"
        );
        assert_eq!(
            all.last().map(|e| e.last),
            p["last_offset"].as_i64(),
            "{name}"
        );
        let mut codecs: Vec<&str> = all
            .iter()
            .map(|e| ["none", "gzip", "snappy", "lz4", "zstd"][(e.attrs & 7) as usize])
            .collect();
        codecs.sort();
        codecs.dedup();
        let want: Vec<&str> = p["codecs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        assert_eq!(codecs, want, "{name} codecs");
        for w in all.windows(2) {
            assert!(
                w[1].first > w[0].last,
                "{name}: offsets increase across batches"
            );
        }
        // Producer snapshots.
        for snap in p["snapshots"].as_array().unwrap() {
            let b = fs::read(dir.join(snap["file"].as_str().unwrap())).unwrap();
            assert_eq!(&b[0..2], &[0, 1]);
            assert_eq!(
                u32::from_be_bytes(b[2..6].try_into().unwrap()),
                crc32c::crc32c(&b[6..])
            );
            let n = i32_at(&b, 6) as usize;
            assert_eq!(b.len(), 10 + 46 * n);
            assert_eq!(n as u64, snap["producers"].as_u64().unwrap());
        }
        // Leader epoch checkpoint.
        let lec = fs::read_to_string(dir.join("leader-epoch-checkpoint")).unwrap();
        let lines: Vec<&str> = lec.lines().collect();
        assert_eq!(lines[0], "0");
        assert_eq!(lines[1].parse::<usize>().unwrap(), lines.len() - 2);
        assert_eq!(
            lines.len() - 2,
            p["leader_epochs"].as_array().unwrap().len()
        );
    }
}

#[test]
fn special_cases_are_present() {
    let logs = data().join("logs");
    let walk_dir = |name: &str| -> Vec<(Entry, Vec<u8>)> {
        let mut files: Vec<_> = fs::read_dir(logs.join(name))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
            .collect();
        files.sort();
        let mut out = vec![];
        for f in files {
            let log = fs::read(f).unwrap();
            for e in walk(&log).0 {
                let b = log[e.pos..e.pos + e.size].to_vec();
                out.push((e, b));
            }
        }
        out
    };
    // compacted-0: record removal, empty batches, delete horizon, gaps.
    let c = walk_dir("compacted-0");
    assert!(c
        .iter()
        .any(|(e, _)| e.records > 0 && e.records < (e.last - e.first + 1) as u64));
    assert!(c.iter().any(|(e, _)| e.records == 0));
    assert!(
        c.iter()
            .any(|(e, _)| e.record_span.is_some_and(|s| s.0 > e.first)),
        "first record removed"
    );
    assert!(
        c.iter()
            .any(|(e, _)| e.record_span.is_some_and(|s| s.1 < e.last)),
        "last record removed"
    );
    assert!(
        c.iter()
            .any(|(e, b)| e.attrs & 0x40 != 0 && i64_at(b, 27) > e.max_ts),
        "delete horizon in baseTimestamp"
    );
    assert!(
        c[0].0.first > 0,
        "first cleaned batch starts above the segment name"
    );
    // txn-0: both markers, transactional data.
    let t = walk_dir("txn-0");
    assert!(t.iter().any(|(e, _)| e.control_type == Some(0)));
    assert!(t.iter().any(|(e, _)| e.control_type == Some(1)));
    assert!(t.iter().any(|(e, _)| e.attrs & 0x30 == 0x10));
    // snappy-raw-0: no xerial header.
    for (_, b) in walk_dir("snappy-raw-0") {
        assert_eq!(b[22] & 7, 2);
        assert_ne!(&b[61..69], b"\x82SNAPPY\x00");
    }
    for (_, b) in walk_dir("snappy-0") {
        assert_eq!(&b[61..69], b"\x82SNAPPY\x00");
    }
    // plain-0: two leader epochs in the batches.
    let epochs: Vec<i32> = walk_dir("plain-0")
        .iter()
        .map(|(_, b)| i32_at(b, 12))
        .collect();
    assert!(epochs.contains(&0) && epochs.contains(&2));
    // KRaft snapshot: header first, footer last.
    let dir = logs.join("cluster-metadata-0");
    let cp = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "checkpoint"))
        .unwrap();
    let (entries, _) = walk(&fs::read(cp).unwrap());
    assert_eq!(entries.first().unwrap().control_type, Some(3));
    assert_eq!(entries.last().unwrap().control_type, Some(4));
}

#[test]
fn log_dir_checkpoints_list_the_partitions() {
    let m = manifest();
    let logs = data().join("logs");
    for f in [
        "recovery-point-offset-checkpoint",
        "replication-offset-checkpoint",
    ] {
        let s = fs::read_to_string(logs.join(f)).unwrap();
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines[0], "0");
        let entries: BTreeMap<String, i64> = lines[2..]
            .iter()
            .map(|l| {
                let v: Vec<&str> = l.split(' ').collect();
                (format!("{}-{}", v[0], v[1]), v[2].parse().unwrap())
            })
            .collect();
        assert_eq!(entries.len(), lines[1].parse::<usize>().unwrap());
        for (name, p) in m["partitions"].as_object().unwrap() {
            if name == "cluster-metadata-0" {
                continue;
            }
            let off = entries[name];
            assert!(off <= p["log_end_offset"].as_i64().unwrap());
        }
    }
    assert!(logs.join("meta.properties").exists());
}

#[test]
fn regenerating_reproduces_identical_bytes() {
    let tmp = std::env::temp_dir().join(format!("drkit-testdata-{}", std::process::id()));
    drkit_testdata::write_all(&tmp).unwrap();
    let mut files = vec![];
    fn collect(d: &Path, out: &mut Vec<PathBuf>) {
        for e in fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                collect(&p, out);
            } else {
                out.push(p);
            }
        }
    }
    collect(&tmp, &mut files);
    for f in &files {
        let rel = f.strip_prefix(&tmp).unwrap();
        let committed = fs::read(data().join(rel)).unwrap_or_default();
        assert!(
            committed == fs::read(f).unwrap(),
            "{} differs from a fresh run",
            rel.display()
        );
    }
    fs::remove_dir_all(&tmp).unwrap();
}

#[test]
fn bench_output_decodes_and_its_indexes_follow_the_rules() {
    use drkit_testdata::bench::{write_bench, BenchConfig};
    use kafka_protocol::records::Compression;
    for (codec, compression) in [("none", Compression::None), ("snappy", Compression::Snappy)] {
        let out = std::env::temp_dir().join(format!(
            "drkit-bench-{}-{codec}/bench-0",
            std::process::id()
        ));
        let summary = write_bench(&BenchConfig {
            out: out.clone(),
            segment_bytes: 64 * 1024,
            segments: 3,
            compression,
            batch_records: 10,
        })
        .unwrap();
        let mut logs: Vec<PathBuf> = fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
            .collect();
        logs.sort();
        assert_eq!(logs.len(), 3);
        let mut records = 0;
        let mut next = 0;
        for (i, log) in logs.iter().enumerate() {
            let (entries, decoded) = walk(&fs::read(log).unwrap());
            records += decoded;
            assert_eq!(entries[0].first, next, "segments are contiguous");
            next = entries.last().unwrap().last + 1;
            let base = entries[0].first;
            let idx = read_index(&log.with_extension("index"), base, 8, 0);
            let tidx = read_index(&log.with_extension("timeindex"), base, 12, 0);
            let (eidx, etidx) = per_batch_indexes(&entries, true);
            assert_eq!(idx, eidx, "bench segment {i} index");
            assert_eq!(tidx, etidx, "bench segment {i} timeindex");
            assert!(idx.len() > 3 || codec != "none");
        }
        assert_eq!(summary["records"].as_u64().unwrap(), records);
        fs::remove_dir_all(out.parent().unwrap()).unwrap();
    }
}
