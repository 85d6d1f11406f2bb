//! `drkit segments dump` against real broker data: its lines must say what the bytes say, keep
//! DumpLogSegments' wording, survive corruption and closed pipes, and keep the JSON schema doc in
//! step. Tests skip (and say so) when ../shared/kafka-real is absent.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn real() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/kafka-real");
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!("skipping: {} is absent", p.display());
        None
    }
}

fn drkit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_drkit"))
        .args(args)
        .output()
        .expect("run drkit")
}

fn dump(args: &[&str], file: &Path) -> (String, i32) {
    let mut all = vec!["segments", "dump"];
    all.extend_from_slice(args);
    let f = file.to_str().unwrap();
    all.push(f);
    let out = drkit(&all);
    (
        String::from_utf8(out.stdout).expect("utf-8 output"),
        out.status.code().unwrap_or(-1),
    )
}

/// `key: value` pairs of a DumpLogSegments-style line (values never contain spaces there).
fn fields(line: &str) -> HashMap<String, String> {
    let words: Vec<&str> = line.split(' ').collect();
    let mut m = HashMap::new();
    let mut i = 0;
    while i + 1 < words.len() {
        if let Some(k) = words[i].strip_suffix(':') {
            m.insert(k.to_string(), words[i + 1].to_string());
            i += 2;
        } else {
            i += 1;
        }
    }
    m
}

/// A magic 2 batch header decoded by hand (independently of segment-reader).
#[derive(Debug)]
struct Header {
    position: usize,
    size: usize,
    base_offset: i64,
    leader_epoch: i32,
    magic: i8,
    crc: u32,
    attributes: i16,
    last_offset_delta: i32,
    max_timestamp: i64,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    count: i32,
}

fn headers(data: &[u8]) -> Vec<Header> {
    let be = |at: usize, n: usize| -> i64 {
        data[at..at + n]
            .iter()
            .fold(0i64, |v, b| (v << 8) | *b as i64)
    };
    let mut pos = 0;
    let mut out = Vec::new();
    while pos + 61 <= data.len() {
        let size = 12 + be(pos + 8, 4) as usize;
        if pos + size > data.len() {
            break;
        }
        out.push(Header {
            position: pos,
            size,
            base_offset: be(pos, 8),
            leader_epoch: be(pos + 12, 4) as i32,
            magic: data[pos + 16] as i8,
            crc: be(pos + 17, 4) as u32,
            attributes: be(pos + 21, 2) as i16,
            last_offset_delta: be(pos + 23, 4) as i32,
            max_timestamp: be(pos + 35, 8),
            producer_id: be(pos + 43, 8),
            producer_epoch: be(pos + 51, 2) as i16,
            base_sequence: be(pos + 53, 4) as i32,
            count: be(pos + 57, 4) as i32,
        });
        pos += size;
    }
    out
}

fn batch_lines(text: &str) -> Vec<HashMap<String, String>> {
    text.lines()
        .filter(|l| l.starts_with("baseOffset: "))
        .map(fields)
        .collect()
}

