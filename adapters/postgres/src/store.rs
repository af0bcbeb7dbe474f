//! The store: connection pool, migrations, the transaction helpers every
//! unit of work goes through, and the runtime bridge for callers outside
//! Tokio.

use bazaar_core::assets::BlobStore;
use bazaar_core::health::Probe;
use bazaar_core::marketplace::{Bus, Ports};
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
#[cfg(feature = "fault-injection")]
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bazaar_core::{Error, Result};
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPool, PgPoolOptions, PgQueryResult, PgRow};
use sqlx::query::Query;
use sqlx::{Postgres, Transaction};
use tokio::runtime::Handle;
use tracing::Instrument as _;

use crate::codec::{WHAT, db_err, is_retryable};
use crate::{
    PgAssets, PgCheckout, PgDeadLetters, PgIdempotency, PgInbox, PgLicenses, PgNotifications, PgOrders, PgOutbox,
    PgPayments, PgProducts, PgReviews, PgUsers, PgWebhooks,
};

const MAX_CONNECTIONS: u32 = 16;
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// Extra attempts for a single-statement write that hit a serialization
/// failure or a deadlock (both are safe to re-run from scratch).
const RETRIES: u32 = 3;

/// The migrations in `migrations/`, embedded at build time.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// A write transaction (READ COMMITTED; read-check-write steps lock the row
/// they check with `SELECT … FOR UPDATE`). Dropping it rolls back.
pub(crate) type WriteTx = Transaction<'static, Postgres>;

/// A PostgreSQL database holding every Bazaar aggregate and the outbox.
///
/// Cheap to clone (clones share the pool).
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    /// The runtime the store was built on, for calls polled outside Tokio.
    runtime: Option<Handle>,
    #[cfg(feature = "fault-injection")]
    fail_next_commit: Arc<AtomicBool>,
}

