//! Flows that span aggregates: the event handlers the dispatcher runs, as core services above every domain module.
//!
//! | handler | on | does |
//! |---|---|---|
//! | [`FulfillmentHandler`] | `payment.succeeded` | order → paid, one license per line (`license.issued`), order → fulfilled (`order.fulfilled`, once) |
//! | [`RevocationHandler`] | `order.refunded` | revokes the order's licenses (`license.revoked`) |
//! | [`NotificationHandler`] | `order.placed`, `license.issued`, `order.refunded`, `product.approved`, `product.rejected` | notifies the buyer or vendor |
//! | [`SalesWebhooks`] | `payment.succeeded`, `license.issued`, `order.refunded` | queues the vendors' webhook deliveries (`order.paid`, `license.issued`, `order.refunded`) |
//! | [`SearchIndexer`] | every `product.*` event | re-reads the product and hands its state to a search read model |
//!
//! Each is idempotent without the inbox: every step is a unique insert or
//! a compare-and-set on a status, so concurrent or repeated deliveries of
//! one event converge on the same state and emit each event once.

mod sales_webhooks;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::catalog::{ProductRepository, SearchIndex};
use crate::error::{Error, Result};
use crate::events::{
    Event, EventHandler, EventType, LicenseIssued, OrderPlaced, OrderRefunded, PaymentSucceeded, ProductApproved,
    ProductRejected,
};
use crate::ids::OrderId;
use crate::licensing::{LicenseService, Purchase};
use crate::notifications::{Notice, NotificationService, Template};
use crate::orders::{OrderService, OrderStatus};

pub use sales_webhooks::SalesWebhooks;

/// Keeps a search read model current with the product events: for each,
/// re-reads the product from the store and hands its current state to the
/// index (any status, so an approval adds it, a suspension or an edit back
/// to draft removes it, a review updates its rating). Re-reading rather than
/// trusting the payload makes redeliveries and reordering harmless: the
/// index ignores a state older than the one it holds.
///
/// Each process keeps its own index, so each runs this handler as its own
/// consumer group (a fan-out), apart from the shared worker dispatcher.
pub struct SearchIndexer {
    products: Arc<dyn ProductRepository>,
    index: Arc<dyn SearchIndex>,
}

impl fmt::Debug for SearchIndexer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SearchIndexer").finish_non_exhaustive()
    }
}

impl SearchIndexer {
    /// The event types that change what a search finds.
    pub const EVENTS: [EventType; 7] = [
        EventType::ProductSubmitted,
        EventType::ProductApproved,
        EventType::ProductRejected,
        EventType::ProductSuspended,
        EventType::ProductUpdated,
        EventType::ProductReviewed,
        EventType::ProductDownloaded,
    ];

    /// A handler reading `products` and writing `index`.
    pub fn new(products: Arc<dyn ProductRepository>, index: Arc<dyn SearchIndex>) -> Self {
        Self { products, index }
    }
}

#[async_trait]
impl EventHandler for SearchIndexer {
    fn name(&self) -> &'static str {
        "search-index"
    }

    fn handles(&self, event_type: EventType) -> bool {
        Self::EVENTS.contains(&event_type)
    }

    async fn handle(&self, event: &Event) -> Result<()> {
        self.handle_batch(&[event]).await?.pop().unwrap_or(Ok(()))
    }

    /// One index write for the whole batch; each event's product read once.
    async fn handle_batch<'e>(&self, events: &[&'e Event]) -> Result<Vec<Result<()>>> {
        let mut results = Vec::with_capacity(events.len());
        let mut seen = std::collections::HashSet::new();
        let mut current = Vec::new();
        for event in events {
            let read = match product_of(event) {
                Ok(id) if !seen.insert(id) => Ok(()),
                Ok(id) => self.products.get(id).await.map(|found| current.extend(found)),
                Err(e) => Err(e),
            };
            results.push(read);
        }
        if !current.is_empty() {
            // An index failure fails every event of the batch: each is retried.
            if let Err(e) = self.index.index(&current).await {
                let message = e.to_string();
                return Ok(events.iter().map(|_| Err(Error::unavailable("search index", message.clone()))).collect());
            }
        }
        Ok(results)
    }
}

