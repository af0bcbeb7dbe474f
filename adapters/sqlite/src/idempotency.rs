//! Idempotency keys ([`IdempotencyStore`]): one row per (scope, key), the
//! rules of [`IdempotencyRecord::decide`] applied under the write lock.

use async_trait::async_trait;
use bazaar_core::Result;
use bazaar_core::clock::Timestamp;
use bazaar_core::orders::{
    IdempotencyBegin, IdempotencyClaim, IdempotencyRecord, IdempotencyStore, IdempotencyTerms, StoredResponse,
};
use sqlx::Row;

use crate::codec::{db_err, from_json, from_ts, to_json, ts};
use crate::store::{SqliteStore, WriteTx};

pub(crate) const GET: &str = "SELECT request_hash, response, expires_at, token, locked_until
    FROM idempotency_keys WHERE scope = ?1 AND key = ?2";
// REPLACE: an expired record counts as absent, and a lapsed claim is taken
// over; either is overwritten.
pub(crate) const START: &str =
    "INSERT OR REPLACE INTO idempotency_keys (scope, key, request_hash, response, expires_at, token, locked_until)
    VALUES (?1, ?2, ?3, NULL, ?4, ?5, ?6)";
// The token guard: only the claim holding the key answers or frees it.
pub(crate) const COMPLETE: &str = "UPDATE idempotency_keys SET response = ?4
    WHERE scope = ?1 AND key = ?2 AND token = ?3 AND response IS NULL";
pub(crate) const ABANDON: &str =
    "DELETE FROM idempotency_keys WHERE scope = ?1 AND key = ?2 AND token = ?3 AND response IS NULL";

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

/// Completes `claim` with `response` inside `tx`.
///
/// # Errors
/// [`Error::Conflict`](bazaar_core::Error::Conflict) when the claim does not hold its key unfinished.
pub(crate) async fn complete_in(tx: &mut WriteTx, claim: &IdempotencyClaim, response: &StoredResponse) -> Result<()> {
    let done = sqlx::query(COMPLETE)
        .bind(claim.scope.clone())
        .bind(claim.key.clone())
        .bind(claim.token.clone())
        .bind(to_json(response)?)
        .execute(&mut **tx)
        .await
        .map_err(db_err)?;
    if done.rows_affected() == 0 { Err(claim.not_held()) } else { Ok(()) }
}

#[async_trait]
impl IdempotencyStore for SqliteIdempotency {
    async fn begin(
        &self,
        claim: &IdempotencyClaim,
        request_hash: &str,
        now: Timestamp,
        terms: IdempotencyTerms,
    ) -> Result<IdempotencyBegin> {
        // The read and the insert must be one atomic step: under the write
        // lock no other `begin` can slip in between.
        let mut tx = self.store.write().await?;
        let row = sqlx::query(GET)
            .bind(claim.scope.clone())
            .bind(claim.key.clone())
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
                    token: r.get(3),
                    locked_until: from_ts(r.get(4)),
                })
            })
            .transpose()?;
        let outcome = IdempotencyRecord::decide(existing.as_ref(), request_hash, now);
        if outcome == IdempotencyBegin::Started {
            let record = IdempotencyRecord::started(claim, request_hash, now, terms);
            sqlx::query(START)
                .bind(claim.scope.clone())
                .bind(claim.key.clone())
                .bind(request_hash.to_owned())
                .bind(ts(record.expires_at)?)
                .bind(record.token)
                .bind(ts(record.locked_until)?)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            self.store.commit(tx).await?;
        }
        Ok(outcome)
    }

    async fn complete(&self, claim: &IdempotencyClaim, response: StoredResponse) -> Result<()> {
        let mut tx = self.store.write().await?;
        complete_in(&mut tx, claim, &response).await?;
        self.store.commit(tx).await
    }

    async fn abandon(&self, claim: &IdempotencyClaim) -> Result<()> {
        let statement =
            sqlx::query(ABANDON).bind(claim.scope.clone()).bind(claim.key.clone()).bind(claim.token.clone());
        self.store.write_one(statement).await?;
        Ok(())
    }
}
