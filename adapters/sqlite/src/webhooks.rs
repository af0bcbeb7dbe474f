//! Vendors' webhook endpoints and their delivery queue
//! ([`WebhookRepository`]).
//!
//! The queue of an endpoint is its deliveries in id order (UUID v7 text:
//! creation order). A claim is one `UPDATE … RETURNING` under the write lock
//! (`BEGIN IMMEDIATE`), like the outbox relay's: it picks the due deliveries
//! that have no earlier pending delivery of their endpoint waiting, and
//! leases them, so two claimers can never take the same delivery or
//! overtake one another within an endpoint.

use std::str::FromStr;

use async_trait::async_trait;
use bazaar_core::clock::Timestamp;
use bazaar_core::ids::{UserId, WebhookDeliveryId, WebhookEndpointId};
use bazaar_core::page::{Page, PageRequest};
use bazaar_core::webhooks::{
    DeliveryStatus, DeliveryUpdate, EndpointSecret, VendorEvent, WebhookDelivery, WebhookEndpoint, WebhookRepository,
};
use bazaar_core::{ConflictReason, Error, Result};
use serde::Serialize;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::codec::{db_err, from_json, from_ts, int, to_json, ts, uint};
use crate::store::SqliteStore;

/// The columns of a delivery, in the order [`delivery`] reads them.
macro_rules! delivery_columns {
    () => {
        "id, endpoint_id, vendor_id, event_id, event_type, body, traceparent, status, attempts, next_attempt_at, \
         last_error, created_at, delivered_at"
    };
}

pub(crate) const INSERT_ENDPOINT: &str = "INSERT INTO webhook_endpoints (id, vendor_id, doc) VALUES (?1, ?2, ?3)";
pub(crate) const GET_ENDPOINT: &str = "SELECT doc FROM webhook_endpoints WHERE id = ?1";
pub(crate) const LIST_ENDPOINTS: &str = "SELECT doc FROM webhook_endpoints WHERE vendor_id = ?1 ORDER BY id";
// Replaces the URL, events, secrets and `updated_at` (?2, rendered by serde
// like the rest of the document); the owner and `created_at` stay.
pub(crate) const UPDATE_ENDPOINT: &str = "UPDATE webhook_endpoints SET doc = json_patch(doc, ?2) WHERE id = ?1";
// Its deliveries go with it (ON DELETE CASCADE).
pub(crate) const DELETE_ENDPOINT: &str = "DELETE FROM webhook_endpoints WHERE id = ?1";
// A delivery whose endpoint, event and type already have one is skipped, and
// so is one whose endpoint is gone (deleted since the caller listed it): it
// would never be delivered nor deleted.
pub(crate) const ENQUEUE: &str = concat!(
    "INSERT INTO webhook_deliveries (",
    delivery_columns!(),
    ") SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13
    WHERE EXISTS (SELECT 1 FROM webhook_endpoints WHERE id = ?2)
    ON CONFLICT (endpoint_id, event_id, event_type) DO NOTHING"
);
// SQLite has no `FOR UPDATE SKIP LOCKED`; the equivalent is one UPDATE that
// picks and leases the rows, run under the write lock, so two claimers can
// never pick the same row. A due delivery is skipped while an earlier
// pending one of its endpoint is not due (waiting for a retry, or leased to
// a worker); earlier due ones come first in id order, so `LIMIT` keeps each
// endpoint's claimed deliveries a prefix of its queue.
pub(crate) const CLAIM: &str = concat!(
    "UPDATE webhook_deliveries SET next_attempt_at = ?1
    WHERE id IN (
        SELECT d.id FROM webhook_deliveries AS d
        WHERE d.status = 'pending' AND d.next_attempt_at <= ?2
            AND NOT EXISTS (
                SELECT 1 FROM webhook_deliveries AS e
                WHERE e.endpoint_id = d.endpoint_id AND e.status = 'pending' AND e.id < d.id
                    AND e.next_attempt_at > ?2)
        ORDER BY d.id LIMIT ?3)
    RETURNING ",
    delivery_columns!()
);
// Updates of unknown ids (their endpoint was deleted meanwhile) match nothing.
pub(crate) const RECORD: &str = "UPDATE webhook_deliveries
    SET status = ?2, attempts = ?3, next_attempt_at = ?4, last_error = ?5, delivered_at = ?6 WHERE id = ?1";
pub(crate) const GET_DELIVERY: &str = concat!("SELECT ", delivery_columns!(), " FROM webhook_deliveries WHERE id = ?1");
pub(crate) const COUNT_DELIVERIES: &str = "SELECT COUNT(*) FROM webhook_deliveries WHERE endpoint_id = ?1";
pub(crate) const LIST_DELIVERIES: &str = concat!(
    "SELECT ",
    delivery_columns!(),
    " FROM webhook_deliveries WHERE endpoint_id = ?1 ORDER BY id DESC LIMIT ?2 OFFSET ?3"
);
pub(crate) const COUNT_DELIVERIES_WITH_STATUS: &str =
    "SELECT COUNT(*) FROM webhook_deliveries WHERE endpoint_id = ?1 AND status = ?2";
