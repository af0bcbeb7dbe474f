//! Runs the event-port contract suites against the in-memory outbox, bus,
//! inbox and dead-letter store.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bazaar_core::clock::{Clock as _, ManualClock};
use bazaar_core::events::{Event, EventPublisher as _, EventSubscriber as _, UserRegistered};
use bazaar_core::ids::UserId;
use bazaar_core::testkit::events as suite;
use bazaar_memory::{InProcessBus, MemoryDeadLetters, MemoryInbox, MemoryOutbox};

/// Runs a suite's racing attempt as a task on the multi-threaded runtime.
fn spawn(f: Pin<Box<dyn Future<Output = ()> + Send + 'static>>) {
    tokio::spawn(f);
}

/// An already-finished future: the memory append is synchronous.
fn ready() -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
    Box::pin(std::future::ready(()))
}

#[tokio::test]
async fn outbox_claims() {
    let outbox = MemoryOutbox::new();
    let appender = outbox.clone();
    suite::outbox_claims(&outbox, &move |events: Vec<Event>| {
        appender.append(&events);
        ready()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn outbox_claims_race() {
    let outbox = MemoryOutbox::new();
    let appender = outbox.clone();
    suite::outbox_claims_race(
        Arc::new(outbox),
        &move |events: Vec<Event>| {
            appender.append(&events);
            ready()
        },
        &spawn,
    )
    .await;
}

#[tokio::test]
async fn bus_delivery() {
    let clock = ManualClock::at_epoch_secs(1_700_000_000);
    let ack_wait = Duration::from_secs(30);
    let bus = InProcessBus::new(Arc::new(clock.clone())).with_ack_wait(ack_wait);
    let advance = move |d: Duration| clock.advance(chrono::Duration::from_std(d).expect("small duration"));
    suite::bus_delivery(&bus, &bus, ack_wait, &advance).await;
}

#[tokio::test]
async fn bus_batches() {
    let clock = ManualClock::at_epoch_secs(1_700_000_000);
    let ack_wait = Duration::from_secs(30);
    let bus = InProcessBus::new(Arc::new(clock.clone())).with_ack_wait(ack_wait);
    let advance = move |d: Duration| clock.advance(chrono::Duration::from_std(d).expect("small duration"));
    suite::bus_batches(&bus, &bus, ack_wait, &advance).await;
}

#[tokio::test]
async fn bus_fanout_groups() {
    let bus = InProcessBus::new(Arc::new(ManualClock::at_epoch_secs(1_700_000_000)));
    suite::bus_fanout_groups(&bus, &bus).await;
}

#[tokio::test]
async fn idle_fanout_groups_are_removed_when_another_opens() {
    let clock = ManualClock::at_epoch_secs(1_700_000_000);
    let bus = InProcessBus::new(Arc::new(clock.clone()));
    bus.open_fanout("replica-a", Duration::from_secs(60)).await.unwrap();
    bus.open_fanout("replica-b", Duration::from_secs(60)).await.unwrap();
    let event = Event::new(&UserRegistered { user_id: UserId::new(), role: "vendor".into() }, clock.now());
    bus.publish(std::slice::from_ref(&event)).await.unwrap();
    // replica-a keeps asking (and leaves its message pending); replica-b has died.
    clock.advance(chrono::Duration::seconds(40));
    assert!(bus.next("replica-a", Duration::ZERO).await.unwrap().is_some());
    clock.advance(chrono::Duration::seconds(40));
    bus.open_fanout("replica-c", Duration::from_secs(60)).await.unwrap();
    assert_eq!(bus.pending("replica-a"), 1, "a group in use is kept with what it holds");
    assert_eq!(bus.groups(), vec!["replica-a".to_owned(), "replica-c".to_owned()], "the idle group is gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bus_competing_consumers() {
    let bus = Arc::new(InProcessBus::new(Arc::new(ManualClock::at_epoch_secs(0))));
    suite::bus_competing_consumers(bus.as_ref(), bus.clone(), &spawn).await;
}

#[tokio::test]
async fn inbox_marks() {
    suite::inbox_marks(&MemoryInbox::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn inbox_marks_race() {
    suite::inbox_marks_race(Arc::new(MemoryInbox::new()), &spawn).await;
}

#[tokio::test]
async fn dead_letters() {
    suite::dead_letters(&MemoryDeadLetters::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_next_wakes_on_publish() {
    use bazaar_core::events::{EventPublisher, EventSubscriber, UserRegistered};
    use bazaar_core::ids::UserId;
    let clock = ManualClock::at_epoch_secs(0);
    let bus = Arc::new(InProcessBus::new(Arc::new(clock.clone())));
    let waiter = {
        let bus = bus.clone();
        tokio::spawn(async move { bus.next("g", Duration::from_secs(30)).await })
    };
    let event = Event::new(
        &UserRegistered { user_id: UserId::new(), role: "vendor".into() },
        bazaar_core::clock::Clock::now(&clock),
    );
    // Whether the waiter is already parked or not, it must end up with the event.
    bus.publish(std::slice::from_ref(&event)).await.unwrap();
    let delivery = waiter.await.unwrap().unwrap().expect("woken by the publish");
    assert_eq!(delivery.event.id, event.id);
    assert!(bus.next("g", Duration::ZERO).await.unwrap().is_none());
}
