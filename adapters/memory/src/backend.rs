//! Every in-memory adapter in one bundle, and the whole marketplace wired
//! on top of it (services, event handlers, relay, in-process bus), for
//! examples, tests and single-process deployments.
//!
//! # Example
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use bazaar_core::clock::ManualClock;
//! use bazaar_memory::{MarketplaceOptions, MemoryMarketplace};
//!
//! let market = MemoryMarketplace::new(MarketplaceOptions::new(Arc::new(ManualClock::at_epoch_secs(1_700_000_000))));
//! // Nothing happened yet, so there is nothing to relay or dispatch.
//! assert_eq!(market.pump().await.unwrap(), 0);
//! # });
//! ```

use std::fmt;
use std::sync::Arc;

use bazaar_core::Result;
use bazaar_core::assets::{AssetRepository, BlobStore, DownloadService, UrlSigner};
use bazaar_core::auth::{RefreshTokenStore, UserRepository};
use bazaar_core::catalog::{CatalogService, ProductRepository, ReviewRepository};
use bazaar_core::clock::Clock;
use bazaar_core::entropy::{Entropy, OsEntropy};
use bazaar_core::events::handlers::FulfillmentHandler;
use bazaar_core::events::{
    DeadLetterStore, Dispatcher, DispatcherConfig, EventHandler, EventPublisher, EventSubscriber, Inbox, OutboxStore,
    Relay,
};
use bazaar_core::licensing::{LicenseRepository, LicenseService, LicenseSigner};
use bazaar_core::notifications::{LogSender, NotificationRepository, NotificationSender, NotificationService};
use bazaar_core::orders::{IdempotencyStore, OrderRepository, OrderService};
use bazaar_core::payments::{Checkout, PaymentRepository, PaymentService, SandboxProvider, SeparateCheckout};
use bazaar_core::services::{Ports, ServiceKeys, ServiceOptions, Services};

use crate::{
    InProcessBus, MemoryAssets, MemoryBlobStore, MemoryCatalog, MemoryDeadLetters, MemoryIdempotency, MemoryInbox,
    MemoryLicenses, MemoryNotifications, MemoryOrders, MemoryOutbox, MemoryPayments, MemoryRefreshTokens, MemoryUsers,
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
        Self {
            users: Arc::new(MemoryUsers::new(outbox.clone())),
            refresh_tokens: Arc::new(MemoryRefreshTokens::new()),
            products: Arc::new(catalog.products()),
            reviews: Arc::new(catalog.reviews()),
            checkout: Arc::new(SeparateCheckout::new(orders.clone(), payments.clone())),
            orders,
            payments,
            idempotency: Arc::new(MemoryIdempotency::new()),
            licenses: Arc::new(MemoryLicenses::new(outbox.clone())),
            assets: Arc::new(MemoryAssets::new(outbox.clone())),
            blobs: Arc::new(MemoryBlobStore::new()),
            notifications: Arc::new(MemoryNotifications::new()),
            outbox_store: Arc::new(outbox.clone()),
            publisher: bus.clone(),
            subscriber: bus.clone(),
            bus,
            inbox: Arc::new(MemoryInbox::new()),
            dead_letters: Arc::new(MemoryDeadLetters::new()),
            outbox,
        }
    }

    /// The ports the services run on, for [`Services::wire`].
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
            outbox: self.outbox_store.clone(),
            publisher: self.publisher.clone(),
            subscriber: self.subscriber.clone(),
            inbox: self.inbox.clone(),
            dead_letters: self.dead_letters.clone(),
        }
    }
}

/// How [`MemoryMarketplace::new`] builds the marketplace.
#[derive(Clone)]
pub struct MarketplaceOptions {
    /// Time for every service and the bus.
    pub clock: Arc<dyn Clock>,
    /// Randomness for the license signing key and the download URL secret.
    pub entropy: Arc<dyn Entropy>,
    /// How notifications go out ([`LogSender`] by default).
    pub sender: Arc<dyn NotificationSender>,
    /// Retry and dead-letter policy of the dispatcher.
    pub dispatcher: DispatcherConfig,
    /// Handlers to run besides the marketplace's own.
    pub extra_handlers: Vec<Arc<dyn EventHandler>>,
    /// The sandbox payment provider's webhook signing secret.
    pub webhook_secret: Vec<u8>,
}

