//! The payment-provider contract suite, run on the sandbox (the embedded
//! default) and on the Stripe connector against the local Stripe server.

mod common;

use std::sync::Arc;

use bazaar_core::clock::{ManualClock, Timestamp};
use bazaar_core::payments::{
    IntentStatus, PM_CARD_3DS, PM_CARD_DECLINED, PM_CARD_VISA, PaymentProvider, SandboxProvider, WebhookEvent,
    WebhookKind, webhook,
};
use bazaar_core::testkit::payment_provider::{self as suite, SignedCase, TestMethods};
use bazaar_stripe::StripeProvider;
use common::{FakeStripe, PM_3DS, PM_DECLINED, PM_VISA, WEBHOOK_SECRET};

const T: i64 = 1_700_000_000;

fn at(secs: i64) -> Timestamp {
    chrono::DateTime::from_timestamp(secs, 0).unwrap()
}

#[tokio::test]
async fn the_sandbox_passes_the_payment_provider_contract() {
    let sandbox = SandboxProvider::new(Arc::new(ManualClock::at_epoch_secs(T)), b"whsec_sandbox".to_vec());
    let methods = TestMethods {
        succeeds: PM_CARD_VISA,
        declined: PM_CARD_DECLINED,
        decline_code: "card_declined",
        requires_action: PM_CARD_3DS,
        unknown: "pm_card_bogus",
    };
    suite::payment_provider_contract(&sandbox, methods, "pi_missing").await;

    let paid = sandbox
        .create_intent(
            bazaar_core::money::Money::new(500, bazaar_core::money::Currency::USD),
            bazaar_core::ids::OrderId::new(),
            "w1",
        )
        .await
        .unwrap();
    sandbox.take_webhooks();
    sandbox.confirm(&paid.provider_ref, PM_CARD_VISA, "w2").await.unwrap();
    let cases: Vec<SignedCase> = sandbox
        .take_webhooks()
        .into_iter()
        .map(|w| SignedCase {
            expected: serde_json::from_slice::<WebhookEvent>(&w.body).unwrap(),
            signature: w.signature,
            body: w.body,
            signed_at: at(T),
        })
        .collect();
    suite::webhooks(
        &sandbox,
        &cases,
        &|body, at| webhook::sign(b"whsec_sandbox", at.timestamp(), body),
        &|body, at| webhook::sign(b"whsec_other", at.timestamp(), body),
    );
}

#[tokio::test]
async fn stripe_passes_the_payment_provider_contract_against_its_wire_format() {
    let fake = FakeStripe::start().await;
    let stripe = StripeProvider::new(fake.config()).unwrap();
    let methods = TestMethods {
        succeeds: PM_VISA,
        declined: PM_DECLINED,
        decline_code: "card_declined",
        requires_action: PM_3DS,
        unknown: "pm_card_bogus",
    };
    suite::payment_provider_contract(&stripe, methods, "pi_missing").await;

    let money = bazaar_core::money::Money::new(2500, bazaar_core::money::Currency::EUR);
    let paid = stripe.create_intent(money, bazaar_core::ids::OrderId::new(), "w-create").await.unwrap();
    let declined = stripe.create_intent(money, bazaar_core::ids::OrderId::new(), "w-create-2").await.unwrap();
    stripe.confirm(&paid.provider_ref, PM_VISA, "w-confirm").await.unwrap();
    stripe.confirm(&declined.provider_ref, PM_DECLINED, "w-confirm-2").await.unwrap();
    stripe
        .refund(&paid.provider_ref, bazaar_core::money::Money::new(1000, bazaar_core::money::Currency::EUR), "w-refund")
        .await
        .unwrap();
    let event = |kind: WebhookKind, provider_ref: &str, amount, status, decline_code: Option<&str>| WebhookEvent {
        id: String::new(),
        kind,
        provider_ref: provider_ref.to_owned(),
        amount,
        currency: "EUR".into(),
        status,
        decline_code: decline_code.map(Into::into),
    };
    let cases = [
        (
            "payment_intent.succeeded",
            &paid.provider_ref,
            event(WebhookKind::PaymentSucceeded, &paid.provider_ref, 2500, IntentStatus::Succeeded, None),
        ),
        (
            "payment_intent.payment_failed",
            &declined.provider_ref,
            event(
                WebhookKind::PaymentFailed,
                &declined.provider_ref,
                2500,
                IntentStatus::RequiresPaymentMethod,
                Some("card_declined"),
            ),
        ),
        (
            "charge.refunded",
            &paid.provider_ref,
            event(WebhookKind::Refunded, &paid.provider_ref, 1000, IntentStatus::Succeeded, None),
        ),
    ]
    .map(|(kind, id, mut expected)| {
        let (signature, body) = fake.signed_event(kind, id, T);
        expected.id = serde_json::from_slice::<serde_json::Value>(&body).unwrap()["id"].as_str().unwrap().to_owned();
        SignedCase { signature, body, signed_at: at(T), expected }
    });
    suite::webhooks(
        &stripe,
        &cases,
        &|body, at| webhook::sign(WEBHOOK_SECRET.as_bytes(), at.timestamp(), body),
        &|body, at| webhook::sign(b"whsec_someone_else", at.timestamp(), body),
    );
}
