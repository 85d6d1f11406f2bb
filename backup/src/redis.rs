//! Redis persistence files, read without modifying them.
//!
//! - RDB: `REDIS` and a four-digit version, the data, the EOF opcode `0xFF`, then (version 5 and
//!   later) an 8-byte little-endian CRC-64/REDIS of every byte before it; a stored 0 means the file
//!   was written with `rdbchecksum no`. The data itself is not decoded: the CRC covers it, and a
//!   truncated file fails the CRC.
//! - AOF: RESP arrays of bulk strings (`*N\r\n` then N times `$L\r\n<L bytes>\r\n`), parsed to the
//!   end, so a command cut off by a crash or a copy is found. Redis 7's `#TS:` annotation lines are
//!   accepted.
//! - Redis 7 multi-part AOF: `appendonlydir/<name>.manifest` lines `file F seq N type b|h|i`; each
//!   named file must exist beside the manifest (the files themselves are checked as RDB or AOF).

use std::io::{self, BufRead, Read};
use std::path::Path;

use crate::crc64;
use crate::finding::{Finding, Kind};
use crate::stream::HashingReader;

pub const RDB_MAGIC: &[u8] = b"REDIS";

/// What an RDB check learned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rdb {
    pub version: u32,
    /// The stored trailer, if the version has one.
    pub stored_crc: Option<u64>,
    pub computed_crc: Option<u64>,
}

/// Reads an RDB from its first byte to the end.
pub fn check_rdb<R: Read>(
    r: &mut HashingReader<'_, R>,
    file: &Path,
    findings: &mut Vec<Finding>,
) -> io::Result<Rdb> {
    let mut out = Rdb::default();
    let mut crc = crc64::digest();
    let mut head = [0u8; 9];
    let mut got = 0;
    while got < head.len() {
        let n = r.read(head.get_mut(got..).unwrap_or(&mut []))?;
        if n == 0 {
            break;
        }
        got += n;
    }
    let head = head.get(..got).unwrap_or(&[]);
    crc.update(head);
    let version = head
        .get(5..9)
        .filter(|d| d.iter().all(u8::is_ascii_digit))
        .and_then(|d| std::str::from_utf8(d).ok())
        .and_then(|d| d.parse::<u32>().ok());
    let Some(version) = version.filter(|_| head.starts_with(RDB_MAGIC)) else {
        let kind = if head.len() < 9
            && RDB_MAGIC.starts_with(head.get(..5.min(head.len())).unwrap_or(&[]))
        {
            Kind::RdbTruncated
        } else {
            Kind::RdbBadHeader
        };
        findings.push(Finding::new(kind, file, "no REDIS magic and four-digit version").at(0));
        return Ok(out);
    };
    out.version = version;
    let trailer = if version >= 5 { 8 } else { 0 };
    // Everything but the last `trailer` bytes goes into the CRC; `tail` holds the bytes that may
    // still turn out to be the trailer, plus the one before it (the EOF opcode).
    let keep = trailer + 1;
    let mut tail: Vec<u8> = Vec::with_capacity(keep + 64 * 1024);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        tail.extend_from_slice(buf.get(..n).unwrap_or(&[]));
        if tail.len() > keep {
            let spill = tail.len() - keep;
            crc.update(tail.get(..spill).unwrap_or(&[]));
            tail.drain(..spill);
        }
    }
    let end = r.position();
    if tail.len() < keep {
        findings.push(
            Finding::new(
                Kind::RdbTruncated,
                file,
                format!("{end} bytes: too short for an RDB version {version}"),
            )
            .at(end),
        );
        return Ok(out);
    }
    let eof = tail.first().copied();
    crc.update(tail.get(..1).unwrap_or(&[]));
    if eof != Some(0xFF) {
        findings.push(
            Finding::new(
                Kind::RdbNoEof,
                file,
                format!(
                    "byte before the trailer is {:#04x}, not the EOF opcode 0xff: truncated or not an RDB",
                    eof.unwrap_or(0)
                ),
            )
            .at(end - keep as u64),
        );
        // Without the EOF opcode the last 8 bytes are not a trailer: a CRC verdict would only
        // repeat this one.
        return Ok(out);
    }
    if trailer == 8 {
        let mut t = [0u8; 8];
        if let Some(src) = tail.get(1..9) {
            t.copy_from_slice(src);
        }
        let stored = u64::from_le_bytes(t);
        let computed = crc.finalize();
        out.stored_crc = Some(stored);
        out.computed_crc = Some(computed);
        if stored == 0 {
            findings.push(
                Finding::new(
                    Kind::RdbChecksumDisabled,
                    file,
                    "CRC-64 trailer is 0 (rdbchecksum no): contents not verifiable",
                )
                .at(end - 8),
            );
        } else if stored != computed {
            findings.push(
                Finding::new(
                    Kind::RdbCrcMismatch,
                    file,
                    format!("CRC-64 trailer {stored:#018x}, contents give {computed:#018x}"),
                )
                .at(end - 8),
            );
        }
    }
    Ok(out)
}

