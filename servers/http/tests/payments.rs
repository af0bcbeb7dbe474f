//! Handler tests of paying orders and of the provider webhook: the sandbox
//! cards, a declined card paid again, 3-D Secure finished by a webhook,
//! replayed and forged webhooks.

mod common;
mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use bazaar_core::payments::{IntentStatus, SignedWebhook, WebhookEvent, WebhookKind};
use serde_json::json;

use common::{Reply, TestApp};
use support::{assert_error, assert_invalid, customer, licenses, listing, one_time, order, pay, place};

/// Delivers a webhook to `/v1/webhooks/{provider}` with `signature` under `header_name`.
async fn deliver(app: &TestApp, provider: &str, header_name: &str, signature: Option<&str>, body: &[u8]) -> Reply {
    let mut req = Request::builder()
        .method("POST")
        .uri(format!("/v1/webhooks/{provider}"))
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(sig) = signature {
        req = req.header(header_name, sig);
    }
    app.call(req.body(Body::from(body.to_vec())).unwrap()).await
}

async fn deliver_signed(app: &TestApp, hook: &SignedWebhook) -> Reply {
    deliver(app, "sandbox", "Bazaar-Signature", Some(&hook.signature), &hook.body).await
}

#[tokio::test]
async fn paying_with_a_visa_card_succeeds_and_the_worker_fulfils_the_order() {
    let app = TestApp::new();
    let item = listing(&app, one_time(2500)).await;
    let buyer = customer(&app).await;
    let o = place(&app, &buyer, &[&item.product_id]).await;
    let id = o["id"].as_str().unwrap();

    let r = pay(&app, &buyer, id, "pm_card_visa").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["status"], "succeeded");
    assert_eq!(r.json["order_id"], id);
    assert_eq!(r.json["id"], o["payment"]["id"]);
    assert_eq!(r.json["amount"], json!({"minor": 2500, "currency": "USD"}));
    assert_eq!(r.json["provider"], "sandbox");
    assert_eq!(r.json["attempts"][0]["payment_method"], "pm_card_visa");
    assert_eq!(r.json["attempts"][0]["outcome"], "succeeded");
    assert_eq!(app.sandbox.captures(), 1);

    app.pump().await;
    let after = order(&app, &buyer, id).await;
    assert_eq!(after["status"], "fulfilled");
    assert_eq!(after["payment"]["status"], "succeeded");
    assert_eq!(licenses(&app, &buyer).await.len(), 1);

    // Paying a paid order is refused before the provider is called.
    assert_error(&pay(&app, &buyer, id, "pm_card_visa").await, StatusCode::CONFLICT, "invalid_transition");
    assert_eq!(app.sandbox.captures(), 1, "never captured twice");
}

#[tokio::test]
async fn a_declined_card_is_402_and_the_order_can_be_paid_again() {
    let app = TestApp::new();
    let item = listing(&app, one_time(1200)).await;
    let buyer = customer(&app).await;
    let o = place(&app, &buyer, &[&item.product_id]).await;
    let id = o["id"].as_str().unwrap();

    let r = pay(&app, &buyer, id, "pm_card_declined").await;
    assert_error(&r, StatusCode::PAYMENT_REQUIRED, "card_declined");
    let details = &r.json["error"]["details"];
    assert_eq!(details["decline_code"], "card_declined");
    assert_eq!(details["payment_intent"]["status"], "requires_payment_method");
    assert_eq!(details["payment_intent"]["attempts"][0]["outcome"], "failed");
    app.pump().await;
    let still = order(&app, &buyer, id).await;
    assert_eq!(still["status"], "pending_payment");
    assert_eq!(still["payment"]["status"], "requires_payment_method");
    assert!(licenses(&app, &buyer).await.is_empty());

    let r = pay(&app, &buyer, id, "pm_card_visa").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["status"], "succeeded");
    assert_eq!(r.json["attempts"].as_array().unwrap().len(), 2);
    app.pump().await;
    assert_eq!(order(&app, &buyer, id).await["status"], "fulfilled");
    assert_eq!(licenses(&app, &buyer).await.len(), 1);
}

