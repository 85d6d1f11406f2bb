//! How a chain was written: digest, what the previous link is joined with, which fields form the
//! entry, the genesis value. Two presets are MS5's real chains (../shared/docs/ms5-system.md):
//!
//! - `ms5-file` (file audit logs): `hash = hex(sha256(previousHash + JSON(entry)))`, genesis `"0"`,
//!   the entry being every field of the record except `hash`.
//! - `ms5-edge` (edge journal): `signature = hex(HMAC-SHA256(key, JSON{eventId, timestamp,
//!   assetId, type, data, previousSignature}))`, the key from an environment variable, genesis
//!   `"0"`.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest as _, Sha256};

/// How the previous entry's hash enters this entry's digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// `digest(previous_hash_text + canonical(entry))`.
    Concat,
    /// The previous hash is a field of the entry (`prev_field`): `digest(canonical(entry))`.
    Embedded,
}

/// The digest function. The key of an HMAC is held here only, never printed.
#[derive(Clone, PartialEq, Eq)]
pub enum Digest {
    Sha256,
    HmacSha256(Vec<u8>),
}

impl std::fmt::Debug for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Digest::Sha256 => f.write_str("Sha256"),
            Digest::HmacSha256(_) => f.write_str("HmacSha256(***)"),
        }
    }
}

impl Digest {
    /// Lower-case hex digest of the concatenated parts.
    pub fn hex(&self, parts: &[&[u8]]) -> String {
        let bytes: Vec<u8> = match self {
            Digest::Sha256 => {
                let mut h = Sha256::new();
                for p in parts {
                    h.update(p);
                }
                h.finalize().to_vec()
            }
            Digest::HmacSha256(key) => {
                // HMAC accepts keys of any length: new_from_slice cannot fail for it.
                let Ok(mut m) = <Hmac<Sha256> as KeyInit>::new_from_slice(key) else {
                    return String::new();
                };
                for p in parts {
                    m.update(p);
                }
                m.finalize().into_bytes().to_vec()
            }
        };
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut s = Vec::with_capacity(64);
        for b in bytes {
            for nibble in [b >> 4, b & 15] {
                s.push(HEX.get(usize::from(nibble)).copied().unwrap_or(b'0'));
            }
        }
        // Only ASCII hex digits were pushed.
        String::from_utf8(s).unwrap_or_default()
    }
}

/// Everything the verifier needs to recompute a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scheme {
    pub digest: Digest,
    pub link: Link,
    /// The field holding the entry's stored hash.
    pub hash_field: String,
    /// The field holding the previous entry's hash, when entries store it. Required for
    /// `Link::Embedded`; for `Link::Concat` it only helps tell a removed row from an edited one.
    pub prev_field: Option<String>,
    /// The fields forming the entry, in order. `None`: every field of the record, in its own
    /// order, except `hash_field` and `exclude`.
    pub fields: Option<Vec<String>>,
    pub exclude: Vec<String>,
    /// The previous hash of the first entry.
    pub genesis: String,
    pub canonical: crate::canonical::Canonical,
    /// The field ordering the chain (a row's name in reports; integer keys also reveal removed rows).
    pub key_field: String,
    /// Fields holding times that the writer serialised as JavaScript Dates
    /// (`2026-11-22T03:00:00.000Z`): database timestamps are rewritten to that form first.
    pub js_time_fields: Vec<String>,
}

/// The presets' names, for `--preset`.
pub const PRESETS: &[&str] = &["ms5-file", "ms5-edge"];

impl Scheme {
    /// A preset by name; `key` is the HMAC key for `ms5-edge`.
    pub fn preset(name: &str, key: Option<Vec<u8>>) -> Result<Scheme, String> {
        match name {
            "ms5-file" => Ok(Scheme {
                digest: Digest::Sha256,
                link: Link::Concat,
                hash_field: "hash".into(),
                prev_field: Some("previousHash".into()),
                fields: None,
                exclude: vec![],
                genesis: "0".into(),
                canonical: crate::canonical::Canonical::Js,
                key_field: "id".into(),
                js_time_fields: vec!["timestamp".into()],
            }),
            "ms5-edge" => Ok(Scheme {
                digest: Digest::HmacSha256(key.ok_or_else(|| {
                    "preset ms5-edge signs with HMAC-SHA256: give the key's environment variable \
                     with --key-env"
                        .to_string()
                })?),
                link: Link::Embedded,
                hash_field: "signature".into(),
                prev_field: Some("previousSignature".into()),
                fields: Some(
                    [
                        "eventId",
                        "timestamp",
                        "assetId",
                        "type",
                        "data",
                        "previousSignature",
                    ]
                    .map(String::from)
                    .to_vec(),
                ),
                exclude: vec![],
                genesis: "0".into(),
                canonical: crate::canonical::Canonical::Js,
                key_field: "eventId".into(),
                js_time_fields: vec!["timestamp".into()],
            }),
            other => Err(format!(
                "unknown preset {other:?} (known: {})",
                PRESETS.join(", ")
            )),
        }
    }

    /// Checks the combination before any row is read.
    pub fn validate(&self) -> Result<(), String> {
        if self.link == Link::Embedded && self.prev_field.is_none() {
            return Err(
                "an embedded link needs the field that holds the previous hash (--prev-field)"
                    .into(),
            );
        }
        if let Some(f) = &self.fields {
            if f.is_empty() {
                return Err("--fields is empty".into());
            }
            if f.contains(&self.hash_field) {
                return Err(format!(
                    "--fields includes the hash field {:?}: a hash cannot cover itself",
                    self.hash_field
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_match_published_vectors() {
        // FIPS 180-2 "abc" and RFC 4231 test case 2.
        assert_eq!(
            Digest::Sha256.hex(&[b"a", b"bc"]),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            Digest::HmacSha256(b"Jefe".to_vec()).hex(&[b"what do ya want ", b"for nothing?"]),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            format!("{:?}", Digest::HmacSha256(b"Jefe".to_vec())),
            "HmacSha256(***)"
        );
    }

    #[test]
    fn presets_and_validation() {
        assert!(Scheme::preset("ms5-edge", None).is_err());
        assert!(Scheme::preset("nope", None).is_err());
        let s = Scheme::preset("ms5-file", None).unwrap();
        assert_eq!(s.validate(), Ok(()));
        let mut bad = s.clone();
        bad.link = Link::Embedded;
        bad.prev_field = None;
        assert!(bad.validate().is_err());
        let mut bad = s;
        bad.fields = Some(vec!["hash".into()]);
        assert!(bad.validate().is_err());
    }
}
