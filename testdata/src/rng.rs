//! Deterministic pseudo-random numbers and MS5-style telemetry payloads.
//!
//! The committed test data must be byte-for-byte reproducible, so nothing here reads the clock or
//! the OS RNG: a fixed-seed SplitMix64 drives every choice and timestamps advance from a fixed base.

/// 2026-01-15T08:00:00Z in milliseconds: the first timestamp of every generated partition.
pub const BASE_TIMESTAMP_MS: i64 = 1_768_464_000_000;

/// SplitMix64: tiny, fast and good enough for test data; its output is stable across platforms.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator with a fixed seed; different partitions use different seeds so they do not
    /// repeat each other's payloads.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform integer in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// Uniform float in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A random (version 4) UUID in its canonical text form.
    pub fn uuid(&mut self) -> String {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.next_u64().to_be_bytes());
        b[8..].copy_from_slice(&self.next_u64().to_be_bytes());
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }
}

/// Formats epoch milliseconds as ISO 8601 UTC (`2026-01-15T08:00:00.123Z`), the form the MS5 edge
/// gateway puts in `timestamp`. Written out here (civil-from-days) to avoid a date crate.
pub fn iso8601(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        sod / 3600,
        (sod % 3600) / 60,
        sod % 60
    )
}

/// A fleet of assets emitting sparse telemetry events, one metric per event, as the MS5 edge
/// gateway does (`telemetry.asset.event.v1`).
#[derive(Debug, Clone)]
pub struct Telemetry {
    rng: Rng,
    assets: Vec<String>,
}

/// One generated event: the Kafka key (assetId), the JSON value, and its timestamp.
#[derive(Debug, Clone)]
pub struct Event {
    /// The asset's UUID, used as the record key so a partition keeps per-asset order.
    pub key: String,
    /// The JSON document, as the producer would serialise it.
    pub value: String,
    /// Event time in epoch milliseconds (the record's CreateTime).
    pub timestamp_ms: i64,
}

impl Telemetry {
    /// A fleet of `assets` assets driven by `seed`.
    pub fn new(seed: u64, assets: usize) -> Self {
        let mut rng = Rng::new(seed);
        let assets = (0..assets).map(|_| rng.uuid()).collect();
        Telemetry { rng, assets }
    }

    /// Access to the generator's RNG for callers that need extra choices from the same stream.
    pub fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }

    /// The fleet's asset ids.
    pub fn assets(&self) -> &[String] {
        &self.assets
    }

    /// The next event at `timestamp_ms`, for a random asset and metric.
    pub fn event(&mut self, timestamp_ms: i64) -> Event {
        let asset = self.assets[self.rng.range(0, self.assets.len() as u64 - 1) as usize].clone();
        self.event_for(asset, timestamp_ms)
    }

    /// The next event at `timestamp_ms` for a given asset.
    pub fn event_for(&mut self, asset: String, timestamp_ms: i64) -> Event {
        let event_id = self.rng.uuid();
        let (metric, unit, base, spread) = match self.rng.range(0, 3) {
            0 => ("temperature", "C", 60.0, 25.0),
            1 => ("pressure", "bar", 4.0, 1.5),
            2 => ("vibration", "mm/s", 2.0, 3.0),
            _ => ("speed", "rpm", 1450.0, 60.0),
        };
        let v = base + spread * (self.rng.unit() - 0.5);
        let quality = if self.rng.range(0, 40) == 0 {
            "uncertain"
        } else {
            "good"
        };
        let value = format!(
            "{{\"eventId\":\"{event_id}\",\"timestamp\":\"{}\",\"assetId\":\"{asset}\",\"type\":\"telemetry\",\"lineId\":\"line-{}\",\"data\":{{\"{metric}\":{v:.3},\"quality\":\"{quality}\",\"unit\":\"{unit}\"}}}}",
            iso8601(timestamp_ms),
            asset.as_bytes()[0] % 4 + 1,
        );
        Event {
            key: asset,
            value,
            timestamp_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_matches_known_dates() {
        assert_eq!(iso8601(BASE_TIMESTAMP_MS), "2026-01-15T08:00:00.000Z");
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(951_782_400_123), "2000-02-29T00:00:00.123Z");
    }

    #[test]
    fn telemetry_is_deterministic_json() {
        let a = Telemetry::new(7, 3).event(BASE_TIMESTAMP_MS).value;
        let b = Telemetry::new(7, 3).event(BASE_TIMESTAMP_MS).value;
        assert_eq!(a, b);
        let v: serde_json::Value = serde_json::from_str(&a).unwrap();
        assert_eq!(v["type"], "telemetry");
        assert!(v["data"].is_object());
    }
}
