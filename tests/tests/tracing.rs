//! One purchase, one trace: `bazaar http` and `bazaar worker` as separate
//! processes (PostgreSQL, and NATS or Redis Streams as the bus) export
//! their spans over OTLP/HTTP to a receiver inside this test. A purchase
//! whose requests carry the client's `traceparent` yields spans of both
//! processes under that trace id: the order and pay requests (children of
//! the client's span), the relay's publish and the worker's processing of
//! their events (children of the requests), and the license insert inside
//! the processing. With the collector down, the same purchase completes and
//! both processes still stop cleanly.
//!
//! Through `bazaar gateway`, a request is one trace too: the replica's
//! request span is a child of the gateway's, which continues the client's.
//!
//! Needs PostgreSQL, NATS and Redis (`BAZAAR_TEST_*_URL`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use bazaar_e2e::flow::{license_for, one_time_product};
use bazaar_e2e::services::{DEFAULT_NATS_URL, DEFAULT_REDIS_URL, Schema, unreachable};
use bazaar_e2e::{Server, eventually, run_bazaar, str_of};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::common::v1::{AnyValue as Any, KeyValue};
use prost::Message as _;
use reqwest::Method;
use serde_json::json;

/// The client's trace: the trace id every span must carry, and the span
/// id the requests' server spans must be children of.
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

/// One exported span, flattened.
#[derive(Debug, Clone)]
struct Received {
    service: String,
    name: String,
    trace_id: String,
    span_id: String,
    parent: String,
    attributes: HashMap<String, String>,
}

type Spans = Arc<Mutex<Vec<Received>>>;

fn text(value: Option<&Any>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(AnyValue::StringValue(s)) => s.clone(),
        Some(AnyValue::IntValue(i)) => i.to_string(),
        Some(AnyValue::BoolValue(b)) => b.to_string(),
        Some(AnyValue::DoubleValue(d)) => d.to_string(),
        _ => String::new(),
    }
}

fn attributes(list: &[KeyValue]) -> HashMap<String, String> {
    list.iter().map(|kv| (kv.key.clone(), text(kv.value.as_ref()))).collect()
}

/// `POST /v1/traces`: an OTLP/HTTP protobuf export request.
async fn receive(State(spans): State<Spans>, body: Bytes) -> &'static str {
    let request = ExportTraceServiceRequest::decode(body).expect("an OTLP trace export request");
    let mut spans = spans.lock().expect("spans");
    for resource_spans in request.resource_spans {
        let resource = attributes(&resource_spans.resource.map(|r| r.attributes).unwrap_or_default());
        let service = resource.get("service.name").cloned().unwrap_or_default();
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                spans.push(Received {
                    service: service.clone(),
                    name: span.name,
                    trace_id: hex::encode(&span.trace_id),
                    span_id: hex::encode(&span.span_id),
                    parent: hex::encode(&span.parent_span_id),
                    attributes: attributes(&span.attributes),
                });
            }
        }
    }
    ""
}

/// Starts the receiver on a free port; returns its base URL and what it got.
async fn collector() -> (String, Spans) {
    let spans = Spans::default();
    let app = axum::Router::new().route("/v1/traces", axum::routing::post(receive)).with_state(spans.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the receiver");
    let url = format!("http://{}", listener.local_addr().expect("receiver address"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("the receiver runs") });
    (url, spans)
}

async fn reachable(service: &str, var: &str, default: &str, scheme: &str, start: &str) -> String {
    let url = std::env::var(var).unwrap_or_else(|_| default.to_owned());
    let host = url.trim_start_matches(scheme).trim_end_matches('/').to_owned();
    match tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(&host)).await {
        Ok(Ok(_)) => url,
        Ok(Err(e)) => unreachable(service, &url, &e.to_string(), start),
        Err(_) => unreachable(service, &url, "no answer within 5 s", start),
    }
}

async fn nats_env() -> (String, String) {
    let start = "start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server";
    ("NATS_URL".into(), reachable("NATS", "BAZAAR_TEST_NATS_URL", DEFAULT_NATS_URL, "nats://", start).await)
}

async fn redis_env() -> (String, String) {
    let url =
        reachable("Redis", "BAZAAR_TEST_REDIS_URL", DEFAULT_REDIS_URL, "redis://", "redis-server --daemonize yes")
            .await;
    ("REDIS_URL".into(), url)
}

/// The processes of one deployment, sharing a schema and a bus.
struct Deployment {
    schema: Schema,
    _dir: tempfile::TempDir,
    http: Server,
    worker: Server,
}

