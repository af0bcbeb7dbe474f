//! Activation rules: idempotent per fingerprint, never over the limit, only
//! on active licenses.
//!
//! These are pure methods on [`License`]; every adapter runs them inside its
//! atomic section (a lock, a `SELECT … FOR UPDATE` transaction), so the rules
//! are written once and the store only provides the atomicity.
//!
//! A full license answers [`Error::Conflict`] with the reason
//! [`ConflictReason::TooManyActivations`] (HTTP 409, code
//! `too_many_activations`).

use serde::{Deserialize, Serialize};

use super::license::{Activation, Fingerprint, License};
use crate::clock::Timestamp;
use crate::error::{ConflictReason, Error, Result};

/// The message of a full license's conflict.
const FULL: &str = "every activation slot of this license is taken; deactivate a machine first";

/// Whether `err` is the "all activation slots are taken" conflict.
pub fn is_too_many_activations(err: &Error) -> bool {
    matches!(err, Error::Conflict { reason: ConflictReason::TooManyActivations, .. })
}

/// What an activation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActivationOutcome {
    /// A new slot was taken.
    Activated,
    /// The fingerprint was already active; nothing changed.
    AlreadyActive,
}

impl License {
    /// Activates `fingerprint` at `now`.
    ///
    /// # Errors
    /// - The denial of [`License::ensure_active`] (revoked, suspended, expired),
    ///   checked first, even for an already-active fingerprint.
    /// - [`Error::Conflict`] ([`ConflictReason::TooManyActivations`]) when the fingerprint is
    ///   new and `activations.len() >= max_activations`.
    ///
    /// Nothing changes on error or on [`ActivationOutcome::AlreadyActive`].
    pub fn activate(&mut self, fingerprint: &Fingerprint, now: Timestamp) -> Result<ActivationOutcome> {
        self.ensure_active(now)?;
        if self.is_activated(fingerprint) {
            return Ok(ActivationOutcome::AlreadyActive);
        }
        if self.limits.max_activations.is_some_and(|max| self.activations.len() >= max as usize) {
            return Err(Error::conflict(ConflictReason::TooManyActivations, FULL));
        }
        self.activations.push(Activation { fingerprint: fingerprint.clone(), activated_at: now });
        self.touch(now);
        Ok(ActivationOutcome::Activated)
    }

    /// Frees the slot of `fingerprint`. Allowed in any status: freeing a
    /// slot can never grant anything.
    ///
    /// # Errors
    /// [`Error::NotFound`] (`activation`) when it is not activated.
    pub fn deactivate(&mut self, fingerprint: &Fingerprint, now: Timestamp) -> Result<()> {
        let before = self.activations.len();
        self.activations.retain(|a| &a.fingerprint != fingerprint);
        if self.activations.len() == before {
            return Err(Error::not_found("activation"));
        }
        self.touch(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;
    use crate::licensing::license::tests::{now, sample};
    use crate::licensing::{LicenseAction, LicenseKind, Limits};

    fn fp(n: u8) -> Fingerprint {
        Fingerprint::parse(&format!("fp-{n}")).unwrap()
    }

    #[test]
    fn idempotent_and_bounded() {
        let t = now();
        let mut l = sample(LicenseKind::Perpetual, Limits { max_activations: Some(1), ..Limits::default() });
        assert_eq!(l.activate(&fp(1), t).unwrap(), ActivationOutcome::Activated);
        let v = l.version;
        assert_eq!(l.activate(&fp(1), t).unwrap(), ActivationOutcome::AlreadyActive);
        assert_eq!(l.version, v, "idempotent activation changes nothing");
        let err = l.activate(&fp(2), t).unwrap_err();
        assert!(is_too_many_activations(&err));
        l.deactivate(&fp(1), t).unwrap();
        assert_eq!(l.deactivate(&fp(1), t).unwrap_err().code(), "not_found");
        assert_eq!(l.activate(&fp(2), t).unwrap(), ActivationOutcome::Activated);
    }

    #[test]
    fn refused_on_inactive_licenses_but_deactivation_still_frees() {
        let t = now();
        let mut l = sample(LicenseKind::Perpetual, Limits::default());
        l.activate(&fp(1), t).unwrap();
        let mut revoked = l.apply(&LicenseAction::Revoke { reason: "refund".into() }, t).unwrap();
        assert_eq!(revoked.activate(&fp(1), t).unwrap_err().code(), "license_revoked");
        revoked.deactivate(&fp(1), t).unwrap();
        let mut suspended = l.apply(&LicenseAction::Suspend { reason: "x".into() }, t).unwrap();
        assert_eq!(suspended.activate(&fp(2), t).unwrap_err().code(), "license_suspended");
        let mut trial = sample(LicenseKind::Trial { ends_at: t }, Limits::default());
        assert_eq!(trial.activate(&fp(2), t).unwrap_err().code(), "license_expired");
    }

    proptest! {
        /// Any sequence of activations and deactivations behaves like a set
        /// capped at `max_activations`.
        #[test]
        fn behaves_like_a_capped_set(
            max in proptest::option::of(0u32..4),
            ops in proptest::collection::vec((any::<bool>(), 0u8..6), 0..40),
        ) {
            let t = now();
            let mut l = sample(LicenseKind::Perpetual, Limits { max_activations: max, ..Limits::default() });
            let mut model = BTreeSet::new();
            for (activate, n) in ops {
                if activate {
                    let res = l.activate(&fp(n), t);
                    if model.contains(&n) {
                        prop_assert_eq!(res.unwrap(), ActivationOutcome::AlreadyActive);
                    } else if max.is_some_and(|m| model.len() >= m as usize) {
                        prop_assert!(is_too_many_activations(&res.unwrap_err()));
                    } else {
                        prop_assert_eq!(res.unwrap(), ActivationOutcome::Activated);
                        model.insert(n);
                    }
                } else {
                    prop_assert_eq!(l.deactivate(&fp(n), t).is_ok(), model.remove(&n));
                }
                let got: BTreeSet<_> = l.activations.iter().map(|a| a.fingerprint.clone()).collect();
                prop_assert_eq!(got, model.iter().map(|&n| fp(n)).collect::<BTreeSet<_>>());
                prop_assert!(max.is_none_or(|m| l.activations.len() <= m as usize));
            }
        }
    }
}
