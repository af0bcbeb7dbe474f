//! GraphiQL is served with every asset it references, from the binary.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::common::TestApp;

#[tokio::test]
async fn the_page_and_every_asset_it_loads_are_served_locally() {
    let app = TestApp::new();
    let get = |uri: String| {
        let router = app.router();
        async move {
            let response = router.oneshot(Request::get(uri).body(Body::empty()).unwrap()).await.unwrap();
            let status = response.status();
            let content_type = response.headers().get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap().to_owned());
            (status, content_type, response.into_body().collect().await.unwrap().to_bytes())
        }
    };
    let (status, content_type, page) = get("/graphql".into()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.unwrap().starts_with("text/html"));
    let page = String::from_utf8(page.to_vec()).unwrap();
    assert!(!page.contains("https://"), "no CDN: {page}");
    let assets: Vec<&str> = page.split('"').filter(|s| s.starts_with("/graphql/assets/")).collect();
    assert_eq!(assets.len(), 5, "css, react, react-dom, graphiql, boot script: {assets:?}");
    for asset in assets {
        let (status, content_type, body) = get(asset.to_owned()).await;
        assert_eq!(status, StatusCode::OK, "{asset}");
        let expected = if asset.ends_with(".css") { "text/css" } else { "text/javascript" };
        assert!(content_type.unwrap().starts_with(expected), "{asset}");
        assert!(body.len() > 1_000, "{asset} is not empty");
    }
}
