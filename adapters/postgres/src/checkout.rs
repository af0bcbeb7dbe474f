//! The checkout ([`Checkout`]): an order with its payment intent, written
//! and read in one statement each.

use async_trait::async_trait;
use bazaar_core::Result;
use bazaar_core::events::Event;
use bazaar_core::ids::OrderId;
use bazaar_core::orders::Order;
use bazaar_core::orders::{Checkout, check_intent_for};
use bazaar_core::payments::PaymentIntent;
use sqlx::Row;

use crate::codec::{db_err, from_json, int, to_json, ts};
use crate::outbox::EventRows;
use crate::store::PgStore;

// The order, its intent and the order's events as one statement: all or
// nothing (a taken order id or an order that has an intent fails it whole).
pub(crate) const INSERT_ORDER_WITH_INTENT: &str = "WITH main AS (
        INSERT INTO orders (id, buyer_id, status, created_at, doc) VALUES ($1, $2, $3, $4, $5) RETURNING 1
    ), intent AS (
        INSERT INTO payment_intents (id, order_id, provider, provider_ref, version, doc)
        SELECT $6, $1, $7, $8, $9, $10 FROM main RETURNING 1
    ), appended AS (
        INSERT INTO outbox (event_id, event_type, occurred_at, envelope)
        SELECT e.event_id, e.event_type, e.occurred_at, e.envelope
        FROM unnest($11::text[], $12::text[], $13::bigint[], $14::text[])
            WITH ORDINALITY AS e(event_id, event_type, occurred_at, envelope, n)
        WHERE EXISTS (SELECT 1 FROM main) ORDER BY e.n
    ) SELECT 1 FROM main";
// Both looked up by their own unique key, not joined: a join's plan, cached
// while the tables were small, could scan a whole table on every call.
pub(crate) const ORDER_WITH_INTENT: &str =
    "SELECT o.doc, (SELECT p.doc FROM payment_intents AS p WHERE p.order_id = $1) FROM orders AS o WHERE o.id = $1";

/// Orders with their payment intents in PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgCheckout {
    store: PgStore,
}

impl PgCheckout {
    pub(crate) fn new(store: PgStore) -> Self {
        Self { store }
    }
}

#[async_trait]
impl Checkout for PgCheckout {
    async fn insert_order_with_intent(
        &self,
        order: &Order,
        events: &[Event],
        intent: &PaymentIntent,
    ) -> Result<Option<PaymentIntent>> {
        check_intent_for(order, intent)?;
        self.store
            .run(async {
                let (id, buyer, status) = (order.id.to_string(), order.buyer_id.to_string(), order.status.as_str());
                let (created_at, doc) = (ts(order.created_at)?, to_json(order)?);
                let (intent_id, version, intent_doc) = (intent.id.to_string(), int(intent.version)?, to_json(intent)?);
                let events = EventRows::new(events)?;
                self.store
                    .write_rows(|| {
                        events.bind(
                            sqlx::query(INSERT_ORDER_WITH_INTENT)
                                .bind(&id)
                                .bind(&buyer)
                                .bind(status)
                                .bind(created_at)
                                .bind(&doc)
                                .bind(&intent_id)
                                .bind(intent.provider.as_str())
                                .bind(intent.provider_ref.as_deref())
                                .bind(version)
                                .bind(&intent_doc),
                        )
                    })
                    .await?;
                Ok(Some(intent.clone()))
            })
            .await
    }

    async fn order_with_intent(&self, id: OrderId) -> Result<Option<(Order, Option<PaymentIntent>)>> {
        self.store
            .run(async {
                let row = sqlx::query(ORDER_WITH_INTENT)
                    .bind(id.to_string())
                    .fetch_optional(self.store.pool())
                    .await
                    .map_err(db_err)?;
                let Some(row) = row else { return Ok(None) };
                let order = from_json(row.get::<&str, _>(0))?;
                let intent = row.get::<Option<&str>, _>(1).map(from_json).transpose()?;
                Ok(Some((order, intent)))
            })
            .await
    }
}
