//! Circuit breaker behaviour tests, all on a manual clock.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use parking_lot::Mutex;
use proptest::prelude::*;

use super::*;
use crate::resilience::ResilienceError;
use crate::resilience::clock::{FixedJitter, ManualClock};

const SEC: Duration = Duration::from_secs(1);
const FAST: Duration = Duration::from_millis(1);

type Log = Arc<Mutex<Vec<CircuitBreakerEvent>>>;

fn breaker(config: CircuitBreakerConfig) -> (CircuitBreaker, ManualClock, Log) {
    let clock = ManualClock::new();
    let b =
        CircuitBreaker::new("test", config).with_clock(Arc::new(clock.clone())).with_jitter(Arc::new(FixedJitter(0.5)));
    let log: Log = Arc::default();
    let l = Arc::clone(&log);
    b.subscribe(move |name: &str, e: &CircuitBreakerEvent| {
        assert_eq!(name, "test");
        l.lock().push(*e);
    });
    (b, clock, log)
}

fn config() -> CircuitBreakerConfigBuilder {
    CircuitBreakerConfig::builder()
        .sliding_window(SlidingWindow::CountBased(10))
        .minimum_number_of_calls(10)
        .failure_rate_threshold(50.0)
        .wait_in_open(Duration::from_secs(10))
        .permitted_calls_in_half_open(3)
        .max_wait_in_half_open(Duration::from_secs(60))
}

fn record(b: &CircuitBreaker, outcome: Outcome) {
    b.try_acquire().expect("admitted").record(outcome, FAST);
}

fn ok(b: &CircuitBreaker) {
    record(b, Outcome::Success);
}

fn fail(b: &CircuitBreaker) {
    record(b, Outcome::Failure);
}

fn transitions(log: &Log) -> Vec<(State, State)> {
    log.lock()
        .iter()
        .filter_map(|e| match e {
            CircuitBreakerEvent::StateTransition { from, to } => Some((*from, *to)),
            _ => None,
        })
        .collect()
}

/// Opens the breaker by hand; the threshold tests open it by its rules.
fn trip(b: &CircuitBreaker) {
    b.transition_to_open();
    assert_eq!(b.state(), State::Open);
}

#[test]
fn opens_at_exactly_the_failure_threshold() {
    let (b, _, log) = breaker(config().build().unwrap());
    for _ in 0..5 {
        ok(&b);
    }
    for _ in 0..4 {
        fail(&b);
    }
    ok(&b);
    assert_eq!(b.state(), State::Closed, "4/10 = 40% is below 50%");
    assert_eq!(b.metrics().failure_rate, Some(40.0));
    // The oldest success rolls out: 5/10 = exactly 50%.
    fail(&b);
    assert_eq!(b.state(), State::Open);
    assert_eq!(transitions(&log), [(State::Closed, State::Open)]);
    assert_eq!(b.metrics().failure_rate, Some(50.0), "open keeps the window that tripped it");
}

#[test]
fn threshold_is_inclusive_for_non_round_rates() {
    let c = config()
        .sliding_window(SlidingWindow::CountBased(3))
        .minimum_number_of_calls(3)
        .failure_rate_threshold(100.0 / 3.0)
        .build()
        .unwrap();
    let (b, _, _) = breaker(c);
    ok(&b);
    ok(&b);
    fail(&b);
    assert_eq!(b.state(), State::Open);
}

#[test]
fn nothing_opens_below_the_minimum_number_of_calls() {
    let (b, _, _) = breaker(config().minimum_number_of_calls(5).build().unwrap());
    for _ in 0..4 {
        fail(&b);
    }
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.metrics().failure_rate, None);
    assert_eq!(b.metrics().failed_calls, 4);
    fail(&b);
    assert_eq!(b.state(), State::Open);
}

#[test]
fn count_window_forgets_the_oldest_calls() {
    let c = config().sliding_window(SlidingWindow::CountBased(4)).minimum_number_of_calls(4).build().unwrap();
    let (b, _, _) = breaker(c);
    fail(&b);
    ok(&b);
    ok(&b);
    ok(&b);
    ok(&b);
    assert_eq!(b.metrics().failed_calls, 0, "the failure rolled out");
    fail(&b);
    assert_eq!(b.state(), State::Closed, "1/4");
    fail(&b);
    assert_eq!(b.state(), State::Open, "2/4 = 50%");
}

