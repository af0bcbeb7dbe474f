//! Bazaar's marketplace domain, free of I/O.
//!
//! Everything the marketplace *decides* lives here: money and ids, the
//! catalog and its moderation, orders, Stripe-style payment intents,
//! Keygen-style licenses with signed keys, asset downloads, notifications and
//! domain events, plus the [`resilience`] kit for calls between services.
//! Everything that *talks* (SQL, Redis, NATS, HTTP) is an adapter that
//! implements the `async_trait` ports declared in each module.
//!
//! # Persistence and the outbox
//! Every mutating port method is one unit of work: an adapter commits the
//! state change *and* the [`events::Event`]s passed with it in a single
//! transaction (the outbox), or neither. Services therefore never publish
//! events directly; a relay publishes the outbox.
//!
//! # Example
//! The whole marketplace in memory: one builder wires every service, the
//! event handlers, the outbox relay and the dispatcher over a
//! [`marketplace::Ports`] value; [`marketplace::Marketplace::pump`] drives
//! the events in-process (a worker does it in a server).
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//!
//! use bazaar_auth::{Argon2Passwords, JwtTokens};
//! use bazaar_core::auth::{Actor, Role};
//! use bazaar_core::catalog::{NewProduct, Pricing, ProductKind};
//! use bazaar_core::clock::SystemClock;
//! use bazaar_core::ids::UserId;
//! use bazaar_core::licensing::ValidationCode;
//! use bazaar_core::marketplace::Marketplace;
//! use bazaar_core::money::{Currency, FeeRate, Money};
//! use bazaar_core::orders::PlaceOrder;
//! use bazaar_core::payments::PM_CARD_VISA;
//! use bazaar_memory::MemoryBackend;
//!
//! let market = Marketplace::builder(MemoryBackend::new(Arc::new(SystemClock)).ports())
//!     .fee_rate(FeeRate::from_bps(1_500)?)
//!     .passwords(Arc::new(Argon2Passwords::default()))
//!     .tokens(Arc::new(JwtTokens::new([7; 32])))
//!     .build()?;
//! let (vendor, admin, buyer) = (
//!     Actor::new(UserId::new(), Role::Vendor),
//!     Actor::new(UserId::new(), Role::Admin),
//!     Actor::new(UserId::new(), Role::Customer),
//! );
//!
//! let listing = NewProduct {
//!     title: "Inbox triage agent".into(),
//!     description: "Sorts, labels and drafts replies to your support inbox.".into(),
//!     short_description: "Support inbox on autopilot.".into(),
//!     kind: ProductKind::AiAgent,
//!     categories: vec!["support".into()],
//!     tags: vec!["email".into()],
//!     pricing: Pricing::OneTime { price: Money::new(4_900, Currency::USD) },
//!     media: vec![],
//! };
//! let product = market.catalog.create(&vendor, listing).await?;
//! market.catalog.submit(&vendor, product.id).await?;
//! market.catalog.approve(&admin, product.id).await?;
//!
//! let order = market.orders.place(&buyer, PlaceOrder::new([product.id]), Some("checkout-1")).await?;
//! let line = &order.lines[0]; // 15 % fee, split exactly
//! assert_eq!(line.platform_fee.checked_add(&line.vendor_net)?, Money::new(4_900, Currency::USD));
//! market.orders.pay(&buyer, order.id, PM_CARD_VISA).await?;
//! market.pump().await?; // outbox -> bus -> handlers: the license is issued
//!
//! let license = market.licenses.list_mine(&buyer, Default::default()).await?.items.remove(0);
//! market.licenses.activate(&buyer, license.id, "laptop-7f3a").await?;
//! let check = market.licenses.validate(&license.key, Some("laptop-7f3a")).await?;
//! assert_eq!(check.code, ValidationCode::Valid);
//! # Ok::<(), bazaar_core::Error>(())
//! # }).unwrap();
//! ```
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
pub mod webhooks;
pub mod workflows;

pub use error::{ConflictReason, Error, ErrorKind, Result};
