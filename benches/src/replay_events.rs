//! The replay's per-event work, shared by the criterion bench (`benches/replay_encode.rs`) and
//! the interleaved best-of-N script (`examples/encode_rate.rs`), so both time the same thing.

use drkit_testdata::rng::{Telemetry, BASE_TIMESTAMP_MS};
use replay::mapping::{encode_message, Mapping, MessageRef, TimeWindow};
use replay::project::Tree;

/// `n` MS5 telemetry events (key, JSON value), deterministic.
pub fn ms5_events(n: usize) -> Vec<(String, String)> {
    let mut tel = Telemetry::new(5, 100);
    (0..n)
        .map(|i| {
            let e = tel.event(BASE_TIMESTAMP_MS + i as i64 * 10);
            (e.key, e.value)
        })
        .collect()
}

/// The pointers of the `ms5-telemetry` preset, for the scanner alone.
pub fn telemetry_tree() -> (Tree, usize) {
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
    let toks: Vec<(usize, &[String])> = ptrs.iter().enumerate().map(|(i, p)| (i, &p[..])).collect();
    (Tree::build(&toks), ptrs.len())
}

/// Documents the scanner accepted (every one, unless it is broken).
pub fn scan_all(tree: &Tree, slots: usize, events: &[(String, String)]) -> usize {
    let mut out = vec![];
    events
        .iter()
        .filter(|(_, v)| tree.read(v.as_bytes(), &mut out, slots).is_ok())
        .count()
}

/// Encodes every event with `m` onto `out` (cleared first); returns the rows written.
pub fn encode_all(m: &Mapping, events: &[(String, String)], out: &mut Vec<u8>) -> u64 {
    out.clear();
    let mut rows = 0u64;
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
        if let Ok(e) = encode_message(m, &msg, &TimeWindow::default(), out) {
            rows += u64::from(e.rows);
        }
    }
    rows
}
