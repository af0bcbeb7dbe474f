//! `CachedProducts` over the in-memory repository and real Redis: the
//! catalog contract still holds through the cache, reads hit, writes
//! through the decorator invalidate, and a dead Redis never fails a read.

mod common;

use bazaar_core::catalog::{NewProduct, Pricing, Product, ProductKind, ProductRepository};
use bazaar_core::ids::{ProductId, UserId};
use bazaar_core::testkit;
use bazaar_memory::{MemoryOutbox, MemoryProducts};
use bazaar_redis::{CacheConfig, CachedProducts, ConnectionManagerConfig};
use redis::AsyncCommands;

async fn cached(test: &str) -> (CachedProducts<MemoryProducts>, MemoryOutbox, String) {
    let outbox = MemoryOutbox::new();
    let prefix = common::fresh_prefix(test);
    let repo = CachedProducts::new(
        MemoryProducts::new(outbox.clone()),
        common::connect().await,
        prefix.clone(),
        CacheConfig::default(),
    );
    (repo, outbox, prefix)
}

fn product(title: &str) -> Product {
    let input = NewProduct {
        title: title.into(),
        description: String::new(),
        short_description: String::new(),
        kind: ProductKind::N8nWorkflow,
        categories: vec!["ops".into()],
        tags: vec![],
        pricing: Pricing::Free,
        media: vec![],
    };
    Product::create(ProductId::new(), UserId::new(), input, chrono::Utc::now()).unwrap()
}

fn retitled(p: &Product, title: &str) -> Product {
    Product { title: title.into(), version: p.version + 1, ..p.clone() }
}

