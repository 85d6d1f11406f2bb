//! `drkit backup verify` on pg_dump archives made by the real pg_dump 15 from a real server, on
//! damaged copies of them, on SHA-256 sidecars in every form, and on Redis files from a real
//! redis-server when one is installed.

#[allow(clippy::duplicate_mod)]
#[path = "../../../replay/tests/support/mod.rs"]
mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::util::{drkit, output, Run};

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

fn verify(args: &[&str], paths: &[&Path]) -> Run {
    output(
        drkit()
            .args(["backup", "verify", "--format", "json"])
            .args(args)
            .args(paths)
            .output()
            .unwrap(),
    )
}

/// Dumps made once per test binary: `z.dump` (default zlib, to a file), `z0.dump` (-Z0) and
/// `pipe.dump` (through stdout, offsets unset).
struct Dumps {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

fn dumps() -> &'static Dumps {
    static D: OnceLock<Dumps> = OnceLock::new();
    D.get_or_init(|| {
        let url = support::fresh_db("backup");
        let sql = "create schema plant;
            create table plant.telemetry(id int primary key, tag text, v double precision, ts timestamptz default '2024-01-01');
            insert into plant.telemetry select g, 'tag'||g, g*1.5 from generate_series(1,20000) g;
            create table public.alarms(id serial, msg text);
            insert into public.alarms(msg) select 'alarm '||g||E'\\twith tab' from generate_series(1,500) g;
            create table public.empty_t(a int);";
        let st = Command::new(format!("{PG_BIN}/psql"))
            .args(["-q", "-v", "ON_ERROR_STOP=1", "-d", &url, "-c", sql])
            .status()
            .unwrap();
        assert!(st.success());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        for (name, extra) in [("z.dump", vec![]), ("z0.dump", vec!["-Z0"])] {
            let st = Command::new(format!("{PG_BIN}/pg_dump"))
                .args(["-Fc", "-d", &url, "-f"])
                .arg(path.join(name))
                .args(extra)
                .status()
                .unwrap();
            assert!(st.success());
        }
        let out = Command::new(format!("{PG_BIN}/pg_dump"))
            .args(["-Fc", "-d", &url])
            .output()
            .unwrap();
        assert!(out.status.success());
        fs::write(path.join("pipe.dump"), out.stdout).unwrap();
        Dumps { _dir: dir, path }
    })
}

fn dump_bytes(name: &str) -> Vec<u8> {
    fs::read(dumps().path.join(name)).unwrap()
}

fn find(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len())
        .position(|w| w == needle)
        .unwrap_or_else(|| panic!("{:?} not found", String::from_utf8_lossy(needle)))
}

/// A damaged copy in its own directory (so no sidecar of the originals applies).
fn damaged(bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("damaged.dump");
    fs::write(&p, bytes).unwrap();
    (dir, p)
}

fn pg_restore_list_ok(p: &Path) -> bool {
    Command::new(format!("{PG_BIN}/pg_restore"))
        .arg("--list")
        .arg(p)
        .output()
        .unwrap()
        .status
        .success()
}

