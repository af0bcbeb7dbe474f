//! Closed-state circuit breaker overhead: bazaar-core against failsafe 1.3
//! and recloser 1.x, on one thread and with two threads sharing a breaker.
//!
//! Each iteration is one admitted call whose success is recorded, the work
//! every request pays while the upstream is healthy. `bazaar/admission_only`
//! isolates the atomic-load admission check.

use std::hint::black_box;
use std::thread;
use std::time::{Duration, Instant};

use bazaar_core::resilience::circuit_breaker::{CircuitBreaker, CircuitBreakerConfig, Outcome};
use criterion::{Bencher, Criterion};

const ELAPSED: Duration = Duration::from_micros(50);

fn bazaar_call(breaker: &CircuitBreaker) -> bool {
    match breaker.try_acquire() {
        Ok(permit) => {
            permit.record(Outcome::Success, ELAPSED);
            true
        }
        Err(_) => false,
    }
}

fn failsafe_call(breaker: &impl failsafe::CircuitBreaker) -> bool {
    breaker.call(|| Ok::<(), ()>(())).is_ok()
}

fn recloser_call(breaker: &recloser::Recloser) -> bool {
    breaker.call(|| Ok::<(), ()>(())).is_ok()
}

/// Runs `op` on two threads at once, `iters` times each; reports the wall
/// time, so the figure is per pair of concurrent calls.
fn two_threads(b: &mut Bencher<'_>, op: impl Fn() -> bool + Sync) {
    b.iter_custom(|iters| {
        let start = Instant::now();
        thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    for _ in 0..iters {
                        black_box(op());
                    }
                });
            }
        });
        start.elapsed()
    });
}

fn single_thread(c: &mut Criterion) {
    let ours = CircuitBreaker::new("bench", CircuitBreakerConfig::default());
    let failsafe = failsafe::Config::new().build();
    let recloser = recloser::Recloser::default();

    let mut group = c.benchmark_group("circuit_breaker_closed_single_thread");
    group.bench_function("bazaar/admission_only", |b| b.iter(|| black_box(&ours).try_acquire().is_ok()));
    group.bench_function("bazaar/admission_and_record", |b| b.iter(|| bazaar_call(black_box(&ours))));
    group.bench_function("failsafe/call", |b| b.iter(|| failsafe_call(black_box(&failsafe))));
    group.bench_function("recloser/call", |b| b.iter(|| recloser_call(black_box(&recloser))));
    group.finish();
}

fn contended(c: &mut Criterion) {
    let ours = CircuitBreaker::new("bench", CircuitBreakerConfig::default());
    let failsafe = failsafe::Config::new().build();
    let recloser = recloser::Recloser::default();

    let mut group = c.benchmark_group("circuit_breaker_closed_contended_2_threads");
    group.bench_function("bazaar/admission_and_record", |b| two_threads(b, || bazaar_call(&ours)));
    group.bench_function("failsafe/call", |b| two_threads(b, || failsafe_call(&failsafe)));
    group.bench_function("recloser/call", |b| two_threads(b, || recloser_call(&recloser)));
    group.finish();
}

// What `criterion_group!`/`criterion_main!` expand to, minus the
// undocumented `pub fn` the macro generates, which the workspace's
// `missing_docs` lint would flag.
fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    single_thread(&mut criterion);
    contended(&mut criterion);
    criterion.final_summary();
}
