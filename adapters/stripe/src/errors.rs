//! Stripe's answers that are not the object asked for, mapped to
//! [`bazaar_core::Error`] in one place.
//!
//! | Stripe | ours |
//! |---|---|
//! | 400 `idempotency_error` | `IdempotencyMismatch` |
//! | 400 `payment_intent_unexpected_state` | `InvalidTransition` (from the intent's status) |
//! | 400/404 `resource_missing` on `payment_method` | `Validation` on `payment_method` |
//! | 404 / `resource_missing` | `NotFound` |
//! | 400 on a refund's amount (`amount_too_large`, `charge_already_refunded`) | `Conflict` |
//! | other 400, 402 outside a confirmation | `Validation` on Stripe's `param` |
//! | 401, 403 | `Internal`: our key is wrong, no caller can fix that |
//! | 409 | `InFlight` (`lock_timeout`: `Conflict`), after retries |
//! | 429 | `RateLimited` with Stripe's `Retry-After` (1 s if none), after retries |
//! | 5xx, timeouts, connection failures, breaker open | `Unavailable` |
//!
//! A 402 card error on a confirmation is no error at all: it is the
//! decline report (see [`crate::provider`]).

use bazaar_core::ConflictReason;
use std::time::Duration;

use bazaar_core::Error;

use crate::wire::{ApiError, ErrorEnvelope};

/// The dependency name in [`Error::Unavailable`].
pub(crate) const STRIPE: &str = "stripe";

/// Which provider operation failed; names the action of an
/// [`Error::InvalidTransition`] and decides refund-specific mappings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Create,
    Confirm,
    Refund,
    Retrieve,
    Cancel,
}

impl Op {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Confirm => "confirm",
            Self::Refund => "refund",
            Self::Retrieve => "retrieve",
            Self::Cancel => "cancel",
        }
    }
}

/// Why a call reached no usable answer; the cause inside
/// [`Error::Unavailable`] and [`Error::Internal`]. Carries status, type and
/// code only: Stripe's messages can echo request details.
#[derive(Debug, thiserror::Error)]
pub enum StripeFailure {
    /// Stripe answered with this status (and error type/code, if any).
    #[error("stripe answered HTTP {status} ({kind}{})", code.as_deref().map(|c| format!(", {c}")).unwrap_or_default())]
    Status {
        /// The HTTP status.
        status: u16,
        /// Stripe's error `type`, or `unknown`.
        kind: String,
        /// Stripe's error `code`.
        code: Option<String>,
    },
    /// An attempt did not finish within the attempt timeout.
    #[error("no answer from stripe within the attempt timeout")]
    AttemptTimeout,
    /// The call did not finish within its deadline.
    #[error("the call to stripe passed its deadline")]
    Deadline,
    /// The circuit breaker is open: recent calls failed, so none is sent.
    #[error("circuit breaker open: stripe is failing, not calling it")]
    BreakerOpen,
    /// The request could not be sent or the answer not read.
    #[error("could not reach stripe: {0}")]
    Transport(String),
    /// The answer was not the JSON we expect.
    #[error("stripe sent a body we cannot read: {0}")]
    Body(String),
}

/// The envelope of an error body, or an empty error when the body is not
/// one (a proxy's HTML page, an empty 502).
pub(crate) fn envelope(body: &[u8]) -> ApiError {
    serde_json::from_slice::<ErrorEnvelope>(body).map(|e| e.error).unwrap_or_default()
}

fn failure(status: u16, error: &ApiError) -> StripeFailure {
    let kind = if error.kind.is_empty() { "unknown".to_owned() } else { error.kind.clone() };
    StripeFailure::Status { status, kind, code: error.code.clone() }
}

/// Our error for Stripe's non-2xx `status` with `error`, answering `op`.
pub(crate) fn map(op: Op, status: u16, error: &ApiError, retry_after: Option<Duration>) -> Error {
    let code = error.code.as_deref();
    let message = || error.message.clone().unwrap_or_else(|| "rejected by stripe".to_owned());
    match status {
        401 => Error::internal("stripe rejected the secret key", failure(status, error)),
        403 => Error::internal("the stripe key lacks a permission", failure(status, error)),
        409 if code == Some("lock_timeout") => {
            Error::conflict(ConflictReason::Contended, "stripe is changing this object; try again")
        }
        409 => Error::InFlight,
        429 => Error::RateLimited { retry_after: retry_after.unwrap_or(Duration::from_secs(1)) },
        500..=599 => Error::unavailable(STRIPE, failure(status, error)),
        400..=499 => {
            if error.kind == "idempotency_error" {
                return Error::IdempotencyMismatch;
            }
            if code == Some("payment_intent_unexpected_state") {
                let from = error.payment_intent.as_ref().map_or_else(|| "unknown".to_owned(), |pi| pi.status.clone());
                return Error::transition("payment_intent", from, op.as_str());
            }
            if code == Some("resource_missing") || status == 404 {
                return if error.param.as_deref() == Some("payment_method") {
                    Error::invalid("payment_method", message())
                } else {
                    Error::not_found("payment_intent")
                };
            }
            let over_refund = matches!(code, Some("amount_too_large" | "charge_already_refunded"))
                || (code.is_none() && error.param.as_deref() == Some("amount"));
            if op == Op::Refund && over_refund {
                return Error::conflict(ConflictReason::Exceeded, "refund exceeds the captured amount");
            }
            Error::invalid(error.param.clone().unwrap_or_else(|| "request".to_owned()), message())
        }
        _ => Error::unavailable(STRIPE, failure(status, error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn mapped(op: Op, status: u16, name: &str) -> Error {
        map(op, status, &envelope(&fixture(name)), None)
    }

    #[test]
    fn recorded_errors_map_to_our_kinds() {
        assert!(matches!(mapped(Op::Create, 400, "error_idempotency.json"), Error::IdempotencyMismatch));
        assert!(matches!(mapped(Op::Create, 409, "error_idempotency_in_flight.json"), Error::InFlight));
        match mapped(Op::Confirm, 400, "error_unexpected_state.json") {
            Error::InvalidTransition { from, action, .. } => {
                assert_eq!((from.as_str(), action.as_str()), ("succeeded", "confirm"))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(mapped(Op::Retrieve, 404, "error_resource_missing.json").code(), "not_found");
        match mapped(Op::Confirm, 400, "error_no_such_payment_method.json") {
            Error::Validation(f) => assert_eq!(f[0].field, "payment_method"),
            other => panic!("{other:?}"),
        }
        assert_eq!(mapped(Op::Refund, 400, "error_refund_exceeds.json").code(), "conflict");
        assert_eq!(mapped(Op::Create, 400, "error_refund_exceeds.json").code(), "validation", "only refunds conflict");
        assert_eq!(mapped(Op::Create, 500, "error_api.json").code(), "unavailable");
        assert_eq!(map(Op::Create, 502, &envelope(b"<html>bad gateway</html>"), None).code(), "unavailable");
    }

    #[test]
    fn a_rejected_key_is_internal_and_never_echoed() {
        let err = mapped(Op::Create, 401, "error_invalid_api_key.json");
        assert_eq!(err.code(), "internal");
        let chain = format!("{err} {err:?} {}", std::error::Error::source(&err).unwrap());
        assert!(!chain.contains("sk_test"), "{chain}");
    }

    #[test]
    fn rate_limits_carry_the_servers_delay() {
        let err = map(Op::Confirm, 429, &envelope(&fixture("error_rate_limit.json")), Some(Duration::from_secs(7)));
        assert!(matches!(err, Error::RateLimited { retry_after } if retry_after == Duration::from_secs(7)));
    }
}
