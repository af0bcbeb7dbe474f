//! An in-process event bus with durable consumer groups, explicit ack and
//! nack-with-delay; the single-process stand-in for Redis Streams or NATS
//! JetStream.
//!
//! Every published event is appended to one log. Each consumer group keeps
//! a cursor into it (starting at the beginning, so a group created late
//! still sees everything; a fan-out group starts at the end) and a pending list of delivered, unacked
//! messages. A pending message comes back when it is nacked and its delay
//! has passed, or when it was left unacknowledged for the ack wait. Time
//! comes from the injected clock, so tests move it by hand. The log is never
//! trimmed: fine for one process's lifetime, not for years of traffic.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bazaar_core::clock::{Clock, Timestamp};
use bazaar_core::events::{Delivery, Event, EventPublisher, EventSubscriber, Receipt};
use bazaar_core::{Error, Result};
use parking_lot::Mutex;
use tokio::sync::Notify;

#[derive(Debug)]
struct Pending {
    /// Deliveries so far.
    attempt: u32,
    /// When it may be delivered again.
    due: Timestamp,
}

#[derive(Debug, Default)]
struct Group {
    /// Index of the next never-delivered log entry.
    cursor: usize,
    /// Delivered, unacked messages by log index.
    pending: BTreeMap<usize, Pending>,
    /// A fan-out group's idle limit and the time of its last request.
    fanout: Option<(chrono::Duration, Timestamp)>,
}

#[derive(Debug, Default)]
struct State {
    log: Vec<Event>,
    groups: HashMap<String, Group>,
}

/// Publisher and subscriber over an in-memory log.
pub struct InProcessBus {
    clock: Arc<dyn Clock>,
    ack_wait: chrono::Duration,
    state: Mutex<State>,
    published: Notify,
}

impl fmt::Debug for InProcessBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.lock();
        f.debug_struct("InProcessBus")
            .field("ack_wait", &self.ack_wait)
            .field("log_len", &state.log.len())
            .field("groups", &state.groups.len())
            .finish()
    }
}

impl InProcessBus {
    /// The default ack wait, as NATS JetStream's.
    pub const DEFAULT_ACK_WAIT: Duration = Duration::from_secs(30);

    /// An empty bus reading time from `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            ack_wait: to_chrono(Self::DEFAULT_ACK_WAIT),
            state: Mutex::new(State::default()),
            published: Notify::new(),
        }
    }

    /// Sets how long a delivery may stay unacknowledged before it is
    /// redelivered.
    pub fn with_ack_wait(mut self, ack_wait: Duration) -> Self {
        self.ack_wait = to_chrono(ack_wait);
        self
    }

    /// Every event published so far, in order.
    pub fn published(&self) -> Vec<Event> {
        self.state.lock().log.clone()
    }

    /// How many messages of group `consumer` are delivered and unacked
    /// (including those waiting out a nack delay).
    pub fn pending(&self, consumer: &str) -> usize {
        self.state.lock().groups.get(consumer).map_or(0, |g| g.pending.len())
    }

    /// The names of the consumer groups, sorted.
    pub fn groups(&self) -> Vec<String> {
        let mut names: Vec<String> = self.state.lock().groups.keys().cloned().collect();
        names.sort();
        names
    }

    fn try_next(&self, consumer: &str) -> Option<Delivery> {
        let now = self.clock.now();
        let mut guard = self.state.lock();
        let State { log, groups } = &mut *guard;
        let group = groups.entry(consumer.to_owned()).or_default();
        if let Some((_, last)) = &mut group.fanout {
            *last = now;
        }
        let index = match group.pending.iter_mut().find(|(_, p)| p.due <= now) {
            Some((index, pending)) => {
                pending.attempt = pending.attempt.saturating_add(1);
                pending.due = now + self.ack_wait;
                *index
            }
            None if group.cursor < log.len() => {
                let index = group.cursor;
                group.cursor += 1;
                group.pending.insert(index, Pending { attempt: 1, due: now + self.ack_wait });
                index
            }
            None => return None,
        };
        let attempt = group.pending[&index].attempt;
        Some(Delivery {
            event: log[index].clone(),
            consumer: consumer.to_owned(),
            attempt,
            receipt: Receipt::new(format!("{index}:{attempt}")),
        })
    }
}

fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

fn parse_receipt(receipt: &Receipt) -> Result<(usize, u32)> {
    receipt
        .as_str()
        .split_once(':')
        .and_then(|(i, a)| Some((i.parse().ok()?, a.parse().ok()?)))
        .ok_or_else(|| Error::invalid("receipt", "not a receipt of this bus"))
}

#[async_trait]
impl EventPublisher for InProcessBus {
    async fn publish(&self, events: &[Event]) -> Result<()> {
        self.state.lock().log.extend_from_slice(events);
        self.published.notify_waiters();
        Ok(())
    }
}

#[async_trait]
impl EventSubscriber for InProcessBus {
    async fn next(&self, consumer: &str, wait: Duration) -> Result<Option<Delivery>> {
        if wait.is_zero() {
            return Ok(self.try_next(consumer));
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Register for the wake-up before looking, so a publish between
            // the look and the wait is not missed.
            let notified = self.published.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(delivery) = self.try_next(consumer) {
                return Ok(Some(delivery));
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Ok(self.try_next(consumer));
            }
        }
    }

    /// The first as [`EventSubscriber::next`] waits for it, then whatever
    /// else is due, up to `max`.
    async fn next_batch(&self, consumer: &str, max: usize, wait: Duration) -> Result<Vec<Delivery>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let mut batch: Vec<Delivery> = self.next(consumer, wait).await?.into_iter().collect();
        while batch.len() < max {
            match self.try_next(consumer) {
                Some(delivery) => batch.push(delivery),
                None => break,
            }
        }
        Ok(batch)
    }

    /// Starts the group at the end of the log. Fan-out groups idle for
    /// longer than their limit are removed whenever another one opens.
    async fn open_fanout(&self, consumer: &str, idle: Duration) -> Result<()> {
        let now = self.clock.now();
        let mut guard = self.state.lock();
        let State { log, groups } = &mut *guard;
        groups.retain(|_, g| g.fanout.is_none_or(|(idle, last)| now - last <= idle));
        groups.entry(consumer.to_owned()).or_insert_with(|| Group {
            cursor: log.len(),
            pending: BTreeMap::new(),
            fanout: Some((to_chrono(idle), now)),
        });
        Ok(())
    }

    async fn leave(&self, consumer: &str) -> Result<()> {
        self.state.lock().groups.remove(consumer);
        Ok(())
    }

    async fn ack(&self, delivery: &Delivery) -> Result<()> {
        let (index, _) = parse_receipt(&delivery.receipt)?;
        if let Some(group) = self.state.lock().groups.get_mut(&delivery.consumer) {
            group.pending.remove(&index);
        }
        Ok(())
    }

    async fn nack(&self, delivery: &Delivery, delay: Duration) -> Result<()> {
        let (index, attempt) = parse_receipt(&delivery.receipt)?;
        let due = self.clock.now() + to_chrono(delay);
        if let Some(pending) = self
            .state
            .lock()
            .groups
            .get_mut(&delivery.consumer)
            .and_then(|g| g.pending.get_mut(&index))
            .filter(|p| p.attempt == attempt)
        {
            pending.due = due;
        }
        Ok(())
    }
}
