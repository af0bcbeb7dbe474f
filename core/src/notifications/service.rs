//! The notification service: turns events into stored, sent notifications.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use super::live::{NotificationCreated, is_live};
use super::{
    Channel, Notification, NotificationRepository, NotificationSender, NotificationStatus, Preferences, StatusUpdate,
    Template, dedup_key, render,
};
use crate::auth::{Action, Actor, Resource, authorize};
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::events::{Event, EventPublisher};
use crate::ids::{NotificationId, OrderId, UserId};
use crate::page::{Page, PageRequest};

/// One notification request of [`NotificationService::notify_many`]: the
/// recipient, the order it concerns (if any), what to say and the event
/// that caused it (whose id makes the request idempotent).
#[derive(Debug, Clone, Copy)]
pub struct Notice<'a> {
    /// Who is notified.
    pub user_id: UserId,
    /// The order it is about, if any.
    pub order_id: Option<OrderId>,
    /// What it says.
    pub template: Template,
    /// The event it answers; its payload fills the template.
    pub cause: &'a Event,
}

/// Creates, sends and lists notifications.
pub struct NotificationService {
    repo: Arc<dyn NotificationRepository>,
    sender: Arc<dyn NotificationSender>,
    clock: Arc<dyn Clock>,
    live: Option<Arc<dyn EventPublisher>>,
}

impl fmt::Debug for NotificationService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NotificationService").finish_non_exhaustive()
    }
}

impl NotificationService {
    /// The most notifications [`Self::missed`] returns.
    pub const MISSED_LIMIT: u32 = 100;

    /// A service storing in `repo` and sending through `sender`.
    pub fn new(
        repo: Arc<dyn NotificationRepository>,
        sender: Arc<dyn NotificationSender>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { repo, sender, clock, live: None }
    }

    /// The same service, publishing a `notification.created` event
    /// ([`NotificationCreated`]) to `bus` for each in-app notification it
    /// stores, once the notice it answers is sent: what feeds the live
    /// streams of every process (see [`super::LiveNotifications`]).
    ///
    /// The event goes straight to the bus rather than through the outbox:
    /// notifications are written by event handlers, whose at-least-once
    /// retry already covers a lost publish (a failed publish fails the
    /// handler, and the retry finds the stored records and publishes them
    /// again), and the record in the store stays the source of truth that
    /// a client re-reads after a gap.
    #[must_use]
    pub fn publishing_to(mut self, bus: Arc<dyn EventPublisher>) -> Self {
        self.live = Some(bus);
        self
    }

    /// Up to [`Self::MISSED_LIMIT`] of the actor's live (in-app)
    /// notifications newer than `after`, oldest first: what a stream that
    /// resumes after `after` missed. Ids are time-ordered (UUID v7), so
    /// "newer" is a comparison of ids; a gap longer than the limit is read
    /// with the list.
    ///
    /// # Errors
    /// Store failures.
    pub async fn missed(&self, actor: &Actor, after: NotificationId) -> Result<Vec<Notification>> {
        let newest = self.list_mine(actor, PageRequest::new(1, Self::MISSED_LIMIT)?).await?;
        let mut missed: Vec<Notification> = newest.items.into_iter().filter(|n| is_live(n) && n.id > after).collect();
        missed.sort_by_key(|n| n.id);
        Ok(missed)
    }

    /// Notifies `user_id` with `template`, rendered from `cause`, on each
    /// channel their preferences enable, and returns the notification of
    /// the first of those channels (in-app when enabled). See
    /// [`NotificationService::notify_all`].
    ///
    /// # Errors
    /// As [`NotificationService::notify_all`].
    pub async fn notify(
        &self,
        user_id: UserId,
        order_id: Option<OrderId>,
        template: Template,
        cause: &Event,
    ) -> Result<Notification> {
        let mut all = self.notify_all(user_id, order_id, template, cause).await?;
        // Preferences always enable a channel, so there is a first one.
        if all.is_empty() {
            return Err(Error::internal("notify", "preferences enabled no channel"));
        }
        Ok(all.swap_remove(0))
    }

