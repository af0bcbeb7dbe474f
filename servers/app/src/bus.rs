//! Picks the event bus from the configuration: NATS JetStream when
//! `NATS_URL` is set, else Redis Streams when `REDIS_URL` is set, else the
//! in-process bus.
//!
//! The in-process bus only reaches handlers in the same process, so it is
//! right for `bazaar serve` (HTTP, gRPC and worker in one process) and wrong
//! as soon as `bazaar http` and `bazaar worker` run as separate processes:
//! those need a broker, and both must be given the same one.
//!
//! NATS wins over Redis when both are set, so that adding Redis for other
//! uses later cannot silently move the bus off a configured NATS.
//!
//! A configured broker that cannot be reached fails the start (with the
//! variable named in the error) rather than falling back to the in-process
//! bus: a worker quietly consuming a private bus would never see the HTTP
//! process's events.

use std::sync::Arc;

use bazaar_core::clock::Clock;
use bazaar_core::health::Probe;
use bazaar_core::marketplace::Bus;
use bazaar_core::{Error, Result};
use bazaar_memory::InProcessBus;
use bazaar_nats::{JetStreamBus, JetStreamOptions};
use bazaar_redis::{RedisStreamBus, RedisStreamOptions};

use crate::config::Config;

/// The Redis key prefix of the bus's stream (`bazaar:events`).
pub const REDIS_PREFIX: &str = "bazaar:";

/// Which engine carries events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusKind {
    /// [`InProcessBus`]: this process only.
    InProcess,
    /// [`JetStreamBus`] on `NATS_URL`.
    Nats,
    /// [`RedisStreamBus`] on `REDIS_URL`.
    RedisStreams,
}

impl BusKind {
    /// The engine's name, for logs and health output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InProcess => "in_process",
            Self::Nats => "nats",
            Self::RedisStreams => "redis_streams",
        }
    }
}

/// Settings of the brokers beyond their URLs (stream names, prefixes, ack
/// waits). Tests use distinct streams so runs cannot see each other's events.
#[derive(Debug, Clone)]
pub struct BusOptions {
    /// JetStream stream, subject prefix and timing.
    pub nats: JetStreamOptions,
    /// Redis stream prefix, ack wait and consumer name.
    pub redis: RedisStreamOptions,
}

/// Messages a worker pulls per JetStream request: a worker's consumer
/// tasks (4 by default) take them from one pull instead of a request each.
/// As large as a consumer's step (`WorkerConfig::batch`), so one pull can
/// fill a step.
pub const NATS_PULL_BATCH: usize = 32;

impl Default for BusOptions {
    /// The adapters' defaults, with JetStream pulls of [`NATS_PULL_BATCH`].
    fn default() -> Self {
        Self {
            nats: JetStreamOptions { pull_batch: NATS_PULL_BATCH, ..JetStreamOptions::default() },
            redis: RedisStreamOptions::new(REDIS_PREFIX),
        }
    }
}

impl BusOptions {
    /// The defaults with the stream names and prefixes `config` sets
    /// (`BAZAAR_NATS_STREAM`, `BAZAAR_NATS_SUBJECT_PREFIX`,
    /// `BAZAAR_REDIS_BUS_PREFIX`).
    pub fn from_config(config: &Config) -> Self {
        let mut options = Self::default();
        if let Some(stream) = &config.nats_stream {
            options.nats.stream.clone_from(stream);
        }
        if let Some(prefix) = &config.nats_subject_prefix {
            options.nats.subject_prefix.clone_from(prefix);
        }
        if let Some(prefix) = &config.redis_bus_prefix {
            options.redis.prefix.clone_from(prefix);
        }
        options
    }
}

/// An opened broker: its engine, and both bus ports on one connection with
/// its readiness check (none for the in-process bus, which cannot be down).
#[derive(Clone, Debug)]
pub struct Broker {
    /// The engine.
    pub kind: BusKind,
    /// The ports, for [`Ports::with_bus`](bazaar_core::marketplace::Ports::with_bus).
    pub bus: Bus,
}

impl Broker {
    /// The bus `config` selects, with the broker settings it names
    /// ([`BusOptions::from_config`]).
    ///
    /// # Errors
    /// [`Error::Unavailable`] naming `NATS_URL` or `REDIS_URL` when that
    /// broker cannot be reached or set up (the cause is the error's source).
    pub async fn open(config: &Config, clock: Arc<dyn Clock>) -> Result<Self> {
        Self::open_with(config, &BusOptions::from_config(config), clock).await
    }

