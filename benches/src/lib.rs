//! Shared pieces of drkit's performance measurements (criterion benches in `benches/` and the
//! `perf` binary behind `scripts/bench.sh`): the data sets, drkit as the subject, and the
//! references each target is measured against.
//!
//! The machine the numbers come from is shared and noisy, so nothing here reports an absolute
//! speed on its own: every subject is timed in the same run as its reference, rounds interleaved,
//! and the targets are ratios. Every function returns what it counted so callers can check that
//! subject and reference did the same work (a broken bench must fail, not report a fast zero).

pub mod replay_events;

use std::fs;
use std::hint::black_box;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use bytes::{Buf, Bytes};
use drkit_testdata::bench::{write_bench, BenchConfig};
use kafka_protocol::records::{Compression, RecordBatchDecoder};
use memmap2::Mmap;
use segment_reader::segment::{self, SegmentFiles, SegmentReport};
use segment_reader::verify::{self, Report, VerifyOptions};
use segment_reader::Severity;

/// Codec names in drkit's slot order (`SegmentReport::codec_bytes`).
pub const CODECS: [&str; 5] = ["none", "gzip", "snappy", "lz4", "zstd"];

pub fn compression(name: &str) -> Result<Compression> {
    Ok(match name {
        "none" => Compression::None,
        "gzip" => Compression::Gzip,
        "snappy" => Compression::Snappy,
        "lz4" => Compression::Lz4,
        "zstd" => Compression::Zstd,
        c => anyhow::bail!("unknown codec {c}"),
    })
}

// ---------------------------------------------------------------------------------------------
// Data sets
// ---------------------------------------------------------------------------------------------

/// A partition directory written by drkit-testdata's bench generator.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub dir: PathBuf,
    /// Closed segments (`.log` paths), in offset order.
    pub logs: Vec<PathBuf>,
    pub batches: u64,
    pub records: u64,
    pub bytes: u64,
    /// The offset after the last record (where an active segment would start).
    pub next_offset: i64,
}

impl Dataset {
    /// Generates `segments` segments of about `segment_bytes` each into `parent/name`.
    pub fn generate(
        parent: &Path,
        name: &str,
        segment_bytes: u64,
        segments: u32,
        codec: &str,
    ) -> Result<Dataset> {
        let dir = parent.join(name);
        let summary = write_bench(&BenchConfig {
            out: dir.clone(),
            segment_bytes,
            segments,
            compression: compression(codec)?,
            batch_records: 100,
        })?;
        let num = |k: &str| summary[k].as_u64().with_context(|| format!("summary {k}"));
        let mut logs: Vec<PathBuf> = fs::read_dir(&dir)?
            .map(|e| e.map(|e| e.path()))
            .collect::<std::io::Result<_>>()?;
        logs.retain(|p| p.extension().is_some_and(|x| x == "log"));
        logs.sort();
        ensure!(logs.len() == segments as usize, "expected {segments} logs");
        Ok(Dataset {
            dir,
            logs,
            batches: num("batches")?,
            records: num("records")?,
            bytes: num("bytes")?,
            next_offset: num("records")? as i64,
        })
    }

    /// Adds an empty active segment after the generated ones (what a broker has right after a
    /// roll), so that every generated segment is a closed one and gets mapped by `verify`.
    pub fn add_empty_active_segment(&self) -> Result<PathBuf> {
        let p = self.dir.join(format!("{:020}.log", self.next_offset));
        fs::write(&p, b"")?;
        Ok(p)
    }
}

/// The closed-segment description drkit builds for a segment that is not the last of its
/// partition: mapped, with its indexes.
pub fn closed_segment(log: &Path) -> SegmentFiles {
    let stem = log.file_stem().and_then(|s| s.to_str()).unwrap_or("0");
    let sib = |ext: &str| Some(log.with_extension(ext)).filter(|p| p.is_file());
    SegmentFiles {
        base_offset: stem.parse().unwrap_or(0),
        log: log.to_path_buf(),
        index: sib("index"),
        timeindex: sib("timeindex"),
        txnindex: sib("txnindex"),
        active: false,
        kraft_snapshot: false,
    }
}

/// Maps a file read-only.
pub fn map(path: &Path) -> Result<Mmap> {
    let f = fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
    // SAFETY: benchmark data in a private temp dir; nothing truncates it while mapped.
    Ok(unsafe { Mmap::map(&f)? })
}

