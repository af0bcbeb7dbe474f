//! [`SalesWebhooks`]: turns sales into vendor webhook deliveries.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;

use crate::error::{Error, Result};
use crate::events::{Event, EventHandler, EventType, LicenseIssued, OrderRefunded, PaymentSucceeded};
use crate::ids::{OrderId, PaymentIntentId, UserId};
use crate::money::Money;
use crate::orders::{Order, OrderLine, OrderRepository};
use crate::webhooks::{Sale, VendorEvent, WebhookService};

/// `payment.succeeded` → `order.paid`, `license.issued` → `license.issued`
/// and `order.refunded` → `order.refunded`, each to the endpoints of every
/// vendor with a product in the order, carrying only that vendor's lines.
///
/// Deliveries are unique per endpoint and event, so a redelivered event
/// queues nothing new; sending is the [`WebhookDeliverer`](crate::webhooks::WebhookDeliverer)'s.
pub struct SalesWebhooks {
    orders: Arc<dyn OrderRepository>,
    webhooks: Arc<WebhookService>,
}

impl fmt::Debug for SalesWebhooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SalesWebhooks").finish_non_exhaustive()
    }
}

impl SalesWebhooks {
    /// A handler reading `orders` and queuing through `webhooks`.
    pub fn new(orders: Arc<dyn OrderRepository>, webhooks: Arc<WebhookService>) -> Self {
        Self { orders, webhooks }
    }

    /// The order `id`, read once per batch (`payment.succeeded` and the
    /// `license.issued` of one order usually travel together).
    async fn order(&self, id: OrderId, read: &mut HashMap<OrderId, Order>) -> Result<Order> {
        if let Some(order) = read.get(&id) {
            return Ok(order.clone());
        }
        let order = self.orders.get(id).await?.ok_or_else(|| Error::not_found("order"))?;
        read.insert(id, order.clone());
        Ok(order)
    }

    /// The vendor webhooks `event` calls for.
    async fn sales(&self, event: &Event, read: &mut HashMap<OrderId, Order>) -> Result<Vec<Sale>> {
        let sale = |vendor_id, event_type, data| Sale {
            vendor_id,
            event_type,
            event_id: event.id,
            occurred_at: event.occurred_at,
            data,
            traceparent: event.traceparent.clone(),
        };
        match event.event_type {
            EventType::PaymentSucceeded => {
                let paid: PaymentSucceeded = event.decode()?;
                let order = self.order(paid.order_id, read).await?;
                by_vendor(&order)?
                    .into_iter()
                    .map(|(vendor, share)| {
                        Ok(sale(vendor, VendorEvent::OrderPaid, share.data(&order, Some(paid.payment_intent_id))))
                    })
                    .collect()
            }
            EventType::OrderRefunded => {
                let refunded: OrderRefunded = event.decode()?;
                let order = self.order(refunded.order_id, read).await?;
                by_vendor(&order)?
                    .into_iter()
                    .map(|(vendor, share)| Ok(sale(vendor, VendorEvent::OrderRefunded, share.data(&order, None))))
                    .collect()
            }
            EventType::LicenseIssued => {
                let issued: LicenseIssued = event.decode()?;
                let order = self.order(issued.order_id, read).await?;
                let line =
                    order.lines.iter().find(|l| l.product_id == issued.product_id).ok_or_else(|| {
                        Error::invalid("data", "license.issued names a product its order does not hold")
                    })?;
                let data = json!({
                    "license_id": issued.license_id,
                    "order_id": issued.order_id,
                    "buyer_id": issued.buyer_id,
                    "product_id": issued.product_id,
                    "title": line.title,
                });
                Ok(vec![sale(line.vendor_id, VendorEvent::LicenseIssued, data)])
            }
            _ => Ok(Vec::new()),
        }
    }
}

/// One vendor's lines of an order and their sums.
struct Share<'o> {
    lines: Vec<&'o OrderLine>,
    gross: Money,
    net: Money,
}

impl Share<'_> {
    fn data(&self, order: &Order, payment_intent: Option<PaymentIntentId>) -> serde_json::Value {
        let lines: Vec<_> = self
            .lines
            .iter()
            .map(|l| {
                json!({
                    "product_id": l.product_id,
                    "title": l.title,
                    "unit_price": l.unit_price,
                    "platform_fee": l.platform_fee,
                    "vendor_net": l.vendor_net,
                })
            })
            .collect();
        let mut data = json!({
            "order_id": order.id,
            "buyer_id": order.buyer_id,
            "lines": lines,
            "gross": self.gross,
            "vendor_net": self.net,
        });
        if let Some(intent) = payment_intent {
            data["payment_intent_id"] = json!(intent);
        }
        data
    }
}

/// The order's lines grouped by vendor, in order of first appearance.
fn by_vendor(order: &Order) -> Result<Vec<(UserId, Share<'_>)>> {
    let mut shares: Vec<(UserId, Share<'_>)> = Vec::new();
    for line in &order.lines {
        let index = match shares.iter().position(|(vendor, _)| *vendor == line.vendor_id) {
            Some(i) => i,
            None => {
                let zero = Money::zero(order.total.currency());
                shares.push((line.vendor_id, Share { lines: Vec::new(), gross: zero, net: zero }));
                shares.len() - 1
            }
        };
        let share = &mut shares[index].1;
        share.lines.push(line);
        share.gross = share.gross.checked_add(&line.unit_price)?;
        share.net = share.net.checked_add(&line.vendor_net)?;
    }
    Ok(shares)
}

#[async_trait]
impl EventHandler for SalesWebhooks {
    fn name(&self) -> &'static str {
        "vendor-webhooks"
    }

    fn handles(&self, event_type: EventType) -> bool {
        matches!(event_type, EventType::PaymentSucceeded | EventType::LicenseIssued | EventType::OrderRefunded)
    }

    async fn handle(&self, event: &Event) -> Result<()> {
        self.handle_batch(&[event]).await?.pop().unwrap_or(Ok(()))
    }

    /// Every delivery of the batch queued in one store call.
    async fn handle_batch<'e>(&self, events: &[&'e Event]) -> Result<Vec<Result<()>>> {
        let mut results = Vec::with_capacity(events.len());
        let mut sales = Vec::new();
        let mut read = HashMap::new();
        for event in events {
            match self.sales(event, &mut read).await {
                Ok(found) => {
                    sales.extend(found);
                    results.push(Ok(()));
                }
                Err(err) => results.push(Err(err)),
            }
        }
        if !sales.is_empty() {
            self.webhooks.queue(&sales).await?;
        }
        Ok(results)
    }
}
