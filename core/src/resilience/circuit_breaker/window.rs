//! Sliding windows over recorded calls with O(1) snapshots.
//!
//! Both windows keep running totals next to their ring, so a snapshot is a
//! copy of four counters whatever the window size.

use super::config::SlidingWindow;

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// Counts over the calls a window currently holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WindowSnapshot {
    /// Calls in the window.
    pub total: u64,
    /// Calls classified as failures.
    pub failed: u64,
    /// Calls at or above the slow-call duration threshold.
    pub slow: u64,
    /// Calls both slow and failed.
    pub slow_failed: u64,
}

impl WindowSnapshot {
    /// Failures as a percentage of calls; 0 for an empty window.
    pub fn failure_rate(&self) -> f32 {
        percent(self.failed, self.total)
    }

    /// Slow calls as a percentage of calls; 0 for an empty window.
    pub fn slow_call_rate(&self) -> f32 {
        percent(self.slow, self.total)
    }

    pub(crate) fn add(&mut self, call: Call) {
        self.total += 1;
        self.failed += u64::from(call.failed);
        self.slow += u64::from(call.slow);
        self.slow_failed += u64::from(call.failed && call.slow);
    }

    #[cfg(test)]
    fn add_all(&mut self, other: &Self) {
        self.total += other.total;
        self.failed += other.failed;
        self.slow += other.slow;
        self.slow_failed += other.slow_failed;
    }

    fn remove_all(&mut self, other: &Self) {
        self.total -= other.total;
        self.failed -= other.failed;
        self.slow -= other.slow;
        self.slow_failed -= other.slow_failed;
    }
}

fn percent(part: u64, total: u64) -> f32 {
    if total == 0 { 0.0 } else { (part as f64 * 100.0 / total as f64) as f32 }
}

/// One recorded call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Call {
    pub(crate) failed: bool,
    pub(crate) slow: bool,
}

impl Call {
    fn bits(self) -> u8 {
        u8::from(self.failed) | (u8::from(self.slow) << 1)
    }

    fn from_bits(bits: u8) -> Self {
        Self { failed: bits & 1 != 0, slow: bits & 2 != 0 }
    }
}

/// A count- or time-based window.
#[derive(Debug)]
pub(crate) enum Window {
    Count(CountWindow),
    Time(TimeWindow),
}

impl Window {
    pub(crate) fn new(kind: SlidingWindow) -> Self {
        match kind {
            SlidingWindow::CountBased(size) => Self::Count(CountWindow::new(size as usize)),
            SlidingWindow::TimeBased(secs) => Self::Time(TimeWindow::new(secs as usize)),
        }
    }

    pub(crate) fn record(&mut self, now_nanos: u64, call: Call) -> WindowSnapshot {
        match self {
            Self::Count(w) => w.record(call),
            Self::Time(w) => w.record(now_nanos, call),
        }
    }

    pub(crate) fn snapshot(&mut self, now_nanos: u64) -> WindowSnapshot {
        match self {
            Self::Count(w) => w.totals,
            Self::Time(w) => {
                w.roll(now_nanos);
                w.totals
            }
        }
    }

    pub(crate) fn clear(&mut self) {
        match self {
            Self::Count(w) => w.clear(),
            Self::Time(w) => w.clear(),
        }
    }
}

/// The last `size` calls, one byte each, overwritten in ring order.
#[derive(Debug)]
pub(crate) struct CountWindow {
    ring: Box<[u8]>,
    head: usize,
    len: usize,
    totals: WindowSnapshot,
}

impl CountWindow {
    fn new(size: usize) -> Self {
        Self { ring: vec![0; size.max(1)].into_boxed_slice(), head: 0, len: 0, totals: WindowSnapshot::default() }
    }

    fn record(&mut self, call: Call) -> WindowSnapshot {
        if self.len == self.ring.len() {
            let evicted = Call::from_bits(self.ring[self.head]);
            self.totals.remove_all(&single(evicted));
        } else {
            self.len += 1;
        }
        self.ring[self.head] = call.bits();
        self.head += 1;
        if self.head == self.ring.len() {
            self.head = 0;
        }
        self.totals.add(call);
        self.totals
    }

    fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
        self.totals = WindowSnapshot::default();
    }
}

fn single(call: Call) -> WindowSnapshot {
    let mut s = WindowSnapshot::default();
    s.add(call);
    s
}

/// Calls of the last `seconds` whole seconds of clock time (the current one
/// included), one bucket per second.
#[derive(Debug)]
pub(crate) struct TimeWindow {
    buckets: Box<[WindowSnapshot]>,
    current_sec: u64,
    totals: WindowSnapshot,
}

impl TimeWindow {
    fn new(seconds: usize) -> Self {
        Self {
            buckets: vec![WindowSnapshot::default(); seconds.max(1)].into_boxed_slice(),
            current_sec: 0,
            totals: WindowSnapshot::default(),
        }
    }

