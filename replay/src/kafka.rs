//! The broker source: a Kafka topic read through librdkafka (the `rdkafka` crate, bundled
//! librdkafka built from source).
//!
//! The position lives in the database, not in Kafka's committed offsets: every partition starts at
//! the progress table's next offset when it has one, else at `--start`. That is what makes
//! scale-out safe. Several `drkit replay` processes in one consumer group share the partitions;
//! when a rebalance takes partitions away, everything read from them is committed to the database
//! *before* they are given up, and partitions that arrive are started from a fresh read of the
//! progress table. A worker killed mid-transaction loses only its uncommitted transaction, which
//! the next owner reads again from the stored offset. The sink's guarded progress upsert is the
//! last line: two writers can never both move the same offset, so nothing is written twice.
//!
//! Rebalances are handled outside librdkafka's callback: the callback only records the event,
//! and the poll loop (which owns the chunk being built) commits, re-reads and calls
//! assign/unassign itself — librdkafka waits for that call before it goes on.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::message::{Headers, Message};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::ClientContext;

use crate::mapping::MessageRef;
use crate::source::{Flow, Pipeline, Resume, Source, SourceError, SourceStats};

/// Timeout of metadata, watermark and time lookups.
const LOOKUP: Duration = Duration::from_secs(15);

/// Where a partition with no stored progress starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    Earliest,
    Latest,
    Offset(i64),
    /// The first record at or after this time (epoch ms), by the broker's time index.
    Time(i64),
}

/// How partitions are chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Partitions {
    /// Every partition of the topic, assigned by this process alone.
    All,
    /// These partitions, assigned by this process alone.
    Only(Vec<i32>),
    /// A consumer group: the broker shares the partitions among its members.
    Group(String),
}

/// librdkafka settings (`-X key=value`). `Debug` shows secret values as `***`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Settings(pub Vec<(String, String)>);

/// Settings whose value must never be printed: passwords, secrets, keys, all of `sasl.*` but the
/// mechanism (a public name such as `PLAIN`: scrubbing it from messages would garble them and
/// hide which login failed).
pub fn is_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    if k == "sasl.mechanism" || k == "sasl.mechanisms" {
        return false;
    }
    k.contains("password")
        || k.contains("secret")
        || k.starts_with("sasl.")
        || k.contains("key.pem")
        || k.contains("oauthbearer")
}

impl Settings {
    /// Parses `key=value`.
    pub fn parse_one(kv: &str) -> Result<(String, String), String> {
        match kv.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
            _ => Err(format!(
                "-X {}: expected key=value",
                if is_secret(kv) { "***" } else { kv }
            )),
        }
    }

    /// `text` with every secret value replaced by `***` (librdkafka's errors may echo values).
    pub fn scrub(&self, text: &str) -> String {
        let mut t = text.to_string();
        for (k, v) in &self.0 {
            if is_secret(k) && !v.is_empty() {
                t = t.replace(v.as_str(), "***");
            }
        }
        t
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        for (k, v) in &self.0 {
            if is_secret(k) {
                m.entry(k, &"***");
            } else {
                m.entry(k, v);
            }
        }
        m.finish()
    }
}

/// A topic on a broker.
#[derive(Debug, Clone)]
pub struct KafkaSource {
    id: String,
    bootstrap: String,
    topic: String,
    partitions: Partitions,
    settings: Settings,
    start: Start,
    /// Stop at the high watermarks seen at start (else run until `until_ms` or forever).
    to_end: bool,
    /// A partition ends at its first record at or after this time (not consumed).
    until_ms: Option<i64>,
}

impl KafkaSource {
    /// The id defaults to `kafka`: offsets are Kafka's own, so a replay from a broker's disk
    /// (`--segments`) and one from the broker continue each other.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        bootstrap: String,
        topic: String,
        partitions: Partitions,
        settings: Settings,
        start: Start,
        to_end: bool,
        until_ms: Option<i64>,
        id: Option<String>,
    ) -> KafkaSource {
        KafkaSource {
            id: id.unwrap_or_else(|| "kafka".to_string()),
            bootstrap,
            topic,
            partitions,
            settings,
            start,
            to_end,
            until_ms,
        }
    }

    fn err(&self, what: &str, e: impl fmt::Display) -> SourceError {
        SourceError::Kafka(self.settings.scrub(&format!("{what}: {e}")))
    }

    fn config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap)
            // The database holds the position; Kafka's committed offsets are never used.
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false");
        match &self.partitions {
            Partitions::Group(g) => {
                c.set("group.id", g);
            }
            _ => {
                // librdkafka wants a group id even for assign(); it joins no group.
                c.set("group.id", format!("drkit-replay-{}", std::process::id()));
            }
        }
        for (k, v) in &self.settings.0 {
            c.set(k, v);
        }
        c
    }
}

