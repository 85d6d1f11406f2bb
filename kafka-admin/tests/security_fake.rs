//! TLS and SASL of the admin client against the PROTOCOL FAKE (support/fake_broker.rs with
//! support/fake_sasl.rs): no TLS/SASL-capable broker runs on the test machines (see the fake's
//! module doc for what Tansu 0.1.2 lacks). The client's TLS is real rustls against a real rustls
//! server with the committed test CA (tests/fixtures/tls); SCRAM is checked by an independent
//! server implementation that is itself tested against RFC 7677.

#[path = "support/fake_broker.rs"]
mod fake_broker;

use fake_broker::fake_sasl::{FakeMechanism, FakeSasl};
use fake_broker::{tls_fixture, FakeCluster, FakePartition, FakeState, FakeTls};
use kafka_admin::client::{Admin, ClientConfig, ClientError};
use kafka_admin::topics;
use kafka_protocol::messages::ApiKey;
use replay::kafka::Settings;

const PASSWORD: &str = "correct-horse-battery";

fn state(sasl: Option<FakeSasl>) -> FakeState {
    let mut st = FakeState::cluster(&[1, 2]).topic(
        "t",
        vec![
            FakePartition::healthy(&[1, 2]),
            FakePartition::healthy(&[2, 1]),
        ],
    );
    st.sasl = sasl;
    st
}

fn tls(host: &'static str) -> FakeTls {
    FakeTls {
        host,
        client_auth: false,
    }
}

fn settings(kv: &[(&str, &str)]) -> Settings {
    Settings(
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

fn fixture(name: &str) -> String {
    tls_fixture(name).display().to_string()
}

fn connect(fake: &FakeCluster, kv: &[(&str, &str)]) -> Result<Admin, ClientError> {
    let (cfg, _) = ClientConfig::new(&fake.addr, &settings(kv))?;
    Admin::connect(cfg)
}

fn sasl_ssl(mechanism: &str, password: &str, ca: &str) -> Vec<(String, String)> {
    vec![
        ("security.protocol".into(), "SASL_SSL".into()),
        ("ssl.ca.location".into(), fixture(ca)),
        ("sasl.mechanism".into(), mechanism.into()),
        ("sasl.username".into(), "alice".into()),
        ("sasl.password".into(), password.into()),
    ]
}

fn pairs(v: &[(String, String)]) -> Vec<(&str, &str)> {
    v.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

fn scram512() -> Option<FakeSasl> {
    Some(FakeSasl::new(FakeMechanism::Sha512, "alice", PASSWORD))
}

#[test]
fn sasl_ssl_with_scram_sha_512_describes_topics() {
    let fake = FakeCluster::start_tls(state(scram512()), tls("localhost"));
    let kv = sasl_ssl("SCRAM-SHA-512", PASSWORD, "ca.pem");
    let mut a = connect(&fake, &pairs(&kv)).unwrap();
    let parts = topics::describe(&mut a, &topics::DescribeOptions::default()).unwrap();
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[1].replicas, vec![2, 1]);
    // Two rounds per connection (bootstrap, then the partition leaders' connections).
    let rounds = fake.with(|s| s.counts[&(ApiKey::SaslAuthenticate as i16)]);
    assert!(rounds >= 2 && rounds.is_multiple_of(2), "{rounds}");
}

#[test]
fn scram_sha_256_over_sasl_plaintext() {
    let fake = FakeCluster::start(state(Some(FakeSasl::new(
        FakeMechanism::Sha256,
        "alice",
        PASSWORD,
    ))));
    let mut a = connect(
        &fake,
        &[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanisms", "SCRAM-SHA-256"),
            ("sasl.username", "alice"),
            ("sasl.password", PASSWORD),
        ],
    )
    .unwrap();
    assert_eq!(a.metadata(None).unwrap().topics.len(), 1);
}

#[test]
fn a_wrong_scram_password_names_the_mechanism_and_the_brokers_reason_never_the_password() {
    let fake = FakeCluster::start_tls(state(scram512()), tls("localhost"));
    let kv = sasl_ssl("SCRAM-SHA-512", "wrong-password-123", "ca.pem");
    let e = connect(&fake, &pairs(&kv)).err().unwrap();
    assert!(matches!(e, ClientError::Auth { .. }), "{e}");
    let text = e.to_string();
    assert!(
        text.contains("SASL SCRAM-SHA-512 authentication failed"),
        "{text}"
    );
    assert!(text.contains("invalid credentials"), "{text}");
    assert!(text.contains(&fake.addr), "{text}");
    let debug = format!("{e:?}");
    for shown in [&text, &debug] {
        assert!(!shown.contains("wrong-password-123") && !shown.contains(PASSWORD));
    }
}

#[test]
fn plain_over_sasl_plaintext_and_its_failure() {
    let fake = FakeCluster::start(state(Some(FakeSasl::new(
        FakeMechanism::Plain,
        "alice",
        PASSWORD,
    ))));
    let kv = |pw: &'static str| {
        vec![
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "PLAIN"),
            ("sasl.username", "alice"),
            ("sasl.password", pw),
        ]
    };
    let mut a = connect(&fake, &kv(PASSWORD)).unwrap();
    assert_eq!(a.metadata(None).unwrap().topics.len(), 1);
    let e = connect(&fake, &kv("nope-nope")).err().unwrap().to_string();
    assert!(e.contains("SASL PLAIN authentication failed"), "{e}");
    assert!(
        e.contains("Invalid username or password") && !e.contains("nope-nope"),
        "{e}"
    );
}

