//! Gateway configuration: the TOML file (`--config gateway.toml`), the short
//! form (`--upstream api=http://a,http://b`), defaults and validation. Every
//! error names the setting it is about, so a bad start says what to fix.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

/// A configuration the gateway refuses to start with. The CLI prints it and
/// exits with code 2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid gateway configuration: {setting}: {message}")]
pub struct ConfigError {
    /// The setting at fault, as a dotted path (`pools.api.strategy`).
    pub setting: String,
    /// What is wrong with it.
    pub message: String,
}

impl ConfigError {
    /// An error about `setting`.
    pub fn new(setting: impl Into<String>, message: impl Into<String>) -> Self {
        Self { setting: setting.into(), message: message.into() }
    }

    /// The process exit code for a configuration error.
    pub const EXIT_CODE: i32 = 2;
}

/// The whole gateway configuration.
///
/// # Example
/// ```
/// use bazaar_gateway::config::GatewayConfig;
///
/// let config = GatewayConfig::from_toml(r#"
///     [server]
///     http_addr = "127.0.0.1:8000"
///
///     [pools.api]
///     instances = ["http://127.0.0.1:8081", "http://127.0.0.1:8082"]
///
///     [[routes]]
///     prefix = "/"
///     pool = "api"
/// "#).unwrap();
/// assert_eq!(config.pools["api"].instances.len(), 2);
/// let err = GatewayConfig::from_toml("[pools.api]\nstrategy = \"fastest\"\n").unwrap_err();
/// assert_eq!(err.setting, "pools.api.strategy");
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// Listener, trusted proxies, drain.
    #[serde(default)]
    pub server: ServerConfig,
    /// Upstream pools by name.
    #[serde(default)]
    pub pools: BTreeMap<String, PoolConfig>,
    /// Routes, matched by host and longest path prefix.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// Edge authentication.
    #[serde(default)]
    pub auth: AuthConfig,
    /// Rate limits per client address and per user.
    #[serde(default)]
    pub rate_limit: RateLimitConfig,
    /// Registry-backed discovery.
    #[serde(default)]
    pub discovery: DiscoveryConfig,
}

/// The listener and process-wide settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Where to listen (default `127.0.0.1:8000`).
    pub http_addr: SocketAddr,
    /// Peers whose `X-Forwarded-For` is believed: addresses or CIDR blocks.
    pub trusted_proxies: Vec<String>,
    /// How long a shutdown waits for in-flight requests and open streams.
    pub drain_timeout_ms: u64,
    /// Largest request body replayed for a retry; a bigger (or unsized)
    /// body is streamed and not retried.
    pub retry_body_limit: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            http_addr: SocketAddr::from(([127, 0, 0, 1], 8000)),
            trusted_proxies: Vec::new(),
            drain_timeout_ms: 30_000,
            retry_body_limit: 64 * 1024,
        }
    }
}

/// How a pool chooses an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StrategyName {
    /// Each instance in turn.
    RoundRobin,
    /// Smooth weighted round robin on the instances' weights.
    Weighted,
    /// Uniformly at random.
    Random,
    /// Power of two choices on requests in flight.
    LeastRequest,
    /// Power of two choices on peak-EWMA latency × load (the default).
    #[default]
    PeakEwma,
}

impl StrategyName {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RoundRobin => "round_robin",
            Self::Weighted => "weighted",
            Self::Random => "random",
            Self::LeastRequest => "least_request",
            Self::PeakEwma => "peak_ewma",
        }
    }
}

/// The wire protocol spoken to a pool's instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// HTTP/1.1 with keep-alive (the default; WebSocket upgrades need it).
    #[default]
    Http1,
    /// HTTP/2 cleartext with prior knowledge: gRPC pools.
    H2c,
}

/// One statically configured instance: a URL, or a URL with a weight.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum InstanceConfig {
    /// `"http://127.0.0.1:8081"`.
    Url(String),
    /// `{ url = "http://127.0.0.1:8081", weight = 3 }`.
    Weighted {
        /// The base URL.
        url: String,
        /// Relative weight for the weighted strategy.
        weight: u32,
    },
}

impl InstanceConfig {
    /// The base URL.
    pub fn url(&self) -> &str {
        match self {
            Self::Url(url) | Self::Weighted { url, .. } => url,
        }
    }

