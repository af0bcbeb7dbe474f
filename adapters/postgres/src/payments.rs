//! Payment intents ([`PaymentRepository`]) and the webhook inbox, whose
//! primary key (provider, event id) makes a replayed webhook change nothing.

use async_trait::async_trait;
use bazaar_core::events::Event;
use bazaar_core::ids::{OrderId, PaymentIntentId};
use bazaar_core::payments::{PaymentIntent, PaymentRepository, WebhookReceipt};
use bazaar_core::{Error, Result};
use sqlx::Row;

use crate::codec::{db_err, from_json, int, to_json, uint};
use crate::outbox::{EventRows, append};
use crate::store::{PgStore, WriteTx};

pub(crate) const INSERT: &str = crate::outbox::with_events!(
    "INSERT INTO payment_intents (id, order_id, provider, provider_ref, version, doc)
        VALUES ($1, $2, $3, $4, $5, $6) RETURNING 1",
    "1",
    7,
    8,
    9,
    10
);
pub(crate) const GET: &str = "SELECT doc FROM payment_intents WHERE id = $1";
pub(crate) const BY_ORDER: &str = "SELECT doc FROM payment_intents WHERE order_id = $1";
pub(crate) const BY_PROVIDER_REF: &str = "SELECT doc FROM payment_intents WHERE provider = $1 AND provider_ref = $2";
// Locked so the version check and the write are one step.
pub(crate) const VERSION: &str = "SELECT version FROM payment_intents WHERE id = $1 FOR UPDATE";
pub(crate) const UPDATE: &str = "UPDATE payment_intents
    SET order_id = $3, provider = $4, provider_ref = $5, version = $6, doc = $7
    WHERE id = $1 AND version = $2";
// The version compare-and-set and the events as one statement.
pub(crate) const UPDATE_WITH_EVENTS: &str = crate::outbox::with_events!(
    "UPDATE payment_intents
        SET order_id = $3, provider = $4, provider_ref = $5, version = $6, doc = $7
        WHERE id = $1 AND version = $2 RETURNING 1",
    "1",
    8,
    9,
    10,
    11
);
pub(crate) const CURRENT_VERSION: &str = "SELECT version FROM payment_intents WHERE id = $1";
pub(crate) const RECORD_WEBHOOK: &str =
    "INSERT INTO webhook_inbox (provider, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING";

/// Payment intents in PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgPayments {
    store: PgStore,
}

impl PgPayments {
    pub(crate) fn new(store: PgStore) -> Self {
        Self { store }
    }

    async fn one(&self, sql: &'static str, a: String, b: Option<&str>) -> Result<Option<PaymentIntent>> {
        let mut q = sqlx::query(sql).bind(a);
        if let Some(b) = b {
            q = q.bind(b.to_owned());
        }
        let row = q.fetch_optional(self.store.pool()).await.map_err(db_err)?;
        row.map(|r| from_json(r.get::<&str, _>(0))).transpose()
    }
}

/// The optimistic update shared by `update` and `apply_webhook`.
async fn update_in(tx: &mut WriteTx, intent: &PaymentIntent, expected_version: u64) -> Result<PaymentIntent> {
    let current: i64 = sqlx::query_scalar(VERSION)
        .bind(intent.id.to_string())
        .fetch_optional(&mut **tx)
        .await
        .map_err(db_err)?
        .ok_or_else(|| Error::not_found("payment intent"))?;
    let current = uint(current)?;
    if current != expected_version {
        return Err(Error::VersionMismatch { expected: expected_version, current });
    }
    let stored = PaymentIntent { version: expected_version + 1, ..intent.clone() };
    sqlx::query(UPDATE)
        .bind(stored.id.to_string())
        .bind(int(expected_version)?)
        .bind(stored.order_id.to_string())
        .bind(stored.provider.as_str())
        .bind(stored.provider_ref.as_deref())
        .bind(int(stored.version)?)
        .bind(to_json(&stored)?)
        .execute(&mut **tx)
        .await
        .map_err(db_err)?;
    Ok(stored)
}

