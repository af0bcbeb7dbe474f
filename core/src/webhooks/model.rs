//! Endpoints, their signing secrets, and deliveries.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::ids::{EventId, UserId, WebhookDeliveryId, WebhookEndpointId};

/// A sales event a vendor can subscribe to, by its name on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum VendorEvent {
    /// `order.paid`: an order with the vendor's products was paid.
    #[serde(rename = "order.paid")]
    OrderPaid,
    /// `license.issued`: a buyer got a license to one of the vendor's products.
    #[serde(rename = "license.issued")]
    LicenseIssued,
    /// `order.refunded`: an order with the vendor's products was refunded.
    #[serde(rename = "order.refunded")]
    OrderRefunded,
}

impl VendorEvent {
    /// Every event, in a stable order.
    pub const ALL: [Self; 3] = [Self::OrderPaid, Self::LicenseIssued, Self::OrderRefunded];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OrderPaid => "order.paid",
            Self::LicenseIssued => "license.issued",
            Self::OrderRefunded => "order.refunded",
        }
    }

    /// Parses a wire name.
    ///
    /// # Errors
    /// [`Error::Validation`] on `events` for any other name.
    pub fn parse(s: &str) -> Result<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == s).ok_or_else(|| {
            Error::invalid("events", format!("unknown event {s:?}: use order.paid, license.issued or order.refunded"))
        })
    }
}

impl fmt::Display for VendorEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One signing secret of an endpoint. While a secret is being rotated out
/// it carries the time it stops being used; until then every delivery is
/// signed with it *and* with its successor, so the receiver can switch at
/// leisure.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointSecret {
    /// `whsec_` and 43 base64url characters (32 random bytes).
    pub value: String,
    /// When it stops signing; `None` for the current secret.
    pub expires_at: Option<Timestamp>,
}

impl fmt::Debug for EndpointSecret {
    // The value never reaches a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EndpointSecret").field("expires_at", &self.expires_at).finish_non_exhaustive()
    }
}

impl EndpointSecret {
    /// Whether it still signs at `now`.
    pub fn is_live(&self, now: Timestamp) -> bool {
        self.expires_at.is_none_or(|at| at > now)
    }
}

/// A vendor's HTTPS endpoint and the events it receives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookEndpoint {
    /// Id.
    pub id: WebhookEndpointId,
    /// Its owner.
    pub vendor_id: UserId,
    /// Where deliveries are POSTed.
    pub url: String,
    /// What it receives; never empty, no repeats, in [`VendorEvent::ALL`] order.
    pub events: Vec<VendorEvent>,
    /// Signing secrets, the current one first; the rest are being rotated out.
    pub secrets: Vec<EndpointSecret>,
    /// When it was registered.
    pub created_at: Timestamp,
    /// When its URL, events or secrets last changed.
    pub updated_at: Timestamp,
}

impl WebhookEndpoint {
    /// Whether it receives `event`.
    pub fn wants(&self, event: VendorEvent) -> bool {
        self.events.contains(&event)
    }

    /// The secrets that sign at `now`, the current one first.
    pub fn signing_secrets(&self, now: Timestamp) -> impl Iterator<Item = &[u8]> {
        self.secrets.iter().filter(move |s| s.is_live(now)).map(|s| s.value.as_bytes())
    }
}

/// Where a delivery is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its next attempt (or in one).
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// Every attempt failed; waits for a replay.
    Dead,
}

impl DeliveryStatus {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Dead => "dead",
        }
    }

    /// Parses a stored or wire name.
    ///
    /// # Errors
    /// [`Error::Validation`] on `status` for any other name.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "pending" => Ok(Self::Pending),
            "delivered" => Ok(Self::Delivered),
            "dead" => Ok(Self::Dead),
            _ => Err(Error::invalid("status", "must be pending, delivered or dead")),
        }
    }
}

/// One event on its way to one endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookDelivery {
    /// Id; also the `id` in the body, so a receiver deduplicates on it.
    pub id: WebhookDeliveryId,
    /// Where it goes.
    pub endpoint_id: WebhookEndpointId,
    /// The endpoint's owner.
    pub vendor_id: UserId,
    /// The domain event it reports. At most one delivery per endpoint,
    /// event and type, however often the event is handled.
    pub event_id: EventId,
    /// What it reports.
    pub event_type: VendorEvent,
    /// The JSON body, exactly as sent and signed.
    pub body: String,
    /// The trace context of the work that caused it, sent as `traceparent`.
    pub traceparent: Option<String>,
    /// Where it is.
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempts: u32,
    /// When it may next be attempted (pending), or the lease of the worker
    /// attempting it.
    pub next_attempt_at: Timestamp,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When it was queued.
    pub created_at: Timestamp,
    /// When the endpoint accepted it.
    pub delivered_at: Option<Timestamp>,
}

/// The outcome of an attempt (or a deferral) of one delivery, as stored by
/// [`WebhookRepository::record`](super::WebhookRepository::record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryUpdate {
    /// Which delivery.
    pub id: WebhookDeliveryId,
    /// Its new status.
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempts: u32,
    /// When it may next be attempted.
    pub next_attempt_at: Timestamp,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When the endpoint accepted it.
    pub delivered_at: Option<Timestamp>,
}

impl DeliveryUpdate {
    /// `delivery` left as it is but for `next_attempt_at`: handed back
    /// unattempted (its endpoint's breaker is open, or its rate is spent).
    pub fn deferred(delivery: &WebhookDelivery, until: Timestamp) -> Self {
        Self {
            id: delivery.id,
            status: DeliveryStatus::Pending,
            attempts: delivery.attempts,
            next_attempt_at: until,
            last_error: delivery.last_error.clone(),
            delivered_at: None,
        }
    }
}
