//! The checkout port: the steps of a purchase that touch an order and its
//! payment intent together (placing a paid order, paying it).

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use super::{Order, OrderRepository};
use crate::error::{Error, Result};
use crate::events::Event;
use crate::ids::OrderId;
use crate::payments::{PaymentIntent, PaymentRepository};

/// Orders with their payment intents, for the two steps of a purchase that
/// need both. A store holding both serves each step with one round trip;
/// [`SeparateCheckout`] serves them over any two repositories.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Checkout: Send + Sync {
    /// Stores a new order with its `events` (as [`OrderRepository::insert`])
    /// and then its first payment `intent` (as [`PaymentRepository::insert`],
    /// without events), and answers the intent stored.
    ///
    /// MUST change nothing and fail when the order cannot be stored
    /// ([`Error::Conflict`] when its id exists) or the intent is for another
    /// order ([`Error::Validation`], see [`check_intent_for`]). MAY store the order and
    /// answer `Ok(None)` when the intent then cannot be stored (paying
    /// creates it); a store that writes both as one unit of work never does.
    async fn insert_order_with_intent(
        &self,
        order: &Order,
        events: &[Event],
        intent: &PaymentIntent,
    ) -> Result<Option<PaymentIntent>>;

    /// The order with this id and its payment intent, if any: what
    /// [`OrderRepository::get`] and [`PaymentRepository::get_by_order`]
    /// answer.
    async fn order_with_intent(&self, id: OrderId) -> Result<Option<(Order, Option<PaymentIntent>)>>;
}

/// The pairing rule of [`Checkout::insert_order_with_intent`], shared so
/// every adapter judges and words it the same.
///
/// # Errors
/// [`Error::Validation`] on `intent` when it is for another order.
pub fn check_intent_for(order: &Order, intent: &PaymentIntent) -> Result<()> {
    if intent.order_id == order.id { Ok(()) } else { Err(Error::invalid("intent", "is for another order")) }
}

/// [`Checkout`] over separate order and payment repositories: the order,
/// then the intent, each its own write; two reads.
#[derive(Clone)]
pub struct SeparateCheckout {
    orders: Arc<dyn OrderRepository>,
    payments: Arc<dyn PaymentRepository>,
}

impl fmt::Debug for SeparateCheckout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SeparateCheckout").finish_non_exhaustive()
    }
}

impl SeparateCheckout {
    /// A checkout writing orders to `orders` and intents to `payments`.
    pub fn new(orders: Arc<dyn OrderRepository>, payments: Arc<dyn PaymentRepository>) -> Self {
        Self { orders, payments }
    }
}

#[async_trait]
impl Checkout for SeparateCheckout {
    async fn insert_order_with_intent(
        &self,
        order: &Order,
        events: &[Event],
        intent: &PaymentIntent,
    ) -> Result<Option<PaymentIntent>> {
        check_intent_for(order, intent)?;
        self.orders.insert(order, events).await?;
        match self.payments.insert(intent, &[]).await {
            Ok(()) => Ok(Some(intent.clone())),
            Err(e) => {
                // The order is placed either way: failing now would invite a
                // retry that places a second one.
                tracing::warn!(order = %order.id, error = %e, "no payment intent yet; paying will create it");
                Ok(None)
            }
        }
    }

    async fn order_with_intent(&self, id: OrderId) -> Result<Option<(Order, Option<PaymentIntent>)>> {
        let Some(order) = self.orders.get(id).await? else {
            return Ok(None);
        };
        Ok(Some((order, self.payments.get_by_order(id).await?)))
    }
}
