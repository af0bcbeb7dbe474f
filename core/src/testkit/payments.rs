//! Contract suites for [`PaymentRepository`] and its webhook inbox, and
//! for [`Checkout`].
//!
//! Each function takes a fresh, empty store and a probe returning every
//! event committed so far, and panics with a message naming the broken
//! rule. The concurrency suites call the store from real OS threads (see
//! [`super::orders`] for what that asks of an adapter).

use std::sync::Barrier;

use crate::clock::{Clock, ManualClock};
use crate::error::Error;
use crate::events::{Event, OrderPlaced, PaymentSucceeded};
use crate::ids::{EventId, OrderId, PaymentIntentId, UserId};
use crate::money::{Currency, Money};
use crate::orders::{
    Checkout, IdempotencyBegin, IdempotencyClaim, IdempotencyStore, IdempotencyTerms, KeyAnswer, Placement,
    StoredResponse,
};
use crate::orders::{Order, OrderRepository, OrderStatus};
use crate::payments::{IntentStatus, PaymentIntent, PaymentRepository, WebhookReceipt};

fn intent(provider_ref: &str) -> PaymentIntent {
    let now = ManualClock::at_epoch_secs(1_700_000_000).now();
    PaymentIntent {
        id: PaymentIntentId::new(),
        order_id: OrderId::new(),
        amount: Money::new(1999, Currency::USD),
        status: IntentStatus::RequiresPaymentMethod,
        provider: "sandbox".into(),
        provider_ref: Some(provider_ref.into()),
        attempts: Vec::new(),
        amount_refunded: Money::zero(Currency::USD),
        version: 1,
        created_at: now,
        updated_at: now,
    }
}

fn succeeded(i: &PaymentIntent) -> Event {
    let payload = PaymentSucceeded { order_id: i.order_id, payment_intent_id: i.id, amount: i.amount };
    Event::new(&payload, i.created_at)
}

fn ids(events: &[Event]) -> Vec<EventId> {
    events.iter().map(|e| e.id).collect()
}

/// Insert, the three lookups and the optimistic update, with their outbox effects.
///
/// # Panics
/// When the store breaks the [`PaymentRepository`] contract.
pub async fn payment_repository_contract(repo: &dyn PaymentRepository, committed: &dyn Fn() -> Vec<Event>) {
    let a = intent("pi_a");
    let event = succeeded(&a);
    let before = committed().len();
    repo.insert(&a, std::slice::from_ref(&event)).await.expect("insert a new intent");
    assert_eq!(ids(&committed()[before..]), vec![event.id], "insert commits its events");
    assert_eq!(repo.get(a.id).await.unwrap().as_ref(), Some(&a), "get by id");
    assert_eq!(repo.get_by_order(a.order_id).await.unwrap().as_ref(), Some(&a), "get by order");
    assert_eq!(repo.get_by_provider_ref("sandbox", "pi_a").await.unwrap().as_ref(), Some(&a), "get by provider ref");
    assert!(repo.get_by_provider_ref("stripe", "pi_a").await.unwrap().is_none(), "provider refs are per provider");
    assert!(repo.get(PaymentIntentId::new()).await.unwrap().is_none());
    assert!(repo.get_by_order(OrderId::new()).await.unwrap().is_none());

    let before = committed().len();
    let dup_id = repo.insert(&PaymentIntent { order_id: OrderId::new(), ..a.clone() }, &[succeeded(&a)]).await;
    assert!(matches!(dup_id, Err(Error::Conflict { .. })), "a second intent with one id is Conflict, got {dup_id:?}");
    let dup_order = repo.insert(&PaymentIntent { id: PaymentIntentId::new(), ..a.clone() }, &[succeeded(&a)]).await;
    assert!(
        matches!(dup_order, Err(Error::Conflict { .. })),
        "a second intent for one order is Conflict, got {dup_order:?}"
    );
    assert_eq!(committed().len(), before, "failed inserts commit no events");

    // Optimistic update.
    let mut next = a.clone();
    next.status = IntentStatus::Succeeded;
    let event = succeeded(&a);
    let stored = repo.update(&next, 1, std::slice::from_ref(&event)).await.expect("update at the current version");
    assert_eq!(stored, PaymentIntent { version: 2, ..next.clone() }, "update stores the intent at version + 1");
    assert_eq!(repo.get(a.id).await.unwrap().unwrap(), stored, "update returns what it stored");
    assert_eq!(committed().last().map(|e| e.id), Some(event.id), "update commits its events");

    let before = committed().len();
    let mut stale = stored.clone();
    stale.status = IntentStatus::Canceled;
    match repo.update(&stale, 1, &[succeeded(&a)]).await {
        Err(Error::VersionMismatch { expected: 1, current: 2 }) => {}
        other => {
            panic!("a stale update is VersionMismatch {{ expected: 1, current: 2 }}, got {other:?}")
        }
    }
    assert_eq!(repo.get(a.id).await.unwrap().unwrap(), stored, "a stale update changes nothing");
    assert_eq!(committed().len(), before, "a stale update commits no events");
    let missing = repo.update(&intent("pi_missing"), 1, &[]).await;
    assert!(matches!(missing, Err(Error::NotFound { .. })), "updating an unknown intent is NotFound, got {missing:?}");
}

