//! Contract suites for [`ProductRepository`] and [`ReviewRepository`].
//!
//! Each function takes fresh, empty ports of one backend (the review suite
//! needs both ports of the *same* backend, since reviews update product
//! stats atomically) and panics with a message naming the broken clause.
//! `committed` returns every event the backend has committed so far (its
//! outbox), so the suites can check that a failed write appends nothing.
//!
//! Fixture timestamps are whole seconds so stores with microsecond precision
//! round-trip them exactly.

use std::sync::Arc;

use chrono::{DateTime, Duration};
use futures::future::join_all;

use super::licensing::Spawn;
use crate::catalog::{
    Media, MediaKind, NewProduct, Product, ProductKind, ProductRepository, ProductStatus, Rating, Review,
    ReviewRepository, SearchParams, SearchQuery, SortOrder, search,
};
use crate::clock::Timestamp;
use crate::error::Error;
use crate::events::{Event, ProductApproved};
use crate::ids::{ProductId, ReviewId, UserId};
use crate::money::{Currency, Money};
use crate::page::{Page, PageRequest};
use crate::pricing::Pricing;

fn at(secs: i64) -> Timestamp {
    DateTime::from_timestamp(1_700_000_000 + secs, 0).expect("in range")
}

fn product(vendor: UserId, title: &str, secs: i64) -> Product {
    let input = NewProduct {
        title: title.into(),
        description: "A useful automation.".into(),
        short_description: "Useful".into(),
        kind: ProductKind::AiAgent,
        categories: vec!["productivity".into()],
        tags: vec!["automation".into()],
        pricing: Pricing::OneTime { price: Money::new(1_000, Currency::USD) },
        media: vec![Media { kind: MediaKind::Image, url: "https://cdn.example.com/1.png".into() }],
    };
    Product::create(ProductId::new(), vendor, input, at(secs)).expect("valid contract fixture")
}

fn approved(p: Product) -> Product {
    Product { status: ProductStatus::Approved, ..p }
}

fn event(p: &Product) -> Event {
    Event::new(&ProductApproved { product_id: p.id, vendor_id: p.vendor_id }, at(0))
}

fn page(page: u32, limit: u32) -> PageRequest {
    PageRequest::new(page, limit).expect("valid page")
}

fn code<T: std::fmt::Debug>(r: crate::Result<T>, what: &str) -> &'static str {
    match r {
        Ok(v) => panic!("{what}: expected an error, got Ok({v:?})"),
        Err(e) => e.code(),
    }
}

