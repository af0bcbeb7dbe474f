//! Notifications and per-user preferences ([`NotificationRepository`]); the
//! unique `dedup_key` makes a redelivered event notify nobody twice.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use bazaar_core::catalog::{Page, PageRequest};
use bazaar_core::clock::Timestamp;
use bazaar_core::ids::{NotificationId, OrderId, UserId};
use bazaar_core::notifications::{
    Notification, NotificationRepository, NotificationStatus, Preferences, StatusUpdate, check_distinct_updates,
};
use bazaar_core::{Error, Result};
use serde::Serialize;
use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use sqlx::{Postgres, Row};

use crate::codec::{db_err, from_json, int, to_json, ts, uint};
use crate::store::PgStore;

pub(crate) const BY_DEDUP_KEY: &str = "SELECT doc FROM notifications WHERE dedup_key = $1";
pub(crate) const INSERT: &str =
    "INSERT INTO notifications (id, dedup_key, user_id, order_id, created_at, doc) VALUES ($1, $2, $3, $4, $5, $6)
    ON CONFLICT (dedup_key) DO NOTHING";
// Many in one statement; a taken key (or a key twice in the batch) is
// skipped, and only the ids actually inserted come back.
pub(crate) const INSERT_ALL: &str = "INSERT INTO notifications (id, dedup_key, user_id, order_id, created_at, doc)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[])
    ON CONFLICT (dedup_key) DO NOTHING RETURNING id";
// insert_all for the candidates whose channel their user's stored
// preferences enable ($7 names the channel, which is also its field in the
// preferences document), or whose default ($8, from the core's defaults)
// does when that user has stored none. Each candidate looks up its own
// user's preferences (by primary key), so one statement serves candidates
// of many users. Reports every enabled candidate's id and whether it was
// inserted (false: its key was taken).
pub(crate) const INSERT_ENABLED: &str = "WITH enabled AS (
        SELECT c.* FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[],
                               $7::text[], $8::boolean[])
            AS c(id, dedup_key, user_id, order_id, created_at, doc, channel, by_default)
        WHERE coalesce((SELECT (p.doc::jsonb ->> c.channel)::boolean FROM notification_preferences AS p
                        WHERE p.user_id = c.user_id), c.by_default)
    ), inserted AS (
        INSERT INTO notifications (id, dedup_key, user_id, order_id, created_at, doc)
        SELECT id, dedup_key, user_id, order_id, created_at, doc FROM enabled
        ON CONFLICT (dedup_key) DO NOTHING RETURNING id
    )
    SELECT e.id, EXISTS (SELECT 1 FROM inserted AS i WHERE i.id = e.id) FROM enabled AS e";
pub(crate) const BY_DEDUP_KEYS: &str = "SELECT dedup_key, doc FROM notifications WHERE dedup_key = ANY($1)";
pub(crate) const GET: &str = "SELECT doc FROM notifications WHERE id = $1";
pub(crate) const COUNT_FOR_USER: &str = "SELECT COUNT(*) FROM notifications WHERE user_id = $1";
pub(crate) const LIST_FOR_USER: &str =
    "SELECT doc FROM notifications WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3";
pub(crate) const LIST_FOR_ORDER: &str = "SELECT doc FROM notifications WHERE order_id = $1 ORDER BY created_at, id";
// Patches the delivery fields ($2, rendered by serde like the rest of the
// document) in one statement.
pub(crate) const SET_DELIVERY: &str =
    "UPDATE notifications SET doc = (doc::jsonb || $2::jsonb)::text WHERE id = $1 RETURNING doc";
// Rows by `id = ANY($1)`, each patched with its own entry of $2. Not a join
// with the unnested arrays: a join's plan, cached by the connection while
// the table was small, would scan the whole table on every call.
pub(crate) const SET_DELIVERIES: &str = "UPDATE notifications AS n
    SET doc = (n.doc::jsonb || (SELECT u.patch FROM unnest($1::text[], $2::text[]) AS u(id, patch)
                               WHERE u.id = n.id)::jsonb)::text
    WHERE n.id = ANY($1) RETURNING n.id, n.doc";
pub(crate) const GET_PREFERENCES: &str = "SELECT doc FROM notification_preferences WHERE user_id = $1";
pub(crate) const SET_PREFERENCES: &str = "INSERT INTO notification_preferences (user_id, doc) VALUES ($1, $2)
    ON CONFLICT (user_id) DO UPDATE SET doc = excluded.doc";

/// The fields [`NotificationRepository::update_status`] changes in a
/// notification's document.
#[derive(Serialize)]
struct DeliveryPatch {
    status: NotificationStatus,
    attempts: u32,
    sent_at: Option<Timestamp>,
}

/// Notifications in PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgNotifications {
    store: PgStore,
}

impl PgNotifications {
    pub(crate) fn new(store: PgStore) -> Self {
        Self { store }
    }

