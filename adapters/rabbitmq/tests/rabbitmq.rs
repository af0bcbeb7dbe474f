//! `RabbitBus` against a real RabbitMQ: the core's bus contract suites
//! (with a prefetch of 1 and of a batch), fan-out and routes, retries with
//! delay and their attempt counts, redeliveries ahead of a backlog,
//! publisher confirms, the dead-letter queue, consumer take-over, receipts
//! and setup errors. The reconnection test is in `reconnect.rs`.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bazaar_core::ErrorKind;
use bazaar_core::events::{Delivery, Event, EventPublisher, EventSubscriber, Receipt};
use bazaar_core::testkit::events::{bus_batches, bus_competing_consumers, bus_delivery, bus_fanout_groups};
use bazaar_rabbitmq::lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions};
use bazaar_rabbitmq::lapin::types::{FieldTable, ShortString};
use bazaar_rabbitmq::lapin::{BasicProperties, Connection, ConnectionProperties};
use bazaar_rabbitmq::{RabbitBus, RabbitOptions};
use common::{TestBus, event, fresh, sleep};

/// Short, so redelivery tests take seconds. A third of it (the contract's
/// nack delay) is a step of the default retry ladder, 500 ms.
const ACK_WAIT: Duration = Duration::from_millis(1_500);

