//! The OpenAPI document's frame: info, the `bearer` security scheme, tags
//! and the error schema. [`crate::router`] merges every route module's
//! annotated handlers into it, so the document lists exactly what is served.

use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use crate::error::{ErrorBody, ErrorDetail, ErrorDetails, FieldErrorBody};
use crate::routes::orders::PlaceOrderItemBody;
use crate::schema::{CategorySlug, SortName, Tag, VendorEventName};

/// The root of the OpenAPI document (paths are added by the routers).
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "Bazaar API",
        description = "A digital-goods marketplace: catalog, orders, payments, licenses, downloads, notifications.\n\n\
            JSON under `/v1`, bearer JWTs from `/v1/auth/*`. Every error is \
            `{\"error\":{\"code\",\"message\",\"details\"?},\"request_id\"}`; every response carries `x-request-id`, and a W3C `traceparent` naming its trace (a request may send its own `traceparent` to join a trace).",
        license(name = "MIT OR Apache-2.0"),
    ),
    modifiers(&BearerScheme),
    // Referenced only from hand-built schemas, so listed here.
    components(schemas(ErrorBody, ErrorDetail, ErrorDetails, FieldErrorBody, CategorySlug, Tag, SortName, VendorEventName, PlaceOrderItemBody)),
    tags(
        (name = "auth", description = "Accounts and sessions"),
        (name = "catalog", description = "Products, search and reviews"),
        (name = "moderation", description = "Admin review of products"),
        (name = "assets", description = "Product files"),
        (name = "orders", description = "Orders and refunds"),
        (name = "payments", description = "Payment intents and provider webhooks"),
        (name = "licenses", description = "Licenses, activations and downloads"),
        (name = "notifications", description = "The caller's notifications"),
        (name = "webhooks", description = "A vendor's endpoints for its sales events, their deliveries and replays"),
        (name = "ops", description = "Health, metrics and this document"),
    )
)]
pub struct ApiDoc;

/// Adds the `bearer` scheme (HTTP bearer, JWT) that operations refer to.
#[derive(Debug, Clone, Copy)]
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
    }
}

/// Finishes the merged document: the answers the shared extractors give on
/// every operation that uses them, and the links from what creates a
/// resource to what acts on it. The links are written into the JSON, since
/// utoipa's `Link` serializes its fields in snake case (`operation_id`).
pub(crate) fn complete(mut document: utoipa::openapi::OpenApi) -> serde_json::Value {
    for item in document.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
            &mut item.head,
            &mut item.options,
            &mut item.trace,
        ];
        for operation in operations.into_iter().flatten() {
            add_extractor_answers(operation);
        }
    }
    let mut json = serde_json::to_value(&document).expect("the OpenAPI document serializes");
    add_links(&mut json);
    add_upload_types(&mut json);
    close_variants(&mut json, &["PricingDto"]);
    describe_events(&mut json);
    json
}

/// What [`ApiJson`](crate::extract::ApiJson) and
/// [`ApiQuery`](crate::extract::ApiQuery) answer before a handler runs.
/// An operation's own wording of the same status is kept.
fn add_extractor_answers(operation: &mut Operation) {
    let json_body = operation.request_body.as_ref().is_some_and(|body| body.content.contains_key("application/json"));
    let query = operation.parameters.iter().flatten().any(|p| matches!(p.parameter_in, ParameterIn::Query));
    let mut answers: Vec<(&str, &str)> = Vec::new();
    if json_body {
        answers.extend([
            ("400", "The body is not valid JSON"),
            ("413", "The body is larger than the JSON limit"),
            ("415", "`Content-Type` is not `application/json`"),
            ("422", "A field is missing, unknown or invalid (details name every one)"),
        ]);
    }
    if query {
        answers.push(("422", "A query parameter is invalid (details name every one)"));
    }
    for (status, description) in answers {
        operation.responses.responses.entry(status.to_owned()).or_insert_with(|| error_response(description));
    }
}

/// An error answer in the one error shape.
fn error_response(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content("application/json", Content::new(Some(Ref::from_schema_name("ErrorBody"))))
        .build()
        .into()
}

