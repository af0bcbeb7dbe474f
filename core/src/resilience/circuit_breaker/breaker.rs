//! The circuit breaker itself: admission, recording and transitions.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

use super::classify::{Classifier, DefaultClassifier, Outcome};
use super::config::CircuitBreakerConfig;
use super::events::{CircuitBreakerEvent, CircuitBreakerListener, EventHub};
use super::state::{Deadline, State, Word, deadline_tag, is_newer, pack_deadline, unpack_deadline};
use super::window::{Call, CountWindow, Rates, Recorded, TimeWindow, WindowSnapshot, new_window};
use crate::resilience::ResilienceError;
use crate::resilience::clock::{JitterSource, MonotonicClock, SystemClock, ThreadRngJitter};

/// A circuit breaker with Resilience4j's rules.
///
/// Admission in the closed state is one atomic load. Recording into a
/// count-based window is lock-free and O(1) (see the window module for what
/// a snapshot guarantees while records are in flight); time-based windows
/// and half-open tallies take a short lock. Every transition is one
/// compare-and-swap on a packed state word and publishes exactly one
/// [`CircuitBreakerEvent::StateTransition`]. Half-open admits exactly
/// [`permitted_calls_in_half_open`](CircuitBreakerConfig::permitted_calls_in_half_open)
/// probes at a time, whatever the concurrency; a [`Permit`] dropped without
/// a record gives its probe slot back, and a result recorded after the
/// breaker moved on (an older generation) is ignored.
///
/// Open moves to half-open lazily, on the first call after the wait.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use bazaar_core::resilience::circuit_breaker::{CircuitBreaker, CircuitBreakerConfig, Outcome};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let breaker = CircuitBreaker::new("catalog", CircuitBreakerConfig::default());
///
/// // The convenience wrapper times the call with the breaker's clock.
/// let answer: Result<u32, _> = breaker.call(|| async { Ok::<_, std::io::Error>(42) }).await;
/// assert_eq!(answer.unwrap(), 42);
///
/// // Or take a permit and record by hand.
/// let permit = breaker.try_acquire().expect("closed");
/// permit.record(Outcome::Success, Duration::from_millis(3));
/// assert_eq!(breaker.metrics().buffered_calls, 2);
/// # });
/// ```
pub struct CircuitBreaker {
    word: AtomicU64,
    deadline: AtomicU64,
    consecutive_opens: AtomicU32,
    not_permitted: AtomicU64,
    /// The lock-free window, for count-based configurations.
    count: Option<CountWindow>,
    recorder: Mutex<Recorder>,
    config: CircuitBreakerConfig,
    min_calls: u64,
    name: Arc<str>,
    clock: Arc<dyn MonotonicClock>,
    jitter: Arc<dyn JitterSource>,
    events: EventHub,
}

/// The counters that record under a lock: the time-based window (if that
/// is the configured kind) and the half-open tally. Count-based recording
/// in closed and metrics-only never takes this lock.
#[derive(Debug)]
struct Recorder {
    generation: u32,
    time: Option<TimeWindow>,
    half_open: WindowSnapshot,
}

impl Recorder {
    /// Catches up with a transition to `generation`: entering closed or
    /// metrics-only starts a fresh window, entering half-open a fresh tally.
    /// Open keeps the window that tripped it so metrics show why.
    fn sync(&mut self, generation: u32, state: State) {
        if !is_newer(generation, self.generation) {
            return;
        }
        self.generation = generation;
        match state {
            State::Closed | State::MetricsOnly => {
                if let Some(w) = &mut self.time {
                    w.clear();
                }
            }
            State::HalfOpen => self.half_open = WindowSnapshot::default(),
            State::Open | State::Disabled | State::ForcedOpen => {}
        }
    }
}

/// Who handed out a permit: the generation and state it was admitted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ticket {
    generation: u32,
    state: State,
}

impl Ticket {
    fn of(w: Word) -> Self {
        Self { generation: w.generation(), state: w.state() }
    }
}

