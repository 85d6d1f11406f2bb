//! The one PostgreSQL fixture the replay and gaps tests share: the server `scripts/test.sh`
//! started (`DRKIT_PG_URL`), or one started here once per test binary with `scripts/pg.sh`.
//! Every test gets a database of its own, so tests run in parallel without seeing each other.

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

static SERVER: OnceLock<String> = OnceLock::new();
static NEXT: AtomicU32 = AtomicU32::new(0);

/// URL of the shared server's maintenance database.
pub fn server_url() -> &'static str {
    SERVER.get_or_init(|| {
        if let Ok(url) = std::env::var("DRKIT_PG_URL") {
            return url;
        }
        let dir = repo_root()
            .join("target/test-pg")
            .join(std::process::id().to_string());
        start_cluster(&dir, &[])
    })
}

fn repo_root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Starts a throwaway cluster in `dir` with `scripts/pg.sh` (extra environment such as
/// `PG_SSL` or `PG_ARCHIVE` in `env`), stopped when this test process exits; returns its URL.
pub fn start_cluster(dir: &Path, env: &[(&str, &str)]) -> String {
    let out = Command::new(repo_root().join("scripts/pg.sh"))
        .env("PG_OWNER_PID", std::process::id().to_string())
        .envs(env.iter().copied())
        .arg("start")
        .arg(dir)
        .output()
        .expect("run scripts/pg.sh");
    assert!(
        out.status.success(),
        "scripts/pg.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8 url")
        .trim()
        .to_string()
}

/// A runtime for a test's few queries (tests are synchronous; the drkit binary under test has its own).
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// A connection to `url` whose driver runs on the current runtime.
pub async fn client(url: &str) -> tokio_postgres::Client {
    let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    c
}

/// A fresh, empty database for one test; returns its URL.
pub fn fresh_db(name: &str) -> String {
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    let db = format!(
        "t_{}_{}_{}",
        name.replace(|c: char| !c.is_ascii_alphanumeric(), "_"),
        std::process::id(),
        n
    );
    rt().block_on(async {
        let (client, conn) = tokio_postgres::connect(server_url(), tokio_postgres::NoTls)
            .await
            .expect("connect");
        let h = tokio::spawn(conn);
        client
            .batch_execute(&format!("CREATE DATABASE \"{db}\""))
            .await
            .expect("create database");
        drop(client);
        let _ = h.await;
    });
    let base = server_url()
        .rsplit_once('/')
        .map(|(b, _)| b.to_string())
        .unwrap();
    format!("{base}/{db}")
}

static KAFKA: OnceLock<String> = OnceLock::new();

/// Bootstrap address of the shared Tansu broker: the one `scripts/test.sh` started
/// (`DRKIT_KAFKA_BOOTSTRAP`), or one started here once per test binary with `scripts/tansu.sh`,
/// stopped when this process exits.
pub fn kafka_bootstrap() -> &'static str {
    KAFKA.get_or_init(|| {
        if let Ok(b) = std::env::var("DRKIT_KAFKA_BOOTSTRAP") {
            return b;
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let dir = root
            .join("target/test-tansu")
            .join(std::process::id().to_string());
        let out = Command::new(root.join("scripts/tansu.sh"))
            .env("TANSU_OWNER_PID", std::process::id().to_string())
            .arg("start")
            .arg(&dir)
            .output()
            .expect("run scripts/tansu.sh");
        assert!(
            out.status.success(),
            "scripts/tansu.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .expect("utf-8 address")
            .trim()
            .to_string()
    })
}
