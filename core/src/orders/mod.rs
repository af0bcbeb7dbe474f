//! Orders: the order aggregate and its state machine, pricing with the
//! platform fee split, idempotent placement, the order store port and the
//! service that places, cancels, fulfils and refunds orders.
//!
//! ```text
//! pending_payment --payment.succeeded--> paid --licenses issued--> fulfilled --refund--> refunded
//!       +--cancel--> canceled      (a failed attempt leaves it pending_payment)
//! ```
//! A paid order can also be refunded before its licenses are issued. Free
//! orders are placed directly as `paid` together with `order.placed` and a
//! zero `payment.succeeded`, so the ordinary payment handler fulfils them.

mod checkout;
mod idempotency;
mod order;
mod pricing;
mod repository;
mod service;
mod state;

pub use checkout::{Checkout, KeyAnswer, Placement, SeparateCheckout, check_intent_for};
pub use idempotency::{
    IdempotencyBegin, IdempotencyClaim, IdempotencyKey, IdempotencyRecord, IdempotencyStore, IdempotencyTerms,
    MAX_KEY_LEN, StoredResponse, request_hash,
};
pub use order::{MAX_ORDER_ITEMS, Order, OrderLine, PlaceOrder, PlaceOrderItem};
pub use pricing::price_lines;
pub use repository::{OrderRepository, StatusChange, check_distinct, check_total, stale_status};
pub use service::{OrderConfig, OrderDeps, OrderService, Placed};
pub use state::{OrderEvent, OrderStatus, transition};

#[cfg(any(test, feature = "mocks"))]
pub use checkout::MockCheckout;
#[cfg(any(test, feature = "mocks"))]
pub use idempotency::MockIdempotencyStore;
#[cfg(any(test, feature = "mocks"))]
pub use repository::MockOrderRepository;
