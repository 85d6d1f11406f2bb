//! `--deep` verification: decompress each batch and decode every record in it.
//!
//! A batch whose CRC matches can still be unreadable: the CRC was computed by the producer or
//! broker over whatever bytes it had, so a buggy writer or a corrupt-before-checksum payload only
//! shows when the records are decoded. These checks hold for everything Kafka writes:
//!
//! - the payload decompresses and decodes into exactly `recordsCount` well-formed records;
//! - offset deltas strictly increase from 0 or above and never pass `lastOffsetDelta` (the cleaner
//!   may drop records, so gaps and a last delta below `lastOffsetDelta` are allowed);
//! - for CreateTime batches, no record timestamp exceeds `maxTimestamp`, and `maxTimestamp` is the
//!   largest record timestamp (the broker recomputes it on append). Timestamps *below*
//!   `baseTimestamp` are legal — a producer may set explicit, unordered timestamps, which is why the
//!   delta is signed — so they are not flagged. Batches with the delete-horizon bit carry the
//!   horizon in `baseTimestamp` instead and are skipped, as are LogAppendTime batches (the broker
//!   ignores record timestamps there);
//! - a control batch holds exactly one well-formed control record.
//!
//! Findings are capped at one per kind per batch: a damaged batch typically breaks every record
//! after the damage, and one finding says all an operator needs to know.

use std::path::Path;
use std::sync::Arc;

use crate::batch::{BatchHeader, Codec, LegacyMessage, LOG_OVERHEAD, V2_HEADER_SIZE};
use crate::compression::decompress;
use crate::control::parse_control_batch;
use crate::finding::{Finding, Kind};
use crate::legacy::wrapper_summary;
use crate::records::frame_record;

/// What a deep check decoded, for throughput statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeepStats {
    /// Records (magic 2) or messages (legacy, inner messages for a wrapper) decoded.
    pub records: u64,
    /// Size of the decoded payload: the (decompressed) records section, the decompressed inner
    /// message set, or the whole entry for an uncompressed legacy message.
    pub uncompressed_bytes: u64,
}

/// Decodes batches with one reusable decompression buffer, so a deep scan allocates only when a
/// batch is larger than any before it.
#[derive(Debug, Default)]
pub struct DeepChecker {
    scratch: Vec<u8>,
}

/// Collects findings for one batch, at most one per kind.
struct BatchFindings<'a> {
    file: &'a Arc<Path>,
    position: u64,
    emitted: [Option<Kind>; 8],
    out: &'a mut Vec<Finding>,
}

impl BatchFindings<'_> {
    // Findings are rare; kept out of line so that the per-record loop stays in registers.
    #[cold]
    #[inline(never)]
    fn push(&mut self, kind: Kind, offset: i64, message: impl FnOnce() -> String) {
        if self.emitted.contains(&Some(kind)) {
            return;
        }
        if let Some(slot) = self.emitted.iter_mut().find(|s| s.is_none()) {
            *slot = Some(kind);
        }
        self.out.push(
            Finding::error(kind, self.file, message())
                .at(self.position)
                .offset(offset),
        );
    }
}

impl DeepChecker {
    pub fn new() -> Self {
        DeepChecker {
            scratch: Vec::new(),
        }
    }

