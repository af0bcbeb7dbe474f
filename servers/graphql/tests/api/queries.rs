//! Queries: product, search with facets and cursors, me, order, myOrders,
//! myLicenses, myNotifications.

use bazaar_core::catalog::Pricing;
use serde_json::json;

use crate::common::{TestApp, usd};

#[tokio::test]
async fn product_is_visible_by_status_and_role() {
    let app = TestApp::new();
    let (vendor, admin) = (app.register("vendor").await, app.admin().await);
    let live = app.approved(&vendor, &admin, "Inbox triage agent", usd(4_900)).await;
    let q = "query($id: ID!) { product(id: $id) { id title status pricing { type price { minor currency } } stats { rating downloads } } }";

    let reply = app.gql(q, json!({ "id": live.id.to_string() }), None).await;
    let product = &reply.data()["product"];
    assert_eq!(product["title"], "Inbox triage agent");
    assert_eq!(product["status"], "APPROVED");
    assert_eq!(product["pricing"], json!({ "type": "ONE_TIME", "price": { "minor": 4900, "currency": "USD" } }));

    // A draft exists only for its vendor and admins.
    let draft = app
        .market
        .catalog
        .create(
            &vendor.actor,
            bazaar_core::catalog::NewProduct {
                title: "Secret draft".into(),
                description: String::new(),
                short_description: String::new(),
                kind: bazaar_core::catalog::ProductKind::N8nWorkflow,
                categories: vec!["ops".into()],
                tags: vec![],
                pricing: Pricing::Free,
                media: vec![],
            },
        )
        .await
        .unwrap();
    let vars = json!({ "id": draft.id.to_string() });
    assert_eq!(app.gql(q, vars.clone(), None).await.code(), "not_found");
    let customer = app.register("customer").await;
    assert_eq!(app.gql(q, vars.clone(), Some(&customer.token)).await.code(), "not_found");
    assert_eq!(app.gql(q, vars.clone(), Some(&vendor.token)).await.data()["product"]["status"], "DRAFT");
    let kind = "query($id: ID!) { product(id: $id) { kind } }";
    let n8n = app.gql(kind, vars.clone(), Some(&vendor.token)).await;
    assert_eq!(n8n.data()["product"]["kind"], "N8N_WORKFLOW", "digits stay in the enum value's word");
    assert_eq!(app.gql(q, vars, Some(&admin.token)).await.data()["product"]["title"], "Secret draft");

    // An id that does not parse names nothing, as a REST path.
    assert_eq!(app.gql(q, json!({ "id": "nope" }), None).await.code(), "not_found");
}

