//! Keys and values of the `__consumer_offsets` topic: committed offsets and group state.
//!
//! After a disaster the committed offsets are what tells each consumer group where to resume, so
//! the dump tool must be able to read them straight from the segment files, with no broker to ask.
//!
//! The layouts follow Kafka's group-coordinator message schemas (OffsetCommitKey.json,
//! GroupMetadataValue.json, ConsumerGroup*.json, ShareGroup*.json). A key starts with an int16
//! record type that selects both the key and the value schema; a value starts with an int16
//! version; a null value is a tombstone. Types 0-2 are the classic group protocol, types 3-15 the
//! KIP-848 consumer groups and KIP-932 share groups (flexible encoding). Unknown types are
//! reported as such, not as errors, because newer brokers keep adding them.
//!
//! Strings borrow from the record when they are valid UTF-8; invalid bytes are replaced the way
//! Java's decoder replaces them, because Kafka itself never rejects a record for its string bytes.
//! Every read is bounds-checked: foreign bytes produce a [`DecodeError`], never a panic.

use std::borrow::Cow;
use std::fmt;

/// Which group-coordinator schema a record uses, from the key's leading int16.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordKind {
    /// Types 0 and 1.
    OffsetCommit,
    /// Type 2.
    GroupMetadata,
    ConsumerGroupMetadata,
    ConsumerGroupPartitionMetadata,
    ConsumerGroupMemberMetadata,
    ConsumerGroupTargetAssignmentMetadata,
    ConsumerGroupTargetAssignmentMember,
    ConsumerGroupCurrentMemberAssignment,
    ShareGroupPartitionMetadata,
    ShareGroupMemberMetadata,
    ShareGroupMetadata,
    ShareGroupTargetAssignmentMetadata,
    ShareGroupTargetAssignmentMember,
    ShareGroupCurrentMemberAssignment,
    ShareGroupStatePartitionMetadata,
    /// A type this reader does not know (written by a newer broker).
    Unknown(i16),
}

impl RecordKind {
    pub fn from_type(record_type: i16) -> RecordKind {
        use RecordKind::*;
        match record_type {
            0 | 1 => OffsetCommit,
            2 => GroupMetadata,
            3 => ConsumerGroupMetadata,
            4 => ConsumerGroupPartitionMetadata,
            5 => ConsumerGroupMemberMetadata,
            6 => ConsumerGroupTargetAssignmentMetadata,
            7 => ConsumerGroupTargetAssignmentMember,
            8 => ConsumerGroupCurrentMemberAssignment,
            9 => ShareGroupPartitionMetadata,
            10 => ShareGroupMemberMetadata,
            11 => ShareGroupMetadata,
            12 => ShareGroupTargetAssignmentMetadata,
            13 => ShareGroupTargetAssignmentMember,
            14 => ShareGroupCurrentMemberAssignment,
            15 => ShareGroupStatePartitionMetadata,
            n => Unknown(n),
        }
    }

    /// Stable snake_case name, used as the `record_kind` field of JSON output.
    pub fn as_str(self) -> &'static str {
        use RecordKind::*;
        match self {
            OffsetCommit => "offset_commit",
            GroupMetadata => "group_metadata",
            ConsumerGroupMetadata => "consumer_group_metadata",
            ConsumerGroupPartitionMetadata => "consumer_group_partition_metadata",
            ConsumerGroupMemberMetadata => "consumer_group_member_metadata",
            ConsumerGroupTargetAssignmentMetadata => "consumer_group_target_assignment_metadata",
            ConsumerGroupTargetAssignmentMember => "consumer_group_target_assignment_member",
            ConsumerGroupCurrentMemberAssignment => "consumer_group_current_member_assignment",
            ShareGroupPartitionMetadata => "share_group_partition_metadata",
            ShareGroupMemberMetadata => "share_group_member_metadata",
            ShareGroupMetadata => "share_group_metadata",
            ShareGroupTargetAssignmentMetadata => "share_group_target_assignment_metadata",
            ShareGroupTargetAssignmentMember => "share_group_target_assignment_member",
            ShareGroupCurrentMemberAssignment => "share_group_current_member_assignment",
            ShareGroupStatePartitionMetadata => "share_group_state_partition_metadata",
            Unknown(_) => "unknown",
        }
    }

    /// Highest value version this reader understands; KIP-915 froze the versions of these
    /// schemas (new fields are tagged), so a higher one is a format we must not guess at.
    fn max_value_version(self) -> Option<i16> {
        match self {
            RecordKind::OffsetCommit | RecordKind::GroupMetadata => Some(4),
            RecordKind::Unknown(_) => None,
            _ => Some(0),
        }
    }
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordKind::Unknown(n) => write!(f, "unknown record type {n}"),
            k => f.write_str(k.as_str()),
        }
    }
}

/// Why a key or value does not decode. `at` is a byte position inside the key or value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("{field} runs past the end at byte {at}")]
    Truncated { field: &'static str, at: usize },
    #[error("{field} has invalid length {length} at byte {at}")]
    BadLength {
        field: &'static str,
        at: usize,
        length: i64,
    },
    #[error("non-nullable {field} is null at byte {at}")]
    UnexpectedNull { field: &'static str, at: usize },
    #[error("{field} varint is too long at byte {at}")]
    VarintTooLong { field: &'static str, at: usize },
    #[error("{kind} value version {version} is not supported")]
    UnsupportedVersion { kind: RecordKind, version: i16 },
}

/// A Kafka topic id. Displayed as Kafka prints it (URL-safe base64 without padding).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Uuid(pub [u8; 16]);

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut bits = 0u32;
        let mut nbits = 0;
        for &b in &self.0 {
            bits = (bits << 8) | b as u32;
            nbits += 8;
            while nbits >= 6 {
                nbits -= 6;
                let c = ALPHABET
                    .get(((bits >> nbits) & 63) as usize)
                    .copied()
                    .unwrap_or(b'?');
                fmt::Write::write_char(f, c as char)?;
            }
        }
        if nbits > 0 {
            let c = ALPHABET
                .get(((bits << (6 - nbits)) & 63) as usize)
                .copied()
                .unwrap_or(b'?');
            fmt::Write::write_char(f, c as char)?;
        }
        Ok(())
    }
}

