//! The worker's small ops server: `/health/live`, `/health/ready` (every
//! backend probe of the marketplace) and `/metrics` (Prometheus text).
//!
//! Probe failures are logged with their cause; the response only names the
//! failing check, since the cause can carry host names.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bazaar_core::marketplace::Marketplace;
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::{Map, Value, json};

/// How long one readiness probe may take before it counts as failing.
pub use bazaar_core::health::PROBE_TIMEOUT;

#[derive(Clone)]
struct OpsState {
    market: Arc<Marketplace>,
    metrics: PrometheusHandle,
}

/// The ops router over `market`, rendering `metrics` on `/metrics` (pass
/// [`crate::prometheus()`] in a worker-only process, or the handle of
/// whoever installed the process's recorder).
pub fn worker_router(market: Arc<Marketplace>, metrics: PrometheusHandle) -> Router {
    Router::new()
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .route("/metrics", get(render_metrics))
        .with_state(OpsState { market, metrics })
}

async fn live() -> Response {
    (StatusCode::OK, axum::Json(json!({ "status": "ok" }))).into_response()
}

async fn ready(State(state): State<OpsState>) -> Response {
    let results = state.market.readiness().await;
    let mut checks = Map::new();
    let mut all_ok = true;
    for readiness in results {
        let (name, outcome) = (readiness.name, readiness.outcome);
        let shown = match outcome {
            Ok(()) => "ok",
            Err(_) => {
                all_ok = false;
                "failing"
            }
        };
        checks.insert(name.to_owned(), Value::from(shown));
    }
    let (status, word) = if all_ok { (StatusCode::OK, "ok") } else { (StatusCode::SERVICE_UNAVAILABLE, "unavailable") };
    (status, axum::Json(json!({ "status": word, "checks": checks }))).into_response()
}

async fn render_metrics(State(state): State<OpsState>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render()).into_response()
}
