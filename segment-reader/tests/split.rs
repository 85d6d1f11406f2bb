//! A large segment verified in parallel chunks must report exactly what a sequential walk
//! reports — clean, and with damage planted on and around chunk boundaries.

use std::fs;
use std::path::Path;

use drkit_testdata::bench::{write_bench, BenchConfig};
use kafka_protocol::records::Compression;
use segment_reader::segment::{verify_segment, Options, SegmentFiles, SegmentReport};

const CHUNK: u64 = 1 << 20;

fn make(dir: &Path) -> SegmentFiles {
    let part = dir.join("telemetry-0");
    write_bench(&BenchConfig {
        out: part.clone(),
        segment_bytes: 9 * CHUNK,
        segments: 1,
        compression: Compression::None,
        batch_records: 7,
    })
    .expect("generate");
    SegmentFiles {
        base_offset: 0,
        log: part.join("00000000000000000000.log"),
        index: Some(part.join("00000000000000000000.index")),
        timeindex: Some(part.join("00000000000000000000.timeindex")),
        txnindex: None,
        active: false,
        kraft_snapshot: false,
    }
}

fn run(seg: &SegmentFiles, threads: usize, deep: bool) -> SegmentReport {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let opts = Options {
        deep,
        split_bytes: 2 * CHUNK,
        chunk_bytes: CHUNK,
    };
    pool.install(|| verify_segment(seg, None, opts, &|_| {}))
}

fn same(a: &SegmentReport, b: &SegmentReport) {
    let mut fa = a.findings.clone();
    let mut fb = b.findings.clone();
    fa.sort_by_key(|f| (f.position, f.kind.as_str()));
    fb.sort_by_key(|f| (f.position, f.kind.as_str()));
    assert_eq!(fa, fb);
    assert_eq!(a.stats, b.stats);
    assert_eq!(a.codec_bytes, b.codec_bytes);
    assert_eq!(a.decoded_bytes, b.decoded_bytes);
}

#[test]
fn parallel_chunks_agree_with_the_sequential_walk() {
    let tmp = tempfile::tempdir().unwrap();
    let seg = make(tmp.path());
    let seq = run(&seg, 1, true);
    assert!(seq.stats.batches > 1000, "{:?}", seq.stats);
    assert!(
        seq.findings
            .iter()
            .all(|f| f.severity < segment_reader::Severity::Warning),
        "{:?}",
        seq.findings
    );
    let par = run(&seg, 2, true);
    assert_eq!(seq.chunks, 0);
    assert!(
        par.chunks >= 8,
        "the parallel path was taken: {}",
        par.chunks
    );
    same(&seq, &par);
    same(&run(&seg, 1, false), &run(&seg, 2, false));
}

#[test]
fn damage_across_chunk_boundaries_is_reported_the_same_way() {
    let tmp = tempfile::tempdir().unwrap();
    let seg = make(tmp.path());
    let mut bytes = fs::read(&seg.log).unwrap();
    // A zeroed run straddling the first boundary, a flipped byte just after the second, and a
    // flipped byte in the batch that straddles the third.
    for b in &mut bytes[(CHUNK - 3000) as usize..(CHUNK + 5000) as usize] {
        *b = 0;
    }
    bytes[(2 * CHUNK + 10) as usize] ^= 0xff;
    bytes[(3 * CHUNK - 1) as usize] ^= 0xff;
    fs::write(&seg.log, &bytes).unwrap();
    let seq = run(&seg, 1, false);
    assert!(seq.stats.corrupt_ranges >= 3, "{:?}", seq.findings);
    let par = run(&seg, 2, false);
    assert!(
        par.chunks >= 8,
        "the parallel path was taken: {}",
        par.chunks
    );
    same(&seq, &par);
}
