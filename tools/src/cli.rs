//! Command-line definitions. Raw flags live here; each command turns them into validated library
//! options before any work starts.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "drkit",
    version,
    about = "Kafka and telemetry integrity for disaster recovery"
)]
pub struct Cli {
    /// Worker threads (default: one per core).
    #[arg(long, short = 'j', global = true, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1024))]
    pub jobs: Option<usize>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Verify, dump and salvage Kafka log segments on disk.
    #[command(subcommand)]
    Segments(SegmentsCmd),
    /// Per-key RPO gaps and hourly counts, from the database, Kafka partition directories, or both.
    Gaps(Box<GapsArgs>),
    /// Replay Kafka telemetry (a topic, segment directories or JSON-lines dumps) into PostgreSQL, exactly once.
    Replay(Box<ReplayArgs>),
    /// Check backups (pg_dump, Redis, sidecars, WAL archives), write PITR settings, check backup age.
    #[command(subcommand)]
    Backup(BackupCmd),
    /// Describe, reset and restore consumer-group offsets (dry run unless --execute).
    #[command(subcommand)]
    Offsets(crate::offsets::OffsetsCmd),
    /// Partition leaders, replicas, in-sync replicas and log ranges; find damaged partitions.
    #[command(subcommand)]
    Topics(crate::topics::TopicsCmd),
    /// Partition reassignment: plan the fewest moves, execute with throttles, verify, cancel.
    #[command(subcommand)]
    Reassign(crate::reassign::ReassignCmd),
    /// Recompute audit hash chains (SHA-256 or HMAC) from a table or a JSON-lines file.
    #[command(subcommand)]
    Audit(crate::audit::AuditCmd),
    /// Disaster-recovery drill records (hash-chained) and measured RTO/RPO against objectives.
    #[command(subcommand)]
    Drill(crate::drill::DrillCmd),
    /// After a restore: row counts, constraints, indexes, sequences, extensions and gaps against a snapshot taken before.
    Validate(Box<crate::validate::ValidateArgs>),
    /// Probe HTTP, PostgreSQL, Redis, Kafka and TCP services in dependency order (Nagios exit codes).
    Health(Box<crate::health::HealthArgs>),
}

#[derive(Subcommand, Debug)]
pub enum BackupCmd {
    /// Read each backup file once: format to the end, and its SHA-256 against .sha256 sidecars.
    Verify(BackupVerifyArgs),
    /// Check a WAL archive is a whole point-in-time recovery chain from a base backup.
    WalVerify(BackupWalVerifyArgs),
    /// Write recovery.signal and the PostgreSQL 12+ recovery settings for a point-in-time restore.
    PitrConfig(BackupPitrConfigArgs),
    /// Is the newest backup of each class young enough? A directory or s3://bucket/prefix.
    Age(BackupAgeArgs),
}

/// `drkit backup age` flags (docs/BACKUP.md).
#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("ages").required(true).multiple(true).args(["max_age", "classes"])))]
pub struct BackupAgeArgs {
    /// A local directory (read recursively) or s3://BUCKET/PREFIX.
    #[arg(value_name = "DIR|s3://BUCKET/PREFIX")]
    pub location: String,
    /// How old the newest backup that no --class takes may be (e.g. 24h, 90m, 2d).
    #[arg(long, value_name = "AGE")]
    pub max_age: Option<String>,
    /// A class: NAME=AGE takes the keys under NAME/, NAME=AGE:GLOB the keys matching GLOB
    /// (`*` within a path component, `**` across). Repeatable; first match wins.
    #[arg(long = "class", value_name = "NAME=AGE[:GLOB]")]
    pub classes: Vec<String>,
    /// An S3 setting as object_store names it (aws_endpoint, aws_region, aws_allow_http,
    /// aws_access_key_id, aws_secret_access_key, ...); repeatable, over the AWS_* environment.
    /// Secret values are never printed.
    #[arg(short = 'X', value_name = "KEY=VALUE")]
    pub settings: Vec<String>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// `drkit backup wal-verify` flags (docs/BACKUP.md).
#[derive(Args, Debug)]
pub struct BackupWalVerifyArgs {
    /// The WAL archive directory (what archive_command copies into); only read.
    #[arg(value_name = "ARCHIVE_DIR")]
    pub archive: PathBuf,
    /// Where recovery starts: a pg_basebackup output directory, its backup_manifest or base.tar,
    /// a backup_label, or a `*.backup` history file. Default: the archive's oldest segment.
    #[arg(long, value_name = "BACKUP")]
    pub backup: Option<PathBuf>,
    /// The recovery target time (RFC 3339 with a zone, e.g. 2024-05-01T10:00:00+02:00): the chain
    /// must reach the first commit or abort after it. Default: the newest segment.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Output format: readable text, or JSON Lines (schema in docs/BACKUP.md).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    #[command(flatten)]
    pub report: ReportArgs,
}

/// What PostgreSQL does once it reaches the recovery target.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoveryAction {
    /// Stay in recovery, read-only, until pg_wal_replay_resume() (PostgreSQL's default).
    Pause,
    /// End recovery and accept writes on a new timeline.
    Promote,
    /// Stop the server.
    Shutdown,
}

