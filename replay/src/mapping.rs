//! The mapping from a Kafka message to table columns, and the row encoder that applies it.
//!
//! Several telemetry table variants exist in MS5 deployments (wide, narrow per-metric, OEE rows),
//! so nothing about the target table is hard-coded: a TOML mapping names, for each column, which
//! part of the message feeds it (a JSON pointer into the value, the key, the Kafka timestamp,
//! offset, partition, topic, or a header) and its PostgreSQL type. The mapping is validated once
//! when it is loaded ([`Mapping::from_toml`], [`Mapping::preset`]); afterwards the encoder only
//! deals with typed [`Column`]s, and every value that does not fit becomes a [`RowError`] with a
//! reason (the dead-letter file), never a panic.
//!
//! Rows are encoded straight into PostgreSQL's binary COPY format (see [`crate::pgcopy`]): no
//! intermediate row structs, one pass over the JSON document.

use std::fmt;

use serde::Deserialize;
use serde_json::Value;

use crate::json_scan::{self, Kind, Lit, Span};
use crate::pgcopy;
use crate::project::Tree;

/// PostgreSQL column types the replay can write (binary COPY needs the exact type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColType {
    Timestamptz,
    Timestamp,
    Uuid,
    Float8,
    Int8,
    Bool,
    Text,
    Jsonb,
}

impl ColType {
    /// The type as written in DDL.
    pub fn sql(self) -> &'static str {
        match self {
            ColType::Timestamptz => "timestamptz",
            ColType::Timestamp => "timestamp",
            ColType::Uuid => "uuid",
            ColType::Float8 => "double precision",
            ColType::Int8 => "bigint",
            ColType::Bool => "boolean",
            ColType::Text => "text",
            ColType::Jsonb => "jsonb",
        }
    }
    /// `pg_type.typname` values whose binary input accepts what this type encodes.
    /// `timestamp` and `timestamptz` share the int64-microseconds form (a `timestamp` column then
    /// holds UTC wall-clock time, which the pre-flight warns about); `varchar` takes text's bytes.
    pub fn accepts(self, typname: &str) -> bool {
        match self {
            ColType::Timestamptz | ColType::Timestamp => {
                typname == "timestamptz" || typname == "timestamp"
            }
            ColType::Uuid => typname == "uuid",
            ColType::Float8 => typname == "float8",
            ColType::Int8 => typname == "int8",
            ColType::Bool => typname == "bool",
            ColType::Text => typname == "text" || typname == "varchar",
            ColType::Jsonb => typname == "jsonb",
        }
    }
    fn is_time(self) -> bool {
        matches!(self, ColType::Timestamptz | ColType::Timestamp)
    }
}

/// How a time value is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TimeFormat {
    /// ISO 8601 / RFC 3339 strings, or epoch milliseconds when the value is a JSON number.
    #[default]
    Auto,
    Iso8601,
    EpochMs,
}

/// A JSON pointer (RFC 6901), split and unescaped once when the mapping is loaded:
/// `serde_json::Value::pointer` re-splits and allocates per token on every call, which showed
/// up as a large share of the per-event cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pointer {
    pub text: String,
    tokens: Vec<String>,
}

impl Pointer {
    /// `text` must be empty or start with `/` (checked by the caller).
    pub fn new(text: &str) -> Pointer {
        let tokens = text
            .split('/')
            .skip(1)
            .map(|t| t.replace("~1", "/").replace("~0", "~"))
            .collect();
        Pointer {
            text: text.to_string(),
            tokens,
        }
    }

    /// The unescaped reference tokens.
    pub fn tokens(&self) -> &[String] {
        &self.tokens
    }

    /// The value the pointer names, like `Value::pointer`.
    pub fn lookup<'v>(&self, doc: &'v Value) -> Option<&'v Value> {
        self.tokens.iter().try_fold(doc, |v, t| match v {
            Value::Object(m) => m.get(t.as_str()),
            Value::Array(a) => {
                if t.len() > 1 && t.starts_with('0') {
                    return None;
                }
                t.parse::<usize>().ok().and_then(|i| a.get(i))
            }
            _ => None,
        })
    }
}

/// Which part of a message feeds a column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// A JSON pointer (RFC 6901) into the value document; `""` is the whole document.
    Value(Pointer),
    /// The record key as UTF-8 text.
    Key,
    /// The record timestamp (epoch ms).
    Timestamp,
    Offset,
    Partition,
    Topic,
    /// A header's value as UTF-8 text (the first header with that name).
    Header(String),
    /// With `explode`: the member name of the exploded object.
    MetricName,
    /// With `explode`: the member value of the exploded object.
    MetricValue,
}

/// One validated column.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    pub ty: ColType,
    pub part: Part,
    /// Absent or JSON null gives SQL NULL instead of a dead letter.
    pub optional: bool,
    /// A value of the wrong JSON type gives SQL NULL instead of a dead letter (for sparse or
    /// mixed-type members, such as a metric value that is a number in one event and text in another).
    pub lenient: bool,
    pub time_format: TimeFormat,
}

/// Turns one object member into one row each (the narrow per-metric tables).
#[derive(Debug, Clone, PartialEq)]
pub struct Explode {
    pub pointer: Pointer,
    /// Members that are attributes of the event, not metrics (`quality`, `unit`).
    pub skip: Vec<String>,
}

