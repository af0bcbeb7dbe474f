//! [`RabbitBus`]: the bus ports over a topic exchange, an archive stream
//! and a quorum queue (plus a redelivery queue) per consumer group.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use bazaar_core::events::{Delivery, Event, EventPublisher, EventSubscriber, Receipt};
use bazaar_core::{Error, Result};
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicGetOptions, BasicNackOptions, BasicPublishOptions,
    BasicRejectOptions, ExchangeDeleteOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use parking_lot::Mutex;
use tokio::time::Instant;

use crate::dead::{self, DeadMessage};
use crate::groups;
use crate::link::{Connector, Link, unavailable, within};
use crate::message::{self, ATTEMPTS_HEADER};
use crate::names::{self, Names};
use crate::options::RabbitOptions;
use crate::receipt::{self, Pending, Received};
use crate::topology::{self, DELAY_HEADER};

/// Events in flight per publish round trip (confirms awaited per chunk).
const PIPELINE: usize = 256;
/// Waits below this are a single look: nothing is worth a consumer.
const MIN_WAIT: Duration = Duration::from_millis(5);
/// The longest wait honoured (a `Duration::MAX` wait must not overflow).
const MAX_WAIT: Duration = Duration::from_secs(365 * 24 * 3_600);
/// How long a burst consumer (see [`Inner::fetch`]) waits for its first
/// message, and then for each next one, before it is cancelled.
const BURST_WAIT: (Duration, Duration) = (Duration::from_millis(50), Duration::from_millis(20));
/// Pause before redoing work after a failure.
const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// [`EventPublisher`] and [`EventSubscriber`] over RabbitMQ.
///
/// See the [crate docs](crate) for the design. Cheap to share behind an
/// `Arc`; all methods take `&self`. Dropping it stops its background
/// sweeper and closes its connection, as [`RabbitBus::close`] does (the
/// broker then requeues whatever this bus had not settled).
///
/// # Example
/// ```no_run
/// # async fn run() -> bazaar_core::Result<()> {
/// use std::time::Duration;
/// use bazaar_core::clock::{Clock, SystemClock};
/// use bazaar_core::events::{Event, EventPublisher, EventSubscriber, UserRegistered};
/// use bazaar_core::ids::UserId;
/// use bazaar_rabbitmq::{RabbitBus, RabbitOptions};
///
/// let bus = RabbitBus::connect("amqp://guest:guest@127.0.0.1:5672/%2f", RabbitOptions::default()).await?;
/// let event = Event::new(&UserRegistered { user_id: UserId::new(), role: "vendor".into() }, SystemClock.now());
/// bus.publish(&[event]).await?;
/// if let Some(delivery) = bus.next("mailer", Duration::from_secs(5)).await? {
///     bus.ack(&delivery).await?;
/// }
/// # Ok(())
/// # }
/// ```
pub struct RabbitBus {
    inner: Arc<Inner>,
    sweeper: tokio::task::JoinHandle<()>,
}

struct Inner {
    /// Random per bus: receipts name it, so another bus's are refused.
    id: u64,
    options: RabbitOptions,
    names: Names,
    connector: Connector,
    /// Groups known to be set up (their redelivery queue exists).
    ready: Mutex<HashSet<String>>,
    /// Every group this bus has set up or found set up, also those
    /// dropped from `ready` after a failure (for `delete_topology`).
    used: Mutex<HashSet<String>>,
    /// Fan-out groups opened here, with their idle limit: set up again as
    /// fan-out groups if the broker expired their queues.
    fanout: Mutex<HashMap<String, Duration>>,
    /// One group creation at a time in this process.
    creating: tokio::sync::Mutex<()>,
    /// Handed out, not settled.
    pending: Pending,
    /// Per group: messages a waiting consumer received beyond what its
    /// caller took, handed out by the next calls (oldest first).
    held: Mutex<HashMap<String, VecDeque<Received>>>,
}

