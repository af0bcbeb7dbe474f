//! Whole-flow concurrency over PostgreSQL: the core's services on a real database,
//! many tasks on real threads.
//!
//! - 50 concurrent placements with one idempotency key → one order; every
//!   caller that got an order got the same one, the rest were told the key
//!   is in flight, and a retry afterwards replays the same order.
//! - One `payment.succeeded` handled by 4 tasks at once → one license per
//!   order line, one `order.fulfilled`, one `license.issued` per line.

mod common;

use std::sync::Arc;

use bazaar_core::auth::{Actor, Role};
use bazaar_core::catalog::{NewProduct, Pricing, Product, ProductKind, ProductRepository, ProductStatus};
use bazaar_core::clock::{Clock, ManualClock};
use bazaar_core::events::handlers::FulfillmentHandler;
use bazaar_core::events::{Event, EventHandler, EventType, PaymentSucceeded};
use bazaar_core::ids::{ProductId, UserId};
use bazaar_core::licensing::{LicenseRepository, LicenseService, LicenseSigner};
use bazaar_core::money::{Currency, Money};
use bazaar_core::orders::{OrderRepository, OrderService, OrderStatus, PlaceOrder};
use bazaar_core::payments::{PaymentRepository, PaymentService, SandboxProvider};
use bazaar_postgres::PgStore;
use common::fresh;

struct Marketplace {
    orders: Arc<OrderService>,
    licenses: Arc<LicenseService>,
    clock: Arc<ManualClock>,
}

fn marketplace(store: &PgStore) -> Marketplace {
    let clock = Arc::new(ManualClock::at_epoch_secs(1_700_000_000));
    let order_repo: Arc<dyn OrderRepository> = Arc::new(store.orders());
    let license_repo: Arc<dyn LicenseRepository> = Arc::new(store.licenses());
    let payment_repo: Arc<dyn PaymentRepository> = Arc::new(store.payments());
    let provider = Arc::new(SandboxProvider::new(clock.clone(), b"whsec_test".to_vec()));
    let payments = Arc::new(PaymentService::new(payment_repo, order_repo.clone(), provider, clock.clone()));
    let orders = Arc::new(OrderService::new(
        order_repo,
        Arc::new(store.products()),
        license_repo.clone(),
        payments,
        Arc::new(store.idempotency()),
        clock.clone(),
    ));
    let licenses = Arc::new(LicenseService::new(license_repo, LicenseSigner::from_seed(&[7; 32]), clock.clone()));
    Marketplace { orders, licenses, clock }
}

async fn approved_product(store: &PgStore, title: &str, minor: i64, now: bazaar_core::clock::Timestamp) -> Product {
    let input = NewProduct {
        title: title.into(),
        description: "Does the work.".into(),
        short_description: String::new(),
        kind: ProductKind::N8nWorkflow,
        categories: vec!["automation".into()],
        tags: vec![],
        pricing: Pricing::OneTime { price: Money::new(minor, Currency::USD) },
        media: vec![],
    };
    let mut p = Product::create(ProductId::new(), UserId::new(), input, now).expect("valid product");
    p.status = ProductStatus::Approved;
    store.products().insert(&p, &[]).await.expect("insert product");
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_placements_with_one_key_place_one_order() {
    let db = fresh().await;
    let m = marketplace(&db.store);
    let product = approved_product(&db.store, "Lead router", 1_999, m.clock.now()).await;
    let buyer = Actor::new(UserId::new(), Role::Customer);

    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let orders = m.orders.clone();
            tokio::spawn(async move { orders.place(&buyer, PlaceOrder::new([product.id]), Some("order-key-1")).await })
        })
        .collect();
    let mut placed = Vec::new();
    for t in tasks {
        match t.await.expect("task") {
            Ok(order) => placed.push(order),
            Err(e) => assert_eq!(e.code(), "conflict", "a concurrent duplicate is told the key is in flight: {e:?}"),
        }
    }
    assert!(!placed.is_empty(), "the request that took the key placed the order");
    assert!(placed.iter().all(|o| o == &placed[0]), "every caller that got an order got the same one");

    let (stored, total) = db.store.orders().list_for_buyer(buyer.user_id, 1, 100).await.expect("list");
    assert_eq!(total, 1, "exactly one order exists");
    assert_eq!(stored[0].id, placed[0].id);

    let again = m.orders.place(&buyer, PlaceOrder::new([product.id]), Some("order-key-1")).await.expect("replay");
    assert_eq!(again, placed[0], "a later retry replays the first response");
    let events = db.store.outbox().events().await.expect("outbox");
    assert_eq!(events.iter().filter(|e| e.event_type == EventType::OrderPlaced).count(), 1);
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn duplicate_payment_events_issue_one_license_per_line() {
    let db = fresh().await;
    let m = marketplace(&db.store);
    let now = m.clock.now();
    let a = approved_product(&db.store, "Invoice agent", 2_500, now).await;
    let b = approved_product(&db.store, "Churn workflow", 4_000, now).await;
    let buyer = Actor::new(UserId::new(), Role::Customer);
    let order = m.orders.place(&buyer, PlaceOrder::new([a.id, b.id]), None).await.expect("place");
    assert_eq!(order.status, OrderStatus::PendingPayment);
    let intent = db.store.payments().get_by_order(order.id).await.expect("get").expect("intent created");

    let paid = PaymentSucceeded { order_id: order.id, payment_intent_id: intent.id, amount: order.total };
    let event = Event::new(&paid, now);
    let handler = Arc::new(FulfillmentHandler::new(m.orders.clone(), m.licenses.clone()));
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let (handler, event) = (handler.clone(), event.clone());
            tokio::spawn(async move { handler.handle(&event).await })
        })
        .collect();
    for t in tasks {
        t.await.expect("task").expect("every delivery of the duplicate event is handled");
    }

    let licenses = db.store.licenses().list_for_order(order.id).await.expect("list");
    assert_eq!(licenses.len(), 2, "one license per line: {licenses:?}");
    let mut products: Vec<_> = licenses.iter().map(|l| l.product_id).collect();
    products.sort();
    let mut expected = vec![a.id, b.id];
    expected.sort();
    assert_eq!(products, expected);
    let stored = db.store.orders().get(order.id).await.expect("get").expect("order");
    assert_eq!(stored.status, OrderStatus::Fulfilled);

    let events = db.store.outbox().events().await.expect("outbox");
    let count = |t: EventType| events.iter().filter(|e| e.event_type == t).count();
    assert_eq!(count(EventType::LicenseIssued), 2, "license.issued only for inserted licenses");
    assert_eq!(count(EventType::OrderFulfilled), 1, "order.fulfilled exactly once");
    db.drop_schema().await;
}
