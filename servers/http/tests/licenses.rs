//! Handler tests of the license routes: the purchase end to end over HTTP,
//! validation codes, activations, signed downloads and their denials,
//! revocation by refund and by an admin, and who may see what.

mod common;
mod support;

use axum::http::StatusCode;
use bazaar_core::auth::Role;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use common::{Reply, Session, TestApp};
use support::{
    Listing, add_asset, assert_error, assert_invalid, customer, licenses, listing, monthly, one_time, order, purchase,
};

async fn validate(app: &TestApp, key: &str, fingerprint: Option<&str>) -> Reply {
    let mut body = json!({"key": key});
    if let Some(f) = fingerprint {
        body["fingerprint"] = json!(f);
    }
    let r = app.send("POST", "/v1/licenses/validate", None, Some(body)).await;
    assert_eq!(r.status, StatusCode::OK, "validate always answers 200: {}", r.json);
    r
}

async fn activate(app: &TestApp, who: &Session, license_id: &str, fingerprint: &str) -> Reply {
    app.send(
        "POST",
        &format!("/v1/licenses/{license_id}/activations"),
        Some(&who.token),
        Some(json!({"fingerprint": fingerprint})),
    )
    .await
}

async fn download_url(app: &TestApp, who: &Session, license_id: &str, asset_id: &str) -> Reply {
    app.send(
        "POST",
        &format!("/v1/licenses/{license_id}/downloads"),
        Some(&who.token),
        Some(json!({"asset_id": asset_id})),
    )
    .await
}

fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_owned()
}

/// A buyer who bought `item`; returns (buyer, order id, license).
async fn bought(app: &TestApp, item: &Listing) -> (Session, String, Value) {
    let buyer = customer(app).await;
    let (order_id, license) = purchase(app, &buyer, item).await;
    (buyer, order_id, license)
}

#[tokio::test]
async fn the_happy_purchase_over_http_ends_in_downloaded_bytes() {
    let app = TestApp::new();
    let item = listing(&app, one_time(4900)).await;
    let buyer = customer(&app).await;
    let (order_id, license) = purchase(&app, &buyer, &item).await;
    assert_eq!(order(&app, &buyer, &order_id).await["status"], "fulfilled");

    // Listed with its terms.
    assert_eq!(license["status"], "active");
    assert_eq!(license["order_id"], order_id.as_str());
    assert_eq!(license["buyer_id"], buyer.user_id.as_str());
    assert_eq!(license["kind"], json!({"type": "perpetual"}));
    assert_eq!(license["permissions"]["download"], true);
    assert_eq!(license["limits"]["max_activations"], 5);
    assert_eq!(license["downloads_used"], 0);
    let key = license["key"].as_str().unwrap();
    assert!(key.starts_with("key/"), "{key}");
    let license_id = id(&license);
    let one = app.send("GET", &format!("/v1/licenses/{license_id}"), Some(&buyer.token), None).await;
    assert_eq!(one.status, StatusCode::OK);
    assert_eq!(one.json, license);

    // A node-locked license validates once a machine is activated.
    let r = validate(&app, key, None).await;
    assert_eq!((r.json["valid"].as_bool(), r.json["code"].as_str()), (Some(false), Some("activation_required")));
    assert_eq!(r.json["license"]["id"], license_id.as_str());
    let act = activate(&app, &buyer, &license_id, "machine-1").await;
    assert_eq!(act.status, StatusCode::CREATED, "{}", act.json);
    assert_eq!(act.json["outcome"], "activated");
    assert_eq!(act.json["license"]["activations"][0]["fingerprint"], "machine-1");
    let r = validate(&app, key, Some("machine-1")).await;
    assert_eq!((r.json["valid"].as_bool(), r.json["code"].as_str()), (Some(true), Some("valid")));
    let r = validate(&app, key, Some("machine-2")).await;
    assert_eq!(r.json["code"], "fingerprint_mismatch");

    // Download: a signed URL on this server, then the bytes.
    let url = download_url(&app, &buyer, &license_id, &item.asset_id).await;
    assert_eq!(url.status, StatusCode::CREATED, "{}", url.json);
    let path = url.json["url"].as_str().unwrap();
    assert!(path.starts_with("/v1/downloads/"), "{path}");
    assert!(url.json["expires_at"].as_str().unwrap().contains('T'));
    let file = app.send("GET", path, None, None).await;
    assert_eq!(file.status, StatusCode::OK);
    assert_eq!(file.bytes, item.bytes);
    assert_eq!(file.headers["content-type"], "application/zip");
    let disposition = file.headers["content-disposition"].to_str().unwrap();
    assert!(disposition.starts_with("attachment; filename=\"agent.zip\""), "{disposition}");
    let sha = hex::encode(Sha256::digest(&item.bytes));
    assert_eq!(file.headers["etag"], format!("\"{sha}\"").as_str());
    assert_eq!(file.headers["x-content-sha256"], sha.as_str());
    assert_eq!(file.headers["cache-control"], "private, no-store");

    // The URL counted one download.
    let after = app.send("GET", &format!("/v1/licenses/{license_id}"), Some(&buyer.token), None).await;
    assert_eq!(after.json["downloads_used"], 1);
}

