//! [`CachedProducts`]: a read-through Redis cache in front of any
//! [`ProductRepository`].
//!
//! What is cached: `get` (a product page is the hottest read of a
//! marketplace) and `get_many` (the same entries, read in one round trip,
//! the misses from the inner repository in one call), as JSON under
//! `{prefix}product:{id}` for [`CacheConfig::ttl`]. Misses (`None`) are not cached, so a product is
//! readable as soon as it is inserted. Search and vendor listings are not
//! cached: they change with every product and their results are pages.
//!
//! Invalidation: `insert`, `update` and `record_download` drop the entry
//! (after the inner call, whatever its outcome, because a write may have
//! committed even if its reply was lost) and raise a fill guard (see
//! [`CacheConfig::fill_guard`]). Writes that bypass this decorator, notably
//! a `ReviewRepository::insert` changing the rating stats, are seen after
//! the TTL, or at once if the caller calls [`CachedProducts::invalidate`].
//!
//! Redis failures never fail a read or a write: reads fall back to the
//! inner repository and every failure is logged with `tracing`.

use std::collections::HashSet;
use std::fmt;

use async_trait::async_trait;
use bazaar_core::Result;
use bazaar_core::catalog::{Page, PageRequest, Product, ProductRepository, SearchQuery, SearchResult};
use bazaar_core::events::Event;
use bazaar_core::ids::{ProductId, UserId};
use redis::aio::ConnectionManager;

use crate::cache::{CacheConfig, JsonCache};

/// A [`ProductRepository`] decorator caching `get` in Redis.
///
/// # Example
/// ```no_run
/// use bazaar_core::catalog::ProductRepository;
/// use bazaar_memory::{MemoryOutbox, MemoryProducts};
/// use bazaar_redis::{CacheConfig, CachedProducts, connect};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let inner = MemoryProducts::new(MemoryOutbox::new());
/// let conn = connect("redis://127.0.0.1:6379").await?;
/// let products = CachedProducts::new(inner, conn, "bazaar:cache:", CacheConfig::default());
/// let missing = products.get(Default::default()).await?;
/// # let _ = missing; Ok(()) }
/// ```
pub struct CachedProducts<P> {
    inner: P,
    cache: JsonCache,
}

impl<P> fmt::Debug for CachedProducts<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedProducts").field("cache", &self.cache).finish_non_exhaustive()
    }
}

impl<P: ProductRepository> CachedProducts<P> {
    /// Caches `inner`'s product reads under `prefix`.
    pub fn new(inner: P, conn: ConnectionManager, prefix: impl Into<String>, config: CacheConfig) -> Self {
        Self { inner, cache: JsonCache::new(conn, prefix.into(), config) }
    }

    /// The wrapped repository.
    pub fn get_ref(&self) -> &P {
        &self.inner
    }

    /// The wrapped repository, mutably.
    pub fn get_mut(&mut self) -> &mut P {
        &mut self.inner
    }

    /// Unwraps the repository.
    pub fn into_inner(self) -> P {
        self.inner
    }

    /// Drops the cached copy of `id`, for writers that bypass this
    /// decorator (a review insert changing the stats). Failures are logged,
    /// never returned: the entry then expires with its TTL.
    pub async fn invalidate(&self, id: ProductId) {
        let (entry, guard) = self.keys(id);
        if let Err(e) = self.cache.invalidate(&guard, &[&entry], None).await {
            tracing::warn!(product_id = %id, error = %e, "product cache invalidation failed; entry expires with its TTL");
        }
    }

    fn keys(&self, id: ProductId) -> (String, String) {
        (self.cache.key(&format!("product:{id}")), self.cache.key(&format!("product-guard:{id}")))
    }
}

#[async_trait]
impl<P: ProductRepository> ProductRepository for CachedProducts<P> {
    async fn insert(&self, product: &Product, events: &[Event]) -> Result<()> {
        let result = self.inner.insert(product, events).await;
        self.invalidate(product.id).await;
        result
    }

    async fn insert_many(&self, products: &[(Product, Vec<Event>)]) -> Result<()> {
        let result = self.inner.insert_many(products).await;
        for (product, _) in products {
            self.invalidate(product.id).await;
        }
        result
    }

    async fn update(&self, product: &Product, expected_version: u64, events: &[Event]) -> Result<()> {
        let result = self.inner.update(product, expected_version, events).await;
        self.invalidate(product.id).await;
        result
    }

    async fn get(&self, id: ProductId) -> Result<Option<Product>> {
        let (entry, guard) = self.keys(id);
        match self.cache.get::<Product>(&entry).await {
            Ok(Some(product)) => return Ok(Some(product)),
            Ok(None) => {}
            Err(e) => tracing::warn!(product_id = %id, error = %e, "product cache read failed; reading through"),
        }
        let found = self.inner.get(id).await?;
        if let Some(product) = &found
            && let Err(e) = self.cache.fill(&entry, &guard, None, product).await
        {
            tracing::warn!(product_id = %id, error = %e, "product cache fill failed");
        }
        Ok(found)
    }

    async fn get_many(&self, ids: &[ProductId]) -> Result<Vec<Product>> {
        let mut seen = HashSet::new();
        let ids: Vec<ProductId> = ids.iter().copied().filter(|id| seen.insert(*id)).collect();
        let entries: Vec<String> = ids.iter().map(|id| self.keys(*id).0).collect();
        let cached = self.cache.get_many::<Product>(&entries).await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "product cache read failed; reading through");
            vec![None; ids.len()]
        });
        let misses: Vec<ProductId> =
            ids.iter().zip(&cached).filter(|(_, hit)| hit.is_none()).map(|(id, _)| *id).collect();
        let read = if misses.is_empty() { Vec::new() } else { self.inner.get_many(&misses).await? };
        for product in &read {
            let (entry, guard) = self.keys(product.id);
            if let Err(e) = self.cache.fill(&entry, &guard, None, product).await {
                tracing::warn!(product_id = %product.id, error = %e, "product cache fill failed");
            }
        }
        Ok(cached.into_iter().flatten().chain(read).collect())
    }

    async fn list_by_vendor(&self, vendor: UserId, page: PageRequest) -> Result<Page<Product>> {
        self.inner.list_by_vendor(vendor, page).await
    }

    async fn list_searchable(&self, after: Option<ProductId>, limit: u32) -> Result<Vec<Product>> {
        self.inner.list_searchable(after, limit).await
    }

    async fn search(&self, query: &SearchQuery) -> Result<SearchResult> {
        self.inner.search(query).await
    }

    async fn record_download(&self, id: ProductId, events: &[Event]) -> Result<()> {
        let result = self.inner.record_download(id, events).await;
        self.invalidate(id).await;
        result
    }
}
