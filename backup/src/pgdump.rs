//! pg_dump custom-format archives (`pg_dump -Fc`), read in pure Rust from a stream.
//!
//! Layout (PostgreSQL's pg_backup_archiver.c `WriteHead`/`WriteToc`, pg_backup_custom.c; archive
//! versions 1.10 to 1.15, i.e. pg_dump 9.0 to 16), detailed in docs/BACKUP.md:
//!
//! - header: `PGDMP`, version bytes major/minor/revision, int size, offset size, format (1 =
//!   custom), compression (an int before 1.15, an algorithm byte from 1.15), the creation time as
//!   seven ints, then the database name, server version and pg_dump version as strings;
//! - table of contents: a count, then per entry its dump id, whether it has data, table oid, oid,
//!   tag, desc, section, definition, drop statement, COPY statement, namespace, tablespace, table
//!   access method (1.14+), owner, the obsolete "with oids" flag, dependency ids (a NULL string
//!   ends them) and the data offset (a flag byte: 1 not set, 2 set, 3 no data, then offset bytes);
//! - data blocks to the end of the file: a type byte (1 table data, 3 large objects), the dump
//!   id, then chunks (an int length, the bytes) ending with a zero length. Large-object blocks
//!   hold (oid, chunks) pairs ending with oid 0.
//!
//! An int is a sign byte (0 or 1) and `int size` bytes little-endian; a string is an int length
//! (-1 = NULL) and the bytes. When pg_dump wrote to a pipe the offsets stay unset, so the blocks are
//! walked in file order, never sought.
//!
//! `pg_restore --list` reads only the header and the TOC: a dump truncated in its data passes it.
//! Walking every block catches that; `--deep` also inflates zlib data and counts COPY fields.

use std::collections::HashMap;
use std::io::{self, BufRead, Read};
use std::path::Path;

use flate2::{Decompress, FlushDecompress, Status};

use crate::finding::{Finding, Kind};
use crate::stream::HashingReader;

pub const MAGIC: &[u8] = b"PGDMP";

/// Strings longer than this are taken as corruption, not read into memory.
const MAX_STRING: u64 = 64 << 20;
const BLK_DATA: u8 = 1;
const BLK_BLOBS: u8 = 3;

/// The archive header, as far as it was read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Header {
    pub version: (u8, u8, u8),
    pub int_size: u8,
    pub off_size: u8,
    pub format: u8,
    /// -1 (zlib default), 0 (none) or 1..9 (zlib level) before 1.15; the algorithm byte from 1.15
    /// (0 none, 1 gzip, 2 lz4, 3 zstd).
    pub compression: i64,
    /// `YYYY-MM-DD hh:mm:ss` as pg_dump's local time.
    pub created: String,
    pub database: Option<String>,
    pub server_version: Option<String>,
    pub pg_dump_version: Option<String>,
}

/// Where a TOC entry's data is, per its offset flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataState {
    /// Has data, offset unknown (written to a pipe).
    NotSet,
    /// Has data at this byte position.
    Set(u64),
    /// Has no data block.
    NoData,
}

/// One table of contents entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TocEntry {
    pub dump_id: i64,
    pub had_dumper: bool,
    pub tag: Option<String>,
    pub desc: Option<String>,
    pub namespace: Option<String>,
    pub owner: Option<String>,
    pub copy_stmt: Option<String>,
    pub dependencies: Vec<String>,
    pub data: DataState,
}

impl TocEntry {
    /// `schema.tag (desc, dump id N)`, how findings name the entry.
    pub fn label(&self) -> String {
        let tag = self.tag.as_deref().unwrap_or("?");
        let name = match self.namespace.as_deref() {
            Some(ns) if !ns.is_empty() => format!("{ns}.{tag}"),
            _ => tag.to_string(),
        };
        format!(
            "{name} ({}, dump id {})",
            self.desc.as_deref().unwrap_or("?"),
            self.dump_id
        )
    }
}

/// What was read of an archive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Archive {
    pub header: Header,
    pub toc: Vec<TocEntry>,
    pub data_blocks: u64,
    /// Bytes of (compressed) data chunks.
    pub data_bytes: u64,
    /// Bytes after inflating (`--deep` only).
    pub inflated_bytes: u64,
    pub rows: u64,
}

/// Why reading stopped early.
enum Stop {
    Io(io::Error),
    Found(Finding),
}

