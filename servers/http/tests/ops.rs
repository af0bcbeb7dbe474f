//! Tests of the ops routes and the middleware every route shares: health and
//! readiness, metrics, request ids, the JSON 404/405, timeouts, body limits,
//! the request span, the docs page, and `serve` with graceful shutdown.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode, header};
use bazaar_core::health::Probe;
use bazaar_http::HttpSettings;
use common::{TestApp, error_code};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn get(app: &TestApp, uri: &str) -> common::Reply {
    app.send("GET", uri, None, None).await
}

#[tokio::test]
async fn health_and_liveness_answer_ok() {
    let app = TestApp::new();
    for uri in ["/health", "/health/live"] {
        let r = get(&app, uri).await;
        assert_eq!((r.status, &r.json), (StatusCode::OK, &json!({"status": "ok"})), "{uri}");
    }
}

#[tokio::test]
async fn readiness_on_memory_stores_is_ok_with_no_checks() {
    let app = TestApp::new();
    let r = get(&app, "/health/ready").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json, json!({"status": "ok", "checks": []}));
}

/// A [`TestApp`] whose ports carry `probes`.
fn app_with_probes(probes: Vec<Probe>) -> TestApp {
    TestApp::custom(
        HttpSettings::default(),
        |mut ports| {
            ports.probes.extend(probes);
            ports
        },
        |builder| builder,
    )
}

#[tokio::test]
async fn readiness_is_503_naming_the_failed_probe() {
    let ok = Probe::new("bus", || Box::pin(async { Ok(()) }));
    let down = Probe::new("database", || {
        Box::pin(async { Err(bazaar_core::Error::unavailable("database", "password=hunter2 refused")) })
    });
    let app = app_with_probes(vec![ok.clone()]);
    let r = get(&app, "/health/ready").await;
    assert_eq!((r.status, &r.json["checks"]), (StatusCode::OK, &json!([{"name": "bus", "status": "ok"}])));

    let app = app_with_probes(vec![ok, down]);
    let r = get(&app, "/health/ready").await;
    assert_eq!((r.status, error_code(&r)), (StatusCode::SERVICE_UNAVAILABLE, "unavailable".into()));
    assert!(r.json["error"]["message"].as_str().unwrap().contains("database"), "{}", r.json);
    assert_eq!(
        r.json["error"]["details"]["checks"],
        json!([{"name": "bus", "status": "ok"}, {"name": "database", "status": "failed"}])
    );
    assert!(!String::from_utf8_lossy(&r.bytes).contains("hunter2"), "the cause stays in the logs");
    assert!(r.headers.contains_key(header::RETRY_AFTER));
    // Liveness does not depend on the backends.
    assert_eq!(get(&app, "/health/live").await.status, StatusCode::OK);
}

#[tokio::test]
async fn readiness_probes_run_once_per_ttl_however_often_asked() {
    let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = runs.clone();
    let probe = Probe::new("database", move || {
        counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Box::pin(async { Ok(()) })
    });
    let app = |ttl: Duration, probe: Probe| {
        let settings = HttpSettings { readiness_ttl: ttl, ..HttpSettings::default() };
        TestApp::custom(
            settings,
            |mut ports| {
                ports.probes.push(probe);
                ports
            },
            |builder| builder,
        )
    };
    let cached = app(Duration::from_secs(60), probe.clone());
    let answers = futures::future::join_all((0..20).map(|_| get(&cached, "/health/ready"))).await;
    assert!(answers.iter().all(|r| r.status == StatusCode::OK));
    assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 1, "a burst runs the probes once");

    let uncached = app(Duration::ZERO, probe);
    get(&uncached, "/health/ready").await;
    get(&uncached, "/health/ready").await;
    assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 3);
}

