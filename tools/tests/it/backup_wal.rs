//! `drkit backup wal-verify` and `pitr-config` against the WAL archive of a real PostgreSQL 15
//! (scripts/pg.sh with PG_ARCHIVE=1: archive_command copies every finished segment), its
//! `pg_basebackup -Ft` backups, damaged copies of that archive, and a real point-in-time recovery
//! of a restored base backup, which also produces a real timeline switch.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use crate::util::{drkit, output, repo_root, Run};

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// The archiving server, its archive and a base backup taken before the data below was written.
struct Archive {
    url: String,
    /// The cluster's private directory (owned by the server's user).
    real: PathBuf,
    archive: PathBuf,
    backup: PathBuf,
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A command run as the cluster's owner (`postgres` when the tests run as root, as pg.sh does).
fn as_owner(program: &str) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", program]);
        c
    } else {
        Command::new(program)
    }
}

fn run_ok(c: &mut Command) -> String {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{c:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn psql(url: &str, sql: &str) -> String {
    run_ok(Command::new(format!("{PG_BIN}/psql")).args([
        "-XAtq",
        "-v",
        "ON_ERROR_STOP=1",
        "-d",
        url,
        "-c",
        sql,
    ]))
}

/// Ends the current segment and waits until archive_command has copied it.
fn switch_and_wait(url: &str, archive: &Path) -> String {
    let name = psql(url, "select pg_walfile_name(pg_switch_wal())");
    wait_for(&archive.join(&name), "archive_command to copy the segment");
    name
}

fn wait_for(p: &Path, what: &str) {
    let t = Instant::now();
    while !p.exists() {
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "gave up waiting for {what}: {}",
            p.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn pg_basebackup(url: &str, dir: &Path) {
    run_ok(
        as_owner(&format!("{PG_BIN}/pg_basebackup"))
            .args(["-d", url, "-Ft", "-c", "fast", "-D"])
            .arg(dir),
    );
}

fn archive() -> &'static Archive {
    static A: OnceLock<Archive> = OnceLock::new();
    A.get_or_init(|| {
        let dir = repo_root()
            .join("target/test-pg-archive")
            .join(std::process::id().to_string());
        let url = crate::replay::support::start_cluster(&dir, &[("PG_ARCHIVE", "1")]);
        let real = PathBuf::from(fs::read_to_string(dir.join("cluster")).unwrap().trim());
        let archive = real.join("archive");
        psql(&url, "create table plant(id int primary key, tag text)");
        let backup = real.join("bb");
        pg_basebackup(&url, &backup);
        // Several segments of real data after the backup's start.
        for round in 0..3 {
            psql(
                &url,
                &format!(
                    "insert into plant select g, repeat('x', 200) from generate_series({}, {}) g",
                    round * 40_000 + 1,
                    (round + 1) * 40_000
                ),
            );
            switch_and_wait(&url, &archive);
        }
        Archive {
            url,
            real,
            archive,
            backup,
        }
    })
}

/// Tests that read the live archive or switch segments take turns, so a copy of the archive is
/// one moment of it (archive_command renames whole segments into place).
fn serial() -> MutexGuard<'static, ()> {
    static M: Mutex<()> = Mutex::new(());
    M.lock().unwrap_or_else(|e| e.into_inner())
}

/// A private copy of the archive to damage (only the segments and history files).
fn scratch() -> (tempfile::TempDir, PathBuf) {
    let a = archive();
    let _g = serial();
    let t = tempfile::tempdir().unwrap();
    let dst = t.path().join("archive");
    fs::create_dir(&dst).unwrap();
    for e in fs::read_dir(&a.archive).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), dst.join(e.file_name())).unwrap();
    }
    (t, dst)
}

fn segments(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.len() == 24)
        .collect();
    v.sort();
    v
}

fn wal_verify(args: &[&str], dir: &Path) -> Run {
    output(
        drkit()
            .args(["backup", "wal-verify", "--format", "json"])
            .args(args)
            .arg(dir)
            .output()
            .unwrap(),
    )
}

fn chain(r: &Run) -> &serde_json::Value {
    r.lines
        .iter()
        .find(|l| l["type"] == "wal_chain")
        .unwrap_or_else(|| panic!("no wal_chain line:\n{}", r.stdout))
}

