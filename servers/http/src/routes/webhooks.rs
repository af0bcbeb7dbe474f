//! Routes: vendor webhooks — a vendor's endpoints for its sales events, their
//! signing secrets, deliveries and replays.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use bazaar_core::webhooks::{DeliveryStatus, EndpointChange, NewEndpoint, WebhookDelivery, WebhookEndpoint};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Auth};
use crate::schema::{WebhookUrl, nullable_vendor_events_schema, vendor_events_schema};
use crate::state::AppState;

/// The vendor webhook routes.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register_endpoint, list_endpoints))
        .routes(routes!(get_endpoint, update_endpoint, delete_endpoint))
        .routes(routes!(rotate_secret))
        .routes(routes!(list_deliveries))
        .routes(routes!(replay))
}

/// `POST /v1/webhook-endpoints` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EndpointBody {
    /// An `https://` URL on a public host, at most 2,048 characters.
    #[schema(value_type = WebhookUrl)]
    url: String,
    /// One or more of `order.paid`, `license.issued`, `order.refunded`.
    #[schema(schema_with = vendor_events_schema)]
    events: Vec<String>,
}

/// `PATCH /v1/webhook-endpoints/{id}` body; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EndpointPatch {
    /// A new URL.
    #[schema(value_type = Option<WebhookUrl>)]
    url: Option<String>,
    /// A new set of events.
    #[schema(schema_with = nullable_vendor_events_schema)]
    events: Option<Vec<String>>,
}

/// One endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EndpointResponse {
    /// Id.
    id: Uuid,
    /// Where deliveries are POSTed.
    url: String,
    /// What it receives.
    #[schema(example = json!(["order.paid", "license.issued"]))]
    events: Vec<String>,
    /// The current signing secret: only in the answers that create it
    /// (registration and rotation). Keep it; it is not shown again.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
    /// When the previous secret stops signing, while one is being rotated out.
    previous_secret_expires_at: Option<DateTime<Utc>>,
    /// When it was registered.
    created_at: DateTime<Utc>,
    /// When it last changed.
    updated_at: DateTime<Utc>,
}

impl EndpointResponse {
    fn new(e: WebhookEndpoint, with_secret: bool) -> Self {
        Self {
            id: e.id.into(),
            events: e.events.iter().map(|v| v.as_str().to_string()).collect(),
            secret: with_secret.then(|| e.secrets.first().map(|s| s.value.clone())).flatten(),
            previous_secret_expires_at: e.secrets.iter().filter_map(|s| s.expires_at).max(),
            created_at: e.created_at,
            updated_at: e.updated_at,
            url: e.url,
        }
    }
}

/// The caller's endpoints, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EndpointList {
    /// The endpoints.
    items: Vec<EndpointResponse>,
}

/// Where a delivery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum DeliveryStatusDto {
    /// Waiting for its next attempt.
    Pending,
    /// Accepted by the endpoint (2xx).
    Delivered,
    /// Every attempt failed; replay it.
    Dead,
}

impl From<DeliveryStatus> for DeliveryStatusDto {
    fn from(s: DeliveryStatus) -> Self {
        match s {
            DeliveryStatus::Pending => Self::Pending,
            DeliveryStatus::Delivered => Self::Delivered,
            DeliveryStatus::Dead => Self::Dead,
        }
    }
}

impl From<DeliveryStatusDto> for DeliveryStatus {
    fn from(s: DeliveryStatusDto) -> Self {
        match s {
            DeliveryStatusDto::Pending => Self::Pending,
            DeliveryStatusDto::Delivered => Self::Delivered,
            DeliveryStatusDto::Dead => Self::Dead,
        }
    }
}

/// One delivery.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DeliveryResponse {
    /// Id: the `id` of the body and the `bazaar-event-id` header.
    id: Uuid,
    /// `order.paid`, `license.issued` or `order.refunded`.
    event_type: String,
    /// Where it is.
    status: DeliveryStatusDto,
    /// Attempts made.
    attempts: u32,
    /// When it is next attempted (pending).
    next_attempt_at: DateTime<Utc>,
    /// Why the last attempt failed.
    last_error: Option<String>,
    /// The JSON body sent.
    body: String,
    /// When it was queued.
    created_at: DateTime<Utc>,
    /// When the endpoint accepted it.
    delivered_at: Option<DateTime<Utc>>,
}

