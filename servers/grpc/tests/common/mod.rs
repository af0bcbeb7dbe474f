//! Shared wiring for the gRPC tests: a marketplace in memory (or over any
//! `Stores`) served on `127.0.0.1:0`, the generated clients, users of each
//! role, approved products and paid orders.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bazaar_auth::{Argon2Passwords, JwtTokens};
use bazaar_core::assets::UrlSigner;
use bazaar_core::auth::{AccessToken, Actor, Email, Role, Signup, TokenIssuer};
use bazaar_core::catalog::{BillingInterval, NewProduct, Pricing, Product, ProductKind};
use bazaar_core::clock::{Clock, ManualClock};
use bazaar_core::entropy::{Entropy, OsEntropy};
use bazaar_core::licensing::{License, LicenseSigner};
use bazaar_core::marketplace::{Marketplace, Ports, SigningKeys};
use bazaar_core::money::{Currency, Money};
use bazaar_core::orders::{Order, PlaceOrder};
use bazaar_grpc::pb::catalog_service_client::CatalogServiceClient;
use bazaar_grpc::pb::licensing_service_client::LicensingServiceClient;
use bazaar_grpc::pb::notification_service_client::NotificationServiceClient;
use bazaar_grpc::pb::order_service_client::OrderServiceClient;
use bazaar_grpc::{ServeOptions, serve_with};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Status};
use tonic_types::StatusExt;

/// The instant every test world starts at.
pub const EPOCH: i64 = 1_700_000_000;

/// A running server over a marketplace.
pub struct World {
    pub market: Arc<Marketplace>,
    pub clock: Arc<ManualClock>,
    pub setup: Setup,
    pub addr: SocketAddr,
    pub channel: Channel,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<Result<(), tonic::transport::Error>>>,
}

/// A signed-in user.
#[derive(Debug, Clone)]
pub struct User {
    pub actor: Actor,
    pub token: String,
}

/// What a test may need of a marketplace besides its services: the
/// license signing seed, the token issuer and the ports.
#[derive(Clone)]
pub struct Setup {
    pub license_seed: [u8; 32],
    pub tokens: Arc<JwtTokens>,
    pub ports: Ports,
}

impl Setup {
    /// A token for `actor` signed with this marketplace's key.
    pub fn token(&self, actor: Actor, now: bazaar_core::clock::Timestamp) -> AccessToken {
        self.tokens.issue(actor, now, now + chrono::Duration::minutes(15)).expect("token")
    }
}

/// Every port in memory.
pub fn memory(clock: Arc<dyn Clock>) -> Ports {
    bazaar_memory::MemoryBackend::new(clock).ports()
}

/// A marketplace on a manual clock over `ports` (built from that clock).
pub fn market(ports: impl FnOnce(Arc<dyn Clock>) -> Ports) -> (Arc<Marketplace>, Arc<ManualClock>, Setup) {
    let clock = Arc::new(ManualClock::at_epoch_secs(EPOCH));
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    let setup = Setup {
        license_seed: OsEntropy.bytes32(),
        tokens: Arc::new(JwtTokens::new(OsEntropy.bytes32())),
        ports: ports(dyn_clock.clone()),
    };
    let keys = SigningKeys {
        license: LicenseSigner::from_seed(&setup.license_seed),
        urls: UrlSigner::generate(&OsEntropy),
        webhook_secret: b"whsec_test".to_vec(),
    };
    let market = Marketplace::builder(setup.ports.clone())
        .clock(dyn_clock)
        .keys(keys)
        .passwords(Arc::new(Argon2Passwords::fast_for_tests()))
        .tokens(setup.tokens.clone())
        .build()
        .expect("every port is set");
    (Arc::new(market), clock, setup)
}

/// Options for tests: health re-checked every 50 ms.
pub fn fast_options() -> ServeOptions {
    ServeOptions { health_interval: Duration::from_millis(50), ..ServeOptions::default() }
}

impl World {
    /// A fresh in-memory marketplace, served.
    pub async fn start() -> Self {
        let (market, clock, setup) = market(memory);
        Self::serve(market, clock, setup).await
    }