/// Rebalance events recorded by the callback, handled by the poll loop.
#[derive(Debug)]
enum Event {
    Assign(Vec<i32>),
    Revoke(Vec<i32>),
}

struct Ctx {
    topic: String,
    pending: Mutex<Vec<Event>>,
    /// Set while closing: the callback then assigns/unassigns itself (nothing is in flight).
    closing: std::sync::atomic::AtomicBool,
}

impl ClientContext for Ctx {}

impl ConsumerContext for Ctx {
    fn rebalance(&self, c: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        let parts: Vec<i32> = tpl
            .elements_for_topic(&self.topic)
            .iter()
            .map(|e| e.partition())
            .collect();
        let assign = err == RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS;
        let revoke = err == RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS;
        if self.closing.load(std::sync::atomic::Ordering::SeqCst) {
            let coop = matches!(c.rebalance_protocol(), RebalanceProtocol::Cooperative);
            let _ = match (assign, coop) {
                (true, true) => c.incremental_assign(tpl),
                (true, false) => c.assign(tpl),
                (false, true) => c.incremental_unassign(tpl),
                (false, false) => c.unassign(),
            };
            return;
        }
        if let Ok(mut p) = self.pending.lock() {
            if assign {
                p.push(Event::Assign(parts));
            } else if revoke {
                p.push(Event::Revoke(parts));
            }
        }
    }
}

/// One partition this process reads.
#[derive(Debug, Clone, Copy)]
struct Part {
    /// Next offset to deliver.
    next: i64,
    /// High watermark at start (the end with `--to-end`).
    end: i64,
    done: bool,
}