/// A validated mapping.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapping {
    /// Default target table (the CLI's `--table` overrides it).
    pub table: Option<String>,
    pub columns: Vec<Column>,
    pub explode: Option<Explode>,
    /// The column that carries event time (for `--since/--until` by event time, and the
    /// hypertable's time dimension): the first time-typed column.
    pub time_column: Option<usize>,
    /// Reads only the mapped members (slot = column index, the explode pointer after the
    /// columns).
    projection: Tree,
    /// Whether any column reads the value document (otherwise it is not even parsed).
    needs_json: bool,
}

/// Why a mapping was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MappingError {
    #[error("mapping TOML: {0}")]
    Toml(String),
    #[error("unknown mapping preset {0:?} (known: ms5-telemetry, ms5-metrics)")]
    UnknownPreset(String),
    #[error("the mapping has no columns")]
    NoColumns,
    #[error("column {column:?}: {reason}")]
    Column { column: String, reason: String },
    #[error("duplicate column {0:?}")]
    Duplicate(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMapping {
    table: Option<String>,
    explode: Option<RawExplode>,
    #[serde(default)]
    columns: Vec<RawColumn>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExplode {
    pointer: String,
    #[serde(default)]
    skip: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawColumn {
    name: String,
    #[serde(rename = "type")]
    ty: ColType,
    from: String,
    #[serde(default)]
    optional: bool,
    #[serde(default)]
    lenient: bool,
    #[serde(default)]
    time_format: TimeFormat,
}

/// The `ms5-telemetry` preset: MS5 events into the wide table (variant A). The gateway sends one
/// sparse event per tag change, so every metric column is optional and lenient.
pub const MS5_TELEMETRY: &str = r#"
table = "telemetry"
columns = [
  { name = "timestamp",   type = "timestamptz", from = "/timestamp" },
  { name = "asset_id",    type = "uuid",        from = "/assetId" },
  { name = "temperature", type = "float8",      from = "/data/temperature", optional = true },
  { name = "pressure",    type = "float8",      from = "/data/pressure",    optional = true },
  { name = "vibration",   type = "float8",      from = "/data/vibration",   optional = true },
  { name = "speed",       type = "float8",      from = "/data/speed",       optional = true },
  { name = "metadata",    type = "jsonb",       from = "/metadata",         optional = true },
]
"#;

/// The `ms5-metrics` preset: one row per metric member of `data` (narrow table).
pub const MS5_METRICS: &str = r#"
table = "telemetry_metrics"
explode = { pointer = "/data", skip = ["quality", "unit"] }
columns = [
  { name = "timestamp",  type = "timestamptz", from = "/timestamp" },
  { name = "asset_id",   type = "uuid",        from = "/assetId" },
  { name = "event_id",   type = "uuid",        from = "/eventId" },
  { name = "metric",     type = "text",        from = "metric.name" },
  { name = "value",      type = "float8",      from = "metric.value", optional = true, lenient = true },
  { name = "value_text", type = "text",        from = "metric.value", optional = true, lenient = true },
  { name = "quality",    type = "text",        from = "/data/quality", optional = true },
  { name = "unit",       type = "text",        from = "/data/unit",    optional = true },
]
"#;

impl Mapping {
    /// A built-in preset by name.
    pub fn preset(name: &str) -> Result<Mapping, MappingError> {
        match name {
            "ms5-telemetry" => Mapping::from_toml(MS5_TELEMETRY),
            "ms5-metrics" => Mapping::from_toml(MS5_METRICS),
            _ => Err(MappingError::UnknownPreset(name.to_string())),
        }
    }

    /// Parses and validates a TOML mapping (format in docs/REPLAY.md).
    pub fn from_toml(text: &str) -> Result<Mapping, MappingError> {
        let raw: RawMapping =
            toml::from_str(text).map_err(|e| MappingError::Toml(e.to_string()))?;
        if raw.columns.is_empty() {
            return Err(MappingError::NoColumns);
        }
        let mut columns: Vec<Column> = Vec::with_capacity(raw.columns.len());
        for c in raw.columns {
            let bad = |reason: String| MappingError::Column {
                column: c.name.clone(),
                reason,
            };
            if c.name.is_empty() || c.name.contains('\0') {
                return Err(bad("empty name or NUL in name".into()));
            }
            if columns.iter().any(|x| x.name == c.name) {
                return Err(MappingError::Duplicate(c.name));
            }
            let part = parse_part(&c.from).map_err(bad)?;
            if matches!(part, Part::MetricName | Part::MetricValue) && raw.explode.is_none() {
                return Err(bad(format!("{:?} needs an `explode` section", c.from)));
            }
            let fits = match (&part, c.ty) {
                (Part::Value(_) | Part::MetricValue, _) => true,
                (Part::Timestamp, t) => t.is_time() || t == ColType::Int8,
                (Part::Offset | Part::Partition, t) => t == ColType::Int8 || t == ColType::Text,
                (Part::Key | Part::Header(_) | Part::Topic | Part::MetricName, t) => !matches!(
                    t,
                    ColType::Float8 | ColType::Int8 | ColType::Bool | ColType::Jsonb
                ),
            };
            if !fits {
                return Err(bad(format!(
                    "{:?} cannot be written as {}",
                    c.from,
                    c.ty.sql()
                )));
            }
            columns.push(Column {
                name: c.name,
                ty: c.ty,
                part,
                optional: c.optional,
                lenient: c.lenient,
                time_format: c.time_format,
            });
        }
        let explode = match raw.explode {
            Some(e) => {
                if !(e.pointer.is_empty() || e.pointer.starts_with('/')) {
                    return Err(MappingError::Toml(format!(
                        "explode.pointer {:?} is not a JSON pointer",
                        e.pointer
                    )));
                }
                Some(Explode {
                    pointer: Pointer::new(&e.pointer),
                    skip: e.skip,
                })
            }
            None => None,
        };
        let time_column = columns.iter().position(|c| c.ty.is_time());
        let mut pointers: Vec<(usize, &[String])> = columns
            .iter()
            .enumerate()
            .filter_map(|(i, c)| match &c.part {
                Part::Value(p) => Some((i, p.tokens())),
                _ => None,
            })
            .collect();
        if let Some(e) = &explode {
            pointers.push((columns.len(), e.pointer.tokens()));
        }
        let projection = match &explode {
            Some(_) => Tree::build(&pointers).listing_members_of(columns.len()),
            None => Tree::build(&pointers),
        };
        let needs_json = explode.is_some()
            || columns
                .iter()
                .any(|c| matches!(c.part, Part::Value(_) | Part::MetricValue));
        Ok(Mapping {
            needs_json,
            table: raw.table,
            columns,
            explode,
            time_column,
            projection,
        })
    }

    /// Column names as a quoted SQL list.
    pub fn column_list(&self) -> String {
        self.columns
            .iter()
            .map(|c| quote_ident(&c.name))
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }
}

fn parse_part(from: &str) -> Result<Part, String> {
    Ok(match from {
        "key" => Part::Key,
        "timestamp" => Part::Timestamp,
        "offset" => Part::Offset,
        "partition" => Part::Partition,
        "topic" => Part::Topic,
        "metric.name" => Part::MetricName,
        "metric.value" => Part::MetricValue,
        "" => Part::Value(Pointer::new("")),
        p if p.starts_with('/') => Part::Value(Pointer::new(p)),
        h => match h.strip_prefix("header:") {
            Some(name) if !name.is_empty() => Part::Header(name.to_string()),
            _ => {
                return Err(format!(
                    "unknown source {h:?} (a JSON pointer such as /data/temperature, key, \
                     timestamp, offset, partition, topic, header:NAME, metric.name, metric.value)"
                ))
            }
        },
    })
}

/// A quoted SQL identifier; `schema.table` is quoted per part. Quotes are doubled, so any name
/// is safe to splice into SQL.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A possibly schema-qualified table name, quoted.
pub fn quote_table(name: &str) -> String {
    match name.split_once('.') {
        Some((s, t)) => format!("{}.{}", quote_ident(s), quote_ident(t)),
        None => quote_ident(name),
    }
}

/// The parts of one message the encoder reads.
#[derive(Debug, Clone, Copy)]
pub struct MessageRef<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    /// Epoch ms; `None` when the source has none (JSON-lines dumps, magic 0).
    pub timestamp: Option<i64>,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: &'a [(&'a [u8], Option<&'a [u8]>)],
}

/// Why one message produced no row (a dead letter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowError {
    NoValue,
    MalformedJson(String),
    Missing {
        column: String,
        source: String,
    },
    WrongType {
        column: String,
        expected: &'static str,
    },
    BadTime {
        column: String,
        text: String,
    },
    OutOfRange {
        column: String,
        text: String,
    },
    BadUuid {
        column: String,
        text: String,
    },
    NotUtf8 {
        column: String,
    },
    NotAnObject {
        pointer: String,
    },
    /// Text with a NUL character, which PostgreSQL's text and jsonb cannot store.
    Nul {
        column: String,
    },
}

impl RowError {
    /// A short machine-readable kind for the dead-letter file.
    pub fn kind(&self) -> &'static str {
        match self {
            RowError::NoValue => "no_value",
            RowError::MalformedJson(_) => "malformed_json",
            RowError::Missing { .. } => "missing_field",
            RowError::WrongType { .. } => "wrong_type",
            RowError::BadTime { .. } => "bad_time",
            RowError::OutOfRange { .. } => "out_of_range",
            RowError::BadUuid { .. } => "bad_uuid",
            RowError::NotUtf8 { .. } => "not_utf8",
            RowError::NotAnObject { .. } => "not_an_object",
            RowError::Nul { .. } => "nul_character",
        }
    }
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RowError::NoValue => write!(f, "the record has no value (tombstone)"),
            RowError::MalformedJson(e) => write!(f, "malformed JSON: {e}"),
            RowError::Missing { column, source } => {
                write!(f, "column {column}: {source} is missing or null")
            }
            RowError::WrongType { column, expected } => {
                write!(f, "column {column}: expected {expected}")
            }
            RowError::BadTime { column, text } => {
                write!(f, "column {column}: unparseable time {text}")
            }
            RowError::OutOfRange { column, text } => {
                write!(f, "column {column}: {text} is out of range")
            }
            RowError::BadUuid { column, text } => write!(f, "column {column}: bad uuid {text}"),
            RowError::NotUtf8 { column } => write!(f, "column {column}: not UTF-8"),
            RowError::NotAnObject { pointer } => write!(f, "{pointer} is not an object"),
            RowError::Nul { column } => write!(
                f,
                "column {column}: text with a NUL character (PostgreSQL cannot store it)"
            ),
        }
    }
}

