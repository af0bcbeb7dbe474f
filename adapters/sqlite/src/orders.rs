//! Orders ([`OrderRepository`]) with a compare-and-set status transition.

use async_trait::async_trait;
use bazaar_core::clock::Timestamp;
use bazaar_core::events::Event;
use bazaar_core::ids::{OrderId, UserId};
use bazaar_core::orders::{Order, OrderRepository, OrderStatus, stale_status};
use bazaar_core::{Error, Result};
use sqlx::Row;

use crate::codec::{db_err, from_json, int, to_json, ts, uint};
use crate::outbox::append;
use crate::store::{SqliteStore, WriteTx};

pub(crate) const INSERT: &str =
    "INSERT INTO orders (id, buyer_id, status, created_at, doc) VALUES (?1, ?2, ?3, ?4, ?5)";
pub(crate) const GET: &str = "SELECT doc FROM orders WHERE id = ?1";
pub(crate) const COUNT_FOR_BUYER: &str = "SELECT COUNT(*) FROM orders WHERE buyer_id = ?1";
pub(crate) const LIST_FOR_BUYER: &str =
    "SELECT doc FROM orders WHERE buyer_id = ?1 ORDER BY created_at DESC, id DESC LIMIT ?2 OFFSET ?3";
// The status guard makes the write a compare-and-set even without the
// write lock; under `BEGIN IMMEDIATE` it also can never lose a race.
pub(crate) const SET_STATUS: &str = "UPDATE orders SET status = ?3, doc = ?4 WHERE id = ?1 AND status = ?2";

/// Inserts `order` and appends its `events` inside `tx`.
pub(crate) async fn insert_in(tx: &mut WriteTx, order: &Order, events: &[Event]) -> Result<()> {
    sqlx::query(INSERT)
        .bind(order.id.to_string())
        .bind(order.buyer_id.to_string())
        .bind(order.status.as_str())
        .bind(ts(order.created_at)?)
        .bind(to_json(order)?)
        .execute(&mut **tx)
        .await
        .map_err(db_err)?;
    append(tx, events).await
}

/// Orders in SQLite.
#[derive(Debug, Clone)]
pub struct SqliteOrders {
    store: SqliteStore,
}

impl SqliteOrders {
    pub(crate) fn new(store: SqliteStore) -> Self {
        Self { store }
    }
}

#[async_trait]
impl OrderRepository for SqliteOrders {
    async fn insert(&self, order: &Order, events: &[Event]) -> Result<()> {
        let mut tx = self.store.write().await?;
        insert_in(&mut tx, order, events).await?;
        self.store.commit(tx).await
    }

    async fn get(&self, id: OrderId) -> Result<Option<Order>> {
        let row = sqlx::query(GET).bind(id.to_string()).fetch_optional(self.store.pool()).await.map_err(db_err)?;
        row.map(|r| from_json(r.get::<&str, _>(0))).transpose()
    }

    async fn list_for_buyer(&self, buyer: UserId, page: u32, limit: u32) -> Result<(Vec<Order>, u64)> {
        let buyer = buyer.to_string();
        let offset = int(u64::from(page.saturating_sub(1)) * u64::from(limit))?;
        let total: i64 =
            sqlx::query_scalar(COUNT_FOR_BUYER).bind(&buyer).fetch_one(self.store.pool()).await.map_err(db_err)?;
        let rows = sqlx::query(LIST_FOR_BUYER)
            .bind(&buyer)
            .bind(i64::from(limit))
            .bind(offset)
            .fetch_all(self.store.pool())
            .await
            .map_err(db_err)?;
        let orders = rows.iter().map(|r| from_json(r.get::<&str, _>(0))).collect::<Result<_>>()?;
        Ok((orders, uint(total)?))
    }

    async fn transition(
        &self,
        id: OrderId,
        from: OrderStatus,
        to: OrderStatus,
        at: Timestamp,
        events: &[Event],
    ) -> Result<Order> {
        let mut tx = self.store.write().await?;
        let row = sqlx::query(GET)
            .bind(id.to_string())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?
            .ok_or_else(|| Error::not_found("order"))?;
        let mut order: Order = from_json(row.get::<&str, _>(0))?;
        if order.status != from {
            return Err(stale_status(order.status, to));
        }
        order.status = to;
        order.updated_at = at;
        let done = sqlx::query(SET_STATUS)
            .bind(id.to_string())
            .bind(from.as_str())
            .bind(to.as_str())
            .bind(to_json(&order)?)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if done.rows_affected() != 1 {
            return Err(Error::internal("transitioning an order", "status changed under the write lock"));
        }
        append(&mut tx, events).await?;
        self.store.commit(tx).await?;
        Ok(order)
    }
}
