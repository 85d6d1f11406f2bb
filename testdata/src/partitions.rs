//! The committed partition directories, one builder each. Every builder is deterministic: fixed
//! seeds, fixed timestamps from [`BASE_TIMESTAMP_MS`].

use std::collections::BTreeMap;

use anyhow::{ensure, Result};
use kafka_protocol::records::Compression;
use serde_json::json;

use crate::legacy::{self, Msg};
use crate::log::{Partition, Shallow, Shutdown};
use crate::rng::{Rng, Telemetry, BASE_TIMESTAMP_MS};
use crate::v2::{self, BatchProps, Rec};

/// A deterministic 16-byte topic id derived from the partition name.
fn topic_id(name: &str) -> [u8; 16] {
    let mut rng = Rng::new(name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    }));
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&rng.next_u64().to_be_bytes());
    id[8..].copy_from_slice(&rng.next_u64().to_be_bytes());
    id
}

/// Telemetry records for offsets `first..first+n`, advancing `*ts` by 100-900 ms per record.
fn telemetry_recs(
    tel: &mut Telemetry,
    first: i64,
    n: usize,
    ts: &mut i64,
    header: bool,
) -> Vec<Rec> {
    (0..n)
        .map(|i| {
            *ts += tel.rng().range(100, 900) as i64;
            let e = tel.event(*ts);
            Rec {
                offset: first + i as i64,
                timestamp: e.timestamp_ms,
                key: Some(e.key.into_bytes()),
                value: Some(e.value.into_bytes()),
                headers: if header {
                    vec![("source".into(), Some(b"edge-gw-1".to_vec()))]
                } else {
                    vec![]
                },
            }
        })
        .collect()
}

/// Per-producer sequence bookkeeping for idempotent producers.
#[derive(Default)]
struct Sequences(BTreeMap<i64, i32>);

impl Sequences {
    fn take(&mut self, pid: i64, n: usize) -> i32 {
        let s = self.0.entry(pid).or_insert(0);
        let base = *s;
        *s += n as i32;
        base
    }
}

/// `plain-0`: uncompressed telemetry from three idempotent producers, three segments rolled at
/// 24 KiB, leader epoch 0 then 2 (epoch 1 never led this partition), snapshots at each roll.
pub fn plain() -> Result<Partition> {
    let mut p = Partition::new("plain-0", 24 * 1024);
    p.topic_id = Some(topic_id("plain"));
    let mut tel = Telemetry::new(1, 8);
    let mut seq = Sequences::default();
    let mut ts = BASE_TIMESTAMP_MS;
    let mut i = 0;
    while p.segments.len() < 3 || p.active_size() < 12 * 1024 {
        let n = tel.rng().range(1, 20) as usize;
        let pid = 1000 + tel.rng().range(0, 2) as i64;
        let epoch = if p.next_offset() < 100 { 0 } else { 2 };
        let first = p.next_offset();
        let recs = telemetry_recs(&mut tel, first, n, &mut ts, i % 5 == 4);
        let props = BatchProps::idempotent(epoch, pid, 0, seq.take(pid, n), Compression::None);
        p.append(vec![Shallow::v2(v2::encode(&props, &recs)?)]);
        i += 1;
    }
    Ok(p)
}

/// A two-segment partition of telemetry in one codec. `raw_snappy` re-frames each batch as a
/// single raw snappy block (librdkafka's form, from a non-idempotent producer); the others come
/// from one idempotent producer through kafka-protocol's own compressor.
pub fn codec(
    name: &str,
    compression: Compression,
    raw_snappy: bool,
    seed: u64,
) -> Result<Partition> {
    let mut p = Partition::new(name, 12 * 1024);
    p.topic_id = Some(topic_id(name.trim_end_matches("-0")));
    let mut tel = Telemetry::new(seed, 6);
    let mut seq = Sequences::default();
    let mut ts = BASE_TIMESTAMP_MS;
    while p.segments.len() < 2 || p.active_size() < 6 * 1024 {
        let n = tel.rng().range(1, 20) as usize;
        let first = p.next_offset();
        let recs = telemetry_recs(&mut tel, first, n, &mut ts, false);
        let batch = if raw_snappy {
            let props = BatchProps::plain(0, Compression::None);
            v2::to_raw_snappy(&v2::encode(&props, &recs)?)?
        } else {
            let props = BatchProps::idempotent(0, 2000, 0, seq.take(2000, n), compression);
            v2::encode(&props, &recs)?
        };
        p.append(vec![Shallow::v2(batch)]);
    }
    Ok(p)
}

