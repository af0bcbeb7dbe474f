//! Webhook signatures, Stripe's scheme: a `t=<unix>,v1=<hex>[,v1=<hex>…]`
//! header whose `v1` values are HMAC-SHA256 over `"{t}.{raw_body}"`.
//!
//! Several `v1` values are accepted (the sender signs with every active
//! secret while rotating) and several secrets are tried (the receiver
//! accepts the old and the new one while rotating). Comparison is constant
//! time. A timestamp more than the tolerance away from now, in either
//! direction, is refused so a captured request cannot be replayed later.

use chrono::Duration;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::clock::Timestamp;
use crate::error::{Error, Result};

type HmacSha256 = Hmac<Sha256>;

/// How far a signature's timestamp may be from now: 300 s.
pub const DEFAULT_TOLERANCE: Duration = Duration::seconds(300);

/// The `t=…,v1=…` header for `body` signed with `secret` at Unix time `t`.
///
/// # Example
/// ```
/// use bazaar_core::payments::webhook::{sign, verify, DEFAULT_TOLERANCE};
/// let header = sign(b"whsec_1", 1_700_000_000, br#"{"id":"evt_1"}"#);
/// let now = chrono::DateTime::from_timestamp(1_700_000_010, 0).unwrap();
/// assert!(verify(&header, br#"{"id":"evt_1"}"#, &[b"whsec_1".to_vec()], now, DEFAULT_TOLERANCE).is_ok());
/// assert!(verify(&header, br#"{"id":"evt_2"}"#, &[b"whsec_1".to_vec()], now, DEFAULT_TOLERANCE).is_err());
/// ```
pub fn sign(secret: &[u8], t: i64, body: &[u8]) -> String {
    sign_all(&[secret], t, body)
}

/// The `t=…,v1=…,v1=…` header for `body` signed at Unix time `t` with each
/// of `secrets` in turn: what a sender rotating its secret sends, so a
/// receiver holding either the old or the new one verifies it.
///
/// # Example
/// ```
/// use bazaar_core::payments::webhook::{sign_all, verify, DEFAULT_TOLERANCE};
/// let header = sign_all(&[b"new", b"old"], 1_700_000_000, b"{}");
/// let now = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
/// assert!(verify(&header, b"{}", &[b"old".to_vec()], now, DEFAULT_TOLERANCE).is_ok());
/// assert!(verify(&header, b"{}", &[b"new".to_vec()], now, DEFAULT_TOLERANCE).is_ok());
/// ```
pub fn sign_all(secrets: &[&[u8]], t: i64, body: &[u8]) -> String {
    let mut header = format!("t={t}");
    for secret in secrets {
        header.push_str(",v1=");
        header.push_str(&hex::encode(mac(secret, t, body).finalize().into_bytes()));
    }
    header
}

