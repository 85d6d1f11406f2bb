//! The one way drkit opens a PostgreSQL connection, with libpq's TLS parameters.
//!
//! tokio-postgres knows only `sslmode=disable|prefer|require`, verifies nothing itself and rejects
//! the parameters it does not parse (`sslrootcert`, `verify-full`, ...), while the people running
//! drkit bring libpq connection strings (production MS5 databases accept TLS only). So the
//! connection string is split here: the TLS parameters are taken out and turned into a rustls
//! configuration, the rest goes to tokio-postgres unchanged.
//!
//! `sslmode` follows libpq, default `prefer`:
//! - `disable`: no TLS;
//! - `allow`, `prefer`: TLS when the server offers it, plain otherwise (`allow` is treated as
//!   `prefer`: asking for TLS first is the safer of the two orders);
//! - `require`: TLS or fail, the certificate unchecked, except that with a root certificate
//!   (`sslrootcert`, or libpq's default `~/.postgresql/root.crt` when it exists) it behaves like
//!   `verify-ca`, as in libpq. The same holds for `prefer`: a certificate that fails the check
//!   fails the connection rather than falling back to plain text;
//! - `verify-ca`: the chain must lead to a certificate of `sslrootcert`;
//! - `verify-full`: and the certificate must name the host drkit connected to (`host`, even when
//!   `hostaddr` gives the address).
//!
//! `sslrootcert=system` uses the system's roots and, as in libpq 16, implies `verify-full` and
//! refuses a weaker `sslmode`. `sslcert`/`sslkey` present a client certificate (no default
//! files, no encrypted keys). `sslsni=0` turns SNI off, `ssl_min_protocol_version=TLSv1.3` raises
//! the floor (rustls never speaks below TLS 1.2). `sslcrl`, `sslcrldir`, `sslpassword` and
//! `ssl_max_protocol_version` are refused as not supported rather than silently ignored.
//! SCRAM logins over TLS use channel binding (`tls-server-end-point`) when the server offers it,
//! except for certificates signed with Ed25519 or RSA-PSS (no binding then; with
//! `channel_binding=require` such a login fails).

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{PrivateKeyDer, ServerName};
use rustls::{CertificateError, ClientConfig, RootCertStore};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::config::SslMode as PgSslMode;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};
use tokio_postgres::{Client, Config};

use crate::sink::redact;
use crate::tls;

/// libpq's `sslmode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(s: &str) -> Result<SslMode, ConnectError> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => {
                let want = "disable, allow, prefer, require, verify-ca or verify-full";
                return Err(ConnectError::Config(format!(
                    "invalid sslmode {s:?} ({want})"
                )));
            }
        })
    }
    fn name(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// The TLS parameters taken out of a connection string.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsParams {
    /// `None`: not given (libpq's default, `prefer`, or `verify-full` with `sslrootcert=system`).
    pub mode: Option<SslMode>,
    pub rootcert: Option<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
    pub sni: bool,
    pub tls13_only: bool,
}

/// Why a connection could not be made. The text never holds a password.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The connection string or a TLS file is unusable; nothing was sent to a server.
    #[error("{0}")]
    Config(String),
    /// The server could not be reached, refused TLS or the login, or failed the certificate check.
    #[error("{0}")]
    Server(String),
}

/// Connects as libpq would with this connection string (URL or key-value form); the connection
/// task runs on the current tokio runtime.
pub async fn connect(conninfo: &str) -> Result<Client, ConnectError> {
    let (rest, params) = split(conninfo)?;
    let mut config =
        Config::from_str(&rest).map_err(|e| ConnectError::Config(redact(&error_chain(&e))))?;
    let mode = effective_mode(&params)?;
    config.ssl_mode(match mode {
        SslMode::Disable => PgSslMode::Disable,
        SslMode::Allow | SslMode::Prefer => PgSslMode::Prefer,
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => PgSslMode::Require,
    });
    let hosts = host_list(&config);
    let tls = MakeRustls {
        config: Arc::new(client_config(mode, &params)?),
    };
    let (client, conn) = config
        .connect(tls)
        .await
        .map_err(|e| ConnectError::Server(describe(&e, mode, &hosts)))?;
    tokio::spawn(async move {
        // A connection error surfaces on the client's next query; nothing to do here.
        let _ = conn.await;
    });
    Ok(client)
}