/// A decoded key. Which optional fields are set depends on `kind`: every known kind has `group`;
/// offset commits add `topic` and `partition`; member records add `member_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key<'a> {
    /// The leading int16 (Kafka calls it the key version).
    pub record_type: i16,
    pub kind: RecordKind,
    pub group: Option<Cow<'a, str>>,
    pub topic: Option<Cow<'a, str>>,
    pub partition: Option<i32>,
    pub member_id: Option<Cow<'a, str>>,
    /// The key bytes after the type, kept for unknown kinds so they can still be shown.
    pub unknown: Option<&'a [u8]>,
}

/// A decoded, non-tombstone value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value<'a> {
    /// The value's leading int16 schema version.
    pub version: i16,
    pub body: ValueBody<'a>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueBody<'a> {
    OffsetCommit(OffsetCommitValue<'a>),
    GroupMetadata(GroupMetadataValue<'a>),
    /// Consumer/share group metadata (the group epoch) and target assignment metadata (the
    /// assignment epoch): single-epoch records.
    Epoch(i32),
    /// Consumer and share group partition metadata.
    PartitionMetadata(Vec<TopicMetadata<'a>>),
    /// Consumer and share group member metadata.
    MemberMetadata(MemberMetadataValue<'a>),
    /// A member's target assignment.
    TargetAssignment(Vec<TopicPartitions>),
    /// A member's current assignment.
    CurrentAssignment(CurrentAssignmentValue),
    ShareGroupStatePartitionMetadata(ShareStatePartitionMetadataValue<'a>),
    /// The value bytes after the version, for record kinds this reader does not know.
    Unknown(&'a [u8]),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCommitValue<'a> {
    pub offset: i64,
    /// Version 3 and later; -1 when unknown.
    pub leader_epoch: i32,
    pub metadata: Cow<'a, str>,
    pub commit_timestamp: i64,
    /// Version 1 only; -1 otherwise.
    pub expire_timestamp: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMetadataValue<'a> {
    pub protocol_type: Cow<'a, str>,
    pub generation: i32,
    pub protocol: Option<Cow<'a, str>>,
    pub leader: Option<Cow<'a, str>>,
    /// Version 2 and later; -1 before.
    pub current_state_timestamp: i64,
    pub members: Vec<GroupMember<'a>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember<'a> {
    pub member_id: Cow<'a, str>,
    /// Version 3 and later (static membership).
    pub group_instance_id: Option<Cow<'a, str>>,
    pub client_id: Cow<'a, str>,
    pub client_host: Cow<'a, str>,
    /// Version 1 and later; -1 before.
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    /// Protocol-specific; for `protocol_type == "consumer"` see [`decode_subscription`].
    pub subscription: &'a [u8],
    /// Protocol-specific; for `protocol_type == "consumer"` see [`decode_assignment`].
    pub assignment: &'a [u8],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMetadata<'a> {
    pub topic_id: Uuid,
    pub topic_name: Cow<'a, str>,
    pub num_partitions: i32,
    pub partition_racks: Vec<PartitionRacks<'a>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionRacks<'a> {
    pub partition: i32,
    pub racks: Vec<Cow<'a, str>>,
}

/// Consumer group (type 5) and share group (type 10) member metadata; fields that only the
/// consumer-group schema has are `None` for share groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberMetadataValue<'a> {
    pub instance_id: Option<Cow<'a, str>>,
    pub rack_id: Option<Cow<'a, str>>,
    pub client_id: Cow<'a, str>,
    pub client_host: Cow<'a, str>,
    pub subscribed_topic_names: Vec<Cow<'a, str>>,
    pub subscribed_topic_regex: Option<Cow<'a, str>>,
    pub rebalance_timeout_ms: Option<i32>,
    pub server_assignor: Option<Cow<'a, str>>,
    /// Tagged field 0: set when the member still speaks the classic protocol.
    pub classic: Option<ClassicMemberMetadata<'a>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassicMemberMetadata<'a> {
    pub session_timeout_ms: i32,
    pub supported_protocols: Vec<(Cow<'a, str>, &'a [u8])>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPartitions {
    pub topic_id: Uuid,
    pub partitions: Vec<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentAssignmentValue {
    pub member_epoch: i32,
    pub previous_member_epoch: i32,
    pub state: i8,
    pub assigned_partitions: Vec<TopicPartitions>,
    /// Consumer groups only (share groups never revoke).
    pub partitions_pending_revocation: Vec<TopicPartitions>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareStatePartitionMetadataValue<'a> {
    /// (topic id, topic name, partitions) with initialised share-group state.
    pub initialized_topics: Vec<(Uuid, Cow<'a, str>, Vec<i32>)>,
    /// (topic id, topic name) whose share-group state is being deleted.
    pub deleting_topics: Vec<(Uuid, Cow<'a, str>)>,
}

/// A consumer-protocol subscription (the `subscription` bytes of a "consumer" group member).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription<'a> {
    pub version: i16,
    pub topics: Vec<Cow<'a, str>>,
    pub user_data: Option<&'a [u8]>,
    /// Version 1 and later.
    pub owned_partitions: Vec<(Cow<'a, str>, Vec<i32>)>,
    /// Version 2 and later; -1 before.
    pub generation_id: i32,
    /// Version 3 and later.
    pub rack_id: Option<Cow<'a, str>>,
}

/// A consumer-protocol assignment (the `assignment` bytes of a "consumer" group member).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment<'a> {
    pub version: i16,
    pub assigned_partitions: Vec<(Cow<'a, str>, Vec<i32>)>,
    pub user_data: Option<&'a [u8]>,
}

/// One `__consumer_offsets` record. `value == None` is a tombstone (the group or offset was
/// deleted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetsRecord<'a> {
    pub key: Key<'a>,
    pub value: Option<Value<'a>>,
}

/// Decodes a whole record. Callers that want the key even when the value is corrupt use
/// [`decode_key`] and [`decode_value`] separately.
pub fn decode<'a>(
    key: &'a [u8],
    value: Option<&'a [u8]>,
) -> Result<OffsetsRecord<'a>, DecodeError> {
    let key_decoded = decode_key(key)?;
    let value = match value {
        Some(v) => Some(decode_value(key_decoded.kind, v)?),
        None => None,
    };
    Ok(OffsetsRecord {
        key: key_decoded,
        value,
    })
}

/// Decodes a key. Unknown record types succeed with `kind == Unknown` and the raw bytes.
pub fn decode_key(key: &[u8]) -> Result<Key<'_>, DecodeError> {
    let mut r = Reader::new(key, false);
    let record_type = r.i16("record type")?;
    let kind = RecordKind::from_type(record_type);
    let mut k = Key {
        record_type,
        kind,
        group: None,
        topic: None,
        partition: None,
        member_id: None,
        unknown: None,
    };
    use RecordKind::*;
    match kind {
        Unknown(_) => k.unknown = Some(r.rest()),
        OffsetCommit => {
            k.group = Some(r.string("group")?);
            k.topic = Some(r.string("topic")?);
            k.partition = Some(r.i32("partition")?);
        }
        ConsumerGroupMemberMetadata
        | ConsumerGroupTargetAssignmentMember
        | ConsumerGroupCurrentMemberAssignment
        | ShareGroupMemberMetadata
        | ShareGroupTargetAssignmentMember
        | ShareGroupCurrentMemberAssignment => {
            k.group = Some(r.string("group id")?);
            k.member_id = Some(r.string("member id")?);
        }
        _ => k.group = Some(r.string("group id")?),
    }
    Ok(k)
}

/// Decodes a (non-null) value of the given kind.
pub fn decode_value(kind: RecordKind, value: &[u8]) -> Result<Value<'_>, DecodeError> {
    let mut r = Reader::new(value, false);
    let version = r.i16("value version")?;
    if version < 0 || kind.max_value_version().is_some_and(|max| version > max) {
        return Err(DecodeError::UnsupportedVersion { kind, version });
    }
    use RecordKind::*;
    r.flexible = match kind {
        OffsetCommit | GroupMetadata => version >= 4,
        _ => true,
    };
    let body = match kind {
        Unknown(_) => {
            return Ok(Value {
                version,
                body: ValueBody::Unknown(r.rest()),
            })
        }
        OffsetCommit => ValueBody::OffsetCommit(offset_commit(&mut r, version)?),
        GroupMetadata => ValueBody::GroupMetadata(group_metadata(&mut r, version)?),
        ConsumerGroupMetadata
        | ShareGroupMetadata
        | ConsumerGroupTargetAssignmentMetadata
        | ShareGroupTargetAssignmentMetadata => ValueBody::Epoch(r.i32("epoch")?),
        ConsumerGroupPartitionMetadata | ShareGroupPartitionMetadata => {
            ValueBody::PartitionMetadata(r.array("topics", topic_metadata)?)
        }
        ConsumerGroupMemberMetadata => ValueBody::MemberMetadata(member_metadata(&mut r, true)?),
        ShareGroupMemberMetadata => ValueBody::MemberMetadata(member_metadata(&mut r, false)?),
        ConsumerGroupTargetAssignmentMember | ShareGroupTargetAssignmentMember => {
            ValueBody::TargetAssignment(r.array("topic partitions", topic_partitions)?)
        }
        ConsumerGroupCurrentMemberAssignment | ShareGroupCurrentMemberAssignment => {
            let member_epoch = r.i32("member epoch")?;
            let previous_member_epoch = r.i32("previous member epoch")?;
            let state = r.i8("state")?;
            let assigned_partitions = r.array("assigned partitions", topic_partitions)?;
            let partitions_pending_revocation = if kind == ConsumerGroupCurrentMemberAssignment {
                r.array("partitions pending revocation", topic_partitions)?
            } else {
                Vec::new()
            };
            ValueBody::CurrentAssignment(CurrentAssignmentValue {
                member_epoch,
                previous_member_epoch,
                state,
                assigned_partitions,
                partitions_pending_revocation,
            })
        }
        ShareGroupStatePartitionMetadata => {
            let initialized_topics = r.array("initialized topics", |r| {
                let id = r.uuid("topic id")?;
                let name = r.string("topic name")?;
                let partitions = r.array("partitions", |r| r.i32("partition"))?;
                r.skip_tagged_fields()?;
                Ok((id, name, partitions))
            })?;
            let deleting_topics = r.array("deleting topics", |r| {
                let id = r.uuid("topic id")?;
                let name = r.string("topic name")?;
                r.skip_tagged_fields()?;
                Ok((id, name))
            })?;
            ValueBody::ShareGroupStatePartitionMetadata(ShareStatePartitionMetadataValue {
                initialized_topics,
                deleting_topics,
            })
        }
    };
    if !matches!(body, ValueBody::MemberMetadata(_)) {
        r.skip_tagged_fields()?;
    }
    Ok(Value { version, body })
}

fn offset_commit<'a>(
    r: &mut Reader<'a>,
    version: i16,
) -> Result<OffsetCommitValue<'a>, DecodeError> {
    let offset = r.i64("offset")?;
    let leader_epoch = if version >= 3 {
        r.i32("leader epoch")?
    } else {
        -1
    };
    let metadata = r.string("metadata")?;
    let commit_timestamp = r.i64("commit timestamp")?;
    let expire_timestamp = if version == 1 {
        r.i64("expire timestamp")?
    } else {
        -1
    };
    Ok(OffsetCommitValue {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp,
        expire_timestamp,
    })
}

fn group_metadata<'a>(
    r: &mut Reader<'a>,
    version: i16,
) -> Result<GroupMetadataValue<'a>, DecodeError> {
    let protocol_type = r.string("protocol type")?;
    let generation = r.i32("generation")?;
    let protocol = r.nullable_string("protocol")?;
    let leader = r.nullable_string("leader")?;
    let current_state_timestamp = if version >= 2 {
        r.i64("current state timestamp")?
    } else {
        -1
    };
    let members = r.array("members", |r| {
        let member_id = r.string("member id")?;
        let group_instance_id = if version >= 3 {
            r.nullable_string("group instance id")?
        } else {
            None
        };
        let client_id = r.string("client id")?;
        let client_host = r.string("client host")?;
        let rebalance_timeout_ms = if version >= 1 {
            r.i32("rebalance timeout")?
        } else {
            -1
        };
        let session_timeout_ms = r.i32("session timeout")?;
        let subscription = r.bytes("subscription")?;
        let assignment = r.bytes("assignment")?;
        r.skip_tagged_fields()?;
        Ok(GroupMember {
            member_id,
            group_instance_id,
            client_id,
            client_host,
            rebalance_timeout_ms,
            session_timeout_ms,
            subscription,
            assignment,
        })
    })?;
    Ok(GroupMetadataValue {
        protocol_type,
        generation,
        protocol,
        leader,
        current_state_timestamp,
        members,
    })
}

fn topic_metadata<'a>(r: &mut Reader<'a>) -> Result<TopicMetadata<'a>, DecodeError> {
    let topic_id = r.uuid("topic id")?;
    let topic_name = r.string("topic name")?;
    let num_partitions = r.i32("number of partitions")?;
    let partition_racks = r.array("partition metadata", |r| {
        let partition = r.i32("partition")?;
        let racks = r.array("racks", |r| r.string("rack"))?;
        r.skip_tagged_fields()?;
        Ok(PartitionRacks { partition, racks })
    })?;
    r.skip_tagged_fields()?;
    Ok(TopicMetadata {
        topic_id,
        topic_name,
        num_partitions,
        partition_racks,
    })
}

fn topic_partitions(r: &mut Reader<'_>) -> Result<TopicPartitions, DecodeError> {
    let topic_id = r.uuid("topic id")?;
    let partitions = r.array("partitions", |r| r.i32("partition"))?;
    r.skip_tagged_fields()?;
    Ok(TopicPartitions {
        topic_id,
        partitions,
    })
}

fn member_metadata<'a>(
    r: &mut Reader<'a>,
    consumer: bool,
) -> Result<MemberMetadataValue<'a>, DecodeError> {
    let instance_id = if consumer {
        r.nullable_string("instance id")?
    } else {
        None
    };
    let rack_id = r.nullable_string("rack id")?;
    let client_id = r.string("client id")?;
    let client_host = r.string("client host")?;
    let subscribed_topic_names = r.array("subscribed topic names", |r| r.string("topic name"))?;
    let (subscribed_topic_regex, rebalance_timeout_ms, server_assignor) = if consumer {
        (
            r.nullable_string("subscribed topic regex")?,
            Some(r.i32("rebalance timeout")?),
            r.nullable_string("server assignor")?,
        )
    } else {
        (None, None, None)
    };
    let mut classic = None;
    r.tagged_fields(|tag, bytes| {
        if consumer && tag == 0 {
            classic = Some(classic_member(bytes)?);
        }
        Ok(())
    })?;
    Ok(MemberMetadataValue {
        instance_id,
        rack_id,
        client_id,
        client_host,
        subscribed_topic_names,
        subscribed_topic_regex,
        rebalance_timeout_ms,
        server_assignor,
        classic,
    })
}

fn classic_member(bytes: &[u8]) -> Result<ClassicMemberMetadata<'_>, DecodeError> {
    let mut r = Reader::new(bytes, true);
    let session_timeout_ms = r.i32("classic session timeout")?;
    let supported_protocols = r.array("classic supported protocols", |r| {
        let name = r.string("protocol name")?;
        let metadata = r.bytes("protocol metadata")?;
        r.skip_tagged_fields()?;
        Ok((name, metadata))
    })?;
    r.skip_tagged_fields()?;
    Ok(ClassicMemberMetadata {
        session_timeout_ms,
        supported_protocols,
    })
}

