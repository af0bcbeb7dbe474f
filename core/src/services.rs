//! Every marketplace service wired over a set of ports: the one place that
//! knows which service needs which port, and which handlers consume the
//! events. Composition roots (`bazaar-app`'s `Marketplace`, the in-memory
//! `MemoryMarketplace`) choose the adapters and keys and call
//! [`Services::wire`], so a new service or handler is added once.
//!
//! # Example
//! ```
//! use std::sync::Arc;
//! use bazaar_core::assets::UrlSigner;
//! use bazaar_core::clock::{Clock, ManualClock};
//! use bazaar_core::entropy::OsEntropy;
//! use bazaar_core::licensing::LicenseSigner;
//! use bazaar_core::services::{ServiceKeys, ServiceOptions, Services};
//! use bazaar_memory::MemoryBackend;
//!
//! let clock: Arc<dyn Clock> = Arc::new(ManualClock::at_epoch_secs(1_700_000_000));
//! let backend = MemoryBackend::new(clock.clone());
//! let keys = ServiceKeys {
//!     license_signer: LicenseSigner::generate(&OsEntropy),
//!     url_signer: UrlSigner::generate(&OsEntropy),
//!     webhook_secret: b"whsec_example".to_vec(),
//! };
//! let services = Services::wire(backend.ports(), keys, ServiceOptions::new(clock));
//! assert!(format!("{:?}", services.dispatcher).contains(r#"["fulfillment", "revocation", "notifications"]"#));
//! ```

use std::fmt;
use std::sync::Arc;

use crate::assets::{AssetRepository, BlobStore, DownloadDeps, DownloadService, EicarScanner, UrlSigner};
use crate::catalog::{CatalogService, ProductRepository, ReviewRepository};
use crate::clock::Clock;
use crate::events::handlers::{FulfillmentHandler, NotificationHandler, RevocationHandler};
use crate::events::{
    DeadLetterStore, Dispatcher, DispatcherConfig, EventHandler, EventPublisher, EventSubscriber, Inbox, OutboxStore,
    Relay,
};
use crate::licensing::{LicensePublicKey, LicenseRepository, LicenseService, LicenseSigner};
use crate::notifications::{LogSender, NotificationRepository, NotificationSender, NotificationService};
use crate::orders::{IdempotencyStore, OrderRepository, OrderService};
use crate::payments::{Checkout, PaymentRepository, PaymentService, SandboxProvider};

/// The ports the services run on (users and sessions are the composition
/// root's business and are not needed here).
#[derive(Clone)]
pub struct Ports {
    /// Products (behind a search cache, if the root wants one).
    pub products: Arc<dyn ProductRepository>,
    /// Reviews.
    pub reviews: Arc<dyn ReviewRepository>,
    /// Orders.
    pub orders: Arc<dyn OrderRepository>,
    /// Payment intents and refunds.
    pub payments: Arc<dyn PaymentRepository>,
    /// Orders with their intents, for placing and paying (a
    /// [`SeparateCheckout`](crate::payments::SeparateCheckout) of `orders`
    /// and `payments` where the store has nothing better).
    pub checkout: Arc<dyn Checkout>,
    /// `Idempotency-Key` records.
    pub idempotency: Arc<dyn IdempotencyStore>,
    /// Licenses and activations.
    pub licenses: Arc<dyn LicenseRepository>,
    /// Asset metadata.
    pub assets: Arc<dyn AssetRepository>,
    /// Asset bytes.
    pub blobs: Arc<dyn BlobStore>,
    /// Notifications.
    pub notifications: Arc<dyn NotificationRepository>,
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
}

impl fmt::Debug for Ports {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ports").finish_non_exhaustive()
    }
}

/// The secrets the services sign and verify with.
pub struct ServiceKeys {
    /// Signs license keys.
    pub license_signer: LicenseSigner,
    /// Signs download URLs.
    pub url_signer: UrlSigner,
    /// The sandbox payment provider's webhook signing secret.
    pub webhook_secret: Vec<u8>,
}

