//! A license's derived status and its fixed precedence.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;

/// Where a license stands at a given instant.
///
/// Derived, with fixed precedence: revoked > suspended > expired > active.
/// A license is expired from the instant its end (`limits.expires_at`, a
/// subscription's `renews_at` or a trial's `ends_at`, whichever is first)
/// is reached; there is no grace period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LicenseStatus {
    /// Usable.
    Active,
    /// Past its end.
    Expired,
    /// Suspended by an admin; may be reinstated.
    Suspended,
    /// Revoked for good.
    Revoked,
}

impl LicenseStatus {
    /// Applies the precedence to the raw facts.
    pub fn derive(revoked: bool, suspended: bool, expires_at: Option<Timestamp>, now: Timestamp) -> Self {
        if revoked {
            Self::Revoked
        } else if suspended {
            Self::Suspended
        } else if expires_at.is_some_and(|end| now >= end) {
            Self::Expired
        } else {
            Self::Active
        }
    }

    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Expired => "expired",
            Self::Suspended => "suspended",
            Self::Revoked => "revoked",
        }
    }
}

impl fmt::Display for LicenseStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use proptest::prelude::*;

    use super::*;
    use crate::clock::{Clock, ManualClock};

    proptest! {
        #[test]
        fn precedence_holds_for_every_combination(
            revoked: bool, suspended: bool, end in proptest::option::of(-100i64..100),
        ) {
            let now = ManualClock::at_epoch_secs(1_000_000).now();
            let expires_at = end.map(|s| now + Duration::seconds(s));
            let expected = if revoked {
                LicenseStatus::Revoked
            } else if suspended {
                LicenseStatus::Suspended
            } else if end.is_some_and(|s| s <= 0) {
                LicenseStatus::Expired
            } else {
                LicenseStatus::Active
            };
            prop_assert_eq!(LicenseStatus::derive(revoked, suspended, expires_at, now), expected);
        }
    }

    #[test]
    fn serializes_snake_case() {
        assert_eq!(serde_json::to_value(LicenseStatus::Suspended).unwrap(), "suspended");
        assert_eq!(LicenseStatus::Expired.to_string(), "expired");
    }
}
