//! The in-memory outbox every in-memory repository appends to.
//!
//! A repository appends the events of a unit of work while it still holds
//! the lock on its own table, so no reader can see the state change without
//! its events being in the outbox.

use std::sync::Arc;

use bazaar_core::events::Event;
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

/// A shared, append-only outbox. Clones share the same rows.
#[derive(Debug, Clone, Default)]
pub struct MemoryOutbox {
    rows: Arc<Mutex<Vec<OutboxRow>>>,
}

impl MemoryOutbox {
    /// An empty outbox.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends the events of one unit of work.
    pub fn append(&self, events: &[Event]) {
        let mut rows = self.rows.lock();
        for event in events {
            let seq = rows.len() as u64 + 1;
            rows.push(OutboxRow { seq, event: event.clone(), published: false });
        }
    }

    /// Every event ever appended, in order (published or not).
    pub fn events(&self) -> Vec<Event> {
        self.rows.lock().iter().map(|r| r.event.clone()).collect()
    }

    /// Runs `f` with the rows locked; for the relay side of the outbox.
    pub(crate) fn with_rows<R>(&self, f: impl FnOnce(&mut Vec<OutboxRow>) -> R) -> R {
        f(&mut self.rows.lock())
    }
}