/// Decodes a "consumer" protocol subscription. Like Kafka, versions above 3 are read with the
/// version 3 layout (the protocol promises only to append fields).
pub fn decode_subscription(bytes: &[u8]) -> Result<Subscription<'_>, DecodeError> {
    let mut r = Reader::new(bytes, false);
    let version = r.i16("subscription version")?;
    if version < 0 {
        return Err(DecodeError::UnsupportedVersion {
            kind: RecordKind::GroupMetadata,
            version,
        });
    }
    let topics = r.array("topics", |r| r.string("topic"))?;
    let user_data = r.nullable_bytes("user data")?;
    let owned_partitions = if version >= 1 {
        r.array("owned partitions", topic_name_partitions)?
    } else {
        Vec::new()
    };
    let generation_id = if version >= 2 {
        r.i32("generation id")?
    } else {
        -1
    };
    let rack_id = if version >= 3 {
        r.nullable_string("rack id")?
    } else {
        None
    };
    Ok(Subscription {
        version,
        topics,
        user_data,
        owned_partitions,
        generation_id,
        rack_id,
    })
}

/// Decodes a "consumer" protocol assignment (all versions share one layout).
pub fn decode_assignment(bytes: &[u8]) -> Result<Assignment<'_>, DecodeError> {
    let mut r = Reader::new(bytes, false);
    let version = r.i16("assignment version")?;
    if version < 0 {
        return Err(DecodeError::UnsupportedVersion {
            kind: RecordKind::GroupMetadata,
            version,
        });
    }
    let assigned_partitions = r.array("assigned partitions", topic_name_partitions)?;
    let user_data = r.nullable_bytes("user data")?;
    Ok(Assignment {
        version,
        assigned_partitions,
        user_data,
    })
}

