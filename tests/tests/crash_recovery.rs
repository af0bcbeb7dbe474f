//! Events across processes survive crashes: `bazaar http` and two
//! `bazaar worker` processes (each running the outbox relay and the event
//! consumers) on PostgreSQL, with NATS JetStream, Redis Streams or RabbitMQ
//! as the bus. 20 buyers place and pay 200 two-line orders concurrently;
//! part-way one worker is `kill -9`ed and restarted, later the other one
//! (on RabbitMQ: the broker is restarted instead), each while orders are
//! still flowing. Once the pipeline is quiet:
//!
//! - every paid order is `fulfilled`;
//! - every order line has exactly one license;
//! - every license has exactly one `license_issued` notification per
//!   channel the buyer gets (in-app and e-mail by default);
//! - the outbox holds no unpublished entry;
//! - the dead-letter store is empty (in SQL and per `bazaar worker dlq list`).
//!
//! A SIGKILL leaves what a real crash leaves: outbox leases held by the dead
//! relay (another relay takes the entries once the lease runs out) and
//! deliveries the dead consumer never acknowledged (redelivered after the
//! broker's ack wait, 30 s), so quiescence takes up to a minute; the wait is
//! a hang guard, never a timing assertion.
//!
//! A broker restart (`rabbitmqctl stop_app`, 3 s down, `start_app`) drops
//! every connection: the HTTP process keeps taking orders into its outbox,
//! the relays and consumers reconnect, and unacknowledged deliveries come
//! back from the durable queues.
//!
//! Needs PostgreSQL (`BAZAAR_TEST_DATABASE_URL`), NATS with JetStream
//! (`BAZAAR_TEST_NATS_URL`), Redis (`BAZAAR_TEST_REDIS_URL`) and RabbitMQ
//! (`BAZAAR_TEST_AMQP_URL`, with `rabbitmqctl` on the path). Each run has
//! its own schema, JetStream stream and subject prefix, Redis key prefix,
//! and RabbitMQ exchange and queue prefix, so concurrent runs never see
//! each other's events.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bazaar_e2e::services::{RunBus, Schema, restart_rabbitmq};
use bazaar_e2e::{Client, PATIENCE, Server, run_bazaar, str_of};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::watch;

const BUYERS: usize = 20;
const ORDERS_PER_BUYER: usize = 10;
const ORDERS: usize = BUYERS * ORDERS_PER_BUYER;
const LINES_PER_ORDER: usize = 2;
/// Orders paid before the first worker is killed, and before the second.
const FIRST_KILL_AT: usize = 60;
const SECOND_KILL_AT: usize = 130;
/// Orders past these tickets wait until the kill before them has happened,
/// so each kill falls while orders are still being placed and paid.
const FIRST_GATE: usize = 70;
const SECOND_GATE: usize = 140;

/// What happens to the pipeline the second time, after worker A was killed.
#[derive(Debug, Clone, Copy)]
enum SecondBlow {
    /// Worker B is `kill -9`ed and restarted.
    KillWorkerB,
    /// The RabbitMQ broker restarts under every process.
    RestartBroker,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_workers_lose_nothing_on_postgres_and_nats() {
    crash_and_recover(RunBus::nats().await, SecondBlow::KillWorkerB).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_workers_lose_nothing_on_postgres_and_redis_streams() {
    crash_and_recover(RunBus::redis().await, SecondBlow::KillWorkerB).await;
}

// One scenario for both RabbitMQ blows: a second RabbitMQ scenario in this
// binary would run concurrently and have the broker restarted under it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_and_a_broker_restart_lose_nothing_on_postgres_and_rabbitmq() {
    crash_and_recover(RunBus::rabbit().await, SecondBlow::RestartBroker).await;
}

async fn start_worker(dir: &std::path::Path, env: &[(String, String)]) -> Server {
    let worker =
        Server::start_with(dir, &["worker", "--http-addr", "127.0.0.1:0"], env.to_vec(), "worker listening on ").await;
    let ready = worker.client().get("/health/ready", None).await;
    assert_eq!(ready.status.as_u16(), 200, "worker readiness: {}", ready.body);
    worker
}

/// Waits until `counter` reaches `at`.
async fn reached(counter: &AtomicUsize, at: usize) {
    bazaar_e2e::eventually(&format!("{at} orders to be paid"), || async {
        (counter.load(Ordering::SeqCst) >= at).then_some(())
    })
    .await;
}

async fn crash_and_recover(bus: RunBus, second: SecondBlow) {
    let schema = Schema::create().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut env = vec![("DATABASE_URL".to_owned(), schema.url())];
    env.extend(bus.env());

    let (code, out, err) = run_bazaar(dir.path(), &["migrate"], env.clone()).await;
    assert_eq!(code, Some(0), "migrate: {out}{err}");
    // About two in three demo products are one-time purchases; 40 gives
    // the 20 distinct ones each buyer's ten two-line orders need.
    let (code, out, err) = run_bazaar(dir.path(), &["seed", "--products", "40"], env.clone()).await;
    assert_eq!(code, Some(0), "seed: {out}{err}");

    let http =
        Server::start_with(dir.path(), &["http", "--http-addr", "127.0.0.1:0"], env.clone(), "http listening on ")
            .await;
    let mut worker_a = Some(start_worker(dir.path(), &env).await);
    let mut worker_b = Some(start_worker(dir.path(), &env).await);

    let page = http.client().get("/v1/products?price_min=1&limit=100", None).await.expect(200, "browse");
    let products: Vec<String> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|p| p["pricing"]["type"] == "one_time")
        .map(|p| str_of(&p["id"]))
        .collect();
    let needed = ORDERS_PER_BUYER * LINES_PER_ORDER;
    assert!(products.len() >= needed, "need {needed} one-time products, the demo catalog has {}", products.len());
    let products = Arc::new(products);

