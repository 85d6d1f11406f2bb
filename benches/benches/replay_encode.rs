//! Criterion bench of the replay's CPU work per event: MS5 telemetry JSON through the
//! `ms5-telemetry` and `ms5-metrics` mappings into binary COPY rows, against the cost of parsing
//! the same documents into a `serde_json::Value` alone (the reference every JSON-driven mapping
//! pays). The target is 1.5 million events/s per core for decode and encode.
//!
//! Every iteration checks its own result (one row per event, a non-empty buffer).

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use drkit_benches::replay_events::{encode_all, ms5_events, scan_all, telemetry_tree};
use replay::mapping::Mapping;

const EVENTS: usize = 100_000;

fn encode(c: &mut Criterion) {
    let events = ms5_events(EVENTS);
    let mut g = c.benchmark_group("replay_encode");
    g.throughput(Throughput::Elements(EVENTS as u64))
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    g.bench_function("serde_json_value_only", |b| {
        b.iter(|| {
            let n = events
                .iter()
                .filter(|(_, v)| serde_json::from_str::<serde_json::Value>(v).is_ok())
                .count();
            assert_eq!(n, EVENTS);
        })
    });
    // The floor of any serde_json-driven reader: a full syntax check that builds nothing.
    g.bench_function("serde_json_ignored_any", |b| {
        b.iter(|| {
            let n = events
                .iter()
                .filter(|(_, v)| serde_json::from_str::<serde::de::IgnoredAny>(v).is_ok())
                .count();
            assert_eq!(n, EVENTS);
        })
    });
    // drkit's own scanner alone (validation plus the spans of the ms5-telemetry members).
    let (tree, slots) = telemetry_tree();
    g.bench_function("drkit_scan_only", |b| {
        b.iter(|| assert_eq!(scan_all(&tree, slots, &events), EVENTS))
    });
    for preset in ["ms5-telemetry", "ms5-metrics"] {
        let m = Mapping::preset(preset).expect("preset");
        let mut out = Vec::with_capacity(64 << 20);
        g.bench_function(preset, |b| {
            b.iter(|| {
                assert_eq!(encode_all(&m, &events, &mut out), EVENTS as u64);
                assert!(!out.is_empty());
            })
        });
    }
    g.finish();
}

criterion_group!(benches, encode);
criterion_main!(benches);