/// The segment the base backup starts in, from its manifest (as pg_basebackup wrote it).
fn backup_start_segment() -> String {
    let m = fs::read_to_string(archive().backup.join("backup_manifest")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&m).unwrap();
    let lsn = v["WAL-Ranges"][0]["Start-LSN"].as_str().unwrap();
    let (hi, lo) = lsn.split_once('/').unwrap();
    let lo = u32::from_str_radix(lo, 16).unwrap();
    format!(
        "00000001{:08X}{:08X}",
        u32::from_str_radix(hi, 16).unwrap(),
        lo >> 24
    )
}

#[test]
fn clean_archive_is_a_whole_chain_from_every_kind_of_start_point() {
    let (_t, dir) = scratch();
    let bb = &archive().backup;
    let start = backup_start_segment();
    // pg_basebackup -z writes base.tar.gz: the label is read through gzip.
    let tgz = _t.path().join("base.tar.gz");
    let gz = Command::new("gzip")
        .args(["-1", "-c"])
        .arg(bb.join("base.tar"))
        .output()
        .unwrap();
    assert!(gz.status.success());
    fs::write(&tgz, gz.stdout).unwrap();
    // The backup history file the server archived at the end of the base backup.
    let m: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(bb.join("backup_manifest")).unwrap()).unwrap();
    let lsn = m["WAL-Ranges"][0]["Start-LSN"].as_str().unwrap();
    let offset = u32::from_str_radix(lsn.split_once('/').unwrap().1, 16).unwrap() & 0xFF_FFFF;
    let label = dir.join(format!("{start}.{offset:08X}.backup"));
    assert!(label.is_file(), "{}", label.display());
    for backup in [
        bb.clone(),
        bb.join("backup_manifest"),
        bb.join("base.tar"),
        tgz.clone(),
        label.clone(),
    ] {
        let r = wal_verify(&["--backup", backup.to_str().unwrap()], &dir);
        assert_eq!(r.code, 0, "{}", r.stdout);
        assert!(r.errors().is_empty());
        let c = chain(&r);
        assert_eq!(c["whole"], true);
        assert_eq!(c["start_segment"], start.as_str(), "{c}");
        let source = c["start_source"].as_str().unwrap();
        assert!(source.starts_with(backup.to_str().unwrap()), "{source}");
        assert!(c["expected"].as_u64().unwrap() >= 4, "{c}");
        assert_eq!(c["expected"], c["present"]);
        assert_eq!(c["segment_size"], 16 << 20);
        assert_eq!(
            c["end_segment"].as_str().unwrap(),
            segments(&dir).last().unwrap()
        );
    }
    // No --backup: from the oldest segment, and the text says so.
    let out = drkit()
        .args(["backup", "wal-verify"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("from the oldest segment in the archive"),
        "{text}"
    );
    assert!(text.contains("recovery replays the whole chain"), "{text}");
    // pg_waldump agrees the newest segment reads to its end (the check drkit must not contradict).
    let last = segments(&dir).last().unwrap().clone();
    run_ok(
        Command::new(format!("{PG_BIN}/pg_waldump"))
            .arg("-q")
            .arg(dir.join(&last)),
    );
}

#[test]
fn a_removed_segment_is_named_and_recovery_stops_there() {
    let (_t, dir) = scratch();
    let start = backup_start_segment();
    let segs = segments(&dir);
    let after: Vec<&String> = segs.iter().filter(|s| **s > start).collect();
    let gone = after[1].clone();
    fs::remove_file(dir.join(&gone)).unwrap();
    let bb = archive().backup.to_str().unwrap().to_string();
    let r = wal_verify(&["--backup", &bb], &dir);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let f = r.one("wal_missing");
    assert!(f["file"].as_str().unwrap().ends_with(&gone), "{f}");
    assert!(f["message"].as_str().unwrap().contains(&gone), "{f}");
    let c = chain(&r);
    assert_eq!(c["whole"], false);
    assert_eq!(c["missing"], 1);
    assert_eq!(c["stops_at_segment"], gone.as_str());
    // A segment before the backup's start is not needed: removing the oldest changes nothing.
    let oldest = segs.first().unwrap();
    assert!(*oldest < start);
    fs::remove_file(dir.join(oldest)).unwrap();
    let r2 = wal_verify(&["--backup", &bb], &dir);
    assert_eq!(r2.code, 1);
    assert_eq!(r2.errors().len(), 1, "{}", r2.stdout);
}

/// Byte `offset` of `file` xor 0x01, in place.
fn flip(file: &Path, offset: usize) {
    let mut b = fs::read(file).unwrap();
    b[offset] ^= 0x01;
    fs::write(file, b).unwrap();
}

