//! The licensing contract suite against SQLite, including 64 concurrent
//! activations against a limit of 5.

mod common;

use std::sync::Arc;

use bazaar_core::testkit::licensing as suite;
use common::{committed, fresh, spawn};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn insert_and_read() {
    let db = fresh().await;
    suite::insert_and_read(&db.store.licenses(), &committed(&db.store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn insert_all_rules() {
    let db = fresh().await;
    suite::insert_all_rules(&db.store.licenses(), &committed(&db.store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn activation_rules() {
    let db = fresh().await;
    suite::activation_rules(&db.store.licenses()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn update_status_rules() {
    let db = fresh().await;
    suite::update_status_rules(&db.store.licenses(), &committed(&db.store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn consume_download_rules() {
    let db = fresh().await;
    suite::consume_download_rules(&db.store.licenses()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_activations_never_exceed_the_limit() {
    let db = fresh().await;
    suite::concurrent_activations_never_exceed_the_limit(Arc::new(db.store.licenses()), &spawn).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_duplicate_inserts_store_one() {
    let db = fresh().await;
    suite::concurrent_duplicate_inserts_store_one(Arc::new(db.store.licenses()), &committed(&db.store), &spawn).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_downloads_never_exceed_the_limit() {
    let db = fresh().await;
    suite::concurrent_downloads_never_exceed_the_limit(Arc::new(db.store.licenses()), &spawn).await;
}
