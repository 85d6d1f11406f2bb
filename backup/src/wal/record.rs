//! WAL records, read across page and segment boundaries, for two facts: every record's CRC, and
//! the commit/abort times recovery compares with `recovery_target_time`.
//!
//! A record (`XLogRecord`, 24 bytes, starting MAXALIGNed) is:
//!
//! ```text
//!  0  4  xl_tot_len   whole record, header included
//!  4  4  xl_xid
//!  8  8  xl_prev
//!  16 1  xl_info      high 4 bits: the resource manager's record type
//!  17 1  xl_rmid      0 RM_XLOG (0x40 = XLOG_SWITCH), 1 RM_XACT
//!  18 2  (padding)
//!  20 4  xl_crc       CRC-32C of bytes 24..xl_tot_len, then of bytes 0..20
//! ```
//!
//! then block headers (ids 0..=32), optional origin (253) and top-level xid (252) headers, the main
//! data header (255: 1-byte length, 254: 4-byte length), block data, and the main data last. For
//! RM_XACT commit (0x00), abort (0x20), commit prepared (0x30) and abort prepared (0x40) the main
//! data starts with `xact_time`, microseconds since 2000-01-01 00:00 UTC. A record may continue on
//! the next pages (their `xlp_rem_len` says how much); only its first bytes' page is where it
//! starts.

use super::page::{
    u32_at, u64_at, PageHeader, XLP_FIRST_IS_CONTRECORD, XLP_FIRST_IS_OVERWRITE_CONTRECORD,
};

const RECORD_HEADER: usize = 24;
const RM_XLOG_ID: u8 = 0;
const RM_XACT_ID: u8 = 1;
const XLOG_SWITCH: u8 = 0x40;
/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01).
pub const PG_EPOCH_UNIX_MICROS: i64 = 946_684_800_000_000;
/// PostgreSQL refuses records above 1 GiB; anything larger is damage, not a record.
const MAX_RECORD: u32 = 1 << 30;

/// A commit or abort and when it happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XactEnd {
    /// LSN of the record's first byte.
    pub lsn: u64,
    /// LSN just past its last byte.
    pub end: u64,
    /// Unix microseconds.
    pub time: i64,
    pub commit: bool,
}

/// What one page told the walker.
#[derive(Debug, Default)]
pub struct PageEvents {
    pub xact_ends: Vec<XactEnd>,
    /// A record that fails: LSN of its start, and why.
    pub bad: Option<(u64, String)>,
    /// An XLOG_SWITCH ended on this page: the rest of the segment is padding.
    pub switched: bool,
}

struct Partial {
    lsn: u64,
    total: usize,
    buf: Vec<u8>,
}

/// Reads records page by page, in LSN order, carrying a record that runs over a page end.
#[derive(Default)]
pub struct Walker {
    partial: Option<Partial>,
}

fn align8(n: usize) -> usize {
    (n + 7) & !7
}

impl Walker {
    /// Forget any record in progress: the next page does not follow the last one (a gap).
    pub fn reset(&mut self) {
        self.partial = None;
    }

