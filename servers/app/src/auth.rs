//! Credentials shared by every transport: argon2id password hashes and
//! HS256 access tokens (JWT) carrying the user's id and role.
//!
//! Access tokens are short-lived ([`ACCESS_TOKEN_TTL`]) and checked without
//! a store lookup; refresh tokens are opaque random strings kept (hashed) by
//! [`bazaar_core::auth::RefreshTokenStore`], which rotates them and detects
//! reuse. HTTP and gRPC accept the same access tokens.

use std::fmt;
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use bazaar_core::auth::{Actor, Role};
use bazaar_core::clock::Timestamp;
use bazaar_core::entropy::Entropy;
use bazaar_core::ids::UserId;
use bazaar_core::{Error, Result};
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::keys::Secret;

/// How long an access token is accepted.
pub const ACCESS_TOKEN_TTL: Duration = Duration::from_secs(15 * 60);
/// How long a refresh token is accepted.
pub const REFRESH_TOKEN_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// Hashes and checks passwords (argon2id, OWASP's minimum parameters:
/// 19 MiB, 2 iterations, 1 lane).
#[derive(Clone)]
pub struct Passwords {
    argon: Argon2<'static>,
}

impl fmt::Debug for Passwords {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passwords(argon2id)")
    }
}

impl Default for Passwords {
    fn default() -> Self {
        let params = Params::new(19 * 1024, 2, 1, None).expect("valid argon2 parameters");
        Self { argon: Argon2::new(Algorithm::Argon2id, Version::V0x13, params) }
    }
}

impl Passwords {
    /// Cheap parameters for tests (8 KiB, 1 iteration): never in production.
    pub fn fast_for_tests() -> Self {
        let params = Params::new(8, 1, 1, None).expect("valid argon2 parameters");
        Self { argon: Argon2::new(Algorithm::Argon2id, Version::V0x13, params) }
    }

    /// The PHC string of `password` with a fresh salt.
    ///
    /// # Errors
    /// [`Error::Internal`] if argon2 refuses its input (it does not for any
    /// UTF-8 password the API accepts).
    pub fn hash(&self, password: &str, entropy: &dyn Entropy) -> Result<String> {
        let mut salt = [0u8; 16];
        entropy.fill(&mut salt);
        let salt = SaltString::encode_b64(&salt).map_err(|e| Error::internal("password salt", e.to_string()))?;
        self.argon
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| Error::internal("password hash", e.to_string()))
    }

    /// Whether `password` matches the stored PHC string (constant time in
    /// the password; a malformed stored hash never matches).
    pub fn verify(&self, password: &str, phc: &str) -> bool {
        PasswordHash::new(phc).is_ok_and(|h| self.argon.verify_password(password.as_bytes(), &h).is_ok())
    }
}

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user's id.
    pub sub: UserId,
    /// Their role when the token was issued.
    pub role: Role,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Expires at (seconds since the epoch).
    pub exp: i64,
}

impl Claims {
    /// Who the token speaks for.
    pub fn actor(&self) -> Actor {
        Actor::new(self.sub, self.role)
    }
}

/// An issued access token.
#[derive(Clone)]
pub struct AccessToken {
    /// The compact JWT.
    pub token: String,
    /// When it stops being accepted.
    pub expires_at: Timestamp,
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken").field("expires_at", &self.expires_at).finish_non_exhaustive()
    }
}

/// Issues and verifies access tokens with one HMAC key.
#[derive(Clone)]
pub struct AccessTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    ttl: chrono::Duration,
}

impl fmt::Debug for AccessTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessTokens").field("ttl", &self.ttl).finish_non_exhaustive()
    }
}

impl AccessTokens {
    /// Tokens signed with `secret`, valid for [`ACCESS_TOKEN_TTL`].
    pub fn new(secret: &Secret) -> Self {
        Self::with_ttl(secret, ACCESS_TOKEN_TTL)
    }

    /// Tokens valid for `ttl`.
    pub fn with_ttl(secret: &Secret, ttl: Duration) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret.expose()),
            decoding: DecodingKey::from_secret(secret.expose()),
            ttl: chrono::Duration::from_std(ttl).expect("ttl in range"),
        }
    }

    /// A token for `user_id` in `role`, issued at `now`.
    pub fn issue(&self, user_id: UserId, role: Role, now: Timestamp) -> AccessToken {
        let expires_at = now + self.ttl;
        let claims = Claims { sub: user_id, role, iat: now.timestamp(), exp: expires_at.timestamp() };
        let token = jsonwebtoken::encode(&Header::default(), &claims, &self.encoding)
            .expect("HS256 over serializable claims cannot fail");
        AccessToken { token, expires_at }
    }

    /// The claims of `token` if its signature is good and it has not expired at `now`.
    ///
    /// # Errors
    /// [`Error::Unauthenticated`] for a malformed, forged or expired token.
    pub fn verify(&self, token: &str, now: Timestamp) -> Result<Claims> {
        let mut validation = Validation::new(jsonwebtoken::Algorithm::HS256);
        // Expiry is checked below against the injected clock, not the OS clock.
        validation.validate_exp = false;
        validation.required_spec_claims.clear();
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|_| Error::Unauthenticated("invalid access token".into()))?;
        if now.timestamp() >= data.claims.exp {
            return Err(Error::Unauthenticated("access token expired".into()));
        }
        Ok(data.claims)
    }
}

/// A fresh opaque refresh token: 32 random bytes, base64url.
pub fn new_refresh_token(entropy: &dyn Entropy) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(entropy.bytes32())
}

#[cfg(test)]
mod tests {
    use bazaar_core::entropy::SeededEntropy;

    use super::*;

    fn t(secs: i64) -> Timestamp {
        chrono::DateTime::from_timestamp(secs, 0).unwrap()
    }

    #[test]
    fn passwords_verify_only_themselves() {
        let p = Passwords::fast_for_tests();
        let e = SeededEntropy::new(1);
        let h = p.hash("correct horse", &e).unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(p.verify("correct horse", &h));
        assert!(!p.verify("correct hors", &h));
        assert!(!p.verify("correct horse", "not a phc string"));
        assert_ne!(h, p.hash("correct horse", &e).unwrap(), "a fresh salt each time");
    }

    #[test]
    fn tokens_carry_the_actor_until_they_expire() {
        let tokens = AccessTokens::new(&Secret::new([7; 32]));
        let user = UserId::new();
        let issued = tokens.issue(user, Role::Vendor, t(1_000));
        assert_eq!(issued.expires_at, t(1_000 + 900));
        let claims = tokens.verify(&issued.token, t(1_899)).unwrap();
        assert_eq!(claims.actor(), Actor::new(user, Role::Vendor));
        assert_eq!(tokens.verify(&issued.token, t(1_900)).unwrap_err().code(), "unauthenticated");
    }

    #[test]
    fn forged_and_garbled_tokens_are_refused() {
        let ours = AccessTokens::new(&Secret::new([7; 32]));
        let theirs = AccessTokens::new(&Secret::new([8; 32]));
        let forged = theirs.issue(UserId::new(), Role::Admin, t(0));
        assert_eq!(ours.verify(&forged.token, t(1)).unwrap_err().code(), "unauthenticated");
        assert_eq!(ours.verify("a.b.c", t(1)).unwrap_err().code(), "unauthenticated");
    }

    #[test]
    fn refresh_tokens_are_long_and_distinct() {
        let e = SeededEntropy::new(3);
        let (a, b) = (new_refresh_token(&e), new_refresh_token(&e));
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
    }
}
