//! Picks the event bus from the configuration: NATS JetStream when
//! `NATS_URL` is set, RabbitMQ when `AMQP_URL` is set (the configuration
//! refuses both), else Redis Streams when `REDIS_URL` is set, else the
//! in-process bus.
//!
//! The in-process bus only reaches handlers in the same process, so it is
//! right for `bazaar serve` (HTTP, gRPC and worker in one process) and wrong
//! as soon as `bazaar http` and `bazaar worker` run as separate processes:
//! those need a broker, and both must be given the same one.
//!
//! NATS and RabbitMQ win over Redis when both are set, so that adding
//! Redis for other uses later (rate limits, the gateway's directory) cannot
//! silently move the bus off a configured broker.
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
use bazaar_rabbitmq::{RabbitBus, RabbitOptions};
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
    /// [`RabbitBus`] on `AMQP_URL`.
    RabbitMq,
}

impl BusKind {
    /// The engine's name, for logs and health output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InProcess => "in_process",
            Self::Nats => "nats",
            Self::RedisStreams => "redis_streams",
            Self::RabbitMq => "rabbitmq",
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
    /// RabbitMQ exchange, queue prefix, prefetch and retry ladder.
    pub rabbit: RabbitOptions,
}

/// Messages a worker pulls per JetStream request: a worker's consumer
/// tasks (4 by default) take them from one pull instead of a request each.
/// As large as a consumer's step (`WorkerConfig::batch`), so one pull can
/// fill a step.
pub const NATS_PULL_BATCH: usize = 32;

/// RabbitMQ's prefetch: what a waiting consumer is pushed at once, the
/// same step ([`NATS_PULL_BATCH`]), so one push fills a worker's batch.
pub const RABBIT_PREFETCH: u16 = 32;

impl Default for BusOptions {
    /// The adapters' defaults, with JetStream pulls of [`NATS_PULL_BATCH`]
    /// and a RabbitMQ prefetch of [`RABBIT_PREFETCH`].
    fn default() -> Self {
        Self {
            nats: JetStreamOptions { pull_batch: NATS_PULL_BATCH, ..JetStreamOptions::default() },
            redis: RedisStreamOptions::new(REDIS_PREFIX),
            rabbit: RabbitOptions { prefetch: RABBIT_PREFETCH, ..RabbitOptions::default() },
        }
    }
}

impl BusOptions {
    /// The defaults with the stream names and prefixes `config` sets
    /// (`BAZAAR_NATS_STREAM`, `BAZAAR_NATS_SUBJECT_PREFIX`,
    /// `BAZAAR_REDIS_BUS_PREFIX`, `BAZAAR_AMQP_EXCHANGE`,
    /// `BAZAAR_AMQP_QUEUE_PREFIX`).
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
        if let Some(exchange) = &config.amqp_exchange {
            options.rabbit.exchange.clone_from(exchange);
        }
        if let Some(prefix) = &config.amqp_queue_prefix {
            options.rabbit.queue_prefix.clone_from(prefix);
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
    /// RabbitMQ's own dead-letter queue (messages the broker gave up on),
    /// which `bazaar worker dlq` lists and replays beside the dispatcher's
    /// dead letters; `None` for the other engines, which have none.
    pub broker_dead_letters: Option<Arc<RabbitBus>>,
}

impl Broker {
    /// The bus `config` selects, with the broker settings it names
    /// ([`BusOptions::from_config`]).
    ///
    /// # Errors
    /// [`Error::Unavailable`] naming `NATS_URL`, `AMQP_URL` or `REDIS_URL`
    /// when that broker cannot be reached or set up (the cause is the
    /// error's source).
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
        } else if let Some(url) = &config.amqp_url {
            Self::rabbit(url, options.rabbit.clone()).await
        } else if let Some(url) = &config.redis_url {
            Self::redis(url, options.redis.clone()).await
        } else {
            Ok(Self::in_process(clock))
        }
    }

    /// A fresh in-process bus.
    pub fn in_process(clock: Arc<dyn Clock>) -> Self {
        Self { kind: BusKind::InProcess, bus: Bus::new(Arc::new(InProcessBus::new(clock))), broker_dead_letters: None }
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
        Ok(Self { kind: BusKind::Nats, bus: Bus::new(bus).with_probe(probe), broker_dead_letters: None })
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
        Ok(Self { kind: BusKind::RedisStreams, bus: Bus::new(bus).with_probe(probe), broker_dead_letters: None })
    }

    /// RabbitMQ at `url`, declaring the topology (exchanges, archive, retry
    /// and dead-letter queues) and checking it answers.
    ///
    /// # Errors
    /// [`Error::Unavailable`] (`"event bus at AMQP_URL"`) with the cause.
    pub async fn rabbit(url: &str, options: RabbitOptions) -> Result<Self> {
        let fail = |e: Error| Error::unavailable("event bus at AMQP_URL", e);
        let bus = Arc::new(RabbitBus::connect(url, options).await.map_err(fail)?);
        bus.ping().await.map_err(fail)?;
        let ping = bus.clone();
        let probe = Probe::new("bus", move || {
            let bus = ping.clone();
            Box::pin(async move { bus.ping().await })
        });
        Ok(Self {
            kind: BusKind::RabbitMq,
            bus: Bus::new(bus.clone()).with_probe(probe),
            broker_dead_letters: Some(bus),
        })
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
        config.amqp_exchange = Some("run1.events".into());
        config.amqp_queue_prefix = Some("run1".into());
        let options = BusOptions::from_config(&config);
        assert_eq!(options.nats.stream, "RUN_1");
        assert_eq!(options.nats.subject_prefix, "run.one");
        assert_eq!(options.redis.prefix, "run1:");
        assert_eq!((options.rabbit.exchange.as_str(), options.rabbit.queue_prefix.as_str()), ("run1.events", "run1"));
        let step = bazaar_worker::WorkerConfig::default().batch;
        assert_eq!(
            (usize::from(options.rabbit.prefetch), NATS_PULL_BATCH),
            (step, step),
            "one push or pull fills a worker's step"
        );
        options.rabbit.validate().expect("the configured RabbitMQ options are valid");
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

        config.nats_url = None;
        config.amqp_url = Some("amqp://guest:guest@127.0.0.1:1/%2f".into());
        let err = Broker::open(&config, Arc::new(SystemClock)).await.unwrap_err();
        assert_eq!(err.code(), "unavailable");
        assert!(err.to_string().contains("AMQP_URL"), "RabbitMQ wins over Redis: {err}");
    }
}
