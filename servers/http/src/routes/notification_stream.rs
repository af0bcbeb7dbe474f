//! Route: the caller's notifications, live (`GET /v1/notifications/stream`).
//!
//! One route, two transports, chosen by the request:
//! - a WebSocket handshake (`Upgrade: websocket`) gets a WebSocket: each
//!   text message is one notification;
//! - any other `GET` gets Server-Sent Events (`text/event-stream`; send
//!   `Accept: text/event-stream`): each `message` event is one
//!   notification, with `id:` = the notification id, and a request with
//!   `Last-Event-ID` first receives the in-app notifications newer than that
//!   id (up to `NotificationService::MISSED_LIMIT`).
//!
//! Either way a message is the JSON of one item of `GET /v1/notifications`,
//! for the caller's own in-app notifications only. Idle streams are pinged
//! every `HttpSettings::stream_ping` (an SSE comment, a WebSocket ping).
//!
//! The bearer token is read as everywhere else (`Authorization: Bearer`).
//! Browsers cannot set headers on a WebSocket, so a handshake may carry it
//! instead in the `access_token` query parameter or in
//! `Sec-WebSocket-Protocol`, either as a `bearer.<token>` entry (what the
//! gateway checks at the edge) or as the pair `bearer, <token>`; the
//! handshake answers with the entry that carried it (`bearer` for the
//! pair), as browsers require. Without a valid token the answer is `401`
//! in the API's error shape, before any upgrade.
//!
//! A client that reads too slowly is dropped once its buffer
//! (`MarketplaceBuilder::live_buffer`) is full: the WebSocket is closed
//! with code 1008 and reason `lagged`, the SSE stream ends with an
//! `event: close` whose data is `{"reason":"lagged"}`; on a server stop the
//! reason is `shutdown` (WebSocket code 1001). `http_notification_streams`
//! (by `transport`) counts the open streams.

use std::collections::{HashSet, VecDeque};
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Query, Request, State};
use axum::http::header::{AUTHORIZATION, CONNECTION, SEC_WEBSOCKET_PROTOCOL, UPGRADE};
use axum::http::{HeaderMap, Uri};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use bazaar_core::auth::bearer;
use bazaar_core::ids::NotificationId;
use bazaar_core::notifications::{LiveSubscription, Notification, StreamEnd};
use futures::stream::{SplitSink, Stream};
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ErrorBody};
use crate::routes::notifications::NotificationResponse;
use crate::state::AppState;

/// The stream route.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(stream_notifications))
}

/// The gauge of open streams, by `transport` (`sse`, `websocket`).
pub const STREAMS_GAUGE: &str = "http_notification_streams";

/// WebSocket close code for a client dropped for reading too slowly
/// (1008, policy violation).
const CLOSE_LAGGED: u16 = 1008;
/// How long a server-side close waits for the client's close frame.
const CLOSE_HANDSHAKE: Duration = Duration::from_secs(2);

/// WebSocket close code for a server stop (1001, going away).
const CLOSE_SHUTDOWN: u16 = 1001;

/// Query parameters of the stream.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct StreamParams {
    /// WebSocket handshakes only: the bearer token, for clients that cannot
    /// send headers. Ignored on SSE requests, as the gateway ignores it.
    access_token: Option<String>,
}

/// The caller's own notifications as they are created: a WebSocket for a
/// WebSocket handshake, else Server-Sent Events.
#[utoipa::path(
    get,
    path = "/v1/notifications/stream",
    tag = "notifications",
    security(("bearer" = [])),
    params(
        StreamParams,
        ("Last-Event-ID" = Option<Uuid>, Header, nullable = false, description = "SSE: resume after this notification id (the last `id:` received)"),
    ),
    responses(
        (status = 200, description = "SSE (`text/event-stream`): one `message` event per notification, `data` = one item of `GET /v1/notifications`, `id` = its id; ends with an `event: close` naming the reason (`lagged`, `shutdown`)", content_type = "text/event-stream", body = String),
        (status = 101, description = "WebSocket: each text message is one item of `GET /v1/notifications`; closed with 1008 `lagged` or 1001 `shutdown`"),
        (status = 400, description = "`malformed`: an incomplete WebSocket handshake", body = ErrorBody),
        (status = 401, description = "No, invalid or expired bearer token", body = ErrorBody),
        (status = 422, description = "`validation` on `Last-Event-ID`", body = ErrorBody),
    )
)]
async fn stream_notifications(State(state): State<AppState>, request: Request) -> Result<Response, ApiError> {
    let (mut parts, _body) = request.into_parts();
    let websocket = is_websocket(&parts.headers);
    let credential = find_credential(&parts.headers, &parts.uri, websocket)?
        .ok_or_else(|| ApiError::unauthenticated("a bearer token is required"))?;
    let actor = state.market.auth.verify(&credential.token)?;
    let settings = state.settings.clone();
    if websocket {
        let upgrade = WebSocketUpgrade::from_request_parts(&mut parts, &state)
            .await
            .map_err(|rejection| ApiError::malformed(rejection.body_text()))?;
        let upgrade = match credential.protocol {
            Some(protocol) => upgrade.protocols([protocol]),
            None => upgrade,
        };
        let live = state.market.live.subscribe(&actor)?;
        return Ok(upgrade
            .on_upgrade(move |socket| run_websocket(socket, live, settings.stream_ping, settings.stream_send_timeout))
            .into_response());
    }
    let after = last_event_id(&parts.headers)?;
    // Subscribed before the store is read, so nothing created in between
    // is missed; what both bring is sent once.
    let live = state.market.live.subscribe(&actor)?;
    let backlog = match after {
        Some(after) => state.market.notifications.missed(&actor, after).await?,
        None => Vec::new(),
    };
    let keep_alive = KeepAlive::new().interval(settings.stream_ping);
    Ok(Sse::new(sse_events(live, backlog)).keep_alive(keep_alive).into_response())
}