/// The product a product event is about.
fn product_of(event: &Event) -> Result<crate::ids::ProductId> {
    event
        .data
        .get("product_id")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .ok_or_else(|| Error::invalid("data", format!("{} event without a product_id", event.event_type)))
}

/// Why licenses are revoked on `order.refunded`.
pub const REFUND_REASON: &str = "refund";

/// `payment.succeeded` → paid → licenses issued → fulfilled.
pub struct FulfillmentHandler {
    orders: Arc<OrderService>,
    licenses: Arc<LicenseService>,
}

impl fmt::Debug for FulfillmentHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FulfillmentHandler").finish_non_exhaustive()
    }
}

impl FulfillmentHandler {
    /// A handler driving `orders` and `licenses`.
    pub fn new(orders: Arc<OrderService>, licenses: Arc<LicenseService>) -> Self {
        Self { orders, licenses }
    }
}

#[async_trait]
impl EventHandler for FulfillmentHandler {
    fn name(&self) -> &'static str {
        "fulfillment"
    }

    fn handles(&self, event_type: EventType) -> bool {
        event_type == EventType::PaymentSucceeded
    }

    async fn handle(&self, event: &Event) -> Result<()> {
        // One path for one event and for many.
        self.handle_batch(&[event]).await?.pop().unwrap_or(Ok(()))
    }

    /// Each step is idempotent, so a crash between steps is repaired by the
    /// redelivery: `mark_paid` returns an already-paid order as is,
    /// `issue_for_order` inserts only missing licenses (unique per line),
    /// and only the `fulfil` whose compare-and-set moved the order emits
    /// `order.fulfilled`.
    ///
    /// The batch takes each step for all its events at once
    /// ([`OrderService::mark_paid_all`], [`LicenseService::issue_for_orders`],
    /// [`OrderService::fulfil_all`]): three store round trips for a batch of
    /// first deliveries, however many events.
    async fn handle_batch<'e>(&self, events: &[&'e Event]) -> Result<Vec<Result<()>>> {
        let mut results: Vec<Result<()>> = Vec::with_capacity(events.len());
        let mut payments = Vec::with_capacity(events.len());
        let mut slots = Vec::with_capacity(events.len());
        for event in events {
            match event.decode::<PaymentSucceeded>() {
                Ok(payment) => {
                    slots.push(results.len());
                    payments.push((payment.order_id, *event));
                    results.push(Ok(()));
                }
                Err(err) => results.push(Err(err)),
            }
        }
        let marked = self.orders.mark_paid_all(&payments).await?;
        let mut paid = Vec::with_capacity(payments.len());
        let mut refunded = Vec::new();
        for ((slot, (_, event)), order) in slots.into_iter().zip(payments).zip(marked) {
            match order {
                Ok(order) if order.status == OrderStatus::Paid => paid.push((slot, order, event)),
                Ok(order) if order.status == OrderStatus::Refunded => refunded.push((slot, order.id, event)),
                // Fulfilled already (a redelivery) or canceled: nothing to issue.
                Ok(_) => {}
                Err(err) => results[slot] = Err(err),
            }
        }
        let purchases: Vec<Purchase> = paid.iter().map(|(_, order, _)| Purchase::from(order)).collect();
        let issuing: Vec<(&Purchase, &Event)> =
            purchases.iter().zip(&paid).map(|(p, (_, _, event))| (p, *event)).collect();
        let issued = self.licenses.issue_for_orders(&issuing).await?;
        let mut fulfilling = Vec::with_capacity(paid.len());
        let mut fulfilled_slots = Vec::with_capacity(paid.len());
        for ((slot, order, event), licenses) in paid.into_iter().zip(issued) {
            match licenses {
                Ok(licenses) => {
                    fulfilled_slots.push((slot, order.id, event));
                    fulfilling.push((order, licenses.iter().map(|l| l.id).collect(), event));
                }
                Err(err) => results[slot] = Err(err),
            }
        }
        let fulfilled = self.orders.fulfil_all(&fulfilling).await?;
        let recovering = fulfilled_slots.into_iter().zip(fulfilled).filter_map(|((slot, order_id, event), done)| {
            done.err().map(|err| async move { (slot, self.after_failed_fulfil(order_id, event, err).await) })
        });
        let revoking = refunded
            .into_iter()
            .map(|(slot, order_id, event)| async move { (slot, self.revoke_after_refund(order_id, event).await) });
        let (recovered, revoked) = futures::future::join(
            futures::future::join_all(recovering.collect::<Vec<_>>()),
            futures::future::join_all(revoking.collect::<Vec<_>>()),
        )
        .await;
        for (slot, result) in recovered.into_iter().chain(revoked) {
            results[slot] = result;
        }
        Ok(results)
    }
}

