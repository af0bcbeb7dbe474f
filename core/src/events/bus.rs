//! The bus ports: publishing events and consuming them through durable
//! consumer groups with explicit acknowledgement.
//!
//! The shape follows what Redis Streams (`XREADGROUP` / `XACK` /
//! `XAUTOCLAIM`) and NATS JetStream durable pull consumers (`ack`, `nak`
//! with delay, `ack_wait`) both offer, so each can implement it directly:
//!
//! | port | NATS JetStream (durable pull consumer) | Redis Streams (consumer group) |
//! |---|---|---|
//! | consumer group | durable name, `DeliverPolicy::All` | `XGROUP CREATE … 0 MKSTREAM` |
//! | `next(wait)` | `fetch(1, expires = wait)` | `XAUTOCLAIM min-idle = ack wait`, else `XREADGROUP … > BLOCK wait` |
//! | `attempt` | `info.delivered` | delivery count from `XPENDING` |
//! | `ack` | `ack()` | `XACK` |
//! | `nack(delay)` | `nak_with_delay(delay)` | `XCLAIM … IDLE (ack wait − delay)` so the reclaim picks it up after `delay` (a delay past the ack wait needs a due-time sorted set) |
//! | receipt | the message's reply subject | the stream entry id + delivery count |

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

use super::Event;
use crate::error::Result;

/// Publishes events to the bus; the relay's side.
///
/// # Example
/// ```
/// # futures::executor::block_on(async {
/// use std::sync::Arc;
/// use std::time::Duration;
/// use bazaar_core::clock::{Clock, ManualClock};
/// use bazaar_core::events::{Event, EventPublisher, EventSubscriber, UserRegistered};
/// use bazaar_core::ids::UserId;
/// use bazaar_memory::InProcessBus;
///
/// let clock = Arc::new(ManualClock::at_epoch_secs(0));
/// let bus = InProcessBus::new(clock.clone());
/// let event = Event::new(&UserRegistered { user_id: UserId::new(), role: "vendor".into() }, clock.now());
/// bus.publish(&[event.clone()]).await.unwrap();
/// let delivery = bus.next("mailer", Duration::ZERO).await.unwrap().unwrap();
/// assert_eq!((delivery.event.id, delivery.attempt), (event.id, 1));
/// bus.ack(&delivery).await.unwrap();
/// # });
/// ```
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait EventPublisher: Send + Sync {
    /// Publishes `events`, in order.
    ///
    /// MUST return `Ok` only once every event is durably accepted by the bus
    /// (every consumer group will see it). On `Err` some of the events may
    /// have been published; the caller publishes them again and consumers
    /// deduplicate by event id. MUST map transport failures to
    /// [`crate::Error::Unavailable`].
    async fn publish(&self, events: &[Event]) -> Result<()>;
}

/// An adapter's opaque handle for one delivery (a Redis stream entry id, a
/// NATS reply subject, a sequence number), passed back on ack / nack.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Receipt(String);

impl Receipt {
    /// Wraps an adapter-specific handle.
    pub fn new(handle: impl Into<String>) -> Self {
        Self(handle.into())
    }

    /// The handle.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Receipt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One delivery of an event to a member of a consumer group.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// The event.
    pub event: Event,
    /// The consumer group it was delivered to.
    pub consumer: String,
    /// How many times this event has been delivered to this group,
    /// this delivery included (the first delivery is 1).
    pub attempt: u32,
    /// The adapter's handle, for [`EventSubscriber::ack`] / [`EventSubscriber::nack`].
    pub receipt: Receipt,
}

