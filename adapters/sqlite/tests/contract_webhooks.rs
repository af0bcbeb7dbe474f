//! The webhook contract suite against SQLite.

mod common;

use std::sync::Arc;

use bazaar_core::testkit::webhooks as suite;
use common::{fresh, spawn};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn endpoints() {
    let db = fresh().await;
    suite::endpoints(&db.store.webhooks()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn queue() {
    let db = fresh().await;
    suite::queue(&db.store.webhooks()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn list_deliveries() {
    let db = fresh().await;
    suite::list_deliveries(&db.store.webhooks()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claims() {
    let db = fresh().await;
    suite::concurrent_claims(Arc::new(db.store.webhooks()), &spawn).await;
}