/// The webhook inbox: first delivery applies, replays change nothing, a
/// failed update records nothing.
///
/// # Panics
/// When the store breaks the [`PaymentRepository::apply_webhook`] contract.
pub async fn webhook_inbox_contract(repo: &dyn PaymentRepository, committed: &dyn Fn() -> Vec<Event>) {
    let a = intent("pi_hook");
    repo.insert(&a, &[]).await.unwrap();
    let mut next = a.clone();
    next.status = IntentStatus::Succeeded;

    // A stale update fails and leaves the event unrecorded.
    let before = committed().len();
    let stale = repo.apply_webhook("sandbox", "evt_1", Some((&next, 7)), &[succeeded(&a)]).await;
    assert!(
        matches!(stale, Err(Error::VersionMismatch { .. })),
        "a stale webhook update is VersionMismatch, got {stale:?}"
    );
    assert_eq!(committed().len(), before, "a failed webhook commits no events");
    assert_eq!(repo.get(a.id).await.unwrap().unwrap(), a, "a failed webhook changes nothing");

    // The redelivery applies.
    let event = succeeded(&a);
    let first = repo.apply_webhook("sandbox", "evt_1", Some((&next, 1)), std::slice::from_ref(&event)).await.unwrap();
    assert_eq!(first, WebhookReceipt::Applied, "a failed event can be redelivered");
    let stored = repo.get(a.id).await.unwrap().unwrap();
    assert_eq!((stored.status, stored.version), (IntentStatus::Succeeded, 2), "the update is applied at version + 1");
    assert_eq!(committed().last().map(|e| e.id), Some(event.id), "its events are committed");

    // A replay changes nothing, whatever it carries.
    let before = committed().len();
    let mut other = stored.clone();
    other.status = IntentStatus::Canceled;
    let replay = repo.apply_webhook("sandbox", "evt_1", Some((&other, 2)), &[succeeded(&a)]).await.unwrap();
    assert_eq!(replay, WebhookReceipt::Duplicate, "a replay is Duplicate");
    assert_eq!(repo.get(a.id).await.unwrap().unwrap(), stored, "a replay changes nothing");
    assert_eq!(committed().len(), before, "a replay commits no events");

    // Without an update the event is just recorded; ids are per provider.
    assert_eq!(repo.apply_webhook("sandbox", "evt_2", None, &[]).await.unwrap(), WebhookReceipt::Applied);
    assert_eq!(repo.apply_webhook("sandbox", "evt_2", None, &[]).await.unwrap(), WebhookReceipt::Duplicate);
    assert_eq!(
        repo.apply_webhook("stripe", "evt_1", None, &[]).await.unwrap(),
        WebhookReceipt::Applied,
        "the inbox is keyed by (provider, event id)"
    );
    assert_eq!(repo.get(a.id).await.unwrap().unwrap(), stored);
}

