//! A small blocking Kafka protocol client for the admin requests librdkafka does not wrap
//! (AlterPartitionReassignments, ListPartitionReassignments, IncrementalAlterConfigs,
//! ElectLeaders) and for the partition metadata it hides (offline replicas).
//!
//! Requests and responses are kafka-protocol's message types; this module owns the rest: the
//! size-prefixed framing, correlation ids, ApiVersions negotiation (the highest version both sides
//! speak), per-request timeouts, and routing (the controller for reassignments and elections, a
//! named broker for broker configs and partition leaders). Errors name the broker address, the
//! API and, for broker errors, Kafka's error code and name.
//!
//! Security follows librdkafka's settings (`security.protocol`, `ssl.*`, `sasl.*`), so the same
//! `-X` list works for `drkit offsets` and this client: TLS in [`tls`], SASL PLAIN and SCRAM in
//! [`sasl`]. What cannot be honoured (GSSAPI, OAUTHBEARER, encrypted keys) is refused, never
//! silently skipped.

pub mod sasl;
pub mod tls;

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    AlterPartitionReassignmentsResponse, ApiKey, ApiVersionsRequest, DescribeConfigsResponse,
    ElectLeadersResponse, IncrementalAlterConfigsResponse, ListPartitionReassignmentsResponse,
    MetadataRequest, MetadataResponse, RequestHeader, ResponseHeader, SaslAuthenticateRequest,
    SaslHandshakeRequest,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use replay::kafka::{is_secret, Settings};

use sasl::{Mechanism, Password, SaslSettings, Scram};
use tls::{Stream, TlsSettings};

/// Largest response accepted: far above any admin answer, small enough that a garbage length
/// prefix (a TLS listener spoken to in plaintext, another protocol) cannot make us allocate
/// gigabytes.
const MAX_FRAME: usize = 64 << 20;

/// What went wrong talking to a broker. Every variant names the broker's address and the API.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    Config(String),
    #[error("cannot connect to {addr}: {reason}")]
    Connect { addr: String, reason: String },
    #[error("{addr}: TLS handshake failed: {reason}")]
    Tls { addr: String, reason: String },
    #[error("{addr}: SASL {mechanism} authentication failed: {reason}")]
    Auth {
        addr: String,
        mechanism: &'static str,
        reason: String,
    },
    #[error(
        "{addr}: the broker closed the connection instead of answering {api} v{version} \
         (brokers close the connection for requests they do not implement, and listeners \
         that need SASL the client did not use: check -X security.protocol)"
    )]
    Closed {
        addr: String,
        api: String,
        version: i16,
    },
    #[error("{addr}: no answer to {api} within {timeout_ms} ms")]
    Timeout {
        addr: String,
        api: String,
        timeout_ms: u128,
    },
    #[error("{addr}: {api}: {reason}")]
    Io {
        addr: String,
        api: String,
        reason: String,
    },
    #[error("{addr}: {api}: malformed message: {reason}")]
    Protocol {
        addr: String,
        api: String,
        reason: String,
    },
    #[error("{addr} does not support {api} (broker versions {broker}, drkit speaks {client})")]
    Unsupported {
        addr: String,
        api: String,
        broker: String,
        client: String,
    },
    #[error("{addr}: {api} failed: error {code} {}{}", error_name(*.code), .message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Broker {
        addr: String,
        api: String,
        code: i16,
        message: Option<String>,
    },
    #[error("broker {0} is not in the cluster metadata")]
    UnknownBroker(i32),
}

/// Kafka's name for an error code (`NOT_CONTROLLER`-style names in CamelCase, as kafka-protocol
/// spells them), or `UNKNOWN(code)`.
pub fn error_name(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        None => "NONE".to_string(),
        Some(ResponseError::Unknown(c)) => format!("UNKNOWN({c})"),
        Some(e) => format!("{e:?}"),
    }
}

/// The name of an API key, for messages.
pub fn api_name(key: i16) -> String {
    ApiKey::try_from(key)
        .map(|k| format!("{k:?}"))
        .unwrap_or_else(|_| format!("api {key}"))
}

/// librdkafka's `security.protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    fn parse(v: &str) -> Option<SecurityProtocol> {
        match v.to_ascii_uppercase().as_str() {
            "PLAINTEXT" => Some(SecurityProtocol::Plaintext),
            "SSL" => Some(SecurityProtocol::Ssl),
            "SASL_PLAINTEXT" => Some(SecurityProtocol::SaslPlaintext),
            "SASL_SSL" => Some(SecurityProtocol::SaslSsl),
            _ => None,
        }
    }

    fn tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    fn sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

