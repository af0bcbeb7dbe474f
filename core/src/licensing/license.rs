//! The license aggregate: terms, permissions, limits, activations and the
//! admin state machine (suspend, reinstate, revoke).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::key::{CLAIMS_VERSION, LicenseClaims, LicenseSigner};
use super::status::LicenseStatus;
use crate::clock::Timestamp;
use crate::error::{Denial, Error, Result};
use crate::ids::{LicenseId, OrderId, ProductId, UserId};

/// How long a license lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LicenseKind {
    /// Never expires by itself (one-time and free purchases).
    Perpetual,
    /// Paid per period; expires at `renews_at` unless renewed (there is no
    /// grace period).
    Subscription {
        /// End of the paid period.
        renews_at: Timestamp,
    },
    /// A time-boxed trial.
    Trial {
        /// When the trial ends.
        ends_at: Timestamp,
    },
}

impl LicenseKind {
    /// The snake_case name (`perpetual`, `subscription`, `trial`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Perpetual => "perpetual",
            Self::Subscription { .. } => "subscription",
            Self::Trial { .. } => "trial",
        }
    }

    /// When this kind of term ends by itself, if ever.
    pub fn ends_at(&self) -> Option<Timestamp> {
        match *self {
            Self::Perpetual => None,
            Self::Subscription { renews_at } => Some(renews_at),
            Self::Trial { ends_at } => Some(ends_at),
        }
    }
}

/// What the holder may do with the licensed product.
///
/// The [`Default`] is what [`LicenseService`](super::LicenseService) issues
/// for a purchase: download, commercial use and modification allowed,
/// redistribution not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permissions {
    /// May download the product's assets.
    pub download: bool,
    /// May use the product commercially.
    pub commercial_use: bool,
    /// May redistribute the product.
    pub redistribution: bool,
    /// May modify the product.
    pub modification: bool,
}

impl Default for Permissions {
    fn default() -> Self {
        Self { download: true, commercial_use: true, redistribution: false, modification: true }
    }
}

/// Quantitative limits; `None` means unlimited.
///
/// The [`Default`] issued for a purchase is 20 downloads, 5 activations
/// (machines) and no expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// How many download URLs may be issued in total.
    pub max_downloads: Option<u32>,
    /// How many machines may be activated at once. A license with this
    /// limit is *node-locked*: validation requires an activated fingerprint.
    pub max_activations: Option<u32>,
    /// A hard expiry on top of the kind's own end.
    pub expires_at: Option<Timestamp>,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_downloads: Some(20), max_activations: Some(5), expires_at: None }
    }
}

/// A machine fingerprint: 1 to 128 printable ASCII characters (no spaces or
/// control characters), compared exactly.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Fingerprint(String);

impl Fingerprint {
    /// The longest fingerprint accepted.
    pub const MAX_LEN: usize = 128;

    /// Validates a fingerprint.
    ///
    /// # Errors
    /// [`Error::Validation`] on `fingerprint` when empty, longer than 128
    /// characters or containing anything but printable ASCII.
    pub fn parse(s: &str) -> Result<Self> {
        if s.is_empty() || s.len() > Self::MAX_LEN {
            return Err(Error::invalid("fingerprint", "must be 1 to 128 characters"));
        }
        if !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::invalid("fingerprint", "must be printable ASCII without spaces"));
        }
        Ok(Self(s.to_owned()))
    }

    /// The fingerprint text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Fingerprint {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Self::parse(&s)
    }
}

impl From<Fingerprint> for String {
    fn from(f: Fingerprint) -> String {
        f.0
    }
}

/// One activated machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activation {
    /// The machine.
    pub fingerprint: Fingerprint,
    /// When it was activated.
    pub activated_at: Timestamp,
}

/// Everything needed to issue a license; see [`License::issue`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLicense {
    /// The holder.
    pub buyer_id: UserId,
    /// The licensed product.
    pub product_id: ProductId,
    /// The order (line) it is issued for.
    pub order_id: OrderId,
    /// Its term.
    pub kind: LicenseKind,
    /// What the holder may do.
    pub permissions: Permissions,
    /// Its limits.
    pub limits: Limits,
}

/// An admin action on a license's standing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LicenseAction {
    /// Revoke for good (refund, abuse). Allowed unless already revoked.
    Revoke {
        /// Why.
        reason: String,
    },
    /// Suspend until reinstated. Allowed only from good standing.
    Suspend {
        /// Why.
        reason: String,
    },
    /// Lift a suspension. Allowed only when suspended.
    Reinstate,
}

