//! One archived segment: read (decompressed), its page headers checked, its pages fed to the
//! record walker.

use std::fs;
use std::io::{self, Read};
use std::path::PathBuf;

use super::name::{Compression, Lsn, SegSize};
use super::page::{self, Geometry};
use super::record::{Walker, XactEnd};
use crate::finding::{Finding, Kind};

#[derive(Debug, Clone)]
pub(super) struct SegFile {
    pub path: PathBuf,
    pub tli: u32,
    pub log: u32,
    pub seg: u32,
    pub compression: Compression,
}

/// Reads a whole segment, decompressing; at most `cap` bytes plus one (to see oversize files).
/// `Ok(Err(_))`: a compressed file that does not decompress (damage, not I/O).
pub(super) fn read_segment(f: &SegFile, cap: u64) -> io::Result<Result<Vec<u8>, String>> {
    let file = fs::File::open(&f.path)?;
    let mut out = Vec::new();
    let limit = cap + 1;
    let r = match f.compression {
        Compression::None => file.take(limit).read_to_end(&mut out).map(|_| ()),
        Compression::Gzip => flate2::read::GzDecoder::new(file)
            .take(limit)
            .read_to_end(&mut out)
            .map(|_| ()),
        Compression::Zstd => match zstd::stream::read::Decoder::new(file) {
            Ok(d) => d.take(limit).read_to_end(&mut out).map(|_| ()),
            Err(e) => Err(e),
        },
        Compression::Lz4 => lz4_flex::frame::FrameDecoder::new(file)
            .take(limit)
            .read_to_end(&mut out)
            .map(|_| ()),
    };
    match r {
        Ok(()) => Ok(Ok(out)),
        Err(e) if f.compression == Compression::None => Err(e),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::PermissionDenied | io::ErrorKind::NotFound
            ) =>
        {
            Err(e)
        }
        Err(e) => Ok(Err(format!("does not decompress: {e}"))),
    }
}

/// The first page header's geometry, or `None` when it has no usable long header.
pub(super) fn first_page(f: &SegFile) -> io::Result<Option<Geometry>> {
    let file = fs::File::open(&f.path)?;
    let mut head = Vec::with_capacity(page::LONG_HEADER);
    let r = match f.compression {
        Compression::None => file.take(40).read_to_end(&mut head),
        Compression::Gzip => flate2::read::GzDecoder::new(file)
            .take(40)
            .read_to_end(&mut head),
        Compression::Zstd => {
            zstd::stream::read::Decoder::new(file).and_then(|d| d.take(40).read_to_end(&mut head))
        }
        Compression::Lz4 => lz4_flex::frame::FrameDecoder::new(file)
            .take(40)
            .read_to_end(&mut head),
    };
    if let Err(e) = r {
        if f.compression == Compression::None {
            return Err(e);
        }
        return Ok(None);
    }
    Ok(page::read(&head).and_then(|h| {
        let l = h.long?;
        (SegSize::new(l.seg_size).is_some()
            && l.blcksz.is_power_of_two()
            && (1024..=65536).contains(&l.blcksz))
        .then_some(Geometry {
            magic: h.magic,
            sysid: l.sysid,
            seg_size: l.seg_size,
            blcksz: l.blcksz,
        })
    }))
}

pub(super) struct SegOutcome {
    /// LSN of the first damage.
    pub damage: Option<u64>,
    pub xact_ends: Vec<XactEnd>,
}

/// Report at most this many bad page headers per segment (then how many more).
const HEADER_FINDINGS_PER_SEGMENT: usize = 3;

pub(super) fn check_segment(
    bytes: &[u8],
    f: &SegFile,
    seg_lsn: u64,
    g: &Geometry,
    walker: &mut Walker,
    findings: &mut Vec<Finding>,
) -> SegOutcome {
    let mut out = SegOutcome {
        damage: None,
        xact_ends: Vec::new(),
    };
    let compressed = f.compression != Compression::None;
    let where_ = if compressed {
        " (offset in the decompressed segment)"
    } else {
        ""
    };
    if bytes.len() as u64 != u64::from(g.seg_size) {
        let shown = if bytes.len() as u64 > u64::from(g.seg_size) {
            "more than".to_string()
        } else {
            bytes.len().to_string()
        };
        findings.push(
            Finding::new(
                Kind::WalBadSize,
                &f.path,
                format!(
                    "{shown} bytes, the archive's segments have {}{where_}",
                    g.seg_size
                ),
            )
            .at(bytes.len().min(g.seg_size as usize) as u64),
        );
        out.damage = Some(seg_lsn + bytes.len().min(g.seg_size as usize) as u64);
    }
    let mut switched = false;
    let mut bad_headers = 0usize;
    let blck = g.blcksz as usize;
    for (k, pg) in bytes
        .chunks(blck)
        .take(g.seg_size as usize / blck)
        .enumerate()
    {
        if switched {
            break;
        }
        if pg.len() < blck {
            break;
        }
        let off = (k * blck) as u64;
        let lsn = seg_lsn + off;
        let mut problems = match page::read(pg) {
            Some(h) if h.magic == 0 && pg.iter().all(|b| *b == 0) => vec![page::HeaderProblem {
                offset: off,
                message: "a page of zeros where records should continue (no XLOG_SWITCH before it)"
                    .into(),
                sysid: false,
            }],
            Some(h) => {
                let p = page::check(&h, off, lsn, k == 0, f.tli, g);
                if p.is_empty() {
                    let ev = walker.page(pg, &h, lsn);
                    out.xact_ends.extend(ev.xact_ends);
                    if let Some((at, why)) = ev.bad {
                        let mut fd = Finding::new(
                            Kind::WalBadRecord,
                            &f.path,
                            format!("record at {}: {why}{where_}", Lsn(at)),
                        );
                        if at >= seg_lsn {
                            fd = fd.at(at - seg_lsn);
                        }
                        findings.push(fd);
                        out.damage.get_or_insert(at);
                        walker.reset();
                    }
                    switched = ev.switched;
                }
                p
            }
            None => Vec::new(),
        };
        if problems.is_empty() {
            continue;
        }
        walker.reset();
        out.damage.get_or_insert(lsn);
        for p in problems.drain(..) {
            bad_headers += 1;
            if bad_headers <= HEADER_FINDINGS_PER_SEGMENT {
                let kind = if p.sysid {
                    Kind::WalSysidMismatch
                } else {
                    Kind::WalBadPageHeader
                };
                findings.push(
                    Finding::new(
                        kind,
                        &f.path,
                        format!("page at {}: {}{where_}", Lsn(lsn), p.message),
                    )
                    .at(p.offset),
                );
            }
        }
    }
    if bad_headers > HEADER_FINDINGS_PER_SEGMENT {
        findings.push(Finding::new(
            Kind::WalBadPageHeader,
            &f.path,
            format!(
                "{} more page header problems in this segment",
                bad_headers - HEADER_FINDINGS_PER_SEGMENT
            ),
        ));
    }
    out
}
