//! Backoff schedules: constant, exponential with a cap, and the three jitter
//! modes of AWS's "Exponential Backoff and Jitter".

use std::time::Duration;

use crate::resilience::clock::JitterSource;

/// How randomness is applied to the capped delay `c = min(cap, base·factor^n)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Jitter {
    /// Exactly `c`.
    #[default]
    None,
    /// Uniform in `[0, c)`: best at spreading contending clients.
    Full,
    /// Uniform in `[c/2, c)`: never retries almost at once.
    Equal,
    /// `min(cap, uniform in [base, 3·previous))`: AWS's decorrelated
    /// jitter, which grows from the previous delay rather than from `n`.
    Decorrelated,
}

/// A backoff schedule. The cap is applied before jitter, so jitter spreads
/// delays below the cap instead of pushing them above it.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use bazaar_core::resilience::clock::FixedJitter;
/// use bazaar_core::resilience::retry::{Backoff, Jitter};
///
/// let b = Backoff::exponential(Duration::from_millis(100), 2.0, Duration::from_secs(1));
/// let delays: Vec<_> = (0..5).map(|n| b.delay(n, None, &FixedJitter(0.0))).collect();
/// assert_eq!(delays[3], Duration::from_millis(800));
/// assert_eq!(delays[4], Duration::from_secs(1)); // capped
/// let full = b.with_jitter(Jitter::Full);
/// assert_eq!(full.delay(4, None, &FixedJitter(0.5)), Duration::from_millis(500));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    base: Duration,
    factor: f64,
    cap: Duration,
    jitter: Jitter,
}

impl Backoff {
    /// The same delay before every retry.
    pub fn constant(delay: Duration) -> Self {
        Self { base: delay, factor: 1.0, cap: delay, jitter: Jitter::None }
    }

    /// `base·factor^n` before retry `n` (0-based), never above `cap`.
    /// A factor below 1 (or NaN) is raised to 1 so delays never shrink.
    pub fn exponential(base: Duration, factor: f64, cap: Duration) -> Self {
        let factor = if factor >= 1.0 { factor } else { 1.0 };
        Self { base, factor, cap: cap.max(base), jitter: Jitter::None }
    }

    /// The same schedule with `jitter`.
    #[must_use]
    pub fn with_jitter(self, jitter: Jitter) -> Self {
        Self { jitter, ..self }
    }

    /// The first delay before jitter.
    pub fn base(&self) -> Duration {
        self.base
    }

    /// The largest delay.
    pub fn cap(&self) -> Duration {
        self.cap
    }

    /// The jitter mode.
    pub fn jitter(&self) -> Jitter {
        self.jitter
    }

    /// The capped delay before jitter for retry `n` (0-based).
    pub fn ceiling(&self, n: u32) -> Duration {
        let exp = i32::try_from(n).unwrap_or(i32::MAX);
        let nanos = self.base.as_nanos() as f64 * self.factor.powi(exp);
        // Comparing in f64 first keeps huge exponents (inf) from wrapping.
        if nanos >= self.cap.as_nanos() as f64 { self.cap } else { Duration::from_nanos(nanos as u64) }
    }

    /// The delay before retry `n` (0-based). `previous` is the delay used
    /// before the previous retry (only decorrelated jitter reads it; `None`
    /// means "no retry yet" and counts as `base`).
    pub fn delay(&self, n: u32, previous: Option<Duration>, jitter: &dyn JitterSource) -> Duration {
        let ceiling = self.ceiling(n);
        match self.jitter {
            Jitter::None => ceiling,
            Jitter::Full => ceiling.mul_f64(jitter.next_unit()),
            Jitter::Equal => {
                let half = ceiling / 2;
                half + (ceiling - half).mul_f64(jitter.next_unit())
            }
            Jitter::Decorrelated => {
                let low = self.base.min(self.cap);
                let prev = previous.unwrap_or(self.base).max(low);
                let high = prev.saturating_mul(3);
                let sample = low + (high - low).mul_f64(jitter.next_unit());
                sample.min(self.cap)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::resilience::clock::FixedJitter;

    const MS: Duration = Duration::from_millis(1);

    fn exp() -> Backoff {
        Backoff::exponential(100 * MS, 2.0, 1000 * MS)
    }

    #[test]
    fn constant_never_changes() {
        let b = Backoff::constant(250 * MS);
        for n in 0..10 {
            assert_eq!(b.delay(n, None, &FixedJitter(0.9)), 250 * MS);
        }
    }

    #[test]
    fn exponential_sequence_is_capped() {
        let seq: Vec<_> = (0..6).map(|n| exp().delay(n, None, &FixedJitter(0.0))).collect();
        assert_eq!(seq, [100 * MS, 200 * MS, 400 * MS, 800 * MS, 1000 * MS, 1000 * MS]);
        assert_eq!(exp().delay(u32::MAX, None, &FixedJitter(0.0)), 1000 * MS);
    }

    #[test]
    fn cap_applies_before_jitter() {
        // Uncapped retry 5 would be 3.2 s; full jitter at 0.5 must give half
        // of the cap, not half of 3.2 s.
        let full = exp().with_jitter(Jitter::Full);
        assert_eq!(full.delay(5, None, &FixedJitter(0.5)), 500 * MS);
        let equal = exp().with_jitter(Jitter::Equal);
        assert_eq!(equal.delay(5, None, &FixedJitter(0.0)), 500 * MS);
        assert_eq!(equal.delay(1, None, &FixedJitter(0.5)), 150 * MS);
    }

    #[test]
    fn decorrelated_grows_from_the_previous_delay() {
        let d = exp().with_jitter(Jitter::Decorrelated);
        assert_eq!(d.delay(0, None, &FixedJitter(0.0)), 100 * MS);
        // uniform in [100, 3·200) at 0.5 → 350 ms
        assert_eq!(d.delay(1, Some(200 * MS), &FixedJitter(0.5)), 350 * MS);
        assert_eq!(d.delay(2, Some(900 * MS), &FixedJitter(0.9)), 1000 * MS);
    }

    fn jitter_mode() -> impl Strategy<Value = Jitter> {
        prop_oneof![Just(Jitter::None), Just(Jitter::Full), Just(Jitter::Equal), Just(Jitter::Decorrelated)]
    }

    proptest! {
        #[test]
        fn every_strategy_stays_within_its_bounds(
            base_ms in 1u64..1_000,
            factor in 1.0f64..4.0,
            cap_ms in 1u64..60_000,
            n in 0u32..64,
            prev_ms in proptest::option::of(0u64..100_000),
            unit in 0.0f64..1.0,
            mode in jitter_mode(),
        ) {
            let b = Backoff::exponential(Duration::from_millis(base_ms), factor, Duration::from_millis(cap_ms))
                .with_jitter(mode);
            let prev = prev_ms.map(Duration::from_millis);
            let d = b.delay(n, prev, &FixedJitter(unit));
            let ceiling = b.ceiling(n);
            prop_assert!(ceiling <= b.cap());
            prop_assert!(d <= b.cap());
            match mode {
                Jitter::None => prop_assert_eq!(d, ceiling),
                Jitter::Full => prop_assert!(d <= ceiling),
                Jitter::Equal => prop_assert!(d >= ceiling / 2 && d <= ceiling),
                Jitter::Decorrelated => {
                    let low = b.base().min(b.cap());
                    let prev = prev.unwrap_or(b.base()).max(low);
                    prop_assert!(d >= low);
                    prop_assert!(d <= prev * 3);
                }
            }
        }
    }
}
