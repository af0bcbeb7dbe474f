//! What every handler can reach: the marketplace and the server's settings.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bazaar_core::auth::client_ip::TrustedProxies;
use bazaar_core::marketplace::{Marketplace, Readiness};
use metrics_exporter_prometheus::PrometheusHandle;

use crate::pages::RenderedPages;

/// Limits and policies of the HTTP server.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Largest JSON body accepted.
    pub json_limit: usize,
    /// Largest asset upload accepted.
    pub upload_limit: usize,
    /// Requests still running after this are answered 408.
    pub request_timeout: Duration,
    /// The proxies whose forwarding header names the client (for the
    /// sign-in quota per client); none by default: the peer is the client.
    pub trusted_proxies: TrustedProxies,
    /// A connection that has not sent a whole request head within this is
    /// closed: a client trickling header bytes (slowloris) cannot hold it.
    pub header_read_timeout: Duration,
    /// Connections served at once; further ones wait in the listen backlog
    /// until one closes, so a flood of idle connections cannot exhaust
    /// memory or file descriptors.
    pub max_connections: usize,
    /// How long a `/health/ready` answer is reused: probes of every backend
    /// run at most once per this, however often (and by whom) it is asked.
    pub readiness_ttl: Duration,
    /// How often an idle notification stream is pinged (an SSE comment, a
    /// WebSocket ping), so proxies keep it open and dead peers are found.
    pub stream_ping: Duration,
    /// A WebSocket message not written within this is given up on and the
    /// stream closed: a client that stops reading cannot hold the task.
    pub stream_send_timeout: Duration,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            json_limit: 1024 * 1024,
            upload_limit: usize::try_from(bazaar_core::assets::DEFAULT_MAX_SIZE).unwrap_or(usize::MAX),
            request_timeout: Duration::from_secs(30),
            trusted_proxies: TrustedProxies::default(),
            header_read_timeout: Duration::from_secs(10),
            max_connections: 10_000,
            readiness_ttl: Duration::from_secs(1),
            stream_ping: Duration::from_secs(15),
            stream_send_timeout: Duration::from_secs(10),
        }
    }
}

/// Shared state of the router (cheap to clone).
#[derive(Clone)]
pub struct AppState {
    /// The marketplace.
    pub market: Arc<Marketplace>,
    /// Limits and policies.
    pub settings: Arc<HttpSettings>,
    /// The last readiness answer.
    pub readiness: Arc<ReadinessCache>,
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
    /// The JSON of recent search pages.
    pub pages: Arc<RenderedPages>,
}

impl fmt::Debug for AppState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppState").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl AppState {
    /// State over `market` with default settings.
    pub fn new(market: Arc<Marketplace>) -> Self {
        Self::with_settings(market, HttpSettings::default())
    }

    /// State with explicit settings.
    pub fn with_settings(market: Arc<Marketplace>, settings: HttpSettings) -> Self {
        Self {
            readiness: Arc::new(ReadinessCache::default()),
            settings: Arc::new(settings),
            metrics: prometheus(),
            pages: Arc::new(RenderedPages::default()),
            market,
        }
    }
}

/// The last readiness answer and when it was taken. Askers wait on one
/// lock while the probes run, so a burst of `/health/ready` requests runs
/// them once.
#[derive(Debug, Default)]
pub struct ReadinessCache(tokio::sync::Mutex<Option<(Instant, Arc<Vec<Readiness>>)>>);

impl ReadinessCache {
    /// The readiness of `market`, taken at most `ttl` ago.
    pub async fn get(&self, market: &Marketplace, ttl: Duration) -> Arc<Vec<Readiness>> {
        let mut last = self.0.lock().await;
        if let Some((taken, answer)) = last.as_ref()
            && taken.elapsed() < ttl
        {
            return answer.clone();
        }
        let answer = Arc::new(market.readiness().await);
        *last = Some((Instant::now(), answer.clone()));
        answer
    }
}

/// The process-wide Prometheus recorder (shared with the worker and every
/// other server in the process; see [`bazaar_telemetry::prometheus`]).
pub fn prometheus() -> PrometheusHandle {
    bazaar_telemetry::prometheus()
}
