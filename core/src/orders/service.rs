//! The order service: place (idempotently), read, cancel, and the steps the
//! payment and licensing handlers drive (mark paid, mark fulfilled), plus
//! admin refunds.
//!
//! Each step is one compare-and-set on the order's status, so concurrent or
//! repeated deliveries of the same event change the order once and emit its
//! event once; the loser re-reads and answers from the current state.

use crate::error::ConflictReason;
use std::collections::HashSet;
use std::sync::Arc;

use super::checkout::{Checkout, SeparateCheckout};
use super::checkout::{KeyAnswer, Placement};
use super::idempotency::{
    IdempotencyBegin, IdempotencyClaim, IdempotencyKey, IdempotencyStore, IdempotencyTerms, StoredResponse,
    request_hash,
};
use super::pricing::price_lines;
use super::repository::{OrderRepository, StatusChange, check_total};
use super::state::{OrderEvent, OrderStatus, transition};
use super::{Order, PlaceOrder};
use crate::auth::{Action, Actor, Resource, authorize};
use crate::batch::{answer_rest, one_answer_each};
use crate::catalog::{Product, ProductRepository};
use crate::clock::{Clock, Timestamp};
use crate::error::{Error, FieldError, Result};
use crate::events::{Event, OrderFulfilled, OrderPlaced, OrderRefunded, PaymentSucceeded};
use crate::ids::{LicenseId, OrderId, ProductId};
use crate::licensing::{LicenseRepository, LicenseStatus};
use crate::money::{Currency, FeeRate};
use crate::page::{Page, PageRequest};
use crate::payments::{PaymentIntent, PaymentService};

/// How often a step that lost a compare-and-set re-reads and retries.
/// Statuses only move forward, so two rounds always settle it; three is slack.
const MAX_ROUNDS: usize = 3;

/// Tunables of the order service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderConfig {
    /// The platform's commission on every line (default 20 %).
    pub fee_rate: FeeRate,
    /// The currency of an order whose lines are all free (default USD).
    pub default_currency: Currency,
    /// How long an idempotency key is remembered (default 24 h, Stripe's)
    /// and how long a request holds one before a retry may take it over
    /// (default 60 s).
    pub idempotency: IdempotencyTerms,
}

impl Default for OrderConfig {
    fn default() -> Self {
        Self { fee_rate: FeeRate::DEFAULT, default_currency: Currency::USD, idempotency: IdempotencyTerms::default() }
    }
}

/// An order just placed, with its payment intent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    /// The order.
    pub order: Order,
    /// Its payment intent; `None` when creating one failed (paying the
    /// order creates it then).
    pub payment: Option<PaymentIntent>,
}

/// The ports [`OrderService`] runs on.
#[derive(Clone)]
pub struct OrderDeps {
    /// Orders.
    pub orders: Arc<dyn OrderRepository>,
    /// Products, to price and check what is ordered.
    pub products: Arc<dyn ProductRepository>,
    /// Licenses, to refuse buying what the buyer holds.
    pub licenses: Arc<dyn LicenseRepository>,
    /// Payment intents and the provider.
    pub payments: Arc<PaymentService>,
    /// Orders with their intents, for placing and paying (a
    /// [`SeparateCheckout`] where the store has nothing better).
    pub checkout: Arc<dyn Checkout>,
    /// `Idempotency-Key` records.
    pub idempotency: Arc<dyn IdempotencyStore>,
    /// Time.
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for OrderDeps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrderDeps").finish_non_exhaustive()
    }
}

impl OrderDeps {
    /// The ports with a [`SeparateCheckout`] of `orders` and the payment
    /// service's intent store, for stores without a better one.
    pub fn separate(
        orders: Arc<dyn OrderRepository>,
        products: Arc<dyn ProductRepository>,
        licenses: Arc<dyn LicenseRepository>,
        payments: Arc<PaymentService>,
        idempotency: Arc<dyn IdempotencyStore>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let checkout = Arc::new(SeparateCheckout::new(orders.clone(), payments.repository(), idempotency.clone()));
        Self { orders, products, licenses, payments, checkout, idempotency, clock }
    }
}

/// Orders and their life cycle.
pub struct OrderService {
    orders: Arc<dyn OrderRepository>,
    products: Arc<dyn ProductRepository>,
    licenses: Arc<dyn LicenseRepository>,
    payments: Arc<PaymentService>,
    checkout: Arc<dyn Checkout>,
    idempotency: Arc<dyn IdempotencyStore>,
    clock: Arc<dyn Clock>,
    config: OrderConfig,
}

impl std::fmt::Debug for OrderService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrderService").field("config", &self.config).finish_non_exhaustive()
    }
}

