//! Receipts: the JetStream ack subject of a delivery, and the in-process
//! record that makes stale nacks harmless.
//!
//! A [`Receipt`](bazaar_core::events::Receipt) is the delivery's reply
//! subject, `$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer
//! seq>.<timestamp>.<pending>` (servers since 2.9 may add a domain and an
//! account hash in front and a token at the end). Any connection can ack or
//! nack a delivery by publishing `+ACK` / `-NAK` to it, so the receipt needs
//! no state to work across processes.
//!
//! The server, however, applies a `-NAK` to whatever delivery of that
//! stream sequence is current: it checks that the message is still pending,
//! not which delivery the subject came from. A slow consumer nacking its
//! old delivery would reschedule the fresh delivery someone else holds. So
//! the bus remembers, per (durable, stream sequence), the latest delivery it
//! handed out and whether that one was given back already ([`InFlight`]),
//! and drops nacks that are stale by that record.

use std::collections::HashMap;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

/// The parts of an ack subject the bus needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AckSubject<'a> {
    /// The stream name.
    pub(crate) stream: &'a str,
    /// The durable consumer name.
    pub(crate) consumer: &'a str,
    /// Which delivery of the message this is (1 = first).
    pub(crate) delivered: u64,
    /// The message's stream sequence.
    pub(crate) stream_seq: u64,
}

impl<'a> AckSubject<'a> {
    /// Parses a JetStream ack subject in either the 7-token (v1) or the
    /// 9+-token (v2: domain and account hash first) form; `None` for
    /// anything else.
    pub(crate) fn parse(subject: &'a str) -> Option<Self> {
        let rest = subject.strip_prefix("$JS.ACK.")?;
        let tokens: Vec<&str> = rest.split('.').collect();
        let fields = match tokens.len() {
            7 => &tokens[..],
            9 | 10 => &tokens[2..],
            _ => return None,
        };
        let (stream, consumer) = (fields[0], fields[1]);
        if stream.is_empty() || consumer.is_empty() {
            return None;
        }
        Some(Self { stream, consumer, delivered: fields[2].parse().ok()?, stream_seq: fields[3].parse().ok()? })
    }
}

#[derive(Debug)]
struct Entry {
    /// The latest delivery count this process saw.
    delivered: u64,
    /// That delivery was nacked already.
    given_back: bool,
    /// When the record stops being useful (see [`InFlight`]).
    forget_at: Instant,
}

/// Latest deliveries handed out by this process, by (durable, stream seq).
///
/// Entries go away on ack, and otherwise once they can no longer tell
/// anything the server does not: two ack waits after the delivery (or after
/// the nack's delay), by which time the message was acked, redelivered (and
/// recorded again, if to this process) or is being redelivered anyway.
/// Pruning runs when the map has doubled since the last prune, so its cost is
/// amortised and the map stays proportional to the messages in flight.
#[derive(Debug)]
pub(crate) struct InFlight {
    ack_wait: Duration,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    entries: HashMap<(String, u64), Entry>,
    prune_at: usize,
}

const MIN_PRUNE_AT: usize = 1024;

impl InFlight {
    pub(crate) fn new(ack_wait: Duration) -> Self {
        Self { ack_wait, state: Mutex::new(State { entries: HashMap::new(), prune_at: MIN_PRUNE_AT }) }
    }

    fn horizon(&self, now: Instant, extra: Duration) -> Instant {
        let keep = self.ack_wait.saturating_mul(2).saturating_add(extra);
        // `Instant + huge` overflows; a year is "forever" for this record.
        now.checked_add(keep).unwrap_or_else(|| now + Duration::from_secs(365 * 24 * 3600))
    }

    /// Records that delivery number `delivered` of `stream_seq` was handed out.
    pub(crate) fn delivered(&self, durable: &str, stream_seq: u64, delivered: u64) {
        let now = Instant::now();
        let forget_at = self.horizon(now, Duration::ZERO);
        let mut state = self.state.lock();
        let entry = state.entries.entry((durable.to_owned(), stream_seq)).or_insert(Entry {
            delivered,
            given_back: false,
            forget_at,
        });
        if delivered >= entry.delivered {
            *entry = Entry { delivered, given_back: false, forget_at };
        }
        if state.entries.len() >= state.prune_at {
            state.entries.retain(|_, e| e.forget_at > now);
            state.prune_at = (state.entries.len() * 2).max(MIN_PRUNE_AT);
        }
    }

