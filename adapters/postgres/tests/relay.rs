//! The core's outbox [`Relay`] over PostgreSQL: events committed with state
//! changes are published in commit order, exactly once per successful
//! publish, and a failed publish leaves them for the next pass.

mod common;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bazaar_core::auth::{Email, Role, User, UserRepository};
use bazaar_core::clock::ManualClock;
use bazaar_core::events::{Event, EventPublisher, Relay, UserRegistered};
use bazaar_core::ids::UserId;
use bazaar_core::{Error, Result};
use common::fresh;

/// Records what it publishes; fails while `down` is set.
#[derive(Default)]
struct Recorder {
    published: Mutex<Vec<Event>>,
    down: Mutex<bool>,
}

#[async_trait]
impl EventPublisher for Recorder {
    async fn publish(&self, events: &[Event]) -> Result<()> {
        if *self.down.lock().unwrap() {
            return Err(Error::unavailable("bus", std::io::Error::other("bus is down")));
        }
        self.published.lock().unwrap().extend_from_slice(events);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_events_are_relayed_in_order_after_a_failed_publish() {
    let db = fresh().await;
    let clock = Arc::new(ManualClock::at_epoch_secs(1_700_000_000));
    let users = db.store.users();
    let mut expected = Vec::new();
    for i in 0..5 {
        let user = User {
            id: UserId::new(),
            email: Email::parse(&format!("user{i}@example.com")).unwrap(),
            name: format!("User {i}"),
            role: Role::Customer,
            password_hash: "$argon2id$x".into(),
            created_at: chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
        };
        let event = Event::new(&UserRegistered { user_id: user.id, role: "customer".into() }, user.created_at);
        users.insert(&user, std::slice::from_ref(&event)).await.unwrap();
        expected.push(event);
    }

    let bus = Arc::new(Recorder::default());
    let relay = Relay::new(Arc::new(db.store.outbox()), bus.clone(), clock.clone());
    *bus.down.lock().unwrap() = true;
    assert!(relay.relay_once(10).await.is_err(), "a failed publish is reported");
    assert!(bus.published.lock().unwrap().is_empty());

    *bus.down.lock().unwrap() = false;
    assert_eq!(relay.drain(2).await.unwrap(), 5, "the failed batch was released and is relayed now");
    assert_eq!(*bus.published.lock().unwrap(), expected, "commit order, each event once");
    assert_eq!(relay.drain(10).await.unwrap(), 0, "published entries never come back");
    db.drop_schema().await;
}