/// `drkit backup pitr-config` flags (docs/BACKUP.md).
#[derive(Args, Debug)]
pub struct BackupPitrConfigArgs {
    /// The WAL archive restore_command copies from (as the PostgreSQL server sees it).
    #[arg(long, value_name = "DIR")]
    pub archive: PathBuf,
    /// Recover up to this time: RFC 3339 with an explicit zone (Z or +HH:MM).
    #[arg(long, value_name = "TIME")]
    pub target_time: String,
    /// The restored data directory to write into (recovery.signal, postgresql.auto.conf).
    /// Without it the settings are printed.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The base backup, for the archive check (default: DATA_DIR/backup_label).
    #[arg(long, value_name = "BACKUP")]
    pub backup: Option<PathBuf>,
    /// recovery_target_action.
    #[arg(long, value_enum, default_value_t = RecoveryAction::Pause)]
    pub action: RecoveryAction,
    /// Write even when recovery settings already exist or the archive does not reach the target
    /// (postgresql.auto.conf is copied to postgresql.auto.conf.drkit-rollback first).
    #[arg(long)]
    pub force: bool,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// `drkit backup verify` flags (docs/BACKUP.md).
#[derive(Args, Debug)]
pub struct BackupVerifyArgs {
    /// Backup files, or directories (read recursively).
    #[arg(required = true, value_name = "FILE|DIR")]
    pub paths: Vec<PathBuf>,
    /// Also inflate compressed pg_dump data and count the fields of every COPY row.
    #[arg(long)]
    pub deep: bool,
    /// Output format: readable text, or JSON Lines (schema in docs/BACKUP.md).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    #[command(flatten)]
    pub report: ReportArgs,
}

#[derive(Subcommand, Debug)]
pub enum SegmentsCmd {
    /// Verify segment files, partition directories or whole log dirs.
    Verify(VerifyArgs),
    /// Print batches, records and index entries (DumpLogSegments' wording).
    Dump(DumpArgs),
    /// Copy every valid batch of a partition into a new directory, with rebuilt indexes.
    Salvage(SalvageArgs),
}

/// How findings reports are shown, shared by every verifying command.
#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Also list informational findings in text output (JSON always has them).
    #[arg(long, short)]
    pub verbose: bool,
    /// Never draw a progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// Segment files, partition directories or log dirs.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Decompress and decode every record (varints, counts, timestamps, control records).
    #[arg(long)]
    pub deep: bool,
    /// Output format: readable text, or JSON Lines (schema in docs/JSON.md).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    #[command(flatten)]
    pub report: ReportArgs,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoder {
    /// __consumer_offsets keys and values.
    Offsets,
    /// UTF-8 text (lossy).
    Text,
    Hex,
    /// Payloads that are JSON, embedded as JSON (others as strings).
    Json,
}

#[derive(Args, Debug)]
pub struct DumpArgs {
    /// .log, .checkpoint, .index, .timeindex, .txnindex or .snapshot files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// One line per record, under its batch.
    #[arg(long)]
    pub records: bool,
    /// Print keys and payloads decoded this way (implies --records).
    #[arg(long, value_enum)]
    pub decoder: Option<Decoder>,
    /// Output format: DumpLogSegments' text, or JSON Lines (schema in docs/JSON-dump.md).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Args, Debug)]
pub struct SalvageArgs {
    /// The damaged partition directory (read only: never written).
    pub partition_dir: PathBuf,
    /// New directory for the salvaged partition (must not exist, or be empty).
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// `drkit replay` flags (docs/REPLAY.md).
#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["segments", "jsonl", "kafka"])))]
pub struct ReplayArgs {
    /// A partition directory (`<topic>-<n>`) or a log dir holding them.
    #[arg(long, value_name = "DIR")]
    pub segments: Option<PathBuf>,
    /// A JSON-lines dump from the console consumer (values only; coordinate = line number).
    #[arg(long, value_name = "FILE")]
    pub jsonl: Option<PathBuf>,
    /// A Kafka broker list (host:port,...): read --topic through librdkafka.
    #[arg(long, value_name = "BOOTSTRAP", requires = "topic")]
    pub kafka: Option<String>,
    /// The topic to read with --kafka.
    #[arg(long, value_name = "T", requires = "kafka")]
    pub topic: Option<String>,
    /// Join this consumer group: processes with the same group share the partitions (the
    /// position still lives in the database, not in Kafka's committed offsets).
    #[arg(
        long,
        value_name = "G",
        requires = "kafka",
        conflicts_with = "partitions"
    )]
    pub group: Option<String>,
    /// Read only these partitions (default: all of them), without a group.
    #[arg(long, value_delimiter = ',', value_name = "P,...", requires = "kafka")]
    pub partitions: Vec<i32>,
    /// A librdkafka setting, as kcat's -X (TLS, SASL...); repeatable. Values of keys with
    /// password/secret in the name and of sasl.* are never printed.
    #[arg(short = 'X', value_name = "KEY=VALUE", requires = "kafka")]
    pub kafka_settings: Vec<String>,
    /// Where partitions without stored progress start: earliest, latest, an offset, or a time
    /// (RFC 3339 or epoch ms; the broker's time index).
    #[arg(
        long,
        value_name = "earliest|latest|OFFSET|TIME",
        default_value = "earliest",
        requires = "kafka"
    )]
    pub start: String,
    /// Keep reading past the end instead of stopping at the high watermarks seen at start,
    /// until every partition is past --until, or SIGINT/SIGTERM (commit, summary, exit 0).
    #[arg(long, requires = "kafka")]
    pub follow: bool,
    /// With --kafka: stop with an error (exit 2) after this long without a message, a partition
    /// end or a broker answer while not at the end (e.g. 30s, 5m); what was read is committed.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "60s",
        requires = "kafka"
    )]
    pub stall_timeout: String,
    /// PostgreSQL URL (postgres://user:password@host:port/db); the password is never printed.
    /// Without it: the usual PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE variables.
    #[arg(long, value_name = "URL")]
    pub db: Option<String>,
    /// Target table (`name` or `schema.name`); defaults to the mapping's table.
    #[arg(long, value_name = "T")]
    pub table: Option<String>,
    /// A built-in preset (ms5-telemetry, ms5-metrics) or a TOML mapping file.
    #[arg(long, value_name = "PRESET|FILE")]
    pub mapping: String,
    /// Create the table (and a hypertable when TimescaleDB is installed) from the mapping.
    #[arg(long)]
    pub create_table: bool,
    /// Skip rows already present: COPY into a staging table, then INSERT ... ON CONFLICT DO NOTHING
    /// (needs a unique index on exactly these columns).
    #[arg(long, value_delimiter = ',', value_name = "COL,...")]
    pub dedup_key: Vec<String>,
    /// Start of the window (RFC 3339 or epoch ms), inclusive.
    #[arg(long)]
    pub since: Option<String>,
    /// End of the window (RFC 3339 or epoch ms), exclusive.
    #[arg(long)]
    pub until: Option<String>,
    /// Which time --since/--until select on.
    #[arg(long, value_enum, default_value_t = TimeBasis::Record)]
    pub time_basis: TimeBasis,
    /// Name of the progress stream (default: `kafka` for segments, `jsonl:<file name>` for dumps).
    #[arg(long)]
    pub source_id: Option<String>,
    /// Append bad messages here as JSON lines (coordinates, reason, value).
    #[arg(long, value_name = "FILE")]
    pub dead_letter: Option<PathBuf>,
    /// Stop once more than N messages were dead-lettered.
    #[arg(long, value_name = "N")]
    pub max_errors: Option<u64>,
    /// Rows per transaction.
    #[arg(long, default_value_t = 100_000, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub batch_rows: usize,
    /// Gap tracking: longest tolerated interval between consecutive event times of a key in the
    /// rows written (equal is compliant). A breach exits 1.
    #[arg(long, default_value = "5m", value_name = "DURATION")]
    pub rpo: String,
    /// The column gaps are tracked per (default: asset_id when the mapping has it; otherwise
    /// gap tracking is off unless this is given).
    #[arg(long, value_name = "COL", conflicts_with = "no_gaps")]
    pub gap_key: Option<String>,
    /// Keys that must appear, one per line (# comments): those with no row are reported silent.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["expected_keys_table", "no_gaps"])]
    pub expected_keys: Option<PathBuf>,
    /// The expected keys as the distinct values of a table column, `TABLE.COLUMN`.
    #[arg(long, value_name = "TABLE.COLUMN", conflicts_with = "no_gaps")]
    pub expected_keys_table: Option<String>,
    /// No gap tracking.
    #[arg(long)]
    pub no_gaps: bool,
    /// Threads that encode rows (0: one per core; 1: on the reading thread itself).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub encoders: usize,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Never draw a progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeBasis {
    /// The Kafka record timestamp.
    Record,
    /// The mapping's time column (the event's own timestamp).
    Event,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum GapsFormat {
    Text,
    /// JSON Lines (schema in docs/GAPS.md).
    Json,
    /// One line per gap.
    Csv,
}