/// Event-time window (epoch microseconds, `[since, until)`); rows outside are skipped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeWindow {
    pub since_us: Option<i64>,
    pub until_us: Option<i64>,
}

impl TimeWindow {
    pub fn contains(&self, us: i64) -> bool {
        self.since_us.is_none_or(|s| us >= s) && self.until_us.is_none_or(|u| us < u)
    }
}

/// What encoding one message did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encoded {
    pub rows: u32,
    /// Rows left out by the event-time window.
    pub skipped: u32,
}

const PG_EPOCH_US: i64 = 946_684_800_000_000;

/// Encodes the rows for one message onto `out` (binary COPY tuples). On error `out` is left as
/// it was, so a bad message never leaves half a row behind.
pub fn encode_message(
    m: &Mapping,
    msg: &MessageRef<'_>,
    window: &TimeWindow,
    out: &mut Vec<u8>,
) -> Result<Encoded, RowError> {
    let start = out.len();
    let r = encode_inner(m, msg, window, out);
    if r.is_err() {
        out.truncate(start);
    }
    r
}

fn encode_inner(
    m: &Mapping,
    msg: &MessageRef<'_>,
    window: &TimeWindow,
    out: &mut Vec<u8>,
) -> Result<Encoded, RowError> {
    if !m.needs_json {
        return encode_rows(m, msg, Doc::None, window, out);
    }
    let bytes = msg.value.ok_or(RowError::NoValue)?;
    // One entry per column (its pointer's value), then the explode object.
    let slots = m.columns.len() + 1;
    SLOTS.with(|cell| {
        // The slot vectors are reused from message to message: no allocation per event.
        // (Never borrowed twice: encoding does not reenter itself.)
        let mut fresh = Scratch::default();
        let mut guard = cell.try_borrow_mut();
        let v = match guard.as_deref_mut() {
            Ok(v) => v,
            Err(_) => &mut fresh,
        };
        m.projection
            .read_members(bytes, &mut v.slots, slots, &mut v.members)
            .map_err(|e| RowError::MalformedJson(e.to_string()))?;
        encode_rows(m, msg, Doc::Slots(bytes, &v.slots, &v.members), window, out)
    })
}

