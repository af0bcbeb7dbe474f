//! [`JetStreamBus`]: the bus ports over one JetStream stream and one durable
//! pull consumer per consumer group.

use bazaar_core::ConflictReason;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_nats::connection::State;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, AckKind, stream};
use async_nats::{ConnectErrorKind, jetstream::context::CreateStreamErrorKind};
use async_trait::async_trait;
use bazaar_core::events::{Delivery, Event, EventPublisher, EventSubscriber, Receipt};
use bazaar_core::{Error, Result};
use futures::StreamExt;
use parking_lot::Mutex;
use tokio::time::Instant;

use crate::held::{Batching, Held};
use crate::names;
use crate::options::JetStreamOptions;
use crate::receipt::{AckSubject, InFlight};

/// The dependency name in [`Error::Unavailable`].
const WHAT: &str = "nats";
/// Waits below this are, with single-message pulls, a no-wait pull that
/// expires after this long.
///
/// A no-wait pull is answered at once when every remaining message is
/// already claimed by other callers' pulls (408), and, if it has no expiry,
/// when the group has nothing left to deliver (404). But when messages
/// remain that it counted and a competing pull then takes them, the server
/// parks a no-wait request that has received nothing until it expires, and
/// one without an expiry until the next publish. A caller of `next` waits
/// for its single pull, so that one always has an expiry, and this short
/// one. (Batch pulls have none: see [`BATCH_SETTLE`].)
const MIN_EXPIRES: Duration = Duration::from_millis(10);
/// The longest single pull request; longer waits pull again.
const MAX_PULL: Duration = Duration::from_secs(60);
/// How long a batch pull is waited for at most (see [`crate::held`]).
///
/// A batch pull is a no-wait request *without* an expiry. With an expiry,
/// the server (2.9) does not answer a request that finds nothing with 404:
/// it holds it until the expiry, so every empty call cost at least that,
/// and now and then it drops it at the expiry without the 408 that ends
/// it, so callers waited for it until its settle time and the client
/// library ended it only 5 s later. Without one, the server answers at
/// once with what it has and the end of the batch. This bound is for the
/// rare request the server parks instead (see [`MIN_EXPIRES`]) until the
/// next message arrives, and for answers that a busy process has not read
/// yet; the batch task keeps reading a parked request, so its late
/// messages are still handed out.
const BATCH_SETTLE: Duration = Duration::from_millis(100);
/// Events in flight per publish round trip. Bounded because async-nats
/// holds one permit per unawaited publish ack (5 000 per context) and a
/// publish that waits for a permit while this call holds the others would
/// never finish.
const PIPELINE: usize = 256;
/// The largest delay JetStream accepts (signed 64-bit nanoseconds).
const MAX_DELAY: Duration = Duration::from_nanos(i64::MAX as u64);

fn unavailable(source: impl Into<bazaar_core::error::BoxError>) -> Error {
    Error::unavailable(WHAT, source)
}

/// [`EventPublisher`] and [`EventSubscriber`] over NATS JetStream.
///
/// See the [crate docs](crate) for the design. Cheap to share behind an
/// `Arc`; all methods take `&self`.
///
/// # Example
/// ```no_run
/// # async fn run() -> bazaar_core::Result<()> {
/// use std::time::Duration;
/// use bazaar_core::clock::{Clock, SystemClock};
/// use bazaar_core::events::{Event, EventPublisher, EventSubscriber, UserRegistered};
/// use bazaar_core::ids::UserId;
/// use bazaar_nats::{JetStreamBus, JetStreamOptions};
///
/// let bus = JetStreamBus::connect("nats://127.0.0.1:4222", JetStreamOptions::default()).await?;
/// let event = Event::new(&UserRegistered { user_id: UserId::new(), role: "vendor".into() }, SystemClock.now());
/// bus.publish(&[event]).await?;
/// if let Some(delivery) = bus.next("mailer", Duration::from_secs(5)).await? {
///     bus.ack(&delivery).await?;
/// }
/// # Ok(())
/// # }
/// ```
pub struct JetStreamBus {
    client: async_nats::Client,
    jetstream: jetstream::Context,
    stream: jetstream::stream::Stream,
    options: JetStreamOptions,
    /// Durable pull consumers by durable name, created on first use.
    consumers: Mutex<HashMap<String, PullConsumer>>,
    /// Serialises consumer creation so concurrent first uses of a group
    /// make one request, not a burst.
    creating: tokio::sync::Mutex<()>,
    in_flight: InFlight,
    /// With `pull_batch` above 1: per durable name, the messages batch
    /// pulls brought that no caller has taken yet, and the batch in flight.
    held: Mutex<HashMap<String, Arc<Held<jetstream::Message>>>>,
    /// Fan-out groups opened here, by durable name, with their idle limit:
    /// a fan-out consumer the server removed (idle too long) is created
    /// again as a fan-out one, never as a group that replays the stream.
    fanout: Mutex<HashMap<String, Duration>>,
}

