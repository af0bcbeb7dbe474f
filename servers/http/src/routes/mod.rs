//! The API's routes, one module per resource. Each module's `routes()`
//! returns an [`OpenApiRouter`](utoipa_axum::router::OpenApiRouter) so the
//! OpenAPI document is collected from the handlers' own annotations.

pub(crate) mod assets;
pub(crate) mod auth;
pub(crate) mod catalog;
pub(crate) mod licenses;
pub(crate) mod notification_stream;
pub(crate) mod notifications;
pub(crate) mod ops;
pub(crate) mod orders;
pub(crate) mod payments;
pub(crate) mod webhooks;
