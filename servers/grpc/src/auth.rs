//! Bearer tokens from request metadata: the same HS256 access tokens (and
//! so the same users and roles) as the HTTP API.
//!
//! A call sends `authorization: Bearer <access token>`; the scheme is
//! matched case-insensitively (RFC 6750). A missing header is
//! `UNAUTHENTICATED` on calls that need a caller; on calls open to everyone
//! it means "anonymous", while a header that is present but bad is still
//! `UNAUTHENTICATED` (a client that meant to sign in should hear that it
//! failed, not silently get the anonymous view).

use bazaar_core::Error;
use bazaar_core::auth::Actor;
use bazaar_core::marketplace::Marketplace;
use tonic::Request;

/// The metadata key carrying the token.
pub const AUTHORIZATION: &str = "authorization";

/// The caller, who must have sent a valid token.
///
/// # Errors
/// [`Error::Unauthenticated`] when the header is missing, not a bearer
/// token, forged or expired.
pub fn require<T>(market: &Marketplace, request: &Request<T>) -> Result<Actor, Error> {
    optional(market, request)?.ok_or_else(|| Error::Unauthenticated("missing bearer token".into()))
}

/// The caller if a token was sent, `None` for an anonymous call.
///
/// # Errors
/// [`Error::Unauthenticated`] when a header was sent but is not a valid
/// bearer token.
pub fn optional<T>(market: &Marketplace, request: &Request<T>) -> Result<Option<Actor>, Error> {
    let Some(value) = request.metadata().get(AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| malformed())?;
    let (scheme, token) = value.split_once(' ').ok_or_else(malformed)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(malformed());
    }
    Ok(Some(market.auth.verify(token.trim())?))
}

fn malformed() -> Error {
    Error::Unauthenticated("authorization must be `Bearer <access token>`".into())
}
