//! Depth and complexity limits refuse abusive queries before any resolver
//! runs; GraphiQL's introspection stays within the defaults; a query past
//! the request timeout is cut off.

use bazaar_graphql::GraphqlSettings;
use serde_json::json;

use crate::common::TestApp;

/// GraphiQL 3's introspection query (graphql-js `getIntrospectionQuery`,
/// nine levels of `ofType`: depth 15).
const INTROSPECTION: &str = r"
query IntrospectionQuery {
  __schema {
    queryType { name } mutationType { name } subscriptionType { name }
    types { ...FullType }
    directives { name description locations args { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description
  fields(includeDeprecated: true) { name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name
    ofType { kind name ofType { kind name ofType { kind name } } } } } } } } }
}";

#[tokio::test]
async fn introspection_fits_the_default_limits() {
    let app = TestApp::new();
    let reply = app.gql(INTROSPECTION, json!({}), None).await;
    assert_eq!(reply.data()["__schema"]["queryType"]["name"], "Query");
}

#[tokio::test]
async fn too_deep_queries_are_refused() {
    let app = TestApp::new();
    let mut deep = String::from("__typename");
    for _ in 0..20 {
        deep = format!("ofType {{ {deep} }}");
    }
    let reply = app.gql(&format!("{{ __type(name: \"Query\") {{ {deep} }} }}"), json!({}), None).await;
    assert_eq!(reply.code(), "malformed");
    assert!(reply.message().contains("nested too deep"), "{}", reply.json);
    assert!(reply.json["data"].is_null(), "nothing ran: {}", reply.json);

    // A tighter setting refuses an ordinary nested query.
    let mut app = TestApp::new();
    app.settings = GraphqlSettings { max_depth: 3, ..app.settings.clone() };
    let nested = "{ myOrders { items { lines { product { title } } } } }";
    let reply = app.gql(nested, json!({}), None).await;
    assert!(reply.message().contains("nested too deep"), "{}", reply.json);
}

#[tokio::test]
async fn too_complex_queries_are_refused() {
    let app = TestApp::new();
    // Three pages of 100 orders × (lines × products + licenses × products):
    // over the default 4,000.
    let orders = "myOrders(first: 100) { items { id status lines { title product { id title description tags
        stats { rating downloads } } } licenses { key status product { title } } } }";
    let heavy = format!("{{ a: {orders} b: {orders} c: {orders} }}");
    let reply = app.gql(&heavy, json!({}), None).await;
    assert_eq!(reply.code(), "malformed");
    assert!(reply.message().contains("too complex"), "{}", reply.json);

    // The same selection on a small page is fine (it needs a token, nothing more).
    let light = heavy.replace("first: 100", "first: 5");
    assert_eq!(app.gql(&light, json!({}), None).await.code(), "unauthenticated");

    // Aliases multiply the cost too.
    let aliased: String = (0..60).map(|i| format!("s{i}: search(first: 100) {{ totalCount }} ")).collect();
    let reply = app.gql(&format!("{{ {aliased} }}"), json!({}), None).await;
    assert!(reply.message().contains("too complex"), "{}", reply.json);

    // The largest page REST hands out, with every product field, is within it.
    let full = "{ search(first: 100) { totalCount nextCursor items { id vendorId title shortDescription description
        kind categories tags pricing { type price { minor currency } interval } status
        stats { downloads ratingCount rating } version createdAt updatedAt }
        facets { categories { value count } kinds { value count } } } }";
    let reply = app.gql(full, json!({}), None).await;
    assert!(reply.json.get("errors").is_none(), "{}", reply.json);
}

#[tokio::test]
async fn a_query_past_the_request_timeout_is_answered_408_timeout() {
    let mut app = TestApp::new();
    app.settings = GraphqlSettings { request_timeout: std::time::Duration::from_millis(50), ..app.settings.clone() };
    app.counters.search_delay_ms.store(2_000, std::sync::atomic::Ordering::SeqCst);
    let reply = app.gql("{ search(query: \"slow\") { totalCount } }", json!({}), None).await;
    assert_eq!(reply.status.as_u16(), 408, "{}", reply.json);
    assert_eq!((reply.code(), reply.message()), ("timeout".to_owned(), "the request took too long".to_owned()));

    // Within the limit the same query answers.
    app.counters.search_delay_ms.store(0, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        app.gql("{ search(query: \"slow\") { totalCount } }", json!({}), None).await.data()["search"]["totalCount"],
        0
    );
}