    /// Serves `market` on a fresh loopback port.
    pub async fn serve(market: Arc<Marketplace>, clock: Arc<ManualClock>, setup: Setup) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(serve_with(listener, market.clone(), fast_options(), async move {
            let _ = stopped.await;
        }));
        let channel = Endpoint::from_shared(format!("http://{addr}")).expect("uri").connect_lazy();
        Self { market, clock, setup, addr, channel, stop: Some(stop), server: Some(server) }
    }

    /// Stops the server and waits for it to finish.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task").expect("server ran cleanly");
        }
    }

    pub fn licensing(&self) -> LicensingServiceClient<Channel> {
        LicensingServiceClient::new(self.channel.clone())
    }

    pub fn catalog(&self) -> CatalogServiceClient<Channel> {
        CatalogServiceClient::new(self.channel.clone())
    }

    pub fn orders(&self) -> OrderServiceClient<Channel> {
        OrderServiceClient::new(self.channel.clone())
    }

    pub fn notifications(&self) -> NotificationServiceClient<Channel> {
        NotificationServiceClient::new(self.channel.clone())
    }

    /// Registers a user in `role` and signs them in.
    pub async fn user(&self, role: Role) -> User {
        let email = Email::parse(&format!("{}-{}@example.com", role.as_str(), uuid::Uuid::now_v7())).unwrap();
        let user = if role == Role::Admin {
            self.market.auth.ensure_admin(&email, "password123").await.expect("admin")
        } else {
            let signup = Signup {
                email: email.as_str().into(),
                password: "password123".into(),
                name: role.as_str().into(),
                role,
            };
            self.market.auth.register(signup).await.expect("register").user
        };
        let token = self.setup.token(Actor::new(user.id, role), self.market.clock.now()).token;
        User { actor: Actor::new(user.id, role), token }
    }

    /// A product created by `vendor`, submitted and approved.
    pub async fn approved_product(&self, vendor: &User, title: &str, pricing: Pricing) -> Product {
        self.product(vendor, title, ProductKind::AiAgent, &["sales"], &[], pricing, true).await
    }

    /// A product with every searchable attribute chosen; approved if `approve`.
    #[allow(clippy::too_many_arguments)]
    pub async fn product(
        &self,
        vendor: &User,
        title: &str,
        kind: ProductKind,
        categories: &[&str],
        tags: &[&str],
        pricing: Pricing,
        approve: bool,
    ) -> Product {
        let input = NewProduct {
            title: title.into(),
            description: format!("{title}, described."),
            short_description: String::new(),
            kind,
            categories: categories.iter().map(|c| (*c).to_owned()).collect(),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            pricing,
            media: Vec::new(),
        };
        let catalog = &self.market.catalog;
        let product = catalog.create(&vendor.actor, input).await.expect("create product");
        // Each product one second newer than the last, so "newest first" is deterministic.
        self.clock.advance(chrono::Duration::seconds(1));
        if !approve {
            return product;
        }
        catalog.submit(&vendor.actor, product.id).await.expect("submit");
        let admin = self.user(Role::Admin).await;
        catalog.approve(&admin.actor, product.id).await.expect("approve")
    }

    /// `buyer` buys `products` and pays with the sandbox's good card; the
    /// events are pumped, so the order is fulfilled and licensed.
    pub async fn buy(&self, buyer: &User, products: &[&Product]) -> (Order, Vec<License>) {
        let request = PlaceOrder::new(products.iter().map(|p| p.id));
        let order = self.market.orders.place(&buyer.actor, request, None).await.expect("place order");
        if !order.is_free() {
            self.market.orders.pay(&buyer.actor, order.id, "pm_card_visa").await.expect("pay");
        }
        self.market.pump().await.expect("pump");
        let order = self.market.orders.get(&buyer.actor, order.id).await.expect("order");
        let licenses: Vec<License> = self
            .market
            .licenses
            .list_mine(&buyer.actor, bazaar_core::catalog::PageRequest::new(1, 100).unwrap())
            .await
            .expect("licenses")
            .items
            .into_iter()
            .filter(|l| l.order_id == order.id)
            .collect();
        assert_eq!(licenses.len(), products.len(), "one license per line");
        (order, licenses)
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A one-time price in USD.
pub fn usd(minor: i64) -> Pricing {
    Pricing::OneTime { price: Money::new(minor, Currency::USD) }
}

/// A monthly subscription in USD.
pub fn monthly(minor: i64) -> Pricing {
    Pricing::Subscription { price: Money::new(minor, Currency::USD), interval: BillingInterval::Monthly }
}

/// `message` with `authorization: Bearer <token>`.
pub fn authed<T>(message: T, token: &str) -> Request<T> {
    with_header(message, &format!("Bearer {token}"))
}

/// `message` with a raw `authorization` value.
pub fn with_header<T>(message: T, authorization: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert("authorization", authorization.parse().expect("ascii metadata"));
    request
}

/// Asserts the status code and the `ErrorInfo` reason; returns the status.
#[track_caller]
pub fn expect_status<T: std::fmt::Debug>(result: Result<T, Status>, code: Code, reason: &str) -> Status {
    let status = match result {
        Ok(v) => panic!("expected {code:?} ({reason}), got Ok({v:?})"),
        Err(s) => s,
    };
    assert_eq!(status.code(), code, "{status:?}");
    let info = status.get_details_error_info().unwrap_or_else(|| panic!("no ErrorInfo in {status:?}"));
    assert_eq!(info.reason, reason, "{status:?}");
    assert_eq!(info.domain, "bazaar");
    status
}

/// The `BadRequest` field names of an `INVALID_ARGUMENT` status.
#[track_caller]
pub fn bad_fields(status: &Status) -> Vec<String> {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let bad = status.get_details_bad_request().unwrap_or_else(|| panic!("no BadRequest in {status:?}"));
    bad.field_violations.into_iter().map(|v| v.field).collect()
}
