//! Contract suite for [`PaymentProvider`]: the [`SandboxProvider`](crate::payments::SandboxProvider)
//! and every real connector (Stripe against its test server) run it.
//!
//! Each function takes a provider and the names of its test payment
//! methods, and panics with a message naming the broken rule. Every call
//! uses fresh idempotency keys, so the suite can share a provider (or a
//! test server) with other tests.

use crate::clock::Timestamp;
use crate::error::{Error, ErrorKind};
use crate::ids::OrderId;
use crate::money::{Currency, Money};
use crate::payments::{IntentStatus, PaymentProvider, WebhookEvent};

/// The provider's test payment methods and what a decline reports.
#[derive(Debug, Clone, Copy)]
pub struct TestMethods<'a> {
    /// A method that succeeds (`pm_card_visa`).
    pub succeeds: &'a str,
    /// A method the issuer declines.
    pub declined: &'a str,
    /// The `decline_code` a decline of `declined` reports (`card_declined`).
    pub decline_code: &'a str,
    /// A method that needs customer action (3-D Secure).
    pub requires_action: &'a str,
    /// A method the provider does not know at all.
    pub unknown: &'a str,
}

fn key(what: &str) -> String {
    format!("contract:{what}:{}", uuid::Uuid::now_v7())
}

fn usd(minor: i64) -> Money {
    Money::new(minor, Currency::USD)
}

fn kind(result: Result<impl std::fmt::Debug, Error>) -> ErrorKind {
    result.expect_err("expected an error").kind()
}

/// Creating intents: the report, idempotency, and refused amounts.
///
/// # Panics
/// When the provider breaks the [`PaymentProvider`] contract.
pub async fn create_intent(provider: &dyn PaymentProvider) {
    let order = OrderId::new();
    let k = key("create");
    let created = provider.create_intent(usd(1999), order, &k).await.expect("create");
    assert!(!created.provider_ref.is_empty(), "an intent has a reference");
    assert_eq!(created.status, IntentStatus::RequiresPaymentMethod, "a new intent awaits a payment method");
    assert_eq!((created.amount, created.currency.as_str()), (1999, "USD"), "amount and upper-case currency as sent");
    assert_eq!(created.decline_code, None);
    let again = provider.create_intent(usd(1999), order, &k).await.expect("replayed create");
    assert_eq!(again.provider_ref, created.provider_ref, "a repeated key opens no second intent");
    let mismatch = provider.create_intent(usd(2000), order, &k).await;
    assert!(matches!(mismatch, Err(Error::IdempotencyMismatch)), "a key reused with another amount: {mismatch:?}");
    let other = provider.create_intent(usd(1999), order, &key("create")).await.expect("create under a new key");
    assert_ne!(other.provider_ref, created.provider_ref, "a new key opens a new intent");
    let yen = provider.create_intent(Money::new(500, Currency::JPY), OrderId::new(), &key("jpy")).await.unwrap();
    assert_eq!((yen.amount, yen.currency.as_str()), (500, "JPY"), "zero-decimal currencies keep their minor units");
    assert_eq!(kind(provider.create_intent(usd(0), OrderId::new(), &key("zero")).await), ErrorKind::Invalid);
}

