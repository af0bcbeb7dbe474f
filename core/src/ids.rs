//! Typed ids: UUID v7 newtypes, so a `ProductId` can't be passed as an
//! `OrderId` and ids sort by creation time in every store.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident, $label:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh, time-ordered (v7) id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// Wraps an existing UUID (from storage or the wire).
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The underlying UUID.
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }

            /// Parses the hyphenated UUID form.
            ///
            /// # Errors
            /// [`crate::Error::Validation`] naming `field` when `s` is not a UUID.
            pub fn parse(field: &str, s: &str) -> crate::Result<Self> {
                Uuid::parse_str(s)
                    .map(Self)
                    .map_err(|_| crate::Error::invalid(field, concat!("not a valid ", $label, " id")))
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl FromStr for $name {
            type Err = crate::Error;
            fn from_str(s: &str) -> crate::Result<Self> {
                Self::parse("id", s)
            }
        }

        impl From<Uuid> for $name {
            fn from(u: Uuid) -> Self {
                Self(u)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }
    };
}

typed_id!(
    /// A user: customer, vendor or admin.
    UserId, "user"
);
typed_id!(
    /// A catalog product.
    ProductId, "product"
);
typed_id!(
    /// A product review.
    ReviewId, "review"
);
typed_id!(
    /// An order.
    OrderId, "order"
);
typed_id!(
    /// A payment intent.
    PaymentIntentId, "payment intent"
);
typed_id!(
    /// A license.
    LicenseId, "license"
);
typed_id!(
    /// A downloadable asset (one immutable version of a file).
    AssetId, "asset"
);
typed_id!(
    /// A notification.
    NotificationId, "notification"
);
typed_id!(
    /// A domain event.
    EventId, "event"
);
typed_id!(
    /// A refresh-token family: every token rotated from one login.
    SessionId, "session"
);
typed_id!(
    /// A vendor's webhook endpoint.
    WebhookEndpointId, "webhook endpoint"
);
typed_id!(
    /// One event on its way to one webhook endpoint.
    WebhookDeliveryId, "webhook delivery"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_text_and_json() {
        let id = OrderId::new();
        assert_eq!(id.to_string().parse::<OrderId>().unwrap(), id);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        assert_eq!(serde_json::from_str::<OrderId>(&json).unwrap(), id);
    }

    #[test]
    fn v7_ids_sort_by_creation() {
        let a = ProductId::new();
        let b = ProductId::new();
        assert!(a < b);
    }

    #[test]
    fn bad_text_is_a_validation_error_naming_the_field() {
        let err = ProductId::parse("product_id", "nope").unwrap_err();
        assert_eq!(err.code(), "validation");
        assert!(err.to_string().contains("product_id"));
    }
}
