//! SASL for the admin client: PLAIN (RFC 4616) and SCRAM-SHA-256/512 (RFC 5802, RFC 7677), the
//! mechanisms librdkafka supports without Kerberos or an OAuth token source.
//!
//! The exchange itself (SaslHandshake, then SaslAuthenticate per round) lives in the client;
//! this module owns the bytes of each round. The password lives in [`Password`], whose `Debug`
//! is redacted, and never appears in an error.

use std::fmt;
use std::num::NonZeroU32;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ring::{digest, hmac, pbkdf2};

/// A SASL password: redacted in `Debug`, so configurations can be logged.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(pub String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    ScramSha256,
    ScramSha512,
}

impl Mechanism {
    /// Parses `sasl.mechanism(s)`; unsupported ones are named in the error.
    pub fn parse(v: &str) -> Result<Mechanism, String> {
        match v.trim().to_ascii_uppercase().as_str() {
            "PLAIN" => Ok(Mechanism::Plain),
            "SCRAM-SHA-256" => Ok(Mechanism::ScramSha256),
            "SCRAM-SHA-512" => Ok(Mechanism::ScramSha512),
            "GSSAPI" | "OAUTHBEARER" => Err(format!(
                "SASL mechanism {v} is not supported by the admin client \
                 (supported: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)"
            )),
            _ => Err(format!(
                "unknown SASL mechanism {v:?} (supported: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)"
            )),
        }
    }

    /// The name Kafka's SaslHandshake uses.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslSettings {
    pub mechanism: Mechanism,
    pub username: String,
    pub password: Password,
}

/// PLAIN's one message: no authorization identity, user, password.
pub fn plain_message(s: &SaslSettings) -> Vec<u8> {
    let mut m = Vec::with_capacity(s.username.len() + s.password.0.len() + 2);
    m.push(0);
    m.extend_from_slice(s.username.as_bytes());
    m.push(0);
    m.extend_from_slice(s.password.0.as_bytes());
    m
}

/// The SCRAM client, one method per round. What a broker sends is checked (nonce prefix,
/// iteration count, final signature) and a mismatch is an error: a server that cannot prove it
/// knows the password is not the cluster we mean to change.
pub struct Scram {
    algorithm: ScramAlgorithm,
    password: Password,
    client_nonce: String,
    client_first_bare: String,
    /// ServerKey and AuthMessage, once client-final is built: what the server signature must be
    /// the HMAC of.
    server_check: Option<(hmac::Key, String)>,
}

#[derive(Clone, Copy)]
struct ScramAlgorithm {
    pbkdf2: pbkdf2::Algorithm,
    hmac: hmac::Algorithm,
    digest: &'static digest::Algorithm,
}

/// Iteration counts above this are refused: a hostile or broken server could otherwise keep the
/// client hashing for hours (Kafka's own limit is 16384).
const MAX_ITERATIONS: u32 = 1_000_000;

impl Scram {
    /// `nonce`: the client nonce (random in production, fixed in the RFC test vectors).
    pub fn new(s: &SaslSettings, nonce: String) -> Result<Scram, String> {
        let algorithm = match s.mechanism {
            Mechanism::ScramSha256 => ScramAlgorithm {
                pbkdf2: pbkdf2::PBKDF2_HMAC_SHA256,
                hmac: hmac::HMAC_SHA256,
                digest: &digest::SHA256,
            },
            Mechanism::ScramSha512 => ScramAlgorithm {
                pbkdf2: pbkdf2::PBKDF2_HMAC_SHA512,
                hmac: hmac::HMAC_SHA512,
                digest: &digest::SHA512,
            },
            Mechanism::Plain => return Err("PLAIN is not a SCRAM mechanism".into()),
        };
        let client_first_bare = format!("n={},r={nonce}", saslname(&s.username));
        Ok(Scram {
            algorithm,
            password: s.password.clone(),
            client_nonce: nonce,
            client_first_bare,
            server_check: None,
        })
    }

    /// A client nonce: 24 random bytes, base64 (printable, no commas).
    pub fn random_nonce() -> Result<String, String> {
        let mut b = [0u8; 24];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
            .map_err(|_| "no system randomness for the SCRAM nonce".to_string())?;
        Ok(B64.encode(b))
    }

    /// client-first-message: no channel binding (`n,,`).
    pub fn client_first(&self) -> Vec<u8> {
        format!("n,,{}", self.client_first_bare).into_bytes()
    }

