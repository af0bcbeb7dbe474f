//! GCRA rate limiter: `bazaar_core`'s `RateLimiter::check` against
//! `governor` 0.10's direct limiter, single-threaded and with two threads
//! hammering one limiter.
//!
//! Both limiters get the same effectively unlimited quota so every check
//! takes the admit path (one atomic CAS); the deny path is a single load in
//! both and would flatter whichever limiter rejects more often.

use std::hint::black_box;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use bazaar_core::resilience::clock::{MonotonicClock, SystemClock};
use criterion::{Criterion, criterion_main};

fn quota_rate() -> NonZeroU32 {
    NonZeroU32::new(u32::MAX).expect("non-zero")
}

fn ours() -> bazaar_core::resilience::rate_limit::RateLimiter {
    use bazaar_core::resilience::rate_limit::{Quota, RateLimiter};
    RateLimiter::new(Quota::per_second(quota_rate()))
}

fn theirs() -> governor::DefaultDirectRateLimiter {
    governor::RateLimiter::direct(governor::Quota::per_second(quota_rate()))
}

/// Runs `check` `iters` times on each of `threads` threads and returns the
/// wall time (thread start-up included, identical for both limiters).
fn contended(threads: usize, iters: u64, check: &(dyn Fn() + Sync)) -> Duration {
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                for _ in 0..iters {
                    check();
                }
            });
        }
    });
    start.elapsed()
}

fn single_thread(c: &mut Criterion) {
    let mut group = c.benchmark_group("rate_limiter/check/1_thread");
    let ours = ours();
    group.bench_function("bazaar_gcra", |b| b.iter(|| black_box(ours.check().is_ok())));
    let theirs = theirs();
    group.bench_function("governor", |b| b.iter(|| black_box(theirs.check().is_ok())));
    // Reference: the clock read alone, as `RateLimiter::new` does it (a
    // concrete `SystemClock`, quanta's TSC, no trait object); this isolates
    // the clock's share of `bazaar_gcra`.
    let clock = SystemClock::new();
    group.bench_function("bazaar_clock_read_only", |b| b.iter(|| black_box(black_box(&clock).now_nanos())));
    group.finish();
}

fn two_threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("rate_limiter/check/2_threads");
    let ours = ours();
    group.bench_function("bazaar_gcra", |b| {
        b.iter_custom(|iters| {
            contended(2, iters, &|| {
                black_box(ours.check().is_ok());
            })
        })
    });
    let theirs = theirs();
    group.bench_function("governor", |b| {
        b.iter_custom(|iters| {
            contended(2, iters, &|| {
                black_box(theirs.check().is_ok());
            })
        })
    });
    group.finish();
}

mod group {
    // criterion_group! expands to an undocumented `pub fn`.
    #![allow(missing_docs, unreachable_pub)]
    criterion::criterion_group!(benches, super::single_thread, super::two_threads);
}
criterion_main!(group::benches);
