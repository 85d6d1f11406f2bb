//! A partition as a broker leader builds it: appends, segment rolls, indexes, producer state.
//!
//! Index rules follow Apache Kafka's LogSegment.append: an offset index entry (largest offset of
//! the append, position of the append's first batch) and a time index entry (max timestamp so far,
//! shallow offset of that timestamp) are written when more than index.interval.bytes (4096) were
//! appended since the last entry, so an append is never indexed if it follows less than 4 KiB.
//! The time index only grows when the timestamp grows, and one more entry is attempted when a
//! segment rolls or the broker shuts down cleanly. Producer snapshots follow ProducerStateManager:
//! one at each roll, named by the new segment's base offset, plus one at the log end on a clean
//! shutdown.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::{json, Value};

use crate::v2;

/// Kafka's default index.interval.bytes.
pub const INDEX_INTERVAL_BYTES: usize = 4096;

/// One shallow entry of a .log: a magic 2 batch, a legacy message or a legacy wrapper.
#[derive(Debug, Clone)]
pub struct Shallow {
    /// The bytes as they go into the .log.
    pub bytes: Vec<u8>,
    /// First offset (baseOffset for magic 2, first inner offset for a wrapper).
    pub first_offset: i64,
    /// Last offset (the index key).
    pub last_offset: i64,
    /// Largest timestamp (-1 for magic 0).
    pub max_timestamp: i64,
    /// Magic byte.
    pub magic: u8,
    /// recordsCount (magic 2) or number of messages (legacy, inner messages for a wrapper).
    pub records: u64,
    /// Codec bits.
    pub codec: u8,
    /// The marker carried by a control batch: (type, coordinatorEpoch).
    pub marker: Option<(i16, i32)>,
}

impl Shallow {
    /// Wraps a magic 2 batch, reading its facts from the header.
    pub fn v2(bytes: Vec<u8>) -> Self {
        let h = v2::header(&bytes);
        Shallow {
            first_offset: h.base_offset,
            last_offset: h.last_offset,
            max_timestamp: h.max_timestamp,
            magic: 2,
            records: h.records as u64,
            codec: (h.attributes & 7) as u8,
            marker: None,
            bytes,
        }
    }

    /// A COMMIT/ABORT marker batch.
    pub fn v2_marker(bytes: Vec<u8>, kind: i16, coordinator_epoch: i32) -> Self {
        let mut s = Shallow::v2(bytes);
        s.marker = Some((kind, coordinator_epoch));
        s
    }

    /// A legacy message or wrapper.
    pub fn legacy(
        bytes: Vec<u8>,
        magic: u8,
        first_offset: i64,
        last_offset: i64,
        max_timestamp: i64,
        records: u64,
        codec: u8,
    ) -> Self {
        Shallow {
            bytes,
            first_offset,
            last_offset,
            max_timestamp: if magic == 0 { -1 } else { max_timestamp },
            magic,
            records,
            codec,
            marker: None,
        }
    }
}

/// How the last segment was left on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// Clean shutdown: the active segment's indexes are trimmed after a final time index entry,
    /// and a producer snapshot is written at the log end offset.
    Clean,
    /// The broker is still running (or was killed): the active segment's .index and .timeindex
    /// hold their entries followed by this many zero bytes of preallocated space.
    Preallocated(usize),
}

/// One segment being built.
#[derive(Debug, Clone)]
pub struct Segment {
    /// The offset in the file names.
    pub base_offset: i64,
    /// Appends, each one or more shallow entries written in one LogSegment.append call.
    pub appends: Vec<Vec<Shallow>>,
    /// Aborted transactions whose ABORT marker landed in this segment (34-byte .txnindex entries).
    pub aborted: Vec<AbortedTxn>,
    /// Bytes so far.
    pub size: usize,
}

/// A .txnindex entry.
#[derive(Debug, Clone, Copy)]
pub struct AbortedTxn {
    /// Producer of the aborted transaction.
    pub producer_id: i64,
    /// First offset of the transaction.
    pub first_offset: i64,
    /// Offset of the ABORT marker.
    pub last_offset: i64,
    /// Last stable offset when the marker was written.
    pub last_stable_offset: i64,
}

