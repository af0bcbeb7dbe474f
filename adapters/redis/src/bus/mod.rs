//! [`RedisStreamBus`]: the core's [`EventPublisher`] and [`EventSubscriber`]
//! on one Redis stream with a consumer group per subscriber.
//!
//! # Layout: one stream, routing by type
//!
//! Every event goes to the single stream `{prefix}events`, as one entry
//! whose field `event` holds the CloudEvents JSON envelope exactly as
//! [`Event::to_json`] writes it. Each consumer group (the port's `consumer`)
//! reads the whole stream and the core's dispatcher routes each event to the
//! handlers registered for its type. One stream per family (`orders`,
//! `licenses`, …) would only pay off if groups subscribed to subsets; here
//! every group wants every event, so per-family streams would mean reading
//! N streams per `next`, losing the global publish order across families
//! (the port promises publish order), and N trims instead of one. One key
//! also means every command touches one hash slot, so the bus works on
//! Redis Cluster too.
//!
//! # Port → Redis
//!
//! | port | Redis |
//! |---|---|
//! | `publish` | `XADD {stream} MAXLEN ~ max_len * event <json> [traceparent <w3c> [tracestate <w3c>]]` per event, all in one `MULTI`/`EXEC` |
//! | group | `XGROUP CREATE {stream} <group> 0 MKSTREAM` on first use (`BUSYGROUP` ignored) |
//! | `open_fanout` | `XGROUP CREATE {stream} <group> $ MKSTREAM`, and a deadline in the fan-out registry, a sorted set in the stream's hash slot (`{<stream>}:fanout-groups`) that every `next` moves on; opening one destroys the fan-out groups past their deadline |
//! | `leave` | `XGROUP DESTROY`, and its deadline removed |
//! | `next` | `XAUTOCLAIM … <ack wait> …` (redeliveries first), else `XREADGROUP … COUNT 1 STREAMS {stream} >` |
//! | `attempt` | the entry's delivery count (`XPENDING`), which `XAUTOCLAIM` increments |
//! | receipt | `"{entry id}:{delivery count}"` |
//! | `ack` | `XACK` |
//! | `nack(delay)` | `XCLAIM … 0 <id> IDLE <ack wait − delay> JUSTID` if the receipt is current |
//!
//! `next` (group creation, reclaim, delivery count, read) and `nack`
//! (staleness check, backdating) are each one Lua script, so they are atomic
//! with respect to every other consumer, in this process or another. The
//! reclaim walks the group's pending list (deliveries in flight, normally a
//! handful per consumer), so `next` costs O(pending) on the server. Needs
//! Redis 6.2 or later (`XAUTOCLAIM`).
//!
//! # Waiting
//!
//! `next(group, wait)` with a non-zero `wait` polls: it tries at once, then
//! every [`RedisStreamOptions::poll_interval`] until `wait` has passed. It
//! does not use `XREADGROUP … BLOCK`, on purpose:
//! - the bus runs on the shared multiplexed [`ConnectionManager`], and a
//!   blocked command holds that connection: every other command of every
//!   other user of the manager (publishes, acks, cache reads) would queue
//!   behind it for up to `wait`;
//! - the manager gives up on a reply after its response timeout (500 ms by
//!   default), while Redis keeps the read open: if an event then arrives it
//!   is delivered into a reply nobody reads, and sits pending until the ack
//!   wait brings it back with an inflated attempt count;
//! - `BLOCK` only wakes for new entries, not for nacked entries whose delay
//!   runs out during the wait; polling sees both.
//!
//! `wait == 0` is a single non-blocking attempt.
//!
//! # Acknowledgement and redelivery
//!
//! A delivered entry sits in the group's pending list (PEL) until `XACK`ed.
//! An entry left unacknowledged for `ack_wait` (its consumer crashed, hung,
//! or is just slow) is reclaimed by whichever consumer calls `next` next,
//! with its delivery count raised, so `attempt` counts every delivery.
//!
//! `nack(delay)` backdates the entry's idle time to `ack_wait − delay`, so
//! the reclaim takes it after `delay`. `JUSTID` keeps `XCLAIM` from counting
//! a delivery (the redelivery itself is counted by `XAUTOCLAIM`). A delay of
//! `ack_wait` or more is capped to `ack_wait` (idle 0): a longer delay would
//! need a due-time sorted set beside the stream, and the dispatcher's
//! backoff delays are meant to sit below the ack wait. Choose `ack_wait` at
//! least as long as the longest retry delay you configure.
//!
//! Receipts carry the delivery count they were issued with. `nack` acts only
//! while the entry is pending *with that count*: a nack from a consumer
//! whose delivery was since reclaimed by another (count moved on) or acked is
//! ignored, so it cannot reschedule someone else's delivery. `ack`, on the
//! other hand, acks the entry whatever the count: a stale ack still means
//! the event was handled (the dispatcher acks only after the handlers
//! succeeded or the event was parked as a dead letter), and handlers are
//! idempotent, so dropping it from the PEL is right; the current holder's
//! later ack is then a harmless no-op and its nack is ignored. Ignoring the
//! stale ack would only cost one more redelivery.
//!
//! An entry whose `event` field is missing or not an event envelope (not
//! written by this bus) can never be handled: `next` logs it
//! (`tracing::error!`, with its id), acks it and moves on, instead of
//! failing every `next` of the group once per ack wait forever.
//!
//! # Retention
//!
//! `MAXLEN ~ max_len` keeps the stream bounded: Redis trims whole nodes, so
//! the stream holds at least `max_len` entries and at most about `max_len`
//! plus one node (`stream-node-max-entries`, 100 by default). Trimming does
//! not look at consumer groups: an entry trimmed before a group read or
//! acked it is lost to that group, and a group created late sees only what
//! is retained. Size `max_len` for the longest consumer outage you must
//! survive (events per second × seconds). Redis 7 drops trimmed entries from
//! the pending lists when the reclaim meets them.
//!
//! # Consumers
//!
//! Within a group, Redis tracks a consumer name per process
//! ([`RedisStreamOptions::consumer_name`], unique per process: host, pid and
//! a random part by default). Tasks of one process share it; that is fine,
//! each `next` is atomic. A crashed process's entries are reclaimed by the
//! others after the ack wait; its now-empty consumer record stays in the
//! group until removed with `XGROUP DELCONSUMER`.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bazaar_core::events::{Delivery, Event, EventPublisher, EventSubscriber, Receipt};
use bazaar_core::{Error, Result};
use redis::aio::ConnectionManager;
use redis::{RedisError, Script};

