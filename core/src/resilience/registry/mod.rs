//! A service registry: instances register, heartbeat and report health;
//! instances whose TTL lapses are swept; the healthy view feeds the load
//! balancer.
//!
//! Semantics (Consul-like, simplified):
//! - An instance is `(service, id)` with an address, a weight and metadata.
//!   Registering an existing id updates it and counts as a heartbeat.
//! - Each instance has a TTL (the registry default unless given). It is
//!   *expired* once `now − last heartbeat > ttl` on the injected clock.
//!   Expired instances vanish from every view at once and are deleted by the
//!   next [`ServiceRegistry::expire`] sweep (run it periodically).
//! - Health checks report [`HealthStatus`]; `Passing` and `Warning` count as
//!   healthy (a warning still serves), `Critical` does not. New instances
//!   start `Passing`.
//! - Every change bumps a version; [`ServiceRegistry::subscribe`] hands out
//!   a `tokio::sync::watch` receiver of it, so watchers re-read on change.
//! - [`ServiceRegistry::sync_balancer`] makes a [`LoadBalancer`]'s endpoint
//!   set mirror one service: every live instance by id and weight, critical
//!   ones marked unhealthy (so the balancer's panic threshold still applies).
//! - [`ServiceDirectory`] is the same idea as a port shared by processes
//!   (NATS JetStream KV in `bazaar-nats`); [`InMemoryDirectory`] implements
//!   it over this registry, and [`Advertiser`] keeps one replica registered.
//!
//! # Example
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use bazaar_core::resilience::balance::{LoadBalancer, Strategy};
//! use bazaar_core::resilience::clock::ManualClock;
//! use bazaar_core::resilience::registry::{Registration, ServiceRegistry};
//!
//! let clock = ManualClock::new();
//! let registry = ServiceRegistry::with_clock(Duration::from_secs(10), Arc::new(clock.clone()));
//! registry.register(Registration::new("catalog", "catalog-1", "10.0.0.1:8080")).unwrap();
//! registry.register(Registration::new("catalog", "catalog-2", "10.0.0.2:8080")).unwrap();
//! clock.advance(Duration::from_secs(8));
//! registry.heartbeat("catalog", "catalog-1").unwrap();
//! clock.advance(Duration::from_secs(5));
//! assert_eq!(registry.expire().len(), 1); // catalog-2 missed its TTL
//!
//! let lb = LoadBalancer::builder(Strategy::RoundRobin).build();
//! registry.sync_balancer("catalog", &lb);
//! assert_eq!(lb.pick(None).unwrap().id().as_str(), "catalog-1");
//! ```

mod directory;

#[cfg(any(test, feature = "mocks"))]
pub use directory::MockServiceDirectory;
pub use directory::{Advertiser, DEFAULT_ADVERTISE_TTL, InMemoryDirectory, ServiceDirectory};

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use tokio::sync::watch;

#[cfg(feature = "tower")]
use crate::resilience::balance::Balance;
use crate::resilience::balance::{Endpoint, EndpointId, LoadBalancer};
use crate::resilience::clock::{MonotonicClock, SystemClock};

/// The result of an instance's health check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HealthStatus {
    /// Healthy.
    Passing,
    /// Degraded but serving; still routed to.
    Warning,
    /// Failing; not routed to.
    Critical,
}

impl HealthStatus {
    /// Whether traffic should go to an instance in this state.
    pub fn is_healthy(self) -> bool {
        !matches!(self, Self::Critical)
    }
}

/// What an instance registers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The logical service (`"catalog"`).
    pub service: String,
    /// The instance id, unique within the service.
    pub id: String,
    /// Where to reach it (`host:port` or URL).
    pub address: String,
    /// Relative weight for weighted balancing (0 is raised to 1).
    pub weight: u32,
    /// Free-form tags (zone, version, ...).
    pub metadata: BTreeMap<String, String>,
    /// Own TTL instead of the registry default.
    pub ttl: Option<Duration>,
}

impl Registration {
    /// A registration of weight 1, no metadata, default TTL.
    pub fn new(service: impl Into<String>, id: impl Into<String>, address: impl Into<String>) -> Self {
        Self {
            service: service.into(),
            id: id.into(),
            address: address.into(),
            weight: 1,
            metadata: BTreeMap::new(),
            ttl: None,
        }
    }

    /// Sets the weight.
    #[must_use]
    pub fn weight(self, weight: u32) -> Self {
        Self { weight: weight.max(1), ..self }
    }

