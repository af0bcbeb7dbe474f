//! [`RedisIdempotencyStore`]: the core's [`IdempotencyStore`] on Redis.
//!
//! A record is a hash under `{prefix}{scope length}:{scope}:{key}` (the
//! length makes the split unambiguous whatever characters scope and key
//! hold) with the fields `hash`, `exp_s`/`exp_ns` (the `expires_at` of the
//! contract, as whole seconds and nanoseconds so Lua's doubles compare them
//! exactly), `token` and `lock_s`/`lock_ns` (the claim holding the key and
//! its lease's end, as the contract's `token` and `locked_until`) and, once
//! completed, `response` (the [`StoredResponse`] as JSON).
//!
//! Each operation is one Lua script, so `begin`'s read-decide-write is
//! atomic across every replica of the application. Liveness is judged
//! against the caller's `now` as the contract requires; the record's Redis
//! TTL (`ttl` from `begin`, on the server's clock, kept by `complete`) only
//! garbage-collects it, at about the time it stops counting anyway.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use bazaar_core::clock::Timestamp;
use bazaar_core::orders::{IdempotencyBegin, IdempotencyClaim, IdempotencyStore, IdempotencyTerms, StoredResponse};
use bazaar_core::{Error, Result};
use redis::Script;
use redis::aio::ConnectionManager;

use crate::exec::Exec;
use crate::unavailable;

const BEGIN_LUA: &str = r"
-- KEYS[1] record. ARGV: request hash, now (s, ns), expires_at (s, ns), ttl (ms),
-- token, locked_until (s, ns).
local function before(a_s, a_ns, b_s, b_ns)
  return a_s < b_s or (a_s == b_s and a_ns < b_ns)
end
local r = redis.call('HMGET', KEYS[1], 'hash', 'exp_s', 'exp_ns', 'response', 'lock_s', 'lock_ns')
local now_s, now_ns = tonumber(ARGV[2]), tonumber(ARGV[3])
if r[1] and before(now_s, now_ns, tonumber(r[2]), tonumber(r[3])) then
  if r[1] ~= ARGV[1] then
    return { 'mismatch' }
  end
  if r[4] then
    return { 'replay', r[4] }
  end
  if before(now_s, now_ns, tonumber(r[5] or 0), tonumber(r[6] or 0)) then
    return { 'in_flight' }
  end
end
-- Absent, expired, or a lapsed claim: this caller takes the key.
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'hash', ARGV[1], 'exp_s', ARGV[4], 'exp_ns', ARGV[5], 'token', ARGV[7],
  'lock_s', ARGV[8], 'lock_ns', ARGV[9])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return { 'started' }
";

const COMPLETE_LUA: &str = r"
-- KEYS[1] record. ARGV[1] token, ARGV[2] response JSON. HSET keeps the record's TTL.
local r = redis.call('HMGET', KEYS[1], 'token', 'response')
if r[1] ~= ARGV[1] or r[2] then
  return 'not_held'
end
redis.call('HSET', KEYS[1], 'response', ARGV[2])
return 'ok'
";

const ABANDON_LUA: &str = r"
-- KEYS[1] record. ARGV[1] token. Only the holder's unfinished record is dropped.
local r = redis.call('HMGET', KEYS[1], 'token', 'response')
if r[1] == ARGV[1] and not r[2] then
  redis.call('DEL', KEYS[1])
end
return 1
";

/// An [`IdempotencyStore`] on Redis. Clones share the connection.
///
/// # Example
/// ```no_run
/// use bazaar_core::orders::{IdempotencyBegin, IdempotencyClaim, IdempotencyStore, IdempotencyTerms};
/// use bazaar_redis::{RedisIdempotencyStore, connect};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let store = RedisIdempotencyStore::new(connect("redis://127.0.0.1:6379").await?, "bazaar:idem:");
/// let claim = IdempotencyClaim::new("buyer-1", "key-1");
/// let begun = store.begin(&claim, "request-hash", chrono::Utc::now(), IdempotencyTerms::default()).await?;
/// assert_eq!(begun, IdempotencyBegin::Started);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisIdempotencyStore {
    conn: ConnectionManager,
    prefix: Arc<str>,
    scripts: Arc<Scripts>,
    exec: Exec,
}

