//! The notification contract suite against SQLite.

mod common;

use std::sync::Arc;

use bazaar_core::testkit::notifications as suite;
use common::{fresh, spawn};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn insert_dedup() {
    let db = fresh().await;
    suite::insert_dedup(&db.store.notifications()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn insert_enabled() {
    let db = fresh().await;
    suite::insert_enabled(&db.store.notifications()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn insert_enabled_all() {
    let db = fresh().await;
    suite::insert_enabled_all(&db.store.notifications()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn insert_dedup_race() {
    let db = fresh().await;
    suite::insert_dedup_race(Arc::new(db.store.notifications()), &spawn).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn listing() {
    let db = fresh().await;
    suite::listing(&db.store.notifications()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn status_updates() {
    let db = fresh().await;
    suite::status_updates(&db.store.notifications()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn preferences() {
    let db = fresh().await;
    suite::preferences(&db.store.notifications()).await;
}