#[async_trait]
impl PaymentRepository for PgPayments {
    async fn insert(&self, intent: &PaymentIntent, events: &[Event]) -> Result<()> {
        self.store
            .run(async {
                let (id, order) = (intent.id.to_string(), intent.order_id.to_string());
                let (version, doc) = (int(intent.version)?, to_json(intent)?);
                let events = EventRows::new(events)?;
                self.store
                    .write_rows(|| {
                        events.bind(
                            sqlx::query(INSERT)
                                .bind(&id)
                                .bind(&order)
                                .bind(intent.provider.as_str())
                                .bind(intent.provider_ref.as_deref())
                                .bind(version)
                                .bind(&doc),
                        )
                    })
                    .await?;
                Ok(())
            })
            .await
    }

    async fn get(&self, id: PaymentIntentId) -> Result<Option<PaymentIntent>> {
        self.store.run(async { self.one(GET, id.to_string(), None).await }).await
    }

    async fn get_by_order(&self, order_id: OrderId) -> Result<Option<PaymentIntent>> {
        self.store.run(async { self.one(BY_ORDER, order_id.to_string(), None).await }).await
    }

    async fn get_by_provider_ref(&self, provider: &str, provider_ref: &str) -> Result<Option<PaymentIntent>> {
        self.store.run(async { self.one(BY_PROVIDER_REF, provider.to_owned(), Some(provider_ref)).await }).await
    }

    async fn update(&self, intent: &PaymentIntent, expected_version: u64, events: &[Event]) -> Result<PaymentIntent> {
        self.store
            .run(async {
                let stored = PaymentIntent { version: expected_version + 1, ..intent.clone() };
                let (id, order) = (stored.id.to_string(), stored.order_id.to_string());
                let (expected, version, doc) = (int(expected_version)?, int(stored.version)?, to_json(&stored)?);
                let events = EventRows::new(events)?;
                let rows = self
                    .store
                    .write_rows(|| {
                        events.bind(
                            sqlx::query(UPDATE_WITH_EVENTS)
                                .bind(&id)
                                .bind(expected)
                                .bind(&order)
                                .bind(stored.provider.as_str())
                                .bind(stored.provider_ref.as_deref())
                                .bind(version)
                                .bind(&doc),
                        )
                    })
                    .await?;
                if !rows.is_empty() {
                    return Ok(stored);
                }
                // Nothing matched: say why (gone, or another version by now).
                let current: i64 = sqlx::query_scalar(CURRENT_VERSION)
                    .bind(&id)
                    .fetch_optional(self.store.pool())
                    .await
                    .map_err(db_err)?
                    .ok_or_else(|| Error::not_found("payment intent"))?;
                Err(Error::VersionMismatch { expected: expected_version, current: uint(current)? })
            })
            .await
    }

    async fn apply_webhook<'a>(
        &self,
        provider: &str,
        event_id: &str,
        update: Option<(&'a PaymentIntent, u64)>,
        events: &[Event],
    ) -> Result<WebhookReceipt> {
        self.store
            .run(async {
                let mut tx = self.store.write().await?;
                let recorded = sqlx::query(RECORD_WEBHOOK)
                    .bind(provider.to_owned())
                    .bind(event_id.to_owned())
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                if recorded.rows_affected() == 0 {
                    // Dropping the transaction rolls back; nothing was written anyway.
                    return Ok(WebhookReceipt::Duplicate);
                }
                if let Some((intent, expected_version)) = update {
                    // On failure the early return drops the transaction, taking the
                    // inbox row back out so a redelivery can succeed.
                    update_in(&mut tx, intent, expected_version).await?;
                }
                append(&mut tx, events).await?;
                self.store.commit(tx).await?;
                Ok(WebhookReceipt::Applied)
            })
            .await
    }
}