thread_local! {
    static SLOTS: std::cell::RefCell<Scratch> = const {
        std::cell::RefCell::new(Scratch { slots: Vec::new(), members: Vec::new() })
    };
}

/// Per-thread buffers reused from message to message.
#[derive(Default)]
struct Scratch {
    slots: Vec<Option<Span>>,
    members: Vec<(Span, Span)>,
}

/// The values the mapping's pointers found: spans into the document's text.
#[derive(Clone, Copy)]
enum Doc<'a> {
    None,
    /// The document, the spans per slot, and the explode object's members.
    Slots(&'a [u8], &'a [Option<Span>], &'a [(Span, Span)]),
}

impl<'a> Doc<'a> {
    fn span(self, i: usize) -> Option<Span> {
        match self {
            Doc::None => None,
            Doc::Slots(_, s, _) => s.get(i).copied().flatten(),
        }
    }

    fn get(self, i: usize) -> Option<Lit<'a>> {
        match self {
            Doc::None => None,
            Doc::Slots(doc, s, _) => s.get(i).copied().flatten().map(|sp| sp.lit(doc)),
        }
    }
}

fn encode_rows(
    m: &Mapping,
    msg: &MessageRef<'_>,
    doc: Doc<'_>,
    window: &TimeWindow,
    out: &mut Vec<u8>,
) -> Result<Encoded, RowError> {
    let mut enc = Encoded {
        rows: 0,
        skipped: 0,
    };
    match &m.explode {
        None => {
            if row(m, msg, doc, None, window, out)? {
                enc.rows += 1;
            } else {
                enc.skipped += 1;
            }
        }
        Some(ex) => {
            let (
                Doc::Slots(bytes, _, members),
                Some(Span {
                    kind: Kind::Obj, ..
                }),
            ) = (doc, doc.span(m.columns.len()))
            else {
                return Err(RowError::NotAnObject {
                    pointer: ex.pointer.text.clone(),
                });
            };
            for (name, v) in members {
                let name = name.lit(bytes);
                if ex.skip.iter().any(|s| json_scan::name_is(&name, s)) {
                    continue;
                }
                if row(m, msg, doc, Some((name, v.lit(bytes))), window, out)? {
                    enc.rows += 1;
                } else {
                    enc.skipped += 1;
                }
            }
        }
    }
    Ok(enc)
}

/// One row; false when the event-time window excluded it (nothing written).
fn row(
    m: &Mapping,
    msg: &MessageRef<'_>,
    doc: Doc<'_>,
    metric: Option<(Lit<'_>, Lit<'_>)>,
    window: &TimeWindow,
    out: &mut Vec<u8>,
) -> Result<bool, RowError> {
    let start = out.len();
    pgcopy::row_start(out, m.columns.len());
    for (i, c) in m.columns.iter().enumerate() {
        let missing = || RowError::Missing {
            column: c.name.clone(),
            source: match &c.part {
                Part::Value(p) => p.text.clone(),
                other => format!("{other:?}").to_lowercase(),
            },
        };
        let value = match &c.part {
            Part::Value(_) => doc.get(i).filter(|v| *v != Lit::Null).map(Src::Json),
            Part::MetricValue => metric
                .map(|(_, v)| v)
                .filter(|v| *v != Lit::Null)
                .map(Src::Json),
            Part::MetricName => metric.map(|(n, _)| Src::Json(n)),
            Part::Key => msg.key.map(Src::Text),
            Part::Header(h) => msg
                .headers
                .iter()
                .find(|(k, _)| *k == h.as_bytes())
                .and_then(|(_, v)| *v)
                .map(Src::Text),
            Part::Timestamp => msg.timestamp.filter(|t| *t >= 0).map(Src::Int),
            Part::Offset => Some(Src::Int(msg.offset)),
            Part::Partition => Some(Src::Int(msg.partition as i64)),
            Part::Topic => Some(Src::Text(msg.topic.as_bytes())),
        };
        let Some(value) = value else {
            if c.optional {
                pgcopy::null(out);
                continue;
            }
            return Err(missing());
        };
        let time = matches!(c.part, Part::Timestamp);
        match field(c, value, time, out) {
            Ok(Some(us)) if m.time_column == Some(i) && !window.contains(us) => {
                out.truncate(start);
                return Ok(false);
            }
            Ok(_) => {}
            Err(Some(e)) => return Err(e),
            Err(None) => {
                // Lenient: wrong JSON type becomes NULL.
                pgcopy::null(out);
            }
        }
    }
    Ok(true)
}