/// Insert, get, update with optimistic concurrency, listing and downloads.
///
/// # Panics
/// When the backend breaks the [`ProductRepository`] contract.
pub async fn products(repo: &dyn ProductRepository, committed: &dyn Fn() -> Vec<Event>) {
    let vendor = UserId::new();
    let p = product(vendor, "First product", 0);
    assert_eq!(repo.get(p.id).await.expect("get"), None, "get of an unknown id must be None");
    let ev = event(&p);
    repo.insert(&p, std::slice::from_ref(&ev)).await.expect("insert");
    assert_eq!(repo.get(p.id).await.expect("get"), Some(p.clone()), "get must return what was inserted");
    let base = committed().len();
    assert!(committed().iter().any(|e| e.id == ev.id), "insert must commit its events");

    // Batch reads: existing ids only, each once, whatever the order asked.
    let q = product(UserId::new(), "Second product", 1);
    repo.insert(&q, &[]).await.expect("insert");
    let mut many = repo.get_many(&[q.id, ProductId::new(), p.id, q.id]).await.expect("get_many");
    many.sort_by_key(|x| x.id.as_uuid());
    let mut expected = vec![p.clone(), q.clone()];
    expected.sort_by_key(|x| x.id.as_uuid());
    assert_eq!(many, expected, "get_many must return each known product once and leave out unknown ids");
    assert!(repo.get_many(&[]).await.expect("get_many").is_empty(), "no ids, no products");

    // Duplicate id.
    let dup = Product { title: "Other title".into(), ..p.clone() };
    assert_eq!(code(repo.insert(&dup, &[event(&p)]).await, "duplicate insert"), "conflict");
    assert_eq!(committed().len(), base, "a failed insert must append no event");
    assert_eq!(repo.get(p.id).await.expect("get"), Some(p.clone()), "a failed insert must change nothing");

    // Update: the caller bumps the version.
    let v2 = Product { title: "Renamed product".into(), version: 2, updated_at: at(10), ..p.clone() };
    repo.update(&v2, 1, &[event(&p)]).await.expect("update at the right version");
    assert_eq!(repo.get(p.id).await.expect("get"), Some(v2.clone()), "update must store the product as given");
    assert_eq!(committed().len(), base + 1, "update must commit its events");

    // Stale version.
    let stale = Product { title: "Lost update".into(), version: 2, ..v2.clone() };
    match repo.update(&stale, 1, &[event(&p)]).await {
        Err(Error::VersionMismatch { expected: 1, current: 2 }) => {}
        other => panic!("a stale update must be VersionMismatch {{ expected: 1, current: 2 }}, got {other:?}"),
    }
    assert_eq!(repo.get(p.id).await.expect("get"), Some(v2.clone()), "a stale update must change nothing");
    assert_eq!(committed().len(), base + 1, "a stale update must append no event");

    // Caller bug: version not expected + 1.
    let skipped = Product { version: 9, ..v2.clone() };
    assert_eq!(code(repo.update(&skipped, 2, &[event(&p)]).await, "version skip"), "internal");
    assert_eq!(repo.get(p.id).await.expect("get"), Some(v2.clone()), "a refused update must change nothing");

    // Missing product.
    let ghost = Product { id: ProductId::new(), version: 2, ..v2.clone() };
    assert_eq!(code(repo.update(&ghost, 1, &[event(&p)]).await, "update of a missing product"), "not_found");
    assert_eq!(committed().len(), base + 1, "failed updates must append no event");

    // Downloads: atomic counter, no version bump, kept by later updates,
    // with its event.
    repo.record_download(p.id, &[event(&p)]).await.expect("record_download");
    repo.record_download(p.id, &[]).await.expect("record_download");
    let after = repo.get(p.id).await.expect("get").expect("exists");
    assert_eq!(after.stats.downloads, 2, "record_download must add one each time");
    assert_eq!((after.version, after.updated_at), (2, at(10)), "record_download must not touch version/updated_at");
    assert_eq!(committed().len(), base + 2, "record_download must commit its events");
    let ghost = ProductId::new();
    assert_eq!(code(repo.record_download(ghost, &[event(&p)]).await, "download of a missing product"), "not_found");
    assert_eq!(committed().len(), base + 2, "a download of a missing product must append no event");
    let v3 = Product { title: "Renamed again".into(), version: 3, ..v2.clone() };
    repo.update(&v3, 2, &[]).await.expect("update");
    let stored = repo.get(p.id).await.expect("get").expect("exists");
    assert_eq!(stored.stats.downloads, 2, "update must keep the stored stats, not the caller's copy");
    assert_eq!(stored.title, "Renamed again");

    // Vendor listing: every status, newest first, paged, only that vendor's.
    let mut mine = vec![stored];
    for i in 1..=4 {
        let mut q = product(vendor, &format!("Vendor product {i}"), i * 100);
        if i % 2 == 0 {
            q = approved(q);
        }
        repo.insert(&q, &[]).await.expect("insert");
        mine.push(q);
    }
    repo.insert(&product(UserId::new(), "Someone else's", 50), &[]).await.expect("insert");
    mine.reverse();
    let all = repo.list_by_vendor(vendor, page(1, 100)).await.expect("list_by_vendor");
    assert_eq!(
        all,
        Page { items: mine.clone(), total: 5, page: 1, limit: 100 },
        "list_by_vendor: newest first, all statuses"
    );
    let second = repo.list_by_vendor(vendor, page(2, 2)).await.expect("list_by_vendor");
    assert_eq!(second.items, mine[2..4], "list_by_vendor page 2 of 2");
    assert_eq!(second.total, 5);
    let none = repo.list_by_vendor(UserId::new(), page(1, 10)).await.expect("list_by_vendor");
    assert_eq!((none.items.len(), none.total), (0, 0), "a vendor without products lists nothing");
}

