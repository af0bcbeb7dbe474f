//! `bazaar.v1.NotificationService`.

use std::sync::Arc;

use bazaar_core::catalog::PageRequest;
use bazaar_core::ids::OrderId;
use bazaar_core::marketplace::Marketplace;
use tonic::{Request, Response, Status};

use crate::error::status;
use crate::pb::notification_service_server::NotificationService;
use crate::{auth, pb};

/// The caller's notifications, by order or in pages.
#[derive(Debug, Clone)]
pub struct Notifications {
    market: Arc<Marketplace>,
}

impl Notifications {
    /// The service over `market`.
    pub fn new(market: Arc<Marketplace>) -> Self {
        Self { market }
    }
}

#[tonic::async_trait]
impl NotificationService for Notifications {
    async fn get_notifications(
        &self,
        request: Request<pb::GetNotificationsRequest>,
    ) -> Result<Response<pb::GetNotificationsResponse>, Status> {
        let actor = auth::require(&self.market, &request).map_err(status)?;
        let id = OrderId::parse("order_id", &request.get_ref().order_id).map_err(status)?;
        let found = self.market.notifications.list_for_order(&actor, id).await.map_err(status)?;
        Ok(Response::new(pb::GetNotificationsResponse { notifications: found.into_iter().map(Into::into).collect() }))
    }

    async fn list_notifications(
        &self,
        request: Request<pb::ListNotificationsRequest>,
    ) -> Result<Response<pb::ListNotificationsResponse>, Status> {
        let actor = auth::require(&self.market, &request).map_err(status)?;
        let r = request.into_inner();
        let page = PageRequest::from_params(r.page, r.limit).map_err(status)?;
        let found = self.market.notifications.list_mine(&actor, page).await.map_err(status)?;
        Ok(Response::new(pb::ListNotificationsResponse {
            items: found.items.into_iter().map(Into::into).collect(),
            total: found.total,
            page: found.page,
            limit: found.limit,
        }))
    }
}