#[tokio::test]
async fn search_filters_facets_and_walks_pages_by_cursor() {
    let app = TestApp::new();
    let (vendor, admin) = (app.register("vendor").await, app.admin().await);
    for (i, price) in [1_000, 2_000, 3_000, 4_000, 5_000].into_iter().enumerate() {
        app.approved(&vendor, &admin, &format!("Email agent {i}"), usd(price)).await;
    }
    app.approved(&vendor, &admin, "Free helper", Pricing::Free).await;
    let q = "query($after: String, $first: Int) {
        search(query: \"agent\", sort: PRICE_ASC, first: $first, after: $after) {
            totalCount nextCursor items { title pricing { price { minor } } }
            facets { categories { value count } kinds { value count } }
        } }";

    let first = app.gql(q, json!({ "first": 2 }), None).await;
    let page = &first.data()["search"];
    assert_eq!(page["totalCount"], 5, "the free helper does not match `agent`");
    assert_eq!(page["items"][0]["pricing"]["price"]["minor"], 1000);
    assert_eq!(page["facets"]["kinds"], json!([{ "value": "ai_agent", "count": 5 }]));
    assert_eq!(page["facets"]["categories"], json!([{ "value": "support", "count": 5 }]));

    let mut seen = vec![];
    let mut after = page["nextCursor"].as_str().map(str::to_owned);
    seen.extend(page["items"].as_array().unwrap().iter().map(|i| i["title"].clone()));
    while let Some(cursor) = after {
        let next = app.gql(q, json!({ "after": cursor }), None).await;
        let page = &next.data()["search"];
        seen.extend(page["items"].as_array().unwrap().iter().map(|i| i["title"].clone()));
        after = page["nextCursor"].as_str().map(str::to_owned);
    }
    let titles: Vec<String> = (0..5).map(|i| format!("Email agent {i}")).collect();
    assert_eq!(seen, titles, "every match once, cheapest first, across pages");

    // Filters and validation come from the core.
    let cheap = app.gql("{ search(priceMax: 1500) { totalCount } }", json!({}), None).await;
    assert_eq!(cheap.data()["search"]["totalCount"], 2, "the free helper and the 10.00 agent");
    let inverted = app.gql("{ search(priceMin: 500, priceMax: 100) { totalCount } }", json!({}), None).await;
    assert_eq!(inverted.data()["search"]["totalCount"], 0, "an inverted range matches nothing");
    let bad = app.gql("{ search(priceMax: -1) { totalCount } }", json!({}), None).await;
    assert_eq!(bad.code(), "validation");
    assert_eq!(bad.json["errors"][0]["extensions"]["details"][0]["field"], "priceMax", "the argument's name");
    assert_eq!(app.gql("{ search(after: \"garbage\") { totalCount } }", json!({}), None).await.code(), "validation");
}

#[tokio::test]
async fn my_lists_show_the_callers_own_records() {
    let app = TestApp::new();
    let (vendor, admin, buyer, other) = (
        app.register("vendor").await,
        app.admin().await,
        app.register("customer").await,
        app.register("customer").await,
    );
    let a = app.approved(&vendor, &admin, "Agent A", usd(1_500)).await;
    let b = app.approved(&vendor, &admin, "Agent B", usd(2_500)).await;
    let first = app.buy(&buyer, &[&a]).await;
    let second = app.buy(&buyer, &[&b]).await;
    app.buy(&other, &[&a]).await;

    let q = "{ me { id role } myOrders(first: 1) { totalCount nextCursor items { id status total { minor } } }
               myLicenses { totalCount items { productId orderId status kind } }
               myNotifications { totalCount items { template channel } } }";
    let reply = app.gql(q, json!({}), Some(&buyer.token)).await;
    let data = reply.data();
    assert_eq!(data["me"], json!({ "id": buyer.user_id, "role": "CUSTOMER" }));
    assert_eq!(data["myOrders"]["totalCount"], 2);
    assert_eq!(data["myOrders"]["items"][0]["id"], second.as_str(), "newest first");
    assert_eq!(data["myOrders"]["items"][0]["status"], "FULFILLED");
    let next = data["myOrders"]["nextCursor"].as_str().unwrap();
    let rest = app
        .gql(
            "query($c: String) { myOrders(after: $c) { nextCursor items { id } } }",
            json!({ "c": next }),
            Some(&buyer.token),
        )
        .await;
    assert_eq!(rest.data()["myOrders"]["items"][0]["id"], first.as_str());
    assert_eq!(rest.data()["myOrders"]["nextCursor"], serde_json::Value::Null);

    assert_eq!(data["myLicenses"]["totalCount"], 2, "only the buyer's licenses");
    assert_eq!(data["myLicenses"]["items"][0]["status"], "ACTIVE");
    assert_eq!(data["myLicenses"]["items"][0]["kind"], "PERPETUAL");
    let templates: Vec<&str> =
        data["myNotifications"]["items"].as_array().unwrap().iter().map(|n| n["template"].as_str().unwrap()).collect();
    assert!(templates.contains(&"LICENSE_ISSUED") && templates.contains(&"ORDER_PLACED"), "{templates:?}");
}