#[derive(Clone, Copy)]
enum Src<'a> {
    Json(Lit<'a>),
    Text(&'a [u8]),
    Int(i64),
}

/// Writes one field. `Ok(Some(us))` for time values (for the window check); `Err(None)` for a
/// lenient column whose value had the wrong type (the caller writes NULL).
fn field(
    c: &Column,
    v: Src<'_>,
    epoch_ms_part: bool,
    out: &mut Vec<u8>,
) -> Result<Option<i64>, Option<RowError>> {
    let wrong = |expected: &'static str| {
        if c.lenient {
            None
        } else {
            Some(RowError::WrongType {
                column: c.name.clone(),
                expected,
            })
        }
    };
    let range = |text: &str| {
        Some(RowError::OutOfRange {
            column: c.name.clone(),
            text: text.to_string(),
        })
    };
    let utf8 = |b: &[u8]| -> Result<String, Option<RowError>> {
        std::str::from_utf8(b).map(str::to_string).map_err(|_| {
            Some(RowError::NotUtf8 {
                column: c.name.clone(),
            })
        })
    };
    // PostgreSQL's text and jsonb cannot hold NUL: one such row would fail the whole COPY.
    let nul = || {
        Some(RowError::Nul {
            column: c.name.clone(),
        })
    };
    match c.ty {
        ColType::Timestamptz | ColType::Timestamp => {
            let us = match v {
                Src::Int(ms) if epoch_ms_part => {
                    ms.checked_mul(1000).ok_or_else(|| range(&ms.to_string()))?
                }
                Src::Json(j) => time_from_json(c, j)?,
                Src::Text(t) => {
                    let s = utf8(t)?;
                    parse_time(&s, c.time_format).ok_or_else(|| {
                        Some(RowError::BadTime {
                            column: c.name.clone(),
                            text: s.clone(),
                        })
                    })?
                }
                Src::Int(_) => return Err(wrong("a time")),
            };
            // PostgreSQL's timestamp range: 4713 BC to 294276 AD; keep well inside it.
            if !(-210_866_803_200_000_000..=9_214_646_400_000_000_000).contains(&us) {
                return Err(range(&us.to_string()));
            }
            pgcopy::i64_field(out, us - PG_EPOCH_US);
            Ok(Some(us))
        }
        ColType::Uuid => {
            let s: std::borrow::Cow<'_, [u8]> = match v {
                Src::Json(j) => match j.bytes() {
                    Some(s) => s,
                    None => return Err(wrong("a uuid string")),
                },
                Src::Text(t) => utf8(t)?.into_bytes().into(),
                _ => return Err(wrong("a uuid string")),
            };
            let u = uuid::Uuid::try_parse_ascii(&s).map_err(|_| {
                Some(RowError::BadUuid {
                    column: c.name.clone(),
                    text: String::from_utf8_lossy(&s).into_owned(),
                })
            })?;
            pgcopy::bytes_field(out, u.as_bytes());
            Ok(None)
        }
        ColType::Float8 => {
            let f: f64 = match v {
                Src::Json(Lit::Num(t)) => t.parse().map_err(|_| range(t))?,
                _ => return Err(wrong("a number")),
            };
            if !f.is_finite() {
                return Err(range(&f.to_string()));
            }
            pgcopy::f64_field(out, f);
            Ok(None)
        }
        ColType::Int8 => {
            let i = match v {
                Src::Int(i) => i,
                Src::Json(Lit::Num(t)) => match t.parse::<i64>() {
                    Ok(i) => i,
                    Err(_) => match t.parse::<f64>() {
                        Ok(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => f as i64,
                        _ => return Err(range(t)),
                    },
                },
                _ => return Err(wrong("an integer")),
            };
            pgcopy::i64_field(out, i);
            Ok(None)
        }
        ColType::Bool => {
            let b = match v {
                Src::Json(Lit::Bool(b)) => b,
                _ => return Err(wrong("a boolean")),
            };
            pgcopy::bytes_field(out, &[b as u8]);
            Ok(None)
        }
        ColType::Text => {
            match v {
                Src::Json(j @ Lit::Str { escaped, .. }) => {
                    let s = j.bytes().unwrap_or_default();
                    // Raw control characters are not JSON: only an escape makes a NUL.
                    if escaped && s.contains(&0) {
                        return Err(nul());
                    }
                    pgcopy::bytes_field(out, &s)
                }
                Src::Json(_) if c.lenient => return Err(None),
                Src::Json(j) => {
                    let text = j.compact_json().ok_or_else(|| range(&j.json()))?;
                    pgcopy::bytes_field(out, text.as_bytes())
                }
                Src::Text(t) => {
                    if std::str::from_utf8(t).is_err() {
                        return Err(Some(RowError::NotUtf8 {
                            column: c.name.clone(),
                        }));
                    }
                    if t.contains(&0) {
                        return Err(nul());
                    }
                    pgcopy::bytes_field(out, t)
                }
                Src::Int(i) => pgcopy::bytes_field(out, i.to_string().as_bytes()),
            }
            Ok(None)
        }
        ColType::Jsonb => {
            let Src::Json(j) = v else {
                return Err(wrong("JSON"));
            };
            // The value's own text: the server parses it into jsonb, so layout does not
            // matter, and numbers keep every digit (no round trip through f64).
            let text = j.json();
            match json_scan::jsonb_refusal(&text) {
                None => pgcopy::jsonb_field(out, &text),
                Some(json_scan::JsonbRefusal::Nul) => return Err(nul()),
                Some(json_scan::JsonbRefusal::Numeric(n)) => return Err(range(&n)),
            }
            Ok(None)
        }
    }
}