impl PgStore {
    /// Connects to `url` (`postgres://user@host:5432/db`). Call
    /// [`migrate`](Self::migrate) before first use.
    ///
    /// # Errors
    /// [`Error::Validation`] on `url` when it is not a PostgreSQL URL;
    /// [`Error::Unavailable`] when the server cannot be reached.
    pub async fn connect(url: &str) -> Result<Self> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|_| Error::invalid("url", "is not a PostgreSQL URL (postgres://user@host:5432/db)"))?;
        Self::connect_with(options).await
    }

    /// Connects with explicit options (e.g. a `search_path` set through
    /// [`PgConnectOptions::options`]); otherwise like [`connect`](Self::connect).
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the server cannot be reached.
    pub async fn connect_with(options: PgConnectOptions) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|e| Error::unavailable(WHAT, e))?;
        Ok(Self {
            pool,
            runtime: Handle::try_current().ok(),
            #[cfg(feature = "fault-injection")]
            fail_next_commit: Arc::default(),
        })
    }

    /// Applies the embedded migrations that have not run yet.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when a migration fails or the database was
    /// migrated by a newer version of this crate.
    pub async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await.map_err(|e| Error::unavailable(WHAT, e))
    }

    /// Closes every connection; later calls fail with `Unavailable`.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Whether the database answers a trivial query (for readiness checks).
    ///
    /// # Errors
    /// [`Error::Unavailable`] when it does not.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map(|_| ()).map_err(db_err)
    }

    /// Every port on this database, with events on `bus` and asset bytes
    /// in `blobs`, and a readiness probe that pings the database: what
    /// [`Marketplace::builder`](bazaar_core::marketplace::Marketplace::builder) takes.
    pub fn ports(&self, bus: Bus, blobs: Arc<dyn BlobStore>) -> Ports {
        let Bus { publisher, subscriber, probe } = bus;
        let ping = self.clone();
        let database = Probe::new("database", move || {
            let db = ping.clone();
            Box::pin(async move { db.ping().await })
        });
        Ports {
            users: Arc::new(self.users()),
            refresh_tokens: Arc::new(self.refresh_tokens()),
            products: Arc::new(self.products()),
            reviews: Arc::new(self.reviews()),
            orders: Arc::new(self.orders()),
            payments: Arc::new(self.payments()),
            checkout: Arc::new(self.checkout()),
            idempotency: Arc::new(self.idempotency()),
            licenses: Arc::new(self.licenses()),
            assets: Arc::new(self.assets()),
            blobs,
            notifications: Arc::new(self.notifications()),
            webhooks: Arc::new(self.webhooks()),
            outbox: Arc::new(self.outbox()),
            publisher,
            subscriber,
            inbox: Arc::new(self.inbox()),
            dead_letters: Arc::new(self.dead_letters()),
            probes: std::iter::once(database).chain(probe).collect(),
        }
    }

    /// Users ([`bazaar_core::auth::UserRepository`]).
    pub fn users(&self) -> PgUsers {
        PgUsers::new(self.clone())
    }

    /// Products ([`bazaar_core::catalog::ProductRepository`]).
    pub fn products(&self) -> PgProducts {
        PgProducts::new(self.clone())
    }

    /// Reviews ([`bazaar_core::catalog::ReviewRepository`]).
    pub fn reviews(&self) -> PgReviews {
        PgReviews::new(self.clone())
    }

    /// Orders ([`bazaar_core::orders::OrderRepository`]).
    pub fn orders(&self) -> PgOrders {
        PgOrders::new(self.clone())
    }

    /// Payment intents and the webhook inbox ([`bazaar_core::payments::PaymentRepository`]).
    pub fn payments(&self) -> PgPayments {
        PgPayments::new(self.clone())
    }

    /// Orders with their payment intents ([`bazaar_core::orders::Checkout`]), one statement per step.
    pub fn checkout(&self) -> PgCheckout {
        PgCheckout::new(self.clone())
    }

    /// Idempotency keys ([`bazaar_core::orders::IdempotencyStore`]).
    pub fn idempotency(&self) -> PgIdempotency {
        PgIdempotency::new(self.clone())
    }

    /// Licenses ([`bazaar_core::licensing::LicenseRepository`]).
    pub fn licenses(&self) -> PgLicenses {
        PgLicenses::new(self.clone())
    }

    /// Asset metadata ([`bazaar_core::assets::AssetRepository`]).
    pub fn assets(&self) -> PgAssets {
        PgAssets::new(self.clone())
    }

    /// The relay side of the outbox ([`bazaar_core::events::OutboxStore`]).
    pub fn outbox(&self) -> PgOutbox {
        PgOutbox::new(self.clone())
    }

    /// Processed event ids ([`bazaar_core::events::Inbox`]).
    pub fn inbox(&self) -> PgInbox {
        PgInbox::new(self.clone())
    }

    /// Dead letters ([`bazaar_core::events::DeadLetterStore`]).
    pub fn dead_letters(&self) -> PgDeadLetters {
        PgDeadLetters::new(self.clone())
    }

    /// Notifications and preferences ([`bazaar_core::notifications::NotificationRepository`]).
    pub fn notifications(&self) -> PgNotifications {
        PgNotifications::new(self.clone())
    }

    /// Vendors' webhook endpoints and their delivery queue
    /// ([`bazaar_core::webhooks::WebhookRepository`]).
    pub fn webhooks(&self) -> PgWebhooks {
        PgWebhooks::new(self.clone())
    }

    /// Refresh-token families ([`bazaar_core::auth::RefreshTokenStore`]).
    pub fn refresh_tokens(&self) -> crate::PgRefreshTokens {
        crate::PgRefreshTokens::new(self.clone())
    }

    /// Makes the next write fail before it commits, as a crash would: a
    /// transaction after its statements ran, a single autocommitted
    /// statement before it runs. Test-only.
    #[cfg(feature = "fault-injection")]
    pub fn fail_next_commit(&self) {
        self.fail_next_commit.store(true, Ordering::SeqCst);
    }

    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Runs a port call with a Tokio context.
    ///
    /// The core's ports are executor-agnostic (some contract suites drive
    /// them from plain threads with `futures::executor::block_on`), but
    /// sqlx's I/O and timers need Tokio. When polled outside any runtime,
    /// each poll enters the runtime the store was built on, so the driver
    /// registers with that runtime's reactor (whose worker threads drive
    /// it); inside a runtime the call runs as is.
    pub(crate) async fn run<F: Future>(&self, call: F) -> F::Output {
        match &self.runtime {
            Some(handle) if Handle::try_current().is_err() => {
                InRuntime { handle: handle.clone(), call: Box::pin(call) }.await
            }
            _ => call.await,
        }
    }

    /// [`PgStore::run`] inside a database client span (OpenTelemetry
    /// semantic conventions: `db.system.name`, the operation and the
    /// table; never a statement's parameters).
    pub(crate) async fn traced<F: Future>(
        &self,
        name: &'static str,
        operation: &'static str,
        table: &'static str,
        call: F,
    ) -> F::Output {
        let span = tracing::info_span!(
            "db",
            otel.name = name,
            otel.kind = "client",
            db.system.name = "postgresql",
            db.operation.name = operation,
            db.collection.name = table,
        );
        self.run(call.instrument(span)).await
    }

    /// Starts a write transaction.
    pub(crate) async fn write(&self) -> Result<WriteTx> {
        self.pool.begin().await.map_err(|e| Error::unavailable(WHAT, e))
    }

    /// Runs one statement as its own unit of work: autocommitted, so it costs
    /// one round trip instead of three (`BEGIN`, the statement, `COMMIT`)
    /// and is exactly as atomic. It is re-run a few times on a serialization
    /// failure or deadlock (a lone statement is always safe to re-run), and
    /// [`fail_next_commit`](Self::fail_next_commit) fails it before it runs,
    /// as a crash before the commit would.
    pub(crate) async fn write_one<'q>(
        &self,
        statement: impl Fn() -> Query<'q, Postgres, PgArguments>,
    ) -> Result<PgQueryResult> {
        self.autocommit(|| async { statement().execute(&self.pool).await }).await
    }

    /// [`write_one`](Self::write_one) for a statement whose rows are wanted
    /// (`RETURNING`, or a data-modifying `WITH` whose final `SELECT` reports
    /// what it changed).
    pub(crate) async fn write_rows<'q>(
        &self,
        statement: impl Fn() -> Query<'q, Postgres, PgArguments>,
    ) -> Result<Vec<PgRow>> {
        self.autocommit(|| async { statement().fetch_all(&self.pool).await }).await
    }

    async fn autocommit<T, F, Fut>(&self, run: F) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = std::result::Result<T, sqlx::Error>>,
    {
        #[cfg(feature = "fault-injection")]
        if self.fail_next_commit.swap(false, Ordering::SeqCst) {
            return Err(Error::unavailable(WHAT, std::io::Error::other("injected fault before commit")));
        }
        let mut attempt = 0;
        loop {
            match run().await {
                Ok(done) => return Ok(done),
                Err(e) if is_retryable(&e) && attempt < RETRIES => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(5 * u64::from(attempt))).await;
                }
                Err(e) => return Err(db_err(e)),
            }
        }
    }

    /// Commits a unit of work started with [`write`](Self::write).
    pub(crate) async fn commit(&self, tx: WriteTx) -> Result<()> {
        #[cfg(feature = "fault-injection")]
        if self.fail_next_commit.swap(false, Ordering::SeqCst) {
            // Dropping the transaction rolls it back, exactly like a crash
            // before COMMIT reached the database.
            drop(tx);
            return Err(Error::unavailable(WHAT, std::io::Error::other("injected fault before commit")));
        }
        tx.commit().await.map_err(db_err)
    }
}

/// A future polled inside a runtime context (see [`PgStore::run`]).
struct InRuntime<F> {
    handle: Handle,
    call: Pin<Box<F>>,
}

impl<F: Future> Future for InRuntime<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        // The guard lives for this poll only, so the future stays `Send`.
        let _entered = this.handle.enter();
        this.call.as_mut().poll(cx)
    }
}
