//! Pure license validation with a fixed, deterministic order of checks.
//!
//! [`validate`] returns the code of the FIRST rule that fails, in this order:
//!
//! 1. `not_found` — there is no license.
//! 2. `revoked` — it was revoked.
//! 3. `suspended` — it is suspended.
//! 4. `expired` — its end (`limits.expires_at`, `renews_at`, `ends_at`) is reached.
//! 5. `activation_required` — the license is node-locked (has a
//!    `max_activations` limit) and either no fingerprint was given or no
//!    machine is activated at all.
//! 6. `too_many_activations` — node-locked, the fingerprint is not activated
//!    and every slot is taken (`activations.len() >= max_activations`).
//! 7. `fingerprint_mismatch` — node-locked, the fingerprint is not activated
//!    while other machines are (and slots remain, since rule 6 came first):
//!    the client should activate this machine.
//! 8. `valid`.
//!
//! A license without a `max_activations` limit is not node-locked: rules 5–7
//! never apply to it and a fingerprint, if given, is ignored.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::license::{Fingerprint, License};
use super::status::LicenseStatus;
use crate::clock::Timestamp;

/// The outcome code of a validation, in check order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValidationCode {
    /// No such license (or the key does not verify).
    NotFound,
    /// Revoked.
    Revoked,
    /// Suspended.
    Suspended,
    /// Expired.
    Expired,
    /// Node-locked and no fingerprint given, or nothing activated yet.
    ActivationRequired,
    /// The fingerprint is not activated and no slot is free.
    TooManyActivations,
    /// The fingerprint is not activated; other machines are, and slots remain.
    FingerprintMismatch,
    /// Valid.
    Valid,
}

impl ValidationCode {
    /// Every code, in check order.
    pub const ORDER: [ValidationCode; 8] = [
        Self::NotFound,
        Self::Revoked,
        Self::Suspended,
        Self::Expired,
        Self::ActivationRequired,
        Self::TooManyActivations,
        Self::FingerprintMismatch,
        Self::Valid,
    ];

    /// The snake_case wire code.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::Revoked => "revoked",
            Self::Suspended => "suspended",
            Self::Expired => "expired",
            Self::ActivationRequired => "activation_required",
            Self::TooManyActivations => "too_many_activations",
            Self::FingerprintMismatch => "fingerprint_mismatch",
            Self::Valid => "valid",
        }
    }
}

impl fmt::Display for ValidationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The answer to "is this key valid (on this machine)?".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationResult {
    /// `code == Valid`.
    pub valid: bool,
    /// Why (not).
    pub code: ValidationCode,
    /// The license, whenever one was found (the key is the credential).
    pub license: Option<License>,
}

impl ValidationResult {
    /// Wraps a code and the license it was computed for.
    pub fn new(code: ValidationCode, license: Option<License>) -> Self {
        Self { valid: code == ValidationCode::Valid, code, license }
    }
}

