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

#[tokio::test]
async fn links_lead_from_what_creates_a_resource_to_what_acts_on_it() {
    let doc = document().await;
    let by_id: std::collections::HashMap<&str, (String, &Value)> = operations(&doc)
        .into_iter()
        .filter_map(|(_, path, op)| Some((op["operationId"].as_str()?, (path, op))))
        .collect();
    let mut linked = Vec::new();
    for (method, path, op) in operations(&doc) {
        for (status, response) in op["responses"].as_object().unwrap() {
            for (name, link) in response.get("links").and_then(Value::as_object).into_iter().flatten() {
                let target = link["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path} {name}: {link}"));
                let (target_path, target_op) = by_id.get(target).unwrap_or_else(|| panic!("{name}: no {target}"));
                for (param, expression) in link["parameters"].as_object().unwrap() {
                    assert!(target_path.contains(&format!("{{{param}}}")), "{target} has no {{{param}}}");
                    assert!(
                        target_op["parameters"].as_array().unwrap().iter().any(|p| p["name"] == *param),
                        "{target} declares no {param}"
                    );
                    assert_eq!(expression, "$response.body#/id", "{name}");
                }
                linked.push((method.clone(), path.clone(), status.clone(), target.to_owned()));
            }
        }
    }
    for (path, target) in
        [("/v1/products", "submit_product"), ("/v1/orders", "pay_order"), ("/v1/orders", "refund_order")]
    {
        assert!(
            linked.iter().any(|(m, p, s, t)| m == "post" && p == path && s == "201" && t == target),
            "POST {path} links to {target}: {linked:?}"
        );
    }
}

#[tokio::test]
async fn every_json_body_documents_the_answers_of_reading_it() {
    let doc = document().await;
    for (method, path, op) in operations(&doc) {
        // An upload takes a JSON file as bytes, like any other accepted type.
        if op.pointer("/requestBody/content/application~1json").is_none() || op["operationId"] == "upload_asset" {
            continue;
        }
        for status in ["400", "413", "415", "422"] {
            let response = op["responses"].get(status).unwrap_or_else(|| panic!("{method} {path}: no {status}"));
            let schema = response.pointer("/content/application~1json/schema/$ref");
            assert_eq!(
                schema.and_then(Value::as_str),
                Some("#/components/schemas/ErrorBody"),
                "{method} {path} {status}"
            );
        }
    }
}

#[tokio::test]
async fn parameters_and_bodies_state_the_rules_the_server_applies() {
    let doc = document().await;
    let search = &doc["paths"]["/v1/products"]["get"]["parameters"];
    let param = |name: &str| -> Value {
        let p = search.as_array().unwrap().iter().find(|p| p["name"] == name).unwrap_or_else(|| panic!("{name}"));
        resolve(&doc, &p["schema"]).unwrap().clone()
    };
    assert_eq!((param("page")["minimum"].as_i64(), param("limit")["minimum"].as_i64()), (Some(1), Some(1)));
    assert_eq!(param("price_min")["minimum"], 0);
    assert_eq!(param("q")["maxLength"], 200);
    let sort = param("sort");
    let sort = sort.get("oneOf").map_or(sort.clone(), |variants| {
        variants
            .as_array()
            .unwrap()
            .iter()
            .find_map(|v| resolve(&doc, v).filter(|v| v.get("enum").is_some()))
            .unwrap()
            .clone()
    });
    assert_eq!(sort["enum"].as_array().map(Vec::len), Some(6), "{sort}");

    let schemas = &doc["components"]["schemas"];
    let create = &schemas["CreateProductBody"]["properties"];
    let title = resolve(&doc, &create["title"]).unwrap();
    let pattern = title["pattern"].as_str().expect("a title pattern");
    assert!(pattern.contains("{1,118}"), "3 to 120 characters: {pattern}");
    assert_eq!(
        (create["categories"]["minItems"].as_u64(), create["categories"]["maxItems"].as_u64()),
        (Some(1), Some(5))
    );
    assert_eq!(create["categories"]["uniqueItems"], true);
    assert_eq!(create["tags"]["maxItems"], 10);
    assert!(create["tags"].get("uniqueItems").is_none_or(|u| u == false), "a repeated tag is kept once, not refused");
    assert_eq!(schemas["Price"]["properties"]["minor"]["minimum"], 1, "a paid price is more than zero");
    let currencies = schemas["CurrencyCode"]["enum"].as_array().expect("currency codes");
    assert!(currencies.iter().any(|c| c == "USD") && currencies.iter().all(|c| c.as_str().unwrap().len() == 3));
    for variant in schemas["PricingDto"]["oneOf"].as_array().unwrap() {
        assert_eq!(variant["additionalProperties"], false, "unknown fields are refused: {variant}");
    }
    assert_eq!(schemas["ReviewBody"]["properties"]["rating"]["maximum"], 5);

    let if_match = doc["paths"]["/v1/products/{id}"]["patch"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "If-Match")
        .unwrap();
    assert_eq!(if_match["required"], true);
    assert!(if_match["schema"]["pattern"].as_str().is_some_and(|p| p.contains("W/")));

    // `details` is a list of field errors or an object, never anything else.
    let details = resolve(&doc, &schemas["ErrorDetail"]["properties"]["details"]).unwrap();
    let kinds: Vec<&str> = details["oneOf"].as_array().unwrap().iter().filter_map(|v| v["type"].as_str()).collect();
    assert_eq!(kinds, ["array", "object"], "{details}");

    let upload = doc["paths"]["/v1/products/{id}/assets"]["post"]["requestBody"]["content"].as_object().unwrap();
    assert!(upload.contains_key("application/zip") && upload.contains_key("text/plain"), "{upload:?}");
    assert!(!upload.contains_key("application/octet-stream"), "not an accepted type");
}
