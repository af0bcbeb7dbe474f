//! The one mapping from core errors to `tonic::Status`.
//!
//! [`status`] matches every [`Error`] variant (no `_` arm), so a new variant
//! is a compile error here rather than a silent `INTERNAL`. Every status
//! carries a `google.rpc.ErrorInfo` (domain `bazaar`) whose `reason` is the
//! HTTP API's error code in upper case (`VERSION_MISMATCH`,
//! `LICENSE_REVOKED`), so clients can tell variants that share a gRPC code
//! apart without parsing messages.
//!
//! | core error | gRPC code | why |
//! |---|---|---|
//! | `NotFound` | `NOT_FOUND` | |
//! | `Conflict` (`Duplicate`, `AlreadyLicensed`) | `ALREADY_EXISTS` | a uniqueness conflict: the e-mail is taken, the buyer already holds a license for the product |
//! | `Conflict` (`TooManyActivations`) | `FAILED_PRECONDITION` | no slot is free: the state must change (deactivate a machine) first; reason `TOO_MANY_ACTIVATIONS` |
//! | `Conflict` (`Exceeded`) | `FAILED_PRECONDITION` | more than what is left was asked for (a refund above the capture) |
//! | `Conflict` (`Contended`) | `ABORTED` | concurrent changes kept winning; retrying may succeed |
//! | `InvalidTransition` | `FAILED_PRECONDITION` | the entity is in the wrong state for the action |
//! | `VersionMismatch` | `FAILED_PRECONDITION` | the caller's version is stale; re-read, then retry (metadata `expected`, `current`) |
//! | `IdempotencyMismatch` | `FAILED_PRECONDITION` | the key belongs to another request; retrying as-is never helps |
//! | `InFlight` | `ABORTED` | the key's first request is still running; retrying later helps |
//! | `TooLarge` | `INVALID_ARGUMENT` | reason `PAYLOAD_TOO_LARGE`, metadata `limit` |
//! | `Validation` | `INVALID_ARGUMENT` | with a `google.rpc.BadRequest` naming every field, and the fields in the message |
//! | `Forbidden`, `Denied` | `PERMISSION_DENIED` | a denial's own code is the reason (`LICENSE_REVOKED`) |
//! | `Unauthenticated` | `UNAUTHENTICATED` | |
//! | `RateLimited` | `RESOURCE_EXHAUSTED` | with a `google.rpc.RetryInfo` delay |
//! | `Unavailable` | `UNAVAILABLE` | names the dependency; the cause is logged, never sent |
//! | `Internal`, `Integrity` | `INTERNAL` | message `internal error`; the cause is logged, never sent |

use std::collections::HashMap;

use bazaar_core::{ConflictReason, Error};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

/// The `ErrorInfo.domain` of every Bazaar status.
pub const DOMAIN: &str = "bazaar";

