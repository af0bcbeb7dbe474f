//! Bazaar's marketplace domain, free of I/O.
//!
//! Everything the marketplace *decides* lives here: money and ids, the
//! catalog and its moderation, orders, Stripe-style payment intents,
//! Keygen-style licenses with signed keys, asset downloads, notifications and
//! domain events, plus the [`resilience`] kit used between services.
//! Everything that *talks* (SQL, Redis, NATS, HTTP) is an adapter that
//! implements the `async_trait` ports declared in each module.
//!
//! # Persistence and the outbox
//! Every mutating port method is one unit of work: an adapter commits the
//! state change *and* the [`events::Event`]s passed with it in a single
//! transaction (the outbox), or neither. Services therefore never publish
//! events directly; a relay publishes the outbox.
#![forbid(unsafe_code)]

pub mod assets;
pub mod auth;
mod batch;
pub mod catalog;
pub mod clock;
pub mod entropy;
pub mod error;
pub mod events;
pub mod health;
pub mod ids;
pub mod licensing;
pub mod marketplace;
pub mod money;
pub mod notifications;
pub mod orders;
pub mod page;
pub mod payments;
pub mod pricing;
pub mod resilience;
pub mod storage;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod workflows;

pub use error::{ConflictReason, Error, ErrorKind, Result};
