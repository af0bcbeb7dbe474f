//! Vendors' webhook endpoints and their delivery queue
//! ([`WebhookRepository`]).
//!
//! The queue of an endpoint is its deliveries in id order (UUID v7 text
//! under the C collation: creation order).
//!
//! # Claims
//! A claim must never hand out a delivery while an earlier pending one of
//! its endpoint waits, and never hand one to two claimers. `FOR UPDATE SKIP
//! LOCKED` alone gets the second rule but not the first: a claimer skips the
//! rows another claimer has locked but not yet leased, and its `NOT EXISTS`
//! still sees those earlier rows as due (their lease is not committed yet),
//! so it would take a later delivery of the same endpoint while the earlier
//! one is being handed out. So claims run one at a time: each is a
//! transaction that first takes a transaction-level advisory lock (one per
//! deliveries table, so schemas sharing a database do not wait for each
//! other), then picks and leases in one `UPDATE`. Under READ COMMITTED that
//! statement's snapshot is taken after the lock was granted, so it sees
//! every earlier claim's leases. Claims are one short statement, and
//! nothing else waits for the lock: queuing, recording and listing run
//! alongside.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

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
use sqlx::postgres::PgRow;

use crate::codec::{db_err, from_json, from_ts, int, is_retryable, to_json, ts, uint};
use crate::store::PgStore;

/// The columns of a delivery, in the order [`delivery`] reads them.
macro_rules! delivery_columns {
    () => {
        "id, endpoint_id, vendor_id, event_id, event_type, body, traceparent, status, attempts, next_attempt_at, \
         last_error, created_at, delivered_at"
    };
}

pub(crate) const INSERT_ENDPOINT: &str = "INSERT INTO webhook_endpoints (id, vendor_id, doc) VALUES ($1, $2, $3)";
pub(crate) const GET_ENDPOINT: &str = "SELECT doc FROM webhook_endpoints WHERE id = $1";
pub(crate) const LIST_ENDPOINTS: &str = "SELECT doc FROM webhook_endpoints WHERE vendor_id = $1 ORDER BY id";
// Replaces the URL, events, secrets and `updated_at` ($2, rendered by serde
// like the rest of the document); the owner and `created_at` stay.
pub(crate) const UPDATE_ENDPOINT: &str =
    "UPDATE webhook_endpoints SET doc = (doc::jsonb || $2::jsonb)::text WHERE id = $1";