#[test]
fn time_window_rolls_over_as_the_clock_advances() {
    let c = config()
        .sliding_window(SlidingWindow::TimeBased(2))
        .minimum_number_of_calls(2)
        .failure_rate_threshold(100.0)
        .build()
        .unwrap();
    let (b, clock, _) = breaker(c);
    ok(&b);
    clock.advance(SEC);
    fail(&b);
    assert_eq!(b.metrics().buffered_calls, 2);
    assert_eq!(b.state(), State::Closed, "1/2 failed");
    clock.advance(SEC);
    assert_eq!(b.metrics().buffered_calls, 1, "second 0 left the window");
    fail(&b);
    assert_eq!(b.state(), State::Open, "2/2 failed within the last two seconds");
}

#[test]
fn slow_calls_open_at_the_slow_rate() {
    let c = config()
        .sliding_window(SlidingWindow::CountBased(4))
        .minimum_number_of_calls(4)
        .failure_rate_threshold(100.0)
        .slow_call_rate_threshold(50.0)
        .slow_call_duration_threshold(SEC)
        .build()
        .unwrap();
    let (b, _, log) = breaker(c);
    b.try_acquire().unwrap().record(Outcome::Success, SEC);
    b.try_acquire().unwrap().record(Outcome::Failure, 2 * SEC);
    b.try_acquire().unwrap().record(Outcome::Success, SEC - Duration::from_nanos(1));
    let m = b.metrics();
    assert_eq!((m.slow_calls, m.slow_failed_calls, m.buffered_calls), (2, 1, 3));
    assert_eq!(b.state(), State::Closed);
    ok(&b);
    assert_eq!(b.state(), State::Open, "2/4 slow = 50%");
    let slow_events = log.lock().iter().filter(|e| matches!(e, CircuitBreakerEvent::Slow { .. })).count();
    assert_eq!(slow_events, 2);
}

#[test]
fn open_waits_then_admits_a_half_open_probe() {
    let (b, clock, log) = breaker(config().build().unwrap());
    trip(&b);
    assert!(matches!(b.try_acquire(), Err(ResilienceError::Open)));
    clock.advance(Duration::from_secs(10) - Duration::from_nanos(1_000));
    assert!(b.try_acquire().is_err());
    assert_eq!(b.metrics().not_permitted_calls, 2);
    clock.advance(Duration::from_nanos(1_000));
    let p = b.try_acquire().expect("wait elapsed");
    assert_eq!(p.state(), State::HalfOpen);
    assert_eq!(b.state(), State::HalfOpen);
    assert_eq!(transitions(&log), [(State::Closed, State::Open), (State::Open, State::HalfOpen)]);
    let rejected = log.lock().iter().filter(|e| **e == CircuitBreakerEvent::NotPermitted).count();
    assert_eq!(rejected, 2);
}

#[test]
fn half_open_successes_close_and_failures_reopen() {
    let (b, clock, log) = breaker(config().build().unwrap());
    trip(&b);
    clock.advance(Duration::from_secs(10));
    ok(&b);
    ok(&b);
    assert_eq!(b.state(), State::HalfOpen);
    assert_eq!(b.metrics().buffered_calls, 2);
    fail(&b);
    assert_eq!(b.state(), State::Closed, "1/3 failed is below 50%");
    assert_eq!(b.metrics().buffered_calls, 0, "closing starts a fresh window");

    trip(&b);
    clock.advance(Duration::from_secs(10));
    fail(&b);
    ok(&b);
    fail(&b);
    assert_eq!(b.state(), State::Open, "2/3 failed");
    assert_eq!(
        transitions(&log),
        [
            (State::Closed, State::Open),
            (State::Open, State::HalfOpen),
            (State::HalfOpen, State::Closed),
            (State::Closed, State::Open),
            (State::Open, State::HalfOpen),
            (State::HalfOpen, State::Open),
        ]
    );
}

