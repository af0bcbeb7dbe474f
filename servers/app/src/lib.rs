//! The composition root of every Bazaar server: validated configuration,
//! the adapter set picked from URLs, generated keys, credentials and
//! telemetry. `bazaar serve`, `bazaar http`, `bazaar grpc` and `bazaar
//! worker` all start from [`App::build`].
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

pub mod auth;
pub mod blobs;
pub mod bus;
pub mod config;
pub mod demo;
pub mod keys;
pub mod marketplace;
pub mod stores;
pub mod telemetry;

use std::fmt;
use std::sync::Arc;

use bazaar_core::clock::{Clock, SystemClock};

pub use crate::bus::{Bus, BusKind, BusOptions, NATS_PULL_BATCH};
pub use crate::config::{Config, ConfigError, Database, LogFormat, RawConfig};
pub use crate::keys::Keys;
pub use crate::marketplace::{Marketplace, MarketplaceOptions, Renewal};
pub use crate::stores::{PROBE_TIMEOUT, Probe, Stores, check_probes};

/// Why a process could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A setting is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Keys could not be loaded or generated.
    #[error("keys: {0}")]
    Keys(#[from] keys::KeysError),
    /// A backend could not be opened.
    #[error("{0}")]
    Backend(#[from] bazaar_core::Error),
}

/// A built marketplace and the configuration it was built from.
#[derive(Clone)]
pub struct App {
    /// The settings.
    pub config: Config,
    /// The marketplace.
    pub market: Arc<Marketplace>,
}

impl fmt::Debug for App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("App").field("config", &self.config).finish_non_exhaustive()
    }
}

impl App {
    /// Opens the configured stores (migrating them), loads or generates the
    /// keys in the data dir, wires the marketplace and creates the bootstrap
    /// admin, on the system clock.
    ///
    /// # Errors
    /// [`StartError`] naming what could not be opened.
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        Self::build_with(config, MarketplaceOptions::new(clock)).await
    }

    /// [`build`](Self::build) with explicit options (clock, sender, handlers).
    ///
    /// # Errors
    /// As [`build`](Self::build).
    pub async fn build_with(config: Config, options: MarketplaceOptions) -> Result<Self, StartError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| bazaar_core::Error::unavailable("data directory", e))?;
        let keys = Keys::load_or_generate(&config.data_dir)?;
        // The broker first: a bad NATS_URL / REDIS_URL fails before the database is migrated.
        let bus = Bus::open(&config, options.clock.clone()).await?;
        tracing::info!(bus = bus.kind.as_str(), "event bus selected");
        let stores = Stores::open(&config.database, &config.data_dir, options.clock.clone()).await?.with_bus(bus);
        let market = Arc::new(Marketplace::new(stores, &keys, options));
        if let Some(admin) = &config.admin {
            market.ensure_admin(&admin.email, &admin.password).await?;
            tracing::info!(email = admin.email.as_str(), "bootstrap admin ready");
        }
        Ok(Self { config, market })
    }
}