async fn deploy(bus: Vec<(String, String)>, collector: &str) -> Deployment {
    let schema = Schema::create().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut env = vec![("DATABASE_URL".to_owned(), schema.url())];
    env.extend(bus);
    let (code, out, err) = run_bazaar(dir.path(), &["seed", "--products", "12"], env.clone()).await;
    assert_eq!(code, Some(0), "seed: {out}{err}");
    env.extend([
        ("OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(), collector.to_owned()),
        ("OTEL_TRACES_SAMPLER".to_owned(), "parentbased_always_on".to_owned()),
        ("BAZAAR_LOG_FORMAT".to_owned(), "json".to_owned()),
    ]);
    let http =
        Server::start_with(dir.path(), &["http", "--http-addr", "127.0.0.1:0"], env.clone(), "http listening on ")
            .await;
    let worker =
        Server::start_with(dir.path(), &["worker", "--http-addr", "127.0.0.1:0"], env, "worker listening on ").await;
    Deployment { schema, _dir: dir, http, worker }
}

/// A purchase whose order and pay requests carry the client's trace;
/// returns the order id once the worker has issued its license.
async fn purchase(deployment: &Deployment, buyer: &str) -> String {
    let client = deployment.http.client();
    let (_, token) = client.register(buyer, "correct-horse-battery").await;
    let product = str_of(&one_time_product(&client, "customer-support").await["id"]);
    let traceparent = format!("00-{TRACE_ID}-{CLIENT_SPAN}-01");
    let body = json!({ "items": [{ "product_id": product }] });
    let headers = [("Idempotency-Key", buyer), ("traceparent", traceparent.as_str())];
    let placed = client.send(Method::POST, "/v1/orders", Some(&token), Some(&body), &headers).await;
    let placed = placed.expect(201, "order");
    let order_id = str_of(&placed["id"]);
    let paid = client
        .send(
            Method::POST,
            &format!("/v1/orders/{order_id}/pay"),
            Some(&token),
            Some(&json!({ "payment_method": "pm_card_visa" })),
            &[("traceparent", traceparent.as_str())],
        )
        .await;
    assert_eq!(paid.expect(200, "pay")["status"], "succeeded");
    // An error names both its request id (body) and its trace (header).
    let refused = reqwest::Client::new()
        .get(format!("{}/v1/orders/{order_id}", deployment.http.base))
        .header("traceparent", &traceparent)
        .send()
        .await
        .expect("GET the order without a token");
    assert_eq!(refused.status().as_u16(), 401);
    let answered = refused.headers().get("traceparent").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert!(answered.starts_with(&format!("00-{TRACE_ID}-")), "traceparent {answered:?}");
    assert!(!answered.contains(CLIENT_SPAN), "the answer names the server's span, not the client's");
    let body: serde_json::Value = refused.json().await.expect("a JSON error");
    assert!(!str_of(&body["request_id"]).is_empty(), "{body}");
    license_for(&client, &token, &order_id).await;
    order_id
}

async fn stop(deployment: Deployment) {
    assert_eq!(deployment.http.stop().await.code(), Some(0), "http stops gracefully");
    assert_eq!(deployment.worker.stop().await.code(), Some(0), "worker stops gracefully");
    deployment.schema.drop().await;
}

/// The spans of the client's trace, once they include everything the
/// purchase should show (the processes export in batches).
async fn trace_of_purchase(spans: &Spans) -> Vec<Received> {
    eventually("both processes to export the purchase's spans", || async {
        let trace: Vec<Received> =
            spans.lock().expect("spans").iter().filter(|s| s.trace_id == TRACE_ID).cloned().collect();
        let has = |service: &str, name: &str| trace.iter().any(|s| s.service == service && s.name == name);
        let complete = has("bazaar-http", "POST /v1/orders")
            && has("bazaar-http", "POST /v1/orders/{id}/pay")
            && has("bazaar-worker", "order.placed publish")
            && has("bazaar-worker", "payment.succeeded publish")
            && has("bazaar-worker", "payment.succeeded process")
            && has("bazaar-worker", "INSERT licenses");
        complete.then_some(trace)
    })
    .await
}

fn one<'a>(trace: &'a [Received], service: &str, name: &str) -> &'a Received {
    let found: Vec<_> = trace.iter().filter(|s| s.service == service && s.name == name).collect();
    assert!(!found.is_empty(), "no {name} span from {service} in {trace:#?}");
    found[0]
}

