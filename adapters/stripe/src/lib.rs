//! Stripe for Bazaar: [`StripeProvider`], a
//! [`PaymentProvider`](bazaar_core::payments::PaymentProvider) over
//! Stripe's REST API (PaymentIntents create / confirm / retrieve / cancel,
//! refunds, webhooks).
//!
//! - Requests are form-encoded, pin [`API_VERSION`], and every POST carries
//!   the caller's idempotency key, which the payment service derives from
//!   our intent and attempt ids.
//! - Each call goes through the core's circuit breaker, a per-call
//!   deadline and retries within a shared budget: breaker → deadline →
//!   retry → one attempt with its timeout. Retried: 409, 429 (after its
//!   `Retry-After`), 5xx, timeouts and failed connections, unless Stripe
//!   answers `Stripe-Should-Retry: false`. While the breaker is open every
//!   call answers `Unavailable` at once, without a request.
//! - Stripe's answers map to [`bazaar_core::Error`] in one table
//!   (`errors.rs`; see [`StripeFailure`] for the causes); declines become our decline codes, 3-D Secure
//!   `requires_action`.
//! - Webhooks are verified with the core's `t=…,v1=…` HMAC check against
//!   every configured secret (rotation), 300 s tolerance, then read from
//!   Stripe's own event JSON: `payment_intent.succeeded`,
//!   `.payment_failed`, `.requires_action`, `.processing`, `.canceled` and
//!   `charge.refunded`.
//! - Secrets print as `****` ([`Secret`]); no key reaches a log.
//! - Feature `fake`: `fake::FakeStripe`, a local server speaking Stripe's
//!   wire format from recorded responses, for tests of this crate and of
//!   the processes that pay through it.
//!
//! # Example
//! A payment and its webhook, against the local fake of feature `fake` (as
//! this crate's tests run); with a real key the same calls go to Stripe.
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use bazaar_core::clock::{Clock, SystemClock};
//! use bazaar_core::ids::OrderId;
//! use bazaar_core::money::{Currency, Money};
//! use bazaar_core::payments::{IntentStatus, PaymentProvider, WebhookKind};
//! use bazaar_stripe::StripeProvider;
//! use bazaar_stripe::fake::{FakeStripe, PM_VISA};
//!
//! let fake = FakeStripe::start().await;
//! // In production: StripeConfig::from_values("sk_live_…", "whsec_…", None)?
//! let stripe = StripeProvider::new(fake.config())?;
//!
//! let order = OrderId::new();
//! let intent = stripe.create_intent(Money::new(1_999, Currency::USD), order, &format!("order:{order}:create")).await?;
//! let paid = stripe.confirm(&intent.provider_ref, PM_VISA, &format!("order:{order}:confirm:1")).await?;
//! assert_eq!((paid.status, paid.amount), (IntentStatus::Succeeded, 1_999));
//!
//! // Stripe's webhook about it: the signature is checked, then the event read.
//! let now = SystemClock.now();
//! let (signature, body) = fake.signed_event("payment_intent.succeeded", &intent.provider_ref, now.timestamp());
//! let event = stripe.verify_and_parse_webhook(&signature, &body, now)?;
//! assert_eq!((event.kind, event.provider_ref.as_str()), (WebhookKind::PaymentSucceeded, intent.provider_ref.as_str()));
//! assert!(stripe.verify_and_parse_webhook(&signature, b"{}", now).is_err(), "a changed body fails the check");
//! # Ok::<(), bazaar_core::Error>(())
//! # }).unwrap();
//! ```

mod config;
mod errors;
mod events;
#[cfg(feature = "fake")]
pub mod fake;
mod provider;
mod transport;
mod wire;

pub use config::{API_VERSION, DEFAULT_API_BASE, Secret, StripeConfig};
pub use errors::StripeFailure;
pub use provider::{PROVIDER_NAME, StripeProvider};