impl From<io::Error> for Stop {
    fn from(e: io::Error) -> Self {
        Stop::Io(e)
    }
}

struct Reader<'a, 'p, R> {
    r: &'a mut HashingReader<'p, R>,
    file: &'a Path,
    int_size: u8,
    /// The entry being read, for findings.
    entry: Option<String>,
    /// Is the current structure the header, the TOC or data? Picks the kind for truncation.
    in_header: bool,
}

impl<R: Read> Reader<'_, '_, R> {
    fn found(&self, kind: Kind, pos: u64, msg: String) -> Stop {
        Stop::Found(
            Finding::new(kind, self.file, msg)
                .at(pos)
                .entry(self.entry.clone()),
        )
    }

    fn exact(&mut self, buf: &mut [u8], what: &str) -> Result<(), Stop> {
        let start = self.r.position();
        match self.r.read_exact(buf) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                let end = self.r.position();
                Err(self.found(
                    Kind::PgdumpTruncated,
                    end,
                    format!(
                        "file ends at byte {end} inside {what} (needed {} bytes from {start})",
                        buf.len()
                    ),
                ))
            }
            Err(e) => Err(Stop::Io(e)),
        }
    }

    fn byte(&mut self, what: &str) -> Result<u8, Stop> {
        let mut b = [0u8; 1];
        self.exact(&mut b, what)?;
        Ok(b[0])
    }

    fn int(&mut self, what: &str) -> Result<i64, Stop> {
        let pos = self.r.position();
        let kind = if self.in_header {
            Kind::PgdumpBadHeader
        } else {
            Kind::PgdumpBadToc
        };
        let sign = self.byte(what)?;
        if sign > 1 {
            return Err(self.found(
                kind,
                pos,
                format!("{what}: sign byte {sign} (0 or 1 expected)"),
            ));
        }
        let mut buf = [0u8; 8];
        let n = usize::from(self.int_size);
        let dst = buf.get_mut(..n).unwrap_or(&mut []);
        self.exact(dst, what)?;
        let v = i64::from_le_bytes(buf);
        if v < 0 {
            return Err(self.found(kind, pos, format!("{what}: integer out of range")));
        }
        Ok(if sign == 1 { -v } else { v })
    }

    fn string(&mut self, what: &str) -> Result<Option<String>, Stop> {
        let pos = self.r.position();
        let len = self.int(what)?;
        if len == -1 {
            return Ok(None);
        }
        let kind = if self.in_header {
            Kind::PgdumpBadHeader
        } else {
            Kind::PgdumpBadToc
        };
        let Ok(len) = u64::try_from(len) else {
            return Err(self.found(kind, pos, format!("{what}: string length {len}")));
        };
        if len > MAX_STRING {
            return Err(self.found(
                kind,
                pos,
                format!("{what}: string length {len} is implausible"),
            ));
        }
        let mut buf = vec![0u8; usize::try_from(len).unwrap_or(0)];
        self.exact(&mut buf, what)?;
        Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
    }
}

/// Reads a whole archive from `r` (positioned at the magic). Problems go to `findings`; an
/// `Err` is an I/O error reading the file.
pub fn check<R: Read>(
    r: &mut HashingReader<'_, R>,
    file: &Path,
    deep: bool,
    findings: &mut Vec<Finding>,
) -> io::Result<Archive> {
    let mut archive = Archive::default();
    let mut rd = Reader {
        r,
        file,
        int_size: 4,
        entry: None,
        in_header: true,
    };
    match read_all(&mut rd, &mut archive, deep, findings) {
        Ok(()) => Ok(archive),
        Err(Stop::Io(e)) => Err(e),
        Err(Stop::Found(f)) => {
            findings.push(f);
            Ok(archive)
        }
    }
}

fn read_all<R: Read>(
    rd: &mut Reader<'_, '_, R>,
    a: &mut Archive,
    deep: bool,
    findings: &mut Vec<Finding>,
) -> Result<(), Stop> {
    a.header = read_header(rd)?;
    rd.in_header = false;
    let version = a.header.version;
    let count = rd.int("TOC entry count")?;
    if count < 0 {
        return Err(rd.found(
            Kind::PgdumpBadToc,
            rd.r.position(),
            format!("TOC entry count {count}"),
        ));
    }
    for i in 0..count {
        rd.entry = Some(format!("TOC entry #{}", i + 1));
        let e = read_entry(rd, version, a.header.off_size)?;
        a.toc.push(e);
    }
    rd.entry = None;
    walk_data(rd, a, deep, findings)
}

