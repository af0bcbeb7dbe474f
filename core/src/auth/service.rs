//! Accounts and sessions: registration, sign-in, refresh-token rotation
//! with reuse detection, sign-out, and the bootstrap admin.
//!
//! A session is a family of refresh tokens (`<session>.<user>.<secret>`,
//! only their SHA-256 stored, see [`RefreshTokenStore`]); each refresh
//! spends the presented token for the next one, and presenting a spent
//! token revokes the family: it leaked. Access tokens are short-lived and
//! checked without a store look-up ([`TokenIssuer`]).

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;

use super::ports::{AccessToken, PasswordHasher, TokenIssuer};
use super::session::{RefreshToken, RefreshTokenStore, Rotation, TokenHash};
use super::throttle::SignInThrottle;
use super::user::{Email, User, UserRepository, check_registration};
use super::{Actor, Role};
use crate::clock::Clock;
use crate::entropy::Entropy;
use crate::error::{ConflictReason, Error, Result};
use crate::events::{Event, UserRegistered};
use crate::ids::{SessionId, UserId};

/// How long tokens live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthConfig {
    /// How long an access token is accepted (default 15 minutes).
    pub access_ttl: Duration,
    /// How long a refresh token is accepted (default 30 days).
    pub refresh_ttl: Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self { access_ttl: Duration::from_secs(15 * 60), refresh_ttl: Duration::from_secs(30 * 24 * 3600) }
    }
}

/// What a person signs up with. The role is theirs to choose between
/// customer and vendor; admins are never self-registered.
#[derive(Clone)]
pub struct Signup {
    /// Their e-mail, as typed (normalised by [`Email::parse`]).
    pub email: String,
    /// Their password, checked by [`check_registration`].
    pub password: String,
    /// Their display name.
    pub name: String,
    /// Customer or vendor.
    pub role: Role,
}

impl fmt::Debug for Signup {
    // The password never reaches a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signup").field("email", &self.email).field("role", &self.role).finish_non_exhaustive()
    }
}

/// A signed-in user with the credentials of their session.
#[derive(Clone)]
pub struct Session {
    /// The user, as stored now.
    pub user: User,
    /// The bearer token.
    pub access: AccessToken,
    /// The session's next refresh token (opaque; only its hash is stored).
    pub refresh_token: String,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session").field("user", &self.user).field("access", &self.access).finish_non_exhaustive()
    }
}

/// The ports [`AuthService`] runs on.
#[derive(Clone)]
pub struct AuthDeps {
    /// Accounts.
    pub users: Arc<dyn UserRepository>,
    /// Refresh-token families.
    pub sessions: Arc<dyn RefreshTokenStore>,
    /// Password hashing.
    pub passwords: Arc<dyn PasswordHasher>,
    /// Access tokens.
    pub tokens: Arc<dyn TokenIssuer>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Refresh-token secrets.
    pub entropy: Arc<dyn Entropy>,
    /// Sign-in quotas (per account here; per client in the transports,
    /// which know the client's address).
    pub throttle: Arc<SignInThrottle>,
}

impl fmt::Debug for AuthDeps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthDeps").finish_non_exhaustive()
    }
}

/// Accounts, sign-in and sessions.
pub struct AuthService {
    deps: AuthDeps,
    config: AuthConfig,
    refused: HashSet<Email>,
}

impl fmt::Debug for AuthService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthService").field("config", &self.config).finish_non_exhaustive()
    }
}

/// The answer to a wrong e-mail or password: the same for both.
const WRONG_CREDENTIALS: &str = "wrong e-mail or password";

impl AuthService {
    /// A service over `deps` with `config`.
    pub fn new(deps: AuthDeps, config: AuthConfig) -> Self {
        Self { deps, config, refused: HashSet::new() }
    }

    /// The same service refusing to sign in `emails` (login and refresh),
    /// as if their passwords were wrong: accounts whose password is public,
    /// such as a demo's, outside the setting they were made for.
    #[must_use]
    pub fn refusing_sign_in(mut self, emails: impl IntoIterator<Item = Email>) -> Self {
        self.refused.extend(emails);
        self
    }

    /// The token lifetimes in force.
    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    /// Spends one attempt of `client`'s sign-in quota. Transports call it
    /// before register, login and refresh, with the address
    /// [`TrustedProxies::client`](super::client_ip::TrustedProxies::client)
    /// finds.
    ///
    /// # Errors
    /// [`Error::RateLimited`] when the quota is spent.
    pub async fn admit_client(&self, client: std::net::IpAddr) -> Result<()> {
        self.deps.throttle.admit_client(client).await
    }

