//! Unit tests of [`CatalogService`] over a small in-test fake store (unit
//! tests in the core must not use `bazaar-memory`) and mockall mocks.

use crate::error::ConflictReason;
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;

use super::*;
use crate::auth::Role;
use crate::catalog::fixtures::{at, new_product};
use crate::catalog::{MockProductRepository, MockReviewRepository, ProductPatch, search};
use crate::clock::ManualClock;
use crate::events::{Event, EventType};
use crate::ids::{OrderId, UserId};
use crate::licensing::{License, LicenseKind, LicenseSigner, Limits, MockLicenseRepository, NewLicense, Permissions};

/// Products and reviews behind one lock, with the events each write committed.
#[derive(Default)]
struct FakeStore {
    products: Mutex<Vec<Product>>,
    reviews: Mutex<Vec<Review>>,
    events: Mutex<Vec<Event>>,
}

#[async_trait]
impl ProductRepository for FakeStore {
    async fn insert(&self, product: &Product, events: &[Event]) -> Result<()> {
        self.products.lock().push(product.clone());
        self.events.lock().extend_from_slice(events);
        Ok(())
    }

    async fn update(&self, product: &Product, expected_version: u64, events: &[Event]) -> Result<()> {
        let mut products = self.products.lock();
        let stored = products.iter_mut().find(|p| p.id == product.id).ok_or_else(|| Error::not_found("product"))?;
        if stored.version != expected_version {
            return Err(Error::VersionMismatch { expected: expected_version, current: stored.version });
        }
        let stats = stored.stats;
        *stored = Product { stats, ..product.clone() };
        self.events.lock().extend_from_slice(events);
        Ok(())
    }

    async fn get(&self, id: ProductId) -> Result<Option<Product>> {
        Ok(self.products.lock().iter().find(|p| p.id == id).cloned())
    }

    async fn list_by_vendor(&self, vendor: UserId, page: PageRequest) -> Result<Page<Product>> {
        let mut mine: Vec<Product> = self.products.lock().iter().filter(|p| p.vendor_id == vendor).cloned().collect();
        mine.reverse();
        Ok(Page::of(&mine, page))
    }

    async fn list_searchable(&self, after: Option<ProductId>, limit: u32) -> Result<Vec<Product>> {
        let mut found: Vec<Product> = self
            .products
            .lock()
            .iter()
            .filter(|p| p.status == ProductStatus::Approved && after.is_none_or(|a| p.id > a))
            .cloned()
            .collect();
        found.sort_by_key(|p| p.id);
        found.truncate(limit as usize);
        Ok(found)
    }

    async fn search(&self, query: &SearchQuery) -> Result<SearchResult> {
        Ok(search::apply(&self.products.lock(), query))
    }

    async fn record_download(&self, id: ProductId, _events: &[Event]) -> Result<()> {
        let mut products = self.products.lock();
        let p = products.iter_mut().find(|p| p.id == id).ok_or_else(|| Error::not_found("product"))?;
        p.stats.downloads += 1;
        Ok(())
    }
}

#[async_trait]
impl ReviewRepository for FakeStore {
    async fn insert(&self, review: &Review, events: &[Event]) -> Result<()> {
        let mut products = self.products.lock();
        let mut reviews = self.reviews.lock();
        if reviews.iter().any(|r| r.product_id == review.product_id && r.buyer_id == review.buyer_id) {
            return Err(Error::conflict(ConflictReason::Duplicate, "already reviewed"));
        }
        let p = products.iter_mut().find(|p| p.id == review.product_id).ok_or_else(|| Error::not_found("product"))?;
        p.stats.rating_sum += u64::from(review.rating.stars());
        p.stats.rating_count += 1;
        reviews.push(review.clone());
        self.events.lock().extend_from_slice(events);
        Ok(())
    }

    async fn list_for_product(&self, product: ProductId, page: PageRequest) -> Result<Page<Review>> {
        let mut all: Vec<Review> = self.reviews.lock().iter().filter(|r| r.product_id == product).cloned().collect();
        all.reverse();
        Ok(Page::of(&all, page))
    }
}