use crate::exec::Exec;
use crate::unavailable;

const NEXT_LUA: &str = include_str!("next.lua");
const NACK_LUA: &str = include_str!("nack.lua");
const FANOUT_LUA: &str = include_str!("fanout.lua");
const LEAVE_LUA: &str = include_str!("leave.lua");

/// Settings of a [`RedisStreamBus`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisStreamOptions {
    /// Key prefix; the stream is `{prefix}events`.
    pub prefix: String,
    /// How long a delivery may stay unacknowledged before another consumer
    /// reclaims it; also the longest effective nack delay. At least 1 ms,
    /// counted in whole milliseconds.
    pub ack_wait: Duration,
    /// The approximate bound on the stream's length (`MAXLEN ~`); at least 1.
    pub max_len: u64,
    /// This process's consumer name within every group; unique per process.
    pub consumer_name: String,
    /// How often `next` looks again while waiting; at least 1 ms.
    pub poll_interval: Duration,
}

impl RedisStreamOptions {
    /// The default ack wait, as NATS JetStream's.
    pub const DEFAULT_ACK_WAIT: Duration = Duration::from_secs(30);
    /// The default stream bound.
    pub const DEFAULT_MAX_LEN: u64 = 100_000;
    /// The default poll interval while waiting.
    pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(100);

