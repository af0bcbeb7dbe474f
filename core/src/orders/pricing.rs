//! Pricing an order: one line per product, the fee split per line, the total.
//!
//! A free product's line costs zero in the order's currency: the currency of
//! its priced lines, or the configured default when every line is free.
//! Subscriptions are charged their first period's price.

use crate::catalog::Product;
use crate::error::{Error, FieldError, Result};
use crate::money::{Currency, FeeRate, Money};

use super::OrderLine;

/// Prices `products` (in request order) into order lines and their total.
///
/// Each line's fee is split with [`FeeRate::split`], so
/// `platform_fee + vendor_net == unit_price` exactly.
///
/// # Errors
/// [`Error::Validation`] on `items[i].product_id` for every priced product
/// whose currency differs from the first priced one's, or on `amount` when
/// the total overflows.
pub fn price_lines(products: &[Product], fee: FeeRate, default_currency: Currency) -> Result<(Vec<OrderLine>, Money)> {
    let prices: Vec<Option<Money>> = products.iter().map(|p| p.pricing.price()).collect();
    let currency = prices.iter().flatten().map(Money::currency).next().unwrap_or(default_currency);
    let mixed: Vec<FieldError> = prices
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.filter(|m| m.currency() != currency).map(|m| (i, m)))
        .map(|(i, m)| {
            FieldError::new(
                format!("items[{i}].product_id"),
                format!("is priced in {}, but the order is in {currency}", m.currency()),
            )
        })
        .collect();
    if !mixed.is_empty() {
        return Err(Error::Validation(mixed));
    }
    let lines = products
        .iter()
        .zip(prices)
        .map(|(product, price)| {
            let split = fee.split(price.unwrap_or(Money::zero(currency)))?;
            Ok(OrderLine {
                product_id: product.id,
                vendor_id: product.vendor_id,
                title: product.title.clone(),
                pricing: product.pricing,
                unit_price: split.gross,
                platform_fee: split.platform_fee,
                vendor_net: split.vendor_net,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let total = Money::sum(currency, lines.iter().map(|l| &l.unit_price))?;
    Ok((lines, total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::fixtures::approved;
    use crate::pricing::Pricing;

    fn priced(pricing: Pricing) -> Product {
        Product { pricing, ..approved("Priced product", 0) }
    }

    #[test]
    fn each_line_is_split_and_the_total_is_the_sum() {
        let products = [
            priced(Pricing::OneTime { price: Money::new(999, Currency::USD) }),
            priced(Pricing::Free),
            priced(Pricing::Subscription {
                price: Money::new(500, Currency::USD),
                interval: crate::pricing::BillingInterval::Monthly,
            }),
        ];
        let (lines, total) = price_lines(&products, FeeRate::DEFAULT, Currency::EUR).unwrap();
        assert_eq!(total, Money::new(1499, Currency::USD));
        let split: Vec<_> =
            lines.iter().map(|l| (l.unit_price.minor(), l.platform_fee.minor(), l.vendor_net.minor())).collect();
        assert_eq!(split, [(999, 199, 800), (0, 0, 0), (500, 100, 400)]);
        assert!(lines.iter().all(|l| l.unit_price.currency() == Currency::USD));
    }

    #[test]
    fn an_all_free_order_uses_the_default_currency() {
        let (lines, total) = price_lines(&[priced(Pricing::Free)], FeeRate::DEFAULT, Currency::EUR).unwrap();
        assert_eq!(total, Money::zero(Currency::EUR));
        assert_eq!(lines[0].vendor_net, Money::zero(Currency::EUR));
    }

    #[test]
    fn mixed_currencies_name_the_odd_lines() {
        let products = [
            priced(Pricing::OneTime { price: Money::new(1, Currency::EUR) }),
            priced(Pricing::OneTime { price: Money::new(1, Currency::EUR) }),
            priced(Pricing::OneTime { price: Money::new(1, Currency::JPY) }),
        ];
        match price_lines(&products, FeeRate::DEFAULT, Currency::USD).unwrap_err() {
            Error::Validation(f) => {
                assert_eq!(f.iter().map(|f| f.field.as_str()).collect::<Vec<_>>(), ["items[2].product_id"])
            }
            other => panic!("{other:?}"),
        }
    }
}
