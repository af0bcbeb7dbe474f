//! `subscription { myNotifications }` over a real WebSocket
//! (graphql-transport-ws), authenticated by the `connection_init` payload.
//!
//! The process's fan-out group is followed step by step
//! (`LiveNotifications::follow_once` until nothing is due), as the worker's
//! `pump` is, so no test waits on a background task.

use std::time::Duration;

use bazaar_core::marketplace::{Marketplace, MarketplaceBuilder};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::common::{TestApp, usd};

const GROUP: &str = "graphql-subscription-test";
/// Only guards against a hang; nothing here depends on how fast it is.
const HANG: Duration = Duration::from_secs(20);

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn live_app() -> (TestApp, std::net::SocketAddr) {
    live_app_with(|b| b).await
}

async fn live_app_with(
    builder: impl FnOnce(MarketplaceBuilder) -> MarketplaceBuilder,
) -> (TestApp, std::net::SocketAddr) {
    let app = TestApp::custom(|b| builder(b.live_notifications(true)));
    app.market.live.join(GROUP, Duration::from_secs(300)).await.expect("fan-out group");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = app.router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (app, addr)
}

/// What the API process's follower does, until nothing is due.
async fn follow(market: &Marketplace) {
    while market.live.follow_once(GROUP, 100, Duration::ZERO).await.expect("follow") > 0 {}
}

async fn connect(addr: std::net::SocketAddr, init: Value) -> Socket {
    let mut request = format!("ws://{addr}/graphql/ws").into_client_request().expect("request");
    request.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse().unwrap());
    let (mut socket, response) = tokio_tungstenite::connect_async(request).await.expect("handshake");
    assert_eq!(response.headers()["sec-websocket-protocol"], "graphql-transport-ws");
    send(&mut socket, json!({ "type": "connection_init", "payload": init })).await;
    socket
}

async fn send(socket: &mut Socket, message: Value) {
    socket.send(Message::text(message.to_string())).await.expect("send");
}

/// The next text message as JSON (pings skipped), or the close frame's reason.
async fn next(socket: &mut Socket) -> Result<Value, String> {
    loop {
        let message = tokio::time::timeout(HANG, socket.next()).await.expect("no hang").expect("open").expect("frame");
        match message {
            Message::Text(text) => {
                let value: Value = serde_json::from_str(&text).expect("json");
                if value["type"] == "ping" {
                    continue;
                }
                return Ok(value);
            }
            Message::Close(frame) => return Err(frame.map(|f| f.reason.to_string()).unwrap_or_default()),
            _ => {}
        }
    }
}

async fn wait_for_streams(market: &Marketplace, n: usize) {
    tokio::time::timeout(HANG, async {
        while market.live.open_streams() < n {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the subscription opens");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_created_after_subscribing_is_delivered_to_its_user_only() {
    let (app, addr) = live_app().await;
    let (vendor, admin, buyer, other) = (
        app.register("vendor").await,
        app.admin().await,
        app.register("customer").await,
        app.register("customer").await,
    );
    let product = app.approved(&vendor, &admin, "Agent", usd(1_000)).await;

    let mut mine = connect(addr, json!({ "authorization": format!("Bearer {}", buyer.token) })).await;
    assert_eq!(next(&mut mine).await.unwrap()["type"], "connection_ack");
    let mut theirs = connect(addr, json!({ "authorization": format!("Bearer {}", other.token) })).await;
    assert_eq!(next(&mut theirs).await.unwrap()["type"], "connection_ack");
    let subscription = "subscription { myNotifications { id template channel body } }";
    for socket in [&mut mine, &mut theirs] {
        send(socket, json!({ "id": "1", "type": "subscribe", "payload": { "query": subscription } })).await;
    }
    wait_for_streams(&app.market, 2).await;

    app.buy(&buyer, &[&product]).await;
    follow(&app.market).await;

    let first = next(&mut mine).await.unwrap();
    assert_eq!(first["type"], "next", "{first}");
    assert_eq!(first["id"], "1");
    let notification = &first["payload"]["data"]["myNotifications"];
    assert_eq!(notification["channel"], "IN_APP");
    assert!(["ORDER_PLACED", "LICENSE_ISSUED"].contains(&notification["template"].as_str().unwrap()), "{first}");

    // The other user got nothing: their socket answers a ping and nothing else.
    theirs.send(Message::Ping(b"probe".to_vec().into())).await.unwrap();
    let reply = tokio::time::timeout(HANG, theirs.next()).await.unwrap().unwrap().unwrap();
    assert!(matches!(reply, Message::Pong(_)), "nothing but the pong: {reply:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_need_a_valid_token() {
    let (_app, addr) = live_app().await;

    // No token: the connection opens, the subscription answers unauthenticated.
    let mut anonymous = connect(addr, json!({})).await;
    assert_eq!(next(&mut anonymous).await.unwrap()["type"], "connection_ack");
    let query = json!({ "query": "subscription { myNotifications { id } }" });
    send(&mut anonymous, json!({ "id": "1", "type": "subscribe", "payload": query })).await;
    let answer = next(&mut anonymous).await.unwrap();
    assert_eq!(answer["type"], "next", "{answer}");
    assert_eq!(answer["payload"]["errors"][0]["extensions"]["code"], "unauthenticated");
    assert_eq!(next(&mut anonymous).await.unwrap()["type"], "complete");

    // A token that does not verify: the connection is refused.
    let mut forged = connect(addr, json!({ "authorization": "Bearer forged.token.here" })).await;
    let refused = next(&mut forged).await.expect_err("closed");
    assert!(!refused.is_empty(), "the close frame says why");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutations_over_the_socket_spend_the_same_auth_quota() {
    let one = std::num::NonZeroU32::new(1).unwrap();
    let (_app, addr) = live_app_with(|b| {
        let per_client = bazaar_core::resilience::rate_limit::Quota::per_minute(one).allow_burst(one);
        b.sign_in_limits(bazaar_core::auth::SignInLimits { per_client, ..Default::default() })
    })
    .await;
    let mut socket = connect(addr, json!({})).await;
    assert_eq!(next(&mut socket).await.unwrap()["type"], "connection_ack");
    let login = json!({ "query": "mutation { login(email: \"nobody@example.com\", password: \"password123\") { accessToken } }" });
    let mut codes = vec![];
    for id in ["1", "2"] {
        send(&mut socket, json!({ "id": id, "type": "subscribe", "payload": login })).await;
        let answer = next(&mut socket).await.unwrap();
        codes.push(answer["payload"]["errors"][0]["extensions"]["code"].as_str().unwrap_or_default().to_owned());
        assert_eq!(next(&mut socket).await.unwrap()["type"], "complete");
    }
    assert_eq!(codes, ["unauthenticated", "rate_limited"]);
}
