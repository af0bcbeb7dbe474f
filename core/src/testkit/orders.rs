//! Contract suites for [`OrderRepository`] and [`IdempotencyStore`].
//!
//! Each function takes a fresh, empty store (and, where events matter, a
//! probe returning every event committed so far) and panics with a message
//! naming the broken rule. The concurrency suites call the store from real
//! OS threads, each driving its future with `futures::executor::block_on`;
//! an adapter whose futures need an async runtime must make one reachable
//! from those threads.

use std::collections::HashMap;
use std::sync::Barrier;

use chrono::Duration;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::clock::{Clock, ManualClock, Timestamp};
use crate::error::Error;
use crate::events::{Event, OrderPlaced};
use crate::ids::{OrderId, UserId};
use crate::money::{Currency, Money};
use crate::orders::{
    IdempotencyBegin, IdempotencyClaim, IdempotencyStore, IdempotencyTerms, Order, OrderRepository, OrderStatus,
    StatusChange, StoredResponse,
};

fn t0() -> Timestamp {
    ManualClock::at_epoch_secs(1_700_000_000).now()
}

fn order(buyer: UserId, status: OrderStatus, created_at: Timestamp) -> Order {
    Order {
        id: OrderId::new(),
        buyer_id: buyer,
        lines: Vec::new(),
        total: Money::new(1999, Currency::USD),
        status,
        created_at,
        updated_at: created_at,
    }
}

fn placed(o: &Order) -> Event {
    Event::new(&OrderPlaced { order_id: o.id, buyer_id: o.buyer_id, total: o.total }, o.created_at)
}

fn ids(events: &[Event]) -> Vec<crate::ids::EventId> {
    events.iter().map(|e| e.id).collect()
}

/// Insert, get, list and the status compare-and-set, with their outbox effects.
///
/// # Panics
/// When the store breaks the [`OrderRepository`] contract.
pub async fn order_repository_contract(repo: &dyn OrderRepository, committed: &dyn Fn() -> Vec<Event>) {
    let buyer = UserId::new();
    let first = order(buyer, OrderStatus::PendingPayment, t0());
    let event = placed(&first);
    let before = committed().len();
    repo.insert(&first, std::slice::from_ref(&event)).await.expect("insert a new order");
    assert_eq!(repo.get(first.id).await.unwrap().as_ref(), Some(&first), "get returns the inserted order");
    assert_eq!(ids(&committed()[before..]), vec![event.id], "insert commits its events");
    assert!(repo.get(OrderId::new()).await.unwrap().is_none(), "get of an unknown id is None");

    let before = committed().len();
    let dup = repo.insert(&first, &[placed(&first)]).await;
    assert!(matches!(dup, Err(Error::Conflict { .. })), "a second insert of one id is Conflict, got {dup:?}");
    assert_eq!(committed().len(), before, "a failed insert commits no events");

    // Compare-and-set.
    let later = t0() + Duration::seconds(5);
    let paid_event = placed(&first);
    let before = committed().len();
    let paid = repo
        .transition(first.id, OrderStatus::PendingPayment, OrderStatus::Paid, later, std::slice::from_ref(&paid_event))
        .await
        .expect("transition from the current status");
    assert_eq!((paid.status, paid.updated_at), (OrderStatus::Paid, later), "transition stores status and time");
    assert_eq!(paid.created_at, first.created_at, "transition keeps created_at");
    assert_eq!(repo.get(first.id).await.unwrap().unwrap(), paid, "transition returns what it stored");
    assert_eq!(ids(&committed()[before..]), vec![paid_event.id], "transition commits its events");

    let before = committed().len();
    let stale =
        repo.transition(first.id, OrderStatus::PendingPayment, OrderStatus::Canceled, later, &[placed(&first)]).await;
    match stale {
        Err(Error::InvalidTransition { entity: "order", from, .. }) => {
            assert_eq!(from, "paid", "a failed compare names the current status")
        }
        other => panic!("a transition from a stale status is InvalidTransition, got {other:?}"),
    }
    assert_eq!(
        repo.get(first.id).await.unwrap().unwrap().status,
        OrderStatus::Paid,
        "a failed compare changes nothing"
    );
    assert_eq!(committed().len(), before, "a failed compare commits no events");
    let missing = repo.transition(OrderId::new(), OrderStatus::Paid, OrderStatus::Fulfilled, later, &[]).await;
    assert!(matches!(missing, Err(Error::NotFound { entity: "order" })), "unknown order is NotFound, got {missing:?}");

    // Listing: newest first, paged, with the buyer's total.
    let older = order(buyer, OrderStatus::Canceled, t0() - Duration::seconds(60));
    let newer = order(buyer, OrderStatus::PendingPayment, t0() + Duration::seconds(60));
    let stranger = order(UserId::new(), OrderStatus::PendingPayment, t0());
    for o in [&older, &newer, &stranger] {
        repo.insert(o, &[]).await.unwrap();
    }
    let (page1, total) = repo.list_for_buyer(buyer, 1, 2).await.unwrap();
    assert_eq!(total, 3, "total counts only the buyer's orders");
    assert_eq!(page1.iter().map(|o| o.id).collect::<Vec<_>>(), vec![newer.id, first.id], "newest first");
    let (page2, _) = repo.list_for_buyer(buyer, 2, 2).await.unwrap();
    assert_eq!(page2.iter().map(|o| o.id).collect::<Vec<_>>(), vec![older.id], "second page");
    let (page3, total3) = repo.list_for_buyer(buyer, 3, 2).await.unwrap();
    assert!(page3.is_empty() && total3 == 3, "a page past the end is empty but keeps the total");
    let (none, zero) = repo.list_for_buyer(UserId::new(), 1, 10).await.unwrap();
    assert!(none.is_empty() && zero == 0, "a buyer without orders has none");
}