#[tokio::test]
async fn validating_unknown_or_forged_keys_is_200_not_found() {
    let app = TestApp::new();
    for key in ["", "nonsense", "key/AAAA.BBBB"] {
        let r = validate(&app, key, None).await;
        assert_eq!(r.json, json!({"valid": false, "code": "not_found"}), "{key}");
    }
    let item = listing(&app, one_time(100)).await;
    let (_, _, license) = bought(&app, &item).await;
    let key = license["key"].as_str().unwrap();
    // A key with a tampered signature does not verify: not found, not an error.
    let at = key.len() - 10;
    let swapped = if &key[at..=at] == "A" { "B" } else { "A" };
    let forged = format!("{}{swapped}{}", &key[..at], &key[at + 1..]);
    assert_eq!(validate(&app, &forged, None).await.json["code"], "not_found");

    let long = "f".repeat(129);
    let r = app.send("POST", "/v1/licenses/validate", None, Some(json!({"key": key, "fingerprint": long}))).await;
    assert_invalid(&r, "fingerprint");
    assert_invalid(&app.send("POST", "/v1/licenses/validate", None, Some(json!({}))).await, "body");
    let r = app.send("POST", "/v1/licenses/validate", None, Some(json!({"key": key, "extra": true}))).await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation");
}