/// Validated connection settings.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `HOST:PORT` entries, tried in order.
    pub bootstrap: Vec<String>,
    pub client_id: String,
    /// Per request: connect, send and wait for the answer.
    pub timeout: Duration,
    pub security: SecurityProtocol,
    /// Built once from the `ssl.*` files (present when `security` is SSL or SASL_SSL).
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub sasl: Option<SaslSettings>,
    /// The secret `-X` values, to scrub from anything a broker says back.
    secrets: Settings,
}

impl ClientConfig {
    /// Builds the configuration from `--bootstrap-server` and `-X` settings. Returns the
    /// settings this client does not use (librdkafka tuning), so the caller can say so.
    pub fn new(
        bootstrap: &str,
        settings: &Settings,
    ) -> Result<(ClientConfig, Vec<String>), ClientError> {
        let servers: Vec<String> = bootstrap
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        if servers.is_empty() {
            return Err(ClientError::Config(
                "--bootstrap-server: expected HOST:PORT[,HOST:PORT...]".into(),
            ));
        }
        for s in &servers {
            let ok = s
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
            if !ok {
                return Err(ClientError::Config(format!(
                    "--bootstrap-server: {s}: expected HOST:PORT"
                )));
            }
        }
        let mut cfg = ClientConfig {
            bootstrap: servers,
            client_id: "drkit".to_string(),
            timeout: Duration::from_secs(30),
            security: SecurityProtocol::Plaintext,
            tls: None,
            sasl: None,
            secrets: Settings(
                settings
                    .0
                    .iter()
                    // The mechanism and user name are not secrets to the library (and
                    // scrubbing a short user name would garble messages).
                    .filter(|(k, _)| {
                        is_secret(k)
                            && !["sasl.mechanism", "sasl.mechanisms", "sasl.username"]
                                .contains(&k.to_ascii_lowercase().as_str())
                    })
                    .cloned()
                    .collect(),
            ),
        };
        let config = |m: String| ClientError::Config(m);
        let mut tls = TlsSettings::new();
        let mut mechanism = None;
        let mut key_password = false;
        let mut username = None;
        let mut password = None;
        // ssl.*/sasl.* keys that only matter if the protocol uses them, like librdkafka.
        let mut ssl_keys = vec![];
        let mut sasl_keys = vec![];
        let mut ignored = vec![];
        for (k, v) in &settings.0 {
            let key = k.to_ascii_lowercase();
            let bool_value = || match v.to_ascii_lowercase().as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(config(format!("-X {k}={v}: expected true or false"))),
            };
            match key.as_str() {
                "security.protocol" => {
                    cfg.security = SecurityProtocol::parse(v).ok_or_else(|| {
                        config(format!(
                            "-X security.protocol={v}: expected PLAINTEXT, SSL, SASL_PLAINTEXT \
                             or SASL_SSL"
                        ))
                    })?;
                }
                "client.id" => cfg.client_id = v.clone(),
                "request.timeout.ms" | "socket.timeout.ms" => {
                    let ms: u64 = v
                        .parse()
                        .map_err(|_| config(format!("-X {k}={v}: expected milliseconds")))?;
                    cfg.timeout = Duration::from_millis(ms.max(1));
                }
                "ssl.ca.location" => tls.ca = Some(PathBuf::from(v)),
                "ssl.certificate.location" => tls.certificate = Some(PathBuf::from(v)),
                "ssl.key.location" => tls.key = Some(PathBuf::from(v)),
                "ssl.key.password" => key_password = true,
                "ssl.endpoint.identification.algorithm" => {
                    tls.verify_hostname = match v.to_ascii_lowercase().as_str() {
                        "https" => true,
                        "none" => false,
                        _ => {
                            return Err(config(format!("-X {k}={v}: expected https or none")));
                        }
                    }
                }
                "enable.ssl.certificate.verification" => tls.verify_certificate = bool_value()?,
                "sasl.mechanism" | "sasl.mechanisms" => mechanism = Some((k, v)),
                "sasl.username" => username = Some(v.clone()),
                "sasl.password" => password = Some(Password(v.clone())),
                _ if key.starts_with("ssl.") => ssl_keys.push(k.clone()),
                _ if key.starts_with("sasl.") => sasl_keys.push(k.clone()),
                _ => ignored.push(k.clone()),
            }
        }
        // Settings for a protocol not in use are reported unused, as for any other key.
        let unused_with = |prefix: &str| -> Vec<String> {
            settings
                .0
                .iter()
                .filter(|(k, _)| {
                    let k = k.to_ascii_lowercase();
                    k.starts_with(prefix) || (prefix == "ssl." && k.contains(".ssl."))
                })
                .map(|(k, _)| k.clone())
                .collect()
        };
        if cfg.security.tls() {
            if key_password {
                return Err(config(
                    "-X ssl.key.password: encrypted private keys are not supported by the admin \
                     client; decrypt the key (openssl pkey -in KEY -out PLAIN.pem) and pass \
                     ssl.key.location=PLAIN.pem"
                        .into(),
                ));
            }
            cfg.tls = Some(tls.build().map_err(config)?);
            ignored.extend(ssl_keys);
        } else {
            ignored.extend(unused_with("ssl."));
        }
        if cfg.security.sasl() {
            let Some((k, v)) = mechanism else {
                return Err(config(
                    "SASL needs -X sasl.mechanism=PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 \
                     (librdkafka's default, GSSAPI, is not supported by the admin client)"
                        .into(),
                ));
            };
            let mechanism = Mechanism::parse(v).map_err(|e| config(format!("-X {k}: {e}")))?;
            let (Some(username), Some(password)) = (username, password) else {
                return Err(config(format!(
                    "SASL {} needs -X sasl.username and -X sasl.password",
                    mechanism.name()
                )));
            };
            cfg.sasl = Some(SaslSettings {
                mechanism,
                username,
                password,
            });
            ignored.extend(sasl_keys);
        } else {
            ignored.extend(unused_with("sasl."));
        }
        Ok((cfg, ignored))
    }
}

