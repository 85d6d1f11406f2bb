//! `drkit health` against real peers started here: the shared PostgreSQL and Tansu fixtures, a
//! redis-server of each test's own on a free port (stopped and restarted by the test), and an HTTP
//! server written in this file (the test's own server, a real HTTP/1.1 peer on a TcpListener).
//! No timing is asserted: only states, exit codes, counts and order.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use serde::Deserialize;
use serde_json::Value;

use crate::replay::support;
use crate::util::{drkit, output, repo_root, Run};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A redis-server of the test's own, daemonized through `start.sh` (the same script a recovery
/// command runs), so the test and drkit start it the same way; killed by its pid file.
struct Redis {
    port: u16,
    dir: tempfile::TempDir,
}

impl Redis {
    fn new() -> Redis {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        // Like `systemctl restart`, the script returns once the service answers (or fails).
        let script = format!(
            "#!/bin/sh\n[ -n \"$DRKIT_CHECK\" ] && echo \"$DRKIT_CHECK\" >> '{d}/recoveries'\n\
             redis-server --port {port} --bind 127.0.0.1 --save '' --appendonly no \
             --daemonize yes --pidfile '{d}/redis.pid' --dir '{d}' || exit 1\n\
             for i in $(seq 200); do\n\
               redis-cli -p {port} ping 2>/dev/null | grep -q PONG && exit 0\n\
               sleep 0.05\n\
             done\nexit 1\n",
            d = dir.path().display()
        );
        let path = dir.path().join("start.sh");
        fs::write(&path, script).unwrap();
        Command::new("chmod").arg("+x").arg(&path).status().unwrap();
        Redis { port, dir }
    }

    fn script(&self) -> PathBuf {
        self.dir.path().join("start.sh")
    }

