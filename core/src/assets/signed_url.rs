//! Short-lived signed download URLs (HMAC-SHA256), verified without state.
//!
//! Token: `{payload}.{mac}`, both base64url without padding. The payload is
//! 40 bytes: license id (16) ‖ asset id (16) ‖ expiry as big-endian Unix
//! seconds (8). The MAC is HMAC-SHA256 over a domain tag and the payload, and
//! is compared in constant time. The MAC is checked before the expiry, so a
//! tampered token is `url_invalid` even if it is also past its time.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::DateTime;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

use crate::clock::Timestamp;
use crate::entropy::Entropy;
use crate::error::{Denial, Error, Result};
use crate::ids::{AssetId, LicenseId};

type HmacSha256 = Hmac<Sha256>;

/// Separates these MACs from any other use of the same secret.
const DOMAIN: &[u8] = b"bazaar/download/v1\n";
const PAYLOAD_LEN: usize = 40;

/// The shortest secret accepted, in bytes.
pub const MIN_SECRET_LEN: usize = 32;

/// A signed URL handed to the license holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedDownload {
    /// The opaque token.
    pub token: String,
    /// `/v1/downloads/{token}`, relative to the API's base URL.
    pub path: String,
    /// When the URL stops working (whole seconds).
    pub expires_at: Timestamp,
}

/// Signs and verifies download tokens with a shared secret.
#[derive(Clone)]
pub struct UrlSigner {
    secret: Vec<u8>,
}

impl fmt::Debug for UrlSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UrlSigner").finish_non_exhaustive()
    }
}

impl UrlSigner {
    /// A signer with `secret`.
    ///
    /// # Errors
    /// [`Error::Validation`] on `secret` when shorter than [`MIN_SECRET_LEN`].
    pub fn new(secret: &[u8]) -> Result<Self> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(Error::invalid("secret", format!("must be at least {MIN_SECRET_LEN} bytes")));
        }
        Ok(Self { secret: secret.to_vec() })
    }

    /// A signer with a fresh 32-byte secret (URLs die with the process).
    pub fn generate(entropy: &dyn Entropy) -> Self {
        Self { secret: entropy.bytes32().to_vec() }
    }

    fn mac(&self, payload: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.secret).expect("HMAC takes any key length");
        mac.update(DOMAIN);
        mac.update(payload);
        mac
    }

    /// A URL granting `asset_id` under `license_id` until `expires_at`
    /// (truncated to whole seconds).
    pub fn sign(&self, license_id: LicenseId, asset_id: AssetId, expires_at: Timestamp) -> SignedDownload {
        let exp = expires_at.timestamp();
        let mut payload = [0u8; PAYLOAD_LEN];
        payload[..16].copy_from_slice(license_id.as_uuid().as_bytes());
        payload[16..32].copy_from_slice(asset_id.as_uuid().as_bytes());
        payload[32..].copy_from_slice(&exp.to_be_bytes());
        let tag = self.mac(&payload).finalize().into_bytes();
        let token = format!("{}.{}", URL_SAFE_NO_PAD.encode(payload), URL_SAFE_NO_PAD.encode(tag));
        SignedDownload {
            path: format!("/v1/downloads/{token}"),
            token,
            expires_at: DateTime::from_timestamp(exp, 0).unwrap_or(expires_at),
        }
    }

    /// Checks a token at `now`; returns what it grants.
    ///
    /// # Errors
    /// `UrlInvalid` when malformed or the MAC does not match; `UrlExpired`
    /// from its expiry second on.
    pub fn verify(&self, token: &str, now: Timestamp) -> Result<(LicenseId, AssetId), Denial> {
        let (payload_b64, tag_b64) = token.split_once('.').ok_or(Denial::UrlInvalid)?;
        let payload = URL_SAFE_NO_PAD.decode(payload_b64).map_err(|_| Denial::UrlInvalid)?;
        let tag = URL_SAFE_NO_PAD.decode(tag_b64).map_err(|_| Denial::UrlInvalid)?;
        if payload.len() != PAYLOAD_LEN {
            return Err(Denial::UrlInvalid);
        }
        // `verify_slice` compares in constant time.
        self.mac(&payload).verify_slice(&tag).map_err(|_| Denial::UrlInvalid)?;
        let id = |range: std::ops::Range<usize>| {
            let bytes: [u8; 16] = payload[range].try_into().expect("16-byte slice");
            Uuid::from_bytes(bytes)
        };
        let exp = i64::from_be_bytes(payload[32..].try_into().expect("8-byte slice"));
        if now.timestamp() >= exp {
            return Err(Denial::UrlExpired);
        }
        Ok((LicenseId::from_uuid(id(0..16)), AssetId::from_uuid(id(16..32))))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::entropy::SeededEntropy;

    fn at(secs: i64) -> Timestamp {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    fn signer() -> UrlSigner {
        UrlSigner::new(&[42; 32]).unwrap()
    }

    #[test]
    fn round_trip_and_expiry() {
        let (l, a) = (LicenseId::new(), AssetId::new());
        let s = signer().sign(l, a, at(1_000));
        assert_eq!(s.path, format!("/v1/downloads/{}", s.token));
        assert_eq!(s.expires_at, at(1_000));
        assert_eq!(signer().verify(&s.token, at(999)), Ok((l, a)));
        assert_eq!(signer().verify(&s.token, at(1_000)), Err(Denial::UrlExpired));
        let other = UrlSigner::generate(&SeededEntropy::new(1));
        assert_eq!(other.verify(&s.token, at(0)), Err(Denial::UrlInvalid));
        assert!(UrlSigner::new(&[1; 31]).is_err());
        for junk in ["", ".", "abc", "a.b.c", "!!!.!!!"] {
            assert_eq!(signer().verify(junk, at(0)), Err(Denial::UrlInvalid), "{junk:?}");
        }
    }

    #[test]
    fn a_forged_later_expiry_is_invalid_not_expired() {
        let s = signer().sign(LicenseId::new(), AssetId::new(), at(1_000));
        let (p, t) = s.token.split_once('.').unwrap();
        let mut payload = URL_SAFE_NO_PAD.decode(p).unwrap();
        payload[32..].copy_from_slice(&5_000i64.to_be_bytes());
        let forged = format!("{}.{t}", URL_SAFE_NO_PAD.encode(payload));
        assert_eq!(signer().verify(&forged, at(2_000)), Err(Denial::UrlInvalid));
    }

    proptest! {
        #[test]
        fn any_tampering_is_invalid(idx: usize, c in proptest::char::range('-', 'z'), exp in 1i64..4_000_000_000) {
            let s = signer().sign(LicenseId::new(), AssetId::new(), at(exp));
            let i = idx % s.token.len();
            prop_assume!(s.token.as_bytes()[i] != c as u8);
            let mut bytes = s.token.into_bytes();
            bytes[i] = c as u8;
            let tampered = String::from_utf8(bytes).unwrap();
            prop_assert_eq!(signer().verify(&tampered, at(0)), Err(Denial::UrlInvalid));
        }

        #[test]
        fn valid_strictly_before_expiry(exp in 1i64..4_000_000_000, now in 0i64..4_000_000_000) {
            let (l, a) = (LicenseId::new(), AssetId::new());
            let s = signer().sign(l, a, at(exp));
            let expected = if now < exp { Ok((l, a)) } else { Err(Denial::UrlExpired) };
            prop_assert_eq!(signer().verify(&s.token, at(now)), expected);
        }
    }
}