struct World {
    service: CatalogService,
    store: Arc<FakeStore>,
    licenses: Arc<Mutex<Vec<License>>>,
    clock: ManualClock,
    vendor: Actor,
    admin: Actor,
    customer: Actor,
}

fn world() -> World {
    let store = Arc::new(FakeStore::default());
    let licenses: Arc<Mutex<Vec<License>>> = Arc::default();
    let mut license_repo = MockLicenseRepository::new();
    let held = licenses.clone();
    license_repo
        .expect_list_for_buyer()
        .returning(move |buyer| Ok(held.lock().iter().filter(|l| l.buyer_id == buyer).cloned().collect()));
    let clock = ManualClock::new(at(0));
    let service = CatalogService::new(store.clone(), store.clone(), Arc::new(license_repo), Arc::new(clock.clone()));
    World {
        service,
        store,
        licenses,
        clock,
        vendor: Actor::new(UserId::new(), Role::Vendor),
        admin: Actor::new(UserId::new(), Role::Admin),
        customer: Actor::new(UserId::new(), Role::Customer),
    }
}

impl World {
    async fn live_product(&self) -> Product {
        let p = self.service.create(&self.vendor, new_product()).await.unwrap();
        self.service.submit(&self.vendor, p.id).await.unwrap();
        self.service.approve(&self.admin, p.id).await.unwrap()
    }

    fn grant(&self, buyer: &Actor, product: ProductId) -> License {
        let new = NewLicense {
            buyer_id: buyer.user_id,
            product_id: product,
            order_id: OrderId::new(),
            kind: LicenseKind::Perpetual,
            permissions: Permissions::default(),
            limits: Limits::default(),
        };
        let license = License::issue(new, &LicenseSigner::from_seed(&[7; 32]), self.clock.now());
        self.licenses.lock().push(license.clone());
        license
    }

    fn event_types(&self) -> Vec<EventType> {
        self.store.events.lock().iter().map(|e| e.event_type).collect()
    }
}

fn code<T: std::fmt::Debug>(r: Result<T>) -> &'static str {
    r.unwrap_err().code()
}

#[tokio::test]
async fn vendors_create_drafts_and_customers_cannot() {
    let w = world();
    assert_eq!(code(w.service.create(&w.customer, new_product()).await), "forbidden");
    let p = w.service.create(&w.vendor, new_product()).await.unwrap();
    assert_eq!((p.status, p.version, p.vendor_id), (ProductStatus::Draft, 1, w.vendor.user_id));
    assert_eq!(p.created_at, at(0));
    let bad = NewProduct { title: "x".into(), categories: vec![], ..new_product() };
    let Err(Error::Validation(fields)) = w.service.create(&w.vendor, bad).await else { panic!("expected validation") };
    assert_eq!(fields.len(), 2);
}

#[tokio::test]
async fn the_moderation_flow_emits_one_event_per_step() {
    let w = world();
    let p = w.service.create(&w.vendor, new_product()).await.unwrap();
    let submitted = w.service.submit(&w.vendor, p.id).await.unwrap();
    assert_eq!((submitted.status, submitted.version), (ProductStatus::Pending, 2));
    let approved = w.service.approve(&w.admin, p.id).await.unwrap();
    assert_eq!((approved.status, approved.version), (ProductStatus::Approved, 3));
    assert!(approved.is_purchasable());
    w.service.suspend(&w.admin, p.id).await.unwrap();
    assert_eq!(w.service.search(&SearchQuery::default()).await.unwrap().total, 0);
    let back = w.service.reinstate(&w.admin, p.id).await.unwrap();
    assert_eq!((back.status, back.version), (ProductStatus::Approved, 5));
    assert_eq!(
        w.event_types(),
        [
            EventType::ProductSubmitted,
            EventType::ProductApproved,
            EventType::ProductSuspended,
            EventType::ProductApproved
        ]
    );
    let e = &w.store.events.lock()[0];
    let payload: ProductSubmitted = e.decode().unwrap();
    assert_eq!((payload.product_id, payload.vendor_id, payload.version), (p.id, w.vendor.user_id, 2));
}

