//! CRC-64 as Redis computes it for RDB trailers: the Jones polynomial, reflected, initial value 0,
//! no final xor (`CRC-64/REDIS` in the CRC catalogue). The `crc` crate's table version is used;
//! the test pins Redis's own check value so a wrong catalogue entry cannot slip through.

use crc::{Crc, Digest, CRC_64_REDIS};

/// The algorithm Redis's `crc64.c` implements.
pub static REDIS: Crc<u64> = Crc::<u64>::new(&CRC_64_REDIS);

/// A running CRC-64/REDIS.
pub fn digest() -> Digest<'static, u64> {
    REDIS.digest()
}

#[cfg(test)]
mod tests {
    #[test]
    fn redis_check_value() {
        // From Redis's crc64.c self-test: crc64(0, "123456789") == 0xe9c6d914c4b8d9ca.
        assert_eq!(super::REDIS.checksum(b"123456789"), 0xe9c6_d914_c4b8_d9ca);
        let mut d = super::digest();
        d.update(b"1234");
        d.update(b"56789");
        assert_eq!(d.finalize(), 0xe9c6_d914_c4b8_d9ca);
    }
}
