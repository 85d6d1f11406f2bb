//! pg_basebackup tar backups (`pg_basebackup -Ft`) checked against their `backup_manifest`.
//!
//! PostgreSQL 15's pg_verifybackup cannot read tar backups, so this reads `base.tar` as a stream
//! (ustar headers of 512 bytes, octal or base-256 sizes, GNU long names and pax `path`/`size`
//! records honoured) and checks every file's size and checksum (CRC32C, SHA-224/256/384/512) on the
//! way through, in the same single read that hashes the tar for its sidecar. The manifest's own
//! `Manifest-Checksum` is the SHA-256 of its text up to and including the newline before that
//! line. Tablespace tars (`<oid>.tar`) are not checked yet: their files are left out of the
//! comparison.

use std::collections::HashMap;
use std::io::{self, Read};
use std::path::Path;

use sha2::Digest;

use crate::finding::{Finding, Kind};
use crate::stream::{hex, HashingReader};

/// One file the manifest lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestFile {
    pub size: u64,
    /// Upper-case algorithm name as written (`SHA256`, `CRC32C`, `NONE`...).
    pub algorithm: String,
    pub checksum: String,
}

/// The parts of a backup_manifest the checks use.
#[derive(Debug, Clone, Default)]
pub struct Manifest {
    pub files: HashMap<String, ManifestFile>,
}