#[test]
fn exactly_the_permitted_probes_are_admitted() {
    let (b, clock, _) = breaker(config().build().unwrap());
    trip(&b);
    clock.advance(Duration::from_secs(10));
    let probes: Vec<_> = (0..3).map(|_| b.try_acquire().expect("probe")).collect();
    assert!(b.try_acquire().is_err());
    assert!(probes.iter().all(|p| p.state() == State::HalfOpen));
    drop(probes);
    assert_eq!(b.state(), State::HalfOpen);
}

#[test]
fn growing_wait_in_open_is_capped_and_resets_on_close() {
    let c = config()
        .permitted_calls_in_half_open(1)
        .wait_in_open_strategy(WaitInOpen::Exponential { initial: SEC, multiplier: 2.0, max: Duration::from_secs(5) })
        .build()
        .unwrap();
    let (b, clock, _) = breaker(c);
    let just_before = |d: Duration| d - Duration::from_micros(1);
    trip(&b);
    for expected in [1u64, 2, 4, 5, 5] {
        let wait = Duration::from_secs(expected);
        clock.advance(just_before(wait));
        assert!(b.try_acquire().is_err(), "still open before {expected}s");
        clock.advance(Duration::from_micros(1));
        let probe = b.try_acquire().expect("open wait elapsed");
        probe.record(Outcome::Failure, FAST);
        assert_eq!(b.state(), State::Open);
    }
    clock.advance(Duration::from_secs(5));
    ok(&b);
    assert_eq!(b.state(), State::Closed);
    trip(&b);
    clock.advance(SEC);
    assert!(b.try_acquire().is_ok(), "the wait starts over after a close");
}

#[test]
fn jitter_scales_the_open_wait() {
    let (b, clock, _) = breaker(config().jitter(0.5).build().unwrap());
    let b = b.with_jitter(Arc::new(FixedJitter(0.0)));
    trip(&b);
    clock.advance(Duration::from_secs(5) - Duration::from_micros(1));
    assert!(b.try_acquire().is_err());
    clock.advance(Duration::from_micros(1));
    assert!(b.try_acquire().is_ok(), "10 s · (1 − 0.5) = 5 s");
}

#[test]
fn a_huge_jittered_wait_saturates_instead_of_panicking() {
    let (b, clock, _) = breaker(config().wait_in_open(Duration::MAX).jitter(0.9).build().unwrap());
    let b = b.with_jitter(Arc::new(FixedJitter(0.99)));
    trip(&b);
    clock.advance(Duration::from_secs(86_400 * 365));
    assert!(b.try_acquire().is_err());
}

#[test]
fn half_open_times_out_back_to_open_when_probes_never_finish() {
    let (b, clock, log) = breaker(config().permitted_calls_in_half_open(1).build().unwrap());
    trip(&b);
    clock.advance(Duration::from_secs(10));
    let stuck = b.try_acquire().expect("probe");
    clock.advance(Duration::from_secs(59));
    assert!(b.try_acquire().is_err());
    assert_eq!(b.state(), State::HalfOpen);
    clock.advance(SEC);
    assert!(b.try_acquire().is_err());
    assert_eq!(b.state(), State::Open);
    assert_eq!(transitions(&log).last(), Some(&(State::HalfOpen, State::Open)));
    // The hung probe finally answers: it belongs to a finished cycle.
    stuck.record(Outcome::Success, FAST);
    assert_eq!(b.state(), State::Open);
    // Second consecutive open with a fixed wait: still 10 s.
    clock.advance(Duration::from_secs(10));
    assert!(b.try_acquire().is_ok());
}

