//! `bazaar.v1.OrderService`.

use std::sync::Arc;

use bazaar_core::ids::OrderId;
use bazaar_core::marketplace::Marketplace;
use bazaar_core::orders::{Order, PlaceOrder};
use bazaar_core::payments::PaymentIntent;
use tonic::{Request, Response, Status};

use crate::error::status;
use crate::pb::order_service_server::OrderService;
use crate::{auth, convert, pb};

/// Idempotent order placement and order lookups, for signed-in callers.
#[derive(Debug, Clone)]
pub struct Orders {
    market: Arc<Marketplace>,
}

impl Orders {
    /// The service over `market`.
    pub fn new(market: Arc<Marketplace>) -> Self {
        Self { market }
    }

    /// The order's payment intent, if it has one.
    ///
    /// The intent is a convenience on the order: when it cannot be read the
    /// order is still answered (without it) rather than failing a request
    /// whose order was already placed.
    async fn payment(&self, order: &Order) -> Option<PaymentIntent> {
        match self.market.payments.find_for_order(order.id).await {
            Ok(intent) => intent,
            Err(e) => {
                tracing::warn!(order = %order.id, error = %e, "could not read the order's payment intent");
                None
            }
        }
    }
}

#[tonic::async_trait]
impl OrderService for Orders {
    async fn place_order(
        &self,
        request: Request<pb::PlaceOrderRequest>,
    ) -> Result<Response<pb::PlaceOrderResponse>, Status> {
        let actor = auth::require(&self.market, &request).map_err(status)?;
        let r = request.into_inner();
        let place = PlaceOrder::try_from(&r).map_err(status)?;
        // An empty key means "no key" (proto3 strings have no absent state).
        let key = Some(r.idempotency_key.as_str()).filter(|k| !k.is_empty());
        let placed = self.market.orders.place_with_payment(&actor, place, key).await.map_err(status)?;
        Ok(Response::new(pb::PlaceOrderResponse { order: Some(convert::order(placed.order, placed.payment.as_ref())) }))
    }

    async fn get_order(&self, request: Request<pb::GetOrderRequest>) -> Result<Response<pb::GetOrderResponse>, Status> {
        let actor = auth::require(&self.market, &request).map_err(status)?;
        let id = OrderId::parse("order_id", &request.get_ref().order_id).map_err(status)?;
        let order = self.market.orders.get(&actor, id).await.map_err(status)?;
        let payment = self.payment(&order).await;
        Ok(Response::new(pb::GetOrderResponse { order: Some(convert::order(order, payment.as_ref())) }))
    }
}
