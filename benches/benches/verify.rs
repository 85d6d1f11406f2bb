//! Criterion benches of the verifier against its references, on moderate generated data:
//!
//! - `segment`: one page-cached segment (64 MiB, uncompressed; `DRKIT_BENCH_MIB` overrides):
//!   a plain pass over the mapped bytes (the memory-bandwidth reference), `verify` with one job
//!   (shallow and `--deep`), and kafka-protocol's `RecordBatchDecoder` over the same bytes.
//! - `deep`: `--deep` per codec (16 MiB stored each) against plain decompression of the same
//!   payloads with the same crates (for `none`, against a plain pass over the same bytes).
//!
//! Every iteration checks its own result (batch and record counts against the generator's), so
//! a broken bench fails instead of timing nothing. The target numbers (1 GiB segments, ratios,
//! memory) come from `scripts/bench.sh`; see docs/PERFORMANCE.md.

use std::time::Duration;

use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use drkit_benches::{
    check_segment, closed_segment, kafka_protocol_decode, map, mapped_bytes, plain_pass,
    plain_pass_file, pool, verify_segment, warm, Dataset, PlainDecompressor, CODECS,
};

fn mib_from_env(default: u64) -> u64 {
    std::env::var("DRKIT_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn segment(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let mib = mib_from_env(64);
    let ds = Dataset::generate(tmp.path(), "bench-0", mib << 20, 1, "none").expect("generate");
    let log = ds.logs[0].clone();
    warm(std::slice::from_ref(&log)).expect("warm");
    let (batches, records) = (ds.batches, ds.records);
    let seg = closed_segment(&log);
    let one = pool(1).expect("pool");
    let expected_xor = plain_pass_file(&log).expect("plain pass");
    let kp_bytes = mapped_bytes(&log).expect("map");

    let mut g = c.benchmark_group(format!("segment_{mib}MiB"));
    g.throughput(Throughput::Bytes(ds.bytes))
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    g.bench_function("plain_pass", |b| {
        b.iter(|| assert_eq!(plain_pass_file(&log).expect("map"), expected_xor))
    });
    g.bench_function("verify_1_job", |b| {
        b.iter(|| {
            one.install(|| check_segment(&verify_segment(&seg, false), batches, records))
                .expect("verify counts")
        })
    });
    g.bench_function("verify_deep_1_job", |b| {
        b.iter(|| {
            one.install(|| check_segment(&verify_segment(&seg, true), batches, records))
                .expect("verify counts")
        })
    });
    g.bench_function("kafka_protocol_decode", |b| {
        b.iter(|| {
            assert_eq!(
                kafka_protocol_decode(&kp_bytes).expect("kafka-protocol decodes"),
                (batches, records)
            )
        })
    });
    g.finish();
}

fn deep(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let one = pool(1).expect("pool");
    let mut g = c.benchmark_group("deep_16MiB");
    // gzip and zstd take ~0.2 s per iteration: flat sampling keeps 10 samples affordable.
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for codec in CODECS {
        let ds = Dataset::generate(tmp.path(), &format!("{codec}-0"), 16 << 20, 1, codec)
            .expect("generate");
        let log = ds.logs[0].clone();
        let bytes = map(&log).expect("map");
        plain_pass(&bytes);
        let (batches, records) = (ds.batches, ds.records);
        let seg = closed_segment(&log);
        let first = verify_segment(&seg, true);
        check_segment(&first, batches, records).expect("verify counts");
        let decoded: u64 = first.decoded_bytes.iter().sum();
        g.throughput(Throughput::Bytes(ds.bytes));
        if codec == "none" {
            // Nothing to decompress: the reference is a plain pass over the same bytes.
            let expected_xor = plain_pass(&bytes);
            g.bench_function(BenchmarkId::new("plain_pass", codec), |b| {
                b.iter(|| assert_eq!(plain_pass(&bytes), expected_xor))
            });
        } else {
            let mut plain = PlainDecompressor::default();
            g.bench_function(BenchmarkId::new("plain_decompression", codec), |b| {
                b.iter(|| {
                    let d = plain.run(&bytes).expect("decompresses");
                    assert_eq!((d.batches, d.bytes), (batches, decoded));
                })
            });
        }
        g.bench_function(BenchmarkId::new("verify_deep_1_job", codec), |b| {
            b.iter(|| {
                let r = one.install(|| verify_segment(&seg, true));
                check_segment(&r, batches, records).expect("verify counts");
                assert_eq!(r.decoded_bytes.iter().sum::<u64>(), decoded);
            })
        });
    }
    g.finish();
}

criterion_group!(benches, segment, deep);
criterion_main!(benches);
