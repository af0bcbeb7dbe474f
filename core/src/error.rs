//! The core's error type and its coarse [`ErrorKind`].
//!
//! Transports map errors in one exhaustive `match` over [`Error`] (or over
//! [`ErrorKind`] plus [`Error::code`]), so a new variant is a compile error
//! there rather than a silent 500.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use serde::Serialize;

/// Convenience alias used by every fallible core function.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Boxed opaque cause from an adapter or driver.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// The coarse class of an [`Error`], which decides the transport status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The thing does not exist (or the caller may not know it does).
    NotFound,
    /// The request conflicts with the current state; retrying as-is won't help.
    Conflict,
    /// The input is malformed or fails validation.
    Invalid,
    /// The caller is known but not allowed.
    Forbidden,
    /// The caller is not known.
    Unauthenticated,
    /// Too many requests; retry later.
    RateLimited,
    /// A dependency is down; retrying later may help.
    Unavailable,
    /// A bug or a broken invariant.
    Internal,
}

/// One failed field of a validated input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The field's name as the caller sent it (`"price.minor"`, `"title"`).
    pub field: String,
    /// What is wrong, for a human.
    pub message: String,
}

impl FieldError {
    /// A field error.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

/// Why access to a licensed resource was refused; each has its own wire code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Denial {
    /// The caller holds no license granting this.
    NotLicensed,
    /// The license was revoked (e.g. refunded).
    LicenseRevoked,
    /// The license is suspended.
    LicenseSuspended,
    /// The license has expired.
    LicenseExpired,
    /// The license's download allowance is used up.
    DownloadLimitReached,
    /// The signed URL is past its expiry.
    UrlExpired,
    /// The signed URL does not verify.
    UrlInvalid,
    /// The asset has not passed its malware scan.
    AssetNotClean,
}

impl Denial {
    /// The stable wire code.
    pub fn code(self) -> &'static str {
        match self {
            Self::NotLicensed => "not_licensed",
            Self::LicenseRevoked => "license_revoked",
            Self::LicenseSuspended => "license_suspended",
            Self::LicenseExpired => "license_expired",
            Self::DownloadLimitReached => "download_limit_reached",
            Self::UrlExpired => "url_expired",
            Self::UrlInvalid => "url_invalid",
            Self::AssetNotClean => "asset_not_clean",
        }
    }
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Why a request conflicts with the current state: a typed reason, so
/// transports tell conflicts apart without reading messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictReason {
    /// A unique key is taken: an e-mail, an id, the license of an order
    /// line, a buyer's review of a product.
    Duplicate,
    /// The buyer already holds an active license for a product ordered.
    AlreadyLicensed,
    /// Every activation slot of the license is taken; a machine must be
    /// deactivated first.
    TooManyActivations,
    /// Concurrent changes kept winning; the same request may succeed later.
    Contended,
    /// More than what is left was asked for (a refund above the capture).
    Exceeded,
}

impl ConflictReason {
    /// The stable wire code: `too_many_activations` has its own, every other
    /// reason is a plain `conflict`.
    pub fn code(self) -> &'static str {
        match self {
            Self::TooManyActivations => "too_many_activations",
            Self::Duplicate | Self::AlreadyLicensed | Self::Contended | Self::Exceeded => "conflict",
        }
    }
}

/// Every error the core returns.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No such entity.
    #[error("{entity} not found")]
    NotFound {
        /// What was looked for (`"product"`, `"order"`).
        entity: &'static str,
    },
    /// A uniqueness or state conflict, with its reason.
    #[error("{}: {message}", reason.code())]
    Conflict {
        /// Why.
        reason: ConflictReason,
        /// What conflicted, for a human.
        message: String,
    },
    /// An optimistic-concurrency check failed.
    #[error("version mismatch: expected {expected}, current is {current}")]
    VersionMismatch {
        /// The version the caller based its change on.
        expected: u64,
        /// The version stored now.
        current: u64,
    },
    /// The state machine does not allow this action from this state.
    #[error("cannot {action} a {entity} that is {from}")]
    InvalidTransition {
        /// The kind of entity (`"product"`).
        entity: &'static str,
        /// The current state, snake_case.
        from: String,
        /// The attempted action, snake_case.
        action: String,
    },
    /// An idempotency key was reused with a different request.
    #[error("idempotency key was already used with a different request")]
    IdempotencyMismatch,
    /// A request with this idempotency key is still being processed.
    #[error("a request with this idempotency key is still in progress")]
    InFlight,
    /// The input is larger than accepted (an upload above the size limit).
    #[error("too large: {size} bytes exceeds the maximum of {limit} bytes")]
    TooLarge {
        /// The size received.
        size: u64,
        /// The largest size accepted.
        limit: u64,
    },
    /// The input failed validation; each field says why.
    #[error("validation failed: {}", fields_summary(.0))]
    Validation(Vec<FieldError>),
    /// The actor may not do this.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// Access to a licensed resource was denied for a specific reason.
    #[error("access denied: {0}")]
    Denied(Denial),
    /// The caller is not authenticated (missing, bad or expired credentials).
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    /// Too many requests.
    #[error("rate limited; retry after {} ms", retry_after.as_millis())]
    RateLimited {
        /// How long until a retry can succeed.
        retry_after: Duration,
    },
    /// A party (e.g. a payment provider) reported something that contradicts
    /// our records; nothing was changed.
    #[error("integrity check failed: {0}")]
    Integrity(String),
    /// A dependency is unavailable.
    #[error("{what} unavailable")]
    Unavailable {
        /// Which dependency.
        what: &'static str,
        /// The underlying cause; logged, never sent to clients.
        #[source]
        source: BoxError,
    },
    /// A bug or broken invariant.
    #[error("internal error: {context}")]
    Internal {
        /// Where it happened, for logs.
        context: &'static str,
        /// The underlying cause; logged, never sent to clients.
        #[source]
        source: BoxError,
    },
}

