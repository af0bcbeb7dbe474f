//! The consumer loop's single step: run the handlers for one delivery (or
//! one batch of them) with inbox idempotency, retry with backoff,
//! dead-letter when exhausted.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tracing::Instrument as _;

use super::{
    DeadLetter, DeadLetterId, DeadLetterStore, Delivery, Event, EventHandler, EventSubscriber, EventType, Inbox,
    TraceContext, continue_trace,
};
use crate::clock::Clock;
use crate::error::{Error, ErrorKind, Result};
use crate::ids::EventId;

/// Exponential backoff without jitter: `base · factor^(attempt−1)`, capped
/// at `max`.
///
/// No jitter because the delay is applied by the broker per message, and
/// messages of one group fail at independent times; a thundering herd
/// would need many messages failing in the same instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay after the first failed attempt.
    pub base: Duration,
    /// Growth per further attempt (≥ 1).
    pub factor: u32,
    /// The cap.
    pub max: Duration,
}

impl Backoff {
    /// The delay before redelivering after failed attempt `attempt` (1-based).
    /// Saturates instead of overflowing; never exceeds `max`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1);
        let multiplier = self.factor.max(1).checked_pow(exponent).unwrap_or(u32::MAX);
        self.base.checked_mul(multiplier).unwrap_or(Duration::MAX).min(self.max)
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self { base: Duration::from_secs(1), factor: 2, max: Duration::from_secs(300) }
    }
}

/// How a [`Dispatcher`] retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DispatcherConfig {
    /// Deliveries (the first included) before an event is dead-lettered.
    pub max_attempts: u32,
    /// The delay between attempts.
    pub backoff: Backoff,
    /// How long [`Dispatcher::process_one`] waits for a message
    /// (`Duration::ZERO` in tests: return [`Outcome::Empty`] at once).
    pub wait: Duration,
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        Self { max_attempts: 5, backoff: Backoff::default(), wait: Duration::ZERO }
    }
}

/// What one [`Dispatcher::process_one`] step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A delivery was handled by every interested handler and acked.
    Processed,
    /// A handler failed; the delivery was nacked for redelivery after `delay`.
    Retrying {
        /// The attempt that failed.
        attempt: u32,
        /// When it comes back.
        delay: Duration,
    },
    /// A handler failed for good; the event was parked and acked.
    DeadLettered(DeadLetterId),
    /// Nothing was due.
    Empty,
}

/// One handler's failure on one event: which (handler, event) pair, the
/// error's text, and whether it is permanent (a malformed payload).
struct Failed {
    pair: usize,
    error: String,
    permanent: bool,
}

impl Failed {
    fn new(pair: usize, err: &Error) -> Self {
        Self { pair, error: err.to_string(), permanent: err.kind() == ErrorKind::Invalid }
    }
}

/// Why the handlers failed on one event.
struct Failure {
    message: String,
    permanent: bool,
}

/// Runs [`EventHandler`]s over the deliveries of a consumer group.
///
/// Per delivery, each handler that [`EventHandler::handles`] the event type
/// runs unless the [`Inbox`] records it already processed that event id
/// (key `"{consumer}/{handler}"`); a success is recorded in the inbox. All
/// interested handlers run even when one fails, so a poisoned handler does
/// not hold the others back. If any failed, the delivery is nacked with
/// [`Backoff`] until `max_attempts`, then parked in the [`DeadLetterStore`]
/// and acked. A failure of kind [`ErrorKind::Invalid`] (malformed payload)
/// is permanent and parked at once.
pub struct Dispatcher {
    subscriber: Arc<dyn EventSubscriber>,
    inbox: Arc<dyn Inbox>,
    dead_letters: Arc<dyn DeadLetterStore>,
    handlers: Vec<Arc<dyn EventHandler>>,
    clock: Arc<dyn Clock>,
    config: DispatcherConfig,
}

impl fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dispatcher")
            .field("handlers", &self.handlers.iter().map(|h| h.name()).collect::<Vec<_>>())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The `<type> process` span (semantic conventions for messaging) of one
/// handler call on `batch`: a child of the first event's trace, linked to
/// the others', and the context the handler's own events carry.
fn process_span(consumer: &str, handler: &str, batch: &[&Event]) -> (tracing::Span, Option<TraceContext>) {
    let first = batch.first();
    let span = tracing::info_span!(
        parent: None,
        "event_process",
        otel.name = format!("{} process", first.map_or("event", |e| e.event_type.as_str())),
        otel.kind = "consumer",
        messaging.operation.r#type = "process",
        messaging.consumer.group.name = consumer,
        messaging.batch.message_count = batch.len(),
        messaging.message.id = first.map(|e| tracing::field::display(e.id)),
        cloudevents.event_id = first.map(|e| tracing::field::display(e.id)),
        cloudevents.event_type = first.map(|e| e.event_type.as_str()),
        bazaar.handler = handler,
    );
    let contexts: Vec<TraceContext> = batch.iter().filter_map(|e| e.trace_context()).collect();
    let context = continue_trace(&span, &contexts.iter().collect::<Vec<_>>());
    (span, context)
}