impl From<WebhookDelivery> for DeliveryResponse {
    fn from(d: WebhookDelivery) -> Self {
        Self {
            id: d.id.into(),
            event_type: d.event_type.as_str().to_string(),
            status: d.status.into(),
            attempts: d.attempts,
            next_attempt_at: d.next_attempt_at,
            last_error: d.last_error,
            body: d.body,
            created_at: d.created_at,
            delivered_at: d.delivered_at,
        }
    }
}

/// A page of an endpoint's deliveries, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DeliveryList {
    /// The deliveries on this page.
    items: Vec<DeliveryResponse>,
    /// How many in all pages.
    total: u64,
    /// Page number, from 1.
    page: u32,
    /// Page size used.
    limit: u32,
}

/// `?status&page&limit` of the delivery listing.
#[derive(Debug, Clone, Copy, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct DeliveryParams {
    /// Only deliveries with this status.
    status: Option<DeliveryStatusDto>,
    /// Page number, from 1.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 4_294_967_295_i64)]
    page: Option<u32>,
    /// Page size, 1 to 100 (larger values are capped).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 4_294_967_295_i64)]
    limit: Option<u32>,
}

/// `POST /v1/webhook-endpoints/{id}/replay` body.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReplayBody {
    /// Only this dead delivery; all of the endpoint's dead ones when absent.
    delivery_id: Option<Uuid>,
}

/// How many deliveries were queued again.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ReplayResponse {
    /// Deliveries put back in the queue.
    replayed: u64,
}

/// A vendor registers an endpoint for its sales events. The answer carries
/// the signing secret, once.
#[utoipa::path(
    post,
    path = "/v1/webhook-endpoints",
    tag = "webhooks",
    security(("bearer" = [])),
    request_body = EndpointBody,
    responses(
        (status = 201, description = "Registered, with its signing secret", body = EndpointResponse),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "No or invalid bearer token", body = ErrorBody),
        (status = 403, description = "Not a vendor", body = ErrorBody),
        (status = 409, description = "`conflict`: the vendor has the most endpoints allowed", body = ErrorBody),
        (status = 422, description = "`validation` on `url` (not https, a local address, credentials…) or `events`", body = ErrorBody),
    )
)]
async fn register_endpoint(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiJson(body): ApiJson<EndpointBody>,
) -> Result<(StatusCode, Json<EndpointResponse>), ApiError> {
    let endpoint = state.market.webhooks.register(&actor, NewEndpoint { url: body.url, events: body.events }).await?;
    Ok((StatusCode::CREATED, Json(EndpointResponse::new(endpoint, true))))
}

/// The caller's endpoints, oldest first (without secrets).
#[utoipa::path(
    get,
    path = "/v1/webhook-endpoints",
    tag = "webhooks",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The endpoints", body = EndpointList),
        (status = 401, description = "No or invalid bearer token", body = ErrorBody),
        (status = 403, description = "Not a vendor", body = ErrorBody),
    )
)]
async fn list_endpoints(State(state): State<AppState>, Auth(actor): Auth) -> Result<Json<EndpointList>, ApiError> {
    let endpoints = state.market.webhooks.list(&actor).await?;
    Ok(Json(EndpointList { items: endpoints.into_iter().map(|e| EndpointResponse::new(e, false)).collect() }))
}

/// One of the caller's endpoints (without its secret).
#[utoipa::path(
    get,
    path = "/v1/webhook-endpoints/{id}",
    tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Endpoint id")),
    responses(
        (status = 200, description = "The endpoint", body = EndpointResponse),
        (status = 401, description = "No or invalid bearer token", body = ErrorBody),
        (status = 403, description = "Not a vendor", body = ErrorBody),
        (status = 404, description = "No such endpoint of the caller's", body = ErrorBody),
    )
)]
async fn get_endpoint(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<EndpointResponse>, ApiError> {
    let endpoint = state.market.webhooks.get(&actor, id.into()).await?;
    Ok(Json(EndpointResponse::new(endpoint, false)))
}

/// Changes the URL or events of one of the caller's endpoints.
#[utoipa::path(
    patch,
    path = "/v1/webhook-endpoints/{id}",
    tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Endpoint id")),
    request_body = EndpointPatch,
    responses(
        (status = 200, description = "The endpoint afterwards", body = EndpointResponse),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "No or invalid bearer token", body = ErrorBody),
        (status = 403, description = "Not a vendor", body = ErrorBody),
        (status = 404, description = "No such endpoint of the caller's", body = ErrorBody),
        (status = 422, description = "`validation` on `url` or `events`", body = ErrorBody),
    )
)]
async fn update_endpoint(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<EndpointPatch>,
) -> Result<Json<EndpointResponse>, ApiError> {
    let change = EndpointChange { url: body.url, events: body.events };
    let endpoint = state.market.webhooks.update(&actor, id.into(), change).await?;
    Ok(Json(EndpointResponse::new(endpoint, false)))
}

