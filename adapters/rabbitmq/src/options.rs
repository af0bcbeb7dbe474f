//! [`RabbitOptions`]: the topology names, prefetch, ack wait, retry ladder
//! and timeouts of a [`RabbitBus`](crate::RabbitBus).

use std::collections::BTreeMap;
use std::time::Duration;

use bazaar_core::{Error, Result};

use crate::names;

/// Settings of a [`RabbitBus`](crate::RabbitBus); start from
/// [`RabbitOptions::default`] and override fields.
///
/// The queue arguments (`archive_max_age`, `delivery_limit`, the retry
/// ladder) apply when the bus *declares* a queue. RabbitMQ refuses to
/// redeclare an existing queue with other arguments
/// (`PRECONDITION_FAILED`), so changing them for an existing topology means
/// deleting those queues first, or choosing a new `queue_prefix`.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use bazaar_rabbitmq::RabbitOptions;
///
/// let options = RabbitOptions { prefetch: 64, ..RabbitOptions::default() };
/// assert_eq!(options.exchange, "bazaar.events");
/// assert_eq!(options.retry_delay_for(Duration::from_millis(1_500)), Duration::from_secs(2), "rounded up");
/// options.validate().unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RabbitOptions {
    /// The durable topic exchange events are published to (`bazaar.events`),
    /// with the event type as routing key (`payment.succeeded`). The retry
    /// and dead-letter exchanges are named after it (`<exchange>.retry`,
    /// `<exchange>.dead`). 1–200 of `A-Z a-z 0-9 . _ -`, not starting with
    /// `amq.`.
    pub exchange: String,
    /// The prefix of every queue the bus declares (`bazaar`): the group
    /// queues `<prefix>.group.<group>` and `<prefix>.group.<group>.redelivery`,
    /// the archive stream `<prefix>.archive`, the retry queues
    /// `<prefix>.retry.<ms>ms` and the dead-letter queue `<prefix>.dead`.
    /// Same characters as `exchange`. Two buses sharing a broker (vhost)
    /// need distinct exchanges *and* prefixes.
    pub queue_prefix: String,
    /// Messages a waiting consumer may hold unacknowledged at once
    /// (`basic.qos` prefetch, 32): keep it at the worker's batch size, so a
    /// consumer that waited for work is handed a whole batch in one push.
    /// 1–65 535.
    pub prefetch: u16,
    /// How long a delivery may stay unacknowledged before the bus gives it
    /// back to the queue for redelivery (30 s). RabbitMQ itself has no such
    /// limit (it waits for the channel to close, or for its
    /// `consumer_timeout`, 30 min by default, which closes the channel), so
    /// the bus enforces it: each process requeues its own expired
    /// deliveries. Longer than the slowest handler run, or a slow handler's
    /// message is processed twice at once; well below the broker's
    /// `consumer_timeout`.
    pub ack_wait: Duration,
    /// The retry ladder for `nack(delivery, delay)` with a non-zero delay
    /// (see [`RabbitOptions::retry_delay_for`]): one queue per step, whose
    /// message TTL dead-letters the copy back to its group after that long.
    /// Ascending, 1 ms – 49 days each (a 32-bit millisecond TTL), at most
    /// 32 steps. The default covers the dispatcher's default backoff (1 s
    /// doubling, capped at 300 s) exactly: 100 ms, 250 ms, 500 ms, 1 s, 2 s,
    /// 4 s, 8 s, 16 s, 32 s, 64 s, 128 s, 300 s, 10 min, 30 min, 1 h.
    pub retry_delays: Vec<Duration>,
    /// How long the archive stream keeps events (7 days); see the
    /// [crate docs](crate#consumer-groups-and-the-archive). A consumer group
    /// created later sees the events of this window. RabbitMQ drops whole
    /// stream segments (500 MB by default), so events can outlive it.
    pub archive_max_age: Duration,
    /// Binding keys per consumer group, topic patterns over the event type
    /// (`order.*`, `payment.succeeded`, `#`). A group not listed here gets
    /// `#`: every event. Applied when the group's queue is created (and to
    /// its backfill from the archive); an existing queue keeps its bindings.
    pub routes: BTreeMap<String, Vec<String>>,
    /// Deliveries after which the broker dead-letters a message of a group
    /// queue to the dead-letter queue (`x-delivery-limit`); `None` (the
    /// default) leaves the broker's default (unlimited on RabbitMQ 3.x, 20 on
    /// 4.x). Only the broker's own requeues count (a connection or
    /// channel lost with the message unacknowledged): the bus gives
    /// messages back (`nack`, the ack wait) as fresh copies. So this guards
    /// against a message that keeps taking its consumer down; keep it
    /// `None` or well above the dispatcher's `max_attempts`, which parks
    /// failing events in the core's dead-letter store itself.
    pub delivery_limit: Option<u32>,
    /// Timeout of each broker request (declare, get, publish confirm, 5 s)
    /// and of one connection attempt.
    pub request_timeout: Duration,
    /// How long `publish`, `next` and the other calls keep trying to
    /// reconnect and redo their work after losing the broker before they
    /// fail with [`Error::Unavailable`] (15 s).
    pub reconnect_timeout: Duration,
    /// How long creating a consumer group may take (60 s): declaring its
    /// queues and copying the archive into it, or waiting for another
    /// process doing so.
    pub group_setup_timeout: Duration,
    /// The connection name the broker shows (`rabbitmqctl list_connections
    /// client_properties`, the management UI): `bazaar`.
    pub connection_name: String,
}

