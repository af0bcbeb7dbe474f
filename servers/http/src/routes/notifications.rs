//! Routes: notifications — the caller's own notifications, newest first.
//! Every channel's record is listed (in-app, e-mail, webhook) with its
//! delivery status, so a user can see what was sent to them and how.

use axum::Json;
use axum::extract::State;
use bazaar_core::notifications::{Channel, Notification, NotificationStatus, Template};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiQuery, Auth};
use crate::routes::orders::PageParams;
use crate::state::AppState;

/// The notifications routes.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_notifications))
}

/// How a notification reaches its recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ChannelDto {
    /// Shown in the app.
    InApp,
    /// Sent by e-mail.
    Email,
    /// Posted to the user's webhook.
    Webhook,
}

impl From<Channel> for ChannelDto {
    fn from(c: Channel) -> Self {
        match c {
            Channel::InApp => Self::InApp,
            Channel::Email => Self::Email,
            Channel::Webhook => Self::Webhook,
        }
    }
}

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum TemplateDto {
    /// The buyer's order was placed.
    OrderPlaced,
    /// A license was issued to the buyer.
    LicenseIssued,
    /// The buyer's order was refunded.
    OrderRefunded,
    /// The vendor's product was approved.
    ProductApproved,
    /// The vendor's product was rejected.
    ProductRejected,
}

impl From<Template> for TemplateDto {
    fn from(t: Template) -> Self {
        match t {
            Template::OrderPlaced => Self::OrderPlaced,
            Template::LicenseIssued => Self::LicenseIssued,
            Template::OrderRefunded => Self::OrderRefunded,
            Template::ProductApproved => Self::ProductApproved,
            Template::ProductRejected => Self::ProductRejected,
        }
    }
}

/// Delivery status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum NotificationStatusDto {
    /// Not yet handed to the sender.
    Queued,
    /// Sent.
    Sent,
    /// The last attempt failed; it is retried with its event.
    Failed,
}

impl From<NotificationStatus> for NotificationStatusDto {
    fn from(s: NotificationStatus) -> Self {
        match s {
            NotificationStatus::Queued => Self::Queued,
            NotificationStatus::Sent => Self::Sent,
            NotificationStatus::Failed => Self::Failed,
        }
    }
}

/// One notification.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct NotificationResponse {
    /// Id.
    id: Uuid,
    /// The order it is about, if any.
    order_id: Option<Uuid>,
    /// How it is delivered.
    channel: ChannelDto,
    /// What it is about.
    template: TemplateDto,
    /// The rendered text.
    body: String,
    /// Delivery status.
    status: NotificationStatusDto,
    /// Send attempts so far.
    attempts: u32,
    /// When it was created.
    created_at: DateTime<Utc>,
    /// When it was sent.
    sent_at: Option<DateTime<Utc>>,
}

impl From<Notification> for NotificationResponse {
    fn from(n: Notification) -> Self {
        Self {
            id: n.id.into(),
            order_id: n.order_id.map(Into::into),
            channel: n.channel.into(),
            template: n.template.into(),
            body: n.body,
            status: n.status.into(),
            attempts: n.attempts,
            created_at: n.created_at,
            sent_at: n.sent_at,
        }
    }
}

/// A page of the caller's notifications, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct NotificationList {
    /// The notifications on this page.
    items: Vec<NotificationResponse>,
    /// How many in all pages.
    total: u64,
    /// Page number, from 1.
    page: u32,
    /// Page size used.
    limit: u32,
}

/// The caller's notifications, newest first.
#[utoipa::path(
    get,
    path = "/v1/notifications",
    tag = "notifications",
    security(("bearer" = [])),
    params(PageParams),
    responses(
        (status = 200, description = "A page of notifications", body = NotificationList),
        (status = 401, description = "No or invalid bearer token", body = ErrorBody),
        (status = 422, description = "`validation` on `page` or `limit`", body = ErrorBody),
    )
)]
async fn list_notifications(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiQuery(params): ApiQuery<PageParams>,
) -> Result<Json<NotificationList>, ApiError> {
    let page = state.market.notifications.list_mine(&actor, params.request()?).await?;
    Ok(Json(NotificationList {
        items: page.items.into_iter().map(Into::into).collect(),
        total: page.total,
        page: page.page,
        limit: page.limit,
    }))
}
