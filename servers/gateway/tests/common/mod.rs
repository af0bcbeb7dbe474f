//! Test upstreams (small hyper servers on 127.0.0.1:0 that can be told to
//! fail, hang, stream slowly, or be killed and restarted), a gateway
//! runner, an HTTP client and a JWT verifier for the gateway tests.

#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bazaar_core::auth::Role;
use bazaar_core::ids::UserId;
use bazaar_gateway::{Gateway, GatewayConfig, TokenRejection, TokenVerifier, VerifiedToken, serve};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinSet;

/// How an upstream answers ordinary requests.
pub const OK: u8 = 0;
/// 503 to everything but health checks.
pub const FAIL: u8 = 1;
/// Never answers.
pub const HANG: u8 = 2;

pub type TestBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<TestBody> {
    let mut r = Response::new(Full::new(body.into()).boxed());
    *r.status_mut() = status;
    r
}

/// Shared state of one test upstream.
#[derive(Debug, Default)]
pub struct UpstreamState {
    pub mode: AtomicU8,
    pub hits: AtomicU64,
    pub by_path: Mutex<HashMap<String, u64>>,
    /// Released to let `/stream` send its second chunk.
    pub release: Notify,
}

/// A test upstream server.
pub struct Upstream {
    pub name: String,
    pub addr: SocketAddr,
    pub state: Arc<UpstreamState>,
    tasks: Arc<Mutex<JoinSet<()>>>,
}

impl Upstream {
    pub async fn start(name: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Self { name: name.into(), addr, state: Arc::default(), tasks: Arc::default() };
        up.serve_on(listener);
        up
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn hits(&self) -> u64 {
        self.state.hits.load(Ordering::SeqCst)
    }

    pub fn hits_on(&self, path: &str) -> u64 {
        self.state.by_path.lock().get(path).copied().unwrap_or(0)
    }

    pub fn set_mode(&self, mode: u8) {
        self.state.mode.store(mode, Ordering::SeqCst);
    }

    /// Like kill -9: the listener and every open connection vanish at once.
    pub fn kill(&self) {
        self.tasks.lock().abort_all();
    }

    /// Listens again on the same port.
    pub async fn restart(&self) {
        let listener = TcpListener::bind(self.addr).await.unwrap();
        self.serve_on(listener);
    }

    fn serve_on(&self, listener: TcpListener) {
        let (state, name, tasks) = (self.state.clone(), self.name.clone(), self.tasks.clone());
        let conns = self.tasks.clone();
        tasks.lock().spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let (state, name) = (state.clone(), name.clone());
                let service = service_fn(move |req| handle(state.clone(), name.clone(), req));
                conns.lock().spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades()
                        .await;
                });
            }
        });
    }
}

async fn handle(
    state: Arc<UpstreamState>,
    name: String,
    req: Request<Incoming>,
) -> Result<Response<TestBody>, Infallible> {
    let path = req.uri().path().to_owned();
    if path == "/health/ready" {
        return Ok(text(StatusCode::OK, "ready"));
    }
    state.hits.fetch_add(1, Ordering::SeqCst);
    *state.by_path.lock().entry(path.clone()).or_default() += 1;
    match state.mode.load(Ordering::SeqCst) {
        FAIL => return Ok(text(StatusCode::SERVICE_UNAVAILABLE, format!("{name} failing"))),
        HANG => {
            std::future::pending::<()>().await;
        }
        _ => {}
    }
    Ok(match path.as_str() {
        "/echo" | "/v1/echo" | "/a/echo" | "/b/echo" => {
            let h = |n: &str| req.headers().get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
            let method = req.method().to_string();
            let uri = req.uri().to_string();
            let headers = json!({
                "x-request-id": h("x-request-id"), "traceparent": h("traceparent"),
                "x-forwarded-for": h("x-forwarded-for"), "host": h("host"), "authorization": h("authorization"),
            });
            let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            let doc =
                json!({ "server": name, "method": method, "uri": uri, "headers": headers, "body_len": body.len() });
            text(StatusCode::OK, doc.to_string())
        }
        "/stream" => {
            // First chunk at once, the second only when the test says so.
            let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(2);
            tokio::spawn(async move {
                let _ = tx.send(Ok(Frame::data(Bytes::from_static(b"first;")))).await;
                state.release.notified().await;
                let _ = tx.send(Ok(Frame::data(Bytes::from_static(b"second")))).await;
            });
            let stream = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|f| (f, rx)) });
            Response::new(StreamBody::new(stream).boxed())
        }
        _ => text(StatusCode::OK, name),
    })
}

