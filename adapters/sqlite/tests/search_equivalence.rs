//! SQLite search against the reference [`search::apply`] on the testkit's
//! generated catalog ([`testkit::search::search_equivalence`]): non-ASCII
//! case folding, terms shorter than a trigram, FTS5 syntax inside terms
//! (quotes, `*`, `-`, `AND`, `NEAR`), repeated terms, shared timestamps
//! (ties broken by id) and equal ratings.
//!
//! [`search::apply`]: bazaar_core::catalog::search::apply

mod common;

use bazaar_core::catalog::search::{self, SearchParams, SearchQuery, SortOrder};
use bazaar_core::catalog::{Pricing, Product, ProductKind, ProductRepository, ProductStats, ProductStatus};
use bazaar_core::ids::{ProductId, UserId};
use bazaar_core::money::{Currency, Money};
use bazaar_core::testkit;
use common::fresh;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_queries_match_the_reference() {
    let db = fresh().await;
    let checked = testkit::search::search_equivalence(&db.store.products(), &[], &[]).await;
    assert_eq!(checked, 22 * 7);
}

/// A tiny deterministic generator, so a failure reproduces.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        usize::try_from(self.0 >> 33).expect("31 bits fit") % n
    }
}

const CATEGORIES: &[&str] = &["email", "sales", "finance", "ops"];

/// Products whose sort keys tie often: few instants, few prices (free
/// included), few download counts, and ratings with equal display values
/// from different stats ((15 + 0) / (5 + 0) = (15 + 3) / (5 + 1) = 3).
fn browse_catalog() -> Vec<Product> {
    let mut rng = Lcg(99);
    let base = chrono::DateTime::from_timestamp(1_700_000_000, 0).expect("in range");
    let ratings = [(0, 0), (3, 1), (5, 1), (10, 2), (4, 1), (9, 3)];
    (0..150)
        .map(|i| {
            let created_at = base + chrono::Duration::seconds(i64::try_from(rng.next(8)).unwrap());
            let mut categories: Vec<String> =
                (0..rng.next(3)).map(|_| CATEGORIES[rng.next(CATEGORIES.len())].to_owned()).collect();
            categories.sort();
            categories.dedup();
            let pricing = match rng.next(4) {
                0 => Pricing::Free,
                n => Pricing::OneTime { price: Money::new(i64::try_from(100 * n).unwrap(), Currency::USD) },
            };
            let (rating_sum, rating_count) = ratings[rng.next(ratings.len())];
            Product {
                id: ProductId::new(),
                vendor_id: UserId::new(),
                title: format!("product {i}"),
                description: String::new(),
                short_description: String::new(),
                kind: ProductKind::ALL[rng.next(3)],
                categories,
                tags: vec![],
                pricing,
                media: vec![],
                status: if rng.next(4) == 0 { ProductStatus::ALL[rng.next(5)] } else { ProductStatus::Approved },
                stats: ProductStats { downloads: u64::try_from(rng.next(3)).unwrap(), rating_sum, rating_count },
                version: 1,
                created_at,
                updated_at: created_at,
            }
        })
        .collect()
}

/// Searches without text take their own SQL (one index walk per sort order,
/// facets from the indexes, the total derived from the kind facet): every
/// sort order and the default, under every combination of category
/// (including one no product has), kind and price bounds, on several pages,
/// after updates that move products between statuses, prices and
/// categories, must equal the reference.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn searches_without_text_match_the_reference() {
    let db = fresh().await;
    let repo = db.store.products();
    let mut products = browse_catalog();
    for p in &products {
        repo.insert(p, &[]).await.expect("insert");
    }
    // Updates must keep the indexes in step with the rows.
    for p in products.iter_mut().step_by(7) {
        p.status = if p.status == ProductStatus::Approved { ProductStatus::Suspended } else { ProductStatus::Approved };
        p.pricing = Pricing::OneTime { price: Money::new(200, Currency::USD) };
        p.categories = vec!["sales".to_owned()];
        p.version += 1;
        repo.update(p, p.version - 1, &[]).await.expect("update");
    }

    let kinds = [None].into_iter().chain(ProductKind::ALL.map(Some));
    let prices = [(None, None), (Some(100), None), (None, Some(200)), (Some(200), Some(300))];
    let pages = [(1, 7), (3, 7), (1, 100), (40, 5)];
    let (mut checked, mut nonempty) = (0, 0);
    for sort in SortOrder::ALL.iter().copied().map(Some).chain([None]) {
        for category in [None, Some("email"), Some("sales"), Some("absent")] {
            for kind in kinds.clone() {
                for (price_min, price_max) in prices {
                    for (page, limit) in pages {
                        let params = SearchParams {
                            q: None,
                            category: category.map(str::to_owned),
                            kind,
                            price_min,
                            price_max,
                            sort,
                            page: Some(page),
                            limit: Some(limit),
                        };
                        let query = SearchQuery::new(params.clone()).expect("valid query");
                        let got = repo.search(&query).await.expect("search");
                        let want = search::apply(&products, &query);
                        assert_eq!(got, want, "search differs from the reference for {params:?}");
                        checked += 1;
                        nonempty += usize::from(!want.items.is_empty());
                    }
                }
            }
        }
    }
    assert_eq!(checked, 7 * 4 * 4 * 4 * 4);
    // Guard against a catalog that makes the comparison trivially empty.
    assert!(nonempty > checked / 3, "only {nonempty} of {checked} pages had items");
}
