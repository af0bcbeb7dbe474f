//! Contract suite for [`LicenseRepository`]: every adapter runs these.
//!
//! Each function takes a fresh, empty repository. `committed` returns every
//! event the adapter has committed so far (its outbox). The concurrency
//! suites take an `Arc` and a `spawn` function that runs a future as a task
//! on a multi-threaded runtime (e.g. `&|f| { tokio::spawn(f); }`), so the
//! attempts really race.

use std::sync::Arc;

use chrono::{DateTime, Duration};
use futures::future::BoxFuture;

use crate::clock::Timestamp;
use crate::error::{Denial, Error};
use crate::events::{Event, LicenseIssued, LicenseRevoked};
use crate::ids::{LicenseId, OrderId, ProductId, UserId};
use crate::licensing::{
    ActivationOutcome, Fingerprint, License, LicenseAction, LicenseKind, LicenseRepository, LicenseSigner, Limits,
    NewLicense, Permissions, is_too_many_activations,
};

/// Runs a future as a task on a multi-threaded runtime.
pub type Spawn<'a> = &'a (dyn Fn(BoxFuture<'static, ()>) + Send + Sync);

fn t0() -> Timestamp {
    DateTime::from_timestamp(1_700_000_000, 0).expect("in range")
}

fn signer() -> LicenseSigner {
    LicenseSigner::from_seed(&[11; 32])
}

fn license(buyer: UserId, order: OrderId, product: ProductId, limits: Limits) -> License {
    let new = NewLicense {
        buyer_id: buyer,
        product_id: product,
        order_id: order,
        kind: LicenseKind::Perpetual,
        permissions: Permissions::default(),
        limits,
    };
    License::issue(new, &signer(), t0())
}

fn issued(l: &License) -> Event {
    Event::new(
        &LicenseIssued { license_id: l.id, order_id: l.order_id, buyer_id: l.buyer_id, product_id: l.product_id },
        t0(),
    )
}

fn fp(s: &str) -> Fingerprint {
    Fingerprint::parse(s).expect("valid fingerprint")
}

fn count_for(events: &[Event], id: LicenseId) -> usize {
    let id = serde_json::to_value(id).expect("ids serialize");
    events.iter().filter(|e| e.data.get("license_id") == Some(&id)).count()
}

/// Insert, the unique (order, product) key, and every read.
pub async fn insert_and_read(repo: &dyn LicenseRepository, committed: &dyn Fn() -> Vec<Event>) {
    let (buyer, order) = (UserId::new(), OrderId::new());
    let a = license(buyer, order, ProductId::new(), Limits::default());
    let b = license(buyer, order, ProductId::new(), Limits::default());
    let other = license(UserId::new(), OrderId::new(), ProductId::new(), Limits::default());
    for l in [&a, &b, &other] {
        repo.insert(l, &[issued(l)]).await.expect("insert of a new license");
    }
    assert_eq!(repo.get(a.id).await.unwrap(), Some(a.clone()), "get returns what was inserted");
    assert_eq!(repo.get(LicenseId::new()).await.unwrap(), None, "get of an unknown id is None");
    assert_eq!(repo.get_by_key(&b.key).await.unwrap(), Some(b.clone()), "get_by_key finds the license");
    assert_eq!(repo.get_by_key("key/nope.nope").await.unwrap(), None, "unknown keys are None");
    let ids = |ls: Vec<License>| ls.into_iter().map(|l| l.id).collect::<Vec<_>>();
    assert_eq!(ids(repo.list_for_buyer(buyer).await.unwrap()), [a.id, b.id], "list_for_buyer, oldest first");
    assert_eq!(ids(repo.list_for_order(order).await.unwrap()), [a.id, b.id], "list_for_order, oldest first");
    assert_eq!(
        ids(repo.list_for_buyer_products(buyer, &[b.product_id, other.product_id, a.product_id]).await.unwrap()),
        [a.id, b.id],
        "list_for_buyer_products: the buyer's own licenses for those products, oldest first"
    );
    assert_eq!(
        ids(repo.list_for_buyer_products(buyer, &[b.product_id]).await.unwrap()),
        [b.id],
        "list_for_buyer_products leaves out the buyer's other products"
    );
    assert!(repo.list_for_buyer_products(buyer, &[]).await.unwrap().is_empty(), "no products, no licenses");
    assert!(repo.list_for_order(OrderId::new()).await.unwrap().is_empty());
    assert_eq!(count_for(&committed(), a.id), 1, "insert commits its events");

    // A second license for the same order line: Conflict, nothing changes.
    let mut dup = license(buyer, order, a.product_id, Limits::default());
    dup.key = format!("{}-dup", dup.key);
    let before = committed().len();
    let err = repo.insert(&dup, &[issued(&dup)]).await.expect_err("duplicate (order, product) must fail");
    assert!(matches!(err, Error::Conflict { .. }), "duplicate (order, product) must be Conflict, got {err:?}");
    assert_eq!(repo.get(dup.id).await.unwrap(), None, "a refused insert stores nothing");
    assert_eq!(committed().len(), before, "a refused insert commits no event");
    // The same id or key again: Conflict too.
    let mut same_id = license(buyer, OrderId::new(), ProductId::new(), Limits::default());
    same_id.id = a.id;
    assert!(matches!(repo.insert(&same_id, &[]).await, Err(Error::Conflict { .. })), "duplicate id must be Conflict");
    let mut same_key = license(buyer, OrderId::new(), ProductId::new(), Limits::default());
    same_key.key.clone_from(&a.key);
    assert!(matches!(repo.insert(&same_key, &[]).await, Err(Error::Conflict { .. })), "duplicate key must be Conflict");
}

/// The batch insert: each license judged as alone (its order line, id and
/// key), in the order given, only the stored ones' events committed.
///
/// # Panics
/// When the store breaks the [`LicenseRepository::insert_all`] contract.
pub async fn insert_all_rules(repo: &dyn LicenseRepository, committed: &dyn Fn() -> Vec<Event>) {
    let buyer = UserId::new();
    let held = license(buyer, OrderId::new(), ProductId::new(), Limits::default());
    repo.insert(&held, &[]).await.unwrap();
    let fresh = |order| license(buyer, order, ProductId::new(), Limits::default());
    let (first, second, third) = (fresh(OrderId::new()), fresh(OrderId::new()), fresh(OrderId::new()));
    let taken_line = license(buyer, held.order_id, held.product_id, Limits::default());
    let same_line = license(buyer, first.order_id, first.product_id, Limits::default());
    let mut taken_key = fresh(OrderId::new());
    taken_key.key.clone_from(&held.key);
    let batch: Vec<(License, Vec<Event>)> = [&first, &taken_line, &second, &same_line, &taken_key, &third]
        .iter()
        .map(|l| ((*l).clone(), vec![issued(l)]))
        .collect();

    let before = committed().len();
    let answers = repo.insert_all(&batch).await.expect("a batch insert");
    let outcome: Vec<&str> = answers
        .iter()
        .map(|a| match a {
            Ok(()) => "stored",
            Err(Error::Conflict { .. }) => "conflict",
            Err(_) => "other",
        })
        .collect();
    assert_eq!(
        outcome,
        ["stored", "conflict", "stored", "conflict", "conflict", "stored"],
        "each license is answered as alone, in order: {answers:?}"
    );
    for l in [&first, &second, &third] {
        assert_eq!(repo.get(l.id).await.unwrap().as_ref(), Some(l), "a stored license reads back");
    }
    for l in [&taken_line, &same_line, &taken_key] {
        assert_eq!(repo.get(l.id).await.unwrap(), None, "a refused license is not stored");
    }
    let events = committed();
    let ids: Vec<_> = events[before..].iter().map(|e| e.id).collect();
    assert_eq!(
        ids,
        [&batch[0].1[0], &batch[2].1[0], &batch[5].1[0]].map(|e| e.id),
        "only stored licenses' events, in order"
    );

    let again = fresh(OrderId::new());
    let twice = vec![(again.clone(), vec![issued(&again)]), (again.clone(), vec![])];
    let before = committed().len();
    let refused = repo.insert_all(&twice).await;
    assert!(matches!(refused, Err(Error::Validation(_))), "one id twice is Validation, got {refused:?}");
    assert_eq!(repo.get(again.id).await.unwrap(), None, "a refused batch stores nothing");
    assert_eq!(committed().len(), before, "a refused batch commits no event");
    assert!(repo.insert_all(&[]).await.unwrap().is_empty(), "an empty batch answers nothing");
}

/// Activation: idempotent per fingerprint, bounded, refused on inactive licenses.
pub async fn activation_rules(repo: &dyn LicenseRepository) {
    let l = license(
        UserId::new(),
        OrderId::new(),
        ProductId::new(),
        Limits { max_activations: Some(2), ..Limits::default() },
    );
    repo.insert(&l, &[]).await.unwrap();
    let t = t0();
    assert_eq!(repo.activate(l.id, &fp("a"), t).await.unwrap(), ActivationOutcome::Activated);
    assert_eq!(
        repo.activate(l.id, &fp("a"), t).await.unwrap(),
        ActivationOutcome::AlreadyActive,
        "idempotent per fingerprint"
    );
    assert_eq!(repo.activate(l.id, &fp("b"), t).await.unwrap(), ActivationOutcome::Activated);
    let err = repo.activate(l.id, &fp("c"), t).await.expect_err("a full license must refuse");
    assert!(is_too_many_activations(&err), "full must be a too_many_activations conflict, got {err:?}");
    let stored = repo.get(l.id).await.unwrap().unwrap();
    assert_eq!(stored.activations.len(), 2);
    assert_eq!(stored.version, l.version + 2, "each new activation bumps the version");
    assert_eq!(stored.activations[0].activated_at, t);

    repo.deactivate(l.id, &fp("a"), t).await.expect("deactivate frees the slot");
    let err = repo.deactivate(l.id, &fp("a"), t).await.expect_err("deactivating twice");
    assert!(matches!(err, Error::NotFound { entity: "activation" }), "got {err:?}");
    assert_eq!(
        repo.activate(l.id, &fp("c"), t).await.unwrap(),
        ActivationOutcome::Activated,
        "the freed slot is reusable"
    );
    let err = repo.activate(LicenseId::new(), &fp("a"), t).await.expect_err("unknown license");
    assert!(matches!(err, Error::NotFound { entity: "license" }), "got {err:?}");
    let err = repo.deactivate(LicenseId::new(), &fp("a"), t).await.expect_err("unknown license");
    assert!(matches!(err, Error::NotFound { entity: "license" }), "got {err:?}");

    // Inactive licenses refuse, with the status denial.
    let stored = repo.get(l.id).await.unwrap().unwrap();
    let revoked = stored.apply(&LicenseAction::Revoke { reason: "refund".into() }, t).unwrap();
    repo.update_status(&revoked, stored.version, &[]).await.unwrap();
    let err = repo.activate(l.id, &fp("b"), t).await.expect_err("revoked licenses refuse activation");
    assert!(matches!(err, Error::Denied(Denial::LicenseRevoked)), "got {err:?}");
    let trial = {
        let mut x = license(UserId::new(), OrderId::new(), ProductId::new(), Limits::default());
        x.kind = LicenseKind::Trial { ends_at: t + Duration::seconds(10) };
        x
    };
    repo.insert(&trial, &[]).await.unwrap();
    let err = repo.activate(trial.id, &fp("a"), t + Duration::seconds(10)).await.expect_err("expired");
    assert!(matches!(err, Error::Denied(Denial::LicenseExpired)), "got {err:?}");
}

/// Standing changes: compare-and-set on the version, with events.
pub async fn update_status_rules(repo: &dyn LicenseRepository, committed: &dyn Fn() -> Vec<Event>) {
    let t = t0();
    let l = license(UserId::new(), OrderId::new(), ProductId::new(), Limits::default());
    repo.insert(&l, &[]).await.unwrap();
    repo.activate(l.id, &fp("m1"), t).await.unwrap();
    // Based on the stale version 1: refused, nothing changes.
    let stale = l.apply(&LicenseAction::Suspend { reason: "x".into() }, t).unwrap();
    let before = committed().len();
    let err = repo.update_status(&stale, l.version, &[]).await.expect_err("stale version");
    assert!(
        matches!(err, Error::VersionMismatch { expected: 1, current: 2 }),
        "stale update must be VersionMismatch{{expected:1,current:2}}, got {err:?}"
    );
    let current = repo.get(l.id).await.unwrap().unwrap();
    assert!(current.suspended_at.is_none(), "a refused update changes nothing");

    let revoked = current.apply(&LicenseAction::Revoke { reason: "refund".into() }, t).unwrap();
    let event = Event::new(
        &LicenseRevoked { license_id: l.id, order_id: l.order_id, buyer_id: l.buyer_id, reason: "refund".into() },
        t,
    );
    // A caller's copy with tampered usage must not overwrite the stored usage.
    let mut tampered = revoked.clone();
    tampered.downloads_used = 999;
    tampered.activations.clear();
    repo.update_status(&tampered, current.version, std::slice::from_ref(&event)).await.unwrap();
    let stored = repo.get(l.id).await.unwrap().unwrap();
    assert_eq!(stored.revoked_at, Some(t));
    assert_eq!(stored.revoked_reason.as_deref(), Some("refund"));
    assert_eq!(stored.version, current.version + 1, "version becomes expected + 1");
    assert_eq!((stored.downloads_used, stored.activations.len()), (0, 1), "usage is never taken from the caller");
    assert_eq!(committed().len(), before + 1, "the events are committed with the change");
    assert!(committed().contains(&event));

    let err = repo.update_status(&stored, stored.version + 5, &[]).await.expect_err("wrong version");
    assert!(matches!(err, Error::VersionMismatch { .. }));
    let mut ghost = stored.clone();
    ghost.id = LicenseId::new();
    let err = repo.update_status(&ghost, 1, &[]).await.expect_err("unknown license");
    assert!(matches!(err, Error::NotFound { .. }), "got {err:?}");
}

/// Download counting: up to the limit, never beyond, only while active.
pub async fn consume_download_rules(repo: &dyn LicenseRepository) {
    let t = t0();
    let l = license(
        UserId::new(),
        OrderId::new(),
        ProductId::new(),
        Limits { max_downloads: Some(2), ..Limits::default() },
    );
    repo.insert(&l, &[]).await.unwrap();
    assert_eq!(repo.consume_download(l.id, t).await.unwrap().downloads_used, 1);
    let second = repo.consume_download(l.id, t).await.unwrap();
    assert_eq!((second.downloads_used, second.version), (2, l.version + 2));
    let err = repo.consume_download(l.id, t).await.expect_err("at the limit");
    assert!(matches!(err, Error::Denied(Denial::DownloadLimitReached)), "got {err:?}");
    assert_eq!(repo.get(l.id).await.unwrap().unwrap().downloads_used, 2, "a refused download counts nothing");
    let err = repo.consume_download(LicenseId::new(), t).await.expect_err("unknown license");
    assert!(matches!(err, Error::NotFound { .. }), "got {err:?}");

    let unlimited =
        license(UserId::new(), OrderId::new(), ProductId::new(), Limits { max_downloads: None, ..Limits::default() });
    repo.insert(&unlimited, &[]).await.unwrap();
    for _ in 0..25 {
        repo.consume_download(unlimited.id, t).await.unwrap();
    }
    let suspended = unlimited.apply(&LicenseAction::Suspend { reason: "x".into() }, t).unwrap();
    repo.update_status(&suspended, unlimited.version + 25, &[]).await.unwrap();
    let err = repo.consume_download(unlimited.id, t).await.expect_err("suspended");
    assert!(matches!(err, Error::Denied(Denial::LicenseSuspended)), "got {err:?}");
}

/// Runs `n` racing attempts as tasks and collects their results.
async fn race<T, F>(n: usize, spawn: Spawn<'_>, attempt: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(usize) -> BoxFuture<'static, T>,
{
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for i in 0..n {
        let (barrier, tx, fut) = (barrier.clone(), tx.clone(), attempt(i));
        spawn(Box::pin(async move {
            // Start together so the attempts overlap as much as possible.
            barrier.wait().await;
            let _ = tx.send(fut.await);
        }));
    }
    drop(tx);
    let mut out = Vec::with_capacity(n);
    while let Some(r) = rx.recv().await {
        out.push(r);
    }
    assert_eq!(out.len(), n, "every racing task must report (did one panic?)");
    out
}

/// 64 concurrent activations of distinct machines with `max_activations = 5`:
/// exactly 5 succeed, the rest are `too_many_activations`.
pub async fn concurrent_activations_never_exceed_the_limit(repo: Arc<dyn LicenseRepository>, spawn: Spawn<'_>) {
    let l = license(
        UserId::new(),
        OrderId::new(),
        ProductId::new(),
        Limits { max_activations: Some(5), ..Limits::default() },
    );
    repo.insert(&l, &[]).await.unwrap();
    let id = l.id;
    let results = race(64, spawn, |i| {
        let repo = repo.clone();
        Box::pin(async move { repo.activate(id, &fp(&format!("machine-{i}")), t0()).await })
    })
    .await;
    let ok = results.iter().filter(|r| matches!(r, Ok(ActivationOutcome::Activated))).count();
    let full = results.iter().filter(|r| matches!(r, Err(e) if is_too_many_activations(e))).count();
    assert_eq!((ok, full), (5, 59), "exactly max_activations succeed; results: {results:?}");
    assert_eq!(repo.get(l.id).await.unwrap().unwrap().activations.len(), 5);

    // The same machine activating concurrently takes one slot.
    let one = license(
        UserId::new(),
        OrderId::new(),
        ProductId::new(),
        Limits { max_activations: Some(5), ..Limits::default() },
    );
    repo.insert(&one, &[]).await.unwrap();
    let one_id = one.id;
    let results = race(32, spawn, |_| {
        let repo = repo.clone();
        Box::pin(async move { repo.activate(one_id, &fp("same"), t0()).await })
    })
    .await;
    let activated = results.iter().filter(|r| matches!(r, Ok(ActivationOutcome::Activated))).count();
    let already = results.iter().filter(|r| matches!(r, Ok(ActivationOutcome::AlreadyActive))).count();
    assert_eq!((activated, already), (1, 31), "one activation, the rest idempotent: {results:?}");
    assert_eq!(repo.get(one.id).await.unwrap().unwrap().activations.len(), 1);
}

/// Concurrent inserts of different licenses for one (order, product):
/// exactly one is stored and only its events are committed.
pub async fn concurrent_duplicate_inserts_store_one(
    repo: Arc<dyn LicenseRepository>,
    committed: &dyn Fn() -> Vec<Event>,
    spawn: Spawn<'_>,
) {
    let (buyer, order, product) = (UserId::new(), OrderId::new(), ProductId::new());
    let candidates: Vec<License> = (0..16).map(|_| license(buyer, order, product, Limits::default())).collect();
    let results = race(candidates.len(), spawn, |i| {
        let (repo, l) = (repo.clone(), candidates[i].clone());
        Box::pin(async move { repo.insert(&l, &[issued(&l)]).await.map(|()| l.id) })
    })
    .await;
    let winners: Vec<LicenseId> = results.iter().filter_map(|r| r.as_ref().ok().copied()).collect();
    assert_eq!(winners.len(), 1, "exactly one insert wins: {results:?}");
    assert!(
        results.iter().all(|r| r.is_ok() || matches!(r, Err(Error::Conflict { .. }))),
        "losers get Conflict: {results:?}"
    );
    let stored = repo.list_for_order(order).await.unwrap();
    assert_eq!(stored.iter().map(|l| l.id).collect::<Vec<_>>(), winners);
    let events = committed();
    let total: usize = candidates.iter().map(|l| count_for(&events, l.id)).sum();
    assert_eq!((total, count_for(&events, winners[0])), (1, 1), "only the winner's event is committed");
}

/// Concurrent downloads never exceed `max_downloads`.
pub async fn concurrent_downloads_never_exceed_the_limit(repo: Arc<dyn LicenseRepository>, spawn: Spawn<'_>) {
    let l = license(
        UserId::new(),
        OrderId::new(),
        ProductId::new(),
        Limits { max_downloads: Some(10), ..Limits::default() },
    );
    repo.insert(&l, &[]).await.unwrap();
    let id = l.id;
    let results = race(48, spawn, |_| {
        let repo = repo.clone();
        Box::pin(async move { repo.consume_download(id, t0()).await.map(|x| x.downloads_used) })
    })
    .await;
    let mut counts: Vec<u32> = results.iter().filter_map(|r| r.as_ref().ok().copied()).collect();
    counts.sort_unstable();
    assert_eq!(counts, (1..=10).collect::<Vec<_>>(), "each success sees a distinct count up to the limit");
    let refused = results.iter().filter(|r| matches!(r, Err(Error::Denied(Denial::DownloadLimitReached)))).count();
    assert_eq!(refused, 38, "the rest are download_limit_reached: {results:?}");
    assert_eq!(repo.get(l.id).await.unwrap().unwrap().downloads_used, 10);
}
