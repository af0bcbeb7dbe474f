//! `bazaar.v1.CatalogService`.

use std::sync::Arc;

use bazaar_core::catalog::SearchQuery;
use bazaar_core::ids::ProductId;
use bazaar_core::marketplace::Marketplace;
use tonic::{Request, Response, Status};

use crate::error::status;
use crate::pb::catalog_service_server::CatalogService;
use crate::{auth, convert, pb};

/// Product lookups and search, open to everyone.
#[derive(Debug, Clone)]
pub struct Catalog {
    market: Arc<Marketplace>,
}

impl Catalog {
    /// The service over `market`.
    pub fn new(market: Arc<Marketplace>) -> Self {
        Self { market }
    }
}

#[tonic::async_trait]
impl CatalogService for Catalog {
    async fn get_product(
        &self,
        request: Request<pb::GetProductRequest>,
    ) -> Result<Response<pb::GetProductResponse>, Status> {
        let actor = auth::optional(&self.market, &request).map_err(status)?;
        let id = ProductId::parse("product_id", &request.get_ref().product_id).map_err(status)?;
        let product = self.market.catalog.get(actor.as_ref(), id).await.map_err(status)?;
        let rating = self.market.catalog.display_rating(&product);
        Ok(Response::new(pb::GetProductResponse { product: Some(convert::product(product, rating)) }))
    }

    async fn search_products(
        &self,
        request: Request<pb::SearchProductsRequest>,
    ) -> Result<Response<pb::SearchProductsResponse>, Status> {
        // Search shows approved products only, the same to everyone; a bad
        // token is still refused so a client learns its sign-in failed.
        auth::optional(&self.market, &request).map_err(status)?;
        let query = SearchQuery::try_from(request.into_inner()).map_err(status)?;
        let result = self.market.catalog.search(&query).await.map_err(status)?;
        let catalog = &self.market.catalog;
        Ok(Response::new(convert::search_result(result, |p| catalog.display_rating(p))))
    }
}
