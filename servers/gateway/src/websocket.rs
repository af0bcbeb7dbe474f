//! WebSocket proxying: the handshake goes through the pool like any request
//! (balancer, breaker, edge auth from header, query or subprotocol); after
//! the upstream's `101`, both upgraded connections are joined by a byte
//! copy until either side closes, or the drain time of a shutdown runs out.
//!
//! Tunnels do not hold a bulkhead slot: they live for minutes or hours and
//! would starve ordinary requests; they are counted on the status page.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use crate::body::{ProxyBody, boxed, empty};
use crate::config::Protocol;
use crate::error::GatewayError;
use crate::gateway::{Context, Route, Shared, id_str};
use crate::proxy::{AttemptError, Template, attempt};

/// Whether a request asks to upgrade to WebSocket.
pub(crate) fn is_upgrade<B>(request: &Request<B>) -> bool {
    let has = |name: header::HeaderName, token: &str| {
        request
            .headers()
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    has(header::UPGRADE, "websocket") && has(header::CONNECTION, "upgrade")
}

/// Counts a tunnel while it lives.
struct TunnelGuard(Arc<Shared>);

impl Drop for TunnelGuard {
    fn drop(&mut self) {
        self.0.websockets.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// Proxies a WebSocket handshake and, on `101`, the tunnel.
pub(crate) async fn proxy(
    shared: Arc<Shared>,
    route: &Route,
    mut request: Request<Incoming>,
    ctx: &Context,
) -> Response<ProxyBody> {
    let request_id = id_str(&ctx.request_id).to_owned();
    let pool = &*route.pool;
    if pool.config.protocol != Protocol::Http1 {
        return GatewayError::BadGateway.into_response(&request_id);
    }
    let mut template = Template::new(route, &request, ctx, true);
    template.headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    let client_side = hyper::upgrade::on(&mut request);
    let (_, result) = attempt(&shared, pool, &template, empty(), None).await;
    let mut upstream = match result {
        Ok(response) => response,
        Err(AttemptError::NoUpstream) => return GatewayError::NoUpstream.into_response(&request_id),
        Err(AttemptError::Timeout) => return GatewayError::Timeout.into_response(&request_id),
        Err(AttemptError::Failed) => return GatewayError::BadGateway.into_response(&request_id),
    };
    if upstream.status() != StatusCode::SWITCHING_PROTOCOLS {
        // Refused by the upstream (401, 404…): its answer, as is.
        let (parts, body) = upstream.into_parts();
        return Response::from_parts(parts, boxed(body));
    }
    let upstream_side = hyper::upgrade::on(&mut upstream);
    let mut response = Response::new(empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    *response.headers_mut() = upstream.headers().clone();
    shared.websockets.send_modify(|n| *n += 1);
    shared.websockets_total.fetch_add(1, Ordering::Relaxed);
    let guard = TunnelGuard(Arc::clone(&shared));
    let mut closing = shared.close_tunnels.subscribe();
    tokio::spawn(async move {
        let _guard = guard;
        let (client, upstream) = match tokio::try_join!(client_side, upstream_side) {
            Ok(pair) => pair,
            Err(e) => {
                tracing::debug!(error = %e, "websocket upgrade failed");
                return;
            }
        };
        let (mut client, mut upstream) = (TokioIo::new(client), TokioIo::new(upstream));
        tokio::select! {
            copied = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {
                if let Err(e) = copied {
                    tracing::debug!(error = %e, "websocket tunnel ended with an error");
                }
            }
            _ = closing.wait_for(|closed| *closed) => {
                tracing::debug!("websocket tunnel closed by shutdown");
            }
        }
    });
    response
}