    /// Deep-checks one magic 2 batch. `batch` is the whole batch, `[0, 12 + batchLength)`.
    pub fn check_v2(
        &mut self,
        file: &Arc<Path>,
        position: u64,
        header: &BatchHeader,
        batch: &[u8],
        out: &mut Vec<Finding>,
    ) -> DeepStats {
        let mut f = BatchFindings {
            file,
            position,
            emitted: [None; 8],
            out,
        };
        let base = header.base_offset;
        let raw = batch.get(V2_HEADER_SIZE..).unwrap_or_default();
        let codec = header.codec();
        let section: &[u8] = if codec == Codec::None {
            raw
        } else {
            match decompress(codec, raw, &mut self.scratch, false) {
                Ok(()) => &self.scratch,
                Err(e) => {
                    f.push(Kind::DecompressionFailed, base, || {
                        format!(
                            "{}-compressed batch ({} bytes) does not decompress: {e}",
                            codec.name(),
                            raw.len()
                        )
                    });
                    return DeepStats::default();
                }
            }
        };
        let stats = DeepStats {
            records: 0,
            uncompressed_bytes: section.len() as u64,
        };

        let check_ts = !header.is_log_append_time() && !header.has_delete_horizon();
        let mut count: u64 = 0;
        let mut previous: Option<i32> = None;
        let mut max_ts: Option<i64> = None;
        let mut malformed = false;
        // Framing alone, not `RecordIter`: the checks need only each record's deltas, and
        // building full records cost a third of `--deep`'s time on fast codecs.
        let mut pos = 0;
        while pos < section.len() {
            let record = match frame_record(section, pos) {
                Ok(r) => r,
                Err(e) => {
                    malformed = true;
                    let where_ = if codec == Codec::None {
                        "records section"
                    } else {
                        "decompressed records"
                    };
                    f.push(Kind::RecordMalformed, base, move || {
                        format!(
                            "record {count} ({} of {} bytes of {where_}): {e}",
                            e.position,
                            section.len()
                        )
                    });
                    break;
                }
            };
            pos = record.end;
            count += 1;
            let delta = record.offset_delta;
            let offset = base.saturating_add(delta as i64);
            match previous {
                Some(p) if delta <= p => f.push(Kind::OffsetDeltaOrder, offset, move || {
                    format!("record {} has offset delta {delta} after {p}", count - 1)
                }),
                None if delta < 0 => f.push(Kind::OffsetDeltaOrder, offset, move || {
                    format!("first record has negative offset delta {delta}")
                }),
                _ => {}
            }
            previous = Some(delta);
            if delta > header.last_offset_delta {
                f.push(Kind::RecordCountMismatch, offset, move || {
                    format!(
                        "record {} has offset delta {delta}, beyond the batch's lastOffsetDelta {}",
                        count - 1,
                        header.last_offset_delta
                    )
                });
            }
            if check_ts {
                let ts_delta = record.timestamp_delta;
                let ts = header.base_timestamp.saturating_add(ts_delta);
                if ts > header.max_timestamp {
                    f.push(Kind::TimestampOutOfRange, offset, move || {
                        format!(
                            "record timestamp {ts} (base {} + delta {ts_delta}) is above the batch's maxTimestamp {}",
                            header.base_timestamp, header.max_timestamp
                        )
                    });
                }
                max_ts = Some(max_ts.map_or(ts, |m: i64| m.max(ts)));
            }
        }
        let stats = DeepStats {
            records: count,
            ..stats
        };
        if malformed {
            return stats;
        }
        if count != header.records_count.max(0) as u64 || header.records_count < 0 {
            f.push(Kind::RecordCountMismatch, base, || {
                format!(
                    "batch holds {count} records but its recordsCount is {}",
                    header.records_count
                )
            });
        }
        if let Some(m) = max_ts.filter(|&m| m < header.max_timestamp) {
            f.push(Kind::TimestampOutOfRange, base, || {
                format!(
                    "batch maxTimestamp {} is above its largest record timestamp {m}",
                    header.max_timestamp
                )
            });
        }
        if header.is_control() {
            if let Err(e) = parse_control_batch(section, header.records_count) {
                f.push(Kind::ControlRecordMalformed, base, || {
                    format!("control batch: {e}")
                });
            }
        }
        stats
    }

