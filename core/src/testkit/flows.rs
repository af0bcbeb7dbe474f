//! Whole-flow concurrency suites: the core's services over one backend's
//! ports, many tasks racing on a multi-threaded runtime.
//!
//! Each function takes the fresh, empty ports of *one* backend (the services
//! need them to share transactions and the outbox), a `committed` probe that
//! returns every event the backend has committed so far (its outbox), and a
//! `spawn` function that runs a future as a task on a multi-threaded runtime
//! (e.g. `&|f| { tokio::spawn(f); }`).

use std::sync::Arc;

use super::licensing::Spawn;
use crate::auth::{Actor, Role};
use crate::catalog::{NewProduct, Product, ProductKind, ProductRepository, ProductStatus};
use crate::clock::{Clock, ManualClock, Timestamp};
use crate::events::{Event, EventHandler, EventType, PaymentSucceeded};
use crate::ids::{ProductId, UserId};
use crate::licensing::{LicenseRepository, LicenseService, LicenseSigner};
use crate::money::{Currency, Money};
use crate::orders::{
    Checkout, IdempotencyStore, OrderConfig, OrderDeps, OrderRepository, OrderService, OrderStatus, PlaceOrder,
    Placement,
};
use crate::payments::{PaymentIntent, PaymentRepository, PaymentService, SandboxProvider};
use crate::pricing::Pricing;
use crate::workflows::FulfillmentHandler;

/// The ports of one backend that the order, payment and license flows use.
#[derive(Clone)]
pub struct CommercePorts {
    /// Products, for placing orders.
    pub products: Arc<dyn ProductRepository>,
    /// Orders.
    pub orders: Arc<dyn OrderRepository>,
    /// Licenses.
    pub licenses: Arc<dyn LicenseRepository>,
    /// Payment intents.
    pub payments: Arc<dyn PaymentRepository>,
    /// Idempotency keys of order placement.
    pub idempotency: Arc<dyn IdempotencyStore>,
    /// The backend's checkout over the stores above.
    pub checkout: Arc<dyn Checkout>,
}

impl std::fmt::Debug for CommercePorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommercePorts").finish_non_exhaustive()
    }
}

struct Marketplace {
    orders: Arc<OrderService>,
    licenses: Arc<LicenseService>,
    clock: Arc<ManualClock>,
}

fn marketplace(ports: &CommercePorts) -> Marketplace {
    let clock = Arc::new(ManualClock::at_epoch_secs(1_700_000_000));
    let provider = Arc::new(SandboxProvider::new(clock.clone(), b"whsec_test".to_vec()));
    let payments = Arc::new(PaymentService::new(ports.payments.clone(), provider, clock.clone()));
    let orders = Arc::new(OrderService::new(
        OrderDeps {
            orders: ports.orders.clone(),
            products: ports.products.clone(),
            licenses: ports.licenses.clone(),
            payments,
            checkout: ports.checkout.clone(),
            idempotency: ports.idempotency.clone(),
            clock: clock.clone(),
        },
        OrderConfig::default(),
    ));
    let licenses =
        Arc::new(LicenseService::new(ports.licenses.clone(), LicenseSigner::from_seed(&[7; 32]), clock.clone()));
    Marketplace { orders, licenses, clock }
}

async fn approved_product(repo: &dyn ProductRepository, title: &str, minor: i64, now: Timestamp) -> Product {
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
    repo.insert(&p, &[]).await.expect("insert product");
    p
}

/// An order of `items` placed by a new buyer, and the `payment.succeeded`
/// its intent reports when paid.
async fn placed_and_paid(m: &Marketplace, ports: &CommercePorts, items: PlaceOrder) -> (crate::orders::Order, Event) {
    let buyer = Actor::new(UserId::new(), Role::Customer);
    let order = m.orders.place(&buyer, items, None).await.expect("place");
    let intent = ports.payments.get_by_order(order.id).await.expect("get").expect("intent created");
    let paid = PaymentSucceeded { order_id: order.id, payment_intent_id: intent.id, amount: order.total };
    let event = Event::new(&paid, m.clock.now());
    (order, event)
}

