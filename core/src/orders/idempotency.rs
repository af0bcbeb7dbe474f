//! Idempotency keys: the same request sent twice with one key takes effect
//! once, and the second caller gets the first response.
//!
//! Rules (Stripe's): same key + same request → the stored first response;
//! same key + a different request → [`Error::IdempotencyMismatch`]; a key
//! whose first request is still running → [`Error::InFlight`]. A request
//! that fails is *abandoned*, freeing its key for a retry. Records expire
//! after a TTL and are then treated as absent.
//!
//! Keys are scoped (the buyer's id for orders) so two users' keys never
//! collide. The request is identified by [`request_hash`]: SHA-256 over a
//! canonical JSON form (object keys sorted, no whitespace), so field order
//! in the sender's JSON does not matter.

use async_trait::async_trait;
use chrono::Duration;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::clock::Timestamp;
use crate::error::{Error, Result};

/// The longest accepted key.
pub const MAX_KEY_LEN: usize = 255;

/// A validated idempotency key: 1 to 255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Validates a key.
    ///
    /// # Errors
    /// [`Error::Validation`] on `idempotency_key` when it is empty, longer
    /// than 255 bytes, or holds anything but visible ASCII (`!`..=`~`).
    pub fn parse(key: &str) -> Result<Self> {
        if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::invalid("idempotency_key", "must be 1 to 255 visible ASCII characters"));
        }
        Ok(Self(key.to_owned()))
    }

    /// The key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for IdempotencyKey {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Self::parse(&s)
    }
}

impl From<IdempotencyKey> for String {
    fn from(k: IdempotencyKey) -> String {
        k.0
    }
}

/// The first response to a keyed request, replayed to later identical ones.
///
/// The first call's result as JSON, which the core turns back into its own
/// result type (a placed order); each transport answers it as it answers
/// that call. Records written with an HTTP `status` beside the body still
/// read: unknown fields are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredResponse {
    /// The first result.
    pub body: serde_json::Value,
}

/// One request's hold on an idempotency key: the key, its scope (the
/// buyer's id for orders) and a token naming this holder.
///
/// The token makes a takeover safe: once a claim's lease runs out, a retry
/// takes the key over with a token of its own, and the first holder, should
/// it still be running, can no longer complete or abandon the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyClaim {
    /// Whose keys these are; two scopes never share a key.
    pub scope: String,
    /// The client's key.
    pub key: String,
    /// This holder's token, unique per claim.
    pub token: String,
}

impl IdempotencyClaim {
    /// A new claim on `(scope, key)` with a fresh random token.
    pub fn new(scope: impl Into<String>, key: impl Into<String>) -> Self {
        Self { scope: scope.into(), key: key.into(), token: uuid::Uuid::now_v7().simple().to_string() }
    }

    /// The refusal of a `complete` (or a checkout) by a claim that does not
    /// hold its key unfinished, worded the same by every adapter.
    pub fn not_held(&self) -> Error {
        Error::conflict(
            crate::ConflictReason::Contended,
            format!("idempotency key {:?} is not held by this request", self.key),
        )
    }
}

/// How long records and claims last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdempotencyTerms {
    /// How long a key is remembered once taken (Stripe's 24 h).
    pub ttl: Duration,
    /// How long an unfinished claim holds its key. A request that dies
    /// holding a key (its process killed, say) frees it when the lease ends:
    /// the next retry takes the key over and places the order itself.
    pub lease: Duration,
}

impl Default for IdempotencyTerms {
    fn default() -> Self {
        Self { ttl: Duration::hours(24), lease: Duration::seconds(60) }
    }
}

/// What [`IdempotencyStore::begin`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyBegin {
    /// No live record, or an unfinished one whose lease ran out: the claim
    /// now holds the key and must be completed (see
    /// [`Checkout::place`](super::Checkout::place)) or abandoned.
    Started,
    /// A completed record with the same request: answer with it.
    Replay(StoredResponse),
    /// A live record with a different request hash.
    Mismatch,
    /// A live record with the same request, still held by a running request.
    InFlight,
}