    fn start(&self) {
        assert!(Command::new(self.script())
            .env_remove("DRKIT_CHECK")
            .status()
            .unwrap()
            .success());
        for _ in 0..200 {
            if ping(self.port) {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("redis-server did not answer on {}", self.port);
    }

    /// SIGKILL: the port is free the moment the process is gone.
    fn kill(&self) {
        if let Ok(pid) = fs::read_to_string(self.dir.path().join("redis.pid")) {
            let _ = Command::new("kill").args(["-KILL", pid.trim()]).status();
        }
        for _ in 0..200 {
            if TcpStream::connect(("127.0.0.1", self.port)).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("redis-server on {} did not stop", self.port);
    }

    fn recoveries(&self) -> usize {
        fs::read_to_string(self.dir.path().join("recoveries"))
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

fn ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut buf = [0u8; 7];
    s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

/// What the test's own HTTP server answers to the n-th request (from 0).
struct Reply {
    status: u16,
    body: &'static str,
    delay: Duration,
    chunked: bool,
}

/// The test's own HTTP/1.1 server: reads a request (headers and a Content-Length body), records
/// it, and answers with `reply(n)`, one request per connection.
struct HttpServer {
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
}

impl HttpServer {
    fn start(reply: impl Fn(usize) -> Reply + Send + 'static) -> HttpServer {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let n = AtomicUsize::new(0);
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(s) = s else { continue };
                let i = n.fetch_add(1, Ordering::SeqCst);
                let r = reply(i);
                let seen = seen.clone();
                std::thread::spawn(move || serve(s, r, &seen));
            }
        });
        HttpServer { port, requests }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

fn serve(s: TcpStream, r: Reply, seen: &Mutex<Vec<String>>) {
    let mut rd = BufReader::new(s.try_clone().unwrap());
    let mut head = String::new();
    let mut len = 0usize;
    loop {
        let mut l = String::new();
        if rd.read_line(&mut l).unwrap_or(0) == 0 {
            return;
        }
        if let Some(v) = l.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap();
        }
        head.push_str(&l);
        if l == "\r\n" {
            break;
        }
    }
    let mut body = vec![0u8; len];
    rd.read_exact(&mut body).unwrap();
    head.push_str(&String::from_utf8_lossy(&body));
    seen.lock().unwrap().push(head);
    std::thread::sleep(r.delay);
    let mut w = s;
    let resp = if r.chunked {
        let (a, b) = r.body.split_at(r.body.len() / 2);
        format!(
            "HTTP/1.1 {} X\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x};ext=1\r\n{b}\r\n0\r\n\r\n",
            r.status,
            a.len(),
            b.len()
        )
    } else {
        format!(
            "HTTP/1.1 {} X\r\nContent-Length: {}\r\n\r\n{}",
            r.status,
            r.body.len(),
            r.body
        )
    };
    let _ = w.write_all(resp.as_bytes());
}

fn ok_reply(_: usize) -> Reply {
    Reply {
        status: 200,
        body: "{\"status\":\"healthy\"}",
        delay: Duration::ZERO,
        chunked: false,
    }
}

fn write_config(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("dr.toml");
    fs::write(&p, text).unwrap();
    p
}

fn once(config: &Path) -> Run {
    output(
        drkit()
            .args(["health", "--once", "--format", "json", "--config"])
            .arg(config)
            .output()
            .unwrap(),
    )
}

fn check<'a>(r: &'a Run, name: &str) -> &'a Value {
    r.lines
        .iter()
        .find(|l| l["type"] == "check" && l["check"] == name)
        .unwrap_or_else(|| panic!("no result for {name}:\n{}", r.stdout))
}

fn states(r: &Run) -> Vec<(String, String)> {
    r.lines
        .iter()
        .filter(|l| l["type"] == "check")
        .map(|l| {
            (
                l["check"].as_str().unwrap().to_string(),
                l["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn create_topic(topic: &str) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", support::kafka_bootstrap())
        .create()
        .unwrap();
    let r = support::rt().block_on(admin.create_topics(
        &[NewTopic::new(topic, 2, TopicReplication::Fixed(1))],
        &AdminOptions::new(),
    ));
    assert!(r.unwrap().iter().all(|r| r.is_ok()), "create topic {topic}");
}

#[test]
fn once_all_five_kinds_ok_in_dependency_order() {
    let dir = tempfile::tempdir().unwrap();
    let redis = Redis::new();
    redis.start();
    let http = HttpServer::start(ok_reply);
    let open = TcpListener::bind("127.0.0.1:0").unwrap();
    create_topic("health-ok");
    let cfg = write_config(
        dir.path(),
        &format!(
            r#"
            [[check]]
            name = "gateway"
            kind = "http"
            target = "{http}"
            body_regex = '"status":\s*"healthy"'
            depends_on = ["db", "cache", "kafka"]
            [[check]]
            name = "kafka"
            kind = "kafka"
            target = "{kafka}"
            topic = "health-ok"
            timeout = "10s"
            [[check]]
            name = "cache"
            kind = "redis"
            target = "127.0.0.1:{redis}"
            depends_on = ["port"]
            [[check]]
            name = "db"
            kind = "postgres"
            target = "{pg}"
            query = "SELECT count(*) FROM pg_class"
            [[check]]
            name = "port"
            kind = "tcp"
            target = "{open}"
            "#,
            http = http.url("/health"),
            kafka = support::kafka_bootstrap(),
            redis = redis.port,
            pg = support::fresh_db("health_ok"),
            open = open.local_addr().unwrap(),
        ),
    );
    let r = once(&cfg);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let order: Vec<String> = states(&r).into_iter().map(|(n, _)| n).collect();
    assert_eq!(order, ["kafka", "db", "port", "cache", "gateway"]);
    assert!(states(&r).iter().all(|(_, s)| s == "OK"), "{}", r.stdout);
    assert_eq!(r.summary()["ok"], 5);
    assert!(check(&r, "kafka")["message"]
        .as_str()
        .unwrap()
        .contains("2 partition(s)"));

    // The same file, as text: one line per check, the verdict last.
    let out = drkit()
        .args(["health", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.lines().last().unwrap().starts_with("OK: 5 check(s)"),
        "{text}"
    );
}

#[test]
fn once_stopped_redis_is_critical_and_its_dependants_are_not_checked() {
    let dir = tempfile::tempdir().unwrap();
    let redis = Redis::new();
    redis.start();
    redis.kill();
    let http = HttpServer::start(ok_reply);
    let cfg = write_config(
        dir.path(),
        &format!(
            r#"
            [[check]]
            name = "api"
            kind = "http"
            target = "{http}"
            depends_on = ["sessions"]
            [[check]]
            name = "sessions"
            kind = "tcp"
            target = "127.0.0.1:{redis}"
            depends_on = ["redis"]
            [[check]]
            name = "redis"
            kind = "redis"
            target = "127.0.0.1:{redis}"
            [[check]]
            name = "other"
            kind = "http"
            target = "{http}"
            "#,
            http = http.url("/"),
            redis = redis.port,
        ),
    );
    let r = once(&cfg);
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert_eq!(
        states(&r),
        [
            ("redis".to_string(), "CRITICAL".to_string()),
            ("sessions".to_string(), "UNKNOWN".to_string()),
            ("api".to_string(), "UNKNOWN".to_string()),
            ("other".to_string(), "OK".to_string()),
        ]
    );
    assert_eq!(check(&r, "sessions")["blocked_by"], "redis");
    assert_eq!(
        check(&r, "api")["message"],
        "not checked: depends on sessions"
    );
    // Only "other" reached the HTTP server: "api" was not probed.
    assert_eq!(http.requests.lock().unwrap().len(), 1);
    assert_eq!(r.summary()["state"], "CRITICAL");

    redis.start();
    let r = once(&cfg);
    assert_eq!(r.code, 0, "{}", r.stdout);
}

#[test]
fn once_slow_http_is_warning_and_a_wrong_body_critical() {
    let dir = tempfile::tempdir().unwrap();
    let slow = HttpServer::start(|_| Reply {
        status: 200,
        body: "ok",
        delay: Duration::from_millis(400),
        chunked: false,
    });
    let cfg = write_config(
        dir.path(),
        &format!(
            "[[check]]\nname = \"slow\"\nkind = \"http\"\ntarget = \"{}\"\nwarn_after = \"100ms\"\ntimeout = \"20s\"\n",
            slow.url("/")
        ),
    );
    let r = once(&cfg);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert_eq!(check(&r, "slow")["state"], "WARNING");

    let chunked = HttpServer::start(|_| Reply {
        status: 200,
        body: "status: degraded",
        delay: Duration::ZERO,
        chunked: true,
    });
    let body_check = |what: &str| {
        format!(
            "[[check]]\nname = \"body\"\nkind = \"http\"\ntarget = \"{}\"\n{what}\n",
            chunked.url("/health")
        )
    };
    let r = once(&write_config(
        dir.path(),
        &body_check("body_contains = \"healthy\""),
    ));
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert!(check(&r, "body")["message"]
        .as_str()
        .unwrap()
        .contains("does not contain \"healthy\""));
    // The chunks are joined before matching: the match spans the chunk boundary.
    let r = once(&write_config(
        dir.path(),
        &body_check("body_contains = \"status: degraded\""),
    ));
    assert_eq!(r.code, 0, "{}", r.stdout);
    let r = once(&write_config(
        dir.path(),
        &body_check("expect_status = 204"),
    ));
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert_eq!(check(&r, "body")["message"], "status 200 (expected 204)");
}

#[test]
fn once_kafka_topic_missing_and_postgres_password_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let closed = free_port();
    let cfg = write_config(
        dir.path(),
        &format!(
            r#"
            [[check]]
            name = "kafka"
            kind = "kafka"
            target = "{kafka}"
            topic = "health-no-such-topic"
            timeout = "10s"
            [[check]]
            name = "db"
            kind = "postgres"
            target = "postgres://drkit:s3cr3t-pw@127.0.0.1:{closed}/x"
            timeout = "2s"
            "#,
            kafka = support::kafka_bootstrap(),
        ),
    );
    let r = once(&cfg);
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert_eq!(check(&r, "kafka")["state"], "CRITICAL", "{}", r.stdout);
    assert_eq!(check(&r, "db")["state"], "CRITICAL");
    assert_eq!(
        check(&r, "db")["target"],
        format!("postgres://drkit:***@127.0.0.1:{closed}/x")
    );
    assert!(!r.stdout.contains("s3cr3t-pw") && !r.stderr.contains("s3cr3t-pw"));

    // -X settings reach librdkafka (a bad one fails the client) and secret values stay hidden.
    let out = drkit()
        .args([
            "health",
            "--format",
            "json",
            "-X",
            "sasl.password=hunter2-pw",
        ])
        .args([
            "-X",
            "sasl.username=hunter2-pw",
            "-X",
            "security.protocol=bogus",
            "--config",
        ])
        .arg(&cfg)
        .output()
        .unwrap();
    let r = output(out);
    assert_eq!(r.code, 2);
    let msg = check(&r, "kafka")["message"].as_str().unwrap();
    assert!(msg.contains("security.protocol"), "{msg}");
    assert!(
        !r.stdout.contains("hunter2-pw") && !r.stderr.contains("hunter2-pw"),
        "{}",
        r.stdout
    );
}

/// OpenSSL's own `s_server -www` (a real TLS peer answering HTTP/1.0 with a status page), its
/// certificate issued by a CA made here for the test.
struct TlsServer {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl TlsServer {
    fn start() -> TlsServer {
        let dir = tempfile::tempdir().unwrap();
        let sh = |cmd: &str| {
            let out = Command::new("sh")
                .arg("-c")
                .arg(cmd)
                .current_dir(dir.path())
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{cmd}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
        sh(&format!(
            "openssl req -x509 {ec} -keyout ca.key -out ca.pem -days 2 -subj /CN=drkit-test-ca"
        ));
        sh(&format!(
            "openssl req {ec} -keyout leaf.key -out leaf.csr -subj /CN=localhost"
        ));
        fs::write(
            dir.path().join("ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        sh("openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out leaf.pem -days 2 -extfile ext");
        let port = free_port();
        let child = Command::new("openssl")
            .args(["s_server", "-accept", &format!("127.0.0.1:{port}")])
            .args(["-cert", "leaf.pem", "-key", "leaf.key", "-www", "-quiet"])
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Owned before waiting: dropped (killed and reaped) if it never listens.
        let server = TlsServer { child, port, dir };
        for _ in 0..200 {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return server;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("openssl s_server did not listen on {port}");
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn once_https_is_verified_against_the_given_ca() {
    let tls = TlsServer::start();
    let check_with = |extra: &str| {
        let cfg = write_config(
            tls.dir.path(),
            &format!(
                "[[check]]\nname = \"gateway\"\nkind = \"http\"\ntarget = \"https://127.0.0.1:{}/\"\n\
                 body_contains = \"Ciphers\"\n{extra}\n",
                tls.port
            ),
        );
        once(&cfg)
    };
    // ca_file is relative to the checks file.
    let r = check_with("ca_file = \"ca.pem\"");
    assert_eq!(r.code, 0, "{}", r.stdout);
    // Without the plant's CA the certificate is not trusted: CRITICAL, never a silent OK.
    let r = check_with("");
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert!(
        check(&r, "gateway")["message"]
            .as_str()
            .unwrap()
            .contains("UnknownIssuer"),
        "{}",
        r.stdout
    );
    // A file without the issuing CA (only the server's own certificate): not trusted either.
    let r = check_with("ca_file = \"leaf.pem\"");
    assert_eq!(r.code, 2, "{}", r.stdout);
}

#[test]
fn bad_config_is_unknown_3_before_any_probe() {
    let dir = tempfile::tempdir().unwrap();
    let http = HttpServer::start(ok_reply);
    let cases = [
        (
            "cycle",
            "[[check]]\nname=\"a\"\nkind=\"http\"\ntarget=\"URL\"\ndepends_on=[\"b\"]\n\
             [[check]]\nname=\"b\"\nkind=\"tcp\"\ntarget=\"127.0.0.1:1\"\ndepends_on=[\"a\"]\n",
            "dependency cycle: a -> b -> a",
        ),
        (
            "unknown dependency",
            "[[check]]\nname=\"a\"\nkind=\"http\"\ntarget=\"URL\"\ndepends_on=[\"ghost\"]\n",
            "depends_on \"ghost\"",
        ),
        (
            "bad duration",
            "[[check]]\nname=\"a\"\nkind=\"http\"\ntarget=\"URL\"\ntimeout=\"soon\"\n",
            "check \"a\": timeout",
        ),
    ];
    for (what, text, want) in cases {
        let cfg = write_config(dir.path(), &text.replace("URL", &http.url("/")));
        let r = once(&cfg);
        assert_eq!(r.code, 3, "{what}: {}", r.stdout);
        let e = &r.lines[0];
        assert_eq!(e["type"], "error");
        assert!(e["message"].as_str().unwrap().contains(want), "{what}: {e}");
        assert!(e["message"].as_str().unwrap().contains("dr.toml"), "{e}");
        assert!(r.stderr.contains(want), "{what}: {}", r.stderr);
    }
    // Validation comes first: the valid check in those files was never probed.
    assert!(http.requests.lock().unwrap().is_empty());
    let r = output(
        drkit()
            .args(["health", "--config"])
            .arg(dir.path().join("missing.toml"))
            .output()
            .unwrap(),
    );
    assert_eq!(r.code, 3);
}

/// Runs a watch in the background; its JSON lines arrive on a channel as they are printed.
struct Watch {
    child: Child,
    lines: mpsc::Receiver<Value>,
    seen: Vec<Value>,
}

impl Watch {
    fn start(config: &Path, extra: &[&str]) -> Watch {
        let mut child = drkit()
            .args(["health", "--watch", "--format", "json", "--config"])
            .arg(config)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines() {
                let Ok(l) = l else { break };
                if tx.send(serde_json::from_str(&l).unwrap()).is_err() {
                    break;
                }
            }
        });
        Watch {
            child,
            lines: rx,
            seen: Vec::new(),
        }
    }

    /// Waits (at most two minutes: a hang must fail, not block the suite) for a matching line.
    fn wait_for(&mut self, what: &str, f: impl Fn(&Value) -> bool) -> Value {
        loop {
            let v = self
                .lines
                .recv_timeout(Duration::from_secs(120))
                .unwrap_or_else(|_| panic!("no {what}; saw:\n{:#?}", self.seen));
            self.seen.push(v.clone());
            if f(&v) {
                return v;
            }
        }
    }

    /// SIGTERM, then every remaining line and the exit code.
    fn stop(mut self) -> (Vec<Value>, i32) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let code = self.child.wait().unwrap().code().unwrap_or(-1);
        while let Ok(v) = self.lines.recv_timeout(Duration::from_secs(10)) {
            self.seen.push(v);
        }
        (self.seen, code)
    }
}

fn is_state(v: &Value, check: &str, to: &str) -> bool {
    v["type"] == "state" && v["check"] == check && v["to"] == to
}

fn transitions(lines: &[Value], check: &str) -> Vec<(Value, String)> {
    lines
        .iter()
        .filter(|l| l["type"] == "state" && l["check"] == check)
        .map(|l| (l["from"].clone(), l["to"].as_str().unwrap().to_string()))
        .collect()
}

#[test]
fn watch_alternating_answers_do_not_flap_with_thresholds() {
    let dir = tempfile::tempdir().unwrap();
    let flaky = |i: usize| Reply {
        status: if i & 1 == 0 { 200 } else { 500 },
        body: "x",
        delay: Duration::ZERO,
        chunked: false,
    };
    let run = |threshold: u32| {
        let http = HttpServer::start(flaky);
        let cfg = write_config(
            dir.path(),
            &format!(
                "[[check]]\nname = \"api\"\nkind = \"http\"\ntarget = \"{}\"\ninterval = \"20ms\"\ntimeout = \"30s\"\n\
                 fail_threshold = {threshold}\nrecover_threshold = {threshold}\n",
                http.url("/")
            ),
        );
        let r = output(
            drkit()
                .args([
                    "health",
                    "--watch",
                    "--iterations",
                    "12",
                    "--format",
                    "json",
                    "--config",
                ])
                .arg(&cfg)
                .output()
                .unwrap(),
        );
        assert_eq!(http.requests.lock().unwrap().len(), 12);
        r
    };
    let r = run(2);
    assert_eq!(
        transitions(&r.lines, "api"),
        [(Value::Null, "OK".to_string())]
    );
    assert_eq!((r.code, r.summary()["rounds"].as_u64()), (0, Some(12)));
    // The control: without hysteresis the same answers flap on every probe.
    let r = run(1);
    assert_eq!(transitions(&r.lines, "api").len(), 12, "{}", r.stdout);
    assert_eq!(r.code, 2);
}

#[test]
fn watch_redis_that_stops_and_comes_back_changes_state_once_each_way() {
    let dir = tempfile::tempdir().unwrap();
    let redis = Redis::new();
    redis.start();
    let cfg = write_config(
        dir.path(),
        &format!(
            r#"
            [[check]]
            name = "redis"
            kind = "redis"
            target = "127.0.0.1:{port}"
            interval = "100ms"
            timeout = "30s"
            fail_threshold = 3
            recover_threshold = 3
            [[check]]
            name = "cache-port"
            kind = "tcp"
            target = "127.0.0.1:{port}"
            interval = "100ms"
            depends_on = ["redis"]
            # The same thresholds as redis: its own failed probes (the port is closed too) count
            # towards the same change, which is then UNKNOWN, decided in the round redis turns
            # CRITICAL.
            fail_threshold = 3
            recover_threshold = 3
            "#,
            port = redis.port
        ),
    );
    let mut w = Watch::start(&cfg, &["--max-runtime", "10m"]);
    w.wait_for("redis OK", |v| is_state(v, "redis", "OK"));
    // Events are printed as each dependency level is judged: wait for the dependant's first too.
    w.wait_for("cache-port OK", |v| is_state(v, "cache-port", "OK"));
    redis.kill();
    w.wait_for("redis CRITICAL", |v| is_state(v, "redis", "CRITICAL"));
    redis.start();
    w.wait_for("redis OK again", |v| is_state(v, "redis", "OK"));
    w.wait_for("cache-port OK again", |v| {
        is_state(v, "cache-port", "OK") && !v["from"].is_null()
    });
    let (lines, code) = w.stop();
    assert_eq!(code, 0, "{lines:#?}");
    assert_eq!(
        transitions(&lines, "redis"),
        [
            (Value::Null, "OK".to_string()),
            (Value::from("OK"), "CRITICAL".to_string()),
            (Value::from("CRITICAL"), "OK".to_string()),
        ]
    );
    // The dependant was not probed while redis was CRITICAL: UNKNOWN, not CRITICAL.
    assert_eq!(
        transitions(&lines, "cache-port"),
        [
            (Value::Null, "OK".to_string()),
            (Value::from("OK"), "UNKNOWN".to_string()),
            (Value::from("UNKNOWN"), "OK".to_string()),
        ]
    );
    let summary = lines.last().unwrap();
    assert_eq!(
        (summary["type"].as_str(), summary["state"].as_str()),
        (Some("summary"), Some("OK"))
    );
}

#[test]
fn watch_recovery_restarts_redis_within_its_budget_then_escalates_once() {
    let dir = tempfile::tempdir().unwrap();
    let redis = Redis::new();
    redis.start();
    let escalations = dir.path().join("escalations");
    let cfg = write_config(
        dir.path(),
        &format!(
            r#"
            [[check]]
            name = "redis"
            kind = "redis"
            target = "127.0.0.1:{port}"
            interval = "100ms"
            fail_threshold = 2
            recover_threshold = 1
            recovery = {{ command = ["{script}"], budget = 1, window = "1h", backoff_initial = "50ms", backoff_max = "200ms" }}

            [[escalation]]
            after = "1500ms"
            command = ["sh", "-c", "echo \"$DRKIT_CHECK $DRKIT_STATE\" >> '{esc}'"]
            "#,
            port = redis.port,
            script = redis.script().display(),
            esc = escalations.display(),
        ),
    );
    let mut w = Watch::start(&cfg, &["--max-runtime", "10m"]);
    w.wait_for("redis OK", |v| is_state(v, "redis", "OK"));
    // Episode 1: the recovery command brings redis back. The command runs beside the probes, so
    // its event and the return to OK come in either order.
    redis.kill();
    let rec = w.wait_for("a recovery", |v| v["type"] == "recovery");
    assert_eq!(
        (rec["ok"].as_bool(), rec["exit_code"].as_i64()),
        (Some(true), Some(0)),
        "{rec}"
    );
    assert_eq!(
        (rec["attempt"].as_u64(), rec["budget"].as_u64()),
        (Some(1), Some(1))
    );
    if transitions(&w.seen, "redis").len() < 3 {
        w.wait_for("redis OK after recovery", |v| is_state(v, "redis", "OK"));
    }
    assert!(ping(redis.port));
    // Episode 2: the budget (1 per hour) is spent, so redis stays down and the step escalates.
    redis.kill();
    w.wait_for("budget refusal", |v| v["type"] == "recovery_skipped");
    loop {
        w.wait_for("escalation", |v| v["type"] == "escalation");
        let second = w
            .seen
            .iter()
            .rposition(|v| is_state(v, "redis", "CRITICAL"))
            .unwrap();
        if w.seen[second..].iter().any(|v| v["type"] == "escalation") {
            break;
        }
    }
    // More rounds while still CRITICAL: no second escalation, no second recovery.
    std::thread::sleep(Duration::from_millis(800));
    let (lines, code) = w.stop();
    assert_eq!(code, 2, "{lines:#?}");
    assert!(!ping(redis.port));
    assert_eq!(redis.recoveries(), 1, "recovery runs");
    assert_eq!(
        transitions(&lines, "redis"),
        [
            (Value::Null, "OK".to_string()),
            (Value::from("OK"), "CRITICAL".to_string()),
            (Value::from("CRITICAL"), "OK".to_string()),
            (Value::from("OK"), "CRITICAL".to_string()),
        ]
    );
    // Where each event falls: episode 1 is between the 1st and 2nd CRITICAL, episode 2 after.
    let criticals: Vec<usize> = (0..lines.len())
        .filter(|&i| is_state(&lines[i], "redis", "CRITICAL"))
        .collect();
    let at = |t: &str| -> Vec<usize> {
        (0..lines.len())
            .filter(|&i| lines[i]["type"] == t)
            .collect()
    };
    let episode2 = |v: &[usize]| v.iter().filter(|&&i| i > criticals[1]).count();
    let recoveries = at("recovery");
    assert_eq!(recoveries.len(), 1, "{lines:#?}");
    assert!(recoveries[0] > criticals[0] && recoveries[0] < criticals[1]);
    let skipped = at("recovery_skipped");
    assert_eq!((skipped.len(), episode2(&skipped)), (1, 1), "{lines:#?}");
    // Episode 1 may escalate too if the restart outlasted the step's delay, but at most once.
    let esc = at("escalation");
    assert_eq!(episode2(&esc), 1, "{lines:#?}");
    assert!(esc.len() <= 2, "{lines:#?}");
    let file = fs::read_to_string(&escalations).unwrap();
    assert_eq!(file.lines().count(), esc.len());
    assert_eq!(file.lines().last(), Some("redis CRITICAL"));
}

#[test]
fn watch_escalation_webhook_posts_the_event_once() {
    let dir = tempfile::tempdir().unwrap();
    let hook = HttpServer::start(ok_reply);
    let marker = dir.path().join("ran");
    let cfg = write_config(
        dir.path(),
        &format!(
            r#"
            [[check]]
            name = "plc-gateway"
            kind = "tcp"
            target = "127.0.0.1:{closed}"
            interval = "50ms"
            recovery = {{ command = ["true"], budget = 1, backoff_initial = "0s", backoff_max = "0s" }}
            [[escalation]]
            after = "0s"
            webhook = "{url}"
            [[escalation]]
            after = "0s"
            command = ["touch", "{marker}"]
            "#,
            closed = free_port(),
            url = hook.url("/alert"),
            marker = marker.display(),
        ),
    );
    let mut w = Watch::start(&cfg, &["--max-runtime", "10m"]);
    w.wait_for("budget refusal", |v| v["type"] == "recovery_skipped");
    while w.seen.iter().filter(|v| v["type"] == "escalation").count() < 2 {
        w.wait_for("escalations", |v| v["type"] == "escalation");
    }
    // More rounds while still CRITICAL: nothing fires twice.
    std::thread::sleep(Duration::from_millis(500));
    let (lines, code) = w.stop();
    assert_eq!(code, 2, "{lines:#?}");
    let of = |t: &str| -> Vec<&Value> { lines.iter().filter(|l| l["type"] == t).collect() };
    let esc = of("escalation");
    assert_eq!(esc.len(), 2, "{lines:#?}");
    // The two steps run side by side: find each by its action.
    let hook_step = esc.iter().find(|e| e["action"] == "webhook").unwrap();
    assert_eq!(
        (hook_step["step"].as_u64(), hook_step["code"].as_i64()),
        (Some(1), Some(200))
    );
    let cmd_step = esc.iter().find(|e| e["action"] == "command").unwrap();
    assert_eq!(
        (cmd_step["step"].as_u64(), cmd_step["ok"].as_bool()),
        (Some(2), Some(true))
    );
    assert!(marker.exists());
    let reqs = hook.requests.lock().unwrap();
    assert_eq!(reqs.len(), 1);
    assert!(
        reqs[0].starts_with("POST /alert HTTP/1.1\r\n"),
        "{}",
        reqs[0]
    );
    let body: Value = serde_json::from_str(reqs[0].split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(
        (body["check"].as_str(), body["state"].as_str()),
        (Some("plc-gateway"), Some("CRITICAL"))
    );
    // One recovery run (budget 1), then one refusal, however many rounds stay CRITICAL.
    assert_eq!(
        (of("recovery").len(), of("recovery_skipped").len()),
        (1, 1),
        "{lines:#?}"
    );
}

/// Every JSON line drkit health prints, typed as docs/HEALTH.md documents it.
#[derive(Deserialize, Debug)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[allow(dead_code)]
enum Line {
    Check {
        check: String,
        kind: String,
        target: String,
        state: String,
        code: u8,
        message: String,
        elapsed_ms: u64,
        depends_on: Vec<String>,
        blocked_by: Option<String>,
    },
    Summary {
        state: String,
        code: u8,
        checks: usize,
        ok: usize,
        warning: usize,
        unknown: usize,
        critical: usize,
        rounds: u64,
    },
    Error {
        state: String,
        code: u8,
        message: String,
    },
    State {
        time_ms: u64,
        check: String,
        from: Option<String>,
        to: String,
        code: u8,
        message: String,
        elapsed_ms: u64,
    },
    Recovery {
        time_ms: u64,
        check: String,
        attempt: u32,
        runs_in_window: u32,
        budget: u32,
        ok: bool,
        exit_code: Option<i32>,
        message: String,
        next_in_ms: u64,
    },
    RecoverySkipped {
        time_ms: u64,
        check: String,
        reason: String,
        runs_in_window: u32,
        budget: u32,
        retry_in_ms: u64,
    },
    Escalation {
        time_ms: u64,
        check: String,
        step: usize,
        after_ms: u64,
        action: String,
        ok: bool,
        code: Option<i32>,
        message: String,
    },
}

/// Field names per line type, as the documentation lists them.
const FIELDS: &[(&str, &[&str])] = &[
    (
        "check",
        &[
            "check",
            "kind",
            "target",
            "state",
            "code",
            "message",
            "elapsed_ms",
            "depends_on",
            "blocked_by",
        ],
    ),
    (
        "summary",
        &[
            "state", "code", "checks", "ok", "warning", "unknown", "critical", "rounds",
        ],
    ),
    ("error", &["state", "code", "message"]),
    (
        "state",
        &[
            "time_ms",
            "check",
            "from",
            "to",
            "code",
            "message",
            "elapsed_ms",
        ],
    ),
    (
        "recovery",
        &[
            "time_ms",
            "check",
            "attempt",
            "runs_in_window",
            "budget",
            "ok",
            "exit_code",
            "message",
            "next_in_ms",
        ],
    ),
    (
        "recovery_skipped",
        &[
            "time_ms",
            "check",
            "reason",
            "runs_in_window",
            "budget",
            "retry_in_ms",
        ],
    ),
    (
        "escalation",
        &[
            "time_ms", "check", "step", "after_ms", "action", "ok", "code", "message",
        ],
    ),
];

#[test]
fn json_lines_follow_the_documented_schema() {
    let dir = tempfile::tempdir().unwrap();
    let closed = free_port();
    let hook = HttpServer::start(ok_reply);
    let cfg = write_config(
        dir.path(),
        &format!(
            r#"
            [[check]]
            name = "down"
            kind = "tcp"
            target = "127.0.0.1:{closed}"
            interval = "30ms"
            recovery = {{ command = ["false"], budget = 1, backoff_initial = "0s", backoff_max = "0s" }}
            [[check]]
            name = "api"
            kind = "http"
            target = "{url}"
            depends_on = ["down"]
            interval = "30ms"
            [[escalation]]
            after = "0s"
            command = ["true"]
            "#,
            url = hook.url("/"),
        ),
    );
    let mut all = Vec::new();
    let mut run = |args: &[&str], config: &Path, code: i32| {
        let out = drkit()
            .args(["health", "--format", "json"])
            .args(args)
            .arg("--config")
            .arg(config)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(code));
        for l in String::from_utf8(out.stdout).unwrap().lines() {
            let v: Value = serde_json::from_str(l).unwrap();
            let typed: Line =
                serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{l}: {e}"));
            all.push((v, typed));
        }
    };
    run(&["--once"], &cfg, 2);
    let cycle = dir.path().join("cycle.toml");
    fs::write(
        &cycle,
        "[[check]]\nname=\"a\"\nkind=\"tcp\"\ntarget=\"x:1\"\ndepends_on=[\"a\"]\n",
    )
    .unwrap();
    run(&["--once"], &cycle, 3);
    // A watch until it has printed every event type (its actions end at their own pace).
    let mut w = Watch::start(&cfg, &["--max-runtime", "10m"]);
    w.wait_for("budget refusal", |v| v["type"] == "recovery_skipped");
    if !w.seen.iter().any(|v| v["type"] == "escalation") {
        w.wait_for("escalation", |v| v["type"] == "escalation");
    }
    let (lines, code) = w.stop();
    assert_eq!(code, 2);
    for v in lines {
        let typed: Line = serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{v}: {e}"));
        all.push((v, typed));
    }

    let docs = fs::read_to_string(repo_root().join("docs/HEALTH.md")).unwrap();
    for (ty, fields) in FIELDS {
        let seen = all
            .iter()
            .find(|(v, _)| v["type"] == *ty)
            .unwrap_or_else(|| panic!("no {ty} line"));
        let keys: Vec<&str> = seen
            .0
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .filter(|k| *k != "type")
            .collect();
        assert_eq!(&keys, fields, "{ty}");
        let heading = format!("### `{ty}`");
        let section = docs
            .split(&heading)
            .nth(1)
            .unwrap_or_else(|| panic!("docs/HEALTH.md has no {heading}"))
            .split("\n### ")
            .next()
            .unwrap();
        for f in *fields {
            assert!(
                section.contains(&format!("| `{f}` |")),
                "docs/HEALTH.md {heading} lacks `{f}`"
            );
        }
    }
}
