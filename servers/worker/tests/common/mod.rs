//! Shared wiring for the worker tests: marketplaces over memory, SQLite and
//! PostgreSQL, buses on NATS and Redis with names no other run uses, a
//! paid-order helper, a counting (optionally poisoned) handler, and loud
//! failures when a service the test needs is unreachable.
// Each test binary uses a different subset of these helpers.
#![allow(dead_code, unreachable_pub)]

use bazaar_core::ConflictReason;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bazaar_app::{AppOptions, Broker, BusOptions, Keys};
use bazaar_core::auth::{Actor, Role};
use bazaar_core::catalog::{NewProduct, Pricing, Product, ProductKind, ProductStatus};
use bazaar_core::clock::{Clock, SystemClock};
use bazaar_core::entropy::OsEntropy;
use bazaar_core::events::{Backoff, DispatcherConfig, Event, EventHandler, EventType};
use bazaar_core::ids::{EventId, ProductId, UserId};
use bazaar_core::marketplace::{Marketplace, Ports};
use bazaar_core::money::{Currency, Money};
use bazaar_core::orders::{Order, PlaceOrder};
use bazaar_nats::{JetStreamOptions, async_nats};
use bazaar_postgres::PgStore;
use bazaar_rabbitmq::RabbitOptions;
use bazaar_redis::RedisStreamOptions;
use bazaar_worker::{Worker, WorkerConfig};
use rand::Rng;
use sqlx::ConnectOptions;
use sqlx::postgres::PgConnectOptions;

/// Upper bound on how long a test waits for the worker to get somewhere.
/// Only a hang fails on it; no assertion is about speed.
pub const PATIENCE: Duration = Duration::from_secs(60);

pub fn clock() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}

/// Fast retries so a poisoned event reaches the dead-letter store quickly.
pub fn quick_retries(max_attempts: u32) -> DispatcherConfig {
    DispatcherConfig {
        max_attempts,
        backoff: Backoff { base: Duration::from_millis(5), factor: 2, max: Duration::from_millis(40) },
        wait: Duration::ZERO,
    }
}

pub fn options(handlers: Vec<Arc<dyn EventHandler>>, max_attempts: u32) -> AppOptions {
    let mut options = AppOptions::new(clock()).fast_passwords();
    options.dispatcher = quick_retries(max_attempts);
    options.extra_handlers = handlers;
    options
}

/// A marketplace with its ports, so tests can look at what the services
/// wrote (the worker itself sees only the marketplace).
pub struct Market {
    pub market: Arc<Marketplace>,
    pub stores: Ports,
}

impl std::ops::Deref for Market {
    type Target = Marketplace;
    fn deref(&self) -> &Marketplace {
        &self.market
    }
}

impl Market {
    /// A worker over this marketplace.
    pub fn worker(&self, config: WorkerConfig) -> Worker {
        Worker::new(self.market.clone(), config)
    }
}

/// A marketplace over `stores` with extra `handlers`.
pub fn market(stores: Ports, keys: &Keys, handlers: Vec<Arc<dyn EventHandler>>) -> Arc<Market> {
    let market =
        bazaar_app::market::marketplace(stores.clone(), keys, options(handlers, 3)).expect("every port is set");
    Arc::new(Market { market: Arc::new(market), stores })
}

/// A marketplace entirely in memory (in-process bus).
pub fn memory_market(handlers: Vec<Arc<dyn EventHandler>>) -> Arc<Market> {
    market(bazaar_app::ports::memory(clock()), &Keys::generate(&OsEntropy), handlers)
}

/// Loops that react fast: a short idle poll keeps the tests short.
pub fn worker_config(consumers: usize) -> WorkerConfig {
    WorkerConfig { consumers, idle_poll: Duration::from_millis(5), ..WorkerConfig::default() }
}

