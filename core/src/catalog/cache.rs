//! A read-through cache of catalog searches in front of any
//! [`ProductRepository`].
//!
//! Browsing is the hottest read of a marketplace and the same few queries
//! (a category, newest first, page 1) repeat constantly, while the catalog
//! changes rarely. [`CachedSearch`] keeps recent [`SearchResult`]s in memory
//! for a short TTL:
//! - every write through this repository (`insert`, `update`,
//!   `record_download`) invalidates the whole cache at once, so a process
//!   sees its own moderation and edits immediately;
//! - writes that bypass it — other replicas, review aggregates maintained by
//!   the review store — show up within the TTL (1 s by default);
//! - a search that started before a write never refreshes the cache with
//!   its older result (entries are stamped with the write generation);
//! - when an entry expires, one caller refreshes it while the others keep
//!   getting the expired result until the refresh lands, so a popular query
//!   costs one database search per TTL instead of a stampede of them.
//!
//! Everything except `search` goes straight to the inner repository.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use async_trait::async_trait;
use parking_lot::Mutex;

use super::{Page, PageRequest, Product, ProductRepository, SearchQuery, SearchResult};
use crate::clock::{Clock, Timestamp};
use crate::error::Result;
use crate::events::Event;
use crate::ids::{ProductId, UserId};

/// How long a cached search may be served without a write through this
/// repository having invalidated it.
pub const DEFAULT_SEARCH_TTL: std::time::Duration = std::time::Duration::from_secs(1);
/// Distinct queries kept before the cache starts over.
pub const DEFAULT_SEARCH_CAPACITY: usize = 1024;

struct Entry {
    result: Arc<SearchResult>,
    stored_at: Timestamp,
    generation: u64,
    /// Set by the one caller that refreshes this entry once it expired.
    refreshing: AtomicBool,
}

/// A [`ProductRepository`] that caches `search` results (see the module docs).
///
/// # Example
/// ```
/// # futures::executor::block_on(async {
/// use std::sync::Arc;
/// use bazaar_core::catalog::{CachedSearch, ProductRepository, SearchParams, SearchQuery};
/// use bazaar_core::clock::ManualClock;
/// use bazaar_memory::{MemoryCatalog, MemoryOutbox};
///
/// let inner = Arc::new(MemoryCatalog::new(MemoryOutbox::new()).products());
/// let products = CachedSearch::new(inner, Arc::new(ManualClock::at_epoch_secs(0)));
/// let query = SearchQuery::new(SearchParams::default()).unwrap();
/// assert_eq!(products.search(&query).await.unwrap().total, 0);
/// assert_eq!(products.cached_queries(), 1);
/// # });
/// ```
pub struct CachedSearch {
    inner: Arc<dyn ProductRepository>,
    clock: Arc<dyn Clock>,
    ttl: chrono::Duration,
    capacity: usize,
    generation: AtomicU64,
    entries: Mutex<HashMap<String, Arc<Entry>>>,
}

impl fmt::Debug for CachedSearch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedSearch")
            .field("ttl", &self.ttl)
            .field("capacity", &self.capacity)
            .field("cached_queries", &self.cached_queries())
            .finish_non_exhaustive()
    }
}

impl CachedSearch {
    /// Caches `inner`'s searches for [`DEFAULT_SEARCH_TTL`], at most
    /// [`DEFAULT_SEARCH_CAPACITY`] queries.
    pub fn new(inner: Arc<dyn ProductRepository>, clock: Arc<dyn Clock>) -> Self {
        Self::with_limits(inner, clock, DEFAULT_SEARCH_TTL, DEFAULT_SEARCH_CAPACITY)
    }

    /// Caches for `ttl`, at most `capacity` queries (a full cache starts
    /// over: the hot queries come straight back, and no per-entry
    /// bookkeeping slows the hit path).
    pub fn with_limits(
        inner: Arc<dyn ProductRepository>,
        clock: Arc<dyn Clock>,
        ttl: std::time::Duration,
        capacity: usize,
    ) -> Self {
        Self {
            inner,
            clock,
            ttl: chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX),
            capacity: capacity.max(1),
            generation: AtomicU64::new(0),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// How many queries are cached now.
    pub fn cached_queries(&self) -> usize {
        self.entries.lock().len()
    }

    fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.entries.lock().clear();
    }
}

