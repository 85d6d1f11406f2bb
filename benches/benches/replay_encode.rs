//! Criterion bench of the replay's CPU work per event: MS5 telemetry JSON through the
//! `ms5-telemetry` and `ms5-metrics` mappings into binary COPY rows, against the cost of parsing
//! the same documents into a `serde_json::Value` alone (the reference every JSON-driven mapping
//! pays). The target is 1.5 million events/s per core for decode and encode.
//!
//! Every iteration checks its own result (one row per event, a non-empty buffer).

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use drkit_testdata::rng::{Telemetry, BASE_TIMESTAMP_MS};
use replay::mapping::{encode_message, Mapping, MessageRef, TimeWindow};

const EVENTS: usize = 100_000;

fn encode(c: &mut Criterion) {
    let mut tel = Telemetry::new(5, 100);
    let events: Vec<(String, String)> = (0..EVENTS)
        .map(|i| {
            let e = tel.event(BASE_TIMESTAMP_MS + i as i64 * 10);
            (e.key, e.value)
        })
        .collect();
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
    g.bench_function("drkit_scan_only", |b| {
        let ptrs: Vec<Vec<String>> = [
            "timestamp",
            "assetId",
            "data/temperature",
            "data/pressure",
            "data/vibration",
            "data/speed",
            "metadata",
        ]
        .iter()
        .map(|p| p.split('/').map(str::to_string).collect())
        .collect();
        let toks: Vec<(usize, &[String])> =
            ptrs.iter().enumerate().map(|(i, p)| (i, &p[..])).collect();
        let tree = replay::project::Tree::build(&toks);
        let mut slots = vec![];
        b.iter(|| {
            let n = events
                .iter()
                .filter(|(_, v)| tree.read(v.as_bytes(), &mut slots, 7).is_ok())
                .count();
            assert_eq!(n, EVENTS);
        })
    });
    for preset in ["ms5-telemetry", "ms5-metrics"] {
        let m = Mapping::preset(preset).expect("preset");
        let mut out = Vec::with_capacity(64 << 20);
        g.bench_function(preset, |b| {
            b.iter(|| {
                out.clear();
                let mut rows = 0;
                for (i, (k, v)) in events.iter().enumerate() {
                    let msg = MessageRef {
                        topic: "telemetry",
                        partition: 0,
                        offset: i as i64,
                        timestamp: Some(BASE_TIMESTAMP_MS),
                        key: Some(k.as_bytes()),
                        value: Some(v.as_bytes()),
                        headers: &[],
                    };
                    rows += encode_message(&m, &msg, &TimeWindow::default(), &mut out)
                        .expect("encode")
                        .rows;
                }
                assert_eq!(rows as usize, EVENTS);
                assert!(!out.is_empty());
            })
        });
    }
    g.finish();
}

criterion_group!(benches, encode);
criterion_main!(benches);