/// Runs `worker` on a task until the returned guard is stopped.
pub struct Running {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    pub fn start(worker: &Worker) -> Self {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let worker = worker.clone();
        let task = tokio::spawn(async move {
            worker
                .run(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Self { stop: Some(stop), task }
    }

    /// Stops the loops and waits for them to finish their steps.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(PATIENCE, &mut self.task).await.expect("the worker stops").expect("the worker task");
    }
}

/// Polls `check` until it returns `Some`, panicking with `what` after [`PATIENCE`].
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// An approved one-time product at `minor` USD cents.
pub async fn approved_product(market: &Market, minor: i64) -> Product {
    let input = NewProduct {
        title: "Lead router".into(),
        description: "Routes leads.".into(),
        short_description: String::new(),
        kind: ProductKind::N8nWorkflow,
        categories: vec!["automation".into()],
        tags: vec![],
        pricing: Pricing::OneTime { price: Money::new(minor, Currency::USD) },
        media: vec![],
    };
    let mut p = Product::create(ProductId::new(), UserId::new(), input, market.clock.now()).expect("valid product");
    p.status = ProductStatus::Approved;
    market.stores.products.insert(&p, &[]).await.expect("insert product");
    p
}

/// Places an order for `product` as a new buyer and pays it with the card
/// that succeeds; the `payment.succeeded` event is then in the outbox.
pub async fn place_and_pay(market: &Marketplace, product: &Product) -> (Actor, Order) {
    let buyer = Actor::new(UserId::new(), Role::Customer);
    let order = market.orders.place(&buyer, PlaceOrder::new([product.id]), None).await.expect("place");
    let intent = market.orders.pay(&buyer, order.id, "pm_card_visa").await.expect("pay");
    assert_eq!(intent.status.as_str(), "succeeded", "the sandbox's visa card succeeds");
    (buyer, order)
}

/// Counts invocations of a handler of one event type, failing them while
/// poisoned; remembers the event ids it completed.
#[derive(Debug)]
pub struct Counting {
    name: &'static str,
    event_type: EventType,
    pub poisoned: AtomicBool,
    pub calls: AtomicUsize,
    pub successes: AtomicUsize,
    pub completed: parking_lot::Mutex<Vec<EventId>>,
}

impl Counting {
    pub fn new(name: &'static str, event_type: EventType, poisoned: bool) -> Arc<Self> {
        Arc::new(Self {
            name,
            event_type,
            poisoned: AtomicBool::new(poisoned),
            calls: AtomicUsize::new(0),
            successes: AtomicUsize::new(0),
            completed: parking_lot::Mutex::new(Vec::new()),
        })
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    pub fn successes(&self) -> usize {
        self.successes.load(Ordering::SeqCst)
    }
}

/// The error text a poisoned [`Counting`] handler fails with.
pub const POISON: &str = "poisoned handler refuses";

#[async_trait]
impl EventHandler for Counting {
    fn name(&self) -> &'static str {
        self.name
    }

    fn handles(&self, event_type: EventType) -> bool {
        event_type == self.event_type
    }

