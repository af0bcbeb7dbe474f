//! Handler tests of the asset routes: raw uploads (hash, scan, versions,
//! both size limits, type allow-list) and the per-product listing.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use bazaar_core::assets::{AssetLimits, EICAR_SIGNATURE, sha256_hex};
use bazaar_http::HttpSettings;
use common::{Reply, Session, TestApp, error_code};
use serde_json::json;

fn product_body(title: &str) -> serde_json::Value {
    json!({
        "title": title,
        "kind": "n8n_workflow",
        "categories": ["automation"],
        "pricing": {"type": "one_time", "price": {"minor": 500, "currency": "EUR"}}
    })
}

async fn draft(app: &TestApp, vendor: &Session) -> String {
    let r = app.send("POST", "/v1/products", Some(&vendor.token), Some(product_body("Workflow pack"))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    r.json["id"].as_str().unwrap().to_owned()
}

async fn approve(app: &TestApp, id: &str, vendor: &Session) {
    let admin = app.admin().await;
    let r = app.send("POST", &format!("/v1/products/{id}/submit"), Some(&vendor.token), None).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app.send("POST", &format!("/v1/products/{id}/approve"), Some(&admin.token), None).await;
    assert_eq!(r.status, StatusCode::OK);
}

/// Uploads `bytes` as `query` (`file_name=…[&preview=true]`).
async fn upload(app: &TestApp, id: &str, token: Option<&str>, query: &str, mime: Option<&str>, bytes: &[u8]) -> Reply {
    let mut req = Request::builder().method("POST").uri(format!("/v1/products/{id}/assets?{query}"));
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    if let Some(m) = mime {
        req = req.header(header::CONTENT_TYPE, m);
    }
    app.call(req.body(Body::from(bytes.to_vec())).unwrap()).await
}

fn status(reply: &Reply) -> (StatusCode, String) {
    (reply.status, error_code(reply))
}

fn fields(reply: &Reply) -> Vec<String> {
    reply.json["error"]["details"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn owners_upload_hashed_scanned_versioned_files() {
    let app = TestApp::new();
    let vendor = app.register("vendor").await;
    let id = draft(&app, &vendor).await;
    let bytes = br#"{"nodes":[]}"#;
    let r =
        upload(&app, &id, Some(&vendor.token), "file_name=flow.json", Some("application/json; charset=utf-8"), bytes)
            .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    let a = &r.json;
    assert_eq!(a["product_id"], id.as_str());
    assert_eq!((a["file_name"].as_str(), a["mime"].as_str()), (Some("flow.json"), Some("application/json")));
    assert_eq!(a["size"].as_u64(), Some(bytes.len() as u64));
    assert_eq!(a["sha256"].as_str(), Some(sha256_hex(bytes).as_str()));
    assert_eq!(
        (a["version"].as_u64(), a["scan"].as_str(), a["is_preview"].as_bool()),
        (Some(1), Some("clean"), Some(false))
    );

    let r = upload(&app, &id, Some(&vendor.token), "file_name=flow.json", Some("application/json"), b"{}").await;
    assert_eq!((r.status, r.json["version"].as_u64()), (StatusCode::CREATED, Some(2)), "same name: next version");
    let r =
        upload(&app, &id, Some(&vendor.token), "file_name=shot.png&preview=true", Some("image/png"), b"\x89PNG").await;
    assert_eq!((r.status, r.json["is_preview"].as_bool()), (StatusCode::CREATED, Some(true)));
}

#[tokio::test]
async fn the_eicar_test_file_is_recorded_as_infected() {
    let app = TestApp::new();
    let vendor = app.register("vendor").await;
    let id = draft(&app, &vendor).await;
    let r = upload(&app, &id, Some(&vendor.token), "file_name=readme.txt", Some("text/plain"), EICAR_SIGNATURE).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    assert_eq!(r.json["scan"], "infected");
}

#[tokio::test]
async fn only_the_vendor_uploads() {
    let app = TestApp::new();
    let (vendor, other, customer) =
        (app.register("vendor").await, app.register("vendor").await, app.register("customer").await);
    let id = draft(&app, &vendor).await;
    let r = upload(&app, &id, None, "file_name=a.zip", Some("application/zip"), b"PK").await;
    assert_eq!(status(&r), (StatusCode::UNAUTHORIZED, "unauthenticated".into()));
    let r = upload(&app, &id, Some(&other.token), "file_name=a.zip", Some("application/zip"), b"PK").await;
    assert_eq!(status(&r), (StatusCode::NOT_FOUND, "not_found".into()), "someone else's draft is invisible");
    approve(&app, &id, &vendor).await;
    for who in [&other, &customer] {
        let r = upload(&app, &id, Some(&who.token), "file_name=a.zip", Some("application/zip"), b"PK").await;
        assert_eq!(status(&r), (StatusCode::FORBIDDEN, "forbidden".into()));
    }
    let missing = uuid::Uuid::now_v7().to_string();
    let r = upload(&app, &missing, Some(&vendor.token), "file_name=a.zip", Some("application/zip"), b"PK").await;
    assert_eq!(status(&r), (StatusCode::NOT_FOUND, "not_found".into()));
}

#[tokio::test]
async fn bad_names_types_and_empty_bodies_are_422() {
    let app = TestApp::new();
    let vendor = app.register("vendor").await;
    let id = draft(&app, &vendor).await;
    let t = Some(vendor.token.as_str());
    let r = upload(&app, &id, t, "file_name=..%2Fetc%2Fpasswd", Some("text/plain"), b"x").await;
    assert_eq!(status(&r), (StatusCode::UNPROCESSABLE_ENTITY, "validation".into()));
    assert_eq!(fields(&r), ["file_name"]);
    let r = upload(&app, &id, t, "file_name=page.html", Some("text/html"), b"<p>").await;
    assert_eq!(fields(&r), ["mime"]);
    let r = upload(&app, &id, t, "file_name=empty.txt", Some("text/plain"), b"").await;
    assert_eq!(fields(&r), ["size"]);
    let r = upload(&app, &id, t, "file_name=none.txt", None, b"x").await;
    assert_eq!(fields(&r), ["mime"]);
    let r = upload(&app, &id, t, "preview=true", Some("text/plain"), b"x").await;
    assert_eq!(status(&r), (StatusCode::UNPROCESSABLE_ENTITY, "validation".into()), "file_name is required");
}

#[tokio::test]
async fn bodies_over_the_server_upload_limit_are_413() {
    let app = TestApp::with_settings(HttpSettings { upload_limit: 16, ..HttpSettings::default() });
    let vendor = app.register("vendor").await;
    let id = draft(&app, &vendor).await;
    let t = Some(vendor.token.as_str());
    let r = upload(&app, &id, t, "file_name=ok.txt", Some("text/plain"), &[b'a'; 16]).await;
    assert_eq!(r.status, StatusCode::CREATED, "exactly the limit is fine: {}", r.json);
    // Without Content-Length: cut off while reading.
    let r = upload(&app, &id, t, "file_name=big.txt", Some("text/plain"), &[b'a'; 17]).await;
    assert_eq!(status(&r), (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large".into()));
    assert_eq!(r.json["error"]["details"]["limit"], 16);
    // With a Content-Length over the limit: refused before reading.
    let req = Request::builder()
        .method("POST")
        .uri(format!("/v1/products/{id}/assets?file_name=big.txt"))
        .header(header::AUTHORIZATION, format!("Bearer {}", vendor.token))
        .header(header::CONTENT_TYPE, "text/plain")
        .header(header::CONTENT_LENGTH, "1000")
        .body(Body::from(vec![b'a'; 1000]))
        .unwrap();
    let r = app.call(req).await;
    assert_eq!(status(&r), (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large".into()));
}

/// A [`TestApp`] whose asset service accepts at most `max_size` bytes.
fn app_with_asset_limit(max_size: u64) -> TestApp {
    let limits = AssetLimits { max_size, ..AssetLimits::default() };
    TestApp::custom(HttpSettings::default(), |ports| ports, |builder| builder.asset_limits(limits))
}

#[tokio::test]
async fn files_over_the_asset_size_limit_are_413() {
    let app = app_with_asset_limit(8);
    let vendor = app.register("vendor").await;
    let id = draft(&app, &vendor).await;
    let r = upload(&app, &id, Some(&vendor.token), "file_name=big.txt", Some("text/plain"), b"123456789").await;
    assert_eq!(status(&r), (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large".into()));
    assert_eq!(r.json["error"]["details"][0]["field"], "size");
    let r = upload(&app, &id, Some(&vendor.token), "file_name=ok.txt", Some("text/plain"), b"12345678").await;
    assert_eq!(r.status, StatusCode::CREATED);
}

#[tokio::test]
async fn listings_follow_product_visibility() {
    let app = TestApp::new();
    let (vendor, other) = (app.register("vendor").await, app.register("vendor").await);
    let id = draft(&app, &vendor).await;
    for name in ["a.txt", "b.txt", "a.txt"] {
        let r = upload(&app, &id, Some(&vendor.token), &format!("file_name={name}"), Some("text/plain"), b"x").await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    let uri = format!("/v1/products/{id}/assets");
    let r = app.send("GET", &uri, Some(&vendor.token), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!((r.json["total"].as_u64(), r.json["items"].as_array().map(Vec::len)), (Some(3), Some(3)));
    for token in [None, Some(other.token.as_str())] {
        let r = app.send("GET", &uri, token, None).await;
        assert_eq!(status(&r), (StatusCode::NOT_FOUND, "not_found".into()), "a draft's files are private");
    }
    approve(&app, &id, &vendor).await;
    let r = app.send("GET", &format!("{uri}?limit=2&page=2"), None, None).await;
    assert_eq!(r.status, StatusCode::OK, "approved: public");
    assert_eq!(
        (r.json["total"].as_u64(), r.json["page"].as_u64(), r.json["items"].as_array().map(Vec::len)),
        (Some(3), Some(2), Some(1))
    );
    let r = app.send("GET", &format!("{uri}?page=0"), None, None).await;
    assert_eq!(status(&r), (StatusCode::UNPROCESSABLE_ENTITY, "validation".into()));
    let r = app.send("GET", &format!("/v1/products/{}/assets", uuid::Uuid::now_v7()), None, None).await;
    assert_eq!(status(&r), (StatusCode::NOT_FOUND, "not_found".into()));
}