/// Validates `license` for `fingerprint` at `now`; see the module docs for
/// the exact rules and their order.
pub fn validate(license: Option<&License>, fingerprint: Option<&Fingerprint>, now: Timestamp) -> ValidationCode {
    let Some(license) = license else {
        return ValidationCode::NotFound;
    };
    match license.status(now) {
        LicenseStatus::Revoked => return ValidationCode::Revoked,
        LicenseStatus::Suspended => return ValidationCode::Suspended,
        LicenseStatus::Expired => return ValidationCode::Expired,
        LicenseStatus::Active => {}
    }
    let Some(max) = license.limits.max_activations else {
        return ValidationCode::Valid;
    };
    let Some(fingerprint) = fingerprint else {
        return ValidationCode::ActivationRequired;
    };
    if license.activations.is_empty() {
        return ValidationCode::ActivationRequired;
    }
    if license.is_activated(fingerprint) {
        ValidationCode::Valid
    } else if license.activations.len() >= max as usize {
        ValidationCode::TooManyActivations
    } else {
        ValidationCode::FingerprintMismatch
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use proptest::prelude::*;

    use super::*;
    use crate::licensing::license::tests::{now, sample};
    use crate::licensing::{Activation, LicenseKind, Limits};

    fn fp(s: &str) -> Fingerprint {
        Fingerprint::parse(s).unwrap()
    }

    #[test]
    fn examples_of_each_code() {
        let t = now();
        assert_eq!(validate(None, None, t), ValidationCode::NotFound);
        let mut l = sample(LicenseKind::Perpetual, Limits { max_activations: Some(2), ..Limits::default() });
        assert_eq!(validate(Some(&l), None, t), ValidationCode::ActivationRequired);
        assert_eq!(validate(Some(&l), Some(&fp("a")), t), ValidationCode::ActivationRequired);
        l.activate(&fp("a"), t).unwrap();
        assert_eq!(validate(Some(&l), Some(&fp("a")), t), ValidationCode::Valid);
        assert_eq!(validate(Some(&l), Some(&fp("b")), t), ValidationCode::FingerprintMismatch);
        l.activate(&fp("c"), t).unwrap();
        assert_eq!(validate(Some(&l), Some(&fp("b")), t), ValidationCode::TooManyActivations);
        let unlocked = sample(LicenseKind::Perpetual, Limits { max_activations: None, ..Limits::default() });
        assert_eq!(validate(Some(&unlocked), None, t), ValidationCode::Valid);
        assert_eq!(validate(Some(&unlocked), Some(&fp("z")), t), ValidationCode::Valid);
        let trial = sample(LicenseKind::Trial { ends_at: t }, Limits::default());
        assert_eq!(validate(Some(&trial), Some(&fp("a")), t), ValidationCode::Expired);
        let r = ValidationResult::new(ValidationCode::Valid, None);
        assert!(r.valid);
        assert_eq!(serde_json::to_value(ValidationCode::TooManyActivations).unwrap(), "too_many_activations");
    }

    /// A license shaped by arbitrary facts, plus the fingerprint to test.
    #[derive(Debug, Clone)]
    struct Case {
        present: bool,
        revoked: bool,
        suspended: bool,
        expiry_offset: Option<i64>,
        max_activations: Option<u32>,
        activated: Vec<u8>,
        fingerprint: Option<u8>,
    }

    fn case() -> impl Strategy<Value = Case> {
        (
            any::<bool>(),
            prop::bool::weighted(0.2),
            prop::bool::weighted(0.2),
            prop::option::of(-5i64..5),
            prop::option::of(0u32..4),
            prop::collection::btree_set(0u8..6, 0..5),
            prop::option::of(0u8..6),
        )
            .prop_map(
                |(present, revoked, suspended, expiry_offset, max_activations, activated, fingerprint)| Case {
                    present,
                    revoked,
                    suspended,
                    expiry_offset,
                    max_activations,
                    activated: activated.into_iter().collect(),
                    fingerprint,
                },
            )
    }

    fn name(n: u8) -> Fingerprint {
        fp(&format!("machine-{n}"))
    }

    proptest! {
        /// The returned code is the first rule, in the documented order,
        /// whose condition holds, each condition judged on its own.
        #[test]
        fn code_is_the_first_failing_rule(c in case()) {
            let t = now();
            let mut l = sample(LicenseKind::Perpetual, Limits {
                max_activations: c.max_activations,
                expires_at: c.expiry_offset.map(|s| t + Duration::seconds(s)),
                ..Limits::default()
            });
            l.revoked_at = c.revoked.then_some(t);
            l.suspended_at = c.suspended.then_some(t);
            // Activations are set directly: the rules must hold for any stored
            // state, even one over the limit (e.g. after the limit was lowered).
            l.activations = c.activated.iter().map(|&n| Activation { fingerprint: name(n), activated_at: t }).collect();
            let fingerprint = c.fingerprint.map(name);
            let expired = c.expiry_offset.is_some_and(|s| s <= 0);
            let locked = c.max_activations.is_some();
            let known = c.fingerprint.is_some_and(|f| c.activated.contains(&f));
            let full = c.max_activations.is_some_and(|m| c.activated.len() >= m as usize);
            let rules = [
                (ValidationCode::NotFound, !c.present),
                (ValidationCode::Revoked, c.revoked),
                (ValidationCode::Suspended, c.suspended),
                (ValidationCode::Expired, expired),
                (ValidationCode::ActivationRequired, locked && (c.fingerprint.is_none() || c.activated.is_empty())),
                (ValidationCode::TooManyActivations, locked && c.fingerprint.is_some() && !known && full),
                (ValidationCode::FingerprintMismatch, locked && c.fingerprint.is_some() && !known),
                (ValidationCode::Valid, true),
            ];
            let expected = rules.iter().find(|(_, fails)| *fails).map(|(code, _)| *code).unwrap();
            let got = validate(c.present.then_some(&l), fingerprint.as_ref(), t);
            prop_assert_eq!(got, expected);
            prop_assert_eq!(rules.map(|r| r.0), ValidationCode::ORDER);
        }
    }
}
