//! HS256 JWT access tokens.

use std::fmt;

use bazaar_core::auth::{AccessToken, Actor, Role, TokenIssuer};
use bazaar_core::clock::Timestamp;
use bazaar_core::ids::UserId;
use bazaar_core::{Error, Result};
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

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
    /// Whether the token has expired at `now_secs` (seconds since the
    /// epoch): from its `exp` second on.
    pub fn expired_at(&self, now_secs: i64) -> bool {
        now_secs >= self.exp
    }
}

/// Issues and verifies HS256 JWTs with one 32-byte secret.
#[derive(Clone)]
pub struct JwtTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl fmt::Debug for JwtTokens {
    // The secret never reaches a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JwtTokens(HS256)")
    }
}

impl JwtTokens {
    /// Tokens signed with `secret`.
    pub fn new(secret: [u8; 32]) -> Self {
        Self { encoding: EncodingKey::from_secret(&secret), decoding: DecodingKey::from_secret(&secret) }
    }

    /// The claims of a token signed with this secret, expired or not: for a
    /// verifier that must tell an expired token from a forged one, or cache
    /// a verification until `exp` (the API gateway's edge check).
    ///
    /// # Errors
    /// [`Error::Unauthenticated`] when the token is malformed or signed
    /// with another key.
    pub fn claims(&self, token: &str) -> Result<Claims> {
        let mut validation = Validation::new(jsonwebtoken::Algorithm::HS256);
        // Expiry is the caller's to judge, against its own clock.
        validation.validate_exp = false;
        validation.required_spec_claims.clear();
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map(|data| data.claims)
            .map_err(|_| Error::Unauthenticated("invalid access token".into()))
    }
}

impl TokenIssuer for JwtTokens {
    fn issue(&self, actor: Actor, now: Timestamp, expires_at: Timestamp) -> Result<AccessToken> {
        let claims = Claims { sub: actor.user_id, role: actor.role, iat: now.timestamp(), exp: expires_at.timestamp() };
        let token = jsonwebtoken::encode(&Header::default(), &claims, &self.encoding)
            .map_err(|e| Error::internal("signing an access token", e))?;
        Ok(AccessToken { token, expires_at })
    }

    fn verify(&self, token: &str, now: Timestamp) -> Result<Actor> {
        // Expiry is checked against the injected clock, not the OS clock.
        let claims = self.claims(token)?;
        if claims.expired_at(now.timestamp()) {
            return Err(Error::Unauthenticated("access token expired".into()));
        }
        Ok(Actor::new(claims.sub, claims.role))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> Timestamp {
        chrono::DateTime::from_timestamp(secs, 0).unwrap()
    }

    #[test]
    fn tokens_carry_the_actor_until_they_expire() {
        let tokens = JwtTokens::new([7; 32]);
        let actor = Actor::new(UserId::new(), Role::Vendor);
        let issued = tokens.issue(actor, t(1_000), t(1_900)).unwrap();
        assert_eq!(issued.expires_at, t(1_900));
        assert_eq!(tokens.verify(&issued.token, t(1_899)).unwrap(), actor);
        assert_eq!(tokens.verify(&issued.token, t(1_900)).unwrap_err().code(), "unauthenticated");
    }

    #[test]
    fn forged_and_garbled_tokens_are_refused() {
        let ours = JwtTokens::new([7; 32]);
        let theirs = JwtTokens::new([8; 32]);
        let forged = theirs.issue(Actor::new(UserId::new(), Role::Admin), t(0), t(900)).unwrap();
        assert_eq!(ours.verify(&forged.token, t(1)).unwrap_err().code(), "unauthenticated");
        assert_eq!(ours.verify("a.b.c", t(1)).unwrap_err().code(), "unauthenticated");
        assert_eq!(ours.claims(&forged.token).unwrap_err().code(), "unauthenticated");
    }

    #[test]
    fn claims_are_read_past_expiry_but_never_from_a_forgery() {
        let tokens = JwtTokens::new([7; 32]);
        let actor = Actor::new(UserId::new(), Role::Customer);
        let issued = tokens.issue(actor, t(1_000), t(1_900)).unwrap();
        let claims = tokens.claims(&issued.token).unwrap();
        assert_eq!((claims.sub, claims.role, claims.exp), (actor.user_id, Role::Customer, 1_900));
        let mut tampered = issued.token.clone();
        tampered.pop();
        assert!(tokens.claims(&tampered).is_err());
    }
}