    // Each buyer registers from an address of its own (127.0.1.x): the auth
    // routes allow 5 registrations at once per client IP.
    let mut buyers = Vec::new();
    for i in 0..BUYERS {
        let local = IpAddr::V4(Ipv4Addr::new(127, 0, 1, u8::try_from(i + 1).expect("few buyers")));
        let client = http.client_from(local);
        let (_, token) = client.register(&format!("crash{i}@e2e.test"), "correct-horse-battery").await;
        buyers.push((client, token));
    }

    let tickets = Arc::new(AtomicUsize::new(0));
    let paid = Arc::new(AtomicUsize::new(0));
    let (gate_tx, gate_rx) = watch::channel(0_usize);
    let mut shoppers = tokio::task::JoinSet::new();
    for (n, (client, token)) in buyers.into_iter().enumerate() {
        let (products, tickets, paid, mut gate) = (products.clone(), tickets.clone(), paid.clone(), gate_rx.clone());
        shoppers.spawn(async move {
            let mut orders = Vec::new();
            for k in 0..ORDERS_PER_BUYER {
                let ticket = tickets.fetch_add(1, Ordering::SeqCst);
                let gates_needed = usize::from(ticket >= FIRST_GATE) + usize::from(ticket >= SECOND_GATE);
                gate.wait_for(|opened| *opened >= gates_needed).await.expect("the test holds the gate");
                let lines = &products[k * LINES_PER_ORDER..(k + 1) * LINES_PER_ORDER];
                let order_id = buy(&client, &token, lines, &format!("crash-{n}-{k}")).await;
                paid.fetch_add(1, Ordering::SeqCst);
                orders.push(order_id);
            }
            orders
        });
    }

    // First crash: worker A (relay and consumers) dies mid-flight and comes back.
    reached(&paid, FIRST_KILL_AT).await;
    let status = worker_a.take().expect("worker A runs").kill().await;
    assert_eq!(status.code(), None, "worker A died of SIGKILL, not an exit: {status}");
    worker_a = Some(start_worker(dir.path(), &env).await);
    gate_tx.send_replace(1);

    // Second blow, while A (restarted) carries on: worker B dies, or the
    // broker restarts under everybody.
    reached(&paid, SECOND_KILL_AT).await;
    match second {
        SecondBlow::KillWorkerB => {
            let status = worker_b.take().expect("worker B runs").kill().await;
            assert_eq!(status.code(), None, "worker B died of SIGKILL, not an exit: {status}");
            worker_b = Some(start_worker(dir.path(), &env).await);
        }
        SecondBlow::RestartBroker => restart_rabbitmq(std::time::Duration::from_secs(3)).await,
    }
    gate_tx.send_replace(2);

    let mut order_ids = Vec::new();
    while let Some(orders) = shoppers.join_next().await {
        order_ids.extend(orders.expect("a shopper panicked"));
    }
    assert_eq!(order_ids.len(), ORDERS, "every order was placed and paid");

