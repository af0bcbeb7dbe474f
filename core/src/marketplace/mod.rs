//! The whole marketplace, wired once: every service over one set of
//! [`Ports`], the event handlers behind a [`Dispatcher`], and the outbox
//! [`Relay`]. [`Marketplace::builder`] is the one place that knows which
//! service needs which port; composition roots (the `bazaar` binary, tests,
//! an embedding service) pick the adapters and settings and call it.
//!
//! Every port and setting has a documented default except the two
//! credential ports ([`PasswordHasher`](crate::auth::PasswordHasher),
//! [`TokenIssuer`](crate::auth::TokenIssuer)), which the `bazaar-auth`
//! adapter provides: [`MarketplaceBuilder::build`] names what is missing.
//!
//! # Example
//! An embedded marketplace over SQLite with its own payment provider and a
//! 10 % platform fee, in one expression:
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use bazaar_auth::{Argon2Passwords, JwtTokens};
//! use bazaar_core::clock::SystemClock;
//! use bazaar_core::marketplace::{Bus, Marketplace};
//! use bazaar_core::money::FeeRate;
//! use bazaar_core::payments::SandboxProvider;
//! use bazaar_memory::{InProcessBus, MemoryBlobStore};
//! use bazaar_sqlite::SqliteStore;
//!
//! let db = SqliteStore::connect("sqlite::memory:").await.unwrap();
//! db.migrate().await.unwrap();
//! # let my_provider = Arc::new(SandboxProvider::new(Arc::new(SystemClock), b"whsec".to_vec()));
//! let market = Marketplace::builder(db.ports(
//!         Bus::new(Arc::new(InProcessBus::new(Arc::new(SystemClock)))),
//!         Arc::new(MemoryBlobStore::new()),
//!     ))
//!     .payment_provider(my_provider)
//!     .fee_rate(FeeRate::from_bps(1_000).unwrap())
//!     .passwords(Arc::new(Argon2Passwords::default()))
//!     .tokens(Arc::new(JwtTokens::new([7; 32])))
//!     .build()
//!     .unwrap();
//! assert_eq!(market.orders.config().fee_rate.bps(), 1_000);
//! assert_eq!(market.pump().await.unwrap(), 0);
//! # });
//! ```

mod builder;
mod ports;

use std::fmt;
use std::sync::Arc;

pub use builder::{MarketplaceBuilder, SigningKeys};
pub use ports::{Bus, Ports};

use crate::assets::DownloadService;
use crate::auth::AuthService;
use crate::catalog::CatalogService;
use crate::clock::Clock;
use crate::error::Result;
use crate::events::{Dispatcher, Relay};
use crate::health::{PROBE_TIMEOUT, Probe, check_probes};
use crate::licensing::{LicensePublicKey, LicenseService};
use crate::notifications::{LiveNotifications, NotificationService};
use crate::orders::OrderService;
use crate::payments::PaymentService;
use crate::webhooks::{WebhookDeliverer, WebhookService};

/// Every service of the marketplace, the event plumbing and the readiness
/// probes of its backends.
pub struct Marketplace {
    /// Catalog, moderation, search and reviews.
    pub catalog: Arc<CatalogService>,
    /// Orders: placing, paying, cancelling, refunding.
    pub orders: Arc<OrderService>,
    /// Payment intents, provider webhooks and refunds.
    pub payments: Arc<PaymentService>,
    /// Licensing.
    pub licenses: Arc<LicenseService>,
    /// Asset uploads and licensed downloads.
    pub downloads: Arc<DownloadService>,
    /// Notifications.
    pub notifications: Arc<NotificationService>,
    /// This process's live notification streams, fed from the bus (see
    /// [`LiveNotifications`]); the composition root runs its follower.
    pub live: Arc<LiveNotifications>,
    /// Accounts and sessions.
    pub auth: Arc<AuthService>,
    /// Vendors' webhook endpoints, deliveries and replays.
    pub webhooks: Arc<WebhookService>,
    /// Sends queued webhook deliveries, when a
    /// [`webhook_transport`](MarketplaceBuilder::webhook_transport) was set;
    /// the composition root runs [`WebhookDeliverer::run_once`] in a loop
    /// (a worker does), or [`Marketplace::pump`] runs it once per pass.
    pub webhook_deliverer: Option<Arc<WebhookDeliverer>>,
    /// Outbox → bus.
    pub relay: Relay,
    /// Bus → handlers; dead letters.
    pub dispatcher: Dispatcher,
    /// The clock every service reads.
    pub clock: Arc<dyn Clock>,
    /// The public half of the license signing key (offline verification).
    pub license_public_key: LicensePublicKey,
    probes: Vec<Probe>,
}

impl fmt::Debug for Marketplace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Marketplace")
            .field("dispatcher", &self.dispatcher)
            .field("payments", &self.payments)
            .field("probes", &self.probes)
            .finish_non_exhaustive()
    }
}

/// One backend's readiness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    /// What was checked (`database`, `bus`, …).
    pub name: &'static str,
    /// `Err(cause)` when it failed; causes may name hosts, so they are for
    /// logs, not responses.
    pub outcome: std::result::Result<(), String>,
}

impl Marketplace {
    /// The consumer group the in-process dispatcher reads.
    pub const CONSUMER: &'static str = "worker";
    /// Outbox entries relayed per batch by [`Marketplace::pump`].
    pub const RELAY_BATCH: usize = 100;

    /// A builder over `ports`, with every setting at its default.
    pub fn builder(ports: Ports) -> MarketplaceBuilder {
        MarketplaceBuilder::new(ports)
    }

    /// Relays the outbox and dispatches the bus until neither has anything
    /// due, then sends the webhook deliveries due (one round, when a
    /// transport is set); returns how many events were handled. For tests
    /// and for single-process deployments' in-process worker.
    ///
    /// # Errors
    /// The relay's, the dispatcher's or the webhook store's own errors
    /// (handler and delivery failures are retried or dead-lettered, not
    /// returned).
    pub async fn pump(&self) -> Result<usize> {
        let handled = crate::events::pump(&self.relay, &self.dispatcher, Self::CONSUMER, Self::RELAY_BATCH).await?;
        if let Some(deliverer) = &self.webhook_deliverer {
            deliverer.run_once().await?;
        }
        Ok(handled)
    }

    /// Checks every backend at once, each within [`PROBE_TIMEOUT`].
    pub async fn readiness(&self) -> Vec<Readiness> {
        check_probes(&self.probes, PROBE_TIMEOUT)
            .await
            .into_iter()
            .map(|(name, outcome)| Readiness { name, outcome })
            .collect()
    }

    /// The readiness probes of the backends, for servers that run them on
    /// their own schedule (the gRPC health service).
    pub fn probes(&self) -> &[Probe] {
        &self.probes
    }
}
