//! The replay's per-event CPU cost as a script, for a shared and noisy machine: the cases run
//! round-robin in one process and each keeps its best pass over 100,000 MS5 events, so a burst
//! of load from elsewhere slows a pass without moving the result. Ratios are against the first
//! case (use `ignored`, serde_json's syntax-only pass). With one pass (`1 CASE`) it is the
//! workload for `valgrind --tool=cachegrind` instruction counts.
//!
//! `cargo run --profile bench -p drkit-benches --example encode_rate -- 40 ignored scan
//! ms5-telemetry ms5-metrics`
use drkit_testdata::rng::{Telemetry, BASE_TIMESTAMP_MS};
use replay::mapping::{encode_message, Mapping, MessageRef, TimeWindow};

fn run(which: &str, events: &[(String, String)]) {
    match which {
        "none" => {}
        "ignored" => {
            let n = events
                .iter()
                .filter(|(_, v)| serde_json::from_str::<serde::de::IgnoredAny>(v).is_ok())
                .count();
            assert_eq!(n, events.len());
        }
        "scan" => {
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
            let n = events
                .iter()
                .filter(|(_, v)| tree.read(v.as_bytes(), &mut slots, 7).is_ok())
                .count();
            assert_eq!(n, events.len());
        }
        preset => {
            let m = Mapping::preset(preset).unwrap();
            let mut out = Vec::with_capacity(64 << 20);
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
                    .unwrap()
                    .rows;
            }
            assert_eq!(rows as usize, events.len());
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let reps: usize = args.first().and_then(|r| r.parse().ok()).unwrap_or(1);
    let cases: Vec<&str> = args.iter().skip(1).map(String::as_str).collect();
    let mut tel = Telemetry::new(5, 100);
    let events: Vec<(String, String)> = (0..100_000)
        .map(|i| {
            let e = tel.event(BASE_TIMESTAMP_MS + i as i64 * 10);
            (e.key, e.value)
        })
        .collect();
    let mut best = vec![f64::MAX; cases.len()];
    for _ in 0..reps {
        for (i, c) in cases.iter().enumerate() {
            let t0 = std::time::Instant::now();
            run(c, &events);
            best[i] = best[i].min(t0.elapsed().as_secs_f64());
        }
    }
    if reps > 1 {
        for (i, c) in cases.iter().enumerate() {
            println!(
                "{c}: best {:.0} ns/event, {:.2} M events/s, {:.2} x ignored",
                best[i] * 1e4,
                0.1 / best[i],
                best[0] / best[i]
            );
        }
    }
}
