//! The webhook ports: where endpoints and deliveries are stored, and how a
//! delivery is POSTed.

use async_trait::async_trait;

use super::{DeliveryStatus, DeliveryUpdate, WebhookDelivery, WebhookEndpoint};
use crate::clock::Timestamp;
use crate::error::Result;
use crate::ids::{UserId, WebhookDeliveryId, WebhookEndpointId};
use crate::page::{Page, PageRequest};

/// Vendors' endpoints and the deliveries queued for them.
///
/// Deliveries are a queue per endpoint, in id order (ids are time-ordered):
/// [`claim_due`](Self::claim_due) never hands out a delivery while an
/// earlier pending one of the same endpoint is waiting, so a receiver sees
/// an endpoint's events in the order they were queued unless one of them
/// went dead and was replayed.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait WebhookRepository: Send + Sync {
    /// Stores a new endpoint.
    ///
    /// MUST return [`crate::Error::Conflict`] (`Duplicate`) when its id exists.
    async fn insert_endpoint(&self, endpoint: &WebhookEndpoint) -> Result<()>;

    /// The endpoint with `id`, if any.
    async fn get_endpoint(&self, id: WebhookEndpointId) -> Result<Option<WebhookEndpoint>>;

    /// `vendor`'s endpoints, oldest first.
    async fn list_endpoints(&self, vendor: UserId) -> Result<Vec<WebhookEndpoint>>;

    /// Replaces the URL, events, secrets and `updated_at` of `endpoint`.
    ///
    /// MUST return [`crate::Error::NotFound`] for an unknown id.
    async fn update_endpoint(&self, endpoint: &WebhookEndpoint) -> Result<()>;

    /// Deletes the endpoint and every delivery queued for it; whether it existed.
    async fn delete_endpoint(&self, id: WebhookEndpointId) -> Result<bool>;

    /// Queues `deliveries`, skipping each whose endpoint, event id and type
    /// already have one (a redelivered event queues nothing new) and each
    /// whose endpoint does not exist (deleted meanwhile); returns how many
    /// were stored.
    ///
    /// MUST be atomic per (endpoint, event, type): concurrent queuing of
    /// one stores exactly one.
    async fn enqueue(&self, deliveries: &[WebhookDelivery]) -> Result<u64>;

    /// Takes up to `limit` pending deliveries due at `now`, oldest first,
    /// and sets their `next_attempt_at` to `lease_until` so no other caller
    /// takes them until the lease ends (an attempt that crashes is retried
    /// then).
    ///
    /// MUST skip a delivery while an earlier (by id) pending delivery of the
    /// same endpoint is not due, and MUST hand each delivery to one caller
    /// per lease when called concurrently.
    async fn claim_due(&self, now: Timestamp, limit: u32, lease_until: Timestamp) -> Result<Vec<WebhookDelivery>>;

    /// Stores the outcome of each of `updates`. Updates of unknown ids
    /// (their endpoint was deleted meanwhile) are ignored.
    async fn record(&self, updates: &[DeliveryUpdate]) -> Result<()>;

    /// The delivery with `id`, if any.
    async fn get_delivery(&self, id: WebhookDeliveryId) -> Result<Option<WebhookDelivery>>;

    /// The deliveries of `endpoint`, newest first, only those with `status`
    /// when given, one page of them with the total.
    async fn list_deliveries(
        &self,
        endpoint: WebhookEndpointId,
        status: Option<DeliveryStatus>,
        page: PageRequest,
    ) -> Result<Page<WebhookDelivery>>;

    /// Puts dead deliveries of `endpoint` (only `delivery` when given) back
    /// in the queue: pending, no attempts, due at `now`, `last_error` kept
    /// until the next attempt. Returns how many.
    async fn replay(
        &self,
        endpoint: WebhookEndpointId,
        delivery: Option<WebhookDeliveryId>,
        now: Timestamp,
    ) -> Result<u64>;
}

/// One signed POST, ready to send.
#[derive(Clone, PartialEq, Eq)]
pub struct OutboundWebhook {
    /// The endpoint's URL.
    pub url: String,
    /// Headers besides `content-type: application/json`.
    pub headers: Vec<(&'static str, String)>,
    /// The JSON body.
    pub body: String,
}

impl std::fmt::Debug for OutboundWebhook {
    // Headers carry signatures; the URL may carry a token of the vendor's.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundWebhook").field("bytes", &self.body.len()).finish_non_exhaustive()
    }
}

/// Sends a webhook over HTTP.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait WebhookTransport: Send + Sync {
    /// POSTs `request` and returns the response's status code, whatever it
    /// is; the caller judges it.
    ///
    /// MUST return [`crate::Error::Unavailable`] when no status came back
    /// (connection refused, TLS failure, timeout), and MUST NOT follow
    /// redirects (a 3xx is the endpoint's answer).
    async fn post(&self, request: &OutboundWebhook) -> Result<u16>;
}
