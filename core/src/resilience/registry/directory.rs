//! The service directory port: a registry shared by every process (NATS
//! JetStream KV, Redis, or in process), where replicas register themselves
//! with a TTL and heartbeat, and gateways read the live instances.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::future::Either;
use futures::stream::BoxStream;

use super::{Instance, Registration, RegistryError, ServiceRegistry};
use crate::{Error, Result};

/// A shared directory of service instances.
///
/// Contract, for every implementation:
/// - `register` MUST store the registration (replacing one with the same
///   `(service, id)`) so `instances` lists it until it is deregistered or
///   its TTL (the registration's, or the directory's default) passes without
///   a `register` or `heartbeat`. It MUST reject an empty service, id or
///   address with [`Error::Validation`].
/// - `heartbeat` MUST refresh the TTL of a live instance and MUST return
///   [`Error::NotFound`] for one that is unknown or expired (the caller
///   then registers again).
/// - `deregister` MUST remove the instance at once; removing an unknown
///   one is not an error.
/// - `instances` MUST list the live instances of one service, sorted by id;
///   an unknown service has none.
/// - `watch` MUST yield an item soon after a registration or removal in
///   `service` (an expiry MAY go unannounced: readers also re-read
///   periodically). Items carry no data: re-read `instances`.
/// - Backend failures are [`Error::Unavailable`].
///
/// # Example
/// ```
/// use std::time::Duration;
/// use bazaar_core::resilience::registry::{InMemoryDirectory, Registration, ServiceDirectory};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> bazaar_core::Result<()> {
/// let directory = InMemoryDirectory::new(Duration::from_secs(10));
/// directory.register(&Registration::new("api", "api-1", "http://127.0.0.1:8081")).await?;
/// let live = directory.instances("api").await?;
/// assert_eq!(live[0].address, "http://127.0.0.1:8081");
/// directory.deregister("api", "api-1").await?;
/// assert!(directory.instances("api").await?.is_empty());
/// # Ok(())
/// # }
/// ```
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ServiceDirectory: Send + Sync + fmt::Debug {
    /// Registers (or replaces and refreshes) an instance.
    ///
    /// # Errors
    /// [`Error::Validation`] for an empty service, id or address;
    /// [`Error::Unavailable`] when the backend fails.
    async fn register(&self, registration: &Registration) -> Result<()>;

    /// Refreshes a live instance's TTL.
    ///
    /// # Errors
    /// [`Error::NotFound`] when it is unknown or expired;
    /// [`Error::Unavailable`] when the backend fails.
    async fn heartbeat(&self, service: &str, id: &str) -> Result<()>;

    /// Removes an instance (nothing happens if it is unknown).
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the backend fails.
    async fn deregister(&self, service: &str, id: &str) -> Result<()>;

    /// The live instances of `service`, by id.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the backend fails.
    async fn instances(&self, service: &str) -> Result<Vec<Instance>>;

    /// A stream that yields after each change in `service`.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the backend fails.
    async fn watch(&self, service: &str) -> Result<BoxStream<'static, ()>>;
}

/// Maps the in-process registry's errors onto the port's.
fn from_registry(e: RegistryError) -> Error {
    match e {
        RegistryError::UnknownInstance { .. } => Error::not_found("instance"),
        RegistryError::Invalid(what) => Error::invalid("registration", what),
    }
}

/// The in-process [`ServiceDirectory`] over a [`ServiceRegistry`]: for one
/// process (tests, `bazaar serve`) or as a gateway's static fallback.
#[derive(Debug, Clone)]
pub struct InMemoryDirectory {
    registry: Arc<ServiceRegistry>,
}

impl InMemoryDirectory {
    /// A directory whose instances expire after `default_ttl` without a
    /// heartbeat.
    pub fn new(default_ttl: Duration) -> Self {
        Self { registry: Arc::new(ServiceRegistry::new(default_ttl)) }
    }

    /// A directory over an existing registry (shared clock, shared view).
    pub fn from_registry(registry: Arc<ServiceRegistry>) -> Self {
        Self { registry }
    }

    /// The registry underneath.
    pub fn registry(&self) -> &Arc<ServiceRegistry> {
        &self.registry
    }
}

#[async_trait]
impl ServiceDirectory for InMemoryDirectory {
    async fn register(&self, registration: &Registration) -> Result<()> {
        self.registry.register(registration.clone()).map_err(from_registry)
    }

    async fn heartbeat(&self, service: &str, id: &str) -> Result<()> {
        self.registry.heartbeat(service, id).map_err(from_registry)
    }

    async fn deregister(&self, service: &str, id: &str) -> Result<()> {
        match self.registry.deregister(service, id) {
            Ok(_) | Err(RegistryError::UnknownInstance { .. }) => Ok(()),
            Err(e) => Err(from_registry(e)),
        }
    }

    async fn instances(&self, service: &str) -> Result<Vec<Instance>> {
        // Expired entries are already invisible; sweeping here keeps the
        // map from growing with instances that never deregistered.
        self.registry.expire();
        Ok(self.registry.instances(service))
    }

