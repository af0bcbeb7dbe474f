//! Shared wiring for the handler tests: a marketplace in memory behind
//! `router(state)`, users of each role, and one-call request helpers.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use bazaar_app::auth::Passwords;
use bazaar_app::{Keys, Marketplace, MarketplaceOptions, Stores};
use bazaar_core::auth::{Email, Role};
use bazaar_core::clock::{Clock, ManualClock};
use bazaar_core::entropy::OsEntropy;
use bazaar_http::{AppState, HttpSettings, router};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

/// A router over a fresh in-memory marketplace (with the search cache) on a
/// manual clock.
pub struct TestApp {
    pub state: AppState,
    pub clock: Arc<ManualClock>,
}

/// A signed-in user.
#[derive(Debug, Clone)]
pub struct Session {
    pub user_id: String,
    pub token: String,
    pub refresh_token: String,
}

/// A response, its body parsed as JSON (`Value::Null` when empty or not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub json: Value,
    pub bytes: Vec<u8>,
}

impl TestApp {
    /// Default settings, except an auth quota no test reaches: every
    /// request comes from 127.0.0.1, and tests register many users. The
    /// limit itself is tested with `with_settings`.
    pub fn new() -> Self {
        let many = std::num::NonZeroU32::new(10_000).expect("non-zero");
        let auth_quota = bazaar_core::resilience::rate_limit::Quota::per_second(many).allow_burst(many);
        Self::with_settings(HttpSettings { auth_quota, ..HttpSettings::default() })
    }

    pub fn with_settings(settings: HttpSettings) -> Self {
        let clock = Arc::new(ManualClock::at_epoch_secs(1_700_000_000));
        let dyn_clock: Arc<dyn Clock> = clock.clone();
        let keys = Keys::generate(&OsEntropy);
        let mut options = MarketplaceOptions::new(dyn_clock.clone());
        options.passwords = Passwords::fast_for_tests();
        // The search cache, as `bazaar serve` has it, so tests see what production serves.
        let stores = Stores::memory(dyn_clock.clone()).with_search_cache(dyn_clock);
        let market = Arc::new(Marketplace::new(stores, &keys, options));
        Self { state: AppState::with_settings(market, settings), clock }
    }

    pub fn market(&self) -> &Marketplace {
        &self.state.market
    }

    pub fn router(&self) -> Router {
        router(self.state.clone())
    }

    /// Relays and dispatches every pending event (what the worker does).
    pub async fn pump(&self) {
        self.state.market.pump().await.expect("pump");
    }

    /// Sends a request; `body` is sent as JSON when given.
    pub async fn send(&self, method: &str, uri: &str, token: Option<&str>, body: Option<Value>) -> Reply {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = match body {
            Some(b) => req.header(header::CONTENT_TYPE, "application/json").body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .expect("request");
        self.call(req).await
    }

    /// Sends a prepared request.
    pub async fn call(&self, req: Request<Body>) -> Reply {
        let response = self.router().oneshot(req).await.expect("infallible router");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.expect("body").to_bytes().to_vec();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply { status, headers, json, bytes }
    }

    /// Registers a customer or vendor through the API.
    pub async fn register(&self, role: &str) -> Session {
        let email = format!("{role}-{}@example.com", uuid::Uuid::now_v7());
        let r = self
            .send(
                "POST",
                "/v1/auth/register",
                None,
                Some(serde_json::json!({"email": email, "password": "password123", "name": role, "role": role})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "register {role}: {}", r.json);
        session(&r.json)
    }

    /// An admin (admins cannot register through the API).
    pub async fn admin(&self) -> Session {
        let email = Email::parse(&format!("admin-{}@example.com", uuid::Uuid::now_v7())).unwrap();
        let user = self.market().ensure_admin(&email, "password123").await.expect("admin");
        let token = self.market().tokens.issue(user.id, Role::Admin, self.market().clock.now()).token;
        Session { user_id: user.id.to_string(), token, refresh_token: String::new() }
    }
}

fn session(json: &Value) -> Session {
    Session {
        user_id: json["user"]["id"].as_str().expect("user.id").to_owned(),
        token: json["access_token"].as_str().expect("access_token").to_owned(),
        refresh_token: json["refresh_token"].as_str().expect("refresh_token").to_owned(),
    }
}

/// Asserts the contract's error shape and returns the code.
pub fn error_code(reply: &Reply) -> String {
    let code = reply.json["error"]["code"].as_str().unwrap_or_else(|| panic!("not an error body: {}", reply.json));
    assert!(reply.json["error"]["message"].is_string(), "error.message missing: {}", reply.json);
    assert!(reply.json["request_id"].is_string(), "request_id missing: {}", reply.json);
    code.to_owned()
}
