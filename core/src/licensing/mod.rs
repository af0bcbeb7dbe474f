//! Keygen-style licensing: licenses, signed keys, validation, activations.
//!
//! - [`License`] is the aggregate; its [`LicenseStatus`] is derived with the
//!   precedence revoked > suspended > expired > active.
//! - Keys ([`LicenseSigner`], [`verify_offline`]) are Ed25519-signed claims a
//!   client checks without calling home.
//! - [`validate`] is the pure online check with a fixed order of codes.
//! - Activation and download counting are pure methods on [`License`] that
//!   every [`LicenseRepository`] runs atomically.
//!
//! # Terms of an issued license
//! Unless configured otherwise, a purchase gets [`Permissions::default`]
//! (download, commercial use and modification; no redistribution) and
//! [`Limits::default`] (20 downloads, 5 activations, no hard expiry).
//! One-time and free purchases are perpetual; a subscription line gets
//! `renews_at = now + interval` (a calendar month or year).

mod activation;
#[cfg(test)]
pub(crate) mod fakes;
mod key;
mod license;
mod purchase;
mod repository;
mod service;
mod status;
mod validation;

pub use activation::{ActivationOutcome, is_too_many_activations};
pub use key::{
    CLAIMS_VERSION, KeyError, LicenseClaims, LicensePublicKey, LicenseSigner, verify_offline, verify_signature,
};
pub use license::{Activation, Fingerprint, License, LicenseAction, LicenseKind, Limits, NewLicense, Permissions};
pub use purchase::{Purchase, PurchaseState, PurchasedLine};
#[cfg(any(test, feature = "mocks"))]
pub use repository::MockLicenseRepository;
pub use repository::{LicenseRepository, check_distinct};
pub use service::LicenseService;
pub use status::LicenseStatus;
pub use validation::{ValidationCode, ValidationResult, validate};
