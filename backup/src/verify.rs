//! `backup verify` over files and directories: which files, which sidecars name them, and the one
//! pass over each file that checks its format and its SHA-256 together.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::finding::{Finding, Kind, Severity};
use crate::stream::{hex, HashingReader};
use crate::{basebackup, pgdump, redis, sidecar};

#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Inflate compressed pg_dump data and count COPY fields.
    pub deep: bool,
}

/// What a file turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    PgDump,
    Rdb,
    Aof,
    AofManifest,
    BaseTar,
    /// `pg_basebackup -Ft -z`: the same tar, gzip-compressed.
    BaseTarGz,
    /// A tablespace's `<oid>.tar` from `pg_basebackup -Ft` (its files are `pg_tblspc/<oid>/...`
    /// in the manifest), plain or gzip-compressed.
    TablespaceTar,
    TablespaceTarGz,
    BackupManifest,
    Sidecar,
    Other,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::PgDump => "pg_dump",
            Format::Rdb => "rdb",
            Format::Aof => "aof",
            Format::AofManifest => "aof_manifest",
            Format::BaseTar => "base_tar",
            Format::BaseTarGz => "base_tar_gz",
            Format::TablespaceTar => "tablespace_tar",
            Format::TablespaceTarGz => "tablespace_tar_gz",
            Format::BackupManifest => "backup_manifest",
            Format::Sidecar => "sha256_sidecar",
            Format::Other => "other",
        }
    }
}

/// One verified file.
#[derive(Debug, Clone)]
pub struct FileReport {
    pub path: PathBuf,
    pub format: Format,
    pub bytes: u64,
    pub sha256: String,
    /// `Some(true)` matched a sidecar, `Some(false)` did not, `None` no sidecar names it.
    pub checksum_ok: Option<bool>,
    /// pg_dump: TOC entries; AOF: commands.
    pub entries: u64,
    pub findings: Vec<Finding>,
}

/// A file or directory that could not be read.
#[derive(Debug, Clone)]
pub struct IoProblem {
    pub path: PathBuf,
    pub message: String,
}

/// Files to read, the sidecars' expectations, and what could not be listed.
#[derive(Debug, Default)]
pub struct Plan {
    pub files: Vec<PathBuf>,
    pub sidecars: Vec<PathBuf>,
    pub total_bytes: u64,
    pub io_problems: Vec<IoProblem>,
}

fn is_sidecar(p: &Path) -> bool {
    p.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("sha256"))
}

fn walk(dir: &Path, plan: &mut Plan) {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            plan.io_problems.push(IoProblem {
                path: dir.to_path_buf(),
                message: e.to_string(),
            });
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        if p.is_dir() {
            walk(&p, plan);
        } else {
            add_file(&p, plan);
        }
    }
}

fn add_file(p: &Path, plan: &mut Plan) {
    if is_sidecar(p) {
        plan.sidecars.push(p.to_path_buf());
    } else {
        plan.total_bytes += fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        plan.files.push(p.to_path_buf());
    }
}

/// Expands the arguments: directories recursively, files as given; for a file, the sidecars in
/// its directory are read too (one of them may name it).
pub fn plan(paths: &[PathBuf]) -> Plan {
    let mut plan = Plan::default();
    for p in paths {
        match fs::metadata(p) {
            Ok(m) if m.is_dir() => walk(p, &mut plan),
            Ok(_) => {
                add_file(p, &mut plan);
                let dir = p.parent().filter(|d| !d.as_os_str().is_empty());
                if let Ok(rd) = fs::read_dir(dir.unwrap_or(Path::new("."))) {
                    for e in rd.flatten() {
                        let sp = e.path();
                        let sp = match dir {
                            Some(_) => sp,
                            None => PathBuf::from(e.file_name()),
                        };
                        if is_sidecar(&sp) && !plan.sidecars.contains(&sp) {
                            plan.sidecars.push(sp);
                        }
                    }
                }
            }
            Err(e) => plan.io_problems.push(IoProblem {
                path: p.clone(),
                message: e.to_string(),
            }),
        }
    }
    plan.files.sort();
    plan.files.dedup();
    plan.sidecars.sort();
    plan.sidecars.dedup();
    plan
}

/// Expected digests by target path, from every sidecar of the plan.
#[derive(Debug, Default)]
pub struct Expectations {
    pub by_file: BTreeMap<PathBuf, (String, PathBuf)>,
    pub findings: Vec<Finding>,
}

