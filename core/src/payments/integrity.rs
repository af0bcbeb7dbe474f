//! Integrity checks: what a provider reports must match our records before
//! anything changes. A mismatch means a bug, a misrouted webhook or fraud;
//! it is never treated as success.

use super::PaymentIntent;
use crate::error::{Error, Result};

/// Checks a provider's report about `intent`: the same provider reference
/// (when we know it), the same amount and the same currency.
///
/// # Errors
/// [`Error::Integrity`] describing the first difference.
pub fn check_report(intent: &PaymentIntent, provider_ref: &str, amount: i64, currency: &str) -> Result<()> {
    if let Some(ours) = intent.provider_ref.as_deref().filter(|ours| *ours != provider_ref) {
        return Err(Error::Integrity(format!(
            "provider reported intent {provider_ref:?} for payment intent {} which is {ours:?}",
            intent.id
        )));
    }
    check_amount(intent, amount, currency, intent.amount.minor())
}

/// Checks a reported amount and currency against `expected` minor units in
/// the intent's currency.
///
/// # Errors
/// [`Error::Integrity`] when either differs.
pub fn check_amount(intent: &PaymentIntent, amount: i64, currency: &str, expected: i64) -> Result<()> {
    check_currency(intent, currency)?;
    if amount != expected {
        return Err(Error::Integrity(format!(
            "provider reported {amount} minor units for payment intent {}, expected {expected}",
            intent.id
        )));
    }
    Ok(())
}

fn check_currency(intent: &PaymentIntent, currency: &str) -> Result<()> {
    let ours = intent.amount.currency();
    if currency != ours.code() {
        return Err(Error::Integrity(format!(
            "provider reported currency {currency:?} for payment intent {} in {ours}",
            intent.id
        )));
    }
    Ok(())
}

/// Checks a provider's running total of refunds: the intent's currency and
/// no more than was captured.
///
/// # Errors
/// [`Error::Integrity`] when the currency differs or the total is negative
/// or above the captured amount.
pub fn check_refunded_total(intent: &PaymentIntent, total: i64, currency: &str) -> Result<()> {
    check_amount(intent, intent.amount.minor(), currency, intent.amount.minor())?;
    if !(0..=intent.amount.minor()).contains(&total) {
        return Err(Error::Integrity(format!(
            "provider reports {total} minor units refunded on payment intent {} which captured {}",
            intent.id, intent.amount
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::ids::{OrderId, PaymentIntentId};
    use crate::money::{Currency, Money};
    use crate::payments::IntentStatus;

    fn intent() -> PaymentIntent {
        let now = ManualClock::at_epoch_secs(0).now();
        PaymentIntent {
            id: PaymentIntentId::new(),
            order_id: OrderId::new(),
            amount: Money::new(1999, Currency::USD),
            status: IntentStatus::RequiresPaymentMethod,
            provider: "sandbox".into(),
            provider_ref: Some("pi_1".into()),
            attempts: vec![],
            amount_refunded: Money::zero(Currency::USD),
            version: 1,
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn any_difference_is_an_integrity_error() {
        let i = intent();
        assert!(check_report(&i, "pi_1", 1999, "USD").is_ok());
        for (r, a, c) in [("pi_2", 1999, "USD"), ("pi_1", 1998, "USD"), ("pi_1", 1999, "EUR"), ("pi_1", 1999, "usd")] {
            let err = check_report(&i, r, a, c).unwrap_err();
            assert_eq!(err.code(), "integrity", "{r} {a} {c}");
        }
        assert!(check_refunded_total(&i, 1999, "USD").is_ok());
        assert!(check_refunded_total(&i, 0, "USD").is_ok());
        for (total, currency) in [(2000, "USD"), (-1, "USD"), (5, "EUR")] {
            assert_eq!(check_refunded_total(&i, total, currency).unwrap_err().code(), "integrity");
        }
    }
}