/// A bearer token and, when it came in `Sec-WebSocket-Protocol`, the entry
/// the handshake must answer with.
#[derive(Debug, PartialEq, Eq)]
struct Credential {
    token: String,
    protocol: Option<String>,
}

fn is_websocket(headers: &HeaderMap) -> bool {
    let has = |name, value: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|v| v.trim().eq_ignore_ascii_case(value))
    };
    has(UPGRADE, "websocket") && has(CONNECTION, "upgrade")
}

/// Where the token is (see the module docs): the `Authorization` header
/// always wins; query and subprotocol are looked at for WebSockets only.
fn find_credential(headers: &HeaderMap, uri: &Uri, websocket: bool) -> Result<Option<Credential>, ApiError> {
    if let Some(value) = headers.get(AUTHORIZATION) {
        let token = value
            .to_str()
            .ok()
            .and_then(bearer::from_authorization)
            .ok_or_else(|| ApiError::unauthenticated("expected Authorization: Bearer <token>"))?;
        return Ok(Some(Credential { token: token.to_owned(), protocol: None }));
    }
    if !websocket {
        return Ok(None);
    }
    let params = Query::<StreamParams>::try_from_uri(uri).map(|Query(p)| p).unwrap_or_default();
    if let Some(token) = params.access_token.filter(|t| !t.is_empty()) {
        return Ok(Some(Credential { token, protocol: None }));
    }
    let offered =
        headers.get_all(SEC_WEBSOCKET_PROTOCOL).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(','));
    Ok(bearer::from_subprotocols(offered)
        .map(|(token, entry)| Credential { token: token.to_owned(), protocol: Some(entry.to_owned()) }))
}

fn last_event_id(headers: &HeaderMap) -> Result<Option<NotificationId>, ApiError> {
    let Some(value) = headers.get("last-event-id") else { return Ok(None) };
    let text = value.to_str().map_err(|_| ApiError::invalid("Last-Event-ID", "not a notification id"))?;
    Ok(Some(NotificationId::parse("Last-Event-ID", text.trim())?))
}

/// Counts one open stream in [`STREAMS_GAUGE`] while it lives.
struct OpenStream(&'static str);

impl OpenStream {
    fn count(transport: &'static str) -> Self {
        metrics::gauge!(STREAMS_GAUGE, "transport" => transport).increment(1.0);
        Self(transport)
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        metrics::gauge!(STREAMS_GAUGE, "transport" => self.0).decrement(1.0);
    }
}

fn to_json(notification: Notification) -> String {
    serde_json::to_string(&NotificationResponse::from(notification)).expect("a notification serializes")
}

/// The SSE body: the backlog, then live notifications (skipping those the
/// backlog already sent), then one `close` event naming why it ended.
fn sse_events(
    live: LiveSubscription,
    backlog: Vec<Notification>,
) -> impl Stream<Item = Result<SseEvent, Infallible>> + Send + 'static {
    struct Feed {
        backlog: VecDeque<Notification>,
        sent: HashSet<NotificationId>,
        live: Option<LiveSubscription>,
        _open: OpenStream,
    }
    let sent = backlog.iter().map(|n| n.id).collect();
    let feed = Feed { backlog: backlog.into(), sent, live: Some(live), _open: OpenStream::count("sse") };
    futures::stream::unfold(feed, |mut feed| async move {
        let event = |n: Notification| SseEvent::default().id(n.id.to_string()).data(to_json(n));
        if let Some(n) = feed.backlog.pop_front() {
            return Some((Ok(event(n)), feed));
        }
        let live = feed.live.as_mut()?;
        loop {
            match live.next().await {
                Ok(n) if feed.sent.remove(&n.id) => {}
                Ok(n) => return Some((Ok(event(n)), feed)),
                Err(end) => {
                    feed.live = None;
                    let data = serde_json::json!({ "reason": end.as_str() }).to_string();
                    return Some((Ok(SseEvent::default().event("close").data(data)), feed));
                }
            }
        }
    })
}