/// The compare-and-set that also checks the total: a payment's.
///
/// # Panics
/// When the store breaks the [`OrderRepository::transition_with_total`] contract.
pub async fn order_transition_with_total(repo: &dyn OrderRepository, committed: &dyn Fn() -> Vec<Event>) {
    let o = order(UserId::new(), OrderStatus::PendingPayment, t0());
    repo.insert(&o, &[]).await.unwrap();
    let later = t0() + Duration::seconds(5);
    let (from, to) = (OrderStatus::PendingPayment, OrderStatus::Paid);

    let before = committed().len();
    let short = Money::new(o.total.minor() - 1, o.total.currency());
    let wrong = repo.transition_with_total(o.id, from, to, short, later, &[placed(&o)]).await;
    assert!(matches!(wrong, Err(Error::Integrity(_))), "another total is Integrity, got {wrong:?}");
    let other_currency = Money::new(o.total.minor(), Currency::EUR);
    let wrong = repo.transition_with_total(o.id, from, to, other_currency, later, &[placed(&o)]).await;
    assert!(matches!(wrong, Err(Error::Integrity(_))), "another currency is Integrity, got {wrong:?}");
    assert_eq!(repo.get(o.id).await.unwrap().as_ref(), Some(&o), "a refused total changes nothing");
    assert_eq!(committed().len(), before, "a refused total commits no events");

    let event = placed(&o);
    let paid = repo
        .transition_with_total(o.id, from, to, o.total, later, std::slice::from_ref(&event))
        .await
        .expect("the order's own total moves it");
    assert_eq!((paid.status, paid.updated_at), (to, later));
    assert_eq!(repo.get(o.id).await.unwrap().unwrap(), paid, "it returns what it stored");
    assert_eq!(ids(&committed()[before..]), vec![event.id], "it commits its events");

    let before = committed().len();
    let again = repo.transition_with_total(o.id, from, to, short, later, &[placed(&o)]).await;
    match again {
        Err(Error::InvalidTransition { entity: "order", from, .. }) => {
            assert_eq!(from, "paid", "a stale status is judged before the total, naming the current one")
        }
        other => panic!("a stale status is InvalidTransition, got {other:?}"),
    }
    assert_eq!(committed().len(), before, "a failed compare commits no events");
    let missing = repo.transition_with_total(OrderId::new(), from, to, o.total, later, &[]).await;
    assert!(matches!(missing, Err(Error::NotFound { entity: "order" })), "unknown order is NotFound, got {missing:?}");
}

