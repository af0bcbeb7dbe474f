//! Refresh-token families ([`RefreshTokenStore`]): a rotation's check and
//! its writes run in one `BEGIN IMMEDIATE` transaction, so under SQLite's
//! single writer no other rotation or logout can slip in between; of racing
//! rotations of one token only the first sees it unspent.

use async_trait::async_trait;
use bazaar_core::ConflictReason;
use bazaar_core::auth::{RefreshToken, RefreshTokenStore, Rotation, TokenHash};
use bazaar_core::clock::Timestamp;
use bazaar_core::ids::{SessionId, UserId};
use bazaar_core::{Error, Result};
use sqlx::Row;

use crate::codec::{db_err, from_ts, ts};
use crate::store::{SqliteStore, WriteTx};

pub(crate) const INSERT_SESSION: &str = "INSERT INTO refresh_sessions (id, user_id) VALUES (?1, ?2)";
pub(crate) const INSERT_TOKEN: &str = "INSERT INTO refresh_tokens (hash, session_id, user_id, issued_at, expires_at)
    VALUES (?1, ?2, ?3, ?4, ?5)";
pub(crate) const LOOKUP: &str = "SELECT t.session_id, t.user_id, t.issued_at, t.expires_at, t.spent_at, s.revoked
    FROM refresh_tokens t JOIN refresh_sessions s ON s.id = t.session_id WHERE t.hash = ?1";
// Guarded although the write lock is held: if it ever matches nothing, the
// token was spent under us and the rotation must not go ahead.
pub(crate) const SPEND: &str = "UPDATE refresh_tokens SET spent_at = ?2 WHERE hash = ?1 AND spent_at IS NULL";
pub(crate) const REVOKE: &str = "UPDATE refresh_sessions SET revoked = 1 WHERE id = ?1";
pub(crate) const REVOKE_BY_TOKEN: &str =
    "UPDATE refresh_sessions SET revoked = 1 WHERE id = (SELECT session_id FROM refresh_tokens WHERE hash = ?1)";

/// Refresh tokens in SQLite (hashes only).
#[derive(Debug, Clone)]
pub struct SqliteRefreshTokens {
    store: SqliteStore,
}

impl SqliteRefreshTokens {
    pub(crate) fn new(store: SqliteStore) -> Self {
        Self { store }
    }
}

/// A stored token and the state of its family.
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

async fn lookup(tx: &mut WriteTx, presented: &TokenHash) -> Result<Option<Found>> {
    let Some(row) = sqlx::query(LOOKUP).bind(presented.as_str()).fetch_optional(&mut **tx).await.map_err(db_err)?
    else {
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
    let revoked: i64 = row.get(5);
    Ok(Some(Found { token, spent: spent_at.is_some(), revoked: revoked != 0 }))
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

#[async_trait]
impl RefreshTokenStore for SqliteRefreshTokens {
    async fn insert(&self, token: &RefreshToken) -> Result<()> {
        let mut tx = self.store.write().await?;
        sqlx::query(INSERT_SESSION)
            .bind(token.session.to_string())
            .bind(token.user_id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(|e| conflict(db_err(e), "session"))?;
        insert_token(&mut tx, token).await?;
        self.store.commit(tx).await
    }

    async fn rotate(&self, presented: &TokenHash, next: &RefreshToken, now: Timestamp) -> Result<Rotation> {
        // Every early return drops `tx`, which rolls back: nothing changes.
        let mut tx = self.store.write().await?;
        let Some(found) = lookup(&mut tx, presented).await? else {
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
            return Err(Error::internal("rotating a refresh token", "token spent under the write lock"));
        }
        insert_token(&mut tx, next).await?;
        self.store.commit(tx).await?;
        Ok(Rotation::Rotated(old))
    }

    async fn revoke_session(&self, presented: &TokenHash) -> Result<bool> {
        let done = self.store.write_one(sqlx::query(REVOKE_BY_TOKEN).bind(presented.as_str())).await?;
        // The family row matches even when it is already revoked, so a
        // repeated logout is `true` again.
        Ok(done.rows_affected() == 1)
    }
}

#[cfg(test)]
mod tests {
    //! The crate's query-plan check (`plans.rs`) covers the tables of the
    //! first migration; this does the same for these queries.

    use sqlx::Row;

    use super::*;

    const QUERIES: &[&str] = &[INSERT_SESSION, INSERT_TOKEN, LOOKUP, SPEND, REVOKE, REVOKE_BY_TOKEN];
    const TABLES: &[&str] = &["refresh_sessions", "refresh_tokens", "t", "s"];

    /// The plan lines of `sql` that scan one of these tables without an index.
    async fn full_scans(store: &SqliteStore, sql: &str) -> Vec<String> {
        // Each placeholder appears once in these queries.
        let params = sql.matches('?').count();
        let mut query = sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")));
        for _ in 0..params {
            query = query.bind(Option::<String>::None);
        }
        let rows = query.fetch_all(store.pool()).await.unwrap_or_else(|e| panic!("cannot plan {sql}: {e}"));
        rows.iter()
            .map(|row| row.get::<String, _>(3))
            .filter(|detail| {
                detail.strip_prefix("SCAN ").is_some_and(|rest| {
                    let table = rest.split_whitespace().next().unwrap_or_default();
                    TABLES.contains(&table) && !rest.contains("USING")
                })
            })
            .map(|detail| format!("{detail}\n    in {sql}"))
            .collect()
    }

    #[tokio::test]
    async fn every_query_uses_an_index() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(&dir.path().join("plans.db")).await.expect("open");
        store.migrate().await.expect("migrate");
        let unindexed = "SELECT hash FROM refresh_tokens WHERE user_id = ?1";
        assert_eq!(full_scans(&store, unindexed).await.len(), 1, "the check must catch a full scan");
        let mut offenders = Vec::new();
        for sql in QUERIES {
            offenders.extend(full_scans(&store, sql).await);
        }
        assert!(offenders.is_empty(), "queries without an index:\n{}", offenders.join("\n"));
    }
}
