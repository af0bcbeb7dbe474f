//! The consumer side of the event flow: the [`Inbox`] of processed event ids
//! and the [`DeadLetterStore`].

use std::collections::HashSet;

use async_trait::async_trait;
use bazaar_core::Result;
use bazaar_core::events::{DeadLetter, DeadLetterId, DeadLetterStore, Inbox};
use bazaar_core::ids::EventId;
use sqlx::Row;

use crate::codec::{db_err, from_json, int, to_json, ts, uint};
use crate::store::PgStore;

// The primary key (consumer, event_id) decides the race: exactly one insert
// of a pair affects a row.
pub(crate) const MARK: &str = "INSERT INTO event_inbox (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING";
pub(crate) const IS_PROCESSED: &str = "SELECT 1 FROM event_inbox WHERE consumer = $1 AND event_id = $2";
// The recorded pairs among consumers $1 × event ids $2 (the caller keeps the
// ones it asked for). `= ANY` on both key columns is an index scan whatever
// the plan; a join with the unnested pairs is not: its plan, cached by the
// connection while the inbox was small, would scan the whole inbox.
pub(crate) const PROCESSED_AMONG: &str =
    "SELECT consumer, event_id FROM event_inbox WHERE consumer = ANY($1) AND event_id = ANY($2)";
// Sorted, so two batches marking some of the same pairs take their index
// locks in one order and cannot deadlock.
pub(crate) const MARK_ALL: &str = "INSERT INTO event_inbox (consumer, event_id)
    SELECT consumer, event_id FROM unnest($1::text[], $2::text[]) AS k(consumer, event_id) ORDER BY 1, 2
    ON CONFLICT DO NOTHING";

pub(crate) const FIND_LETTER: &str = "SELECT doc FROM dead_letters WHERE consumer = $1 AND event_id = $2 FOR UPDATE";
pub(crate) const INSERT_LETTER: &str =
    "INSERT INTO dead_letters (id, consumer, event_id, failed_at, doc) VALUES ($1, $2, $3, $4, $5)
    ON CONFLICT (consumer, event_id) DO NOTHING";
pub(crate) const UPDATE_LETTER: &str = "UPDATE dead_letters SET failed_at = $2, doc = $3 WHERE id = $1";
pub(crate) const LIST_LETTERS: &str = "SELECT doc FROM dead_letters ORDER BY failed_at, id LIMIT $1 OFFSET $2";
pub(crate) const COUNT_LETTERS: &str = "SELECT COUNT(*) FROM dead_letters";
pub(crate) const GET_LETTER: &str = "SELECT doc FROM dead_letters WHERE id = $1";
pub(crate) const REMOVE_LETTER: &str = "DELETE FROM dead_letters WHERE id = $1";

/// Processed `(consumer, event id)` pairs in PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgInbox {
    store: PgStore,
}

impl PgInbox {
    pub(crate) fn new(store: PgStore) -> Self {
        Self { store }
    }
}

#[async_trait]
impl Inbox for PgInbox {
    async fn mark_processed(&self, consumer: &str, event_id: EventId) -> Result<bool> {
        self.store
            .run(async {
                let done = self
                    .store
                    .write_one(|| sqlx::query(MARK).bind(consumer.to_owned()).bind(event_id.to_string()))
                    .await?;
                Ok(done.rows_affected() == 1)
            })
            .await
    }

    async fn is_processed(&self, consumer: &str, event_id: EventId) -> Result<bool> {
        self.store
            .run(async {
                let row = sqlx::query(IS_PROCESSED)
                    .bind(consumer.to_owned())
                    .bind(event_id.to_string())
                    .fetch_optional(self.store.pool())
                    .await
                    .map_err(db_err)?;
                Ok(row.is_some())
            })
            .await
    }

