//! Rate limits per client address and per user: the kit's keyed GCRA in
//! process, or the same policy through a shared [`RateLimitStore`] (Redis).

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use bazaar_core::auth::client_ip::quota_addr;
use bazaar_core::resilience::rate_limit::{Decision, KeyedRateLimiter, Quota, RateLimitStore};

use crate::config::{QuotaConfig, RateLimitConfig};

fn quota(config: QuotaConfig) -> Quota {
    let rate = NonZeroU32::new(config.per_second).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(config.burst.unwrap_or(config.per_second)).unwrap_or(rate);
    Quota::per_second(rate).allow_burst(burst)
}

/// Where the limiter state lives.
#[derive(Debug)]
enum Backend {
    Local { ip: Box<KeyedRateLimiter<IpAddr>>, user: Box<KeyedRateLimiter<String>> },
    Shared(Arc<dyn RateLimitStore>),
}

/// The gateway's rate limits.
#[derive(Debug)]
pub struct RateLimits {
    per_ip: Option<Quota>,
    per_user: Option<Quota>,
    backend: Backend,
}

impl RateLimits {
    /// Limits from the config, in process unless `store` is given.
    pub fn new(config: &RateLimitConfig, store: Option<Arc<dyn RateLimitStore>>) -> Self {
        let per_ip = config.per_ip.map(quota);
        let per_user = config.per_user.map(quota);
        let fallback = Quota::per_second(NonZeroU32::MIN);
        let backend = match store {
            Some(store) => Backend::Shared(store),
            None => Backend::Local {
                ip: Box::new(KeyedRateLimiter::new(per_ip.unwrap_or(fallback))),
                user: Box::new(KeyedRateLimiter::new(per_user.unwrap_or(fallback))),
            },
        };
        Self { per_ip, per_user, backend }
    }

    /// Checks the client address's quota (IPv6 by /64, the core's
    /// [`quota_addr`]); `Err(wait)` when refused.
    pub async fn check_ip(&self, ip: IpAddr) -> Result<(), Duration> {
        let Some(quota) = &self.per_ip else { return Ok(()) };
        match &self.backend {
            Backend::Local { ip: limiter, .. } => limiter.check(&quota_addr(ip)).map_err(|n| n.wait_time()),
            Backend::Shared(store) => shared(store.as_ref(), &format!("gw:ip:{}", quota_addr(ip)), quota).await,
        }
    }

    /// Checks a verified user's quota; `Err(wait)` when refused.
    pub async fn check_user(&self, user: &str) -> Result<(), Duration> {
        let Some(quota) = &self.per_user else { return Ok(()) };
        match &self.backend {
            Backend::Local { user: limiter, .. } => limiter.check(user).map_err(|n| n.wait_time()),
            Backend::Shared(store) => shared(store.as_ref(), &format!("gw:user:{user}"), quota).await,
        }
    }

    /// Forgets idle in-process keys; call periodically.
    pub fn evict_idle(&self) {
        if let Backend::Local { ip, user } = &self.backend {
            ip.retain_recent();
            user.retain_recent();
        }
    }
}

async fn shared(store: &dyn RateLimitStore, key: &str, quota: &Quota) -> Result<(), Duration> {
    match store.check(key, quota, 1).await {
        Ok(Decision::Allowed { .. }) => Ok(()),
        Ok(Decision::Denied { retry_after }) => Err(retry_after),
        Ok(Decision::InsufficientCapacity { .. }) => Err(Duration::from_secs(1)),
        Err(e) => {
            // Fail open: a limiter outage must not become a gateway outage.
            tracing::warn!(error = %e, "rate-limit store unavailable; admitting");
            Ok(())
        }
    }
}