/// The connection string without the TLS parameters (for tokio-postgres), and those parameters.
pub fn split(conninfo: &str) -> Result<(String, TlsParams), ConnectError> {
    let mut params = TlsParams {
        sni: true,
        ..TlsParams::default()
    };
    let trimmed = conninfo.trim();
    if trimmed.starts_with("postgres://") || trimmed.starts_with("postgresql://") {
        let Some((base, query)) = trimmed.split_once('?') else {
            return Ok((trimmed.to_string(), params));
        };
        let mut kept = vec![];
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            if !take(&mut params, &percent_decode(k), &percent_decode(v))? {
                kept.push(pair);
            }
        }
        let rest = if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        return Ok((rest, params));
    }
    let mut kept = vec![];
    for (key, value, text) in key_values(conninfo)? {
        if !take(&mut params, &key, &value)? {
            kept.push(text);
        }
    }
    Ok((kept.join(" "), params))
}

/// Records a TLS parameter; false when `key` is not one (it stays for tokio-postgres).
fn take(p: &mut TlsParams, key: &str, value: &str) -> Result<bool, ConnectError> {
    match key {
        "sslmode" => p.mode = Some(SslMode::parse(value)?),
        "sslrootcert" => p.rootcert = Some(value.to_string()),
        "sslcert" => p.cert = Some(value.to_string()),
        "sslkey" => p.key = Some(value.to_string()),
        "sslsni" => p.sni = value != "0",
        // Ignored by PostgreSQL 14 and later servers, as by libpq.
        "sslcompression" => {}
        "ssl_min_protocol_version" => match value {
            "" | "TLSv1" | "TLSv1.1" | "TLSv1.2" => p.tls13_only = false,
            "TLSv1.3" => p.tls13_only = true,
            _ => {
                return Err(ConnectError::Config(format!(
                    "invalid ssl_min_protocol_version {value:?} (TLSv1.2 or TLSv1.3)"
                )))
            }
        },
        "sslcrl" | "sslcrldir" | "sslpassword" | "ssl_max_protocol_version" => {
            return Err(ConnectError::Config(format!(
                "connection parameter {key} is not supported by drkit yet"
            )))
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// `%XX` escapes decoded (URL query values such as `sslrootcert=%2Fetc%2Fca.pem`).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            if let Some(v) = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// libpq's key-value syntax: `key = value` pairs separated by whitespace, values optionally in
/// single quotes, backslash escaping the next character. Each pair comes with its original text.
fn key_values(s: &str) -> Result<Vec<(String, String, &str)>, ConnectError> {
    let mut out = vec![];
    let mut it = s.char_indices().peekable();
    loop {
        while it.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let Some(&(start, _)) = it.peek() else { break };
        let mut key = String::new();
        while let Some((_, c)) = it.next_if(|(_, c)| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while it.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        if it.next_if(|(_, c)| *c == '=').is_none() {
            return Err(ConnectError::Config(format!(
                "connection string: missing \"=\" after {key:?}"
            )));
        }
        while it.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        let quoted = it.next_if(|(_, c)| *c == '\'').is_some();
        let mut end = s.len();
        let mut closed = !quoted;
        while let Some((i, c)) = it.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = it.next() {
                        value.push(n);
                    }
                }
                '\'' if quoted => {
                    end = i + 1;
                    closed = true;
                    break;
                }
                c if !quoted && c.is_whitespace() => {
                    end = i;
                    break;
                }
                c => value.push(c),
            }
        }
        if !closed {
            return Err(ConnectError::Config(format!(
                "connection string: unterminated quoted value of {key:?}"
            )));
        }
        out.push((key, value, s.get(start..end).unwrap_or_default()));
    }
    Ok(out)
}

/// The mode after libpq's defaults and its rule for `sslrootcert=system`.
fn effective_mode(p: &TlsParams) -> Result<SslMode, ConnectError> {
    let system = p.rootcert.as_deref() == Some("system");
    match p.mode {
        None if system => Ok(SslMode::VerifyFull),
        None => Ok(SslMode::Prefer),
        Some(m) if system && m != SslMode::VerifyFull => Err(ConnectError::Config(format!(
            "weak sslmode \"{}\" may not be used with sslrootcert=system (use \"verify-full\")",
            m.name()
        ))),
        Some(m) => Ok(m),
    }
}

/// libpq's default root certificate file, `~/.postgresql/root.crt`.
fn default_rootcert() -> Option<PathBuf> {
    let home = std::env::var_os("HOME")?;
    Some(Path::new(&home).join(".postgresql").join("root.crt"))
}

fn client_config(mode: SslMode, p: &TlsParams) -> Result<ClientConfig, ConnectError> {
    let provider = tls::provider();
    let versions: &[&rustls::SupportedProtocolVersion] = if p.tls13_only {
        &[&rustls::version::TLS13]
    } else {
        rustls::DEFAULT_VERSIONS
    };
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| ConnectError::Config(format!("TLS setup: {e}")))?;

    // The root certificates: explicit, or libpq's default file (required by verify-*, used by
    // weaker modes only when it exists). Without TLS no file is read, as in libpq.
    let roots = match p.rootcert.as_deref() {
        _ if mode == SslMode::Disable => None,
        Some("system") => Some(
            tls::system_roots()
                .map_err(|e| ConnectError::Config(format!("sslrootcert=system: {e}")))?,
        ),
        Some(path) => Some(file_roots(Path::new(path))?),
        None => match default_rootcert() {
            Some(f) if f.exists() => Some(file_roots(&f)?),
            _ if matches!(mode, SslMode::VerifyCa | SslMode::VerifyFull) => {
                return Err(ConnectError::Config(format!(
                    "sslmode={} needs a root certificate: set sslrootcert=FILE (or \
                     sslrootcert=system for the system's roots) or create ~/.postgresql/root.crt",
                    mode.name()
                )))
            }
            _ => None,
        },
    };
    let check = match (&roots, mode) {
        (None, _) => tls::Check::Nothing,
        (Some(_), SslMode::VerifyFull) => tls::Check::ChainAndName,
        (Some(_), _) => tls::Check::Chain,
    };
    let verifier = tls::verifier(roots, check).map_err(ConnectError::Config)?;
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match (&p.cert, &p.key) {
        _ if mode == SslMode::Disable => builder.with_no_client_auth(),
        (None, None) => builder.with_no_client_auth(),
        (Some(cert), Some(key)) => {
            let chain = tls::pem_certs(Path::new(cert))
                .map_err(|e| ConnectError::Config(format!("sslcert {e}")))?;
            let key_der = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| ConnectError::Config(format!("sslkey {key}: {e}")))?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|e| ConnectError::Config(format!("sslcert {cert} / sslkey {key}: {e}")))?
        }
        (Some(_), None) => {
            return Err(ConnectError::Config(
                "sslcert given without sslkey (drkit has no default key file)".into(),
            ))
        }
        (None, Some(_)) => {
            return Err(ConnectError::Config(
                "sslkey given without sslcert (drkit has no default certificate file)".into(),
            ))
        }
    };
    config.enable_sni = p.sni;
    Ok(config)
}