fn check_batch_lines(log: &Path) {
    let data = std::fs::read(log).unwrap();
    let want = headers(&data);
    assert!(!want.is_empty(), "{}", log.display());
    let (text, code) = dump(&[], log);
    assert_eq!(code, 0, "{}:\n{text}", log.display());
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], format!("Dumping {}", log.display()));
    assert_eq!(lines[1], "Log starting offset: 0");
    let got = batch_lines(&text);
    assert_eq!(got.len(), want.len(), "{}", log.display());
    let codecs = ["none", "gzip", "snappy", "lz4", "zstd"];
    for (g, h) in got.iter().zip(&want) {
        let ts_type = if h.attributes & 8 != 0 {
            "LogAppendTime"
        } else {
            "CreateTime"
        };
        let last_seq = if h.base_sequence == -1 {
            -1
        } else {
            h.base_sequence + h.last_offset_delta
        };
        let expect = [
            ("baseOffset", h.base_offset.to_string()),
            (
                "lastOffset",
                (h.base_offset + h.last_offset_delta as i64).to_string(),
            ),
            ("count", h.count.to_string()),
            ("baseSequence", h.base_sequence.to_string()),
            ("lastSequence", last_seq.to_string()),
            ("producerId", h.producer_id.to_string()),
            ("producerEpoch", h.producer_epoch.to_string()),
            ("partitionLeaderEpoch", h.leader_epoch.to_string()),
            ("isTransactional", (h.attributes & 0x10 != 0).to_string()),
            ("isControl", (h.attributes & 0x20 != 0).to_string()),
            ("position", h.position.to_string()),
            (ts_type, h.max_timestamp.to_string()),
            ("size", h.size.to_string()),
            ("magic", h.magic.to_string()),
            (
                "compresscodec",
                codecs[(h.attributes & 7) as usize].to_string(),
            ),
            ("crc", h.crc.to_string()),
            ("isvalid", "true".to_string()),
        ];
        for (k, v) in expect {
            assert_eq!(g.get(k), Some(&v), "{k} at position {}", h.position);
        }
        if h.attributes & 0x40 == 0 {
            assert_eq!(g["deleteHorizonMs"], "OptionalLong.empty");
        }
    }
}

#[test]
fn batch_lines_say_what_the_bytes_say() {
    let Some(root) = real() else { return };
    for rel in [
        "zk-broker-2020/__consumer_offsets-39/00000000000000000000.log",
        "seanorth__kafka-server/kafka-logs/some-topic-0/00000000000000000000.log",
        "mscaldas2012__kafka-connect-spooldir/kafka-data/__consumer_offsets-37/00000000000000000000.log",
    ] {
        let p = root.join(rel);
        if p.is_file() {
            check_batch_lines(&p);
        }
    }
}

#[test]
fn offsets_decoder_prints_group_names() {
    let Some(root) = real() else { return };
    let log = root.join("zk-broker-2020/__consumer_offsets-39/00000000000000000000.log");
    let data = std::fs::read(&log).unwrap();
    let (text, code) = dump(&["--decoder", "offsets"], &log);
    assert_eq!(code, 0);
    let records: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("| offset: "))
        .collect();
    let total: i64 = batch_lines(&text)
        .iter()
        .filter(|b| b["isControl"] == "false")
        .map(|b| b["count"].parse::<i64>().unwrap())
        .sum();
    assert_eq!(records.len() as i64, total);
    let mut groups = std::collections::BTreeSet::new();
    for r in &records {
        let at = r
            .find(" key: {\"type\":\"")
            .unwrap_or_else(|| panic!("{r}"));
        let g = r[at..]
            .split("\"group\":\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap_or_else(|| panic!("no group in {r}"));
        groups.insert(g.to_string());
        assert!(r.contains(" payload: "), "{r}");
    }
    assert!(!groups.is_empty());
    for g in &groups {
        // Each name really is in the file, length-prefixed as a Kafka string.
        let mut needle = (g.len() as u16).to_be_bytes().to_vec();
        needle.extend(g.as_bytes());
        assert!(data.windows(needle.len()).any(|w| w == needle), "{g}");
    }

    // JSON Lines: every record has its decoded key, snake_case.
    let (json, code) = dump(&["--decoder", "offsets", "--format", "json"], &log);
    assert_eq!(code, 0);
    let mut n = 0;
    for line in json.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if v["type"] == "record" {
            n += 1;
            let g = v["key"]["group"]
                .as_str()
                .unwrap_or_else(|| panic!("{line}"));
            assert!(groups.contains(g), "{g}");
            assert!(v["decode_error"].is_null(), "{line}");
            assert!(v["key"]["record_kind"].is_string());
        }
    }
    assert_eq!(n, records.len());
}

fn temp_copy(src: &Path) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join(src.file_name().unwrap());
    // read + write rather than copy: the shared data is read-only and copy keeps permissions.
    std::fs::write(&dst, std::fs::read(src).unwrap()).unwrap();
    (dir, dst)
}

