//! Routes: payments — paying an order and the payment provider's webhooks.
//!
//! # Decisions
//! - `POST /v1/orders/{id}/pay` answers `200` with the payment intent when
//!   the provider captured the money (`succeeded`) or wants customer action
//!   (`requires_action`, 3-D Secure, finished by the provider's webhook).
//!   A **declined card** answers `402 card_declined` (Stripe's choice), with
//!   `details.decline_code` and `details.payment_intent` (back in
//!   `requires_payment_method`); the order stays `pending_payment` and can be
//!   paid again with another method.
//! - `POST /v1/webhooks/{provider}` needs no bearer token: the signature is
//!   the credential. It is read from the `Bazaar-Signature` header
//!   (`t=…,v1=…`, HMAC-SHA256 over `"{t}.{raw body}"`), or from
//!   `Stripe-Signature` for providers speaking Stripe's dialect. A missing or
//!   bad signature is `400 invalid_signature` (Stripe's convention: a
//!   rejected delivery, not a missing login), an unknown provider `404`.
//!   A replayed event (same provider event id) changes nothing and answers
//!   `200` with `duplicate: true`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use bazaar_core::Error;
use bazaar_core::payments::{AttemptOutcome, IntentStatus, PaymentAttempt, PaymentIntent, WebhookReceipt};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, Auth};
use crate::routes::catalog::MoneyDto;
use crate::state::AppState;

/// The signature header of Bazaar's providers (the sandbox).
pub(crate) const SIGNATURE_HEADER: &str = "bazaar-signature";
/// The same header as Stripe names it.
pub(crate) const STRIPE_SIGNATURE_HEADER: &str = "stripe-signature";

/// The payments routes.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(pay_order)).routes(routes!(receive_webhook))
}

/// Where a payment intent is (Stripe's statuses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum IntentStatusDto {
    /// Waiting for a payment method (also after a declined attempt).
    RequiresPaymentMethod,
    /// A method is attached; waiting for confirmation.
    RequiresConfirmation,
    /// The customer must act (3-D Secure).
    RequiresAction,
    /// The provider is working on it.
    Processing,
    /// Captured.
    Succeeded,
    /// Abandoned.
    Canceled,
}

impl From<IntentStatus> for IntentStatusDto {
    fn from(s: IntentStatus) -> Self {
        match s {
            IntentStatus::RequiresPaymentMethod => Self::RequiresPaymentMethod,
            IntentStatus::RequiresConfirmation => Self::RequiresConfirmation,
            IntentStatus::RequiresAction => Self::RequiresAction,
            IntentStatus::Processing => Self::Processing,
            IntentStatus::Succeeded => Self::Succeeded,
            IntentStatus::Canceled => Self::Canceled,
        }
    }
}

/// The payment of an order, as shown on the order.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct PaymentSummary {
    /// The payment intent's id.
    pub(crate) id: Uuid,
    /// Its status.
    pub(crate) status: IntentStatusDto,
}

/// How one confirmation attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum AttemptOutcomeDto {
    /// Captured.
    Succeeded,
    /// Declined (see `decline_code`).
    Failed,
    /// Waiting for customer action.
    RequiresAction,
    /// Still processing at the provider.
    Processing,
}

impl From<AttemptOutcome> for AttemptOutcomeDto {
    fn from(o: AttemptOutcome) -> Self {
        match o {
            AttemptOutcome::Succeeded => Self::Succeeded,
            AttemptOutcome::Failed => Self::Failed,
            AttemptOutcome::RequiresAction => Self::RequiresAction,
            AttemptOutcome::Processing => Self::Processing,
        }
    }
}

/// One confirmation attempt.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct AttemptResponse {
    /// The method tried (`pm_card_visa`).
    payment_method: String,
    /// How it ended.
    outcome: AttemptOutcomeDto,
    /// The provider's decline code, for failed attempts.
    decline_code: Option<String>,
    /// When.
    at: DateTime<Utc>,
}

impl From<PaymentAttempt> for AttemptResponse {
    fn from(a: PaymentAttempt) -> Self {
        Self { payment_method: a.payment_method, outcome: a.outcome.into(), decline_code: a.decline_code, at: a.at }
    }
}

/// A payment intent: the collection of one order's total.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct PaymentIntentResponse {
    /// Id.
    id: Uuid,
    /// The order it pays for.
    order_id: Uuid,
    /// What is to be captured.
    amount: MoneyDto,
    /// Where it is.
    status: IntentStatusDto,
    /// The provider (`sandbox`; `free` for zero-total orders).
    provider: String,
    /// The provider's id for it.
    provider_ref: Option<String>,
    /// Every confirmation attempt, oldest first.
    attempts: Vec<AttemptResponse>,
    /// How much was refunded so far.
    amount_refunded: MoneyDto,
    /// When it was created.
    created_at: DateTime<Utc>,
    /// When it last changed.
    updated_at: DateTime<Utc>,
}