impl LicenseAction {
    fn name(&self) -> &'static str {
        match self {
            Self::Revoke { .. } => "revoke",
            Self::Suspend { .. } => "suspend",
            Self::Reinstate => "reinstate",
        }
    }
}

/// A license: the right of `buyer_id` to use `product_id`, bought in `order_id`.
///
/// Its [`status`](License::status) is derived, never stored, so it can't
/// disagree with the timestamps it comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct License {
    /// Id.
    pub id: LicenseId,
    /// The signed license key (`key/{payload}.{signature}`), unique.
    pub key: String,
    /// The holder.
    pub buyer_id: UserId,
    /// The licensed product.
    pub product_id: ProductId,
    /// The order it was issued for; (order_id, product_id) is unique.
    pub order_id: OrderId,
    /// Its term.
    pub kind: LicenseKind,
    /// What the holder may do.
    pub permissions: Permissions,
    /// Its limits.
    pub limits: Limits,
    /// Download URLs issued so far.
    pub downloads_used: u32,
    /// Activated machines, in activation order.
    pub activations: Vec<Activation>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<Timestamp>,
    /// Why it was revoked.
    pub revoked_reason: Option<String>,
    /// When it was suspended, if it is.
    pub suspended_at: Option<Timestamp>,
    /// Why it was suspended.
    pub suspended_reason: Option<String>,
    /// When it was issued.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// Optimistic-concurrency version, from 1; every stored change bumps it.
    pub version: u64,
}

impl License {
    /// The claims its key carries.
    pub fn claims(&self) -> LicenseClaims {
        LicenseClaims {
            v: CLAIMS_VERSION,
            lid: self.id,
            pid: self.product_id,
            uid: self.buyer_id,
            kind: self.kind.as_str().to_owned(),
            exp: self.expires_at().map(|t| t.timestamp()),
            iat: self.created_at.timestamp(),
        }
    }

    /// A fresh license (version 1, nothing used) with its key signed by `signer`.
    pub fn issue(new: NewLicense, signer: &LicenseSigner, now: Timestamp) -> Self {
        let mut license = Self {
            id: LicenseId::new(),
            key: String::new(),
            buyer_id: new.buyer_id,
            product_id: new.product_id,
            order_id: new.order_id,
            kind: new.kind,
            permissions: new.permissions,
            limits: new.limits,
            downloads_used: 0,
            activations: Vec::new(),
            revoked_at: None,
            revoked_reason: None,
            suspended_at: None,
            suspended_reason: None,
            created_at: now,
            updated_at: now,
            version: 1,
        };
        license.key = signer.sign(&license.claims());
        license
    }

