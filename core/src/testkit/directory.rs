//! Contract suite for [`ServiceDirectory`]: registration, replacement,
//! heartbeats, TTL expiry, deregistration and change notification, the same
//! from every backend (in process, NATS JetStream KV).
//!
//! Backends keep their own time (a JetStream server's, a Redis server's),
//! so TTL checks wait for real: the suite takes a short `ttl` and allows a
//! generous margin after it, asserting only what must hold at any speed.

use std::time::Duration;

use futures::StreamExt;

use crate::ErrorKind;
use crate::resilience::registry::{Registration, ServiceDirectory};

/// Runs every check against `directory`. `prefix` must be unique per run
/// (service names start with it) so earlier runs on a shared backend cannot
/// interfere; `ttl` is the TTL the suite registers with (1–2 s keeps it
/// quick).
///
/// # Panics
/// When the directory breaks the contract.
pub async fn service_directory(directory: &dyn ServiceDirectory, prefix: &str, ttl: Duration) {
    register_list_replace(directory, &format!("{prefix}-list"), ttl).await;
    invalid_registrations_are_rejected(directory, &format!("{prefix}-invalid")).await;
    deregister_removes_at_once(directory, &format!("{prefix}-dereg"), ttl).await;
    heartbeats_keep_alive_and_silence_expires(directory, &format!("{prefix}-ttl"), ttl).await;
    watch_announces_changes(directory, &format!("{prefix}-watch"), ttl).await;
}

fn ids(instances: &[crate::resilience::registry::Instance]) -> Vec<&str> {
    instances.iter().map(|i| i.id.as_str()).collect()
}

async fn register_list_replace(d: &dyn ServiceDirectory, service: &str, ttl: Duration) {
    let other = format!("{service}-other");
    d.register(&Registration::new(service, "b", "http://127.0.0.1:2").ttl(ttl * 10)).await.expect("register b");
    d.register(&Registration::new(service, "a", "http://127.0.0.1:1").weight(3).meta("zone", "z1").ttl(ttl * 10))
        .await
        .expect("register a");
    d.register(&Registration::new(&other, "c", "http://127.0.0.1:3").ttl(ttl * 10)).await.expect("register c");
    let live = d.instances(service).await.expect("list");
    assert_eq!(ids(&live), ["a", "b"], "sorted by id, other services excluded");
    assert_eq!(live[0].address, "http://127.0.0.1:1");
    assert_eq!(live[0].weight, 3);
    assert_eq!(live[0].metadata.get("zone").map(String::as_str), Some("z1"));
    assert_eq!(live[0].service, service);
    d.register(&Registration::new(service, "a", "http://127.0.0.1:9").ttl(ttl * 10)).await.expect("re-register a");
    let live = d.instances(service).await.expect("list");
    assert_eq!(ids(&live), ["a", "b"], "registering an id again replaces it");
    assert_eq!(live[0].address, "http://127.0.0.1:9");
    assert!(d.instances(&format!("{service}-none")).await.expect("list").is_empty(), "unknown service: none");
    for (s, id) in [(service, "a"), (service, "b"), (other.as_str(), "c")] {
        d.deregister(s, id).await.expect("clean up");
    }
}

async fn invalid_registrations_are_rejected(d: &dyn ServiceDirectory, service: &str) {
    for bad in [
        Registration::new("", "a", "http://127.0.0.1:1"),
        Registration::new(service, "", "http://127.0.0.1:1"),
        Registration::new(service, "a", ""),
    ] {
        let err = d.register(&bad).await.expect_err("an empty field is invalid");
        assert_eq!(err.kind(), ErrorKind::Invalid, "{bad:?}: {err}");
    }
    assert!(d.instances(service).await.expect("list").is_empty());
}

async fn deregister_removes_at_once(d: &dyn ServiceDirectory, service: &str, ttl: Duration) {
    d.register(&Registration::new(service, "x", "http://127.0.0.1:1").ttl(ttl * 10)).await.expect("register");
    d.deregister(service, "x").await.expect("deregister");
    assert!(d.instances(service).await.expect("list").is_empty(), "gone at once, not after the TTL");
    d.deregister(service, "x").await.expect("deregistering an unknown instance is not an error");
    let err = d.heartbeat(service, "x").await.expect_err("a removed instance cannot heartbeat");
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

async fn heartbeats_keep_alive_and_silence_expires(d: &dyn ServiceDirectory, service: &str, ttl: Duration) {
    d.register(&Registration::new(service, "beating", "http://127.0.0.1:1").ttl(ttl)).await.expect("register");
    d.register(&Registration::new(service, "silent", "http://127.0.0.1:2").ttl(ttl)).await.expect("register");
    // Heartbeat "beating" at a quarter of the TTL for three TTLs: it must
    // outlive them, while "silent" must be gone by the end.
    let step = ttl / 4;
    for _ in 0..12 {
        tokio::time::sleep(step).await;
        d.heartbeat(service, "beating").await.expect("a live instance heartbeats");
    }
    let live = d.instances(service).await.expect("list");
    assert_eq!(ids(&live), ["beating"], "heartbeats keep an instance; silence for 3 TTLs expires one");
    let err = d.heartbeat(service, "silent").await.expect_err("an expired instance cannot heartbeat");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    d.register(&Registration::new(service, "silent", "http://127.0.0.1:2").ttl(ttl)).await.expect("register again");
    assert_eq!(ids(&d.instances(service).await.expect("list")), ["beating", "silent"], "registering revives it");
    d.deregister(service, "beating").await.expect("clean up");
    d.deregister(service, "silent").await.expect("clean up");
}

async fn watch_announces_changes(d: &dyn ServiceDirectory, service: &str, ttl: Duration) {
    let mut changes = d.watch(service).await.expect("watch");
    d.register(&Registration::new(service, "w", "http://127.0.0.1:1").ttl(ttl * 10)).await.expect("register");
    tokio::time::timeout(Duration::from_secs(5), changes.next())
        .await
        .expect("a registration is announced")
        .expect("the watch stays open");
    // Drain anything else already queued, then expect the removal.
    while tokio::time::timeout(Duration::from_millis(100), changes.next()).await.is_ok() {}
    d.deregister(service, "w").await.expect("deregister");
    tokio::time::timeout(Duration::from_secs(5), changes.next())
        .await
        .expect("a removal is announced")
        .expect("the watch stays open");
}
