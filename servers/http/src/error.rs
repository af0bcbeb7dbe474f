//! The one error shape of the API and the one mapping from core errors.
//!
//! Every failure leaves a handler as an [`ApiError`]; [`render_errors`]
//! (outermost middleware) writes it as
//! `{"error":{"code","message","details"?},"request_id"}` with the request's
//! id, and gives the same shape to responses produced outside handlers
//! (unknown route, wrong method, timeout, body limit). A 5xx logs its cause
//! chain and returns a generic message: internals never reach the client.

use std::fmt;
use std::time::Duration;

use axum::extract::Request;
use axum::http::header::{CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bazaar_core::{ConflictReason, Error};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::{Ref, RefOr};

/// The `x-request-id` header.
pub const REQUEST_ID: &str = "x-request-id";

/// An error on its way to the client.
#[derive(Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code (`not_found`, `version_mismatch`, …).
    pub code: &'static str,
    /// Human-readable message (generic for 5xx).
    pub message: String,
    /// Structured details (field errors, versions), when any.
    pub details: Option<Value>,
    /// Seconds to wait, for 429 and 503.
    pub retry_after: Option<Duration>,
}

impl fmt::Debug for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiError").field("status", &self.status).field("code", &self.code).finish_non_exhaustive()
    }
}

/// The error body, as documented in the OpenAPI document.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
    /// The request's `x-request-id`.
    pub request_id: String,
}

/// The `error` member of [`ErrorBody`].
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable code: `malformed`, `unauthenticated`, `forbidden`, `not_found`, `conflict`,
    /// `invalid_transition`, `idempotency_mismatch`, `version_mismatch`, `payload_too_large`,
    /// `validation`, `rate_limited`, `unavailable`, `internal`, or a denial such as `license_revoked`.
    pub code: String,
    /// Human-readable message.
    pub message: String,
    /// Field errors (`[{field, message}]`) for `validation` and `payload_too_large`;
    /// an object for others (`{expected, current}` of `version_mismatch`, `{limit}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = ErrorDetails, required = false)]
    pub details: Option<Value>,
}

/// The schema of [`ErrorDetail::details`], which is built from a [`Value`]:
/// every failing field, or structured data of the error.
pub(crate) struct ErrorDetails;

impl utoipa::PartialSchema for ErrorDetails {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(ArrayBuilder::new().items(Ref::from_schema_name("FieldErrorBody")))
            .item(ObjectBuilder::new().schema_type(Type::Object))
            .into()
    }
}

impl ToSchema for ErrorDetails {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push(("FieldErrorBody".to_owned(), <FieldErrorBody as utoipa::PartialSchema>::schema()));
    }
}

/// One failing field.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub(crate) struct FieldErrorBody {
    /// The field as the caller sent it (`title`, `items[0].product_id`, `page`).
    field: String,
    /// What is wrong with it.
    message: String,
}

impl ApiError {
    /// An error with a status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), details: None, retry_after: None }
    }

    /// Adds structured details.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// 400: the request could not be read.
    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "malformed", message)
    }

    /// 401.
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
    }

    /// 404.
    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("{what} not found"))
    }

    /// 413.
    pub fn too_large(limit: usize) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", format!("the body exceeds {limit} bytes"))
            .with_details(json!({ "limit": limit }))
    }

    /// 422 on one field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::invalid(field, message).into()
    }

    /// 428: `If-Match` is required.
    pub fn precondition_required(header: &str) -> Self {
        Self::new(StatusCode::PRECONDITION_REQUIRED, "precondition_required", format!("{header} is required"))
    }

    /// The code for an error response made outside a handler.
    fn for_status(status: StatusCode) -> Self {
        match status {
            StatusCode::NOT_FOUND => Self::not_found("route"),
            StatusCode::METHOD_NOT_ALLOWED => {
                Self::new(status, "method_not_allowed", "this method is not allowed on this route")
            }
            StatusCode::REQUEST_TIMEOUT => Self::new(status, "timeout", "the request took too long"),
            StatusCode::PAYLOAD_TOO_LARGE => Self::new(status, "payload_too_large", "the body is too large"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                Self::new(status, "unsupported_media_type", "this content type is not accepted")
            }
            s if s.is_server_error() => Self::new(s, "internal", "internal error"),
            s => Self::new(s, "malformed", s.canonical_reason().unwrap_or("bad request")),
        }
    }
}