fn file_roots(path: &Path) -> Result<RootCertStore, ConnectError> {
    tls::pem_roots(path).map_err(|e| ConnectError::Config(format!("sslrootcert {e}")))
}

/// tokio-postgres's TLS hook over tokio-rustls.
#[derive(Clone)]
struct MakeRustls {
    config: Arc<ClientConfig>,
}

struct RustlsConnect {
    config: Arc<ClientConfig>,
    host: String,
}

impl<S> MakeTlsConnect<S> for MakeRustls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnect;
    type Error = io::Error;

    fn make_tls_connect(&mut self, domain: &str) -> Result<RustlsConnect, io::Error> {
        // The name is checked at handshake time: a Unix socket has no host name, and never
        // gets that far (the server refuses TLS there).
        Ok(RustlsConnect {
            config: self.config.clone(),
            host: domain.to_string(),
        })
    }
}

impl<S> TlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<RustlsStream<S>, io::Error>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let name = ServerName::try_from(self.host.clone()).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("host {:?} is not a valid TLS server name: {e}", self.host),
                )
            })?;
            let tls = tokio_rustls::TlsConnector::from(self.config)
                .connect(name, stream)
                .await
                .map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!("TLS handshake with {} failed: {}", self.host, tls_hint(&e)),
                    )
                })?;
            let end_point = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(|c| tls_server_end_point(c));
            Ok(RustlsStream(tls, end_point))
        })
    }
}