/// Reads the plan's sidecars; malformed lines and missing targets become findings.
pub fn expectations(plan: &Plan, io_problems: &mut Vec<IoProblem>) -> Expectations {
    let mut ex = Expectations::default();
    let mut seen = BTreeSet::new();
    for sc in &plan.sidecars {
        let text = match fs::read(sc) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) => {
                io_problems.push(IoProblem {
                    path: sc.clone(),
                    message: e.to_string(),
                });
                continue;
            }
        };
        let dir = sc.parent().unwrap_or(Path::new(""));
        let (entries, bad) = sidecar::parse(&text);
        for b in bad {
            ex.findings.push(Finding::new(
                Kind::SidecarMalformed,
                sc,
                format!("line {}: {:?}", b.line, b.text),
            ));
        }
        for e in entries {
            let target = match &e.name {
                Some(n) => dir.join(n),
                None => sc.with_extension(""),
            };
            if !target.is_file() {
                ex.findings.push(Finding::new(
                    Kind::SidecarTargetMissing,
                    sc,
                    format!("line {}: {} does not exist", e.line, target.display()),
                ));
                continue;
            }
            if seen.insert(target.clone()) {
                ex.by_file.insert(target, (e.sha256, sc.clone()));
            }
        }
    }
    ex
}

/// The OID of a tablespace tar's name (`16384.tar`, `16384.tar.gz`).
fn tablespace_oid(name: &str) -> Option<&str> {
    let oid = name
        .strip_suffix(".tar")
        .or_else(|| name.strip_suffix(".tar.gz"))?;
    (!oid.is_empty() && oid.bytes().all(|b| b.is_ascii_digit())).then_some(oid)
}

/// Picks the checker from the first bytes and the name.
fn detect(path: &Path, head: &[u8]) -> Format {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // A file shorter than the magic that starts like it is a truncated one of that kind.
    let short_prefix =
        |magic: &[u8]| !head.is_empty() && head.len() < magic.len() && magic.starts_with(head);
    let manifest_beside = path
        .parent()
        .is_some_and(|d| d.join("backup_manifest").is_file());
    if name == "backup_manifest" {
        Format::BackupManifest
    } else if name == "base.tar" && manifest_beside {
        Format::BaseTar
    } else if name == "base.tar.gz" && manifest_beside {
        Format::BaseTarGz
    } else if tablespace_oid(&name).is_some() && manifest_beside {
        if name.ends_with(".gz") {
            Format::TablespaceTarGz
        } else {
            Format::TablespaceTar
        }
    } else if head.starts_with(pgdump::MAGIC) || short_prefix(pgdump::MAGIC) {
        Format::PgDump
    } else if head.starts_with(redis::RDB_MAGIC) || short_prefix(redis::RDB_MAGIC) {
        Format::Rdb
    } else if name.ends_with(".manifest") && head.starts_with(b"file ") {
        Format::AofManifest
    } else if name.ends_with(".aof") || name.contains(".aof.") || head.starts_with(b"*") {
        Format::Aof
    } else {
        Format::Other
    }
}

/// `base.tar.gz`: the tar is checked as it is inflated from the one read of the compressed file
/// (which alone feeds the SHA-256 for the sidecar). Positions in tar findings are in the
/// decompressed tar; damaged gzip data (bad deflate stream, CRC-32 or length trailer) is a
/// finding at the compressed offset where inflating stopped, not an I/O error.
fn check_base_tar_gz<R: Read>(
    r: &mut HashingReader<'_, R>,
    path: &Path,
    root: &str,
    manifest: &basebackup::Manifest,
    findings: &mut Vec<Finding>,
) -> io::Result<u64> {
    let mut nothing = |_: u64| {};
    let mut tar = HashingReader::counting(flate2::read::GzDecoder::new(&mut *r), &mut nothing);
    let result = basebackup::check_base_tar(&mut tar, path, root, manifest, findings);
    let inflated = tar.position();
    drop(tar);
    match result {
        Ok(n) => Ok(n),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput
            ) =>
        {
            findings.push(
                Finding::new(
                    Kind::BasebackupGzipBad,
                    path,
                    format!(
                        "gzip data damaged ({e}) after {inflated} bytes of tar were inflated: \
                         the rest of the tar is unreadable"
                    ),
                )
                .at(r.position()),
            );
            Ok(0)
        }
        Err(e) => Err(e),
    }
}