/// Confirming: success, decline then success, customer action, unknown
/// methods, and no second capture.
///
/// # Panics
/// When the provider breaks the [`PaymentProvider`] contract.
pub async fn confirm(provider: &dyn PaymentProvider, methods: TestMethods<'_>) {
    let open = |amount| async move {
        provider.create_intent(usd(amount), OrderId::new(), &key("create")).await.expect("create").provider_ref
    };

    let paid_ref = open(1999).await;
    let k = key("confirm");
    let paid = provider.confirm(&paid_ref, methods.succeeds, &k).await.expect("confirm");
    assert_eq!(paid.status, IntentStatus::Succeeded, "the succeeding method captures");
    assert_eq!((paid.provider_ref.as_str(), paid.amount, paid.currency.as_str()), (paid_ref.as_str(), 1999, "USD"));
    assert_eq!(paid.decline_code, None);
    assert_eq!(provider.confirm(&paid_ref, methods.succeeds, &k).await.expect("replay"), paid, "same key, same answer");
    let twice = provider.confirm(&paid_ref, methods.succeeds, &key("confirm")).await;
    assert!(matches!(twice, Err(Error::InvalidTransition { .. })), "an intent succeeds at most once: {twice:?}");
    assert_eq!(provider.retrieve(&paid_ref).await.expect("retrieve").status, IntentStatus::Succeeded);

    let declined_ref = open(700).await;
    let declined = provider.confirm(&declined_ref, methods.declined, &key("confirm")).await.expect("a decline is Ok");
    assert_eq!(declined.status, IntentStatus::RequiresPaymentMethod, "a decline returns the intent to the buyer");
    assert_eq!(declined.decline_code.as_deref(), Some(methods.decline_code), "a decline names its code");
    assert_eq!((declined.amount, declined.currency.as_str()), (700, "USD"));
    let retried = provider.confirm(&declined_ref, methods.succeeds, &key("confirm")).await.expect("second attempt");
    assert_eq!(retried.status, IntentStatus::Succeeded, "another method after a decline can succeed");

    let action_ref = open(900).await;
    let action = provider.confirm(&action_ref, methods.requires_action, &key("confirm")).await.expect("3-D Secure");
    assert_eq!(action.status, IntentStatus::RequiresAction, "3-D Secure is requires_action");
    assert_eq!(provider.retrieve(&action_ref).await.expect("retrieve").status, IntentStatus::RequiresAction);

    let unknown_ref = open(300).await;
    let unknown = provider.confirm(&unknown_ref, methods.unknown, &key("confirm")).await;
    match unknown {
        Err(Error::Validation(fields)) => {
            assert!(fields.iter().any(|f| f.field == "payment_method"), "the error names payment_method: {fields:?}")
        }
        other => panic!("an unknown payment method is a validation error, got {other:?}"),
    }
    assert_eq!(provider.retrieve(&unknown_ref).await.expect("retrieve").status, IntentStatus::RequiresPaymentMethod);
}

/// Refunds: partial, replayed, capped at the capture, only of a paid intent.
///
/// # Panics
/// When the provider breaks the [`PaymentProvider`] contract.
pub async fn refund(provider: &dyn PaymentProvider, methods: TestMethods<'_>) {
    let paid_ref = provider.create_intent(usd(1000), OrderId::new(), &key("create")).await.unwrap().provider_ref;
    provider.confirm(&paid_ref, methods.succeeds, &key("confirm")).await.expect("confirm");
    let k = key("refund");
    let part = provider.refund(&paid_ref, usd(400), &k).await.expect("partial refund");
    assert_eq!((part.provider_ref.as_str(), part.amount, part.currency.as_str()), (paid_ref.as_str(), 400, "USD"));
    assert!(!part.refund_ref.is_empty());
    assert_eq!(provider.refund(&paid_ref, usd(400), &k).await.expect("replay"), part, "same key, no second refund");
    let mismatch = provider.refund(&paid_ref, usd(401), &k).await;
    assert!(matches!(mismatch, Err(Error::IdempotencyMismatch)), "a key reused with another amount: {mismatch:?}");
    let over = provider.refund(&paid_ref, usd(601), &key("refund")).await;
    assert!(
        matches!(over, Err(Error::Conflict { reason: crate::ConflictReason::Exceeded, .. })),
        "refunds never exceed the capture: {over:?}"
    );
    let rest = provider.refund(&paid_ref, usd(600), &key("refund")).await.expect("the rest");
    assert_ne!(rest.refund_ref, part.refund_ref);
    assert_eq!(provider.retrieve(&paid_ref).await.unwrap().status, IntentStatus::Succeeded, "refunds keep the status");

    let open_ref = provider.create_intent(usd(1000), OrderId::new(), &key("create")).await.unwrap().provider_ref;
    let unpaid = provider.refund(&open_ref, usd(100), &key("refund")).await;
    assert!(matches!(unpaid, Err(Error::InvalidTransition { .. })), "only a paid intent refunds: {unpaid:?}");
}

/// Retrieval and cancellation.
///
/// # Panics
/// When the provider breaks the [`PaymentProvider`] contract.
pub async fn retrieve_and_cancel(provider: &dyn PaymentProvider, methods: TestMethods<'_>, missing_ref: &str) {
    assert_eq!(kind(provider.retrieve(missing_ref).await), ErrorKind::NotFound, "an unknown reference");

    let open = provider.create_intent(usd(1200), OrderId::new(), &key("create")).await.unwrap();
    let seen = provider.retrieve(&open.provider_ref).await.expect("retrieve");
    assert_eq!(seen, open, "retrieve reports what create did");
    let k = key("cancel");
    let canceled = provider.cancel(&open.provider_ref, &k).await.expect("cancel");
    assert_eq!(canceled.status, IntentStatus::Canceled);
    assert_eq!((canceled.amount, canceled.currency.as_str()), (1200, "USD"));
    assert_eq!(provider.cancel(&open.provider_ref, &k).await.expect("replay").status, IntentStatus::Canceled);
    let again = provider.cancel(&open.provider_ref, &key("cancel")).await.expect("canceling again is idempotent");
    assert_eq!(again.status, IntentStatus::Canceled);
    let late = provider.confirm(&open.provider_ref, methods.succeeds, &key("confirm")).await;
    assert!(matches!(late, Err(Error::InvalidTransition { .. })), "a canceled intent cannot be paid: {late:?}");
    assert_eq!(provider.retrieve(&open.provider_ref).await.unwrap().status, IntentStatus::Canceled);

    let paid_ref = provider.create_intent(usd(1200), OrderId::new(), &key("create")).await.unwrap().provider_ref;
    provider.confirm(&paid_ref, methods.succeeds, &key("confirm")).await.unwrap();
    let undo = provider.cancel(&paid_ref, &key("cancel")).await;
    assert!(matches!(undo, Err(Error::InvalidTransition { .. })), "a capture is never canceled: {undo:?}");
    assert_eq!(provider.retrieve(&paid_ref).await.unwrap().status, IntentStatus::Succeeded);
}

