//! Shared set-up for the SQLite integration tests: a fresh database file per
//! test, a synchronous probe of committed events, and a task spawner.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use bazaar_core::Result;
use bazaar_core::clock::Timestamp;
use bazaar_core::events::Event;
use bazaar_core::ids::{OrderId, PaymentIntentId, UserId};
use bazaar_core::orders::{
    IdempotencyBegin, IdempotencyClaim, IdempotencyStore, IdempotencyTerms, Order, OrderRepository, OrderStatus,
    StoredResponse,
};
use bazaar_core::payments::{PaymentIntent, PaymentRepository, WebhookReceipt};
use bazaar_sqlite::SqliteStore;
use futures::future::BoxFuture;
use tempfile::TempDir;

/// A migrated store on its own temporary file, deleted when dropped.
pub(crate) struct Fresh {
    pub(crate) store: SqliteStore,
    // Held so the directory outlives the store.
    _dir: TempDir,
}

/// A fresh, migrated, empty database.
pub(crate) async fn fresh() -> Fresh {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(&dir.path().join("bazaar.db")).await.expect("open");
    store.migrate().await.expect("migrate");
    Fresh { store, _dir: dir }
}

/// Every event committed to the outbox so far. The contract suites take a
/// synchronous probe; the query is async, so this blocks the current worker
/// (tests using it run on the multi-threaded runtime).
pub(crate) fn committed(store: &SqliteStore) -> impl Fn() -> Vec<Event> + '_ {
    move || {
        tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(store.outbox().events()).expect("read the outbox")
        })
    }
}

/// Runs a suite's racing attempt as a task on the multi-threaded runtime.
pub(crate) fn spawn(f: BoxFuture<'static, ()>) {
    tokio::spawn(f);
}

/// Runs every call of a port on the test's tokio runtime.
///
/// A few contract suites race plain OS threads that drive the port with
/// `futures::executor::block_on`, outside any runtime; sqlx needs a tokio
/// context for its I/O and timers. This shim spawns each call onto the
/// runtime and waits for it from whatever executor called, so the suites
/// still race real threads against the real store.
pub(crate) struct OnRuntime<T> {
    inner: Arc<T>,
    handle: tokio::runtime::Handle,
}

impl<T> OnRuntime<T> {
    /// Wraps `inner`; must be called inside the runtime.
    pub(crate) fn new(inner: T) -> Self {
        Self { inner: Arc::new(inner), handle: tokio::runtime::Handle::current() }
    }

    async fn run<R: Send + 'static>(&self, f: impl Future<Output = R> + Send + 'static) -> R {
        self.handle.spawn(f).await.expect("port call panicked")
    }
}

#[async_trait]
impl<T: IdempotencyStore + 'static> IdempotencyStore for OnRuntime<T> {
    async fn begin(
        &self,
        claim: &IdempotencyClaim,
        request_hash: &str,
        now: Timestamp,
        terms: IdempotencyTerms,
    ) -> Result<IdempotencyBegin> {
        let (inner, claim, hash) = (self.inner.clone(), claim.clone(), request_hash.to_owned());
        self.run(async move { inner.begin(&claim, &hash, now, terms).await }).await
    }

    async fn complete(&self, claim: &IdempotencyClaim, response: StoredResponse) -> Result<()> {
        let (inner, claim) = (self.inner.clone(), claim.clone());
        self.run(async move { inner.complete(&claim, response).await }).await
    }

    async fn abandon(&self, claim: &IdempotencyClaim) -> Result<()> {
        let (inner, claim) = (self.inner.clone(), claim.clone());
        self.run(async move { inner.abandon(&claim).await }).await
    }
}

#[async_trait]
impl<T: OrderRepository + 'static> OrderRepository for OnRuntime<T> {
    async fn insert(&self, order: &Order, events: &[Event]) -> Result<()> {
        let (inner, order, events) = (self.inner.clone(), order.clone(), events.to_vec());
        self.run(async move { inner.insert(&order, &events).await }).await
    }

    async fn get(&self, id: OrderId) -> Result<Option<Order>> {
        let inner = self.inner.clone();
        self.run(async move { inner.get(id).await }).await
    }

    async fn list_for_buyer(&self, buyer: UserId, page: u32, limit: u32) -> Result<(Vec<Order>, u64)> {
        let inner = self.inner.clone();
        self.run(async move { inner.list_for_buyer(buyer, page, limit).await }).await
    }

    async fn transition(
        &self,
        id: OrderId,
        from: OrderStatus,
        to: OrderStatus,
        at: Timestamp,
        events: &[Event],
    ) -> Result<Order> {
        let (inner, events) = (self.inner.clone(), events.to_vec());
        self.run(async move { inner.transition(id, from, to, at, &events).await }).await
    }
}

#[async_trait]
impl<T: PaymentRepository + 'static> PaymentRepository for OnRuntime<T> {
    async fn insert(&self, intent: &PaymentIntent, events: &[Event]) -> Result<()> {
        let (inner, intent, events) = (self.inner.clone(), intent.clone(), events.to_vec());
        self.run(async move { inner.insert(&intent, &events).await }).await
    }

    async fn get(&self, id: PaymentIntentId) -> Result<Option<PaymentIntent>> {
        let inner = self.inner.clone();
        self.run(async move { inner.get(id).await }).await
    }

    async fn get_by_order(&self, order_id: OrderId) -> Result<Option<PaymentIntent>> {
        let inner = self.inner.clone();
        self.run(async move { inner.get_by_order(order_id).await }).await
    }

    async fn get_by_provider_ref(&self, provider: &str, provider_ref: &str) -> Result<Option<PaymentIntent>> {
        let (inner, provider, provider_ref) = (self.inner.clone(), provider.to_owned(), provider_ref.to_owned());
        self.run(async move { inner.get_by_provider_ref(&provider, &provider_ref).await }).await
    }

    async fn update(&self, intent: &PaymentIntent, expected_version: u64, events: &[Event]) -> Result<PaymentIntent> {
        let (inner, intent, events) = (self.inner.clone(), intent.clone(), events.to_vec());
        self.run(async move { inner.update(&intent, expected_version, &events).await }).await
    }

    async fn apply_webhook<'a>(
        &self,
        provider: &str,
        event_id: &str,
        update: Option<(&'a PaymentIntent, u64)>,
        events: &[Event],
    ) -> Result<WebhookReceipt> {
        let (inner, provider, event_id) = (self.inner.clone(), provider.to_owned(), event_id.to_owned());
        let (update, events) = (update.map(|(i, v)| (i.clone(), v)), events.to_vec());
        self.run(async move {
            let update = update.as_ref().map(|(i, v)| (i, *v));
            inner.apply_webhook(&provider, &event_id, update, &events).await
        })
        .await
    }
}