/// Reads every page of the files once so that the measurements start from the page cache.
pub fn warm(paths: &[PathBuf]) -> Result<u64> {
    let mut x = 0;
    for p in paths {
        x ^= plain_pass(&map(p)?);
    }
    Ok(x)
}

// ---------------------------------------------------------------------------------------------
// Reference 1: a plain sequential pass over the mapped bytes
// ---------------------------------------------------------------------------------------------

/// XOR of every 64-bit word (and the tail bytes): reads each byte once, at memory bandwidth.
#[inline(never)]
pub fn plain_pass(bytes: &[u8]) -> u64 {
    let bytes = black_box(bytes);
    let mut acc = [0u64; 8];
    let mut chunks = bytes.chunks_exact(64);
    for c in &mut chunks {
        for (i, a) in acc.iter_mut().enumerate() {
            let mut w = [0u8; 8];
            w.copy_from_slice(&c[i * 8..i * 8 + 8]);
            *a ^= u64::from_ne_bytes(w);
        }
    }
    let mut x = acc.iter().fold(0, |a, b| a ^ b);
    for (i, &b) in chunks.remainder().iter().enumerate() {
        x ^= (b as u64) << ((i % 8) * 8);
    }
    black_box(x)
}

/// [`plain_pass`] over a fresh mapping of `path`, made by drkit's own `Source::map` (mapping,
/// advice, page-table faults and unmapping included, as `verify` pays them for every segment).
pub fn plain_pass_file(path: &Path) -> Result<u64> {
    let src = segment_reader::source::Source::map(path)?;
    Ok(plain_pass(src.as_slice().unwrap_or_default()))
}

/// [`plain_pass`] over a fresh mapping made with `MAP_POPULATE` (page tables filled by the
/// kernel in one call instead of one fault per 64 KiB).
pub fn plain_pass_populated(path: &Path) -> Result<u64> {
    let f = fs::File::open(path)?;
    // SAFETY: as in `map`.
    let m = unsafe { memmap2::MmapOptions::new().populate().map(&f)? };
    Ok(plain_pass(&m))
}

/// [`plain_pass_file`] over every file, in parallel on the current rayon pool (an embarrassingly
/// parallel, memory-bound reference for `--jobs` scaling).
pub fn plain_pass_files(paths: &[PathBuf]) -> Result<u64> {
    use rayon::prelude::*;
    paths
        .par_iter()
        .map(|p| plain_pass_file(p))
        .try_reduce(|| 0, |a, b| Ok(a ^ b))
}

/// CPU-only work (no memory traffic): `n` rounds of a multiply-xorshift chain.
#[inline(never)]
pub fn spin(n: u64) -> u64 {
    let mut x = black_box(0x9E37_79B9_7F4A_7C15u64);
    for i in 0..n {
        x = (x ^ (x >> 29))
            .wrapping_mul(0xBF58_476D_1CE4_E5B9)
            .wrapping_add(i);
    }
    black_box(x)
}

/// [`spin`] split into `tasks` equal parts on the current rayon pool (a CPU-bound reference for
/// how many cores the machine actually gives us right now).
pub fn spin_parallel(n: u64, tasks: u64) -> u64 {
    use rayon::prelude::*;
    (0..tasks)
        .into_par_iter()
        .map(|_| spin(n / tasks))
        .reduce(|| 0, |a, b| a ^ b)
}

// ---------------------------------------------------------------------------------------------
// The subject: drkit's verifier, through the library
// ---------------------------------------------------------------------------------------------

/// Runs `f` on a rayon pool of `threads` threads (drkit's `--jobs`).
pub fn pool(threads: usize) -> Result<rayon::ThreadPool> {
    Ok(rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?)
}

/// `verify` of one closed segment, as `drkit segments verify` does it for each segment
/// (call inside `pool.install` to choose the job count).
pub fn verify_segment(seg: &SegmentFiles, deep: bool) -> SegmentReport {
    let opts = segment::Options {
        deep,
        ..segment::Options::default()
    };
    segment::verify_segment(seg, None, opts, &|_| {})
}