/// One connection to one broker, after TLS, the ApiVersions handshake and SASL.
pub struct Connection {
    stream: Stream,
    addr: String,
    client_id: StrBytes,
    timeout: Duration,
    versions: BTreeMap<i16, (i16, i16)>,
    next_correlation: i32,
    /// When the SASL session the broker granted (SaslAuthenticate's session_lifetime_ms,
    /// KIP-368) should be renewed: brokers close connections that outlive it, so a connection
    /// idle through a long batch wait is replaced instead of failing its next request.
    renew_at: Option<Instant>,
}

impl Connection {
    /// Connects and negotiates versions.
    pub fn open(addr: &str, cfg: &ClientConfig) -> Result<Connection, ClientError> {
        let connect_err = |reason: String| ClientError::Connect {
            addr: addr.to_string(),
            reason,
        };
        let addrs: Vec<_> = addr
            .to_socket_addrs()
            .map_err(|e| connect_err(e.to_string()))?
            .collect();
        let mut last = "no address".to_string();
        let mut stream = None;
        for a in addrs {
            match TcpStream::connect_timeout(&a, cfg.timeout) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = e.to_string(),
            }
        }
        let stream = stream.ok_or_else(|| connect_err(last))?;
        let setup = |r: std::io::Result<()>| r.map_err(|e| connect_err(e.to_string()));
        setup(stream.set_read_timeout(Some(cfg.timeout)))?;
        setup(stream.set_write_timeout(Some(cfg.timeout)))?;
        setup(stream.set_nodelay(true))?;
        let stream = match &cfg.tls {
            None => Stream::Plain(stream),
            Some(tls) => Stream::tls(tls, host_of(addr), stream)
                .map_err(|e| tls_error(addr, cfg.timeout, e))?,
        };
        let mut conn = Connection {
            stream,
            addr: addr.to_string(),
            client_id: StrBytes::from_string(cfg.client_id.clone()),
            timeout: cfg.timeout,
            versions: BTreeMap::new(),
            next_correlation: 1,
            renew_at: None,
        };
        conn.handshake()?;
        if let Some(sasl) = &cfg.sasl {
            conn.authenticate(sasl)
                .map_err(|e| scrub_error(e, &cfg.secrets))?;
        }
        Ok(conn)
    }

    /// SaslHandshake v1 (the mechanism), then SaslAuthenticate rounds: Kafka-framed SASL, so
    /// every round is an ordinary request with a correlation id.
    fn authenticate(&mut self, s: &SaslSettings) -> Result<(), ClientError> {
        let mechanism = s.mechanism.name();
        let auth = |addr: &str, reason: String| ClientError::Auth {
            addr: addr.to_string(),
            mechanism,
            reason,
        };
        if self.version_for::<SaslHandshakeRequest>()? < 1 {
            return Err(auth(
                &self.addr,
                "the broker speaks only SaslHandshake v0 (unframed SASL, Kafka < 1.0)".into(),
            ));
        }
        let hs = self.send(
            &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mechanism)),
        )?;
        if hs.error_code == 33 {
            let enabled: Vec<&str> = hs.mechanisms.iter().map(|m| m.as_str()).collect();
            return Err(auth(
                &self.addr,
                format!(
                    "the broker does not enable it on this listener (enabled: {})",
                    if enabled.is_empty() {
                        "none".to_string()
                    } else {
                        enabled.join(", ")
                    }
                ),
            ));
        }
        if hs.error_code != 0 {
            return Err(self.broker_error(ApiKey::SaslHandshake as i16, hs.error_code, None));
        }
        match s.mechanism {
            Mechanism::Plain => {
                let (_, lifetime) = self.sasl_round(mechanism, sasl::plain_message(s))?;
                self.set_lifetime(lifetime);
            }
            Mechanism::ScramSha256 | Mechanism::ScramSha512 => {
                let nonce = Scram::random_nonce().map_err(|e| auth(&self.addr, e))?;
                let mut scram = Scram::new(s, nonce).map_err(|e| auth(&self.addr, e))?;
                let (server_first, _) = self.sasl_round(mechanism, scram.client_first())?;
                let client_final = scram
                    .client_final(&server_first)
                    .map_err(|e| auth(&self.addr, e))?;
                let (server_final, lifetime) = self.sasl_round(mechanism, client_final)?;
                self.set_lifetime(lifetime);
                scram
                    .verify_server_final(&server_final)
                    .map_err(|e| auth(&self.addr, e))?;
            }
        }
        Ok(())
    }

    /// One SaslAuthenticate: our bytes out, the server's back; a broker error is an
    /// authentication failure carrying the broker's message.
    fn sasl_round(
        &mut self,
        mechanism: &'static str,
        out: Vec<u8>,
    ) -> Result<(Bytes, i64), ClientError> {
        let resp =
            self.send(&SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(out)))?;
        if resp.error_code != 0 {
            let mut reason = format!("error {} {}", resp.error_code, error_name(resp.error_code));
            if let Some(m) = resp.error_message.as_ref().filter(|m| !m.is_empty()) {
                reason.push_str(": ");
                reason.push_str(m.as_str());
            }
            return Err(ClientError::Auth {
                addr: self.addr.clone(),
                mechanism,
                reason,
            });
        }
        Ok((resp.auth_bytes, resp.session_lifetime_ms))
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Renews at 80% of the granted lifetime, as Kafka's own clients re-authenticate between
    /// 85% and 95%: early enough that a request in flight does not cross the deadline.
    fn set_lifetime(&mut self, ms: i64) {
        self.renew_at = u64::try_from(ms)
            .ok()
            .filter(|&ms| ms > 0)
            .map(|ms| Instant::now() + Duration::from_millis(ms / 5 * 4));
    }

    /// The SASL session is (nearly) over: open a new connection instead of using this one.
    pub fn needs_renewal(&self) -> bool {
        self.renew_at.is_some_and(|t| Instant::now() >= t)
    }

    /// ApiVersions v3 (flexible, what current brokers expect); a broker that does not know v3
    /// answers UNSUPPORTED_VERSION in the v0 layout, so we then ask again with v0.
    fn handshake(&mut self) -> Result<(), ClientError> {
        let req = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("drkit"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let resp = match self.exchange::<ApiVersionsRequest>(&req, 3) {
            Ok(r) if r.error_code == 0 => r,
            _ => self.exchange::<ApiVersionsRequest>(&ApiVersionsRequest::default(), 0)?,
        };
        if resp.error_code != 0 {
            return Err(self.broker_error(ApiKey::ApiVersions as i16, resp.error_code, None));
        }
        self.versions = resp
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect();
        Ok(())
    }

    /// The version to use for `R`: the highest both sides support.
    pub fn version_for<R: Request>(&self) -> Result<i16, ClientError> {
        let client = R::VERSIONS;
        let unsupported = |broker: String| ClientError::Unsupported {
            addr: self.addr.clone(),
            api: api_name(R::KEY),
            broker,
            client: format!("{}..{}", client.min, client.max),
        };
        let Some(&(min, max)) = self.versions.get(&R::KEY) else {
            return Err(unsupported("none".into()));
        };
        let hi = max.min(client.max);
        if hi < min.max(client.min) {
            return Err(unsupported(format!("{min}..{max}")));
        }
        Ok(hi)
    }

    /// Sends `req` at the negotiated version and returns the decoded answer.
    pub fn send<R: Request>(&mut self, req: &R) -> Result<R::Response, ClientError> {
        let version = self.version_for::<R>()?;
        self.exchange::<R>(req, version)
    }

    /// Sends `req` at `version` without checking what the broker advertised: for brokers whose
    /// ApiVersions answer is incomplete. A broker that does not implement the request closes the
    /// connection, which is reported as [`ClientError::Closed`].
    pub fn send_at<R: Request>(
        &mut self,
        req: &R,
        version: i16,
    ) -> Result<R::Response, ClientError> {
        self.exchange::<R>(req, version)
    }

    /// A broker error for `api`, with this connection's address.
    pub fn broker_error(&self, api: i16, code: i16, message: Option<&StrBytes>) -> ClientError {
        ClientError::Broker {
            addr: self.addr.clone(),
            api: api_name(api),
            code,
            message: message.map(|m| m.as_str().to_string()),
        }
    }

    fn exchange<R: Request>(&mut self, req: &R, version: i16) -> Result<R::Response, ClientError> {
        let api = api_name(R::KEY);
        let proto = |reason: String| ClientError::Protocol {
            addr: self.addr.clone(),
            api: api.clone(),
            reason,
        };
        let correlation = self.next_correlation;
        self.next_correlation = self.next_correlation.wrapping_add(1);
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation)
            .with_client_id(Some(self.client_id.clone()));
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&[0, 0, 0, 0]);
        header
            .encode(&mut buf, R::header_version(version))
            .map_err(|e| proto(format!("request header: {e}")))?;
        req.encode(&mut buf, version)
            .map_err(|e| proto(format!("request v{version}: {e}")))?;
        let len = u32::try_from(buf.len() - 4).map_err(|_| proto("request too large".into()))?;
        if let Some(prefix) = buf.get_mut(..4) {
            prefix.copy_from_slice(&len.to_be_bytes());
        }
        self.stream
            .write_all(&buf)
            .map_err(|e| self.io_error(&api, version, e))?;

        let mut len = [0u8; 4];
        self.stream
            .read_exact(&mut len)
            .map_err(|e| self.io_error(&api, version, e))?;
        let len = u32::from_be_bytes(len) as usize;
        if len > MAX_FRAME {
            return Err(proto(format!(
                "answer of {len} bytes (is -X security.protocol right for this listener?)"
            )));
        }
        let mut body = vec![0u8; len];
        self.stream
            .read_exact(&mut body)
            .map_err(|e| self.io_error(&api, version, e))?;
        let mut body = Bytes::from(body);
        let header = ResponseHeader::decode(
            &mut body,
            <R::Response as HeaderVersion>::header_version(version),
        )
        .map_err(|e| proto(format!("response header: {e}")))?;
        if header.correlation_id != correlation {
            return Err(proto(format!(
                "answer carries correlation id {} for request {correlation}",
                header.correlation_id
            )));
        }
        R::Response::decode(&mut body, version)
            .map_err(|e| proto(format!("response v{version}: {e}")))
    }

    fn io_error(&self, api: &str, version: i16, e: std::io::Error) -> ClientError {
        match e.kind() {
            ErrorKind::UnexpectedEof
            | ErrorKind::ConnectionReset
            | ErrorKind::ConnectionAborted
            | ErrorKind::BrokenPipe => ClientError::Closed {
                addr: self.addr.clone(),
                api: api.to_string(),
                version,
            },
            ErrorKind::WouldBlock | ErrorKind::TimedOut => ClientError::Timeout {
                addr: self.addr.clone(),
                api: api.to_string(),
                timeout_ms: self.timeout.as_millis(),
            },
            _ => ClientError::Io {
                addr: self.addr.clone(),
                api: api.to_string(),
                reason: e.to_string(),
            },
        }
    }
}

