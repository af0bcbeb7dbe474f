//! Whole-flow concurrency over the in-memory adapters: the core's services,
//! many tasks on real threads ([`testkit::flows`]), as the SQLite and
//! PostgreSQL adapters run them.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bazaar_core::orders::SeparateCheckout;
use bazaar_core::testkit;
use bazaar_core::testkit::flows::CommercePorts;
use bazaar_memory::{MemoryIdempotency, MemoryLicenses, MemoryOrders, MemoryOutbox, MemoryPayments, MemoryProducts};

fn ports() -> (CommercePorts, MemoryOutbox) {
    let outbox = MemoryOutbox::new();
    let orders: Arc<MemoryOrders> = Arc::new(MemoryOrders::new(outbox.clone()));
    let payments: Arc<MemoryPayments> = Arc::new(MemoryPayments::new(outbox.clone()));
    let idempotency: Arc<MemoryIdempotency> = Arc::new(MemoryIdempotency::new());
    let ports = CommercePorts {
        products: Arc::new(MemoryProducts::new(outbox.clone())),
        checkout: Arc::new(SeparateCheckout::new(orders.clone(), payments.clone(), idempotency.clone())),
        orders,
        licenses: Arc::new(MemoryLicenses::new(outbox.clone())),
        payments,
        idempotency,
    };
    (ports, outbox)
}

fn spawn(f: Pin<Box<dyn Future<Output = ()> + Send + 'static>>) {
    tokio::spawn(f);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn duplicate_payment_events_issue_one_license_per_line() {
    let (ports, outbox) = ports();
    testkit::flows::duplicate_payment_events_issue_one_license_per_line(ports, &|| outbox.events(), &spawn).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overlapping_payment_batches_fulfil_each_order_once() {
    let (ports, outbox) = ports();
    testkit::flows::overlapping_payment_batches_fulfil_each_order_once(ports, &|| outbox.events(), &spawn).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_placement_leaves_its_key_to_a_retry() {
    let (ports, outbox) = ports();
    testkit::flows::a_killed_placement_leaves_its_key_to_a_retry(ports, &|| outbox.events()).await;
}