fn read_header<R: Read>(rd: &mut Reader<'_, '_, R>) -> Result<Header, Stop> {
    let mut magic = [0u8; 5];
    rd.exact(&mut magic, "the magic")?;
    if magic != MAGIC {
        return Err(rd.found(Kind::PgdumpBadHeader, 0, "not PGDMP".into()));
    }
    let mut h = Header::default();
    let mut v = [0u8; 3];
    rd.exact(&mut v, "the version")?;
    h.version = (v[0], v[1], v[2]);
    if h.version.0 != 1 || h.version.1 > 99 {
        return Err(rd.found(
            Kind::PgdumpBadHeader,
            5,
            format!("archive version {}.{}.{}", v[0], v[1], v[2]),
        ));
    }
    if !(10..=15).contains(&h.version.1) {
        // A real archive of another pg_dump generation: positional fields differ, so reading on
        // would only invent errors.
        return Err(rd.found(
            Kind::PgdumpUnsupportedVersion,
            5,
            format!(
                "archive version {}.{}.{} (1.10 to 1.15 supported)",
                v[0], v[1], v[2]
            ),
        ));
    }
    h.int_size = rd.byte("the int size")?;
    if !(1..=8).contains(&h.int_size) {
        return Err(rd.found(Kind::PgdumpBadHeader, 8, format!("int size {}", h.int_size)));
    }
    rd.int_size = h.int_size;
    h.off_size = rd.byte("the offset size")?;
    if !(1..=8).contains(&h.off_size) {
        return Err(rd.found(
            Kind::PgdumpBadHeader,
            9,
            format!("offset size {}", h.off_size),
        ));
    }
    h.format = rd.byte("the format")?;
    if h.format != 1 {
        return Err(rd.found(
            Kind::PgdumpBadHeader,
            10,
            format!("format {} (1 = custom expected)", h.format),
        ));
    }
    let pos = rd.r.position();
    if h.version.1 >= 15 {
        h.compression = i64::from(rd.byte("the compression algorithm")?);
        if h.compression > 3 {
            return Err(rd.found(
                Kind::PgdumpBadHeader,
                pos,
                format!("compression algorithm {}", h.compression),
            ));
        }
    } else {
        h.compression = rd.int("the compression level")?;
        if !(-1..=9).contains(&h.compression) {
            return Err(rd.found(
                Kind::PgdumpBadHeader,
                pos,
                format!("compression level {}", h.compression),
            ));
        }
    }
    let names = ["seconds", "minutes", "hour", "day", "month", "year", "dst"];
    let ranges = [
        (0, 61),
        (0, 59),
        (0, 23),
        (1, 31),
        (0, 11),
        (0, 1100),
        (-1, 1),
    ];
    let mut tm = [0i64; 7];
    for ((slot, name), (lo, hi)) in tm.iter_mut().zip(names).zip(ranges) {
        let pos = rd.r.position();
        let v = rd.int(name)?;
        if v < lo || v > hi {
            return Err(rd.found(
                Kind::PgdumpBadHeader,
                pos,
                format!("creation time {name} {v} out of range"),
            ));
        }
        *slot = v;
    }
    h.created = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        tm[5] + 1900,
        tm[4] + 1,
        tm[3],
        tm[2],
        tm[1],
        tm[0]
    );
    h.database = rd.string("the database name")?;
    h.server_version = rd.string("the server version")?;
    h.pg_dump_version = rd.string("the pg_dump version")?;
    Ok(h)
}

