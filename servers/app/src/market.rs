//! The marketplace of a Bazaar process: the core's builder over the opened
//! [`Ports`], the process's [`Keys`] and the credential adapters. Nothing is
//! wired here that the core's [`MarketplaceBuilder`] does not already wire;
//! this only chooses.

use std::fmt;
use std::sync::Arc;

use bazaar_auth::{Argon2Passwords, JwtTokens};
use bazaar_core::Result;
use bazaar_core::assets::UrlSigner;
use bazaar_core::auth::PasswordHasher;
use bazaar_core::catalog::SearchIndex;
use bazaar_core::clock::Clock;
use bazaar_core::entropy::{Entropy, OsEntropy};
use bazaar_core::events::{DispatcherConfig, EventHandler};
use bazaar_core::licensing::LicenseSigner;
use bazaar_core::marketplace::{Marketplace, MarketplaceBuilder, Ports, SigningKeys};
use bazaar_core::notifications::{LogSender, NotificationSender};
use bazaar_core::orders::OrderConfig;

use crate::keys::Keys;

/// What a process may choose besides the ports and keys.
#[derive(Clone)]
pub struct AppOptions {
    /// Time for every service.
    pub clock: Arc<dyn Clock>,
    /// Randomness (refresh tokens).
    pub entropy: Arc<dyn Entropy>,
    /// How notifications go out ([`LogSender`] by default).
    pub sender: Arc<dyn NotificationSender>,
    /// Retry and dead-letter policy of the dispatcher.
    pub dispatcher: DispatcherConfig,
    /// Handlers to run besides the marketplace's own.
    pub extra_handlers: Vec<Arc<dyn EventHandler>>,
    /// Password hashing (argon2id with production parameters by default).
    pub passwords: Arc<dyn PasswordHasher>,
    /// Where catalog searches are answered; `None` = the store's own search.
    pub search: Option<Arc<dyn SearchIndex>>,
    /// Fee rate, currency and idempotency terms ([`OrderConfig::default`]).
    pub orders: OrderConfig,
}

impl fmt::Debug for AppOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppOptions").field("dispatcher", &self.dispatcher).finish_non_exhaustive()
    }
}

impl AppOptions {
    /// Defaults: OS entropy, the log sender, [`DispatcherConfig::default`],
    /// argon2id with OWASP's parameters.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            entropy: Arc::new(OsEntropy),
            sender: Arc::new(LogSender),
            dispatcher: DispatcherConfig::default(),
            extra_handlers: Vec::new(),
            passwords: Arc::new(Argon2Passwords::default()),
            search: None,
            orders: OrderConfig::default(),
        }
    }

    /// The same options with cheap password hashing, for tests only.
    #[must_use]
    pub fn fast_passwords(mut self) -> Self {
        self.passwords = Arc::new(Argon2Passwords::fast_for_tests());
        self
    }
}

/// The core's builder over `ports`, signing with `keys`, with `options`
/// applied: callers may set more before building.
pub fn builder(ports: Ports, keys: &Keys, options: AppOptions) -> MarketplaceBuilder {
    let AppOptions { clock, entropy, sender, dispatcher, extra_handlers, passwords, search, orders } = options;
    let signing = SigningKeys {
        license: LicenseSigner::from_seed(keys.license_signing.expose()),
        urls: UrlSigner::new(keys.url_signing.expose()).expect("32 bytes is a valid URL signing key"),
        webhook_secret: keys.webhook.expose().to_vec(),
    };
    let builder = Marketplace::builder(ports)
        .clock(clock)
        .entropy(entropy)
        .keys(signing)
        .notification_sender(sender)
        .dispatcher(dispatcher)
        .passwords(passwords)
        .orders(orders)
        .tokens(Arc::new(JwtTokens::new(*keys.jwt.expose())))
        // Every process publishes what it notifies, so the API processes'
        // live streams receive it (see the `live` module).
        .live_notifications(true);
    let builder = match search {
        Some(index) => builder.search_index(index),
        None => builder,
    };
    extra_handlers.into_iter().fold(builder, MarketplaceBuilder::handler)
}

/// The marketplace over `ports`, signing with `keys`.
///
/// # Errors
/// The builder's [`Error::Validation`](bazaar_core::Error::Validation); it
/// has every port it requires here, so this is a bug if it happens.
pub fn marketplace(ports: Ports, keys: &Keys, options: AppOptions) -> Result<Marketplace> {
    builder(ports, keys, options).build()
}
