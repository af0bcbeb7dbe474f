//! The transactional outbox: repositories append events inside their write
//! transaction ([`append`]); relays claim, publish and complete them through
//! [`SqliteOutbox`] ([`OutboxStore`]).

use async_trait::async_trait;
use bazaar_core::Result;
use bazaar_core::clock::Timestamp;
use bazaar_core::events::{Event, OutboxEntry, OutboxStore};
use sqlx::Row;

use crate::codec::{db_err, from_json, to_json, ts};
use crate::store::{SqliteStore, WriteTx};

pub(crate) const APPEND: &str =
    "INSERT INTO outbox (event_id, event_type, occurred_at, envelope) VALUES (?1, ?2, ?3, ?4)";

// SQLite has no `FOR UPDATE SKIP LOCKED`; the equivalent is one UPDATE that
// picks and leases the rows, run under the write lock (`BEGIN IMMEDIATE`),
// so two relays can never pick the same row.
pub(crate) const CLAIM: &str = "UPDATE outbox SET claimed_until = ?1
    WHERE seq IN (
        SELECT seq FROM outbox
        WHERE published = 0 AND (claimed_until IS NULL OR claimed_until <= ?2)
        ORDER BY seq LIMIT ?3)
    RETURNING seq, envelope";

pub(crate) const MARK_PUBLISHED: &str =
    "UPDATE outbox SET published = 1, claimed_until = NULL WHERE seq IN (SELECT value FROM json_each(?1))";

pub(crate) const RELEASE: &str =
    "UPDATE outbox SET claimed_until = NULL WHERE published = 0 AND seq IN (SELECT value FROM json_each(?1))";

pub(crate) const ALL_EVENTS: &str = "SELECT envelope FROM outbox ORDER BY seq";

/// Appends the events of a unit of work to the outbox, inside its transaction.
pub(crate) async fn append(tx: &mut WriteTx, events: &[Event]) -> Result<()> {
    for event in events {
        sqlx::query(APPEND)
            .bind(event.id.to_string())
            .bind(event.event_type.as_str())
            .bind(ts(event.occurred_at)?)
            .bind(to_json(event)?)
            .execute(&mut **tx)
            .await
            .map_err(db_err)?;
    }
    Ok(())
}

/// The relay side of the outbox.
#[derive(Debug, Clone)]
pub struct SqliteOutbox {
    store: SqliteStore,
}

impl SqliteOutbox {
    pub(crate) fn new(store: SqliteStore) -> Self {
        Self { store }
    }

    /// Commits `events` on their own, for events that accompany no state
    /// change of this store.
    ///
    /// # Errors
    /// `Unavailable` when the database is; nothing is appended then.
    pub async fn append(&self, events: &[Event]) -> Result<()> {
        let mut tx = self.store.write().await?;
        append(&mut tx, events).await?;
        self.store.commit(tx).await
    }

    /// Every event ever committed, in commit order, published or not (for
    /// tests and operators; the relay uses [`OutboxStore::claim`]).
    ///
    /// # Errors
    /// `Unavailable` when the database is.
    pub async fn events(&self) -> Result<Vec<Event>> {
        let rows = sqlx::query(ALL_EVENTS).fetch_all(self.store.pool()).await.map_err(db_err)?;
        rows.iter().map(|r| from_json(r.get::<&str, _>(0))).collect()
    }
}

fn seqs_json(seqs: &[u64]) -> Result<String> {
    to_json(seqs)
}

#[async_trait]
impl OutboxStore for SqliteOutbox {
    async fn claim(&self, limit: usize, now: Timestamp, lease_until: Timestamp) -> Result<Vec<OutboxEntry>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut tx = self.store.write().await?;
        let rows = sqlx::query(CLAIM)
            .bind(ts(lease_until)?)
            .bind(ts(now)?)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err)?;
        self.store.commit(tx).await?;
        let mut entries = rows
            .iter()
            .map(|r| {
                let seq: i64 = r.get(0);
                Ok(OutboxEntry { seq: crate::codec::uint(seq)?, event: from_json(r.get::<&str, _>(1))? })
            })
            .collect::<Result<Vec<_>>>()?;
        // RETURNING does not promise an order.
        entries.sort_by_key(|e| e.seq);
        Ok(entries)
    }

    async fn mark_published(&self, seqs: &[u64]) -> Result<()> {
        if seqs.is_empty() {
            return Ok(());
        }
        let mut tx = self.store.write().await?;
        sqlx::query(MARK_PUBLISHED).bind(seqs_json(seqs)?).execute(&mut *tx).await.map_err(db_err)?;
        self.store.commit(tx).await
    }

    async fn release(&self, seqs: &[u64]) -> Result<()> {
        if seqs.is_empty() {
            return Ok(());
        }
        let mut tx = self.store.write().await?;
        sqlx::query(RELEASE).bind(seqs_json(seqs)?).execute(&mut *tx).await.map_err(db_err)?;
        self.store.commit(tx).await
    }
}
