//! [`MarketplaceBuilder`]: every port and business setting of the
//! marketplace, each with its default, set before anything is built.

use std::fmt;
use std::sync::Arc;

use super::{Marketplace, Ports};
use crate::assets::{
    AssetLimits, DEFAULT_URL_TTL_SECS, DownloadDeps, DownloadService, EicarScanner, Scanner, UrlSigner,
};
use crate::auth::{
    AuthConfig, AuthDeps, AuthService, Email, PasswordHasher, SignInLimits, SignInThrottle, TokenIssuer,
};
use crate::catalog::{CatalogService, RatingPrior, SearchIndex};
use crate::clock::{Clock, SystemClock};
use crate::entropy::{Entropy, OsEntropy};
use crate::error::{Error, FieldError, Result};
use crate::events::{Dispatcher, DispatcherConfig, EventHandler, Relay};
use crate::licensing::{LicenseService, LicenseSigner, Limits, Permissions};
use crate::money::FeeRate;
use crate::notifications::{LiveNotifications, LogSender, NotificationSender, NotificationService};
use crate::orders::{OrderConfig, OrderDeps, OrderService};
use crate::payments::{PaymentProvider, PaymentService, SandboxProvider};
use crate::resilience::rate_limit::RateLimitStore;
use crate::webhooks::{DeliveryTerms, EndpointPolicy, WebhookDeliverer, WebhookService, WebhookTransport};
use crate::workflows::{FulfillmentHandler, NotificationHandler, RevocationHandler, SalesWebhooks};

/// The secrets the marketplace signs with.
pub struct SigningKeys {
    /// Signs license keys (Ed25519); its public half verifies them offline.
    pub license: LicenseSigner,
    /// Signs download URLs (HMAC).
    pub urls: UrlSigner,
    /// Signs the sandbox payment provider's webhooks.
    pub webhook_secret: Vec<u8>,
}

impl fmt::Debug for SigningKeys {
    // Secrets stay out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKeys").field("license", &self.license).finish_non_exhaustive()
    }
}

impl SigningKeys {
    /// Fresh keys drawn from `entropy`.
    pub fn generate(entropy: &dyn Entropy) -> Self {
        Self {
            license: LicenseSigner::generate(entropy),
            urls: UrlSigner::generate(entropy),
            webhook_secret: entropy.bytes32().to_vec(),
        }
    }
}

