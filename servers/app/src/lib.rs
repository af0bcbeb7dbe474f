//! The composition root of every Bazaar server: validated configuration,
//! the adapters picked from URLs, the connectors picked by settings
//! (Stripe or the sandbox, SMTP, S3), generated keys, and the core's
//! [`Marketplace`] built over them, and [`server::run`], which serves it
//! through the transports (`bazaar-http`, `bazaar-grpc`, `bazaar-worker`),
//! and [`edge`], the API gateway's composition (`bazaar gateway`).
//! `bazaar serve`, `bazaar http`, `bazaar grpc` and `bazaar worker` all
//! start from [`App::build`]; the transports themselves know only the core.
//!
//! # Example
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use bazaar_app::{App, Config};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let app = App::build(Config::embedded(dir.path())).await.unwrap();
//! // A fresh SQLite marketplace: nothing to relay or dispatch yet.
//! assert_eq!(app.market.pump().await.unwrap(), 0);
//! assert!(dir.path().join("bazaar.db").exists() && dir.path().join("keys.json").exists());
//! # });
//! ```

pub mod blobs;
pub mod bus;
pub mod config;
mod config_error;
pub mod demo;
pub mod edge;
pub mod keys;
pub mod live;
pub mod market;
pub mod ports;
pub mod providers;
pub mod search;
pub mod server;
pub mod shutdown;

use std::fmt;
use std::sync::Arc;

use bazaar_core::auth::Email;
use bazaar_core::clock::{Clock, SystemClock};
use bazaar_core::marketplace::Marketplace;
use bazaar_core::webhooks::EndpointPolicy;

/// The Redis key prefix of the sign-in quotas (when `REDIS_URL` is set).
pub const SIGN_IN_PREFIX: &str = "bazaar:signin:";

pub use crate::bus::{Broker, BusKind, BusOptions, NATS_PULL_BATCH, RABBIT_PREFETCH};
pub use crate::config::{Config, ConfigError, Database, LogFormat, RawConfig, SearchIndexKind};
pub use crate::keys::Keys;
pub use crate::market::AppOptions;
pub use crate::providers::{Blobs, Mail, Payments, RawProviders};

/// Why a process could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A setting is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Keys could not be loaded or generated.
    #[error("keys: {0}")]
    Keys(#[from] keys::KeysError),
    /// A backend could not be opened. Transparent, so an error report that
    /// walks the source chain names the cause once, not twice.
    #[error(transparent)]
    Backend(#[from] bazaar_core::Error),
    /// The gateway's configuration is wrong (it names the setting).
    #[error(transparent)]
    Gateway(#[from] bazaar_gateway::ConfigError),
}

/// A built marketplace and the configuration it was built from.
#[derive(Clone)]
pub struct App {
    /// The settings.
    pub config: Config,
    /// The marketplace.
    pub market: Arc<Marketplace>,
    /// The catalog search read model answering the marketplace's searches
    /// (`None` with `BAZAAR_SEARCH_INDEX=store`). Keep the `App` alive while
    /// serving: dropping the last clone stops the model's consumer.
    pub search: Option<Arc<search::ReadModel>>,
    /// The broker's own dead-letter queue, on RabbitMQ (see
    /// [`Broker::broker_dead_letters`]).
    pub broker_dead_letters: Option<Arc<bazaar_rabbitmq::RabbitBus>>,
}

impl fmt::Debug for App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("App").field("config", &self.config).finish_non_exhaustive()
    }
}

