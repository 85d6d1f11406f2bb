//! One entry point that pushes arbitrary bytes through every parser and checker, shared by the
//! cargo-fuzz targets (fuzz/) and the random-input test, so both exercise the same code.

use std::sync::Arc;

use crate::batch::BatchInfo;
use crate::deep::DeepChecker;
use crate::finding::file_id;
use crate::index::OffsetIndexCheck;
use crate::source::Source;
use crate::timeindex::TimeIndexCheck;
use crate::txnindex::TxnIndexCheck;
use crate::walk::{self, Scratch, Visitor, WalkConfig};
use crate::{checkpoint, consumer_offsets, snapshot};

struct All<'a> {
    deep: DeepChecker,
    file: Arc<std::path::Path>,
    index: OffsetIndexCheck<'a>,
    time: TimeIndexCheck<'a>,
    txn: TxnIndexCheck<'a>,
}

impl Visitor for All<'_> {
    fn on_batch(&mut self, b: &BatchInfo, bytes: &[u8], out: &mut Vec<crate::Finding>) {
        self.index.on_batch(b, out);
        self.time.on_batch(b, out);
        self.txn.on_batch(b, out);
        if let Some(h) = crate::BatchHeader::parse(bytes).filter(|h| h.magic >= 2) {
            self.deep.check_v2(&self.file, b.position, &h, bytes, out);
        } else if let Ok(m) = crate::LegacyMessage::parse(bytes) {
            self.deep.check_legacy(&self.file, b.position, &m, out);
        }
    }
    fn on_skipped(&mut self, start: u64, end: u64) {
        self.index.on_skipped(start, end);
        self.time.on_skipped(start, end);
        self.txn.on_skipped(start, end);
    }
}

/// Walks `data` as a log (with every checker riding along), and parses it as each index,
/// snapshot, checkpoint and `__consumer_offsets` payload. Returns the findings of the walk so
/// callers can compare sources. Must never panic.
pub fn exercise_source(
    data: &[u8],
    src: &mut Source<'_>,
    tail_may_tear: bool,
) -> Vec<crate::Finding> {
    let file = file_id("fuzz.log");
    let mut out = Vec::new();
    // The same bytes serve as the log's indexes: every checker must cope with nonsense.
    let idx = data.get(..data.len().min(4096)).unwrap_or(&[]);
    let mut all = All {
        deep: DeepChecker::new(),
        file: Arc::clone(&file),
        index: OffsetIndexCheck::new(
            file_id("fuzz.index"),
            idx,
            0,
            data.len() as u64,
            tail_may_tear,
            &mut out,
        ),
        time: TimeIndexCheck::new(file_id("fuzz.timeindex"), idx, 0, tail_may_tear, &mut out),
        txn: TxnIndexCheck::new(file_id("fuzz.txnindex"), idx, 0, &mut out),
    };
    let cfg = WalkConfig {
        tail_may_tear,
        stop_at: None,
        expected_first_offset: Some(0),
    };
    let st = walk::walk(
        src,
        &file,
        0,
        cfg,
        &mut all,
        &mut Scratch::default(),
        &mut out,
    );
    let All {
        index, time, txn, ..
    } = all;
    index.finish(st.map(|s| s.valid_end).unwrap_or(0), &mut out);
    time.finish(&mut out);
    txn.finish(&mut out);
    out
}

/// Everything at once over in-memory bytes.
pub fn exercise(data: &[u8]) {
    let _ = exercise_source(data, &mut Source::Borrowed(data), false);
    let _ = exercise_source(data, &mut Source::Borrowed(data), true);
    let id = file_id("fuzz");
    let mut out = Vec::new();
    snapshot::check_snapshot(&id, data, &mut out);
    checkpoint::check_leader_epoch(&id, data, &mut out);
    checkpoint::check_partition_metadata(&id, data, &mut out);
    checkpoint::check_offset_checkpoint(&id, data, &mut out);
    let _ = consumer_offsets::decode_key(data);
    if let Some((head, tail)) = data.split_first() {
        let _ = consumer_offsets::decode_value(
            consumer_offsets::RecordKind::from_type(*head as i16 % 4),
            tail,
        );
    }
    let _ = crate::control::parse_control_batch(data, 1);
    for r in crate::records::RecordIter::new(data).take(1000) {
        if r.is_err() {
            break;
        }
    }
}
