//! The connector against the local Stripe server: what it sends, how it
//! reads declines and 3-D Secure, and how it behaves when Stripe rate
//! limits, fails, or answers late.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bazaar_core::Error;
use bazaar_core::ids::OrderId;
use bazaar_core::money::{Currency, Money};
use bazaar_core::payments::{IntentStatus, PaymentProvider, webhook};
use bazaar_core::resilience::circuit_breaker::{CircuitBreakerConfig, SlidingWindow, State};
use bazaar_core::resilience::clock::ManualClock;
use bazaar_core::resilience::retry::{Backoff, ManualSleeper, RetryPolicy};
use bazaar_stripe::{API_VERSION, Secret, StripeConfig, StripeProvider};
use common::{FakeStripe, PM_3DS, PM_NO_FUNDS, PM_VISA, SECRET_KEY, WEBHOOK_SECRET, fixture, keys_of};
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, ResponseTemplate};

fn usd(minor: i64) -> Money {
    Money::new(minor, Currency::USD)
}

/// A provider whose waits between attempts move a manual clock instead of
/// sleeping, and the sleeper that records them.
fn with_manual_waits(config: StripeConfig) -> (StripeProvider, ManualSleeper, ManualClock) {
    let clock = ManualClock::new();
    let sleeper = ManualSleeper::new(clock.clone());
    let provider = StripeProvider::new(config).unwrap().with_timing(Arc::new(clock.clone()), Arc::new(sleeper.clone()));
    (provider, sleeper, clock)
}

fn stripe_error(status: u16, name: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(serde_json::to_vec(&fixture(name)).unwrap(), "application/json")
}

fn source_text(err: &Error) -> String {
    std::error::Error::source(err).map(ToString::to_string).unwrap_or_default()
}

#[tokio::test]
async fn every_request_is_form_encoded_authenticated_versioned_and_keyed() {
    let fake = FakeStripe::start().await;
    let stripe = StripeProvider::new(fake.config()).unwrap();
    let order = OrderId::new();
    let intent = stripe.create_intent(usd(1999), order, &format!("order:{order}:create_intent")).await.unwrap();
    stripe.confirm(&intent.provider_ref, PM_VISA, "0190b7c4-intent:confirm:1").await.unwrap();
    stripe.retrieve(&intent.provider_ref).await.unwrap();

    let requests = fake.requests().await;
    assert_eq!(requests.len(), 3);
    for r in &requests {
        assert_eq!(r.headers["authorization"], format!("Bearer {SECRET_KEY}").as_str());
        assert_eq!(r.headers["stripe-version"], API_VERSION);
    }
    let create = &requests[0];
    assert_eq!((create.method.as_str(), create.url.path()), ("POST", "/v1/payment_intents"));
    assert_eq!(create.headers["content-type"], "application/x-www-form-urlencoded");
    assert_eq!(create.headers["idempotency-key"], format!("order:{order}:create_intent").as_str());
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&create.body).unwrap();
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    assert_eq!(field("amount").as_deref(), Some("1999"));
    assert_eq!(field("currency").as_deref(), Some("usd"));
    assert_eq!(field("metadata[order_id]"), Some(order.to_string()));
    assert_eq!(field("payment_method_types[]").as_deref(), Some("card"));
    assert_eq!(requests[1].headers["idempotency-key"], "0190b7c4-intent:confirm:1");
    assert!(requests[2].headers.get("idempotency-key").is_none(), "a GET needs no key");
}