/// The host part of `HOST:PORT` (brackets of an IPv6 literal removed): the name a broker's
/// certificate must carry.
fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// A failed TLS handshake, with what the user can change named.
fn tls_error(addr: &str, timeout: Duration, e: std::io::Error) -> ClientError {
    let addr = addr.to_string();
    match e.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => ClientError::Timeout {
            addr,
            api: "TLS handshake".into(),
            timeout_ms: timeout.as_millis(),
        },
        ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted => {
            ClientError::Tls {
                addr,
                reason: "the broker closed the connection (is this a TLS listener?)".into(),
            }
        }
        _ => {
            let hint = match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                Some(rustls::Error::InvalidCertificate(c)) => match c {
                    rustls::CertificateError::UnknownIssuer
                    | rustls::CertificateError::BadSignature => {
                        " (is the broker's CA in -X ssl.ca.location?)"
                    }
                    rustls::CertificateError::NotValidForName
                    | rustls::CertificateError::NotValidForNameContext { .. } => {
                        " (the certificate is not for this host name; \
                         -X ssl.endpoint.identification.algorithm=none skips this check)"
                    }
                    _ => "",
                },
                Some(rustls::Error::InvalidMessage(_)) => " (is this a TLS listener?)",
                _ => "",
            };
            ClientError::Tls {
                addr,
                reason: format!("{e}{hint}"),
            }
        }
    }
}

