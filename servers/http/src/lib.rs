//! The Bazaar REST API over axum: [`router`] implements the HTTP contract
//! (JSON under `/v1`, bearer JWT, one error shape) on a [`Marketplace`];
//! [`serve`] runs it until a shutdown future resolves.
//!
//! # Middleware, outermost first
//! 1. `x-request-id`: kept when the client sends one, else a fresh UUID;
//!    echoed on the response.
//! 2. [`render_errors`](error::render_errors): every error leaves as
//!    `{"error":{…},"request_id"}` with that id.
//! 3. The `http_request` tracing span (method, matched route, request id,
//!    trace id), continuing the caller's W3C `traceparent` when it sends
//!    one; the response carries the span's `traceparent`, and events the
//!    request causes carry it too (see [`middleware::trace_context`]).
//! 4. Request metrics (`http_requests_total`,
//!    `http_request_duration_seconds`, by method, route template, status).
//! 5. The request timeout (`408 timeout`).
//! 6. The JSON body limit (`413`; uploads have their own, larger limit).
//!
//! Axum applies router layers to each route (and the fallback), so the
//! matched route template is known to the span and the metrics.
//!
//! # Example
//! [`serve`] on a loopback port over an in-memory marketplace, one request,
//! then a graceful stop (in a server the stop is [`shutdown_signal`]). For
//! in-process calls, [`router`] is the same app as a tower service.
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//!
//! use bazaar_auth::{Argon2Passwords, JwtTokens};
//! use bazaar_core::clock::SystemClock;
//! use bazaar_core::marketplace::Marketplace;
//! use bazaar_http::AppState;
//! use bazaar_memory::MemoryBackend;
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! let market = Marketplace::builder(MemoryBackend::new(Arc::new(SystemClock)).ports())
//!     .passwords(Arc::new(Argon2Passwords::fast_for_tests()))
//!     .tokens(Arc::new(JwtTokens::new([7; 32])))
//!     .build()?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let addr = listener.local_addr()?;
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let server = tokio::spawn(bazaar_http::serve(listener, AppState::new(Arc::new(market)), async {
//!     let _ = stopped.await;
//! }));
//!
//! let mut client = tokio::net::TcpStream::connect(addr).await?;
//! client.write_all(b"GET /v1/nope HTTP/1.1\r\nHost: localhost\r\nx-request-id: req-7\r\nConnection: close\r\n\r\n").await?;
//! let mut response = String::new();
//! client.read_to_string(&mut response).await?;
//! assert!(response.starts_with("HTTP/1.1 404"), "{response}");
//! assert!(response.contains(r#""request_id":"req-7""#), "the one error shape: {response}");
//!
//! stop.send(()).unwrap();
//! server.await??;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! [`Marketplace`]: bazaar_core::marketplace::Marketplace

pub mod error;
pub mod extract;
pub mod middleware;
pub mod openapi;
pub mod pages;
mod routes;
mod schema;
pub mod state;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, DefaultBodyLimit};
use axum::http::StatusCode;
use axum::{Extension, Router};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::sync::Semaphore;
use tower::ServiceBuilder;
use tower::ServiceExt as _;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

pub use crate::error::ApiError;
pub use crate::routes::notification_stream::STREAMS_GAUGE;
pub use crate::state::{AppState, HttpSettings};

/// The whole API: every route, the OpenAPI document and the middleware.
pub fn router(state: AppState) -> Router {
    let (api, document) = api_router().split_for_parts();
    let document = openapi::complete(document);
    let docs =
        routes::ops::ApiDocs::new(serde_json::to_vec(&document).expect("the OpenAPI document serializes").into());
    let settings = state.settings.clone();
    api.fallback(middleware::not_found)
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(PropagateRequestIdLayer::x_request_id())
                .layer(axum::middleware::from_fn(error::render_errors))
                .layer(TraceLayer::new_for_http().make_span_with(middleware::RequestSpan))
                .layer(axum::middleware::from_fn(middleware::trace_context))
                .layer(axum::middleware::from_fn(middleware::track_metrics))
                .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, settings.request_timeout))
                .layer(DefaultBodyLimit::max(settings.json_limit))
                .layer(Extension(docs)),
        )
        .with_state(state)
}

/// Every route with its OpenAPI annotations, under the document's frame.
fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(routes::auth::routes())
        .merge(routes::catalog::routes())
        .merge(routes::assets::routes())
        .merge(routes::orders::routes())
        .merge(routes::payments::routes())
        .merge(routes::licenses::routes())
        .merge(routes::notifications::routes())
        .merge(routes::notification_stream::routes())
        .merge(routes::webhooks::routes())
        .merge(routes::ops::routes())
}

/// The OpenAPI document of [`router`] (what `/openapi.json` serves).
pub fn openapi_document() -> serde_json::Value {
    openapi::complete(api_router().into_openapi())
}

/// Serves [`router`] on `listener` until `shutdown` resolves, then lets
/// in-flight requests finish; open notification streams are ended then
/// (reason `shutdown`), since they would otherwise never finish. Handlers
/// see the peer address (the sign-in quota keys on it).
///
/// Each connection must send a whole request head within
/// [`header_read_timeout`](HttpSettings::header_read_timeout), and at most
/// [`max_connections`](HttpSettings::max_connections) are served at once.
///
/// # Errors
/// The listener's I/O errors.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, state, Router::new(), shutdown).await
}

/// [`serve`] with `extra` routes beside the API (another transport, such as
/// `bazaar_graphql::router`): they share the listener, the peer address,
/// the connection limits and the graceful shutdown (open notification
/// streams end then, GraphQL subscriptions too), but not the API's
/// middleware, which speaks REST's error shape. Their paths must not
/// collide with the API's.
///
/// # Errors
/// The listener's I/O errors.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    state: AppState,
    extra: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "HTTP server listening");
    }
    let live = state.market.live.clone();
    let settings = state.settings.clone();
    let app = router(state).merge(extra);
    let mut builder = auto::Builder::new(TokioExecutor::new()).http1_only();
    builder.http1().timer(TokioTimer::new()).header_read_timeout(settings.header_read_timeout);
    let slots = Arc::new(Semaphore::new(settings.max_connections));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // A slot first: at the cap, connections wait in the backlog.
        let slot = tokio::select! {
            () = &mut shutdown => break,
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: back off, go on.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut request: axum::http::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(request)
        });
        let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service).into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    live.close_all();
    graceful.shutdown().await;
    tracing::info!("HTTP server stopped");
    Ok(())
}

/// Resolves on SIGINT (Ctrl-C) or, on Unix, SIGTERM (what orchestrators send).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received, shutting down"),
        () = terminate => tracing::info!("SIGTERM received, shutting down"),
    }
}