    /// Creates an account (committing `user.registered`) and signs it in.
    ///
    /// # Errors
    /// [`Error::Validation`] on `email`, `name`, `password`, or `role` when
    /// it is admin; [`Error::Conflict`] when the e-mail is taken; store and
    /// hasher errors.
    pub async fn register(&self, signup: Signup) -> Result<Session> {
        if signup.role == Role::Admin {
            return Err(Error::invalid("role", "must be customer or vendor; admins are not self-registered"));
        }
        let email = Email::parse(&signup.email)?;
        let user = self.create(email, &signup.password, &signup.name, signup.role).await?;
        tracing::info!(user_id = %user.id, role = user.role.as_str(), "user registered");
        self.start(user).await
    }

    /// Signs in with an e-mail and password, spending one of the account's
    /// sign-in quota ([`SignInLimits::per_account`](super::SignInLimits)).
    ///
    /// # Errors
    /// [`Error::Unauthenticated`] for an unknown or malformed e-mail or a
    /// wrong password, alike (and alike in time); [`Error::RateLimited`]
    /// when the account's quota is spent (whether or not it exists, so the
    /// answer tells nothing); store and hasher errors.
    pub async fn login(&self, email: &str, password: &str) -> Result<Session> {
        let user = match Email::parse(email) {
            Ok(email) => {
                self.deps.throttle.admit_account(&email).await?;
                self.authenticate(&email, password).await?
            }
            // A malformed e-mail belongs to nobody; spend the same time anyway.
            Err(_) => {
                self.deps.passwords.verify_nothing(password).await?;
                None
            }
        };
        let user = user.ok_or_else(|| Error::Unauthenticated(WRONG_CREDENTIALS.into()))?;
        self.start(user).await
    }

    /// The user with these credentials, or `None`.
    ///
    /// # Errors
    /// Store and hasher errors.
    pub async fn authenticate(&self, email: &Email, password: &str) -> Result<Option<User>> {
        if self.refused.contains(email) {
            // Answered in the time a wrong password takes.
            self.deps.passwords.verify_nothing(password).await?;
            return Ok(None);
        }
        match self.deps.users.find_by_email(email).await? {
            Some(user) => Ok(self.deps.passwords.verify(password, &user.password_hash).await?.then_some(user)),
            None => {
                self.deps.passwords.verify_nothing(password).await?;
                Ok(None)
            }
        }
    }

    /// Spends `refresh_token` for a new access token and the session's next
    /// refresh token. The user is read afresh, as the role may have changed.
    ///
    /// # Errors
    /// [`Error::Unauthenticated`] for a token that is unknown, expired,
    /// malformed, of a revoked session or of a deleted user; for a token
    /// spent before, after revoking its whole session (it leaked); store
    /// errors.
    pub async fn refresh(&self, refresh_token: &str) -> Result<Session> {
        let invalid = || Error::Unauthenticated("invalid or expired refresh token".into());
        let (session, user_id) = parse_refresh_token(refresh_token).ok_or_else(invalid)?;
        let (next_token, next) = self.refresh_token(session, user_id)?;
        match self.deps.sessions.rotate(&TokenHash::of(refresh_token), &next, self.deps.clock.now()).await? {
            Rotation::Rotated(_) => {}
            Rotation::Reused { session, user_id } => {
                tracing::warn!(%session, %user_id, "refresh token reused: session revoked");
                return Err(Error::Unauthenticated("refresh token was already used; the session is revoked".into()));
            }
            Rotation::Invalid => return Err(invalid()),
        }
        let user =
            self.deps.users.get(user_id).await?.filter(|u| !self.refused.contains(&u.email)).ok_or_else(invalid)?;
        let access = self.access_token(&user)?;
        Ok(Session { user, access, refresh_token: next_token })
    }

    /// Revokes the session `refresh_token` belongs to; whether there was one.
    ///
    /// # Errors
    /// Store errors.
    pub async fn logout(&self, refresh_token: &str) -> Result<bool> {
        let revoked = self.deps.sessions.revoke_session(&TokenHash::of(refresh_token)).await?;
        if revoked {
            tracing::info!("session revoked by logout");
        }
        Ok(revoked)
    }

    /// The actor's own account.
    ///
    /// # Errors
    /// [`Error::NotFound`] when the account no longer exists; store errors.
    pub async fn me(&self, actor: &Actor) -> Result<User> {
        self.deps.users.get(actor.user_id).await?.ok_or_else(|| Error::not_found("user"))
    }

    /// The actor a bearer token speaks for.
    ///
    /// # Errors
    /// [`Error::Unauthenticated`] for a bad or expired token.
    pub fn verify(&self, access_token: &str) -> Result<Actor> {
        self.deps.tokens.verify(access_token, self.deps.clock.now())
    }

