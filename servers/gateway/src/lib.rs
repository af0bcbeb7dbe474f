//! Bazaar's API gateway: a hyper reverse proxy over the core's resilience
//! kit.
//!
//! - **Routing** by host and longest path prefix to named upstream pools
//!   ([`config`]); instances from the config and from a
//!   [`ServiceDirectory`](bazaar_core::resilience::registry::ServiceDirectory)
//!   (NATS JetStream KV in `bazaar-nats`), where replicas register with a TTL
//!   through the core's `Advertiser`.
//! - **Per pool**: the kit's load balancer (round robin, weighted, random,
//!   least request, P2C peak-EWMA by default) with passive outlier
//!   ejection, a [`ConsecutiveBreaker`](bazaar_core::resilience::circuit_breaker::ConsecutiveBreaker)
//!   per instance (5 failures in a row given 10 calls, open 60 s, 2 probes
//!   to close), active health checks, a bulkhead, retries of idempotent
//!   requests inside a retry budget, per-try and overall deadlines
//!   ([`proxy`] describes exactly what is retried).
//! - **Edge**: bearer tokens verified by a [`auth::TokenVerifier`]
//!   the composition root supplies (cached, expiry respected; a bad or
//!   expired token never reaches an upstream); rate limits per client
//!   address (behind trusted proxies) and per user, in process or through a
//!   shared store.
//! - **Streaming**: bodies are streamed both ways; WebSocket upgrades are
//!   tunnelled; h2c pools carry gRPC.
//! - **Observability**: `x-request-id` and W3C `traceparent` (with traces
//!   exported, each request is a server span continuing the caller's trace,
//!   and upstreams see that span as their parent), Prometheus
//!   metrics at `/metrics`, `GET /gateway/status` (JSON) and `/gateway`
//!   (page), `/health/live` and `/health/ready`.
//! - **Shutdown** drains in-flight requests and open streams ([`serve`]).
//!
//! `bazaar gateway` (in the `bazaar` CLI, composed in `bazaar-app`) runs
//! this crate: it parses a [`GatewayConfig`] (a TOML file or the short
//! form), builds a [`Gateway`] with the API's token verifier, the service
//! directory and the shared rate-limit store, binds and calls [`serve`]. A
//! program embedding the crate does the same with what it has; a
//! [`ConfigError`] carries the exit code such a program should use
//! ([`ConfigError::EXIT_CODE`], 2).
//!
//! # Example
//! ```
//! use bazaar_gateway::GatewayConfig;
//!
//! // The short form: every path to the pool named first.
//! let upstreams = ["api=http://127.0.0.1:8081,http://127.0.0.1:8082".to_owned()];
//! let config = GatewayConfig::short_form(Some("127.0.0.1:8000".parse().unwrap()), &upstreams).unwrap();
//! assert_eq!(config.pools["api"].instances.len(), 2);
//!
//! // A mistake names the setting at fault.
//! let err = GatewayConfig::from_toml("[pools.api]\nstrategy = \"fastest\"\n").unwrap_err();
//! assert_eq!(err.setting, "pools.api.strategy");
//! ```

pub mod auth;
mod background;
pub mod body;
pub mod config;
pub mod error;
mod gateway;
pub mod headers;
pub mod limits;
pub mod metrics;
pub mod pool;
pub mod proxy;
mod server;
mod status;
mod websocket;

pub use auth::{TokenRejection, TokenVerifier, VerifiedToken};
pub use config::{ConfigError, GatewayConfig};
pub use gateway::{Gateway, GatewayBuilder};
pub use server::serve;
