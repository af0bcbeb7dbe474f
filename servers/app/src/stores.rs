//! Every port the marketplace needs, as `Arc<dyn Port>`, opened from the
//! configured URLs: SQLite (the embedded default), PostgreSQL, or memory.
//!
//! The event bus defaults to the in-process bus, which only reaches
//! handlers in the same process; a broker (NATS, Redis Streams) replaces
//! `publisher` and `subscriber` when the processes are split.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use bazaar_core::Result;
use bazaar_core::assets::{AssetRepository, BlobStore};
use bazaar_core::auth::{RefreshTokenStore, UserRepository};
use bazaar_core::catalog::{CachedSearch, ProductRepository, ReviewRepository};
use bazaar_core::clock::Clock;
use bazaar_core::events::{DeadLetterStore, EventPublisher, EventSubscriber, Inbox, OutboxStore};
use bazaar_core::licensing::LicenseRepository;
use bazaar_core::notifications::NotificationRepository;
use bazaar_core::orders::{IdempotencyStore, OrderRepository};
use bazaar_core::payments::{Checkout, PaymentRepository};
use bazaar_core::services::Ports;
use bazaar_memory::{InProcessBus, MemoryBackend};
use bazaar_postgres::PgStore;
use bazaar_sqlite::SqliteStore;
use futures::future::BoxFuture;

use crate::blobs::LocalBlobStore;
use crate::bus::Bus;
use crate::config::Database;

/// A named readiness check (`/health/ready`, gRPC health).
#[derive(Clone)]
pub struct Probe {
    /// What is checked (`database`, `bus`, …).
    pub name: &'static str,
    check: Arc<dyn Fn() -> BoxFuture<'static, Result<()>> + Send + Sync>,
}

impl fmt::Debug for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Probe").field("name", &self.name).finish_non_exhaustive()
    }
}

impl Probe {
    /// A check that runs `check` each time it is asked.
    pub fn new(name: &'static str, check: impl Fn() -> BoxFuture<'static, Result<()>> + Send + Sync + 'static) -> Self {
        Self { name, check: Arc::new(check) }
    }

    /// Runs the check.
    ///
    /// # Errors
    /// The backend's error when it does not answer.
    pub async fn check(&self) -> Result<()> {
        (self.check)().await
    }
}

/// How long one readiness probe may take before it counts as failed.
pub const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Runs every probe at once, each within `timeout`; returns each probe's
/// name with `Err(cause)` when it failed. Failures are logged here, so the
/// servers' health endpoints only choose what to show (causes can carry
/// host names and stay out of responses).
pub async fn check_probes(probes: &[Probe], timeout: std::time::Duration) -> Vec<(&'static str, Result<(), String>)> {
    futures::future::join_all(probes.iter().map(|probe| async move {
        let outcome = match tokio::time::timeout(timeout, probe.check()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
        };
        if let Err(cause) = &outcome {
            tracing::warn!(probe = probe.name, cause, "readiness probe failed");
        }
        (probe.name, outcome)
    }))
    .await
}

/// The bundle over one SQL store: SQLite and PostgreSQL expose the same
/// accessors (different types), so one body serves both.
macro_rules! sql_stores {
    ($db:ident, $blobs:ident, $bus:ident) => {{
        let ping = $db.clone();
        Self {
            users: Arc::new($db.users()),
            refresh_tokens: Arc::new($db.refresh_tokens()),
            products: Arc::new($db.products()),
            reviews: Arc::new($db.reviews()),
            orders: Arc::new($db.orders()),
            payments: Arc::new($db.payments()),
            checkout: Arc::new($db.checkout()),
            idempotency: Arc::new($db.idempotency()),
            licenses: Arc::new($db.licenses()),
            assets: Arc::new($db.assets()),
            blobs: $blobs,
            notifications: Arc::new($db.notifications()),
            outbox: Arc::new($db.outbox()),
            inbox: Arc::new($db.inbox()),
            dead_letters: Arc::new($db.dead_letters()),
            publisher: $bus.clone(),
            subscriber: $bus,
            probes: vec![Probe::new("database", move || {
                let db = ping.clone();
                Box::pin(async move { db.ping().await })
            })],
        }
    }};
}

/// Every port, picked at run time.
#[derive(Clone)]
pub struct Stores {
    /// Users.
    pub users: Arc<dyn UserRepository>,
    /// Refresh tokens.
    pub refresh_tokens: Arc<dyn RefreshTokenStore>,
    /// Products.
    pub products: Arc<dyn ProductRepository>,
    /// Reviews.
    pub reviews: Arc<dyn ReviewRepository>,
    /// Orders.
    pub orders: Arc<dyn OrderRepository>,
    /// Payment intents and the webhook inbox.
    pub payments: Arc<dyn PaymentRepository>,
    /// Orders with their payment intents.
    pub checkout: Arc<dyn Checkout>,
    /// Idempotency keys of order placement.
    pub idempotency: Arc<dyn IdempotencyStore>,
    /// Licenses.
    pub licenses: Arc<dyn LicenseRepository>,
    /// Asset metadata.
    pub assets: Arc<dyn AssetRepository>,
    /// Asset bytes.
    pub blobs: Arc<dyn BlobStore>,
    /// Notifications and preferences.
    pub notifications: Arc<dyn NotificationRepository>,
    /// The outbox's relay side.
    pub outbox: Arc<dyn OutboxStore>,
    /// Processed-event inbox.
    pub inbox: Arc<dyn Inbox>,
    /// Dead letters.
    pub dead_letters: Arc<dyn DeadLetterStore>,
    /// Where the relay publishes.
    pub publisher: Arc<dyn EventPublisher>,
    /// Where the dispatcher consumes.
    pub subscriber: Arc<dyn EventSubscriber>,
    /// Readiness checks, one per backend.
    pub probes: Vec<Probe>,
}

