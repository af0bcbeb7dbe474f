//! The order aggregate and the request that places one.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::OrderStatus;
use crate::clock::Timestamp;
use crate::error::{Error, FieldError, Result};
use crate::ids::{OrderId, ProductId, UserId};
use crate::licensing::{Purchase, PurchaseState, PurchasedLine};
use crate::money::Money;
use crate::pricing::Pricing;

/// The most lines one order may have.
pub const MAX_ORDER_ITEMS: usize = 20;

/// One purchased product, priced and split at the moment of purchase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    /// The product bought.
    pub product_id: ProductId,
    /// Its vendor, who receives `vendor_net`.
    pub vendor_id: UserId,
    /// The product's title when bought.
    pub title: String,
    /// The product's pricing when bought; license terms derive from it.
    pub pricing: Pricing,
    /// What the buyer pays for this line (zero for a free product).
    pub unit_price: Money,
    /// The platform's commission; `platform_fee + vendor_net == unit_price`.
    pub platform_fee: Money,
    /// What the vendor receives.
    pub vendor_net: Money,
}

/// A buyer's order. At most one line per product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// Id.
    pub id: OrderId,
    /// Who placed it.
    pub buyer_id: UserId,
    /// What was bought, in request order.
    pub lines: Vec<OrderLine>,
    /// The sum of the lines' unit prices.
    pub total: Money,
    /// Where it is in its life.
    pub status: OrderStatus,
    /// When it was placed.
    pub created_at: Timestamp,
    /// When its status last changed.
    pub updated_at: Timestamp,
}

impl Order {
    /// Whether nothing is to be paid (every line free).
    pub fn is_free(&self) -> bool {
        self.total.is_zero()
    }
}

/// One product in a [`PlaceOrder`] request.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PlaceOrderItem {
    /// The product to buy.
    pub product_id: ProductId,
}

/// A request to buy some products.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaceOrder {
    /// 1 to [`MAX_ORDER_ITEMS`] distinct products.
    pub items: Vec<PlaceOrderItem>,
}

impl From<&Order> for Purchase {
    fn from(order: &Order) -> Self {
        let state = match order.status {
            OrderStatus::Paid => PurchaseState::Paid,
            OrderStatus::Fulfilled => PurchaseState::Fulfilled,
            other => PurchaseState::Unpaid(other.as_str()),
        };
        Self {
            order_id: order.id,
            buyer_id: order.buyer_id,
            state,
            lines: order
                .lines
                .iter()
                .map(|line| PurchasedLine { product_id: line.product_id, pricing: line.pricing })
                .collect(),
        }
    }
}

impl PlaceOrder {
    /// A request for `products`, in order.
    pub fn new(products: impl IntoIterator<Item = ProductId>) -> Self {
        Self { items: products.into_iter().map(|product_id| PlaceOrderItem { product_id }).collect() }
    }

    /// Checks the request's shape (not the products themselves).
    ///
    /// # Errors
    /// [`Error::Validation`] on `items` when there are none or more than
    /// [`MAX_ORDER_ITEMS`], and on `items[i].product_id` for every repeat
    /// of an earlier product.
    pub fn validate(&self) -> Result<()> {
        if self.items.is_empty() || self.items.len() > MAX_ORDER_ITEMS {
            return Err(Error::invalid("items", format!("must hold 1 to {MAX_ORDER_ITEMS} products")));
        }
        let mut first_seen: HashMap<ProductId, usize> = HashMap::new();
        let mut errors = Vec::new();
        for (i, item) in self.items.iter().enumerate() {
            if let Some(first) = first_seen.insert(item.product_id, i) {
                // Keep pointing later repeats at the first occurrence.
                first_seen.insert(item.product_id, first);
                errors.push(FieldError::new(
                    format!("items[{i}].product_id"),
                    format!("duplicates items[{first}].product_id"),
                ));
            }
        }
        if errors.is_empty() { Ok(()) } else { Err(Error::Validation(errors)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(err: Error) -> Vec<String> {
        match err {
            Error::Validation(f) => f.into_iter().map(|f| f.field).collect(),
            other => panic!("expected validation, got {other:?}"),
        }
    }

    #[test]
    fn item_count_is_bounded() {
        assert_eq!(fields(PlaceOrder::new([]).validate().unwrap_err()), ["items"]);
        let many = PlaceOrder::new((0..=MAX_ORDER_ITEMS).map(|_| ProductId::new()));
        assert_eq!(fields(many.validate().unwrap_err()), ["items"]);
        let max = PlaceOrder::new((0..MAX_ORDER_ITEMS).map(|_| ProductId::new()));
        assert!(max.validate().is_ok());
    }

    #[test]
    fn duplicates_name_each_repeated_index() {
        let (a, b) = (ProductId::new(), ProductId::new());
        let req = PlaceOrder::new([a, b, a, a]);
        assert_eq!(fields(req.validate().unwrap_err()), ["items[2].product_id", "items[3].product_id"]);
    }

    #[test]
    fn request_wire_shape() {
        let id = ProductId::new();
        let json = serde_json::json!({ "items": [{ "product_id": id.to_string() }] });
        let req: PlaceOrder = serde_json::from_value(json).unwrap();
        assert_eq!(req, PlaceOrder::new([id]));
    }
}