    /// The weight (1 unless given).
    pub fn weight(&self) -> u32 {
        match self {
            Self::Url(_) => 1,
            Self::Weighted { weight, .. } => (*weight).max(1),
        }
    }
}

/// One upstream pool.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PoolConfig {
    /// Static instances.
    pub instances: Vec<InstanceConfig>,
    /// Service name to read from the service directory, if any.
    pub service: Option<String>,
    /// Balancing strategy.
    pub strategy: StrategyName,
    /// HTTP/1.1 or h2c.
    pub protocol: Protocol,
    /// Most requests in flight to this pool at once (bulkhead).
    pub max_concurrent: usize,
    /// TCP connect timeout.
    pub connect_timeout_ms: u64,
    /// Deadline of one attempt, until the response head.
    pub per_try_timeout_ms: u64,
    /// Deadline of the whole request (every attempt and backoff), until
    /// the response head.
    pub timeout_ms: u64,
    /// Idle keep-alive connections kept per instance.
    pub max_idle_per_instance: usize,
    /// Active health checks.
    pub health: HealthConfig,
    /// Per-instance circuit breaker.
    pub breaker: BreakerConfig,
    /// Retries of idempotent requests.
    pub retry: RetryConfig,
    /// Passive outlier ejection.
    pub outlier: OutlierSettings,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            instances: Vec::new(),
            service: None,
            strategy: StrategyName::default(),
            protocol: Protocol::default(),
            max_concurrent: 1024,
            connect_timeout_ms: 1_000,
            per_try_timeout_ms: 10_000,
            timeout_ms: 30_000,
            max_idle_per_instance: 256,
            health: HealthConfig::default(),
            breaker: BreakerConfig::default(),
            retry: RetryConfig::default(),
            outlier: OutlierSettings::default(),
        }
    }
}

/// Active health checks of a pool's instances.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthConfig {
    /// Whether to check at all.
    pub enabled: bool,
    /// The path asked with `GET`; any 2xx is healthy.
    pub path: String,
    /// Time between checks of one instance.
    pub interval_ms: u64,
    /// Deadline of one check.
    pub timeout_ms: u64,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self { enabled: true, path: "/health/ready".into(), interval_ms: 2_000, timeout_ms: 1_000 }
    }
}

/// Per-instance circuit breaker (consecutive failures).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerConfig {
    /// Failures in a row that open it.
    pub failure_threshold: u32,
    /// Successful probes that close it.
    pub success_threshold: u32,
    /// Time open before probing.
    pub open_ms: u64,
    /// Calls since closing before it may open.
    pub minimum_volume: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self { failure_threshold: 5, success_threshold: 2, open_ms: 60_000, minimum_volume: 10 }
    }
}

/// Retries of idempotent requests (GET, HEAD, OPTIONS, or any request with
/// an `Idempotency-Key`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// Attempts, counting the first (1 disables retries).
    pub max_attempts: u32,
    /// Base of the exponential backoff (full jitter).
    pub backoff_ms: u64,
    /// Cap of one backoff.
    pub max_backoff_ms: u64,
    /// Retries allowed as a share of recent requests (0.2 = 20 %).
    pub budget_ratio: f32,
    /// Retries per second allowed regardless of the ratio.
    pub budget_min_per_sec: u32,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self { max_attempts: 3, backoff_ms: 5, max_backoff_ms: 200, budget_ratio: 0.2, budget_min_per_sec: 10 }
    }
}

/// Passive outlier ejection (Envoy's consecutive gateway failures).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutlierSettings {
    /// Whether to eject at all.
    pub enabled: bool,
    /// Failures in a row that eject.
    pub consecutive_failures: u32,
    /// Ejection time per time ejected.
    pub base_ejection_ms: u64,
    /// Upper bound of one ejection.
    pub max_ejection_ms: u64,
    /// Largest share of a pool ejected at once, in percent.
    pub max_ejection_percent: u32,
}

impl Default for OutlierSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            consecutive_failures: 5,
            base_ejection_ms: 30_000,
            max_ejection_ms: 300_000,
            max_ejection_percent: 50,
        }
    }
}