/// A point-in-time view of a breaker's metrics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CircuitBreakerMetrics {
    /// The current state.
    pub state: State,
    /// Failure rate in percent, `None` until the minimum number of calls
    /// is buffered.
    pub failure_rate: Option<f32>,
    /// Slow-call rate in percent, `None` until the minimum number of calls
    /// is buffered.
    pub slow_call_rate: Option<f32>,
    /// Calls in the window (in half-open: probes recorded this cycle).
    pub buffered_calls: u64,
    /// Buffered calls that failed.
    pub failed_calls: u64,
    /// Buffered calls that succeeded.
    pub successful_calls: u64,
    /// Buffered calls that were slow.
    pub slow_calls: u64,
    /// Buffered calls that were slow and failed.
    pub slow_failed_calls: u64,
    /// Calls rejected since the breaker was created.
    pub not_permitted_calls: u64,
}

impl CircuitBreaker {
    /// A breaker on the system clock with thread-local jitter.
    pub fn new(name: impl Into<Arc<str>>, config: CircuitBreakerConfig) -> Self {
        let min_calls = config.effective_minimum_calls();
        let (count, time) = match new_window(config.sliding_window()) {
            Ok(count) => (Some(count), None),
            Err(time) => (None, Some(time)),
        };
        Self {
            word: AtomicU64::new(Word::new(State::Closed, 0, 0).0),
            deadline: AtomicU64::new(pack_deadline(0, None)),
            consecutive_opens: AtomicU32::new(0),
            not_permitted: AtomicU64::new(0),
            count,
            recorder: Mutex::new(Recorder { generation: 0, time, half_open: WindowSnapshot::default() }),
            config,
            min_calls,
            name: name.into(),
            clock: Arc::new(SystemClock::new()),
            jitter: Arc::new(ThreadRngJitter),
            events: EventHub::default(),
        }
    }

    /// Replaces the clock (tests use a `ManualClock`).
    pub fn with_clock(mut self, clock: Arc<dyn MonotonicClock>) -> Self {
        self.clock = clock;
        self
    }

    /// Replaces the jitter source used for the open wait.
    pub fn with_jitter(mut self, jitter: Arc<dyn JitterSource>) -> Self {
        self.jitter = jitter;
        self
    }

    /// The breaker's name, as passed to listeners.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The configuration.
    pub fn config(&self) -> &CircuitBreakerConfig {
        &self.config
    }

    /// The current state. Open becomes half-open on the first admission
    /// attempt after the wait, so an expired open still reads `Open`.
    pub fn state(&self) -> State {
        self.load().state()
    }

    /// Adds a listener for this breaker's events.
    pub fn subscribe(&self, listener: impl CircuitBreakerListener + 'static) {
        self.events.subscribe(Arc::new(listener));
    }

    pub(crate) fn subscribe_arc(&self, listener: Arc<dyn CircuitBreakerListener>) {
        self.events.subscribe(listener);
    }

    #[cfg(feature = "tower")]
    pub(crate) fn now_nanos(&self) -> u64 {
        self.clock.now_nanos()
    }

    #[cfg(test)]
    pub(crate) fn word(&self) -> Word {
        self.load()
    }

    #[inline]
    fn load(&self) -> Word {
        Word(self.word.load(Ordering::Acquire))
    }

