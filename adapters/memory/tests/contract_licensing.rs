//! Runs the licensing contract suite against [`MemoryLicenses`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bazaar_core::testkit::licensing as suite;
use bazaar_memory::{MemoryLicenses, MemoryOutbox};

fn fresh() -> (Arc<MemoryLicenses>, MemoryOutbox) {
    let outbox = MemoryOutbox::new();
    (Arc::new(MemoryLicenses::new(outbox.clone())), outbox)
}

/// Runs a suite's racing attempt as a task on the multi-threaded runtime.
fn spawn(f: Pin<Box<dyn Future<Output = ()> + Send + 'static>>) {
    tokio::spawn(f);
}

#[tokio::test]
async fn insert_and_read() {
    let (repo, outbox) = fresh();
    suite::insert_and_read(repo.as_ref(), &|| outbox.events()).await;
}

#[tokio::test]
async fn insert_all_rules() {
    let (repo, outbox) = fresh();
    suite::insert_all_rules(repo.as_ref(), &|| outbox.events()).await;
}

#[tokio::test]
async fn activation_rules() {
    suite::activation_rules(fresh().0.as_ref()).await;
}

#[tokio::test]
async fn update_status_rules() {
    let (repo, outbox) = fresh();
    suite::update_status_rules(repo.as_ref(), &|| outbox.events()).await;
}

#[tokio::test]
async fn consume_download_rules() {
    suite::consume_download_rules(fresh().0.as_ref()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_activations_never_exceed_the_limit() {
    suite::concurrent_activations_never_exceed_the_limit(fresh().0, &spawn).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_duplicate_inserts_store_one() {
    let (repo, outbox) = fresh();
    suite::concurrent_duplicate_inserts_store_one(repo, &|| outbox.events(), &spawn).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_downloads_never_exceed_the_limit() {
    suite::concurrent_downloads_never_exceed_the_limit(fresh().0, &spawn).await;
}
