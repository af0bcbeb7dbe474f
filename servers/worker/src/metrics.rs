//! The worker's Prometheus metrics, recorded through the `metrics` facade.
//!
//! Whatever recorder the process installed receives them: in `bazaar serve`
//! the HTTP server's (so they show on its `/metrics`), in `bazaar worker`
//! the one [`prometheus`] installs. With no recorder, recording is a no-op.

use std::sync::Once;

use bazaar_core::events::{EventType, Outcome};
use metrics::{Unit, counter, describe_counter, describe_gauge, gauge};
use metrics_exporter_prometheus::PrometheusHandle;

/// Events the relay published to the bus.
pub const EVENTS_PUBLISHED: &str = "bazaar_events_published_total";
/// Deliveries every interested handler completed (label `type` when the
/// event type is known).
pub const EVENTS_HANDLED: &str = "bazaar_events_handled_total";
/// Deliveries a handler failed and that were nacked for a retry.
pub const EVENTS_RETRIED: &str = "bazaar_events_retried_total";
/// Events parked in the dead-letter store.
pub const EVENTS_DEAD_LETTERED: &str = "bazaar_events_dead_lettered_total";
/// The age of the oldest outbox entry of the last claim (0 when the outbox
/// was empty): how far the relay trails the commits.
pub const RELAY_LAG: &str = "bazaar_relay_lag_seconds";

/// Vendor webhook attempts, by `outcome`: `delivered`, `retrying` (failed,
/// queued again with backoff) or `dead` (failed its last attempt).
pub const WEBHOOK_ATTEMPTS: &str = "bazaar_webhook_attempts_total";

/// The process-wide Prometheus handle (shared with the HTTP server and every
/// other server in the process; see [`bazaar_telemetry::prometheus`]).
pub fn prometheus() -> PrometheusHandle {
    bazaar_telemetry::prometheus()
}

/// Registers the metrics' help texts with the current recorder, once.
pub(crate) fn describe() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        describe_counter!(EVENTS_PUBLISHED, Unit::Count, "Events the outbox relay published to the bus.");
        describe_counter!(EVENTS_HANDLED, Unit::Count, "Event deliveries every interested handler completed.");
        describe_counter!(EVENTS_RETRIED, Unit::Count, "Event deliveries a handler failed, nacked for a retry.");
        describe_counter!(EVENTS_DEAD_LETTERED, Unit::Count, "Events parked in the dead-letter store.");
        describe_counter!(WEBHOOK_ATTEMPTS, Unit::Count, "Vendor webhook attempts, by outcome.");
        describe_gauge!(RELAY_LAG, Unit::Seconds, "Age of the oldest outbox entry at the relay's last claim.");
    });
}

pub(crate) fn published(n: usize) {
    if n > 0 {
        counter!(EVENTS_PUBLISHED).increment(n as u64);
    }
}

pub(crate) fn relay_lag(seconds: f64) {
    gauge!(RELAY_LAG).set(seconds);
}

/// Counts one webhook delivery round's attempts.
pub(crate) fn webhook_round(round: &bazaar_core::webhooks::Round) {
    for (outcome, n) in [("delivered", round.delivered), ("retrying", round.retrying), ("dead", round.dead)] {
        if n > 0 {
            counter!(WEBHOOK_ATTEMPTS, "outcome" => outcome).increment(n as u64);
        }
    }
}

/// Counts one dispatcher step; `event_type` labels `handled` when known.
pub(crate) fn outcome(outcome: &Outcome, event_type: Option<EventType>) {
    match outcome {
        Outcome::Processed => match event_type {
            Some(t) => counter!(EVENTS_HANDLED, "type" => t.as_str()).increment(1),
            None => counter!(EVENTS_HANDLED).increment(1),
        },
        Outcome::Retrying { .. } => counter!(EVENTS_RETRIED).increment(1),
        Outcome::DeadLettered(_) => counter!(EVENTS_DEAD_LETTERED).increment(1),
        Outcome::Empty => {}
    }
}
