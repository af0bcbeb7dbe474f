//! In-memory inbox and dead-letter store.

use std::collections::HashSet;

use async_trait::async_trait;
use bazaar_core::Result;
use bazaar_core::events::{DeadLetter, DeadLetterId, DeadLetterStore, Inbox};
use bazaar_core::ids::EventId;
use parking_lot::Mutex;

/// The processed-events inbox, in memory.
#[derive(Debug, Default)]
pub struct MemoryInbox {
    processed: Mutex<HashSet<(String, EventId)>>,
}

impl MemoryInbox {
    /// An empty inbox.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl Inbox for MemoryInbox {
    async fn mark_processed(&self, consumer: &str, event_id: EventId) -> Result<bool> {
        Ok(self.processed.lock().insert((consumer.to_owned(), event_id)))
    }

    async fn is_processed(&self, consumer: &str, event_id: EventId) -> Result<bool> {
        Ok(self.processed.lock().contains(&(consumer.to_owned(), event_id)))
    }
}

/// The dead-letter store, in memory.
#[derive(Debug, Default)]
pub struct MemoryDeadLetters {
    letters: Mutex<Vec<DeadLetter>>,
}

impl MemoryDeadLetters {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl DeadLetterStore for MemoryDeadLetters {
    async fn put(&self, letter: DeadLetter) -> Result<DeadLetterId> {
        let mut letters = self.letters.lock();
        if let Some(existing) =
            letters.iter_mut().find(|l| l.consumer == letter.consumer && l.event.id == letter.event.id)
        {
            existing.error = letter.error;
            existing.attempts = letter.attempts;
            existing.failed_at = letter.failed_at;
            return Ok(existing.id);
        }
        let id = letter.id;
        letters.push(letter);
        Ok(id)
    }

    async fn list(&self, offset: usize, limit: usize) -> Result<Vec<DeadLetter>> {
        let mut letters = self.letters.lock().clone();
        letters.sort_by_key(|l| (l.failed_at, l.id));
        Ok(letters.into_iter().skip(offset).take(limit).collect())
    }

    async fn count(&self) -> Result<u64> {
        Ok(self.letters.lock().len() as u64)
    }

    async fn get(&self, id: DeadLetterId) -> Result<Option<DeadLetter>> {
        Ok(self.letters.lock().iter().find(|l| l.id == id).cloned())
    }

    async fn remove(&self, id: DeadLetterId) -> Result<bool> {
        let mut letters = self.letters.lock();
        let before = letters.len();
        letters.retain(|l| l.id != id);
        Ok(letters.len() != before)
    }
}
