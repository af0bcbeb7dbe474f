//! Sliding windows over recorded calls.
//!
//! The count window is lock-free and O(1) per record:
//! - full of the outcome being recorded (a healthy upstream: every slot a
//!   fast success): two loads and nothing written, see `is_full_of`;
//! - otherwise a load and a plain store of a position hint pick the slot; a
//!   load shows whether the slot already holds the outcome (nothing more to
//!   do, no atomic read-modify-write at all), else a compare-and-swap writes
//!   it and a `fetch_add` of a packed signed delta updates the running
//!   failure/slow totals. While the window fills, a second `fetch_add`
//!   counts the call (and slow failures change it too).
//!
//! A snapshot reads two words, whatever the window size.
//!
//! The time window keeps its per-second ring behind the breaker's lock; it
//! rolls at most one pass over the ring per record however long the clock
//! jumped, and a snapshot is a copy of four running totals.
//!
//! # The count window's words
//!
//! ```text
//! next         the slot the next record writes (untagged, never reset)
//! rates        bits 0..24  failed (signed)  bits 24..48 slow          bits 48..64 tag
//! fill         bits 0..24  calls (signed)   bits 24..48 slow+failed   bits 48..64 tag
//! slot         bits 0..8   outcome code (0 = empty)                   bits 8..40  generation
//! ```
//!
//! Every count is a running total of what the slots hold, moved by the
//! difference between the outcome a compare-and-swap wrote and the one it
//! replaced; `fill`'s call count is the number of slots holding a call of
//! the current cycle. So no count depends on which slot a record picked,
//! and `next` needs no read-modify-write: racing recorders that read the
//! same position write the same slot one after the other (each delta is
//! exact), and one of them skips a slot for a lap. For a single recorder
//! the position is exact, so the window holds exactly the last `size`
//! calls.
//!
//! The tag is the low 16 bits of the breaker generation the window belongs
//! to. Entering closed or metrics-only re-tags `fill`, then `rates`, with
//! zeroed payloads (`sync`); slots are not touched, because a slot stamped
//! with an older generation counts as empty. A recorder checks `rates`' tag
//! before it writes a slot (catching the window up if its own cycle is
//! newer); one whose `fetch_add` returns a word carrying a newer tag than
//! its own knows its delta landed in a later cycle and takes it back out
//! (with a compare-and-swap that stops if a still later reset wiped it), so
//! a late recorder from a finished cycle disturbs the new one only for the
//! few nanoseconds in between.
//!
//! Slots carry the full 32-bit generation rather than the 16-bit tag so a
//! slot left untouched across many cycles is still recognised as old: it
//! would have to sit unwritten through 2^31 transitions to look current.
//!
//! Fields are signed because deltas from concurrent recorders may land out
//! of ring order: the one that swapped a slot first may add its delta last,
//! so a field can dip below zero or above the window size by at most the
//! number of recorders in flight. Decoding sign-extends each field from the
//! bottom up, which recovers the exact values as long as they stay within
//! ±2^23 (the window holds at most 10^6 calls).
//!
//! # What a count snapshot guarantees
//!
//! - Always: `failed ≤ total`, `slow ≤ total`, `slow_failed ≤ min(failed,
//!   slow)`, `total ≤ size`, nothing negative (fields are clamped).
//! - When no record is in flight: `total`, `failed`, `slow` and
//!   `slow_failed` equal a recount of the outcomes the ring holds for the
//!   current cycle; after any sequential sequence of records that is
//!   exactly the last `size` calls, and `total` is `min(calls, size)`.
//! - With records in flight, each field may be off by the number of them;
//!   which calls are "the last `size`" is not defined under concurrency
//!   anyway (two racing recorders may write one slot, leaving another
//!   slot's older call in the ring for one more lap, or, while the window
//!   fills, one fewer call counted until a record reaches the skipped slot).

use std::sync::atomic::{AtomicU64, Ordering};

use super::config::SlidingWindow;
use super::state::is_newer;

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
    /// The slot code: bit 2 marks a call (so 0 is an empty slot), bit 0
    /// failed, bit 1 slow.
    fn code(self) -> u8 {
        4 | u8::from(self.failed) | (u8::from(self.slow) << 1)
    }
}

