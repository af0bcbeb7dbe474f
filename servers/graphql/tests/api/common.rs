//! Shared wiring for the GraphQL tests: a marketplace in memory (or on
//! SQLite) behind `router_with(state)`, its product and license stores
//! wrapped in call counters, users of each role, and one-call helpers.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use bazaar_auth::{Argon2Passwords, JwtTokens};
use bazaar_core::Result;
use bazaar_core::auth::{Actor, Email, SignInLimits};
use bazaar_core::catalog::{
    NewProduct, Page, PageRequest, Pricing, Product, ProductKind, ProductRepository, SearchQuery, SearchResult,
};
use bazaar_core::clock::{Clock, ManualClock, Timestamp};
use bazaar_core::events::Event;
use bazaar_core::ids::{LicenseId, OrderId, ProductId, UserId};
use bazaar_core::licensing::{ActivationOutcome, Fingerprint, License, LicenseRepository};
use bazaar_core::marketplace::{Marketplace, MarketplaceBuilder, Ports};
use bazaar_core::money::{Currency, Money};
use bazaar_core::payments::SandboxProvider;
use bazaar_graphql::{GraphqlSettings, GraphqlState, router_with};
use bazaar_memory::MemoryBackend;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

/// Calls made to the wrapped stores since the last reset.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    pub products: Arc<AtomicUsize>,
    pub licenses: Arc<AtomicUsize>,
    /// Milliseconds every product search takes on top of the store's time.
    pub search_delay_ms: Arc<AtomicU64>,
}

impl Counters {
    pub fn reset(&self) {
        self.products.store(0, Ordering::SeqCst);
        self.licenses.store(0, Ordering::SeqCst);
    }

    /// (product store calls, license store calls).
    pub fn read(&self) -> (usize, usize) {
        (self.products.load(Ordering::SeqCst), self.licenses.load(Ordering::SeqCst))
    }
}

/// A router over a fresh marketplace on a manual clock.
pub struct TestApp {
    pub market: Arc<Marketplace>,
    pub clock: Arc<ManualClock>,
    pub counters: Counters,
    pub settings: GraphqlSettings,
}

/// A signed-in user.
#[derive(Debug, Clone)]
pub struct Session {
    pub user_id: String,
    pub token: String,
    pub actor: Actor,
}

/// A GraphQL answer: HTTP status and body.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub json: Value,
}

impl Reply {
    /// `data`, asserting there were no errors.
    pub fn data(&self) -> &Value {
        assert!(self.json.get("errors").is_none(), "unexpected errors: {}", self.json);
        &self.json["data"]
    }

    /// The code of the first error.
    pub fn code(&self) -> String {
        let code = &self.json["errors"][0]["extensions"]["code"];
        code.as_str().unwrap_or_else(|| panic!("no error code in {}", self.json)).to_owned()
    }

    /// The message of the first error.
    pub fn message(&self) -> String {
        self.json["errors"][0]["message"].as_str().unwrap_or_default().to_owned()
    }
}

impl TestApp {
    /// In memory, with the search cache as `bazaar serve` has it, and an
    /// auth quota no test reaches.
    pub fn new() -> Self {
        Self::custom(|builder| builder)
    }

    pub fn custom(builder: impl FnOnce(MarketplaceBuilder) -> MarketplaceBuilder) -> Self {
        let clock = Arc::new(ManualClock::at_epoch_secs(1_700_000_000));
        let dyn_clock: Arc<dyn Clock> = clock.clone();
        let ports = MemoryBackend::new(dyn_clock.clone()).ports();
        Self::over(ports, clock, builder)
    }

    /// Over `ports` (any backend), counting its product and license calls.
    pub fn over(
        ports: Ports,
        clock: Arc<ManualClock>,
        builder: impl FnOnce(MarketplaceBuilder) -> MarketplaceBuilder,
    ) -> Self {
        let dyn_clock: Arc<dyn Clock> = clock.clone();
        let counters = Counters::default();
        let mut ports = ports;
        ports.products = Arc::new(CountingProducts {
            inner: ports.products,
            calls: counters.products.clone(),
            search_delay_ms: counters.search_delay_ms.clone(),
        });
        ports.licenses = Arc::new(CountingLicenses { inner: ports.licenses, calls: counters.licenses.clone() });
        let ports = ports.with_search_cache(dyn_clock.clone());
        let sandbox = Arc::new(SandboxProvider::new(dyn_clock.clone(), b"whsec_test".to_vec()));
        // Tests sign in often from one address; those about the quotas set their own.
        let many = bazaar_core::resilience::rate_limit::Quota::per_second(std::num::NonZeroU32::new(10_000).unwrap());
        let market = builder(
            Marketplace::builder(ports)
                .clock(dyn_clock)
                .payment_provider(sandbox)
                .passwords(Arc::new(Argon2Passwords::fast_for_tests()))
                .tokens(Arc::new(JwtTokens::new([7; 32])))
                .sign_in_limits(SignInLimits { per_client: many, per_account: many }),
        )
        .build()
        .expect("every port is set");
        let settings = GraphqlSettings::default();
        Self { market: Arc::new(market), clock, counters, settings }
    }

