//! The checkout ([`Checkout`]): a placed order, its events, its intent and
//! its idempotency key's answer written in one transaction.

use async_trait::async_trait;
use bazaar_core::Result;
use bazaar_core::ids::OrderId;
use bazaar_core::orders::{Checkout, KeyAnswer, Order, OrderRepository, Placement, check_intent_for};
use bazaar_core::payments::{PaymentIntent, PaymentRepository};

use crate::store::SqliteStore;
use crate::{SqliteOrders, SqlitePayments, idempotency, orders, payments};

/// Orders with their payment intents and idempotency keys in SQLite: placing
/// is one transaction, so a crash leaves either the order with its key's
/// answer or neither.
#[derive(Debug, Clone)]
pub struct SqliteCheckout {
    store: SqliteStore,
    orders: SqliteOrders,
    payments: SqlitePayments,
}

impl SqliteCheckout {
    pub(crate) fn new(store: SqliteStore) -> Self {
        Self { orders: store.orders(), payments: store.payments(), store }
    }
}

#[async_trait]
impl Checkout for SqliteCheckout {
    async fn place(&self, placement: &Placement) -> Result<Option<PaymentIntent>> {
        let Placement { order, events, intent, answer } = placement;
        if let Some(intent) = intent {
            check_intent_for(order, intent)?;
        }
        let mut tx = self.store.write().await?;
        // The key first: a claim a retry took over stops here, before the
        // order exists; dropping `tx` rolls everything back.
        if let Some(KeyAnswer { claim, response }) = answer {
            idempotency::complete_in(&mut tx, claim, response).await?;
        }
        orders::insert_in(&mut tx, order, events).await?;
        if let Some(intent) = intent {
            payments::insert_in(&mut tx, intent).await?;
        }
        self.store.commit(tx).await?;
        Ok(intent.clone())
    }

    async fn order_with_intent(&self, id: OrderId) -> Result<Option<(Order, Option<PaymentIntent>)>> {
        let Some(order) = self.orders.get(id).await? else {
            return Ok(None);
        };
        Ok(Some((order, self.payments.get_by_order(id).await?)))
    }
}
