//! The catalog and user contract suites against the in-memory adapters,
//! plus real-thread concurrency checks the single-task suites cannot make.

use std::sync::Arc;

use bazaar_core::auth::UserRepository;
use bazaar_core::catalog::ProductRepository;
use bazaar_core::ids::UserId;
use bazaar_core::testkit;
use bazaar_memory::{MemoryCatalog, MemoryOutbox, MemoryProducts, MemoryUsers};

#[tokio::test]
async fn products_contract() {
    let outbox = MemoryOutbox::new();
    let repo = MemoryProducts::new(outbox.clone());
    testkit::catalog::products(&repo, &|| outbox.events()).await;
}

#[tokio::test]
async fn products_concurrency_contract() {
    let outbox = MemoryOutbox::new();
    let repo = MemoryProducts::new(outbox.clone());
    testkit::catalog::products_concurrency(&repo, &|| outbox.events()).await;
}

#[tokio::test]
async fn product_search_contract() {
    testkit::catalog::product_search(&MemoryProducts::new(MemoryOutbox::new())).await;
}

#[tokio::test]
async fn reviews_contract() {
    let outbox = MemoryOutbox::new();
    let catalog = MemoryCatalog::new(outbox.clone());
    testkit::catalog::reviews(&catalog.products(), &catalog.reviews(), &|| outbox.events()).await;
}

#[tokio::test]
async fn users_contract() {
    let outbox = MemoryOutbox::new();
    testkit::users::users(&MemoryUsers::new(outbox.clone()), &|| outbox.events()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stats_stay_exact_across_threads() {
    let catalog = MemoryCatalog::new(MemoryOutbox::new());
    let (products, reviews) = (Arc::new(catalog.products()), Arc::new(catalog.reviews()));
    testkit::catalog::stats_stay_exact_across_threads(products, reviews, 100, &|f| {
        tokio::spawn(f);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_update_per_version_across_threads() {
    let products: Arc<dyn ProductRepository> = Arc::new(MemoryProducts::new(MemoryOutbox::new()));
    let p = testkit::catalog::live_product();
    products.insert(&p, &[]).await.unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let (products, mut next) = (products.clone(), p.clone());
            next.title = format!("Writer {i}");
            next.version = 2;
            tokio::spawn(async move { products.update(&next, 1, &[]).await })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => wins += 1,
            Err(e) => assert_eq!(e.code(), "version_mismatch"),
        }
    }
    assert_eq!(wins, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_account_per_email_across_threads() {
    let users: Arc<dyn UserRepository> = Arc::new(MemoryUsers::new(MemoryOutbox::new()));
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let users = users.clone();
            tokio::spawn(async move {
                let user = bazaar_core::auth::User {
                    id: UserId::new(),
                    email: bazaar_core::auth::Email::parse("same@example.com").unwrap(),
                    name: "Same".into(),
                    role: bazaar_core::auth::Role::Vendor,
                    password_hash: "$argon2id$x".into(),
                    created_at: chrono::Utc::now(),
                };
                users.insert(&user, &[]).await
            })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        if t.await.unwrap().is_ok() {
            wins += 1;
        }
    }
    assert_eq!(wins, 1);
}