    /// One query for all pairs.
    async fn processed_among(&self, keys: &[(String, EventId)]) -> Result<Vec<bool>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let (mut consumers, mut ids) = columns(keys);
        for column in [&mut consumers, &mut ids] {
            column.sort_unstable();
            column.dedup();
        }
        self.store
            .run(async {
                let rows = sqlx::query(PROCESSED_AMONG)
                    .bind(consumers)
                    .bind(ids)
                    .fetch_all(self.store.pool())
                    .await
                    .map_err(db_err)?;
                let mut recorded = HashSet::with_capacity(rows.len());
                for row in rows {
                    let consumer: String = row.try_get(0).map_err(db_err)?;
                    let event_id: String = row.try_get(1).map_err(db_err)?;
                    recorded.insert((consumer, event_id));
                }
                Ok(keys.iter().map(|(consumer, id)| recorded.contains(&(consumer.clone(), id.to_string()))).collect())
            })
            .await
    }

    /// One statement for all pairs.
    async fn mark_all_processed(&self, keys: &[(String, EventId)]) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let (consumers, ids) = columns(keys);
        self.store
            .run(async {
                self.store.write_one(|| sqlx::query(MARK_ALL).bind(consumers.clone()).bind(ids.clone())).await?;
                Ok(())
            })
            .await
    }
}

/// `keys` as the two text arrays the batch statements take.
fn columns(keys: &[(String, EventId)]) -> (Vec<String>, Vec<String>) {
    keys.iter().map(|(consumer, id)| (consumer.clone(), id.to_string())).unzip()
}

/// Dead letters in PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgDeadLetters {
    store: PgStore,
}

impl PgDeadLetters {
    pub(crate) fn new(store: PgStore) -> Self {
        Self { store }
    }
}

fn uuid_text(id: DeadLetterId) -> String {
    id.as_uuid().to_string()
}

#[async_trait]
impl DeadLetterStore for PgDeadLetters {
    async fn put(&self, letter: DeadLetter) -> Result<DeadLetterId> {
        self.store
            .run(async {
                let mut tx = self.store.write().await?;
                // Insert first: the unique (consumer, event id) decides a race, and
                // the loser updates the winner's row instead.
                let inserted = sqlx::query(INSERT_LETTER)
                    .bind(uuid_text(letter.id))
                    .bind(letter.consumer.as_str())
                    .bind(letter.event.id.to_string())
                    .bind(ts(letter.failed_at)?)
                    .bind(to_json(&letter)?)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                if inserted.rows_affected() == 1 {
                    self.store.commit(tx).await?;
                    return Ok(letter.id);
                }
                let row = sqlx::query(FIND_LETTER)
                    .bind(letter.consumer.as_str())
                    .bind(letter.event.id.to_string())
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db_err)?;
                let mut stored: DeadLetter = from_json(row.get::<&str, _>(0))?;
                stored.error = letter.error;
                stored.attempts = letter.attempts;
                stored.failed_at = letter.failed_at;
                sqlx::query(UPDATE_LETTER)
                    .bind(uuid_text(stored.id))
                    .bind(ts(stored.failed_at)?)
                    .bind(to_json(&stored)?)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                self.store.commit(tx).await?;
                Ok(stored.id)
            })
            .await
    }

    async fn list(&self, offset: usize, limit: usize) -> Result<Vec<DeadLetter>> {
        self.store
            .run(async {
                let offset = int(u64::try_from(offset).unwrap_or(u64::MAX))?;
                let limit = i64::try_from(limit).unwrap_or(i64::MAX);
                let rows = sqlx::query(LIST_LETTERS)
                    .bind(limit)
                    .bind(offset)
                    .fetch_all(self.store.pool())
                    .await
                    .map_err(db_err)?;
                rows.iter().map(|r| from_json(r.get::<&str, _>(0))).collect()
            })
            .await
    }

    async fn count(&self) -> Result<u64> {
        self.store
            .run(async {
                let n: i64 = sqlx::query_scalar(COUNT_LETTERS).fetch_one(self.store.pool()).await.map_err(db_err)?;
                uint(n)
            })
            .await
    }

    async fn get(&self, id: DeadLetterId) -> Result<Option<DeadLetter>> {
        self.store
            .run(async {
                let row = sqlx::query(GET_LETTER)
                    .bind(uuid_text(id))
                    .fetch_optional(self.store.pool())
                    .await
                    .map_err(db_err)?;
                row.map(|r| from_json(r.get::<&str, _>(0))).transpose()
            })
            .await
    }

    async fn remove(&self, id: DeadLetterId) -> Result<bool> {
        self.store
            .run(async {
                let done = self.store.write_one(|| sqlx::query(REMOVE_LETTER).bind(uuid_text(id))).await?;
                Ok(done.rows_affected() > 0)
            })
            .await
    }
}
