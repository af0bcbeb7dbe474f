//! [`Worker`]: the outbox relay loop and the consumer loops as tasks, with
//! the single steps they repeat ([`Worker::relay_once`],
//! [`Worker::process_one`]) exposed for tests.
//!
//! # Latency
//! Both loops go straight on while they find work and wait only when they
//! found none: the relay sleeps `idle_poll`; a consumer waits for the bus
//! (the dispatcher's `wait`) and, if that returned sooner, for the rest of
//! `idle_poll` or until the relay of this worker publishes, whichever comes
//! first. So within one process (`bazaar serve`, or a `bazaar worker` that
//! relays) an idle consumer picks an event up as soon as it is published,
//! and the pickup delay of an idle pipeline is bounded by the relay's
//! `idle_poll`.
//!
//! # Failures
//! A step that fails (store or bus down; handler failures are not errors,
//! the dispatcher retries and dead-letters them) is logged and the loop
//! backs off with the resilience kit's exponential backoff (100 ms doubling
//! to 10 s, equal jitter), resetting on the next success. A loop that
//! panics is logged and restarted. Nothing stops the loops but shutdown.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bazaar_core::Result;
use bazaar_core::events::{Outcome, Relay};
use bazaar_core::marketplace::Marketplace;
use bazaar_core::resilience::clock::ThreadRngJitter;
use bazaar_core::resilience::retry::{Backoff, Jitter};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use crate::config::WorkerConfig;

/// The event worker over one [`Marketplace`]. Clones share the loops' state.
#[derive(Clone)]
pub struct Worker {
    inner: Arc<Inner>,
}

struct Inner {
    market: Arc<Marketplace>,
    config: WorkerConfig,
    relay: Relay,
    /// Woken after every relay step that published something.
    published: Notify,
    backoff: Backoff,
}

impl fmt::Debug for Worker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Worker").field("config", &self.inner.config).finish_non_exhaustive()
    }
}

/// How long a loop that ended unexpectedly (a panic) waits before it runs again.
const RESTART_PAUSE: Duration = Duration::from_millis(500);

/// Which loop a task runs, so a crashed one can be restarted as what it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Relay,
    Consumer(usize),
    Webhooks,
}

impl Worker {
    /// A worker over `market` (its outbox, bus, inbox, dead letters and
    /// handlers). Out-of-range settings are raised to their minimum (see
    /// [`WorkerConfig`]).
    pub fn new(market: Arc<Marketplace>, config: WorkerConfig) -> Self {
        crate::metrics::describe();
        let config = config.normalized();
        // The marketplace's relay with this worker's lease, reporting its lag.
        let relay = market
            .relay
            .clone()
            .with_lease(config.relay_lease)
            .observe_lag(|lag| crate::metrics::relay_lag(lag.as_secs_f64()));
        let backoff =
            Backoff::exponential(Duration::from_millis(100), 2.0, Duration::from_secs(10)).with_jitter(Jitter::Equal);
        Self { inner: Arc::new(Inner { market, config, relay, published: Notify::new(), backoff }) }
    }

    /// The settings in force.
    pub fn config(&self) -> &WorkerConfig {
        &self.inner.config
    }

    /// The marketplace the worker runs on.
    pub fn market(&self) -> &Arc<Marketplace> {
        &self.inner.market
    }

    /// One relay step: claims up to `relay_batch` outbox entries, publishes
    /// them and marks them published; returns how many (0: the outbox had
    /// nothing claimable).
    ///
    /// # Errors
    /// The outbox's or the bus's error; the batch is released for a retry.
    pub async fn relay_once(&self) -> Result<usize> {
        self.inner.relay_once().await
    }

    /// One dispatcher step on the worker's group: takes the next due
    /// delivery, runs the handlers and acks, nacks or dead-letters it.
    ///
    /// # Errors
    /// Only the bus's or the dead-letter store's own failures.
    pub async fn process_one(&self) -> Result<Outcome> {
        self.inner.process_one().await
    }

    /// Runs the relay loop (if enabled) and the consumer loops as tasks until
    /// `shutdown` completes, then lets each loop finish the step it is in and
    /// returns. Steps that fail are logged and retried with backoff; a loop
    /// that panics is logged and restarted.
    pub async fn run(&self, shutdown: impl Future<Output = ()> + Send) {
        let config = &self.inner.config;
        if !config.relay && config.consumers == 0 {
            tracing::warn!("worker started with neither the relay nor consumers: nothing to do");
        }
        let webhooks = config.webhooks && self.inner.market.webhook_deliverer.is_some();
        tracing::info!(
            relay = config.relay,
            consumers = config.consumers,
            webhooks,
            group = config.group.as_str(),
            idle_poll_ms = config.idle_poll.as_millis() as u64,
            "worker started"
        );
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let mut roles = HashMap::new();
        let roles_wanted = config
            .relay
            .then_some(Role::Relay)
            .into_iter()
            .chain((0..config.consumers).map(Role::Consumer))
            .chain(webhooks.then_some(Role::Webhooks));
        for role in roles_wanted {
            let handle = tasks.spawn(self.inner.clone().run_loop(role, stop_rx.clone(), Duration::ZERO));
            roles.insert(handle.id(), role);
        }
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                Some(joined) = tasks.join_next_with_id() => {
                    let (id, reason) = match joined {
                        Ok((id, ())) => (id, "returned".to_owned()),
                        Err(e) if e.is_panic() => (e.id(), format!("panicked: {}", panic_message(e.into_panic()))),
                        Err(e) => (e.id(), e.to_string()),
                    };
                    let Some(role) = roles.remove(&id) else { continue };
                    tracing::error!(?role, reason, "worker loop ended unexpectedly; restarting it");
                    // After a pause, so a loop that panics at once every time
                    // cannot spin the CPU.
                    let handle = tasks.spawn(self.inner.clone().run_loop(role, stop_rx.clone(), RESTART_PAUSE));
                    roles.insert(handle.id(), role);
                }
            }
        }
        tracing::info!("worker stopping; finishing the steps in progress");
        // Receivers are held by the tasks; a send error only means none are left.
        let _ = stop_tx.send(true);
        while let Some(joined) = tasks.join_next().await {
            if let Err(e) = joined {
                tracing::error!(error = %e, "worker loop failed while stopping");
            }
        }
        tracing::info!("worker stopped");
    }
}