/// Broker messages are echoed into errors: make sure no secret `-X` value rides along.
fn scrub_error(e: ClientError, secrets: &Settings) -> ClientError {
    match e {
        ClientError::Auth {
            addr,
            mechanism,
            reason,
        } => ClientError::Auth {
            addr,
            mechanism,
            reason: secrets.scrub(&reason),
        },
        ClientError::Broker {
            addr,
            api,
            code,
            message,
        } => ClientError::Broker {
            addr,
            api,
            code,
            message: message.map(|m| secrets.scrub(&m)),
        },
        other => other,
    }
}

/// NOT_CONTROLLER: the broker is no longer (or not yet) the controller.
const NOT_CONTROLLER: i16 = 41;

/// Answers to controller requests, which say NOT_CONTROLLER when the controller has moved.
pub trait ControllerAnswer {
    fn not_controller(&self) -> bool;
}

impl ControllerAnswer for AlterPartitionReassignmentsResponse {
    fn not_controller(&self) -> bool {
        self.error_code == NOT_CONTROLLER
    }
}

impl ControllerAnswer for ListPartitionReassignmentsResponse {
    fn not_controller(&self) -> bool {
        self.error_code == NOT_CONTROLLER
    }
}

impl ControllerAnswer for ElectLeadersResponse {
    fn not_controller(&self) -> bool {
        self.error_code == NOT_CONTROLLER
    }
}