#[tokio::test]
async fn rejection_carries_its_reason_and_an_edit_returns_to_draft() {
    let w = world();
    let p = w.service.create(&w.vendor, new_product()).await.unwrap();
    w.service.submit(&w.vendor, p.id).await.unwrap();
    assert_eq!(code(w.service.reject(&w.admin, p.id, "  ").await), "validation");
    let rejected = w.service.reject(&w.admin, p.id, "No screenshots").await.unwrap();
    assert_eq!(rejected.status, ProductStatus::Rejected);
    let payload: ProductRejected = w.store.events.lock().last().unwrap().decode().unwrap();
    assert_eq!(payload.reason, "No screenshots");
    let patch = ProductPatch { title: Some("Better title".into()), ..Default::default() };
    let edited = w.service.edit(&w.vendor, p.id, rejected.version, patch).await.unwrap();
    assert_eq!((edited.status, edited.title.as_str()), (ProductStatus::Draft, "Better title"));
}

#[tokio::test]
async fn customers_and_vendors_cannot_moderate() {
    let w = world();
    let p = w.service.create(&w.vendor, new_product()).await.unwrap();
    w.service.submit(&w.vendor, p.id).await.unwrap();
    assert_eq!(code(w.service.approve(&w.customer, p.id).await), "forbidden");
    assert_eq!(code(w.service.approve(&w.vendor, p.id).await), "forbidden");
    assert_eq!(code(w.service.reject(&w.customer, p.id, "spam").await), "forbidden");
    // Even for an id that does not exist: nothing is revealed.
    assert_eq!(code(w.service.suspend(&w.customer, ProductId::new()).await), "forbidden");
    assert_eq!(code(w.service.approve(&w.admin, ProductId::new()).await), "not_found");
    // Admins still follow the state machine.
    assert_eq!(code(w.service.suspend(&w.admin, p.id).await), "invalid_transition");
    assert!(w.event_types().iter().all(|t| *t == EventType::ProductSubmitted));
}

#[tokio::test]
async fn a_vendor_cannot_edit_or_submit_another_vendors_product() {
    let w = world();
    let live = w.live_product().await;
    let other = Actor::new(UserId::new(), Role::Vendor);
    let patch = ProductPatch { title: Some("Hijacked".into()), ..Default::default() };
    assert_eq!(code(w.service.edit(&other, live.id, live.version, patch.clone()).await), "forbidden");
    // Admins moderate; they do not edit vendors' listings.
    assert_eq!(code(w.service.edit(&w.admin, live.id, live.version, patch.clone()).await), "forbidden");
    // An unpublished product of someone else does not exist for them.
    let draft = w.service.create(&w.vendor, new_product()).await.unwrap();
    assert_eq!(code(w.service.edit(&other, draft.id, 1, patch).await), "not_found");
    assert_eq!(code(w.service.submit(&other, draft.id).await), "not_found");
    assert_eq!(w.store.get(live.id).await.unwrap().unwrap(), live);
}

#[tokio::test]
async fn edits_check_the_version_and_the_state() {
    let w = world();
    let live = w.live_product().await;
    let patch = ProductPatch { short_description: Some("Now faster".into()), ..Default::default() };
    let err = w.service.edit(&w.vendor, live.id, live.version - 1, patch.clone()).await.unwrap_err();
    assert!(matches!(err, Error::VersionMismatch { expected: 2, current: 3 }), "{err:?}");

    w.clock.advance(chrono::Duration::seconds(30));
    let edited = w.service.edit(&w.vendor, live.id, live.version, patch.clone()).await.unwrap();
    assert_eq!((edited.status, edited.version, edited.updated_at), (ProductStatus::Draft, 4, at(30)));
    // Unpublished until re-approved.
    assert_eq!(w.service.search(&SearchQuery::default()).await.unwrap().total, 0);
    assert_eq!(code(w.service.get(Some(&w.customer), live.id).await), "not_found");

    w.service.submit(&w.vendor, live.id).await.unwrap();
    assert_eq!(code(w.service.edit(&w.vendor, live.id, 5, patch.clone()).await), "invalid_transition");
    let unchanged = w.service.edit(&w.vendor, live.id, 5, ProductPatch::default()).await.unwrap();
    assert_eq!((unchanged.status, unchanged.version), (ProductStatus::Pending, 5));
    assert_eq!(code(w.service.edit(&w.vendor, live.id, 4, ProductPatch::default()).await), "version_mismatch");
}

