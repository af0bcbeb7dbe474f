//! In-memory catalog: products and reviews in one table set behind one lock.
//!
//! A review insert must add its rating to the product's stats in the same
//! unit of work, so [`MemoryProducts`] and [`MemoryReviews`] are two handles
//! on one shared [`MemoryCatalog`] state: every check-and-write (and the
//! outbox append) happens while that single lock is held.
//!
//! ```
//! use bazaar_memory::{MemoryCatalog, MemoryOutbox};
//! let catalog = MemoryCatalog::new(MemoryOutbox::new());
//! let (products, reviews) = (catalog.products(), catalog.reviews());
//! # let _ = (products, reviews);
//! ```

use bazaar_core::ConflictReason;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use bazaar_core::catalog::{
    Page, PageRequest, Product, ProductRepository, ProductStatus, Review, ReviewRepository, SearchQuery, SearchResult,
    search,
};
use bazaar_core::events::Event;
use bazaar_core::ids::{ProductId, ReviewId, UserId};
use bazaar_core::{Error, Result};
use parking_lot::Mutex;

use crate::outbox::MemoryOutbox;

#[derive(Debug, Default)]
struct Tables {
    /// Products in insertion order, so search and listings are deterministic.
    products: Vec<Product>,
    index: HashMap<ProductId, usize>,
    reviews: Vec<Review>,
    review_ids: HashSet<ReviewId>,
    /// (buyer, product) pairs that have a review: the uniqueness key.
    reviewed: HashSet<(UserId, ProductId)>,
}

impl Tables {
    fn product_mut(&mut self, id: ProductId) -> Result<&mut Product> {
        let i = *self.index.get(&id).ok_or_else(|| Error::not_found("product"))?;
        Ok(&mut self.products[i])
    }
}

/// The in-memory catalog store; hands out both ports over shared state.
#[derive(Debug, Clone)]
pub struct MemoryCatalog {
    tables: Arc<Mutex<Tables>>,
    outbox: MemoryOutbox,
}

impl MemoryCatalog {
    /// An empty catalog committing events to `outbox`.
    pub fn new(outbox: MemoryOutbox) -> Self {
        Self { tables: Arc::default(), outbox }
    }

    /// The [`ProductRepository`] over this catalog.
    pub fn products(&self) -> MemoryProducts {
        MemoryProducts { catalog: self.clone() }
    }

    /// The [`ReviewRepository`] over this catalog.
    pub fn reviews(&self) -> MemoryReviews {
        MemoryReviews { catalog: self.clone() }
    }
}

/// In-memory [`ProductRepository`]; a handle on a [`MemoryCatalog`].
#[derive(Debug, Clone)]
pub struct MemoryProducts {
    catalog: MemoryCatalog,
}

impl MemoryProducts {
    /// A product store over a fresh, empty [`MemoryCatalog`].
    pub fn new(outbox: MemoryOutbox) -> Self {
        MemoryCatalog::new(outbox).products()
    }

    /// The review store sharing this product table.
    pub fn reviews(&self) -> MemoryReviews {
        self.catalog.reviews()
    }
}

/// In-memory [`ReviewRepository`]; a handle on a [`MemoryCatalog`].
#[derive(Debug, Clone)]
pub struct MemoryReviews {
    catalog: MemoryCatalog,
}

impl MemoryReviews {
    /// The product store sharing this review table.
    pub fn products(&self) -> MemoryProducts {
        self.catalog.products()
    }
}

fn newest_first<T>(items: &mut [T], key: impl Fn(&T) -> (bazaar_core::clock::Timestamp, uuid::Uuid)) {
    items.sort_by_key(|x| std::cmp::Reverse(key(x)));
}

#[async_trait]
impl ProductRepository for MemoryProducts {
    async fn insert(&self, product: &Product, events: &[Event]) -> Result<()> {
        let mut t = self.catalog.tables.lock();
        if t.index.contains_key(&product.id) {
            return Err(Error::conflict(ConflictReason::Duplicate, format!("product {} already exists", product.id)));
        }
        let i = t.products.len();
        t.products.push(product.clone());
        t.index.insert(product.id, i);
        self.catalog.outbox.append(events);
        Ok(())
    }

