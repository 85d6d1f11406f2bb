//! `drkit backup wal-verify`: is a WAL archive a whole point-in-time recovery chain?
//!
//! From the base backup's start (or the archive's oldest segment) to the `--until` target (or the
//! newest segment), every segment recovery will ask `restore_command` for must be in the archive,
//! on the timeline recovery will ask for, and readable to its end: page headers naming the page
//! they sit in (layout in [`page`]), records whose CRCs hold (see [`record`]), one system
//! identifier and one segment size throughout. The segment size comes from the segments' own long
//! page headers. The archive is only read. Recovery reads segments in order and stops at the first
//! one that is missing or damaged; the report says where that is.
//!
//! Timelines: recovery with `recovery_target_timeline = 'latest'` follows the highest timeline
//! that has a history file; for segment `s`, it asks for the newest timeline in that history whose
//! switch point lies in or before `s` (the segment holding a switch point is read from the new
//! timeline). Segments on other timelines are reported and not used.

pub mod name;
pub mod page;
pub mod record;
mod segment;
pub mod start;

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::finding::{Finding, Kind};
use name::{ArchiveName, Lsn, SegSize};
use page::Geometry;
use record::{Walker, XactEnd};
use segment::{check_segment, first_page, read_segment, SegFile};
use start::{Ancestor, BackupStart};

/// What to check.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The base backup recovery starts from; `None`: the oldest segment on the chain.
    pub backup: Option<BackupStart>,
    /// `recovery_target_time` as Unix microseconds: the chain must reach the first commit or
    /// abort after it (recovery stops there).
    pub until: Option<i64>,
}

/// Where the required range ends, and why there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndSource {
    /// The segment where the first transaction end after `--until` ends.
    Until,
    /// The newest segment on the chain.
    Newest,
}

/// The verdict on the chain as a whole.
#[derive(Debug, Clone)]
pub struct Chain {
    pub start: Lsn,
    pub start_segment: String,
    /// `backup_manifest` / `backup_label` path, or `None`: the oldest segment was assumed.
    pub start_source: Option<String>,
    pub timeline: u32,
    /// The timelines recovery follows, oldest first.
    pub timelines: Vec<u32>,
    pub segment_size: u32,
    pub end_segment: Option<String>,
    pub end_source: EndSource,
    /// The backup's consistency point, when the backup said.
    pub backup_end: Option<Lsn>,
    pub expected: u64,
    pub present: u64,
    pub missing: u64,
    pub damaged: u64,
    pub off_timeline: u64,
    /// The first missing or damaged place in the range: file name and LSN.
    pub stops_at: Option<(String, Lsn)>,
    /// With `--until`: the transaction end recovery stops at.
    pub target_record: Option<XactEnd>,
    /// With `--until`: the newest transaction end seen before the target time.
    pub last_before: Option<XactEnd>,
}

impl Chain {
    /// Recovery replays the whole range (and reaches the target, with `--until`).
    pub fn whole(&self) -> bool {
        self.stops_at.is_none() && self.end_segment.is_some()
    }
    /// Recovery reaches the backup's consistency point.
    pub fn consistent(&self) -> bool {
        match (self.backup_end, &self.stops_at) {
            (Some(end), Some((_, at))) => end <= *at,
            (_, _) => true,
        }
    }
}

/// A file that could not be read (exit 2, unlike damage).
#[derive(Debug, Clone)]
pub struct IoProblem {
    pub path: PathBuf,
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub findings: Vec<Finding>,
    pub io_problems: Vec<IoProblem>,
    /// `None` when there is nothing to build a chain from (no segments at all).
    pub chain: Option<Chain>,
}

/// The timeline recovery asks for at segment `segno`: the first ancestor whose switch point lies
/// beyond the segment, else the target.
fn expected_tli(history: &[Ancestor], target: u32, size: SegSize, segno: u64) -> u32 {
    history
        .iter()
        .find(|a| segno < size.segno_of(a.switch))
        .map_or(target, |a| a.tli)
}

