//! The catalog: products, their moderation, search and reviews.
//!
//! - [`product`](Product) — the aggregate and its validated inputs
//!   ([`NewProduct`], [`ProductPatch`]);
//! - [`transition`] — the moderation state machine (and why an edit to an
//!   approved product returns it to draft);
//! - [`Pricing`] — free, one-time or subscription, with its wire shape;
//! - [`search`] — the query, the result, and [`search::apply`], the reference
//!   semantics every adapter reproduces;
//! - [`Review`], [`Rating`] and the Bayesian [`RatingPrior`];
//! - [`ProductRepository`], [`ReviewRepository`] — the ports;
//! - [`SearchIndex`] — where searches are answered (the store's own search,
//!   [`StoreSearch`], or a read model kept by events);
//! - [`CatalogService`] — the use cases with authorization.

mod cache;
mod index;
mod moderation;

mod product;
mod rating;
mod repository;
mod review;
pub mod search;
mod service;

pub use crate::page::{DEFAULT_LIMIT, MAX_LIMIT, Page, PageRequest};
pub use crate::pricing::{BillingInterval, Pricing};
pub use cache::{CachedSearch, DEFAULT_SEARCH_CAPACITY, DEFAULT_SEARCH_TTL};
pub use index::{SearchIndex, StoreSearch, rebuild_from_store};
pub use moderation::{MAX_REJECTION_REASON_CHARS, ModerationAction, ProductStatus, transition};
pub use product::{
    CATEGORY_COUNT, MAX_CATEGORY_CHARS, MAX_DESCRIPTION_CHARS, MAX_MEDIA, MAX_MEDIA_URL_BYTES,
    MAX_SHORT_DESCRIPTION_CHARS, MAX_TAG_CHARS, MAX_TAGS, Media, MediaKind, NewProduct, Product, ProductKind,
    ProductPatch, ProductStats, TITLE_CHARS,
};
pub use rating::{Rating, RatingPrior};
#[cfg(any(test, feature = "mocks"))]
pub use repository::{MockProductRepository, MockReviewRepository};
pub use repository::{ProductRepository, ReviewRepository};
pub use review::{MAX_REVIEW_BODY_CHARS, NewReview, Review};
pub use search::{FacetCount, Facets, SearchParams, SearchQuery, SearchResult, SortOrder};
pub use service::CatalogService;

/// Shared builders for the catalog's unit tests.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;
    use crate::clock::Timestamp;
    use crate::ids::{ProductId, UserId};
    use crate::money::{Currency, Money};

    /// A fixed instant plus `secs` seconds.
    pub(crate) fn at(secs: i64) -> Timestamp {
        chrono::DateTime::from_timestamp(1_700_000_000 + secs, 0).expect("in range")
    }

    /// A valid creation input.
    pub(crate) fn new_product() -> NewProduct {
        NewProduct {
            title: "Inbox triage agent".into(),
            description: "Sorts your e-mail.".into(),
            short_description: "Sorts e-mail".into(),
            kind: ProductKind::AiAgent,
            categories: vec!["email".into(), "productivity".into()],
            tags: vec!["gmail".into(), "triage".into()],
            pricing: Pricing::OneTime { price: Money::new(1999, Currency::USD) },
            media: vec![Media { kind: MediaKind::Image, url: "https://cdn.example.com/a.png".into() }],
        }
    }

    /// An approved product titled `title`, created at `at(secs)`, by a fresh vendor.
    pub(crate) fn approved(title: &str, secs: i64) -> Product {
        let input = NewProduct { title: title.into(), ..new_product() };
        let mut p = Product::create(ProductId::new(), UserId::new(), input, at(secs)).expect("valid fixture");
        p.status = ProductStatus::Approved;
        p
    }
}
