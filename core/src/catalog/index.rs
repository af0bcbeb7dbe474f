//! [`SearchIndex`]: where catalog searches are answered, apart from where
//! products are stored.
//!
//! Browsing is most of a marketplace's traffic, and a row store answers it
//! slowly (every uncached text query scans). A search index is a *read
//! model*: it holds its own copy of the searchable catalog, answers every
//! query exactly as [`search::apply`](super::search::apply) would over the
//! store's products, and is kept current by being told which products
//! changed:
//! - by [`CatalogService`](super::CatalogService) itself, right after each
//!   of its writes (so a process sees its own changes within the index's
//!   refresh interval);
//! - by the `SearchIndexer` of the workflows module, the event handler
//!   each process runs as its own fan-out consumer of the product events
//!   (so it sees other processes' changes);
//! - by a rebuild from the store when the process starts
//!   ([`ProductRepository::list_searchable`] pages).
//!
//! The default, [`StoreSearch`], asks the product store (its own search,
//! with any cache in front) and ignores change notices: the store is
//! already current. An embedder that sets no index keeps that behaviour.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use super::product::Product;
use super::repository::ProductRepository;
use super::search::{SearchQuery, SearchResult};
use crate::error::Result;

/// Answers catalog searches; a read model is also told of product changes.
///
/// # Contract
/// [`search`](Self::search) returns what [`search::apply`](super::search::apply)
/// returns over the products the index was last told about (every status:
/// only approved ones are found); `testkit::search::search_index` checks it.
/// [`index`](Self::index) takes the *current stored state* of each product
/// (any status) and must make it visible to searches within one second; a
/// state older than the one held (lower `version`, or the same `version`
/// and no counter higher) must be ignored, so redelivered or reordered
/// notices never roll a product back.
#[async_trait]
pub trait SearchIndex: Send + Sync {
    /// The approved products matching `query` (see the `search` module).
    async fn search(&self, query: &SearchQuery) -> Result<SearchResult>;

    /// [`search`](Self::search), as a shared result (a caching store hands
    /// out the `Arc` it keeps; see [`ProductRepository::search_shared`]).
    async fn search_shared(&self, query: &SearchQuery) -> Result<Arc<SearchResult>> {
        self.search(query).await.map(Arc::new)
    }

    /// Records the current stored state of `products` (any status).
    async fn index(&self, products: &[Product]) -> Result<()>;

    /// Replaces everything held with `products` — every searchable product
    /// the store holds — when a process starts.
    async fn rebuild(&self, products: &[Product]) -> Result<()>;
}

/// The default [`SearchIndex`]: the product store's own search. Change
/// notices and rebuilds are no-ops, because the store is the truth.
#[derive(Clone)]
pub struct StoreSearch {
    products: Arc<dyn ProductRepository>,
}

impl fmt::Debug for StoreSearch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreSearch").finish_non_exhaustive()
    }
}

impl StoreSearch {
    /// Searches through `products`.
    pub fn new(products: Arc<dyn ProductRepository>) -> Self {
        Self { products }
    }
}

#[async_trait]
impl SearchIndex for StoreSearch {
    async fn search(&self, query: &SearchQuery) -> Result<SearchResult> {
        self.products.search(query).await
    }

    async fn search_shared(&self, query: &SearchQuery) -> Result<Arc<SearchResult>> {
        self.products.search_shared(query).await
    }

    async fn index(&self, _products: &[Product]) -> Result<()> {
        Ok(())
    }

    async fn rebuild(&self, _products: &[Product]) -> Result<()> {
        Ok(())
    }
}

/// Reads every searchable product from `products` in pages of `page`
/// (keyset by id, so concurrent changes cannot shift a product out of the
/// scan) and hands them to `index` in one [`SearchIndex::rebuild`].
/// Returns how many products were indexed.
///
/// A change that lands while the scan runs is also announced by its event
/// (or by the writing service), which the index applies after the rebuild;
/// the staleness rule makes the order harmless.
///
/// # Errors
/// Storage errors from either side; nothing is replaced then.
pub async fn rebuild_from_store(products: &dyn ProductRepository, index: &dyn SearchIndex, page: u32) -> Result<usize> {
    let mut all: Vec<Product> = Vec::new();
    let mut after = None;
    loop {
        let batch = products.list_searchable(after, page.max(1)).await?;
        let full = batch.len() >= page.max(1) as usize;
        after = batch.last().map(|p| p.id);
        all.extend(batch);
        if !full {
            break;
        }
    }
    index.rebuild(&all).await?;
    Ok(all.len())
}