    /// Drops the buckets that fell out of the window; at most one pass over
    /// the ring however long the clock jumped.
    fn roll(&mut self, now_nanos: u64) {
        let sec = now_nanos / NANOS_PER_SEC;
        if sec <= self.current_sec {
            return;
        }
        let n = self.buckets.len() as u64;
        let steps = sec - self.current_sec;
        if steps >= n {
            self.buckets.fill(WindowSnapshot::default());
            self.totals = WindowSnapshot::default();
        } else {
            for s in self.current_sec + 1..=sec {
                let idx = (s % n) as usize;
                let old = self.buckets[idx];
                self.totals.remove_all(&old);
                self.buckets[idx] = WindowSnapshot::default();
            }
        }
        self.current_sec = sec;
    }

    fn record(&mut self, now_nanos: u64, call: Call) -> WindowSnapshot {
        self.roll(now_nanos);
        // A clock reading older than the current bucket (a racing recorder
        // read the clock before another rolled) lands in the current bucket.
        let idx = (self.current_sec % self.buckets.len() as u64) as usize;
        self.buckets[idx].add(call);
        self.totals.add(call);
        self.totals
    }

    fn clear(&mut self) {
        self.buckets.fill(WindowSnapshot::default());
        self.totals = WindowSnapshot::default();
    }

    #[cfg(test)]
    fn recomputed(&self) -> WindowSnapshot {
        let mut s = WindowSnapshot::default();
        for b in self.buckets.iter() {
            s.add_all(b);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const OK: Call = Call { failed: false, slow: false };
    const FAIL: Call = Call { failed: true, slow: false };
    const SLOW: Call = Call { failed: false, slow: true };

    fn naive(calls: &[Call]) -> WindowSnapshot {
        let mut s = WindowSnapshot::default();
        for c in calls {
            s.add(*c);
        }
        s
    }

    #[test]
    fn count_window_rolls_over_the_oldest_call() {
        let mut w = Window::new(SlidingWindow::CountBased(3));
        w.record(0, FAIL);
        w.record(0, FAIL);
        let s = w.record(0, OK);
        assert_eq!((s.total, s.failed), (3, 2));
        let s = w.record(0, OK);
        assert_eq!((s.total, s.failed), (3, 1));
        let s = w.record(0, SLOW);
        assert_eq!((s.total, s.failed, s.slow), (3, 0, 1));
        assert!((s.slow_call_rate() - 33.333).abs() < 0.01);
    }

    #[test]
    fn time_window_rolls_with_the_clock() {
        let sec = NANOS_PER_SEC;
        let mut w = Window::new(SlidingWindow::TimeBased(3));
        w.record(0, FAIL);
        w.record(sec, OK);
        w.record(2 * sec + 5, FAIL);
        assert_eq!(w.snapshot(2 * sec + 10).total, 3);
        // Second 0 leaves the window when second 3 begins.
        let s = w.snapshot(3 * sec);
        assert_eq!((s.total, s.failed), (2, 1));
        let s = w.snapshot(4 * sec);
        assert_eq!((s.total, s.failed), (1, 1));
        // A jump longer than the window empties it.
        assert_eq!(w.snapshot(100 * sec), WindowSnapshot::default());
        assert_eq!(w.record(100 * sec, OK).total, 1);
    }

    #[test]
    fn clear_empties_both_kinds() {
        for kind in [SlidingWindow::CountBased(2), SlidingWindow::TimeBased(2)] {
            let mut w = Window::new(kind);
            w.record(0, FAIL);
            w.clear();
            assert_eq!(w.snapshot(0), WindowSnapshot::default());
        }
    }

    fn call_strategy() -> impl Strategy<Value = Call> {
        (any::<bool>(), any::<bool>()).prop_map(|(failed, slow)| Call { failed, slow })
    }

    proptest! {
        #[test]
        fn count_snapshot_equals_naive_recount_of_last_n(
            size in 1u32..20,
            calls in proptest::collection::vec(call_strategy(), 0..200),
        ) {
            let mut w = Window::new(SlidingWindow::CountBased(size));
            for (i, c) in calls.iter().enumerate() {
                let got = w.record(0, *c);
                let start = (i + 1).saturating_sub(size as usize);
                prop_assert_eq!(got, naive(&calls[start..=i]));
            }
        }

        #[test]
        fn time_snapshot_equals_naive_recount_of_last_seconds(
            secs in 1u32..10,
            steps in proptest::collection::vec((0u64..3_000_000_000, call_strategy()), 0..200),
        ) {
            let mut w = Window::new(SlidingWindow::TimeBased(secs));
            let mut now = 0u64;
            let mut log: Vec<(u64, Call)> = Vec::new();
            for (advance, c) in steps {
                now += advance;
                w.record(now, c);
                log.push((now / NANOS_PER_SEC, c));
                let cur = now / NANOS_PER_SEC;
                let recent: Vec<Call> = log
                    .iter()
                    .filter(|(s, _)| cur - s < u64::from(secs))
                    .map(|(_, c)| *c)
                    .collect();
                let snap = w.snapshot(now);
                prop_assert_eq!(snap, naive(&recent));
                if let Window::Time(t) = &w {
                    prop_assert_eq!(t.recomputed(), snap);
                }
            }
        }
    }
}
