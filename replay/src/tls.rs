//! The rustls pieces every TLS client of drkit shares (PostgreSQL here, the Kafka admin client,
//! `drkit health`'s HTTPS): one crypto provider, root certificates from a PEM file or the
//! system, and one certificate verifier with the three strengths the clients' settings name —
//! libpq's `require` / `verify-ca` / `verify-full`, librdkafka's
//! `enable.ssl.certificate.verification` and `ssl.endpoint.identification.algorithm`.
//!
//! ring is the provider everywhere: aws-lc-rs (rustls' default) needs cmake and a C build on a
//! fresh machine, and one named provider means no process-wide default to race on.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// The crypto provider of every drkit TLS client.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Every certificate of a PEM file; errors name the file.
pub fn pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{}: no PEM certificate in the file",
            path.display()
        ));
    }
    Ok(certs)
}

/// The CA certificates of a PEM file as trust roots.
pub fn pem_roots(path: &Path) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(pem_certs(path)?);
    if added == 0 {
        return Err(format!(
            "{}: no usable CA certificate in the file",
            path.display()
        ));
    }
    Ok(roots)
}

/// The system's CA certificates (unreadable individual ones skipped, as the system's own tools
/// do); an error when none at all.
pub fn system_roots() -> Result<RootCertStore, String> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let why = found
            .errors
            .first()
            .map(|e| format!(": {e}"))
            .unwrap_or_default();
        return Err(format!("no system CA certificates found{why}"));
    }
    Ok(roots)
}

/// How much of the server's certificate is checked. The handshake signatures are checked in
/// every case: they prove the server holds the key of the certificate it sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Encrypted, server not authenticated (libpq `require` without a root certificate;
    /// librdkafka `enable.ssl.certificate.verification=false`).
    Nothing,
    /// The chain up to the roots, not the host name (libpq `verify-ca`; librdkafka
    /// `ssl.endpoint.identification.algorithm=none`).
    Chain,
    /// The chain and the host name (libpq `verify-full`; librdkafka's default).
    ChainAndName,
}

/// A verifier checking `check` against `roots` (`roots` is only read for `Chain` and
/// `ChainAndName`, and required by them).
pub fn verifier(
    roots: Option<RootCertStore>,
    check: Check,
) -> Result<Arc<dyn ServerCertVerifier>, String> {
    let provider = provider();
    let webpki = match (check, roots) {
        (Check::Nothing, _) => None,
        (_, None) => return Err("certificate verification needs root certificates".into()),
        (_, Some(roots)) => Some(
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| format!("TLS setup: {e}"))?,
        ),
    };
    Ok(match (check, webpki) {
        (Check::ChainAndName, Some(webpki)) => webpki,
        (_, chain) => Arc::new(Relaxed { chain, provider }),
    })
}

/// The weaker strengths: no certificate check at all (`chain` = None), or webpki's chain check
/// with host-name errors forgiven. webpki checks the chain before the name, so a name error
/// means the chain was good.
#[derive(Debug)]
struct Relaxed {
    chain: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Relaxed {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(webpki) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