#[tokio::test]
async fn declines_report_our_codes_and_3ds_requires_action() {
    let fake = FakeStripe::start().await;
    let stripe = StripeProvider::new(fake.config()).unwrap();
    let poor = stripe.create_intent(usd(5000), OrderId::new(), "c1").await.unwrap();
    let declined = stripe.confirm(&poor.provider_ref, PM_NO_FUNDS, "k1").await.unwrap();
    assert_eq!(declined.status, IntentStatus::RequiresPaymentMethod);
    assert_eq!(declined.decline_code.as_deref(), Some("insufficient_funds"));
    assert_eq!(stripe.retrieve(&poor.provider_ref).await.unwrap().decline_code.as_deref(), Some("insufficient_funds"));

    let secure = stripe.create_intent(usd(5000), OrderId::new(), "c2").await.unwrap();
    let action = stripe.confirm(&secure.provider_ref, PM_3DS, "k2").await.unwrap();
    assert_eq!((action.status, action.decline_code), (IntentStatus::RequiresAction, None));
    fake.complete_action(&secure.provider_ref, true);
    assert_eq!(stripe.retrieve(&secure.provider_ref).await.unwrap().status, IntentStatus::Succeeded);

    let failed = stripe.create_intent(usd(5000), OrderId::new(), "c3").await.unwrap();
    stripe.confirm(&failed.provider_ref, PM_3DS, "k3").await.unwrap();
    fake.complete_action(&failed.provider_ref, false);
    let after = stripe.retrieve(&failed.provider_ref).await.unwrap();
    assert_eq!(after.status, IntentStatus::RequiresPaymentMethod);
    assert_eq!(after.decline_code.as_deref(), Some("authentication_failed"));
    assert_eq!(fake.captures(), 1);
}

#[tokio::test]
async fn a_429_is_retried_after_retry_after_with_the_same_key_and_charges_once() {
    let fake = FakeStripe::start().await;
    let (stripe, sleeper, _) = with_manual_waits(fake.config());
    let intent = stripe.create_intent(usd(1500), OrderId::new(), "c1").await.unwrap();
    Mock::given(method("POST"))
        .and(path_regex("/confirm$"))
        .respond_with(stripe_error(429, "error_rate_limit.json").insert_header("Retry-After", "2"))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&fake.server)
        .await;
    let paid = stripe.confirm(&intent.provider_ref, PM_VISA, "pay-1").await.unwrap();
    assert_eq!(paid.status, IntentStatus::Succeeded);
    assert_eq!(sleeper.slept(), [Duration::from_secs(2), Duration::from_secs(2)], "Stripe's delay, not the backoff");
    assert_eq!(keys_of(&fake.requests().await, "/confirm"), ["pay-1", "pay-1", "pay-1"]);
    assert_eq!(fake.captures(), 1);

    // Still limited after every attempt: the caller is told when to come back.
    let other = stripe.create_intent(usd(1500), OrderId::new(), "c2").await.unwrap();
    Mock::given(method("POST"))
        .and(path_regex("/confirm$"))
        .respond_with(stripe_error(429, "error_rate_limit.json").insert_header("Retry-After", "3"))
        .with_priority(1)
        .mount(&fake.server)
        .await;
    match stripe.confirm(&other.provider_ref, PM_VISA, "pay-2").await {
        Err(Error::RateLimited { retry_after }) => assert_eq!(retry_after, Duration::from_secs(3)),
        other => panic!("expected RateLimited, got {other:?}"),
    }
    assert_eq!(keys_of(&fake.requests().await, "/confirm").iter().filter(|k| *k == "pay-2").count(), 3);
}

