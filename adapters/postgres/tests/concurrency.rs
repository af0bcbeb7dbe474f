//! Whole-flow concurrency over PostgreSQL: the core's services on a real database,
//! many tasks on real threads ([`testkit::flows`]).
//!
//! - 50 concurrent placements with one idempotency key → one order; every
//!   caller that got an order got the same one, the rest were told the key
//!   is in flight, and a retry afterwards replays the same order.
//! - A keyed placement dropped after its claim, or after its order is
//!   written (a killed request) → the retry ends with exactly one order.
//! - One `payment.succeeded` handled by 4 tasks at once → one license per
//!   order line, one `order.fulfilled`, one `license.issued` per line.
//! - Two overlapping batches of payments handled at once → every order
//!   fulfilled once, one license per line, each event committed once.

mod common;

use std::sync::Arc;

use bazaar_core::testkit;
use bazaar_core::testkit::flows::CommercePorts;
use bazaar_postgres::PgStore;
use common::{committed, fresh, spawn};

fn ports(store: &PgStore) -> CommercePorts {
    CommercePorts {
        products: Arc::new(store.products()),
        orders: Arc::new(store.orders()),
        licenses: Arc::new(store.licenses()),
        payments: Arc::new(store.payments()),
        idempotency: Arc::new(store.idempotency()),
        checkout: Arc::new(store.checkout()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_placements_with_one_key_place_one_order() {
    let db = fresh().await;
    testkit::flows::fifty_placements_with_one_key(ports(&db.store), &committed(&db.store), &spawn).await;
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn duplicate_payment_events_issue_one_license_per_line() {
    let db = fresh().await;
    testkit::flows::duplicate_payment_events_issue_one_license_per_line(
        ports(&db.store),
        &committed(&db.store),
        &spawn,
    )
    .await;
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overlapping_payment_batches_fulfil_each_order_once() {
    let db = fresh().await;
    testkit::flows::overlapping_payment_batches_fulfil_each_order_once(ports(&db.store), &committed(&db.store), &spawn)
        .await;
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_placement_leaves_its_key_to_a_retry() {
    let db = fresh().await;
    testkit::flows::a_killed_placement_leaves_its_key_to_a_retry(ports(&db.store), &committed(&db.store)).await;
    db.drop_schema().await;
}
