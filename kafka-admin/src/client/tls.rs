//! TLS for the admin client, configured with librdkafka's `ssl.*` names so one `-X` list serves
//! both `drkit offsets` (librdkafka) and the admin client.
//!
//! rustls rather than OpenSSL: it needs no C library or headers at build time, its blocking
//! [`StreamOwned`] fits this client's one-request-at-a-time `TcpStream` (socket timeouts keep
//! working underneath it), and certificate checks are webpki's. ring is the crypto provider
//! because SCRAM needs its HMAC/PBKDF2 anyway (aws-lc-rs would add a C/cmake build).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use replay::tls;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConnection, RootCertStore, StreamOwned};

/// The `ssl.*` settings, as given (files are read by [`TlsSettings::build`]).
#[derive(Debug, Clone, Default)]
pub struct TlsSettings {
    /// `ssl.ca.location`: PEM file (or directory of PEM files) of trusted CAs; none (or
    /// librdkafka's `probe`) = the system's roots.
    pub ca: Option<PathBuf>,
    /// `ssl.certificate.location` and `ssl.key.location`: a client certificate (mutual TLS).
    pub certificate: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// `ssl.endpoint.identification.algorithm`: `https` (default) checks the broker's host
    /// name against its certificate, `none` does not.
    pub verify_hostname: bool,
    /// `enable.ssl.certificate.verification`: false accepts any certificate (librdkafka's
    /// escape hatch for test clusters).
    pub verify_certificate: bool,
}

impl TlsSettings {
    pub fn new() -> TlsSettings {
        TlsSettings {
            verify_hostname: true,
            verify_certificate: true,
            ..TlsSettings::default()
        }
    }

    /// Reads the files and builds the rustls configuration: every file problem is reported
    /// here, with the setting and path, before any connection is tried.
    pub fn build(&self) -> Result<Arc<rustls::ClientConfig>, String> {
        let roots = match self.ca.as_ref().filter(|p| p.as_os_str() != "probe") {
            Some(path) => {
                let certs = if path.is_dir() {
                    read_cert_dir(path)?
                } else {
                    read_certs("ssl.ca.location", path)?
                };
                let mut roots = RootCertStore::empty();
                for c in certs {
                    roots
                        .add(c)
                        .map_err(|e| format!("-X ssl.ca.location={}: {e}", path.display()))?;
                }
                roots
            }
            None => {
                tls::system_roots().map_err(|e| format!("{e}; pass -X ssl.ca.location=FILE.pem"))?
            }
        };
        let check = match (self.verify_certificate, self.verify_hostname) {
            (false, _) => tls::Check::Nothing,
            (true, false) => tls::Check::Chain,
            (true, true) => tls::Check::ChainAndName,
        };
        let verifier =
            tls::verifier(Some(roots), check).map_err(|e| format!("-X ssl.ca.location: {e}"))?;
        let builder = rustls::ClientConfig::builder_with_provider(tls::provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let config = match (&self.certificate, &self.key) {
            (None, None) => builder.with_no_client_auth(),
            (Some(cert), Some(key)) => {
                let chain = read_certs("ssl.certificate.location", cert)?;
                let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                    format!(
                        "-X ssl.key.location={}: no readable unencrypted PEM private key: {e}",
                        key.display()
                    )
                })?;
                builder
                    .with_client_auth_cert(chain, key_der)
                    .map_err(|e| format!("-X ssl.certificate.location/ssl.key.location: {e}"))?
            }
            _ => {
                return Err(
                    "-X ssl.certificate.location and ssl.key.location go together (mutual TLS)"
                        .into(),
                )
            }
        };
        Ok(Arc::new(config))
    }
}

fn read_certs(setting: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    tls::pem_certs(path).map_err(|e| format!("-X {setting}={e}"))
}

/// Every certificate in the directory's files (as OpenSSL's `-CApath` users expect; files
/// without a PEM certificate are skipped).
fn read_cert_dir(dir: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("-X ssl.ca.location={}: {e}", dir.display()))?;
    let mut certs = vec![];
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_file() {
            if let Ok(found) = tls::pem_certs(&path) {
                certs.extend(found);
            }
        }
    }
    if certs.is_empty() {
        return Err(format!(
            "-X ssl.ca.location={}: no PEM certificate in the directory",
            dir.display()
        ));
    }
    Ok(certs)
}

/// A connection's byte stream: the socket itself, or TLS over it.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Stream {
    /// Runs the TLS handshake to completion now, so a certificate problem is reported as one
    /// (not as a failed first request). `host` is the name the certificate must carry.
    pub fn tls(
        config: &Arc<rustls::ClientConfig>,
        host: &str,
        mut sock: TcpStream,
    ) -> Result<Stream, std::io::Error> {
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let mut conn = ClientConnection::new(config.clone(), name)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        while conn.is_handshaking() {
            conn.complete_io(&mut sock)?;
        }
        Ok(Stream::Tls(Box::new(StreamOwned::new(conn, sock))))
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}
