//! License keys: Ed25519-signed compact claims a client verifies offline.
//!
//! Format: `key/{payload}.{signature}`, both parts base64url without padding.
//! The payload is compact JSON `{"v":1,"lid":…,"pid":…,"uid":…,"kind":…,
//! "exp":…,"iat":…}` (`exp` omitted when the license never expires; times
//! are Unix seconds); the signature is Ed25519 over the payload *bytes*, so
//! verification never depends on re-serialising JSON.
//!
//! The key carries the expiry known when it was issued. The server's online
//! validation ([`LicenseService::validate`](super::LicenseService::validate))
//! is authoritative: it also knows about revocation, suspension and
//! activations, which an offline check cannot.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::DateTime;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::entropy::Entropy;
use crate::ids::{LicenseId, ProductId, UserId};

const PREFIX: &str = "key/";
/// The only claims version this build signs and accepts.
pub const CLAIMS_VERSION: u8 = 1;

/// Why a key failed to verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not a well-formed key (prefix, base64, JSON or claims version).
    #[error("malformed license key: {0}")]
    Malformed(&'static str),
    /// Well-formed, but the signature does not match the public key.
    #[error("license key signature does not verify")]
    BadSignature,
    /// Authentic, but past its `exp`.
    #[error("license key expired at {expired_at}")]
    Expired {
        /// When it expired.
        expired_at: Timestamp,
    },
    /// A public key that is not a valid Ed25519 point or has the wrong length.
    #[error("invalid public key: {0}")]
    InvalidPublicKey(&'static str),
}

/// The claims a key carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LicenseClaims {
    /// Claims version; always [`CLAIMS_VERSION`].
    pub v: u8,
    /// The license.
    pub lid: LicenseId,
    /// The licensed product.
    pub pid: ProductId,
    /// The holder.
    pub uid: UserId,
    /// `perpetual`, `subscription` or `trial`.
    pub kind: String,
    /// Expiry, Unix seconds; absent when the license never expires by itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// Issued at, Unix seconds.
    pub iat: i64,
}

impl LicenseClaims {
    /// `exp` as a timestamp.
    pub fn expires_at(&self) -> Option<Timestamp> {
        self.exp.and_then(|s| DateTime::from_timestamp(s, 0))
    }
}

/// The Ed25519 public key clients embed to verify keys offline.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct LicensePublicKey(VerifyingKey);

impl LicensePublicKey {
    /// The 32 raw bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// From 32 raw bytes.
    ///
    /// # Errors
    /// [`KeyError::InvalidPublicKey`] when the bytes are not a curve point.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, KeyError> {
        VerifyingKey::from_bytes(bytes).map(Self).map_err(|_| KeyError::InvalidPublicKey("not an Ed25519 point"))
    }

    /// Base64url (no padding).
    pub fn to_b64(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.to_bytes())
    }

    /// From base64url (no padding).
    ///
    /// # Errors
    /// [`KeyError::InvalidPublicKey`] on bad base64, length or point.
    pub fn from_b64(s: &str) -> Result<Self, KeyError> {
        let bytes = URL_SAFE_NO_PAD.decode(s.trim()).map_err(|_| KeyError::InvalidPublicKey("not base64url"))?;
        Self::from_slice(&bytes)
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.to_bytes())
    }

    /// From hex (either case).
    ///
    /// # Errors
    /// [`KeyError::InvalidPublicKey`] on bad hex, length or point.
    pub fn from_hex(s: &str) -> Result<Self, KeyError> {
        let bytes = hex::decode(s.trim()).map_err(|_| KeyError::InvalidPublicKey("not hex"))?;
        Self::from_slice(&bytes)
    }

    fn from_slice(bytes: &[u8]) -> Result<Self, KeyError> {
        let arr: [u8; 32] = bytes.try_into().map_err(|_| KeyError::InvalidPublicKey("must be 32 bytes"))?;
        Self::from_bytes(&arr)
    }
}

impl fmt::Debug for LicensePublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LicensePublicKey({})", self.to_hex())
    }
}

/// Signs license keys. Holds the private key: its `Debug` shows only the
/// public half.
///
/// # Example
/// ```
/// use bazaar_core::licensing::{verify_offline, LicenseClaims, LicenseSigner};
/// use bazaar_core::ids::{LicenseId, ProductId, UserId};
/// let signer = LicenseSigner::from_seed(&[1; 32]);
/// let claims = LicenseClaims {
///     v: 1, lid: LicenseId::new(), pid: ProductId::new(), uid: UserId::new(),
///     kind: "perpetual".into(), exp: None, iat: 1_700_000_000,
/// };
/// let key = signer.sign(&claims);
/// assert!(key.starts_with("key/"));
/// let now = chrono::Utc::now();
/// assert_eq!(verify_offline(&key, &signer.public_key(), now).unwrap(), claims);
/// ```
pub struct LicenseSigner {
    key: SigningKey,
}