    /// The stored record of each of `wanted`: itself where its id is in
    /// `inserted`, else the record that holds its dedup key, read after the
    /// insert (so also one a concurrent insert took).
    async fn stored<'a>(
        &self,
        wanted: impl Iterator<Item = &'a Notification> + Clone,
        inserted: &HashSet<String>,
    ) -> Result<Vec<Notification>> {
        let taken: Vec<String> =
            wanted.clone().filter(|n| !inserted.contains(&n.id.to_string())).map(|n| n.dedup_key.clone()).collect();
        let mut existing: HashMap<String, Notification> = HashMap::new();
        if !taken.is_empty() {
            let rows =
                sqlx::query(BY_DEDUP_KEYS).bind(taken.as_slice()).fetch_all(self.store.pool()).await.map_err(db_err)?;
            for row in &rows {
                existing.insert(row.get::<String, _>(0), from_json(row.get::<&str, _>(1))?);
            }
        }
        wanted
            .map(|n| {
                if inserted.contains(&n.id.to_string()) {
                    return Ok(n.clone());
                }
                existing.get(&n.dedup_key).cloned().ok_or_else(|| {
                    Error::internal("inserting notifications", "a skipped dedup key has no stored record")
                })
            })
            .collect()
    }
}

/// Notifications as the column arrays that `unnest` turns into rows.
struct Columns {
    ids: Vec<String>,
    keys: Vec<String>,
    users: Vec<String>,
    orders: Vec<Option<String>>,
    created: Vec<i64>,
    docs: Vec<String>,
}

impl Columns {
    fn of(notifications: &[Notification]) -> Result<Self> {
        let mut c = Self {
            ids: Vec::with_capacity(notifications.len()),
            keys: Vec::with_capacity(notifications.len()),
            users: Vec::with_capacity(notifications.len()),
            orders: Vec::with_capacity(notifications.len()),
            created: Vec::with_capacity(notifications.len()),
            docs: Vec::with_capacity(notifications.len()),
        };
        for n in notifications {
            c.ids.push(n.id.to_string());
            c.keys.push(n.dedup_key.clone());
            c.users.push(n.user_id.to_string());
            c.orders.push(n.order_id.map(|o| o.to_string()));
            c.created.push(ts(n.created_at)?);
            c.docs.push(to_json(n)?);
        }
        Ok(c)
    }

    /// Binds the columns as `$1`–`$6`, in the order the inserts name them.
    fn bind<'q>(&'q self, query: Query<'q, Postgres, PgArguments>) -> Query<'q, Postgres, PgArguments> {
        query
            .bind(self.ids.as_slice())
            .bind(self.keys.as_slice())
            .bind(self.users.as_slice())
            .bind(self.orders.as_slice())
            .bind(self.created.as_slice())
            .bind(self.docs.as_slice())
    }
}

#[async_trait]
impl NotificationRepository for PgNotifications {
    async fn insert(&self, notification: &Notification) -> Result<Notification> {
        self.store
            .run(async {
                // The unique dedup key decides a race: a concurrent insert
                // of the same key waits for the first to commit, then
                // inserts nothing and returns the stored notification.
                let (id, user) = (notification.id.to_string(), notification.user_id.to_string());
                let order = notification.order_id.map(|o| o.to_string());
                let (created_at, doc) = (ts(notification.created_at)?, to_json(notification)?);
                let inserted = self
                    .store
                    .write_one(|| {
                        sqlx::query(INSERT)
                            .bind(&id)
                            .bind(notification.dedup_key.as_str())
                            .bind(&user)
                            .bind(order.as_deref())
                            .bind(created_at)
                            .bind(&doc)
                    })
                    .await?;
                if inserted.rows_affected() == 1 {
                    return Ok(notification.clone());
                }
                let row = sqlx::query(BY_DEDUP_KEY)
                    .bind(notification.dedup_key.as_str())
                    .fetch_one(self.store.pool())
                    .await
                    .map_err(db_err)?;
                from_json(row.get::<&str, _>(0))
            })
            .await
    }

    async fn insert_all(&self, notifications: &[Notification]) -> Result<Vec<Notification>> {
        self.store
            .run(async {
                if notifications.is_empty() {
                    return Ok(Vec::new());
                }
                let c = Columns::of(notifications)?;
                let rows = self.store.write_rows(|| c.bind(sqlx::query(INSERT_ALL))).await?;
                let inserted: HashSet<String> = rows.iter().map(|r| r.get::<String, _>(0)).collect();
                self.stored(notifications.iter(), &inserted).await
            })
            .await
    }