#[test]
fn dropped_or_ignored_probes_free_their_slot() {
    let (b, clock, log) = breaker(config().permitted_calls_in_half_open(2).build().unwrap());
    trip(&b);
    clock.advance(Duration::from_secs(10));
    let p1 = b.try_acquire().unwrap();
    let p2 = b.try_acquire().unwrap();
    assert!(b.try_acquire().is_err());
    drop(p1);
    let p3 = b.try_acquire().expect("the dropped probe's slot");
    assert!(b.try_acquire().is_err());
    p2.record(Outcome::Ignore, FAST);
    let p4 = b.try_acquire().expect("the ignored probe's slot");
    assert!(log.lock().iter().any(|e| matches!(e, CircuitBreakerEvent::Ignored { .. })));
    assert_eq!(b.metrics().buffered_calls, 0, "nothing recorded yet");
    p3.record(Outcome::Success, FAST);
    p4.record(Outcome::Success, FAST);
    assert_eq!(b.state(), State::Closed);
}

#[tokio::test]
async fn a_cancelled_call_frees_its_probe() {
    use futures::FutureExt;
    let (b, clock, _) = breaker(config().permitted_calls_in_half_open(1).build().unwrap());
    trip(&b);
    clock.advance(Duration::from_secs(10));
    let pending = b.call(futures::future::pending::<Result<(), ()>>);
    assert!(pending.now_or_never().is_none());
    let r: Result<u8, ResilienceError<()>> = b.call(|| async { Ok(1) }).await;
    assert_eq!(r.unwrap(), 1);
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn a_late_result_from_an_older_cycle_is_ignored() {
    let (b, clock, _) = breaker(config().minimum_number_of_calls(1).build().unwrap());
    let old = b.try_acquire().unwrap();
    assert_eq!(old.generation(), 0);
    trip(&b);
    b.transition_to_closed();
    old.record(Outcome::Failure, FAST);
    assert_eq!(b.state(), State::Closed, "min calls 1 would have opened it");
    assert_eq!(b.metrics().buffered_calls, 0);

    trip(&b);
    clock.advance(Duration::from_secs(10));
    let cycle1 = b.try_acquire().unwrap();
    clock.advance(Duration::from_secs(60));
    assert!(b.try_acquire().is_err(), "half-open limit re-opens");
    clock.advance(Duration::from_secs(10));
    let cycle2 = b.try_acquire().unwrap();
    assert_ne!(cycle1.generation(), cycle2.generation());
    cycle1.record(Outcome::Failure, FAST);
    assert_eq!(b.metrics().buffered_calls, 0);
    assert_eq!(b.state(), State::HalfOpen);
}

#[test]
fn forced_open_rejects_everything_until_told_otherwise() {
    let (b, clock, _) = breaker(config().build().unwrap());
    b.transition_to_forced_open();
    clock.advance(Duration::from_secs(3_600));
    for _ in 0..3 {
        assert!(matches!(b.try_acquire(), Err(ResilienceError::Open)));
    }
    assert_eq!(b.state(), State::ForcedOpen);
    assert_eq!(b.metrics().not_permitted_calls, 3);
    b.transition_to_closed();
    assert!(b.try_acquire().is_ok());
}

#[test]
fn disabled_admits_and_records_nothing() {
    let (b, _, log) = breaker(config().minimum_number_of_calls(1).build().unwrap());
    b.transition_to_disabled();
    log.lock().clear();
    for _ in 0..20 {
        fail(&b);
    }
    assert_eq!(b.state(), State::Disabled);
    assert_eq!(b.metrics().buffered_calls, 0);
    assert!(log.lock().is_empty());
}

#[test]
fn metrics_only_records_and_reports_but_never_opens() {
    let (b, _, log) = breaker(config().minimum_number_of_calls(1).build().unwrap());
    b.transition_to_metrics_only();
    for _ in 0..20 {
        fail(&b);
    }
    assert_eq!(b.state(), State::MetricsOnly);
    let m = b.metrics();
    assert_eq!((m.buffered_calls, m.failed_calls, m.failure_rate), (10, 10, Some(100.0)));
    let errors = log.lock().iter().filter(|e| matches!(e, CircuitBreakerEvent::Error { .. })).count();
    assert_eq!(errors, 20);
    assert_eq!(transitions(&log), [(State::Closed, State::MetricsOnly)]);
}

#[test]
fn manual_transitions_to_the_current_state_are_no_ops() {
    let (b, _, log) = breaker(config().build().unwrap());
    b.transition_to_closed();
    b.transition_to_half_open();
    b.transition_to_half_open();
    assert_eq!(transitions(&log), [(State::Closed, State::HalfOpen)]);
}

#[test]
fn reset_closes_and_clears() {
    let (b, _, log) = breaker(config().minimum_number_of_calls(1).build().unwrap());
    fail(&b);
    assert_eq!(b.state(), State::Open);
    b.reset();
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.metrics().buffered_calls, 0);
    let tail: Vec<_> = log.lock().iter().rev().take(2).copied().collect();
    assert_eq!(
        tail,
        [CircuitBreakerEvent::Reset, CircuitBreakerEvent::StateTransition { from: State::Open, to: State::Closed }]
    );
    b.reset();
    assert_eq!(transitions(&log).len(), 2, "resetting a closed breaker is not a transition");
}