    // Quiescence: a hang guard (the kills leave leases and unacked
    // deliveries that only time releases), never a timing assertion.
    let quiet = async {
        loop {
            let (fulfilled, unpublished) = (
                schema.count("SELECT count(*) FROM orders WHERE status = 'fulfilled'").await,
                schema.count("SELECT count(*) FROM outbox WHERE NOT published").await,
            );
            let notified = schema.count(&notifications_of("license_issued")).await;
            let licenses = schema.count("SELECT count(*) FROM licenses").await;
            if fulfilled == as_i64(ORDERS) && unpublished == 0 && notified >= 2 * licenses {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
    };
    if tokio::time::timeout(PATIENCE, quiet).await.is_err() {
        let state = schema.query("SELECT status, count(*) FROM orders GROUP BY status").await;
        let outbox = schema.query("SELECT event_type, count(*) FROM outbox WHERE NOT published GROUP BY 1").await;
        panic!("the pipeline did not settle within {PATIENCE:?}; orders: {state}; unpublished: {outbox}");
    }

    // Every paid order is fulfilled.
    assert_eq!(schema.count("SELECT count(*) FROM orders").await, as_i64(ORDERS));
    let unfulfilled = schema.query("SELECT id || ' ' || status FROM orders WHERE status <> 'fulfilled'").await;
    assert!(unfulfilled.is_empty(), "orders not fulfilled: {unfulfilled}");

    // Exactly one license per order line (and none that belongs to no line).
    let lines = schema.count("SELECT count(*) FROM orders o, jsonb_array_elements(o.doc::jsonb -> 'lines')").await;
    assert_eq!(lines, as_i64(ORDERS * LINES_PER_ORDER));
    let wrong = schema
        .query(
            "SELECT o.id || ' ' || (line ->> 'product_id') || ' ' || \
               (SELECT count(*) FROM licenses l WHERE l.order_id = o.id AND l.product_id = line ->> 'product_id') \
             FROM orders o, jsonb_array_elements(o.doc::jsonb -> 'lines') AS line \
             WHERE (SELECT count(*) FROM licenses l \
                    WHERE l.order_id = o.id AND l.product_id = line ->> 'product_id') <> 1",
        )
        .await;
    assert!(wrong.is_empty(), "order lines without exactly one license (order product count): {wrong}");
    assert_eq!(schema.count("SELECT count(*) FROM licenses").await, lines, "a license outside any order line");

    // Exactly one `license_issued` notification per license and channel
    // (default preferences: in-app and e-mail), found by the license id in
    // its text.
    for channel in ["in_app", "email"] {
        let wrong = schema
            .query(&format!(
                "SELECT l.id || ' ' || (SELECT count(*) FROM ({n}) n WHERE strpos(n.body, l.id) > 0 AND n.channel = '{channel}') \
                 FROM licenses l \
                 WHERE (SELECT count(*) FROM ({n}) n WHERE strpos(n.body, l.id) > 0 AND n.channel = '{channel}') <> 1",
                n = "SELECT doc::jsonb ->> 'body' AS body, doc::jsonb ->> 'channel' AS channel FROM notifications \
                     WHERE doc::jsonb ->> 'template' = 'license_issued'"
            ))
            .await;
        assert!(wrong.is_empty(), "licenses without exactly one {channel} license_issued notification: {wrong}");
    }
    assert_eq!(
        schema.count(&notifications_of("license_issued")).await,
        2 * lines,
        "stray license_issued notifications"
    );

    // Nothing left in the outbox, nothing in the dead-letter store.
    assert_eq!(schema.count("SELECT count(*) FROM outbox WHERE NOT published").await, 0, "unpublished outbox entries");
    let letters = schema.query("SELECT consumer || ' ' || event_id FROM dead_letters").await;
    assert!(letters.is_empty(), "dead letters: {letters}");
    let (code, out, err) = run_bazaar(dir.path(), &["worker", "dlq", "list"], env.clone()).await;
    assert_eq!(code, Some(0), "dlq list: {out}{err}");
    assert!(out.lines().any(|l| l.trim() == "0 dead letter(s)"), "dlq list: {out}");
    if matches!(bus, RunBus::Rabbit { .. }) {
        assert!(out.contains("0 message(s) in the broker's dead-letter queue"), "dlq list: {out}");
    }

    for (name, server) in [("http", Some(http)), ("worker A", worker_a), ("worker B", worker_b)] {
        let status = server.expect("running").stop().await;
        assert_eq!(status.code(), Some(0), "{name} stops gracefully");
    }
    // The processes used the run's own stream / key prefix (else there
    // would be nothing under those names to delete).
    let answer = bus.clean_up().await;
    let expected = match &bus {
        RunBus::Nats { .. } => "\"success\":true".to_owned(),
        RunBus::Redis { .. } => ":1\r\n".to_owned(),
        RunBus::Rabbit { name, .. } => format!("{name}.group."),
    };
    assert!(answer.contains(&expected), "the run's own stream was not found: {answer:?}");
    schema.drop().await;
}

/// Places one order for `lines` and pays it with the sandbox's always-succeeding card; returns its id.
async fn buy(client: &Client, token: &str, lines: &[String], key: &str) -> String {
    let items: Vec<Value> = lines.iter().map(|p| json!({ "product_id": p })).collect();
    let body = json!({ "items": items });
    let placed = client
        .send(Method::POST, "/v1/orders", Some(token), Some(&body), &[("Idempotency-Key", key)])
        .await
        .expect(201, "place an order");
    let order_id = str_of(&placed["id"]);
    let paid = bazaar_e2e::flow::pay(client, token, &order_id, "pm_card_visa").await.expect(200, "pay");
    assert_eq!(paid["status"], "succeeded", "{paid}");
    order_id
}

/// Counts notifications of `template`.
fn notifications_of(template: &str) -> String {
    format!("SELECT count(*) FROM notifications WHERE doc::jsonb ->> 'template' = '{template}'")
}

fn as_i64(n: usize) -> i64 {
    i64::try_from(n).expect("fits i64")
}