impl Dispatcher {
    /// A dispatcher running `handlers` over deliveries from `subscriber`.
    pub fn new(
        subscriber: Arc<dyn EventSubscriber>,
        inbox: Arc<dyn Inbox>,
        dead_letters: Arc<dyn DeadLetterStore>,
        handlers: Vec<Arc<dyn EventHandler>>,
        clock: Arc<dyn Clock>,
        config: DispatcherConfig,
    ) -> Self {
        Self { subscriber, inbox, dead_letters, handlers, clock, config }
    }

    /// The configuration.
    pub fn config(&self) -> &DispatcherConfig {
        &self.config
    }

    /// The dead-letter store, for listing parked events.
    pub fn dead_letters(&self) -> &Arc<dyn DeadLetterStore> {
        &self.dead_letters
    }

    /// Takes the next due delivery of group `consumer` and handles it.
    ///
    /// # Errors
    /// Only the bus's or the dead-letter store's own failures (the delivery
    /// then stays pending and comes back after the bus's ack wait); handler
    /// failures are reported as [`Outcome::Retrying`] / [`Outcome::DeadLettered`].
    pub async fn process_one(&self, consumer: &str) -> Result<Outcome> {
        self.process_next(consumer).await.map(|(outcome, _)| outcome)
    }

    /// [`Dispatcher::process_one`], also saying which type of event the
    /// step took (`None` when it took none), for metrics.
    ///
    /// # Errors
    /// As [`Dispatcher::process_one`].
    pub async fn process_next(&self, consumer: &str) -> Result<(Outcome, Option<EventType>)> {
        let Some(delivery) = self.subscriber.next(consumer, self.config.wait).await? else {
            return Ok((Outcome::Empty, None));
        };
        let mut settled = self.settle(consumer, vec![delivery]).await?;
        Ok(settled.pop().map_or((Outcome::Empty, None), |(outcome, event_type)| (outcome, Some(event_type))))
    }

    /// Takes up to `max` due deliveries of group `consumer` in one request
    /// to the bus ([`EventSubscriber::next_batch`]) and handles them
    /// together: each handler gets its events in one call
    /// ([`EventHandler::handle_batch`]; each event's handlers in order),
    /// with one inbox read for all of them, one inbox write for every
    /// handler that succeeded and one ack for every delivery that is done.
    /// Failed deliveries are nacked or parked one by one, exactly as
    /// [`Dispatcher::process_one`] does. Returns each delivery's outcome
    /// and event type, in the order the bus handed them out; empty when
    /// nothing was due.
    ///
    /// # Errors
    /// As [`Dispatcher::process_one`].
    pub async fn process_batch(&self, consumer: &str, max: usize) -> Result<Vec<(Outcome, EventType)>> {
        let deliveries = self.subscriber.next_batch(consumer, max, self.config.wait).await?;
        if deliveries.is_empty() {
            return Ok(Vec::new());
        }
        self.settle(consumer, deliveries).await
    }

    /// Runs the handlers on `deliveries`, then acks the ones done and
    /// nacks or parks the others.
    async fn settle(&self, consumer: &str, deliveries: Vec<Delivery>) -> Result<Vec<(Outcome, EventType)>> {
        let results = {
            let events: Vec<&Event> = deliveries.iter().map(|d| &d.event).collect();
            self.run_all(consumer, &events).await
        };
        let mut outcomes = Vec::with_capacity(deliveries.len());
        let mut done = Vec::new();
        let mut failed = Vec::new();
        for (delivery, result) in deliveries.into_iter().zip(results) {
            outcomes.push((Outcome::Processed, delivery.event.event_type));
            match result {
                Ok(()) => done.push(delivery),
                Err(failure) => failed.push((outcomes.len() - 1, delivery, failure)),
            }
        }
        if !done.is_empty() {
            self.subscriber.ack_all(&done).await?;
        }
        for (slot, delivery, failure) in failed {
            outcomes[slot].0 = self.fail(delivery, failure).await?;
        }
        Ok(outcomes)
    }