#[test]
fn real_dumps_verify_clean_in_one_read_with_sidecars() {
    let d = dumps();
    let dir = tempfile::tempdir().unwrap();
    for n in ["z.dump", "z0.dump", "pipe.dump"] {
        fs::copy(d.path.join(n), dir.path().join(n)).unwrap();
    }
    let sha = |n: &str| {
        let out = Command::new("sha256sum")
            .arg(dir.path().join(n))
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()[..64].to_string()
    };
    // GNU (binary mode), bare hash, and BSD in a sidecar naming two files.
    fs::write(
        dir.path().join("z.dump.sha256"),
        format!("{} *z.dump\n", sha("z.dump")),
    )
    .unwrap();
    fs::write(
        dir.path().join("z0.dump.sha256"),
        format!("{}\n", sha("z0.dump")),
    )
    .unwrap();
    fs::write(
        dir.path().join("SUMS.sha256"),
        format!(
            "SHA256 (pipe.dump) = {}\n{}  z.dump\n",
            sha("pipe.dump"),
            sha("z.dump")
        ),
    )
    .unwrap();
    for deep in [false, true] {
        let args: &[&str] = if deep { &["--deep"] } else { &[] };
        let r = verify(args, &[dir.path()]);
        assert_eq!(r.code, 0, "{}", r.stdout);
        assert!(r.errors().is_empty());
        let files: Vec<_> = r.lines.iter().filter(|l| l["type"] == "file").collect();
        assert_eq!(files.len(), 3, "{}", r.stdout);
        for f in files {
            assert_eq!(f["format"], "pg_dump");
            assert_eq!(f["checksum"], "ok", "{f}");
            assert!(f["entries"].as_u64().unwrap() > 10);
        }
        assert_eq!(r.of_kind("format_ok").len(), 3);
        assert_eq!(r.summary()["files"], 3);
        assert_eq!(r.summary()["deep"], deep);
    }
    // Text output: one summary line, nothing else when clean.
    let out = drkit()
        .args(["backup", "verify"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
}

#[test]
fn truncation_anywhere_is_caught_with_the_entry_it_hit() {
    for name in ["z.dump", "z0.dump", "pipe.dump"] {
        let b = dump_bytes(name);
        // In the header, in the TOC (inside the telemetry entry), and in the data.
        let in_toc = find(&b, b"COPY plant.telemetry") + 5;
        let mut cuts = vec![(3, None), (30, None), (in_toc, Some("telemetry"))];
        if name == "z0.dump" {
            let row = find(&b, b"1234\ttag1234\t");
            cuts.push((row + 5, Some("plant.telemetry (TABLE DATA")));
            let row = find(&b, b"alarm 77\\twith");
            cuts.push((row + 3, Some("public.alarms (TABLE DATA")));
        } else {
            cuts.push((b.len() / 2, Some("plant.telemetry (TABLE DATA")));
            cuts.push((b.len() - 40, Some("(TABLE DATA")));
        }
        for (cut, entry) in cuts {
            let (_d, p) = damaged(&b[..cut]);
            let r = verify(&[], &[&p]);
            assert_eq!(r.code, 1, "{name} cut at {cut}: {}", r.stdout);
            let f = r.one("pgdump_truncated");
            assert_eq!(f["position"], cut as u64, "{f}");
            match entry {
                Some(e) => assert!(
                    f["entry"].as_str().unwrap().contains(e),
                    "{name} {cut}: {f}"
                ),
                None => assert!(f["entry"].is_null(), "{f}"),
            }
            // What drkit catches in the data, pg_restore --list does not see.
            if entry.is_some_and(|e| e.contains("TABLE DATA")) {
                assert!(pg_restore_list_ok(&p), "{name} cut at {cut}");
            }
        }
    }
}

#[test]
fn flipped_bytes_in_header_toc_and_data() {
    let b = dump_bytes("z.dump");
    // Header: the int size, and the sign byte of the creation day (pg_restore takes any non-zero
    // sign as negative and lists the archive happily).
    for (pos, val, msg) in [(8usize, 9u8, "int size 9"), (31, 0x41, "sign byte 65")] {
        let mut c = b.clone();
        c[pos] = val;
        let (_d, p) = damaged(&c);
        let r = verify(&[], &[&p]);
        assert_eq!(r.code, 1);
        let f = r.one("pgdump_bad_header");
        assert_eq!(f["position"], pos as u64);
        assert!(f["message"].as_str().unwrap().contains(msg), "{f}");
        if pos == 31 {
            assert!(pg_restore_list_ok(&p));
        }
    }
    // TOC: the sign byte of the COPY statement's length, in the telemetry entry.
    let mut c = b.clone();
    let pos = find(&b, b"COPY plant.telemetry") - 5;
    c[pos] = 7;
    let (_d, p) = damaged(&c);
    let r = verify(&[], &[&p]);
    assert_eq!(r.code, 1);
    let f = r.one("pgdump_bad_toc");
    assert_eq!(f["position"], pos as u64);
    assert!(
        f["entry"]
            .as_str()
            .unwrap()
            .contains("telemetry (TABLE DATA"),
        "{f}"
    );
    // Data, compressed: structurally intact, so only --deep (inflate) catches it.
    let mut c = b.clone();
    let pos = b.len() / 2;
    c[pos] ^= 0x55;
    let (_d, p) = damaged(&c);
    assert_eq!(verify(&[], &[&p]).code, 0);
    assert!(pg_restore_list_ok(&p));
    let r = verify(&["--deep"], &[&p]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let f = r.one("pgdump_bad_compressed_data");
    assert!(
        f["entry"]
            .as_str()
            .unwrap()
            .starts_with("plant.telemetry (TABLE DATA, dump id "),
        "{f}"
    );
    // Data, uncompressed: a changed character is still valid COPY text; the sidecar catches it.
    let b0 = dump_bytes("z0.dump");
    let mut c = b0.clone();
    let pos = find(&b0, b"tag777\t") + 3;
    c[pos] = b'8';
    let (d, p) = damaged(&c);
    let good = Command::new("sha256sum")
        .arg(dumps().path.join("z0.dump"))
        .output()
        .unwrap();
    let good = String::from_utf8(good.stdout).unwrap()[..64].to_string();
    fs::write(
        d.path().join("damaged.dump.sha256"),
        format!("{good}  damaged.dump\n"),
    )
    .unwrap();
    let r = verify(&["--deep"], &[&p]);
    assert_eq!(r.code, 1);
    assert_eq!(r.one("checksum_mismatch")["file"], p.display().to_string());
    assert!(r.of_kind("pgdump_bad_row").is_empty());
    // Uncompressed with a tab planted in a row: --deep counts the fields.
    let mut c = b0.clone();
    c[pos] = b'\t';
    let (_d, p) = damaged(&c);
    let r = verify(&["--deep"], &[&p]);
    assert_eq!(r.code, 1);
    let f = r.one("pgdump_bad_row");
    assert!(f["entry"]
        .as_str()
        .unwrap()
        .starts_with("plant.telemetry (TABLE DATA"));
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("5 fields, 4 expected"),
        "{f}"
    );
}

#[test]
fn sidecar_forms_mismatch_malformed_and_missing_target() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    fs::write(p.join("a.bin"), b"hello\n").unwrap();
    fs::write(p.join("b.bin"), b"world\n").unwrap();
    let ha = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";
    let hb = "e258d248fda94c63753607f7c4494ee0fcbe92f1a76bfdac795c9d84101eb317";
    fs::write(p.join("a.bin.sha256"), format!("{ha}\n")).unwrap();
    fs::write(p.join("b.bin.sha256"), format!("SHA256 (b.bin) = {hb}\n")).unwrap();
    let r = verify(&[], &[p]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert_eq!(r.of_kind("checksum_ok").len(), 2);
    assert_eq!(r.of_kind("unknown_format").len(), 2);
    // A single file argument still finds the sidecars beside it.
    let r = verify(&[], &[&p.join("a.bin")]);
    assert_eq!(r.code, 0);
    r.one("checksum_ok");
    // Mismatch.
    fs::write(p.join("b.bin"), b"World\n").unwrap();
    let r = verify(&[], &[p]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.one("checksum_mismatch")["file"],
        p.join("b.bin").display().to_string()
    );
    fs::write(p.join("b.bin"), b"world\n").unwrap();
    // Malformed line and a target that is gone.
    fs::write(
        p.join("more.sha256"),
        format!("{ha}  gone.bin\nnot a checksum\n"),
    )
    .unwrap();
    let r = verify(&[], &[p]);
    assert_eq!(r.code, 1);
    assert!(r.one("sidecar_target_missing")["message"]
        .as_str()
        .unwrap()
        .contains("gone.bin"));
    assert!(r.one("sidecar_malformed")["message"]
        .as_str()
        .unwrap()
        .contains("line 2"));
    // A path that does not exist: I/O trouble, exit 2.
    let r = verify(&[], &[&p.join("nope")]);
    assert_eq!(r.code, 2);
    assert_eq!(r.summary()["io_errors"], 1);
}

/// A redis-server of this test's own, on a free loopback port, its files in a temp dir; stopped
/// (by its pid) when dropped.
struct Redis {
    child: std::process::Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Redis {
    fn start(extra: &[&str]) -> Option<Redis> {
        if Command::new("redis-server")
            .arg("--version")
            .output()
            .is_err()
        {
            eprintln!(
                "redis-server not installed: Redis tests skipped (scripts/test.sh installs it)"
            );
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(extra)
            .args(["--appendonly", "yes", "--dir"])
            .arg(dir.path())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let r = Redis { child, port, dir };
        for _ in 0..100 {
            if r.cli(&["ping"]).contains("PONG") {
                return Some(r);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("redis-server did not answer");
    }

    fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs a background job and waits until Redis reports it finished.
    fn wait_for(&self, field: &str) {
        for _ in 0..200 {
            if self
                .cli(&["info", "persistence"])
                .contains(&format!("{field}:0"))
            {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("{field} never finished");
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn redis_rdb_and_multi_part_aof_from_a_real_server() {
    let Some(redis) = Redis::start(&[]) else {
        return;
    };
    for i in 0..300 {
        redis.cli(&[
            "set",
            &format!("key{i}"),
            &format!("value {i} {}", "x".repeat(i)),
        ]);
    }
    redis.cli(&["rpush", "list", "a", "b", "c"]);
    redis.cli(&["bgsave"]);
    redis.wait_for("rdb_bgsave_in_progress");
    redis.cli(&["bgrewriteaof"]);
    redis.wait_for("aof_rewrite_in_progress");
    redis.cli(&["set", "after", "rewrite"]);
    let rdb = fs::read(redis.dir.path().join("dump.rdb")).unwrap();
    let aofdir = redis.dir.path().join("appendonlydir");
    // Copies, so the server's own files are never touched.
    let work = tempfile::tempdir().unwrap();
    crate::util::copy_dir(&aofdir, &work.path().join("appendonlydir"));
    fs::write(work.path().join("dump.rdb"), &rdb).unwrap();
    let r = verify(&[], &[work.path()]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    let formats: Vec<_> = r
        .lines
        .iter()
        .filter(|l| l["type"] == "file")
        .map(|l| l["format"].as_str().unwrap().to_string())
        .collect();
    assert!(formats.contains(&"rdb".to_string()), "{formats:?}");
    assert!(formats.contains(&"aof".to_string()), "{formats:?}");
    assert!(formats.contains(&"aof_manifest".to_string()), "{formats:?}");
    let aof_line = r.lines.iter().find(|l| l["format"] == "aof").unwrap();
    assert!(aof_line["entries"].as_u64().unwrap() >= 1, "{aof_line}");

    // RDB: truncated anywhere, or one bit flipped, fails the CRC-64 (or is too short).
    for cut in [4, 9, rdb.len() / 2, rdb.len() - 1] {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("dump.rdb");
        fs::write(&p, &rdb[..cut]).unwrap();
        let r = verify(&[], &[&p]);
        assert_eq!(r.code, 1, "cut {cut}: {}", r.stdout);
        assert_eq!(r.errors().len(), 1, "cut {cut}: {}", r.stdout);
    }
    let mut flipped = rdb.clone();
    flipped[rdb.len() / 2] ^= 0x01;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("dump.rdb");
    fs::write(&p, &flipped).unwrap();
    let r = verify(&[], &[&p]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.one("rdb_crc_mismatch")["position"],
        (rdb.len() - 8) as u64
    );
    assert_eq!(fs::read(&p).unwrap(), flipped, "input never modified");

    // AOF: the incr file cut inside a command; the manifest naming a file that is gone.
    let incr = fs::read_dir(work.path().join("appendonlydir"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".incr.aof"))
        .unwrap();
    let bytes = fs::read(&incr).unwrap();
    fs::write(&incr, &bytes[..bytes.len() - 3]).unwrap();
    let base = fs::read_dir(work.path().join("appendonlydir"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains(".base."))
        .unwrap();
    fs::remove_file(&base).unwrap();
    let r = verify(&[], &[work.path()]);
    assert_eq!(r.code, 1);
    assert_eq!(r.one("aof_truncated")["file"], incr.display().to_string());
    let m = r.one("aof_manifest_bad");
    assert!(m["message"].as_str().unwrap().contains(".base."), "{m}");

    // rdbchecksum no (immutable at run time, so a second server): a warning, not a failure.
    drop(redis);
    let redis = Redis::start(&["--rdbchecksum", "no"]).unwrap();
    redis.cli(&["set", "k", "v"]);
    redis.cli(&["bgsave"]);
    redis.wait_for("rdb_bgsave_in_progress");
    let r = verify(&[], &[&redis.dir.path().join("dump.rdb")]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    r.one("rdb_checksum_disabled");
}

#[test]
fn every_kind_is_documented() {
    let doc = fs::read_to_string(crate::util::repo_root().join("docs/BACKUP.md")).unwrap();
    for k in backup::Kind::ALL {
        assert!(
            doc.contains(&format!("| `{}` |", k.as_str())),
            "{} missing from docs/BACKUP.md",
            k.as_str()
        );
    }
}

/// The JSON Lines schema of docs/BACKUP.md, strictly: unknown or missing fields fail.
#[derive(serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[allow(dead_code)]
enum Line {
    Finding {
        severity: String,
        kind: String,
        file: String,
        position: Option<u64>,
        entry: Option<String>,
        message: String,
    },
    File {
        file: String,
        format: String,
        bytes: u64,
        sha256: String,
        checksum: String,
        entries: u64,
        errors: u64,
    },
    IoError {
        file: String,
        message: String,
    },
    Summary {
        files: u64,
        bytes: u64,
        errors: u64,
        warnings: u64,
        io_errors: u64,
        deep: bool,
        elapsed_ms: u64,
    },
}

#[test]
fn json_lines_follow_the_documented_schema() {
    let dir = tempfile::tempdir().unwrap();
    let b = dump_bytes("z.dump");
    fs::write(dir.path().join("ok.dump"), &b).unwrap();
    fs::write(dir.path().join("cut.dump"), &b[..b.len() / 2]).unwrap();
    fs::write(dir.path().join("x.sha256"), "garbage\n").unwrap();
    let out = drkit()
        .args(["backup", "verify", "--deep", "--format", "json"])
        .arg(dir.path())
        .arg(dir.path().join("missing"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let lines: Vec<Line> = crate::util::json_lines(&out.stdout);
    assert!(matches!(
        lines.last(),
        Some(Line::Summary {
            files: 2,
            io_errors: 1,
            ..
        })
    ));
    assert!(lines.iter().any(|l| matches!(l, Line::IoError { .. })));
    assert_eq!(
        lines
            .iter()
            .filter(|l| matches!(l, Line::File { .. }))
            .count(),
        2
    );
    let kinds: Vec<&str> = backup::Kind::ALL.iter().map(|k| k.as_str()).collect();
    for l in &lines {
        if let Line::Finding { kind, .. } = l {
            assert!(kinds.contains(&kind.as_str()), "{kind}");
        }
    }
}

/// `pg_basebackup -Ft` of the shared server, once per test binary, with SHA-256 file checksums
/// (the default CRC32C is tested by the library's own check of the same code path).
fn base_backup() -> &'static Path {
    static B: OnceLock<tempfile::TempDir> = OnceLock::new();
    B.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(format!("{PG_BIN}/pg_basebackup"))
            .args(["-d", support::server_url(), "-Ft", "-c", "fast", "-D"])
            .arg(dir.path().join("bb"))
            .arg("--manifest-checksums=SHA256")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    })
    .path()
}

#[test]
fn base_backup_tar_against_its_manifest() {
    let bb = base_backup().join("bb");
    let r = verify(&[], &[&bb]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    let tar = r.lines.iter().find(|l| l["format"] == "base_tar").unwrap();
    assert!(tar["entries"].as_u64().unwrap() > 100, "{tar}");
    assert!(r.lines.iter().any(|l| l["format"] == "backup_manifest"));

    // A manifest edited by hand: its own checksum fails, and the file it now lies about.
    let manifest = fs::read_to_string(bb.join("backup_manifest")).unwrap();
    let line = manifest
        .lines()
        .find(|l| l.contains("\"Path\": \"global/pg_control\""))
        .unwrap();
    let edited = manifest.replace(line, &line.replace("\"Size\": 8192", "\"Size\": 8193"));
    assert_ne!(edited, manifest);
    let dir = tempfile::tempdir().unwrap();
    fs::hard_link(bb.join("base.tar"), dir.path().join("base.tar"))
        .or_else(|_| fs::copy(bb.join("base.tar"), dir.path().join("base.tar")).map(|_| ()))
        .unwrap();
    fs::write(dir.path().join("backup_manifest"), &edited).unwrap();
    let r = verify(&[], &[dir.path()]);
    assert_eq!(r.code, 1);
    r.one("basebackup_manifest_checksum");
    assert_eq!(r.one("basebackup_file_size")["entry"], "global/pg_control");

    // A tar cut short: truncation, and the files it no longer holds.
    let dir = tempfile::tempdir().unwrap();
    let mut f = fs::File::open(bb.join("base.tar")).unwrap();
    let mut head = vec![0u8; 3 << 20];
    std::io::Read::read_exact(&mut f, &mut head).unwrap();
    fs::write(dir.path().join("base.tar"), &head[..(3 << 20) - 100]).unwrap();
    fs::copy(
        bb.join("backup_manifest"),
        dir.path().join("backup_manifest"),
    )
    .unwrap();
    let r = verify(&[], &[&dir.path().join("base.tar")]);
    assert_eq!(r.code, 1);
    r.one("tar_truncated");
    assert!(r.of_kind("basebackup_missing_file").len() > 10);

    // One flipped byte inside the first file's data (backup_label: pg_basebackup sends it first):
    // its checksum, named. Patched in place in a copy: the tar of a busy test server can be large.
    let name = 0;
    let first = String::from_utf8_lossy(&head[..100])
        .trim_end_matches('\0')
        .to_string();
    assert_eq!(first, "backup_label");
    let copy = dir.path().join("base.tar");
    fs::copy(bb.join("base.tar"), &copy).unwrap();
    let mut f = fs::OpenOptions::new().write(true).open(&copy).unwrap();
    std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(name as u64 + 512)).unwrap();
    std::io::Write::write_all(&mut f, &[head[name + 512] ^ 0x01]).unwrap();
    drop(f);
    let r = verify(&[], &[&dir.path().join("base.tar")]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert_eq!(r.one("basebackup_file_checksum")["entry"], "backup_label");
    assert_eq!(r.errors().len(), 1, "{}", r.stdout);
}

/// `pg_basebackup -Ft -z` (MS5's 4-hourly backup): the tar inside base.tar.gz is checked
/// against the manifest while it is inflated, and damage to the compressed bytes is caught.
#[test]
fn gzip_base_backup_against_its_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let bb = dir.path().join("bb");
    let out = Command::new(format!("{PG_BIN}/pg_basebackup"))
        .args(["-d", support::server_url(), "-Ft", "-z", "-c", "fast", "-D"])
        .arg(&bb)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(bb.join("base.tar.gz").is_file());
    let r = verify(&[], &[&bb]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    let tar = r
        .lines
        .iter()
        .find(|l| l["format"] == "base_tar_gz")
        .unwrap();
    assert!(tar["entries"].as_u64().unwrap() > 100, "{tar}");

    let gz = fs::read(bb.join("base.tar.gz")).unwrap();
    let damaged = |name: &str, bytes: &[u8]| {
        let d = dir.path().join(name);
        fs::create_dir(&d).unwrap();
        fs::write(d.join("base.tar.gz"), bytes).unwrap();
        fs::copy(bb.join("backup_manifest"), d.join("backup_manifest")).unwrap();
        verify(&[], &[&d.join("base.tar.gz")])
    };
    // Cut in the middle: the tar ends early and files are missing.
    let r = damaged("cut", &gz[..gz.len() / 2]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(
        !r.of_kind("basebackup_missing_file").is_empty(),
        "{}",
        r.stdout
    );
    // Bytes flipped in the compressed data: caught (by deflate, the gzip CRC or a file checksum).
    let mut flipped = gz.clone();
    for i in 0..8 {
        let at = gz.len() / 3 + i * 97;
        flipped[at] ^= 0x5a;
    }
    let r = damaged("flipped", &flipped);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(!r.errors().is_empty());
    // The gzip trailer (CRC-32 of the whole tar) alone.
    let mut trailer = gz.clone();
    let n = trailer.len();
    trailer[n - 6] ^= 0xff;
    let r = damaged("trailer", &trailer);
    assert_eq!(r.code, 1, "{}", r.stdout);
    r.one("basebackup_gzip_bad");
}