impl From<Error> for ApiError {
    /// The one mapping from core errors: exhaustive, so a new variant is a
    /// compile error here rather than a silent 500.
    fn from(e: Error) -> Self {
        use StatusCode as S;
        let message = e.to_string();
        match &e {
            Error::NotFound { .. } => Self::new(S::NOT_FOUND, e.code(), message),
            Error::Conflict { reason: ConflictReason::TooManyActivations, message } => {
                Self::new(S::CONFLICT, e.code(), message.clone())
            }
            Error::Conflict {
                reason:
                    ConflictReason::Duplicate
                    | ConflictReason::AlreadyLicensed
                    | ConflictReason::Contended
                    | ConflictReason::Exceeded,
                ..
            }
            | Error::InFlight
            | Error::IdempotencyMismatch
            | Error::InvalidTransition { .. } => Self::new(S::CONFLICT, e.code(), message),
            Error::VersionMismatch { expected, current } => Self::new(S::CONFLICT, e.code(), message)
                .with_details(json!({ "expected": expected, "current": current })),
            Error::TooLarge { size, limit } => Self::new(S::PAYLOAD_TOO_LARGE, e.code(), message).with_details(
                json!([{ "field": "size", "message": format!("{size} bytes exceeds the maximum of {limit} bytes") }]),
            ),
            Error::Validation(fields) => Self::new(S::UNPROCESSABLE_ENTITY, e.code(), message)
                .with_details(serde_json::to_value(fields).expect("field errors serialize")),
            Error::Forbidden(_) | Error::Denied(_) => Self::new(S::FORBIDDEN, e.code(), message),
            // The reason alone ("access token expired"), as when the server refuses a token itself.
            Error::Unauthenticated(reason) => Self::new(S::UNAUTHORIZED, e.code(), reason.clone()),
            Error::RateLimited { retry_after } => {
                let mut err = Self::new(S::TOO_MANY_REQUESTS, e.code(), "too many requests");
                err.retry_after = Some(*retry_after);
                err
            }
            Error::Unavailable { .. } => {
                tracing::error!(error = %e.report(), "backend unavailable");
                let mut err = Self::new(S::SERVICE_UNAVAILABLE, e.code(), "service temporarily unavailable");
                err.retry_after = Some(Duration::from_secs(1));
                err
            }
            Error::Integrity(_) | Error::Internal { .. } => {
                tracing::error!(error = %e.report(), "internal error");
                Self::new(S::INTERNAL_SERVER_ERROR, "internal", "internal error")
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // The body is written by `render_errors`, which knows the request id.
        let mut response = self.status.into_response();
        if let Some(wait) = self.retry_after {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response.extensions_mut().insert(self);
        response
    }
}

/// Middleware: renders [`ApiError`]s (and bodiless error responses from
/// layers and the router) as the JSON error shape with the request id.
pub async fn render_errors(request: Request, next: Next) -> Response {
    let request_id = request.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let mut response = next.run(request).await;
    let error = match response.extensions_mut().remove::<ApiError>() {
        Some(error) => error,
        None if response.status().is_client_error() || response.status().is_server_error() => {
            if response.headers().contains_key(CONTENT_TYPE) {
                return response;
            }
            ApiError::for_status(response.status())
        }
        None => return response,
    };
    let body = ErrorBody {
        error: ErrorDetail { code: error.code.to_owned(), message: error.message, details: error.details },
        request_id,
    };
    let (mut parts, _) = response.into_parts();
    parts.status = error.status;
    parts.headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    let bytes = serde_json::to_vec(&body).expect("error bodies serialize");
    Response::from_parts(parts, axum::body::Body::from(bytes))
}

#[cfg(test)]
mod tests {
    use bazaar_core::error::Denial;

    use super::*;

    #[test]
    fn core_errors_map_to_the_contract() {
        let cases: Vec<(Error, u16, &str)> = vec![
            (Error::not_found("product"), 404, "not_found"),
            (Error::conflict(ConflictReason::Duplicate, "taken"), 409, "conflict"),
            (Error::InFlight, 409, "conflict"),
            (Error::IdempotencyMismatch, 409, "idempotency_mismatch"),
            (Error::VersionMismatch { expected: 1, current: 2 }, 409, "version_mismatch"),
            (Error::transition("order", "paid", "cancel"), 409, "invalid_transition"),
            (Error::invalid("title", "is empty"), 422, "validation"),
            (Error::Forbidden("not yours".into()), 403, "forbidden"),
            (Error::Denied(Denial::LicenseRevoked), 403, "license_revoked"),
            (Error::Unauthenticated("no token".into()), 401, "unauthenticated"),
            (Error::RateLimited { retry_after: Duration::from_millis(1500) }, 429, "rate_limited"),
            (Error::unavailable("database", "connection refused"), 503, "unavailable"),
            (Error::internal("row decode", "column 3 was NULL"), 500, "internal"),
            (Error::Integrity("amount mismatch".into()), 500, "internal"),
        ];
        for (e, status, code) in cases {
            let api = ApiError::from(e);
            assert_eq!((api.status.as_u16(), api.code), (status, code));
        }
    }

    #[test]
    fn server_errors_do_not_leak_their_cause() {
        let api = ApiError::from(Error::internal("row decode", "secret table name"));
        assert!(!api.message.contains("secret"), "{}", api.message);
        let api = ApiError::from(Error::unavailable("database", "password=hunter2"));
        assert!(!api.message.contains("hunter2"), "{}", api.message);
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        let response = ApiError::from(Error::RateLimited { retry_after: Duration::from_millis(1500) }).into_response();
        assert_eq!(response.headers()[RETRY_AFTER], "2");
    }
}
