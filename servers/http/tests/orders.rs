//! Handler tests of the order routes: placing (with idempotency), reading,
//! cancelling and refunding, with every role and error shape.

mod common;
mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use bazaar_core::orders::{PlaceOrder, request_hash};
use serde_json::{Value, json};

use common::TestApp;
use support::{assert_error, assert_invalid, customer, free, listing, one_time, order, pay, place, purchase};

/// `POST /v1/orders` with an `Idempotency-Key`.
async fn place_keyed(app: &TestApp, token: &str, key: &str, body: Value) -> common::Reply {
    let req = Request::builder()
        .method("POST")
        .uri("/v1/orders")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .header("Idempotency-Key", key)
        .body(Body::from(body.to_string()))
        .unwrap();
    app.call(req).await
}

#[tokio::test]
async fn placing_an_order_answers_201_with_lines_total_and_payment() {
    let app = TestApp::new();
    let item = listing(&app, one_time(1999)).await;
    let buyer = customer(&app).await;
    let o = place(&app, &buyer, &[&item.product_id]).await;
    assert_eq!(o["status"], "pending_payment");
    assert_eq!(o["buyer_id"], buyer.user_id.as_str());
    assert_eq!(o["total"], json!({"minor": 1999, "currency": "USD"}));
    let lines = o["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["product_id"], item.product_id.as_str());
    assert_eq!(lines[0]["vendor_id"], item.vendor.user_id.as_str());
    let fee = lines[0]["platform_fee"]["minor"].as_i64().unwrap();
    let net = lines[0]["vendor_net"]["minor"].as_i64().unwrap();
    assert_eq!(fee + net, 1999, "the fee split is exact");
    assert!(fee > 0 && net > 0);
    assert!(o["payment"]["id"].as_str().is_some_and(|id| uuid::Uuid::parse_str(id).is_ok()), "{o}");
    assert_eq!(o["payment"]["status"], "requires_payment_method");
    assert!(o["created_at"].as_str().unwrap().contains('T'), "RFC 3339");
}

#[tokio::test]
async fn a_free_order_is_paid_at_once_and_fulfilled_by_the_worker() {
    let app = TestApp::new();
    let item = listing(&app, free()).await;
    let buyer = customer(&app).await;
    let o = place(&app, &buyer, &[&item.product_id]).await;
    assert_eq!(o["status"], "paid");
    assert_eq!(o["total"]["minor"], 0);
    assert_eq!(o["payment"]["status"], "succeeded");
    app.pump().await;
    let id = o["id"].as_str().unwrap();
    assert_eq!(order(&app, &buyer, id).await["status"], "fulfilled");
}

#[tokio::test]
async fn the_same_idempotency_key_and_body_place_one_order() {
    let app = TestApp::new();
    let item = listing(&app, one_time(500)).await;
    let buyer = customer(&app).await;
    let body = json!({"items": [{"product_id": item.product_id}]});
    let first = place_keyed(&app, &buyer.token, "order-key-1", body.clone()).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.json);
    let again = place_keyed(&app, &buyer.token, "order-key-1", body.clone()).await;
    assert_eq!(again.status, StatusCode::CREATED, "a replay answers like the first: {}", again.json);
    assert_eq!(again.json["id"], first.json["id"]);
    assert_eq!(again.json["total"], first.json["total"]);
    assert_eq!(again.json["payment"]["id"], first.json["payment"]["id"]);

    let list = app.send("GET", "/v1/orders", Some(&buyer.token), None).await;
    assert_eq!(list.json["total"], 1, "one order for two identical keyed requests: {}", list.json);

    // Another buyer's identical key is theirs alone.
    let other = customer(&app).await;
    let theirs = place_keyed(&app, &other.token, "order-key-1", body).await;
    assert_eq!(theirs.status, StatusCode::CREATED);
    assert_ne!(theirs.json["id"], first.json["id"]);
}

#[tokio::test]
async fn the_same_key_with_another_body_is_409_idempotency_mismatch() {
    let app = TestApp::new();
    let a = listing(&app, one_time(500)).await;
    let b = listing(&app, one_time(700)).await;
    let buyer = customer(&app).await;
    let first = place_keyed(&app, &buyer.token, "k-2", json!({"items": [{"product_id": a.product_id}]})).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let other = place_keyed(&app, &buyer.token, "k-2", json!({"items": [{"product_id": b.product_id}]})).await;
    assert_error(&other, StatusCode::CONFLICT, "idempotency_mismatch");
    let list = app.send("GET", "/v1/orders", Some(&buyer.token), None).await;
    assert_eq!(list.json["total"], 1);
}