    pub fn router(&self) -> Router {
        router_with(GraphqlState::new(self.market.clone(), self.settings.clone()))
    }

    /// Relays and dispatches every pending event (what the worker does).
    pub async fn pump(&self) {
        self.market.pump().await.expect("pump");
    }

    /// POSTs a GraphQL request.
    pub async fn gql(&self, query: &str, variables: Value, token: Option<&str>) -> Reply {
        self.gql_with(&self.router(), query, variables, token).await
    }

    /// POSTs a GraphQL request to `router`.
    pub async fn gql_with(&self, router: &Router, query: &str, variables: Value, token: Option<&str>) -> Reply {
        let mut req = Request::post("/graphql").header(header::CONTENT_TYPE, "application/json");
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let body = json!({ "query": query, "variables": variables }).to_string();
        self.call(router, req.body(Body::from(body)).expect("request")).await
    }

    pub async fn call(&self, router: &Router, req: Request<Body>) -> Reply {
        let response = router.clone().oneshot(req).await.expect("infallible router");
        let status = response.status();
        let bytes = response.into_body().collect().await.expect("body").to_bytes();
        Reply { status, json: serde_json::from_slice(&bytes).unwrap_or(Value::Null) }
    }

    /// Registers a customer or vendor through the `register` mutation.
    pub async fn register(&self, role: &str) -> Session {
        let email = format!("{role}-{}@example.com", uuid::Uuid::now_v7());
        let reply = self
            .gql(
                "mutation($input: RegisterInput!) { register(input: $input) { user { id role } accessToken } }",
                json!({ "input": { "email": email, "password": "password123", "name": role, "role": role.to_uppercase() } }),
                None,
            )
            .await;
        let data = reply.data();
        self.session(
            data["register"]["user"]["id"].as_str().expect("id"),
            data["register"]["accessToken"].as_str().expect("token"),
        )
    }

    /// An admin (admins cannot register through the API).
    pub async fn admin(&self) -> Session {
        let email = Email::parse(&format!("admin-{}@example.com", uuid::Uuid::now_v7())).unwrap();
        self.market.auth.ensure_admin(&email, "password123").await.expect("admin");
        let signed_in = self.market.auth.login(email.as_str(), "password123").await.expect("admin login");
        self.session(&signed_in.user.id.to_string(), &signed_in.access.token)
    }

    fn session(&self, user_id: &str, token: &str) -> Session {
        let actor = self.market.auth.verify(token).expect("a fresh token verifies");
        Session { user_id: user_id.to_owned(), token: token.to_owned(), actor }
    }

    /// An approved product of `vendor` (created through the core: the
    /// GraphQL API does not edit the catalog).
    pub async fn approved(&self, vendor: &Session, admin: &Session, title: &str, pricing: Pricing) -> Product {
        let listing = NewProduct {
            title: title.into(),
            description: format!("{title}: does useful things."),
            short_description: "Useful.".into(),
            kind: ProductKind::AiAgent,
            categories: vec!["support".into()],
            tags: vec!["email".into()],
            pricing,
            media: vec![],
        };
        let product = self.market.catalog.create(&vendor.actor, listing).await.expect("create");
        self.market.catalog.submit(&vendor.actor, product.id).await.expect("submit");
        self.market.catalog.approve(&admin.actor, product.id).await.expect("approve")
    }

    /// Places and pays an order for `products` through the API, then runs
    /// the worker so its licenses are issued.
    pub async fn buy(&self, buyer: &Session, products: &[&Product]) -> String {
        let ids: Vec<String> = products.iter().map(|p| p.id.to_string()).collect();
        let placed = self
            .gql(
                "mutation($ids: [ID!]!) { placeOrder(productIds: $ids) { order { id status } } }",
                json!({ "ids": ids }),
                Some(&buyer.token),
            )
            .await;
        let order_id = placed.data()["placeOrder"]["order"]["id"].as_str().expect("order id").to_owned();
        let paid = self
            .gql(
                "mutation($id: ID!) { pay(orderId: $id, paymentMethod: \"pm_card_visa\") { status } }",
                json!({ "id": order_id }),
                Some(&buyer.token),
            )
            .await;
        assert_eq!(paid.data()["pay"]["status"], "SUCCEEDED");
        self.pump().await;
        order_id
    }
}

