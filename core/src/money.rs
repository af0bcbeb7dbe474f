//! Money as integer minor units with an ISO-4217 currency; never floats.
//!
//! Arithmetic is checked: overflow and mixing currencies are errors, not
//! panics or silent wrap-around.
//!
//! # Fee split rounding rule
//! [`FeeRate::split`] computes the platform fee as `floor(gross × bps /
//! 10_000)` in minor units and gives the vendor the rest, so
//! `platform_fee + vendor_net == gross` exactly and any sub-minor-unit
//! remainder goes to the vendor.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

/// ISO-4217 currencies we accept, with their minor-unit exponents.
const CURRENCIES: &[(&str, u8)] = &[
    ("AED", 2),
    ("AUD", 2),
    ("BHD", 3),
    ("BRL", 2),
    ("CAD", 2),
    ("CHF", 2),
    ("CLP", 0),
    ("CNY", 2),
    ("CZK", 2),
    ("DKK", 2),
    ("EUR", 2),
    ("GBP", 2),
    ("HKD", 2),
    ("HUF", 2),
    ("IDR", 2),
    ("ILS", 2),
    ("INR", 2),
    ("ISK", 0),
    ("JOD", 3),
    ("JPY", 0),
    ("KRW", 0),
    ("KWD", 3),
    ("MXN", 2),
    ("MYR", 2),
    ("NOK", 2),
    ("NZD", 2),
    ("OMR", 3),
    ("PHP", 2),
    ("PLN", 2),
    ("SAR", 2),
    ("SEK", 2),
    ("SGD", 2),
    ("THB", 2),
    ("TND", 3),
    ("TRY", 2),
    ("TWD", 2),
    ("UAH", 2),
    ("USD", 2),
    ("VND", 0),
    ("ZAR", 2),
];

/// An ISO-4217 currency code we support.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency {
    code: [u8; 3],
    exponent: u8,
}

impl Currency {
    /// US dollar.
    pub const USD: Currency = Currency { code: *b"USD", exponent: 2 };
    /// Euro.
    pub const EUR: Currency = Currency { code: *b"EUR", exponent: 2 };
    /// Japanese yen (no minor unit).
    pub const JPY: Currency = Currency { code: *b"JPY", exponent: 0 };
    /// Bahraini dinar (three decimals).
    pub const BHD: Currency = Currency { code: *b"BHD", exponent: 3 };