impl fmt::Debug for JetStreamBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JetStreamBus")
            .field("stream", &self.options.stream)
            .field("subject_prefix", &self.options.subject_prefix)
            .field("ack_wait", &self.options.ack_wait)
            .field("connection", &self.client.connection_state())
            .field("groups", &self.consumers.lock().keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl JetStreamBus {
    /// Connects to the NATS server(s) at `url` (e.g. `nats://127.0.0.1:4222`,
    /// or several comma-separated) and sets up the bus as
    /// [`JetStreamBus::connect_with`] does. The client reconnects on its own
    /// after the first connection succeeds.
    ///
    /// # Errors
    /// [`Error::Validation`] for bad options or an unparsable `url`;
    /// [`Error::Unavailable`] when no server answers within
    /// `options.request_timeout`; as [`JetStreamBus::connect_with`] otherwise.
    pub async fn connect(url: &str, options: JetStreamOptions) -> Result<Self> {
        options.validate()?;
        let client = async_nats::ConnectOptions::new()
            .name("bazaar")
            .connection_timeout(options.request_timeout)
            .connect(url)
            .await
            .map_err(|e| match e.kind() {
                ConnectErrorKind::ServerParse => Error::invalid("url", format!("not a NATS server address: {e}")),
                _ => unavailable(e),
            })?;
        Self::connect_with(client, options).await
    }

    /// Sets up the bus on an existing client: creates the stream unless it
    /// exists (capturing `<subject_prefix>.>`, limits retention, file
    /// storage, `max_age` / `max_messages` / `duplicate_window` from
    /// `options`). Consumers are created on first use of each group.
    ///
    /// # Errors
    /// [`Error::Validation`] for bad options; [`Error::Unavailable`] when the
    /// server or JetStream does not answer; [`Error::Conflict`] when JetStream
    /// refuses the stream (e.g. its subjects overlap another stream's) or an
    /// existing stream of that name does not capture `<subject_prefix>.>`.
    pub async fn connect_with(client: async_nats::Client, options: JetStreamOptions) -> Result<Self> {
        options.validate()?;
        let jetstream = jetstream::ContextBuilder::new()
            .timeout(options.request_timeout)
            .ack_timeout(options.request_timeout)
            .build(client.clone());
        let stream = jetstream.get_or_create_stream(stream_config(&options)).await.map_err(|e| match e.kind() {
            CreateStreamErrorKind::JetStream(err) => Error::conflict(
                ConflictReason::Duplicate,
                format!("JetStream refused stream {:?}: {err}", options.stream),
            ),
            _ => unavailable(e),
        })?;
        let wanted = format!("{}.>", options.subject_prefix);
        let subjects = &stream.cached_info().config.subjects;
        if !subjects.iter().any(|s| *s == wanted || s == ">") {
            return Err(Error::conflict(
                ConflictReason::Duplicate,
                format!(
                    "stream {:?} exists with subjects {subjects:?}, which do not capture {wanted:?}",
                    options.stream
                ),
            ));
        }
        Ok(Self {
            client,
            jetstream,
            stream,
            in_flight: InFlight::new(options.ack_wait),
            options,
            consumers: Mutex::new(HashMap::new()),
            creating: tokio::sync::Mutex::new(()),
            held: Mutex::new(HashMap::new()),
            fanout: Mutex::new(HashMap::new()),
        })
    }

    /// Readiness: the connection is up and the stream answers an info
    /// request.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when disconnected, when the request fails or
    /// times out, or when the stream is gone.
    pub async fn ping(&self) -> Result<()> {
        if self.client.connection_state() != State::Connected {
            return Err(unavailable(format!("not connected ({:?})", self.client.connection_state())));
        }
        self.jetstream.get_stream(&self.options.stream).await.map(drop).map_err(unavailable)
    }

    /// The options the bus was set up with.
    pub fn options(&self) -> &JetStreamOptions {
        &self.options
    }

    /// The underlying client (shared: cloning it shares the connection).
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// The subject an event is published on: `<prefix>.<event type>`.
    pub fn subject_for(&self, event: &Event) -> String {
        format!("{}.{}", self.options.subject_prefix, event.event_type.as_str())
    }

    /// The settings of `durable`'s consumer: from the start of the stream,
    /// or, for a fan-out group, from now on and removed by the server after
    /// `idle` without a pull.
    fn consumer_config(&self, group: &str, durable: &str, fanout: Option<Duration>) -> pull::Config {
        pull::Config {
            durable_name: Some(durable.to_owned()),
            description: Some(match fanout {
                None => format!("bazaar consumer group {group:?}"),
                Some(_) => format!("bazaar fan-out group {group:?}"),
            }),
            deliver_policy: if fanout.is_some() { DeliverPolicy::New } else { DeliverPolicy::All },
            ack_policy: AckPolicy::Explicit,
            ack_wait: self.options.ack_wait,
            max_deliver: self.options.max_deliver.map_or(-1, i64::from),
            inactive_threshold: fanout.unwrap_or_default(),
            ..Default::default()
        }
    }

    /// The durable pull consumer of `durable`, created on first use.
    async fn consumer(&self, group: &str, durable: &str) -> Result<PullConsumer> {
        if let Some(consumer) = self.consumers.lock().get(durable) {
            return Ok(consumer.clone());
        }
        let _creating = self.creating.lock().await;
        if let Some(consumer) = self.consumers.lock().get(durable) {
            return Ok(consumer.clone());
        }
        let fanout = self.fanout.lock().get(durable).copied();
        let config = self.consumer_config(group, durable, fanout);
        let consumer: PullConsumer = self.stream.get_or_create_consumer(durable, config).await.map_err(unavailable)?;
        self.consumers.lock().insert(durable.to_owned(), consumer.clone());
        Ok(consumer)
    }

    /// With `pull_batch` above 1: a message held for `durable`, else one of
    /// the batch in flight or of a new no-wait batch pull of up to
    /// `pull_batch`; `None` once a batch started during this call found
    /// nothing more (see [`crate::held`]).
    async fn next_held(&self, durable: &str, consumer: &PullConsumer) -> Result<Option<jetstream::Message>> {
        let held = self.held_of(durable);
        let batching = Batching {
            max: self.options.pull_batch,
            settle: BATCH_SETTLE,
            // The configured request timeout, so a dead connection ends the
            // batch (and a parked request is given up: the server skips a
            // request whose inbox has no subscriber).
            limit: self.options.request_timeout,
            fresh_for: self.options.ack_wait / 2,
        };
        let max = self.options.pull_batch;
        // No expiry: see `BATCH_SETTLE`.
        let pull = || {
            let consumer = consumer.clone();
            async move { consumer.fetch().max_messages(max).messages().await }
        };
        held.next(&batching, pull).await.map_err(|why| {
            // The consumer may have been deleted; look it up afresh next time.
            self.consumers.lock().remove(durable);
            unavailable(why)
        })
    }

    /// The held messages of `durable`, created on first use.
    fn held_of(&self, durable: &str) -> Arc<Held<jetstream::Message>> {
        let mut groups = self.held.lock();
        match groups.get(durable) {
            Some(held) => held.clone(),
            None => groups.entry(durable.to_owned()).or_insert_with(Held::new).clone(),
        }
    }

    /// The delivery of a pulled message; `None` for a message that is not
    /// an event envelope (someone else published on the prefix), which is
    /// terminated for this group (`+TERM`, logged) so it can't block it.
    async fn delivery(&self, consumer: &str, durable: &str, message: jetstream::Message) -> Result<Option<Delivery>> {
        let info = message.info().map_err(|e| Error::internal("JetStream message without ack subject", e))?;
        let (stream_seq, delivered) = (info.stream_sequence, u64::try_from(info.delivered).unwrap_or(0));
        let event = match Event::from_json(&message.payload) {
            // A publisher that sent the trace context in headers only still joins the trace.
            Ok(mut event) => {
                if event.traceparent.is_none()
                    && let Some(headers) = &message.headers
                {
                    event.traceparent = headers.get("traceparent").map(|v| v.as_str().to_owned());
                    event.tracestate = headers.get("tracestate").map(|v| v.as_str().to_owned());
                }
                event
            }
            Err(e) => {
                tracing::warn!(
                    consumer, stream_seq, subject = %message.subject, error = %e,
                    "terminating a message on the event stream that is not an event"
                );
                message.ack_with(AckKind::Term).await.map_err(unavailable)?;
                return Ok(None);
            }
        };
        let Some(reply) = message.reply.as_ref() else {
            return Err(Error::internal("JetStream message without ack subject", "no reply subject"));
        };
        self.in_flight.delivered(durable, stream_seq, delivered);
        Ok(Some(Delivery {
            event,
            consumer: consumer.to_owned(),
            attempt: u32::try_from(delivered).unwrap_or(u32::MAX),
            receipt: Receipt::new(reply.as_str()),
        }))
    }

    /// One pull request for one message, waiting up to `wait` (below
    /// [`MIN_EXPIRES`]: a no-wait request expiring after [`MIN_EXPIRES`]).
    async fn pull_one(
        &self,
        durable: &str,
        consumer: &PullConsumer,
        wait: Duration,
    ) -> Result<Option<jetstream::Message>> {
        let pulled = async {
            let mut batch = if wait < MIN_EXPIRES {
                consumer.fetch().max_messages(1).expires(MIN_EXPIRES).messages().await
            } else {
                consumer.batch().max_messages(1).expires(wait).messages().await
            }
            .map_err(unavailable)?;
            batch.next().await.transpose().map_err(unavailable)
        };
        // async-nats gives up 5 s after `expires` on its own; this bound is
        // the configured request timeout, so a dead connection surfaces as
        // `Unavailable` on the caller's schedule.
        let wait = wait.max(MIN_EXPIRES);
        let result = match tokio::time::timeout(wait + self.options.request_timeout, pulled).await {
            Ok(result) => result,
            Err(_) => Err(unavailable(format!(
                "no answer to a pull request within {:?}",
                wait + self.options.request_timeout
            ))),
        };
        if result.is_err() {
            // The consumer may have been deleted; look it up afresh next time.
            self.consumers.lock().remove(durable);
        }
        result
    }

    /// Publishes `kind` to each of `subjects` (deliveries' ack subjects)
    /// and flushes them to the server once.
    async fn send_ack(&self, subjects: &[&str], kind: AckKind) -> Result<()> {
        let send = async {
            for subject in subjects {
                self.client.publish((*subject).to_owned(), kind.into()).await.map_err(unavailable)?;
            }
            self.client.flush().await.map_err(unavailable)
        };
        tokio::time::timeout(self.options.request_timeout, send)
            .await
            .unwrap_or_else(|_| Err(unavailable(format!("ack not flushed within {:?}", self.options.request_timeout))))
    }

    /// Parses a receipt and checks it belongs to this bus's stream and the
    /// delivery's group, so ack / nack never publish to arbitrary subjects.
    fn ack_subject<'r>(&self, receipt: &'r Receipt, durable: &str) -> Result<AckSubject<'r>> {
        AckSubject::parse(receipt.as_str())
            .filter(|s| s.stream == self.options.stream && s.consumer == durable)
            .ok_or_else(|| Error::invalid("receipt", "not a receipt of this bus and consumer group"))
    }
}