/// Parses a manifest and checks its own checksum; problems go to `findings` against `file`.
pub fn parse_manifest(text: &[u8], file: &Path, findings: &mut Vec<Finding>) -> Option<Manifest> {
    let bad = |msg: String| Finding::new(Kind::BasebackupManifestBad, file, msg);
    let v: serde_json::Value = match serde_json::from_slice(text) {
        Ok(v) => v,
        Err(e) => {
            findings.push(bad(format!("not JSON: {e}")));
            return None;
        }
    };
    match v.get("Manifest-Checksum").and_then(|c| c.as_str()) {
        None => findings.push(bad("no Manifest-Checksum".into())),
        Some(want) => {
            let key = b"\"Manifest-Checksum\"";
            let at = text.windows(key.len()).rposition(|w| w == key).unwrap_or(0);
            let covered = text.get(..at).unwrap_or(&[]);
            let end = covered
                .iter()
                .rposition(|b| *b == b'\n')
                .map_or(0, |i| i + 1);
            let got = hex(&sha2::Sha256::digest(covered.get(..end).unwrap_or(&[])));
            if !got.eq_ignore_ascii_case(want) {
                findings.push(
                    Finding::new(
                        Kind::BasebackupManifestChecksum,
                        file,
                        format!("Manifest-Checksum {want}, the text gives {got}"),
                    )
                    .at(at as u64),
                );
            }
        }
    }
    let mut m = Manifest::default();
    let Some(files) = v.get("Files").and_then(|f| f.as_array()) else {
        findings.push(bad("no Files array".into()));
        return None;
    };
    for f in files {
        let path = f
            .get("Path")
            .and_then(|p| p.as_str())
            .map(str::to_string)
            .or_else(|| {
                f.get("Encoded-Path")
                    .and_then(|p| p.as_str())
                    .and_then(unhex)
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
            });
        let size = f.get("Size").and_then(|s| s.as_u64());
        let (Some(path), Some(size)) = (path, size) else {
            findings.push(bad(format!("a Files entry without Path or Size: {f}")));
            continue;
        };
        let algorithm = f
            .get("Checksum-Algorithm")
            .and_then(|a| a.as_str())
            .unwrap_or("NONE")
            .to_ascii_uppercase();
        let checksum = f
            .get("Checksum")
            .and_then(|a| a.as_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        m.files.insert(
            path,
            ManifestFile {
                size,
                algorithm,
                checksum,
            },
        );
    }
    Some(m)
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}

enum Sum {
    None,
    Crc32c(u32),
    Sha224(sha2::Sha224),
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
}

impl Sum {
    fn new(alg: &str) -> Option<Sum> {
        Some(match alg {
            "NONE" => Sum::None,
            "CRC32C" => Sum::Crc32c(0),
            "SHA224" => Sum::Sha224(sha2::Sha224::new()),
            "SHA256" => Sum::Sha256(sha2::Sha256::new()),
            "SHA384" => Sum::Sha384(sha2::Sha384::new()),
            "SHA512" => Sum::Sha512(sha2::Sha512::new()),
            _ => return None,
        })
    }
    fn update(&mut self, b: &[u8]) {
        match self {
            Sum::None => {}
            Sum::Crc32c(c) => *c = crc32c::crc32c_append(*c, b),
            Sum::Sha224(h) => h.update(b),
            Sum::Sha256(h) => h.update(b),
            Sum::Sha384(h) => h.update(b),
            Sum::Sha512(h) => h.update(b),
        }
    }
    /// Hex as PostgreSQL writes it (CRC32C: its bytes in little-endian order).
    fn finish(self) -> Option<String> {
        Some(match self {
            Sum::None => return None,
            Sum::Crc32c(c) => hex(&c.to_le_bytes()),
            Sum::Sha224(h) => hex(&h.finalize()),
            Sum::Sha256(h) => hex(&h.finalize()),
            Sum::Sha384(h) => hex(&h.finalize()),
            Sum::Sha512(h) => hex(&h.finalize()),
        })
    }
}

/// A tar number field: octal text, or base-256 when the high bit of the first byte is set.
fn tar_number(field: &[u8]) -> Option<u64> {
    match field.first() {
        Some(b) if b & 0x80 != 0 => field
            .iter()
            .skip(1)
            .try_fold(u64::from(b & 0x7f), |acc, &b| {
                acc.checked_mul(256).map(|v| v | u64::from(b))
            }),
        _ => {
            let s: String = field
                .iter()
                .take_while(|b| **b != 0)
                .map(|b| char::from(*b))
                .collect();
            let s = s.trim();
            if s.is_empty() {
                Some(0)
            } else {
                u64::from_str_radix(s, 8).ok()
            }
        }
    }
}

fn cstr(field: &[u8]) -> String {
    let end = field.iter().position(|b| *b == 0).unwrap_or(field.len());
    String::from_utf8_lossy(field.get(..end).unwrap_or(&[])).into_owned()
}

/// Reads exactly `buf.len()` bytes; `false` at a clean or mid-buffer end of file.
fn fill<R: Read>(r: &mut HashingReader<'_, R>, buf: &mut [u8]) -> io::Result<bool> {
    match r.read_exact(buf) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

/// Streams `base.tar` (`root` = "") or a tablespace's `<oid>.tar` (`root` = "pg_tblspc/<oid>/",
/// where backup_manifest lists that tablespace's files), checking each regular file against
/// `manifest`, then reports the manifest's files of that tar it did not hold. Returns the files
/// seen.
pub fn check_base_tar<R: Read>(
    r: &mut HashingReader<'_, R>,
    file: &Path,
    root: &str,
    manifest: &Manifest,
    findings: &mut Vec<Finding>,
) -> io::Result<u64> {
    let mut seen = std::collections::HashSet::new();
    let mut header = [0u8; 512];
    let mut long_name: Option<String> = None;
    let mut pax_path: Option<String> = None;
    let mut pax_size: Option<u64> = None;
    let mut ended = false;
    let mut count = 0;
    loop {
        let pos = r.position();
        if !fill(r, &mut header)? {
            if pos != r.position() || !ended {
                findings.push(
                    Finding::new(
                        Kind::TarTruncated,
                        file,
                        "the tar ends inside a header or without its end-of-archive blocks",
                    )
                    .at(r.position()),
                );
            }
            break;
        }
        if header.iter().all(|b| *b == 0) {
            ended = true;
            continue;
        }
        if ended {
            findings.push(
                Finding::new(Kind::TarBad, file, "data after the end-of-archive block").at(pos),
            );
            break;
        }
        let stored = tar_number(header.get(148..156).unwrap_or(&[]));
        let sum: u64 = header
            .iter()
            .enumerate()
            .map(|(i, b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    u64::from(*b)
                }
            })
            .sum();
        if stored != Some(sum) {
            findings.push(
                Finding::new(
                    Kind::TarBad,
                    file,
                    format!("header checksum {stored:?}, header gives {sum}"),
                )
                .at(pos),
            );
            break;
        }
        let Some(mut size) = tar_number(header.get(124..136).unwrap_or(&[])) else {
            findings.push(Finding::new(Kind::TarBad, file, "unreadable size field").at(pos));
            break;
        };
        if let Some(s) = pax_size.take() {
            size = s;
        }
        let kind = header.get(156).copied().unwrap_or(0);
        let mut name = cstr(header.get(0..100).unwrap_or(&[]));
        let prefix = cstr(header.get(345..500).unwrap_or(&[]));
        if header.get(257..262) == Some(b"ustar") && !prefix.is_empty() {
            name = format!("{prefix}/{name}");
        }
        if let Some(n) = long_name.take().or_else(|| pax_path.take()) {
            name = n;
        }
        let padded = size.div_ceil(512) * 512;
        match kind {
            b'L' | b'x' if size <= 1 << 20 => {
                let mut buf = vec![0u8; usize::try_from(padded).unwrap_or(0)];
                if !fill(r, &mut buf)? {
                    findings.push(
                        Finding::new(
                            Kind::TarTruncated,
                            file,
                            "the tar ends inside a long-name record",
                        )
                        .at(r.position()),
                    );
                    break;
                }
                let body = buf.get(..usize::try_from(size).unwrap_or(0)).unwrap_or(&[]);
                if kind == b'L' {
                    long_name = Some(cstr(body));
                } else {
                    for rec in String::from_utf8_lossy(body).lines() {
                        if let Some((_, kv)) = rec.split_once(' ') {
                            if let Some(p) = kv.strip_prefix("path=") {
                                pax_path = Some(p.to_string());
                            } else if let Some(s) = kv.strip_prefix("size=") {
                                pax_size = s.parse().ok();
                            }
                        }
                    }
                }
                continue;
            }
            b'0' | 0 => {}
            _ => {
                // Directories, links and the rest carry no data PostgreSQL checksums.
                if r.skip(padded)? < padded {
                    findings.push(
                        Finding::new(
                            Kind::TarTruncated,
                            file,
                            format!("the tar ends inside {name}"),
                        )
                        .at(r.position()),
                    );
                    break;
                }
                continue;
            }
        }
        count += 1;
        let name = format!("{root}{name}");
        let entry = Some(name.clone());
        let want = manifest.files.get(&name);
        let mut sum = want.and_then(|w| Sum::new(&w.algorithm));
        let mut left = size;
        let mut buf = vec![0u8; 64 * 1024];
        let mut truncated = false;
        while left > 0 {
            let n = usize::try_from(left.min(buf.len() as u64)).unwrap_or(0);
            let piece = buf.get_mut(..n).unwrap_or(&mut []);
            if !fill(r, piece)? {
                truncated = true;
                break;
            }
            if let Some(s) = sum.as_mut() {
                s.update(piece);
            }
            left -= n as u64;
        }
        if truncated || r.skip(padded - size)? < padded - size {
            findings.push(
                Finding::new(
                    Kind::TarTruncated,
                    file,
                    format!("the tar ends inside {name} ({size} bytes)"),
                )
                .at(r.position())
                .entry(entry),
            );
            break;
        }
        seen.insert(name.clone());
        match want {
            None => findings.push(
                Finding::new(
                    Kind::BasebackupExtraFile,
                    file,
                    format!("{name} is not in backup_manifest"),
                )
                .at(pos)
                .entry(entry),
            ),
            Some(w) if w.size != size => findings.push(
                Finding::new(
                    Kind::BasebackupFileSize,
                    file,
                    format!("{name}: {size} bytes, the manifest says {}", w.size),
                )
                .at(pos)
                .entry(entry),
            ),
            Some(w) => {
                if let Some(got) = sum.and_then(Sum::finish) {
                    if got != w.checksum {
                        findings.push(
                            Finding::new(
                                Kind::BasebackupFileChecksum,
                                file,
                                format!(
                                    "{name}: {} {got}, the manifest says {}",
                                    w.algorithm, w.checksum
                                ),
                            )
                            .at(pos)
                            .entry(entry),
                        );
                    }
                }
            }
        }
    }
    let mut missing: Vec<&String> = manifest
        .files
        .keys()
        .filter(|p| match root {
            // base.tar holds everything but the tablespaces, which have tars of their own.
            "" => !p.starts_with("pg_tblspc/"),
            _ => p.starts_with(root),
        })
        .filter(|p| !seen.contains(*p))
        .collect();
    missing.sort();
    for p in missing {
        findings.push(
            Finding::new(
                Kind::BasebackupMissingFile,
                file,
                format!("{p} is in backup_manifest, not in the tar"),
            )
            .entry(Some(p.clone())),
        );
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str, size: u64, kind: u8) -> Vec<u8> {
        let mut h = vec![0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        let sz = format!("{size:011o}\0");
        h[124..136].copy_from_slice(sz.as_bytes());
        h[156] = kind;
        h[257..263].copy_from_slice(b"ustar\0");
        h[148..156].fill(b' ');
        let sum: u64 = h.iter().map(|b| u64::from(*b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        h
    }

    fn manifest_for(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut text = String::from("{ \"PostgreSQL-Backup-Manifest-Version\": 1,\n\"Files\": [\n");
        let lines: Vec<String> = files
            .iter()
            .map(|(n, d)| {
                format!(
                    "{{ \"Path\": \"{n}\", \"Size\": {}, \"Checksum-Algorithm\": \"CRC32C\", \"Checksum\": \"{}\" }}",
                    d.len(),
                    hex(&crc32c::crc32c(d).to_le_bytes())
                )
            })
            .collect();
        text.push_str(&lines.join(",\n"));
        text.push_str("\n],\n");
        let sum = hex(&sha2::Sha256::digest(text.as_bytes()));
        text.push_str(&format!("\"Manifest-Checksum\": \"{sum}\"}}\n"));
        text.into_bytes()
    }

    fn run(tar: &[u8], manifest: &Manifest) -> Vec<Finding> {
        let mut p = |_| {};
        let mut r = HashingReader::new(tar, &mut p);
        let mut f = Vec::new();
        check_base_tar(&mut r, Path::new("base.tar"), "", manifest, &mut f).unwrap();
        f
    }

    #[test]
    fn tar_against_manifest_and_garbage() {
        let data: &[u8] = b"15\n";
        let mtext = manifest_for(&[("PG_VERSION", data)]);
        let mut f = Vec::new();
        let m = parse_manifest(&mtext, Path::new("backup_manifest"), &mut f).unwrap();
        assert!(f.is_empty(), "{f:?}");
        let mut tar = header("PG_VERSION", 3, b'0');
        let mut body = data.to_vec();
        body.resize(512, 0);
        tar.extend_from_slice(&body);
        tar.extend_from_slice(&[0u8; 1024]);
        assert!(run(&tar, &m).is_empty());
        let mut bad = tar.clone();
        bad[513] ^= 1;
        assert_eq!(run(&bad, &m)[0].kind, Kind::BasebackupFileChecksum);
        let f = run(&tar[..700], &m);
        assert_eq!(f[0].kind, Kind::TarTruncated);
        // A manifest edited after it was written.
        let edited = String::from_utf8(mtext)
            .unwrap()
            .replace("\"Size\": 3", "\"Size\": 4");
        let mut f = Vec::new();
        parse_manifest(edited.as_bytes(), Path::new("backup_manifest"), &mut f);
        assert_eq!(f[0].kind, Kind::BasebackupManifestChecksum);
        // Garbage never panics.
        let mut seed = 11u64;
        for len in 0..300usize {
            let mut g = tar.clone();
            for _ in 0..len.min(40) {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                let i = (seed >> 33) as usize % g.len();
                g[i] = (seed >> 20) as u8;
            }
            g.truncate(len * 7 % (tar.len() + 1));
            run(&g, &m);
            parse_manifest(&g, Path::new("m"), &mut Vec::new());
        }
    }
}