    /// Asks to make a call.
    ///
    /// # Errors
    /// [`ResilienceError::Open`] when the breaker is open, forced open, or
    /// half-open with every probe slot taken.
    #[inline]
    pub fn try_acquire(&self) -> Result<Permit<'_>, ResilienceError<Infallible>> {
        let w = self.load();
        let ticket = if w.admits_freely() { Ticket::of(w) } else { self.acquire_slow(w)? };
        Ok(Permit { breaker: self, ticket, armed: true })
    }

    /// Like [`try_acquire`](Self::try_acquire), with a permit that owns a
    /// handle to the breaker, for futures that must be `'static`.
    ///
    /// # Errors
    /// As [`try_acquire`](Self::try_acquire).
    pub fn try_acquire_owned(self: &Arc<Self>) -> Result<OwnedPermit, ResilienceError<Infallible>> {
        let w = self.load();
        let ticket = if w.admits_freely() { Ticket::of(w) } else { self.acquire_slow(w)? };
        Ok(OwnedPermit { breaker: Arc::clone(self), ticket, armed: true })
    }

    #[cold]
    fn acquire_slow(&self, mut w: Word) -> Result<Ticket, ResilienceError<Infallible>> {
        loop {
            match w.state() {
                State::Closed | State::Disabled | State::MetricsOnly => return Ok(Ticket::of(w)),
                State::ForcedOpen => return Err(self.reject()),
                State::Open => {
                    let now = self.clock.now_nanos();
                    let Deadline::At(at) = self.deadline_of(w) else { return Err(self.reject()) };
                    if now < at {
                        return Err(self.reject());
                    }
                    // The caller that flips open to half-open takes the
                    // first probe in the same CAS.
                    let next = w.next(State::HalfOpen, 1);
                    match self.cas(w, next) {
                        Ok(()) => {
                            self.on_transition(w, next, now, true);
                            return Ok(Ticket::of(next));
                        }
                        Err(actual) => w = actual,
                    }
                }
                State::HalfOpen => {
                    let now = self.clock.now_nanos();
                    if matches!(self.deadline_of(w), Deadline::At(at) if now >= at) {
                        let next = w.next(State::Open, 0);
                        match self.cas(w, next) {
                            Ok(()) => {
                                self.on_transition(w, next, now, true);
                                return Err(self.reject());
                            }
                            Err(actual) => {
                                w = actual;
                                continue;
                            }
                        }
                    }
                    if w.taken() >= self.config.permitted_calls_in_half_open() {
                        return Err(self.reject());
                    }
                    match self.cas(w, w.with_taken(w.taken() + 1)) {
                        Ok(()) => return Ok(Ticket::of(w)),
                        Err(actual) => w = actual,
                    }
                }
            }
        }
    }

    fn cas(&self, current: Word, next: Word) -> Result<(), Word> {
        self.word.compare_exchange(current.0, next.0, Ordering::AcqRel, Ordering::Acquire).map(|_| ()).map_err(Word)
    }

    fn deadline_of(&self, w: Word) -> Deadline {
        unpack_deadline(self.deadline.load(Ordering::Acquire), w.generation())
    }

    fn reject(&self) -> ResilienceError<Infallible> {
        self.not_permitted.fetch_add(1, Ordering::Relaxed);
        self.events.publish(&self.name, CircuitBreakerEvent::NotPermitted);
        ResilienceError::Open
    }

    /// Side effects of a won transition CAS: deadline, re-open count, fresh
    /// counters, log line and the one transition event.
    fn on_transition(&self, from: Word, to: Word, now: u64, announce: bool) {
        let deadline = match to.state() {
            State::Open => {
                let k = if from.state() == State::HalfOpen {
                    self.consecutive_opens.fetch_add(1, Ordering::AcqRel).saturating_add(1)
                } else {
                    self.consecutive_opens.store(1, Ordering::Release);
                    1
                };
                Some(now.saturating_add(duration_nanos(self.open_wait(k))))
            }
            State::HalfOpen => {
                let max = self.config.max_wait_in_half_open();
                (!max.is_zero()).then(|| now.saturating_add(duration_nanos(max)))
            }
            State::Closed => {
                self.consecutive_opens.store(0, Ordering::Release);
                None
            }
            State::Disabled | State::ForcedOpen | State::MetricsOnly => None,
        };
        self.publish_deadline(to.generation(), deadline);
        if let Some(w) = &self.count
            && matches!(to.state(), State::Closed | State::MetricsOnly)
        {
            w.sync(to.generation());
        }
        self.recorder.lock().sync(to.generation(), to.state());
        if announce {
            tracing::debug!(breaker = %self.name, from = %from.state(), to = %to.state(), "circuit breaker transition");
            self.events
                .publish(&self.name, CircuitBreakerEvent::StateTransition { from: from.state(), to: to.state() });
        }
    }

    /// Publishes the deadline of `generation` unless a later generation's
    /// deadline is already there (two transitions finishing out of order).
    fn publish_deadline(&self, generation: u32, at: Option<u64>) {
        let packed = pack_deadline(generation, at);
        let mut current = self.deadline.load(Ordering::Acquire);
        loop {
            if (deadline_tag(current).wrapping_sub(generation as u16) as i16) > 0 {
                return;
            }
            match self.deadline.compare_exchange_weak(current, packed, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return,
                Err(actual) => current = actual,
            }
        }
    }

    /// The wait for the `k`-th consecutive open: the configured base (capped)
    /// scaled by a jitter factor in `[1 − r, 1 + r)`.
    fn open_wait(&self, k: u32) -> Duration {
        let base = self.config.wait_in_open().base_wait(k);
        let r = self.config.jitter();
        if r == 0.0 {
            return base;
        }
        let factor = 1.0 - r + 2.0 * r * self.jitter.next_unit();
        // `mul_f64` panics past `Duration::MAX`; a huge configured wait just
        // saturates.
        Duration::try_from_secs_f64(base.as_secs_f64() * factor).unwrap_or(Duration::MAX)
    }

    fn trips(&self, s: Rates, min_calls: u64) -> bool {
        // Compare products, not rounded percentages, so "open at exactly the
        // threshold" holds for rates like 1/3.
        let total = s.total as f64;
        s.total >= min_calls
            && (s.failed as f64 * 100.0 >= f64::from(self.config.failure_rate_threshold()) * total
                || s.slow as f64 * 100.0 >= f64::from(self.config.slow_call_rate_threshold()) * total)
    }

    /// The healthy-upstream fast path of a record, small enough to inline
    /// into `Permit::record`: with nobody listening, a fast success into a
    /// full count window of fast successes changes nothing (see
    /// `CountWindow::is_full_of`), so it needs no write, no trip check and
    /// no event.
    #[inline]
    fn finish(&self, ticket: Ticket, outcome: Outcome, elapsed: Duration) {
        if let (Some(window), State::Closed | State::MetricsOnly, Outcome::Success) =
            (&self.count, ticket.state, outcome)
            && elapsed < self.config.slow_call_duration_threshold()
            && self.events.is_empty()
            && self.load().generation() == ticket.generation
            && window.is_full_of(ticket.generation, Call { failed: false, slow: false })
        {
            return;
        }
        self.finish_slow(ticket, outcome, elapsed);
    }

    fn finish_slow(&self, ticket: Ticket, outcome: Outcome, elapsed: Duration) {
        if !matches!(ticket.state, State::Closed | State::MetricsOnly | State::HalfOpen) {
            return;
        }
        let failed = match outcome {
            Outcome::Success => false,
            Outcome::Failure => true,
            Outcome::Ignore => {
                self.release(ticket);
                self.events.publish(&self.name, CircuitBreakerEvent::Ignored { elapsed });
                return;
            }
        };
        let call = Call { failed, slow: elapsed >= self.config.slow_call_duration_threshold() };
        let decision = match (&self.count, ticket.state) {
            (Some(window), State::Closed | State::MetricsOnly) => {
                // Admitted in an earlier cycle: its result says nothing about
                // the current one (and must not touch the window an open
                // breaker keeps to show why it opened).
                if self.load().generation() != ticket.generation {
                    return;
                }
                match window.record(ticket.generation, call) {
                    Recorded::Stale => return,
                    Recorded::Unchanged => None,
                    Recorded::Changed(rates) => {
                        (ticket.state == State::Closed && self.trips(rates, self.min_calls)).then_some(State::Open)
                    }
                }
            }
            _ => {
                let now = match (&self.count, ticket.state) {
                    (None, State::Closed | State::MetricsOnly) => self.clock.now_nanos(),
                    _ => 0,
                };
                let Some(decision) = self.record_locked(ticket, call, now) else { return };
                decision
            }
        };
        if !self.events.is_empty() {
            let event =
                if failed { CircuitBreakerEvent::Error { elapsed } } else { CircuitBreakerEvent::Success { elapsed } };
            self.events.publish(&self.name, event);
            if call.slow {
                self.events.publish(&self.name, CircuitBreakerEvent::Slow { elapsed });
            }
        }
        if let Some(to) = decision {
            self.transition_from(ticket, to);
        }
    }

    /// Records into the time window or the half-open tally, under the lock.
    /// `None` if the ticket belongs to an earlier cycle; otherwise the
    /// transition the record calls for, if any.
    fn record_locked(&self, ticket: Ticket, call: Call, now: u64) -> Option<Option<State>> {
        let mut rec = self.recorder.lock();
        rec.sync(ticket.generation, ticket.state);
        if rec.generation != ticket.generation {
            // Admitted in an earlier cycle: its result says nothing about
            // the current one.
            return None;
        }
        Some(match ticket.state {
            State::HalfOpen => {
                rec.half_open.add(call);
                let permitted = u64::from(self.config.permitted_calls_in_half_open());
                (rec.half_open.total >= permitted).then(|| {
                    if self.trips(Rates::from(&rec.half_open), permitted) { State::Open } else { State::Closed }
                })
            }
            state => {
                // Only a time-based closed or metrics-only record gets here.
                let totals = rec.time.as_mut().map(|w| Rates::from(w.record(now, call)));
                totals.filter(|t| state == State::Closed && self.trips(*t, self.min_calls)).map(|_| State::Open)
            }
        })
    }

    /// Gives back a half-open probe slot that produced no result.
    fn release(&self, ticket: Ticket) {
        if ticket.state != State::HalfOpen {
            return;
        }
        let mut w = self.load();
        while w.state() == State::HalfOpen && w.generation() == ticket.generation && w.taken() > 0 {
            match self.cas(w, w.with_taken(w.taken() - 1)) {
                Ok(()) => return,
                Err(actual) => w = actual,
            }
        }
    }

    /// An automatic transition, applied only if the breaker is still in the
    /// cycle that decided it.
    fn transition_from(&self, ticket: Ticket, to: State) {
        let now = self.clock.now_nanos();
        let mut w = self.load();
        while w.generation() == ticket.generation && w.state() == ticket.state {
            let next = w.next(to, 0);
            match self.cas(w, next) {
                Ok(()) => {
                    self.on_transition(w, next, now, true);
                    return;
                }
                Err(actual) => w = actual,
            }
        }
    }

    fn transition_to(&self, to: State) {
        let now = self.clock.now_nanos();
        let mut w = self.load();
        while w.state() != to {
            let next = w.next(to, 0);
            match self.cas(w, next) {
                Ok(()) => {
                    self.on_transition(w, next, now, true);
                    return;
                }
                Err(actual) => w = actual,
            }
        }
    }

    /// Closes the breaker (clearing its window); no-op if already closed.
    pub fn transition_to_closed(&self) {
        self.transition_to(State::Closed);
    }

    /// Opens the breaker for the wait in open; no-op if already open.
    pub fn transition_to_open(&self) {
        self.transition_to(State::Open);
    }

    /// Starts a half-open cycle at once; no-op if already half-open.
    pub fn transition_to_half_open(&self) {
        self.transition_to(State::HalfOpen);
    }

    /// Lets every call through and records nothing until another manual
    /// transition.
    pub fn transition_to_disabled(&self) {
        self.transition_to(State::Disabled);
    }

    /// Rejects every call until another manual transition.
    pub fn transition_to_forced_open(&self) {
        self.transition_to(State::ForcedOpen);
    }

    /// Lets every call through and records and reports metrics, without ever
    /// changing state on its own.
    pub fn transition_to_metrics_only(&self) {
        self.transition_to(State::MetricsOnly);
    }

    /// Back to closed with an empty window and re-open count, whatever the
    /// state. Publishes a transition event if the state changed, then
    /// [`CircuitBreakerEvent::Reset`].
    pub fn reset(&self) {
        let now = self.clock.now_nanos();
        let mut w = self.load();
        loop {
            let next = w.next(State::Closed, 0);
            match self.cas(w, next) {
                Ok(()) => {
                    self.on_transition(w, next, now, w.state() != State::Closed);
                    break;
                }
                Err(actual) => w = actual,
            }
        }
        self.events.publish(&self.name, CircuitBreakerEvent::Reset);
    }

    /// A snapshot of the metrics; O(1) whatever the window size.
    pub fn metrics(&self) -> CircuitBreakerMetrics {
        let w = self.load();
        let (snap, min) = if w.state() == State::HalfOpen {
            (self.recorder.lock().half_open, u64::from(self.config.permitted_calls_in_half_open()))
        } else if let Some(window) = &self.count {
            (window.snapshot(), self.min_calls)
        } else {
            let now = self.clock.now_nanos();
            let snap = self.recorder.lock().time.as_mut().map(|t| t.snapshot(now)).unwrap_or_default();
            (snap, self.min_calls)
        };
        let rated = snap.total >= min && snap.total > 0;
        CircuitBreakerMetrics {
            state: w.state(),
            failure_rate: rated.then(|| snap.failure_rate()),
            slow_call_rate: rated.then(|| snap.slow_call_rate()),
            buffered_calls: snap.total,
            failed_calls: snap.failed,
            successful_calls: snap.total - snap.failed,
            slow_calls: snap.slow,
            slow_failed_calls: snap.slow_failed,
            not_permitted_calls: self.not_permitted.load(Ordering::Relaxed),
        }
    }

    /// Runs `f` if admitted, timing it with the breaker's clock; `Ok` is a
    /// success and `Err` a failure. A cancelled call records nothing.
    ///
    /// # Errors
    /// [`ResilienceError::Open`] when not admitted (`f` is not called),
    /// [`ResilienceError::Inner`] with the call's own error.
    pub async fn call<F, Fut, T, E>(&self, f: F) -> Result<T, ResilienceError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.call_with(DefaultClassifier, f).await
    }

    /// Like [`call`](Self::call), with `classifier` deciding the outcome
    /// from the whole result.
    ///
    /// # Errors
    /// As [`call`](Self::call); a classified failure that is `Ok` is still
    /// returned as `Ok`.
    pub async fn call_with<C, F, Fut, T, E>(&self, classifier: C, f: F) -> Result<T, ResilienceError<E>>
    where
        C: Classifier<T, E>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let permit = self.try_acquire().map_err(|e| e.map_inner(|never| match never {}))?;
        let start = self.clock.now_nanos();
        let result = f().await;
        let elapsed = Duration::from_nanos(self.clock.now_nanos().saturating_sub(start));
        permit.record(classifier.classify(&result), elapsed);
        result.map_err(ResilienceError::Inner)
    }
}

fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("name", &self.name)
            .field("state", &self.state())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Permission for one call. Record its outcome with
/// [`record`](Self::record); dropping it unrecorded (a cancelled future)
/// records nothing and gives a half-open probe slot back.
#[must_use = "a permit records nothing unless `record` is called"]
#[derive(Debug)]
pub struct Permit<'a> {
    breaker: &'a CircuitBreaker,
    ticket: Ticket,
    armed: bool,
}

impl Permit<'_> {
    /// The state the call was admitted in.
    pub fn state(&self) -> State {
        self.ticket.state
    }

    /// The breaker generation (transition count) the call was admitted in.
    pub fn generation(&self) -> u32 {
        self.ticket.generation
    }

    /// Records the call's outcome and duration.
    #[inline]
    pub fn record(mut self, outcome: Outcome, elapsed: Duration) {
        self.armed = false;
        self.breaker.finish(self.ticket, outcome, elapsed);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.breaker.release(self.ticket);
        }
    }
}

/// A [`Permit`] holding an `Arc` of its breaker.
#[must_use = "a permit records nothing unless `record` is called"]
#[derive(Debug)]
pub struct OwnedPermit {
    breaker: Arc<CircuitBreaker>,
    ticket: Ticket,
    armed: bool,
}

impl OwnedPermit {
    /// The state the call was admitted in.
    pub fn state(&self) -> State {
        self.ticket.state
    }

    /// The breaker generation (transition count) the call was admitted in.
    pub fn generation(&self) -> u32 {
        self.ticket.generation
    }

    /// The breaker this permit belongs to.
    pub fn breaker(&self) -> &Arc<CircuitBreaker> {
        &self.breaker
    }

    /// Records the call's outcome and duration.
    pub fn record(mut self, outcome: Outcome, elapsed: Duration) {
        self.armed = false;
        self.breaker.finish(self.ticket, outcome, elapsed);
    }
}

impl Drop for OwnedPermit {
    fn drop(&mut self) {
        if self.armed {
            self.breaker.release(self.ticket);
        }
    }
}
