//! WAL archive file names, and LSNs as PostgreSQL prints them.
//!
//! A segment is named `TTTTTTTTXXXXXXXXYYYYYYYY`: timeline, then the segment number split into
//! "log" (`segno / segments_per_xlogid`) and "seg" (`segno % segments_per_xlogid`), eight
//! upper-case hex digits each, where `segments_per_xlogid = 2^32 / wal_segment_size`. The split
//! depends on the segment size, so a name is only turned into a segment number once that size is
//! known (from a long page header, never assumed to be 16 MiB).

use std::fmt;

/// A WAL position (`XLogRecPtr`), printed `HI/LO` in hex as PostgreSQL does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lsn(pub u64);

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

impl Lsn {
    /// Parses `HI/LO` (hex, either case).
    pub fn parse(s: &str) -> Option<Lsn> {
        let (hi, lo) = s.trim().split_once('/')?;
        let hi = u32::from_str_radix(hi, 16).ok()?;
        let lo = u32::from_str_radix(lo, 16).ok()?;
        Some(Lsn((u64::from(hi) << 32) | u64::from(lo)))
    }
}

/// How an archived file is compressed (by its suffix).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
    Lz4,
}

impl Compression {
    pub fn suffix(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gzip => ".gz",
            Compression::Zstd => ".zst",
            Compression::Lz4 => ".lz4",
        }
    }
}

/// What a file in a WAL archive is, by its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchiveName {
    /// A whole segment: timeline, log and seg as written in the name.
    Segment {
        tli: u32,
        log: u32,
        seg: u32,
        compression: Compression,
    },
    /// `TTTTTTTT.history`: the timeline's ancestry.
    History { tli: u32 },
    /// `<segment>.partial`: the last, unfinished segment of a timeline that was left at promotion.
    /// Recovery never reads it.
    Partial { tli: u32 },
    /// `<segment>.XXXXXXXX.backup`: a backup history file (start and stop of a base backup).
    BackupHistory,
}

fn hex8(s: &str) -> Option<u32> {
    (s.len() == 8 && s.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| u32::from_str_radix(s, 16).ok())
        .flatten()
}

fn segment_parts(s: &str) -> Option<(u32, u32, u32)> {
    if s.len() != 24 || !s.is_ascii() {
        return None;
    }
    Some((
        hex8(s.get(0..8)?)?,
        hex8(s.get(8..16)?)?,
        hex8(s.get(16..24)?)?,
    ))
}

/// Classifies a file name; `None` for anything PostgreSQL would not put in an archive.
pub fn parse(name: &str) -> Option<ArchiveName> {
    for c in [
        Compression::None,
        Compression::Gzip,
        Compression::Zstd,
        Compression::Lz4,
    ] {
        let stem = if c == Compression::None {
            Some(name)
        } else {
            name.strip_suffix(c.suffix())
        };
        if let Some((tli, log, seg)) = stem.and_then(segment_parts) {
            return Some(ArchiveName::Segment {
                tli,
                log,
                seg,
                compression: c,
            });
        }
    }
    let base = [".gz", ".zst", ".lz4"]
        .iter()
        .find_map(|s| name.strip_suffix(s))
        .unwrap_or(name);
    if let Some(t) = base.strip_suffix(".history") {
        return hex8(t).map(|tli| ArchiveName::History { tli });
    }
    if let Some(s) = base.strip_suffix(".partial") {
        return segment_parts(s).map(|(tli, _, _)| ArchiveName::Partial { tli });
    }
    if let Some(s) = base.strip_suffix(".backup") {
        let (seg, off) = s.split_once('.')?;
        segment_parts(seg)?;
        hex8(off)?;
        return Some(ArchiveName::BackupHistory);
    }
    None
}

/// Segment numbers and names for one segment size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegSize(u32);

impl SegSize {
    /// PostgreSQL allows powers of two from 1 MiB to 1 GiB.
    pub fn new(bytes: u32) -> Option<SegSize> {
        (bytes.is_power_of_two() && (1 << 20..=1 << 30).contains(&bytes)).then_some(SegSize(bytes))
    }
    pub fn bytes(self) -> u32 {
        self.0
    }
    fn per_xlogid(self) -> u64 {
        0x1_0000_0000 / u64::from(self.0)
    }
    /// The segment number a name's log/seg pair stands for; `None` when seg is out of range for
    /// this size (a name no server with this segment size writes).
    pub fn segno(self, log: u32, seg: u32) -> Option<u64> {
        (u64::from(seg) < self.per_xlogid())
            .then(|| u64::from(log) * self.per_xlogid() + u64::from(seg))
    }
    pub fn segno_of(self, lsn: Lsn) -> u64 {
        lsn.0 / u64::from(self.0)
    }
    pub fn start_of(self, segno: u64) -> Lsn {
        Lsn(segno.saturating_mul(u64::from(self.0)))
    }
    /// `TTTTTTTTXXXXXXXXYYYYYYYY` for a timeline and segment number.
    pub fn file_name(self, tli: u32, segno: u64) -> String {
        format!(
            "{:08X}{:08X}{:08X}",
            tli,
            segno / self.per_xlogid(),
            segno % self.per_xlogid()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_for_several_segment_sizes() {
        let s16 = SegSize::new(16 << 20).unwrap();
        assert_eq!(s16.file_name(1, 0x1FF), "0000000100000001000000FF");
        assert_eq!(s16.segno(1, 0xFF), Some(0x1FF));
        assert_eq!(s16.segno(1, 0x100), None);
        let s1g = SegSize::new(1 << 30).unwrap();
        assert_eq!(s1g.file_name(2, 9), "000000020000000200000001");
        assert!(SegSize::new(3 << 20).is_none());
        assert!(SegSize::new(1 << 19).is_none());
    }

    #[test]
    fn classifies_archive_files() {
        assert!(matches!(
            parse("000000010000000000000002.gz"),
            Some(ArchiveName::Segment {
                tli: 1,
                log: 0,
                seg: 2,
                compression: Compression::Gzip
            })
        ));
        assert_eq!(
            parse("00000002.history"),
            Some(ArchiveName::History { tli: 2 })
        );
        assert_eq!(
            parse("000000010000000000000005.partial"),
            Some(ArchiveName::Partial { tli: 1 })
        );
        assert_eq!(
            parse("000000010000000000000002.00000028.backup"),
            Some(ArchiveName::BackupHistory)
        );
        assert_eq!(parse("00000001000000000000000"), None);
        assert_eq!(parse("archive_status"), None);
        assert_eq!(Lsn::parse("0/2000028"), Some(Lsn(0x2000028)));
        assert_eq!(Lsn(0x1_0000_0028).to_string(), "1/28");
    }
}
