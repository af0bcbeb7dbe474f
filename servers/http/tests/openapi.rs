//! The OpenAPI document served at `/openapi.json`: version 3.1, every route
//! of the HTTP contract with its method, request schemas, documented error
//! responses, the bearer scheme, and no dangling `$ref`.

mod common;

use axum::http::StatusCode;
use common::TestApp;
use serde_json::Value;

/// Every operation of DESIGN.md §4, as (method, path template).
const CONTRACT: &[(&str, &str)] = &[
    ("post", "/v1/auth/register"),
    ("post", "/v1/auth/login"),
    ("post", "/v1/auth/refresh"),
    ("post", "/v1/auth/logout"),
    ("get", "/v1/me"),
    ("get", "/v1/products"),
    ("post", "/v1/products"),
    ("get", "/v1/products/{id}"),
    ("patch", "/v1/products/{id}"),
    ("post", "/v1/products/{id}/submit"),
    ("post", "/v1/products/{id}/approve"),
    ("post", "/v1/products/{id}/reject"),
    ("post", "/v1/products/{id}/suspend"),
    ("post", "/v1/products/{id}/reinstate"),
    ("post", "/v1/products/{id}/reviews"),
    ("post", "/v1/products/{id}/assets"),
    ("get", "/v1/products/{id}/assets"),
    ("post", "/v1/orders"),
    ("get", "/v1/orders"),
    ("get", "/v1/orders/{id}"),
    ("post", "/v1/orders/{id}/pay"),
    ("post", "/v1/orders/{id}/refund"),
    ("post", "/v1/webhooks/{provider}"),
    ("get", "/v1/licenses"),
    ("get", "/v1/licenses/{id}"),
    ("post", "/v1/licenses/validate"),
    ("post", "/v1/licenses/{id}/activations"),
    ("delete", "/v1/licenses/{id}/activations/{fingerprint}"),
    ("post", "/v1/licenses/{id}/downloads"),
    ("get", "/v1/downloads/{token}"),
    ("post", "/v1/licenses/{id}/revoke"),
    ("get", "/v1/notifications"),
    ("get", "/v1/notifications/stream"),
    ("get", "/health"),
    ("get", "/health/live"),
    ("get", "/health/ready"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
    ("get", "/docs"),
    ("get", "/docs/"),
    ("get", "/docs/{file}"),
];

/// The operations whose request body is JSON.
const JSON_BODIES: &[(&str, &str)] = &[
    ("post", "/v1/auth/register"),
    ("post", "/v1/auth/login"),
    ("post", "/v1/auth/refresh"),
    ("post", "/v1/auth/logout"),
    ("post", "/v1/products"),
    ("patch", "/v1/products/{id}"),
    ("post", "/v1/products/{id}/reject"),
    ("post", "/v1/products/{id}/reviews"),
    ("post", "/v1/orders"),
    ("post", "/v1/orders/{id}/pay"),
    ("post", "/v1/licenses/validate"),
    ("post", "/v1/licenses/{id}/activations"),
    ("post", "/v1/licenses/{id}/downloads"),
];

/// Operations that need a bearer token.
const AUTHENTICATED: &[(&str, &str)] = &[
    ("get", "/v1/me"),
    ("post", "/v1/products"),
    ("patch", "/v1/products/{id}"),
    ("post", "/v1/products/{id}/approve"),
    ("post", "/v1/products/{id}/assets"),
    ("post", "/v1/orders"),
    ("get", "/v1/licenses"),
    ("get", "/v1/notifications"),
    ("get", "/v1/notifications/stream"),
];

const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

async fn document() -> Value {
    let app = TestApp::new();
    let r = app.send("GET", "/openapi.json", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.headers["content-type"].to_str().unwrap().starts_with("application/json"));
    r.json
}

/// Follows a local `$ref` (`#/components/...`), if `v` is one.
fn resolve<'a>(doc: &'a Value, v: &'a Value) -> Option<&'a Value> {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => doc.pointer(r.strip_prefix('#')?),
        None => Some(v),
    }
}

fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if let Some(op) = item.get(method) {
                out.push((method.to_owned(), path.clone(), op));
            }
        }
    }
    out
}

#[tokio::test]
async fn the_document_is_openapi_3_1_with_bearer_auth() {
    let doc = document().await;
    let version = doc["openapi"].as_str().unwrap();
    assert!(version.starts_with("3."), "{version}");
    assert!(version.starts_with("3.1"), "utoipa 5 emits 3.1: {version}");
    assert_eq!(doc["info"]["title"], "Bazaar API");
    assert!(doc["info"]["version"].as_str().is_some_and(|v| !v.is_empty()));
    let scheme = &doc["components"]["securitySchemes"]["bearer"];
    assert_eq!((scheme["type"].as_str(), scheme["scheme"].as_str()), (Some("http"), Some("bearer")));
    assert_eq!(scheme["bearerFormat"], "JWT");
    let tags: Vec<&str> = doc["tags"].as_array().unwrap().iter().filter_map(|t| t["name"].as_str()).collect();
    for tag in ["auth", "catalog", "assets", "orders", "licenses", "notifications", "ops"] {
        assert!(tags.contains(&tag), "tag {tag} missing: {tags:?}");
    }
    // What is served is what the library builds.
    assert_eq!(doc, serde_json::to_value(bazaar_http::openapi_document()).unwrap());
}

