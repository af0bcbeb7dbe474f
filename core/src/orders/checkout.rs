//! The checkout port: the steps of a purchase that touch an order and its
//! payment intent together (placing an order, paying it).

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use super::{IdempotencyClaim, IdempotencyStore, Order, OrderRepository, StoredResponse};
use crate::error::{Error, Result};
use crate::events::Event;
use crate::ids::OrderId;
use crate::payments::{PaymentIntent, PaymentRepository};

/// A new order as placing hands it to the store: the order, its events,
/// its first payment intent when the provider opened one, and the answer to
/// the idempotency key the request holds, if it carries one.
#[derive(Debug, Clone)]
pub struct Placement {
    /// The new order.
    pub order: Order,
    /// Its events (`order.placed`, and for a free order its zero `payment.succeeded`).
    pub events: Vec<Event>,
    /// Its first payment intent, when there is one to store with it.
    pub intent: Option<PaymentIntent>,
    /// The held key and the response it will replay.
    pub answer: Option<KeyAnswer>,
}

/// The answer an idempotency key gets when its order is stored.
#[derive(Debug, Clone)]
pub struct KeyAnswer {
    /// The claim the placing request holds.
    pub claim: IdempotencyClaim,
    /// What later requests with the key replay.
    pub response: StoredResponse,
}

/// Orders with their payment intents, for the two steps of a purchase that
/// need both. A store holding orders, intents and idempotency keys serves
/// each step as one unit of work in one round trip; [`SeparateCheckout`]
/// serves them over any three stores, one after the other.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Checkout: Send + Sync {
    /// Stores a placed order with its events (as [`OrderRepository::insert`]),
    /// its intent if any (as [`PaymentRepository::insert`], without events),
    /// and completes its idempotency key if any (as
    /// [`IdempotencyStore::complete`]); answers the intent stored.
    ///
    /// MUST change nothing and fail when the order cannot be stored
    /// ([`Error::Conflict`] when its id exists), the intent is for another
    /// order ([`Error::Validation`], see [`check_intent_for`]), or the claim
    /// no longer holds its key ([`Error::Conflict`]: a retry took it over
    /// after the lease ran out, and places the order itself).
    ///
    /// A store writing all of it as one unit of work never leaves an order
    /// without its key's answer or the reverse, whatever crashes when.
    /// [`SeparateCheckout`] cannot promise that: it MAY store the order and
    /// answer `Ok(None)` when the intent then cannot be stored (paying
    /// creates it), and logs a key it could not complete.
    async fn place(&self, placement: &Placement) -> Result<Option<PaymentIntent>>;

    /// The order with this id and its payment intent, if any: what
    /// [`OrderRepository::get`] and [`PaymentRepository::get_by_order`]
    /// answer.
    async fn order_with_intent(&self, id: OrderId) -> Result<Option<(Order, Option<PaymentIntent>)>>;
}

/// The pairing rule of [`Checkout::place`], shared so
/// every adapter judges and words it the same.
///
/// # Errors
/// [`Error::Validation`] on `intent` when it is for another order.
pub fn check_intent_for(order: &Order, intent: &PaymentIntent) -> Result<()> {
    if intent.order_id == order.id { Ok(()) } else { Err(Error::invalid("intent", "is for another order")) }
}

/// [`Checkout`] over separate order, payment and idempotency stores: the
/// order, then the intent, then the key's answer, each its own write; two
/// reads. For stores that share no transaction (the in-memory ones, or keys
/// kept apart from the orders).
#[derive(Clone)]
pub struct SeparateCheckout {
    orders: Arc<dyn OrderRepository>,
    payments: Arc<dyn PaymentRepository>,
    idempotency: Arc<dyn IdempotencyStore>,
}

impl fmt::Debug for SeparateCheckout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SeparateCheckout").finish_non_exhaustive()
    }
}

impl SeparateCheckout {
    /// A checkout writing orders to `orders`, intents to `payments` and
    /// keys' answers to `idempotency`.
    pub fn new(
        orders: Arc<dyn OrderRepository>,
        payments: Arc<dyn PaymentRepository>,
        idempotency: Arc<dyn IdempotencyStore>,
    ) -> Self {
        Self { orders, payments, idempotency }
    }
}

#[async_trait]
impl Checkout for SeparateCheckout {
    async fn place(&self, placement: &Placement) -> Result<Option<PaymentIntent>> {
        let Placement { order, events, intent, answer } = placement;
        if let Some(intent) = intent {
            check_intent_for(order, intent)?;
        }
        self.orders.insert(order, events).await?;
        // The order is placed from here on: failing now would invite a
        // retry that places a second one.
        let stored = match intent {
            None => None,
            Some(intent) => match self.payments.insert(intent, &[]).await {
                Ok(()) => Some(intent.clone()),
                Err(e) => {
                    tracing::warn!(order = %order.id, error = %e, "no payment intent yet; paying will create it");
                    None
                }
            },
        };
        if let Some(KeyAnswer { claim, response }) = answer
            && let Err(e) = self.idempotency.complete(claim, response.clone()).await
        {
            tracing::warn!(order = %order.id, error = %e, "could not store the idempotent response");
        }
        Ok(stored)
    }

    async fn order_with_intent(&self, id: OrderId) -> Result<Option<(Order, Option<PaymentIntent>)>> {
        let Some(order) = self.orders.get(id).await? else {
            return Ok(None);
        };
        Ok(Some((order, self.payments.get_by_order(id).await?)))
    }
}
