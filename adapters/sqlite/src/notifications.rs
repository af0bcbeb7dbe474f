//! Notifications and per-user preferences ([`NotificationRepository`]); the
//! unique `dedup_key` makes a redelivered event notify nobody twice.

use async_trait::async_trait;
use bazaar_core::catalog::{Page, PageRequest};
use bazaar_core::clock::Timestamp;
use bazaar_core::ids::{NotificationId, OrderId, UserId};
use bazaar_core::notifications::{
    Notification, NotificationRepository, NotificationStatus, Preferences, StatusUpdate, check_distinct_updates,
};
use bazaar_core::{Error, Result};
use sqlx::{Row, SqliteConnection};

use crate::codec::{db_err, from_json, int, to_json, ts, uint};
use crate::store::SqliteStore;

pub(crate) const BY_DEDUP_KEY: &str = "SELECT doc FROM notifications WHERE dedup_key = ?1";
pub(crate) const INSERT: &str =
    "INSERT INTO notifications (id, dedup_key, user_id, order_id, created_at, doc) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
pub(crate) const GET: &str = "SELECT doc FROM notifications WHERE id = ?1";
pub(crate) const COUNT_FOR_USER: &str = "SELECT COUNT(*) FROM notifications WHERE user_id = ?1";
pub(crate) const LIST_FOR_USER: &str =
    "SELECT doc FROM notifications WHERE user_id = ?1 ORDER BY created_at DESC, id DESC LIMIT ?2 OFFSET ?3";
pub(crate) const LIST_FOR_ORDER: &str = "SELECT doc FROM notifications WHERE order_id = ?1 ORDER BY created_at, id";
pub(crate) const SET_DOC: &str = "UPDATE notifications SET doc = ?2 WHERE id = ?1";
pub(crate) const GET_PREFERENCES: &str = "SELECT doc FROM notification_preferences WHERE user_id = ?1";
pub(crate) const SET_PREFERENCES: &str = "INSERT INTO notification_preferences (user_id, doc) VALUES (?1, ?2)
    ON CONFLICT (user_id) DO UPDATE SET doc = excluded.doc";

/// Notifications in SQLite.
#[derive(Debug, Clone)]
pub struct SqliteNotifications {
    store: SqliteStore,
}

impl SqliteNotifications {
    pub(crate) fn new(store: SqliteStore) -> Self {
        Self { store }
    }
}

#[async_trait]
impl NotificationRepository for SqliteNotifications {
    async fn insert(&self, notification: &Notification) -> Result<Notification> {
        let mut tx = self.store.write().await?;
        let stored = insert_one(&mut tx, notification).await?;
        self.store.commit(tx).await?;
        Ok(stored)
    }

    /// One transaction for the batch (a dispatcher step's notifications):
    /// a transaction per notification cost a commit and a hop to SQLite's
    /// thread each. All or nothing, which the port allows.
    async fn insert_all(&self, notifications: &[Notification]) -> Result<Vec<Notification>> {
        if notifications.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.store.write().await?;
        let mut stored = Vec::with_capacity(notifications.len());
        for notification in notifications {
            stored.push(insert_one(&mut tx, notification).await?);
        }
        self.store.commit(tx).await?;
        Ok(stored)
    }

    async fn get(&self, id: NotificationId) -> Result<Option<Notification>> {
        let row = sqlx::query(GET).bind(id.to_string()).fetch_optional(self.store.pool()).await.map_err(db_err)?;
        row.map(|r| from_json(r.get::<&str, _>(0))).transpose()
    }

    async fn list_for_user(&self, user: UserId, page: PageRequest) -> Result<Page<Notification>> {
        let user = user.to_string();
        let total: i64 =
            sqlx::query_scalar(COUNT_FOR_USER).bind(&user).fetch_one(self.store.pool()).await.map_err(db_err)?;
        let rows = sqlx::query(LIST_FOR_USER)
            .bind(&user)
            .bind(i64::from(page.limit()))
            .bind(int(page.offset())?)
            .fetch_all(self.store.pool())
            .await
            .map_err(db_err)?;
        let items = rows.iter().map(|r| from_json(r.get::<&str, _>(0))).collect::<Result<_>>()?;
        Ok(Page { items, total: uint(total)?, page: page.page(), limit: page.limit() })
    }

    async fn list_for_order(&self, order: OrderId) -> Result<Vec<Notification>> {
        let rows =
            sqlx::query(LIST_FOR_ORDER).bind(order.to_string()).fetch_all(self.store.pool()).await.map_err(db_err)?;
        rows.iter().map(|r| from_json(r.get::<&str, _>(0))).collect()
    }

    async fn update_status(
        &self,
        id: NotificationId,
        status: NotificationStatus,
        attempts: u32,
        sent_at: Option<Timestamp>,
    ) -> Result<Notification> {
        let mut tx = self.store.write().await?;
        let n = update_one(&mut tx, &StatusUpdate { id, status, attempts, sent_at }).await?;
        self.store.commit(tx).await?;
        Ok(n)
    }

    /// One transaction for the batch, as [`insert_all`](Self::insert_all);
    /// nothing is changed when one of them is missing.
    async fn update_statuses(&self, updates: &[StatusUpdate]) -> Result<Vec<Notification>> {
        check_distinct_updates(updates)?;
        if updates.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.store.write().await?;
        let mut updated = Vec::with_capacity(updates.len());
        for update in updates {
            updated.push(update_one(&mut tx, update).await?);
        }
        self.store.commit(tx).await?;
        Ok(updated)
    }

    async fn get_preferences(&self, user: UserId) -> Result<Preferences> {
        let row = sqlx::query(GET_PREFERENCES)
            .bind(user.to_string())
            .fetch_optional(self.store.pool())
            .await
            .map_err(db_err)?;
        row.map_or_else(|| Ok(Preferences::default()), |r| from_json(r.get::<&str, _>(0)))
    }

    async fn set_preferences(&self, user: UserId, preferences: Preferences) -> Result<()> {
        self.store.write_one(sqlx::query(SET_PREFERENCES).bind(user.to_string()).bind(to_json(&preferences)?)).await?;
        Ok(())
    }
}

/// Stores `notification` unless one with its `dedup_key` exists, which is
/// returned instead.
async fn insert_one(tx: &mut SqliteConnection, notification: &Notification) -> Result<Notification> {
    let existing = sqlx::query(BY_DEDUP_KEY)
        .bind(notification.dedup_key.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
    if let Some(row) = existing {
        return from_json(row.get::<&str, _>(0));
    }
    sqlx::query(INSERT)
        .bind(notification.id.to_string())
        .bind(notification.dedup_key.as_str())
        .bind(notification.user_id.to_string())
        .bind(notification.order_id.map(|o| o.to_string()))
        .bind(ts(notification.created_at)?)
        .bind(to_json(notification)?)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    Ok(notification.clone())
}

async fn update_one(tx: &mut SqliteConnection, update: &StatusUpdate) -> Result<Notification> {
    let row = sqlx::query(GET)
        .bind(update.id.to_string())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?
        .ok_or_else(|| Error::not_found("notification"))?;
    let mut n: Notification = from_json(row.get::<&str, _>(0))?;
    n.status = update.status;
    n.attempts = update.attempts;
    n.sent_at = update.sent_at;
    sqlx::query(SET_DOC).bind(update.id.to_string()).bind(to_json(&n)?).execute(&mut *tx).await.map_err(db_err)?;
    Ok(n)
}
