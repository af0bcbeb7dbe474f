//! Typed payloads, one per [`EventType`].

use serde::{Deserialize, Serialize};

use super::{EventPayload, EventType};
use crate::ids::{LicenseId, OrderId, PaymentIntentId, ProductId, ReviewId, UserId};
use crate::money::Money;

macro_rules! payload {
    ($name:ident => $ty:ident) => {
        impl EventPayload for $name {
            const TYPE: EventType = EventType::$ty;
        }
    };
}

/// `user.registered`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRegistered {
    /// The new user.
    pub user_id: UserId,
    /// Their role, snake_case.
    pub role: String,
}
payload!(UserRegistered => UserRegistered);

/// `product.submitted`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductSubmitted {
    /// The product.
    pub product_id: ProductId,
    /// Its vendor.
    pub vendor_id: UserId,
    /// The version submitted.
    pub version: u64,
}
payload!(ProductSubmitted => ProductSubmitted);

/// `product.approved`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductApproved {
    /// The product.
    pub product_id: ProductId,
    /// Its vendor.
    pub vendor_id: UserId,
}
payload!(ProductApproved => ProductApproved);

/// `product.rejected`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductRejected {
    /// The product.
    pub product_id: ProductId,
    /// Its vendor.
    pub vendor_id: UserId,
    /// The moderator's reason.
    pub reason: String,
}
payload!(ProductRejected => ProductRejected);

/// `product.suspended`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductSuspended {
    /// The product.
    pub product_id: ProductId,
    /// Its vendor.
    pub vendor_id: UserId,
}
payload!(ProductSuspended => ProductSuspended);

/// `product.updated`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductUpdated {
    /// The product.
    pub product_id: ProductId,
    /// Its vendor.
    pub vendor_id: UserId,
    /// The version written.
    pub version: u64,
}
payload!(ProductUpdated => ProductUpdated);

/// `product.reviewed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductReviewed {
    /// The product.
    pub product_id: ProductId,
    /// The review.
    pub review_id: ReviewId,
    /// Its stars, 1 to 5.
    pub rating: u8,
}
payload!(ProductReviewed => ProductReviewed);

/// `product.downloaded`: one download was counted (when its signed URL
/// was issued).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductDownloaded {
    /// The product.
    pub product_id: ProductId,
    /// The license the download was counted on.
    pub license_id: LicenseId,
}
payload!(ProductDownloaded => ProductDownloaded);

/// `order.placed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPlaced {
    /// The order.
    pub order_id: OrderId,
    /// The buyer.
    pub buyer_id: UserId,
    /// The order total.
    pub total: Money,
}
payload!(OrderPlaced => OrderPlaced);

/// `payment.succeeded`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentSucceeded {
    /// The order paid for.
    pub order_id: OrderId,
    /// The intent that succeeded.
    pub payment_intent_id: PaymentIntentId,
    /// The amount captured.
    pub amount: Money,
}
payload!(PaymentSucceeded => PaymentSucceeded);

/// `payment.failed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentFailed {
    /// The order.
    pub order_id: OrderId,
    /// The intent whose attempt failed.
    pub payment_intent_id: PaymentIntentId,
    /// The provider's decline code or message.
    pub reason: String,
}
payload!(PaymentFailed => PaymentFailed);

/// `order.fulfilled`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderFulfilled {
    /// The order.
    pub order_id: OrderId,
    /// The buyer.
    pub buyer_id: UserId,
    /// One license per order line.
    pub license_ids: Vec<LicenseId>,
}
payload!(OrderFulfilled => OrderFulfilled);

/// `order.refunded`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRefunded {
    /// The order.
    pub order_id: OrderId,
    /// The buyer.
    pub buyer_id: UserId,
    /// The amount refunded.
    pub amount: Money,
}
payload!(OrderRefunded => OrderRefunded);

