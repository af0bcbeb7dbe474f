//! The order and idempotency contract suites against PostgreSQL. The two
//! suites that race plain threads run through the store's runtime bridge.

mod common;

use bazaar_core::testkit::orders as suite;
use common::{committed, fresh};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn order_repository_contract() {
    let db = fresh().await;
    suite::order_repository_contract(&db.store.orders(), &committed(&db.store)).await;
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn order_transition_with_total() {
    let db = fresh().await;
    suite::order_transition_with_total(&db.store.orders(), &committed(&db.store)).await;
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn order_transition_all() {
    let db = fresh().await;
    suite::order_transition_all(&db.store.orders(), &committed(&db.store)).await;
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn order_transition_is_atomic() {
    let db = fresh().await;
    suite::order_transition_is_atomic(&db.store.orders(), &committed(&db.store)).await;
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idempotency_store_contract() {
    let db = fresh().await;
    suite::idempotency_store_contract(&db.store.idempotency()).await;
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idempotency_begin_is_atomic() {
    let db = fresh().await;
    suite::idempotency_begin_is_atomic(&db.store.idempotency()).await;
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idempotency_random_sequences() {
    let db = fresh().await;
    suite::idempotency_random_sequences(&db.store.idempotency()).await;
    db.drop_schema().await;
}
