//! A small HTTP/1.1 client for checks and webhooks: one request per connection
//! (`Connection: close`), status line and headers parsed by `httparse`, the body framed by
//! `Content-Length`, chunked transfer coding, or the end of the connection; `https://` through
//! rustls, verified against the system's CA certificates or a PEM file. Bodies are read up to
//! [`BODY_LIMIT`] bytes, enough for any health endpoint; a longer body is matched on its first part.

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use replay::tls;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Bytes of body kept for matching.
pub const BODY_LIMIT: usize = 1 << 20;
const HEADER_LIMIT: usize = 64 << 10;

/// An `http://` or `https://` URL: host, port, path and query.
#[derive(Debug, Clone)]
pub struct Url {
    pub host: String,
    pub port: u16,
    /// Path and query, at least `/`.
    pub path: String,
    /// For `https://`: how the server's certificate is verified.
    pub tls: Option<Arc<ClientConfig>>,
}

/// The system's CA certificates, loaded once.
fn system_roots() -> Result<Arc<ClientConfig>, String> {
    static ROOTS: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let store = tls::system_roots().map_err(|e| format!("{e}: give ca_file"))?;
            client_config(store)
        })
        .clone()
}

/// TLS verified against the CA certificates of a PEM file (a plant's own CA).
pub fn roots_from_pem(path: &Path) -> Result<Arc<ClientConfig>, String> {
    client_config(tls::pem_roots(path)?)
}

