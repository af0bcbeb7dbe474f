//! The asset-metadata contract suite against PostgreSQL (blobs are not stored
//! in the database, so the blob-store suite does not apply).

mod common;

use std::sync::Arc;

use bazaar_core::testkit::assets as suite;
use common::{fresh, spawn};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn asset_repository_contract() {
    let db = fresh().await;
    suite::asset_repository_contract(&db.store.assets()).await;
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_same_version_inserts_store_one() {
    let db = fresh().await;
    suite::concurrent_same_version_inserts_store_one(Arc::new(db.store.assets()), &spawn).await;
    db.drop_schema().await;
}
