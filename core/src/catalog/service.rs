//! [`CatalogService`]: the catalog's use cases, with authorization.
//!
//! # Visibility and errors
//! A product that is not approved exists only for its vendor and admins
//! ([`Action::ViewUnpublishedProduct`]); anyone else gets `NotFound` for it,
//! whatever they try, so ids of unpublished listings leak nothing. Once the
//! actor can see a product, an action they may not take is `Forbidden`.
//! Moderation is admin-only whatever the product, so it is refused with
//! `Forbidden` before the product is even loaded.
//!
//! # Events
//! `submit` emits `product.submitted`; `approve` emits `product.approved`;
//! `reject` emits `product.rejected`; `suspend` emits `product.suspended`;
//! `reinstate` emits `product.approved` as well, because for every consumer
//! (search indexes, caches, the vendor's notifications) the product has just
//! become live again, and the closed event set has no separate type for it.
//! `edit` emits `product.updated`; `add_review` emits `product.reviewed` (the
//! product's rating stats changed). Creating emits nothing (a draft is seen
//! by no consumer). Events are committed by the repository with the change
//! (outbox); the service never publishes.
//!
//! # Search
//! Searches go to the [`SearchIndex`] (by default the product store's own
//! search, [`StoreSearch`]). After each write the service hands the
//! product's new state to the index, so a read model in this process
//! follows its own writes without waiting for the event to travel; a
//! failure there is logged, not returned (the write is committed, and the
//! event brings the index up to date).

use std::sync::Arc;

use super::index::{SearchIndex, StoreSearch};
use super::moderation::{ModerationAction, ProductStatus, transition};
use super::product::{NewProduct, Product, ProductPatch};
use super::rating::RatingPrior;
use super::repository::{ProductRepository, ReviewRepository};
use super::review::{NewReview, Review};
use super::search::{SearchQuery, SearchResult};
use crate::auth::{Action, Actor, Resource, authorize};
use crate::clock::Clock;
use crate::error::{Denial, Error, Result};
use crate::events::{
    Event, ProductApproved, ProductRejected, ProductReviewed, ProductSubmitted, ProductSuspended, ProductUpdated,
};
use crate::ids::{ProductId, ReviewId, UserId};
use crate::licensing::{LicenseRepository, LicenseStatus};
use crate::page::{Page, PageRequest};

/// The catalog's use cases.
pub struct CatalogService {
    products: Arc<dyn ProductRepository>,
    reviews: Arc<dyn ReviewRepository>,
    licenses: Arc<dyn LicenseRepository>,
    clock: Arc<dyn Clock>,
    prior: RatingPrior,
    search: Arc<dyn SearchIndex>,
}

impl std::fmt::Debug for CatalogService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CatalogService").field("prior", &self.prior).finish_non_exhaustive()
    }
}

impl CatalogService {
    /// A service over these ports, with [`RatingPrior::DEFAULT`].
    ///
    /// `products` and `reviews` must share storage (see the repository docs).
    pub fn new(
        products: Arc<dyn ProductRepository>,
        reviews: Arc<dyn ReviewRepository>,
        licenses: Arc<dyn LicenseRepository>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let search = Arc::new(StoreSearch::new(products.clone()));
        Self { products, reviews, licenses, clock, prior: RatingPrior::DEFAULT, search }
    }

    /// Answers searches from `index` (a read model) instead of the product
    /// store, and tells it of every product this service writes.
    pub fn with_search_index(mut self, index: Arc<dyn SearchIndex>) -> Self {
        self.search = index;
        self
    }

    /// The index searches go to.
    pub fn search_index(&self) -> &Arc<dyn SearchIndex> {
        &self.search
    }

    /// Uses `prior` for [`CatalogService::display_rating`].
    pub fn with_rating_prior(mut self, prior: RatingPrior) -> Self {
        self.prior = prior;
        self
    }

    /// The Bayesian display rating of `product` under this service's prior.
    pub fn display_rating(&self, product: &Product) -> f64 {
        self.prior.display(&product.stats)
    }

