//! Idempotency keys ([`IdempotencyStore`]): one row per (scope, key), the
//! rules of [`IdempotencyRecord::decide`] applied under the write lock.

use async_trait::async_trait;
use bazaar_core::ConflictReason;
use bazaar_core::clock::Timestamp;
use bazaar_core::orders::{IdempotencyBegin, IdempotencyRecord, IdempotencyStore, StoredResponse};
use bazaar_core::{Error, Result};
use chrono::Duration;
use sqlx::Row;

use crate::codec::{db_err, from_json, from_ts, to_json, ts};
use crate::store::SqliteStore;

pub(crate) const GET: &str =
    "SELECT request_hash, response, expires_at FROM idempotency_keys WHERE scope = ?1 AND key = ?2";
// REPLACE: an expired record counts as absent and is overwritten.
pub(crate) const START: &str =
    "INSERT OR REPLACE INTO idempotency_keys (scope, key, request_hash, response, expires_at)
    VALUES (?1, ?2, ?3, NULL, ?4)";
pub(crate) const COMPLETE: &str =
    "UPDATE idempotency_keys SET response = ?3 WHERE scope = ?1 AND key = ?2 AND response IS NULL";
pub(crate) const ABANDON: &str = "DELETE FROM idempotency_keys WHERE scope = ?1 AND key = ?2 AND response IS NULL";

/// Idempotency records in SQLite.
#[derive(Debug, Clone)]
pub struct SqliteIdempotency {
    store: SqliteStore,
}

impl SqliteIdempotency {
    pub(crate) fn new(store: SqliteStore) -> Self {
        Self { store }
    }
}

#[async_trait]
impl IdempotencyStore for SqliteIdempotency {
    async fn begin(
        &self,
        scope: &str,
        key: &str,
        request_hash: &str,
        now: Timestamp,
        ttl: Duration,
    ) -> Result<IdempotencyBegin> {
        // The read and the insert must be one atomic step: under the write
        // lock no other `begin` can slip in between.
        let mut tx = self.store.write().await?;
        let row = sqlx::query(GET)
            .bind(scope.to_owned())
            .bind(key.to_owned())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?;
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
            let record = IdempotencyRecord::started(request_hash, now, ttl);
            sqlx::query(START)
                .bind(scope.to_owned())
                .bind(key.to_owned())
                .bind(request_hash.to_owned())
                .bind(ts(record.expires_at)?)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            self.store.commit(tx).await?;
        }
        Ok(outcome)
    }

    async fn complete(&self, scope: &str, key: &str, response: StoredResponse) -> Result<()> {
        let statement = sqlx::query(COMPLETE).bind(scope.to_owned()).bind(key.to_owned()).bind(to_json(&response)?);
        let done = self.store.write_one(statement).await?;
        if done.rows_affected() == 0 {
            return Err(Error::conflict(
                ConflictReason::Contended,
                format!("idempotency key {key:?} is not in flight"),
            ));
        }
        Ok(())
    }

    async fn abandon(&self, scope: &str, key: &str) -> Result<()> {
        self.store.write_one(sqlx::query(ABANDON).bind(scope.to_owned()).bind(key.to_owned())).await?;
        Ok(())
    }
}