impl From<PaymentIntent> for PaymentIntentResponse {
    fn from(i: PaymentIntent) -> Self {
        Self {
            id: i.id.into(),
            order_id: i.order_id.into(),
            amount: i.amount.into(),
            status: i.status.into(),
            provider: i.provider,
            provider_ref: i.provider_ref,
            attempts: i.attempts.into_iter().map(Into::into).collect(),
            amount_refunded: i.amount_refunded.into(),
            created_at: i.created_at,
            updated_at: i.updated_at,
        }
    }
}

/// `POST /v1/orders/{id}/pay` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PayBody {
    /// A payment method: in the sandbox `pm_card_visa` (succeeds),
    /// `pm_card_declined` (declined), `pm_card_3ds` (requires action).
    #[schema(example = "pm_card_visa", pattern = r"^[!-~]{1,255}$")]
    payment_method: String,
}

/// The acknowledgement of a webhook delivery.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct WebhookAck {
    /// Always true: the delivery was verified and recorded.
    received: bool,
    /// Whether this event had been received before (then nothing changed).
    duplicate: bool,
}

/// The buyer pays a pending order.
///
/// `200` with the intent when it `succeeded` (the worker then fulfils the
/// order) or `requires_action`; `402 card_declined` when declined — the
/// order stays payable.
#[utoipa::path(
    post,
    path = "/v1/orders/{id}/pay",
    tag = "payments",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Order id")),
    request_body = PayBody,
    responses(
        (status = 200, description = "The payment intent (`succeeded` or `requires_action`)", body = PaymentIntentResponse),
        (status = 401, description = "No or invalid bearer token", body = ErrorBody),
        (status = 402, description = "`card_declined`: details carry `decline_code` and the `payment_intent`, back in `requires_payment_method`", body = ErrorBody),
        (status = 403, description = "Not the buyer", body = ErrorBody),
        (status = 404, description = "No such order", body = ErrorBody),
        (status = 409, description = "`invalid_transition`: the order is not pending payment or the intent cannot be confirmed; `version_mismatch`: a concurrent payment won; `conflict`: the payment was attempted 20 times (place the order again)", body = ErrorBody),
        (status = 422, description = "`validation` on `payment_method`", body = ErrorBody),
    )
)]
async fn pay_order(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<PayBody>,
) -> Result<Json<PaymentIntentResponse>, ApiError> {
    let intent = state.market.orders.pay(&actor, id.into(), &body.payment_method).await?;
    let declined = intent.status == IntentStatus::RequiresPaymentMethod
        && intent.attempts.last().is_some_and(|a| a.outcome == AttemptOutcome::Failed);
    if declined {
        let decline_code = intent.attempts.last().and_then(|a| a.decline_code.clone());
        let response = PaymentIntentResponse::from(intent);
        let message = match &decline_code {
            Some(code) => format!("the payment was declined ({code}); pay again with another method"),
            None => "the payment was declined; pay again with another method".to_owned(),
        };
        return Err(ApiError::new(StatusCode::PAYMENT_REQUIRED, "card_declined", message)
            .with_details(json!({ "decline_code": decline_code, "payment_intent": response })));
    }
    Ok(Json(intent.into()))
}

/// A payment provider's webhook (no bearer token: the signature header
/// `Bazaar-Signature: t=…,v1=…` is verified over the raw body).
#[utoipa::path(
    post,
    path = "/v1/webhooks/{provider}",
    tag = "payments",
    params(
        ("provider" = String, Path, description = "The live provider's name: `stripe` (with `Stripe-Signature`) or `sandbox`"),
        ("Bazaar-Signature" = String, Header, description = "`t=<unix seconds>,v1=<hex HMAC-SHA256 of \"{t}.{body}\">` (several `v1` allowed); `Stripe-Signature` is accepted too"),
    ),
    request_body(content = Object, description = "The provider's event, verbatim", content_type = "application/json"),
    responses(
        (status = 200, description = "Recorded (or a replay: nothing changed)", body = WebhookAck),
        (status = 400, description = "`invalid_signature`: missing, malformed, stale or not matching", body = ErrorBody),
        (status = 404, description = "Unknown provider or payment intent", body = ErrorBody),
        (status = 422, description = "`validation`: the body is not a provider event", body = ErrorBody),
    )
)]
async fn receive_webhook(
    State(state): State<AppState>,
    ApiPath(provider): ApiPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<WebhookAck>, ApiError> {
    let signature = headers
        .get(SIGNATURE_HEADER)
        .or_else(|| headers.get(STRIPE_SIGNATURE_HEADER))
        .ok_or_else(|| invalid_signature("the Bazaar-Signature header is missing"))?
        .to_str()
        .map_err(|_| invalid_signature("the signature header is not ASCII"))?;
    let receipt = match state.market.payments.handle_webhook(&provider, signature, &body).await {
        Ok(receipt) => receipt,
        Err(Error::Unauthenticated(why)) => return Err(invalid_signature(why)),
        Err(e) => return Err(e.into()),
    };
    Ok(Json(WebhookAck { received: true, duplicate: receipt == WebhookReceipt::Duplicate }))
}

fn invalid_signature(why: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_signature", why)
}