    /// Notifies `user_id` on every channel their preferences enable; one
    /// notification per channel, in [`super::Channel::ALL`] order.
    ///
    /// Idempotent per (cause event id, user, template): a second call finds
    /// the stored notifications (by [`dedup_key`]) and sends only those not
    /// yet sent, so a redelivered event never notifies twice. Concurrent
    /// calls for the same key may both send once (at-least-once); they never
    /// store two records.
    ///
    /// # Errors
    /// [`Error::Validation`] when `cause` does not fit `template`; the
    /// sender's error when a channel failed (that notification is stored as
    /// `failed` with its attempt counted, and the others are still sent), so
    /// the event handler is retried; store failures.
    pub async fn notify_all(
        &self,
        user_id: UserId,
        order_id: Option<OrderId>,
        template: Template,
        cause: &Event,
    ) -> Result<Vec<Notification>> {
        let request = Notice { user_id, order_id, template, cause };
        self.notify_many(&[request])
            .await?
            .pop()
            .unwrap_or_else(|| Err(Error::internal("notify", "no result for the one request")))
    }

    /// [`NotificationService::notify_all`] for each of `notices`, with two
    /// store round trips for all of them: every channel the recipients'
    /// preferences enable is stored queued (the store judges the
    /// preferences with the insert) before any is sent, and every outcome
    /// is recorded after the last send. A crash in between leaves queued
    /// records that the redelivered event sends, as before. Sends run
    /// concurrently.
    ///
    /// Returns one result per notice, in order: its notifications, or the
    /// error `notify_all` would have returned for it alone (a cause that
    /// does not fit its template, a failed send).
    ///
    /// # Errors
    /// Store failures, which concern every notice.
    pub async fn notify_many(&self, notices: &[Notice<'_>]) -> Result<Vec<Result<Vec<Notification>>>> {
        let mut results: Vec<Result<Vec<Notification>>> = Vec::with_capacity(notices.len());
        let mut candidates = Vec::with_capacity(notices.len() * Channel::ALL.len());
        // Which notice a stored record answers: records keep their
        // candidate's dedup key, and a key names its cause, user and template.
        let mut owners: HashMap<String, usize> = HashMap::with_capacity(candidates.capacity());
        for (slot, notice) in notices.iter().enumerate() {
            let body = match render(notice.template, notice.cause) {
                Ok(body) => body,
                Err(err) => {
                    results.push(Err(err));
                    continue;
                }
            };
            results.push(Ok(Vec::new()));
            for channel in Channel::ALL {
                let key = dedup_key(notice.cause.id, notice.user_id, notice.template, channel);
                owners.insert(key.clone(), slot);
                candidates.push(Notification {
                    id: NotificationId::new(),
                    user_id: notice.user_id,
                    order_id: notice.order_id,
                    channel,
                    template: notice.template,
                    body: body.clone(),
                    status: NotificationStatus::Queued,
                    attempts: 0,
                    created_at: self.clock.now(),
                    sent_at: None,
                    dedup_key: key,
                });
            }
        }
        if candidates.is_empty() {
            return Ok(results);
        }

        let mut stored = self.repo.insert_enabled_all(&candidates).await?;
        let mut placed = Vec::with_capacity(stored.len());
        for record in &stored {
            let slot = owners
                .get(&record.dedup_key)
                .copied()
                .ok_or_else(|| Error::internal("notify", "the store returned a notification that was not asked for"))?;
            placed.push(slot);
        }
        let unsent: Vec<usize> = (0..stored.len()).filter(|&i| stored[i].status != NotificationStatus::Sent).collect();
        let sends = futures::future::join_all(unsent.iter().map(|&i| self.send(&stored[i]))).await;
        let mut updates = Vec::with_capacity(unsent.len());
        let mut first_errors: Vec<Option<Error>> = notices.iter().map(|_| None).collect();
        for (&i, sent) in unsent.iter().zip(sends) {
            let (update, error) = sent?;
            updates.push(update);
            if let Some(err) = error {
                first_errors[placed[i]].get_or_insert(err);
            }
        }
        if !updates.is_empty() {
            for (&i, updated) in unsent.iter().zip(self.repo.update_statuses(&updates).await?) {
                stored[i] = updated;
            }
        }
        if let Some(bus) = &self.live {
            let now = self.clock.now();
            let created: Vec<Event> = stored
                .iter()
                .zip(&placed)
                .filter(|(record, slot)| is_live(record) && first_errors[**slot].is_none())
                .map(|(record, slot)| {
                    Event::new(&NotificationCreated { notification: record.clone() }, now)
                        .caused_by(notices[*slot].cause)
                })
                .collect();
            if !created.is_empty() {
                bus.publish(&created).await?;
            }
        }
        for (record, slot) in stored.into_iter().zip(placed) {
            if let Ok(out) = &mut results[slot] {
                out.push(record);
            }
        }
        for (result, error) in results.iter_mut().zip(first_errors) {
            if let Some(err) = error {
                *result = Err(err);
            }
        }
        Ok(results)
    }

    /// Sends one stored, unsent notification; returns the outcome to record.
    async fn send(&self, n: &Notification) -> Result<(StatusUpdate, Option<Error>)> {
        let attempts = n.attempts.saturating_add(1);
        let result = self.sender.send(n).await;
        let status = n.status.after_send(result.is_ok())?;
        let sent_at = result.is_ok().then(|| self.clock.now());
        let update = StatusUpdate { id: n.id, status, attempts, sent_at };
        match result {
            Ok(()) => Ok((update, None)),
            Err(err) => {
                tracing::warn!(notification_id = %n.id, channel = %n.channel, attempts, error = %err, "notification send failed");
                Ok((update, Some(err)))
            }
        }
    }

    /// The actor's own notifications, newest first.
    ///
    /// # Errors
    /// Store failures.
    pub async fn list_mine(&self, actor: &Actor, page: PageRequest) -> Result<Page<Notification>> {
        authorize(actor, Action::ViewNotifications, &Resource::User { user_id: actor.user_id })?;
        self.repo.list_for_user(actor.user_id, page).await
    }

    /// The notifications about `order_id`, oldest first: all of them for an
    /// admin, the actor's own otherwise (a vendor's and a buyer's
    /// notifications about one order stay private to each).
    ///
    /// # Errors
    /// Store failures.
    pub async fn list_for_order(&self, actor: &Actor, order_id: OrderId) -> Result<Vec<Notification>> {
        let all = self.repo.list_for_order(order_id).await?;
        if actor.is_admin() {
            return Ok(all);
        }
        Ok(all.into_iter().filter(|n| n.user_id == actor.user_id).collect())
    }

    /// The actor's channel preferences.
    ///
    /// # Errors
    /// Store failures.
    pub async fn preferences(&self, actor: &Actor) -> Result<Preferences> {
        self.repo.get_preferences(actor.user_id).await
    }

    /// Replaces the actor's channel preferences.
    ///
    /// # Errors
    /// [`Error::Validation`] on `channels` when none is enabled.
    pub async fn set_preferences(&self, actor: &Actor, preferences: Preferences) -> Result<()> {
        preferences.validate()?;
        self.repo.set_preferences(actor.user_id, preferences).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;
    use crate::clock::ManualClock;
    use crate::events::ProductApproved;
    use crate::ids::ProductId;
    use crate::notifications::{MockNotificationRepository, MockNotificationSender};
    use mockall::predicate::eq;

    fn event(vendor: UserId) -> Event {
        Event::new(
            &ProductApproved { product_id: ProductId::new(), vendor_id: vendor },
            crate::clock::Clock::now(&ManualClock::at_epoch_secs(0)),
        )
    }

    /// What a store's `insert_enabled` stores of `all` for `preferences`.
    fn enabled(all: &[Notification], preferences: Preferences) -> Vec<Notification> {
        all.iter().filter(|n| preferences.allows(n.channel)).cloned().collect()
    }

    fn service(repo: MockNotificationRepository, sender: MockNotificationSender) -> NotificationService {
        NotificationService::new(Arc::new(repo), Arc::new(sender), Arc::new(ManualClock::at_epoch_secs(100)))
    }

    #[tokio::test]
    async fn sends_once_per_enabled_channel_and_marks_sent() {
        let user = UserId::new();
        let mut repo = MockNotificationRepository::new();
        repo.expect_insert_enabled_all()
            .withf(move |all| all.len() == Channel::ALL.len() && all.iter().all(|n| n.user_id == user))
            .times(1)
            .returning(|all| Ok(enabled(all, Preferences::default())));
        repo.expect_update_statuses()
            .withf(|all| {
                all.len() == 2
                    && all
                        .iter()
                        .all(|u| u.status == NotificationStatus::Sent && u.attempts == 1 && u.sent_at.is_some())
            })
            .times(1)
            .returning(|all| Ok(crate::notifications::recorded(all, Template::ProductApproved)));
        let mut sender = MockNotificationSender::new();
        sender.expect_send().times(2).returning(|_| Ok(()));
        let n = service(repo, sender).notify(user, None, Template::ProductApproved, &event(user)).await.unwrap();
        assert_eq!(n.status, NotificationStatus::Sent);
    }

    /// What a store's `update_statuses` returns for `updates` of `stored`.
    fn updated(stored: &[Notification], updates: &[StatusUpdate]) -> Vec<Notification> {
        updates
            .iter()
            .map(|u| {
                let n = stored.iter().find(|n| n.id == u.id).expect("an update of a stored notification");
                Notification { status: u.status, attempts: u.attempts, sent_at: u.sent_at, ..n.clone() }
            })
            .collect()
    }

    #[tokio::test]
    async fn many_notices_are_stored_and_recorded_with_one_store_call_each() {
        let (alice, bob) = (UserId::new(), UserId::new());
        let (for_alice, for_bob) = (event(alice), event(bob));
        let stored = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut repo = MockNotificationRepository::new();
        let keep = stored.clone();
        repo.expect_insert_enabled_all().withf(|all| all.len() == 2 * Channel::ALL.len()).times(1).returning(
            move |all| {
                let enabled = enabled(all, Preferences::default());
                keep.lock().unwrap().clone_from(&enabled);
                Ok(enabled)
            },
        );
        let keep = stored.clone();
        repo.expect_update_statuses()
            .withf(|all| all.len() == 4)
            .times(1)
            .returning(move |all| Ok(updated(&keep.lock().unwrap(), all)));
        let mut sender = MockNotificationSender::new();
        sender.expect_send().times(4).returning(move |n| {
            if n.user_id == bob && n.channel == Channel::Email {
                Err(Error::unavailable("smtp", std::io::Error::other("down")))
            } else {
                Ok(())
            }
        });
        let notices = [
            Notice { user_id: alice, order_id: None, template: Template::ProductApproved, cause: &for_alice },
            Notice { user_id: bob, order_id: None, template: Template::ProductApproved, cause: &for_bob },
            // The cause does not fit the template: this notice alone fails.
            Notice { user_id: alice, order_id: None, template: Template::LicenseIssued, cause: &for_alice },
        ];
        let results = service(repo, sender).notify_many(&notices).await.unwrap();

        assert_eq!(results.len(), 3);
        let to_alice = results[0].as_ref().unwrap();
        assert_eq!(to_alice.iter().map(|n| n.channel).collect::<Vec<_>>(), [Channel::InApp, Channel::Email]);
        assert!(to_alice.iter().all(|n| n.user_id == alice && n.status == NotificationStatus::Sent));
        assert_eq!(results[1].as_ref().unwrap_err().code(), "unavailable", "bob's failed e-mail fails his notice");
        assert_eq!(results[2].as_ref().unwrap_err().code(), "validation");
    }

    #[tokio::test]
    async fn a_live_service_publishes_the_sent_in_app_record_caused_by_its_event() {
        let user = UserId::new();
        let cause = event(user);
        let stored = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut repo = MockNotificationRepository::new();
        let keep = stored.clone();
        repo.expect_insert_enabled_all().returning(move |all| {
            let enabled = enabled(all, Preferences::default());
            keep.lock().unwrap().clone_from(&enabled);
            Ok(enabled)
        });
        let keep = stored.clone();
        repo.expect_update_statuses().returning(move |all| Ok(updated(&keep.lock().unwrap(), all)));
        let mut sender = MockNotificationSender::new();
        sender.expect_send().times(2).returning(|_| Ok(()));
        let mut bus = crate::events::MockEventPublisher::new();
        let cause_id = cause.id;
        bus.expect_publish()
            .withf(move |events| {
                let [created] = events else { return false };
                let record: super::NotificationCreated = created.decode().unwrap();
                created.causation_id == Some(cause_id)
                    && record.notification.channel == Channel::InApp
                    && record.notification.user_id == user
                    && record.notification.status == NotificationStatus::Sent
            })
            .times(1)
            .returning(|_| Ok(()));
        let svc = service(repo, sender).publishing_to(Arc::new(bus));
        let all = svc.notify_all(user, None, Template::ProductApproved, &cause).await.unwrap();
        assert_eq!(all.len(), 2, "in-app and e-mail stored; only in-app published");
    }

    #[tokio::test]
    async fn a_failed_publish_fails_the_notices_so_the_event_is_retried() {
        let user = UserId::new();
        let mut repo = MockNotificationRepository::new();
        repo.expect_insert_enabled_all().returning(|all| {
            Ok(enabled(all, Preferences::new(&[Channel::InApp]).unwrap())
                .into_iter()
                .map(|n| Notification { status: NotificationStatus::Sent, attempts: 1, ..n })
                .collect())
        });
        let mut bus = crate::events::MockEventPublisher::new();
        bus.expect_publish().times(1).returning(|_| Err(Error::unavailable("bus", std::io::Error::other("down"))));
        let svc = service(repo, MockNotificationSender::new()).publishing_to(Arc::new(bus));
        let err = svc.notify(user, None, Template::ProductApproved, &event(user)).await.unwrap_err();
        assert_eq!(err.code(), "unavailable", "an already-sent record is published again on the retry");
    }

    #[tokio::test]
    async fn an_already_sent_notification_is_not_sent_again() {
        let user = UserId::new();
        let mut repo = MockNotificationRepository::new();
        repo.expect_insert_enabled_all().times(1).returning(|all| {
            Ok(enabled(all, Preferences::new(&[Channel::Email]).unwrap())
                .into_iter()
                .map(|n| Notification { status: NotificationStatus::Sent, attempts: 1, ..n })
                .collect())
        });
        repo.expect_update_statuses().never();
        let mut sender = MockNotificationSender::new();
        sender.expect_send().never();
        let n = service(repo, sender).notify(user, None, Template::ProductApproved, &event(user)).await.unwrap();
        assert_eq!(n.channel, Channel::Email);
    }

    #[tokio::test]
    async fn a_send_failure_is_recorded_and_reported() {
        let user = UserId::new();
        let mut repo = MockNotificationRepository::new();
        repo.expect_insert_enabled_all()
            .returning(|all| Ok(enabled(all, Preferences::new(&[Channel::Email]).unwrap())));
        repo.expect_update_statuses()
            .withf(|all| {
                all.len() == 1
                    && all[0].status == NotificationStatus::Failed
                    && all[0].attempts == 1
                    && all[0].sent_at.is_none()
            })
            .times(1)
            .returning(|_| Err(Error::not_found("notification")));
        let mut sender = MockNotificationSender::new();
        sender.expect_send().returning(|_| Err(Error::unavailable("smtp", std::io::Error::other("down"))));
        let err = service(repo, sender).notify(user, None, Template::ProductApproved, &event(user)).await.unwrap_err();
        // The store's error wins here because recording the failure failed.
        assert_eq!(err.code(), "not_found");
    }

    #[tokio::test]
    async fn a_template_that_does_not_fit_the_event_stores_nothing() {
        let user = UserId::new();
        let mut repo = MockNotificationRepository::new();
        repo.expect_insert_enabled_all().never();
        let err = service(repo, MockNotificationSender::new())
            .notify(user, None, Template::OrderPlaced, &event(user))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "validation");
    }

    #[tokio::test]
    async fn listing_is_scoped_to_the_actor() {
        let actor = Actor::new(UserId::new(), Role::Customer);
        let page = PageRequest::new(2, 10).unwrap();
        let mut repo = MockNotificationRepository::new();
        repo.expect_list_for_user()
            .with(eq(actor.user_id), eq(page))
            .times(1)
            .returning(|_, req| Ok(Page { items: vec![], total: 0, page: req.page(), limit: req.limit() }));
        let svc = service(repo, MockNotificationSender::new());
        assert_eq!(svc.list_mine(&actor, page).await.unwrap().page, 2);
    }

    #[tokio::test]
    async fn order_notifications_are_private_to_each_recipient_but_admins_see_all() {
        let (buyer, vendor) = (UserId::new(), UserId::new());
        let order = OrderId::new();
        let mut repo = MockNotificationRepository::new();
        repo.expect_list_for_order().with(eq(order)).returning(move |_| {
            Ok([buyer, vendor]
                .into_iter()
                .map(|user_id| Notification {
                    id: NotificationId::new(),
                    user_id,
                    order_id: Some(order),
                    channel: Channel::InApp,
                    template: Template::OrderPlaced,
                    body: String::new(),
                    status: NotificationStatus::Sent,
                    attempts: 1,
                    created_at: crate::clock::Clock::now(&ManualClock::at_epoch_secs(0)),
                    sent_at: None,
                    dedup_key: String::new(),
                })
                .collect())
        });
        let svc = service(repo, MockNotificationSender::new());
        let mine = svc.list_for_order(&Actor::new(buyer, Role::Customer), order).await.unwrap();
        assert_eq!(mine.iter().map(|n| n.user_id).collect::<Vec<_>>(), vec![buyer]);
        assert_eq!(svc.list_for_order(&Actor::new(UserId::new(), Role::Admin), order).await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn empty_preferences_are_rejected() {
        let actor = Actor::new(UserId::new(), Role::Customer);
        let mut repo = MockNotificationRepository::new();
        repo.expect_set_preferences().never();
        let svc = service(repo, MockNotificationSender::new());
        let none = Preferences { in_app: false, email: false, webhook: false };
        assert_eq!(svc.set_preferences(&actor, none).await.unwrap_err().code(), "validation");
    }
}
