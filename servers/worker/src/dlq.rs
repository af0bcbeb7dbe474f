//! Dead-letter operations behind `bazaar worker dlq list` and
//! `bazaar worker dlq replay <id|--all>`: they work on the marketplace's
//! dead-letter store and handlers, so they need no running worker.
//!
//! A replay runs the handlers once, in the calling process, under the
//! letter's own consumer group: handlers that had succeeded before are
//! skipped through the inbox, so a replay after the fault is fixed completes
//! the event exactly once. A replay that fails again leaves the letter
//! parked with the new error and one more attempt.

use bazaar_core::events::{DeadLetter, DeadLetterId, EventType, Outcome};
use bazaar_core::ids::EventId;
use bazaar_core::marketplace::Marketplace;
use bazaar_core::{Error, Result};
use serde::Serialize;

/// The most letters one [`dlq_list`] call returns.
pub const MAX_LIST_LIMIT: usize = 500;

/// Letters read per page while collecting the ids for [`dlq_replay_all`].
const REPLAY_PAGE: usize = 100;

/// One page of dead letters, oldest first, and how many are parked in all.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeadLetterPage {
    /// The letters.
    pub items: Vec<DeadLetter>,
    /// All letters parked.
    pub total: u64,
    /// The offset asked for.
    pub offset: usize,
    /// The limit applied (after capping).
    pub limit: usize,
}

/// What replaying one letter did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum ReplayResult {
    /// Every handler succeeded; the letter is gone.
    Completed,
    /// A handler failed again; the letter stays with this error.
    StillFailing {
        /// Failed deliveries and replays so far.
        attempts: u32,
        /// The new error.
        error: String,
    },
    /// The letter disappeared before it could be replayed (another replay
    /// took it); only [`dlq_replay_all`] reports this.
    Gone,
}

/// The replay of one letter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Replay {
    /// The letter.
    pub id: DeadLetterId,
    /// Its event.
    pub event_id: EventId,
    /// The event's type.
    pub event_type: EventType,
    /// The consumer group it was replayed for.
    pub consumer: String,
    /// What happened.
    #[serde(flatten)]
    pub result: ReplayResult,
}

/// Letters oldest first, skipping `offset`, at most `limit` (capped at
/// [`MAX_LIST_LIMIT`]).
///
/// # Errors
/// [`Error::Validation`] when `limit` is 0; the store's errors.
pub async fn dlq_list(market: &Marketplace, offset: usize, limit: usize) -> Result<DeadLetterPage> {
    if limit == 0 {
        return Err(Error::invalid("limit", "must be at least 1"));
    }
    let limit = limit.min(MAX_LIST_LIMIT);
    let (items, total) = market.dispatcher.list_dead_letters(offset, limit).await?;
    Ok(DeadLetterPage { items, total, offset, limit })
}

/// Replays letter `id` (see the module docs).
///
/// # Errors
/// [`Error::NotFound`] when there is no such letter; the stores' errors.
pub async fn dlq_replay(market: &Marketplace, id: DeadLetterId) -> Result<Replay> {
    let letter = market.dispatcher.dead_letter(id).await?.ok_or_else(|| Error::not_found("dead letter"))?;
    replay_letter(market, letter).await
}

/// Replays every letter parked when the call starts, oldest first; letters
/// parked meanwhile are left for the next call, so this ends even while
/// handlers keep failing. Returns one [`Replay`] per letter.
///
/// # Errors
/// The stores' errors (letters replayed before the failure stay replayed).
pub async fn dlq_replay_all(market: &Marketplace) -> Result<Vec<Replay>> {
    // Snapshot first: a replay that fails again re-parks its letter, and
    // paging through a list that changes underneath would skip or repeat.
    let mut letters = Vec::new();
    loop {
        let (page, _) = market.dispatcher.list_dead_letters(letters.len(), REPLAY_PAGE).await?;
        let last = page.len() < REPLAY_PAGE;
        letters.extend(page);
        if last {
            break;
        }
    }
    let mut replays = Vec::with_capacity(letters.len());
    for letter in letters {
        let (id, event_id, event_type, consumer) =
            (letter.id, letter.event.id, letter.event.event_type, letter.consumer.clone());
        match replay_letter(market, letter).await {
            Ok(replay) => replays.push(replay),
            Err(Error::NotFound { .. }) => {
                replays.push(Replay { id, event_id, event_type, consumer, result: ReplayResult::Gone });
            }
            Err(e) => return Err(e),
        }
    }
    Ok(replays)
}

async fn replay_letter(market: &Marketplace, letter: DeadLetter) -> Result<Replay> {
    let DeadLetter { id, event, consumer, .. } = letter;
    let result = match market.dispatcher.replay(id).await? {
        Outcome::Processed => {
            tracing::info!(dead_letter = %id, event_id = %event.id, "dead letter replayed");
            ReplayResult::Completed
        }
        Outcome::DeadLettered(stored) => {
            let again = market.dispatcher.dead_letter(stored).await?.ok_or_else(|| Error::not_found("dead letter"))?;
            ReplayResult::StillFailing { attempts: again.attempts, error: again.error }
        }
        other => {
            return Err(Error::internal("dead letter replay", format!("unexpected dispatcher outcome {other:?}")));
        }
    };
    Ok(Replay { id, event_id: event.id, event_type: event.event_type, consumer, result })
}
