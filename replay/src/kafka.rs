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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::message::{Headers, Message};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::ClientContext;

use crate::mapping::MessageRef;
use crate::source::{Flow, Pipeline, Resume, Source, SourceError, SourceStats};

/// The default of [`KafkaSource::stall_timeout`].
pub const DEFAULT_STALL: Duration = Duration::from_secs(60);

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
    /// No message, no partition end and no broker answer for this long: stop with an error.
    stall: Duration,
    /// Set from outside (a signal): stop at the next message boundary, committing what was read.
    stop: Option<Arc<AtomicBool>>,
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
            stall: DEFAULT_STALL,
            stop: None,
        }
    }

    /// A broker that stops answering must not hang a replay forever (a `--follow` run has no
    /// other way out): after this long with no message, no partition end and no answer to a
    /// lookup, while some partition is not at its end, the run stops with an error naming the
    /// brokers and the offsets reached. Metadata and time lookups wait this long too.
    pub fn stall_timeout(mut self, d: Duration) -> KafkaSource {
        self.stall = d.max(Duration::from_millis(100));
        self
    }

    /// A graceful stop for `--follow` (SIGINT/SIGTERM): once `flag` is set the run ends as if
    /// it had reached the end, so the sink commits everything read and reports a summary.
    pub fn stop_when(mut self, flag: Arc<AtomicBool>) -> KafkaSource {
        self.stop = Some(flag);
        self
    }

    fn err(&self, what: &str, e: impl fmt::Display) -> SourceError {
        SourceError::Kafka(self.settings.scrub(&format!("{what}: {e}")))
    }

    /// A lookup the brokers did not answer: the message names them, since "timed out" alone
    /// does not say which address was wrong or down.
    fn lookup_err(&self, what: &str, e: impl fmt::Display) -> SourceError {
        self.err(
            &format!(
                "{what} (bootstrap servers {}, waited up to {:.1} s: --stall-timeout)",
                self.bootstrap,
                self.stall.as_secs_f64()
            ),
            e,
        )
    }

    fn config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap)
            // The database holds the position; Kafka's committed offsets are never used.
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest");
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
        // Not the user's to turn off (set last): partition ends tell a caught-up run from a
        // stalled one, and end `--follow --until`.
        c.set("enable.partition.eof", "true");
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
    /// Started by `--start TIME` and no record at or after it seen yet: records stamped before
    /// it are passed over. The broker's time index only has to give a lower bound, which
    /// brokers with a coarse or write-time index (and one answering 0 for "no such record") do.
    from_time: Option<i64>,
    /// The broker said this partition is at its end, and nothing arrived since.
    at_end: bool,
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
            .fetch_metadata(Some(&self.topic), self.stall)
            .map_err(|e| self.lookup_err(&format!("metadata of topic {}", self.topic), e))?;
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
                .fetch_watermarks(&self.topic, *p, self.stall)
                .map_err(|e| self.lookup_err(&format!("watermarks of {}/{p}", self.topic), e))?;
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
        // A group member with `--until` cannot see where other members stopped (the progress
        // table holds offsets, not whether a record at or after `--until` was reached), so it
        // stops with its own partitions, once the group has given it some.
        let mut assigned = !group;
        let mut last_check = Instant::now() - Duration::from_secs(10);
        // Last sign of life: a message, a partition end or an answered probe.
        let mut alive = Instant::now();
        let mut last_error: Option<String> = None;
        // Messages delivered since the last checkpoint: a `--follow` run commits them when the
        // topic goes quiet instead of holding rows back until a full batch.
        let mut dirty = false;
        let result = 'run: loop {
            if self.stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst)) {
                break Ok(());
            }
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
                        dirty = false;
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
                        alive = Instant::now();
                        assigned = true;
                    }
                }
            }
            let own_done = parts.values().all(|p| p.done);
            if self.to_end && own_done {
                if !group || (self.until_ms.is_some() && assigned) {
                    break Ok(());
                }
                // A group member is done when the whole topic is in the database: partitions
                // of a dead member come here after its session times out.
                if last_check.elapsed() >= Duration::from_secs(1) {
                    last_check = Instant::now();
                    if !pipeline.checkpoint() {
                        break Ok(());
                    }
                    dirty = false;
                    let stored = pipeline
                        .reload(&self.topic, &all)
                        .map_err(|e| self.err("progress", e))?;
                    alive = Instant::now();
                    let whole = marks
                        .iter()
                        .all(|(p, (lo, hi))| hi <= lo || stored.get(p).is_some_and(|n| n >= hi));
                    if whole {
                        break Ok(());
                    }
                }
            }
            // `--follow --until`: every partition this process reads has passed the end.
            if !self.to_end && self.until_ms.is_some() && assigned && own_done {
                break Ok(());
            }
            let polled = consumer.poll(Duration::from_millis(100));
            let idle = match &polled {
                None => true,
                Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => false,
                Some(Err(_)) => true,
                Some(Ok(_)) => false,
            };
            if idle {
                if dirty && !self.to_end {
                    if !pipeline.checkpoint() {
                        break Ok(());
                    }
                    dirty = false;
                    // Time spent waiting on the database is not the broker's silence.
                    alive = Instant::now();
                }
                // A partition whose remaining offsets hold no messages (transaction markers)
                // is at its end when the fetch position is.
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
                self.until_passed(&mut parts);
                if alive.elapsed() >= self.stall {
                    let waiting: Vec<i32> = parts
                        .iter()
                        .filter(|(_, p)| !p.done && !p.at_end)
                        .map(|(n, _)| *n)
                        .collect();
                    // Caught up (or nothing assigned): quiet is normal, so ask the broker
                    // whether it is still there.
                    let probe = waiting.is_empty()
                        && all.first().is_some_and(|p| {
                            match consumer.fetch_watermarks(&self.topic, *p, self.stall) {
                                Ok(_) => true,
                                Err(e) => {
                                    last_error = Some(e.to_string());
                                    false
                                }
                            }
                        });
                    if probe {
                        alive = Instant::now();
                    } else {
                        break Err(self.stalled(&waiting, &parts, last_error.as_deref()));
                    }
                }
            }
            let Some(polled) = polled else {
                continue;
            };
            let m = match polled {
                Ok(m) => m,
                Err(rdkafka::error::KafkaError::PartitionEOF(n)) => {
                    alive = Instant::now();
                    if let Some(p) = parts.get_mut(&n) {
                        p.at_end = true;
                    }
                    self.until_passed(&mut parts);
                    continue;
                }
                // Broker errors are transient for librdkafka (it reconnects); fatal ones stop.
                Err(rdkafka::error::KafkaError::MessageConsumptionFatal(code)) => {
                    break Err(self.err("consume", code));
                }
                Err(e) => {
                    last_error = Some(e.to_string());
                    continue;
                }
            };
            alive = Instant::now();
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
            p.at_end = false;
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
            if let Some(t) = p.from_time {
                if ts.is_some_and(|ts| ts < t) {
                    // Before `--start TIME`, in front of the first record at or after it.
                    p.next = m.offset().saturating_add(1);
                    p.done = self.to_end && p.next >= p.end;
                    continue;
                }
                p.from_time = None;
            }
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
            dirty = true;
            p.next = m.offset().saturating_add(1);
            if self.to_end && p.next >= p.end {
                p.done = true;
            }
            if visit(&msg) == Flow::Stop {
                break Ok(());
            }
            alive = Instant::now();
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

    /// The broker's time index: per partition, the first offset stamped at or after `ms`, or -1
    /// when it has none.
    fn offsets_at(
        &self,
        consumer: &BaseConsumer<Ctx>,
        ps: &[i32],
        ms: i64,
    ) -> Result<HashMap<i32, i64>, SourceError> {
        let mut tpl = TopicPartitionList::new();
        for p in ps {
            let _ = tpl.add_partition_offset(&self.topic, *p, Offset::Offset(ms));
        }
        let found = consumer
            .offsets_for_times(tpl, self.stall)
            .map_err(|e| self.lookup_err(&format!("time index of topic {}", self.topic), e))?;
        Ok(found
            .elements_for_topic(&self.topic)
            .iter()
            .map(|e| match e.offset() {
                Offset::Offset(o) => (e.partition(), o),
                _ => (e.partition(), -1),
            })
            .collect())
    }

    /// `--follow --until`: once the clock is past the end time, a partition the broker says is
    /// at its end is finished (no record stamped at or after `--until` may ever come to end it).
    /// Records stamped earlier that are produced later are left for a later run.
    fn until_passed(&self, parts: &mut BTreeMap<i32, Part>) {
        let Some(u) = self.until_ms else { return };
        if self.to_end || chrono::Utc::now().timestamp_millis() < u {
            return;
        }
        for p in parts.values_mut() {
            if p.at_end {
                p.done = true;
            }
        }
    }

    /// The error of a stalled run: which brokers, how long, and where each partition got to
    /// (the database holds exactly these offsets, so a rerun resumes there).
    fn stalled(
        &self,
        waiting: &[i32],
        parts: &BTreeMap<i32, Part>,
        last_error: Option<&str>,
    ) -> SourceError {
        let reached: Vec<String> = parts
            .iter()
            .map(|(n, p)| format!("{n}:{}", p.next))
            .collect();
        let what = if waiting.is_empty() {
            "caught up, but no answer to a probe".to_string()
        } else {
            let w: Vec<String> = waiting.iter().map(i32::to_string).collect();
            format!(
                "no message and no partition end while partitions {} were not at their end",
                w.join(",")
            )
        };
        self.err(
            &format!(
                "stalled: {what} for {:.1} s (--stall-timeout) from bootstrap servers {}, topic {}; \
                 everything read was committed; next offsets reached (partition:offset): {}",
                self.stall.as_secs_f64(),
                self.bootstrap,
                self.topic,
                if reached.is_empty() {
                    "none (no partition assigned)".to_string()
                } else {
                    reached.join(" ")
                }
            ),
            last_error.unwrap_or("no broker error reported"),
        )
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
        let mut by_time = vec![];
        for p in ps {
            let (lo, hi) = marks.get(p).copied().unwrap_or((0, 0));
            let o = match (stored.get(p), self.start) {
                (Some(n), _) => *n,
                (None, Start::Earliest) => lo,
                (None, Start::Latest) => hi,
                (None, Start::Offset(n)) => n.max(lo),
                (None, Start::Time(_)) => {
                    by_time.push(*p);
                    continue;
                }
            };
            offsets.insert(*p, o);
        }
        let from_time = match self.start {
            Start::Time(t) if !by_time.is_empty() => {
                for (p, o) in self.offsets_at(consumer, &by_time, t)? {
                    let (_, hi) = marks.get(&p).copied().unwrap_or((0, 0));
                    // No record at or after the time: start at the end.
                    offsets.insert(p, if o >= 0 { o } else { hi });
                }
                Some(t)
            }
            _ => None,
        };
        for p in ps {
            let next = offsets.get(p).copied().unwrap_or(0);
            let end = marks.get(p).map_or(0, |m| m.1);
            parts.insert(
                *p,
                Part {
                    next,
                    end,
                    done: self.to_end && next >= end,
                    from_time: from_time.filter(|_| by_time.contains(p)),
                    at_end: false,
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
