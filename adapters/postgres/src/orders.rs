//! Orders ([`OrderRepository`]) with a compare-and-set status transition.

use std::collections::HashMap;

use async_trait::async_trait;
use bazaar_core::clock::Timestamp;
use bazaar_core::events::Event;
use bazaar_core::ids::{OrderId, UserId};
use bazaar_core::money::Money;
use bazaar_core::orders::{
    Order, OrderRepository, OrderStatus, StatusChange, check_distinct, check_total, stale_status,
};
use bazaar_core::{Error, Result};
use serde::Serialize;
use sqlx::Row;

use crate::codec::{db_err, from_json, int, to_json, ts, uint};
use crate::outbox::EventRows;
use crate::store::PgStore;

pub(crate) const INSERT: &str = crate::outbox::with_events!(
    "INSERT INTO orders (id, buyer_id, status, created_at, doc) VALUES ($1, $2, $3, $4, $5) RETURNING 1",
    "1",
    6,
    7,
    8,
    9
);
pub(crate) const GET: &str = "SELECT doc FROM orders WHERE id = $1";
// The row lock makes concurrent transitions of one order queue: the second
// reads the status the first committed.
pub(crate) const COUNT_FOR_BUYER: &str = "SELECT COUNT(*) FROM orders WHERE buyer_id = $1";
pub(crate) const LIST_FOR_BUYER: &str =
    "SELECT doc FROM orders WHERE buyer_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3";
// The status guard makes the write a compare-and-set on its own; under the
// row lock taken by `GET_FOR_UPDATE` it also can never lose a race.
// A compare-and-set on the status that patches the document's `status` and
// `updated_at` in place ($4, rendered by serde like the rest of the
// document), with the transition's events in the same statement. Statuses
// never return to an earlier one, so the status alone decides the race.
pub(crate) const SET_STATUS: &str = crate::outbox::with_events!(
    "UPDATE orders SET status = $3, doc = (doc::jsonb || $4::jsonb)::text
        WHERE id = $1 AND status = $2 RETURNING doc",
    "doc",
    5,
    6,
    7,
    8
);
// SET_STATUS that also requires the document's total to be $1 (a payment's
// amount, rendered by serde like the document).
pub(crate) const SET_STATUS_WITH_TOTAL: &str = crate::outbox::with_events!(
    "UPDATE orders SET status = $4, doc = (doc::jsonb || $5::jsonb)::text
        WHERE id = $2 AND status = $3 AND doc::jsonb -> 'total' = $1::jsonb RETURNING doc",
    "doc",
    6,
    7,
    8,
    9
);

// SET_STATUS for many orders: those of $4 in status $1 (and, where $5 gives
// one, with that total) move to $2 with patch $3, each with its own events.
// The rows come by `id = ANY($4)`, each order's total by a lookup in the
// unnested arrays, not by a join: a join's plan, cached by the connection
// while the table was small, would scan the whole table on every call.
pub(crate) const SET_STATUSES: &str = crate::outbox::with_owned_events!(
    "UPDATE orders AS o SET status = $2, doc = (o.doc::jsonb || $3::jsonb)::text
        WHERE o.id = ANY($4) AND o.status = $1
          AND coalesce(o.doc::jsonb -> 'total' = (SELECT c.total::jsonb FROM unnest($4::text[], $5::text[])
                                                    AS c(id, total) WHERE c.id = o.id), TRUE)
        RETURNING o.id, o.doc",
    "id, doc",
    6,
    7,
    8,
    9,
    10
);
pub(crate) const GET_MANY: &str = "SELECT id, doc FROM orders WHERE id = ANY($1)";

/// The fields a transition changes in an order's document.
#[derive(Serialize)]
struct StatusPatch {
    status: OrderStatus,
    updated_at: Timestamp,
}

/// Orders in PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgOrders {
    store: PgStore,
}

impl PgOrders {
    pub(crate) fn new(store: PgStore) -> Self {
        Self { store }
    }

    /// The status compare-and-set, also comparing the total when given.
    async fn set_status(
        &self,
        id: OrderId,
        from: OrderStatus,
        to: OrderStatus,
        total: Option<Money>,
        at: Timestamp,
        events: &[Event],
    ) -> Result<Order> {
        let key = id.to_string();
        let patch = to_json(&StatusPatch { status: to, updated_at: at })?;
        let events = EventRows::new(events)?;
        let total_json = total.as_ref().map(to_json).transpose()?;
        let rows = self
            .store
            .write_rows(|| {
                let query = match &total_json {
                    Some(total) => sqlx::query(SET_STATUS_WITH_TOTAL).bind(total),
                    None => sqlx::query(SET_STATUS),
                };
                events.bind(query.bind(&key).bind(from.as_str()).bind(to.as_str()).bind(&patch))
            })
            .await?;
        if let Some(row) = rows.first() {
            return from_json(row.get::<&str, _>(0));
        }
        // Nothing moved: say why (gone, another total, or in another status by now).
        let row = sqlx::query(GET)
            .bind(&key)
            .fetch_optional(self.store.pool())
            .await
            .map_err(db_err)?
            .ok_or_else(|| Error::not_found("order"))?;
        Err(unmoved(&from_json(row.get::<&str, _>(0))?, from, to, total))
    }
}

