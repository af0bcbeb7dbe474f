//! Idempotency keys ([`IdempotencyStore`]): one row per (scope, key), the
//! rules of [`IdempotencyRecord::decide`] applied under a row lock.

use async_trait::async_trait;
use bazaar_core::ConflictReason;
use bazaar_core::clock::Timestamp;
use bazaar_core::orders::{IdempotencyBegin, IdempotencyRecord, IdempotencyStore, StoredResponse};
use bazaar_core::{Error, Result};
use chrono::Duration;
use sqlx::Row;

use crate::codec::{db_err, from_json, from_ts, to_json, ts};
use crate::store::PgStore;

// Takes a free key in one statement: the primary key decides a race, and a
// concurrent `begin` on the same key waits for this one to commit.
pub(crate) const TRY_START: &str = "INSERT INTO idempotency_keys (scope, key, request_hash, response, expires_at)
    VALUES ($1, $2, $3, NULL, $4) ON CONFLICT (scope, key) DO NOTHING";
// The key exists: lock it so deciding and (for an expired record) taking it
// over are one step.
pub(crate) const GET_FOR_UPDATE: &str =
    "SELECT request_hash, response, expires_at FROM idempotency_keys WHERE scope = $1 AND key = $2 FOR UPDATE";
// An expired record counts as absent and is overwritten.
pub(crate) const RESTART: &str =
    "UPDATE idempotency_keys SET request_hash = $3, response = NULL, expires_at = $4 WHERE scope = $1 AND key = $2";
// A plain insert: if another `begin` re-took the key meanwhile, the unique
// violation reports the key as in flight (`Conflict`).
pub(crate) const TRY_START_OR_FAIL: &str =
    "INSERT INTO idempotency_keys (scope, key, request_hash, response, expires_at) VALUES ($1, $2, $3, NULL, $4)";
pub(crate) const COMPLETE: &str =
    "UPDATE idempotency_keys SET response = $3 WHERE scope = $1 AND key = $2 AND response IS NULL";
pub(crate) const ABANDON: &str = "DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND response IS NULL";

/// Idempotency records in PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgIdempotency {
    store: PgStore,
}

impl PgIdempotency {
    pub(crate) fn new(store: PgStore) -> Self {
        Self { store }
    }
}

#[async_trait]
impl IdempotencyStore for PgIdempotency {
    async fn begin(
        &self,
        scope: &str,
        key: &str,
        request_hash: &str,
        now: Timestamp,
        ttl: Duration,
    ) -> Result<IdempotencyBegin> {
        self.store
            .run(async {
                let started = IdempotencyRecord::started(request_hash, now, ttl);
                let expires_at = ts(started.expires_at)?;
                // The common case, a fresh key, is this one autocommitted
                // statement; only a taken key needs the locked read below.
                let inserted = self
                    .store
                    .write_one(|| sqlx::query(TRY_START).bind(scope).bind(key).bind(request_hash).bind(expires_at))
                    .await?;
                if inserted.rows_affected() == 1 {
                    return Ok(IdempotencyBegin::Started);
                }
                let mut tx = self.store.write().await?;
                let row =
                    sqlx::query(GET_FOR_UPDATE).bind(scope).bind(key).fetch_optional(&mut *tx).await.map_err(db_err)?;
                let existing = row
                    .map(|r| -> Result<IdempotencyRecord> {
                        let response: Option<&str> = r.get(1);
                        Ok(IdempotencyRecord {
                            request_hash: r.get(0),
                            response: response.map(from_json::<StoredResponse>).transpose()?,
                            expires_at: from_ts(r.get(2)),
                        })
                    })
                    .transpose()?;
                let outcome = IdempotencyRecord::decide(existing.as_ref(), request_hash, now);
                if outcome == IdempotencyBegin::Started {
                    // Expired (or abandoned between our two statements):
                    // take the key over; an abandoned key's row is gone,
                    // so insert it again.
                    let statement = if existing.is_some() { RESTART } else { TRY_START_OR_FAIL };
                    sqlx::query(statement)
                        .bind(scope)
                        .bind(key)
                        .bind(request_hash)
                        .bind(expires_at)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    self.store.commit(tx).await?;
                }
                Ok(outcome)
            })
            .await
    }

    async fn complete(&self, scope: &str, key: &str, response: StoredResponse) -> Result<()> {
        self.store
            .run(async {
                let response = to_json(&response)?;
                let done = self
                    .store
                    .write_one(|| sqlx::query(COMPLETE).bind(scope).bind(key).bind(response.as_str()))
                    .await?;
                if done.rows_affected() == 0 {
                    return Err(Error::conflict(
                        ConflictReason::Contended,
                        format!("idempotency key {key:?} is not in flight"),
                    ));
                }
                Ok(())
            })
            .await
    }

    async fn abandon(&self, scope: &str, key: &str) -> Result<()> {
        self.store
            .run(async { self.store.write_one(|| sqlx::query(ABANDON).bind(scope).bind(key)).await.map(|_| ()) })
            .await
    }
}
