//! The event envelope and the closed set of event types.

use std::fmt;
use std::str::FromStr;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::ids::EventId;

use super::TraceContext;

/// Every event type the marketplace emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum EventType {
    /// A user signed up.
    #[serde(rename = "user.registered")]
    UserRegistered,
    /// A vendor submitted a product for review.
    #[serde(rename = "product.submitted")]
    ProductSubmitted,
    /// An admin approved a product.
    #[serde(rename = "product.approved")]
    ProductApproved,
    /// An admin rejected a product.
    #[serde(rename = "product.rejected")]
    ProductRejected,
    /// An admin suspended a product.
    #[serde(rename = "product.suspended")]
    ProductSuspended,
    /// A vendor edited a product's listing.
    #[serde(rename = "product.updated")]
    ProductUpdated,
    /// A buyer reviewed a product (its rating stats changed).
    #[serde(rename = "product.reviewed")]
    ProductReviewed,
    /// A buyer took a download of a product's file (its download count
    /// changed).
    #[serde(rename = "product.downloaded")]
    ProductDownloaded,
    /// A buyer placed an order.
    #[serde(rename = "order.placed")]
    OrderPlaced,
    /// A payment for an order succeeded.
    #[serde(rename = "payment.succeeded")]
    PaymentSucceeded,
    /// A payment attempt failed.
    #[serde(rename = "payment.failed")]
    PaymentFailed,
    /// All licenses of an order were issued.
    #[serde(rename = "order.fulfilled")]
    OrderFulfilled,
    /// An order was refunded.
    #[serde(rename = "order.refunded")]
    OrderRefunded,
    /// A license was issued.
    #[serde(rename = "license.issued")]
    LicenseIssued,
    /// A license was revoked.
    #[serde(rename = "license.revoked")]
    LicenseRevoked,
    /// A notification was stored for a user (its in-app record, as stored
    /// and sent), for the live notification streams of every process.
    #[serde(rename = "notification.created")]
    NotificationCreated,
}

impl EventType {
    /// Every type, in a stable order.
    pub const ALL: [EventType; 16] = [
        Self::UserRegistered,
        Self::ProductSubmitted,
        Self::ProductApproved,
        Self::ProductRejected,
        Self::ProductSuspended,
        Self::ProductUpdated,
        Self::ProductReviewed,
        Self::ProductDownloaded,
        Self::OrderPlaced,
        Self::PaymentSucceeded,
        Self::PaymentFailed,
        Self::OrderFulfilled,
        Self::OrderRefunded,
        Self::LicenseIssued,
        Self::LicenseRevoked,
        Self::NotificationCreated,
    ];

    /// The dotted wire name, e.g. `payment.succeeded`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UserRegistered => "user.registered",
            Self::ProductSubmitted => "product.submitted",
            Self::ProductApproved => "product.approved",
            Self::ProductRejected => "product.rejected",
            Self::ProductSuspended => "product.suspended",
            Self::ProductUpdated => "product.updated",
            Self::ProductReviewed => "product.reviewed",
            Self::ProductDownloaded => "product.downloaded",
            Self::OrderPlaced => "order.placed",
            Self::PaymentSucceeded => "payment.succeeded",
            Self::PaymentFailed => "payment.failed",
            Self::OrderFulfilled => "order.fulfilled",
            Self::OrderRefunded => "order.refunded",
            Self::LicenseIssued => "license.issued",
            Self::LicenseRevoked => "license.revoked",
            Self::NotificationCreated => "notification.created",
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventType {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| Error::invalid("type", format!("unknown event type {s:?}")))
    }
}

/// A typed event payload; ties a data struct to its [`EventType`].
pub trait EventPayload: Serialize + DeserializeOwned {
    /// The type this payload belongs to.
    const TYPE: EventType;
}