fn stream_config(options: &JetStreamOptions) -> stream::Config {
    stream::Config {
        name: options.stream.clone(),
        description: Some("Bazaar domain events".into()),
        subjects: vec![format!("{}.>", options.subject_prefix)],
        // Limits, not work-queue or interest: every group sees every event,
        // including groups created after the publish.
        retention: stream::RetentionPolicy::Limits,
        storage: stream::StorageType::File,
        max_age: options.max_age,
        max_messages: options.max_messages.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX)),
        duplicate_window: options.duplicate_window,
        num_replicas: options.replicas,
        discard: stream::DiscardPolicy::Old,
        ..Default::default()
    }
}

#[async_trait]
impl EventPublisher for JetStreamBus {
    /// Publishes each event on `<prefix>.<event type>` with `Nats-Msg-Id` =
    /// the event id (and `traceparent`/`tracestate` headers when traced), pipelined, and returns once JetStream has acked every
    /// one (a duplicate within the window is acked as such: stored once).
    async fn publish(&self, events: &[Event]) -> Result<()> {
        for chunk in events.chunks(PIPELINE) {
            let mut acks = Vec::with_capacity(chunk.len());
            for event in chunk {
                let mut message = PublishMessage::build().message_id(event.id.to_string());
                // The W3C trace context as headers too (the envelope carries
                // it as well), for anything that traces NATS traffic.
                if let Some(traceparent) = &event.traceparent {
                    message = message.header("traceparent", traceparent.as_str());
                }
                if let Some(tracestate) = &event.tracestate {
                    message = message.header("tracestate", tracestate.as_str());
                }
                let message = message.payload(event.to_json().into());
                acks.push(self.jetstream.send_publish(self.subject_for(event), message).await.map_err(unavailable)?);
            }
            for (ack, event) in acks.into_iter().zip(chunk) {
                let ack = ack.await.map_err(unavailable)?;
                if ack.duplicate {
                    tracing::debug!(event_id = %event.id, seq = ack.sequence, "JetStream dropped a duplicate publish");
                }
            }
        }
        Ok(())
    }
}