fn read_entry<R: Read>(
    rd: &mut Reader<'_, '_, R>,
    version: (u8, u8, u8),
    off_size: u8,
) -> Result<TocEntry, Stop> {
    let pos = rd.r.position();
    let dump_id = rd.int("dump id")?;
    if dump_id <= 0 {
        return Err(rd.found(
            Kind::PgdumpBadToc,
            pos,
            format!("dump id {dump_id} out of range"),
        ));
    }
    rd.entry = Some(format!("dump id {dump_id}"));
    let had_dumper = rd.int("has-data flag")? != 0;
    rd.string("table oid")?;
    rd.string("oid")?;
    let tag = rd.string("tag")?;
    let desc = rd.string("desc")?;
    let partial = TocEntry {
        dump_id,
        had_dumper,
        tag,
        desc,
        namespace: None,
        owner: None,
        copy_stmt: None,
        dependencies: Vec::new(),
        data: DataState::NoData,
    };
    rd.entry = Some(partial.label());
    let pos = rd.r.position();
    let section = rd.int("section")?;
    if !(1..=4).contains(&section) {
        return Err(rd.found(Kind::PgdumpBadToc, pos, format!("section {section}")));
    }
    rd.string("definition")?;
    rd.string("drop statement")?;
    let copy_stmt = rd.string("COPY statement")?;
    let namespace = rd.string("namespace")?;
    rd.string("tablespace")?;
    if version.1 >= 14 {
        rd.string("table access method")?;
    }
    let owner = rd.string("owner")?;
    rd.string("with-oids flag")?;
    let mut e = TocEntry {
        copy_stmt,
        namespace,
        owner,
        ..partial
    };
    rd.entry = Some(e.label());
    while let Some(d) = rd.string("dependency")? {
        e.dependencies.push(d);
        if e.dependencies.len() > 1_000_000 {
            return Err(rd.found(
                Kind::PgdumpBadToc,
                rd.r.position(),
                "more than a million dependencies".into(),
            ));
        }
    }
    let pos = rd.r.position();
    let flag = rd.byte("data offset flag")?;
    let mut off = [0u8; 8];
    let n = usize::from(off_size);
    rd.exact(off.get_mut(..n).unwrap_or(&mut []), "data offset")?;
    let off = u64::from_le_bytes(off);
    e.data = match flag {
        1 => DataState::NotSet,
        2 => DataState::Set(off),
        3 => DataState::NoData,
        other => {
            return Err(rd.found(
                Kind::PgdumpBadToc,
                pos,
                format!("data offset flag {other} (1, 2 or 3 expected)"),
            ))
        }
    };
    Ok(e)
}

/// Walks the data blocks in file order until the end of the file.
fn walk_data<R: Read>(
    rd: &mut Reader<'_, '_, R>,
    a: &mut Archive,
    deep: bool,
    findings: &mut Vec<Finding>,
) -> Result<(), Stop> {
    let by_id: HashMap<i64, usize> = a
        .toc
        .iter()
        .enumerate()
        .map(|(i, e)| (e.dump_id, i))
        .collect();
    let mut seen = vec![false; a.toc.len()];
    let zlib = a.header.compression != 0 && a.header.version.1 < 15
        || a.header.version.1 >= 15 && a.header.compression == 1;
    loop {
        let start = rd.r.position();
        rd.entry = None;
        if rd.r.fill_buf()?.is_empty() {
            break;
        }
        let kind = rd.byte("block type")?;
        let id = rd.int("block dump id")?;
        let Some(&idx) = by_id.get(&id) else {
            return Err(rd.found(
                Kind::PgdumpBadBlock,
                start,
                format!("block type {kind} for dump id {id}, which is not in the TOC"),
            ));
        };
        let Some(entry) = a.toc.get(idx) else { break };
        rd.entry = Some(entry.label());
        if kind != BLK_DATA && kind != BLK_BLOBS {
            return Err(rd.found(
                Kind::PgdumpBadBlock,
                start,
                format!("unknown block type {kind}"),
            ));
        }
        match entry.data {
            DataState::NoData => {
                return Err(rd.found(
                    Kind::PgdumpBadBlock,
                    start,
                    "data block for an entry the TOC says has no data".into(),
                ))
            }
            DataState::Set(off) if off != start => findings.push(
                Finding::new(
                    Kind::PgdumpBadBlock,
                    rd.file,
                    format!("block starts at byte {start}, the TOC says {off}"),
                )
                .at(start)
                .entry(rd.entry.clone()),
            ),
            _ => {}
        }
        if let Some(s) = seen.get_mut(idx) {
            if *s {
                return Err(rd.found(
                    Kind::PgdumpBadBlock,
                    start,
                    "second data block for this entry".into(),
                ));
            }
            *s = true;
        }
        let columns = entry.copy_stmt.as_deref().and_then(copy_columns);
        a.data_blocks += 1;
        if kind == BLK_DATA {
            read_chunks(rd, a, deep && zlib, deep, columns, findings)?;
        } else {
            loop {
                let oid = rd.int("large object oid")?;
                if oid == 0 {
                    break;
                }
                read_chunks(rd, a, deep && zlib, false, None, findings)?;
            }
        }
    }
    for (e, seen) in a.toc.iter().zip(&seen) {
        if !seen && e.data != DataState::NoData {
            findings.push(
                Finding::new(
                    Kind::PgdumpMissingData,
                    rd.file,
                    "the TOC says this entry has data; no block for it before the end of the file",
                )
                .at(rd.r.position())
                .entry(Some(e.label())),
            );
        }
    }
    Ok(())
}

