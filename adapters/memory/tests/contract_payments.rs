//! Runs the payment contract suites against [`MemoryPayments`].

use bazaar_core::testkit::payments as suite;
use bazaar_memory::{MemoryOutbox, MemoryPayments};

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
