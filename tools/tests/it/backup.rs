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