/// The number of columns in `COPY name (a, b, c) FROM stdin;`, quotes respected.
pub fn copy_columns(stmt: &str) -> Option<usize> {
    let mut in_quote = false;
    let mut depth = 0;
    let mut count = 0;
    for c in stmt.chars() {
        match c {
            '"' => in_quote = !in_quote,
            '(' if !in_quote => {
                depth += 1;
                if depth == 1 {
                    count = 1;
                }
            }
            ')' if !in_quote && depth == 1 => return Some(count),
            ',' if !in_quote && depth == 1 => count += 1,
            _ => {}
        }
    }
    None
}

/// Checks COPY text rows: each line has exactly `columns - 1` tabs (tabs in values are escaped).
struct RowCheck {
    columns: usize,
    tabs: usize,
    line_start: u64,
    offset: u64,
    last: Option<u8>,
    rows: u64,
    bad: Option<String>,
    /// Bytes in the current line, and its first two (to spot the `\.` end-of-data line).
    line_len: usize,
    head: [u8; 2],
    /// The `\.` line was seen; only empty lines may follow.
    ended: bool,
}

impl RowCheck {
    fn feed(&mut self, data: &[u8]) {
        for &b in data {
            if b == b'\t' {
                self.tabs += 1;
            } else if b == b'\n' {
                self.end_line();
            } else if let Some(slot) = self.head.get_mut(self.line_len) {
                *slot = b;
            }
            if b != b'\n' {
                self.line_len += 1;
            }
            self.offset += 1;
            self.last = Some(b);
        }
    }

    fn end_line(&mut self) {
        let terminator = self.line_len == 2 && self.head == *b"\\.";
        let problem = if self.ended {
            (self.line_len != 0).then(|| "data after the \\. end-of-data line".to_string())
        } else if terminator {
            self.ended = true;
            None
        } else if self.tabs + 1 != self.columns {
            self.rows += 1;
            Some(format!(
                "COPY row {} (byte {} of the table's data) has {} fields, {} expected",
                self.rows,
                self.line_start,
                self.tabs + 1,
                self.columns
            ))
        } else {
            self.rows += 1;
            None
        };
        if self.bad.is_none() {
            self.bad = problem;
        }
        self.tabs = 0;
        self.line_len = 0;
        self.head = [0; 2];
        self.line_start = self.offset + 1;
    }
}

