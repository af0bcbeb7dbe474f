//! An upstream pool: its instances (static and discovered), each with a
//! consecutive-failures circuit breaker and an active-health flag, the
//! kit's load balancer over them, a bulkhead, a retry budget and a pooled
//! keep-alive client.
//!
//! An instance is offered to the balancer as available only while its last
//! health check passed and its breaker would admit a call; the balancer
//! adds passive outlier ejection and its panic threshold on top.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bazaar_core::resilience::balance::{Endpoint, EndpointId, LoadBalancer, OutlierConfig, Pick, Strategy};
use bazaar_core::resilience::bulkhead::Bulkhead;
use bazaar_core::resilience::circuit_breaker::{ConsecutiveBreaker, ConsecutiveConfig, ConsecutivePermit, Outcome};
use bazaar_core::resilience::registry::Instance as Registered;
use bazaar_core::resilience::retry::{Backoff, Jitter, Retrier, RetryPolicy, TpsBudget};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use parking_lot::{Mutex, RwLock};

use crate::body::ProxyBody;
use crate::config::{BaseUrl, PoolConfig, Protocol, StrategyName, ms, parse_base_url};

/// Where an instance came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The configuration file or `--upstream`.
    Static,
    /// The service directory, under this instance id.
    Discovered(String),
}

/// One upstream instance and its live state.
#[derive(Debug)]
pub struct UpstreamInstance {
    /// The balancer id: the base URL.
    pub id: EndpointId,
    /// Where to send.
    pub base: BaseUrl,
    /// Weight for the weighted strategy.
    pub weight: u32,
    /// Static or discovered.
    pub source: Source,
    /// Its circuit breaker.
    pub breaker: Arc<ConsecutiveBreaker>,
    health_ok: AtomicBool,
    last_health_error: Mutex<Option<String>>,
    requests: AtomicU64,
    errors: AtomicU64,
}

impl UpstreamInstance {
    /// Whether its last active health check passed (true before the first).
    pub fn health_ok(&self) -> bool {
        self.health_ok.load(Ordering::Acquire)
    }

    /// Why its last health check failed, if it did.
    pub fn last_health_error(&self) -> Option<String> {
        self.last_health_error.lock().clone()
    }

    /// Attempts sent to it and how many failed.
    pub fn counters(&self) -> (u64, u64) {
        (self.requests.load(Ordering::Relaxed), self.errors.load(Ordering::Relaxed))
    }
}

/// A chosen instance for one attempt: the balancer pick and the breaker
/// permit, completed together by [`Pool::finish`].
#[derive(Debug)]
pub struct Chosen {
    /// The instance.
    pub instance: Arc<UpstreamInstance>,
    pick: Pick,
    permit: ConsecutivePermit,
}

/// A named pool of instances.
#[derive(Debug)]
pub struct Pool {
    /// The pool's name.
    pub name: String,
    /// Its settings.
    pub config: PoolConfig,
    balancer: LoadBalancer,
    instances: RwLock<Arc<BTreeMap<EndpointId, Arc<UpstreamInstance>>>>,
    statics: Vec<(BaseUrl, u32)>,
    /// Requests in flight to the pool (held until the response ends).
    pub bulkhead: Bulkhead,
    /// Retries of idempotent requests, within `budget`.
    pub retrier: Retrier,
    budget: Arc<TpsBudget>,
    /// The pooled keep-alive client (HTTP/1.1 or h2c).
    pub client: Client<HttpConnector, ProxyBody>,
}

fn strategy(name: StrategyName) -> Strategy {
    match name {
        StrategyName::RoundRobin => Strategy::RoundRobin,
        StrategyName::Weighted => Strategy::WeightedRoundRobin,
        StrategyName::Random => Strategy::Random,
        StrategyName::LeastRequest => Strategy::LeastRequest,
        StrategyName::PeakEwma => Strategy::peak_ewma(),
    }
}

