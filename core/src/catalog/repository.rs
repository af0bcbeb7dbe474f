//! The catalog's storage ports: [`ProductRepository`] and [`ReviewRepository`].
//!
//! # Versions and stats
//! The **caller bumps `version`**: [`ProductRepository::update`] receives the
//! product exactly as it must be stored, with `version == expected_version + 1`,
//! and the adapter only compares-and-sets. The caller thus returns what was
//! written without a re-read. `version` covers the listing and its status;
//! `stats` are counters changed only by [`ProductRepository::record_download`]
//! and [`ReviewRepository::insert`], which do not bump `version` (a download
//! must not make a vendor's pending edit fail with a version mismatch) and
//! which `update` never overwrites (so a read-modify-write of the listing
//! cannot lose a concurrent increment).
//!
//! # Shared storage
//! A review insert must change the product's stats in the same unit of
//! work, so both ports of one backend share the product table (one lock in
//! memory, one transaction in SQL).

use std::sync::Arc;

use async_trait::async_trait;

use super::product::Product;
use super::review::Review;
use super::search::{SearchQuery, SearchResult};
use crate::error::Result;
use crate::events::Event;
use crate::ids::{ProductId, UserId};
use crate::page::{Page, PageRequest};

/// Where products live.
///
/// # Example
/// ```
/// use bazaar_core::catalog::{NewProduct, Pricing, Product, ProductKind, ProductRepository, SearchQuery};
/// use bazaar_core::ids::{ProductId, UserId};
/// use bazaar_memory::{MemoryOutbox, MemoryProducts};
/// # futures::executor::block_on(async {
/// let repo = MemoryProducts::new(MemoryOutbox::new());
/// let input = NewProduct {
///     title: "Inbox triage agent".into(), description: String::new(), short_description: String::new(),
///     kind: ProductKind::AiAgent, categories: vec!["email".into()], tags: vec![],
///     pricing: Pricing::Free, media: vec![],
/// };
/// let product = Product::create(ProductId::new(), UserId::new(), input, chrono::Utc::now()).unwrap();
/// repo.insert(&product, &[]).await.unwrap();
/// assert_eq!(repo.get(product.id).await.unwrap(), Some(product.clone()));
/// // Drafts are not searchable.
/// assert_eq!(repo.search(&SearchQuery::default()).await.unwrap().total, 0);
/// // A stale version is refused.
/// let mut edited = product.clone();
/// edited.version = 2;
/// assert_eq!(repo.update(&edited, 7, &[]).await.unwrap_err().code(), "version_mismatch");
/// repo.update(&edited, 1, &[]).await.unwrap();
/// # });
/// ```
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ProductRepository: Send + Sync {
    /// Stores a new product exactly as given (including `stats` and
    /// `version`) with its events (one unit of work).
    ///
    /// MUST return [`Error::Conflict`](crate::Error::Conflict) when a product
    /// with the same id exists, changing nothing and appending no event.
    async fn insert(&self, product: &Product, events: &[Event]) -> Result<()>;

    /// Stores new products, each with its events, as
    /// [`insert`](Self::insert) would one by one (bulk loads: imports, the
    /// demo catalog). A store should write them in one unit of work (all or
    /// none); this default inserts them one after another, so a failure
    /// leaves the ones before it stored.
    async fn insert_many(&self, products: &[(Product, Vec<Event>)]) -> Result<()> {
        for (product, events) in products {
            self.insert(product, events).await?;
        }
        Ok(())
    }

    /// Replaces the stored product with `product` if its stored version is
    /// `expected_version`, committing `events` with it.
    ///
    /// The caller has already set `product.version = expected_version + 1`.
    /// The stored `stats` are kept (not taken from `product`).
    ///
    /// MUST return `NotFound` (`product`) when there is no such product;
    /// MUST return [`Error::VersionMismatch`](crate::Error::VersionMismatch)
    /// (with the stored version as `current`) when the stored version differs;
    /// MUST return [`Error::Internal`](crate::Error::Internal) when
    /// `product.version != expected_version + 1` (a caller bug). On any error
    /// nothing changes and no event is appended.
    async fn update(&self, product: &Product, expected_version: u64, events: &[Event]) -> Result<()>;

    /// The product with `id`, whatever its status, if any.
    async fn get(&self, id: ProductId) -> Result<Option<Product>>;

    /// The products with any of `ids`, whatever their status, in no
    /// particular order; unknown ids are left out and a repeated id gives
    /// its product once. What a transport's batch loader reads (the
    /// products of a page of orders in one call, not one per line). This
    /// default calls [`get`](Self::get) per id; a store should answer in
    /// one query.
    async fn get_many(&self, ids: &[ProductId]) -> Result<Vec<Product>> {
        let mut seen = std::collections::HashSet::new();
        let mut found = Vec::with_capacity(ids.len());
        for &id in ids.iter().filter(|id| seen.insert(**id)) {
            found.extend(self.get(id).await?);
        }
        Ok(found)
    }

    /// The products of `vendor`, every status, newest first (`created_at`
    /// desc, then `id` desc), paged.
    async fn list_by_vendor(&self, vendor: UserId, page: PageRequest) -> Result<Page<Product>>;

    /// Up to `limit` approved products whose id is greater than `after`
    /// (every one when `None`), in ascending id order: the pages a search
    /// read model is rebuilt from. Keyset paging, so a product that changes
    /// while the pages are read cannot shift another out of the scan.
    async fn list_searchable(&self, after: Option<ProductId>, limit: u32) -> Result<Vec<Product>>;

    /// Searches approved products with exactly the semantics of
    /// [`search::apply`](super::search::apply) (see the `search` module docs).
    async fn search(&self, query: &SearchQuery) -> Result<SearchResult>;

    /// [`search`](Self::search), as a shared result. A caching repository
    /// ([`CachedSearch`](super::CachedSearch)) hands out the very `Arc` it
    /// keeps, so callers can memoise work derived from a result (such as its
    /// rendering) for as long as the cache serves it; others wrap a fresh
    /// result that nobody else holds.
    async fn search_shared(&self, query: &SearchQuery) -> Result<Arc<SearchResult>> {
        self.search(query).await.map(Arc::new)
    }

    /// Atomically adds one to the product's `stats.downloads`, without
    /// changing `version` or `updated_at`, with its events (one unit of
    /// work: `product.downloaded`, so a search read model sees the new count
    /// as it sees every other change).
    ///
    /// MUST be atomic under concurrency (N calls add exactly N) and MUST
    /// return `NotFound` (`product`) when there is no such product,
    /// appending no event.
    async fn record_download(&self, id: ProductId, events: &[Event]) -> Result<()>;
}

