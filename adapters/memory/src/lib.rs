//! In-memory adapters for every bazaar-core port, plus an in-process event
//! bus.
//!
//! They are thread-safe and honest about the core's uniqueness and
//! concurrency rules (they pass the same contract suites as the SQL
//! adapters), so they serve both as the test double of choice and as a real
//! backend for a single process.
//!
//! # Example
//! Every port of the core in memory, as one [`Ports`](bazaar_core::marketplace::Ports)
//! value for the marketplace builder:
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//!
//! use bazaar_auth::{Argon2Passwords, JwtTokens};
//! use bazaar_core::auth::{Actor, Role};
//! use bazaar_core::clock::SystemClock;
//! use bazaar_core::ids::UserId;
//! use bazaar_core::marketplace::Marketplace;
//! use bazaar_memory::MemoryBackend;
//!
//! let market = Marketplace::builder(MemoryBackend::new(Arc::new(SystemClock)).ports())
//!     .passwords(Arc::new(Argon2Passwords::default()))
//!     .tokens(Arc::new(JwtTokens::new([7; 32])))
//!     .build()
//!     .unwrap();
//! assert!(market.readiness().await.iter().all(|check| check.outcome.is_ok()));
//! let buyer = Actor::new(UserId::new(), Role::Customer);
//! assert_eq!(market.orders.list_mine(&buyer, Default::default()).await.unwrap().total, 0);
//! # });
//! ```

mod outbox;

pub use outbox::{MemoryOutbox, OutboxRow};
mod licensing;
pub use licensing::MemoryLicenses;
mod assets;
pub use assets::{MemoryAssets, MemoryBlobStore};
mod catalog;
pub use catalog::{MemoryCatalog, MemoryProducts, MemoryReviews};
mod users;
pub use users::MemoryUsers;
mod sessions;
pub use sessions::MemoryRefreshTokens;
mod backend;
mod bus;
mod events;
mod notifications;
pub use backend::MemoryBackend;
pub use bus::InProcessBus;
pub use events::{MemoryDeadLetters, MemoryInbox};
pub use notifications::{MemoryNotifications, RecordingSender};
mod webhooks;
pub use webhooks::MemoryWebhooks;
mod idempotency;
mod orders;
mod payments;
pub use idempotency::MemoryIdempotency;
pub use orders::MemoryOrders;
pub use payments::MemoryPayments;