/// The batch compare-and-set: each order judged as alone (status, total,
/// existence), in the order given, only the moved ones' events committed.
///
/// # Panics
/// When the store breaks the [`OrderRepository::transition_all`] contract.
pub async fn order_transition_all(repo: &dyn OrderRepository, committed: &dyn Fn() -> Vec<Event>) {
    let buyer = UserId::new();
    let [a, b, paid, short] = [0; 4].map(|_| order(buyer, OrderStatus::PendingPayment, t0()));
    for o in [&a, &b, &paid, &short] {
        repo.insert(o, &[]).await.unwrap();
    }
    let later = t0() + Duration::seconds(5);
    repo.transition(paid.id, OrderStatus::PendingPayment, OrderStatus::Paid, later, &[]).await.unwrap();
    let (from, to) = (OrderStatus::PendingPayment, OrderStatus::Paid);
    let change = |o: &Order, total: Option<Money>| StatusChange { id: o.id, total, events: vec![placed(o)] };
    let missing = order(buyer, OrderStatus::PendingPayment, t0());
    let wrong = Money::new(short.total.minor() + 1, short.total.currency());
    let changes = vec![
        change(&a, Some(a.total)),
        change(&paid, None),
        change(&b, None),
        change(&short, Some(wrong)),
        change(&missing, None),
    ];

    let before = committed().len();
    let answers = repo.transition_all(from, to, later, &changes).await.expect("a batch compare-and-set");
    assert_eq!(answers.len(), changes.len(), "one answer per change: {answers:?}");
    for (o, answer) in [(&a, &answers[0]), (&b, &answers[2])] {
        let moved = answer.as_ref().expect("an order in `from` with its total moves");
        assert_eq!((moved.id, moved.status, moved.updated_at), (o.id, to, later), "it stores status and time");
        assert_eq!(repo.get(o.id).await.unwrap().as_ref(), Some(moved), "it returns what it stored");
    }
    match &answers[1] {
        Err(Error::InvalidTransition { entity: "order", from, .. }) => {
            assert_eq!(from, "paid", "a failed compare names the current status")
        }
        other => panic!("an order in another status is InvalidTransition, got {other:?}"),
    }
    assert!(matches!(answers[3], Err(Error::Integrity(_))), "another total is Integrity, got {:?}", answers[3]);
    assert_eq!(repo.get(short.id).await.unwrap().as_ref(), Some(&short), "a refused total changes nothing");
    assert!(
        matches!(answers[4], Err(Error::NotFound { entity: "order" })),
        "an unknown order is NotFound, got {:?}",
        answers[4]
    );
    assert_eq!(
        ids(&committed()[before..]),
        vec![changes[0].events[0].id, changes[2].events[0].id],
        "only the moved orders' events are committed, in order"
    );

    let before = committed().len();
    let twice = vec![change(&short, None), change(&short, None)];
    let refused = repo.transition_all(from, to, later, &twice).await;
    assert!(matches!(refused, Err(Error::Validation(_))), "one order twice is Validation, got {refused:?}");
    assert_eq!(repo.get(short.id).await.unwrap().as_ref(), Some(&short), "a refused batch changes nothing");
    assert_eq!(committed().len(), before, "a refused batch commits no events");
    assert!(repo.transition_all(from, to, later, &[]).await.unwrap().is_empty(), "an empty batch answers nothing");
}

/// 16 threads race the same `paid → fulfilled` compare-and-set: exactly one
/// wins and exactly one event is committed.
///
/// # Panics
/// When more or fewer than one caller wins.
pub async fn order_transition_is_atomic(repo: &dyn OrderRepository, committed: &dyn Fn() -> Vec<Event>) {
    const RACERS: usize = 16;
    let o = order(UserId::new(), OrderStatus::Paid, t0());
    repo.insert(&o, &[]).await.unwrap();
    let before = committed().len();
    let barrier = Barrier::new(RACERS);
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..RACERS)
            .map(|_| {
                s.spawn(|| {
                    let event = placed(&o);
                    barrier.wait();
                    futures::executor::block_on(repo.transition(
                        o.id,
                        OrderStatus::Paid,
                        OrderStatus::Fulfilled,
                        t0(),
                        &[event],
                    ))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("racer panicked")).collect()
    });
    let winners = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(winners, 1, "exactly one concurrent compare-and-set wins");
    assert!(
        results.iter().filter_map(|r| r.as_ref().err()).all(|e| matches!(e, Error::InvalidTransition { .. })),
        "losers get InvalidTransition"
    );
    assert_eq!(committed().len() - before, 1, "only the winner's event is committed");
}

fn response(n: u16) -> StoredResponse {
    StoredResponse { body: serde_json::json!({ "n": n }) }
}

