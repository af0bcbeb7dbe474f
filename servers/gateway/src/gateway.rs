//! The gateway: built once from a validated config plus what the
//! composition root supplies (token verifier, service directory, shared
//! rate-limit store), then asked to handle each request: its own endpoints,
//! routing, rate limits, edge auth, and the proxying itself.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Instant, SystemTime};

use bazaar_core::events::{TraceContext, continue_trace, propagator};
use bazaar_core::resilience::rate_limit::RateLimitStore;
use bazaar_core::resilience::registry::ServiceDirectory;
use http::{Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use tokio::sync::watch;
use tracing::Instrument as _;

use crate::auth::{CachedVerifier, TokenRejection, TokenVerifier, VerifiedToken, find_token};
use crate::body::ProxyBody;
use crate::config::{AuthMode, ConfigError, GatewayConfig, RouteConfig};
use crate::error::GatewayError;
use crate::headers::{REQUEST_ID, request_id};
use crate::limits::RateLimits;
use crate::metrics::GatewayMetrics;
use crate::pool::Pool;
use crate::{proxy, status, websocket};
use bazaar_core::auth::client_ip::{Cidr, TrustedProxies};

/// A route, ready to match.
#[derive(Debug)]
pub(crate) struct Route {
    pub(crate) config: RouteConfig,
    pub(crate) name: String,
    pub(crate) pool: Arc<Pool>,
}

/// Everything a request handler shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: GatewayConfig,
    pub(crate) routes: Vec<Route>,
    pub(crate) pools: BTreeMap<String, Arc<Pool>>,
    pub(crate) verifier: Option<CachedVerifier>,
    pub(crate) directory: Option<Arc<dyn ServiceDirectory>>,
    pub(crate) limits: RateLimits,
    pub(crate) client_ip: TrustedProxies,
    pub(crate) metrics: GatewayMetrics,
    pub(crate) draining: AtomicBool,
    /// Open WebSocket tunnels; the sender wakes drain waiters.
    pub(crate) websockets: watch::Sender<u64>,
    pub(crate) websockets_total: AtomicU64,
    /// Set when the drain time is up: open tunnels close.
    pub(crate) close_tunnels: watch::Sender<bool>,
}

/// The gateway; cheap to clone.
#[derive(Debug, Clone)]
pub struct Gateway {
    pub(crate) shared: Arc<Shared>,
}

/// Builds a [`Gateway`].
#[derive(Debug)]
pub struct GatewayBuilder {
    config: GatewayConfig,
    verifier: Option<Arc<dyn TokenVerifier>>,
    directory: Option<Arc<dyn ServiceDirectory>>,
    store: Option<Arc<dyn RateLimitStore>>,
}

impl GatewayBuilder {
    /// Verifies bearer tokens at the edge with `verifier` (without one,
    /// routes with `auth = "required"` refuse every request and tokens
    /// elsewhere pass unchecked).
    #[must_use]
    pub fn verifier(self, verifier: Arc<dyn TokenVerifier>) -> Self {
        Self { verifier: Some(verifier), ..self }
    }

    /// Reads pools that name a `service` from `directory`.
    #[must_use]
    pub fn directory(self, directory: Arc<dyn ServiceDirectory>) -> Self {
        Self { directory: Some(directory), ..self }
    }

    /// Shares rate-limit state through `store` (Redis GCRA) instead of
    /// keeping it in process.
    #[must_use]
    pub fn rate_limit_store(self, store: Arc<dyn RateLimitStore>) -> Self {
        Self { store: Some(store), ..self }
    }

    /// The gateway. Needs a tokio runtime (the upstream clients' timers).
    ///
    /// # Errors
    /// [`ConfigError`] when the config is invalid, or names a discovery
    /// service without a directory to read it from.
    pub fn build(self) -> Result<Gateway, ConfigError> {
        let Self { config, verifier, directory, store } = self;
        config.validate()?;
        if directory.is_none()
            && let Some((pool, _)) = config.discovered_services().next()
        {
            return Err(ConfigError::new(
                format!("pools.{pool}.service"),
                "discovery needs a service directory (set NATS_URL or REDIS_URL)",
            ));
        }
        let pools: BTreeMap<String, Arc<Pool>> =
            config.pools.iter().map(|(name, p)| (name.clone(), Arc::new(Pool::new(name, p)))).collect();
        let routes = config
            .routes
            .iter()
            .map(|r| Route { name: r.display_name(), pool: Arc::clone(&pools[&r.pool]), config: r.clone() })
            .collect();
        let shared = Shared {
            verifier: verifier.map(|v| CachedVerifier::new(v, config.auth.cache_capacity)),
            directory,
            limits: RateLimits::new(&config.rate_limit, store),
            client_ip: TrustedProxies::new(
                config.server.trusted_proxies.iter().filter_map(|b| Cidr::parse(b).ok()).collect(),
            ),
            metrics: GatewayMetrics::new(),
            draining: AtomicBool::new(false),
            websockets: watch::Sender::new(0),
            websockets_total: AtomicU64::new(0),
            close_tunnels: watch::Sender::new(false),
            routes,
            pools,
            config,
        };
        Ok(Gateway { shared: Arc::new(shared) })
    }
}