/// A running gateway.
pub struct Running {
    pub addr: SocketAddr,
    pub gateway: Gateway,
    stop: Option<oneshot::Sender<()>>,
    pub served: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Signals shutdown; `served` then completes once drained.
    pub fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub async fn run(gateway: Gateway) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let served = tokio::spawn(serve(listener, gateway.clone(), async move {
        let _ = stopped.await;
    }));
    Running { addr, gateway, stop: Some(stop), served }
}

pub async fn start(toml: &str) -> Running {
    run(Gateway::builder(GatewayConfig::from_toml(toml).unwrap()).build().unwrap()).await
}

/// A plain HTTP/1.1 client.
pub fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

pub async fn send(request: Request<Full<Bytes>>) -> Answer {
    let response = client().request(request).await.expect("the gateway answers");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("whole body").to_bytes();
    Answer { status: parts.status, headers: parts.headers, body: String::from_utf8_lossy(&body).into_owned() }
}

pub async fn get(url: &str) -> Answer {
    send(Request::get(url).body(Full::default()).unwrap()).await
}

pub fn request(method: &str, url: &str) -> http::request::Builder {
    Request::builder().method(method).uri(url)
}

/// The gateway's status document.
pub async fn status(running: &Running) -> Value {
    get(&running.url("/gateway/status")).await.json()
}

/// The status entry of the instance at `addr` in `pool`.
pub fn instance<'a>(status: &'a Value, pool: &str, addr: SocketAddr) -> &'a Value {
    let pool = status["pools"].as_array().unwrap().iter().find(|p| p["name"] == pool).expect("pool in status");
    pool["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["address"] == format!("http://{addr}"))
        .expect("instance in status")
}

pub const SECRET: &[u8] = b"test-secret-shared-by-every-replica";

#[derive(serde::Serialize, serde::Deserialize)]
struct Claims {
    sub: String,
    role: String,
    iat: u64,
    exp: u64,
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// An HS256 token for `user`, expiring `ttl_secs` from now (negative: past).
pub fn token(user: UserId, ttl_secs: i64) -> String {
    let now = now_secs();
    let exp = (now as i64 + ttl_secs) as u64;
    let claims = Claims { sub: user.to_string(), role: "customer".into(), iat: now.saturating_sub(120), exp };
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &jsonwebtoken::EncodingKey::from_secret(SECRET))
        .unwrap()
}

/// What the composition root would supply: HS256 verification.
#[derive(Debug)]
pub struct JwtVerifier;

impl TokenVerifier for JwtVerifier {
    fn verify(&self, token: &str) -> Result<VerifiedToken, TokenRejection> {
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.leeway = 0;
        let data = jsonwebtoken::decode::<Claims>(token, &jsonwebtoken::DecodingKey::from_secret(SECRET), &validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenRejection::Expired,
                _ => TokenRejection::Invalid,
            })?;
        let user_id = data.claims.sub.parse::<UserId>().map_err(|_| TokenRejection::Invalid)?;
        let role = match data.claims.role.as_str() {
            "customer" => Role::Customer,
            "vendor" => Role::Vendor,
            "admin" => Role::Admin,
            _ => return Err(TokenRejection::Invalid),
        };
        Ok(VerifiedToken { user_id, role, expires_at: UNIX_EPOCH + Duration::from_secs(data.claims.exp) })
    }
}