/// Without SASL the fake, like Kafka, hangs up on anything but ApiVersions: the client's error
/// says the connection was closed instead of hanging or misreporting.
#[test]
fn plaintext_against_a_sasl_listener_is_closed_not_hung() {
    let fake = FakeCluster::start(state(scram512()));
    let e = connect(&fake, &[]).err().unwrap();
    assert!(matches!(e, ClientError::Closed { .. }), "{e}");
    assert!(e.to_string().contains("-X security.protocol"), "{e}");
}

#[test]
fn a_mechanism_the_broker_does_not_enable_lists_the_enabled_ones() {
    let fake = FakeCluster::start_tls(state(scram512()), tls("localhost"));
    let kv = sasl_ssl("SCRAM-SHA-256", PASSWORD, "ca.pem");
    let e = connect(&fake, &pairs(&kv)).err().unwrap().to_string();
    assert!(
        e.contains("SASL SCRAM-SHA-256 authentication failed"),
        "{e}"
    );
    assert!(e.contains("enabled: SCRAM-SHA-512"), "{e}");

    let kv = sasl_ssl("OAUTHBEARER", PASSWORD, "ca.pem");
    let e = connect(&fake, &pairs(&kv)).err().unwrap();
    assert!(matches!(e, ClientError::Config(_)), "{e}");
    assert!(
        e.to_string().contains("OAUTHBEARER is not supported"),
        "{e}"
    );
}

#[test]
fn a_certificate_from_another_ca_is_a_tls_error_unless_verification_is_off() {
    let fake = FakeCluster::start_tls(state(None), tls("localhost"));
    let ssl = |ca: &str| {
        vec![
            ("security.protocol".to_string(), "SSL".to_string()),
            ("ssl.ca.location".to_string(), fixture(ca)),
        ]
    };
    let e = connect(&fake, &pairs(&ssl("other-ca.pem"))).err().unwrap();
    assert!(matches!(e, ClientError::Tls { .. }), "{e}");
    let text = e.to_string();
    assert!(text.contains("TLS handshake failed"), "{text}");
    assert!(
        text.contains("UnknownIssuer") && text.contains("ssl.ca.location"),
        "{text}"
    );

    let mut kv = ssl("other-ca.pem");
    kv.push(("enable.ssl.certificate.verification".into(), "false".into()));
    assert!(connect(&fake, &pairs(&kv)).is_ok());
    assert!(connect(&fake, &pairs(&ssl("ca.pem"))).is_ok());

    // Without ssl.ca.location the system's roots are trusted, and they do not know the test CA.
    let e = connect(&fake, &[("security.protocol", "SSL")])
        .err()
        .unwrap();
    assert!(
        matches!(&e, ClientError::Tls { reason, .. } if reason.contains("UnknownIssuer"))
            || matches!(&e, ClientError::Config(m) if m.contains("no system CA certificates")),
        "{e}"
    );

    // A directory of CA files (OpenSSL's CApath) holding the right CA among others.
    let dir = tempfile::tempdir().unwrap();
    for f in ["ca.pem", "other-ca.pem"] {
        std::fs::copy(tls_fixture(f), dir.path().join(f)).unwrap();
    }
    std::fs::write(dir.path().join("README"), "not a certificate").unwrap();
    let ca_dir = dir.path().display().to_string();
    let kv = [
        ("security.protocol", "SSL"),
        ("ssl.ca.location", ca_dir.as_str()),
    ];
    assert!(connect(&fake, &kv).is_ok());
    std::fs::remove_file(dir.path().join("ca.pem")).unwrap();
    let e = connect(&fake, &kv).err().unwrap().to_string();
    assert!(e.contains("UnknownIssuer"), "{e}");
}

