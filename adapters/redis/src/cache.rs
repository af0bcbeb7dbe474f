//! The JSON read-through cache shared by [`CachedProducts`](crate::CachedProducts)
//! and [`CachedLicenses`](crate::CachedLicenses).
//!
//! Entries are JSON strings with a TTL. Invalidation deletes the entry and
//! sets a short-lived *fill guard*: without it, a reader that loaded the old
//! value just before a write could store it just after the write's
//! invalidation, and serve it for a whole TTL. While the guard lives, fills
//! for that entity are skipped (reads still go to the inner repository), so
//! staleness is bounded by the guard unless a reader stalls longer than it
//! between its inner read and its fill; even then, by the TTL.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{AsyncCommands, RedisError, Script};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::exec::Exec;

/// Skips the fill while a guard exists; otherwise stores the entry (and,
/// when given, an index entry naming it) with the TTL.
const FILL_LUA: &str = r"
-- KEYS[1] entry, KEYS[2] guard, KEYS[3] optional index.
-- ARGV[1] value, ARGV[2] ttl (ms), ARGV[3] index value.
if redis.call('EXISTS', KEYS[2]) == 1 then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if KEYS[3] then
  redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[2])
end
return 1
";

/// Sets the guard, drops the named entries and, when given, the entry an
/// index points at (the index names it by suffix, so the raw lookup key
/// never has to be known at invalidation time).
const INVALIDATE_LUA: &str = r"
-- KEYS[1] guard, KEYS[2..] entries. ARGV[1] guard (ms);
-- ARGV[2] optional index key, ARGV[3] the prefix its value completes.
redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
for i = 2, #KEYS do
  redis.call('DEL', KEYS[i])
end
if ARGV[2] then
  local target = redis.call('GET', ARGV[2])
  if target then
    redis.call('DEL', ARGV[3] .. target)
  end
  redis.call('DEL', ARGV[2])
end
return 1
";

/// How long cached values live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheConfig {
    /// How long an entry is served without asking the inner repository:
    /// the bound on staleness for changes the decorator cannot see.
    pub ttl: Duration,
    /// How long after an invalidation fills of that entity are refused
    /// (see the module docs); should exceed a slow inner read.
    pub fill_guard: Duration,
}

impl CacheConfig {
    /// Entries living `ttl`, with the default 2 s fill guard.
    pub fn with_ttl(ttl: Duration) -> Self {
        Self { ttl, ..Self::default() }
    }
}

impl Default for CacheConfig {
    /// 60 s entries, 2 s fill guard.
    fn default() -> Self {
        Self { ttl: Duration::from_secs(60), fill_guard: Duration::from_secs(2) }
    }
}

/// Where an index entry lives and the prefix its value completes into an
/// entry key.
pub(crate) struct Index<'a> {
    pub(crate) key: &'a str,
    pub(crate) entry_prefix: &'a str,
}

/// A prefix-scoped JSON cache over one connection.
#[derive(Clone)]
pub(crate) struct JsonCache {
    conn: ConnectionManager,
    prefix: Arc<str>,
    config: CacheConfig,
    fill: Arc<Script>,
    invalidate: Arc<Script>,
    exec: Exec,
}

impl fmt::Debug for JsonCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonCache").field("prefix", &self.prefix).field("config", &self.config).finish_non_exhaustive()
    }
}

impl JsonCache {
    pub(crate) fn new(conn: ConnectionManager, prefix: String, config: CacheConfig) -> Self {
        Self {
            conn,
            prefix: prefix.into(),
            config,
            fill: Arc::new(Script::new(FILL_LUA)),
            invalidate: Arc::new(Script::new(INVALIDATE_LUA)),
            exec: Exec::capture(),
        }
    }

    /// `{prefix}{suffix}`.
    pub(crate) fn key(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.prefix)
    }

    /// The cached value, `None` on a miss. A value that no longer parses
    /// (the type changed between releases) is a miss, not an error.
    pub(crate) async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, RedisError> {
        let (mut conn, owned) = (self.conn.clone(), key.to_owned());
        let raw: Option<String> = self.exec.run(async move { conn.get(owned).await }).await?;
        Ok(raw.and_then(|raw| parse(key, &raw)))
    }

    /// The cached values of `keys`, in their order (`None` for a miss, as
    /// [`get`](Self::get)), in one round trip: a pipeline of `GET`s rather
    /// than `MGET`, which a cluster refuses across hash slots.
    pub(crate) async fn get_many<T: DeserializeOwned>(&self, keys: &[String]) -> Result<Vec<Option<T>>, RedisError> {
        let (mut conn, owned) = (self.conn.clone(), keys.to_vec());
        let raw: Vec<Option<String>> = self
            .exec
            .run(async move {
                let mut pipe = redis::pipe();
                for key in &owned {
                    pipe.get(key);
                }
                pipe.query_async(&mut conn).await
            })
            .await?;
        Ok(raw.into_iter().zip(keys).map(|(raw, key)| raw.and_then(|raw| parse(key, &raw))).collect())
    }

    /// Stores `value` unless the entity's guard is up; returns whether it did.
    pub(crate) async fn fill<T: Serialize>(
        &self,
        key: &str,
        guard: &str,
        index: Option<(&str, &str)>,
        value: &T,
    ) -> Result<bool, RedisError> {
        let json = serde_json::to_string(value)
            .map_err(|e| RedisError::from((redis::ErrorKind::Client, "serializing a cache entry", e.to_string())))?;
        let mut keys = vec![key.to_owned(), guard.to_owned()];
        let mut args = vec![json, millis(self.config.ttl).to_string()];
        if let Some((index_key, index_value)) = index {
            keys.push(index_key.to_owned());
            args.push(index_value.to_owned());
        }
        let stored: i64 = self.eval(&self.fill, keys, args).await?;
        Ok(stored == 1)
    }

    /// Raises `guard` and drops `entries` plus the entry `index` points at.
    pub(crate) async fn invalidate(
        &self,
        guard: &str,
        entries: &[&str],
        index: Option<Index<'_>>,
    ) -> Result<(), RedisError> {
        let keys: Vec<String> = std::iter::once(guard).chain(entries.iter().copied()).map(str::to_owned).collect();
        let mut args = vec![millis(self.config.fill_guard).to_string()];
        if let Some(index) = index {
            args.push(index.key.to_owned());
            args.push(index.entry_prefix.to_owned());
        }
        self.eval::<i64>(&self.invalidate, keys, args).await.map(drop)
    }

    async fn eval<T: redis::FromRedisValue + Send + 'static>(
        &self,
        script: &Arc<Script>,
        keys: Vec<String>,
        args: Vec<String>,
    ) -> Result<T, RedisError> {
        let (mut conn, script) = (self.conn.clone(), script.clone());
        self.exec
            .run(async move {
                let mut invocation = script.prepare_invoke();
                for key in keys {
                    invocation.key(key);
                }
                for arg in args {
                    invocation.arg(arg);
                }
                invocation.invoke_async(&mut conn).await
            })
            .await
    }
}

/// A cached entry's value; one that no longer parses (the type changed
/// between releases) is a miss, logged.
fn parse<T: DeserializeOwned>(key: &str, raw: &str) -> Option<T> {
    match serde_json::from_str(raw) {
        Ok(value) => Some(value),
        Err(e) => {
            tracing::warn!(key, error = %e, "unreadable cache entry treated as a miss");
            None
        }
    }
}

/// A duration as whole milliseconds for `PX`, at least 1 (Redis refuses 0).
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX / 4).max(1)
}
