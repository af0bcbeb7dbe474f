//! [`NatsDirectory`]: the core's [`ServiceDirectory`] on a JetStream
//! key-value bucket, so replicas on any host register where every gateway
//! reads.
//!
//! # Design
//!
//! - One bucket (`bazaar_registry` by default), one key per instance:
//!   `<service>.<id>`, each part escaped to key characters (`A-Z a-z 0-9 -
//!   _`, anything else as `=XX` hex, so `.` never splits a part). The value
//!   is JSON: address, weight, metadata and the TTL in milliseconds.
//! - **TTL.** Every `register` and `heartbeat` is a put, which JetStream
//!   stamps with the server's time. An entry is live while `stamp + ttl`
//!   is in the future; readers judge that against their own clock, so hosts
//!   need roughly synchronised clocks (NTP; a skew of a second on a 10 s TTL
//!   is harmless). The JetStream servers 2.9 / 2.10 in use have no per-key
//!   TTL, so the bucket's `max_age` (60 s by default, and every
//!   registration's TTL must fit in it) is the garbage collector that
//!   removes entries of replicas that died without deregistering.
//! - `heartbeat` is a compare-and-set on the entry's revision, so a
//!   heartbeat racing a deregistration cannot bring the instance back, and
//!   an expired or deleted entry answers `NotFound` (the `Advertiser` then
//!   registers again).
//! - `deregister` purges the key (history and all).
//! - `instances` lists the bucket's keys under `<service>.` and reads each
//!   (a service has a handful of replicas; one round trip each).
//! - `watch` is a KV watch on `<service>.>`: puts, deletes and purges.
//!   Expiry by age produces no event, which is why readers also re-read
//!   periodically (the port's contract allows exactly that).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::kv::{self, Operation, Store};
use async_trait::async_trait;
use bazaar_core::resilience::registry::{HealthStatus, Instance, Registration, ServiceDirectory};
use bazaar_core::{Error, Result};
use futures::StreamExt;
use futures::stream::BoxStream;

/// Settings of a [`NatsDirectory`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryOptions {
    /// The KV bucket (`bazaar_registry`): `A-Z a-z 0-9 _ -`.
    pub bucket: String,
    /// TTL of a registration that names none (10 s).
    pub default_ttl: Duration,
    /// The bucket's `max_age` when this directory creates it (60 s): the
    /// longest TTL accepted, and how long a dead replica's entry lingers
    /// (invisible once its own TTL passed) before the server deletes it.
    pub max_ttl: Duration,
}

impl Default for DirectoryOptions {
    fn default() -> Self {
        Self {
            bucket: "bazaar_registry".into(),
            default_ttl: Duration::from_secs(10),
            max_ttl: Duration::from_secs(60),
        }
    }
}

/// A [`ServiceDirectory`] on a JetStream KV bucket.
#[derive(Debug, Clone)]
pub struct NatsDirectory {
    store: Store,
    options: DirectoryOptions,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Value {
    address: String,
    weight: u32,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
    ttl_ms: u64,
}

fn unavailable(e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::unavailable("service directory", e)
}

/// Escapes one key part: key characters stay, anything else is `=XX`.
fn escape(part: &str) -> String {
    let mut out = String::with_capacity(part.len());
    for b in part.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("={b:02X}"));
        }
    }
    out
}

fn unescape(part: &str) -> String {
    let bytes = part.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && let Some(b) = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn key(service: &str, id: &str) -> String {
    format!("{}.{}", escape(service), escape(id))
}

fn now_nanos() -> i128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i128)
}

/// The entry's value and how long ago it was written, if it is a live put.
fn live(entry: &kv::Entry) -> Option<(Value, Duration)> {
    if entry.operation != Operation::Put {
        return None;
    }
    let value: Value = serde_json::from_slice(&entry.value).ok()?;
    let age = (now_nanos() - entry.created.unix_timestamp_nanos()).max(0);
    let age = Duration::from_nanos(u64::try_from(age).unwrap_or(u64::MAX));
    (age <= Duration::from_millis(value.ttl_ms)).then_some((value, age))
}

impl NatsDirectory {
    /// Connects to `url` and opens (or creates) the bucket.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the server or JetStream is unreachable.
    pub async fn connect(url: &str, options: DirectoryOptions) -> Result<Self> {
        let client = async_nats::connect(url).await.map_err(unavailable)?;
        Self::connect_with(client, options).await
    }