#[tokio::test]
async fn a_5xx_storm_opens_the_breaker_which_then_answers_unavailable_without_calling() {
    let fake = FakeStripe::start().await;
    let mut config = fake.config();
    config.retry = RetryPolicy::new(2, Backoff::constant(Duration::from_millis(10)));
    config.breaker = CircuitBreakerConfig::builder()
        .sliding_window(SlidingWindow::CountBased(4))
        .minimum_number_of_calls(4)
        .failure_rate_threshold(50.0)
        .wait_in_open(Duration::from_secs(30))
        .permitted_calls_in_half_open(1)
        .build()
        .unwrap();
    let (stripe, _, clock) = with_manual_waits(config);
    // Eight 500s: four calls of two attempts each; then Stripe is healthy.
    Mock::given(method("POST"))
        .respond_with(stripe_error(500, "error_api.json"))
        .up_to_n_times(8)
        .with_priority(1)
        .mount(&fake.server)
        .await;
    for i in 0..4 {
        let err = stripe.create_intent(usd(100), OrderId::new(), &format!("storm-{i}")).await.unwrap_err();
        assert_eq!(err.code(), "unavailable", "call {i}");
        assert!(source_text(&err).contains("HTTP 500"), "{}", source_text(&err));
    }
    assert_eq!(stripe.breaker().state(), State::Open);
    assert_eq!(fake.requests().await.len(), 8);
    for i in 0..5 {
        let err = stripe.create_intent(usd(100), OrderId::new(), &format!("shed-{i}")).await.unwrap_err();
        assert_eq!(err.code(), "unavailable");
        assert!(source_text(&err).contains("circuit breaker open"), "{}", source_text(&err));
    }
    assert_eq!(fake.requests().await.len(), 8, "an open breaker sends nothing");

    // After the wait one probe goes through; Stripe is back, so it closes.
    clock.advance(Duration::from_secs(31));
    let back = stripe.create_intent(usd(100), OrderId::new(), "probe").await.unwrap();
    assert_eq!(back.status, IntentStatus::RequiresPaymentMethod);
    assert_eq!(stripe.breaker().state(), State::Closed);
}

#[tokio::test]
async fn stripe_should_retry_false_is_not_retried() {
    let fake = FakeStripe::start().await;
    let stripe = StripeProvider::new(fake.config()).unwrap();
    Mock::given(method("POST"))
        .respond_with(stripe_error(500, "error_api.json").insert_header("Stripe-Should-Retry", "false"))
        .with_priority(1)
        .mount(&fake.server)
        .await;
    let err = stripe.create_intent(usd(100), OrderId::new(), "c1").await.unwrap_err();
    assert_eq!(err.code(), "unavailable");
    assert_eq!(fake.requests().await.len(), 1);
}

#[tokio::test]
async fn a_lost_answer_is_retried_with_its_key_and_never_charged_twice() {
    let fake = FakeStripe::start().await;
    let mut config = fake.config();
    config.attempt_timeout = Duration::from_millis(300);
    let stripe = StripeProvider::new(config).unwrap();
    let intent = stripe.create_intent(usd(4200), OrderId::new(), "c1").await.unwrap();
    // Stripe captures, but its answer arrives after the attempt gave up.
    fake.delay_next_answer(Duration::from_secs(3));
    let paid = stripe.confirm(&intent.provider_ref, PM_VISA, "intent-1:confirm:1").await.unwrap();
    assert_eq!(paid.status, IntentStatus::Succeeded);
    assert_eq!(keys_of(&fake.requests().await, "/confirm"), ["intent-1:confirm:1", "intent-1:confirm:1"]);
    assert_eq!(fake.captures(), 1, "the retry was replayed by its key, not charged again");

    // The same for a refund: one refund however often it is sent.
    fake.delay_next_answer(Duration::from_secs(3));
    let refund = stripe.refund(&intent.provider_ref, usd(4200), "intent-1:refund:0:4200").await.unwrap();
    assert_eq!(refund.amount, 4200);
    let again = stripe.refund(&intent.provider_ref, usd(4200), "intent-1:refund:0:4200").await.unwrap();
    assert_eq!(again, refund);
    let over = stripe.refund(&intent.provider_ref, usd(1), "intent-1:refund:4200:1").await.unwrap_err();
    assert_eq!(over.code(), "conflict", "the first refund took everything");
}