    async fn update(&self, product: &Product, expected_version: u64, events: &[Event]) -> Result<()> {
        let mut t = self.catalog.tables.lock();
        let stored = t.product_mut(product.id)?;
        if stored.version != expected_version {
            return Err(Error::VersionMismatch { expected: expected_version, current: stored.version });
        }
        if expected_version.checked_add(1) != Some(product.version) {
            return Err(Error::internal(
                "updating a product",
                format!("new version {} is not expected version {expected_version} + 1", product.version),
            ));
        }
        // Stats belong to the atomic increments, never to a listing write.
        let stats = stored.stats;
        *stored = Product { stats, ..product.clone() };
        self.catalog.outbox.append(events);
        Ok(())
    }

    async fn get(&self, id: ProductId) -> Result<Option<Product>> {
        let t = self.catalog.tables.lock();
        Ok(t.index.get(&id).map(|&i| t.products[i].clone()))
    }

    async fn get_many(&self, ids: &[ProductId]) -> Result<Vec<Product>> {
        let wanted: std::collections::HashSet<ProductId> = ids.iter().copied().collect();
        let t = self.catalog.tables.lock();
        Ok(wanted.iter().filter_map(|id| t.index.get(id).map(|&i| t.products[i].clone())).collect())
    }

    async fn list_by_vendor(&self, vendor: UserId, page: PageRequest) -> Result<Page<Product>> {
        let mut mine: Vec<Product> = {
            let t = self.catalog.tables.lock();
            t.products.iter().filter(|p| p.vendor_id == vendor).cloned().collect()
        };
        newest_first(&mut mine, |p| (p.created_at, p.id.as_uuid()));
        Ok(Page::of(&mine, page))
    }

    async fn list_searchable(&self, after: Option<ProductId>, limit: u32) -> Result<Vec<Product>> {
        let mut found: Vec<Product> = {
            let t = self.catalog.tables.lock();
            t.products
                .iter()
                .filter(|p| p.status == ProductStatus::Approved && after.is_none_or(|a| p.id > a))
                .cloned()
                .collect()
        };
        found.sort_by_key(|p| p.id);
        found.truncate(limit as usize);
        Ok(found)
    }

    async fn search(&self, query: &SearchQuery) -> Result<SearchResult> {
        let t = self.catalog.tables.lock();
        Ok(search::apply(&t.products, query))
    }

    async fn record_download(&self, id: ProductId, events: &[Event]) -> Result<()> {
        let mut t = self.catalog.tables.lock();
        let p = t.product_mut(id)?;
        p.stats.downloads = p.stats.downloads.saturating_add(1);
        self.catalog.outbox.append(events);
        Ok(())
    }
}

#[async_trait]
impl ReviewRepository for MemoryReviews {
    async fn insert(&self, review: &Review, events: &[Event]) -> Result<()> {
        let mut t = self.catalog.tables.lock();
        if t.reviewed.contains(&(review.buyer_id, review.product_id)) {
            return Err(Error::conflict(ConflictReason::Duplicate, "this buyer already reviewed this product"));
        }
        if t.review_ids.contains(&review.id) {
            return Err(Error::conflict(ConflictReason::Duplicate, format!("review {} already exists", review.id)));
        }
        let stats = &mut t.product_mut(review.product_id)?.stats;
        stats.rating_sum += u64::from(review.rating.stars());
        stats.rating_count += 1;
        t.reviewed.insert((review.buyer_id, review.product_id));
        t.review_ids.insert(review.id);
        t.reviews.push(review.clone());
        self.catalog.outbox.append(events);
        Ok(())
    }

    async fn list_for_product(&self, product: ProductId, page: PageRequest) -> Result<Page<Review>> {
        let mut all: Vec<Review> = {
            let t = self.catalog.tables.lock();
            t.reviews.iter().filter(|r| r.product_id == product).cloned().collect()
        };
        newest_first(&mut all, |r| (r.created_at, r.id.as_uuid()));
        Ok(Page::of(&all, page))
    }
}
