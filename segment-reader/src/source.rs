//! The one place files become bytes.
//!
//! Closed segments are memory-mapped read-only: verification then reads the page cache directly,
//! with no copy and no memory that grows with the segment. The active segment of a live broker is
//! different: the broker may truncate it while we read (recovery, or an index trimmed on roll), and
//! touching a mapped page past the new end of file raises SIGBUS, which would kill the process. So
//! files that may shrink are read with `pread` into a bounded window instead; a short read simply
//! looks like the end of the file.

use std::borrow::Cow;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use memmap2::Mmap;

/// Window size for streamed reads. Larger batches get a window of their own size.
pub const STREAM_WINDOW: usize = 8 << 20;

/// How a file's bytes are reached.
pub enum Source<'a> {
    /// Mapped read-only (or empty: a zero-length file cannot be mapped).
    Mapped(Option<Mmap>),
    /// Read on demand with positioned reads (files that may be truncated under us).
    Streamed {
        file: File,
        len: u64,
        buf: Vec<u8>,
        buf_pos: u64,
    },
    /// Bytes already in memory (tests, fuzzing, small files).
    Memory(Vec<u8>),
    /// A view of bytes mapped elsewhere (parallel chunks of one mapping).
    Borrowed(&'a [u8]),
}

impl<'a> Source<'a> {
    /// Maps `path` read-only. The file is never opened for writing.
    pub fn map(path: &Path) -> io::Result<Source<'static>> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        if len == 0 {
            return Ok(Source::Mapped(None));
        }
        // SAFETY: the mapping is read-only and we never create a `&mut` to it. The remaining
        // hazard of any file mapping is another process truncating the file while it is mapped
        // (SIGBUS on access); callers map only files that Kafka no longer writes (closed segments,
        // snapshots, checkpoints) and use `Source::stream` for the active segment.
        let map = unsafe { Mmap::map(&file)? };
        #[cfg(unix)]
        let _ = map.advise(memmap2::Advice::Sequential);
        Ok(Source::Mapped(Some(map)))
    }

    /// Opens `path` for windowed positioned reads, safe against concurrent truncation.
    pub fn stream(path: &Path) -> io::Result<Source<'static>> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        Ok(Source::Streamed {
            file,
            len,
            buf: Vec::new(),
            buf_pos: 0,
        })
    }

    pub fn len(&self) -> u64 {
        match self {
            Source::Mapped(m) => m.as_ref().map_or(0, |m| m.len() as u64),
            Source::Streamed { len, .. } => *len,
            Source::Memory(v) => v.len() as u64,
            Source::Borrowed(b) => b.len() as u64,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The whole file as one slice, when it is mapped or in memory.
    pub fn as_slice(&self) -> Option<&[u8]> {
        match self {
            Source::Mapped(Some(m)) => Some(&m[..]),
            Source::Mapped(None) => Some(&[]),
            Source::Streamed { .. } => None,
            Source::Memory(v) => Some(v),
            Source::Borrowed(b) => Some(b),
        }
    }

    /// Bytes from `pos`: at least `min_len` of them unless the file ends first, and for mapped
    /// files everything to the end. The returned slice is shorter than `min_len` only at the end
    /// of the file (or where a concurrent truncation made it end).
    pub fn window(&mut self, pos: u64, min_len: usize) -> io::Result<&[u8]> {
        match self {
            Source::Mapped(_) | Source::Memory(_) | Source::Borrowed(_) => {
                let all = self.as_slice().unwrap_or(&[]);
                Ok(all.get(pos as usize..).unwrap_or(&[]))
            }
            Source::Streamed {
                file,
                len,
                buf,
                buf_pos,
            } => {
                let want = min_len.max(STREAM_WINDOW);
                let avail = len.saturating_sub(pos).min(want as u64) as usize;
                // Reuse what is already buffered when it covers the request.
                let have_start = *buf_pos;
                let have_end = have_start + buf.len() as u64;
                if pos >= have_start && pos + (min_len.min(avail) as u64) <= have_end {
                    let from = (pos - have_start) as usize;
                    return Ok(buf.get(from..).unwrap_or(&[]));
                }
                buf.resize(avail, 0);
                let mut filled = 0;
                while filled < avail {
                    let Some(rest) = buf.get_mut(filled..) else {
                        break;
                    };
                    let n = file.read_at(rest, pos + filled as u64)?;
                    if n == 0 {
                        break; // truncated under us: the file now ends here
                    }
                    filled += n;
                }
                buf.truncate(filled);
                *buf_pos = pos;
                Ok(&buf[..])
            }
        }
    }

    /// Reads `len` bytes at `pos` (fewer at the end of the file), borrowing when mapped.
    pub fn read_at(&self, pos: u64, len: usize) -> io::Result<Cow<'_, [u8]>> {
        match self {
            Source::Streamed {
                file, len: flen, ..
            } => {
                let n = flen.saturating_sub(pos).min(len as u64) as usize;
                let mut v = vec![0; n];
                let mut filled = 0;
                while filled < n {
                    let Some(rest) = v.get_mut(filled..) else {
                        break;
                    };
                    let r = file.read_at(rest, pos + filled as u64)?;
                    if r == 0 {
                        break;
                    }
                    filled += r;
                }
                v.truncate(filled);
                Ok(Cow::Owned(v))
            }
            _ => {
                let all = self.as_slice().unwrap_or(&[]);
                let start = (pos as usize).min(all.len());
                let end = start.saturating_add(len).min(all.len());
                Ok(Cow::Borrowed(all.get(start..end).unwrap_or(&[])))
            }
        }
    }
}

/// Reads a whole small file (indexes of the active segment, checkpoints) into memory: a copy is
/// immune to truncation, and these files are bounded by Kafka's settings (10 MiB by default).
pub fn read_small(path: &Path) -> io::Result<Vec<u8>> {
    std::fs::read(path)
}