impl fmt::Debug for Stores {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stores").field("probes", &self.probes).finish_non_exhaustive()
    }
}

impl Stores {
    /// Everything in memory (tests, examples): nothing survives the process.
    pub fn memory(clock: Arc<dyn Clock>) -> Self {
        let b = MemoryBackend::new(clock);
        Self {
            users: b.users,
            refresh_tokens: b.refresh_tokens,
            products: b.products,
            reviews: b.reviews,
            orders: b.orders,
            checkout: b.checkout,
            payments: b.payments,
            idempotency: b.idempotency,
            licenses: b.licenses,
            assets: b.assets,
            blobs: b.blobs,
            notifications: b.notifications,
            outbox: b.outbox_store,
            inbox: b.inbox,
            dead_letters: b.dead_letters,
            publisher: b.publisher,
            subscriber: b.subscriber,
            probes: Vec::new(),
        }
    }

    /// Opens and migrates `database`; blobs go to `<data_dir>/blobs`; the
    /// bus is in-process.
    ///
    /// # Errors
    /// [`bazaar_core::Error::Unavailable`] when the database cannot be
    /// opened or migrated, or the blob directory cannot be created.
    pub async fn open(database: &Database, data_dir: &Path, clock: Arc<dyn Clock>) -> Result<Self> {
        let blobs: Arc<dyn BlobStore> = Arc::new(LocalBlobStore::open(data_dir.join("blobs")).await?);
        let bus = Arc::new(InProcessBus::new(clock.clone()));
        match database {
            Database::Sqlite(url) => {
                if let Some(path) = url.strip_prefix("sqlite://").filter(|p| !p.starts_with(':')) {
                    let dir = Path::new(path).parent().filter(|d| !d.as_os_str().is_empty());
                    if let Some(dir) = dir {
                        tokio::fs::create_dir_all(dir)
                            .await
                            .map_err(|e| bazaar_core::Error::unavailable("data directory", e))?;
                    }
                }
                let db = SqliteStore::connect(url).await?;
                db.migrate().await?;
                Ok(Self::sqlite(db, blobs, bus).with_search_cache(clock))
            }
            Database::Postgres(url) => {
                let db = PgStore::connect(url).await?;
                db.migrate().await?;
                Ok(Self::postgres(db, blobs, bus).with_search_cache(clock))
            }
        }
    }

    /// The ports the core services run on, for [`Services::wire`](bazaar_core::services::Services::wire).
    pub fn ports(&self) -> Ports {
        Ports {
            products: self.products.clone(),
            reviews: self.reviews.clone(),
            orders: self.orders.clone(),
            payments: self.payments.clone(),
            checkout: self.checkout.clone(),
            idempotency: self.idempotency.clone(),
            licenses: self.licenses.clone(),
            assets: self.assets.clone(),
            blobs: self.blobs.clone(),
            notifications: self.notifications.clone(),
            outbox: self.outbox.clone(),
            publisher: self.publisher.clone(),
            subscriber: self.subscriber.clone(),
            inbox: self.inbox.clone(),
            dead_letters: self.dead_letters.clone(),
        }
    }

    /// Puts a [`CachedSearch`] in front of the product store: repeated
    /// catalog searches are served from memory for up to a second (writes
    /// through this process invalidate at once). See
    /// [`bazaar_core::catalog::CachedSearch`] for what may be stale and for how long.
    pub fn with_search_cache(mut self, clock: Arc<dyn Clock>) -> Self {
        self.products = Arc::new(CachedSearch::new(self.products, clock));
        self
    }

    /// The same ports with `bus` as publisher and subscriber (and its
    /// readiness probe added): how [`crate::App::build`] puts the broker
    /// that [`Bus::open`] picked in place of the in-process bus.
    #[must_use]
    pub fn with_bus(mut self, bus: Bus) -> Self {
        self.publisher = bus.publisher;
        self.subscriber = bus.subscriber;
        self.probes.extend(bus.probe);
        self
    }

    /// Every port on one SQLite database.
    pub fn sqlite(db: SqliteStore, blobs: Arc<dyn BlobStore>, bus: Arc<InProcessBus>) -> Self {
        sql_stores!(db, blobs, bus)
    }

    /// Every port on one PostgreSQL database.
    pub fn postgres(db: PgStore, blobs: Arc<dyn BlobStore>, bus: Arc<InProcessBus>) -> Self {
        sql_stores!(db, blobs, bus)
    }
}