/// Checks a segment report against what the generator wrote: same batches and records, no
/// errors. Returns the batch count.
pub fn check_segment(r: &SegmentReport, batches: u64, records: u64) -> Result<u64> {
    ensure!(r.io_error.is_none(), "I/O error: {:?}", r.io_error);
    let errors: Vec<_> = r
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .collect();
    ensure!(errors.is_empty(), "verify reported errors: {errors:?}");
    ensure!(
        r.stats.batches == batches && r.stats.records == records,
        "verify counted {} batches / {} records, the generator wrote {batches} / {records}",
        r.stats.batches,
        r.stats.records
    );
    Ok(r.stats.batches)
}

/// `verify` of whole paths (partition dirs), as the CLI does it.
pub fn verify_paths(paths: &[PathBuf], deep: bool) -> Report {
    verify_paths_with(
        paths,
        segment::Options {
            deep,
            ..segment::Options::default()
        },
    )
}

/// [`verify_paths`] with explicit segment options (e.g. no intra-segment splitting).
pub fn verify_paths_with(paths: &[PathBuf], segment: segment::Options) -> Report {
    let plan = verify::plan(paths);
    verify::verify(&plan, VerifyOptions { segment }, &|_| {})
}

pub fn check_report(r: &Report, batches: u64, records: u64) -> Result<u64> {
    let s = &r.summary;
    ensure!(
        s.errors == 0 && s.io_errors == 0,
        "verify reported errors: {:?}",
        r.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .collect::<Vec<_>>()
    );
    ensure!(
        s.batches == batches && s.records == records,
        "verify counted {} batches / {} records, the generator wrote {batches} / {records}",
        s.batches,
        s.records
    );
    Ok(s.batches)
}

// ---------------------------------------------------------------------------------------------
// Reference 3: kafka-protocol's RecordBatchDecoder
// ---------------------------------------------------------------------------------------------

/// The mapped segment as `Bytes` without a copy (the decoder reads the same page-cache bytes).
pub fn mapped_bytes(path: &Path) -> Result<Bytes> {
    Ok(Bytes::from_owner(map(path)?))
}

/// Decodes every batch of `log` with `RecordBatchDecoder::decode`, one batch at a time (the
/// decoder checks the CRC-32C, decompresses and materialises each record).
/// Returns (batches, records).
pub fn kafka_protocol_decode(log: &Bytes) -> Result<(u64, u64)> {
    let mut buf = log.clone();
    let (mut batches, mut records) = (0u64, 0u64);
    while buf.has_remaining() {
        let set = RecordBatchDecoder::decode(&mut buf)
            .map_err(|e| anyhow::anyhow!("kafka-protocol: {e}"))?;
        batches += 1;
        records += set.records.len() as u64;
        black_box(&set);
    }
    Ok((batches, records))
}

// ---------------------------------------------------------------------------------------------
// Reference 5: plain decompression of the same payloads, with the same crates
// ---------------------------------------------------------------------------------------------

/// Per-batch decompression with the codec crates drkit uses (flate2, snap, lz4_flex, zstd), each
/// through its plain stock API into one reused buffer; no record decoding, no checks.
#[derive(Default)]
pub struct PlainDecompressor {
    out: Vec<u8>,
    snappy: Option<snap::raw::Decoder>,
}

/// What a pass decompressed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Decompressed {
    pub batches: u64,
    /// Decompressed records-section bytes (drkit's `decoded_bytes`).
    pub bytes: u64,
}

const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];

impl PlainDecompressor {
    /// Decompresses the records section of every magic 2 batch in `log`.
    pub fn run(&mut self, log: &[u8]) -> Result<Decompressed> {
        let mut d = Decompressed::default();
        let mut pos = 0usize;
        while pos + 61 <= log.len() {
            let len = i32::from_be_bytes(log[pos + 8..pos + 12].try_into()?) as usize;
            let batch = log.get(pos..pos + 12 + len).context("batch past the end")?;
            let codec = batch[22] & 0x07;
            d.bytes += self.one(codec, &batch[61..])? as u64;
            d.batches += 1;
            pos += 12 + len;
        }
        Ok(d)
    }