fn mac(secret: &[u8], t: i64, body: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

fn rejected(why: &str) -> Error {
    Error::Unauthenticated(format!("webhook signature rejected: {why}"))
}

/// Checks `header` against `body` with any of `secrets`, at `now`.
///
/// # Errors
/// [`Error::Unauthenticated`] when the header is malformed (no single
/// integer `t`, no `v1`), the timestamp is outside `tolerance` of `now`, or
/// no `v1` matches any secret.
pub fn verify(header: &str, body: &[u8], secrets: &[Vec<u8>], now: Timestamp, tolerance: Duration) -> Result<()> {
    let mut t: Option<i64> = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        let (name, value) = part.trim().split_once('=').ok_or_else(|| rejected("malformed header"))?;
        match name {
            "t" => {
                if t.is_some() {
                    return Err(rejected("more than one timestamp"));
                }
                t = Some(value.parse().map_err(|_| rejected("timestamp is not an integer"))?);
            }
            // A v1 that is not hex can never match; skipping it lets a
            // valid sibling still verify.
            "v1" => signatures.extend(hex::decode(value).ok()),
            // Other schemes (v0 test signatures, future versions) are ignored.
            _ => {}
        }
    }
    let t = t.ok_or_else(|| rejected("no timestamp"))?;
    if signatures.is_empty() {
        return Err(rejected("no v1 signature"));
    }
    let age = now.timestamp().checked_sub(t).ok_or_else(|| rejected("timestamp out of range"))?;
    if age.checked_abs().is_none_or(|a| a > tolerance.num_seconds()) {
        return Err(rejected("timestamp outside the tolerance"));
    }
    let matched = secrets.iter().any(|secret| {
        let expected = mac(secret, t, body);
        signatures.iter().any(|sig| expected.clone().verify_slice(sig).is_ok())
    });
    if matched { Ok(()) } else { Err(rejected("no signature matches")) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const T: i64 = 1_700_000_000;

    fn at(secs: i64) -> Timestamp {
        chrono::DateTime::from_timestamp(secs, 0).unwrap()
    }

    fn secrets(s: &[&[u8]]) -> Vec<Vec<u8>> {
        s.iter().map(|s| s.to_vec()).collect()
    }

    #[test]
    fn several_signatures_and_several_secrets_rotate() {
        let body = b"{}";
        let old = sign(b"old", T, body);
        let new_sig = sign(b"new", T, body);
        let both = format!("{},{}", new_sig, old.split_once(',').unwrap().1);
        assert!(verify(&both, body, &secrets(&[b"old"]), at(T), DEFAULT_TOLERANCE).is_ok());
        assert!(verify(&both, body, &secrets(&[b"new"]), at(T), DEFAULT_TOLERANCE).is_ok());
        assert!(verify(&old, body, &secrets(&[b"new", b"old"]), at(T), DEFAULT_TOLERANCE).is_ok());
        assert!(verify(&old, body, &secrets(&[b"other"]), at(T), DEFAULT_TOLERANCE).is_err());
    }

    #[test]
    fn malformed_headers_are_refused() {
        let body = b"{}";
        let good = sign(b"s", T, body);
        let sig = good.split_once(",v1=").unwrap().1;
        for header in [
            String::new(),
            format!("v1={sig}"),
            format!("t={T}"),
            format!("t=abc,v1={sig}"),
            format!("t={T},t={T},v1={sig}"),
            format!("t={T},v1=zz"),
            "garbage".to_string(),
        ] {
            let err = verify(&header, body, &secrets(&[b"s"]), at(T), DEFAULT_TOLERANCE).unwrap_err();
            assert_eq!(err.code(), "unauthenticated", "{header}");
        }
        // A non-hex v1 next to a good one is skipped, not fatal; v0 is ignored.
        let mixed = format!("t={T},v0=abc,v1=nothex,v1={sig}");
        assert!(verify(&mixed, body, &secrets(&[b"s"]), at(T), DEFAULT_TOLERANCE).is_ok());
    }

    #[test]
    fn extreme_timestamps_do_not_overflow() {
        let header = sign(b"s", i64::MIN, b"x");
        assert!(verify(&header, b"x", &secrets(&[b"s"]), at(T), DEFAULT_TOLERANCE).is_err());
    }

    proptest! {
        #[test]
        fn valid_signatures_pass_within_tolerance(
            body in proptest::collection::vec(any::<u8>(), 0..200),
            secret in proptest::collection::vec(any::<u8>(), 1..40),
            skew in -300i64..=300,
        ) {
            let header = sign(&secret, T, &body);
            prop_assert!(verify(&header, &body, &[secret], at(T + skew), DEFAULT_TOLERANCE).is_ok());
        }

        #[test]
        fn outside_tolerance_fails(body in proptest::collection::vec(any::<u8>(), 0..50), skew in 301i64..100_000, late in any::<bool>()) {
            let header = sign(b"s", T, &body);
            let now = if late { T + skew } else { T - skew };
            prop_assert!(verify(&header, &body, &secrets(&[b"s"]), at(now), DEFAULT_TOLERANCE).is_err());
        }

        #[test]
        fn tampered_body_fails(body in proptest::collection::vec(any::<u8>(), 1..200), idx in any::<prop::sample::Index>(), flip in 1u8..=255) {
            let header = sign(b"s", T, &body);
            let mut tampered = body.clone();
            tampered[idx.index(body.len())] ^= flip;
            prop_assert!(verify(&header, &tampered, &secrets(&[b"s"]), at(T), DEFAULT_TOLERANCE).is_err());
        }

        #[test]
        fn tampered_timestamp_fails(body in proptest::collection::vec(any::<u8>(), 0..50), delta in -300i64..=300) {
            prop_assume!(delta != 0);
            let header = sign(b"s", T, &body);
            let forged = header.replacen(&format!("t={T}"), &format!("t={}", T + delta), 1);
            prop_assert!(verify(&forged, &body, &secrets(&[b"s"]), at(T), DEFAULT_TOLERANCE).is_err());
        }

        #[test]
        fn tampered_signature_fails(body in proptest::collection::vec(any::<u8>(), 0..50), idx in 0usize..64, repl in proptest::sample::select(b"0123456789abcdef".to_vec())) {
            let header = sign(b"s", T, &body);
            let (prefix, sig) = header.split_once(",v1=").unwrap();
            let mut sig = sig.as_bytes().to_vec();
            prop_assume!(sig[idx] != repl);
            sig[idx] = repl;
            let forged = format!("{prefix},v1={}", String::from_utf8(sig).unwrap());
            prop_assert!(verify(&forged, &body, &secrets(&[b"s"]), at(T), DEFAULT_TOLERANCE).is_err());
        }
    }
}
