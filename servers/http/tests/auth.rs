//! Handler tests of the auth routes: register, login, refresh (rotation and
//! reuse detection), logout, `/v1/me`, and the per-IP rate limit.

mod common;

use std::num::NonZeroU32;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use bazaar_core::auth::SignInLimits;
use bazaar_core::auth::client_ip::TrustedProxies;
use bazaar_core::resilience::rate_limit::Quota;
use bazaar_http::HttpSettings;
use common::{Reply, TestApp, error_code};
use serde_json::{Value, json};

fn email() -> String {
    format!("user-{}@example.com", uuid::Uuid::now_v7())
}

async fn post(app: &TestApp, uri: &str, body: Value) -> Reply {
    app.send("POST", uri, None, Some(body)).await
}

/// A JSON POST with extra headers.
async fn post_with(app: &TestApp, uri: &str, body: Value, headers: &[(&str, &str)]) -> Reply {
    let mut req = Request::builder().method("POST").uri(uri).header(header::CONTENT_TYPE, "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    app.call(req.body(Body::from(body.to_string())).unwrap()).await
}

fn field_names(reply: &Reply) -> Vec<String> {
    reply.json["error"]["details"]
        .as_array()
        .unwrap_or_else(|| panic!("no field details: {}", reply.json))
        .iter()
        .map(|f| f["field"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn register_returns_the_user_and_a_working_token_pair() {
    let app = TestApp::new();
    let address = email();
    let r = post(
        &app,
        "/v1/auth/register",
        json!({"email": address.to_uppercase(), "password": "password123", "name": " Ada ", "role": "vendor"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    assert_eq!(r.json["user"]["email"], address, "e-mail normalised");
    assert_eq!(r.json["user"]["name"], "Ada");
    assert_eq!(r.json["user"]["role"], "vendor");
    assert_eq!(r.json["token_type"], "Bearer");
    assert_eq!(r.json["expires_in"], 900);
    let token = r.json["access_token"].as_str().unwrap();
    assert!(r.json["refresh_token"].as_str().is_some_and(|t| t.len() > 40));

    let me = app.send("GET", "/v1/me", Some(token), None).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.json["id"], r.json["user"]["id"]);
    assert_eq!(me.json["role"], "vendor");
}

#[tokio::test]
async fn register_defaults_to_customer() {
    let app = TestApp::new();
    let r = post(&app, "/v1/auth/register", json!({"email": email(), "password": "password123", "name": "Bo"})).await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.json["user"]["role"], "customer");
}

#[tokio::test]
async fn admin_cannot_be_chosen_at_registration() {
    let app = TestApp::new();
    let r = post(
        &app,
        "/v1/auth/register",
        json!({"email": email(), "password": "password123", "name": "Eve", "role": "admin"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(&r), "validation");
    assert_eq!(field_names(&r), ["role"]);
}

#[tokio::test]
async fn invalid_registrations_name_their_fields() {
    let app = TestApp::new();
    let r =
        post(&app, "/v1/auth/register", json!({"email": "not-an-email", "password": "password123", "name": "X"})).await;
    assert_eq!((r.status, error_code(&r)), (StatusCode::UNPROCESSABLE_ENTITY, "validation".into()));
    assert_eq!(field_names(&r), ["email"]);

    let r = post(&app, "/v1/auth/register", json!({"email": email(), "password": "short", "name": ""})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(field_names(&r), ["name", "password"]);

    let r = post(&app, "/v1/auth/register", json!({"email": email(), "name": "No password"})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(error_code(&r) == "validation" && r.json["error"]["message"].as_str().unwrap().contains("password"));

    let r = post(
        &app,
        "/v1/auth/register",
        json!({"email": email(), "password": "password123", "name": "X", "admin": true}),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "unknown fields are refused");

    let req = Request::builder()
        .method("POST")
        .uri("/v1/auth/register")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{\"email\":"))
        .unwrap();
    let r = app.call(req).await;
    assert_eq!((r.status, error_code(&r)), (StatusCode::BAD_REQUEST, "malformed".into()));
}

#[tokio::test]
async fn a_taken_email_is_a_conflict() {
    let app = TestApp::new();
    let body = json!({"email": email(), "password": "password123", "name": "Ann"});
    assert_eq!(post(&app, "/v1/auth/register", body.clone()).await.status, StatusCode::CREATED);
    let r = post(&app, "/v1/auth/register", body).await;
    assert_eq!((r.status, error_code(&r)), (StatusCode::CONFLICT, "conflict".into()));
}

#[tokio::test]
async fn login_succeeds_and_failures_look_the_same() {
    let app = TestApp::new();
    let address = email();
    post(&app, "/v1/auth/register", json!({"email": address, "password": "password123", "name": "Cy"})).await;

    let ok = post(&app, "/v1/auth/login", json!({"email": address, "password": "password123"})).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.json);
    assert_eq!(ok.json["user"]["email"], address);
    assert!(ok.json["access_token"].is_string() && ok.json["refresh_token"].is_string());

    let wrong = post(&app, "/v1/auth/login", json!({"email": address, "password": "password124"})).await;
    let unknown = post(&app, "/v1/auth/login", json!({"email": email(), "password": "password123"})).await;
    let garbled = post(&app, "/v1/auth/login", json!({"email": "nope", "password": "password123"})).await;
    for r in [&wrong, &unknown, &garbled] {
        assert_eq!((r.status, error_code(r)), (StatusCode::UNAUTHORIZED, "unauthenticated".into()));
        assert_eq!(r.headers[header::WWW_AUTHENTICATE], "Bearer");
    }
    assert_eq!(wrong.json["error"]["message"], unknown.json["error"]["message"]);
    assert_eq!(wrong.json["error"]["message"], garbled.json["error"]["message"]);
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_whole_session() {
    let app = TestApp::new();
    let first = app.register("customer").await;

    let r = post(&app, "/v1/auth/refresh", json!({"refresh_token": first.refresh_token})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let second = r.json["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second, first.refresh_token);
    assert_eq!(r.json["user"]["id"], first.user_id.as_str());
    let access = r.json["access_token"].as_str().unwrap();
    assert_eq!(app.send("GET", "/v1/me", Some(access), None).await.status, StatusCode::OK);

    // The spent token comes back: it leaked. Refused, and the family dies.
    let reuse = post(&app, "/v1/auth/refresh", json!({"refresh_token": first.refresh_token})).await;
    assert_eq!((reuse.status, error_code(&reuse)), (StatusCode::UNAUTHORIZED, "unauthenticated".into()));
    let successor = post(&app, "/v1/auth/refresh", json!({"refresh_token": second})).await;
    assert_eq!(successor.status, StatusCode::UNAUTHORIZED, "the successor is revoked too: {}", successor.json);

    // Another login is a separate family and still works.
    let other = app.register("customer").await;
    let r = post(&app, "/v1/auth/refresh", json!({"refresh_token": other.refresh_token})).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn unknown_tampered_and_expired_refresh_tokens_are_refused() {
    let app = TestApp::new();
    let s = app.register("customer").await;
    for bad in ["garbage".to_owned(), format!("{}x", s.refresh_token), String::new()] {
        let r = post(&app, "/v1/auth/refresh", json!({"refresh_token": bad})).await;
        assert_eq!((r.status, error_code(&r)), (StatusCode::UNAUTHORIZED, "unauthenticated".into()), "{bad:?}");
    }
    // 30 days later the token no longer refreshes.
    app.clock.advance(chrono::Duration::seconds(30 * 24 * 3600 + 1));
    let r = post(&app, "/v1/auth/refresh", json!({"refresh_token": s.refresh_token})).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = post(&app, "/v1/auth/refresh", json!({})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn logout_revokes_the_session() {
    let app = TestApp::new();
    let s = app.register("vendor").await;
    let r = post(&app, "/v1/auth/logout", json!({"refresh_token": s.refresh_token})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(r.bytes.is_empty());
    let r = post(&app, "/v1/auth/refresh", json!({"refresh_token": s.refresh_token})).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "a logged-out session cannot refresh");
    // Unknown tokens are accepted silently, so logout reveals nothing.
    let r = post(&app, "/v1/auth/logout", json!({"refresh_token": "never-issued"})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = post(&app, "/v1/auth/logout", json!({"token": "x"})).await;
    assert_eq!((r.status, error_code(&r)), (StatusCode::UNPROCESSABLE_ENTITY, "validation".into()));
}

#[tokio::test]
async fn me_needs_a_valid_token() {
    let app = TestApp::new();
    let r = app.send("GET", "/v1/me", None, None).await;
    assert_eq!((r.status, error_code(&r)), (StatusCode::UNAUTHORIZED, "unauthenticated".into()));
    let r = app.send("GET", "/v1/me", Some("not.a.jwt"), None).await;
    assert_eq!((r.status, error_code(&r)), (StatusCode::UNAUTHORIZED, "unauthenticated".into()));
    let admin = app.admin().await;
    let r = app.send("GET", "/v1/me", Some(&admin.token), None).await;
    assert_eq!((r.status, r.json["role"].as_str()), (StatusCode::OK, Some("admin")));
    // Access tokens expire after 15 minutes.
    app.clock.advance(chrono::Duration::seconds(15 * 60));
    let r = app.send("GET", "/v1/me", Some(&admin.token), None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

/// One sign-in attempt per client a minute (accounts unlimited), behind
/// `proxies` (the test client's peer is 127.0.0.1).
fn tight(proxies: &str) -> TestApp {
    let one = NonZeroU32::new(1).unwrap();
    let settings =
        HttpSettings { trusted_proxies: TrustedProxies::parse_list(proxies).unwrap(), ..HttpSettings::default() };
    let limits = SignInLimits {
        per_client: Quota::per_minute(one).allow_burst(one),
        per_account: Quota::per_second(NonZeroU32::new(1000).unwrap()),
    };
    TestApp::custom(settings, |p| p, |b| b.sign_in_limits(limits))
}

#[tokio::test]
async fn auth_routes_are_rate_limited_per_ip() {
    let app = tight("");
    let address = email();
    let r = post(&app, "/v1/auth/register", json!({"email": address, "password": "password123", "name": "Dee"})).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = post(&app, "/v1/auth/login", json!({"email": address, "password": "password123"})).await;
    assert_eq!((r.status, error_code(&r)), (StatusCode::TOO_MANY_REQUESTS, "rate_limited".into()));
    let wait: u64 = r.headers[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    // Malformed requests spend the quota too (the limit runs before the body).
    let r = post(&app, "/v1/auth/refresh", json!({})).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    // Without a trusted proxy, neither forwarding header buys a fresh quota.
    for header in [("x-forwarded-for", "203.0.113.9"), ("forwarded", "for=203.0.113.9")] {
        let r = post_with(&app, "/v1/auth/login", json!({"email": address, "password": "x"}), &[header]).await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    }
    // Logout and the other routes are not limited.
    let r = post(&app, "/v1/auth/logout", json!({"refresh_token": "x"})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn behind_trusted_proxies_the_rightmost_untrusted_address_is_the_client() {
    let app = tight("127.0.0.1, 10.0.0.0/8");
    let login = json!({"email": email(), "password": "password123"});
    let status = |xff: &'static str| {
        let login = login.clone();
        let app = &app;
        async move { post_with(app, "/v1/auth/login", login, &[("x-forwarded-for", xff)]).await.status }
    };
    assert_eq!(status("203.0.113.1, 10.0.0.1").await, StatusCode::UNAUTHORIZED);
    // What the client wrote left of its own address changes nothing.
    assert_eq!(status("198.51.100.66, 203.0.113.1, 10.0.0.1").await, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(status("203.0.113.1").await, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(status("203.0.113.2").await, StatusCode::UNAUTHORIZED);
    // One IPv6 /64 is one client.
    assert_eq!(status("2001:db8:1:2::1").await, StatusCode::UNAUTHORIZED);
    assert_eq!(status("2001:db8:1:2:ffff:ffff:ffff:ffff").await, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(status("2001:db8:1:3::1").await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_account_is_limited_whatever_the_address() {
    let two = NonZeroU32::new(2).unwrap();
    let settings =
        HttpSettings { trusted_proxies: TrustedProxies::parse_list("127.0.0.1").unwrap(), ..HttpSettings::default() };
    let limits = SignInLimits { per_account: Quota::per_minute(two).allow_burst(two), ..SignInLimits::default() };
    let app = TestApp::custom(settings, |p| p, |b| b.sign_in_limits(limits));
    let victim = app.register("customer").await;
    let me = app.send("GET", "/v1/me", Some(&victim.token), None).await;
    let address = me.json["email"].as_str().unwrap().to_owned();
    // A botnet: every guess from another address.
    let guess = |n: u8| {
        let body = json!({"email": address.to_uppercase(), "password": "guess-password"});
        let app = &app;
        async move { post_with(app, "/v1/auth/login", body, &[("x-forwarded-for", &format!("203.0.113.{n}"))]).await }
    };
    assert_eq!(guess(1).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(guess(2).await.status, StatusCode::UNAUTHORIZED);
    let r = guess(3).await;
    assert_eq!((r.status, error_code(&r)), (StatusCode::TOO_MANY_REQUESTS, "rate_limited".into()));
    // An unknown account is answered alike: the limit tells nothing.
    let body = json!({"email": "nobody@example.com", "password": "guess-password"});
    for _ in 0..2 {
        assert_eq!(post(&app, "/v1/auth/login", body.clone()).await.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(post(&app, "/v1/auth/login", body).await.status, StatusCode::TOO_MANY_REQUESTS);
}
