//! Serving a gateway on a listener until a shutdown signal, then draining:
//! no new connections, readiness turns 503, in-flight requests and streamed
//! bodies finish (hyper's graceful shutdown), open WebSocket tunnels get
//! until the drain timeout, then whatever is left is closed.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::background;
use crate::config::ms;
use crate::gateway::Gateway;

/// Serves `gateway` on `listener` until `shutdown` completes, then drains
/// (see the module docs) for at most `server.drain_timeout_ms`.
///
/// # Errors
/// Only if the listener fails in a way that is not one connection's
/// problem; per-connection errors are logged and serving goes on.
///
/// # Example
/// ```no_run
/// use bazaar_gateway::{Gateway, GatewayConfig, serve};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let config = GatewayConfig::short_form(None, &["api=http://127.0.0.1:8081".into()])?;
/// let listener = tokio::net::TcpListener::bind(config.server.http_addr).await?;
/// let gateway = Gateway::builder(config).build()?;
/// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
/// // The CLI completes `stopped` on SIGTERM / Ctrl-C.
/// # drop(stop);
/// serve(listener, gateway, async move { let _ = stopped.await; }).await?;
/// # Ok(())
/// # }
/// ```
pub async fn serve(
    listener: TcpListener,
    gateway: Gateway,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let shared = Arc::clone(&gateway.shared);
    let background = background::start(&shared);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(std::time::Duration::from_secs(30));
    builder.http2().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    tracing::info!(addr = ?listener.local_addr().ok(), "gateway listening");
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: back off, go on.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let gateway = gateway.clone();
        let service = service_fn(move |request| {
            let gateway = gateway.clone();
            async move { Ok::<_, Infallible>(gateway.handle(request, peer).await) }
        });
        let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service).into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    shared.draining.store(true, Ordering::Release);
    tracing::info!("gateway draining");
    let drain = ms(shared.config.server.drain_timeout_ms);
    let mut open = shared.websockets.subscribe();
    let drained = tokio::time::timeout(drain, async {
        graceful.shutdown().await;
        let _ = open.wait_for(|n| *n == 0).await;
    })
    .await;
    if drained.is_err() {
        tracing::warn!(open_websockets = *shared.websockets.borrow(), "drain timeout reached; closing what is left");
    }
    shared.close_tunnels.send_replace(true);
    drop(background);
    tracing::info!("gateway stopped");
    Ok(())
}