/// Builds a [`Marketplace`]. Start from [`Marketplace::builder`]; every
/// setter replaces one default, and [`build`](Self::build) wires it all.
///
/// | setting | default |
/// |---|---|
/// | [`clock`](Self::clock) | [`SystemClock`] |
/// | [`entropy`](Self::entropy) | [`OsEntropy`] |
/// | [`keys`](Self::keys) | [`SigningKeys::generate`] from the entropy: keys, URLs and webhooks signed before a restart stop verifying, so persist keys in production |
/// | [`payment_provider`](Self::payment_provider) | [`SandboxProvider`] signing webhooks with the keys' webhook secret |
/// | [`scanner`](Self::scanner) | [`EicarScanner`] |
/// | [`notification_sender`](Self::notification_sender) | [`LogSender`] |
/// | [`passwords`](Self::passwords), [`tokens`](Self::tokens) | none: required (`bazaar-auth` has argon2id and JWT) |
/// | [`orders`](Self::orders) / [`fee_rate`](Self::fee_rate) | [`OrderConfig::default`]: 20 % fee, USD for free orders, keys kept 24 h and held 60 s by a request |
/// | [`license_terms`](Self::license_terms) | [`Permissions::default`], [`Limits::default`]: 20 downloads, 5 machines, no expiry |
/// | [`asset_limits`](Self::asset_limits) | [`AssetLimits::default`]: 50 MiB, common archive, document and image types |
/// | [`download_url_ttl`](Self::download_url_ttl) | 5 minutes |
/// | [`rating_prior`](Self::rating_prior) | [`RatingPrior::DEFAULT`] |
/// | [`auth`](Self::auth) | [`AuthConfig::default`]: 15-minute access tokens, 30-day sessions |
/// | [`sign_in_limits`](Self::sign_in_limits) | [`SignInLimits::default`]: per client 5 at once then 10 a minute, per account 10 at once then 1 a minute |
/// | [`sign_in_store`](Self::sign_in_store) | none: the quotas are kept in this process |
/// | [`refuse_sign_in`](Self::refuse_sign_in) | none |
/// | [`dispatcher`](Self::dispatcher) | [`DispatcherConfig::default`]: 5 attempts, exponential backoff |
/// | [`handler`](Self::handler) | none besides the marketplace's own |
/// | [`live_notifications`](Self::live_notifications) | off: no `notification.created` events |
/// | [`live_buffer`](Self::live_buffer) | [`LiveNotifications::DEFAULT_BUFFER`] notifications per stream |
/// | [`webhook_policy`](Self::webhook_policy) | [`EndpointPolicy::default`]: `https://` to public hosts only, rotated secrets sign 24 h more, 10 endpoints per vendor |
/// | [`webhook_transport`](Self::webhook_transport) | none: deliveries are queued but not sent (`bazaar-webhooks` has the reqwest one) |
/// | [`delivery_terms`](Self::delivery_terms) | [`DeliveryTerms::default`]: 10 attempts over 21–43 minutes (waits from 5 s, doubling), 10 s deadline, 10 per second and a breaker per endpoint |
pub struct MarketplaceBuilder {
    ports: Ports,
    clock: Arc<dyn Clock>,
    entropy: Arc<dyn Entropy>,
    keys: Option<SigningKeys>,
    provider: Option<Arc<dyn PaymentProvider>>,
    scanner: Arc<dyn Scanner>,
    sender: Arc<dyn NotificationSender>,
    passwords: Option<Arc<dyn PasswordHasher>>,
    tokens: Option<Arc<dyn TokenIssuer>>,
    orders: OrderConfig,
    permissions: Permissions,
    limits: Limits,
    asset_limits: AssetLimits,
    url_ttl: chrono::Duration,
    rating_prior: RatingPrior,
    auth: AuthConfig,
    sign_in_limits: SignInLimits,
    sign_in_store: Option<Arc<dyn RateLimitStore>>,
    refused_sign_ins: Vec<Email>,
    dispatcher: DispatcherConfig,
    handlers: Vec<Arc<dyn EventHandler>>,
    search: Option<Arc<dyn SearchIndex>>,
    live_notifications: bool,
    live_buffer: usize,
    webhook_policy: EndpointPolicy,
    webhook_transport: Option<Arc<dyn WebhookTransport>>,
    delivery_terms: DeliveryTerms,
}

impl fmt::Debug for MarketplaceBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MarketplaceBuilder")
            .field("orders", &self.orders)
            .field("asset_limits", &self.asset_limits)
            .field("url_ttl", &self.url_ttl)
            .field("auth", &self.auth)
            .field("dispatcher", &self.dispatcher)
            .finish_non_exhaustive()
    }
}

impl MarketplaceBuilder {
    /// Every setting at its default (see the table above).
    pub fn new(ports: Ports) -> Self {
        Self {
            ports,
            clock: Arc::new(SystemClock),
            entropy: Arc::new(OsEntropy),
            keys: None,
            provider: None,
            scanner: Arc::new(EicarScanner),
            sender: Arc::new(LogSender),
            passwords: None,
            tokens: None,
            orders: OrderConfig::default(),
            permissions: Permissions::default(),
            limits: Limits::default(),
            asset_limits: AssetLimits::default(),
            url_ttl: chrono::Duration::seconds(DEFAULT_URL_TTL_SECS),
            rating_prior: RatingPrior::DEFAULT,
            auth: AuthConfig::default(),
            sign_in_limits: SignInLimits::default(),
            sign_in_store: None,
            refused_sign_ins: Vec::new(),
            dispatcher: DispatcherConfig::default(),
            handlers: Vec::new(),
            search: None,
            live_notifications: false,
            live_buffer: LiveNotifications::DEFAULT_BUFFER,
            webhook_policy: EndpointPolicy::default(),
            webhook_transport: None,
            delivery_terms: DeliveryTerms::default(),
        }
    }

