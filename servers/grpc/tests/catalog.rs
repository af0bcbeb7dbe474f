//! `bazaar.v1.CatalogService` over a real loopback connection.

mod common;

use bazaar_core::auth::Role;
use bazaar_core::catalog::{Pricing, ProductKind, SearchParams, SearchQuery, SortOrder};
use bazaar_grpc::pb;
use common::{World, authed, bad_fields, expect_status, monthly, usd, with_header};
use tonic::{Code, Request};

fn ids(items: &[pb::Product]) -> Vec<String> {
    items.iter().map(|p| p.id.clone()).collect()
}

fn facet(counts: &[pb::FacetCount]) -> Vec<(&str, u64)> {
    counts.iter().map(|f| (f.value.as_str(), f.count)).collect()
}

#[tokio::test]
async fn get_product_shows_approved_products_to_everyone_and_drafts_to_their_vendor() {
    let w = World::start().await;
    let vendor = w.user(Role::Vendor).await;
    let other_vendor = w.user(Role::Vendor).await;
    let admin = w.user(Role::Admin).await;
    let live = w.approved_product(&vendor, "Live agent", monthly(1500)).await;
    let draft = w.product(&vendor, "Draft agent", ProductKind::AiAgent, &["sales"], &[], usd(100), false).await;
    let mut client = w.catalog();

    let got = client
        .get_product(pb::GetProductRequest { product_id: live.id.to_string() })
        .await
        .unwrap()
        .into_inner()
        .product
        .unwrap();
    assert_eq!((got.id.as_str(), got.title.as_str()), (live.id.to_string().as_str(), "Live agent"));
    assert_eq!((got.kind(), got.status()), (pb::ProductKind::AiAgent, pb::ProductStatus::Approved));
    assert_eq!(got.categories, ["sales"]);
    let Some(pb::pricing::Pricing::Subscription(sub)) = got.pricing.unwrap().pricing else { panic!("subscription") };
    assert_eq!(sub.price, Some(pb::Money { minor: 1500, currency: "USD".into() }));
    assert_eq!(sub.interval(), pb::BillingInterval::Monthly);
    let stats = got.stats.unwrap();
    assert_eq!((stats.downloads, stats.rating_count), (0, 0));
    assert!((stats.rating - 3.0).abs() < 1e-9, "no reviews: the prior's mean, got {}", stats.rating);
    assert_eq!(got.created_at.unwrap().seconds, common::EPOCH);

    let draft_req = || pb::GetProductRequest { product_id: draft.id.to_string() };
    expect_status(client.get_product(draft_req()).await, Code::NotFound, "NOT_FOUND");
    expect_status(client.get_product(authed(draft_req(), &other_vendor.token)).await, Code::NotFound, "NOT_FOUND");
    let mine = client.get_product(authed(draft_req(), &vendor.token)).await.unwrap().into_inner().product.unwrap();
    assert_eq!(mine.status(), pb::ProductStatus::Draft);
    assert!(client.get_product(authed(draft_req(), &admin.token)).await.is_ok());

    let s = expect_status(
        client.get_product(pb::GetProductRequest { product_id: "not-a-uuid".into() }).await,
        Code::InvalidArgument,
        "VALIDATION",
    );
    assert_eq!(bad_fields(&s), ["product_id"]);
    // A token that was sent but is bad is refused, not treated as anonymous.
    expect_status(
        client.get_product(with_header(pb::GetProductRequest { product_id: live.id.to_string() }, "Bearer nope")).await,
        Code::Unauthenticated,
        "UNAUTHENTICATED",
    );
}