#[tokio::test]
async fn metrics_count_requests_by_route_template() {
    let app = TestApp::new();
    get(&app, "/health/live").await;
    let id = uuid::Uuid::now_v7();
    get(&app, &format!("/v1/products/{id}")).await;
    let r = get(&app, "/metrics").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/plain"));
    let text = String::from_utf8(r.bytes).unwrap();
    let has = |name: &str, labels: &[&str]| {
        text.lines().any(|l| l.starts_with(name) && labels.iter().all(|label| l.contains(label)))
    };
    assert!(has("http_requests_total{", &["method=\"GET\"", "route=\"/health/live\"", "status=\"200\""]), "{text}");
    assert!(has("http_requests_total{", &["route=\"/v1/products/{id}\"", "status=\"404\""]), "{text}");
    assert!(!text.contains(&id.to_string()), "raw URIs must not become labels");
    // A Prometheus histogram (buckets), not a summary, so replicas can be summed.
    assert!(has("http_request_duration_seconds_bucket{", &["route=\"/health/live\"", "le=\"0.005\""]), "{text}");
    assert!(has("http_request_duration_seconds_count{", &["route=\"/health/live\"", "status=\"200\""]), "{text}");
}

#[tokio::test]
async fn a_callers_trace_context_is_answered_and_a_malformed_one_ignored() {
    // This test process installs no tracing backend: the caller's context
    // passes through unchanged (what a non-tracing hop must do).
    let app = TestApp::new();
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let req = Request::get("/nowhere").header("traceparent", traceparent).body(Body::empty()).unwrap();
    let r = app.call(req).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.headers["traceparent"], traceparent);
    assert!(!r.json["request_id"].as_str().unwrap_or_default().is_empty());

    let req = Request::get("/health").header("traceparent", "00-not-a-trace-01").body(Body::empty()).unwrap();
    let r = app.call(req).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(!r.headers.contains_key("traceparent"), "no trace here without a backend or a valid caller");
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated_and_reach_error_bodies() {
    let app = TestApp::new();
    let req = Request::get("/nowhere").header("x-request-id", "client-chosen-42").body(Body::empty()).unwrap();
    let r = app.call(req).await;
    assert_eq!(r.headers["x-request-id"], "client-chosen-42");
    assert_eq!((r.status, error_code(&r)), (StatusCode::NOT_FOUND, "not_found".into()));
    assert_eq!(r.json["request_id"], "client-chosen-42");

    let r = get(&app, "/nowhere").await;
    let made = r.headers["x-request-id"].to_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&made).is_ok(), "a UUID is made: {made}");
    assert_eq!(r.json["request_id"], made.as_str());

    let r = get(&app, "/health").await;
    assert!(r.headers.contains_key("x-request-id"), "successes carry one too");
    assert_ne!(get(&app, "/health").await.headers["x-request-id"], r.headers["x-request-id"]);
}