/// 16 threads update one intent from the same version: exactly one wins.
/// Then 16 threads deliver one webhook: exactly one is `Applied`.
///
/// # Panics
/// When either is not atomic.
pub async fn payment_writes_are_atomic(repo: &dyn PaymentRepository, committed: &dyn Fn() -> Vec<Event>) {
    const RACERS: usize = 16;
    let a = intent("pi_race");
    repo.insert(&a, &[]).await.unwrap();
    let race = |f: &(dyn Fn(usize) -> bool + Sync)| -> usize {
        let barrier = Barrier::new(RACERS);
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..RACERS)
                .map(|n| {
                    let barrier = &barrier;
                    s.spawn(move || {
                        barrier.wait();
                        f(n)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("racer panicked")).filter(|won| *won).count()
        })
    };

    let before = committed().len();
    let winners = race(&|n| {
        let mut next = a.clone();
        next.attempts.clear();
        next.status = if n % 2 == 0 { IntentStatus::Succeeded } else { IntentStatus::Canceled };
        futures::executor::block_on(repo.update(&next, 1, &[succeeded(&a)])).is_ok()
    });
    assert_eq!(winners, 1, "exactly one of {RACERS} updates from one version wins");
    assert_eq!(committed().len() - before, 1, "only the winning update commits its event");
    assert_eq!(repo.get(a.id).await.unwrap().unwrap().version, 2);

    let before = committed().len();
    let applied = race(&|_| {
        let receipt = futures::executor::block_on(repo.apply_webhook("sandbox", "evt_race", None, &[succeeded(&a)]));
        receipt.expect("apply_webhook") == WebhookReceipt::Applied
    });
    assert_eq!(applied, 1, "exactly one of {RACERS} deliveries of one webhook is Applied");
    assert_eq!(committed().len() - before, 1, "only the applied delivery commits its event");
}

/// The checkout: an order stored with its intent and events, read back
/// together; a taken order id or an intent for another order changes
/// nothing.
///
/// `orders` and `payments` are the checkout's own stores, to see what it
/// wrote and to set up an order without an intent.
///
/// # Panics
/// When the store breaks the [`Checkout`] contract.
pub async fn checkout_contract(
    checkout: &dyn Checkout,
    orders: &dyn OrderRepository,
    payments: &dyn PaymentRepository,
    idempotency: &dyn IdempotencyStore,
    committed: &dyn Fn() -> Vec<Event>,
) {
    let now = ManualClock::at_epoch_secs(1_700_000_000).now();
    let order = |total: Money| Order {
        id: OrderId::new(),
        buyer_id: UserId::new(),
        lines: Vec::new(),
        total,
        status: OrderStatus::PendingPayment,
        created_at: now,
        updated_at: now,
    };
    let placed = |o: &Order| Event::new(&OrderPlaced { order_id: o.id, buyer_id: o.buyer_id, total: o.total }, now);
    let first = order(Money::new(1999, Currency::USD));
    let mut opened = intent("pi_checkout_1");
    opened.order_id = first.id;

    let before = committed().len();
    let event = placed(&first);
    let claim = IdempotencyClaim::new(first.buyer_id.to_string(), "checkout-key");
    let terms = IdempotencyTerms::default();
    assert_eq!(idempotency.begin(&claim, "hash", now, terms).await.unwrap(), IdempotencyBegin::Started);
    let response = StoredResponse { body: serde_json::json!({ "order": first.id }) };
    let answer = KeyAnswer { claim: claim.clone(), response: response.clone() };
    let placement = Placement {
        order: first.clone(),
        events: vec![event.clone()],
        intent: Some(opened.clone()),
        answer: Some(answer),
    };
    let stored = checkout.place(&placement).await.expect("a new order with its intent");
    assert_eq!(stored.as_ref(), Some(&opened), "it answers the intent it stored");
    assert_eq!(orders.get(first.id).await.unwrap().as_ref(), Some(&first), "the order is stored");
    assert_eq!(payments.get_by_order(first.id).await.unwrap().as_ref(), Some(&opened), "the intent is stored");
    assert_eq!(ids(&committed()[before..]), vec![event.id], "the order's events are committed with it");
    assert_eq!(
        idempotency.begin(&IdempotencyClaim::new(&claim.scope, &claim.key), "hash", now, terms).await.unwrap(),
        IdempotencyBegin::Replay(response),
        "the key's answer is stored with the order"
    );
    assert_eq!(
        checkout.order_with_intent(first.id).await.unwrap(),
        Some((first.clone(), Some(opened.clone()))),
        "the order reads back with its intent"
    );

    let before = committed().len();
    let mut again = intent("pi_checkout_2");
    again.order_id = first.id;
    let taken = checkout
        .place(&Placement {
            order: first.clone(),
            events: vec![placed(&first)],
            intent: Some(again.clone()),
            answer: None,
        })
        .await;
    assert!(matches!(taken, Err(Error::Conflict { .. })), "a taken order id is Conflict, got {taken:?}");
    assert_eq!(payments.get(again.id).await.unwrap(), None, "a refused order stores no intent");
    assert_eq!(committed().len(), before, "a refused order commits no events");

    let second = order(Money::new(500, Currency::EUR));
    let elsewhere = intent("pi_checkout_3");
    let wrong = checkout
        .place(&Placement {
            order: second.clone(),
            events: vec![placed(&second)],
            intent: Some(elsewhere),
            answer: None,
        })
        .await;
    assert!(matches!(wrong, Err(Error::Validation(_))), "an intent for another order is Validation, got {wrong:?}");
    assert_eq!(orders.get(second.id).await.unwrap(), None, "a refused pair stores no order");
    assert_eq!(committed().len(), before, "a refused pair commits no events");

    let before = committed().len();
    let alone = Placement { order: second.clone(), events: vec![placed(&second)], intent: None, answer: None };
    assert_eq!(checkout.place(&alone).await.expect("an order without an intent"), None);
    assert_eq!(committed().len() - before, 1, "its event is committed");
    assert_eq!(
        checkout.order_with_intent(second.id).await.unwrap(),
        Some((second.clone(), None)),
        "an order without an intent reads back alone"
    );
    assert_eq!(checkout.order_with_intent(OrderId::new()).await.unwrap(), None, "an unknown order is None");
}