    /// Parses an upper-case ISO-4217 code.
    ///
    /// # Errors
    /// [`Error::Validation`] on `currency` for an unknown or malformed code.
    pub fn parse(code: &str) -> Result<Self> {
        CURRENCIES
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(c, e)| {
                let b = c.as_bytes();
                Currency { code: [b[0], b[1], b[2]], exponent: *e }
            })
            .ok_or_else(|| Error::invalid("currency", format!("unsupported currency code {code:?}")))
    }

    /// The codes [`parse`](Self::parse) accepts, in alphabetical order.
    pub fn codes() -> impl Iterator<Item = &'static str> {
        CURRENCIES.iter().map(|(code, _)| *code)
    }

    /// The three-letter code.
    pub fn code(&self) -> &str {
        // Only ever built from the ASCII table above.
        std::str::from_utf8(&self.code).unwrap_or("???")
    }

    /// Digits after the decimal point (JPY 0, USD 2, BHD 3).
    pub fn exponent(&self) -> u8 {
        self.exponent
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Currency {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Currency::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// An amount of money in minor units (cents, yen, fils).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    minor: i64,
    currency: Currency,
}

impl Money {
    /// An amount in minor units.
    pub const fn new(minor: i64, currency: Currency) -> Self {
        Self { minor, currency }
    }

    /// Zero in `currency`.
    pub const fn zero(currency: Currency) -> Self {
        Self { minor: 0, currency }
    }

    /// A price: an amount that must not be negative.
    ///
    /// # Errors
    /// [`Error::Validation`] on `field` when `minor` is negative.
    pub fn price(field: &str, minor: i64, currency: Currency) -> Result<Self> {
        if minor < 0 {
            return Err(Error::invalid(field, "must not be negative"));
        }
        Ok(Self { minor, currency })
    }

    /// The amount in minor units.
    pub const fn minor(&self) -> i64 {
        self.minor
    }

    /// The currency.
    pub const fn currency(&self) -> Currency {
        self.currency
    }

    /// Whether the amount is zero.
    pub const fn is_zero(&self) -> bool {
        self.minor == 0
    }

    /// Whether the amount is below zero.
    pub const fn is_negative(&self) -> bool {
        self.minor < 0
    }

    fn same_currency(&self, other: &Money) -> Result<()> {
        if self.currency != other.currency {
            return Err(Error::invalid(
                "currency",
                format!("cannot combine {} with {}", self.currency, other.currency),
            ));
        }
        Ok(())
    }

    /// `self + other`.
    ///
    /// # Errors
    /// [`Error::Validation`] when the currencies differ or the sum overflows.
    pub fn checked_add(&self, other: &Money) -> Result<Money> {
        self.same_currency(other)?;
        let minor = self.minor.checked_add(other.minor).ok_or_else(overflow)?;
        Ok(Money { minor, currency: self.currency })
    }

    /// `self − other`.
    ///
    /// # Errors
    /// [`Error::Validation`] when the currencies differ or the result overflows.
    pub fn checked_sub(&self, other: &Money) -> Result<Money> {
        self.same_currency(other)?;
        let minor = self.minor.checked_sub(other.minor).ok_or_else(overflow)?;
        Ok(Money { minor, currency: self.currency })
    }

    /// `self × n`.
    ///
    /// # Errors
    /// [`Error::Validation`] on overflow.
    pub fn checked_mul(&self, n: i64) -> Result<Money> {
        let minor = self.minor.checked_mul(n).ok_or_else(overflow)?;
        Ok(Money { minor, currency: self.currency })
    }

    /// Sums `items`, all of which must be in `currency`.
    ///
    /// # Errors
    /// [`Error::Validation`] on mixed currencies or overflow.
    pub fn sum<'a>(currency: Currency, items: impl IntoIterator<Item = &'a Money>) -> Result<Money> {
        items.into_iter().try_fold(Money::zero(currency), |acc, m| acc.checked_add(m))
    }
}

fn overflow() -> Error {
    Error::invalid("amount", "amount is out of range")
}

impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Money {
    /// `12.34 USD`, `500 JPY`, `1.005 BHD`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let exp = u32::from(self.currency.exponent);
        let sign = if self.minor < 0 { "-" } else { "" };
        let abs = self.minor.unsigned_abs();
        if exp == 0 {
            return write!(f, "{sign}{abs} {}", self.currency);
        }
        let scale = 10u64.pow(exp);
        write!(f, "{sign}{}.{:0width$} {}", abs / scale, abs % scale, self.currency, width = exp as usize)
    }
}

/// A platform commission in basis points (1/100 of a percent), 0..=10 000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct FeeRate(u32);

impl FeeRate {
    /// The default commission: 20 %.
    pub const DEFAULT: FeeRate = FeeRate(2_000);

    /// A rate of `bps` basis points.
    ///
    /// # Errors
    /// [`Error::Validation`] when `bps > 10_000`.
    pub fn from_bps(bps: u32) -> Result<Self> {
        if bps > 10_000 {
            return Err(Error::invalid("fee_bps", "must be between 0 and 10000"));
        }
        Ok(Self(bps))
    }

    /// The rate in basis points.
    pub fn bps(&self) -> u32 {
        self.0
    }

    /// Splits `gross` into `(platform_fee, vendor_net)`, rounding the fee
    /// down so the vendor receives any remainder. Exact for every `i64`
    /// amount: the product is computed in `i128`.
    ///
    /// # Errors
    /// [`Error::Validation`] when `gross` is negative.
    pub fn split(&self, gross: Money) -> Result<FeeSplit> {
        if gross.is_negative() {
            return Err(Error::invalid("amount", "must not be negative"));
        }
        let fee = (i128::from(gross.minor) * i128::from(self.0)) / 10_000;
        // fee <= gross because bps <= 10_000, so it fits in i64.
        let fee = i64::try_from(fee).map_err(|_| overflow())?;
        let platform_fee = Money::new(fee, gross.currency);
        let vendor_net = Money::new(gross.minor - fee, gross.currency);
        Ok(FeeSplit { gross, platform_fee, vendor_net })
    }
}

