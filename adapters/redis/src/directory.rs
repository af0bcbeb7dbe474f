//! [`RedisDirectory`]: the core's [`ServiceDirectory`] on Redis, for
//! deployments that have Redis but no NATS.
//!
//! # Design
//!
//! - One string key per instance, `<prefix>dir:<len>:<service>:<id>`
//!   (the service name's length first, so no service name can forge
//!   another's keys), holding JSON (address, weight, metadata, TTL) and
//!   expiring with the instance's TTL (`PX`): Redis's own clock enforces
//!   the TTL, exactly, for every reader.
//! - A set per service, `<prefix>dir:<len>:<service>`, lists the ids;
//!   `instances` reads it and every key in one script, and drops ids whose
//!   key has expired from it.
//! - `heartbeat` is `PEXPIRE` with the stored TTL: it cannot create a key,
//!   so a heartbeat racing a deregistration never brings an instance back,
//!   and a missing key answers `NotFound`.
//! - Changes are published on `<set key>:changes`; `watch` subscribes to it
//!   on a connection of its own. An expiry publishes nothing (readers also
//!   re-read periodically, as the port allows).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bazaar_core::resilience::registry::{HealthStatus, Instance, Registration, ServiceDirectory};
use bazaar_core::{Error, Result};
use futures::StreamExt;
use futures::stream::BoxStream;
use redis::Script;
use redis::aio::ConnectionManager;

use crate::exec::Exec;
use crate::unavailable;

const REGISTER_LUA: &str = r"
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
redis.call('PUBLISH', KEYS[3], ARGV[3])
return 1
";

const HEARTBEAT_LUA: &str = r"
local value = redis.call('GET', KEYS[1])
if not value then return 0 end
return redis.call('PEXPIRE', KEYS[1], cjson.decode(value).ttl_ms)
";

const DEREGISTER_LUA: &str = r"
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
redis.call('PUBLISH', KEYS[3], ARGV[1])
return 1
";

/// `{id, value, pttl, …}` for the live ids of a service; forgets the
/// expired ones.
const INSTANCES_LUA: &str = r"
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local key = ARGV[1] .. id
  local value = redis.call('GET', key)
  if value then
    table.insert(out, id)
    table.insert(out, value)
    table.insert(out, redis.call('PTTL', key))
  else
    redis.call('SREM', KEYS[1], id)
  end
end
return out
";

#[derive(serde::Serialize, serde::Deserialize)]
struct Value {
    address: String,
    weight: u32,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
    ttl_ms: u64,
}

struct Scripts {
    register: Script,
    heartbeat: Script,
    deregister: Script,
    instances: Script,
}

/// A [`ServiceDirectory`] on Redis. Cheap to clone.
#[derive(Clone)]
pub struct RedisDirectory {
    conn: ConnectionManager,
    client: redis::Client,
    prefix: Arc<str>,
    default_ttl: Duration,
    scripts: Arc<Scripts>,
    exec: Exec,
}

impl fmt::Debug for RedisDirectory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisDirectory").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

impl RedisDirectory {
    /// A directory under `prefix` (e.g. `"bazaar:"`), on `conn` for
    /// commands and on connections from `client` for watches. Registrations
    /// without a TTL get `default_ttl`. Build it inside a Tokio runtime.
    pub fn new(
        conn: ConnectionManager,
        client: redis::Client,
        prefix: impl Into<String>,
        default_ttl: Duration,
    ) -> Self {
        let scripts = Scripts {
            register: Script::new(REGISTER_LUA),
            heartbeat: Script::new(HEARTBEAT_LUA),
            deregister: Script::new(DEREGISTER_LUA),
            instances: Script::new(INSTANCES_LUA),
        };
        Self {
            conn,
            client,
            prefix: prefix.into().into(),
            default_ttl,
            scripts: Arc::new(scripts),
            exec: Exec::capture(),
        }
    }

    /// Connects to `url` (`redis://host:port/db`).
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the URL is malformed or Redis unreachable.
    pub async fn connect(url: &str, prefix: impl Into<String>, default_ttl: Duration) -> Result<Self> {
        let client = redis::Client::open(url).map_err(unavailable)?;
        let conn = ConnectionManager::new(client.clone()).await.map_err(unavailable)?;
        Ok(Self::new(conn, client, prefix, default_ttl))
    }

