//! Findings: the one stream of events every check produces.
//!
//! A finding names the file, the byte position and (when known) the Kafka offset, so an operator can
//! go straight to the damage. Kinds are a closed enum with stable snake_case names because scripts
//! match on them (the JSON Lines schema in docs/JSON.md lists every one; a test keeps both in step).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How bad a finding is. `Error` makes `drkit segments verify` exit 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

macro_rules! kinds {
    ($($variant:ident => $name:literal, $doc:literal;)*) => {
        /// What was found. The string form is part of the stable JSON schema.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Kind {
            $(#[doc = $doc] $variant,)*
        }

        impl Kind {
            /// Every kind, in documentation order.
            pub const ALL: &'static [Kind] = &[$(Kind::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Kind::$variant => $name,)*
                }
            }

            /// One sentence on what the kind means, for docs and `--help`.
            pub fn description(self) -> &'static str {
                match self {
                    $(Kind::$variant => $doc,)*
                }
            }
        }
    };
}

kinds! {
    // --- record batches in .log and KRaft .checkpoint files
    CrcMismatch => "crc_mismatch", "A batch's stored CRC (CRC-32C for magic 2, CRC-32 for magic 0/1) does not match its bytes.";
    BadLength => "bad_length", "A batch or message length is below the format's minimum or runs past the next valid batch.";
    BadMagic => "bad_magic", "A batch's magic byte is not 0, 1 or 2.";
    ZeroedRegion => "zeroed_region", "A run of zero bytes in the middle of a log where batches should be.";
    TornTail => "torn_tail", "The last batch of the active segment is incomplete (normal after a crash; Kafka truncates it on recovery).";
    TruncatedSegment => "truncated_segment", "A batch runs past the end of a segment that is not the active one.";
    PreallocatedTail => "preallocated_tail", "Zero bytes after the last batch of the active segment (log.preallocate).";
    OffsetRegression => "offset_regression", "A batch starts at or below the last offset of the batch before it.";
    OffsetGap => "offset_gap", "Offsets skip between consecutive batches of one segment (normal for compacted topics).";
    FirstOffsetBelowBase => "first_offset_below_base", "A segment's first batch starts below the base offset in its file name.";
    SegmentCleaned => "segment_cleaned", "A segment's first batch starts above its file name's offset: the log cleaner rewrote it.";
    SegmentOverlap => "segment_overlap", "A segment holds offsets that the next segment's name says belong to that one.";
    SegmentGap => "segment_gap", "Offsets missing between two segments of a partition that shows no sign of compaction.";
    SegmentGapCompacted => "segment_gap_compacted", "Offsets missing between two segments of a compacted (cleaned) partition.";
    LeaderEpochRegression => "leader_epoch_regression", "A batch's partition leader epoch is lower than an earlier batch's.";
    LeaderEpochMismatch => "leader_epoch_mismatch", "Batches disagree with leader-epoch-checkpoint (unknown epoch or offset outside its range).";
    LeaderEpochCheckpointInvalid => "leader_epoch_checkpoint_invalid", "leader-epoch-checkpoint cannot be parsed or is not ordered.";
    LeaderEpochCheckpointMissing => "leader_epoch_checkpoint_missing", "A partition with magic 2 batches has no leader-epoch-checkpoint.";
    // --- --deep record decoding
    DecompressionFailed => "decompression_failed", "A compressed batch (or legacy wrapper) does not decompress.";
    RecordMalformed => "record_malformed", "A record's varints or lengths run outside its batch, or the record has trailing bytes.";
    RecordCountMismatch => "record_count_mismatch", "The records in a batch do not match its recordsCount or lastOffsetDelta.";
    OffsetDeltaOrder => "offset_delta_order", "Record offset deltas in a batch do not strictly increase.";
    TimestampOutOfRange => "timestamp_out_of_range", "A CreateTime record timestamp lies outside its batch's [baseTimestamp, maxTimestamp].";
    ControlRecordMalformed => "control_record_malformed", "A control batch does not hold exactly one well-formed control record.";
    LegacyOffsetMismatch => "legacy_offset_mismatch", "A legacy compressed wrapper's offset does not match its inner messages.";
    // --- .index
    IndexSize => "index_size", "An .index file's size is not a multiple of 8.";
    IndexOffsetOrder => "index_offset_order", "An .index entry's offset does not increase over the previous entry's.";
    IndexPositionOrder => "index_position_order", "An .index entry's position does not increase over the previous entry's.";
    IndexPositionPastEnd => "index_position_past_end", "An .index entry points past the end of the .log.";
    IndexNotBatchBoundary => "index_not_batch_boundary", "An .index entry's position is not the start of a batch.";
    IndexOffsetMismatch => "index_offset_mismatch", "An .index entry's offset is not the last offset of a batch at or after its position.";
    IndexMissing => "index_missing", "A segment has no .index file (Kafka rebuilds it on recovery).";
    IndexPreallocated => "index_preallocated", "An index file has a zero-filled preallocated tail (active segment).";
    // --- .timeindex
    TimeIndexSize => "timeindex_size", "A .timeindex file's size is not a multiple of 12.";
    TimeIndexRegression => "timeindex_regression", "A .timeindex entry's timestamp or offset decreases.";
    TimeIndexTimestampMismatch => "timeindex_timestamp_mismatch", "A .timeindex entry's timestamp is not the largest timestamp up to its offset.";
    TimeIndexOffsetPastEnd => "timeindex_offset_past_end", "A .timeindex entry names an offset beyond the segment's last batch.";
    TimeIndexMissing => "timeindex_missing", "A segment has no .timeindex file.";
    // --- .txnindex
    TxnIndexSize => "txnindex_size", "A .txnindex file ends with a partial entry (ignored by Kafka).";
    TxnIndexBadVersion => "txnindex_bad_version", "A .txnindex entry has an unknown version.";
    TxnIndexOrder => "txnindex_order", "A .txnindex entry's lastOffset does not increase, or lies below the segment's base offset.";
    TxnIndexNoMarker => "txnindex_no_marker", "A .txnindex entry's lastOffset is not an ABORT control record in the segment.";
    TxnIndexMissingEntry => "txnindex_missing_entry", "An ABORT marker has no .txnindex entry (read_committed consumers would see aborted data).";
    // --- other partition files
    SnapshotCrcMismatch => "snapshot_crc_mismatch", "A producer snapshot's CRC-32C does not match its bytes.";
    SnapshotInvalid => "snapshot_invalid", "A producer snapshot has a bad version, size or entry count.";
    PartitionMetadataInvalid => "partition_metadata_invalid", "partition.metadata is not `version: 0` plus a topic id.";
    CheckpointInvalid => "checkpoint_invalid", "A log-dir offset checkpoint file cannot be parsed.";
    UnknownFile => "unknown_file", "A file in a partition directory that Kafka does not write.";
    EmptySegment => "empty_segment", "A .log file with no batches.";
    Unreadable => "unreadable", "A file could not be opened or read (I/O error).";
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem (or notable fact) in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    pub kind: Kind,
    pub file: Arc<Path>,
    /// Byte position in `file` where the problem starts.
    pub position: Option<u64>,
    /// End (exclusive) of the affected byte range, when it is a range.
    pub end_position: Option<u64>,
    /// First Kafka offset concerned (or lost).
    pub offset: Option<i64>,
    /// Last Kafka offset concerned (or lost), when it is a range.
    pub last_offset: Option<i64>,
    pub message: String,
}

