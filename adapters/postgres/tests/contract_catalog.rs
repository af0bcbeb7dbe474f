//! The catalog and user contract suites against PostgreSQL, plus real-thread
//! checks of the stats counters.

mod common;

use std::sync::Arc;

use bazaar_core::catalog::{
    NewProduct, Pricing, Product, ProductKind, ProductRepository, ProductStatus, Rating, Review, ReviewRepository,
};
use bazaar_core::ids::{ProductId, ReviewId, UserId};
use bazaar_core::testkit;
use common::{committed, fresh};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn products_contract() {
    let db = fresh().await;
    testkit::catalog::products(&db.store.products(), &committed(&db.store)).await;
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn products_concurrency_contract() {
    let db = fresh().await;
    testkit::catalog::products_concurrency(&db.store.products(), &committed(&db.store)).await;
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn product_search_contract() {
    let db = fresh().await;
    testkit::catalog::product_search(&db.store.products()).await;
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reviews_contract() {
    let db = fresh().await;
    testkit::catalog::reviews(&db.store.products(), &db.store.reviews(), &committed(&db.store)).await;
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn users_contract() {
    let db = fresh().await;
    testkit::users::users(&db.store.users(), &committed(&db.store)).await;
    db.drop_schema().await;
}

fn live_product() -> Product {
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
    let mut p = Product::create(ProductId::new(), UserId::new(), input, chrono::Utc::now()).unwrap();
    p.status = ProductStatus::Approved;
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stats_stay_exact_across_threads() {
    let db = fresh().await;
    let products: Arc<dyn ProductRepository> = Arc::new(db.store.products());
    let reviews: Arc<dyn ReviewRepository> = Arc::new(db.store.reviews());
    let p = live_product();
    products.insert(&p, &[]).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..100u64 {
        let (products, reviews, id) = (products.clone(), reviews.clone(), p.id);
        tasks.push(tokio::spawn(async move {
            products.record_download(id).await.unwrap();
            // 50 buyers, each trying twice: only the first of each lands.
            let buyer = UserId::from_uuid(uuid::Uuid::from_u128(u128::from(i % 50) + 1));
            let stars = u8::try_from(i % 5).unwrap() + 1;
            let review = Review {
                id: ReviewId::new(),
                product_id: id,
                buyer_id: buyer,
                rating: Rating::new(stars).unwrap(),
                body: String::new(),
                created_at: chrono::Utc::now(),
            };
            reviews.insert(&review, &[]).await.map(|()| u64::from(stars))
        }));
    }
    let mut landed = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(stars) => landed.push(stars),
            Err(e) => assert_eq!(e.code(), "conflict", "{e:?}"),
        }
    }
    let stored = products.get(p.id).await.unwrap().unwrap();
    assert_eq!(stored.stats.downloads, 100);
    assert_eq!(landed.len(), 50, "one review per buyer");
    assert_eq!(stored.stats.rating_count, 50);
    assert_eq!(stored.stats.rating_sum, landed.iter().sum::<u64>());
    assert_eq!(stored.version, 1, "counters never bump the listing's version");
    db.drop_schema().await;
}