    fn set_key(&self, service: &str) -> String {
        format!("{}dir:{}:{service}", self.prefix, service.len())
    }

    fn instance_prefix(&self, service: &str) -> String {
        format!("{}:", self.set_key(service))
    }

    fn keys(&self, service: &str, id: &str) -> [String; 3] {
        let set = self.set_key(service);
        [format!("{set}:{id}"), set.clone(), format!("{set}:changes")]
    }
}

#[async_trait]
impl ServiceDirectory for RedisDirectory {
    async fn register(&self, registration: &Registration) -> Result<()> {
        for (field, value) in
            [("service", &registration.service), ("id", &registration.id), ("address", &registration.address)]
        {
            if value.is_empty() {
                return Err(Error::invalid("registration", format!("empty {field}")));
            }
        }
        let ttl = registration.ttl.unwrap_or(self.default_ttl);
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let value = Value {
            address: registration.address.clone(),
            weight: registration.weight.max(1),
            metadata: registration.metadata.clone(),
            ttl_ms,
        };
        let json = serde_json::to_string(&value).map_err(|e| Error::internal("encode registration", e))?;
        let [key, set, channel] = self.keys(&registration.service, &registration.id);
        let (mut conn, scripts, id) = (self.conn.clone(), self.scripts.clone(), registration.id.clone());
        self.exec
            .run(async move {
                let mut call = scripts.register.key(key);
                call.key(set).key(channel).arg(json).arg(ttl_ms).arg(id);
                call.invoke_async::<i64>(&mut conn).await
            })
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn heartbeat(&self, service: &str, id: &str) -> Result<()> {
        let [key, _, _] = self.keys(service, id);
        let (mut conn, scripts) = (self.conn.clone(), self.scripts.clone());
        let refreshed = self
            .exec
            .run(async move { scripts.heartbeat.key(key).invoke_async::<i64>(&mut conn).await })
            .await
            .map_err(unavailable)?;
        if refreshed == 1 { Ok(()) } else { Err(Error::not_found("instance")) }
    }

    async fn deregister(&self, service: &str, id: &str) -> Result<()> {
        let [key, set, channel] = self.keys(service, id);
        let (mut conn, scripts, id) = (self.conn.clone(), self.scripts.clone(), id.to_owned());
        self.exec
            .run(async move {
                let mut call = scripts.deregister.key(key);
                call.key(set).key(channel).arg(id);
                call.invoke_async::<i64>(&mut conn).await
            })
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn instances(&self, service: &str) -> Result<Vec<Instance>> {
        let (set, prefix) = (self.set_key(service), self.instance_prefix(service));
        let (mut conn, scripts) = (self.conn.clone(), self.scripts.clone());
        let flat: Vec<redis::Value> = self
            .exec
            .run(async move { scripts.instances.key(set).arg(prefix).invoke_async(&mut conn).await })
            .await
            .map_err(unavailable)?;
        let parse = |e: redis::ParsingError| Error::internal("directory reply", e);
        let mut found = Vec::new();
        for triple in flat.chunks_exact(3) {
            let id: String = redis::from_redis_value_ref(&triple[0]).map_err(parse)?;
            let json: String = redis::from_redis_value_ref(&triple[1]).map_err(parse)?;
            let pttl: i64 = redis::from_redis_value_ref(&triple[2]).map_err(parse)?;
            let Ok(value) = serde_json::from_str::<Value>(&json) else { continue };
            let left = Duration::from_millis(u64::try_from(pttl).unwrap_or(0));
            found.push(Instance {
                service: service.to_owned(),
                id,
                address: value.address,
                weight: value.weight.max(1),
                metadata: value.metadata,
                health: HealthStatus::Passing,
                since_heartbeat: Duration::from_millis(value.ttl_ms).saturating_sub(left),
            });
        }
        found.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(found)
    }

    async fn watch(&self, service: &str) -> Result<BoxStream<'static, ()>> {
        let channel = format!("{}:changes", self.set_key(service));
        let client = self.client.clone();
        let pubsub = self
            .exec
            .run(async move {
                let mut pubsub = client.get_async_pubsub().await?;
                pubsub.subscribe(channel).await?;
                Ok(pubsub)
            })
            .await
            .map_err(unavailable)?;
        Ok(Box::pin(pubsub.into_on_message().map(|_| ())))
    }
}
