//! Mount the marketplace's REST API inside your own axum application: under
//! `/market`, next to your own routes, behind your own authentication layer.
//!
//! Shows: `bazaar_http::router` is an ordinary `axum::Router`, so
//! `Router::nest("/market", …)` puts every marketplace route (`/v1/...`,
//! `/openapi.json`, `/docs`) under the prefix; a tower layer of your own
//! (here an API-key check written as `ApiKeyLayer` + `ApiKey<S>`, the tower
//! style) runs in front of both your routes and the marketplace's, and
//! hands the caller's identity to your handlers as a request extension; the
//! marketplace's own bearer tokens still apply inside it (`/market/v1/me`).
//! Routes added after the layer (`/health`) stay public.
//!
//! Needs nothing: the marketplace is in memory and the server listens on an
//! ephemeral loopback port. The example calls itself with a real HTTP
//! client, checks every answer and exits 0; any unexpected status ends it
//! non-zero. Run with `cargo run -p bazaar-examples --example mount_router`.

use std::collections::HashMap;
use std::error::Error;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use bazaar_auth::{Argon2Passwords, JwtTokens};
use bazaar_core::clock::SystemClock;
use bazaar_core::entropy::{Entropy, OsEntropy};
use bazaar_core::marketplace::Marketplace;
use bazaar_http::AppState;
use bazaar_memory::MemoryBackend;
use futures::future::BoxFuture;
use subtle::ConstantTimeEq;
use tower::{Layer, Service};

type Outcome<T = ()> = Result<T, Box<dyn Error>>;

/// The header our partners send their key in.
const API_KEY: &str = "x-api-key";

/// Which partner a request came from, set by [`ApiKey`] for the handlers.
#[derive(Debug, Clone)]
struct Partner(String);

/// Lets through requests carrying one of the known API keys; answers 401
/// to the rest without calling the inner service.
#[derive(Debug, Clone)]
struct ApiKeyLayer {
    /// Partner name by key.
    keys: Arc<HashMap<String, String>>,
}

impl ApiKeyLayer {
    fn new(keys: impl IntoIterator<Item = (String, String)>) -> Self {
        Self { keys: Arc::new(keys.into_iter().collect()) }
    }
}

impl<S> Layer<S> for ApiKeyLayer {
    type Service = ApiKey<S>;

    fn layer(&self, inner: S) -> ApiKey<S> {
        ApiKey { inner, keys: self.keys.clone() }
    }
}

/// The service [`ApiKeyLayer`] wraps around the application.
#[derive(Debug, Clone)]
struct ApiKey<S> {
    inner: S,
    keys: Arc<HashMap<String, String>>,
}

impl<S> ApiKey<S> {
    /// The partner whose key `headers` carry. Every key is compared in
    /// constant time, so response timing tells nothing about how much of a
    /// guessed key was right.
    fn partner(&self, headers: &HeaderMap) -> Option<Partner> {
        let given = headers.get(API_KEY)?.as_bytes();
        let mut found = None;
        for (key, partner) in self.keys.iter() {
            if bool::from(key.as_bytes().ct_eq(given)) {
                found = Some(Partner(partner.clone()));
            }
        }
        found
    }
}

impl<S> Service<Request> for ApiKey<S>
where
    S: Service<Request, Response = Response> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        match self.partner(request.headers()) {
            Some(partner) => {
                request.extensions_mut().insert(partner);
                Box::pin(self.inner.call(request))
            }
            None => Box::pin(async {
                let body = r#"{"error":"an x-api-key header with a partner key is required"}"#;
                Ok((StatusCode::UNAUTHORIZED, [(header::CONTENT_TYPE, "application/json")], body).into_response())
            }),
        }
    }
}

/// Our own route: who is calling.
async fn whoami(Extension(partner): Extension<Partner>) -> String {
    format!("hello, {}", partner.0)
}

