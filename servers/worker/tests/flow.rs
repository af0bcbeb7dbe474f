//! The worker's loops on an in-memory marketplace (in-process bus): a paid
//! order ends fulfilled, a poisoned handler ends in the dead-letter store
//! and its replay completes exactly once, and the steps behave on their own.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bazaar_core::events::{EventHandler, EventType, Outcome};
use bazaar_core::orders::OrderStatus;
use bazaar_worker::{ReplayResult, dlq_list, dlq_replay, dlq_replay_all};
use common::{Counting, POISON, Running, approved_product, eventually, memory_market, place_and_pay, worker_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loops_fulfil_a_paid_order() {
    let market = memory_market(vec![]);
    let product = approved_product(&market, 1_999).await;
    let (_buyer, order) = place_and_pay(&market, &product).await;
    assert!(market.stores.licenses.list_for_order(order.id).await.unwrap().is_empty(), "nothing before the worker");

    let worker = market.worker(worker_config(2));
    let running = Running::start(&worker);
    let licenses = eventually("the license", || {
        let market = market.clone();
        async move { Some(market.stores.licenses.list_for_order(order.id).await.unwrap()).filter(|l| !l.is_empty()) }
    })
    .await;
    eventually("the order to be fulfilled", || {
        let market = market.clone();
        async move {
            let order = market.stores.orders.get(order.id).await.unwrap().unwrap();
            (order.status == OrderStatus::Fulfilled).then_some(())
        }
    })
    .await;
    running.stop().await;

    assert_eq!(licenses.len(), 1, "one license per order line");
    assert_eq!(licenses[0].product_id, product.id);
    // The events the stopped loops had not reached yet (license.issued's
    // notification, ...) change nothing about the license.
    market.pump().await.unwrap();
    assert_eq!(worker.relay_once().await.unwrap(), 0);
    assert_eq!(worker.process_one().await.unwrap(), Outcome::Empty);
    assert_eq!(market.stores.licenses.list_for_order(order.id).await.unwrap().len(), 1, "still exactly one");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_event_is_dead_lettered_then_replayed_exactly_once() {
    let poison = Counting::new("poison", EventType::PaymentSucceeded, true);
    let market = memory_market(vec![poison.clone() as Arc<dyn EventHandler>]);
    let max_attempts = market.dispatcher.config().max_attempts;
    let product = approved_product(&market, 500).await;
    let (_buyer, order) = place_and_pay(&market, &product).await;

    let worker = market.worker(worker_config(2));
    let running = Running::start(&worker);
    let letter = eventually("the dead letter", || {
        let market = market.clone();
        async move { dlq_list(&market, 0, 10).await.unwrap().items.into_iter().next() }
    })
    .await;
    // The sibling handler is not held back by the poisoned one.
    eventually("the license", || {
        let market = market.clone();
        async move { (!market.stores.licenses.list_for_order(order.id).await.unwrap().is_empty()).then_some(()) }
    })
    .await;
    running.stop().await;

    assert_eq!(letter.event.event_type, EventType::PaymentSucceeded);
    assert_eq!(letter.attempts, max_attempts);
    assert!(letter.error.contains("poison: ") && letter.error.contains(POISON), "handler and error: {}", letter.error);
    assert_eq!(poison.calls(), max_attempts as usize, "one call per delivery, then parked");
    assert_eq!(poison.successes(), 0);
    let page = dlq_list(&market, 0, 10).await.unwrap();
    assert_eq!(page.total, 1);

    // Still broken: the replay fails and keeps the letter with one more attempt.
    let again = dlq_replay(&market, letter.id).await.unwrap();
    assert!(
        matches!(&again.result, ReplayResult::StillFailing { attempts, error }
            if *attempts == max_attempts + 1 && error.contains(POISON)),
        "{again:?}"
    );

    // Fixed: the replay completes it, once.
    poison.poisoned.store(false, Ordering::SeqCst);
    let replay = dlq_replay(&market, letter.id).await.unwrap();
    assert_eq!(replay.result, ReplayResult::Completed);
    assert_eq!((replay.event_id, replay.event_type), (letter.event.id, EventType::PaymentSucceeded));
    assert_eq!(poison.successes(), 1);
    assert_eq!(*poison.completed.lock(), vec![letter.event.id]);
    assert_eq!(dlq_list(&market, 0, 10).await.unwrap().total, 0);
    assert_eq!(dlq_replay(&market, letter.id).await.unwrap_err().code(), "not_found");
    assert!(dlq_replay_all(&market).await.unwrap().is_empty());
    // The fulfilment handler, recorded in the inbox, was not run again.
    assert_eq!(market.stores.licenses.list_for_order(order.id).await.unwrap().len(), 1);
    assert_eq!(poison.successes(), 1, "nothing handled it a second time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_all_reports_each_letter() {
    let poison = Counting::new("poison", EventType::OrderPlaced, true);
    let market = memory_market(vec![poison.clone() as Arc<dyn EventHandler>]);
    let product = approved_product(&market, 700).await;
    for _ in 0..3 {
        place_and_pay(&market, &product).await;
    }
    let worker = market.worker(worker_config(1));
    let running = Running::start(&worker);
    eventually("three dead letters", || {
        let market = market.clone();
        async move { (dlq_list(&market, 0, 10).await.unwrap().total == 3).then_some(()) }
    })
    .await;
    running.stop().await;

    let first = dlq_list(&market, 0, 2).await.unwrap();
    let rest = dlq_list(&market, 2, 2).await.unwrap();
    assert_eq!((first.items.len(), rest.items.len(), first.total), (2, 1, 3), "pages of the list");
    assert_eq!(dlq_list(&market, 0, 0).await.unwrap_err().code(), "validation");

    let still = dlq_replay_all(&market).await.unwrap();
    assert_eq!(still.len(), 3);
    assert!(still.iter().all(|r| matches!(r.result, ReplayResult::StillFailing { .. })), "{still:?}");

    poison.poisoned.store(false, Ordering::SeqCst);
    let done = dlq_replay_all(&market).await.unwrap();
    assert_eq!(done.len(), 3);
    assert!(done.iter().all(|r| r.result == ReplayResult::Completed && r.event_type == EventType::OrderPlaced));
    assert_eq!(poison.successes(), 3, "each event completed once");
    assert_eq!(dlq_list(&market, 0, 10).await.unwrap().total, 0);
}

#[tokio::test]
async fn the_steps_relay_then_dispatch_with_retries_counted() {
    let poison = Counting::new("poison", EventType::OrderPlaced, true);
    let market = memory_market(vec![poison.clone() as Arc<dyn EventHandler>]);
    let worker = market.worker(worker_config(0));
    let product = approved_product(&market, 300).await;
    let buyer = bazaar_core::auth::Actor::new(bazaar_core::ids::UserId::new(), bazaar_core::auth::Role::Customer);
    market.orders.place(&buyer, bazaar_core::orders::PlaceOrder::new([product.id]), None).await.unwrap();

    assert_eq!(worker.process_one().await.unwrap(), Outcome::Empty, "nothing on the bus before the relay");
    assert_eq!(worker.relay_once().await.unwrap(), 1, "order.placed");
    assert_eq!(worker.relay_once().await.unwrap(), 0);
    match worker.process_one().await.unwrap() {
        Outcome::Retrying { attempt, .. } => assert_eq!(attempt, 1),
        other => panic!("the poisoned handler fails the first delivery: {other:?}"),
    }
    assert_eq!(poison.calls(), 1);
}

#[tokio::test]
async fn a_worker_with_nothing_to_run_still_stops() {
    let market = memory_market(vec![]);
    let config = bazaar_worker::WorkerConfig { relay: false, consumers: 0, ..bazaar_worker::WorkerConfig::default() };
    let worker = market.worker(config);
    Running::start(&worker).stop().await;
    assert!(!worker.config().relay);
}

/// Panics the first time it is called, then counts calls.
#[derive(Debug, Default)]
struct PanicsOnce {
    calls: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl EventHandler for PanicsOnce {
    fn name(&self) -> &'static str {
        "panics-once"
    }

    fn handles(&self, event_type: EventType) -> bool {
        event_type == EventType::OrderPlaced
    }

    async fn handle(&self, _event: &bazaar_core::events::Event) -> bazaar_core::Result<()> {
        if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
            panic!("a handler bug (expected by this test)");
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_loop_that_panics_is_restarted() {
    let handler = Arc::new(PanicsOnce::default());
    let market = memory_market(vec![handler.clone() as Arc<dyn EventHandler>]);
    let product = approved_product(&market, 100).await;
    let buyer = bazaar_core::auth::Actor::new(bazaar_core::ids::UserId::new(), bazaar_core::auth::Role::Customer);
    for _ in 0..2 {
        market.orders.place(&buyer, bazaar_core::orders::PlaceOrder::new([product.id]), None).await.unwrap();
    }
    // One consumer: the second order.placed can only be handled if the loop
    // that panicked on the first was restarted.
    let running = Running::start(&market.worker(worker_config(1)));
    eventually("a call after the panic", || {
        let handler = handler.clone();
        async move { (handler.calls.load(Ordering::SeqCst) >= 2).then_some(()) }
    })
    .await;
    running.stop().await;
}
