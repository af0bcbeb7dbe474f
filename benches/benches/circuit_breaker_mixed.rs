//! Closed-state record cost when outcomes vary, so the count window must
//! actually write (the healthy all-success case takes a no-write path).
//!
//! Every 8th call fails and every 16th is slow; the thresholds are set so the
//! breaker never opens. Compares our breaker with recloser, on one thread and
//! on two threads sharing a breaker (figure per pair of concurrent calls).
//! This is our worst case: a record that changes a window slot costs a
//! compare-and-swap and a `fetch_add`, where a repeated outcome costs none.

use std::hint::black_box;
use std::thread;
use std::time::{Duration, Instant};

use criterion::{Bencher, Criterion};

const FAST: Duration = Duration::from_micros(50);
const SLOW: Duration = Duration::from_secs(10);

fn pattern(i: usize) -> (bool, Duration) {
    (i.is_multiple_of(8), if i % 16 == 1 { SLOW } else { FAST })
}

macro_rules! breaker_call {
    ($name:ident, $krate:ident) => {
        fn $name(b: &$krate::resilience::circuit_breaker::CircuitBreaker, i: usize) -> bool {
            use $krate::resilience::circuit_breaker::Outcome;
            let (failed, elapsed) = pattern(i);
            match b.try_acquire() {
                Ok(p) => {
                    p.record(if failed { Outcome::Failure } else { Outcome::Success }, elapsed);
                    true
                }
                Err(_) => false,
            }
        }
    };
}
breaker_call!(ours_call, bazaar_core);

fn recloser_call(b: &recloser::Recloser, i: usize) -> bool {
    let (failed, _) = pattern(i);
    b.call(|| if failed { Err(()) } else { Ok(()) }).is_ok()
}

macro_rules! make {
    ($krate:ident) => {{
        use $krate::resilience::circuit_breaker::{CircuitBreaker, CircuitBreakerConfig};
        let c = CircuitBreakerConfig::builder()
            .failure_rate_threshold(90.0)
            .slow_call_rate_threshold(90.0)
            .slow_call_duration_threshold(Duration::from_secs(1))
            .build()
            .unwrap();
        CircuitBreaker::new("mixed", c)
    }};
}

fn recloser_breaker() -> recloser::Recloser {
    recloser::Recloser::custom().error_rate(0.9).closed_len(100).build()
}

fn two_threads(b: &mut Bencher<'_>, op: impl Fn(usize) -> bool + Sync) {
    b.iter_custom(|iters| {
        let start = Instant::now();
        thread::scope(|s| {
            for t in 0..2 {
                let op = &op;
                s.spawn(move || {
                    for i in 0..iters as usize {
                        black_box(op(i + t));
                    }
                });
            }
        });
        start.elapsed()
    });
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let ours = make!(bazaar_core);
    let reclose = recloser_breaker();
    {
        let mut g = c.benchmark_group("circuit_breaker_mixed_single_thread");
        let mut n = 0usize;
        g.bench_function("bazaar", |b| {
            b.iter(|| {
                n += 1;
                ours_call(black_box(&ours), n)
            })
        });
        g.bench_function("recloser", |b| {
            b.iter(|| {
                n += 1;
                recloser_call(black_box(&reclose), n)
            })
        });
        g.finish();
    }
    {
        let mut g = c.benchmark_group("circuit_breaker_mixed_contended_2_threads");
        g.bench_function("bazaar", |b| two_threads(b, |i| ours_call(&ours, i)));
        g.bench_function("recloser", |b| two_threads(b, |i| recloser_call(&reclose, i)));
        g.finish();
    }
    assert_eq!(ours.state(), bazaar_core::resilience::circuit_breaker::State::Closed);
    c.final_summary();
}
