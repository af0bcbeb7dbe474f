//! The catalog search read model: a tantivy index that answers every catalog
//! query exactly as the core's reference,
//! [`search::apply`](bazaar_core::catalog::search::apply), answers it over
//! the same products — the same items in the same order, total and facets —
//! without touching the row store.
//!
//! # How each rule of the reference is met
//! - **Visibility.** Every product has a document; only searchable ones
//!   carry text, categories and a body, and only they enter the per-segment
//!   tables every search reads.
//! - **Text.** Lower-cased (with `str::to_lowercase`, as the reference) title,
//!   tags and description are indexed as whole words and as the 1- and
//!   2-character grams of their words. A term never holds whitespace, so it
//!   occurs in a text exactly when it occurs inside one of its words: a term
//!   of three or more characters is the union of the posting lists of the
//!   words containing it (found in each segment's vocabulary through a
//!   trigram map, and checked), a shorter one is one gram's posting list.
//!   Matches are exact; no document needs re-checking against its text.
//! - **Relevance** is the reference's weights (title 3, tags 2, description 1
//!   per term, repeated terms counted each time) computed by the engine as
//!   constant scores summed by boolean queries. BM25 was not chosen: it
//!   would change the order every backend agrees on, and the core's
//!   semantics change first, if ever.
//! - **Filters, facets, total, sort, paging.** Each facet leaves out its
//!   own dimension's filter, so category and kind are applied outside the
//!   engine's query, reading each segment's fast fields (decoded once per
//!   segment). With text, a collector visits the engine's matches; without,
//!   the answer comes from per-segment sort orders and facet counts, so a
//!   page costs about its own length rather than the catalog's. The sort key
//!   is the reference's comparator (Bayesian display rating with
//!   [`RatingPrior::DEFAULT`](bazaar_core::catalog::RatingPrior::DEFAULT)
//!   compared by `total_cmp`; price in minor units, free = 0), tie-broken by
//!   `created_at` desc, then `id` desc. A product counts once under each of
//!   its distinct categories.
//! - **Products** come back whole, deserialized from the JSON stored with
//!   each searchable document (once per segment, then shared).
//!
//! # Freshness and restarts
//! Writes are buffered and become visible at [`CatalogIndex::commit`]; a
//! [`Committer`] commits every [`DEFAULT_COMMIT_INTERVAL`] (250 ms), and a
//! commit reloads the reader before it returns, so a write is searchable
//! within one interval plus one commit. The index saves a [`Checkpoint`] —
//! the outbox position it has applied — with each commit, so a restarted
//! process can tell whether its on-disk index is missing or behind the store
//! and [`rebuild`](CatalogIndex::rebuild) it.
//!
//! # Example
//! ```
//! use bazaar_core::catalog::{NewProduct, Pricing, Product, ProductKind, ProductStatus, SearchParams, SearchQuery};
//! use bazaar_core::ids::{ProductId, UserId};
//! use bazaar_tantivy::{CatalogIndex, Checkpoint};
//!
//! let index = CatalogIndex::in_memory().unwrap();
//! let listing = NewProduct {
//!     title: "Inbox triage agent".into(), description: "Sorts your e-mail.".into(),
//!     short_description: String::new(), kind: ProductKind::AiAgent,
//!     categories: vec!["email".into()], tags: vec!["Gmail".into()], pricing: Pricing::Free, media: vec![],
//! };
//! let mut product = Product::create(ProductId::new(), UserId::new(), listing, chrono::Utc::now()).unwrap();
//! product.status = ProductStatus::Approved;
//! index.upsert(&product).unwrap();
//! index.advance(Checkpoint::new(1)); // the outbox position this write came from
//! index.commit().unwrap();
//!
//! let query = SearchQuery::new(SearchParams { q: Some("triage".into()), ..Default::default() }).unwrap();
//! let found = index.search(&query).unwrap();
//! assert_eq!((found.total, found.items[0].id), (1, product.id));
//! ```
//!
//! # Features
//! tantivy is built with `mmap` only: no compression of the stored bodies
//! (decompressing a block per hit costs more latency than the disk it
//! saves), no stemming or stop words (matching is exact).

mod checkpoint;
mod collector;
mod committer;
mod error;
mod index;
mod port;
mod schema;
mod table;
mod text;
mod tokens;
mod vocab;

pub use checkpoint::Checkpoint;
pub use committer::{Committer, DEFAULT_COMMIT_INTERVAL};
pub use index::{CatalogIndex, IndexStats, SHARED_RESULTS};
