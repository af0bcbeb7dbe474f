//! tower's `TpsBudget`: retries as a percentage of recent requests, plus a
//! floor of retries per second, over a sliding window of generations.

use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

use super::{RetryBudget, RetryCost};
use crate::resilience::clock::{MonotonicClock, SystemClock};

const GENERATIONS: u32 = 10;

#[derive(Debug)]
struct Generation {
    index: usize,
    started_nanos: u64,
}

/// A budget that allows retries up to `retry_percent` of the requests seen
/// in the last `ttl`, plus `min_per_sec` retries per second regardless.
///
/// Same semantics as `tower::retry::budget::TpsBudget`: every request
/// deposits, every retry withdraws; deposits live in 10 generations of
/// `ttl / 10` that slide out as time passes; the floor is a fixed reserve
/// of `min_per_sec · ttl` retries. Retry cost does not matter here (a
/// timeout withdraws the same as any failure) and successes change nothing.
#[derive(Debug)]
pub struct TpsBudget {
    generation: Mutex<Generation>,
    slots: Box<[AtomicIsize]>,
    writer: AtomicIsize,
    /// Mirror of `generation.started_nanos` for the lock-free check.
    window_started: AtomicU64,
    window_nanos: u64,
    reserve: isize,
    deposit_amount: isize,
    withdraw_amount: isize,
    clock: Arc<dyn MonotonicClock>,
}

impl TpsBudget {
    /// A budget on the system clock. `ttl` is clamped to 1..=60 s (tower
    /// panics instead) and `retry_percent` to 0..=1000 (1.0 = one retry per
    /// request).
    pub fn new(ttl: Duration, min_per_sec: u32, retry_percent: f32) -> Self {
        Self::with_clock(ttl, min_per_sec, retry_percent, Arc::new(SystemClock::new()))
    }

    /// A budget on an injected clock.
    pub fn with_clock(ttl: Duration, min_per_sec: u32, retry_percent: f32, clock: Arc<dyn MonotonicClock>) -> Self {
        let ttl = ttl.clamp(Duration::from_secs(1), Duration::from_secs(60));
        let retry_percent = if retry_percent.is_nan() { 0.0 } else { retry_percent.clamp(0.0, 1000.0) };
        // Integer amounts as in tower: a deposit of 1 per request and a
        // withdrawal of 1/percent per retry keeps the ratio exact without
        // floats on the hot path.
        let (deposit_amount, withdraw_amount) = if retry_percent == 0.0 {
            (0, 1)
        } else if retry_percent <= 1.0 {
            (1, (1.0 / retry_percent) as isize)
        } else {
            (1000, (1000.0 / retry_percent) as isize)
        };
        let reserve = isize::try_from(min_per_sec)
            .unwrap_or(isize::MAX)
            .saturating_mul(ttl.as_secs() as isize)
            .saturating_mul(withdraw_amount);
        let started_nanos = clock.now_nanos();
        Self {
            generation: Mutex::new(Generation { index: 0, started_nanos }),
            slots: (0..GENERATIONS).map(|_| AtomicIsize::new(0)).collect(),
            writer: AtomicIsize::new(0),
            window_started: AtomicU64::new(started_nanos),
            window_nanos: u64::try_from((ttl / GENERATIONS).as_nanos()).unwrap_or(u64::MAX),
            reserve,
            deposit_amount,
            withdraw_amount,
            clock,
        }
    }

    /// Rotates generations that have aged out. Cheap when nothing expired:
    /// one uncontended lock and a comparison.
    fn expire(&self) {
        let now = self.clock.now_nanos();
        // Lock-free fast path: most calls land inside the current window.
        if now.saturating_sub(self.window_started.load(Ordering::Acquire)) < self.window_nanos {
            return;
        }
        let mut generation = self.generation.lock();
        let mut elapsed = now.saturating_sub(generation.started_nanos);
        if elapsed < self.window_nanos {
            return;
        }
        let committed = self.writer.swap(0, Ordering::SeqCst);
        self.slots[generation.index].store(committed, Ordering::SeqCst);
        let mut index = (generation.index + 1) % self.slots.len();
        // Every further whole window that passed clears one more generation.
        while elapsed > self.window_nanos {
            self.slots[index].store(0, Ordering::SeqCst);
            elapsed -= self.window_nanos;
            index = (index + 1) % self.slots.len();
        }
        generation.index = index;
        generation.started_nanos = now;
        self.window_started.store(now, Ordering::Release);
    }

    fn sum(&self) -> isize {
        let windowed = self.slots.iter().map(|s| s.load(Ordering::SeqCst)).fold(0, isize::saturating_add);
        self.writer.load(Ordering::SeqCst).saturating_add(windowed).saturating_add(self.reserve)
    }

    /// How many retries the budget would allow right now.
    pub fn available(&self) -> usize {
        self.expire();
        usize::try_from(self.sum() / self.withdraw_amount.max(1)).unwrap_or(0)
    }
}

impl RetryBudget for TpsBudget {
    fn deposit(&self) {
        self.expire();
        self.writer.fetch_add(self.deposit_amount, Ordering::SeqCst);
    }

    fn withdraw(&self, _cost: RetryCost) -> bool {
        self.expire();
        // As in tower, check-then-subtract can overdraw by a few retries
        // under a race; the budget is a soft cap and stays lock-free.
        if self.sum() >= self.withdraw_amount {
            self.writer.fetch_sub(self.withdraw_amount, Ordering::SeqCst);
            true
        } else {
            false
        }
    }

    fn record_success(&self, _last_retry: Option<RetryCost>) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resilience::clock::ManualClock;

    fn budget(min_per_sec: u32, percent: f32) -> (TpsBudget, ManualClock) {
        let clock = ManualClock::new();
        (TpsBudget::with_clock(Duration::from_secs(10), min_per_sec, percent, Arc::new(clock.clone())), clock)
    }

    #[test]
    fn reserve_allows_min_per_sec_times_ttl() {
        let (b, _) = budget(1, 0.2);
        for _ in 0..10 {
            assert!(b.withdraw(RetryCost::Transient));
        }
        assert!(!b.withdraw(RetryCost::Transient));
    }

    #[test]
    fn deposits_buy_a_percentage_of_retries() {
        let (b, _) = budget(0, 0.5);
        assert!(!b.withdraw(RetryCost::Transient));
        for _ in 0..4 {
            b.deposit();
        }
        assert_eq!(b.available(), 2);
        assert!(b.withdraw(RetryCost::Timeout));
        assert!(b.withdraw(RetryCost::Transient));
        assert!(!b.withdraw(RetryCost::Transient));
    }

    #[test]
    fn deposits_slide_out_after_ttl() {
        let (b, clock) = budget(0, 1.0);
        for _ in 0..3 {
            b.deposit();
        }
        clock.advance(Duration::from_secs(5));
        assert_eq!(b.available(), 3);
        b.deposit();
        clock.advance(Duration::from_secs(6));
        // The first three are 11 s old and gone; the fourth is 6 s old.
        assert_eq!(b.available(), 1);
        clock.advance(Duration::from_secs(11));
        assert_eq!(b.available(), 0);
        assert!(!b.withdraw(RetryCost::Transient));
    }

    #[test]
    fn zero_percent_only_spends_the_reserve() {
        let (b, _) = budget(1, 0.0);
        for _ in 0..100 {
            b.deposit();
        }
        assert_eq!(b.available(), 10);
    }
}
