//! Encoding on several cores while the commit order stays the source's.
//!
//! The mapping (JSON parse, conversions, COPY encoding) is most of a replay's CPU time, and a
//! single thread doing it is what limits a replay when the database has cores to spare. The
//! source thread copies messages into blocks of about a thousand ([`Block`]), worker threads
//! encode whole blocks, and the source thread takes the results back **in submission order**
//! ([`Pool::submit`] returns the finished blocks that are due) and does all the bookkeeping
//! (chunks, dead letters, progress offsets, gap tracking) exactly as for a message encoded in
//! place. So the exactly-once reasoning is unchanged: a progress offset only ever follows rows
//! that are in the same chunk or an earlier one.
//!
//! Offsets a source skips without a message ([`Item::Advance`]) travel in the blocks too, so they
//! are applied after the messages before them, never ahead.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::mapping::{encode_message, Encoded, Mapping, MessageRef, RowError, TimeWindow};

/// A message copied out of the source's buffers; ranges index [`Block::bytes`].
#[derive(Debug)]
pub struct Owned {
    pub topic: Arc<str>,
    pub partition: i32,
    pub offset: i64,
    pub timestamp: Option<i64>,
    pub key: Option<Range<usize>>,
    pub value: Option<Range<usize>>,
    pub headers: Vec<(Range<usize>, Option<Range<usize>>)>,
}

/// One entry of a block, in source order.
#[derive(Debug)]
pub enum Item {
    Message(Owned),
    /// The source consumed offsets below `next` without a message.
    Advance {
        topic: Arc<str>,
        partition: i32,
        next: i64,
    },
}

/// What encoding one message gave, computed by a worker.
#[derive(Debug)]
pub enum Outcome {
    /// Outside the record-time window: not encoded.
    OutsideWindow,
    /// Rows written at this range of [`Done::rows`].
    Rows(Encoded, Range<usize>),
    Bad(RowError),
}

#[derive(Debug, Default)]
pub struct Block {
    pub items: Vec<Item>,
    pub bytes: Vec<u8>,
    messages: usize,
}

impl Block {
    pub fn push_message(&mut self, topic: Arc<str>, m: &MessageRef<'_>) {
        let mut copy = |b: &[u8]| {
            let start = self.bytes.len();
            self.bytes.extend_from_slice(b);
            start..self.bytes.len()
        };
        let key = m.key.map(&mut copy);
        let value = m.value.map(&mut copy);
        let headers = m
            .headers
            .iter()
            .map(|(k, v)| (copy(k), v.map(&mut copy)))
            .collect();
        self.items.push(Item::Message(Owned {
            topic,
            partition: m.partition,
            offset: m.offset,
            timestamp: m.timestamp,
            key,
            value,
            headers,
        }));
        self.messages += 1;
    }

    pub fn push_advance(&mut self, topic: Arc<str>, partition: i32, next: i64) {
        self.items.push(Item::Advance {
            topic,
            partition,
            next,
        });
    }

    /// Worth sending to a worker: enough messages (or bytes) to outweigh the hand-over.
    pub fn is_full(&self) -> bool {
        self.messages >= 1024 || self.bytes.len() >= 1 << 20
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The message as the mapping reads it, borrowing from the block.
    pub fn message_ref<'a>(
        &'a self,
        o: &'a Owned,
        headers: &'a mut Vec<(&'a [u8], Option<&'a [u8]>)>,
    ) -> MessageRef<'a> {
        let get = |r: &Range<usize>| self.bytes.get(r.clone()).unwrap_or_default();
        headers.clear();
        headers.extend(o.headers.iter().map(|(k, v)| (get(k), v.as_ref().map(get))));
        MessageRef {
            topic: &o.topic,
            partition: o.partition,
            offset: o.offset,
            timestamp: o.timestamp,
            key: o.key.as_ref().map(get),
            value: o.value.as_ref().map(get),
            headers,
        }
    }
}

/// A block with its encoding: one outcome per [`Item::Message`], in order.
#[derive(Debug)]
pub struct Done {
    pub block: Block,
    pub outcomes: Vec<Outcome>,
    /// Binary COPY tuples (no header), ranges in [`Outcome::Rows`].
    pub rows: Vec<u8>,
}

