//! [`CachedLicenses`]: the license-validation cache.
//!
//! Online validation (`LicenseService::validate`) verifies the key's
//! signature in process, then makes one store read, `get_by_key`, and
//! applies the pure `validate` rules at the current time. This decorator
//! caches that read rather than the [`ValidationResult`]: the result is then
//! recomputed on every call from a cached license, so it is exact at the
//! moment of the call (a license that expires mid-TTL reads `expired` at
//! once), works for every fingerprint from one entry, and the service needs
//! no change (wrap the repository you give it).
//!
//! # Keys and values
//! - `{prefix}license:{sha256(key)}` → the license as JSON, **with its key
//!   blanked**; the key is put back from the caller's argument on a hit, so
//!   Redis holds no raw license key, neither as a key nor in a value.
//! - `{prefix}license-id:{id}` → the hash above, so a change known only by
//!   license id can find the entry.
//! - `{prefix}license-guard:{id}` → the fill guard (see [`CacheConfig`]).
//!
//! Misses (`None`) are not cached: forged keys already stop at the
//! signature check, before any store read.
//!
//! # Invalidation
//! Every mutating method (`activate`, `deactivate`, `update_status` — i.e.
//! revoke, suspend, reinstate —, `consume_download`) drops the entry after
//! the inner call, whatever its outcome. All standing changes of
//! `LicenseService` (revoke by an admin, revoke on refund, suspension) go
//! through `update_status`, so a revoked license is never served from the
//! cache after the revoke returned, unless Redis failed then: the failure is
//! logged and the entry lives out its TTL. Keep the TTL short (seconds to a
//! minute); it also bounds how stale `downloads_used` may look.
//!
//! [`ValidationResult`]: bazaar_core::licensing::ValidationResult

use std::fmt;

use async_trait::async_trait;
use bazaar_core::Result;
use bazaar_core::clock::Timestamp;
use bazaar_core::events::Event;
use bazaar_core::ids::{LicenseId, OrderId, ProductId, UserId};
use bazaar_core::licensing::{ActivationOutcome, Fingerprint, License, LicenseRepository};
use redis::aio::ConnectionManager;
use sha2::{Digest, Sha256};

use crate::cache::{CacheConfig, Index, JsonCache};

/// A [`LicenseRepository`] decorator caching `get_by_key` (the lookup behind
/// online validation) in Redis; see the module docs.
///
/// # Example
/// ```no_run
/// use std::sync::Arc;
/// use std::time::Duration;
/// use bazaar_core::clock::SystemClock;
/// use bazaar_core::licensing::{LicenseService, LicenseSigner};
/// use bazaar_memory::{MemoryLicenses, MemoryOutbox};
/// use bazaar_redis::{CacheConfig, CachedLicenses, connect};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let conn = connect("redis://127.0.0.1:6379").await?;
/// let repo = CachedLicenses::new(
///     MemoryLicenses::new(MemoryOutbox::new()),
///     conn,
///     "bazaar:cache:",
///     CacheConfig::with_ttl(Duration::from_secs(30)),
/// );
/// let service = LicenseService::new(Arc::new(repo), LicenseSigner::from_seed(&[7; 32]), Arc::new(SystemClock));
/// let result = service.validate("key/not.valid", None).await?;
/// assert!(!result.valid);
/// # Ok(()) }
/// ```
pub struct CachedLicenses<R> {
    inner: R,
    cache: JsonCache,
}

impl<R> fmt::Debug for CachedLicenses<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedLicenses").field("cache", &self.cache).finish_non_exhaustive()
    }
}

impl<R: LicenseRepository> CachedLicenses<R> {
    /// Caches `inner`'s by-key lookups under `prefix`.
    pub fn new(inner: R, conn: ConnectionManager, prefix: impl Into<String>, config: CacheConfig) -> Self {
        Self { inner, cache: JsonCache::new(conn, prefix.into(), config) }
    }

    /// The wrapped repository.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// The wrapped repository, mutably.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// Unwraps the repository.
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// The Redis key caching the license whose key is `key`: derived from
    /// its SHA-256, never from the key itself.
    pub fn entry_key(&self, key: &str) -> String {
        self.cache.key(&format!("license:{}", key_hash(key)))
    }

    /// Drops the cached copy of license `id`, for writers that bypass this
    /// decorator. Failures are logged, never returned: the entry then
    /// expires with its TTL.
    pub async fn invalidate(&self, id: LicenseId) {
        let guard = self.guard_key(id);
        let index = self.index_key(id);
        let entry_prefix = self.cache.key("license:");
        let index = Index { key: &index, entry_prefix: &entry_prefix };
        if let Err(e) = self.cache.invalidate(&guard, &[], Some(index)).await {
            tracing::warn!(license_id = %id, error = %e, "license cache invalidation failed; entry expires with its TTL");
        }
    }

    fn index_key(&self, id: LicenseId) -> String {
        self.cache.key(&format!("license-id:{id}"))
    }

    fn guard_key(&self, id: LicenseId) -> String {
        self.cache.key(&format!("license-guard:{id}"))
    }
}

fn key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

#[async_trait]
impl<R: LicenseRepository> LicenseRepository for CachedLicenses<R> {
    async fn insert(&self, license: &License, events: &[Event]) -> Result<()> {
        // Nothing to invalidate: misses are never cached.
        self.inner.insert(license, events).await
    }

    async fn get(&self, id: LicenseId) -> Result<Option<License>> {
        self.inner.get(id).await
    }

    async fn get_by_key(&self, key: &str) -> Result<Option<License>> {
        let hash = key_hash(key);
        let entry = self.cache.key(&format!("license:{hash}"));
        match self.cache.get::<License>(&entry).await {
            Ok(Some(mut license)) => {
                license.key = key.to_owned();
                return Ok(Some(license));
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "license cache read failed; reading through"),
        }
        let found = self.inner.get_by_key(key).await?;
        if let Some(license) = &found {
            let stored = License { key: String::new(), ..license.clone() };
            let (guard, index) = (self.guard_key(license.id), self.index_key(license.id));
            if let Err(e) = self.cache.fill(&entry, &guard, Some((&index, &hash)), &stored).await {
                tracing::warn!(license_id = %license.id, error = %e, "license cache fill failed");
            }
        }
        Ok(found)
    }

    async fn list_for_buyer(&self, buyer: UserId) -> Result<Vec<License>> {
        self.inner.list_for_buyer(buyer).await
    }

    async fn list_for_buyer_products(&self, buyer: UserId, products: &[ProductId]) -> Result<Vec<License>> {
        self.inner.list_for_buyer_products(buyer, products).await
    }

    async fn list_for_order(&self, order: OrderId) -> Result<Vec<License>> {
        self.inner.list_for_order(order).await
    }

    async fn activate(&self, id: LicenseId, fingerprint: &Fingerprint, now: Timestamp) -> Result<ActivationOutcome> {
        let result = self.inner.activate(id, fingerprint, now).await;
        self.invalidate(id).await;
        result
    }

    async fn deactivate(&self, id: LicenseId, fingerprint: &Fingerprint, now: Timestamp) -> Result<()> {
        let result = self.inner.deactivate(id, fingerprint, now).await;
        self.invalidate(id).await;
        result
    }

    async fn update_status(&self, license: &License, expected_version: u64, events: &[Event]) -> Result<()> {
        let result = self.inner.update_status(license, expected_version, events).await;
        self.invalidate(license.id).await;
        result
    }

    async fn consume_download(&self, id: LicenseId, now: Timestamp) -> Result<License> {
        let result = self.inner.consume_download(id, now).await;
        self.invalidate(id).await;
        result
    }
}
