//! The core's `IdempotencyStore` contract suite against Redis, a fresh key
//! prefix per test.

mod common;

use bazaar_core::testkit::orders as suite;
use bazaar_redis::RedisIdempotencyStore;

async fn store(test: &str) -> RedisIdempotencyStore {
    RedisIdempotencyStore::new(common::connect().await, common::fresh_prefix(test))
}

#[tokio::test]
async fn idempotency_store_contract() {
    suite::idempotency_store_contract(&store("idem-contract").await).await;
}

// The suite races real threads that block on `begin`; the connection's
// driver task needs runtime workers of its own meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idempotency_begin_is_atomic() {
    suite::idempotency_begin_is_atomic(&store("idem-atomic").await).await;
}

#[tokio::test]
async fn idempotency_random_sequences() {
    suite::idempotency_random_sequences(&store("idem-random").await).await;
}

#[tokio::test]
async fn records_carry_a_ttl_and_complete_keeps_it() {
    use bazaar_core::orders::{IdempotencyClaim, IdempotencyStore, IdempotencyTerms, StoredResponse};
    use redis::AsyncCommands;

    let store = store("idem-ttl").await;
    let mut conn = common::connect().await;
    let claim = IdempotencyClaim::new("s", "k");
    let terms = IdempotencyTerms { ttl: chrono::Duration::seconds(30), lease: chrono::Duration::seconds(10) };
    store.begin(&claim, "h", chrono::Utc::now(), terms).await.unwrap();
    let key = store.redis_key("s", "k");
    let before: i64 = conn.pttl(&key).await.unwrap();
    assert!(before > 0 && before <= 30_000, "a started record expires with its TTL, pttl {before}");
    store.complete(&claim, StoredResponse { body: serde_json::json!({}) }).await.unwrap();
    let after: i64 = conn.pttl(&key).await.unwrap();
    assert!(after > 0 && after <= before, "complete keeps the expiry, pttl {after}");
}

#[tokio::test]
async fn scope_and_key_cannot_be_confused() {
    use bazaar_core::orders::{IdempotencyBegin, IdempotencyClaim, IdempotencyStore, IdempotencyTerms};

    let store = store("idem-split").await;
    let now = chrono::Utc::now();
    let terms = IdempotencyTerms::default();
    assert_eq!(
        store.begin(&IdempotencyClaim::new("a:b", "c"), "h1", now, terms).await.unwrap(),
        IdempotencyBegin::Started
    );
    assert_eq!(
        store.begin(&IdempotencyClaim::new("a", "b:c"), "h2", now, terms).await.unwrap(),
        IdempotencyBegin::Started
    );
}