#[tokio::test]
async fn a_key_still_in_flight_is_409_conflict_until_its_lease_ends_then_a_retry_places_one_order() {
    let app = TestApp::new();
    let item = listing(&app, one_time(500)).await;
    let buyer = customer(&app).await;
    // Claim the key as a concurrent first request would, without finishing it.
    let request = PlaceOrder::new([item.product_id.parse().unwrap()]);
    let hash = request_hash(&request).unwrap();
    let now = app.market().clock.now();
    let dead = bazaar_core::orders::IdempotencyClaim::new(buyer.user_id.clone(), "k-busy");
    let terms = bazaar_core::orders::IdempotencyTerms::default();
    let begun = app.ports.idempotency.begin(&dead, &hash, now, terms).await.unwrap();
    assert_eq!(begun, bazaar_core::orders::IdempotencyBegin::Started);
    let body = json!({"items": [{"product_id": item.product_id}]});
    let r = place_keyed(&app, &buyer.token, "k-busy", body.clone()).await;
    assert_error(&r, StatusCode::CONFLICT, "conflict");
    let list = app.send("GET", "/v1/orders", Some(&buyer.token), None).await;
    assert_eq!(list.json["total"], 0);

    // The first request died holding the key: once its lease ends, the
    // retry takes the key over and places the order, exactly once.
    app.clock.advance(terms.lease - chrono::Duration::seconds(1));
    let r = place_keyed(&app, &buyer.token, "k-busy", body.clone()).await;
    assert_error(&r, StatusCode::CONFLICT, "conflict");
    app.clock.advance(chrono::Duration::seconds(1));
    let placed = place_keyed(&app, &buyer.token, "k-busy", body.clone()).await;
    assert_eq!(placed.status, StatusCode::CREATED, "{:?}", placed.json);
    let again = place_keyed(&app, &buyer.token, "k-busy", body).await;
    assert_eq!(again.json["id"], placed.json["id"], "later retries replay the one order");
    let late = app.ports.idempotency.complete(&dead, bazaar_core::orders::StoredResponse { body: json!({}) }).await;
    assert!(late.is_err(), "the dead request's claim lost the key");
    let list = app.send("GET", "/v1/orders", Some(&buyer.token), None).await;
    assert_eq!(list.json["total"], 1);
}

#[tokio::test]
async fn a_bad_idempotency_key_is_422() {
    let app = TestApp::new();
    let item = listing(&app, one_time(500)).await;
    let buyer = customer(&app).await;
    let long = "k".repeat(256);
    let r = place_keyed(&app, &buyer.token, &long, json!({"items": [{"product_id": item.product_id}]})).await;
    assert_invalid(&r, "idempotency_key");
}

#[tokio::test]
async fn invalid_order_bodies_are_422_naming_the_field_and_bad_json_is_400() {
    let app = TestApp::new();
    let item = listing(&app, one_time(500)).await;
    let buyer = customer(&app).await;
    let t = Some(buyer.token.as_str());
    assert_invalid(&app.send("POST", "/v1/orders", t, Some(json!({"items": []}))).await, "items");
    assert_invalid(&app.send("POST", "/v1/orders", t, Some(json!({}))).await, "body");
    let r = app.send("POST", "/v1/orders", t, Some(json!({"items": [{"product_id": "nope"}]}))).await;
    assert_invalid(&r, "items[0].product_id");
    let unknown = uuid::Uuid::now_v7().to_string();
    let r = app.send("POST", "/v1/orders", t, Some(json!({"items": [{"product_id": unknown}]}))).await;
    assert_invalid(&r, "items[0].product_id");
    let r = app
        .send(
            "POST",
            "/v1/orders",
            t,
            Some(json!({"items": [{"product_id": item.product_id}, {"product_id": item.product_id}]})),
        )
        .await;
    assert_invalid(&r, "items[1].product_id");
    let r = app.send("POST", "/v1/orders", t, Some(json!({"items": [], "discount": 100}))).await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation");

    let req = Request::builder()
        .method("POST")
        .uri("/v1/orders")
        .header(header::AUTHORIZATION, format!("Bearer {}", buyer.token))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{\"items\": ["))
        .unwrap();
    assert_error(&app.call(req).await, StatusCode::BAD_REQUEST, "malformed");
}