    /// Deep-checks one legacy (magic 0/1) message; compressed wrappers are decompressed and their
    /// inner messages verified (CRC, framing, offsets). The wrapper's own CRC is not checked here.
    pub fn check_legacy(
        &mut self,
        file: &Arc<Path>,
        position: u64,
        msg: &LegacyMessage<'_>,
        out: &mut Vec<Finding>,
    ) -> DeepStats {
        let codec = msg.codec();
        if codec == Codec::None {
            return DeepStats {
                records: 1,
                uncompressed_bytes: LOG_OVERHEAD as u64 + msg.size.max(0) as u64,
            };
        }
        let mut f = BatchFindings {
            file,
            position,
            emitted: [None; 8],
            out,
        };
        match wrapper_summary(msg, &mut self.scratch) {
            Err(e) => {
                f.push(e.kind(), msg.offset, || {
                    format!(
                        "legacy magic {} {}-compressed wrapper: {e}",
                        msg.magic,
                        codec.name()
                    )
                });
                DeepStats::default()
            }
            Ok(s) => {
                // Kafka sets a CreateTime wrapper's timestamp to its largest inner timestamp.
                if let Some(wrapper_ts) = msg.timestamp.filter(|_| !msg.is_log_append_time()) {
                    if s.max_timestamp > wrapper_ts {
                        f.push(Kind::TimestampOutOfRange, s.last_offset, || {
                            format!(
                                "inner message timestamp {} is above the wrapper's timestamp {wrapper_ts}",
                                s.max_timestamp
                            )
                        });
                    }
                }
                DeepStats {
                    records: s.count as u64,
                    uncompressed_bytes: self.scratch.len() as u64,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::{file_id, Severity};
    use crate::legacy::tests::{entry, gzip, wrapper};
    use crate::records::tests::encode_record;
    use std::io::Write;

    /// (timestamp delta, offset delta) per record.
    fn v2_batch(
        attributes: i16,
        last_offset_delta: i32,
        count: i32,
        max_ts: i64,
        records: &[u8],
    ) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend(100i64.to_be_bytes()); // base offset
        b.extend(((49 + records.len()) as i32).to_be_bytes());
        b.extend(0i32.to_be_bytes()); // leader epoch
        b.push(2);
        b.extend(0u32.to_be_bytes()); // crc, fixed below
        b.extend(attributes.to_be_bytes());
        b.extend(last_offset_delta.to_be_bytes());
        b.extend(1000i64.to_be_bytes()); // base timestamp
        b.extend(max_ts.to_be_bytes());
        b.extend((-1i64).to_be_bytes());
        b.extend((-1i16).to_be_bytes());
        b.extend((-1i32).to_be_bytes());
        b.extend(count.to_be_bytes());
        b.extend(records);
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        b
    }

    fn records(spec: &[(i64, i32)]) -> Vec<u8> {
        let mut v = Vec::new();
        for &(ts, od) in spec {
            v.extend(encode_record(ts, od, Some(b"k"), Some(b"value"), &[]));
        }
        v
    }

    fn check(batch: &[u8]) -> (Vec<Finding>, DeepStats) {
        let file = file_id("x.log");
        let mut out = Vec::new();
        let h = BatchHeader::parse(batch).unwrap();
        let stats = DeepChecker::new().check_v2(&file, 40, &h, batch, &mut out);
        (out, stats)
    }

    fn kinds(f: &[Finding]) -> Vec<Kind> {
        f.iter().map(|f| f.kind).collect()
    }

    fn compressed(codec: Codec, data: &[u8]) -> Vec<u8> {
        match codec {
            Codec::Gzip => gzip(data),
            Codec::Snappy => snap::raw::Encoder::new().compress_vec(data).unwrap(),
            Codec::Lz4 => {
                let mut e = lz4_flex::frame::FrameEncoder::new(Vec::new());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            Codec::Zstd => zstd::bulk::compress(data, 3).unwrap(),
            _ => data.to_vec(),
        }
    }

    #[test]
    fn clean_batches_every_codec() {
        let recs = records(&[(0, 0), (5, 1), (-3, 2), (9, 3)]);
        for (id, codec) in [
            (0, Codec::None),
            (1, Codec::Gzip),
            (2, Codec::Snappy),
            (3, Codec::Lz4),
            (4, Codec::Zstd),
        ] {
            let b = v2_batch(id, 3, 4, 1009, &compressed(codec, &recs));
            let (f, stats) = check(&b);
            assert!(f.is_empty(), "{codec:?}: {f:?}");
            assert_eq!(
                stats,
                DeepStats {
                    records: 4,
                    uncompressed_bytes: recs.len() as u64
                }
            );
        }
        // Compacted: records removed, lastOffsetDelta kept; empty batch.
        let b = v2_batch(0, 9, 2, 1005, &records(&[(0, 2), (5, 7)]));
        assert!(check(&b).0.is_empty());
        let b = v2_batch(0, 9, 0, -1, &[]);
        assert!(check(&b).0.is_empty());
        // LogAppendTime and delete-horizon batches skip timestamp checks.
        let b = v2_batch(0x08, 1, 2, 5, &records(&[(0, 0), (5000, 1)]));
        assert!(check(&b).0.is_empty());
        let b = v2_batch(0x40, 1, 2, 5, &records(&[(0, 0), (5000, 1)]));
        assert!(check(&b).0.is_empty());
        // A 64-bit timestamp delta.
        let b = v2_batch(0, 0, 1, 1000 + (1 << 40), &records(&[(1 << 40, 0)]));
        assert!(check(&b).0.is_empty());
    }

    #[test]
    fn record_problems() {
        // Count mismatch.
        let b = v2_batch(0, 3, 4, 1005, &records(&[(0, 0), (5, 1), (3, 2)]));
        let (f, _) = check(&b);
        assert_eq!(kinds(&f), [Kind::RecordCountMismatch]);
        assert_eq!(
            f[0].message,
            "batch holds 3 records but its recordsCount is 4"
        );
        assert_eq!(
            (f[0].severity, f[0].position, f[0].offset),
            (Severity::Error, Some(40), Some(100))
        );
        // Offset deltas out of order (reported once) and beyond lastOffsetDelta.
        let b = v2_batch(0, 2, 4, 1000, &records(&[(0, 1), (0, 0), (0, 0), (0, 5)]));
        let (f, _) = check(&b);
        assert_eq!(
            kinds(&f),
            [Kind::OffsetDeltaOrder, Kind::RecordCountMismatch]
        );
        assert_eq!(f[0].message, "record 1 has offset delta 0 after 1");
        assert_eq!(f[0].offset, Some(100));
        assert_eq!(f[1].offset, Some(105));
        // Negative first delta.
        let b = v2_batch(0, 0, 1, 1000, &records(&[(0, -1)]));
        assert_eq!(kinds(&check(&b).0), [Kind::OffsetDeltaOrder]);
        // Timestamp above max, and max above every record.
        let b = v2_batch(0, 1, 2, 1004, &records(&[(0, 0), (5, 1)]));
        let (f, _) = check(&b);
        assert_eq!(kinds(&f), [Kind::TimestampOutOfRange]);
        assert!(f[0].message.contains("1005"), "{}", f[0].message);
        assert_eq!(f[0].offset, Some(101));
        let b = v2_batch(0, 1, 2, 2000, &records(&[(0, 0), (5, 1)]));
        let (f, _) = check(&b);
        assert_eq!(kinds(&f), [Kind::TimestampOutOfRange]);
        assert_eq!(
            f[0].message,
            "batch maxTimestamp 2000 is above its largest record timestamp 1005"
        );
        // Malformed record: the walk stops, no count finding on top.
        let mut recs = records(&[(0, 0), (1, 1)]);
        recs.truncate(recs.len() - 2);
        let b = v2_batch(0, 1, 2, 1001, &recs);
        let (f, stats) = check(&b);
        assert_eq!(kinds(&f), [Kind::RecordMalformed]);
        assert!(f[0].message.starts_with("record 1 ("), "{}", f[0].message);
        assert_eq!(stats.records, 1);
    }

    #[test]
    fn decompression_failures() {
        let recs = records(&[(0, 0)]);
        for (id, codec) in [
            (1, Codec::Gzip),
            (2, Codec::Snappy),
            (3, Codec::Lz4),
            (4, Codec::Zstd),
        ] {
            let mut payload = compressed(codec, &recs);
            payload.truncate(payload.len() / 2);
            let b = v2_batch(id, 0, 1, 1000, &payload);
            let (f, stats) = check(&b);
            assert_eq!(kinds(&f), [Kind::DecompressionFailed], "{codec:?}");
            assert!(f[0].message.starts_with(codec.name()), "{}", f[0].message);
            assert_eq!(stats, DeepStats::default());
        }
        let b = v2_batch(5, 0, 1, 1000, &recs);
        let (f, _) = check(&b);
        assert_eq!(kinds(&f), [Kind::DecompressionFailed]);
    }

    #[test]
    fn control_batches() {
        let mut key = 0i16.to_be_bytes().to_vec();
        key.extend(1i16.to_be_bytes());
        let mut value = 0i16.to_be_bytes().to_vec();
        value.extend(3i32.to_be_bytes());
        let rec = encode_record(0, 0, Some(&key), Some(&value), &[]);
        let b = v2_batch(0x30, 0, 1, 1000, &rec);
        assert!(check(&b).0.is_empty());
        let rec = encode_record(0, 0, Some(&key), Some(&value[..3]), &[]);
        let b = v2_batch(0x30, 0, 1, 1000, &rec);
        let (f, _) = check(&b);
        assert_eq!(kinds(&f), [Kind::ControlRecordMalformed]);
        assert_eq!(
            f[0].message,
            "control batch: COMMIT marker value has 3 bytes, needs at least 6"
        );
    }

    fn check_legacy(bytes: &[u8]) -> (Vec<Finding>, DeepStats) {
        let file = file_id("x.log");
        let mut out = Vec::new();
        let m = LegacyMessage::parse(bytes).unwrap();
        let stats = DeepChecker::new().check_legacy(&file, 7, &m, &mut out);
        (out, stats)
    }

    #[test]
    fn legacy_wrappers() {
        let plain = entry(3, 0, 0, None, None, Some(b"v"));
        assert_eq!(
            check_legacy(&plain),
            (
                vec![],
                DeepStats {
                    records: 1,
                    uncompressed_bytes: plain.len() as u64
                }
            )
        );
        let w = wrapper(9, 1, 1, 4, |i| i);
        let (f, stats) = check_legacy(&w);
        assert!(f.is_empty(), "{f:?}");
        assert_eq!(stats.records, 4);
        // Inner timestamps above the CreateTime wrapper's.
        let mut set = Vec::new();
        set.extend(entry(0, 1, 0, Some(9000), None, Some(b"a")));
        let w = entry(0, 1, 1, Some(5000), None, Some(&gzip(&set)));
        let (f, _) = check_legacy(&w);
        assert_eq!(kinds(&f), [Kind::TimestampOutOfRange]);
        // Offset mismatch, inner CRC, undecodable.
        assert_eq!(
            kinds(&check_legacy(&wrapper(3, 1, 1, 5, |i| i)).0),
            [Kind::LegacyOffsetMismatch]
        );
        let mut bad = entry(0, 1, 0, Some(1), None, Some(b"abc"));
        let n = bad.len();
        bad[n - 1] ^= 0xFF;
        let w = entry(0, 1, 1, Some(1), None, Some(&gzip(&bad)));
        let (f, _) = check_legacy(&w);
        assert_eq!(kinds(&f), [Kind::CrcMismatch]);
        assert_eq!((f[0].position, f[0].offset), (Some(7), Some(0)));
        let w = entry(0, 0, 2, None, None, Some(b"garbage"));
        assert_eq!(kinds(&check_legacy(&w).0), [Kind::DecompressionFailed]);
    }

    #[test]
    fn random_batches_never_panic() {
        let mut s = 0x0BAD_5EED_1234_5678u64;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let file = file_id("x.log");
        let mut checker = DeepChecker::new();
        let mut out = Vec::new();
        let recs = records(&[(0, 0), (5, 1), (7, 2)]);
        let templates: Vec<Vec<u8>> = (0..5)
            .map(|id| {
                let codec = Codec::from_attributes(id);
                v2_batch(
                    id | if id == 0 { 0x20 } else { 0 },
                    2,
                    3,
                    1007,
                    &compressed(codec, &recs),
                )
            })
            .collect();
        for i in 0..3000 {
            let mut b = templates[i % templates.len()].clone();
            for _ in 0..(next() % 4 + 1) {
                let at = 21 + next() as usize % (b.len() - 21);
                b[at] = next() as u8;
            }
            if next() % 3 == 0 {
                b.truncate(61 + next() as usize % (b.len() - 60));
            }
            if let Some(h) = BatchHeader::parse(&b) {
                checker.check_v2(&file, 0, &h, &b, &mut out);
            }
            let w = wrapper(
                next() as i64 % 6,
                (next() % 2) as i8,
                1 + (next() % 3) as i8,
                3,
                |i| i,
            );
            let mut w2 = w.clone();
            let at = 30 + next() as usize % (w2.len() - 30);
            w2[at] = next() as u8;
            for bytes in [&w, &w2] {
                if let Ok(m) = LegacyMessage::parse(bytes) {
                    checker.check_legacy(&file, 0, &m, &mut out);
                }
            }
            out.clear();
        }
    }
    fn logs_under(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        let mut entries: Vec<_> = rd.flatten().map(|e| e.path()).collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                logs_under(&p, out);
            } else if p.extension().is_some_and(|e| e == "log") {
                out.push(p);
            }
        }
    }

    #[derive(Debug, Default)]
    struct Tally {
        batches: u64,
        records: u64,
        crc_errors: u64,
        /// Batches per (magic, codec id).
        codecs: std::collections::BTreeMap<(i8, i16), u64>,
    }

    /// A plain sequential walk (offset + length framing, magic at byte 16) that stops at the first
    /// frame it cannot read, running the deep checker on every batch.
    fn walk_file(path: &Path, findings: &mut Vec<Finding>, tally: &mut Tally) {
        let bytes = std::fs::read(path).unwrap();
        let file = file_id(path);
        let mut checker = DeepChecker::new();
        let mut pos = 0usize;
        while pos + 17 <= bytes.len() {
            let size = crate::be::i32(&bytes, pos + 8).unwrap();
            if size < 14 {
                break;
            }
            let end = pos + 12 + size as usize;
            let Some(batch) = bytes.get(pos..end) else {
                break;
            };
            let magic = batch[16] as i8;
            tally.batches += 1;
            let stats = if magic >= 2 {
                let h = BatchHeader::parse(batch).unwrap();
                if crate::batch::v2_crc(batch) != Some(h.crc) {
                    tally.crc_errors += 1;
                }
                *tally.codecs.entry((2, h.attributes & 7)).or_default() += 1;
                checker.check_v2(&file, pos as u64, &h, batch, findings)
            } else {
                let m = LegacyMessage::parse(batch).unwrap();
                if crate::batch::legacy_crc(batch) != Some(m.crc) {
                    tally.crc_errors += 1;
                }
                *tally
                    .codecs
                    .entry((m.magic, (m.attributes & 7) as i16))
                    .or_default() += 1;
                checker.check_legacy(&file, pos as u64, &m, findings)
            };
            tally.records += stats.records;
            pos = end;
        }
    }

    /// Every real broker-written log decodes without a single deep finding; the one capture with a
    /// deliberately broken CRC has exactly one bad CRC (a shallow matter) and nothing else.
    #[test]
    fn real_broker_data_is_clean() {
        let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared");
        let shared = if shared.exists() {
            shared
        } else {
            Path::new("/work/shared").to_path_buf()
        };
        let mut logs = Vec::new();
        logs_under(&shared.join("kafka-real"), &mut logs);
        logs_under(
            &shared.join("kafka-legacy-captures/extracted-message-sets"),
            &mut logs,
        );
        if logs.is_empty() {
            eprintln!("no real data found under {}; skipping", shared.display());
            return;
        }
        let mut total = Tally::default();
        for log in &logs {
            let mut findings = Vec::new();
            let mut tally = Tally::default();
            walk_file(log, &mut findings, &mut tally);
            assert!(findings.is_empty(), "{}: {findings:#?}", log.display());
            let expected_crc = log.to_string_lossy().contains("invalid_crc") as u64;
            assert_eq!(tally.crc_errors, expected_crc, "{}", log.display());
            total.batches += tally.batches;
            total.records += tally.records;
            for (k, v) in tally.codecs {
                *total.codecs.entry(k).or_default() += v;
            }
        }
        eprintln!(
            "{} logs, {} batches, {} records; (magic, codec) -> batches: {:?}",
            logs.len(),
            total.batches,
            total.records,
            total.codecs
        );
        // The codecs the README promises are really exercised.
        for key in [(2, 1), (2, 2), (2, 3), (0, 1), (0, 2), (1, 0), (2, 0)] {
            assert!(
                total.codecs.contains_key(&key),
                "no batches with (magic, codec) {key:?}"
            );
        }
    }

    /// The project's generated logs (zstd, raw snappy, ABORT markers, compacted batches with
    /// delete horizons, compressed magic 0/1 wrappers including lz4 with Kafka's broken header
    /// checksum) decode cleanly, with the batch and record counts of testdata/data/manifest.json.
    #[test]
    fn generated_data_is_clean_and_counts_match_the_manifest() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/data/logs");
        if !root.exists() {
            eprintln!("no generated data at {}; skipping", root.display());
            return;
        }
        // (partition dir, batches, records) from manifest.json.
        let expected = [
            ("active-0", 10, 80),
            ("cluster-metadata-0", 5, 13),
            ("compacted-0", 30, 88),
            ("gzip-0", 25, 217),
            ("legacy-v0-0", 53, 139),
            ("legacy-v1-0", 49, 142),
            ("lz4-0", 14, 168),
            ("plain-0", 19, 197),
            ("snappy-0", 15, 147),
            ("snappy-raw-0", 13, 159),
            ("txn-0", 76, 282),
            ("zstd-0", 20, 242),
        ];
        for (dir, batches, records) in expected {
            let mut logs = Vec::new();
            logs_under(&root.join(dir), &mut logs);
            let mut tally = Tally::default();
            for log in &logs {
                let mut findings = Vec::new();
                walk_file(log, &mut findings, &mut tally);
                assert!(findings.is_empty(), "{}: {findings:#?}", log.display());
            }
            assert_eq!(
                (tally.batches, tally.records, tally.crc_errors),
                (batches, records, 0),
                "{dir}"
            );
        }
        // The KRaft snapshot: SNAPSHOT_HEADER and SNAPSHOT_FOOTER control batches around data.
        let snapshot = root.join("cluster-metadata-0/00000000000000000013-0000000001.checkpoint");
        let mut findings = Vec::new();
        let mut tally = Tally::default();
        walk_file(&snapshot, &mut findings, &mut tally);
        assert!(findings.is_empty(), "{findings:#?}");
        assert_eq!(tally.batches, 5);
    }
}