    /// Adds a metadata entry.
    #[must_use]
    pub fn meta(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// Sets the TTL.
    #[must_use]
    pub fn ttl(self, ttl: Duration) -> Self {
        Self { ttl: Some(ttl), ..self }
    }
}

/// A registered instance as seen by readers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// The logical service.
    pub service: String,
    /// The instance id.
    pub id: String,
    /// Where to reach it.
    pub address: String,
    /// Relative weight.
    pub weight: u32,
    /// Free-form tags.
    pub metadata: BTreeMap<String, String>,
    /// Last reported health.
    pub health: HealthStatus,
    /// Time since the last heartbeat.
    pub since_heartbeat: Duration,
}

/// Why a registry call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// No such `(service, id)` (never registered, deregistered or expired).
    #[error("unknown instance {id} of service {service}")]
    UnknownInstance {
        /// The service asked for.
        service: String,
        /// The id asked for.
        id: String,
    },
    /// A registration with an empty service name, id or address.
    #[error("invalid registration: {0}")]
    Invalid(&'static str),
}

#[derive(Debug)]
struct Entry {
    registration: Registration,
    health: HealthStatus,
    last_heartbeat: u64,
    ttl_nanos: u64,
}

impl Entry {
    fn expired(&self, now: u64) -> bool {
        now.saturating_sub(self.last_heartbeat) > self.ttl_nanos
    }

    fn view(&self, now: u64) -> Instance {
        let r = &self.registration;
        Instance {
            service: r.service.clone(),
            id: r.id.clone(),
            address: r.address.clone(),
            weight: r.weight.max(1),
            metadata: r.metadata.clone(),
            health: self.health,
            since_heartbeat: Duration::from_nanos(now.saturating_sub(self.last_heartbeat)),
        }
    }
}

