//! Control batches: transaction markers (ABORT/COMMIT) and KRaft quorum records.
//!
//! The shallow walk parses the control record of every control batch (the transaction index checks
//! need to know which ones are ABORT markers), so this decodes just the key and, for markers, the
//! first six bytes of the value, straight from the batch bytes without allocating.
//! The checks follow Kafka's reader: a key shorter than 4 bytes or with a negative version is
//! corrupt, an unknown key version or type is accepted, and a marker value needs at least 6 bytes
//! (later versions may append fields).

use crate::records::{read_record, RecordError};

/// Control record type from the key's second int16.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ControlType {
    Abort,
    Commit,
    LeaderChange,
    SnapshotHeader,
    SnapshotFooter,
    KraftVersion,
    KraftVoters,
    /// A type this reader does not know; Kafka's clients skip these.
    Unknown(i16),
}

impl ControlType {
    pub fn from_i16(t: i16) -> ControlType {
        match t {
            0 => ControlType::Abort,
            1 => ControlType::Commit,
            2 => ControlType::LeaderChange,
            3 => ControlType::SnapshotHeader,
            4 => ControlType::SnapshotFooter,
            5 => ControlType::KraftVersion,
            6 => ControlType::KraftVoters,
            n => ControlType::Unknown(n),
        }
    }
    pub fn as_i16(self) -> i16 {
        match self {
            ControlType::Abort => 0,
            ControlType::Commit => 1,
            ControlType::LeaderChange => 2,
            ControlType::SnapshotHeader => 3,
            ControlType::SnapshotFooter => 4,
            ControlType::KraftVersion => 5,
            ControlType::KraftVoters => 6,
            ControlType::Unknown(n) => n,
        }
    }
    /// Kafka's name for the type (ControlRecordType).
    pub fn name(self) -> &'static str {
        match self {
            ControlType::Abort => "ABORT",
            ControlType::Commit => "COMMIT",
            ControlType::LeaderChange => "LEADER_CHANGE",
            ControlType::SnapshotHeader => "SNAPSHOT_HEADER",
            ControlType::SnapshotFooter => "SNAPSHOT_FOOTER",
            ControlType::KraftVersion => "KRAFT_VERSION",
            ControlType::KraftVoters => "KRAFT_VOTERS",
            ControlType::Unknown(_) => "UNKNOWN",
        }
    }
    pub fn is_transaction_marker(self) -> bool {
        matches!(self, ControlType::Abort | ControlType::Commit)
    }
}

/// The one record of a control batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlRecord {
    /// The key's version field.
    pub version: i16,
    pub kind: ControlType,
    /// ABORT/COMMIT only: the transaction coordinator's epoch from the value.
    pub coordinator_epoch: Option<i32>,
}

/// Why a control batch's records do not hold one well-formed control record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    #[error("control batch has recordsCount {0}, expected 1")]
    RecordCount(i32),
    #[error("control batch has no record")]
    Empty,
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error("{0} bytes after the control record")]
    TrailingBytes(usize),
    #[error("control record has a null key")]
    NullKey,
    #[error("control record key has {0} bytes, needs at least 4")]
    KeyTooShort(usize),
    #[error("control record key version {0} is negative")]
    NegativeKeyVersion(i16),
    #[error("{} marker has a null value", kind.name())]
    NullValue { kind: ControlType },
    #[error("{} marker value has {len} bytes, needs at least 6", kind.name())]
    ValueTooShort { kind: ControlType, len: usize },
    #[error("{} marker value version {version} is negative", kind.name())]
    NegativeValueVersion { kind: ControlType, version: i16 },
}

/// Parses the uncompressed records section of a control batch.
pub fn parse_control_batch(
    records: &[u8],
    records_count: i32,
) -> Result<ControlRecord, ControlError> {
    if records_count != 1 {
        return Err(ControlError::RecordCount(records_count));
    }
    if records.is_empty() {
        return Err(ControlError::Empty);
    }
    let mut pos = 0;
    let record = read_record(records, &mut pos)?;
    if pos != records.len() {
        return Err(ControlError::TrailingBytes(records.len() - pos));
    }
    let key = record.key.ok_or(ControlError::NullKey)?;
    let (version, type_id) = match (crate::be::i16(key, 0), crate::be::i16(key, 2)) {
        (Some(v), Some(t)) => (v, t),
        _ => return Err(ControlError::KeyTooShort(key.len())),
    };
    if version < 0 {
        return Err(ControlError::NegativeKeyVersion(version));
    }
    let kind = ControlType::from_i16(type_id);
    let coordinator_epoch = if kind.is_transaction_marker() {
        let value = record.value.ok_or(ControlError::NullValue { kind })?;
        let (v, epoch) = match (crate::be::i16(value, 0), crate::be::i32(value, 2)) {
            (Some(v), Some(e)) => (v, e),
            _ => {
                return Err(ControlError::ValueTooShort {
                    kind,
                    len: value.len(),
                })
            }
        };
        if v < 0 {
            return Err(ControlError::NegativeValueVersion { kind, version: v });
        }
        Some(epoch)
    } else {
        None
    };
    Ok(ControlRecord {
        version,
        kind,
        coordinator_epoch,
    })
}