/// `txn-0`: two transactional producers with overlapping transactions, COMMIT and ABORT markers,
/// an idempotent non-transactional producer in between, two segments, .txnindex entries.
pub fn txn() -> Result<Partition> {
    const A: i64 = 3000;
    const B: i64 = 3001;
    const C: i64 = 3002;
    const COORD_EPOCH: i32 = 5;
    let mut p = Partition::new("txn-0", 20 * 1024);
    p.topic_id = Some(topic_id("txn"));
    let mut tel = Telemetry::new(3, 5);
    let mut seq = Sequences::default();
    let mut ts = BASE_TIMESTAMP_MS;
    let epochs = BTreeMap::from([(A, 1i16), (B, 0), (C, 0)]);
    let mut data = |p: &mut Partition, tel: &mut Telemetry, pid: i64, ts: &mut i64| -> Result<()> {
        let n = tel.rng().range(1, 8) as usize;
        let first = p.next_offset();
        let recs = telemetry_recs(tel, first, n, ts, false);
        let mut props =
            BatchProps::idempotent(0, pid, epochs[&pid], seq.take(pid, n), Compression::None);
        props.transactional = pid != C;
        p.append(vec![Shallow::v2(v2::encode(&props, &recs)?)]);
        Ok(())
    };
    let marker = |p: &mut Partition, pid: i64, kind: i16, ts: &mut i64| -> Result<()> {
        *ts += 50;
        let props = BatchProps {
            leader_epoch: 0,
            producer_id: pid,
            producer_epoch: epochs[&pid],
            base_sequence: -1,
            transactional: true,
            control: true,
            delete_horizon: false,
            compression: Compression::None,
        };
        let rec = v2::marker_record(p.next_offset(), *ts, kind, COORD_EPOCH);
        p.append(vec![Shallow::v2_marker(
            v2::encode(&props, &[rec])?,
            kind,
            COORD_EPOCH,
        )]);
        Ok(())
    };
    for round in 0..14 {
        for _ in 0..=round % 3 {
            data(&mut p, &mut tel, A, &mut ts)?;
        }
        if round % 2 == 0 {
            data(&mut p, &mut tel, B, &mut ts)?;
        }
        data(&mut p, &mut tel, C, &mut ts)?;
        let a_kind = if round % 3 == 1 {
            v2::CONTROL_ABORT
        } else {
            v2::CONTROL_COMMIT
        };
        marker(&mut p, A, a_kind, &mut ts)?;
        if round % 2 == 0 {
            data(&mut p, &mut tel, B, &mut ts)?;
            let b_kind = if round % 4 == 2 {
                v2::CONTROL_ABORT
            } else {
                v2::CONTROL_COMMIT
            };
            marker(&mut p, B, b_kind, &mut ts)?;
        }
    }
    ensure!(p.segments.len() >= 2, "txn-0 should roll");
    Ok(p)
}

