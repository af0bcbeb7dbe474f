//! The licensing use cases: issue and revoke for orders, validate keys,
//! activate machines, and admin standing changes.

use crate::error::ConflictReason;
use std::fmt;
use std::sync::Arc;

use chrono::Months;

use super::activation::ActivationOutcome;
use super::key::{LicensePublicKey, LicenseSigner, verify_signature};
use super::license::{Fingerprint, License, LicenseAction, LicenseKind, Limits, NewLicense, Permissions};
use super::purchase::{Purchase, PurchaseState, PurchasedLine};
use super::repository::LicenseRepository;
use super::validation::{ValidationCode, ValidationResult, validate};
use crate::auth::{Action, Actor, Resource, authorize};
use crate::batch::{answer_rest, one_answer_each};
use crate::clock::{Clock, Timestamp};
use crate::error::{Error, Result};
use crate::events::{Event, LicenseIssued, LicenseRevoked};
use crate::ids::{LicenseId, OrderId, UserId};
use crate::page::{Page, PageRequest};
use crate::pricing::{BillingInterval, Pricing};

/// How often a standing change is retried when a concurrent write (an
/// activation, a download) bumped the version in between.
const MAX_CAS_ATTEMPTS: usize = 16;

/// Issues, validates and administers licenses.
///
/// Every method that changes a license goes through the
/// [`LicenseRepository`], which commits the change with its events.
pub struct LicenseService {
    repo: Arc<dyn LicenseRepository>,
    signer: LicenseSigner,
    clock: Arc<dyn Clock>,
    permissions: Permissions,
    limits: Limits,
}

