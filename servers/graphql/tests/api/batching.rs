//! An order list with its lines' products and its licenses costs a fixed
//! number of store calls, however many rows it has: the product and
//! license stores are wrapped in counters (`common::Counting*`).

use std::sync::Arc;

use bazaar_core::clock::{Clock, ManualClock};
use bazaar_core::marketplace::Bus;
use bazaar_memory::{InProcessBus, MemoryBlobStore};
use bazaar_sqlite::SqliteStore;
use serde_json::json;

use crate::common::{TestApp, usd};

const NESTED: &str = "{ myOrders(first: 50) { totalCount items { id
    lines { title product { id title } }
    licenses { key productId } } } }";

/// (product calls, license calls) of the nested query after `orders`
/// orders of two products each.
async fn calls_for(app: &TestApp, orders: usize) -> (usize, usize) {
    let (vendor, admin, buyer) = (app.register("vendor").await, app.admin().await, app.register("customer").await);
    for i in 0..orders {
        let a = app.approved(&vendor, &admin, &format!("Agent {i}a"), usd(1_000)).await;
        let b = app.approved(&vendor, &admin, &format!("Agent {i}b"), usd(2_000)).await;
        app.buy(&buyer, &[&a, &b]).await;
    }
    app.counters.reset();
    let reply = app.gql(NESTED, json!({}), Some(&buyer.token)).await;
    let calls = app.counters.read();
    let items = reply.data()["myOrders"]["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), orders);
    for order in &items {
        for line in order["lines"].as_array().unwrap() {
            assert_eq!(line["product"]["title"], line["title"], "each line gets its own product");
        }
        assert_eq!(order["licenses"].as_array().unwrap().len(), 2, "one license per line");
    }
    calls
}

#[tokio::test]
async fn nested_order_queries_cost_the_same_for_2_and_12_orders() {
    let small = calls_for(&TestApp::new(), 2).await;
    let large = calls_for(&TestApp::new(), 12).await;
    assert_eq!(small, large, "store calls must not grow with the rows");
    assert_eq!(large, (1, 1), "one product read, one license read");
}

#[tokio::test]
async fn batching_holds_on_sqlite() {
    let sqlite = |clock: Arc<ManualClock>| async move {
        let db = SqliteStore::connect("sqlite::memory:").await.expect("sqlite");
        db.migrate().await.expect("migrate");
        let dyn_clock: Arc<dyn Clock> = clock.clone();
        let ports = db.ports(Bus::new(Arc::new(InProcessBus::new(dyn_clock))), Arc::new(MemoryBlobStore::new()));
        TestApp::over(ports, clock, |builder| builder)
    };
    let small = calls_for(&sqlite(Arc::new(ManualClock::at_epoch_secs(1_700_000_000))).await, 2).await;
    let large = calls_for(&sqlite(Arc::new(ManualClock::at_epoch_secs(1_700_000_000))).await, 8).await;
    assert_eq!(small, large);
    assert_eq!(large, (1, 1));
}