/// Whether a route checks bearer tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// A token, if present, must verify; requests without one pass (the
    /// upstream decides). The default: a bad or expired token never
    /// reaches an upstream.
    #[default]
    Optional,
    /// A valid token is required.
    Required,
    /// Tokens are not looked at (e.g. provider webhooks).
    None,
}

/// One route.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Path prefix, starting with `/`; a plain string prefix as in Envoy
    /// (`/v1` also matches `/v1beta`: write `/v1/` to avoid that).
    pub prefix: String,
    /// Host to match (without port); any host when absent.
    #[serde(default)]
    pub host: Option<String>,
    /// The pool to send to.
    pub pool: String,
    /// Token checking.
    #[serde(default)]
    pub auth: AuthMode,
    /// Remove the prefix before forwarding.
    #[serde(default)]
    pub strip_prefix: bool,
    /// A name for metrics and status (default: host + prefix).
    #[serde(default)]
    pub name: Option<String>,
}

impl RouteConfig {
    /// The name used in metrics.
    pub fn display_name(&self) -> String {
        match (&self.name, &self.host) {
            (Some(name), _) => name.clone(),
            (None, Some(host)) => format!("{host}{}", self.prefix),
            (None, None) => self.prefix.clone(),
        }
    }
}

/// Edge authentication settings; the verifier itself is supplied by the
/// composition root ([`crate::GatewayBuilder::verifier`]).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Verified tokens kept in the cache.
    pub cache_capacity: usize,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self { cache_capacity: 10_000 }
    }
}

/// A GCRA quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaConfig {
    /// Sustained requests per second.
    pub per_second: u32,
    /// Requests allowed at once (default: one second's worth).
    #[serde(default)]
    pub burst: Option<u32>,
}

/// Rate limits. Shared through the store given to
/// [`crate::GatewayBuilder::rate_limit_store`] (Redis GCRA), else in process.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// Per client address (after trusted proxies).
    pub per_ip: Option<QuotaConfig>,
    /// Per verified user.
    pub per_user: Option<QuotaConfig>,
}

/// Discovery through the service directory.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiscoveryConfig {
    /// Re-read period (a watch also triggers re-reads on change).
    pub refresh_ms: u64,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        Self { refresh_ms: 1_000 }
    }
}

/// Milliseconds as a duration.
pub(crate) fn ms(value: u64) -> Duration {
    Duration::from_millis(value)
}

