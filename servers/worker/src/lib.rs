//! Bazaar event worker: the outbox relay and the event consumers of a
//! [`Marketplace`](bazaar_core::marketplace::Marketplace), their metrics and ops routes,
//! and the dead-letter operations.
//!
//! - [`Worker`] runs the relay loop (outbox → bus) and N consumer loops
//!   (bus → the core's handlers, with the inbox for idempotency, retries
//!   with backoff and dead letters) until shutdown. Each consumer step
//!   takes up to [`WorkerConfig::batch`] deliveries from one bus request
//!   and settles them with one inbox read, one inbox write and one ack
//!   flush ([`Dispatcher::process_batch`](bazaar_core::events::Dispatcher::process_batch)).
//!   [`Worker::relay_once`]
//!   and [`Worker::process_one`] are the single steps, for tests.
//! - [`worker_router`] serves `/health/live`, `/health/ready` and
//!   `/metrics`; [`metrics`] names what is recorded.
//! - [`dlq_list`], [`dlq_replay`] and [`dlq_replay_all`] back
//!   `bazaar worker dlq list | replay <id|--all>`.
//!
//! The bus is whatever the marketplace's ports carry (the `bazaar` binary
//! picks NATS, Redis Streams or the in-process bus from the configuration). With a broker, `bazaar http` and
//! `bazaar worker` run as separate processes and any number of workers may
//! run at once: outbox leases keep relays from publishing one entry
//! concurrently, consumers of one group compete for its messages, and the
//! inbox turns at-least-once delivery into handling once per handler.
//!
//! # Example
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use bazaar_auth::{Argon2Passwords, JwtTokens};
//! use bazaar_core::clock::SystemClock;
//! use bazaar_core::events::Outcome;
//! use bazaar_core::marketplace::Marketplace;
//! use bazaar_memory::MemoryBackend;
//! use bazaar_worker::{Worker, WorkerConfig};
//!
//! let market = Marketplace::builder(MemoryBackend::new(Arc::new(SystemClock)).ports())
//!     .passwords(Arc::new(Argon2Passwords::fast_for_tests()))
//!     .tokens(Arc::new(JwtTokens::new([7; 32])))
//!     .build()
//!     .unwrap();
//! let worker = Worker::new(Arc::new(market), WorkerConfig::default());
//! assert_eq!(worker.relay_once().await.unwrap(), 0);
//! assert_eq!(worker.process_one().await.unwrap(), Outcome::Empty);
//!
//! // Run the loops until told to stop.
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let running = tokio::spawn({
//!     let worker = worker.clone();
//!     async move { worker.run(async { let _ = stopped.await; }).await }
//! });
//! stop.send(()).unwrap();
//! running.await.unwrap();
//! # });
//! ```

mod config;
mod dlq;
mod http;
pub mod metrics;
mod worker;

pub use crate::config::WorkerConfig;
pub use crate::dlq::{DeadLetterPage, MAX_LIST_LIMIT, Replay, ReplayResult, dlq_list, dlq_replay, dlq_replay_all};
pub use crate::http::{PROBE_TIMEOUT, worker_router};
pub use crate::metrics::prometheus;
pub use crate::worker::Worker;