impl fmt::Debug for RabbitBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RabbitBus")
            .field("exchange", &self.inner.options.exchange)
            .field("queue_prefix", &self.inner.options.queue_prefix)
            .field("connector", &self.inner.connector)
            .field("pending", &self.inner.pending.len())
            .finish_non_exhaustive()
    }
}

impl Drop for RabbitBus {
    /// Stops the sweeper and closes the connection (in the background, when
    /// a runtime is there to run it), so the broker requeues at once what
    /// this bus had not settled.
    fn drop(&mut self) {
        self.sweeper.abort();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let inner = self.inner.clone();
            runtime.spawn(async move { inner.connector.close().await });
        }
    }
}

impl RabbitBus {
    /// Connects to the broker at `url` (`amqp://user:pass@host:5672/vhost`,
    /// `amqps://…` for TLS with the system's root certificates; `%2f` is the
    /// default vhost `/`) and declares the topology (see the
    /// [crate docs](crate)). Consumer groups are set up on first use.
    ///
    /// The first connection is tried once: a broker that is down fails this
    /// call. After that, the bus reconnects on its own.
    ///
    /// # Errors
    /// [`Error::Validation`] for bad options; [`Error::Unavailable`] when
    /// the broker cannot be reached or refuses the connection or the
    /// topology (an existing queue with other arguments).
    pub async fn connect(url: &str, options: RabbitOptions) -> Result<Self> {
        options.validate()?;
        if !(url.starts_with("amqp://") || url.starts_with("amqps://")) {
            return Err(Error::invalid("url", "an AMQP URL starts with amqp:// or amqps://"));
        }
        let connector = Connector::connect(url, options.clone()).await?;
        let inner = Arc::new(Inner {
            id: rand_id(),
            names: Names::new(&options),
            options,
            connector,
            ready: Mutex::new(HashSet::new()),
            used: Mutex::new(HashSet::new()),
            creating: tokio::sync::Mutex::new(()),
            fanout: Mutex::new(HashMap::new()),
            pending: Pending::default(),
            held: Mutex::new(HashMap::new()),
        });
        let sweeper = tokio::spawn(sweep(Arc::downgrade(&inner)));
        Ok(Self { inner, sweeper })
    }

    /// Readiness: the connection is up (or comes back within
    /// `request_timeout`) and the archive stream answers a passive declare.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the broker does not answer or the
    /// archive stream is gone.
    pub async fn ping(&self) -> Result<()> {
        let inner = &self.inner;
        let link = inner.connector.link(Instant::now() + inner.options.request_timeout).await?;
        let channel = link.channel().await?;
        let passive = lapin::options::QueueDeclareOptions { passive: true, ..Default::default() };
        let archive = inner.names.archive();
        let answer = within(
            inner.options.request_timeout,
            "ping",
            channel.queue_declare(&archive, passive, FieldTable::default()),
        )
        .await;
        let _ = channel.close(200, "ping").await;
        answer.map(drop)
    }

    /// The options the bus was set up with.
    pub fn options(&self) -> &RabbitOptions {
        &self.inner.options
    }

    /// The work queue of consumer group `group` (its redelivery queue is
    /// this name + `.redelivery`).
    pub fn group_queue(&self, group: &str) -> String {
        self.inner.names.group_queue(group)
    }

    /// Up to `limit` messages of the dead-letter queue, oldest first,
    /// without removing them: what the broker gave up on (messages that are
    /// not events, rejected by a consumer; messages over the delivery
    /// limit). The core dispatcher's own dead letters (failing handlers) are
    /// in the core's `DeadLetterStore`, not here.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the broker fails.
    pub async fn list_dead(&self, limit: usize) -> Result<Vec<DeadMessage>> {
        let link = self.inner.link().await?;
        dead::list(&link, &self.inner.names, &self.inner.options, limit).await
    }

