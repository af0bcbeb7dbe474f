//! `bazaar.v1.OrderService` over a real loopback connection, with the
//! authentication failures every authenticated call shares.

mod common;

use bazaar_core::auth::{Actor, Role};
use bazaar_core::catalog::Pricing;
use bazaar_core::ids::ProductId;
use bazaar_core::orders::{PlaceOrder, request_hash};
use bazaar_grpc::pb;
use chrono::Duration;
use common::{World, authed, bad_fields, expect_status, usd, with_header};
use tonic::{Code, Request};

fn place(products: &[ProductId], key: &str) -> pb::PlaceOrderRequest {
    pb::PlaceOrderRequest {
        items: products.iter().map(|p| pb::OrderItem { product_id: p.to_string() }).collect(),
        idempotency_key: key.into(),
    }
}

#[tokio::test]
async fn place_order_prices_lines_and_opens_a_payment() {
    let w = World::start().await;
    let vendor = w.user(Role::Vendor).await;
    let buyer = w.user(Role::Customer).await;
    let a = w.approved_product(&vendor, "Agent A", usd(1999)).await;
    let b = w.approved_product(&vendor, "Agent B", usd(1001)).await;
    let mut client = w.orders();

    let order = client.place_order(authed(place(&[a.id, b.id], ""), &buyer.token)).await.unwrap().into_inner();
    let order = order.order.unwrap();
    assert_eq!(order.status(), pb::OrderStatus::PendingPayment);
    assert_eq!(order.buyer_id, buyer.actor.user_id.to_string());
    assert_eq!(order.total, Some(pb::Money { minor: 3000, currency: "USD".into() }));
    assert_eq!(order.lines.len(), 2);
    for (line, product) in order.lines.iter().zip([&a, &b]) {
        assert_eq!(line.product_id, product.id.to_string());
        let (unit, fee, net) =
            (line.unit_price.clone().unwrap(), line.platform_fee.clone().unwrap(), line.vendor_net.clone().unwrap());
        assert_eq!(fee.minor + net.minor, unit.minor, "the split is exact");
        assert_eq!(unit.minor, product.pricing.sort_minor());
    }
    let payment = order.payment.expect("a paid order gets an intent");
    assert_eq!(payment.status(), pb::PaymentStatus::RequiresPaymentMethod);

    // Paid through the core: GetOrder shows the new state and the intent.
    let id = bazaar_core::ids::OrderId::parse("id", &order.id).unwrap();
    w.market.orders.pay(&buyer.actor, id, "pm_card_visa").await.unwrap();
    w.market.pump().await.unwrap();
    let got = client
        .get_order(authed(pb::GetOrderRequest { order_id: order.id.clone() }, &buyer.token))
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    assert_eq!(got.status(), pb::OrderStatus::Fulfilled);
    assert_eq!(got.payment.unwrap().status(), pb::PaymentStatus::Succeeded);

    // Owning a license now, buying again is a duplicate.
    expect_status(client.place_order(authed(place(&[a.id], ""), &buyer.token)).await, Code::AlreadyExists, "CONFLICT");
}

#[tokio::test]
async fn free_orders_are_paid_at_once() {
    let w = World::start().await;
    let vendor = w.user(Role::Vendor).await;
    let buyer = w.user(Role::Customer).await;
    let free = w.approved_product(&vendor, "Free helper", Pricing::Free).await;
    let order = w.orders().place_order(authed(place(&[free.id], ""), &buyer.token)).await.unwrap().into_inner();
    let order = order.order.unwrap();
    assert_eq!(order.status(), pb::OrderStatus::Paid);
    assert_eq!(order.total.unwrap().minor, 0);
    assert_eq!(order.payment.unwrap().status(), pb::PaymentStatus::Succeeded);
}

