//! Breaker states and the packed atomic words that carry them.
//!
//! The whole admission-relevant state lives in one `AtomicU64` so every
//! transition, and every half-open permit, is a single compare-and-swap:
//!
//! ```text
//! bits  0..8   state
//! bits  8..32  half-open permits taken (acquired and not given back)
//! bits 32..64  generation, bumped by every transition
//! ```
//!
//! A second word holds the deadline of the current state (end of the open
//! wait, end of the half-open limit), tagged with the low 16 bits of the
//! generation it belongs to, so a reader never applies a previous cycle's
//! deadline to the current one.

use std::fmt;

/// The largest number of half-open probes the packed word can count.
pub const MAX_HALF_OPEN_PERMITS: u32 = (1 << 24) - 1;

/// The state of a circuit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Calls flow; outcomes are recorded and may open the breaker.
    Closed,
    /// Calls are rejected until the wait in open elapses.
    Open,
    /// A limited number of probes decide between closing and re-opening.
    HalfOpen,
    /// Calls flow and nothing is recorded.
    Disabled,
    /// Calls are rejected until a manual transition.
    ForcedOpen,
    /// Calls flow, outcomes are recorded and reported, the state never changes
    /// on its own.
    MetricsOnly,
}

impl State {
    /// All states, in their packed order.
    pub const ALL: [State; 6] =
        [State::Closed, State::Open, State::HalfOpen, State::Disabled, State::ForcedOpen, State::MetricsOnly];

    /// A stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
            Self::Disabled => "disabled",
            Self::ForcedOpen => "forced_open",
            Self::MetricsOnly => "metrics_only",
        }
    }

    /// Whether calls are admitted without any check in this state.
    pub fn admits_freely(self) -> bool {
        matches!(self, Self::Closed | Self::Disabled | Self::MetricsOnly)
    }

    fn to_bits(self) -> u64 {
        match self {
            Self::Closed => 0,
            Self::Open => 1,
            Self::HalfOpen => 2,
            Self::Disabled => 3,
            Self::ForcedOpen => 4,
            Self::MetricsOnly => 5,
        }
    }

    fn from_bits(bits: u64) -> Self {
        // Only `Word::new` writes these bits, always from a `State`; the
        // fallback arm exists because the match must be exhaustive over u64.
        match bits {
            0 => Self::Closed,
            1 => Self::Open,
            2 => Self::HalfOpen,
            3 => Self::Disabled,
            4 => Self::ForcedOpen,
            _ => Self::MetricsOnly,
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The packed state word: state, half-open permits taken, generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Word(pub(crate) u64);

impl Word {
    const STATE_MASK: u64 = 0xFF;
    const TAKEN_SHIFT: u32 = 8;
    const TAKEN_MASK: u64 = 0xFF_FFFF;
    const GEN_SHIFT: u32 = 32;

    pub(crate) fn new(state: State, taken: u32, generation: u32) -> Self {
        debug_assert!(taken <= MAX_HALF_OPEN_PERMITS);
        Self(
            state.to_bits()
                | ((u64::from(taken) & Self::TAKEN_MASK) << Self::TAKEN_SHIFT)
                | (u64::from(generation) << Self::GEN_SHIFT),
        )
    }

    pub(crate) fn state(self) -> State {
        State::from_bits(self.0 & Self::STATE_MASK)
    }

    /// Whether the state admits without checks; the closed-state fast path.
    #[inline]
    pub(crate) fn admits_freely(self) -> bool {
        // Closed = 0, Disabled = 3, MetricsOnly = 5: compare the low byte
        // directly to keep admission to a load and a couple of compares.
        matches!(self.0 & Self::STATE_MASK, 0 | 3 | 5)
    }

    pub(crate) fn taken(self) -> u32 {
        ((self.0 >> Self::TAKEN_SHIFT) & Self::TAKEN_MASK) as u32
    }

    pub(crate) fn generation(self) -> u32 {
        (self.0 >> Self::GEN_SHIFT) as u32
    }

    /// The word after a transition to `to`: next generation, no permits taken
    /// except the ones handed out by the transition itself.
    pub(crate) fn next(self, to: State, taken: u32) -> Self {
        Self::new(to, taken, self.generation().wrapping_add(1))
    }

    pub(crate) fn with_taken(self, taken: u32) -> Self {
        Self::new(self.state(), taken, self.generation())
    }
}

/// Whether generation `a` is later than `b`, tolerant of wrap-around.
pub(crate) fn is_newer(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

/// The deadline of the current state as read from the timing word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Deadline {
    /// The transition that set the state has not published its deadline yet.
    Unpublished,
    /// The state has no deadline.
    Never,
    /// The state ends at this clock reading, in nanoseconds.
    At(u64),
}

const MICROS_MASK: u64 = (1 << 48) - 1;

/// Packs a deadline for `generation`. Microseconds in 48 bits cover 8.9
/// years of clock time, ample for a monotonic origin set at start-up.
pub(crate) fn pack_deadline(generation: u32, at_nanos: Option<u64>) -> u64 {
    let micros = match at_nanos {
        Some(n) => n.div_ceil(1_000).min(MICROS_MASK - 1),
        None => MICROS_MASK,
    };
    (u64::from(generation as u16) << 48) | micros
}

pub(crate) fn deadline_tag(packed: u64) -> u16 {
    (packed >> 48) as u16
}

pub(crate) fn unpack_deadline(packed: u64, generation: u32) -> Deadline {
    if deadline_tag(packed) != generation as u16 {
        return Deadline::Unpublished;
    }
    match packed & MICROS_MASK {
        MICROS_MASK => Deadline::Never,
        micros => Deadline::At(micros * 1_000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn word_round_trips() {
        for s in State::ALL {
            let w = Word::new(s, 7, 42);
            assert_eq!((w.state(), w.taken(), w.generation()), (s, 7, 42));
            assert_eq!(w.admits_freely(), s.admits_freely());
        }
        let w = Word::new(State::HalfOpen, MAX_HALF_OPEN_PERMITS, u32::MAX).next(State::Closed, 0);
        assert_eq!((w.state(), w.taken(), w.generation()), (State::Closed, 0, 0));
    }

    #[test]
    fn deadlines_are_tagged_with_their_generation() {
        let p = pack_deadline(5, Some(1_500));
        assert_eq!(unpack_deadline(p, 5), Deadline::At(2_000));
        assert_eq!(unpack_deadline(p, 6), Deadline::Unpublished);
        assert_eq!(unpack_deadline(pack_deadline(9, None), 9), Deadline::Never);
    }

    #[test]
    fn newer_tolerates_wrap() {
        assert!(is_newer(1, 0));
        assert!(is_newer(0, u32::MAX));
        assert!(!is_newer(3, 3));
        assert!(!is_newer(2, 3));
    }

    proptest! {
        #[test]
        fn any_sequence_of_word_operations_stays_valid(
            ops in proptest::collection::vec((0usize..6, 0u32..=MAX_HALF_OPEN_PERMITS), 1..200)
        ) {
            let mut w = Word::new(State::Closed, 0, 0);
            for (i, (s, taken)) in ops.into_iter().enumerate() {
                let before = w.generation();
                w = if i % 2 == 0 { w.next(State::ALL[s], taken) } else { w.with_taken(taken) };
                prop_assert!(State::ALL.contains(&w.state()));
                prop_assert_eq!(w.taken(), taken);
                prop_assert!(w.generation() == before || w.generation() == before.wrapping_add(1));
            }
        }
    }
}