    /// Moves dead messages back to the queue they died in (a group's work
    /// or redelivery queue) with a fresh attempt count: the one whose
    /// [`DeadMessage::id`] is `id`, or all of them when `id` is `None`.
    /// Returns how many were moved. A message is removed from the
    /// dead-letter queue only after the broker confirmed its copy.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the broker fails (messages moved so far
    /// stay moved).
    pub async fn replay_dead(&self, id: Option<&str>) -> Result<usize> {
        let link = self.inner.link().await?;
        dead::replay(&link, &self.inner.names, &self.inner.options, id).await
    }

    /// The consumer groups this bus has used (set up or found set up).
    pub fn groups(&self) -> Vec<String> {
        let mut groups: Vec<String> = self.inner.used.lock().iter().cloned().collect();
        groups.sort();
        groups
    }

    /// Deletes every exchange and queue of this bus's topology: the
    /// exchanges, the archive, the retry and dead-letter queues, and the
    /// queues of the consumer groups this bus has used and of
    /// `other_groups` (the broker cannot list another process's groups
    /// over AMQP). For tests and teardown: messages in them are lost.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the broker fails.
    pub async fn delete_topology(&self, other_groups: &[String]) -> Result<()> {
        let inner = &self.inner;
        let link = inner.link().await?;
        let channel = link.channel().await?;
        let limit = inner.options.request_timeout;
        let mut groups = self.groups();
        groups.extend(other_groups.iter().cloned());
        let mut queues = vec![inner.names.archive(), inner.names.dead_queue()];
        queues.extend(inner.options.retry_delays.iter().map(|d| inner.names.retry_queue(*d)));
        for group in &groups {
            queues.push(inner.names.group_queue(group));
            queues.push(inner.names.redelivery_queue(group));
        }
        for queue in &queues {
            within(limit, "queue.delete", channel.queue_delete(queue, QueueDeleteOptions::default())).await?;
        }
        for exchange in [inner.names.exchange().to_owned(), inner.names.retry_exchange(), inner.names.dead_exchange()] {
            within(limit, "exchange.delete", channel.exchange_delete(&exchange, ExchangeDeleteOptions::default()))
                .await?;
        }
        inner.ready.lock().clear();
        inner.used.lock().clear();
        let _ = channel.close(200, "deleted").await;
        Ok(())
    }

    /// Closes the connection. Unsettled deliveries go back to their queues;
    /// later calls reconnect.
    pub async fn close(&self) {
        self.inner.connector.close().await;
    }
}

fn rand_id() -> u64 {
    // The last 8 bytes of a v7 UUID are random (but for its variant bits).
    let bytes = uuid::Uuid::now_v7().into_bytes();
    u64::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]])
}

/// Gives back expired deliveries until the bus is dropped.
async fn sweep(bus: Weak<Inner>) {
    loop {
        let period = match bus.upgrade() {
            Some(inner) => (inner.options.ack_wait / 4).clamp(Duration::from_millis(10), Duration::from_secs(1)),
            None => return,
        };
        tokio::time::sleep(period).await;
        match bus.upgrade() {
            Some(inner) => inner.give_back_expired().await,
            None => return,
        }
    }
}

impl Inner {
    /// The live link, reconnecting within `reconnect_timeout`.
    async fn link(&self) -> Result<Arc<Link>> {
        self.connector.link(Instant::now() + self.options.reconnect_timeout).await
    }