impl Pool {
    /// Builds the pool and its static instances (the config is validated).
    pub fn new(name: &str, config: &PoolConfig) -> Self {
        let mut builder = LoadBalancer::builder(strategy(config.strategy));
        if config.outlier.enabled {
            builder = builder.outlier_detection(OutlierConfig {
                consecutive_failures: config.outlier.consecutive_failures,
                base_ejection_time: ms(config.outlier.base_ejection_ms),
                max_ejection_time: ms(config.outlier.max_ejection_ms),
                max_ejection_percent: config.outlier.max_ejection_percent,
            });
        }
        let budget = Arc::new(TpsBudget::new(
            Duration::from_secs(10),
            config.retry.budget_min_per_sec,
            config.retry.budget_ratio,
        ));
        let backoff = Backoff::exponential(ms(config.retry.backoff_ms), 2.0, ms(config.retry.max_backoff_ms))
            .with_jitter(Jitter::Full);
        let retrier = Retrier::new(RetryPolicy::new(config.retry.max_attempts, backoff)).with_budget(budget.clone());
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(ms(config.connect_timeout_ms)));
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(config.max_idle_per_instance)
            .http2_only(config.protocol == Protocol::H2c)
            .build(connector);
        let statics = config
            .instances
            .iter()
            .filter_map(|i| parse_base_url(i.url()).ok().map(|base| (base, i.weight())))
            .collect();
        let pool = Self {
            name: name.to_owned(),
            config: config.clone(),
            balancer: builder.build(),
            instances: RwLock::new(Arc::new(BTreeMap::new())),
            statics,
            bulkhead: Bulkhead::new(config.max_concurrent),
            retrier,
            budget,
            client,
        };
        pool.set_discovered(&[]);
        pool
    }

    /// The instances, by id.
    pub fn instances(&self) -> Arc<BTreeMap<EndpointId, Arc<UpstreamInstance>>> {
        Arc::clone(&self.instances.read())
    }

    /// The balancer.
    pub fn balancer(&self) -> &LoadBalancer {
        &self.balancer
    }

    /// Retries the budget would allow now.
    pub fn retry_budget_available(&self) -> usize {
        self.budget.available()
    }

    fn breaker_config(&self) -> ConsecutiveConfig {
        let b = &self.config.breaker;
        ConsecutiveConfig {
            failure_threshold: b.failure_threshold,
            success_threshold: b.success_threshold,
            open_for: ms(b.open_ms),
            minimum_volume: b.minimum_volume,
        }
    }

    /// Replaces the discovered instances (static ones stay). Instances that
    /// stay keep their breaker, health and counters.
    pub fn set_discovered(&self, discovered: &[Registered]) {
        let mut wanted: BTreeMap<EndpointId, (BaseUrl, u32, Source)> = BTreeMap::new();
        for (base, weight) in &self.statics {
            wanted.insert(EndpointId::new(base.to_string()), (base.clone(), *weight, Source::Static));
        }
        for r in discovered {
            match parse_base_url(&r.address) {
                Ok(base) => {
                    wanted.entry(EndpointId::new(base.to_string())).or_insert((
                        base,
                        r.weight.max(1),
                        Source::Discovered(r.id.clone()),
                    ));
                }
                Err(e) => {
                    tracing::warn!(pool = %self.name, instance = %r.id, error = %e, "ignoring a registered address")
                }
            }
        }
        let mut guard = self.instances.write();
        let old = Arc::clone(&guard);
        let mut next = BTreeMap::new();
        for (id, (base, weight, source)) in wanted {
            let instance = match old.get(&id) {
                Some(existing) if existing.weight == weight && existing.source == source => Arc::clone(existing),
                Some(existing) => Arc::new(UpstreamInstance {
                    id: id.clone(),
                    base,
                    weight,
                    source,
                    breaker: Arc::clone(&existing.breaker),
                    health_ok: AtomicBool::new(existing.health_ok()),
                    last_health_error: Mutex::new(existing.last_health_error()),
                    requests: AtomicU64::new(existing.counters().0),
                    errors: AtomicU64::new(existing.counters().1),
                }),
                None => Arc::new(UpstreamInstance {
                    id: id.clone(),
                    breaker: Arc::new(ConsecutiveBreaker::new(
                        format!("{}/{}", self.name, base),
                        self.breaker_config(),
                    )),
                    base,
                    weight,
                    source,
                    health_ok: AtomicBool::new(true),
                    last_health_error: Mutex::new(None),
                    requests: AtomicU64::new(0),
                    errors: AtomicU64::new(0),
                }),
            };
            next.insert(id, instance);
        }
        let changed = next.len() != old.len() || next.keys().zip(old.keys()).any(|(a, b)| a != b);
        *guard = Arc::new(next);
        let current = Arc::clone(&guard);
        drop(guard);
        if changed {
            tracing::info!(pool = %self.name, instances = current.len(), "pool membership changed");
        }
        self.balancer.set_endpoints(current.values().map(|i| Endpoint::weighted(i.id.clone(), i.weight)));
        for instance in current.values() {
            self.refresh(instance);
        }
    }

    /// Offers an instance to the balancer iff its health check passed and
    /// its breaker would admit a call.
    pub fn refresh(&self, instance: &UpstreamInstance) {
        let available = instance.health_ok() && instance.breaker.would_admit();
        self.balancer.set_healthy(&instance.id, available);
    }

    /// [`refresh`](Self::refresh) for every instance (breakers whose open
    /// time ran out become available for probes).
    pub fn refresh_all(&self) {
        for instance in self.instances().values() {
            self.refresh(instance);
        }
    }

    /// Records an active health check's result.
    pub fn set_health(&self, instance: &UpstreamInstance, result: Result<(), String>) {
        let ok = result.is_ok();
        if instance.health_ok.swap(ok, Ordering::AcqRel) != ok {
            match &result {
                Ok(()) => tracing::info!(pool = %self.name, instance = %instance.id, "instance healthy"),
                Err(e) => tracing::warn!(pool = %self.name, instance = %instance.id, error = %e, "instance unhealthy"),
            }
        }
        *instance.last_health_error.lock() = result.err();
        self.refresh(instance);
    }

    /// Chooses an instance whose breaker admits the call, avoiding `avoid`
    /// (the instance a retry follows) while another is available.
    pub fn choose(&self, avoid: Option<&EndpointId>) -> Option<Chosen> {
        let instances = self.instances();
        let tries = instances.len().clamp(1, 4) + 1;
        for _ in 0..tries {
            let pick = self.balancer.pick(None)?;
            let Some(instance) = instances.get(pick.id()).cloned() else { continue };
            if avoid == Some(pick.id()) && instances.len() > 1 {
                continue;
            }
            match instance.breaker.try_acquire() {
                Ok(permit) => return Some(Chosen { instance, pick, permit }),
                Err(_) => self.refresh(&instance),
            }
        }
        // A last chance for the avoided instance: better a retry on the same
        // instance than none.
        let pick = self.balancer.pick(None)?;
        let instance = instances.get(pick.id()).cloned()?;
        let permit = instance.breaker.try_acquire().ok()?;
        Some(Chosen { instance, pick, permit })
    }

    /// Completes an attempt: the breaker, the balancer (latency, outlier
    /// ejection) and the instance's counters.
    pub fn finish(&self, chosen: Chosen, failed: bool) {
        let Chosen { instance, pick, permit } = chosen;
        instance.requests.fetch_add(1, Ordering::Relaxed);
        if failed {
            instance.errors.fetch_add(1, Ordering::Relaxed);
            permit.record(Outcome::Failure);
            pick.failure();
            self.refresh(&instance);
        } else {
            permit.record(Outcome::Success);
            pick.success();
            if !instance.breaker.state().admits_freely() {
                self.refresh(&instance);
            }
        }
    }
}