    /// Parks a delivery whose handlers failed for good (or for the last
    /// time) and acks it, or nacks it with backoff.
    async fn fail(&self, delivery: Delivery, failure: Failure) -> Result<Outcome> {
        if failure.permanent || delivery.attempt >= self.config.max_attempts {
            let id = self.park(&delivery, failure.message).await?;
            self.subscriber.ack(&delivery).await?;
            return Ok(Outcome::DeadLettered(id));
        }
        let delay = self.config.backoff.delay(delivery.attempt);
        tracing::info!(
            consumer = %delivery.consumer,
            event_id = %delivery.event.id,
            event_type = %delivery.event.event_type,
            attempt = delivery.attempt,
            delay_ms = delay.as_millis() as u64,
            error = %failure.message,
            "event handling failed; will retry"
        );
        self.subscriber.nack(&delivery, delay).await?;
        Ok(Outcome::Retrying { attempt: delivery.attempt, delay })
    }

    /// Calls [`Dispatcher::process_one`] until it returns [`Outcome::Empty`];
    /// returns how many deliveries were taken. Deliveries nacked with a delay
    /// are not due yet, so this terminates.
    ///
    /// # Errors
    /// As [`Dispatcher::process_one`].
    pub async fn drain(&self, consumer: &str) -> Result<usize> {
        let mut taken = 0;
        while self.process_one(consumer).await? != Outcome::Empty {
            taken += 1;
        }
        Ok(taken)
    }

    /// Dead letters oldest first, skipping `offset`, at most `limit`, with
    /// how many are parked in all.
    ///
    /// # Errors
    /// The dead-letter store's errors.
    pub async fn list_dead_letters(&self, offset: usize, limit: usize) -> Result<(Vec<DeadLetter>, u64)> {
        Ok((self.dead_letters.list(offset, limit).await?, self.dead_letters.count().await?))
    }

    /// One dead letter.
    ///
    /// # Errors
    /// The dead-letter store's errors.
    pub async fn dead_letter(&self, id: DeadLetterId) -> Result<Option<DeadLetter>> {
        self.dead_letters.get(id).await
    }

    /// Re-runs the handlers on dead letter `id`. On success the letter is
    /// removed and [`Outcome::Processed`] returned; on failure it stays
    /// parked with the new error and one more attempt, and
    /// [`Outcome::DeadLettered`] is returned. Handlers that had succeeded
    /// before are skipped through the inbox.
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is no such letter; store failures.
    pub async fn replay(&self, id: DeadLetterId) -> Result<Outcome> {
        let letter = self.dead_letters.get(id).await?.ok_or_else(|| Error::not_found("dead letter"))?;
        let result = self.run_all(&letter.consumer, &[&letter.event]).await.pop().unwrap_or(Ok(()));
        match result {
            Ok(()) => {
                self.dead_letters.remove(id).await?;
                tracing::info!(dead_letter = %id, event_id = %letter.event.id, "dead letter replayed");
                Ok(Outcome::Processed)
            }
            Err(failure) => {
                let attempts = letter.attempts.saturating_add(1);
                let stored = self
                    .dead_letters
                    .put(DeadLetter { error: failure.message, attempts, failed_at: self.clock.now(), ..letter })
                    .await?;
                Ok(Outcome::DeadLettered(stored))
            }
        }
    }

    async fn park(&self, delivery: &Delivery, error: String) -> Result<DeadLetterId> {
        tracing::warn!(
            consumer = %delivery.consumer,
            event_id = %delivery.event.id,
            event_type = %delivery.event.event_type,
            attempts = delivery.attempt,
            error = %error,
            "event dead-lettered"
        );
        self.dead_letters
            .put(DeadLetter {
                id: DeadLetterId::new(),
                consumer: delivery.consumer.clone(),
                event: delivery.event.clone(),
                error,
                attempts: delivery.attempt,
                failed_at: self.clock.now(),
            })
            .await
    }