#[derive(Debug, Clone, Copy)]
struct ProducerEntry {
    epoch: i16,
    last_seq: i32,
    last_offset: i64,
    offset_delta: i32,
    timestamp: i64,
    coordinator_epoch: i32,
    txn_first_offset: Option<i64>,
}

/// A partition directory under construction.
#[derive(Debug, Clone)]
pub struct Partition {
    /// Directory name, `<topic>-<partition>`.
    pub name: String,
    /// Roll when an append would make the active segment larger than this (segment.bytes).
    pub segment_bytes: usize,
    /// The segments, oldest first; the last is the active one.
    pub segments: Vec<Segment>,
    /// How the broker left the active segment.
    pub shutdown: Shutdown,
    /// Write leader-epoch-checkpoint (from the epochs seen in magic 2 batches).
    pub leader_epochs: Vec<(i32, i64)>,
    /// Producer snapshots: (offset, file bytes).
    pub snapshots: Vec<(i64, Vec<u8>)>,
    /// Topic id for partition.metadata (None: no such file).
    pub topic_id: Option<[u8; 16]>,
    /// Further files to write into the directory (name, bytes), e.g. a KRaft checkpoint.
    pub extra_files: Vec<(String, Vec<u8>)>,
    /// Manifest facts about extra files.
    pub extra_manifest: Vec<Value>,
    next_offset: i64,
    producers: BTreeMap<i64, ProducerEntry>,
}

impl Partition {
    /// An empty partition whose first segment starts at 0.
    pub fn new(name: &str, segment_bytes: usize) -> Self {
        Partition {
            name: name.to_string(),
            segment_bytes,
            segments: vec![Segment {
                base_offset: 0,
                appends: vec![],
                aborted: vec![],
                size: 0,
            }],
            shutdown: Shutdown::Clean,
            leader_epochs: vec![],
            snapshots: vec![],
            topic_id: None,
            extra_files: vec![],
            extra_manifest: vec![],
            next_offset: 0,
            producers: BTreeMap::new(),
        }
    }

