//! Helpers shared by the integration tests: run the binary, parse its JSON Lines, copy fixtures.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// Every stdout line as JSON of type `T` (a typed line enum, or `Value`); a line that does not
/// parse fails the test with the line in the message.
pub fn json_lines<T: serde::de::DeserializeOwned>(stdout: &[u8]) -> Vec<T> {
    std::str::from_utf8(stdout)
        .expect("stdout is UTF-8")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

pub fn drkit() -> Command {
    Command::new(env!("CARGO_BIN_EXE_drkit"))
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

pub fn testdata() -> PathBuf {
    repo_root().join("testdata/data")
}

/// Real broker-written directories, when they are beside the checkout.
pub fn kafka_real() -> Option<PathBuf> {
    let p = std::env::var_os("DRKIT_KAFKA_REAL")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("../shared/kafka-real"));
    p.is_dir().then_some(p)
}

pub fn legacy_captures() -> Option<PathBuf> {
    let p = repo_root().join("../shared/kafka-legacy-captures/extracted-message-sets");
    p.is_dir().then_some(p)
}

pub struct Run {
    pub code: i32,
    pub lines: Vec<Value>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn findings(&self) -> Vec<&Value> {
        self.lines
            .iter()
            .filter(|l| l["type"] == "finding")
            .collect()
    }
    pub fn summary(&self) -> &Value {
        self.lines
            .iter()
            .rev()
            .find(|l| l["type"] == "summary")
            .expect("a summary line")
    }
    pub fn errors(&self) -> Vec<&Value> {
        self.findings()
            .into_iter()
            .filter(|f| f["severity"] == "error")
            .collect()
    }
    pub fn of_kind(&self, kind: &str) -> Vec<&Value> {
        self.findings()
            .into_iter()
            .filter(|f| f["kind"] == kind)
            .collect()
    }
    /// The one finding of `kind`; fails with everything that was found otherwise.
    pub fn one(&self, kind: &str) -> &Value {
        let v = self.of_kind(kind);
        assert_eq!(
            v.len(),
            1,
            "expected one {kind} finding, got:\n{}",
            self.stdout
        );
        v[0]
    }
}

pub fn output(out: Output) -> Run {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines = stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .collect();
    Run {
        code: out.status.code().unwrap_or(-1),
        lines,
        stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `drkit segments verify --format json [extra] PATH`.
pub fn verify(path: &Path, extra: &[&str]) -> Run {
    let out = drkit()
        .args(["segments", "verify", "--format", "json"])
        .args(extra)
        .arg(path)
        .output()
        .expect("run drkit");
    output(out)
}

pub fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("mkdir");
    for e in fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        let dst = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            fs::copy(e.path(), &dst).expect("copy");
        }
    }
}

/// A private copy of a committed test partition, to damage.
pub fn scratch_partition(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dst = tmp.path().join(name);
    copy_dir(&testdata().join("logs").join(name), &dst);
    (tmp, dst)
}

pub fn segment_files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    v.sort();
    v
}
