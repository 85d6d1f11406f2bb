//! Findings: what `backup verify` reports, one per problem (and informational ones per file).
//!
//! Kinds have stable snake_case names because scripts match on them; docs/BACKUP.md lists each.

use std::path::PathBuf;

/// How bad a finding is. `Error` makes `drkit backup verify` exit 1.
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
    ($($variant:ident => $name:literal, $sev:ident, $doc:literal;)*) => {
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

            /// The severity a finding of this kind always has.
            pub fn severity(self) -> Severity {
                match self {
                    $(Kind::$variant => Severity::$sev,)*
                }
            }

            /// One sentence on what the kind means, for docs.
            pub fn description(self) -> &'static str {
                match self {
                    $(Kind::$variant => $doc,)*
                }
            }
        }
    };
}

kinds! {
    ChecksumOk => "checksum_ok", Info, "The file's SHA-256 matches its sidecar.";
    ChecksumMismatch => "checksum_mismatch", Error, "The file's SHA-256 differs from the one its sidecar records.";
    NoChecksum => "no_checksum", Info, "No .sha256 sidecar names this file.";
    SidecarMalformed => "sidecar_malformed", Error, "A .sha256 sidecar line is in none of the GNU, BSD or bare-hash forms.";
    SidecarTargetMissing => "sidecar_target_missing", Error, "A .sha256 sidecar names a file that does not exist.";
    FormatOk => "format_ok", Info, "The file's format was read to the end without a problem.";
    UnknownFormat => "unknown_format", Info, "Neither a pg_dump custom archive, an RDB nor an AOF: only the checksum was checked.";
    PgdumpBadHeader => "pgdump_bad_header", Error, "The pg_dump archive header is invalid (magic, version, integer sizes, format, compression, timestamp).";
    PgdumpUnsupportedVersion => "pgdump_unsupported_version", Warning, "A pg_dump archive version this reader does not know (before 1.10 or after 1.15, e.g. pg_dump 17's 1.16): only the checksum was checked.";
    PgdumpBadToc => "pgdump_bad_toc", Error, "A table of contents entry cannot be read (bad integer, string length or offset flag).";
    PgdumpTruncated => "pgdump_truncated", Error, "The archive ends inside the header, the table of contents or a data block.";
    PgdumpBadBlock => "pgdump_bad_block", Error, "A data block has an unknown type, names a dump id with no data in the TOC, or sits elsewhere than its TOC offset.";
    PgdumpMissingData => "pgdump_missing_data", Error, "A TOC entry that has data has no data block in the archive.";
    PgdumpBadCompressedData => "pgdump_bad_compressed_data", Error, "A data block's zlib stream does not decompress (--deep).";
    PgdumpBadRow => "pgdump_bad_row", Error, "A COPY row has the wrong number of fields or the data does not end with a newline (--deep).";
    BasebackupManifestBad => "basebackup_manifest_bad", Error, "backup_manifest is not JSON, or lacks Files, Path, Size or Manifest-Checksum.";
    BasebackupManifestChecksum => "basebackup_manifest_checksum", Error, "backup_manifest's Manifest-Checksum does not match its text.";
    BasebackupFileChecksum => "basebackup_file_checksum", Error, "A file in base.tar has a different checksum than backup_manifest records.";
    BasebackupFileSize => "basebackup_file_size", Error, "A file in base.tar has a different size than backup_manifest records.";
    BasebackupMissingFile => "basebackup_missing_file", Error, "backup_manifest lists a file that base.tar does not hold.";
    BasebackupExtraFile => "basebackup_extra_file", Error, "base.tar holds a file backup_manifest does not list.";
    BasebackupGzipBad => "basebackup_gzip_bad", Error, "base.tar.gz's gzip stream is damaged (bad deflate data, or a CRC-32 or length trailer that does not match): the tar after that point cannot be read.";
    TarTruncated => "tar_truncated", Error, "The tar ends inside a header or a file, or without its end-of-archive blocks.";
    TarBad => "tar_bad", Error, "A tar header fails its checksum or has an unreadable size.";
    RdbBadHeader => "rdb_bad_header", Error, "The RDB file does not start with REDIS and a four-digit version.";
    RdbCrcMismatch => "rdb_crc_mismatch", Error, "The RDB's CRC-64 trailer does not match its contents (also what truncation looks like).";
    RdbTruncated => "rdb_truncated", Error, "The RDB file is shorter than a header and trailer.";
    RdbNoEof => "rdb_no_eof", Error, "The byte before the RDB trailer is not the EOF opcode 0xFF.";
    RdbChecksumDisabled => "rdb_checksum_disabled", Warning, "The RDB was written with rdbchecksum no: its contents cannot be checked.";
    AofTruncated => "aof_truncated", Error, "The AOF ends inside a command.";
    AofBadCommand => "aof_bad_command", Error, "The AOF holds something other than RESP arrays of bulk strings.";
    AofManifestBad => "aof_manifest_bad", Error, "A Redis 7 AOF manifest line cannot be read, or names a file that is missing.";
    WalMissing => "wal_missing", Error, "WAL segments recovery needs are not in the archive (`file` is the first, `entry` the last of the range).";
    WalBadPageHeader => "wal_bad_page_header", Error, "A WAL page header is wrong: magic, flags, timeline, xlp_pageaddr not the page's own LSN, continuation length, segment or page size; or a page of zeros before any XLOG_SWITCH.";
    WalBadRecord => "wal_bad_record", Error, "A WAL record fails its CRC-32C, has an impossible length, or is not continued where its page says.";
    WalBadSize => "wal_bad_size", Error, "A segment file is not the segment size its page headers give.";
    WalSysidMismatch => "wal_sysid_mismatch", Error, "A segment's system identifier differs from the other segments': another cluster's WAL.";
    WalUnreadable => "wal_unreadable", Error, "A compressed segment (.gz, .zst, .lz4) does not decompress.";
    WalBadHistory => "wal_bad_history", Error, "A timeline history file cannot be read as `TLI  X/Y  reason` lines.";
    WalBackupTimeline => "wal_backup_timeline", Error, "The backup's start timeline is not in the history recovery follows, or it starts after that timeline's switch point.";
    WalTargetNotReached => "wal_target_not_reached", Error, "No commit or abort after --until / --target-time in the archive: recovery would end before its target.";
    WalTargetBeforeConsistent => "wal_target_before_consistent", Error, "Recovery would stop at the target before the backup is consistent (PostgreSQL: FATAL \"requested recovery stop point is before consistent recovery point\").";
    WalNoSegments => "wal_no_segments", Error, "The archive holds no readable segment on the timelines recovery follows.";
    WalOffTimeline => "wal_off_timeline", Warning, "A segment on a timeline recovery does not follow (no history file, or past its switch point): not used.";
    WalStrayFile => "wal_stray_file", Warning, "A segment name that a server with the archive's segment size never writes.";
    WalUnknownVersion => "wal_unknown_version", Warning, "The segments' xlp_magic is not PostgreSQL 15's: page and record checks may misread.";
    WalPartial => "wal_partial", Info, "A `.partial` segment (a timeline's unfinished last segment, kept at promotion): recovery does not read it.";
}

/// One problem (or one informational fact) about one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub kind: Kind,
    pub file: PathBuf,
    /// Byte position in `file` where the problem was seen, when it has one.
    pub position: Option<u64>,
    /// For pg_dump archives: the TOC entry hit, as `schema.tag (desc, dump id N)`.
    pub entry: Option<String>,
    pub message: String,
}

impl Finding {
    pub fn new(kind: Kind, file: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Finding {
            kind,
            file: file.into(),
            position: None,
            entry: None,
            message: message.into(),
        }
    }
    pub fn at(mut self, position: u64) -> Self {
        self.position = Some(position);
        self
    }
    pub fn entry(mut self, entry: Option<String>) -> Self {
        self.entry = entry;
        self
    }
    pub fn severity(&self) -> Severity {
        self.kind.severity()
    }
}
