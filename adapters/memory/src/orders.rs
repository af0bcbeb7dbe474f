//! In-memory [`OrderRepository`].

use bazaar_core::ConflictReason;
use std::collections::HashMap;

use async_trait::async_trait;
use bazaar_core::clock::Timestamp;
use bazaar_core::error::{Error, Result};
use bazaar_core::events::Event;
use bazaar_core::ids::{OrderId, UserId};
use bazaar_core::orders::{Order, OrderRepository, OrderStatus, stale_status};
use parking_lot::Mutex;

use crate::MemoryOutbox;

/// Orders in a map behind one lock; the status compare-and-set and the
/// outbox append happen under it.
#[derive(Debug)]
pub struct MemoryOrders {
    table: Mutex<HashMap<OrderId, Order>>,
    outbox: MemoryOutbox,
}

impl MemoryOrders {
    /// An empty store committing events to `outbox`.
    pub fn new(outbox: MemoryOutbox) -> Self {
        Self { table: Mutex::new(HashMap::new()), outbox }
    }
}

#[async_trait]
impl OrderRepository for MemoryOrders {
    async fn insert(&self, order: &Order, events: &[Event]) -> Result<()> {
        let mut table = self.table.lock();
        if table.contains_key(&order.id) {
            return Err(Error::conflict(ConflictReason::Duplicate, format!("order {} already exists", order.id)));
        }
        table.insert(order.id, order.clone());
        self.outbox.append(events);
        Ok(())
    }

    async fn get(&self, id: OrderId) -> Result<Option<Order>> {
        Ok(self.table.lock().get(&id).cloned())
    }

    async fn list_for_buyer(&self, buyer: UserId, page: u32, limit: u32) -> Result<(Vec<Order>, u64)> {
        let mut mine: Vec<Order> = self.table.lock().values().filter(|o| o.buyer_id == buyer).cloned().collect();
        mine.sort_by_key(|o| std::cmp::Reverse((o.created_at, o.id)));
        let total = mine.len() as u64;
        let skip = (page.max(1) as usize - 1).saturating_mul(limit as usize);
        Ok((mine.into_iter().skip(skip).take(limit as usize).collect(), total))
    }

    async fn transition(
        &self,
        id: OrderId,
        from: OrderStatus,
        to: OrderStatus,
        at: Timestamp,
        events: &[Event],
    ) -> Result<Order> {
        let mut table = self.table.lock();
        let order = table.get_mut(&id).ok_or_else(|| Error::not_found("order"))?;
        if order.status != from {
            return Err(stale_status(order.status, to));
        }
        order.status = to;
        order.updated_at = at;
        let stored = order.clone();
        self.outbox.append(events);
        Ok(stored)
    }
}
