//! The in-memory outbox every in-memory repository appends to, and its
//! relay side ([`OutboxStore`]).
//!
//! A repository appends the events of a unit of work while it still holds
//! the lock on its own table, so no reader can see the state change without
//! its events being in the outbox.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use bazaar_core::Result;
use bazaar_core::clock::Timestamp;
use bazaar_core::events::{Event, OutboxEntry, OutboxStore};
use parking_lot::Mutex;

/// One outbox row.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    /// Position in the outbox, from 1.
    pub seq: u64,
    /// The event.
    pub event: Event,
    /// Whether a relay has published it.
    pub published: bool,
}

#[derive(Debug, Default)]
struct State {
    rows: Vec<OutboxRow>,
    /// Relay leases on unpublished rows, by `seq`.
    leases: HashMap<u64, Timestamp>,
}

/// A shared, append-only outbox. Clones share the same rows.
#[derive(Debug, Clone, Default)]
pub struct MemoryOutbox {
    state: Arc<Mutex<State>>,
}

impl MemoryOutbox {
    /// An empty outbox.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends the events of one unit of work.
    pub fn append(&self, events: &[Event]) {
        let mut state = self.state.lock();
        for event in events {
            let seq = state.rows.len() as u64 + 1;
            state.rows.push(OutboxRow { seq, event: event.clone(), published: false });
        }
    }

    /// Every event ever appended, in order (published or not).
    pub fn events(&self) -> Vec<Event> {
        self.state.lock().rows.iter().map(|r| r.event.clone()).collect()
    }

    /// Every row, with its published flag.
    pub fn rows(&self) -> Vec<OutboxRow> {
        self.state.lock().rows.clone()
    }

    /// How many rows are not yet published.
    pub fn unpublished(&self) -> usize {
        self.state.lock().rows.iter().filter(|r| !r.published).count()
    }
}

#[async_trait]
impl OutboxStore for MemoryOutbox {
    async fn claim(&self, limit: usize, now: Timestamp, lease_until: Timestamp) -> Result<Vec<OutboxEntry>> {
        let mut guard = self.state.lock();
        let State { rows, leases } = &mut *guard;
        let mut claimed = Vec::new();
        for row in rows.iter().filter(|r| !r.published) {
            if claimed.len() >= limit {
                break;
            }
            if leases.get(&row.seq).is_some_and(|until| *until > now) {
                continue;
            }
            leases.insert(row.seq, lease_until);
            claimed.push(OutboxEntry { seq: row.seq, event: row.event.clone() });
        }
        Ok(claimed)
    }

    async fn mark_published(&self, seqs: &[u64]) -> Result<()> {
        let mut guard = self.state.lock();
        let State { rows, leases } = &mut *guard;
        for seq in seqs {
            // seq is 1-based and rows are never removed, so it indexes directly.
            if let Some(row) = usize::try_from(*seq).ok().and_then(|s| s.checked_sub(1)).and_then(|i| rows.get_mut(i)) {
                row.published = true;
                leases.remove(seq);
            }
        }
        Ok(())
    }

    async fn release(&self, seqs: &[u64]) -> Result<()> {
        let mut state = self.state.lock();
        for seq in seqs {
            state.leases.remove(seq);
        }
        Ok(())
    }
}