/// What the trip check needs: calls, failures and slow calls, consistent
/// with one another (`failed, slow ≤ total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rates {
    pub(crate) total: u64,
    pub(crate) failed: u64,
    pub(crate) slow: u64,
}

impl From<&WindowSnapshot> for Rates {
    fn from(s: &WindowSnapshot) -> Self {
        Self { total: s.total, failed: s.failed, slow: s.slow }
    }
}

/// The result of recording into a [`CountWindow`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Recorded {
    /// The window belongs to a later cycle; the call was not counted.
    Stale,
    /// Counted, and nothing the trip check reads changed (the window was
    /// full and the overwritten slot held the same outcome), or a later
    /// cycle took over right after; no trip check needed.
    Unchanged,
    /// Counted; the rates right after this record.
    Changed(Rates),
}

const TAG_SHIFT: u32 = 48;
const PAYLOAD_MASK: u64 = (1 << TAG_SHIFT) - 1;
const FIELD_BITS: u32 = 24;
const FIELD_MASK: u64 = (1 << FIELD_BITS) - 1;

/// Sign-extends the low `bits` bits of `v`.
fn sign_extend(v: u64, bits: u32) -> i64 {
    ((v << (64 - bits)) as i64) >> (64 - bits)
}

/// Splits a tagged word into its tag and signed 48-bit payload. A negative
/// payload borrowed one from the tag bits; subtracting the sign-extended
/// payload first gives the borrow back.
fn split(word: u64) -> (u16, i64) {
    let payload = sign_extend(word & PAYLOAD_MASK, TAG_SHIFT);
    ((word.wrapping_sub(payload as u64) >> TAG_SHIFT) as u16, payload)
}

/// The low and high 24-bit fields of a payload: `(failed, slow)` of
/// `rates`, `(total, slow_failed)` of `fill`.
fn split_rates(payload: i64) -> (i64, i64) {
    let low = sign_extend(payload as u64 & FIELD_MASK, FIELD_BITS);
    (low, (payload - low) >> FIELD_BITS)
}

/// What a slot code contributes to the `rates` payload.
fn rates_of(code: u8) -> u64 {
    u64::from(code & 1) | (u64::from((code >> 1) & 1) << FIELD_BITS)
}

/// What a slot code contributes to the `fill` payload: one call, and one
/// slow failure if it is both.
fn fill_of(code: u8) -> u64 {
    u64::from(code >> 2) | (u64::from(code & 3 == 3) << FIELD_BITS)
}

/// Whether 16-bit tag `a` is later than `b`, tolerant of wrap-around.
fn tag_newer(a: u16, b: u16) -> bool {
    (a.wrapping_sub(b) as i16) > 0
}

fn clamp(v: i64, max: u64) -> u64 {
    (v.max(0) as u64).min(max)
}

/// The shared words, on a cache line of their own: a record that writes
/// touches `next` and `rates` (and while filling `fill`) back to back, so
/// sharing one line means one line transfer per record under contention,
/// and keeping the line apart from the breaker's state word keeps those
/// writes from invalidating the line the admission check loads.
#[derive(Debug)]
#[repr(align(128))]
struct Counters {
    /// The slot the next record writes (a position hint, see the module
    /// docs); no tag, never reset.
    next: AtomicU64,
    rates: AtomicU64,
    fill: AtomicU64,
}

/// Takes `delta` back out of `word`, which read `cur` right after it was
/// added, unless a later cycle's reset has wiped it already: a blind
/// `fetch_sub` would then land in that cycle.
#[cold]
#[inline(never)]
fn take_back(word: &AtomicU64, mut cur: u64, delta: u64) {
    let (t, _) = split(cur);
    while split(cur).0 == t {
        match word.compare_exchange_weak(cur, cur.wrapping_sub(delta), Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return,
            Err(actual) => cur = actual,
        }
    }
}

