//! Runs the asset contract suites against [`MemoryAssets`] and [`MemoryBlobStore`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bazaar_core::testkit::assets as suite;
use bazaar_memory::{MemoryAssets, MemoryBlobStore, MemoryOutbox};

fn spawn(f: Pin<Box<dyn Future<Output = ()> + Send + 'static>>) {
    tokio::spawn(f);
}

#[tokio::test]
async fn asset_repository_contract() {
    suite::asset_repository_contract(&MemoryAssets::new(MemoryOutbox::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_same_version_inserts_store_one() {
    suite::concurrent_same_version_inserts_store_one(Arc::new(MemoryAssets::new(MemoryOutbox::new())), &spawn).await;
}

#[tokio::test]
async fn blob_store_contract() {
    suite::blob_store_contract(&MemoryBlobStore::new()).await;
}
