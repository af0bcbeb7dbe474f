//! How a product is priced: free, a one-time price, or a subscription.
//!
//! The serde shape is the public wire shape (DESIGN.md §4), a union tagged by
//! `"type"`:
//! `{"type":"one_time","price":{"minor":1999,"currency":"USD"}}`,
//! `{"type":"free"}`,
//! `{"type":"subscription","price":{…},"interval":"monthly"}`.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::FieldError;
use crate::money::Money;

/// How often a subscription bills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BillingInterval {
    /// Every calendar month.
    Monthly,
    /// Every calendar year.
    Yearly,
}

impl BillingInterval {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Monthly => "monthly",
            Self::Yearly => "yearly",
        }
    }
}

impl fmt::Display for BillingInterval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A product's price terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Pricing {
    /// No charge.
    Free,
    /// Paid once, owned forever.
    OneTime {
        /// The price; more than zero.
        price: Money,
    },
    /// Paid every `interval`.
    Subscription {
        /// The price per interval; more than zero.
        price: Money,
        /// How often it bills.
        interval: BillingInterval,
    },
}

impl Pricing {
    /// The price, or `None` for [`Pricing::Free`].
    pub fn price(&self) -> Option<Money> {
        match self {
            Self::Free => None,
            Self::OneTime { price } | Self::Subscription { price, .. } => Some(*price),
        }
    }

    /// The amount in minor units that price filters and sorts use: free is 0.
    ///
    /// The currency is deliberately ignored (see the search module docs).
    pub fn sort_minor(&self) -> i64 {
        self.price().map_or(0, |p| p.minor())
    }

    /// Whether the buyer pays nothing.
    pub fn is_free(&self) -> bool {
        matches!(self, Self::Free)
    }

    /// Pushes a [`FieldError`] onto `errors` for every rule this pricing
    /// breaks: a paid price must be more than zero (a zero-priced product is
    /// [`Pricing::Free`], so there is one way to say "free").
    pub(crate) fn check(&self, field: &str, errors: &mut Vec<FieldError>) {
        if let Some(price) = self.price()
            && price.minor() <= 0
        {
            errors.push(FieldError::new(
                format!("{field}.price.minor"),
                "must be more than zero for a paid product (use {\"type\":\"free\"} for free ones)",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Currency;
    use serde_json::json;

    #[test]
    fn wire_shape_matches_the_http_contract() {
        let one = Pricing::OneTime { price: Money::new(1999, Currency::USD) };
        assert_eq!(
            serde_json::to_value(one).unwrap(),
            json!({"type":"one_time","price":{"minor":1999,"currency":"USD"}})
        );
        assert_eq!(serde_json::to_value(Pricing::Free).unwrap(), json!({"type":"free"}));
        let sub = Pricing::Subscription { price: Money::new(500, Currency::EUR), interval: BillingInterval::Monthly };
        let v = json!({"type":"subscription","price":{"minor":500,"currency":"EUR"},"interval":"monthly"});
        assert_eq!(serde_json::to_value(sub).unwrap(), v);
        assert_eq!(serde_json::from_value::<Pricing>(v).unwrap(), sub);
        assert!(serde_json::from_value::<Pricing>(json!({"type":"lease"})).is_err());
    }

    #[test]
    fn free_has_no_price_and_sorts_as_zero() {
        assert_eq!(Pricing::Free.price(), None);
        assert_eq!(Pricing::Free.sort_minor(), 0);
        assert_eq!(Pricing::OneTime { price: Money::new(7, Currency::JPY) }.sort_minor(), 7);
    }

    #[test]
    fn paid_prices_must_be_positive() {
        let mut errors = Vec::new();
        Pricing::OneTime { price: Money::new(0, Currency::USD) }.check("pricing", &mut errors);
        Pricing::Subscription { price: Money::new(-1, Currency::USD), interval: BillingInterval::Yearly }
            .check("pricing", &mut errors);
        Pricing::Free.check("pricing", &mut errors);
        Pricing::OneTime { price: Money::new(1, Currency::USD) }.check("pricing", &mut errors);
        assert_eq!(errors.len(), 2);
        assert!(errors.iter().all(|e| e.field == "pricing.price.minor"));
    }
}