    /// Gives back deliveries pending past the ack wait (a copy with the
    /// attempt counted to the group's redelivery queue, as `nack(0)`), and
    /// requeues held ones past half of it (never handed out, so no attempt
    /// is counted by the bus). Those of a lost connection are simply
    /// forgotten: the broker requeued them.
    async fn give_back_expired(&self) {
        let now = Instant::now();
        let epoch = self.connector.current().map(|link| link.epoch);
        let expired = self.pending.expired(now, self.options.ack_wait, epoch);
        let mut stale_held = Vec::new();
        {
            let mut held = self.held.lock();
            for queue in held.values_mut() {
                let (stale, fresh): (VecDeque<_>, VecDeque<_>) = queue
                    .drain(..)
                    .partition(|r| now.duration_since(r.since) >= self.options.ack_wait / 2 || Some(r.epoch) != epoch);
                *queue = fresh;
                stale_held.extend(stale);
            }
        }
        for received in expired {
            if Some(received.epoch) != epoch {
                continue;
            }
            tracing::debug!(group = received.group, attempt = received.attempt, "giving back an expired delivery");
            if let Err(e) = self.redeliver(&received, None).await {
                tracing::debug!(error = %e, "giving back an expired delivery failed; the broker requeues it on close");
            }
        }
        for received in stale_held {
            if Some(received.epoch) != epoch {
                continue;
            }
            let requeue = BasicNackOptions { requeue: true, multiple: false };
            if let Err(e) = received.acker.nack(requeue).await {
                tracing::debug!(error = %e, "requeueing a held message failed; the broker requeues it on close");
            }
        }
    }

    /// Sets `group` up unless this process knows it is.
    async fn ensure_group(&self, link: &Link, group: &str) -> Result<()> {
        if self.ready.lock().contains(group) {
            return Ok(());
        }
        let _one_at_a_time = self.creating.lock().await;
        if self.ready.lock().contains(group) {
            return Ok(());
        }
        let fanout = self.fanout.lock().get(group).copied();
        match fanout {
            Some(idle) => groups::ensure_fanout(link, &self.options, group, idle).await?,
            None => groups::ensure(link, &self.options, group).await?,
        }
        self.ready.lock().insert(group.to_owned());
        self.used.lock().insert(group.to_owned());
        Ok(())
    }

    /// A received message as a delivery, now pending; `None` (the message
    /// rejected to the dead-letter queue) when it is not an event.
    async fn hand_out(&self, mut received: Received) -> Option<Delivery> {
        let event = match Event::from_json(&received.payload) {
            Ok(event) => event,
            Err(e) => {
                tracing::warn!(
                    group = received.group, routing_key = received.routing_key, error = %e,
                    "dead-lettering a message that is not an event"
                );
                let _ = received.acker.reject(BasicRejectOptions { requeue: false }).await;
                return None;
            }
        };
        received.since = Instant::now();
        let receipt = receipt::receipt(self.id, &received);
        let delivery =
            Delivery { event, consumer: received.group.clone(), attempt: received.attempt, receipt: receipt.clone() };
        self.pending.insert(receipt, received);
        Some(delivery)
    }

    /// Up to `max` held messages of `group`, as deliveries.
    async fn take_held(&self, group: &str, max: usize) -> Vec<Delivery> {
        let current = self.connector.current().map(|link| link.epoch);
        let mut out = Vec::new();
        while out.len() < max {
            let next = self.held.lock().get_mut(group).and_then(VecDeque::pop_front);
            let Some(received) = next else { break };
            // Held on a connection that is gone: the broker requeued it.
            if Some(received.epoch) == current {
                out.extend(self.hand_out(received).await);
            }
        }
        out
    }

