//! A live broker truncates its active segment (recovery, or a follower catching up) while drkit
//! reads it. A memory-mapped read of a page past the new end of file raises SIGBUS and kills the
//! process; drkit reads the active segment with positioned reads, so it must survive and report
//! the segment as it found it.

use std::fs::OpenOptions;
use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use drkit_testdata::bench::{write_bench, BenchConfig};
use kafka_protocol::records::Compression;

use crate::util::drkit;

#[test]
fn truncating_the_active_segment_mid_read_does_not_crash() {
    let tmp = tempfile::tempdir().unwrap();
    let part = tmp.path().join("telemetry-0");
    let cfg = BenchConfig {
        out: part.clone(),
        segment_bytes: 96 << 20,
        segments: 1,
        compression: Compression::None,
        batch_records: 20,
    };
    write_bench(&cfg).unwrap();
    let log = part.join("00000000000000000000.log");
    let full = std::fs::metadata(&log).unwrap().len();
    for (i, delay_ms) in [5u64, 40, 150].into_iter().enumerate() {
        let mut child = drkit()
            .args(["segments", "verify", "--format", "json", "--deep"])
            .arg(&part)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let f = OpenOptions::new().write(true).open(&log).unwrap();
        f.set_len(full / (i as u64 + 2)).unwrap();
        let status = child.wait().unwrap();
        assert_eq!(
            status.signal(),
            None,
            "drkit was killed by a signal: {status:?}"
        );
        assert!(matches!(status.code(), Some(0 | 1)), "{status:?}");
        // Restore the full segment for the next round.
        f.set_len(0).unwrap();
        drop(f);
        std::fs::remove_dir_all(&part).unwrap();
        write_bench(&cfg).unwrap();
    }
}
