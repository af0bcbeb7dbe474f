//! What every handler can reach: the marketplace and the server's settings.

use std::fmt;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use bazaar_core::marketplace::Marketplace;
use bazaar_core::resilience::rate_limit::{KeyedRateLimiter, Quota};
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
    /// Per-client-IP quota on the auth routes (register, login, refresh).
    pub auth_quota: Quota,
    /// Take the client IP from the first `X-Forwarded-For` entry (only
    /// behind a proxy that sets it).
    pub trust_forwarded_for: bool,
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
            // 10 attempts per minute per IP, 5 at once: enough for people, too few for guessing.
            auth_quota: Quota::per_minute(NonZeroU32::new(10).expect("non-zero"))
                .allow_burst(NonZeroU32::new(5).expect("non-zero")),
            trust_forwarded_for: false,
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
    /// The auth routes' per-IP limiter.
    pub auth_limiter: Arc<KeyedRateLimiter<IpAddr>>,
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
            auth_limiter: Arc::new(KeyedRateLimiter::new(settings.auth_quota)),
            settings: Arc::new(settings),
            metrics: prometheus(),
            pages: Arc::new(RenderedPages::default()),
            market,
        }
    }
}

/// The process-wide Prometheus recorder (shared with the worker and every
/// other server in the process; see [`bazaar_telemetry::prometheus`]).
pub fn prometheus() -> PrometheusHandle {
    bazaar_telemetry::prometheus()
}