impl fmt::Debug for LicenseService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LicenseService")
            .field("signer", &self.signer)
            .field("permissions", &self.permissions)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl LicenseService {
    /// A service issuing licenses with the default terms
    /// ([`Permissions::default`], [`Limits::default`]) and keys signed by `signer`.
    pub fn new(repo: Arc<dyn LicenseRepository>, signer: LicenseSigner, clock: Arc<dyn Clock>) -> Self {
        Self { repo, signer, clock, permissions: Permissions::default(), limits: Limits::default() }
    }

    /// Issues future licenses with these permissions and limits instead.
    pub fn with_terms(mut self, permissions: Permissions, limits: Limits) -> Self {
        self.permissions = permissions;
        self.limits = limits;
        self
    }

    /// The public key clients verify keys with offline.
    pub fn public_key(&self) -> LicensePublicKey {
        self.signer.public_key()
    }

    /// The license kind `pricing` buys at `now`: free and one-time
    /// purchases are perpetual; a subscription runs one calendar interval.
    ///
    /// # Errors
    /// [`Error::Internal`] if the renewal date is out of chrono's range.
    pub fn kind_for(pricing: &Pricing, now: Timestamp) -> Result<LicenseKind> {
        match *pricing {
            Pricing::Free | Pricing::OneTime { .. } => Ok(LicenseKind::Perpetual),
            Pricing::Subscription { interval, .. } => {
                let months = match interval {
                    BillingInterval::Monthly => Months::new(1),
                    BillingInterval::Yearly => Months::new(12),
                };
                let renews_at = now
                    .checked_add_months(months)
                    .ok_or_else(|| Error::internal("computing renews_at", "date out of range"))?;
                Ok(LicenseKind::Subscription { renews_at })
            }
        }
    }

    /// Issues one license per line of a paid order; returns the order's
    /// licenses in line order.
    ///
    /// Idempotent, also under concurrent duplicate calls: the store's unique
    /// (order, product) key lets exactly one insert win; a loser re-reads the
    /// winner's license. `license.issued` (caused by `cause`) is emitted only
    /// for licenses this call inserted.
    ///
    /// A `paid` order usually has no licenses yet (this is the first
    /// delivery of its payment), so its licenses are inserted without
    /// reading first: only a line whose slot turns out taken costs the read.
    /// A `fulfilled` order is read first, as it has them all.
    ///
    /// # Errors
    /// [`Error::InvalidTransition`] unless the order is paid or fulfilled;
    /// store errors.
    pub async fn issue_for_order(&self, order: &Purchase, cause: &Event) -> Result<Vec<License>> {
        let mut existing = match order.state {
            PurchaseState::Paid => Vec::new(),
            PurchaseState::Fulfilled => self.repo.list_for_order(order.order_id).await?,
            PurchaseState::Unpaid(status) => return Err(Error::transition("order", status, "issue licenses for")),
        };
        let mut issued = Vec::with_capacity(order.lines.len());
        for line in &order.lines {
            if let Some(found) = existing.iter().find(|l| l.product_id == line.product_id) {
                issued.push(found.clone());
                continue;
            }
            let (license, event) = self.new_license(order, line, cause)?;
            match self.repo.insert(&license, &[event]).await {
                Ok(()) => issued.push(license),
                Err(conflict @ Error::Conflict { .. }) => {
                    // A concurrent call won the (order, product) slot; use its license.
                    existing = self.repo.list_for_order(order.order_id).await?;
                    let winner = existing.iter().find(|l| l.product_id == line.product_id).cloned().ok_or(conflict)?;
                    issued.push(winner);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(issued)
    }

    /// [`Self::issue_for_order`] for many `(order, cause)` pairs, answered
    /// in the order given, each as `issue_for_order` would answer it alone.
    ///
    /// The licenses of every paid order go to the store in one batch
    /// insert; only the rest (a fulfilled order, an order line whose slot
    /// turned out taken) cost statements of their own.
    ///
    /// # Errors
    /// Per pair as [`Self::issue_for_order`]; the whole call fails only when
    /// the batch insert does (a store error).
    pub async fn issue_for_orders(&self, items: &[(&Purchase, &Event)]) -> Result<Vec<Result<Vec<License>>>> {
        let mut answers: Vec<Option<Result<Vec<License>>>> = items.iter().map(|_| None).collect();
        let mut rows = Vec::new();
        // (item, its first row, its row count) per batched order.
        let mut batched = Vec::new();
        let mut seen = std::collections::HashSet::with_capacity(items.len());
        for (i, (order, cause)) in items.iter().enumerate() {
            if order.state != PurchaseState::Paid || !seen.insert(order.order_id) {
                continue;
            }
            let built: Result<Vec<_>> = order
                .lines
                .iter()
                .map(|line| self.new_license(order, line, cause).map(|(l, e)| (l, vec![e])))
                .collect();
            match built {
                Ok(built) => {
                    batched.push((i, rows.len(), built.len()));
                    rows.extend(built);
                }
                Err(e) => answers[i] = Some(Err(e)),
            }
        }
        if !rows.is_empty() {
            let stored = self.repo.insert_all(&rows).await?;
            let stored = one_answer_each(stored, rows.len(), "issuing a batch of licenses")?;
            let mut stored = stored.into_iter();
            for (i, first, count) in batched {
                let (mut failure, mut taken) = (None, false);
                for slot in stored.by_ref().take(count) {
                    match slot {
                        Ok(()) => {}
                        Err(Error::Conflict { .. }) => taken = true,
                        Err(e) => {
                            failure.get_or_insert(e);
                        }
                    }
                }
                answers[i] = match (failure, taken) {
                    (Some(e), _) => Some(Err(e)),
                    (None, false) => Some(Ok(rows[first..first + count].iter().map(|(l, _)| l.clone()).collect())),
                    // A taken slot: the single path below reads the winner.
                    (None, true) => None,
                };
            }
        }
        Ok(answer_rest(answers, |i| {
            let (order, cause) = items[i];
            self.issue_for_order(order, cause)
        })
        .await)
    }

    /// A new license for one line of `order`, with its `license.issued`
    /// caused by `cause`.
    fn new_license(&self, order: &Purchase, line: &PurchasedLine, cause: &Event) -> Result<(License, Event)> {
        let now = self.clock.now();
        let new = NewLicense {
            buyer_id: order.buyer_id,
            product_id: line.product_id,
            order_id: order.order_id,
            kind: Self::kind_for(&line.pricing, now)?,
            permissions: self.permissions,
            limits: self.limits,
        };
        let license = License::issue(new, &self.signer, now);
        let issued = LicenseIssued {
            license_id: license.id,
            order_id: order.order_id,
            buyer_id: order.buyer_id,
            product_id: line.product_id,
        };
        let event = Event::new(&issued, now).caused_by(cause);
        Ok((license, event))
    }

    /// Revokes every license of an order (a refund); returns them all.
    ///
    /// Idempotent: already-revoked licenses are left alone, and
    /// `license.revoked` (caused by `cause`) is emitted exactly once per
    /// license, by whichever call's compare-and-set revoked it.
    ///
    /// # Errors
    /// Store errors.
    pub async fn revoke_for_order(&self, order_id: OrderId, reason: &str, cause: &Event) -> Result<Vec<License>> {
        let licenses = self.repo.list_for_order(order_id).await?;
        let mut out = Vec::with_capacity(licenses.len());
        for license in licenses {
            if license.revoked_at.is_some() {
                out.push(license);
                continue;
            }
            let id = license.id;
            let action = LicenseAction::Revoke { reason: reason.to_owned() };
            match self.change_standing(license, &action, Some(cause)).await {
                Ok(revoked) => out.push(revoked),
                Err(Error::InvalidTransition { .. }) => {
                    // Only "already revoked" refuses a revoke: a concurrent call did it.
                    out.push(self.load(id).await?);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// A license, for its holder or an admin.
    ///
    /// # Errors
    /// `NotFound`; `Forbidden` for anyone else.
    pub async fn get(&self, actor: &Actor, id: LicenseId) -> Result<License> {
        let license = self.load(id).await?;
        authorize(actor, Action::ViewLicense, &Resource::License { holder_id: license.buyer_id })?;
        Ok(license)
    }

    /// Every license `holder` holds, oldest first, in one store call: for
    /// the holder or an admin (what a transport's batch loader reads to
    /// show a page of orders with their licenses).
    ///
    /// # Errors
    /// `Forbidden` for anyone else; store errors.
    pub async fn list_held_by(&self, actor: &Actor, holder: UserId) -> Result<Vec<License>> {
        authorize(actor, Action::ViewLicense, &Resource::License { holder_id: holder })?;
        self.repo.list_for_buyer(holder).await
    }

    /// A page of the actor's licenses, oldest first.
    ///
    /// # Errors
    /// Store errors.
    pub async fn list_mine(&self, actor: &Actor, page: PageRequest) -> Result<Page<License>> {
        let all = self.repo.list_for_buyer(actor.user_id).await?;
        Ok(Page::of(&all, page))
    }

    /// Online validation of a key, optionally for a machine. Needs no actor:
    /// the key is the credential.
    ///
    /// Parses and verifies the key's signature (a key that does not verify
    /// is `not_found`, never an error), looks the license up by key, then
    /// applies [`validate`] at the clock's now. The result carries the
    /// license whenever one was found.
    ///
    /// # Errors
    /// [`Error::Validation`] on `fingerprint` when given and malformed; store errors.
    pub async fn validate(&self, key: &str, fingerprint: Option<&str>) -> Result<ValidationResult> {
        let fingerprint = fingerprint.map(Fingerprint::parse).transpose()?;
        let Ok(claims) = verify_signature(key, &self.signer.public_key()) else {
            return Ok(ValidationResult::new(ValidationCode::NotFound, None));
        };
        let license = self.repo.get_by_key(key).await?.filter(|l| l.id == claims.lid);
        let code = validate(license.as_ref(), fingerprint.as_ref(), self.clock.now());
        Ok(ValidationResult::new(code, license))
    }

    /// Activates a machine on the holder's license (idempotent per fingerprint).
    ///
    /// # Errors
    /// `NotFound`; `Forbidden` unless the actor holds it; `Validation` on
    /// `fingerprint`; the status denials; a `TooManyActivations` conflict.
    pub async fn activate(
        &self,
        actor: &Actor,
        id: LicenseId,
        fingerprint: &str,
    ) -> Result<(ActivationOutcome, License)> {
        let license = self.load(id).await?;
        authorize(actor, Action::UseLicense, &Resource::License { holder_id: license.buyer_id })?;
        let fingerprint = Fingerprint::parse(fingerprint)?;
        let outcome = self.repo.activate(id, &fingerprint, self.clock.now()).await?;
        Ok((outcome, self.load(id).await?))
    }

    /// Frees a machine's slot on the holder's license.
    ///
    /// # Errors
    /// `NotFound` (license or activation); `Forbidden` unless the actor holds
    /// it; `Validation` on `fingerprint`.
    pub async fn deactivate(&self, actor: &Actor, id: LicenseId, fingerprint: &str) -> Result<License> {
        let license = self.load(id).await?;
        authorize(actor, Action::UseLicense, &Resource::License { holder_id: license.buyer_id })?;
        let fingerprint = Fingerprint::parse(fingerprint)?;
        self.repo.deactivate(id, &fingerprint, self.clock.now()).await?;
        self.load(id).await
    }

    /// Revokes a license for good (admins); emits `license.revoked`.
    ///
    /// # Errors
    /// `NotFound`; `Forbidden` for non-admins; `InvalidTransition` if already revoked.
    pub async fn revoke(&self, actor: &Actor, id: LicenseId, reason: &str) -> Result<License> {
        self.admin_change(actor, id, LicenseAction::Revoke { reason: reason.to_owned() }).await
    }

    /// Suspends a license (admins).
    ///
    /// # Errors
    /// `NotFound`; `Forbidden` for non-admins; `InvalidTransition` unless in good standing.
    pub async fn suspend(&self, actor: &Actor, id: LicenseId, reason: &str) -> Result<License> {
        self.admin_change(actor, id, LicenseAction::Suspend { reason: reason.to_owned() }).await
    }

    /// Lifts a suspension (admins).
    ///
    /// # Errors
    /// `NotFound`; `Forbidden` for non-admins; `InvalidTransition` unless suspended.
    pub async fn reinstate(&self, actor: &Actor, id: LicenseId) -> Result<License> {
        self.admin_change(actor, id, LicenseAction::Reinstate).await
    }

    async fn admin_change(&self, actor: &Actor, id: LicenseId, action: LicenseAction) -> Result<License> {
        let license = self.load(id).await?;
        authorize(actor, Action::RevokeLicense, &Resource::License { holder_id: license.buyer_id })?;
        self.change_standing(license, &action, None).await
    }

    /// Applies `action` with compare-and-set on the version, re-reading and
    /// re-applying when a concurrent usage write got in between.
    async fn change_standing(
        &self,
        mut license: License,
        action: &LicenseAction,
        cause: Option<&Event>,
    ) -> Result<License> {
        for _ in 0..MAX_CAS_ATTEMPTS {
            let now = self.clock.now();
            let next = license.apply(action, now)?;
            let events = match action {
                LicenseAction::Revoke { reason } => {
                    let event = Event::new(
                        &LicenseRevoked {
                            license_id: license.id,
                            order_id: license.order_id,
                            buyer_id: license.buyer_id,
                            reason: reason.clone(),
                        },
                        now,
                    );
                    vec![match cause {
                        Some(cause) => event.caused_by(cause),
                        None => event,
                    }]
                }
                // No event types exist for suspension changes.
                LicenseAction::Suspend { .. } | LicenseAction::Reinstate => Vec::new(),
            };
            match self.repo.update_status(&next, license.version, &events).await {
                Ok(()) => return Ok(next),
                Err(Error::VersionMismatch { .. }) => license = self.load(license.id).await?,
                Err(e) => return Err(e),
            }
        }
        Err(Error::conflict(ConflictReason::Contended, "license is changing too often; retry"))
    }

    async fn load(&self, id: LicenseId) -> Result<License> {
        self.repo.get(id).await?.ok_or_else(|| Error::not_found("license"))
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;
    use crate::auth::Role;
    use crate::clock::ManualClock;
    use crate::events::{EventType, OrderRefunded, PaymentSucceeded};
    use crate::ids::{PaymentIntentId, ProductId};
    use crate::licensing::fakes::FakeLicenses;
    use crate::licensing::{LicenseStatus, MockLicenseRepository, verify_offline};
    use crate::money::{Currency, Money};
    use crate::orders::{Order, OrderLine, OrderStatus};

    struct World {
        repo: Arc<FakeLicenses>,
        clock: ManualClock,
        service: Arc<LicenseService>,
    }

    fn world() -> World {
        let repo = Arc::new(FakeLicenses::default());
        let clock = ManualClock::at_epoch_secs(1_700_000_000);
        let service = LicenseService::new(repo.clone(), LicenseSigner::from_seed(&[5; 32]), Arc::new(clock.clone()));
        World { repo, clock, service: Arc::new(service) }
    }

    fn line(pricing: Pricing) -> OrderLine {
        let usd = |m| Money::new(m, Currency::USD);
        OrderLine {
            product_id: ProductId::new(),
            vendor_id: UserId::new(),
            title: "Agent".into(),
            pricing,
            unit_price: usd(pricing.price().map_or(0, |p| p.minor())),
            platform_fee: usd(0),
            vendor_net: usd(pricing.price().map_or(0, |p| p.minor())),
        }
    }

    fn paid_order(now: Timestamp) -> Order {
        let price = Money::new(1999, Currency::USD);
        Order {
            id: OrderId::new(),
            buyer_id: UserId::new(),
            lines: vec![
                line(Pricing::OneTime { price }),
                line(Pricing::Subscription { price, interval: BillingInterval::Monthly }),
                line(Pricing::Free),
            ],
            total: Money::new(3998, Currency::USD),
            status: OrderStatus::Paid,
            created_at: now,
            updated_at: now,
        }
    }

    fn payment(order: &Order, now: Timestamp) -> Event {
        Event::new(
            &PaymentSucceeded { order_id: order.id, payment_intent_id: PaymentIntentId::new(), amount: order.total },
            now,
        )
    }

    fn refund(order: &Order, now: Timestamp) -> Event {
        Event::new(&OrderRefunded { order_id: order.id, buyer_id: order.buyer_id, amount: order.total }, now)
    }

    fn of_type(events: &[Event], t: EventType) -> Vec<&Event> {
        events.iter().filter(|e| e.event_type == t).collect()
    }

    #[tokio::test]
    async fn issues_one_license_per_line_with_terms_from_pricing() {
        let w = world();
        let now = w.clock.now();
        let order = paid_order(now);
        let cause = payment(&order, now);
        let licenses = w.service.issue_for_order(&Purchase::from(&order), &cause).await.unwrap();
        assert_eq!(
            licenses.iter().map(|l| l.product_id).collect::<Vec<_>>(),
            order.lines.iter().map(|l| l.product_id).collect::<Vec<_>>()
        );
        assert_eq!(licenses[0].kind, LicenseKind::Perpetual);
        let renews_at = chrono::DateTime::parse_from_rfc3339("2023-12-14T22:13:20Z").unwrap().to_utc();
        assert_eq!(licenses[1].kind, LicenseKind::Subscription { renews_at }, "one calendar month later");
        assert_eq!(licenses[2].kind, LicenseKind::Perpetual, "free is perpetual");
        for l in &licenses {
            assert_eq!((l.buyer_id, l.order_id), (order.buyer_id, order.id));
            assert_eq!((l.permissions, l.limits), (Permissions::default(), Limits::default()));
            let claims = verify_offline(&l.key, &w.service.public_key(), now).unwrap();
            assert_eq!((claims.lid, claims.pid, claims.uid), (l.id, l.product_id, l.buyer_id));
        }
        let events = w.repo.events();
        let issued = of_type(&events, EventType::LicenseIssued);
        assert_eq!(issued.len(), 3);
        assert!(issued.iter().all(|e| e.causation_id == Some(cause.id)));

        // Redelivery: same licenses, no new events.
        let again = w.service.issue_for_order(&Purchase::from(&order), &cause).await.unwrap();
        assert_eq!(again, licenses);
        assert_eq!(w.repo.events().len(), 3);
    }

    #[tokio::test]
    async fn yearly_subscriptions_renew_a_year_later_and_custom_terms_apply() {
        let w = world();
        let now = w.clock.now();
        let l =
            line(Pricing::Subscription { price: Money::new(100, Currency::USD), interval: BillingInterval::Yearly });
        assert_eq!(
            LicenseService::kind_for(&l.pricing, now).unwrap(),
            LicenseKind::Subscription { renews_at: now.checked_add_months(Months::new(12)).unwrap() }
        );
        let terms = Limits { max_downloads: Some(1), max_activations: None, expires_at: None };
        let service =
            LicenseService::new(w.repo.clone(), LicenseSigner::from_seed(&[5; 32]), Arc::new(w.clock.clone()))
                .with_terms(Permissions { download: false, ..Permissions::default() }, terms);
        let order = paid_order(now);
        let issued = service.issue_for_order(&Purchase::from(&order), &payment(&order, now)).await.unwrap();
        assert!(issued.iter().all(|l| l.limits == terms && !l.permissions.download));
    }

    #[tokio::test]
    async fn refuses_to_issue_for_unpaid_orders() {
        let w = world();
        let now = w.clock.now();
        for status in [OrderStatus::PendingPayment, OrderStatus::Canceled, OrderStatus::Refunded] {
            let order = Order { status, ..paid_order(now) };
            let err = w.service.issue_for_order(&Purchase::from(&order), &payment(&order, now)).await.unwrap_err();
            assert_eq!(err.code(), "invalid_transition", "{status}");
        }
        assert!(w.repo.rows.lock().is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_duplicate_issues_insert_each_license_once() {
        let w = world();
        let now = w.clock.now();
        let order = paid_order(now);
        let cause = payment(&order, now);
        let tasks: Vec<_> = (0..12)
            .map(|_| {
                let (service, order, cause) = (w.service.clone(), order.clone(), cause.clone());
                tokio::spawn(async move { service.issue_for_order(&Purchase::from(&order), &cause).await.unwrap() })
            })
            .collect();
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.unwrap());
        }
        assert!(results.windows(2).all(|w| w[0] == w[1]), "every caller sees the same licenses");
        assert_eq!(w.repo.rows.lock().len(), 3);
        assert_eq!(of_type(&w.repo.events(), EventType::LicenseIssued).len(), 3, "license.issued once per license");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn revoke_for_order_is_idempotent_and_emits_once_per_license() {
        let w = world();
        let now = w.clock.now();
        let order = paid_order(now);
        let issued = w.service.issue_for_order(&Purchase::from(&order), &payment(&order, now)).await.unwrap();
        let cause = refund(&order, now);
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (service, cause) = (w.service.clone(), cause.clone());
                tokio::spawn(async move { service.revoke_for_order(order.id, "refund", &cause).await.unwrap() })
            })
            .collect();
        for t in tasks {
            let revoked = t.await.unwrap();
            assert_eq!(
                revoked.iter().map(|l| l.id).collect::<Vec<_>>(),
                issued.iter().map(|l| l.id).collect::<Vec<_>>()
            );
            assert!(revoked.iter().all(|l| l.status(now) == LicenseStatus::Revoked));
        }
        let events = w.repo.events();
        let revoked = of_type(&events, EventType::LicenseRevoked);
        assert_eq!(revoked.len(), 3, "license.revoked exactly once per license");
        assert!(revoked.iter().all(|e| e.causation_id == Some(cause.id)));
        let payload: LicenseRevoked = revoked[0].decode().unwrap();
        assert_eq!(payload.reason, "refund");
    }

    #[tokio::test]
    async fn a_paid_order_is_issued_without_reading_its_licenses_first() {
        let now = ManualClock::at_epoch_secs(1_700_000_000).now();
        let order = paid_order(now);
        let mut mock = MockLicenseRepository::new();
        mock.expect_list_for_order().never();
        mock.expect_insert().times(order.lines.len()).returning(|_, _| Ok(()));
        let service = LicenseService::new(
            Arc::new(mock),
            LicenseSigner::from_seed(&[5; 32]),
            Arc::new(ManualClock::at_epoch_secs(1_700_000_000)),
        );
        let issued = service.issue_for_order(&Purchase::from(&order), &payment(&order, now)).await.unwrap();
        assert_eq!(issued.len(), order.lines.len());
    }

    #[tokio::test]
    async fn a_taken_line_is_read_once_and_its_stored_license_kept() {
        let w = world();
        let now = w.clock.now();
        let order = paid_order(now);
        // An earlier delivery issued the first line, then stopped.
        let first = w
            .service
            .issue_for_order(
                &Purchase::from(&Order { lines: order.lines[..1].to_vec(), ..order.clone() }),
                &payment(&order, now),
            )
            .await
            .unwrap()
            .remove(0);
        let stored = first.clone();
        let mut mock = MockLicenseRepository::new();
        let mut seq = mockall::Sequence::new();
        mock.expect_insert()
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _| Err(Error::conflict(ConflictReason::Duplicate, "licenses_one_per_order_line")));
        mock.expect_list_for_order().times(1).in_sequence(&mut seq).returning(move |_| Ok(vec![stored.clone()]));
        mock.expect_insert().times(2).in_sequence(&mut seq).returning(|_, _| Ok(()));
        let service =
            LicenseService::new(Arc::new(mock), LicenseSigner::from_seed(&[5; 32]), Arc::new(w.clock.clone()));
        let issued = service.issue_for_order(&Purchase::from(&order), &payment(&order, now)).await.unwrap();
        assert_eq!(issued[0], first, "the stored license of the taken line, not a new one");
        assert_eq!(
            issued.iter().map(|l| l.product_id).collect::<Vec<_>>(),
            order.lines.iter().map(|l| l.product_id).collect::<Vec<_>>()
        );
    }

    #[tokio::test]
    async fn standing_changes_retry_after_a_concurrent_usage_write() {
        let w = world();
        let now = w.clock.now();
        let order = paid_order(now);
        let license =
            w.service.issue_for_order(&Purchase::from(&order), &payment(&order, now)).await.unwrap().remove(0);
        // Mock: the first compare-and-set loses to a concurrent activation.
        let mut mock = MockLicenseRepository::new();
        let mut bumped = license.clone();
        bumped.version += 1;
        let stale = license.clone();
        mock.expect_list_for_order().returning(move |_| Ok(vec![stale.clone()]));
        let fresh = bumped.clone();
        mock.expect_get().times(1).returning(move |_| Ok(Some(fresh.clone())));
        let mut seq = mockall::Sequence::new();
        mock.expect_update_status()
            .withf(move |_, v, ev| *v == license.version && ev.len() == 1)
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, v, _| Err(Error::VersionMismatch { expected: v, current: v + 1 }));
        mock.expect_update_status()
            .withf(move |l, v, ev| {
                *v == bumped.version && l.version == bumped.version + 1 && l.revoked_at.is_some() && ev.len() == 1
            })
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _, _| Ok(()));
        let service =
            LicenseService::new(Arc::new(mock), LicenseSigner::from_seed(&[5; 32]), Arc::new(w.clock.clone()));
        let out = service.revoke_for_order(order.id, "refund", &refund(&order, now)).await.unwrap();
        assert!(out[0].revoked_at.is_some());
    }

    #[tokio::test]
    async fn validate_walks_the_codes() {
        let w = world();
        let now = w.clock.now();
        let order = paid_order(now);
        let license =
            w.service.issue_for_order(&Purchase::from(&order), &payment(&order, now)).await.unwrap().remove(0);
        let holder = Actor::new(order.buyer_id, Role::Customer);

        let r = w.service.validate(&license.key, None).await.unwrap();
        assert_eq!((r.valid, r.code), (false, ValidationCode::ActivationRequired));
        assert_eq!(r.license.as_ref().map(|l| l.id), Some(license.id));
        let (outcome, after) = w.service.activate(&holder, license.id, "laptop").await.unwrap();
        assert_eq!((outcome, after.activations.len()), (ActivationOutcome::Activated, 1));
        let (outcome, _) = w.service.activate(&holder, license.id, "laptop").await.unwrap();
        assert_eq!(outcome, ActivationOutcome::AlreadyActive);
        let r = w.service.validate(&license.key, Some("laptop")).await.unwrap();
        assert_eq!((r.valid, r.code), (true, ValidationCode::Valid));
        assert_eq!(
            w.service.validate(&license.key, Some("desktop")).await.unwrap().code,
            ValidationCode::FingerprintMismatch
        );
        assert_eq!(w.service.validate(&license.key, Some("bad fp")).await.unwrap_err().code(), "validation");

        // Keys that don't verify are not_found, never an error.
        for bad in ["", "key/x.y", &license.key.replace("key/", "key/A")] {
            let r = w.service.validate(bad, None).await.unwrap();
            assert_eq!((r.code, r.license), (ValidationCode::NotFound, None), "{bad:?}");
        }
        let forged = LicenseSigner::from_seed(&[6; 32]).sign(&license.claims());
        assert_eq!(w.service.validate(&forged, None).await.unwrap().code, ValidationCode::NotFound);
        // Authentic, but unknown to the store.
        let mut ghost = license.clone();
        ghost.id = LicenseId::new();
        let unknown = LicenseSigner::from_seed(&[5; 32]).sign(&ghost.claims());
        assert_eq!(w.service.validate(&unknown, None).await.unwrap().code, ValidationCode::NotFound);

        let admin = Actor::new(UserId::new(), Role::Admin);
        w.service.suspend(&admin, license.id, "chargeback").await.unwrap();
        assert_eq!(w.service.validate(&license.key, Some("laptop")).await.unwrap().code, ValidationCode::Suspended);
        w.service.reinstate(&admin, license.id).await.unwrap();
        w.service.revoke(&admin, license.id, "abuse").await.unwrap();
        let r = w.service.validate(&license.key, Some("laptop")).await.unwrap();
        assert_eq!((r.valid, r.code), (false, ValidationCode::Revoked));
        assert_eq!(of_type(&w.repo.events(), EventType::LicenseRevoked).len(), 1, "admin revoke emits license.revoked");
        assert_eq!(w.service.revoke(&admin, license.id, "again").await.unwrap_err().code(), "invalid_transition");

        let sub = w.service.list_mine(&holder, PageRequest::default()).await.unwrap().items.remove(1);
        w.clock.advance(Duration::days(31));
        w.service.activate(&holder, sub.id, "laptop").await.unwrap_err();
        assert_eq!(w.service.validate(&sub.key, Some("laptop")).await.unwrap().code, ValidationCode::Expired);
    }

    #[tokio::test]
    async fn only_holders_use_and_only_admins_administer() {
        let w = world();
        let now = w.clock.now();
        let order = paid_order(now);
        let license =
            w.service.issue_for_order(&Purchase::from(&order), &payment(&order, now)).await.unwrap().remove(0);
        let holder = Actor::new(order.buyer_id, Role::Customer);
        let stranger = Actor::new(UserId::new(), Role::Customer);
        let admin = Actor::new(UserId::new(), Role::Admin);

        assert_eq!(w.service.get(&holder, license.id).await.unwrap().id, license.id);
        assert_eq!(w.service.get(&admin, license.id).await.unwrap().id, license.id);
        assert_eq!(w.service.get(&stranger, license.id).await.unwrap_err().code(), "forbidden");
        assert_eq!(w.service.get(&holder, LicenseId::new()).await.unwrap_err().code(), "not_found");
        assert_eq!(w.service.list_mine(&holder, PageRequest::default()).await.unwrap().items.len(), 3);
        assert!(w.service.list_mine(&stranger, PageRequest::default()).await.unwrap().items.is_empty());

        assert_eq!(w.service.activate(&stranger, license.id, "m").await.unwrap_err().code(), "forbidden");
        assert_eq!(w.service.activate(&admin, license.id, "m").await.unwrap_err().code(), "forbidden");
        w.service.activate(&holder, license.id, "m").await.unwrap();
        assert_eq!(w.service.deactivate(&stranger, license.id, "m").await.unwrap_err().code(), "forbidden");
        assert!(w.service.deactivate(&holder, license.id, "m").await.unwrap().activations.is_empty());
        assert_eq!(w.service.deactivate(&holder, license.id, "m").await.unwrap_err().code(), "not_found");

        for actor in [holder, stranger] {
            assert_eq!(w.service.revoke(&actor, license.id, "x").await.unwrap_err().code(), "forbidden");
            assert_eq!(w.service.suspend(&actor, license.id, "x").await.unwrap_err().code(), "forbidden");
            assert_eq!(w.service.reinstate(&actor, license.id).await.unwrap_err().code(), "forbidden");
        }
        assert_eq!(w.service.reinstate(&admin, license.id).await.unwrap_err().code(), "invalid_transition");
        let suspended = w.service.suspend(&admin, license.id, "review").await.unwrap();
        assert_eq!(suspended.status(now), LicenseStatus::Suspended);
        assert_eq!(w.service.activate(&holder, license.id, "m").await.unwrap_err().code(), "license_suspended");
        assert!(w.repo.events().iter().all(|e| e.event_type == EventType::LicenseIssued), "suspension emits nothing");
    }
}