/// What a request resolved to before proxying.
pub(crate) struct Context {
    pub(crate) request_id: http::HeaderValue,
    pub(crate) peer: SocketAddr,
    pub(crate) client_ip: std::net::IpAddr,
    /// The gateway span's own trace context, handed upstream; `None` when
    /// traces are not exported (the hop then continues the caller's trace
    /// with a span id of its own, see [`crate::headers::traceparent`]).
    pub(crate) trace: Option<TraceContext>,
}

impl Gateway {
    /// A builder for `config`.
    pub fn builder(config: GatewayConfig) -> GatewayBuilder {
        GatewayBuilder { config, verifier: None, directory: None, store: None }
    }

    /// The configuration it runs.
    pub fn config(&self) -> &GatewayConfig {
        &self.shared.config
    }

    /// The status document served at `/gateway/status`.
    pub fn status(&self) -> serde_json::Value {
        status::snapshot(&self.shared)
    }

    /// The Prometheus exposition served at `/metrics`.
    pub fn metrics(&self) -> String {
        self.shared.metrics.render()
    }

    /// Open WebSocket tunnels.
    pub fn open_websockets(&self) -> u64 {
        *self.shared.websockets.borrow()
    }

    /// Handles one request from `peer`.
    ///
    /// When traces are exported (a trace propagator is installed), the
    /// request runs in a server span that continues the caller's W3C
    /// `traceparent`, and upstreams receive that span's context; otherwise
    /// no span is made at all, so tracing costs nothing when it is off.
    pub async fn handle(&self, request: Request<Incoming>, peer: SocketAddr) -> Response<ProxyBody> {
        if propagator().is_none() {
            return self.handle_in(request, peer, None, &tracing::Span::none()).await;
        }
        let span = tracing::info_span!(
            "gateway_request",
            otel.name = tracing::field::Empty,
            otel.kind = "server",
            http.request.method = %request.method(),
            url.path = request.uri().path(),
            http.route = tracing::field::Empty,
            http.response.status_code = tracing::field::Empty,
            client.address = %peer.ip(),
            request_id = tracing::field::Empty,
            trace_id = tracing::field::Empty,
        );
        let caller = crate::headers::incoming_trace(request.headers());
        let trace = continue_trace(&span, &caller.iter().collect::<Vec<_>>());
        if let Some(trace) = &trace {
            span.record("trace_id", trace.trace_id());
        }
        self.handle_in(request, peer, trace, &span).instrument(span.clone()).await
    }

    async fn handle_in(
        &self,
        request: Request<Incoming>,
        peer: SocketAddr,
        trace: Option<TraceContext>,
        span: &tracing::Span,
    ) -> Response<ProxyBody> {
        let started = Instant::now();
        let request_id = request_id(request.headers());
        // Only a traced request names its span after the method.
        let method = (!span.is_disabled()).then(|| request.method().clone());
        let shared = &self.shared;
        let (route_name, mut response) = match own_endpoint(shared, &request) {
            Some(response) => ("gateway".to_owned(), response),
            None => {
                let client_ip = shared
                    .client_ip
                    .client(peer.ip(), |name| request.headers().get_all(name).iter().filter_map(|v| v.to_str().ok()));
                let ctx = Context { request_id: request_id.clone(), peer, client_ip, trace };
                match self.route(&request) {
                    None => ("unmatched".to_owned(), GatewayError::NoRoute.into_response(id_str(&ctx.request_id))),
                    Some(route) => {
                        let name = route.name.clone();
                        let response = match self.admit(route, &request, &ctx).await {
                            Err(e) => e.into_response(id_str(&ctx.request_id)),
                            Ok(()) if websocket::is_upgrade(&request) => {
                                websocket::proxy(Arc::clone(&self.shared), route, request, &ctx).await
                            }
                            Ok(()) => proxy::forward(&self.shared, route, request, &ctx).await,
                        };
                        (name, response)
                    }
                }
            }
        };
        if let Some(method) = method {
            span.record("otel.name", format!("{method} {route_name}").as_str());
            span.record("http.route", route_name.as_str());
            span.record("http.response.status_code", response.status().as_u16());
            span.record("request_id", id_str(&request_id));
        }
        response.headers_mut().insert(REQUEST_ID, request_id);
        shared.metrics.route(&route_name, response.status().as_u16(), started.elapsed());
        response
    }