fn client_config(store: RootCertStore) -> Result<Arc<ClientConfig>, String> {
    // The provider is named, not taken from crate features: no process-wide default to race on.
    let cfg = ClientConfig::builder_with_provider(tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(store)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

impl Url {
    /// Parses a URL; an `https://` one is verified against the system's CA certificates.
    pub fn parse(url: &str) -> Result<Url, String> {
        Url::parse_with(url, None)
    }

    /// Parses a URL; an `https://` one is verified against the CA certificates in `ca_file`
    /// (PEM) if given, else the system's.
    pub fn parse_with(url: &str, ca_file: Option<&Path>) -> Result<Url, String> {
        let (rest, tls, default_port) = if let Some(r) = url.strip_prefix("http://") {
            (r, false, 80)
        } else if let Some(r) = url.strip_prefix("https://") {
            (r, true, 443)
        } else {
            return Err(format!("{url:?}: expected an http:// or https:// URL"));
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        if authority.contains('@') {
            return Err(format!(
                "{}: credentials in the URL are not supported",
                replay::gaps_sql::redact_url(url)
            ));
        }
        let path = path.split('#').next().unwrap_or("");
        let path = if path.is_empty() {
            "/".to_string()
        } else if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_string()
        };
        let (host, port) = if authority.ends_with(']') || !authority.contains(':') {
            (authority.to_string(), default_port)
        } else {
            let (h, p) = authority.rsplit_once(':').unwrap_or((authority, "80"));
            let port = p
                .parse()
                .map_err(|_| format!("{url:?}: {p:?} is not a port"))?;
            (h.to_string(), port)
        };
        if host.is_empty() {
            return Err(format!("{url:?}: no host"));
        }
        if path
            .chars()
            .any(|c| c.is_ascii_whitespace() || c.is_ascii_control())
        {
            return Err(format!("{url:?}: spaces or control characters in the path"));
        }
        let tls = match (tls, ca_file) {
            (false, None) => None,
            (false, Some(_)) => return Err("a CA file is only for https:// URLs".into()),
            (true, None) => Some(system_roots()?),
            (true, Some(p)) => Some(roots_from_pem(p)?),
        };
        Ok(Url {
            host,
            port,
            path,
            tls,
        })
    }

    fn bare_host(&self) -> &str {
        self.host.trim_start_matches('[').trim_end_matches(']')
    }

    fn connect_addr(&self) -> String {
        let h = self.bare_host();
        if h.contains(':') {
            format!("[{h}]:{}", self.port)
        } else {
            format!("{h}:{}", self.port)
        }
    }

    fn host_header(&self) -> String {
        if self.port == if self.tls.is_some() { 443 } else { 80 } {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
    /// The body was longer than [`BODY_LIMIT`] and was cut.
    pub truncated: bool,
}

/// Sends one request; the caller bounds the time (`tokio::time::timeout`).
pub async fn request(
    url: &Url,
    method: &str,
    body: Option<(&str, &[u8])>,
) -> Result<Response, String> {
    let tcp = TcpStream::connect(url.connect_addr())
        .await
        .map_err(|e| format!("connect {}: {e}", url.connect_addr()))?;
    let mut req = format!(
        "{method} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: drkit-health\r\nAccept: */*\r\nConnection: close\r\n",
        url.path,
        url.host_header()
    );
    if let Some((ctype, b)) = body {
        req.push_str(&format!(
            "Content-Type: {ctype}\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    if let Some((_, b)) = body {
        bytes.extend_from_slice(b);
    }
    let head = method == "HEAD";
    match &url.tls {
        None => exchange(tcp, &bytes, head).await,
        Some(cfg) => {
            let name = ServerName::try_from(url.bare_host().to_string())
                .map_err(|e| format!("TLS server name {:?}: {e}", url.host))?;
            let stream = tokio_rustls::TlsConnector::from(cfg.clone())
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS handshake: {e}"))?;
            exchange(stream, &bytes, head).await
        }
    }
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    request: &[u8],
    head: bool,
) -> Result<Response, String> {
    stream
        .write_all(request)
        .await
        .map_err(|e| format!("send request: {e}"))?;
    stream
        .flush()
        .await
        .map_err(|e| format!("send request: {e}"))?;
    read_response(&mut stream, head).await
}

async fn read_response<S: AsyncRead + Unpin>(
    stream: &mut S,
    head: bool,
) -> Result<Response, String> {
    let mut buf = Vec::with_capacity(8192);
    let mut chunk = [0u8; 8192];
    let mut eof = false;
    loop {
        match parse(&buf, eof, head)? {
            Some(r) => return Ok(r),
            None if eof => return Err("connection closed before the response was complete".into()),
            None => {}
        }
        let n = match stream.read(&mut chunk).await {
            Ok(n) => n,
            // A TLS peer that closes without close_notify (common for HTTP/1.0 servers): the
            // end of a close-delimited body; a cut Content-Length or chunked body is still caught.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
            Err(e) => return Err(format!("read response: {e}")),
        };
        if n == 0 {
            eof = true;
        } else {
            buf.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
        }
    }
}

/// A complete response from `buf`, `None` when more bytes are needed.
pub fn parse(buf: &[u8], eof: bool, head: bool) -> Result<Option<Response>, String> {
    let mut offset = 0;
    loop {
        let rest = buf.get(offset..).unwrap_or(&[]);
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut resp = httparse::Response::new(&mut headers);
        let hlen = match resp.parse(rest) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => {
                if rest.len() > HEADER_LIMIT {
                    return Err(format!("response headers longer than {HEADER_LIMIT} bytes"));
                }
                return Ok(None);
            }
            Err(e) => return Err(format!("malformed HTTP response: {e}")),
        };
        let status = resp.code.unwrap_or(0);
        if (100..200).contains(&status) && status != 101 {
            // Interim responses (100 Continue, 103 Early Hints): the real one follows.
            offset += hlen;
            continue;
        }
        let body = rest.get(hlen..).unwrap_or(&[]);
        let header = |name: &str| {
            resp.headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| String::from_utf8_lossy(h.value).trim().to_ascii_lowercase())
        };
        if head || status == 204 || status == 304 {
            return Ok(Some(Response {
                status,
                body: Vec::new(),
                truncated: false,
            }));
        }
        if let Some(te) = header("transfer-encoding") {
            if te.rsplit(',').next().map(str::trim) == Some("chunked") {
                return Ok(dechunk(body)?.map(|(body, truncated)| Response {
                    status,
                    body,
                    truncated,
                }));
            }
            // Any other final coding: the body runs to the end of the connection (RFC 9112 6.3).
            return Ok(until_close(status, body, eof));
        }
        if let Some(cl) = header("content-length") {
            let len: usize = cl
                .parse()
                .map_err(|_| format!("bad Content-Length {cl:?}"))?;
            let want = len.min(BODY_LIMIT);
            if body.len() >= want {
                return Ok(Some(Response {
                    status,
                    body: body.get(..want).unwrap_or(&[]).to_vec(),
                    truncated: len > want,
                }));
            }
            if eof {
                return Err(format!(
                    "body cut short: {} of {len} bytes (Content-Length)",
                    body.len()
                ));
            }
            return Ok(None);
        }
        return Ok(until_close(status, body, eof));
    }
}

fn until_close(status: u16, body: &[u8], eof: bool) -> Option<Response> {
    if body.len() >= BODY_LIMIT {
        return Some(Response {
            status,
            body: body.get(..BODY_LIMIT).unwrap_or(&[]).to_vec(),
            truncated: true,
        });
    }
    eof.then(|| Response {
        status,
        body: body.to_vec(),
        truncated: false,
    })
}

/// Decodes a chunked body: `Some((body, truncated))` once the last chunk (and trailers) arrived
/// or [`BODY_LIMIT`] bytes are in hand.
fn dechunk(mut b: &[u8]) -> Result<Option<(Vec<u8>, bool)>, String> {
    let mut out = Vec::new();
    loop {
        if out.len() >= BODY_LIMIT {
            out.truncate(BODY_LIMIT);
            return Ok(Some((out, true)));
        }
        let Some(eol) = find_crlf(b) else {
            return Ok(None);
        };
        let line = String::from_utf8_lossy(b.get(..eol).unwrap_or(&[])).into_owned();
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        b = b.get(eol + 2..).unwrap_or(&[]);
        if size == 0 {
            // Trailers, then an empty line.
            loop {
                let Some(eol) = find_crlf(b) else {
                    return Ok(None);
                };
                b = b.get(eol + 2..).unwrap_or(&[]);
                if eol == 0 {
                    return Ok(Some((out, false)));
                }
            }
        }
        let Some(data) = b.get(..size) else {
            let have = b.len().min(BODY_LIMIT.saturating_sub(out.len()));
            if out.len() + have >= BODY_LIMIT {
                out.extend_from_slice(b.get(..have).unwrap_or(&[]));
                return Ok(Some((out, true)));
            }
            return Ok(None);
        };
        out.extend_from_slice(data);
        b = b.get(size..).unwrap_or(&[]);
        match b.get(..2) {
            Some(b"\r\n") => b = b.get(2..).unwrap_or(&[]),
            Some(_) => return Err("chunk not followed by CRLF".into()),
            None => return Ok(None),
        }
    }
}

fn find_crlf(b: &[u8]) -> Option<usize> {
    b.windows(2).position(|w| w == b"\r\n")
}

/// [`request`] with a deadline.
pub async fn request_within(
    url: &Url,
    method: &str,
    body: Option<(&str, &[u8])>,
    timeout: Duration,
) -> Result<Response, String> {
    match tokio::time::timeout(timeout, request(url, method, body)).await {
        Ok(r) => r,
        Err(_) => Err(format!("timed out after {} ms", timeout.as_millis())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = Url::parse("http://127.0.0.1:8080/health?x=1").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("127.0.0.1", 8080, "/health?x=1")
        );
        let u = Url::parse("http://example.org").unwrap();
        assert_eq!((u.port, u.path.as_str()), (80, "/"));
        let missing = Path::new("/nonexistent/ca.pem");
        assert!(Url::parse_with("https://x/", Some(missing))
            .unwrap_err()
            .contains("/nonexistent/ca.pem"));
        assert!(Url::parse_with("http://x/", Some(missing))
            .unwrap_err()
            .contains("only for https"));
        if let Ok(u) = Url::parse("https://x/") {
            // Where the machine has system CA certificates.
            assert_eq!((u.port, u.host_header().as_str()), (443, "x"));
        }
        assert!(!Url::parse("http://u:pw@x/").unwrap_err().contains("pw"));
        assert!(Url::parse("ftp://x/").is_err());
        assert!(Url::parse("http://x:99999/").is_err());
    }

    #[test]
    fn content_length_chunked_and_close() {
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        for cut in 0..r.len() {
            assert_eq!(parse(&r[..cut], false, false).unwrap(), None, "{cut}");
        }
        assert_eq!(parse(r, false, false).unwrap().unwrap().body, b"hello");
        assert!(parse(&r[..r.len() - 1], true, false).is_err());

        let c = b"HTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\nWiki\r\n6\r\npedia \r\n0\r\nT: 1\r\n\r\n";
        for cut in 0..c.len() {
            assert_eq!(parse(&c[..cut], false, false).unwrap(), None, "{cut}");
        }
        let resp = parse(c, false, false).unwrap().unwrap();
        assert_eq!(
            (resp.status, resp.body.as_slice()),
            (503, &b"Wikipedia "[..])
        );

        let e = b"HTTP/1.0 200 OK\r\n\r\nuntil close";
        assert_eq!(parse(e, false, false).unwrap(), None);
        assert_eq!(parse(e, true, false).unwrap().unwrap().body, b"until close");

        let i = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n";
        assert_eq!(parse(i, false, false).unwrap().unwrap().status, 204);

        assert!(parse(b"SMTP ready\r\n\r\n", false, false).is_err());
        assert!(parse(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            false,
            false
        )
        .is_err());
    }
}