impl fmt::Debug for MarketplaceOptions {
    // The webhook secret stays out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MarketplaceOptions").field("dispatcher", &self.dispatcher).finish_non_exhaustive()
    }
}

impl MarketplaceOptions {
    /// Defaults: OS entropy, the log sender, [`DispatcherConfig::default`],
    /// no extra handlers, a random webhook secret.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        let entropy: Arc<dyn Entropy> = Arc::new(OsEntropy);
        let webhook_secret = entropy.bytes32().to_vec();
        Self {
            clock,
            entropy,
            sender: Arc::new(LogSender),
            dispatcher: DispatcherConfig::default(),
            extra_handlers: Vec::new(),
            webhook_secret,
        }
    }
}

/// The whole marketplace on in-memory adapters: every core service, the
/// event handlers behind a [`Dispatcher`], the outbox [`Relay`] and the
/// in-process bus. [`MemoryMarketplace::pump`] moves events until quiet.
pub struct MemoryMarketplace {
    /// The adapters.
    pub backend: MemoryBackend,
    /// The clock everything reads.
    pub clock: Arc<dyn Clock>,
    /// Catalog and moderation.
    pub catalog: Arc<CatalogService>,
    /// The sandbox provider payments go through.
    pub provider: Arc<SandboxProvider>,
    /// Payments.
    pub payments: Arc<PaymentService>,
    /// Orders.
    pub orders: Arc<OrderService>,
    /// Licensing.
    pub licenses: Arc<LicenseService>,
    /// Asset uploads and licensed downloads.
    pub downloads: Arc<DownloadService>,
    /// Notifications.
    pub notifications: Arc<NotificationService>,
    /// The fulfilment handler (`payment.succeeded`), also registered with the dispatcher.
    pub fulfillment: Arc<FulfillmentHandler>,
    /// Outbox → bus.
    pub relay: Relay,
    /// Bus → handlers.
    pub dispatcher: Dispatcher,
}

impl fmt::Debug for MemoryMarketplace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryMarketplace")
            .field("backend", &self.backend)
            .field("dispatcher", &self.dispatcher)
            .finish_non_exhaustive()
    }
}

impl MemoryMarketplace {
    /// The consumer group the dispatcher reads.
    pub const CONSUMER: &'static str = "worker";

    /// Outbox entries relayed per batch by [`MemoryMarketplace::pump`].
    pub const RELAY_BATCH: usize = 100;

    /// Builds every service over a fresh [`MemoryBackend`].
    pub fn new(options: MarketplaceOptions) -> Self {
        let MarketplaceOptions { clock, entropy, sender, dispatcher, extra_handlers, webhook_secret } = options;
        let backend = MemoryBackend::new(clock.clone());
        let keys = ServiceKeys {
            license_signer: LicenseSigner::generate(entropy.as_ref()),
            url_signer: UrlSigner::generate(entropy.as_ref()),
            webhook_secret,
        };
        let services = Services::wire(
            backend.ports(),
            keys,
            ServiceOptions { clock: clock.clone(), sender, dispatcher, extra_handlers },
        );
        let Services {
            catalog,
            provider,
            payments,
            orders,
            licenses,
            license_public_key: _,
            downloads,
            notifications,
            fulfillment,
            relay,
            dispatcher,
        } = services;

        Self {
            backend,
            clock,
            catalog,
            provider,
            payments,
            orders,
            licenses,
            downloads,
            notifications,
            fulfillment,
            relay,
            dispatcher,
        }
    }

    /// Relays the outbox and dispatches the bus until neither has anything
    /// due (handlers commit new events, which need relaying in turn).
    /// Returns how many deliveries were taken. Deliveries waiting out a
    /// retry delay are left for a later call, after the clock moved.
    ///
    /// # Errors
    /// The relay's or the dispatcher's own errors (handler failures are
    /// retried or dead-lettered, not returned).
    pub async fn pump(&self) -> Result<usize> {
        bazaar_core::events::pump(&self.relay, &self.dispatcher, Self::CONSUMER, Self::RELAY_BATCH).await
    }
}
