//! The one read of a file: a buffered reader that hashes every byte that passes and knows its
//! position, so format checkers and the SHA-256 check share a single pass.

use std::io::{self, BufRead, Read};

use sha2::{Digest, Sha256};

/// Reads from `inner`, feeding SHA-256 and counting bytes as they are consumed; `progress` hears
/// of each consumed run. Hashing happens in `consume`, so byte-at-a-time parsers through
/// [`BufRead`] still hash whole buffers' worth at once.
pub struct HashingReader<'p, R> {
    inner: io::BufReader<R>,
    /// `None` for a reader that only counts: the decompressed side of a compressed file, whose
    /// bytes no checksum covers.
    hasher: Option<Sha256>,
    position: u64,
    progress: &'p mut dyn FnMut(u64),
}

impl<'p, R: Read> HashingReader<'p, R> {
    pub fn new(inner: R, progress: &'p mut dyn FnMut(u64)) -> Self {
        HashingReader {
            inner: io::BufReader::with_capacity(1 << 20, inner),
            hasher: Some(Sha256::new()),
            position: 0,
            progress,
        }
    }

    /// A reader that counts positions but hashes nothing (see `hasher`).
    pub fn counting(inner: R, progress: &'p mut dyn FnMut(u64)) -> Self {
        HashingReader {
            hasher: None,
            ..HashingReader::new(inner, progress)
        }
    }

    /// Bytes consumed so far: the position of the next byte in the file.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Up to `n` bytes without consuming them (fewer at end of file).
    pub fn peek(&mut self, n: usize) -> io::Result<Vec<u8>> {
        let buf = self.inner.fill_buf()?;
        Ok(buf.get(..n.min(buf.len())).unwrap_or(&[]).to_vec())
    }

    /// Consumes up to `n` bytes without copying them; returns how many there were (fewer at EOF).
    pub fn skip(&mut self, mut n: u64) -> io::Result<u64> {
        let mut done = 0;
        while n > 0 {
            let avail = self.fill_buf()?.len();
            if avail == 0 {
                break;
            }
            let take = avail.min(usize::try_from(n).unwrap_or(usize::MAX));
            self.consume(take);
            n -= take as u64;
            done += take as u64;
        }
        Ok(done)
    }

    /// Reads the rest of the file through the hash; returns the SHA-256 and the file's length.
    pub fn finish(mut self) -> io::Result<([u8; 32], u64)> {
        self.skip(u64::MAX)?;
        let mut out = [0u8; 32];
        if let Some(h) = self.hasher {
            out.copy_from_slice(&h.finalize());
        }
        Ok((out, self.position))
    }
}

impl<R: Read> BufRead for HashingReader<'_, R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        let buf = self.inner.buffer();
        let amt = amt.min(buf.len());
        if let Some(h) = &mut self.hasher {
            h.update(buf.get(..amt).unwrap_or(&[]));
        }
        self.inner.consume(amt);
        self.position += amt as u64;
        (self.progress)(amt as u64);
    }
}

impl<R: Read> Read for HashingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(buf.len());
        if let (Some(dst), Some(src)) = (buf.get_mut(..n), avail.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.consume(n);
        Ok(n)
    }
}

/// Lower-case hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
