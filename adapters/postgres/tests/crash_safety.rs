//! Crash safety: a unit of work that dies after its state write and before
//! its commit (an injected fault; the transaction is dropped as a crash
//! would leave it) leaves neither the state change nor its outbox rows.

mod common;

use bazaar_core::auth::{Email, Role, User, UserRepository};
use bazaar_core::catalog::{NewProduct, Pricing, Product, ProductKind, ProductRepository, ProductStatus, SearchQuery};
use bazaar_core::events::{Event, OrderFulfilled, UserRegistered};
use bazaar_core::ids::{OrderId, ProductId, UserId};
use bazaar_core::money::{Currency, Money};
use bazaar_core::orders::{Order, OrderRepository, OrderStatus};
use common::fresh;

fn t0() -> bazaar_core::clock::Timestamp {
    chrono::DateTime::from_timestamp(1_700_000_000, 0).expect("in range")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_insert_leaves_no_row_and_no_event() {
    let db = fresh().await;
    let users = db.store.users();
    let ada = User {
        id: UserId::new(),
        email: Email::parse("ada@example.com").unwrap(),
        name: "Ada".into(),
        role: Role::Vendor,
        password_hash: "$argon2id$x".into(),
        created_at: t0(),
    };
    let registered = Event::new(&UserRegistered { user_id: ada.id, role: "vendor".into() }, t0());

    db.store.fail_next_commit();
    let err = users.insert(&ada, std::slice::from_ref(&registered)).await.expect_err("the fault fails the insert");
    assert_eq!(err.code(), "unavailable");
    assert_eq!(users.get(ada.id).await.unwrap(), None, "no user row");
    assert!(db.store.outbox().events().await.unwrap().is_empty(), "no outbox row");

    // The database is intact: the same unit of work succeeds afterwards.
    users.insert(&ada, std::slice::from_ref(&registered)).await.expect("retry");
    assert_eq!(users.get(ada.id).await.unwrap(), Some(ada));
    assert_eq!(db.store.outbox().events().await.unwrap(), vec![registered]);
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_transition_keeps_the_old_status_and_emits_nothing() {
    let db = fresh().await;
    let orders = db.store.orders();
    let order = Order {
        id: OrderId::new(),
        buyer_id: UserId::new(),
        lines: vec![],
        total: Money::new(0, Currency::USD),
        status: OrderStatus::Paid,
        created_at: t0(),
        updated_at: t0(),
    };
    orders.insert(&order, &[]).await.unwrap();
    let fulfilled =
        Event::new(&OrderFulfilled { order_id: order.id, buyer_id: order.buyer_id, license_ids: vec![] }, t0());

    db.store.fail_next_commit();
    orders
        .transition(order.id, OrderStatus::Paid, OrderStatus::Fulfilled, t0(), std::slice::from_ref(&fulfilled))
        .await
        .expect_err("the fault fails the transition");
    assert_eq!(orders.get(order.id).await.unwrap().unwrap().status, OrderStatus::Paid);
    assert!(db.store.outbox().events().await.unwrap().is_empty());

    // The compare-and-set still works from the old status.
    orders.transition(order.id, OrderStatus::Paid, OrderStatus::Fulfilled, t0(), &[fulfilled]).await.unwrap();
    assert_eq!(db.store.outbox().events().await.unwrap().len(), 1);
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_product_insert_leaves_no_search_index_entry() {
    let db = fresh().await;
    let products = db.store.products();
    let input = NewProduct {
        title: "Crash test agent".into(),
        description: "Never committed.".into(),
        short_description: String::new(),
        kind: ProductKind::AiAgent,
        categories: vec!["testing".into()],
        tags: vec!["crash".into()],
        pricing: Pricing::Free,
        media: vec![],
    };
    let mut p = Product::create(ProductId::new(), UserId::new(), input, t0()).unwrap();
    p.status = ProductStatus::Approved;

    db.store.fail_next_commit();
    products.insert(&p, &[]).await.expect_err("the fault fails the insert");
    assert_eq!(products.get(p.id).await.unwrap(), None);
    let found = products.search(&SearchQuery::default()).await.unwrap();
    assert_eq!((found.total, found.facets.categories.len()), (0, 0), "no product, category or text row");

    products.insert(&p, &[]).await.expect("retry");
    assert_eq!(products.search(&SearchQuery::default()).await.unwrap().total, 1);
    db.drop_schema().await;
}
