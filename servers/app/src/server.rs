//! Binding listeners and running the servers of one process until it is
//! told to stop.
//!
//! Listeners are bound before anything is served so a port conflict fails
//! the start at once, and so port 0 resolves to a real port that
//! [`Listeners::announce`] can print (`http listening on
//! http://127.0.0.1:43121`) for scripts and tests to read.

use std::net::SocketAddr;
use std::sync::Arc;

use bazaar_core::auth::client_ip::TrustedProxies;
use bazaar_core::marketplace::Marketplace;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::live::LiveFeed;
use crate::shutdown::Shutdown;

/// Why serving stopped with a failure.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A listener could not be bound.
    #[error("cannot listen on {addr} ({setting})")]
    Bind {
        /// The setting that chose the address (`--http-addr`).
        setting: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A server failed while serving.
    #[error("{server} server failed")]
    Server {
        /// Which one (`http`, `grpc`, `worker http`).
        server: &'static str,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A server task panicked.
    #[error("a server task panicked")]
    Panicked(#[source] tokio::task::JoinError),
}

fn failed(server: &'static str) -> impl FnOnce(Box<dyn std::error::Error + Send + Sync>) -> ServeError {
    move |source| ServeError::Server { server, source }
}

/// The bound sockets of a process.
#[derive(Debug, Default)]
pub struct Listeners {
    /// The REST API (or, for `bazaar worker`, its health and metrics).
    pub http: Option<TcpListener>,
    /// The gRPC API.
    pub grpc: Option<TcpListener>,
}

impl Listeners {
    /// Binds `addr`, naming `setting` in the error.
    ///
    /// # Errors
    /// When the address is taken or not local.
    pub async fn bind(setting: &'static str, addr: SocketAddr) -> Result<TcpListener, ServeError> {
        TcpListener::bind(addr).await.map_err(|source| ServeError::Bind { setting, addr, source })
    }

    /// The actual address of each listener.
    pub fn addrs(&self) -> (Option<SocketAddr>, Option<SocketAddr>) {
        let addr = |l: &Option<TcpListener>| l.as_ref().and_then(|l| l.local_addr().ok());
        (addr(&self.http), addr(&self.grpc))
    }

    /// One line per listener, `<name> listening on <url>`, with the real port.
    pub fn announce(&self, http_name: &str) -> Vec<String> {
        let (http, grpc) = self.addrs();
        http.map(|a| format!("{http_name} listening on http://{a}"))
            .into_iter()
            .chain(grpc.map(|a| format!("grpc listening on http://{a}")))
            .collect()
    }
}

/// What one process runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parts {
    /// The REST API on the `http` listener.
    pub http: bool,
    /// The event worker (outbox relay + handlers).
    pub worker: bool,
    /// How many handler loops the worker runs.
    pub consumers: usize,
    /// Serve the worker's health and metrics router on the `http` listener
    /// (`bazaar worker --http-addr`), instead of the REST API.
    pub worker_http: bool,
    /// Whose forwarding header the REST and GraphQL APIs believe.
    pub trusted_proxies: TrustedProxies,
}

/// Runs `parts` over `market` on `listeners` until `shutdown` triggers or a
/// server fails (which stops the others too). Returns once every server has
/// finished its in-flight work. The REST API comes with its live
/// notification streams ([`LiveFeed`], left again on the way out) and the
/// GraphQL API (`/graphql`, subscriptions at `/graphql/ws`) on its listener.
///
/// # Errors
/// The first server's failure.
pub async fn run(
    market: Arc<Marketplace>,
    listeners: Listeners,
    parts: Parts,
    shutdown: Shutdown,
) -> Result<(), ServeError> {
    let mut tasks: JoinSet<Result<&'static str, ServeError>> = JoinSet::new();
    let mut live = None;
    if let Some(listener) = listeners.http {
        let stop = shutdown.wait();
        if parts.worker_http {
            let router = bazaar_worker::worker_router(market.clone(), bazaar_worker::prometheus());
            tasks.spawn(async move {
                axum::serve(listener, router)
                    .with_graceful_shutdown(stop)
                    .await
                    .map_err(|e| failed("worker http")(e.into()))?;
                Ok("worker http")
            });
        } else if parts.http {
            // Followed before the API listens, so no stream opened on it
            // can miss a notification created after.
            live = Some(LiveFeed::start(market.clone()).await.map_err(|e| failed("live notifications")(e.into()))?);
            let settings = bazaar_http::HttpSettings {
                trusted_proxies: parts.trusted_proxies.clone(),
                ..bazaar_http::HttpSettings::default()
            };
            let state = bazaar_http::AppState::with_settings(market.clone(), settings);
            // The GraphQL API beside REST: the same rule for whose address
            // a request comes from, so both spend one sign-in quota.
            let settings = bazaar_graphql::GraphqlSettings {
                trusted_proxies: parts.trusted_proxies.clone(),
                ..bazaar_graphql::GraphqlSettings::default()
            };
            let graphql = bazaar_graphql::GraphqlState::new(market.clone(), settings);
            let graphql = bazaar_graphql::router_with(graphql);
            tasks.spawn(async move {
                bazaar_http::serve_with(listener, state, graphql, stop).await.map_err(|e| failed("http")(e.into()))?;
                Ok("http")
            });
        }
    }
    if let Some(listener) = listeners.grpc {
        let market = market.clone();
        let stop = shutdown.wait();
        tasks.spawn(async move {
            bazaar_grpc::serve(listener, market, stop).await.map_err(|e| failed("grpc")(e.into()))?;
            Ok("grpc")
        });
    }
    if parts.worker {
        let config = bazaar_worker::WorkerConfig { consumers: parts.consumers, ..Default::default() };
        let worker = bazaar_worker::Worker::new(market.clone(), config);
        let stop = shutdown.wait();
        tasks.spawn(async move {
            worker.run(stop).await;
            Ok("worker")
        });
    }

    let mut failure = None;
    while let Some(joined) = tasks.join_next().await {
        match joined.map_err(ServeError::Panicked).and_then(|r| r) {
            Ok(name) if !shutdown.is_triggered() => {
                tracing::warn!(server = name, "stopped on its own; stopping the others");
                shutdown.trigger();
            }
            Ok(name) => tracing::info!(server = name, "stopped"),
            Err(e) => {
                tracing::error!(error = %e, cause = ?std::error::Error::source(&e), "server failed; stopping the others");
                shutdown.trigger();
                failure.get_or_insert(e);
            }
        }
    }
    if let Some(feed) = live {
        feed.close().await;
    }
    failure.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use std::io::{Read as _, Write as _};

    use bazaar_core::clock::{Clock, SystemClock};
    use bazaar_core::entropy::OsEntropy;

    use super::*;
    use crate::{AppOptions, Keys};

    fn market() -> Arc<Marketplace> {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let ports = crate::ports::memory(clock.clone());
        Arc::new(crate::market::marketplace(ports, &Keys::generate(&OsEntropy), AppOptions::new(clock)).unwrap())
    }

    fn get(addr: SocketAddr, path: &str) -> String {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    }

    fn post_json(addr: SocketAddr, path: &str, body: &str) -> String {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        write!(
            stream,
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_part_serves_until_the_shutdown_then_run_returns_ok() {
        let listeners = Listeners {
            http: Some(Listeners::bind("--http-addr", "127.0.0.1:0".parse().unwrap()).await.unwrap()),
            grpc: Some(Listeners::bind("--grpc-addr", "127.0.0.1:0".parse().unwrap()).await.unwrap()),
        };
        let (http, grpc) = listeners.addrs();
        let (http, grpc) = (http.unwrap(), grpc.unwrap());
        assert_eq!(
            listeners.announce("http"),
            vec![format!("http listening on http://{http}"), format!("grpc listening on http://{grpc}")]
        );
        let shutdown = Shutdown::new();
        let running = tokio::spawn(run(
            market(),
            listeners,
            Parts {
                http: true,
                worker: true,
                consumers: 4,
                worker_http: false,
                trusted_proxies: TrustedProxies::default(),
            },
            shutdown.clone(),
        ));
        let health = tokio::task::spawn_blocking(move || get(http, "/health")).await.unwrap();
        assert!(health.starts_with("HTTP/1.1 200"), "{health}");
        // The GraphQL API answers on the same listener: its page and a query.
        let page = tokio::task::spawn_blocking(move || get(http, "/graphql")).await.unwrap();
        assert!(page.starts_with("HTTP/1.1 200") && page.contains("<title>Bazaar GraphQL</title>"), "{page}");
        let query = r#"{"query":"{ search(first: 5) { totalCount items { id } } }"}"#;
        let found = tokio::task::spawn_blocking(move || post_json(http, "/graphql", query)).await.unwrap();
        assert!(
            found.starts_with("HTTP/1.1 200") && found.contains(r#"{"data":{"search":{"totalCount":0,"items":[]}}}"#),
            "{found}"
        );
        shutdown.trigger();
        running.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_taken_address_is_named_in_the_error() {
        let taken = Listeners::bind("--http-addr", "127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = taken.local_addr().unwrap();
        let err = Listeners::bind("--http-addr", addr).await.unwrap_err();
        assert_eq!(err.to_string(), format!("cannot listen on {addr} (--http-addr)"));
    }
}
