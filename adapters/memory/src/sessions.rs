//! In-memory [`RefreshTokenStore`]: token hashes and their families behind
//! one lock, so a rotation's check and its writes are one atomic step.

use bazaar_core::ConflictReason;
use std::collections::HashMap;

use async_trait::async_trait;
use bazaar_core::auth::{RefreshToken, RefreshTokenStore, Rotation, TokenHash};
use bazaar_core::clock::Timestamp;
use bazaar_core::ids::{SessionId, UserId};
use bazaar_core::{Error, Result};
use parking_lot::Mutex;

#[derive(Debug)]
struct Stored {
    token: RefreshToken,
    spent: bool,
}

#[derive(Debug)]
struct Family {
    user_id: UserId,
    revoked: bool,
}

#[derive(Debug, Default)]
struct Table {
    tokens: HashMap<TokenHash, Stored>,
    families: HashMap<SessionId, Family>,
}

/// Refresh tokens in memory; thread-safe. Only hashes are kept, as in every
/// store.
#[derive(Debug, Default)]
pub struct MemoryRefreshTokens {
    table: Mutex<Table>,
}

impl MemoryRefreshTokens {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl RefreshTokenStore for MemoryRefreshTokens {
    async fn insert(&self, token: &RefreshToken) -> Result<()> {
        let mut t = self.table.lock();
        if t.tokens.contains_key(&token.hash) {
            return Err(Error::conflict(ConflictReason::Duplicate, "refresh token already exists"));
        }
        if t.families.contains_key(&token.session) {
            return Err(Error::conflict(ConflictReason::Duplicate, "session already exists"));
        }
        t.families.insert(token.session, Family { user_id: token.user_id, revoked: false });
        t.tokens.insert(token.hash.clone(), Stored { token: token.clone(), spent: false });
        Ok(())
    }

    async fn rotate(&self, presented: &TokenHash, next: &RefreshToken, now: Timestamp) -> Result<Rotation> {
        let mut guard = self.table.lock();
        let t = &mut *guard;
        let Some(stored) = t.tokens.get(presented) else {
            return Ok(Rotation::Invalid);
        };
        let old = &stored.token;
        if next.session != old.session {
            return Err(Error::invalid("next.session", "must be the presented token's session"));
        }
        if next.user_id != old.user_id {
            return Err(Error::invalid("next.user_id", "must be the presented token's user"));
        }
        if now >= old.expires_at {
            return Ok(Rotation::Invalid);
        }
        let family = t
            .families
            .get_mut(&old.session)
            .ok_or_else(|| Error::internal("rotating a refresh token", "token without a session"))?;
        if stored.spent || family.revoked {
            family.revoked = true;
            return Ok(Rotation::Reused { session: old.session, user_id: family.user_id });
        }
        // Checked before any write, so a refused rotation changes nothing.
        if t.tokens.contains_key(&next.hash) {
            return Err(Error::conflict(ConflictReason::Duplicate, "refresh token already exists"));
        }
        let old = old.clone();
        if let Some(stored) = t.tokens.get_mut(presented) {
            stored.spent = true;
        }
        t.tokens.insert(next.hash.clone(), Stored { token: next.clone(), spent: false });
        Ok(Rotation::Rotated(old))
    }

    async fn revoke_session(&self, presented: &TokenHash) -> Result<bool> {
        let mut guard = self.table.lock();
        let t = &mut *guard;
        let Some(stored) = t.tokens.get(presented) else {
            return Ok(false);
        };
        let family = t
            .families
            .get_mut(&stored.token.session)
            .ok_or_else(|| Error::internal("revoking a session", "token without a session"))?;
        family.revoked = true;
        Ok(true)
    }
}
