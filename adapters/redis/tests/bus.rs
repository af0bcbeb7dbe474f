//! The core's bus contract suites against `RedisStreamBus` on a real Redis,
//! plus what only Redis has: reclaim from a dead consumer, `JUSTID` nacks,
//! the nack delay cap, bounded retention and foreign entries.
//!
//! The ack wait is 1 s and "advancing the clock" is a real sleep, since
//! idle times are measured by the Redis server. Every test uses a fresh
//! prefix and deletes its stream at the end.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bazaar_core::events::{Event, EventPublisher, EventSubscriber, UserRegistered};
use bazaar_core::ids::UserId;
use bazaar_core::testkit::events as suite;
use bazaar_core::{Error, ErrorKind};
use bazaar_redis::{ConnectionManager, RedisStreamBus, RedisStreamOptions};
use redis::AsyncCommands;

const ACK_WAIT: Duration = Duration::from_secs(1);
/// Comfortably past a deadline measured on the server's clock.
const MARGIN: Duration = Duration::from_millis(100);

fn options(prefix: &str, consumer: &str) -> RedisStreamOptions {
    RedisStreamOptions {
        ack_wait: ACK_WAIT,
        max_len: 10_000,
        consumer_name: consumer.into(),
        poll_interval: Duration::from_millis(20),
        ..RedisStreamOptions::new(prefix)
    }
}

async fn bus(test: &str) -> (RedisStreamBus, Cleanup) {
    let conn = common::connect().await;
    let bus = RedisStreamBus::new(conn.clone(), options(&common::fresh_prefix(test), "solo")).expect("valid options");
    let cleanup = Cleanup { conn, key: bus.stream_key().to_owned() };
    (bus, cleanup)
}

/// Deletes the test's stream when dropped, whether the test passed or not.
struct Cleanup {
    conn: ConnectionManager,
    key: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let (mut conn, key) = (self.conn.clone(), std::mem::take(&mut self.key));
        // Tests run on multi-threaded runtimes: finishing the DEL here keeps
        // Redis clean even when the test panicked.
        tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(async move {
                let _: redis::RedisResult<i64> = conn.del(&key).await;
            });
        });
    }
}

fn event() -> Event {
    Event::new(&UserRegistered { user_id: UserId::new(), role: "customer".into() }, chrono::Utc::now())
}

/// `(delivery count, owner)` of one pending entry, or `None` when it is not pending.
async fn pending(conn: &mut ConnectionManager, bus: &RedisStreamBus, group: &str, id: &str) -> Option<(i64, String)> {
    let rows: Vec<(String, String, i64, i64)> = redis::cmd("XPENDING")
        .arg(bus.stream_key())
        .arg(group)
        .arg(id)
        .arg(id)
        .arg(1)
        .query_async(conn)
        .await
        .expect("XPENDING");
    rows.into_iter().next().map(|(_, owner, _, count)| (count, owner))
}

/// One `(name, value)` field of a stream entry.
type Field = (String, Vec<u8>);