    /// Creates a draft owned by `actor`.
    ///
    /// # Errors
    /// `Forbidden` unless the actor is a vendor or admin; `Validation` naming
    /// every bad field; storage errors.
    pub async fn create(&self, actor: &Actor, input: NewProduct) -> Result<Product> {
        authorize(actor, Action::CreateProduct, &Resource::Marketplace)?;
        let product = Product::create(ProductId::new(), actor.user_id, input, self.clock.now())?;
        self.products.insert(&product, &[]).await?;
        self.reindex(&product).await;
        Ok(product)
    }

    /// Lists `inputs` for `vendor` at once, approved (admin): bulk loads
    /// such as the demo catalog or a migration from another store. Each
    /// product goes through the moderation state machine (draft → pending
    /// → approved) and emits `product.approved`; all are stored with one
    /// [`ProductRepository::insert_many`]. Returns them in input order.
    ///
    /// # Errors
    /// `Forbidden` for non-admins; `Validation` naming every bad field of
    /// the first invalid input (nothing is stored then); storage errors.
    pub async fn import_approved(
        &self,
        actor: &Actor,
        vendor: UserId,
        inputs: Vec<NewProduct>,
    ) -> Result<Vec<Product>> {
        authorize(actor, Action::ModerateProduct, &Resource::Marketplace)?;
        let now = self.clock.now();
        let mut batch = Vec::with_capacity(inputs.len());
        for input in inputs {
            let mut product = Product::create(ProductId::new(), vendor, input, now)?;
            let pending = transition(product.status, &ModerationAction::Submit)?;
            product.status = transition(pending, &ModerationAction::Approve)?;
            product.version += 2;
            let event = Event::new(&ProductApproved { product_id: product.id, vendor_id: vendor }, now);
            batch.push((product, vec![event]));
        }
        self.products.insert_many(&batch).await?;
        let products: Vec<Product> = batch.into_iter().map(|(p, _)| p).collect();
        if let Err(e) = self.search.index(&products).await {
            tracing::warn!(error = %e, "search index update failed; the events will retry it");
        }
        Ok(products)
    }

    /// Applies `patch` to the owner's product if it is still at
    /// `expected_version` (HTTP `If-Match`). An approved product returns to
    /// draft (see the moderation module docs). An empty patch changes
    /// nothing, so it returns the product as it is, still published, at the
    /// same version.
    ///
    /// # Errors
    /// `Validation` naming every bad field (checked first);
    /// `NotFound` if the actor cannot see it; `Forbidden` unless the actor
    /// owns it; `VersionMismatch` when stale; `InvalidTransition` while
    /// pending or suspended; storage errors.
    pub async fn edit(
        &self,
        actor: &Actor,
        id: ProductId,
        expected_version: u64,
        patch: ProductPatch,
    ) -> Result<Product> {
        // Bad input is reported whatever the product's state.
        patch.validate()?;
        let mut product = self.load_visible(Some(actor), id).await?;
        authorize(actor, Action::EditProduct, &resource(&product))?;
        if product.version != expected_version {
            return Err(Error::VersionMismatch { expected: expected_version, current: product.version });
        }
        if patch.is_empty() {
            return Ok(product);
        }
        let status = transition(product.status, &ModerationAction::Edit)?;
        patch.apply_to(&mut product)?;
        let event = Event::new(
            &ProductUpdated { product_id: product.id, vendor_id: product.vendor_id, version: expected_version + 1 },
            self.clock.now(),
        );
        self.save(product, status, expected_version, vec![event]).await
    }

    /// Submits the owner's product for review.
    ///
    /// # Errors
    /// `NotFound`, `Forbidden` as for [`CatalogService::edit`];
    /// `InvalidTransition` unless it is a draft; `VersionMismatch` if it
    /// changed concurrently; storage errors.
    pub async fn submit(&self, actor: &Actor, id: ProductId) -> Result<Product> {
        let product = self.load_visible(Some(actor), id).await?;
        authorize(actor, Action::SubmitProduct, &resource(&product))?;
        let status = transition(product.status, &ModerationAction::Submit)?;
        let now = self.clock.now();
        let event = Event::new(
            &ProductSubmitted { product_id: product.id, vendor_id: product.vendor_id, version: product.version + 1 },
            now,
        );
        let expected = product.version;
        self.save(product, status, expected, vec![event]).await
    }