/// Checks the archive in `dir`. Never writes to it.
pub fn verify_archive(dir: &Path, opts: &Options) -> io::Result<Report> {
    let mut findings = Vec::new();
    let mut io_problems = Vec::new();
    let mut segs: Vec<SegFile> = Vec::new();
    let mut histories: BTreeMap<u32, PathBuf> = BTreeMap::new();
    for e in fs::read_dir(dir)? {
        let e = e?;
        let Some(n) = e.file_name().to_str().map(str::to_string) else {
            continue;
        };
        match name::parse(&n) {
            Some(ArchiveName::Segment {
                tli,
                log,
                seg,
                compression,
            }) => segs.push(SegFile {
                path: e.path(),
                tli,
                log,
                seg,
                compression,
            }),
            Some(ArchiveName::History { tli }) => {
                histories.insert(tli, e.path());
            }
            Some(ArchiveName::Partial { tli }) => findings.push(Finding::new(
                Kind::WalPartial,
                e.path(),
                format!("the unfinished last segment of timeline {tli}, left at a promotion: recovery does not read it"),
            )),
            Some(ArchiveName::BackupHistory) | None => {}
        }
    }
    segs.sort_by_key(|s| (s.log, s.seg, s.tli, s.compression));

    // Geometry: what most segments' first pages say.
    let mut votes: HashMap<(u16, u64, u32, u32), usize> = HashMap::new();
    for s in &segs {
        match first_page(s) {
            Ok(Some(g)) => {
                *votes
                    .entry((g.magic, g.sysid, g.seg_size, g.blcksz))
                    .or_default() += 1
            }
            Ok(None) => {}
            Err(e) => io_problems.push(IoProblem {
                path: s.path.clone(),
                message: e.to_string(),
            }),
        }
    }
    let Some(((magic, sysid, seg_size, blcksz), _)) = votes
        .into_iter()
        .max_by_key(|(k, n)| (*n, std::cmp::Reverse(*k)))
    else {
        findings.push(Finding::new(
            Kind::WalNoSegments,
            dir,
            if segs.is_empty() {
                "no WAL segment files in the archive".to_string()
            } else {
                format!(
                    "none of the {} segment files has a readable first page header",
                    segs.len()
                )
            },
        ));
        return Ok(Report {
            findings,
            io_problems,
            chain: None,
        });
    };
    let g = Geometry {
        magic,
        sysid,
        seg_size,
        blcksz,
    };
    let Some(size) = SegSize::new(seg_size) else {
        return Ok(Report {
            findings,
            io_problems,
            chain: None,
        });
    };
    if page::version_of(magic).is_none() {
        findings.push(Finding::new(
            Kind::WalUnknownVersion,
            dir,
            format!("the segments' xlp_magic is 0x{magic:04X}; this reader knows PostgreSQL 15 (0xD110): record checks may misread"),
        ));
    }

    // Segment numbers, and names impossible for this segment size.
    let mut by_seg: BTreeMap<(u32, u64), SegFile> = BTreeMap::new();
    for s in segs {
        match size.segno(s.log, s.seg) {
            Some(n) => {
                // A plain file wins over a compressed copy of the same segment.
                by_seg.entry((s.tli, n)).or_insert(s);
            }
            None => findings.push(Finding::new(
                Kind::WalStrayFile,
                &s.path,
                format!("not a segment name a server with {seg_size}-byte segments writes"),
            )),
        }
    }

    // Timelines.
    let mut parsed: BTreeMap<u32, Vec<Ancestor>> = BTreeMap::new();
    for (tli, p) in &histories {
        let text = match fs::read(p) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) => {
                io_problems.push(IoProblem {
                    path: p.clone(),
                    message: e.to_string(),
                });
                continue;
            }
        };
        match start::parse_history(&text) {
            Ok(h) if h.last().is_some_and(|a| a.tli < *tli) => {
                parsed.insert(*tli, h);
            }
            Ok(_) => findings.push(Finding::new(
                Kind::WalBadHistory,
                p,
                format!("does not end with a parent timeline below {tli}"),
            )),
            Err(e) => findings.push(Finding::new(Kind::WalBadHistory, p, e)),
        }
    }
    let oldest = by_seg.keys().min_by_key(|(t, n)| (*n, *t)).copied();
    let target = match (parsed.keys().next_back(), &opts.backup, oldest) {
        (Some(t), _, _) => *t,
        (None, Some(b), _) => b.tli,
        (None, None, Some((t, _))) => t,
        (None, None, None) => 1,
    };
    let history: Vec<Ancestor> = parsed.get(&target).cloned().unwrap_or_default();
    let mut timelines: Vec<u32> = history.iter().map(|a| a.tli).collect();
    timelines.push(target);
    let exp = |segno: u64| expected_tli(&history, target, size, segno);

    let mut off_timeline = 0;
    for ((tli, segno), s) in &by_seg {
        let want = exp(*segno);
        if *tli == want {
            continue;
        }
        off_timeline += 1;
        let why = if !timelines.contains(tli) {
            format!(
                "timeline {tli} is not in the history recovery follows ({}): not used",
                chain_text(&timelines)
            )
        } else {
            format!(
                "recovery reads segment {} from timeline {want} (switch points in {target:08X}.history): not used",
                size.file_name(want, *segno)
            )
        };
        findings.push(Finding::new(Kind::WalOffTimeline, &s.path, why));
    }

    // The start.
    let (start, start_source) = match &opts.backup {
        Some(b) => {
            let ok = timelines.contains(&b.tli)
                && !history
                    .iter()
                    .any(|a| a.tli == b.tli && b.start >= a.switch);
            if !ok {
                findings.push(Finding::new(
                    Kind::WalBackupTimeline,
                    &b.source,
                    format!(
                        "the backup starts at {} on timeline {}, which is not on the history recovery follows ({})",
                        b.start,
                        b.tli,
                        chain_text(&timelines)
                    ),
                ));
            }
            (b.start, Some(b.source.clone()))
        }
        None => {
            let first = by_seg
                .keys()
                .filter(|(t, n)| *t == exp(*n))
                .map(|(_, n)| *n)
                .min();
            match first {
                Some(n) => (size.start_of(n), None),
                None => {
                    findings.push(Finding::new(
                        Kind::WalNoSegments,
                        dir,
                        format!(
                            "no segment on the timelines recovery follows ({})",
                            chain_text(&timelines)
                        ),
                    ));
                    return Ok(Report {
                        findings,
                        io_problems,
                        chain: None,
                    });
                }
            }
        }
    };
    let start_seg = size.segno_of(start);
    let newest = by_seg
        .keys()
        .filter(|(t, n)| *t == exp(*n) && *n >= start_seg)
        .map(|(_, n)| *n)
        .max();
    let backup_end = opts.backup.as_ref().and_then(|b| b.end);
    let last = match (newest, backup_end) {
        (Some(n), Some(e)) => Some(n.max(size.segno_of(Lsn(e.0.saturating_sub(1))))),
        (n, e) => n.or(e.map(|e| size.segno_of(Lsn(e.0.saturating_sub(1))))),
    };

    let mut chain = Chain {
        start,
        start_segment: size.file_name(exp(start_seg), start_seg),
        start_source,
        timeline: target,
        timelines,
        segment_size: seg_size,
        end_segment: None,
        end_source: if opts.until.is_some() {
            EndSource::Until
        } else {
            EndSource::Newest
        },
        backup_end,
        expected: 0,
        present: 0,
        missing: 0,
        damaged: 0,
        off_timeline,
        stops_at: None,
        target_record: None,
        last_before: None,
    };
    let Some(last) = last else {
        let n = size.file_name(exp(start_seg), start_seg);
        findings.push(Finding::new(
            Kind::WalMissing,
            dir.join(&n),
            format!("no segment from {n} on: the archive ends before the backup's start"),
        ));
        chain.stops_at = Some((n, start));
        return Ok(Report {
            findings,
            io_problems,
            chain: Some(chain),
        });
    };

    let mut walker = Walker::default();
    // Gaps are counted, not walked: a stray name far ahead must not make this loop for ages.
    let gap = |a: u64, b: u64, chain: &mut Chain, findings: &mut Vec<Finding>| {
        let (fa, fb) = (size.file_name(exp(a), a), size.file_name(exp(b), b));
        let msg = if a == b {
            format!("segment {fa} is not in the archive")
        } else {
            format!("{} segments {fa} .. {fb} are not in the archive", b - a + 1)
        };
        findings.push(Finding::new(Kind::WalMissing, dir.join(&fa), msg).entry(Some(fb)));
        chain.missing += b - a + 1;
        chain.stops_at.get_or_insert((fa, size.start_of(a)));
    };
    let mut on_chain: Vec<(u64, &SegFile)> = by_seg
        .iter()
        .filter(|((t, n), _)| *t == exp(*n) && (start_seg..=last).contains(n))
        .map(|((_, n), f)| (*n, f))
        .collect();
    on_chain.sort_by_key(|(n, _)| *n);
    let mut next = start_seg;
    let mut end = None;
    for (segno, f) in on_chain {
        if segno > next {
            gap(next, segno - 1, &mut chain, &mut findings);
            walker.reset();
        }
        next = segno + 1;
        let tli = f.tli;
        chain.present += 1;
        let bytes = match read_segment(f, u64::from(seg_size)) {
            Ok(Ok(b)) => b,
            Ok(Err(why)) => {
                findings.push(Finding::new(Kind::WalUnreadable, &f.path, why));
                chain.damaged += 1;
                chain
                    .stops_at
                    .get_or_insert((size.file_name(tli, segno), size.start_of(segno)));
                walker.reset();
                continue;
            }
            Err(e) => {
                io_problems.push(IoProblem {
                    path: f.path.clone(),
                    message: e.to_string(),
                });
                walker.reset();
                continue;
            }
        };
        let out = check_segment(
            &bytes,
            f,
            size.start_of(segno).0,
            &g,
            &mut walker,
            &mut findings,
        );
        if let Some(at) = out.damage {
            chain.damaged += 1;
            chain
                .stops_at
                .get_or_insert((size.file_name(tli, segno), Lsn(at)));
        }
        if let Some(until) = opts.until {
            for x in out.xact_ends.iter().filter(|x| x.lsn >= start.0) {
                if x.time > until {
                    chain.target_record = Some(*x);
                    break;
                }
                chain.last_before = Some(*x);
            }
            if chain.target_record.is_some() {
                end = Some(segno);
                break;
            }
        }
    }
    if end.is_none() && next <= last {
        gap(next, last, &mut chain, &mut findings);
    }
    chain.expected = end.unwrap_or(last) - start_seg + 1;
    if opts.until.is_none() {
        end = Some(last);
    }
    // The backup's consistency point bounds the range from below.
    if let (Some(e), Some(be)) = (end, backup_end) {
        end = Some(e.max(size.segno_of(Lsn(be.0.saturating_sub(1)))));
    }
    chain.end_segment = end.map(|e| size.file_name(exp(e), e));
    if let (Some(x), Some(be)) = (chain.target_record, backup_end) {
        if x.lsn < be.0 {
            findings.push(
                Finding::new(
                    Kind::WalTargetBeforeConsistent,
                    dir.join(size.file_name(exp(size.segno_of(Lsn(x.lsn))), size.segno_of(Lsn(x.lsn)))),
                    format!(
                        "the first transaction end after the target is at {}, before the backup's end {be}: the target time is earlier than the backup can restore",
                        Lsn(x.lsn)
                    ),
                )
                .at(x.lsn % u64::from(seg_size)),
            );
        }
    }
    if opts.until.is_some() && chain.target_record.is_none() {
        let newest = size.file_name(exp(last), last);
        findings.push(Finding::new(
            Kind::WalTargetNotReached,
            dir.join(&newest),
            format!(
                "no commit or abort after the target time up to {newest}{}: PostgreSQL 13+ ends such a recovery with FATAL \"recovery ended before configured recovery target was reached\"",
                match chain.last_before {
                    Some(x) => format!(" (the last one, at {}, is before it)", Lsn(x.lsn)),
                    None => String::new(),
                }
            ),
        ));
    }
    Ok(Report {
        findings,
        io_problems,
        chain: Some(chain),
    })
}