    /// Defaults under `prefix`, with a fresh [`default_consumer_name`](Self::default_consumer_name).
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
            ack_wait: Self::DEFAULT_ACK_WAIT,
            max_len: Self::DEFAULT_MAX_LEN,
            consumer_name: Self::default_consumer_name(),
            poll_interval: Self::DEFAULT_POLL_INTERVAL,
        }
    }

    /// `{host}-{pid}-{random}`: distinct for every process, and for every
    /// call within one.
    pub fn default_consumer_name() -> String {
        let host = std::env::var("HOSTNAME")
            .ok()
            .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "host".to_owned());
        // RandomState is seeded from the OS once per thread and moves on for
        // every instance: enough to tell consumers apart without a rand dep.
        let random = RandomState::new().build_hasher().finish();
        format!("{host}-{}-{random:016x}", std::process::id())
    }
}

/// The event bus on a Redis stream. Clones share the connection.
///
/// # Example
/// ```no_run
/// use std::time::Duration;
/// use bazaar_core::events::{Event, EventPublisher, EventSubscriber, UserRegistered};
/// use bazaar_core::ids::UserId;
/// use bazaar_redis::{RedisStreamBus, RedisStreamOptions, connect};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let options = RedisStreamOptions { ack_wait: Duration::from_secs(60), ..RedisStreamOptions::new("bazaar:") };
/// let bus = RedisStreamBus::new(connect("redis://127.0.0.1:6379").await?, options)?;
/// let event = Event::new(&UserRegistered { user_id: UserId::new(), role: "vendor".into() }, chrono::Utc::now());
/// bus.publish(&[event.clone()]).await?;
/// let delivery = bus.next("mailer", Duration::from_secs(1)).await?.expect("just published");
/// assert_eq!((delivery.event.id, delivery.attempt), (event.id, 1));
/// bus.ack(&delivery).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisStreamBus {
    conn: ConnectionManager,
    stream: Arc<str>,
    consumer_name: Arc<str>,
    ack_wait_ms: u64,
    max_len: u64,
    poll_interval: Duration,
    /// The fan-out registry: a sorted set of fan-out groups by deadline.
    fanout_key: Arc<str>,
    /// Fan-out groups opened by this process, with their idle limit in ms.
    fanout: Arc<Mutex<HashMap<String, u64>>>,
    scripts: Arc<Scripts>,
    exec: Exec,
}

struct Scripts {
    next: Script,
    nack: Script,
    fanout: Script,
    leave: Script,
}

impl fmt::Debug for RedisStreamBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStreamBus")
            .field("stream", &self.stream)
            .field("consumer_name", &self.consumer_name)
            .field("ack_wait_ms", &self.ack_wait_ms)
            .field("max_len", &self.max_len)
            .finish_non_exhaustive()
    }
}

impl RedisStreamBus {
    /// A bus on the stream `{prefix}events`.
    ///
    /// Build it inside a Tokio runtime: calls made later from outside any
    /// runtime are run on this one.
    ///
    /// # Errors
    /// [`Error::Validation`] when `ack_wait` or `poll_interval` is under
    /// 1 ms, `max_len` is 0, `consumer_name` is empty or the prefix has
    /// braces that form no Redis hash tag.
    pub fn new(conn: ConnectionManager, options: RedisStreamOptions) -> Result<Self> {
        let ack_wait_ms = u64::try_from(options.ack_wait.as_millis()).unwrap_or(u64::MAX);
        if ack_wait_ms == 0 {
            return Err(Error::invalid("ack_wait", "must be at least 1 ms"));
        }
        if options.poll_interval < Duration::from_millis(1) {
            return Err(Error::invalid("poll_interval", "must be at least 1 ms"));
        }
        if options.max_len == 0 {
            return Err(Error::invalid("max_len", "must be at least 1"));
        }
        if options.consumer_name.is_empty() {
            return Err(Error::invalid("consumer_name", "must not be empty"));
        }
        Ok(Self {
            conn,
            stream: format!("{}events", options.prefix).into(),
            fanout_key: fanout_registry_key(&options.prefix)
                .ok_or_else(|| {
                    Error::invalid("prefix", "braces in the prefix must form a Redis hash tag, such as `{bazaar}:`")
                })?
                .into(),
            fanout: Arc::default(),
            consumer_name: options.consumer_name.into(),
            ack_wait_ms,
            max_len: options.max_len,
            poll_interval: options.poll_interval,
            scripts: Arc::new(Scripts {
                next: Script::new(NEXT_LUA),
                nack: Script::new(NACK_LUA),
                fanout: Script::new(FANOUT_LUA),
                leave: Script::new(LEAVE_LUA),
            }),
            exec: Exec::capture(),
        })
    }