impl Inner {
    async fn relay_once(&self) -> Result<usize> {
        let published = self.relay.relay_once(self.config.relay_batch).await?;
        crate::metrics::published(published);
        if published > 0 {
            self.published.notify_waiters();
        }
        Ok(published)
    }

    async fn process_one(&self) -> Result<Outcome> {
        let (outcome, event_type) = self.market.dispatcher.process_next(&self.config.group).await?;
        crate::metrics::outcome(&outcome, event_type);
        Ok(outcome)
    }

    /// One step of a consumer loop: up to `batch` deliveries, settled
    /// together; how many it took.
    async fn process_batch(&self) -> Result<usize> {
        let settled = self.market.dispatcher.process_batch(&self.config.group, self.config.batch).await?;
        for (outcome, event_type) in &settled {
            crate::metrics::outcome(outcome, Some(*event_type));
        }
        Ok(settled.len())
    }

    async fn run_loop(self: Arc<Self>, role: Role, mut stop: watch::Receiver<bool>, pause: Duration) {
        if !pause.is_zero() {
            pause_or_stop(pause, &mut stop).await;
        }
        match role {
            Role::Relay => self.relay_loop(stop).await,
            Role::Consumer(n) => self.consumer_loop(n, stop).await,
            Role::Webhooks => self.webhook_loop(stop).await,
        }
    }

    /// Sends due vendor webhook deliveries: at once again while rounds find
    /// work, else after one poll. Failed deliveries are the deliverer's
    /// (retried with backoff, then dead); a failed round (the store) is
    /// retried with this loop's backoff.
    async fn webhook_loop(&self, mut stop: watch::Receiver<bool>) {
        let Some(deliverer) = self.market.webhook_deliverer.clone() else { return };
        let mut failures = 0u32;
        while !*stop.borrow() {
            let pause = match deliverer.run_once().await {
                Ok(round) => {
                    failures = 0;
                    crate::metrics::webhook_round(&round);
                    if round.claimed > round.deferred { Duration::ZERO } else { self.config.webhook_poll }
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    let delay = self.backoff.delay(failures - 1, None, &ThreadRngJitter);
                    tracing::warn!(error = %e, failures, delay_ms = delay.as_millis() as u64, "webhook delivery round failed");
                    delay
                }
            };
            if !pause.is_zero() {
                pause_or_stop(pause, &mut stop).await;
            }
        }
    }

    async fn relay_loop(&self, mut stop: watch::Receiver<bool>) {
        let mut failures = 0u32;
        while !*stop.borrow() {
            let pause = match self.relay_once().await {
                Ok(n) => {
                    failures = 0;
                    // Busy: claim again at once. Idle: the next commit is
                    // picked up within one idle poll.
                    if n > 0 { Duration::ZERO } else { self.config.idle_poll }
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    let delay = self.backoff.delay(failures - 1, None, &ThreadRngJitter);
                    tracing::warn!(error = %e, failures, delay_ms = delay.as_millis() as u64, "relay step failed");
                    delay
                }
            };
            if !pause.is_zero() {
                pause_or_stop(pause, &mut stop).await;
            }
        }
    }

    async fn consumer_loop(&self, index: usize, mut stop: watch::Receiver<bool>) {
        let mut failures = 0u32;
        while !*stop.borrow() {
            // Registered before the step so a publish during it is not
            // missed (`notify_waiters` only wakes registered waiters).
            let published = self.published.notified();
            let mut published = std::pin::pin!(published);
            published.as_mut().enable();
            let started = tokio::time::Instant::now();
            match self.process_batch().await {
                Ok(0) => {
                    failures = 0;
                    // A bus that blocked for `wait` already waited; one that
                    // answered at once (wait 0, or it cannot block) must not
                    // be asked again in a tight loop.
                    let rest = self.config.idle_poll.saturating_sub(started.elapsed());
                    if !rest.is_zero() {
                        tokio::select! {
                            () = published => {}
                            () = pause_or_stop(rest, &mut stop) => {}
                        }
                    }
                }
                Ok(_) => failures = 0,
                Err(e) => {
                    failures = failures.saturating_add(1);
                    let delay = self.backoff.delay(failures - 1, None, &ThreadRngJitter);
                    tracing::warn!(
                        consumer = index, error = %e, failures, delay_ms = delay.as_millis() as u64,
                        "consumer step failed"
                    );
                    pause_or_stop(delay, &mut stop).await;
                }
            }
        }
    }
}

/// The text of a panic payload (`panic!` gives a `&str` or a `String`).
fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(payload) => payload.downcast_ref::<&str>().map_or_else(|| "non-text panic".to_owned(), |s| (*s).to_owned()),
    }
}

/// Sleeps `pause`, or less if the stop signal comes first.
async fn pause_or_stop(pause: Duration, stop: &mut watch::Receiver<bool>) {
    tokio::select! {
        () = tokio::time::sleep(pause) => {}
        // An error means the sender is gone: stopping as well.
        _ = stop.wait_for(|stopped| *stopped) => {}
    }
}