#[tokio::test]
async fn unknown_routes_and_methods_get_json_errors() {
    let app = TestApp::new();
    let r = get(&app, "/v2/anything").await;
    assert_eq!((r.status, error_code(&r)), (StatusCode::NOT_FOUND, "not_found".into()));
    assert_eq!(r.headers[header::CONTENT_TYPE], "application/json");
    let r = app.send("DELETE", "/v1/products", None, None).await;
    assert_eq!((r.status, error_code(&r)), (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed".into()));
}

#[tokio::test]
async fn json_bodies_over_the_limit_are_413() {
    let app = TestApp::with_settings(HttpSettings { json_limit: 64, ..HttpSettings::default() });
    let body = json!({"email": "a@example.com", "password": "x".repeat(100)});
    let r = app.send("POST", "/v1/auth/login", None, Some(body)).await;
    assert_eq!((r.status, error_code(&r)), (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large".into()));
    let r = app.send("POST", "/v1/auth/login", None, Some(json!({"email": "a@example.com", "password": "p"}))).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "under the limit it is read");
}

#[tokio::test]
async fn slow_requests_are_408() {
    let app =
        TestApp::with_settings(HttpSettings { request_timeout: Duration::from_millis(100), ..HttpSettings::default() });
    let vendor = app.register("vendor").await;
    let body = json!({"title": "Slow upload", "kind": "ai_agent", "categories": ["ai"], "pricing": {"type": "free"}});
    let product = app.send("POST", "/v1/products", Some(&vendor.token), Some(body)).await;
    let id = product.json["id"].as_str().unwrap();
    // A body that never arrives: only the timeout can end this request.
    let never = futures::stream::pending::<Result<Bytes, std::io::Error>>();
    let req = Request::post(format!("/v1/products/{id}/assets?file_name=a.txt"))
        .header(header::AUTHORIZATION, format!("Bearer {}", vendor.token))
        .header(header::CONTENT_TYPE, "text/plain")
        .header("x-request-id", "slow-1")
        .body(Body::from_stream(never))
        .unwrap();
    let r = app.call(req).await;
    assert_eq!((r.status, error_code(&r)), (StatusCode::REQUEST_TIMEOUT, "timeout".into()));
    assert_eq!(r.json["request_id"], "slow-1");
}

#[tokio::test]
async fn docs_page_and_its_assets_come_from_this_server() {
    let app = TestApp::new();
    let r = get(&app, "/docs").await;
    assert_eq!(r.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(r.headers[header::LOCATION], "docs/", "relative, so it works under a prefix");

    let r = get(&app, "/docs/").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/html"));
    let html = String::from_utf8(r.bytes).unwrap();
    assert!(!html.contains("http://") && !html.contains("https://"), "no other origin in the page: {html}");
    for asset in ["swagger-ui-bundle.js", "swagger-ui.css", "swagger-initializer.js"] {
        assert!(html.contains(asset), "the page loads {asset}");
        let r = get(&app, &format!("/docs/{asset}")).await;
        assert_eq!(r.status, StatusCode::OK, "{asset}");
        assert!(r.bytes.len() > 100, "{asset} is served from the binary");
    }

    let init = String::from_utf8(get(&app, "/docs/swagger-initializer.js").await.bytes).unwrap();
    assert!(init.contains("\"../openapi.json\""), "the viewer reads the served document: {init}");
    assert!(init.contains("\"validatorUrl\": \"none\""), "no call to swagger.io's validator: {init}");

    let r = get(&app, "/docs/no-such-file.js").await;
    assert_eq!((r.status, error_code(&r)), (StatusCode::NOT_FOUND, "not_found".into()));
}

/// Records the fields of every `http_request` span.
#[derive(Clone, Default)]
struct SpanRecorder(Arc<Mutex<Vec<HashMap<String, String>>>>);

struct FieldVisitor<'a>(&'a mut HashMap<String, String>);

impl tracing::field::Visit for FieldVisitor<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for SpanRecorder {
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        _id: &tracing::span::Id,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if attrs.metadata().name() == "http_request" {
            let mut fields = HashMap::new();
            attrs.record(&mut FieldVisitor(&mut fields));
            self.0.lock().unwrap().push(fields);
        }
    }
}

/// The process-wide recorder: a global subscriber rather than a scoped one,
/// because tracing caches per-callsite interest across threads and other
/// tests of this binary run concurrently without a subscriber.
fn recorder() -> SpanRecorder {
    use tracing_subscriber::layer::SubscriberExt;
    static RECORDER: OnceLock<SpanRecorder> = OnceLock::new();
    RECORDER
        .get_or_init(|| {
            let recorder = SpanRecorder::default();
            tracing::subscriber::set_global_default(tracing_subscriber::registry().with(recorder.clone()))
                .expect("no other global subscriber in this test binary");
            recorder
        })
        .clone()
}

#[tokio::test]
async fn each_request_gets_a_span_with_method_route_and_request_id() {
    let recorder = recorder();
    let app = TestApp::new();
    let id = uuid::Uuid::now_v7();
    let req = Request::get(format!("/v1/products/{id}")).header("x-request-id", "span-7").body(Body::empty()).unwrap();
    app.call(req).await;
    let spans = recorder.0.lock().unwrap().clone();
    let span = spans.iter().find(|s| s.get("request_id").map(String::as_str) == Some("span-7")).expect("a span");
    assert_eq!(span["method"], "GET");
    assert_eq!(span["route"], "/v1/products/{id}");
}

#[tokio::test]
async fn serve_answers_on_a_socket_and_stops_on_shutdown() {
    let app = TestApp::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(bazaar_http::serve(listener, app.state.clone(), async {
        let _ = stopped.await;
    }));

    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("{\"status\":\"ok\"}"), "{response}");
    assert!(response.to_ascii_lowercase().contains("x-request-id:"), "{response}");

    stop.send(()).unwrap();
    let result = tokio::time::timeout(Duration::from_secs(30), server).await.expect("serve returns after shutdown");
    result.unwrap().unwrap();
}

#[tokio::test]
async fn serve_with_serves_extra_routes_beside_the_api() {
    let app = TestApp::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let extra = axum::Router::new().route("/extra", axum::routing::get(|| async { "from another transport" }));
    let server = tokio::spawn(bazaar_http::serve_with(listener, app.state.clone(), extra, async {
        let _ = stopped.await;
    }));

    let get = |path: &'static str| async move {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        response
    };
    let extra = get("/extra").await;
    assert!(extra.starts_with("HTTP/1.1 200") && extra.ends_with("from another transport"), "{extra}");
    let health = get("/health").await;
    assert!(health.starts_with("HTTP/1.1 200"), "the API is still there: {health}");
    let unknown = get("/nope").await;
    assert!(unknown.starts_with("HTTP/1.1 404") && unknown.contains("\"request_id\""), "the API's fallback: {unknown}");

    stop.send(()).unwrap();
    let result = tokio::time::timeout(Duration::from_secs(30), server).await.expect("serve returns after shutdown");
    result.unwrap().unwrap();
}

