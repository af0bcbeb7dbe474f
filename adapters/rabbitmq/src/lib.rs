//! RabbitMQ event bus for Bazaar: [`RabbitBus`] implements the core's
//! [`EventPublisher`](bazaar_core::events::EventPublisher) and
//! [`EventSubscriber`](bazaar_core::events::EventSubscriber) ports over AMQP
//! 0-9-1 (lapin, rustls), with the same contract as the NATS JetStream and
//! Redis Streams buses.
//!
//! # Topology
//!
//! Declared idempotently at every (re)connection, all durable; names from
//! [`RabbitOptions::exchange`] (`bazaar.events`) and
//! [`RabbitOptions::queue_prefix`] (`bazaar`):
//!
//! | object | kind | role |
//! |---|---|---|
//! | `bazaar.events` | topic exchange | events, routing key = event type (`payment.succeeded`) |
//! | `bazaar.archive` | stream, bound `#` | every event, kept `archive_max_age` (7 days): the history new groups start from |
//! | `bazaar.group.<group>` | quorum queue, bound with the group's keys (`#`) | a consumer group's work queue |
//! | `bazaar.group.<group>.redelivery` | quorum queue | nacked messages coming back from a retry queue; read first |
//! | `bazaar.events.retry` | headers exchange | routes a retry copy to the queue of its delay step |
//! | `bazaar.retry.<ms>ms` | quorum queue, message TTL | one per retry step; dead-letters each copy to its redelivery queue when the TTL ends |
//! | `bazaar.events.dead` → `bazaar.dead` | fanout exchange → quorum queue | what the broker gives up on ([`RabbitBus::list_dead`], [`RabbitBus::replay_dead`]) |
//!
//! # Consumer groups and the archive
//!
//! A consumer group is the `consumer` argument of `next`; its queues are
//! created on first use. The port promises that a group sees every event,
//! also those published before it existed, but a RabbitMQ queue only gets
//! what is published after it is bound. So every event also goes to the
//! archive stream, and a new group's queue is filled from it: bind the
//! queue, mark the archive's end with a marker message, copy what the
//! group's bindings match up to the marker, then declare the redelivery
//! queue, which marks the group as set up. An exclusive "creating" queue
//! keeps two processes from doing it at once; an interrupted setup is
//! redone by the next user (see `groups.rs`). Events published *while* a
//! group is being created may reach it twice; consumers deduplicate through
//! the core's inbox. Groups created with the topology (a worker started
//! before the first publish) copy nothing.
//!
//! # Fan-out groups
//!
//! A group opened with `open_fanout` (one process's own view, such as a
//! replica's search read model) gets its two queues with `x-expires` set to
//! its idle limit and copies nothing from the archive: it starts with what
//! is published from then on, and the broker deletes its queues once
//! nobody has read them for that long (a process that died). `leave`
//! deletes them at once.
//!
//! # Consuming
//!
//! | port | AMQP |
//! |---|---|
//! | `publish` | `basic.publish` to the exchange (mandatory, persistent, `message_id` = event id, `type` = event type) on a confirm channel; `Ok` once the broker confirmed every message |
//! | `next(group, wait)` | a message this process holds, else `basic.get` on the redelivery queue then the work queue; with none and `wait` left, a consumer on each (prefetch = [`RabbitOptions::prefetch`]) until the first arrives, then cancelled; the rest they brought is held for the next calls |
//! | `next_batch(group, max, wait)` | held messages, then one `basic.get`; when it reports more ready, a burst consumer (prefetch as above) collects up to `max` (waiting 50 ms for the first, 20 ms for each next) and is cancelled; with nothing, waits as `next` |
//! | `attempt` | `x-bazaar-attempts` (deliveries of earlier copies) + the quorum queue's `x-delivery-count` (requeues by the broker, after a lost connection) + 1 |
//! | receipt | `amqp:<bus>:<connection>:<channel>:<delivery tag>`, valid in the process that received it |
//! | `ack` / `ack_all` | `basic.ack` of each delivery still pending in this bus |
//! | `nack(0)` | a copy with the attempt count to the group's redelivery queue, confirmed, then `basic.ack` |
//! | `nack(delay)` | the same copy through the retry queue of `delay` rounded up to the ladder |
//! | ack wait | deliveries unsettled for [`RabbitOptions::ack_wait`] are given back by the bus as `nack(0)` does (RabbitMQ has no such timer) |
//!
//! `next(group, Duration::ZERO)` answers from the broker's own state (a
//! `basic.get` that finds nothing means nothing is ready), so competing
//! callers never see "nothing due" while a message is waiting.
//!
//! **Receipts are per process.** An AMQP delivery belongs to the channel it
//! came on, so only the bus that handed it out can settle it; a receipt of
//! another bus is [`Error::Validation`](bazaar_core::Error::Validation),
//! one of this bus that is no longer pending (acked, nacked, expired, or
//! lost with its connection) is ignored, which is what makes acks
//! idempotent and stale nacks harmless.
//!
//! **Retry delays are a ladder**, not exact: a nack's delay is rounded up
//! to the next step of [`RabbitOptions::retry_delays`] (100 ms … 1 h; the
//! dispatcher's default backoff, 1 s doubling up to 300 s, falls on steps
//! exactly) and delays past the last step wait the last step. A fixed
//! ladder keeps the number of queues small and known at start (a TTL per
//! message would stall behind a longer one at the head of a shared queue;
//! a queue per distinct delay would grow without bound with jittered
//! backoffs). Redelivered copies go to the group's redelivery queue, read
//! before its work queue, so a retry does not wait behind a backlog.
//!
//! # Failures
//!
//! Each broker request has [`RabbitOptions::request_timeout`]. When the
//! connection is lost, `publish`, `next`, `next_batch`, `nack` and the
//! dead-letter calls reconnect with backoff (and declare the topology
//! again) for up to [`RabbitOptions::reconnect_timeout`] and redo their
//! work; past that they fail with
//! [`Error::Unavailable`](bazaar_core::Error::Unavailable). A publish whose
//! confirms were lost with the connection is published again, so an event
//! may be stored twice; deliveries that were pending on the lost
//! connection are requeued by the broker and come back with their attempt
//! counted, and acking them then does nothing.
//!
//! The broker dead-letters to `bazaar.dead` what no consumer can use: a
//! message on the exchange that is not an event envelope is rejected
//! there by the first group that reads it, and with
//! [`RabbitOptions::delivery_limit`] set, a message redelivered that often.
//! Handlers that keep failing are the dispatcher's business: it parks them
//! in the core's `DeadLetterStore` after `max_attempts`.
//!
//! # Example
//! `no_run`: it needs a RabbitMQ broker at 127.0.0.1:5672.
//! ```no_run
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use std::time::Duration;
//!
//! use bazaar_core::clock::{Clock, SystemClock};
//! use bazaar_core::events::{Event, EventPublisher, EventSubscriber, UserRegistered};
//! use bazaar_core::ids::UserId;
//! use bazaar_rabbitmq::{RabbitBus, RabbitOptions};
//!
//! let options = RabbitOptions { prefetch: 32, ack_wait: Duration::from_secs(60), ..RabbitOptions::default() };
//! let bus = RabbitBus::connect("amqp://guest:guest@127.0.0.1:5672/%2f", options).await?;
//! let event = Event::new(&UserRegistered { user_id: UserId::new(), role: "customer".into() }, SystemClock.now());
//! bus.publish(&[event.clone()]).await?; // returns once the broker confirmed it
//! // A group created after the publish still gets the event (from the archive).
//! let batch = bus.next_batch("mailer", 32, Duration::from_secs(1)).await?;
//! assert!(batch.iter().any(|delivery| delivery.event.id == event.id));
//! for delivery in &batch {
//!     bus.ack(delivery).await?;
//! }
//! // What the broker gave up on, and sending all of it back to its groups.
//! for dead in bus.list_dead(10).await? {
//!     println!("{} died in {:?}: {:?}", dead.id, dead.queue, dead.reason);
//! }
//! bus.replay_dead(None).await?;
//! # Ok::<(), bazaar_core::Error>(())
//! # }).unwrap();
//! ```

mod bus;
mod dead;
mod groups;
mod link;
mod message;
mod names;
mod options;
mod receipt;
mod topology;

pub use bus::RabbitBus;
pub use dead::DeadMessage;
pub use options::RabbitOptions;

/// The AMQP client crate.
pub use lapin;