struct Scripts {
    begin: Script,
    complete: Script,
    abandon: Script,
}

impl fmt::Debug for RedisIdempotencyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisIdempotencyStore").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

impl RedisIdempotencyStore {
    /// A store whose records live under `prefix`.
    ///
    /// Build it inside a Tokio runtime: calls made later from outside any
    /// runtime are run on this one.
    pub fn new(conn: ConnectionManager, prefix: impl Into<String>) -> Self {
        let scripts = Scripts {
            begin: Script::new(BEGIN_LUA),
            complete: Script::new(COMPLETE_LUA),
            abandon: Script::new(ABANDON_LUA),
        };
        Self { conn, prefix: prefix.into().into(), scripts: Arc::new(scripts), exec: Exec::capture() }
    }

    /// The Redis key of `(scope, key)`.
    pub fn redis_key(&self, scope: &str, key: &str) -> String {
        format!("{}{}:{scope}:{key}", self.prefix, scope.len())
    }
}

#[async_trait]
impl IdempotencyStore for RedisIdempotencyStore {
    async fn begin(
        &self,
        claim: &IdempotencyClaim,
        request_hash: &str,
        now: Timestamp,
        terms: IdempotencyTerms,
    ) -> Result<IdempotencyBegin> {
        let (expires_at, locked_until) = (now + terms.ttl, now + terms.lease);
        // A non-positive TTL gives a record that is never live; it is still
        // stored (briefly) so the reply is `Started` like every adapter's.
        let gc_ms = terms.ttl.num_milliseconds().max(1);
        let (mut conn, scripts, record) =
            (self.conn.clone(), self.scripts.clone(), self.redis_key(&claim.scope, &claim.key));
        let (request_hash, token) = (request_hash.to_owned(), claim.token.clone());
        let reply: Vec<String> = self
            .exec
            .run(async move {
                scripts
                    .begin
                    .key(record)
                    .arg(request_hash)
                    .arg(now.timestamp())
                    .arg(now.timestamp_subsec_nanos())
                    .arg(expires_at.timestamp())
                    .arg(expires_at.timestamp_subsec_nanos())
                    .arg(gc_ms)
                    .arg(token)
                    .arg(locked_until.timestamp())
                    .arg(locked_until.timestamp_subsec_nanos())
                    .invoke_async(&mut conn)
                    .await
            })
            .await
            .map_err(unavailable)?;
        match reply.as_slice() {
            [tag] if tag == "started" => Ok(IdempotencyBegin::Started),
            [tag] if tag == "in_flight" => Ok(IdempotencyBegin::InFlight),
            [tag] if tag == "mismatch" => Ok(IdempotencyBegin::Mismatch),
            [tag, json] if tag == "replay" => serde_json::from_str(json)
                .map(IdempotencyBegin::Replay)
                .map_err(|e| Error::internal("decoding a stored idempotent response", e)),
            other => Err(Error::internal("idempotency begin script", format!("unexpected reply {other:?}"))),
        }
    }

    async fn complete(&self, claim: &IdempotencyClaim, response: StoredResponse) -> Result<()> {
        let json =
            serde_json::to_string(&response).map_err(|e| Error::internal("encoding an idempotent response", e))?;
        let (mut conn, scripts, record) =
            (self.conn.clone(), self.scripts.clone(), self.redis_key(&claim.scope, &claim.key));
        let token = claim.token.clone();
        let outcome: String = self
            .exec
            .run(async move { scripts.complete.key(record).arg(token).arg(json).invoke_async(&mut conn).await })
            .await
            .map_err(unavailable)?;
        match outcome.as_str() {
            "ok" => Ok(()),
            "not_held" => Err(claim.not_held()),
            other => Err(Error::internal("idempotency complete script", format!("unexpected reply {other:?}"))),
        }
    }

    async fn abandon(&self, claim: &IdempotencyClaim) -> Result<()> {
        let (mut conn, scripts, record) =
            (self.conn.clone(), self.scripts.clone(), self.redis_key(&claim.scope, &claim.key));
        let token = claim.token.clone();
        self.exec
            .run(async move { scripts.abandon.key(record).arg(token).invoke_async::<i64>(&mut conn).await })
            .await
            .map(drop)
            .map_err(unavailable)
    }
}
