//! Commerce setup shared by the orders, payments, licenses and
//! notifications tests: users, approved products with a downloadable asset,
//! and the purchase steps over HTTP.
#![allow(dead_code, unreachable_pub)]

use axum::http::StatusCode;
use bazaar_core::auth::{Actor, Role, TokenIssuer};
use bazaar_core::catalog::NewProduct;
use bazaar_core::ids::{ProductId, UserId};
use serde_json::{Value, json};

use crate::common::{Reply, Session, TestApp, error_code};

/// A product on sale with one clean asset.
#[derive(Debug, Clone)]
pub struct Listing {
    pub product_id: String,
    pub asset_id: String,
    pub bytes: Vec<u8>,
    pub vendor: Session,
}

/// The core actor behind a session.
pub fn actor(session: &Session, role: Role) -> Actor {
    Actor::new(session.user_id.parse::<UserId>().expect("user id"), role)
}

/// `session` with a new access token issued at the clock's now (for tests
/// that move the clock past a token's lifetime).
pub fn reissue(app: &TestApp, session: &Session, role: Role) -> Session {
    let now = app.market().clock.now();
    let token = app.tokens.issue(actor(session, role), now, now + chrono::Duration::minutes(15)).expect("token").token;
    Session { token, ..session.clone() }
}

/// A customer, registered through `POST /v1/auth/register`.
pub async fn customer(app: &TestApp) -> Session {
    app.register("customer").await
}

/// A vendor, registered through `POST /v1/auth/register`.
pub async fn vendor(app: &TestApp) -> Session {
    app.register("vendor").await
}

/// The pricing JSON of a one-time USD price, or free.
pub fn one_time(minor: i64) -> Value {
    json!({"type": "one_time", "price": {"minor": minor, "currency": "USD"}})
}

/// A monthly USD subscription.
pub fn monthly(minor: i64) -> Value {
    json!({"type": "subscription", "price": {"minor": minor, "currency": "USD"}, "interval": "monthly"})
}

/// A free product.
pub fn free() -> Value {
    json!({"type": "free"})
}

/// A product priced `pricing` by a new vendor, submitted and approved by an
/// admin, with one clean `application/zip` asset. (Catalog and asset routes
/// belong to another module; their own tests cover them, so setup goes
/// through the core services.)
pub async fn listing(app: &TestApp, pricing: Value) -> Listing {
    let vendor = vendor(app).await;
    let admin = app.admin().await;
    let market = app.market();
    let input: NewProduct = serde_json::from_value(json!({
        "title": format!("Support agent {}", uuid::Uuid::now_v7()),
        "description": "Answers tickets.",
        "kind": "ai_agent",
        "categories": ["support"],
        "pricing": pricing,
    }))
    .expect("new product");
    let v = actor(&vendor, Role::Vendor);
    let product = market.catalog.create(&v, input).await.expect("create product");
    market.catalog.submit(&v, product.id).await.expect("submit");
    market.catalog.approve(&actor(&admin, Role::Admin), product.id).await.expect("approve");
    let bytes = format!("PK\u{3}\u{4} agent bundle for {}", product.id).into_bytes();
    let asset = market
        .downloads
        .upload(&v, product.id, "agent.zip", "application/zip", bytes.clone(), false)
        .await
        .expect("upload");
    Listing { product_id: product.id.to_string(), asset_id: asset.id.to_string(), bytes, vendor }
}

/// A second clean asset on `product_id`.
pub async fn add_asset(app: &TestApp, listing: &Listing, name: &str) -> String {
    let product_id: ProductId = listing.product_id.parse().expect("product id");
    let asset = app
        .market()
        .downloads
        .upload(&actor(&listing.vendor, Role::Vendor), product_id, name, "text/plain", b"readme".to_vec(), false)
        .await
        .expect("upload");
    asset.id.to_string()
}

/// `POST /v1/orders` for `product_ids`; asserts 201 and returns the order.
pub async fn place(app: &TestApp, buyer: &Session, product_ids: &[&str]) -> Value {
    let items: Vec<Value> = product_ids.iter().map(|id| json!({"product_id": id})).collect();
    let r = app.send("POST", "/v1/orders", Some(&buyer.token), Some(json!({"items": items}))).await;
    assert_eq!(r.status, StatusCode::CREATED, "place order: {}", r.json);
    r.json
}

/// `POST /v1/orders/{id}/pay` with `method`.
pub async fn pay(app: &TestApp, buyer: &Session, order_id: &str, method: &str) -> Reply {
    app.send("POST", &format!("/v1/orders/{order_id}/pay"), Some(&buyer.token), Some(json!({"payment_method": method})))
        .await
}

/// `GET /v1/orders/{id}` as `who`; asserts 200.
pub async fn order(app: &TestApp, who: &Session, order_id: &str) -> Value {
    let r = app.send("GET", &format!("/v1/orders/{order_id}"), Some(&who.token), None).await;
    assert_eq!(r.status, StatusCode::OK, "get order: {}", r.json);
    r.json
}

/// The buyer's licenses (`GET /v1/licenses`).
pub async fn licenses(app: &TestApp, who: &Session) -> Vec<Value> {
    let r = app.send("GET", "/v1/licenses", Some(&who.token), None).await;
    assert_eq!(r.status, StatusCode::OK, "list licenses: {}", r.json);
    r.json["items"].as_array().expect("items").clone()
}

/// Orders `listing`, pays with the visa card and lets the worker fulfil it;
/// returns (order id, the license for the product).
pub async fn purchase(app: &TestApp, buyer: &Session, listing: &Listing) -> (String, Value) {
    let placed = place(app, buyer, &[&listing.product_id]).await;
    let order_id = placed["id"].as_str().expect("order id").to_owned();
    let paid = pay(app, buyer, &order_id, "pm_card_visa").await;
    assert_eq!(paid.status, StatusCode::OK, "pay: {}", paid.json);
    app.pump().await;
    let license = licenses(app, buyer)
        .await
        .into_iter()
        .find(|l| l["product_id"] == listing.product_id.as_str())
        .expect("a license for the purchased product");
    (order_id, license)
}

/// Asserts an error reply's status and code.
pub fn assert_error(reply: &Reply, status: StatusCode, code: &str) {
    assert_eq!(reply.status, status, "{}", reply.json);
    assert_eq!(error_code(reply), code, "{}", reply.json);
}

/// Asserts a 422 naming `field` among its details.
pub fn assert_invalid(reply: &Reply, field: &str) {
    assert_error(reply, StatusCode::UNPROCESSABLE_ENTITY, "validation");
    let fields: Vec<&str> = reply.json["error"]["details"]
        .as_array()
        .unwrap_or_else(|| panic!("validation details missing: {}", reply.json))
        .iter()
        .filter_map(|d| d["field"].as_str())
        .collect();
    assert!(fields.contains(&field), "expected a detail on {field}, got {fields:?}");
}