impl GatewayConfig {
    /// Parses and validates TOML.
    ///
    /// # Errors
    /// [`ConfigError`] naming the offending setting.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let deserializer = toml::Deserializer::parse(text).map_err(|e| ConfigError::new("(file)", e.to_string()))?;
        let config: Self = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let setting = e.path().to_string();
            let message = e.inner().message().to_owned();
            ConfigError::new(if setting == "." { "(root)".to_owned() } else { setting }, message)
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Reads, parses and validates a TOML file.
    ///
    /// # Errors
    /// [`ConfigError`] naming the offending setting, or `config` when the
    /// file cannot be read.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new("config", format!("cannot read {}: {e}", path.display())))?;
        Self::from_toml(&text)
    }

    /// The short form: each `upstream` is `name=url[,url…]`; every path is
    /// routed to the first one named.
    ///
    /// # Errors
    /// [`ConfigError`] on `upstream` when one is malformed or none given.
    pub fn short_form(http_addr: Option<SocketAddr>, upstreams: &[String]) -> Result<Self, ConfigError> {
        let mut config = Self {
            server: ServerConfig {
                http_addr: http_addr.unwrap_or(ServerConfig::default().http_addr),
                ..ServerConfig::default()
            },
            pools: BTreeMap::new(),
            routes: Vec::new(),
            auth: AuthConfig::default(),
            rate_limit: RateLimitConfig::default(),
            discovery: DiscoveryConfig::default(),
        };
        for spec in upstreams {
            let (name, pool) = parse_upstream(spec)?;
            if config.routes.is_empty() {
                config.routes.push(RouteConfig {
                    prefix: "/".into(),
                    host: None,
                    pool: name.clone(),
                    auth: AuthMode::Optional,
                    strip_prefix: false,
                    name: None,
                });
            }
            if config.pools.insert(name.clone(), pool).is_some() {
                return Err(ConfigError::new("upstream", format!("pool {name:?} is given twice")));
            }
        }
        if config.pools.is_empty() {
            return Err(ConfigError::new("upstream", "at least one --upstream name=url[,url…] is needed"));
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks what serde cannot: references, URLs, ranges.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first offending setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for proxy in &self.server.trusted_proxies {
            bazaar_core::auth::client_ip::Cidr::parse(proxy)
                .map_err(|m| ConfigError::new("server.trusted_proxies", format!("{proxy:?}: {m}")))?;
        }
        for (name, pool) in &self.pools {
            let at = |field: &str| format!("pools.{name}.{field}");
            if !valid_name(name) {
                return Err(ConfigError::new(format!("pools.{name}"), "pool names use a-z, 0-9, '-' and '_'"));
            }
            if pool.instances.is_empty() && pool.service.is_none() {
                return Err(ConfigError::new(at("instances"), "a pool needs instances or a discovery service"));
            }
            for (i, instance) in pool.instances.iter().enumerate() {
                parse_base_url(instance.url())
                    .map_err(|m| ConfigError::new(format!("pools.{name}.instances[{i}]"), m))?;
            }
            for (field, value) in [
                ("max_concurrent", pool.max_concurrent as u64),
                ("connect_timeout_ms", pool.connect_timeout_ms),
                ("per_try_timeout_ms", pool.per_try_timeout_ms),
                ("timeout_ms", pool.timeout_ms),
                ("health.interval_ms", pool.health.interval_ms),
                ("health.timeout_ms", pool.health.timeout_ms),
                ("breaker.failure_threshold", u64::from(pool.breaker.failure_threshold)),
                ("breaker.success_threshold", u64::from(pool.breaker.success_threshold)),
                ("breaker.open_ms", pool.breaker.open_ms),
                ("retry.max_attempts", u64::from(pool.retry.max_attempts)),
                ("outlier.consecutive_failures", u64::from(pool.outlier.consecutive_failures)),
            ] {
                if value == 0 {
                    return Err(ConfigError::new(at(field), "must be greater than zero"));
                }
            }
            if !pool.health.path.starts_with('/') {
                return Err(ConfigError::new(at("health.path"), "must start with '/'"));
            }
            if !(0.0..=10.0).contains(&pool.retry.budget_ratio) {
                return Err(ConfigError::new(at("retry.budget_ratio"), "must be in 0..=10"));
            }
            if pool.outlier.max_ejection_percent > 100 {
                return Err(ConfigError::new(at("outlier.max_ejection_percent"), "must be at most 100"));
            }
        }
        for (i, route) in self.routes.iter().enumerate() {
            if !route.prefix.starts_with('/') {
                return Err(ConfigError::new(format!("routes[{i}].prefix"), "must start with '/'"));
            }
            if !self.pools.contains_key(&route.pool) {
                return Err(ConfigError::new(format!("routes[{i}].pool"), format!("no pool named {:?}", route.pool)));
            }
        }
        if self.routes.is_empty() {
            return Err(ConfigError::new("routes", "at least one route is needed"));
        }
        for (field, quota) in
            [("rate_limit.per_ip", self.rate_limit.per_ip), ("rate_limit.per_user", self.rate_limit.per_user)]
        {
            if let Some(q) = quota {
                if q.per_second == 0 {
                    return Err(ConfigError::new(format!("{field}.per_second"), "must be greater than zero"));
                }
                if q.burst == Some(0) {
                    return Err(ConfigError::new(format!("{field}.burst"), "must be greater than zero"));
                }
            }
        }
        if self.discovery.refresh_ms == 0 {
            return Err(ConfigError::new("discovery.refresh_ms", "must be greater than zero"));
        }
        Ok(())
    }

    /// Pools that read instances from the service directory.
    pub fn discovered_services(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pools.iter().filter_map(|(name, p)| p.service.as_deref().map(|s| (name.as_str(), s)))
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Parses one short-form upstream, `name=url[,url…]`.
///
/// # Errors
/// [`ConfigError`] on `upstream`.
pub fn parse_upstream(spec: &str) -> Result<(String, PoolConfig), ConfigError> {
    let bad = |m: String| ConfigError::new("upstream", format!("{spec:?}: {m}"));
    let (name, urls) = spec.split_once('=').ok_or_else(|| bad("expected name=url[,url…]".into()))?;
    let name = name.trim();
    if !valid_name(name) {
        return Err(bad("the name uses a-z, 0-9, '-' and '_'".into()));
    }
    let mut instances = Vec::new();
    for url in urls.split(',').map(str::trim) {
        parse_base_url(url).map_err(bad)?;
        instances.push(InstanceConfig::Url(url.to_owned()));
    }
    Ok((name.to_owned(), PoolConfig { instances, ..PoolConfig::default() }))
}

/// A normalised instance base: `http://host:port`, no path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BaseUrl {
    /// `host:port`.
    pub authority: String,
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}", self.authority)
    }
}