/// What an AOF check learned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Aof {
    pub commands: u64,
}

enum AofStop {
    Io(io::Error),
    Found(Kind, u64, String),
}

impl From<io::Error> for AofStop {
    fn from(e: io::Error) -> Self {
        AofStop::Io(e)
    }
}

/// A `\r\n`-terminated line of at most 64 bytes (RESP headers are short); `None` at a clean EOF.
fn header_line<R: Read>(
    r: &mut HashingReader<'_, R>,
    start: u64,
) -> Result<Option<Vec<u8>>, AofStop> {
    let mut line = Vec::new();
    loop {
        let buf = r.fill_buf()?;
        let Some(&b) = buf.first() else {
            if line.is_empty() {
                return Ok(None);
            }
            return Err(AofStop::Found(
                Kind::AofTruncated,
                start,
                "file ends inside a command header".into(),
            ));
        };
        r.consume(1);
        line.push(b);
        if line.ends_with(b"\r\n") {
            line.truncate(line.len() - 2);
            return Ok(Some(line));
        }
        if line.len() > 4096 {
            return Err(AofStop::Found(
                Kind::AofBadCommand,
                start,
                "header line longer than 4096 bytes".into(),
            ));
        }
    }
}

fn number(line: &[u8], prefix: u8) -> Option<u64> {
    let (first, digits) = line.split_first()?;
    if *first != prefix || digits.is_empty() || digits.len() > 19 {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// Parses RESP commands to the end of the file.
pub fn check_aof<R: Read>(
    r: &mut HashingReader<'_, R>,
    file: &Path,
    findings: &mut Vec<Finding>,
) -> io::Result<Aof> {
    let mut out = Aof::default();
    match aof_commands(r, &mut out) {
        Ok(()) => {}
        Err(AofStop::Io(e)) => return Err(e),
        Err(AofStop::Found(kind, pos, msg)) => {
            findings.push(Finding::new(kind, file, msg).at(pos));
        }
    }
    Ok(out)
}

fn aof_commands<R: Read>(r: &mut HashingReader<'_, R>, out: &mut Aof) -> Result<(), AofStop> {
    loop {
        let start = r.position();
        let Some(line) = header_line(r, start)? else {
            return Ok(());
        };
        if line.first() == Some(&b'#') {
            continue;
        }
        let Some(argc) = number(&line, b'*').filter(|n| *n > 0 && *n <= 1 << 20) else {
            return Err(AofStop::Found(
                Kind::AofBadCommand,
                start,
                format!(
                    "expected a RESP array header, found {:?}",
                    String::from_utf8_lossy(&line)
                        .chars()
                        .take(40)
                        .collect::<String>()
                ),
            ));
        };
        for i in 0..argc {
            let pos = r.position();
            let Some(line) = header_line(r, start)? else {
                return Err(AofStop::Found(
                    Kind::AofTruncated,
                    start,
                    format!("file ends after {i} of {argc} arguments"),
                ));
            };
            let Some(len) = number(&line, b'$') else {
                return Err(AofStop::Found(
                    Kind::AofBadCommand,
                    pos,
                    "expected a bulk string header".into(),
                ));
            };
            let want = len + 2;
            if r.skip(len)? < len {
                return Err(AofStop::Found(
                    Kind::AofTruncated,
                    start,
                    format!("file ends inside argument {} of {argc}", i + 1),
                ));
            }
            let mut crlf = [0u8; 2];
            let mut got = 0;
            while got < 2 {
                let n = r.read(crlf.get_mut(got..).unwrap_or(&mut []))?;
                if n == 0 {
                    return Err(AofStop::Found(
                        Kind::AofTruncated,
                        start,
                        format!(
                            "file ends inside argument {} of {argc} ({want} bytes)",
                            i + 1
                        ),
                    ));
                }
                got += n;
            }
            if crlf != *b"\r\n" {
                return Err(AofStop::Found(
                    Kind::AofBadCommand,
                    r.position() - 2,
                    "bulk string not followed by CRLF".into(),
                ));
            }
        }
        out.commands += 1;
    }
}

/// Checks a Redis 7 AOF manifest's text: every line well formed, every named file beside it.
pub fn check_manifest(text: &str, file: &Path, findings: &mut Vec<Finding>) {
    let dir = file.parent().unwrap_or(Path::new("."));
    let mut offset = 0u64;
    for line in text.split_inclusive('\n') {
        let pos = offset;
        offset += line.len() as u64;
        let l = line.trim_end();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let words: Vec<&str> = l.split(' ').collect();
        let name = words
            .chunks(2)
            .find(|kv| kv.first() == Some(&"file"))
            .and_then(|kv| kv.get(1).copied());
        let has_type = words.chunks(2).any(|kv| kv.first() == Some(&"type"));
        match name {
            Some(n) if has_type => {
                if !dir.join(n).is_file() {
                    findings.push(
                        Finding::new(
                            Kind::AofManifestBad,
                            file,
                            format!("names {n}, which is not in {}", dir.display()),
                        )
                        .at(pos),
                    );
                }
            }
            _ => findings.push(
                Finding::new(
                    Kind::AofManifestBad,
                    file,
                    format!("line is not `file NAME seq N type T`: {l:?}"),
                )
                .at(pos),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rdb(bytes: &[u8]) -> (Rdb, Vec<Finding>) {
        let mut p = |_| {};
        let mut r = HashingReader::new(bytes, &mut p);
        let mut f = Vec::new();
        let out = check_rdb(&mut r, Path::new("x.rdb"), &mut f).unwrap();
        (out, f)
    }

    fn aof(bytes: &[u8]) -> (Aof, Vec<Finding>) {
        let mut p = |_| {};
        let mut r = HashingReader::new(bytes, &mut p);
        let mut f = Vec::new();
        let out = check_aof(&mut r, Path::new("x.aof"), &mut f).unwrap();
        (out, f)
    }

    fn good_rdb() -> Vec<u8> {
        let mut b =
            b"REDIS0011\xfa\x09redis-ver\x057.0.0\xfe\x00\xfb\x01\x00\x00\x01a\x01b\xff".to_vec();
        let c = crc64::REDIS.checksum(&b);
        b.extend_from_slice(&c.to_le_bytes());
        b
    }

    #[test]
    fn rdb_good_truncated_flipped_disabled() {
        let good = good_rdb();
        let (o, f) = rdb(&good);
        assert!(f.is_empty(), "{f:?}");
        assert_eq!(o.version, 11);
        for cut in [3, 9, 15, good.len() - 1] {
            let (_, f) = rdb(&good[..cut]);
            assert_eq!(f.len().min(1), 1, "cut {cut}");
            assert!(
                f.iter().all(|x| x.severity() == crate::Severity::Error),
                "{f:?}"
            );
        }
        let mut flipped = good.clone();
        flipped[20] ^= 1;
        let (_, f) = rdb(&flipped);
        assert_eq!(f[0].kind, Kind::RdbCrcMismatch);
        let mut off = good.clone();
        let n = off.len();
        off[n - 8..].fill(0);
        let (_, f) = rdb(&off);
        assert_eq!(f[0].kind, Kind::RdbChecksumDisabled);
        let (_, f) = rdb(b"RADIS0011xxxxxxxxxxxxxx");
        assert_eq!(f[0].kind, Kind::RdbBadHeader);
    }

    #[test]
    fn aof_commands_and_truncation() {
        let good = b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n#TS:1700000000\r\n*3\r\n$3\r\nset\r\n$1\r\nk\r\n$5\r\nhello\r\n";
        let (o, f) = aof(good);
        assert!(f.is_empty(), "{f:?}");
        assert_eq!(o.commands, 2);
        for cut in 1..good.len() {
            let (_, f) = aof(&good[..cut]);
            let clean = cut == 23 || cut == 39;
            assert_eq!(f.is_empty(), clean, "cut {cut}: {f:?}");
            if !clean {
                assert_eq!(f[0].kind, Kind::AofTruncated, "cut {cut}");
            }
        }
        let (_, f) = aof(b"*1\r\n$3\r\nabcX\n");
        assert_eq!(f[0].kind, Kind::AofBadCommand);
        let (_, f) = aof(b"garbage\r\n");
        assert_eq!(f[0].kind, Kind::AofBadCommand);
    }
}
