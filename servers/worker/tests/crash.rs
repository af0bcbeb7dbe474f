//! A worker process killed with SIGKILL in the middle of its work loses
//! nothing and duplicates nothing: another worker process started after it
//! finishes every order, with exactly one license per order line.
//!
//! Real processes over real PostgreSQL and NATS JetStream: this test binary
//! (`harness = false`) re-runs itself as the worker child when
//! `BAZAAR_CRASH_CHILD` is set, while the parent plays `bazaar http`
//! (places and pays orders) and does the killing. Short leases and ack
//! waits (1 s, 2 s) keep the recovery quick; the assertions are about what
//! happened, never how fast.

mod common;

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use bazaar_app::{BusOptions, Keys};
use bazaar_core::auth::{Actor, Role};
use bazaar_core::catalog::Product;
use bazaar_core::events::{Event, EventHandler, EventType};
use bazaar_core::ids::UserId;
use bazaar_core::marketplace::Bus;
use bazaar_core::orders::{Order, OrderStatus, PlaceOrder};
use bazaar_memory::{InProcessBus, MemoryBlobStore};
use bazaar_nats::JetStreamOptions;
use bazaar_postgres::PgStore;
use bazaar_worker::{WorkerConfig, dlq_list};
use common::{Market, PgSchema, approved_product, clock, eventually, market};
use sqlx::postgres::PgConnectOptions;

const CHILD: &str = "BAZAAR_CRASH_CHILD";
const SEARCH_PATH: &str = "BAZAAR_CRASH_SEARCH_PATH";
const STREAM: &str = "BAZAAR_CRASH_STREAM";
const PREFIX: &str = "BAZAAR_CRASH_PREFIX";
const KEYS: &str = "BAZAAR_CRASH_KEYS_DIR";

const FIRST_BATCH: usize = 40;
const SECOND_BATCH: usize = 10;

fn nats_options(stream: String, subject_prefix: String) -> JetStreamOptions {
    JetStreamOptions {
        stream,
        subject_prefix,
        // A delivery the killed worker held comes back to the next one soon.
        ack_wait: Duration::from_secs(2),
        max_age: Duration::from_secs(3600),
        // Batched pulls, as a worker runs: the killed worker dies holding
        // messages it pulled but never handed out, and those come back too.
        ..BusOptions::default().nats
    }
}

/// Takes a while over each payment, so the first worker is surely still
/// busy when it is killed (the test's outcome does not depend on it).
#[derive(Debug)]
struct Slow;

#[async_trait::async_trait]
impl EventHandler for Slow {
    fn name(&self) -> &'static str {
        "slow"
    }

    fn handles(&self, event_type: EventType) -> bool {
        event_type == EventType::PaymentSucceeded
    }

    async fn handle(&self, _event: &Event) -> bazaar_core::Result<()> {
        tokio::time::sleep(Duration::from_millis(25)).await;
        Ok(())
    }
}

/// One process's marketplace over the shared schema and stream.
async fn process_market(
    search_path: &str,
    nats: JetStreamOptions,
    keys: &Keys,
    handlers: Vec<Arc<dyn EventHandler>>,
) -> Arc<Market> {
    let options = PgConnectOptions::from_str(&common::postgres_url())
        .expect("postgres url")
        .options([("search_path", search_path.to_owned())]);
    let db = PgStore::connect_with(options).await.expect("connect to the test schema");
    let broker = common::nats_bus(nats).await;
    let stores = db.ports(Bus::new(Arc::new(InProcessBus::new(clock()))), Arc::new(MemoryBlobStore::new()));
    market(stores.with_bus(broker.bus), keys, handlers)
}

/// The child: a worker until killed, or until the parent goes away (its
/// stdin closes), so a failed parent leaves no worker behind.
async fn child() {
    let env = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} is set by the parent"));
    let keys = Keys::load_or_generate(std::path::Path::new(&env(KEYS))).expect("the parent's keys");
    let market =
        process_market(&env(SEARCH_PATH), nats_options(env(STREAM), env(PREFIX)), &keys, vec![Arc::new(Slow)]).await;
    let config = WorkerConfig {
        consumers: 2,
        idle_poll: Duration::from_millis(5),
        relay_batch: 5,
        relay_lease: Duration::from_secs(1),
        ..WorkerConfig::default()
    };
    let (gone_tx, gone_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
        let _ = gone_tx.send(());
    });
    market
        .worker(config)
        .run(async {
            let _ = gone_rx.await;
        })
        .await;
}