// Its deliveries go with it (ON DELETE CASCADE).
pub(crate) const DELETE_ENDPOINT: &str = "DELETE FROM webhook_endpoints WHERE id = $1";
// Many in one statement. A delivery whose endpoint, event and type already
// have one is skipped (the unique constraint decides a race: a concurrent
// insert of the same key waits for the first to commit, then inserts
// nothing), and so is one whose endpoint is gone (deleted since the caller
// listed it): it would never be delivered nor deleted. The endpoints that
// exist are looked up as an array (an init plan on the primary key), not
// joined, for the reason given at `CLAIM`. Rows go in key order, so two
// batches with common keys take their locks in one order.
pub(crate) const ENQUEUE: &str = concat!(
    "INSERT INTO webhook_deliveries (",
    delivery_columns!(),
    ") SELECT u.* FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                             $8::text[], $9::bigint[], $10::bigint[], $11::text[], $12::bigint[], $13::bigint[])
        AS u(",
    delivery_columns!(),
    ")
    WHERE u.endpoint_id = ANY(ARRAY(SELECT e.id FROM webhook_endpoints AS e WHERE e.id = ANY($2)))
    ORDER BY u.endpoint_id, u.event_id, u.event_type
    ON CONFLICT (endpoint_id, event_id, event_type) DO NOTHING"
);
// Serializes claims (see the module docs), per deliveries table: $1 is
// `CLAIM_LOCK_CLASS`, the table's oid tells schemas apart.
pub(crate) const LOCK_CLAIMS: &str = "SELECT pg_advisory_xact_lock($1, 'webhook_deliveries'::regclass::oid::integer)";
// Picks and leases in one statement. A due delivery is skipped while an
// earlier pending one of its endpoint is not due (waiting for a retry, or
// leased to a worker); earlier due ones come first in id order, so `LIMIT`
// keeps each endpoint's claimed deliveries a prefix of its queue. No `SKIP
// LOCKED`: claims do not contend (the lock), the only other writers of these
// rows record outcomes, replay or delete, and skipping a row being recorded
// would let the deliveries behind it overtake it; the claim waits for them
// instead, and checks the outer conditions again on a row changed meanwhile.
//
// The picked ids go to the outer UPDATE as an array (`= ANY(ARRAY(…))`, an
// init plan), not as a join, as the outbox claim does: a join's plan,
// cached while the table was small, would scan the whole table ever after.
pub(crate) const CLAIM: &str = concat!(
    "UPDATE webhook_deliveries SET next_attempt_at = $1
    WHERE id = ANY(ARRAY(
        SELECT d.id FROM webhook_deliveries AS d
        WHERE d.status = 'pending' AND d.next_attempt_at <= $2
            AND NOT EXISTS (
                SELECT 1 FROM webhook_deliveries AS e
                WHERE e.endpoint_id = d.endpoint_id AND e.status = 'pending' AND e.id < d.id
                    AND e.next_attempt_at > $2)
        ORDER BY d.id LIMIT $3))
        AND status = 'pending' AND next_attempt_at <= $2
    RETURNING ",
    delivery_columns!()
);
// Rows by `id = ANY($1)`, each set from its own entry of the arrays; not a
// join with the unnested arrays, for the reason given at `CLAIM`. Unknown
// ids (their endpoint was deleted meanwhile) match nothing.
pub(crate) const RECORD: &str = "UPDATE webhook_deliveries AS d
    SET (status, attempts, next_attempt_at, last_error, delivered_at) = (
        SELECT u.status, u.attempts, u.next_attempt_at, u.last_error, u.delivered_at
        FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::text[], $6::bigint[])
            AS u(id, status, attempts, next_attempt_at, last_error, delivered_at)
        WHERE u.id = d.id)
    WHERE d.id = ANY($1)";
pub(crate) const GET_DELIVERY: &str = concat!("SELECT ", delivery_columns!(), " FROM webhook_deliveries WHERE id = $1");
pub(crate) const COUNT_DELIVERIES: &str = "SELECT COUNT(*) FROM webhook_deliveries WHERE endpoint_id = $1";
pub(crate) const LIST_DELIVERIES: &str = concat!(
    "SELECT ",
    delivery_columns!(),
    " FROM webhook_deliveries WHERE endpoint_id = $1 ORDER BY id DESC LIMIT $2 OFFSET $3"
);
pub(crate) const COUNT_DELIVERIES_WITH_STATUS: &str =
    "SELECT COUNT(*) FROM webhook_deliveries WHERE endpoint_id = $1 AND status = $2";
pub(crate) const LIST_DELIVERIES_WITH_STATUS: &str = concat!(
    "SELECT ",
    delivery_columns!(),
    " FROM webhook_deliveries WHERE endpoint_id = $1 AND status = $2 ORDER BY id DESC LIMIT $3 OFFSET $4"
);
// Every dead delivery of the endpoint, or only $3 when it is not NULL.
pub(crate) const REPLAY: &str = "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = $2
    WHERE endpoint_id = $1 AND status = 'dead' AND ($3::text IS NULL OR id = $3)";

/// The first key of the claim lock (`pg_advisory_xact_lock(int, int)`;
/// the second is the deliveries table's oid): "bzwh".
const CLAIM_LOCK_CLASS: i32 = 0x627a_7768;
/// Extra attempts for a claim that lost a deadlock to a concurrent write.
const CLAIM_RETRIES: u32 = 3;

/// The fields [`WebhookRepository::update_endpoint`] replaces in an
/// endpoint's document.
#[derive(Serialize)]
struct EndpointPatch<'a> {
    url: &'a str,
    events: &'a [VendorEvent],
    secrets: &'a [EndpointSecret],
    updated_at: Timestamp,
}

/// Webhook endpoints and deliveries in PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgWebhooks {
    store: PgStore,
}

impl PgWebhooks {
    pub(crate) fn new(store: PgStore) -> Self {
        Self { store }
    }

