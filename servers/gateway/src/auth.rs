//! Edge authentication: the [`TokenVerifier`] port the composition root
//! supplies (HS256 JWTs from the core's token issuer), a bounded cache of
//! verified tokens that respects their expiry, and where a token is found
//! (header, query or WebSocket subprotocol).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use bazaar_core::auth::{Role, bearer};
use bazaar_core::ids::UserId;
use http::HeaderMap;
use parking_lot::Mutex;

/// Who a verified token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    /// The `sub` claim.
    pub user_id: UserId,
    /// The `role` claim.
    pub role: Role,
    /// The `exp` claim.
    pub expires_at: SystemTime,
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenRejection {
    /// No token where one was required.
    #[error("a bearer token is required")]
    Missing,
    /// Malformed, badly signed, or with claims that do not parse.
    #[error("the bearer token is invalid")]
    Invalid,
    /// Well formed and signed, but past its `exp`.
    #[error("the bearer token has expired")]
    Expired,
}

/// Verifies a bearer token. Supplied by the composition root (the core's
/// token issuer checks the HS256 signature shared by every replica), so the
/// gateway depends on no JWT library. Verification is CPU work only, hence
/// a plain `fn`.
///
/// Contract: MUST return [`TokenRejection::Expired`] for a token whose
/// `exp` has passed and [`TokenRejection::Invalid`] for anything else that
/// does not verify; MUST NOT return `Missing`.
///
/// # Example
/// ```
/// use std::time::{Duration, SystemTime};
/// use bazaar_core::auth::Role;
/// use bazaar_core::ids::UserId;
/// use bazaar_gateway::auth::{TokenRejection, TokenVerifier, VerifiedToken};
///
/// /// Accepts exactly one opaque token (a test double).
/// #[derive(Debug)]
/// struct OneToken(UserId);
///
/// impl TokenVerifier for OneToken {
///     fn verify(&self, token: &str) -> Result<VerifiedToken, TokenRejection> {
///         if token != "let-me-in" {
///             return Err(TokenRejection::Invalid);
///         }
///         let expires_at = SystemTime::now() + Duration::from_secs(60);
///         Ok(VerifiedToken { user_id: self.0, role: Role::Customer, expires_at })
///     }
/// }
///
/// let verifier = OneToken(UserId::new());
/// assert_eq!(verifier.verify("guess").unwrap_err(), TokenRejection::Invalid);
/// assert_eq!(verifier.verify("let-me-in").unwrap().role, Role::Customer);
/// ```
pub trait TokenVerifier: Send + Sync + fmt::Debug {
    /// Verifies `token` (without the `Bearer ` prefix).
    ///
    /// # Errors
    /// [`TokenRejection::Invalid`] or [`TokenRejection::Expired`].
    fn verify(&self, token: &str) -> Result<VerifiedToken, TokenRejection>;
}

/// A [`TokenVerifier`] with a bounded cache of successful verifications.
/// A cached token is re-checked against its `exp` on every hit, so the
/// cache never lets an expired token through. Rejections are not cached:
/// they are cheap to recompute and caching them would let garbage tokens
/// push good ones out.
#[derive(Debug)]
pub struct CachedVerifier {
    inner: Arc<dyn TokenVerifier>,
    capacity: usize,
    cache: Mutex<HashMap<Box<str>, VerifiedToken>>,
}

impl CachedVerifier {
    /// Caches up to `capacity` tokens (0 disables caching).
    pub fn new(inner: Arc<dyn TokenVerifier>, capacity: usize) -> Self {
        Self { inner, capacity, cache: Mutex::new(HashMap::new()) }
    }

    /// Verifies through the cache, at time `now`.
    ///
    /// # Errors
    /// As [`TokenVerifier::verify`].
    pub fn verify_at(&self, token: &str, now: SystemTime) -> Result<VerifiedToken, TokenRejection> {
        if let Some(hit) = self.cache.lock().get(token)
            && hit.expires_at > now
        {
            return Ok(hit.clone());
        }
        let verified = match self.inner.verify(token) {
            Ok(v) if v.expires_at <= now => Err(TokenRejection::Expired),
            other => other,
        };
        let mut cache = self.cache.lock();
        match &verified {
            Ok(v) if self.capacity > 0 => {
                if cache.len() >= self.capacity {
                    cache.retain(|_, v| v.expires_at > now);
                    if cache.len() >= self.capacity {
                        // Still full of live tokens: start over rather than
                        // track recency on every hit.
                        cache.clear();
                    }
                }
                cache.insert(token.into(), v.clone());
            }
            Ok(_) => {}
            Err(_) => {
                cache.remove(token);
            }
        }
        verified
    }

