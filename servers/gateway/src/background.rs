//! The gateway's background work while it serves: active health checks per
//! pool, discovery from the service directory, re-offering instances whose
//! breaker wait ran out, and metrics / limiter upkeep.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use http::{Request, Uri};
use tokio::task::JoinSet;

use crate::body::empty;
use crate::config::ms;
use crate::gateway::Shared;
use crate::pool::{Pool, UpstreamInstance};

/// Starts every background task; they stop when the set is dropped.
pub(crate) fn start(shared: &Arc<Shared>) -> JoinSet<()> {
    let mut tasks = JoinSet::new();
    for pool in shared.pools.values() {
        if pool.config.health.enabled {
            tasks.spawn(health_checks(Arc::clone(pool)));
        }
        if let (Some(service), Some(directory)) = (&pool.config.service, &shared.directory) {
            tasks.spawn(discover(Arc::clone(shared), Arc::clone(pool), service.clone(), Arc::clone(directory)));
        }
    }
    tasks.spawn(sweep(Arc::clone(shared)));
    tasks
}

async fn check(pool: &Pool, instance: &UpstreamInstance) -> Result<(), String> {
    let uri: Uri = format!("http://{}{}", instance.base.authority, pool.config.health.path)
        .parse()
        .map_err(|e| format!("bad health URL: {e}"))?;
    let mut request = Request::new(empty());
    *request.uri_mut() = uri;
    if pool.config.protocol == crate::config::Protocol::H2c {
        *request.version_mut() = http::Version::HTTP_2;
    }
    match tokio::time::timeout(ms(pool.config.health.timeout_ms), pool.client.request(request)).await {
        Err(_) => Err("health check timed out".into()),
        Ok(Err(e)) => Err(format!("health check failed: {e}")),
        Ok(Ok(response)) if response.status().is_success() => Ok(()),
        Ok(Ok(response)) => Err(format!("health check answered {}", response.status())),
    }
}

async fn health_checks(pool: Arc<Pool>) {
    let mut tick = tokio::time::interval(ms(pool.config.health.interval_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let instances = pool.instances();
        let checks = instances.values().map(|i| {
            let pool = &pool;
            async move { (i, check(pool, i).await) }
        });
        for (instance, result) in futures::future::join_all(checks).await {
            pool.set_health(instance, result);
        }
    }
}

/// The longest one directory call may take. A call that hangs (a lost
/// reply from the backend) must not freeze discovery: the loop gives up on
/// it, keeps the last known set, and asks again.
const DIRECTORY_DEADLINE: Duration = Duration::from_secs(2);

async fn discover(
    shared: Arc<Shared>,
    pool: Arc<Pool>,
    service: String,
    directory: Arc<dyn bazaar_core::resilience::registry::ServiceDirectory>,
) {
    let refresh = ms(shared.config.discovery.refresh_ms);
    let mut changes = None;
    loop {
        if changes.is_none() {
            match tokio::time::timeout(DIRECTORY_DEADLINE, directory.watch(&service)).await {
                Ok(Ok(stream)) => changes = Some(stream),
                Ok(Err(e)) => tracing::warn!(pool = %pool.name, error = %e, "cannot watch the service directory"),
                Err(_) => tracing::warn!(pool = %pool.name, "watching the service directory timed out"),
            }
        }
        match tokio::time::timeout(DIRECTORY_DEADLINE, directory.instances(&service)).await {
            Ok(Ok(instances)) => pool.set_discovered(&instances),
            // Keep the last known set: a directory outage must not empty the pool.
            Ok(Err(e)) => tracing::warn!(pool = %pool.name, error = %e, "cannot read the service directory"),
            Err(_) => tracing::warn!(pool = %pool.name, "reading the service directory timed out"),
        }
        match changes.as_mut() {
            Some(stream) => {
                if let Ok(None) = tokio::time::timeout(refresh, stream.next()).await {
                    changes = None;
                }
            }
            None => tokio::time::sleep(refresh).await,
        }
    }
}

async fn sweep(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let mut rounds: u64 = 0;
    loop {
        tick.tick().await;
        for pool in shared.pools.values() {
            pool.refresh_all();
        }
        rounds += 1;
        if rounds.is_multiple_of(25) {
            shared.metrics.upkeep();
            shared.limits.evict_idle();
        }
    }
}
