//! Sign-in throttling: how many attempts a client address, and how many
//! sign-ins an account, may make.
//!
//! Two quotas, both GCRA over a [`RateLimitStore`]:
//! - **per client** (register, login, refresh), keyed by
//!   [`quota_addr`]: one guesser gets few tries;
//! - **per account** (login), keyed by a hash of the e-mail: many addresses
//!   guessing one account's password (a botnet) get few tries together.
//!
//! With a shared store (Redis) every replica spends the same quotas, so N
//! replicas do not give N times the attempts. When the shared store cannot
//! decide, a process-local store does: a Redis outage neither locks
//! everyone out nor turns throttling off.

use sha2::{Digest, Sha256};
use std::fmt;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use super::client_ip::quota_addr;
use super::user::Email;
use crate::error::{Error, Result};
use crate::resilience::rate_limit::{Decision, InMemoryRateLimitStore, Quota, RateLimitStore};

/// The two sign-in quotas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignInLimits {
    /// Attempts on register, login and refresh per client address (IPv6 by
    /// /64). Default: 5 at once, then 10 a minute.
    pub per_client: Quota,
    /// Logins per account, whoever makes them. Default: 10 at once, then
    /// one a minute: plenty for a person, ~1,500 guesses a day for a botnet.
    pub per_account: Quota,
}

impl Default for SignInLimits {
    fn default() -> Self {
        let n = |n| NonZeroU32::new(n).expect("non-zero");
        Self {
            per_client: Quota::per_minute(n(10)).allow_burst(n(5)),
            per_account: Quota::per_minute(n(1)).allow_burst(n(10)),
        }
    }
}

/// Spends sign-in quotas; see the [module docs](self).
pub struct SignInThrottle {
    shared: Option<Arc<dyn RateLimitStore>>,
    local: InMemoryRateLimitStore,
    limits: SignInLimits,
}

impl fmt::Debug for SignInThrottle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignInThrottle")
            .field("shared", &self.shared.is_some())
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl SignInThrottle {
    /// Quotas kept in this process.
    pub fn local(limits: SignInLimits) -> Self {
        Self { shared: None, local: InMemoryRateLimitStore::new(), limits }
    }

    /// Quotas kept in `store`, shared with every process using it (this
    /// process's own store stands in while `store` cannot decide).
    pub fn shared(store: Arc<dyn RateLimitStore>, limits: SignInLimits) -> Self {
        Self { shared: Some(store), local: InMemoryRateLimitStore::new(), limits }
    }

    /// The quotas in force.
    pub fn limits(&self) -> &SignInLimits {
        &self.limits
    }

    /// Spends one attempt of `client`'s quota.
    ///
    /// # Errors
    /// [`Error::RateLimited`] when it is used up.
    pub async fn admit_client(&self, client: IpAddr) -> Result<()> {
        let key = format!("client:{}", quota_addr(client));
        self.admit(&key, self.limits.per_client).await.inspect_err(|_| {
            tracing::info!(client = %client, "sign-in limit per client reached");
        })
    }

    /// Spends one login of `email`'s quota. The key is a hash, so a shared
    /// store never holds the address.
    ///
    /// # Errors
    /// [`Error::RateLimited`] when it is used up.
    pub async fn admit_account(&self, email: &Email) -> Result<()> {
        let digest = Sha256::digest(email.as_str().as_bytes());
        let key = format!("account:{}", hex::encode(&digest[..16]));
        self.admit(&key, self.limits.per_account).await.inspect_err(|_| {
            // The e-mail stays out of the log: it may be a victim's.
            tracing::info!("sign-in limit per account reached");
        })
    }

    async fn admit(&self, key: &str, quota: Quota) -> Result<()> {
        let decision = match &self.shared {
            Some(store) => match store.check(key, &quota, 1).await {
                Ok(decision) => decision,
                Err(e) => {
                    tracing::warn!(error = %e, "shared sign-in limits unavailable; this process's own apply");
                    self.local_check(key, quota).await
                }
            },
            None => self.local_check(key, quota).await,
        };
        match decision {
            Decision::Allowed { .. } => Ok(()),
            Decision::Denied { retry_after } => Err(Error::RateLimited { retry_after }),
            // One cell always fits a quota (bursts are at least one).
            Decision::InsufficientCapacity { .. } => Err(Error::RateLimited { retry_after: quota.emission_interval() }),
        }
    }

    async fn local_check(&self, key: &str, quota: Quota) -> Decision {
        // The local store never fails; were it to, letting the attempt in
        // (the password check still runs) beats locking everyone out.
        self.local.check(key, &quota, 1).await.unwrap_or(Decision::Allowed { remaining: 0 })
    }

    /// How many keys this process's own store holds (idle ones are evicted
    /// as it grows).
    pub fn local_keys(&self) -> usize {
        self.local.len()
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::time::Duration;

    use super::*;
    use crate::resilience::rate_limit::{MockRateLimitStore, StoreError};

    fn one() -> NonZeroU32 {
        NonZeroU32::new(1).unwrap()
    }

    fn tight() -> SignInLimits {
        SignInLimits { per_client: Quota::per_minute(one()), per_account: Quota::per_minute(one()) }
    }

    fn email(s: &str) -> Email {
        Email::parse(s).unwrap()
    }

    #[tokio::test]
    async fn clients_are_counted_by_address_and_ipv6_by_64() {
        let throttle = SignInThrottle::local(tight());
        throttle.admit_client(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1))).await.unwrap();
        let denied = throttle.admit_client(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1))).await.unwrap_err();
        assert!(matches!(denied, Error::RateLimited { retry_after } if retry_after > Duration::from_secs(50)));
        throttle.admit_client(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 2))).await.unwrap();
        throttle.admit_client("2001:db8:0:1::1".parse().unwrap()).await.unwrap();
        // Another address of the same /64 is the same client.
        assert!(throttle.admit_client("2001:db8:0:1:ffff::9".parse().unwrap()).await.is_err());
        throttle.admit_client("2001:db8:0:2::1".parse().unwrap()).await.unwrap();
    }

    #[tokio::test]
    async fn accounts_are_counted_apart_from_clients_and_by_normalised_email() {
        let throttle = SignInThrottle::local(tight());
        throttle.admit_account(&email("Ann@Example.com")).await.unwrap();
        assert!(throttle.admit_account(&email("ann@example.com")).await.is_err());
        throttle.admit_account(&email("bob@example.com")).await.unwrap();
        throttle.admit_client(IpAddr::V4(Ipv4Addr::LOCALHOST)).await.unwrap();
    }

    #[tokio::test]
    async fn a_shared_store_decides_and_its_outage_falls_back_to_the_local_one() {
        let mut store = MockRateLimitStore::new();
        store.expect_check().times(1).returning(|key, _, _| {
            assert!(key.starts_with("account:") && !key.contains('@'), "{key}");
            Ok(Decision::Denied { retry_after: Duration::from_secs(7) })
        });
        let throttle = SignInThrottle::shared(Arc::new(store), tight());
        let denied = throttle.admit_account(&email("ann@example.com")).await.unwrap_err();
        assert!(matches!(denied, Error::RateLimited { retry_after } if retry_after == Duration::from_secs(7)));

        let mut down = MockRateLimitStore::new();
        down.expect_check().returning(|_, _, _| Err(StoreError::InvalidReply("down".into())));
        let throttle = SignInThrottle::shared(Arc::new(down), tight());
        let ip = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 4));
        throttle.admit_client(ip).await.unwrap();
        assert!(throttle.admit_client(ip).await.is_err(), "the local quota applies while the store is down");
    }
}