/// `drkit gaps` flags (docs/GAPS.md). Defaults fit the MS5 wide `telemetry` table and
/// `telemetry.asset.event.v1` values.
#[derive(Args, Debug)]
pub struct GapsArgs {
    /// PostgreSQL URL; the gaps are computed in the database (the password is never printed).
    #[arg(long, value_name = "URL")]
    pub db: Option<String>,
    /// Table (`name` or `schema.name`).
    #[arg(long, value_name = "T", default_value = "telemetry")]
    pub table: String,
    /// The table's event-time column (timestamptz, or timestamp read as UTC).
    #[arg(long, value_name = "C", default_value = "timestamp")]
    pub time_column: String,
    /// The key column gaps are computed per (e.g. the asset).
    #[arg(long, value_name = "COL", default_value = "asset_id")]
    pub by: String,
    /// Kafka partition directory, or a log dir holding several, read offline.
    #[arg(long, value_name = "DIR")]
    pub segments: Option<PathBuf>,
    /// JSON pointer to the key in each Kafka value.
    #[arg(long, value_name = "P", default_value = "/assetId")]
    pub key_pointer: String,
    /// JSON pointer to the event time (ISO 8601 or epoch ms) in each Kafka value.
    #[arg(long, value_name = "P", default_value = "/timestamp")]
    pub time_pointer: String,
    /// With --db and --segments: both sides' counts per key and hour, and why rows are missing.
    #[arg(long, requires_all = ["db", "segments"])]
    pub compare: bool,
    /// Longest tolerated interval without an event per key (equal is compliant).
    #[arg(long, default_value = "5m")]
    pub rpo: String,
    /// Window start, inclusive (RFC 3339; without a zone: UTC). Default: 24 hours before --until.
    #[arg(long)]
    pub since: Option<String>,
    /// Window end, exclusive. Default: now.
    #[arg(long)]
    pub until: Option<String>,
    /// File with the keys that must report, one per line: those with no event are `silent`.
    #[arg(long, value_name = "FILE", conflicts_with = "expected_keys_table")]
    pub expected_keys: Option<PathBuf>,
    /// The expected keys as the distinct values of a table column, `TABLE.COLUMN`.
    #[arg(long, value_name = "T.COL", requires = "db")]
    pub expected_keys_table: Option<String>,
    #[arg(long, value_enum, default_value_t = GapsFormat::Text)]
    pub format: GapsFormat,
    /// JSON: also one line per key and hour with its row count.
    #[arg(long)]
    pub hourly: bool,
    /// Expected event interval per key (e.g. 1s): adds completeness (rows / expected rows).
    #[arg(long, value_name = "DURATION")]
    pub cadence: Option<String>,
    /// Also write a self-contained HTML report (SVG heatmap of keys x hours) here.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
