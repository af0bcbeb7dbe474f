//! Who may do what: the same bearer JWT and the same authorization as REST.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::json;

use crate::common::{TestApp, usd};

const ORDER: &str = "query($id: ID!) { order(id: $id) { id buyerId status lines { title } } }";

#[tokio::test]
async fn caller_fields_need_a_token() {
    let app = TestApp::new();
    for field in ["me { id }", "myOrders { totalCount }", "myLicenses { totalCount }", "myNotifications { totalCount }"]
    {
        let reply = app.gql(&format!("{{ {field} }}"), json!({}), None).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.code(), "unauthenticated", "{field}: {}", reply.json);
    }
    let reply =
        app.gql("mutation { pay(orderId: \"x\", paymentMethod: \"pm_card_visa\") { id } }", json!({}), None).await;
    assert_eq!(reply.code(), "unauthenticated");
}

#[tokio::test]
async fn a_bad_token_refuses_the_whole_request_with_401() {
    let app = TestApp::new();
    let reply = app.gql("{ search { totalCount } }", json!({}), Some("not-a-jwt")).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.code(), "unauthenticated");
    assert!(reply.json.get("data").is_none_or(serde_json::Value::is_null), "{}", reply.json);

    let request = Request::post("/graphql")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, "Basic dXNlcjpwYXNz")
        .body(Body::from(json!({ "query": "{ search { totalCount } }" }).to_string()))
        .unwrap();
    let reply = app.call(&app.router(), request).await;
    assert_eq!((reply.status, reply.code().as_str()), (StatusCode::UNAUTHORIZED, "unauthenticated"));

    // An expired token, as the core's verifier decides.
    let customer = app.register("customer").await;
    app.clock.advance(chrono::Duration::hours(2));
    let reply = app.gql("{ me { id } }", json!({}), Some(&customer.token)).await;
    assert_eq!((reply.status, reply.code().as_str()), (StatusCode::UNAUTHORIZED, "unauthenticated"));
}

#[tokio::test]
async fn orders_are_visible_to_their_buyer_and_admins_only() {
    let app = TestApp::new();
    let (vendor, admin, buyer, other) = (
        app.register("vendor").await,
        app.admin().await,
        app.register("customer").await,
        app.register("customer").await,
    );
    let product = app.approved(&vendor, &admin, "Agent", usd(1_000)).await;
    let order = app.buy(&buyer, &[&product]).await;
    let vars = json!({ "id": order });

    let mine = app.gql(ORDER, vars.clone(), Some(&buyer.token)).await;
    assert_eq!(mine.data()["order"]["buyerId"], buyer.user_id.as_str());
    assert_eq!(app.gql(ORDER, vars.clone(), Some(&other.token)).await.code(), "forbidden");
    assert_eq!(app.gql(ORDER, vars.clone(), Some(&vendor.token)).await.code(), "forbidden");
    assert_eq!(app.gql(ORDER, vars.clone(), Some(&admin.token)).await.data()["order"]["id"], order.as_str());
    assert_eq!(app.gql(ORDER, vars, None).await.code(), "unauthenticated");

    // Not in anyone else's lists either.
    let theirs = app.gql("{ myOrders { totalCount } myLicenses { totalCount } }", json!({}), Some(&other.token)).await;
    assert_eq!(theirs.data()["myOrders"]["totalCount"], 0);
    assert_eq!(theirs.data()["myLicenses"]["totalCount"], 0);

    // An admin reading the order sees its licenses (the core lets admins view them).
    let q = "query($id: ID!) { order(id: $id) { licenses { buyerId status } } }";
    let seen = app.gql(q, json!({ "id": order }), Some(&admin.token)).await;
    assert_eq!(seen.data()["order"]["licenses"][0]["buyerId"], buyer.user_id.as_str());

    let unknown = app.gql(ORDER, json!({ "id": uuid::Uuid::now_v7().to_string() }), Some(&buyer.token)).await;
    assert_eq!(unknown.code(), "not_found");
}

#[tokio::test]
async fn only_the_buyer_pays_and_vendors_cannot_buy_their_own() {
    let app = TestApp::new();
    let (vendor, admin, buyer, other) = (
        app.register("vendor").await,
        app.admin().await,
        app.register("customer").await,
        app.register("customer").await,
    );
    let product = app.approved(&vendor, &admin, "Agent", usd(1_000)).await;
    let placed = app
        .gql(
            "mutation($ids: [ID!]!) { placeOrder(productIds: $ids) { order { id } } }",
            json!({ "ids": [product.id.to_string()] }),
            Some(&buyer.token),
        )
        .await;
    let order = placed.data()["placeOrder"]["order"]["id"].as_str().unwrap().to_owned();
    let pay = "mutation($id: ID!) { pay(orderId: $id, paymentMethod: \"pm_card_visa\") { status } }";
    assert_eq!(app.gql(pay, json!({ "id": order }), Some(&other.token)).await.code(), "forbidden");

    let own = app
        .gql(
            "mutation($ids: [ID!]!) { placeOrder(productIds: $ids) { order { id } } }",
            json!({ "ids": [product.id.to_string()] }),
            Some(&vendor.token),
        )
        .await;
    assert_eq!(own.code(), "validation", "{}", own.json);
    assert_eq!(own.json["errors"][0]["extensions"]["details"][0]["field"], "productIds[0]");
}