#[test]
fn corrupt_batch_does_not_stop_the_dump() {
    let Some(root) = real() else { return };
    let src = root.join("zk-broker-2020/__consumer_offsets-39/00000000000000000000.log");
    let (_dir, log) = temp_copy(&src);
    let mut data = std::fs::read(&log).unwrap();
    let batches = headers(&data);
    let mid = &batches[batches.len() / 2];
    // A byte inside the CRC-covered part (producer id): the batch is intact in shape but invalid.
    data[mid.position + 45] ^= 0xFF;
    std::fs::write(&log, &data).unwrap();

    let (text, code) = dump(&[], &log);
    assert_eq!(code, 1, "{text}");
    let lines = batch_lines(&text);
    assert_eq!(lines.len(), batches.len(), "every batch still has its line");
    let bad: Vec<_> = lines.iter().filter(|l| l["isvalid"] == "false").collect();
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0]["position"], mid.position.to_string());
    let skipped = text
        .lines()
        .find(|l| l.starts_with("Skipped "))
        .expect("a skipped line");
    assert!(
        skipped.contains(&format!("{}..{}", mid.position, mid.position + mid.size)),
        "{skipped}"
    );
    assert!(skipped.contains("crc_mismatch"), "{skipped}");
    // Everything after the damage is there, in order.
    let last = batches.last().unwrap();
    assert_eq!(
        lines.last().unwrap()["baseOffset"],
        last.base_offset.to_string()
    );
    for (l, h) in lines.iter().zip(&batches).skip(batches.len() / 2 + 1) {
        assert_eq!(l["position"], h.position.to_string());
        assert_eq!(l["isvalid"], "true");
    }

    let (json, code) = dump(&["--format", "json"], &log);
    assert_eq!(code, 1);
    let skipped: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["type"] == "skipped")
        .collect();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0]["kind"], "crc_mismatch");
    assert_eq!(skipped[0]["position"], mid.position as u64);
    assert_eq!(skipped[0]["size_bytes"], mid.size as u64);
    assert_eq!(skipped[0]["offset"], mid.base_offset);
}

#[test]
fn closed_pipe_is_not_an_error() {
    let Some(root) = real() else { return };
    // Enough output (megabytes) to overflow the pipe and the BufWriter after one line is read.
    let log = root
        .join("asabou__kafka-demo/data/kafka/data/__consumer_offsets-24/00000000000000000000.log");
    if !log.is_file() {
        return;
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_drkit"))
        .args(["segments", "dump", "--decoder", "offsets"])
        .arg(&log)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    // The reader (and the pipe) are dropped here, like `| head -1`.
    assert!(first.starts_with("Dumping "), "{first}");
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(0), "stderr: {err}");
    assert!(err.is_empty(), "{err}");
}

#[test]
fn preallocated_index_padding_is_one_line() {
    let Some(root) = real() else { return };
    let dir = root.join("MashaKosher__Internship/kafka/data/__consumer_offsets-15");
    for (name, entry) in [
        ("00000000000000001124.index", 8usize),
        ("00000000000000001124.timeindex", 12),
    ] {
        let src = dir.join(name);
        if !src.is_file() {
            continue;
        }
        let (plain, code) = dump(&[], &src);
        assert_eq!(code, 0);
        let real_lines: Vec<&str> = plain.lines().skip(1).collect();
        let real_entries = std::fs::metadata(&src).unwrap().len() as usize / entry;
        assert_eq!(real_lines.len(), real_entries, "{plain}");
        let (_tmp, padded) = temp_copy(&src);
        let mut bytes = std::fs::read(&padded).unwrap();
        bytes.resize(bytes.len() + 1000 * entry, 0);
        std::fs::write(&padded, &bytes).unwrap();
        let (text, code) = dump(&[], &padded);
        assert_eq!(code, 0, "{text}");
        let lines: Vec<&str> = text.lines().skip(1).collect();
        assert_eq!(&lines[..real_entries], &real_lines[..]);
        assert_eq!(lines.len(), real_entries + 1, "{text}");
        assert!(
            lines[real_entries].contains("1000 zero padding entries"),
            "{}",
            lines[real_entries]
        );
        if entry == 8 {
            assert!(real_lines.iter().all(|l| {
                let f = fields(l);
                f.contains_key("offset") && f.contains_key("position")
            }));
        } else {
            assert!(real_lines.iter().all(|l| l.starts_with("timestamp: ")));
        }
    }
}