    /// Tokens currently cached.
    pub fn cached(&self) -> usize {
        self.cache.lock().len()
    }
}

/// The bearer token of a request, from `Authorization: Bearer …`, else (for
/// WebSocket handshakes, which browsers cannot give headers) the
/// `access_token` query parameter or `Sec-WebSocket-Protocol` (a
/// `bearer.<token>` entry or the pair `bearer, <token>`), read by the
/// core's rules the API server uses too ([`bazaar_core::auth::bearer`]).
pub fn find_token(headers: &HeaderMap, query: Option<&str>, websocket: bool) -> Option<String> {
    if let Some(value) = headers.get(http::header::AUTHORIZATION) {
        return value.to_str().ok().and_then(bearer::from_authorization).map(str::to_owned);
    }
    if !websocket {
        return None;
    }
    if let Some(token) =
        query.into_iter().flat_map(|q| q.split('&')).find_map(|pair| pair.strip_prefix("access_token="))
    {
        return Some(percent_decode(token)).filter(|t| !t.is_empty());
    }
    let offered = headers
        .get_all(http::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','));
    bearer::from_subprotocols(offered).map(|(token, _)| token.to_owned())
}

/// Decodes `%XX` escapes (JWTs are base64url, so this rarely matters).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    use super::*;

    #[derive(Debug)]
    struct Counting {
        calls: AtomicU32,
        expires_at: SystemTime,
    }

    impl TokenVerifier for Counting {
        fn verify(&self, token: &str) -> Result<VerifiedToken, TokenRejection> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            match token {
                "good" => Ok(VerifiedToken { user_id: UserId::new(), role: Role::Vendor, expires_at: self.expires_at }),
                _ => Err(TokenRejection::Invalid),
            }
        }
    }

    #[test]
    fn the_cache_answers_until_exp_then_refuses() {
        let start = SystemTime::now();
        let inner = Arc::new(Counting { calls: AtomicU32::new(0), expires_at: start + Duration::from_secs(60) });
        let cached = CachedVerifier::new(inner.clone(), 10);
        let first = cached.verify_at("good", start).unwrap();
        assert_eq!(cached.verify_at("good", start + Duration::from_secs(30)).unwrap(), first);
        assert_eq!(inner.calls.load(Ordering::SeqCst), 1, "the second check was a cache hit");
        assert_eq!(cached.verify_at("good", start + Duration::from_secs(60)), Err(TokenRejection::Expired));
        assert_eq!(cached.cached(), 0, "the expired token left the cache");
        assert_eq!(cached.verify_at("bad", start), Err(TokenRejection::Invalid));
        assert_eq!(cached.cached(), 0, "rejections are not cached");
    }

    #[test]
    fn the_cache_stays_within_its_capacity() {
        #[derive(Debug)]
        struct Any;
        impl TokenVerifier for Any {
            fn verify(&self, _: &str) -> Result<VerifiedToken, TokenRejection> {
                let expires_at = SystemTime::now() + Duration::from_secs(60);
                Ok(VerifiedToken { user_id: UserId::new(), role: Role::Customer, expires_at })
            }
        }
        let cached = CachedVerifier::new(Arc::new(Any), 3);
        for i in 0..10 {
            cached.verify_at(&format!("t{i}"), SystemTime::now()).unwrap();
            assert!(cached.cached() <= 3);
        }
    }

    #[test]
    fn tokens_are_found_in_header_query_and_subprotocol() {
        let mut h = HeaderMap::new();
        h.insert("authorization", "Bearer abc.def".parse().unwrap());
        assert_eq!(find_token(&h, None, false).as_deref(), Some("abc.def"));
        h.insert("authorization", "Basic xyz".parse().unwrap());
        assert_eq!(find_token(&h, None, true), None, "another scheme is no bearer token");
        let empty = HeaderMap::new();
        assert_eq!(find_token(&empty, Some("a=1&access_token=q.r%2Es"), true).as_deref(), Some("q.r.s"));
        assert_eq!(find_token(&empty, Some("access_token=q"), false), None, "query tokens only for WebSockets");
        let mut ws = HeaderMap::new();
        ws.insert("sec-websocket-protocol", "notifications, bearer.tok.en".parse().unwrap());
        assert_eq!(find_token(&ws, None, true).as_deref(), Some("tok.en"));
        // The pair form the API server accepts passes the edge too.
        ws.insert("sec-websocket-protocol", "bearer, tok.en2".parse().unwrap());
        assert_eq!(find_token(&ws, None, true).as_deref(), Some("tok.en2"));
    }
}
