//! Bounds-checked big-endian reads over foreign bytes: every read returns `None` instead of
//! panicking, so a truncated or hostile file can never abort a scan.

#[inline]
pub fn array<const N: usize>(buf: &[u8], at: usize) -> Option<[u8; N]> {
    let end = at.checked_add(N)?;
    buf.get(at..end)?.try_into().ok()
}
#[inline]
pub fn i8(buf: &[u8], at: usize) -> Option<i8> {
    buf.get(at).map(|b| *b as i8)
}
#[inline]
pub fn i16(buf: &[u8], at: usize) -> Option<i16> {
    array(buf, at).map(i16::from_be_bytes)
}
#[inline]
pub fn i32(buf: &[u8], at: usize) -> Option<i32> {
    array(buf, at).map(i32::from_be_bytes)
}
#[inline]
pub fn u32(buf: &[u8], at: usize) -> Option<u32> {
    array(buf, at).map(u32::from_be_bytes)
}
#[inline]
pub fn i64(buf: &[u8], at: usize) -> Option<i64> {
    array(buf, at).map(i64::from_be_bytes)
}