impl FulfillmentHandler {
    /// Revokes whatever licenses exist for a refunded order. Idempotent, so
    /// running it here as well as in [`RevocationHandler`] is harmless, and
    /// it closes the window where licenses were issued from a stale `paid`
    /// read after the refund's revocation had already run.
    async fn revoke_after_refund(&self, order_id: OrderId, event: &Event) -> Result<()> {
        self.licenses.revoke_for_order(order_id, REFUND_REASON, event).await?;
        Ok(())
    }

    /// A refund can land between marking paid and fulfilling. The
    /// revocation handler may then already have run and found no licenses,
    /// so the ones just issued must be revoked here; any other failure of
    /// the fulfil stands.
    async fn after_failed_fulfil(&self, order_id: OrderId, event: &Event, err: crate::Error) -> Result<()> {
        let current = self.orders.mark_paid(order_id, event).await?;
        if current.status == OrderStatus::Refunded {
            return self.revoke_after_refund(order_id, event).await;
        }
        Err(err)
    }
}

/// `order.refunded` → the order's licenses are revoked.
pub struct RevocationHandler {
    licenses: Arc<LicenseService>,
}

impl fmt::Debug for RevocationHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RevocationHandler").finish_non_exhaustive()
    }
}

impl RevocationHandler {
    /// A handler revoking through `licenses`.
    pub fn new(licenses: Arc<LicenseService>) -> Self {
        Self { licenses }
    }
}

#[async_trait]
impl EventHandler for RevocationHandler {
    fn name(&self) -> &'static str {
        "revocation"
    }

    fn handles(&self, event_type: EventType) -> bool {
        event_type == EventType::OrderRefunded
    }

    async fn handle(&self, event: &Event) -> Result<()> {
        let refund: OrderRefunded = event.decode()?;
        self.licenses.revoke_for_order(refund.order_id, REFUND_REASON, event).await?;
        Ok(())
    }
}

/// Buyer and vendor notifications for order, license and moderation events.
pub struct NotificationHandler {
    notifications: Arc<NotificationService>,
}

impl fmt::Debug for NotificationHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NotificationHandler").finish_non_exhaustive()
    }
}

impl NotificationHandler {
    /// A handler notifying through `notifications`.
    pub fn new(notifications: Arc<NotificationService>) -> Self {
        Self { notifications }
    }
}

#[async_trait]
impl EventHandler for NotificationHandler {
    fn name(&self) -> &'static str {
        "notifications"
    }

    fn handles(&self, event_type: EventType) -> bool {
        matches!(
            event_type,
            EventType::OrderPlaced
                | EventType::LicenseIssued
                | EventType::OrderRefunded
                | EventType::ProductApproved
                | EventType::ProductRejected
        )
    }

    async fn handle(&self, event: &Event) -> Result<()> {
        // One path for one event and for many.
        self.handle_batch(&[event]).await?.pop().unwrap_or(Ok(()))
    }

    /// Every notice of the batch in one [`NotificationService::notify_many`]:
    /// two store round trips however many events.
    async fn handle_batch<'e>(&self, events: &[&'e Event]) -> Result<Vec<Result<()>>> {
        let mut results: Vec<Result<()>> = Vec::with_capacity(events.len());
        let mut notices = Vec::with_capacity(events.len());
        let mut slots = Vec::with_capacity(events.len());
        for event in events {
            match notice(event) {
                Ok(Some(n)) => {
                    slots.push(results.len());
                    notices.push(n);
                    results.push(Ok(()));
                }
                Ok(None) => results.push(Ok(())),
                Err(err) => results.push(Err(err)),
            }
        }
        if !notices.is_empty() {
            for (slot, notified) in slots.into_iter().zip(self.notifications.notify_many(&notices).await?) {
                results[slot] = notified.map(drop);
            }
        }
        Ok(results)
    }
}