fn time_from_json(c: &Column, j: Lit<'_>) -> Result<i64, Option<RowError>> {
    let bad = |text: String| {
        Some(RowError::BadTime {
            column: c.name.clone(),
            text,
        })
    };
    match j {
        Lit::Num(t) if c.time_format != TimeFormat::Iso8601 => {
            let ms: i64 = t.parse().map_err(|_| bad(t.to_string()))?;
            ms.checked_mul(1000).ok_or_else(|| {
                Some(RowError::OutOfRange {
                    column: c.name.clone(),
                    text: t.to_string(),
                })
            })
        }
        Lit::Str { .. } => {
            let b = j.bytes().unwrap_or_default();
            // (An integer string never has the `-` at byte 4, so `Auto` may try this first.)
            if c.time_format != TimeFormat::EpochMs {
                if let Some(us) = fast_rfc3339(&b) {
                    return Ok(us);
                }
            }
            let s = String::from_utf8_lossy(&b);
            parse_time(&s, c.time_format).ok_or_else(|| bad(s.into_owned()))
        }
        _ if c.lenient => Err(None),
        other => Err(bad(other.json().into_owned())),
    }
}

/// The one form producers send almost always, `YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|±HH:MM)`,
/// without chrono's general parser (a measurable share of the per-event cost). Anything else —
/// lowercase separators, leap seconds, other layouts — returns `None` and takes the general
/// path; a differential test holds the two to the same answers.
fn fast_rfc3339(b: &[u8]) -> Option<i64> {
    fn num(b: &[u8], at: usize, len: usize) -> Option<i64> {
        let d = b.get(at..at + len)?;
        d.iter().try_fold(0i64, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + (c - b'0') as i64)
        })
    }
    let sep = |at: usize, c: u8| b.get(at) == Some(&c);
    if !(sep(4, b'-') && sep(7, b'-') && sep(10, b'T') && sep(13, b':') && sep(16, b':')) {
        return None;
    }
    let (y, mo, d) = (num(b, 0, 4)?, num(b, 5, 2)?, num(b, 8, 2)?);
    let (h, mi, sec) = (num(b, 11, 2)?, num(b, 14, 2)?, num(b, 17, 2)?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days_in = match mo {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if d < 1 || d > days_in || h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    let mut at = 19;
    let mut frac_us = 0i64;
    if sep(at, b'.') {
        at += 1;
        let start = at;
        while b.get(at).is_some_and(u8::is_ascii_digit) {
            at += 1;
        }
        let n = at - start;
        if n == 0 || n > 9 {
            return None;
        }
        let digits = num(b, start, n)?;
        // Truncate to microseconds, as chrono's timestamp_micros does.
        frac_us = if n <= 6 {
            digits * 10i64.pow(6 - n as u32)
        } else {
            digits / 10i64.pow(n as u32 - 6)
        };
    }
    let offset_s = match b.get(at..)? {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), ..] if b.len() == at + 6 && sep(at + 3, b':') => {
            let (oh, om) = (num(b, at + 1, 2)?, num(b, at + 4, 2)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let o = oh * 3600 + om * 60;
            if *sign == b'-' {
                -o
            } else {
                o
            }
        }
        _ => return None,
    };
    // Days from the civil date (Howard Hinnant's days_from_civil).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_s;
    Some(secs * 1_000_000 + frac_us)
}

