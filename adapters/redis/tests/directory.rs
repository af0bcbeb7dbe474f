//! `RedisDirectory` against real Redis: the core's directory contract suite
//! and the advertiser keeping a replica registered.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bazaar_core::resilience::registry::{Advertiser, Registration, ServiceDirectory};
use bazaar_redis::RedisDirectory;

async fn directory(test: &str) -> RedisDirectory {
    let client = redis::Client::open(common::redis_url()).unwrap();
    RedisDirectory::new(common::connect().await, client, common::fresh_prefix(test), Duration::from_secs(10))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_directory_meets_the_contract() {
    let d = directory("dir-contract").await;
    bazaar_core::testkit::directory::service_directory(&d, "contract", Duration::from_millis(800)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_advertiser_keeps_a_replica_registered_then_deregisters_it() {
    let d = Arc::new(directory("dir-advertise").await);
    let registration = Registration::new("http", "replica-1", "127.0.0.1:8081").ttl(Duration::from_millis(600));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(Advertiser::new(d.clone(), registration).run(async move {
        let _ = stopped.await;
    }));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let live = d.instances("http").await.unwrap();
    assert_eq!(live.len(), 1, "heartbeats kept it past three TTLs");
    assert!(live[0].since_heartbeat <= Duration::from_millis(600));
    stop.send(()).unwrap();
    running.await.unwrap().unwrap();
    assert!(d.instances("http").await.unwrap().is_empty());
}
