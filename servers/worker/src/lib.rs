//! Bazaar event worker: the outbox relay and the event consumers of a
//! [`Marketplace`](bazaar_app::Marketplace), their metrics and ops routes,
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
//! The bus is whatever the marketplace's stores carry
//! ([`bazaar_app::Bus::open`] picks NATS, Redis Streams or the in-process
//! bus from the configuration). With a broker, `bazaar http` and
//! `bazaar worker` run as separate processes and any number of workers may
//! run at once: outbox leases keep relays from publishing one entry
//! concurrently, consumers of one group compete for its messages, and the
//! inbox turns at-least-once delivery into handling once per handler.
//!
//! # Example
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use bazaar_app::{Keys, Marketplace, MarketplaceOptions, Stores};
//! use bazaar_core::clock::{Clock, SystemClock};
//! use bazaar_core::entropy::OsEntropy;
//! use bazaar_core::events::Outcome;
//! use bazaar_worker::{Worker, WorkerConfig};
//!
//! let clock: Arc<dyn Clock> = Arc::new(SystemClock);
//! let market = Marketplace::new(Stores::memory(clock.clone()), &Keys::generate(&OsEntropy), MarketplaceOptions::new(clock));
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
mod lag;
pub mod metrics;
mod worker;

pub use crate::config::WorkerConfig;
pub use crate::dlq::{DeadLetterPage, MAX_LIST_LIMIT, Replay, ReplayResult, dlq_list, dlq_replay, dlq_replay_all};
pub use crate::http::{PROBE_TIMEOUT, worker_router};
pub use crate::metrics::prometheus;
pub use crate::worker::Worker;
