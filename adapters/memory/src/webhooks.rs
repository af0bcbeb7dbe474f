//! Webhook endpoints and their delivery queue, in memory.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use bazaar_core::clock::Timestamp;
use bazaar_core::ids::{EventId, UserId, WebhookDeliveryId, WebhookEndpointId};
use bazaar_core::page::{Page, PageRequest};
use bazaar_core::webhooks::{
    DeliveryStatus, DeliveryUpdate, VendorEvent, WebhookDelivery, WebhookEndpoint, WebhookRepository,
};
use bazaar_core::{ConflictReason, Error, Result};
use parking_lot::Mutex;

#[derive(Debug, Default)]
struct State {
    endpoints: HashMap<WebhookEndpointId, WebhookEndpoint>,
    // Ordered by id, which is the queue order.
    deliveries: BTreeMap<WebhookDeliveryId, WebhookDelivery>,
    keys: HashMap<(WebhookEndpointId, EventId, VendorEvent), WebhookDeliveryId>,
}

/// Webhook endpoints and deliveries, in memory.
#[derive(Debug, Default)]
pub struct MemoryWebhooks {
    state: Mutex<State>,
}

impl MemoryWebhooks {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl WebhookRepository for MemoryWebhooks {
    async fn insert_endpoint(&self, endpoint: &WebhookEndpoint) -> Result<()> {
        let mut state = self.state.lock();
        if state.endpoints.contains_key(&endpoint.id) {
            return Err(Error::conflict(ConflictReason::Duplicate, "webhook endpoint id already exists"));
        }
        state.endpoints.insert(endpoint.id, endpoint.clone());
        Ok(())
    }

    async fn get_endpoint(&self, id: WebhookEndpointId) -> Result<Option<WebhookEndpoint>> {
        Ok(self.state.lock().endpoints.get(&id).cloned())
    }

    async fn list_endpoints(&self, vendor: UserId) -> Result<Vec<WebhookEndpoint>> {
        let mut mine: Vec<_> =
            self.state.lock().endpoints.values().filter(|e| e.vendor_id == vendor).cloned().collect();
        mine.sort_by_key(|e| e.id);
        Ok(mine)
    }

    async fn update_endpoint(&self, endpoint: &WebhookEndpoint) -> Result<()> {
        let mut state = self.state.lock();
        let stored = state.endpoints.get_mut(&endpoint.id).ok_or_else(|| Error::not_found("webhook endpoint"))?;
        stored.url.clone_from(&endpoint.url);
        stored.events.clone_from(&endpoint.events);
        stored.secrets.clone_from(&endpoint.secrets);
        stored.updated_at = endpoint.updated_at;
        Ok(())
    }

    async fn delete_endpoint(&self, id: WebhookEndpointId) -> Result<bool> {
        let mut state = self.state.lock();
        let existed = state.endpoints.remove(&id).is_some();
        state.deliveries.retain(|_, d| d.endpoint_id != id);
        state.keys.retain(|(endpoint, _, _), _| *endpoint != id);
        Ok(existed)
    }

    async fn enqueue(&self, deliveries: &[WebhookDelivery]) -> Result<u64> {
        let mut state = self.state.lock();
        let mut stored = 0;
        for d in deliveries {
            let key = (d.endpoint_id, d.event_id, d.event_type);
            if state.keys.contains_key(&key) || !state.endpoints.contains_key(&d.endpoint_id) {
                continue;
            }
            state.keys.insert(key, d.id);
            state.deliveries.insert(d.id, d.clone());
            stored += 1;
        }
        Ok(stored)
    }

    async fn claim_due(&self, now: Timestamp, limit: u32, lease_until: Timestamp) -> Result<Vec<WebhookDelivery>> {
        let mut state = self.state.lock();
        // Endpoints whose queue head is waiting: nothing behind it may go.
        let mut held: std::collections::HashSet<WebhookEndpointId> = std::collections::HashSet::new();
        let mut claimed = Vec::new();
        for d in state.deliveries.values_mut() {
            if claimed.len() >= limit as usize {
                break;
            }
            if d.status != DeliveryStatus::Pending || held.contains(&d.endpoint_id) {
                continue;
            }
            if d.next_attempt_at > now {
                held.insert(d.endpoint_id);
                continue;
            }
            d.next_attempt_at = lease_until;
            claimed.push(d.clone());
        }
        Ok(claimed)
    }

    async fn record(&self, updates: &[DeliveryUpdate]) -> Result<()> {
        let mut state = self.state.lock();
        for u in updates {
            if let Some(d) = state.deliveries.get_mut(&u.id) {
                d.status = u.status;
                d.attempts = u.attempts;
                d.next_attempt_at = u.next_attempt_at;
                d.last_error.clone_from(&u.last_error);
                d.delivered_at = u.delivered_at;
            }
        }
        Ok(())
    }

    async fn get_delivery(&self, id: WebhookDeliveryId) -> Result<Option<WebhookDelivery>> {
        Ok(self.state.lock().deliveries.get(&id).cloned())
    }

    async fn list_deliveries(
        &self,
        endpoint: WebhookEndpointId,
        status: Option<DeliveryStatus>,
        page: PageRequest,
    ) -> Result<Page<WebhookDelivery>> {
        let matching: Vec<_> = self
            .state
            .lock()
            .deliveries
            .values()
            .rev()
            .filter(|d| d.endpoint_id == endpoint && status.is_none_or(|s| d.status == s))
            .cloned()
            .collect();
        Ok(Page::of(&matching, page))
    }

    async fn replay(
        &self,
        endpoint: WebhookEndpointId,
        delivery: Option<WebhookDeliveryId>,
        now: Timestamp,
    ) -> Result<u64> {
        let mut state = self.state.lock();
        let mut replayed = 0;
        for d in state.deliveries.values_mut() {
            if d.endpoint_id == endpoint && d.status == DeliveryStatus::Dead && delivery.is_none_or(|id| d.id == id) {
                d.status = DeliveryStatus::Pending;
                d.attempts = 0;
                d.next_attempt_at = now;
                replayed += 1;
            }
        }
        Ok(replayed)
    }
}