/// Concurrent writers: one winner per version, no lost download.
///
/// # Panics
/// When the backend breaks the [`ProductRepository`] contract under concurrency.
pub async fn products_concurrency(repo: &dyn ProductRepository, committed: &dyn Fn() -> Vec<Event>) {
    let p = approved(product(UserId::new(), "Contended product", 0));
    repo.insert(&p, &[]).await.expect("insert");
    let base = committed().len();
    let writers: Vec<Product> =
        (0..8).map(|i| Product { title: format!("Writer {i} wins"), version: 2, ..p.clone() }).collect();
    let events: Vec<[Event; 1]> = writers.iter().map(|w| [event(w)]).collect();
    let results = join_all(writers.iter().zip(&events).map(|(w, e)| repo.update(w, 1, e))).await;
    let won: Vec<usize> = results.iter().enumerate().filter(|(_, r)| r.is_ok()).map(|(i, _)| i).collect();
    assert_eq!(won.len(), 1, "exactly one concurrent update of version 1 must win, got {results:?}");
    assert!(
        results.iter().filter(|r| r.is_err()).all(|r| matches!(r, Err(Error::VersionMismatch { .. }))),
        "losers must get VersionMismatch: {results:?}"
    );
    assert_eq!(committed().len(), base + 1, "only the winner's event may be committed");
    let stored = repo.get(p.id).await.expect("get").expect("exists");
    assert_eq!(stored, writers[won[0]], "the winner's write must be stored");

    join_all((0..50).map(|_| repo.record_download(p.id, &[]))).await.into_iter().for_each(|r| r.expect("download"));
    let stored = repo.get(p.id).await.expect("get").expect("exists");
    assert_eq!(stored.stats.downloads, 50, "50 concurrent downloads must count 50");
}

/// One search fixture.
struct Spec {
    title: &'static str,
    kind: ProductKind,
    categories: &'static [&'static str],
    tags: &'static [&'static str],
    description: &'static str,
    pricing: Pricing,
    status: ProductStatus,
    /// downloads, rating_sum, rating_count.
    stats: (u64, u64, u64),
}

/// A varied catalog for the search suite, created a minute apart.
fn search_catalog() -> Vec<Product> {
    use ProductKind::{AiAgent, AutomationAsset, N8nWorkflow};
    use ProductStatus::{Approved, Draft, Pending, Rejected, Suspended};
    let usd = |minor| Pricing::OneTime { price: Money::new(minor, Currency::USD) };
    let monthly = Pricing::Subscription {
        price: Money::new(900, Currency::USD),
        interval: crate::pricing::BillingInterval::Monthly,
    };
    let hidden = |title, status| Spec {
        title,
        kind: AiAgent,
        categories: &["email"],
        tags: &["gmail"],
        description: "Hidden.",
        pricing: usd(100),
        status,
        stats: (0, 0, 0),
    };
    let specs = [
        Spec {
            title: "Gmail triage agent",
            kind: AiAgent,
            categories: &["email", "productivity"],
            tags: &["gmail", "inbox"],
            description: "Sorts your inbox.",
            pricing: usd(1_500),
            status: Approved,
            stats: (10, 45, 10),
        },
        Spec {
            title: "Slack digest",
            kind: N8nWorkflow,
            categories: &["productivity"],
            tags: &["slack", "gmail-export"],
            description: "Posts an email digest every morning.",
            pricing: Pricing::Free,
            status: Approved,
            stats: (99, 5, 1),
        },
        Spec {
            title: "Invoice OCR",
            kind: AutomationAsset,
            categories: &["finance"],
            tags: &["ocr"],
            description: "Reads totals from Gmail attachments.",
            pricing: usd(500),
            status: Approved,
            stats: (3, 0, 0),
        },
        Spec {
            title: "CRM sync workflow",
            kind: N8nWorkflow,
            categories: &["sales", "productivity"],
            tags: &["crm", "hubspot"],
            description: "Keeps HubSpot and your sheet in sync.",
            pricing: monthly,
            status: Approved,
            stats: (40, 36, 9),
        },
        Spec {
            title: "Lead scoring agent",
            kind: AiAgent,
            categories: &["sales"],
            tags: &["crm", "ai"],
            description: "Scores leads from your CRM.",
            pricing: usd(1_500),
            status: Approved,
            stats: (40, 12, 3),
        },
        hidden("Gmail draft (unpublished)", Draft),
        hidden("Gmail pending", Pending),
        hidden("Gmail rejected", Rejected),
        hidden("Gmail suspended", Suspended),
    ];
    specs
        .into_iter()
        .zip(0i64..)
        .map(|(s, i)| {
            let mut p = product(UserId::new(), s.title, i * 60);
            p.kind = s.kind;
            p.categories = s.categories.iter().map(|c| (*c).to_owned()).collect();
            p.tags = s.tags.iter().map(|t| (*t).to_owned()).collect();
            p.description = s.description.into();
            p.pricing = s.pricing;
            p.status = s.status;
            (p.stats.downloads, p.stats.rating_sum, p.stats.rating_count) = s.stats;
            p
        })
        .collect()
}