/// A domain event, serialized as a CloudEvents 1.0 JSON envelope
/// (`specversion`, `id`, `source`, `type`, `time`, `data`, plus the
/// `correlationid` / `causationid` extensions and the distributed-tracing
/// extension's `traceparent` / `tracestate`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// CloudEvents spec version; always `"1.0"`.
    #[serde(default = "spec_version")]
    pub specversion: String,
    /// Unique id; consumers deduplicate on it.
    pub id: EventId,
    /// The producer (`"bazaar"`).
    #[serde(default = "default_source")]
    pub source: String,
    /// The event type.
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// When the change happened.
    #[serde(rename = "time")]
    pub occurred_at: Timestamp,
    /// The request or flow this event belongs to; copied along a chain.
    #[serde(rename = "correlationid", default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<Uuid>,
    /// The event that caused this one, if any.
    #[serde(rename = "causationid", default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<EventId>,
    /// The W3C trace context of the work that created the event (the
    /// CloudEvents distributed-tracing extension); set from
    /// [`TraceContext::current`] when the event is created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// The vendor trace state that goes with `traceparent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracestate: Option<String>,
    /// The content type of `data`.
    #[serde(default = "json_content_type")]
    pub datacontenttype: String,
    /// The payload; decode with [`Event::decode`].
    pub data: serde_json::Value,
}

fn spec_version() -> String {
    "1.0".into()
}
fn default_source() -> String {
    "bazaar".into()
}
fn json_content_type() -> String {
    "application/json".into()
}

impl Event {
    /// A new event carrying `payload`, occurring at `at`.
    ///
    /// # Panics
    /// Never for the payload types of this crate: they serialize infallibly.
    pub fn new<P: EventPayload>(payload: &P, at: Timestamp) -> Self {
        let trace = TraceContext::current();
        Self {
            specversion: spec_version(),
            id: EventId::new(),
            source: default_source(),
            event_type: P::TYPE,
            occurred_at: at,
            correlation_id: None,
            causation_id: None,
            traceparent: trace.as_ref().map(|t| t.traceparent().to_owned()),
            tracestate: trace.and_then(|t| t.tracestate().map(str::to_owned)),
            datacontenttype: json_content_type(),
            data: serde_json::to_value(payload).expect("event payloads serialize"),
        }
    }

    /// Sets the correlation id.
    pub fn correlated(mut self, correlation_id: Option<Uuid>) -> Self {
        self.correlation_id = correlation_id;
        self
    }

    /// Marks this event as caused by `cause`, inheriting its correlation id,
    /// and its trace unless this event already belongs to the same one
    /// (created while handling `cause`): a handler given a batch of events
    /// of several traces keeps each effect in its cause's trace.
    pub fn caused_by(mut self, cause: &Event) -> Self {
        self.causation_id = Some(cause.id);
        self.correlation_id = cause.correlation_id.or(Some(cause.id.as_uuid()));
        if let Some(cause_trace) = cause.trace_context()
            && self.trace_context().is_none_or(|own| own.trace_id() != cause_trace.trace_id())
        {
            self.traceparent = Some(cause_trace.traceparent().to_owned());
            self.tracestate = cause_trace.tracestate().map(str::to_owned);
        }
        self
    }

    /// The trace context the event carries, when it carries a valid one.
    pub fn trace_context(&self) -> Option<TraceContext> {
        TraceContext::parse(self.traceparent.as_deref()?, self.tracestate.as_deref())
    }

    /// Decodes the payload as `P`.
    ///
    /// # Errors
    /// [`Error::Validation`] when the type differs or the data doesn't fit.
    pub fn decode<P: EventPayload>(&self) -> Result<P> {
        if self.event_type != P::TYPE {
            return Err(Error::invalid("type", format!("expected {} event, got {}", P::TYPE, self.event_type)));
        }
        serde_json::from_value(self.data.clone())
            .map_err(|e| Error::invalid("data", format!("malformed {} payload: {e}", self.event_type)))
    }

    /// The envelope as JSON bytes.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("events serialize")
    }

    /// Parses an envelope from JSON bytes.
    ///
    /// # Errors
    /// [`Error::Validation`] when the bytes are not an event.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        serde_json::from_slice(bytes).map_err(|e| Error::invalid("event", e.to_string()))
    }
}