impl ControllerAnswer for IncrementalAlterConfigsResponse {
    fn not_controller(&self) -> bool {
        self.responses
            .iter()
            .any(|r| r.error_code == NOT_CONTROLLER)
    }
}

impl ControllerAnswer for DescribeConfigsResponse {
    fn not_controller(&self) -> bool {
        self.results.iter().any(|r| r.error_code == NOT_CONTROLLER)
    }
}

/// A broker as the cluster metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    pub id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

impl BrokerInfo {
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// The cluster as seen through one bootstrap connection, plus lazily opened connections to the
/// brokers that requests must reach. A connection that failed is dropped and reopened on next use.
pub struct Admin {
    cfg: ClientConfig,
    bootstrap: Option<Connection>,
    brokers: BTreeMap<i32, BrokerInfo>,
    controller: Option<i32>,
    conns: BTreeMap<i32, Connection>,
}

impl Admin {
    /// Connects to the first reachable bootstrap server and reads the broker list.
    pub fn connect(cfg: ClientConfig) -> Result<Admin, ClientError> {
        let mut admin = Admin {
            cfg,
            bootstrap: None,
            brokers: BTreeMap::new(),
            controller: None,
            conns: BTreeMap::new(),
        };
        admin.metadata(Some(&[]))?;
        Ok(admin)
    }

    pub fn brokers(&self) -> &BTreeMap<i32, BrokerInfo> {
        &self.brokers
    }

    /// The broker Metadata names as controller (KRaft brokers forward controller requests, so
    /// any live broker is acceptable when none is named).
    pub fn controller(&self) -> Option<i32> {
        self.controller
    }

    /// Metadata for `topics` (`None`: every topic), refreshing the broker list and controller.
    pub fn metadata(&mut self, topics: Option<&[String]>) -> Result<MetadataResponse, ClientError> {
        use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
        use kafka_protocol::messages::TopicName;
        let req = MetadataRequest::default()
            .with_topics(topics.map(|ts| {
                ts.iter()
                    .map(|t| {
                        MetadataRequestTopic::default()
                            .with_name(Some(TopicName(StrBytes::from_string(t.clone()))))
                    })
                    .collect()
            }))
            .with_allow_auto_topic_creation(false);
        let resp = self.send_any(&req)?;
        self.brokers = resp
            .brokers
            .iter()
            .map(|b| {
                (
                    b.node_id.0,
                    BrokerInfo {
                        id: b.node_id.0,
                        host: b.host.as_str().to_string(),
                        port: b.port,
                        rack: b.rack.as_ref().map(|r| r.as_str().to_string()),
                    },
                )
            })
            .collect();
        self.controller = (resp.controller_id.0 >= 0).then_some(resp.controller_id.0);
        Ok(resp)
    }