    /// The route for a request: host match (if the route names one), then
    /// the longest prefix.
    fn route(&self, request: &Request<Incoming>) -> Option<&Route> {
        let host =
            request.uri().host().or_else(|| request.headers().get(header::HOST).and_then(|h| h.to_str().ok())).map(
                |h| h.rsplit_once(':').filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit())).map_or(h, |(h, _)| h),
            );
        let path = request.uri().path();
        self.shared
            .routes
            .iter()
            .filter(|r| r.config.host.as_deref().is_none_or(|want| host.is_some_and(|h| h.eq_ignore_ascii_case(want))))
            .filter(|r| path.starts_with(&r.config.prefix))
            .max_by_key(|r| (r.config.host.is_some(), r.config.prefix.len()))
    }

    /// Rate limits and edge auth.
    async fn admit(&self, route: &Route, request: &Request<Incoming>, ctx: &Context) -> Result<(), GatewayError> {
        let shared = &self.shared;
        shared.limits.check_ip(ctx.client_ip).await.map_err(|retry_after| GatewayError::RateLimited { retry_after })?;
        let user = authenticate(shared, route, request)?;
        if let Some(user) = user {
            shared
                .limits
                .check_user(&user.user_id.to_string())
                .await
                .map_err(|retry_after| GatewayError::RateLimited { retry_after })?;
        }
        Ok(())
    }
}

fn authenticate(
    shared: &Shared,
    route: &Route,
    request: &Request<Incoming>,
) -> Result<Option<VerifiedToken>, GatewayError> {
    if route.config.auth == AuthMode::None {
        return Ok(None);
    }
    let token = find_token(request.headers(), request.uri().query(), websocket::is_upgrade(request));
    let reject = |why| Err(GatewayError::Unauthenticated(why));
    match (token, &shared.verifier, route.config.auth) {
        (None, _, AuthMode::Required) => reject(TokenRejection::Missing),
        (None, _, _) => Ok(None),
        (Some(_), None, AuthMode::Required) => reject(TokenRejection::Invalid),
        (Some(_), None, _) => Ok(None),
        (Some(token), Some(verifier), _) => match verifier.verify_at(&token, SystemTime::now()) {
            Ok(user) => Ok(Some(user)),
            Err(why) => reject(why),
        },
    }
}

pub(crate) fn id_str(value: &http::HeaderValue) -> &str {
    value.to_str().unwrap_or("-")
}

/// `/health/live`, `/health/ready`, `/gateway/status`, `/gateway`, `/metrics`.
fn own_endpoint(shared: &Shared, request: &Request<Incoming>) -> Option<Response<ProxyBody>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return None;
    }
    let json = |status: StatusCode, v: serde_json::Value| crate::error::json_response(status, v.to_string());
    Some(match request.uri().path() {
        "/health/live" => json(StatusCode::OK, serde_json::json!({ "status": "ok" })),
        "/health/ready" => {
            let draining = shared.draining.load(Ordering::Acquire);
            let routable = shared.pools.values().all(|p| !p.balancer().is_empty());
            if draining || !routable {
                let why = if draining { "draining" } else { "a pool has no instance" };
                json(StatusCode::SERVICE_UNAVAILABLE, serde_json::json!({ "status": "unavailable", "reason": why }))
            } else {
                json(StatusCode::OK, serde_json::json!({ "status": "ok" }))
            }
        }
        "/gateway/status" => json(StatusCode::OK, status::snapshot(shared)),
        "/gateway" | "/gateway/" => status::page(shared),
        "/metrics" => {
            let mut response = Response::new(crate::body::full(shared.metrics.render().into()));
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain; version=0.0.4"));
            response
        }
        _ => return None,
    })
}
