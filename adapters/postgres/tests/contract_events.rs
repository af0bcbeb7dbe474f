//! The outbox, inbox and dead-letter contract suites against PostgreSQL. (The
//! bus suites belong to the bus adapters: PostgreSQL is not used as one here.)

mod common;

use std::sync::Arc;

use bazaar_core::events::Event;
use bazaar_core::testkit::events as suite;
use bazaar_postgres::PgOutbox;
use common::{fresh, spawn};
use futures::future::BoxFuture;

/// Commits events through the outbox's own transaction, as a repository would.
fn appender(outbox: PgOutbox) -> impl Fn(Vec<Event>) -> BoxFuture<'static, ()> + Send + Sync {
    move |events| {
        let outbox = outbox.clone();
        Box::pin(async move { outbox.append(&events).await.expect("append") })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn outbox_claims() {
    let db = fresh().await;
    suite::outbox_claims(&db.store.outbox(), &appender(db.store.outbox())).await;
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn outbox_claims_race() {
    let db = fresh().await;
    suite::outbox_claims_race(Arc::new(db.store.outbox()), &appender(db.store.outbox()), &spawn).await;
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn inbox_marks() {
    let db = fresh().await;
    suite::inbox_marks(&db.store.inbox()).await;
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn inbox_marks_race() {
    let db = fresh().await;
    suite::inbox_marks_race(Arc::new(db.store.inbox()), &spawn).await;
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dead_letters() {
    let db = fresh().await;
    suite::dead_letters(&db.store.dead_letters()).await;
    db.drop_schema().await;
}
