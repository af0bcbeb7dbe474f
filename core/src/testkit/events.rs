//! Contract suites for the event ports ([`OutboxStore`], [`EventPublisher`] +
//! [`EventSubscriber`], [`Inbox`], [`DeadLetterStore`]): every adapter runs
//! these.
//!
//! Each function takes fresh, empty adapters. The outbox suites take an
//! `append` function that commits events to the outbox the way the
//! adapter's repositories do. The bus suite takes the adapter's ack wait and
//! an `advance` function that moves the adapter's clock (a manual clock in
//! memory; a sleep for brokers on real time, with a short ack wait). The
//! concurrency suites take a `spawn` function that runs a future as a task
//! on a multi-threaded runtime (e.g. `&|f| { tokio::spawn(f); }`).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::DateTime;
use futures::future::BoxFuture;

use crate::clock::Timestamp;
use crate::events::{
    DeadLetter, DeadLetterId, DeadLetterStore, Delivery, Event, EventPublisher, EventSubscriber, Inbox, OutboxStore,
    UserRegistered,
};
use crate::ids::{EventId, UserId};

/// Runs a future as a task on a multi-threaded runtime.
pub type Spawn<'a> = &'a (dyn Fn(BoxFuture<'static, ()>) + Send + Sync);

/// Commits events to the outbox under test.
pub type Append<'a> = &'a (dyn Fn(Vec<Event>) -> BoxFuture<'static, ()> + Send + Sync);

fn t0() -> Timestamp {
    DateTime::from_timestamp(1_700_000_000, 0).expect("in range")
}

fn secs(s: i64) -> chrono::Duration {
    chrono::Duration::seconds(s)
}

fn event() -> Event {
    Event::new(&UserRegistered { user_id: UserId::new(), role: "customer".into() }, t0())
}

fn ids(events: &[Event]) -> Vec<EventId> {
    events.iter().map(|e| e.id).collect()
}

/// Claims hand out unpublished entries oldest first under a lease; leased
/// entries are skipped until the lease ends or is released; published
/// entries never come back.
pub async fn outbox_claims(store: &dyn OutboxStore, append: Append<'_>) {
    let events = vec![event(), event(), event()];
    append(events.clone()).await;

    let first = store.claim(2, t0(), t0() + secs(30)).await.expect("claim");
    assert_eq!(
        first.iter().map(|e| e.event.id).collect::<Vec<_>>(),
        ids(&events[..2]),
        "claim takes the oldest first, up to the limit"
    );
    assert!(first[0].seq < first[1].seq, "seq grows with commit order");
    assert_eq!(first[0].event, events[0], "the event comes back intact");

    let second = store.claim(10, t0(), t0() + secs(30)).await.expect("claim");
    assert_eq!(second.iter().map(|e| e.event.id).collect::<Vec<_>>(), ids(&events[2..]), "leased entries are skipped");
    assert!(store.claim(10, t0() + secs(29), t0() + secs(60)).await.expect("claim").is_empty(), "everything is leased");

    store.release(&[second[0].seq]).await.expect("release");
    let again = store.claim(10, t0() + secs(1), t0() + secs(31)).await.expect("claim");
    assert_eq!(
        again.iter().map(|e| e.event.id).collect::<Vec<_>>(),
        ids(&events[2..]),
        "a released entry is claimable at once"
    );

    store.mark_published(&[first[0].seq]).await.expect("mark published");
    store.mark_published(&[first[0].seq]).await.expect("marking twice is fine");
    store.mark_published(&[u64::MAX]).await.expect("unknown seqs are ignored");
    let expired = store.claim(10, t0() + secs(31), t0() + secs(61)).await.expect("claim");
    assert_eq!(
        expired.iter().map(|e| e.event.id).collect::<Vec<_>>(),
        ids(&events[1..]),
        "expired leases are claimable; published entries are not"
    );

    store.release(&[first[0].seq]).await.expect("release");
    store.mark_published(&expired.iter().map(|e| e.seq).collect::<Vec<_>>()).await.expect("mark published");
    assert!(
        store.claim(10, t0() + secs(1_000), t0() + secs(1_030)).await.expect("claim").is_empty(),
        "releasing a published entry does not unpublish it"
    );

    let late = event();
    append(vec![late.clone()]).await;
    let tail = store.claim(10, t0() + secs(1_000), t0() + secs(1_030)).await.expect("claim");
    assert_eq!(ids(&tail.into_iter().map(|e| e.event).collect::<Vec<_>>()), vec![late.id], "new entries keep coming");
}

/// Several relays claiming at once never hold the same entry, and together
/// they claim everything.
pub async fn outbox_claims_race(store: Arc<dyn OutboxStore>, append: Append<'_>, spawn: Spawn<'_>) {
    const EVENTS: usize = 60;
    const RELAYS: usize = 6;
    append((0..EVENTS).map(|_| event()).collect()).await;
    let mut done = Vec::new();
    for _ in 0..RELAYS {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let store = store.clone();
        spawn(Box::pin(async move {
            let mut mine = Vec::new();
            loop {
                let batch = store.claim(4, t0(), t0() + secs(3_600)).await.expect("claim");
                if batch.is_empty() {
                    break;
                }
                mine.extend(batch.into_iter().map(|e| e.seq));
            }
            let _ = tx.send(mine);
        }));
        done.push(rx);
    }
    let mut seen = HashSet::new();
    for rx in done {
        for seq in rx.await.expect("relay task finished") {
            assert!(seen.insert(seq), "entry {seq} was handed to two relays at once");
        }
    }
    assert_eq!(seen.len(), EVENTS, "the relays together claimed every entry");
}

async fn take(sub: &dyn EventSubscriber, group: &str) -> Option<Delivery> {
    sub.next(group, Duration::ZERO).await.expect("next")
}

/// Publish → consume → ack; fan-out to every group; nack → redelivered
/// after the delay with `attempt + 1`; unacked → redelivered after the ack
/// wait; stale nacks are ignored; nothing is lost or handed out twice.
pub async fn bus_delivery(
    publisher: &dyn EventPublisher,
    subscriber: &dyn EventSubscriber,
    ack_wait: Duration,
    advance: &(dyn Fn(Duration) + Send + Sync),
) {
    let (e1, e2) = (event(), event());
    publisher.publish(&[e1.clone(), e2.clone()]).await.expect("publish");

    // One group: in publish order, each once, then nothing while pending.
    let d1 = take(subscriber, "group-a").await.expect("first event delivered");
    let d2 = take(subscriber, "group-a").await.expect("second event delivered");
    assert_eq!((d1.event.id, d1.attempt, d1.consumer.as_str()), (e1.id, 1, "group-a"), "first delivery");
    assert_eq!(d1.event, e1, "the event arrives intact");
    assert_eq!((d2.event.id, d2.attempt), (e2.id, 1), "second delivery in publish order");
    assert!(take(subscriber, "group-a").await.is_none(), "pending messages are not handed to another consumer");
    subscriber.ack(&d1).await.expect("ack");
    subscriber.ack(&d1).await.expect("acking twice is fine");
    subscriber.ack(&d2).await.expect("ack");

    // A group created after the publish still sees everything.
    let b1 = take(subscriber, "group-b").await.expect("fan-out to a second group");
    let b2 = take(subscriber, "group-b").await.expect("fan-out to a second group");
    assert_eq!((b1.event.id, b2.event.id), (e1.id, e2.id), "every group sees every event");

    // nack with delay: not before the delay, then attempt 2.
    let delay = ack_wait / 3;
    subscriber.nack(&b1, delay).await.expect("nack");
    assert!(take(subscriber, "group-b").await.is_none(), "a nacked message waits out its delay");
    advance(delay + Duration::from_millis(50));
    let b1_again = take(subscriber, "group-b").await.expect("nacked message redelivered");
    assert_eq!((b1_again.event.id, b1_again.attempt), (e1.id, 2), "redelivery counts the attempt");
    subscriber.nack(&b1, Duration::ZERO).await.expect("a stale nack is not an error");
    assert!(take(subscriber, "group-b").await.is_none(), "a stale nack does not reschedule the current delivery");
    subscriber.ack(&b1_again).await.expect("ack");

    // Unacked: b2 comes back once the ack wait has passed.
    advance(ack_wait + Duration::from_millis(50));
    let b2_again = take(subscriber, "group-b").await.expect("unacked message redelivered after the ack wait");
    assert_eq!((b2_again.event.id, b2_again.attempt), (e2.id, 2), "unacked redelivery counts the attempt");
    subscriber.ack(&b2_again).await.expect("ack");

    // Acked messages never come back, in either group.
    advance(ack_wait + Duration::from_millis(50));
    assert!(take(subscriber, "group-a").await.is_none(), "acked messages are gone");
    assert!(take(subscriber, "group-b").await.is_none(), "acked messages are gone");

    // New events reach existing groups.
    let e3 = event();
    publisher.publish(std::slice::from_ref(&e3)).await.expect("publish");
    let a3 = take(subscriber, "group-a").await.expect("later events reach existing groups");
    assert_eq!((a3.event.id, a3.attempt), (e3.id, 1), "later event");
    subscriber.ack(&a3).await.expect("ack");
}

/// Batches: `next_batch` hands out at most `max`, in publish order, each
/// message once (the rules of `next` hold per message); `ack_all` acks
/// them all, so none comes back after the ack wait.
pub async fn bus_batches(
    publisher: &dyn EventPublisher,
    subscriber: &dyn EventSubscriber,
    ack_wait: Duration,
    advance: &(dyn Fn(Duration) + Send + Sync),
) {
    let events: Vec<Event> = (0..5).map(|_| event()).collect();
    publisher.publish(&events).await.expect("publish");
    assert!(subscriber.next_batch("batches", 0, Duration::ZERO).await.expect("next_batch").is_empty(), "max 0");

    let mut taken: Vec<Delivery> = Vec::new();
    for _ in 0..50 {
        if taken.len() == events.len() {
            break;
        }
        let batch = subscriber.next_batch("batches", 2, Duration::from_millis(200)).await.expect("next_batch");
        assert!(batch.len() <= 2, "a batch of {} exceeds its max of 2", batch.len());
        taken.extend(batch);
    }
    let ids: Vec<_> = taken.iter().map(|d| d.event.id).collect();
    let published: Vec<_> = events.iter().map(|e| e.id).collect();
    assert_eq!(ids, published, "every event once, in publish order");
    assert!(taken.iter().all(|d| d.attempt == 1 && d.consumer == "batches"), "first deliveries of this group");
    assert!(
        subscriber.next_batch("batches", 8, Duration::ZERO).await.expect("next_batch").is_empty(),
        "pending messages are not handed out again"
    );

    subscriber.ack_all(&taken).await.expect("ack_all");
    subscriber.ack_all(&taken).await.expect("acking twice is fine");
    subscriber.ack_all(&[]).await.expect("acking nothing");
    advance(ack_wait + Duration::from_millis(50));
    assert!(
        subscriber.next_batch("batches", 8, Duration::ZERO).await.expect("next_batch").is_empty(),
        "acked messages are gone"
    );
}

/// Fan-out groups: a group opened with `open_fanout` sees what is
/// published from then on, not the history; opening it again changes
/// nothing; `leave` removes it with everything it held (a group opened
/// again under that name starts afresh); leaving a missing group is fine.
pub async fn bus_fanout_groups(publisher: &dyn EventPublisher, subscriber: &dyn EventSubscriber) {
    const GROUP: &str = "fanout";
    const IDLE: Duration = Duration::from_secs(60);
    let before = event();
    publisher.publish(std::slice::from_ref(&before)).await.expect("publish");
    subscriber.open_fanout(GROUP, IDLE).await.expect("open a fan-out group");
    subscriber.open_fanout(GROUP, IDLE).await.expect("opening it again changes nothing");
    let after = event();
    publisher.publish(std::slice::from_ref(&after)).await.expect("publish");
    let d = take(subscriber, GROUP).await.expect("the event published after opening");
    assert_eq!((d.event.id, d.attempt), (after.id, 1), "a fan-out group starts after the history");
    assert!(take(subscriber, GROUP).await.is_none(), "nothing else: the earlier event is not delivered");

    // Left with a message due again: a group opened anew must not see it.
    subscriber.nack(&d, Duration::ZERO).await.expect("nack");
    subscriber.leave(GROUP).await.expect("leave");
    subscriber.leave(GROUP).await.expect("leaving a missing group is fine");
    subscriber.open_fanout(GROUP, IDLE).await.expect("open the group again");
    let later = event();
    publisher.publish(std::slice::from_ref(&later)).await.expect("publish");
    let fresh = take(subscriber, GROUP).await.expect("the event published after opening again");
    assert_eq!((fresh.event.id, fresh.attempt), (later.id, 1), "the left group's messages are gone with it");
    subscriber.ack(&fresh).await.expect("ack");
    assert!(take(subscriber, GROUP).await.is_none(), "nothing else");
    subscriber.leave(GROUP).await.expect("leave");
}

/// Many consumers of one group pulling at once: each message goes to
/// exactly one of them.
pub async fn bus_competing_consumers(
    publisher: &dyn EventPublisher,
    subscriber: Arc<dyn EventSubscriber>,
    spawn: Spawn<'_>,
) {
    const EVENTS: usize = 40;
    const CONSUMERS: usize = 8;
    let events: Vec<Event> = (0..EVENTS).map(|_| event()).collect();
    publisher.publish(&events).await.expect("publish");
    let mut done = Vec::new();
    for _ in 0..CONSUMERS {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let subscriber = subscriber.clone();
        spawn(Box::pin(async move {
            let mut mine = Vec::new();
            while let Some(d) = subscriber.next("competing", Duration::ZERO).await.expect("next") {
                subscriber.ack(&d).await.expect("ack");
                mine.push(d.event.id);
            }
            let _ = tx.send(mine);
        }));
        done.push(rx);
    }
    let mut seen = HashSet::new();
    for rx in done {
        for id in rx.await.expect("consumer task finished") {
            assert!(seen.insert(id), "event {id} was delivered to two consumers of one group");
        }
    }
    assert_eq!(seen.len(), EVENTS, "the consumers together received every event");
}

/// Marks are per (consumer, event); only the first mark is "new".
pub async fn inbox_marks(inbox: &dyn Inbox) {
    let (a, b) = (EventId::new(), EventId::new());
    assert!(!inbox.is_processed("g/h", a).await.expect("is_processed"), "fresh inbox knows nothing");
    assert!(inbox.mark_processed("g/h", a).await.expect("mark"), "first mark is new");
    assert!(!inbox.mark_processed("g/h", a).await.expect("mark"), "second mark is a duplicate");
    assert!(inbox.is_processed("g/h", a).await.expect("is_processed"), "marked event is processed");
    assert!(!inbox.is_processed("g/other", a).await.expect("is_processed"), "marks are per consumer");
    assert!(!inbox.is_processed("g/h", b).await.expect("is_processed"), "marks are per event");
    assert!(inbox.mark_processed("g/other", a).await.expect("mark"), "another consumer marks independently");

    // The batch forms agree with the single ones.
    let c = EventId::new();
    let keys = vec![("g/h".to_owned(), a), ("g/h".to_owned(), b), ("g/x".to_owned(), a), ("g/h".to_owned(), c)];
    assert_eq!(inbox.processed_among(&keys).await.expect("processed_among"), [true, false, false, false]);
    assert!(inbox.processed_among(&[]).await.expect("processed_among").is_empty(), "no keys, no answers");
    // Already recorded pairs and repeats within the batch are fine.
    let marks = vec![("g/h".to_owned(), a), ("g/h".to_owned(), b), ("g/x".to_owned(), a), ("g/x".to_owned(), a)];
    inbox.mark_all_processed(&marks).await.expect("mark_all_processed");
    inbox.mark_all_processed(&[]).await.expect("mark nothing");
    assert_eq!(inbox.processed_among(&keys).await.expect("processed_among"), [true, true, true, false]);
    assert!(!inbox.mark_processed("g/h", b).await.expect("mark"), "a batch mark counts as the first mark");
}

/// Concurrent marks of one pair: exactly one is new.
pub async fn inbox_marks_race(inbox: Arc<dyn Inbox>, spawn: Spawn<'_>) {
    let id = EventId::new();
    let mut done = Vec::new();
    for _ in 0..16 {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let inbox = inbox.clone();
        spawn(Box::pin(async move {
            let _ = tx.send(inbox.mark_processed("race/h", id).await.expect("mark"));
        }));
        done.push(rx);
    }
    let mut new = 0;
    for rx in done {
        new += usize::from(rx.await.expect("task finished"));
    }
    assert_eq!(new, 1, "exactly one concurrent mark is new");
}

fn letter(consumer: &str, event: Event, failed_at: Timestamp) -> DeadLetter {
    DeadLetter {
        id: DeadLetterId::new(),
        consumer: consumer.into(),
        event,
        error: "handler: boom".into(),
        attempts: 5,
        failed_at,
    }
}

/// put / get / list (oldest first, paged) / count / remove; one letter per
/// (consumer, event).
pub async fn dead_letters(store: &dyn DeadLetterStore) {
    assert_eq!(store.count().await.expect("count"), 0, "fresh store is empty");
    let older = letter("worker", event(), t0());
    let newer = letter("worker", event(), t0() + secs(10));
    let id_newer = store.put(newer.clone()).await.expect("put");
    let id_older = store.put(older.clone()).await.expect("put");
    assert_eq!((id_newer, id_older), (newer.id, older.id), "put returns the new letter's id");
    assert_eq!(store.get(older.id).await.expect("get"), Some(older.clone()), "get returns the letter intact");
    assert_eq!(store.count().await.expect("count"), 2, "two letters");
    let listed = store.list(0, 10).await.expect("list");
    assert_eq!(listed.iter().map(|l| l.id).collect::<Vec<_>>(), vec![older.id, newer.id], "oldest first");
    assert_eq!(store.list(1, 10).await.expect("list").len(), 1, "offset skips");
    assert_eq!(store.list(0, 1).await.expect("list")[0].id, older.id, "limit caps");

    let again = DeadLetter {
        id: DeadLetterId::new(),
        error: "handler: worse".into(),
        attempts: 6,
        failed_at: t0() + secs(20),
        ..older.clone()
    };
    assert_eq!(store.put(again).await.expect("put"), older.id, "re-parking keeps the existing letter's id");
    let stored = store.get(older.id).await.expect("get").expect("still there");
    assert_eq!(
        (stored.error.as_str(), stored.attempts),
        ("handler: worse", 6),
        "re-parking updates error and attempts"
    );
    assert_eq!(store.count().await.expect("count"), 2, "still one letter per (consumer, event)");
    let other_consumer = DeadLetter { id: DeadLetterId::new(), consumer: "mailer".into(), ..older.clone() };
    assert_eq!(
        store.put(other_consumer.clone()).await.expect("put"),
        other_consumer.id,
        "another consumer gets its own letter"
    );

    assert!(store.remove(older.id).await.expect("remove"), "remove reports an existing letter");
    assert!(!store.remove(older.id).await.expect("remove"), "remove reports a missing letter");
    assert_eq!(store.get(older.id).await.expect("get"), None, "removed letters are gone");
    assert_eq!(store.count().await.expect("count"), 2, "the others stay");
}

/// Records what it publishes; fails while `down` is set.
#[derive(Debug, Default)]
struct Recorder {
    published: std::sync::Mutex<Vec<Event>>,
    down: std::sync::Mutex<bool>,
}

#[async_trait::async_trait]
impl EventPublisher for Recorder {
    async fn publish(&self, events: &[Event]) -> crate::Result<()> {
        if *self.down.lock().unwrap() {
            return Err(crate::Error::unavailable("bus", std::io::Error::other("bus is down")));
        }
        self.published.lock().unwrap().extend_from_slice(events);
        Ok(())
    }
}

/// The core's outbox [`Relay`](crate::events::Relay) over a backend's
/// outbox: commits five `user.registered` events with user inserts through
/// `users`, then relays them from `outbox` (the same backend's) to a
/// recording publisher.
///
/// Asserts that a relay pass whose publish fails reports the error and
/// publishes nothing; that once the publisher is back, draining relays all
/// five (the failed batch was released, not left leased); that they are
/// published in commit order, each exactly once; and that a further drain
/// finds nothing (published entries never come back).
///
/// # Panics
/// When any of the above does not hold, or a port call fails.
pub async fn relay_in_commit_order_after_a_failed_publish(
    users: &dyn crate::auth::UserRepository,
    outbox: Arc<dyn OutboxStore>,
) {
    use crate::auth::{Email, Role, User};
    use crate::events::Relay;

    let clock = Arc::new(crate::clock::ManualClock::at_epoch_secs(1_700_000_000));
    let mut expected = Vec::new();
    for i in 0..5 {
        let user = User {
            id: UserId::new(),
            email: Email::parse(&format!("user{i}@example.com")).unwrap(),
            name: format!("User {i}"),
            role: Role::Customer,
            password_hash: "$argon2id$x".into(),
            created_at: t0(),
        };
        let event = Event::new(&UserRegistered { user_id: user.id, role: "customer".into() }, user.created_at);
        users.insert(&user, std::slice::from_ref(&event)).await.unwrap();
        expected.push(event);
    }

    let bus = Arc::new(Recorder::default());
    let relay = Relay::new(outbox, bus.clone(), clock);
    *bus.down.lock().unwrap() = true;
    assert!(relay.relay_once(10).await.is_err(), "a failed publish is reported");
    assert!(bus.published.lock().unwrap().is_empty());

    *bus.down.lock().unwrap() = false;
    assert_eq!(relay.drain(2).await.unwrap(), 5, "the failed batch was released and is relayed now");
    assert_eq!(*bus.published.lock().unwrap(), expected, "commit order, each event once");
    assert_eq!(relay.drain(10).await.unwrap(), 0, "published entries never come back");
}