    async fn insert_enabled_all(&self, candidates: &[Notification]) -> Result<Vec<Notification>> {
        self.store
            .run(async {
                if candidates.is_empty() {
                    return Ok(Vec::new());
                }
                let c = Columns::of(candidates)?;
                let channels: Vec<&str> = candidates.iter().map(|n| n.channel.as_str()).collect();
                let defaults: Vec<bool> = candidates.iter().map(|n| Preferences::default().allows(n.channel)).collect();
                let rows = self
                    .store
                    .write_rows(|| {
                        c.bind(sqlx::query(INSERT_ENABLED)).bind(channels.as_slice()).bind(defaults.as_slice())
                    })
                    .await?;
                let mut enabled = HashSet::with_capacity(rows.len());
                let mut inserted = HashSet::with_capacity(rows.len());
                for row in &rows {
                    let id = row.get::<String, _>(0);
                    if row.get::<bool, _>(1) {
                        inserted.insert(id.clone());
                    }
                    enabled.insert(id);
                }
                self.stored(candidates.iter().filter(|n| enabled.contains(&n.id.to_string())), &inserted).await
            })
            .await
    }

    async fn update_statuses(&self, updates: &[StatusUpdate]) -> Result<Vec<Notification>> {
        self.store
            .run(async {
                check_distinct_updates(updates)?;
                let mut ids = Vec::with_capacity(updates.len());
                let mut patches = Vec::with_capacity(updates.len());
                for u in updates {
                    ids.push(u.id.to_string());
                    patches.push(to_json(&DeliveryPatch {
                        status: u.status,
                        attempts: u.attempts,
                        sent_at: u.sent_at,
                    })?);
                }
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                let rows = self
                    .store
                    .write_rows(|| sqlx::query(SET_DELIVERIES).bind(ids.as_slice()).bind(patches.as_slice()))
                    .await?;
                let mut updated = HashMap::with_capacity(rows.len());
                for row in &rows {
                    updated.insert(row.get::<String, _>(0), from_json::<Notification>(row.get::<&str, _>(1))?);
                }
                ids.iter().map(|id| updated.remove(id).ok_or_else(|| Error::not_found("notification"))).collect()
            })
            .await
    }

    async fn get(&self, id: NotificationId) -> Result<Option<Notification>> {
        self.store
            .run(async {
                let row =
                    sqlx::query(GET).bind(id.to_string()).fetch_optional(self.store.pool()).await.map_err(db_err)?;
                row.map(|r| from_json(r.get::<&str, _>(0))).transpose()
            })
            .await
    }

    async fn list_for_user(&self, user: UserId, page: PageRequest) -> Result<Page<Notification>> {
        self.store
            .run(async {
                let user = user.to_string();
                let total: i64 = sqlx::query_scalar(COUNT_FOR_USER)
                    .bind(&user)
                    .fetch_one(self.store.pool())
                    .await
                    .map_err(db_err)?;
                let rows = sqlx::query(LIST_FOR_USER)
                    .bind(&user)
                    .bind(i64::from(page.limit()))
                    .bind(int(page.offset())?)
                    .fetch_all(self.store.pool())
                    .await
                    .map_err(db_err)?;
                let items = rows.iter().map(|r| from_json(r.get::<&str, _>(0))).collect::<Result<_>>()?;
                Ok(Page { items, total: uint(total)?, page: page.page(), limit: page.limit() })
            })
            .await
    }

    async fn list_for_order(&self, order: OrderId) -> Result<Vec<Notification>> {
        self.store
            .run(async {
                let rows = sqlx::query(LIST_FOR_ORDER)
                    .bind(order.to_string())
                    .fetch_all(self.store.pool())
                    .await
                    .map_err(db_err)?;
                rows.iter().map(|r| from_json(r.get::<&str, _>(0))).collect()
            })
            .await
    }

    async fn update_status(
        &self,
        id: NotificationId,
        status: NotificationStatus,
        attempts: u32,
        sent_at: Option<Timestamp>,
    ) -> Result<Notification> {
        self.store
            .run(async {
                let key = id.to_string();
                let patch = to_json(&DeliveryPatch { status, attempts, sent_at })?;
                let rows = self.store.write_rows(|| sqlx::query(SET_DELIVERY).bind(&key).bind(&patch)).await?;
                let row = rows.first().ok_or_else(|| Error::not_found("notification"))?;
                from_json(row.get::<&str, _>(0))
            })
            .await
    }

    async fn get_preferences(&self, user: UserId) -> Result<Preferences> {
        self.store
            .run(async {
                let row = sqlx::query(GET_PREFERENCES)
                    .bind(user.to_string())
                    .fetch_optional(self.store.pool())
                    .await
                    .map_err(db_err)?;
                row.map_or_else(|| Ok(Preferences::default()), |r| from_json(r.get::<&str, _>(0)))
            })
            .await
    }

    async fn set_preferences(&self, user: UserId, preferences: Preferences) -> Result<()> {
        self.store
            .run(async {
                let doc = to_json(&preferences)?;
                self.store.write_one(|| sqlx::query(SET_PREFERENCES).bind(user.to_string()).bind(doc.clone())).await?;
                Ok(())
            })
            .await
    }
}
