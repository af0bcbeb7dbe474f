//! WebSocket tunnels with edge auth (header, query, subprotocol), gRPC over
//! h2c with trailers, and pools fed by the service directory.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bazaar_core::ids::UserId;
use bazaar_core::resilience::registry::{InMemoryDirectory, Registration, ServiceDirectory};
use bazaar_gateway::{Gateway, GatewayConfig};
use bytes::Bytes;
use common::*;
use futures::{SinkExt, StreamExt};
use http::{HeaderMap, HeaderValue, Request, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::server::{Request as WsRequest, Response as WsResponse};

/// A WebSocket echo server that picks the first non-bearer subprotocol.
// tungstenite's callback signature fixes the error type.
#[allow(clippy::result_large_err)]
async fn ws_upstream() -> (String, Arc<std::sync::atomic::AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let handshakes = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = handshakes.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let counter = counter.clone();
            tokio::spawn(async move {
                let callback = |req: &WsRequest, mut resp: WsResponse| {
                    counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let chosen =
                        req.headers().get("sec-websocket-protocol").and_then(|v| v.to_str().ok()).and_then(|v| {
                            v.split(',').map(str::trim).find(|p| !p.starts_with("bearer.")).map(str::to_owned)
                        });
                    if let Some(p) = chosen {
                        resp.headers_mut().insert("sec-websocket-protocol", HeaderValue::from_str(&p).unwrap());
                    }
                    Ok(resp)
                };
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else { return };
                while let Some(Ok(message)) = ws.next().await {
                    if (message.is_text() || message.is_binary()) && ws.send(message).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    (url, handshakes)
}

async fn ws_gateway(upstream: &str) -> Running {
    let config = GatewayConfig::from_toml(&format!(
        "[pools.ws]\ninstances = [\"{upstream}\"]\nhealth = {{ enabled = false }}\n[[routes]]\nprefix = \"/\"\npool = \"ws\"\nauth = \"required\"\n"
    ))
    .unwrap();
    run(Gateway::builder(config).verifier(Arc::new(JwtVerifier)).build().unwrap()).await
}

async fn echo_once(request: tokio_tungstenite::tungstenite::handshake::client::Request) {
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.expect("handshake through the gateway");
    ws.send(Message::text("order fulfilled?")).await.unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(5), ws.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(answer.into_text().unwrap().as_str(), "order fulfilled?");
    ws.close(None).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websockets_are_tunnelled_with_the_token_from_header_query_or_subprotocol() {
    let (upstream, handshakes) = ws_upstream().await;
    let gw = ws_gateway(&upstream).await;
    let ws_url = |path: &str| format!("ws://{}{path}", gw.addr);
    let good = token(UserId::new(), 600);

    let mut by_header = ws_url("/live").into_client_request().unwrap();
    by_header.headers_mut().insert("authorization", format!("Bearer {good}").parse().unwrap());
    echo_once(by_header).await;

    echo_once(ws_url(&format!("/live?access_token={good}")).into_client_request().unwrap()).await;

    let mut by_protocol = ws_url("/live").into_client_request().unwrap();
    by_protocol
        .headers_mut()
        .insert("sec-websocket-protocol", format!("notifications, bearer.{good}").parse().unwrap());
    echo_once(by_protocol).await;
    assert_eq!(handshakes.load(std::sync::atomic::Ordering::SeqCst), 3);

    // Closed tunnels are no longer counted.
    for _ in 0..100 {
        if gw.gateway.open_websockets() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(gw.gateway.open_websockets(), 0);
    assert_eq!(status(&gw).await["websockets"]["total"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_handshakes_with_bad_tokens_never_reach_the_upstream() {
    let (upstream, handshakes) = ws_upstream().await;
    let gw = ws_gateway(&upstream).await;
    let expired = token(UserId::new(), -5);
    let url = format!("ws://{}/live?access_token={expired}", gw.addr);
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
            let body: serde_json::Value = serde_json::from_slice(response.body().as_deref().unwrap()).unwrap();
            assert_eq!(body["error"]["code"], "unauthenticated");
        }
        other => panic!("expected a 401, got {other:?}"),
    }
    let missing = tokio_tungstenite::connect_async(format!("ws://{}/live", gw.addr)).await;
    assert!(
        matches!(missing, Err(tokio_tungstenite::tungstenite::Error::Http(r)) if r.status() == StatusCode::UNAUTHORIZED)
    );
    assert_eq!(handshakes.load(std::sync::atomic::Ordering::SeqCst), 0);
}

/// An h2c gRPC-style echo: the request body back, then `grpc-status: 0`.
async fn grpc_upstream() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let service = hyper::service::service_fn(|req: Request<hyper::body::Incoming>| async move {
                let path = req.uri().path().to_owned();
                let te = req.headers().get("te").cloned();
                let body = req.into_body().collect().await.unwrap().to_bytes();
                let mut trailers = HeaderMap::new();
                trailers.insert("grpc-status", HeaderValue::from_static("0"));
                trailers.insert("x-path", HeaderValue::from_str(&path).unwrap());
                if let Some(te) = te {
                    trailers.insert("x-te", te);
                }
                let frames = vec![Ok::<_, std::convert::Infallible>(Frame::data(body)), Ok(Frame::trailers(trailers))];
                let mut response = http::Response::new(StreamBody::new(futures::stream::iter(frames)));
                response.headers_mut().insert("content-type", HeaderValue::from_static("application/grpc"));
                Ok::<_, std::convert::Infallible>(response)
            });
            tokio::spawn(
                hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_over_h2c_passes_through_with_trailers() {
    let upstream = grpc_upstream().await;
    let gw = start(&format!(
        "[pools.grpc]\nprotocol = \"h2c\"\ninstances = [\"{upstream}\"]\nhealth = {{ enabled = false }}\n[[routes]]\nprefix = \"/bazaar.v1.\"\npool = \"grpc\"\n"
    ))
    .await;
    let stream = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    let message = Bytes::from_static(b"\x00\x00\x00\x00\x05hello");
    let request = Request::post(format!("http://{}/bazaar.v1.CatalogService/GetProduct", gw.addr))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(http_body_util::Full::new(message.clone()))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let collected = response.into_body().collect().await.unwrap();
    let trailers = collected.trailers().cloned().expect("trailers pass through");
    assert_eq!(trailers["grpc-status"], "0");
    assert_eq!(trailers["x-path"], "/bazaar.v1.CatalogService/GetProduct");
    assert_eq!(trailers["x-te"], "trailers", "te: trailers reaches the upstream");
    assert_eq!(collected.to_bytes(), message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registered_replicas_get_traffic_until_they_stop_heartbeating() {
    let (steady, flaky) = (Upstream::start("steady").await, Upstream::start("flaky").await);
    let directory = Arc::new(InMemoryDirectory::new(Duration::from_secs(30)));
    let config = GatewayConfig::from_toml(
        "[discovery]\nrefresh_ms = 50\n[pools.api]\nservice = \"api\"\nstrategy = \"round_robin\"\nhealth = { enabled = false }\n[[routes]]\nprefix = \"/\"\npool = \"api\"\n",
    )
    .unwrap();
    assert_eq!(
        Gateway::builder(config.clone()).build().unwrap_err().setting,
        "pools.api.service",
        "discovery without a directory fails the start"
    );
    let gw = run(Gateway::builder(config).directory(directory.clone()).build().unwrap()).await;
    assert_eq!(get(&gw.url("/x")).await.status, StatusCode::SERVICE_UNAVAILABLE, "nothing registered yet");

    directory.register(&Registration::new("api", "steady-1", steady.url())).await.unwrap();
    let ttl = Duration::from_millis(400);
    directory.register(&Registration::new("api", "flaky-1", flaky.addr.to_string()).ttl(ttl)).await.unwrap();
    let mut flaky_served = false;
    for _ in 0..100 {
        directory.heartbeat("api", "flaky-1").await.unwrap();
        if get(&gw.url("/x")).await.body == "flaky" {
            flaky_served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(flaky_served, "a registered replica starts receiving traffic");
    let entry = instance(&status(&gw).await, "api", flaky.addr).clone();
    assert_eq!(entry["source"], "discovered");
    assert_eq!(entry["instance_id"], "flaky-1");

    // Silence: once the TTL lapses the gateway drops it.
    tokio::time::sleep(ttl * 2).await;
    let mut gone = false;
    for _ in 0..100 {
        let pools = status(&gw).await;
        if pools["pools"][0]["instances"].as_array().unwrap().len() == 1 {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(gone, "the silent replica left the pool");
    let before = flaky.hits();
    for _ in 0..10 {
        assert_eq!(get(&gw.url("/x")).await.body, "steady");
    }
    assert_eq!(flaky.hits(), before, "no traffic after it stopped heartbeating");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_keeps_open_websockets_until_the_drain_timeout_then_closes_them() {
    let (upstream, _) = ws_upstream().await;
    let config = GatewayConfig::from_toml(&format!(
        "[server]\ndrain_timeout_ms = 1500\n[pools.ws]\ninstances = [\"{upstream}\"]\nhealth = {{ enabled = false }}\n[[routes]]\nprefix = \"/\"\npool = \"ws\"\nauth = \"none\"\n"
    ))
    .unwrap();
    let mut gw = run(Gateway::builder(config).build().unwrap()).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/live", gw.addr)).await.unwrap();
    ws.send(Message::text("before")).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap().into_text().unwrap().as_str(), "before");
    assert_eq!(gw.gateway.open_websockets(), 1);

    gw.shutdown();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!gw.served.is_finished(), "the drain waits for the open tunnel");
    ws.send(Message::text("during the drain")).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap().into_text().unwrap().as_str(), "during the drain");

    tokio::time::timeout(Duration::from_secs(10), &mut gw.served).await.expect("serve returns").unwrap().unwrap();
    let after = tokio::time::timeout(Duration::from_secs(5), ws.next()).await.expect("the tunnel ends");
    assert!(!matches!(after, Some(Ok(Message::Text(_)))), "no more messages after the drain timeout: {after:?}");
    for _ in 0..100 {
        if gw.gateway.open_websockets() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(gw.gateway.open_websockets(), 0);
}