/// Sends `message` within `limit`; false when the peer is gone or stalled.
async fn send(tx: &mut SplitSink<WebSocket, Message>, message: Message, limit: Duration) -> bool {
    matches!(tokio::time::timeout(limit, tx.send(message)).await, Ok(Ok(())))
}

/// Pushes `live` to `socket` until either side ends it.
async fn run_websocket(socket: WebSocket, mut live: LiveSubscription, ping_every: Duration, send_limit: Duration) {
    let _open = OpenStream::count("websocket");
    let (mut tx, mut rx) = socket.split();
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + ping_every, ping_every);
    let end = loop {
        tokio::select! {
            next = live.next() => match next {
                Ok(n) => {
                    if !send(&mut tx, Message::Text(to_json(n).into()), send_limit).await {
                        break None;
                    }
                }
                Err(end) => break Some(end),
            },
            incoming = rx.next() => match incoming {
                // The client closed or the connection broke; the library
                // answers a close frame itself.
                None | Some(Err(_) | Ok(Message::Close(_))) => break None,
                // Pings are answered by the library; clients have nothing to say.
                Some(Ok(_)) => {}
            },
            _ = ping.tick() => {
                if !send(&mut tx, Message::Ping(Default::default()), send_limit).await {
                    break None;
                }
            }
        }
    };
    if let Some(end) = end {
        let code = match end {
            StreamEnd::Lagged => CLOSE_LAGGED,
            StreamEnd::Shutdown => CLOSE_SHUTDOWN,
        };
        let frame = CloseFrame { code, reason: end.as_str().into() };
        if send(&mut tx, Message::Close(Some(frame)), send_limit).await {
            // The closing handshake (RFC 6455 §7.1.1): read until the
            // client's own close before dropping the connection, so a pong
            // or message it already had in flight meets an open socket, not
            // a reset that would hide the close frame from it.
            let _ = tokio::time::timeout(CLOSE_HANDSHAKE.min(send_limit), async {
                while let Some(Ok(message)) = rx.next().await {
                    if matches!(message, Message::Close(_)) {
                        break;
                    }
                }
            })
            .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(*name, HeaderValue::from_str(value).unwrap());
        }
        h
    }

    fn cred(token: &str, protocol: Option<&str>) -> Option<Credential> {
        Some(Credential { token: token.into(), protocol: protocol.map(Into::into) })
    }

    #[test]
    fn the_header_wins_and_query_and_subprotocol_count_for_websockets_only() {
        let uri: Uri = "/v1/notifications/stream?access_token=q".parse().unwrap();
        let both = headers(&[("authorization", "Bearer h"), ("sec-websocket-protocol", "bearer.p")]);
        assert_eq!(find_credential(&both, &uri, true).unwrap(), cred("h", None));
        assert_eq!(find_credential(&HeaderMap::new(), &uri, false).unwrap(), None, "SSE: header only");
        assert_eq!(find_credential(&HeaderMap::new(), &uri, true).unwrap(), cred("q", None));
        let plain: Uri = "/v1/notifications/stream".parse().unwrap();
        let dotted = headers(&[("sec-websocket-protocol", "json, bearer.tok")]);
        assert_eq!(find_credential(&dotted, &plain, true).unwrap(), cred("tok", Some("bearer.tok")));
        let pair = headers(&[("sec-websocket-protocol", "bearer, tok")]);
        assert_eq!(find_credential(&pair, &plain, true).unwrap(), cred("tok", Some("bearer")));
        assert_eq!(find_credential(&headers(&[("sec-websocket-protocol", "bearer")]), &plain, true).unwrap(), None);
        let basic = headers(&[("authorization", "Basic abc")]);
        assert_eq!(find_credential(&basic, &plain, true).unwrap_err().code, "unauthenticated");
    }

    #[test]
    fn a_websocket_handshake_needs_both_upgrade_headers() {
        assert!(is_websocket(&headers(&[("upgrade", "websocket"), ("connection", "keep-alive, Upgrade")])));
        assert!(!is_websocket(&headers(&[("upgrade", "websocket")])));
        assert!(!is_websocket(&headers(&[("accept", "text/event-stream")])));
    }

    #[test]
    fn last_event_id_must_be_a_notification_id() {
        assert_eq!(last_event_id(&HeaderMap::new()).unwrap(), None);
        let id = NotificationId::new();
        assert_eq!(last_event_id(&headers(&[("last-event-id", &id.to_string())])).unwrap(), Some(id));
        assert_eq!(last_event_id(&headers(&[("last-event-id", "7")])).unwrap_err().code, "validation");
    }
}