impl Default for RabbitOptions {
    fn default() -> Self {
        let ms = Duration::from_millis;
        let s = Duration::from_secs;
        Self {
            exchange: "bazaar.events".into(),
            queue_prefix: "bazaar".into(),
            prefetch: 32,
            ack_wait: s(30),
            retry_delays: vec![
                ms(100),
                ms(250),
                ms(500),
                s(1),
                s(2),
                s(4),
                s(8),
                s(16),
                s(32),
                s(64),
                s(128),
                s(300),
                s(600),
                s(1_800),
                s(3_600),
            ],
            archive_max_age: s(7 * 24 * 3_600),
            routes: BTreeMap::new(),
            delivery_limit: None,
            request_timeout: s(5),
            reconnect_timeout: s(15),
            group_setup_timeout: s(60),
            connection_name: "bazaar".into(),
        }
    }
}

/// The largest retry delay: RabbitMQ's message TTL is 32-bit milliseconds.
const MAX_RETRY_DELAY: Duration = Duration::from_millis(u32::MAX as u64);
/// The most retry steps (each is a queue).
const MAX_RETRY_STEPS: usize = 32;

impl RabbitOptions {
    /// Options with an exchange and queue prefix no other caller uses
    /// (`bztest.<uuid>`), a one-hour archive and a short reconnect timeout:
    /// for tests, which each get a topology of their own and delete it with
    /// [`RabbitBus::delete_topology`](crate::RabbitBus::delete_topology).
    pub fn fresh() -> Self {
        let id = uuid::Uuid::now_v7().simple().to_string();
        Self {
            exchange: format!("bztest.{id}"),
            queue_prefix: format!("bztest.{id}"),
            archive_max_age: Duration::from_secs(3_600),
            connection_name: format!("bazaar-test-{id}"),
            ..Self::default()
        }
    }

    /// The retry step a nack with `delay` waits out: the smallest ladder
    /// step at or above `delay`, or the largest step for longer delays
    /// (never shorter than asked, except past the ladder's end).
    pub fn retry_delay_for(&self, delay: Duration) -> Duration {
        self.retry_delays
            .iter()
            .copied()
            .find(|step| *step >= delay)
            .or_else(|| self.retry_delays.last().copied())
            .unwrap_or(delay)
    }

    /// The binding keys of `group`: its [`RabbitOptions::routes`] entry, or
    /// `#` (every event).
    pub fn binding_keys(&self, group: &str) -> Vec<String> {
        self.routes.get(group).cloned().unwrap_or_else(|| vec!["#".into()])
    }

