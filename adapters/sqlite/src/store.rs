//! The store: connection pool, migrations, and the write-transaction helper
//! every unit of work goes through.

use bazaar_core::assets::BlobStore;
use bazaar_core::health::Probe;
use bazaar_core::marketplace::{Bus, Ports};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
#[cfg(feature = "fault-injection")]
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bazaar_core::{Error, Result};
use sqlx::query::Query;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteQueryResult,
    SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};

use crate::codec::{WHAT, db_err, is_busy};
use crate::{
    SqliteAssets, SqliteCheckout, SqliteDeadLetters, SqliteIdempotency, SqliteInbox, SqliteLicenses,
    SqliteNotifications, SqliteOrders, SqliteOutbox, SqlitePayments, SqliteProducts, SqliteReviews, SqliteUsers,
    SqliteWebhooks,
};

/// How long a connection waits for another writer before SQLite reports busy.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Extra attempts to take the write lock after a busy timeout ran out.
const BUSY_RETRIES: u32 = 3;
const MAX_CONNECTIONS: u32 = 8;
/// Each connection's page cache, in KiB (negative: SQLite reads it as KiB).
/// SQLite's default is 2 MiB; a search walks indexes of the whole catalog,
/// and with the default a 10,000-product catalog (64 MiB) is re-read with
/// `pread` on every request. Pages are allocated only as they are read, so a
/// small database costs no more than its own size per connection.
const CACHE_SIZE_KIB: &str = "-65536";

/// The migrations in `migrations/`, embedded at build time.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// A write transaction: the connection holds SQLite's write lock until it is
/// committed through [`SqliteStore::commit`] or dropped (rolled back).
pub(crate) type WriteTx = Transaction<'static, Sqlite>;

