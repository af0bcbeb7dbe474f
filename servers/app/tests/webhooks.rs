//! Vendor webhooks as `bazaar serve` wires them: the HTTP API registers the
//! endpoint, the worker's delivery loop POSTs over the reqwest transport to
//! a real local receiver, signed with the secret the registration answered.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use bazaar_app::demo::{self, DEMO_BUYER_EMAIL, DEMO_PASSWORD, DEMO_VENDOR_EMAIL};
use bazaar_app::{App, AppOptions, Config};
use bazaar_core::clock::{Clock, SystemClock};
use bazaar_core::payments::webhook::{DEFAULT_TOLERANCE, verify};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;

/// A receiver on a loopback port that records every request and answers
/// 204, except 500 to the first one.
struct Receiver {
    url: String,
    got: Arc<std::sync::Mutex<Vec<(axum::http::HeaderMap, String)>>>,
}

impl Receiver {
    async fn start() -> Self {
        let got: Arc<std::sync::Mutex<Vec<(axum::http::HeaderMap, String)>>> = Arc::default();
        let log = got.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
                let log = log.clone();
                async move {
                    let mut log = log.lock().unwrap();
                    log.push((headers, body));
                    if log.len() == 1 { StatusCode::INTERNAL_SERVER_ERROR } else { StatusCode::NO_CONTENT }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, got }
    }
}

async fn send(app: &App, method: &str, uri: &str, token: &str, body: Option<Value>) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header("Idempotency-Key", uuid::Uuid::now_v7().to_string())
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .unwrap();
    let response = bazaar_http::router(bazaar_http::AppState::new(app.market.clone())).oneshot(req).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

async fn open(allow_local: bool) -> (App, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    // A demo process: it seeds the demo logins and signs in with them.
    let mut config = Config { demo: true, ..Config::embedded(dir.path()) };
    config.webhooks_allow_local = allow_local;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let app = App::build_with(config, AppOptions::new(clock).fast_passwords()).await.unwrap();
    demo::seed_demo(&app.market, 1, |_| {}).await.unwrap();
    app.refresh_search().unwrap();
    (app, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_delivers_a_sale_signed_and_in_order_to_the_vendors_endpoint_retrying_a_refusal() {
    let receiver = Receiver::start().await;
    let (app, _dir) = open(true).await;
    let vendor = app.market.auth.login(DEMO_VENDOR_EMAIL, DEMO_PASSWORD).await.unwrap().access.token;
    let buyer = app.market.auth.login(DEMO_BUYER_EMAIL, DEMO_PASSWORD).await.unwrap().access.token;
    let body = json!({"url": receiver.url, "events": ["order.paid", "license.issued"]});
    let (status, endpoint) = send(&app, "POST", "/v1/webhook-endpoints", &vendor, Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{endpoint}");
    let secret = endpoint["secret"].as_str().unwrap().as_bytes().to_vec();

    let (_, products) = send(&app, "GET", "/v1/products", &buyer, None).await;
    let product = products["items"][0]["id"].as_str().unwrap().to_owned();
    let (status, order) =
        send(&app, "POST", "/v1/orders", &buyer, Some(json!({"items": [{"product_id": product}]}))).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let order_id = order["id"].as_str().unwrap().to_owned();
    let (status, paid) = send(
        &app,
        "POST",
        &format!("/v1/orders/{order_id}/pay"),
        &buyer,
        Some(json!({"payment_method": "pm_card_visa"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{paid}");

    let worker = bazaar_worker::Worker::new(app.market.clone(), bazaar_worker::WorkerConfig::default());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(async move {
        worker
            .run(async {
                stopped.await.ok();
            })
            .await
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while receiver.got.lock().unwrap().len() < 3 {
        assert!(tokio::time::Instant::now() < deadline, "the endpoint did not receive both events in 20 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(()).unwrap();
    running.await.unwrap();

    let got = receiver.got.lock().unwrap().clone();
    assert_eq!(got.len(), 3, "the refused event again, then the next: {got:?}");
    let sent: Vec<_> = got
        .iter()
        .map(|(h, _)| {
            (h["bazaar-event-type"].to_str().unwrap().to_owned(), h["bazaar-attempt"].to_str().unwrap().to_owned())
        })
        .collect();
    let expected = [("order.paid", "1"), ("order.paid", "2"), ("license.issued", "1")];
    assert_eq!(sent, expected.map(|(t, a)| (t.to_owned(), a.to_owned())), "retried, and nothing overtook it");
    assert_eq!(got[0].1, got[1].1, "a retry sends the same body");
    for (headers, body) in &got {
        assert_eq!(headers[header::CONTENT_TYPE], "application/json");
        let signature = headers["bazaar-signature"].to_str().unwrap();
        verify(signature, body.as_bytes(), std::slice::from_ref(&secret), SystemClock.now(), DEFAULT_TOLERANCE)
            .expect("signed with the endpoint's secret");
        let parsed: Value = serde_json::from_str(body).unwrap();
        assert_eq!(parsed["id"], headers["bazaar-event-id"].to_str().unwrap());
        assert_eq!(parsed["data"]["order_id"], order_id.as_str());
    }
    let (_, deliveries) = send(
        &app,
        "GET",
        &format!("/v1/webhook-endpoints/{}/deliveries", endpoint["id"].as_str().unwrap()),
        &vendor,
        None,
    )
    .await;
    let statuses: Vec<_> = deliveries["items"].as_array().unwrap().iter().map(|d| d["status"].clone()).collect();
    assert_eq!(statuses, [json!("delivered"), json!("delivered")]);
}

#[tokio::test]
async fn local_endpoints_are_refused_unless_the_setting_allows_them() {
    let (app, _dir) = open(false).await;
    let vendor = app.market.auth.login(DEMO_VENDOR_EMAIL, DEMO_PASSWORD).await.unwrap().access.token;
    let body = json!({"url": "http://127.0.0.1:9/hook", "events": ["order.paid"]});
    let (status, reply) = send(&app, "POST", "/v1/webhook-endpoints", &vendor, Some(body)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{reply}");
    assert_eq!(reply["error"]["details"][0]["field"], "url");
}
