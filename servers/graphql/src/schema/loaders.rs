//! Batch loaders, one set per request (they answer for its caller): an
//! order list with its lines' products and its licenses costs one product
//! read and one license read per buyer, however many rows it has.
//!
//! Each loader calls a core service, so visibility and authorization are
//! the core's: [`CatalogService::get_many`] leaves out products the caller
//! may not see (the field is `null`, as `product(id)` would be
//! `not_found`), [`LicenseService::list_held_by`] answers only the holder
//! or an admin.
//!
//! [`CatalogService::get_many`]: bazaar_core::catalog::CatalogService::get_many
//! [`LicenseService::list_held_by`]: bazaar_core::licensing::LicenseService::list_held_by

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use bazaar_core::auth::Actor;
use bazaar_core::catalog::Product;
use bazaar_core::ids::{OrderId, ProductId, UserId};
use bazaar_core::licensing::License;
use bazaar_core::marketplace::Marketplace;

use crate::error::graphql_error;

/// The loaders of one request.
pub(crate) struct Loaders {
    /// Products by id, as the caller may see them.
    pub(crate) products: DataLoader<ProductLoader, HashMapCache>,
    /// Licenses by order.
    pub(crate) licenses: DataLoader<LicenseLoader>,
}

impl fmt::Debug for Loaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Loaders").finish_non_exhaustive()
    }
}

impl Loaders {
    /// Fresh loaders for a request by `actor` (`None`: anonymous).
    pub(crate) fn new(market: Arc<Marketplace>, actor: Option<Actor>) -> Self {
        Self {
            // Cached for the request: a product seen on a line is not read
            // again for a license of the same response.
            products: DataLoader::with_cache(
                ProductLoader { market: market.clone(), actor },
                tokio::spawn,
                HashMapCache::default(),
            ),
            licenses: DataLoader::new(LicenseLoader { market, actor }, tokio::spawn),
        }
    }
}

/// Loads products through [`CatalogService::get_many`](bazaar_core::catalog::CatalogService::get_many).
pub(crate) struct ProductLoader {
    market: Arc<Marketplace>,
    actor: Option<Actor>,
}

impl Loader<ProductId> for ProductLoader {
    type Value = Product;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[ProductId]) -> Result<HashMap<ProductId, Product>, Self::Error> {
        let found = self.market.catalog.get_many(self.actor.as_ref(), keys).await.map_err(graphql_error)?;
        Ok(found.into_iter().map(|p| (p.id, p)).collect())
    }
}

/// The licenses of one order, held by its buyer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct OrderLicenses {
    /// The order's buyer (the licenses' holder).
    pub(crate) holder: UserId,
    /// The order.
    pub(crate) order: OrderId,
}

/// Loads licenses per order: one
/// [`LicenseService::list_held_by`](bazaar_core::licensing::LicenseService::list_held_by)
/// per distinct buyer among the keys.
pub(crate) struct LicenseLoader {
    market: Arc<Marketplace>,
    actor: Option<Actor>,
}

impl Loader<OrderLicenses> for LicenseLoader {
    type Value = Vec<License>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[OrderLicenses]) -> Result<HashMap<OrderLicenses, Vec<License>>, Self::Error> {
        let actor = self
            .actor
            .as_ref()
            .ok_or_else(|| graphql_error(bazaar_core::Error::Unauthenticated("a bearer token is required".into())))?;
        let mut out: HashMap<OrderLicenses, Vec<License>> = keys.iter().map(|k| (*k, Vec::new())).collect();
        let holders: HashSet<UserId> = keys.iter().map(|k| k.holder).collect();
        for holder in holders {
            let held = self.market.licenses.list_held_by(actor, holder).await.map_err(graphql_error)?;
            for license in held {
                if let Some(slot) = out.get_mut(&OrderLicenses { holder, order: license.order_id }) {
                    slot.push(license);
                }
            }
        }
        Ok(out)
    }
}