fn entry_id(receipt: &str) -> &str {
    receipt.rsplit_once(':').expect("id:count receipt").0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bus_delivery_contract() {
    let (bus, _cleanup) = bus("bus-delivery").await;
    suite::bus_delivery(&bus, &bus, ACK_WAIT, &std::thread::sleep).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bus_batches_contract() {
    let (bus, _cleanup) = bus("bus-batches").await;
    suite::bus_batches(&bus, &bus, ACK_WAIT, &std::thread::sleep).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bus_competing_consumers_contract() {
    let (bus, _cleanup) = bus("bus-competing").await;
    suite::bus_competing_consumers(&bus, Arc::new(bus.clone()), &|f| {
        tokio::spawn(f);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bus_fanout_groups_contract() {
    let (bus, _cleanup) = bus("bus-fanout").await;
    let _registry = Cleanup { conn: common::connect().await, key: registry_key(&bus) };
    suite::bus_fanout_groups(&bus, &bus).await;
}

/// The sorted set of fan-out group deadlines beside the bus's stream.
fn registry_key(bus: &RedisStreamBus) -> String {
    bus.fanout_registry_key().to_owned()
}

async fn group_names(conn: &mut ConnectionManager, bus: &RedisStreamBus) -> Vec<String> {
    let groups: Vec<std::collections::HashMap<String, redis::Value>> =
        redis::cmd("XINFO").arg("GROUPS").arg(bus.stream_key()).query_async(conn).await.expect("XINFO GROUPS");
    let mut names: Vec<String> = groups
        .iter()
        .map(|g| redis::from_redis_value(g.get("name").expect("a group name").clone()).expect("a string"))
        .collect();
    names.sort();
    names
}

/// A dead process's fan-out group is destroyed when the next one opens,
/// once its idle limit has passed; a group still asking for messages and
/// the durable groups are kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_fanout_groups_are_destroyed_when_another_opens() {
    let prefix = common::fresh_prefix("bus-fanout-idle");
    let mut conn = common::connect().await;
    let dead = RedisStreamBus::new(common::connect().await, options(&prefix, "dead")).unwrap();
    let alive = RedisStreamBus::new(common::connect().await, options(&prefix, "alive")).unwrap();
    let _cleanup = Cleanup { conn: conn.clone(), key: dead.stream_key().to_owned() };
    let _registry = Cleanup { conn: conn.clone(), key: registry_key(&dead) };
    let idle = Duration::from_millis(600);
    alive.publish(&[event()]).await.unwrap();
    assert!(alive.next("durable", Duration::ZERO).await.unwrap().is_some(), "a durable group sees the history");
    dead.open_fanout("replica-dead", idle).await.unwrap();
    alive.open_fanout("replica-alive", idle).await.unwrap();
    // The live replica keeps asking, past its idle limit; the other never does.
    for _ in 0..6 {
        assert!(alive.next("replica-alive", Duration::ZERO).await.unwrap().is_none());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(group_names(&mut conn, &alive).await, ["durable", "replica-alive", "replica-dead"]);
    alive.open_fanout("replica-new", idle).await.unwrap();
    assert_eq!(
        group_names(&mut conn, &alive).await,
        ["durable", "replica-alive", "replica-new"],
        "only the idle fan-out group is destroyed"
    );
    let registered: Vec<String> = conn.zrange(registry_key(&alive), 0, -1).await.unwrap();
    assert_eq!(registered.len(), 2, "the registry lists the live fan-out groups: {registered:?}");
    alive.leave("replica-alive").await.unwrap();
    alive.leave("replica-new").await.unwrap();
    assert_eq!(group_names(&mut conn, &alive).await, ["durable"]);
    let registered: Vec<String> = conn.zrange(registry_key(&alive), 0, -1).await.unwrap();
    assert!(registered.is_empty(), "leaving removes the registry entry: {registered:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn competing_processes_share_a_group() {
    // Separate bus instances (consumer names) on separate connections, as
    // separate worker processes would be.
    let prefix = common::fresh_prefix("bus-competing-procs");
    let publisher = RedisStreamBus::new(common::connect().await, options(&prefix, "publisher")).unwrap();
    let _cleanup = Cleanup { conn: common::connect().await, key: publisher.stream_key().to_owned() };
    let mut subscribers: Vec<Arc<dyn EventSubscriber>> = Vec::new();
    for i in 0..3 {
        subscribers
            .push(Arc::new(RedisStreamBus::new(common::connect().await, options(&prefix, &format!("p{i}"))).unwrap()));
    }
    let events: Vec<Event> = (0..30).map(|_| event()).collect();
    publisher.publish(&events).await.unwrap();
    let mut tasks = Vec::new();
    for sub in subscribers {
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            while let Some(d) = sub.next("procs", Duration::ZERO).await.unwrap() {
                sub.ack(&d).await.unwrap();
                mine.push(d.event.id);
            }
            mine
        }));
    }
    let mut seen = std::collections::HashSet::new();
    for task in tasks {
        for id in task.await.unwrap() {
            assert!(seen.insert(id), "event {id} went to two processes of one group");
        }
    }
    assert_eq!(seen.len(), events.len(), "together they received every event");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_consumers_message_is_reclaimed_by_another_after_the_ack_wait() {
    let prefix = common::fresh_prefix("bus-dead-consumer");
    let mut conn = common::connect().await;
    let dying = RedisStreamBus::new(common::connect().await, options(&prefix, "dying")).unwrap();
    let survivor = RedisStreamBus::new(common::connect().await, options(&prefix, "survivor")).unwrap();
    let _cleanup = Cleanup { conn: conn.clone(), key: dying.stream_key().to_owned() };

    let e = event();
    dying.publish(std::slice::from_ref(&e)).await.unwrap();
    let first = dying.next("workers", Duration::ZERO).await.unwrap().expect("delivered");
    assert_eq!((first.event.id, first.attempt), (e.id, 1));
    let id = entry_id(first.receipt.as_str()).to_owned();
    assert_eq!(pending(&mut conn, &dying, "workers", &id).await, Some((1, "dying".into())));
    drop(dying); // never acks

    assert!(survivor.next("workers", Duration::ZERO).await.unwrap().is_none(), "not reclaimed before the ack wait");
    tokio::time::sleep(ACK_WAIT + MARGIN).await;
    let again = survivor.next("workers", Duration::ZERO).await.unwrap().expect("reclaimed after the ack wait");
    assert_eq!((again.event.id, again.attempt), (e.id, 2), "the reclaim counts the delivery");
    assert_eq!(again.event, e, "the event arrives intact");
    assert_eq!(pending(&mut conn, &survivor, "workers", &id).await, Some((2, "survivor".into())), "ownership moved");

    // The dead consumer's old receipt can't reschedule the new delivery.
    survivor.nack(&first, Duration::ZERO).await.unwrap();
    assert_eq!(pending(&mut conn, &survivor, "workers", &id).await, Some((2, "survivor".into())));
    assert!(survivor.next("workers", Duration::ZERO).await.unwrap().is_none(), "the stale nack changed nothing");

    survivor.ack(&again).await.unwrap();
    assert_eq!(pending(&mut conn, &survivor, "workers", &id).await, None, "acked entries leave the pending list");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nack_does_not_count_a_delivery_and_long_delays_are_capped_to_the_ack_wait() {
    let (bus, _cleanup) = bus("bus-nack").await;
    let mut conn = common::connect().await;
    let e = event();
    bus.publish(std::slice::from_ref(&e)).await.unwrap();

    let first = bus.next("g", Duration::ZERO).await.unwrap().unwrap();
    let id = entry_id(first.receipt.as_str()).to_owned();
    bus.nack(&first, Duration::ZERO).await.unwrap();
    assert_eq!(pending(&mut conn, &bus, "g", &id).await.map(|p| p.0), Some(1), "XCLAIM JUSTID does not count");
    let second = bus.next("g", Duration::ZERO).await.unwrap().expect("a zero-delay nack is due at once");
    assert_eq!((second.event.id, second.attempt), (e.id, 2), "exactly one more delivery");

    // Ten ack waits asked, one given.
    bus.nack(&second, ACK_WAIT * 10).await.unwrap();
    assert!(bus.next("g", Duration::ZERO).await.unwrap().is_none(), "the delay is honoured");
    tokio::time::sleep(ACK_WAIT + MARGIN).await;
    let third = bus.next("g", Duration::ZERO).await.unwrap().expect("redelivered after the capped delay");
    assert_eq!(third.attempt, 3);
    bus.ack(&third).await.unwrap();

    // Nacking an acked delivery is ignored, not an error, and does not revive it.
    bus.nack(&third, Duration::ZERO).await.unwrap();
    assert_eq!(pending(&mut conn, &bus, "g", &id).await, None);
    assert!(bus.next("g", Duration::ZERO).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_ack_still_acknowledges_the_entry() {
    let (bus, _cleanup) = bus("bus-stale-ack").await;
    let mut conn = common::connect().await;
    bus.publish(&[event()]).await.unwrap();
    let slow = bus.next("g", Duration::ZERO).await.unwrap().unwrap();
    tokio::time::sleep(ACK_WAIT + MARGIN).await;
    let current = bus.next("g", Duration::ZERO).await.unwrap().expect("reclaimed");
    assert_eq!(current.attempt, 2);
    bus.ack(&slow).await.unwrap();
    let id = entry_id(current.receipt.as_str());
    assert_eq!(pending(&mut conn, &bus, "g", id).await, None, "the handled event is acked");
    bus.ack(&current).await.expect("the current holder's ack is a no-op");
    bus.nack(&current, Duration::ZERO).await.expect("and its nack is ignored");
    tokio::time::sleep(ACK_WAIT + MARGIN).await;
    assert!(bus.next("g", Duration::ZERO).await.unwrap().is_none(), "never delivered again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_waits_for_a_publish_and_returns_none_when_the_wait_runs_out() {
    let (bus, _cleanup) = bus("bus-wait").await;
    assert!(bus.next("g", Duration::from_millis(150)).await.unwrap().is_none(), "nothing came");

    let e = event();
    let publisher = bus.clone();
    let published = e.clone();
    let late = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        publisher.publish(&[published]).await.unwrap();
    });
    let d = bus.next("g", Duration::from_secs(10)).await.unwrap().expect("the wait sees a later publish");
    assert_eq!((d.event.id, d.attempt), (e.id, 1));
    late.await.unwrap();
    bus.ack(&d).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_stays_bounded() {
    let prefix = common::fresh_prefix("bus-bounded");
    let mut conn = common::connect().await;
    let max_len = 200;
    let bus = RedisStreamBus::new(conn.clone(), RedisStreamOptions { max_len, ..options(&prefix, "solo") }).unwrap();
    let _cleanup = Cleanup { conn: conn.clone(), key: bus.stream_key().to_owned() };
    for _ in 0..(max_len * 3 / 50) {
        bus.publish(&(0..50).map(|_| event()).collect::<Vec<_>>()).await.unwrap();
    }
    let node: Vec<String> =
        redis::cmd("CONFIG").arg("GET").arg("stream-node-max-entries").query_async(&mut conn).await.unwrap();
    let slack: u64 = node.get(1).and_then(|n| n.parse().ok()).filter(|n| *n > 0).unwrap_or(100);
    let len: u64 = redis::cmd("XLEN").arg(bus.stream_key()).query_async(&mut conn).await.unwrap();
    assert!(len >= max_len, "MAXLEN ~ never trims below the bound, len {len}");
    assert!(len <= max_len + slack, "trimmed to about max_len ({max_len} + {slack} node slack), len {len}");

    // The newest events survive the trim, and a late group starts at the oldest retained.
    let last = event();
    bus.publish(std::slice::from_ref(&last)).await.unwrap();
    let mut delivered = 0;
    let mut newest = None;
    while let Some(d) = bus.next("late", Duration::ZERO).await.unwrap() {
        bus.ack(&d).await.unwrap();
        delivered += 1;
        newest = Some(d.event.id);
    }
    assert!(delivered >= max_len, "the group sees what is retained, {delivered}");
    assert_eq!(newest, Some(last.id), "in publish order, ending with the newest");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_is_one_transaction_and_entries_hold_the_envelope() {
    let (bus, _cleanup) = bus("bus-envelope").await;
    let mut conn = common::connect().await;
    bus.publish(&[]).await.expect("an empty batch is fine");
    let events: Vec<Event> = (0..3).map(|_| event()).collect();
    bus.publish(&events).await.unwrap();
    let entries: Vec<(String, Vec<Field>)> =
        redis::cmd("XRANGE").arg(bus.stream_key()).arg("-").arg("+").query_async(&mut conn).await.unwrap();
    assert_eq!(entries.len(), 3);
    for ((_, fields), e) in entries.iter().zip(&events) {
        assert_eq!(fields.len(), 1, "one field per entry");
        assert_eq!(fields[0].0, "event");
        assert_eq!(Event::from_json(&fields[0].1).unwrap(), *e, "the core's JSON, in publish order");
    }

    // A key of another type makes XADD fail: the publish reports it.
    let broken = RedisStreamBus::new(conn.clone(), options(&common::fresh_prefix("bus-wrongtype"), "solo")).unwrap();
    let _: () = conn.set(broken.stream_key(), "not a stream").await.unwrap();
    let err = broken.publish(&[event()]).await.expect_err("WRONGTYPE");
    let _: i64 = conn.del(broken.stream_key()).await.unwrap();
    assert!(matches!(err, Error::Unavailable { .. }), "driver errors are Unavailable: {err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_entry_is_acknowledged_and_skipped() {
    let (bus, _cleanup) = bus("bus-foreign").await;
    let mut conn = common::connect().await;
    let garbage: String = redis::cmd("XADD")
        .arg(bus.stream_key())
        .arg("*")
        .arg("event")
        .arg("{not json")
        .query_async(&mut conn)
        .await
        .unwrap();
    let no_field: String =
        redis::cmd("XADD").arg(bus.stream_key()).arg("*").arg("other").arg("x").query_async(&mut conn).await.unwrap();
    let e = event();
    bus.publish(std::slice::from_ref(&e)).await.unwrap();
    let d = bus.next("g", Duration::ZERO).await.unwrap().expect("the real event");
    assert_eq!(d.event.id, e.id);
    assert_eq!(pending(&mut conn, &bus, "g", &garbage).await, None, "the malformed entry was acked");
    assert_eq!(pending(&mut conn, &bus, "g", &no_field).await, None, "the entry without an envelope was acked");
    bus.ack(&d).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_options_and_foreign_receipts_are_rejected() {
    let conn = common::connect().await;
    let base = options("bazaar-test:bus-options:", "solo");
    for (field, bad) in [
        ("ack_wait", RedisStreamOptions { ack_wait: Duration::from_micros(999), ..base.clone() }),
        ("max_len", RedisStreamOptions { max_len: 0, ..base.clone() }),
        ("consumer_name", RedisStreamOptions { consumer_name: String::new(), ..base.clone() }),
        ("poll_interval", RedisStreamOptions { poll_interval: Duration::ZERO, ..base.clone() }),
    ] {
        let err = RedisStreamBus::new(conn.clone(), bad).expect_err(field);
        assert_eq!(err.kind(), ErrorKind::Invalid, "{field}: {err}");
        assert!(format!("{err:?}").contains(field), "the error names {field}: {err:?}");
    }

    let (bus, _cleanup) = bus("bus-receipts").await;
    bus.ping().await.expect("ping");
    bus.publish(&[event()]).await.unwrap();
    let mut d = bus.next("g", Duration::ZERO).await.unwrap().unwrap();
    d.receipt = bazaar_core::events::Receipt::new("42");
    assert_eq!(bus.ack(&d).await.unwrap_err().kind(), ErrorKind::Invalid);
    assert_eq!(bus.nack(&d, Duration::ZERO).await.unwrap_err().kind(), ErrorKind::Invalid);
}
