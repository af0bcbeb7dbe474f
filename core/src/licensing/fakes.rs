//! A thread-safe in-core fake of [`LicenseRepository`] for unit tests (the
//! in-memory adapter crate can't be used by the core's own unit tests).

use crate::error::ConflictReason;
use async_trait::async_trait;
use parking_lot::Mutex;

use super::{ActivationOutcome, Fingerprint, License, LicenseRepository};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::events::Event;
use crate::ids::{LicenseId, OrderId, UserId};

#[derive(Debug, Default)]
pub(crate) struct FakeLicenses {
    pub(crate) rows: Mutex<Vec<License>>,
    pub(crate) events: Mutex<Vec<Event>>,
}

impl FakeLicenses {
    fn with<R>(&self, id: LicenseId, f: impl FnOnce(&mut License) -> Result<R>) -> Result<R> {
        let mut rows = self.rows.lock();
        let row = rows.iter_mut().find(|l| l.id == id).ok_or_else(|| Error::not_found("license"))?;
        let mut draft = row.clone();
        let out = f(&mut draft)?;
        *row = draft;
        Ok(out)
    }

    pub(crate) fn events(&self) -> Vec<Event> {
        self.events.lock().clone()
    }
}

#[async_trait]
impl LicenseRepository for FakeLicenses {
    async fn insert(&self, license: &License, events: &[Event]) -> Result<()> {
        let mut rows = self.rows.lock();
        if rows
            .iter()
            .any(|l| (l.order_id, l.product_id) == (license.order_id, license.product_id) || l.id == license.id)
        {
            return Err(Error::conflict(ConflictReason::Duplicate, "duplicate"));
        }
        rows.push(license.clone());
        self.events.lock().extend_from_slice(events);
        Ok(())
    }
    async fn get(&self, id: LicenseId) -> Result<Option<License>> {
        Ok(self.rows.lock().iter().find(|l| l.id == id).cloned())
    }
    async fn get_by_key(&self, key: &str) -> Result<Option<License>> {
        Ok(self.rows.lock().iter().find(|l| l.key == key).cloned())
    }
    async fn list_for_buyer(&self, buyer: UserId) -> Result<Vec<License>> {
        Ok(self.rows.lock().iter().filter(|l| l.buyer_id == buyer).cloned().collect())
    }
    async fn list_for_order(&self, order: OrderId) -> Result<Vec<License>> {
        Ok(self.rows.lock().iter().filter(|l| l.order_id == order).cloned().collect())
    }
    async fn activate(&self, id: LicenseId, fingerprint: &Fingerprint, now: Timestamp) -> Result<ActivationOutcome> {
        self.with(id, |l| l.activate(fingerprint, now))
    }
    async fn deactivate(&self, id: LicenseId, fingerprint: &Fingerprint, now: Timestamp) -> Result<()> {
        self.with(id, |l| l.deactivate(fingerprint, now))
    }
    async fn update_status(&self, license: &License, expected_version: u64, events: &[Event]) -> Result<()> {
        let mut rows = self.rows.lock();
        let row = rows.iter_mut().find(|l| l.id == license.id).ok_or_else(|| Error::not_found("license"))?;
        if row.version != expected_version {
            return Err(Error::VersionMismatch { expected: expected_version, current: row.version });
        }
        row.revoked_at = license.revoked_at;
        row.revoked_reason.clone_from(&license.revoked_reason);
        row.suspended_at = license.suspended_at;
        row.suspended_reason.clone_from(&license.suspended_reason);
        row.updated_at = license.updated_at;
        row.version = expected_version + 1;
        self.events.lock().extend_from_slice(events);
        Ok(())
    }
    async fn consume_download(&self, id: LicenseId, now: Timestamp) -> Result<License> {
        self.with(id, |l| {
            l.consume_download(now)?;
            Ok(l.clone())
        })
    }
}