#[tokio::test]
async fn a_vendor_cannot_buy_their_own_product() {
    let app = TestApp::new();
    let item = listing(&app, one_time(500)).await;
    let r = app
        .send("POST", "/v1/orders", Some(&item.vendor.token), Some(json!({"items": [{"product_id": item.product_id}]})))
        .await;
    assert_invalid(&r, "items[0].product_id");
}

#[tokio::test]
async fn buying_what_you_already_hold_is_409() {
    let app = TestApp::new();
    let item = listing(&app, one_time(500)).await;
    let buyer = customer(&app).await;
    purchase(&app, &buyer, &item).await;
    let r = app
        .send("POST", "/v1/orders", Some(&buyer.token), Some(json!({"items": [{"product_id": item.product_id}]})))
        .await;
    assert_error(&r, StatusCode::CONFLICT, "conflict");
}

#[tokio::test]
async fn orders_need_a_valid_token() {
    let app = TestApp::new();
    let body = Some(json!({"items": [{"product_id": uuid::Uuid::now_v7()}]}));
    assert_error(
        &app.send("POST", "/v1/orders", None, body.clone()).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );
    assert_error(
        &app.send("POST", "/v1/orders", Some("not-a-jwt"), body).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );
    assert_error(&app.send("GET", "/v1/orders", None, None).await, StatusCode::UNAUTHORIZED, "unauthenticated");
    let id = uuid::Uuid::now_v7();
    for (method, uri) in [
        ("GET", format!("/v1/orders/{id}")),
        ("POST", format!("/v1/orders/{id}/cancel")),
        ("POST", format!("/v1/orders/{id}/refund")),
    ] {
        assert_error(&app.send(method, &uri, None, None).await, StatusCode::UNAUTHORIZED, "unauthenticated");
    }
}

#[tokio::test]
async fn listing_orders_shows_only_mine_paged() {
    let app = TestApp::new();
    let a = listing(&app, one_time(500)).await;
    let b = listing(&app, one_time(900)).await;
    let buyer = customer(&app).await;
    let other = customer(&app).await;
    let first = place(&app, &buyer, &[&a.product_id]).await;
    let second = place(&app, &buyer, &[&b.product_id]).await;
    place(&app, &other, &[&a.product_id]).await;

    let r = app.send("GET", "/v1/orders", Some(&buyer.token), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        (r.json["total"].as_u64(), r.json["page"].as_u64(), r.json["limit"].as_u64()),
        (Some(2), Some(1), Some(20))
    );
    let ids: Vec<&Value> = r.json["items"].as_array().unwrap().iter().map(|o| &o["id"]).collect();
    assert_eq!(ids, [&second["id"], &first["id"]], "newest first");

    let r = app.send("GET", "/v1/orders?page=2&limit=1", Some(&buyer.token), None).await;
    assert_eq!(r.json["items"].as_array().unwrap().len(), 1);
    assert_eq!(r.json["items"][0]["id"], first["id"]);
    assert_eq!((r.json["page"].as_u64(), r.json["limit"].as_u64()), (Some(2), Some(1)));

    assert_invalid(&app.send("GET", "/v1/orders?page=0", Some(&buyer.token), None).await, "page");
    assert_invalid(&app.send("GET", "/v1/orders?limit=x", Some(&buyer.token), None).await, "limit");
}

