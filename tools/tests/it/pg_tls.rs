//! PostgreSQL over TLS (libpq's `sslmode`, `sslrootcert`, `sslcert`/`sslkey`) against a real
//! server that accepts only TLS on TCP (`PG_SSL=only scripts/pg.sh`), and against the shared
//! plain server for the fallback cases.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use replay::pgconn;

use crate::replay::support::{self, rt};
use crate::util::{drkit, output, repo_root, testdata};

struct TlsServer {
    /// `postgres://drkit@127.0.0.1:PORT/drkit`
    url: String,
    port: String,
    /// The CA that signed the server and client certificates (`DIR/tls` of pg.sh).
    tls: PathBuf,
}

/// One TLS-only cluster per test binary, stopped when the binary exits.
fn server() -> &'static TlsServer {
    static S: OnceLock<TlsServer> = OnceLock::new();
    S.get_or_init(|| {
        let dir = repo_root()
            .join("target/test-pg-tls")
            .join(std::process::id().to_string());
        let url = crate::replay::support::start_cluster(&dir, &[("PG_SSL", "only")]);
        let port = url.rsplit_once(':').unwrap().1.split('/').next().unwrap();
        TlsServer {
            port: port.to_string(),
            url,
            tls: dir.join("tls"),
        }
    })
}

fn ca() -> String {
    server().tls.join("ca.pem").display().to_string()
}

/// `url` with `params` appended to its query.
fn with(url: &str, params: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{params}")
}

/// `url` naming database `db` instead.
fn on_db(url: &str, db: &str) -> String {
    let (base, _) = url.rsplit_once('/').unwrap();
    format!("{base}/{db}")
}

/// Connects through drkit's one connect function and reports whether the session is encrypted.
fn ssl_in_use(conninfo: &str) -> Result<bool, String> {
    rt().block_on(async {
        let c = pgconn::connect(conninfo).await.map_err(|e| e.to_string())?;
        let row = c
            .query_one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await
            .map_err(|e| e.to_string())?;
        Ok(row.get::<_, bool>(0))
    })
}