    /// Time for every service.
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Randomness: generated keys, refresh tokens.
    #[must_use]
    pub fn entropy(mut self, entropy: Arc<dyn Entropy>) -> Self {
        self.entropy = entropy;
        self
    }

    /// The signing keys (load them from where they are kept).
    #[must_use]
    pub fn keys(mut self, keys: SigningKeys) -> Self {
        self.keys = Some(keys);
        self
    }

    /// Where payments go.
    #[must_use]
    pub fn payment_provider(mut self, provider: Arc<dyn PaymentProvider>) -> Self {
        self.provider = Some(provider);
        self
    }

    /// The malware scanner every upload goes through.
    #[must_use]
    pub fn scanner(mut self, scanner: Arc<dyn Scanner>) -> Self {
        self.scanner = scanner;
        self
    }

    /// How notifications leave the marketplace.
    #[must_use]
    pub fn notification_sender(mut self, sender: Arc<dyn NotificationSender>) -> Self {
        self.sender = sender;
        self
    }

    /// Password hashing (required).
    #[must_use]
    pub fn passwords(mut self, passwords: Arc<dyn PasswordHasher>) -> Self {
        self.passwords = Some(passwords);
        self
    }

    /// Access tokens (required).
    #[must_use]
    pub fn tokens(mut self, tokens: Arc<dyn TokenIssuer>) -> Self {
        self.tokens = Some(tokens);
        self
    }

    /// Order settings: fee, the currency of free orders, idempotency.
    #[must_use]
    pub fn orders(mut self, config: OrderConfig) -> Self {
        self.orders = config;
        self
    }

    /// The platform's commission on every order line.
    #[must_use]
    pub fn fee_rate(mut self, rate: FeeRate) -> Self {
        self.orders.fee_rate = rate;
        self
    }

    /// What every license issued from now grants.
    #[must_use]
    pub fn license_terms(mut self, permissions: Permissions, limits: Limits) -> Self {
        self.permissions = permissions;
        self.limits = limits;
        self
    }

    /// What uploads are accepted.
    #[must_use]
    pub fn asset_limits(mut self, limits: AssetLimits) -> Self {
        self.asset_limits = limits;
        self
    }

    /// How long a signed download URL lives.
    #[must_use]
    pub fn download_url_ttl(mut self, ttl: std::time::Duration) -> Self {
        self.url_ttl = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
        self
    }

    /// The prior of the Bayesian display rating.
    #[must_use]
    pub fn rating_prior(mut self, prior: RatingPrior) -> Self {
        self.rating_prior = prior;
        self
    }

    /// Token lifetimes.
    #[must_use]
    pub fn auth(mut self, config: AuthConfig) -> Self {
        self.auth = config;
        self
    }

    /// The sign-in quotas per client address and per account.
    #[must_use]
    pub fn sign_in_limits(mut self, limits: SignInLimits) -> Self {
        self.sign_in_limits = limits;
        self
    }

    /// Keeps the sign-in quotas in `store` (Redis: `bazaar-redis`'s
    /// `RedisRateLimitStore`), so every process using it spends the same
    /// ones.
    #[must_use]
    pub fn sign_in_store(mut self, store: Arc<dyn RateLimitStore>) -> Self {
        self.sign_in_store = Some(store);
        self
    }

    /// Refuses to sign in these accounts (login and refresh answer as to a
    /// wrong password): accounts whose password is public, such as a
    /// demo's, when the process is not a demo.
    #[must_use]
    pub fn refuse_sign_in(mut self, emails: impl IntoIterator<Item = Email>) -> Self {
        self.refused_sign_ins.extend(emails);
        self
    }

    /// Retry and dead-letter policy of the event dispatcher.
    #[must_use]
    pub fn dispatcher(mut self, config: DispatcherConfig) -> Self {
        self.dispatcher = config;
        self
    }