#[tokio::test]
async fn concurrent_edits_of_one_version_let_exactly_one_win() {
    let w = world();
    let p = w.service.create(&w.vendor, new_product()).await.unwrap();
    let edit = |t: &str| {
        let patch = ProductPatch { title: Some(t.into()), ..Default::default() };
        w.service.edit(&w.vendor, p.id, 1, patch)
    };
    let (a, b) = futures::join!(edit("First title"), edit("Second title"));
    let results = [a.map(|p| p.title), b.map(|p| p.title)];
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{results:?}");
    assert!(results.iter().any(|r| matches!(r, Err(Error::VersionMismatch { .. }))));
}

#[tokio::test]
async fn unpublished_products_are_visible_only_to_owner_and_admin() {
    let w = world();
    let draft = w.service.create(&w.vendor, new_product()).await.unwrap();
    let other = Actor::new(UserId::new(), Role::Vendor);
    for who in [None, Some(&w.customer), Some(&other)] {
        assert_eq!(code(w.service.get(who, draft.id).await), "not_found");
        assert_eq!(code(w.service.list_reviews(who, draft.id, PageRequest::default()).await), "not_found");
    }
    assert_eq!(w.service.get(Some(&w.vendor), draft.id).await.unwrap(), draft);
    assert_eq!(w.service.get(Some(&w.admin), draft.id).await.unwrap(), draft);
    let live = w.live_product().await;
    assert_eq!(w.service.get(None, live.id).await.unwrap().id, live.id);
    let mine = w.service.list_mine(&w.vendor, PageRequest::default()).await.unwrap();
    assert_eq!(mine.items.iter().map(|p| p.id).collect::<Vec<_>>(), [live.id, draft.id]);
    assert_eq!(w.service.list_mine(&other, PageRequest::default()).await.unwrap().total, 0);
}

#[tokio::test]
async fn reviews_need_an_unrefunded_license() {
    let w = world();
    let live = w.live_product().await;
    let review = || NewReview { rating: 4, body: "Solid.".into() };

    let err = w.service.add_review(&w.customer, live.id, review()).await.unwrap_err();
    assert!(matches!(err, Error::Denied(Denial::NotLicensed)), "{err:?}");
    // A license for another product does not count.
    w.grant(&w.customer, ProductId::new());
    assert_eq!(code(w.service.add_review(&w.customer, live.id, review()).await), "not_licensed");

    // A refunded (revoked) purchase does not count either.
    let mut revoked = w.grant(&w.customer, live.id);
    revoked.revoked_at = Some(w.clock.now());
    w.licenses.lock().retain(|l| l.id != revoked.id);
    w.licenses.lock().push(revoked);
    assert_eq!(code(w.service.add_review(&w.customer, live.id, review()).await), "license_revoked");

    // A second, live purchase does.
    w.grant(&w.customer, live.id);
    let r = w.service.add_review(&w.customer, live.id, review()).await.unwrap();
    assert_eq!((r.rating.stars(), r.buyer_id, r.created_at), (4, w.customer.user_id, at(0)));
    let stats = w.service.get(None, live.id).await.unwrap().stats;
    assert_eq!((stats.rating_sum, stats.rating_count), (4, 1));
    assert_eq!(code(w.service.add_review(&w.customer, live.id, review()).await), "conflict");
    let page = w.service.list_reviews(None, live.id, PageRequest::default()).await.unwrap();
    assert_eq!(page.items, [r]);
    let shown = w.service.display_rating(&w.service.get(None, live.id).await.unwrap());
    assert!((shown - 19.0 / 6.0).abs() < 1e-12);
}

