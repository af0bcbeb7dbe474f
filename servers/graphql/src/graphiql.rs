//! GraphiQL at `GET /graphql`, offline: the page loads React, ReactDOM,
//! GraphiQL and its boot script from `/graphql/assets/`, all compiled into
//! the binary (see `assets/README.md` for versions and licenses).

use axum::Router;
use axum::http::HeaderValue;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use crate::GraphqlState;

/// The page.
const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Bazaar GraphQL</title>
  <link rel="stylesheet" href="/graphql/assets/graphiql.min.css">
  <style>body { margin: 0; } #graphiql { height: 100vh; }</style>
</head>
<body>
  <div id="graphiql">Loading GraphiQL…</div>
  <script src="/graphql/assets/react.production.min.js"></script>
  <script src="/graphql/assets/react-dom.production.min.js"></script>
  <script src="/graphql/assets/graphiql.min.js"></script>
  <script src="/graphql/assets/bazaar-graphiql.js"></script>
</body>
</html>
"#;

/// `GET /graphql`.
pub(crate) async fn page() -> Html<&'static str> {
    Html(PAGE)
}

/// A vendored file with its content type; cached for a day (the files
/// change only with the binary).
fn asset(bytes: &'static [u8], content_type: &'static str) -> Response {
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (CACHE_CONTROL, HeaderValue::from_static("public, max-age=86400")),
        ],
        bytes,
    )
        .into_response()
}

/// The asset routes.
pub(crate) fn assets() -> Router<GraphqlState> {
    const JS: &str = "text/javascript; charset=utf-8";
    Router::new()
        .route(
            "/graphql/assets/graphiql.min.css",
            get(|| async { asset(include_bytes!("../assets/graphiql.min.css"), "text/css; charset=utf-8") }),
        )
        .route(
            "/graphql/assets/graphiql.min.js",
            get(|| async { asset(include_bytes!("../assets/graphiql.min.js"), JS) }),
        )
        .route(
            "/graphql/assets/react.production.min.js",
            get(|| async { asset(include_bytes!("../assets/react.production.min.js"), JS) }),
        )
        .route(
            "/graphql/assets/react-dom.production.min.js",
            get(|| async { asset(include_bytes!("../assets/react-dom.production.min.js"), JS) }),
        )
        .route(
            "/graphql/assets/bazaar-graphiql.js",
            get(|| async { asset(include_bytes!("../assets/bazaar-graphiql.js"), JS) }),
        )
}