/// 50 concurrent [`OrderService::place`] calls with one idempotency key,
/// through the real services over `ports`.
///
/// Asserts that at least one caller got an order and every caller that got
/// one got the same one; that every other caller was told the key is in
/// flight (`conflict`); that exactly one order exists for the buyer; that a
/// retry afterwards replays the first response; and that exactly one
/// `order.placed` event was committed.
///
/// # Panics
/// When any of the above does not hold, or a port call or task fails.
pub async fn fifty_placements_with_one_key(ports: CommercePorts, committed: &dyn Fn() -> Vec<Event>, spawn: Spawn<'_>) {
    let m = marketplace(&ports);
    let product = approved_product(ports.products.as_ref(), "Lead router", 1_999, m.clock.now()).await;
    let buyer = Actor::new(UserId::new(), Role::Customer);

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for _ in 0..50 {
        let (orders, tx) = (m.orders.clone(), tx.clone());
        spawn(Box::pin(async move {
            let _ = tx.send(orders.place(&buyer, PlaceOrder::new([product.id]), Some("order-key-1")).await);
        }));
    }
    drop(tx);
    let mut placed = Vec::new();
    let mut reported = 0;
    while let Some(result) = rx.recv().await {
        reported += 1;
        match result {
            Ok(order) => placed.push(order),
            Err(e) => assert_eq!(e.code(), "conflict", "a concurrent duplicate is told the key is in flight: {e:?}"),
        }
    }
    assert_eq!(reported, 50, "every task reports");
    assert!(!placed.is_empty(), "the request that took the key placed the order");
    assert!(placed.iter().all(|o| o == &placed[0]), "every caller that got an order got the same one");

    let (stored, total) = ports.orders.list_for_buyer(buyer.user_id, 1, 100).await.expect("list");
    assert_eq!(total, 1, "exactly one order exists");
    assert_eq!(stored[0].id, placed[0].id);

    let again = m.orders.place(&buyer, PlaceOrder::new([product.id]), Some("order-key-1")).await.expect("replay");
    assert_eq!(again, placed[0], "a later retry replays the first response");
    let events = committed();
    assert_eq!(events.iter().filter(|e| e.event_type == EventType::OrderPlaced).count(), 1);
}

/// One `payment.succeeded` for a two-line order, handled by 4
/// [`FulfillmentHandler`] tasks at once, through the real services over
/// `ports`.
///
/// Asserts that every delivery is handled without error; that exactly one
/// license per order line exists, for the order's products; that the order
/// ends `Fulfilled`; and that the outbox holds one `license.issued` per line
/// and exactly one `order.fulfilled`.
///
/// # Panics
/// When any of the above does not hold, or a port call or task fails.
pub async fn duplicate_payment_events_issue_one_license_per_line(
    ports: CommercePorts,
    committed: &dyn Fn() -> Vec<Event>,
    spawn: Spawn<'_>,
) {
    let m = marketplace(&ports);
    let now = m.clock.now();
    let a = approved_product(ports.products.as_ref(), "Invoice agent", 2_500, now).await;
    let b = approved_product(ports.products.as_ref(), "Churn workflow", 4_000, now).await;
    let (order, event) = placed_and_paid(&m, &ports, PlaceOrder::new([a.id, b.id])).await;
    assert_eq!(order.status, OrderStatus::PendingPayment);
    let handler = Arc::new(FulfillmentHandler::new(m.orders.clone(), m.licenses.clone()));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for _ in 0..4 {
        let (handler, event, tx) = (handler.clone(), event.clone(), tx.clone());
        spawn(Box::pin(async move {
            let _ = tx.send(handler.handle(&event).await);
        }));
    }
    drop(tx);
    let mut reported = 0;
    while let Some(result) = rx.recv().await {
        reported += 1;
        result.expect("every delivery of the duplicate event is handled");
    }
    assert_eq!(reported, 4, "every task reports");

    let licenses = ports.licenses.list_for_order(order.id).await.expect("list");
    assert_eq!(licenses.len(), 2, "one license per line: {licenses:?}");
    let mut products: Vec<_> = licenses.iter().map(|l| l.product_id).collect();
    products.sort();
    let mut expected = vec![a.id, b.id];
    expected.sort();
    assert_eq!(products, expected);
    let stored = ports.orders.get(order.id).await.expect("get").expect("order");
    assert_eq!(stored.status, OrderStatus::Fulfilled);

    let events = committed();
    let count = |t: EventType| events.iter().filter(|e| e.event_type == t).count();
    assert_eq!(count(EventType::LicenseIssued), 2, "license.issued only for inserted licenses");
    assert_eq!(count(EventType::OrderFulfilled), 1, "order.fulfilled exactly once");
}

