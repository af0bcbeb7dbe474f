//! [`JetStreamOptions`]: the stream, consumer and timing settings of a
//! [`JetStreamBus`](crate::JetStreamBus).

use std::time::Duration;

use bazaar_core::{Error, Result};

use crate::names;

/// Settings of a [`JetStreamBus`](crate::JetStreamBus); start from
/// [`JetStreamOptions::default`] and override fields.
///
/// The stream and consumer settings apply when the bus *creates* the stream
/// or a consumer. An existing stream or durable consumer keeps its own
/// configuration (change it with `nats stream edit` / `nats consumer edit`);
/// the bus only checks that an existing stream captures its subjects.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use bazaar_nats::JetStreamOptions;
///
/// let options = JetStreamOptions { ack_wait: Duration::from_secs(60), ..JetStreamOptions::default() };
/// assert_eq!(options.stream, "BAZAAR_EVENTS");
/// assert_eq!(options.max_deliver, None, "JetStream never gives up; the dispatcher dead-letters");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JetStreamOptions {
    /// The stream's name (`BAZAAR_EVENTS`): 1–64 of `A-Z a-z 0-9 _ -`.
    pub stream: String,
    /// The subject prefix (`bazaar`): events go to `<prefix>.<event type>`,
    /// e.g. `bazaar.payment.succeeded`, and the stream captures `<prefix>.>`.
    /// Dot-separated tokens of `A-Z a-z 0-9 _ -`. Two streams cannot capture
    /// overlapping subjects, so two buses sharing a server need distinct
    /// prefixes as well as distinct stream names.
    pub subject_prefix: String,
    /// How long a delivery may stay unacknowledged before JetStream hands it
    /// out again (30 s, the JetStream default). Longer than the slowest
    /// handler run, or a slow handler's message is processed twice at once.
    pub ack_wait: Duration,
    /// Deliveries after which JetStream stops redelivering a message;
    /// `None` (the default) is unlimited.
    ///
    /// Keep it `None`, or above the dispatcher's
    /// `DispatcherConfig::max_attempts` (5 by default) plus a margin for
    /// deliveries that timed out: the dispatcher counts attempts from
    /// [`Delivery::attempt`](bazaar_core::events::Delivery::attempt), parks
    /// the event in the dead-letter store after its last attempt and acks it.
    /// If JetStream's limit is hit first, it silently stops delivering the
    /// message (only an advisory is published): the event is neither handled
    /// nor dead-lettered.
    pub max_deliver: Option<u32>,
    /// How long the stream keeps a message (7 days); `Duration::ZERO` keeps
    /// them until `max_messages` pushes them out. The stream uses the limits
    /// retention policy (every consumer group sees every message), so acked
    /// messages stay until this limit; a message is dropped at this age even
    /// if a group has not acked it, so make it longer than any consumer may
    /// be down.
    pub max_age: Duration,
    /// The most messages the stream keeps (the oldest go first); `None`
    /// (the default) for no count limit.
    pub max_messages: Option<u64>,
    /// How long JetStream remembers event ids (`Nats-Msg-Id`) to drop
    /// duplicate publishes (2 min, the JetStream default). A relay that
    /// republishes a batch after a failed publish within this window causes
    /// no duplicate delivery; later duplicates are caught by the consumers'
    /// inbox. At most `max_age` when that is set.
    pub duplicate_window: Duration,
    /// Stream replicas when the bus creates the stream (1; 3 in a cluster
    /// for durability). 1–5.
    pub replicas: usize,
    /// Timeout of each JetStream API request, publish ack, ack and nack
    /// (5 s), and of connecting in [`JetStreamBus::connect`](crate::JetStreamBus::connect).
    pub request_timeout: Duration,
    /// Messages asked for per pull request (1; at most [`MAX_PULL_BATCH`]).
    /// Above 1, `next` on a group with nothing held makes one no-wait pull
    /// of up to this many, and the calls of `next` on that group in this
    /// process take the messages as they arrive, saving a request (and a
    /// subscription) per message; concurrent callers share that one request.
    /// While a batch is still arriving, `next` waits for it (at most
    /// 100 ms) rather than report nothing due; see the
    /// [crate docs](crate#batched-pulls). Held messages count as delivered
    /// from the moment they are pulled: a process that stops or dies while
    /// holding them gives them back only when `ack_wait` runs out, and one
    /// held longer than half of `ack_wait` is dropped unhandled (JetStream
    /// hands it out again). Keep it near the number of consumer tasks that
    /// share the bus.
    pub pull_batch: usize,
}

