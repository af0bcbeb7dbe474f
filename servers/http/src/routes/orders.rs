//! Routes: orders — place (idempotently), list and read the caller's own,
//! cancel before paying, and admin refunds.
//!
//! # Decisions
//! - Someone else's order is `403 forbidden` (the core's authorization
//!   answer, as on every transport), an unknown one `404 not_found`.
//! - `Idempotency-Key` is scoped to the caller. A replay of the same key and
//!   body answers `201` with the order as it was when first placed; its
//!   `payment` member is read fresh, so it shows the payment's current state.
//!   The same key with another body is `409 idempotency_mismatch`, a key whose
//!   first request is still running `409 conflict`.
//! - Orders carry a `payment` summary (`null` only in the rare case where the
//!   provider could not create the intent at placement; paying creates it).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use bazaar_core::catalog::PageRequest;
use bazaar_core::orders::{Order, OrderLine, OrderStatus, PlaceOrder};
use bazaar_core::payments::PaymentIntent;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Auth};
use crate::routes::catalog::MoneyDto;
use crate::routes::payments::PaymentSummary;
use crate::state::AppState;

/// The request header carrying an idempotency key.
pub(crate) const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The orders routes.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(place_order, list_orders))
        .routes(routes!(get_order))
        .routes(routes!(cancel_order))
        .routes(routes!(refund_order))
}

/// `?page&limit` of a listing (page from 1, limit 1 to 100, default 20).
#[derive(Debug, Clone, Copy, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PageParams {
    /// Page number, from 1.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 4_294_967_295_i64)]
    pub(crate) page: Option<u32>,
    /// Page size, 1 to 100 (larger values are capped).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 4_294_967_295_i64)]
    pub(crate) limit: Option<u32>,
}

impl PageParams {
    /// The validated page request (422 naming `page` or `limit`).
    pub(crate) fn request(self) -> Result<PageRequest, ApiError> {
        Ok(PageRequest::from_params(self.page, self.limit)?)
    }
}

/// `POST /v1/orders` body.
/// 1 to 20 order lines, each of a different product.
fn order_items_schema() -> utoipa::openapi::schema::ArrayBuilder {
    crate::schema::array_of::<PlaceOrderItemBody>(Some(1), 20, true, false)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PlaceOrderBody {
    /// 1 to 20 distinct products.
    #[schema(schema_with = order_items_schema)]
    items: Vec<PlaceOrderItemBody>,
}

/// One product to buy.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PlaceOrderItemBody {
    /// An approved product.
    product_id: Uuid,
}

impl From<PlaceOrderBody> for PlaceOrder {
    fn from(body: PlaceOrderBody) -> Self {
        PlaceOrder::new(body.items.into_iter().map(|i| i.product_id.into()))
    }
}

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum OrderStatusDto {
    /// Waiting for a successful payment.
    PendingPayment,
    /// Paid; licenses are being issued.
    Paid,
    /// Every line has its license.
    Fulfilled,
    /// Refunded; its licenses are revoked.
    Refunded,
    /// Canceled before payment.
    Canceled,
}

impl From<OrderStatus> for OrderStatusDto {
    fn from(s: OrderStatus) -> Self {
        match s {
            OrderStatus::PendingPayment => Self::PendingPayment,
            OrderStatus::Paid => Self::Paid,
            OrderStatus::Fulfilled => Self::Fulfilled,
            OrderStatus::Refunded => Self::Refunded,
            OrderStatus::Canceled => Self::Canceled,
        }
    }
}

/// One purchased product, priced when bought.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OrderLineResponse {
    /// The product.
    product_id: Uuid,
    /// Its vendor.
    vendor_id: Uuid,
    /// Its title when bought.
    title: String,
    /// What the buyer pays for it.
    unit_price: MoneyDto,
    /// The platform's commission (`platform_fee + vendor_net == unit_price`).
    platform_fee: MoneyDto,
    /// What the vendor receives.
    vendor_net: MoneyDto,
}

impl From<OrderLine> for OrderLineResponse {
    fn from(l: OrderLine) -> Self {
        Self {
            product_id: l.product_id.into(),
            vendor_id: l.vendor_id.into(),
            title: l.title,
            unit_price: l.unit_price.into(),
            platform_fee: l.platform_fee.into(),
            vendor_net: l.vendor_net.into(),
        }
    }
}

/// An order.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OrderResponse {
    /// Id.
    id: Uuid,
    /// Who placed it.
    buyer_id: Uuid,
    /// Where it is in its life.
    status: OrderStatusDto,
    /// Sum of the lines' unit prices.
    total: MoneyDto,
    /// What was bought, in request order.
    lines: Vec<OrderLineResponse>,
    /// Its payment intent (current state).
    payment: Option<PaymentSummary>,
    /// When it was placed.
    created_at: DateTime<Utc>,
    /// When its status last changed.
    updated_at: DateTime<Utc>,
}

/// A page of the caller's orders, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OrderList {
    /// The orders on this page.
    items: Vec<OrderResponse>,
    /// How many orders in all pages.
    total: u64,
    /// Page number, from 1.
    page: u32,
    /// Page size used.
    limit: u32,
}

/// The wire form of `order`, with its payment's current state.
async fn respond(state: &AppState, order: Order) -> Result<OrderResponse, ApiError> {
    let payment = state.market.payments.find_for_order(order.id).await?;
    Ok(wire(order, payment.as_ref()))
}

