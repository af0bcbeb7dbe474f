//! The core's outbox [`Relay`] over SQLite: events committed with state
//! changes are published in commit order, exactly once per successful
//! publish, and a failed publish leaves them for the next pass
//! ([`testkit::events::relay_in_commit_order_after_a_failed_publish`]).
//!
//! [`Relay`]: bazaar_core::events::Relay

mod common;

use std::sync::Arc;

use bazaar_core::testkit;
use common::fresh;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_events_are_relayed_in_order_after_a_failed_publish() {
    let db = fresh().await;
    testkit::events::relay_in_commit_order_after_a_failed_publish(&db.store.users(), Arc::new(db.store.outbox())).await;
}