#[async_trait]
impl EventSubscriber for JetStreamBus {
    /// Pulls one message from the group's durable consumer. A wait under
    /// 10 ms is a no-wait pull (the server answers at once); longer waits
    /// are pull requests that expire after `wait`. With `pull_batch` above
    /// 1, first a message of the group's batch pulls (see the
    /// [crate docs](crate#batched-pulls)).
    ///
    /// A message that is not an event envelope (someone else published on
    /// the prefix) is terminated for this group (`+TERM`, logged) and the
    /// next one is pulled, so it can't block the group.
    async fn next(&self, consumer: &str, wait: Duration) -> Result<Option<Delivery>> {
        let durable = names::durable_name(consumer)?;
        let pull_consumer = self.consumer(consumer, &durable).await?;
        let deadline = Instant::now() + wait.min(Duration::from_secs(365 * 24 * 3600));
        loop {
            let held = if self.options.pull_batch > 1 { self.next_held(&durable, &pull_consumer).await? } else { None };
            let message = match held {
                Some(message) => Some(message),
                None => {
                    let remaining = deadline.saturating_duration_since(Instant::now());
                    let last_try = remaining < MIN_EXPIRES;
                    // Batched: nothing was due just now, so only a caller
                    // that wants to wait makes the waiting pull of one.
                    if last_try && self.options.pull_batch > 1 {
                        return Ok(None);
                    }
                    let pulled = self.pull_one(&durable, &pull_consumer, remaining.min(MAX_PULL)).await?;
                    if pulled.is_none() && last_try {
                        return Ok(None);
                    }
                    pulled
                }
            };
            let Some(message) = message else { continue };
            if let Some(delivery) = self.delivery(consumer, &durable, message).await? {
                return Ok(Some(delivery));
            }
        }
    }

