//! The ceiling for HTTP load runs: a trivial axum JSON handler on the same
//! runtime settings as the Bazaar server, measured with `wrk` in the same
//! session as the real routes (see benches/README.md).
//!
//! `cargo run --release -p bazaar-benches --example http_ceiling -- 127.0.0.1:18080`

use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:18080".into());
    let app = Router::new()
        .route("/json", get(|| async { Json(json!({ "items": [], "total": 0, "page": 1, "limit": 20 })) }))
        .route("/echo", post(|Json(body): Json<Value>| async move { Json(json!({ "valid": true, "echo": body })) }))
        // A stand-in OTLP/HTTP collector for the tracing-cost runs: takes an
        // export request (protobuf body) and answers success, storing nothing.
        .route("/v1/traces", post(|_body: axum::body::Bytes| async { "" }));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("ceiling listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await
}