    /// One claim transaction: the lock, then the pick-and-lease. The outer
    /// error is final; the inner one, a statement's, may be worth a retry.
    async fn claim_once(
        &self,
        lease_until: i64,
        now: i64,
        limit: i64,
    ) -> Result<std::result::Result<Vec<PgRow>, sqlx::Error>> {
        let mut tx = self.store.write().await?;
        let claimed = async {
            sqlx::query(LOCK_CLAIMS).bind(CLAIM_LOCK_CLASS).execute(&mut *tx).await?;
            sqlx::query(CLAIM).bind(lease_until).bind(now).bind(limit).fetch_all(&mut *tx).await
        }
        .await;
        match claimed {
            Ok(rows) => {
                self.store.commit(tx).await?;
                Ok(Ok(rows))
            }
            // Dropping the transaction rolls it back.
            Err(e) => Ok(Err(e)),
        }
    }
}

fn corrupt(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Error {
    Error::internal("reading a webhook delivery row", e)
}

fn parse_id<T: FromStr<Err = Error>>(text: &str) -> Result<T> {
    text.parse().map_err(corrupt)
}

/// A delivery row (columns as [`delivery_columns!`] names them).
fn delivery(row: &PgRow) -> Result<WebhookDelivery> {
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

/// Deliveries as the column arrays that `unnest` turns into rows.
struct Columns {
    ids: Vec<String>,
    endpoints: Vec<String>,
    vendors: Vec<String>,
    events: Vec<String>,
    types: Vec<&'static str>,
    bodies: Vec<String>,
    traceparents: Vec<Option<String>>,
    statuses: Vec<&'static str>,
    attempts: Vec<i64>,
    next_attempt_at: Vec<i64>,
    last_errors: Vec<Option<String>>,
    created_at: Vec<i64>,
    delivered_at: Vec<Option<i64>>,
}

impl Columns {
    fn of(deliveries: &[WebhookDelivery]) -> Result<Self> {
        let n = deliveries.len();
        let mut c = Self {
            ids: Vec::with_capacity(n),
            endpoints: Vec::with_capacity(n),
            vendors: Vec::with_capacity(n),
            events: Vec::with_capacity(n),
            types: Vec::with_capacity(n),
            bodies: Vec::with_capacity(n),
            traceparents: Vec::with_capacity(n),
            statuses: Vec::with_capacity(n),
            attempts: Vec::with_capacity(n),
            next_attempt_at: Vec::with_capacity(n),
            last_errors: Vec::with_capacity(n),
            created_at: Vec::with_capacity(n),
            delivered_at: Vec::with_capacity(n),
        };
        for d in deliveries {
            c.ids.push(d.id.to_string());
            c.endpoints.push(d.endpoint_id.to_string());
            c.vendors.push(d.vendor_id.to_string());
            c.events.push(d.event_id.to_string());
            c.types.push(d.event_type.as_str());
            c.bodies.push(d.body.clone());
            c.traceparents.push(d.traceparent.clone());
            c.statuses.push(d.status.as_str());
            c.attempts.push(i64::from(d.attempts));
            c.next_attempt_at.push(ts(d.next_attempt_at)?);
            c.last_errors.push(d.last_error.clone());
            c.created_at.push(ts(d.created_at)?);
            c.delivered_at.push(d.delivered_at.map(ts).transpose()?);
        }
        Ok(c)
    }
}

/// Outcomes as the column arrays [`RECORD`] binds, one per delivery (the
/// last outcome of an id given twice).
struct Outcomes {
    ids: Vec<String>,
    statuses: Vec<&'static str>,
    attempts: Vec<i64>,
    next_attempt_at: Vec<i64>,
    last_errors: Vec<Option<String>>,
    delivered_at: Vec<Option<i64>>,
}

impl Outcomes {
    fn of(updates: &[DeliveryUpdate]) -> Result<Self> {
        let mut last: HashMap<WebhookDeliveryId, usize> = HashMap::with_capacity(updates.len());
        for (i, u) in updates.iter().enumerate() {
            last.insert(u.id, i);
        }
        let n = last.len();
        let mut o = Self {
            ids: Vec::with_capacity(n),
            statuses: Vec::with_capacity(n),
            attempts: Vec::with_capacity(n),
            next_attempt_at: Vec::with_capacity(n),
            last_errors: Vec::with_capacity(n),
            delivered_at: Vec::with_capacity(n),
        };
        for (i, u) in updates.iter().enumerate() {
            if last[&u.id] != i {
                continue;
            }
            o.ids.push(u.id.to_string());
            o.statuses.push(u.status.as_str());
            o.attempts.push(i64::from(u.attempts));
            o.next_attempt_at.push(ts(u.next_attempt_at)?);
            o.last_errors.push(u.last_error.clone());
            o.delivered_at.push(u.delivered_at.map(ts).transpose()?);
        }
        Ok(o)
    }
}

#[async_trait]
impl WebhookRepository for PgWebhooks {
    async fn insert_endpoint(&self, endpoint: &WebhookEndpoint) -> Result<()> {
        self.store
            .run(async {
                let (id, vendor, doc) = (endpoint.id.to_string(), endpoint.vendor_id.to_string(), to_json(endpoint)?);
                match self.store.write_one(|| sqlx::query(INSERT_ENDPOINT).bind(&id).bind(&vendor).bind(&doc)).await {
                    Ok(_) => Ok(()),
                    Err(Error::Conflict { reason: ConflictReason::Duplicate, .. }) => {
                        Err(Error::conflict(ConflictReason::Duplicate, "webhook endpoint already exists"))
                    }
                    Err(e) => Err(e),
                }
            })
            .await
    }

    async fn get_endpoint(&self, id: WebhookEndpointId) -> Result<Option<WebhookEndpoint>> {
        self.store
            .run(async {
                let row = sqlx::query(GET_ENDPOINT)
                    .bind(id.to_string())
                    .fetch_optional(self.store.pool())
                    .await
                    .map_err(db_err)?;
                row.map(|r| from_json(r.get::<&str, _>(0))).transpose()
            })
            .await
    }

    async fn list_endpoints(&self, vendor: UserId) -> Result<Vec<WebhookEndpoint>> {
        self.store
            .run(async {
                let rows = sqlx::query(LIST_ENDPOINTS)
                    .bind(vendor.to_string())
                    .fetch_all(self.store.pool())
                    .await
                    .map_err(db_err)?;
                rows.iter().map(|r| from_json(r.get::<&str, _>(0))).collect()
            })
            .await
    }

    async fn update_endpoint(&self, endpoint: &WebhookEndpoint) -> Result<()> {
        self.store
            .run(async {
                let id = endpoint.id.to_string();
                let patch = to_json(&EndpointPatch {
                    url: &endpoint.url,
                    events: &endpoint.events,
                    secrets: &endpoint.secrets,
                    updated_at: endpoint.updated_at,
                })?;
                let done = self.store.write_one(|| sqlx::query(UPDATE_ENDPOINT).bind(&id).bind(&patch)).await?;
                if done.rows_affected() == 0 { Err(Error::not_found("webhook endpoint")) } else { Ok(()) }
            })
            .await
    }

    async fn delete_endpoint(&self, id: WebhookEndpointId) -> Result<bool> {
        self.store
            .run(async {
                let id = id.to_string();
                let done = self.store.write_one(|| sqlx::query(DELETE_ENDPOINT).bind(&id)).await?;
                Ok(done.rows_affected() == 1)
            })
            .await
    }

    async fn enqueue(&self, deliveries: &[WebhookDelivery]) -> Result<u64> {
        self.store
            .run(async {
                if deliveries.is_empty() {
                    return Ok(0);
                }
                let c = Columns::of(deliveries)?;
                let done = self
                    .store
                    .write_one(|| {
                        sqlx::query(ENQUEUE)
                            .bind(c.ids.as_slice())
                            .bind(c.endpoints.as_slice())
                            .bind(c.vendors.as_slice())
                            .bind(c.events.as_slice())
                            .bind(c.types.as_slice())
                            .bind(c.bodies.as_slice())
                            .bind(c.traceparents.as_slice())
                            .bind(c.statuses.as_slice())
                            .bind(c.attempts.as_slice())
                            .bind(c.next_attempt_at.as_slice())
                            .bind(c.last_errors.as_slice())
                            .bind(c.created_at.as_slice())
                            .bind(c.delivered_at.as_slice())
                    })
                    .await?;
                Ok(done.rows_affected())
            })
            .await
    }

    async fn claim_due(&self, now: Timestamp, limit: u32, lease_until: Timestamp) -> Result<Vec<WebhookDelivery>> {
        self.store
            .run(async {
                if limit == 0 {
                    return Ok(Vec::new());
                }
                let (lease_until, now, limit) = (ts(lease_until)?, ts(now)?, i64::from(limit));
                let mut attempt = 0;
                let rows = loop {
                    match self.claim_once(lease_until, now, limit).await? {
                        Ok(rows) => break rows,
                        Err(e) if is_retryable(&e) && attempt < CLAIM_RETRIES => {
                            attempt += 1;
                            tokio::time::sleep(Duration::from_millis(5 * u64::from(attempt))).await;
                        }
                        Err(e) => return Err(db_err(e)),
                    }
                };
                let mut claimed = rows.iter().map(delivery).collect::<Result<Vec<_>>>()?;
                // RETURNING does not promise an order.
                claimed.sort_by_key(|d| d.id);
                Ok(claimed)
            })
            .await
    }

    async fn record(&self, updates: &[DeliveryUpdate]) -> Result<()> {
        self.store
            .run(async {
                if updates.is_empty() {
                    return Ok(());
                }
                let o = Outcomes::of(updates)?;
                self.store
                    .write_one(|| {
                        sqlx::query(RECORD)
                            .bind(o.ids.as_slice())
                            .bind(o.statuses.as_slice())
                            .bind(o.attempts.as_slice())
                            .bind(o.next_attempt_at.as_slice())
                            .bind(o.last_errors.as_slice())
                            .bind(o.delivered_at.as_slice())
                    })
                    .await?;
                Ok(())
            })
            .await
    }

    async fn get_delivery(&self, id: WebhookDeliveryId) -> Result<Option<WebhookDelivery>> {
        self.store
            .run(async {
                let row = sqlx::query(GET_DELIVERY)
                    .bind(id.to_string())
                    .fetch_optional(self.store.pool())
                    .await
                    .map_err(db_err)?;
                row.as_ref().map(delivery).transpose()
            })
            .await
    }

    async fn list_deliveries(
        &self,
        endpoint: WebhookEndpointId,
        status: Option<DeliveryStatus>,
        page: PageRequest,
    ) -> Result<Page<WebhookDelivery>> {
        self.store
            .run(async {
                let endpoint = endpoint.to_string();
                let (limit, offset) = (i64::from(page.limit()), int(page.offset())?);
                let pool = self.store.pool();
                let (total, rows): (i64, _) = match status {
                    None => (
                        sqlx::query_scalar(COUNT_DELIVERIES).bind(&endpoint).fetch_one(pool).await.map_err(db_err)?,
                        sqlx::query(LIST_DELIVERIES)
                            .bind(&endpoint)
                            .bind(limit)
                            .bind(offset)
                            .fetch_all(pool)
                            .await
                            .map_err(db_err)?,
                    ),
                    Some(status) => (
                        sqlx::query_scalar(COUNT_DELIVERIES_WITH_STATUS)
                            .bind(&endpoint)
                            .bind(status.as_str())
                            .fetch_one(pool)
                            .await
                            .map_err(db_err)?,
                        sqlx::query(LIST_DELIVERIES_WITH_STATUS)
                            .bind(&endpoint)
                            .bind(status.as_str())
                            .bind(limit)
                            .bind(offset)
                            .fetch_all(pool)
                            .await
                            .map_err(db_err)?,
                    ),
                };
                let items = rows.iter().map(delivery).collect::<Result<_>>()?;
                Ok(Page { items, total: uint(total)?, page: page.page(), limit: page.limit() })
            })
            .await
    }

    async fn replay(
        &self,
        endpoint: WebhookEndpointId,
        delivery: Option<WebhookDeliveryId>,
        now: Timestamp,
    ) -> Result<u64> {
        self.store
            .run(async {
                let (endpoint, now, delivery) = (endpoint.to_string(), ts(now)?, delivery.map(|d| d.to_string()));
                let done = self
                    .store
                    .write_one(|| sqlx::query(REPLAY).bind(&endpoint).bind(now).bind(delivery.as_deref()))
                    .await?;
                Ok(done.rows_affected())
            })
            .await
    }
}