    /// When the license stops being valid by itself: the earlier of
    /// `limits.expires_at` and the kind's end.
    pub fn expires_at(&self) -> Option<Timestamp> {
        match (self.limits.expires_at, self.kind.ends_at()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The derived status at `now`: revoked > suspended > expired > active.
    pub fn status(&self, now: Timestamp) -> LicenseStatus {
        LicenseStatus::derive(self.revoked_at.is_some(), self.suspended_at.is_some(), self.expires_at(), now)
    }

    /// Whether `fingerprint` is activated.
    pub fn is_activated(&self, fingerprint: &Fingerprint) -> bool {
        self.activations.iter().any(|a| &a.fingerprint == fingerprint)
    }

    /// Downloads left, `None` when unlimited.
    pub fn downloads_left(&self) -> Option<u32> {
        self.limits.max_downloads.map(|max| max.saturating_sub(self.downloads_used))
    }

    /// `Ok` when the license is active at `now`, else the matching denial.
    ///
    /// # Errors
    /// [`Error::Denied`] with `LicenseRevoked`, `LicenseSuspended` or `LicenseExpired`.
    pub fn ensure_active(&self, now: Timestamp) -> Result<()> {
        match self.status(now) {
            LicenseStatus::Active => Ok(()),
            LicenseStatus::Revoked => Err(Denial::LicenseRevoked.into()),
            LicenseStatus::Suspended => Err(Denial::LicenseSuspended.into()),
            LicenseStatus::Expired => Err(Denial::LicenseExpired.into()),
        }
    }

    /// Counts one download. Adapters call this inside their atomic section so
    /// the rule is the same in every store.
    ///
    /// # Errors
    /// The denial of [`ensure_active`](Self::ensure_active), or
    /// `Denial::DownloadLimitReached` when `downloads_used >= max_downloads`;
    /// the license is unchanged then.
    pub fn consume_download(&mut self, now: Timestamp) -> Result<()> {
        self.ensure_active(now)?;
        if self.downloads_left() == Some(0) {
            return Err(Denial::DownloadLimitReached.into());
        }
        self.downloads_used = self.downloads_used.saturating_add(1);
        self.touch(now);
        Ok(())
    }

    /// The license after an admin `action` at `now`, with `version` bumped.
    ///
    /// The standing is a small state machine: good → suspended (suspend),
    /// suspended → good (reinstate), good | suspended → revoked (revoke).
    /// Revoked is absorbing. Expiry is orthogonal: it is time, not standing.
    ///
    /// # Errors
    /// [`Error::InvalidTransition`] for any other action.
    pub fn apply(&self, action: &LicenseAction, now: Timestamp) -> Result<License> {
        let standing = self.standing();
        let mut next = self.clone();
        match (standing, action) {
            (Standing::Good | Standing::Suspended, LicenseAction::Revoke { reason }) => {
                next.revoked_at = Some(now);
                next.revoked_reason = Some(reason.clone());
            }
            (Standing::Good, LicenseAction::Suspend { reason }) => {
                next.suspended_at = Some(now);
                next.suspended_reason = Some(reason.clone());
            }
            (Standing::Suspended, LicenseAction::Reinstate) => {
                next.suspended_at = None;
                next.suspended_reason = None;
            }
            _ => return Err(Error::transition("license", standing.as_str(), action.name())),
        }
        next.touch(now);
        Ok(next)
    }

    fn standing(&self) -> Standing {
        if self.revoked_at.is_some() {
            Standing::Revoked
        } else if self.suspended_at.is_some() {
            Standing::Suspended
        } else {
            Standing::Good
        }
    }

    pub(super) fn touch(&mut self, now: Timestamp) {
        self.updated_at = now;
        self.version += 1;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Standing {
    Good,
    Suspended,
    Revoked,
}

impl Standing {
    fn as_str(self) -> &'static str {
        match self {
            Self::Good => "active",
            Self::Suspended => "suspended",
            Self::Revoked => "revoked",
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use chrono::Duration;
    use proptest::prelude::*;

    use super::*;
    use crate::clock::{Clock, ManualClock};

    pub(crate) fn now() -> Timestamp {
        ManualClock::at_epoch_secs(1_700_000_000).now()
    }

    pub(crate) fn signer() -> LicenseSigner {
        LicenseSigner::from_seed(&[7; 32])
    }

    pub(crate) fn sample(kind: LicenseKind, limits: Limits) -> License {
        let new = NewLicense {
            buyer_id: UserId::new(),
            product_id: ProductId::new(),
            order_id: OrderId::new(),
            kind,
            permissions: Permissions::default(),
            limits,
        };
        License::issue(new, &signer(), now())
    }

    #[test]
    fn defaults_are_the_documented_terms() {
        let p = Permissions::default();
        assert!(p.download && p.commercial_use && p.modification && !p.redistribution);
        let l = Limits::default();
        assert_eq!((l.max_downloads, l.max_activations, l.expires_at), (Some(20), Some(5), None));
    }

    #[test]
    fn fingerprints_are_validated() {
        assert!(Fingerprint::parse("machine-1:ABC").is_ok());
        assert!(Fingerprint::parse(&"a".repeat(128)).is_ok());
        for bad in ["", "has space", "tab\t", "é", &"a".repeat(129)] {
            let err = Fingerprint::parse(bad).unwrap_err();
            assert_eq!(err.code(), "validation", "{bad:?}");
        }
        assert!(serde_json::from_str::<Fingerprint>("\"\"").is_err());
    }

    #[test]
    fn status_precedence_is_revoked_suspended_expired_active() {
        let t = now();
        let mut l = sample(LicenseKind::Trial { ends_at: t - Duration::seconds(1) }, Limits::default());
        assert_eq!(l.status(t), LicenseStatus::Expired);
        l.suspended_at = Some(t);
        assert_eq!(l.status(t), LicenseStatus::Suspended);
        l.revoked_at = Some(t);
        assert_eq!(l.status(t), LicenseStatus::Revoked);
    }

    #[test]
    fn expiry_is_the_earliest_of_kind_and_limit() {
        let t = now();
        let limits = Limits { expires_at: Some(t + Duration::days(1)), ..Limits::default() };
        let l = sample(LicenseKind::Subscription { renews_at: t + Duration::days(30) }, limits);
        assert_eq!(l.expires_at(), Some(t + Duration::days(1)));
        assert_eq!(l.status(t + Duration::days(1) - Duration::seconds(1)), LicenseStatus::Active);
        assert_eq!(l.status(t + Duration::days(1)), LicenseStatus::Expired);
        let sub = sample(LicenseKind::Subscription { renews_at: t + Duration::days(30) }, Limits::default());
        assert_eq!(sub.status(t + Duration::days(30)), LicenseStatus::Expired, "no grace period");
        assert_eq!(sample(LicenseKind::Perpetual, Limits::default()).expires_at(), None);
    }

    #[test]
    fn consume_download_stops_at_the_limit() {
        let t = now();
        let mut l = sample(LicenseKind::Perpetual, Limits { max_downloads: Some(2), ..Limits::default() });
        l.consume_download(t).unwrap();
        l.consume_download(t).unwrap();
        let before = l.clone();
        let err = l.consume_download(t).unwrap_err();
        assert_eq!(err.code(), "download_limit_reached");
        assert_eq!(l, before, "a refused download changes nothing");
        let mut unlimited = sample(LicenseKind::Perpetual, Limits { max_downloads: None, ..Limits::default() });
        for _ in 0..100 {
            unlimited.consume_download(t).unwrap();
        }
        assert_eq!(unlimited.downloads_left(), None);
    }

    #[test]
    fn consume_download_refuses_inactive_licenses() {
        let t = now();
        let l = sample(LicenseKind::Perpetual, Limits::default());
        let mut revoked = l.apply(&LicenseAction::Revoke { reason: "refund".into() }, t).unwrap();
        assert_eq!(revoked.consume_download(t).unwrap_err().code(), "license_revoked");
        let mut suspended = l.apply(&LicenseAction::Suspend { reason: "abuse".into() }, t).unwrap();
        assert_eq!(suspended.consume_download(t).unwrap_err().code(), "license_suspended");
        let mut trial = sample(LicenseKind::Trial { ends_at: t }, Limits::default());
        assert_eq!(trial.consume_download(t).unwrap_err().code(), "license_expired");
    }

    #[test]
    fn transitions_record_reasons_and_bump_versions() {
        let t = now();
        let l = sample(LicenseKind::Perpetual, Limits::default());
        let s = l.apply(&LicenseAction::Suspend { reason: "chargeback".into() }, t).unwrap();
        assert_eq!((s.version, s.suspended_reason.as_deref()), (2, Some("chargeback")));
        let r = s.apply(&LicenseAction::Reinstate, t).unwrap();
        assert_eq!((r.version, r.status(t)), (3, LicenseStatus::Active));
        let err = r.apply(&LicenseAction::Reinstate, t).unwrap_err();
        assert_eq!(err.to_string(), "cannot reinstate a license that is active");
    }

    fn action() -> impl Strategy<Value = LicenseAction> {
        prop_oneof![
            Just(LicenseAction::Revoke { reason: "r".into() }),
            Just(LicenseAction::Suspend { reason: "s".into() }),
            Just(LicenseAction::Reinstate),
        ]
    }

    proptest! {
        /// Only the listed transitions succeed, and revoked is never left.
        #[test]
        fn standing_state_machine(actions in proptest::collection::vec(action(), 0..20)) {
            let t = now();
            let mut l = sample(LicenseKind::Perpetual, Limits::default());
            for a in &actions {
                let before = l.standing();
                let allowed = matches!(
                    (before, a),
                    (Standing::Good | Standing::Suspended, LicenseAction::Revoke { .. })
                        | (Standing::Good, LicenseAction::Suspend { .. })
                        | (Standing::Suspended, LicenseAction::Reinstate)
                );
                match l.apply(a, t) {
                    Ok(next) => {
                        prop_assert!(allowed, "{before:?} --{a:?}--> succeeded");
                        prop_assert_eq!(next.version, l.version + 1);
                        l = next;
                    }
                    Err(e) => {
                        prop_assert!(!allowed, "{before:?} --{a:?}--> refused: {e}");
                        prop_assert_eq!(e.code(), "invalid_transition");
                    }
                }
                if before == Standing::Revoked {
                    prop_assert_eq!(l.standing(), Standing::Revoked);
                }
            }
        }
    }
}