    async fn handle(&self, event: &Event) -> bazaar_core::Result<()> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.poisoned.load(Ordering::SeqCst) {
            return Err(bazaar_core::Error::conflict(ConflictReason::Duplicate, POISON));
        }
        self.successes.fetch_add(1, Ordering::SeqCst);
        self.completed.lock().push(event.id);
        Ok(())
    }
}

fn source_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

fn unreachable(service: &str, url: &str, variable: &str, start: &str, reason: &str) -> ! {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    eprintln!("\n==================== {service} UNREACHABLE ====================");
    eprintln!("The bazaar-worker tests need {service} at {url}: {reason}");
    eprintln!("Start it with:\n  {start}");
    eprintln!("or set {variable}.{}", if ci { " (CI=true: this is a CI failure.)" } else { "" });
    eprintln!("===============================================================\n");
    panic!("{service} unreachable at {url}: {reason}");
}

/// `BAZAAR_TEST_NATS_URL`, or the local default.
pub fn nats_url() -> String {
    std::env::var("BAZAAR_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// `BAZAAR_TEST_REDIS_URL`, or the local default.
pub fn redis_url() -> String {
    std::env::var("BAZAAR_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// `BAZAAR_TEST_AMQP_URL`, or the local default (guest/guest, vhost `/`).
pub fn amqp_url() -> String {
    std::env::var("BAZAAR_TEST_AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// `BAZAAR_TEST_DATABASE_URL`, or the local default.
pub fn postgres_url() -> String {
    std::env::var("BAZAAR_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A stream and subject prefix no other test or run uses; leftovers of a
/// crashed run expire after an hour.
pub fn fresh_nats_options() -> JetStreamOptions {
    let id = uuid::Uuid::now_v7().simple().to_string();
    JetStreamOptions {
        stream: format!("BZWORKER_{id}"),
        subject_prefix: format!("bzworker.{id}"),
        max_age: Duration::from_secs(3600),
        duplicate_window: Duration::from_secs(120),
        // What a worker runs with (batched pulls), not the adapter's defaults.
        ..BusOptions::default().nats
    }
}

/// A Redis stream prefix no other test or run uses.
pub fn fresh_redis_options() -> RedisStreamOptions {
    RedisStreamOptions::new(format!("bazaar-worker-test:{}:", uuid::Uuid::now_v7()))
}

/// The NATS bus on a fresh stream, or a loud panic when NATS is unreachable.
pub async fn nats_bus(options: JetStreamOptions) -> Broker {
    let url = nats_url();
    match tokio::time::timeout(Duration::from_secs(15), Broker::nats(&url, options)).await {
        Ok(Ok(bus)) => bus,
        Ok(Err(e)) => unreachable(
            "NATS (JetStream)",
            &url,
            "BAZAAR_TEST_NATS_URL",
            "start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server",
            &source_chain(&e),
        ),
        Err(_) => {
            unreachable("NATS (JetStream)", &url, "BAZAAR_TEST_NATS_URL", "nats-server -js", "no answer within 15 s")
        }
    }
}

/// Deletes a test stream (best effort: it expires anyway).
pub async fn delete_nats_stream(options: &JetStreamOptions) {
    if let Ok(client) = async_nats::connect(nats_url()).await {
        let _ = async_nats::jetstream::new(client).delete_stream(&options.stream).await;
    }
}

/// An exchange and queue prefix no other test or run uses, with what a
/// worker runs with otherwise (its prefetch).
pub fn fresh_rabbit_options() -> RabbitOptions {
    RabbitOptions { prefetch: BusOptions::default().rabbit.prefetch, ..RabbitOptions::fresh() }
}

/// The RabbitMQ bus on a fresh topology, or a loud panic when RabbitMQ is
/// unreachable.
pub async fn rabbit_bus(options: RabbitOptions) -> Broker {
    let url = amqp_url();
    match tokio::time::timeout(Duration::from_secs(15), Broker::rabbit(&url, options)).await {
        Ok(Ok(bus)) => bus,
        Ok(Err(e)) => {
            unreachable("RabbitMQ", &url, "BAZAAR_TEST_AMQP_URL", "rabbitmq-server -detached", &source_chain(&e))
        }
        Err(_) => {
            unreachable("RabbitMQ", &url, "BAZAAR_TEST_AMQP_URL", "rabbitmq-server -detached", "no answer within 15 s")
        }
    }
}

/// Deletes a test topology with the groups `brokers` used (best effort).
pub async fn delete_rabbit_topology(brokers: &[&Broker]) {
    let groups: Vec<String> =
        brokers.iter().filter_map(|b| b.broker_dead_letters.as_ref()).flat_map(|bus| bus.groups()).collect();
    if let Some(bus) = brokers.iter().find_map(|b| b.broker_dead_letters.as_ref()) {
        let _ = bus.delete_topology(&groups).await;
    }
}

/// The Redis Streams bus under a fresh prefix, or a loud panic when Redis
/// is unreachable.
pub async fn redis_bus(options: RedisStreamOptions) -> Broker {
    let url = redis_url();
    match tokio::time::timeout(Duration::from_secs(15), Broker::redis(&url, options)).await {
        Ok(Ok(bus)) => bus,
        Ok(Err(e)) => unreachable(
            "Redis",
            &url,
            "BAZAAR_TEST_REDIS_URL",
            "redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save \"\" --appendonly no",
            &source_chain(&e),
        ),
        Err(_) => unreachable("Redis", &url, "BAZAAR_TEST_REDIS_URL", "redis-server", "no answer within 15 s"),
    }
}

/// A migrated PostgreSQL store in a schema of its own (dropped by
/// [`PgSchema::drop`]).
pub struct PgSchema {
    pub options: PgConnectOptions,
    admin: PgConnectOptions,
    schema: String,
}

impl PgSchema {
    /// A new empty schema, migrated once; or a loud panic when PostgreSQL
    /// is unreachable.
    pub async fn create() -> Self {
        let url = postgres_url();
        let start = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start";
        let admin = PgConnectOptions::from_str(&url)
            .unwrap_or_else(|e| unreachable("PostgreSQL", &url, "BAZAAR_TEST_DATABASE_URL", start, &e.to_string()));
        let mut conn = admin
            .connect()
            .await
            .unwrap_or_else(|e| unreachable("PostgreSQL", &url, "BAZAAR_TEST_DATABASE_URL", start, &e.to_string()));
        // pg_trgm is database-wide; other test binaries may race to create it.
        if sqlx::raw_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public").execute(&mut conn).await.is_err() {
            tokio::time::sleep(Duration::from_millis(200)).await;
            sqlx::raw_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public")
                .execute(&mut conn)
                .await
                .expect("create pg_trgm");
        }
        let schema = format!("bazaar_worker_test_{:016x}", rand::rng().random::<u64>());
        // The schema name is generated here from hex digits only.
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&mut conn)
            .await
            .expect("create the test schema");
        let this = Self { options: admin.clone(), admin, schema };
        let this = Self { options: this.admin.clone().options([("search_path", this.search_path())]), ..this };
        this.store().await.migrate().await.expect("migrate");
        this
    }

    /// The `search_path` setting of the schema's connections.
    pub fn search_path(&self) -> String {
        format!("{},public", self.schema)
    }

    /// A new pool on the schema (one per simulated process).
    pub async fn store(&self) -> PgStore {
        PgStore::connect_with(self.options.clone()).await.expect("connect to the test schema")
    }

    pub async fn drop(self) {
        let mut conn = self.admin.connect().await.expect("connect to drop the schema");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA {} CASCADE", self.schema)))
            .execute(&mut conn)
            .await
            .expect("drop the test schema");
    }
}