    /// The next offset the leader will assign (log end offset).
    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }

    /// Current active segment size in bytes.
    pub fn active_size(&self) -> usize {
        self.segments.last().map_or(0, |s| s.size)
    }

    /// Rolls to a new segment named `base_offset` and takes a producer snapshot named by it, as
    /// UnifiedLog.roll does (the base offset is the log end offset except when laying out a
    /// cleaned log, whose segments keep their original names).
    pub fn roll(&mut self, base_offset: i64) {
        let snap = self.snapshot_bytes();
        self.snapshots.push((base_offset, snap));
        self.segments.push(Segment {
            base_offset,
            appends: vec![],
            aborted: vec![],
            size: 0,
        });
    }

    /// Appends one leader append (one produce request for one partition), rolling first when the
    /// active segment would exceed segment.bytes.
    pub fn append(&mut self, batches: Vec<Shallow>) {
        let size: usize = batches.iter().map(|b| b.bytes.len()).sum();
        if self.active_size() > 0 && self.active_size() + size > self.segment_bytes {
            self.roll(self.next_offset);
        }
        self.append_no_roll(batches);
    }

    /// Appends without the size check (used to lay out cleaned segments exactly).
    pub fn append_no_roll(&mut self, batches: Vec<Shallow>) {
        for b in &batches {
            self.track(b);
        }
        let size: usize = batches.iter().map(|b| b.bytes.len()).sum();
        let seg = self.segments.last_mut().expect("a segment");
        seg.size += size;
        seg.appends.push(batches);
    }

    fn track(&mut self, b: &Shallow) {
        if b.magic == 2 {
            let h = v2::header(&b.bytes);
            let epoch = crate::v2::be_i32(&b.bytes, 12);
            if self.leader_epochs.last().is_none_or(|&(e, _)| e < epoch) {
                self.leader_epochs.push((epoch, b.first_offset));
            }
            if h.producer_id >= 0 {
                let e = self
                    .producers
                    .entry(h.producer_id)
                    .or_insert(ProducerEntry {
                        epoch: h.producer_epoch,
                        last_seq: -1,
                        last_offset: -1,
                        offset_delta: 0,
                        timestamp: -1,
                        coordinator_epoch: -1,
                        txn_first_offset: None,
                    });
                e.epoch = h.producer_epoch;
                e.timestamp = h.max_timestamp;
                if let Some((kind, coordinator_epoch)) = b.marker {
                    let first = e.txn_first_offset.take();
                    e.coordinator_epoch = coordinator_epoch;
                    if kind == v2::CONTROL_ABORT {
                        // LSO: the first offset of the earliest other ongoing transaction,
                        // else just past the marker (ProducerStateManager.lastStableOffset).
                        let lso = self
                            .producers
                            .iter()
                            .filter(|(&pid, _)| pid != h.producer_id)
                            .filter_map(|(_, p)| p.txn_first_offset)
                            .min()
                            .unwrap_or(b.last_offset + 1);
                        let seg = self.segments.last_mut().expect("a segment");
                        seg.aborted.push(AbortedTxn {
                            producer_id: h.producer_id,
                            first_offset: first.unwrap_or(b.first_offset),
                            last_offset: b.last_offset,
                            last_stable_offset: lso,
                        });
                    }
                } else if h.attributes & 0x20 == 0 {
                    let delta = (b.last_offset - b.first_offset) as i32;
                    e.last_seq = h.base_sequence.wrapping_add(delta);
                    e.last_offset = b.last_offset;
                    e.offset_delta = delta;
                    if h.attributes & 0x10 != 0 && e.txn_first_offset.is_none() {
                        e.txn_first_offset = Some(b.first_offset);
                    }
                }
            }
        }
        self.next_offset = b.last_offset + 1;
    }

    /// A producer snapshot of the current state: version 1, CRC-32C over [6, end), count, then
    /// 46-byte entries in producer id order.
    pub fn snapshot_bytes(&self) -> Vec<u8> {
        let mut out = vec![0, 1, 0, 0, 0, 0];
        out.extend_from_slice(&(self.producers.len() as i32).to_be_bytes());
        for (pid, e) in &self.producers {
            out.extend_from_slice(&pid.to_be_bytes());
            out.extend_from_slice(&e.epoch.to_be_bytes());
            out.extend_from_slice(&e.last_seq.to_be_bytes());
            out.extend_from_slice(&e.last_offset.to_be_bytes());
            out.extend_from_slice(&e.offset_delta.to_be_bytes());
            out.extend_from_slice(&e.timestamp.to_be_bytes());
            out.extend_from_slice(&e.coordinator_epoch.to_be_bytes());
            out.extend_from_slice(&e.txn_first_offset.unwrap_or(-1).to_be_bytes());
        }
        let crc = crc32c::crc32c(&out[6..]);
        out[2..6].copy_from_slice(&crc.to_be_bytes());
        out
    }

    /// Writes the directory under `log_dir` and returns its manifest entry.
    pub fn write(mut self, log_dir: &Path) -> Result<Value> {
        if self.shutdown == Shutdown::Clean {
            let snap = self.snapshot_bytes();
            if self.snapshots.last().map(|s| s.0) != Some(self.next_offset) {
                self.snapshots.push((self.next_offset, snap));
            }
        }
        let dir = log_dir.join(&self.name);
        fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        let mut seg_manifest = vec![];
        let n = self.segments.len();
        for (i, seg) in self.segments.iter().enumerate() {
            let active = i + 1 == n;
            let padding = match (active, self.shutdown) {
                (true, Shutdown::Preallocated(p)) => Some(p),
                _ => None,
            };
            let mut m = write_segment(&dir, seg, padding)?;
            m["active"] = json!(active);
            seg_manifest.push(m);
        }
        for (off, bytes) in &self.snapshots {
            fs::write(dir.join(format!("{off:020}.snapshot")), bytes)?;
        }
        {
            let mut s = format!("0\n{}\n", self.leader_epochs.len());
            for (e, o) in &self.leader_epochs {
                s.push_str(&format!("{e} {o}\n"));
            }
            fs::write(dir.join("leader-epoch-checkpoint"), s)?;
        }
        if let Some(id) = self.topic_id {
            fs::write(
                dir.join("partition.metadata"),
                format!("version: 0\ntopic_id: {}", base64url(&id)),
            )?;
        }
        for (name, bytes) in &self.extra_files {
            fs::write(dir.join(name), bytes)?;
        }
        let sum = |k: &str| -> u64 {
            seg_manifest
                .iter()
                .map(|s| s[k].as_u64().unwrap_or(0))
                .sum()
        };
        let mut codecs: Vec<String> = seg_manifest
            .iter()
            .flat_map(|s| s["codecs"].as_array().cloned().unwrap_or_default())
            .filter_map(|c| c.as_str().map(str::to_string))
            .collect();
        codecs.sort();
        codecs.dedup();
        let mut magics: Vec<u64> = seg_manifest
            .iter()
            .flat_map(|s| s["magic"].as_array().cloned().unwrap_or_default())
            .filter_map(|c| c.as_u64())
            .collect();
        magics.sort();
        magics.dedup();
        let first = seg_manifest.iter().find_map(|s| s["first_offset"].as_i64());
        let last = seg_manifest
            .iter()
            .rev()
            .find_map(|s| s["last_offset"].as_i64());
        Ok(json!({
            "segments": seg_manifest.len(),
            "batches": sum("batches"),
            "records": sum("records"),
            "control_batches": sum("control_batches"),
            "first_offset": first,
            "last_offset": last,
            "log_end_offset": self.next_offset,
            "codecs": codecs,
            "magic": magics,
            "aborted_transactions": sum("txn_index_entries"),
            "snapshots": self.snapshots.iter().map(|(o, b)| json!({
                "file": format!("{o:020}.snapshot"),
                "producers": (b.len() - 10) / 46,
            })).collect::<Vec<_>>(),
            "leader_epochs": self.leader_epochs.iter().map(|(e, o)| json!([e, o])).collect::<Vec<_>>(),
            "files": self.extra_manifest,
            "segment_files": seg_manifest,
        }))
    }
}