/// Parses `http://host:port` (or a bare `host:port`, as registries store
/// addresses). Only cleartext HTTP: TLS ends at the edge, in front of the
/// gateway or at the gateway's own listener in a later version.
///
/// # Errors
/// A message saying what is wrong.
pub fn parse_base_url(url: &str) -> Result<BaseUrl, String> {
    let rest = match url.split_once("://") {
        Some(("http", rest)) => rest,
        Some((scheme, _)) => return Err(format!("scheme {scheme:?} is not supported (use http)")),
        None => url,
    };
    let authority = rest.trim_end_matches('/');
    if authority.is_empty() || authority.contains('/') || authority.contains('@') {
        return Err(format!("{url:?} is not a base URL like http://host:port"));
    }
    let uri: http::uri::Authority = authority.parse().map_err(|e| format!("{url:?}: {e}"))?;
    if uri.port_u16().is_none() {
        return Err(format!("{url:?} needs a port"));
    }
    if uri.host().parse::<IpAddr>().is_err() && uri.host().is_empty() {
        return Err(format!("{url:?} has no host"));
    }
    Ok(BaseUrl { authority: authority.to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_form_routes_everything_to_the_first_upstream() {
        let config = GatewayConfig::short_form(
            Some("127.0.0.1:9000".parse().unwrap()),
            &["api=http://127.0.0.1:8081,http://127.0.0.1:8082".into(), "grpc=127.0.0.1:50051".into()],
        )
        .unwrap();
        assert_eq!(config.server.http_addr.port(), 9000);
        assert_eq!(config.routes.len(), 1);
        assert_eq!(config.routes[0].pool, "api");
        assert_eq!(config.routes[0].prefix, "/");
        let urls: Vec<&str> = config.pools["api"].instances.iter().map(InstanceConfig::url).collect();
        assert_eq!(urls, ["http://127.0.0.1:8081", "http://127.0.0.1:8082"]);
        assert_eq!(config.pools["api"].strategy, StrategyName::PeakEwma);
        assert_eq!(config.pools["api"].breaker, BreakerConfig::default());
    }

    #[test]
    fn short_form_errors_name_the_upstream_setting() {
        for bad in ["api", "api=", "=http://127.0.0.1:1", "api=https://x:1", "api=http://127.0.0.1", "a pi=http://h:1"]
        {
            let err = GatewayConfig::short_form(None, &[bad.into()]).unwrap_err();
            assert_eq!(err.setting, "upstream", "{bad}: {err}");
        }
        let err = GatewayConfig::short_form(None, &[]).unwrap_err();
        assert_eq!(err.setting, "upstream");
        let err = GatewayConfig::short_form(None, &["a=http://h:1".into(), "a=http://h:2".into()]).unwrap_err();
        assert!(err.message.contains("twice"), "{err}");
    }

    #[test]
    fn file_errors_name_the_setting() {
        let cases = [
            (
                "[pools.api]\ninstances=[\"http://h:1\"]\nstrategy = \"fastest\"\n[[routes]]\nprefix=\"/\"\npool=\"api\"",
                "pools.api.strategy",
            ),
            (
                "[pools.api]\ninstances=[\"http://h:1\"]\ntimeout_ms = \"soon\"\n[[routes]]\nprefix=\"/\"\npool=\"api\"",
                "pools.api.timeout_ms",
            ),
            (
                "[pools.api]\ninstances=[\"http://h:1\"]\ntypo = 1\n[[routes]]\nprefix=\"/\"\npool=\"api\"",
                "pools.api.typo",
            ),
            ("[pools.api]\ninstances=[\"http://h:1\"]\n[[routes]]\nprefix=\"/\"\npool=\"web\"", "routes[0].pool"),
            (
                "[pools.api]\ninstances=[\"ftp://h:1\"]\n[[routes]]\nprefix=\"/\"\npool=\"api\"",
                "pools.api.instances[0]",
            ),
            (
                "[pools.api]\ninstances=[\"http://h:1\"]\nbreaker.open_ms = 0\n[[routes]]\nprefix=\"/\"\npool=\"api\"",
                "pools.api.breaker.open_ms",
            ),
            ("[pools.api]\ninstances=[\"http://h:1\"]\n[[routes]]\nprefix=\"v1\"\npool=\"api\"", "routes[0].prefix"),
            (
                "[server]\ntrusted_proxies=[\"10.0.0.0/33\"]\n[pools.api]\ninstances=[\"http://h:1\"]\n[[routes]]\nprefix=\"/\"\npool=\"api\"",
                "server.trusted_proxies",
            ),
            ("[pools.api]\ninstances=[]\n[[routes]]\nprefix=\"/\"\npool=\"api\"", "pools.api.instances"),
            (
                "[rate_limit]\nper_ip = { per_second = 0 }\n[pools.api]\ninstances=[\"http://h:1\"]\n[[routes]]\nprefix=\"/\"\npool=\"api\"",
                "rate_limit.per_ip.per_second",
            ),
            ("[server]\nhttp_addr = \"nowhere\"\n", "server.http_addr"),
            ("this is not toml", "(file)"),
        ];
        for (text, setting) in cases {
            let err = GatewayConfig::from_toml(text).unwrap_err();
            assert_eq!(err.setting, setting, "{text}\n=> {err}");
        }
    }

    #[test]
    fn a_full_file_parses_with_weights_hosts_and_defaults() {
        let config = GatewayConfig::from_toml(
            r#"
            [server]
            trusted_proxies = ["127.0.0.1", "10.0.0.0/8"]
            [pools.api]
            strategy = "weighted"
            instances = ["http://127.0.0.1:8081", { url = "http://127.0.0.1:8082", weight = 3 }]
            breaker = { failure_threshold = 3, open_ms = 500 }
            [pools.grpc]
            protocol = "h2c"
            service = "grpc"
            [[routes]]
            prefix = "/v1"
            host = "api.example.com"
            pool = "api"
            auth = "required"
            [[routes]]
            prefix = "/bazaar.v1."
            pool = "grpc"
            [rate_limit]
            per_user = { per_second = 10, burst = 20 }
            "#,
        )
        .unwrap();
        assert_eq!(config.pools["api"].instances[1].weight(), 3);
        assert_eq!(config.pools["api"].breaker.failure_threshold, 3);
        assert_eq!(config.pools["api"].breaker.success_threshold, 2, "unset fields keep their defaults");
        assert_eq!(config.pools["grpc"].protocol, Protocol::H2c);
        assert_eq!(config.routes[0].auth, AuthMode::Required);
        assert_eq!(config.routes[1].auth, AuthMode::Optional);
        assert_eq!(config.discovered_services().collect::<Vec<_>>(), [("grpc", "grpc")]);
    }
}

#[cfg(test)]
mod example_file {
    use super::*;

    #[test]
    fn the_example_file_parses_and_states_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("gateway.example.toml");
        let config = GatewayConfig::from_file(&path).unwrap();
        let api = &config.pools["api"];
        let defaults = PoolConfig::default();
        assert_eq!(api.breaker, defaults.breaker);
        assert_eq!(api.retry, defaults.retry);
        assert_eq!(api.outlier, defaults.outlier);
        assert_eq!(api.health, defaults.health);
        assert_eq!(
            (api.max_concurrent, api.connect_timeout_ms, api.per_try_timeout_ms, api.timeout_ms),
            (defaults.max_concurrent, defaults.connect_timeout_ms, defaults.per_try_timeout_ms, defaults.timeout_ms)
        );
        assert_eq!(config.server.drain_timeout_ms, ServerConfig::default().drain_timeout_ms);
        assert_eq!(config.routes.len(), 3);
        let err = GatewayConfig::from_file(Path::new("/nonexistent/gateway.toml")).unwrap_err();
        assert_eq!(err.setting, "config");
    }
}
