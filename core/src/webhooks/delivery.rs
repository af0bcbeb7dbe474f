//! [`WebhookDeliverer`]: takes due deliveries from the queue and POSTs
//! them, signed, through a breaker, a rate limit and a deadline per
//! endpoint, retrying with backoff until they are accepted or dead.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::{
    DeliveryStatus, DeliveryUpdate, OutboundWebhook, WebhookDelivery, WebhookEndpoint, WebhookRepository,
    WebhookTransport,
};
use crate::clock::{Clock, Timestamp};
use crate::error::Result;
use crate::ids::WebhookEndpointId;
use crate::resilience::circuit_breaker::{ConsecutiveBreaker, ConsecutiveConfig, Outcome};
use crate::resilience::clock::{JitterSource, MonotonicClock, SystemClock, ThreadRngJitter};
use crate::resilience::rate_limit::{KeyedRateLimiter, Quota};
use crate::resilience::retry::{Backoff, Jitter};

/// The signature header: `t=<unix>,v1=<hex>[,v1=<hex>…]`, HMAC-SHA256 over
/// `"{t}.{body}"` with each live secret of the endpoint, verified by
/// [`crate::payments::webhook::verify`].
pub const SIGNATURE_HEADER: &str = "bazaar-signature";
/// The delivery id, the same on every attempt: receivers deduplicate on it.
pub const EVENT_ID_HEADER: &str = "bazaar-event-id";
/// The event type (`order.paid`, …).
pub const EVENT_TYPE_HEADER: &str = "bazaar-event-type";
/// Which attempt this is, from 1.
pub const ATTEMPT_HEADER: &str = "bazaar-attempt";

/// How deliveries are attempted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeliveryTerms {
    /// Attempts before a delivery is dead (default 10: with the default
    /// backoff the nine waits add up to 21–43 minutes).
    pub max_attempts: u32,
    /// The wait after the n-th failed attempt (default 5 s doubling to at
    /// most 1 h, with equal jitter).
    pub backoff: Backoff,
    /// The deadline of one POST (default 10 s).
    pub timeout: Duration,
    /// How long a claimed delivery stays with this deliverer before another
    /// may take it (default 5 min). A round stops sending when half of it
    /// has passed, so a slow endpoint cannot outlive the lease.
    pub lease: Duration,
    /// Deliveries claimed per round (default 64).
    pub batch: u32,
    /// Requests per endpoint (default 10 per second, bursts of 10).
    pub rate: Quota,
    /// When an endpoint's breaker opens and how long it rests (default: 5
    /// failures in a row open it for 30 s; one good probe closes it).
    pub breaker: ConsecutiveConfig,
}

impl Default for DeliveryTerms {
    fn default() -> Self {
        let ten = std::num::NonZeroU32::new(10).expect("non-zero");
        Self {
            max_attempts: 10,
            backoff: Backoff::exponential(Duration::from_secs(5), 2.0, Duration::from_secs(3_600))
                .with_jitter(Jitter::Equal),
            timeout: Duration::from_secs(10),
            lease: Duration::from_secs(300),
            batch: 64,
            rate: Quota::per_second(ten).allow_burst(ten),
            breaker: ConsecutiveConfig {
                failure_threshold: 5,
                success_threshold: 1,
                open_for: Duration::from_secs(30),
                minimum_volume: 5,
            },
        }
    }
}

/// What one [`WebhookDeliverer::run_once`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Round {
    /// Deliveries taken from the queue.
    pub claimed: usize,
    /// Accepted by their endpoint (2xx).
    pub delivered: usize,
    /// Failed and queued again with backoff.
    pub retrying: usize,
    /// Failed their last attempt.
    pub dead: usize,
    /// Handed back unattempted: breaker open, rate spent, an earlier
    /// delivery of the endpoint failed, or the round ran out of lease.
    pub deferred: usize,
}

impl Round {
    fn add(&mut self, other: Round) {
        self.claimed += other.claimed;
        self.delivered += other.delivered;
        self.retrying += other.retrying;
        self.dead += other.dead;
        self.deferred += other.deferred;
    }
}

