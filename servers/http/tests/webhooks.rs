//! Handler tests of the vendor webhook routes: registering, listing,
//! changing, rotating, deleting, deliveries and replays, each the owner's
//! only, with bad input refused and nothing changed.

mod common;
mod support;

use axum::http::StatusCode;
use serde_json::json;

use common::TestApp;
use support::{assert_error, assert_invalid, customer, listing, one_time, purchase, vendor};

const HOOK: &str = "https://hooks.example.com/bazaar";

#[tokio::test]
async fn a_vendor_registers_an_endpoint_and_sees_its_secret_once() {
    let app = TestApp::new();
    let seller = vendor(&app).await;
    let body = json!({"url": HOOK, "events": ["license.issued", "order.paid"]});
    let r = app.send("POST", "/v1/webhook-endpoints", Some(&seller.token), Some(body)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    assert_eq!(r.json["url"], HOOK);
    assert_eq!(r.json["events"], json!(["order.paid", "license.issued"]), "a set, in the documented order");
    let secret = r.json["secret"].as_str().expect("the secret, once").to_string();
    assert!(secret.starts_with("whsec_") && secret.len() > 40, "{secret}");
    assert_eq!(r.json["previous_secret_expires_at"], json!(null));
    let id = r.json["id"].as_str().expect("id").to_string();

    let listed = app.send("GET", "/v1/webhook-endpoints", Some(&seller.token), None).await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(listed.json["items"].as_array().map(Vec::len), Some(1));
    assert!(listed.json["items"][0].get("secret").is_none(), "listings never show a secret: {}", listed.json);
    let one = app.send("GET", &format!("/v1/webhook-endpoints/{id}"), Some(&seller.token), None).await;
    assert_eq!(one.json["id"], id.as_str());
    assert!(one.json.get("secret").is_none());

    let rotated = app.send("POST", &format!("/v1/webhook-endpoints/{id}/secret"), Some(&seller.token), None).await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.json);
    assert_ne!(rotated.json["secret"].as_str(), Some(secret.as_str()));
    assert!(rotated.json["previous_secret_expires_at"].as_str().is_some(), "the old secret signs until then");
}

#[tokio::test]
async fn bad_endpoints_are_refused_naming_every_field_and_nothing_is_stored() {
    let app = TestApp::new();
    let seller = vendor(&app).await;
    let r = app
        .send(
            "POST",
            "/v1/webhook-endpoints",
            Some(&seller.token),
            Some(json!({"url": "http://169.254.169.254/latest", "events": ["order.shipped"]})),
        )
        .await;
    assert_invalid(&r, "url");
    assert_invalid(&r, "events");
    let r =
        app.send("POST", "/v1/webhook-endpoints", Some(&seller.token), Some(json!({"url": HOOK, "events": []}))).await;
    assert_invalid(&r, "events");
    let r = app
        .send(
            "POST",
            "/v1/webhook-endpoints",
            Some(&seller.token),
            Some(json!({"url": HOOK, "events": ["order.paid"], "secret": "mine"})),
        )
        .await;
    assert_invalid(&r, "secret");
    let listed = app.send("GET", "/v1/webhook-endpoints", Some(&seller.token), None).await;
    assert_eq!(listed.json["items"], json!([]));

    let buyer = customer(&app).await;
    let r = app
        .send("POST", "/v1/webhook-endpoints", Some(&buyer.token), Some(json!({"url": HOOK, "events": ["order.paid"]})))
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
    let r = app.send("GET", "/v1/webhook-endpoints", None, None).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "unauthenticated");
}