/// Consumes events through durable consumer groups; the worker's side.
///
/// A consumer group is named by `consumer` and created on first use; it
/// sees every event published to the bus, including those published before
/// it was created (JetStream `DeliverPolicy::All`, `XGROUP CREATE … 0`).
/// Several processes using the same group compete for its messages: each
/// message goes to one of them at a time.
///
/// # Example
/// ```
/// # futures::executor::block_on(async {
/// use std::sync::Arc;
/// use std::time::Duration;
/// use bazaar_core::clock::{Clock, ManualClock};
/// use bazaar_core::events::{Event, EventPublisher, EventSubscriber, UserRegistered};
/// use bazaar_core::ids::UserId;
/// use bazaar_memory::InProcessBus;
///
/// let clock = Arc::new(ManualClock::at_epoch_secs(0));
/// let bus = InProcessBus::new(clock.clone());
/// bus.publish(&[Event::new(&UserRegistered { user_id: UserId::new(), role: "vendor".into() }, clock.now())]).await.unwrap();
/// let first = bus.next("mailer", Duration::ZERO).await.unwrap().unwrap();
/// bus.nack(&first, Duration::from_secs(10)).await.unwrap();
/// assert!(bus.next("mailer", Duration::ZERO).await.unwrap().is_none());
/// clock.advance(chrono::Duration::seconds(10));
/// let again = bus.next("mailer", Duration::ZERO).await.unwrap().unwrap();
/// assert_eq!((again.event.id, again.attempt), (first.event.id, 2));
/// # });
/// ```
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait EventSubscriber: Send + Sync {
    /// The next message for group `consumer`, waiting up to `wait` for one
    /// (`Duration::ZERO`: don't wait).
    ///
    /// MUST prefer messages due for redelivery (nacked with an elapsed delay,
    /// or delivered and left unacknowledged longer than the adapter's ack
    /// wait) over new ones, and hand out new ones in publish order. MUST NOT
    /// hand a message to a second caller while it is pending with another
    /// (delivered, not acked, ack wait not elapsed). A message is never
    /// dropped before it is acked. Returns `Ok(None)` when nothing is due.
    async fn next(&self, consumer: &str, wait: Duration) -> Result<Option<Delivery>>;

    /// Acknowledges `delivery`: the group never sees that message again.
    ///
    /// MUST be idempotent (acking twice is `Ok`).
    async fn ack(&self, delivery: &Delivery) -> Result<()>;

    /// Gives `delivery` back for redelivery to the group no sooner than
    /// `delay` from now, with `attempt + 1`.
    ///
    /// MUST ignore a receipt that is no longer current (the message was
    /// acked, or redelivered since) so a slow consumer can't reschedule
    /// someone else's delivery.
    async fn nack(&self, delivery: &Delivery, delay: Duration) -> Result<()>;

    /// Up to `max` messages for group `consumer`, waiting up to `wait` for
    /// the first and not at all for the others: what one request to the
    /// broker brings. Every rule of [`Self::next`] holds for each message;
    /// empty when nothing is due.
    ///
    /// The default hands out one, through [`Self::next`]. Buses that pull
    /// several messages per request override it, so a consumer can settle
    /// a batch with one inbox read, one inbox write and one ack flush.
    async fn next_batch(&self, consumer: &str, max: usize, wait: Duration) -> Result<Vec<Delivery>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        Ok(self.next(consumer, wait).await?.into_iter().collect())
    }

    /// Opens group `consumer` as a *fan-out* group: one process's own view
    /// of the bus (each replica's search read model), which starts at the
    /// messages published from now on rather than at the bus's history —
    /// the process has just read the earlier state from the store.
    ///
    /// The group lives only as long as its process: it is gone after
    /// [`Self::leave`], and the broker also removes it once no request has
    /// been made for it for `idle`, so a process that dies leaves nothing
    /// behind for long. A process must therefore ask for messages (`next`
    /// with a wait is enough) more often than every `idle`. Opening a group
    /// that exists changes nothing; reading it with [`Self::next`] as usual.
    async fn open_fanout(&self, consumer: &str, idle: Duration) -> Result<()>;

    /// Removes group `consumer` with everything it still holds. Removing a
    /// group that does not exist is `Ok`.
    async fn leave(&self, consumer: &str) -> Result<()>;

    /// Acknowledges every delivery in `deliveries`, as [`Self::ack`] does
    /// each; buses may send them together. On `Err` some may be acked
    /// already; acking them again is harmless.
    async fn ack_all(&self, deliveries: &[Delivery]) -> Result<()> {
        for delivery in deliveries {
            self.ack(delivery).await?;
        }
        Ok(())
    }
}