/// Two overlapping batches of `payment.succeeded` race through
/// [`FulfillmentHandler::handle_batch`]: first deliveries, an event twice in
/// one batch, an event in both batches, a redelivery for an order already
/// fulfilled, and a payment of an unknown order.
///
/// Asserts that only the unknown order's event fails (`not_found`); that
/// every order ends fulfilled with exactly one license per line; and that
/// `license.issued` is committed once per license and `order.fulfilled`
/// once per order.
///
/// # Panics
/// When any of the above does not hold, or a port call or task fails.
pub async fn overlapping_payment_batches_fulfil_each_order_once(
    ports: CommercePorts,
    committed: &dyn Fn() -> Vec<Event>,
    spawn: Spawn<'_>,
) {
    let m = marketplace(&ports);
    let now = m.clock.now();
    let a = approved_product(ports.products.as_ref(), "Invoice agent", 2_500, now).await;
    let b = approved_product(ports.products.as_ref(), "Churn workflow", 4_000, now).await;
    let mut paid = Vec::new();
    for i in 0..6 {
        let items = if i % 2 == 0 { PlaceOrder::new([a.id, b.id]) } else { PlaceOrder::new([b.id]) };
        paid.push(placed_and_paid(&m, &ports, items).await);
    }
    let handler = Arc::new(FulfillmentHandler::new(m.orders.clone(), m.licenses.clone()));
    // The last order is fulfilled before the batches run: theirs is a redelivery.
    handler.handle(&paid[5].1).await.expect("a first delivery");
    let unknown = PaymentSucceeded {
        order_id: crate::ids::OrderId::new(),
        payment_intent_id: crate::ids::PaymentIntentId::new(),
        amount: Money::new(100, Currency::USD),
    };
    let unknown = Event::new(&unknown, now);
    let event = |i: usize| paid[i].1.clone();
    let batches = [
        vec![event(0), event(1), event(1), event(2), event(5)],
        vec![event(2), event(3), unknown.clone(), event(4), event(0)],
    ];
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for batch in batches {
        let (handler, tx) = (handler.clone(), tx.clone());
        spawn(Box::pin(async move {
            let refs: Vec<&Event> = batch.iter().collect();
            let results = handler.handle_batch(&refs).await.expect("the batch runs");
            let outcome: Vec<_> = batch.iter().zip(results).map(|(e, r)| (e.id, r.map_err(|e| e.code()))).collect();
            let _ = tx.send(outcome);
        }));
    }
    drop(tx);
    let mut answered = 0;
    while let Some(outcome) = rx.recv().await {
        for (id, result) in outcome {
            answered += 1;
            let expected = if id == unknown.id { Err("not_found") } else { Ok(()) };
            assert_eq!(result, expected, "event {id}");
        }
    }
    assert_eq!(answered, 10, "every event of both batches is answered");

    let mut licenses = 0;
    for (order, _) in &paid {
        let stored = ports.orders.get(order.id).await.expect("get").expect("order");
        assert_eq!(stored.status, OrderStatus::Fulfilled, "order {} is fulfilled", order.id);
        let issued = ports.licenses.list_for_order(order.id).await.expect("list");
        let mut products: Vec<_> = issued.iter().map(|l| l.product_id).collect();
        products.sort();
        let mut lines: Vec<_> = order.lines.iter().map(|l| l.product_id).collect();
        lines.sort();
        assert_eq!(products, lines, "one license per line of order {}", order.id);
        licenses += issued.len();
    }
    let events = committed();
    let count = |t: EventType| events.iter().filter(|e| e.event_type == t).count();
    assert_eq!(count(EventType::LicenseIssued), licenses, "license.issued once per license");
    assert_eq!(count(EventType::OrderFulfilled), paid.len(), "order.fulfilled once per order");
}

/// Where a [`Stalling`] checkout stops the request placing an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StallAt {
    /// Let every placement through.
    Nowhere,
    /// After the key is claimed, before anything is written.
    BeforeTheWrite,
    /// After the order (and its key's answer) is written, before the answer returns.
    AfterTheWrite,
}

/// A checkout that stops placements where told and never returns from
/// there, so the test can drop the request at that point: what a process
/// killed there leaves behind.
struct Stalling {
    inner: Arc<dyn Checkout>,
    at: parking_lot::Mutex<StallAt>,
    reached: tokio::sync::Notify,
}