    /// Runs the interested handlers on each of `events`: each event's
    /// handlers in order, all of them even when one fails, skipping the
    /// (handler, event) pairs the inbox has. A handler gets the events it
    /// runs on together ([`EventHandler::handle_batch`]), so it can serve
    /// them with one store round trip. The
    /// inbox is read once for all pairs and every success recorded with
    /// one write; an inbox failure counts as a failure of the handlers it
    /// concerns, so their events are retried. One result per event.
    async fn run_all(&self, consumer: &str, events: &[&Event]) -> Vec<Result<(), Failure>> {
        let pairs: Vec<(usize, &Arc<dyn EventHandler>)> = events
            .iter()
            .enumerate()
            .flat_map(|(i, event)| self.handlers.iter().filter(|h| h.handles(event.event_type)).map(move |h| (i, h)))
            .collect();
        let keys: Vec<(String, EventId)> =
            pairs.iter().map(|(i, h)| (format!("{consumer}/{}", h.name()), events[*i].id)).collect();
        let mut errors: Vec<Vec<Failed>> = events.iter().map(|_| Vec::new()).collect();
        if keys.is_empty() {
            return Self::results(&pairs, errors);
        }
        let read = self.inbox.processed_among(&keys).await.and_then(|processed| {
            if processed.len() == keys.len() {
                Ok(processed)
            } else {
                let answered = format!("it answered for {} of {} pairs", processed.len(), keys.len());
                Err(Error::internal("reading the inbox", answered))
            }
        });
        let processed = match read {
            Ok(processed) => processed,
            // Unread, every pair fails: each event with an interested
            // handler is retried.
            Err(err) => {
                for (k, (i, _)) in pairs.iter().enumerate() {
                    errors[*i].push(Failed::new(k, &err));
                }
                return Self::results(&pairs, errors);
            }
        };

        // Each event's pending pairs, in handler order. A round takes the
        // next pair of every event and hands each handler all of its
        // events of that round in one call; the handlers of a round run
        // concurrently. So an event's handlers still run one after the
        // other, in order.
        let mut pending: Vec<std::collections::VecDeque<usize>> = events.iter().map(|_| Default::default()).collect();
        for (k, (i, _)) in pairs.iter().enumerate() {
            if !processed[k] {
                pending[*i].push_back(k);
            }
        }
        let mut succeeded = Vec::new();
        loop {
            let mut round: Vec<(&Arc<dyn EventHandler>, Vec<usize>)> = Vec::new();
            for k in pending.iter_mut().filter_map(std::collections::VecDeque::pop_front) {
                let handler = pairs[k].1;
                match round.iter_mut().find(|(h, _)| Arc::ptr_eq(h, handler)) {
                    Some((_, ks)) => ks.push(k),
                    None => round.push((handler, vec![k])),
                }
            }
            if round.is_empty() {
                break;
            }
            let calls = round.iter().map(|(handler, ks)| {
                let batch: Vec<&Event> = ks.iter().map(|&k| events[pairs[k].0]).collect();
                let (span, context) = process_span(consumer, handler.name(), &batch);
                let call = async move { handler.handle_batch(&batch).await };
                TraceContext::maybe_scope(context, call.instrument(span))
            });
            for ((_, ks), results) in round.iter().zip(futures::future::join_all(calls).await) {
                let results = results.and_then(|results| {
                    if results.len() == ks.len() {
                        Ok(results)
                    } else {
                        let answered = format!("it answered for {} of {} events", results.len(), ks.len());
                        Err(Error::internal("running a handler on a batch", answered))
                    }
                });
                match results {
                    Ok(results) => {
                        for (&k, result) in ks.iter().zip(results) {
                            match result {
                                Ok(()) => succeeded.push(k),
                                Err(err) => errors[pairs[k].0].push(Failed::new(k, &err)),
                            }
                        }
                    }
                    // The call failed as a whole: each of its events did.
                    Err(err) => {
                        for &k in ks {
                            errors[pairs[k].0].push(Failed::new(k, &err));
                        }
                    }
                }
            }
        }
        if !succeeded.is_empty() {
            let done: Vec<(String, EventId)> = succeeded.iter().map(|&k| keys[k].clone()).collect();
            if let Err(err) = self.inbox.mark_all_processed(&done).await {
                for &k in &succeeded {
                    errors[pairs[k].0].push(Failed::new(k, &err));
                }
            }
        }
        Self::results(&pairs, errors)
    }

