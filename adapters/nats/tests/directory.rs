//! `NatsDirectory` against a real NATS server: the core's directory
//! contract suite, two processes seeing each other, and the advertiser
//! keeping a replica registered.

// Shared with the bus tests; this file uses only the client.
#[allow(dead_code)]
mod common;

use std::sync::Arc;
use std::time::Duration;

use bazaar_core::resilience::registry::{Advertiser, Registration, ServiceDirectory};
use bazaar_core::testkit::directory::service_directory;
use bazaar_nats::{DirectoryOptions, NatsDirectory, async_nats};

/// A directory on a bucket no other test (or run) uses; delete it after.
async fn fresh() -> (NatsDirectory, String) {
    let bucket = format!("bztest_{}", uuid::Uuid::now_v7().simple());
    let options = DirectoryOptions { bucket: bucket.clone(), ..DirectoryOptions::default() };
    (NatsDirectory::connect_with(common::client().await, options).await.expect("open the bucket"), bucket)
}

async fn delete(bucket: &str) {
    let js = async_nats::jetstream::new(common::client().await);
    js.delete_key_value(bucket).await.expect("delete the test bucket");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_directory_meets_the_contract() {
    let (directory, bucket) = fresh().await;
    service_directory(&directory, "contract", Duration::from_secs(1)).await;
    delete(&bucket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_one_view_and_ttls_above_the_bucket_limit_are_refused() {
    let (one, bucket) = fresh().await;
    let options = DirectoryOptions { bucket: bucket.clone(), ..DirectoryOptions::default() };
    let two = NatsDirectory::connect_with(common::client().await, options).await.unwrap();
    one.register(&Registration::new("api", "api-1", "http://127.0.0.1:8081")).await.unwrap();
    let seen = two.instances("api").await.unwrap();
    assert_eq!(seen.len(), 1, "another connection sees the registration");
    assert_eq!(seen[0].address, "http://127.0.0.1:8081");
    two.heartbeat("api", "api-1").await.expect("and can heartbeat it");
    let too_long = Registration::new("api", "api-2", "http://127.0.0.1:8082").ttl(Duration::from_secs(3600));
    assert_eq!(one.register(&too_long).await.unwrap_err().kind(), bazaar_core::ErrorKind::Invalid);
    delete(&bucket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_advertiser_keeps_a_replica_registered_then_deregisters_it() {
    let (directory, bucket) = fresh().await;
    let directory = Arc::new(directory);
    let registration = Registration::new("http", "replica-1", "127.0.0.1:8081").ttl(Duration::from_secs(1));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(Advertiser::new(directory.clone(), registration).run(async move {
        let _ = stopped.await;
    }));
    // Three TTLs later it is still there: the heartbeats kept it.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(directory.instances("http").await.unwrap().len(), 1);
    stop.send(()).unwrap();
    running.await.unwrap().unwrap();
    assert!(directory.instances("http").await.unwrap().is_empty(), "deregistered on shutdown");
    delete(&bucket).await;
}