    /// Makes sure an admin with `email` exists (creating it with
    /// `password`); an existing admin is left as it is.
    ///
    /// # Errors
    /// [`Error::Conflict`] when the e-mail belongs to a non-admin; store and
    /// hasher errors.
    pub async fn ensure_admin(&self, email: &Email, password: &str) -> Result<User> {
        self.ensure_account(email, password, "Administrator", Role::Admin).await.map(|(user, _)| user)
    }

    /// Makes sure an account with `email` and `role` exists (creating it);
    /// an existing one is left as it is. Answers the account and whether
    /// this call created it. For the bootstrap admin and seeded demo
    /// accounts, which may take any role.
    ///
    /// # Errors
    /// [`Error::Conflict`] when the e-mail belongs to an account of another
    /// role; validation, store and hasher errors.
    pub async fn ensure_account(&self, email: &Email, password: &str, name: &str, role: Role) -> Result<(User, bool)> {
        let of_role = |user: User| {
            if user.role == role {
                Ok((user, false))
            } else {
                let message = format!("{} exists and is not a {}", email.as_str(), role.as_str());
                Err(Error::conflict(ConflictReason::Duplicate, message))
            }
        };
        if let Some(user) = self.deps.users.find_by_email(email).await? {
            return of_role(user);
        }
        match self.create(email.clone(), password, name, role).await {
            Ok(user) => Ok((user, true)),
            // Another replica created it first: take theirs if it has the role.
            Err(Error::Conflict { reason: ConflictReason::Duplicate, .. }) => {
                let user = self.deps.users.find_by_email(email).await?.ok_or_else(|| Error::not_found("user"))?;
                of_role(user)
            }
            Err(e) => Err(e),
        }
    }

    async fn create(&self, email: Email, password: &str, name: &str, role: Role) -> Result<User> {
        let name = check_registration(name, password)?;
        let now = self.deps.clock.now();
        let user = User {
            id: UserId::new(),
            email,
            name: name.to_owned(),
            role,
            password_hash: self.deps.passwords.hash(password).await?,
            created_at: now,
        };
        let event = Event::new(&UserRegistered { user_id: user.id, role: role.as_str().into() }, now);
        self.deps.users.insert(&user, &[event]).await?;
        Ok(user)
    }

    /// A new session for `user`.
    async fn start(&self, user: User) -> Result<Session> {
        let (refresh_token, record) = self.refresh_token(SessionId::new(), user.id)?;
        self.deps.sessions.insert(&record).await?;
        let access = self.access_token(&user)?;
        Ok(Session { user, access, refresh_token })
    }

    fn access_token(&self, user: &User) -> Result<AccessToken> {
        let now = self.deps.clock.now();
        let expires_at = now + chrono_duration(self.config.access_ttl)?;
        self.deps.tokens.issue(Actor::new(user.id, user.role), now, expires_at)
    }

    /// A fresh refresh token of `session` and its stored record.
    fn refresh_token(&self, session: SessionId, user_id: UserId) -> Result<(String, RefreshToken)> {
        let now = self.deps.clock.now();
        let secret = URL_SAFE_NO_PAD.encode(self.deps.entropy.bytes32());
        let token = format!("{}.{}.{secret}", session.as_uuid().simple(), user_id.as_uuid().simple());
        let expires_at = now + chrono_duration(self.config.refresh_ttl)?;
        let record = RefreshToken { hash: TokenHash::of(&token), session, user_id, issued_at: now, expires_at };
        Ok((token, record))
    }
}

fn chrono_duration(d: Duration) -> Result<chrono::Duration> {
    chrono::Duration::from_std(d).map_err(|e| Error::internal("token lifetime", e))
}

/// The session and user named by a refresh token, if it has our shape.
fn parse_refresh_token(token: &str) -> Option<(SessionId, UserId)> {
    let mut parts = token.splitn(3, '.');
    let session = Uuid::try_parse(parts.next()?).ok()?;
    let user = Uuid::try_parse(parts.next()?).ok()?;
    parts.next().filter(|secret| !secret.is_empty())?;
    Some((SessionId::from_uuid(session), UserId::from_uuid(user)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_tokens_parse_only_in_our_shape() {
        let (s, u) = (SessionId::new(), UserId::new());
        let token = format!("{}.{}.c2VjcmV0", s.as_uuid().simple(), u.as_uuid().simple());
        assert_eq!(parse_refresh_token(&token), Some((s, u)));
        assert_eq!(parse_refresh_token(&format!("{}.{}.", s.as_uuid().simple(), u.as_uuid().simple())), None);
        assert_eq!(parse_refresh_token("not-a-token"), None);
        assert_eq!(parse_refresh_token(&format!("{}.x.secret", s.as_uuid().simple())), None);
    }
}