impl Source for KafkaSource {
    fn id(&self) -> &str {
        &self.id
    }
    fn total_bytes(&self) -> Option<u64> {
        None
    }
    fn run(
        &mut self,
        resume: &Resume,
        visit: &mut dyn FnMut(&MessageRef<'_>) -> Flow,
    ) -> Result<SourceStats, SourceError> {
        /// Without a pipeline (no database to re-read): only explicit assignment is safe.
        struct Offline<'r>(&'r Resume);
        impl Pipeline for Offline<'_> {
            fn checkpoint(&mut self) -> bool {
                true
            }
            fn reload(&mut self, topic: &str, parts: &[i32]) -> Result<HashMap<i32, i64>, String> {
                Ok(parts
                    .iter()
                    .filter_map(|p| self.0 .0.get(&(topic.to_string(), *p)).map(|n| (*p, *n)))
                    .collect())
            }
            fn advance(&mut self, _: &str, _: i32, _: i64) {}
        }
        self.run_in(resume, &mut Offline(resume), visit)
    }

    fn run_in(
        &mut self,
        resume: &Resume,
        pipeline: &mut dyn Pipeline,
        visit: &mut dyn FnMut(&MessageRef<'_>) -> Flow,
    ) -> Result<SourceStats, SourceError> {
        let ctx = Ctx {
            topic: self.topic.clone(),
            pending: Mutex::new(vec![]),
            closing: false.into(),
        };
        let consumer: BaseConsumer<Ctx> = self
            .config()
            .create_with_context(ctx)
            .map_err(|e| self.err("consumer", e))?;
        let md = consumer
            .fetch_metadata(Some(&self.topic), LOOKUP)
            .map_err(|e| self.err(&format!("metadata of {}", self.topic), e))?;
        let all: Vec<i32> = md
            .topics()
            .iter()
            .filter(|t| t.name() == self.topic && t.error().is_none())
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        if all.is_empty() {
            return Err(SourceError::Kafka(format!(
                "topic {} does not exist or has no partitions",
                self.topic
            )));
        }
        // Watermarks at start: the end of `--to-end` and the resolution of earliest/latest.
        let mut marks: BTreeMap<i32, (i64, i64)> = BTreeMap::new();
        for p in &all {
            let w = consumer
                .fetch_watermarks(&self.topic, *p, LOOKUP)
                .map_err(|e| self.err(&format!("watermarks of {}/{p}", self.topic), e))?;
            marks.insert(*p, w);
        }
        let mut stats = SourceStats::default();
        let mut parts: BTreeMap<i32, Part> = BTreeMap::new();
        match &self.partitions {
            Partitions::Group(_) => consumer
                .subscribe(&[&self.topic])
                .map_err(|e| self.err("subscribe", e))?,
            Partitions::All | Partitions::Only(_) => {
                let chosen = match &self.partitions {
                    Partitions::Only(v) => {
                        if let Some(p) = v.iter().find(|p| !all.contains(p)) {
                            return Err(SourceError::Kafka(format!(
                                "topic {} has no partition {p} (it has {})",
                                self.topic,
                                all.len()
                            )));
                        }
                        v.clone()
                    }
                    _ => all.clone(),
                };
                let stored: HashMap<i32, i64> = chosen
                    .iter()
                    .map(|p| (*p, resume.next(&self.topic, *p)))
                    .filter(|(p, n)| *n > 0 || resume.0.contains_key(&(self.topic.clone(), *p)))
                    .collect();
                self.assign(&consumer, &chosen, &stored, &marks, &mut parts, false)?;
            }
        }
        let group = matches!(self.partitions, Partitions::Group(_));
        let mut last_check = Instant::now() - Duration::from_secs(10);
        let result = 'run: loop {
            // Rebalances first: commit before giving partitions up, re-read before taking them.
            let events: Vec<Event> = match consumer.context().pending.lock() {
                Ok(mut p) => std::mem::take(&mut *p),
                Err(_) => vec![],
            };
            for ev in events {
                match ev {
                    Event::Revoke(ps) => {
                        if !pipeline.checkpoint() {
                            break 'run Ok(());
                        }
                        for p in &ps {
                            parts.remove(p);
                        }
                        let r = if matches!(
                            consumer.rebalance_protocol(),
                            RebalanceProtocol::Cooperative
                        ) {
                            consumer.incremental_unassign(&self.tpl(&ps, &HashMap::new()))
                        } else {
                            consumer.unassign()
                        };
                        r.map_err(|e| self.err("unassign", e))?;
                    }
                    Event::Assign(ps) => {
                        let stored = pipeline
                            .reload(&self.topic, &ps)
                            .map_err(|e| self.err("progress", e))?;
                        let coop = matches!(
                            consumer.rebalance_protocol(),
                            RebalanceProtocol::Cooperative
                        );
                        self.assign(&consumer, &ps, &stored, &marks, &mut parts, coop)?;
                    }
                }
            }
            if self.to_end && parts.values().all(|p| p.done) {
                if !group {
                    break Ok(());
                }
                // A group member is done when the whole topic is in the database: partitions
                // of a dead member come here after its session times out.
                if last_check.elapsed() >= Duration::from_secs(1) {
                    last_check = Instant::now();
                    if !pipeline.checkpoint() {
                        break Ok(());
                    }
                    let stored = pipeline
                        .reload(&self.topic, &all)
                        .map_err(|e| self.err("progress", e))?;
                    let whole = marks
                        .iter()
                        .all(|(p, (lo, hi))| hi <= lo || stored.get(p).is_some_and(|n| n >= hi));
                    if whole {
                        break Ok(());
                    }
                }
            }
            let Some(polled) = consumer.poll(Duration::from_millis(100)) else {
                // Idle: a partition whose remaining offsets hold no messages (transaction
                // markers) is at its end when the fetch position is.
                if self.to_end {
                    if let Ok(pos) = consumer.position() {
                        for e in pos.elements_for_topic(&self.topic) {
                            if let (Some(p), Offset::Offset(o)) =
                                (parts.get_mut(&e.partition()), e.offset())
                            {
                                if !p.done && o >= p.end && p.next < p.end {
                                    pipeline.advance(&self.topic, e.partition(), p.end);
                                    p.next = p.end;
                                    p.done = true;
                                }
                            }
                        }
                    }
                }
                continue;
            };
            let m = match polled {
                Ok(m) => m,
                // Broker errors are transient for librdkafka (it reconnects); fatal ones stop.
                Err(rdkafka::error::KafkaError::MessageConsumptionFatal(code)) => {
                    break Err(self.err("consume", code));
                }
                Err(_) => continue,
            };
            if m.topic() != self.topic {
                continue;
            }
            let pending = consumer
                .context()
                .pending
                .lock()
                .map(|p| !p.is_empty())
                .unwrap_or(false);
            let Some(p) = parts.get_mut(&m.partition()) else {
                continue;
            };
            if pending || p.done {
                // Not consumed: the partition may be leaving, or it is finished; whoever
                // reads it next starts from the database.
                continue;
            }
            if m.offset() < p.next {
                stats.resumed_skipped += 1;
                continue;
            }
            let ts = m.timestamp().to_millis();
            if (self.to_end && m.offset() >= p.end)
                || self.until_ms.zip(ts).is_some_and(|(u, t)| t >= u)
            {
                p.done = true;
                continue;
            }
            // Empty (no allocation) unless the record has headers.
            let mut hdrs: Vec<(&[u8], Option<&[u8]>)> = Vec::new();
            if let Some(h) = m.headers() {
                hdrs.extend(h.iter().map(|h| (h.key.as_bytes(), h.value)));
            }
            let msg = MessageRef {
                topic: &self.topic,
                partition: m.partition(),
                offset: m.offset(),
                timestamp: ts,
                key: m.key(),
                value: m.payload(),
                headers: &hdrs,
            };
            stats.messages += 1;
            p.next = m.offset().saturating_add(1);
            if self.to_end && p.next >= p.end {
                p.done = true;
            }
            if visit(&msg) == Flow::Stop {
                break Ok(());
            }
        };
        // Commit what was read before leaving the group, so the next owner starts after it.
        pipeline.checkpoint();
        consumer
            .context()
            .closing
            .store(true, std::sync::atomic::Ordering::SeqCst);
        if let Ok(mut p) = consumer.context().pending.lock() {
            p.clear();
        }
        if group {
            consumer.unsubscribe();
        }
        drop(consumer);
        result.map(|()| stats)
    }
}