impl LicenseSigner {
    /// A signer from a 32-byte Ed25519 seed (keep it secret, keep it stable:
    /// rotating it invalidates every key already issued for offline checks).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self { key: SigningKey::from_bytes(seed) }
    }

    /// A signer with a fresh seed from `entropy`.
    pub fn generate(entropy: &dyn Entropy) -> Self {
        Self::from_seed(&entropy.bytes32())
    }

    /// The seed, for persisting a generated signer.
    pub fn seed(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// The public key clients verify with.
    pub fn public_key(&self) -> LicensePublicKey {
        LicensePublicKey(self.key.verifying_key())
    }

    /// Signs `claims` into a `key/{payload}.{signature}` string.
    pub fn sign(&self, claims: &LicenseClaims) -> String {
        let payload = serde_json::to_vec(claims).expect("claims serialize");
        let sig = self.key.sign(&payload);
        format!("{PREFIX}{}.{}", URL_SAFE_NO_PAD.encode(&payload), URL_SAFE_NO_PAD.encode(sig.to_bytes()))
    }
}

impl fmt::Debug for LicenseSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LicenseSigner").field("public_key", &self.public_key()).finish_non_exhaustive()
    }
}

/// Checks form and signature only, not expiry (the online validation applies
/// its own expiry rule, with precedence).
///
/// # Errors
/// [`KeyError::Malformed`] or [`KeyError::BadSignature`].
pub fn verify_signature(key: &str, pubkey: &LicensePublicKey) -> Result<LicenseClaims, KeyError> {
    let body = key.strip_prefix(PREFIX).ok_or(KeyError::Malformed("missing key/ prefix"))?;
    let (payload_b64, sig_b64) = body.split_once('.').ok_or(KeyError::Malformed("missing signature"))?;
    let payload = URL_SAFE_NO_PAD.decode(payload_b64).map_err(|_| KeyError::Malformed("payload is not base64url"))?;
    let sig_bytes = URL_SAFE_NO_PAD.decode(sig_b64).map_err(|_| KeyError::Malformed("signature is not base64url"))?;
    let sig_arr: [u8; 64] = sig_bytes.try_into().map_err(|_| KeyError::Malformed("signature must be 64 bytes"))?;
    // Strict verification rejects malleable (non-canonical) signatures, so a
    // key has exactly one valid encoding.
    pubkey.0.verify_strict(&payload, &Signature::from_bytes(&sig_arr)).map_err(|_| KeyError::BadSignature)?;
    let claims: LicenseClaims =
        serde_json::from_slice(&payload).map_err(|_| KeyError::Malformed("payload is not claims JSON"))?;
    if claims.v != CLAIMS_VERSION {
        return Err(KeyError::Malformed("unsupported claims version"));
    }
    Ok(claims)
}

