//! In-memory adapters for every bazaar-core port, plus an in-process event
//! bus.
//!
//! They are thread-safe and honest about the core's uniqueness and
//! concurrency rules (they pass the same contract suites as the SQL
//! adapters), so they serve both as the test double of choice and as a real
//! backend for a single process.

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
mod idempotency;
mod orders;
mod payments;
pub use idempotency::MemoryIdempotency;
pub use orders::MemoryOrders;
pub use payments::MemoryPayments;