/// Index entries derived for one segment.
#[derive(Debug, Clone, Default)]
pub struct Indexes {
    /// (absolute offset, position) entries of the .index.
    pub offsets: Vec<(i64, i64)>,
    /// (timestamp, absolute offset) entries of the .timeindex, before any roll/close entry.
    pub times: Vec<(i64, i64)>,
    /// Max timestamp so far and its shallow offset, for the roll/close entry.
    pub max_ts: (i64, i64),
}

/// Offset and time index entries for a segment, by the LogSegment.append rules.
pub fn derive_indexes(seg: &Segment) -> Indexes {
    let mut offset_entries = vec![];
    let mut time_entries: Vec<(i64, i64)> = vec![];
    let mut since = 0usize;
    let mut pos = 0usize;
    let mut max_ts = (-1i64, -1i64);
    for append in &seg.appends {
        let largest = append.iter().map(|b| b.last_offset).max().unwrap_or(-1);
        for b in append {
            if b.max_timestamp > max_ts.0 {
                max_ts = (b.max_timestamp, b.last_offset);
            }
        }
        if since > INDEX_INTERVAL_BYTES {
            offset_entries.push((largest, pos as i64));
            time_maybe_append(&mut time_entries, max_ts);
            since = 0;
        }
        let size: usize = append.iter().map(|b| b.bytes.len()).sum();
        since += size;
        pos += size;
    }
    Indexes {
        offsets: offset_entries,
        times: time_entries,
        max_ts,
    }
}

/// TimeIndex.maybeAppend: only a strictly larger timestamp makes an entry (an empty index behaves
/// as if its last timestamp were -1, so magic 0 data never gets one).
pub fn time_maybe_append(entries: &mut Vec<(i64, i64)>, e: (i64, i64)) {
    let last = entries.last().map_or(-1, |l| l.0);
    if e.0 > last {
        entries.push(e);
    }
}

