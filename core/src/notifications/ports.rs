//! The notification ports: where notifications and preferences are stored,
//! and how they are sent.
//!
//! Unlike the other repositories these methods take no `events`: a
//! notification is a sink of the event flow and emits no domain event.

use async_trait::async_trait;

use super::{Notification, NotificationStatus, Preferences, StatusUpdate};
use crate::clock::Timestamp;
use crate::error::Result;
use crate::ids::{NotificationId, OrderId, UserId};
use crate::page::{Page, PageRequest};

/// Where notifications and per-user preferences live.
///
/// # Example
/// ```
/// # futures::executor::block_on(async {
/// use bazaar_core::catalog::PageRequest;
/// use bazaar_core::notifications::{NotificationRepository, Preferences};
/// use bazaar_core::ids::UserId;
/// use bazaar_memory::MemoryNotifications;
///
/// let repo = MemoryNotifications::new();
/// let user = UserId::new();
/// assert_eq!(repo.get_preferences(user).await.unwrap(), Preferences::default());
/// assert_eq!(repo.list_for_user(user, PageRequest::default()).await.unwrap().total, 0);
/// # });
/// ```
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait NotificationRepository: Send + Sync {
    /// Stores `notification` unless one with the same `dedup_key` exists,
    /// and returns the stored record: `notification` itself when it was
    /// inserted, else the existing one unchanged (compare ids to tell).
    ///
    /// MUST be atomic per `dedup_key` (a unique constraint): concurrent
    /// inserts of one key store exactly one record and all return it.
    async fn insert(&self, notification: &Notification) -> Result<Notification>;

    /// [`insert`](Self::insert) for each of `notifications` (same rules,
    /// each atomic per `dedup_key`); returns the stored records in the
    /// same order. Not atomic as a whole: on an error some may be stored.
    ///
    /// The default calls `insert` once per notification; a store with a
    /// network round trip per call overrides it to make one.
    async fn insert_all(&self, notifications: &[Notification]) -> Result<Vec<Notification>> {
        let mut stored = Vec::with_capacity(notifications.len());
        for notification in notifications {
            stored.push(self.insert(notification).await?);
        }
        Ok(stored)
    }

    /// [`insert_all`](Self::insert_all) for those of `candidates` (all
    /// addressed to `user`) whose channel the user's preferences enable,
    /// [`Preferences::default`] when the user has stored none; returns the
    /// stored records of the enabled ones, in order.
    ///
    /// MUST return [`crate::Error::Validation`], storing nothing, when a
    /// candidate is addressed to another user. The default checks that,
    /// then calls [`insert_enabled_all`](Self::insert_enabled_all); stores
    /// override that one, not this.
    async fn insert_enabled(&self, user: UserId, candidates: &[Notification]) -> Result<Vec<Notification>> {
        if candidates.iter().any(|n| n.user_id != user) {
            return Err(crate::Error::invalid("candidates", "are not all addressed to the user"));
        }
        self.insert_enabled_all(candidates).await
    }

    /// [`insert_enabled`](Self::insert_enabled) for candidates addressed to
    /// any number of users: each candidate is judged by the preferences of
    /// its own `user_id`. Returns the stored records of the enabled ones,
    /// in order. Not atomic as a whole: on an error some may be stored.
    ///
    /// The default reads each user's preferences once, then makes one
    /// [`insert_all`](Self::insert_all); a store that can judge the
    /// preferences inside the insert overrides it to save those reads.
    async fn insert_enabled_all(&self, candidates: &[Notification]) -> Result<Vec<Notification>> {
        let mut preferences: std::collections::HashMap<UserId, Preferences> = std::collections::HashMap::new();
        let mut enabled = Vec::with_capacity(candidates.len());
        for n in candidates {
            let allowed = match preferences.get(&n.user_id) {
                Some(p) => p.allows(n.channel),
                None => {
                    let p = self.get_preferences(n.user_id).await?;
                    preferences.insert(n.user_id, p);
                    p.allows(n.channel)
                }
            };
            if allowed {
                enabled.push(n.clone());
            }
        }
        self.insert_all(&enabled).await
    }

    /// The notification with `id`, if any.
    async fn get(&self, id: NotificationId) -> Result<Option<Notification>>;

    /// `user`'s notifications, newest first (by `created_at`, then id),
    /// one page of them, with the user's total.
    async fn list_for_user(&self, user: UserId, page: PageRequest) -> Result<Page<Notification>>;

    /// Every notification about `order`, oldest first.
    async fn list_for_order(&self, order: OrderId) -> Result<Vec<Notification>>;

    /// Sets status, attempts and `sent_at`; returns the updated record.
    ///
    /// MUST return [`crate::Error::NotFound`] for an unknown id.
    async fn update_status(
        &self,
        id: NotificationId,
        status: NotificationStatus,
        attempts: u32,
        sent_at: Option<Timestamp>,
    ) -> Result<Notification>;

    /// [`update_status`](Self::update_status) for each of `updates`;
    /// returns the updated records in the same order. Not atomic as a
    /// whole: on an error some may be updated.
    ///
    /// MUST return [`crate::Error::NotFound`] when an id is unknown, and
    /// [`crate::Error::Validation`] (changing nothing) when an id appears
    /// twice. The default calls `update_status` once per update; a store
    /// with a network round trip per call overrides it to make one.
    async fn update_statuses(&self, updates: &[StatusUpdate]) -> Result<Vec<Notification>> {
        check_distinct_updates(updates)?;
        let mut updated = Vec::with_capacity(updates.len());
        for u in updates {
            updated.push(self.update_status(u.id, u.status, u.attempts, u.sent_at).await?);
        }
        Ok(updated)
    }

    /// `user`'s preferences; [`Preferences::default`] when never set.
    async fn get_preferences(&self, user: UserId) -> Result<Preferences>;

    /// Replaces `user`'s preferences.
    async fn set_preferences(&self, user: UserId, preferences: Preferences) -> Result<()>;
}

