//! Handler tests of the catalog routes: create, read, edit with `If-Match`,
//! submit, moderation, search and reviews, with every role.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use bazaar_core::auth::{Actor, Role};
use bazaar_core::ids::{ProductId, UserId};
use bazaar_core::orders::PlaceOrder;
use common::{Reply, Session, TestApp, error_code};
use serde_json::{Value, json};

fn product_body(title: &str) -> Value {
    json!({
        "title": title,
        "description": "Sorts your e-mail into folders.",
        "short_description": "Sorts e-mail",
        "kind": "ai_agent",
        "categories": ["email", "productivity"],
        "tags": ["gmail"],
        "pricing": {"type": "one_time", "price": {"minor": 1999, "currency": "USD"}},
        "media": [{"kind": "image", "url": "https://cdn.example.com/a.png"}]
    })
}

async fn create(app: &TestApp, vendor: &Session, body: Value) -> Reply {
    app.send("POST", "/v1/products", Some(&vendor.token), Some(body)).await
}

/// A draft of `vendor`; returns its id.
async fn draft(app: &TestApp, vendor: &Session, title: &str) -> String {
    let r = create(app, vendor, product_body(title)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    r.json["id"].as_str().unwrap().to_owned()
}

/// An approved product of `vendor`; returns its id.
async fn approved(app: &TestApp, vendor: &Session, admin: &Session, body: Value) -> String {
    let r = create(app, vendor, body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    let id = r.json["id"].as_str().unwrap().to_owned();
    let r = app.send("POST", &format!("/v1/products/{id}/submit"), Some(&vendor.token), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let r = app.send("POST", &format!("/v1/products/{id}/approve"), Some(&admin.token), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    id
}

/// A PATCH with an optional `If-Match`.
async fn patch(app: &TestApp, id: &str, who: &Session, if_match: Option<&str>, body: Value) -> Reply {
    let mut req = Request::builder()
        .method("PATCH")
        .uri(format!("/v1/products/{id}"))
        .header(header::AUTHORIZATION, format!("Bearer {}", who.token))
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(v) = if_match {
        req = req.header(header::IF_MATCH, v);
    }
    app.call(req.body(Body::from(body.to_string())).unwrap()).await
}

fn fields(reply: &Reply) -> Vec<String> {
    reply.json["error"]["details"]
        .as_array()
        .unwrap_or_else(|| panic!("no details: {}", reply.json))
        .iter()
        .map(|f| f["field"].as_str().unwrap().to_owned())
        .collect()
}

fn status(reply: &Reply) -> (StatusCode, String) {
    (reply.status, error_code(reply))
}

#[tokio::test]
async fn vendors_create_drafts_in_the_wire_shape() {
    let app = TestApp::new();
    let vendor = app.register("vendor").await;
    let r = create(&app, &vendor, product_body("Inbox triage agent")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    assert_eq!(r.headers[header::ETAG], "\"1\"");
    let p = &r.json;
    assert_eq!(p["status"], "draft");
    assert_eq!(p["version"], 1);
    assert_eq!(p["vendor_id"], vendor.user_id.as_str());
    assert_eq!(p["kind"], "ai_agent");
    assert_eq!(p["pricing"], json!({"type": "one_time", "price": {"minor": 1999, "currency": "USD"}}));
    assert_eq!(p["media"][0], json!({"kind": "image", "url": "https://cdn.example.com/a.png"}));
    assert_eq!(p["stats"]["downloads"], 0);
    assert!(p["created_at"].as_str().unwrap().starts_with("2023-11-14T22:13:20"), "RFC 3339: {}", p["created_at"]);
}

#[tokio::test]
async fn only_signed_in_vendors_create_products() {
    let app = TestApp::new();
    let r = app.send("POST", "/v1/products", None, Some(product_body("Nope"))).await;
    assert_eq!(status(&r), (StatusCode::UNAUTHORIZED, "unauthenticated".into()));
    let customer = app.register("customer").await;
    let r = create(&app, &customer, product_body("Not a vendor")).await;
    assert_eq!(status(&r), (StatusCode::FORBIDDEN, "forbidden".into()));
}

#[tokio::test]
async fn invalid_products_name_every_field() {
    let app = TestApp::new();
    let vendor = app.register("vendor").await;
    let mut body = product_body("ab");
    body["categories"] = json!(["Not A Slug"]);
    body["pricing"] = json!({"type": "one_time", "price": {"minor": 0, "currency": "USD"}});
    body["media"] = json!([{"kind": "image", "url": "http://insecure.example.com"}]);
    let r = create(&app, &vendor, body).await;
    assert_eq!(status(&r), (StatusCode::UNPROCESSABLE_ENTITY, "validation".into()));
    assert_eq!(fields(&r), ["title", "categories[0]", "pricing.price.minor", "media[0].url"]);

    // Shape errors name the path too.
    let mut body = product_body("Fine title");
    body["pricing"] = json!({"type": "lease"});
    let r = create(&app, &vendor, body).await;
    assert_eq!(status(&r), (StatusCode::UNPROCESSABLE_ENTITY, "validation".into()));
    assert_eq!(fields(&r), ["pricing.type"]);
    let mut body = product_body("Fine title");
    body["pricing"]["price"]["currency"] = json!("XYZ");
    let r = create(&app, &vendor, body).await;
    // Tagged unions are buffered by serde, so the path stops at the union;
    // the message still says what is wrong inside it.
    assert_eq!(fields(&r), ["pricing"]);
    let message = r.json["error"]["details"][0]["message"].as_str().unwrap();
    assert!(message.contains("currency"), "{message}");
    let mut body = product_body("Fine title");
    body["status"] = json!("approved");
    let r = create(&app, &vendor, body).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "a client cannot set its own status");
    // A free product carries no price: one sent with it is refused, not dropped.
    let mut body = product_body("Fine title");
    body["pricing"] = json!({"type": "free", "price": {"minor": 900, "currency": "USD"}});
    let r = create(&app, &vendor, body).await;
    assert_eq!(status(&r), (StatusCode::UNPROCESSABLE_ENTITY, "validation".into()));
    let message = r.json["error"]["details"][0]["message"].as_str().unwrap();
    assert!(message.contains("price"), "{message}");
}

#[tokio::test]
async fn drafts_are_visible_to_their_vendor_and_admins_only() {
    let app = TestApp::new();
    let (vendor, other, admin) = (app.register("vendor").await, app.register("vendor").await, app.admin().await);
    let id = draft(&app, &vendor, "Secret draft").await;
    let uri = format!("/v1/products/{id}");
    let r = app.send("GET", &uri, Some(&vendor.token), None).await;
    assert_eq!((r.status, r.headers[header::ETAG].to_str().unwrap()), (StatusCode::OK, "\"1\""));
    assert_eq!(app.send("GET", &uri, Some(&admin.token), None).await.status, StatusCode::OK);
    for token in [Some(other.token.as_str()), None] {
        let r = app.send("GET", &uri, token, None).await;
        assert_eq!(status(&r), (StatusCode::NOT_FOUND, "not_found".into()));
    }
    let r = app.send("GET", &uri, Some("forged"), None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "a bad token is an error, not anonymity");
    let r = app.send("GET", &format!("/v1/products/{}", uuid::Uuid::now_v7()), None, None).await;
    assert_eq!(status(&r), (StatusCode::NOT_FOUND, "not_found".into()));
    let r = app.send("GET", "/v1/products/not-a-uuid", None, None).await;
    assert_eq!(status(&r), (StatusCode::NOT_FOUND, "not_found".into()));
}

#[tokio::test]
async fn edits_need_a_current_if_match() {
    let app = TestApp::new();
    let vendor = app.register("vendor").await;
    let id = draft(&app, &vendor, "Inbox triage agent").await;
    let change = json!({"title": "Inbox triage agent v2"});

    let r = patch(&app, &id, &vendor, None, change.clone()).await;
    assert_eq!(status(&r), (StatusCode::PRECONDITION_REQUIRED, "precondition_required".into()));

    let r = patch(&app, &id, &vendor, Some("\"1\""), change.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.headers[header::ETAG], "\"2\"");
    assert_eq!((r.json["title"].as_str(), r.json["version"].as_u64()), (Some("Inbox triage agent v2"), Some(2)));

    let r = patch(&app, &id, &vendor, Some("1"), json!({"title": "Stale edit"})).await;
    assert_eq!(status(&r), (StatusCode::CONFLICT, "version_mismatch".into()));
    assert_eq!(r.json["error"]["details"], json!({"expected": 1, "current": 2}));

    let r = patch(&app, &id, &vendor, Some("two"), change.clone()).await;
    assert_eq!(status(&r), (StatusCode::UNPROCESSABLE_ENTITY, "validation".into()));
    assert_eq!(fields(&r), ["If-Match"]);

    let r = patch(&app, &id, &vendor, Some("2"), json!({"title": "x", "tags": [""]})).await;
    assert_eq!(status(&r), (StatusCode::UNPROCESSABLE_ENTITY, "validation".into()));
    assert_eq!(fields(&r), ["title", "tags[0]"]);
    for empty in [json!({}), json!({"title": null})] {
        let r = patch(&app, &id, &vendor, Some("2"), empty).await;
        assert_eq!(r.status, StatusCode::OK, "an empty patch changes nothing: {:?}", r.json);
        assert_eq!(r.json["version"], 2);
    }
}

#[tokio::test]
async fn vendors_cannot_touch_each_others_products() {
    let app = TestApp::new();
    let (vendor, other, admin) = (app.register("vendor").await, app.register("vendor").await, app.admin().await);
    let id = approved(&app, &vendor, &admin, product_body("Live product")).await;
    let r = patch(&app, &id, &other, Some("3"), json!({"title": "Hijacked"})).await;
    assert_eq!(status(&r), (StatusCode::FORBIDDEN, "forbidden".into()));
    let r = app.send("POST", &format!("/v1/products/{id}/submit"), Some(&other.token), None).await;
    assert_eq!(status(&r), (StatusCode::FORBIDDEN, "forbidden".into()));
    let r = patch(&app, &id, &admin, Some("3"), json!({"title": "Admins moderate, not edit"})).await;
    assert_eq!(status(&r), (StatusCode::FORBIDDEN, "forbidden".into()));
    // A draft of someone else does not even exist for them.
    let hidden = draft(&app, &vendor, "Hidden draft").await;
    let r = patch(&app, &hidden, &other, Some("1"), json!({"title": "Hijacked"})).await;
    assert_eq!(status(&r), (StatusCode::NOT_FOUND, "not_found".into()));
    let r = patch(&app, &id, &other, Some("3"), json!({"title": "x"})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "bad input is reported first");
}

#[tokio::test]
async fn the_moderation_lifecycle() {
    let app = TestApp::new();
    let (vendor, customer, admin) = (app.register("vendor").await, app.register("customer").await, app.admin().await);
    let id = draft(&app, &vendor, "Moderated product").await;
    let act = |who: &Session, action: &str| {
        let (uri, token) = (format!("/v1/products/{id}/{action}"), who.token.clone());
        let app = &app;
        async move { app.send("POST", &uri, Some(&token), None).await }
    };

    let r = act(&admin, "approve").await;
    assert_eq!(status(&r), (StatusCode::CONFLICT, "invalid_transition".into()), "a draft cannot be approved");
    let r = act(&vendor, "submit").await;
    assert_eq!((r.status, r.json["status"].as_str()), (StatusCode::OK, Some("pending")));
    let r = act(&vendor, "submit").await;
    assert_eq!(status(&r), (StatusCode::CONFLICT, "invalid_transition".into()));
    let r = patch(&app, &id, &vendor, Some("2"), json!({"title": "Edited while pending"})).await;
    assert_eq!(status(&r), (StatusCode::CONFLICT, "invalid_transition".into()));

    for who in [&customer, &vendor] {
        let r = act(who, "approve").await;
        assert_eq!(status(&r), (StatusCode::FORBIDDEN, "forbidden".into()));
    }
    let r = app.send("POST", &format!("/v1/products/{id}/approve"), None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    let r = act(&admin, "approve").await;
    assert_eq!((r.status, r.json["status"].as_str()), (StatusCode::OK, Some("approved")));
    assert_eq!(r.headers[header::ETAG], "\"3\"");
    let r = app.send("GET", &format!("/v1/products/{id}"), None, None).await;
    assert_eq!(r.status, StatusCode::OK, "approved products are public");

    let r = act(&admin, "reinstate").await;
    assert_eq!(status(&r), (StatusCode::CONFLICT, "invalid_transition".into()));
    let r = act(&admin, "suspend").await;
    assert_eq!((r.status, r.json["status"].as_str()), (StatusCode::OK, Some("suspended")));
    let r = app.send("GET", &format!("/v1/products/{id}"), None, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "suspended products leave the public catalog");
    let r = act(&customer, "reinstate").await;
    assert_eq!(status(&r), (StatusCode::FORBIDDEN, "forbidden".into()));
    let r = act(&admin, "reinstate").await;
    assert_eq!((r.status, r.json["status"].as_str()), (StatusCode::OK, Some("approved")));

    let r = app.send("POST", &format!("/v1/products/{}/approve", uuid::Uuid::now_v7()), Some(&admin.token), None).await;
    assert_eq!(status(&r), (StatusCode::NOT_FOUND, "not_found".into()));
}

#[tokio::test]
async fn rejection_needs_a_reason() {
    let app = TestApp::new();
    let (vendor, admin) = (app.register("vendor").await, app.admin().await);
    let id = draft(&app, &vendor, "To be rejected").await;
    app.send("POST", &format!("/v1/products/{id}/submit"), Some(&vendor.token), None).await;
    let uri = format!("/v1/products/{id}/reject");

    let r = app.send("POST", &uri, Some(&admin.token), Some(json!({}))).await;
    assert_eq!(status(&r), (StatusCode::UNPROCESSABLE_ENTITY, "validation".into()));
    let r = app.send("POST", &uri, Some(&admin.token), Some(json!({"reason": "   "}))).await;
    assert_eq!(status(&r), (StatusCode::UNPROCESSABLE_ENTITY, "validation".into()));
    assert_eq!(fields(&r), ["reason"]);
    let r = app.send("POST", &uri, Some(&vendor.token), Some(json!({"reason": "self-rejection"}))).await;
    assert_eq!(status(&r), (StatusCode::FORBIDDEN, "forbidden".into()));
    let r = app.send("POST", &uri, Some(&admin.token), Some(json!({"reason": "Screenshots are missing"}))).await;
    assert_eq!((r.status, r.json["status"].as_str()), (StatusCode::OK, Some("rejected")));
    // A rejected product is edited back to draft.
    let r = patch(&app, &id, &vendor, Some("3"), json!({"media": []})).await;
    assert_eq!((r.status, r.json["status"].as_str()), (StatusCode::OK, Some("draft")));
}

#[tokio::test]
async fn search_filters_pages_and_counts_facets() {
    let app = TestApp::new();
    let (vendor, admin) = (app.register("vendor").await, app.admin().await);
    let a = approved(&app, &vendor, &admin, product_body("Gmail triage agent")).await;
    let mut cheap = product_body("Slack digest workflow");
    cheap["kind"] = json!("n8n_workflow");
    cheap["categories"] = json!(["productivity"]);
    cheap["pricing"] = json!({"type": "free"});
    cheap["tags"] = json!(["slack"]);
    cheap["description"] = json!("Posts a daily digest of your channels.");
    let b = approved(&app, &vendor, &admin, cheap).await;
    draft(&app, &vendor, "Unpublished gmail agent").await;

    let r = app.send("GET", "/v1/products", None, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(
        (r.json["total"].as_u64(), r.json["page"].as_u64(), r.json["limit"].as_u64()),
        (Some(2), Some(1), Some(20))
    );
    assert_eq!(r.json["items"][0]["id"], b.as_str(), "newest first");
    assert_eq!(
        r.json["facets"]["kinds"],
        json!([{"value": "ai_agent", "count": 1}, {"value": "n8n_workflow", "count": 1}])
    );
    assert_eq!(r.json["facets"]["categories"][0], json!({"value": "productivity", "count": 2}));

    let r = app.send("GET", "/v1/products?q=gmail", None, None).await;
    assert_eq!((r.json["total"].as_u64(), r.json["items"][0]["id"].as_str()), (Some(1), Some(a.as_str())));
    let r = app.send("GET", "/v1/products?kind=n8n_workflow&price_max=0", None, None).await;
    assert_eq!((r.json["total"].as_u64(), r.json["items"][0]["id"].as_str()), (Some(1), Some(b.as_str())));
    let r = app.send("GET", "/v1/products?sort=price_desc&limit=1&page=2", None, None).await;
    assert_eq!((r.json["total"].as_u64(), r.json["items"][0]["id"].as_str()), (Some(2), Some(b.as_str())));
    let r = app.send("GET", "/v1/products?limit=1000", None, None).await;
    assert_eq!(r.json["limit"], 100, "limits are capped, not refused");
    let r = app.send("GET", "/v1/products?price_min=500&price_max=100", None, None).await;
    assert_eq!((r.status, r.json["total"].as_u64()), (StatusCode::OK, Some(0)), "an inverted range matches nothing");

    let r = app.send("GET", "/v1/products?kind=robot&sort=best&price_min=-1", None, None).await;
    assert_eq!(status(&r), (StatusCode::UNPROCESSABLE_ENTITY, "validation".into()));
    assert_eq!(fields(&r), ["kind", "sort", "price_min"]);
    let r = app.send("GET", "/v1/products?price_min=cheap", None, None).await;
    assert_eq!(status(&r), (StatusCode::UNPROCESSABLE_ENTITY, "validation".into()));
    assert_eq!(fields(&r), ["price_min"]);
}

#[tokio::test]
async fn repeated_searches_are_rendered_once_and_writes_show_at_once() {
    let app = TestApp::new();
    let (vendor, admin) = (app.register("vendor").await, app.admin().await);
    approved(&app, &vendor, &admin, product_body("Gmail triage agent")).await;

    let first = app.send("GET", "/v1/products?category=email", None, None).await;
    let again = app.send("GET", "/v1/products?category=email", None, None).await;
    assert_eq!((first.status, first.json["total"].as_u64()), (StatusCode::OK, Some(1)));
    assert_eq!(first.headers[header::CONTENT_TYPE], "application/json");
    assert_eq!(first.bytes, again.bytes);
    assert_eq!(app.state.pages.len(), 1, "one rendering serves both");

    let second = approved(&app, &vendor, &admin, product_body("Inbox zero agent")).await;
    let r = app.send("GET", "/v1/products?category=email", None, None).await;
    assert_eq!(r.json["total"].as_u64(), Some(2), "an approval shows in the next search");
    assert_eq!(r.json["items"][0]["id"], second.as_str());

    let r = app.send("POST", &format!("/v1/products/{second}/suspend"), Some(&admin.token), None).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app.send("GET", "/v1/products?category=email", None, None).await;
    assert_eq!(r.json["total"].as_u64(), Some(1), "a suspension too");
    app.clock.advance(chrono::Duration::seconds(5));
    let r = app.send("GET", "/v1/products?category=email", None, None).await;
    assert_eq!(r.json["total"].as_u64(), Some(1));
}

#[tokio::test]
async fn reviews_come_from_buyers_once() {
    let app = TestApp::new();
    let (vendor, buyer, stranger, admin) = (
        app.register("vendor").await,
        app.register("customer").await,
        app.register("customer").await,
        app.admin().await,
    );
    let mut free = product_body("Free helper");
    free["pricing"] = json!({"type": "free"});
    let id = approved(&app, &vendor, &admin, free).await;
    let uri = format!("/v1/products/{id}/reviews");

    let r = app.send("POST", &uri, Some(&stranger.token), Some(json!({"rating": 5, "body": "Great"}))).await;
    assert_eq!(status(&r), (StatusCode::FORBIDDEN, "not_licensed".into()));
    let r = app.send("POST", &uri, Some(&vendor.token), Some(json!({"rating": 5}))).await;
    assert_eq!(status(&r), (StatusCode::FORBIDDEN, "forbidden".into()), "vendors do not review their own");
    let r = app.send("POST", &uri, None, Some(json!({"rating": 5}))).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // Buy it (free: fulfilled by the worker) through the core.
    let actor = Actor::new(buyer.user_id.parse::<UserId>().unwrap(), Role::Customer);
    let product_id = ProductId::from_uuid(id.parse().unwrap());
    app.market().orders.place(&actor, PlaceOrder::new([product_id]), None).await.expect("free order");
    app.pump().await;

    let r = app.send("POST", &uri, Some(&buyer.token), Some(json!({"rating": 0, "body": "x"}))).await;
    assert_eq!(status(&r), (StatusCode::UNPROCESSABLE_ENTITY, "validation".into()));
    assert_eq!(fields(&r), ["rating"]);
    let r = app.send("POST", &uri, Some(&buyer.token), Some(json!({"rating": 4.5}))).await;
    assert_eq!(fields(&r), ["rating"], "stars are whole");
    // JSON Schema's `integer` admits `4.0`, so the API does too.
    let r = app.send("POST", &uri, Some(&buyer.token), Some(json!({"rating": 4.0, "body": " Does the job "}))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    assert_eq!((r.json["rating"].as_u64(), r.json["body"].as_str()), (Some(4), Some("Does the job")));
    assert_eq!(r.json["buyer_id"], buyer.user_id.as_str());
    let r = app.send("POST", &uri, Some(&buyer.token), Some(json!({"rating": 2}))).await;
    assert_eq!(status(&r), (StatusCode::CONFLICT, "conflict".into()), "one review per buyer");

    let r = app.send("GET", &format!("/v1/products/{id}"), None, None).await;
    assert_eq!((r.json["stats"]["rating_count"].as_u64(), r.json["stats"]["rating_sum"].as_u64()), (Some(1), Some(4)));
    let missing = format!("/v1/products/{}/reviews", uuid::Uuid::now_v7());
    let r = app.send("POST", &missing, Some(&buyer.token), Some(json!({"rating": 4}))).await;
    assert_eq!(status(&r), (StatusCode::NOT_FOUND, "not_found".into()));
}