#[tokio::test]
async fn a_payment_declined_too_often_takes_no_more_attempts() {
    let app = TestApp::new();
    let item = listing(&app, one_time(1200)).await;
    let buyer = customer(&app).await;
    let o = place(&app, &buyer, &[&item.product_id]).await;
    let id = o["id"].as_str().unwrap();
    for _ in 0..bazaar_core::payments::MAX_ATTEMPTS {
        assert_error(&pay(&app, &buyer, id, "pm_card_declined").await, StatusCode::PAYMENT_REQUIRED, "card_declined");
    }
    let captures = app.sandbox.captures();
    let r = pay(&app, &buyer, id, "pm_card_visa").await;
    assert_error(&r, StatusCode::CONFLICT, "conflict");
    assert!(r.json["error"]["message"].as_str().unwrap().contains("place the order again"), "{}", r.json);
    assert_eq!(app.sandbox.captures(), captures, "the provider was not asked");
    let still = order(&app, &buyer, id).await;
    assert_eq!(
        (&still["status"], &still["payment"]["status"]),
        (&json!("pending_payment"), &json!("requires_payment_method"))
    );
}

#[tokio::test]
async fn three_d_secure_requires_action_and_a_webhook_finishes_it_once() {
    let app = TestApp::new();
    let item = listing(&app, one_time(3000)).await;
    let buyer = customer(&app).await;
    let o = place(&app, &buyer, &[&item.product_id]).await;
    let id = o["id"].as_str().unwrap();

    let r = pay(&app, &buyer, id, "pm_card_3ds").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["status"], "requires_action");
    let provider_ref = r.json["provider_ref"].as_str().unwrap().to_owned();
    app.pump().await;
    assert_eq!(order(&app, &buyer, id).await["status"], "pending_payment");

    // The customer passes 3-D Secure at the provider, which calls back.
    app.sandbox.complete_action(&provider_ref, true).unwrap();
    let hooks = app.sandbox.take_webhooks();
    assert_eq!(hooks.len(), 2, "requires_action, then succeeded");
    for hook in &hooks {
        let r = deliver_signed(&app, hook).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.json);
        assert_eq!(r.json, json!({"received": true, "duplicate": false}));
    }
    assert!(app.market().pump().await.unwrap() > 0);
    let paid = order(&app, &buyer, id).await;
    assert_eq!(paid["status"], "fulfilled");
    assert_eq!(paid["payment"]["status"], "succeeded");
    assert_eq!(licenses(&app, &buyer).await.len(), 1);
}

#[tokio::test]
async fn a_replayed_webhook_changes_nothing() {
    let app = TestApp::new();
    let item = listing(&app, one_time(3000)).await;
    let buyer = customer(&app).await;
    let o = place(&app, &buyer, &[&item.product_id]).await;
    let id = o["id"].as_str().unwrap();
    let r = pay(&app, &buyer, id, "pm_card_3ds").await;
    let provider_ref = r.json["provider_ref"].as_str().unwrap().to_owned();
    app.sandbox.complete_action(&provider_ref, true).unwrap();
    let hooks = app.sandbox.take_webhooks();
    let succeeded = hooks.last().unwrap();
    assert_eq!(deliver_signed(&app, succeeded).await.json["duplicate"], false);
    app.pump().await;
    let before = order(&app, &buyer, id).await;
    let licenses_before = licenses(&app, &buyer).await;

    for _ in 0..2 {
        let r = deliver_signed(&app, succeeded).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.json);
        assert_eq!(r.json, json!({"received": true, "duplicate": true}));
    }
    assert_eq!(app.market().pump().await.unwrap(), 0, "a replay emits no event");
    assert_eq!(order(&app, &buyer, id).await, before);
    assert_eq!(licenses(&app, &buyer).await, licenses_before);
    assert_eq!(app.sandbox.captures(), 1);
}