/// The idempotency rules: start, in flight, replay, mismatch, abandon,
/// expiry, lease takeover, scopes, and `complete`/`abandon` only by the
/// claim holding the key.
///
/// # Panics
/// When the store breaks the [`IdempotencyStore`] contract.
pub async fn idempotency_store_contract(store: &dyn IdempotencyStore) {
    use IdempotencyBegin::*;
    let now = t0();
    let terms = IdempotencyTerms { ttl: Duration::seconds(60), lease: Duration::seconds(20) };
    let claim = |scope: &str, key: &str| IdempotencyClaim::new(scope, key);
    let (a_k, b_k) = (claim("a", "k"), claim("b", "k"));
    assert_eq!(store.begin(&a_k, "h1", now, terms).await.unwrap(), Started, "a new key starts");
    assert_eq!(store.begin(&claim("a", "k"), "h1", now, terms).await.unwrap(), InFlight, "same request while running");
    assert_eq!(store.begin(&claim("a", "k"), "h2", now, terms).await.unwrap(), Mismatch, "other request while running");
    assert_eq!(store.begin(&b_k, "h2", now, terms).await.unwrap(), Started, "scopes are independent");
    let intruder = store.complete(&claim("a", "k"), response(9)).await;
    assert!(matches!(intruder, Err(Error::Conflict { .. })), "only the holder completes, got {intruder:?}");
    store.complete(&a_k, response(1)).await.expect("complete an in-flight key");
    let replay = store.begin(&claim("a", "k"), "h1", now, terms).await.unwrap();
    assert_eq!(replay, Replay(response(1)), "replays the first response");
    assert_eq!(
        store.begin(&claim("a", "k"), "h2", now, terms).await.unwrap(),
        Mismatch,
        "other request after completion"
    );
    let again = store.complete(&a_k, response(2)).await;
    assert!(matches!(again, Err(Error::Conflict { .. })), "completing twice is Conflict, got {again:?}");
    let replay = store.begin(&claim("a", "k"), "h1", now, terms).await.unwrap();
    assert_eq!(replay, Replay(response(1)), "the first response stays");
    let never = store.complete(&claim("a", "never"), response(3)).await;
    assert!(matches!(never, Err(Error::Conflict { .. })), "completing an unknown key is Conflict, got {never:?}");

    // Abandon frees an in-flight key for its holder only, and never a completed one.
    let retry = claim("a", "retry");
    assert_eq!(store.begin(&retry, "h1", now, terms).await.unwrap(), Started);
    store.abandon(&claim("a", "retry")).await.unwrap();
    assert_eq!(
        store.begin(&claim("a", "retry"), "h1", now, terms).await.unwrap(),
        InFlight,
        "another's abandon is a no-op"
    );
    store.abandon(&retry).await.unwrap();
    assert_eq!(
        store.begin(&claim("a", "retry"), "h2", now, terms).await.unwrap(),
        Started,
        "an abandoned key can be retried"
    );
    store.abandon(&a_k).await.unwrap();
    let kept = store.begin(&claim("a", "k"), "h1", now, terms).await.unwrap();
    assert_eq!(kept, Replay(response(1)), "abandon keeps completed keys");
    store.abandon(&claim("a", "nothing")).await.expect("abandoning an absent key is a no-op");

    // The lease: a claim whose request died frees its key when the lease
    // ends; the retry holds it from then, and the first holder cannot
    // complete or abandon it any more.
    let dead = claim("a", "lease");
    assert_eq!(store.begin(&dead, "h1", now, terms).await.unwrap(), Started);
    let held = now + terms.lease - Duration::seconds(1);
    assert_eq!(
        store.begin(&claim("a", "lease"), "h1", held, terms).await.unwrap(),
        InFlight,
        "held until the lease ends"
    );
    let lapsed = now + terms.lease;
    assert_eq!(store.begin(&claim("a", "lease"), "h2", lapsed, terms).await.unwrap(), Mismatch, "the key stays bound");
    let heir = claim("a", "lease");
    assert_eq!(store.begin(&heir, "h1", lapsed, terms).await.unwrap(), Started, "a retry takes a lapsed claim over");
    assert_eq!(
        store.begin(&claim("a", "lease"), "h1", lapsed, terms).await.unwrap(),
        InFlight,
        "with a lease of its own"
    );
    let late = store.complete(&dead, response(4)).await;
    assert!(matches!(late, Err(Error::Conflict { .. })), "the first holder lost the key, got {late:?}");
    store.abandon(&dead).await.unwrap();
    store.complete(&heir, response(5)).await.expect("the heir completes");
    let replay = store.begin(&claim("a", "lease"), "h1", lapsed, terms).await.unwrap();
    assert_eq!(replay, Replay(response(5)), "the heir's answer, not the dead request's");

    // Expiry: at `now + ttl` the record is absent and the key starts afresh.
    let almost = now + terms.ttl - Duration::seconds(1);
    assert_eq!(store.begin(&claim("a", "k"), "h2", almost, terms).await.unwrap(), Mismatch, "still live before expiry");
    let expired = now + terms.ttl;
    assert_eq!(
        store.begin(&claim("a", "k"), "h2", expired, terms).await.unwrap(),
        Started,
        "expired records are absent"
    );
    assert_eq!(store.begin(&claim("a", "k"), "h2", expired, terms).await.unwrap(), InFlight, "the new record counts");
}

