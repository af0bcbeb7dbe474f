//! The credential ports: password hashing and access tokens. Their
//! implementations (argon2id, HS256 JWTs) are adapters (`bazaar-auth`); the
//! rules that use them live in [`AuthService`](super::AuthService).

use async_trait::async_trait;

use super::Actor;
use crate::clock::Timestamp;
use crate::error::Result;

/// Hashes and checks passwords.
///
/// Both calls are slow on purpose (memory-hard hashing); implementations
/// MUST keep them off the caller's async threads and cap how many run at
/// once, so a burst of logins cannot stall the rest of the process.
///
/// # Example
/// The argon2id adapter from `bazaar-auth` (with its cheap test
/// parameters):
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use bazaar_auth::Argon2Passwords;
/// use bazaar_core::auth::PasswordHasher;
///
/// let hasher = Argon2Passwords::fast_for_tests();
/// let phc = hasher.hash("correct horse battery").await?;
/// assert!(phc.starts_with("$argon2id$"));
/// assert!(hasher.verify("correct horse battery", &phc).await?);
/// assert!(!hasher.verify("correct horse battery staple", &phc).await?);
/// // A fresh salt each time: the same password never hashes alike.
/// assert_ne!(hasher.hash("correct horse battery").await?, phc);
/// # Ok::<(), bazaar_core::Error>(())
/// # }).unwrap();
/// ```
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait PasswordHasher: Send + Sync {
    /// The PHC string of `password` with a fresh salt.
    ///
    /// # Errors
    /// [`Error::Unavailable`](crate::Error::Unavailable) when hashing cannot
    /// run; [`Error::Internal`](crate::Error::Internal) if the algorithm refuses its input.
    async fn hash(&self, password: &str) -> Result<String>;

    /// Whether `password` matches the stored PHC string; a malformed one
    /// never matches.
    ///
    /// # Errors
    /// [`Error::Unavailable`](crate::Error::Unavailable) when hashing cannot run.
    async fn verify(&self, password: &str, phc: &str) -> Result<bool>;

    /// MUST take as long as [`verify`](Self::verify) does: it is called for
    /// an e-mail that belongs to no account, so response times do not
    /// reveal which accounts exist.
    ///
    /// # Errors
    /// [`Error::Unavailable`](crate::Error::Unavailable) when hashing cannot run.
    async fn verify_nothing(&self, password: &str) -> Result<()>;
}

/// An issued access token.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken {
    /// The compact token a client sends as `Authorization: Bearer …`.
    pub token: String,
    /// When it stops being accepted.
    pub expires_at: Timestamp,
}

impl std::fmt::Debug for AccessToken {
    // The token is a credential: it never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken").field("expires_at", &self.expires_at).finish_non_exhaustive()
    }
}

/// Issues and verifies the bearer tokens every transport accepts.
///
/// Tokens are self-contained (checked without a store look-up) and carry
/// the actor's id and role; every replica that shares the key accepts every
/// other replica's tokens.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait TokenIssuer: Send + Sync {
    /// A token for `actor`, issued at `now`, accepted until `expires_at`.
    ///
    /// # Errors
    /// [`Error::Internal`](crate::Error::Internal) if signing fails.
    fn issue(&self, actor: Actor, now: Timestamp, expires_at: Timestamp) -> Result<AccessToken>;

    /// The actor a token speaks for.
    ///
    /// MUST answer [`Error::Unauthenticated`](crate::Error::Unauthenticated)
    /// for a token that is malformed, signed with another key, or past its
    /// expiry at `now`.
    ///
    /// # Errors
    /// As above.
    fn verify(&self, token: &str, now: Timestamp) -> Result<Actor>;
}