impl Default for FeeRate {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl TryFrom<u32> for FeeRate {
    type Error = Error;
    fn try_from(bps: u32) -> Result<Self> {
        Self::from_bps(bps)
    }
}

impl From<FeeRate> for u32 {
    fn from(r: FeeRate) -> u32 {
        r.0
    }
}

/// A gross amount split between the platform and the vendor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeeSplit {
    /// What the buyer pays.
    pub gross: Money,
    /// The platform's commission.
    pub platform_fee: Money,
    /// What the vendor receives.
    pub vendor_net: Money,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn exponents_follow_iso_4217() {
        assert_eq!(Currency::parse("JPY").unwrap().exponent(), 0);
        assert_eq!(Currency::parse("USD").unwrap().exponent(), 2);
        assert_eq!(Currency::parse("BHD").unwrap().exponent(), 3);
        assert!(Currency::parse("usd").is_err());
        assert!(Currency::parse("XXX").is_err());
    }

    #[test]
    fn display_uses_the_exponent() {
        assert_eq!(Money::new(1999, Currency::USD).to_string(), "19.99 USD");
        assert_eq!(Money::new(500, Currency::JPY).to_string(), "500 JPY");
        assert_eq!(Money::new(1005, Currency::BHD).to_string(), "1.005 BHD");
        assert_eq!(Money::new(-5, Currency::USD).to_string(), "-0.05 USD");
    }

    #[test]
    fn wire_shape_is_minor_and_currency() {
        let m = Money::new(1999, Currency::USD);
        assert_eq!(serde_json::to_value(m).unwrap(), serde_json::json!({"minor": 1999, "currency": "USD"}));
        let bad = serde_json::from_value::<Money>(serde_json::json!({"minor": 1, "currency": "ABC"}));
        assert!(bad.is_err());
    }

    #[test]
    fn mixing_currencies_is_an_error() {
        let err = Money::new(1, Currency::USD).checked_add(&Money::new(1, Currency::EUR)).unwrap_err();
        assert_eq!(err.code(), "validation");
    }

    #[test]
    fn fee_rounds_down_in_the_vendors_favour() {
        let split = FeeRate::from_bps(2_000).unwrap().split(Money::new(999, Currency::USD)).unwrap();
        assert_eq!(split.platform_fee.minor(), 199);
        assert_eq!(split.vendor_net.minor(), 800);
        assert!(FeeRate::from_bps(10_001).is_err());
        assert!(FeeRate::DEFAULT.split(Money::new(-1, Currency::USD)).is_err());
    }

    proptest! {
        #[test]
        fn fee_split_is_exact(minor in 0i64..=i64::MAX, bps in 0u32..=10_000) {
            let split = FeeRate::from_bps(bps).unwrap().split(Money::new(minor, Currency::USD)).unwrap();
            prop_assert!(split.platform_fee.minor() >= 0);
            prop_assert!(split.vendor_net.minor() >= 0);
            prop_assert_eq!(split.platform_fee.checked_add(&split.vendor_net).unwrap(), split.gross);
        }

        #[test]
        fn checked_arithmetic_never_panics_and_agrees_with_i128(a in any::<i64>(), b in any::<i64>(), n in any::<i64>()) {
            let (x, y) = (Money::new(a, Currency::EUR), Money::new(b, Currency::EUR));
            let sum = i128::from(a) + i128::from(b);
            match x.checked_add(&y) {
                Ok(m) => prop_assert_eq!(i128::from(m.minor()), sum),
                Err(_) => prop_assert!(sum > i128::from(i64::MAX) || sum < i128::from(i64::MIN)),
            }
            let diff = i128::from(a) - i128::from(b);
            match x.checked_sub(&y) {
                Ok(m) => prop_assert_eq!(i128::from(m.minor()), diff),
                Err(_) => prop_assert!(diff > i128::from(i64::MAX) || diff < i128::from(i64::MIN)),
            }
            let prod = i128::from(a) * i128::from(n);
            match x.checked_mul(n) {
                Ok(m) => prop_assert_eq!(i128::from(m.minor()), prod),
                Err(_) => prop_assert!(prod > i128::from(i64::MAX) || prod < i128::from(i64::MIN)),
            }
        }

        #[test]
        fn serde_round_trips(minor in any::<i64>(), idx in 0usize..CURRENCIES.len()) {
            let m = Money::new(minor, Currency::parse(CURRENCIES[idx].0).unwrap());
            let back: Money = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
            prop_assert_eq!(back, m);
        }
    }
}