/// The certificate names `localhost`; the fake is reached (and advertises itself) as 127.0.0.1.
#[test]
fn a_host_name_mismatch_fails_unless_endpoint_identification_is_none() {
    let fake = FakeCluster::start_tls(state(scram512()), tls("127.0.0.1"));
    let mut kv = sasl_ssl("SCRAM-SHA-512", PASSWORD, "ca.pem");
    let e = connect(&fake, &pairs(&kv)).err().unwrap();
    assert!(matches!(e, ClientError::Tls { .. }), "{e}");
    assert!(
        e.to_string()
            .contains("ssl.endpoint.identification.algorithm=none"),
        "{e}"
    );
    kv.push((
        "ssl.endpoint.identification.algorithm".into(),
        "none".into(),
    ));
    let mut a = connect(&fake, &pairs(&kv)).unwrap();
    assert_eq!(
        topics::describe(&mut a, &topics::DescribeOptions::default())
            .unwrap()
            .len(),
        2
    );
    // The CA is still checked with host names off.
    let mut kv = sasl_ssl("SCRAM-SHA-512", PASSWORD, "other-ca.pem");
    kv.push((
        "ssl.endpoint.identification.algorithm".into(),
        "none".into(),
    ));
    let e = connect(&fake, &pairs(&kv)).err().unwrap().to_string();
    assert!(e.contains("UnknownIssuer"), "{e}");
}

#[test]
fn mutual_tls_presents_the_client_certificate() {
    let fake = FakeCluster::start_tls(
        state(None),
        FakeTls {
            host: "localhost",
            client_auth: true,
        },
    );
    let ca = fixture("ca.pem");
    let (cert, key) = (fixture("client.pem"), fixture("client.key"));
    let base = [
        ("security.protocol", "SSL"),
        ("ssl.ca.location", ca.as_str()),
    ];
    // Without a client certificate the server ends the handshake (TLS 1.3 reports it on first
    // use, so the failure may surface from the first request).
    assert!(connect(&fake, &base).is_err());
    let mut kv = base.to_vec();
    kv.push(("ssl.certificate.location", cert.as_str()));
    kv.push(("ssl.key.location", key.as_str()));
    let mut a = connect(&fake, &kv).unwrap();
    assert_eq!(a.metadata(None).unwrap().topics.len(), 1);
}

#[test]
fn tls_against_a_plaintext_listener_is_a_clear_error() {
    let fake = FakeCluster::start(state(None));
    let ca = fixture("ca.pem");
    let e = connect(
        &fake,
        &[
            ("security.protocol", "SSL"),
            ("ssl.ca.location", ca.as_str()),
        ],
    )
    .err()
    .unwrap();
    assert!(matches!(e, ClientError::Tls { .. }), "{e}");
    assert!(e.to_string().contains("is this a TLS listener?"), "{e}");
}

/// KIP-368: the broker grants a session lifetime and closes connections that outlive it. The
/// client replaces such a connection before using it, so an idle wait (a batch of a long
/// reassignment) does not end in a closed connection.
#[test]
fn an_expired_sasl_session_is_renewed_not_failed() {
    let mut sasl = FakeSasl::new(FakeMechanism::Sha512, "alice", PASSWORD);
    sasl.session_lifetime_ms = 1000;
    let fake = FakeCluster::start_tls(state(Some(sasl)), tls("localhost"));
    let kv = sasl_ssl("SCRAM-SHA-512", PASSWORD, "ca.pem");
    let mut a = connect(&fake, &pairs(&kv)).unwrap();
    let handshakes = || fake.with(|s| s.counts[&(ApiKey::SaslHandshake as i16)]);
    assert_eq!(handshakes(), 1);
    std::thread::sleep(std::time::Duration::from_millis(1200));
    assert_eq!(a.metadata(None).unwrap().topics.len(), 1);
    assert_eq!(handshakes(), 2);
}

/// PLAINTEXT towards a TLS listener: whatever the listener does with the bytes (a TLS alert read
/// as a length, or a closed connection), the error points at `security.protocol`.
#[test]
fn plaintext_against_a_tls_listener_points_at_security_protocol() {
    let fake = FakeCluster::start_tls(state(None), tls("localhost"));
    let e = connect(&fake, &[]).err().unwrap();
    assert!(
        matches!(e, ClientError::Protocol { .. } | ClientError::Closed { .. }),
        "{e}"
    );
    assert!(e.to_string().contains("-X security.protocol"), "{e}");
}
