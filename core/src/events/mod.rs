//! Domain events: the CloudEvents-shaped envelope, the closed set of event
//! types with their typed payloads, and the ports that move them (outbox,
//! publisher, inbox, dead letters) plus the handlers that react to them.
//!
//! Delivery is at-least-once. A state change and its events are committed in
//! one unit of work (see the crate docs); a relay publishes the outbox; each
//! handler is idempotent and records processed event ids in an inbox.

mod envelope;
mod payloads;

pub use envelope::{Event, EventPayload, EventType};
pub use payloads::*;
