//! Redis adapters for `bazaar-core`: what must be shared across replicas.
//!
//! - [`RedisRateLimitStore`]: the core's GCRA [`RateLimitStore`] as one
//!   atomic Lua script on the server's clock.
//! - [`RedisIdempotencyStore`]: the core's [`IdempotencyStore`], each step
//!   one Lua script.
//! - [`CachedProducts`]: a read-through cache for product reads in front of
//!   any [`ProductRepository`].
//! - [`CachedLicenses`]: the license-validation cache, a read-through cache
//!   of the by-key lookup that `LicenseService::validate` makes, in front of
//!   any [`LicenseRepository`].
//! - [`RedisStreamBus`]: the core's event bus ports on one Redis stream with
//!   consumer groups (`XREADGROUP`, `XACK`, `XAUTOCLAIM` reclaim).
//!
//! Every store takes a [`ConnectionManager`] (see [`connect`]) and a key
//! prefix, so several applications (or test runs) can share one Redis
//! without seeing each other's keys. Driver errors become
//! [`Error::Unavailable`] (`"redis"`), or
//! [`StoreError::Unavailable`](bazaar_core::resilience::rate_limit::StoreError)
//! for the rate limiter, whose port has its own error type.
//!
//! The scripts touch keys built from the prefix inside the script (the
//! license cache's id index), so these adapters target a single Redis
//! (or a primary with replicas), not Redis Cluster.
//!
//! Of these, the `bazaar` binary wires only the bus (`REDIS_URL` without
//! `NATS_URL`); the others are for programs that embed the core.
//!
//! # Example
//! `no_run`: it needs a Redis at 127.0.0.1:6379.
//! ```no_run
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use bazaar_core::clock::{Clock, SystemClock};
//! use bazaar_core::events::{Event, EventPublisher, EventSubscriber, UserRegistered};
//! use bazaar_core::ids::UserId;
//! use bazaar_redis::{RedisStreamBus, RedisStreamOptions};
//!
//! let conn = bazaar_redis::connect("redis://127.0.0.1:6379").await?;
//! let bus = RedisStreamBus::new(conn, RedisStreamOptions::new("example:"))?;
//! let event = Event::new(&UserRegistered { user_id: UserId::new(), role: "customer".into() }, SystemClock.now());
//! bus.publish(&[event.clone()]).await?;
//! let delivery = bus.next("my-service", std::time::Duration::from_secs(1)).await?.expect("the event");
//! assert_eq!(delivery.event.id, event.id);
//! bus.ack(&delivery).await?;
//! # Ok::<(), bazaar_core::Error>(())
//! # }).unwrap();
//! ```
//!
//! [`RateLimitStore`]: bazaar_core::resilience::rate_limit::RateLimitStore
//! [`IdempotencyStore`]: bazaar_core::orders::IdempotencyStore
//! [`ProductRepository`]: bazaar_core::catalog::ProductRepository
//! [`LicenseRepository`]: bazaar_core::licensing::LicenseRepository

mod bus;
mod cache;
mod directory;
mod exec;
mod idempotency;
mod licenses;
mod products;
mod rate_limit;

pub use bus::{RedisStreamBus, RedisStreamOptions};
pub use cache::CacheConfig;
pub use directory::RedisDirectory;
pub use idempotency::RedisIdempotencyStore;
pub use licenses::CachedLicenses;
pub use products::CachedProducts;
pub use rate_limit::{RedisRateLimitStore, TracedDecision};
pub use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use bazaar_core::Error;

/// Opens a [`ConnectionManager`] to `url` (`redis://host:port/db`).
///
/// The manager multiplexes every caller over one connection and reconnects
/// on its own, so one manager is meant to be cloned into every store.
///
/// # Errors
/// [`Error::Unavailable`] when the URL is malformed or the first connection
/// cannot be made.
pub async fn connect(url: &str) -> Result<ConnectionManager, Error> {
    connect_with(url, ConnectionManagerConfig::new()).await
}

/// [`connect`] with explicit reconnection and timeout settings (the
/// driver's defaults retry a lost connection 6 times with exponential
/// backoff from 100 ms).
///
/// # Errors
/// [`Error::Unavailable`] when the URL is malformed or the first connection
/// cannot be made.
pub async fn connect_with(url: &str, config: ConnectionManagerConfig) -> Result<ConnectionManager, Error> {
    let client = redis::Client::open(url).map_err(unavailable)?;
    ConnectionManager::new_with_config(client, config).await.map_err(unavailable)
}

/// The one mapping of driver errors to core errors.
pub(crate) fn unavailable(e: redis::RedisError) -> Error {
    Error::unavailable("redis", e)
}