/// Delivers queued webhooks. One per process is enough; several processes
/// share the queue through [`WebhookRepository::claim_due`]'s leases. Each
/// keeps its own breakers and rate limits, per endpoint.
pub struct WebhookDeliverer {
    repo: Arc<dyn WebhookRepository>,
    transport: Arc<dyn WebhookTransport>,
    clock: Arc<dyn Clock>,
    monotonic: Arc<dyn MonotonicClock>,
    jitter: Arc<dyn JitterSource>,
    terms: DeliveryTerms,
    breakers: Mutex<HashMap<WebhookEndpointId, Arc<ConsecutiveBreaker>>>,
    limits: KeyedRateLimiter<WebhookEndpointId>,
}

impl fmt::Debug for WebhookDeliverer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookDeliverer").field("terms", &self.terms).finish_non_exhaustive()
    }
}

impl WebhookDeliverer {
    /// A deliverer over `repo`, POSTing through `transport`.
    pub fn new(
        repo: Arc<dyn WebhookRepository>,
        transport: Arc<dyn WebhookTransport>,
        clock: Arc<dyn Clock>,
        terms: DeliveryTerms,
    ) -> Self {
        Self::with_clocks(repo, transport, clock, Arc::new(SystemClock::new()), terms)
    }

    /// As [`new`](Self::new), with the breakers and rate limits on
    /// `monotonic` (a test's manual clock).
    pub fn with_clocks(
        repo: Arc<dyn WebhookRepository>,
        transport: Arc<dyn WebhookTransport>,
        clock: Arc<dyn Clock>,
        monotonic: Arc<dyn MonotonicClock>,
        terms: DeliveryTerms,
    ) -> Self {
        Self {
            repo,
            transport,
            clock,
            limits: KeyedRateLimiter::with_clock(terms.rate, monotonic.clone()),
            monotonic,
            jitter: Arc::new(ThreadRngJitter),
            terms,
            breakers: Mutex::new(HashMap::new()),
        }
    }

    /// The same deliverer drawing backoff jitter from `jitter`.
    #[must_use]
    pub fn with_jitter(mut self, jitter: Arc<dyn JitterSource>) -> Self {
        self.jitter = jitter;
        self
    }

    /// How deliveries are attempted.
    pub fn terms(&self) -> &DeliveryTerms {
        &self.terms
    }

    /// The state of `endpoint`'s breaker in this process, if it has one yet.
    pub fn breaker_state(&self, endpoint: WebhookEndpointId) -> Option<crate::resilience::circuit_breaker::State> {
        self.breakers.lock().get(&endpoint).map(|b| b.state())
    }

    /// Claims one batch of due deliveries and attempts each: endpoints in
    /// parallel, each endpoint's deliveries one after another in queue
    /// order, stopping at its first failure so none overtakes it. Every
    /// outcome is stored before returning; a crash before that leaves the
    /// batch to be claimed again when its lease ends (at least once).
    ///
    /// # Errors
    /// What the store returns; a failed POST is an outcome, not an error.
    pub async fn run_once(&self) -> Result<Round> {
        let started = self.clock.now();
        let lease = chrono::Duration::from_std(self.terms.lease).unwrap_or(chrono::Duration::MAX);
        let claimed = self.repo.claim_due(started, self.terms.batch, started + lease).await?;
        if claimed.is_empty() {
            return Ok(Round::default());
        }
        let mut groups: Vec<(WebhookEndpointId, Vec<WebhookDelivery>)> = Vec::new();
        for delivery in claimed {
            match groups.iter_mut().find(|(id, _)| *id == delivery.endpoint_id) {
                Some((_, group)) => group.push(delivery),
                None => groups.push((delivery.endpoint_id, vec![delivery])),
            }
        }
        let outcomes = futures::future::join_all(
            groups.into_iter().map(|(endpoint, deliveries)| self.deliver_group(endpoint, deliveries, started)),
        )
        .await;
        let mut round = Round::default();
        let mut updates = Vec::new();
        for outcome in outcomes {
            let (group_round, group_updates) = outcome?;
            round.add(group_round);
            updates.extend(group_updates);
        }
        self.repo.record(&updates).await?;
        Ok(round)
    }

