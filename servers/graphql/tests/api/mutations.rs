//! Mutations: register, login, placeOrder (idempotent), pay.

use bazaar_core::catalog::Pricing;
use serde_json::json;

use crate::common::{TestApp, usd};

const REGISTER: &str = "mutation($input: RegisterInput!) {
    register(input: $input) { user { id email name role } accessToken tokenType expiresIn refreshToken } }";
const LOGIN: &str = "mutation($email: String!, $password: String!) {
    login(email: $email, password: $password) { user { id } accessToken } }";
const PLACE: &str = "mutation($ids: [ID!]!, $key: String) {
    placeOrder(productIds: $ids, idempotencyKey: $key) {
        order { id status total { minor currency } lines { title unitPrice { minor } platformFee { minor } vendorNet { minor } } }
        payment { id status amount { minor } } } }";
const PAY: &str =
    "mutation($id: ID!, $pm: String!) { pay(orderId: $id, paymentMethod: $pm) { status attempts lastDeclineCode } }";

#[tokio::test]
async fn register_then_login_gives_working_tokens() {
    let app = TestApp::new();
    let input = json!({ "email": "Ada@Example.com", "password": "password123", "name": "Ada" });
    let reply = app.gql(REGISTER, json!({ "input": input }), None).await;
    let session = &reply.data()["register"];
    assert_eq!(session["user"]["email"], "ada@example.com", "normalised by the core");
    assert_eq!(session["user"]["role"], "CUSTOMER", "the default role");
    assert_eq!(session["tokenType"], "Bearer");
    assert_eq!(session["expiresIn"], 900);
    assert!(session["refreshToken"].as_str().is_some_and(|t| !t.is_empty()));

    let again = app.gql(REGISTER, json!({ "input": input }), None).await;
    assert_eq!(again.code(), "conflict", "the e-mail is taken");
    let short = json!({ "email": "bob@example.com", "password": "short", "name": "Bob" });
    let invalid = app.gql(REGISTER, json!({ "input": short }), None).await;
    assert_eq!(invalid.code(), "validation");
    assert_eq!(invalid.json["errors"][0]["extensions"]["details"][0]["field"], "password");
    // Admin is not a role anyone can pick: the schema has no such value.
    let admin = json!({ "email": "eve@example.com", "password": "password123", "name": "Eve", "role": "ADMIN" });
    assert_eq!(app.gql(REGISTER, json!({ "input": admin }), None).await.code(), "malformed");

    let login = app.gql(LOGIN, json!({ "email": "ada@example.com", "password": "password123" }), None).await;
    let token = login.data()["login"]["accessToken"].as_str().unwrap().to_owned();
    let me = app.gql("{ me { email } }", json!({}), Some(&token)).await;
    assert_eq!(me.data()["me"]["email"], "ada@example.com");
    let wrong = app.gql(LOGIN, json!({ "email": "ada@example.com", "password": "wrong-password" }), None).await;
    assert_eq!(wrong.code(), "unauthenticated");
}

#[tokio::test]
async fn login_spends_the_ip_quota() {
    let two = std::num::NonZeroU32::new(2).unwrap();
    let per_client = bazaar_core::resilience::rate_limit::Quota::per_minute(two).allow_burst(two);
    let app = TestApp::custom(|b| {
        let limits = bazaar_core::auth::SignInLimits { per_client, ..Default::default() };
        b.sign_in_limits(limits)
    });
    let router = app.router();
    let vars = json!({ "email": "nobody@example.com", "password": "password123" });
    for _ in 0..2 {
        assert_eq!(app.gql_with(&router, LOGIN, vars.clone(), None).await.code(), "unauthenticated");
    }
    let limited = app.gql_with(&router, LOGIN, vars, None).await;
    assert_eq!(limited.code(), "rate_limited");
    assert!(limited.json["errors"][0]["extensions"]["retryAfter"].as_u64().is_some_and(|s| s >= 1));
}