#[tokio::test]
async fn attempts_time_out_and_the_deadline_bounds_the_call() {
    let fake = FakeStripe::start().await;
    let mut config = fake.config();
    config.attempt_timeout = Duration::from_millis(200);
    config.retry = RetryPolicy::new(2, Backoff::constant(Duration::from_millis(10)));
    let stripe = StripeProvider::new(config).unwrap();
    let intent = stripe.create_intent(usd(100), OrderId::new(), "c1").await.unwrap();
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
        .with_priority(1)
        .mount(&fake.server)
        .await;
    let err = stripe.retrieve(&intent.provider_ref).await.unwrap_err();
    assert_eq!(err.code(), "unavailable");
    assert!(source_text(&err).contains("attempt timeout"), "{}", source_text(&err));
    let gets = fake.requests().await.iter().filter(|r| r.method.as_str() == "GET").count();
    assert_eq!(gets, 2, "each attempt timed out and was retried once");

    let mut config = fake.config();
    config.attempt_timeout = Duration::from_secs(2);
    config.deadline = Duration::from_millis(300);
    let bounded = StripeProvider::new(config).unwrap();
    let err = bounded.retrieve(&intent.provider_ref).await.unwrap_err();
    assert_eq!(err.code(), "unavailable");
    assert!(source_text(&err).contains("deadline"), "{}", source_text(&err));
}

#[tokio::test]
async fn conflicts_on_a_key_in_flight_are_retried_then_reported() {
    let fake = FakeStripe::start().await;
    let (stripe, sleeper, _) = with_manual_waits(fake.config());
    Mock::given(method("POST"))
        .respond_with(stripe_error(409, "error_idempotency_in_flight.json"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&fake.server)
        .await;
    let created = stripe.create_intent(usd(100), OrderId::new(), "c1").await.unwrap();
    assert_eq!(created.status, IntentStatus::RequiresPaymentMethod, "the retry after a 409 got the answer");
    assert_eq!(sleeper.slept().len(), 1);

    Mock::given(method("POST"))
        .respond_with(stripe_error(409, "error_idempotency_in_flight.json"))
        .with_priority(1)
        .mount(&fake.server)
        .await;
    let err = stripe.create_intent(usd(100), OrderId::new(), "c2").await.unwrap_err();
    assert!(matches!(err, Error::InFlight), "{err:?}");
}

#[tokio::test]
async fn a_rejected_key_is_an_internal_error_that_never_shows_the_key() {
    let fake = FakeStripe::start().await;
    let mut config = fake.config();
    config.secret_key = Secret::new("sk_test_wrong_a1b2c3d4e5");
    let stripe = StripeProvider::new(config).unwrap();
    let err = stripe.create_intent(usd(100), OrderId::new(), "c1").await.unwrap_err();
    assert_eq!(err.code(), "internal");
    assert_eq!(fake.requests().await.len(), 1, "a 401 is not retried");
    let shown = format!("{err} {err:?} {} {stripe:?}", source_text(&err));
    assert!(!shown.contains("a1b2c3d4e5") && !shown.contains(SECRET_KEY), "{shown}");
}

#[tokio::test]
async fn webhooks_verify_with_any_configured_secret() {
    let fake = FakeStripe::start().await;
    let stripe = StripeProvider::new(fake.config()).unwrap();
    let intent = stripe.create_intent(usd(700), OrderId::new(), "c1").await.unwrap();
    stripe.confirm(&intent.provider_ref, PM_VISA, "k1").await.unwrap();
    let (_, body) = fake.signed_event("payment_intent.succeeded", &intent.provider_ref, 1_700_000_000);
    let now = chrono::DateTime::from_timestamp(1_700_000_100, 0).unwrap();

    let mut rotated = fake.config();
    rotated.webhook_secrets = vec![Secret::new("whsec_new_secret"), Secret::new(WEBHOOK_SECRET)];
    let rotated = StripeProvider::new(rotated).unwrap();
    let by_old = webhook::sign(WEBHOOK_SECRET.as_bytes(), 1_700_000_000, &body);
    let by_new = webhook::sign(b"whsec_new_secret", 1_700_000_000, &body);
    for header in [&by_old, &by_new] {
        let event = rotated.verify_and_parse_webhook(header, &body, now).unwrap();
        assert_eq!((event.provider_ref.as_str(), event.amount), (intent.provider_ref.as_str(), 700));
    }
    assert_eq!(stripe.verify_and_parse_webhook(&by_new, &body, now).unwrap_err().code(), "unauthenticated");
}
