//! `bazaar http` and `bazaar worker` as separate processes: an "HTTP"
//! marketplace that only commits, and two worker marketplaces, each with
//! its own database pool and broker connection, over real PostgreSQL and
//! NATS JetStream, RabbitMQ or Redis Streams. Also: the bus is picked from the
//! configuration, and a broker that cannot be reached stops the start.

mod common;

use std::sync::Arc;

use bazaar_app::{App, Broker, BusKind, BusOptions, Config, Keys};
use bazaar_core::entropy::OsEntropy;
use bazaar_core::events::{EventHandler, EventType};
use bazaar_core::marketplace::Bus;
use bazaar_core::orders::OrderStatus;
use bazaar_memory::{InProcessBus, MemoryBlobStore};
use bazaar_worker::dlq_list;
use common::{
    Counting, Market, PgSchema, Running, approved_product, clock, eventually, market, nats_url, place_and_pay,
    redis_url, worker_config,
};

const ORDERS: usize = 6;

/// A marketplace on `pg` whose bus is `bus`, as one process would build it.
async fn process(pg: &PgSchema, broker: Broker, keys: &Keys, handlers: Vec<Arc<dyn EventHandler>>) -> Arc<Market> {
    let stores =
        pg.store().await.ports(Bus::new(Arc::new(InProcessBus::new(clock()))), Arc::new(MemoryBlobStore::new()));
    market(stores.with_bus(broker.bus), keys, handlers)
}

