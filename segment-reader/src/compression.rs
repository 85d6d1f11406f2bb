//! Decompression of batch payloads (magic 2 records sections and legacy wrapper values).
//!
//! The caller owns the output buffer and passes the same one for every batch, so a scan of a log
//! reuses one allocation instead of growing a fresh vector per batch. Every codec stops at a size
//! cap: a few kilobytes of hostile input must not be able to claim gigabytes of memory.
//!
//! gzip members and LZ4 frames are parsed here rather than by the crates' stream readers, and the
//! inflate and zstd contexts live per thread: setting one up costs tens to hundreds of kilobytes,
//! which per batch would dominate a deep scan of small batches.
//!
//! Two codecs need more than a stock decoder:
//! - snappy: Java producers write xerial framing, librdkafka producers one raw block with no header;
//!   both are in real logs, so the header decides which one we read (as xerial's own stream does).
//! - lz4: frames are parsed here and only the blocks go to `lz4_flex::block`, because Kafka wrote a
//!   wrong frame-descriptor checksum for legacy (magic 0/1) data, which `lz4_flex`'s frame decoder
//!   rejects without an opt-out. Parsing the frame here also lets every length be checked against
//!   the input before anything is allocated.
//!
//! Deliberately strict where Kafka is lenient: bytes after the last gzip member or LZ4 frame are
//! an error (Java's readers ignore them, but no producer writes them, so they mean damage).

use crate::batch::Codec;

/// Default cap on decompressed bytes per batch. Kafka's own limits are far below this
/// (message.max.bytes defaults to 1 MiB compressed), so only hostile or corrupt input reaches it.
pub const MAX_DECOMPRESSED: usize = 1 << 30;

/// The 8-byte magic that opens a xerial snappy stream.
pub const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
const XERIAL_HEADER_LEN: usize = 16;

const LZ4_MAGIC: u32 = 0x184D_2204;
/// Upper bound on snappy's expansion (a 3-byte copy element yields at most 64 bytes).
const SNAPPY_MAX_RATIO: usize = 22;
/// Upper bound on an LZ4 block's expansion (each extra length byte adds at most 255).
const LZ4_MAX_RATIO: usize = 256;
/// LZ4 back-references reach at most this far, so a linked block needs no more history.
const LZ4_WINDOW: usize = 64 * 1024;

/// What went wrong inside an LZ4 frame.
#[derive(Debug, thiserror::Error)]
pub enum Lz4Cause {
    #[error("bad frame magic {0:#010x}")]
    BadMagic(u32),
    #[error("input ends inside the frame")]
    Truncated,
    #[error("unsupported frame version bits {0:#04b}")]
    UnsupportedVersion(u8),
    #[error("reserved bits set in the frame descriptor")]
    ReservedBits,
    #[error("unsupported block size code {0}")]
    BlockSizeCode(u8),
    #[error("frame needs a dictionary")]
    Dictionary,
    #[error("frame descriptor checksum {stored:#04x}, computed {computed:#04x}")]
    HeaderChecksum { stored: u8, computed: u8 },
    #[error("block of {size} bytes exceeds the frame's maximum {max}")]
    BlockTooBig { size: usize, max: usize },
    #[error("block checksum {stored:#010x}, computed {computed:#010x}")]
    BlockChecksum { stored: u32, computed: u32 },
    #[error("block does not decode: {0}")]
    Block(lz4_flex::block::DecompressError),
    #[error("{0} bytes after the end of the frame")]
    TrailingBytes(usize),
}

/// What went wrong inside a gzip member.
#[derive(Debug, thiserror::Error)]
pub enum GzipCause {
    #[error("input ends inside the member header")]
    TruncatedHeader,
    #[error("bad magic {0:#06x}")]
    BadMagic(u16),
    #[error("compression method {0}, only 8 (deflate) exists")]
    BadMethod(u8),
    #[error("reserved header flags {0:#04x}")]
    ReservedFlags(u8),
    #[error("deflate data: {0}")]
    Inflate(flate2::DecompressError),
    #[error("input ends inside the deflate data or trailer")]
    Truncated,
    #[error("member CRC-32 {stored:#010x}, computed {computed:#010x}")]
    Crc { stored: u32, computed: u32 },
    #[error("member size field {stored}, decompressed {actual} (mod 2^32)")]
    Size { stored: u32, actual: u32 },
}