#[tokio::test]
async fn vendors_cannot_review_their_own_products_and_input_is_validated() {
    let w = world();
    let live = w.live_product().await;
    w.grant(&w.vendor, live.id);
    assert_eq!(
        code(w.service.add_review(&w.vendor, live.id, NewReview { rating: 5, body: String::new() }).await),
        "forbidden"
    );
    assert_eq!(
        code(w.service.add_review(&w.customer, live.id, NewReview { rating: 9, body: String::new() }).await),
        "validation"
    );
    assert_eq!(
        code(w.service.add_review(&w.customer, ProductId::new(), NewReview { rating: 3, body: String::new() }).await),
        "not_found"
    );
    // Reviews go to live products only.
    w.service.suspend(&w.admin, live.id).await.unwrap();
    w.grant(&w.customer, live.id);
    assert_eq!(
        code(w.service.add_review(&w.customer, live.id, NewReview { rating: 3, body: String::new() }).await),
        "not_found"
    );
}

fn pending_product() -> Product {
    let mut p = Product::create(ProductId::new(), UserId::new(), new_product(), at(0)).unwrap();
    p.status = ProductStatus::Pending;
    p.version = 2;
    p
}

fn mocked(products: MockProductRepository) -> CatalogService {
    CatalogService::new(
        Arc::new(products),
        Arc::new(MockReviewRepository::new()),
        Arc::new(MockLicenseRepository::new()),
        Arc::new(ManualClock::new(at(60))),
    )
}

#[tokio::test]
async fn approve_writes_exactly_one_update_carrying_one_approved_event() {
    let product = pending_product();
    let (id, vendor) = (product.id, product.vendor_id);
    let mut products = MockProductRepository::new();
    products.expect_get().times(1).returning(move |_| Ok(Some(product.clone())));
    products
        .expect_update()
        .times(1)
        .withf(move |p, expected, events| {
            let approved = events.first().and_then(|e| e.decode::<ProductApproved>().ok());
            p.id == id
                && p.status == ProductStatus::Approved
                && *expected == 2
                && p.version == 3
                && p.updated_at == at(60)
                && events.len() == 1
                && approved == Some(ProductApproved { product_id: id, vendor_id: vendor })
        })
        .returning(|_, _, _| Ok(()));
    products.expect_insert().never();
    let admin = Actor::new(UserId::new(), Role::Admin);
    let out = mocked(products).approve(&admin, id).await.unwrap();
    assert_eq!(out.status, ProductStatus::Approved);
}

#[tokio::test]
async fn a_failed_moderation_writes_nothing() {
    let product = pending_product();
    let id = product.id;
    let mut products = MockProductRepository::new();
    products.expect_get().returning(move |_| Ok(Some(product.clone())));
    products.expect_update().never();
    let service = mocked(products);
    let admin = Actor::new(UserId::new(), Role::Admin);
    assert_eq!(code(service.suspend(&admin, id).await), "invalid_transition");
    assert_eq!(code(service.reinstate(&admin, id).await), "invalid_transition");
    assert_eq!(code(service.approve(&Actor::new(UserId::new(), Role::Customer), id).await), "forbidden");
}

#[tokio::test]
async fn a_lost_race_surfaces_as_version_mismatch() {
    let product = pending_product();
    let id = product.id;
    let mut products = MockProductRepository::new();
    products.expect_get().returning(move |_| Ok(Some(product.clone())));
    products.expect_update().times(1).returning(|_, expected, _| Err(Error::VersionMismatch { expected, current: 3 }));
    let admin = Actor::new(UserId::new(), Role::Admin);
    let err = mocked(products).reject(&admin, id, "late").await.unwrap_err();
    assert!(matches!(err, Error::VersionMismatch { expected: 2, current: 3 }));
}