    /// The stream's key.
    pub fn stream_key(&self) -> &str {
        &self.stream
    }

    /// The key of the fan-out registry (a sorted set of fan-out groups by
    /// deadline), in the stream's hash slot.
    pub fn fanout_registry_key(&self) -> &str {
        &self.fanout_key
    }

    /// This process's consumer name within the groups.
    pub fn consumer_name(&self) -> &str {
        &self.consumer_name
    }

    /// Checks that Redis answers, for readiness probes.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when it does not.
    pub async fn ping(&self) -> Result<()> {
        let mut conn = self.conn.clone();
        let pong: String =
            self.exec.run(async move { redis::cmd("PING").query_async(&mut conn).await }).await.map_err(unavailable)?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(Error::unavailable("redis", format!("unexpected PING reply {pong:?}")))
        }
    }

    /// One non-blocking attempt at the next delivery for `group`.
    async fn try_next(&self, group: &str) -> Result<Option<Delivery>> {
        loop {
            let (mut conn, scripts) = (self.conn.clone(), self.scripts.clone());
            let (stream, group_arg, consumer) = (self.stream.clone(), group.to_owned(), self.consumer_name.clone());
            let registry = self.fanout_key.clone();
            let ack_wait_ms = self.ack_wait_ms;
            let fanout_idle_ms = self.fanout_idle_ms(group);
            let reply: Option<(String, i64, Vec<u8>)> = self
                .exec
                .run(async move {
                    scripts
                        .next
                        .key(&*stream)
                        .key(&*registry)
                        .arg(group_arg)
                        .arg(&*consumer)
                        .arg(ack_wait_ms)
                        .arg(fanout_idle_ms)
                        .invoke_async(&mut conn)
                        .await
                })
                .await
                .map_err(unavailable)?;
            let Some((id, count, json)) = reply else {
                return Ok(None);
            };
            match Event::from_json(&json) {
                Ok(event) => {
                    let attempt = u32::try_from(count.max(1)).unwrap_or(u32::MAX);
                    return Ok(Some(Delivery {
                        event,
                        consumer: group.to_owned(),
                        attempt,
                        receipt: Receipt::new(format!("{id}:{count}")),
                    }));
                }
                Err(error) => {
                    tracing::error!(
                        stream = %self.stream,
                        group,
                        entry = %id,
                        %error,
                        "stream entry is not an event envelope; acknowledging it so the group moves on"
                    );
                    self.xack(group, &id).await?;
                }
            }
        }
    }

    /// The idle limit in ms of `group` if this process opened it as a
    /// fan-out group, else 0.
    fn fanout_idle_ms(&self, group: &str) -> u64 {
        self.fanout.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(group).copied().unwrap_or(0)
    }

    async fn xack(&self, group: &str, id: &str) -> Result<()> {
        let (mut conn, stream, group, id) = (self.conn.clone(), self.stream.clone(), group.to_owned(), id.to_owned());
        self.exec
            .run(async move { redis::cmd("XACK").arg(&*stream).arg(group).arg(id).query_async::<i64>(&mut conn).await })
            .await
            .map(drop)
            .map_err(unavailable)
    }

    async fn sleep(&self, duration: Duration) -> Result<()> {
        // Through the captured runtime: Tokio's timer needs one, and the
        // port may be polled from a plain executor.
        self.exec
            .run(async move {
                tokio::time::sleep(duration).await;
                Ok::<_, RedisError>(())
            })
            .await
            .map_err(unavailable)
    }
}

