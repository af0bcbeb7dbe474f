//! Payment intents ([`PaymentRepository`]) and the webhook inbox, whose
//! primary key (provider, event id) makes a replayed webhook change nothing.

use async_trait::async_trait;
use bazaar_core::events::Event;
use bazaar_core::ids::{OrderId, PaymentIntentId};
use bazaar_core::payments::{PaymentIntent, PaymentRepository, WebhookReceipt};
use bazaar_core::{Error, Result};
use sqlx::Row;

use crate::codec::{db_err, from_json, int, to_json, uint};
use crate::outbox::append;
use crate::store::{SqliteStore, WriteTx};

pub(crate) const INSERT: &str =
    "INSERT INTO payment_intents (id, order_id, provider, provider_ref, version, doc) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
pub(crate) const GET: &str = "SELECT doc FROM payment_intents WHERE id = ?1";
pub(crate) const BY_ORDER: &str = "SELECT doc FROM payment_intents WHERE order_id = ?1";
pub(crate) const BY_PROVIDER_REF: &str = "SELECT doc FROM payment_intents WHERE provider = ?1 AND provider_ref = ?2";
pub(crate) const VERSION: &str = "SELECT version FROM payment_intents WHERE id = ?1";
pub(crate) const UPDATE: &str = "UPDATE payment_intents
    SET order_id = ?3, provider = ?4, provider_ref = ?5, version = ?6, doc = ?7
    WHERE id = ?1 AND version = ?2";
pub(crate) const RECORD_WEBHOOK: &str = "INSERT OR IGNORE INTO webhook_inbox (provider, event_id) VALUES (?1, ?2)";

/// Inserts `intent` inside `tx`.
pub(crate) async fn insert_in(tx: &mut WriteTx, intent: &PaymentIntent) -> Result<()> {
    sqlx::query(INSERT)
        .bind(intent.id.to_string())
        .bind(intent.order_id.to_string())
        .bind(intent.provider.as_str())
        .bind(intent.provider_ref.as_deref())
        .bind(int(intent.version)?)
        .bind(to_json(intent)?)
        .execute(&mut **tx)
        .await
        .map_err(db_err)?;
    Ok(())
}

/// Payment intents in SQLite.
#[derive(Debug, Clone)]
pub struct SqlitePayments {
    store: SqliteStore,
}

impl SqlitePayments {
    pub(crate) fn new(store: SqliteStore) -> Self {
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
impl PaymentRepository for SqlitePayments {
    async fn insert(&self, intent: &PaymentIntent, events: &[Event]) -> Result<()> {
        let mut tx = self.store.write().await?;
        insert_in(&mut tx, intent).await?;
        append(&mut tx, events).await?;
        self.store.commit(tx).await
    }

    async fn get(&self, id: PaymentIntentId) -> Result<Option<PaymentIntent>> {
        self.one(GET, id.to_string(), None).await
    }

    async fn get_by_order(&self, order_id: OrderId) -> Result<Option<PaymentIntent>> {
        self.one(BY_ORDER, order_id.to_string(), None).await
    }

    async fn get_by_provider_ref(&self, provider: &str, provider_ref: &str) -> Result<Option<PaymentIntent>> {
        self.one(BY_PROVIDER_REF, provider.to_owned(), Some(provider_ref)).await
    }

    async fn update(&self, intent: &PaymentIntent, expected_version: u64, events: &[Event]) -> Result<PaymentIntent> {
        let mut tx = self.store.write().await?;
        let stored = update_in(&mut tx, intent, expected_version).await?;
        append(&mut tx, events).await?;
        self.store.commit(tx).await?;
        Ok(stored)
    }

    async fn apply_webhook<'a>(
        &self,
        provider: &str,
        event_id: &str,
        update: Option<(&'a PaymentIntent, u64)>,
        events: &[Event],
    ) -> Result<WebhookReceipt> {
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
    }
}
