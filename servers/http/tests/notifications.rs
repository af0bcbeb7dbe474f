//! Handler tests of `GET /v1/notifications`: a purchase notifies its buyer
//! (and only them), paged, newest first.

mod common;
mod support;

use axum::http::StatusCode;
use serde_json::json;

use common::TestApp;
use support::{assert_error, assert_invalid, customer, listing, one_time, purchase};

#[tokio::test]
async fn a_purchase_notifies_the_buyer_only() {
    let app = TestApp::new();
    let item = listing(&app, one_time(1500)).await;
    let buyer = customer(&app).await;
    let (order_id, _) = purchase(&app, &buyer, &item).await;

    let r = app.send("GET", "/v1/notifications?limit=100", Some(&buyer.token), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let items = r.json["items"].as_array().unwrap();
    assert_eq!(r.json["total"].as_u64(), Some(items.len() as u64));
    let templates: Vec<&str> = items.iter().map(|n| n["template"].as_str().unwrap()).collect();
    assert!(templates.contains(&"order_placed"), "{templates:?}");
    assert!(templates.contains(&"license_issued"), "{templates:?}");
    let placed = items.iter().find(|n| n["template"] == "order_placed" && n["channel"] == "in_app").expect("in-app");
    assert_eq!(placed["order_id"], order_id.as_str());
    assert_eq!(placed["status"], "sent");
    assert!(placed["body"].as_str().is_some_and(|b| !b.is_empty()));
    assert!(placed["created_at"].as_str().unwrap().contains('T'));

    // Nobody else sees them.
    let stranger = customer(&app).await;
    let r = app.send("GET", "/v1/notifications", Some(&stranger.token), None).await;
    assert_eq!(r.json, json!({"items": [], "total": 0, "page": 1, "limit": 20}));
    let r = app.send("GET", "/v1/notifications?limit=100", Some(&item.vendor.token), None).await;
    let vendor_templates: Vec<&str> =
        r.json["items"].as_array().unwrap().iter().map(|n| n["template"].as_str().unwrap()).collect();
    assert!(!vendor_templates.contains(&"order_placed"), "{vendor_templates:?}");
    assert!(vendor_templates.contains(&"product_approved"), "{vendor_templates:?}");
}

#[tokio::test]
async fn notifications_are_paged_newest_first() {
    let app = TestApp::new();
    let item = listing(&app, one_time(1500)).await;
    let buyer = customer(&app).await;
    purchase(&app, &buyer, &item).await;
    let all = app.send("GET", "/v1/notifications?limit=100", Some(&buyer.token), None).await;
    let total = all.json["total"].as_u64().unwrap();
    assert!(total >= 2, "{}", all.json);
    let times: Vec<&str> =
        all.json["items"].as_array().unwrap().iter().map(|n| n["created_at"].as_str().unwrap()).collect();
    let mut sorted = times.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted, "newest first");

    let r = app.send("GET", "/v1/notifications?page=2&limit=1", Some(&buyer.token), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        (r.json["page"].as_u64(), r.json["limit"].as_u64(), r.json["total"].as_u64()),
        (Some(2), Some(1), Some(total))
    );
    assert_eq!(r.json["items"].as_array().unwrap().len(), 1);
    assert_eq!(r.json["items"][0], all.json["items"][1]);
}

#[tokio::test]
async fn notifications_need_a_token_and_valid_paging() {
    let app = TestApp::new();
    let r = app.send("GET", "/v1/notifications", None, None).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "unauthenticated");
    let r = app.send("GET", "/v1/notifications", Some("garbage"), None).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "unauthenticated");
    let buyer = customer(&app).await;
    assert_invalid(&app.send("GET", "/v1/notifications?page=0", Some(&buyer.token), None).await, "page");
    assert_invalid(&app.send("GET", "/v1/notifications?limit=-1", Some(&buyer.token), None).await, "limit");
}
