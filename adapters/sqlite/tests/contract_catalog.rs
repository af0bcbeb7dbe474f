//! The catalog and user contract suites against SQLite, plus real-thread
//! checks of the stats counters.

mod common;

use std::sync::Arc;

use bazaar_core::testkit;
use common::{committed, fresh, spawn};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn products_contract() {
    let db = fresh().await;
    testkit::catalog::products(&db.store.products(), &committed(&db.store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn products_concurrency_contract() {
    let db = fresh().await;
    testkit::catalog::products_concurrency(&db.store.products(), &committed(&db.store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn product_search_contract() {
    let db = fresh().await;
    testkit::catalog::product_search(&db.store.products()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reviews_contract() {
    let db = fresh().await;
    testkit::catalog::reviews(&db.store.products(), &db.store.reviews(), &committed(&db.store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn users_contract() {
    let db = fresh().await;
    testkit::users::users(&db.store.users(), &committed(&db.store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stats_stay_exact_across_threads() {
    let db = fresh().await;
    let (products, reviews) = (Arc::new(db.store.products()), Arc::new(db.store.reviews()));
    testkit::catalog::stats_stay_exact_across_threads(products, reviews, 50, &spawn).await;
}