/// A search index that answers from what it was told and records it.
#[derive(Default)]
struct RecordingIndex {
    told: Mutex<Vec<Product>>,
}

#[async_trait]
impl crate::catalog::SearchIndex for RecordingIndex {
    async fn search(&self, query: &SearchQuery) -> Result<SearchResult> {
        // The latest state of each product told, as a read model keeps it.
        let mut latest: Vec<Product> = Vec::new();
        for p in self.told.lock().iter() {
            latest.retain(|q| q.id != p.id);
            latest.push(p.clone());
        }
        Ok(search::apply(&latest, query))
    }

    async fn index(&self, products: &[Product]) -> Result<()> {
        self.told.lock().extend_from_slice(products);
        Ok(())
    }

    async fn rebuild(&self, products: &[Product]) -> Result<()> {
        *self.told.lock() = products.to_vec();
        Ok(())
    }
}

#[tokio::test]
async fn searches_go_to_the_search_index_which_follows_every_write() {
    let mut w = world();
    let index = Arc::new(RecordingIndex::default());
    w.service = CatalogService::new(
        w.store.clone(),
        w.store.clone(),
        Arc::new(MockLicenseRepository::new()),
        Arc::new(w.clock.clone()),
    )
    .with_search_index(index.clone());
    let live = w.live_product().await;
    let everything = SearchQuery::default();
    assert_eq!(w.service.search(&everything).await.unwrap().items, std::slice::from_ref(&live));
    // The store alone would find it too; drop it from the store to prove
    // the answer comes from the index.
    w.store.products.lock().clear();
    assert_eq!(w.service.search_shared(&everything).await.unwrap().total, 1);
    let told: Vec<(ProductStatus, u64)> = index.told.lock().iter().map(|p| (p.status, p.version)).collect();
    assert_eq!(told, [(ProductStatus::Draft, 1), (ProductStatus::Pending, 2), (ProductStatus::Approved, 3)]);
}

#[tokio::test]
async fn edits_and_reviews_emit_the_events_search_indexes_follow() {
    let w = world();
    let live = w.live_product().await;
    let patch = ProductPatch { title: Some("Renamed".into()), ..Default::default() };
    let edited = w.service.edit(&w.vendor, live.id, live.version, patch).await.unwrap();
    let updated: ProductUpdated = w.store.events.lock().last().unwrap().decode().unwrap();
    assert_eq!((updated.product_id, updated.vendor_id, updated.version), (live.id, w.vendor.user_id, edited.version));

    let other = w.live_product().await;
    w.grant(&w.customer, other.id);
    let review =
        w.service.add_review(&w.customer, other.id, NewReview { rating: 4, body: String::new() }).await.unwrap();
    let reviewed: ProductReviewed = w.store.events.lock().last().unwrap().decode().unwrap();
    assert_eq!((reviewed.product_id, reviewed.review_id, reviewed.rating), (other.id, review.id, 4));
}

#[tokio::test]
async fn an_admin_imports_approved_listings_in_one_batch() {
    let w = world();
    let inputs = vec![new_product(), NewProduct { title: "Second listing".into(), ..new_product() }];
    assert_eq!(code(w.service.import_approved(&w.vendor, w.vendor.user_id, inputs.clone()).await), "forbidden");
    let bad = vec![new_product(), NewProduct { title: "x".into(), ..new_product() }];
    assert_eq!(code(w.service.import_approved(&w.admin, w.vendor.user_id, bad).await), "validation");
    assert!(w.store.products.lock().is_empty(), "an invalid batch stores nothing");

    let listed = w.service.import_approved(&w.admin, w.vendor.user_id, inputs).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(
        listed.iter().all(|p| p.status == ProductStatus::Approved && p.version == 3 && p.vendor_id == w.vendor.user_id)
    );
    assert_eq!(listed[1].title, "Second listing");
    assert_eq!(w.event_types(), [EventType::ProductApproved, EventType::ProductApproved]);
    assert_eq!(w.service.search(&SearchQuery::default()).await.unwrap().total, 2);
}