#[async_trait::async_trait]
impl Checkout for Stalling {
    async fn place(&self, placement: &Placement) -> crate::Result<Option<PaymentIntent>> {
        let at = *self.at.lock();
        if at == StallAt::BeforeTheWrite {
            self.reached.notify_one();
            std::future::pending::<()>().await;
        }
        let placed = self.inner.place(placement).await;
        if at == StallAt::AfterTheWrite {
            self.reached.notify_one();
            std::future::pending::<()>().await;
        }
        placed
    }

    async fn order_with_intent(
        &self,
        id: crate::ids::OrderId,
    ) -> crate::Result<Option<(crate::orders::Order, Option<PaymentIntent>)>> {
        self.inner.order_with_intent(id).await
    }
}

/// An idempotent placement whose request dies (its future dropped, as a
/// `kill -9` would end it) after claiming the key, and another that dies
/// after its order is written. In both, a retry with the same key ends with
/// exactly one order: the first is refused as in flight until the lease
/// ends, then takes the key over and places the order; the second replays
/// the order already written.
///
/// # Panics
/// When a retry fails, or a key ends with no order or more than one.
pub async fn a_killed_placement_leaves_its_key_to_a_retry(ports: CommercePorts, committed: &dyn Fn() -> Vec<Event>) {
    let stalling = Arc::new(Stalling {
        inner: ports.checkout.clone(),
        at: parking_lot::Mutex::new(StallAt::Nowhere),
        reached: tokio::sync::Notify::new(),
    });
    let m = marketplace(&CommercePorts { checkout: stalling.clone(), ..ports.clone() });
    let lease = OrderConfig::default().idempotency.lease;
    let placed_events = |buyer: UserId| {
        committed()
            .iter()
            .filter(|e| e.event_type == EventType::OrderPlaced && e.data["buyer_id"] == buyer.to_string())
            .count()
    };

    for at in [StallAt::BeforeTheWrite, StallAt::AfterTheWrite] {
        let product = approved_product(ports.products.as_ref(), "Invoice bot", 2_500, m.clock.now()).await;
        let buyer = Actor::new(UserId::new(), Role::Customer);
        let request = || PlaceOrder::new([product.id]);
        *stalling.at.lock() = at;
        let placing = std::pin::pin!(m.orders.place(&buyer, request(), Some("crash-key")));
        let reached = std::pin::pin!(stalling.reached.notified());
        // The stall reached drops the placing future: the request dies there.
        let killed = match futures::future::select(placing, reached).await {
            futures::future::Either::Left((placed, _)) => Some(placed),
            futures::future::Either::Right(((), _)) => None,
        };
        assert!(killed.is_none(), "{at:?}: the request stopped where it was told, got {killed:?}");
        *stalling.at.lock() = StallAt::Nowhere;

        let order = if at == StallAt::BeforeTheWrite {
            let (stored, _) = ports.orders.list_for_buyer(buyer.user_id, 1, 10).await.expect("list");
            assert!(stored.is_empty(), "{at:?}: nothing was written");
            let early = m.orders.place(&buyer, request(), Some("crash-key")).await;
            assert!(
                matches!(early, Err(crate::Error::InFlight)),
                "{at:?}: the dead request holds the key until its lease ends, got {early:?}"
            );
            m.clock.advance(lease);
            m.orders.place(&buyer, request(), Some("crash-key")).await.expect("the retry takes the key over")
        } else {
            let (stored, _) = ports.orders.list_for_buyer(buyer.user_id, 1, 10).await.expect("list");
            assert_eq!(stored.len(), 1, "{at:?}: the order was written before the request died");
            let replayed = m.orders.place(&buyer, request(), Some("crash-key")).await.expect("the retry replays");
            assert_eq!(replayed.id, stored[0].id, "{at:?}: the retry answers the order already written");
            replayed
        };
        let again = m.orders.place(&buyer, request(), Some("crash-key")).await.expect("a later retry");
        assert_eq!(again.id, order.id, "{at:?}: every later retry replays the one order");
        let (stored, total) = ports.orders.list_for_buyer(buyer.user_id, 1, 10).await.expect("list");
        assert_eq!((total, stored[0].id), (1, order.id), "{at:?}: exactly one order for the key");
        assert_eq!(placed_events(buyer.user_id), 1, "{at:?}: exactly one order.placed committed");
    }
}