fn write_segment(dir: &Path, seg: &Segment, padding: Option<usize>) -> Result<Value> {
    let base = seg.base_offset;
    let mut log = Vec::with_capacity(seg.size);
    let mut batches = 0u64;
    let mut records = 0u64;
    let mut controls = 0u64;
    let mut codecs = vec![];
    let mut magics = vec![];
    let mut first = None;
    let mut last = None;
    for b in seg.appends.iter().flatten() {
        log.extend_from_slice(&b.bytes);
        batches += 1;
        records += b.records;
        if b.magic == 2 && b.bytes[22] & 0x20 != 0 {
            controls += 1;
        }
        let c = v2::codec_name(b.codec);
        if !codecs.contains(&c) {
            codecs.push(c);
        }
        if !magics.contains(&b.magic) {
            magics.push(b.magic);
        }
        first.get_or_insert(b.first_offset);
        last = Some(b.last_offset);
    }
    codecs.sort();
    magics.sort();
    let Indexes {
        offsets: offset_entries,
        times: mut time_entries,
        max_ts,
    } = derive_indexes(seg);
    if padding.is_none() {
        // onBecomeInactiveSegment (roll) or close (clean shutdown).
        time_maybe_append(&mut time_entries, max_ts);
    }
    let mut index = Vec::new();
    for (o, p) in &offset_entries {
        index.extend_from_slice(&((o - base) as i32).to_be_bytes());
        index.extend_from_slice(&(*p as i32).to_be_bytes());
    }
    let mut tindex = Vec::new();
    for (t, o) in &time_entries {
        tindex.extend_from_slice(&t.to_be_bytes());
        tindex.extend_from_slice(&((o - base) as i32).to_be_bytes());
    }
    let pad = padding.unwrap_or(0);
    // Kafka rounds a preallocated index down to whole entries (AbstractIndex.roundDownToExactMultiple).
    index.resize(index.len() + pad / 8 * 8, 0);
    tindex.resize(tindex.len() + pad / 12 * 12, 0);
    let stem = format!("{base:020}");
    fs::write(dir.join(format!("{stem}.log")), &log)?;
    fs::write(dir.join(format!("{stem}.index")), &index)?;
    fs::write(dir.join(format!("{stem}.timeindex")), &tindex)?;
    if !seg.aborted.is_empty() {
        let mut t = Vec::new();
        for a in &seg.aborted {
            t.extend_from_slice(&0i16.to_be_bytes());
            t.extend_from_slice(&a.producer_id.to_be_bytes());
            t.extend_from_slice(&a.first_offset.to_be_bytes());
            t.extend_from_slice(&a.last_offset.to_be_bytes());
            t.extend_from_slice(&a.last_stable_offset.to_be_bytes());
        }
        fs::write(dir.join(format!("{stem}.txnindex")), &t)?;
    }
    // How the broker appended this segment, which decides how a test can re-derive the indexes:
    // one batch per append (a leader's produce path), the whole segment in one append (the log
    // cleaner's output), or several messages per append (legacy produce requests).
    let appends = if seg.appends.iter().all(|a| a.len() == 1) {
        "per_batch"
    } else if seg.appends.len() == 1 {
        "one_append"
    } else {
        "grouped"
    };
    Ok(json!({
        "base_offset": base,
        "appends": appends,
        "file": format!("{stem}.log"),
        "bytes": log.len(),
        "batches": batches,
        "records": records,
        "control_batches": controls,
        "first_offset": first,
        "last_offset": last,
        "codecs": codecs,
        "magic": magics,
        "active": false,
        "index_entries": offset_entries.len(),
        "time_index_entries": time_entries.len(),
        "index_padding_bytes": pad,
        "txn_index_entries": seg.aborted.len(),
    }))
}

/// Kafka's Uuid.toString: URL-safe base64 without padding.
pub fn base64url(b: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut s = String::new();
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..=c.len() {
            s.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_snapshot_matches_kafka() {
        let p = Partition::new("x-0", 1000);
        assert_eq!(
            p.snapshot_bytes(),
            [0x00, 0x01, 0x48, 0x67, 0x4b, 0xc7, 0, 0, 0, 0]
        );
    }

    #[test]
    fn base64url_has_no_padding() {
        assert_eq!(base64url(&[0u8; 16]), "AAAAAAAAAAAAAAAAAAAAAA");
        assert_eq!(base64url(&[0xff; 3]), "____");
    }
}
