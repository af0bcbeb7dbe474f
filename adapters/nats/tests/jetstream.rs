//! `JetStreamBus` against a real NATS server: the core's bus contract
//! suites (with single and batched pulls), batched pulls under concurrent
//! callers, consumer take-over after a crash, deduplication, waiting pulls,
//! foreign messages, receipts and setup errors.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use bazaar_core::ErrorKind;
use bazaar_core::clock::{Clock, SystemClock};
use bazaar_core::events::{Delivery, Event, EventPublisher, EventSubscriber, Receipt, UserRegistered};
use bazaar_core::ids::UserId;
use bazaar_core::testkit::events::{bus_batches, bus_competing_consumers, bus_delivery, bus_fanout_groups};
use bazaar_nats::{JetStreamBus, JetStreamOptions, async_nats};
use common::TestBus;

/// Short, so redelivery tests take seconds; `advance` is a real sleep.
const ACK_WAIT: Duration = Duration::from_secs(1);

fn event() -> Event {
    Event::new(&UserRegistered { user_id: UserId::new(), role: "customer".into() }, SystemClock.now())
}

fn sleep(d: Duration) {
    // The test body runs on the runtime's `block_on` thread, not a worker:
    // blocking it leaves the NATS connection task running.
    std::thread::sleep(d);
}

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
    let t = TestBus::new(Duration::from_secs(30)).await;
    let subscriber: Arc<dyn EventSubscriber> = t.bus.clone();
    bus_competing_consumers(&*t.bus, subscriber, &|f| {
        tokio::spawn(f);
    })
    .await;
    t.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bus_fanout_groups_contract() {
    let t = TestBus::new(ACK_WAIT).await;
    bus_fanout_groups(&*t.bus, &*t.bus).await;
    t.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bus_fanout_groups_contract_with_batched_pulls() {
    let t = TestBus::with_options(batched(ACK_WAIT)).await;
    bus_fanout_groups(&*t.bus, &*t.bus).await;
    t.cleanup().await;
}

/// A process that dies leaves its fan-out group behind; the server deletes
/// it once nobody has pulled for the idle limit, while a durable group of
/// the same stream stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_removes_an_idle_fanout_group() {
    let t = TestBus::new(ACK_WAIT).await;
    t.bus.open_fanout("replica-gone", Duration::from_secs(1)).await.expect("open");
    assert!(t.bus.next("durable", Duration::ZERO).await.expect("next").is_none());
    let stream = t.jetstream().get_stream(&t.options.stream).await.expect("stream");
    let names = || async {
        let mut names: Vec<String> = futures::StreamExt::collect::<Vec<_>>(stream.consumer_names())
            .await
            .into_iter()
            .map(|n| n.expect("name"))
            .collect();
        names.sort();
        names
    };
    assert_eq!(names().await, ["durable", "replica-gone"]);
    let mut left = names().await;
    for _ in 0..100 {
        if left == ["durable"] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = names().await;
    }
    assert_eq!(left, ["durable"], "the idle fan-out group is deleted by the server, the durable one kept");
    t.cleanup().await;
}

