//! Whole-flow concurrency over the in-memory adapters: the core's services,
//! many tasks on real threads ([`testkit::flows`]), as the SQLite and
//! PostgreSQL adapters run them.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bazaar_core::testkit;
use bazaar_core::testkit::flows::CommercePorts;
use bazaar_memory::{MemoryIdempotency, MemoryLicenses, MemoryOrders, MemoryOutbox, MemoryPayments, MemoryProducts};

fn ports() -> (CommercePorts, MemoryOutbox) {
    let outbox = MemoryOutbox::new();
    let ports = CommercePorts {
        products: Arc::new(MemoryProducts::new(outbox.clone())),
        orders: Arc::new(MemoryOrders::new(outbox.clone())),
        licenses: Arc::new(MemoryLicenses::new(outbox.clone())),
        payments: Arc::new(MemoryPayments::new(outbox.clone())),
        idempotency: Arc::new(MemoryIdempotency::new()),
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