/// Who `event` notifies, about which order, with which template; `None`
/// for a type the notification handler does not handle.
fn notice(event: &Event) -> Result<Option<Notice<'_>>> {
    let (user_id, order_id, template) = match event.event_type {
        EventType::OrderPlaced => {
            let d: OrderPlaced = event.decode()?;
            (d.buyer_id, Some(d.order_id), Template::OrderPlaced)
        }
        EventType::LicenseIssued => {
            let d: LicenseIssued = event.decode()?;
            (d.buyer_id, Some(d.order_id), Template::LicenseIssued)
        }
        EventType::OrderRefunded => {
            let d: OrderRefunded = event.decode()?;
            (d.buyer_id, Some(d.order_id), Template::OrderRefunded)
        }
        EventType::ProductApproved => {
            let d: ProductApproved = event.decode()?;
            (d.vendor_id, None, Template::ProductApproved)
        }
        EventType::ProductRejected => {
            let d: ProductRejected = event.decode()?;
            (d.vendor_id, None, Template::ProductRejected)
        }
        // The dispatcher only passes the types `handles` accepts.
        _ => return Ok(None),
    };
    Ok(Some(Notice { user_id, order_id, template, cause: event }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::ids::{ProductId, UserId};
    use crate::notifications::{MockNotificationRepository, MockNotificationSender, Preferences};
    use crate::orders::Order;

    fn paid_order(lines: usize, clock: &ManualClock) -> (Order, Event) {
        use crate::money::{Currency, Money};
        use crate::orders::OrderLine;
        use crate::pricing::Pricing;
        let price = Money::new(1_000, Currency::USD);
        let line = |_| OrderLine {
            product_id: ProductId::new(),
            vendor_id: UserId::new(),
            title: "Invoice agent".into(),
            pricing: Pricing::OneTime { price },
            unit_price: price,
            platform_fee: Money::new(200, Currency::USD),
            vendor_net: Money::new(800, Currency::USD),
        };
        let order = Order {
            id: OrderId::new(),
            buyer_id: UserId::new(),
            lines: (0..lines).map(line).collect(),
            total: Money::new(1_000 * i64::try_from(lines).unwrap(), Currency::USD),
            status: OrderStatus::PendingPayment,
            created_at: clock.now(),
            updated_at: clock.now(),
        };
        let payment = PaymentSucceeded {
            order_id: order.id,
            payment_intent_id: crate::ids::PaymentIntentId::new(),
            amount: order.total,
        };
        let event = Event::new(&payment, clock.now());
        (order, event)
    }

    /// First deliveries of a batch of payments: two compare-and-sets and one
    /// license insert in all, each over the whole batch (the mocks refuse
    /// any other store call).
    #[tokio::test]
    async fn a_batch_of_payments_is_fulfilled_with_three_store_calls() {
        use crate::catalog::MockProductRepository;
        use crate::licensing::{LicenseSigner, MockLicenseRepository};
        use crate::orders::{MockIdempotencyStore, MockOrderRepository, OrderConfig, OrderDeps, StatusChange};
        use crate::payments::{MockPaymentRepository, PaymentService, SandboxProvider};

        let clock = Arc::new(ManualClock::at_epoch_secs(1_700_000_000));
        let placed: Vec<(Order, Event)> = (1..=4).map(|lines| paid_order(lines, &clock)).collect();
        let mut repo = MockOrderRepository::new();
        let orders: Vec<Order> = placed.iter().map(|(o, _)| o.clone()).collect();
        let moved = move |changes: &[StatusChange], to: OrderStatus| -> Vec<Result<Order>> {
            changes
                .iter()
                .map(|c| {
                    let mut order = orders.iter().find(|o| o.id == c.id).cloned().expect("a known order");
                    order.status = to;
                    Ok(order)
                })
                .collect()
        };
        let to_paid = moved.clone();
        repo.expect_transition_all()
            .withf(|from, to, _, changes| {
                (*from, *to) == (OrderStatus::PendingPayment, OrderStatus::Paid)
                    && changes.len() == 4
                    && changes.iter().all(|c| c.total.is_some() && c.events.is_empty())
            })
            .times(1)
            .returning(move |_, to, _, changes| Ok(to_paid(changes, to)));
        repo.expect_transition_all()
            .withf(|from, to, _, changes| {
                (*from, *to) == (OrderStatus::Paid, OrderStatus::Fulfilled)
                    && changes.len() == 4
                    && changes
                        .iter()
                        .all(|c| c.events.len() == 1 && c.events[0].event_type == EventType::OrderFulfilled)
            })
            .times(1)
            .returning(move |_, to, _, changes| Ok(moved(changes, to)));
        let repo: Arc<dyn crate::orders::OrderRepository> = Arc::new(repo);
        let mut licenses = MockLicenseRepository::new();
        licenses
            .expect_insert_all()
            .withf(|all| all.len() == 1 + 2 + 3 + 4 && all.iter().all(|(_, events)| events.len() == 1))
            .times(1)
            .returning(|all| Ok(all.iter().map(|_| Ok(())).collect()));
        let licenses: Arc<dyn crate::licensing::LicenseRepository> = Arc::new(licenses);
        let provider = Arc::new(SandboxProvider::new(clock.clone(), b"whsec".to_vec()));
        let payments = Arc::new(PaymentService::new(Arc::new(MockPaymentRepository::new()), provider, clock.clone()));
        let orders = Arc::new(OrderService::new(
            OrderDeps::separate(
                repo,
                Arc::new(MockProductRepository::new()),
                licenses.clone(),
                payments,
                Arc::new(MockIdempotencyStore::new()),
                clock.clone(),
            ),
            OrderConfig::default(),
        ));
        let handler = FulfillmentHandler::new(
            orders,
            Arc::new(LicenseService::new(licenses, LicenseSigner::from_seed(&[3; 32]), clock)),
        );
        let events: Vec<&Event> = placed.iter().map(|(_, e)| e).collect();
        let results = handler.handle_batch(&events).await.expect("the batch runs");
        assert_eq!(results.len(), 4);
        assert!(results.iter().all(Result::is_ok), "{results:?}");
    }

    #[tokio::test]
    async fn a_batch_of_events_is_notified_with_one_insert_and_one_status_write() {
        let (alice, bob) = (UserId::new(), UserId::new());
        let mut repo = MockNotificationRepository::new();
        repo.expect_insert_enabled_all()
            .withf(move |all| {
                let users: Vec<UserId> = all.iter().map(|n| n.user_id).collect();
                all.len() == 6 && users[..3].iter().all(|u| *u == alice) && users[3..].iter().all(|u| *u == bob)
            })
            .times(1)
            .returning(|all| {
                let in_app = Preferences::new(&[crate::notifications::Channel::InApp]).unwrap();
                Ok(all.iter().filter(|n| in_app.allows(n.channel)).cloned().collect())
            });
        repo.expect_update_statuses()
            .withf(|all| all.len() == 2)
            .times(1)
            .returning(|all| Ok(crate::notifications::recorded(all, Template::ProductApproved)));
        let mut sender = MockNotificationSender::new();
        sender.expect_send().times(2).returning(|_| Ok(()));
        let clock = Arc::new(ManualClock::at_epoch_secs(0));
        let handler = NotificationHandler::new(Arc::new(NotificationService::new(
            Arc::new(repo),
            Arc::new(sender),
            clock.clone(),
        )));
        let approved =
            |vendor| Event::new(&ProductApproved { product_id: ProductId::new(), vendor_id: vendor }, clock.now());
        let (first, second) = (approved(alice), approved(bob));
        let mut malformed = approved(alice);
        malformed.data = serde_json::json!({ "product_id": "not an id" });

        let results = handler.handle_batch(&[&first, &malformed, &second]).await.unwrap();
        assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
        assert_eq!(results[1].as_ref().unwrap_err().kind(), crate::ErrorKind::Invalid, "the malformed one alone");
    }

    #[tokio::test]
    async fn a_rejection_notifies_the_vendor_with_the_reason() {
        let vendor = UserId::new();
        let mut repo = MockNotificationRepository::new();
        repo.expect_insert_enabled_all()
            .withf(move |all| {
                all.iter().all(|n| {
                    n.user_id == vendor && n.template == Template::ProductRejected && n.body.contains("blurry")
                })
            })
            .times(1)
            .returning(|all| {
                let in_app = Preferences::new(&[crate::notifications::Channel::InApp]).unwrap();
                Ok(all.iter().filter(|n| in_app.allows(n.channel)).cloned().collect())
            });
        repo.expect_update_statuses()
            .returning(|all| Ok(crate::notifications::recorded(all, Template::ProductRejected)));
        let mut sender = MockNotificationSender::new();
        sender.expect_send().times(1).returning(|_| Ok(()));
        let clock = Arc::new(ManualClock::at_epoch_secs(0));
        let svc = NotificationService::new(Arc::new(repo), Arc::new(sender), clock.clone());
        let handler = NotificationHandler::new(Arc::new(svc));
        let event = Event::new(
            &ProductRejected { product_id: ProductId::new(), vendor_id: vendor, reason: "blurry".into() },
            clock.now(),
        );
        assert!(handler.handles(event.event_type));
        assert!(!handler.handles(EventType::PaymentSucceeded));
        handler.handle(&event).await.unwrap();
    }

    /// Records what it is told.
    #[derive(Default)]
    struct Told(parking_lot::Mutex<Vec<crate::catalog::Product>>);

    #[async_trait]
    impl SearchIndex for Told {
        async fn search(&self, query: &crate::catalog::SearchQuery) -> Result<crate::catalog::SearchResult> {
            Ok(crate::catalog::search::apply(&self.0.lock(), query))
        }

        async fn index(&self, products: &[crate::catalog::Product]) -> Result<()> {
            self.0.lock().extend_from_slice(products);
            Ok(())
        }

        async fn rebuild(&self, products: &[crate::catalog::Product]) -> Result<()> {
            *self.0.lock() = products.to_vec();
            Ok(())
        }
    }

    #[tokio::test]
    async fn the_search_indexer_hands_each_changed_product_once_per_batch() {
        use crate::catalog::{MockProductRepository, NewProduct, Pricing, Product, ProductKind, ProductStatus};
        use crate::events::{ProductSuspended, ProductUpdated};
        let clock = ManualClock::at_epoch_secs(1_700_000_000);
        let input = NewProduct {
            title: "Inbox triage agent".into(),
            description: String::new(),
            short_description: String::new(),
            kind: ProductKind::AiAgent,
            categories: vec!["email".into()],
            tags: vec![],
            pricing: Pricing::Free,
            media: vec![],
        };
        let mut product = Product::create(ProductId::new(), UserId::new(), input, clock.now()).unwrap();
        product.status = ProductStatus::Suspended;
        let stored = product.clone();
        let stored_id = stored.id;
        let gone = ProductId::new();
        let mut products = MockProductRepository::new();
        products.expect_get().withf(move |id| *id == stored_id).times(1).returning(move |_| Ok(Some(stored.clone())));
        products.expect_get().withf(move |id| *id == gone).times(1).returning(|_| Ok(None));
        let index = Arc::new(Told::default());
        let handler = SearchIndexer::new(Arc::new(products), index.clone());
        let (id, vendor_id) = (product.id, product.vendor_id);
        let suspended = Event::new(&ProductSuspended { product_id: id, vendor_id }, clock.now());
        let edited = Event::new(&ProductUpdated { product_id: id, vendor_id, version: 2 }, clock.now());
        let deleted = Event::new(&ProductSuspended { product_id: gone, vendor_id }, clock.now());
        let mut malformed = edited.clone();
        malformed.data = serde_json::json!({ "vendor_id": vendor_id });
        assert!(SearchIndexer::EVENTS.iter().all(|t| handler.handles(*t)));
        assert!(!handler.handles(EventType::OrderPlaced));

        let results = handler.handle_batch(&[&suspended, &edited, &deleted, &malformed]).await.unwrap();
        assert!(results[..3].iter().all(Result::is_ok), "{results:?}");
        assert_eq!(results[3].as_ref().unwrap_err().code(), "validation");
        assert_eq!(*index.0.lock(), [product], "read once, handed once; a vanished product is skipped");
    }
}