    /// One message `group` has ready (redeliveries first) by `basic.get`,
    /// and how many more the queue it came from has ready; reconnecting
    /// within `reconnect_timeout`.
    async fn get_ready(&self, group: &str) -> Result<(Option<Delivery>, u32)> {
        let deadline = Instant::now() + self.options.reconnect_timeout;
        loop {
            let link = self.connector.link(deadline).await?;
            match self.get_on(&link, group).await {
                Ok(got) => return Ok(got),
                Err(e) => {
                    self.failed(&link, group);
                    if Instant::now() + RETRY_PAUSE >= deadline {
                        return Err(e);
                    }
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
            }
        }
    }

    /// What went wrong on `link` for `group`: a dead connection is dropped,
    /// and the group is checked again (its queues may have been deleted).
    fn failed(&self, link: &Link, group: &str) {
        self.connector.broken(link);
        self.ready.lock().remove(group);
    }

    /// The gets of [`Self::get_ready`] on one link.
    async fn get_on(&self, link: &Link, group: &str) -> Result<(Option<Delivery>, u32)> {
        self.ensure_group(link, group).await?;
        let channel = link.group_channel(group).await?;
        let limit = self.options.request_timeout;
        for queue in [self.names.redelivery_queue(group), self.names.group_queue(group)] {
            // Again after a message that was not an event (dead-lettered).
            while let Some(message) =
                within(limit, "basic.get", channel.basic_get(&queue, BasicGetOptions::default())).await?
            {
                let ready = message.message_count;
                let received = received(group, link.epoch, channel.id(), message.delivery);
                if let Some(delivery) = self.hand_out(received).await {
                    return Ok((Some(delivery), ready));
                }
            }
        }
        Ok((None, 0))
    }

    /// Waits up to `wait` for `group` to get a message, with a consumer on
    /// each of its queues (prefetch: the configured batch), and then, until
    /// `want` arrived, up to `gap` for each next one; what they bring is
    /// held for the callers.
    async fn wait_for_push(&self, group: &str, wait: Duration, want: usize, gap: Duration) -> Result<()> {
        let link = self.link().await?;
        let outcome = self.wait_on(&link, group, wait, want, gap).await;
        if outcome.is_err() {
            self.failed(&link, group);
        }
        outcome
    }

    async fn wait_on(&self, link: &Link, group: &str, wait: Duration, want: usize, gap: Duration) -> Result<()> {
        self.ensure_group(link, group).await?;
        let channel = link.group_channel(group).await?;
        let limit = self.options.request_timeout;
        let token = uuid::Uuid::now_v7().simple().to_string();
        let mut consumers = Vec::new();
        let mut tags = Vec::new();
        for queue in [self.names.redelivery_queue(group), self.names.group_queue(group)] {
            let tag = format!("bazaar-wait-{}-{token}", tags.len());
            let consumer = within(
                limit,
                "basic.consume",
                channel.basic_consume(&queue, &tag, BasicConsumeOptions::default(), FieldTable::default()),
            )
            .await;
            match consumer {
                Ok(consumer) => {
                    consumers.push(consumer);
                    tags.push(tag);
                }
                Err(e) => {
                    for tag in &tags {
                        let _ = channel.basic_cancel(tag, BasicCancelOptions::default()).await;
                    }
                    return Err(e);
                }
            }
        }
        let mut merged = futures::stream::select_all(consumers);
        let mut arrived = Vec::new();
        let mut failure = None;
        let mut patience = wait;
        while arrived.len() < want.max(1) {
            match tokio::time::timeout(patience, merged.next()).await {
                Ok(Some(Ok(delivery))) => arrived.push(delivery),
                Ok(Some(Err(e))) => failure = Some(unavailable(format!("waiting for a message: {e}"))),
                Ok(None) => failure = Some(unavailable("the broker cancelled the waiting consumer")),
                Err(_) => break,
            }
            if failure.is_some() {
                break;
            }
            patience = gap;
        }
        for tag in &tags {
            if let Err(e) =
                within(limit, "basic.cancel", channel.basic_cancel(tag, BasicCancelOptions::default())).await
            {
                failure.get_or_insert(e);
            }
        }
        // After cancel-ok nothing more comes: what arrived is in the
        // streams, which end.
        if failure.is_none() {
            let drained = tokio::time::timeout(limit, async {
                while let Some(delivery) = merged.next().await {
                    match delivery {
                        Ok(delivery) => arrived.push(delivery),
                        Err(e) => return Err(unavailable(format!("draining the waiting consumer: {e}"))),
                    }
                }
                Ok(())
            })
            .await;
            failure = match drained {
                Ok(outcome) => outcome.err(),
                Err(_) => Some(unavailable("the waiting consumer did not end after its cancel")),
            };
        }
        let now = Instant::now();
        let mut held = self.held.lock();
        let queue = held.entry(group.to_owned()).or_default();
        for delivery in arrived {
            let mut received = received(group, link.epoch, channel.id(), delivery);
            received.since = now;
            queue.push_back(received);
        }
        drop(held);
        failure.map_or(Ok(()), Err)
    }

    /// `next_batch` proper.
    async fn fetch(&self, group: &str, max: usize, wait: Duration) -> Result<Vec<Delivery>> {
        names::check_group(group)?;
        if max == 0 {
            return Ok(Vec::new());
        }
        let deadline = Instant::now() + wait.min(MAX_WAIT);
        self.give_back_expired().await;
        // Since when waiting keeps failing (a lost connection): retried as
        // the gets are, for up to `reconnect_timeout`.
        let mut failing_since = None;
        loop {
            let mut out = self.take_held(group, max).await;
            if out.len() < max {
                match self.get_ready(group).await {
                    Ok((got, ready)) => {
                        let found = got.is_some();
                        out.extend(got);
                        // More are ready: one burst consumer brings up to a
                        // prefetch of them in one round, where a `basic.get`
                        // each would cost a quorum-queue commit each.
                        let want = (max - out.len()).min(usize::try_from(ready).unwrap_or(usize::MAX));
                        if found && want > 0 {
                            if let Err(e) = self.wait_for_push(group, BURST_WAIT.0, want, BURST_WAIT.1).await {
                                tracing::debug!(group, error = %e, "a burst consumer failed");
                            }
                            out.extend(self.take_held(group, max - out.len()).await);
                        }
                    }
                    Err(e) if out.is_empty() => return Err(e),
                    Err(e) => tracing::debug!(group, error = %e, "handing out the held messages only"),
                }
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if !out.is_empty() || remaining < MIN_WAIT {
                return Ok(out);
            }
            match self.wait_for_push(group, remaining, 1, Duration::ZERO).await {
                Ok(()) => failing_since = None,
                Err(e) => {
                    let since = *failing_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= self.options.reconnect_timeout {
                        return Err(e);
                    }
                    tracing::debug!(group, error = %e, "waiting for a message failed; trying again");
                    tokio::time::sleep(RETRY_PAUSE.min(remaining)).await;
                }
            }
        }
    }

    /// Checks every receipt, then takes the pending deliveries among them.
    fn take_pending(&self, deliveries: &[Delivery]) -> Result<Vec<Received>> {
        for delivery in deliveries {
            receipt::check(self.id, &delivery.receipt)?;
        }
        let mut taken = Vec::new();
        for delivery in deliveries {
            match self.pending.take(&delivery.receipt, &delivery.consumer) {
                Ok(Some(received)) => taken.push(received),
                Ok(None) => {}
                Err(e) => {
                    // Leave the batch as it was: put back what was taken.
                    for received in taken {
                        let receipt = receipt::receipt(self.id, &received);
                        self.pending.insert(receipt, received);
                    }
                    return Err(e);
                }
            }
        }
        Ok(taken)
    }

    /// Publishes `chunk` on `link` and waits for every confirm.
    async fn publish_on(&self, link: &Link, chunk: &[Event]) -> Result<()> {
        let limit = self.options.request_timeout;
        let mandatory = BasicPublishOptions { mandatory: true, ..BasicPublishOptions::default() };
        let mut confirms = Vec::with_capacity(chunk.len());
        for event in chunk {
            let payload = event.to_json();
            let sent = link.publisher.basic_publish(
                self.names.exchange(),
                event.event_type.as_str(),
                mandatory,
                &payload,
                message::event_properties(event),
            );
            confirms.push(within(limit, "basic.publish", sent).await?);
        }
        for confirm in confirms {
            groups::confirmed(limit, confirm).await?;
        }
        Ok(())
    }

    /// Gives a delivery back with its attempt counted: publishes a copy
    /// carrying the attempt to the group's redelivery queue, at once
    /// (`delay` `None`) or through the retry queue of `delay`'s step, and
    /// acks the delivery once the copy is confirmed. The broker's own
    /// requeue is not used: how it counts a requeue (`x-delivery-count`)
    /// differs between RabbitMQ versions, and a requeued message goes back
    /// to the work queue rather than ahead of it.
    async fn redeliver(&self, received: &Received, delay: Option<Duration>) -> Result<()> {
        let link = self.link().await?;
        if link.epoch != received.epoch {
            // Its connection is gone, so the broker requeued it already.
            return Ok(());
        }
        let attempts = (ATTEMPTS_HEADER, message::attempts_value(received.attempt));
        let queue = self.names.redelivery_queue(&received.group);
        let (exchange, properties) = match delay {
            Some(delay) => {
                let step = self.options.retry_delay_for(delay);
                let properties = message::copy_properties(
                    &received.properties,
                    &[attempts, (DELAY_HEADER, topology::delay_value(step))],
                );
                (self.names.retry_exchange(), properties)
            }
            None => (String::new(), message::copy_properties(&received.properties, &[attempts])),
        };
        let mandatory = BasicPublishOptions { mandatory: true, ..BasicPublishOptions::default() };
        let limit = self.options.request_timeout;
        let sent = link.publisher.basic_publish(&exchange, &queue, mandatory, &received.payload, properties);
        let confirm = within(limit, "basic.publish (redelivery)", sent).await?;
        groups::confirmed(limit, confirm).await?;
        within(limit, "basic.ack", received.acker.ack(BasicAckOptions::default())).await.map(drop)
    }
}

/// A message fetched on `channel` of connection `epoch` for `group`.
fn received(group: &str, epoch: u64, channel: u16, delivery: lapin::message::Delivery) -> Received {
    Received {
        group: group.to_owned(),
        epoch,
        attempt: message::attempt(&delivery.properties),
        delivery_tag: delivery.delivery_tag,
        channel,
        routing_key: delivery.routing_key.as_str().to_owned(),
        acker: delivery.acker,
        payload: delivery.data,
        properties: delivery.properties,
        since: Instant::now(),
    }
}

#[async_trait]
impl EventPublisher for RabbitBus {
    /// Publishes each event to the exchange with its type as routing key
    /// (persistent, `message_id` = the event id, mandatory), pipelined, and
    /// returns once the broker confirmed every one. After a lost connection
    /// the unconfirmed chunk is published again on a new one (within
    /// `reconnect_timeout`), so an event may be stored twice; consumers
    /// deduplicate through their inbox.
    async fn publish(&self, events: &[Event]) -> Result<()> {
        let inner = &self.inner;
        for chunk in events.chunks(PIPELINE) {
            let deadline = Instant::now() + inner.options.reconnect_timeout;
            loop {
                let link = inner.connector.link(deadline).await?;
                match inner.publish_on(&link, chunk).await {
                    Ok(()) => break,
                    Err(e) => {
                        // Reconnecting also declares the topology again
                        // (an unroutable message means part of it is gone).
                        inner.connector.reset(&link);
                        if Instant::now() + RETRY_PAUSE >= deadline {
                            return Err(e);
                        }
                        tracing::debug!(error = %e, "publish failed; retrying on a new connection");
                        tokio::time::sleep(RETRY_PAUSE).await;
                    }
                }
            }
        }
        Ok(())
    }
}

#[async_trait]
impl EventSubscriber for RabbitBus {
    /// The next message of the group: one a waiting consumer of this
    /// process already received, else `basic.get` on the redelivery queue,
    /// then on the work queue; with nothing there and time left of `wait`,
    /// a consumer on both waits for the first to arrive.
    async fn next(&self, consumer: &str, wait: Duration) -> Result<Option<Delivery>> {
        Ok(self.inner.fetch(consumer, 1, wait).await?.into_iter().next())
    }

    /// As [`Self::next`], up to `max`: held messages, then gets until `max`
    /// or both queues are empty; waiting (for the first only) as `next`.
    async fn next_batch(&self, consumer: &str, max: usize, wait: Duration) -> Result<Vec<Delivery>> {
        self.inner.fetch(consumer, max, wait).await
    }

    /// Declares the group's work and redelivery queues with `x-expires` =
    /// `idle`, with no copy from the archive (see the crate docs).
    async fn open_fanout(&self, consumer: &str, idle: Duration) -> Result<()> {
        names::check_group(consumer)?;
        if idle < Duration::from_millis(1) {
            return Err(Error::invalid("idle", "a fan-out group's idle limit must be at least 1 ms"));
        }
        let inner = &self.inner;
        inner.fanout.lock().insert(consumer.to_owned(), idle);
        let link = inner.link().await?;
        inner.ensure_group(&link, consumer).await
    }

    /// Deletes both queues of the group; what this process held or had
    /// handed out of it is forgotten.
    async fn leave(&self, consumer: &str) -> Result<()> {
        names::check_group(consumer)?;
        let inner = &self.inner;
        let _one_at_a_time = inner.creating.lock().await;
        inner.fanout.lock().remove(consumer);
        inner.ready.lock().remove(consumer);
        inner.held.lock().remove(consumer);
        inner.pending.forget_group(consumer);
        let link = inner.link().await?;
        groups::delete(&link, &inner.options, consumer).await?;
        inner.used.lock().remove(consumer);
        Ok(())
    }

    /// Acks the delivery unless it is settled already (acked, nacked,
    /// expired or lost with its connection): then nothing happens.
    async fn ack(&self, delivery: &Delivery) -> Result<()> {
        self.ack_all(std::slice::from_ref(delivery)).await
    }

    /// Acks each delivery still pending. One received on a connection that
    /// is gone is skipped: the broker has requeued it, and the group gets
    /// it again (the inbox absorbs the repeat).
    async fn ack_all(&self, deliveries: &[Delivery]) -> Result<()> {
        let inner = &self.inner;
        let limit = inner.options.request_timeout;
        let current = inner.connector.current().map(|link| link.epoch);
        let mut failure = None;
        for received in inner.take_pending(deliveries)? {
            if Some(received.epoch) != current {
                continue;
            }
            // Every ack is tried: one failing must not leave the others
            // unsettled on a channel that stays open.
            if let Err(e) = within(limit, "basic.ack", received.acker.ack(BasicAckOptions::default())).await {
                failure.get_or_insert(e);
            }
        }
        failure.map_or(Ok(()), Err)
    }

    /// Publishes a copy carrying the attempt count to the group's
    /// redelivery queue (read before the work queue): without delay
    /// straight there, with one through the retry queue of the delay
    /// rounded up to the ladder (see [`RabbitOptions::retry_delay_for`]),
    /// whose TTL sends it on. The delivery is acked once the broker
    /// confirmed the copy; on failure it stays pending, so the ack wait
    /// gives it back. A delivery no longer pending is ignored.
    async fn nack(&self, delivery: &Delivery, delay: Duration) -> Result<()> {
        let inner = &self.inner;
        receipt::check(inner.id, &delivery.receipt)?;
        let Some(received) = inner.pending.take(&delivery.receipt, &delivery.consumer)? else {
            tracing::debug!(consumer = delivery.consumer, "ignoring a nack of a delivery that is no longer pending");
            return Ok(());
        };
        if inner.connector.current().map(|link| link.epoch) != Some(received.epoch) {
            // Its connection is gone, so the broker requeued it already.
            return Ok(());
        }
        match inner.redeliver(&received, (!delay.is_zero()).then_some(delay)).await {
            Ok(()) => Ok(()),
            Err(e) => {
                // Still unsettled: the ack wait gives it back.
                let receipt: Receipt = delivery.receipt.clone();
                inner.pending.insert(receipt, received);
                Err(e)
            }
        }
    }
}