    fn one(&mut self, codec: u8, payload: &[u8]) -> Result<usize> {
        let out = &mut self.out;
        out.clear();
        match codec {
            // Nothing to decompress: the records section is read in place (like drkit does).
            0 => return Ok(black_box(payload).len()),
            1 => {
                flate2::read::MultiGzDecoder::new(payload).read_to_end(out)?;
            }
            2 => {
                let dec = self.snappy.get_or_insert_with(snap::raw::Decoder::new);
                if payload.starts_with(&XERIAL_MAGIC) {
                    let mut at = 16;
                    while at + 4 <= payload.len() {
                        let n = u32::from_be_bytes(payload[at..at + 4].try_into()?) as usize;
                        let block = payload.get(at + 4..at + 4 + n).context("xerial chunk")?;
                        let start = out.len();
                        out.resize(start + snap::raw::decompress_len(block)?, 0);
                        let m = dec.decompress(block, &mut out[start..])?;
                        out.truncate(start + m);
                        at += 4 + n;
                    }
                } else {
                    out.resize(snap::raw::decompress_len(payload)?, 0);
                    let m = dec.decompress(payload, out)?;
                    out.truncate(m);
                }
            }
            3 => {
                lz4_flex::frame::FrameDecoder::new(payload).read_to_end(out)?;
            }
            4 => {
                zstd::stream::read::Decoder::with_buffer(payload)?.read_to_end(out)?;
            }
            c => anyhow::bail!("codec {c}"),
        }
        Ok(black_box(&*out).len())
    }
}

// ---------------------------------------------------------------------------------------------
// Timing
// ---------------------------------------------------------------------------------------------

/// Times one call.
pub fn time<T>(f: impl FnOnce() -> T) -> (Duration, T) {
    let t = Instant::now();
    let v = f();
    (t.elapsed(), v)
}

/// CPU time consumed so far by all live threads of this process (on-CPU nanoseconds from
/// `/proc/self/task/*/schedstat`; 0 where that is unavailable).
pub fn process_cpu() -> Duration {
    let mut ns = 0u64;
    if let Ok(rd) = fs::read_dir("/proc/self/task") {
        for t in rd.flatten() {
            if let Ok(s) = fs::read_to_string(t.path().join("schedstat")) {
                ns += s
                    .split_whitespace()
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
    }
    Duration::from_nanos(ns)
}

/// The median of some durations.
pub fn median(v: &[Duration]) -> Duration {
    let mut s = v.to_vec();
    s.sort();
    match s.len() {
        0 => Duration::ZERO,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2,
    }
}

/// The median of some numbers.
pub fn median_f(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    match s.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

/// MB/s (10^6 bytes per second).
pub fn mb_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_pass_reads_every_byte() {
        let mut v = vec![0u8; 1000];
        assert_eq!(plain_pass(&v), 0);
        v[999] = 1;
        assert_ne!(plain_pass(&v), 0);
        v[999] = 0;
        v[3] = 7;
        assert_ne!(plain_pass(&v), 0);
    }

    #[test]
    fn subject_and_references_count_the_same_batches() {
        let tmp = tempfile::tempdir().unwrap();
        for codec in CODECS {
            let ds =
                Dataset::generate(tmp.path(), &format!("{codec}-0"), 256 << 10, 2, codec).unwrap();
            let per_seg: Vec<SegmentReport> = ds
                .logs
                .iter()
                .map(|l| verify_segment(&closed_segment(l), true))
                .collect();
            let batches: u64 = per_seg.iter().map(|r| r.stats.batches).sum();
            let records: u64 = per_seg.iter().map(|r| r.stats.records).sum();
            assert_eq!((batches, records), (ds.batches, ds.records), "{codec}");
            let mut plain = PlainDecompressor::default();
            let mut dec = Decompressed::default();
            for (l, r) in ds.logs.iter().zip(&per_seg) {
                let bytes = fs::read(l).unwrap();
                let d = plain.run(&bytes).unwrap();
                assert_eq!(d.batches, r.stats.batches, "{codec}");
                assert_eq!(d.bytes, r.decoded_bytes.iter().sum::<u64>(), "{codec}");
                dec.batches += d.batches;
                let (kb, kr) = kafka_protocol_decode(&mapped_bytes(l).unwrap()).unwrap();
                assert_eq!((kb, kr), (r.stats.batches, r.stats.records), "{codec}");
            }
            assert_eq!(dec.batches, ds.batches);
            ds.add_empty_active_segment().unwrap();
            let rep = verify_paths(std::slice::from_ref(&ds.dir), false);
            check_report(&rep, ds.batches, ds.records).unwrap();
        }
    }
}
