//! In-memory [`LicenseRepository`].

use async_trait::async_trait;
use bazaar_core::ConflictReason;
use bazaar_core::clock::Timestamp;
use bazaar_core::error::{Error, Result};
use bazaar_core::events::Event;
use bazaar_core::ids::{LicenseId, OrderId, UserId};
use bazaar_core::licensing::{ActivationOutcome, Fingerprint, License, LicenseRepository};
use parking_lot::Mutex;

use crate::MemoryOutbox;

/// Licenses in a `Vec` behind one lock: every check-and-write (uniqueness,
/// activation slots, download counts, versions) happens under that lock, and
/// events are appended to the outbox before it is released.
#[derive(Debug)]
pub struct MemoryLicenses {
    table: Mutex<Vec<License>>,
    outbox: MemoryOutbox,
}

impl MemoryLicenses {
    /// An empty store committing events to `outbox`.
    pub fn new(outbox: MemoryOutbox) -> Self {
        Self { table: Mutex::new(Vec::new()), outbox }
    }

    /// Runs `f` on the stored license `id` under the lock.
    fn with_license<R>(&self, id: LicenseId, f: impl FnOnce(&mut License) -> Result<R>) -> Result<R> {
        let mut table = self.table.lock();
        let license = table.iter_mut().find(|l| l.id == id).ok_or_else(|| Error::not_found("license"))?;
        // Work on a copy so a failing rule leaves the stored row untouched.
        let mut draft = license.clone();
        let out = f(&mut draft)?;
        *license = draft;
        Ok(out)
    }
}

#[async_trait]
impl LicenseRepository for MemoryLicenses {
    async fn insert(&self, license: &License, events: &[Event]) -> Result<()> {
        let mut table = self.table.lock();
        if table.iter().any(|l| l.order_id == license.order_id && l.product_id == license.product_id) {
            return Err(Error::conflict(ConflictReason::Duplicate, "a license already exists for this order line"));
        }
        if table.iter().any(|l| l.id == license.id || l.key == license.key) {
            return Err(Error::conflict(ConflictReason::Duplicate, "license id or key already exists"));
        }
        table.push(license.clone());
        self.outbox.append(events);
        Ok(())
    }

    async fn get(&self, id: LicenseId) -> Result<Option<License>> {
        Ok(self.table.lock().iter().find(|l| l.id == id).cloned())
    }

    async fn get_by_key(&self, key: &str) -> Result<Option<License>> {
        Ok(self.table.lock().iter().find(|l| l.key == key).cloned())
    }

    async fn list_for_buyer(&self, buyer: UserId) -> Result<Vec<License>> {
        Ok(self.table.lock().iter().filter(|l| l.buyer_id == buyer).cloned().collect())
    }

    async fn list_for_order(&self, order: OrderId) -> Result<Vec<License>> {
        Ok(self.table.lock().iter().filter(|l| l.order_id == order).cloned().collect())
    }

    async fn activate(&self, id: LicenseId, fingerprint: &Fingerprint, now: Timestamp) -> Result<ActivationOutcome> {
        self.with_license(id, |l| l.activate(fingerprint, now))
    }

    async fn deactivate(&self, id: LicenseId, fingerprint: &Fingerprint, now: Timestamp) -> Result<()> {
        self.with_license(id, |l| l.deactivate(fingerprint, now))
    }

    async fn update_status(&self, license: &License, expected_version: u64, events: &[Event]) -> Result<()> {
        let mut table = self.table.lock();
        let stored = table.iter_mut().find(|l| l.id == license.id).ok_or_else(|| Error::not_found("license"))?;
        if stored.version != expected_version {
            return Err(Error::VersionMismatch { expected: expected_version, current: stored.version });
        }
        stored.revoked_at = license.revoked_at;
        stored.revoked_reason.clone_from(&license.revoked_reason);
        stored.suspended_at = license.suspended_at;
        stored.suspended_reason.clone_from(&license.suspended_reason);
        stored.updated_at = license.updated_at;
        stored.version = expected_version + 1;
        self.outbox.append(events);
        Ok(())
    }

    async fn consume_download(&self, id: LicenseId, now: Timestamp) -> Result<License> {
        self.with_license(id, |l| {
            l.consume_download(now)?;
            Ok(l.clone())
        })
    }
}
