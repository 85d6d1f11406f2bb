//! WAL page headers, PostgreSQL 15 layout (`access/xlog_internal.h`), little-endian as written by
//! the x86-64 and ARM64 servers this is used with (WAL is in the server's native byte order).
//!
//! Every page (`XLOG_BLCKSZ`, 8192 by default) starts with a short header; the first page of a
//! segment has the long one:
//!
//! ```text
//!  offset  size  field            meaning
//!  0       2     xlp_magic        0xD110 for PostgreSQL 15 (changes with every WAL format change)
//!  2       2     xlp_info         flags: 0x1 FIRST_IS_CONTRECORD, 0x2 LONG_HEADER,
//!                                 0x4 BKP_REMOVABLE, 0x8 FIRST_IS_OVERWRITE_CONTRECORD
//!  4       4     xlp_tli          timeline the page was written on
//!  8       8     xlp_pageaddr     LSN of the page's first byte (must equal where the page sits)
//!  16      4     xlp_rem_len      bytes of a record continued from the previous page
//!  20      4     (padding)        -- short header ends at 24 (MAXALIGN)
//!  24      8     xlp_sysid        long header only: the cluster's system identifier
//!  32      4     xlp_seg_size     long header only: wal_segment_size in bytes
//!  36      4     xlp_xlog_blcksz  long header only: page size in bytes
//!                                 -- long header ends at 40
//! ```
//!
//! After an `XLOG_SWITCH` record the rest of the segment is zeros, headers included: such pages are
//! expected there and nowhere else.

/// `xlp_magic` of each PostgreSQL major version this reader was written against.
pub const MAGICS: &[(u16, u32)] = &[(0xD110, 15)];

pub const XLP_FIRST_IS_CONTRECORD: u16 = 0x0001;
pub const XLP_LONG_HEADER: u16 = 0x0002;
pub const XLP_FIRST_IS_OVERWRITE_CONTRECORD: u16 = 0x0008;
pub const XLP_ALL_FLAGS: u16 = 0x000F;
pub const SHORT_HEADER: usize = 24;
pub const LONG_HEADER: usize = 40;

/// A page header as read (fields the checks use).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageHeader {
    pub magic: u16,
    pub info: u16,
    pub tli: u32,
    pub pageaddr: u64,
    pub rem_len: u32,
    /// Long header fields, when `info` has `XLP_LONG_HEADER`.
    pub long: Option<LongHeader>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LongHeader {
    pub sysid: u64,
    pub seg_size: u32,
    pub blcksz: u32,
}

impl PageHeader {
    pub fn header_len(&self) -> usize {
        if self.long.is_some() {
            LONG_HEADER
        } else {
            SHORT_HEADER
        }
    }
}

pub fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
pub fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
pub fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Reads the header at the start of `page`; `None` when `page` is shorter than the header.
pub fn read(page: &[u8]) -> Option<PageHeader> {
    let info = u16_at(page, 2)?;
    let long = if info & XLP_LONG_HEADER != 0 {
        Some(LongHeader {
            sysid: u64_at(page, 24)?,
            seg_size: u32_at(page, 32)?,
            blcksz: u32_at(page, 36)?,
        })
    } else {
        None
    };
    Some(PageHeader {
        magic: u16_at(page, 0)?,
        info,
        tli: u32_at(page, 4)?,
        pageaddr: u64_at(page, 8)?,
        rem_len: u32_at(page, 16)?,
        long,
    })
}

/// The PostgreSQL major version a magic belongs to, when known.
pub fn version_of(magic: u16) -> Option<u32> {
    MAGICS.iter().find(|(m, _)| *m == magic).map(|(_, v)| *v)
}

/// What the archive's segments agree on, taken from the first readable long header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub magic: u16,
    pub sysid: u64,
    pub seg_size: u32,
    pub blcksz: u32,
}

/// One problem in a page header: byte offset of the field in the file, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderProblem {
    pub offset: u64,
    pub message: String,
    /// A different system identifier: another cluster's segment, not damage.
    pub sysid: bool,
}

/// Checks one page header against where the page sits (`lsn`, `first` page of its segment), the
/// segment file's timeline and the archive's geometry.
pub fn check(
    h: &PageHeader,
    page_offset: u64,
    lsn: u64,
    first: bool,
    file_tli: u32,
    g: &Geometry,
) -> Vec<HeaderProblem> {
    let mut v = Vec::new();
    let mut bad = |at: u64, message: String| {
        v.push(HeaderProblem {
            offset: page_offset + at,
            message,
            sysid: false,
        })
    };
    if h.magic != g.magic {
        let want = match version_of(g.magic) {
            Some(ver) => format!("0x{:04X}, PostgreSQL {ver}", g.magic),
            None => format!("0x{:04X}", g.magic),
        };
        bad(
            0,
            format!(
                "xlp_magic 0x{:04X}, the archive's segments have {want}",
                h.magic
            ),
        );
    }
    if h.info & !XLP_ALL_FLAGS != 0 {
        bad(
            2,
            format!("xlp_info 0x{:04X} has unknown flag bits", h.info),
        );
    }
    if first && h.long.is_none() {
        bad(
            2,
            "the segment's first page lacks the long header (XLP_LONG_HEADER)".into(),
        );
    }
    if !first && h.long.is_some() {
        bad(
            2,
            "a long header (XLP_LONG_HEADER) on a page that is not a segment's first".into(),
        );
    }
    if h.tli == 0 || h.tli > file_tli {
        bad(
            4,
            format!("xlp_tli {} in a segment file of timeline {file_tli}", h.tli),
        );
    }
    if h.pageaddr != lsn {
        bad(
            8,
            format!(
                "xlp_pageaddr {}, the page's own LSN is {}",
                super::name::Lsn(h.pageaddr),
                super::name::Lsn(lsn)
            ),
        );
    }
    let cont = h.info & XLP_FIRST_IS_CONTRECORD != 0;
    if cont != (h.rem_len != 0) {
        bad(
            16,
            format!(
                "xlp_rem_len {} with FIRST_IS_CONTRECORD {}",
                h.rem_len,
                if cont { "set" } else { "clear" }
            ),
        );
    }
    if let Some(l) = h.long {
        if l.seg_size != g.seg_size {
            bad(
                32,
                format!(
                    "xlp_seg_size {}, the archive's segments have {}",
                    l.seg_size, g.seg_size
                ),
            );
        }
        if l.blcksz != g.blcksz {
            bad(
                36,
                format!(
                    "xlp_xlog_blcksz {}, the archive's segments have {}",
                    l.blcksz, g.blcksz
                ),
            );
        }
        if l.sysid != g.sysid {
            v.push(HeaderProblem {
                offset: page_offset + 24,
                message: format!(
                    "system identifier {}, the archive's other segments have {}",
                    l.sysid, g.sysid
                ),
                sysid: true,
            });
        }
    }
    v
}