/// The fan-out registry's key, in the stream's hash slot so the scripts
/// that touch both work on Redis Cluster: `{prefix}fanout-groups` when the
/// prefix carries a hash tag (then both keys share it), else
/// `{<stream key>}:fanout-groups`, whose tag is the whole stream key.
/// `None` for a prefix with braces that form no hash tag (`x{}y:`, `a}b:`):
/// no key could then share the stream's slot.
fn fanout_registry_key(prefix: &str) -> Option<String> {
    let has_tag = prefix.find('{').is_some_and(|open| prefix[open + 1..].find('}').is_some_and(|len| len > 0));
    if has_tag {
        Some(format!("{prefix}fanout-groups"))
    } else if prefix.contains(['{', '}']) {
        None
    } else {
        Some(format!("{{{prefix}events}}:fanout-groups"))
    }
}

/// Splits a receipt into its entry id and delivery count, checking both.
fn parse_receipt(receipt: &Receipt) -> Result<(&str, i64)> {
    let bad = || Error::invalid("receipt", format!("{receipt:?} is not a receipt of this bus"));
    let (id, count) = receipt.as_str().rsplit_once(':').ok_or_else(bad)?;
    let (ms, seq) = id.split_once('-').ok_or_else(bad)?;
    if ms.parse::<u64>().is_err() || seq.parse::<u64>().is_err() {
        return Err(bad());
    }
    let count = count.parse::<i64>().ok().filter(|c| *c >= 1).ok_or_else(bad)?;
    Ok((id, count))
}

#[async_trait]
impl EventPublisher for RedisStreamBus {
    async fn publish(&self, events: &[Event]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        // MULTI/EXEC: the batch lands contiguously, in order, and a server
        // error on any XADD fails the whole call.
        let mut pipe = redis::pipe();
        pipe.atomic();
        for event in events {
            pipe.cmd("XADD")
                .arg(&*self.stream)
                .arg("MAXLEN")
                .arg("~")
                .arg(self.max_len)
                .arg("*")
                .arg("event")
                .arg(event.to_json());
            // The trace context as fields of their own too, so tools that
            // read the stream see it without parsing the envelope.
            if let Some(traceparent) = &event.traceparent {
                pipe.arg("traceparent").arg(traceparent);
            }
            if let Some(tracestate) = &event.tracestate {
                pipe.arg("tracestate").arg(tracestate);
            }
        }
        let mut conn = self.conn.clone();
        let ids: Vec<String> =
            self.exec.run(async move { pipe.query_async(&mut conn).await }).await.map_err(unavailable)?;
        if ids.len() == events.len() {
            Ok(())
        } else {
            Err(Error::unavailable(
                "redis",
                format!("XADD accepted {} of {} events (transaction aborted?)", ids.len(), events.len()),
            ))
        }
    }
}