/// Where reviews live.
///
/// # Example
/// ```
/// use bazaar_core::catalog::{NewProduct, NewReview, Pricing, Product, ProductKind, ProductRepository, ReviewRepository, PageRequest};
/// use bazaar_core::ids::{ProductId, ReviewId, UserId};
/// use bazaar_memory::{MemoryCatalog, MemoryOutbox};
/// # futures::executor::block_on(async {
/// let catalog = MemoryCatalog::new(MemoryOutbox::new());
/// let (products, reviews) = (catalog.products(), catalog.reviews());
/// let input = NewProduct {
///     title: "Inbox triage agent".into(), description: String::new(), short_description: String::new(),
///     kind: ProductKind::AiAgent, categories: vec!["email".into()], tags: vec![],
///     pricing: Pricing::Free, media: vec![],
/// };
/// let now = chrono::Utc::now();
/// let product = Product::create(ProductId::new(), UserId::new(), input, now).unwrap();
/// products.insert(&product, &[]).await.unwrap();
/// let buyer = UserId::new();
/// let review = NewReview { rating: 4, body: "Works.".into() }.into_review(ReviewId::new(), product.id, buyer, now).unwrap();
/// reviews.insert(&review, &[]).await.unwrap();
/// let stats = products.get(product.id).await.unwrap().unwrap().stats;
/// assert_eq!((stats.rating_sum, stats.rating_count), (4, 1));
/// // One review per buyer and product.
/// let again = NewReview { rating: 1, body: String::new() }.into_review(ReviewId::new(), product.id, buyer, now).unwrap();
/// assert_eq!(reviews.insert(&again, &[]).await.unwrap_err().code(), "conflict");
/// assert_eq!(reviews.list_for_product(product.id, PageRequest::default()).await.unwrap().total, 1);
/// # });
/// ```
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ReviewRepository: Send + Sync {
    /// Stores a review and, in the same unit of work, adds its rating to the
    /// product's `stats` (`rating_sum += stars`, `rating_count += 1`; version
    /// unchanged), committing `events` with it.
    ///
    /// MUST return [`Error::Conflict`](crate::Error::Conflict) when the buyer
    /// already reviewed the product (also under concurrency: of N concurrent
    /// inserts for one (buyer, product), exactly one succeeds) or the review id
    /// exists; MUST return `NotFound` (`product`) when the product does not
    /// exist. On any error nothing changes and no event is appended.
    async fn insert(&self, review: &Review, events: &[Event]) -> Result<()>;

    /// The reviews of `product`, newest first (`created_at` desc, then `id`
    /// desc), paged. An unknown product has no reviews.
    async fn list_for_product(&self, product: ProductId, page: PageRequest) -> Result<Page<Review>>;
}