    /// Creates the group's durable consumer with `DeliverPolicy::New` and
    /// `inactive_threshold` = `idle`: the server deletes it after `idle`
    /// without a pull.
    async fn open_fanout(&self, consumer: &str, idle: Duration) -> Result<()> {
        if idle.is_zero() {
            return Err(Error::invalid("idle", "a fan-out group's idle limit must be above zero"));
        }
        let durable = names::durable_name(consumer)?;
        self.fanout.lock().insert(durable.clone(), idle);
        self.consumer(consumer, &durable).await.map(drop)
    }

    /// Deletes the group's durable consumer (its pending messages go with it).
    async fn leave(&self, consumer: &str) -> Result<()> {
        let durable = names::durable_name(consumer)?;
        let _creating = self.creating.lock().await;
        self.consumers.lock().remove(&durable);
        self.held.lock().remove(&durable);
        self.fanout.lock().remove(&durable);
        match self.stream.delete_consumer(&durable).await {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(e.kind(), stream::ConsumerErrorKind::JetStream(ref js)
                if js.error_code() == jetstream::ErrorCode::CONSUMER_NOT_FOUND) =>
            {
                Ok(())
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    /// The first message as [`Self::next`] gets it; then, with batched
    /// pulls, up to `max - 1` more from what that group's batch pulls
    /// brought (held, or still arriving: waited for at most until the
    /// batch's settle time), without another request. With `pull_batch` 1
    /// every request brings one message, so this hands out one.
    async fn next_batch(&self, consumer: &str, max: usize, wait: Duration) -> Result<Vec<Delivery>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let Some(first) = self.next(consumer, wait).await? else {
            return Ok(Vec::new());
        };
        let mut batch = vec![first];
        if max == 1 || self.options.pull_batch < 2 {
            return Ok(batch);
        }
        let durable = names::durable_name(consumer)?;
        for message in self.held_of(&durable).take_more(max - 1, self.options.ack_wait / 2).await {
            // A message that fails here (its +TERM not sent) comes back
            // after the ack wait; the batch taken so far is handed out.
            match self.delivery(consumer, &durable, message).await {
                Ok(Some(delivery)) => batch.push(delivery),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(consumer, error = %e, "a batched message could not be read; JetStream redelivers it")
                }
            }
        }
        Ok(batch)
    }

    /// Publishes `+ACK` to every receipt, then flushes once.
    async fn ack_all(&self, deliveries: &[Delivery]) -> Result<()> {
        let mut acked = Vec::with_capacity(deliveries.len());
        for delivery in deliveries {
            let durable = names::durable_name(&delivery.consumer)?;
            let subject = self.ack_subject(&delivery.receipt, &durable)?;
            acked.push((durable, subject.stream_seq));
        }
        let subjects: Vec<&str> = deliveries.iter().map(|d| d.receipt.as_str()).collect();
        self.send_ack(&subjects, AckKind::Ack).await?;
        for (durable, stream_seq) in acked {
            self.in_flight.acked(&durable, stream_seq);
        }
        Ok(())
    }

    /// Publishes `+ACK` to the receipt (the delivery's ack subject) and
    /// flushes. Acking again is harmless: the server ignores acks of
    /// messages that are no longer pending.
    async fn ack(&self, delivery: &Delivery) -> Result<()> {
        self.ack_all(std::slice::from_ref(delivery)).await
    }

    /// Publishes `-NAK {"delay": ns}` (plain `-NAK` for no delay) to the
    /// receipt, unless this process has since handed out a later delivery
    /// of the message or already nacked this one: the server itself would
    /// apply a stale nack to the current delivery.
    async fn nack(&self, delivery: &Delivery, delay: Duration) -> Result<()> {
        let durable = names::durable_name(&delivery.consumer)?;
        let subject = self.ack_subject(&delivery.receipt, &durable)?;
        if !self.in_flight.may_nack(&durable, subject.stream_seq, subject.delivered) {
            tracing::debug!(
                consumer = %delivery.consumer, stream_seq = subject.stream_seq, delivered = subject.delivered,
                "ignoring a nack of a delivery that is no longer current"
            );
            return Ok(());
        }
        let delay = delay.min(MAX_DELAY);
        let kind = AckKind::Nak((!delay.is_zero()).then_some(delay));
        self.send_ack(&[delivery.receipt.as_str()], kind).await?;
        self.in_flight.given_back(&durable, subject.stream_seq, subject.delivered, delay);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use bazaar_core::clock::{Clock, SystemClock};
    use bazaar_core::events::UserRegistered;
    use bazaar_core::ids::UserId;

    use super::*;

    /// A batched bus on a stream of its own, on the test server
    /// (`BAZAAR_TEST_NATS_URL`, as the integration tests).
    async fn batched_bus() -> Arc<JetStreamBus> {
        let url = std::env::var("BAZAAR_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
        let id = uuid::Uuid::now_v7().simple().to_string();
        let options = JetStreamOptions {
            stream: format!("BZTEST_{id}"),
            subject_prefix: format!("bztest.{id}"),
            max_age: Duration::from_secs(3600),
            pull_batch: 8,
            ..JetStreamOptions::default()
        };
        let bus = JetStreamBus::connect(&url, options).await;
        Arc::new(bus.unwrap_or_else(|e| panic!("these tests need NATS with JetStream at {url}: {e}")))
    }

    fn event() -> Event {
        Event::new(&UserRegistered { user_id: UserId::new(), role: "customer".into() }, SystemClock.now())
    }

    /// Regression: batch pulls carried a 10 ms expiry, so the server held
    /// every one that found nothing until then instead of answering, and
    /// now and then dropped it without an answer: the group's callers then
    /// waited for it until its settle time, one batch after another, while
    /// idle consumer tasks kept polling. Without an expiry, every batch of
    /// a lone process ends with the server's answer, idle or not.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn batch_pulls_end_with_the_servers_answer_and_are_never_waited_out() {
        const CALLS: u64 = 50;
        const CALLERS: usize = 8;
        const EVENTS: usize = 150;
        let bus = batched_bus().await;
        let durable = names::durable_name("idle").unwrap();
        let held = bus.held_of(&durable);
        // The pull requests themselves, as the server receives them.
        let subject = format!("$JS.API.CONSUMER.MSG.NEXT.{}.{durable}", bus.options.stream);
        let mut requests = bus.client.subscribe(subject).await.unwrap();

        // Idle: each no-wait call makes one request, which the server answers.
        for call in 1..=CALLS {
            assert!(bus.next_batch("idle", 8, Duration::ZERO).await.unwrap().is_empty(), "nothing was published");
            assert_eq!(held.started(), call, "one request per call on an idle group");
        }
        bus.client.flush().await.unwrap();
        for _ in 0..CALLS {
            let request = tokio::time::timeout(Duration::from_secs(5), requests.next()).await;
            let request = request.expect("every pull request is seen").expect("subscribed");
            let body = std::str::from_utf8(&request.payload).unwrap();
            assert!(body.contains(r#""batch":8"#) && body.contains(r#""no_wait":true"#), "{body}");
            assert!(!body.contains("expires"), "a no-wait batch pull has no expiry: {body}");
        }
        requests.unsubscribe().await.unwrap();

        // Busy: consumer tasks polling while events are published one by one.
        let publisher = tokio::spawn({
            let bus = bus.clone();
            async move {
                let mut ids = HashSet::new();
                for _ in 0..EVENTS {
                    let event = event();
                    ids.insert(event.id);
                    bus.publish(&[event]).await.unwrap();
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                ids
            }
        });
        let callers: Vec<_> = (0..CALLERS)
            .map(|_| {
                let bus = bus.clone();
                tokio::spawn(async move {
                    let mut got = Vec::new();
                    let mut empty_after_all = 0;
                    // Until the publisher is done and a few calls in a row found nothing.
                    while empty_after_all < 3 {
                        let published_all = bus.stream.clone().info().await.unwrap().state.messages as usize == EVENTS;
                        let batch = bus.next_batch("idle", 8, Duration::ZERO).await.unwrap();
                        if batch.is_empty() && published_all {
                            empty_after_all += 1;
                        }
                        bus.ack_all(&batch).await.unwrap();
                        got.extend(batch.into_iter().map(|d| d.event.id));
                    }
                    got
                })
            })
            .collect();
        let published = publisher.await.unwrap();
        let mut seen = HashSet::new();
        for caller in callers {
            for id in caller.await.unwrap() {
                assert!(seen.insert(id), "{id} was handed out twice");
            }
        }
        assert_eq!(seen, published, "every event handed out once");
        assert_eq!(held.abandoned(), 0, "no batch was waited for until its settle time");
        bus.jetstream.delete_stream(&bus.options.stream).await.unwrap();
    }
}