    /// Takes server-first-message, returns client-final-message (with the proof).
    pub fn client_final(&mut self, server_first: &[u8]) -> Result<Vec<u8>, String> {
        let server_first = std::str::from_utf8(server_first)
            .map_err(|_| "server-first-message is not UTF-8".to_string())?;
        let mut nonce = None;
        let mut salt = None;
        let mut iterations = None;
        for attr in server_first.split(',') {
            match attr.split_once('=') {
                Some(("r", v)) => nonce = Some(v),
                Some(("s", v)) => salt = Some(v),
                Some(("i", v)) => iterations = Some(v),
                Some(("m", _)) => {
                    return Err("server-first-message requires an unsupported extension".into())
                }
                Some(("e", v)) => return Err(format!("server error: {v}")),
                _ => {}
            }
        }
        let (Some(nonce), Some(salt), Some(iterations)) = (nonce, salt, iterations) else {
            return Err(format!(
                "server-first-message lacks r=, s= or i=: {server_first:?}"
            ));
        };
        if !nonce.starts_with(&self.client_nonce) || nonce.len() == self.client_nonce.len() {
            return Err("server nonce does not extend the client nonce".into());
        }
        let salt = B64
            .decode(salt)
            .map_err(|_| "server-first-message: salt is not base64".to_string())?;
        let iterations: u32 = iterations
            .parse()
            .map_err(|_| format!("server-first-message: iteration count {iterations:?}"))?;
        let iterations = NonZeroU32::new(iterations)
            .filter(|n| n.get() <= MAX_ITERATIONS)
            .ok_or_else(|| {
                format!("server-first-message: iteration count {iterations} out of range")
            })?;

        let alg = self.algorithm;
        let mut salted = vec![0u8; alg.digest.output_len()];
        pbkdf2::derive(
            alg.pbkdf2,
            iterations,
            &salt,
            self.password.0.as_bytes(),
            &mut salted,
        );
        let salted_key = hmac::Key::new(alg.hmac, &salted);
        let client_key = hmac::sign(&salted_key, b"Client Key");
        let stored_key = digest::digest(alg.digest, client_key.as_ref());
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let client_signature = hmac::sign(
            &hmac::Key::new(alg.hmac, stored_key.as_ref()),
            auth_message.as_bytes(),
        );
        let proof: Vec<u8> = client_key
            .as_ref()
            .iter()
            .zip(client_signature.as_ref())
            .map(|(a, b)| a ^ b)
            .collect();
        let server_key = hmac::sign(&salted_key, b"Server Key");
        self.server_check = Some((hmac::Key::new(alg.hmac, server_key.as_ref()), auth_message));
        Ok(format!("{without_proof},p={}", B64.encode(proof)).into_bytes())
    }

    /// Checks server-final-message: the server must prove it knows the password too.
    pub fn verify_server_final(&self, server_final: &[u8]) -> Result<(), String> {
        let text = std::str::from_utf8(server_final)
            .map_err(|_| "server-final-message is not UTF-8".to_string())?;
        let Some((server_key, auth_message)) = &self.server_check else {
            return Err("server-final-message before client-final-message".into());
        };
        for attr in text.split(',') {
            match attr.split_once('=') {
                Some(("e", v)) => return Err(format!("server error: {v}")),
                Some(("v", v)) => {
                    let got = B64
                        .decode(v)
                        .map_err(|_| "server signature is not base64".to_string())?;
                    return hmac::verify(server_key, auth_message.as_bytes(), &got).map_err(|_| {
                        "the server's signature is wrong: it does not know this user's \
                         credentials (not the expected cluster?)"
                            .to_string()
                    });
                }
                _ => {}
            }
        }
        Err("server-final-message has no signature".into())
    }
}

/// RFC 5802's saslname: `=` and `,` escaped.
fn saslname(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(m: Mechanism, user: &str, password: &str) -> SaslSettings {
        SaslSettings {
            mechanism: m,
            username: user.into(),
            password: Password(password.into()),
        }
    }

    /// RFC 7677 section 3.
    #[test]
    fn scram_sha_256_matches_the_rfc_7677_example() {
        let mut c = Scram::new(
            &settings(Mechanism::ScramSha256, "user", "pencil"),
            "rOprNGfwEbeRWgbNEkqO".into(),
        )
        .unwrap();
        assert_eq!(c.client_first(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let fin = c
            .client_final(
                b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                  s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            )
            .unwrap();
        assert_eq!(
            String::from_utf8(fin).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
             p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        c.verify_server_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
        let e = c
            .verify_server_final(b"v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap_err();
        assert!(e.contains("signature is wrong"), "{e}");
        assert_eq!(
            c.verify_server_final(b"e=invalid-proof").unwrap_err(),
            "server error: invalid-proof"
        );
    }

    #[test]
    fn scram_refuses_a_nonce_it_did_not_start_and_absurd_iterations() {
        let s = settings(Mechanism::ScramSha512, "u,=x", "p");
        let mut c = Scram::new(&s, "abc".into()).unwrap();
        assert_eq!(c.client_first(), b"n,,n=u=2C=3Dx,r=abc");
        assert!(c.client_final(b"r=xyz123,s=AAAA,i=4096").is_err());
        assert!(c.client_final(b"r=abc,s=AAAA,i=4096").is_err());
        let e = c.client_final(b"r=abcd,s=AAAA,i=99999999").unwrap_err();
        assert!(e.contains("out of range"), "{e}");
        assert!(c.client_final(b"r=abcd,s=AAAA,i=4096").is_ok());
    }

    #[test]
    fn mechanisms_and_redaction() {
        assert_eq!(
            Mechanism::parse("scram-sha-512"),
            Ok(Mechanism::ScramSha512)
        );
        let e = Mechanism::parse("GSSAPI").unwrap_err();
        assert!(e.contains("GSSAPI") && e.contains("not supported"), "{e}");
        assert!(Mechanism::parse("OAUTHBEARER")
            .unwrap_err()
            .contains("OAUTHBEARER"));
        let s = settings(Mechanism::Plain, "alice", "hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert_eq!(plain_message(&s), b"\0alice\0hunter2");
    }
}