    /// One result per event from its handlers' errors: `Ok` without any,
    /// else the errors in handler order, permanent when one is
    /// [`ErrorKind::Invalid`] (a malformed payload).
    fn results(pairs: &[(usize, &Arc<dyn EventHandler>)], errors: Vec<Vec<Failed>>) -> Vec<Result<(), Failure>> {
        errors
            .into_iter()
            .map(|mut failed| {
                if failed.is_empty() {
                    return Ok(());
                }
                failed.sort_by_key(|f| f.pair);
                let permanent = failed.iter().any(|f| f.permanent);
                let message = failed
                    .iter()
                    .map(|f| format!("{}: {}", pairs[f.pair].1.name(), f.error))
                    .collect::<Vec<_>>()
                    .join("; ");
                Err(Failure { message, permanent })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::events::{
        EventType, MockDeadLetterStore, MockEventHandler, MockEventSubscriber, MockInbox, Receipt, UserRegistered,
    };
    use crate::ids::UserId;
    use proptest::prelude::*;

    fn delivery(attempt: u32) -> Delivery {
        Delivery {
            event: Event::new(
                &UserRegistered { user_id: UserId::new(), role: "customer".into() },
                ManualClock::at_epoch_secs(0).now(),
            ),
            consumer: "worker".into(),
            attempt,
            receipt: Receipt::new("1"),
        }
    }

    type Script = Box<dyn Fn(&Event) -> Result<()> + Send + Sync>;

    /// A `user.registered` handler answering `result` for each event it is
    /// given, through the trait's default `handle_batch`, and asserting
    /// when dropped that it handled `times` events.
    struct Scripted {
        name: &'static str,
        result: Script,
        times: usize,
        handled: std::sync::atomic::AtomicUsize,
    }

    #[async_trait::async_trait]
    impl EventHandler for Scripted {
        fn name(&self) -> &'static str {
            self.name
        }

        fn handles(&self, event_type: EventType) -> bool {
            event_type == EventType::UserRegistered
        }

        async fn handle(&self, event: &Event) -> Result<()> {
            self.handled.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            (self.result)(event)
        }
    }

    impl Drop for Scripted {
        fn drop(&mut self) {
            if !std::thread::panicking() {
                assert_eq!(*self.handled.get_mut(), self.times, "events handler {} handled", self.name);
            }
        }
    }

    fn scripted(
        name: &'static str,
        result: impl Fn(&Event) -> Result<()> + Send + Sync + 'static,
        times: usize,
    ) -> Arc<dyn EventHandler> {
        Arc::new(Scripted { name, result: Box::new(result), times, handled: Default::default() })
    }

    fn handler(name: &'static str, result: fn() -> Result<()>, times: usize) -> Arc<dyn EventHandler> {
        scripted(name, move |_| result(), times)
    }

    fn fresh_inbox() -> MockInbox {
        let mut inbox = MockInbox::new();
        inbox.expect_processed_among().returning(|keys| Ok(vec![false; keys.len()]));
        inbox.expect_mark_all_processed().returning(|_| Ok(()));
        inbox
    }

    fn dispatcher(
        sub: MockEventSubscriber,
        inbox: MockInbox,
        dlq: MockDeadLetterStore,
        handlers: Vec<Arc<dyn EventHandler>>,
    ) -> Dispatcher {
        Dispatcher::new(
            Arc::new(sub),
            Arc::new(inbox),
            Arc::new(dlq),
            handlers,
            Arc::new(ManualClock::at_epoch_secs(0)),
            DispatcherConfig { max_attempts: 3, ..DispatcherConfig::default() },
        )
    }

    fn boom() -> Result<()> {
        Err(Error::unavailable("mailer", std::io::Error::other("smtp down")))
    }

    #[tokio::test]
    async fn success_records_the_inbox_and_acks() {
        let d = delivery(1);
        let mut sub = MockEventSubscriber::new();
        sub.expect_next().return_once(move |_, _| Ok(Some(d)));
        sub.expect_ack_all().withf(|done| done.len() == 1).times(1).returning(|_| Ok(()));
        sub.expect_nack().never();
        let mut inbox = MockInbox::new();
        inbox.expect_processed_among().times(1).returning(|keys| Ok(vec![false; keys.len()]));
        inbox
            .expect_mark_all_processed()
            .withf(|keys| keys.len() == 1 && keys[0].0 == "worker/mail")
            .times(1)
            .returning(|_| Ok(()));
        let d = dispatcher(sub, inbox, MockDeadLetterStore::new(), vec![handler("mail", || Ok(()), 1)]);
        assert_eq!(d.process_one("worker").await.unwrap(), Outcome::Processed);
    }

    #[tokio::test]
    async fn a_handler_already_in_the_inbox_is_skipped() {
        let d = delivery(2);
        let mut sub = MockEventSubscriber::new();
        sub.expect_next().return_once(move |_, _| Ok(Some(d)));
        sub.expect_ack_all().withf(|done| done.len() == 1).times(1).returning(|_| Ok(()));
        let mut inbox = MockInbox::new();
        inbox.expect_processed_among().returning(|keys| Ok(keys.iter().map(|(key, _)| key == "worker/done").collect()));
        inbox
            .expect_mark_all_processed()
            .withf(|keys| keys.len() == 1 && keys[0].0 == "worker/todo")
            .times(1)
            .returning(|_| Ok(()));
        let handlers = vec![handler("done", || Ok(()), 0), handler("todo", || Ok(()), 1)];
        let d = dispatcher(sub, inbox, MockDeadLetterStore::new(), handlers);
        assert_eq!(d.process_one("worker").await.unwrap(), Outcome::Processed);
    }

    #[tokio::test]
    async fn a_failure_nacks_with_backoff_and_still_runs_the_other_handlers() {
        let d = delivery(2);
        let mut sub = MockEventSubscriber::new();
        sub.expect_next().return_once(move |_, _| Ok(Some(d)));
        sub.expect_ack().never();
        sub.expect_nack().withf(|_, delay| *delay == Duration::from_secs(2)).times(1).returning(|_, _| Ok(()));
        let handlers = vec![handler("bad", boom, 1), handler("good", || Ok(()), 1)];
        let d = dispatcher(sub, fresh_inbox(), MockDeadLetterStore::new(), handlers);
        assert_eq!(
            d.process_one("worker").await.unwrap(),
            Outcome::Retrying { attempt: 2, delay: Duration::from_secs(2) }
        );
    }

    #[tokio::test]
    async fn the_last_attempt_parks_the_event_with_its_error_and_acks() {
        let d = delivery(3);
        let event_id = d.event.id;
        let mut sub = MockEventSubscriber::new();
        sub.expect_next().return_once(move |_, _| Ok(Some(d)));
        sub.expect_ack().times(1).returning(|_| Ok(()));
        sub.expect_nack().never();
        let mut dlq = MockDeadLetterStore::new();
        dlq.expect_put()
            .withf(move |l| {
                l.event.id == event_id
                    && l.attempts == 3
                    && l.consumer == "worker"
                    && l.error.contains("bad: mailer unavailable")
            })
            .times(1)
            .returning(|l| Ok(l.id));
        let d = dispatcher(sub, fresh_inbox(), dlq, vec![handler("bad", boom, 1)]);
        assert!(matches!(d.process_one("worker").await.unwrap(), Outcome::DeadLettered(_)));
    }

    #[tokio::test]
    async fn a_malformed_payload_is_parked_at_once() {
        let d = delivery(1);
        let mut sub = MockEventSubscriber::new();
        sub.expect_next().return_once(move |_, _| Ok(Some(d)));
        sub.expect_ack().times(1).returning(|_| Ok(()));
        let mut dlq = MockDeadLetterStore::new();
        dlq.expect_put().times(1).returning(|l| Ok(l.id));
        let d = dispatcher(sub, fresh_inbox(), dlq, vec![handler("strict", || Err(Error::invalid("data", "bad")), 1)]);
        assert!(matches!(d.process_one("worker").await.unwrap(), Outcome::DeadLettered(_)));
    }

    #[tokio::test]
    async fn nothing_due_is_empty() {
        let mut sub = MockEventSubscriber::new();
        sub.expect_next().returning(|_, _| Ok(None));
        let d = dispatcher(sub, MockInbox::new(), MockDeadLetterStore::new(), vec![]);
        assert_eq!(d.process_one("worker").await.unwrap(), Outcome::Empty);
        assert_eq!(d.drain("worker").await.unwrap(), 0);
    }

    #[tokio::test]
    async fn replay_removes_the_letter_on_success() {
        let letter = DeadLetter {
            id: DeadLetterId::new(),
            consumer: "worker".into(),
            event: delivery(1).event,
            error: "x".into(),
            attempts: 3,
            failed_at: ManualClock::at_epoch_secs(0).now(),
        };
        let id = letter.id;
        let mut dlq = MockDeadLetterStore::new();
        dlq.expect_get().return_once(move |_| Ok(Some(letter)));
        dlq.expect_remove().withf(move |x| *x == id).times(1).returning(|_| Ok(true));
        let d = dispatcher(MockEventSubscriber::new(), fresh_inbox(), dlq, vec![handler("h", || Ok(()), 1)]);
        assert_eq!(d.replay(id).await.unwrap(), Outcome::Processed);
    }

    #[tokio::test]
    async fn a_failed_replay_keeps_the_letter_with_one_more_attempt() {
        let letter = DeadLetter {
            id: DeadLetterId::new(),
            consumer: "worker".into(),
            event: delivery(1).event,
            error: "x".into(),
            attempts: 3,
            failed_at: ManualClock::at_epoch_secs(0).now(),
        };
        let id = letter.id;
        let mut dlq = MockDeadLetterStore::new();
        dlq.expect_get().return_once(move |_| Ok(Some(letter)));
        dlq.expect_remove().never();
        dlq.expect_put()
            .withf(|l| l.attempts == 4 && !l.error.contains("smtp") && l.error.contains("mailer"))
            .times(1)
            .returning(|l| Ok(l.id));
        let d = dispatcher(MockEventSubscriber::new(), fresh_inbox(), dlq, vec![handler("h", boom, 1)]);
        assert_eq!(d.replay(id).await.unwrap(), Outcome::DeadLettered(id));
    }

    #[tokio::test]
    async fn replaying_an_unknown_letter_is_not_found() {
        let mut dlq = MockDeadLetterStore::new();
        dlq.expect_get().returning(|_| Ok(None));
        let d = dispatcher(MockEventSubscriber::new(), MockInbox::new(), dlq, vec![]);
        assert_eq!(d.replay(DeadLetterId::new()).await.unwrap_err().code(), "not_found");
    }

    /// `n` deliveries of distinct events, attempt 1.
    fn deliveries(n: usize) -> Vec<Delivery> {
        (0..n).map(|i| Delivery { receipt: Receipt::new(i.to_string()), ..delivery(1) }).collect()
    }

    /// A bus handing out a batch of `n` deliveries and expecting each to be
    /// nacked for a retry and none acked.
    fn all_retried(n: usize) -> MockEventSubscriber {
        let mut sub = MockEventSubscriber::new();
        sub.expect_next_batch().return_once(move |_, _, _| Ok(deliveries(n)));
        sub.expect_ack_all().never();
        sub.expect_nack().times(n).returning(|_, _| Ok(()));
        sub
    }

    #[tokio::test]
    async fn a_batch_reads_and_writes_the_inbox_once_and_acks_what_is_done_together() {
        let batch = deliveries(3);
        let failing = batch[1].event.id;
        let mut sub = MockEventSubscriber::new();
        sub.expect_next_batch()
            .withf(|group, max, _| group == "worker" && *max == 8)
            .return_once(move |_, _, _| Ok(batch));
        sub.expect_ack_all()
            .withf(move |done| done.len() == 2 && done.iter().all(|d| d.event.id != failing))
            .times(1)
            .returning(|_| Ok(()));
        sub.expect_nack().withf(move |d, _| d.event.id == failing).times(1).returning(|_, _| Ok(()));
        sub.expect_ack().never();
        let mut inbox = MockInbox::new();
        inbox
            .expect_processed_among()
            .withf(|keys| keys.len() == 3)
            .times(1)
            .returning(|keys| Ok(vec![false; keys.len()]));
        inbox
            .expect_mark_all_processed()
            .withf(move |keys| keys.len() == 2 && keys.iter().all(|(key, id)| key == "worker/mail" && *id != failing))
            .times(1)
            .returning(|_| Ok(()));
        let h = scripted("mail", move |event| if event.id == failing { boom() } else { Ok(()) }, 3);
        let d = dispatcher(sub, inbox, MockDeadLetterStore::new(), vec![h]);

        let outcomes = d.process_batch("worker", 8).await.unwrap();
        let outcomes: Vec<Outcome> = outcomes.into_iter().map(|(outcome, _)| outcome).collect();
        assert_eq!(
            outcomes,
            vec![
                Outcome::Processed,
                Outcome::Retrying { attempt: 1, delay: Duration::from_secs(1) },
                Outcome::Processed
            ],
            "one outcome per delivery, in the order the bus handed them out"
        );
    }

    #[tokio::test]
    async fn a_handler_gets_its_events_of_a_batch_in_one_call() {
        let batch = deliveries(3);
        let failing = batch[2].event.id;
        let mut sub = MockEventSubscriber::new();
        sub.expect_next_batch().return_once(move |_, _, _| Ok(batch));
        sub.expect_ack_all().withf(|done| done.len() == 2).times(1).returning(|_| Ok(()));
        sub.expect_nack().withf(move |d, _| d.event.id == failing).times(1).returning(|_, _| Ok(()));
        let mut h = MockEventHandler::new();
        h.expect_name().return_const("mail");
        h.expect_handles().returning(|t| t == EventType::UserRegistered);
        h.expect_handle().never();
        h.expect_handle_batch().withf(|events| events.len() == 3).times(1).returning(move |events| {
            Ok(events.iter().map(|e| if e.id == failing { boom() } else { Ok(()) }).collect())
        });
        let d = dispatcher(sub, fresh_inbox(), MockDeadLetterStore::new(), vec![Arc::new(h)]);

        let outcomes: Vec<Outcome> = d.process_batch("worker", 8).await.unwrap().into_iter().map(|(o, _)| o).collect();
        assert_eq!(outcomes[..2], [Outcome::Processed, Outcome::Processed]);
        assert!(matches!(outcomes[2], Outcome::Retrying { attempt: 1, .. }), "{outcomes:?}");
    }

    #[tokio::test]
    async fn a_failed_batch_call_fails_each_of_its_events_and_the_next_handler_still_runs_after_it() {
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sub = all_retried(2);
        let mut inbox = MockInbox::new();
        inbox.expect_processed_among().returning(|keys| Ok(vec![false; keys.len()]));
        // Only the second handler's successes are recorded.
        inbox
            .expect_mark_all_processed()
            .withf(|keys| keys.len() == 2 && keys.iter().all(|(key, _)| key == "worker/second"))
            .times(1)
            .returning(|_| Ok(()));
        let mut first = MockEventHandler::new();
        first.expect_name().return_const("first");
        first.expect_handles().returning(|t| t == EventType::UserRegistered);
        let first_log = log.clone();
        first.expect_handle_batch().times(1).returning(move |events| {
            first_log.lock().unwrap().extend(events.iter().map(|_| "first"));
            Err(Error::unavailable("mail server", std::io::Error::other("down")))
        });
        let second_log = log.clone();
        let second = scripted(
            "second",
            move |_| {
                second_log.lock().unwrap().push("second");
                Ok(())
            },
            2,
        );
        let d = dispatcher(sub, inbox, MockDeadLetterStore::new(), vec![Arc::new(first), second]);

        let outcomes = d.process_batch("worker", 8).await.unwrap();
        assert!(outcomes.iter().all(|(o, _)| matches!(o, Outcome::Retrying { attempt: 1, .. })), "{outcomes:?}");
        assert_eq!(*log.lock().unwrap(), ["first", "first", "second", "second"], "each event's handlers in order");
    }

    #[tokio::test]
    async fn an_unreadable_inbox_retries_the_whole_batch_without_running_a_handler() {
        let sub = all_retried(2);
        let mut inbox = MockInbox::new();
        inbox
            .expect_processed_among()
            .returning(|_| Err(Error::unavailable("database", std::io::Error::other("down"))));
        inbox.expect_mark_all_processed().never();
        let d = dispatcher(sub, inbox, MockDeadLetterStore::new(), vec![handler("mail", || Ok(()), 0)]);
        let outcomes = d.process_batch("worker", 8).await.unwrap();
        assert!(outcomes.iter().all(|(o, _)| matches!(o, Outcome::Retrying { attempt: 1, .. })), "{outcomes:?}");
    }

    #[tokio::test]
    async fn an_unrecorded_success_is_retried_not_acked() {
        let sub = all_retried(2);
        let mut inbox = MockInbox::new();
        inbox.expect_processed_among().returning(|keys| Ok(vec![false; keys.len()]));
        inbox
            .expect_mark_all_processed()
            .times(1)
            .returning(|_| Err(Error::unavailable("database", std::io::Error::other("down"))));
        let d = dispatcher(sub, inbox, MockDeadLetterStore::new(), vec![handler("mail", || Ok(()), 2)]);
        let outcomes = d.process_batch("worker", 8).await.unwrap();
        assert!(outcomes.iter().all(|(o, _)| matches!(o, Outcome::Retrying { .. })), "{outcomes:?}");
    }

    #[tokio::test]
    async fn events_nobody_handles_are_acked_without_touching_the_inbox() {
        let mut sub = MockEventSubscriber::new();
        sub.expect_next_batch().return_once(|_, _, _| Ok(deliveries(2)));
        sub.expect_ack_all().withf(|done| done.len() == 2).times(1).returning(|_| Ok(()));
        let mut inbox = MockInbox::new();
        inbox.expect_processed_among().never();
        inbox.expect_mark_all_processed().never();
        let mut h = MockEventHandler::new();
        h.expect_name().return_const("other");
        h.expect_handles().returning(|t| t == EventType::OrderPlaced);
        h.expect_handle().never();
        h.expect_handle_batch().never();
        let d = dispatcher(sub, inbox, MockDeadLetterStore::new(), vec![Arc::new(h)]);
        assert_eq!(d.process_batch("worker", 8).await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn an_empty_batch_is_nothing() {
        let mut sub = MockEventSubscriber::new();
        sub.expect_next_batch().return_once(|_, _, _| Ok(Vec::new()));
        let d = dispatcher(sub, MockInbox::new(), MockDeadLetterStore::new(), vec![handler("mail", || Ok(()), 0)]);
        assert!(d.process_batch("worker", 8).await.unwrap().is_empty());
    }

    #[test]
    fn backoff_doubles_from_the_base() {
        let b = Backoff::default();
        assert_eq!((1..=4).map(|a| b.delay(a).as_secs()).collect::<Vec<_>>(), vec![1, 2, 4, 8]);
        assert_eq!(b.delay(30), Duration::from_secs(300));
    }

    proptest! {
        #[test]
        fn backoff_is_monotone_and_capped(base_ms in 0u64..10_000, factor in 0u32..10, max_ms in 0u64..1_000_000, attempt in 1u32..200) {
            let b = Backoff { base: Duration::from_millis(base_ms), factor, max: Duration::from_millis(max_ms) };
            prop_assert!(b.delay(attempt) <= b.max);
            prop_assert!(b.delay(attempt) <= b.delay(attempt + 1));
            prop_assert_eq!(b.delay(1), b.base.min(b.max));
        }
    }
}
