//! The replay's per-event CPU cost as a script, for a shared and noisy machine: the cases run
//! round-robin in one process and each keeps its best pass over 100,000 MS5 events, so a burst
//! of load from elsewhere slows a pass without moving the result. Ratios are against the first
//! case (use `ignored`, serde_json's syntax-only pass). With one pass (`1 CASE`) it is the
//! workload for `valgrind --tool=cachegrind` instruction counts: (CASE − `none`) / 100,000 per
//! event.
//!
//! `cargo run --profile bench -p drkit-benches --example encode_rate -- 40 ignored scan
//! ms5-telemetry ms5-metrics`

use drkit_benches::replay_events::{encode_all, ms5_events, scan_all, telemetry_tree};
use replay::mapping::Mapping;

const EVENTS: usize = 100_000;

fn run(which: &str, events: &[(String, String)], out: &mut Vec<u8>) {
    let done = match which {
        // Nothing: the baseline (event generation) to subtract from instruction counts.
        "none" => EVENTS as u64,
        "ignored" => events
            .iter()
            .filter(|(_, v)| serde_json::from_str::<serde::de::IgnoredAny>(v).is_ok())
            .count() as u64,
        "scan" => {
            let (tree, slots) = telemetry_tree();
            scan_all(&tree, slots, events) as u64
        }
        preset => encode_all(&Mapping::preset(preset).expect("preset"), events, out),
    };
    assert_eq!(done, EVENTS as u64, "{which} did not take every event");
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let reps: usize = args.first().and_then(|r| r.parse().ok()).unwrap_or(1);
    let cases: Vec<&str> = args.iter().skip(1).map(String::as_str).collect();
    let events = ms5_events(EVENTS);
    let mut out = Vec::with_capacity(64 << 20);
    let mut best = vec![f64::MAX; cases.len()];
    for _ in 0..reps {
        for (i, c) in cases.iter().enumerate() {
            let t0 = std::time::Instant::now();
            run(c, &events, &mut out);
            best[i] = best[i].min(t0.elapsed().as_secs_f64());
        }
    }
    if reps > 1 {
        for (i, c) in cases.iter().enumerate() {
            println!(
                "{c}: best {:.0} ns/event, {:.2} M events/s, {:.2} x {}",
                best[i] * 1e9 / EVENTS as f64,
                EVENTS as f64 / best[i] / 1e6,
                best[0] / best[i],
                cases[0]
            );
        }
    }
}