/// Every JSON line parses, has a documented type, and every type the code can emit is documented.
#[test]
fn json_lines_follow_the_documented_schema() {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/JSON-dump.md"))
            .expect("docs/JSON-dump.md");
    let types = [
        "file",
        "batch",
        "record",
        "index_entry",
        "timeindex_entry",
        "txn_entry",
        "snapshot_entry",
        "skipped",
        "problem",
    ];
    for t in types {
        assert!(
            doc.contains(&format!("## `{t}`")),
            "docs/JSON-dump.md lacks a section for {t}"
        );
    }
    let Some(root) = real() else { return };
    let dir = root.join("MashaKosher__Internship/kafka/data/__consumer_offsets-15");
    let mut args: Vec<String> = [
        "segments",
        "dump",
        "--format",
        "json",
        "--decoder",
        "offsets",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x != "metadata") && p.extension().is_some() {
            args.push(p.display().to_string());
        }
    }
    let out = Command::new(env!("CARGO_BIN_EXE_drkit"))
        .args(&args)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let mut seen = std::collections::BTreeSet::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let t = v["type"]
            .as_str()
            .unwrap_or_else(|| panic!("no type: {line}"));
        assert!(types.contains(&t), "{t}");
        for (k, _) in v.as_object().unwrap() {
            assert!(
                doc.contains(&format!("`{k}`")),
                "field {k} of {t} is not documented"
            );
        }
        seen.insert(t.to_string());
    }
    for t in ["file", "batch", "record", "index_entry", "timeindex_entry"] {
        assert!(seen.contains(t), "{t} not seen: {seen:?}");
    }
}

fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/data/logs")
        .join(rel)
}

fn record_offsets(text: &str) -> Vec<i64> {
    text.lines()
        .filter(|l| l.starts_with("| offset: "))
        .map(|l| fields(l)["offset"].parse().unwrap())
        .collect()
}

#[test]
fn legacy_wrappers_list_their_inner_messages() {
    // Real magic 0 captures: one gzip wrapper holding offsets 0..=41, and a message whose CRC
    // the kafka-rust authors broke on purpose.
    let captures = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/kafka-legacy-captures/extracted-message-sets");
    if captures.is_dir() {
        let gz =
            captures.join("fetch1.mytopic.1p.gzip.kafka.0821/my-topic-0/00000000000000000000.log");
        let (text, code) = dump(&["--records"], &gz);
        assert_eq!(code, 0, "{text}");
        let wrapper = text.lines().find(|l| l.starts_with("offset: ")).unwrap();
        let f = fields(wrapper);
        assert_eq!(f["offset"], "41");
        assert_eq!(f["compresscodec"], "gzip");
        assert_eq!(f["NoTimestampType"], "-1");
        assert_eq!(record_offsets(&text), (0..=41).collect::<Vec<_>>());
        assert!(text
            .lines()
            .filter(|l| l.starts_with("| "))
            .all(|l| l.ends_with('}')));

        let bad = captures
            .join("fetch2.mytopic.nocompression.invalid_crc.kafka.0900/my-topic-0/00000000000000000000.log");
        let (text, code) = dump(&[], &bad);
        assert_eq!(code, 1, "{text}");
        assert!(text.contains("isvalid: false"), "{text}");
        assert!(text.contains("crc_mismatch"), "{text}");
    }
    // Generated magic 1 data with compressed wrappers: every inner message, offsets consecutive.
    let dir = testdata("legacy-v1-0");
    if dir.is_dir() {
        for log in ["00000000000000000000.log", "00000000000000000091.log"] {
            let (text, code) = dump(&["--records"], &dir.join(log));
            assert_eq!(code, 0, "{text}");
            let offsets = record_offsets(&text);
            assert!(!offsets.is_empty());
            assert!(offsets.windows(2).all(|w| w[1] == w[0] + 1), "{offsets:?}");
        }
    }
}