/// The wire form of `order` with `payment`, its intent as the caller has it.
fn wire(order: Order, payment: Option<&PaymentIntent>) -> OrderResponse {
    let payment = payment.map(|intent| PaymentSummary { id: intent.id.into(), status: intent.status.into() });
    OrderResponse {
        id: order.id.into(),
        buyer_id: order.buyer_id.into(),
        status: order.status.into(),
        total: order.total.into(),
        lines: order.lines.into_iter().map(Into::into).collect(),
        payment,
        created_at: order.created_at,
        updated_at: order.updated_at,
    }
}

/// The `Idempotency-Key` header, if sent (422 when it is not visible ASCII;
/// the core checks length and characters).
fn idempotency_key(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    headers
        .get(IDEMPOTENCY_KEY)
        .map(|v| v.to_str().map_err(|_| ApiError::invalid("idempotency_key", "must be visible ASCII")))
        .transpose()
}

/// Place an order for one or more approved products.
///
/// A paid order starts `pending_payment` with a payment intent; pay it with
/// `POST /v1/orders/{id}/pay`. A free order is `paid` at once and fulfilled by
/// the worker.
#[utoipa::path(
    post,
    path = "/v1/orders",
    tag = "orders",
    security(("bearer" = [])),
    params(
        ("Idempotency-Key" = Option<String>, Header,
            description = "1 to 255 visible ASCII characters; the same key and body again return the first order",
            pattern = r"^[!-~]{1,255}$"),
    ),
    request_body = PlaceOrderBody,
    responses(
        (status = 201, description = "The order (also for a replayed key)", body = OrderResponse),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "No or invalid bearer token", body = ErrorBody),
        (status = 409, description = "`idempotency_mismatch` (same key, another body), `conflict` (key held by a request still running or, if it died, until its lease ends; or a product already licensed)", body = ErrorBody),
        (status = 422, description = "`validation`: `items`, `items[i].product_id` (unknown, not approved, your own, repeated), `idempotency_key`", body = ErrorBody),
    )
)]
async fn place_order(
    State(state): State<AppState>,
    Auth(actor): Auth,
    headers: HeaderMap,
    ApiJson(body): ApiJson<PlaceOrderBody>,
) -> Result<(StatusCode, Json<OrderResponse>), ApiError> {
    let key = idempotency_key(&headers)?;
    // Placing returns the intent it created: no second look-up.
    let placed = state.market.orders.place_with_payment(&actor, body.into(), key).await?;
    Ok((StatusCode::CREATED, Json(wire(placed.order, placed.payment.as_ref()))))
}

/// The caller's orders, newest first.
#[utoipa::path(
    get,
    path = "/v1/orders",
    tag = "orders",
    security(("bearer" = [])),
    params(PageParams),
    responses(
        (status = 200, description = "A page of orders", body = OrderList),
        (status = 401, description = "No or invalid bearer token", body = ErrorBody),
        (status = 422, description = "`validation` on `page` or `limit`", body = ErrorBody),
    )
)]
async fn list_orders(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiQuery(params): ApiQuery<PageParams>,
) -> Result<Json<OrderList>, ApiError> {
    let page = state.market.orders.list_mine(&actor, params.request()?).await?;
    let mut items = Vec::with_capacity(page.items.len());
    for order in page.items {
        items.push(respond(&state, order).await?);
    }
    Ok(Json(OrderList { items, total: page.total, page: page.page, limit: page.limit }))
}

/// One order (its buyer or an admin).
#[utoipa::path(
    get,
    path = "/v1/orders/{id}",
    tag = "orders",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Order id")),
    responses(
        (status = 200, description = "The order", body = OrderResponse),
        (status = 401, description = "No or invalid bearer token", body = ErrorBody),
        (status = 403, description = "Someone else's order", body = ErrorBody),
        (status = 404, description = "No such order", body = ErrorBody),
    )
)]
async fn get_order(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<OrderResponse>, ApiError> {
    let order = state.market.orders.get(&actor, id.into()).await?;
    Ok(Json(respond(&state, order).await?))
}

/// The buyer cancels an order still pending payment (its payment intent is
/// canceled too, so it can no longer be paid).
#[utoipa::path(
    post,
    path = "/v1/orders/{id}/cancel",
    tag = "orders",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Order id")),
    responses(
        (status = 200, description = "The canceled order", body = OrderResponse),
        (status = 401, description = "No or invalid bearer token", body = ErrorBody),
        (status = 403, description = "Not the buyer", body = ErrorBody),
        (status = 404, description = "No such order", body = ErrorBody),
        (status = 409, description = "`invalid_transition`: the order is not pending payment", body = ErrorBody),
    )
)]
async fn cancel_order(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<OrderResponse>, ApiError> {
    let order = state.market.orders.cancel(&actor, id.into()).await?;
    Ok(Json(respond(&state, order).await?))
}

/// An admin refunds a paid or fulfilled order in full. The worker then
/// revokes its licenses (and with them their download URLs).
#[utoipa::path(
    post,
    path = "/v1/orders/{id}/refund",
    tag = "orders",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Order id")),
    responses(
        (status = 200, description = "The refunded order", body = OrderResponse),
        (status = 401, description = "No or invalid bearer token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such order", body = ErrorBody),
        (status = 409, description = "`invalid_transition`: the order is not paid or fulfilled", body = ErrorBody),
    )
)]
async fn refund_order(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<OrderResponse>, ApiError> {
    let order = state.market.orders.refund(&actor, id.into()).await?;
    Ok(Json(respond(&state, order).await?))
}
