//! `GET /v1/notifications/stream` through the router over an in-process
//! bus: buyers connected over WebSocket and over SSE receive their own
//! notifications when their orders are fulfilled, other users nothing;
//! tokens are checked before any upgrade; SSE resumes after
//! `Last-Event-ID`; a slow client is dropped with a reason.
//!
//! The process's fan-out group is followed step by step
//! (`LiveNotifications::follow_once` until nothing is due), as the worker's
//! `pump` is, so no test waits on a background task.

mod common;
mod support;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use bazaar_core::marketplace::Marketplace;
use futures::StreamExt;
use http_body_util::BodyExt;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tower::ServiceExt;

use common::{Session, TestApp};
use support::{assert_error, customer, listing, one_time, purchase};

const GROUP: &str = "notification-stream-test";
/// Only guards against a hang; nothing here depends on how fast it is.
const HANG: Duration = Duration::from_secs(20);

fn app_with_buffer(buffer: usize) -> TestApp {
    TestApp::custom(Default::default(), |ports| ports, |builder| builder.live_notifications(true).live_buffer(buffer))
}

async fn live_app() -> TestApp {
    let app = app_with_buffer(64);
    app.market().live.join(GROUP, Duration::from_secs(300)).await.expect("fan-out group");
    app
}

/// What the API process's follower does, until nothing is due.
async fn follow(market: &Marketplace) -> usize {
    let mut taken = 0;
    loop {
        match market.live.follow_once(GROUP, 100, Duration::ZERO).await.expect("follow") {
            0 => return taken,
            n => taken += n,
        }
    }
}

/// One SSE event: its `event:` (`message` when absent), `id:` and `data:`.
#[derive(Debug)]
struct SseMessage {
    event: String,
    id: Option<String>,
    data: Value,
}

/// Reads SSE events from a streaming response body.
struct SseReader {
    body: Body,
    buffer: String,
}

impl SseReader {
    async fn next(&mut self) -> SseMessage {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut message = SseMessage { event: "message".into(), id: None, data: Value::Null };
                let mut has_field = false;
                for line in block.lines() {
                    let field =
                        |prefix: &str| line.strip_prefix(prefix).map(|v| v.strip_prefix(' ').unwrap_or(v).to_owned());
                    if let Some(v) = field("event:") {
                        message.event = v;
                        has_field = true;
                    } else if let Some(v) = field("id:") {
                        message.id = Some(v);
                        has_field = true;
                    } else if let Some(v) = field("data:") {
                        message.data = serde_json::from_str(&v).unwrap_or_else(|_| panic!("data is JSON: {v}"));
                        has_field = true;
                    }
                }
                // Comment-only blocks are keep-alive pings.
                if has_field {
                    return message;
                }
                continue;
            }
            let frame = tokio::time::timeout(HANG, self.body.frame())
                .await
                .expect("an SSE event")
                .expect("the stream is still open")
                .expect("a body frame");
            if let Ok(data) = frame.into_data() {
                self.buffer.push_str(std::str::from_utf8(&data).expect("UTF-8"));
            }
        }
    }
}

async fn open_sse(app: &TestApp, token: &str, last_event_id: Option<&str>) -> SseReader {
    let mut req = Request::get("/v1/notifications/stream")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::ACCEPT, "text/event-stream");
    if let Some(id) = last_event_id {
        req = req.header("last-event-id", id);
    }
    let response = app.router().oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "text/event-stream");
    SseReader { body: response.into_body(), buffer: String::new() }
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Serves the router on a loopback port until `stop` is sent.
async fn serve(app: &TestApp) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let state = app.state.clone();
    let server = tokio::spawn(async move {
        bazaar_http::serve(listener, state, async {
            let _ = stopped.await;
        })
        .await
        .expect("serve");
    });
    (addr, stop, server)
}

async fn next_text(socket: &mut Socket) -> Value {
    loop {
        match tokio::time::timeout(HANG, socket.next()).await.expect("a WebSocket message").expect("open").unwrap() {
            Message::Text(text) => return serde_json::from_str(&text).expect("JSON"),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("expected a notification, got {other:?}"),
        }
    }
}

async fn next_close(socket: &mut Socket) -> (CloseCode, String) {
    loop {
        match tokio::time::timeout(HANG, socket.next()).await.expect("a WebSocket message").expect("open").unwrap() {
            Message::Close(Some(frame)) => return (frame.code, frame.reason.to_string()),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("expected the close frame, got {other:?}"),
        }
    }
}