    /// Approves a pending product (admin). Emits `product.approved`.
    ///
    /// # Errors
    /// `Forbidden` for non-admins; `NotFound`; `InvalidTransition` unless
    /// pending; `VersionMismatch` on a concurrent change; storage errors.
    pub async fn approve(&self, actor: &Actor, id: ProductId) -> Result<Product> {
        let now = self.clock.now();
        self.moderate(actor, id, ModerationAction::Approve, |product_id, vendor_id| {
            Event::new(&ProductApproved { product_id, vendor_id }, now)
        })
        .await
    }

    /// Rejects a pending product with a reason (admin). Emits `product.rejected`.
    ///
    /// # Errors
    /// As [`CatalogService::approve`], plus `Validation` on `reason` when it
    /// is blank or over 500 characters.
    pub async fn reject(&self, actor: &Actor, id: ProductId, reason: &str) -> Result<Product> {
        let reason = reason.trim().to_owned();
        let now = self.clock.now();
        let action = ModerationAction::Reject { reason: reason.clone() };
        self.moderate(actor, id, action, |product_id, vendor_id| {
            Event::new(&ProductRejected { product_id, vendor_id, reason }, now)
        })
        .await
    }

    /// Takes an approved product down (admin). Emits `product.suspended`.
    ///
    /// # Errors
    /// As [`CatalogService::approve`], with `InvalidTransition` unless approved.
    pub async fn suspend(&self, actor: &Actor, id: ProductId) -> Result<Product> {
        let now = self.clock.now();
        self.moderate(actor, id, ModerationAction::Suspend, |product_id, vendor_id| {
            Event::new(&ProductSuspended { product_id, vendor_id }, now)
        })
        .await
    }

    /// Puts a suspended product back up (admin). Emits `product.approved`.
    ///
    /// # Errors
    /// As [`CatalogService::approve`], with `InvalidTransition` unless suspended.
    pub async fn reinstate(&self, actor: &Actor, id: ProductId) -> Result<Product> {
        let now = self.clock.now();
        self.moderate(actor, id, ModerationAction::Reinstate, |product_id, vendor_id| {
            Event::new(&ProductApproved { product_id, vendor_id }, now)
        })
        .await
    }

    /// The product, if `actor` (or an anonymous visitor, `None`) may see it.
    ///
    /// # Errors
    /// `NotFound` when it does not exist or is not approved and the actor is
    /// neither its vendor nor an admin; storage errors.
    pub async fn get(&self, actor: Option<&Actor>, id: ProductId) -> Result<Product> {
        self.load_visible(actor, id).await
    }

    /// The products among `ids` that `actor` (or an anonymous visitor,
    /// `None`) may see, in one store call, in no particular order: unknown
    /// and hidden ones are left out, as [`get`](Self::get) answers them
    /// `NotFound`. For batch loaders (the products of a page of orders).
    ///
    /// # Errors
    /// Storage errors.
    pub async fn get_many(&self, actor: Option<&Actor>, ids: &[ProductId]) -> Result<Vec<Product>> {
        let mut found = self.products.get_many(ids).await?;
        found.retain(|p| p.is_visible_to(actor));
        Ok(found)
    }

    /// Searches approved products (open to everyone).
    ///
    /// # Errors
    /// Storage errors.
    pub async fn search(&self, query: &SearchQuery) -> Result<SearchResult> {
        self.search.search(query).await
    }

