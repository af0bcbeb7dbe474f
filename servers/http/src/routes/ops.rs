//! Routes: ops — health (liveness, readiness over every backend probe),
//! Prometheus metrics, the OpenAPI document and its interactive viewer.
//!
//! The document and the viewer page are built once by [`crate::router`]
//! and handed to these handlers as an [`ApiDocs`] extension.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{Html, IntoResponse, Response};
use axum::{Extension, Json};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// The ops routes.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(live))
        .routes(routes!(ready))
        .routes(routes!(metrics))
        .routes(routes!(openapi_json))
        .routes(routes!(docs))
}

/// The served OpenAPI document and viewer page.
#[derive(Debug, Clone)]
pub(crate) struct ApiDocs {
    /// `/openapi.json`, serialized once.
    pub(crate) json: Bytes,
    /// `/docs`.
    pub(crate) html: Bytes,
}

/// A health answer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct HealthDto {
    /// `ok`.
    status: &'static str,
}

/// One readiness check.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CheckDto {
    /// The backend (`database`, `bus`, …).
    name: &'static str,
    /// `ok` or `failed` (the cause is logged, not returned).
    status: &'static str,
}

/// Readiness: every backend answered.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ReadyDto {
    /// `ok`.
    status: &'static str,
    /// Each probe.
    checks: Vec<CheckDto>,
}

const OK: HealthDto = HealthDto { status: "ok" };

/// The process is up (same as `/health/live`).
#[utoipa::path(
    get,
    path = "/health",
    tag = "ops",
    responses(
        (status = 200, description = "Up", body = HealthDto),
        (status = 408, description = "The request timed out", body = ErrorBody),
    )
)]
async fn health() -> Json<HealthDto> {
    Json(OK)
}

/// Liveness: the process answers (no backend is checked, so a database
/// outage does not get healthy replicas restarted).
#[utoipa::path(
    get,
    path = "/health/live",
    tag = "ops",
    responses(
        (status = 200, description = "Alive", body = HealthDto),
        (status = 408, description = "The request timed out", body = ErrorBody),
    )
)]
async fn live() -> Json<HealthDto> {
    Json(OK)
}

/// Readiness: runs every backend probe; 503 names the ones that failed.
#[utoipa::path(
    get,
    path = "/health/ready",
    tag = "ops",
    responses(
        (status = 200, description = "Every backend answered", body = ReadyDto),
        (status = 408, description = "The request timed out", body = ErrorBody),
        (status = 503, description = "Some backend did not answer; `details.checks` says which", body = ErrorBody),
    )
)]
async fn ready(State(state): State<AppState>) -> Result<Json<ReadyDto>, ApiError> {
    let checks: Vec<CheckDto> = state
        .market
        .readiness()
        .await
        .into_iter()
        .map(|r| CheckDto { name: r.name, status: if r.outcome.is_ok() { "ok" } else { "failed" } })
        .collect();
    let failed: Vec<&str> = checks.iter().filter(|c| c.status != "ok").map(|c| c.name).collect();
    if failed.is_empty() {
        return Ok(Json(ReadyDto { status: "ok", checks }));
    }
    let mut err = ApiError::new(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        format!("not ready: {} failed", failed.join(", ")),
    )
    .with_details(json!({ "checks": checks }));
    err.retry_after = Some(Duration::from_secs(1));
    Err(err)
}

/// Prometheus metrics (text exposition format).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "ops",
    responses(
        (status = 200, description = "Prometheus text format", body = String, content_type = "text/plain; version=0.0.4"),
        (status = 408, description = "The request timed out", body = ErrorBody),
    )
)]
async fn metrics(State(state): State<AppState>) -> Response {
    ([(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], state.metrics.render()).into_response()
}

/// This API's OpenAPI 3.1 document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "ops",
    responses(
        (status = 200, description = "The OpenAPI document", body = Object, content_type = "application/json"),
        (status = 408, description = "The request timed out", body = ErrorBody),
    )
)]
async fn openapi_json(Extension(docs): Extension<ApiDocs>) -> Response {
    ([(CONTENT_TYPE, "application/json")], docs.json).into_response()
}

/// The interactive API reference (Scalar; its script loads from a CDN).
#[utoipa::path(
    get,
    path = "/docs",
    tag = "ops",
    responses(
        (status = 200, description = "An HTML page", body = String, content_type = "text/html"),
        (status = 408, description = "The request timed out", body = ErrorBody),
    )
)]
async fn docs(Extension(docs): Extension<ApiDocs>) -> Html<Bytes> {
    Html(docs.html)
}