impl KafkaSource {
    fn tpl(&self, parts: &[i32], offsets: &HashMap<i32, i64>) -> TopicPartitionList {
        let mut t = TopicPartitionList::new();
        for p in parts {
            match offsets.get(p) {
                Some(o) => {
                    let _ = t.add_partition_offset(&self.topic, *p, Offset::Offset(*o));
                }
                None => {
                    t.add_partition(&self.topic, *p);
                }
            }
        }
        t
    }

    /// Assigns partitions at their stored offsets, else at `--start` (resolved here so the loop
    /// always knows each partition's next offset).
    fn assign(
        &self,
        consumer: &BaseConsumer<Ctx>,
        ps: &[i32],
        stored: &HashMap<i32, i64>,
        marks: &BTreeMap<i32, (i64, i64)>,
        parts: &mut BTreeMap<i32, Part>,
        incremental: bool,
    ) -> Result<(), SourceError> {
        let mut offsets = HashMap::new();
        let mut by_time = TopicPartitionList::new();
        for p in ps {
            let (lo, hi) = marks.get(p).copied().unwrap_or((0, 0));
            let o = match (stored.get(p), self.start) {
                (Some(n), _) => *n,
                (None, Start::Earliest) => lo,
                (None, Start::Latest) => hi,
                (None, Start::Offset(n)) => n.max(lo),
                (None, Start::Time(t)) => {
                    let _ = by_time.add_partition_offset(&self.topic, *p, Offset::Offset(t));
                    continue;
                }
            };
            offsets.insert(*p, o);
        }
        if by_time.count() > 0 {
            let found = consumer
                .offsets_for_times(by_time, LOOKUP)
                .map_err(|e| self.err("offsets for time", e))?;
            for e in found.elements_for_topic(&self.topic) {
                let (_, hi) = marks.get(&e.partition()).copied().unwrap_or((0, 0));
                // No record at or after the time: start at the end.
                let o = match e.offset() {
                    Offset::Offset(o) if o >= 0 => o,
                    _ => hi,
                };
                offsets.insert(e.partition(), o);
            }
        }
        for p in ps {
            let next = offsets.get(p).copied().unwrap_or(0);
            let end = marks.get(p).map_or(0, |m| m.1);
            parts.insert(
                *p,
                Part {
                    next,
                    end,
                    done: self.to_end && next >= end,
                },
            );
        }
        let tpl = self.tpl(ps, &offsets);
        let r = if incremental {
            consumer.incremental_assign(&tpl)
        } else {
            consumer.assign(&tpl)
        };
        r.map_err(|e| self.err("assign", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Settings(vec![
            ("sasl.password".into(), "hunter2".into()),
            ("sasl.username".into(), "alice".into()),
            ("ssl.key.password".into(), "k3y".into()),
            ("client.secret.x".into(), "s3".into()),
            ("security.protocol".into(), "SASL_SSL".into()),
            ("sasl.mechanisms".into(), "SCRAM-SHA-512".into()),
        ]);
        let d = format!("{s:?}");
        for v in ["hunter2", "alice", "k3y", "s3"] {
            assert!(!d.contains(v), "{d}");
        }
        assert!(d.contains("SASL_SSL") && d.contains("SCRAM-SHA-512"));
        assert_eq!(
            s.scrub("Invalid value \"hunter2\" for sasl.password"),
            "Invalid value \"***\" for sasl.password"
        );
        assert!(Settings::parse_one("a=b=c").is_ok_and(|(k, v)| k == "a" && v == "b=c"));
        let e = Settings::parse_one("sasl.passwordhunter2").unwrap_err();
        assert!(!e.contains("hunter2"));
        assert!(Settings::parse_one("=x").is_err());
    }
}
