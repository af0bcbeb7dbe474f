//! Runs the webhook contract suite against [`MemoryWebhooks`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bazaar_core::testkit::webhooks as suite;
use bazaar_memory::MemoryWebhooks;

/// Runs a suite's claimer as a task on the multi-threaded runtime.
fn spawn(f: Pin<Box<dyn Future<Output = ()> + Send + 'static>>) {
    tokio::spawn(f);
}

#[tokio::test]
async fn endpoints() {
    suite::endpoints(&MemoryWebhooks::new()).await;
}

#[tokio::test]
async fn queue() {
    suite::queue(&MemoryWebhooks::new()).await;
}

#[tokio::test]
async fn list_deliveries() {
    suite::list_deliveries(&MemoryWebhooks::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claims() {
    suite::concurrent_claims(Arc::new(MemoryWebhooks::new()), &spawn).await;
}
