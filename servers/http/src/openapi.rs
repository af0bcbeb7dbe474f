//! The OpenAPI document's frame: info, the `bearer` security scheme, tags
//! and the error schema. [`crate::router`] merges every route module's
//! annotated handlers into it, so the document lists exactly what is served.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::{ErrorBody, ErrorDetail};

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
    components(schemas(ErrorBody, ErrorDetail)),
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
