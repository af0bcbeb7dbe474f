//! Runs the notification contract suite against [`MemoryNotifications`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bazaar_core::testkit::notifications as suite;
use bazaar_memory::MemoryNotifications;

/// Runs a suite's racing attempt as a task on the multi-threaded runtime.
fn spawn(f: Pin<Box<dyn Future<Output = ()> + Send + 'static>>) {
    tokio::spawn(f);
}

#[tokio::test]
async fn insert_dedup() {
    suite::insert_dedup(&MemoryNotifications::new()).await;
}

#[tokio::test]
async fn insert_enabled() {
    suite::insert_enabled(&MemoryNotifications::new()).await;
}

#[tokio::test]
async fn insert_enabled_all() {
    suite::insert_enabled_all(&MemoryNotifications::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn insert_dedup_race() {
    suite::insert_dedup_race(Arc::new(MemoryNotifications::new()), &spawn).await;
}

#[tokio::test]
async fn listing() {
    suite::listing(&MemoryNotifications::new()).await;
}

#[tokio::test]
async fn status_updates() {
    suite::status_updates(&MemoryNotifications::new()).await;
}

#[tokio::test]
async fn preferences() {
    suite::preferences(&MemoryNotifications::new()).await;
}