/// The whole application: our routes and the marketplace under `/market`,
/// all behind the API-key layer, and a public health check.
fn app(market: Arc<Marketplace>, keys: impl IntoIterator<Item = (String, String)>) -> Router {
    Router::new()
        .route("/whoami", get(whoami))
        .nest("/market", bazaar_http::router(AppState::new(market)))
        .layer(ApiKeyLayer::new(keys))
        // Added after the layer, so not behind it: load balancers carry no key.
        .route("/health", get(|| async { "ok" }))
}

/// Sends one request to our own server and checks its status.
async fn call(request: reqwest::RequestBuilder, expect: StatusCode, what: &str) -> Outcome<serde_json::Value> {
    let response = request.send().await?;
    let status = response.status().as_u16();
    let body = response.text().await?;
    // Session answers carry tokens, which stay out of the output.
    let shown = if body.contains("access_token") { "(a session)".to_owned() } else { body.chars().take(100).collect() };
    println!("{what}: {status} {shown}");
    if status != expect.as_u16() {
        return Err(format!("{what}: expected {expect}, got {status}: {body}").into());
    }
    Ok(serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body)))
}

#[tokio::main]
async fn main() -> Outcome {
    let clock = Arc::new(SystemClock);
    let market = Marketplace::builder(MemoryBackend::new(clock.clone()).ports())
        .passwords(Arc::new(Argon2Passwords::default()))
        .tokens(Arc::new(JwtTokens::new(OsEntropy.bytes32())))
        .build()?;
    let partner_key = format!("{:x}", u128::from_le_bytes(OsEntropy.bytes32()[..16].try_into()?));
    let app = app(Arc::new(market), [(partner_key.clone(), "acme".to_owned())]);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    // The marketplace's auth routes rate-limit by client address, which
    // they read from the connect info.
    let server = tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });
    println!("listening on {base}");

    let http = reqwest::Client::new();
    let with_key = |r: reqwest::RequestBuilder| r.header(API_KEY, &partner_key);
    call(http.get(format!("{base}/health")), StatusCode::OK, "GET /health without a key").await?;
    call(http.get(format!("{base}/whoami")), StatusCode::UNAUTHORIZED, "GET /whoami without a key").await?;
    let wrong = http.get(format!("{base}/market/v1/products")).header(API_KEY, "guess");
    call(wrong, StatusCode::UNAUTHORIZED, "GET /market/v1/products with a wrong key").await?;
    let hello = call(with_key(http.get(format!("{base}/whoami"))), StatusCode::OK, "GET /whoami").await?;
    if hello != "hello, acme" {
        return Err(format!("our route saw the wrong partner: {hello}").into());
    }
    let page =
        call(with_key(http.get(format!("{base}/market/v1/products"))), StatusCode::OK, "GET /market/v1/products")
            .await?;
    if page.get("items").is_none() {
        return Err("the marketplace answers a page of products".into());
    }

    // The marketplace's own accounts and bearer tokens work under the prefix.
    let signup = serde_json::json!({
        "email": "ada@example.com", "password": "correct horse battery staple", "name": "Ada", "role": "vendor"
    });
    let register = with_key(http.post(format!("{base}/market/v1/auth/register")))
        .header(header::CONTENT_TYPE, "application/json")
        .body(signup.to_string());
    let session = call(register, StatusCode::CREATED, "POST /market/v1/auth/register").await?;
    let token = session["access_token"].as_str().ok_or("the session has an access token")?;
    let me = with_key(http.get(format!("{base}/market/v1/me"))).bearer_auth(token);
    let me = call(me, StatusCode::OK, "GET /market/v1/me with the bearer token").await?;
    if me["email"] != "ada@example.com" {
        return Err(format!("/me names someone else: {me}").into());
    }
    let anonymous = with_key(http.get(format!("{base}/market/v1/me")));
    call(anonymous, StatusCode::UNAUTHORIZED, "GET /market/v1/me without a bearer token").await?;
    call(with_key(http.get(format!("{base}/market/v1/nothing"))), StatusCode::NOT_FOUND, "GET /market/v1/nothing")
        .await?;

    let _ = stop.send(());
    server.await??;
    println!("done: own routes, the mounted API and the auth layer all answered as expected");
    Ok(())
}
