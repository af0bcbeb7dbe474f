//! Routes: ops — health (liveness, readiness over every backend probe),
//! Prometheus metrics, the OpenAPI document and its interactive viewer.
//!
//! The document is serialized once by [`crate::router`] and handed to these
//! handlers, with the viewer's settings, as an [`ApiDocs`] extension.
//!
//! The viewer is Swagger UI, compiled into the binary (`utoipa-swagger-ui`
//! with its `vendored` and `debug-embed` features), so `/docs` works offline:
//! the page, its script, its styles and its icons all come from this server, and it reads the document from `../openapi.json`, a
//! relative URL, so the page also works when the router is mounted under a prefix.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Redirect, Response};
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
        .routes(routes!(docs_index))
        .routes(routes!(docs_file))
}

/// The served OpenAPI document and the viewer's settings.
#[derive(Clone)]
pub(crate) struct ApiDocs {
    /// `/openapi.json`, serialized once.
    pub(crate) json: Bytes,
    /// Swagger UI's settings, written into its `swagger-initializer.js`.
    pub(crate) viewer: Arc<utoipa_swagger_ui::Config<'static>>,
}

impl ApiDocs {
    /// The document and a viewer that reads it from `../openapi.json`
    /// (relative to `/docs/`) and sends nothing to swagger.io's validator.
    pub(crate) fn new(json: Bytes) -> Self {
        let viewer = utoipa_swagger_ui::Config::new(["../openapi.json"]).validator_url("none");
        Self { json, viewer: Arc::new(viewer) }
    }
}

impl std::fmt::Debug for ApiDocs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiDocs").field("json_bytes", &self.json.len()).finish_non_exhaustive()
    }
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

/// Readiness: every backend probe's outcome (run at most once per
/// [`readiness_ttl`](crate::HttpSettings::readiness_ttl)); 503 names the
/// ones that failed.
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
        .readiness
        .get(&state.market, state.settings.readiness_ttl)
        .await
        .iter()
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

/// The interactive API reference: redirects to `docs/`, so the page's
/// relative links resolve under it.
#[utoipa::path(
    get,
    path = "/docs",
    tag = "ops",
    responses(
        (status = 308, description = "Redirect to `/docs/`"),
        (status = 408, description = "The request timed out", body = ErrorBody),
    )
)]
async fn docs() -> Redirect {
    // Relative, so it stays right when the router is nested under a prefix.
    Redirect::permanent("docs/")
}

/// The interactive API reference (Swagger UI, served from the binary).
#[utoipa::path(
    get,
    path = "/docs/",
    tag = "ops",
    responses(
        (status = 200, description = "An HTML page", body = String, content_type = "text/html"),
        (status = 408, description = "The request timed out", body = ErrorBody),
    )
)]
async fn docs_index(Extension(docs): Extension<ApiDocs>) -> Result<Response, ApiError> {
    viewer_file(&docs, "index.html")
}

/// A script, style sheet or icon of the API reference page.
#[utoipa::path(
    get,
    path = "/docs/{file}",
    tag = "ops",
    params(("file" = String, Path, description = "A file of the page, e.g. `swagger-ui-bundle.js`")),
    responses(
        (status = 200, description = "The file", body = String),
        (status = 404, description = "No such file", body = ErrorBody),
        (status = 408, description = "The request timed out", body = ErrorBody),
    )
)]
async fn docs_file(Extension(docs): Extension<ApiDocs>, Path(file): Path<String>) -> Result<Response, ApiError> {
    viewer_file(&docs, &file)
}

/// One embedded file of the viewer, with its content type.
fn viewer_file(docs: &ApiDocs, file: &str) -> Result<Response, ApiError> {
    match utoipa_swagger_ui::serve(file, docs.viewer.clone()) {
        Ok(Some(found)) => {
            // Embedded files are borrowed from the binary: served without a copy.
            let body = match found.bytes {
                Cow::Borrowed(bytes) => Bytes::from_static(bytes),
                Cow::Owned(bytes) => Bytes::from(bytes),
            };
            Ok(([(CONTENT_TYPE, found.content_type), (CACHE_CONTROL, "no-cache".to_owned())], body).into_response())
        }
        Ok(None) => Err(ApiError::not_found("file")),
        // Only the initializer is rendered, from settings fixed at start-up:
        // a failure is a bug, logged with its cause by the core error mapping.
        Err(cause) => Err(bazaar_core::Error::internal("rendering the API reference page", cause.to_string()).into()),
    }
}
