//! Refresh-token families ([`RefreshTokenStore`]). A rotation locks its
//! family's row (`SELECT … FOR UPDATE`) before reading the token, so
//! rotations and logouts of one family run one after another: of racing
//! rotations of one token, the first spends it and every later one reads it
//! spent (READ COMMITTED gives each statement a fresh snapshot, taken after
//! the lock was granted). Families never wait for each other.

use async_trait::async_trait;
use bazaar_core::ConflictReason;
use bazaar_core::auth::{RefreshToken, RefreshTokenStore, Rotation, TokenHash};
use bazaar_core::clock::Timestamp;
use bazaar_core::ids::{SessionId, UserId};
use bazaar_core::{Error, Result};
use sqlx::Row;

use crate::codec::{db_err, from_ts, ts};
use crate::store::{PgStore, WriteTx};

pub(crate) const INSERT_SESSION: &str = "INSERT INTO refresh_sessions (id, user_id) VALUES ($1, $2)";
pub(crate) const INSERT_TOKEN: &str = "INSERT INTO refresh_tokens (hash, session_id, user_id, issued_at, expires_at)
    VALUES ($1, $2, $3, $4, $5)";
// A token's family never changes, so the sub-select needs no lock; the
// family row does, and `revoked` comes back as of the lock.
pub(crate) const LOCK_FAMILY: &str = "SELECT revoked FROM refresh_sessions
    WHERE id = (SELECT session_id FROM refresh_tokens WHERE hash = $1) FOR UPDATE";
pub(crate) const TOKEN: &str =
    "SELECT session_id, user_id, issued_at, expires_at, spent_at FROM refresh_tokens WHERE hash = $1";
// Guarded although the family is locked: if it ever matches nothing, the
// token was spent under us and the rotation must not go ahead.
pub(crate) const SPEND: &str = "UPDATE refresh_tokens SET spent_at = $2 WHERE hash = $1 AND spent_at IS NULL";
pub(crate) const REVOKE: &str = "UPDATE refresh_sessions SET revoked = TRUE WHERE id = $1";
pub(crate) const REVOKE_BY_TOKEN: &str =
    "UPDATE refresh_sessions SET revoked = TRUE WHERE id = (SELECT session_id FROM refresh_tokens WHERE hash = $1)";

/// Refresh tokens in PostgreSQL (hashes only).
#[derive(Debug, Clone)]
pub struct PgRefreshTokens {
    store: PgStore,
}

impl PgRefreshTokens {
    pub(crate) fn new(store: PgStore) -> Self {
        Self { store }
    }
}

/// A stored token, read under its family's lock.
struct Found {
    token: RefreshToken,
    spent: bool,
    revoked: bool,
}

fn stored_id<T: std::str::FromStr<Err = Error>>(text: &str) -> Result<T> {
    text.parse().map_err(|e| Error::internal("reading a refresh-token row", e))
}

/// A unique violation as the caller should read it, without the schema.
fn conflict(e: Error, what: &str) -> Error {
    match e {
        Error::Conflict { .. } => Error::conflict(ConflictReason::Duplicate, format!("{what} already exists")),
        other => other,
    }
}

/// Locks the family of `presented` and reads the token; `None` when the
/// token is unknown.
async fn lock_and_read(tx: &mut WriteTx, presented: &TokenHash) -> Result<Option<Found>> {
    let Some(family) =
        sqlx::query(LOCK_FAMILY).bind(presented.as_str()).fetch_optional(&mut **tx).await.map_err(db_err)?
    else {
        return Ok(None);
    };
    let revoked: bool = family.get(0);
    let Some(row) = sqlx::query(TOKEN).bind(presented.as_str()).fetch_optional(&mut **tx).await.map_err(db_err)? else {
        return Ok(None);
    };
    let token = RefreshToken {
        hash: presented.clone(),
        session: stored_id::<SessionId>(row.get(0))?,
        user_id: stored_id::<UserId>(row.get(1))?,
        issued_at: from_ts(row.get(2)),
        expires_at: from_ts(row.get(3)),
    };
    let spent_at: Option<i64> = row.get(4);
    Ok(Some(Found { token, spent: spent_at.is_some(), revoked }))
}

async fn insert_token(tx: &mut WriteTx, token: &RefreshToken) -> Result<()> {
    sqlx::query(INSERT_TOKEN)
        .bind(token.hash.as_str())
        .bind(token.session.to_string())
        .bind(token.user_id.to_string())
        .bind(ts(token.issued_at)?)
        .bind(ts(token.expires_at)?)
        .execute(&mut **tx)
        .await
        .map_err(|e| conflict(db_err(e), "refresh token"))?;
    Ok(())
}

impl PgRefreshTokens {
    async fn rotate_in_tx(&self, presented: &TokenHash, next: &RefreshToken, now: Timestamp) -> Result<Rotation> {
        // Every early return drops `tx`, which rolls back: nothing changes.
        let mut tx = self.store.write().await?;
        let Some(found) = lock_and_read(&mut tx, presented).await? else {
            return Ok(Rotation::Invalid);
        };
        let old = found.token;
        if next.session != old.session {
            return Err(Error::invalid("next.session", "must be the presented token's session"));
        }
        if next.user_id != old.user_id {
            return Err(Error::invalid("next.user_id", "must be the presented token's user"));
        }
        if now >= old.expires_at {
            return Ok(Rotation::Invalid);
        }
        if found.spent || found.revoked {
            sqlx::query(REVOKE).bind(old.session.to_string()).execute(&mut *tx).await.map_err(db_err)?;
            self.store.commit(tx).await?;
            return Ok(Rotation::Reused { session: old.session, user_id: old.user_id });
        }
        let spent =
            sqlx::query(SPEND).bind(presented.as_str()).bind(ts(now)?).execute(&mut *tx).await.map_err(db_err)?;
        if spent.rows_affected() != 1 {
            return Err(Error::internal("rotating a refresh token", "token spent under the family lock"));
        }
        insert_token(&mut tx, next).await?;
        self.store.commit(tx).await?;
        Ok(Rotation::Rotated(old))
    }
}

#[async_trait]
impl RefreshTokenStore for PgRefreshTokens {
    async fn insert(&self, token: &RefreshToken) -> Result<()> {
        self.store
            .run(async {
                let mut tx = self.store.write().await?;
                sqlx::query(INSERT_SESSION)
                    .bind(token.session.to_string())
                    .bind(token.user_id.to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| conflict(db_err(e), "session"))?;
                insert_token(&mut tx, token).await?;
                self.store.commit(tx).await
            })
            .await
    }

    async fn rotate(&self, presented: &TokenHash, next: &RefreshToken, now: Timestamp) -> Result<Rotation> {
        self.store.run(self.rotate_in_tx(presented, next, now)).await
    }

    async fn revoke_session(&self, presented: &TokenHash) -> Result<bool> {
        self.store
            .run(async {
                let done = self.store.write_one(|| sqlx::query(REVOKE_BY_TOKEN).bind(presented.as_str())).await?;
                // The family row matches even when it is already revoked, so a
                // repeated logout is `true` again.
                Ok(done.rows_affected() == 1)
            })
            .await
    }
}