/// The ack wait of tests that never wait for one.
const LONG_ACK_WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bus_delivery_contract() {
    let t = TestBus::new(ACK_WAIT).await;
    bus_delivery(&*t.bus, &*t.bus, ACK_WAIT, &sleep).await;
    t.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bus_batches_contract() {
    let t = TestBus::new(ACK_WAIT).await;
    bus_batches(&*t.bus, &*t.bus, ACK_WAIT, &sleep).await;
    t.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bus_competing_consumers_contract() {
    let t = TestBus::new(LONG_ACK_WAIT).await;
    let subscriber: Arc<dyn EventSubscriber> = t.bus.clone();
    bus_competing_consumers(&*t.bus, subscriber, &|f| {
        tokio::spawn(f);
    })
    .await;
    t.cleanup().await;
}

/// The same contracts with a prefetch of one message per waiting consumer.
fn single(ack_wait: Duration) -> RabbitOptions {
    RabbitOptions { prefetch: 1, ..fresh(ack_wait) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bus_delivery_contract_with_a_prefetch_of_one() {
    let t = TestBus::with_options(single(ACK_WAIT)).await;
    bus_delivery(&*t.bus, &*t.bus, ACK_WAIT, &sleep).await;
    t.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bus_batches_contract_with_a_prefetch_of_one() {
    let t = TestBus::with_options(single(ACK_WAIT)).await;
    bus_batches(&*t.bus, &*t.bus, ACK_WAIT, &sleep).await;
    t.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bus_competing_consumers_contract_with_a_prefetch_of_one() {
    let t = TestBus::with_options(single(LONG_ACK_WAIT)).await;
    let subscriber: Arc<dyn EventSubscriber> = t.bus.clone();
    bus_competing_consumers(&*t.bus, subscriber, &|f| {
        tokio::spawn(f);
    })
    .await;
    t.cleanup().await;
}

/// Takes every delivery `group` has now, acking each.
async fn drain(bus: &RabbitBus, group: &str) -> Vec<Delivery> {
    let mut got = Vec::new();
    loop {
        let batch = bus.next_batch(group, 16, Duration::ZERO).await.expect("next_batch");
        if batch.is_empty() {
            return got;
        }
        bus.ack_all(&batch).await.expect("ack_all");
        got.extend(batch);
    }
}

fn ids(deliveries: &[Delivery]) -> Vec<bazaar_core::ids::EventId> {
    deliveries.iter().map(|d| d.event.id).collect()
}

/// Groups set up before the publish (workers started first) and after it
/// each get every event once, in publish order; a group routed to other
/// event types gets none, also from the archive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_group_gets_every_event_it_is_routed() {
    let routes = BTreeMap::from([("orders-only".to_owned(), vec!["order.*".to_owned()])]);
    let t = TestBus::with_options(RabbitOptions { routes, ..fresh(LONG_ACK_WAIT) }).await;
    for early in ["early-1", "early-2", "orders-only"] {
        assert!(t.bus.next(early, Duration::ZERO).await.expect("next").is_none(), "nothing published yet");
    }
    let events: Vec<Event> = (0..20).map(|_| event()).collect();
    t.bus.publish(&events).await.expect("publish");
    let want: Vec<_> = events.iter().map(|e| e.id).collect();
    for group in ["early-1", "early-2", "late-1", "late-2"] {
        let got = drain(&t.bus, group).await;
        assert_eq!(ids(&got), want, "group {group}: every event once, in publish order");
        assert!(got.iter().all(|d| d.attempt == 1 && d.consumer == group), "group {group}: first deliveries");
    }
    assert!(drain(&t.bus, "orders-only").await.is_empty(), "user.registered is not routed to order.*");
    // A second process sees the groups as set up: no second copy.
    let other = t.another().await;
    assert!(drain(&other, "late-1").await.is_empty(), "the archive is copied once per group");
    t.cleanup().await;
}

/// A nack with delay is not redelivered before the (rounded up) delay, and
/// each redelivery counts the attempt; a nack without delay comes back at
/// once, counted too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nacks_with_delay_come_back_after_it_with_the_attempt_counted() {
    let t = TestBus::new(LONG_ACK_WAIT).await;
    let e = event();
    t.bus.publish(std::slice::from_ref(&e)).await.expect("publish");
    let mut d = t.bus.next("retries", Duration::ZERO).await.expect("next").expect("delivered");
    assert_eq!((d.event.id, d.attempt), (e.id, 1));
    for (attempt, delay) in [(2, Duration::from_millis(120)), (3, Duration::from_millis(250)), (4, Duration::ZERO)] {
        let nacked_at = tokio::time::Instant::now();
        t.bus.nack(&d, delay).await.expect("nack");
        let step = t.bus.options().retry_delay_for(delay);
        if !delay.is_zero() {
            assert!(t.bus.next("retries", Duration::ZERO).await.expect("next").is_none(), "waits out its delay");
        }
        d = t.bus.next("retries", Duration::from_secs(10)).await.expect("next").expect("redelivered");
        assert_eq!((d.event.id, d.attempt), (e.id, attempt), "redelivery {attempt}");
        assert_eq!(d.event, e, "intact");
        if !delay.is_zero() {
            assert!(
                nacked_at.elapsed() >= step,
                "redelivered after {:?}, before its step {step:?}",
                nacked_at.elapsed()
            );
        }
    }
    t.bus.ack(&d).await.expect("ack");
    assert!(t.bus.next("retries", Duration::from_millis(300)).await.expect("next").is_none(), "acked: gone");
    t.cleanup().await;
}

/// A redelivery is handed out before the group's backlog of new messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redeliveries_come_before_the_backlog() {
    let t = TestBus::new(LONG_ACK_WAIT).await;
    let events: Vec<Event> = (0..5).map(|_| event()).collect();
    t.bus.publish(&events).await.expect("publish");
    let first = t.bus.next("backlog", Duration::ZERO).await.expect("next").expect("first");
    assert_eq!(first.event.id, events[0].id);
    t.bus.nack(&first, Duration::from_millis(100)).await.expect("nack");
    sleep(Duration::from_millis(600));
    let again = t.bus.next("backlog", Duration::ZERO).await.expect("next").expect("delivered");
    assert_eq!((again.event.id, again.attempt), (events[0].id, 2), "the redelivery, ahead of four new ones");
    t.bus.ack(&again).await.expect("ack");
    let rest = drain(&t.bus, "backlog").await;
    assert_eq!(ids(&rest), events[1..].iter().map(|e| e.id).collect::<Vec<_>>(), "then the backlog in order");
    t.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bus_fanout_groups_contract() {
    let t = TestBus::new(ACK_WAIT).await;
    bus_fanout_groups(&*t.bus, &*t.bus).await;
    t.cleanup().await;
}

/// A process that dies leaves its fan-out group's queues behind; the broker
/// deletes them once nobody has read them for the idle limit, while a
/// durable group's queues stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broker_deletes_an_idle_fanout_groups_queues() {
    let t = TestBus::new(LONG_ACK_WAIT).await;
    assert!(t.bus.next("durable", Duration::ZERO).await.expect("next").is_none(), "durable group set up");
    t.bus.open_fanout("replica-gone", Duration::from_secs(1)).await.expect("open");
    let connection = Connection::connect(&common::amqp_url(), tokio_properties()).await.expect("inspector");
    let passive = QueueDeclareOptions { passive: true, ..QueueDeclareOptions::default() };
    let exists = |queue: String| {
        let connection = &connection;
        async move {
            // A passive declare of a missing queue closes its channel: one channel per look.
            let channel = connection.create_channel().await.expect("channel");
            channel.queue_declare(&queue, passive, FieldTable::default()).await.is_ok()
        }
    };
    let (work, redelivery) =
        (t.bus.group_queue("replica-gone"), format!("{}.redelivery", t.bus.group_queue("replica-gone")));
    assert!(exists(work.clone()).await && exists(redelivery.clone()).await, "both queues of the fan-out group exist");
    let mut gone = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if !exists(work.clone()).await && !exists(redelivery.clone()).await {
            gone = true;
            break;
        }
    }
    assert!(gone, "the broker deletes the idle fan-out group's queues");
    assert!(exists(t.bus.group_queue("durable")).await, "the durable group's queue stays");
    t.cleanup().await;
}

/// `publish` returns once the broker confirmed: the messages are in the
/// queue when it returns, and a message the broker refuses (a queue at
/// its length limit with `reject-publish`) fails the publish.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_returns_only_what_the_broker_confirmed() {
    let options = RabbitOptions { reconnect_timeout: Duration::from_millis(500), ..fresh(LONG_ACK_WAIT) };
    let t = TestBus::with_options(options).await;
    assert!(t.bus.next("confirmed", Duration::ZERO).await.expect("next").is_none(), "group set up");
    let queue = t.bus.group_queue("confirmed");
    let connection = Connection::connect(&common::amqp_url(), tokio_properties()).await.expect("inspector");
    let inspector = connection.create_channel().await.expect("channel");
    let passive = QueueDeclareOptions { passive: true, ..QueueDeclareOptions::default() };
    for round in 1..=5_u32 {
        let events: Vec<Event> = (0..50).map(|_| event()).collect();
        t.bus.publish(&events).await.expect("publish");
        let stats = inspector.queue_declare(&queue, passive, FieldTable::default()).await.expect("passive declare");
        assert_eq!(stats.message_count(), round * 50, "every confirmed message is in the queue on return");
    }

    // A policy caps the queue at what it holds: the broker nacks the next publish.
    let policy = format!("bztest-cap-{}", uuid::Uuid::now_v7().simple());
    let pattern = format!("^{}$", regex_escape(&queue));
    rabbitmqctl(&["set_policy", "--apply-to", "queues", &policy, &pattern, r#"{"max-length":250}"#]);
    let refused = wait_for_refusal(&t.bus).await;
    rabbitmqctl(&["clear_policy", &policy]);
    assert_eq!(refused.kind(), ErrorKind::Unavailable, "{refused}");
    let _ = connection.close(200, "done").await;
    t.cleanup().await;
}

/// Publishes until the broker refuses (the policy takes a moment to apply).
async fn wait_for_refusal(bus: &RabbitBus) -> bazaar_core::Error {
    for _ in 0..50 {
        if let Err(e) = bus.publish(&[event()]).await {
            return e;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the broker never refused a publish to a full reject-publish queue");
}

fn regex_escape(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c.to_string() } else { format!("\\{c}") }).collect()
}

fn rabbitmqctl(args: &[&str]) {
    let out = std::process::Command::new("rabbitmqctl").args(args).output().expect("run rabbitmqctl (is it on PATH?)");
    assert!(out.status.success(), "rabbitmqctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn tokio_properties() -> ConnectionProperties {
    ConnectionProperties::default()
        .with_executor(tokio_executor_trait::Tokio::current())
        .with_reactor(tokio_reactor_trait::Tokio::current())
}

/// Publishes `payload` to the test exchange on a connection of its own.
async fn publish_raw(options: &RabbitOptions, routing_key: &str, payload: &[u8], message_id: &str) {
    let connection = Connection::connect(&common::amqp_url(), tokio_properties()).await.expect("connect");
    let channel = connection.create_channel().await.expect("channel");
    channel.confirm_select(ConfirmSelectOptions::default()).await.expect("confirm mode");
    let properties = BasicProperties::default().with_message_id(ShortString::from(message_id));
    let confirm = channel
        .basic_publish(&options.exchange, routing_key, BasicPublishOptions::default(), payload, properties)
        .await
        .expect("publish");
    assert!(confirm.await.expect("confirm").is_ack(), "the broker took it");
    let _ = connection.close(200, "done").await;
}

/// What no consumer can use lands in the dead-letter queue: a message that
/// is not an event, and an event over the delivery limit. Listing leaves
/// them there; replaying one moves it back to its group with a fresh
/// attempt count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dead_letter_queue_lists_and_replays() {
    let t = TestBus::with_options(RabbitOptions { delivery_limit: Some(1), ..fresh(LONG_ACK_WAIT) }).await;
    assert!(t.bus.next("dlq", Duration::ZERO).await.expect("next").is_none(), "group set up");
    publish_raw(&t.options, "junk.type", b"not an event", "junk-1").await;
    let e = event();
    t.bus.publish(std::slice::from_ref(&e)).await.expect("publish");

    // Consumers that die holding the event (their connection closed, so
    // the broker requeues it): a limit of one failed delivery lets one
    // more through, and the second death dead-letters it.
    for attempt in 1..=2 {
        let dying = t.another().await;
        let d = dying.next("dlq", Duration::from_secs(5)).await.expect("next").expect("the event, past the junk");
        assert_eq!((d.event.id, d.attempt), (e.id, attempt));
        dying.close().await;
    }
    assert!(t.bus.next("dlq", Duration::from_millis(300)).await.expect("next").is_none(), "both are dead");

    let dead = list_until(&t.bus, 2).await;
    let queue = t.bus.group_queue("dlq");
    let junk = dead.iter().find(|m| m.id == "junk-1").expect("the junk is listed");
    assert_eq!((junk.event.as_ref(), junk.payload.as_slice()), (None, &b"not an event"[..]));
    assert_eq!((junk.reason.as_deref(), junk.queue.as_deref()), (Some("rejected"), Some(queue.as_str())));
    assert_eq!(junk.routing_key, "junk.type");
    let over = dead.iter().find(|m| m.id == e.id.to_string()).expect("the event is listed");
    assert_eq!(over.event.as_ref(), Some(&e));
    assert_eq!((over.reason.as_deref(), over.queue.as_deref()), (Some("delivery_limit"), Some(queue.as_str())));
    assert_eq!(list_until(&t.bus, 2).await.len(), 2, "listing removes nothing");
    assert_eq!(t.bus.list_dead(1).await.expect("list").len(), 1, "the limit holds");

    assert_eq!(t.bus.replay_dead(Some(&e.id.to_string())).await.expect("replay"), 1);
    let back = t.bus.next("dlq", Duration::from_secs(5)).await.expect("next").expect("replayed to its group");
    assert_eq!((back.event.id, back.attempt), (e.id, 1), "with a fresh attempt count");
    t.bus.ack(&back).await.expect("ack");
    let left = t.bus.list_dead(10).await.expect("list");
    assert_eq!(left.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), ["junk-1"], "only the junk is left");

    // Replaying everything sends the junk back, where it is rejected again.
    assert_eq!(t.bus.replay_dead(None).await.expect("replay all"), 1);
    assert!(t.bus.next("dlq", Duration::from_millis(500)).await.expect("next").is_none(), "junk is never handed out");
    let again = list_until(&t.bus, 1).await;
    let again = (again[0].id.as_str(), again[0].reason.as_deref(), again[0].deaths);
    assert_eq!(again, ("junk-1", Some("rejected"), 1), "dead again; a replayed copy starts a fresh history");
    t.cleanup().await;
}

/// Lists the dead-letter queue until it holds `n` messages (dead-lettering
/// is asynchronous), at most 5 s.
async fn list_until(bus: &RabbitBus, n: usize) -> Vec<bazaar_rabbitmq::DeadMessage> {
    for _ in 0..50 {
        let dead = bus.list_dead(100).await.expect("list");
        if dead.len() >= n {
            return dead;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the dead-letter queue never held {n} messages");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_next_sees_a_later_publish_and_batches_what_arrived() {
    let t = TestBus::new(LONG_ACK_WAIT).await;
    assert!(
        t.bus.next("waiters", Duration::from_millis(300)).await.expect("next").is_none(),
        "a wait with nothing published ends empty"
    );
    let bus = t.bus.clone();
    let waiter = tokio::spawn(async move { bus.next_batch("waiters", 8, Duration::from_secs(20)).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let events: Vec<Event> = (0..6).map(|_| event()).collect();
    t.bus.publish(&events).await.expect("publish");
    let mut got = waiter.await.expect("task").expect("next_batch");
    assert!(!got.is_empty(), "the waiting call got the later events");
    t.bus.ack_all(&got).await.expect("ack");
    got.extend(drain(&t.bus, "waiters").await);
    assert_eq!(ids(&got), events.iter().map(|e| e.id).collect::<Vec<_>>(), "each once, in order");
    t.cleanup().await;
}

/// A consumer that dies holding a message (its connection closed, never
/// acked) gives it back: another process gets it as attempt 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_process_takes_over_after_a_consumer_dies() {
    let t = TestBus::new(LONG_ACK_WAIT).await;
    let e = event();
    t.bus.publish(std::slice::from_ref(&e)).await.expect("publish");
    let dying = t.another().await;
    let first = dying.next("workers", Duration::ZERO).await.expect("next").expect("delivered to the first worker");
    assert_eq!((first.event.id, first.attempt), (e.id, 1));
    assert!(t.bus.next("workers", Duration::ZERO).await.expect("next").is_none(), "pending with the first worker");
    dying.close().await;
    drop(dying);
    let taken = t.bus.next("workers", Duration::from_secs(5)).await.expect("next").expect("given back");
    assert_eq!((taken.event.id, taken.attempt), (e.id, 2), "the survivor gets it as attempt 2");
    t.bus.ack(&taken).await.expect("ack");
    t.bus.ack(&first).await.expect_err("the dead worker's receipt belongs to another bus");
    t.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_are_checked_and_odd_group_names_work() {
    let t = TestBus::new(LONG_ACK_WAIT).await;
    t.bus.publish(&[event()]).await.expect("publish");
    let d = t.bus.next("checked", Duration::ZERO).await.expect("next").expect("delivered");

    let forged = Delivery { receipt: Receipt::new("bazaar.user.registered"), ..d.clone() };
    assert_eq!(t.bus.ack(&forged).await.unwrap_err().kind(), ErrorKind::Invalid, "not a receipt");
    let other_group = Delivery { consumer: "other".into(), ..d.clone() };
    assert_eq!(t.bus.nack(&other_group, Duration::ZERO).await.unwrap_err().kind(), ErrorKind::Invalid, "wrong group");
    assert!(t.bus.next("checked", Duration::ZERO).await.expect("next").is_none(), "rejected calls changed nothing");

    t.bus.nack(&d, Duration::ZERO).await.expect("nack");
    t.bus.nack(&d, Duration::ZERO).await.expect("a repeated nack is ignored, not an error");
    let again = t.bus.next("checked", Duration::from_secs(5)).await.expect("next").expect("redelivered at once");
    assert_eq!((again.event.id, again.attempt), (d.event.id, 2));
    t.bus.ack(&again).await.expect("ack");
    t.bus.ack(&d).await.expect("a stale ack is ignored");
    assert_eq!(t.bus.next("", Duration::ZERO).await.unwrap_err().kind(), ErrorKind::Invalid, "empty group");

    let mut seen = HashSet::new();
    for group in ["worker/mailer", "a.b", "a_b", "ünïcode group"] {
        let got = drain(&t.bus, group).await;
        assert_eq!(got.len(), 1, "group {group} got the event");
        assert_eq!(got[0].consumer, group);
        assert!(seen.insert(t.bus.group_queue(group)), "group {group} has a queue of its own");
    }
    t.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_reports_readiness() {
    let t = TestBus::new(LONG_ACK_WAIT).await;
    t.bus.ping().await.expect("ready");
    let bus = t.bus.clone();
    t.cleanup().await;
    assert_eq!(bus.ping().await.unwrap_err().kind(), ErrorKind::Unavailable, "the archive is gone: not ready");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_errors_are_classified() {
    let unreachable = RabbitBus::connect("amqp://guest:guest@127.0.0.1:1/%2f", fresh(ACK_WAIT)).await;
    assert_eq!(unreachable.unwrap_err().kind(), ErrorKind::Unavailable, "nobody listens on port 1");
    let refused = RabbitBus::connect("amqp://nobody:wrong@127.0.0.1:5672/%2f", fresh(ACK_WAIT)).await;
    assert_eq!(refused.unwrap_err().kind(), ErrorKind::Unavailable, "bad credentials");
    let not_amqp = RabbitBus::connect("nats://127.0.0.1:4222", fresh(ACK_WAIT)).await;
    assert_eq!(not_amqp.unwrap_err().kind(), ErrorKind::Invalid);
    let bad = RabbitOptions { prefetch: 0, ..fresh(ACK_WAIT) };
    assert_eq!(RabbitBus::connect(&common::amqp_url(), bad).await.unwrap_err().kind(), ErrorKind::Invalid);

    // An existing topology declared with other arguments is refused.
    let t = TestBus::new(ACK_WAIT).await;
    let shorter = RabbitOptions { archive_max_age: Duration::from_secs(60), ..t.options.clone() };
    let conflict = RabbitBus::connect(&common::amqp_url(), shorter).await;
    assert_eq!(conflict.unwrap_err().kind(), ErrorKind::Unavailable, "the archive exists with another max age");
    t.cleanup().await;
}