fn spawn_child(search_path: &str, nats: &JetStreamOptions, keys_dir: &std::path::Path) -> Child {
    Command::new(std::env::current_exe().expect("this test binary"))
        .env(CHILD, "1")
        .env(SEARCH_PATH, search_path)
        .env(STREAM, &nats.stream)
        .env(PREFIX, &nats.subject_prefix)
        .env(KEYS, keys_dir)
        .stdin(Stdio::piped())
        .spawn()
        .expect("start the worker process")
}

/// Places an order for `product` as `buyer` and pays it with the card that succeeds.
async fn buy(market: &Market, buyer: &Actor, product: &Product) -> Order {
    let order = market.orders.place(buyer, PlaceOrder::new([product.id]), None).await.expect("place");
    market.orders.pay(buyer, order.id, "pm_card_visa").await.expect("pay");
    order
}

async fn licensed(market: &Market, buyer: &Actor) -> usize {
    market.stores.licenses.list_for_buyer(buyer.user_id).await.unwrap().len()
}

async fn fulfilled(market: &Market, orders: &[Order]) -> usize {
    let mut n = 0;
    for order in orders {
        if market.stores.orders.get(order.id).await.unwrap().unwrap().status == OrderStatus::Fulfilled {
            n += 1;
        }
    }
    n
}

async fn parent() {
    let pg = PgSchema::create().await;
    let search_path = pg.search_path();
    let nats = {
        let fresh = common::fresh_nats_options();
        nats_options(fresh.stream, fresh.subject_prefix)
    };
    let keys_dir = tempfile::tempdir().unwrap();
    let keys = Keys::load_or_generate(keys_dir.path()).unwrap();
    // The parent is `bazaar http`: it commits, it runs no worker.
    let http = process_market(&search_path, nats.clone(), &keys, vec![]).await;
    // One buyer, one product per order: the buyer's license count is one query.
    let buyer = Actor::new(UserId::new(), Role::Customer);
    let mut products = Vec::new();
    for _ in 0..FIRST_BATCH + SECOND_BATCH {
        products.push(approved_product(&http, 1_200).await);
    }
    let mut orders = Vec::new();
    for product in &products[..FIRST_BATCH] {
        orders.push(buy(&http, &buyer, product).await);
    }

    let mut first = spawn_child(&search_path, &nats, keys_dir.path());
    eventually("the first worker to license some orders", || {
        let http = http.clone();
        async move { (licensed(&http, &buyer).await >= 3).then_some(()) }
    })
    .await;
    first.kill().expect("SIGKILL the first worker");
    first.wait().expect("reap the first worker");
    let before = licensed(&http, &buyer).await;
    eprintln!("crash test: the first worker was killed with {before} of {FIRST_BATCH} orders licensed");

    for product in &products[FIRST_BATCH..] {
        orders.push(buy(&http, &buyer, product).await);
    }
    let mut second = spawn_child(&search_path, &nats, keys_dir.path());
    eventually("every order licensed by the second worker", || {
        let http = http.clone();
        async move { (licensed(&http, &buyer).await >= FIRST_BATCH + SECOND_BATCH).then_some(()) }
    })
    .await;
    eventually("every order fulfilled", || {
        let (http, orders) = (http.clone(), orders.clone());
        async move { (fulfilled(&http, &orders).await == orders.len()).then_some(()) }
    })
    .await;
    // Everything the handlers committed gets published too: nothing is
    // left in the outbox (the killed relay's leased batch included).
    eventually("an empty outbox", || {
        let http = http.clone();
        async move {
            let now = http.clock.now();
            // Leasing until `now` leases nothing: a probe, not a claim.
            http.stores.outbox.claim(1, now, now).await.unwrap().is_empty().then_some(())
        }
    })
    .await;
    // The second worker stops gracefully when its stdin closes.
    drop(second.stdin.take());
    let status = second.wait().expect("reap the second worker");
    assert!(status.success(), "the second worker shut down cleanly: {status}");

    for order in &orders {
        let licenses = http.stores.licenses.list_for_order(order.id).await.unwrap();
        assert_eq!(licenses.len(), 1, "exactly one license for order {}", order.id);
    }
    assert_eq!(licensed(&http, &buyer).await, orders.len(), "no license beyond one per order");
    assert_eq!(dlq_list(&http, 0, 10).await.unwrap().total, 0, "nothing was dead-lettered");
    common::delete_nats_stream(&nats).await;
    pg.drop().await;
    eprintln!("crash test: ok ({} orders, one license each)", orders.len());
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    if std::env::var_os(CHILD).is_some() {
        runtime.block_on(child());
    } else {
        runtime.block_on(parent());
    }
}