/// The type id of a control batch's record, for the shallow walk, which only needs to know which
/// batches are ABORT markers. `None` when the record or its key does not parse; the deep check
/// ([`parse_control_batch`]) says why.
pub fn control_type(records: &[u8]) -> Option<i16> {
    let mut pos = 0;
    let key = read_record(records, &mut pos).ok()?.key?;
    let version = crate::be::i16(key, 0)?;
    (version >= 0).then_some(())?;
    crate::be::i16(key, 2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::tests::encode_record;
    use crate::records::{Field, RecordErrorKind, VarintError};

    fn marker(t: i16, value: Option<&[u8]>) -> Vec<u8> {
        let mut key = 0i16.to_be_bytes().to_vec();
        key.extend(t.to_be_bytes());
        encode_record(0, 0, Some(&key), value, &[])
    }

    fn txn_value(version: i16, epoch: i32) -> Vec<u8> {
        let mut v = version.to_be_bytes().to_vec();
        v.extend(epoch.to_be_bytes());
        v
    }

    #[test]
    fn types_round_trip() {
        for t in -2..9 {
            assert_eq!(ControlType::from_i16(t).as_i16(), t);
        }
        assert_eq!(ControlType::from_i16(0).name(), "ABORT");
        assert_eq!(ControlType::from_i16(6).name(), "KRAFT_VOTERS");
        assert_eq!(ControlType::from_i16(42), ControlType::Unknown(42));
    }

    #[test]
    fn parses_markers() {
        let commit = marker(1, Some(&txn_value(0, 7)));
        assert_eq!(
            parse_control_batch(&commit, 1),
            Ok(ControlRecord {
                version: 0,
                kind: ControlType::Commit,
                coordinator_epoch: Some(7)
            })
        );
        // A longer (future version) value is accepted.
        let mut v = txn_value(1, 3);
        v.extend([0, 0, 0, 9]);
        let abort = marker(0, Some(&v));
        assert_eq!(
            parse_control_batch(&abort, 1).unwrap().coordinator_epoch,
            Some(3)
        );
        // Non-marker types keep no epoch and need no particular value.
        let lc = marker(2, Some(b"\x00\x00anything"));
        assert_eq!(
            parse_control_batch(&lc, 1),
            Ok(ControlRecord {
                version: 0,
                kind: ControlType::LeaderChange,
                coordinator_epoch: None
            })
        );
        assert_eq!(control_type(&commit), Some(1));
        assert_eq!(control_type(&lc), Some(2));
        assert_eq!(control_type(&commit[..3]), None);
        assert_eq!(
            control_type(&encode_record(0, 0, Some(b"\xff\xff\x00\x01"), None, &[])),
            None
        );
        let unknown = marker(99, None);
        assert_eq!(
            parse_control_batch(&unknown, 1).unwrap().kind,
            ControlType::Unknown(99)
        );
    }

    #[test]
    fn malformed_control_batches() {
        let commit = marker(1, Some(&txn_value(0, 7)));
        assert_eq!(
            parse_control_batch(&commit, 2),
            Err(ControlError::RecordCount(2))
        );
        assert_eq!(parse_control_batch(&[], 1), Err(ControlError::Empty));
        let mut two = commit.clone();
        two.extend(&commit);
        assert_eq!(
            parse_control_batch(&two, 1),
            Err(ControlError::TrailingBytes(commit.len()))
        );
        let e = parse_control_batch(&commit[..commit.len() - 1], 1).unwrap_err();
        assert!(
            matches!(e, ControlError::Record(r) if matches!(r.kind, RecordErrorKind::PastEnd { field: Field::Length, .. })),
            "{e:?}"
        );
        assert_eq!(
            parse_control_batch(&[0x80], 1),
            Err(ControlError::Record(RecordError {
                record_start: 0,
                position: 0,
                kind: RecordErrorKind::Varint {
                    field: Field::Length,
                    error: VarintError::Truncated
                }
            }))
        );
        assert_eq!(
            parse_control_batch(&encode_record(0, 0, None, None, &[]), 1),
            Err(ControlError::NullKey)
        );
        assert_eq!(
            parse_control_batch(&encode_record(0, 0, Some(b"\x00\x00\x01"), None, &[]), 1),
            Err(ControlError::KeyTooShort(3))
        );
        assert_eq!(
            parse_control_batch(
                &encode_record(0, 0, Some(b"\xff\xff\x00\x01"), None, &[]),
                1
            ),
            Err(ControlError::NegativeKeyVersion(-1))
        );
        assert_eq!(
            parse_control_batch(&marker(0, None), 1),
            Err(ControlError::NullValue {
                kind: ControlType::Abort
            })
        );
        assert_eq!(
            parse_control_batch(&marker(1, Some(b"\x00\x00\x00")), 1),
            Err(ControlError::ValueTooShort {
                kind: ControlType::Commit,
                len: 3
            })
        );
        assert_eq!(
            parse_control_batch(&marker(1, Some(&txn_value(-3, 0))), 1),
            Err(ControlError::NegativeValueVersion {
                kind: ControlType::Commit,
                version: -3
            })
        );
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut s = 0xDEAD_BEEF_CAFE_F00Du64;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let good = marker(0, Some(&txn_value(0, 5)));
        for i in 0..4000 {
            let mut buf = if i % 2 == 0 {
                let mut g = good.clone();
                let at = next() as usize % g.len();
                g[at] = next() as u8;
                g
            } else {
                (0..next() % 32).map(|_| next() as u8).collect()
            };
            buf.truncate(next() as usize % (buf.len() + 2));
            let _ = parse_control_batch(&buf, (next() % 3) as i32);
            let _ = control_type(&buf);
        }
    }
}
