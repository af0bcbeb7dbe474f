//! Every in-memory adapter in one bundle sharing one outbox, for examples,
//! tests and single-process deployments; [`MemoryBackend::ports`] hands them
//! to the core's marketplace builder.
//!
//! # Example
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use bazaar_auth::{Argon2Passwords, JwtTokens};
//! use bazaar_core::clock::ManualClock;
//! use bazaar_core::marketplace::Marketplace;
//! use bazaar_memory::MemoryBackend;
//!
//! let clock = Arc::new(ManualClock::at_epoch_secs(1_700_000_000));
//! let market = Marketplace::builder(MemoryBackend::new(clock.clone()).ports())
//!     .clock(clock)
//!     .passwords(Arc::new(Argon2Passwords::fast_for_tests()))
//!     .tokens(Arc::new(JwtTokens::new([7; 32])))
//!     .build()
//!     .unwrap();
//! // Nothing happened yet, so there is nothing to relay or dispatch.
//! assert_eq!(market.pump().await.unwrap(), 0);
//! # });
//! ```

use std::fmt;
use std::sync::Arc;

use bazaar_core::assets::{AssetRepository, BlobStore};
use bazaar_core::auth::{RefreshTokenStore, UserRepository};
use bazaar_core::catalog::{ProductRepository, ReviewRepository};
use bazaar_core::clock::Clock;
use bazaar_core::events::{DeadLetterStore, EventPublisher, EventSubscriber, Inbox, OutboxStore};
use bazaar_core::licensing::LicenseRepository;
use bazaar_core::marketplace::Ports;
use bazaar_core::notifications::NotificationRepository;
use bazaar_core::orders::{Checkout, IdempotencyStore, OrderRepository, SeparateCheckout};
use bazaar_core::payments::PaymentRepository;
use bazaar_core::webhooks::WebhookRepository;

use crate::{
    InProcessBus, MemoryAssets, MemoryBlobStore, MemoryCatalog, MemoryDeadLetters, MemoryIdempotency, MemoryInbox,
    MemoryLicenses, MemoryNotifications, MemoryOrders, MemoryOutbox, MemoryPayments, MemoryRefreshTokens, MemoryUsers,
    MemoryWebhooks,
};

/// Every port, implemented in memory, committing to one shared outbox.
#[derive(Clone)]
pub struct MemoryBackend {
    /// The outbox every repository appends to (also the relay's [`OutboxStore`]).
    pub outbox: MemoryOutbox,
    /// Users.
    pub users: Arc<dyn UserRepository>,
    /// Refresh-token families (login sessions).
    pub refresh_tokens: Arc<dyn RefreshTokenStore>,
    /// Products (shares storage with `reviews`).
    pub products: Arc<dyn ProductRepository>,
    /// Reviews (shares storage with `products`).
    pub reviews: Arc<dyn ReviewRepository>,
    /// Orders.
    pub orders: Arc<dyn OrderRepository>,
    /// Payment intents and the webhook inbox.
    pub payments: Arc<dyn PaymentRepository>,
    /// `orders` with `payments`, for placing and paying.
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
    /// Webhook endpoints and deliveries.
    pub webhooks: Arc<dyn WebhookRepository>,
    /// The outbox's relay side.
    pub outbox_store: Arc<dyn OutboxStore>,
    /// The in-process bus (publisher and subscriber).
    pub bus: Arc<InProcessBus>,
    /// `bus` as the relay's publisher.
    pub publisher: Arc<dyn EventPublisher>,
    /// `bus` as the dispatcher's subscriber.
    pub subscriber: Arc<dyn EventSubscriber>,
    /// Processed-event inbox.
    pub inbox: Arc<dyn Inbox>,
    /// Dead letters.
    pub dead_letters: Arc<dyn DeadLetterStore>,
}

impl fmt::Debug for MemoryBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryBackend").field("outbox", &self.outbox).field("bus", &self.bus).finish_non_exhaustive()
    }
}

impl MemoryBackend {
    /// Fresh, empty adapters; the bus reads time from `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        let outbox = MemoryOutbox::new();
        let catalog = MemoryCatalog::new(outbox.clone());
        let bus = Arc::new(InProcessBus::new(clock));
        let orders: Arc<dyn OrderRepository> = Arc::new(MemoryOrders::new(outbox.clone()));
        let payments: Arc<dyn PaymentRepository> = Arc::new(MemoryPayments::new(outbox.clone()));
        let idempotency: Arc<dyn IdempotencyStore> = Arc::new(MemoryIdempotency::new());
        Self {
            users: Arc::new(MemoryUsers::new(outbox.clone())),
            refresh_tokens: Arc::new(MemoryRefreshTokens::new()),
            products: Arc::new(catalog.products()),
            reviews: Arc::new(catalog.reviews()),
            checkout: Arc::new(SeparateCheckout::new(orders.clone(), payments.clone(), idempotency.clone())),
            orders,
            payments,
            idempotency,
            licenses: Arc::new(MemoryLicenses::new(outbox.clone())),
            assets: Arc::new(MemoryAssets::new(outbox.clone())),
            blobs: Arc::new(MemoryBlobStore::new()),
            notifications: Arc::new(MemoryNotifications::new()),
            webhooks: Arc::new(MemoryWebhooks::new()),
            outbox_store: Arc::new(outbox.clone()),
            publisher: bus.clone(),
            subscriber: bus.clone(),
            bus,
            inbox: Arc::new(MemoryInbox::new()),
            dead_letters: Arc::new(MemoryDeadLetters::new()),
            outbox,
        }
    }

    /// Every port, for [`Marketplace::builder`](bazaar_core::marketplace::Marketplace::builder).
    pub fn ports(&self) -> Ports {
        Ports {
            users: self.users.clone(),
            refresh_tokens: self.refresh_tokens.clone(),
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
            webhooks: self.webhooks.clone(),
            outbox: self.outbox_store.clone(),
            publisher: self.publisher.clone(),
            subscriber: self.subscriber.clone(),
            inbox: self.inbox.clone(),
            dead_letters: self.dead_letters.clone(),
            probes: Vec::new(),
        }
    }
}