/// Operations that act on what a `POST` created, by the id in its `201`:
/// `(creator path, [(link name, operation id)])`.
const LINKS: &[(&str, &[(&str, &str)])] = &[
    (
        "/v1/products",
        &[
            ("GetProduct", "get_product"),
            ("EditProduct", "edit_product"),
            ("SubmitProduct", "submit_product"),
            ("UploadAsset", "upload_asset"),
            ("ListAssets", "list_assets"),
        ],
    ),
    (
        "/v1/orders",
        &[
            ("GetOrder", "get_order"),
            ("PayOrder", "pay_order"),
            ("CancelOrder", "cancel_order"),
            ("RefundOrder", "refund_order"),
        ],
    ),
    (
        "/v1/webhook-endpoints",
        &[
            ("GetEndpoint", "get_endpoint"),
            ("UpdateEndpoint", "update_endpoint"),
            ("ListDeliveries", "list_deliveries"),
            // Not `replay`: a new endpoint has no deliveries to name, so a
            // chained replay of one is a 404 of the delivery, not of the
            // endpoint just made.
            ("RotateSecret", "rotate_secret"),
            ("DeleteEndpoint", "delete_endpoint"),
        ],
    ),
];

/// An upload is sent with its own type: each type the default
/// [`AssetLimits`](bazaar_core::assets::AssetLimits) accept, as a non-empty
/// body of any bytes.
fn add_upload_types(document: &mut serde_json::Value) {
    let body = &mut document["paths"]["/v1/products/{id}/assets"]["post"]["requestBody"];
    let content: serde_json::Map<String, serde_json::Value> = bazaar_core::assets::DEFAULT_MIMES
        .iter()
        .map(|mime| {
            // Any value sent as text is a valid text upload (a JSON object
            // is text too), so a text type's schema names no `type`: only
            // the empty body is refused. The rest are bytes.
            let schema = if mime.starts_with("text/") {
                serde_json::json!({"minLength": 1, "description": "Any non-empty text"})
            } else if matches!(*mime, "application/json" | "application/yaml" | "application/x-yaml") {
                // Likewise any document of these types: the file is stored
                // as sent, not parsed.
                serde_json::json!({"description": "Any document of this type, stored as sent"})
            } else {
                serde_json::json!({"type": "string", "format": "binary", "minLength": 1})
            };
            ((*mime).to_owned(), serde_json::json!({ "schema": schema }))
        })
        .collect();
    body["content"] = content.into();
}

/// The notification stream's SSE answer, described event by event (what
/// SSE-aware tools validate each event against): a `message` whose `data`
/// is one notification as JSON, or the closing `close` with its reason.
fn describe_events(document: &mut serde_json::Value) {
    let json_data = |schema: serde_json::Value| serde_json::json!({"type": "string", "contentMediaType": "application/json", "contentSchema": schema});
    let message = serde_json::json!({
        "type": "object",
        "properties": {
            "event": {"const": "message"},
            "id": {"type": "string", "format": "uuid"},
            "data": json_data(serde_json::json!({"$ref": "#/components/schemas/NotificationResponse"})),
        },
        "required": ["id", "data"],
    });
    let close = serde_json::json!({
        "type": "object",
        "properties": {
            "event": {"const": "close"},
            "data": json_data(serde_json::json!({
                "type": "object",
                "properties": {"reason": {"type": "string", "enum": ["lagged", "shutdown"]}},
                "required": ["reason"],
            })),
        },
        "required": ["event", "data"],
    });
    let sse =
        &mut document["paths"]["/v1/notifications/stream"]["get"]["responses"]["200"]["content"]["text/event-stream"];
    sse["schema"] = serde_json::json!({ "oneOf": [message, close] });
}

/// Tagged enums that refuse unknown fields: utoipa leaves their variants
/// open, so each is closed here.
fn close_variants(document: &mut serde_json::Value, schemas: &[&str]) {
    for name in schemas {
        let variants = document["components"]["schemas"][name]["oneOf"]
            .as_array_mut()
            .unwrap_or_else(|| panic!("{name} is a oneOf"));
        for variant in variants {
            variant["additionalProperties"] = false.into();
        }
    }
}

fn add_links(document: &mut serde_json::Value) {
    for (path, links) in LINKS {
        let response = document["paths"][path]["post"]["responses"]["201"]
            .as_object_mut()
            .unwrap_or_else(|| panic!("POST {path} answers 201"));
        let links: serde_json::Map<String, serde_json::Value> = links
            .iter()
            .map(|(name, operation_id)| {
                let link = serde_json::json!({"operationId": operation_id, "parameters": {"id": "$response.body#/id"}});
                ((*name).to_owned(), link)
            })
            .collect();
        response.insert("links".to_owned(), links.into());
    }
}