impl Finding {
    pub fn new(
        severity: Severity,
        kind: Kind,
        file: &Arc<Path>,
        message: impl Into<String>,
    ) -> Self {
        Finding {
            severity,
            kind,
            file: Arc::clone(file),
            position: None,
            end_position: None,
            offset: None,
            last_offset: None,
            message: message.into(),
        }
    }
    pub fn error(kind: Kind, file: &Arc<Path>, message: impl Into<String>) -> Self {
        Self::new(Severity::Error, kind, file, message)
    }
    pub fn warning(kind: Kind, file: &Arc<Path>, message: impl Into<String>) -> Self {
        Self::new(Severity::Warning, kind, file, message)
    }
    pub fn info(kind: Kind, file: &Arc<Path>, message: impl Into<String>) -> Self {
        Self::new(Severity::Info, kind, file, message)
    }
    /// A file that could not be opened or read: the run goes on, the exit code says 2.
    pub fn unreadable(file: &Arc<Path>, err: &std::io::Error) -> Self {
        Self::error(Kind::Unreadable, file, format!("cannot read: {err}"))
    }
    pub fn at(mut self, position: u64) -> Self {
        self.position = Some(position);
        self
    }
    pub fn range(mut self, start: u64, end: u64) -> Self {
        self.position = Some(start);
        self.end_position = Some(end);
        self
    }
    pub fn offset(mut self, offset: i64) -> Self {
        self.offset = Some(offset);
        self
    }
    pub fn offsets(mut self, first: i64, last: i64) -> Self {
        self.offset = Some(first);
        self.last_offset = Some(last);
        self
    }
    pub fn path(&self) -> &Path {
        &self.file
    }
}

/// Shared, cheaply cloned file name for findings.
pub fn file_id(path: impl Into<PathBuf>) -> Arc<Path> {
    Arc::from(path.into().into_boxed_path())
}