/// Deletes one of the caller's endpoints and its queued deliveries.
#[utoipa::path(
    delete,
    path = "/v1/webhook-endpoints/{id}",
    tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Endpoint id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No or invalid bearer token", body = ErrorBody),
        (status = 403, description = "Not a vendor", body = ErrorBody),
        (status = 404, description = "No such endpoint of the caller's", body = ErrorBody),
    )
)]
async fn delete_endpoint(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    state.market.webhooks.delete(&actor, id.into()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Gives an endpoint a new signing secret. The previous one keeps signing
/// next to it for a grace period (24 h by default), so the receiver can
/// switch without missing a delivery.
#[utoipa::path(
    post,
    path = "/v1/webhook-endpoints/{id}/secret",
    tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Endpoint id")),
    responses(
        (status = 200, description = "The endpoint with its new secret", body = EndpointResponse),
        (status = 401, description = "No or invalid bearer token", body = ErrorBody),
        (status = 403, description = "Not a vendor", body = ErrorBody),
        (status = 404, description = "No such endpoint of the caller's", body = ErrorBody),
    )
)]
async fn rotate_secret(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<EndpointResponse>, ApiError> {
    let endpoint = state.market.webhooks.rotate_secret(&actor, id.into()).await?;
    Ok(Json(EndpointResponse::new(endpoint, true)))
}

/// An endpoint's deliveries, newest first.
#[utoipa::path(
    get,
    path = "/v1/webhook-endpoints/{id}/deliveries",
    tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Endpoint id"), DeliveryParams),
    responses(
        (status = 200, description = "A page of deliveries", body = DeliveryList),
        (status = 401, description = "No or invalid bearer token", body = ErrorBody),
        (status = 403, description = "Not a vendor", body = ErrorBody),
        (status = 404, description = "No such endpoint of the caller's", body = ErrorBody),
        (status = 422, description = "`validation` on `status`, `page` or `limit`", body = ErrorBody),
    )
)]
async fn list_deliveries(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(params): ApiQuery<DeliveryParams>,
) -> Result<Json<DeliveryList>, ApiError> {
    let request = bazaar_core::page::PageRequest::from_params(params.page, params.limit)?;
    let page = state.market.webhooks.deliveries(&actor, id.into(), params.status.map(Into::into), request).await?;
    Ok(Json(DeliveryList {
        items: page.items.into_iter().map(Into::into).collect(),
        total: page.total,
        page: page.page,
        limit: page.limit,
    }))
}

/// Queues an endpoint's dead deliveries again (or one of them).
#[utoipa::path(
    post,
    path = "/v1/webhook-endpoints/{id}/replay",
    tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Endpoint id")),
    request_body = ReplayBody,
    responses(
        (status = 200, description = "How many were queued again", body = ReplayResponse),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "No or invalid bearer token", body = ErrorBody),
        (status = 403, description = "Not a vendor", body = ErrorBody),
        (status = 404, description = "No such endpoint of the caller's", body = ErrorBody),
        (status = 422, description = "`validation` on `delivery_id`: no such delivery of this endpoint", body = ErrorBody),
        (status = 409, description = "`invalid_transition`: the named delivery is not dead", body = ErrorBody),
    )
)]
async fn replay(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<ReplayBody>,
) -> Result<Json<ReplayResponse>, ApiError> {
    let replayed = state.market.webhooks.replay(&actor, id.into(), body.delivery_id.map(Into::into)).await?;
    Ok(Json(ReplayResponse { replayed }))
}
