//! Shared test helpers: a product repository whose search is the index, and
//! product builders.
#![allow(dead_code, unreachable_pub)]

use async_trait::async_trait;
use bazaar_core::catalog::search::{SearchQuery, SearchResult};
use bazaar_core::catalog::{
    NewProduct, Page, PageRequest, Pricing, Product, ProductKind, ProductRepository, ProductStatus,
};
use bazaar_core::events::Event;
use bazaar_core::ids::{ProductId, UserId};
use bazaar_core::money::{Currency, Money};
use bazaar_core::{Error, Result};
use bazaar_memory::{MemoryOutbox, MemoryProducts};
use bazaar_tantivy::CatalogIndex;

/// The in-memory store with the index following it the way the event-fed
/// consumer will: after every change, the product is re-read from the store
/// and upserted, and the index committed. Searches go to the index only.
pub struct Indexed {
    pub store: MemoryProducts,
    pub index: CatalogIndex,
}

impl Indexed {
    pub fn new(index: CatalogIndex) -> Self {
        Self { store: MemoryProducts::new(MemoryOutbox::new()), index }
    }

    async fn follow(&self, id: ProductId) -> Result<()> {
        let product = self.store.get(id).await?.ok_or(Error::not_found("product"))?;
        self.index.upsert(&product)?;
        self.index.commit()
    }
}

#[async_trait]
impl ProductRepository for Indexed {
    async fn insert(&self, product: &Product, events: &[Event]) -> Result<()> {
        self.store.insert(product, events).await?;
        self.follow(product.id).await
    }

    async fn update(&self, product: &Product, expected_version: u64, events: &[Event]) -> Result<()> {
        self.store.update(product, expected_version, events).await?;
        self.follow(product.id).await
    }

    async fn get(&self, id: ProductId) -> Result<Option<Product>> {
        self.store.get(id).await
    }

    async fn list_by_vendor(&self, vendor: UserId, page: PageRequest) -> Result<Page<Product>> {
        self.store.list_by_vendor(vendor, page).await
    }

    async fn list_searchable(&self, after: Option<ProductId>, limit: u32) -> Result<Vec<Product>> {
        self.store.list_searchable(after, limit).await
    }

    async fn search(&self, query: &SearchQuery) -> Result<SearchResult> {
        self.index.search(query)
    }

    async fn record_download(&self, id: ProductId, events: &[Event]) -> Result<()> {
        self.store.record_download(id, events).await?;
        self.follow(id).await
    }
}

/// An approved product titled `title`, created `secs` after a fixed instant.
pub fn approved(title: &str, secs: i64) -> Product {
    let input = NewProduct {
        title: title.into(),
        description: "Sorts your e-mail.".into(),
        short_description: String::new(),
        kind: ProductKind::AiAgent,
        categories: vec!["email".into()],
        tags: vec!["Gmail".into()],
        pricing: Pricing::OneTime { price: Money::new(1999, Currency::USD) },
        media: vec![],
    };
    let at = chrono::DateTime::from_timestamp(1_700_000_000 + secs, 0).expect("in range");
    let mut p = Product::create(ProductId::new(), UserId::new(), input, at).expect("valid product");
    p.status = ProductStatus::Approved;
    p
}