pub(crate) const LIST_DELIVERIES_WITH_STATUS: &str = concat!(
    "SELECT ",
    delivery_columns!(),
    " FROM webhook_deliveries WHERE endpoint_id = ?1 AND status = ?2 ORDER BY id DESC LIMIT ?3 OFFSET ?4"
);
// Every dead delivery of the endpoint, or only ?3 when it is not NULL.
pub(crate) const REPLAY: &str = "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = ?2
    WHERE endpoint_id = ?1 AND status = 'dead' AND (?3 IS NULL OR id = ?3)";

/// The fields [`WebhookRepository::update_endpoint`] replaces in an
/// endpoint's document.
#[derive(Serialize)]
struct EndpointPatch<'a> {
    url: &'a str,
    events: &'a [VendorEvent],
    secrets: &'a [EndpointSecret],
    updated_at: Timestamp,
}

/// Webhook endpoints and deliveries in SQLite.
#[derive(Debug, Clone)]
pub struct SqliteWebhooks {
    store: SqliteStore,
}

impl SqliteWebhooks {
    pub(crate) fn new(store: SqliteStore) -> Self {
        Self { store }
    }
}

fn corrupt(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Error {
    Error::internal("reading a webhook delivery row", e)
}

fn parse_id<T: FromStr<Err = Error>>(text: &str) -> Result<T> {
    text.parse().map_err(corrupt)
}

/// A delivery row (columns as [`delivery_columns!`] names them).
fn delivery(row: &SqliteRow) -> Result<WebhookDelivery> {
    let event_type: &str = row.get(4);
    let status: &str = row.get(7);
    let attempts: i64 = row.get(8);
    let delivered_at: Option<i64> = row.get(12);
    Ok(WebhookDelivery {
        id: parse_id(row.get(0))?,
        endpoint_id: parse_id(row.get(1))?,
        vendor_id: parse_id(row.get(2))?,
        event_id: parse_id(row.get(3))?,
        event_type: VendorEvent::parse(event_type).map_err(corrupt)?,
        body: row.get(5),
        traceparent: row.get(6),
        status: DeliveryStatus::parse(status).map_err(corrupt)?,
        attempts: u32::try_from(attempts).map_err(corrupt)?,
        next_attempt_at: from_ts(row.get(9)),
        last_error: row.get(10),
        created_at: from_ts(row.get(11)),
        delivered_at: delivered_at.map(from_ts),
    })
}

#[async_trait]
impl WebhookRepository for SqliteWebhooks {
    async fn insert_endpoint(&self, endpoint: &WebhookEndpoint) -> Result<()> {
        let statement = sqlx::query(INSERT_ENDPOINT)
            .bind(endpoint.id.to_string())
            .bind(endpoint.vendor_id.to_string())
            .bind(to_json(endpoint)?);
        match self.store.write_one(statement).await {
            Ok(_) => Ok(()),
            Err(Error::Conflict { .. }) => {
                Err(Error::conflict(ConflictReason::Duplicate, "webhook endpoint already exists"))
            }
            Err(e) => Err(e),
        }
    }

    async fn get_endpoint(&self, id: WebhookEndpointId) -> Result<Option<WebhookEndpoint>> {
        let row =
            sqlx::query(GET_ENDPOINT).bind(id.to_string()).fetch_optional(self.store.pool()).await.map_err(db_err)?;
        row.map(|r| from_json(r.get::<&str, _>(0))).transpose()
    }

    async fn list_endpoints(&self, vendor: UserId) -> Result<Vec<WebhookEndpoint>> {
        let rows =
            sqlx::query(LIST_ENDPOINTS).bind(vendor.to_string()).fetch_all(self.store.pool()).await.map_err(db_err)?;
        rows.iter().map(|r| from_json(r.get::<&str, _>(0))).collect()
    }

    async fn update_endpoint(&self, endpoint: &WebhookEndpoint) -> Result<()> {
        let patch = to_json(&EndpointPatch {
            url: &endpoint.url,
            events: &endpoint.events,
            secrets: &endpoint.secrets,
            updated_at: endpoint.updated_at,
        })?;
        let done = self.store.write_one(sqlx::query(UPDATE_ENDPOINT).bind(endpoint.id.to_string()).bind(patch)).await?;
        if done.rows_affected() == 0 { Err(Error::not_found("webhook endpoint")) } else { Ok(()) }
    }

    async fn delete_endpoint(&self, id: WebhookEndpointId) -> Result<bool> {
        let done = self.store.write_one(sqlx::query(DELETE_ENDPOINT).bind(id.to_string())).await?;
        Ok(done.rows_affected() == 1)
    }

    /// One transaction for the batch; the unique (endpoint, event, type)
    /// decides which are new.
    async fn enqueue(&self, deliveries: &[WebhookDelivery]) -> Result<u64> {
        if deliveries.is_empty() {
            return Ok(0);
        }
        let mut tx = self.store.write().await?;
        let mut stored = 0;
        for d in deliveries {
            let done = sqlx::query(ENQUEUE)
                .bind(d.id.to_string())
                .bind(d.endpoint_id.to_string())
                .bind(d.vendor_id.to_string())
                .bind(d.event_id.to_string())
                .bind(d.event_type.as_str())
                .bind(d.body.as_str())
                .bind(d.traceparent.as_deref())
                .bind(d.status.as_str())
                .bind(i64::from(d.attempts))
                .bind(ts(d.next_attempt_at)?)
                .bind(d.last_error.as_deref())
                .bind(ts(d.created_at)?)
                .bind(d.delivered_at.map(ts).transpose()?)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            stored += done.rows_affected();
        }
        self.store.commit(tx).await?;
        Ok(stored)
    }

    async fn claim_due(&self, now: Timestamp, limit: u32, lease_until: Timestamp) -> Result<Vec<WebhookDelivery>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut tx = self.store.write().await?;
        let rows = sqlx::query(CLAIM)
            .bind(ts(lease_until)?)
            .bind(ts(now)?)
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err)?;
        self.store.commit(tx).await?;
        let mut claimed = rows.iter().map(delivery).collect::<Result<Vec<_>>>()?;
        // RETURNING does not promise an order.
        claimed.sort_by_key(|d| d.id);
        Ok(claimed)
    }

    /// One transaction for the batch.
    async fn record(&self, updates: &[DeliveryUpdate]) -> Result<()> {
        if updates.is_empty() {
            return Ok(());
        }
        let mut tx = self.store.write().await?;
        for u in updates {
            sqlx::query(RECORD)
                .bind(u.id.to_string())
                .bind(u.status.as_str())
                .bind(i64::from(u.attempts))
                .bind(ts(u.next_attempt_at)?)
                .bind(u.last_error.as_deref())
                .bind(u.delivered_at.map(ts).transpose()?)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        self.store.commit(tx).await
    }

    async fn get_delivery(&self, id: WebhookDeliveryId) -> Result<Option<WebhookDelivery>> {
        let row =
            sqlx::query(GET_DELIVERY).bind(id.to_string()).fetch_optional(self.store.pool()).await.map_err(db_err)?;
        row.as_ref().map(delivery).transpose()
    }

    async fn list_deliveries(
        &self,
        endpoint: WebhookEndpointId,
        status: Option<DeliveryStatus>,
        page: PageRequest,
    ) -> Result<Page<WebhookDelivery>> {
        let endpoint = endpoint.to_string();
        let (limit, offset) = (i64::from(page.limit()), int(page.offset())?);
        let (total, rows): (i64, _) = match status {
            None => (
                sqlx::query_scalar(COUNT_DELIVERIES)
                    .bind(&endpoint)
                    .fetch_one(self.store.pool())
                    .await
                    .map_err(db_err)?,
                sqlx::query(LIST_DELIVERIES)
                    .bind(&endpoint)
                    .bind(limit)
                    .bind(offset)
                    .fetch_all(self.store.pool())
                    .await
                    .map_err(db_err)?,
            ),
            Some(status) => (
                sqlx::query_scalar(COUNT_DELIVERIES_WITH_STATUS)
                    .bind(&endpoint)
                    .bind(status.as_str())
                    .fetch_one(self.store.pool())
                    .await
                    .map_err(db_err)?,
                sqlx::query(LIST_DELIVERIES_WITH_STATUS)
                    .bind(&endpoint)
                    .bind(status.as_str())
                    .bind(limit)
                    .bind(offset)
                    .fetch_all(self.store.pool())
                    .await
                    .map_err(db_err)?,
            ),
        };
        let items = rows.iter().map(delivery).collect::<Result<_>>()?;
        Ok(Page { items, total: uint(total)?, page: page.page(), limit: page.limit() })
    }

    async fn replay(
        &self,
        endpoint: WebhookEndpointId,
        delivery: Option<WebhookDeliveryId>,
        now: Timestamp,
    ) -> Result<u64> {
        let statement =
            sqlx::query(REPLAY).bind(endpoint.to_string()).bind(ts(now)?).bind(delivery.map(|d| d.to_string()));
        Ok(self.store.write_one(statement).await?.rows_affected())
    }
}