#[tokio::test]
async fn every_contract_route_is_documented_with_its_method() {
    let doc = document().await;
    let missing: Vec<String> = CONTRACT
        .iter()
        .filter(|(method, path)| doc["paths"].get(*path).and_then(|item| item.get(*method)).is_none())
        .map(|(m, p)| format!("{} {p}", m.to_uppercase()))
        .collect();
    assert!(missing.is_empty(), "undocumented routes: {missing:#?}");
}

#[tokio::test]
async fn json_requests_have_a_body_schema() {
    let doc = document().await;
    let mut problems = Vec::new();
    for (method, path) in JSON_BODIES {
        let Some(op) = doc["paths"].get(*path).and_then(|item| item.get(*method)) else {
            problems.push(format!("{method} {path}: not documented"));
            continue;
        };
        let body = op.get("requestBody").and_then(|b| resolve(&doc, b));
        let schema = body.and_then(|b| b.pointer("/content/application~1json/schema"));
        match schema {
            Some(s) if s.get("$ref").is_some() || s.get("type").is_some() || s.get("oneOf").is_some() => {}
            _ => problems.push(format!("{method} {path}: no application/json requestBody schema")),
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[tokio::test]
async fn every_operation_documents_an_error_response_with_the_error_body() {
    let doc = document().await;
    let mut problems = Vec::new();
    for (method, path, op) in operations(&doc) {
        let responses = op["responses"].as_object().cloned().unwrap_or_default();
        let has_error_body = responses.iter().any(|(status, response)| {
            status.starts_with('4')
                && resolve(&doc, response)
                    .and_then(|r| r.pointer("/content/application~1json/schema/$ref"))
                    .and_then(Value::as_str)
                    == Some("#/components/schemas/ErrorBody")
        });
        if !has_error_body {
            problems.push(format!("{} {path}", method.to_uppercase()));
        }
        if op["tags"].as_array().is_none_or(Vec::is_empty) {
            problems.push(format!("{} {path}: no tag", method.to_uppercase()));
        }
    }
    assert!(problems.is_empty(), "operations without a 4xx ErrorBody response (or a tag): {problems:#?}");
    let error = &doc["components"]["schemas"]["ErrorBody"];
    assert!(error["properties"]["error"].is_object() && error["properties"]["request_id"].is_object(), "{error}");
}

#[tokio::test]
async fn authenticated_operations_declare_the_bearer_scheme() {
    let doc = document().await;
    for (method, path) in AUTHENTICATED {
        let op = &doc["paths"][*path][*method];
        let security = op["security"].as_array().unwrap_or_else(|| panic!("{method} {path}: no security"));
        assert!(security.iter().any(|s| s.get("bearer").is_some()), "{method} {path}: {security:?}");
    }
    assert!(doc["paths"]["/v1/products"]["get"].get("security").is_none(), "search is public");
}

fn collect_refs<'a>(v: &'a Value, at: String, out: &mut Vec<(String, &'a str)>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                if k == "$ref" {
                    if let Some(r) = child.as_str() {
                        out.push((at.clone(), r));
                    }
                } else {
                    collect_refs(child, format!("{at}/{k}"), out);
                }
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                collect_refs(child, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[tokio::test]
async fn every_ref_resolves_to_a_component() {
    let doc = document().await;
    let mut refs = Vec::new();
    collect_refs(&doc, String::new(), &mut refs);
    assert!(refs.len() > 50, "the document uses component refs: {}", refs.len());
    let dangling: Vec<String> = refs
        .iter()
        .filter(|(_, r)| !r.starts_with("#/components/") || r.strip_prefix('#').and_then(|p| doc.pointer(p)).is_none())
        .map(|(at, r)| format!("{at}: {r}"))
        .collect();
    assert!(dangling.is_empty(), "dangling $refs: {dangling:#?}");
    // Every operation id is unique (generators need that).
    let mut ids: Vec<&str> = operations(&doc).iter().filter_map(|(_, _, op)| op["operationId"].as_str()).collect();
    let count = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), count, "duplicate operationIds");
}

/// `docs/http-api.md` is the contract in prose; its table of operations
/// (`| \`GET /v1/products\` | …`) must list exactly what the router serves.
#[tokio::test]
async fn http_contract_doc_lists_every_operation() {
    let doc = document().await;
    let served: std::collections::BTreeSet<String> =
        operations(&doc).into_iter().map(|(method, path, _)| format!("{} {path}", method.to_uppercase())).collect();
    let page = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/http-api.md");
    let text = std::fs::read_to_string(page).expect("docs/http-api.md");
    let documented: std::collections::BTreeSet<String> = text
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split('`').next())
        .filter(|op| op.split(' ').next().is_some_and(|m| METHODS.contains(&m.to_lowercase().as_str())))
        .map(str::to_owned)
        .collect();
    let undocumented: Vec<&String> = served.difference(&documented).collect();
    let unserved: Vec<&String> = documented.difference(&served).collect();
    assert!(undocumented.is_empty(), "served but missing from docs/http-api.md: {undocumented:?}");
    assert!(unserved.is_empty(), "in docs/http-api.md but not served: {unserved:?}");
}