fn read_chunks<R: Read>(
    rd: &mut Reader<'_, '_, R>,
    a: &mut Archive,
    inflate: bool,
    deep: bool,
    columns: Option<usize>,
    findings: &mut Vec<Finding>,
) -> Result<(), Stop> {
    let mut z = inflate.then(|| Decompress::new(true));
    let mut z_done = false;
    let mut z_failed = false;
    let mut rows = columns.filter(|_| deep).map(|columns| RowCheck {
        columns,
        tabs: 0,
        line_start: 0,
        offset: 0,
        last: None,
        rows: 0,
        bad: None,
        line_len: 0,
        head: [0; 2],
        ended: false,
    });
    let mut buf = vec![0u8; 64 * 1024];
    let mut out = vec![0u8; 256 * 1024];
    let block_pos = rd.r.position();
    let mut block_bytes = 0u64;
    loop {
        let pos = rd.r.position();
        let len = rd.int("chunk length")?;
        if len == 0 {
            break;
        }
        let Ok(mut left) = u64::try_from(len) else {
            return Err(rd.found(Kind::PgdumpBadBlock, pos, format!("chunk length {len}")));
        };
        a.data_bytes += left;
        block_bytes += left;
        while left > 0 {
            let n = usize::try_from(left.min(buf.len() as u64)).unwrap_or(0);
            let piece = buf.get_mut(..n).unwrap_or(&mut []);
            rd.exact(piece, "a data chunk")?;
            left -= n as u64;
            if let Some(dz) = z.as_mut().filter(|_| !z_failed) {
                let here = rd.r.position() - n as u64;
                let mut input: &[u8] = piece;
                while !input.is_empty() {
                    if z_done {
                        z_failed = true;
                        findings.push(
                            Finding::new(
                                Kind::PgdumpBadCompressedData,
                                rd.file,
                                "bytes after the end of the zlib stream",
                            )
                            .at(here)
                            .entry(rd.entry.clone()),
                        );
                        break;
                    }
                    let before_in = dz.total_in();
                    let before_out = dz.total_out();
                    match dz.decompress(input, &mut out, FlushDecompress::None) {
                        Ok(status) => {
                            let used = usize::try_from(dz.total_in() - before_in).unwrap_or(0);
                            let made = usize::try_from(dz.total_out() - before_out).unwrap_or(0);
                            input = input.get(used..).unwrap_or(&[]);
                            if let Some(rc) = rows.as_mut() {
                                rc.feed(out.get(..made).unwrap_or(&[]));
                            }
                            a.inflated_bytes += made as u64;
                            if status == Status::StreamEnd {
                                z_done = true;
                            } else if used == 0 && made == 0 {
                                break;
                            }
                        }
                        Err(e) => {
                            z_failed = true;
                            findings.push(
                                Finding::new(
                                    Kind::PgdumpBadCompressedData,
                                    rd.file,
                                    format!("zlib: {e}"),
                                )
                                .at(here)
                                .entry(rd.entry.clone()),
                            );
                            break;
                        }
                    }
                }
            } else if !inflate {
                if let Some(rc) = rows.as_mut() {
                    rc.feed(piece);
                }
            }
        }
    }
    if z.is_some() && !z_failed && !z_done && block_bytes > 0 {
        // An unfinished stream: the block's chunks end before zlib's end marker.
        findings.push(
            Finding::new(
                Kind::PgdumpBadCompressedData,
                rd.file,
                "the zlib stream does not end where the block's chunks end",
            )
            .at(block_pos)
            .entry(rd.entry.clone()),
        );
        z_failed = true;
    }
    if let Some(rc) = rows.filter(|_| !z_failed) {
        a.rows += rc.rows;
        let msg = rc.bad.or_else(|| {
            if rc.last.is_some() && rc.last != Some(b'\n') {
                Some("the table's COPY data does not end with a newline".to_string())
            } else if !rc.ended {
                Some("the table's COPY data has no \\. end-of-data line".to_string())
            } else {
                None
            }
        });
        if let Some(msg) = msg {
            findings.push(
                Finding::new(Kind::PgdumpBadRow, rd.file, msg)
                    .at(block_pos)
                    .entry(rd.entry.clone()),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_of_copy_statements() {
        assert_eq!(
            copy_columns("COPY public.t (a, b, c) FROM stdin;\n"),
            Some(3)
        );
        assert_eq!(
            copy_columns("COPY \"x(,\".\"t,\" (\"a,b\", c) FROM stdin;\n"),
            Some(2)
        );
        assert_eq!(copy_columns(""), None);
    }

    #[test]
    fn other_generations_are_a_warning_not_corruption() {
        for (v, kind) in [
            (16u8, Kind::PgdumpUnsupportedVersion),
            (9, Kind::PgdumpUnsupportedVersion),
            (200, Kind::PgdumpBadHeader),
        ] {
            let bytes = [b'P', b'G', b'D', b'M', b'P', 1, v, 0, 4, 8, 1];
            let mut p = |_| {};
            let mut r = HashingReader::new(&bytes[..], &mut p);
            let mut f = Vec::new();
            check(&mut r, Path::new("x"), false, &mut f).unwrap();
            assert_eq!(f.len(), 1);
            assert_eq!(f[0].kind, kind);
            assert_eq!(f[0].position, Some(5));
        }
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 7u64;
        for len in 0..400usize {
            let mut bytes = b"PGDMP\x01\x0e\x00\x04\x08\x01".to_vec();
            for _ in 0..len {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                bytes.push((seed >> 56) as u8 & if len % 2 == 0 { 0x03 } else { 0xff });
            }
            let mut p = |_| {};
            let mut r = HashingReader::new(&bytes[..], &mut p);
            let mut f = Vec::new();
            check(&mut r, Path::new("x"), true, &mut f).unwrap();
            assert!(!f.is_empty(), "len {len}");
        }
    }
}