/// Stores `products` as given (insert keeps `stats`, so the fixtures'
/// counters need no thousands of increments).
async fn seed(repo: &dyn ProductRepository, products: &[Product]) {
    for p in products {
        repo.insert(p, &[]).await.expect("insert search fixture");
    }
}

fn titles(items: &[Product]) -> Vec<&str> {
    items.iter().map(|p| p.title.as_str()).collect()
}

/// Search: only approved products, text/filters/sorts/facets/paging exactly
/// as [`search::apply`] (and the `search` module docs) define them.
///
/// # Panics
/// When the backend's search differs from the reference implementation.
pub async fn product_search(repo: &dyn ProductRepository) {
    let catalog = search_catalog();
    seed(repo, &catalog).await;
    let q = |params: SearchParams| SearchQuery::new(params).expect("valid query");
    let none = SearchParams::default;

    let queries = vec![
        ("everything", q(none())),
        ("text", q(SearchParams { q: Some("GMAIL".into()), ..none() })),
        ("two terms", q(SearchParams { q: Some("gmail digest".into()), ..none() })),
        ("no match", q(SearchParams { q: Some("gmail nonexistent".into()), ..none() })),
        ("crm relevance", q(SearchParams { q: Some("crm".into()), ..none() })),
        ("category", q(SearchParams { category: Some("productivity".into()), ..none() })),
        ("kind", q(SearchParams { kind: Some(ProductKind::N8nWorkflow), ..none() })),
        (
            "category+kind",
            q(SearchParams { category: Some("sales".into()), kind: Some(ProductKind::AiAgent), ..none() }),
        ),
        ("price range", q(SearchParams { price_min: Some(0), price_max: Some(900), ..none() })),
        ("price floor", q(SearchParams { price_min: Some(1_000), ..none() })),
        ("price_asc", q(SearchParams { sort: Some(SortOrder::PriceAsc), ..none() })),
        ("price_desc", q(SearchParams { sort: Some(SortOrder::PriceDesc), ..none() })),
        ("rating", q(SearchParams { sort: Some(SortOrder::Rating), ..none() })),
        ("downloads", q(SearchParams { sort: Some(SortOrder::Downloads), ..none() })),
        ("newest", q(SearchParams { sort: Some(SortOrder::Newest), ..none() })),
        ("relevance without text", q(SearchParams { sort: Some(SortOrder::Relevance), ..none() })),
        ("page 2 of 2", q(SearchParams { page: Some(2), limit: Some(2), ..none() })),
        ("past the end", q(SearchParams { page: Some(50), limit: Some(2), ..none() })),
        ("capped limit", q(SearchParams { limit: Some(5_000), ..none() })),
        ("text+sort", q(SearchParams { q: Some("gmail".into()), sort: Some(SortOrder::PriceAsc), ..none() })),
    ];
    for (name, query) in &queries {
        let got = repo.search(query).await.expect("search");
        let want = search::apply(&catalog, query);
        assert_eq!(got, want, "search {name:?} differs from the reference implementation");
    }

    // Pin the reference on this data too, so a wrong reference can't pass.
    let r = repo.search(&q(none())).await.expect("search");
    assert_eq!(r.total, 5, "only approved products are searchable");
    assert_eq!(
        titles(&r.items),
        ["Lead scoring agent", "CRM sync workflow", "Invoice OCR", "Slack digest", "Gmail triage agent"]
    );
    let fc = |v: &str, c| crate::catalog::FacetCount { value: v.into(), count: c };
    assert_eq!(r.facets.categories, [fc("productivity", 3), fc("sales", 2), fc("email", 1), fc("finance", 1)]);
    assert_eq!(r.facets.kinds, [fc("ai_agent", 2), fc("n8n_workflow", 2), fc("automation_asset", 1)]);

    let r = repo.search(&q(SearchParams { q: Some("gmail".into()), ..none() })).await.expect("search");
    assert_eq!(
        titles(&r.items),
        ["Gmail triage agent", "Slack digest", "Invoice OCR"],
        "title 3 > tag 2 > description 1"
    );

    let r = repo
        .search(&q(SearchParams { category: Some("sales".into()), kind: Some(ProductKind::AiAgent), ..none() }))
        .await
        .expect("search");
    assert_eq!(titles(&r.items), ["Lead scoring agent"]);
    assert_eq!(
        r.facets.categories,
        [fc("email", 1), fc("productivity", 1), fc("sales", 1)],
        "category facet ignores the category filter"
    );
    assert_eq!(r.facets.kinds, [fc("ai_agent", 1), fc("n8n_workflow", 1)], "kind facet ignores the kind filter");

    let r = repo.search(&q(SearchParams { sort: Some(SortOrder::PriceAsc), ..none() })).await.expect("search");
    assert_eq!(
        titles(&r.items),
        ["Slack digest", "Invoice OCR", "CRM sync workflow", "Lead scoring agent", "Gmail triage agent"],
        "free sorts as 0; ties newest first"
    );
    let r = repo.search(&q(SearchParams { sort: Some(SortOrder::Rating), ..none() })).await.expect("search");
    assert_eq!(
        titles(&r.items)[..2],
        ["Gmail triage agent", "CRM sync workflow"],
        "rating sorts by the Bayesian average"
    );

    let r = repo.search(&q(SearchParams { page: Some(2), limit: Some(2), ..none() })).await.expect("search");
    assert_eq!((titles(&r.items), r.total, r.page, r.limit), (vec!["Invoice OCR", "Slack digest"], 5, 2, 2));
    let r = repo.search(&q(SearchParams { limit: Some(5_000), ..none() })).await.expect("search");
    assert_eq!(r.limit, 100, "limits above 100 are capped");

    // A product becomes searchable when approved and leaves when suspended.
    let hidden = catalog.iter().find(|p| p.status == ProductStatus::Pending).expect("fixture");
    let live = Product { status: ProductStatus::Approved, version: 2, ..hidden.clone() };
    repo.update(&live, 1, &[]).await.expect("approve");
    assert_eq!(repo.search(&q(none())).await.expect("search").total, 6);
    let gone = Product { status: ProductStatus::Suspended, version: 3, ..live };
    repo.update(&gone, 2, &[]).await.expect("suspend");
    assert_eq!(repo.search(&q(none())).await.expect("search").total, 5);

    // Many products: the cap bites and pages tile the whole result.
    let vendor = UserId::new();
    for i in 0..120 {
        repo.insert(&approved(product(vendor, &format!("Bulk item {i:03}"), 10_000 + i)), &[]).await.expect("insert");
    }
    let r = repo.search(&q(SearchParams { limit: Some(101), ..none() })).await.expect("search");
    assert_eq!((r.items.len(), r.limit, r.total), (100, 100, 125));
    assert_eq!(r.items[0].title, "Bulk item 119");
    let tail = repo.search(&q(SearchParams { page: Some(2), limit: Some(100), ..none() })).await.expect("search");
    assert_eq!(tail.items.len(), 25);
    let r = repo.search(&q(SearchParams { q: Some("bulk item 07".into()), ..none() })).await.expect("search");
    assert_eq!(r.total, 12, "every term must match (\"07\" is in items 007, 070..=079 and 107)");
}