#[tokio::test]
async fn an_order_is_visible_to_its_buyer_and_admins_only() {
    let app = TestApp::new();
    let item = listing(&app, one_time(500)).await;
    let buyer = customer(&app).await;
    let o = place(&app, &buyer, &[&item.product_id]).await;
    let id = o["id"].as_str().unwrap();
    assert_eq!(order(&app, &buyer, id).await["id"], id);
    let admin = app.admin().await;
    assert_eq!(order(&app, &admin, id).await["id"], id);

    let stranger = customer(&app).await;
    let r = app.send("GET", &format!("/v1/orders/{id}"), Some(&stranger.token), None).await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
    let r = app.send("GET", &format!("/v1/orders/{id}"), Some(&item.vendor.token), None).await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden");

    let r = app.send("GET", &format!("/v1/orders/{}", uuid::Uuid::now_v7()), Some(&buyer.token), None).await;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");
    let r = app.send("GET", "/v1/orders/not-a-uuid", Some(&buyer.token), None).await;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn a_pending_order_can_be_canceled_by_its_buyer_and_then_not_paid() {
    let app = TestApp::new();
    let item = listing(&app, one_time(500)).await;
    let buyer = customer(&app).await;
    let o = place(&app, &buyer, &[&item.product_id]).await;
    let id = o["id"].as_str().unwrap();

    let stranger = customer(&app).await;
    let r = app.send("POST", &format!("/v1/orders/{id}/cancel"), Some(&stranger.token), None).await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden");

    let r = app.send("POST", &format!("/v1/orders/{id}/cancel"), Some(&buyer.token), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["status"], "canceled");
    assert_eq!(r.json["payment"]["status"], "canceled");

    assert_error(&pay(&app, &buyer, id, "pm_card_visa").await, StatusCode::CONFLICT, "invalid_transition");
    let again = app.send("POST", &format!("/v1/orders/{id}/cancel"), Some(&buyer.token), None).await;
    assert_error(&again, StatusCode::CONFLICT, "invalid_transition");
    let r = app.send("POST", &format!("/v1/orders/{}/cancel", uuid::Uuid::now_v7()), Some(&buyer.token), None).await;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn only_admins_refund_and_only_paid_orders() {
    let app = TestApp::new();
    let item = listing(&app, one_time(1500)).await;
    let buyer = customer(&app).await;
    let admin = app.admin().await;

    let pending = place(&app, &buyer, &[&item.product_id]).await;
    let pending_id = pending["id"].as_str().unwrap();
    let r = app.send("POST", &format!("/v1/orders/{pending_id}/refund"), Some(&admin.token), None).await;
    assert_error(&r, StatusCode::CONFLICT, "invalid_transition");
    app.send("POST", &format!("/v1/orders/{pending_id}/cancel"), Some(&buyer.token), None).await;

    let (order_id, _) = purchase(&app, &buyer, &item).await;
    for who in [&buyer, &item.vendor] {
        let r = app.send("POST", &format!("/v1/orders/{order_id}/refund"), Some(&who.token), None).await;
        assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
    }
    assert_eq!(order(&app, &buyer, &order_id).await["status"], "fulfilled");

    let r = app.send("POST", &format!("/v1/orders/{order_id}/refund"), Some(&admin.token), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["status"], "refunded");
    assert_eq!(r.json["id"], order_id.as_str());

    let again = app.send("POST", &format!("/v1/orders/{order_id}/refund"), Some(&admin.token), None).await;
    assert_error(&again, StatusCode::CONFLICT, "invalid_transition");
    let r = app.send("POST", &format!("/v1/orders/{}/refund", uuid::Uuid::now_v7()), Some(&admin.token), None).await;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn the_commerce_routes_are_in_the_openapi_document() {
    let app = TestApp::new();
    let r = app.send("GET", "/openapi.json", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    let paths = &r.json["paths"];
    for (path, method) in [
        ("/v1/orders", "post"),
        ("/v1/orders", "get"),
        ("/v1/orders/{id}", "get"),
        ("/v1/orders/{id}/cancel", "post"),
        ("/v1/orders/{id}/refund", "post"),
        ("/v1/orders/{id}/pay", "post"),
        ("/v1/webhooks/{provider}", "post"),
        ("/v1/licenses", "get"),
        ("/v1/licenses/validate", "post"),
        ("/v1/licenses/{id}", "get"),
        ("/v1/licenses/{id}/activations", "post"),
        ("/v1/licenses/{id}/activations/{fingerprint}", "delete"),
        ("/v1/licenses/{id}/downloads", "post"),
        ("/v1/downloads/{token}", "get"),
        ("/v1/licenses/{id}/revoke", "post"),
        ("/v1/notifications", "get"),
    ] {
        assert!(paths[path][method].is_object(), "{method} {path} is not documented");
    }
    assert!(paths["/v1/orders/{id}/pay"]["post"]["responses"]["402"].is_object());
    assert!(paths["/v1/orders"]["post"]["responses"]["409"].is_object());
    let schemas = &r.json["components"]["schemas"];
    for schema in ["OrderResponse", "PaymentIntentResponse", "LicenseResponse", "ValidationResponse", "Money"] {
        assert!(schemas[schema].is_object(), "schema {schema} missing");
    }
}