/// The options a worker needs.
#[derive(Debug, Clone)]
pub struct Work {
    pub mapping: Mapping,
    pub event_window: TimeWindow,
    pub record_since_ms: Option<i64>,
    pub record_until_ms: Option<i64>,
}

impl Work {
    /// Outside `[record_since, record_until)` by Kafka record time (no time: inside).
    pub fn outside_record_window(&self, timestamp: Option<i64>) -> bool {
        timestamp.is_some_and(|t| {
            self.record_since_ms.is_some_and(|s| t < s)
                || self.record_until_ms.is_some_and(|u| t >= u)
        })
    }

    /// One message: the record window, then the mapping, onto `out`.
    pub fn encode(&self, m: &MessageRef<'_>, out: &mut Vec<u8>) -> Outcome {
        if self.outside_record_window(m.timestamp) {
            return Outcome::OutsideWindow;
        }
        let start = out.len();
        match encode_message(&self.mapping, m, &self.event_window, out) {
            Ok(e) => Outcome::Rows(e, start..out.len()),
            Err(e) => Outcome::Bad(e),
        }
    }

    fn encode_block(&self, block: Block) -> Done {
        let mut rows = Vec::with_capacity(block.bytes.len() / 2);
        let mut outcomes = Vec::with_capacity(block.messages);
        for item in &block.items {
            if let Item::Message(o) = item {
                // Empty (no allocation) unless the message has headers.
                let mut headers = Vec::new();
                let m = block.message_ref(o, &mut headers);
                outcomes.push(self.encode(&m, &mut rows));
            }
        }
        Done {
            block,
            outcomes,
            rows,
        }
    }
}

/// Worker threads and the blocks in flight, oldest first.
pub struct Pool {
    senders: Vec<mpsc::Sender<(Block, mpsc::SyncSender<Done>)>>,
    workers: Vec<JoinHandle<()>>,
    in_flight: VecDeque<mpsc::Receiver<Done>>,
    next_worker: usize,
}

impl Pool {
    /// `threads` workers (at least one).
    pub fn new(work: Arc<Work>, threads: usize) -> Pool {
        let mut senders = Vec::new();
        let mut workers = Vec::new();
        for _ in 0..threads.max(1) {
            let (tx, rx) = mpsc::channel::<(Block, mpsc::SyncSender<Done>)>();
            let work = work.clone();
            workers.push(std::thread::spawn(move || {
                while let Ok((block, reply)) = rx.recv() {
                    // A dropped receiver means the run stopped: nothing to do with the result.
                    let _ = reply.send(work.encode_block(block));
                }
            }));
            senders.push(tx);
        }
        Pool {
            senders,
            workers,
            in_flight: VecDeque::new(),
            next_worker: 0,
        }
    }

    /// Hands `block` to the next worker (round robin: blocks are alike in size). Returns the
    /// oldest finished block when enough are in flight to keep every worker busy, so memory
    /// stays bounded; `None` when the pool is gone (a worker panicked).
    pub fn submit(&mut self, block: Block) -> Result<Option<Done>, PoolGone> {
        let (tx, rx) = mpsc::sync_channel(1);
        let i = self.next_worker % self.senders.len().max(1);
        self.next_worker = self.next_worker.wrapping_add(1);
        self.senders
            .get(i)
            .ok_or(PoolGone)?
            .send((block, tx))
            .map_err(|_| PoolGone)?;
        self.in_flight.push_back(rx);
        if self.in_flight.len() > 2 * self.senders.len() {
            return self.next().map(Some);
        }
        Ok(None)
    }

    /// The oldest block in flight, waiting for it; `None` when nothing is in flight.
    pub fn oldest(&mut self) -> Result<Option<Done>, PoolGone> {
        if self.in_flight.is_empty() {
            return Ok(None);
        }
        self.next().map(Some)
    }

    fn next(&mut self) -> Result<Done, PoolGone> {
        let rx = self.in_flight.pop_front().ok_or(PoolGone)?;
        rx.recv().map_err(|_| PoolGone)
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.senders.clear();
        self.in_flight.clear();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// A worker thread died (a bug): the run cannot go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolGone;