/// `compacted-0`: a keyed topic after the log cleaner ran over its two older segments. The
/// original log comes from two idempotent producers; cleaning keeps the latest record per key,
/// keeps each rebuilt batch's original first/last offsets (so record counts fall below
/// lastOffsetDelta+1), keeps an empty batch for a producer whose last batch lost every record, and
/// sets the delete horizon on rebuilt batches that keep a tombstone. Each cleaned segment is one
/// cleaner append, so its .index is empty and its .timeindex holds only the roll entry.
pub fn compacted() -> Result<Partition> {
    const P1: i64 = 4000;
    const P2: i64 = 4001;
    let mut tel = Telemetry::new(4, 30);
    let keys: Vec<String> = tel.assets().to_vec();
    let mut seq = Sequences::default();
    let mut ts = BASE_TIMESTAMP_MS;
    // Original batches: (props, records).
    let mut orig: Vec<(BatchProps, Vec<Rec>)> = vec![];
    let mut next = 0i64;
    let mut bi = 0;
    while next < 300 {
        // P2 writes a few batches early on and stops, so its last batch ends up fully superseded.
        let pid = if bi % 6 == 3 && next < 150 { P2 } else { P1 };
        let n = tel.rng().range(1, 8) as usize;
        let recs: Vec<Rec> = (0..n)
            .map(|i| {
                ts += tel.rng().range(200, 2000) as i64;
                // Early records use all 30 keys, later ones only the first 12, so the keys
                // 12..30 keep their early records and the oldest segment is not emptied.
                let pool = if next < 60 { keys.len() } else { 12 };
                let k = keys[tel.rng().range(0, pool as u64 - 1) as usize].clone();
                let tombstone = next > 60 && tel.rng().range(0, 12) == 0;
                let e = tel.event_for(k.clone(), ts);
                Rec {
                    offset: next + i as i64,
                    timestamp: ts,
                    key: Some(k.into_bytes()),
                    value: (!tombstone).then(|| e.value.into_bytes()),
                    headers: vec![],
                }
            })
            .collect();
        let props = BatchProps::idempotent(0, pid, 0, seq.take(pid, n), Compression::None);
        next += n as i64;
        orig.push((props, recs));
        bi += 1;
    }
    // Original segment boundaries: roll at the first batch starting at or after 120 and 240.
    let seg_of = |first: i64| -> usize { usize::from(first >= 120) + usize::from(first >= 240) };
    let seg_base = |s: usize| -> i64 {
        orig.iter()
            .map(|b| b.1[0].offset)
            .find(|&o| seg_of(o) == s)
            .unwrap_or(0)
    };
    let bases = [0, seg_base(1), seg_base(2)];
    // Offset map over the dirty range (segments 0 and 1): latest offset per key.
    let mut latest: BTreeMap<Vec<u8>, i64> = BTreeMap::new();
    for (_, recs) in orig.iter().filter(|b| seg_of(b.1[0].offset) < 2) {
        for r in recs {
            latest.insert(r.key.clone().unwrap_or_default(), r.offset);
        }
    }
    let last_batch_of = |pid: i64| -> Option<i64> {
        orig.iter()
            .filter(|b| b.0.producer_id == pid)
            .map(|b| b.1[0].offset)
            .next_back()
    };
    let clean_time = ts + 60_000;
    let horizon = clean_time + 86_400_000; // delete.retention.ms default, 24 h
    let mut p = Partition::new("compacted-0", usize::MAX);
    p.topic_id = Some(topic_id("compacted"));
    let mut empties = 0;
    let mut horizons = 0;
    let mut partial = 0;
    for (s, &base) in bases.iter().enumerate() {
        if s > 0 {
            p.roll(base);
        }
        let mut chunk = vec![];
        for (props, recs) in orig.iter().filter(|b| seg_of(b.1[0].offset) == s) {
            let first = recs[0].offset;
            let last = recs[recs.len() - 1].offset;
            let batch = v2::encode(props, recs)?;
            if s == 2 {
                // The active segment is never cleaned: the leader's one-batch appends.
                p.append_no_roll(vec![Shallow::v2(batch)]);
                continue;
            }
            let kept: Vec<Rec> = recs
                .iter()
                .filter(|r| latest.get(r.key.as_deref().unwrap_or_default()) == Some(&r.offset))
                .cloned()
                .collect();
            let has_tombstone = kept.iter().any(|r| r.value.is_none());
            if kept.len() == recs.len() && !has_tombstone {
                chunk.push(Shallow::v2(batch));
            } else if kept.is_empty() {
                if last_batch_of(props.producer_id) == Some(first) {
                    let max_ts = recs.iter().map(|r| r.timestamp).max().unwrap_or(-1);
                    chunk.push(Shallow::v2(v2::empty_batch(props, first, last, max_ts)?));
                    empties += 1;
                }
            } else {
                let mut props = *props;
                props.base_sequence += (kept[0].offset - first) as i32;
                props.delete_horizon = has_tombstone;
                let rebuilt = v2::encode(&props, &kept)?;
                let base_ts = if has_tombstone {
                    horizons += 1;
                    horizon
                } else {
                    kept.iter().map(|r| r.timestamp).min().unwrap_or(-1)
                };
                chunk.push(Shallow::v2(v2::rebase(&rebuilt, first, last, base_ts)?));
                partial += 1;
            }
        }
        if !chunk.is_empty() {
            p.append_no_roll(chunk);
        }
    }
    // Producer snapshots were taken at the original rolls, before any cleaning, so they describe
    // the original log: replay it to get them.
    let mut original = Partition::new("original", usize::MAX);
    for (props, recs) in &orig {
        let first = recs[0].offset;
        if bases[1..].contains(&first) {
            original.roll(first);
        }
        original.append_no_roll(vec![Shallow::v2(v2::encode(props, recs)?)]);
    }
    p.snapshots = original.snapshots;
    // The leader epoch cache remembers where epoch 0 began when the records were produced, not
    // where the first record that survived cleaning sits.
    p.leader_epochs = vec![(0, 0)];
    ensure!(
        empties > 0 && horizons > 0 && partial > 0,
        "compacted-0 lacks a case: empty {empties} horizon {horizons} partial {partial}"
    );
    Ok(p)
}