/// Verifies one file in one read. `Err` only when the file cannot be read.
pub fn verify_file(
    path: &Path,
    expected: Option<&(String, PathBuf)>,
    opts: Options,
    progress: &mut dyn FnMut(u64),
) -> io::Result<FileReport> {
    let file = fs::File::open(path)?;
    let mut r = HashingReader::new(file, progress);
    let head = r.peek(16)?;
    let format = detect(path, &head);
    let mut findings = Vec::new();
    let mut entries = 0;
    match format {
        Format::PgDump => {
            let a = pgdump::check(&mut r, path, opts.deep, &mut findings)?;
            entries = a.toc.len() as u64;
        }
        Format::Rdb => {
            redis::check_rdb(&mut r, path, &mut findings)?;
        }
        Format::Aof => {
            entries = redis::check_aof(&mut r, path, &mut findings)?.commands;
        }
        Format::AofManifest => {
            // Manifests are a few lines; read them whole (still the one read, through the hash).
            let mut text = String::new();
            io::Read::take(&mut r, 1 << 20).read_to_string_lossy(&mut text)?;
            redis::check_manifest(&text, path, &mut findings);
        }
        Format::BackupManifest => {
            let mut text = Vec::new();
            io::Read::read_to_end(&mut r, &mut text)?;
            basebackup::parse_manifest(&text, path, &mut findings);
        }
        Format::BaseTar | Format::BaseTarGz | Format::TablespaceTar | Format::TablespaceTarGz => {
            let mpath = path.with_file_name("backup_manifest");
            // The manifest's own problems are reported when it is verified itself.
            let manifest = basebackup::parse_manifest(&fs::read(&mpath)?, &mpath, &mut Vec::new());
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            let root = match name.as_deref().and_then(tablespace_oid) {
                Some(oid) => format!("pg_tblspc/{oid}/"),
                None => String::new(),
            };
            let gz = matches!(format, Format::BaseTarGz | Format::TablespaceTarGz);
            match manifest {
                Some(m) if !gz => {
                    entries = basebackup::check_base_tar(&mut r, path, &root, &m, &mut findings)?
                }
                Some(m) => entries = check_base_tar_gz(&mut r, path, &root, &m, &mut findings)?,
                None => findings.push(Finding::new(
                    Kind::BasebackupManifestBad,
                    path,
                    "backup_manifest beside this tar cannot be read: files not checked",
                )),
            }
        }
        Format::Sidecar | Format::Other => {}
    }
    let (digest, bytes) = r.finish()?;
    let sha256 = hex(&digest);
    if format == Format::Other {
        findings.push(Finding::new(
            Kind::UnknownFormat,
            path,
            "not a pg_dump custom archive, RDB or AOF: checksum only",
        ));
    } else if !findings
        .iter()
        .any(|f| f.severity() == Severity::Error || f.kind == Kind::PgdumpUnsupportedVersion)
    {
        findings.push(Finding::new(
            Kind::FormatOk,
            path,
            format!("{} read to the end", format.as_str()),
        ));
    }
    let checksum_ok = match expected {
        Some((want, sc)) if *want == sha256 => {
            findings.push(Finding::new(
                Kind::ChecksumOk,
                path,
                format!("SHA-256 matches {}", sc.display()),
            ));
            Some(true)
        }
        Some((want, sc)) => {
            findings.push(Finding::new(
                Kind::ChecksumMismatch,
                path,
                format!("SHA-256 {sha256}, {} says {want}", sc.display()),
            ));
            Some(false)
        }
        None => {
            findings.push(Finding::new(
                Kind::NoChecksum,
                path,
                "no .sha256 sidecar names this file",
            ));
            None
        }
    };
    Ok(FileReport {
        path: path.to_path_buf(),
        format,
        bytes,
        sha256,
        checksum_ok,
        entries,
        findings,
    })
}

trait ReadLossy {
    fn read_to_string_lossy(&mut self, out: &mut String) -> io::Result<()>;
}

impl<T: io::Read> ReadLossy for T {
    fn read_to_string_lossy(&mut self, out: &mut String) -> io::Result<()> {
        let mut b = Vec::new();
        self.read_to_end(&mut b)?;
        out.push_str(&String::from_utf8_lossy(&b));
        Ok(())
    }
}