/// Receives SSE messages until the license notification of `order_id`,
/// checking each is about the buyer's order; returns the ids seen.
async fn sse_until_license(reader: &mut SseReader, order_id: &str) -> Vec<String> {
    let mut ids = Vec::new();
    loop {
        let m = reader.next().await;
        assert_eq!(m.event, "message", "{m:?}");
        assert_eq!(m.data["order_id"], order_id, "only the buyer's own: {m:?}");
        assert_eq!(m.data["channel"], "in_app");
        assert_eq!(m.id.as_deref(), m.data["id"].as_str(), "id: is the notification id");
        ids.push(m.id.unwrap());
        if m.data["template"] == "license_issued" {
            return ids;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buyers_on_websocket_and_sse_receive_their_own_fulfilment_and_others_nothing() {
    let app = live_app().await;
    let (addr, stop, server) = serve(&app).await;
    let item = listing(&app, one_time(1500)).await;
    let (ws_buyer, sse_buyer, ws_stranger, sse_stranger) =
        (customer(&app).await, customer(&app).await, customer(&app).await, customer(&app).await);

    // The WebSocket buyer passes the token as the `bearer, <token>` subprotocol pair.
    let mut request = format!("ws://{addr}/v1/notifications/stream").into_client_request().unwrap();
    request.headers_mut().insert("sec-websocket-protocol", format!("bearer, {}", ws_buyer.token).parse().unwrap());
    let (mut ws, handshake) = tokio_tungstenite::connect_async(request).await.expect("WebSocket handshake");
    assert_eq!(handshake.headers()["sec-websocket-protocol"], "bearer", "the handshake names the protocol");
    // The stranger passes it in the query.
    let (mut ws_other, _) = tokio_tungstenite::connect_async(format!(
        "ws://{addr}/v1/notifications/stream?access_token={}",
        ws_stranger.token
    ))
    .await
    .expect("WebSocket handshake");
    let mut sse = open_sse(&app, &sse_buyer.token, None).await;
    let mut sse_other = open_sse(&app, &sse_stranger.token, None).await;

    let (ws_order, _) = purchase(&app, &ws_buyer, &item).await;
    let (sse_order, _) = purchase(&app, &sse_buyer, &item).await;
    assert!(follow(app.market()).await > 0, "the notifications went over the bus");

    let mut ws_templates = Vec::new();
    while !ws_templates.contains(&"license_issued".to_owned()) {
        let n = next_text(&mut ws).await;
        assert_eq!(n["order_id"], ws_order.as_str(), "only the buyer's own: {n}");
        assert_eq!((n["channel"].as_str(), n["status"].as_str()), (Some("in_app"), Some("sent")));
        ws_templates.push(n["template"].as_str().unwrap().to_owned());
    }
    assert_eq!(ws_templates, ["order_placed", "license_issued"]);
    let sse_ids = sse_until_license(&mut sse, &sse_order).await;
    assert_eq!(sse_ids.len(), 2, "order placed, license issued");

    // Every notification is delivered; a leak would be buffered by now.
    // Stopping the server ends every stream, naming why.
    stop.send(()).unwrap();
    assert_eq!(next_close(&mut ws_other).await, (CloseCode::Away, "shutdown".to_owned()), "the stranger got nothing");
    assert_eq!(next_close(&mut ws).await, (CloseCode::Away, "shutdown".to_owned()));
    let end = sse_other.next().await;
    assert_eq!((end.event.as_str(), &end.data), ("close", &serde_json::json!({"reason": "shutdown"})), "nothing else");
    assert_eq!(sse.next().await.event, "close");
    tokio::time::timeout(HANG, server).await.expect("open streams do not hold up a graceful stop").unwrap();
    assert_eq!(app.market().live.open_streams(), 0);
}

async fn stream_reply(app: &TestApp, req: axum::http::request::Builder) -> common::Reply {
    app.call(req.uri("/v1/notifications/stream").body(Body::empty()).unwrap()).await
}

#[tokio::test]
async fn a_missing_bad_or_expired_token_is_401_in_the_error_shape_before_any_upgrade() {
    let app = live_app().await;
    let websocket = || {
        Request::get("/")
            .header(header::CONNECTION, "upgrade")
            .header(header::UPGRADE, "websocket")
            .header(header::SEC_WEBSOCKET_VERSION, "13")
            .header(header::SEC_WEBSOCKET_KEY, "dGhlIHNhbXBsZSBub25jZQ==")
    };
    assert_error(&stream_reply(&app, Request::get("/")).await, StatusCode::UNAUTHORIZED, "unauthenticated");
    assert_error(&stream_reply(&app, websocket()).await, StatusCode::UNAUTHORIZED, "unauthenticated");
    let garbage = websocket().header(header::SEC_WEBSOCKET_PROTOCOL, "bearer.garbage");
    assert_error(&stream_reply(&app, garbage).await, StatusCode::UNAUTHORIZED, "unauthenticated");

    let buyer: Session = customer(&app).await;
    // The query is for WebSocket handshakes only, as at the gateway.
    let query = app
        .call(
            Request::get(format!("/v1/notifications/stream?access_token={}", buyer.token)).body(Body::empty()).unwrap(),
        )
        .await;
    assert_error(&query, StatusCode::UNAUTHORIZED, "unauthenticated");

    app.clock.advance(chrono::Duration::minutes(16));
    let expired = Request::get("/").header(header::AUTHORIZATION, format!("Bearer {}", buyer.token));
    assert_error(&stream_reply(&app, expired).await, StatusCode::UNAUTHORIZED, "unauthenticated");
    let expired_ws = websocket().header(header::SEC_WEBSOCKET_PROTOCOL, format!("bearer.{}", buyer.token));
    assert_error(&stream_reply(&app, expired_ws).await, StatusCode::UNAUTHORIZED, "unauthenticated");
    assert_eq!(app.market().live.open_streams(), 0, "nothing was subscribed");

    let fresh = support::reissue(&app, &buyer, bazaar_core::auth::Role::Customer);
    let bad_resume = Request::get("/")
        .header(header::AUTHORIZATION, format!("Bearer {}", fresh.token))
        .header("last-event-id", "not-an-id");
    support::assert_invalid(&stream_reply(&app, bad_resume).await, "Last-Event-ID");
}

#[tokio::test]
async fn sse_resumes_after_the_last_event_id() {
    let app = live_app().await;
    let item = listing(&app, one_time(1500)).await;
    let buyer = customer(&app).await;
    let (order_id, _) = purchase(&app, &buyer, &item).await;
    follow(app.market()).await;
    let listed = app.send("GET", "/v1/notifications?limit=100", Some(&buyer.token), None).await;
    let mut in_app: Vec<String> = listed.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["channel"] == "in_app")
        .map(|n| n["id"].as_str().unwrap().to_owned())
        .collect();
    in_app.reverse();
    assert_eq!(in_app.len(), 2, "order placed, license issued: {}", listed.json);

    // Connected again after the first: the second is sent from the store.
    let mut sse = open_sse(&app, &buyer.token, Some(&in_app[0])).await;
    assert_eq!(sse_until_license(&mut sse, &order_id).await, in_app[1..]);
    app.market().live.close_all();
    assert_eq!(sse.next().await.event, "close");
}

#[tokio::test]
async fn a_client_that_reads_too_slowly_is_dropped_with_a_reason() {
    let app = app_with_buffer(1);
    app.market().live.join(GROUP, Duration::from_secs(300)).await.unwrap();
    let item = listing(&app, one_time(1500)).await;
    let buyer = customer(&app).await;
    let mut sse = open_sse(&app, &buyer.token, None).await;
    assert_eq!(app.market().live.open_streams(), 1);
    // Two notifications (order placed, license issued) for a buffer of one,
    // delivered while nothing reads the stream.
    purchase(&app, &buyer, &item).await;
    follow(app.market()).await;
    assert_eq!(app.market().live.open_streams(), 0, "dropped, not waited for");
    let first = sse.next().await;
    assert_eq!(first.data["template"], "order_placed");
    let end = sse.next().await;
    assert_eq!((end.event.as_str(), &end.data), ("close", &serde_json::json!({"reason": "lagged"})));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_streams_are_pinged_and_counted_on_metrics() {
    let settings = bazaar_http::HttpSettings { stream_ping: Duration::from_millis(20), ..Default::default() };
    let app = TestApp::custom(settings, |ports| ports, |builder| builder.live_notifications(true));
    let (addr, stop, server) = serve(&app).await;
    let buyer = customer(&app).await;
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{addr}/v1/notifications/stream?access_token={}", buyer.token))
            .await
            .expect("WebSocket handshake");
    let ping = tokio::time::timeout(HANG, ws.next()).await.expect("a ping").expect("open").unwrap();
    assert!(matches!(ping, Message::Ping(_)), "{ping:?}");

    let response = app
        .router()
        .oneshot(
            Request::get("/v1/notifications/stream")
                .header(header::AUTHORIZATION, format!("Bearer {}", buyer.token))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let mut body = response.into_body();
    let frame = tokio::time::timeout(HANG, body.frame()).await.expect("a keep-alive").unwrap().unwrap();
    let text = String::from_utf8(frame.into_data().unwrap().to_vec()).unwrap();
    assert!(text.starts_with(':'), "an SSE comment: {text:?}");

    let metrics = app.send("GET", "/metrics", None, None).await;
    let text = String::from_utf8(metrics.bytes).unwrap();
    for transport in ["sse", "websocket"] {
        let line = format!("{}{{transport=\"{transport}\"}}", bazaar_http::STREAMS_GAUGE);
        assert!(text.lines().any(|l| l.starts_with(&line)), "{line} missing from /metrics:\n{text}");
    }
    drop(body);
    stop.send(()).unwrap();
    assert_eq!(next_close_or_end(&mut ws).await, Some(CloseCode::Away));
    tokio::time::timeout(HANG, server).await.unwrap().unwrap();
}

/// The close code, skipping pings; `None` when the connection just ended.
async fn next_close_or_end(socket: &mut Socket) -> Option<CloseCode> {
    loop {
        match tokio::time::timeout(HANG, socket.next()).await.expect("a WebSocket message")? {
            Ok(Message::Close(frame)) => return frame.map(|f| f.code),
            Ok(Message::Ping(_) | Message::Pong(_)) => {}
            other => panic!("expected the close frame, got {other:?}"),
        }
    }
}