    /// [`open`](Self::open) with explicit broker settings.
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub async fn open_with(config: &Config, options: &BusOptions, clock: Arc<dyn Clock>) -> Result<Self> {
        if let Some(url) = &config.nats_url {
            Self::nats(url, options.nats.clone()).await
        } else if let Some(url) = &config.redis_url {
            Self::redis(url, options.redis.clone()).await
        } else {
            Ok(Self::in_process(clock))
        }
    }

    /// A fresh in-process bus.
    pub fn in_process(clock: Arc<dyn Clock>) -> Self {
        Self { kind: BusKind::InProcess, bus: Bus::new(Arc::new(InProcessBus::new(clock))) }
    }

    /// JetStream at `url`, creating the stream if it does not exist, and
    /// checking it answers.
    ///
    /// # Errors
    /// [`Error::Unavailable`] (`"event bus at NATS_URL"`) with the cause.
    pub async fn nats(url: &str, options: JetStreamOptions) -> Result<Self> {
        let fail = |e: Error| Error::unavailable("event bus at NATS_URL", e);
        let bus = Arc::new(JetStreamBus::connect(url, options).await.map_err(fail)?);
        bus.ping().await.map_err(fail)?;
        let ping = bus.clone();
        let probe = Probe::new("bus", move || {
            let bus = ping.clone();
            Box::pin(async move { bus.ping().await })
        });
        Ok(Self { kind: BusKind::Nats, bus: Bus::new(bus).with_probe(probe) })
    }

    /// Redis Streams at `url`, checking it answers.
    ///
    /// # Errors
    /// [`Error::Unavailable`] (`"event bus at REDIS_URL"`) with the cause.
    pub async fn redis(url: &str, options: RedisStreamOptions) -> Result<Self> {
        let fail = |e: Error| Error::unavailable("event bus at REDIS_URL", e);
        let conn = bazaar_redis::connect(url).await.map_err(fail)?;
        let bus = Arc::new(RedisStreamBus::new(conn, options).map_err(fail)?);
        bus.ping().await.map_err(fail)?;
        let ping = bus.clone();
        let probe = Probe::new("bus", move || {
            let bus = ping.clone();
            Box::pin(async move { bus.ping().await })
        });
        Ok(Self { kind: BusKind::RedisStreams, bus: Bus::new(bus).with_probe(probe) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bazaar_core::clock::SystemClock;

    #[tokio::test]
    async fn no_broker_url_is_the_in_process_bus() {
        let dir = tempfile::tempdir().unwrap();
        let broker = Broker::open(&Config::embedded(dir.path()), Arc::new(SystemClock)).await.unwrap();
        assert_eq!(broker.kind, BusKind::InProcess);
        assert!(broker.bus.probe.is_none());
    }

    #[test]
    fn configured_names_reach_the_broker_options() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::embedded(dir.path());
        let defaults = BusOptions::from_config(&config);
        assert_eq!((defaults.nats.stream.as_str(), defaults.redis.prefix.as_str()), ("BAZAAR_EVENTS", REDIS_PREFIX));
        assert_eq!(defaults.nats.pull_batch, NATS_PULL_BATCH, "workers pull in batches");
        defaults.nats.validate().expect("the default JetStream options are valid");
        config.nats_stream = Some("RUN_1".into());
        config.nats_subject_prefix = Some("run.one".into());
        config.redis_bus_prefix = Some("run1:".into());
        let options = BusOptions::from_config(&config);
        assert_eq!(options.nats.stream, "RUN_1");
        assert_eq!(options.nats.subject_prefix, "run.one");
        assert_eq!(options.redis.prefix, "run1:");
    }

    #[tokio::test]
    async fn an_unreachable_broker_fails_naming_its_variable() {
        let dir = tempfile::tempdir().unwrap();
        // Port 1 on loopback: nothing listens there, so the connection is refused at once.
        let mut config = Config::embedded(dir.path());
        config.redis_url = Some("redis://127.0.0.1:1".into());
        let err = Broker::open(&config, Arc::new(SystemClock)).await.unwrap_err();
        assert_eq!(err.code(), "unavailable");
        assert!(err.to_string().contains("REDIS_URL"), "{err}");

        config.nats_url = Some("nats://127.0.0.1:1".into());
        let err = Broker::open(&config, Arc::new(SystemClock)).await.unwrap_err();
        assert!(err.to_string().contains("NATS_URL"), "NATS wins over Redis: {err}");
    }
}