impl Default for JetStreamOptions {
    fn default() -> Self {
        Self {
            stream: "BAZAAR_EVENTS".into(),
            subject_prefix: "bazaar".into(),
            ack_wait: Duration::from_secs(30),
            max_deliver: None,
            max_age: Duration::from_secs(7 * 24 * 3600),
            max_messages: None,
            duplicate_window: Duration::from_secs(120),
            replicas: 1,
            request_timeout: Duration::from_secs(5),
            pull_batch: 1,
        }
    }
}

/// The largest [`JetStreamOptions::pull_batch`].
pub const MAX_PULL_BATCH: usize = 256;

/// JetStream durations travel as signed 64-bit nanoseconds.
const MAX_NANOS: u128 = i64::MAX as u128;

impl JetStreamOptions {
    /// Checks every field.
    ///
    /// # Errors
    /// [`Error::Validation`] naming the first bad field.
    pub fn validate(&self) -> Result<()> {
        names::check_stream_name(&self.stream)?;
        names::check_subject_prefix(&self.subject_prefix)?;
        if self.ack_wait < Duration::from_millis(1) || self.ack_wait.as_nanos() > MAX_NANOS {
            return Err(Error::invalid("ack_wait", "the ack wait must be at least 1 ms (and under 292 years)"));
        }
        if self.max_deliver == Some(0) {
            return Err(Error::invalid("max_deliver", "max_deliver must be at least 1, or None for unlimited"));
        }
        if self.max_age.as_nanos() > MAX_NANOS {
            return Err(Error::invalid("max_age", "max_age must be under 292 years"));
        }
        if self.max_messages.is_some_and(|n| n == 0 || i64::try_from(n).is_err()) {
            return Err(Error::invalid("max_messages", "max_messages must be between 1 and i64::MAX, or None"));
        }
        if self.duplicate_window.is_zero() || (!self.max_age.is_zero() && self.duplicate_window > self.max_age) {
            return Err(Error::invalid(
                "duplicate_window",
                "the duplicate window must be positive and at most max_age",
            ));
        }
        if !(1..=5).contains(&self.replicas) {
            return Err(Error::invalid("replicas", "replicas must be between 1 and 5"));
        }
        if self.pull_batch == 0 || self.pull_batch > MAX_PULL_BATCH {
            return Err(Error::invalid("pull_batch", format!("pull_batch must be between 1 and {MAX_PULL_BATCH}")));
        }
        if self.request_timeout.is_zero() {
            return Err(Error::invalid("request_timeout", "the request timeout must be positive"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use bazaar_core::error::ErrorKind;

    use super::*;

    fn field_of(options: JetStreamOptions) -> String {
        match options.validate() {
            Err(Error::Validation(fields)) => fields[0].field.clone(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_valid() {
        JetStreamOptions::default().validate().unwrap();
    }

    #[test]
    fn bad_fields_are_named() {
        let d = JetStreamOptions::default;
        assert_eq!(field_of(JetStreamOptions { stream: "a.b".into(), ..d() }), "stream");
        assert_eq!(field_of(JetStreamOptions { subject_prefix: "a.>".into(), ..d() }), "subject_prefix");
        assert_eq!(field_of(JetStreamOptions { ack_wait: Duration::ZERO, ..d() }), "ack_wait");
        assert_eq!(field_of(JetStreamOptions { max_deliver: Some(0), ..d() }), "max_deliver");
        assert_eq!(field_of(JetStreamOptions { max_messages: Some(0), ..d() }), "max_messages");
        assert_eq!(field_of(JetStreamOptions { max_messages: Some(u64::MAX), ..d() }), "max_messages");
        assert_eq!(
            field_of(JetStreamOptions { max_age: Duration::from_secs(60), ..d() }),
            "duplicate_window",
            "the default 2 min window exceeds a 1 min max_age"
        );
        assert_eq!(field_of(JetStreamOptions { replicas: 0, ..d() }), "replicas");
        assert_eq!(field_of(JetStreamOptions { request_timeout: Duration::ZERO, ..d() }), "request_timeout");
        assert_eq!(field_of(JetStreamOptions { pull_batch: 0, ..d() }), "pull_batch");
        assert_eq!(field_of(JetStreamOptions { pull_batch: MAX_PULL_BATCH + 1, ..d() }), "pull_batch");
        assert_eq!(JetStreamOptions { replicas: 9, ..d() }.validate().unwrap_err().kind(), ErrorKind::Invalid);
    }

    #[test]
    fn unlimited_age_allows_any_window() {
        let options = JetStreamOptions { max_age: Duration::ZERO, max_messages: Some(1_000), ..Default::default() };
        options.validate().unwrap();
    }
}