#[tokio::test]
async fn login_spends_the_account_quota_from_any_address() {
    let one = std::num::NonZeroU32::new(1).unwrap();
    let per_account = bazaar_core::resilience::rate_limit::Quota::per_minute(one).allow_burst(one);
    let app = TestApp::custom(|b| {
        let many = bazaar_core::resilience::rate_limit::Quota::per_second(std::num::NonZeroU32::new(1000).unwrap());
        b.sign_in_limits(bazaar_core::auth::SignInLimits { per_client: many, per_account })
    });
    let vars = json!({ "email": "victim@example.com", "password": "password123" });
    assert_eq!(app.gql(LOGIN, vars.clone(), None).await.code(), "unauthenticated");
    assert_eq!(app.gql(LOGIN, vars, None).await.code(), "rate_limited");
    let other = json!({ "email": "other@example.com", "password": "password123" });
    assert_eq!(app.gql(LOGIN, other, None).await.code(), "unauthenticated");
}

#[tokio::test]
async fn place_order_is_idempotent_per_key_and_pay_follows_the_sandbox() {
    let app = TestApp::new();
    let (vendor, admin, buyer) = (app.register("vendor").await, app.admin().await, app.register("customer").await);
    let a = app.approved(&vendor, &admin, "Agent A", usd(1_999)).await;
    let b = app.approved(&vendor, &admin, "Agent B", usd(500)).await;
    let vars = json!({ "ids": [a.id.to_string()], "key": "checkout-1" });

    let first = app.gql(PLACE, vars.clone(), Some(&buyer.token)).await;
    let placed = &first.data()["placeOrder"];
    assert_eq!(placed["order"]["status"], "PENDING_PAYMENT");
    assert_eq!(placed["order"]["total"], json!({ "minor": 1999, "currency": "USD" }));
    let line = &placed["order"]["lines"][0];
    let (fee, net) = (line["platformFee"]["minor"].as_i64().unwrap(), line["vendorNet"]["minor"].as_i64().unwrap());
    assert_eq!(fee + net, 1999, "the split is exact");
    assert_eq!(placed["payment"]["status"], "REQUIRES_PAYMENT_METHOD");
    let order_id = placed["order"]["id"].as_str().unwrap().to_owned();

    let replay = app.gql(PLACE, vars, Some(&buyer.token)).await;
    assert_eq!(replay.data()["placeOrder"]["order"]["id"], order_id.as_str(), "same key, same body: the first order");
    let other_body = json!({ "ids": [b.id.to_string()], "key": "checkout-1" });
    assert_eq!(app.gql(PLACE, other_body, Some(&buyer.token)).await.code(), "idempotency_mismatch");
    let bad_id = app.gql(PLACE, json!({ "ids": ["nope"] }), Some(&buyer.token)).await;
    assert_eq!(bad_id.code(), "validation");
    assert_eq!(bad_id.json["errors"][0]["extensions"]["details"][0]["field"], "productIds[0]");

    let declined = app.gql(PAY, json!({ "id": order_id, "pm": "pm_card_declined" }), Some(&buyer.token)).await;
    let intent = &declined.data()["pay"];
    assert_eq!(intent["status"], "REQUIRES_PAYMENT_METHOD", "a decline is an answer, not an error");
    assert_eq!(intent["attempts"], 1);
    assert!(intent["lastDeclineCode"].is_string());
    let paid = app.gql(PAY, json!({ "id": order_id, "pm": "pm_card_visa" }), Some(&buyer.token)).await;
    assert_eq!(paid.data()["pay"]["status"], "SUCCEEDED");
    let twice = app.gql(PAY, json!({ "id": order_id, "pm": "pm_card_visa" }), Some(&buyer.token)).await;
    assert_eq!(twice.code(), "invalid_transition");

    app.pump().await;
    let order = app
        .gql(
            "query($id: ID!) { order(id: $id) { status licenses { productId status } } }",
            json!({ "id": order_id }),
            Some(&buyer.token),
        )
        .await;
    assert_eq!(order.data()["order"]["status"], "FULFILLED");
    assert_eq!(order.data()["order"]["licenses"][0]["productId"], a.id.to_string());

    // Holding an active license, the buyer cannot buy it again.
    let again = app.gql(PLACE, json!({ "ids": [a.id.to_string()] }), Some(&buyer.token)).await;
    assert_eq!(again.code(), "conflict");

    // A free order is paid at once.
    let free = app.approved(&vendor, &admin, "Free helper", Pricing::Free).await;
    let free_order = app.gql(PLACE, json!({ "ids": [free.id.to_string()] }), Some(&buyer.token)).await;
    assert_eq!(free_order.data()["placeOrder"]["order"]["total"]["minor"], 0);
}
