//! In-memory [`PaymentRepository`] with its webhook inbox.

use bazaar_core::ConflictReason;
use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use bazaar_core::error::{Error, Result};
use bazaar_core::events::Event;
use bazaar_core::ids::{OrderId, PaymentIntentId};
use bazaar_core::payments::{PaymentIntent, PaymentRepository, WebhookReceipt};
use parking_lot::Mutex;

use crate::MemoryOutbox;

#[derive(Debug, Default)]
struct Tables {
    intents: HashMap<PaymentIntentId, PaymentIntent>,
    /// (provider, event id) of every applied webhook.
    inbox: HashSet<(String, String)>,
}

impl Tables {
    /// The optimistic update shared by `update` and `apply_webhook`.
    fn update(&mut self, intent: &PaymentIntent, expected_version: u64) -> Result<PaymentIntent> {
        let stored = self.intents.get_mut(&intent.id).ok_or_else(|| Error::not_found("payment_intent"))?;
        if stored.version != expected_version {
            return Err(Error::VersionMismatch { expected: expected_version, current: stored.version });
        }
        *stored = PaymentIntent { version: expected_version + 1, ..intent.clone() };
        Ok(stored.clone())
    }
}

/// Payment intents and the webhook inbox behind one lock, so recording a
/// webhook and applying its update are one atomic step.
#[derive(Debug)]
pub struct MemoryPayments {
    table: Mutex<Tables>,
    outbox: MemoryOutbox,
}

impl MemoryPayments {
    /// An empty store committing events to `outbox`.
    pub fn new(outbox: MemoryOutbox) -> Self {
        Self { table: Mutex::default(), outbox }
    }
}

#[async_trait]
impl PaymentRepository for MemoryPayments {
    async fn insert(&self, intent: &PaymentIntent, events: &[Event]) -> Result<()> {
        let mut t = self.table.lock();
        if t.intents.contains_key(&intent.id) {
            return Err(Error::conflict(
                ConflictReason::Duplicate,
                format!("payment intent {} already exists", intent.id),
            ));
        }
        if t.intents.values().any(|i| i.order_id == intent.order_id) {
            return Err(Error::conflict(
                ConflictReason::Duplicate,
                format!("order {} already has a payment intent", intent.order_id),
            ));
        }
        t.intents.insert(intent.id, intent.clone());
        self.outbox.append(events);
        Ok(())
    }

    async fn get(&self, id: PaymentIntentId) -> Result<Option<PaymentIntent>> {
        Ok(self.table.lock().intents.get(&id).cloned())
    }

    async fn get_by_order(&self, order_id: OrderId) -> Result<Option<PaymentIntent>> {
        Ok(self.table.lock().intents.values().find(|i| i.order_id == order_id).cloned())
    }

    async fn get_by_provider_ref(&self, provider: &str, provider_ref: &str) -> Result<Option<PaymentIntent>> {
        let t = self.table.lock();
        let found =
            t.intents.values().find(|i| i.provider == provider && i.provider_ref.as_deref() == Some(provider_ref));
        Ok(found.cloned())
    }

    async fn update(&self, intent: &PaymentIntent, expected_version: u64, events: &[Event]) -> Result<PaymentIntent> {
        let mut t = self.table.lock();
        let stored = t.update(intent, expected_version)?;
        self.outbox.append(events);
        Ok(stored)
    }

    async fn apply_webhook<'a>(
        &self,
        provider: &str,
        event_id: &str,
        update: Option<(&'a PaymentIntent, u64)>,
        events: &[Event],
    ) -> Result<WebhookReceipt> {
        let mut t = self.table.lock();
        let key = (provider.to_owned(), event_id.to_owned());
        if t.inbox.contains(&key) {
            return Ok(WebhookReceipt::Duplicate);
        }
        if let Some((intent, expected_version)) = update {
            t.update(intent, expected_version)?;
        }
        t.inbox.insert(key);
        self.outbox.append(events);
        Ok(WebhookReceipt::Applied)
    }
}
