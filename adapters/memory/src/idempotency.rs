//! In-memory [`IdempotencyStore`].

use std::collections::HashMap;

use async_trait::async_trait;
use bazaar_core::clock::Timestamp;
use bazaar_core::error::Result;
use bazaar_core::orders::{
    IdempotencyBegin, IdempotencyClaim, IdempotencyRecord, IdempotencyStore, IdempotencyTerms, StoredResponse,
};
use parking_lot::Mutex;

/// Idempotency records keyed by (scope, key) behind one lock, so deciding
/// and claiming a key is one atomic step. Expired records are replaced when
/// their key is reused; nothing else sweeps them (a process-local store
/// lives as long as its process).
#[derive(Debug, Default)]
pub struct MemoryIdempotency {
    table: Mutex<HashMap<(String, String), IdempotencyRecord>>,
}

impl MemoryIdempotency {
    /// An empty store. Idempotency records carry no domain events, so no outbox.
    pub fn new() -> Self {
        Self::default()
    }
}

fn slot(scope: &str, key: &str) -> (String, String) {
    (scope.to_owned(), key.to_owned())
}

#[async_trait]
impl IdempotencyStore for MemoryIdempotency {
    async fn begin(
        &self,
        claim: &IdempotencyClaim,
        request_hash: &str,
        now: Timestamp,
        terms: IdempotencyTerms,
    ) -> Result<IdempotencyBegin> {
        let mut table = self.table.lock();
        let slot = slot(&claim.scope, &claim.key);
        let outcome = IdempotencyRecord::decide(table.get(&slot), request_hash, now);
        if outcome == IdempotencyBegin::Started {
            table.insert(slot, IdempotencyRecord::started(claim, request_hash, now, terms));
        }
        Ok(outcome)
    }

    async fn complete(&self, claim: &IdempotencyClaim, response: StoredResponse) -> Result<()> {
        let mut table = self.table.lock();
        match table.get_mut(&slot(&claim.scope, &claim.key)) {
            Some(record) if record.is_held_by(&claim.token) => {
                record.response = Some(response);
                Ok(())
            }
            _ => Err(claim.not_held()),
        }
    }

    async fn abandon(&self, claim: &IdempotencyClaim) -> Result<()> {
        let mut table = self.table.lock();
        let slot = slot(&claim.scope, &claim.key);
        if table.get(&slot).is_some_and(|r| r.is_held_by(&claim.token)) {
            table.remove(&slot);
        }
        Ok(())
    }
}
