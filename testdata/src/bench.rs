//! Large partition directories for benchmarks (never committed).
//!
//! Encoding gigabytes with kafka-protocol would take minutes, so a few distinct batches are encoded
//! once and then stamped: each copy gets a new baseOffset (not covered by the CRC) and shifted
//! base/max timestamps (covered, so the CRC-32C is recomputed — hardware CRC-32C costs far less
//! than the write itself). Indexes follow the same LogSegment rules as the committed data.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::{ensure, Context, Result};
use kafka_protocol::records::Compression;
use serde_json::{json, Value};

use crate::log::INDEX_INTERVAL_BYTES;
use crate::rng::{Telemetry, BASE_TIMESTAMP_MS};
use crate::v2::{self, BatchProps, Rec};

/// What to write.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// Partition directory to create (its name should look like `<topic>-<n>`).
    pub out: PathBuf,
    /// Roll when the next batch would pass this size.
    pub segment_bytes: u64,
    /// Number of segments.
    pub segments: u32,
    /// Codec of every batch.
    pub compression: Compression,
    /// Records per batch.
    pub batch_records: usize,
}

/// Distinct templates; enough variety that compressors and branch predictors see real data.
const TEMPLATES: usize = 16;

struct Seg {
    base: i64,
    log: BufWriter<File>,
    size: u64,
    since: u64,
    index: Vec<u8>,
    tindex: Vec<u8>,
    last_ts: i64,
    max_ts: (i64, i64),
}

impl Seg {
    fn open(cfg: &BenchConfig, base: i64) -> Result<Self> {
        let f = File::create(cfg.out.join(format!("{base:020}.log")))?;
        Ok(Seg {
            base,
            log: BufWriter::with_capacity(1 << 20, f),
            size: 0,
            since: 0,
            index: vec![],
            tindex: vec![],
            last_ts: -1,
            max_ts: (-1, -1),
        })
    }

    fn time_entry(&mut self) {
        if self.max_ts.0 > self.last_ts {
            self.tindex.extend_from_slice(&self.max_ts.0.to_be_bytes());
            self.tindex
                .extend_from_slice(&((self.max_ts.1 - self.base) as i32).to_be_bytes());
            self.last_ts = self.max_ts.0;
        }
    }

    fn close(mut self, cfg: &BenchConfig) -> Result<()> {
        self.time_entry();
        self.log.flush()?;
        fs::write(
            cfg.out.join(format!("{:020}.index", self.base)),
            &self.index,
        )?;
        fs::write(
            cfg.out.join(format!("{:020}.timeindex", self.base)),
            &self.tindex,
        )?;
        Ok(())
    }
}

/// Writes the partition directory and returns a summary (segments, batches, records, bytes).
pub fn write_bench(cfg: &BenchConfig) -> Result<Value> {
    ensure!(
        cfg.segments > 0 && cfg.batch_records > 0,
        "need at least one segment and record"
    );
    fs::create_dir_all(&cfg.out).with_context(|| format!("create {}", cfg.out.display()))?;
    let mut tel = Telemetry::new(99, 16);
    let mut templates = vec![];
    let mut ts = BASE_TIMESTAMP_MS;
    for _ in 0..TEMPLATES {
        let recs: Vec<Rec> = (0..cfg.batch_records)
            .map(|i| {
                ts += 10;
                let e = tel.event(ts);
                Rec {
                    offset: i as i64,
                    timestamp: ts,
                    key: Some(e.key.into_bytes()),
                    value: Some(e.value.into_bytes()),
                    headers: vec![],
                }
            })
            .collect();
        let b = v2::encode(&BatchProps::plain(0, cfg.compression), &recs)?;
        ensure!(
            b.len() as u64 <= cfg.segment_bytes,
            "one batch exceeds --segment-bytes"
        );
        templates.push(b);
    }
    // Each template covers this much time; copies are shifted by multiples of it so time moves on.
    let span = ts - BASE_TIMESTAMP_MS + 10;
    let records = cfg.batch_records as i64;
    let mut next: i64 = 0;
    let mut batches: u64 = 0;
    let mut bytes: u64 = 0;
    let mut seg = Seg::open(cfg, 0)?;
    let mut done = 0;
    let mut buf = vec![];
    loop {
        let t = &templates[(batches % TEMPLATES as u64) as usize];
        if seg.size + t.len() as u64 > cfg.segment_bytes {
            done += 1;
            if done == cfg.segments {
                break;
            }
            seg.close(cfg)?;
            fs::write(
                cfg.out.join(format!("{next:020}.snapshot")),
                crate::log::Partition::new("x-0", 0).snapshot_bytes(),
            )?;
            seg = Seg::open(cfg, next)?;
        }
        buf.clear();
        buf.extend_from_slice(t);
        v2::set_base_offset(&mut buf, next);
        let shift = (batches / TEMPLATES as u64) as i64 * span * TEMPLATES as i64;
        let base_ts = v2::be_i64(&buf, 27) + shift;
        let max_ts = v2::be_i64(&buf, 35) + shift;
        buf[27..35].copy_from_slice(&base_ts.to_be_bytes());
        buf[35..43].copy_from_slice(&max_ts.to_be_bytes());
        let crc = crc32c::crc32c(&buf[21..]);
        buf[17..21].copy_from_slice(&crc.to_be_bytes());
        let last = next + records - 1;
        if max_ts > seg.max_ts.0 {
            seg.max_ts = (max_ts, last);
        }
        if seg.since > INDEX_INTERVAL_BYTES as u64 {
            seg.index
                .extend_from_slice(&((last - seg.base) as i32).to_be_bytes());
            seg.index
                .extend_from_slice(&(seg.size as i32).to_be_bytes());
            seg.time_entry();
            seg.since = 0;
        }
        seg.log.write_all(&buf)?;
        seg.size += buf.len() as u64;
        seg.since += buf.len() as u64;
        bytes += buf.len() as u64;
        batches += 1;
        next += records;
    }
    seg.close(cfg)?;
    fs::write(cfg.out.join("leader-epoch-checkpoint"), "0\n1\n0 0\n")?;
    fs::write(
        cfg.out.join("partition.metadata"),
        "version: 0\ntopic_id: AAAAAAAAAAAAAAAAAAAAAQ",
    )?;
    Ok(json!({
        "dir": cfg.out.display().to_string(),
        "segments": cfg.segments,
        "batches": batches,
        "records": next,
        "bytes": bytes,
    }))
}