fn check_parenting(trace: &[Received]) {
    let order = one(trace, "bazaar-http", "POST /v1/orders");
    let pay = one(trace, "bazaar-http", "POST /v1/orders/{id}/pay");
    for request in [order, pay] {
        assert_eq!(request.parent, CLIENT_SPAN, "{request:?} continues the client's span");
        assert_eq!(request.attributes.get("http.request.method").map(String::as_str), Some("POST"));
        assert!(request.attributes.contains_key("http.route"), "{request:?}");
    }
    assert_eq!(pay.attributes.get("http.response.status_code").map(String::as_str), Some("200"));

    let placed = one(trace, "bazaar-worker", "order.placed publish");
    assert_eq!(placed.parent, order.span_id, "the relay publishes order.placed in the order request's trace");
    let published = one(trace, "bazaar-worker", "payment.succeeded publish");
    assert_eq!(published.parent, pay.span_id, "the relay publishes payment.succeeded under the pay request");
    assert_eq!(published.attributes.get("cloudevents.event_type").map(String::as_str), Some("payment.succeeded"));
    assert!(!published.attributes.get("messaging.message.id").cloned().unwrap_or_default().is_empty());

    let processes: Vec<_> = trace.iter().filter(|s| s.name == "payment.succeeded process").collect();
    assert!(processes.iter().all(|p| p.service == "bazaar-worker" && p.parent == pay.span_id), "{processes:#?}");

    // The license insert runs inside the worker's processing of the payment.
    let insert = one(trace, "bazaar-worker", "INSERT licenses");
    assert_eq!(insert.attributes.get("db.system.name").map(String::as_str), Some("postgresql"));
    assert_eq!(insert.attributes.get("db.operation.name").map(String::as_str), Some("INSERT"));
    let by_id: HashMap<&str, &Received> = trace.iter().map(|s| (s.span_id.as_str(), s)).collect();
    let mut chain = vec![insert.name.clone()];
    let mut at = insert;
    while let Some(parent) = by_id.get(at.parent.as_str()) {
        chain.push(format!("{} ({})", parent.name, parent.service));
        at = parent;
    }
    assert_eq!(at.parent, CLIENT_SPAN, "the insert's ancestry reaches the client: {chain:?}");
    assert!(chain.iter().any(|c| c.ends_with("process (bazaar-worker)")), "{chain:?}");
    assert!(chain.iter().any(|c| c.ends_with("(bazaar-http)")), "{chain:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purchase_over_nats_is_one_trace_across_the_http_and_worker_processes() {
    let bus = vec![nats_env().await];
    let (url, spans) = collector().await;
    let deployment = deploy(bus, &url).await;
    purchase(&deployment, "trace-nats@e2e.test").await;
    let trace = trace_of_purchase(&spans).await;
    check_parenting(&trace);
    stop(deployment).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purchase_over_redis_streams_is_one_trace_across_the_http_and_worker_processes() {
    let redis = redis_env().await;
    let prefix = ("BAZAAR_REDIS_BUS_PREFIX".to_owned(), format!("{}:", bazaar_e2e::services::unique("trace")));
    let (url, spans) = collector().await;
    let deployment = deploy(vec![redis, prefix], &url).await;
    purchase(&deployment, "trace-redis@e2e.test").await;
    let trace = trace_of_purchase(&spans).await;
    check_parenting(&trace);
    stop(deployment).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_collector_down_the_purchase_completes_and_the_processes_stop_cleanly() {
    let bus = vec![nats_env().await];
    // A port nobody listens on: bound, then released.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}", listener.local_addr().expect("address"))
    };
    let deployment = deploy(bus, &closed).await;
    purchase(&deployment, "trace-down@e2e.test").await;
    stop(deployment).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_through_the_gateway_is_one_trace_with_the_replica_under_the_gateway() {
    let schema = Schema::create().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let (url, spans) = collector().await;
    let mut env = vec![("DATABASE_URL".to_owned(), schema.url()), nats_env().await];
    let (code, out, err) = run_bazaar(dir.path(), &["seed", "--products", "3"], env.clone()).await;
    assert_eq!(code, Some(0), "seed: {out}{err}");
    env.extend([
        ("OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(), url),
        ("OTEL_TRACES_SAMPLER".to_owned(), "parentbased_always_on".to_owned()),
    ]);
    let http =
        Server::start_with(dir.path(), &["http", "--http-addr", "127.0.0.1:0"], env.clone(), "http listening on ")
            .await;
    let upstream = format!("api={}", http.base);
    // Same data dir: the gateway verifies tokens with the replica's keys.json.
    let gateway = Server::start_with(
        dir.path(),
        &["gateway", "--upstream", upstream.as_str(), "--http-addr", "127.0.0.1:0"],
        env,
        "gateway listening on ",
    )
    .await;

    let traceparent = format!("00-{TRACE_ID}-{CLIENT_SPAN}-01");
    let reply = gateway
        .client()
        .send(Method::GET, "/v1/products?limit=2", None, None, &[("traceparent", traceparent.as_str())])
        .await;
    reply.expect(200, "search through the gateway");

    let trace = eventually("the gateway and the replica to export their spans", || async {
        let trace: Vec<Received> =
            spans.lock().expect("spans").iter().filter(|s| s.trace_id == TRACE_ID).cloned().collect();
        let has = |service: &str| trace.iter().any(|s| s.service == service);
        (has("bazaar-gateway") && has("bazaar-http")).then_some(trace)
    })
    .await;
    let edge = trace.iter().find(|s| s.service == "bazaar-gateway").expect("a gateway span");
    assert_eq!(edge.parent, CLIENT_SPAN, "the gateway continues the client's span: {edge:?}");
    assert_eq!(edge.attributes.get("http.request.method").map(String::as_str), Some("GET"));
    assert_eq!(edge.attributes.get("http.response.status_code").map(String::as_str), Some("200"));
    let replica = one(&trace, "bazaar-http", "GET /v1/products");
    assert_eq!(replica.parent, edge.span_id, "the replica's request span is a child of the gateway's");

    assert_eq!(gateway.stop().await.code(), Some(0), "the gateway stops gracefully");
    assert_eq!(http.stop().await.code(), Some(0));
    schema.drop().await;
}