/// The rustls error in words a DBA acts on.
fn tls_hint(e: &io::Error) -> String {
    let Some(r) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) else {
        return e.to_string();
    };
    match r {
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            "the server's certificate is not signed by a CA in sslrootcert (unknown issuer)".into()
        }
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => {
            "the server's certificate is not valid for this host name (sslmode=verify-full checks \
              it; verify-ca does not)"
                .into()
        }
        other => other.to_string(),
    }
}

/// The session, and the server certificate's hash for channel binding.
pub struct RustlsStream<S>(tokio_rustls::client::TlsStream<S>, Option<Vec<u8>>);

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for RustlsStream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        match &self.1 {
            Some(hash) => ChannelBinding::tls_server_end_point(hash.clone()),
            None => ChannelBinding::none(),
        }
    }
}

/// RFC 5929's `tls-server-end-point`: the certificate hashed with the hash of its signature
/// algorithm, SHA-256 for MD5 and SHA-1, as the server computes it. `None` (no channel binding)
/// for algorithms without one hash (Ed25519, RSA-PSS) or a certificate that does not parse.
fn tls_server_end_point(cert: &[u8]) -> Option<Vec<u8>> {
    use ring::digest;
    // sha{1,256,384,512}WithRSAEncryption and md5WithRSAEncryption: 1.2.840.113549.1.1.x
    const RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01];
    // ecdsa-with-SHA1 1.2.840.10045.4.1 and ecdsa-with-SHA{256,384,512} 1.2.840.10045.4.3.x
    const ECDSA: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04];
    let oid = signature_algorithm(cert)?;
    let alg = if let Some(last) = oid.strip_prefix(RSA) {
        match last {
            [0x04] | [0x05] | [0x0b] => &digest::SHA256,
            [0x0c] => &digest::SHA384,
            [0x0d] => &digest::SHA512,
            _ => return None,
        }
    } else if let Some(rest) = oid.strip_prefix(ECDSA) {
        match rest {
            [0x01] | [0x03, 0x02] => &digest::SHA256,
            [0x03, 0x03] => &digest::SHA384,
            [0x03, 0x04] => &digest::SHA512,
            _ => return None,
        }
    } else {
        return None;
    };
    Some(digest::digest(alg, cert).as_ref().to_vec())
}

/// The OID of `Certificate.signatureAlgorithm` (DER: SEQUENCE { tbsCertificate,
/// signatureAlgorithm SEQUENCE { OID, ... }, signature }).
fn signature_algorithm(cert: &[u8]) -> Option<&[u8]> {
    let (tag, body, _) = der(cert)?;
    if tag != 0x30 {
        return None;
    }
    let (_, _, after_tbs) = der(body)?;
    let (tag, alg, _) = der(after_tbs)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, oid, _) = der(alg)?;
    (tag == 0x06).then_some(oid)
}

/// One DER element: its tag, its contents and what follows it.
fn der(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = b.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let (bytes, r) = rest.split_at_checked(n)?;
        rest = r;
        bytes
            .iter()
            .fold(0usize, |acc, &x| (acc << 8) | usize::from(x))
    };
    let (body, after) = rest.split_at_checked(len)?;
    Some((tag, body, after))
}

fn host_list(config: &Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(h) => h.clone(),
            #[cfg(unix)]
            tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
        })
        .collect();
    if hosts.is_empty() {
        "localhost".into()
    } else {
        hosts.join(",")
    }
}

/// tokio-postgres's error with its causes (its own message alone says "error connecting to
/// server"), plus what to change when the cause is TLS.
fn describe(e: &tokio_postgres::Error, mode: SslMode, hosts: &str) -> String {
    let mut s = redact(&error_chain(e));
    if s.contains("server does not support TLS") {
        s = format!(
            "server {hosts} does not support SSL/TLS, and sslmode={} requires it",
            mode.name()
        );
    } else if matches!(mode, SslMode::Disable) && s.contains("no encryption") {
        s.push_str(" (the server may accept only TLS connections: try sslmode=require)");
    }
    s
}