#[tokio::test]
async fn place_order_is_idempotent_per_key() {
    let w = World::start().await;
    let vendor = w.user(Role::Vendor).await;
    let buyer = w.user(Role::Customer).await;
    let other = w.user(Role::Customer).await;
    let a = w.approved_product(&vendor, "Agent A", usd(500)).await;
    let b = w.approved_product(&vendor, "Agent B", usd(700)).await;
    let mut client = w.orders();

    let first = client.place_order(authed(place(&[a.id], "key-1"), &buyer.token)).await.unwrap().into_inner();
    let again = client.place_order(authed(place(&[a.id], "key-1"), &buyer.token)).await.unwrap().into_inner();
    let (first, again) = (first.order.unwrap(), again.order.unwrap());
    assert_eq!(first.id, again.id, "the same key and request answer the first order");
    assert_eq!(first, again);
    let (orders, total) = w.setup.ports.orders.list_for_buyer(buyer.actor.user_id, 1, 10).await.unwrap();
    assert_eq!((orders.len(), total), (1, 1), "exactly one order was placed");

    // The same key with another request.
    let s = expect_status(
        client.place_order(authed(place(&[b.id], "key-1"), &buyer.token)).await,
        Code::FailedPrecondition,
        "IDEMPOTENCY_MISMATCH",
    );
    assert!(s.message().contains("different request"), "{}", s.message());

    // Keys are scoped to the buyer: another buyer's "key-1" is theirs.
    let theirs = client.place_order(authed(place(&[a.id], "key-1"), &other.token)).await.unwrap().into_inner();
    assert_ne!(theirs.order.unwrap().id, first.id);

    // A key whose first request is still running.
    let request = PlaceOrder::new([b.id]);
    let started = w
        .setup
        .ports
        .idempotency
        .begin(
            &bazaar_core::orders::IdempotencyClaim::new(buyer.actor.user_id.to_string(), "key-2"),
            &request_hash(&request).unwrap(),
            w.market.clock.now(),
            bazaar_core::orders::IdempotencyTerms::default(),
        )
        .await
        .unwrap();
    assert_eq!(started, bazaar_core::orders::IdempotencyBegin::Started);
    expect_status(client.place_order(authed(place(&[b.id], "key-2"), &buyer.token)).await, Code::Aborted, "CONFLICT");

    let s = expect_status(
        client.place_order(authed(place(&[b.id], "bad key with spaces"), &buyer.token)).await,
        Code::InvalidArgument,
        "VALIDATION",
    );
    assert_eq!(bad_fields(&s), ["idempotency_key"]);
}

#[tokio::test]
async fn bad_orders_name_the_items() {
    let w = World::start().await;
    let vendor = w.user(Role::Vendor).await;
    let buyer = w.user(Role::Customer).await;
    let a = w.approved_product(&vendor, "Agent A", usd(500)).await;
    let mut client = w.orders();

    let s = expect_status(
        client.place_order(authed(place(&[], ""), &buyer.token)).await,
        Code::InvalidArgument,
        "VALIDATION",
    );
    assert_eq!(bad_fields(&s), ["items"]);
    let mut garbled = place(&[a.id], "");
    garbled.items.push(pb::OrderItem { product_id: "zzz".into() });
    let s = expect_status(client.place_order(authed(garbled, &buyer.token)).await, Code::InvalidArgument, "VALIDATION");
    assert_eq!(bad_fields(&s), ["items[1].product_id"]);
    let s = expect_status(
        client.place_order(authed(place(&[a.id, a.id, ProductId::new()], ""), &buyer.token)).await,
        Code::InvalidArgument,
        "VALIDATION",
    );
    assert_eq!(bad_fields(&s), ["items[1].product_id"], "repeats are found before lookups");
    let s = expect_status(
        client.place_order(authed(place(&[ProductId::new()], ""), &buyer.token)).await,
        Code::InvalidArgument,
        "VALIDATION",
    );
    assert_eq!(bad_fields(&s), ["items[0].product_id"]);
    // A vendor cannot buy their own product.
    let s = expect_status(
        client.place_order(authed(place(&[a.id], ""), &vendor.token)).await,
        Code::InvalidArgument,
        "VALIDATION",
    );
    assert!(s.message().contains("your own product"), "{}", s.message());
}