#[tokio::test]
async fn a_refund_revokes_the_license_and_kills_its_downloads() {
    let app = TestApp::new();
    let item = listing(&app, one_time(4900)).await;
    let (buyer, order_id, license) = bought(&app, &item).await;
    let license_id = id(&license);
    let key = license["key"].as_str().unwrap();
    activate(&app, &buyer, &license_id, "machine-1").await;
    let url = download_url(&app, &buyer, &license_id, &item.asset_id).await;
    let path = url.json["url"].as_str().unwrap().to_owned();

    let admin = app.admin().await;
    let r = app.send("POST", &format!("/v1/orders/{order_id}/refund"), Some(&admin.token), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    app.pump().await;

    let r = validate(&app, key, Some("machine-1")).await;
    assert_eq!((r.json["valid"].as_bool(), r.json["code"].as_str()), (Some(false), Some("revoked")));
    assert_eq!(r.json["license"]["status"], "revoked");
    assert_error(&app.send("GET", &path, None, None).await, StatusCode::FORBIDDEN, "license_revoked");
    let again = download_url(&app, &buyer, &license_id, &item.asset_id).await;
    assert_error(&again, StatusCode::FORBIDDEN, "license_revoked");
    assert_error(&activate(&app, &buyer, &license_id, "machine-2").await, StatusCode::FORBIDDEN, "license_revoked");
    let listed = licenses(&app, &buyer).await;
    assert_eq!(listed[0]["status"], "revoked");
    assert!(listed[0]["revoked_at"].is_string());
}

#[tokio::test]
async fn a_buyer_without_a_license_for_the_asset_gets_no_download_url() {
    let app = TestApp::new();
    let item = listing(&app, one_time(900)).await;
    let other_item = listing(&app, one_time(900)).await;
    let (owner, _, license) = bought(&app, &item).await;
    let license_id = id(&license);

    // Someone else's license.
    let stranger = customer(&app).await;
    let r = download_url(&app, &stranger, &license_id, &item.asset_id).await;
    assert_error(&r, StatusCode::FORBIDDEN, "not_licensed");
    // A license that does not cover the asset's product.
    let r = download_url(&app, &owner, &license_id, &other_item.asset_id).await;
    assert_error(&r, StatusCode::FORBIDDEN, "not_licensed");
    // No such license at all.
    let r = download_url(&app, &owner, &uuid::Uuid::now_v7().to_string(), &item.asset_id).await;
    assert_error(&r, StatusCode::FORBIDDEN, "not_licensed");
    // The vendor holds no license for their own product either.
    let r = download_url(&app, &item.vendor, &license_id, &item.asset_id).await;
    assert_error(&r, StatusCode::FORBIDDEN, "not_licensed");

    // No such asset; a bad body; no token.
    let r = download_url(&app, &owner, &license_id, &uuid::Uuid::now_v7().to_string()).await;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");
    assert_invalid(&download_url(&app, &owner, &license_id, "not-a-uuid").await, "asset_id");
    let uri = format!("/v1/licenses/{license_id}/downloads");
    let r = app.send("POST", &uri, None, Some(json!({"asset_id": item.asset_id}))).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "unauthenticated");

    let after = app.send("GET", &format!("/v1/licenses/{license_id}"), Some(&owner.token), None).await;
    assert_eq!(after.json["downloads_used"], 0, "refused requests count nothing");
}