/// The error and its causes, with the server's severity, message and SQLSTATE when it sent one:
/// tokio-postgres's own message alone says "db error" or "error connecting to server".
pub fn error_chain(e: &tokio_postgres::Error) -> String {
    let mut s = match e.as_db_error() {
        Some(d) => format!("{}: {} ({})", d.severity(), d.message(), d.code().code()),
        None => e.to_string(),
    };
    let mut cur = std::error::Error::source(e);
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_form_loses_only_tls_parameters() {
        let (rest, p) = split(
            "postgres://u:pw@h:5/db?application_name=x&sslmode=verify-full&sslrootcert=%2Ftmp%2Fca.pem&connect_timeout=3",
        )
        .unwrap();
        assert_eq!(
            rest,
            "postgres://u:pw@h:5/db?application_name=x&connect_timeout=3"
        );
        assert_eq!(p.mode, Some(SslMode::VerifyFull));
        assert_eq!(p.rootcert.as_deref(), Some("/tmp/ca.pem"));
        let (rest, p) = split("postgresql://h/db?sslmode=require").unwrap();
        assert_eq!(rest, "postgresql://h/db");
        assert_eq!(p.mode, Some(SslMode::Require));
        let (rest, p) = split("postgres://h/db").unwrap();
        assert_eq!(rest, "postgres://h/db");
        assert_eq!(p.mode, None);
    }

    #[test]
    fn key_value_form_keeps_quoting() {
        let (rest, p) = split(
            r"host=h sslmode = verify-ca password='a b\' c' sslrootcert='/my certs/ca.pem' user=u",
        )
        .unwrap();
        assert_eq!(rest, r"host=h password='a b\' c' user=u");
        assert_eq!(p.mode, Some(SslMode::VerifyCa));
        assert_eq!(p.rootcert.as_deref(), Some("/my certs/ca.pem"));
        // What is left parses as tokio-postgres would have parsed it.
        let c = Config::from_str(&rest).unwrap();
        assert_eq!(c.get_password(), Some(&b"a b' c"[..]));
    }

    #[test]
    fn bad_parameters_are_refused_by_name() {
        let e = split("host=h sslmode=verify").unwrap_err().to_string();
        assert!(e.contains("invalid sslmode \"verify\""), "{e}");
        let e = split("postgres://h/db?sslcrl=/x").unwrap_err().to_string();
        assert!(e.contains("sslcrl is not supported"), "{e}");
        let e = split("host='h").unwrap_err().to_string();
        assert!(e.contains("unterminated"), "{e}");
    }

    #[test]
    fn modes_follow_libpq_defaults() {
        let mode = |s: &str| effective_mode(&split(s).unwrap().1);
        assert_eq!(mode("host=h").unwrap(), SslMode::Prefer);
        assert_eq!(
            mode("host=h sslrootcert=system").unwrap(),
            SslMode::VerifyFull
        );
        let e = mode("host=h sslrootcert=system sslmode=require").unwrap_err();
        assert!(e.to_string().contains("weak sslmode \"require\""), "{e}");
    }

    #[test]
    fn truncated_or_odd_certificates_give_no_channel_binding() {
        for der in [
            &[][..],
            &[0x30],
            &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
            &[0x30, 0x85, 1, 1, 1, 1, 1],
            &[0x30, 0x02, 0x30, 0x00],
            &[0x30, 0x06, 0x30, 0x00, 0x30, 0x02, 0x05, 0x00],
        ] {
            assert_eq!(tls_server_end_point(der), None, "{der:?}");
        }
        // ecdsa-with-SHA256: SHA-256 of the whole certificate.
        let cert = [
            0x30, 0x0e, 0x30, 0x00, 0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04,
            0x03, 0x02,
        ];
        let want = ring::digest::digest(&ring::digest::SHA256, &cert);
        assert_eq!(tls_server_end_point(&cert).unwrap(), want.as_ref());
    }

    #[test]
    fn verify_modes_need_a_root_certificate_file_that_holds_one() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let p = split(&format!(
            "host=h sslmode=verify-ca sslrootcert={}",
            empty.display()
        ))
        .unwrap()
        .1;
        let e = client_config(SslMode::VerifyCa, &p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no PEM certificate in the file"), "{e}");
        let missing = dir.path().join("missing.pem");
        let p = split(&format!(
            "host=h sslmode=verify-full sslrootcert={}",
            missing.display()
        ))
        .unwrap()
        .1;
        let e = client_config(SslMode::VerifyFull, &p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing.pem"), "{e}");
        // Without TLS the files are not read.
        assert!(client_config(SslMode::Disable, &p).is_ok());
    }
}
