//! Losing the broker connection mid-run: the broker closes this test's own
//! connection (`rabbitmqctl close_connection`, picked by its connection
//! name, so other tests' connections are left alone) while events are
//! published and consumed. Nothing published is lost and consumption
//! resumes. In a file of its own so it runs apart from the other suites.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bazaar_core::events::{Event, EventPublisher, EventSubscriber};
use bazaar_core::ids::EventId;
use common::{TestBus, event, fresh};

/// Events published per call.
const CHUNK: usize = 3;
/// Events published after the connection was closed.
const AFTER: usize = 60;
const GROUP: &str = "survivors";

/// Closes every broker connection named `name`; returns how many.
fn close_connections_named(name: &str) -> usize {
    let listed = std::process::Command::new("rabbitmqctl")
        .args(["list_connections", "-q", "--no-table-headers", "pid", "client_properties"])
        .output()
        .expect("run rabbitmqctl (the test closes its connection through it)");
    assert!(listed.status.success(), "rabbitmqctl list_connections: {}", String::from_utf8_lossy(&listed.stderr));
    let needle = format!("{{\"connection_name\",\"{name}\"}}");
    let mut closed = 0;
    for line in String::from_utf8_lossy(&listed.stdout).lines().filter(|line| line.contains(&needle)) {
        let pid = line.split('\t').next().expect("a pid column");
        let out = std::process::Command::new("rabbitmqctl")
            .args(["close_connection", pid, "bazaar reconnect test"])
            .output()
            .expect("run rabbitmqctl close_connection");
        assert!(out.status.success(), "rabbitmqctl close_connection: {}", String::from_utf8_lossy(&out.stderr));
        closed += 1;
    }
    closed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_published_is_lost_when_the_connection_is_closed_mid_run() {
    let t = TestBus::with_options(fresh(Duration::from_secs(30))).await;
    let name = t.options.connection_name.clone();
    assert!(t.bus.next(GROUP, Duration::ZERO).await.expect("next").is_none(), "group set up before the run");

    // Publishes chunks until the connection has been closed, then AFTER
    // more events, which can only reach the group over a new connection.
    let published = Arc::new(parking_lot::Mutex::new(HashSet::<EventId>::new()));
    let closed_at = Arc::new(parking_lot::Mutex::new(None::<usize>));
    let publisher = tokio::spawn({
        let (bus, published, closed_at) = (t.bus.clone(), published.clone(), closed_at.clone());
        async move {
            let mut after_close = Vec::new();
            while after_close.len() < AFTER {
                let chunk: Vec<Event> = (0..CHUNK).map(|_| event()).collect();
                let closed = closed_at.lock().is_some();
                // Every publish must come back Ok: across the loss too.
                bus.publish(&chunk).await.expect("publish recovers from the lost connection");
                published.lock().extend(chunk.iter().map(|e| e.id));
                if closed {
                    after_close.extend(chunk.iter().map(|e| e.id));
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            after_close
        }
    });

    let consumed_count = Arc::new(AtomicUsize::new(0));
    let consumer = tokio::spawn({
        let (bus, published, count) = (t.bus.clone(), published.clone(), consumed_count.clone());
        async move {
            let mut seen = HashSet::new();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
            let mut idle = 0;
            loop {
                let batch = bus.next_batch(GROUP, 16, Duration::from_millis(200)).await.expect("next_batch recovers");
                // An ack that fails with the connection is fine: the
                // message comes back and is counted once below.
                let _ = bus.ack_all(&batch).await;
                idle = if batch.is_empty() { idle + 1 } else { 0 };
                seen.extend(batch.iter().map(|d| d.event.id));
                count.store(seen.len(), Ordering::SeqCst);
                // Done once everything published so far is seen and nothing
                // came for a while (the publisher has stopped by then).
                let caught_up = published.lock().is_subset(&seen);
                if (caught_up && idle >= 5) || tokio::time::Instant::now() > deadline {
                    return seen;
                }
            }
        }
    });

    // Mid-run: once some events are consumed, the broker drops the connection.
    while consumed_count.load(Ordering::SeqCst) < 30 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let closer = {
        let name = name.clone();
        tokio::task::spawn_blocking(move || close_connections_named(&name))
    };
    let closed = closer.await.expect("closer");
    assert!(closed >= 1, "the bus's connection was found and closed");
    *closed_at.lock() = Some(consumed_count.load(Ordering::SeqCst));

    let after_close = publisher.await.expect("the publisher finished without an error");
    let seen = consumer.await.expect("consumer");
    let published = published.lock().clone();
    let lost: Vec<_> = published.difference(&seen).collect();
    assert!(lost.is_empty(), "{} of {} published events were never consumed: {lost:?}", lost.len(), published.len());
    assert!(after_close.iter().all(|id| seen.contains(id)), "consumption resumed on the new connection");
    assert!(published.len() > after_close.len() + 30, "events were published before the close too");
    t.bus.ping().await.expect("ready again after the loss");
    t.cleanup().await;
}