#[test]
fn a_flipped_byte_is_named_with_file_and_offset() {
    let (_t, dir) = scratch();
    let start = backup_start_segment();
    // A segment full of inserts (not one a switch ended early: those are zeros after the switch).
    let full = segments(&dir)
        .into_iter()
        .find(|s| *s > start && fs::read(dir.join(s)).unwrap()[100 * 8192] != 0)
        .unwrap();
    let seg = dir.join(&full);
    // xlp_pageaddr of the third page: byte 1 of the 8-byte field at page offset 8.
    let at = 2 * 8192 + 8 + 1;
    flip(&seg, at);
    let r = wal_verify(&[], &dir);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let f = r.one("wal_bad_page_header");
    assert!(f["file"].as_str().unwrap().ends_with(&full), "{f}");
    assert_eq!(f["position"], 2 * 8192 + 8);
    assert!(
        f["message"].as_str().unwrap().contains("xlp_pageaddr"),
        "{f}"
    );
    // sha256sum -c of a sidecar made after the damage would pass: this is caught from the bytes.
    flip(&seg, at);
    // Inside records instead (page 50, past its header): eight bytes in a row, so at least one
    // is a record's (alignment padding is under eight bytes).
    for i in 0..8 {
        flip(&seg, 50 * 8192 + 4000 + i);
    }
    let r = wal_verify(&[], &dir);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let f = r.one("wal_bad_record");
    assert!(f["file"].as_str().unwrap().ends_with(&full));
    assert!(f["message"].as_str().unwrap().contains("record at"), "{f}");
    let pos = f["position"].as_u64().unwrap();
    assert!(pos < 50 * 8192 + 4008 && pos > 40 * 8192, "{f}");
    // pg_waldump stops there too.
    let out = Command::new(format!("{PG_BIN}/pg_waldump"))
        .arg("-q")
        .arg(&seg)
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn a_segment_renamed_to_another_timeline_is_reported() {
    let (_t, dir) = scratch();
    let start = backup_start_segment();
    let moved = segments(&dir).into_iter().find(|s| *s > start).unwrap();
    let renamed = format!("00000003{}", &moved[8..]);
    fs::rename(dir.join(&moved), dir.join(&renamed)).unwrap();
    let r = wal_verify(&[], &dir);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let f = r.one("wal_off_timeline");
    assert_eq!(f["severity"], "warning");
    assert!(f["file"].as_str().unwrap().ends_with(&renamed));
    assert!(r.one("wal_missing")["file"]
        .as_str()
        .unwrap()
        .ends_with(&moved));
    assert_eq!(chain(&r)["off_timeline"], 1);
}

#[test]
fn compressed_segments_are_read_and_a_cut_one_is_damage() {
    let (_t, dir) = scratch();
    let segs = segments(&dir);
    // The first by zstd and the second by lz4 (their command-line tools, when installed), the
    // rest by gzip: one archive may mix them.
    for (i, s) in segs.iter().enumerate() {
        let tool = match i {
            0 => "zstd",
            1 => "lz4",
            _ => "gzip",
        };
        let have = Command::new(tool).arg("--version").output().is_ok();
        let mut c = Command::new(if have { tool } else { "gzip" });
        match (have, tool) {
            (true, "zstd") => {
                c.args(["-q", "--rm"]);
            }
            // -m: write FILE.lz4 (with one file and no terminal, lz4 writes to stdout).
            (true, "lz4") => {
                c.args(["-q", "-m", "--rm"]);
            }
            _ => {}
        }
        run_ok(c.arg(dir.join(s)));
    }
    assert!(
        !segments(&dir).iter().any(|n| n.len() == 24),
        "all compressed"
    );
    let r = wal_verify(&[], &dir);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert_eq!(chain(&r)["present"], segs.len() as u64);
    let victim = dir.join(format!("{}.gz", segs[segs.len() - 2]));
    let b = fs::read(&victim).unwrap();
    fs::write(&victim, &b[..b.len() / 2]).unwrap();
    let r = wal_verify(&[], &dir);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.one("wal_unreadable")["file"]
        .as_str()
        .unwrap()
        .ends_with(".gz"));
    // The archive itself is never written: the damaged file is still as we left it.
    assert_eq!(fs::read(&victim).unwrap().len(), b.len() / 2);
}

#[test]
fn usage_and_io_errors_exit_2() {
    let r = wal_verify(&[], Path::new("/nonexistent/archive"));
    assert_eq!(r.code, 2);
    let (_t, dir) = scratch();
    let r = wal_verify(&["--until", "2024-01-01 10:00:00"], &dir);
    assert_eq!(r.code, 2, "a time without a zone is refused: {}", r.stderr);
    assert!(r.stderr.contains("zone"), "{}", r.stderr);
    let r = wal_verify(&["--backup", "/nonexistent"], &dir);
    assert_eq!(r.code, 2);
}

