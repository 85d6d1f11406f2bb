//! drkit's test data generator.
//!
//! Writes small, deterministic Kafka partition directories with an encoder independent of drkit
//! (the kafka-protocol crate for magic 2; a hand-written writer for legacy magic 0/1), plus a
//! manifest of the counts a correct reader must find. See testdata/README.md.

pub mod bench;
pub mod legacy;
pub mod log;
pub mod partitions;
pub mod rng;
pub mod v2;

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use kafka_protocol::records::Compression;
use serde_json::{json, Map, Value};

use crate::log::{Partition, Shutdown};

/// Name of the Kafka log dir inside the output directory.
pub const LOG_DIR: &str = "logs";

/// Builds every committed partition, in a fixed order.
pub fn all_partitions() -> Result<Vec<Partition>> {
    let mut v = vec![
        partitions::plain()?,
        partitions::codec("gzip-0", Compression::Gzip, false, 21)?,
        partitions::codec("snappy-0", Compression::Snappy, false, 22)?,
        partitions::codec("snappy-raw-0", Compression::None, true, 23)?,
        partitions::codec("lz4-0", Compression::Lz4, false, 24)?,
        partitions::codec("zstd-0", Compression::Zstd, false, 25)?,
        partitions::txn()?,
        partitions::compacted()?,
        partitions::legacy(0)?,
        partitions::legacy(1)?,
        partitions::active()?,
    ];
    let topics: Vec<String> = v.iter().map(|p| topic_of(&p.name).0).collect();
    let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
    v.push(partitions::cluster_metadata(&topics)?);
    Ok(v)
}

/// Splits `<topic>-<partition>`.
pub fn topic_of(dir: &str) -> (String, u32) {
    let (t, p) = dir.rsplit_once('-').unwrap_or((dir, "0"));
    (t.to_string(), p.parse().unwrap_or(0))
}

fn checkpoint(lines: &[(String, u32, i64)]) -> String {
    let mut s = format!("0\n{}\n", lines.len());
    for (t, p, o) in lines {
        s.push_str(&format!("{t} {p} {o}\n"));
    }
    s
}

/// Regenerates `out` (normally testdata/data): `out/logs/...` and `out/manifest.json`.
pub fn write_all(out: &Path) -> Result<()> {
    let log_dir = out.join(LOG_DIR);
    if log_dir.exists() {
        fs::remove_dir_all(&log_dir).with_context(|| format!("remove {}", log_dir.display()))?;
    }
    fs::create_dir_all(&log_dir)?;
    let mut manifest = Map::new();
    let mut recovery = vec![];
    let mut replication = vec![];
    for p in all_partitions()? {
        let name = p.name.clone();
        let (topic, part) = topic_of(&name);
        let kraft = name == "cluster-metadata-0";
        // A clean shutdown flushes everything; a running broker has flushed up to the active
        // segment's base offset (the flush at roll).
        let recovery_point = match p.shutdown {
            Shutdown::Clean => p.next_offset(),
            Shutdown::Preallocated(_) => p.segments.last().map_or(0, |s| s.base_offset),
        };
        let leo = p.next_offset();
        let mut m = p.write(&log_dir)?;
        m["topic"] = json!(topic);
        m["partition"] = json!(part);
        if !kraft {
            // Brokers keep __cluster_metadata out of these checkpoints; so do we.
            recovery.push((topic.clone(), part, recovery_point));
            replication.push((topic, part, leo));
        }
        manifest.insert(name, m);
    }
    fs::write(
        log_dir.join("recovery-point-offset-checkpoint"),
        checkpoint(&recovery),
    )?;
    fs::write(
        log_dir.join("replication-offset-checkpoint"),
        checkpoint(&replication),
    )?;
    fs::write(log_dir.join("log-start-offset-checkpoint"), checkpoint(&[]))?;
    fs::write(
        log_dir.join("meta.properties"),
        "#\n#Thu Jan 15 08:00:00 UTC 2026\nnode.id=1\ndirectory.id=3Rf1c2QcQd6m6b8xJxRZbw\nversion=1\ncluster.id=drkitTestCluster00000A\n",
    )?;
    let doc = json!({
        "format_version": 1,
        "generator": "drkit-testdata (cargo run -p drkit-testdata -- write)",
        "log_dir": LOG_DIR,
        "partitions": Value::Object(manifest),
    });
    fs::write(
        out.join("manifest.json"),
        serde_json::to_string_pretty(&doc)? + "\n",
    )?;
    Ok(())
}
