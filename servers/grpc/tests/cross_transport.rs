//! One marketplace behind both transports: a license bought through the
//! HTTP purchase flow validates over gRPC at once, and HTTP-issued access
//! tokens work over gRPC.

mod common;

use axum::body::Body;
use axum::http::{Request as HttpRequest, StatusCode, header};
use bazaar_core::auth::Role;
use bazaar_grpc::pb;
use bazaar_http::{AppState, router};
use common::{World, authed, usd};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

/// Sends one request to the HTTP router over the same marketplace.
async fn http(w: &World, method: &str, uri: &str, token: Option<&str>, body: Option<Value>) -> (StatusCode, Value) {
    let mut req = HttpRequest::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    if method == "POST" && uri == "/v1/orders" {
        req = req.header("idempotency-key", "checkout-1");
    }
    let req = match body {
        Some(b) => req.header(header::CONTENT_TYPE, "application/json").body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .unwrap();
    let response = router(AppState::new(w.market.clone())).oneshot(req).await.expect("infallible router");
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_license_bought_over_http_validates_over_grpc_right_away() {
    let w = World::start().await;
    let vendor = w.user(Role::Vendor).await;
    let product = w.approved_product(&vendor, "Sales agent", usd(2500)).await;

    // The buyer signs up, orders and pays over HTTP.
    let (status, session) = http(
        &w,
        "POST",
        "/v1/auth/register",
        None,
        Some(json!({"email": "buyer@example.com", "password": "password123", "name": "Buyer"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    let token = session["access_token"].as_str().expect("access_token").to_owned();
    let (status, order) =
        http(&w, "POST", "/v1/orders", Some(&token), Some(json!({"items": [{"product_id": product.id}]}))).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let order_id = order["id"].as_str().expect("order id").to_owned();
    let (status, intent) = http(
        &w,
        "POST",
        &format!("/v1/orders/{order_id}/pay"),
        Some(&token),
        Some(json!({"payment_method": "pm_card_visa"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{intent}");
    assert_eq!(intent["status"], "succeeded");
    // What `bazaar serve`'s in-process worker does: payment.succeeded → licenses.
    w.market.pump().await.unwrap();
    let (status, licenses) = http(&w, "GET", "/v1/licenses", Some(&token), None).await;
    assert_eq!(status, StatusCode::OK, "{licenses}");
    let license = &licenses["items"][0];
    let (id, key) = (license["id"].as_str().unwrap(), license["key"].as_str().unwrap());

    // The key validates over gRPC, against the same stores, with no credentials.
    let mut grpc = w.licensing();
    let r = grpc
        .validate_license(pb::ValidateLicenseRequest { key: key.into(), fingerprint: None })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((r.valid, r.code()), (false, pb::ValidationCode::ActivationRequired), "node-locked, not yet activated");
    let got = r.license.unwrap();
    assert_eq!((got.id.as_str(), got.order_id.as_str()), (id, order_id.as_str()));
    assert_eq!(got.product_id, product.id.to_string());

    // The HTTP access token is accepted over gRPC: activate there, validate here.
    let activated = grpc
        .activate_license(authed(
            pb::ActivateLicenseRequest { license_id: id.into(), fingerprint: "laptop".into() },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(activated.outcome(), pb::ActivationOutcome::Activated);
    let r = grpc
        .validate_license(pb::ValidateLicenseRequest { key: key.into(), fingerprint: Some("laptop".into()) })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((r.valid, r.code()), (true, pb::ValidationCode::Valid));
    // And HTTP sees the activation made over gRPC.
    let (status, validated) =
        http(&w, "POST", "/v1/licenses/validate", None, Some(json!({"key": key, "fingerprint": "laptop"}))).await;
    assert_eq!(status, StatusCode::OK, "{validated}");
    assert_eq!((validated["valid"].as_bool(), validated["code"].as_str()), (Some(true), Some("valid")));

    // The order placed over HTTP reads the same over gRPC.
    let o = w
        .orders()
        .get_order(authed(pb::GetOrderRequest { order_id: order_id.clone() }, &token))
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    assert_eq!((o.status(), o.total.unwrap().minor), (pb::OrderStatus::Fulfilled, 2500));
}