    /// Checks every field.
    ///
    /// # Errors
    /// [`Error::Validation`] naming the first bad field.
    pub fn validate(&self) -> Result<()> {
        names::check_name("exchange", &self.exchange)?;
        names::check_name("queue_prefix", &self.queue_prefix)?;
        if self.prefetch == 0 {
            return Err(Error::invalid("prefetch", "the prefetch must be at least 1"));
        }
        if self.ack_wait < Duration::from_millis(1) {
            return Err(Error::invalid("ack_wait", "the ack wait must be at least 1 ms"));
        }
        if self.retry_delays.is_empty() || self.retry_delays.len() > MAX_RETRY_STEPS {
            return Err(Error::invalid("retry_delays", format!("1 to {MAX_RETRY_STEPS} retry steps")));
        }
        for pair in self.retry_delays.windows(2) {
            if pair[0] >= pair[1] {
                return Err(Error::invalid("retry_delays", "the retry steps must be strictly ascending"));
            }
        }
        let (first, last) = (self.retry_delays[0], self.retry_delays[self.retry_delays.len() - 1]);
        if first < Duration::from_millis(1) || last > MAX_RETRY_DELAY {
            return Err(Error::invalid("retry_delays", "each retry step must be between 1 ms and 49 days"));
        }
        if self.retry_delays.iter().any(|d| d.subsec_nanos() % 1_000_000 != 0) {
            return Err(Error::invalid("retry_delays", "retry steps are whole milliseconds"));
        }
        if self.archive_max_age < Duration::from_secs(1) {
            return Err(Error::invalid("archive_max_age", "the archive must keep events at least 1 s"));
        }
        for (group, keys) in &self.routes {
            names::check_group(group)?;
            if keys.is_empty() {
                return Err(Error::invalid("routes", format!("group {group:?} has no binding keys")));
            }
            for key in keys {
                names::check_binding_key(key)?;
            }
        }
        if self.delivery_limit == Some(0) {
            return Err(Error::invalid("delivery_limit", "the delivery limit must be at least 1, or None"));
        }
        for (field, value) in [
            ("request_timeout", self.request_timeout),
            ("reconnect_timeout", self.reconnect_timeout),
            ("group_setup_timeout", self.group_setup_timeout),
        ] {
            if value < Duration::from_millis(1) {
                return Err(Error::invalid(field, "the timeout must be at least 1 ms"));
            }
        }
        if self.connection_name.is_empty() || self.connection_name.len() > 200 {
            return Err(Error::invalid("connection_name", "1 to 200 bytes"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid_and_cover_the_dispatchers_backoff_exactly() {
        let options = RabbitOptions::default();
        options.validate().unwrap();
        for secs in [1, 2, 4, 8, 16, 32, 64, 128, 300] {
            let delay = Duration::from_secs(secs);
            assert_eq!(options.retry_delay_for(delay), delay, "{secs} s is a step of its own");
        }
    }

    #[test]
    fn delays_round_up_to_the_next_step_and_cap_at_the_last() {
        let options = RabbitOptions::default();
        assert_eq!(options.retry_delay_for(Duration::from_millis(1)), Duration::from_millis(100));
        assert_eq!(options.retry_delay_for(Duration::from_millis(101)), Duration::from_millis(250));
        assert_eq!(options.retry_delay_for(Duration::from_secs(3)), Duration::from_secs(4));
        assert_eq!(options.retry_delay_for(Duration::from_secs(86_400)), Duration::from_secs(3_600), "capped");
        // Never shorter than asked below the cap.
        for ms in (1..3_600_000).step_by(997) {
            let d = Duration::from_millis(ms);
            assert!(options.retry_delay_for(d) >= d, "{ms} ms");
        }
    }

    #[test]
    fn bad_fields_are_named() {
        let field = |options: RabbitOptions| match options.validate().unwrap_err() {
            Error::Validation(fields) => fields[0].field.clone(),
            other => panic!("not a validation error: {other}"),
        };
        let base = RabbitOptions::default;
        assert_eq!(field(RabbitOptions { exchange: String::new(), ..base() }), "exchange");
        assert_eq!(field(RabbitOptions { exchange: "amq.topic".into(), ..base() }), "exchange");
        assert_eq!(field(RabbitOptions { queue_prefix: "a b".into(), ..base() }), "queue_prefix");
        assert_eq!(field(RabbitOptions { prefetch: 0, ..base() }), "prefetch");
        assert_eq!(field(RabbitOptions { ack_wait: Duration::ZERO, ..base() }), "ack_wait");
        assert_eq!(field(RabbitOptions { retry_delays: vec![], ..base() }), "retry_delays");
        let unsorted = vec![Duration::from_secs(2), Duration::from_secs(1)];
        assert_eq!(field(RabbitOptions { retry_delays: unsorted, ..base() }), "retry_delays");
        let fractional = vec![Duration::from_micros(1_500)];
        assert_eq!(field(RabbitOptions { retry_delays: fractional, ..base() }), "retry_delays");
        let routes = BTreeMap::from([("mailer".to_owned(), vec!["order..placed".to_owned()])]);
        assert_eq!(field(RabbitOptions { routes, ..base() }), "routes");
        assert_eq!(field(RabbitOptions { delivery_limit: Some(0), ..base() }), "delivery_limit");
        assert_eq!(field(RabbitOptions { request_timeout: Duration::ZERO, ..base() }), "request_timeout");
    }

    #[test]
    fn fresh_options_are_unique_and_valid() {
        let (a, b) = (RabbitOptions::fresh(), RabbitOptions::fresh());
        a.validate().unwrap();
        assert_ne!(a.exchange, b.exchange);
        assert_ne!(a.queue_prefix, b.queue_prefix);
        assert_eq!(a.binding_keys("any"), ["#"]);
    }
}
