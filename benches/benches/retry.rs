//! Retry overhead on the success path: `Retrier::call` around an operation
//! that succeeds at once, against awaiting the operation directly.
//!
//! The futures complete on their first poll (no sleep happens on the
//! success path), so they are polled once with a no-op waker instead of a
//! runtime: what remains is the retry bookkeeping itself (clock read,
//! classifier, budget deposit and refund).

use std::future::Future;
use std::hint::black_box;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bazaar_core::resilience::retry::{Backoff, Retrier, RetryPolicy, TokenBucketBudget, TpsBudget};
use criterion::{Criterion, criterion_main};

/// Polls a future that is expected to be ready at once.
fn ready_now<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the success path must not wait"),
    }
}

async fn op() -> Result<u64, ()> {
    Ok(black_box(42))
}

fn success_path(c: &mut Criterion) {
    let mut group = c.benchmark_group("retry/success_path");
    group.bench_function("direct", |b| b.iter(|| black_box(ready_now(op()))));

    let policy = RetryPolicy::new(3, Backoff::exponential(Duration::from_millis(10), 2.0, Duration::from_secs(1)));
    let plain = Retrier::new(policy);
    group.bench_function("retrier", |b| b.iter(|| black_box(ready_now(plain.call(op)))));

    let bucket = Retrier::new(policy).with_budget(Arc::new(TokenBucketBudget::new(500)));
    group.bench_function("retrier_token_bucket", |b| b.iter(|| black_box(ready_now(bucket.call(op)))));

    let tps = Retrier::new(policy).with_budget(Arc::new(TpsBudget::new(Duration::from_secs(10), 10, 0.2)));
    group.bench_function("retrier_tps_budget", |b| b.iter(|| black_box(ready_now(tps.call(op)))));
    group.finish();
}

mod group {
    // criterion_group! expands to an undocumented `pub fn`.
    #![allow(missing_docs, unreachable_pub)]
    criterion::criterion_group!(benches, super::success_path);
}
criterion_main!(group::benches);
