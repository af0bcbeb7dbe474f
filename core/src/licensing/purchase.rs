//! What licensing needs to know of a paid order: who bought which products
//! at which pricing, and how far the order has come. Orders convert into it,
//! so licensing does not depend on the order aggregate.

use crate::ids::{OrderId, ProductId, UserId};
use crate::pricing::Pricing;

/// How far the order behind a [`Purchase`] has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PurchaseState {
    /// Paid, licenses not yet (all) issued.
    Paid,
    /// Fulfilled: every line has its license.
    Fulfilled,
    /// Any other order status (named for the error), which issues nothing.
    Unpaid(&'static str),
}

/// One product bought.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurchasedLine {
    /// The product.
    pub product_id: ProductId,
    /// Its pricing when bought; the license kind derives from it.
    pub pricing: Pricing,
}

/// An order as licensing sees it: the input of
/// [`LicenseService::issue_for_order`](super::LicenseService::issue_for_order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purchase {
    /// The order.
    pub order_id: OrderId,
    /// Its buyer, who holds the licenses.
    pub buyer_id: UserId,
    /// How far the order has come.
    pub state: PurchaseState,
    /// One license is issued per line.
    pub lines: Vec<PurchasedLine>,
}