    /// Opens (or creates) the bucket on an existing client.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when JetStream is unreachable;
    /// [`Error::Validation`] for a bad bucket name.
    pub async fn connect_with(client: async_nats::Client, options: DirectoryOptions) -> Result<Self> {
        if !options.bucket.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            || options.bucket.is_empty()
        {
            return Err(Error::invalid("bucket", "1-64 of A-Z a-z 0-9 _ -"));
        }
        let jetstream = async_nats::jetstream::new(client);
        // The bucket's stream, created the way `create_key_value` would.
        // That call first reads the account info, which async-nats 0.46
        // cannot parse from a 2.9 server; creating the stream directly
        // needs no account info and works on every 2.9+ server.
        let stream = async_nats::jetstream::stream::Config {
            name: format!("KV_{}", options.bucket),
            description: Some("Bazaar service registry".into()),
            subjects: vec![format!("$KV.{}.>", options.bucket)],
            max_messages_per_subject: 1,
            max_age: options.max_ttl,
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            discard: async_nats::jetstream::stream::DiscardPolicy::New,
            num_replicas: 1,
            ..Default::default()
        };
        jetstream.get_or_create_stream(stream).await.map_err(unavailable)?;
        let store = jetstream.get_key_value(options.bucket.as_str()).await.map_err(unavailable)?;
        Ok(Self { store, options })
    }

    /// The options in force.
    pub fn options(&self) -> &DirectoryOptions {
        &self.options
    }
}

#[async_trait]
impl ServiceDirectory for NatsDirectory {
    async fn register(&self, registration: &Registration) -> Result<()> {
        for (field, value) in
            [("service", &registration.service), ("id", &registration.id), ("address", &registration.address)]
        {
            if value.is_empty() {
                return Err(Error::invalid("registration", format!("empty {field}")));
            }
        }
        let ttl = registration.ttl.unwrap_or(self.options.default_ttl);
        if ttl > self.options.max_ttl || ttl.is_zero() {
            return Err(Error::invalid("ttl", format!("must be in (0, {:?}]", self.options.max_ttl)));
        }
        let value = Value {
            address: registration.address.clone(),
            weight: registration.weight.max(1),
            metadata: registration.metadata.clone(),
            ttl_ms: u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX),
        };
        let bytes = serde_json::to_vec(&value).map_err(|e| Error::internal("encode registration", e))?;
        self.store.put(key(&registration.service, &registration.id), bytes.into()).await.map_err(unavailable)?;
        Ok(())
    }

    async fn heartbeat(&self, service: &str, id: &str) -> Result<()> {
        let key = key(service, id);
        let entry = self.store.entry(key.as_str()).await.map_err(unavailable)?;
        let Some(entry) = entry.filter(|e| live(e).is_some()) else {
            return Err(Error::not_found("instance"));
        };
        match self.store.update(key.as_str(), entry.value.clone(), entry.revision).await {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => Err(Error::not_found("instance")),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn deregister(&self, service: &str, id: &str) -> Result<()> {
        self.store.purge(key(service, id)).await.map_err(unavailable)
    }

    async fn instances(&self, service: &str) -> Result<Vec<Instance>> {
        let prefix = format!("{}.", escape(service));
        let mut keys = self.store.keys().await.map_err(unavailable)?;
        let mut wanted = Vec::new();
        while let Some(key) = keys.next().await {
            let key = key.map_err(unavailable)?;
            if key.starts_with(&prefix) {
                wanted.push(key);
            }
        }
        let mut found = Vec::with_capacity(wanted.len());
        for key in wanted {
            let Some(entry) = self.store.entry(key.as_str()).await.map_err(unavailable)? else { continue };
            let Some((value, age)) = live(&entry) else { continue };
            found.push(Instance {
                service: service.to_owned(),
                id: unescape(&key[prefix.len()..]),
                address: value.address,
                weight: value.weight.max(1),
                metadata: value.metadata,
                health: HealthStatus::Passing,
                since_heartbeat: age,
            });
        }
        found.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(found)
    }

    async fn watch(&self, service: &str) -> Result<BoxStream<'static, ()>> {
        let watch = self.store.watch(format!("{}.>", escape(service))).await.map_err(unavailable)?;
        Ok(Box::pin(watch.filter_map(|change| async move {
            match change {
                Ok(_) => Some(()),
                Err(e) => {
                    tracing::warn!(error = %e, "service directory watch error");
                    None
                }
            }
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_parts_round_trip_and_never_split() {
        for part in ["api", "api-1_x", "host.example:8080", "ünï", "a=b"] {
            let escaped = escape(part);
            assert!(escaped.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'='));
            assert_eq!(unescape(&escaped), part);
        }
        assert_eq!(key("a.b", "c"), "a=2Eb.c");
    }
}
