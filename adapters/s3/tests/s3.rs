//! The S3 blob store against a real S3 API server (moto, started by the
//! tests), and the blob-store contract on it and on the in-memory store.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bazaar_core::assets::BlobStore;
use bazaar_core::resilience::circuit_breaker::{CircuitBreakerConfig, SlidingWindow, State};
use bazaar_core::resilience::clock::ManualClock;
use bazaar_core::resilience::retry::{Backoff, ManualSleeper, RetryPolicy};
use bazaar_core::testkit::blob_store::{self as suite, Fetch, SpawnJoin};
use bazaar_memory::MemoryBlobStore;
use bazaar_s3::{S3BlobStore, S3Config};
use futures::FutureExt;

fn spawn_join()
-> impl Fn(futures::future::BoxFuture<'static, ()>) -> futures::future::BoxFuture<'static, ()> + Send + Sync {
    |f| async move { tokio::spawn(f).await.expect("task") }.boxed()
}

/// A GET as a browser makes it: the bytes of a 2xx answer, else `None`.
fn fetch() -> impl Fn(String) -> futures::future::BoxFuture<'static, Option<Vec<u8>>> + Send + Sync {
    |url| {
        async move {
            let answer = reqwest::get(&url).await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
            if !answer.status().is_success() {
                return None;
            }
            Some(answer.bytes().await.expect("body").to_vec())
        }
        .boxed()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_store_passes_the_blob_store_contract() {
    let (spawn, fetch) = (spawn_join(), fetch());
    let (spawn, fetch): (SpawnJoin<'_>, Fetch<'_>) = (&spawn, &fetch);
    suite::blob_store_contract(Arc::new(MemoryBlobStore::new()), spawn, fetch).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_passes_the_blob_store_contract() {
    let store = S3BlobStore::new(common::fresh_bucket().await).unwrap();
    // The suite checks presigned URLs only when there is one: make sure it ran.
    assert!(store.presigned_get("assets/x", Duration::from_secs(60)).await.unwrap().is_some());
    let (spawn, fetch) = (spawn_join(), fetch());
    suite::blob_store_contract(Arc::new(store), &spawn, &fetch).await;
}

#[tokio::test]
async fn prefixes_share_a_bucket_without_seeing_each_other() {
    let config = common::fresh_bucket().await;
    let store = |prefix: &str| {
        let mut c = config.clone();
        c.prefix = Some(prefix.to_owned());
        S3BlobStore::new(c).unwrap()
    };
    let (a, b, bare) = (store("tenant-a"), store("tenant-b/"), S3BlobStore::new(config.clone()).unwrap());
    a.put("assets/p/one", b"from a".to_vec()).await.unwrap();
    assert_eq!(b.get("assets/p/one").await.unwrap(), None);
    assert_eq!(
        bare.get("tenant-a/assets/p/one").await.unwrap().as_deref(),
        Some(&b"from a"[..]),
        "stored under the prefix"
    );
    b.delete("assets/p/one").await.unwrap();
    assert_eq!(a.get("assets/p/one").await.unwrap().as_deref(), Some(&b"from a"[..]));
}

#[tokio::test]
async fn a_missing_bucket_is_a_configuration_error() {
    let mut config = common::fresh_bucket().await;
    config.bucket = format!("{}-missing", config.bucket);
    let store = S3BlobStore::new(config).unwrap();
    let err = store.put("assets/p/a", b"x".to_vec()).await.unwrap_err();
    assert_eq!(err.code(), "internal", "{err:?}");
}

#[tokio::test]
async fn an_unreachable_store_is_unavailable_and_opens_the_breaker() {
    let port = common::python::free_port();
    let mut config =
        S3Config::from_values("assets", "us-east-1", Some(&format!("http://127.0.0.1:{port}")), "testing", "testing")
            .unwrap();
    config.retry = RetryPolicy::new(2, Backoff::constant(Duration::from_millis(10)));
    config.breaker = CircuitBreakerConfig::builder()
        .sliding_window(SlidingWindow::CountBased(2))
        .minimum_number_of_calls(2)
        .build()
        .unwrap();
    let clock = ManualClock::new();
    let sleeper = ManualSleeper::new(clock.clone());
    let store = S3BlobStore::new(config).unwrap().with_timing(Arc::new(clock), Arc::new(sleeper.clone()));
    for _ in 0..2 {
        let err = store.get("assets/p/a").await.unwrap_err();
        assert_eq!(err.code(), "unavailable", "{err:?}");
    }
    assert_eq!(sleeper.slept().len(), 2, "each call retried once");
    assert_eq!(store.breaker().state(), State::Open);
    let err = store.put("assets/p/a", b"x".to_vec()).await.unwrap_err();
    let cause = std::error::Error::source(&err).map(ToString::to_string).unwrap_or_default();
    assert!(cause.contains("circuit breaker open"), "{cause}");
    assert_eq!(sleeper.slept().len(), 2, "an open breaker tries nothing");
}