impl OrderService {
    /// A service over `deps` with `config`.
    pub fn new(deps: OrderDeps, config: OrderConfig) -> Self {
        let OrderDeps { orders, products, licenses, payments, checkout, idempotency, clock } = deps;
        Self { orders, products, licenses, payments, checkout, idempotency, clock, config }
    }

    /// The configuration in use.
    pub fn config(&self) -> &OrderConfig {
        &self.config
    }

    /// The actor buys the requested products.
    ///
    /// With an `idempotency_key` (scoped to the buyer): the same key and
    /// request again return the first order (as it was when placed); the
    /// same key with another request is [`Error::IdempotencyMismatch`]; a
    /// key whose first request is still running is [`Error::InFlight`]. A
    /// failed request frees its key for a retry.
    ///
    /// A paid order gets a payment intent (`requires_payment_method`); if
    /// creating it fails the order is still placed and paying creates it.
    /// A free order is placed as `paid` with `order.placed` and a zero
    /// `payment.succeeded`, so the payment handler fulfils it.
    ///
    /// # Errors
    /// [`Error::Validation`] on `idempotency_key`, `items` (1 to 20),
    /// `items[i].product_id` (repeated, unknown, not purchasable, the
    /// actor's own, another currency); [`Error::Conflict`] when the buyer
    /// already holds an active license for one of the products; the
    /// idempotency errors above; store errors.
    pub async fn place(&self, actor: &Actor, request: PlaceOrder, idempotency_key: Option<&str>) -> Result<Order> {
        self.place_with_payment(actor, request, idempotency_key).await.map(|placed| placed.order)
    }

    /// [`Self::place`], also returning the order's payment intent as placing
    /// left it, so a caller showing both needs no second look-up. A replayed
    /// key's intent is read as it is now.
    ///
    /// # Errors
    /// As [`Self::place`]; for a replay also the intent look-up's store errors.
    pub async fn place_with_payment(
        &self,
        actor: &Actor,
        request: PlaceOrder,
        idempotency_key: Option<&str>,
    ) -> Result<Placed> {
        authorize(actor, Action::PlaceOrder, &Resource::Marketplace)?;
        let Some(key) = idempotency_key else {
            return self.place_once(actor, &request, None).await;
        };
        let key = IdempotencyKey::parse(key)?;
        let claim = IdempotencyClaim::new(actor.user_id.to_string(), key.as_str());
        let hash = request_hash(&request)?;
        let now = self.clock.now();
        match self.idempotency.begin(&claim, &hash, now, self.config.idempotency).await? {
            IdempotencyBegin::Started => {}
            IdempotencyBegin::Replay(first) => {
                let order: Order =
                    serde_json::from_value(first.body).map_err(|e| Error::internal("replaying a placed order", e))?;
                let payment = self.payments.find_for_order(order.id).await?;
                return Ok(Placed { order, payment });
            }
            IdempotencyBegin::Mismatch => return Err(Error::IdempotencyMismatch),
            IdempotencyBegin::InFlight => return Err(Error::InFlight),
        }
        // The key's answer commits with the order (`Checkout::place`), so
        // from here either both exist or neither: a request that dies before
        // the commit leaves only its claim, which a retry takes over once
        // the lease runs out.
        let placed = self.place_once(actor, &request, Some(claim.clone())).await;
        if placed.is_err()
            && let Err(abandon) = self.idempotency.abandon(&claim).await
        {
            tracing::warn!(error = %abandon, "could not free an idempotency key; its lease frees it");
        }
        placed
    }

    async fn place_once(&self, actor: &Actor, request: &PlaceOrder, claim: Option<IdempotencyClaim>) -> Result<Placed> {
        request.validate()?;
        let now = self.clock.now();
        let products = self.purchasable_products(actor, request).await?;
        self.refuse_already_licensed(actor, &products).await?;
        let (lines, total) = price_lines(&products, self.config.fee_rate, self.config.default_currency)?;
        let free = total.is_zero();
        let order = Order {
            id: OrderId::new(),
            buyer_id: actor.user_id,
            lines,
            total,
            status: if free { OrderStatus::Paid } else { OrderStatus::PendingPayment },
            created_at: now,
            updated_at: now,
        };
        let answer = match claim {
            None => None,
            Some(claim) => {
                let body = serde_json::to_value(&order).map_err(|e| Error::internal("storing a placed order", e))?;
                Some(KeyAnswer { claim, response: StoredResponse { body } })
            }
        };
        let placed = Event::new(&OrderPlaced { order_id: order.id, buyer_id: order.buyer_id, total }, now)
            .correlated(Some(order.id.as_uuid()));
        if free {
            // The intent first: if the order insert then fails, an orphan
            // zero intent is harmless, while an event naming a missing
            // intent would not be.
            let intent = self.payments.record_free_order(order.id, order.total).await?;
            let paid = PaymentSucceeded { order_id: order.id, payment_intent_id: intent.id, amount: total };
            let paid = Event::new(&paid, now).caused_by(&placed);
            let placement = Placement { order, events: vec![placed, paid], intent: None, answer };
            self.checkout.place(&placement).await?;
            Ok(Placed { order: placement.order, payment: Some(intent) })
        } else {
            // The intent is opened at the provider first so the order and
            // the intent can be stored together. Should storing the order
            // then fail, the provider keeps an intent nobody pays, which is
            // harmless; an order without an intent gets one when paid.
            let intent = match self.payments.open_intent(order.id, order.total).await {
                Ok(intent) => Some(intent),
                Err(e) => {
                    tracing::warn!(order = %order.id, error = %e, "no payment intent yet; paying will create it");
                    None
                }
            };
            let placement = Placement { order, events: vec![placed], intent, answer };
            let payment = self.checkout.place(&placement).await?;
            Ok(Placed { order: placement.order, payment })
        }
    }