#[test]
fn txn_index_entries_point_at_abort_markers() {
    let dir = testdata("txn-0");
    if !dir.is_dir() {
        eprintln!("skipping: {} is absent", dir.display());
        return;
    }
    let mut checked = 0;
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let idx = e.path();
        if idx.extension() != Some(std::ffi::OsStr::new("txnindex")) {
            continue;
        }
        let (text, code) = dump(&[], &idx);
        assert_eq!(code, 0, "{text}");
        let (log_text, code) = dump(&["--records"], &idx.with_extension("log"));
        assert_eq!(code, 0);
        let aborts: Vec<String> = log_text
            .lines()
            .filter(|l| l.contains(" endTxnMarker: ABORT "))
            .map(|l| fields(l)["offset"].clone())
            .collect();
        let entries: Vec<_> = text.lines().skip(1).map(fields).collect();
        assert_eq!(entries.len(), aborts.len(), "{text}\n{aborts:?}");
        for (t, a) in entries.iter().zip(&aborts) {
            assert_eq!(&t["lastOffset"], a);
            assert_eq!(t["version"], "0");
            for k in ["producerId", "firstOffset", "lastStableOffset"] {
                assert!(t.contains_key(k), "{k}");
            }
        }
        checked += entries.len();
        // The same entries as JSON Lines.
        let (json, _) = dump(&["--format", "json"], &idx);
        let n = json
            .lines()
            .filter(|l| l.contains("\"type\":\"txn_entry\""))
            .count();
        assert_eq!(n, entries.len());
    }
    assert!(checked > 0, "no aborted transactions in {}", dir.display());
}

#[test]
fn snapshot_lines_say_what_the_bytes_say() {
    let dir = testdata("lz4-0");
    let Some(snap) = std::fs::read_dir(&dir).ok().and_then(|rd| {
        rd.flatten().map(|e| e.path()).find(|p| {
            p.extension().is_some_and(|x| x == "snapshot")
                && std::fs::metadata(p).unwrap().len() > 10
        })
    }) else {
        eprintln!(
            "skipping: no producer snapshot with entries in {}",
            dir.display()
        );
        return;
    };
    let data = std::fs::read(&snap).unwrap();
    let be = |at: usize, n: usize| -> i64 {
        data[at..at + n]
            .iter()
            .fold(0i64, |v, b| (v << 8) | *b as i64)
    };
    let (text, code) = dump(&[], &snap);
    assert_eq!(code, 0, "{text}");
    let first = fields(text.lines().nth(1).unwrap());
    // Entry 0 starts at byte 10: producerId i64, epoch i16, lastSequence i32, lastOffset i64,
    // offsetDelta i32, timestamp i64, coordinatorEpoch i32, currentTxnFirstOffset i64.
    assert_eq!(first["producerId"], be(10, 8).to_string());
    assert_eq!(first["producerEpoch"], be(18, 2).to_string());
    assert_eq!(first["lastSequence"], (be(20, 4) as i32).to_string());
    assert_eq!(first["lastOffset"], be(24, 8).to_string());
    assert_eq!(first["offsetDelta"], (be(32, 4) as i32).to_string());
    assert_eq!(first["timestamp"], be(36, 8).to_string());
    assert_eq!(first["lastTimestamp"], be(36, 8).to_string());
    assert_eq!(first["coordinatorEpoch"], (be(44, 4) as i32).to_string());
    assert_eq!(
        first["firstSequence"],
        (be(20, 4) as i32 - be(32, 4) as i32).to_string()
    );
    let count = be(6, 4) as usize;
    assert_eq!(text.lines().count(), 1 + count);
}