/// One stored key. Adapters may store it as they like; [`IdempotencyRecord::decide`]
/// holds the rules so every adapter applies the same ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    /// The hash of the request that took the key.
    pub request_hash: String,
    /// Its response, once completed.
    pub response: Option<StoredResponse>,
    /// After this instant the record counts as absent.
    pub expires_at: Timestamp,
    /// The token of the claim holding the key.
    pub token: String,
    /// Until this instant an unfinished record is held by its claim; after
    /// it, a retry takes the key over.
    pub locked_until: Timestamp,
}

impl IdempotencyRecord {
    /// A fresh in-flight record for `claim`'s request started at `now`.
    pub fn started(claim: &IdempotencyClaim, request_hash: &str, now: Timestamp, terms: IdempotencyTerms) -> Self {
        Self {
            request_hash: request_hash.to_owned(),
            response: None,
            expires_at: now + terms.ttl,
            token: claim.token.clone(),
            locked_until: now + terms.lease,
        }
    }

    /// Whether the record still counts at `now`.
    pub fn is_live(&self, now: Timestamp) -> bool {
        now < self.expires_at
    }

    /// Whether `token` holds this record unfinished (the only holder that
    /// may complete or abandon it).
    pub fn is_held_by(&self, token: &str) -> bool {
        self.response.is_none() && self.token == token
    }

    /// The outcome of a `begin` with `request_hash` at `now` given what is stored.
    /// [`IdempotencyBegin::Started`] means the caller must store
    /// [`IdempotencyRecord::started`] in the same atomic step, replacing
    /// what was there.
    pub fn decide(existing: Option<&Self>, request_hash: &str, now: Timestamp) -> IdempotencyBegin {
        match existing.filter(|r| r.is_live(now)) {
            None => IdempotencyBegin::Started,
            Some(r) if r.request_hash != request_hash => IdempotencyBegin::Mismatch,
            Some(IdempotencyRecord { response: Some(resp), .. }) => IdempotencyBegin::Replay(resp.clone()),
            Some(r) if now < r.locked_until => IdempotencyBegin::InFlight,
            Some(_) => IdempotencyBegin::Started,
        }
    }
}

/// Where idempotency records live.
///
/// A store that also holds the orders should complete keys inside its
/// [`Checkout::place`](super::Checkout::place), so the order, its events
/// and the key's answer commit as one unit of work.
///
/// # Example
/// ```
/// use bazaar_core::clock::{Clock, ManualClock};
/// use bazaar_core::orders::{IdempotencyBegin, IdempotencyClaim, IdempotencyStore, IdempotencyTerms, StoredResponse};
/// use bazaar_memory::MemoryIdempotency;
/// # futures::executor::block_on(async {
/// let store = MemoryIdempotency::new();
/// let now = ManualClock::at_epoch_secs(1_700_000_000).now();
/// let terms = IdempotencyTerms::default();
/// let first = IdempotencyClaim::new("buyer", "k1");
/// assert_eq!(store.begin(&first, "h1", now, terms).await.unwrap(), IdempotencyBegin::Started);
/// let retry = IdempotencyClaim::new("buyer", "k1");
/// assert_eq!(store.begin(&retry, "h1", now, terms).await.unwrap(), IdempotencyBegin::InFlight);
/// let resp = StoredResponse { body: serde_json::json!({"id": 1}) };
/// store.complete(&first, resp.clone()).await.unwrap();
/// assert_eq!(store.begin(&retry, "h1", now, terms).await.unwrap(), IdempotencyBegin::Replay(resp));
/// assert_eq!(store.begin(&retry, "other", now, terms).await.unwrap(), IdempotencyBegin::Mismatch);
/// # });
/// ```
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Claims `(claim.scope, claim.key)` for a request hashing to `request_hash`.
    ///
    /// MUST be atomic: of any number of concurrent `begin`s on one free
    /// key exactly one gets [`IdempotencyBegin::Started`]. MUST follow
    /// [`IdempotencyRecord::decide`]: a record with `expires_at <= now` is
    /// absent, and an unfinished one with `locked_until <= now` is taken
    /// over; either is replaced by [`IdempotencyRecord::started`] for `claim`.
    async fn begin(
        &self,
        claim: &IdempotencyClaim,
        request_hash: &str,
        now: Timestamp,
        terms: IdempotencyTerms,
    ) -> Result<IdempotencyBegin>;

    /// Stores the response of the request holding `claim`; later identical
    /// requests replay it. Keeps the record's expiry.
    ///
    /// MUST return [`Error::Conflict`] and change nothing unless `claim`
    /// holds the key unfinished (never started, abandoned, completed, or
    /// taken over by another claim).
    async fn complete(&self, claim: &IdempotencyClaim, response: StoredResponse) -> Result<()>;

    /// Frees the key `claim` holds so the request can be retried. MUST NOT
    /// remove a completed record or one another claim holds; anything else
    /// is a no-op.
    async fn abandon(&self, claim: &IdempotencyClaim) -> Result<()>;
}