pub fn usd(minor: i64) -> Pricing {
    Pricing::OneTime { price: Money::new(minor, Currency::USD) }
}

/// Counts every call to the product store.
struct CountingProducts {
    inner: Arc<dyn ProductRepository>,
    calls: Arc<AtomicUsize>,
    search_delay_ms: Arc<AtomicU64>,
}

impl CountingProducts {
    fn count(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl ProductRepository for CountingProducts {
    async fn insert(&self, product: &Product, events: &[Event]) -> Result<()> {
        self.count();
        self.inner.insert(product, events).await
    }
    async fn insert_many(&self, products: &[(Product, Vec<Event>)]) -> Result<()> {
        self.count();
        self.inner.insert_many(products).await
    }
    async fn update(&self, product: &Product, expected_version: u64, events: &[Event]) -> Result<()> {
        self.count();
        self.inner.update(product, expected_version, events).await
    }
    async fn get(&self, id: ProductId) -> Result<Option<Product>> {
        self.count();
        self.inner.get(id).await
    }
    async fn get_many(&self, ids: &[ProductId]) -> Result<Vec<Product>> {
        self.count();
        self.inner.get_many(ids).await
    }
    async fn list_by_vendor(&self, vendor: UserId, page: PageRequest) -> Result<Page<Product>> {
        self.count();
        self.inner.list_by_vendor(vendor, page).await
    }
    async fn list_searchable(&self, after: Option<ProductId>, limit: u32) -> Result<Vec<Product>> {
        self.count();
        self.inner.list_searchable(after, limit).await
    }
    async fn search(&self, query: &SearchQuery) -> Result<SearchResult> {
        self.count();
        let delay = self.search_delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
        }
        self.inner.search(query).await
    }
    async fn record_download(&self, id: ProductId, events: &[Event]) -> Result<()> {
        self.count();
        self.inner.record_download(id, events).await
    }
}

/// Counts every call to the license store.
struct CountingLicenses {
    inner: Arc<dyn LicenseRepository>,
    calls: Arc<AtomicUsize>,
}

impl CountingLicenses {
    fn count(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl LicenseRepository for CountingLicenses {
    async fn insert(&self, license: &License, events: &[Event]) -> Result<()> {
        self.count();
        self.inner.insert(license, events).await
    }
    async fn insert_all(&self, licenses: &[(License, Vec<Event>)]) -> Result<Vec<Result<()>>> {
        self.count();
        self.inner.insert_all(licenses).await
    }
    async fn get(&self, id: LicenseId) -> Result<Option<License>> {
        self.count();
        self.inner.get(id).await
    }
    async fn get_by_key(&self, key: &str) -> Result<Option<License>> {
        self.count();
        self.inner.get_by_key(key).await
    }
    async fn list_for_buyer(&self, buyer: UserId) -> Result<Vec<License>> {
        self.count();
        self.inner.list_for_buyer(buyer).await
    }
    async fn list_for_buyer_products(&self, buyer: UserId, products: &[ProductId]) -> Result<Vec<License>> {
        self.count();
        self.inner.list_for_buyer_products(buyer, products).await
    }
    async fn list_for_order(&self, order: OrderId) -> Result<Vec<License>> {
        self.count();
        self.inner.list_for_order(order).await
    }
    async fn activate(&self, id: LicenseId, fingerprint: &Fingerprint, now: Timestamp) -> Result<ActivationOutcome> {
        self.count();
        self.inner.activate(id, fingerprint, now).await
    }
    async fn deactivate(&self, id: LicenseId, fingerprint: &Fingerprint, now: Timestamp) -> Result<()> {
        self.count();
        self.inner.deactivate(id, fingerprint, now).await
    }
    async fn update_status(&self, license: &License, expected_version: u64, events: &[Event]) -> Result<()> {
        self.count();
        self.inner.update_status(license, expected_version, events).await
    }
    async fn consume_download(&self, id: LicenseId, now: Timestamp) -> Result<License> {
        self.count();
        self.inner.consume_download(id, now).await
    }
}
