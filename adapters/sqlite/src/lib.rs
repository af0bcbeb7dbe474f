//! SQLite adapters for every persistence port of `bazaar-core`: the embedded
//! default store (one file, zero set-up).
//!
//! [`SqliteStore`] owns the connection pool; each port is a cheap handle on
//! it ([`SqliteStore::users`], [`SqliteStore::products`], …), so the ports of
//! one store share one database and one outbox.
//!
//! # Units of work
//! Every mutating port method runs in one write transaction that commits the
//! state change *and* the events passed with it (rows of the `outbox` table),
//! or neither. Write transactions start with `BEGIN IMMEDIATE`: SQLite has a
//! single writer, and taking the write lock up front makes concurrent writers
//! queue (up to the busy timeout) instead of failing half-way with
//! `SQLITE_BUSY` on a lock upgrade. Read-check-write rules (license
//! activation limits, compare-and-set on statuses and versions, idempotency
//! keys) are therefore atomic: nothing else writes between the read and the
//! write.
//!
//! # Storage shape
//! See `migrations/0001_initial.sql`: each aggregate is stored as its JSON
//! form in a `doc` column (so no field is lost or re-encoded differently from
//! the core) plus real, indexed columns for everything a query filters,
//! sorts or constrains on. Uniqueness rules are table constraints: one
//! license per (order, product), one review per (buyer, product), one
//! webhook per (provider, event id), one outbound webhook delivery per
//! (endpoint, event, type), unique e-mail.
//!
//! # Errors
//! Driver errors never leave this crate: a unique violation becomes
//! [`bazaar_core::Error::Conflict`], a busy or locked database (after the
//! busy timeout and a few retries) [`bazaar_core::Error::Unavailable`].
//!
//! # Example
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use bazaar_core::auth::{Email, Role, User, UserRepository};
//! use bazaar_core::ids::UserId;
//! use bazaar_sqlite::SqliteStore;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let store = SqliteStore::connect(&format!("sqlite://{}", dir.path().join("bazaar.db").display())).await.unwrap();
//! store.migrate().await.unwrap();
//! let users = store.users();
//! let ada = User {
//!     id: UserId::new(), email: Email::parse("ada@example.com").unwrap(), name: "Ada".into(),
//!     role: Role::Vendor, password_hash: "$argon2id$...".into(), created_at: chrono::Utc::now(),
//! };
//! users.insert(&ada, &[]).await.unwrap();
//! assert_eq!(users.get(ada.id).await.unwrap(), Some(ada));
//! # });
//! ```
#![forbid(unsafe_code)]

mod assets;
mod catalog;
mod checkout;
mod codec;
mod events;
mod idempotency;
mod licensing;
mod notifications;
mod orders;
mod outbox;
mod payments;
#[cfg(test)]
mod plans;
mod sessions;
mod store;
mod users;
mod webhooks;

pub use assets::SqliteAssets;
pub use catalog::{SqliteProducts, SqliteReviews};
pub use checkout::SqliteCheckout;
pub use events::{SqliteDeadLetters, SqliteInbox};
pub use idempotency::SqliteIdempotency;
pub use licensing::SqliteLicenses;
pub use notifications::SqliteNotifications;
pub use orders::SqliteOrders;
pub use outbox::SqliteOutbox;
pub use payments::SqlitePayments;
pub use sessions::SqliteRefreshTokens;
pub use store::SqliteStore;
pub use users::SqliteUsers;
pub use webhooks::SqliteWebhooks;