    async fn purchasable_products(&self, actor: &Actor, request: &PlaceOrder) -> Result<Vec<Product>> {
        let mut products = Vec::with_capacity(request.items.len());
        let mut errors = Vec::new();
        for (i, item) in request.items.iter().enumerate() {
            let field = format!("items[{i}].product_id");
            match self.products.get(item.product_id).await? {
                None => errors.push(FieldError::new(field, "no such product")),
                Some(p) if !p.is_purchasable() => errors.push(FieldError::new(field, "is not available for purchase")),
                Some(p) if p.vendor_id == actor.user_id => errors.push(FieldError::new(field, "is your own product")),
                Some(p) => products.push(p),
            }
        }
        if errors.is_empty() { Ok(products) } else { Err(Error::Validation(errors)) }
    }

    async fn refuse_already_licensed(&self, actor: &Actor, products: &[Product]) -> Result<()> {
        let now = self.clock.now();
        let wanted: Vec<ProductId> = products.iter().map(|p| p.id).collect();
        let held: HashSet<ProductId> = self
            .licenses
            .list_for_buyer_products(actor.user_id, &wanted)
            .await?
            .into_iter()
            .filter(|l| l.status(now) == LicenseStatus::Active)
            .map(|l| l.product_id)
            .collect();
        match products.iter().enumerate().find(|(_, p)| held.contains(&p.id)) {
            Some((i, p)) => Err(Error::conflict(
                ConflictReason::AlreadyLicensed,
                format!("already licensed: items[{i}].product_id {} is already yours", p.id),
            )),
            None => Ok(()),
        }
    }

    /// An order, for its buyer or an admin.
    ///
    /// # Errors
    /// [`Error::NotFound`]; [`Error::Forbidden`] for anyone else.
    pub async fn get(&self, actor: &Actor, id: OrderId) -> Result<Order> {
        let order = self.load(id).await?;
        authorize(actor, Action::ViewOrder, &Resource::Order { buyer_id: order.buyer_id })?;
        Ok(order)
    }

    /// The actor's own orders, newest first.
    ///
    /// # Errors
    /// Store errors.
    pub async fn list_mine(&self, actor: &Actor, page: PageRequest) -> Result<Page<Order>> {
        let (items, total) = self.orders.list_for_buyer(actor.user_id, page.page(), page.limit()).await?;
        Ok(Page { items, total, page: page.page(), limit: page.limit() })
    }

    /// The order's payment intent, for its buyer or an admin.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown order or one without an intent;
    /// [`Error::Forbidden`] for anyone else.
    pub async fn payment(&self, actor: &Actor, order_id: OrderId) -> Result<PaymentIntent> {
        let order = self.get(actor, order_id).await?;
        self.payments.find_for_order(order.id).await?.ok_or_else(|| Error::not_found("payment_intent"))
    }

