//! NATS JetStream event bus for Bazaar: [`JetStreamBus`] implements the
//! core's [`EventPublisher`](bazaar_core::events::EventPublisher) and
//! [`EventSubscriber`](bazaar_core::events::EventSubscriber) ports;
//! [`NatsDirectory`] implements the core's
//! [`ServiceDirectory`](bazaar_core::resilience::registry::ServiceDirectory)
//! on a JetStream KV bucket (see its module docs).
//!
//! # Design
//!
//! - **One stream** (`BAZAAR_EVENTS` by default) captures `bazaar.>` (the
//!   prefix is configurable). Each event is published on
//!   `<prefix>.<event type>`, e.g. `bazaar.payment.succeeded`, with the
//!   CloudEvents JSON envelope ([`Event::to_json`](bazaar_core::events::Event::to_json))
//!   as payload and header `Nats-Msg-Id` = the event id, so JetStream drops
//!   a republish of the same event within the duplicate window (2 min).
//!   `publish` pipelines the messages and returns `Ok` only once JetStream
//!   has acked every one; transport failures and timeouts are
//!   [`Error::Unavailable`](bazaar_core::Error::Unavailable).
//! - The stream uses **limits retention** (not work-queue or interest), so
//!   every consumer group sees every event, including groups created after
//!   the publish; it is bounded by `max_age` (7 days) and optionally
//!   `max_messages`, oldest first. A message older than `max_age` is gone
//!   even if a group never acked it: size it above any consumer outage.
//! - **A consumer group is a durable pull consumer** named after the group
//!   (names outside `A-Z a-z 0-9 _ -` or over 48 bytes are sanitised and
//!   suffixed with a stable hash), created on first use with
//!   `DeliverPolicy::All`, `AckPolicy::Explicit`, the configured `ack_wait`
//!   (30 s) and `max_deliver` (unlimited). Several processes using one group
//!   share the durable and compete for its messages.
//! - **`max_deliver` vs. the dispatcher.** The dispatcher counts attempts
//!   itself (`Delivery::attempt` = JetStream's delivery count), nacks with
//!   backoff, and after `DispatcherConfig::max_attempts` parks the event in
//!   the dead-letter store and acks it. JetStream's own limit must therefore
//!   never be reached first: when it is, JetStream silently stops
//!   redelivering and the event is neither handled nor dead-lettered. Keep
//!   `max_deliver` unlimited (the default) or well above `max_attempts`.
//!
//! | port | JetStream |
//! |---|---|
//! | `publish` | `send_publish` on `<prefix>.<type>` with `Nats-Msg-Id`, await every publish ack |
//! | `next(group, wait)` | pull `batch = 1, expires = wait`; `wait` < 10 ms: `no_wait` with a 10 ms expiry. With `pull_batch` > 1: a message held from the group's batch pull if any; else wait for the batch in flight, or start one (`no_wait`, up to `pull_batch`, no expiry); nothing from a batch begun during the call: the waiting pull of one (if `wait` ≥ 10 ms) |
//! | `next_batch(group, max, wait)` | the first as `next`; with `pull_batch` > 1 up to `max − 1` more from the held messages and the batch in flight (until it ends or its settle time), never another request |
//! | `attempt` | the delivery count from the ack subject (`info.delivered`) |
//! | receipt | the delivery's ack (reply) subject `$JS.ACK.<stream>.<durable>.<delivered>.<seq>…` |
//! | `ack` | publish `+ACK` to the receipt, flush |
//! | `ack_all` | publish `+ACK` to every receipt, flush once |
//! | `nack(delay)` | publish `-NAK {"delay": ns}` to the receipt (`-NAK` for zero), flush |
//!
//! # Receipts and stale nacks
//!
//! The receipt is the ack subject itself, so any process can ack any
//! delivery with nothing but a publish, and the bus keeps no state for ack.
//! The server, though, applies a `-NAK` to the *current* delivery of the
//! message whichever delivery's subject it came on (it only checks that the
//! message is still pending). So the bus records, per (group, stream
//! sequence), the latest delivery it handed out and whether it was nacked,
//! and ignores a nack whose delivery count is older or that repeats one.
//! That record is per process: a stale nack from *another* process whose
//! delivery timed out can still make JetStream redeliver the message
//! early. That costs a duplicate delivery, never a lost one; handlers are
//! idempotent through the inbox.
//!
//! # Timing
//!
//! `next(group, Duration::ZERO)` with single-message pulls is a no-wait
//! pull: the server answers at once when everything due is claimed by
//! other callers' pulls, and otherwise within 10 ms (the expiry every such
//! pull gets, because a 2.9+ server parks a no-wait pull without one when
//! competing pulls take the messages it counted on). With batched pulls,
//! see below.
//!
//! An unacked delivery comes back after `ack_wait`; a nack with delay after
//! the delay (JetStream schedules it, even beyond `ack_wait`). A message
//! delivered to a pull request the caller stopped waiting for (an expiry
//! racing a publish) is not lost: it comes back after `ack_wait`.
//!
//! # Batched pulls
//!
//! With [`JetStreamOptions::pull_batch`] above 1 (the app's workers use 8),
//! a group's callers in one process share no-wait pull requests of up to
//! that many messages instead of making one request per message. One batch
//! per group is in flight at a time; a task moves its messages into the
//! group's queue as they arrive, and every `next` on the group, the one
//! that started the batch included, takes from that queue (oldest first).
//!
//! The messages of a batch arrive one by one, and the server has sent them
//! all to this process's request: no other request can get them. So `next`
//! never reports nothing due while a batch of its group is in flight. It
//! waits, woken by each message that lands and by the batch's end, and
//! returns `None` only once a batch that started *after* the call began
//! ended without filling and every message it brought was taken. A filled
//! batch, or one already in flight when the call began, makes the call
//! start the next batch instead.
//!
//! A batch pull is a no-wait request without an expiry, which the server
//! answers at once: the messages it has, then the end of the batch (408),
//! or the end alone (404) when nothing is due. (With an expiry, a 2.9
//! server holds a request that finds nothing until the expiry instead of
//! answering 404, and now and then drops it then without the 408 that ends
//! it.) The wait for a batch is bounded all the same: until it ends, but at
//! most 100 ms after it was requested, also for a no-wait call and whatever
//! the caller's `wait`. The bound matters when the server parks the request
//! (the messages it counted on went to a competing pull; it is answered
//! with the next message published) or when a loaded process has not read
//! its answer yet: callers stop waiting for that batch and the next one is
//! pulled. A message that arrives later for it is still queued and handed
//! out by a later call. So a no-wait `next` is answered as fast as its
//! batch (one round trip), plus one more batch when it began while another
//! was in flight, plus up to 100 ms when it is stuck behind a parked
//! request.
//!
//! Held messages count as delivered from the moment they are pulled. A
//! process that dies or drops the bus holding some gives them back when
//! `ack_wait` runs out; one held past half of `ack_wait` is dropped from the
//! queue so JetStream redelivers it rather than racing that redelivery. A
//! batch whose request fails fails the calls that were waiting for its
//! answer with [`Error::Unavailable`](bazaar_core::Error::Unavailable);
//! messages it brought before failing are still handed out.
//!
//! # Acks and limits
//!
//! `ack` / `nack` publish to the ack subject and flush the connection to
//! the socket; the server does not confirm them (a confirmed "double ack"
//! waits for a reply that newer servers may skip for a repeated ack, which
//! would break idempotent acking). An ack lost in a
//! crash means one more delivery, which the inbox absorbs. Consumers use the
//! server's default `max_ack_pending` (1 000 unless the server is
//! configured otherwise): while that many messages of one group are
//! delivered but unacked (including those waiting out a nack delay),
//! JetStream hands out no more of that group's messages, so `next` comes
//! back empty or, if the server refuses the pull, with `Unavailable`.
//!
//! # Example
//! `no_run`: it needs a NATS server with JetStream at 127.0.0.1:4222.
//! ```no_run
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use std::time::Duration;
//!
//! use bazaar_core::clock::{Clock, SystemClock};
//! use bazaar_core::events::{Event, EventPublisher, EventSubscriber, UserRegistered};
//! use bazaar_core::ids::UserId;
//! use bazaar_nats::{JetStreamBus, JetStreamOptions};
//!
//! let options = JetStreamOptions { ack_wait: Duration::from_secs(60), ..JetStreamOptions::default() };
//! let bus = JetStreamBus::connect("nats://127.0.0.1:4222", options).await?;
//! let event = Event::new(&UserRegistered { user_id: UserId::new(), role: "customer".into() }, SystemClock.now());
//! bus.publish(&[event.clone()]).await?; // returns once JetStream has stored it
//! let delivery = bus.next("my-service", Duration::from_secs(1)).await?.expect("the event");
//! assert_eq!((delivery.event.id, delivery.attempt), (event.id, 1));
//! bus.ack(&delivery).await?;
//! # Ok::<(), bazaar_core::Error>(())
//! # }).unwrap();
//! ```

mod bus;
mod directory;
mod held;
mod names;
mod options;
mod receipt;

pub use bus::JetStreamBus;
pub use directory::{DirectoryOptions, NatsDirectory};
pub use options::{JetStreamOptions, MAX_PULL_BATCH};

/// The NATS client crate, for building the client passed to
/// [`JetStreamBus::connect_with`] (TLS, credentials, reconnect policy).
pub use async_nats;