/// A SQLite database holding every Bazaar aggregate and the outbox.
///
/// Cheap to clone (clones share the pool).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    #[cfg(feature = "fault-injection")]
    fail_next_commit: Arc<AtomicBool>,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url`
    /// (`sqlite://path/to/file.db` or `sqlite::memory:`), in WAL mode with
    /// foreign keys on and a busy timeout. Call [`migrate`](Self::migrate)
    /// before first use.
    ///
    /// A `sqlite::memory:` database is private to each pooled connection, so
    /// it only suits single-connection experiments; use a file otherwise.
    ///
    /// # Errors
    /// [`Error::Validation`] on `url` when it is not a SQLite URL;
    /// [`Error::Unavailable`] when the file cannot be opened.
    pub async fn connect(url: &str) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|_| Error::invalid("url", "is not a SQLite URL (sqlite://path/to/file.db)"))?;
        Self::connect_with(options).await
    }

    /// Opens (creating if missing) the database file at `path`; otherwise
    /// like [`connect`](Self::connect).
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the file cannot be opened.
    pub async fn open(path: &Path) -> Result<Self> {
        Self::connect_with(SqliteConnectOptions::new().filename(path)).await
    }

    async fn connect_with(options: SqliteConnectOptions) -> Result<Self> {
        let options = options
            .create_if_missing(true)
            // WAL lets readers run while one writer writes; NORMAL sync is
            // durable across application crashes in WAL mode (only an OS
            // crash can lose the last transactions), the usual trade-off.
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            .pragma("cache_size", CACHE_SIZE_KIB);
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .connect_with(options)
            .await
            .map_err(|e| Error::unavailable(WHAT, e))?;
        Ok(Self {
            pool,
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
    pub fn users(&self) -> SqliteUsers {
        SqliteUsers::new(self.clone())
    }

    /// Products ([`bazaar_core::catalog::ProductRepository`]).
    pub fn products(&self) -> SqliteProducts {
        SqliteProducts::new(self.clone())
    }

    /// Reviews ([`bazaar_core::catalog::ReviewRepository`]).
    pub fn reviews(&self) -> SqliteReviews {
        SqliteReviews::new(self.clone())
    }

    /// Orders ([`bazaar_core::orders::OrderRepository`]).
    pub fn orders(&self) -> SqliteOrders {
        SqliteOrders::new(self.clone())
    }

    /// Payment intents and the webhook inbox ([`bazaar_core::payments::PaymentRepository`]).
    pub fn payments(&self) -> SqlitePayments {
        SqlitePayments::new(self.clone())
    }

    /// Orders with their payment intents and idempotency keys
    /// ([`bazaar_core::orders::Checkout`]): placing is one transaction.
    pub fn checkout(&self) -> SqliteCheckout {
        SqliteCheckout::new(self.clone())
    }

    /// Idempotency keys ([`bazaar_core::orders::IdempotencyStore`]).
    pub fn idempotency(&self) -> SqliteIdempotency {
        SqliteIdempotency::new(self.clone())
    }

    /// Licenses ([`bazaar_core::licensing::LicenseRepository`]).
    pub fn licenses(&self) -> SqliteLicenses {
        SqliteLicenses::new(self.clone())
    }

    /// Asset metadata ([`bazaar_core::assets::AssetRepository`]).
    pub fn assets(&self) -> SqliteAssets {
        SqliteAssets::new(self.clone())
    }

    /// The relay side of the outbox ([`bazaar_core::events::OutboxStore`]).
    pub fn outbox(&self) -> SqliteOutbox {
        SqliteOutbox::new(self.clone())
    }

    /// Processed event ids ([`bazaar_core::events::Inbox`]).
    pub fn inbox(&self) -> SqliteInbox {
        SqliteInbox::new(self.clone())
    }

    /// Dead letters ([`bazaar_core::events::DeadLetterStore`]).
    pub fn dead_letters(&self) -> SqliteDeadLetters {
        SqliteDeadLetters::new(self.clone())
    }

    /// Notifications and preferences ([`bazaar_core::notifications::NotificationRepository`]).
    pub fn notifications(&self) -> SqliteNotifications {
        SqliteNotifications::new(self.clone())
    }

    /// Vendors' webhook endpoints and their delivery queue
    /// ([`bazaar_core::webhooks::WebhookRepository`]).
    pub fn webhooks(&self) -> SqliteWebhooks {
        SqliteWebhooks::new(self.clone())
    }

    /// Refresh-token families ([`bazaar_core::auth::RefreshTokenStore`]).
    pub fn refresh_tokens(&self) -> crate::SqliteRefreshTokens {
        crate::SqliteRefreshTokens::new(self.clone())
    }

    /// Makes the next write transaction fail after its statements ran and
    /// before it commits, as a crash would. Test-only.
    #[cfg(feature = "fault-injection")]
    pub fn fail_next_commit(&self) {
        self.fail_next_commit.store(true, Ordering::SeqCst);
    }

    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Starts a write transaction holding SQLite's write lock.
    ///
    /// `BEGIN IMMEDIATE` waits up to the busy timeout for other writers; if
    /// the database stays locked longer (a long checkpoint, another process)
    /// it is retried a few times before giving up as `Unavailable`.
    pub(crate) async fn write(&self) -> Result<WriteTx> {
        let mut attempt = 0;
        loop {
            match self.pool.begin_with("BEGIN IMMEDIATE").await {
                Ok(tx) => return Ok(tx),
                Err(e) if is_busy(&e) && attempt < BUSY_RETRIES => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt))).await;
                }
                Err(e) => return Err(Error::unavailable(WHAT, e)),
            }
        }
    }

    /// Runs one statement as its own unit of work. A single statement is
    /// atomic anyway; going through [`write`](Self::write) gives it the same
    /// busy handling (and fault injection) as every other write.
    pub(crate) async fn write_one(&self, statement: Query<'_, Sqlite, SqliteArguments>) -> Result<SqliteQueryResult> {
        let mut tx = self.write().await?;
        let done = statement.execute(&mut *tx).await.map_err(db_err)?;
        self.commit(tx).await?;
        Ok(done)
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
