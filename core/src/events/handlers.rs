//! The marketplace's event handlers, as core services the dispatcher runs.
//!
//! | handler | on | does |
//! |---|---|---|
//! | [`FulfillmentHandler`] | `payment.succeeded` | order → paid, one license per line (`license.issued`), order → fulfilled (`order.fulfilled`, once) |
//! | [`RevocationHandler`] | `order.refunded` | revokes the order's licenses (`license.revoked`) |
//! | [`NotificationHandler`] | `order.placed`, `license.issued`, `order.refunded`, `product.approved`, `product.rejected` | notifies the buyer or vendor |
//!
//! Each is idempotent without the inbox: every step is a unique insert or
//! a compare-and-set on a status, so concurrent or repeated deliveries of
//! one event converge on the same state and emit each event once.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use super::{
    Event, EventHandler, EventType, LicenseIssued, OrderPlaced, OrderRefunded, PaymentSucceeded, ProductApproved,
    ProductRejected,
};
use crate::error::Result;
use crate::licensing::LicenseService;
use crate::notifications::{Notice, NotificationService, Template};
use crate::orders::{OrderService, OrderStatus};

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

    /// Each step is idempotent, so a crash between steps is repaired by the
    /// redelivery: `mark_paid` returns an already-paid order as is,
    /// `issue_for_order` inserts only missing licenses (unique per line),
    /// and only the `mark_fulfilled` call whose compare-and-set moved the
    /// order emits `order.fulfilled`.
    async fn handle(&self, event: &Event) -> Result<()> {
        let payment: PaymentSucceeded = event.decode()?;
        let order = self.orders.mark_paid(payment.order_id, event).await?;
        match order.status {
            OrderStatus::Paid => {}
            OrderStatus::Refunded => return self.revoke_after_refund(&order, event).await,
            // Fulfilled already (a redelivery) or canceled: nothing to issue.
            _ => return Ok(()),
        }
        let licenses = self.licenses.issue_for_order(&order, event).await?;
        let license_ids = licenses.iter().map(|l| l.id).collect();
        let order_id = order.id;
        if let Err(err) = self.orders.fulfil(order, license_ids, event).await {
            // A refund can land between `mark_paid` and here. The revocation
            // handler may then already have run and found no licenses, so the
            // ones just issued must be revoked by us.
            let current = self.orders.mark_paid(order_id, event).await?;
            if current.status == OrderStatus::Refunded {
                return self.revoke_after_refund(&current, event).await;
            }
            return Err(err);
        }
        Ok(())
    }
}

impl FulfillmentHandler {
    /// Revokes whatever licenses exist for a refunded order. Idempotent, so
    /// running it here as well as in [`RevocationHandler`] is harmless, and
    /// it closes the window where licenses were issued from a stale `paid`
    /// read after the refund's revocation had already run.
    async fn revoke_after_refund(&self, order: &crate::orders::Order, event: &Event) -> Result<()> {
        self.licenses.revoke_for_order(order.id, REFUND_REASON, event).await?;
        Ok(())
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
}