fn fields_summary(fields: &[FieldError]) -> String {
    fields.iter().map(|f| format!("{}: {}", f.field, f.message)).collect::<Vec<_>>().join("; ")
}

impl Error {
    /// The error and its causes, `: `-separated: what a transport logs for
    /// a failure it answers only with a generic message.
    pub fn report(&self) -> String {
        let mut out = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            out.push_str(": ");
            out.push_str(&cause.to_string());
            source = cause.source();
        }
        out
    }

    /// A not-found error for `entity`.
    pub fn not_found(entity: &'static str) -> Self {
        Self::NotFound { entity }
    }

    /// A conflict for `reason`.
    pub fn conflict(reason: ConflictReason, message: impl Into<String>) -> Self {
        Self::Conflict { reason, message: message.into() }
    }

    /// A validation error on a single field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    /// An invalid-transition error.
    pub fn transition(entity: &'static str, from: impl fmt::Display, action: impl fmt::Display) -> Self {
        Self::InvalidTransition { entity, from: from.to_string(), action: action.to_string() }
    }

    /// Wraps an adapter failure as [`Error::Unavailable`].
    pub fn unavailable(what: &'static str, source: impl Into<BoxError>) -> Self {
        Self::Unavailable { what, source: source.into() }
    }

    /// Wraps a broken invariant as [`Error::Internal`].
    pub fn internal(context: &'static str, source: impl Into<BoxError>) -> Self {
        Self::Internal { context, source: source.into() }
    }

    /// The coarse class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::NotFound { .. } => ErrorKind::NotFound,
            Self::Conflict { .. }
            | Self::VersionMismatch { .. }
            | Self::InvalidTransition { .. }
            | Self::IdempotencyMismatch
            | Self::InFlight => ErrorKind::Conflict,
            Self::Validation(_) | Self::TooLarge { .. } => ErrorKind::Invalid,
            Self::Forbidden(_) | Self::Denied(_) => ErrorKind::Forbidden,
            Self::Unauthenticated(_) => ErrorKind::Unauthenticated,
            Self::RateLimited { .. } => ErrorKind::RateLimited,
            Self::Unavailable { .. } => ErrorKind::Unavailable,
            Self::Integrity(_) | Self::Internal { .. } => ErrorKind::Internal,
        }
    }

    /// The stable snake_case wire code (`version_mismatch`, `license_revoked`).
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => "not_found",
            Self::Conflict { reason, .. } => reason.code(),
            Self::InFlight => "conflict",
            Self::VersionMismatch { .. } => "version_mismatch",
            Self::InvalidTransition { .. } => "invalid_transition",
            Self::IdempotencyMismatch => "idempotency_mismatch",
            Self::Validation(_) => "validation",
            Self::TooLarge { .. } => "payload_too_large",
            Self::Forbidden(_) => "forbidden",
            Self::Denied(d) => d.code(),
            Self::Unauthenticated(_) => "unauthenticated",
            Self::RateLimited { .. } => "rate_limited",
            Self::Integrity(_) => "integrity",
            Self::Unavailable { .. } => "unavailable",
            Self::Internal { .. } => "internal",
        }
    }
}

impl From<Denial> for Error {
    fn from(d: Denial) -> Self {
        Self::Denied(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_names_every_cause() {
        let io = std::io::Error::other("connection refused");
        let e = Error::unavailable("event bus at AMQP_URL", Error::unavailable("rabbitmq", io));
        assert_eq!(e.report(), "event bus at AMQP_URL unavailable: rabbitmq unavailable: connection refused");
        assert_eq!(Error::InFlight.report(), Error::InFlight.to_string());
    }

    #[test]
    fn codes_and_kinds_agree_with_the_http_contract() {
        let e = Error::VersionMismatch { expected: 1, current: 2 };
        assert_eq!((e.kind(), e.code()), (ErrorKind::Conflict, "version_mismatch"));
        let e = Error::from(Denial::DownloadLimitReached);
        assert_eq!((e.kind(), e.code()), (ErrorKind::Forbidden, "download_limit_reached"));
        let e = Error::InFlight;
        assert_eq!((e.kind(), e.code()), (ErrorKind::Conflict, "conflict"));
        let e = Error::conflict(ConflictReason::TooManyActivations, "every slot is taken");
        assert_eq!((e.kind(), e.code()), (ErrorKind::Conflict, "too_many_activations"));
        assert_eq!(e.to_string(), "too_many_activations: every slot is taken");
        let e = Error::TooLarge { size: 11, limit: 10 };
        assert_eq!((e.kind(), e.code()), (ErrorKind::Invalid, "payload_too_large"));
    }

    #[test]
    fn validation_message_names_every_field() {
        let e = Error::Validation(vec![FieldError::new("title", "required"), FieldError::new("price", "negative")]);
        assert_eq!(e.to_string(), "validation failed: title: required; price: negative");
    }

    #[test]
    fn internal_hides_nothing_from_logs_but_message_is_generic() {
        let e = Error::internal("saving order", std::io::Error::other("disk on fire"));
        assert_eq!(e.to_string(), "internal error: saving order");
        assert!(std::error::Error::source(&e).is_some());
    }
}
