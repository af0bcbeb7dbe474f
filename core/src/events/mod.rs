//! Domain events: the CloudEvents-shaped envelope, the closed set of event
//! types with their typed payloads, and the ports that move them (outbox,
//! publisher and subscriber, inbox, dead letters) plus the handlers that
//! react to them.
//!
//! # Delivery model
//! Delivery is at-least-once, end to end:
//!
//! 1. A state change and its events are committed in one unit of work (see
//!    the crate docs): the events land in the outbox.
//! 2. A [`Relay`] claims unpublished outbox entries under a lease
//!    ([`OutboxStore::claim`]), publishes them ([`EventPublisher`]) and only
//!    then marks them published. A crash between the two republishes, never
//!    loses.
//! 3. The bus keeps one durable cursor per *consumer group* (Redis Streams
//!    `XGROUP`, a NATS JetStream durable pull consumer, the in-process bus).
//!    [`EventSubscriber::next`] hands a message to one member of the group;
//!    it stays pending until [`EventSubscriber::ack`]. A message that is
//!    neither acked nor nacked within the adapter's ack wait is redelivered
//!    with `attempt + 1`; [`EventSubscriber::nack`] asks for a redelivery
//!    after a delay.
//! 4. A [`Dispatcher`] runs every interested [`EventHandler`] for a delivery,
//!    skipping handlers the [`Inbox`] says already processed that event id,
//!    retries failures with exponential backoff (nack with delay) and, after
//!    `max_attempts`, parks the event in the [`DeadLetterStore`] and acks it.
//!    Dead letters can be listed and replayed ([`Dispatcher::replay`]).
//!    [`Dispatcher::process_batch`] does the same for up to N deliveries of
//!    one bus request ([`EventSubscriber::next_batch`]), with one inbox read,
//!    one inbox write and one ack ([`EventSubscriber::ack_all`]) for all.
//!
//! Handlers must themselves be idempotent: the inbox mark is written after
//! the handler succeeds, so a crash in between runs the handler again. The
//! handlers of this crate (in `workflows`) rely on unique keys and
//! compare-and-set status changes in the stores for that.
//!
//! # Example
//! ```
//! # futures::executor::block_on(async {
//! use std::sync::Arc;
//! use bazaar_core::clock::{Clock, ManualClock};
//! use bazaar_core::events::*;
//! use bazaar_core::ids::UserId;
//! use bazaar_memory::{InProcessBus, MemoryDeadLetters, MemoryInbox, MemoryOutbox};
//!
//! let clock = Arc::new(ManualClock::at_epoch_secs(1_700_000_000));
//! let outbox = MemoryOutbox::new();
//! let bus = Arc::new(InProcessBus::new(clock.clone()));
//! let relay = Relay::new(Arc::new(outbox.clone()), bus.clone(), clock.clone());
//! let dispatcher = Dispatcher::new(
//!     bus.clone(),
//!     Arc::new(MemoryInbox::new()),
//!     Arc::new(MemoryDeadLetters::new()),
//!     vec![],
//!     clock.clone(),
//!     DispatcherConfig::default(),
//! );
//!
//! outbox.append(&[Event::new(&UserRegistered { user_id: UserId::new(), role: "customer".into() }, clock.now())]);
//! assert_eq!(relay.relay_once(100).await.unwrap(), 1);
//! assert_eq!(dispatcher.process_one("worker").await.unwrap(), Outcome::Processed);
//! assert_eq!(dispatcher.process_one("worker").await.unwrap(), Outcome::Empty);
//! # });
//! ```

mod bus;
mod dead_letter;
mod dispatcher;
mod envelope;
mod handler;

mod inbox;
mod outbox;
mod payloads;
mod relay;
mod trace;

pub use bus::{Delivery, EventPublisher, EventSubscriber, Receipt};
pub use dead_letter::{DeadLetter, DeadLetterId, DeadLetterStore};
pub use dispatcher::{Backoff, Dispatcher, DispatcherConfig, Outcome};
pub use envelope::{Event, EventPayload, EventType};
pub use handler::EventHandler;
pub use inbox::Inbox;
pub use outbox::{OutboxEntry, OutboxStore};
pub use payloads::*;
pub use relay::{Relay, pump};
pub use trace::{Propagator, TraceContext, continue_trace, install_propagator, outbound_context, propagator};

#[cfg(any(test, feature = "mocks"))]
pub use bus::{MockEventPublisher, MockEventSubscriber};
#[cfg(any(test, feature = "mocks"))]
pub use dead_letter::MockDeadLetterStore;
#[cfg(any(test, feature = "mocks"))]
pub use handler::MockEventHandler;
#[cfg(any(test, feature = "mocks"))]
pub use inbox::MockInbox;
#[cfg(any(test, feature = "mocks"))]
pub use outbox::MockOutboxStore;
