//! Runs the payment contract suites against [`MemoryPayments`], and the
//! checkout suite against a [`SeparateCheckout`] of the in-memory stores.

use std::sync::Arc;

use bazaar_core::orders::SeparateCheckout;
use bazaar_core::testkit::payments as suite;
use bazaar_memory::{MemoryIdempotency, MemoryOrders, MemoryOutbox, MemoryPayments};

fn payments() -> (MemoryPayments, MemoryOutbox) {
    let outbox = MemoryOutbox::new();
    (MemoryPayments::new(outbox.clone()), outbox)
}

#[tokio::test]
async fn payment_repository_contract() {
    let (repo, outbox) = payments();
    suite::payment_repository_contract(&repo, &|| outbox.events()).await;
}

#[tokio::test]
async fn webhook_inbox_contract() {
    let (repo, outbox) = payments();
    suite::webhook_inbox_contract(&repo, &|| outbox.events()).await;
}

#[tokio::test]
async fn payment_writes_are_atomic() {
    let (repo, outbox) = payments();
    suite::payment_writes_are_atomic(&repo, &|| outbox.events()).await;
}

#[tokio::test]
async fn checkout_contract() {
    let outbox = MemoryOutbox::new();
    let orders = Arc::new(MemoryOrders::new(outbox.clone()));
    let payments = Arc::new(MemoryPayments::new(outbox.clone()));
    let idempotency = Arc::new(MemoryIdempotency::new());
    let checkout = SeparateCheckout::new(orders.clone(), payments.clone(), idempotency.clone());
    suite::checkout_contract(&checkout, orders.as_ref(), payments.as_ref(), idempotency.as_ref(), &|| outbox.events())
        .await;
}