#[async_trait]
impl ProductRepository for CachedSearch {
    async fn insert(&self, product: &Product, events: &[Event]) -> Result<()> {
        let outcome = self.inner.insert(product, events).await;
        self.invalidate();
        outcome
    }

    async fn insert_many(&self, products: &[(Product, Vec<Event>)]) -> Result<()> {
        let outcome = self.inner.insert_many(products).await;
        self.invalidate();
        outcome
    }

    async fn update(&self, product: &Product, expected_version: u64, events: &[Event]) -> Result<()> {
        let outcome = self.inner.update(product, expected_version, events).await;
        self.invalidate();
        outcome
    }

    async fn get(&self, id: ProductId) -> Result<Option<Product>> {
        self.inner.get(id).await
    }

    async fn get_many(&self, ids: &[ProductId]) -> Result<Vec<Product>> {
        self.inner.get_many(ids).await
    }

    async fn list_by_vendor(&self, vendor: UserId, page: PageRequest) -> Result<Page<Product>> {
        self.inner.list_by_vendor(vendor, page).await
    }

    async fn list_searchable(&self, after: Option<ProductId>, limit: u32) -> Result<Vec<Product>> {
        self.inner.list_searchable(after, limit).await
    }

    async fn search(&self, query: &SearchQuery) -> Result<SearchResult> {
        self.search_shared(query).await.map(|result| SearchResult::clone(&result))
    }

    async fn search_shared(&self, query: &SearchQuery) -> Result<Arc<SearchResult>> {
        let key = serde_json::to_string(query).expect("search queries serialize");
        let now = self.clock.now();
        let generation = self.generation.load(Ordering::Acquire);
        let hit = self.entries.lock().get(&key).cloned();
        let mut refreshing = None;
        if let Some(entry) = hit
            && entry.generation == generation
        {
            let fresh = now - entry.stored_at < self.ttl;
            // Expired: the first caller refreshes, the rest serve the old page meanwhile.
            if fresh || entry.refreshing.swap(true, Ordering::AcqRel) {
                return Ok(Arc::clone(&entry.result));
            }
            refreshing = Some(entry);
        }
        let result = match self.inner.search(query).await {
            Ok(result) => Arc::new(result),
            Err(e) => {
                // Let the next caller try again rather than serving the old page forever.
                if let Some(entry) = refreshing {
                    entry.refreshing.store(false, Ordering::Release);
                }
                return Err(e);
            }
        };
        // Stamped when the result was read, so a slow search still gets its full TTL.
        let entry = Arc::new(Entry {
            result: Arc::clone(&result),
            stored_at: self.clock.now(),
            generation,
            refreshing: AtomicBool::new(false),
        });
        let mut entries = self.entries.lock();
        // A write that landed while we searched makes this result stale.
        if self.generation.load(Ordering::Acquire) == generation {
            if entries.len() >= self.capacity && !entries.contains_key(&key) {
                entries.clear();
            }
            entries.insert(key, entry);
        }
        Ok(result)
    }

    async fn record_download(&self, id: ProductId, events: &[Event]) -> Result<()> {
        let outcome = self.inner.record_download(id, events).await;
        self.invalidate();
        outcome
    }
}

#[cfg(test)]
mod tests {
    use futures::executor::block_on;

    use super::*;
    use crate::catalog::{MockProductRepository, SearchParams};
    use crate::clock::ManualClock;

    fn query(category: &str) -> SearchQuery {
        SearchQuery::new(SearchParams { category: Some(category.into()), ..SearchParams::default() }).unwrap()
    }

    fn result(total: u64) -> SearchResult {
        SearchResult { items: vec![], total, page: 1, limit: 20, facets: Default::default() }
    }

    fn counting(totals: Vec<u64>) -> (Arc<MockProductRepository>, Arc<AtomicU64>) {
        let calls = Arc::new(AtomicU64::new(0));
        let mut mock = MockProductRepository::new();
        let seen = calls.clone();
        mock.expect_search().returning(move |_| {
            let n = seen.fetch_add(1, Ordering::SeqCst) as usize;
            Ok(result(totals[n.min(totals.len() - 1)]))
        });
        mock.expect_record_download().returning(|_, _| Ok(()));
        (Arc::new(mock), calls)
    }

