//! Runs the order and idempotency contract suites against [`MemoryOrders`]
//! and [`MemoryIdempotency`].

use bazaar_core::testkit::orders as suite;
use bazaar_memory::{MemoryIdempotency, MemoryOrders, MemoryOutbox};

fn orders() -> (MemoryOrders, MemoryOutbox) {
    let outbox = MemoryOutbox::new();
    (MemoryOrders::new(outbox.clone()), outbox)
}

#[tokio::test]
async fn order_repository_contract() {
    let (repo, outbox) = orders();
    suite::order_repository_contract(&repo, &|| outbox.events()).await;
}

#[tokio::test]
async fn order_transition_with_total() {
    let (repo, outbox) = orders();
    suite::order_transition_with_total(&repo, &|| outbox.events()).await;
}

#[tokio::test]
async fn order_transition_all() {
    let (repo, outbox) = orders();
    suite::order_transition_all(&repo, &|| outbox.events()).await;
}

#[tokio::test]
async fn order_transition_is_atomic() {
    let (repo, outbox) = orders();
    suite::order_transition_is_atomic(&repo, &|| outbox.events()).await;
}

#[tokio::test]
async fn idempotency_store_contract() {
    suite::idempotency_store_contract(&MemoryIdempotency::new()).await;
}

#[tokio::test]
async fn idempotency_begin_is_atomic() {
    suite::idempotency_begin_is_atomic(&MemoryIdempotency::new()).await;
}

#[tokio::test]
async fn idempotency_random_sequences() {
    suite::idempotency_random_sequences(&MemoryIdempotency::new()).await;
}