fn chain_text(t: &[u32]) -> String {
    t.iter()
        .map(|t| t.to_string())
        .collect::<Vec<_>>()
        .join(" -> ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEG: u32 = 1 << 20;

    /// A 1 MiB segment of pages with valid headers and no records.
    fn segment(tli: u32, segno: u64, sysid: u64) -> Vec<u8> {
        let mut b = vec![0u8; SEG as usize];
        for (k, pg) in b.chunks_mut(8192).enumerate() {
            let first = k == 0;
            pg[0..2].copy_from_slice(&0xD110u16.to_le_bytes());
            pg[2..4].copy_from_slice(&(if first { 2u16 } else { 0 }).to_le_bytes());
            pg[4..8].copy_from_slice(&tli.to_le_bytes());
            let lsn = segno * u64::from(SEG) + (k * 8192) as u64;
            pg[8..16].copy_from_slice(&lsn.to_le_bytes());
            if first {
                pg[24..32].copy_from_slice(&sysid.to_le_bytes());
                pg[32..36].copy_from_slice(&SEG.to_le_bytes());
                pg[36..40].copy_from_slice(&8192u32.to_le_bytes());
            }
        }
        b
    }

    fn put(dir: &Path, tli: u32, segno: u64, bytes: &[u8]) -> PathBuf {
        let p = dir.join(SegSize::new(SEG).unwrap().file_name(tli, segno));
        fs::write(&p, bytes).unwrap();
        p
    }

    /// A commit record (no block references, 8 bytes of main data: its time) with a valid CRC.
    fn commit(time_pg_micros: i64) -> Vec<u8> {
        let mut r = vec![0u8; 24];
        r.extend_from_slice(&[255, 8]);
        r.extend_from_slice(&time_pg_micros.to_le_bytes());
        let tot = r.len() as u32;
        r[0..4].copy_from_slice(&tot.to_le_bytes());
        r[17] = 1; // RM_XACT_ID, xl_info 0x00: commit
        let crc = crc32c::crc32c_append(crc32c::crc32c(&r[24..]), &r[..20]);
        r[20..24].copy_from_slice(&crc.to_le_bytes());
        r
    }

    #[test]
    fn commit_times_find_the_target_and_a_target_inside_the_backup_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let mut s1 = segment(1, 1, 7);
        // Two commits on the first page (after the 40-byte long header), 8-byte aligned, at
        // PostgreSQL times 1000 and 5000 µs.
        let (a, b) = (commit(1000), commit(5000));
        s1[40..40 + a.len()].copy_from_slice(&a);
        let at = 40 + ((a.len() + 7) & !7);
        s1[at..at + b.len()].copy_from_slice(&b);
        put(d.path(), 1, 1, &s1);
        put(d.path(), 1, 2, &segment(1, 2, 7));
        let unix = |pg: i64| pg + record::PG_EPOCH_UNIX_MICROS;
        let until = |t: i64, end: Option<u64>| {
            let backup = end.map(|e| BackupStart {
                start: Lsn(u64::from(SEG)),
                tli: 1,
                end: Some(Lsn(e)),
                source: "label".into(),
            });
            verify_archive(
                d.path(),
                &Options {
                    backup,
                    until: Some(unix(t)),
                },
            )
            .unwrap()
        };
        let r = until(2000, None);
        let c = r.chain.unwrap();
        assert_eq!(c.target_record.unwrap().lsn, u64::from(SEG) + at as u64);
        assert_eq!(c.last_before.unwrap().time, unix(1000));
        assert_eq!(c.end_segment.as_deref(), Some("000000010000000000000001"));
        assert!(c.whole() && r.findings.is_empty(), "{:?}", r.findings);
        // Past both commits: not reached. Before both: the first one.
        let r = until(6000, None);
        assert_eq!(r.findings[0].kind, Kind::WalTargetNotReached);
        assert_eq!(
            until(10, None).chain.unwrap().target_record.unwrap().time,
            unix(1000)
        );
        // A backup that ends after the second commit cannot stop between them.
        let r = until(2000, Some(u64::from(SEG) + 8192));
        assert!(
            r.findings
                .iter()
                .any(|f| f.kind == Kind::WalTargetBeforeConsistent),
            "{:?}",
            r.findings
        );
        // A flipped byte in the second commit's time: its CRC fails, named at its offset.
        s1[at + 30] ^= 1;
        put(d.path(), 1, 1, &s1);
        let r = until(2000, None);
        let f = r
            .findings
            .iter()
            .find(|f| f.kind == Kind::WalBadRecord)
            .unwrap();
        assert_eq!(f.position, Some(at as u64));
    }

    #[test]
    fn synthetic_chain_gaps_far_names_other_clusters_and_garbage() {
        let d = tempfile::tempdir().unwrap();
        for n in 1..=3 {
            put(d.path(), 1, n, &segment(1, n, 7));
        }
        let r = verify_archive(d.path(), &Options::default()).unwrap();
        let c = r.chain.unwrap();
        assert!(c.whole(), "{:?}", r.findings);
        assert_eq!((c.expected, c.present, c.segment_size), (3, 3, SEG));

        // A segment name a million segments ahead: counted as one gap, not walked.
        put(d.path(), 1, 1 << 20, &segment(1, 1 << 20, 7));
        let r = verify_archive(d.path(), &Options::default()).unwrap();
        let c = r.chain.unwrap();
        assert_eq!(c.missing, (1 << 20) - 4);
        assert_eq!(c.stops_at.unwrap().0, "000000010000000000000004");
        fs::remove_file(d.path().join("000000010000010000000000")).unwrap();

        // Another cluster's segment, and one whose pages name other places.
        put(d.path(), 1, 4, &segment(1, 4, 8));
        put(d.path(), 1, 5, &segment(1, 9, 7));
        let r = verify_archive(d.path(), &Options::default()).unwrap();
        let kinds: Vec<&str> = r.findings.iter().map(|f| f.kind.as_str()).collect();
        assert!(kinds.contains(&"wal_sysid_mismatch"), "{kinds:?}");
        assert!(kinds.contains(&"wal_bad_page_header"), "{kinds:?}");
        assert_eq!(
            r.chain.unwrap().stops_at.unwrap().0,
            "000000010000000000000004"
        );

        // Garbage under segment names, short files, zero files: findings, never a panic.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for n in 6..12u64 {
            let len = [0usize, 17, 8192, 40_000, SEG as usize, SEG as usize + 3][(n - 6) as usize];
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            put(d.path(), 1, n, &bytes);
        }
        put(d.path(), 1, 12, &vec![0u8; SEG as usize]);
        let r = verify_archive(
            d.path(),
            &Options {
                backup: None,
                until: Some(0),
            },
        )
        .unwrap();
        assert!(!r.chain.unwrap().whole());
    }
}
