//! PostgreSQL adapters for every persistence port of `bazaar-core`: the
//! production store, shared by stateless replicas.
//!
//! [`PgStore`] owns the connection pool; each port is a cheap handle on it
//! ([`PgStore::users`], [`PgStore::products`], …), so the ports of one store
//! share one database and one outbox.
//!
//! # Units of work
//! Every mutating port method commits the state change *and* the events
//! passed with it (rows of the `outbox` table), or neither. Where that is
//! one statement it is sent as one autocommitted statement, which is just
//! as atomic and costs one round trip instead of three: the hot writes of
//! a purchase (the order inserted with its payment intent by
//! [`PgCheckout`], the intent's version compare-and-set, the worker's
//! batched order status compare-and-sets and license inserts) append their
//! events in the same statement through a data-modifying `WITH` (see
//! `outbox::with_events!` and, for a batch whose rows each own their
//! events, `outbox::with_owned_events!`), and status changes patch the JSON
//! document in place (`doc::jsonb || patch`). Everything else runs in one transaction
//! at READ COMMITTED; every read-check-write rule locks the row it checks
//! (`SELECT … FOR UPDATE`: license activation limits and download counts,
//! product versions) or is a compare-and-set in one `UPDATE … WHERE`
//! (order statuses, payment versions), and every "insert unless present"
//! rule is an `INSERT … ON CONFLICT` decided by a unique index (idempotency
//! keys, the webhook and event inboxes, notification dedup, outbound
//! webhook deliveries). The outbox relay claims rows with `FOR UPDATE SKIP
//! LOCKED` and a lease; outbound webhook deliveries, which must leave in
//! order per endpoint, are claimed one claim at a time under a
//! transaction-level advisory lock, with a lease (see [`PgWebhooks`]).
//!
//! # Storage shape
//! See `migrations/0001_initial.sql`: each aggregate is stored as its JSON
//! form in a `doc` column plus real, indexed columns for everything a query
//! filters, sorts or constrains on. Uniqueness rules are table constraints:
//! one license per (order, product), one review per (buyer, product), one
//! webhook per (provider, event id), one outbound webhook delivery per
//! (endpoint, event, type), unique e-mail. The catalog search needs
//! the `pg_trgm` extension (created by the migration; trusted since
//! PostgreSQL 13, so the database owner may create it).
//!
//! # Errors
//! Driver errors never leave this crate: a unique violation (23505) becomes
//! [`bazaar_core::Error::Conflict`]; a serialization failure (40001) or
//! deadlock (40P01) is retried for single-statement writes and otherwise
//! reported as `Conflict`; anything else is
//! [`bazaar_core::Error::Unavailable`].
//!
//! # Runtimes
//! sqlx needs Tokio. A store built inside a runtime remembers it, and a
//! port call polled outside any runtime (e.g. from a plain thread with
//! `futures::executor::block_on`) runs in that runtime's context.
//!
//! # Example
//! `no_run`: it needs a PostgreSQL server at 127.0.0.1:5432.
//! ```no_run
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! use bazaar_core::auth::{Email, Role, User, UserRepository};
//! use bazaar_core::ids::UserId;
//! use bazaar_postgres::PgStore;
//!
//! let store = PgStore::connect("postgres://postgres@127.0.0.1:5432/bazaar").await.unwrap();
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
mod sessions;
mod store;
mod users;
mod webhooks;

pub use assets::PgAssets;
pub use catalog::{PgProducts, PgReviews};
pub use checkout::PgCheckout;
pub use events::{PgDeadLetters, PgInbox};
pub use idempotency::PgIdempotency;
pub use licensing::PgLicenses;
pub use notifications::PgNotifications;
pub use orders::PgOrders;
pub use outbox::PgOutbox;
pub use payments::PgPayments;
pub use sessions::PgRefreshTokens;
pub use store::PgStore;
pub use users::PgUsers;
pub use webhooks::PgWebhooks;