/// What went wrong inside a zstd stream.
#[derive(Debug, thiserror::Error)]
pub enum ZstdCause {
    /// zstd's own error name.
    #[error("{0}")]
    Stream(&'static str),
    #[error("input ends inside a frame")]
    Truncated,
}

/// Why a payload does not decompress. Each variant names its codec; positions are byte offsets
/// in the compressed input.
#[derive(Debug, thiserror::Error)]
pub enum DecompressError {
    #[error("codec {} cannot be decompressed (attribute value {})", codec.name(), codec_id(*codec))]
    UnsupportedCodec { codec: Codec },
    #[error("zstd is not allowed in magic 0/1 messages")]
    ZstdInLegacy,
    #[error("{} output exceeds the {limit}-byte cap", codec.name())]
    TooLarge { codec: Codec, limit: usize },
    #[error("gzip at byte {position}: {cause}")]
    Gzip {
        position: usize,
        #[source]
        cause: GzipCause,
    },
    #[error("snappy: {0}")]
    Snappy(#[source] snap::Error),
    #[error("xerial snappy: input ends inside the 16-byte stream header")]
    XerialHeader,
    #[error("xerial snappy: chunk length {length} at byte {position} with {remaining} bytes left")]
    XerialChunkLength {
        position: usize,
        length: i64,
        remaining: usize,
    },
    #[error("xerial snappy: chunk at byte {position}: {source}")]
    XerialChunk {
        position: usize,
        #[source]
        source: snap::Error,
    },
    #[error("lz4 at byte {position}: {cause}")]
    Lz4 {
        position: usize,
        #[source]
        cause: Lz4Cause,
    },
    #[error("zstd at byte {position}: {cause}")]
    Zstd {
        position: usize,
        #[source]
        cause: ZstdCause,
    },
}

impl DecompressError {
    pub fn codec(&self) -> Codec {
        match self {
            DecompressError::UnsupportedCodec { codec }
            | DecompressError::TooLarge { codec, .. } => *codec,
            DecompressError::ZstdInLegacy | DecompressError::Zstd { .. } => Codec::Zstd,
            DecompressError::Gzip { .. } => Codec::Gzip,
            DecompressError::Snappy(_)
            | DecompressError::XerialHeader
            | DecompressError::XerialChunkLength { .. }
            | DecompressError::XerialChunk { .. } => Codec::Snappy,
            DecompressError::Lz4 { .. } => Codec::Lz4,
        }
    }
}

fn codec_id(codec: Codec) -> u8 {
    match codec {
        Codec::None => 0,
        Codec::Gzip => 1,
        Codec::Snappy => 2,
        Codec::Lz4 => 3,
        Codec::Zstd => 4,
        Codec::Unknown(n) => n,
    }
}

/// Decompresses `input` into `out` (cleared first) with the default [`MAX_DECOMPRESSED`] cap.
/// `legacy` is true for magic 0/1 wrapper values, whose lz4 header checksum Kafka got wrong.
/// `Codec::None` copies the input.
pub fn decompress(
    codec: Codec,
    input: &[u8],
    out: &mut Vec<u8>,
    legacy: bool,
) -> Result<(), DecompressError> {
    decompress_with_limit(codec, input, out, legacy, MAX_DECOMPRESSED)
}

/// [`decompress`] with an explicit cap on the output size.
pub fn decompress_with_limit(
    codec: Codec,
    input: &[u8],
    out: &mut Vec<u8>,
    legacy: bool,
    limit: usize,
) -> Result<(), DecompressError> {
    out.clear();
    match codec {
        Codec::None => {
            if input.len() > limit {
                return Err(DecompressError::TooLarge { codec, limit });
            }
            out.extend_from_slice(input);
            Ok(())
        }
        Codec::Gzip => with_state(|st| gzip(input, out, limit, &mut st.inflate)),
        Codec::Snappy => snappy(input, out, limit),
        Codec::Lz4 => lz4(input, out, legacy, limit),
        Codec::Zstd => {
            if legacy {
                return Err(DecompressError::ZstdInLegacy);
            }
            with_state(|st| zstd(input, out, limit, &mut st.zstd))
        }
        Codec::Unknown(_) => Err(DecompressError::UnsupportedCodec { codec }),
    }
}

/// Decoder state kept per thread: inflate and zstd contexts are tens to hundreds of kilobytes to
/// set up, and a deep scan decodes one batch after another on the same (rayon) threads.
struct State {
    inflate: flate2::Decompress,
    zstd: Option<zstd::zstd_safe::DCtx<'static>>,
}

impl State {
    fn new() -> State {
        State {
            inflate: flate2::Decompress::new(false),
            zstd: None,
        }
    }
}

thread_local! {
    static STATE: std::cell::RefCell<State> = std::cell::RefCell::new(State::new());
}

fn with_state<T>(f: impl FnOnce(&mut State) -> T) -> T {
    STATE.with(|cell| match cell.try_borrow_mut() {
        Ok(mut st) => f(&mut st),
        // Only reachable through re-entrancy, which nothing here does; stay correct anyway.
        Err(_) => f(&mut State::new()),
    })
}

/// Makes sure `out` has room to write into, growing geometrically but never past `limit + 1`
/// bytes (one past the cap, so an oversized output is noticed rather than silently cut).
fn ensure_spare(out: &mut Vec<u8>, limit: usize, codec: Codec) -> Result<(), DecompressError> {
    const MIN_SPARE: usize = 16 * 1024;
    if out.capacity() - out.len() >= MIN_SPARE {
        return Ok(());
    }
    let ceiling = limit.saturating_add(1);
    if out.len() >= ceiling {
        return Err(DecompressError::TooLarge { codec, limit });
    }
    let want = out.len().max(64 * 1024).min(ceiling - out.len());
    // Exact, so the cap bounds the allocation too (`reserve` may double past it).
    out.reserve_exact(want);
    Ok(())
}

/// Decodes one or more gzip members (RFC 1952), checking each member's CRC-32 and size.
fn gzip(
    input: &[u8],
    out: &mut Vec<u8>,
    limit: usize,
    inflate: &mut flate2::Decompress,
) -> Result<(), DecompressError> {
    let err = |position: usize, cause: GzipCause| DecompressError::Gzip { position, cause };
    let mut at = 0;
    loop {
        let member = at;
        let header = input
            .get(at..at + 10)
            .ok_or(err(at, GzipCause::TruncatedHeader))?;
        let (magic, method, flags) = match header {
            [a, b, m, f, ..] => (u16::from_be_bytes([*a, *b]), *m, *f),
            _ => return Err(err(at, GzipCause::TruncatedHeader)),
        };
        if magic != 0x1F8B {
            return Err(err(at, GzipCause::BadMagic(magic)));
        }
        if method != 8 {
            return Err(err(at + 2, GzipCause::BadMethod(method)));
        }
        if flags & 0xE0 != 0 {
            return Err(err(at + 3, GzipCause::ReservedFlags(flags)));
        }
        at += 10;
        if flags & 0x04 != 0 {
            let xlen = crate::be::array::<2>(input, at)
                .map(u16::from_le_bytes)
                .ok_or(err(at, GzipCause::TruncatedHeader))?;
            if input.len() < at + 2 + xlen as usize {
                return Err(err(at, GzipCause::TruncatedHeader));
            }
            at += 2 + xlen as usize;
        }
        for flag in [0x08u8, 0x10] {
            if flags & flag != 0 {
                let rest = input.get(at..).ok_or(err(at, GzipCause::TruncatedHeader))?;
                let nul = rest
                    .iter()
                    .position(|&b| b == 0)
                    .ok_or(err(at, GzipCause::TruncatedHeader))?;
                at += nul + 1;
            }
        }
        if flags & 0x02 != 0 {
            at += 2;
        }
        if at > input.len() {
            return Err(err(member, GzipCause::TruncatedHeader));
        }
        inflate.reset(false);
        let out_start = out.len();
        loop {
            ensure_spare(out, limit, Codec::Gzip)?;
            let rest = input.get(at..).unwrap_or_default();
            let (in0, out0) = (inflate.total_in(), inflate.total_out());
            let status = inflate
                .decompress_vec(rest, out, flate2::FlushDecompress::None)
                .map_err(|e| err(at, GzipCause::Inflate(e)))?;
            let consumed = (inflate.total_in() - in0) as usize;
            let produced = inflate.total_out() - out0;
            at += consumed;
            if out.len() > limit {
                return Err(DecompressError::TooLarge {
                    codec: Codec::Gzip,
                    limit,
                });
            }
            if status == flate2::Status::StreamEnd {
                break;
            }
            // Room to write was guaranteed above, so no progress means the input ran out.
            if consumed == 0 && produced == 0 {
                return Err(err(at, GzipCause::Truncated));
            }
        }
        let stored_crc = le_u32(input, at).ok_or(err(at, GzipCause::Truncated))?;
        let stored_size = le_u32(input, at + 4).ok_or(err(at, GzipCause::Truncated))?;
        let member_out = out.get(out_start..).unwrap_or_default();
        let computed = crc32fast::hash(member_out);
        if computed != stored_crc {
            return Err(err(
                at,
                GzipCause::Crc {
                    stored: stored_crc,
                    computed,
                },
            ));
        }
        if stored_size != member_out.len() as u32 {
            return Err(err(
                at + 4,
                GzipCause::Size {
                    stored: stored_size,
                    actual: member_out.len() as u32,
                },
            ));
        }
        at += 8;
        if at >= input.len() {
            return Ok(());
        }
    }
}

/// Decodes one or more zstd frames with the thread's reusable context.
fn zstd(
    input: &[u8],
    out: &mut Vec<u8>,
    limit: usize,
    ctx: &mut Option<zstd::zstd_safe::DCtx<'static>>,
) -> Result<(), DecompressError> {
    use zstd::zstd_safe::{InBuffer, OutBuffer, ResetDirective};
    let err = |position: usize, cause: ZstdCause| DecompressError::Zstd { position, cause };
    let dctx = ctx.get_or_insert_with(zstd::zstd_safe::DCtx::create);
    // A previous batch may have failed mid-frame; start clean.
    dctx.reset(ResetDirective::SessionOnly)
        .map_err(|c| err(0, ZstdCause::Stream(zstd::zstd_safe::get_error_name(c))))?;
    let mut inbuf = InBuffer::around(input);
    let mut frame_done = false;
    while inbuf.pos() < input.len() || !frame_done {
        ensure_spare(out, limit, Codec::Zstd)?;
        let (in0, out0) = (inbuf.pos(), out.len());
        let len = out.len();
        let hint = {
            let mut outbuf = OutBuffer::around_pos(out, len);
            dctx.decompress_stream(&mut outbuf, &mut inbuf)
        }
        .map_err(|c| err(in0, ZstdCause::Stream(zstd::zstd_safe::get_error_name(c))))?;
        if out.len() > limit {
            return Err(DecompressError::TooLarge {
                codec: Codec::Zstd,
                limit,
            });
        }
        frame_done = hint == 0;
        if !frame_done && inbuf.pos() == in0 && out.len() == out0 {
            return Err(err(in0, ZstdCause::Truncated));
        }
    }
    Ok(())
}

fn snappy(input: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<(), DecompressError> {
    if !input.starts_with(&XERIAL_MAGIC) {
        return snappy_block(input, out, limit).map_err(DecompressError::Snappy);
    }
    if input.len() < XERIAL_HEADER_LEN {
        return Err(DecompressError::XerialHeader);
    }
    let mut at = XERIAL_HEADER_LEN;
    while at < input.len() {
        // xerial's reader accepts concatenated streams: a header where a chunk length would be.
        if input
            .get(at..)
            .is_some_and(|rest| rest.starts_with(&XERIAL_MAGIC))
        {
            if input.len() - at < XERIAL_HEADER_LEN {
                return Err(DecompressError::XerialHeader);
            }
            at += XERIAL_HEADER_LEN;
            continue;
        }
        let remaining = input.len() - at - 4.min(input.len() - at);
        let length = match crate::be::i32(input, at) {
            Some(n) => n,
            None => {
                return Err(DecompressError::XerialChunkLength {
                    position: at,
                    length: -1,
                    remaining: input.len() - at,
                })
            }
        };
        if length < 0 || length as usize > remaining {
            return Err(DecompressError::XerialChunkLength {
                position: at,
                length: length as i64,
                remaining,
            });
        }
        let start = at + 4;
        let end = start + length as usize;
        let chunk = input.get(start..end).unwrap_or_default();
        snappy_block(chunk, out, limit).map_err(|source| DecompressError::XerialChunk {
            position: at,
            source,
        })?;
        at = end;
    }
    Ok(())
}

/// Appends one raw snappy block to `out`.
fn snappy_block(block: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<(), snap::Error> {
    let len = snap::raw::decompress_len(block)?;
    let start = out.len();
    if start.saturating_add(len) > limit {
        return Err(snap::Error::TooBig {
            given: start.saturating_add(len) as u64,
            max: limit as u64,
        });
    }
    // The buffer is zero-filled to the declared length before decoding, so a five-byte block
    // claiming a gigabyte would cost a gigabyte of memset. No snappy element expands more than
    // 64 bytes from 3, so a declared length beyond that ratio is a lie the decoder would reject.
    let plausible = block
        .len()
        .saturating_mul(SNAPPY_MAX_RATIO)
        .saturating_add(16);
    if len > plausible {
        return Err(snap::Error::TooBig {
            given: len as u64,
            max: plausible as u64,
        });
    }
    out.resize(start + len, 0);
    let tail = out.get_mut(start..).unwrap_or_default();
    let n = snap::raw::Decoder::new().decompress(block, tail)?;
    out.truncate(start + n);
    Ok(())
}

fn lz4(input: &[u8], out: &mut Vec<u8>, legacy: bool, limit: usize) -> Result<(), DecompressError> {
    let mut at = 0;
    loop {
        at = lz4_frame(input, at, out, legacy, limit)?;
        let rest = input.get(at..).unwrap_or_default();
        if rest.is_empty() {
            return Ok(());
        }
        // Only another frame may follow a frame; anything else is damage.
        if crate::be::array::<4>(rest, 0).map(u32::from_le_bytes) != Some(LZ4_MAGIC) {
            return Err(DecompressError::Lz4 {
                position: at,
                cause: Lz4Cause::TrailingBytes(rest.len()),
            });
        }
    }
}

fn le_u32(buf: &[u8], at: usize) -> Option<u32> {
    crate::be::array::<4>(buf, at).map(u32::from_le_bytes)
}

/// Decodes one LZ4 frame starting at `start`, appending to `out`; returns the end of the frame.
fn lz4_frame(
    input: &[u8],
    start: usize,
    out: &mut Vec<u8>,
    legacy: bool,
    limit: usize,
) -> Result<usize, DecompressError> {
    let err = |position: usize, cause: Lz4Cause| DecompressError::Lz4 { position, cause };
    let magic = le_u32(input, start).ok_or(err(start, Lz4Cause::Truncated))?;
    if magic != LZ4_MAGIC {
        return Err(err(start, Lz4Cause::BadMagic(magic)));
    }
    let desc = start + 4;
    let flg = *input.get(desc).ok_or(err(desc, Lz4Cause::Truncated))?;
    let bd = *input
        .get(desc + 1)
        .ok_or(err(desc + 1, Lz4Cause::Truncated))?;
    if flg >> 6 != 0b01 {
        return Err(err(desc, Lz4Cause::UnsupportedVersion(flg >> 6)));
    }
    if flg & 0x02 != 0 || bd & 0x8F != 0 {
        return Err(err(desc, Lz4Cause::ReservedBits));
    }
    let independent = flg & 0x20 != 0;
    let block_checksums = flg & 0x10 != 0;
    let content_size = flg & 0x08 != 0;
    let content_checksum = flg & 0x04 != 0;
    if flg & 0x01 != 0 {
        return Err(err(desc, Lz4Cause::Dictionary));
    }
    let max_block = match (bd >> 4) & 0x07 {
        4 => 64 << 10,
        5 => 256 << 10,
        6 => 1 << 20,
        7 => 4 << 20,
        code => return Err(err(desc + 1, Lz4Cause::BlockSizeCode(code))),
    };
    let hc_at = desc + 2 + if content_size { 8 } else { 0 };
    let stored_hc = *input.get(hc_at).ok_or(err(hc_at, Lz4Cause::Truncated))?;
    // Kafka computed the checksum over the wrong bytes for magic 0/1 and ignores it there itself.
    if !legacy {
        let descriptor = input.get(desc..hc_at).unwrap_or_default();
        let computed = (xxh32(descriptor, 0) >> 8) as u8;
        if computed != stored_hc {
            return Err(err(
                hc_at,
                Lz4Cause::HeaderChecksum {
                    stored: stored_hc,
                    computed,
                },
            ));
        }
    }
    let frame_out_start = out.len();
    let mut at = hc_at + 1;
    loop {
        let word = le_u32(input, at).ok_or(err(at, Lz4Cause::Truncated))?;
        let block_at = at;
        at += 4;
        if word == 0 {
            break;
        }
        let uncompressed = word & 0x8000_0000 != 0;
        let size = (word & 0x7FFF_FFFF) as usize;
        if size > max_block {
            return Err(err(
                block_at,
                Lz4Cause::BlockTooBig {
                    size,
                    max: max_block,
                },
            ));
        }
        let data = input
            .get(at..at + size)
            .ok_or(err(block_at, Lz4Cause::Truncated))?;
        at += size;
        if block_checksums {
            let stored = le_u32(input, at).ok_or(err(at, Lz4Cause::Truncated))?;
            let computed = xxh32(data, 0);
            if stored != computed {
                return Err(err(block_at, Lz4Cause::BlockChecksum { stored, computed }));
            }
            at += 4;
        }
        let out_start = out.len();
        if uncompressed {
            if out_start.saturating_add(size) > limit {
                return Err(DecompressError::TooLarge {
                    codec: Codec::Lz4,
                    limit,
                });
            }
            out.extend_from_slice(data);
            continue;
        }
        // A block never decodes to more than the frame's block size, and the cap is checked
        // before growing so hostile input can overshoot it by one block at most.
        if out_start >= limit {
            return Err(DecompressError::TooLarge {
                codec: Codec::Lz4,
                limit,
            });
        }
        // Zero-fill only what the block could possibly produce (LZ4 expands at most ~255:1), so
        // thousands of tiny blocks cannot each cost a full block-size memset.
        let room = max_block.min(size.saturating_mul(LZ4_MAX_RATIO).saturating_add(16));
        out.resize(out_start + room, 0);
        let (history, tail) = out.split_at_mut(out_start);
        let dict = if independent {
            &[][..]
        } else {
            let from = out_start.saturating_sub(LZ4_WINDOW).max(frame_out_start);
            history.get(from..).unwrap_or_default()
        };
        let n = lz4_flex::block::decompress_into_with_dict(data, tail, dict)
            .map_err(|e| err(block_at, Lz4Cause::Block(e)))?;
        out.truncate(out_start + n);
        if out.len() > limit {
            return Err(DecompressError::TooLarge {
                codec: Codec::Lz4,
                limit,
            });
        }
    }
    // Kafka does not verify the content checksum either; the batch CRC already covers the bytes.
    if content_checksum {
        if input.get(at..at + 4).is_none() {
            return Err(err(at, Lz4Cause::Truncated));
        }
        at += 4;
    }
    Ok(at)
}

const P1: u32 = 2_654_435_761;
const P2: u32 = 2_246_822_519;
const P3: u32 = 3_266_489_917;
const P4: u32 = 668_265_263;
const P5: u32 = 374_761_393;

#[inline]
fn xxh_round(acc: u32, lane: u32) -> u32 {
    acc.wrapping_add(lane.wrapping_mul(P2))
        .rotate_left(13)
        .wrapping_mul(P1)
}

/// XXH32, the checksum of the LZ4 frame format (descriptor and block checksums).
pub fn xxh32(data: &[u8], seed: u32) -> u32 {
    let lane = |c: &[u8]| c.try_into().map(u32::from_le_bytes).unwrap_or(0);
    let mut h;
    let stripes = data.chunks_exact(16);
    let rest = stripes.remainder();
    if data.len() >= 16 {
        let mut v = [
            seed.wrapping_add(P1).wrapping_add(P2),
            seed.wrapping_add(P2),
            seed,
            seed.wrapping_sub(P1),
        ];
        for stripe in stripes {
            for (acc, word) in v.iter_mut().zip(stripe.chunks_exact(4)) {
                *acc = xxh_round(*acc, lane(word));
            }
        }
        h = v[0]
            .rotate_left(1)
            .wrapping_add(v[1].rotate_left(7))
            .wrapping_add(v[2].rotate_left(12))
            .wrapping_add(v[3].rotate_left(18));
    } else {
        h = seed.wrapping_add(P5);
    }
    h = h.wrapping_add(data.len() as u32);
    let words = rest.chunks_exact(4);
    let bytes = words.remainder();
    for word in words {
        h = h
            .wrapping_add(lane(word).wrapping_mul(P3))
            .rotate_left(17)
            .wrapping_mul(P4);
    }
    for &b in bytes {
        h = h
            .wrapping_add((b as u32).wrapping_mul(P5))
            .rotate_left(11)
            .wrapping_mul(P1);
    }
    h ^= h >> 15;
    h = h.wrapping_mul(P2);
    h ^= h >> 13;
    h = h.wrapping_mul(P3);
    h ^= h >> 16;
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn sample(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i % 251) as u8 ^ (i / 7) as u8).collect()
    }

    #[test]
    fn xxh32_known_vectors() {
        assert_eq!(xxh32(b"", 0), 0x02CC_5D05);
        assert_eq!(xxh32(b"a", 0), 0x550D_7456);
        assert_eq!(xxh32(b"abc", 0), 0x32D1_53FF);
        assert_eq!(
            xxh32(b"Nobody inspects the spammish repetition", 0),
            0xE229_3B2F
        );
    }

    #[test]
    fn none_copies() {
        let mut out = vec![9; 3];
        decompress(Codec::None, b"abc", &mut out, false).unwrap();
        assert_eq!(out, b"abc");
    }

    #[test]
    fn gzip_single_and_multi_member() {
        let data = sample(100_000);
        let mut gz = Vec::new();
        for part in [&data[..40_000], &data[40_000..]] {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(part).unwrap();
            gz.extend(e.finish().unwrap());
        }
        let mut out = Vec::new();
        decompress(Codec::Gzip, &gz, &mut out, false).unwrap();
        assert_eq!(out, data);
        // Truncated stream.
        let err = decompress(Codec::Gzip, &gz[..gz.len() / 3], &mut out, false).unwrap_err();
        assert!(
            matches!(
                err,
                DecompressError::Gzip {
                    cause: GzipCause::Truncated,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(err.codec(), Codec::Gzip);
        // Cap.
        let err = decompress_with_limit(Codec::Gzip, &gz, &mut out, false, 1000).unwrap_err();
        assert!(
            matches!(
                err,
                DecompressError::TooLarge {
                    codec: Codec::Gzip,
                    limit: 1000
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn gzip_header_fields_and_malformed_members() {
        let data = sample(50_000);
        let mut e = flate2::GzBuilder::new()
            .filename("batch.bin")
            .comment("a comment")
            .extra(vec![1, 2, 3, 4])
            .write(Vec::new(), flate2::Compression::best());
        e.write_all(&data).unwrap();
        let gz = e.finish().unwrap();
        let mut out = Vec::new();
        decompress(Codec::Gzip, &gz, &mut out, false).unwrap();
        assert_eq!(out, data);
        let cause = |input: &[u8]| match decompress(Codec::Gzip, input, &mut Vec::new(), false) {
            Err(DecompressError::Gzip { position, cause }) => (position, cause),
            other => panic!("{other:?}"),
        };
        assert!(matches!(cause(&gz[..5]), (0, GzipCause::TruncatedHeader)));
        assert!(matches!(cause(&gz[..14]), (10, GzipCause::TruncatedHeader)));
        assert!(matches!(
            cause(b"PK\x03\x04 not gzip"),
            (0, GzipCause::BadMagic(0x504B))
        ));
        let mut bad = gz.clone();
        bad[2] = 7;
        assert!(matches!(cause(&bad), (2, GzipCause::BadMethod(7))));
        let mut bad = gz.clone();
        bad[3] |= 0x80;
        assert!(matches!(cause(&bad), (3, GzipCause::ReservedFlags(_))));
        let n = gz.len();
        let mut bad = gz.clone();
        bad[n - 8] ^= 1;
        assert!(matches!(cause(&bad), (p, GzipCause::Crc { .. }) if p == n - 8));
        let mut bad = gz.clone();
        bad[n - 4] ^= 1;
        assert!(matches!(cause(&bad), (p, GzipCause::Size { actual: 50_000, .. }) if p == n - 4));
        assert!(matches!(cause(&gz[..n - 3]), (p, GzipCause::Truncated) if p == n - 8));
        // Garbage after a member is read as the next member's header.
        let mut bad = gz.clone();
        bad.extend([0, 0, 0]);
        assert!(matches!(cause(&bad), (p, GzipCause::TruncatedHeader) if p == n));
        // Corrupt deflate data.
        let mut bad = gz.clone();
        for b in &mut bad[40..60] {
            *b = 0xFF;
        }
        assert!(matches!(
            cause(&bad),
            (_, GzipCause::Inflate(_) | GzipCause::Crc { .. })
        ));
        // The decoder state is reused: a good member decodes right after a failed one.
        decompress(Codec::Gzip, &gz, &mut out, false).unwrap();
        assert_eq!(out, data);
    }

    fn xerial(data: &[u8], chunk: usize) -> Vec<u8> {
        let mut v = XERIAL_MAGIC.to_vec();
        v.extend(1i32.to_be_bytes());
        v.extend(1i32.to_be_bytes());
        for part in data.chunks(chunk) {
            let block = snap::raw::Encoder::new().compress_vec(part).unwrap();
            v.extend((block.len() as i32).to_be_bytes());
            v.extend(block);
        }
        v
    }

    #[test]
    fn snappy_raw_and_xerial() {
        let data = sample(70_000);
        let mut out = Vec::new();
        let raw = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        decompress(Codec::Snappy, &raw, &mut out, false).unwrap();
        assert_eq!(out, data);
        let x = xerial(&data, 32 * 1024);
        decompress(Codec::Snappy, &x, &mut out, true).unwrap();
        assert_eq!(out, data);
        // Two concatenated xerial streams.
        let mut two = xerial(&data[..1000], 400);
        two.extend(xerial(&data[1000..2000], 400));
        decompress(Codec::Snappy, &two, &mut out, false).unwrap();
        assert_eq!(out, &data[..2000]);
        // Header only: empty payload.
        decompress(Codec::Snappy, &x[..16], &mut out, false).unwrap();
        assert!(out.is_empty());
    }

    #[test]
    fn snappy_malformed() {
        let data = sample(5000);
        let x = xerial(&data, 2000);
        let mut out = Vec::new();
        // Chunk length past the end.
        let mut bad = x.clone();
        bad[16..20].copy_from_slice(&100_000i32.to_be_bytes());
        let err = decompress(Codec::Snappy, &bad, &mut out, false).unwrap_err();
        assert!(
            matches!(err, DecompressError::XerialChunkLength { position: 16, length: 100_000, remaining } if remaining == x.len() - 20),
            "{err:?}"
        );
        // Negative chunk length.
        bad[16..20].copy_from_slice(&(-5i32).to_be_bytes());
        let err = decompress(Codec::Snappy, &bad, &mut out, false).unwrap_err();
        assert!(
            matches!(
                err,
                DecompressError::XerialChunkLength {
                    position: 16,
                    length: -5,
                    ..
                }
            ),
            "{err:?}"
        );
        // Partial chunk length at the end.
        let mut bad = x.clone();
        bad.extend([0, 0]);
        let err = decompress(Codec::Snappy, &bad, &mut out, false).unwrap_err();
        assert!(
            matches!(err, DecompressError::XerialChunkLength { position, .. } if position == x.len()),
            "{err:?}"
        );
        // Truncated header.
        let err = decompress(Codec::Snappy, &x[..12], &mut out, false).unwrap_err();
        assert!(matches!(err, DecompressError::XerialHeader), "{err:?}");
        // Corrupt block inside a chunk: claims a length it cannot fill.
        let mut bad = x.clone();
        bad[20] = 0xFF;
        bad[21] = 0x7F;
        let err = decompress(Codec::Snappy, &bad, &mut out, false).unwrap_err();
        assert!(
            matches!(err, DecompressError::XerialChunk { position: 16, .. }),
            "{err:?}"
        );
        // Raw block cut short.
        let raw = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        let err = decompress(Codec::Snappy, &raw[..raw.len() - 3], &mut out, false).unwrap_err();
        assert!(matches!(err, DecompressError::Snappy(_)), "{err:?}");
        // Cap on the declared length.
        let err = decompress_with_limit(Codec::Snappy, &raw, &mut out, false, 100).unwrap_err();
        assert!(
            matches!(err, DecompressError::Snappy(snap::Error::TooBig { .. })),
            "{err:?}"
        );
    }

    fn lz4_frame_bytes(data: &[u8], info: lz4_flex::frame::FrameInfo) -> Vec<u8> {
        let mut e = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::new());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn lz4_frames() {
        use lz4_flex::frame::{BlockMode, BlockSize, FrameInfo};
        let data = sample(300_000);
        let mut out = Vec::new();
        for mode in [BlockMode::Independent, BlockMode::Linked] {
            for (bc, cc, cs) in [(false, false, None), (true, true, Some(data.len() as u64))] {
                let info = FrameInfo::new()
                    .block_mode(mode)
                    .block_size(BlockSize::Max64KB)
                    .block_checksums(bc)
                    .content_checksum(cc)
                    .content_size(cs);
                let frame = lz4_frame_bytes(&data, info);
                decompress(Codec::Lz4, &frame, &mut out, false).unwrap();
                assert_eq!(out, data, "{mode:?} {bc} {cc}");
            }
        }
        // Incompressible data goes into uncompressed blocks.
        let noise: Vec<u8> = (0..5000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let frame = lz4_frame_bytes(&noise, FrameInfo::new());
        decompress(Codec::Lz4, &frame, &mut out, false).unwrap();
        assert_eq!(out, noise);
        // Two frames back to back.
        let mut two = lz4_frame_bytes(&data[..100], FrameInfo::new());
        two.extend(lz4_frame_bytes(&data[100..300], FrameInfo::new()));
        decompress(Codec::Lz4, &two, &mut out, false).unwrap();
        assert_eq!(out, &data[..300]);
    }

    #[test]
    fn lz4_broken_header_checksum_only_accepted_for_legacy() {
        let data = sample(1000);
        let mut frame = lz4_frame_bytes(&data, lz4_flex::frame::FrameInfo::new());
        let stored = frame[6];
        // Kafka's old writer hashed the magic number along with the descriptor.
        let broken = (xxh32(&frame[0..6], 0) >> 8) as u8;
        assert_ne!(broken, stored);
        frame[6] = broken;
        let mut out = Vec::new();
        decompress(Codec::Lz4, &frame, &mut out, true).unwrap();
        assert_eq!(out, data);
        let err = decompress(Codec::Lz4, &frame, &mut out, false).unwrap_err();
        assert!(
            matches!(err, DecompressError::Lz4 { position: 6, cause: Lz4Cause::HeaderChecksum { stored: s, computed } }
                if s == broken && computed == stored),
            "{err:?}"
        );
    }

    #[test]
    fn lz4_malformed() {
        let data = sample(1000);
        let info = lz4_flex::frame::FrameInfo::new()
            .block_checksums(true)
            .block_size(lz4_flex::frame::BlockSize::Max64KB);
        let frame = lz4_frame_bytes(&data, info);
        let mut out = Vec::new();
        let lz4_err = |input: &[u8]| match decompress(Codec::Lz4, input, &mut Vec::new(), false) {
            Err(DecompressError::Lz4 { position, cause }) => (position, cause),
            other => panic!("{other:?}"),
        };
        assert!(matches!(lz4_err(&frame[..3]), (0, Lz4Cause::Truncated)));
        assert!(matches!(
            lz4_err(b"abcdefgh"),
            (0, Lz4Cause::BadMagic(0x6463_6261))
        ));
        assert!(matches!(
            lz4_err(&frame[..frame.len() - 2]),
            (_, Lz4Cause::Truncated)
        ));
        // Block size word larger than the frame's maximum (64 KiB).
        let mut bad = frame.clone();
        bad[7..11].copy_from_slice(&0x0010_0000u32.to_le_bytes());
        assert!(matches!(
            lz4_err(&bad),
            (
                7,
                Lz4Cause::BlockTooBig {
                    size: 0x10_0000,
                    max: 65536
                }
            )
        ));
        // Flip a data byte: the block checksum catches it.
        let mut bad = frame.clone();
        bad[12] ^= 1;
        assert!(matches!(lz4_err(&bad), (7, Lz4Cause::BlockChecksum { .. })));
        // Trailing garbage.
        let mut bad = frame.clone();
        bad.extend([1, 2, 3]);
        assert!(matches!(lz4_err(&bad), (p, Lz4Cause::TrailingBytes(3)) if p == frame.len()));
        // Reserved bit, dictionary and block size code.
        for (byte, mask, want) in [
            (4usize, 0x02u8, "reserved"),
            (4, 0x01, "dict"),
            (5, 0x70, "size"),
        ] {
            let mut bad = frame.clone();
            bad[byte] ^= mask;
            let (_, cause) = decompress(Codec::Lz4, &bad, &mut out, true)
                .map(|_| panic!("accepted {want}"))
                .unwrap_or_else(|e| match e {
                    DecompressError::Lz4 { position, cause } => (position, cause),
                    other => panic!("{other:?}"),
                });
            match want {
                "reserved" => assert!(matches!(cause, Lz4Cause::ReservedBits)),
                "dict" => assert!(matches!(cause, Lz4Cause::Dictionary)),
                _ => assert!(matches!(cause, Lz4Cause::BlockSizeCode(3))),
            }
        }
        // Cap.
        let err = decompress_with_limit(Codec::Lz4, &frame, &mut out, false, 10).unwrap_err();
        assert!(
            matches!(
                err,
                DecompressError::TooLarge {
                    codec: Codec::Lz4,
                    limit: 10
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn zstd_round_trip_and_errors() {
        let data = sample(200_000);
        let z = zstd::bulk::compress(&data, 3).unwrap();
        let mut out = Vec::new();
        decompress(Codec::Zstd, &z, &mut out, false).unwrap();
        assert_eq!(out, data);
        let err = decompress(Codec::Zstd, &z, &mut out, true).unwrap_err();
        assert!(matches!(err, DecompressError::ZstdInLegacy));
        let err = decompress(Codec::Zstd, &z[..z.len() / 2], &mut out, false).unwrap_err();
        assert!(
            matches!(
                err,
                DecompressError::Zstd {
                    cause: ZstdCause::Truncated,
                    ..
                }
            ),
            "{err:?}"
        );
        let err = decompress(Codec::Zstd, b"", &mut out, false).unwrap_err();
        assert!(
            matches!(
                err,
                DecompressError::Zstd {
                    position: 0,
                    cause: ZstdCause::Truncated
                }
            ),
            "{err:?}"
        );
        let err = decompress(Codec::Zstd, b"definitely not zstd", &mut out, false).unwrap_err();
        assert!(
            matches!(
                err,
                DecompressError::Zstd {
                    position: 0,
                    cause: ZstdCause::Stream(_)
                }
            ),
            "{err:?}"
        );
        // Two frames back to back; the context is reused after the errors above.
        let mut two = zstd::bulk::compress(&data[..1000], 1).unwrap();
        two.extend(zstd::bulk::compress(&data[1000..3000], 19).unwrap());
        decompress(Codec::Zstd, &two, &mut out, false).unwrap();
        assert_eq!(out, &data[..3000]);
        // A streaming frame without a content size (what zstd-jni's stream writes).
        let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
        enc.include_contentsize(false).unwrap();
        enc.write_all(&data).unwrap();
        let streamed = enc.finish().unwrap();
        decompress(Codec::Zstd, &streamed, &mut out, false).unwrap();
        assert_eq!(out, data);
        let err = decompress_with_limit(Codec::Zstd, &z, &mut out, false, 5000).unwrap_err();
        assert!(
            matches!(
                err,
                DecompressError::TooLarge {
                    codec: Codec::Zstd,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn unknown_codec() {
        let err = decompress(Codec::Unknown(6), b"x", &mut Vec::new(), false).unwrap_err();
        assert!(matches!(
            err,
            DecompressError::UnsupportedCodec {
                codec: Codec::Unknown(6)
            }
        ));
        assert!(err.to_string().contains('6'));
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let data = sample(3000);
        let seeds: Vec<Vec<u8>> = vec![
            xerial(&data, 1000),
            lz4_frame_bytes(
                &data,
                lz4_flex::frame::FrameInfo::new().block_checksums(false),
            ),
            lz4_frame_bytes(
                &data,
                lz4_flex::frame::FrameInfo::new().block_mode(lz4_flex::frame::BlockMode::Linked),
            ),
            snap::raw::Encoder::new().compress_vec(&data).unwrap(),
            zstd::bulk::compress(&data, 1).unwrap(),
        ];
        let mut out = Vec::new();
        for i in 0..3000 {
            let mut input = seeds[i % seeds.len()].clone();
            // Mutate a few bytes, sometimes truncate, sometimes pure noise.
            match next() % 3 {
                0 => {
                    for _ in 0..(next() % 4 + 1) {
                        let at = (next() as usize) % input.len();
                        input[at] = next() as u8;
                    }
                }
                1 => input.truncate((next() as usize) % input.len()),
                _ => input = (0..(next() % 64)).map(|_| next() as u8).collect(),
            }
            for codec in [Codec::Gzip, Codec::Snappy, Codec::Lz4, Codec::Zstd] {
                let _ = decompress_with_limit(codec, &input, &mut out, i % 2 == 0, 1 << 20);
            }
        }
    }
}
