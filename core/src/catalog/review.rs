//! Buyer reviews of products.
//!
//! Rules enforced by [`super::CatalogService::add_review`] and the
//! [`super::ReviewRepository`] contract: one review per (buyer, product);
//! only from a purchase that was not refunded (a license for the product
//! whose status is not revoked); never by the product's own vendor.

use serde::{Deserialize, Serialize};

use super::rating::Rating;
use crate::clock::Timestamp;
use crate::error::{Error, FieldError, Result};
use crate::ids::{ProductId, ReviewId, UserId};

/// Longest review body, in characters.
pub const MAX_REVIEW_BODY_CHARS: usize = 5_000;

/// A buyer's review of a product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    /// Id.
    pub id: ReviewId,
    /// The product reviewed.
    pub product_id: ProductId,
    /// The reviewer, who bought the product.
    pub buyer_id: UserId,
    /// One to five stars.
    pub rating: Rating,
    /// Up to 5 000 characters; may be empty (a rating alone).
    pub body: String,
    /// When it was written.
    pub created_at: Timestamp,
}

/// What a buyer sends to review a product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewReview {
    /// 1..=5.
    pub rating: u8,
    /// Up to 5 000 characters.
    #[serde(default)]
    pub body: String,
}

impl NewReview {
    /// Checks every field.
    ///
    /// # Errors
    /// [`Error::Validation`] naming every failing field (`rating`, `body`).
    pub fn validate(&self) -> Result<Rating> {
        let mut errors = Vec::new();
        let rating = Rating::new(self.rating).map_err(|_| errors.push(FieldError::new("rating", "must be 1 to 5")));
        if self.body.trim().chars().count() > MAX_REVIEW_BODY_CHARS {
            errors.push(FieldError::new("body", format!("must be at most {MAX_REVIEW_BODY_CHARS} characters")));
        }
        match rating {
            Ok(r) if errors.is_empty() => Ok(r),
            _ => Err(Error::Validation(errors)),
        }
    }

    /// The review this input describes, if valid.
    ///
    /// # Errors
    /// As [`NewReview::validate`].
    pub fn into_review(self, id: ReviewId, product_id: ProductId, buyer_id: UserId, now: Timestamp) -> Result<Review> {
        let rating = self.validate()?;
        Ok(Review { id, product_id, buyer_id, rating, body: self.body.trim().to_owned(), created_at: now })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_failing_field_is_reported() {
        let bad = NewReview { rating: 0, body: "x".repeat(5_001) };
        match bad.validate().unwrap_err() {
            Error::Validation(f) => {
                assert_eq!(f.iter().map(|f| f.field.as_str()).collect::<Vec<_>>(), ["rating", "body"]);
            }
            other => panic!("{other:?}"),
        }
        let ok = NewReview { rating: 5, body: "é".repeat(5_000) };
        assert_eq!(ok.validate().unwrap().stars(), 5);
    }

    #[test]
    fn into_review_trims_the_body() {
        let r = NewReview { rating: 3, body: "  fine  ".into() }
            .into_review(ReviewId::new(), ProductId::new(), UserId::new(), chrono::Utc::now())
            .unwrap();
        assert_eq!((r.rating.stars(), r.body.as_str()), (3, "fine"));
    }
}