/// The distinct-ids rule of [`NotificationRepository::update_statuses`],
/// shared so every adapter judges and words it the same.
///
/// # Errors
/// [`crate::Error::Validation`] on `updates` when two name one notification.
pub fn check_distinct_updates(updates: &[StatusUpdate]) -> Result<()> {
    crate::batch::distinct(updates.iter().map(|u| u.id), "updates", "names a notification more than once")
}

/// Delivers a notification on its channel.
///
/// # Example
/// ```
/// # futures::executor::block_on(async {
/// use std::sync::Arc;
/// use bazaar_core::clock::{Clock, ManualClock};
/// use bazaar_core::events::{Event, ProductApproved};
/// use bazaar_core::ids::{ProductId, UserId};
/// use bazaar_core::notifications::{NotificationService, Template};
/// use bazaar_memory::{MemoryNotifications, RecordingSender};
///
/// let clock = Arc::new(ManualClock::at_epoch_secs(0));
/// let sender = Arc::new(RecordingSender::new());
/// let service = NotificationService::new(Arc::new(MemoryNotifications::new()), sender.clone(), clock.clone());
/// let vendor = UserId::new();
/// let cause = Event::new(&ProductApproved { product_id: ProductId::new(), vendor_id: vendor }, clock.now());
/// service.notify(vendor, None, Template::ProductApproved, &cause).await.unwrap();
/// service.notify(vendor, None, Template::ProductApproved, &cause).await.unwrap();
/// // In-app and e-mail by default, each sent once however often the event arrives.
/// assert_eq!(sender.sent().len(), 2);
/// # });
/// ```
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait NotificationSender: Send + Sync {
    /// Sends `notification` on `notification.channel`.
    ///
    /// MUST return `Ok` only once the channel accepted it, and map delivery
    /// failures to [`crate::Error::Unavailable`]. May be called again for the
    /// same notification after a failure (at-least-once).
    async fn send(&self, notification: &Notification) -> Result<()>;
}