/// The SHA-256 (lower-case hex) of `request`'s canonical JSON: object keys
/// sorted at every depth, no insignificant whitespace.
///
/// # Errors
/// [`Error::Internal`] when `request` cannot be serialized to JSON.
pub fn request_hash<T: Serialize + ?Sized>(request: &T) -> Result<String> {
    let value = serde_json::to_value(request).map_err(|e| Error::internal("hashing a request", e))?;
    let mut canonical = String::new();
    write_canonical(&value, &mut canonical);
    Ok(hex::encode(Sha256::digest(canonical.as_bytes())))
}

fn write_canonical(value: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            // serde_json's map is sorted unless `preserve_order` is enabled
            // somewhere in the build; sort explicitly so the hash never
            // depends on a feature flag.
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::clock::{Clock, ManualClock};
    use proptest::prelude::*;

    #[test]
    fn keys_are_visible_ascii_up_to_255() {
        assert!(IdempotencyKey::parse("order-2024-01_abc:1").is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_ok());
        for bad in ["", " ", "a b", "tab\t", "é", "\u{7f}"] {
            let err = IdempotencyKey::parse(bad).unwrap_err();
            assert!(err.to_string().contains("idempotency_key"), "{bad:?}");
        }
        assert!(IdempotencyKey::parse(&"k".repeat(256)).is_err());
    }

    #[test]
    fn hash_ignores_key_order_and_whitespace_but_not_values() {
        let a: serde_json::Value = serde_json::from_str(r#"{"b": [1, {"y": 2, "x": 1}], "a": "s"}"#).unwrap();
        let b: serde_json::Value = serde_json::from_str(r#"{"a":"s","b":[1,{"x":1,"y":2}]}"#).unwrap();
        let c: serde_json::Value = serde_json::from_str(r#"{"a":"s","b":[{"x":1,"y":2},1]}"#).unwrap();
        assert_eq!(request_hash(&a).unwrap(), request_hash(&b).unwrap());
        assert_ne!(request_hash(&a).unwrap(), request_hash(&c).unwrap());
        assert_eq!(request_hash(&a).unwrap().len(), 64);
    }

    #[test]
    fn expired_records_are_absent() {
        let now = ManualClock::at_epoch_secs(1_000).now();
        let terms = IdempotencyTerms { ttl: Duration::seconds(10), lease: Duration::seconds(10) };
        let rec = IdempotencyRecord::started(&IdempotencyClaim::new("s", "k"), "h", now, terms);
        assert_eq!(IdempotencyRecord::decide(Some(&rec), "h", now), IdempotencyBegin::InFlight);
        assert_eq!(IdempotencyRecord::decide(Some(&rec), "x", now), IdempotencyBegin::Mismatch);
        let later = now + Duration::seconds(10);
        assert_eq!(IdempotencyRecord::decide(Some(&rec), "x", later), IdempotencyBegin::Started);
    }

    #[test]
    fn a_lapsed_lease_is_taken_over_but_the_request_stays_bound() {
        let now = ManualClock::at_epoch_secs(1_000).now();
        let terms = IdempotencyTerms { ttl: Duration::hours(1), lease: Duration::seconds(5) };
        let first = IdempotencyClaim::new("s", "k");
        let rec = IdempotencyRecord::started(&first, "h", now, terms);
        let almost = now + Duration::seconds(4);
        assert_eq!(IdempotencyRecord::decide(Some(&rec), "h", almost), IdempotencyBegin::InFlight);
        let lapsed = now + Duration::seconds(5);
        assert_eq!(IdempotencyRecord::decide(Some(&rec), "h", lapsed), IdempotencyBegin::Started);
        assert_eq!(IdempotencyRecord::decide(Some(&rec), "other", lapsed), IdempotencyBegin::Mismatch);
        assert!(rec.is_held_by(&first.token));
        assert!(!rec.is_held_by(&IdempotencyClaim::new("s", "k").token), "tokens are unique per claim");
    }

    #[derive(Debug, Clone)]
    enum Op {
        Begin { key: u8, body: u8 },
        Complete { key: u8, answer: u16 },
        Abandon { key: u8 },
        Advance { secs: i64 },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u8..3, 0u8..3).prop_map(|(key, body)| Op::Begin { key, body }),
            3 => (0u8..3, 200u16..205).prop_map(|(key, answer)| Op::Complete { key, answer }),
            1 => (0u8..3).prop_map(|key| Op::Abandon { key }),
            1 => (0i64..40).prop_map(|secs| Op::Advance { secs }),
        ]
    }

    /// What a key's history says the answer must be, kept independently of
    /// `IdempotencyRecord`: who took the key, when, and what they answered.
    #[derive(Debug, Clone)]
    struct Claim {
        body: u8,
        at: i64,
        answer: Option<u16>,
    }

    proptest! {
        /// Any sequence of begin/complete/abandon over a few keys and bodies
        /// follows the rules, with a 30 s TTL and a 10 s lease.
        #[test]
        fn begin_follows_the_rules(ops in proptest::collection::vec(op(), 1..60)) {
            const TTL: i64 = 30;
            const LEASE: i64 = 10;
            let terms = IdempotencyTerms { ttl: Duration::seconds(TTL), lease: Duration::seconds(LEASE) };
            let clock = ManualClock::at_epoch_secs(0);
            let mut store: HashMap<u8, IdempotencyRecord> = HashMap::new();
            let mut claims: HashMap<u8, Claim> = HashMap::new();
            for op in ops {
                let now = clock.now();
                let t = now.timestamp();
                claims.retain(|_, c| t < c.at + TTL);
                match op {
                    Op::Begin { key, body } => {
                        let hash = format!("body-{body}");
                        let got = IdempotencyRecord::decide(store.get(&key), &hash, now);
                        let expected = match claims.get(&key) {
                            None => IdempotencyBegin::Started,
                            Some(c) if c.body != body => IdempotencyBegin::Mismatch,
                            Some(Claim { answer: Some(a), .. }) => IdempotencyBegin::Replay(StoredResponse {
                                body: serde_json::json!({ "key": key, "body": c_body(&claims, key), "answer": a }),
                            }),
                            Some(c) if t < c.at + LEASE => IdempotencyBegin::InFlight,
                            Some(_) => IdempotencyBegin::Started,
                        };
                        prop_assert_eq!(&got, &expected);
                        if got == IdempotencyBegin::Started {
                            let claim = IdempotencyClaim::new("scope", format!("key-{key}"));
                            store.insert(key, IdempotencyRecord::started(&claim, &hash, now, terms));
                            claims.insert(key, Claim { body, at: t, answer: None });
                        }
                    }
                    Op::Complete { key, answer } => {
                        // Only the owner of an in-flight claim completes it, as the service does.
                        if let Some(c) = claims.get_mut(&key).filter(|c| c.answer.is_none()) {
                            c.answer = Some(answer);
                            let body = serde_json::json!({ "key": key, "body": c.body, "answer": answer });
                            if let Some(r) = store.get_mut(&key) {
                                r.response = Some(StoredResponse { body });
                            }
                        }
                    }
                    Op::Abandon { key } => {
                        if claims.get(&key).is_some_and(|c| c.answer.is_none()) {
                            claims.remove(&key);
                            store.remove(&key);
                        }
                    }
                    Op::Advance { secs } => clock.advance(Duration::seconds(secs)),
                }
            }
        }
    }

    fn c_body(claims: &HashMap<u8, Claim>, key: u8) -> u8 {
        claims[&key].body
    }
}