/// A checkout that writes the order and its key's answer as one unit of
/// work: a claim a retry took over (its lease ran out) stores nothing, so the
/// retry's own order is the only one; the retry's claim completes.
///
/// For stores that hold orders and idempotency keys together (SQLite,
/// PostgreSQL); [`SeparateCheckout`](crate::orders::SeparateCheckout) cannot
/// pass it.
///
/// # Panics
/// When a taken-over claim still stores its order or completes the key.
pub async fn checkout_completes_keys_in_one_unit(
    checkout: &dyn Checkout,
    orders: &dyn OrderRepository,
    idempotency: &dyn IdempotencyStore,
    committed: &dyn Fn() -> Vec<Event>,
) {
    let now = ManualClock::at_epoch_secs(1_700_000_000).now();
    let terms = IdempotencyTerms { ttl: chrono::Duration::hours(24), lease: chrono::Duration::seconds(30) };
    let buyer = UserId::new();
    let order = || Order {
        id: OrderId::new(),
        buyer_id: buyer,
        lines: Vec::new(),
        total: Money::new(700, Currency::USD),
        status: OrderStatus::PendingPayment,
        created_at: now,
        updated_at: now,
    };
    let placement = |o: &Order, claim: &IdempotencyClaim| Placement {
        order: o.clone(),
        events: vec![Event::new(&OrderPlaced { order_id: o.id, buyer_id: o.buyer_id, total: o.total }, now)],
        intent: None,
        answer: Some(KeyAnswer {
            claim: claim.clone(),
            response: StoredResponse { body: serde_json::json!({ "order": o.id }) },
        }),
    };

    let stale = IdempotencyClaim::new(buyer.to_string(), "taken-over");
    assert_eq!(idempotency.begin(&stale, "h", now, terms).await.unwrap(), IdempotencyBegin::Started);
    let later = now + terms.lease;
    let retry = IdempotencyClaim::new(buyer.to_string(), "taken-over");
    assert_eq!(idempotency.begin(&retry, "h", later, terms).await.unwrap(), IdempotencyBegin::Started, "lease over");

    let before = committed().len();
    let late = order();
    let refused = checkout.place(&placement(&late, &stale)).await;
    assert!(matches!(refused, Err(Error::Conflict { .. })), "a taken-over claim is Conflict, got {refused:?}");
    assert_eq!(orders.get(late.id).await.unwrap(), None, "a taken-over claim stores no order");
    assert_eq!(committed().len(), before, "and commits no events");

    let winner = order();
    checkout.place(&placement(&winner, &retry)).await.expect("the retry's claim places its order");
    assert_eq!(orders.get(winner.id).await.unwrap().as_ref(), Some(&winner));
    assert_eq!(
        idempotency.begin(&IdempotencyClaim::new(buyer.to_string(), "taken-over"), "h", later, terms).await.unwrap(),
        IdempotencyBegin::Replay(StoredResponse { body: serde_json::json!({ "order": winner.id }) }),
        "the key answers the retry's order"
    );

    let done = checkout.place(&placement(&order(), &retry)).await;
    assert!(matches!(done, Err(Error::Conflict { .. })), "a completed claim places nothing more, got {done:?}");
    let (mine, total) = orders.list_for_buyer(buyer, 1, 10).await.unwrap();
    assert_eq!((mine.len(), total), (1, 1), "exactly one order for the key");
}