#[tokio::test]
async fn call_times_with_the_clock_and_classifier_sees_ok_values() {
    let c = config()
        .sliding_window(SlidingWindow::CountBased(2))
        .minimum_number_of_calls(2)
        .slow_call_duration_threshold(SEC)
        .failure_rate_threshold(100.0)
        .build()
        .unwrap();
    let (b, clock, _) = breaker(c);
    let by_status =
        |r: &Result<u16, ()>| if matches!(r, Ok(s) if *s >= 500) { Outcome::Failure } else { Outcome::Success };
    let r = b
        .call_with(by_status, || async {
            clock.advance(2 * SEC);
            Ok(503)
        })
        .await;
    assert_eq!(r.unwrap(), 503, "the caller still gets the response");
    let m = b.metrics();
    assert_eq!((m.failed_calls, m.slow_calls), (1, 1));
    let r = b.call_with(by_status, || async { Ok(502) }).await;
    assert!(r.is_ok());
    assert_eq!(b.state(), State::Open);
    let mut called = false;
    let r = b
        .call(|| {
            called = true;
            async { Ok::<(), ()>(()) }
        })
        .await;
    assert!(matches!(r, Err(ResilienceError::Open)));
    assert!(!called, "a rejected call never starts");
    let r: Result<(), _> =
        CircuitBreaker::new("x", CircuitBreakerConfig::default()).call(|| async { Err("boom") }).await;
    assert!(matches!(r, Err(ResilienceError::Inner("boom"))));
}