/// Why a compare-and-set from `from` (and `total`, if given) to `to` left
/// `current` where it was: another total, or another status by now.
fn unmoved(current: &Order, from: OrderStatus, to: OrderStatus, total: Option<Money>) -> Error {
    match total.map(|total| check_total(current, from, total)) {
        Some(Err(refused)) => refused,
        _ => stale_status(current.status, to),
    }
}

#[async_trait]
impl OrderRepository for PgOrders {
    async fn insert(&self, order: &Order, events: &[Event]) -> Result<()> {
        self.store
            .traced("INSERT orders", "INSERT", "orders", async {
                let (id, buyer, status) = (order.id.to_string(), order.buyer_id.to_string(), order.status.as_str());
                let (created_at, doc) = (ts(order.created_at)?, to_json(order)?);
                let events = EventRows::new(events)?;
                self.store
                    .write_rows(|| {
                        events.bind(sqlx::query(INSERT).bind(&id).bind(&buyer).bind(status).bind(created_at).bind(&doc))
                    })
                    .await?;
                Ok(())
            })
            .await
    }

    async fn get(&self, id: OrderId) -> Result<Option<Order>> {
        self.store
            .run(async {
                let row =
                    sqlx::query(GET).bind(id.to_string()).fetch_optional(self.store.pool()).await.map_err(db_err)?;
                row.map(|r| from_json(r.get::<&str, _>(0))).transpose()
            })
            .await
    }

    async fn list_for_buyer(&self, buyer: UserId, page: u32, limit: u32) -> Result<(Vec<Order>, u64)> {
        self.store
            .run(async {
                let buyer = buyer.to_string();
                let offset = int(u64::from(page.saturating_sub(1)) * u64::from(limit))?;
                let total: i64 = sqlx::query_scalar(COUNT_FOR_BUYER)
                    .bind(&buyer)
                    .fetch_one(self.store.pool())
                    .await
                    .map_err(db_err)?;
                let rows = sqlx::query(LIST_FOR_BUYER)
                    .bind(&buyer)
                    .bind(i64::from(limit))
                    .bind(offset)
                    .fetch_all(self.store.pool())
                    .await
                    .map_err(db_err)?;
                let orders = rows.iter().map(|r| from_json(r.get::<&str, _>(0))).collect::<Result<_>>()?;
                Ok((orders, uint(total)?))
            })
            .await
    }

    async fn transition(
        &self,
        id: OrderId,
        from: OrderStatus,
        to: OrderStatus,
        at: Timestamp,
        events: &[Event],
    ) -> Result<Order> {
        self.store.run(self.set_status(id, from, to, None, at, events)).await
    }

    async fn transition_with_total(
        &self,
        id: OrderId,
        from: OrderStatus,
        to: OrderStatus,
        total: Money,
        at: Timestamp,
        events: &[Event],
    ) -> Result<Order> {
        self.store.run(self.set_status(id, from, to, Some(total), at, events)).await
    }

    async fn transition_all(
        &self,
        from: OrderStatus,
        to: OrderStatus,
        at: Timestamp,
        changes: &[StatusChange],
    ) -> Result<Vec<Result<Order>>> {
        check_distinct(changes)?;
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        self.store
            .run(async {
                let ids: Vec<String> = changes.iter().map(|c| c.id.to_string()).collect();
                let totals =
                    changes.iter().map(|c| c.total.as_ref().map(to_json).transpose()).collect::<Result<Vec<_>>>()?;
                let patch = to_json(&StatusPatch { status: to, updated_at: at })?;
                let events = EventRows::owned(ids.iter().cloned().zip(changes.iter().map(|c| c.events.as_slice())))?;
                let rows = self
                    .store
                    .write_rows(|| {
                        events.bind(
                            sqlx::query(SET_STATUSES)
                                .bind(from.as_str())
                                .bind(to.as_str())
                                .bind(&patch)
                                .bind(ids.as_slice())
                                .bind(totals.as_slice()),
                        )
                    })
                    .await?;
                let mut moved = HashMap::with_capacity(rows.len());
                for row in &rows {
                    moved.insert(row.get::<String, _>(0), from_json::<Order>(row.get::<&str, _>(1))?);
                }
                // Say why the others did not move, from one read of them all.
                let mut current = HashMap::new();
                if moved.len() < changes.len() {
                    let stale: Vec<&String> = ids.iter().filter(|id| !moved.contains_key(*id)).collect();
                    let rows = sqlx::query(GET_MANY)
                        .bind(stale.as_slice())
                        .fetch_all(self.store.pool())
                        .await
                        .map_err(db_err)?;
                    for row in &rows {
                        current.insert(row.get::<String, _>(0), from_json::<Order>(row.get::<&str, _>(1))?);
                    }
                }
                Ok(changes
                    .iter()
                    .zip(&ids)
                    .map(|(change, id)| {
                        if let Some(order) = moved.remove(id) {
                            return Ok(order);
                        }
                        let order = current.get(id).ok_or_else(|| Error::not_found("order"))?;
                        Err(unmoved(order, from, to, change.total))
                    })
                    .collect())
            })
            .await
    }
}
