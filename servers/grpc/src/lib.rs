//! The Bazaar gRPC API over tonic: the core exposed as thinly as the HTTP
//! server, package `bazaar.v1` (`proto/bazaar/v1/*.proto`, compiled at
//! build time with protox, so no system `protoc`).
//!
//! - `LicensingService`: ValidateLicense (no credentials: the key is the
//!   credential), ActivateLicense, DeactivateLicense, GetLicense.
//! - `CatalogService`: GetProduct, SearchProducts (the filters, sorts,
//!   pages and facets of `GET /v1/products`).
//! - `OrderService`: PlaceOrder (with an idempotency key), GetOrder.
//! - `NotificationService`: GetNotifications (by order), ListNotifications
//!   (the caller's, in pages).
//! - `grpc.health.v1.Health`, following the backends ([`HealthMonitor`]),
//!   and server reflection (`grpc.reflection.v1` and `v1alpha`), so
//!   `grpcurl` can list, describe and call everything without the protos.
//!
//! Callers authenticate with `authorization: Bearer <access token>`
//! metadata: the tokens (and roles) the HTTP API issues ([`auth`]). Core
//! errors become statuses in one exhaustive function ([`error::status`]).
//! Money is `{minor, currency}` in integer minor units, instants are
//! `google.protobuf.Timestamp`, every enum has an `_UNSPECIFIED` zero.
//!
//! # Example
//! [`serve`] on a loopback port over an in-memory marketplace, one call
//! with the generated client, then a graceful stop (running calls finish).
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//!
//! use bazaar_auth::{Argon2Passwords, JwtTokens};
//! use bazaar_core::clock::SystemClock;
//! use bazaar_core::marketplace::Marketplace;
//! use bazaar_grpc::pb::{ValidateLicenseRequest, ValidationCode};
//! use bazaar_grpc::pb::licensing_service_client::LicensingServiceClient;
//! use bazaar_memory::MemoryBackend;
//!
//! let market = Marketplace::builder(MemoryBackend::new(Arc::new(SystemClock)).ports())
//!     .passwords(Arc::new(Argon2Passwords::fast_for_tests()))
//!     .tokens(Arc::new(JwtTokens::new([7; 32])))
//!     .build()?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let addr = listener.local_addr()?;
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let server = tokio::spawn(bazaar_grpc::serve(listener, Arc::new(market), async {
//!     let _ = stopped.await;
//! }));
//!
//! let mut licensing = LicensingServiceClient::connect(format!("http://{addr}")).await?;
//! let request = ValidateLicenseRequest { key: "key/not-a-license".into(), fingerprint: None };
//! let answer = licensing.validate_license(request).await?.into_inner();
//! // A key that does not verify is an answer, not an error.
//! assert_eq!((answer.valid, answer.code(), answer.license), (false, ValidationCode::NotFound, None));
//!
//! stop.send(()).unwrap();
//! server.await??;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

pub mod auth;
pub mod convert;
pub mod error;
pub mod health;
pub mod pb;
pub mod services;
pub mod trace;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bazaar_core::marketplace::Marketplace;
use tonic::service::Routes;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

pub use crate::health::HealthMonitor;
use crate::pb::catalog_service_server::CatalogServiceServer;
use crate::pb::licensing_service_server::LicensingServiceServer;
use crate::pb::notification_service_server::NotificationServiceServer;
use crate::pb::order_service_server::OrderServiceServer;

/// Every service of the server, and the monitor that keeps health current.
#[derive(Debug)]
pub struct Services {
    /// The four `bazaar.v1` services, health and reflection, ready for
    /// `Server::builder().add_routes(…)` (or an axum router).
    pub routes: Routes,
    /// Publishes the backends' state to the health service; nothing polls
    /// until [`HealthMonitor::check`] or [`HealthMonitor::run`] is called.
    pub health: HealthMonitor,
}

/// The services over `market`. Health starts `SERVING` and changes only
/// when the returned monitor checks the backends ([`serve`] does both).
pub fn services(market: Arc<Marketplace>) -> Services {
    let (reporter, health) = tonic_health::server::health_reporter();
    let monitor = HealthMonitor::new(reporter, market.probes().to_vec());
    let routes = Routes::new(LicensingServiceServer::new(services::Licensing::new(market.clone())))
        .add_service(CatalogServiceServer::new(services::Catalog::new(market.clone())))
        .add_service(OrderServiceServer::new(services::Orders::new(market.clone())))
        .add_service(NotificationServiceServer::new(services::Notifications::new(market)))
        .add_service(health)
        .add_service(reflection().build_v1().expect("the built-in descriptor sets decode"))
        .add_service(reflection().build_v1alpha().expect("the built-in descriptor sets decode"));
    Services { routes, health: monitor }
}

fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
}

/// Knobs of [`serve_with`].
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Calls still running after this end with `CANCELLED` (default 30 s).
    pub request_timeout: Duration,
    /// How often the backends are probed for the health service (default 5 s).
    pub health_interval: Duration,
    /// How long one probe may take before it counts as failed (default 2 s).
    pub probe_timeout: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(30),
            health_interval: Duration::from_secs(5),
            probe_timeout: HealthMonitor::DEFAULT_PROBE_TIMEOUT,
        }
    }
}

/// Serves every service on `listener` until `shutdown` completes, then
/// lets running calls finish; default [`ServeOptions`].
///
/// # Errors
/// The transport's error if serving fails.
pub async fn serve(
    listener: tokio::net::TcpListener,
    market: Arc<Marketplace>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    serve_with(listener, market, ServeOptions::default(), shutdown).await
}

/// [`serve`] with explicit options.
///
/// # Errors
/// The transport's error if serving fails.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    market: Arc<Marketplace>,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let Services { routes, health } = services(market);
    let health = health.with_probe_timeout(options.probe_timeout);
    // Answer the first health check truthfully, not with the optimistic default.
    health.check().await;
    let monitor = tokio::spawn(health.run(options.health_interval));
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let served = Server::builder()
        .timeout(options.request_timeout)
        .layer(trace::TraceLayer)
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await;
    monitor.abort();
    served
}
