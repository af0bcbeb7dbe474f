//! In-memory notification store, and a sender that records what it sent.

use bazaar_core::ConflictReason;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};

use async_trait::async_trait;
use bazaar_core::catalog::{Page, PageRequest};
use bazaar_core::clock::Timestamp;
use bazaar_core::ids::{NotificationId, OrderId, UserId};
use bazaar_core::notifications::{
    Notification, NotificationRepository, NotificationSender, NotificationStatus, Preferences,
};
use bazaar_core::{Error, Result};
use parking_lot::Mutex;

#[derive(Debug, Default)]
struct State {
    by_id: HashMap<NotificationId, Notification>,
    by_key: HashMap<String, NotificationId>,
    preferences: HashMap<UserId, Preferences>,
}

/// Notifications and preferences, in memory.
#[derive(Debug, Default)]
pub struct MemoryNotifications {
    state: Mutex<State>,
}

impl MemoryNotifications {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every stored notification, oldest first.
    pub fn all(&self) -> Vec<Notification> {
        let mut all: Vec<_> = self.state.lock().by_id.values().cloned().collect();
        all.sort_by_key(|n| (n.created_at, n.id));
        all
    }
}

#[async_trait]
impl NotificationRepository for MemoryNotifications {
    async fn insert(&self, notification: &Notification) -> Result<Notification> {
        let mut state = self.state.lock();
        if let Some(id) = state.by_key.get(&notification.dedup_key) {
            return Ok(state.by_id[id].clone());
        }
        if state.by_id.contains_key(&notification.id) {
            return Err(Error::conflict(ConflictReason::Duplicate, "notification id already exists"));
        }
        state.by_key.insert(notification.dedup_key.clone(), notification.id);
        state.by_id.insert(notification.id, notification.clone());
        Ok(notification.clone())
    }

    async fn get(&self, id: NotificationId) -> Result<Option<Notification>> {
        Ok(self.state.lock().by_id.get(&id).cloned())
    }

    async fn list_for_user(&self, user: UserId, page: PageRequest) -> Result<Page<Notification>> {
        let mut mine: Vec<_> = self.state.lock().by_id.values().filter(|n| n.user_id == user).cloned().collect();
        mine.sort_by_key(|n| std::cmp::Reverse((n.created_at, n.id)));
        Ok(Page::of(&mine, page))
    }

    async fn list_for_order(&self, order: OrderId) -> Result<Vec<Notification>> {
        let mut about: Vec<_> =
            self.state.lock().by_id.values().filter(|n| n.order_id == Some(order)).cloned().collect();
        about.sort_by_key(|n| (n.created_at, n.id));
        Ok(about)
    }

    async fn update_status(
        &self,
        id: NotificationId,
        status: NotificationStatus,
        attempts: u32,
        sent_at: Option<Timestamp>,
    ) -> Result<Notification> {
        let mut state = self.state.lock();
        let n = state.by_id.get_mut(&id).ok_or_else(|| Error::not_found("notification"))?;
        n.status = status;
        n.attempts = attempts;
        n.sent_at = sent_at;
        Ok(n.clone())
    }

    async fn get_preferences(&self, user: UserId) -> Result<Preferences> {
        Ok(self.state.lock().preferences.get(&user).copied().unwrap_or_default())
    }

    async fn set_preferences(&self, user: UserId, preferences: Preferences) -> Result<()> {
        self.state.lock().preferences.insert(user, preferences);
        Ok(())
    }
}

/// A [`NotificationSender`] for tests: records every notification it
/// accepted and can be told to fail the next few sends.
#[derive(Debug, Default)]
pub struct RecordingSender {
    sent: Mutex<Vec<Notification>>,
    failures_left: AtomicU32,
}

impl RecordingSender {
    /// A sender that accepts everything.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the next `n` sends fail with [`Error::Unavailable`].
    pub fn fail_next(&self, n: u32) {
        self.failures_left.store(n, Ordering::SeqCst);
    }

    /// Everything sent so far, in order.
    pub fn sent(&self) -> Vec<Notification> {
        self.sent.lock().clone()
    }
}

#[async_trait]
impl NotificationSender for RecordingSender {
    async fn send(&self, notification: &Notification) -> Result<()> {
        let failing = self.failures_left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
        if failing {
            return Err(Error::unavailable(
                "notification channel",
                std::io::Error::other("recording sender told to fail"),
            ));
        }
        self.sent.lock().push(notification.clone());
        Ok(())
    }
}