fn topic_name_partitions<'a>(r: &mut Reader<'a>) -> Result<(Cow<'a, str>, Vec<i32>), DecodeError> {
    let topic = r.string("topic")?;
    let partitions = r.array("partitions", |r| r.i32("partition"))?;
    Ok((topic, partitions))
}

/// Kafka's protocol primitives over a borrowed buffer, in classic (`flexible == false`) or
/// flexible (compact lengths, tagged fields) encoding.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    flexible: bool,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], flexible: bool) -> Self {
        Reader {
            buf,
            pos: 0,
            flexible,
        }
    }

    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let at = self.pos;
        let bytes = at
            .checked_add(n)
            .and_then(|end| self.buf.get(at..end))
            .ok_or(DecodeError::Truncated { field, at })?;
        self.pos = at + n;
        Ok(bytes)
    }

    fn fixed<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let at = self.pos;
        self.take(N, field)?
            .try_into()
            .map_err(|_| DecodeError::Truncated { field, at })
    }

    fn i8(&mut self, field: &'static str) -> Result<i8, DecodeError> {
        self.fixed::<1>(field).map(i8::from_be_bytes)
    }
    fn i16(&mut self, field: &'static str) -> Result<i16, DecodeError> {
        self.fixed(field).map(i16::from_be_bytes)
    }
    fn i32(&mut self, field: &'static str) -> Result<i32, DecodeError> {
        self.fixed(field).map(i32::from_be_bytes)
    }
    fn i64(&mut self, field: &'static str) -> Result<i64, DecodeError> {
        self.fixed(field).map(i64::from_be_bytes)
    }
    fn uuid(&mut self, field: &'static str) -> Result<Uuid, DecodeError> {
        self.fixed(field).map(Uuid)
    }

    fn rest(&mut self) -> &'a [u8] {
        let rest = self.buf.get(self.pos..).unwrap_or_default();
        self.pos = self.buf.len();
        rest
    }

    fn uvarint(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        let at = self.pos;
        let mut value = 0u32;
        for i in 0..5 {
            let b = *self
                .buf
                .get(self.pos)
                .ok_or(DecodeError::Truncated { field, at })?;
            self.pos += 1;
            value |= ((b & 0x7F) as u32).wrapping_shl(7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::VarintTooLong { field, at })
    }

    /// A length prefix: int16 (strings) or int32 (bytes, arrays) in classic encoding, N+1 as an
    /// unsigned varint in flexible encoding. `None` = null.
    fn length(&mut self, field: &'static str, wide: bool) -> Result<Option<usize>, DecodeError> {
        let at = self.pos;
        let n: i64 = if self.flexible {
            self.uvarint(field)? as i64 - 1
        } else if wide {
            self.i32(field)? as i64
        } else {
            self.i16(field)? as i64
        };
        match n {
            -1 => Ok(None),
            n if n < -1 => Err(DecodeError::BadLength {
                field,
                at,
                length: n,
            }),
            n => Ok(Some(n as usize)),
        }
    }

    fn nullable_string(
        &mut self,
        field: &'static str,
    ) -> Result<Option<Cow<'a, str>>, DecodeError> {
        match self.length(field, false)? {
            None => Ok(None),
            Some(n) => Ok(Some(String::from_utf8_lossy(self.take(n, field)?))),
        }
    }

    fn string(&mut self, field: &'static str) -> Result<Cow<'a, str>, DecodeError> {
        let at = self.pos;
        self.nullable_string(field)?
            .ok_or(DecodeError::UnexpectedNull { field, at })
    }

    fn nullable_bytes(&mut self, field: &'static str) -> Result<Option<&'a [u8]>, DecodeError> {
        match self.length(field, true)? {
            None => Ok(None),
            Some(n) => self.take(n, field).map(Some),
        }
    }

    fn bytes(&mut self, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let at = self.pos;
        self.nullable_bytes(field)?
            .ok_or(DecodeError::UnexpectedNull { field, at })
    }

    /// A non-nullable array. The count is checked against the bytes left (every element takes
    /// at least one byte), so a corrupt count cannot make us reserve gigabytes.
    fn array<T>(
        &mut self,
        field: &'static str,
        mut element: impl FnMut(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        let at = self.pos;
        let n = self
            .length(field, true)?
            .ok_or(DecodeError::UnexpectedNull { field, at })?;
        if n > self.buf.len() - self.pos {
            return Err(DecodeError::BadLength {
                field,
                at,
                length: n as i64,
            });
        }
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(element(self)?);
        }
        Ok(out)
    }

    /// Calls `f(tag, bytes)` for each tagged field (flexible encoding only).
    fn tagged_fields(
        &mut self,
        mut f: impl FnMut(u32, &'a [u8]) -> Result<(), DecodeError>,
    ) -> Result<(), DecodeError> {
        if !self.flexible {
            return Ok(());
        }
        let count = self.uvarint("tagged field count")?;
        for _ in 0..count {
            let tag = self.uvarint("tag")?;
            let size = self.uvarint("tagged field size")? as usize;
            let bytes = self.take(size, "tagged field")?;
            f(tag, bytes)?;
        }
        Ok(())
    }

    fn skip_tagged_fields(&mut self) -> Result<(), DecodeError> {
        self.tagged_fields(|_, _| Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds classic or flexible encodings for the tests.
    #[derive(Default)]
    struct W {
        out: Vec<u8>,
        flexible: bool,
    }

    impl W {
        fn flexible() -> W {
            W {
                out: Vec::new(),
                flexible: true,
            }
        }
        fn i8(mut self, v: i8) -> Self {
            self.out.extend(v.to_be_bytes());
            self
        }
        fn i16(mut self, v: i16) -> Self {
            self.out.extend(v.to_be_bytes());
            self
        }
        fn i32(mut self, v: i32) -> Self {
            self.out.extend(v.to_be_bytes());
            self
        }
        fn i64(mut self, v: i64) -> Self {
            self.out.extend(v.to_be_bytes());
            self
        }
        fn uvarint(mut self, mut v: u32) -> Self {
            while v >= 0x80 {
                self.out.push((v as u8) | 0x80);
                v >>= 7;
            }
            self.out.push(v as u8);
            self
        }
        fn len(self, n: Option<usize>, wide: bool) -> Self {
            match (self.flexible, n) {
                (true, None) => self.uvarint(0),
                (true, Some(n)) => self.uvarint(n as u32 + 1),
                (false, None) if wide => self.i32(-1),
                (false, None) => self.i16(-1),
                (false, Some(n)) if wide => self.i32(n as i32),
                (false, Some(n)) => self.i16(n as i16),
            }
        }
        fn str(self, s: Option<&str>) -> Self {
            let mut w = self.len(s.map(str::len), false);
            w.out.extend(s.unwrap_or("").as_bytes());
            w
        }
        fn s(self, s: &str) -> Self {
            self.str(Some(s))
        }
        fn bytes(self, b: &[u8]) -> Self {
            let mut w = self.len(Some(b.len()), true);
            w.out.extend(b);
            w
        }
        fn arr(self, n: usize) -> Self {
            self.len(Some(n), true)
        }
        fn raw(mut self, b: &[u8]) -> Self {
            self.out.extend(b);
            self
        }
        fn tags0(self) -> Self {
            self.uvarint(0)
        }
    }

    fn offset_key(t: i16) -> Vec<u8> {
        W::default().i16(t).s("my-group").s("orders").i32(7).out
    }

    #[test]
    fn offset_commit_keys_and_values() {
        for t in [0, 1] {
            let bytes = offset_key(t);
            let k = decode_key(&bytes).unwrap();
            assert_eq!(k.record_type, t);
            assert_eq!(k.kind, RecordKind::OffsetCommit);
            assert_eq!(k.group.as_deref(), Some("my-group"));
            assert_eq!(k.topic.as_deref(), Some("orders"));
            assert_eq!(k.partition, Some(7));
            assert!(
                matches!(k.group, Some(Cow::Borrowed(_))),
                "strings are borrowed"
            );
        }
        let v0 = W::default().i16(0).i64(42).s("meta").i64(1000).out;
        let v1 = W::default()
            .i16(1)
            .i64(42)
            .s("meta")
            .i64(1000)
            .i64(2000)
            .out;
        let v3 = W::default().i16(3).i64(42).i32(5).s("meta").i64(1000).out;
        let v4 = W::flexible()
            .i16(4)
            .i64(42)
            .i32(5)
            .s("meta")
            .i64(1000)
            .tags0()
            .out;
        let expect = |epoch, expire| OffsetCommitValue {
            offset: 42,
            leader_epoch: epoch,
            metadata: Cow::Borrowed("meta"),
            commit_timestamp: 1000,
            expire_timestamp: expire,
        };
        for (bytes, version, want) in [
            (&v0, 0, expect(-1, -1)),
            (&v1, 1, expect(-1, 2000)),
            (&v3, 3, expect(5, -1)),
            (&v4, 4, expect(5, -1)),
        ] {
            let v = decode_value(RecordKind::OffsetCommit, bytes).unwrap();
            assert_eq!(v.version, version);
            assert_eq!(v.body, ValueBody::OffsetCommit(want));
        }
        let tombstone_key = offset_key(1);
        let rec = decode(&tombstone_key, None).unwrap();
        assert_eq!(rec.value, None, "null value is a tombstone");
        let v5 = W::default().i16(5).i64(42).out;
        assert_eq!(
            decode_value(RecordKind::OffsetCommit, &v5),
            Err(DecodeError::UnsupportedVersion {
                kind: RecordKind::OffsetCommit,
                version: 5
            })
        );
    }

    fn subscription_v1() -> Vec<u8> {
        W::default()
            .i16(1)
            .arr(1)
            .s("orders")
            .i32(-1) // null user data
            .arr(1)
            .s("orders")
            .arr(2)
            .i32(0)
            .i32(1)
            .out
    }

    fn assignment_v0() -> Vec<u8> {
        W::default()
            .i16(0)
            .arr(1)
            .s("orders")
            .arr(1)
            .i32(3)
            .bytes(b"ud")
            .out
    }

    #[test]
    fn group_metadata_all_versions() {
        let key = W::default().i16(2).s("my-group").out;
        let k = decode_key(&key).unwrap();
        assert_eq!(k.kind, RecordKind::GroupMetadata);
        assert_eq!(k.group.as_deref(), Some("my-group"));
        for version in 0..=4i16 {
            let mut w = if version >= 4 {
                W::flexible()
            } else {
                W::default()
            };
            w = w.i16(version).s("consumer").i32(9).s("range").str(None);
            if version >= 2 {
                w = w.i64(123);
            }
            w = w.arr(1).s("member-1");
            if version >= 3 {
                w = w.str(Some("static-1"));
            }
            w = w.s("client").s("/10.0.0.1");
            if version >= 1 {
                w = w.i32(60000);
            }
            w = w
                .i32(10000)
                .bytes(&subscription_v1())
                .bytes(&assignment_v0());
            if version >= 4 {
                w = w.tags0().tags0();
            }
            let v = decode_value(RecordKind::GroupMetadata, &w.out).unwrap();
            let ValueBody::GroupMetadata(g) = v.body else {
                panic!("{v:?}")
            };
            assert_eq!(g.protocol_type, "consumer");
            assert_eq!(g.generation, 9);
            assert_eq!(g.protocol.as_deref(), Some("range"));
            assert_eq!(g.leader, None);
            assert_eq!(
                g.current_state_timestamp,
                if version >= 2 { 123 } else { -1 }
            );
            assert_eq!(g.members.len(), 1);
            let m = &g.members[0];
            assert_eq!(m.member_id, "member-1");
            assert_eq!(
                m.group_instance_id.as_deref(),
                (version >= 3).then_some("static-1")
            );
            assert_eq!(
                m.rebalance_timeout_ms,
                if version >= 1 { 60000 } else { -1 }
            );
            assert_eq!(m.session_timeout_ms, 10000);
            let s = decode_subscription(m.subscription).unwrap();
            assert_eq!(s.topics, vec!["orders"]);
            assert_eq!(
                s.owned_partitions,
                vec![(Cow::Borrowed("orders"), vec![0, 1])]
            );
            assert_eq!(s.generation_id, -1);
            let a = decode_assignment(m.assignment).unwrap();
            assert_eq!(
                a.assigned_partitions,
                vec![(Cow::Borrowed("orders"), vec![3])]
            );
            assert_eq!(a.user_data, Some(&b"ud"[..]));
        }
    }

    #[test]
    fn kip848_records() {
        let id = [7u8; 16];
        // Group epoch.
        let k = W::default().i16(3).s("g").out;
        let v = W::flexible().i16(0).i32(12).tags0().out;
        let r = decode(&k, Some(&v)).unwrap();
        assert_eq!(r.key.kind, RecordKind::ConsumerGroupMetadata);
        assert_eq!(r.value.unwrap().body, ValueBody::Epoch(12));
        // Member metadata with the classic tagged field.
        let k = W::default().i16(5).s("g").s("m1").out;
        let classic = W::flexible()
            .i32(45000)
            .arr(1)
            .s("range")
            .bytes(b"\x00\x01")
            .tags0()
            .tags0()
            .out;
        let v = W::flexible()
            .i16(0)
            .str(None)
            .str(Some("rack-a"))
            .s("client")
            .s("/host")
            .arr(2)
            .s("a")
            .s("b")
            .str(None)
            .i32(30000)
            .str(Some("uniform"))
            .uvarint(1)
            .uvarint(0)
            .uvarint(classic.len() as u32)
            .raw(&classic)
            .out;
        let r = decode(&k, Some(&v)).unwrap();
        assert_eq!(r.key.member_id.as_deref(), Some("m1"));
        let ValueBody::MemberMetadata(m) = r.value.unwrap().body else {
            panic!()
        };
        assert_eq!(m.rack_id.as_deref(), Some("rack-a"));
        assert_eq!(m.subscribed_topic_names, vec!["a", "b"]);
        assert_eq!(m.rebalance_timeout_ms, Some(30000));
        assert_eq!(m.server_assignor.as_deref(), Some("uniform"));
        let c = m.classic.unwrap();
        assert_eq!(c.session_timeout_ms, 45000);
        assert_eq!(
            c.supported_protocols,
            vec![(Cow::Borrowed("range"), &b"\x00\x01"[..])]
        );
        // Current assignment.
        let k = W::default().i16(8).s("g").s("m1").out;
        let v = W::flexible()
            .i16(0)
            .i32(4)
            .i32(3)
            .i8(0)
            .arr(1)
            .raw(&id)
            .arr(2)
            .i32(0)
            .i32(2)
            .tags0()
            .arr(0)
            .tags0()
            .out;
        let r = decode(&k, Some(&v)).unwrap();
        let ValueBody::CurrentAssignment(a) = r.value.unwrap().body else {
            panic!()
        };
        assert_eq!(a.member_epoch, 4);
        assert_eq!(
            a.assigned_partitions,
            vec![TopicPartitions {
                topic_id: Uuid(id),
                partitions: vec![0, 2]
            }]
        );
        // Partition metadata.
        let k = W::default().i16(4).s("g").out;
        let v = W::flexible()
            .i16(0)
            .arr(1)
            .raw(&id)
            .s("orders")
            .i32(3)
            .arr(1)
            .i32(0)
            .arr(1)
            .s("r1")
            .tags0()
            .tags0()
            .tags0()
            .out;
        let ValueBody::PartitionMetadata(t) = decode(&k, Some(&v)).unwrap().value.unwrap().body
        else {
            panic!()
        };
        assert_eq!(t[0].topic_name, "orders");
        assert_eq!(t[0].partition_racks[0].racks, vec!["r1"]);
    }

    #[test]
    fn unknown_types_are_reported_not_rejected() {
        let k = W::default().i16(99).raw(b"xyz").out;
        let r = decode(&k, Some(b"\x00\x02abc")).unwrap();
        assert_eq!(r.key.kind, RecordKind::Unknown(99));
        assert_eq!(r.key.unknown, Some(&b"xyz"[..]));
        let v = r.value.unwrap();
        assert_eq!(v.version, 2);
        assert_eq!(v.body, ValueBody::Unknown(b"abc"));
        assert_eq!(
            RecordKind::Unknown(99).to_string(),
            "unknown record type 99"
        );
    }

    #[test]
    fn corrupt_bytes_give_typed_errors() {
        assert_eq!(
            decode_key(b"\x00"),
            Err(DecodeError::Truncated {
                field: "record type",
                at: 0
            })
        );
        let mut k = offset_key(1);
        k.truncate(k.len() - 2);
        assert_eq!(
            decode_key(&k),
            Err(DecodeError::Truncated {
                field: "partition",
                at: k.len() - 2
            })
        );
        assert_eq!(
            decode_key(&W::default().i16(2).i16(-1).out),
            Err(DecodeError::UnexpectedNull {
                field: "group id",
                at: 2
            })
        );
        assert_eq!(
            decode_key(&W::default().i16(2).i16(-5).out),
            Err(DecodeError::BadLength {
                field: "group id",
                at: 2,
                length: -5
            })
        );
        // A member count far beyond the bytes left.
        let v = W::default()
            .i16(0)
            .s("consumer")
            .i32(1)
            .str(None)
            .str(None)
            .i32(i32::MAX)
            .out;
        assert!(matches!(
            decode_value(RecordKind::GroupMetadata, &v),
            Err(DecodeError::BadLength {
                field: "members",
                ..
            })
        ));
        // Invalid UTF-8 is replaced, as Java does, not rejected.
        let k = W::default().i16(2).raw(&[0, 2, 0xFF, b'a']).out;
        assert_eq!(decode_key(&k).unwrap().group.as_deref(), Some("\u{FFFD}a"));
    }

    #[test]
    fn uuid_prints_like_kafka() {
        // Kafka's Uuid.toString of all-zero bytes, and of a known id.
        assert_eq!(Uuid([0; 16]).to_string(), "AAAAAAAAAAAAAAAAAAAAAA");
        let mut b = [0u8; 16];
        b[15] = 1;
        assert_eq!(Uuid(b).to_string(), "AAAAAAAAAAAAAAAAAAAAAQ");
        assert_eq!(Uuid([0xFF; 16]).to_string(), "_____________________w");
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut s = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let seeds: Vec<Vec<u8>> = vec![
            offset_key(1),
            W::default().i16(3).i64(42).i32(5).s("meta").i64(1000).out,
            W::default()
                .i16(1)
                .s("consumer")
                .i32(1)
                .s("range")
                .s("m")
                .arr(1)
                .s("m")
                .s("c")
                .s("h")
                .i32(1)
                .i32(1)
                .bytes(&subscription_v1())
                .bytes(&assignment_v0())
                .out,
            subscription_v1(),
        ];
        for i in 0..20000 {
            let mut buf = seeds[i % seeds.len()].clone();
            for _ in 0..(next() % 3 + 1) {
                let at = next() as usize % buf.len();
                buf[at] = next() as u8;
            }
            buf.truncate(next() as usize % (buf.len() + 1));
            let _ = decode_key(&buf);
            for t in 0..17 {
                let _ = decode_value(RecordKind::from_type(t), &buf);
            }
            let _ = decode_subscription(&buf);
            let _ = decode_assignment(&buf);
        }
    }

    /// Every record of every real `__consumer_offsets` partition decodes.
    #[test]
    fn real_consumer_offsets_partitions_decode() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/kafka-real");
        if !root.is_dir() {
            eprintln!("skipping: {} is absent", root.display());
            return;
        }
        let mut logs = Vec::new();
        find_offsets_logs(&root, &mut logs);
        assert!(
            !logs.is_empty(),
            "no __consumer_offsets logs under {}",
            root.display()
        );
        let (mut records, mut groups) = (0usize, std::collections::BTreeSet::new());
        for log in &logs {
            let data = std::fs::read(log).unwrap();
            for_each_record(&data, &mut |key, value| {
                let key = key.unwrap_or_else(|| panic!("{}: record without key", log.display()));
                let r = decode(key, value).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
                assert!(
                    !matches!(r.key.kind, RecordKind::Unknown(_)),
                    "{}: {r:?}",
                    log.display()
                );
                if let Some(Value {
                    body: ValueBody::GroupMetadata(g),
                    ..
                }) = &r.value
                {
                    if g.protocol_type == "consumer" {
                        for m in &g.members {
                            decode_subscription(m.subscription).unwrap();
                            decode_assignment(m.assignment).unwrap();
                        }
                    }
                }
                groups.insert(r.key.group.map(|g| g.into_owned()));
                records += 1;
            });
        }
        assert!(
            records > 500,
            "only {records} records in {} logs",
            logs.len()
        );
        assert!(groups.len() > 3, "{groups:?}");
    }

    fn find_offsets_logs(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                find_offsets_logs(&p, out);
            } else if p.extension().is_some_and(|x| x == "log")
                && p.parent()
                    .and_then(|d| d.file_name())
                    .is_some_and(|d| d.to_string_lossy().starts_with("__consumer_offsets-"))
            {
                out.push(p);
            }
        }
    }

    /// Receives each record's key and value.
    type RecordSink<'s> = dyn FnMut(Option<&[u8]>, Option<&[u8]>) + 's;

    /// A minimal, independent batch and record walk (the real one lives in `walk`): valid real
    /// files need no resynchronisation.
    fn for_each_record(data: &[u8], f: &mut RecordSink<'_>) {
        use crate::be;
        use crate::compression::decompress;
        let mut pos = 0usize;
        let mut buf = Vec::new();
        while let (Some(len), Some(magic)) = (be::i32(data, pos + 8), be::i8(data, pos + 16)) {
            let end = pos + 12 + len as usize;
            let Some(batch) = data.get(pos..end) else {
                break;
            };
            if magic == 2 {
                let attrs = be::i16(batch, 21).unwrap();
                if attrs & 0x20 == 0 {
                    let codec = crate::Codec::from_attributes(attrs);
                    decompress(codec, &batch[61..], &mut buf, false).unwrap();
                    for r in crate::records::RecordIter::new(&buf) {
                        let r = r.unwrap();
                        f(r.key, r.value);
                    }
                }
            } else {
                legacy_records(batch, f);
            }
            pos = end;
        }
    }

    fn legacy_records(entry: &[u8], f: &mut RecordSink<'_>) {
        let m = crate::LegacyMessage::parse(entry).unwrap();
        if m.codec() == crate::Codec::None {
            f(m.key, m.value);
            return;
        }
        let mut inner = Vec::new();
        crate::compression::decompress(m.codec(), m.value.unwrap(), &mut inner, true).unwrap();
        let mut pos = 0;
        while let Some(size) = crate::be::i32(&inner, pos + 8) {
            let end = pos + 12 + size as usize;
            legacy_records(&inner[pos..end], f);
            pos = end;
        }
    }
}