    /// An event handler to run after the marketplace's own.
    #[must_use]
    pub fn handler(mut self, handler: Arc<dyn EventHandler>) -> Self {
        self.handlers.push(handler);
        self
    }

    /// Where catalog searches are answered. Default: the product store's
    /// own search ([`StoreSearch`](crate::catalog::StoreSearch)), so nothing
    /// changes for an embedder who sets none. A read model set here is also
    /// told of every product the catalog service writes; keeping it current
    /// with other processes' writes (a
    /// [`SearchIndexer`](crate::workflows::SearchIndexer) consuming the
    /// product events) and rebuilding it at start
    /// ([`rebuild_from_store`](crate::catalog::rebuild_from_store)) is the
    /// composition root's part, because each process needs its own
    /// consumer.
    #[must_use]
    pub fn search_index(mut self, index: Arc<dyn SearchIndex>) -> Self {
        self.search = Some(index);
        self
    }

    /// Whether stored in-app notifications are published on the bus as
    /// `notification.created` events, which is what the live streams of
    /// [`Marketplace::live`] in every process receive. Default: off, so an
    /// embedder that streams nothing puts nothing extra on its bus; the
    /// `bazaar` servers turn it on.
    #[must_use]
    pub fn live_notifications(mut self, publish: bool) -> Self {
        self.live_notifications = publish;
        self
    }

    /// Notifications buffered per live stream before a client that reads
    /// too slowly is dropped. Default:
    /// [`LiveNotifications::DEFAULT_BUFFER`].
    #[must_use]
    pub fn live_buffer(mut self, buffer: usize) -> Self {
        self.live_buffer = buffer;
        self
    }

    /// What webhook endpoints vendors may register.
    #[must_use]
    pub fn webhook_policy(mut self, policy: EndpointPolicy) -> Self {
        self.webhook_policy = policy;
        self
    }

    /// How webhook deliveries are POSTed. Without one they are queued and
    /// kept, and a marketplace built with one later sends them.
    #[must_use]
    pub fn webhook_transport(mut self, transport: Arc<dyn WebhookTransport>) -> Self {
        self.webhook_transport = Some(transport);
        self
    }

    /// Attempts, backoff, deadline, rate and breaker of webhook deliveries.
    #[must_use]
    pub fn delivery_terms(mut self, terms: DeliveryTerms) -> Self {
        self.delivery_terms = terms;
        self
    }

