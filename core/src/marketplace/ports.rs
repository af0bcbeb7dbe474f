//! [`Ports`]: every backend the marketplace runs on, as `Arc<dyn Port>`s,
//! so the backend is picked at run time. Each store adapter produces one
//! (`MemoryBackend::ports`, `SqliteStore::ports`, `PgStore::ports`); a
//! broker replaces the bus with [`Ports::with_bus`].

use std::fmt;
use std::sync::Arc;

use crate::assets::{AssetRepository, BlobStore};
use crate::auth::{RefreshTokenStore, UserRepository};
use crate::catalog::{CachedSearch, ProductRepository, ReviewRepository};
use crate::clock::Clock;
use crate::events::{DeadLetterStore, EventPublisher, EventSubscriber, Inbox, OutboxStore};
use crate::health::Probe;
use crate::licensing::LicenseRepository;
use crate::notifications::NotificationRepository;
use crate::orders::{Checkout, IdempotencyStore, OrderRepository};
use crate::payments::PaymentRepository;
use crate::webhooks::WebhookRepository;

/// Where events travel between the relay and the dispatchers: a broker's
/// publisher and subscriber sides, and its readiness probe.
#[derive(Clone)]
pub struct Bus {
    /// Where the relay publishes.
    pub publisher: Arc<dyn EventPublisher>,
    /// Where dispatchers consume.
    pub subscriber: Arc<dyn EventSubscriber>,
    /// Its readiness check, when it has one worth running.
    pub probe: Option<Probe>,
}

impl fmt::Debug for Bus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bus").field("probe", &self.probe).finish_non_exhaustive()
    }
}

impl Bus {
    /// One broker for both sides, without a probe.
    pub fn new<B: EventPublisher + EventSubscriber + 'static>(bus: Arc<B>) -> Self {
        Self { publisher: bus.clone(), subscriber: bus, probe: None }
    }

    /// The same bus with a readiness probe.
    #[must_use]
    pub fn with_probe(mut self, probe: Probe) -> Self {
        self.probe = Some(probe);
        self
    }
}

/// Every port the marketplace runs on.
///
/// The stores of one backend share its transactions and its outbox: a
/// mutating call commits its events with its change. Mixing stores of two
/// backends breaks that unit of work, so take them all from one adapter.
#[derive(Clone)]
pub struct Ports {
    /// Accounts.
    pub users: Arc<dyn UserRepository>,
    /// Refresh-token families (sessions).
    pub refresh_tokens: Arc<dyn RefreshTokenStore>,
    /// Products (behind a search cache, see [`Ports::with_search_cache`]).
    pub products: Arc<dyn ProductRepository>,
    /// Reviews.
    pub reviews: Arc<dyn ReviewRepository>,
    /// Orders.
    pub orders: Arc<dyn OrderRepository>,
    /// Payment intents and the webhook inbox.
    pub payments: Arc<dyn PaymentRepository>,
    /// Orders with their intents, for placing and paying (a
    /// [`SeparateCheckout`](crate::orders::SeparateCheckout) of `orders`
    /// and `payments` where the store has nothing better). A store that
    /// holds orders and keys together completes keys in the same unit of
    /// work as the order.
    pub checkout: Arc<dyn Checkout>,
    /// `Idempotency-Key` records.
    pub idempotency: Arc<dyn IdempotencyStore>,
    /// Licenses and activations.
    pub licenses: Arc<dyn LicenseRepository>,
    /// Asset metadata.
    pub assets: Arc<dyn AssetRepository>,
    /// Asset bytes.
    pub blobs: Arc<dyn BlobStore>,
    /// Notifications and preferences.
    pub notifications: Arc<dyn NotificationRepository>,
    /// Vendors' webhook endpoints and the deliveries queued for them.
    pub webhooks: Arc<dyn WebhookRepository>,
    /// Events committed with the writes, waiting for the relay.
    pub outbox: Arc<dyn OutboxStore>,
    /// Where the relay publishes.
    pub publisher: Arc<dyn EventPublisher>,
    /// Where the dispatcher consumes.
    pub subscriber: Arc<dyn EventSubscriber>,
    /// Handled-event records (idempotent consumers).
    pub inbox: Arc<dyn Inbox>,
    /// Events that failed every attempt.
    pub dead_letters: Arc<dyn DeadLetterStore>,
    /// Readiness checks, one per backend that can be down.
    pub probes: Vec<Probe>,
}

impl fmt::Debug for Ports {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ports").field("probes", &self.probes).finish_non_exhaustive()
    }
}

impl Ports {
    /// The same ports with `bus` as publisher and subscriber (and its probe
    /// added): how a broker takes the place of the in-process bus.
    #[must_use]
    pub fn with_bus(mut self, bus: Bus) -> Self {
        self.publisher = bus.publisher;
        self.subscriber = bus.subscriber;
        self.probes.extend(bus.probe);
        self
    }

    /// The same ports with asset bytes in `blobs`.
    #[must_use]
    pub fn with_blobs(mut self, blobs: Arc<dyn BlobStore>) -> Self {
        self.blobs = blobs;
        self
    }

    /// Puts a [`CachedSearch`] in front of the product store: repeated
    /// catalog searches are served from memory for up to a second (writes
    /// through this process invalidate at once). See [`CachedSearch`] for
    /// what may be stale and for how long.
    #[must_use]
    pub fn with_search_cache(mut self, clock: Arc<dyn Clock>) -> Self {
        self.products = Arc::new(CachedSearch::new(self.products, clock));
        self
    }
}
