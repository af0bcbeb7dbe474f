//! Payments with Stripe PaymentIntent semantics: the intent state machine,
//! the provider port and its sandbox, webhook signatures, integrity checks,
//! the intent store with its webhook inbox, and the service tying them
//! together.
//!
//! Invariants: an intent succeeds at most once; refunds never exceed what
//! was captured; what a provider reports (amount, currency, reference) is
//! checked against the intent before any transition, and a mismatch is an
//! [`crate::Error::Integrity`] that changes nothing; a webhook inbox keyed by
//! (provider, event id) makes replays change nothing.

pub mod integrity;
mod intent;
mod provider;
mod repository;
mod sandbox;
mod service;
pub mod webhook;

pub use intent::{AttemptOutcome, IntentEvent, IntentStatus, PaymentAttempt, PaymentIntent, reconcile, transition};
pub use provider::{PaymentProvider, ProviderIntent, ProviderRefund, WebhookEvent, WebhookKind};
pub use repository::{PaymentRepository, WebhookReceipt};
pub use sandbox::{
    PM_CARD_3DS, PM_CARD_DECLINED, PM_CARD_VISA, SANDBOX, SandboxBounds, SandboxProvider, SignedWebhook,
};
pub use service::{FREE_PROVIDER, MAX_ATTEMPTS, PaymentService};

#[cfg(any(test, feature = "mocks"))]
pub use provider::MockPaymentProvider;
#[cfg(any(test, feature = "mocks"))]
pub use repository::MockPaymentRepository;