#[tokio::test]
async fn search_filters_sorts_pages_and_counts_facets_like_the_core() {
    let w = World::start().await;
    let vendor = w.user(Role::Vendor).await;
    let a = w.product(&vendor, "Sales agent", ProductKind::AiAgent, &["sales"], &["crm"], usd(3000), true).await;
    let b = w
        .product(
            &vendor,
            "Lead workflow",
            ProductKind::N8nWorkflow,
            &["sales", "marketing"],
            &["agent"],
            usd(1000),
            true,
        )
        .await;
    let c = w.product(&vendor, "Free helper", ProductKind::AutomationAsset, &["ops"], &[], Pricing::Free, true).await;
    let d = w.product(&vendor, "Support agent", ProductKind::AiAgent, &["support"], &[], monthly(2000), true).await;
    w.product(&vendor, "Hidden agent draft", ProductKind::AiAgent, &["sales"], &[], usd(10), false).await;
    let mut client = w.catalog();

    // Everything approved, newest first, with facets over all of it.
    let all = client.search_products(pb::SearchProductsRequest::default()).await.unwrap().into_inner();
    assert_eq!(all.total, 4, "the draft is not searchable");
    assert_eq!((all.page, all.limit), (1, 20));
    let newest: Vec<_> = [&d, &c, &b, &a].iter().map(|p| p.id.to_string()).collect();
    assert_eq!(ids(&all.items), newest);
    let facets = all.facets.unwrap();
    assert_eq!(facet(&facets.categories), [("sales", 2), ("marketing", 1), ("ops", 1), ("support", 1)]);
    assert_eq!(facet(&facets.kinds), [("ai_agent", 2), ("automation_asset", 1), ("n8n_workflow", 1)]);

    // Text + kind filter: relevance; the kind facet ignores the kind filter.
    let r = client
        .search_products(pb::SearchProductsRequest {
            q: Some("agent".into()),
            kind: pb::ProductKind::AiAgent.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.total, 2);
    assert_eq!(facet(&r.facets.unwrap().kinds), [("ai_agent", 2), ("n8n_workflow", 1)]);

    // Price range and price sort; free counts as 0.
    let r = client
        .search_products(pb::SearchProductsRequest {
            price_min: Some(0),
            price_max: Some(2000),
            sort: pb::SortOrder::PriceAsc.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ids(&r.items), [c.id.to_string(), b.id.to_string(), d.id.to_string()]);

    // Category filter and paging.
    let r = client
        .search_products(pb::SearchProductsRequest {
            category: Some("sales".into()),
            sort: pb::SortOrder::PriceDesc.into(),
            page: Some(2),
            limit: Some(1),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((r.total, r.page, r.limit), (2, 2, 1));
    assert_eq!(ids(&r.items), [b.id.to_string()]);

    // Every combination gives exactly what the core (and so HTTP) gives.
    let cases = [
        (Some("agent"), None, None, None, None, Some(SortOrder::Relevance), pb::SortOrder::Relevance),
        (None, Some("sales"), Some(ProductKind::N8nWorkflow), None, None, None, pb::SortOrder::Unspecified),
        (None, None, None, Some(1000), Some(3000), Some(SortOrder::PriceDesc), pb::SortOrder::PriceDesc),
        (Some("helper"), None, None, None, None, Some(SortOrder::Rating), pb::SortOrder::Rating),
        (None, None, None, None, None, Some(SortOrder::Downloads), pb::SortOrder::Downloads),
        (None, None, None, None, None, Some(SortOrder::Newest), pb::SortOrder::Newest),
    ];
    for (q, category, kind, price_min, price_max, sort, pb_sort) in cases {
        let expected = w
            .market
            .catalog
            .search(
                &SearchQuery::new(SearchParams {
                    q: q.map(Into::into),
                    category: category.map(Into::into),
                    kind,
                    price_min,
                    price_max,
                    sort,
                    page: None,
                    limit: None,
                })
                .unwrap(),
            )
            .await
            .unwrap();
        let got = client
            .search_products(pb::SearchProductsRequest {
                q: q.map(Into::into),
                category: category.map(Into::into),
                kind: kind.map_or(pb::ProductKind::Unspecified, pb::ProductKind::from).into(),
                price_min,
                price_max,
                sort: pb_sort.into(),
                page: None,
                limit: None,
            })
            .await
            .unwrap()
            .into_inner();
        let expected_ids: Vec<_> = expected.items.iter().map(|p| p.id.to_string()).collect();
        assert_eq!(ids(&got.items), expected_ids, "{q:?} {category:?} {kind:?} {sort:?}");
        assert_eq!(got.total, expected.total);
        assert_eq!(got.facets.unwrap(), pb::Facets::from(expected.facets));
    }
}

#[tokio::test]
async fn bad_searches_name_every_field() {
    let w = World::start().await;
    let mut client = w.catalog();
    let s = expect_status(
        client
            .search_products(pb::SearchProductsRequest {
                q: Some("x".repeat(201)),
                category: Some("Not A Slug!".into()),
                kind: 99,
                price_min: Some(500),
                price_max: Some(-100),
                sort: 42,
                page: Some(0),
                limit: Some(0),
            })
            .await,
        Code::InvalidArgument,
        "VALIDATION",
    );
    assert_eq!(bad_fields(&s), ["kind", "sort", "q", "category", "price_max", "page", "limit"]);
    assert!(s.message().contains("price_max: must not be negative"), "{}", s.message());

    // A limit over 100 is capped, not refused.
    let r = client.search_products(pb::SearchProductsRequest { limit: Some(1000), ..Default::default() }).await;
    assert_eq!(r.unwrap().into_inner().limit, 100);

    expect_status(
        client.search_products(with_header(pb::SearchProductsRequest::default(), "Basic dXNlcjpwYXNz")).await,
        Code::Unauthenticated,
        "UNAUTHENTICATED",
    );
    // Anonymous search works.
    assert!(client.search_products(Request::new(pb::SearchProductsRequest::default())).await.is_ok());
}
