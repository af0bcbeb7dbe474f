//! The payment-intent and webhook-inbox contract suites against SQLite.
//! The suite that races plain threads goes through `OnRuntime`.

mod common;

use bazaar_core::testkit::payments as suite;
use common::{OnRuntime, committed, fresh};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn payment_repository_contract() {
    let db = fresh().await;
    suite::payment_repository_contract(&db.store.payments(), &committed(&db.store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn webhook_inbox_contract() {
    let db = fresh().await;
    suite::webhook_inbox_contract(&db.store.payments(), &committed(&db.store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn payment_writes_are_atomic() {
    let db = fresh().await;
    suite::payment_writes_are_atomic(&OnRuntime::new(db.store.payments()), &committed(&db.store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn checkout_contract() {
    let db = fresh().await;
    let s = &db.store;
    suite::checkout_contract(&s.checkout(), &s.orders(), &s.payments(), &s.idempotency(), &committed(s)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn checkout_completes_keys_in_one_unit() {
    let db = fresh().await;
    let s = &db.store;
    suite::checkout_completes_keys_in_one_unit(&s.checkout(), &s.orders(), &s.idempotency(), &committed(s)).await;
}
