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
//! ```no_run
//! use bazaar_stripe::{Secret, StripeConfig, StripeProvider};
//! # fn main() -> bazaar_core::Result<()> {
//! let config = StripeConfig::from_values("sk_test_…", "whsec_…", None)?;
//! let stripe = StripeProvider::new(config)?;
//! # let _ = stripe; Ok(()) }
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