#[test]
fn owned_permits_behave_like_borrowed_ones() {
    let (b, clock, _) = breaker(config().permitted_calls_in_half_open(1).build().unwrap());
    let b = Arc::new(b);
    trip(&b);
    clock.advance(Duration::from_secs(10));
    let p = b.try_acquire_owned().unwrap();
    assert_eq!(p.state(), State::HalfOpen);
    assert!(b.try_acquire_owned().is_err());
    drop(p);
    let p = b.try_acquire_owned().unwrap();
    assert!(Arc::ptr_eq(p.breaker(), &b));
    p.record(Outcome::Success, FAST);
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn concurrent_failures_publish_exactly_one_transition() {
    for _ in 0..50 {
        let (b, _, log) =
            breaker(config().sliding_window(SlidingWindow::CountBased(8)).minimum_number_of_calls(8).build().unwrap());
        let b = Arc::new(b);
        let permits_ready = Arc::new(Barrier::new(8));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let b = Arc::clone(&b);
                let barrier = Arc::clone(&permits_ready);
                std::thread::spawn(move || {
                    let mut permits: Vec<_> = (0..4).map(|_| b.try_acquire_owned().unwrap()).collect();
                    barrier.wait();
                    for p in permits.drain(..) {
                        p.record(Outcome::Failure, FAST);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(b.state(), State::Open);
        assert_eq!(transitions(&log), [(State::Closed, State::Open)]);
    }
}

/// 8 threads × 10 000 records through a metrics-only breaker (it records
/// but never opens) with a count window of 100: metrics stay consistent
/// throughout, and a quiescent sequential tail of 100 is counted exactly.
#[test]
fn concurrent_records_keep_the_count_window_consistent() {
    let c = config().sliding_window(SlidingWindow::CountBased(100)).slow_call_duration_threshold(SEC).build().unwrap();
    let b = Arc::new(CircuitBreaker::new("test", c));
    b.transition_to_metrics_only();
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let b = Arc::clone(&b);
            std::thread::spawn(move || {
                for i in 0..10_000usize {
                    let outcome = if (i + t) % 4 == 0 { Outcome::Failure } else { Outcome::Success };
                    let elapsed = if (i * 3 + t) % 7 == 0 { 2 * SEC } else { FAST };
                    b.try_acquire().unwrap().record(outcome, elapsed);
                    if i % 128 == 0 {
                        let m = b.metrics();
                        assert!(m.buffered_calls <= 100);
                        assert!(m.failed_calls <= m.buffered_calls && m.slow_calls <= m.buffered_calls);
                        assert!(m.slow_failed_calls <= m.failed_calls.min(m.slow_calls));
                        assert_eq!(m.successful_calls, m.buffered_calls - m.failed_calls);
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(b.metrics().buffered_calls, 100);
    for i in 0..100 {
        let outcome = if i % 5 == 0 { Outcome::Failure } else { Outcome::Success };
        b.try_acquire().unwrap().record(outcome, if i % 10 == 0 { 2 * SEC } else { FAST });
    }
    let m = b.metrics();
    assert_eq!((m.buffered_calls, m.failed_calls, m.slow_calls, m.slow_failed_calls), (100, 20, 10, 10));
    assert_eq!(m.failure_rate, Some(20.0));
    assert_eq!(b.state(), State::MetricsOnly);
}

/// A healthy window (every slot a fast success) takes the no-write path;
/// the first failure after it still counts and can still open the breaker.
#[test]
fn a_healthy_full_window_still_opens_on_failures() {
    let (b, _, log) =
        breaker(config().sliding_window(SlidingWindow::CountBased(4)).minimum_number_of_calls(4).build().unwrap());
    for _ in 0..20 {
        ok(&b);
    }
    assert_eq!(b.metrics().buffered_calls, 4);
    fail(&b);
    assert_eq!(b.metrics().failed_calls, 1);
    assert_eq!(b.state(), State::Closed);
    fail(&b);
    assert_eq!(b.state(), State::Open, "2/4");
    assert_eq!(transitions(&log), [(State::Closed, State::Open)]);
}

/// 16 threads hammer a half-open breaker allowing 3 probes: every cycle
/// admits exactly 3, all from the same generation.
#[test]
fn stress_exactly_three_probes_per_half_open_cycle() {
    const THREADS: usize = 16;
    const CYCLES: usize = 200;
    let c = config().permitted_calls_in_half_open(3).wait_in_open(SEC).build().unwrap();
    let (b, clock, log) = breaker(c);
    let b = Arc::new(b);
    trip(&b);
    let start = Arc::new(Barrier::new(THREADS + 1));
    let counted = Arc::new(Barrier::new(THREADS + 1));
    let admitted = Arc::new(Mutex::new(Vec::<u32>::new()));
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let (b, start, counted, admitted) =
                (Arc::clone(&b), Arc::clone(&start), Arc::clone(&counted), Arc::clone(&admitted));
            std::thread::spawn(move || {
                for _ in 0..CYCLES {
                    start.wait();
                    let mut mine = Vec::new();
                    for _ in 0..20 {
                        if let Ok(p) = b.try_acquire_owned() {
                            assert_eq!(p.state(), State::HalfOpen);
                            mine.push(p);
                        }
                    }
                    admitted.lock().extend(mine.iter().map(|p| p.generation()));
                    counted.wait();
                    // Failing every probe re-opens the breaker for the next cycle.
                    for p in mine {
                        p.record(Outcome::Failure, FAST);
                    }
                }
            })
        })
        .collect();
    for cycle in 0..CYCLES {
        clock.advance(SEC);
        start.wait();
        counted.wait();
        let generations = std::mem::take(&mut *admitted.lock());
        assert_eq!(generations.len(), 3, "cycle {cycle} admitted {generations:?}");
        assert!(generations.iter().all(|g| *g == generations[0]), "one cycle, one generation");
        // Wait for the probes' failures to re-open the breaker.
        while b.state() != State::Open {
            std::thread::yield_now();
        }
    }
    for h in handles {
        h.join().unwrap();
    }
    let t = transitions(&log);
    assert_eq!(t.len(), 1 + 2 * CYCLES);
    assert!(t[1..].chunks(2).all(|c| c == [(State::Open, State::HalfOpen), (State::HalfOpen, State::Open)]));
}

#[derive(Debug, Clone)]
enum Op {
    Record(Outcome, bool),
    Drop,
    Hold,
    Advance(u64),
    Manual(usize),
    Reset,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (prop_oneof![Just(Outcome::Success), Just(Outcome::Failure), Just(Outcome::Ignore)], any::<bool>())
            .prop_map(|(o, slow)| Op::Record(o, slow)),
        1 => Just(Op::Drop),
        1 => Just(Op::Hold),
        2 => (0u64..15_000).prop_map(Op::Advance),
        1 => (0usize..6).prop_map(Op::Manual),
        1 => Just(Op::Reset),
    ]
}

proptest! {
    #[test]
    fn state_machine_never_leaves_valid_states(ops in proptest::collection::vec(op(), 1..150)) {
        let c = config()
            .sliding_window(SlidingWindow::CountBased(4))
            .minimum_number_of_calls(2)
            .slow_call_duration_threshold(SEC)
            .permitted_calls_in_half_open(2)
            .max_wait_in_half_open(Duration::from_secs(20))
            .build()
            .unwrap();
        let (b, clock, log) = breaker(c);
        let mut held = Vec::new();
        for op in ops {
            match op {
                Op::Record(outcome, slow) => {
                    if let Ok(p) = b.try_acquire() {
                        p.record(outcome, if slow { 2 * SEC } else { FAST });
                    }
                }
                Op::Drop => drop(b.try_acquire()),
                Op::Hold => {
                    if let Ok(p) = b.try_acquire() {
                        held.push(p);
                    }
                }
                Op::Advance(ms) => clock.advance(Duration::from_millis(ms)),
                Op::Manual(i) => match State::ALL[i] {
                    State::Closed => b.transition_to_closed(),
                    State::Open => b.transition_to_open(),
                    State::HalfOpen => b.transition_to_half_open(),
                    State::Disabled => b.transition_to_disabled(),
                    State::ForcedOpen => b.transition_to_forced_open(),
                    State::MetricsOnly => b.transition_to_metrics_only(),
                },
                Op::Reset => b.reset(),
            }
            let w = b.word();
            prop_assert!(State::ALL.contains(&w.state()));
            if w.state() == State::HalfOpen {
                prop_assert!(w.taken() <= 2);
            } else {
                prop_assert_eq!(w.taken(), 0);
            }
            let m = b.metrics();
            prop_assert!(m.failed_calls <= m.buffered_calls && m.slow_calls <= m.buffered_calls);
        }
        drop(held);
        // Transitions chain: each starts where the previous one ended, and
        // the last one names the current state.
        let t = transitions(&log);
        let mut current = State::Closed;
        for (from, to) in &t {
            prop_assert_eq!(*from, current);
            prop_assert_ne!(from, to);
            current = *to;
        }
        prop_assert_eq!(current, b.state());
    }
}

/// Rough closed-state cost; run with
/// `cargo test --release -- --ignored --nocapture micro_time`.
#[test]
#[ignore = "timing belongs in benches; this only prints"]
fn micro_time_closed_admission_and_record() {
    let b = CircuitBreaker::new("bench", CircuitBreakerConfig::default());
    let n = 10_000_000u32;
    let start = std::time::Instant::now();
    for _ in 0..n {
        std::hint::black_box(b.try_acquire().unwrap()).record(Outcome::Success, FAST);
    }
    println!("admission+record: {:.1} ns/op", start.elapsed().as_nanos() as f64 / f64::from(n));
    let start = std::time::Instant::now();
    for _ in 0..n {
        let p = std::hint::black_box(b.try_acquire().unwrap());
        std::mem::forget(p);
    }
    println!("admission only: {:.1} ns/op", start.elapsed().as_nanos() as f64 / f64::from(n));
}
