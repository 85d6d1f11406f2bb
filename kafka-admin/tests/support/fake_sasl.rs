//! The server side of SASL PLAIN and SCRAM (RFC 5802/7677) for the PROTOCOL FAKE broker.
//!
//! Written from the RFCs with RustCrypto's `hmac`/`sha2` and a hand-rolled PBKDF2, independently
//! of the client's ring-based code, and checked against RFC 7677's SHA-256 example below, so a
//! client and fake that agree are agreeing with the RFC, not with each other.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256, Sha512};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FakeMechanism {
    Plain,
    Sha256,
    Sha512,
}

impl FakeMechanism {
    pub fn name(self) -> &'static str {
        match self {
            FakeMechanism::Plain => "PLAIN",
            FakeMechanism::Sha256 => "SCRAM-SHA-256",
            FakeMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }
}

/// The one user the fake knows, and how it authenticates.
#[derive(Debug, Clone)]
pub struct FakeSasl {
    pub mechanism: FakeMechanism,
    pub user: String,
    pub password: String,
    pub salt: Vec<u8>,
    pub iterations: u32,
    /// Granted in the last SaslAuthenticate answer (KIP-368); a connection used after it is
    /// closed by the fake, as brokers with `connections.max.reauth.ms` do. 0: no limit.
    pub session_lifetime_ms: i64,
}

impl FakeSasl {
    pub fn new(mechanism: FakeMechanism, user: &str, password: &str) -> FakeSasl {
        FakeSasl {
            mechanism,
            user: user.into(),
            password: password.into(),
            salt: b"drkit-fake-salt".to_vec(),
            iterations: 4096,
            session_lifetime_ms: 0,
        }
    }
}

/// Kafka's message for bad SCRAM credentials (SaslAuthenticate error 58).
pub fn failed_message(m: FakeMechanism) -> String {
    format!(
        "Authentication failed during authentication due to invalid credentials with SASL \
         mechanism {}",
        m.name()
    )
}

fn mac(m: FakeMechanism, key: &[u8], data: &[u8]) -> Vec<u8> {
    match m {
        FakeMechanism::Sha512 => {
            let mut h = <Hmac<Sha512> as KeyInit>::new_from_slice(key).unwrap();
            h.update(data);
            h.finalize().into_bytes().to_vec()
        }
        _ => {
            let mut h = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap();
            h.update(data);
            h.finalize().into_bytes().to_vec()
        }
    }
}

fn hash(m: FakeMechanism, data: &[u8]) -> Vec<u8> {
    match m {
        FakeMechanism::Sha512 => Sha512::digest(data).to_vec(),
        _ => Sha256::digest(data).to_vec(),
    }
}

/// Hi() of RFC 5802: PBKDF2 with one output block.
fn hi(m: FakeMechanism, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
    let mut first = salt.to_vec();
    first.extend_from_slice(&1u32.to_be_bytes());
    let mut u = mac(m, password, &first);
    let mut out = u.clone();
    for _ in 1..iterations {
        u = mac(m, password, &u);
        out.iter_mut().zip(&u).for_each(|(o, x)| *o ^= x);
    }
    out
}

/// (the proof a client knowing `password` sends, the server signature) for one exchange.
pub fn scram_expected(
    m: FakeMechanism,
    password: &str,
    salt: &[u8],
    iterations: u32,
    auth_message: &str,
) -> (Vec<u8>, Vec<u8>) {
    let salted = hi(m, password.as_bytes(), salt, iterations);
    let client_key = mac(m, &salted, b"Client Key");
    let stored_key = hash(m, &client_key);
    let client_sig = mac(m, &stored_key, auth_message.as_bytes());
    let proof = client_key
        .iter()
        .zip(&client_sig)
        .map(|(a, b)| a ^ b)
        .collect();
    let server_key = mac(m, &salted, b"Server Key");
    (proof, mac(m, &server_key, auth_message.as_bytes()))
}

/// One connection's authentication state.
#[derive(Debug, Default)]
pub struct SaslConn {
    pub authenticated: bool,
    handshaken: bool,
    /// client-first-bare and server-first, between the two SCRAM rounds.
    scram: Option<(String, String)>,
}

/// What the fake answers to one SaslAuthenticate.
pub enum Round {
    Continue(Vec<u8>),
    Done(Vec<u8>),
    Failed(String),
}

impl SaslConn {
    /// SaslHandshake: Ok if `mechanism` is the configured one.
    pub fn handshake(&mut self, cfg: &FakeSasl, mechanism: &str) -> bool {
        self.handshaken = mechanism == cfg.mechanism.name();
        self.handshaken
    }

    pub fn authenticate(&mut self, cfg: &FakeSasl, bytes: &[u8]) -> Round {
        if !self.handshaken {
            return Round::Failed("SaslAuthenticate before SaslHandshake".into());
        }
        let fail = || Round::Failed(failed_message(cfg.mechanism));
        if cfg.mechanism == FakeMechanism::Plain {
            let expected = format!("\0{}\0{}", cfg.user, cfg.password);
            return if bytes == expected.as_bytes() {
                self.authenticated = true;
                Round::Done(vec![])
            } else {
                Round::Failed("Authentication failed: Invalid username or password".to_string())
            };
        }
        let text = String::from_utf8_lossy(bytes).to_string();
        match self.scram.take() {
            None => {
                let Some(bare) = text.strip_prefix("n,,") else {
                    return fail();
                };
                let attrs: Vec<&str> = bare.split(',').collect();
                let user = attrs.iter().find_map(|a| a.strip_prefix("n="));
                let nonce = attrs.iter().find_map(|a| a.strip_prefix("r="));
                let (Some(user), Some(nonce)) = (user, nonce) else {
                    return fail();
                };
                if user != cfg.user {
                    return fail();
                }
                let server_first = format!(
                    "r={nonce}fakeservernonce,s={},i={}",
                    B64.encode(&cfg.salt),
                    cfg.iterations
                );
                self.scram = Some((bare.to_string(), server_first.clone()));
                Round::Continue(server_first.into_bytes())
            }
            Some((bare, server_first)) => {
                let Some((without_proof, proof)) = text.rsplit_once(",p=") else {
                    return fail();
                };
                let nonce = server_first.split(',').next().unwrap_or_default();
                if !without_proof.starts_with("c=biws,") || !without_proof.ends_with(nonce) {
                    return fail();
                }
                let auth_message = format!("{bare},{server_first},{without_proof}");
                let (expected, server_sig) = scram_expected(
                    cfg.mechanism,
                    &cfg.password,
                    &cfg.salt,
                    cfg.iterations,
                    &auth_message,
                );
                if B64.decode(proof).ok() != Some(expected) {
                    return fail();
                }
                self.authenticated = true;
                Round::Done(format!("v={}", B64.encode(server_sig)).into_bytes())
            }
        }
    }
}

/// The fake's SCRAM arithmetic against RFC 7677 section 3 (user "user", password "pencil").
#[test]
fn fake_scram_server_matches_the_rfc_7677_example() {
    let bare = "n=user,r=rOprNGfwEbeRWgbNEkqO";
    let server_first =
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    let without_proof = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    let (proof, sig) = scram_expected(
        FakeMechanism::Sha256,
        "pencil",
        &B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap(),
        4096,
        &format!("{bare},{server_first},{without_proof}"),
    );
    assert_eq!(
        B64.encode(proof),
        "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
    );
    assert_eq!(
        B64.encode(sig),
        "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
    );
}
