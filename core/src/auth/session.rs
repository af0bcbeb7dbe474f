//! Refresh-token sessions: rotation with reuse detection.
//!
//! A login starts a family ([`SessionId`]); each refresh spends the live
//! token and issues its successor in the same family. Presenting a token
//! that was already spent means it leaked (or a client raced itself), so the
//! whole family is revoked and every holder must log in again (the OAuth 2.0
//! Security BCP's refresh-token rotation). Stores keep only a SHA-256 of each
//! token, so a database dump yields no usable token.

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use crate::clock::Timestamp;
use crate::error::Result;
use crate::ids::{SessionId, UserId};

/// The SHA-256 of a refresh token, hex-encoded: what stores index.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TokenHash(String);

impl TokenHash {
    /// Hashes the token a client presented.
    pub fn of(token: &str) -> Self {
        Self(hex::encode(Sha256::digest(token.as_bytes())))
    }

    /// Wraps a stored hash (64 lower-case hex digits) read back from a store.
    pub fn from_stored(hex: String) -> Self {
        Self(hex)
    }

    /// The hex digest.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for TokenHash {
    // A prefix identifies the row in a log without handing out the digest.
    // By characters, not bytes: a corrupted stored value must not make
    // `Debug` panic on a char boundary.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let prefix: String = self.0.chars().take(8).collect();
        write!(f, "TokenHash({prefix}…)")
    }
}

/// One refresh token as stored: its hash, never the token itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshToken {
    /// SHA-256 of the token.
    pub hash: TokenHash,
    /// The family (login) it belongs to.
    pub session: SessionId,
    /// Whose it is.
    pub user_id: UserId,
    /// When it was issued.
    pub issued_at: Timestamp,
    /// After this instant it no longer refreshes.
    pub expires_at: Timestamp,
}

/// What presenting a refresh token did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The token was live: it is now spent and its successor is stored.
    /// Carries the spent token's record (its user and family).
    Rotated(RefreshToken),
    /// The token had already been spent, or its family was revoked: the
    /// family is now revoked (successors included) and nothing was stored.
    Reused {
        /// The revoked family.
        session: SessionId,
        /// Its user.
        user_id: UserId,
    },
    /// The token is unknown or expired: nothing changed.
    Invalid,
}

/// Where refresh tokens live.
///
/// A family is created by [`insert`](Self::insert) and grows by one token
/// per [`rotate`](Self::rotate); at most one of its tokens is live (the
/// newest). Revocation is a mark on the family, so it also covers any token
/// a racing rotation managed to store. Tokens are never deleted by these
/// methods: a spent token must stay recognisable to detect its reuse.
///
/// # Example
/// ```
/// use bazaar_core::auth::{RefreshToken, RefreshTokenStore, Rotation, TokenHash};
/// use bazaar_core::ids::{SessionId, UserId};
/// use bazaar_memory::MemoryRefreshTokens;
/// # futures::executor::block_on(async {
/// let store = MemoryRefreshTokens::new();
/// let now = chrono::Utc::now();
/// let (session, user_id) = (SessionId::new(), UserId::new());
/// let token = |t: &str| RefreshToken {
///     hash: TokenHash::of(t), session, user_id, issued_at: now,
///     expires_at: now + chrono::Duration::days(30),
/// };
/// store.insert(&token("first")).await.unwrap();
/// let rotated = store.rotate(&TokenHash::of("first"), &token("second"), now).await.unwrap();
/// assert!(matches!(rotated, Rotation::Rotated(_)));
/// // Spending "first" again revokes the family: "second" is dead too.
/// let reused = store.rotate(&TokenHash::of("first"), &token("third"), now).await.unwrap();
/// assert!(matches!(reused, Rotation::Reused { .. }));
/// let after = store.rotate(&TokenHash::of("second"), &token("fourth"), now).await.unwrap();
/// assert!(matches!(after, Rotation::Reused { .. }));
/// # });
/// ```
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait RefreshTokenStore: Send + Sync {
    /// Stores the first token of a new family (a login).
    ///
    /// MUST return [`crate::Error::Conflict`] when the hash is already
    /// stored, or when `token.session` already names a family (a login
    /// always starts a new one; joining an old family could revive a revoked
    /// login's user or hand it a second live token). Nothing is stored then.
    async fn insert(&self, token: &RefreshToken) -> Result<()>;

    /// Spends the token hashed `presented` and stores `next` (same family)
    /// in one atomic step.
    ///
    /// MUST return [`Rotation::Rotated`] only when `presented` is unspent,
    /// its family is not revoked and `now < expires_at`; MUST, when
    /// `presented` was already spent or its family revoked, revoke the
    /// family and return [`Rotation::Reused`] without storing `next`; MUST
    /// return [`Rotation::Invalid`] for an unknown or expired token, changing
    /// nothing. Of concurrent rotations of one token at most one is
    /// `Rotated` (the others see it spent, so they are `Reused`: a client
    /// racing itself looks exactly like a stolen token).
    ///
    /// The checks run in this order: unknown → `Invalid`; `next` of another
    /// family or user → error; expired (spent or not) → `Invalid`, since an
    /// expired token could not refresh anyway and the family is left as is;
    /// spent or revoked → `Reused`; otherwise `Rotated`.
    ///
    /// # Errors
    /// [`crate::Error::Validation`] (kind `Invalid`) when `next.session` is
    /// not the presented token's family or `next.user_id` not its user;
    /// [`crate::Error::Conflict`] when `next.hash` is already stored. Nothing
    /// changes on an error.
    async fn rotate(&self, presented: &TokenHash, next: &RefreshToken, now: Timestamp) -> Result<Rotation>;

    /// Revokes the family of the token hashed `presented` (logout). Any token
    /// of the family will do, spent or expired ones included. Returns
    /// `false` when the token is unknown. Idempotent: revoking a revoked
    /// family returns `true` again.
    async fn revoke_session(&self, presented: &TokenHash) -> Result<bool>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_hash_is_hex_sha256() {
        // FIPS 180-2's "abc" test vector.
        let h = TokenHash::of("abc");
        assert_eq!(h.as_str(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(TokenHash::from_stored(h.as_str().to_owned()), h, "a stored digest reads back equal");
        assert_ne!(TokenHash::of("abd"), h);
    }

    #[test]
    fn debug_shows_only_a_prefix() {
        let h = TokenHash::of("abc");
        let shown = format!("{h:?}");
        assert_eq!(shown, "TokenHash(ba7816bf…)");
        assert!(!shown.contains(h.as_str()), "the full digest must stay out of logs");
        // A corrupted stored value (multi-byte characters) must not panic.
        assert_eq!(format!("{:?}", TokenHash::from_stored("ééééééééé".into())), "TokenHash(éééééééé…)");
    }
}
