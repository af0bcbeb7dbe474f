//! The checkout ([`Checkout`]): an order with its payment intent, written
//! and read in one statement each.

use async_trait::async_trait;
use bazaar_core::Result;
use bazaar_core::ids::OrderId;
use bazaar_core::orders::Order;
use bazaar_core::orders::{Checkout, Placement, check_intent_for};
use bazaar_core::payments::PaymentIntent;
use sqlx::Row;

use crate::codec::{db_err, from_json, int, to_json, ts};
use crate::outbox::EventRows;
use crate::store::PgStore;

// The key's answer, the order, its intent and the order's events as one
// statement: all or nothing. A claim that no longer holds its key (a retry
// took it over) updates no key row, so no order is inserted and nothing
// else follows; a taken order id fails the statement whole. Without a key
// ($15 NULL) the order goes in alone, and without an intent ($6 NULL) no
// intent row is written.
pub(crate) const PLACE: &str = "WITH answered AS (
        UPDATE idempotency_keys SET response = $18
        WHERE $15::text IS NOT NULL AND scope = $15 AND key = $16 AND token = $17 AND response IS NULL
        RETURNING 1
    ), main AS (
        INSERT INTO orders (id, buyer_id, status, created_at, doc)
        SELECT $1, $2, $3, $4, $5 WHERE $15::text IS NULL OR EXISTS (SELECT 1 FROM answered)
        RETURNING 1
    ), intent AS (
        INSERT INTO payment_intents (id, order_id, provider, provider_ref, version, doc)
        SELECT $6, $1, $7, $8, $9, $10 FROM main WHERE $6::text IS NOT NULL RETURNING 1
    ), appended AS (
        INSERT INTO outbox (event_id, event_type, occurred_at, envelope)
        SELECT e.event_id, e.event_type, e.occurred_at, e.envelope
        FROM unnest($11::text[], $12::text[], $13::bigint[], $14::text[])
            WITH ORDINALITY AS e(event_id, event_type, occurred_at, envelope, n)
        WHERE EXISTS (SELECT 1 FROM main) ORDER BY e.n
    ) SELECT count(*) FROM main";
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
    async fn place(&self, placement: &Placement) -> Result<Option<PaymentIntent>> {
        let Placement { order, events, intent, answer } = placement;
        if let Some(intent) = intent {
            check_intent_for(order, intent)?;
        }
        self.store
            .run(async {
                let (id, buyer, status) = (order.id.to_string(), order.buyer_id.to_string(), order.status.as_str());
                let (created_at, doc) = (ts(order.created_at)?, to_json(order)?);
                let intent_row = match intent {
                    Some(i) => Some((
                        i.id.to_string(),
                        i.provider.as_str(),
                        i.provider_ref.as_deref(),
                        int(i.version)?,
                        to_json(i)?,
                    )),
                    None => None,
                };
                let response = answer.as_ref().map(|a| to_json(&a.response)).transpose()?;
                let claim = answer.as_ref().map(|a| &a.claim);
                let events = EventRows::new(events)?;
                let rows = self
                    .store
                    .write_rows(|| {
                        let statement = sqlx::query(PLACE)
                            .bind(&id)
                            .bind(&buyer)
                            .bind(status)
                            .bind(created_at)
                            .bind(&doc)
                            .bind(intent_row.as_ref().map(|r| r.0.as_str()))
                            .bind(intent_row.as_ref().map(|r| r.1))
                            .bind(intent_row.as_ref().and_then(|r| r.2))
                            .bind(intent_row.as_ref().map(|r| r.3))
                            .bind(intent_row.as_ref().map(|r| r.4.as_str()));
                        events
                            .bind(statement)
                            .bind(claim.map(|c| c.scope.as_str()))
                            .bind(claim.map(|c| c.key.as_str()))
                            .bind(claim.map(|c| c.token.as_str()))
                            .bind(response.as_deref())
                    })
                    .await?;
                let placed: i64 = rows.first().map_or(0, |r| r.get(0));
                match claim {
                    Some(claim) if placed == 0 => Err(claim.not_held()),
                    _ => Ok(intent.clone()),
                }
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