#[tokio::test]
async fn another_customer_cannot_see_or_use_someone_elses_license() {
    let app = TestApp::new();
    let item = listing(&app, one_time(900)).await;
    let (owner, _, license) = bought(&app, &item).await;
    let license_id = id(&license);
    activate(&app, &owner, &license_id, "machine-1").await;
    let stranger = customer(&app).await;

    let r = app.send("GET", &format!("/v1/licenses/{license_id}"), Some(&stranger.token), None).await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
    assert_error(&activate(&app, &stranger, &license_id, "thief-box").await, StatusCode::FORBIDDEN, "forbidden");
    let uri = format!("/v1/licenses/{license_id}/activations/machine-1");
    assert_error(&app.send("DELETE", &uri, Some(&stranger.token), None).await, StatusCode::FORBIDDEN, "forbidden");
    assert!(licenses(&app, &stranger).await.is_empty());

    // An admin may look but not use it.
    let admin = app.admin().await;
    let r = app.send("GET", &format!("/v1/licenses/{license_id}"), Some(&admin.token), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_error(&activate(&app, &admin, &license_id, "admin-box").await, StatusCode::FORBIDDEN, "forbidden");

    let mine = app.send("GET", &format!("/v1/licenses/{license_id}"), Some(&owner.token), None).await;
    assert_eq!(mine.json["activations"].as_array().unwrap().len(), 1, "nothing changed: {}", mine.json);
}

#[tokio::test]
async fn activations_are_idempotent_limited_and_can_be_freed() {
    let app = TestApp::new();
    let item = listing(&app, one_time(900)).await;
    let (buyer, _, license) = bought(&app, &item).await;
    let license_id = id(&license);
    let key = license["key"].as_str().unwrap();

    assert_eq!(activate(&app, &buyer, &license_id, "m-1").await.status, StatusCode::CREATED);
    let again = activate(&app, &buyer, &license_id, "m-1").await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.json["outcome"], "already_active");
    assert_eq!(again.json["license"]["activations"].as_array().unwrap().len(), 1);
    for n in 2..=5 {
        assert_eq!(activate(&app, &buyer, &license_id, &format!("m-{n}")).await.status, StatusCode::CREATED);
    }
    let full = activate(&app, &buyer, &license_id, "m-6").await;
    assert_error(&full, StatusCode::CONFLICT, "too_many_activations");
    assert_eq!(validate(&app, key, Some("m-6")).await.json["code"], "too_many_activations");

    let r = app.send("DELETE", &format!("/v1/licenses/{license_id}/activations/m-3"), Some(&buyer.token), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let left: Vec<&str> =
        r.json["activations"].as_array().unwrap().iter().map(|a| a["fingerprint"].as_str().unwrap()).collect();
    assert_eq!(left.len(), 4);
    assert!(!left.contains(&"m-3"));
    assert_eq!(validate(&app, key, Some("m-3")).await.json["code"], "fingerprint_mismatch");
    assert_eq!(activate(&app, &buyer, &license_id, "m-6").await.status, StatusCode::CREATED);

    let r = app.send("DELETE", &format!("/v1/licenses/{license_id}/activations/m-3"), Some(&buyer.token), None).await;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");
    assert_invalid(&activate(&app, &buyer, &license_id, &"x".repeat(129)).await, "fingerprint");
    assert_invalid(&activate(&app, &buyer, &license_id, "has space").await, "fingerprint");
    let uri = format!("/v1/licenses/{license_id}/activations");
    assert_invalid(&app.send("POST", &uri, Some(&buyer.token), Some(json!({"fp": "m"}))).await, "fp");
    let r = app.send("POST", &uri, None, Some(json!({"fingerprint": "m-9"}))).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "unauthenticated");
    let unknown = uuid::Uuid::now_v7().to_string();
    assert_error(&activate(&app, &buyer, &unknown, "m-1").await, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn download_urls_expire_run_out_and_refuse_tampering() {
    let app = TestApp::new();
    let item = listing(&app, one_time(900)).await;
    let readme = add_asset(&app, &item, "README.txt").await;
    let (buyer, _, license) = bought(&app, &item).await;
    let license_id = id(&license);

    let url = download_url(&app, &buyer, &license_id, &readme).await;
    let path = url.json["url"].as_str().unwrap().to_owned();
    let file = app.send("GET", &path, None, None).await;
    assert_eq!(file.status, StatusCode::OK);
    assert_eq!(file.bytes, b"readme");
    assert_eq!(file.headers["content-type"], "text/plain");
    // Fetching again within its lifetime works and costs nothing more.
    assert_eq!(app.send("GET", &path, None, None).await.status, StatusCode::OK);

    let tampered = format!("{}x", &path);
    assert_error(&app.send("GET", &tampered, None, None).await, StatusCode::FORBIDDEN, "url_invalid");
    assert_error(&app.send("GET", "/v1/downloads/garbage", None, None).await, StatusCode::FORBIDDEN, "url_invalid");

    app.clock.advance(chrono::Duration::seconds(301));
    assert_error(&app.send("GET", &path, None, None).await, StatusCode::FORBIDDEN, "url_expired");

    // 20 downloads per license: one used above, 19 more, then refused.
    for _ in 0..19 {
        assert_eq!(download_url(&app, &buyer, &license_id, &item.asset_id).await.status, StatusCode::CREATED);
    }
    let r = download_url(&app, &buyer, &license_id, &item.asset_id).await;
    assert_error(&r, StatusCode::FORBIDDEN, "download_limit_reached");
    let after = app.send("GET", &format!("/v1/licenses/{license_id}"), Some(&buyer.token), None).await;
    assert_eq!(after.json["downloads_used"], 20);
}

#[tokio::test]
async fn an_expired_subscription_license_is_refused_with_license_expired() {
    let app = TestApp::new();
    let item = listing(&app, monthly(900)).await;
    let (buyer, _, license) = bought(&app, &item).await;
    let license_id = id(&license);
    assert_eq!(license["kind"]["type"], "subscription");
    assert!(license["kind"]["renews_at"].is_string());
    activate(&app, &buyer, &license_id, "m-1").await;

    // A URL issued a minute before the period ends dies with the license,
    // although the URL itself would live five minutes.
    let renews_at: chrono::DateTime<chrono::Utc> = license["kind"]["renews_at"].as_str().unwrap().parse().unwrap();
    app.clock.set(renews_at - chrono::Duration::seconds(60));
    // Access tokens are short-lived; the buyer signs in again a month later.
    let buyer = support::reissue(&app, &buyer, Role::Customer);
    let url = download_url(&app, &buyer, &license_id, &item.asset_id).await;
    assert_eq!(url.status, StatusCode::CREATED, "{}", url.json);
    let path = url.json["url"].as_str().unwrap().to_owned();
    app.clock.advance(chrono::Duration::seconds(120));

    let key = license["key"].as_str().unwrap();
    assert_eq!(validate(&app, key, Some("m-1")).await.json["code"], "expired");
    let r = download_url(&app, &buyer, &license_id, &item.asset_id).await;
    assert_error(&r, StatusCode::FORBIDDEN, "license_expired");
    assert_error(&app.send("GET", &path, None, None).await, StatusCode::FORBIDDEN, "license_expired");
    let shown = app.send("GET", &format!("/v1/licenses/{license_id}"), Some(&buyer.token), None).await;
    assert_eq!(shown.json["status"], "expired");
}

#[tokio::test]
async fn only_admins_revoke_licenses() {
    let app = TestApp::new();
    let item = listing(&app, one_time(900)).await;
    let (buyer, _, license) = bought(&app, &item).await;
    let license_id = id(&license);
    let uri = format!("/v1/licenses/{license_id}/revoke");

    for who in [&buyer, &item.vendor] {
        assert_error(&app.send("POST", &uri, Some(&who.token), None).await, StatusCode::FORBIDDEN, "forbidden");
    }
    assert_error(&app.send("POST", &uri, None, None).await, StatusCode::UNAUTHORIZED, "unauthenticated");
    let admin = app.admin().await;
    assert_invalid(&app.send("POST", &uri, Some(&admin.token), Some(json!({"reason": 7}))).await, "reason");

    let r = app.send("POST", &uri, Some(&admin.token), Some(json!({"reason": "chargeback"}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["status"], "revoked");
    assert_eq!(r.json["revoked_reason"], "chargeback");
    let key = license["key"].as_str().unwrap();
    assert_eq!(validate(&app, key, None).await.json["code"], "revoked");
    let r = download_url(&app, &buyer, &license_id, &item.asset_id).await;
    assert_error(&r, StatusCode::FORBIDDEN, "license_revoked");

    assert_error(&app.send("POST", &uri, Some(&admin.token), None).await, StatusCode::CONFLICT, "invalid_transition");
    let unknown = format!("/v1/licenses/{}/revoke", uuid::Uuid::now_v7());
    assert_error(&app.send("POST", &unknown, Some(&admin.token), None).await, StatusCode::NOT_FOUND, "not_found");

    // Without a body the default reason is recorded.
    let (_, _, other) = bought(&app, &listing(&app, one_time(100)).await).await;
    let r = app.send("POST", &format!("/v1/licenses/{}/revoke", id(&other)), Some(&admin.token), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert!(r.json["revoked_reason"].as_str().is_some_and(|s| !s.is_empty()));
    // Nor with a JSON `null`, which the document allows.
    let (_, _, third) = bought(&app, &listing(&app, one_time(100)).await).await;
    let r =
        app.send("POST", &format!("/v1/licenses/{}/revoke", id(&third)), Some(&admin.token), Some(Value::Null)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert!(r.json["revoked_reason"].as_str().is_some_and(|s| !s.is_empty()));
}

#[tokio::test]
async fn listing_and_reading_licenses_need_a_token_and_real_ids() {
    let app = TestApp::new();
    assert_error(&app.send("GET", "/v1/licenses", None, None).await, StatusCode::UNAUTHORIZED, "unauthenticated");
    assert_error(
        &app.send("GET", "/v1/licenses", Some("x.y.z"), None).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );
    let buyer = customer(&app).await;
    let r = app.send("GET", "/v1/licenses", Some(&buyer.token), None).await;
    assert_eq!(r.json, json!({"items": [], "total": 0, "page": 1, "limit": 20}));
    let unknown = format!("/v1/licenses/{}", uuid::Uuid::now_v7());
    assert_error(&app.send("GET", &unknown, Some(&buyer.token), None).await, StatusCode::NOT_FOUND, "not_found");
    assert_error(
        &app.send("GET", "/v1/licenses/123", Some(&buyer.token), None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_invalid(&app.send("GET", "/v1/licenses?limit=0", Some(&buyer.token), None).await, "limit");

    let a = listing(&app, one_time(100)).await;
    let b = listing(&app, one_time(200)).await;
    purchase(&app, &buyer, &a).await;
    purchase(&app, &buyer, &b).await;
    let r = app.send("GET", "/v1/licenses?limit=1&page=2", Some(&buyer.token), None).await;
    assert_eq!(r.json["total"], 2);
    assert_eq!(r.json["items"].as_array().unwrap().len(), 1);
    assert_eq!(r.json["items"][0]["product_id"], b.product_id.as_str(), "oldest first");
}

/// Asset bytes in memory, served by "the store" at URLs of its own, as S3
/// serves presigned ones.
struct ServingStore(bazaar_memory::MemoryBlobStore);

#[async_trait::async_trait]
impl bazaar_core::assets::BlobStore for ServingStore {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> bazaar_core::Result<()> {
        self.0.put(key, bytes).await
    }
    async fn get(&self, key: &str) -> bazaar_core::Result<Option<Vec<u8>>> {
        self.0.get(key).await
    }
    async fn delete(&self, key: &str) -> bazaar_core::Result<()> {
        self.0.delete(key).await
    }
    async fn presigned_get(&self, key: &str, ttl: std::time::Duration) -> bazaar_core::Result<Option<String>> {
        Ok(Some(format!("https://bucket.example/{key}?expires={}", ttl.as_secs())))
    }
}

#[tokio::test]
async fn a_store_that_serves_downloads_gets_the_client_redirected_after_the_checks() {
    let app = TestApp::with_ports(|ports| {
        ports.with_blobs(std::sync::Arc::new(ServingStore(bazaar_memory::MemoryBlobStore::new())))
    });
    let item = listing(&app, one_time(900)).await;
    let (buyer, order_id, license) = bought(&app, &item).await;
    let license_id = id(&license);
    let url = download_url(&app, &buyer, &license_id, &item.asset_id).await;
    let path = url.json["url"].as_str().expect("url").to_owned();
    let r = app.send("GET", &path, None, None).await;
    assert_eq!(r.status, StatusCode::FOUND, "{}", r.json);
    let location = r.headers["location"].to_str().unwrap();
    assert!(location.starts_with("https://bucket.example/") && location.ends_with("?expires=60"), "{location}");
    assert_eq!(r.headers["x-content-sha256"], hex::encode(Sha256::digest(&item.bytes)).as_str());
    assert_eq!(r.headers["cache-control"], "private, no-store");

    // A refund kills the URL before the store is asked for one.
    let admin = app.admin().await;
    let refund = app.send("POST", &format!("/v1/orders/{order_id}/refund"), Some(&admin.token), None).await;
    assert_eq!(refund.status, StatusCode::OK, "{}", refund.json);
    app.pump().await;
    assert_error(&app.send("GET", &path, None, None).await, StatusCode::FORBIDDEN, "license_revoked");
}