/// A server started on a restored data directory, stopped when dropped.
struct Restored {
    data: PathBuf,
    url: String,
}

impl Drop for Restored {
    fn drop(&mut self) {
        let _ = as_owner(&format!("{PG_BIN}/pg_ctl"))
            .args(["-D"])
            .arg(&self.data)
            .args(["-m", "immediate", "stop"])
            .output();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn point_in_time_recovery_round_trip_keeps_exactly_the_rows_before_the_target() {
    let a = archive();
    let g = serial();
    let work = a.real.join(format!("pitr-{}", std::process::id()));
    run_ok(as_owner("mkdir").arg("-p").arg(&work));
    psql(
        &a.url,
        "create table pitr(i int, at timestamptz default clock_timestamp())",
    );
    pg_basebackup(&a.url, &work.join("bb"));
    psql(&a.url, "insert into pitr(i) select generate_series(1, 100)");
    // Commits well apart from the target on both sides (commit times have microsecond precision;
    // the pauses only keep the two groups apart, nothing is timed).
    std::thread::sleep(Duration::from_millis(1100));
    let target = psql(
        &a.url,
        "select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
    );
    std::thread::sleep(Duration::from_millis(1100));
    psql(
        &a.url,
        "insert into pitr(i) select generate_series(101, 200)",
    );
    switch_and_wait(&a.url, &a.archive);

    // The archive reaches the target from this backup.
    let bb = work.join("bb");
    let r = wal_verify(
        &["--backup", bb.to_str().unwrap(), "--until", &target],
        &a.archive,
    );
    assert_eq!(r.code, 0, "{}", r.stdout);
    let c = chain(&r);
    assert_eq!(c["end_source"], "until");
    assert!(c["target_time"].as_str().unwrap() > target.as_str(), "{c}");
    // A target past everything archived: PostgreSQL would end recovery with FATAL.
    let r = wal_verify(
        &[
            "--backup",
            bb.to_str().unwrap(),
            "--until",
            "2999-01-01T00:00:00Z",
        ],
        &a.archive,
    );
    assert_eq!(r.code, 1);
    r.one("wal_target_not_reached");

    // Restore the tar backup into a new data directory.
    let data = work.join("data");
    run_ok(as_owner("mkdir").arg("-m").arg("700").arg(&data));
    run_ok(
        as_owner("tar")
            .arg("-xf")
            .arg(bb.join("base.tar"))
            .arg("-C")
            .arg(&data),
    );
    let auto_before = fs::read_to_string(data.join("postgresql.auto.conf")).unwrap();

    // Without --data-dir: printed, nothing written.
    let out = drkit()
        .args(["backup", "pitr-config", "--archive"])
        .arg(&a.archive)
        .args(["--target-time", &target, "--backup"])
        .arg(&bb)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.contains("recovery_target_timeline = 'latest'"),
        "{printed}"
    );
    assert!(!data.join("recovery.signal").exists());

    let config = |extra: &[&str]| {
        output(
            drkit()
                .args(["backup", "pitr-config", "--format", "json", "--archive"])
                .arg(&a.archive)
                .args([
                    "--target-time",
                    &target,
                    "--action",
                    "promote",
                    "--data-dir",
                ])
                .arg(&data)
                .args(extra)
                .output()
                .unwrap(),
        )
    };
    let r = config(&[]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let p = r.lines.iter().find(|l| l["type"] == "pitr_config").unwrap();
    assert_eq!(p["written"], true);
    assert_eq!(p["settings"]["recovery_target_action"], "promote");
    assert!(data.join("recovery.signal").exists());
    let auto = fs::read_to_string(data.join("postgresql.auto.conf")).unwrap();
    assert!(auto.starts_with(&auto_before));
    assert_eq!(
        fs::read_to_string(data.join("postgresql.auto.conf.drkit-rollback")).unwrap(),
        auto_before
    );
    // A second run refuses: recovery is configured already; nothing changes.
    let r = config(&[]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let p = r.lines.iter().find(|l| l["type"] == "pitr_config").unwrap();
    assert_eq!(p["written"], false);
    assert!(p["refused"].as_array().unwrap().len() >= 2, "{p}");
    assert_eq!(
        fs::read_to_string(data.join("postgresql.auto.conf")).unwrap(),
        auto
    );

    // Recover. The restored server archives into a copy of the archive, so its new timeline
    // (history file, .partial, first segment) lands beside the old timeline's segments.
    let arch2 = work.join("archive2");
    run_ok(as_owner("cp").arg("-a").arg(&a.archive).arg(&arch2));
    let port = free_port();
    let restored = Restored {
        data: data.clone(),
        url: format!("postgres://drkit@127.0.0.1:{port}/drkit"),
    };
    run_ok(
        as_owner(&format!("{PG_BIN}/pg_ctl"))
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(work.join("restored.log"))
            .arg("-w")
            .arg("-o")
            .arg(format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 -c archive_mode=on -c archive_command='cp %p {a}/%f.tmp && mv {a}/%f.tmp {a}/%f'",
                work.display(),
                a = arch2.display()
            ))
            .arg("start"),
    );
    drop(g);
    let t = Instant::now();
    loop {
        let out = Command::new(format!("{PG_BIN}/psql"))
            .args([
                "-XAtq",
                "-d",
                &restored.url,
                "-c",
                "select pg_is_in_recovery()",
            ])
            .output()
            .unwrap();
        if String::from_utf8_lossy(&out.stdout).trim() == "f" {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(180),
            "recovery did not end: {}",
            fs::read_to_string(work.join("restored.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        psql(&restored.url, "select count(*), min(i), max(i) from pitr"),
        "100|1|100"
    );
    assert!(
        !data.join("recovery.signal").exists(),
        "PostgreSQL removes it when recovery ends"
    );
    assert_eq!(psql(&a.url, "select count(*) from pitr"), "200");
    // With the restored server running, pitr-config refuses to touch its data directory.
    let r = config(&[]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let p = r.lines.iter().find(|l| l["type"] == "pitr_config").unwrap();
    assert_eq!(p["written"], false);
    assert!(p["refused"].to_string().contains("postmaster.pid"), "{p}");

    // The promoted server is on timeline 2: its history file and first segment reach the copy.
    let tl2 = switch_and_wait(&restored.url, &arch2);
    assert!(tl2.starts_with("00000002"), "{tl2}");
    wait_for(&arch2.join("00000002.history"), "the timeline history file");
    let r = wal_verify(&["--backup", bb.to_str().unwrap()], &arch2);
    assert_eq!(r.code, 0, "{}", r.stdout);
    let c = chain(&r);
    assert_eq!(c["timelines"], serde_json::json!([1, 2]));
    assert_eq!(c["end_segment"], tl2.as_str());
    // The old timeline's segments past the switch (the rows 101..200) are not used, and said so.
    assert!(c["off_timeline"].as_u64().unwrap() >= 1, "{c}");
    assert!(!r.of_kind("wal_off_timeline").is_empty());
}

// ---- drkit backup age ----------------------------------------------------------------------

fn age(args: &[&str]) -> Run {
    output(
        drkit()
            .args(["backup", "age", "--format", "json"])
            .args(args)
            .output()
            .unwrap(),
    )
}

fn class_line<'a>(r: &'a Run, class: &str) -> &'a serde_json::Value {
    r.lines
        .iter()
        .find(|l| l["type"] == "backup_age" && l["class"] == class)
        .unwrap_or_else(|| panic!("no line for class {class}:\n{}{}", r.stdout, r.stderr))
}

/// A file with its modification time set by `touch -d` (the real tool).
fn file_aged(dir: &Path, key: &str, when: &str) {
    let p = dir.join(key);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(&p, key).unwrap();
    run_ok(Command::new("touch").arg("-d").arg(when).arg(&p));
}

#[test]
fn age_of_local_backups_per_class() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    file_aged(d, "pg/ms5db-old.dump", "3 days ago");
    file_aged(d, "pg/ms5db-new.dump", "2 hours ago");
    file_aged(d, "telemetry/2024/part-1.jsonl", "20 minutes ago");
    file_aged(d, "telemetry/2024/part-0.jsonl", "50 minutes ago");
    file_aged(d, "redis/dump.rdb", "30 hours ago");
    // Fresh, but not backups: a sidecar and an upload in progress.
    file_aged(d, "redis/dump.rdb.sha256", "1 minute ago");
    file_aged(d, "redis/.dump.rdb.tmp", "1 minute ago");
    let loc = d.to_str().unwrap();

    // Everything in one class: the newest is the telemetry part.
    let r = age(&["--max-age", "24h", loc]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let c = class_line(&r, "default");
    assert_eq!(c["newest"], "telemetry/2024/part-1.jsonl");
    assert_eq!(c["objects"], 5);
    assert_eq!(c["verdict"], "ok");
    let a = c["age_s"].as_i64().unwrap();
    assert!((19 * 60..=40 * 60).contains(&a), "{c}");

    // Telemetry must be 5 minutes fresh: too old, exit 1. Redis, by glob, 24h: too old too.
    let r = age(&[
        "--max-age",
        "24h",
        "--class",
        "telemetry=5m",
        "--class",
        "redis=24h:redis/*.rdb",
        loc,
    ]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert_eq!(class_line(&r, "telemetry")["verdict"], "too_old");
    assert_eq!(class_line(&r, "telemetry")["objects"], 2);
    assert_eq!(class_line(&r, "redis")["verdict"], "too_old");
    assert_eq!(class_line(&r, "redis")["newest"], "redis/dump.rdb");
    // What no class took: the pg dumps, the newest two hours old.
    assert_eq!(class_line(&r, "default")["newest"], "pg/ms5db-new.dump");
    assert_eq!(class_line(&r, "default")["verdict"], "ok");
    assert_eq!(r.summary()["too_old"], 2);

    let r = age(&["--class", "telemetry=1h", "--class", "pg=1d", loc]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(
        r.lines.iter().all(|l| l["class"] != "default"),
        "{}",
        r.stdout
    );
    // A class nothing matches is a problem, not a pass.
    let r = age(&["--class", "wal=5m", loc]);
    assert_eq!(r.code, 1);
    assert_eq!(class_line(&r, "wal")["verdict"], "empty");

    // Text: one line per class, the verdict first.
    let out = drkit()
        .args(["backup", "age", "--max-age", "1h", loc])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("ok      default"), "{text}");

    // Usage and I/O errors: 2.
    assert_eq!(age(&["--class", "x=soon", loc]).code, 2);
    assert_eq!(age(&["--max-age", "1h", "/nonexistent/backups"]).code, 2);
    assert_eq!(age(&["--max-age", "1h", "-X", "aws_region=x", loc]).code, 2);
    assert_eq!(age(&[loc]).code, 2, "an age limit is required");
}

/// moto's S3 server: a **fake** S3 (no real one can run here), started for one test when moto is
/// installed. It implements ListObjectsV2 and LastModified, which is all `backup age` uses.
struct FakeS3 {
    child: std::process::Child,
    endpoint: String,
}

impl Drop for FakeS3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn fake_s3() -> Option<FakeS3> {
    let have = Command::new("python3")
        .args(["-c", "import moto.server, boto3"])
        .output()
        .ok()?;
    if !have.status.success() {
        eprintln!("moto (fake S3) not installed: S3 listing not tested");
        return None;
    }
    let port = free_port();
    let child = Command::new("python3")
        .args([
            "-m",
            "moto.server",
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let s3 = FakeS3 {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
    };
    let t = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(t.elapsed() < Duration::from_secs(60), "moto did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(s3)
}

#[test]
fn age_of_s3_objects_on_a_fake_s3() {
    let Some(s3) = fake_s3() else { return };
    let put = format!(
        "import boto3\n\
         c = boto3.client('s3', endpoint_url='{}', region_name='us-east-1',\n\
             aws_access_key_id='k', aws_secret_access_key='s')\n\
         c.create_bucket(Bucket='plant')\n\
         keys = ['backups/pg/a.dump', 'backups/telemetry/t.jsonl', 'backups/pg/a.dump.sha256', 'other/x']\n\
         _ = [c.put_object(Bucket='plant', Key=k, Body=b'x') for k in keys]\n",
        s3.endpoint
    );
    run_ok(Command::new("python3").args(["-c", &put]));
    let endpoint = format!("aws_endpoint={}", s3.endpoint);
    let base = [
        "-X",
        &endpoint,
        "-X",
        "aws_allow_http=true",
        "-X",
        "aws_region=us-east-1",
        "-X",
        "aws_access_key_id=k",
        "-X",
        "aws_secret_access_key=hunter2secret",
    ];
    let run = |extra: &[&str]| {
        let mut a: Vec<&str> = base.to_vec();
        a.extend_from_slice(extra);
        age(&a)
    };
    let r = run(&[
        "--max-age",
        "1h",
        "--class",
        "telemetry=1h",
        "s3://plant/backups",
    ]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(class_line(&r, "telemetry")["newest"], "telemetry/t.jsonl");
    assert_eq!(class_line(&r, "default")["newest"], "pg/a.dump");
    assert_eq!(
        class_line(&r, "default")["objects"],
        1,
        "the sidecar is no backup, other/ is outside"
    );
    // Objects cannot be back-dated on S3: wait until they are older than a one-second limit.
    std::thread::sleep(Duration::from_millis(2100));
    let r = run(&["--class", "telemetry=1s", "s3://plant/backups/"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert_eq!(class_line(&r, "telemetry")["verdict"], "too_old");
    // A missing bucket is an I/O error, and the secret never shows.
    let r = run(&["--max-age", "1h", "s3://nobucket/x"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(!r.stderr.contains("hunter2secret") && !r.stdout.contains("hunter2secret"));
}

/// wal-verify's JSON Lines as docs/BACKUP.md documents them, strictly: unknown or missing fields
/// fail.
#[derive(serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[allow(dead_code, clippy::large_enum_variant)]
enum WalLine {
    Finding {
        severity: String,
        kind: String,
        file: String,
        position: Option<u64>,
        entry: Option<String>,
        message: String,
    },
    WalChain {
        archive: String,
        start_lsn: String,
        start_segment: String,
        start_source: Option<String>,
        timeline: u32,
        timelines: Vec<u32>,
        segment_size: u32,
        end_segment: Option<String>,
        end_source: String,
        backup_end_lsn: Option<String>,
        expected: u64,
        present: u64,
        missing: u64,
        damaged: u64,
        off_timeline: u64,
        stops_at_segment: Option<String>,
        stops_at_lsn: Option<String>,
        target_lsn: Option<String>,
        target_time: Option<String>,
        whole: bool,
        consistent: bool,
    },
    IoError {
        file: String,
        message: String,
    },
    Summary {
        errors: u64,
        warnings: u64,
        io_errors: u64,
        elapsed_ms: u64,
    },
}

#[test]
fn wal_verify_json_lines_follow_the_documented_schema() {
    let (_t, dir) = scratch();
    let segs = segments(&dir);
    fs::remove_file(dir.join(&segs[2])).unwrap();
    fs::rename(
        dir.join(&segs[3]),
        dir.join(format!("00000005{}", &segs[3][8..])),
    )
    .unwrap();
    let bb = archive().backup.to_str().unwrap().to_string();
    for args in [
        vec![],
        vec!["--backup", &bb],
        vec!["--until", "2999-01-01T00:00:00Z"],
    ] {
        let out = drkit()
            .args(["backup", "wal-verify", "--format", "json"])
            .args(&args)
            .arg(&dir)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let lines: Vec<WalLine> = crate::util::json_lines(&out.stdout);
        assert!(matches!(lines.last(), Some(WalLine::Summary { .. })));
        assert_eq!(
            lines
                .iter()
                .filter(|l| matches!(l, WalLine::WalChain { .. }))
                .count(),
            1
        );
        let kinds: Vec<&str> = backup::Kind::ALL.iter().map(|k| k.as_str()).collect();
        for l in &lines {
            if let WalLine::Finding { kind, .. } = l {
                assert!(kinds.contains(&kind.as_str()), "{kind}");
            }
        }
    }
}

#[test]
fn pitr_config_refuses_existing_settings_and_short_archives_unless_forced() {
    let (t, dir) = scratch();
    // A data directory as a restore leaves it, with a recovery setting left over from before.
    let data = t.path().join("data");
    fs::create_dir(&data).unwrap();
    fs::write(data.join("PG_VERSION"), "15\n").unwrap();
    fs::write(
        data.join("postgresql.conf"),
        "port = 5432\nrestore_command = 'false'\n",
    )
    .unwrap();
    fs::write(data.join("postgresql.auto.conf"), "work_mem = '8MB'\n").unwrap();
    let run = |extra: &[&str]| {
        output(
            drkit()
                .args(["backup", "pitr-config", "--format", "json", "--archive"])
                .arg(&dir)
                .args(["--target-time", "2001-02-03T04:05:06+01:00", "--data-dir"])
                .arg(&data)
                .args(extra)
                .output()
                .unwrap(),
        )
    };
    let line = |r: &Run| {
        r.lines
            .iter()
            .find(|l| l["type"] == "pitr_config")
            .unwrap()
            .clone()
    };
    let r = run(&[]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let p = line(&r);
    assert_eq!(p["written"], false);
    assert!(
        p["refused"][0]
            .as_str()
            .unwrap()
            .contains("postgresql.conf:2"),
        "{p}"
    );
    assert!(!data.join("recovery.signal").exists());
    assert_eq!(
        fs::read_to_string(data.join("postgresql.auto.conf")).unwrap(),
        "work_mem = '8MB'\n"
    );

    let r = run(&["--force"]);
    assert_eq!(r.code, 1, "forced, but the reason stands: {}", r.stdout);
    let p = line(&r);
    assert_eq!(
        (p["written"].as_bool(), p["forced"].as_bool()),
        (Some(true), Some(true))
    );
    assert_eq!(
        p["settings"]["recovery_target_time"],
        "2001-02-03 03:05:06.000000+00"
    );
    assert!(data.join("recovery.signal").is_file());
    assert_eq!(
        fs::read_to_string(data.join("postgresql.auto.conf.drkit-rollback")).unwrap(),
        "work_mem = '8MB'\n"
    );
    let auto = fs::read_to_string(data.join("postgresql.auto.conf")).unwrap();
    assert!(
        auto.contains("recovery_target_time = '2001-02-03 03:05:06.000000+00'"),
        "{auto}"
    );

    // A clean data directory, but an archive with a hole: refused for the archive.
    let data2 = t.path().join("data2");
    fs::create_dir(&data2).unwrap();
    fs::write(data2.join("PG_VERSION"), "15\n").unwrap();
    let segs = segments(&dir);
    fs::remove_file(dir.join(&segs[1])).unwrap();
    let r = output(
        drkit()
            .args(["backup", "pitr-config", "--archive"])
            .arg(&dir)
            .args(["--target-time", "2999-01-01T00:00:00Z", "--data-dir"])
            .arg(&data2)
            .output()
            .unwrap(),
    );
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stdout.contains("wal_missing"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("refused the archive does not take recovery"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("nothing written"), "{}", r.stdout);
    assert_eq!(fs::read_dir(&data2).unwrap().count(), 1);
}

/// `pg_basebackup -Ft` of a cluster with a tablespace writes `<oid>.tar` beside base.tar, whose
/// files the manifest lists as `pg_tblspc/<oid>/...`: checked like base.tar, on a cluster of
/// its own (a tablespace on a shared server would end up in other tests' backups).
#[test]
fn tablespace_tars_are_checked_against_the_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let url = crate::replay::support::start_cluster(&dir.path().join("pg"), &[]);
    // The cluster's own directory (pg.sh makes it reachable by the server's user).
    let real = PathBuf::from(
        fs::read_to_string(dir.path().join("pg/cluster"))
            .unwrap()
            .trim(),
    );
    let ts = real.join("ts");
    run_ok(as_owner("mkdir").arg(&ts));
    psql(
        &url,
        &format!("CREATE TABLESPACE ts LOCATION '{}'", ts.display()),
    );
    psql(
        &url,
        "CREATE TABLE t TABLESPACE ts AS SELECT g AS a, md5(g::text) AS b \
         FROM generate_series(1, 20000) g",
    );
    let oid = psql(&url, "SELECT oid FROM pg_tablespace WHERE spcname = 'ts'");
    let bb = real.join("bb");
    pg_basebackup(&url, &bb);
    let tar = bb.join(format!("{oid}.tar"));
    assert!(tar.is_file(), "no {}", tar.display());

    let backup_verify = |paths: &[&Path]| {
        output(
            drkit()
                .args(["backup", "verify", "--format", "json"])
                .args(paths)
                .output()
                .unwrap(),
        )
    };
    let r = backup_verify(&[&bb]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    let line = r
        .lines
        .iter()
        .find(|l| l["format"] == "tablespace_tar")
        .unwrap_or_else(|| panic!("{}", r.stdout));
    assert!(line["entries"].as_u64().unwrap() > 0, "{line}");

    // A copy with one byte of the table's data flipped, and one cut short.
    let scratch = tempfile::tempdir().unwrap();
    fs::copy(
        bb.join("backup_manifest"),
        scratch.path().join("backup_manifest"),
    )
    .unwrap();
    let mut bytes = fs::read(&tar).unwrap();
    let copy = scratch.path().join(format!("{oid}.tar"));
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    fs::write(&copy, &bytes).unwrap();
    let r = backup_verify(&[&copy]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let bad = r.one("basebackup_file_checksum");
    assert!(
        bad["entry"]
            .as_str()
            .unwrap()
            .starts_with(&format!("pg_tblspc/{oid}/")),
        "{bad}"
    );
    fs::write(&copy, &bytes[..8192]).unwrap();
    let r = backup_verify(&[&copy]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    r.one("tar_truncated");
    assert!(r
        .of_kind("basebackup_missing_file")
        .iter()
        .all(|f| f["entry"]
            .as_str()
            .unwrap()
            .starts_with(&format!("pg_tblspc/{oid}/"))));
    assert!(!r.of_kind("basebackup_missing_file").is_empty());
}
