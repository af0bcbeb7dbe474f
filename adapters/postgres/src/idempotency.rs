//! Idempotency keys ([`IdempotencyStore`]): one row per (scope, key), the
//! rules of [`IdempotencyRecord::decide`] applied under a row lock.

use async_trait::async_trait;
use bazaar_core::Result;
use bazaar_core::clock::Timestamp;
use bazaar_core::orders::{
    IdempotencyBegin, IdempotencyClaim, IdempotencyRecord, IdempotencyStore, IdempotencyTerms, StoredResponse,
};
use sqlx::Row;

use crate::codec::{db_err, from_json, from_ts, to_json, ts};
use crate::store::PgStore;

// Takes a free key in one statement: the primary key decides a race, and a
// concurrent `begin` on the same key waits for this one to commit.
pub(crate) const TRY_START: &str =
    "INSERT INTO idempotency_keys (scope, key, request_hash, response, expires_at, token, locked_until)
    VALUES ($1, $2, $3, NULL, $4, $5, $6) ON CONFLICT (scope, key) DO NOTHING";
// The key exists: lock it so deciding and (for an expired record or a
// lapsed claim) taking it over are one step.
pub(crate) const GET_FOR_UPDATE: &str = "SELECT request_hash, response, expires_at, token, locked_until
    FROM idempotency_keys WHERE scope = $1 AND key = $2 FOR UPDATE";
// An expired record counts as absent and a lapsed claim is taken over:
// either is overwritten with the new claim.
pub(crate) const RESTART: &str = "UPDATE idempotency_keys
    SET request_hash = $3, response = NULL, expires_at = $4, token = $5, locked_until = $6
    WHERE scope = $1 AND key = $2";
// A plain insert: if another `begin` re-took the key meanwhile, the unique
// violation reports the key as in flight (`Conflict`).
pub(crate) const TRY_START_OR_FAIL: &str =
    "INSERT INTO idempotency_keys (scope, key, request_hash, response, expires_at, token, locked_until)
    VALUES ($1, $2, $3, NULL, $4, $5, $6)";
// The token guard: only the claim holding the key answers or frees it.
pub(crate) const COMPLETE: &str = "UPDATE idempotency_keys SET response = $4
    WHERE scope = $1 AND key = $2 AND token = $3 AND response IS NULL";
pub(crate) const ABANDON: &str =
    "DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND token = $3 AND response IS NULL";

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
        claim: &IdempotencyClaim,
        request_hash: &str,
        now: Timestamp,
        terms: IdempotencyTerms,
    ) -> Result<IdempotencyBegin> {
        self.store
            .run(async {
                let started = IdempotencyRecord::started(claim, request_hash, now, terms);
                let (expires_at, locked_until) = (ts(started.expires_at)?, ts(started.locked_until)?);
                let (scope, key, token) = (claim.scope.as_str(), claim.key.as_str(), claim.token.as_str());
                // The common case, a fresh key, is this one autocommitted
                // statement; only a taken key needs the locked read below.
                let inserted = self
                    .store
                    .write_one(|| {
                        sqlx::query(TRY_START)
                            .bind(scope)
                            .bind(key)
                            .bind(request_hash)
                            .bind(expires_at)
                            .bind(token)
                            .bind(locked_until)
                    })
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
                            token: r.get(3),
                            locked_until: from_ts(r.get(4)),
                        })
                    })
                    .transpose()?;
                let outcome = IdempotencyRecord::decide(existing.as_ref(), request_hash, now);
                if outcome == IdempotencyBegin::Started {
                    // Expired or lapsed (or abandoned between our two
                    // statements): take the key over; an abandoned key's
                    // row is gone, so insert it again.
                    let statement = if existing.is_some() { RESTART } else { TRY_START_OR_FAIL };
                    sqlx::query(statement)
                        .bind(scope)
                        .bind(key)
                        .bind(request_hash)
                        .bind(expires_at)
                        .bind(token)
                        .bind(locked_until)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    self.store.commit(tx).await?;
                }
                Ok(outcome)
            })
            .await
    }

    async fn complete(&self, claim: &IdempotencyClaim, response: StoredResponse) -> Result<()> {
        self.store
            .run(async {
                let response = to_json(&response)?;
                let done = self
                    .store
                    .write_one(|| {
                        sqlx::query(COMPLETE)
                            .bind(claim.scope.as_str())
                            .bind(claim.key.as_str())
                            .bind(claim.token.as_str())
                            .bind(response.as_str())
                    })
                    .await?;
                if done.rows_affected() == 0 { Err(claim.not_held()) } else { Ok(()) }
            })
            .await
    }

    async fn abandon(&self, claim: &IdempotencyClaim) -> Result<()> {
        self.store
            .run(async {
                self.store
                    .write_one(|| {
                        sqlx::query(ABANDON)
                            .bind(claim.scope.as_str())
                            .bind(claim.key.as_str())
                            .bind(claim.token.as_str())
                    })
                    .await
                    .map(|_| ())
            })
            .await
    }
}