    async fn watch(&self, _service: &str) -> Result<BoxStream<'static, ()>> {
        let receiver = self.registry.subscribe();
        Ok(Box::pin(futures::stream::unfold(receiver, |mut rx| async move {
            rx.changed().await.ok()?;
            Some(((), rx))
        })))
    }
}

/// Keeps one replica registered: registers it, heartbeats at a third of its
/// TTL (registering again if the directory forgot it), and deregisters it
/// when the shutdown future completes. What `bazaar http --advertise-addr`
/// runs next to its server.
///
/// # Example
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use bazaar_core::resilience::registry::{Advertiser, InMemoryDirectory, Registration, ServiceDirectory};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> bazaar_core::Result<()> {
/// let directory = Arc::new(InMemoryDirectory::new(Duration::from_secs(10)));
/// let registration = Registration::new("api", "api-1", "http://127.0.0.1:8081").ttl(Duration::from_secs(3));
/// let advertiser = Advertiser::new(directory.clone(), registration);
/// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
/// let running = tokio::spawn(advertiser.run(async move { let _ = stopped.await; }));
/// tokio::task::yield_now().await;
/// assert_eq!(directory.instances("api").await?.len(), 1);
/// stop.send(()).unwrap();
/// running.await.unwrap()?;
/// assert!(directory.instances("api").await?.is_empty());
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Advertiser {
    directory: Arc<dyn ServiceDirectory>,
    registration: Registration,
    interval: Duration,
}

/// The TTL an advertiser registers with when the registration names none.
pub const DEFAULT_ADVERTISE_TTL: Duration = Duration::from_secs(10);

impl Advertiser {
    /// An advertiser heartbeating every third of the registration's TTL
    /// (10 s when it has none, and that TTL is then set on it).
    pub fn new(directory: Arc<dyn ServiceDirectory>, registration: Registration) -> Self {
        let ttl = registration.ttl.unwrap_or(DEFAULT_ADVERTISE_TTL);
        let registration = registration.ttl(ttl);
        Self { directory, registration, interval: (ttl / 3).max(Duration::from_millis(10)) }
    }

    /// Overrides the heartbeat interval.
    #[must_use]
    pub fn heartbeat_every(self, interval: Duration) -> Self {
        Self { interval: interval.max(Duration::from_millis(1)), ..self }
    }

    /// The registration it keeps alive.
    pub fn registration(&self) -> &Registration {
        &self.registration
    }

    /// Registers, heartbeats until `shutdown` completes, then deregisters.
    /// A failed heartbeat is logged and retried at the next tick (the
    /// instance may expire meanwhile; it registers again once the directory
    /// answers).
    ///
    /// # Errors
    /// The first registration's error (a replica that cannot announce itself
    /// should say so at start), or the deregistration's.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<()> {
        let Self { directory, registration, interval } = self;
        directory.register(&registration).await?;
        tracing::info!(service = %registration.service, id = %registration.id, address = %registration.address, "registered in the service directory");
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let tick = std::pin::pin!(tokio::time::sleep(interval));
            if let Either::Left(_) = futures::future::select(shutdown.as_mut(), tick).await {
                break;
            }
            let beat = match directory.heartbeat(&registration.service, &registration.id).await {
                Err(e) if e.kind() == crate::ErrorKind::NotFound => directory.register(&registration).await,
                other => other,
            };
            if let Err(e) = beat {
                tracing::warn!(service = %registration.service, id = %registration.id, error = %e, "heartbeat failed");
            }
        }
        directory.deregister(&registration.service, &registration.id).await?;
        tracing::info!(service = %registration.service, id = %registration.id, "deregistered from the service directory");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn in_memory_directory_meets_the_contract() {
        let directory = InMemoryDirectory::new(Duration::from_secs(30));
        crate::testkit::directory::service_directory(&directory, "mem", Duration::from_millis(400)).await;
    }

    #[tokio::test]
    async fn advertiser_registers_again_after_the_directory_forgot_it() {
        let directory = Arc::new(InMemoryDirectory::new(Duration::from_secs(30)));
        let registration = Registration::new("api", "api-1", "http://127.0.0.1:1").ttl(Duration::from_secs(5));
        let advertiser = Advertiser::new(directory.clone(), registration).heartbeat_every(Duration::from_millis(20));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn(advertiser.run(async move {
            let _ = stopped.await;
        }));
        while directory.instances("api").await.unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Forgotten (a directory restart): the next heartbeat registers again.
        directory.registry().deregister("api", "api-1").unwrap();
        let mut waited = 0;
        while directory.instances("api").await.unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
            waited += 1;
            assert!(waited < 500, "the advertiser never registered again");
        }
        stop.send(()).unwrap();
        running.await.unwrap().unwrap();
        assert!(directory.instances("api").await.unwrap().is_empty(), "deregistered on shutdown");
    }

    #[tokio::test]
    async fn the_mock_records_interactions() {
        let mut mock = MockServiceDirectory::new();
        mock.expect_register().times(1).returning(|_| Ok(()));
        mock.expect_deregister().withf(|s, id| s == "api" && id == "api-1").times(1).returning(|_, _| Ok(()));
        let advertiser = Advertiser::new(Arc::new(mock), Registration::new("api", "api-1", "http://127.0.0.1:1"));
        advertiser.run(std::future::ready(())).await.unwrap();
    }
}
