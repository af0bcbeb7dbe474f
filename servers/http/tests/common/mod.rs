//! Shared wiring for the handler tests: a marketplace in memory behind
//! `router(state)`, users of each role, and one-call request helpers.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use bazaar_auth::{Argon2Passwords, JwtTokens};
use bazaar_core::auth::Email;
use bazaar_core::clock::{Clock, ManualClock};
use bazaar_core::marketplace::{Marketplace, MarketplaceBuilder, Ports};
use bazaar_core::payments::SandboxProvider;
use bazaar_http::{AppState, HttpSettings, router};
use bazaar_memory::MemoryBackend;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

/// A router over a fresh in-memory marketplace (with the search cache) on a
/// manual clock.
pub struct TestApp {
    pub state: AppState,
    pub clock: Arc<ManualClock>,
    /// The payment provider the marketplace pays through.
    pub sandbox: Arc<SandboxProvider>,
    /// The marketplace's token issuer, to mint tokens at the clock's now.
    pub tokens: Arc<JwtTokens>,
    /// The marketplace's ports, for tests that set up or inspect state
    /// the API does not expose.
    pub ports: Ports,
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
    /// Default settings, and sign-in quotas no test reaches: every request
    /// comes from 127.0.0.1, and tests register many users. The quotas
    /// themselves are tested through `custom`'s builder.
    pub fn new() -> Self {
        Self::with_settings(Self::settings())
    }

    /// [`TestApp::new`] over ports the test adjusts first (another blob store).
    pub fn with_ports(ports: impl FnOnce(Ports) -> Ports) -> Self {
        Self::custom(Self::settings(), ports, |builder| builder)
    }

    /// The settings of [`TestApp::new`].
    fn settings() -> HttpSettings {
        HttpSettings::default()
    }

    pub fn with_settings(settings: HttpSettings) -> Self {
        Self::custom(settings, |ports| ports, |builder| builder)
    }

    /// An app whose ports and builder the test adjusts first (probes,
    /// limits); everything else as [`TestApp::new`] has it.
    pub fn custom(
        settings: HttpSettings,
        ports: impl FnOnce(Ports) -> Ports,
        builder: impl FnOnce(MarketplaceBuilder) -> MarketplaceBuilder,
    ) -> Self {
        let clock = Arc::new(ManualClock::at_epoch_secs(1_700_000_000));
        let dyn_clock: Arc<dyn Clock> = clock.clone();
        let sandbox = Arc::new(SandboxProvider::new(dyn_clock.clone(), b"whsec_test".to_vec()));
        let tokens = Arc::new(JwtTokens::new([7; 32]));
        // The search cache, as `bazaar serve` has it, so tests see what production serves.
        let ports = ports(MemoryBackend::new(dyn_clock.clone()).ports().with_search_cache(dyn_clock.clone()));
        let many = bazaar_core::resilience::rate_limit::Quota::per_second(std::num::NonZeroU32::new(10_000).unwrap());
        let market = builder(
            Marketplace::builder(ports.clone())
                .clock(dyn_clock)
                .payment_provider(sandbox.clone())
                .passwords(Arc::new(Argon2Passwords::fast_for_tests()))
                .tokens(tokens.clone())
                .sign_in_limits(bazaar_core::auth::SignInLimits { per_client: many, per_account: many }),
        )
        .build()
        .expect("every port is set");
        Self { state: AppState::with_settings(Arc::new(market), settings), clock, sandbox, tokens, ports }
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
        self.market().auth.ensure_admin(&email, "password123").await.expect("admin");
        let signed_in = self.market().auth.login(email.as_str(), "password123").await.expect("admin login");
        Session {
            user_id: signed_in.user.id.to_string(),
            token: signed_in.access.token,
            refresh_token: signed_in.refresh_token,
        }
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
