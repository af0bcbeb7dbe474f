//! Contract suite for [`NotificationRepository`]: every adapter runs these.
//!
//! Each function takes a fresh, empty repository; the concurrency suite
//! also takes a `spawn` function that runs a future as a task on a
//! multi-threaded runtime (e.g. `&|f| { tokio::spawn(f); }`).

use std::collections::HashSet;
use std::sync::Arc;

use chrono::DateTime;
use futures::future::BoxFuture;

use crate::clock::Timestamp;
use crate::error::ErrorKind;
use crate::ids::{EventId, NotificationId, OrderId, UserId};
use crate::notifications::{
    Channel, Notification, NotificationRepository, NotificationStatus, Preferences, StatusUpdate, Template, dedup_key,
};
use crate::page::PageRequest;

/// Runs a future as a task on a multi-threaded runtime.
pub type Spawn<'a> = &'a (dyn Fn(BoxFuture<'static, ()>) + Send + Sync);

fn page(page: u32, limit: u32) -> PageRequest {
    PageRequest::new(page, limit).expect("valid page")
}

fn t0() -> Timestamp {
    DateTime::from_timestamp(1_700_000_000, 0).expect("in range")
}

fn notification(user: UserId, order: Option<OrderId>, at: Timestamp) -> Notification {
    Notification {
        id: NotificationId::new(),
        user_id: user,
        order_id: order,
        channel: Channel::InApp,
        template: Template::OrderPlaced,
        body: "Your order was placed.".into(),
        status: NotificationStatus::Queued,
        attempts: 0,
        created_at: at,
        sent_at: None,
        dedup_key: dedup_key(EventId::new(), user, Template::OrderPlaced, Channel::InApp),
    }
}

/// insert stores once per dedup key and returns the existing record after.
pub async fn insert_dedup(repo: &dyn NotificationRepository) {
    let user = UserId::new();
    let first = notification(user, None, t0());
    assert_eq!(repo.insert(&first).await.expect("insert"), first, "a new key stores and returns the notification");
    assert_eq!(repo.get(first.id).await.expect("get"), Some(first.clone()), "get returns it intact");
    let twin = Notification { id: NotificationId::new(), body: "other".into(), ..first.clone() };
    let stored = repo.insert(&twin).await.expect("a duplicate key is not an error");
    assert_eq!(stored, first, "a duplicate key returns the existing record unchanged");
    assert_eq!(repo.get(twin.id).await.expect("get"), None, "the duplicate is not stored");
    assert_eq!(repo.list_for_user(user, page(1, 10)).await.expect("list").total, 1, "one record per key");

    // The batch form: same rules per notification, results in input order.
    let fresh = notification(user, None, t0());
    let another_twin = Notification { id: NotificationId::new(), body: "again".into(), ..first.clone() };
    let stored = repo.insert_all(&[fresh.clone(), another_twin.clone()]).await.expect("insert_all");
    assert_eq!(stored, vec![fresh.clone(), first.clone()], "new keys stored, taken keys return the existing record");
    assert_eq!(repo.get(fresh.id).await.expect("get"), Some(fresh), "the new one is stored intact");
    assert_eq!(repo.get(another_twin.id).await.expect("get"), None, "the duplicate is not stored");
    assert_eq!(repo.list_for_user(user, page(1, 10)).await.expect("list").total, 2, "one record per key");
    assert!(repo.insert_all(&[]).await.expect("nothing to insert").is_empty(), "an empty batch stores nothing");
}

/// One candidate per channel for `user`, as the service makes them.
fn per_channel(user: UserId, cause: EventId) -> Vec<Notification> {
    Channel::ALL
        .into_iter()
        .map(|channel| Notification {
            channel,
            dedup_key: dedup_key(cause, user, Template::OrderPlaced, channel),
            ..notification(user, None, t0())
        })
        .collect()
}

/// insert_enabled stores the channels the user's preferences enable (the
/// defaults when none are stored), with insert_all's dedup rules.
pub async fn insert_enabled(repo: &dyn NotificationRepository) {
    let channels = |ns: &[Notification]| ns.iter().map(|n| n.channel).collect::<Vec<_>>();
    let (fresh, webhook_user) = (UserId::new(), UserId::new());

    let candidates = per_channel(fresh, EventId::new());
    let stored = repo.insert_enabled(fresh, &candidates).await.expect("insert_enabled");
    assert_eq!(channels(&stored), Preferences::default().channels(), "no stored preferences: the default channels");
    assert_eq!(stored, candidates[..stored.len()].to_vec(), "returned as given, in order");
    assert_eq!(repo.list_for_user(fresh, page(1, 10)).await.expect("list").total, 2, "only the enabled are stored");

    repo.set_preferences(webhook_user, Preferences::new(&[Channel::Webhook]).expect("valid")).await.expect("set");
    let candidates = per_channel(webhook_user, EventId::new());
    let stored = repo.insert_enabled(webhook_user, &candidates).await.expect("insert_enabled");
    assert_eq!(channels(&stored), [Channel::Webhook], "stored preferences decide");
    assert_eq!(repo.get(candidates[0].id).await.expect("get"), None, "a disabled channel is not stored");

    // Again for the same cause (a redelivery): the stored records come back,
    // sent ones included, and nothing new is stored.
    repo.update_status(stored[0].id, NotificationStatus::Sent, 1, Some(t0())).await.expect("mark sent");
    let again: Vec<Notification> =
        candidates.iter().map(|n| Notification { id: NotificationId::new(), ..n.clone() }).collect();
    let second = repo.insert_enabled(webhook_user, &again).await.expect("insert_enabled again");
    assert_eq!(second.len(), 1);
    assert_eq!((second[0].id, second[0].status), (stored[0].id, NotificationStatus::Sent), "the stored record");
    assert_eq!(repo.list_for_user(webhook_user, page(1, 10)).await.expect("list").total, 1, "one record per key");
    assert!(repo.insert_enabled(fresh, &[]).await.expect("nothing to insert").is_empty());

    let strangers = per_channel(UserId::new(), EventId::new());
    let err = repo.insert_enabled(fresh, &strangers).await.expect_err("another user's candidates");
    assert_eq!(err.kind(), ErrorKind::Invalid);
    assert_eq!(repo.get(strangers[0].id).await.expect("get"), None, "nothing is stored");
}

/// insert_enabled_all judges each candidate by its own user's preferences
/// (the defaults for a user who stored none), in one call for many users,
/// with insert_all's dedup rules; the enabled ones come back in order.
pub async fn insert_enabled_all(repo: &dyn NotificationRepository) {
    let (fresh, webhook_user, email_user) = (UserId::new(), UserId::new(), UserId::new());
    repo.set_preferences(webhook_user, Preferences::new(&[Channel::Webhook]).expect("valid")).await.expect("set");
    repo.set_preferences(email_user, Preferences::new(&[Channel::Email]).expect("valid")).await.expect("set");
    let cause = EventId::new();
    let candidates: Vec<Notification> =
        [webhook_user, fresh, email_user].into_iter().flat_map(|user| per_channel(user, cause)).collect();
    let stored = repo.insert_enabled_all(&candidates).await.expect("insert_enabled_all");
    let got: Vec<(UserId, Channel)> = stored.iter().map(|n| (n.user_id, n.channel)).collect();
    assert_eq!(
        got,
        [
            (webhook_user, Channel::Webhook),
            (fresh, Channel::InApp),
            (fresh, Channel::Email),
            (email_user, Channel::Email)
        ],
        "each user's own preferences decide, in the order given"
    );
    let enabled: Vec<Notification> =
        candidates.iter().filter(|c| got.contains(&(c.user_id, c.channel))).cloned().collect();
    assert_eq!(stored, enabled, "the enabled candidates are stored as given");
    for (user, total) in [(webhook_user, 1), (fresh, 2), (email_user, 1)] {
        assert_eq!(repo.list_for_user(user, page(1, 10)).await.expect("list").total, total, "only the enabled");
    }

    // A redelivery: the stored records come back, a sent one as sent, and
    // nothing new is stored.
    repo.update_status(stored[1].id, NotificationStatus::Sent, 1, Some(t0())).await.expect("mark sent");
    let again: Vec<Notification> =
        candidates.iter().map(|n| Notification { id: NotificationId::new(), ..n.clone() }).collect();
    let second = repo.insert_enabled_all(&again).await.expect("insert_enabled_all again");
    assert_eq!(second.iter().map(|n| n.id).collect::<Vec<_>>(), stored.iter().map(|n| n.id).collect::<Vec<_>>());
    assert_eq!(second[1].status, NotificationStatus::Sent, "the sent record as stored");
    assert_eq!(repo.list_for_user(fresh, page(1, 10)).await.expect("list").total, 2, "one record per key");
    assert!(repo.insert_enabled_all(&[]).await.expect("nothing to insert").is_empty());
}

/// Concurrent inserts of one key store exactly one record, returned to all.
pub async fn insert_dedup_race(repo: Arc<dyn NotificationRepository>, spawn: Spawn<'_>) {
    let user = UserId::new();
    let template = notification(user, None, t0());
    let mut done = Vec::new();
    for _ in 0..16 {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let repo = repo.clone();
        let candidate = Notification { id: NotificationId::new(), ..template.clone() };
        spawn(Box::pin(async move {
            let _ = tx.send(repo.insert(&candidate).await.expect("insert").id);
        }));
        done.push(rx);
    }
    let mut ids = HashSet::new();
    for rx in done {
        ids.insert(rx.await.expect("task finished"));
    }
    assert_eq!(ids.len(), 1, "every racer got the same stored record");
    assert_eq!(repo.list_for_user(user, page(1, 100)).await.expect("list").total, 1, "exactly one record stored");
}

/// list_for_user is newest first and paged with a total; list_for_order
/// is oldest first and only that order's.
pub async fn listing(repo: &dyn NotificationRepository) {
    let (me, other) = (UserId::new(), UserId::new());
    let order = OrderId::new();
    let mut mine = Vec::new();
    for i in 0..5 {
        let n = notification(me, (i % 2 == 0).then_some(order), t0() + chrono::Duration::seconds(i));
        repo.insert(&n).await.expect("insert");
        mine.push(n);
    }
    let theirs = notification(other, Some(order), t0() + chrono::Duration::seconds(100));
    repo.insert(&theirs).await.expect("insert");

    let page1 = repo.list_for_user(me, page(1, 2)).await.expect("list");
    assert_eq!((page1.total, page1.page, page1.limit), (5, 1, 2), "total counts every one of mine");
    assert_eq!(page1.items.iter().map(|n| n.id).collect::<Vec<_>>(), vec![mine[4].id, mine[3].id], "newest first");
    let page3 = repo.list_for_user(me, page(3, 2)).await.expect("list");
    assert_eq!(page3.items.iter().map(|n| n.id).collect::<Vec<_>>(), vec![mine[0].id], "last page");
    assert!(repo.list_for_user(me, page(4, 2)).await.expect("list").items.is_empty(), "past the end is empty");
    assert!(
        repo.list_for_user(UserId::new(), page(1, 10)).await.expect("list").items.is_empty(),
        "strangers have none"
    );

    let about = repo.list_for_order(order).await.expect("list_for_order");
    assert_eq!(
        about.iter().map(|n| n.id).collect::<Vec<_>>(),
        vec![mine[0].id, mine[2].id, mine[4].id, theirs.id],
        "every notification about the order, oldest first"
    );
    assert!(repo.list_for_order(OrderId::new()).await.expect("list_for_order").is_empty(), "other orders have none");
}

/// update_status changes status, attempts and sent_at; unknown ids are NotFound.
pub async fn status_updates(repo: &dyn NotificationRepository) {
    let n = notification(UserId::new(), None, t0());
    repo.insert(&n).await.expect("insert");
    let failed = repo.update_status(n.id, NotificationStatus::Failed, 1, None).await.expect("update");
    assert_eq!(
        (failed.status, failed.attempts, failed.sent_at),
        (NotificationStatus::Failed, 1, None),
        "failed recorded"
    );
    let at = t0() + chrono::Duration::seconds(5);
    let sent = repo.update_status(n.id, NotificationStatus::Sent, 2, Some(at)).await.expect("update");
    assert_eq!((sent.status, sent.attempts, sent.sent_at), (NotificationStatus::Sent, 2, Some(at)), "sent recorded");
    assert_eq!(repo.get(n.id).await.expect("get"), Some(sent.clone()), "the update is stored");
    assert_eq!(
        Notification { status: NotificationStatus::Queued, attempts: 0, sent_at: None, ..sent },
        n,
        "nothing else changed"
    );
    let err =
        repo.update_status(NotificationId::new(), NotificationStatus::Sent, 1, Some(at)).await.expect_err("unknown id");
    assert_eq!(err.kind(), ErrorKind::NotFound, "unknown ids are NotFound");

    // The batch form: each update applied, results in input order.
    let (a, b) = (notification(UserId::new(), None, t0()), notification(UserId::new(), None, t0()));
    repo.insert_all(&[a.clone(), b.clone()]).await.expect("insert_all");
    let updates = [
        StatusUpdate { id: b.id, status: NotificationStatus::Sent, attempts: 1, sent_at: Some(at) },
        StatusUpdate { id: a.id, status: NotificationStatus::Failed, attempts: 3, sent_at: None },
    ];
    let updated = repo.update_statuses(&updates).await.expect("update_statuses");
    assert_eq!(
        updated.iter().map(|n| (n.id, n.status, n.attempts, n.sent_at)).collect::<Vec<_>>(),
        vec![(b.id, NotificationStatus::Sent, 1, Some(at)), (a.id, NotificationStatus::Failed, 3, None)],
        "updated in input order"
    );
    assert_eq!(repo.get(b.id).await.expect("get").as_ref(), Some(&updated[0]), "the batch update is stored");
    assert_eq!(
        Notification { status: NotificationStatus::Queued, attempts: 0, sent_at: None, ..updated[1].clone() },
        a,
        "nothing else changed"
    );
    let twice = [updates[0], updates[0]];
    let err = repo.update_statuses(&twice).await.expect_err("one id twice");
    assert_eq!(err.kind(), ErrorKind::Invalid, "an id named twice is a validation error");
    let unknown =
        [StatusUpdate { id: NotificationId::new(), status: NotificationStatus::Sent, attempts: 1, sent_at: None }];
    let err = repo.update_statuses(&unknown).await.expect_err("unknown id");
    assert_eq!(err.kind(), ErrorKind::NotFound, "unknown ids are NotFound in a batch too");
    assert!(repo.update_statuses(&[]).await.expect("nothing to update").is_empty(), "an empty batch changes nothing");
}

/// Preferences default to in-app + e-mail and are stored per user.
pub async fn preferences(repo: &dyn NotificationRepository) {
    let (a, b) = (UserId::new(), UserId::new());
    assert_eq!(repo.get_preferences(a).await.expect("get"), Preferences::default(), "default when never set");
    let webhook_only = Preferences::new(&[Channel::Webhook]).expect("valid");
    repo.set_preferences(a, webhook_only).await.expect("set");
    assert_eq!(repo.get_preferences(a).await.expect("get"), webhook_only, "stored");
    assert_eq!(repo.get_preferences(b).await.expect("get"), Preferences::default(), "per user");
    let email_only = Preferences::new(&[Channel::Email]).expect("valid");
    repo.set_preferences(a, email_only).await.expect("set");
    assert_eq!(repo.get_preferences(a).await.expect("get"), email_only, "replaced");
}
