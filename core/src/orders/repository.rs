//! The order store port.

use async_trait::async_trait;

use super::{Order, OrderStatus};
use crate::clock::Timestamp;
use crate::error::Result;
use crate::events::Event;
use crate::ids::{OrderId, UserId};
use crate::money::Money;

/// Where orders live.
///
/// Every mutating method commits the change and its `events` (to the
/// outbox) atomically, or neither.
///
/// # Example
/// ```
/// use bazaar_core::clock::{Clock, ManualClock};
/// use bazaar_core::ids::{OrderId, UserId};
/// use bazaar_core::money::{Currency, Money};
/// use bazaar_core::orders::{Order, OrderRepository, OrderStatus};
/// use bazaar_memory::{MemoryOrders, MemoryOutbox};
/// # futures::executor::block_on(async {
/// let repo = MemoryOrders::new(MemoryOutbox::new());
/// let now = ManualClock::at_epoch_secs(1_700_000_000).now();
/// let order = Order {
///     id: OrderId::new(), buyer_id: UserId::new(), lines: vec![],
///     total: Money::new(0, Currency::USD), status: OrderStatus::Paid,
///     created_at: now, updated_at: now,
/// };
/// repo.insert(&order, &[]).await.unwrap();
/// let done = repo.transition(order.id, OrderStatus::Paid, OrderStatus::Fulfilled, now, &[]).await.unwrap();
/// assert_eq!(done.status, OrderStatus::Fulfilled);
/// // The compare-and-set fails once the status has moved on.
/// assert!(repo.transition(order.id, OrderStatus::Paid, OrderStatus::Refunded, now, &[]).await.is_err());
/// # });
/// ```
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait OrderRepository: Send + Sync {
    /// Stores a new order with its events.
    ///
    /// MUST return [`crate::Error::Conflict`] and change nothing when an
    /// order with this id exists.
    async fn insert(&self, order: &Order, events: &[Event]) -> Result<()>;

    /// The order with this id, if any.
    async fn get(&self, id: OrderId) -> Result<Option<Order>>;

    /// One page (1-based `page`, `limit` per page) of `buyer`'s orders,
    /// newest first (`created_at` then id, descending), with the total count
    /// of the buyer's orders. A page past the end is empty.
    async fn list_for_buyer(&self, buyer: UserId, page: u32, limit: u32) -> Result<(Vec<Order>, u64)>;

    /// Compare-and-set on the status: moves the order from `from` to `to`,
    /// sets `updated_at = at`, commits `events`, and returns the stored order.
    ///
    /// Does not judge whether `from → to` is a legal transition (the
    /// service does, with [`super::transition`]); it only guarantees that of
    /// concurrent callers with the same `from` exactly one wins.
    ///
    /// MUST return [`crate::Error::NotFound`] (entity `order`) when the
    /// order does not exist, and [`crate::Error::InvalidTransition`]
    /// (entity `order`, `from` = the *current* status, action
    /// `transition_to_<to>`) when the current status is not `from`; both
    /// change nothing and commit no events.
    async fn transition(
        &self,
        id: OrderId,
        from: OrderStatus,
        to: OrderStatus,
        at: Timestamp,
        events: &[Event],
    ) -> Result<Order>;

    /// [`Self::transition`] that also requires the order's total to be
    /// `total`, as a payment's does: the order's total decides first, so
    /// MUST return [`crate::Error::Integrity`] and change nothing when the
    /// order is in status `from` but its total is another; otherwise as
    /// `transition`.
    ///
    /// A total never changes once the order is placed, so the default reads
    /// the order, compares, then calls `transition`; a store that can
    /// compare inside the compare-and-set overrides it to save the read.
    async fn transition_with_total(
        &self,
        id: OrderId,
        from: OrderStatus,
        to: OrderStatus,
        total: Money,
        at: Timestamp,
        events: &[Event],
    ) -> Result<Order> {
        let order = self.get(id).await?.ok_or_else(|| crate::Error::not_found("order"))?;
        check_total(&order, from, total)?;
        self.transition(id, from, to, at, events).await
    }

    /// Many compare-and-sets from `from` to `to` at once, each answered as
    /// [`Self::transition`] (or [`Self::transition_with_total`] for a change
    /// with a `total`) would answer it alone, in the order given: a change
    /// that moves its order commits its own events, one that does not
    /// changes nothing and commits none, whatever the others do.
    ///
    /// MUST return [`crate::Error::Validation`] on `changes`, changing
    /// nothing, when it names an order more than once.
    ///
    /// The default makes the changes one by one; a store that can make them
    /// in one round trip overrides it (a worker moves a batch of orders per
    /// event batch).
    async fn transition_all(
        &self,
        from: OrderStatus,
        to: OrderStatus,
        at: Timestamp,
        changes: &[StatusChange],
    ) -> Result<Vec<Result<Order>>> {
        check_distinct(changes)?;
        let mut out = Vec::with_capacity(changes.len());
        for c in changes {
            out.push(match c.total {
                Some(total) => self.transition_with_total(c.id, from, to, total, at, &c.events).await,
                None => self.transition(c.id, from, to, at, &c.events).await,
            });
        }
        Ok(out)
    }
}

/// One order's part in [`OrderRepository::transition_all`].
#[derive(Debug, Clone, PartialEq)]
pub struct StatusChange {
    /// The order to move.
    pub id: OrderId,
    /// The total the order must have, as a payment's amount (see
    /// [`OrderRepository::transition_with_total`]); `None` compares only the status.
    pub total: Option<Money>,
    /// Committed with the change, and only if the order moves.
    pub events: Vec<Event>,
}

/// The distinct-orders rule of [`OrderRepository::transition_all`], shared
/// so every adapter judges and words it the same.
///
/// # Errors
/// [`crate::Error::Validation`] on `changes` when two name one order.
pub fn check_distinct(changes: &[StatusChange]) -> Result<()> {
    crate::batch::distinct(changes.iter().map(|c| c.id), "changes", "names an order more than once")
}

/// The total rule of [`OrderRepository::transition_with_total`]: an order in
/// status `from` whose total is not `paid` is [`crate::Error::Integrity`]
/// (an order in another status is judged by its status instead). Shared so
/// every adapter judges and words it the same.
///
/// # Errors
/// [`crate::Error::Integrity`] as above.
pub fn check_total(order: &Order, from: OrderStatus, paid: Money) -> Result<()> {
    if order.status == from && order.total != paid {
        return Err(crate::Error::Integrity(format!(
            "payment of {paid} for order {} totalling {}",
            order.id, order.total
        )));
    }
    Ok(())
}

/// The error [`OrderRepository::transition`] returns when the compare fails;
/// shared so every adapter words it the same.
pub fn stale_status(current: OrderStatus, to: OrderStatus) -> crate::Error {
    crate::Error::transition("order", current, format!("transition_to_{to}"))
}