    /// Wires every service. The dispatcher runs fulfilment
    /// (`payment.succeeded` → licenses), revocation (refunds) and
    /// notifications, then the added handlers.
    ///
    /// # Errors
    /// [`Error::Validation`] naming each missing required port
    /// (`passwords`, `tokens`) and each setting out of range
    /// (`download_url_ttl` must be positive; `delivery_terms` need at least
    /// one attempt, a batch, a deadline and a lease longer than it).
    pub fn build(self) -> Result<Marketplace> {
        let mut missing = Vec::new();
        if self.passwords.is_none() {
            missing.push(FieldError::new("passwords", "a PasswordHasher is required (bazaar-auth: Argon2Passwords)"));
        }
        if self.tokens.is_none() {
            missing.push(FieldError::new("tokens", "a TokenIssuer is required (bazaar-auth: JwtTokens)"));
        }
        if self.url_ttl <= chrono::Duration::zero() {
            missing.push(FieldError::new("download_url_ttl", "must be positive"));
        }
        let terms = self.delivery_terms;
        if terms.max_attempts == 0 || terms.batch == 0 || terms.timeout.is_zero() || terms.lease <= terms.timeout * 2 {
            missing.push(FieldError::new(
                "delivery_terms",
                "need max_attempts and batch above 0, a timeout above 0 and a lease above twice the timeout",
            ));
        }
        if let Err(e) = terms.breaker.validate() {
            missing.push(FieldError::new("delivery_terms.breaker", e.to_string()));
        }
        let (Some(passwords), Some(tokens), true) = (self.passwords, self.tokens, missing.is_empty()) else {
            return Err(Error::Validation(missing));
        };
        let Self { ports: p, clock, entropy, keys, provider, scanner, sender, .. } = self;
        let keys = keys.unwrap_or_else(|| SigningKeys::generate(entropy.as_ref()));
        let provider: Arc<dyn PaymentProvider> =
            provider.unwrap_or_else(|| Arc::new(SandboxProvider::new(clock.clone(), keys.webhook_secret.clone())));

        let mut catalog = CatalogService::new(p.products.clone(), p.reviews.clone(), p.licenses.clone(), clock.clone())
            .with_rating_prior(self.rating_prior);
        if let Some(index) = self.search {
            catalog = catalog.with_search_index(index);
        }
        let catalog = Arc::new(catalog);
        let payments = Arc::new(PaymentService::new(p.payments.clone(), provider, clock.clone()));
        let orders = Arc::new(OrderService::new(
            OrderDeps {
                orders: p.orders.clone(),
                products: p.products.clone(),
                licenses: p.licenses.clone(),
                payments: payments.clone(),
                checkout: p.checkout.clone(),
                idempotency: p.idempotency.clone(),
                clock: clock.clone(),
            },
            self.orders,
        ));
        let license_public_key = keys.license.public_key();
        let licenses = Arc::new(
            LicenseService::new(p.licenses.clone(), keys.license, clock.clone())
                .with_terms(self.permissions, self.limits),
        );
        let downloads = Arc::new(
            DownloadService::new(
                DownloadDeps {
                    licenses: p.licenses.clone(),
                    assets: p.assets.clone(),
                    blobs: p.blobs.clone(),
                    scanner,
                    products: p.products.clone(),
                },
                keys.urls,
                clock.clone(),
            )
            .with_limits(self.asset_limits)
            .with_url_ttl(self.url_ttl),
        );
        let mut notifications = NotificationService::new(p.notifications.clone(), sender, clock.clone());
        if self.live_notifications {
            notifications = notifications.publishing_to(p.publisher.clone());
        }
        let notifications = Arc::new(notifications);
        let live = Arc::new(LiveNotifications::new(p.subscriber.clone(), self.live_buffer));
        let auth = Arc::new(
            AuthService::new(
                AuthDeps {
                    users: p.users.clone(),
                    sessions: p.refresh_tokens.clone(),
                    passwords,
                    tokens,
                    clock: clock.clone(),
                    entropy: entropy.clone(),
                    throttle: Arc::new(match self.sign_in_store {
                        Some(store) => SignInThrottle::shared(store, self.sign_in_limits),
                        None => SignInThrottle::local(self.sign_in_limits),
                    }),
                },
                self.auth,
            )
            .refusing_sign_in(self.refused_sign_ins),
        );

        let webhooks =
            Arc::new(WebhookService::new(p.webhooks.clone(), entropy.clone(), clock.clone(), self.webhook_policy));
        let webhook_deliverer = self.webhook_transport.map(|transport| {
            Arc::new(WebhookDeliverer::new(p.webhooks.clone(), transport, clock.clone(), self.delivery_terms))
        });

        let mut handlers: Vec<Arc<dyn EventHandler>> = vec![
            Arc::new(FulfillmentHandler::new(orders.clone(), licenses.clone())),
            Arc::new(RevocationHandler::new(licenses.clone())),
            Arc::new(NotificationHandler::new(notifications.clone())),
            Arc::new(SalesWebhooks::new(p.orders.clone(), webhooks.clone())),
        ];
        handlers.extend(self.handlers);
        let relay = Relay::new(p.outbox.clone(), p.publisher.clone(), clock.clone());
        let dispatcher = Dispatcher::new(
            p.subscriber.clone(),
            p.inbox.clone(),
            p.dead_letters.clone(),
            handlers,
            clock.clone(),
            self.dispatcher,
        );
        Ok(Marketplace {
            catalog,
            orders,
            payments,
            licenses,
            downloads,
            notifications,
            live,
            auth,
            webhooks,
            webhook_deliverer,
            relay,
            dispatcher,
            clock,
            license_public_key,
            probes: p.probes,
        })
    }
}
