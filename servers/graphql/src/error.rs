//! The one mapping from core errors to GraphQL errors.
//!
//! A GraphQL error carries the REST API's stable code in
//! `extensions.code` (`not_found`, `validation`, `idempotency_mismatch`,
//! a denial such as `license_revoked`, …), field errors in
//! `extensions.details` for `validation`, and `extensions.retryAfter`
//! (seconds) for `rate_limited` and `unavailable`. A server-side failure
//! logs its cause chain and says only "internal error".
//!
//! Errors the GraphQL engine raises itself before any resolver runs (a
//! syntax error, an unknown field, a query over the depth or complexity
//! limit) get the code `malformed`, REST's code for a request that cannot
//! be read.

use std::time::Duration;

use async_graphql::ErrorExtensions;
use bazaar_core::{ConflictReason, Error};
use serde_json::json;

/// The code of engine errors (syntax, validation, limits).
pub const MALFORMED: &str = "malformed";

/// A core error as a GraphQL error with its code in `extensions.code`.
///
/// Exhaustive, with no catch-all arm: a new core error variant is a compile
/// error here rather than a silent `internal`.
pub fn graphql_error(e: Error) -> async_graphql::Error {
    let message = e.to_string();
    let code = e.code();
    let (message, details, retry_after): (String, Option<serde_json::Value>, Option<Duration>) = match &e {
        Error::NotFound { .. }
        | Error::Conflict {
            reason:
                ConflictReason::Duplicate
                | ConflictReason::AlreadyLicensed
                | ConflictReason::Contended
                | ConflictReason::Exceeded
                | ConflictReason::TooManyActivations,
            ..
        }
        | Error::InFlight
        | Error::IdempotencyMismatch
        | Error::InvalidTransition { .. }
        | Error::Forbidden(_)
        | Error::Denied(_) => (message, None, None),
        Error::VersionMismatch { expected, current } => {
            (message, Some(json!({ "expected": expected, "current": current })), None)
        }
        Error::TooLarge { size, limit } => (
            message,
            Some(json!([{ "field": "size", "message": format!("{size} bytes exceeds the maximum of {limit} bytes") }])),
            None,
        ),
        Error::Validation(fields) => {
            (message, Some(serde_json::to_value(fields).expect("field errors serialize")), None)
        }
        // The reason alone ("access token expired"), as REST answers it.
        Error::Unauthenticated(reason) => (reason.clone(), None, None),
        Error::RateLimited { retry_after } => ("too many requests".to_owned(), None, Some(*retry_after)),
        Error::Unavailable { .. } => {
            tracing::error!(error = %e.report(), "backend unavailable");
            ("service temporarily unavailable".to_owned(), None, Some(Duration::from_secs(1)))
        }
        Error::Integrity(_) | Error::Internal { .. } => {
            tracing::error!(error = %e.report(), "internal error");
            return async_graphql::Error::new("internal error").extend_with(|_, ext| ext.set("code", "internal"));
        }
    };
    async_graphql::Error::new(message).extend_with(|_, ext| {
        ext.set("code", code);
        if let Some(details) = &details {
            ext.set("details", async_graphql::Value::from_json(details.clone()).unwrap_or_default());
        }
        if let Some(wait) = retry_after {
            // Whole seconds, rounded up, as REST's `Retry-After`.
            let secs = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
            ext.set("retryAfter", secs);
        }
    })
}

/// A GraphQL error from a core error, for `?` in resolvers.
pub(crate) trait CoreResultExt<T> {
    /// Maps the error with [`graphql_error`].
    fn gql(self) -> async_graphql::Result<T>;
}

impl<T> CoreResultExt<T> for bazaar_core::Result<T> {
    fn gql(self) -> async_graphql::Result<T> {
        self.map_err(graphql_error)
    }
}

/// Gives every error of `response` that has no code the code
/// [`MALFORMED`]: those come from the engine (parse, validation, limits).
pub(crate) fn code_engine_errors(response: &mut async_graphql::Response) {
    for error in &mut response.errors {
        let extensions = error.extensions.get_or_insert_with(Default::default);
        if extensions.get("code").is_none() {
            extensions.set("code", MALFORMED);
        }
    }
}

#[cfg(test)]
mod tests {
    use bazaar_core::error::Denial;

    use super::*;

    fn code_of(e: Error) -> (String, async_graphql::Error) {
        let err = graphql_error(e);
        let code = match err.extensions.as_ref().and_then(|x| x.get("code")) {
            Some(async_graphql::Value::String(s)) => s.clone(),
            other => panic!("no code: {other:?}"),
        };
        (code, err)
    }

    #[test]
    fn core_errors_carry_the_rest_codes() {
        let cases: Vec<(Error, &str)> = vec![
            (Error::not_found("product"), "not_found"),
            (Error::conflict(ConflictReason::Duplicate, "taken"), "conflict"),
            (Error::conflict(ConflictReason::TooManyActivations, "full"), "too_many_activations"),
            (Error::InFlight, "conflict"),
            (Error::IdempotencyMismatch, "idempotency_mismatch"),
            (Error::VersionMismatch { expected: 1, current: 2 }, "version_mismatch"),
            (Error::transition("order", "paid", "cancel"), "invalid_transition"),
            (Error::invalid("title", "is empty"), "validation"),
            (Error::Forbidden("not yours".into()), "forbidden"),
            (Error::Denied(Denial::LicenseRevoked), "license_revoked"),
            (Error::Unauthenticated("no token".into()), "unauthenticated"),
            (Error::RateLimited { retry_after: Duration::from_millis(1500) }, "rate_limited"),
            (Error::unavailable("database", "connection refused"), "unavailable"),
            (Error::internal("row decode", "column 3 was NULL"), "internal"),
            (Error::Integrity("amount mismatch".into()), "internal"),
        ];
        for (e, code) in cases {
            assert_eq!(code_of(e).0, code);
        }
    }

    #[test]
    fn details_and_retry_after_travel_in_extensions() {
        let (_, err) = code_of(Error::invalid("title", "is empty"));
        let details = err.extensions.as_ref().and_then(|x| x.get("details")).cloned().unwrap();
        assert_eq!(details.into_json().unwrap(), json!([{ "field": "title", "message": "is empty" }]));
        let (_, err) = code_of(Error::RateLimited { retry_after: Duration::from_millis(1500) });
        assert_eq!(err.extensions.as_ref().and_then(|x| x.get("retryAfter")), Some(&async_graphql::Value::from(2)));
    }

    #[test]
    fn server_errors_do_not_leak_their_cause() {
        let (_, err) = code_of(Error::internal("row decode", "secret table name"));
        assert_eq!(err.message, "internal error");
        let (_, err) = code_of(Error::unavailable("database", "password=hunter2"));
        assert!(!err.message.contains("hunter2"), "{}", err.message);
    }
}