/// 50 threads begin the same key at once: exactly one is `Started`, the
/// others `InFlight`.
///
/// # Panics
/// When the claim is not atomic.
pub async fn idempotency_begin_is_atomic(store: &dyn IdempotencyStore) {
    const RACERS: usize = 50;
    let barrier = Barrier::new(RACERS);
    let outcomes: Vec<IdempotencyBegin> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..RACERS)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    let claim = IdempotencyClaim::new("race", "key");
                    futures::executor::block_on(store.begin(&claim, "hash", t0(), IdempotencyTerms::default()))
                        .expect("begin")
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("racer panicked")).collect()
    });
    let started = outcomes.iter().filter(|o| **o == IdempotencyBegin::Started).count();
    assert_eq!(started, 1, "exactly one of {RACERS} concurrent begins is Started");
    assert!(outcomes.iter().all(|o| matches!(o, IdempotencyBegin::Started | IdempotencyBegin::InFlight)));
}

/// Seeded random sequences of begin / complete / abandon / clock moves on a
/// few keys and request bodies, checked against a model of the rules.
///
/// # Panics
/// When any answer differs from the model's.
pub async fn idempotency_random_sequences(store: &dyn IdempotencyStore) {
    const TTL: i64 = 30;
    const LEASE: i64 = 12;
    let terms = IdempotencyTerms { ttl: Duration::seconds(TTL), lease: Duration::seconds(LEASE) };
    struct Claim {
        body: u8,
        at: i64,
        answer: Option<u16>,
        holder: IdempotencyClaim,
    }
    for seed in 0..32u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        // A scope per run keeps runs independent on one store.
        let scope = format!("seq-{seed}");
        let mut t = 1_700_000_000i64;
        let mut model: HashMap<u8, Claim> = HashMap::new();
        for step in 0..80 {
            let key = rng.random_range(0..3u8);
            let name = format!("key-{key}");
            model.retain(|_, c| t < c.at + TTL);
            let now = chrono::DateTime::from_timestamp(t, 0).expect("in range");
            match rng.random_range(0..10u8) {
                0..=4 => {
                    let body = rng.random_range(0..3u8);
                    let claim = IdempotencyClaim::new(&scope, &name);
                    let got = store.begin(&claim, &format!("hash-{body}"), now, terms).await.unwrap();
                    let expected = match model.get(&key) {
                        None => IdempotencyBegin::Started,
                        Some(c) if c.body != body => IdempotencyBegin::Mismatch,
                        Some(Claim { answer: Some(n), .. }) => IdempotencyBegin::Replay(response(*n)),
                        Some(c) if t < c.at + LEASE => IdempotencyBegin::InFlight,
                        Some(_) => IdempotencyBegin::Started,
                    };
                    assert_eq!(got, expected, "seed {seed} step {step}: begin({name}, body {body})");
                    if got == IdempotencyBegin::Started {
                        model.insert(key, Claim { body, at: t, answer: None, holder: claim });
                    }
                }
                5..=7 => {
                    let n = rng.random_range(0..1000u16);
                    let in_flight = model.get(&key).is_some_and(|c| c.answer.is_none());
                    // The holder completes; a key the model forgot is
                    // completed by a stranger, which must never succeed.
                    let holder =
                        model.get(&key).map_or_else(|| IdempotencyClaim::new(&scope, &name), |c| c.holder.clone());
                    let got = store.complete(&holder, response(n)).await;
                    // An expired, uncompleted record may still be stored;
                    // completing it is allowed but the model treats it as gone,
                    // so only judge keys the model knows about.
                    if in_flight {
                        got.unwrap_or_else(|e| panic!("seed {seed} step {step}: complete({name}) failed: {e}"));
                        if let Some(c) = model.get_mut(&key) {
                            c.answer = Some(n);
                        }
                    } else {
                        assert!(got.is_err(), "seed {seed} step {step}: completing {name} must fail: {got:?}");
                    }
                }
                8 => {
                    let holder =
                        model.get(&key).map_or_else(|| IdempotencyClaim::new(&scope, &name), |c| c.holder.clone());
                    store.abandon(&holder).await.unwrap();
                    if model.get(&key).is_some_and(|c| c.answer.is_none()) {
                        model.remove(&key);
                    }
                }
                _ => t += rng.random_range(0..20i64),
            }
        }
    }
}