fn review(product: ProductId, buyer: UserId, stars: u8, secs: i64) -> Review {
    Review {
        id: ReviewId::new(),
        product_id: product,
        buyer_id: buyer,
        rating: Rating::new(stars).expect("valid rating"),
        body: format!("{stars} stars"),
        created_at: at(secs),
    }
}

/// Reviews: one per (buyer, product), exact stats updated atomically with
/// the insert, newest-first listing.
///
/// # Panics
/// When the backend breaks the [`ReviewRepository`] contract.
pub async fn reviews(
    products: &dyn ProductRepository,
    reviews: &dyn ReviewRepository,
    committed: &dyn Fn() -> Vec<Event>,
) {
    let p = approved(product(UserId::new(), "Reviewed product", 0));
    products.insert(&p, &[]).await.expect("insert product");
    let base = committed().len();

    let (alice, bob) = (UserId::new(), UserId::new());
    let first = review(p.id, alice, 5, 10);
    reviews.insert(&first, &[event(&p)]).await.expect("first review");
    assert_eq!(committed().len(), base + 1, "a review insert must commit its events");
    let second = review(p.id, bob, 2, 20);
    reviews.insert(&second, &[]).await.expect("second review");
    let stored = products.get(p.id).await.expect("get").expect("exists");
    assert_eq!((stored.stats.rating_sum, stored.stats.rating_count), (7, 2), "stats must be exact sums");
    assert_eq!(stored.version, p.version, "a review must not bump the product version");

    let again = review(p.id, alice, 1, 30);
    assert_eq!(code(reviews.insert(&again, &[event(&p)]).await, "second review by one buyer"), "conflict");
    let same_id = Review { buyer_id: UserId::new(), ..first.clone() };
    assert_eq!(code(reviews.insert(&same_id, &[event(&p)]).await, "duplicate review id"), "conflict");
    let orphan = review(ProductId::new(), alice, 3, 30);
    assert_eq!(code(reviews.insert(&orphan, &[event(&p)]).await, "review of a missing product"), "not_found");
    let stored = products.get(p.id).await.expect("get").expect("exists");
    assert_eq!((stored.stats.rating_sum, stored.stats.rating_count), (7, 2), "failed inserts must not touch stats");
    assert_eq!(committed().len(), base + 1, "failed inserts must append no event");

    // The same buyer may review another product.
    let other = approved(product(UserId::new(), "Other product", 5));
    products.insert(&other, &[]).await.expect("insert");
    reviews.insert(&review(other.id, alice, 4, 40), &[]).await.expect("alice reviews another product");

    let listed = reviews.list_for_product(p.id, page(1, 10)).await.expect("list");
    assert_eq!(
        listed,
        Page { items: vec![second.clone(), first.clone()], total: 2, page: 1, limit: 10 },
        "newest first"
    );
    let p2 = reviews.list_for_product(p.id, page(2, 1)).await.expect("list");
    assert_eq!((p2.items, p2.total), (vec![first], 2));
    assert_eq!(reviews.list_for_product(ProductId::new(), page(1, 10)).await.expect("list").total, 0);

    // Concurrent reviews by one buyer: exactly one lands, stats count it once.
    let carol = UserId::new();
    let attempts: Vec<Review> = (1..=5).map(|s| review(p.id, carol, s, 100)).collect();
    let results = join_all(attempts.iter().map(|r| reviews.insert(r, &[]))).await;
    let ok: Vec<&Review> = attempts.iter().zip(&results).filter(|(_, r)| r.is_ok()).map(|(a, _)| a).collect();
    assert_eq!(ok.len(), 1, "exactly one concurrent review per buyer may land: {results:?}");
    assert!(
        results.iter().filter(|r| r.is_err()).all(|r| matches!(r, Err(Error::Conflict { .. }))),
        "losers get Conflict"
    );
    let stored = products.get(p.id).await.expect("get").expect("exists");
    assert_eq!(
        (stored.stats.rating_sum, stored.stats.rating_count),
        (7 + u64::from(ok[0].rating.stars()), 3),
        "stats must count the winning review exactly once"
    );

    // Stats survive a listing update.
    let edited = Product {
        title: "Reviewed product v2".into(),
        version: p.version + 1,
        updated_at: at(0) + Duration::seconds(1),
        ..p.clone()
    };
    products.update(&edited, p.version, &[]).await.expect("update");
    let stored = products.get(p.id).await.expect("get").expect("exists");
    assert_eq!(stored.stats.rating_count, 3, "update must not reset review stats");
}

