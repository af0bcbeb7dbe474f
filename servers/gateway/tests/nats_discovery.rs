//! Discovery through the real NATS JetStream KV: a replica that registers
//! (with the core's `Advertiser`) starts receiving traffic; one that stops
//! heartbeating stops receiving it once its TTL lapses.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bazaar_core::resilience::registry::{Advertiser, Registration, ServiceDirectory};
use bazaar_gateway::{Gateway, GatewayConfig};
use bazaar_nats::{DirectoryOptions, NatsDirectory, async_nats};
use common::*;
use http::StatusCode;

fn nats_url() -> String {
    std::env::var("BAZAAR_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

async fn directory(bucket: &str) -> NatsDirectory {
    let options = DirectoryOptions { bucket: bucket.into(), ..DirectoryOptions::default() };
    match NatsDirectory::connect(&nats_url(), options).await {
        Ok(d) => d,
        Err(e) => panic!(
            "NATS with JetStream is needed at {} ({e}); start it with: start-stop-daemon --start --oknodo --background \
             --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server (or set BAZAAR_TEST_NATS_URL)",
            nats_url()
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_registered_in_nats_kv_get_traffic_until_they_go_silent() {
    let bucket = format!("bztest_gw_{}", uuid::Uuid::now_v7().simple());
    let gateway_side = Arc::new(directory(&bucket).await);
    let replica_side = Arc::new(directory(&bucket).await);
    let (steady, silent) = (Upstream::start("steady").await, Upstream::start("silent").await);

    let config = GatewayConfig::from_toml(
        "[discovery]\nrefresh_ms = 100\n[pools.api]\nservice = \"http\"\nstrategy = \"round_robin\"\nhealth = { enabled = false }\n[[routes]]\nprefix = \"/\"\npool = \"api\"\n",
    )
    .unwrap();
    let gw = run(Gateway::builder(config).directory(gateway_side).build().unwrap()).await;

    // The steady replica advertises itself the way `bazaar http --advertise-addr` does.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let advertising = tokio::spawn(
        Advertiser::new(
            replica_side.clone(),
            Registration::new("http", "steady-1", steady.url()).ttl(Duration::from_secs(1)),
        )
        .run(async move {
            let _ = stopped.await;
        }),
    );
    // The silent one registers once and never heartbeats.
    replica_side
        .register(&Registration::new("http", "silent-1", silent.url()).ttl(Duration::from_secs(1)))
        .await
        .unwrap();

    let mut served = (false, false);
    for _ in 0..100 {
        match get(&gw.url("/x")).await.body.as_str() {
            "steady" => served.0 = true,
            "silent" => served.1 = true,
            _ => {}
        }
        if served == (true, true) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(served, (true, true), "both registered replicas receive traffic");

    // After its TTL the silent replica is dropped; the heartbeating one stays.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = silent.hits();
    for _ in 0..10 {
        let answer = get(&gw.url("/x")).await;
        assert_eq!((answer.status, answer.body.as_str()), (StatusCode::OK, "steady"));
    }
    assert_eq!(silent.hits(), before, "a replica that stopped heartbeating gets nothing");

    // Deregistration on shutdown empties the pool.
    stop.send(()).unwrap();
    advertising.await.unwrap().unwrap();
    let mut empty = false;
    // Generous: the machine may be busy; what matters is that it happens.
    for _ in 0..300 {
        if get(&gw.url("/x")).await.status == StatusCode::SERVICE_UNAVAILABLE {
            empty = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(empty, "a deregistered replica leaves the pool");
    let js = async_nats::jetstream::new(async_nats::connect(nats_url()).await.unwrap());
    js.delete_key_value(&bucket).await.unwrap();
}