/// `license.issued`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LicenseIssued {
    /// The license.
    pub license_id: LicenseId,
    /// The order it was issued for.
    pub order_id: OrderId,
    /// Its holder.
    pub buyer_id: UserId,
    /// The licensed product.
    pub product_id: ProductId,
}
payload!(LicenseIssued => LicenseIssued);

/// `license.revoked`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LicenseRevoked {
    /// The license.
    pub license_id: LicenseId,
    /// The order it was issued for.
    pub order_id: OrderId,
    /// Its holder.
    pub buyer_id: UserId,
    /// Why (e.g. `refund`).
    pub reason: String,
}
payload!(LicenseRevoked => LicenseRevoked);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::events::Event;
    use crate::money::Currency;

    #[test]
    fn envelope_is_cloudevents_shaped_and_round_trips() {
        let now = ManualClock::at_epoch_secs(1_700_000_000).now();
        let payload = PaymentSucceeded {
            order_id: OrderId::new(),
            payment_intent_id: PaymentIntentId::new(),
            amount: Money::new(1999, Currency::USD),
        };
        let event = Event::new(&payload, now);
        let json: serde_json::Value = serde_json::from_slice(&event.to_json()).unwrap();
        assert_eq!(json["specversion"], "1.0");
        assert_eq!(json["type"], "payment.succeeded");
        assert_eq!(json["time"], "2023-11-14T22:13:20Z");
        assert_eq!(json["data"]["amount"]["minor"], 1999);
        let back = Event::from_json(&event.to_json()).unwrap();
        assert_eq!(back, event);
        assert_eq!(back.decode::<PaymentSucceeded>().unwrap(), payload);
        assert!(back.decode::<OrderPlaced>().is_err());
    }

    #[test]
    fn causation_carries_the_correlation_id() {
        let now = ManualClock::at_epoch_secs(0).now();
        let cause = Event::new(&UserRegistered { user_id: UserId::new(), role: "customer".into() }, now)
            .correlated(Some(uuid::Uuid::now_v7()));
        let effect =
            Event::new(&UserRegistered { user_id: UserId::new(), role: "vendor".into() }, now).caused_by(&cause);
        assert_eq!(effect.causation_id, Some(cause.id));
        assert_eq!(effect.correlation_id, cause.correlation_id);
    }

    #[tokio::test]
    async fn events_carry_the_trace_context_they_are_created_in_through_json() {
        use crate::events::TraceContext;
        let now = ManualClock::at_epoch_secs(0).now();
        let request =
            TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", Some("k=v")).unwrap();
        let event = TraceContext::scope(request.clone(), async {
            Event::new(&UserRegistered { user_id: UserId::new(), role: "customer".into() }, now)
        })
        .await;
        assert_eq!(event.trace_context(), Some(request.clone()));
        let json = String::from_utf8(event.to_json()).unwrap();
        assert!(json.contains(r#""traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01""#), "{json}");
        assert!(json.contains(r#""tracestate":"k=v""#), "{json}");
        assert_eq!(Event::from_json(json.as_bytes()).unwrap(), event);

        // Outside any scope nothing is carried, and an effect keeps its cause's trace.
        let untraced = Event::new(&UserRegistered { user_id: UserId::new(), role: "vendor".into() }, now);
        assert_eq!(untraced.traceparent, None);
        assert!(!String::from_utf8(untraced.to_json()).unwrap().contains("traceparent"));
        assert_eq!(untraced.caused_by(&event).trace_context(), Some(request.clone()));

        // Created while handling the cause (a child span of its trace), the effect keeps its own.
        let handling = TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-1111111111111111-01", None).unwrap();
        let effect = TraceContext::scope(handling.clone(), async {
            Event::new(&UserRegistered { user_id: UserId::new(), role: "vendor".into() }, now).caused_by(&event)
        })
        .await;
        assert_eq!(effect.trace_context(), Some(handling));
    }

    #[test]
    fn every_type_parses_from_its_name() {
        for t in crate::events::EventType::ALL {
            assert_eq!(t.as_str().parse::<crate::events::EventType>().unwrap(), t);
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
    }
}