/// The same contracts with batched pulls (messages held between calls).
fn batched(ack_wait: Duration) -> JetStreamOptions {
    JetStreamOptions { pull_batch: 8, ..common::fresh_options(ack_wait) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bus_delivery_contract_with_batched_pulls() {
    let t = TestBus::with_options(batched(ACK_WAIT)).await;
    bus_delivery(&*t.bus, &*t.bus, ACK_WAIT, &sleep).await;
    t.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bus_batches_contract_with_batched_pulls() {
    let t = TestBus::with_options(batched(ACK_WAIT)).await;
    bus_batches(&*t.bus, &*t.bus, ACK_WAIT, &sleep).await;
    t.cleanup().await;
}

/// A batch of `next_batch` is what one pull request brought: eight events,
/// one request of up to 8, one call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_batch_hands_out_a_whole_pull_at_once() {
    let t = TestBus::with_options(batched(Duration::from_secs(30))).await;
    let events: Vec<Event> = (0..8).map(|_| event()).collect();
    t.bus.publish(&events).await.expect("publish");
    let batch = t.bus.next_batch("whole", 8, Duration::ZERO).await.expect("next_batch");
    let ids: Vec<_> = batch.iter().map(|d| d.event.id).collect();
    assert_eq!(ids, events.iter().map(|e| e.id).collect::<Vec<_>>(), "the whole pull, in publish order");
    t.bus.ack_all(&batch).await.expect("ack_all");
    assert!(t.bus.next_batch("whole", 8, Duration::ZERO).await.expect("next_batch").is_empty(), "all acked");
    t.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bus_competing_consumers_contract_with_batched_pulls() {
    let t = TestBus::with_options(batched(Duration::from_secs(30))).await;
    let subscriber: Arc<dyn EventSubscriber> = t.bus.clone();
    bus_competing_consumers(&*t.bus, subscriber, &|f| {
        tokio::spawn(f);
    })
    .await;
    t.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batched_pull_hands_out_each_message_once_in_order() {
    let t = TestBus::with_options(JetStreamOptions { pull_batch: 4, ..common::fresh_options(Duration::from_secs(30)) })
        .await;
    let events: Vec<Event> = (0..10).map(|_| event()).collect();
    t.bus.publish(&events).await.expect("publish");
    let mut seen = Vec::new();
    while let Some(d) = t.bus.next("batched", Duration::ZERO).await.expect("next") {
        assert_eq!(d.attempt, 1, "first delivery");
        t.bus.ack(&d).await.expect("ack");
        seen.push(d.event.id);
    }
    assert_eq!(seen, events.iter().map(|e| e.id).collect::<Vec<_>>(), "every message once, in stream order");
    // A held message is not lost when its holder dies: another bus on the
    // group gets it once the ack wait runs out.
    let short = JetStreamOptions { pull_batch: 4, ..common::fresh_options(ACK_WAIT) };
    let t2 = TestBus::with_options(short.clone()).await;
    let pair = [event(), event()];
    t2.bus.publish(&pair).await.expect("publish");
    let holder = JetStreamBus::connect_with(common::client().await, short.clone()).await.expect("holder");
    let first = holder.next("held", Duration::ZERO).await.expect("next").expect("first");
    assert_eq!(first.event.id, pair[0].id, "the first of the batch");
    holder.client().drain().await.expect("the holder dies holding the second, pulled but never handed out");
    drop(holder);
    let survivor = JetStreamBus::connect_with(common::client().await, short).await.expect("survivor");
    let mut got = Vec::new();
    while got.len() < 2 {
        let d = survivor.next("held", ACK_WAIT * 5).await.expect("next").expect("redelivered after the ack wait");
        survivor.ack(&d).await.expect("ack");
        got.push(d.event.id);
    }
    got.sort();
    let mut want = vec![pair[0].id, pair[1].id];
    want.sort();
    assert_eq!(got, want, "both come back to the survivor");
    t2.cleanup().await;
    t.cleanup().await;
}

/// The race that once made batched pulls unsafe: the first `next` of a
/// group returns the first message of its batch while the rest is still on
/// its way into the process's queue, and a no-wait `next` right after must
/// wait for it rather than report nothing due.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_no_wait_next_right_after_a_batch_pull_gets_the_rest_of_the_batch() {
    const ROUNDS: usize = 200;
    let t = TestBus::with_options(batched(Duration::from_secs(30))).await;
    let events = [event(), event(), event()];
    t.bus.publish(&events).await.expect("publish");
    for round in 0..ROUNDS {
        // A fresh group sees every event, so each round starts a batch.
        let group = format!("race-{round}");
        for (i, e) in events.iter().enumerate() {
            let d = t.bus.next(&group, Duration::ZERO).await.expect("next");
            let d = d.unwrap_or_else(|| panic!("round {round}: message {i} is due but next returned None"));
            assert_eq!((d.event.id, d.attempt), (e.id, 1), "round {round}: message {i} in stream order");
        }
        assert!(t.bus.next(&group, Duration::ZERO).await.expect("next").is_none(), "round {round}: all handed out");
    }
    t.cleanup().await;
}

/// `callers` concurrent no-wait `next` calls on `group`, started together.
async fn concurrent_round(bus: &Arc<JetStreamBus>, group: &str, callers: usize) -> Vec<Option<Delivery>> {
    let start = Arc::new(tokio::sync::Barrier::new(callers));
    let calls: Vec<_> = (0..callers)
        .map(|_| {
            let (bus, start, group) = (bus.clone(), start.clone(), group.to_owned());
            tokio::spawn(async move {
                start.wait().await;
                bus.next(&group, Duration::ZERO).await.expect("next")
            })
        })
        .collect();
    let mut results = Vec::with_capacity(callers);
    for call in calls {
        results.push(call.await.expect("caller task"));
    }
    results
}

/// Several tasks of one process calling no-wait `next` on one group at once
/// (a worker's consumer tasks): while `u` messages are undelivered, a round
/// of `callers` concurrent calls hands out exactly `min(u, callers)` of
/// them. Fewer would mean a call reported nothing due while messages were
/// (none of the others took more than one); a repeat would mean a message
/// went to two callers. Nothing is acked, so nothing comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_no_wait_calls_on_one_group_never_miss_a_due_message() {
    const EVENTS: usize = 45;
    let t = TestBus::with_options(batched(Duration::from_secs(30))).await;
    let events: Vec<Event> = (0..EVENTS).map(|_| event()).collect();
    t.bus.publish(&events).await.expect("publish");
    let all: HashSet<_> = events.iter().map(|e| e.id).collect();
    for callers in [2, 3, 4, 6, 8, 11] {
        for trial in 0..3 {
            let group = format!("concurrent-{callers}-{trial}");
            let mut seen = HashSet::new();
            let mut round = 0;
            loop {
                let undelivered = EVENTS - seen.len();
                let results = concurrent_round(&t.bus, &group, callers).await;
                let delivered: Vec<_> = results.into_iter().flatten().collect();
                assert_eq!(
                    delivered.len(),
                    undelivered.min(callers),
                    "{callers} callers, trial {trial}, round {round}: {undelivered} messages were undelivered"
                );
                for d in delivered {
                    assert_eq!(d.attempt, 1, "first delivery");
                    assert!(seen.insert(d.event.id), "{} was handed out twice", d.event.id);
                }
                if undelivered == 0 {
                    break;
                }
                round += 1;
            }
            assert_eq!(seen, all, "{callers} callers, trial {trial}: every message exactly once");
        }
    }
    t.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_next_with_batched_pulls_sees_a_later_publish() {
    let t = TestBus::with_options(batched(Duration::from_secs(30))).await;
    waiting_next_sees_a_later_publish(&t).await;
    assert!(t.bus.next("waiters", Duration::ZERO).await.expect("next").is_none(), "acked: nothing more");
    t.cleanup().await;
}

/// A wait with nothing published ends empty; a waiting `next` then gets an
/// event published while it waits, which is acked. Returns that event.
async fn waiting_next_sees_a_later_publish(t: &TestBus) -> Event {
    assert!(
        t.bus.next("waiters", Duration::from_millis(300)).await.expect("next").is_none(),
        "a wait with nothing published ends empty"
    );
    let bus = t.bus.clone();
    let waiter = tokio::spawn(async move { bus.next("waiters", Duration::from_secs(20)).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let e = event();
    t.bus.publish(std::slice::from_ref(&e)).await.expect("publish");
    let d = waiter.await.expect("task").expect("next").expect("the waiting pull got the later event");
    assert_eq!(d.event.id, e.id);
    t.bus.ack(&d).await.expect("ack");
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_process_takes_over_after_a_consumer_dies() {
    let t = TestBus::new(ACK_WAIT).await;
    let e = event();
    t.bus.publish(std::slice::from_ref(&e)).await.expect("publish");

    let dying = JetStreamBus::connect_with(common::client().await, t.options.clone()).await.expect("first worker");
    let first = dying.next("workers", Duration::ZERO).await.expect("next").expect("delivered to the first worker");
    assert_eq!((first.event.id, first.attempt), (e.id, 1), "first delivery");
    // The worker dies holding the message: connection closed, never acked.
    dying.client().drain().await.expect("close the first worker's connection");
    drop(dying);

    let survivor = JetStreamBus::connect_with(common::client().await, t.options.clone()).await.expect("second worker");
    assert!(
        survivor.next("workers", Duration::ZERO).await.expect("next").is_none(),
        "the message stays with the dead worker until the ack wait ends"
    );
    // A waiting pull is answered when JetStream redelivers after the ack wait.
    let taken = survivor.next("workers", ACK_WAIT * 5).await.expect("next").expect("redelivered to the survivor");
    assert_eq!((taken.event.id, taken.attempt), (e.id, 2), "the survivor gets it as attempt 2");
    assert_eq!(taken.event, e, "intact");
    survivor.ack(&taken).await.expect("ack");

    sleep(ACK_WAIT + Duration::from_millis(200));
    assert!(survivor.next("workers", Duration::ZERO).await.expect("next").is_none(), "acked by the survivor: gone");
    t.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_an_event_twice_delivers_it_once() {
    let t = TestBus::new(ACK_WAIT).await;
    let e = event();
    t.bus.publish(std::slice::from_ref(&e)).await.expect("publish");
    t.bus.publish(std::slice::from_ref(&e)).await.expect("a republish (relay retry) succeeds");
    t.bus.publish(&[e.clone(), e.clone()]).await.expect("a batch repeating it too");

    let info = t.jetstream().get_stream(&t.options.stream).await.expect("stream").get_info().await.expect("info");
    assert_eq!(info.state.messages, 1, "JetStream stored the event once (Nats-Msg-Id)");
    let d = t.bus.next("dedup", Duration::ZERO).await.expect("next").expect("delivered");
    assert_eq!((d.event.id, d.attempt), (e.id, 1));
    assert!(t.bus.next("dedup", Duration::ZERO).await.expect("next").is_none(), "no second copy");
    t.bus.ack(&d).await.expect("ack");
    t.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_use_type_subjects_and_a_waiting_next_sees_a_later_publish() {
    let t = TestBus::new(Duration::from_secs(30)).await;
    let e = waiting_next_sees_a_later_publish(&t).await;

    let stored = t
        .jetstream()
        .get_stream(&t.options.stream)
        .await
        .expect("stream")
        .get_raw_message(1)
        .await
        .expect("stored message");
    assert_eq!(stored.subject.as_str(), format!("{}.user.registered", t.options.subject_prefix), "type subject");
    assert_eq!(t.bus.subject_for(&e), stored.subject.as_str());
    assert_eq!(
        stored.headers.get(async_nats::header::NATS_MESSAGE_ID).map(|v| v.as_str().to_owned()),
        Some(e.id.to_string()),
        "dedup header is the event id"
    );
    assert_eq!(Event::from_json(&stored.payload).expect("payload is the envelope"), e);
    t.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_messages_are_skipped_and_odd_group_names_work() {
    let t = TestBus::new(Duration::from_secs(30)).await;
    let js = t.jetstream();
    js.publish(format!("{}.junk", t.options.subject_prefix), "not an event".into())
        .await
        .expect("publish junk")
        .await
        .expect("junk stored");
    let e = event();
    t.bus.publish(std::slice::from_ref(&e)).await.expect("publish");

    for group in ["worker/mailer", "a.b", "a_b"] {
        let d = t.bus.next(group, Duration::ZERO).await.expect("next").expect("the event, past the junk");
        assert_eq!((d.event.id, d.consumer.as_str()), (e.id, group), "group {group}");
        assert!(t.bus.next(group, Duration::ZERO).await.expect("next").is_none(), "group {group}: junk terminated");
        t.bus.ack(&d).await.expect("ack");
    }
    let stream = js.get_stream(&t.options.stream).await.expect("stream");
    let mut names = stream.consumer_names();
    let mut count = 0;
    while let Some(name) = futures::StreamExt::next(&mut names).await {
        let name = name.expect("consumer name");
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'), "{name}");
        count += 1;
    }
    assert_eq!(count, 3, "`a.b` and `a_b` are distinct durables");
    t.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_are_checked() {
    let t = TestBus::new(Duration::from_secs(30)).await;
    t.bus.publish(&[event()]).await.expect("publish");
    let d = t.bus.next("checked", Duration::ZERO).await.expect("next").expect("delivered");

    let forged = bazaar_core::events::Delivery { receipt: Receipt::new("bazaar.user.registered"), ..d.clone() };
    assert_eq!(t.bus.ack(&forged).await.unwrap_err().kind(), ErrorKind::Invalid, "not an ack subject");
    let other_group = bazaar_core::events::Delivery { consumer: "other".into(), ..d.clone() };
    assert_eq!(t.bus.nack(&other_group, Duration::ZERO).await.unwrap_err().kind(), ErrorKind::Invalid, "wrong group");
    assert!(t.bus.next("checked", Duration::ZERO).await.expect("next").is_none(), "rejected calls changed nothing");

    t.bus.nack(&d, Duration::ZERO).await.expect("nack");
    t.bus.nack(&d, Duration::ZERO).await.expect("a repeated nack is ignored, not an error");
    let again = t.bus.next("checked", Duration::from_secs(5)).await.expect("next").expect("redelivered at once");
    assert_eq!((again.event.id, again.attempt), (d.event.id, 2));
    t.bus.ack(&again).await.expect("ack");
    assert_eq!(t.bus.next("", Duration::ZERO).await.unwrap_err().kind(), ErrorKind::Invalid, "empty group");
    t.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_reports_readiness() {
    let t = TestBus::new(Duration::from_secs(30)).await;
    t.bus.ping().await.expect("ready");
    let bus = t.bus.clone();
    t.cleanup().await;
    assert_eq!(bus.ping().await.unwrap_err().kind(), ErrorKind::Unavailable, "the stream is gone: not ready");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_errors_are_classified() {
    let unreachable = JetStreamBus::connect("nats://127.0.0.1:1", common::fresh_options(ACK_WAIT)).await;
    assert_eq!(unreachable.unwrap_err().kind(), ErrorKind::Unavailable, "nobody listens on port 1");

    let bad = JetStreamOptions { subject_prefix: "bazaar.>".into(), ..JetStreamOptions::default() };
    assert_eq!(JetStreamBus::connect(&common::nats_url(), bad).await.unwrap_err().kind(), ErrorKind::Invalid);

    // An existing stream of that name that does not capture the prefix.
    let options = common::fresh_options(ACK_WAIT);
    let js = async_nats::jetstream::new(common::client().await);
    js.create_stream(async_nats::jetstream::stream::Config {
        name: options.stream.clone(),
        subjects: vec![format!("{}-other.>", options.subject_prefix)],
        max_age: Duration::from_secs(3600),
        ..Default::default()
    })
    .await
    .expect("create a stream with other subjects");
    let conflict = JetStreamBus::connect(&common::nats_url(), options.clone()).await;
    assert_eq!(conflict.unwrap_err().kind(), ErrorKind::Conflict, "the stream does not capture the prefix");

    // A second stream whose subjects overlap an existing one's is refused.
    let overlapping = JetStreamOptions {
        stream: format!("{}_2", options.stream),
        subject_prefix: format!("{}-other", options.subject_prefix),
        ..options.clone()
    };
    let refused = JetStreamBus::connect(&common::nats_url(), overlapping).await;
    assert_eq!(refused.unwrap_err().kind(), ErrorKind::Conflict, "overlapping subjects");
    assert!(js.delete_stream(&options.stream).await.expect("delete").success);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trace_context_travels_in_headers_and_is_read_back_from_them() {
    let t = TestBus::new(Duration::from_secs(30)).await;
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let context = bazaar_core::events::TraceContext::parse(traceparent, Some("vendor=opaque")).expect("valid");

    // Published by us inside a trace: the envelope and the headers carry it.
    let traced = bazaar_core::events::TraceContext::scope(context, async { event() }).await;
    assert_eq!(traced.traceparent.as_deref(), Some(traceparent));
    t.bus.publish(std::slice::from_ref(&traced)).await.expect("publish");
    let stored =
        t.jetstream().get_stream(&t.options.stream).await.expect("stream").get_raw_message(1).await.expect("stored");
    assert_eq!(stored.headers.get("traceparent").map(|v| v.as_str().to_owned()).as_deref(), Some(traceparent));
    assert_eq!(stored.headers.get("tracestate").map(|v| v.as_str().to_owned()).as_deref(), Some("vendor=opaque"));

    // Published by someone who traces NATS headers only: read back from them.
    let untraced = event();
    assert_eq!(untraced.traceparent, None);
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("traceparent", traceparent);
    headers.insert("tracestate", "vendor=opaque");
    t.jetstream()
        .publish_with_headers(t.bus.subject_for(&untraced), headers, untraced.to_json().into())
        .await
        .expect("publish with headers")
        .await
        .expect("stored");

    let first = t.bus.next("traced", Duration::ZERO).await.expect("next").expect("the traced event");
    let second = t.bus.next("traced", Duration::ZERO).await.expect("next").expect("the header-only event");
    assert_eq!(first.event.id, traced.id);
    assert_eq!(second.event.id, untraced.id);
    for delivery in [&first, &second] {
        assert_eq!(delivery.event.traceparent.as_deref(), Some(traceparent), "{:?}", delivery.event.id);
        assert_eq!(delivery.event.tracestate.as_deref(), Some("vendor=opaque"));
        t.bus.ack(delivery).await.expect("ack");
    }
    t.cleanup().await;
}