/// Verifies a key offline: form, signature, then expiry at `now` (expired
/// from the `exp` second on).
///
/// # Errors
/// [`KeyError::Malformed`], [`KeyError::BadSignature`] or [`KeyError::Expired`].
pub fn verify_offline(key: &str, pubkey: &LicensePublicKey, now: Timestamp) -> Result<LicenseClaims, KeyError> {
    let claims = verify_signature(key, pubkey)?;
    match claims.exp {
        Some(exp) if now.timestamp() >= exp => {
            Err(KeyError::Expired { expired_at: claims.expires_at().unwrap_or(now) })
        }
        _ => Ok(claims),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::entropy::SeededEntropy;

    fn claims(exp: Option<i64>) -> LicenseClaims {
        LicenseClaims {
            v: 1,
            lid: LicenseId::new(),
            pid: ProductId::new(),
            uid: UserId::new(),
            kind: "trial".into(),
            exp,
            iat: 1_000,
        }
    }

    fn at(secs: i64) -> Timestamp {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    fn parts(key: &str) -> (Vec<u8>, Vec<u8>) {
        let (p, s) = key.strip_prefix(PREFIX).unwrap().split_once('.').unwrap();
        (URL_SAFE_NO_PAD.decode(p).unwrap(), URL_SAFE_NO_PAD.decode(s).unwrap())
    }

    fn assemble(payload: &[u8], sig: &[u8]) -> String {
        format!("{PREFIX}{}.{}", URL_SAFE_NO_PAD.encode(payload), URL_SAFE_NO_PAD.encode(sig))
    }

    #[test]
    fn payload_is_compact_json_with_the_documented_claims() {
        let signer = LicenseSigner::from_seed(&[3; 32]);
        let c = claims(Some(2_000));
        let (payload, sig) = parts(&signer.sign(&c));
        assert_eq!(sig.len(), 64);
        let text = String::from_utf8(payload).unwrap();
        assert!(text.starts_with("{\"v\":1,\"lid\":\""), "{text}");
        assert!(text.contains("\"kind\":\"trial\",\"exp\":2000,\"iat\":1000}"), "{text}");
        let no_exp = signer.sign(&claims(None));
        assert!(!String::from_utf8(parts(&no_exp).0).unwrap().contains("exp"));
    }

    #[test]
    fn distinct_reasons() {
        let signer = LicenseSigner::from_seed(&[3; 32]);
        let pk = signer.public_key();
        let key = signer.sign(&claims(Some(2_000)));
        assert!(verify_offline(&key, &pk, at(1_999)).is_ok());
        assert_eq!(verify_offline(&key, &pk, at(2_000)), Err(KeyError::Expired { expired_at: at(2_000) }));
        assert_eq!(verify_offline("nope", &pk, at(0)), Err(KeyError::Malformed("missing key/ prefix")));
        assert_eq!(verify_offline("key/abc", &pk, at(0)), Err(KeyError::Malformed("missing signature")));
        assert!(matches!(verify_offline("key/!!.AA", &pk, at(0)), Err(KeyError::Malformed(_))));
        let other = LicenseSigner::from_seed(&[4; 32]).public_key();
        assert_eq!(verify_offline(&key, &other, at(0)), Err(KeyError::BadSignature));
        // A validly signed payload that is not claims is malformed, not forged.
        let junk = assemble(b"[1,2]", &signer.key.sign(b"[1,2]").to_bytes());
        assert_eq!(verify_offline(&junk, &pk, at(0)), Err(KeyError::Malformed("payload is not claims JSON")));
        let mut v2 = claims(None);
        v2.v = 2;
        assert_eq!(
            verify_offline(&signer.sign(&v2), &pk, at(0)),
            Err(KeyError::Malformed("unsupported claims version"))
        );
    }

    #[test]
    fn public_keys_round_trip_through_b64_and_hex() {
        let signer = LicenseSigner::generate(&SeededEntropy::new(9));
        let pk = signer.public_key();
        assert_eq!(LicensePublicKey::from_b64(&pk.to_b64()).unwrap(), pk);
        assert_eq!(LicensePublicKey::from_hex(&pk.to_hex().to_uppercase()).unwrap(), pk);
        assert_eq!(LicensePublicKey::from_bytes(&pk.to_bytes()).unwrap(), pk);
        assert!(LicensePublicKey::from_hex("abcd").is_err());
        assert!(LicensePublicKey::from_b64("***").is_err());
        assert_eq!(LicenseSigner::from_seed(&signer.seed()).public_key(), pk);
        assert!(!format!("{signer:?}").contains(&hex::encode(signer.seed())));
    }

    proptest! {
        #[test]
        fn round_trip(seed: [u8; 32], exp in proptest::option::of(1i64..4_000_000_000)) {
            let signer = LicenseSigner::from_seed(&seed);
            let c = claims(exp);
            let key = signer.sign(&c);
            prop_assert_eq!(verify_offline(&key, &signer.public_key(), at(0)).unwrap(), c);
        }

        #[test]
        fn any_byte_flip_fails(seed: [u8; 32], in_sig: bool, idx: usize, bit in 0u8..8) {
            let signer = LicenseSigner::from_seed(&seed);
            let key = signer.sign(&claims(None));
            let (mut payload, mut sig) = parts(&key);
            let target = if in_sig { &mut sig } else { &mut payload };
            let i = idx % target.len();
            target[i] ^= 1 << bit;
            let tampered = assemble(&payload, &sig);
            prop_assert!(verify_offline(&tampered, &signer.public_key(), at(0)).is_err());
        }

        #[test]
        fn any_character_change_fails(seed: [u8; 32], idx: usize, c in proptest::char::range('-', 'z')) {
            let signer = LicenseSigner::from_seed(&seed);
            let key = signer.sign(&claims(None));
            let i = PREFIX.len() + idx % (key.len() - PREFIX.len());
            prop_assume!(key.as_bytes()[i] != c as u8);
            let mut tampered = key.clone().into_bytes();
            tampered[i] = c as u8;
            let tampered = String::from_utf8(tampered).unwrap();
            prop_assert!(verify_offline(&tampered, &signer.public_key(), at(0)).is_err());
        }

        #[test]
        fn another_signer_fails(a: [u8; 32], b: [u8; 32]) {
            prop_assume!(a != b);
            let key = LicenseSigner::from_seed(&a).sign(&claims(None));
            let other = LicenseSigner::from_seed(&b).public_key();
            prop_assert_eq!(verify_offline(&key, &other, at(0)), Err(KeyError::BadSignature));
        }
    }
}