/// `legacy-v0-0` / `legacy-v1-0`: message sets of magic 0 or 1, two segments, appends that mix
/// several uncompressed messages per produce request with gzip, snappy (xerial) and lz4 wrappers.
pub fn legacy(magic: u8) -> Result<Partition> {
    let name = format!("legacy-v{magic}-0");
    let mut p = Partition::new(&name, 16 * 1024);
    p.topic_id = Some(topic_id(&format!("legacy-v{magic}")));
    let mut tel = Telemetry::new(10 + u64::from(magic), 6);
    let mut ts = BASE_TIMESTAMP_MS;
    let mut round = 0;
    while p.segments.len() < 2 || p.active_size() < 8 * 1024 {
        let codec = [0u8, 1, 0, 2, 3][round % 5];
        let n = if codec == 0 {
            tel.rng().range(2, 6)
        } else {
            tel.rng().range(3, 15)
        } as usize;
        let first = p.next_offset();
        let msgs: Vec<Msg> = (0..n)
            .map(|i| {
                ts += tel.rng().range(100, 900) as i64;
                let e = tel.event(ts);
                Msg {
                    offset: first + i as i64,
                    timestamp: ts,
                    key: Some(e.key.into_bytes()),
                    value: Some(e.value.into_bytes()),
                }
            })
            .collect();
        let append = if codec == 0 {
            msgs.iter()
                .map(|m| {
                    Shallow::legacy(
                        legacy::plain(magic, m),
                        magic,
                        m.offset,
                        m.offset,
                        m.timestamp,
                        1,
                        0,
                    )
                })
                .collect()
        } else {
            let w = legacy::wrapper(magic, codec, &msgs)?;
            let last = msgs[n - 1].offset;
            let max_ts = msgs.iter().map(|m| m.timestamp).max().unwrap_or(-1);
            vec![Shallow::legacy(
                w, magic, first, last, max_ts, n as u64, codec,
            )]
        };
        p.append(append);
        round += 1;
    }
    Ok(p)
}

/// `active-0`: a running broker's partition: one rolled segment with trimmed indexes, and the
/// active segment whose .index/.timeindex still carry zero-filled preallocated space after their
/// entries (4 KiB here; tests extend them to the real 10 MiB with set_len).
pub fn active() -> Result<Partition> {
    let mut p = Partition::new("active-0", 16 * 1024);
    p.topic_id = Some(topic_id("active"));
    p.shutdown = Shutdown::Preallocated(4096);
    let mut tel = Telemetry::new(5, 4);
    let mut seq = Sequences::default();
    let mut ts = BASE_TIMESTAMP_MS;
    while p.segments.len() < 2 || p.active_size() < 10 * 1024 {
        let n = tel.rng().range(1, 20) as usize;
        let first = p.next_offset();
        let recs = telemetry_recs(&mut tel, first, n, &mut ts, false);
        let props = BatchProps::idempotent(3, 5000, 0, seq.take(5000, n), Compression::None);
        p.append(vec![Shallow::v2(v2::encode(&props, &recs)?)]);
    }
    Ok(p)
}

fn compact_string(out: &mut Vec<u8>, s: &str) {
    uvarint(out, s.len() as u64 + 1);
    out.extend_from_slice(s.as_bytes());
}

fn uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A KRaft metadata record value: frame version 1, apiKey, version, then the message body.
fn metadata_record(api_key: u64, body: &[u8]) -> Vec<u8> {
    let mut out = vec![1];
    uvarint(&mut out, api_key);
    uvarint(&mut out, 0);
    out.extend_from_slice(body);
    out
}