/// An in-process service registry; share it behind an `Arc`.
#[derive(Debug)]
pub struct ServiceRegistry {
    services: RwLock<HashMap<String, BTreeMap<String, Entry>>>,
    default_ttl: Duration,
    clock: Arc<dyn MonotonicClock>,
    version: watch::Sender<u64>,
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl ServiceRegistry {
    /// A registry on the system clock whose instances expire after
    /// `default_ttl` without a heartbeat.
    pub fn new(default_ttl: Duration) -> Self {
        Self::with_clock(default_ttl, Arc::new(SystemClock::new()))
    }

    /// A registry on an injected clock.
    pub fn with_clock(default_ttl: Duration, clock: Arc<dyn MonotonicClock>) -> Self {
        Self { services: RwLock::new(HashMap::new()), default_ttl, clock, version: watch::Sender::new(0) }
    }

    fn bump(&self) {
        self.version.send_modify(|v| *v += 1);
    }

    /// Registers (or updates and refreshes) an instance.
    ///
    /// # Errors
    /// [`RegistryError::Invalid`] when the service, id or address is empty.
    pub fn register(&self, registration: Registration) -> Result<(), RegistryError> {
        if registration.service.is_empty() {
            return Err(RegistryError::Invalid("empty service name"));
        }
        if registration.id.is_empty() {
            return Err(RegistryError::Invalid("empty instance id"));
        }
        if registration.address.is_empty() {
            return Err(RegistryError::Invalid("empty address"));
        }
        let now = self.clock.now_nanos();
        let ttl_nanos = nanos(registration.ttl.unwrap_or(self.default_ttl));
        {
            let mut services = self.services.write();
            let instances = services.entry(registration.service.clone()).or_default();
            let health = instances.get(&registration.id).map_or(HealthStatus::Passing, |e| e.health);
            instances.insert(registration.id.clone(), Entry { registration, health, last_heartbeat: now, ttl_nanos });
        }
        self.bump();
        Ok(())
    }

    fn with_entry<T>(&self, service: &str, id: &str, f: impl FnOnce(&mut Entry, u64) -> T) -> Result<T, RegistryError> {
        let now = self.clock.now_nanos();
        let mut services = self.services.write();
        match services.get_mut(service).and_then(|s| s.get_mut(id)).filter(|e| !e.expired(now)) {
            Some(entry) => Ok(f(entry, now)),
            None => Err(RegistryError::UnknownInstance { service: service.to_owned(), id: id.to_owned() }),
        }
    }

    /// Refreshes an instance's TTL. Does not change the version (nothing a
    /// reader sees changes).
    ///
    /// # Errors
    /// [`RegistryError::UnknownInstance`] when it is not registered or has
    /// already expired (the instance must register again).
    pub fn heartbeat(&self, service: &str, id: &str) -> Result<(), RegistryError> {
        self.with_entry(service, id, |e, now| e.last_heartbeat = now)
    }

    /// Records a health-check result (also counts as a heartbeat).
    ///
    /// # Errors
    /// [`RegistryError::UnknownInstance`] as for `heartbeat`.
    pub fn report_health(&self, service: &str, id: &str, health: HealthStatus) -> Result<(), RegistryError> {
        let changed = self.with_entry(service, id, |e, now| {
            e.last_heartbeat = now;
            std::mem::replace(&mut e.health, health) != health
        })?;
        if changed {
            self.bump();
        }
        Ok(())
    }

    /// Removes an instance and returns its last view.
    ///
    /// # Errors
    /// [`RegistryError::UnknownInstance`] when it is not registered.
    pub fn deregister(&self, service: &str, id: &str) -> Result<Instance, RegistryError> {
        let now = self.clock.now_nanos();
        let removed = {
            let mut services = self.services.write();
            let removed = services.get_mut(service).and_then(|s| s.remove(id));
            if services.get(service).is_some_and(BTreeMap::is_empty) {
                services.remove(service);
            }
            removed
        };
        match removed {
            Some(entry) => {
                self.bump();
                Ok(entry.view(now))
            }
            None => Err(RegistryError::UnknownInstance { service: service.to_owned(), id: id.to_owned() }),
        }
    }

    /// Deletes every instance whose TTL lapsed; returns them as
    /// `(service, id)`.
    pub fn expire(&self) -> Vec<(String, String)> {
        let now = self.clock.now_nanos();
        let mut gone = Vec::new();
        {
            let mut services = self.services.write();
            for (name, instances) in services.iter_mut() {
                instances.retain(|id, e| {
                    let keep = !e.expired(now);
                    if !keep {
                        gone.push((name.clone(), id.clone()));
                    }
                    keep
                });
            }
            services.retain(|_, instances| !instances.is_empty());
        }
        if !gone.is_empty() {
            tracing::info!(expired = gone.len(), "registry instances expired");
            self.bump();
        }
        gone
    }

    /// Live, healthy instances of `service` (passing or warning), by id.
    pub fn instances(&self, service: &str) -> Vec<Instance> {
        self.all_instances(service).into_iter().filter(|i| i.health.is_healthy()).collect()
    }

    /// Every live instance of `service`, critical ones included, by id.
    pub fn all_instances(&self, service: &str) -> Vec<Instance> {
        let now = self.clock.now_nanos();
        self.services
            .read()
            .get(service)
            .map(|s| s.values().filter(|e| !e.expired(now)).map(|e| e.view(now)).collect())
            .unwrap_or_default()
    }

    /// Names of services with at least one registered instance.
    pub fn services(&self) -> Vec<String> {
        let mut names: Vec<String> = self.services.read().keys().cloned().collect();
        names.sort();
        names
    }

    /// A counter bumped on every visible change.
    pub fn version(&self) -> u64 {
        *self.version.borrow()
    }

    /// A receiver that wakes on every version bump.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// Makes `balancer`'s endpoints mirror `service`: live instances by id
    /// and weight, critical ones marked unhealthy. Returns the version the
    /// balancer now reflects.
    pub fn sync_balancer(&self, service: &str, balancer: &LoadBalancer) -> u64 {
        let version = self.version();
        let instances = self.all_instances(service);
        balancer.set_endpoints(instances.iter().map(|i| Endpoint::weighted(i.id.as_str(), i.weight)));
        for i in &instances {
            balancer.set_healthy(&EndpointId::from(i.id.as_str()), i.health.is_healthy());
        }
        version
    }
}

#[cfg(feature = "tower")]
impl<S, K> Balance<S, K> {
    /// Mirrors `service` of `registry`: instances by id and weight (critical
    /// ones unhealthy), creating services for new ids with `make` and
    /// dropping those of departed ids.
    pub fn sync_from_registry(
        &mut self,
        registry: &ServiceRegistry,
        service: &str,
        mut make: impl FnMut(&Instance) -> S,
    ) {
        let instances = registry.all_instances(service);
        for i in &instances {
            let id = EndpointId::from(i.id.as_str());
            self.services.entry(id).or_insert_with(|| make(i));
        }
        // Sync the balancer before dropping services so no pick can name an
        // id whose service is already gone.
        registry.sync_balancer(service, self.balancer());
        self.services.retain(|id, _| instances.iter().any(|i| i.id == id.as_str()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resilience::balance::Strategy;
    use crate::resilience::clock::ManualClock;

    const S: Duration = Duration::from_secs(1);

    fn registry() -> (ServiceRegistry, ManualClock) {
        let clock = ManualClock::new();
        (ServiceRegistry::with_clock(10 * S, Arc::new(clock.clone())), clock)
    }

    fn ids(instances: &[Instance]) -> Vec<&str> {
        instances.iter().map(|i| i.id.as_str()).collect()
    }

    #[test]
    fn register_lists_and_deregisters() {
        let (r, _) = registry();
        r.register(Registration::new("catalog", "b", "10.0.0.2:80").weight(3).meta("zone", "eu-1")).unwrap();
        r.register(Registration::new("catalog", "a", "10.0.0.1:80")).unwrap();
        r.register(Registration::new("orders", "o", "10.0.1.1:80")).unwrap();
        let list = r.instances("catalog");
        assert_eq!(ids(&list), ["a", "b"]);
        assert_eq!(list[1].weight, 3);
        assert_eq!(list[1].metadata["zone"], "eu-1");
        assert_eq!(r.services(), ["catalog", "orders"]);
        assert_eq!(r.deregister("orders", "o").unwrap().address, "10.0.1.1:80");
        assert_eq!(r.services(), ["catalog"]);
        assert!(matches!(r.deregister("orders", "o"), Err(RegistryError::UnknownInstance { .. })));
        assert_eq!(r.register(Registration::new("catalog", "", "x")), Err(RegistryError::Invalid("empty instance id")));
    }

    #[test]
    fn ttl_expiry_and_heartbeats() {
        let (r, clock) = registry();
        r.register(Registration::new("svc", "a", "a:1")).unwrap();
        r.register(Registration::new("svc", "b", "b:1")).unwrap();
        r.register(Registration::new("svc", "c", "c:1").ttl(60 * S)).unwrap();
        clock.advance(10 * S);
        // Exactly at the TTL an instance is still alive.
        assert!(r.expire().is_empty());
        r.heartbeat("svc", "a").unwrap();
        clock.advance(S);
        // b is now 11 s silent: gone from views even before the sweep.
        assert_eq!(ids(&r.instances("svc")), ["a", "c"]);
        assert!(r.heartbeat("svc", "b").is_err());
        assert_eq!(r.expire(), [("svc".to_owned(), "b".to_owned())]);
        clock.advance(10 * S);
        assert_eq!(r.expire(), [("svc".to_owned(), "a".to_owned())]);
        assert_eq!(ids(&r.instances("svc")), ["c"]);
        assert_eq!(r.instances("svc")[0].since_heartbeat, 21 * S);
    }

    #[test]
    fn health_reports_filter_the_healthy_view() {
        let (r, _) = registry();
        for id in ["a", "b", "c"] {
            r.register(Registration::new("svc", id, "x:1")).unwrap();
        }
        r.report_health("svc", "a", HealthStatus::Warning).unwrap();
        r.report_health("svc", "b", HealthStatus::Critical).unwrap();
        assert_eq!(ids(&r.instances("svc")), ["a", "c"]);
        assert_eq!(r.all_instances("svc").len(), 3);
        // Re-registering keeps the reported health.
        r.register(Registration::new("svc", "b", "x:2")).unwrap();
        assert_eq!(ids(&r.instances("svc")), ["a", "c"]);
        assert!(r.report_health("svc", "zz", HealthStatus::Passing).is_err());
    }

    #[tokio::test]
    async fn watchers_see_version_bumps() {
        let (r, clock) = registry();
        let mut rx = r.subscribe();
        let v0 = r.version();
        r.register(Registration::new("svc", "a", "x:1")).unwrap();
        rx.changed().await.unwrap();
        assert_eq!(*rx.borrow_and_update(), v0 + 1);
        r.heartbeat("svc", "a").unwrap();
        assert!(!rx.has_changed().unwrap());
        r.report_health("svc", "a", HealthStatus::Critical).unwrap();
        r.report_health("svc", "a", HealthStatus::Critical).unwrap();
        assert_eq!(r.version(), v0 + 2);
        clock.advance(11 * S);
        r.expire();
        assert_eq!(r.version(), v0 + 3);
    }

    #[test]
    fn sync_feeds_the_balancer_by_id_with_health() {
        let (r, clock) = registry();
        let lb = LoadBalancer::builder(Strategy::RoundRobin).panic_threshold(0).build();
        r.register(Registration::new("svc", "a", "x:1")).unwrap();
        r.register(Registration::new("svc", "b", "x:2").weight(4)).unwrap();
        r.register(Registration::new("svc", "c", "x:3")).unwrap();
        r.report_health("svc", "c", HealthStatus::Critical).unwrap();
        r.sync_balancer("svc", &lb);
        assert_eq!(lb.len(), 3);
        let picked: std::collections::BTreeSet<_> = (0..6).map(|_| lb.pick(None).unwrap().id().to_string()).collect();
        assert_eq!(picked.into_iter().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(lb.status().iter().find(|s| s.id.as_str() == "b").unwrap().weight, 4);
        clock.advance(5 * S);
        r.heartbeat("svc", "b").unwrap();
        clock.advance(6 * S);
        r.expire();
        r.sync_balancer("svc", &lb);
        assert_eq!(lb.ids(), [EndpointId::from("b")]);
    }
}