/// Epoch microseconds from ISO 8601 (a zone-less time is taken as UTC) or epoch-ms text.
pub fn parse_time(s: &str, fmt: TimeFormat) -> Option<i64> {
    let s = s.trim();
    if fmt != TimeFormat::Iso8601 {
        if let Ok(ms) = s.parse::<i64>() {
            return ms.checked_mul(1000);
        }
        if fmt == TimeFormat::EpochMs {
            return None;
        }
    }
    if let Some(us) = fast_rfc3339(s.as_bytes()) {
        return Some(us);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_micros());
    }
    // RFC 3339 requires the `T`; ISO 8601 also allows a space, and producers omit the zone.
    for f in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, f) {
            return Some(t.and_utc().timestamp_micros());
        }
    }
    chrono::DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f%#z")
        .ok()
        .map(|t| t.timestamp_micros())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(value: &str) -> MessageRef<'_> {
        MessageRef {
            topic: "telemetry",
            partition: 0,
            offset: 7,
            timestamp: Some(1_768_464_000_000),
            key: Some(b"k"),
            value: Some(value.as_bytes()),
            headers: &[],
        }
    }

    const EV: &str = r#"{"eventId":"0f0e0d0c-0b0a-4908-8706-050403020100","timestamp":"2026-01-15T08:00:00.500Z","assetId":"00010203-0405-4607-8809-0a0b0c0d0e0f","type":"telemetry","data":{"temperature":61.5,"quality":"good","unit":"C"}}"#;

    #[test]
    fn presets_load() {
        assert_eq!(Mapping::preset("ms5-telemetry").unwrap().columns.len(), 7);
        assert!(Mapping::preset("ms5-metrics").unwrap().explode.is_some());
        assert_eq!(
            Mapping::preset("nope"),
            Err(MappingError::UnknownPreset("nope".into()))
        );
    }

    #[test]
    fn wide_row_encodes() {
        let m = Mapping::preset("ms5-telemetry").unwrap();
        let mut out = vec![];
        let e = encode_message(&m, &msg(EV), &TimeWindow::default(), &mut out).unwrap();
        assert_eq!(e.rows, 1);
        // 2 (count) + ts 12 + uuid 20 + float 12 + 3 nulls*4 + metadata null 4
        assert_eq!(out.len(), 2 + 12 + 20 + 12 + 12 + 4);
        assert_eq!(&out[..2], &7i16.to_be_bytes());
        let us = 1_768_464_000_500_000i64 - PG_EPOCH_US;
        assert_eq!(&out[6..14], &us.to_be_bytes());
    }

    #[test]
    fn narrow_rows_explode() {
        let m = Mapping::preset("ms5-metrics").unwrap();
        let mut out = vec![];
        let e = encode_message(&m, &msg(EV), &TimeWindow::default(), &mut out).unwrap();
        assert_eq!(e.rows, 1, "quality and unit are skipped");
        let two = EV.replace(r#""quality""#, r#""status":"running","q""#);
        out.clear();
        let e = encode_message(&m, &msg(&two), &TimeWindow::default(), &mut out).unwrap();
        assert_eq!(e.rows, 3);
    }

    #[test]
    fn bad_messages_are_typed_and_leave_nothing() {
        let m = Mapping::preset("ms5-telemetry").unwrap();
        let cases = [
            ("{not json", "malformed_json"),
            (r#"{"timestamp":"2026-01-15T08:00:00Z"}"#, "missing_field"),
            (
                &EV.replace("2026-01-15T08:00:00.500Z", "yesterday"),
                "bad_time",
            ),
            (&EV.replace("61.5", "1e999"), "out_of_range"),
            (&EV.replace("61.5", "1.5.0"), "malformed_json"),
            (&EV.replace("\"good\"", "\"\\ud800\""), "malformed_json"),
            (&EV.replace("61.5", "\"hot\""), "wrong_type"),
            (&EV.replace("00010203-", "zz"), "bad_uuid"),
        ];
        for (v, kind) in cases {
            let mut out = vec![1, 2, 3];
            let e = encode_message(&m, &msg(v), &TimeWindow::default(), &mut out).unwrap_err();
            assert_eq!(e.kind(), kind, "{v}");
            assert_eq!(out, vec![1, 2, 3]);
        }
        let m = Mapping::from_toml(r#"columns = [{ name = "n", type = "int8", from = "/n" }]"#)
            .unwrap();
        let mut out = vec![];
        let e = encode_message(&m, &msg(r#"{"n":1e30}"#), &TimeWindow::default(), &mut out);
        assert_eq!(e.unwrap_err().kind(), "out_of_range");
    }

    /// PostgreSQL refuses NUL in text and jsonb for the whole COPY, so such a message must be a
    /// dead letter of its own; an escaped backslash before `u0000` is not a NUL.
    #[test]
    fn nul_characters_are_dead_letters_not_copy_failures() {
        let m = Mapping::from_toml(
            r#"columns = [
              { name = "t", type = "text", from = "/t" },
              { name = "j", type = "jsonb", from = "/j" },
              { name = "k", type = "text", from = "key", optional = true },
            ]"#,
        )
        .unwrap();
        let run = |value: &str, key: Option<&[u8]>| {
            let mut out = vec![];
            let mut mr = msg(value);
            mr.key = key;
            encode_message(&m, &mr, &TimeWindow::default(), &mut out).map(|_| out)
        };
        let bad = [
            (r#"{"t":"a\u0000b","j":{}}"#, None),
            (r#"{"t":"a","j":{"x":["\u0000"]}}"#, None),
            (r#"{"t":"a","j":{}}"#, Some(&b"k\0"[..])),
        ];
        for (v, k) in bad {
            let e = run(v, k).unwrap_err();
            assert_eq!(e.kind(), "nul_character", "{v}");
            assert!(e.to_string().contains("NUL"));
        }
        let ok = run(
            r#"{"t":"a\\u0000b","j":{"big":123456789012345678901234567890}}"#,
            None,
        )
        .unwrap();
        let text = String::from_utf8_lossy(&ok);
        assert!(text.contains("a\\u0000b"), "{text}");
        assert!(
            text.contains("123456789012345678901234567890"),
            "jsonb keeps every digit"
        );
        // Non-string JSON into a text column: serde_json's compact text.
        let ok = run(r#"{"t": [1.50, {"a" : 1}],"j":null}"#, None).unwrap_err();
        assert_eq!(ok.kind(), "missing_field");
        let ok = run(r#"{"t": [1.50, {"a" : 1}],"j":1}"#, None).unwrap();
        assert!(String::from_utf8_lossy(&ok).contains(r#"[1.5,{"a":1}]"#));
    }

    #[test]
    fn pointers_match_serde_json() {
        let doc: Value =
            serde_json::from_str(r#"{"a/b":{"m~n":[1,{"x":true}]},"":0,"data":{"t":1.5}}"#)
                .unwrap();
        for p in [
            "",
            "/a~1b",
            "/a~1b/m~0n/1/x",
            "/a~1b/m~0n/01",
            "/",
            "/data/t",
            "/nope/x",
            "/data/t/0",
        ] {
            assert_eq!(Pointer::new(p).lookup(&doc), doc.pointer(p), "{p}");
        }
    }

    /// Mutated events never panic the encoder, and a failed message leaves the buffer as it was.
    #[test]
    fn mutated_events_never_panic_or_leave_half_rows() {
        let presets = [
            Mapping::preset("ms5-telemetry").unwrap(),
            Mapping::preset("ms5-metrics").unwrap(),
        ];
        let alphabet = b"{}[]\":,.-0123456789eE+ xZT/";
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let (mut ok, mut bad) = (0, 0);
        for _ in 0..20_000 {
            let mut b = EV.as_bytes().to_vec();
            for _ in 0..(next() % 3 + 1) {
                let at = (next() % b.len() as u64) as usize;
                b[at] = alphabet[(next() % alphabet.len() as u64) as usize];
            }
            for m in &presets {
                let mut out = vec![9u8; 3];
                let msg = MessageRef {
                    value: Some(&b),
                    ..msg(EV)
                };
                match encode_message(m, &msg, &TimeWindow::default(), &mut out) {
                    Ok(_) => ok += 1,
                    Err(_) => {
                        bad += 1;
                        assert_eq!(out, [9, 9, 9]);
                    }
                }
            }
        }
        assert!(ok > 1000 && bad > 1000, "{ok} {bad}");
    }

    #[test]
    fn window_skips_rows() {
        let m = Mapping::preset("ms5-telemetry").unwrap();
        let w = TimeWindow {
            since_us: Some(1_768_464_001_000_000),
            until_us: None,
        };
        let mut out = vec![];
        let e = encode_message(&m, &msg(EV), &w, &mut out).unwrap();
        assert_eq!((e.rows, e.skipped, out.len()), (0, 1, 0));
    }

    #[test]
    fn times_parse() {
        let t = 1_768_464_000_000_000;
        for s in [
            "2026-01-15T08:00:00Z",
            "2026-01-15T09:00:00+01:00",
            "2026-01-15T08:00:00",
            "2026-01-15 08:00:00.000",
            "1768464000000",
        ] {
            assert_eq!(parse_time(s, TimeFormat::Auto), Some(t), "{s}");
        }
        assert_eq!(parse_time("1768464000000", TimeFormat::Iso8601), None);
        assert_eq!(
            parse_time("2026-01-15T08:00:00Z", TimeFormat::EpochMs),
            None
        );
    }

    /// The fast RFC 3339 path agrees with chrono on generated and mutated times.
    #[test]
    fn fast_rfc3339_agrees_with_chrono() {
        let mut x: u64 = 0x1234_5678_9abc_def1;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let alphabet = b"0123456789-+:.TZtz ";
        let mut fast_hits = 0;
        for i in 0..50_000 {
            let frac = match next() % 5 {
                0 => String::new(),
                1 => ".5".into(),
                2 => format!(".{:03}", next() % 1000),
                3 => format!(".{:06}", next() % 1_000_000),
                _ => format!(".{:09}", next() % 1_000_000_000),
            };
            let zone = match next() % 3 {
                0 => "Z".to_string(),
                1 => format!("+{:02}:{:02}", next() % 24, next() % 60),
                _ => format!("-{:02}:{:02}", next() % 24, next() % 60),
            };
            let mut t = format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{frac}{zone}",
                next() % 10_000,
                next() % 13,
                next() % 32,
                next() % 25,
                next() % 61,
                next() % 61
            )
            .into_bytes();
            if i % 2 == 1 {
                let at = (next() % t.len() as u64) as usize;
                t[at] = alphabet[(next() % alphabet.len() as u64) as usize];
            }
            let t = String::from_utf8(t).unwrap();
            let chrono = chrono::DateTime::parse_from_rfc3339(&t)
                .ok()
                .map(|d| d.timestamp_micros());
            if let Some(us) = fast_rfc3339(t.as_bytes()) {
                fast_hits += 1;
                assert_eq!(Some(us), chrono, "{t}");
            }
        }
        assert!(fast_hits > 5_000, "{fast_hits}");
    }

    #[test]
    fn mapping_errors() {
        assert!(matches!(
            Mapping::from_toml("columns = []"),
            Err(MappingError::NoColumns)
        ));
        assert!(matches!(
            Mapping::from_toml(r#"columns = [{ name = "a", type = "float8", from = "key" }]"#),
            Err(MappingError::Column { .. })
        ));
        assert!(matches!(
            Mapping::from_toml(r#"columns = [{ name = "a", type = "text", from = "bogus" }]"#),
            Err(MappingError::Column { .. })
        ));
        assert!(matches!(
            Mapping::from_toml(r#"columns = [{ name = "a", type = "int4", from = "key" }]"#),
            Err(MappingError::Toml(_))
        ));
        assert_eq!(quote_ident(r#"a"b"#), r#""a""b""#);
        assert_eq!(quote_table("s.t"), r#""s"."t""#);
    }
}