/// The last `size` calls of the current closed (or metrics-only) cycle,
/// recorded without a lock. See the module docs for the layout and the
/// consistency it guarantees.
#[derive(Debug)]
pub(crate) struct CountWindow {
    words: Counters,
    slots: Box<[AtomicU64]>,
}

impl CountWindow {
    /// An empty window of `size` slots belonging to generation 0.
    pub(crate) fn new(size: usize) -> Self {
        let size = size.max(1);
        Self {
            words: Counters { next: AtomicU64::new(0), rates: AtomicU64::new(0), fill: AtomicU64::new(0) },
            slots: (0..size).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn size(&self) -> u64 {
        self.slots.len() as u64
    }

    /// Takes the next slot position: a load and a plain store, exact for a
    /// single recorder; racing recorders may share or skip a position,
    /// which moves no count (see the module docs).
    #[inline]
    fn take_position(&self) -> usize {
        let size = self.slots.len();
        // A racing store may have left any value; reduce it into range.
        let mut p = self.words.next.load(Ordering::Relaxed) as usize;
        if p >= size {
            p %= size;
        }
        let next = if p + 1 == size { 0 } else { p + 1 };
        self.words.next.store(next as u64, Ordering::Relaxed);
        p
    }

    /// Starts an empty window for `generation` unless the window already
    /// belongs to it or a later one. Idempotent; racing callers agree.
    ///
    /// `rates` is re-tagged last: a recorder that sees the new tag there
    /// can rely on `fill` already being re-tagged.
    pub(crate) fn sync(&self, generation: u32) {
        let tag = generation as u16;
        for word in [&self.words.fill, &self.words.rates] {
            let mut cur = word.load(Ordering::Acquire);
            loop {
                let (t, _) = split(cur);
                if t == tag || tag_newer(t, tag) {
                    break;
                }
                match word.compare_exchange_weak(cur, u64::from(tag) << TAG_SHIFT, Ordering::AcqRel, Ordering::Acquire)
                {
                    Ok(_) => break,
                    Err(actual) => cur = actual,
                }
            }
        }
    }

    /// Records `call` for `generation`, catching the window up if this is
    /// the first record of a cycle whose transition has not synced it yet.
    pub(crate) fn record(&self, generation: u32, call: Call) -> Recorded {
        let tag = generation as u16;
        let size = self.size();
        let rates_now = self.words.rates.load(Ordering::Acquire);
        let (t, payload) = split(rates_now);
        if t == tag {
            if self.is_full_of_payload(payload, call) && self.fill_full(tag) {
                // Every slot already holds this outcome, so whichever slot
                // the call overwrote, the window would hold the same
                // multiset of outcomes in an unobservably rotated ring.
                // Skipping the write is exact, and it keeps a healthy
                // breaker's record path free of writes to shared lines.
                // (The breaker also checks this inline before calling here.)
                if call == (Call { failed: false, slow: false }) {
                    return Recorded::Unchanged;
                }
                // A window full of failures or slow calls is at 100 %:
                // report it, so the trip check runs even if the recorder
                // that filled it has not got to its own check yet.
                return Recorded::Changed(Rates {
                    total: size,
                    failed: size * u64::from(call.failed),
                    slow: size * u64::from(call.slow),
                });
            }
        } else if tag_newer(tag, t) {
            // The first record of a cycle nobody synced yet.
            self.sync(generation);
        } else {
            return Recorded::Stale;
        }

        let code = call.code();
        let new = (u64::from(generation) << 8) | u64::from(code);
        let slot = &self.slots[self.take_position()];
        let mut cur = slot.load(Ordering::Acquire);
        let old = loop {
            if cur == new {
                // Writing the value the slot already holds changes nothing:
                // it is a swap that returned `new`, taken at this load. A
                // healthy upstream lands here, keeping the slot line shared.
                break code;
            }
            let slot_generation = (cur >> 8) as u32;
            let old = if slot_generation == generation {
                cur as u8
            } else if is_newer(slot_generation, generation) {
                // A later cycle wrote here, so it reset the totals after our
                // check; nothing of ours landed.
                return Recorded::Stale;
            } else {
                0
            };
            match slot.compare_exchange_weak(cur, new, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => break old,
                Err(actual) => cur = actual,
            }
        };

        let d_rates = rates_of(code).wrapping_sub(rates_of(old));
        let d_fill = fill_of(code).wrapping_sub(fill_of(old));
        if d_fill == 0 && d_rates == 0 {
            return Recorded::Unchanged;
        }
        let filling = old == 0;
        if d_fill != 0 && self.apply(&self.words.fill, tag, d_fill).is_none() {
            return Recorded::Stale;
        }
        if d_rates == 0 && !filling {
            // Only the slow-and-failed count moved; the trip check reads
            // nothing of it.
            return Recorded::Unchanged;
        }
        // While filling, even a zero delta goes through the `fetch_add`: the
        // recorder last in `rates`' modification order then sees every
        // earlier recorder's delta, and (by the load below, after it) every
        // earlier recorder's call, so the final state of a burst is always
        // trip-checked by someone.
        let Some(rates) = self.apply(&self.words.rates, tag, d_rates) else { return Recorded::Stale };
        let (t, fill) = split(self.words.fill.load(Ordering::Acquire));
        if t != tag {
            // Reset right after our delta, which went with it.
            return Recorded::Unchanged;
        }
        let (failed, slow) = split_rates(split(rates).1);
        let total = clamp(split_rates(fill).0, size);
        Recorded::Changed(Rates { total, failed: clamp(failed, total), slow: clamp(slow, total) })
    }

    /// Whether a `rates` payload has failures and slow calls each at 0 or
    /// `size` as `call` would have them in a window full of it.
    #[inline]
    fn is_full_of_payload(&self, payload: i64, call: Call) -> bool {
        let size = self.size() as i64;
        split_rates(payload) == (size * i64::from(call.failed), size * i64::from(call.slow))
    }

    /// Whether every slot holds a call of cycle `tag`.
    #[inline]
    fn fill_full(&self, tag: u16) -> bool {
        let (t, fill) = split(self.words.fill.load(Ordering::Acquire));
        t == tag && split_rates(fill).0 >= self.size() as i64
    }

    /// Whether the window of cycle `tag` is full and every slot holds
    /// `call`'s outcome: failures and slow calls are each 0 or `size`.
    #[inline]
    pub(crate) fn is_full_of(&self, generation: u32, call: Call) -> bool {
        let tag = generation as u16;
        let (t, payload) = split(self.words.rates.load(Ordering::Acquire));
        t == tag && self.is_full_of_payload(payload, call) && self.fill_full(tag)
    }

    /// Adds `delta` to a tagged word of cycle `tag`; the new word, or `None`
    /// (delta taken back out) if a later cycle owns the word.
    fn apply(&self, word: &AtomicU64, tag: u16, delta: u64) -> Option<u64> {
        let prev = word.fetch_add(delta, Ordering::AcqRel);
        let (t, _) = split(prev);
        if t == tag {
            return Some(prev.wrapping_add(delta));
        }
        if tag_newer(t, tag) {
            take_back(word, prev.wrapping_add(delta), delta);
        }
        // An older tag cannot be seen here (the recorder saw its own tag or
        // a newer one in `rates`, which is re-tagged after `fill`); if it
        // were, the pending reset drops the delta.
        None
    }

    /// The counts of the cycle the window belongs to; see the module docs
    /// for what they guarantee.
    pub(crate) fn snapshot(&self) -> WindowSnapshot {
        let (tf, pf) = split(self.words.fill.load(Ordering::Acquire));
        let (tr, pr) = split(self.words.rates.load(Ordering::Acquire));
        // Mid-reset the words disagree; the newest tag is the cycle, and a
        // word not yet re-tagged holds the old one's counts, so it reads 0.
        let cycle = if tag_newer(tf, tr) { tf } else { tr };
        let of = |t: u16, p: i64| if t == cycle { p } else { 0 };
        let (failed, slow) = split_rates(of(tr, pr));
        let (total, slow_failed) = split_rates(of(tf, pf));
        let total = clamp(total, self.size());
        let failed = clamp(failed, total);
        let slow = clamp(slow, total);
        WindowSnapshot { total, failed, slow, slow_failed: clamp(slow_failed, failed.min(slow)) }
    }

    /// The counts recomputed from the slots stamped with `generation`.
    #[cfg(test)]
    fn recount(&self, generation: u32) -> WindowSnapshot {
        let mut s = WindowSnapshot::default();
        for slot in self.slots.iter() {
            let v = slot.load(Ordering::Acquire);
            if (v >> 8) as u32 == generation && v as u8 != 0 {
                let code = v as u8;
                s.add(Call { failed: code & 1 != 0, slow: code & 2 != 0 });
            }
        }
        s
    }
}

/// Calls of the last `seconds` whole seconds of clock time (the current one
/// included), one bucket per second. Not thread-safe: the breaker keeps it
/// behind its lock.
#[derive(Debug)]
pub(crate) struct TimeWindow {
    buckets: Box<[WindowSnapshot]>,
    current_sec: u64,
    totals: WindowSnapshot,
}

impl TimeWindow {
    /// An empty window of `seconds` buckets.
    pub(crate) fn new(seconds: usize) -> Self {
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

    /// Records a call made at `now_nanos`; returns the totals right after.
    pub(crate) fn record(&mut self, now_nanos: u64, call: Call) -> &WindowSnapshot {
        self.roll(now_nanos);
        // A clock reading older than the current bucket (a racing recorder
        // read the clock before another rolled) lands in the current bucket.
        let idx = (self.current_sec % self.buckets.len() as u64) as usize;
        self.buckets[idx].add(call);
        self.totals.add(call);
        &self.totals
    }

    /// The totals as of `now_nanos`.
    pub(crate) fn snapshot(&mut self, now_nanos: u64) -> WindowSnapshot {
        self.roll(now_nanos);
        self.totals
    }

    pub(crate) fn clear(&mut self) {
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

/// Builds the window `kind` asks for: the lock-free count window, or the
/// time window for the breaker to keep behind its lock.
pub(crate) fn new_window(kind: SlidingWindow) -> Result<CountWindow, TimeWindow> {
    match kind {
        SlidingWindow::CountBased(size) => Ok(CountWindow::new(size as usize)),
        SlidingWindow::TimeBased(secs) => Err(TimeWindow::new(secs as usize)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicU32;

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

    fn changed(r: Recorded) -> Rates {
        match r {
            Recorded::Changed(r) => r,
            other => panic!("expected a change, got {other:?}"),
        }
    }

    #[test]
    fn count_window_rolls_over_the_oldest_call() {
        let w = CountWindow::new(3);
        w.record(0, FAIL);
        w.record(0, FAIL);
        let r = changed(w.record(0, OK));
        assert_eq!((r.total, r.failed), (3, 2));
        let r = changed(w.record(0, OK));
        assert_eq!((r.total, r.failed), (3, 1));
        let r = changed(w.record(0, SLOW));
        assert_eq!((r.total, r.failed, r.slow), (3, 0, 1));
        assert_eq!(w.record(0, OK), Recorded::Unchanged, "the slot already held a success");
        assert_eq!(w.record(0, SLOW), Recorded::Changed(Rates { total: 3, failed: 0, slow: 2 }));
        let s = w.snapshot();
        assert_eq!((s.total, s.failed, s.slow), (3, 0, 2));
        assert!((s.slow_call_rate() - 66.666).abs() < 0.01);
    }

    #[test]
    fn positions_wrap_in_slot_order() {
        let w = CountWindow::new(7);
        for i in 0..7 {
            w.record(0, if i == 3 { FAIL } else { OK });
        }
        // A racing store may leave any value; it is reduced into range.
        w.words.next.store(7 * 1_000 + 3, Ordering::Relaxed);
        assert_eq!(w.snapshot().failed, 1);
        assert_eq!(changed(w.record(0, OK)), Rates { total: 7, failed: 0, slow: 0 }, "slot 3 came next");
        assert_eq!(w.words.next.load(Ordering::Relaxed), 4);
    }

    #[test]
    fn a_shared_position_moves_no_count() {
        let w = CountWindow::new(4);
        w.record(0, FAIL);
        // As if a racing recorder had read the same position.
        w.words.next.store(0, Ordering::Relaxed);
        assert_eq!(changed(w.record(0, SLOW)), Rates { total: 1, failed: 0, slow: 1 });
        assert_eq!(w.snapshot(), w.recount(0));
        assert_eq!(changed(w.record(0, OK)), Rates { total: 2, failed: 0, slow: 1 });
        assert_eq!(w.snapshot(), w.recount(0));
    }

    #[test]
    fn a_window_full_of_failures_still_reports_its_rates() {
        let w = CountWindow::new(4);
        for _ in 0..4 {
            w.record(0, FAIL);
        }
        // The no-write path must not hide a 100 % failure rate from the trip
        // check.
        assert_eq!(w.record(0, FAIL), Recorded::Changed(Rates { total: 4, failed: 4, slow: 0 }));
        assert_eq!(w.snapshot(), naive(&[FAIL; 4]));
        for _ in 0..4 {
            w.record(0, OK);
        }
        assert_eq!(w.record(0, OK), Recorded::Unchanged);
        assert_eq!(w.snapshot(), naive(&[OK; 4]));
    }

    #[test]
    fn count_window_cycles_are_separate() {
        let w = CountWindow::new(2);
        w.record(0, FAIL);
        w.sync(3);
        assert_eq!(w.snapshot(), WindowSnapshot::default());
        assert_eq!(w.record(0, FAIL), Recorded::Stale, "an older cycle's record");
        assert_eq!(w.snapshot(), WindowSnapshot::default());
        // The slot stamped with generation 0 counts as empty in cycle 3.
        assert_eq!(changed(w.record(3, OK)), Rates { total: 1, failed: 0, slow: 0 });
        // The first record of a cycle nobody synced yet catches the window up.
        assert_eq!(changed(w.record(4, FAIL)), Rates { total: 1, failed: 1, slow: 0 });
        w.sync(4);
        assert_eq!(w.snapshot().total, 1, "syncing to the current cycle keeps it");
    }

    #[test]
    fn negative_fields_round_trip_through_the_packing() {
        for (failed, slow) in [(0i64, 0i64), (-1, 0), (0, -1), (-3, -5), (1_000_000, -2), (-2, 1_000_000)] {
            let payload = (failed as u64).wrapping_add((slow as u64) << FIELD_BITS);
            let word = (7u64 << TAG_SHIFT).wrapping_add(payload);
            let (t, p) = split(word);
            assert_eq!((t, split_rates(p)), (7, (failed, slow)));
        }
    }

    #[test]
    fn time_window_rolls_with_the_clock() {
        let sec = NANOS_PER_SEC;
        let mut w = TimeWindow::new(3);
        w.record(0, FAIL);
        w.record(sec, OK);
        assert_eq!(w.record(2 * sec + 5, FAIL).total, 3);
        assert_eq!(w.snapshot(2 * sec + 10).total, 3);
        // Second 0 leaves the window when second 3 begins.
        let s = w.snapshot(3 * sec);
        assert_eq!((s.total, s.failed), (2, 1));
        let s = w.snapshot(4 * sec);
        assert_eq!((s.total, s.failed), (1, 1));
        // A jump longer than the window empties it.
        assert_eq!(w.snapshot(100 * sec), WindowSnapshot::default());
        assert_eq!(w.record(100 * sec, OK).total, 1);
        w.clear();
        assert_eq!(w.snapshot(100 * sec), WindowSnapshot::default());
    }

    /// 8 threads × 10 000 records into a window of 100; then a quiescent
    /// sequential tail. Under concurrency "the last 100" is ill-defined, so
    /// the concurrent phase checks invariants and agreement with the ring.
    #[test]
    fn concurrent_records_keep_totals_exact() {
        const THREADS: usize = 8;
        const PER_THREAD: usize = 10_000;
        const SIZE: usize = 100;
        let w = Arc::new(CountWindow::new(SIZE));
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let w = Arc::clone(&w);
                std::thread::spawn(move || {
                    for i in 0..PER_THREAD {
                        let call = Call { failed: (i + t) % 3 == 0, slow: (i * 7 + t) % 5 == 0 };
                        assert_ne!(w.record(0, call), Recorded::Stale);
                        if i % 64 == 0 {
                            let s = w.snapshot();
                            assert!(s.total <= SIZE as u64);
                            assert!(s.failed <= s.total && s.slow <= s.total);
                            assert!(s.slow_failed <= s.failed.min(s.slow));
                        }
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let s = w.snapshot();
        assert_eq!(s.total, SIZE as u64, "calls == min(total recorded, size)");
        assert_eq!(s, w.recount(0), "quiescent totals equal a recount of the ring");
        let tail: Vec<Call> = (0..SIZE).map(|i| Call { failed: i % 4 == 0, slow: i % 6 == 0 }).collect();
        for c in &tail {
            w.record(0, *c);
        }
        assert_eq!(w.snapshot(), naive(&tail));
    }

    /// Records racing with cycle changes: late recorders from finished
    /// cycles must not leave a trace in the current one.
    #[test]
    fn concurrent_records_across_cycles_leave_the_current_cycle_exact() {
        for size in [1usize, 2, 3, 16, 16, 16].into_iter().cycle().take(24) {
            let w = Arc::new(CountWindow::new(size));
            let generation = Arc::new(AtomicU32::new(0));
            let handles: Vec<_> = (0..4)
                .map(|t| {
                    let (w, g) = (Arc::clone(&w), Arc::clone(&generation));
                    std::thread::spawn(move || {
                        for i in 0..5_000usize {
                            let call = Call { failed: (i + t) % 2 == 0, slow: (i + 2 * t) % 3 == 0 };
                            w.record(g.load(Ordering::Acquire), call);
                            let s = w.snapshot();
                            assert!(s.failed <= s.total && s.slow <= s.total && s.total <= size as u64);
                            assert!(s.slow_failed <= s.failed.min(s.slow));
                        }
                    })
                })
                .collect();
            for _ in 0..200 {
                let next = generation.load(Ordering::Acquire) + 1;
                generation.store(next, Ordering::Release);
                w.sync(next);
                std::thread::yield_now();
            }
            for h in handles {
                h.join().unwrap();
            }
            let g = generation.load(Ordering::Acquire);
            let s = w.snapshot();
            let ring = w.recount(g);
            assert_eq!((s.failed, s.slow, s.slow_failed), (ring.failed, ring.slow, ring.slow_failed));
            let tail: Vec<Call> = (0..size).map(|i| Call { failed: i % 3 == 0, slow: i % 2 == 0 }).collect();
            for c in &tail {
                w.record(g, *c);
            }
            assert_eq!(w.snapshot(), naive(&tail));
        }
    }

    /// Whether call `i` overwrote an identical outcome (a full ring).
    fn got_same_slot(calls: &[Call], i: usize, size: u32) -> bool {
        calls[i - size as usize] == calls[i]
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
            let w = CountWindow::new(size as usize);
            for (i, c) in calls.iter().enumerate() {
                let r = w.record(0, *c);
                let start = (i + 1).saturating_sub(size as usize);
                let expected = naive(&calls[start..=i]);
                prop_assert_eq!(w.snapshot(), expected);
                match r {
                    Recorded::Changed(r) => prop_assert_eq!(r, Rates::from(&expected)),
                    Recorded::Unchanged => prop_assert!(i >= size as usize && got_same_slot(&calls, i, size)),
                    Recorded::Stale => prop_assert!(false, "nothing is stale here"),
                }
            }
        }

        #[test]
        fn time_snapshot_equals_naive_recount_of_last_seconds(
            secs in 1u32..10,
            steps in proptest::collection::vec((0u64..3_000_000_000, call_strategy()), 0..200),
        ) {
            let mut w = TimeWindow::new(secs as usize);
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
                prop_assert_eq!(w.recomputed(), snap);
            }
        }
    }
}