#[tokio::test]
async fn forged_stale_or_unsigned_webhooks_are_400_invalid_signature() {
    let app = TestApp::new();
    let item = listing(&app, one_time(3000)).await;
    let buyer = customer(&app).await;
    let o = place(&app, &buyer, &[&item.product_id]).await;
    let id = o["id"].as_str().unwrap();
    let r = pay(&app, &buyer, id, "pm_card_3ds").await;
    let provider_ref = r.json["provider_ref"].as_str().unwrap().to_owned();
    app.sandbox.complete_action(&provider_ref, true).unwrap();
    let hook = app.sandbox.take_webhooks().pop().unwrap();

    let r = deliver(&app, "sandbox", "Bazaar-Signature", None, &hook.body).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_signature");
    let r = deliver(&app, "sandbox", "Bazaar-Signature", Some("t=1,v1=00"), &hook.body).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_signature");
    let r = deliver(&app, "sandbox", "Bazaar-Signature", Some("garbage"), &hook.body).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_signature");
    let mut tampered = hook.body.clone();
    let at = tampered.iter().position(|b| b.is_ascii_digit()).unwrap();
    tampered[at] = if tampered[at] == b'9' { b'1' } else { tampered[at] + 1 };
    let r = deliver(&app, "sandbox", "Bazaar-Signature", Some(&hook.signature), &tampered).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_signature");

    // Past the 300 s tolerance the genuine signature is refused too.
    app.clock.advance(chrono::Duration::seconds(301));
    assert_error(&deliver_signed(&app, &hook).await, StatusCode::BAD_REQUEST, "invalid_signature");
    app.clock.advance(chrono::Duration::seconds(-301));

    let r = deliver(&app, "paypal", "Bazaar-Signature", Some(&hook.signature), &hook.body).await;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");
    app.pump().await;
    assert_eq!(order(&app, &buyer, id).await["status"], "pending_payment", "nothing rejected was applied");

    // Stripe's header name is accepted as well.
    let r = deliver(&app, "sandbox", "Stripe-Signature", Some(&hook.signature), &hook.body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    app.pump().await;
    assert_eq!(order(&app, &buyer, id).await["status"], "fulfilled");
}

#[tokio::test]
async fn a_genuine_webhook_about_an_unknown_payment_is_404() {
    let app = TestApp::new();
    let event = WebhookEvent {
        id: "evt_unknown_1".into(),
        kind: WebhookKind::PaymentSucceeded,
        provider_ref: "pi_sandbox_999999".into(),
        amount: 100,
        currency: "USD".into(),
        status: IntentStatus::Succeeded,
        decline_code: None,
    };
    let hook = app.sandbox.sign_event(&event, app.market().clock.now());
    assert_error(&deliver_signed(&app, &hook).await, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn paying_checks_the_caller_the_order_and_the_method() {
    let app = TestApp::new();
    let item = listing(&app, one_time(800)).await;
    let buyer = customer(&app).await;
    let o = place(&app, &buyer, &[&item.product_id]).await;
    let id = o["id"].as_str().unwrap();
    let uri = format!("/v1/orders/{id}/pay");
    let visa = Some(json!({"payment_method": "pm_card_visa"}));

    assert_error(&app.send("POST", &uri, None, visa.clone()).await, StatusCode::UNAUTHORIZED, "unauthenticated");
    let stranger = customer(&app).await;
    assert_error(&pay(&app, &stranger, id, "pm_card_visa").await, StatusCode::FORBIDDEN, "forbidden");
    let admin = app.admin().await;
    assert_error(&pay(&app, &admin, id, "pm_card_visa").await, StatusCode::FORBIDDEN, "forbidden");
    let unknown = uuid::Uuid::now_v7().to_string();
    assert_error(&pay(&app, &buyer, &unknown, "pm_card_visa").await, StatusCode::NOT_FOUND, "not_found");

    assert_invalid(&pay(&app, &buyer, id, "pm_bitcoin").await, "payment_method");
    assert_invalid(&pay(&app, &buyer, id, "").await, "payment_method");
    assert_invalid(&app.send("POST", &uri, Some(&buyer.token), Some(json!({}))).await, "body");
    assert_invalid(
        &app.send("POST", &uri, Some(&buyer.token), Some(json!({"payment_method": 4}))).await,
        "payment_method",
    );
    let r = app.send("POST", &uri, Some(&buyer.token), Some(json!({"payment_method": "pm_card_visa", "x": 1}))).await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation");

    assert_eq!(order(&app, &buyer, id).await["status"], "pending_payment");
    assert_eq!(app.sandbox.captures(), 0, "no refused request reached the provider");
}