/// An approved, free product ("Threaded product") by a new vendor, created
/// now: a fixture for concurrency checks.
///
/// # Panics
/// Never in practice (the fixture is valid).
pub fn live_product() -> Product {
    let input = NewProduct {
        title: "Threaded product".into(),
        description: String::new(),
        short_description: String::new(),
        kind: ProductKind::AiAgent,
        categories: vec!["testing".into()],
        tags: vec![],
        pricing: Pricing::Free,
        media: vec![],
    };
    let mut p = Product::create(ProductId::new(), UserId::new(), input, chrono::Utc::now()).expect("valid product");
    p.status = ProductStatus::Approved;
    p
}

/// The stats counters under real-thread concurrency: `2 * buyers` tasks,
/// spawned with `spawn`, each record a download of one product and insert a
/// review from one of `buyers` buyers (each buyer tries twice).
///
/// Asserts that every task reports; that every rejected review is a
/// `conflict`; that exactly one review per buyer lands; that the product's
/// download count is `2 * buyers`, its rating count `buyers` and its rating
/// sum exactly the stars of the reviews that landed; and that the counters
/// never bump the listing's version. `products` and `reviews` must be
/// fresh, empty ports of the same backend.
///
/// # Panics
/// When any of the above does not hold, or a port call other than a
/// rejected duplicate review fails.
pub async fn stats_stay_exact_across_threads(
    products: Arc<dyn ProductRepository>,
    reviews: Arc<dyn ReviewRepository>,
    buyers: u64,
    spawn: Spawn<'_>,
) {
    let p = live_product();
    products.insert(&p, &[]).await.expect("insert product");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for i in 0..2 * buyers {
        let (products, reviews, id, tx) = (products.clone(), reviews.clone(), p.id, tx.clone());
        spawn(Box::pin(async move {
            products.record_download(id, &[]).await.expect("record download");
            // Each buyer tries twice: only the first of each lands.
            let buyer = UserId::from_uuid(uuid::Uuid::from_u128(u128::from(i % buyers) + 1));
            let stars = u8::try_from(i % 5).expect("below 5") + 1;
            let review = Review {
                id: ReviewId::new(),
                product_id: id,
                buyer_id: buyer,
                rating: Rating::new(stars).expect("1 to 5 stars"),
                body: String::new(),
                created_at: chrono::Utc::now(),
            };
            let _ = tx.send(reviews.insert(&review, &[]).await.map(|()| u64::from(stars)));
        }));
    }
    drop(tx);
    let (mut reported, mut landed) = (0, Vec::new());
    while let Some(result) = rx.recv().await {
        reported += 1;
        match result {
            Ok(stars) => landed.push(stars),
            Err(e) => assert_eq!(e.code(), "conflict", "{e:?}"),
        }
    }
    assert_eq!(reported, 2 * buyers, "every task reports");
    let stored = products.get(p.id).await.expect("get").expect("product");
    assert_eq!(stored.stats.downloads, 2 * buyers);
    assert_eq!(u64::try_from(landed.len()).expect("fits"), buyers, "one review per buyer");
    assert_eq!(stored.stats.rating_count, buyers);
    assert_eq!(stored.stats.rating_sum, landed.iter().sum::<u64>());
    assert_eq!(stored.version, 1, "counters never bump the listing's version");
}