    /// [`search`](Self::search), as the shared result a caching product
    /// store keeps (see [`ProductRepository::search_shared`]): the same `Arc`
    /// comes back for as long as the cache serves that page.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn search_shared(&self, query: &SearchQuery) -> Result<Arc<SearchResult>> {
        self.search.search_shared(query).await
    }

    /// The actor's own products, every status, newest first.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn list_mine(&self, actor: &Actor, page: PageRequest) -> Result<Page<Product>> {
        self.products.list_by_vendor(actor.user_id, page).await
    }

    /// Reviews an approved product the actor bought and was not refunded.
    ///
    /// # Errors
    /// - `Validation` naming `rating` and/or `body`;
    /// - `NotFound` when the product does not exist or is not visible to the actor;
    /// - `InvalidTransition` (`review`) when the actor can see it but it is not approved;
    /// - `Forbidden` when the actor is the product's vendor;
    /// - `Denied(NotLicensed)` when the actor holds no license for it;
    /// - `Denied(LicenseRevoked)` when every such license is revoked (refunded);
    /// - `Conflict` when the actor already reviewed it;
    /// - storage errors.
    pub async fn add_review(&self, actor: &Actor, product_id: ProductId, input: NewReview) -> Result<Review> {
        input.validate()?;
        let product = self.load_visible(Some(actor), product_id).await?;
        if product.status != ProductStatus::Approved {
            return Err(Error::transition("product", product.status, "review"));
        }
        authorize(actor, Action::ReviewProduct, &resource(&product))?;
        if product.vendor_id == actor.user_id {
            return Err(Error::Forbidden("vendors cannot review their own products".into()));
        }
        let now = self.clock.now();
        let licenses = self.licenses.list_for_buyer(actor.user_id).await?;
        // Collected rather than kept as a lazy `Filter`: a closure-typed
        // iterator alive across the `.await` below makes rustc unable to
        // prove this future `Send` (HTTP handlers need it to be).
        let held: Vec<_> = licenses.iter().filter(|l| l.product_id == product_id).collect();
        if held.is_empty() {
            return Err(Denial::NotLicensed.into());
        }
        // Expired or suspended licenses still prove a purchase that was not
        // refunded; only revocation (refund, chargeback) disqualifies.
        if held.iter().all(|l| l.status(now) == LicenseStatus::Revoked) {
            return Err(Denial::LicenseRevoked.into());
        }
        let review = input.into_review(ReviewId::new(), product_id, actor.user_id, now)?;
        let event =
            Event::new(&ProductReviewed { product_id, review_id: review.id, rating: review.rating.stars() }, now);
        self.reviews.insert(&review, &[event]).await?;
        // The stats changed in the store; the index takes them from there.
        match self.products.get(product_id).await {
            Ok(Some(product)) => self.reindex(&product).await,
            Ok(None) => {}
            Err(e) => tracing::warn!(%product_id, error = %e, "re-reading a reviewed product for search failed"),
        }
        Ok(review)
    }

    /// Reviews of a product the caller can see, newest first.
    ///
    /// # Errors
    /// `NotFound` as for [`CatalogService::get`]; storage errors.
    pub async fn list_reviews(
        &self,
        actor: Option<&Actor>,
        product_id: ProductId,
        page: PageRequest,
    ) -> Result<Page<Review>> {
        self.load_visible(actor, product_id).await?;
        self.reviews.list_for_product(product_id, page).await
    }

    async fn moderate(
        &self,
        actor: &Actor,
        id: ProductId,
        action: ModerationAction,
        event: impl FnOnce(ProductId, UserId) -> Event,
    ) -> Result<Product> {
        // Admin-only whatever the product; checked before loading so
        // non-admins learn nothing about which ids exist.
        authorize(actor, Action::ModerateProduct, &Resource::Marketplace)?;
        let product = self.products.get(id).await?.ok_or_else(|| Error::not_found("product"))?;
        let status = transition(product.status, &action)?;
        let event = event(product.id, product.vendor_id);
        let expected = product.version;
        self.save(product, status, expected, vec![event]).await
    }

    /// Sets status, bumps version and `updated_at`, and stores with a
    /// compare-and-set on `expected`.
    async fn save(
        &self,
        mut product: Product,
        status: ProductStatus,
        expected: u64,
        events: Vec<Event>,
    ) -> Result<Product> {
        product.status = status;
        product.version = expected + 1;
        product.updated_at = self.clock.now();
        self.products.update(&product, expected, &events).await?;
        self.reindex(&product).await;
        Ok(product)
    }

    /// Hands `product`'s new state to the search index (see the module docs).
    async fn reindex(&self, product: &Product) {
        if let Err(e) = self.search.index(std::slice::from_ref(product)).await {
            tracing::warn!(product_id = %product.id, error = %e, "search index update failed; the event will retry it");
        }
    }

    async fn load_visible(&self, actor: Option<&Actor>, id: ProductId) -> Result<Product> {
        let product = self.products.get(id).await?.ok_or_else(|| Error::not_found("product"))?;
        if product.is_visible_to(actor) { Ok(product) } else { Err(Error::not_found("product")) }
    }
}

fn resource(product: &Product) -> Resource {
    Resource::Product { vendor_id: product.vendor_id }
}

#[cfg(test)]
#[path = "service_tests.rs"]
mod tests;