#[tokio::test]
async fn products_contract_through_the_cache() {
    let (repo, outbox, _) = cached("products-contract").await;
    testkit::catalog::products(&repo, &|| outbox.events()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn products_concurrency_contract_through_the_cache() {
    let (repo, outbox, _) = cached("products-concurrency").await;
    testkit::catalog::products_concurrency(&repo, &|| outbox.events()).await;
}

#[tokio::test]
async fn product_search_contract_through_the_cache() {
    testkit::catalog::product_search(&cached("products-search").await.0).await;
}

#[tokio::test]
async fn a_read_fills_the_cache_and_the_next_read_hits_it() {
    let (repo, _, prefix) = cached("products-hit").await;
    let mut conn = common::connect().await;
    let p = product("Lead enricher");
    repo.insert(&p, &[]).await.unwrap();
    let entry = format!("{prefix}product:{}", p.id);
    // Let the insert's fill guard lapse without sleeping: drop it.
    conn.del::<_, ()>(format!("{prefix}product-guard:{}", p.id)).await.unwrap();

    assert_eq!(repo.get(p.id).await.unwrap(), Some(p.clone()), "miss reads through");
    let json: String = conn.get(&entry).await.expect("the miss filled the cache");
    assert_eq!(serde_json::from_str::<Product>(&json).unwrap(), p, "entries are the product as JSON");
    let ttl: i64 = conn.pttl(&entry).await.unwrap();
    assert!(ttl > 0 && ttl <= 60_000, "entries carry the TTL, pttl {ttl}");

    // Change the product behind the decorator's back: a hit still serves the cached copy.
    repo.get_ref().update(&retitled(&p, "Changed behind the cache"), 1, &[]).await.unwrap();
    assert_eq!(repo.get(p.id).await.unwrap().unwrap().title, "Lead enricher", "second read is a hit");

    // `invalidate` is the way out for writers that bypass the decorator.
    repo.invalidate(p.id).await;
    assert_eq!(repo.get(p.id).await.unwrap().unwrap().title, "Changed behind the cache");
}

#[tokio::test]
async fn get_many_serves_hits_from_the_cache_and_fills_the_misses() {
    let (repo, _, prefix) = cached("products-get-many").await;
    let mut conn = common::connect().await;
    let (a, b) = (product("Ticket router"), product("Churn predictor"));
    for p in [&a, &b] {
        repo.insert(p, &[]).await.unwrap();
        conn.del::<_, ()>(format!("{prefix}product-guard:{}", p.id)).await.unwrap();
    }
    repo.get(a.id).await.unwrap();
    // Both changed behind the cache: `a` is cached, `b` is not yet.
    repo.get_ref().update(&retitled(&a, "Ticket router v2"), 1, &[]).await.unwrap();
    repo.get_ref().update(&retitled(&b, "Churn predictor v2"), 1, &[]).await.unwrap();

    let titles = |found: Vec<Product>| {
        let mut t: Vec<String> = found.into_iter().map(|p| p.title).collect();
        t.sort_unstable();
        t
    };
    let found = repo.get_many(&[a.id, ProductId::new(), b.id, a.id]).await.unwrap();
    assert_eq!(titles(found), ["Churn predictor v2", "Ticket router"], "a hit for a, b read through, once each");
    assert!(conn.exists::<_, bool>(format!("{prefix}product:{}", b.id)).await.unwrap(), "the miss filled");
    let v3 = Product { title: "Churn predictor v3".into(), version: 3, ..b.clone() };
    repo.get_ref().update(&v3, 2, &[]).await.unwrap();
    let found = repo.get_many(&[b.id, a.id]).await.unwrap();
    assert_eq!(titles(found), ["Churn predictor v2", "Ticket router"], "both are hits now");
}

#[tokio::test]
async fn writes_through_the_decorator_invalidate() {
    let (repo, _, prefix) = cached("products-invalidate").await;
    let mut conn = common::connect().await;
    let p = product("Invoice parser");
    repo.insert(&p, &[]).await.unwrap();
    let guard = format!("{prefix}product-guard:{}", p.id);
    let entry = format!("{prefix}product:{}", p.id);
    conn.del::<_, ()>(&guard).await.unwrap();
    repo.get(p.id).await.unwrap();
    assert!(conn.exists::<_, bool>(&entry).await.unwrap());

    let edited = retitled(&p, "Invoice parser v2");
    repo.update(&edited, 1, &[]).await.unwrap();
    assert!(!conn.exists::<_, bool>(&entry).await.unwrap(), "update drops the entry");
    assert_eq!(repo.get(p.id).await.unwrap().unwrap().title, "Invoice parser v2");
    assert!(
        !conn.exists::<_, bool>(&entry).await.unwrap(),
        "while the fill guard is up a read does not re-fill (a racing stale fill could not either)"
    );

    conn.del::<_, ()>(&guard).await.unwrap();
    repo.get(p.id).await.unwrap();
    repo.record_download(p.id, &[]).await.unwrap();
    assert_eq!(repo.get(p.id).await.unwrap().unwrap().stats.downloads, 1, "record_download invalidates");

    // A failed write invalidates too (it might have committed before failing).
    conn.del::<_, ()>(&guard).await.unwrap();
    repo.get(p.id).await.unwrap();
    assert!(repo.update(&edited, 1, &[]).await.is_err(), "stale version");
    assert!(!conn.exists::<_, bool>(&entry).await.unwrap());
}

#[tokio::test]
async fn a_dead_redis_never_fails_reads_or_writes() {
    let client = redis::Client::open("redis://127.0.0.1:1/").unwrap();
    let conn = redis::aio::ConnectionManager::new_lazy_with_config(
        client,
        ConnectionManagerConfig::new().set_number_of_retries(0),
    )
    .unwrap();
    let repo = CachedProducts::new(MemoryProducts::new(MemoryOutbox::new()), conn, "dead:", CacheConfig::default());
    let p = product("Still served");
    repo.insert(&p, &[]).await.unwrap();
    assert_eq!(repo.get(p.id).await.unwrap(), Some(p.clone()));
    repo.update(&retitled(&p, "Still written"), 1, &[]).await.unwrap();
    assert_eq!(repo.get(p.id).await.unwrap().unwrap().title, "Still written");
    repo.record_download(p.id, &[]).await.unwrap();
    assert_eq!(repo.get(ProductId::new()).await.unwrap(), None);
    assert_eq!(repo.get_many(&[p.id, ProductId::new()]).await.unwrap().len(), 1);
}
