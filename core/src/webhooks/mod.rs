//! Vendor webhooks: vendors register HTTPS endpoints for their sales events
//! (`order.paid`, `license.issued`, `order.refunded`), which is what an n8n
//! or Zapier workflow listens for.
//!
//! - [`WebhookService`] registers, changes and deletes endpoints, rotates
//!   their signing secrets, lists deliveries and replays dead ones.
//! - The `SalesWebhooks` event handler (a workflow, above this module)
//!   queues one [`WebhookDelivery`] per subscribed endpoint when a sale
//!   happens; a redelivered event queues nothing new.
//! - [`WebhookDeliverer`] POSTs queued deliveries through a
//!   [`WebhookTransport`]: signed like the inbound payment webhooks
//!   (`bazaar-signature: t=…,v1=…`, one `v1` per live secret while one is
//!   rotated out), at least once, in order per endpoint, with a breaker,
//!   a rate limit and a deadline per endpoint, exponential backoff, and a
//!   dead state that [`WebhookService::replay`] undoes.
//!
//! # Example
//! A receiver checks a delivery with the same function the marketplace uses
//! for the payment provider's webhooks:
//! ```
//! use bazaar_core::payments::webhook::{sign_all, verify, DEFAULT_TOLERANCE};
//! let secret = b"whsec_from_the_registration";
//! let body = br#"{"id":"0192","type":"order.paid","data":{}}"#;
//! let header = sign_all(&[secret], 1_700_000_000, body); // what arrives as bazaar-signature
//! let now = chrono::DateTime::from_timestamp(1_700_000_030, 0).unwrap();
//! assert!(verify(&header, body, &[secret.to_vec()], now, DEFAULT_TOLERANCE).is_ok());
//! ```

mod delivery;
mod model;
mod ports;
mod service;

pub use delivery::{
    ATTEMPT_HEADER, DeliveryTerms, EVENT_ID_HEADER, EVENT_TYPE_HEADER, Round, SIGNATURE_HEADER, WebhookDeliverer,
};
pub use model::{DeliveryStatus, DeliveryUpdate, EndpointSecret, VendorEvent, WebhookDelivery, WebhookEndpoint};
#[cfg(any(test, feature = "mocks"))]
pub use ports::{MockWebhookRepository, MockWebhookTransport};
pub use ports::{OutboundWebhook, WebhookRepository, WebhookTransport};
pub use service::{
    EndpointChange, EndpointPolicy, MAX_URL_LEN, NewEndpoint, Sale, WebhookService, check_events, check_url, is_local,
};
