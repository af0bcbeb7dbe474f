//! Star ratings and the displayed (Bayesian) average.
//!
//! Stored aggregates are exact integers ([`ProductStats::rating_sum`],
//! [`ProductStats::rating_count`]); the only float is the display value,
//! derived on read:
//!
//! ```text
//! display = (C · m + rating_sum) / (C + rating_count)
//! ```
//!
//! with prior mean `m = 3.0` and prior weight `C = 5` by default
//! ([`RatingPrior::DEFAULT`]). A product with no reviews shows `m`; each
//! review pulls the value towards the true mean, so one 5-star review does
//! not outrank a hundred 4.8-star ones.

use serde::{Deserialize, Serialize};

use super::product::ProductStats;
use crate::error::{Error, Result};

/// One to five stars.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct Rating(u8);

impl Rating {
    /// A rating of `stars`.
    ///
    /// # Errors
    /// [`Error::Validation`] on `rating` unless `1 <= stars <= 5`.
    pub fn new(stars: u8) -> Result<Self> {
        if (1..=5).contains(&stars) { Ok(Self(stars)) } else { Err(Error::invalid("rating", "must be 1 to 5")) }
    }

    /// The number of stars.
    pub fn stars(self) -> u8 {
        self.0
    }
}

impl TryFrom<u8> for Rating {
    type Error = Error;
    fn try_from(stars: u8) -> Result<Self> {
        Self::new(stars)
    }
}

impl From<Rating> for u8 {
    fn from(r: Rating) -> u8 {
        r.0
    }
}

/// The prior of the Bayesian average: `weight` imaginary reviews of `mean` stars.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RatingPrior {
    mean: f64,
    weight: u32,
}

impl RatingPrior {
    /// Five imaginary three-star reviews. Search's `rating` sort uses this
    /// prior so every adapter orders identically.
    pub const DEFAULT: RatingPrior = RatingPrior { mean: 3.0, weight: 5 };

    /// A prior of `weight` reviews averaging `mean` stars.
    ///
    /// # Errors
    /// [`Error::Validation`] on `mean` unless it is within 1.0..=5.0.
    pub fn new(mean: f64, weight: u32) -> Result<Self> {
        if !(1.0..=5.0).contains(&mean) {
            return Err(Error::invalid("mean", "must be between 1 and 5"));
        }
        Ok(Self { mean, weight })
    }

    /// The prior mean `m`.
    pub fn mean(&self) -> f64 {
        self.mean
    }

    /// The prior weight `C`.
    pub fn weight(&self) -> u32 {
        self.weight
    }

    /// The display rating for `stats`: `(C·m + rating_sum) / (C + rating_count)`.
    ///
    /// With `C = 0` and no reviews there is no evidence at all; the prior
    /// mean is returned rather than dividing by zero.
    pub fn display(&self, stats: &ProductStats) -> f64 {
        let c = f64::from(self.weight);
        // u64 → f64 is exact below 2^53 reviews/stars, far beyond any catalog.
        #[allow(clippy::cast_precision_loss)]
        let (sum, count) = (stats.rating_sum as f64, stats.rating_count as f64);
        let denominator = c + count;
        if denominator == 0.0 { self.mean } else { (c * self.mean + sum) / denominator }
    }
}

impl Default for RatingPrior {
    fn default() -> Self {
        Self::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(sum: u64, count: u64) -> ProductStats {
        ProductStats { downloads: 0, rating_sum: sum, rating_count: count }
    }

    #[test]
    fn ratings_are_one_to_five() {
        assert!(Rating::new(0).is_err());
        assert!(Rating::new(6).is_err());
        assert_eq!(Rating::new(5).unwrap().stars(), 5);
        assert!(serde_json::from_str::<Rating>("9").is_err());
        assert_eq!(serde_json::from_str::<Rating>("4").unwrap(), Rating::new(4).unwrap());
    }

    #[test]
    fn bayesian_average_uses_the_documented_formula() {
        let p = RatingPrior::DEFAULT;
        assert_eq!(p.display(&stats(0, 0)), 3.0);
        // One 5-star review: (15 + 5) / 6.
        assert!((p.display(&stats(5, 1)) - 20.0 / 6.0).abs() < 1e-12);
        // A hundred reviews averaging 4.8 beat a single 5.
        assert!(p.display(&stats(480, 100)) > p.display(&stats(5, 1)));
        // Many reviews converge on the true mean.
        assert!((p.display(&stats(4_000_000, 1_000_000)) - 4.0).abs() < 1e-4);
    }

    #[test]
    fn the_prior_is_configurable() {
        let p = RatingPrior::new(4.0, 10).unwrap();
        assert_eq!(p.display(&stats(0, 0)), 4.0);
        assert!((p.display(&stats(10, 10)) - 2.5).abs() < 1e-12);
        assert_eq!(RatingPrior::new(2.0, 0).unwrap().display(&stats(0, 0)), 2.0);
        assert_eq!(RatingPrior::new(2.0, 0).unwrap().display(&stats(9, 2)), 4.5);
        assert!(RatingPrior::new(0.5, 5).is_err());
        assert!(RatingPrior::new(f64::NAN, 5).is_err());
    }
}