/// One webhook the provider would send, as its raw body signed with the
/// provider's secret at `signed_at`, and the event it must parse to.
#[derive(Debug, Clone)]
pub struct SignedCase {
    /// The `t=…,v1=…` header.
    pub signature: String,
    /// The raw body.
    pub body: Vec<u8>,
    /// When it was signed.
    pub signed_at: Timestamp,
    /// What the provider must parse it to.
    pub expected: WebhookEvent,
}

/// Webhook verification: every case parses to its event; a tampered body,
/// a foreign secret or a stale signature is `Unauthenticated`; a signed
/// body that is no webhook is `Validation`.
///
/// `sign(body, at)` signs with the provider's secret; `foreign(body, at)`
/// with a secret the provider does not accept.
///
/// # Panics
/// When the provider breaks the [`PaymentProvider`] contract.
pub fn webhooks(
    provider: &dyn PaymentProvider,
    cases: &[SignedCase],
    sign: &dyn Fn(&[u8], Timestamp) -> String,
    foreign: &dyn Fn(&[u8], Timestamp) -> String,
) {
    assert!(!cases.is_empty(), "the suite needs at least one webhook");
    for case in cases {
        let at = case.signed_at;
        let parsed = provider.verify_and_parse_webhook(&case.signature, &case.body, at).expect("a signed webhook");
        assert_eq!(parsed, case.expected, "parsed event of {}", String::from_utf8_lossy(&case.body));
        let later = at + chrono::Duration::seconds(299);
        assert!(provider.verify_and_parse_webhook(&case.signature, &case.body, later).is_ok(), "within 300 s");

        let mut tampered = case.body.clone();
        let last = tampered.len() - 1;
        tampered.insert(last, b' ');
        let unauthenticated = |r: crate::Result<WebhookEvent>| matches!(r, Err(Error::Unauthenticated(_)));
        assert!(unauthenticated(provider.verify_and_parse_webhook(&case.signature, &tampered, at)), "tampered body");
        let stale = at + chrono::Duration::seconds(301);
        assert!(unauthenticated(provider.verify_and_parse_webhook(&case.signature, &case.body, stale)), "stale");
        let early = at - chrono::Duration::seconds(301);
        assert!(unauthenticated(provider.verify_and_parse_webhook(&case.signature, &case.body, early)), "future");
        let forged = foreign(&case.body, at);
        assert!(unauthenticated(provider.verify_and_parse_webhook(&forged, &case.body, at)), "foreign secret");
        assert!(unauthenticated(provider.verify_and_parse_webhook("", &case.body, at)), "no header");
        // Key rotation: the sender signs with the old and the new secret.
        let both = format!("{},{}", forged, sign(&case.body, at).split_once(',').expect("t=…,v1=…").1);
        assert!(provider.verify_and_parse_webhook(&both, &case.body, at).is_ok(), "one matching v1 of several");
    }
    let at = cases[0].signed_at;
    for junk in [&b"not json"[..], br#"{"id":"evt_1"}"#, b"[]"] {
        let signed = sign(junk, at);
        match provider.verify_and_parse_webhook(&signed, junk, at) {
            Err(Error::Validation(_)) => {}
            other => panic!("a signed body that is no webhook is a validation error, got {other:?}"),
        }
    }
}

/// Every suite above that needs no webhook material.
///
/// # Panics
/// When the provider breaks the [`PaymentProvider`] contract.
pub async fn payment_provider_contract(provider: &dyn PaymentProvider, methods: TestMethods<'_>, missing_ref: &str) {
    create_intent(provider).await;
    confirm(provider, methods).await;
    refund(provider, methods).await;
    retrieve_and_cancel(provider, methods, missing_ref).await;
}