/// Places and pays [`ORDERS`] orders through `http`, runs two workers until
/// every order is fulfilled, and checks each was handled exactly once.
async fn split_processes_fulfil_every_order(pg: &PgSchema, buses: [Broker; 3]) {
    let keys = Keys::generate(&OsEntropy);
    let [http_bus, bus_a, bus_b] = buses;
    let paid = Counting::new("paid-audit", EventType::PaymentSucceeded, false);
    let http = process(pg, http_bus, &keys, vec![]).await;
    let workers = [
        process(pg, bus_a, &keys, vec![paid.clone() as Arc<dyn EventHandler>]).await,
        process(pg, bus_b, &keys, vec![paid.clone() as Arc<dyn EventHandler>]).await,
    ];
    assert!(http.stores.probes.iter().any(|p| p.name == "bus"), "the broker's probe joins the database's");
    for probe in &http.stores.probes {
        probe.check().await.unwrap_or_else(|e| panic!("probe {} fails: {e}", probe.name));
    }

    let product = approved_product(&http, 2_500).await;
    let mut orders = Vec::new();
    for _ in 0..ORDERS {
        orders.push(place_and_pay(&http, &product).await.1);
    }
    let running: Vec<Running> = workers.iter().map(|m| Running::start(&m.worker(worker_config(2)))).collect();
    for order in &orders {
        let id = order.id;
        eventually("the order to be fulfilled", || {
            let http = http.clone();
            async move {
                let order = http.stores.orders.get(id).await.unwrap().unwrap();
                (order.status == OrderStatus::Fulfilled).then_some(())
            }
        })
        .await;
    }
    eventually("every payment.succeeded audited", || {
        let paid = paid.clone();
        async move { (paid.successes() >= ORDERS).then_some(()) }
    })
    .await;
    for r in running {
        r.stop().await;
    }

    for order in &orders {
        let licenses = http.stores.licenses.list_for_order(order.id).await.unwrap();
        assert_eq!(licenses.len(), 1, "exactly one license per order line");
    }
    assert_eq!(paid.calls(), ORDERS, "each payment.succeeded handled once across both workers");
    let mut ids = paid.completed.lock().clone();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), ORDERS);
    assert_eq!(dlq_list(&http, 0, 10).await.unwrap().total, 0, "nothing failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_and_nats_split_http_from_two_workers() {
    let pg = PgSchema::create().await;
    let options = common::fresh_nats_options();
    let buses = [
        common::nats_bus(options.clone()).await,
        common::nats_bus(options.clone()).await,
        common::nats_bus(options.clone()).await,
    ];
    assert!(buses.iter().all(|b| b.kind == BusKind::Nats));
    split_processes_fulfil_every_order(&pg, buses).await;
    common::delete_nats_stream(&options).await;
    pg.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_and_redis_streams_split_http_from_two_workers() {
    let pg = PgSchema::create().await;
    let prefix = common::fresh_redis_options().prefix;
    // One consumer name per process, as each process's default would be.
    let redis = |name: &str| bazaar_redis::RedisStreamOptions {
        consumer_name: format!("{name}-{}", uuid::Uuid::now_v7()),
        ..bazaar_redis::RedisStreamOptions::new(prefix.clone())
    };
    let buses = [
        common::redis_bus(redis("http")).await,
        common::redis_bus(redis("worker-a")).await,
        common::redis_bus(redis("worker-b")).await,
    ];
    assert!(buses.iter().all(|b| b.kind == BusKind::RedisStreams));
    split_processes_fulfil_every_order(&pg, buses).await;
    pg.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_and_rabbitmq_split_http_from_two_workers() {
    let pg = PgSchema::create().await;
    let options = common::fresh_rabbit_options();
    let buses = [
        common::rabbit_bus(options.clone()).await,
        common::rabbit_bus(options.clone()).await,
        common::rabbit_bus(options.clone()).await,
    ];
    assert!(buses.iter().all(|b| b.kind == BusKind::RabbitMq));
    let handles: Vec<Broker> = buses.to_vec();
    split_processes_fulfil_every_order(&pg, buses).await;
    let dead = handles[0].broker_dead_letters.as_ref().expect("RabbitMQ has a dead-letter queue");
    assert!(dead.list_dead(10).await.unwrap().is_empty(), "the broker gave up on nothing");
    common::delete_rabbit_topology(&handles.iter().collect::<Vec<_>>()).await;
    pg.drop().await;
}

#[tokio::test]
async fn the_configuration_picks_the_bus() {
    let dir = tempfile::tempdir().unwrap();
    let options = BusOptions {
        nats: common::fresh_nats_options(),
        redis: common::fresh_redis_options(),
        rabbit: common::fresh_rabbit_options(),
    };
    let mut config = Config::embedded(dir.path());
    assert_eq!(Broker::open_with(&config, &options, clock()).await.unwrap().kind, BusKind::InProcess);

    config.redis_url = Some(redis_url());
    let redis =
        Broker::open_with(&config, &options, clock()).await.unwrap_or_else(|e| panic!("Redis at {}: {e}", redis_url()));
    assert_eq!(redis.kind, BusKind::RedisStreams);
    redis.bus.probe.expect("a broker has a probe").check().await.unwrap();

    config.nats_url = Some(nats_url());
    let nats =
        Broker::open_with(&config, &options, clock()).await.unwrap_or_else(|e| panic!("NATS at {}: {e}", nats_url()));
    assert_eq!(nats.kind, BusKind::Nats, "NATS wins when both are set");
    nats.bus.probe.expect("a broker has a probe").check().await.unwrap();
    common::delete_nats_stream(&options.nats).await;

    config.nats_url = None;
    config.amqp_url = Some(common::amqp_url());
    let rabbit = Broker::open_with(&config, &options, clock())
        .await
        .unwrap_or_else(|e| panic!("RabbitMQ at {}: {e}", common::amqp_url()));
    assert_eq!(rabbit.kind, BusKind::RabbitMq, "RabbitMQ wins over Redis");
    assert!(rabbit.broker_dead_letters.is_some(), "its dead-letter queue is reachable for `dlq`");
    rabbit.bus.probe.clone().expect("a broker has a probe").check().await.unwrap();
    common::delete_rabbit_topology(&[&rabbit]).await;
}

#[tokio::test]
async fn an_unreachable_broker_fails_the_start_loudly() {
    let redis = redis_url();
    for (nats, amqp, redis, variable) in [
        (Some("nats://127.0.0.1:1"), None, None, "NATS_URL"),
        (None, None, Some("redis://127.0.0.1:1"), "REDIS_URL"),
        (Some("nats://127.0.0.1:1"), None, Some(redis.as_str()), "NATS_URL"),
        (None, Some("amqp://guest:guest@127.0.0.1:1/%2f"), Some(redis.as_str()), "AMQP_URL"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::embedded(dir.path());
        config.nats_url = nats.map(str::to_owned);
        config.amqp_url = amqp.map(str::to_owned);
        config.redis_url = redis.map(str::to_owned);
        let err = App::build(config).await.expect_err("a broker that cannot be reached must stop the start");
        assert!(err.to_string().contains(variable), "the error names {variable}: {err}");
        assert!(!dir.path().join("bazaar.db").exists(), "nothing was migrated before the bus failed");
    }
}