/// A CA of its own that signed nothing the server holds.
fn other_ca(dir: &Path) -> String {
    let (key, pem) = (dir.join("other.key"), dir.join("other.pem"));
    let st = Command::new("openssl")
        .args(["req", "-x509", "-new", "-newkey", "ec"])
        .args(["-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&pem)
        .args(["-days", "1", "-subj", "/CN=not the drkit test CA"])
        .output()
        .expect("run openssl");
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    pem.display().to_string()
}

#[test]
fn require_encrypts_without_checking_the_certificate() {
    assert_eq!(
        ssl_in_use(&with(&server().url, "sslmode=require")),
        Ok(true)
    );
}

#[test]
fn default_is_prefer_and_takes_tls_when_offered_as_does_allow() {
    assert_eq!(ssl_in_use(&server().url), Ok(true));
    // allow is treated as prefer (TLS asked for first).
    assert_eq!(ssl_in_use(&with(&server().url, "sslmode=allow")), Ok(true));
}

#[test]
fn verify_full_with_the_right_ca_in_both_forms() {
    let s = server();
    let url = with(&s.url, &format!("sslmode=verify-full&sslrootcert={}", ca()));
    assert_eq!(ssl_in_use(&url), Ok(true));
    // Key-value form, by DNS name (the certificate names localhost and 127.0.0.1).
    let kv = format!(
        "host=localhost port={} user=drkit dbname=drkit sslmode=verify-full sslrootcert='{}'",
        s.port,
        ca()
    );
    assert_eq!(ssl_in_use(&kv), Ok(true));
}

#[test]
fn verify_full_with_a_wrong_ca_names_host_and_problem() {
    let tmp = tempfile::tempdir().unwrap();
    let url = with(
        &server().url,
        &format!("sslmode=verify-full&sslrootcert={}", other_ca(tmp.path())),
    );
    let e = ssl_in_use(&url).unwrap_err();
    assert!(e.contains("TLS handshake with 127.0.0.1 failed"), "{e}");
    assert!(e.contains("not signed by a CA in sslrootcert"), "{e}");
    // require with a root certificate checks the chain too, as in libpq.
    let url = with(
        &server().url,
        &format!("sslmode=require&sslrootcert={}", other_ca(tmp.path())),
    );
    let e = ssl_in_use(&url).unwrap_err();
    assert!(e.contains("unknown issuer"), "{e}");
}

#[test]
fn verify_full_refuses_a_host_name_not_in_the_certificate_verify_ca_accepts_it() {
    let s = server();
    let kv = |mode: &str| {
        format!(
            "host=db.example hostaddr=127.0.0.1 port={} user=drkit dbname=drkit sslmode={mode} sslrootcert={}",
            s.port,
            ca()
        )
    };
    let e = ssl_in_use(&kv("verify-full")).unwrap_err();
    assert!(e.contains("TLS handshake with db.example failed"), "{e}");
    assert!(e.contains("not valid for this host name"), "{e}");
    assert_eq!(ssl_in_use(&kv("verify-ca")), Ok(true));
}

#[test]
fn disable_against_a_tls_only_server_says_so() {
    let e = ssl_in_use(&with(&server().url, "sslmode=disable")).unwrap_err();
    assert!(e.contains("no encryption"), "{e}");
    assert!(e.contains("try sslmode=require"), "{e}");
}

#[test]
fn prefer_falls_back_on_a_plain_server_and_require_refuses_it() {
    let plain = support::server_url();
    assert_eq!(ssl_in_use(&with(plain, "sslmode=prefer")), Ok(false));
    let e = ssl_in_use(&with(plain, "sslmode=require")).unwrap_err();
    assert!(e.contains("does not support SSL/TLS"), "{e}");
    assert!(e.contains("127.0.0.1"), "{e}");
}

#[test]
fn client_certificate_logs_in_the_role_it_names() {
    let s = server();
    let base = s.url.replace("drkit@", "drkit_cert@");
    let cert = s.tls.join("client.pem").display().to_string();
    let key = s.tls.join("client.key").display().to_string();
    let url = with(
        &base,
        &format!(
            "sslmode=verify-full&sslrootcert={}&sslcert={cert}&sslkey={key}",
            ca()
        ),
    );
    let who = rt().block_on(async {
        let c = pgconn::connect(&url).await.unwrap();
        let r = c.query_one("SELECT current_user::text", &[]).await.unwrap();
        r.get::<_, String>(0)
    });
    assert_eq!(who, "drkit_cert");
    let e = ssl_in_use(&with(&base, "sslmode=require")).unwrap_err();
    assert!(e.contains("requires a valid client certificate"), "{e}");
    let e = ssl_in_use(&with(&base, &format!("sslcert={cert}"))).unwrap_err();
    assert!(e.contains("sslcert given without sslkey"), "{e}");
}

/// `drkit gaps --db` over verify-full with a SCRAM password login: the report as without TLS;
/// with the wrong CA or password, exit 2 with the host and the reason, never the password.
#[test]
fn drkit_gaps_over_verify_full() {
    let s = server();
    let db = format!("tls_gaps_{}", std::process::id());
    let admin = with(&s.url, &format!("sslmode=verify-full&sslrootcert={}", ca()));
    let url = with(
        &on_db(&s.url.replace("drkit@", "drkit_pw:hunter2@"), &db),
        &format!("sslmode=verify-full&sslrootcert={}", ca()),
    );
    rt().block_on(async {
        let c = pgconn::connect(&admin).await.unwrap();
        c.batch_execute(&format!("CREATE DATABASE {db} OWNER drkit_pw"))
            .await
            .unwrap();
        let c = pgconn::connect(&url).await.unwrap();
        c.batch_execute(
            "CREATE TABLE t (ts timestamptz NOT NULL, asset text NOT NULL);
             INSERT INTO t SELECT ts, 'a1' FROM generate_series('2026-01-15 08:00:00+00'::timestamptz,
               '2026-01-15 08:59:00+00', interval '1 minute') ts
               WHERE ts NOT BETWEEN '2026-01-15 08:20:00+00' AND '2026-01-15 08:30:00+00';",
        )
        .await
        .unwrap();
    });
    let gaps = |url: &str| {
        output(
            drkit()
                .args(["gaps", "--db", url, "--table", "t", "--time-column", "ts"])
                .args(["--by", "asset", "--since", "2026-01-15T08:00:00Z"])
                .args(["--until", "2026-01-15T09:00:00Z", "--format", "json"])
                .output()
                .unwrap(),
        )
    };
    let run = gaps(&url);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(run.summary()["gaps"], 1, "{}", run.stdout);

    // The same login with channel binding demanded: the server checks the certificate hash
    // drkit sends (SCRAM-SHA-256-PLUS), so a wrong hash fails the login.
    let run = gaps(&with(&url, "channel_binding=require"));
    assert_eq!(run.code, 1, "{}", run.stderr);

    let tmp = tempfile::tempdir().unwrap();
    let wrong = url.replace(&ca(), &other_ca(tmp.path()));
    let run = gaps(&wrong);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("TLS handshake with 127.0.0.1 failed"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("hunter2"), "{}", run.stderr);

    let run = gaps(&url.replace("hunter2", "hunter3"));
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("password authentication failed for user \"drkit_pw\""),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("hunter3"), "{}", run.stderr);
}

/// `drkit replay` from libpq's environment variables, TLS ones included (PGSSLMODE,
/// PGSSLROOTCERT): the replay sink connects through the same function.
#[test]
fn drkit_replay_from_pg_environment_over_verify_full() {
    let s = server();
    let db = format!("tls_replay_{}", std::process::id());
    let admin = with(&s.url, "sslmode=require");
    rt().block_on(async {
        let c = pgconn::connect(&admin).await.unwrap();
        c.batch_execute(&format!("CREATE DATABASE {db}"))
            .await
            .unwrap();
    });
    let d = testdata().join("logs/snappy-0");
    let replay = |mode: &str| {
        drkit()
            .args(["replay", "--format", "json", "--create-table", "--segments"])
            .arg(&d)
            .args(["--mapping", "ms5-telemetry"])
            .env("PGHOST", "localhost")
            .env("PGPORT", &s.port)
            .env("PGUSER", "drkit")
            .env("PGDATABASE", &db)
            .env("PGSSLMODE", mode)
            .env("PGSSLROOTCERT", ca())
            .output()
            .unwrap()
    };
    let out = replay("disable");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no encryption"), "{err}");
    let out = replay("verify-full");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = rt().block_on(async {
        let c = pgconn::connect(&with(&on_db(&s.url, &db), "sslmode=require"))
            .await
            .unwrap();
        let r = c
            .query_one("SELECT count(*) FROM telemetry", &[])
            .await
            .unwrap();
        r.get::<_, i64>(0)
    });
    assert!(rows > 100, "{rows} rows");
}
