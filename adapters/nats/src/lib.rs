//! NATS JetStream event bus for Bazaar: [`JetStreamBus`] implements the
//! core's [`EventPublisher`](bazaar_core::events::EventPublisher) and
//! [`EventSubscriber`](bazaar_core::events::EventSubscriber) ports.
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
//! | `next(group, wait)` | pull `batch = 1, expires = wait`; `wait` < 10 ms: `no_wait` with a 10 ms expiry |
//! | `attempt` | the delivery count from the ack subject (`info.delivered`) |
//! | receipt | the delivery's ack (reply) subject `$JS.ACK.<stream>.<durable>.<delivered>.<seq>…` |
//! | `ack` | publish `+ACK` to the receipt, flush |
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
//! `next(group, Duration::ZERO)` is a no-wait pull: the server answers at
//! once when nothing is due or everything due is claimed by other callers'
//! pulls, and otherwise within 10 ms (the expiry every no-wait pull gets,
//! because a 2.9+ server parks a no-wait pull without one when competing
//! pulls take the messages it counted on).
//!
//! An unacked delivery comes back after `ack_wait`; a nack with delay after
//! the delay (JetStream schedules it, even beyond `ack_wait`). A message
//! delivered to a pull request the caller stopped waiting for (an expiry
//! racing a publish) is not lost: it comes back after `ack_wait`.
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
//! ```no_run
//! # async fn run() -> bazaar_core::Result<()> {
//! use std::time::Duration;
//! use bazaar_nats::{JetStreamBus, JetStreamOptions};
//!
//! let options = JetStreamOptions { ack_wait: Duration::from_secs(60), ..JetStreamOptions::default() };
//! let bus = JetStreamBus::connect("nats://127.0.0.1:4222", options).await?;
//! bus.ping().await?;
//! # Ok(())
//! # }
//! ```

mod bus;
mod names;
mod options;
mod receipt;

pub use bus::JetStreamBus;
pub use options::JetStreamOptions;

/// The NATS client crate, for building the client passed to
/// [`JetStreamBus::connect_with`] (TLS, credentials, reconnect policy).
pub use async_nats;