#[tokio::test]
async fn endpoints_are_changed_and_deleted_by_their_vendor_only() {
    let app = TestApp::new();
    let seller = vendor(&app).await;
    let other = vendor(&app).await;
    let r = app
        .send(
            "POST",
            "/v1/webhook-endpoints",
            Some(&seller.token),
            Some(json!({"url": HOOK, "events": ["order.paid"]})),
        )
        .await;
    let path = format!("/v1/webhook-endpoints/{}", r.json["id"].as_str().expect("id"));

    for (method, body) in [("GET", None), ("PATCH", Some(json!({"events": ["order.refunded"]}))), ("DELETE", None)] {
        let r = app.send(method, &path, Some(&other.token), body).await;
        assert_error(&r, StatusCode::NOT_FOUND, "not_found");
    }
    let r = app.send("PATCH", &path, Some(&seller.token), Some(json!({"url": "ftp://x"}))).await;
    assert_invalid(&r, "url");
    let r = app.send("PATCH", &path, Some(&seller.token), Some(json!({"events": ["order.refunded"]}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!((r.json["url"].as_str(), r.json["events"].clone()), (Some(HOOK), json!(["order.refunded"])));

    let r = app.send("DELETE", &path, Some(&seller.token), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = app.send("GET", &path, Some(&seller.token), None).await;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");
    let r = app.send("GET", "/v1/webhook-endpoints/not-a-uuid", Some(&seller.token), None).await;
    assert_eq!(r.status.as_u16() / 100, 4, "{}", r.json);
}

#[tokio::test]
async fn a_sale_shows_up_as_deliveries_of_the_vendors_endpoint() {
    let app = TestApp::new();
    let item = listing(&app, one_time(2_500)).await;
    let r = app
        .send(
            "POST",
            "/v1/webhook-endpoints",
            Some(&item.vendor.token),
            Some(json!({"url": HOOK, "events": ["order.paid", "license.issued"]})),
        )
        .await;
    let path = format!("/v1/webhook-endpoints/{}", r.json["id"].as_str().expect("id"));
    let buyer = customer(&app).await;
    let (order_id, _) = purchase(&app, &buyer, &item).await;
    app.pump().await;

    // No transport is set in this app: deliveries wait, pending.
    let r = app.send("GET", &format!("{path}/deliveries"), Some(&item.vendor.token), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let types: Vec<_> = r.json["items"].as_array().expect("items").iter().map(|d| d["event_type"].clone()).collect();
    assert_eq!(types, [json!("license.issued"), json!("order.paid")], "newest first");
    assert_eq!(r.json["items"][1]["status"], "pending");
    let body: serde_json::Value =
        serde_json::from_str(r.json["items"][1]["body"].as_str().expect("body")).expect("JSON");
    assert_eq!(body["data"]["order_id"], order_id.as_str());
    assert_eq!(body["data"]["gross"], json!({"minor": 2500, "currency": "USD"}));

    let r = app.send("GET", &format!("{path}/deliveries?status=dead"), Some(&item.vendor.token), None).await;
    assert_eq!(r.json["total"], 0);
    let r = app.send("GET", &format!("{path}/deliveries?status=lost"), Some(&item.vendor.token), None).await;
    assert_eq!(r.status.as_u16() / 100, 4, "{}", r.json);

    let listed = app.send("GET", &format!("{path}/deliveries"), Some(&item.vendor.token), None).await;
    let delivery = listed.json["items"][0]["id"].as_str().expect("id").to_string();
    let r = app
        .send("POST", &format!("{path}/replay"), Some(&item.vendor.token), Some(json!({"delivery_id": delivery})))
        .await;
    assert_error(&r, StatusCode::CONFLICT, "invalid_transition");
    let unknown = json!({"delivery_id": uuid::Uuid::now_v7()});
    let r = app.send("POST", &format!("{path}/replay"), Some(&item.vendor.token), Some(unknown)).await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation");
    assert_eq!(r.json["error"]["details"][0]["field"], "delivery_id");
    let r = app.send("POST", &format!("{path}/replay"), Some(&item.vendor.token), Some(json!({}))).await;
    assert_eq!((r.status, r.json.clone()), (StatusCode::OK, json!({"replayed": 0})));
    let stranger = vendor(&app).await;
    let r = app.send("GET", &format!("{path}/deliveries"), Some(&stranger.token), None).await;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");
}