    /// Feeds one page (header already read and checked) at LSN `page_lsn`.
    pub fn page(&mut self, page: &[u8], h: &PageHeader, page_lsn: u64) -> PageEvents {
        let mut ev = PageEvents::default();
        let mut pos = h.header_len();
        let cont = h.info & XLP_FIRST_IS_CONTRECORD != 0;
        if h.info & XLP_FIRST_IS_OVERWRITE_CONTRECORD != 0 {
            // The server crashed inside the record in progress and wrote over its continuation
            // (PostgreSQL 15's OVERWRITE_CONTRECORD): that record was never whole; recovery
            // forgets it too.
            self.partial = None;
        }
        if let Some(mut p) = self.partial.take() {
            let need = p.total - p.buf.len();
            if !cont || h.rem_len as usize != need {
                ev.bad = Some((
                    p.lsn,
                    format!(
                        "record continues for {need} more bytes, but the page at {} has xlp_rem_len {}",
                        super::name::Lsn(page_lsn),
                        h.rem_len
                    ),
                ));
                return ev;
            }
            let n = need.min(page.len().saturating_sub(pos));
            p.buf
                .extend_from_slice(page.get(pos..pos + n).unwrap_or(&[]));
            pos += n;
            if p.buf.len() < p.total {
                self.partial = Some(p);
                return ev;
            }
            self.finish(&p.buf, p.lsn, page_lsn + pos as u64, &mut ev);
            if ev.bad.is_some() || ev.switched {
                return ev;
            }
            pos = align8(pos);
        } else if cont {
            // The walk starts here, mid-record: skip the continuation.
            pos = align8(pos + h.rem_len as usize);
        }
        while pos + 8 <= page.len() {
            let Some(tot) = u32_at(page, pos) else { break };
            if tot == 0 {
                break;
            }
            let lsn = page_lsn + pos as u64;
            if (tot as usize) < RECORD_HEADER || tot > MAX_RECORD {
                ev.bad = Some((lsn, format!("xl_tot_len {tot} is not a record length")));
                return ev;
            }
            let avail = page.len() - pos;
            if (tot as usize) <= avail {
                let rec = page.get(pos..pos + tot as usize).unwrap_or(&[]);
                self.finish(rec, lsn, lsn + u64::from(tot), &mut ev);
                if ev.bad.is_some() || ev.switched {
                    return ev;
                }
                pos = align8(pos + tot as usize);
            } else {
                let mut buf = Vec::with_capacity(avail.max(RECORD_HEADER));
                buf.extend_from_slice(page.get(pos..).unwrap_or(&[]));
                self.partial = Some(Partial {
                    lsn,
                    total: tot as usize,
                    buf,
                });
                break;
            }
        }
        ev
    }

    fn finish(&mut self, rec: &[u8], lsn: u64, end: u64, ev: &mut PageEvents) {
        let (Some(stored), Some(head), Some(body)) =
            (u32_at(rec, 20), rec.get(..20), rec.get(RECORD_HEADER..))
        else {
            ev.bad = Some((lsn, "record shorter than its header".into()));
            return;
        };
        let crc = crc32c::crc32c_append(crc32c::crc32c(body), head);
        if crc != stored {
            ev.bad = Some((
                lsn,
                format!("record CRC-32C 0x{crc:08X}, its header says 0x{stored:08X}"),
            ));
            return;
        }
        let info = rec.get(16).copied().unwrap_or(0);
        let rmid = rec.get(17).copied().unwrap_or(0);
        if rmid == RM_XLOG_ID && info & 0xF0 == XLOG_SWITCH {
            ev.switched = true;
        }
        if rmid == RM_XACT_ID {
            let op = info & 0x70;
            if matches!(op, 0x00 | 0x20 | 0x30 | 0x40) {
                match main_data(rec).and_then(|d| u64_at(d, 0)) {
                    Some(t) => ev.xact_ends.push(XactEnd {
                        lsn,
                        end,
                        time: (t as i64).saturating_add(PG_EPOCH_UNIX_MICROS),
                        commit: matches!(op, 0x00 | 0x30),
                    }),
                    None => {
                        ev.bad = Some((lsn, "transaction end record without its time".into()));
                    }
                }
            }
        }
    }
}

/// The main data of a record: its last bytes, as long as the main data header says.
fn main_data(rec: &[u8]) -> Option<&[u8]> {
    let mut at = RECORD_HEADER;
    let len = loop {
        let id = *rec.get(at)?;
        match id {
            255 => break usize::from(*rec.get(at + 1)?),
            254 => break u32_at(rec, at + 1)? as usize,
            253 => at += 3,
            252 => at += 5,
            0..=32 => {
                let fork_flags = *rec.get(at + 1)?;
                at += 4;
                if fork_flags & 0x10 != 0 {
                    // XLogRecordBlockImageHeader: length, hole_offset, bimg_info.
                    let bimg_info = *rec.get(at + 4)?;
                    at += 5;
                    // A hole in a compressed image (pglz 0x04, lz4 0x08, zstd 0x10) adds its
                    // length.
                    if bimg_info & 0x01 != 0 && bimg_info & 0x1C != 0 {
                        at += 2;
                    }
                }
                if fork_flags & 0x80 == 0 {
                    at += 12;
                }
                at += 4;
            }
            _ => return None,
        }
    };
    rec.get(rec.len().checked_sub(len)?..)
}