    /// The buyer pays for a pending order with `payment_method`: the order
    /// and its intent are read in one go, the intent is created if placing
    /// could not, and [`PaymentService::confirm`] charges it.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown order; [`Error::Forbidden`] unless
    /// the actor is the buyer; [`Error::InvalidTransition`] when the order is
    /// not pending payment or the intent cannot be confirmed (succeeded,
    /// canceled, processing) — the provider is not called;
    /// [`Error::Validation`] on `payment_method`; the errors of
    /// [`PaymentService::confirm`].
    pub async fn pay(&self, actor: &Actor, order_id: OrderId, payment_method: &str) -> Result<PaymentIntent> {
        let (order, intent) =
            self.checkout.order_with_intent(order_id).await?.ok_or_else(|| Error::not_found("order"))?;
        authorize(actor, Action::PayOrder, &Resource::Order { buyer_id: order.buyer_id })?;
        if order.status != OrderStatus::PendingPayment {
            return Err(Error::transition("order", order.status, "pay"));
        }
        if payment_method.is_empty()
            || payment_method.len() > 255
            || !payment_method.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(Error::invalid("payment_method", "must be 1 to 255 visible ASCII characters"));
        }
        let intent = match intent {
            Some(intent) => intent,
            None => self.payments.create_for_placed_order(order.id, order.total).await?,
        };
        self.payments.confirm(intent, payment_method).await
    }

    /// The buyer cancels an order that is still pending payment (its
    /// payment intent is canceled first, so it cannot be paid afterwards).
    ///
    /// # Errors
    /// [`Error::NotFound`]; [`Error::Forbidden`] unless the actor is the
    /// buyer; [`Error::InvalidTransition`] unless the order is pending
    /// payment (or its intent already succeeded).
    pub async fn cancel(&self, actor: &Actor, id: OrderId) -> Result<Order> {
        let order = self.load(id).await?;
        // Cancelling is the buyer's own act on the order, like paying it.
        authorize(actor, Action::PayOrder, &Resource::Order { buyer_id: order.buyer_id })?;
        let to = transition(order.status, OrderEvent::Cancel)?;
        self.payments.cancel_for_order(order.id).await?;
        self.orders.transition(order.id, order.status, to, self.clock.now(), &[]).await
    }

    /// Marks an order paid because of `cause` (its `payment.succeeded`).
    /// Idempotent: an order already paid, fulfilled or refunded is returned
    /// unchanged, so a redelivered event is harmless. Emits no event.
    ///
    /// # Errors
    /// [`Error::NotFound`]; [`Error::Validation`] on `cause` when it is a
    /// `payment.succeeded` for another order; [`Error::Integrity`] when its
    /// amount is not the order's total; [`Error::InvalidTransition`] for a
    /// canceled order.
    pub async fn mark_paid(&self, order_id: OrderId, cause: &Event) -> Result<Order> {
        let payment = cause.decode::<PaymentSucceeded>().ok();
        if payment.as_ref().is_some_and(|p| p.order_id != order_id) {
            return Err(Error::invalid("cause", "is a payment for another order"));
        }
        // The first delivery of a payment finds the order pending: try that
        // compare-and-set (with the payment's amount as the total) before
        // reading anything. Any other status is judged after a read below.
        if let Some(p) = &payment {
            let from = OrderStatus::PendingPayment;
            let to = transition(from, OrderEvent::PaymentSucceeded)?;
            match self.orders.transition_with_total(order_id, from, to, p.amount, self.clock.now(), &[]).await {
                Err(Error::InvalidTransition { .. }) => {}
                other => return other,
            }
        }
        self.settle_paid(order_id, payment.as_ref()).await
    }

    /// [`Self::mark_paid`] for many `(order, cause)` pairs, answered in the
    /// order given, each as `mark_paid` would answer it alone.
    ///
    /// The first deliveries of payments (orders pending payment) move in one
    /// batch compare-and-set; only the rest (redeliveries, a repeated order,
    /// a cause that is no payment of its order) cost reads of their own.
    ///
    /// # Errors
    /// Per pair as [`Self::mark_paid`]; the whole call fails only when the
    /// batch compare-and-set does (a store error).
    pub async fn mark_paid_all(&self, items: &[(OrderId, &Event)]) -> Result<Vec<Result<Order>>> {
        let from = OrderStatus::PendingPayment;
        let to = transition(from, OrderEvent::PaymentSucceeded)?;
        let mut payments = vec![None; items.len()];
        let (mut changes, mut batched) = (Vec::new(), Vec::new());
        let mut seen = HashSet::with_capacity(items.len());
        for (i, (order_id, cause)) in items.iter().enumerate() {
            if let Ok(p) = cause.decode::<PaymentSucceeded>()
                && p.order_id == *order_id
                && seen.insert(*order_id)
            {
                changes.push(StatusChange { id: *order_id, total: Some(p.amount), events: Vec::new() });
                batched.push(i);
                payments[i] = Some(p);
            }
        }
        let mut answers: Vec<_> = items.iter().map(|_| None).collect();
        self.move_batch(from, to, self.clock.now(), &changes, &batched, &mut answers).await?;
        Ok(answer_rest(answers, |i| {
            let (order_id, cause) = items[i];
            let payment = payments[i].take();
            async move {
                // A batched order that did not move is judged from a read;
                // anything else takes the whole single path.
                match payment {
                    Some(p) => self.settle_paid(order_id, Some(&p)).await,
                    None => self.mark_paid(order_id, cause).await,
                }
            }
        })
        .await)
    }

    /// Moves the orders of `changes` from `from` to `to` with one batch
    /// compare-and-set; `batched[k]` is the item of `changes[k]`. Every
    /// answer goes into `answers` but a lost compare, which stays `None`
    /// for the single path to judge from a read.
    async fn move_batch(
        &self,
        from: OrderStatus,
        to: OrderStatus,
        at: Timestamp,
        changes: &[StatusChange],
        batched: &[usize],
        answers: &mut [Option<Result<Order>>],
    ) -> Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        let moved = self.orders.transition_all(from, to, at, changes).await?;
        for (&i, answer) in batched.iter().zip(one_answer_each(moved, changes.len(), "moving a batch of orders")?) {
            if !matches!(answer, Err(Error::InvalidTransition { .. })) {
                answers[i] = Some(answer);
            }
        }
        Ok(())
    }

    /// The part of [`Self::mark_paid`] after the pending order's
    /// compare-and-set failed: read the order and judge from its status.
    async fn settle_paid(&self, order_id: OrderId, payment: Option<&PaymentSucceeded>) -> Result<Order> {
        let mut order = self.load(order_id).await?;
        for _ in 0..MAX_ROUNDS {
            match order.status {
                OrderStatus::Paid | OrderStatus::Fulfilled | OrderStatus::Refunded => {
                    return Ok(order);
                }
                status => {
                    let to = transition(status, OrderEvent::PaymentSucceeded)?;
                    if let Some(p) = &payment {
                        check_total(&order, status, p.amount)?;
                    }
                    match self.orders.transition(order.id, status, to, self.clock.now(), &[]).await {
                        Err(Error::InvalidTransition { .. }) => order = self.load(order_id).await?,
                        other => return other,
                    }
                }
            }
        }
        Err(Error::conflict(
            ConflictReason::Contended,
            format!("order {order_id} kept changing while being marked paid"),
        ))
    }

    /// Marks a paid order fulfilled with one license per line (in line
    /// order), committing `order.fulfilled` caused by `cause`. Idempotent:
    /// an order already fulfilled (or refunded) is returned unchanged and
    /// only the caller whose compare-and-set moved it emits the event.
    ///
    /// # Errors
    /// [`Error::NotFound`]; [`Error::Validation`] on `license_ids` unless
    /// there is one per line; [`Error::InvalidTransition`] for an unpaid or
    /// canceled order.
    pub async fn mark_fulfilled(&self, order_id: OrderId, license_ids: Vec<LicenseId>, cause: &Event) -> Result<Order> {
        let order = self.load(order_id).await?;
        self.fulfil(order, license_ids, cause).await
    }

    /// [`Self::mark_fulfilled`] starting from `order` as the caller last
    /// read it (e.g. what [`Self::mark_paid`] returned), saving the
    /// look-up: the status change is a compare-and-set, so a stale `order`
    /// only costs a reload.
    ///
    /// # Errors
    /// As [`Self::mark_fulfilled`].
    pub async fn fulfil(&self, mut order: Order, license_ids: Vec<LicenseId>, cause: &Event) -> Result<Order> {
        let order_id = order.id;
        for _ in 0..MAX_ROUNDS {
            match order.status {
                OrderStatus::Fulfilled | OrderStatus::Refunded => return Ok(order),
                status => {
                    let to = transition(status, OrderEvent::Fulfil)?;
                    if license_ids.len() != order.lines.len() {
                        return Err(Error::invalid(
                            "license_ids",
                            format!("expected one per line ({}), got {}", order.lines.len(), license_ids.len()),
                        ));
                    }
                    let now = self.clock.now();
                    let fulfilled =
                        OrderFulfilled { order_id, buyer_id: order.buyer_id, license_ids: license_ids.clone() };
                    let event = Event::new(&fulfilled, now).caused_by(cause);
                    match self.orders.transition(order_id, status, to, now, &[event]).await {
                        Err(Error::InvalidTransition { .. }) => order = self.load(order_id).await?,
                        other => return other,
                    }
                }
            }
        }
        Err(Error::conflict(ConflictReason::Contended, format!("order {order_id} kept changing while being fulfilled")))
    }

    /// [`Self::fulfil`] for many `(order, license ids, cause)` triples,
    /// answered in the order given, each as `fulfil` would answer it alone.
    ///
    /// The paid orders move in one batch compare-and-set, each with its own
    /// `order.fulfilled`; only the rest (another status, a repeated order,
    /// a lost compare) cost statements of their own.
    ///
    /// # Errors
    /// Per triple as [`Self::fulfil`]; the whole call fails only when the
    /// batch compare-and-set does (a store error).
    pub async fn fulfil_all(&self, items: &[(Order, Vec<LicenseId>, &Event)]) -> Result<Vec<Result<Order>>> {
        let from = OrderStatus::Paid;
        let to = transition(from, OrderEvent::Fulfil)?;
        let now = self.clock.now();
        let mut in_batch = vec![false; items.len()];
        let (mut changes, mut batched) = (Vec::new(), Vec::new());
        let mut seen = HashSet::with_capacity(items.len());
        for (i, (order, license_ids, cause)) in items.iter().enumerate() {
            if order.status == from && license_ids.len() == order.lines.len() && seen.insert(order.id) {
                let fulfilled =
                    OrderFulfilled { order_id: order.id, buyer_id: order.buyer_id, license_ids: license_ids.clone() };
                let events = vec![Event::new(&fulfilled, now).caused_by(cause)];
                changes.push(StatusChange { id: order.id, total: None, events });
                batched.push(i);
                in_batch[i] = true;
            }
        }
        let mut answers: Vec<_> = items.iter().map(|_| None).collect();
        self.move_batch(from, to, now, &changes, &batched, &mut answers).await?;
        Ok(answer_rest(answers, |i| {
            let (order, license_ids, cause) = &items[i];
            let (order, license_ids, lost) = (order.clone(), license_ids.clone(), in_batch[i]);
            async move {
                // A lost compare: the status the caller read is stale.
                if lost {
                    self.mark_fulfilled(order.id, license_ids, cause).await
                } else {
                    self.fulfil(order, license_ids, cause).await
                }
            }
        })
        .await)
    }

    /// An admin refunds a paid or fulfilled order in full: the provider
    /// refunds what is left of the capture (key derived from the intent,
    /// hence from the order), then the order becomes `refunded` with an
    /// `order.refunded` event, on which the licensing handler revokes the
    /// licenses. Safe to retry: a refund already made is not made again.
    ///
    /// # Errors
    /// [`Error::NotFound`]; [`Error::Forbidden`] for non-admins;
    /// [`Error::InvalidTransition`] for an order that is not paid or
    /// fulfilled; provider and integrity errors from the refund.
    pub async fn refund(&self, actor: &Actor, order_id: OrderId) -> Result<Order> {
        let mut order = self.load(order_id).await?;
        authorize(actor, Action::RefundOrder, &Resource::Order { buyer_id: order.buyer_id })?;
        for _ in 0..MAX_ROUNDS {
            let to = transition(order.status, OrderEvent::Refund)?;
            if !order.total.is_zero() {
                let intent = self.payments.find_for_order(order.id).await?.ok_or_else(|| {
                    Error::Integrity(format!("order {} was paid but has no payment intent", order.id))
                })?;
                let left = intent.refundable();
                if left.minor() > 0 {
                    self.payments.refund(order.id, left).await?;
                }
            }
            let now = self.clock.now();
            let refunded = OrderRefunded { order_id, buyer_id: order.buyer_id, amount: order.total };
            let event = Event::new(&refunded, now).correlated(Some(order_id.as_uuid()));
            match self.orders.transition(order_id, order.status, to, now, &[event]).await {
                // Fulfilled meanwhile (or refunded by a concurrent admin):
                // judge again; the provider refund above is not repeated.
                Err(Error::InvalidTransition { .. }) => order = self.load(order_id).await?,
                other => return other,
            }
        }
        Err(Error::conflict(ConflictReason::Contended, format!("order {order_id} kept changing while being refunded")))
    }

    async fn load(&self, id: OrderId) -> Result<Order> {
        self.orders.get(id).await?.ok_or_else(|| Error::not_found("order"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;
    use crate::catalog::MockProductRepository;
    use crate::catalog::fixtures::approved;
    use crate::clock::ManualClock;
    use crate::ids::UserId;
    use crate::licensing::MockLicenseRepository;
    use crate::orders::{MockIdempotencyStore, MockOrderRepository};
    use crate::payments::{MockPaymentProvider, MockPaymentRepository, ProviderIntent};
    use futures::executor::block_on;
    use mockall::predicate::eq;

    /// Mocks for every port; each test states the calls it expects.
    #[derive(Default)]
    struct Mocks {
        orders: MockOrderRepository,
        products: MockProductRepository,
        licenses: MockLicenseRepository,
        idempotency: MockIdempotencyStore,
        intents: MockPaymentRepository,
        provider: MockPaymentProvider,
    }

    impl Mocks {
        fn service(mut self) -> OrderService {
            let clock: Arc<dyn Clock> = Arc::new(ManualClock::at_epoch_secs(1_700_000_000));
            self.provider.expect_name().return_const("mock".to_owned());
            let payments = PaymentService::new(Arc::new(self.intents), Arc::new(self.provider), clock.clone());
            OrderService::new(
                OrderDeps::separate(
                    Arc::new(self.orders),
                    Arc::new(self.products),
                    Arc::new(self.licenses),
                    Arc::new(payments),
                    Arc::new(self.idempotency),
                    clock,
                ),
                OrderConfig::default(),
            )
        }
    }

    fn buyer() -> Actor {
        Actor::new(UserId::new(), Role::Customer)
    }

    #[test]
    fn a_replayed_key_answers_from_the_store_and_touches_nothing_else() {
        let me = buyer();
        let mut m = Mocks::default();
        let stored = Order {
            id: OrderId::new(),
            buyer_id: me.user_id,
            lines: vec![],
            total: crate::money::Money::new(5, Currency::USD),
            status: OrderStatus::PendingPayment,
            created_at: crate::catalog::fixtures::at(0),
            updated_at: crate::catalog::fixtures::at(0),
        };
        let body = serde_json::to_value(&stored).unwrap();
        m.idempotency
            .expect_begin()
            .withf(move |claim, _, _, _| claim.scope == me.user_id.to_string() && claim.key == "k")
            .times(1)
            .returning(move |_, _, _, _| Ok(IdempotencyBegin::Replay(StoredResponse { body: body.clone() })));
        m.products.expect_get().times(0);
        m.orders.expect_insert().times(0);
        m.idempotency.expect_complete().times(0);
        let order_id = stored.id;
        m.intents.expect_get_by_order().with(eq(order_id)).times(1).returning(|_| Ok(None));
        let got =
            block_on(m.service().place_with_payment(&me, PlaceOrder::new([ProductId::new()]), Some("k"))).unwrap();
        assert_eq!(got, Placed { order: stored, payment: None }, "the first order, and its intent as it is now");
    }

    #[test]
    fn a_failed_placement_abandons_its_key_and_never_completes_it() {
        let me = buyer();
        let mut m = Mocks::default();
        m.idempotency.expect_begin().times(1).returning(|_, _, _, _| Ok(IdempotencyBegin::Started));
        m.products.expect_get().times(1).returning(|_| Ok(None));
        m.orders.expect_insert().times(0);
        m.idempotency.expect_complete().times(0);
        m.idempotency
            .expect_abandon()
            .withf(move |claim| claim.scope == me.user_id.to_string() && claim.key == "k")
            .times(1)
            .returning(|_| Ok(()));
        let err = block_on(m.service().place(&me, PlaceOrder::new([ProductId::new()]), Some("k"))).unwrap_err();
        assert_eq!(err.code(), "validation");
    }

    #[test]
    fn a_placed_order_is_stored_once_gets_its_intent_and_completes_its_key() {
        let me = buyer();
        let product = approved("Workflow pack", 0);
        let price = product.pricing.price().unwrap();
        let mut m = Mocks::default();
        m.idempotency.expect_begin().times(1).returning(|_, _, _, _| Ok(IdempotencyBegin::Started));
        let p = product.clone();
        m.products.expect_get().with(eq(product.id)).times(1).returning(move |_| Ok(Some(p.clone())));
        m.licenses
            .expect_list_for_buyer_products()
            .withf(move |b, ps| *b == me.user_id && ps == [product.id])
            .times(1)
            .returning(|_, _| Ok(vec![]));
        m.orders
            .expect_insert()
            .withf(|o, events| {
                o.status == OrderStatus::PendingPayment
                    && events.len() == 1
                    && events[0].event_type == crate::events::EventType::OrderPlaced
            })
            .times(1)
            .returning(|_, _| Ok(()));
        // The order was just inserted: no intent to look up before creating it.
        m.intents.expect_get_by_order().never();
        m.provider
            .expect_create_intent()
            .withf(move |amount, order_id, key| *amount == price && key == format!("order:{order_id}:create_intent"))
            .times(1)
            .returning(|amount, _, _| {
                Ok(ProviderIntent {
                    provider_ref: "pi_1".into(),
                    status: crate::payments::IntentStatus::RequiresPaymentMethod,
                    amount: amount.minor(),
                    currency: amount.currency().code().into(),
                    decline_code: None,
                })
            });
        m.intents.expect_insert().times(1).returning(|_, _| Ok(()));
        m.idempotency
            .expect_complete()
            .withf(|claim, resp| claim.key == "k" && resp.body["status"] == "pending_payment")
            .times(1)
            .returning(|_, _| Ok(()));
        m.idempotency.expect_abandon().times(0);
        let placed = block_on(m.service().place_with_payment(&me, PlaceOrder::new([product.id]), Some("k"))).unwrap();
        assert_eq!(placed.order.total, price);
        let intent = placed.payment.expect("the intent placing created");
        assert_eq!((intent.order_id, intent.amount), (placed.order.id, price));
        assert_eq!(intent.provider_ref.as_deref(), Some("pi_1"));
    }

    /// A paid, line-less order of `buyer`.
    fn paid_order(buyer: &Actor) -> Order {
        Order {
            id: OrderId::new(),
            buyer_id: buyer.user_id,
            lines: vec![],
            total: crate::money::Money::new(0, Currency::USD),
            status: OrderStatus::Paid,
            created_at: crate::catalog::fixtures::at(0),
            updated_at: crate::catalog::fixtures::at(0),
        }
    }

    /// Some event of `buyer`'s, as the cause of a status change.
    fn cause(buyer: &Actor) -> Event {
        Event::new(
            &crate::events::UserRegistered { user_id: buyer.user_id, role: "customer".into() },
            crate::catalog::fixtures::at(0),
        )
    }

    fn payment_for(order: &Order) -> Event {
        let paid = PaymentSucceeded {
            order_id: order.id,
            payment_intent_id: crate::ids::PaymentIntentId::new(),
            amount: order.total,
        };
        Event::new(&paid, crate::catalog::fixtures::at(0))
    }

    #[test]
    fn a_pending_order_is_marked_paid_by_one_compare_and_set_without_a_read() {
        let mut m = Mocks::default();
        let me = buyer();
        let pending = Order { status: OrderStatus::PendingPayment, ..paid_order(&me) };
        let paid = Order { status: OrderStatus::Paid, ..pending.clone() };
        m.orders.expect_get().never();
        let (stored, total) = (paid.clone(), pending.total);
        m.orders
            .expect_transition_with_total()
            .withf(move |_, from, to, t, _, events| {
                *from == OrderStatus::PendingPayment && *to == OrderStatus::Paid && *t == total && events.is_empty()
            })
            .times(1)
            .returning(move |_, _, _, _, _, _| Ok(stored.clone()));
        let got = block_on(m.service().mark_paid(pending.id, &payment_for(&pending))).unwrap();
        assert_eq!(got, paid);
    }

    #[test]
    fn a_payment_for_an_order_no_longer_pending_is_judged_after_a_read() {
        let mut m = Mocks::default();
        let me = buyer();
        let fulfilled = Order { status: OrderStatus::Fulfilled, ..paid_order(&me) };
        m.orders
            .expect_transition_with_total()
            .times(1)
            .returning(|_, _, to, _, _, _| Err(crate::orders::stale_status(OrderStatus::Fulfilled, to)));
        let stored = fulfilled.clone();
        m.orders.expect_get().times(1).returning(move |_| Ok(Some(stored.clone())));
        m.orders.expect_transition().never();
        let got = block_on(m.service().mark_paid(fulfilled.id, &payment_for(&fulfilled))).unwrap();
        assert_eq!(got, fulfilled, "a redelivered payment returns the order as it is");
    }

    #[test]
    fn a_lost_compare_and_set_rereads_and_emits_nothing() {
        let mut m = Mocks::default();
        let me = buyer();
        let paid = paid_order(&me);
        let fulfilled = Order { status: OrderStatus::Fulfilled, ..paid.clone() };
        let mut reads = vec![fulfilled.clone(), paid.clone()];
        m.orders.expect_get().times(2).returning(move |_| Ok(reads.pop()));
        m.orders
            .expect_transition()
            .times(1)
            .returning(|_, _, to, _, _| Err(crate::orders::stale_status(OrderStatus::Fulfilled, to)));
        let cause = cause(&me);
        let got = block_on(m.service().mark_fulfilled(paid.id, vec![], &cause)).unwrap();
        assert_eq!(got, fulfilled);
    }

    #[test]
    fn fulfilling_a_known_paid_order_reads_nothing_and_emits_order_fulfilled() {
        let mut m = Mocks::default();
        let me = buyer();
        let paid = paid_order(&me);
        let fulfilled = Order { status: OrderStatus::Fulfilled, ..paid.clone() };
        m.orders.expect_get().never();
        let stored = fulfilled.clone();
        m.orders
            .expect_transition()
            .withf(|_, from, to, _, events| {
                *from == OrderStatus::Paid
                    && *to == OrderStatus::Fulfilled
                    && events.len() == 1
                    && events[0].event_type == crate::events::EventType::OrderFulfilled
            })
            .times(1)
            .returning(move |_, _, _, _, _| Ok(stored.clone()));
        let cause = cause(&me);
        let got = block_on(m.service().fulfil(paid, vec![], &cause)).unwrap();
        assert_eq!(got, fulfilled);
    }
}