#[async_trait]
impl EventSubscriber for RedisStreamBus {
    async fn next(&self, consumer: &str, wait: Duration) -> Result<Option<Delivery>> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(delivery) = self.try_next(consumer).await? {
                return Ok(Some(delivery));
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            self.sleep(left.min(self.poll_interval)).await?;
        }
    }

    /// `XGROUP CREATE … $` and an entry in the fan-out registry (a sorted
    /// set of deadlines in server time, [`Self::fanout_registry_key`], moved on by
    /// every `next`); opening one also destroys the groups whose deadline
    /// has passed, so a dead process's group lasts until the next replica
    /// starts.
    async fn open_fanout(&self, consumer: &str, idle: Duration) -> Result<()> {
        let idle_ms = u64::try_from(idle.as_millis()).unwrap_or(u64::MAX);
        if idle_ms == 0 {
            return Err(Error::invalid("idle", "a fan-out group's idle limit must be at least 1 ms"));
        }
        if consumer.is_empty() {
            return Err(Error::invalid("consumer", "the consumer group name must not be empty"));
        }
        let (mut conn, scripts) = (self.conn.clone(), self.scripts.clone());
        let (stream, registry, group) = (self.stream.clone(), self.fanout_key.clone(), consumer.to_owned());
        let removed: i64 = self
            .exec
            .run(async move {
                scripts.fanout.key(&*stream).key(&*registry).arg(group).arg(idle_ms).invoke_async(&mut conn).await
            })
            .await
            .map_err(unavailable)?;
        if removed > 0 {
            tracing::info!(stream = %self.stream, removed, "removed idle fan-out consumer groups");
        }
        self.fanout.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(consumer.to_owned(), idle_ms);
        Ok(())
    }

    /// `XGROUP DESTROY` (its pending list goes with it) and its registry entry.
    async fn leave(&self, consumer: &str) -> Result<()> {
        self.fanout.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(consumer);
        let (mut conn, scripts) = (self.conn.clone(), self.scripts.clone());
        let (stream, registry, group) = (self.stream.clone(), self.fanout_key.clone(), consumer.to_owned());
        self.exec
            .run(async move { scripts.leave.key(&*stream).key(&*registry).arg(group).invoke_async::<i64>(&mut conn).await })
            .await
            .map(drop)
            .map_err(unavailable)
    }

    async fn ack(&self, delivery: &Delivery) -> Result<()> {
        // Any receipt for the entry acks it, stale or not (see the module doc).
        let (id, _) = parse_receipt(&delivery.receipt)?;
        self.xack(&delivery.consumer, id).await
    }

    async fn nack(&self, delivery: &Delivery, delay: Duration) -> Result<()> {
        let (id, count) = parse_receipt(&delivery.receipt)?;
        let delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX).min(self.ack_wait_ms);
        let idle_ms = self.ack_wait_ms - delay_ms;
        let (mut conn, scripts, stream) = (self.conn.clone(), self.scripts.clone(), self.stream.clone());
        let (group, id) = (delivery.consumer.clone(), id.to_owned());
        self.exec
            .run(async move {
                scripts
                    .nack
                    .key(&*stream)
                    .arg(group)
                    .arg(id)
                    .arg(count)
                    .arg(idle_ms)
                    .invoke_async::<i64>(&mut conn)
                    .await
            })
            .await
            .map(drop)
            .map_err(unavailable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The part of a key Redis Cluster hashes: the first non-empty `{…}`.
    fn hashed(key: &str) -> &str {
        match key.find('{') {
            Some(open) => match key[open + 1..].find('}') {
                Some(len) if len > 0 => &key[open + 1..open + 1 + len],
                _ => key,
            },
            None => key,
        }
    }

    #[test]
    fn the_fanout_registry_shares_the_streams_hash_slot() {
        for prefix in ["bazaar:", "", "{shop}:", "a{b}c:", "{a}}:"] {
            let stream = format!("{prefix}events");
            let registry = fanout_registry_key(prefix).expect("a usable prefix");
            assert_ne!(registry, stream, "prefix {prefix:?}");
            assert_eq!(hashed(&registry), hashed(&stream), "prefix {prefix:?}: {registry} vs {stream}");
        }
        for prefix in ["x{}y:", "a}b:", "{open:"] {
            assert_eq!(fanout_registry_key(prefix), None, "prefix {prefix:?} has braces but no hash tag");
        }
    }

    #[test]
    fn receipts_round_trip_and_reject_garbage() {
        assert_eq!(parse_receipt(&Receipt::new("1700000000000-3:2")).unwrap(), ("1700000000000-3", 2));
        for bad in ["", "1-0", "1-0:", "1-0:0", "1-0:x", "x-0:1", "1:1", "1-0-0:1", "-1-0:1"] {
            assert!(parse_receipt(&Receipt::new(bad)).is_err(), "{bad:?} must be rejected");
        }
    }

    #[test]
    fn default_consumer_names_differ() {
        let (a, b) = (RedisStreamOptions::default_consumer_name(), RedisStreamOptions::default_consumer_name());
        assert_ne!(a, b);
        assert!(a.contains(&format!("-{}-", std::process::id())), "{a} names the pid");
    }
}