    async fn deliver_group(
        &self,
        endpoint_id: WebhookEndpointId,
        deliveries: Vec<WebhookDelivery>,
        started: Timestamp,
    ) -> Result<(Round, Vec<DeliveryUpdate>)> {
        let mut round = Round { claimed: deliveries.len(), ..Round::default() };
        // Deleted meanwhile: its deliveries went with it.
        let Some(endpoint) = self.repo.get_endpoint(endpoint_id).await? else {
            return Ok((round, Vec::new()));
        };
        let breaker = self.breaker(endpoint_id);
        let half_lease = self.terms.lease / 2;
        let mut updates = Vec::with_capacity(deliveries.len());
        // Where the round stops sending this endpoint, and until when the
        // deliveries from there on are handed back unattempted.
        let mut stop: Option<(usize, Timestamp)> = None;
        for (i, delivery) in deliveries.iter().enumerate() {
            let now = self.clock.now();
            let out_of_lease = (now - started).to_std().is_ok_and(|spent| spent >= half_lease);
            if out_of_lease {
                stop = Some((i, now));
                break;
            }
            if let Err(wait) = self.limits.check(&endpoint_id) {
                stop = Some((i, later(now, wait.wait_time())));
                break;
            }
            let Ok(permit) = breaker.try_acquire() else {
                stop = Some((i, later(now, self.terms.breaker.open_for)));
                break;
            };
            let attempt = delivery.attempts.saturating_add(1);
            let request = self.request(&endpoint, delivery, attempt, now);
            let failure = match tokio::time::timeout(self.terms.timeout, self.transport.post(&request)).await {
                Ok(Ok(status)) if (200..300).contains(&status) => None,
                Ok(Ok(status)) => Some(format!("the endpoint answered HTTP {status}")),
                Ok(Err(err)) => Some(err.to_string()),
                Err(_) => Some(format!("no answer within {} ms", self.terms.timeout.as_millis())),
            };
            let done = self.clock.now();
            let Some(why) = failure else {
                permit.record(Outcome::Success);
                round.delivered += 1;
                updates.push(DeliveryUpdate {
                    id: delivery.id,
                    status: DeliveryStatus::Delivered,
                    attempts: attempt,
                    next_attempt_at: done,
                    last_error: None,
                    delivered_at: Some(done),
                });
                continue;
            };
            permit.record(Outcome::Failure);
            tracing::warn!(endpoint = %endpoint_id, delivery = %delivery.id, attempt, error = %why, "webhook delivery failed");
            let dead = attempt >= self.terms.max_attempts;
            let next_attempt_at = if dead {
                round.dead += 1;
                done
            } else {
                round.retrying += 1;
                later(done, self.terms.backoff.delay(attempt - 1, None, self.jitter.as_ref()))
            };
            updates.push(DeliveryUpdate {
                id: delivery.id,
                status: if dead { DeliveryStatus::Dead } else { DeliveryStatus::Pending },
                attempts: attempt,
                next_attempt_at,
                last_error: Some(why),
                delivered_at: None,
            });
            // The rest wait behind this one (the queue keeps them back
            // while it is pending), so they are handed back due now.
            stop = Some((i + 1, done));
            break;
        }
        if let Some((from, until)) = stop {
            round.deferred += deliveries.len() - from;
            updates.extend(deliveries[from..].iter().map(|d| DeliveryUpdate::deferred(d, until)));
        }
        Ok((round, updates))
    }

    fn breaker(&self, endpoint: WebhookEndpointId) -> Arc<ConsecutiveBreaker> {
        self.breakers
            .lock()
            .entry(endpoint)
            .or_insert_with(|| {
                Arc::new(
                    ConsecutiveBreaker::new(format!("webhook {endpoint}"), self.terms.breaker)
                        .with_clock(self.monotonic.clone()),
                )
            })
            .clone()
    }

    fn request(
        &self,
        endpoint: &WebhookEndpoint,
        delivery: &WebhookDelivery,
        attempt: u32,
        now: Timestamp,
    ) -> OutboundWebhook {
        let secrets: Vec<&[u8]> = endpoint.signing_secrets(now).collect();
        let signature = crate::payments::webhook::sign_all(&secrets, now.timestamp(), delivery.body.as_bytes());
        let mut headers = vec![
            (SIGNATURE_HEADER, signature),
            (EVENT_ID_HEADER, delivery.id.to_string()),
            (EVENT_TYPE_HEADER, delivery.event_type.as_str().to_string()),
            (ATTEMPT_HEADER, attempt.to_string()),
        ];
        if let Some(traceparent) = &delivery.traceparent {
            headers.push(("traceparent", traceparent.clone()));
        }
        OutboundWebhook { url: endpoint.url.clone(), headers, body: delivery.body.clone() }
    }
}

/// `at` plus `wait`, saturating rather than overflowing.
fn later(at: Timestamp, wait: Duration) -> Timestamp {
    at + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX)
}