impl fmt::Debug for ServiceKeys {
    // Secrets stay out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceKeys").finish_non_exhaustive()
    }
}

/// Everything else [`Services::wire`] needs.
#[derive(Clone)]
pub struct ServiceOptions {
    /// Time for every service.
    pub clock: Arc<dyn Clock>,
    /// How notifications go out ([`LogSender`] by default).
    pub sender: Arc<dyn NotificationSender>,
    /// Retry and dead-letter policy of the dispatcher.
    pub dispatcher: DispatcherConfig,
    /// Handlers to run besides the marketplace's own.
    pub extra_handlers: Vec<Arc<dyn EventHandler>>,
}

impl fmt::Debug for ServiceOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceOptions")
            .field("dispatcher", &self.dispatcher)
            .field("extra_handlers", &self.extra_handlers.len())
            .finish_non_exhaustive()
    }
}

impl ServiceOptions {
    /// The log sender, [`DispatcherConfig::default`], no extra handlers.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self { clock, sender: Arc::new(LogSender), dispatcher: DispatcherConfig::default(), extra_handlers: Vec::new() }
    }
}

/// Every service, the event handlers behind a [`Dispatcher`], and the
/// outbox [`Relay`].
pub struct Services {
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
    /// The public half of the license signing key (offline verification).
    pub license_public_key: LicensePublicKey,
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

impl fmt::Debug for Services {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Services").field("dispatcher", &self.dispatcher).finish_non_exhaustive()
    }
}

impl Services {
    /// Wires every service over `ports`. The dispatcher runs fulfilment
    /// (`payment.succeeded` → licenses), revocation (refunds) and
    /// notifications, then `options.extra_handlers`.
    pub fn wire(ports: Ports, keys: ServiceKeys, options: ServiceOptions) -> Self {
        let ServiceOptions { clock, sender, dispatcher, extra_handlers } = options;
        let p = ports;
        let catalog =
            Arc::new(CatalogService::new(p.products.clone(), p.reviews.clone(), p.licenses.clone(), clock.clone()));
        let provider = Arc::new(SandboxProvider::new(clock.clone(), keys.webhook_secret));
        let payments = Arc::new(
            PaymentService::new(p.payments.clone(), p.orders.clone(), provider.clone(), clock.clone())
                .with_checkout(p.checkout.clone()),
        );
        let orders = Arc::new(
            OrderService::new(
                p.orders.clone(),
                p.products.clone(),
                p.licenses.clone(),
                payments.clone(),
                p.idempotency.clone(),
                clock.clone(),
            )
            .with_checkout(p.checkout),
        );
        let license_public_key = keys.license_signer.public_key();
        let licenses = Arc::new(LicenseService::new(p.licenses.clone(), keys.license_signer, clock.clone()));
        let downloads = Arc::new(DownloadService::new(
            DownloadDeps {
                licenses: p.licenses.clone(),
                assets: p.assets,
                blobs: p.blobs,
                scanner: Arc::new(EicarScanner),
                products: p.products,
            },
            keys.url_signer,
            clock.clone(),
        ));
        let notifications = Arc::new(NotificationService::new(p.notifications, sender, clock.clone()));
        let fulfillment = Arc::new(FulfillmentHandler::new(orders.clone(), licenses.clone()));
        let mut handlers: Vec<Arc<dyn EventHandler>> = vec![
            fulfillment.clone(),
            Arc::new(RevocationHandler::new(licenses.clone())),
            Arc::new(NotificationHandler::new(notifications.clone())),
        ];
        handlers.extend(extra_handlers);
        let relay = Relay::new(p.outbox, p.publisher, clock.clone());
        let dispatcher = Dispatcher::new(p.subscriber, p.inbox, p.dead_letters, handlers, clock, dispatcher);
        Self {
            catalog,
            provider,
            payments,
            orders,
            licenses,
            license_public_key,
            downloads,
            notifications,
            fulfillment,
            relay,
            dispatcher,
        }
    }
}