    /// Whether a nack of delivery `delivered` may go to the server: not when
    /// this process has handed out a later delivery of the message, nor when
    /// that delivery was given back already.
    pub(crate) fn may_nack(&self, durable: &str, stream_seq: u64, delivered: u64) -> bool {
        let state = self.state.lock();
        match state.entries.get(&(durable.to_owned(), stream_seq)) {
            Some(entry) => entry.delivered == delivered && !entry.given_back,
            // Unknown here: acked (the server ignores the nack), handed out
            // by another process, or forgotten. Let the server decide.
            None => true,
        }
    }

    /// Records that delivery `delivered` was nacked with `delay`.
    pub(crate) fn given_back(&self, durable: &str, stream_seq: u64, delivered: u64, delay: Duration) {
        let forget_at = self.horizon(Instant::now(), delay);
        let mut state = self.state.lock();
        let entry = state.entries.entry((durable.to_owned(), stream_seq)).or_insert(Entry {
            delivered,
            given_back: true,
            forget_at,
        });
        if entry.delivered == delivered {
            entry.given_back = true;
            entry.forget_at = forget_at;
        }
    }

    /// Forgets the message: it was acked.
    pub(crate) fn acked(&self, durable: &str, stream_seq: u64) {
        self.state.lock().entries.remove(&(durable.to_owned(), stream_seq));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.state.lock().entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_v1_ack_subjects() {
        let s = AckSubject::parse("$JS.ACK.EVENTS.mailer.3.42.57.1700000000000000000.5").unwrap();
        assert_eq!(s, AckSubject { stream: "EVENTS", consumer: "mailer", delivered: 3, stream_seq: 42 });
    }

    #[test]
    fn parses_v2_ack_subjects() {
        let s = AckSubject::parse("$JS.ACK._.ACCHASH.EVENTS.mailer.1.7.7.1700000000000000000.0").unwrap();
        assert_eq!(s, AckSubject { stream: "EVENTS", consumer: "mailer", delivered: 1, stream_seq: 7 });
        let t = AckSubject::parse("$JS.ACK.hub.ACCHASH.EVENTS.mailer.2.8.9.1700000000000000000.0.tok").unwrap();
        assert_eq!((t.delivered, t.stream_seq), (2, 8));
    }

    #[test]
    fn rejects_other_subjects() {
        for bad in [
            "",
            "bazaar.user.registered",
            "$JS.ACK.EVENTS.mailer.x.42.57.1.5",
            "$JS.ACK.EVENTS.mailer.1.2.3",
            "$JS.ACK..mailer.1.2.3.4.5",
            "$JS.API.CONSUMER.INFO.EVENTS.mailer.1",
        ] {
            assert!(AckSubject::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn stale_and_repeated_nacks_are_refused() {
        let inflight = InFlight::new(Duration::from_secs(30));
        assert!(inflight.may_nack("g", 1, 1), "unknown deliveries are left to the server");
        inflight.delivered("g", 1, 1);
        assert!(inflight.may_nack("g", 1, 1), "the current delivery may be nacked");
        inflight.given_back("g", 1, 1, Duration::from_secs(1));
        assert!(!inflight.may_nack("g", 1, 1), "a delivery is given back once");
        inflight.delivered("g", 1, 2);
        assert!(!inflight.may_nack("g", 1, 1), "an older delivery is stale");
        assert!(inflight.may_nack("g", 1, 2), "the redelivery may be nacked");
        assert!(inflight.may_nack("other", 1, 1), "groups are independent");
        inflight.delivered("g", 1, 1);
        assert!(inflight.may_nack("g", 1, 2), "an out-of-order older record does not win");
        inflight.acked("g", 1);
        assert_eq!(inflight.len(), 0, "acked messages are forgotten");
    }

    #[test]
    fn expired_records_are_pruned() {
        let inflight = InFlight::new(Duration::ZERO);
        for seq in 0..(MIN_PRUNE_AT as u64 + 10) {
            inflight.delivered("g", seq, 1);
        }
        assert!(inflight.len() < MIN_PRUNE_AT, "records past their horizon are dropped, kept {}", inflight.len());
    }
}
