//! The notification service: turns events into stored, sent notifications.

use std::fmt;
use std::sync::Arc;

use super::{
    Channel, Notification, NotificationRepository, NotificationSender, NotificationStatus, Preferences, StatusUpdate,
    Template, dedup_key, render,
};
use crate::auth::{Action, Actor, Resource, authorize};
use crate::catalog::{Page, PageRequest};
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::events::Event;
use crate::ids::{NotificationId, OrderId, UserId};

/// Creates, sends and lists notifications.
pub struct NotificationService {
    repo: Arc<dyn NotificationRepository>,
    sender: Arc<dyn NotificationSender>,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for NotificationService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NotificationService").finish_non_exhaustive()
    }
}

impl NotificationService {
    /// A service storing in `repo` and sending through `sender`.
    pub fn new(
        repo: Arc<dyn NotificationRepository>,
        sender: Arc<dyn NotificationSender>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { repo, sender, clock }
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
        let body = render(template, cause)?;
        let candidates: Vec<Notification> = Channel::ALL
            .into_iter()
            .map(|channel| Notification {
                id: NotificationId::new(),
                user_id,
                order_id,
                channel,
                template,
                body: body.clone(),
                status: NotificationStatus::Queued,
                attempts: 0,
                created_at: self.clock.now(),
                sent_at: None,
                dedup_key: dedup_key(cause.id, user_id, template, channel),
            })
            .collect();
        // Every channel the preferences enable (judged by the store, with
        // the insert) is stored queued before any is sent, and every
        // outcome recorded after the last send: two store round trips
        // whatever the number of channels. A crash in between leaves queued
        // records that the redelivered event sends, as before.
        let mut out = self.repo.insert_enabled(user_id, &candidates).await?;
        let mut updates = Vec::new();
        let mut slots = Vec::new();
        let mut first_error = None;
        for (slot, stored) in out.iter().enumerate() {
            if stored.status == NotificationStatus::Sent {
                continue;
            }
            let (update, error) = self.send(stored).await?;
            updates.push(update);
            slots.push(slot);
            if first_error.is_none() {
                first_error = error;
            }
        }
        if !updates.is_empty() {
            for (slot, updated) in slots.into_iter().zip(self.repo.update_statuses(&updates).await?) {
                out[slot] = updated;
            }
        }
        match first_error {
            Some(err) => Err(err),
            None => Ok(out),
        }
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
        repo.expect_insert_enabled()
            .withf(move |u, all| *u == user && all.len() == Channel::ALL.len())
            .times(1)
            .returning(|_, all| Ok(enabled(all, Preferences::default())));
        repo.expect_update_statuses()
            .withf(|all| {
                all.len() == 2
                    && all
                        .iter()
                        .all(|u| u.status == NotificationStatus::Sent && u.attempts == 1 && u.sent_at.is_some())
            })
            .times(1)
            .returning(|all| {
                Ok(all
                    .iter()
                    .map(|u| Notification {
                        id: u.id,
                        user_id: UserId::new(),
                        order_id: None,
                        channel: Channel::InApp,
                        template: Template::ProductApproved,
                        body: String::new(),
                        status: u.status,
                        attempts: u.attempts,
                        created_at: u.sent_at.unwrap(),
                        sent_at: u.sent_at,
                        dedup_key: String::new(),
                    })
                    .collect())
            });
        let mut sender = MockNotificationSender::new();
        sender.expect_send().times(2).returning(|_| Ok(()));
        let n = service(repo, sender).notify(user, None, Template::ProductApproved, &event(user)).await.unwrap();
        assert_eq!(n.status, NotificationStatus::Sent);
    }

    #[tokio::test]
    async fn an_already_sent_notification_is_not_sent_again() {
        let user = UserId::new();
        let mut repo = MockNotificationRepository::new();
        repo.expect_insert_enabled().times(1).returning(|_, all| {
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
        repo.expect_insert_enabled().returning(|_, all| Ok(enabled(all, Preferences::new(&[Channel::Email]).unwrap())));
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
        repo.expect_insert_enabled().never();
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
