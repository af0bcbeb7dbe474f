//! Two workers, each with its relay and consumers, over one database and
//! one bus, as two replicas of `bazaar worker` would run: every event is
//! published at least once and handled exactly once per handler.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use bazaar_app::Keys;
use bazaar_core::auth::{Role, Signup};
use bazaar_core::entropy::OsEntropy;
use bazaar_core::events::{Event, EventHandler, EventPublisher, EventType};
use bazaar_core::ids::EventId;
use bazaar_core::marketplace::Bus;
use bazaar_memory::{InProcessBus, MemoryBlobStore};
use bazaar_sqlite::SqliteStore;
use bazaar_worker::{Worker, WorkerConfig};
use common::{Counting, Market, Running, clock, eventually, market};
use parking_lot::Mutex;

/// Records every event id it publishes, then passes the batch on.
struct Recording {
    inner: Arc<dyn EventPublisher>,
    seen: Arc<Mutex<Vec<EventId>>>,
}

#[async_trait]
impl EventPublisher for Recording {
    async fn publish(&self, events: &[Event]) -> bazaar_core::Result<()> {
        self.inner.publish(events).await?;
        self.seen.lock().extend(events.iter().map(|e| e.id));
        Ok(())
    }
}

const USERS: usize = 240;
/// Entries the crashed relay had published.
const CRASHED: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_relays_over_one_sqlite_file_publish_everything_and_handle_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bazaar.db").display());
    let bus = Arc::new(InProcessBus::new(clock()));
    let published = Arc::new(Mutex::new(Vec::new()));
    let welcome = Counting::new("welcome", EventType::UserRegistered, false);
    let keys = Keys::generate(&OsEntropy);

    // Two "processes": separate pools on one file, one shared bus.
    let mut markets: Vec<Arc<Market>> = Vec::new();
    for _ in 0..2 {
        let db = SqliteStore::connect(&url).await.unwrap();
        db.migrate().await.unwrap();
        let mut stores = db.ports(Bus::new(bus.clone()), Arc::new(MemoryBlobStore::new()));
        stores.publisher = Arc::new(Recording { inner: bus.clone(), seen: published.clone() });
        markets.push(market(stores, &keys, vec![welcome.clone() as Arc<dyn EventHandler>]));
    }
    for i in 0..USERS {
        let signup = Signup {
            email: format!("user{i}@example.com"),
            password: "password123".into(),
            name: "User".into(),
            role: Role::Customer,
        };
        markets[i % 2].auth.register(signup).await.unwrap();
    }

    // A relay that published a batch and died before marking it published:
    // its lease is over (it leased until `now`), so the live relays will
    // publish those entries again.
    let now = markets[0].clock.now();
    let crashed = markets[0].stores.outbox.claim(CRASHED, now, now).await.unwrap();
    let crashed: Vec<Event> = crashed.into_iter().map(|e| e.event).collect();
    bus.publish(&crashed).await.unwrap();
    // Consumers alone handle those first copies, so the duplicates the
    // relays publish later arrive after the inbox recorded the originals.
    let consumers_only = WorkerConfig { relay: false, ..common::worker_config(2) };
    let running: Vec<Running> = markets.iter().map(|m| Running::start(&m.worker(consumers_only.clone()))).collect();
    eventually("the crashed relay's batch handled", || {
        let welcome = welcome.clone();
        async move { (welcome.successes() >= CRASHED).then_some(()) }
    })
    .await;
    for r in running {
        r.stop().await;
    }

    // Small batches so the two relays interleave their claims.
    let config = WorkerConfig { relay_batch: 7, ..common::worker_config(2) };
    let workers: Vec<Worker> = markets.iter().map(|m| m.worker(config.clone())).collect();
    let running: Vec<Running> = workers.iter().map(Running::start).collect();
    eventually("every registration handled", || {
        let welcome = welcome.clone();
        async move { (welcome.successes() >= USERS).then_some(()) }
    })
    .await;
    for r in running {
        r.stop().await;
    }
    // Whatever is still on the bus (the republished duplicates) goes
    // through the inbox too before the counts are read.
    markets[0].dispatcher.drain(&config.group).await.unwrap();

    let published = published.lock().clone();
    let mut times: HashMap<EventId, usize> = HashMap::new();
    for id in &published {
        *times.entry(*id).or_default() += 1;
    }
    assert_eq!(times.len(), USERS, "every event was published by the live relays");
    assert!(crashed.iter().all(|e| times.contains_key(&e.id)), "the crashed batch was published again");
    assert_eq!(welcome.calls(), USERS, "duplicates were skipped through the inbox; each event handled once");
    let mut handled = welcome.completed.lock().clone();
    handled.sort();
    handled.dedup();
    assert_eq!(handled.len(), USERS, "no event handled twice");
    for w in &workers {
        assert_eq!(w.relay_once().await.unwrap(), 0, "the outbox is fully published");
    }
}
