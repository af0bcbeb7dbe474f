//! Contract suite for [`RateLimitStore`]: the same GCRA decisions from every
//! backend (in-process, Redis).
//!
//! The store keeps its own clock (Redis uses the server's `TIME`), so the
//! suite uses a slow quota — one cell a minute — under which no test can see
//! a cell replenish, and asserts only what must hold at any real speed.

use std::num::NonZeroU32;
use std::time::Duration;

use crate::resilience::rate_limit::{Decision, Quota, RateLimitStore};

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).expect("non-zero")
}

/// Runs every check against `store`. `prefix` must be unique per run so
/// keys from earlier runs on a shared backend cannot interfere.
///
/// # Panics
/// When the store breaks the contract.
pub async fn rate_limit_store(store: &dyn RateLimitStore, prefix: &str) {
    burst_then_denial_with_a_wait(store, &format!("{prefix}:burst")).await;
    keys_are_independent(store, prefix).await;
    more_than_the_burst_is_never_admissible(store, &format!("{prefix}:capacity")).await;
    check_n_takes_n_cells(store, &format!("{prefix}:n")).await;
}

async fn burst_then_denial_with_a_wait(store: &dyn RateLimitStore, key: &str) {
    let quota = Quota::per_minute(nz(1)).allow_burst(nz(3));
    for i in 0..3 {
        let d = store.check(key, &quota, 1).await.expect("store answers");
        assert!(d.is_allowed(), "cell {i} of a burst of 3 must be admitted, got {d:?}");
    }
    match store.check(key, &quota, 1).await.expect("store answers") {
        Decision::Denied { retry_after } => {
            assert!(retry_after > Duration::ZERO, "a denial says how long to wait");
            assert!(
                retry_after <= Duration::from_secs(60),
                "never longer than one emission interval, got {retry_after:?}"
            );
        }
        other => panic!("the 4th cell of a burst of 3 must be denied, got {other:?}"),
    }
}

async fn keys_are_independent(store: &dyn RateLimitStore, prefix: &str) {
    let quota = Quota::per_minute(nz(1));
    let (a, b) = (format!("{prefix}:a"), format!("{prefix}:b"));
    assert!(store.check(&a, &quota, 1).await.expect("store answers").is_allowed());
    assert!(!store.check(&a, &quota, 1).await.expect("store answers").is_allowed(), "a is spent");
    assert!(store.check(&b, &quota, 1).await.expect("store answers").is_allowed(), "b is untouched by a");
}

async fn more_than_the_burst_is_never_admissible(store: &dyn RateLimitStore, key: &str) {
    let quota = Quota::per_minute(nz(1)).allow_burst(nz(2));
    match store.check(key, &quota, 3).await.expect("store answers") {
        Decision::InsufficientCapacity { .. } => {}
        other => panic!("3 cells never fit a burst of 2, got {other:?}"),
    }
    assert!(
        store.check(key, &quota, 2).await.expect("store answers").is_allowed(),
        "a refused oversized request spends nothing"
    );
}

async fn check_n_takes_n_cells(store: &dyn RateLimitStore, key: &str) {
    let quota = Quota::per_minute(nz(1)).allow_burst(nz(5));
    assert!(store.check(key, &quota, 4).await.expect("store answers").is_allowed());
    assert!(store.check(key, &quota, 1).await.expect("store answers").is_allowed(), "one cell left");
    assert!(!store.check(key, &quota, 1).await.expect("store answers").is_allowed(), "all five spent");
}