    /// Sends to the bootstrap connection (any broker will do).
    pub fn send_any<R: Request>(&mut self, req: &R) -> Result<R::Response, ClientError> {
        if self
            .bootstrap
            .as_ref()
            .is_some_and(Connection::needs_renewal)
        {
            self.bootstrap = None;
        }
        if self.bootstrap.is_none() {
            let mut last = None;
            for addr in &self.cfg.bootstrap {
                match Connection::open(addr, &self.cfg) {
                    Ok(c) => {
                        self.bootstrap = Some(c);
                        break;
                    }
                    Err(e) => last = Some(e),
                }
            }
            if self.bootstrap.is_none() {
                return Err(last.unwrap_or_else(|| ClientError::Config("no bootstrap".into())));
            }
        }
        let Some(conn) = self.bootstrap.as_mut() else {
            return Err(ClientError::Config("no bootstrap connection".into()));
        };
        let r = conn.send(req);
        if r.is_err() {
            self.bootstrap = None;
        }
        r
    }

    /// Sends to broker `id` (broker configs, partition leaders).
    pub fn send_to<R: Request>(&mut self, id: i32, req: &R) -> Result<R::Response, ClientError> {
        if self.conns.get(&id).is_some_and(Connection::needs_renewal) {
            self.conns.remove(&id);
        }
        if !self.conns.contains_key(&id) {
            let info = self
                .brokers
                .get(&id)
                .ok_or(ClientError::UnknownBroker(id))?;
            let conn = Connection::open(&info.addr(), &self.cfg)?;
            self.conns.insert(id, conn);
        }
        let Some(conn) = self.conns.get_mut(&id) else {
            return Err(ClientError::UnknownBroker(id));
        };
        let r = conn.send(req);
        if r.is_err() {
            self.conns.remove(&id);
        }
        r
    }

    /// Sends to the controller Metadata named, else to any broker. A NOT_CONTROLLER answer
    /// (the controller moved since the last Metadata) means the request was not carried out:
    /// the metadata is refreshed and the request sent once more, to the new controller.
    pub fn send_controller<R: Request>(&mut self, req: &R) -> Result<R::Response, ClientError>
    where
        R::Response: ControllerAnswer,
    {
        let resp = self.send_controller_once(req)?;
        if !resp.not_controller() {
            return Ok(resp);
        }
        self.metadata(Some(&[]))?;
        self.send_controller_once(req)
    }

    fn send_controller_once<R: Request>(&mut self, req: &R) -> Result<R::Response, ClientError> {
        match self.controller {
            Some(id) if self.brokers.contains_key(&id) => self.send_to(id, req),
            _ => self.send_any(req),
        }
    }

    /// The `timeout_ms` to put in requests that make the broker wait (elections,
    /// reassignments): less than the client's own timeout, so the broker's answer (even a
    /// REQUEST_TIMED_OUT) arrives before the client gives up on the connection.
    pub fn request_timeout_ms(&self) -> i32 {
        let ms = self.cfg.timeout.as_millis() * 4 / 5;
        i32::try_from(ms).unwrap_or(i32::MAX).max(1)
    }

