//! Dead letters: events a consumer gave up on, kept with their last error
//! for listing and replay.

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Event;
use crate::clock::Timestamp;
use crate::error::{Error, Result};

/// Identifies a dead letter (UUID v7, so ids sort by creation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DeadLetterId(Uuid);

impl DeadLetterId {
    /// A fresh id.
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    /// Wraps a stored UUID.
    pub const fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid)
    }

    /// The underlying UUID.
    pub const fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl Default for DeadLetterId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for DeadLetterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl FromStr for DeadLetterId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Uuid::parse_str(s).map(Self).map_err(|_| Error::invalid("id", "not a valid dead letter id"))
    }
}

/// An event a consumer group gave up on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Its id.
    pub id: DeadLetterId,
    /// The consumer group that failed.
    pub consumer: String,
    /// The event.
    pub event: Event,
    /// The last error, for humans (handler names and messages; no secrets:
    /// core errors never carry credentials).
    pub error: String,
    /// How many deliveries (and replays) failed.
    pub attempts: u32,
    /// When it was (last) parked.
    pub failed_at: Timestamp,
}

/// Where dead letters are parked.
///
/// # Example
/// ```
/// # futures::executor::block_on(async {
/// use bazaar_core::clock::{Clock, ManualClock};
/// use bazaar_core::events::{DeadLetter, DeadLetterId, DeadLetterStore, Event, UserRegistered};
/// use bazaar_core::ids::UserId;
/// use bazaar_memory::MemoryDeadLetters;
///
/// let now = ManualClock::at_epoch_secs(0).now();
/// let store = MemoryDeadLetters::new();
/// let event = Event::new(&UserRegistered { user_id: UserId::new(), role: "vendor".into() }, now);
/// let letter = DeadLetter { id: DeadLetterId::new(), consumer: "worker".into(), event, error: "boom".into(), attempts: 5, failed_at: now };
/// let id = store.put(letter).await.unwrap();
/// assert_eq!(store.list(0, 10).await.unwrap().len(), 1);
/// assert!(store.remove(id).await.unwrap());
/// # });
/// ```
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait DeadLetterStore: Send + Sync {
    /// Parks `letter` and returns the id it is stored under.
    ///
    /// MUST keep at most one letter per `(consumer, event.id)`: parking the
    /// same event again for the same consumer replaces `error`, `attempts`
    /// and `failed_at` of the existing letter and returns *its* id.
    async fn put(&self, letter: DeadLetter) -> Result<DeadLetterId>;

    /// Letters oldest first (by `failed_at`, then id), skipping `offset`,
    /// at most `limit`.
    async fn list(&self, offset: usize, limit: usize) -> Result<Vec<DeadLetter>>;

    /// How many letters are parked.
    async fn count(&self) -> Result<u64>;

    /// The letter with `id`, if any.
    async fn get(&self, id: DeadLetterId) -> Result<Option<DeadLetter>>;

    /// Removes the letter with `id`; `true` when it existed.
    async fn remove(&self, id: DeadLetterId) -> Result<bool>;
}