    #[test]
    fn repeats_are_served_from_memory_until_the_ttl_ends() {
        block_on(async {
            let (inner, calls) = counting(vec![1, 2]);
            let clock = Arc::new(ManualClock::at_epoch_secs(0));
            let cache = CachedSearch::new(inner, clock.clone());
            assert_eq!(cache.search(&query("seo")).await.unwrap().total, 1);
            assert_eq!(cache.search(&query("seo")).await.unwrap().total, 1);
            assert_eq!(calls.load(Ordering::SeqCst), 1, "the repeat was a hit");
            cache.search(&query("ops")).await.unwrap();
            assert_eq!(calls.load(Ordering::SeqCst), 2, "another query is a miss");
            clock.advance(chrono::Duration::seconds(1));
            assert_eq!(cache.search(&query("seo")).await.unwrap().total, 2, "the refresher reads anew");
            assert_eq!(calls.load(Ordering::SeqCst), 3, "an expired entry is refreshed");
            assert_eq!(cache.search(&query("seo")).await.unwrap().total, 2, "and the refresh is served");
            assert_eq!(calls.load(Ordering::SeqCst), 3);
        });
    }

    #[test]
    fn only_one_caller_refreshes_an_expired_entry() {
        // The refresher is parked inside the inner search while others ask.
        let clock = Arc::new(ManualClock::at_epoch_secs(0));
        let (entered_tx, entered_rx) = std::sync::mpsc::channel::<()>();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let release_rx = Arc::new(parking_lot::Mutex::new(release_rx));
        let calls = Arc::new(AtomicU64::new(0));
        let mut mock = MockProductRepository::new();
        let seen = calls.clone();
        mock.expect_search().returning(move |_| {
            let n = seen.fetch_add(1, Ordering::SeqCst);
            if n == 1 {
                entered_tx.send(()).unwrap();
                release_rx.lock().recv().unwrap();
            }
            Ok(result(n + 1))
        });
        let cache = Arc::new(CachedSearch::new(Arc::new(mock), clock.clone()));
        assert_eq!(block_on(cache.search(&query("seo"))).unwrap().total, 1);
        clock.advance(chrono::Duration::seconds(2));
        let refresher = {
            let cache = cache.clone();
            std::thread::spawn(move || block_on(cache.search(&query("seo"))).unwrap().total)
        };
        entered_rx.recv().unwrap();
        for _ in 0..8 {
            assert_eq!(block_on(cache.search(&query("seo"))).unwrap().total, 1, "served the expired page meanwhile");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 2, "one refresh, no stampede");
        release_tx.send(()).unwrap();
        assert_eq!(refresher.join().unwrap(), 2);
        assert_eq!(block_on(cache.search(&query("seo"))).unwrap().total, 2, "the refresh is served once it lands");
    }

    #[test]
    fn hits_share_the_kept_result_until_it_is_replaced() {
        block_on(async {
            let (inner, _) = counting(vec![1, 2]);
            let clock = Arc::new(ManualClock::at_epoch_secs(0));
            let cache = CachedSearch::new(inner, clock.clone());
            let first = cache.search_shared(&query("seo")).await.unwrap();
            let again = cache.search_shared(&query("seo")).await.unwrap();
            assert!(Arc::ptr_eq(&first, &again), "a hit hands out the kept result itself");
            clock.advance(chrono::Duration::seconds(1));
            let refreshed = cache.search_shared(&query("seo")).await.unwrap();
            assert!(!Arc::ptr_eq(&first, &refreshed), "a refresh is a new result");
            assert_eq!((first.total, refreshed.total), (1, 2));
        });
    }

    #[test]
    fn a_write_through_the_cache_invalidates_at_once() {
        block_on(async {
            let (inner, calls) = counting(vec![1, 2]);
            let cache = CachedSearch::new(inner, Arc::new(ManualClock::at_epoch_secs(0)));
            assert_eq!(cache.search(&query("seo")).await.unwrap().total, 1);
            cache.record_download(ProductId::new(), &[]).await.unwrap();
            assert_eq!(cache.cached_queries(), 0);
            assert_eq!(cache.search(&query("seo")).await.unwrap().total, 2, "the write is visible");
            assert_eq!(calls.load(Ordering::SeqCst), 2);
        });
    }

    #[test]
    fn capacity_bounds_the_cache() {
        block_on(async {
            let (inner, _) = counting(vec![1]);
            let cache =
                CachedSearch::with_limits(inner, Arc::new(ManualClock::at_epoch_secs(0)), DEFAULT_SEARCH_TTL, 2);
            for c in ["a", "b", "c", "d", "e"] {
                cache.search(&query(c)).await.unwrap();
                assert!(cache.cached_queries() <= 2);
            }
        });
    }
}