#[tokio::test]
async fn get_order_is_for_the_buyer_and_admins() {
    let w = World::start().await;
    let vendor = w.user(Role::Vendor).await;
    let buyer = w.user(Role::Customer).await;
    let stranger = w.user(Role::Customer).await;
    let admin = w.user(Role::Admin).await;
    let a = w.approved_product(&vendor, "Agent A", usd(500)).await;
    let (order, _) = w.buy(&buyer, &[&a]).await;
    let mut client = w.orders();
    let get = |token: &str| authed(pb::GetOrderRequest { order_id: order.id.to_string() }, token);

    let got = client.get_order(get(&buyer.token)).await.unwrap().into_inner().order.unwrap();
    assert_eq!((got.id.clone(), got.status()), (order.id.to_string(), pb::OrderStatus::Fulfilled));
    assert_eq!(got.created_at.unwrap().seconds, order.created_at.timestamp());
    assert!(client.get_order(get(&admin.token)).await.is_ok());
    expect_status(client.get_order(get(&stranger.token)).await, Code::PermissionDenied, "FORBIDDEN");
    expect_status(
        client
            .get_order(authed(pb::GetOrderRequest { order_id: uuid::Uuid::now_v7().to_string() }, &buyer.token))
            .await,
        Code::NotFound,
        "NOT_FOUND",
    );
    let s = expect_status(
        client.get_order(authed(pb::GetOrderRequest { order_id: String::new() }, &buyer.token)).await,
        Code::InvalidArgument,
        "VALIDATION",
    );
    assert_eq!(bad_fields(&s), ["order_id"]);
}

#[tokio::test]
async fn authentication_failures_are_unauthenticated() {
    let w = World::start().await;
    let buyer = w.user(Role::Customer).await;
    let mut client = w.orders();
    let req = || pb::GetOrderRequest { order_id: uuid::Uuid::now_v7().to_string() };

    let s = expect_status(client.get_order(Request::new(req())).await, Code::Unauthenticated, "UNAUTHENTICATED");
    assert!(s.message().contains("missing bearer token"), "{}", s.message());
    for header in ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "token-without-scheme", "Bearer not.a.jwt"] {
        expect_status(client.get_order(with_header(req(), header)).await, Code::Unauthenticated, "UNAUTHENTICATED");
    }
    // A token signed with another key.
    let (_, _, other) = common::market(common::memory);
    let forged = other.token(Actor::new(buyer.actor.user_id, Role::Admin), w.market.clock.now()).token;
    expect_status(client.get_order(authed(req(), &forged)).await, Code::Unauthenticated, "UNAUTHENTICATED");
    // The scheme is case-insensitive: a good token in lower case reaches the handler (NOT_FOUND).
    expect_status(
        client.get_order(with_header(req(), &format!("bearer {}", buyer.token))).await,
        Code::NotFound,
        "NOT_FOUND",
    );
    // Expired on the marketplace's clock.
    w.clock.advance(Duration::minutes(16));
    let s =
        expect_status(client.get_order(authed(req(), &buyer.token)).await, Code::Unauthenticated, "UNAUTHENTICATED");
    assert!(s.message().contains("expired"), "{}", s.message());
    // The same expired token is refused by every authenticated service.
    expect_status(
        w.notifications().list_notifications(authed(pb::ListNotificationsRequest::default(), &buyer.token)).await,
        Code::Unauthenticated,
        "UNAUTHENTICATED",
    );
    expect_status(
        w.licensing()
            .get_license(authed(pb::GetLicenseRequest { license_id: uuid::Uuid::now_v7().to_string() }, &buyer.token))
            .await,
        Code::Unauthenticated,
        "UNAUTHENTICATED",
    );
}