    /// The address a request to broker `id` goes to, for messages.
    pub fn addr_of(&self, id: i32) -> String {
        self.brokers
            .get(&id)
            .map(BrokerInfo::addr)
            .unwrap_or_else(|| format!("broker {id}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(kv: &[(&str, &str)]) -> Settings {
        Settings(
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn config_reads_librdkafka_security_settings_and_reports_unused_ones() {
        let (cfg, ignored) = ClientConfig::new(
            "a:9092, b:9093",
            &settings(&[
                ("client.id", "x"),
                ("request.timeout.ms", "500"),
                ("linger.ms", "5"),
                // Not in use without TLS/SASL: reported unused, like librdkafka ignores them.
                ("ssl.ca.location", "/nonexistent.pem"),
                ("sasl.username", "u"),
            ]),
        )
        .unwrap();
        assert_eq!(cfg.bootstrap, vec!["a:9092", "b:9093"]);
        assert_eq!(cfg.client_id, "x");
        assert_eq!(cfg.timeout, Duration::from_millis(500));
        assert_eq!(cfg.security, SecurityProtocol::Plaintext);
        assert!(cfg.tls.is_none() && cfg.sasl.is_none());
        assert_eq!(
            ignored,
            vec!["linger.ms", "ssl.ca.location", "sasl.username"]
        );

        let err = |kv: &[(&str, &str)]| {
            ClientConfig::new("a:1", &settings(kv))
                .unwrap_err()
                .to_string()
        };
        let e = err(&[("security.protocol", "SASL_PLAINTEXT")]);
        assert!(e.contains("sasl.mechanism") && e.contains("GSSAPI"), "{e}");
        let e = err(&[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "GSSAPI"),
        ]);
        assert!(e.contains("GSSAPI is not supported"), "{e}");
        let e = err(&[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanisms", "PLAIN"),
            ("sasl.password", "s3cret"),
        ]);
        assert!(e.contains("sasl.username") && !e.contains("s3cret"), "{e}");
        let e = err(&[("security.protocol", "TLS")]);
        assert!(e.contains("SASL_SSL"), "{e}");
        let e = err(&[
            ("security.protocol", "SSL"),
            ("ssl.ca.location", "/nonexistent/ca.pem"),
        ]);
        assert!(e.contains("ssl.ca.location=/nonexistent/ca.pem"), "{e}");
        let e = err(&[("security.protocol", "SSL"), ("ssl.key.password", "pw")]);
        assert!(
            e.contains("encrypted private keys") && !e.contains("pw "),
            "{e}"
        );
        let e = err(&[("ssl.endpoint.identification.algorithm", "dns")]);
        assert!(e.contains("https or none"), "{e}");

        let (cfg, ignored) = ClientConfig::new(
            "a:1",
            &settings(&[
                ("security.protocol", "sasl_plaintext"),
                ("sasl.mechanism", "SCRAM-SHA-256"),
                ("sasl.username", "u"),
                ("sasl.password", "s3cret"),
                ("sasl.kerberos.service.name", "kafka"),
            ]),
        )
        .unwrap();
        assert_eq!(cfg.sasl.as_ref().unwrap().mechanism, Mechanism::ScramSha256);
        assert_eq!(ignored, vec!["sasl.kerberos.service.name"]);
        assert!(!format!("{cfg:?}").contains("s3cret"));
        // What would be refused under SSL/SASL is only unused under PLAINTEXT, as in librdkafka.
        let (_, ignored) = ClientConfig::new(
            "a:1",
            &settings(&[("sasl.mechanism", "GSSAPI"), ("ssl.key.password", "pw")]),
        )
        .unwrap();
        assert_eq!(ignored, vec!["ssl.key.password", "sasl.mechanism"]);
        assert!(ClientConfig::new("nohost", &Settings::default()).is_err());
        assert!(ClientConfig::new("", &Settings::default()).is_err());
    }

    #[test]
    fn error_names_are_kafkas() {
        assert_eq!(error_name(85), "NoReassignmentInProgress");
        assert_eq!(error_name(0), "NONE");
        assert_eq!(error_name(999), "UNKNOWN(999)");
        assert_eq!(api_name(45), "AlterPartitionReassignments");
        let e = ClientError::Broker {
            addr: "h:1".into(),
            api: api_name(45),
            code: 3,
            message: Some("no such partition".into()),
        };
        assert_eq!(
            e.to_string(),
            "h:1: AlterPartitionReassignments failed: error 3 UnknownTopicOrPartition: no such partition"
        );
    }

    #[test]
    fn a_silent_peer_is_a_timeout_not_a_hang() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let t = std::thread::spawn(move || {
            let (s, _) = listener.accept().unwrap();
            std::thread::sleep(Duration::from_millis(1500));
            drop(s);
        });
        let (mut cfg, _) = ClientConfig::new(&addr, &Settings::default()).unwrap();
        cfg.timeout = Duration::from_millis(200);
        let e = Connection::open(&addr, &cfg).err().unwrap();
        assert!(matches!(e, ClientError::Timeout { .. }), "{e}");
        t.join().unwrap();
    }

    /// The TLS handshake runs under the same socket timeouts as requests.
    #[test]
    fn a_silent_tls_peer_is_a_handshake_timeout() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let t = std::thread::spawn(move || {
            let (s, _) = listener.accept().unwrap();
            std::thread::sleep(Duration::from_millis(1500));
            drop(s);
        });
        let ca = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls/ca.pem");
        let (mut cfg, _) = ClientConfig::new(
            &addr,
            &settings(&[("security.protocol", "SSL"), ("ssl.ca.location", ca)]),
        )
        .unwrap();
        cfg.timeout = Duration::from_millis(200);
        let e = Connection::open(&addr, &cfg).err().unwrap();
        assert!(
            matches!(&e, ClientError::Timeout { api, .. } if api == "TLS handshake"),
            "{e}"
        );
        t.join().unwrap();
    }
}
