//! The license store port.

use async_trait::async_trait;

use super::activation::ActivationOutcome;
use super::license::{Fingerprint, License};
use crate::clock::Timestamp;
use crate::error::Result;
use crate::events::Event;
use crate::ids::{LicenseId, OrderId, ProductId, UserId};

/// Where licenses live.
///
/// Activation, deactivation and download counting have no event types, so
/// those methods take no `events`; every other mutating method commits its
/// events with the change (outbox).
///
/// # Example
/// ```
/// use bazaar_core::licensing::{License, LicenseKind, LicenseRepository, LicenseSigner, Limits, NewLicense, Permissions};
/// use bazaar_core::ids::{OrderId, ProductId, UserId};
/// use bazaar_memory::{MemoryLicenses, MemoryOutbox};
/// # futures::executor::block_on(async {
/// let repo = MemoryLicenses::new(MemoryOutbox::new());
/// let signer = LicenseSigner::from_seed(&[1; 32]);
/// let new = NewLicense {
///     buyer_id: UserId::new(), product_id: ProductId::new(), order_id: OrderId::new(),
///     kind: LicenseKind::Perpetual, permissions: Permissions::default(), limits: Limits::default(),
/// };
/// let license = License::issue(new, &signer, chrono::Utc::now());
/// repo.insert(&license, &[]).await.unwrap();
/// assert_eq!(repo.get_by_key(&license.key).await.unwrap(), Some(license.clone()));
/// // A second license for the same order line is refused.
/// let mut dup = license.clone();
/// dup.id = Default::default();
/// dup.key.push('x');
/// assert_eq!(repo.insert(&dup, &[]).await.unwrap_err().code(), "conflict");
/// # });
/// ```
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait LicenseRepository: Send + Sync {
    /// Stores a new license with its events (one unit of work).
    ///
    /// MUST return [`Error::Conflict`](crate::Error::Conflict) when a license
    /// already exists for the same (`order_id`, `product_id`), or with the same
    /// id or key, changing nothing and appending no event.
    async fn insert(&self, license: &License, events: &[Event]) -> Result<()>;

    /// Many [`Self::insert`]s at once, each answered as it would be alone,
    /// in the order given: a license that is stored commits its own events,
    /// one refused with [`Error::Conflict`](crate::Error::Conflict) (also by
    /// an earlier entry of the same call for its order line) commits none,
    /// whatever the others do.
    ///
    /// MUST return [`Error::Validation`](crate::Error::Validation) on
    /// `licenses`, changing nothing, when it holds one license id twice.
    ///
    /// The default inserts them one by one; a store that can insert them in
    /// one round trip overrides it (a worker issues a batch of orders'
    /// licenses per event batch).
    async fn insert_all(&self, licenses: &[(License, Vec<Event>)]) -> Result<Vec<Result<()>>> {
        check_distinct(licenses)?;
        let mut out = Vec::with_capacity(licenses.len());
        for (license, events) in licenses {
            out.push(self.insert(license, events).await);
        }
        Ok(out)
    }

    /// The license with `id`, if any.
    async fn get(&self, id: LicenseId) -> Result<Option<License>>;

    /// The license whose key is exactly `key`, if any.
    async fn get_by_key(&self, key: &str) -> Result<Option<License>>;

    /// Every license held by `buyer`, oldest first.
    async fn list_for_buyer(&self, buyer: UserId) -> Result<Vec<License>>;

    /// The licenses `buyer` holds for any of `products`, oldest first: what
    /// placing an order checks, without reading every license a long-time
    /// buyer has. The default filters [`Self::list_for_buyer`]; stores that
    /// can select by product should.
    async fn list_for_buyer_products(&self, buyer: UserId, products: &[ProductId]) -> Result<Vec<License>> {
        let mut held = self.list_for_buyer(buyer).await?;
        held.retain(|l| products.contains(&l.product_id));
        Ok(held)
    }

    /// Every license issued for `order`, oldest first.
    async fn list_for_order(&self, order: OrderId) -> Result<Vec<License>>;

    /// Atomically applies [`License::activate`] to the stored license.
    ///
    /// MUST check and insert in one atomic step, so concurrent calls never
    /// exceed `max_activations`; MUST return `AlreadyActive` without taking a
    /// slot for a fingerprint already active; MUST return
    /// a `TooManyActivations` conflict when full and the license's status
    /// denial (`license_revoked`, `license_suspended`, `license_expired`) when
    /// it is not active at `now`; `NotFound` (`license`) when there is none.
    /// A successful activation bumps `version`.
    async fn activate(&self, id: LicenseId, fingerprint: &Fingerprint, now: Timestamp) -> Result<ActivationOutcome>;

    /// Atomically applies [`License::deactivate`], freeing the slot.
    ///
    /// MUST return `NotFound` (`activation`) when the fingerprint is not
    /// active and `NotFound` (`license`) when there is no license.
    async fn deactivate(&self, id: LicenseId, fingerprint: &Fingerprint, now: Timestamp) -> Result<()>;

    /// Stores an admin change of standing (revoke, suspend, reinstate) made
    /// with [`License::apply`], with its events.
    ///
    /// MUST return [`Error::VersionMismatch`](crate::Error::VersionMismatch)
    /// when the stored version is not `expected_version`, and `NotFound`
    /// when there is no license, changing nothing. On success it copies the
    /// standing fields (`revoked_at`, `revoked_reason`, `suspended_at`,
    /// `suspended_reason`, `updated_at`) from `license` and sets the version
    /// to `expected_version + 1`; usage (activations, downloads) is never
    /// taken from `license`.
    async fn update_status(&self, license: &License, expected_version: u64, events: &[Event]) -> Result<()>;

    /// Atomically applies [`License::consume_download`] and returns the
    /// updated license.
    ///
    /// MUST refuse with `Denied(DownloadLimitReached)` when `downloads_used >=
    /// max_downloads` and never exceed it under concurrency; MUST refuse with
    /// the status denial when the license is not active at `now`; `NotFound`
    /// when there is none.
    async fn consume_download(&self, id: LicenseId, now: Timestamp) -> Result<License>;
}

/// The distinct-ids rule of [`LicenseRepository::insert_all`], shared so
/// every adapter judges and words it the same.
///
/// # Errors
/// [`crate::Error::Validation`] on `licenses` when two share an id.
pub fn check_distinct(licenses: &[(License, Vec<Event>)]) -> Result<()> {
    crate::batch::distinct(licenses.iter().map(|(l, _)| l.id), "licenses", "holds a license id more than once")
}