impl App {
    /// Opens the configured stores (migrating them), loads or generates the
    /// keys in the data dir, opens the chosen connectors (payments, e-mail,
    /// blobs: see [`providers`]; each choice is logged), builds the
    /// marketplace and creates the bootstrap admin, on the system clock.
    ///
    /// # Errors
    /// [`StartError`] naming what could not be opened.
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        Self::build_with(config, AppOptions::new(clock)).await
    }

    /// [`build`](Self::build) with explicit options (clock, sender, handlers).
    ///
    /// # Errors
    /// As [`build`](Self::build).
    pub async fn build_with(config: Config, mut options: AppOptions) -> Result<Self, StartError> {
        options.orders.idempotency.lease = config.idempotency_lease;
        std::fs::create_dir_all(&config.data_dir).map_err(|e| bazaar_core::Error::unavailable("data directory", e))?;
        let keys = Keys::load_or_generate(&config.data_dir)?;
        // The broker first: a bad NATS_URL / AMQP_URL / REDIS_URL fails before the database is migrated.
        let broker = Broker::open(&config, options.clock.clone()).await?;
        tracing::info!(bus = broker.kind.as_str(), "event bus selected");
        let blobs = providers::open_blobs(&config.blobs, &config.data_dir).await?;
        let broker_dead_letters = broker.broker_dead_letters;
        let ports = ports::open_with(&config.database, blobs, options.clock.clone()).await?.with_bus(broker.bus);
        let search = search::ReadModel::start(
            config.search_index,
            &config.data_dir,
            ports.products.clone(),
            ports.subscriber.clone(),
            options.clock.clone(),
        )
        .await?
        .map(Arc::new);
        if let Some(model) = &search {
            options.search = Some(model.index());
        }
        let provider = providers::open_payments(&config.payments)?;
        let sender = providers::open_mail(&config.mail, ports.users.clone(), options.sender.clone())?;
        let mut builder = market::builder(ports, &keys, AppOptions { sender, ..options });
        if let Some(provider) = provider {
            builder = builder.payment_provider(provider);
        }
        let allow_local = config.webhooks_allow_local;
        let transport = bazaar_webhooks::HttpTransport::new(bazaar_webhooks::TransportConfig {
            allow_local,
            ..bazaar_webhooks::TransportConfig::default()
        })?;
        builder = builder
            .webhook_policy(EndpointPolicy { allow_local, ..EndpointPolicy::default() })
            .webhook_transport(Arc::new(transport));
        if allow_local {
            tracing::warn!("vendor webhook endpoints may be http:// and local addresses (BAZAAR_WEBHOOKS_ALLOW_LOCAL)");
        }
        if !(config.demo || config.demo_logins) {
            builder = builder.refuse_sign_in(demo::DEMO_LOGINS.iter().filter_map(|l| Email::parse(l.email).ok()));
        }
        // Every replica on one Redis spends the same sign-in quotas.
        if let Some(url) = &config.redis_url {
            let conn = bazaar_redis::connect(url).await?;
            builder = builder.sign_in_store(Arc::new(bazaar_redis::RedisRateLimitStore::new(conn, SIGN_IN_PREFIX)));
        }
        let market = Arc::new(builder.build()?);
        if let Some(admin) = &config.admin {
            market.auth.ensure_admin(&admin.email, &admin.password).await?;
            tracing::info!(email = admin.email.as_str(), "bootstrap admin ready");
        }
        Ok(Self { config, market, search, broker_dead_letters })
    }

    /// Stops what the app runs in the background and leaves its consumer
    /// group of the bus (the search read model's); for a clean stop.
    pub async fn close(&self) {
        if let Some(model) = &self.search {
            match model.close().await {
                Ok(()) => tracing::info!(group = model.group(), "left the search index's consumer group"),
                Err(e) => {
                    tracing::warn!(error = %e, group = model.group(), "could not leave the search index's consumer group")
                }
            }
        }
    }

    /// Makes every catalog write so far visible to searches at once (see
    /// [`search::ReadModel::refresh`]); a no-op without a read model.
    ///
    /// # Errors
    /// The search index cannot be committed.
    pub fn refresh_search(&self) -> bazaar_core::Result<()> {
        if let Some(model) = &self.search {
            model.refresh()?;
        }
        Ok(())
    }
}