fn feature_level_record(name: &str, level: i16) -> Vec<u8> {
    let mut b = vec![];
    compact_string(&mut b, name);
    b.extend_from_slice(&level.to_be_bytes());
    b.push(0); // tagged fields
    metadata_record(12, &b)
}

fn topic_record(name: &str) -> Vec<u8> {
    let mut b = vec![];
    compact_string(&mut b, name);
    b.extend_from_slice(&topic_id(name));
    b.push(0);
    metadata_record(2, &b)
}

/// `cluster-metadata-0`: a KRaft metadata log (LEADER_CHANGE control batch, metadata record
/// batches) and a snapshot `<offset>-<epoch>.checkpoint` framed by SNAPSHOT_HEADER and
/// SNAPSHOT_FOOTER control batches.
pub fn cluster_metadata(topics: &[&str]) -> Result<Partition> {
    const EPOCH: i32 = 1;
    let mut p = Partition::new("cluster-metadata-0", 1 << 20);
    let mut ts = BASE_TIMESTAMP_MS - 60_000;
    let mut props = BatchProps::plain(EPOCH, Compression::None);
    // LEADER_CHANGE: version 0, leaderId 1, voters [1], grantingVoters [1], no tagged fields.
    let leader_change = vec![0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 1, 0, 2, 0, 0, 0, 1, 0, 0];
    props.control = true;
    let rec = v2::control_record(0, ts, v2::CONTROL_LEADER_CHANGE, leader_change);
    p.append(vec![Shallow::v2(v2::encode(&props, &[rec])?)]);
    props.control = false;
    let mut values = vec![feature_level_record("metadata.version", 21)];
    values.extend(topics.iter().map(|t| topic_record(t)));
    for chunk in values.chunks(3) {
        let first = p.next_offset();
        let recs: Vec<Rec> = chunk
            .iter()
            .enumerate()
            .map(|(i, v)| {
                ts += 500;
                Rec {
                    offset: first + i as i64,
                    timestamp: ts,
                    key: None,
                    value: Some(v.clone()),
                    headers: vec![],
                }
            })
            .collect();
        p.append(vec![Shallow::v2(v2::encode(&props, &recs)?)]);
    }
    // The snapshot covers everything written so far: its id is (end offset, epoch).
    let end = p.next_offset();
    let mut snap = vec![];
    let mut off = 0i64;
    let mut control = props;
    control.control = true;
    // SnapshotHeaderRecord: version 0, lastContainedLogTimestamp, no tagged fields.
    let mut header = vec![0, 0];
    header.extend_from_slice(&ts.to_be_bytes());
    header.push(0);
    snap.extend(v2::encode(
        &control,
        &[v2::control_record(
            off,
            ts,
            v2::CONTROL_SNAPSHOT_HEADER,
            header,
        )],
    )?);
    off += 1;
    let mut batches = 2;
    let mut records = 2;
    for chunk in values.chunks(4) {
        let recs: Vec<Rec> = chunk
            .iter()
            .enumerate()
            .map(|(i, v)| Rec {
                offset: off + i as i64,
                timestamp: ts,
                key: None,
                value: Some(v.clone()),
                headers: vec![],
            })
            .collect();
        snap.extend(v2::encode(&props, &recs)?);
        off += chunk.len() as i64;
        batches += 1;
        records += chunk.len();
    }
    // SnapshotFooterRecord: version 0, no tagged fields.
    snap.extend(v2::encode(
        &control,
        &[v2::control_record(
            off,
            ts,
            v2::CONTROL_SNAPSHOT_FOOTER,
            vec![0, 0, 0],
        )],
    )?);
    let file = format!("{end:020}-{EPOCH:010}.checkpoint");
    p.extra_manifest.push(json!({
        "file": file, "kind": "kraft_snapshot", "batches": batches, "records": records,
        "control_batches": 2, "first_offset": 0, "last_offset": off, "bytes": snap.len(),
    }));
    p.extra_files.push((file, snap));
    p.extra_files.push((
        "quorum-state".into(),
        br#"{"clusterId":"","leaderId":1,"leaderEpoch":1,"votedId":-1,"appliedOffset":0,"currentVoters":[{"voterId":1}],"data_version":0}"#.to_vec(),
    ));
    Ok(p)
}