/// Serves `settings` on a loopback port until the returned sender is used.
async fn served(settings: HttpSettings) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let app = TestApp::custom(settings, |p| p, |b| b);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(bazaar_http::serve(listener, app.state.clone(), async {
        let _ = stopped.await;
    }));
    (addr, stop)
}

#[tokio::test]
async fn a_client_trickling_its_request_head_is_cut_off() {
    let settings = HttpSettings { header_read_timeout: Duration::from_millis(300), ..HttpSettings::default() };
    let (addr, _stop) = served(settings).await;
    let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n").await.unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), slow.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the server closed the connection");
    assert!(!String::from_utf8_lossy(&buf).contains("200 OK"), "no answer to a request never finished");
    // A whole request on a new connection is served as usual.
    let mut fast = tokio::net::TcpStream::connect(addr).await.unwrap();
    fast.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut response = String::new();
    fast.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}

#[tokio::test]
async fn connections_over_the_cap_wait_until_one_closes() {
    let settings = HttpSettings { max_connections: 1, ..HttpSettings::default() };
    let (addr, _stop) = served(settings).await;
    let mut holder = tokio::net::TcpStream::connect(addr).await.unwrap();
    holder.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n").await.unwrap();
    let mut first = [0u8; 12];
    holder.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200", "the first connection is served and kept alive");

    let mut waiting = tokio::net::TcpStream::connect(addr).await.unwrap();
    waiting.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut response = String::new();
    let early = tokio::time::timeout(Duration::from_millis(500), waiting.read_to_string(&mut response)).await;
    assert!(early.is_err(), "served beyond the cap: {response}");
    drop(holder);
    tokio::time::timeout(Duration::from_secs(10), waiting.read_to_string(&mut response))
        .await
        .expect("served once the first connection closed")
        .unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}