/// Maps a core error to the status sent to the client.
pub fn status(e: Error) -> Status {
    let reason = e.code().to_ascii_uppercase();
    let mut metadata = HashMap::new();
    let mut details = ErrorDetails::new();
    let (code, message) = match &e {
        Error::NotFound { entity } => {
            metadata.insert("entity".to_owned(), (*entity).to_owned());
            (Code::NotFound, e.to_string())
        }
        Error::Conflict { reason: ConflictReason::Duplicate | ConflictReason::AlreadyLicensed, .. } => {
            (Code::AlreadyExists, e.to_string())
        }
        Error::Conflict { reason: ConflictReason::TooManyActivations | ConflictReason::Exceeded, .. } => {
            (Code::FailedPrecondition, e.to_string())
        }
        Error::Conflict { reason: ConflictReason::Contended, .. } => (Code::Aborted, e.to_string()),
        Error::TooLarge { limit, .. } => {
            metadata.insert("limit".to_owned(), limit.to_string());
            (Code::InvalidArgument, e.to_string())
        }
        Error::VersionMismatch { expected, current } => {
            metadata.insert("expected".to_owned(), expected.to_string());
            metadata.insert("current".to_owned(), current.to_string());
            (Code::FailedPrecondition, e.to_string())
        }
        Error::InvalidTransition { entity, from, action } => {
            metadata.insert("entity".to_owned(), (*entity).to_owned());
            metadata.insert("from".to_owned(), from.clone());
            metadata.insert("action".to_owned(), action.clone());
            (Code::FailedPrecondition, e.to_string())
        }
        Error::IdempotencyMismatch => (Code::FailedPrecondition, e.to_string()),
        Error::InFlight => (Code::Aborted, e.to_string()),
        Error::Validation(fields) => {
            details.set_bad_request(
                fields.iter().map(|f| FieldViolation::new(f.field.clone(), f.message.clone())).collect::<Vec<_>>(),
            );
            (Code::InvalidArgument, e.to_string())
        }
        Error::Forbidden(_) => (Code::PermissionDenied, e.to_string()),
        Error::Denied(_) => (Code::PermissionDenied, e.to_string()),
        Error::Unauthenticated(_) => (Code::Unauthenticated, e.to_string()),
        Error::RateLimited { retry_after } => {
            details.set_retry_info(Some(*retry_after));
            (Code::ResourceExhausted, e.to_string())
        }
        Error::Unavailable { what, .. } => {
            tracing::warn!(error = %e.report(), "gRPC call failed: dependency unavailable");
            (Code::Unavailable, format!("{what} unavailable"))
        }
        Error::Integrity(_) | Error::Internal { .. } => {
            tracing::error!(error = %e.report(), "gRPC call failed: internal error");
            (Code::Internal, "internal error".to_owned())
        }
    };
    details.set_error_info(reason, DOMAIN, metadata);
    Status::with_error_details(code, message, details)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bazaar_core::error::{Denial, FieldError};

    use super::*;

    fn reason(s: &Status) -> String {
        s.get_details_error_info().expect("every status carries ErrorInfo").reason
    }

    #[test]
    fn every_variant_has_its_code_and_reason() {
        let cases: Vec<(Error, Code, &str)> = vec![
            (Error::not_found("order"), Code::NotFound, "NOT_FOUND"),
            (Error::conflict(ConflictReason::Duplicate, "email taken"), Code::AlreadyExists, "CONFLICT"),
            (Error::VersionMismatch { expected: 1, current: 2 }, Code::FailedPrecondition, "VERSION_MISMATCH"),
            (Error::transition("order", "paid", "cancel"), Code::FailedPrecondition, "INVALID_TRANSITION"),
            (Error::IdempotencyMismatch, Code::FailedPrecondition, "IDEMPOTENCY_MISMATCH"),
            (Error::InFlight, Code::Aborted, "CONFLICT"),
            (Error::invalid("q", "too long"), Code::InvalidArgument, "VALIDATION"),
            (Error::Forbidden("not yours".into()), Code::PermissionDenied, "FORBIDDEN"),
            (Error::Denied(Denial::LicenseRevoked), Code::PermissionDenied, "LICENSE_REVOKED"),
            (Error::Unauthenticated("no token".into()), Code::Unauthenticated, "UNAUTHENTICATED"),
            (Error::RateLimited { retry_after: Duration::from_secs(2) }, Code::ResourceExhausted, "RATE_LIMITED"),
            (Error::unavailable("database", "connection refused"), Code::Unavailable, "UNAVAILABLE"),
            (Error::internal("saving", "disk on fire"), Code::Internal, "INTERNAL"),
            (Error::Integrity("amount differs".into()), Code::Internal, "INTEGRITY"),
        ];
        for (error, code, expected_reason) in cases {
            let label = format!("{error:?}");
            let s = status(error);
            assert_eq!(s.code(), code, "{label}");
            assert_eq!(reason(&s), expected_reason, "{label}");
            assert_eq!(s.get_details_error_info().unwrap().domain, DOMAIN);
        }
    }

    #[test]
    fn too_many_activations_is_a_failed_precondition() {
        let e = Error::conflict(ConflictReason::TooManyActivations, "every slot is taken");
        let s = status(e);
        assert_eq!((s.code(), reason(&s).as_str()), (Code::FailedPrecondition, "TOO_MANY_ACTIVATIONS"));
    }

    #[test]
    fn validation_names_every_field_in_details_and_message() {
        let s = status(Error::Validation(vec![
            FieldError::new("price_min", "must not be negative"),
            FieldError::new("page", "must be at least 1"),
        ]));
        let bad = s.get_details_bad_request().expect("BadRequest details");
        let fields: Vec<_> = bad.field_violations.iter().map(|v| (v.field.as_str(), v.description.as_str())).collect();
        assert_eq!(fields, [("price_min", "must not be negative"), ("page", "must be at least 1")]);
        assert!(s.message().contains("price_min") && s.message().contains("page"), "{}", s.message());
    }

    #[test]
    fn rate_limits_carry_the_retry_delay() {
        let s = status(Error::RateLimited { retry_after: Duration::from_millis(1500) });
        assert_eq!(s.get_details_retry_info().unwrap().retry_delay, Some(Duration::from_millis(1500)));
    }

    #[test]
    fn causes_never_reach_the_client() {
        let s = status(Error::internal("saving order", std::io::Error::other("password=hunter2")));
        assert_eq!(s.message(), "internal error");
        let s = status(Error::unavailable("database", std::io::Error::other("host 10.0.0.7 refused")));
        assert_eq!(s.message(), "database unavailable");
        assert!(!format!("{:?}", s.details()).contains("10.0.0.7"));
    }

    #[test]
    fn metadata_explains_state_errors() {
        let s = status(Error::VersionMismatch { expected: 3, current: 5 });
        let info = s.get_details_error_info().unwrap();
        assert_eq!((info.metadata["expected"].as_str(), info.metadata["current"].as_str()), ("3", "5"));
        let s = status(Error::transition("license", "revoked", "suspend"));
        let info = s.get_details_error_info().unwrap();
        assert_eq!(info.metadata["from"], "revoked");
    }
}
